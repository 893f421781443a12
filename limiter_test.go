package runway

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSubmitLimiterSlidingWindow(t *testing.T) {
	t.Parallel()
	l := newSubmitLimiter(3, time.Second)
	base := time.Unix(1000, 0)
	got := []time.Duration{}
	for range 7 {
		got = append(got, l.reserve(base).at.Sub(base))
	}
	w := time.Second + submitMargin
	require.Equal(t, []time.Duration{0, 0, 0, w, w, w, 2 * w}, got)
}

func TestSubmitLimiterOffAndValidation(t *testing.T) {
	t.Parallel()
	require.Nil(t, newSubmitLimiter(0, time.Second))
	c, err := NewClient("k", WithSubmitRateLimit(0, 0))
	require.NoError(t, err)
	require.Nil(t, c.limiter)
	_, err = NewClient("k", WithSubmitRateLimit(-1, time.Second))
	require.Error(t, err)
	_, err = NewClient("k", WithSubmitRateLimit(5, 0))
	require.Error(t, err)
	c, err = NewClient("k")
	require.NoError(t, err)
	require.NotNil(t, c.limiter)
	require.Equal(t, DefaultSubmitLimit, c.limiter.limit)
}

// TestSubmitLimiterSpreadsBursts sends 100 submissions back to back with a fake clock: no more
// than 20 start in any 10 s window, and cancelling a queued caller returns its ctx error.
func TestSubmitLimiterSpreadsBursts(t *testing.T) {
	t.Parallel()
	synctest.Test(t, testSubmitLimiterSpreadsBursts)
}

func testSubmitLimiterSpreadsBursts(t *testing.T) {
	var mu sync.Mutex
	var starts []time.Time
	c, _ := setup(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		starts = append(starts, time.Now())
		mu.Unlock()
		_, _ = w.Write([]byte(`{"code":200,"msg":"success","data":{"taskId":"t"}}`))
	})
	req := GenerateRequest{Prompt: "p", Duration: 5, Quality: Quality720p, AspectRatio: AspectRatio16x9}
	var failed atomic.Int32
	for range 100 {
		if _, err := c.Generate(context.Background(), req); err != nil {
			failed.Add(1)
		}
	}
	require.Zero(t, failed.Load())
	require.Len(t, starts, 100)
	for i := DefaultSubmitLimit; i < len(starts); i++ {
		require.GreaterOrEqual(t, starts[i].Sub(starts[i-DefaultSubmitLimit]), DefaultSubmitWindow,
			"submission %d started within one window of submission %d", i, i-DefaultSubmitLimit)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.Generate(ctx, req)
	require.ErrorIs(t, err, context.Canceled)
}

// TestSubmitLimiterCancelledWaitersFreeTheirSlots: during a spike, 180 callers with 50 ms
// deadlines queue behind a full window and give up. Their slots go back: a patient caller
// starts as soon as the window allows (one window after the first burst), not behind 180
// phantom reservations (nine more windows), whether it arrives after they gave up or right
// after them, while they still hold their slots (it then moves forward as they leave). A wait
// over a second is logged at Info.
func TestSubmitLimiterCancelledWaitersFreeTheirSlots(t *testing.T) {
	t.Parallel()
	for _, patientFirst := range []bool{false, true} {
		name := "patient caller arrives after they gave up"
		if patientFirst {
			name = "patient caller queued behind them"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				var logs logBuffer
				logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
				api := newPollAPI(t)
				c := newPollClient(t, api, WithLogger(logger))
				req := GenerateRequest{Prompt: "p", Duration: 5, Quality: Quality720p, AspectRatio: AspectRatio16x9}
				start := time.Now()
				for range DefaultSubmitLimit {
					_, err := c.Generate(t.Context(), req)
					require.NoError(t, err)
				}
				require.Equal(t, start, time.Now(), "the first burst is not delayed")
				require.NotContains(t, logs.String(), "rate-limit slot")

				var wg sync.WaitGroup
				var cancelled atomic.Int32
				for range 180 {
					wg.Go(func() {
						ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
						defer cancel()
						if _, err := c.Generate(ctx, req); err != nil {
							assert.ErrorIs(t, err, context.DeadlineExceeded)
							cancelled.Add(1)
						}
					})
				}
				if patientFirst {
					synctest.Wait() // all 180 hold their slots and sleep
					require.Equal(t, start, time.Now())
				} else {
					wg.Wait()
				}

				logs.buf.Reset()
				_, err := c.Generate(t.Context(), req)
				require.NoError(t, err)
				wg.Wait()
				require.Equal(t, int32(180), cancelled.Load())
				assert.Equal(t, DefaultSubmitWindow+submitMargin, time.Since(start), "started as soon as the window allowed")
				assert.Len(t, api.paths(), DefaultSubmitLimit+1, "no cancelled caller sent anything")
				line := logs.String()
				assert.Contains(t, line, `"level":"INFO"`)
				assert.Contains(t, line, "rate-limit slot")
				if !patientFirst {
					assert.Contains(t, line, `"wait":`+strconv.FormatInt(int64(DefaultSubmitWindow+submitMargin-50*time.Millisecond), 10))
				}
			})
		})
	}
}

// TestSubmitLimiterReleaseKeepsOrder: when a queued caller gives its slot back, the callers
// behind it move forward in the order they arrived, and the window still holds.
func TestSubmitLimiterReleaseKeepsOrder(t *testing.T) {
	t.Parallel()
	l := newSubmitLimiter(2, time.Second)
	w := time.Second + submitMargin
	base := time.Unix(1000, 0)
	var got []*slot
	for range 7 {
		got = append(got, l.reserve(base))
	}
	// Planned: 0 0 w w 2w 2w 3w. Slots 2 and 3 give up.
	l.release(got[2], base)
	l.release(got[3], base)
	at := func(i int) time.Duration { return got[i].at.Sub(base) }
	require.Equal(t, []time.Duration{0, 0, w, w, 2 * w}, []time.Duration{at(0), at(1), at(4), at(5), at(6)})
	// A release after time has passed keeps the starts already made.
	l.release(got[4], base.Add(w+time.Millisecond))
	require.Equal(t, []time.Duration{0, 0, w, w + time.Millisecond}, []time.Duration{at(0), at(1), at(5), at(6)})
}
