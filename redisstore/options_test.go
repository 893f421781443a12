package redisstore

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// TestOptionRanges: every option refuses the values that cannot work, naming itself, and New
// panics with all of them, one per line; the edge of each range is accepted. No Redis needed:
// New does no I/O.
func TestOptionRanges(t *testing.T) {
	t.Parallel()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:0"})
	t.Cleanup(func() { _ = rdb.Close() })
	bad := []struct {
		opt  Option
		want string
	}{
		{WithPrefix(""), `WithPrefix: empty prefix; leave the option out for the default "runway:"`},
		{WithDoneRetention(0), "WithDoneRetention: 0s is not a positive duration; leave the option out for the default 24h0m0s"},
		{WithDoneRetention(-time.Hour), "WithDoneRetention: -1h0m0s is not a positive duration; leave the option out for the default 24h0m0s"},
		{WithResultTTL(0), "WithResultTTL: 0s is not a positive duration; leave the option out for the default 1h0m0s"},
		{WithResultTTL(-1), "WithResultTTL: -1ns is not a positive duration; leave the option out for the default 1h0m0s"},
		{WithTimeout(0), "WithTimeout: 0s is not a positive duration; leave the option out for the default 1s"},
		{WithTimeout(-time.Second), "WithTimeout: -1s is not a positive duration; leave the option out for the default 1s"},
		{WithReconnectBackoff(0, time.Second), "WithReconnectBackoff: need 0 < lo <= hi, got 0s, 1s; leave the option out for 50ms to 1s"},
		{WithReconnectBackoff(time.Second, time.Millisecond), "WithReconnectBackoff: need 0 < lo <= hi, got 1s, 1ms; leave the option out for 50ms to 1s"},
		{WithLogger(nil), "WithLogger: nil logger; pass slog.New(slog.DiscardHandler) to discard"},
		{WithLeaseTTL(0), "WithLeaseTTL: 0s is not a positive duration; leave the option out for the default 1m0s"},
	}
	var all []Option
	var lines []string
	for _, tc := range bad {
		require.PanicsWithValue(t, "redisstore: New: "+tc.want, func() { New(rdb, tc.opt) })
		all = append(all, tc.opt)
		lines = append(lines, tc.want)
	}
	require.PanicsWithValue(t, "redisstore: New: "+strings.Join(lines, "\n"), func() { New(rdb, all...) })
	require.PanicsWithValue(t, "redisstore: New: nil redis client; pass a go-redis client such as redis.NewClient(...)", func() { New(nil) })

	s := New(rdb, WithPrefix("p:"), WithDoneRetention(1), WithResultTTL(1), WithTimeout(1),
		WithReconnectBackoff(time.Millisecond, time.Millisecond), WithLogger(slog.New(slog.DiscardHandler)),
		WithLeaseTTL(time.Second))
	require.NoError(t, s.Close())
	require.Same(t, slog.Default(), New(rdb).log, "no WithLogger: the default logger")
}
