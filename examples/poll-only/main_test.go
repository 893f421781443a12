package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// TestOffline: without a key the example polls the fake until the video is ready and shows
// each state it saw.
func TestOffline(t *testing.T) {
	defer goleak.VerifyNone(t)
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), &out, "", "a paper boat"), out.String())
	require.Contains(t, out.String(), "submitted; polling every 1s\n")
	require.Contains(t, out.String(), "  success\nvideo: http://127.0.0.1:")
}
