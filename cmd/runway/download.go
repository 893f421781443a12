package main

import (
	"context"

	runway "github.com/b9c9aec2/runway-go"
)

var downloadCmd = &command{
	name: "download",
	args: "ID --out DIR [flags]",
	summary: "Save a finished task's video and cover into a directory (ID.mp4, ID.cover.jpg).\n" +
		"Prints the saved video's path. Files already there are kept; Ctrl-C leaves no partial file.",
	example: "runway download 3f1c0e54-... --out videos/",
	run:     (*app).download,
}

func (a *app) download(ctx context.Context, cmd *command, args []string) int {
	f := newFlags(cmd)
	dir := f.String("out", "", "directory to save into, created if missing (required)")
	jsonOut := f.Bool("json", false, "print one JSON line on stdout")
	api := addAPIFlags(f)
	pos, code, ok := f.parse(a, args, 1, 1)
	if !ok {
		return code
	}
	if *dir == "" {
		return f.fail(a, "--out DIR is required")
	}
	if code, ok := checkOutDir(f, a, *dir); !ok {
		return code
	}
	s, code := a.newSession(f, api)
	if s == nil {
		return code
	}
	defer s.close()
	id := pos[0]
	o := &out{w: a.stdout, json: *jsonOut}
	t, err := s.c.GetTask(ctx, id)
	if err != nil {
		return a.report(err)
	}
	switch t.State {
	case runway.StateSuccess:
	case runway.StateFail:
		return a.failed(o, t.Result())
	default:
		l := taskLineOf(t)
		l.TaskID = id
		l.Message = "not finished yet"
		o.task(l, "")
		a.say("runway: task %s is not finished yet (%s); nothing to download.\n"+
			"Wait and save with: runway wait %s --out %s", id, t.State, id, *dir)
		return exitError
	}
	r := t.Result()
	r.TaskID = id
	return a.finish(ctx, s, o, r, *dir)
}
