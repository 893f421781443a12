package redisstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	runway "github.com/b9c9aec2/runway-go"
	"github.com/redis/go-redis/v9"
)

// doneMarker is the claim key's value once processed; tokens are hex, so never equal to it.
const doneMarker = "done"

// claimScript is SET key token NX PX ttl, plus a read of the value it found, in one atomic
// step: 1 acquired, 2 busy, 3 done.
var claimScript = redis.NewScript(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
	return 1
end
if redis.call('GET', KEYS[1]) == ARGV[3] then
	return 3
end
return 2
`)

// doneScript replaces the owner's token with the done marker: 1 done, 0 not the owner.
var doneScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
	redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
	return 1
end
return 0
`)

// releaseScript deletes the claim if token owns it: 1 released, 0 not the owner.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
	return redis.call('DEL', KEYS[1])
end
return 0
`)

// Claim implements runway.Deduper with SET NX PX under the key's claim key. It returns an
// error, and never ClaimAcquired, when Redis cannot be reached.
func (s *Store) Claim(ctx context.Context, key string, ttl time.Duration) (runway.ClaimStatus, string, error) {
	if key == "" {
		return 0, "", errors.New("redisstore: claim: empty key")
	}
	if ttl < time.Millisecond {
		return 0, "", fmt.Errorf("redisstore: claim: ttl %v below 1ms", ttl)
	}
	token := randomHex()
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	n, err := claimScript.Run(ctx, s.rdb, []string{s.claimKey(key)}, token, ttl.Milliseconds(), doneMarker).Int()
	if err != nil {
		return 0, "", fmt.Errorf("redisstore: claim: %w", err)
	}
	switch n {
	case 1:
		return runway.ClaimAcquired, token, nil
	case 2:
		return runway.ClaimBusy, "", nil
	case 3:
		return runway.ClaimDone, "", nil
	}
	return 0, "", fmt.Errorf("redisstore: claim: unexpected script reply %d", n)
}

// Done implements runway.Deduper: the claim becomes a done marker kept for the done
// retention. It returns an error wrapping runway.ErrClaimLost when token no longer owns key.
func (s *Store) Done(ctx context.Context, key, token string) error {
	return s.ifOwner(ctx, "done", doneScript, key, token, doneMarker, s.doneRetention.Milliseconds())
}

// Release implements runway.Deduper: the claim is deleted so that a retried delivery can
// take it. It returns an error wrapping runway.ErrClaimLost when token no longer owns key.
func (s *Store) Release(ctx context.Context, key, token string) error {
	return s.ifOwner(ctx, "release", releaseScript, key, token)
}

// ifOwner runs a compare-and-set script that returns 0 when token does not own key.
func (s *Store) ifOwner(ctx context.Context, op string, script *redis.Script, key, token string, args ...any) error {
	if key == "" || token == "" || token == doneMarker {
		return fmt.Errorf("redisstore: %s: %w", op, runway.ErrClaimLost)
	}
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	n, err := script.Run(ctx, s.rdb, []string{s.claimKey(key)}, append([]any{token}, args...)...).Int()
	if err != nil {
		return fmt.Errorf("redisstore: %s: %w", op, err)
	}
	if n == 0 {
		return fmt.Errorf("redisstore: %s: %w", op, runway.ErrClaimLost)
	}
	return nil
}
