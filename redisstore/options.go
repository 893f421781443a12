package redisstore

import (
	"log/slog"
	"time"
)

// Option configures a Store.
type Option func(*Store)

// WithPrefix sets the prefix of every key and of the channel (default DefaultPrefix).
// Replicas that share results must use the same prefix. An empty prefix keeps the default.
func WithPrefix(p string) Option {
	return func(s *Store) {
		if p != "" {
			s.prefix = p
		}
	}
}

// WithDoneRetention sets how long a done marker is kept (default DefaultDoneRetention). Keep
// it well above Kie's retry horizon (about 21 minutes): a callback retried after its marker
// expired is processed again. d <= 0 keeps the default.
func WithDoneRetention(d time.Duration) Option {
	return func(s *Store) {
		if d > 0 {
			s.doneRetention = d
		}
	}
}

// WithResultTTL sets how long a published result stays available to Lookup (default
// DefaultResultTTL). d <= 0 keeps the default.
func WithResultTTL(d time.Duration) Option {
	return func(s *Store) {
		if d > 0 {
			s.resultTTL = d
		}
	}
}

// WithTimeout bounds each Redis operation (default DefaultTimeout), so that an unreachable
// Redis fails a callback quickly instead of using up Kie's 15 s budget. d <= 0 keeps the
// default.
func WithTimeout(d time.Duration) Option {
	return func(s *Store) {
		if d > 0 {
			s.timeout = d
		}
	}
}

// WithReconnectBackoff sets the subscriber's wait between failed subscription attempts: it
// starts at lo and doubles up to hi (defaults DefaultBackoffMin, DefaultBackoffMax).
// Non-positive values keep the defaults; hi below lo is raised to lo.
func WithReconnectBackoff(lo, hi time.Duration) Option {
	return func(s *Store) {
		if lo > 0 {
			s.backoffMin = lo
		}
		if hi > 0 {
			s.backoffMax = hi
		}
		s.backoffMax = max(s.backoffMax, s.backoffMin)
	}
}

// WithLogger sets the logger for subscription losses, re-subscriptions and undecodable
// messages (default: discard). Nil keeps the default.
func WithLogger(l *slog.Logger) Option {
	return func(s *Store) {
		if l != nil {
			s.log = l
		}
	}
}

// WithLeaseTTL sets how long a replica's lease on a journaled task lasts without renewal
// (default DefaultLeaseTTL). runway's Reconcile renews its leases every third of it; a
// crashed replica's tasks are taken over once it has passed. d <= 0 keeps the default.
func WithLeaseTTL(d time.Duration) Option {
	return func(s *Store) {
		if d > 0 {
			s.leaseTTL = d
		}
	}
}
