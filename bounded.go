package runway

import "sync"

// boundedMap maps task ids to values and keeps at most max of them: when full, the id added
// longest ago is forgotten first. Putting an id already present replaces its value and keeps
// its place. It backs the client's memory of its Aleph submissions, the journal's settled
// ids and the observer's submission times. A nil *boundedMap is empty.
type boundedMap[V any] struct {
	mu    sync.Mutex
	max   int
	m     map[string]V
	order []string // ring of the ids, oldest at next once full
	next  int
}

func newBoundedMap[V any](max int) *boundedMap[V] {
	return &boundedMap[V]{max: max, m: make(map[string]V)}
}

func (b *boundedMap[V]) put(id string, v V) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.m[id]; ok {
		b.m[id] = v
		return
	}
	if len(b.order) < b.max {
		b.order = append(b.order, id)
	} else {
		delete(b.m, b.order[b.next])
		b.order[b.next] = id
		b.next = (b.next + 1) % b.max
	}
	b.m[id] = v
}

func (b *boundedMap[V]) get(id string) (V, bool) {
	var zero V
	if b == nil {
		return zero, false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	v, ok := b.m[id]
	return v, ok
}

// idSet is a bounded set of task ids.
type idSet = boundedMap[struct{}]

func newIDSet(max int) *idSet { return newBoundedMap[struct{}](max) }

func (b *boundedMap[V]) has(id string) bool {
	_, ok := b.get(id)
	return ok
}
