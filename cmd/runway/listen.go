package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	runway "github.com/b9c9aec2/runway-go"
)

var listenCmd = &command{
	name: "listen",
	args: "[--addr HOST:PORT] [flags]",
	summary: "Receive Kie's callbacks on any path and print one line per result as it arrives\n" +
		"(plain: task id, state, and video URL or, with --out, the saved video's path).\n" +
		"Run it behind a tunnel and pass the tunnel's URL as --callback-url to generate.",
	example: "runway listen --addr 127.0.0.1:8090 --out videos/ --json",
	run:     (*app).listen,
}

func (a *app) listen(ctx context.Context, cmd *command, args []string) int {
	f := newFlags(cmd)
	addr := f.String("addr", "127.0.0.1:8090", "listen on `HOST:PORT`")
	hmacKey := f.String("hmac-key", "", "require callbacks signed with `KEY` (Kie's webhookHmacKey)\n(default $KIE_WEBHOOK_HMAC_KEY; unset: signatures are not checked)")
	dir := f.String("out", "", "save each successful result's video and cover into `DIR`")
	jsonOut := f.Bool("json", false, "print one JSON line per result on stdout")
	api := addAPIFlags(f)
	if _, code, ok := f.parse(a, args, 0, 0); !ok {
		return code
	}
	if code, ok := checkOutDir(f, a, *dir); !ok {
		return code
	}
	key := *hmacKey
	if key == "" {
		key = a.env("KIE_WEBHOOK_HMAC_KEY")
	}
	s, code := a.newSession(f, api)
	if s == nil {
		return code
	}
	defer s.close()

	l := &listener{a: a, s: s, o: &out{w: a.stdout, json: *jsonOut}, dir: *dir}
	handle := l.print
	if *dir != "" {
		q, err := runway.NewSaveQueue(s.c, *dir, 2, 64, s.downloadOptions(runway.WithOnSaved(l.saved))...)
		if err != nil {
			return a.report(err)
		}
		l.q = q
		handle = l.enqueue
	}
	opts := []runway.CallbackOption{runway.WithResultFunc(handle)}
	if key != "" {
		opts = append(opts, runway.WithHMACKey(key))
	}
	mux := http.NewServeMux()
	mux.Handle("/", s.c.CallbackHandler(opts...))

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		a.say("runway listen: %v\nPick another address with --addr.", err)
		return exitError
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	a.say("listening for Kie callbacks on http://%s/ (any path)", ln.Addr())
	if key == "" {
		a.say("signatures are not checked: set --hmac-key or KIE_WEBHOOK_HMAC_KEY to require them")
	} else {
		a.say("signatures are required")
	}
	a.say("Ctrl-C stops.")

	select {
	case err = <-served:
	case <-ctx.Done():
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = srv.Shutdown(shut) // lets callbacks being answered finish
		cancel()
		<-served
	}
	if l.q != nil {
		stopped, cancel := context.WithCancel(context.Background())
		cancel()               // saves in progress are cancelled and leave no partial file
		_ = l.q.Close(stopped) // reports every queued result to saved, those it drops included
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		a.say("runway listen: %v", err)
		return exitError
	}
	a.say("stopped")
	return exitOK
}

// listener prints and saves the results the callback handler accepts.
type listener struct {
	a   *app
	s   *session
	o   *out
	dir string
	q   *runway.SaveQueue
}

// print is the result func without --out: one line per result.
func (l *listener) print(_ context.Context, r *runway.Result) error {
	line := resultLine(r)
	l.o.task(line, r.TaskID+" "+line.State+" "+r.VideoURL)
	l.announce(r, line)
	return nil
}

func (l *listener) announce(r *runway.Result, line taskLine) {
	if line.State == string(runway.StateFail) {
		l.a.say("task %s failed (%s, code %d): %s", r.TaskID, line.ErrorKind, r.Code, r.Message)
		return
	}
	l.a.say("task %s: success: %s", r.TaskID, r.VideoURL)
}

// enqueue is the result func with --out: failures are printed at once, successes once saved.
func (l *listener) enqueue(ctx context.Context, r *runway.Result) error {
	if r.Err() != nil {
		return l.print(ctx, r)
	}
	if err := l.q.Enqueue(ctx, r); err != nil {
		return err // Kie delivers again later
	}
	l.a.say("task %s: success; saving into %s", r.TaskID, l.dir)
	return nil
}

// saved is the save queue's report for one result.
func (l *listener) saved(r *runway.Result, sf runway.SavedFiles, err error) {
	line := resultLine(r)
	if err != nil {
		line.ErrorKind, line.Message = kindDownload, "saving failed: "+err.Error()
		l.o.task(line, "")
		l.a.say("%s\nSave it with: runway download %s --out %s", prefixed(err), r.TaskID, l.dir)
		return
	}
	line.VideoPath, line.ImagePath = sf.VideoPath, sf.ImagePath
	l.o.task(line, r.TaskID+" "+line.State+" "+sf.VideoPath)
	l.a.say("task %s: saved %s", r.TaskID, sf.VideoPath)
}
