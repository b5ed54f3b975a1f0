package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
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
	if os.Getenv("BASIC_EXAMPLE_RUN_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestDevicesAreNamedFromUserAgent(t *testing.T) {
	db, err := exampleapp.Open(filepath.Join(t.TempDir(), "basic.db"))
	if err != nil {
		t.Fatal(err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}
	defer sqlDB.Close()
	m, err := newManager(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := m.Close(); err != nil {
			t.Errorf("close the Manager: %v", err)
		}
	}()
	srv := httptest.NewServer(handler(m))
	defer srv.Close()

	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Jar: jar}
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/login", strings.NewReader(url.Values{"user": {"alice"}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("sign in: %d, %v", resp.StatusCode, err)
	}
	if !strings.Contains(string(body), "Hello, alice") || !strings.Contains(string(body), "Firefox on Linux") {
		t.Fatalf("devices are not listed by name:\n%s", body)
	}
}

func TestBusyPortExitsNonZero(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cmd := exec.Command(os.Args[0], "-addr", ln.Addr().String(), "-db", filepath.Join(t.TempDir(), "b.db"))
	cmd.Env = append(os.Environ(), "BASIC_EXAMPLE_RUN_MAIN=1")
	out, err := cmd.CombinedOutput()
	if exit, ok := err.(*exec.ExitError); !ok || exit.ExitCode() != 1 {
		t.Fatalf("with the port in use: %v, want exit status 1; output:\n%s", err, out)
	}
}

func TestBadFlagExitsTwo(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-no-such-flag")
	cmd.Env = append(os.Environ(), "BASIC_EXAMPLE_RUN_MAIN=1")
	out, err := cmd.CombinedOutput()
	if exit, ok := err.(*exec.ExitError); !ok || exit.ExitCode() != 2 {
		t.Fatalf("a bad flag: %v, want exit status 2; output:\n%s", err, out)
	}
	if !strings.Contains(string(out), "DATABASE_URL") {
		t.Errorf("the usage does not list the environment:\n%s", out)
	}
}

func TestLogRedactsDatabasePassword(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// An unreachable PostgreSQL with a password: the error must not show it.
	cmd := exec.Command(os.Args[0], "-addr", ln.Addr().String(), "-db", "postgres://app:s3cret-pw@127.0.0.1:1/app?connect_timeout=2")
	cmd.Env = append(os.Environ(), "BASIC_EXAMPLE_RUN_MAIN=1")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("started on an unreachable database:\n%s", out)
	}
	if strings.Contains(string(out), "s3cret-pw") {
		t.Fatalf("the log shows the database password:\n%s", out)
	}
}
