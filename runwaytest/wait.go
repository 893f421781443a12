package runwaytest

import (
	"context"
	"slices"

	runway "github.com/b9c9aec2/runway-go"
)

// Requests returns every request answered so far, in the order they were answered.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

func (s *Server) requestsToLocked(path string) []Request {
	var out []Request
	for _, r := range s.requests {
		if path == "" || r.Path == path {
			out = append(out, r)
		}
	}
	return out
}

// WaitRequests blocks until at least n requests to path ("" for any path, file URLs included)
// have been answered and returns all of them.
func (s *Server) WaitRequests(ctx context.Context, path string, n int) ([]Request, error) {
	var out []Request
	err := s.waitFor(ctx, func() bool {
		out = s.requestsToLocked(path)
		return len(out) >= n
	})
	return out, err
}

// WaitTasks blocks until at least n tasks exist and returns them in creation order.
func (s *Server) WaitTasks(ctx context.Context, n int) ([]TaskInfo, error) {
	if err := s.waitFor(ctx, func() bool { return len(s.order) >= n }); err != nil {
		return nil, err
	}
	return s.Tasks(), nil
}

// WaitState blocks until taskID has been in state st (now or before) and returns a snapshot.
func (s *Server) WaitState(ctx context.Context, taskID string, st runway.State) (TaskInfo, error) {
	return s.waitTask(ctx, taskID, func(t *task) bool { return slices.Contains(t.history, st) })
}

// WaitTerminal blocks until taskID is success or fail and returns a snapshot.
func (s *Server) WaitTerminal(ctx context.Context, taskID string) (TaskInfo, error) {
	return s.waitTask(ctx, taskID, func(t *task) bool { return t.state.Terminal() })
}

func (s *Server) waitTask(ctx context.Context, taskID string, cond func(*task) bool) (TaskInfo, error) {
	var ti TaskInfo
	err := s.waitFor(ctx, func() bool {
		t, ok := s.tasks[taskID]
		if ok && cond(t) {
			ti = s.infoLocked(t)
			return true
		}
		return false
	})
	return ti, err
}

// WaitIdle blocks until every task created so far is terminal and its callback delivery is
// over. Manual tasks must be finished by the test for this to return.
func (s *Server) WaitIdle(ctx context.Context) error {
	return s.waitFor(ctx, func() bool {
		for _, t := range s.order {
			if !t.state.Terminal() || !t.cb.done {
				return false
			}
		}
		return true
	})
}
