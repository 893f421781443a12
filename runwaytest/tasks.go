package runwaytest

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	runway "github.com/b9c9aec2/runway-go"
)

// TaskKind is the endpoint a task was submitted through.
type TaskKind string

// Task kinds.
const (
	KindGenerate TaskKind = "generate"
	KindExtend   TaskKind = "extend"
	KindAleph    TaskKind = "aleph"
)

// task is the server's state for one submitted task; guarded by Server.mu.
type task struct {
	id, parentID string
	kind         TaskKind
	prompt       string
	imageURL     string
	callbackURL  string
	params       []byte // the submission body as received
	script       Script
	steps        Steps
	state        runway.State
	history      []runway.State
	created      time.Time
	completed    time.Time
	videoID      string
	cb           callbackState
}

// TaskInfo is a snapshot of a task, for assertions.
type TaskInfo struct {
	ID       string
	ParentID string // extensions: the extended task
	Kind     TaskKind
	// State is the real state (PollFaults.UnknownState does not change it).
	State runway.State
	// History lists every state the task has been in, in order.
	History []runway.State
	// Script is what the task was scripted to do; Script.Outcome is its expected result.
	Script      Script
	Prompt      string
	CallbackURL string
	// VideoURL and ImageURL are the file URLs served by the fake (set on success).
	VideoURL, ImageURL string
	Created, Completed time.Time
	// Callback is the callback delivery status so far.
	Callback CallbackStatus
}

var (
	// ErrUnknownTask is returned for a task id the server never created.
	ErrUnknownTask = errors.New("runwaytest: unknown task")
	// ErrNotManual is returned by Advance and Finish for a task that advances on its own.
	ErrNotManual = errors.New("runwaytest: task does not use manual steps")
	// ErrTerminal is returned when a finished task cannot change.
	ErrTerminal = errors.New("runwaytest: task already finished")
)

// hashID derives a deterministic hex id from the seed, a label and a counter.
func (s *Server) hashID(label string, n uint64) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%d/%s/%d", s.cfg.seed, label, n))
	return hex.EncodeToString(sum[:16])
}

func uuidFrom(h string) string {
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// newTaskLocked creates a task in state wait with the next script.
func (s *Server) newTaskLocked(kind TaskKind, prompt string, params []byte) *task {
	s.counter++
	n := s.counter
	t := &task{
		id:      s.hashID("task", n),
		kind:    kind,
		prompt:  prompt,
		params:  params,
		state:   runway.StateWait,
		history: []runway.State{runway.StateWait},
		created: s.cfg.now(),
		videoID: uuidFrom(s.hashID("video", n)),
	}
	byPrompt, ok := s.byPrompt[prompt]
	switch {
	case ok:
		t.script = byPrompt
	case len(s.queued) > 0:
		t.script = s.queued[0]
		s.queued = s.queued[1:]
	case s.chaos != nil:
		t.script = s.chaos.script(n)
	default:
		t.script = s.cfg.defaultScript
	}
	t.steps = s.cfg.steps
	if t.script.Steps != nil {
		t.steps = *t.script.Steps
	}
	s.tasks[t.id] = t
	s.order = append(s.order, t)
	s.notifyLocked()
	return t
}

// start runs a new task's schedule; an Early task completes now and its callback's first
// attempt is made before start returns (unless ctxDone ends the wait first).
func (s *Server) start(t *task, ctxDone <-chan struct{}) {
	s.mu.Lock()
	early, manual := t.script.Callback.Early, t.steps.Manual
	if early {
		for !t.state.Terminal() {
			s.advanceLocked(t)
		}
	}
	s.mu.Unlock()
	if early {
		first := make(chan struct{})
		if s.startCallbacks(t, first) {
			select {
			case <-first:
			case <-ctxDone:
			case <-s.ctx.Done():
			}
		}
		return
	}
	if !manual {
		s.goTracked(func() { s.runSteps(t) })
	}
}

// runSteps walks a task through its states on real timers, stopping on Close.
func (s *Server) runSteps(t *task) {
	for _, d := range []time.Duration{t.steps.Wait, t.steps.Queueing, t.steps.Generating} {
		if !s.sleep(d) {
			return
		}
		s.mu.Lock()
		done := s.advanceLocked(t)
		s.mu.Unlock()
		if done {
			s.startCallbacks(t, nil)
			return
		}
	}
}

// advanceLocked moves t one state forward and reports whether it just became terminal.
func (s *Server) advanceLocked(t *task) bool {
	switch t.state {
	case runway.StateWait:
		t.state = runway.StateQueueing
	case runway.StateQueueing:
		t.state = runway.StateGenerating
	case runway.StateGenerating:
		t.state = runway.StateSuccess
		if t.script.Outcome.Failed() {
			t.state = runway.StateFail
		}
		t.completed = s.cfg.now()
	default:
		return false
	}
	t.history = append(t.history, t.state)
	s.notifyLocked()
	return t.state.Terminal()
}

// manualTask finds a non-terminal manual task.
func (s *Server) manualTaskLocked(id string) (*task, error) {
	t, ok := s.tasks[id]
	switch {
	case !ok:
		return nil, fmt.Errorf("%w: %q", ErrUnknownTask, id)
	case !t.steps.Manual || t.script.Callback.Early:
		return nil, fmt.Errorf("%w: %q", ErrNotManual, id)
	case t.state.Terminal():
		return nil, fmt.Errorf("%w: %q", ErrTerminal, id)
	}
	return t, nil
}

// Advance moves a manual task (WithManualSteps or Script.Steps.Manual) one state forward and
// returns its new state. Reaching success or fail starts the callback delivery.
func (s *Server) Advance(taskID string) (runway.State, error) {
	s.mu.Lock()
	t, err := s.manualTaskLocked(taskID)
	if err != nil {
		s.mu.Unlock()
		return "", err
	}
	done := s.advanceLocked(t)
	st := t.state
	s.mu.Unlock()
	if done {
		s.startCallbacks(t, nil)
	}
	return st, nil
}

// Finish moves a manual task straight to its scripted terminal state (through the states in
// between) and starts the callback delivery.
func (s *Server) Finish(taskID string) (runway.State, error) {
	s.mu.Lock()
	t, err := s.manualTaskLocked(taskID)
	if err != nil {
		s.mu.Unlock()
		return "", err
	}
	for !s.advanceLocked(t) {
	}
	st := t.state
	s.mu.Unlock()
	s.startCallbacks(t, nil)
	return st, nil
}

// SetOutcome changes the outcome of a task that has not finished yet.
func (s *Server) SetOutcome(taskID string, o Outcome) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tasks[taskID]
	switch {
	case !ok:
		return fmt.Errorf("%w: %q", ErrUnknownTask, taskID)
	case t.state.Terminal():
		return fmt.Errorf("%w: %q", ErrTerminal, taskID)
	}
	t.script.Outcome = o
	return nil
}

// ScriptNext queues sc for the next n tasks created (in submission order), ahead of the chaos
// mix and the default script. With concurrent submissions, prefer ScriptPrompt.
func (s *Server) ScriptNext(n int, sc Script) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.queued = append(s.queued, sc)
	}
}

// ScriptPrompt gives sc to every task submitted from now on with exactly this prompt, ahead
// of ScriptNext, the chaos mix and the default; it replaces an earlier script for the prompt.
// It lets concurrent tests script each task without depending on arrival order.
func (s *Server) ScriptPrompt(prompt string, sc Script) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byPrompt[prompt] = sc
}

// Task returns a snapshot of the task with id taskID.
func (s *Server) Task(taskID string) (TaskInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tasks[taskID]
	if !ok {
		return TaskInfo{}, false
	}
	return s.infoLocked(t), true
}

// Tasks returns snapshots of every task, in creation order.
func (s *Server) Tasks() []TaskInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]TaskInfo, len(s.order))
	for i, t := range s.order {
		out[i] = s.infoLocked(t)
	}
	return out
}

func (s *Server) infoLocked(t *task) TaskInfo {
	ti := TaskInfo{
		ID:          t.id,
		ParentID:    t.parentID,
		Kind:        t.kind,
		State:       t.state,
		History:     append([]runway.State(nil), t.history...),
		Script:      t.script,
		Prompt:      t.prompt,
		CallbackURL: t.callbackURL,
		Created:     t.created,
		Completed:   t.completed,
		Callback:    s.callbackStatusLocked(t),
	}
	if t.state == runway.StateSuccess {
		ti.VideoURL, ti.ImageURL = s.fileURL(t.id, fileVideo), s.fileURL(t.id, fileCover)
	}
	return ti
}

// expiredLocked reports whether t's files are expired.
func (t *task) expired() bool { return t.script.Poll.Expired && t.state.Terminal() }
