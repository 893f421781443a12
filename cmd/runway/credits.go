package main

import (
	"context"
	"encoding/json"
	"fmt"
)

var creditsCmd = &command{
	name:    "credits",
	args:    "[flags]",
	summary: "Print the account's remaining credits.",
	example: "runway credits --json",
	run:     (*app).credits,
}

func (a *app) credits(ctx context.Context, cmd *command, args []string) int {
	f := newFlags(cmd)
	jsonOut := f.Bool("json", false, `print {"credits": N} on stdout`)
	api := addAPIFlags(f)
	if _, code, ok := f.parse(a, args, 0, 0); !ok {
		return code
	}
	s, code := a.newSession(f, api)
	if s == nil {
		return code
	}
	defer s.close()
	n, err := s.c.Credits(ctx)
	if err != nil {
		return a.report(err)
	}
	if *jsonOut {
		b, _ := json.Marshal(struct {
			Credits int `json:"credits"`
		}{n})
		fmt.Fprintf(a.stdout, "%s\n", b)
	} else {
		fmt.Fprintln(a.stdout, n)
	}
	return exitOK
}
