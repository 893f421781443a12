// Command readmecheck type-checks every ```go block of a Markdown file (README.md) against
// the repository's working tree, so that the README cannot drift from the API. Run by
// .ci/readme-check; the convention for writing blocks is in CONTRIBUTING.md.
//
//	go run .ci/readmecheck/main.go README.md
//
// Each block becomes its own package in a temporary module that uses this repository's
// modules through replace directives (third-party modules come from the module cache or the
// proxy). A block is one of:
//
//   - a complete file: it starts with a package clause; it is checked as it is.
//   - declarations: some line starts with "func " at column 0 (a test function, a handler);
//     the block is placed at the top level of a file.
//   - statements: anything else; the block becomes the body of
//     func readmeBlock() error { ... }, so "return err" works.
//
// Blocks that are not complete files get the imports they use added (the packages named in
// imports below, by the name they are used with) and share a prelude (below) that declares
// the names fragments leave undefined: ctx, c, mux, key, req, ... A variable a fragment
// declares and does not use is tolerated (a fragment shows how a value is obtained).
package main

import (
	"bufio"
	"errors"
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// imports are the packages a fragment may use without importing them, by package name.
var imports = map[string]string{
	"bytes":      "bytes",
	"context":    "context",
	"errors":     "errors",
	"fmt":        "fmt",
	"http":       "net/http",
	"httptest":   "net/http/httptest",
	"io":         "io",
	"json":       "encoding/json",
	"log":        "log",
	"os":         "os",
	"redis":      "github.com/redis/go-redis/v9",
	"redisstore": "github.com/b9c9aec2/runway-go/redisstore",
	"require":    "github.com/stretchr/testify/require",
	"runway":     "github.com/b9c9aec2/runway-go",
	"runwayotel": "github.com/b9c9aec2/runway-go/runwayotel",
	"runwaytest": "github.com/b9c9aec2/runway-go/runwaytest",
	"slog":       "log/slog",
	"strings":    "strings",
	"testing":    "testing",
	"time":       "time",
}

// prelude declares, at package level, the names a README fragment may use without defining
// them. Keep it short and obvious: each name is what a reader would assume from context.
const prelude = `package readme

import (
	"context"
	"net/http"
	"testing"

	runway "github.com/b9c9aec2/runway-go"
)

var (
	ctx         context.Context  // the request's or the program's context
	shutdownCtx context.Context  // a context bounding a graceful shutdown
	t           *testing.T       // in test fragments
	c           *runway.Client   // a client from runway.NewClient
	mux         *http.ServeMux   // the application's mux
	apiKey      string           // KIE_API_KEY
	key         string           // the webhook HMAC key
	taskID, id  string           // a task id
	body        string           // a callback body
	req         runway.GenerateRequest
	res         *runway.Result   // a result from WaitForResult or a callback
	fn, process func(context.Context, *runway.Result) error // a result func
	markFailed  func(ctx context.Context, taskID string, err error) error
	saveVideo   func(ctx context.Context, taskID, videoURL string) error
	markDone    func(ctx context.Context, orderID string, r *runway.Result) error // the user's own record
	alert       func(taskID, orderID string, err error) // pages a person
	bar         interface{ Set(done, total int64) } // a progress bar
	myCallbackHandler http.Handler                  // the code under test
)

var _, _, _, _, _, _, _ = ctx, shutdownCtx, t, c, mux, apiKey, key
var _, _, _, _, _, _, _, _, _, _, _, _, _ = taskID, id, body, req, res, fn, process, markFailed, saveVideo, markDone, alert, bar, myCallbackHandler
`

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: readmecheck README.md")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "readmecheck:", err)
		os.Exit(1)
	}
}

// block is one ```go block: its text and the line of the Markdown file it starts on.
type block struct {
	line int
	text string
}

func run(mdPath string) error {
	repo, err := filepath.Abs(filepath.Dir(mdPath))
	if err != nil {
		return err
	}
	blocks, err := extract(mdPath)
	if err != nil {
		return err
	}
	if len(blocks) == 0 {
		return fmt.Errorf("no go blocks in %s", mdPath)
	}
	dir, err := os.MkdirTemp("", "readmecheck")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := writeModule(dir, repo); err != nil {
		return err
	}

	fset := token.NewFileSet()
	var files [][]*ast.File
	for i, b := range blocks {
		pkgDir := filepath.Join(dir, fmt.Sprintf("b%02d", i+1))
		if err := os.Mkdir(pkgDir, 0o755); err != nil {
			return err
		}
		src, wrapped := render(b.text)
		var fs []*ast.File
		if wrapped {
			p := filepath.Join(pkgDir, "prelude.go")
			if err := os.WriteFile(p, []byte(prelude), 0o644); err != nil {
				return err
			}
			f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
			if err != nil {
				return fmt.Errorf("prelude: %w", err)
			}
			fs = append(fs, f)
		}
		p := filepath.Join(pkgDir, "block.go")
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			return err
		}
		f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
		if err != nil {
			return fmt.Errorf("%s:%d: go block does not parse: %w", mdPath, b.line, err)
		}
		fs = append(fs, f)
		files = append(files, fs)
	}

	// Resolve the modules once, so that the importer's go list calls find everything.
	tidy := exec.Command("go", "mod", "tidy")
	tidy.Dir, tidy.Stderr = dir, os.Stderr
	tidy.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	if err := tidy.Run(); err != nil {
		return fmt.Errorf("go mod tidy in the check module: %w", err)
	}
	if err := os.Chdir(dir); err != nil {
		return err
	}
	os.Setenv("GOWORK", "off")
	os.Setenv("GOFLAGS", "-mod=mod")

	imp := importer.ForCompiler(fset, "source", nil)
	var failed []string
	for i, fs := range files {
		b := blocks[i]
		conf := types.Config{Importer: imp.(types.ImporterFrom), Error: func(err error) {
			var te types.Error
			if errors.As(err, &te) && te.Soft && (strings.Contains(te.Msg, "declared and not used") || strings.Contains(te.Msg, "imported and not used")) {
				return // a fragment may show a value it does not use
			}
			failed = append(failed, relocate(err.Error(), mdPath, b))
		}}
		_, _ = conf.Check(fmt.Sprintf("readme/b%02d", i+1), fset, fs, nil)
	}
	if len(failed) > 0 {
		return errors.New(strings.Join(failed, "\n"))
	}
	fmt.Printf("readmecheck: %d go blocks of %s type-check\n", len(blocks), mdPath)
	return nil
}

// extract returns the ```go blocks of a Markdown file. Any other fence whose info string
// starts with "go" (```golang, ```Go, ~~~go) is an error rather than a block silently left
// unchecked; the content of other fences is skipped, so a fence shown inside one is not read.
func extract(path string) ([]block, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []block
	var cur *block
	fence := "" // the marker of the open fence (``` or ~~~, possibly longer), "" outside one
	opened := 0 // the line that opened it
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trim := strings.TrimSpace(line)
		if fence != "" {
			if strings.HasPrefix(trim, fence) && strings.Trim(trim, fence[:1]) == "" {
				if cur != nil {
					out = append(out, *cur)
					cur = nil
				}
				fence = ""
			} else if cur != nil {
				cur.text += line + "\n"
			}
			continue
		}
		marker, info, ok := fenceOpen(trim)
		if !ok {
			continue
		}
		fence, opened = marker, n
		switch {
		case marker == "```" && info == "go":
			cur = &block{line: n + 1}
		case strings.HasPrefix(strings.ToLower(info), "go"):
			return nil, fmt.Errorf("%s:%d: fence %q: write go blocks as ```go so that they are checked", path, n, trim)
		}
	}
	if fence != "" {
		return nil, fmt.Errorf("%s:%d: fenced block not closed", path, opened)
	}
	return out, sc.Err()
}

// fenceOpen reports whether a trimmed line opens a fenced block: its marker (three or more
// backticks or tildes) and its info string.
func fenceOpen(trim string) (marker, info string, ok bool) {
	if !strings.HasPrefix(trim, "```") && !strings.HasPrefix(trim, "~~~") {
		return "", "", false
	}
	c := trim[:1]
	rest := strings.TrimLeft(trim, c)
	return trim[:len(trim)-len(rest)], strings.TrimSpace(rest), true
}

var (
	topLevelFunc = regexp.MustCompile(`(?m)^func `)
	selector     = regexp.MustCompile(`\b([a-z][a-z0-9]*)\.[A-Za-z_]`)
)

// blockOffset is how many lines render puts before a fragment's first line.
const blockOffset = 100

// render turns a block into a Go file. wrapped reports whether it needs the prelude. The
// fragment starts on line blockOffset+1 of the file, so that errors can be mapped back to
// README lines.
func render(text string) (src string, wrapped bool) {
	if strings.HasPrefix(strings.TrimSpace(text), "package ") {
		return text, false
	}
	var used []string // package names
	for _, m := range selector.FindAllStringSubmatch(text, -1) {
		if _, ok := imports[m[1]]; ok && !slices.Contains(used, m[1]) {
			used = append(used, m[1])
		}
	}
	slices.Sort(used)
	var head strings.Builder
	head.WriteString("package readme\n\nimport (\n")
	for _, name := range used {
		fmt.Fprintf(&head, "\t%s %q\n", name, imports[name])
	}
	head.WriteString(")\n")
	statements := !topLevelFunc.MatchString(text)
	if statements {
		head.WriteString("\nfunc readmeBlock() error {\n")
	}
	lines := strings.Count(head.String(), "\n")
	head.WriteString(strings.Repeat("\n", blockOffset-lines))
	head.WriteString(text)
	if statements {
		head.WriteString("\treturn nil\n}\n")
	}
	return head.String(), true
}

// relocate rewrites "…/block.go:L:C: msg" to "README.md:line:col: msg".
func relocate(msg, mdPath string, b block) string {
	m := blockPos.FindStringSubmatch(msg)
	if m == nil {
		return fmt.Sprintf("%s:%d: (go block) %s", mdPath, b.line, msg)
	}
	l, _ := strconv.Atoi(m[1])
	return fmt.Sprintf("%s:%d:%s: %s", mdPath, b.line+l-blockOffset-1, m[2], msg[len(m[0]):])
}

var blockPos = regexp.MustCompile(`^.*block\.go:(\d+):(\d+): `)

// writeModule writes the check module's go.mod: every module of the repository replaced by
// its directory in the working tree.
func writeModule(dir, repo string) error {
	var req, repl strings.Builder
	mods := []string{"."}
	out, err := exec.Command("git", "-C", repo, "ls-files", "*/go.mod").Output()
	if err != nil {
		return fmt.Errorf("git ls-files: %w", err)
	}
	for _, m := range strings.Fields(string(out)) {
		if !strings.Contains(m, "testdata/") {
			mods = append(mods, filepath.Dir(m))
		}
	}
	for _, m := range mods {
		gomod, err := os.ReadFile(filepath.Join(repo, m, "go.mod"))
		if err != nil {
			return err
		}
		mp := regexp.MustCompile(`(?m)^module\s+(\S+)`).FindSubmatch(gomod)
		if mp == nil {
			return fmt.Errorf("%s/go.mod: no module line", m)
		}
		fmt.Fprintf(&req, "\t%s v0.0.0\n", mp[1])
		fmt.Fprintf(&repl, "replace %s => %s\n", mp[1], filepath.Join(repo, m))
	}
	gomod := "module readme\n\ngo 1.26\n\nrequire (\n" + req.String() + ")\n\n" + repl.String()
	return os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644)
}
