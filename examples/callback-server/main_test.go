package main

import (
	"context"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// TestSelftest: one signed callback reaches the mounted handler's result func, then the
// server shuts down gracefully and nothing is left running.
func TestSelftest(t *testing.T) {
	defer goleak.VerifyNone(t)
	require.NoError(t, runSelftest(context.Background(), slog.New(slog.DiscardHandler)))
}
