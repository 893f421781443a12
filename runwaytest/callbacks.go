package runwaytest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"time"

	runway "github.com/b9c9aec2/runway-go"
)

// CallbackAttempt is one POST of a callback to a task's callBackUrl.
type CallbackAttempt struct {
	TaskID string
	URL    string
	// Copy numbers the duplicate (0 for the first or only copy).
	Copy int
	// Retry is 0 for the first attempt of a copy and 1..n for its retries.
	Retry int
	// Header holds the headers sent (Content-Type and, when signing, X-Webhook-*).
	Header http.Header
	// Body is the JSON sent.
	Body []byte
	// StatusCode is the receiver's HTTP status; 0 when Err is set.
	StatusCode int
	// Err is the transport error (timeout, refused, reset), nil when an answer came back.
	Err error
	// Time is the server clock when the attempt was sent.
	Time time.Time
}

// Delivered reports whether the attempt got a 2xx answer.
func (a CallbackAttempt) Delivered() bool { return a.Err == nil && a.StatusCode/100 == 2 }

// CallbackStatus is the delivery state of a task's callback.
type CallbackStatus struct {
	// Done: delivery is over (every copy delivered or given up, or nothing to send).
	Done bool
	// Dropped: the callback was dropped by CallbackFaults.Drop.
	Dropped bool
	// NoURL: the task had no callBackUrl.
	NoURL bool
	// Delivered counts copies that got a 2xx; GaveUp counts copies whose retries ran out.
	Delivered, GaveUp int
	// Attempts lists every attempt so far, in the order they finished.
	Attempts []CallbackAttempt
}

// callbackState is Server-internal per-task delivery state, guarded by Server.mu.
type callbackState struct {
	started, done, dropped, noURL bool
	delivered, gaveUp             int
	attempts                      []int // indexes into Server.attempts
}

func (s *Server) callbackStatusLocked(t *task) CallbackStatus {
	st := CallbackStatus{
		Done:      t.cb.done,
		Dropped:   t.cb.dropped,
		NoURL:     t.cb.noURL,
		Delivered: t.cb.delivered,
		GaveUp:    t.cb.gaveUp,
	}
	for _, i := range t.cb.attempts {
		st.Attempts = append(st.Attempts, s.attempts[i])
	}
	return st
}

// startCallbacks launches the delivery of t's callback; first (if not nil) is closed once
// the first attempt finished or nothing will be sent. It reports whether delivery started.
func (s *Server) startCallbacks(t *task, first chan struct{}) bool {
	s.mu.Lock()
	if t.cb.started {
		s.mu.Unlock()
		return false
	}
	t.cb.started = true
	cf := t.script.Callback
	switch {
	case t.callbackURL == "":
		t.cb.noURL, t.cb.done = true, true
	case cf.Drop:
		t.cb.dropped, t.cb.done = true, true
	}
	if t.cb.done {
		s.notifyLocked()
		s.mu.Unlock()
		if first != nil {
			close(first)
		}
		return true
	}
	body := s.callbackBodyLocked(t)
	url, id := t.callbackURL, t.id
	s.mu.Unlock()
	var once sync.Once
	firstDone := func() {
		if first != nil {
			once.Do(func() { close(first) })
		}
	}
	started := s.goTracked(func() {
		defer firstDone()
		s.deliver(t, id, url, body, cf, firstDone)
	})
	if !started {
		firstDone()
	}
	return started
}

// deliver sends every copy of a callback, each with its own retries, then marks it done.
func (s *Server) deliver(t *task, id, url string, body []byte, cf CallbackFaults, firstDone func()) {
	if !cf.Early && !s.sleep(cf.Delay) {
		return
	}
	copies := max(cf.Copies, 1)
	if cf.Concurrent && copies > 1 {
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range copies {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				s.sendCopy(t, id, url, body, i, firstDone)
			}()
		}
		close(start)
		wg.Wait()
	} else {
		for i := range copies {
			if !s.sendCopy(t, id, url, body, i, firstDone) {
				break
			}
		}
	}
	s.mu.Lock()
	if s.ctx.Err() == nil {
		t.cb.done = true
		s.notifyLocked()
	}
	s.mu.Unlock()
}

// sendCopy makes the attempts of one copy: the first, then one retry after each retry
// interval while the receiver fails. It returns false when Close interrupted it.
func (s *Server) sendCopy(t *task, id, url string, body []byte, copyN int, firstDone func()) bool {
	for retry := 0; ; retry++ {
		a := s.attempt(id, url, body)
		a.Copy, a.Retry = copyN, retry
		if s.ctx.Err() != nil {
			return false // an attempt cut by Close is not recorded
		}
		s.mu.Lock()
		s.attempts = append(s.attempts, a)
		t.cb.attempts = append(t.cb.attempts, len(s.attempts)-1)
		ok := a.Delivered()
		giveUp := !ok && retry >= len(s.cfg.retryIntervals)
		if ok {
			t.cb.delivered++
		} else if giveUp {
			t.cb.gaveUp++
		}
		s.notifyLocked()
		s.mu.Unlock()
		firstDone()
		if ok || giveUp {
			return true
		}
		if !s.sleep(s.cfg.retryIntervals[retry]) {
			return false
		}
	}
}

// attempt POSTs body once, signed when an HMAC key is set.
func (s *Server) attempt(id, url string, body []byte) CallbackAttempt {
	a := CallbackAttempt{TaskID: id, URL: url, Body: body, Time: s.cfg.now()}
	req, err := http.NewRequestWithContext(s.ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		a.Err = err
		return a
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "runwaytest-callback")
	if s.cfg.hmacKey != "" {
		ts, sig := runway.SignCallback(s.cfg.hmacKey, id, a.Time)
		req.Header.Set(runway.HeaderWebhookTimestamp, ts)
		req.Header.Set(runway.HeaderWebhookSignature, sig)
	}
	a.Header = req.Header.Clone()
	resp, err := s.cbClient.Do(req)
	if err != nil {
		a.Err = err
		return a
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	a.StatusCode = resp.StatusCode
	return a
}

// callbackBodyLocked renders t's callback in the shape its script asks for.
func (s *Server) callbackBodyLocked(t *task) []byte {
	o := t.script.Outcome
	code, msg := o.Code, o.Message
	if !o.Failed() {
		code = 200
		if msg == "" {
			msg = Success().Message
		}
	}
	shape := t.script.Callback.Shape
	if shape == ShapeAuto {
		shape = ShapeRunway
		if t.kind == KindAleph {
			shape = ShapeAleph
		}
	}
	var v any
	switch {
	case shape == ShapeAleph && code == 200:
		v = map[string]any{"code": code, "msg": "success", "taskId": t.id, "data": map[string]string{
			"result_video_url": s.fileURL(t.id, fileVideo),
			"result_image_url": s.fileURL(t.id, fileCover),
		}}
	case shape == ShapeAleph:
		v = map[string]any{"code": code, "msg": msg, "taskId": t.id, "data": nil}
	case code == 200:
		v = map[string]any{"code": code, "msg": msg, "data": map[string]string{
			"task_id":   t.id,
			"video_id":  t.videoID,
			"video_url": s.fileURL(t.id, fileVideo),
			"image_url": s.fileURL(t.id, fileCover),
		}}
	case t.kind == KindExtend:
		v = map[string]any{"code": code, "msg": msg, "data": map[string]string{"task_id": t.id}}
	default:
		v = map[string]any{"code": code, "msg": msg, "data": map[string]string{
			"task_id": t.id, "video_id": "", "video_url": "", "image_url": "",
		}}
	}
	b, _ := json.Marshal(v)
	return b
}

// CallbackAttempts returns every callback attempt so far (all tasks), in the order they
// finished.
func (s *Server) CallbackAttempts() []CallbackAttempt {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]CallbackAttempt(nil), s.attempts...)
}

// WaitCallback blocks until the delivery of taskID's callback is over (delivered, given up,
// dropped or no URL) and returns its status.
func (s *Server) WaitCallback(ctx context.Context, taskID string) (CallbackStatus, error) {
	var st CallbackStatus
	err := s.waitFor(ctx, func() bool {
		t, ok := s.tasks[taskID]
		if ok && t.cb.done {
			st = s.callbackStatusLocked(t)
		}
		return ok && t.cb.done
	})
	return st, err
}

// WaitAttempts blocks until at least n callback attempts for taskID ("" for any task) have
// finished and returns them.
func (s *Server) WaitAttempts(ctx context.Context, taskID string, n int) ([]CallbackAttempt, error) {
	var out []CallbackAttempt
	err := s.waitFor(ctx, func() bool {
		out = out[:0]
		for _, a := range s.attempts {
			if taskID == "" || a.TaskID == taskID {
				out = append(out, a)
			}
		}
		return len(out) >= n
	})
	return out, err
}
