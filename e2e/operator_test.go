package e2e

// The operator's command, cmd/gormsession, run as a third process beside
// instances of examples/ginapp: a user signed out with "gormsession revoke
// --user" is refused by every instance within the bound the README states
// (SyncInterval, 1 s, plus one poll; milliseconds with NOTIFY, for which
// the test allows notifyBound).

import (
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// revocationBound is what the README promises for a revocation made on
// the database to reach an instance by polling: SyncInterval (1 s, the
// app's default) plus one poll, for which a second is allowed on a busy
// machine.
const revocationBound = 2 * time.Second

// notifyBound is what the test allows a revocation to take to reach an
// instance through NOTIFY, which the README says takes milliseconds: tens
// of milliseconds on an idle machine, with room for a loaded two-core
// runner under -race. Polling cannot meet it: it is an hour in that case,
// and a second alone takes twice as long.
const notifyBound = 500 * time.Millisecond

var (
	cmdOnce sync.Once
	cmdBin  string
	cmdErr  error
)

// gormsessionBinary builds cmd/gormsession once per test run, beside the
// app's binary (TestMain removes both), and returns its path.
func gormsessionBinary(t *testing.T) string {
	t.Helper()
	ginappBinary(t) // makes buildDir
	cmdOnce.Do(func() {
		cmdBin = filepath.Join(buildDir, "gormsession")
		cmd := exec.Command("go", "build", "-o", cmdBin, "./cmd/gormsession")
		cmd.Dir = ".." // the root module
		if out, err := cmd.CombinedOutput(); err != nil {
			cmdErr = fmt.Errorf("go build ./cmd/gormsession: %v\n%s", err, out)
		}
	})
	if cmdErr != nil {
		t.Fatal(cmdErr)
	}
	return cmdBin
}

// runGormsession runs the command and returns its output; a failure fails the
// test.
func runGormsession(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(gormsessionBinary(t), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("gormsession %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// signedIn is one token and the instance it was signed in on.
type signedIn struct {
	app   *App
	token string
}

// allRefusedWithin waits until every app refuses every token, and returns
// how long that took; the test fails after bound.
func allRefusedWithin(t *testing.T, apps []*App, tokens []signedIn, start time.Time, bound time.Duration) time.Duration {
	t.Helper()
	var worst time.Duration
	for _, a := range apps {
		for _, s := range tokens {
			if !rejectedWithin(t, a, s.token, time.Until(start.Add(bound))) {
				t.Fatalf("%s still accepts a token of the revoked user %v after the command returned", a.BaseURL, bound)
			}
			worst = max(worst, time.Since(start))
		}
	}
	return worst
}

func TestOperatorRevokeReachesEveryInstance(t *testing.T) {
	dsn, _ := postgresDSN(t)
	for _, tt := range []struct {
		name  string
		args  []string
		bound time.Duration
	}{
		// NOTIFY, with polling so rare it cannot explain a refusal.
		{"notify", []string{"-sync", "1h"}, notifyBound},
		// Polling alone, every second, as on a database without NOTIFY.
		{"polling", []string{"-notify=false"}, revocationBound},
	} {
		t.Run(tt.name, func(t *testing.T) {
			table := freshTable(t, dsn)
			args := append([]string{"-table", table}, tt.args...)
			a := StartApp(t, AppOptions{DatabaseURL: dsn, Args: args})
			b := StartApp(t, AppOptions{DatabaseURL: dsn, Args: args})
			if tt.name == "notify" { // both listeners run
				waitUntilBHearsA(t, a, b)
				waitUntilBHearsA(t, b, a)
			}
			alice := []signedIn{{a, mustLogin(t, a.BaseURL, "alice")}, {b, mustLogin(t, b.BaseURL, "alice")}}
			bob := mustLogin(t, a.BaseURL, "bob")
			for _, s := range alice {
				if status := me(t, s.app.BaseURL, s.token); status != http.StatusOK {
					t.Fatalf("alice's token on %s: %d before the revocation", s.app.BaseURL, status)
				}
			}

			out := runGormsession(t, "revoke", "--user", "alice", "--dsn", dsn, "--table", table)
			start := time.Now()
			// (waitUntilBHearsA's sessions of alice are signed out already.)
			if out != "revoked 2 sessions of user \"alice\"\n" {
				t.Fatalf("gormsession revoke --user alice: %q", out)
			}
			took := allRefusedWithin(t, []*App{a, b}, alice, start, tt.bound)
			t.Logf("%s: both instances refused both of alice's tokens %v after the command returned", tt.name, took.Round(time.Millisecond))
			for _, app := range []*App{a, b} {
				if status := me(t, app.BaseURL, bob); status != http.StatusOK {
					t.Fatalf("bob's token on %s: %d after alice was signed out", app.BaseURL, status)
				}
			}
		})
	}
}

func TestOperatorRevokeOnSQLite(t *testing.T) {
	a := StartApp(t, AppOptions{})
	tokens := []signedIn{{a, mustLogin(t, a.BaseURL, "alice")}, {a, mustLogin(t, a.BaseURL, "alice")}}
	bob := mustLogin(t, a.BaseURL, "bob")
	out := runGormsession(t, "sessions", "--user", "alice", "--dsn", a.DB)
	t.Logf("gormsession sessions --user alice:\n%s", out)

	out = runGormsession(t, "revoke", "--user", "alice", "--dsn", a.DB)
	start := time.Now()
	if out != "revoked 2 sessions of user \"alice\"\n" {
		t.Fatalf("gormsession revoke --user alice: %q", out)
	}
	took := allRefusedWithin(t, []*App{a}, tokens, start, revocationBound)
	t.Logf("the instance refused both of alice's tokens %v after the command returned", took.Round(time.Millisecond))
	if status := me(t, a.BaseURL, bob); status != http.StatusOK {
		t.Fatalf("bob's token: %d after alice was signed out", status)
	}
}
