package redisstore

import (
	"context"
	"reflect"
	"testing"
	"time"

	runway "github.com/b9c9aec2/runway-go"
	"github.com/stretchr/testify/require"
)

// fullResult sets every field of runway.Result to a distinct non-zero value, so that a field
// added to Result later and lost on the wire fails the round-trip tests.
func fullResult(t *testing.T, taskID string) *runway.Result {
	t.Helper()
	r := &runway.Result{}
	v := reflect.ValueOf(r).Elem()
	for i := range v.NumField() {
		if !v.Type().Field(i).IsExported() {
			continue // process-local (the client's keys kept out of Err's text): not on the wire
		}
		f := v.Field(i)
		name := v.Type().Field(i).Name
		switch {
		case f.Kind() == reflect.String:
			f.SetString("value of " + name + " \x00\u00e9")
		case f.Kind() == reflect.Int:
			f.SetInt(int64(400 + i))
		case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.Uint8:
			// Whitespace, an escape and a byte that is not UTF-8: kept byte for byte.
			f.SetBytes([]byte("{ \"data\" : {\"task_id\": \"x\"} }\n\xff"))
		case f.Kind() == reflect.Map && f.Type().Key().Kind() == reflect.String && f.Type().Elem().Kind() == reflect.String:
			f.Set(reflect.ValueOf(map[string]string{"key of " + name: "value \u00e9", "order": "1001"}))
		default:
			t.Fatalf("fullResult: field %s of kind %v: teach the test (and check the wire format)", name, f.Kind())
		}
	}
	r.TaskID = taskID
	return r
}

// listen registers a Listen function that forwards results to a buffered channel.
func listen(t *testing.T, s *Store) <-chan *runway.Result {
	ch := make(chan *runway.Result, 16)
	stop := s.Listen(func(r *runway.Result) { ch <- r })
	t.Cleanup(stop)
	return ch
}

// next returns the next result from ch, failing after a generous bound.
func next(t *testing.T, ch <-chan *runway.Result) *runway.Result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no result delivered")
		return nil
	}
}

// waitSubscribers waits until n Stores are subscribed to the channel, according to Redis.
func waitSubscribers(t *testing.T, s *Store, n int64) {
	t.Helper()
	waitFor(t, "subscribers", func(ctx context.Context) bool {
		m, err := s.rdb.PubSubNumSub(ctx, s.channel()).Result()
		return err == nil && m[s.channel()] == n
	})
}

func TestResultRoundTrip(t *testing.T) {
	t.Parallel()
	want := fullResult(t, "task-rt")
	b, err := encodeResult(want, "origin-1")
	require.NoError(t, err)
	got, origin, err := decodeResult(b)
	require.NoError(t, err)
	require.Equal(t, want, got)
	require.Equal(t, "origin-1", origin)

	for _, bad := range []string{"", "null", "{}", `{"taskId":""}`, "[1]", `{"taskId":"x","raw":"not base64!"}`} {
		_, _, err := decodeResult([]byte(bad))
		require.Error(t, err, bad)
	}
}

// Two Stores are two replicas: a result published on one reaches the listeners of both,
// exactly once each, and carries every field.
func TestPublishReachesEveryReplica(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, _ := newTestStore(t)
	b := New(sharedRedis(t).client(t), WithPrefix(a.prefix))
	t.Cleanup(func() { _ = b.Close() })
	fromA, fromB := listen(t, a), listen(t, b)
	fromB2 := listen(t, b)
	waitSubscribers(t, a, 2)

	want := fullResult(t, "task-1")
	require.NoError(t, a.Publish(ctx, want))
	require.Equal(t, want, next(t, fromA))
	require.Equal(t, want, next(t, fromB))
	require.Equal(t, want, next(t, fromB2))

	// A second result comes next everywhere: nothing was delivered twice.
	second := &runway.Result{TaskID: "task-2", Code: 200, Source: runway.SourceCallback}
	require.NoError(t, b.Publish(ctx, second))
	for _, ch := range []<-chan *runway.Result{fromA, fromB, fromB2} {
		require.Equal(t, second, next(t, ch))
	}

	got, err := b.Lookup(ctx, "task-1")
	require.NoError(t, err)
	require.Equal(t, want, got)
}

func TestLookupForLateWaiters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, rdb := newTestStore(t, WithResultTTL(10*time.Minute))
	want := fullResult(t, "late")
	require.NoError(t, a.Publish(ctx, want), "publishing with no subscriber at all")

	late := New(sharedRedis(t).client(t), WithPrefix(a.prefix))
	got, err := late.Lookup(ctx, "late")
	require.NoError(t, err)
	require.Equal(t, want, got)

	got, err = late.Lookup(ctx, "unknown")
	require.NoError(t, err)
	require.Nil(t, got)

	pttl, err := rdb.PTTL(ctx, a.resultKey("late")).Result()
	require.NoError(t, err)
	require.True(t, pttl > 9*time.Minute && pttl <= 10*time.Minute, "result PTTL %v", pttl)

	require.NoError(t, rdb.Set(ctx, a.resultKey("garbage"), "{", 0).Err())
	_, err = late.Lookup(ctx, "garbage")
	require.Error(t, err)
}

func TestPublishRejectsResultWithoutTaskID(t *testing.T) {
	t.Parallel()
	s, _ := newTestStore(t)
	require.Error(t, s.Publish(context.Background(), nil))
	require.Error(t, s.Publish(context.Background(), &runway.Result{Code: 200}))
}

func TestStopListeningAndForeignMessages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, rdb := newTestStore(t)
	b := New(sharedRedis(t).client(t), WithPrefix(a.prefix))
	t.Cleanup(func() { _ = b.Close() })
	stopped := make(chan *runway.Result, 1)
	stop := b.Listen(func(r *runway.Result) { stopped <- r })
	kept := listen(t, b)
	waitSubscribers(t, a, 1)
	stop()
	stop() // idempotent

	// Something else writing garbage on the channel is ignored, not fatal.
	require.NoError(t, rdb.Publish(ctx, a.channel(), "not json").Err())
	require.NoError(t, a.Publish(ctx, &runway.Result{TaskID: "t", Code: 200}))
	require.Equal(t, "t", next(t, kept).TaskID)
	require.Empty(t, stopped)
}
