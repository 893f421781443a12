package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func extractText(t *testing.T, md string) ([]block, error) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "README.md")
	if err := os.WriteFile(p, []byte(md), 0o644); err != nil {
		t.Fatal(err)
	}
	return extract(p)
}

// TestExtractRefusesOtherGoFences: a go block fenced any other way than ```go would be
// skipped unchecked; it is an error instead.
func TestExtractRefusesOtherGoFences(t *testing.T) {
	for _, fence := range []string{"```golang", "```Go", "~~~go", "````go", "```go title=x"} {
		_, err := extractText(t, "text\n"+fence+"\nx := 1\n"+fence[:3]+"\n")
		if err == nil || !strings.Contains(err.Error(), "write go blocks as ```go") {
			t.Errorf("%s: err = %v, want a refusal", fence, err)
		}
	}
}

func TestExtractGoBlocks(t *testing.T) {
	md := "# t\n```go\na := 1\n```\n```sh\n```go\n```\n````md\n```go\nnot go\n```\n````\n~~~promql\nsum(x)\n~~~\n```go\nb := 2\n```\n"
	got, err := extractText(t, md)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].text != "a := 1\n" || got[1].text != "b := 2\n" || got[0].line != 3 {
		t.Fatalf("blocks = %+v", got)
	}
	if _, err := extractText(t, "```go\nx\n"); err == nil {
		t.Fatal("an unclosed block is accepted")
	}
}
