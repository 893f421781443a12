// Command modproxy writes one module of this repository, as it is in the working tree, into a
// file-based GOPROXY directory at a given version: the .info, .mod and .zip files of the
// module proxy protocol, plus the @v/list entry. It is what a tag on GitHub would make
// proxy.golang.org serve, built without a tag or network. Used by .ci/consumer-check.
//
//	go run .ci/modproxy/main.go -proxy /tmp/proxy -version v0.2.0 -dir redisstore -sums /tmp/sums
//
// With -sums, it appends "module version h1:zip h1:gomod" to that file: the hashes the go
// command records in go.sum for the zip and the go.mod it wrote, so that a consumer can prove
// that what it installed came from this proxy.
//
// The zip follows the module zip rules: every path is prefixed module@version/, files of
// nested modules (a subdirectory with its own go.mod) and vendor directories are left out,
// only files git tracks (or would track: untracked, not ignored) are included.
package main

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode"
)

func main() {
	proxy := flag.String("proxy", "", "proxy directory to write into")
	version := flag.String("version", "", "version to publish, e.g. v0.2.0")
	dir := flag.String("dir", ".", "module directory (holds go.mod)")
	sums := flag.String("sums", "", "file to append the module's go.sum hashes to")
	flag.Parse()
	if err := run(*proxy, *version, *dir, *sums); err != nil {
		fmt.Fprintln(os.Stderr, "modproxy:", err)
		os.Exit(1)
	}
}

func run(proxy, version, dir, sums string) error {
	if proxy == "" || version == "" {
		return errors.New("-proxy and -version are required")
	}
	gomod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return err
	}
	modPath := modulePath(gomod)
	if modPath == "" {
		return fmt.Errorf("%s/go.mod has no module line", dir)
	}
	files, err := moduleFiles(dir)
	if err != nil {
		return err
	}
	esc, err := escapePath(modPath)
	if err != nil {
		return err
	}
	vdir := filepath.Join(proxy, filepath.FromSlash(esc), "@v")
	if err := os.MkdirAll(vdir, 0o755); err != nil {
		return err
	}
	var zbuf bytes.Buffer
	zw := zip.NewWriter(&zbuf)
	prefix := modPath + "@" + version + "/"
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f)))
		if err != nil {
			return err
		}
		w, err := zw.Create(prefix + f)
		if err != nil {
			return err
		}
		if _, err := w.Write(data); err != nil {
			return err
		}
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if sums != "" {
		zipSum, err := hashZip(zbuf.Bytes())
		if err != nil {
			return err
		}
		modSum := hash1([]string{"go.mod"}, func(string) []byte { return gomod })
		f, err := os.OpenFile(sums, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		_, werr := fmt.Fprintf(f, "%s %s %s %s\n", modPath, version, zipSum, modSum)
		if err := errors.Join(werr, f.Close()); err != nil {
			return err
		}
	}
	info, _ := json.Marshal(struct {
		Version string
		Time    time.Time
	}{version, time.Now().UTC().Truncate(time.Second)})
	base := filepath.Join(vdir, version)
	for ext, data := range map[string][]byte{".info": info, ".mod": gomod, ".zip": zbuf.Bytes()} {
		if err := os.WriteFile(base+ext, data, 0o644); err != nil {
			return err
		}
	}
	list, _ := os.ReadFile(filepath.Join(vdir, "list"))
	if !slices.Contains(strings.Fields(string(list)), version) {
		list = append(list, version+"\n"...)
	}
	if err := os.WriteFile(filepath.Join(vdir, "list"), list, 0o644); err != nil {
		return err
	}
	fmt.Printf("modproxy: %s@%s (%d files)\n", modPath, version, len(files))
	return nil
}

// modulePath returns the path on go.mod's module line.
func modulePath(gomod []byte) string {
	for line := range strings.Lines(string(gomod)) {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`)
		}
	}
	return ""
}

// moduleFiles lists the files of the module in dir, slash-separated and relative to dir:
// tracked or untracked-but-not-ignored files that exist, without nested modules and vendor.
func moduleFiles(dir string) ([]string, error) {
	out, err := exec.Command("git", "-C", dir, "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", ".").Output()
	if err != nil {
		return nil, fmt.Errorf("git ls-files in %s: %w", dir, err)
	}
	var all []string
	nested := map[string]bool{} // directories (relative to dir) holding another go.mod
	for f := range strings.SplitSeq(string(out), "\x00") {
		if f == "" {
			continue
		}
		if st, err := os.Stat(filepath.Join(dir, filepath.FromSlash(f))); err != nil || !st.Mode().IsRegular() {
			continue // deleted in the working tree, or not a regular file
		}
		if path.Base(f) == "go.mod" && path.Dir(f) != "." {
			nested[path.Dir(f)] = true
		}
		all = append(all, f)
	}
	var files []string
	for _, f := range all {
		if inNested(f, nested) || slices.Contains(strings.Split(path.Dir(f), "/"), "vendor") {
			continue
		}
		files = append(files, f)
	}
	slices.Sort(files)
	return files, nil
}

func inNested(f string, nested map[string]bool) bool {
	for d := path.Dir(f); d != "."; d = path.Dir(d) {
		if nested[d] {
			return true
		}
	}
	return false
}

// escapePath applies the module proxy's case escaping: an upper-case letter becomes '!'
// followed by its lower-case form.
func escapePath(p string) (string, error) {
	var b strings.Builder
	for _, r := range p {
		switch {
		case r == '!' || r >= unicode.MaxASCII:
			return "", fmt.Errorf("module path %q cannot be escaped", p)
		case unicode.IsUpper(r):
			b.WriteByte('!')
			b.WriteRune(unicode.ToLower(r))
		default:
			b.WriteRune(r)
		}
	}
	return b.String(), nil
}

// hash1 is the go command's "h1:" hash of a file tree (golang.org/x/mod/sumdb/dirhash.Hash1):
// the SHA-256 of the sorted lines "<sha256 of the file>  <name>".
func hash1(names []string, open func(string) []byte) string {
	names = slices.Sorted(slices.Values(names))
	sum := sha256.New()
	for _, n := range names {
		fmt.Fprintf(sum, "%x  %s\n", sha256.Sum256(open(n)), n)
	}
	return "h1:" + base64.StdEncoding.EncodeToString(sum.Sum(nil))
}

// hashZip is hash1 over the files of a module zip, named as in the zip.
func hashZip(data []byte) (string, error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return "", err
	}
	files := map[string][]byte{}
	var names []string
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			return "", err
		}
		var b bytes.Buffer
		_, err = b.ReadFrom(rc)
		if err := errors.Join(err, rc.Close()); err != nil {
			return "", err
		}
		files[f.Name] = b.Bytes()
		names = append(names, f.Name)
	}
	return hash1(names, func(n string) []byte { return files[n] }), nil
}
