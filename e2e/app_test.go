// Package e2e holds the end-to-end tests: real processes of the example
// apps, a real browser, and every database the library supports.
package e2e

// This file runs examples/ginapp as a real process for end-to-end tests:
//
//	app := StartApp(t, AppOptions{})   // a temp SQLite file, a free loopback port
//	resp, err := http.Get(app.BaseURL + "/api/me")
//	app.Kill()                         // kill -9
//	app.Restart()                      // same port, same database, same SESSION_KEY
//	err = app.Stop()                   // SIGTERM; nil when it exited cleanly
//
// Several instances on one database (multi-instance tests) pass the first
// one's database to the others:
//
//	a := StartApp(t, AppOptions{DatabaseURL: dsn})
//	b := StartApp(t, AppOptions{DatabaseURL: a.DB})
//
// The binary is built once per test run (go build of the root module's
// ./examples/ginapp) into a temporary directory that TestMain
// removes. Every process is killed when its test ends; when the test
// failed, its captured log is printed.

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"
)

// AppOptions configures StartApp. The zero value runs the app on a new
// SQLite file and a free loopback port.
type AppOptions struct {
	// DatabaseURL is the app's -db flag: a SQLite file path or a
	// postgres:// URL. Default: a new SQLite file in t.TempDir().
	DatabaseURL string
	// Addr is the listen address. Default: "127.0.0.1:0", a free port
	// chosen by the system, which Restart keeps.
	Addr string
	// Args are further command-line flags, such as "-sync", "1s" or
	// "-table", "mytable"; they come after -addr and -db, so they win.
	Args []string
	// Env are further environment variables ("KEY=value"), added to the
	// test's own environment. Each App has a random SESSION_KEY of its own,
	// kept across restarts; instances that share a database and should
	// read each other's visits cookies need the same one set here.
	Env []string
	// ReadyTimeout bounds how long a start may take before the test
	// fails. Default: 2 minutes.
	ReadyTimeout time.Duration
}

// App is one instance of examples/ginapp, run as a child process. Its
// methods must be called from the test's goroutine, except Log, which is
// safe anywhere.
type App struct {
	// BaseURL is "http://" + Addr, with no trailing slash.
	BaseURL string
	// Addr is the address the app listens on, "127.0.0.1:port".
	Addr string
	// DB is the database the app uses (the -db flag): pass it as
	// AppOptions.DatabaseURL to start another instance on it.
	DB string

	t    *testing.T
	opts AppOptions
	key  string // SESSION_KEY, the same for every start

	cmd  *exec.Cmd
	done chan struct{} // closed when the current process has exited
	err  error         // the current process's exit error, once done

	mu     sync.Mutex
	log    bytes.Buffer // every start's output, one after the other
	ready  chan string  // receives the address of the "listening" log line
	starts int
}

// StartApp starts the app and returns once it answers GET /healthz. The
// process is killed when the test ends.
func StartApp(t *testing.T, opts AppOptions) *App {
	t.Helper()
	if opts.DatabaseURL == "" {
		opts.DatabaseURL = filepath.Join(t.TempDir(), "sessions.db")
	}
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.ReadyTimeout <= 0 {
		opts.ReadyTimeout = 2 * time.Minute
	}
	a := &App{t: t, opts: opts, DB: opts.DatabaseURL, Addr: opts.Addr, key: rand.Text() + rand.Text()}
	t.Cleanup(func() {
		if a.Running() {
			a.Kill()
		}
		if t.Failed() {
			t.Logf("log of the app at %s:\n%s", a.Addr, a.Log())
		}
	})
	a.start()
	return a
}

// Log returns everything the app wrote to stdout and stderr, across
// restarts; each start begins with a line "=== start N".
func (a *App) Log() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.log.String()
}

// Running reports whether the current process has not exited.
func (a *App) Running() bool {
	if a.done == nil {
		return false
	}
	select {
	case <-a.done:
		return false
	default:
		return true
	}
}

// Kill sends SIGKILL (kill -9: no shutdown, no deferred work) and waits for
// the process to exit.
func (a *App) Kill() {
	a.t.Helper()
	if !a.Running() {
		return
	}
	_ = a.cmd.Process.Signal(syscall.SIGKILL)
	<-a.done
}

// Stop sends SIGTERM and waits for the app to shut down. It returns nil
// when the app exited with status 0, the exit error otherwise. An app that
// has not exited after a minute is killed and the test fails.
func (a *App) Stop() error {
	a.t.Helper()
	if !a.Running() {
		return a.err
	}
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.done:
	case <-time.After(time.Minute):
		a.t.Errorf("app at %s did not stop within a minute of SIGTERM; killing it", a.Addr)
		a.Kill()
	}
	return a.err
}

// Restart stops the app (SIGTERM) if it is running and starts it again on
// the same address and database, with the same flags and environment. It
// returns once the app answers.
func (a *App) Restart() {
	a.t.Helper()
	if a.Running() {
		if err := a.Stop(); err != nil {
			a.t.Errorf("app at %s: stop before restart: %v", a.Addr, err)
		}
	}
	a.start()
}

// listening matches the app's "listening" log line.
var listening = regexp.MustCompile(`msg=listening addr=(\S+)`)

// start runs the binary and waits until it answers.
func (a *App) start() {
	t := a.t
	t.Helper()
	bin := ginappBinary(t)
	args := append([]string{"-addr", a.Addr, "-db", a.DB}, a.opts.Args...)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "SESSION_KEY="+a.key)
	cmd.Env = append(cmd.Env, a.opts.Env...)
	a.mu.Lock()
	a.starts++
	fmt.Fprintf(&a.log, "=== start %d: %s %q\n", a.starts, filepath.Base(bin), args)
	a.ready = make(chan string, 1)
	a.mu.Unlock()
	w := &logWriter{a: a}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatalf("start app: %v", err)
	}
	a.cmd, a.done, a.err = cmd, make(chan struct{}), nil
	go func(done chan struct{}) {
		err := cmd.Wait()
		a.mu.Lock()
		a.err = err
		a.mu.Unlock()
		close(done)
	}(a.done)

	deadline := time.After(a.opts.ReadyTimeout)
	select {
	case addr := <-a.ready:
		a.Addr = addr
		a.BaseURL = "http://" + addr
	case <-a.done:
		t.Fatalf("app exited during start (%v); log:\n%s", a.err, a.Log())
	case <-deadline:
		a.Kill()
		t.Fatalf("app did not log that it listens within %s; log:\n%s", a.opts.ReadyTimeout, a.Log())
	}
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := client.Get(a.BaseURL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			err = errors.New(resp.Status)
		}
		select {
		case <-a.done:
			t.Fatalf("app exited during start (%v); log:\n%s", a.err, a.Log())
		case <-deadline:
			a.Kill()
			t.Fatalf("app at %s did not answer within %s: %v; log:\n%s", a.Addr, a.opts.ReadyTimeout, err, a.Log())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// logWriter appends the app's output to its log and reports the
// "listening" line. exec.Cmd calls Write from one goroutine at a time.
type logWriter struct {
	a    *App
	line []byte // the incomplete last line
}

func (w *logWriter) Write(p []byte) (int, error) {
	a := w.a
	a.mu.Lock()
	defer a.mu.Unlock()
	a.log.Write(p)
	w.line = append(w.line, p...)
	for {
		i := bytes.IndexByte(w.line, '\n')
		if i < 0 {
			break
		}
		if m := listening.FindSubmatch(w.line[:i]); m != nil {
			select {
			case a.ready <- string(m[1]):
			default:
			}
		}
		w.line = w.line[i+1:]
	}
	return len(p), nil
}

var (
	buildOnce sync.Once
	buildDir  string
	buildBin  string
	buildErr  error
)

// ginappBinary builds examples/ginapp once per test run and returns the
// binary's path. (Without the race detector, which makes bcrypt, and so
// every sign-in, twenty times slower; the app's own tests run with it.)
func ginappBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "gormsession-e2e-")
		if buildErr != nil {
			return
		}
		buildBin = filepath.Join(buildDir, "ginapp")
		cmd := exec.Command("go", "build", "-o", buildBin, "./examples/ginapp")
		cmd.Dir = ".." // the root module
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./examples/ginapp: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildBin
}

// TestMain removes the binary that ginappBinary built.
func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		if err := os.RemoveAll(buildDir); err != nil {
			fmt.Fprintln(os.Stderr, "remove the test binary:", err)
		}
	}
	os.Exit(code)
}
