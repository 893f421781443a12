package runwaytest

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"
)

// APIFault replaces or delays the fake's answer to one API request. Build one with the helper
// functions (RateLimited, ServerError, BodyError, SlowResponse, ConnectionReset, NonJSON,
// TruncatedBody, HugeBody) or by hand. Delay applies first, then the first of Reset,
// Truncate, BodySize, Body or Status/Code that is set; a fault with only Delay set lets the
// normal answer follow.
type APIFault struct {
	// Delay holds the answer back (a slow response); Close and the client's cancellation end it.
	Delay time.Duration
	// Reset hijacks the connection and closes it with a TCP reset, answering nothing.
	Reset bool
	// Status is the HTTP status to answer (0 means 200 when Code or Body is set).
	Status int
	// Code and Msg make an envelope {"code":Code,"msg":Msg,"data":null}; Code 0 with a Status
	// uses the Status as code.
	Code int
	Msg  string
	// Body is sent verbatim instead of an envelope (with Content-Type text/html).
	Body string
	// RetryAfter is sent as the Retry-After header when not empty.
	RetryAfter string
	// Truncate announces a full envelope, sends half of it and drops the connection, so the
	// client sees an unexpected EOF mid-body.
	Truncate bool
	// BodySize, when positive, answers HTTP 200 with a JSON envelope padded to this many bytes
	// (streamed, not held in memory).
	BodySize int64
	// Processed handles the request normally first (a submission creates its task and starts
	// it) and only then replaces the answer with the fault: the lost-response case in which
	// the client cannot know whether its task exists.
	Processed bool
}

// Name describes the fault for Request.Fault.
func (f APIFault) Name() string {
	if f.Processed {
		g := f
		g.Processed = false
		return "after processing: " + g.Name()
	}
	switch {
	case f.Reset:
		return "reset"
	case f.Truncate:
		return "truncated"
	case f.BodySize > 0:
		return "body " + strconv.FormatInt(f.BodySize, 10) + " bytes"
	case f.Body != "":
		return "non-json " + strconv.Itoa(f.status())
	case f.Status != 0 || f.Code != 0:
		return fmt.Sprintf("HTTP %d code %d", f.status(), f.code())
	case f.Delay > 0:
		return "slow " + f.Delay.String()
	}
	return "none"
}

func (f APIFault) status() int {
	if f.Status == 0 {
		return http.StatusOK
	}
	return f.Status
}

func (f APIFault) code() int {
	if f.Code == 0 {
		return f.status()
	}
	return f.Code
}

// RateLimited is HTTP 429 with body code 429 and the given Retry-After value (seconds or an
// HTTP date; anything, malformed values included).
func RateLimited(retryAfter string) APIFault {
	return APIFault{Status: http.StatusTooManyRequests, Msg: "Too many requests, please try again later", RetryAfter: retryAfter}
}

// ServerError is an HTTP 5xx (500, 502, 503, 504, ...) with the status as body code.
func ServerError(status int) APIFault {
	return APIFault{Status: status, Msg: http.StatusText(status)}
}

// BodyError is HTTP 200 whose envelope carries an error code (401, 429, 455, 500, ...).
func BodyError(code int, msg string) APIFault {
	return APIFault{Status: http.StatusOK, Code: code, Msg: msg}
}

// SlowResponse delays the normal answer by d.
func SlowResponse(d time.Duration) APIFault { return APIFault{Delay: d} }

// ConnectionReset closes the connection with a TCP reset before any response byte.
func ConnectionReset() APIFault { return APIFault{Reset: true} }

// NonJSON answers an HTML error page with the given status (200 for a proxy page that claims
// success).
func NonJSON(status int) APIFault {
	return APIFault{Status: status, Body: "<html><body><h1>" + strconv.Itoa(status) + " " + http.StatusText(status) + "</h1></body></html>"}
}

// AfterProcessing returns f applied after the request was handled for real, see
// APIFault.Processed.
func AfterProcessing(f APIFault) APIFault {
	f.Processed = true
	return f
}

// TruncatedBody sends half of a 200 envelope and then drops the connection.
func TruncatedBody() APIFault { return APIFault{Truncate: true} }

// HugeBody answers HTTP 200 with a JSON envelope of n bytes.
func HugeBody(n int64) APIFault { return APIFault{BodySize: n} }

// injectedFault is a queued fault with its remaining uses.
type injectedFault struct {
	path  string // "" matches every API path
	left  int
	fault APIFault
}

// InjectFault makes the next n API requests to path (one of the Path constants; "" for any
// API path, file URLs excluded) answer with f. Faults queue up in the order injected.
func (s *Server) InjectFault(path string, n int, f APIFault) {
	if n <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &injectedFault{path: path, left: n, fault: f})
}

// takeFault consumes the fault for a request to path: an injected one first, else one from
// the chaos mix.
func (s *Server) takeFault(path, key string) *APIFault {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults {
		if f.path != "" && f.path != path {
			continue
		}
		f.left--
		if f.left == 0 {
			s.faults = append(s.faults[:i], s.faults[i+1:]...)
		}
		out := f.fault
		return &out
	}
	if s.chaos != nil {
		return s.chaos.requestFault(path, key)
	}
	return nil
}

// applyFault serves f and reports whether the request is answered (false: only delayed, the
// normal handler continues).
func (s *Server) applyFault(x *exchange, f *APIFault) bool {
	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		select {
		case <-t.C:
		case <-x.r.Context().Done():
		case <-s.ctx.Done():
		}
		t.Stop()
	}
	switch {
	case f.Reset:
		x.rec.Status, x.rec.Code = 0, 0
		resetConn(x.w)
		return true
	case f.Truncate:
		full := []byte(`{"code":200,"msg":"success","data":{"taskId":"truncated-by-runwaytest"}}`)
		x.w.Header().Set("Content-Type", "application/json")
		x.w.Header().Set("Content-Length", strconv.Itoa(len(full)))
		x.w.WriteHeader(http.StatusOK)
		_, _ = x.w.Write(full[:len(full)/2])
		x.rec.Status, x.rec.Code = http.StatusOK, 0
		http.NewResponseController(x.w).Flush()
		panic(http.ErrAbortHandler) // the server drops the connection; Close still waits for us
	case f.BodySize > 0:
		writeHugeBody(x, f.BodySize)
		return true
	case f.Body != "":
		if f.RetryAfter != "" {
			x.w.Header().Set("Retry-After", f.RetryAfter)
		}
		x.w.Header().Set("Content-Type", "text/html; charset=utf-8")
		x.w.WriteHeader(f.status())
		_, _ = x.w.Write([]byte(f.Body))
		x.rec.Status = f.status()
		return true
	case f.Status != 0 || f.Code != 0:
		if f.RetryAfter != "" {
			x.w.Header().Set("Retry-After", f.RetryAfter)
		}
		s.writeEnvelope(x, f.status(), f.code(), f.Msg, nil)
		return true
	}
	return false
}

// writeHugeBody streams {"code":200,"msg":"xxx...","data":null} of n bytes, stopping when the
// client goes away.
func writeHugeBody(x *exchange, n int64) {
	head, tail := []byte(`{"code":200,"msg":"`), []byte(`","data":null}`)
	pad := max(n-int64(len(head)+len(tail)), 0)
	x.w.Header().Set("Content-Type", "application/json")
	x.w.Header().Set("Content-Length", strconv.FormatInt(int64(len(head)+len(tail))+pad, 10))
	x.w.WriteHeader(http.StatusOK)
	x.rec.Status, x.rec.Code = http.StatusOK, 200
	if _, err := x.w.Write(head); err != nil {
		return
	}
	chunk := bytes.Repeat([]byte("x"), 32<<10)
	for pad > 0 {
		k := min(pad, int64(len(chunk)))
		if _, err := x.w.Write(chunk[:k]); err != nil {
			return
		}
		pad -= k
	}
	_, _ = x.w.Write(tail)
}

// resetConn hijacks the connection and closes it with SO_LINGER 0, so the peer sees a reset.
func resetConn(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}
