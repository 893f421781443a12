package runwaytest_test

import (
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	runway "github.com/b9c9aec2/runway-go"
	"github.com/b9c9aec2/runway-go/runwaytest"
)

// WithAnyAPIKey accepts every non-empty bearer key, and still refuses a missing or blank one.
func TestWithAnyAPIKey(t *testing.T) {
	t.Parallel()
	srv := start(t, runwaytest.WithAnyAPIKey())
	for _, key := range []string{"anything", "sk-of-another-language", srv.APIKey} {
		c, err := runway.NewClient(key, runway.WithBaseURL(srv.URL))
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		n, err := c.Credits(ctx(t))
		require.NoError(t, err, key)
		require.Equal(t, runwaytest.DefaultCredits, n)
	}
	for _, header := range []string{"", "Bearer ", "Bearer   ", "Basic abc"} {
		req, err := http.NewRequestWithContext(ctx(t), http.MethodGet, srv.URL+runwaytest.PathCredit, nil)
		require.NoError(t, err)
		if header != "" {
			req.Header.Set("Authorization", header)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
	}
	reqs := srv.Requests()
	require.Len(t, reqs, 7)
	for _, r := range reqs[3:] {
		require.False(t, r.Authorized)
		require.Equal(t, 401, r.Code)
	}

	// Without the option only the server's key works.
	strict := start(t)
	c, err := runway.NewClient("anything", runway.WithBaseURL(strict.URL))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	_, err = c.Credits(ctx(t))
	require.ErrorIs(t, err, runway.ErrUnauthorized)
}

// WithListener serves on the caller's listener, file URLs included, and Close closes it.
func TestWithListener(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := start(t, runwaytest.WithListener(l))
	require.Equal(t, "http://"+l.Addr().String(), srv.URL)

	c := client(t, srv)
	id, err := c.Generate(ctx(t), runway.GenerateRequest{
		Prompt: "a cat", Duration: 5, Quality: runway.Quality720p, AspectRatio: runway.AspectRatio16x9,
	})
	require.NoError(t, err)
	info, err := srv.WaitTerminal(ctx(t), id)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(info.VideoURL, srv.URL+"/"), info.VideoURL)

	srv.Close()
	_, err = l.Accept()
	require.Error(t, err, "Close closes the listener")
}
