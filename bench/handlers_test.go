package bench

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain fails the run if a handler (the SDK's client starts goroutines) outlives the
// benchmark that built it.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// serveOnce delivers r to h and returns the status.
func serveOnce(h http.Handler, r *http.Request) int {
	w := &writer{header: make(http.Header)}
	h.ServeHTTP(w, r)
	return w.code
}

// TestHandlersDoTheirWork pins what the benchmark compares: each signing handler accepts a
// delivery signed with its scheme and runs the func once, answers a second delivery of the
// same task 200 without running it again, and refuses a body whose signature does not match
// (for the SDK, a delivery signed for another task id) without running the func. The floor
// only decodes.
func TestHandlersDoTheirWork(t *testing.T) {
	for _, tc := range []struct {
		name   string
		scheme scheme
		build  handlerFunc
	}{
		{"sdk", kieScheme, sdkHandler},
		{"stripe", stripeScheme, stripeHandler},
		{"standardwebhooks", standardScheme, standardHandler},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int64
			h, closeHandler := tc.build(t, &calls)
			defer closeHandler()
			now := time.Now()

			id := nextTaskID()
			body := []byte(callbackBody(id))
			if got := serveOnce(h, newRequest(body, tc.scheme(t, id, body, now))); got != http.StatusOK {
				t.Fatalf("first delivery: status %d, want 200", got)
			}
			if got := serveOnce(h, newRequest(body, tc.scheme(t, id, body, now))); got != http.StatusOK {
				t.Fatalf("duplicate delivery: status %d, want 200", got)
			}
			if got := calls.Load(); got != 1 {
				t.Fatalf("func ran %d times for one task delivered twice, want 1", got)
			}

			// Headers signed for another delivery: the Kie scheme signs the task id, the
			// others the body, so each gets the headers of a different task's body.
			other := nextTaskID()
			otherBody := []byte(callbackBody(other))
			forged := nextTaskID()
			forgedBody := []byte(callbackBody(forged))
			if got := serveOnce(h, newRequest(forgedBody, tc.scheme(t, other, otherBody, now))); got != http.StatusUnauthorized {
				t.Fatalf("forged delivery: status %d, want 401", got)
			}
			if got := calls.Load(); got != 1 {
				t.Fatalf("func ran for a forged delivery (%d calls)", got)
			}
		})
	}
	t.Run("floor", func(t *testing.T) {
		var calls atomic.Int64
		h, closeHandler := floorHandler(t, &calls)
		defer closeHandler()
		id := nextTaskID()
		body := []byte(callbackBody(id))
		if got := serveOnce(h, newRequest(body, kieScheme(t, id, body, time.Now()))); got != http.StatusOK {
			t.Fatalf("status %d, want 200", got)
		}
		if got := serveOnce(h, newRequest([]byte("{"), nil)); got != http.StatusBadRequest {
			t.Fatalf("truncated body: status %d, want 400", got)
		}
		if got := calls.Load(); got != 1 {
			t.Fatalf("func ran %d times, want 1", got)
		}
	})
}
