// Package redisstore shares runway-go's callback dedupe and result fan-out between several
// replicas through Redis.
//
// A Store implements runway.Deduper (pass it to runway.WithDeduper) and runway.ResultBus
// (pass it to runway.WithResultBus), so that a callback delivered to any replica runs the
// result func once across all of them and wakes WaitForResult callers on every replica.
// It also implements runway.Journal and runway.LeasingJournal (pass it to runway.WithJournal):
// the pending tasks live in Redis, and the replicas running CallbackHandler.Reconcile share
// them out by leases, each task polled by one live replica at a time; a crashed replica's
// tasks are leased by another once its leases lapse (WithLeaseTTL, default 60 s), and
// polled within 100 s of the crash with the default poll interval.
//
// # Keys and channels
//
// With the default prefix "runway:":
//
//	runway:claim:<key>      dedupe claim: an owner token for the claim TTL, then "done" for
//	                        the done retention (default 24 h)
//	runway:result:<taskID>  the result as JSON, for the result TTL (default 1 h)
//	runway:results          pub/sub channel carrying every published result to every Store
//	runway:{journal}        hash: task id -> journal entry as JSON; no TTL, an entry stays
//	                        until its outcome is handled (or Reconcile abandons it)
//	runway:{journal}:lease  sorted set: task id -> its lease's expiry in Unix ms on the Redis
//	                        server's clock, 0 when free; Lease takes the members scored up to
//	                        now (ZRANGEBYSCORE ... LIMIT), so no tick scans every entry
//	runway:{journal}:owner  hash: task id -> the owner token of its current lease
//
// The three journal keys share the hash tag {journal}, so that the scripts that touch them
// together run on Redis Cluster too. Add, Remove and each leased, renewed or
// freed task cost O(log n) in the number of pending tasks.
//
// The journal is only as durable as Redis' persistence: Add returns once Redis has the entry
// in memory, not on disk. Without persistence a Redis restart forgets every pending task
// (and with RDB snapshots alone, those added since the last snapshot); with "appendonly yes"
// and "appendfsync everysec" (recommended) at most about a second of writes is lost, and
// "appendfsync always" loses none. A replica promoted by an asynchronous failover may also
// miss the latest entries.
//
// # Failure behaviour
//
// Every operation runs under a short timeout (WithTimeout, default 1 s) and returns an error
// when Redis cannot be reached, so the callback handler answers 5xx and Kie retries instead of
// processing without dedupe. The subscriber re-subscribes by itself, with capped backoff,
// once Redis is back. Results published while a Store was not subscribed do not reach its
// listeners, but they are in Redis: after every subscription the Store calls its OnResync
// functions (runway.ResyncNotifier), and a runway.Client then looks up every task it is
// waiting for, so its waiters return at once instead of at their next poll.
//
// The timeout bounds a hung connection only if the go-redis client was created with
// ContextTimeoutEnabled: true; otherwise its ReadTimeout and WriteTimeout (3 s by default)
// do.
package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"sync"
	"time"

	runway "github.com/b9c9aec2/runway-go"
	"github.com/redis/go-redis/v9"
)

// Defaults of a Store's options.
const (
	DefaultPrefix        = "runway:"
	DefaultDoneRetention = 24 * time.Hour
	DefaultResultTTL     = time.Hour
	DefaultTimeout       = time.Second
	DefaultBackoffMin    = 50 * time.Millisecond
	DefaultBackoffMax    = time.Second
	// defaultHealthCheck is how long the subscriber waits for traffic before it pings
	// Redis; an unanswered ping after another such period counts as a dead connection.
	defaultHealthCheck = 5 * time.Second
)

var (
	_ runway.Deduper        = (*Store)(nil)
	_ runway.ResultBus      = (*Store)(nil)
	_ runway.ResyncNotifier = (*Store)(nil)
)

// Store is a Redis-backed runway.Deduper and runway.ResultBus. It is safe for concurrent
// use. The first Listen starts one background subscriber; Close stops it.
type Store struct {
	rdb           redis.UniversalClient
	prefix        string
	doneRetention time.Duration
	resultTTL     time.Duration
	timeout       time.Duration
	backoffMin    time.Duration
	backoffMax    time.Duration
	healthCheck   time.Duration
	leaseTTL      time.Duration
	log           *slog.Logger
	origin        string // random id of this Store, to skip its own messages

	ctx    context.Context // lives until Close; cancels the subscriber
	cancel context.CancelFunc

	mu        sync.Mutex
	listeners map[uint64]func(*runway.Result)
	resyncs   map[uint64]func(context.Context)
	nextID    uint64
	started   bool
	closed    bool
	ps        *redis.PubSub // the subscriber's current subscription, if any
	done      chan struct{} // closed when the subscriber has returned
}

// New returns a Store that uses rdb, which the caller keeps owning (Close does not close
// it). Options left out take the defaults above. New panics when rdb is nil or an option holds
// a value that cannot work (see Option), naming each such option and what to do.
func New(rdb redis.UniversalClient, opts ...Option) *Store {
	s := &Store{
		rdb:           rdb,
		prefix:        DefaultPrefix,
		doneRetention: DefaultDoneRetention,
		resultTTL:     DefaultResultTTL,
		timeout:       DefaultTimeout,
		backoffMin:    DefaultBackoffMin,
		backoffMax:    DefaultBackoffMax,
		healthCheck:   defaultHealthCheck,
		leaseTTL:      DefaultLeaseTTL,
		log:           slog.Default(),
		origin:        randomHex(),
		listeners:     make(map[uint64]func(*runway.Result)),
		resyncs:       make(map[uint64]func(context.Context)),
		done:          make(chan struct{}),
	}
	var errs []error
	if rdb == nil {
		errs = append(errs, errors.New("nil redis client; pass a go-redis client such as redis.NewClient(...)"))
	}
	for _, o := range opts {
		if o.apply == nil {
			continue
		}
		if err := o.apply(s); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		panic("redisstore: New: " + errors.Join(errs...).Error())
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// Close stops the subscriber and waits for it to return. Listen functions receive no more
// results from other Stores afterwards. Claim, Done, Release, Publish and Lookup keep
// working until the go-redis client is closed. Close is idempotent and returns nil.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		<-s.done
		return nil
	}
	s.closed = true
	started, ps := s.started, s.ps
	s.mu.Unlock()
	s.cancel()
	if ps != nil {
		_ = ps.Close() // interrupts a blocked receive
	}
	if !started {
		close(s.done)
	}
	<-s.done
	return nil
}

// opCtx bounds one Redis operation by the Store's timeout.
func (s *Store) opCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.timeout)
}

func (s *Store) claimKey(key string) string     { return s.prefix + "claim:" + key }
func (s *Store) resultKey(taskID string) string { return s.prefix + "result:" + taskID }
func (s *Store) channel() string                { return s.prefix + "results" }

// randomHex returns 128 random bits in hex.
func randomHex() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand since Go 1.24)
	return hex.EncodeToString(b[:])
}
