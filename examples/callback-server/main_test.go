package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// TestSelftest: one signed callback reaches the mounted handler's result func, the SaveQueue
// saves the task's video and cover into the directory, then the server shuts down gracefully
// and nothing is left running.
func TestSelftest(t *testing.T) {
	defer goleak.VerifyNone(t)
	dir := t.TempDir()
	saved, err := runSelftest(context.Background(), slog.New(slog.DiscardHandler), dir)
	require.NoError(t, err)
	for _, p := range []string{saved.VideoPath, saved.ImagePath} {
		require.Equal(t, dir, filepath.Dir(p))
		st, err := os.Stat(p)
		require.NoError(t, err)
		require.Positive(t, st.Size(), p)
	}
}
