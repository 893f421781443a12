package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"

	runway "github.com/b9c9aec2/runway-go"
)

// apiFlags are the flags of every command that talks to the API.
type apiFlags struct {
	baseURL      *string
	allowPrivate *bool
	verbose      *bool
}

func addAPIFlags(f *flags) *apiFlags {
	return &apiFlags{
		baseURL: f.String("base-url", "", "API base `URL` (default $KIE_BASE_URL, else "+runway.DefaultBaseURL+")"),
		allowPrivate: f.Bool("allow-private-hosts", false,
			"download from loopback and private addresses (on by itself when the\nbase URL is loopback, as with runway fake)"),
		verbose: f.Bool("verbose", false, "log the SDK's debug messages (retries, polls) on stderr"),
	}
}

// session is what a command that talks to the API needs.
type session struct {
	c            *runway.Client
	baseURL      string
	allowPrivate bool
}

// newSession builds the client from KIE_API_KEY and the flags. Configuration errors are
// explained on stderr and end in exitUsage before anything is sent.
func (a *app) newSession(f *flags, af *apiFlags) (*session, int) {
	key := a.env("KIE_API_KEY")
	if strings.TrimSpace(key) == "" {
		fmt.Fprintf(a.stderr, "runway %s: KIE_API_KEY is not set; nothing was sent.\n"+
			"Get a key at https://kie.ai/api-key and run: export KIE_API_KEY=<your key>\n"+
			"(against a local 'runway fake', any non-empty key works).\n", f.cmd.name)
		return nil, exitUsage
	}
	base := *af.baseURL
	if base == "" {
		base = a.env("KIE_BASE_URL")
	}
	if base == "" {
		base = runway.DefaultBaseURL
	}
	level := slog.LevelWarn
	if *af.verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, at slog.Attr) slog.Attr {
			if len(groups) == 0 && at.Key == slog.TimeKey {
				return slog.Attr{} // people read these live; the time adds nothing
			}
			return at
		},
	}))
	c, err := runway.NewClient(key, runway.WithBaseURL(base), runway.WithLogger(logger))
	if err != nil {
		if errors.Is(err, runway.ErrMissingAPIKey) {
			return nil, f.fail(a, "KIE_API_KEY is empty")
		}
		// The key is never part of NewClient's errors.
		fmt.Fprintf(a.stderr, "%s\nCheck KIE_API_KEY and --base-url / KIE_BASE_URL; nothing was sent.\n", prefixed(err))
		return nil, exitUsage
	}
	return &session{c: c, baseURL: base, allowPrivate: *af.allowPrivate || loopbackURL(base)}, exitOK
}

func (s *session) close() { _ = s.c.Close() }

// downloadOptions are the options for every download of the session.
func (s *session) downloadOptions(extra ...runway.DownloadOption) []runway.DownloadOption {
	if s.allowPrivate {
		extra = append(extra, runway.WithAllowPrivateHosts())
	}
	return extra
}

// loopbackURL reports whether rawURL's host is this machine (a loopback or unspecified
// address, or "localhost"), as the base URL of a local fake is.
func loopbackURL(rawURL string) bool {
	u, err := url.Parse(rawURL)
	if err != nil {
		return false
	}
	host := u.Hostname()
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	// 0.0.0.0 and :: are what a fake listening on every interface reports; they reach this
	// machine.
	return ip != nil && (ip.IsLoopback() || ip.IsUnspecified())
}

// prefixed returns err's text with exactly one "runway:" prefix: the SDK's errors carry it.
func prefixed(err error) string {
	s := err.Error()
	if strings.HasPrefix(s, "runway:") {
		return s
	}
	return "runway: " + s
}

// interrupted reports whether ctx ended because the user stopped the command.
func interrupted(ctx context.Context) bool { return ctx.Err() != nil }
