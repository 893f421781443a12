package runwaytest

import (
	"time"
)

// Outcome is how a scripted task ends. Code 200 is success; any other code is a failure
// reported with Message (record-detail failCode/failMsg, callback code/msg). The zero Outcome
// means success.
type Outcome struct {
	Code    int
	Message string
}

// Success is the successful outcome, with Kie's callback message.
func Success() Outcome { return Outcome{Code: 200, Message: "All generated successfully."} }

// Failure is a failed outcome with any code and message.
func Failure(code int, message string) Outcome { return Outcome{Code: code, Message: message} }

// Failed reports whether o is a failure.
func (o Outcome) Failed() bool { return o.Code != 0 && o.Code != 200 }

// Steps is how long a task stays in each non-terminal state before moving on:
// wait -> queueing -> generating -> success|fail. With Manual set the task only moves when the
// test calls Server.Advance or Server.Finish.
type Steps struct {
	Wait, Queueing, Generating time.Duration
	Manual                     bool
}

// DefaultSteps are the fast defaults: a task is terminal a few milliseconds after submission.
var DefaultSteps = Steps{Wait: time.Millisecond, Queueing: time.Millisecond, Generating: 2 * time.Millisecond}

// Shape selects the JSON shape of a callback.
type Shape int

// Callback shapes.
const (
	// ShapeAuto sends the Runway shape for generate/extend tasks and the Aleph shape for Aleph tasks.
	ShapeAuto Shape = iota
	// ShapeRunway sends {"code","msg","data":{"task_id","video_id","video_url","image_url"}}.
	ShapeRunway
	// ShapeAleph sends {"code","msg","data":{"result_video_url","result_image_url"}|null,"taskId"}.
	ShapeAleph
)

// CallbackFaults changes how a task's completion callback is delivered. The zero value is a
// normal delivery: one POST, retried on failure on the server's retry schedule.
type CallbackFaults struct {
	// Drop sends no callback at all.
	Drop bool
	// Copies is how many times the callback is delivered (each copy with its own retries);
	// 0 and 1 mean once.
	Copies int
	// Concurrent sends the copies at the same moment instead of one after another.
	Concurrent bool
	// Delay waits this long after the task is terminal before the first attempt.
	Delay time.Duration
	// Early completes the task at submission and sends the callback's first attempt before
	// the submission response is written, so the callback beats Generate's return. Steps
	// and Delay are ignored.
	Early bool
	// Shape selects the body shape.
	Shape Shape
}

// PollFaults changes what the details endpoints report for a task.
type PollFaults struct {
	// FailCodeAsString renders failCode (errorCode for Aleph) as a JSON string: "400".
	FailCodeAsString bool
	// UnknownState is reported as the state (Aleph: successFlag 2) on every poll instead of
	// the real one. Callbacks still carry the real outcome.
	UnknownState string
	// NoVideoInfo leaves videoInfo (Aleph: response) null on success.
	NoVideoInfo bool
	// Expired sets expireFlag 1 once the task is terminal; its file URLs then answer 404 and
	// only the temporary URLs from download-url serve the files.
	Expired bool
}

// Script decides how a task behaves. A new task takes its script from Server.ScriptPrompt
// when its prompt matches, else from Server.ScriptNext's queue, else from the chaos mix
// (WithChaos), else from the default (WithDefaultScript).
type Script struct {
	Outcome  Outcome
	Steps    *Steps // nil: the server's steps (WithSteps, WithManualSteps)
	Callback CallbackFaults
	Poll     PollFaults
}
