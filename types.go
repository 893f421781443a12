package runway

import (
	"encoding/json"
	"strconv"
	"time"
)

// Quality is the output resolution of a Runway video.
type Quality string

// Qualities accepted by the API. 1080p is only available for 5-second generations.
const (
	Quality720p  Quality = "720p"
	Quality1080p Quality = "1080p"
)

// AspectRatio is the frame shape of a generated video.
type AspectRatio string

// Aspect ratios accepted by the API. AspectRatio21x9 is accepted only by Aleph.
const (
	AspectRatio16x9 AspectRatio = "16:9"
	AspectRatio4x3  AspectRatio = "4:3"
	AspectRatio1x1  AspectRatio = "1:1"
	AspectRatio3x4  AspectRatio = "3:4"
	AspectRatio9x16 AspectRatio = "9:16"
	AspectRatio21x9 AspectRatio = "21:9"
)

// GenerateRequest is the body of a text-to-video or image-to-video submission
// (POST /api/v1/runway/generate).
type GenerateRequest struct {
	// Prompt describes the video. Required, at most 1800 characters (runes).
	Prompt string
	// ImageURL is an optional reference image to animate. Absolute http(s) URL.
	ImageURL string
	// Duration is the length in seconds: 5 or 10.
	Duration int
	// Quality is Quality720p or Quality1080p; 1080p only with Duration 5.
	Quality Quality
	// AspectRatio is required when ImageURL is empty (the image decides it otherwise).
	AspectRatio AspectRatio
	// WaterMark is text drawn in the bottom-right corner; empty means none.
	WaterMark string
	// CallBackURL receives the completion callback. Empty falls back to WithCallbackURL.
	CallBackURL string
	// Extra holds JSON fields the SDK does not model (for example "model", which older Kie
	// docs and clients send, or a parameter Kie adds later). They are sent after the modeled
	// fields, each value encoded with encoding/json. A key that names a modeled field (in any
	// case), an empty key or a value that cannot be encoded is refused locally with a
	// *ValidationError: an extra field never overrides a modeled one.
	Extra map[string]any
	// Meta is yours: it is never sent to Kie. With WithJournal it is kept in the journal and
	// comes back on Result.Meta, from a callback or a poll, so that the result func can find
	// your own record (an order id) without a lookup.
	Meta map[string]string
}

// ExtendRequest continues a previously generated video (POST /api/v1/runway/extend).
type ExtendRequest struct {
	// TaskID is the id of the original successful generation. Required.
	TaskID string
	// Prompt describes what happens next. Required.
	Prompt string
	// Quality is Quality720p or Quality1080p. Required.
	Quality Quality
	// WaterMark is text drawn in the bottom-right corner; empty means none.
	WaterMark string
	// CallBackURL receives the completion callback. Empty falls back to WithCallbackURL.
	CallBackURL string
	// Extra holds JSON fields the SDK does not model (for example "model", which older Kie
	// docs and clients send, or a parameter Kie adds later). They are sent after the modeled
	// fields, each value encoded with encoding/json. A key that names a modeled field (in any
	// case), an empty key or a value that cannot be encoded is refused locally with a
	// *ValidationError: an extra field never overrides a modeled one.
	Extra map[string]any
	// Meta is yours: it is never sent to Kie. With WithJournal it is kept in the journal and
	// comes back on Result.Meta, from a callback or a poll, so that the result func can find
	// your own record (an order id) without a lookup.
	Meta map[string]string
}

// AlephRequest transforms an existing video with the Aleph model
// (POST /api/v1/aleph/generate).
//
// Deprecated: Kie has discontinued Runway Aleph, so GenerateAleph submissions are expected to
// fail. The type is kept so that existing code compiles.
type AlephRequest struct {
	// Prompt describes the transformation. Required.
	Prompt string
	// VideoURL is the source video. Required, absolute http(s) URL.
	VideoURL string
	// AspectRatio is optional; Aleph also accepts AspectRatio21x9.
	AspectRatio AspectRatio
	// Seed makes a generation reproducible; nil leaves it to the API.
	Seed *int
	// ReferenceImage is an optional image URL steering style or content.
	ReferenceImage string
	// WaterMark is text drawn in the bottom-right corner; empty means none.
	WaterMark string
	// CallBackURL receives the completion callback. Empty falls back to WithCallbackURL.
	CallBackURL string
	// UploadCN stores results on Alibaba Cloud OSS instead of overseas storage.
	UploadCN bool
	// Extra holds JSON fields the SDK does not model (for example "model", which older Kie
	// docs and clients send, or a parameter Kie adds later). They are sent after the modeled
	// fields, each value encoded with encoding/json. A key that names a modeled field (in any
	// case), an empty key or a value that cannot be encoded is refused locally with a
	// *ValidationError: an extra field never overrides a modeled one.
	Extra map[string]any
	// Meta is yours: it is never sent to Kie. With WithJournal it is kept in the journal and
	// comes back on Result.Meta, from a callback or a poll, so that the result func can find
	// your own record (an order id) without a lookup.
	Meta map[string]string
}

// State is the lifecycle state of a task as reported by the details endpoints.
type State string

// Known task states. Only StateSuccess and StateFail are terminal.
const (
	StateWait       State = "wait"
	StateQueueing   State = "queueing"
	StateGenerating State = "generating"
	StateSuccess    State = "success"
	StateFail       State = "fail"
)

// Terminal reports whether s is a final state (success or fail).
func (s State) Terminal() bool { return s == StateSuccess || s == StateFail }

// Known reports whether s is one of the documented states. A poller must treat an
// unknown state as an error, never as "still running".
func (s State) Known() bool {
	switch s {
	case StateWait, StateQueueing, StateGenerating, StateSuccess, StateFail:
		return true
	}
	return false
}

// Task is a task's details, from GetTask or GetAlephTask (normalised to one shape).
type Task struct {
	// ID is the task id.
	ID string
	// ParentID is the id of the extended task for extensions, empty otherwise.
	ParentID string
	// State is the lifecycle state; check State.Known before trusting it.
	State State
	// VideoID identifies the generated video (Runway only).
	VideoID string
	// VideoURL is the generated video, valid for 14 days; set on success.
	VideoURL string
	// ImageURL is the cover image of the generated video; set on success.
	ImageURL string
	// FailCode is the failure code, decoded from a number or a numeric string; 0 when there
	// is none or when the API sent something that is not an integer (see FailCodeText).
	FailCode int
	// FailCodeText is failCode as the API sent it when that was not a JSON number: the
	// string's content ("E_MODERATION", "400", ""), or the JSON text of a bool or object;
	// empty for a number or null. Whether a task failed is decided by State alone: a
	// successful task may carry a stray failCode.
	FailCodeText string
	// FailMessage is the API's failure text, kept verbatim.
	FailMessage string
	// Expired reports that the files were deleted after the retention period (expireFlag 1,
	// "1" or true).
	Expired bool
	// GeneratedAt is generateTime (Runway) or completeTime (Aleph), in UTC: accepted as
	// "YYYY-MM-DD HH:mm:ss" (UTC assumed), RFC 3339, or epoch milliseconds or seconds (number
	// or numeric string); zero when absent or in any other form (Raw keeps it).
	GeneratedAt time.Time
	// Aleph reports that the task came from the Aleph details endpoint.
	Aleph bool
	// Raw is the whole `data` object as received.
	Raw json.RawMessage

	secrets []string // the fetching client's keys, kept out of the text of Result().Err()
}

// Result builds the terminal Result of a task seen by polling. It is meaningful only when
// t.State is terminal.
func (t *Task) Result() *Result {
	r := &Result{
		TaskID:   t.ID,
		VideoID:  t.VideoID,
		VideoURL: t.VideoURL,
		ImageURL: t.ImageURL,
		Source:   SourcePoll,
		Raw:      t.Raw,
		secrets:  t.secrets,
	}
	if t.State == StateSuccess {
		r.Code = 200
		r.Message = "success"
		return r
	}
	r.Code = t.FailCode
	r.Message = t.FailMessage
	if t.FailCodeText != "" && t.FailCodeText != strconv.Itoa(t.FailCode) {
		r.CodeText = t.FailCodeText
	}
	if r.Code == 0 || r.Code == 200 {
		// A failed task with no usable code is still a failure; 400 is the only documented
		// failCode and keeps Result.Err from reporting success.
		r.Code = 400
	}
	return r
}

// Source says how a Result reached the SDK.
type Source string

// Result sources.
const (
	SourceCallback Source = "callback"
	SourcePoll     Source = "poll"
)

// Result is the outcome of a finished task, from a callback or from polling.
type Result struct {
	TaskID   string `json:"taskId"`
	VideoID  string `json:"videoId,omitempty"`
	VideoURL string `json:"videoUrl,omitempty"`
	// ImageURL is the cover image.
	ImageURL string `json:"imageUrl,omitempty"`
	// Code is 200 on success; the callback code or failCode otherwise.
	Code int `json:"code"`
	// CodeText is the failure code as the API sent it when it was not an integer (polling
	// only, see Task.FailCodeText); Code is then 400.
	CodeText string `json:"codeText,omitempty"`
	// Message is msg (callbacks) or failMsg (polling), verbatim.
	Message string `json:"msg,omitempty"`
	// Source says whether a callback or a poll produced this result.
	Source Source `json:"source"`
	// Raw is the callback body or the details `data` object as received.
	Raw json.RawMessage `json:"raw,omitempty"`
	// Meta is the submission's Meta, found in the client's journal (WithJournal) by task id.
	// It is nil without a journal, for a handler not built by Client.CallbackHandler, and
	// for a callback that arrives before the submission that created its task was journaled
	// and that the handler stopped waiting for (it waits up to two seconds for submissions
	// of its client still in progress).
	Meta map[string]string `json:"meta,omitempty"`

	// secrets are the keys of the client that produced the result (the API key, the HMAC
	// keys), kept out of the text of Err().
	secrets []string
}

// Err returns nil for a successful result and a classified *TaskError otherwise.
func (r *Result) Err() error {
	if r == nil {
		return nil
	}
	if r.Code == 200 {
		return nil
	}
	code := r.Code
	if r.CodeText != "" {
		// A textual code says nothing Classify knows; the message decides the class.
		code = 0
	}
	return &TaskError{TaskID: r.TaskID, Code: code, CodeText: r.CodeText, Message: r.Message, Kind: Classify(code, r.Message),
		secrets: r.secrets}
}
