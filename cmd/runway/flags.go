package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
)

// flags is a flag.FlagSet that remembers the order flags were defined in, so the help lists
// them in a sensible order rather than alphabetically.
type flags struct {
	fs    *flag.FlagSet
	cmd   *command
	order []string
}

func newFlags(c *command) *flags {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors and help are printed by parse
	return &flags{fs: fs, cmd: c}
}

func (f *flags) String(name, value, usage string) *string {
	f.order = append(f.order, name)
	return f.fs.String(name, value, usage)
}

func (f *flags) Bool(name string, value bool, usage string) *bool {
	f.order = append(f.order, name)
	return f.fs.Bool(name, value, usage)
}

func (f *flags) Int(name string, value int, usage string) *int {
	f.order = append(f.order, name)
	return f.fs.Int(name, value, usage)
}

func (f *flags) Duration(name string, value time.Duration, usage string) *time.Duration {
	f.order = append(f.order, name)
	return f.fs.Duration(name, value, usage)
}

// parse parses args, allowing flags before and after positional arguments ("runway wait ID
// --json" and "runway wait --json ID"); everything after "--" is positional. It checks the
// number of positionals against min and max (max < 0: any). On --help it prints the help on
// stdout and returns exitOK with ok false; on a usage error it explains it on stderr and
// returns exitUsage with ok false.
func (f *flags) parse(a *app, args []string, min, max int) (pos []string, code int, ok bool) {
	rest := args
	for {
		// Find "--" ourselves: the flag package swallows it, and after it nothing is a flag.
		var tail []string
		for i, s := range rest {
			if s == "--" {
				rest, tail = rest[:i], rest[i+1:]
				break
			}
		}
		err := f.fs.Parse(rest)
		if errors.Is(err, flag.ErrHelp) {
			f.usage(a.stdout)
			return nil, exitOK, false
		}
		if err != nil {
			return nil, f.fail(a, "%v", err), false
		}
		left := f.fs.Args()
		if len(left) > 0 {
			pos = append(pos, left[0])
			rest = append(left[1:], tailMarker(tail)...)
			continue
		}
		if tail != nil {
			pos = append(pos, tail...)
		}
		break
	}
	switch {
	case len(pos) < min:
		return nil, f.fail(a, "missing %s", strings.TrimSpace(f.cmd.args)), false
	case max >= 0 && len(pos) > max:
		return nil, f.fail(a, "unexpected argument %q", pos[max]), false
	}
	return pos, exitOK, true
}

// tailMarker puts "--" and what followed it back, for the next round of parsing.
func tailMarker(tail []string) []string {
	if tail == nil {
		return nil
	}
	return append([]string{"--"}, tail...)
}

// fail reports a usage error and how to get help; it returns exitUsage.
func (f *flags) fail(a *app, format string, args ...any) int {
	fmt.Fprintf(a.stderr, "runway %s: %s\nRun 'runway %s --help' for usage.\n",
		f.cmd.name, fmt.Sprintf(format, args...), f.cmd.name)
	return exitUsage
}

// usage prints the command's help: synopsis, summary, flags with defaults, one example.
func (f *flags) usage(w io.Writer) {
	c := f.cmd
	var b strings.Builder
	fmt.Fprintf(&b, "Usage: runway %s %s\n\n%s\n\nFlags:\n", c.name, c.args, c.summary)
	for _, name := range f.order {
		fl := f.fs.Lookup(name)
		arg, text := flag.UnquoteUsage(fl)
		head := "--" + name
		switch arg {
		case "string", "int", "duration", "value", "float", "uint":
			arg = strings.ToUpper(arg)
		}
		if arg != "" {
			head += " " + arg
		}
		if _, isBool := fl.Value.(interface{ IsBoolFlag() bool }); isBool {
			head = "--" + name
		}
		line := fmt.Sprintf("  %-24s %s", head, strings.ReplaceAll(text, "\n", "\n"+strings.Repeat(" ", 27)))
		if fl.DefValue != "" && fl.DefValue != "false" {
			line += fmt.Sprintf(" (default %s)", fl.DefValue)
		}
		b.WriteString(line + "\n")
	}
	b.WriteString("  --help                   show this help\n")
	fmt.Fprintf(&b, "\nExample:\n  %s\n", strings.ReplaceAll(c.example, "\n", "\n  "))
	fmt.Fprint(w, b.String())
}
