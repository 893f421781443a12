package redisstore

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	runway "github.com/b9c9aec2/runway-go"
	"github.com/b9c9aec2/runway-go/runwaytest"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// testHMACKey signs the fake's callbacks; every replica's handler checks it.
const testHMACKey = "replicas-hmac-key"

// replica is one instance of a service: a runway.Client whose result bus is its own Store on
// the shared Redis, and that client's CallbackHandler, deduping through the same Store, on
// its own loopback server.
type replica struct {
	store  *Store
	client *runway.Client
	srv    *httptest.Server
}

// newReplica starts a replica talking to the fake Kie API; fn is its result func.
func newReplica(t *testing.T, rdb redis.UniversalClient, prefix string, api *runwaytest.Server, fn func(context.Context, *runway.Result) error) *replica {
	t.Helper()
	store := New(rdb, WithPrefix(prefix), WithTimeout(200*time.Millisecond),
		WithReconnectBackoff(time.Millisecond, 20*time.Millisecond))
	t.Cleanup(func() { _ = store.Close() })
	c, err := runway.NewClient(api.APIKey, runway.WithBaseURL(api.URL), runway.WithResultBus(store),
		runway.WithSubmitRateLimit(0, 0))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	srv := httptest.NewServer(c.CallbackHandler(runway.WithDeduper(store), runway.WithHMACKey(testHMACKey),
		runway.WithResultFunc(fn)))
	t.Cleanup(srv.Close)
	return &replica{store: store, client: c, srv: srv}
}

// rotator is the load balancer in front of the replicas' callback handlers. Each task gets
// its own callback path; the k-th delivery to path number n goes to replica (n+k) mod the
// number of replicas, so a task's retries and duplicate copies always land on another replica
// than the delivery before them.
type rotator struct {
	srv     *httptest.Server
	tr      *http.Transport
	targets []*url.URL

	mu     sync.Mutex
	counts map[string]int   // deliveries per path
	landed map[string][]int // replica index of each delivery, per path
}

func newRotator(t *testing.T, replicas []*replica) *rotator {
	t.Helper()
	r := &rotator{
		tr:     http.DefaultTransport.(*http.Transport).Clone(),
		counts: make(map[string]int),
		landed: make(map[string][]int),
	}
	for _, rep := range replicas {
		u, err := url.Parse(rep.srv.URL)
		require.NoError(t, err)
		r.targets = append(r.targets, u)
	}
	proxy := &httputil.ReverseProxy{Transport: r.tr, Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(r.targets[r.route(pr.In.URL.Path)])
	}}
	r.srv = httptest.NewServer(proxy)
	t.Cleanup(func() {
		r.srv.Close()
		r.tr.CloseIdleConnections()
	})
	return r
}

// route picks the replica for the next delivery to path "/cb/<n>".
func (r *rotator) route(path string) int {
	n, _ := strconv.Atoi(strings.TrimPrefix(path, "/cb/"))
	r.mu.Lock()
	defer r.mu.Unlock()
	i := (n + r.counts[path]) % len(r.targets)
	r.counts[path]++
	r.landed[path] = append(r.landed[path], i)
	return i
}

// callbackURL returns the callback URL of task number n.
func (r *rotator) callbackURL(n int) string { return r.srv.URL + "/cb/" + strconv.Itoa(n) }

// replicasHit returns the distinct replicas that received deliveries for task number n.
func (r *rotator) replicasHit(n int) map[int]bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	hit := make(map[int]bool)
	for _, i := range r.landed["/cb/"+strconv.Itoa(n)] {
		hit[i] = true
	}
	return hit
}

// callCounter is the result func shared by the replicas: it counts runs per task id across
// all of them.
type callCounter struct {
	mu    sync.Mutex
	calls map[string]int
}

func (cc *callCounter) fn(_ context.Context, r *runway.Result) error {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.calls == nil {
		cc.calls = make(map[string]int)
	}
	cc.calls[r.TaskID]++
	return nil
}

func (cc *callCounter) count(taskID string) int {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.calls[taskID]
}

// waitOutcome is what one WaitForResult call returned.
type waitOutcome struct {
	replica int
	taskID  string
	res     *runway.Result
	err     error
}

// startWait runs WaitForResult with an hour between polls, so that after its first poll only
// the result bus can end it within the test.
func startWait(ctx context.Context, wg *sync.WaitGroup, out chan<- waitOutcome, c *runway.Client, replica int, taskID string) {
	wg.Go(func() {
		res, err := c.WaitForResult(ctx, taskID, runway.WithPollInterval(time.Hour))
		out <- waitOutcome{replica: replica, taskID: taskID, res: res, err: err}
	})
}

// detailGets counts the fake's answered GETs of the task details endpoint.
func detailGets(api *runwaytest.Server) int {
	n := 0
	for _, r := range api.Requests() {
		if r.Method == http.MethodGet && r.Path == runwaytest.PathRecordDetail {
			n++
		}
	}
	return n
}

// generate submits a task through c with its callback URL.
func generate(ctx context.Context, t *testing.T, c *runway.Client, callbackURL string) string {
	t.Helper()
	id, err := c.Generate(ctx, runway.GenerateRequest{
		Prompt: "replica test", Duration: 5, Quality: runway.Quality720p,
		AspectRatio: runway.AspectRatio16x9, CallBackURL: callbackURL,
	})
	require.NoError(t, err)
	return id
}
