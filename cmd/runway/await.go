package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	runway "github.com/b9c9aec2/runway-go"
)

// waitFlags are the flags of the commands that wait for a task.
type waitFlags struct {
	interval *time.Duration
	timeout  *time.Duration
}

func addWaitFlags(f *flags) *waitFlags {
	return &waitFlags{
		interval: f.Duration("interval", runway.DefaultPollInterval,
			"time between polls (jittered; at least 1s)"),
		timeout: f.Duration("timeout", runway.DefaultWaitTimeout,
			"give up waiting after this long (exit 4; the task goes on);\n0 waits until Ctrl-C"),
	}
}

// check refuses values that cannot work, before anything is sent.
func (w *waitFlags) check(f *flags, a *app) (int, bool) {
	if *w.interval <= 0 {
		return f.fail(a, "--interval must be positive, got %s", *w.interval), false
	}
	if *w.timeout < 0 {
		return f.fail(a, "--timeout must not be negative, got %s (0 waits without limit)", *w.timeout), false
	}
	return exitOK, true
}

// checkOutDir refuses an --out that exists and is not a directory, before anything is sent.
func checkOutDir(f *flags, a *app, dir string) (int, bool) {
	if dir == "" {
		return exitOK, true
	}
	if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
		return f.fail(a, "--out %s is not a directory", dir), false
	}
	return exitOK, true
}

// await waits for task id, reports states as they change, saves the files into dir when dir
// is set, prints the outcome and returns the exit status.
func (a *app) await(ctx context.Context, s *session, o *out, id string, w *waitFlags, dir string) int {
	start := time.Now()
	r, err := s.c.WaitForResult(ctx, id,
		runway.WithPollInterval(*w.interval),
		runway.WithWaitTimeout(*w.timeout),
		runway.WithProgress(func(t *runway.Task) {
			if !t.State.Terminal() { // the outcome gets its own line below
				a.say("task %s: %s", id, t.State)
			}
		}),
	)
	var we *runway.WaitError
	switch {
	case err == nil:
	case errors.As(err, &we):
		return a.waitEnded(ctx, o, id, we, w)
	case r != nil: // *TaskError: the task ran and failed
		return a.failed(o, r)
	default:
		return a.report(err)
	}
	a.say("task %s: success after %s", id, since(start))
	return a.finish(ctx, s, o, r, dir)
}

// finish saves a successful result when dir is set and prints its line.
func (a *app) finish(ctx context.Context, s *session, o *out, r *runway.Result, dir string) int {
	l := resultLine(r)
	if dir == "" {
		o.task(l, r.VideoURL)
		return exitOK
	}
	saved, code := a.save(ctx, s, r, dir)
	if code != exitOK {
		if code == exitInterrupted {
			l.ErrorKind, l.Message = kindInterrupted, "interrupted while saving; nothing partial was left"
		} else {
			l.ErrorKind, l.Message = kindDownload, "saving failed"
		}
		o.task(l, "")
		return code
	}
	l.VideoPath, l.ImagePath = saved.VideoPath, saved.ImagePath
	o.task(l, saved.VideoPath)
	return exitOK
}

// save downloads r's video and cover into dir with a progress display.
func (a *app) save(ctx context.Context, s *session, r *runway.Result, dir string) (runway.SavedFiles, int) {
	p := newProgress(a.stderr, a.bar, "downloading")
	saved, err := s.c.SaveResult(ctx, r, dir, s.downloadOptions(runway.WithDownloadProgress(p.update))...)
	p.finish()
	switch {
	case err == nil:
		what := "video"
		if saved.ImagePath != "" {
			what = "video and cover"
		}
		a.say("task %s: saved %s into %s (%s)", r.TaskID, what, dir, size(fileSize(saved.VideoPath)+fileSize(saved.ImagePath)))
		return saved, exitOK
	case interrupted(ctx):
		a.say("runway: interrupted while downloading task %s; no partial file was left.\n"+
			"Save the files with: runway download %s --out %s", r.TaskID, r.TaskID, dir)
		return saved, exitInterrupted
	case errors.Is(err, runway.ErrHostNotAllowed):
		a.say("%s\nThe file is on a private or loopback address; pass --allow-private-hosts if you trust it.", prefixed(err))
		return saved, exitError
	}
	a.say("%s\nTry again with: runway download %s --out %s", prefixed(err), r.TaskID, dir)
	return saved, exitError
}

// fileSize is the size of the file at path, 0 if there is none.
func fileSize(path string) int64 {
	if path == "" {
		return 0
	}
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// waitEnded explains a wait that ended without an outcome: timeout, Ctrl-C or an error.
func (a *app) waitEnded(ctx context.Context, o *out, id string, we *runway.WaitError, w *waitFlags) int {
	last := string(we.LastState)
	if last == "" {
		last = "unknown (never polled successfully)"
	}
	resume := "runway wait " + id
	l := taskLine{TaskID: id, State: string(we.LastState)}
	switch {
	case errors.Is(we, runway.ErrWaitTimeout):
		l.ErrorKind, l.Message = kindTimeout, fmt.Sprintf("no outcome after %s; resume with: %s", *w.timeout, resume)
		o.task(l, "")
		a.say("runway: task %s still has no outcome after %s (last state: %s).\n"+
			"The task goes on at Kie. Resume with: %s", id, *w.timeout, last, resume)
		return exitTimeout
	case interrupted(ctx) && errors.Is(we, context.Canceled):
		l.ErrorKind, l.Message = kindInterrupted, "interrupted; resume with: "+resume
		o.task(l, "")
		a.say("runway: interrupted (last state: %s). The task goes on at Kie.\nResume with: %s", last, resume)
		return exitInterrupted
	}
	a.say("%s\n%sResume with: %s", prefixed(we), hint(we), resume)
	return exitCode(we)
}

// failed reports a task that ran and failed: its class and Kie's message.
func (a *app) failed(o *out, r *runway.Result) int {
	l := resultLine(r)
	o.task(l, "")
	var te *runway.TaskError
	advice := "Change the request before submitting it again."
	if errors.As(r.Err(), &te) && te.Retryable() {
		advice = "Submitting the same request again later may succeed."
	}
	a.say("runway: task %s failed (%s, code %d): %s\n%s", r.TaskID, l.ErrorKind, r.Code, r.Message, advice)
	return exitTaskFailed
}

// report explains an error on stderr, with what to do about it, and returns its exit status.
func (a *app) report(err error) int {
	a.say("%s", prefixed(err))
	fmt.Fprint(a.stderr, hint(err))
	return exitCode(err)
}

// hint says what to do about an API error, or nothing.
func hint(err error) string {
	switch {
	case errors.Is(err, runway.ErrUnauthorized):
		return "The API key was refused: check KIE_API_KEY (https://kie.ai/api-key).\n"
	case errors.Is(err, runway.ErrInsufficientCredits):
		return "Not enough credits: see 'runway credits' and top up at https://kie.ai.\n"
	case errors.Is(err, runway.ErrNotFound):
		return "Kie knows no such task: check the id (Kie keeps tasks for 14 days) and --base-url.\n"
	case errors.Is(err, runway.ErrRateLimited):
		return "Kie is rate limiting this key: wait a little and try again.\n"
	case errors.Is(err, runway.ErrMaintenance):
		return "Kie is under maintenance: try again later.\n"
	case errors.Is(err, runway.ErrOutcomeUnknown):
		return "The task may have been created and billed: check before submitting again.\n"
	}
	return ""
}

// exitCode maps an error that is not a task failure or an ended wait to an exit status.
func exitCode(err error) int {
	switch {
	case errors.Is(err, runway.ErrInvalidRequest):
		return exitUsage
	case errors.Is(err, runway.ErrTaskFailed):
		return exitTaskFailed
	case errors.Is(err, runway.ErrWaitTimeout):
		return exitTimeout
	}
	return exitError
}
