package main

import (
	"context"

	runway "github.com/b9c9aec2/runway-go"
)

var statusCmd = &command{
	name:    "status",
	args:    "ID [flags]",
	summary: "Print a task's state (exit 3 when the task failed).",
	example: "runway status 3f1c0e54-... --json",
	run:     (*app).status,
}

func (a *app) status(ctx context.Context, cmd *command, args []string) int {
	f := newFlags(cmd)
	jsonOut := f.Bool("json", false, "print one JSON line on stdout")
	api := addAPIFlags(f)
	pos, code, ok := f.parse(a, args, 1, 1)
	if !ok {
		return code
	}
	s, code := a.newSession(f, api)
	if s == nil {
		return code
	}
	defer s.close()
	id := pos[0]
	t, err := s.c.GetTask(ctx, id)
	if err != nil {
		return a.report(err)
	}
	o := &out{w: a.stdout, json: *jsonOut}
	l := taskLineOf(t)
	l.TaskID = id
	o.task(l, string(t.State))
	switch t.State {
	case runway.StateSuccess:
		a.say("task %s: success: %s", id, t.VideoURL)
		if t.Expired {
			a.say("The files have expired; runway download %s still fetches them through a fresh link.", id)
		}
	case runway.StateFail:
		a.say("runway: task %s failed (%s, code %d): %s", id, l.ErrorKind, t.FailCode, t.FailMessage)
		return exitTaskFailed
	default:
		a.say("task %s: %s (not finished). Wait for it with: runway wait %s", id, t.State, id)
	}
	return exitOK
}
