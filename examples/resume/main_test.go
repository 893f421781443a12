package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// TestOffline: the first life submits and stops; after the restart, Reconcile delivers the
// task by polling, with the Meta given at submission.
func TestOffline(t *testing.T) {
	defer goleak.VerifyNone(t)
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), &out, "", "", ""), out.String())
	require.Contains(t, out.String(), "submitted and journaled")
	require.Contains(t, out.String(), "--- restart ---\n1 task(s) pending in the journal")
	require.Contains(t, out.String(), "for order-1001 finished after the restart (via poll): http://127.0.0.1:")
}

// TestNothingPending: a reconcile with an empty journal returns at once.
func TestNothingPending(t *testing.T) {
	var out bytes.Buffer
	l := life{apiKey: "k", journal: t.TempDir() + "/j"}
	require.NoError(t, l.reconcile(context.Background(), &out))
	require.Equal(t, "nothing pending\n", out.String())
}
