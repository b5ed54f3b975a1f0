package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gormsession/gormsession/examples/internal/exampleapp"
)

// TestMain runs main instead of the tests when the test binary is started
// as the example command by a test below.
func TestMain(m *testing.M) {
	if os.Getenv("GORILLA_EXAMPLE_RUN_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// serve starts the example on the SQLite file at path with the key kept in
// the database, as a run without SESSION_KEY does.
func serve(t *testing.T, path string) *httptest.Server {
	t.Helper()
	db, err := exampleapp.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}
	m, store, err := newStore(context.Background(), db, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(handler(store))
	t.Cleanup(func() {
		srv.Close()
		if err := m.Close(); err != nil {
			t.Errorf("close the Manager: %v", err)
		}
		sqlDB.Close()
	})
	return srv
}

func visit(t *testing.T, c *http.Client, url string) string {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d, %v", url, resp.StatusCode, err)
	}
	return string(body)
}

func TestVisitCounterSurvivesRestartWithoutSessionKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gorilla.db")
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Jar: jar}

	first := serve(t, path)
	visit(t, c, first.URL)
	if body := visit(t, c, first.URL); !strings.Contains(body, `id="count">2<`) {
		t.Fatalf("second visit:\n%s", body)
	}
	first.Close()
	second := serve(t, path) // the jar sends the cookie to any port of 127.0.0.1
	if body := visit(t, c, second.URL); !strings.Contains(body, `id="count">3<`) {
		t.Fatalf("after a restart the counter started over:\n%s", body)
	}
}

func TestBusyPortExitsNonZero(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cmd := exec.Command(os.Args[0], "-addr", ln.Addr().String(), "-db", filepath.Join(t.TempDir(), "g.db"))
	cmd.Env = append(os.Environ(), "GORILLA_EXAMPLE_RUN_MAIN=1", "SESSION_KEY=")
	out, err := cmd.CombinedOutput()
	if exit, ok := err.(*exec.ExitError); !ok || exit.ExitCode() != 1 {
		t.Fatalf("with the port in use: %v, want exit status 1; output:\n%s", err, out)
	}
	if !strings.Contains(string(out), "address already in use") {
		t.Errorf("the log does not say why:\n%s", out)
	}
}

func TestHelpListsSessionKey(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-h")
	cmd.Env = append(os.Environ(), "GORILLA_EXAMPLE_RUN_MAIN=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("-h: %v, want exit status 0\n%s", err, out)
	}
	for _, want := range []string{"-addr", "-db", "ADDR", "DATABASE_URL", "SESSION_KEY", "127.0.0.1:8080"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("-h does not mention %s:\n%s", want, out)
		}
	}
}
