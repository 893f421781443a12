package main

import "context"

var waitCmd = &command{
	name: "wait",
	args: "ID [flags]",
	summary: "Wait for a task by polling and print its result; resume a wait that was cut short.\n" +
		"Prints the video URL (with --out, the saved video's path); exit 3 if the task failed,\n" +
		"4 on --timeout, 130 on Ctrl-C (the task goes on at Kie: run the same command again).",
	example: "runway wait 3f1c0e54-... --timeout 20m --out videos/ --json",
	run:     (*app).wait,
}

func (a *app) wait(ctx context.Context, cmd *command, args []string) int {
	f := newFlags(cmd)
	w := addWaitFlags(f)
	dir := f.String("out", "", "save the video and cover into `DIR`")
	jsonOut := f.Bool("json", false, "print one JSON line on stdout")
	api := addAPIFlags(f)
	pos, code, ok := f.parse(a, args, 1, 1)
	if !ok {
		return code
	}
	if code, ok := w.check(f, a); !ok {
		return code
	}
	if code, ok := checkOutDir(f, a, *dir); !ok {
		return code
	}
	s, code := a.newSession(f, api)
	if s == nil {
		return code
	}
	defer s.close()
	return a.await(ctx, s, &out{w: a.stdout, json: *jsonOut}, pos[0], w, *dir)
}
