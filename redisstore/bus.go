package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	runway "github.com/b9c9aec2/runway-go"
	"github.com/redis/go-redis/v9"
)

// publishScript stores the result and announces it in one atomic step, sending the payload
// to Redis once.
var publishScript = redis.NewScript(`
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return redis.call('PUBLISH', ARGV[3], ARGV[1])
`)

// wireResult is the JSON kept in Redis and sent on the channel. It carries every field of
// runway.Result through the embedded pointer; Raw is shadowed by a []byte so that it travels
// as base64, byte for byte (json.RawMessage would be compacted, and refused if invalid).
type wireResult struct {
	*runway.Result
	Raw    []byte `json:"raw,omitempty"`
	Origin string `json:"origin,omitempty"`
}

func encodeResult(r *runway.Result, origin string) ([]byte, error) {
	return json.Marshal(wireResult{Result: r, Raw: r.Raw, Origin: origin})
}

func decodeResult(b []byte) (*runway.Result, string, error) {
	w := wireResult{Result: new(runway.Result)}
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, "", err
	}
	if w.TaskID == "" {
		return nil, "", errors.New("result without task id")
	}
	w.Result.Raw = w.Raw
	return w.Result, w.Origin, nil
}

// Publish implements runway.ResultBus: it stores r for the result TTL, announces it to every
// Store on the channel, and then calls this Store's own Listen functions on the caller's
// goroutine (so local waiters do not depend on the subscription). Other Stores call theirs
// from their subscriber. It returns an error, and calls no listener, if Redis cannot be
// reached.
func (s *Store) Publish(ctx context.Context, r *runway.Result) error {
	if r == nil || r.TaskID == "" {
		return errors.New("redisstore: publish: result without task id")
	}
	b, err := encodeResult(r, s.origin)
	if err != nil {
		return fmt.Errorf("redisstore: publish: %w", err)
	}
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	err = publishScript.Run(ctx, s.rdb, []string{s.resultKey(r.TaskID)}, b, s.resultTTL.Milliseconds(), s.channel()).Err()
	if err != nil {
		return fmt.Errorf("redisstore: publish: %w", err)
	}
	s.dispatch(r)
	return nil
}

// Lookup implements runway.ResultBus with a GET of the result key.
func (s *Store) Lookup(ctx context.Context, taskID string) (*runway.Result, error) {
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	b, err := s.rdb.Get(ctx, s.resultKey(taskID)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("redisstore: lookup: %w", err)
	}
	r, _, err := decodeResult(b)
	if err != nil {
		return nil, fmt.Errorf("redisstore: lookup: %w", err)
	}
	return r, nil
}

// Listen implements runway.ResultBus. fn is called for every result published through this
// Store and, while the subscription is up, for every result published through other Stores
// with the same prefix; it must not block. The first call starts the subscriber.
func (s *Store) Listen(fn func(*runway.Result)) (stop func()) {
	s.mu.Lock()
	id := s.nextID
	s.nextID++
	s.listeners[id] = fn
	if !s.started && !s.closed {
		s.started = true
		go s.subscribe()
	}
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		delete(s.listeners, id)
		s.mu.Unlock()
	}
}

// dispatch calls every Listen function with r.
func (s *Store) dispatch(r *runway.Result) {
	s.mu.Lock()
	fns := make([]func(*runway.Result), 0, len(s.listeners))
	for _, fn := range s.listeners {
		fns = append(fns, fn)
	}
	s.mu.Unlock()
	for _, fn := range fns {
		fn(r)
	}
}

// OnResync implements runway.ResyncNotifier: fn is called on the subscriber goroutine each
// time Redis confirms the subscription, the first time and after every reconnection, before
// any message of the new subscription is dispatched. Results published while the Store was
// not subscribed are then in Redis for Lookup (for the result TTL). ctx ends when the Store
// closes. OnResync does not start the subscriber; Listen does.
func (s *Store) OnResync(fn func(ctx context.Context)) (stop func()) {
	s.mu.Lock()
	id := s.nextID
	s.nextID++
	s.resyncs[id] = fn
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		delete(s.resyncs, id)
		s.mu.Unlock()
	}
}

// resynced calls every OnResync function.
func (s *Store) resynced() {
	s.mu.Lock()
	fns := make([]func(context.Context), 0, len(s.resyncs))
	for _, fn := range s.resyncs {
		fns = append(fns, fn)
	}
	s.mu.Unlock()
	for _, fn := range fns {
		fn(s.ctx)
	}
}
