package runwaytest

import (
	"bytes"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"time"
)

const (
	maxRequestBytes = 1 << 20
	msgUnauthorized = "You do not have access permissions"
)

// Request is one request the fake received. It is recorded when the handler finishes, which is
// before a small answer (every envelope) reaches the client; answers that stream (files,
// HugeBody) or drop the connection (ConnectionReset, TruncatedBody) may reach the client
// first, so wait for those with WaitRequests.
type Request struct {
	Method string
	Path   string
	Query  url.Values
	// Header is the request's headers without Authorization.
	Header http.Header
	// Body is the JSON object body decoded with json.Number for numbers; nil when the body
	// was empty or not a JSON object.
	Body map[string]any
	// RawBody is the body as received (at most 1 MiB).
	RawBody []byte
	// Authorized reports whether the request carried the accepted API key.
	Authorized bool
	// Status is the HTTP status answered; 0 when the connection was reset.
	Status int
	// Code is the envelope code answered; 0 when the answer had no envelope.
	Code int
	// Fault names the injected fault that shaped the answer ("" for none), see APIFault.Name.
	Fault string
	// Time is the server clock when the request arrived.
	Time time.Time
}

// authorized reports whether an Authorization header carries an accepted key.
func (s *Server) authorized(h string) bool {
	if h == "Bearer "+s.APIKey {
		return true
	}
	key, ok := strings.CutPrefix(h, "Bearer ")
	return ok && s.cfg.anyAPIKey && strings.TrimSpace(key) != ""
}

// exchange is one request being served.
type exchange struct {
	w   http.ResponseWriter
	r   *http.Request
	rec *Request
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(io.LimitReader(r.Body, maxRequestBytes))
	h := r.Header.Clone()
	h.Del("Authorization")
	rec := &Request{
		Method:     r.Method,
		Path:       r.URL.Path,
		Query:      r.URL.Query(),
		Header:     h,
		RawBody:    raw,
		Authorized: s.authorized(r.Header.Get("Authorization")),
		Time:       s.cfg.now(),
	}
	if len(bytes.TrimSpace(raw)) > 0 {
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		var m map[string]any
		if d.Decode(&m) == nil {
			rec.Body = m
		}
	}
	// Deferred: a fault that drops the connection unwinds with http.ErrAbortHandler.
	defer func() {
		s.mu.Lock()
		s.requests = append(s.requests, *rec)
		s.notifyLocked()
		s.mu.Unlock()
	}()
	s.handle(&exchange{w: w, r: r, rec: rec})
}

func (s *Server) handle(x *exchange) {
	path := x.r.URL.Path
	if strings.HasPrefix(path, filesPrefix) {
		s.serveFile(x)
		return
	}
	f := s.takeFault(path, x.r.URL.RequestURI()+"\n"+string(x.rec.RawBody))
	if f == nil {
		s.route(x)
		return
	}
	x.rec.Fault = f.Name()
	if !f.Processed {
		if !s.applyFault(x, f) {
			s.route(x)
		}
		return
	}
	// Handle the request for real (a submission creates its task), then lose the answer.
	rr := httptest.NewRecorder()
	s.route(&exchange{w: rr, r: x.r, rec: x.rec})
	if !s.applyFault(x, f) {
		maps.Copy(x.w.Header(), rr.Header())
		x.w.WriteHeader(rr.Code)
		_, _ = x.w.Write(rr.Body.Bytes())
	}
}

// route serves an API request normally.
func (s *Server) route(x *exchange) {
	path := x.r.URL.Path
	var method string
	var serve func(*exchange)
	switch path {
	case PathGenerate:
		method, serve = http.MethodPost, s.serveGenerate
	case PathExtend:
		method, serve = http.MethodPost, s.serveExtend
	case PathAlephGenerate:
		method, serve = http.MethodPost, s.serveAleph
	case PathRecordDetail:
		method, serve = http.MethodGet, s.serveRecordDetail
	case PathAlephRecordInfo:
		method, serve = http.MethodGet, s.serveAlephRecordInfo
	case PathCredit:
		method, serve = http.MethodGet, s.serveCredit
	case PathDownloadURL:
		method, serve = http.MethodPost, s.serveDownloadURL
	default:
		s.writeEnvelope(x, http.StatusNotFound, 404, "Not Found", nil)
		return
	}
	if x.r.Method != method {
		x.w.Header().Set("Allow", method)
		s.writeEnvelope(x, http.StatusMethodNotAllowed, 405, "Method Not Allowed", nil)
		return
	}
	if !x.rec.Authorized {
		s.fail(x, 401, msgUnauthorized)
		return
	}
	serve(x)
}

// envelope is Kie's response wrapper.
type envelope struct {
	Code int    `json:"code"`
	Msg  string `json:"msg"`
	Data any    `json:"data"`
}

func (s *Server) writeEnvelope(x *exchange, status, code int, msg string, data any) {
	b, _ := json.Marshal(envelope{Code: code, Msg: msg, Data: data})
	x.w.Header().Set("Content-Type", "application/json")
	x.w.WriteHeader(status)
	_, _ = x.w.Write(b)
	x.rec.Status, x.rec.Code = status, code
}

// ok answers HTTP 200, code 200, msg "success".
func (s *Server) ok(x *exchange, data any) {
	s.writeEnvelope(x, http.StatusOK, 200, "success", data)
}

// fail answers an application error: HTTP 200 with the code in the body, as Kie does, or
// the code as HTTP status too under WithHTTPStatusErrors.
func (s *Server) fail(x *exchange, code int, msg string) {
	status := http.StatusOK
	if s.cfg.statusErrors && code >= 400 && code <= 599 {
		status = code
	}
	s.writeEnvelope(x, status, code, msg, nil)
}
