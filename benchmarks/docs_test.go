package benchmarks

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestMigratingGuideSnippetsAreCompiled checks that every Go block of
// docs/migrating.md is an excerpt of the example_*_test.go files, which
// the compiler checks: the guide's code cannot rot. Indentation is not
// compared, so that a block may show a function's body on its own.
func TestMigratingGuideSnippetsAreCompiled(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "migrating.md"))
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("example_*_test.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("no example files: %v", err)
	}
	var code strings.Builder
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		code.WriteString(unindent(string(b)))
	}
	blocks := regexp.MustCompile("(?s)```go\n(.*?)```").FindAllStringSubmatch(string(doc), -1)
	if len(blocks) == 0 {
		t.Fatal("no Go blocks in docs/migrating.md")
	}
	for _, b := range blocks {
		if !strings.Contains(code.String(), unindent(b[1])) {
			t.Errorf("this block of docs/migrating.md is in no example_*_test.go file:\n%s", b[1])
		}
	}
	for _, f := range regexp.MustCompile("`(example_[a-z_]+_test\\.go)`").FindAllStringSubmatch(string(doc), -1) {
		if _, err := os.Stat(f[1]); err != nil {
			t.Errorf("docs/migrating.md names %s: %v", f[1], err)
		}
	}
}

// unindent removes the leading tabs and spaces of every line of s.
func unindent(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimLeft(l, "\t ")
	}
	return strings.Join(lines, "\n")
}
