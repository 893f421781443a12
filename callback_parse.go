package runway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// ErrInvalidCallback matches every error ParseCallback returns: a body that is not one of the
// documented callback shapes. The handler answers 400.
var ErrInvalidCallback = errors.New("runway: invalid callback body")

// CallbackError describes why a callback body was refused.
type CallbackError struct {
	// Field is the offending JSON field ("code", "data.task_id", ...); empty when the body as a
	// whole is unusable (not JSON, not an object).
	Field string
	// Reason says what is wrong, without echoing the untrusted value.
	Reason string
	// Err is the underlying decode error, if any.
	Err error
}

// Error names the field and the reason; it never contains the untrusted value.
func (e *CallbackError) Error() string {
	if e.Field == "" {
		return "runway: invalid callback: " + errText(e.Reason)
	}
	return "runway: invalid callback: " + errText(e.Field) + ": " + errText(e.Reason)
}

// Is matches ErrInvalidCallback.
func (e *CallbackError) Is(target error) bool { return target == ErrInvalidCallback }

// Unwrap returns the underlying decode error.
func (e *CallbackError) Unwrap() error { return e.Err }

// wireCallback is the union of both documented callback shapes: Runway generate/extend
// ({code, msg, data:{task_id, video_id, video_url, image_url}}) and Aleph ({code, msg, taskId,
// data:{result_video_url, result_image_url}} with data null on error).
type wireCallback struct {
	Code   codeText `json:"code"`
	Msg    string   `json:"msg"`
	TaskID string   `json:"taskId"`
	// A value, not a pointer (one allocation less): data null or absent leaves it empty,
	// which reads the same.
	Data struct {
		TaskID         string `json:"task_id"`
		VideoID        string `json:"video_id"`
		VideoURL       string `json:"video_url"`
		ImageURL       string `json:"image_url"`
		ResultVideoURL string `json:"result_video_url"`
		ResultImageURL string `json:"result_image_url"`
	} `json:"data"`
}

// codeText keeps the JSON text of the code field, which strictCode checks. A valid code is
// three digits: longer text is only counted, so nothing is allocated for it.
type codeText struct {
	set  bool // present and not null
	n    int  // length of the text
	text [3]byte
}

// UnmarshalJSON implements json.Unmarshaler.
func (c *codeText) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*c = codeText{}
		return nil
	}
	c.set, c.n = true, len(b)
	copy(c.text[:], b)
	return nil
}

// ParseCallback decodes a callback body of either documented shape into a Result with Source
// SourceCallback; Result.Err classifies a failure. It does not verify anything: check the
// signature first (the handler does). The whole body must be one JSON object (trailing data
// is an error), code must be a JSON integer (a quoted "200" is refused), and the task id
// (data.task_id, else the top-level taskId; both present must agree) must be printable and at
// most 128 bytes. Unknown fields are ignored. URLs are kept as data, unchecked. Raw is a copy
// of body. Errors are *CallbackError and match ErrInvalidCallback.
func ParseCallback(body []byte) (*Result, error) {
	r, _, err := parseCallback(bytes.Clone(body))
	return r, err
}

// parseCallback decodes body, which the Result keeps as Raw, and reports whether it is the
// Aleph shape (task id only at the top level). A callback whose strings are all plain
// printable ASCII (Kie's always are) takes a fast path that cuts every string from one copy
// of the body; anything else is decoded by parseCallbackStrict, which the fast path never
// contradicts: it gives up instead.
func parseCallback(body []byte) (r *Result, aleph bool, err error) {
	p := new(struct {
		v wireCallbackText
		r Result
	})
	f, ok, err := p.v.fields(body)
	if ok {
		return f.result(&p.r, body)
	}
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		// Not JSON at all (or nested too deep): the strict decoder would scan it again only
		// to find the same error.
		return nil, false, decodeError(err)
	}
	return parseCallbackStrict(body)
}

// parseCallbackStrict decodes body with encoding/json's string handling and reports every
// problem as a *CallbackError.
func parseCallbackStrict(body []byte) (r *Result, aleph bool, err error) {
	// The wire struct escapes to the heap through json.Unmarshal anyway: allocating it
	// together with the Result makes one allocation of the two.
	p := new(struct {
		w wireCallback
		r Result
	})
	w := &p.w
	if err := json.Unmarshal(body, w); err != nil {
		return nil, false, decodeError(err)
	}
	d := &w.Data
	f := callbackFields{code: w.Code, msg: w.Msg, taskID: w.TaskID, dataTaskID: d.TaskID, videoID: d.VideoID,
		videoURL: d.VideoURL, imageURL: d.ImageURL, resultVideoURL: d.ResultVideoURL, resultImageURL: d.ResultImageURL}
	return f.result(&p.r, body)
}

// callbackFields are the decoded values of a callback body.
type callbackFields struct {
	code                                                                    codeText
	msg, taskID                                                             string
	dataTaskID, videoID, videoURL, imageURL, resultVideoURL, resultImageURL string
}

// result checks the fields and fills r.
func (f *callbackFields) result(r *Result, body []byte) (*Result, bool, error) {
	if !f.code.set {
		return nil, false, &CallbackError{Field: "code", Reason: "required"}
	}
	code, err := strictCode(f.code)
	if err != nil {
		return nil, false, err
	}
	*r = Result{Code: code, Message: f.msg, Source: SourceCallback, Raw: body}
	field, id := "taskId", f.taskID
	r.VideoID = f.videoID
	r.VideoURL = firstNonEmpty(f.videoURL, f.resultVideoURL)
	r.ImageURL = firstNonEmpty(f.imageURL, f.resultImageURL)
	if f.dataTaskID != "" {
		if f.taskID != "" && f.taskID != f.dataTaskID {
			return nil, false, &CallbackError{Field: "taskId", Reason: "differs from data.task_id"}
		}
		field, id = "data.task_id", f.dataTaskID
	}
	if id == "" {
		return nil, false, &CallbackError{Field: "data.task_id", Reason: "no task id (neither data.task_id nor taskId)"}
	}
	if err := validTaskID(field, id); err != nil {
		var ve *ValidationError
		errors.As(err, &ve)
		return nil, false, &CallbackError{Field: field, Reason: ve.Reason}
	}
	r.TaskID = id
	return r, field == "taskId", nil
}

// wireCallbackText is wireCallback with every string kept as its JSON text, a slice of the
// body: decoding allocates no strings.
type wireCallbackText struct {
	Code   codeText `json:"code"`
	Msg    jsonText `json:"msg"`
	TaskID jsonText `json:"taskId"`
	Data   struct {
		TaskID         jsonText `json:"task_id"`
		VideoID        jsonText `json:"video_id"`
		VideoURL       jsonText `json:"video_url"`
		ImageURL       jsonText `json:"image_url"`
		ResultVideoURL jsonText `json:"result_video_url"`
		ResultImageURL jsonText `json:"result_image_url"`
	} `json:"data"`
}

// jsonText is a JSON value's text as it appears in the decoded body.
type jsonText []byte

// UnmarshalJSON implements json.Unmarshaler. Like a string field, null leaves it unchanged.
func (t *jsonText) UnmarshalJSON(b []byte) error {
	if string(b) != "null" {
		*t = b
	}
	return nil
}

// fields decodes body into v and returns the fields as substrings of one copy of the body.
// ok is false, and the strict decoder must run, when decoding fails (err says why) or a value
// is not a plain string of printable ASCII without escapes.
func (v *wireCallbackText) fields(body []byte) (f callbackFields, ok bool, err error) {
	if err := json.Unmarshal(body, v); err != nil {
		return f, false, err
	}
	var text string // string(body), made when the first non-empty string needs it
	str := func(t jsonText, dst *string) bool {
		if t == nil {
			return true
		}
		off := cap(body) - cap(t)
		if len(t) < 2 || t[0] != '"' || t[len(t)-1] != '"' || off < 0 || off+len(t) > len(body) || &body[off] != &t[0] {
			return false
		}
		for _, c := range t[1 : len(t)-1] {
			if c < 0x20 || c > 0x7e || c == '\\' {
				return false
			}
		}
		if text == "" {
			text = string(body)
		}
		*dst = text[off+1 : off+len(t)-1]
		return true
	}
	d := &v.Data
	f.code = v.Code
	ok = str(v.Msg, &f.msg) && str(v.TaskID, &f.taskID) && str(d.TaskID, &f.dataTaskID) &&
		str(d.VideoID, &f.videoID) && str(d.VideoURL, &f.videoURL) && str(d.ImageURL, &f.imageURL) &&
		str(d.ResultVideoURL, &f.resultVideoURL) && str(d.ResultImageURL, &f.resultImageURL)
	return f, ok, nil
}

// strictCode accepts only a plain JSON integer between 100 and 999: the documented codes are
// 200, 400 and 500, and a string or float code means the sender is not Kie's callback.
func strictCode(c codeText) (int, error) {
	bad := func() error {
		return &CallbackError{Field: "code", Reason: "want an integer status code between 100 and 999"}
	}
	if c.n == 0 || c.n > len(c.text) {
		return 0, bad()
	}
	n := 0
	for _, d := range c.text[:c.n] {
		if d < '0' || d > '9' {
			return 0, bad()
		}
		n = n*10 + int(d-'0')
	}
	if n < 100 {
		return 0, bad()
	}
	return n, nil
}

// decodeError turns a json.Unmarshal error into a *CallbackError naming the field.
func decodeError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field, want := te.Field, te.Type.String()
		if field == "" {
			want = "a JSON object"
		}
		return &CallbackError{Field: field, Reason: fmt.Sprintf("want %s, got %s", want, te.Value), Err: err}
	}
	return &CallbackError{Reason: "not valid JSON: " + printable(err.Error(), 128), Err: err}
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
