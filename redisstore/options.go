package redisstore

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Option configures a Store. Build options only with the With* functions; the zero Option does
// nothing. A value that cannot work (an empty prefix, a duration that is not positive, a nil
// logger) is refused, never replaced by the default: leave the option out to get the default.
// New returns no error, so it panics with every refused option, one per line.
type Option struct {
	apply func(*Store) error
}

// WithPrefix sets the prefix of every key and of the channel (default DefaultPrefix).
// Replicas that share results must use the same prefix. It must not be empty.
func WithPrefix(p string) Option {
	return Option{func(s *Store) error {
		if p == "" {
			return fmt.Errorf("WithPrefix: empty prefix; leave the option out for the default %q", DefaultPrefix)
		}
		s.prefix = p
		return nil
	}}
}

// WithDoneRetention sets how long a done marker is kept (default DefaultDoneRetention). Keep
// it well above Kie's retry horizon (about 21 minutes): a callback retried after its marker
// expired is processed again. It must be positive.
func WithDoneRetention(d time.Duration) Option {
	return Option{func(s *Store) error {
		if d <= 0 {
			return fmt.Errorf("WithDoneRetention: %s is not a positive duration; leave the option out for the default %s", d, DefaultDoneRetention)
		}
		s.doneRetention = d
		return nil
	}}
}

// WithResultTTL sets how long a published result stays available to Lookup (default
// DefaultResultTTL). It must be positive.
func WithResultTTL(d time.Duration) Option {
	return Option{func(s *Store) error {
		if d <= 0 {
			return fmt.Errorf("WithResultTTL: %s is not a positive duration; leave the option out for the default %s", d, DefaultResultTTL)
		}
		s.resultTTL = d
		return nil
	}}
}

// WithTimeout bounds each Redis operation (default DefaultTimeout), so that an unreachable
// Redis fails a callback quickly instead of using up Kie's 15 s budget. It must be positive.
func WithTimeout(d time.Duration) Option {
	return Option{func(s *Store) error {
		if d <= 0 {
			return fmt.Errorf("WithTimeout: %s is not a positive duration; leave the option out for the default %s", d, DefaultTimeout)
		}
		s.timeout = d
		return nil
	}}
}

// WithReconnectBackoff sets the subscriber's wait between failed subscription attempts: it
// starts at lo and doubles up to hi (defaults DefaultBackoffMin, DefaultBackoffMax). It needs
// 0 < lo <= hi.
func WithReconnectBackoff(lo, hi time.Duration) Option {
	return Option{func(s *Store) error {
		if lo <= 0 || hi < lo {
			return fmt.Errorf("WithReconnectBackoff: need 0 < lo <= hi, got %s, %s; leave the option out for %s to %s", lo, hi, DefaultBackoffMin, DefaultBackoffMax)
		}
		s.backoffMin, s.backoffMax = lo, hi
		return nil
	}}
}

// WithLogger sets the logger (default: slog.Default() as it is when New is called). l must
// not be nil: to discard, pass slog.New(slog.DiscardHandler). Subscriptions are logged at
// debug level, lost subscriptions and undecodable messages at warn level.
func WithLogger(l *slog.Logger) Option {
	return Option{func(s *Store) error {
		if l == nil {
			return errors.New("WithLogger: nil logger; pass slog.New(slog.DiscardHandler) to discard")
		}
		s.log = l
		return nil
	}}
}

// WithLeaseTTL sets how long a replica's lease on a journaled task lasts without renewal
// (default DefaultLeaseTTL). runway's Reconcile renews its leases every third of it (or of
// its poll interval, if shorter); a crashed replica's tasks are taken over once it has passed. d must be positive: leave the
// option out for the default.
func WithLeaseTTL(d time.Duration) Option {
	return Option{func(s *Store) error {
		if d <= 0 {
			return fmt.Errorf("WithLeaseTTL: %s is not a positive duration; leave the option out for the default %s", d, DefaultLeaseTTL)
		}
		s.leaseTTL = d
		return nil
	}}
}
