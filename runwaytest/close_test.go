package runwaytest_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	runway "github.com/b9c9aec2/runway-go"
	"github.com/b9c9aec2/runway-go/runwaytest"
)

// Close cancels everything in flight — retries waiting on Kie's real 1-minute interval,
// delayed callbacks, attempts stuck in a receiver, slow answers, running step timers — waits
// for it, and leaves no goroutine behind (TestMain runs goleak). Wait helpers return ErrClosed.
func TestCloseStopsEverything(t *testing.T) {
	t.Parallel()
	srv := runwaytest.NewServer(runwaytest.WithRetryIntervals(runwaytest.KieRetryIntervals()...))
	c := client(t, srv, runway.WithMaxRetries(0))
	failing := newReceiver(t, func(int, *http.Request) int { return http.StatusBadGateway })
	stuck := newReceiver(t, func(_ int, r *http.Request) int {
		<-r.Context().Done()
		return http.StatusOK
	})

	retrying, err := c.Generate(ctx(t), genReq(failing.URL))
	require.NoError(t, err)
	_, err = srv.WaitAttempts(ctx(t), retrying, 1) // first attempt failed; the retry now waits a minute
	require.NoError(t, err)

	srv.ScriptNext(1, runwaytest.Script{Callback: runwaytest.CallbackFaults{Delay: time.Hour}})
	_, err = c.Generate(ctx(t), genReq(failing.URL))
	require.NoError(t, err)

	blocked, err := c.Generate(ctx(t), genReq(stuck.URL))
	require.NoError(t, err)
	stuck.next(t)

	srv.ScriptNext(1, runwaytest.Script{Steps: &runwaytest.Steps{Wait: time.Hour}})
	_, err = c.Generate(ctx(t), genReq(""))
	require.NoError(t, err)

	srv.InjectFault(runwaytest.PathCredit, 1, runwaytest.SlowResponse(time.Hour))
	slowDone := make(chan error, 1)
	go func() {
		_, err := c.Credits(context.Background())
		slowDone <- err
	}()
	_, err = srv.WaitRequests(ctx(t), runwaytest.PathGenerate, 4)
	require.NoError(t, err)

	waitDone := make(chan error, 1)
	go func() {
		_, err := srv.WaitCallback(context.Background(), retrying)
		waitDone <- err
	}()

	srv.Close()
	srv.Close() // idempotent
	require.ErrorIs(t, <-waitDone, runwaytest.ErrClosed)
	<-slowDone
	_, err = srv.WaitCallback(ctx(t), blocked)
	require.ErrorIs(t, err, runwaytest.ErrClosed)
	info, ok := srv.Task(retrying)
	require.True(t, ok)
	require.False(t, info.Callback.Done)
	require.Len(t, info.Callback.Attempts, 1)
}

// A manual task left unfinished, a manual Advance after Close: nothing starts.
func TestAdvanceAfterClose(t *testing.T) {
	t.Parallel()
	srv := runwaytest.NewServer(runwaytest.WithManualSteps())
	c := client(t, srv)
	rc := newReceiver(t, nil)
	id, err := c.Generate(ctx(t), genReq(rc.URL))
	require.NoError(t, err)
	srv.Close()
	st, err := srv.Finish(id)
	require.NoError(t, err)
	require.Equal(t, runway.StateSuccess, st)
	require.Empty(t, srv.CallbackAttempts())
	require.Empty(t, rc.got)
}
