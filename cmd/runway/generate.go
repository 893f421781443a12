package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	runway "github.com/b9c9aec2/runway-go"
)

var generateCmd = &command{
	name: "generate",
	args: "--prompt TEXT [flags]",
	summary: "Submit a text-to-video (or, with --image, image-to-video) task and print its id.\n" +
		"With --wait, wait for it by polling and then print the video URL too (with --out, the\n" +
		"saved video's path).",
	example: `runway generate --prompt "A fluffy orange cat dancing under disco lights" --ratio 9:16 --wait --out videos/`,
	run:     (*app).generate,
}

var extendCmd = &command{
	name: "extend",
	args: "--task ID --prompt TEXT [flags]",
	summary: "Submit an extension of a finished video and print the new task's id.\n" +
		"With --wait, wait for it by polling and then print the video URL too (with --out, the\n" +
		"saved video's path).",
	example: `runway extend --task 3f1c0e54-... --prompt "The cat bows to the crowd" --wait --out videos/`,
	run:     (*app).extend,
}

// submitFlags are the flags shared by generate and extend.
type submitFlags struct {
	prompt, quality, watermark, callback, out *string
	wait, json                                *bool
	w                                         *waitFlags
	api                                       *apiFlags
}

// addSubmitFlags defines the shared flags; own defines the command's own flags after --prompt.
func addSubmitFlags(f *flags, own func()) *submitFlags {
	sf := &submitFlags{}
	sf.prompt = f.String("prompt", "", "`TEXT`: what the video shows, at most 1800 characters (required;\n\"-\" reads it from stdin)")
	own()
	sf.quality = f.String("quality", string(runway.Quality720p), "`QUALITY`: 720p or 1080p (1080p only with --duration 5)")
	sf.watermark = f.String("watermark", "", "watermark `TEXT` (none by default)")
	sf.callback = f.String("callback-url", "", "`URL` Kie posts the result to (see runway listen)")
	sf.wait = f.Bool("wait", false, "wait for the result by polling, then print it")
	sf.out = f.String("out", "", "with --wait, save the video and cover into `DIR`")
	sf.json = f.Bool("json", false, "print one JSON line per task on stdout")
	sf.w = addWaitFlags(f)
	sf.api = addAPIFlags(f)
	return sf
}

// readPrompt resolves --prompt - from stdin.
func (a *app) readPrompt(f *flags, p string) (string, int, bool) {
	if p != "-" {
		return p, exitOK, true
	}
	b, err := io.ReadAll(io.LimitReader(a.stdin, 1<<20))
	if err != nil {
		return "", f.fail(a, "reading the prompt from stdin: %v", err), false
	}
	return strings.TrimSpace(string(b)), exitOK, true
}

// check validates what the SDK cannot see before anything is sent.
func (s *submitFlags) check(f *flags, a *app) (int, bool) {
	if *s.out != "" && !*s.wait {
		return f.fail(a, "--out needs --wait (or save later with: runway download ID --out DIR)"), false
	}
	if code, ok := s.w.check(f, a); !ok {
		return code, false
	}
	return checkOutDir(f, a, *s.out)
}

func (a *app) generate(ctx context.Context, cmd *command, args []string) int {
	f := newFlags(cmd)
	var image, ratio *string
	var duration *int
	sf := addSubmitFlags(f, func() {
		image = f.String("image", "", "image `URL` to animate (image-to-video)")
		duration = f.Int("duration", 5, "video length in `SECONDS`: 5 or 10")
		ratio = f.String("ratio", "", "aspect `RATIO`: 16:9, 4:3, 1:1, 3:4 or 9:16 (default 16:9 without\n--image; with --image the image decides)")
	})
	if _, code, ok := f.parse(a, args, 0, 0); !ok {
		return code
	}
	if code, ok := sf.check(f, a); !ok {
		return code
	}
	prompt, code, ok := a.readPrompt(f, *sf.prompt)
	if !ok {
		return code
	}
	if *ratio == "" && *image == "" {
		*ratio = string(runway.AspectRatio16x9)
	}
	req := runway.GenerateRequest{
		Prompt: prompt, ImageURL: *image, Duration: *duration, Quality: runway.Quality(*sf.quality),
		AspectRatio: runway.AspectRatio(*ratio), WaterMark: *sf.watermark, CallBackURL: *sf.callback,
	}
	return a.submit(ctx, f, sf, func(c *runway.Client) (string, error) { return c.Generate(ctx, req) })
}

func (a *app) extend(ctx context.Context, cmd *command, args []string) int {
	f := newFlags(cmd)
	task := f.String("task", "", "`ID` of the finished task to extend (required; may also be given\nas the argument)")
	sf := addSubmitFlags(f, func() {})
	pos, code, ok := f.parse(a, args, 0, 1)
	if !ok {
		return code
	}
	if len(pos) == 1 {
		if *task != "" && *task != pos[0] {
			return f.fail(a, "two task ids: --task %s and %s", *task, pos[0])
		}
		*task = pos[0]
	}
	if code, ok := sf.check(f, a); !ok {
		return code
	}
	prompt, code, ok := a.readPrompt(f, *sf.prompt)
	if !ok {
		return code
	}
	req := runway.ExtendRequest{
		TaskID: *task, Prompt: prompt, Quality: runway.Quality(*sf.quality),
		WaterMark: *sf.watermark, CallBackURL: *sf.callback,
	}
	return a.submit(ctx, f, sf, func(c *runway.Client) (string, error) { return c.Extend(ctx, req) })
}

// submit sends one submission, prints its id, and waits and saves when asked.
func (a *app) submit(ctx context.Context, f *flags, sf *submitFlags, send func(*runway.Client) (string, error)) int {
	s, code := a.newSession(f, sf.api)
	if s == nil {
		return code
	}
	defer s.close()
	o := &out{w: a.stdout, json: *sf.json}
	id, err := send(s.c)
	if err != nil {
		var ve *runway.ValidationError
		if errors.As(err, &ve) {
			return f.fail(a, "%s %s; nothing was sent", flagFor(ve.Field), ve.Reason)
		}
		if interrupted(ctx) {
			a.say("runway: interrupted before Kie answered; the task may or may not exist.")
			return exitInterrupted
		}
		return a.report(err)
	}
	a.say("task %s: submitted", id)
	if !*sf.wait {
		o.task(taskLine{TaskID: id, State: stateSubmitted}, id)
		a.say("Wait for it with: runway wait %s", id)
		return exitOK
	}
	if !o.json {
		fmt.Fprintln(a.stdout, id) // the id first, so a script has it whatever happens next
	}
	return a.await(ctx, s, o, id, sf.w, *sf.out)
}

// flagFor names the flag behind a request field in a validation error.
func flagFor(field string) string {
	switch field {
	case "Prompt":
		return "--prompt"
	case "ImageURL":
		return "--image"
	case "Duration":
		return "--duration"
	case "Quality":
		return "--quality"
	case "AspectRatio":
		return "--ratio"
	case "WaterMark":
		return "--watermark"
	case "CallBackURL":
		return "--callback-url"
	case "TaskID":
		return "--task"
	}
	return field
}
