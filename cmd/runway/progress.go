package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
)

// progress shows download progress on stderr: a bar redrawn in place on a terminal, plain
// lines otherwise (every quarter, or every 8 MiB while the size is unknown), so logs of CI
// jobs stay readable and carry no control codes.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	bar   bool
	label string
	drawn bool   // a bar line is on screen, without its newline yet
	last  string // the bar line on screen: an update that changes nothing visible is not redrawn
	pct   int64  // plain mode: the next percentage to report
	bytes int64  // plain mode without a total: the next byte count to report
}

const (
	barWidth  = 30
	plainStep = 8 << 20
)

func newProgress(w io.Writer, bar bool, label string) *progress {
	return &progress{w: w, bar: bar, label: label, pct: 25, bytes: plainStep}
}

// update is the SDK's WithDownloadProgress callback: done bytes of total (-1: unknown yet).
func (p *progress) update(done, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar {
		p.draw(done, total)
		return
	}
	if total > 0 {
		// The summary line reports 100%; the quarters before it show the download moves.
		if pct := done * 100 / total; pct >= p.pct && done < total {
			fmt.Fprintf(p.w, "%s: %d%% (%s of %s)\n", p.label, pct, size(done), size(total))
			p.pct = (pct/25 + 1) * 25
		}
		return
	}
	if done >= p.bytes {
		fmt.Fprintf(p.w, "%s: %s\n", p.label, size(done))
		p.bytes = done + plainStep
	}
}

func (p *progress) draw(done, total int64) {
	var line string
	if total > 0 {
		filled := int(done * barWidth / total)
		// The byte count moves in steps of 1% of the total, so a big file is not redrawn for
		// every block read.
		shown := done / max(total/100, 1) * max(total/100, 1)
		if done >= total {
			shown = done
		}
		line = fmt.Sprintf("%s [%s%s] %3d%% %s/%s", p.label, strings.Repeat("#", filled),
			strings.Repeat("-", barWidth-filled), done*100/total, size(shown), size(total))
	} else {
		line = fmt.Sprintf("%s %s", p.label, size(done))
	}
	if line == p.last {
		return
	}
	p.last = line
	// \r goes back to the start of the line, \x1b[K clears what a longer line left.
	fmt.Fprintf(p.w, "\r%s\x1b[K", line)
	p.drawn = true
}

// finish ends the bar's line; plain mode has nothing to close.
func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}

// size formats a byte count for people.
func size(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
