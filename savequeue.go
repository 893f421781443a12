package runway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
)

// SaveQueue saves results in the background with a fixed number of workers and a bounded
// queue, so a callback handler can hand a result over and answer Kie within its 15 s budget:
// pass q.Enqueue to WithResultFunc. Saves run under the queue's own context, not the
// callback request's, each bounded by WithDownloadTimeout (default DefaultDownloadTimeout),
// so a slow host cannot pin a worker. Report failures with WithOnSaved; they are also logged
// at Warn ("runway: background save failed", with task_id and error) to the client's
// WithLogger, or to slog.Default() when the client has none. Results still queued when
// Close gives up are not saved; see Close.
// A result lost in a crash before it was saved is not retried by Kie (it got its 200), so
// pair the queue with a periodic sweep (GetTask + SaveResult) if every file must be kept.
type SaveQueue struct {
	c   *Client
	dir string
	cfg downloadConfig // the options, applied once

	jobs   chan *Result
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.RWMutex
	closed bool

	dropMu  sync.Mutex
	dropped []*Result // queued results not started because Close gave up
}

// NewSaveQueue starts workers goroutines that save results into dir, with room for capacity
// waiting results. Both must be at least 1. Call Close to drain and stop the workers.
func NewSaveQueue(c *Client, dir string, workers, capacity int, opts ...DownloadOption) (*SaveQueue, error) {
	if c == nil {
		return nil, errors.New("runway: NewSaveQueue: nil client")
	}
	if dir == "" {
		return nil, errors.New("runway: NewSaveQueue: empty directory")
	}
	if workers < 1 || capacity < 1 {
		return nil, fmt.Errorf("runway: NewSaveQueue: need workers >= 1 and capacity >= 1, got %d, %d", workers, capacity)
	}
	cfg, err := c.downloadConfig("NewSaveQueue", opts)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	q := &SaveQueue{
		c: c, dir: dir, cfg: cfg,
		jobs: make(chan *Result, capacity), ctx: ctx, cancel: cancel,
	}
	for range workers {
		q.wg.Go(q.work)
	}
	return q, nil
}

func (q *SaveQueue) work() {
	for r := range q.jobs {
		if q.ctx.Err() != nil {
			// Close gave up: a job not started is not run, only reported by Close.
			q.dropMu.Lock()
			q.dropped = append(q.dropped, r)
			q.dropMu.Unlock()
			continue
		}
		if _, err := q.c.saveWith(q.ctx, r, q.dir, q.cfg); err != nil {
			q.c.logger.LogAttrs(q.ctx, slog.LevelWarn, "runway: background save failed",
				slog.String("task_id", printable(r.TaskID, 128)), slog.String("error", err.Error()))
		}
	}
}

// Enqueue hands r to the workers without waiting. A failed task is skipped (nil). It returns
// ErrSaveQueueFull when the queue is full (the callback handler then answers 5xx and Kie
// retries later), ErrSaveQueueClosed after Close, and an error for a result with nothing to
// save. ctx is only checked, since the save outlives the caller.
func (q *SaveQueue) Enqueue(ctx context.Context, r *Result) error {
	if r != nil && r.Err() != nil {
		return nil
	}
	if err := checkSavable(r); err != nil {
		return err
	}
	if _, err := fileStem(r.TaskID); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed {
		return ErrSaveQueueClosed
	}
	select {
	case q.jobs <- r:
		return nil
	default:
		return fmt.Errorf("%w (task %s)", ErrSaveQueueFull, printable(r.TaskID, 128))
	}
}

// Close stops accepting results and waits for the queued ones to be saved. If ctx ends
// first, the saves in progress are cancelled (their temp files removed; each is reported
// like any failed save), and the results still queued are not started: Close calls the
// WithOnSaved func for each of them, from its own goroutine, with an error matching
// ErrSaveQueueClosed and ctx's error (so they can be queued elsewhere or written down for a
// later sweep), logs them once at Warn ("runway: save queue closed with results not saved",
// the count in reason), and returns ctx's error once the workers have stopped. Close may be
// called more than once.
func (q *SaveQueue) Close(ctx context.Context) error {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		close(q.jobs)
	}
	q.mu.Unlock()
	done := make(chan struct{})
	go func() {
		q.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		q.cancel()
		return nil
	case <-ctx.Done():
		q.cancel()
		<-done
		q.reportDropped(ctx.Err())
		return ctx.Err()
	}
}

// reportDropped reports the queued results that Close left unsaved, once.
func (q *SaveQueue) reportDropped(cause error) {
	q.dropMu.Lock()
	dropped := q.dropped
	q.dropped = nil
	q.dropMu.Unlock()
	if len(dropped) == 0 {
		return
	}
	for _, r := range dropped {
		if q.cfg.onSaved != nil {
			q.cfg.onSaved(r, SavedFiles{}, fmt.Errorf("%w (task %s not started): %w", ErrSaveQueueClosed, printable(r.TaskID, 128), cause))
		}
	}
	q.c.logger.LogAttrs(context.Background(), slog.LevelWarn, "runway: save queue closed with results not saved",
		slog.String("reason", fmt.Sprintf("%d queued results not started before Close's context ended", len(dropped))),
		slog.String("error", cause.Error()))
}
