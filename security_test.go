package runway

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSecurityChecklistIsTrue keeps SECURITY.md and the tests in step: every test SECURITY.md
// names as pinning a checklist line exists, and every checklist id a test cites (CB-n, CL-n,
// DL-n) is defined there.
func TestSecurityChecklistIsTrue(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("SECURITY.md")
	require.NoError(t, err)
	files, err := filepath.Glob("*_test.go")
	require.NoError(t, err)
	var tests []byte
	for _, name := range files {
		b, err := os.ReadFile(name)
		require.NoError(t, err)
		tests = append(tests, b...)
	}

	declared := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^func ((?:Test|Fuzz|Benchmark|Example)\w*)\(`).FindAllSubmatch(tests, -1) {
		declared[string(m[1])] = true
	}
	named := regexp.MustCompile("`((?:Test|Fuzz|Benchmark)\\w*)`").FindAllSubmatch(doc, -1)
	require.NotEmpty(t, named)
	for _, m := range named {
		require.True(t, declared[string(m[1])], "SECURITY.md names %s, which no test file declares", m[1])
	}

	defined := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\| ((?:CB|CL|DL)-\d+) \|`).FindAllSubmatch(doc, -1) {
		id := string(m[1])
		require.False(t, defined[id], "%s is defined twice", id)
		defined[id] = true
	}
	require.Len(t, defined, 22+15+7)
	for _, m := range regexp.MustCompile(`\b(?:CB|CL|DL)-\d+\b`).FindAll(tests, -1) {
		require.True(t, defined[string(m)], "a test cites %s, which SECURITY.md does not define", m)
	}
}
