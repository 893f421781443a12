package runwaytest

import (
	"math/rand/v2"
	"net/http"
	"time"
)

// Chaos is a seeded random mix of faults. Each rate is a probability in [0, 1].
//
// Task faults are drawn per task from a source seeded with (Seed, creation index), so the n-th
// task created always gets the same script for a seed; which caller's submission becomes the
// n-th depends on arrival order, so assert against the Script.Outcome of the TaskInfo that
// Server.Task(id) returns. Request
// faults are drawn in arrival order from a source seeded with Seed.
//
// Request faults are chosen so that a correct client loses nothing: submissions only ever
// get 429 (no task is created, the client may retry it); polls, credits and download-url get
// 429, 5xx, HTTP 200 with a retryable body code (429, 455, 500), slow answers, resets and HTML
// gateway pages. Faults come in bursts of 1 to MaxBurst answers to the same request (same
// path, query and body, as a retry is), and each distinct request gets at most one burst: a
// client that retries a request at least MaxBurst times always gets through, however
// concurrent identical requests interleave. Identical requests share one burst, so give
// concurrent submissions distinct prompts to spread the faults.
type Chaos struct {
	Seed uint64
	// Fail is the share of tasks that fail, each with a message drawn from DocumentedFailures.
	Fail float64
	// Drop, Duplicate, Delay, Early and AlephShape are per-task callback fault rates.
	// Duplicates send 2 to 4 copies, half of them concurrently; delays are up to MaxDelay.
	Drop, Duplicate, Delay, Early, AlephShape float64
	// FailCodeAsString is the share of tasks whose failCode is rendered as a string.
	FailCodeAsString float64
	// MaxDelay bounds callback delays (default 20 ms).
	MaxDelay time.Duration
	// SubmitRateLimit is the share of submissions answered with 429 (Retry-After: 1).
	SubmitRateLimit float64
	// PollErrors is the share of details/credit/download-url requests that start a fault burst.
	PollErrors float64
	// MaxBurst bounds the length of a fault burst (default 3).
	MaxBurst int
	// SlowDelay is the delay of slow-answer faults (default 5 ms).
	SlowDelay time.Duration
}

// DefaultChaos returns a mix with every fault turned on at a moderate rate, for seed.
func DefaultChaos(seed uint64) Chaos {
	return Chaos{
		Seed:             seed,
		Fail:             0.3,
		Drop:             0.15,
		Duplicate:        0.15,
		Delay:            0.15,
		Early:            0.1,
		AlephShape:       0.1,
		FailCodeAsString: 0.1,
		SubmitRateLimit:  0.05,
		PollErrors:       0.1,
	}
}

type chaosState struct {
	c        Chaos
	failures []Outcome
	req      *rand.Rand
	bursts   map[string]*burst
}

func newChaosState(c Chaos) *chaosState {
	if c.MaxDelay <= 0 {
		c.MaxDelay = 20 * time.Millisecond
	}
	if c.MaxBurst <= 0 {
		c.MaxBurst = 3
	}
	if c.SlowDelay <= 0 {
		c.SlowDelay = 5 * time.Millisecond
	}
	return &chaosState{
		c:        c,
		failures: DocumentedFailures(),
		req:      rand.New(rand.NewPCG(c.Seed, 0x9e3779b97f4a7c15)),
		bursts:   make(map[string]*burst),
	}
}

// script draws the n-th task's script.
func (cs *chaosState) script(n uint64) Script {
	r := rand.New(rand.NewPCG(cs.c.Seed, n))
	c := cs.c
	sc := Script{Outcome: Success()}
	if r.Float64() < c.Fail {
		sc.Outcome = cs.failures[r.IntN(len(cs.failures))]
	}
	cb := &sc.Callback
	cb.Drop = r.Float64() < c.Drop
	if r.Float64() < c.Duplicate {
		cb.Copies = 2 + r.IntN(3)
		cb.Concurrent = r.IntN(2) == 0
	}
	if r.Float64() < c.Delay {
		cb.Delay = time.Duration(r.Int64N(int64(c.MaxDelay)) + 1)
	}
	cb.Early = r.Float64() < c.Early
	if r.Float64() < c.AlephShape {
		cb.Shape = ShapeAleph
	}
	sc.Poll.FailCodeAsString = r.Float64() < c.FailCodeAsString
	return sc
}

func isSubmission(path string) bool {
	return path == PathGenerate || path == PathExtend || path == PathAlephGenerate
}

// burst is the chaos state of one request key (path, query and body). A retried request has
// the same key, and each key gets at most one burst, so no caller sees more than MaxBurst
// faults for one request however concurrent callers interleave.
type burst struct {
	left  int // more faulty answers in this burst
	fault APIFault
}

// requestFault draws the fault (or nil) for a request; called with Server.mu held.
func (cs *chaosState) requestFault(path, key string) *APIFault {
	var rate float64
	var kinds []APIFault
	switch {
	case isSubmission(path):
		rate, kinds = cs.c.SubmitRateLimit, []APIFault{RateLimited("1")}
	case path == PathRecordDetail || path == PathAlephRecordInfo || path == PathCredit || path == PathDownloadURL:
		rate, kinds = cs.c.PollErrors, cs.pollFaults()
	default:
		return nil
	}
	if b, ok := cs.bursts[key]; ok {
		if b.left == 0 {
			return nil // this request had its burst
		}
		b.left--
		f := b.fault
		return &f
	}
	if cs.req.Float64() >= rate {
		return nil
	}
	b := &burst{left: cs.req.IntN(cs.c.MaxBurst), fault: kinds[cs.req.IntN(len(kinds))]}
	cs.bursts[key] = b
	f := b.fault
	return &f
}

func (cs *chaosState) pollFaults() []APIFault {
	return []APIFault{
		RateLimited("1"),
		ServerError(http.StatusInternalServerError),
		ServerError(http.StatusBadGateway),
		ServerError(http.StatusServiceUnavailable),
		ServerError(http.StatusGatewayTimeout),
		BodyError(500, "Server error"),
		BodyError(455, "Service unavailable, under maintenance"),
		BodyError(429, "Too many requests"),
		SlowResponse(cs.c.SlowDelay),
		ConnectionReset(),
		NonJSON(http.StatusBadGateway),
	}
}

// SetChaos replaces the chaos mix for tasks and requests from now on (see WithChaos).
func (s *Server) SetChaos(c Chaos) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.chaos = newChaosState(c)
}
