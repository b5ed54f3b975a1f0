package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// readmeBlock returns the fenced block of README.md that opens with
// "```"+lang followed by a line starting with first, without the fences.
func readmeBlock(t *testing.T, lang, first string) string {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	open := "```" + lang + "\n" + first
	i := strings.Index(string(readme), open)
	if i < 0 {
		t.Fatalf("README.md has no %q block starting with %q", lang, first)
	}
	rest := string(readme[i+len("```"+lang+"\n"):])
	j := strings.Index(rest, "\n```\n")
	if j < 0 {
		t.Fatalf("the %q block of README.md does not end", lang)
	}
	return rest[:j+1]
}

func TestREADMEShowsThisProgramVerbatim(t *testing.T) {
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	if got := readmeBlock(t, "go", "// Command quickstart"); got != string(src) {
		t.Fatalf("README.md's quick-start program differs from examples/quickstart/main.go; copy main.go into the README.\nREADME:\n%s", got)
	}
}

func TestProgramPrintsWhatREADMEShows(t *testing.T) {
	want := readmeBlock(t, "text", "browser:")
	path := filepath.Join(t.TempDir(), "quickstart.db")
	// Twice on one file: a second run prints the same, as the README says
	// of `go run` in a clone.
	for i := range 2 {
		var out bytes.Buffer
		if err := run(context.Background(), path, &out); err != nil {
			t.Fatalf("run %d: %v", i+1, err)
		}
		if out.String() != want {
			t.Fatalf("run %d printed:\n%s\nREADME.md shows:\n%s", i+1, out.String(), want)
		}
	}
}
