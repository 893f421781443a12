package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	runway "github.com/b9c9aec2/runway-go"
)

// Exit statuses. Scripts rely on them; keep them stable.
const (
	exitOK          = 0   // success
	exitError       = 1   // API, network or other error
	exitUsage       = 2   // usage or configuration error; nothing was sent
	exitTaskFailed  = 3   // the task ran and failed
	exitTimeout     = 4   // the wait timed out; the task goes on
	exitInterrupted = 130 // Ctrl-C or SIGTERM (128 + SIGINT, as shells report it)
)

// app is one invocation of the command: its streams and environment. Everything the
// commands print goes through it, so tests run them in-process.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	env            func(string) string
	// bar is true when stderr is a terminal that accepts control codes (no NO_COLOR, no
	// TERM=dumb): download progress is then drawn as a bar instead of plain lines.
	bar bool
}

// command is one subcommand.
type command struct {
	name    string
	args    string // synopsis after the name
	summary string
	example string
	run     func(a *app, ctx context.Context, cmd *command, args []string) int
}

// commands lists the subcommands in the order the help shows them.
var commands []*command

func init() {
	commands = []*command{
		generateCmd, extendCmd, statusCmd, waitCmd, downloadCmd, creditsCmd, listenCmd, fakeCmd,
	}
}

// run is the whole program: it parses args (without the program name), runs one subcommand
// and returns the exit status. env looks up environment variables (os.Getenv).
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, env func(string) string) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, env: env}
	a.bar = wantBar(stderr, env)
	if len(args) == 0 {
		a.mainUsage(stderr)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help", "help":
		if len(args) > 1 && name == "help" {
			if c := lookup(args[1]); c != nil {
				return c.run(a, ctx, c, []string{"--help"})
			}
		}
		a.mainUsage(stdout)
		return exitOK
	case "-version", "--version", "version":
		fmt.Fprintln(stdout, "runway (runway-go SDK "+runway.Version+")")
		return exitOK
	}
	c := lookup(name)
	if c == nil {
		fmt.Fprintf(stderr, "runway: unknown command %q\nRun 'runway --help' for the list of commands.\n", name)
		return exitUsage
	}
	return c.run(a, ctx, c, args[1:])
}

// wantBar reports whether progress may be drawn as a bar on w: only on a terminal, and not
// when NO_COLOR is set (https://no-color.org) or TERM is "dumb".
func wantBar(w io.Writer, env func(string) string) bool {
	return isTerminal(w) && env("NO_COLOR") == "" && env("TERM") != "dumb"
}

func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

func (a *app) mainUsage(w io.Writer) {
	var b strings.Builder
	b.WriteString(`runway: the Runway video API served by Kie.ai, from the command line.

Usage:
  runway COMMAND [flags] [ID]      flags may come before or after the task id

Commands:
`)
	for _, c := range commands {
		short, _, _ := strings.Cut(c.summary, "\n")
		fmt.Fprintf(&b, "  %-9s %s\n", c.name, short)
	}
	b.WriteString(`
Environment:
  KIE_API_KEY           API key from https://kie.ai/api-key (every command except fake)
  KIE_BASE_URL          API base URL (default https://api.kie.ai); --base-url overrides it
  KIE_WEBHOOK_HMAC_KEY  callback signing key for listen and fake; --hmac-key overrides it
  NO_COLOR              when set, no progress bar or other control codes on stderr

Output:
  People read stderr: states as they change, download progress, a one-line summary.
  Scripts read stdout. With --json every task is one JSON object per line with the keys
  task_id, state, video_url, image_url, error_kind and message (credits: {"credits": N}).

Exit status:
  0 success; 1 API, network or other error; 2 usage or configuration error (nothing sent);
  3 the task failed; 4 the wait timed out (resume with runway wait ID); 130 interrupted.

Example:
  export KIE_API_KEY=...
  runway generate --prompt "A cat dancing under disco lights" --wait --out videos/

Run 'runway COMMAND --help' for a command's flags and an example.
`)
	fmt.Fprint(w, b.String())
}
