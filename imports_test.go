package gormsession_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestREADMENamesWhatTheRootPackageImports checks the README's Install
// section against the root package's imports: every module it imports
// from outside the standard library is named there, so that the list of
// what an application takes on with the library stays true.
func TestREADMENamesWhatTheRootPackageImports(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	out, err := exec.Command("go", "list", "-f", `{{join .Imports "\n"}}`, ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	install, _, _ := strings.Cut(string(readme), "\n## Use")
	_, install, _ = strings.Cut(install, "\n## Install")
	for _, pkg := range strings.Fields(string(out)) {
		first, _, _ := strings.Cut(pkg, "/")
		if !strings.Contains(first, ".") || strings.HasPrefix(pkg, "github.com/gormsession/gormsession") {
			continue // the standard library, or this module
		}
		if !namesAPrefix(install, pkg) {
			t.Errorf("the root package imports %s, which README.md's Install section does not name", pkg)
		}
	}
}

// namesAPrefix reports whether text names pkg, or a path it lies under, in
// backquotes.
func namesAPrefix(text, pkg string) bool {
	for p := pkg; p != ""; {
		if strings.Contains(text, "`"+p+"`") {
			return true
		}
		i := strings.LastIndex(p, "/")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return false
}
