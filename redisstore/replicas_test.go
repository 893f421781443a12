package redisstore

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	runway "github.com/b9c9aec2/runway-go"
	"github.com/b9c9aec2/runway-go/runwaytest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// outageRetries is the fake Kie's callback retry schedule in this test: Kie's three retries
// stretched to a dozen short ones, so that callbacks refused during the Redis outage are
// retried soon after it ends, with room to spare on a slow machine.
func outageRetries() []time.Duration {
	return []time.Duration{
		5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
		100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond, time.Second,
		2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second,
	}
}

// Three replicas share one Redis. The fake Kie delivers each task's callback, with duplicate
// copies (one after another and racing), to a rotating replica; every replica waits for every
// task. Every waiter gets every result from the bus without a second poll, each task's result
// func runs exactly once across the replicas, and a Redis kill and restart in the middle loses
// nothing: the callbacks refused meanwhile (5xx) are retried and complete once Redis is back,
// and waiters that started during the outage (their lookup failed, so they polled) get their
// results from the bus too.
func TestReplicasShareDedupeAndResults(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	redisSrv := dedicatedRedis(t)
	api := runwaytest.NewServer(runwaytest.WithManualSteps(), runwaytest.WithHMACKey(testHMACKey),
		runwaytest.WithRetryIntervals(outageRetries()...))
	t.Cleanup(api.Close)
	prefix := uniquePrefix(t)
	var counter callCounter
	reps := make([]*replica, 3)
	for i := range reps {
		reps[i] = newReplica(t, redisSrv.client(t), prefix, api, counter.fn)
	}
	front := newRotator(t, reps)
	waitSubscribers(t, reps[0].store, int64(len(reps)))

	deliveries := []runwaytest.CallbackFaults{
		{},                            // a single delivery
		{Copies: 3},                   // duplicates one after another, each on the next replica
		{Copies: 3, Concurrent: true}, // duplicates racing on all three replicas
	}
	const before, during = 9, 6 // tasks finishing before and during the outage
	ids := make([]string, before+during)
	for n := range ids {
		sc := runwaytest.Script{Callback: deliveries[n%len(deliveries)]}
		if n%4 == 3 {
			sc.Outcome = runwaytest.FailModeration()
		}
		api.ScriptNext(1, sc)
		ids[n] = generate(ctx, t, reps[n%len(reps)].client, front.callbackURL(n))
	}

	out := make(chan waitOutcome, len(reps)*(len(ids)+during))
	waitAll := func(ids []string) {
		for _, id := range ids {
			for i, rep := range reps {
				startWait(ctx, &wg, out, rep.client, i, id)
			}
		}
	}
	waitAll(ids)
	polls := len(reps) * len(ids)
	_, err := api.WaitRequests(ctx, runwaytest.PathRecordDetail, polls)
	require.NoError(t, err, "every waiter polled once and sleeps for an hour")

	// Before the outage.
	for _, id := range ids[:before] {
		_, err := api.Finish(id)
		require.NoError(t, err)
	}
	checkOutcomes(t, api, collect(ctx, t, out, len(reps)*before))
	for _, id := range ids[:before] {
		// Every copy is answered 200 before Redis goes: its done marker will not survive the
		// restart (no persistence in this test).
		st, err := api.WaitCallback(ctx, id)
		require.NoError(t, err)
		require.Zero(t, st.GaveUp, id)
	}

	// The outage: waiters that start now cannot look the result up and poll instead;
	// callbacks are refused with 5xx.
	redisSrv.kill()
	waitAll(ids[before:])
	polls += len(reps) * during
	_, err = api.WaitRequests(ctx, runwaytest.PathRecordDetail, polls)
	require.NoError(t, err)
	for _, id := range ids[before:] {
		_, err := api.Finish(id)
		require.NoError(t, err)
	}
	for _, id := range ids[before:] {
		attempts, err := api.WaitAttempts(ctx, id, 1)
		require.NoError(t, err)
		require.NoError(t, attempts[0].Err)
		require.Equal(t, 5, attempts[0].StatusCode/100, "refused while Redis is down, so that Kie retries")
	}
	require.NoError(t, redisSrv.start())
	checkOutcomes(t, api, collect(ctx, t, out, 2*len(reps)*during))
	require.NoError(t, api.WaitIdle(ctx))

	for n, id := range ids {
		st, err := api.WaitCallback(ctx, id)
		require.NoError(t, err)
		require.Equal(t, max(deliveries[n%len(deliveries)].Copies, 1), st.Delivered, "every copy of %s was answered 200 in the end", id)
		require.Equal(t, 1, counter.count(id), "result func of %s ran exactly once across the replicas", id)
		if len(st.Attempts) > 1 {
			require.Greater(t, len(front.replicasHit(n)), 1, "deliveries of %s landed on several replicas", id)
		}
	}
	require.Equal(t, polls, detailGets(api), "no waiter polled a second time: the bus woke them all")
}

// collect reads n outcomes, failing if they do not all arrive before ctx ends.
func collect(ctx context.Context, t *testing.T, out <-chan waitOutcome, n int) []waitOutcome {
	t.Helper()
	got := make([]waitOutcome, 0, n)
	for range n {
		select {
		case o := <-out:
			got = append(got, o)
		case <-ctx.Done():
			t.Fatalf("%d of %d waits returned before the deadline", len(got), n)
		}
	}
	return got
}

// checkOutcomes checks that every wait returned its task's scripted outcome, from a callback.
func checkOutcomes(t *testing.T, api *runwaytest.Server, outcomes []waitOutcome) {
	t.Helper()
	for _, o := range outcomes {
		info, ok := api.Task(o.taskID)
		require.True(t, ok)
		require.NotNil(t, o.res, "replica %d, task %s: %v", o.replica, o.taskID, o.err)
		assert.Equal(t, runway.SourceCallback, o.res.Source, "replica %d, task %s", o.replica, o.taskID)
		assert.Equal(t, o.taskID, o.res.TaskID)
		if info.Script.Outcome.Failed() {
			var te *runway.TaskError
			require.ErrorAs(t, o.err, &te)
			assert.True(t, errors.Is(o.err, runway.ErrModeration), "replica %d, task %s: %v", o.replica, o.taskID, o.err)
			continue
		}
		require.NoError(t, o.err, "replica %d, task %s", o.replica, o.taskID)
		assert.Equal(t, info.VideoURL, o.res.VideoURL)
	}
}
