package redisstore

import (
	"errors"
	"net"
	"time"

	"github.com/redis/go-redis/v9"
)

// subscribe is the Store's one background goroutine: it keeps a subscription to the channel,
// hands every message from other Stores to the Listen functions, and after a failure
// subscribes again with capped exponential backoff until Close.
func (s *Store) subscribe() {
	defer close(s.done)
	wait := s.backoffMin
	for {
		ps := s.newPubSub()
		if ps == nil {
			return
		}
		subscribed, err := s.receive(ps)
		_ = ps.Close()
		if s.ctx.Err() != nil {
			return
		}
		if subscribed {
			wait = s.backoffMin
		}
		s.log.Warn("redisstore: not subscribed; results published meanwhile reach waiters by the resync lookup after re-subscribing",
			"channel", s.channel(), "wait", wait, "error", err)
		t := time.NewTimer(wait)
		select {
		case <-s.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(2*wait, s.backoffMax)
	}
}

// newPubSub returns a subscription object with no I/O done yet, recorded so that Close can
// interrupt it, or nil once the Store is closed.
func (s *Store) newPubSub() *redis.PubSub {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.ps = s.rdb.Subscribe(s.ctx)
	return s.ps
}

// receive subscribes ps and dispatches its messages until the connection fails or the Store
// closes. subscribed reports whether Redis confirmed the subscription.
func (s *Store) receive(ps *redis.PubSub) (subscribed bool, err error) {
	if err := ps.Subscribe(s.ctx, s.channel()); err != nil {
		return false, err
	}
	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(s.ctx, s.healthCheck)
		if err != nil {
			if s.ctx.Err() != nil || !isTimeout(err) || pinged {
				return subscribed, err
			}
			// Quiet channel: make Redis answer, so a silently dead connection is noticed.
			if err := ps.Ping(s.ctx); err != nil {
				return subscribed, err
			}
			pinged = true
			continue
		}
		pinged = false
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" && !subscribed {
				subscribed = true
				s.log.Debug("redisstore: subscribed", "channel", m.Channel)
				s.resynced()
			}
		case *redis.Message:
			s.handle(m.Payload)
		}
	}
}

// handle decodes one channel message and dispatches it unless this Store published it
// (Publish already called the local listeners).
func (s *Store) handle(payload string) {
	r, origin, err := decodeResult([]byte(payload))
	if err != nil {
		s.log.Warn("redisstore: ignoring undecodable message", "channel", s.channel(), "error", err)
		return
	}
	if origin == s.origin {
		return
	}
	s.dispatch(r)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
