package runway

import "sync"

// hub is the in-process registry of WaitForResult callers, keyed by task id. Results reach it
// from the ResultBus listener; waiters register before they look the result up, so a result
// published in between is never missed. It is built for many concurrent waits: a waiter is
// one small struct and a one-slot channel, linked into a per-task list (almost always of
// length one) so that no per-task map or goroutine is needed.
type hub struct {
	mu      sync.Mutex
	waiters map[string]*waiter // head of each task's list
}

type waiter struct {
	ch         chan *Result // buffered(1); receives at most one result
	prev, next *waiter
}

func newHub() *hub { return &hub{waiters: make(map[string]*waiter)} }

// register adds a waiter for taskID. The caller must call unregister when done.
func (h *hub) register(taskID string) *waiter {
	w := &waiter{ch: make(chan *Result, 1)}
	h.mu.Lock()
	if head := h.waiters[taskID]; head != nil {
		w.next = head
		head.prev = w
	}
	h.waiters[taskID] = w
	h.mu.Unlock()
	return w
}

// unregister removes w from taskID's waiters; calling it again is harmless.
func (h *hub) unregister(taskID string, w *waiter) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case w.prev != nil:
		w.prev.next = w.next
	case h.waiters[taskID] != w:
		return // already unregistered
	case w.next != nil:
		h.waiters[taskID] = w.next
	default:
		delete(h.waiters, taskID)
	}
	if w.next != nil {
		w.next.prev = w.prev
	}
	w.prev, w.next = nil, nil
}

// deliver hands r to every waiter of r.TaskID without blocking; a waiter that already holds a
// result keeps the first one.
func (h *hub) deliver(r *Result) {
	if r == nil {
		return
	}
	h.mu.Lock()
	for w := h.waiters[r.TaskID]; w != nil; w = w.next {
		select {
		case w.ch <- r:
		default:
		}
	}
	h.mu.Unlock()
}

// ids returns the task ids with at least one waiter.
func (h *hub) ids() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	ids := make([]string, 0, len(h.waiters))
	for id := range h.waiters {
		ids = append(ids, id)
	}
	return ids
}

// len returns the number of task ids with at least one waiter.
func (h *hub) len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.waiters)
}
