package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	runway "github.com/b9c9aec2/runway-go"
	"github.com/redis/go-redis/v9"
)

// DefaultLeaseTTL is how long a replica's lease on a journaled task lasts without renewal.
// runway's Reconcile renews every third of it (or of its poll interval, if shorter), so a
// crashed replica's tasks are leased by another at most DefaultLeaseTTL plus a refresh period
// (10 s with the default 30 s poll interval) after its last renewal, and each is polled
// within an interval after that: within 100 s of the crash, under two minutes.
const DefaultLeaseTTL = 60 * time.Second

var (
	_ runway.Journal        = (*Store)(nil)
	_ runway.JournalReader  = (*Store)(nil)
	_ runway.LeasingJournal = (*Store)(nil)
)

// journalScanCount is the COUNT hint of Pending's HSCAN steps.
const journalScanCount = 1000

// journalAddScript stores the entry and makes it leasable, keeping a lease it may already have.
var journalAddScript = redis.NewScript(`
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], 'NX', 0, ARGV[1])
return 1
`)

// journalRemoveScript forgets the entry and its lease.
var journalRemoveScript = redis.NewScript(`
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return 1
`)

// leaseNow is the server's clock in milliseconds: every replica's leases are measured against
// one clock, whatever the skew between the replicas' own.
const leaseNow = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`

// journalLeaseScript leases up to ARGV[3] entries whose lease score (0 when free, else the
// expiry) has passed to owner ARGV[1] for ARGV[2] ms, and returns their JSON.
var journalLeaseScript = redis.NewScript(leaseNow + `
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, id in ipairs(ids) do
	local e = redis.call('HGET', KEYS[1], id)
	if e then
		redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), id)
		redis.call('HSET', KEYS[3], id, ARGV[1])
		out[#out + 1] = e
	else
		redis.call('ZREM', KEYS[2], id)
		redis.call('HDEL', KEYS[3], id)
	end
end
return out
`)

// journalRenewScript extends owner ARGV[1]'s leases on ARGV[3..] by ARGV[2] ms and returns
// the ids it does not hold.
var journalRenewScript = redis.NewScript(leaseNow + `
local lost = {}
for i = 3, #ARGV do
	local id = ARGV[i]
	if redis.call('HGET', KEYS[3], id) == ARGV[1] and redis.call('ZSCORE', KEYS[2], id) then
		redis.call('ZADD', KEYS[2], 'XX', now + tonumber(ARGV[2]), id)
	else
		lost[#lost + 1] = id
	end
end
return lost
`)

// journalUnleaseScript frees owner ARGV[1]'s leases on ARGV[2..].
var journalUnleaseScript = redis.NewScript(`
for i = 2, #ARGV do
	local id = ARGV[i]
	if redis.call('HGET', KEYS[3], id) == ARGV[1] then
		redis.call('HDEL', KEYS[3], id)
		redis.call('ZADD', KEYS[2], 'XX', 0, id)
	end
end
return 1
`)

// journalKeys are the entries hash, the lease sorted set and the owner hash. They share the
// hash tag {journal}, so that the scripts touching all three run on a Redis Cluster too.
func (s *Store) journalKeys() []string {
	k := s.prefix + "{journal}"
	return []string{k, k + ":lease", k + ":owner"}
}

// Add implements runway.Journal: the entry is stored (replacing one with the same task id)
// and can be leased at once.
func (s *Store) Add(ctx context.Context, e runway.JournalEntry) error {
	if e.TaskID == "" {
		return errors.New("redisstore: journal add: empty task id")
	}
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("redisstore: journal add: %w", err)
	}
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	if err := journalAddScript.Run(ctx, s.rdb, s.journalKeys(), e.TaskID, b).Err(); err != nil {
		return fmt.Errorf("redisstore: journal add: %w", err)
	}
	return nil
}

// Remove implements runway.Journal. Removing an absent id is not an error.
func (s *Store) Remove(ctx context.Context, taskID string) error {
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	if err := journalRemoveScript.Run(ctx, s.rdb, s.journalKeys(), taskID).Err(); err != nil {
		return fmt.Errorf("redisstore: journal remove: %w", err)
	}
	return nil
}

// Pending implements runway.Journal by walking the entries hash with HSCAN (each step under
// the Store's timeout). Reconcile does not call it on a Store: it leases.
func (s *Store) Pending(ctx context.Context) ([]runway.JournalEntry, error) {
	key := s.journalKeys()[0]
	var out []runway.JournalEntry
	var cursor uint64
	for {
		octx, cancel := s.opCtx(ctx)
		kv, next, err := s.rdb.HScan(octx, key, cursor, "*", journalScanCount).Result()
		cancel()
		if err != nil {
			return nil, fmt.Errorf("redisstore: journal pending: %w", err)
		}
		for i := 1; i < len(kv); i += 2 {
			e, err := decodeEntry(kv[i])
			if err != nil {
				return nil, err
			}
			out = append(out, e)
		}
		if next == 0 {
			return dedupeEntries(out), nil
		}
		cursor = next
	}
}

// dedupeEntries drops the repeats HSCAN may return when the hash changes during the walk.
func dedupeEntries(es []runway.JournalEntry) []runway.JournalEntry {
	seen := make(map[string]struct{}, len(es))
	out := es[:0]
	for _, e := range es {
		if _, ok := seen[e.TaskID]; ok {
			continue
		}
		seen[e.TaskID] = struct{}{}
		out = append(out, e)
	}
	return out
}

// Entry implements runway.JournalReader.
func (s *Store) Entry(ctx context.Context, taskID string) (*runway.JournalEntry, error) {
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	v, err := s.rdb.HGet(ctx, s.journalKeys()[0], taskID).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("redisstore: journal entry: %w", err)
	}
	e, err := decodeEntry(v)
	if err != nil {
		return nil, err
	}
	return &e, nil
}

// Lease implements runway.LeasingJournal with one script: the entries whose lease score
// (0 when free, else its expiry on the server's clock) has passed, at most max of them, are
// given to owner until now + LeaseTTL.
func (s *Store) Lease(ctx context.Context, owner string, max int) ([]runway.JournalEntry, error) {
	if owner == "" || max <= 0 {
		return nil, errors.New("redisstore: journal lease: need an owner and max > 0")
	}
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	vals, err := journalLeaseScript.Run(ctx, s.rdb, s.journalKeys(), owner, s.leaseTTL.Milliseconds(), max).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("redisstore: journal lease: %w", err)
	}
	out := make([]runway.JournalEntry, 0, len(vals))
	for _, v := range vals {
		e, err := decodeEntry(v)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// Renew implements runway.LeasingJournal.
func (s *Store) Renew(ctx context.Context, owner string, taskIDs []string) ([]string, error) {
	if len(taskIDs) == 0 {
		return nil, nil
	}
	args := make([]any, 0, 2+len(taskIDs))
	args = append(args, owner, s.leaseTTL.Milliseconds())
	for _, id := range taskIDs {
		args = append(args, id)
	}
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	lost, err := journalRenewScript.Run(ctx, s.rdb, s.journalKeys(), args...).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("redisstore: journal renew: %w", err)
	}
	return lost, nil
}

// Unlease implements runway.LeasingJournal.
func (s *Store) Unlease(ctx context.Context, owner string, taskIDs []string) error {
	if len(taskIDs) == 0 {
		return nil
	}
	args := make([]any, 0, 1+len(taskIDs))
	args = append(args, owner)
	for _, id := range taskIDs {
		args = append(args, id)
	}
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	if err := journalUnleaseScript.Run(ctx, s.rdb, s.journalKeys(), args...).Err(); err != nil {
		return fmt.Errorf("redisstore: journal unlease: %w", err)
	}
	return nil
}

// LeaseTTL implements runway.LeasingJournal (WithLeaseTTL, default DefaultLeaseTTL).
func (s *Store) LeaseTTL() time.Duration { return s.leaseTTL }

func decodeEntry(v string) (runway.JournalEntry, error) {
	var e runway.JournalEntry
	if err := json.Unmarshal([]byte(v), &e); err != nil {
		return e, fmt.Errorf("redisstore: journal: undecodable entry: %w", err)
	}
	if e.TaskID == "" {
		return e, errors.New("redisstore: journal: entry without a task id")
	}
	return e, nil
}
