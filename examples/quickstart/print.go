package main

import (
	"errors"
	"fmt"
	"io"
	"sync"

	runway "github.com/b9c9aec2/runway-go"
)

// printer serialises output lines: the result func runs on the callback server's goroutines
// while progress is printed by the waiting one.
type printer struct {
	mu sync.Mutex
	w  io.Writer
}

func (p *printer) printf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, format+"\n", args...)
}

// progress prints each state polling sees.
func (p *printer) progress(t *runway.Task) { p.printf("   state: %s", t.State) }

// result prints what WaitForResult returned.
func (p *printer) result(res *runway.Result, err error) {
	var te *runway.TaskError
	switch {
	case errors.As(err, &te):
		p.printf("   result: failed via %s, kind %s, retryable %t", res.Source, te.Kind, te.Retryable())
		p.printf("     code %d: %q", te.Code, te.Message)
	case err != nil:
		p.printf("   wait ended: %v", err)
	default:
		p.printf("   result: success via %s", res.Source)
		p.printf("     video: %s", res.VideoURL)
		p.printf("     cover: %s", res.ImageURL)
	}
}
