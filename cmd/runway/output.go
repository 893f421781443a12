package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	runway "github.com/b9c9aec2/runway-go"
)

// taskLine is the --json line for one task. The first six keys are always present.
type taskLine struct {
	TaskID   string `json:"task_id"`
	State    string `json:"state"`
	VideoURL string `json:"video_url"`
	ImageURL string `json:"image_url"`
	// ErrorKind is the failure class of a failed task (moderation, format, quota,
	// concurrency, size, input, transient, server, unknown), "timeout" or "interrupted" for a
	// wait that ended early, "download" for a save that failed; empty on success.
	ErrorKind string `json:"error_kind"`
	// Message is Kie's message (failMsg, or the callback's msg), or what went wrong locally.
	Message   string `json:"message"`
	Code      int    `json:"code,omitempty"`
	VideoPath string `json:"video_path,omitempty"`
	ImagePath string `json:"image_path,omitempty"`
}

// Extra values of error_kind for waits and saves that did not finish.
const (
	kindTimeout     = "timeout"
	kindInterrupted = "interrupted"
	kindDownload    = "download"
)

// stateSubmitted is the state printed for a task just submitted, before anything polled it.
const stateSubmitted = "submitted"

func resultLine(r *runway.Result) taskLine {
	l := taskLine{TaskID: r.TaskID, State: string(runway.StateSuccess), VideoURL: r.VideoURL,
		ImageURL: r.ImageURL, Message: r.Message}
	if err := r.Err(); err != nil {
		l.State = string(runway.StateFail)
		l.ErrorKind = string(runway.Classify(r.Code, r.Message))
		l.Code = r.Code
	}
	return l
}

func taskLineOf(t *runway.Task) taskLine {
	l := taskLine{TaskID: t.ID, State: string(t.State), VideoURL: t.VideoURL, ImageURL: t.ImageURL}
	if t.State == runway.StateFail {
		l.ErrorKind = string(runway.Classify(t.FailCode, t.FailMessage))
		l.Message = t.FailMessage
		l.Code = t.FailCode
	}
	return l
}

// out prints the machine-readable outputs on stdout; it is safe for concurrent use (listen
// prints from callback handlers).
type out struct {
	mu   sync.Mutex
	w    io.Writer
	json bool
}

// task prints l as one JSON line with --json, else plain (the plain text, if not empty).
func (o *out) task(l taskLine, plain string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.json {
		b, _ := json.Marshal(l)
		fmt.Fprintf(o.w, "%s\n", b)
		return
	}
	if plain != "" {
		fmt.Fprintln(o.w, plain)
	}
}

// say prints one line for people on stderr.
func (a *app) say(format string, args ...any) {
	fmt.Fprintf(a.stderr, format+"\n", args...)
}

// isTerminal reports whether w is a character device (a terminal), without any dependency.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// since formats the time elapsed since start for people: "4s", "1m30s".
func since(start time.Time) string {
	d := time.Since(start)
	if d < 10*time.Second {
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}
