package runwaytest

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	runway "github.com/b9c9aec2/runway-go"
)

// Kie's time layout for record-detail's generateTime.
const runwayTimeLayout = "2006-01-02 15:04:05"

// decodeBody decodes the JSON object body into v; a malformed body is answered with 400 and a
// wrongly typed field with 422.
func (s *Server) decodeBody(x *exchange, v any) bool {
	if err := json.Unmarshal(x.rec.RawBody, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			s.fail(x, 422, "Invalid parameter type: "+te.Field)
			return false
		}
		s.fail(x, 400, "Malformed JSON body")
		return false
	}
	return true
}

// admit applies the account checks every submission passes: the rate limit, then credits.
func (s *Server) admit(x *exchange) bool {
	s.mu.Lock()
	retry, ok := s.rateLimitLocked(s.cfg.now())
	credits := s.credits
	s.mu.Unlock()
	if !ok {
		secs := int(math.Ceil(retry.Seconds()))
		x.w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
		s.writeEnvelope(x, http.StatusTooManyRequests, 429, "Too many requests, please try again later", nil)
		return false
	}
	if credits <= 0 {
		s.fail(x, 402, "The current credits are insufficient. Please top up.")
		return false
	}
	return true
}

// rateLimitLocked admits a submission at now, or returns how long until one is admitted.
func (s *Server) rateLimitLocked(now time.Time) (time.Duration, bool) {
	if s.cfg.rateN <= 0 {
		return 0, true
	}
	cut := now.Add(-s.cfg.ratePer)
	i := 0
	for i < len(s.window) && !s.window[i].After(cut) {
		i++
	}
	s.window = s.window[i:]
	if len(s.window) >= s.cfg.rateN {
		return s.window[0].Add(s.cfg.ratePer).Sub(now), false
	}
	s.window = append(s.window, now)
	return 0, true
}

// created answers a submission and starts the task.
func (s *Server) created(x *exchange, t *task) {
	s.start(t, x.r.Context().Done())
	s.ok(x, map[string]string{"taskId": t.id})
}

// acceptSubmission runs what every submission endpoint does first: the account checks, the
// JSON body, then the request's own validation (422 naming the field).
func (s *Server) acceptSubmission(x *exchange, req interface{ validate() string }) bool {
	if !s.admit(x) || !s.decodeBody(x, req) {
		return false
	}
	if msg := req.validate(); msg != "" {
		s.fail(x, 422, msg)
		return false
	}
	return true
}

type generateRequest struct {
	Prompt      string          `json:"prompt"`
	ImageURL    string          `json:"imageUrl"`
	Duration    json.RawMessage `json:"duration"`
	Quality     string          `json:"quality"`
	AspectRatio string          `json:"aspectRatio"`
	WaterMark   string          `json:"waterMark"`
	CallBackURL string          `json:"callBackUrl"`
}

func (s *Server) serveGenerate(x *exchange) {
	var req generateRequest
	if !s.acceptSubmission(x, &req) {
		return
	}
	s.mu.Lock()
	t := s.newTaskLocked(KindGenerate, req.Prompt, x.rec.RawBody)
	t.imageURL, t.callbackURL = req.ImageURL, req.CallBackURL
	s.mu.Unlock()
	s.created(x, t)
}

type extendRequest struct {
	TaskID      string `json:"taskId"`
	Prompt      string `json:"prompt"`
	Quality     string `json:"quality"`
	WaterMark   string `json:"waterMark"`
	CallBackURL string `json:"callBackUrl"`
}

func (s *Server) serveExtend(x *exchange) {
	var req extendRequest
	if !s.acceptSubmission(x, &req) {
		return
	}
	s.mu.Lock()
	parent, ok := s.tasks[req.TaskID]
	switch {
	case !ok || parent.kind == KindAleph:
		s.mu.Unlock()
		s.fail(x, 404, "Task not found")
		return
	case parent.state != runway.StateSuccess:
		s.mu.Unlock()
		s.fail(x, 422, "taskId: the original task has not succeeded")
		return
	}
	t := s.newTaskLocked(KindExtend, req.Prompt, x.rec.RawBody)
	t.parentID, t.callbackURL = parent.id, req.CallBackURL
	t.imageURL = s.fileURL(parent.id, fileCover)
	s.mu.Unlock()
	s.created(x, t)
}

type alephRequest struct {
	Prompt         string `json:"prompt"`
	VideoURL       string `json:"videoUrl"`
	CallBackURL    string `json:"callBackUrl"`
	WaterMark      string `json:"waterMark"`
	UploadCN       bool   `json:"uploadCn"`
	AspectRatio    string `json:"aspectRatio"`
	Seed           *int64 `json:"seed"`
	ReferenceImage string `json:"referenceImage"`
}

func (s *Server) serveAleph(x *exchange) {
	var req alephRequest
	if !s.acceptSubmission(x, &req) {
		return
	}
	s.mu.Lock()
	t := s.newTaskLocked(KindAleph, req.Prompt, x.rec.RawBody)
	t.callbackURL = req.CallBackURL
	s.mu.Unlock()
	s.created(x, t)
}

// lookup finds the task named by the taskId query parameter for a details endpoint.
func (s *Server) lookup(x *exchange, aleph bool) (*task, bool) {
	id := x.r.URL.Query().Get("taskId")
	if id == "" {
		s.fail(x, 422, "taskId is required")
		return nil, false
	}
	s.mu.Lock()
	t, ok := s.tasks[id]
	s.mu.Unlock()
	if !ok || (t.kind == KindAleph) != aleph {
		s.failNotFound(x)
		return nil, false
	}
	return t, true
}

func (s *Server) serveRecordDetail(x *exchange) {
	t, ok := s.lookup(x, false)
	if !ok {
		return
	}
	s.mu.Lock()
	data := s.recordDetailLocked(t)
	s.mu.Unlock()
	s.ok(x, data)
}

// recordDetailLocked renders record-detail's data for t.
func (s *Server) recordDetailLocked(t *task) map[string]any {
	var gp struct {
		Prompt   string `json:"prompt"`
		ImageURL string `json:"imageUrl"`
	}
	_ = json.Unmarshal(t.params, &gp)
	if t.kind == KindExtend {
		gp.ImageURL = t.imageURL
	}
	state := string(t.state)
	if u := t.script.Poll.UnknownState; u != "" {
		state = u
	}
	genTime := t.created
	if t.state.Terminal() {
		genTime = t.completed
	}
	failCode, failMsg := 0, ""
	if t.state == runway.StateFail {
		failCode, failMsg = t.script.Outcome.Code, t.script.Outcome.Message
	}
	data := map[string]any{
		"taskId":       t.id,
		"parentTaskId": t.parentID,
		"generateParam": map[string]any{
			"prompt":       gp.Prompt,
			"imageUrl":     gp.ImageURL,
			"expandPrompt": false,
		},
		"state":        state,
		"generateTime": genTime.UTC().Format(runwayTimeLayout),
		"videoInfo":    nil,
		"failCode":     s.failCodeValue(t, failCode),
		"failMsg":      failMsg,
		"expireFlag":   boolFlag(t.expired()),
	}
	if t.state == runway.StateSuccess && !t.script.Poll.NoVideoInfo {
		data["videoInfo"] = map[string]any{
			"videoId":  t.videoID,
			"taskId":   t.id,
			"videoUrl": s.fileURL(t.id, fileVideo),
			"imageUrl": s.fileURL(t.id, fileCover),
		}
	}
	return data
}

// failCodeValue renders a failure code as a number, or as a string under the fault ("" for
// no failure, like the older docs' example).
func (s *Server) failCodeValue(t *task, code int) any {
	if !t.script.Poll.FailCodeAsString {
		return code
	}
	if code == 0 {
		return ""
	}
	return strconv.Itoa(code)
}

func boolFlag(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (s *Server) serveAlephRecordInfo(x *exchange) {
	t, ok := s.lookup(x, true)
	if !ok {
		return
	}
	s.mu.Lock()
	data := s.alephRecordLocked(t)
	s.mu.Unlock()
	s.ok(x, data)
}

// alephRecordLocked renders Aleph record-info's data for t (successFlag style).
func (s *Server) alephRecordLocked(t *task) map[string]any {
	var paramJSON bytes.Buffer
	if json.Compact(&paramJSON, t.params) != nil {
		paramJSON.Reset()
	}
	flag, errCode, errMsg := 0, 0, ""
	var response any
	completeTime := ""
	switch t.state {
	case runway.StateSuccess:
		flag = 1
		if t.script.Poll.NoVideoInfo {
			break
		}
		response = map[string]any{
			"taskId":         t.id,
			"resultVideoUrl": s.fileURL(t.id, fileVideo),
			"resultImageUrl": s.fileURL(t.id, fileCover),
		}
	case runway.StateFail:
		errCode, errMsg = t.script.Outcome.Code, t.script.Outcome.Message
	}
	if t.state.Terminal() {
		completeTime = t.completed.UTC().Format(time.RFC3339)
	}
	if t.script.Poll.UnknownState != "" {
		flag = 2
	}
	return map[string]any{
		"taskId":       t.id,
		"paramJson":    paramJSON.String(),
		"response":     response,
		"completeTime": completeTime,
		"createTime":   t.created.UTC().Format(time.RFC3339),
		"successFlag":  flag,
		"errorCode":    s.failCodeValue(t, errCode),
		"errorMessage": errMsg,
		"expireFlag":   boolFlag(t.expired()),
	}
}

func (s *Server) serveCredit(x *exchange) {
	s.mu.Lock()
	n := s.credits
	s.mu.Unlock()
	s.ok(x, n)
}
