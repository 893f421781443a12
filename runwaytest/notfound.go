package runwaytest

import "net/http"

// NotFoundForm is one of the ways Kie's details endpoints answer a task id they do not know.
// All of them have been seen; a client must treat each as "not found (yet)".
type NotFoundForm int

// The spellings of "not found".
const (
	// NotFoundBodyCode404 is HTTP 200 with body code 404 (the default, as Kie documents).
	NotFoundBodyCode404 NotFoundForm = iota
	// NotFoundHTTP404 is HTTP 404 with body code 404.
	NotFoundHTTP404
	// NotFoundRecordMissing is HTTP 200 with {"code":422,"msg":"The record does not exist"}.
	NotFoundRecordMissing
	// NotFoundNullData is HTTP 200 with {"code":200,"msg":"success","data":null}.
	NotFoundNullData
)

// NotFoundForms lists every form, for table tests.
func NotFoundForms() []NotFoundForm {
	return []NotFoundForm{NotFoundBodyCode404, NotFoundHTTP404, NotFoundRecordMissing, NotFoundNullData}
}

// String names the form.
func (f NotFoundForm) String() string {
	switch f {
	case NotFoundHTTP404:
		return "HTTP 404"
	case NotFoundRecordMissing:
		return "code 422 record does not exist"
	case NotFoundNullData:
		return "code 200 data null"
	}
	return "body code 404"
}

// NotFound is a fault that answers a details request in form f, as if the task were unknown:
// inject it on PathRecordDetail or PathAlephRecordInfo to make a task that exists invisible
// for its first polls.
func NotFound(f NotFoundForm) APIFault {
	switch f {
	case NotFoundHTTP404:
		return APIFault{Status: http.StatusNotFound, Code: 404, Msg: "Task not found"}
	case NotFoundRecordMissing:
		return APIFault{Status: http.StatusOK, Code: 422, Msg: "The record does not exist"}
	case NotFoundNullData:
		return APIFault{Status: http.StatusOK, Code: 200, Msg: "success"}
	}
	return APIFault{Status: http.StatusOK, Code: 404, Msg: "Task not found"}
}

// WithNotFoundForm sets how the details endpoints answer a task id they do not know (default
// NotFoundBodyCode404, or HTTP 404 under WithHTTPStatusErrors).
func WithNotFoundForm(f NotFoundForm) Option {
	return Option{func(c *config) {
		c.notFound = f
		c.notFoundSet = true
	}}
}

// failNotFound answers a details request for an unknown task id, in the form NewServer
// settled (see notFoundForm).
func (s *Server) failNotFound(x *exchange) {
	f := NotFound(s.cfg.notFound)
	s.writeEnvelope(x, f.status(), f.code(), f.Msg, nil)
}

// notFoundForm is the form a server answers unknown task ids in: WithNotFoundForm's, else
// the one its other errors follow (HTTP 404 under WithHTTPStatusErrors, body code 404
// otherwise).
func notFoundForm(c config) NotFoundForm {
	if !c.notFoundSet && c.statusErrors {
		return NotFoundHTTP404
	}
	return c.notFound
}
