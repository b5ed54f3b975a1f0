package e2e

// Several instances of examples/ginapp on one PostgreSQL: what one instance
// revokes, the others reject, within the poll interval or, with NOTIFY,
// within milliseconds.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gormsession/gormsession"
	"github.com/gormsession/gormsession/internal/testdb"
)

// client is a goroutine-safe JSON API client of the app. Its timeout only
// stops a hung test; it is not a latency bound.
var client = &http.Client{Timeout: time.Minute}

// login signs in with the JSON API and returns the token, or the status
// when the sign-in was refused or failed.
func login(base, user string) (token string, status int, err error) {
	body := fmt.Sprintf(`{"username":%q,"password":"password"}`, user)
	resp, err := client.Post(base+"/api/login", "application/json", strings.NewReader(body))
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", resp.StatusCode, nil
	}
	var out struct{ Token string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return "", resp.StatusCode, err
	}
	return out.Token, resp.StatusCode, nil
}

// bearer sends a request with a bearer token and returns the status.
func bearer(method, target, token string) (int, error) {
	req, err := http.NewRequest(method, target, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func me(t *testing.T, base, token string) int {
	t.Helper()
	status, err := bearer(http.MethodGet, base+"/api/me", token)
	if err != nil {
		t.Fatal(err)
	}
	return status
}

func mustLogin(t *testing.T, base, user string) string {
	t.Helper()
	token, status, err := login(base, user)
	if err != nil || status != http.StatusOK {
		t.Fatalf("sign-in of %s at %s: status %d, err %v", user, base, status, err)
	}
	return token
}

// freshTable returns a table name of the test's own on db, dropped at the
// end.
func freshTable(t *testing.T, dsn string) string {
	t.Helper()
	_, db := postgresDSN(t)
	table := testdb.UniqueName("gs_multi_")
	testdb.DropOnCleanup(t, db, table)
	return table
}

// revokeOnA signs in on a, checks that b knows the session, revokes it on
// a, and returns the token and when it was revoked.
func revokeOnA(t *testing.T, a, b *App, user string) (string, time.Time) {
	t.Helper()
	token := mustLogin(t, a.BaseURL, user)
	if s := me(t, b.BaseURL, token); s != http.StatusOK { // read-through on b
		t.Fatalf("a session created on A is unknown on B: %d", s)
	}
	if s, err := bearer(http.MethodPost, a.BaseURL+"/api/logout", token); err != nil || s >= 300 {
		t.Fatalf("logout on A: %d, %v", s, err)
	}
	return token, time.Now()
}

// rejectedWithin polls b until it rejects token, for at most timeout, and
// reports whether it did.
func rejectedWithin(t *testing.T, b *App, token string, timeout time.Duration) bool {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for me(t, b.BaseURL, token) != http.StatusUnauthorized {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

// waitUntilBHearsA revokes sessions on a until b has seen one revocation,
// which tells that b's change feed (its listener, with NOTIFY) runs.
func waitUntilBHearsA(t *testing.T, a, b *App) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		token, _ := revokeOnA(t, a, b, "alice")
		if rejectedWithin(t, b, token, 10*time.Second) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("B never saw a revocation made on A")
		}
	}
}

// revocationLatencies revokes n sessions on a and measures, for each, how
// long until b rejects the token. A revocation not seen within timeout
// fails the test.
func revocationLatencies(t *testing.T, a, b *App, n int, timeout time.Duration) []time.Duration {
	t.Helper()
	var lat []time.Duration
	for i := range n {
		token, start := revokeOnA(t, a, b, []string{"alice", "bob"}[i%2])
		if !rejectedWithin(t, b, token, timeout) {
			t.Fatalf("revocation %d not seen on B after %v", i, timeout)
		}
		lat = append(lat, time.Since(start))
	}
	return lat
}

// summarize returns the median, the 99th percentile by nearest rank (of
// 100 values the 99th smallest; of fewer, the maximum) and the maximum.
func summarize(lat []time.Duration) (p50, p99, maxLat time.Duration) {
	s := slices.Clone(lat)
	slices.Sort(s)
	return s[len(s)/2], s[(len(s)*99+99)/100-1], s[len(s)-1]
}

// signOuts returns how many sign-outs a case of
// TestRevocationReachesOtherInstance measures: GORMSESSION_E2E_SIGNOUTS
// when set, else 10 under -short, else n.
func signOuts(t *testing.T, n int) int {
	if v := os.Getenv("GORMSESSION_E2E_SIGNOUTS"); v != "" {
		k, err := strconv.Atoi(v)
		if err != nil || k <= 0 {
			t.Fatalf("GORMSESSION_E2E_SIGNOUTS: %q is not a positive number", v)
		}
		return k
	}
	if testing.Short() {
		return 10
	}
	return n
}

// TestRevocationReachesOtherInstance signs in on one instance, checks
// that the other accepts the token at once (read-through), revokes it and
// waits for the other to reject it. Each wait is a deadline of 30 s, far
// above the expected figures (about a second with polling, milliseconds
// with NOTIFY) so that a busy machine cannot fail it, and far below the
// hour between polls in the NOTIFY-alone case, so that only NOTIFY can
// pass it there. The measured latencies are logged (p50, p99 and max; the
// README quotes them), not asserted.
//
// Each case measures 100 sign-outs, the polling case 30 (each takes about
// a second there); GORMSESSION_E2E_SIGNOUTS sets the number for every
// case, as for the README's figures:
//
//	GORMSESSION_E2E_SIGNOUTS=100 go test -race -count=1 -run '^TestRevocationReachesOtherInstance$' -v ./...
func TestRevocationReachesOtherInstance(t *testing.T) {
	dsn, _ := postgresDSN(t)
	for _, tt := range []struct {
		name string
		args []string
		n    int
	}{
		// No flags: what a user gets (NOTIFY, and a poll every second).
		{"defaults", nil, 100},
		// The default poll alone, as on a database without NOTIFY.
		{"polling", []string{"-notify=false"}, 30},
		// NOTIFY, with polling so rare it cannot explain a revocation seen.
		{"notify", []string{"-sync", "1h"}, 100},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"-table", freshTable(t, dsn)}, tt.args...)
			a := StartApp(t, AppOptions{DatabaseURL: dsn, Args: args})
			b := StartApp(t, AppOptions{DatabaseURL: dsn, Args: args})
			waitUntilBHearsA(t, a, b)
			lat := revocationLatencies(t, a, b, signOuts(t, tt.n), 30*time.Second)
			p50, p99, maxLat := summarize(lat)
			t.Logf("%s: %d revocations on A rejected on B after p50 %v, p99 %v, max %v",
				tt.name, len(lat), p50.Round(time.Microsecond), p99.Round(time.Microsecond), maxLat.Round(time.Microsecond))
		})
	}
}

// TestInstancesStartTogether starts 4 app processes at the same moment on
// an empty table: every one must come up (migrations are serialized).
func TestInstancesStartTogether(t *testing.T) {
	dsn, _ := postgresDSN(t)
	args := []string{"-table", freshTable(t, dsn)}
	started := make(chan *App, 4)
	// StartApp must run on a test goroutine: start the four in parallel
	// subtests, released together.
	t.Run("start", func(t *testing.T) {
		for i := range 4 {
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				t.Parallel()
				started <- StartApp(t, AppOptions{DatabaseURL: dsn, Args: args})
			})
		}
	})
	close(started)
	if n := len(started); n != 4 {
		t.Fatalf("%d of 4 instances came up", n)
	}
}

// TestHeldBackSignOutReachesOtherInstance holds the row of a session
// locked by a concurrent transaction while instance A signs it out, for
// longer than the overlap an earlier change feed read back (2 s): A's
// UPDATE waits, and commits when the lock is released. B must refuse the
// token within its bound (one poll interval plus a poll) of that commit,
// with NOTIFY and with polling alone.
func TestHeldBackSignOutReachesOtherInstance(t *testing.T) {
	dsn, db := postgresDSN(t)
	const hold = 5 * time.Second
	for _, tt := range []struct {
		name string
		args []string
	}{
		{"defaults", nil},
		{"polling", []string{"-notify=false"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			table := freshTable(t, dsn)
			args := append([]string{"-table", table}, tt.args...)
			a := StartApp(t, AppOptions{DatabaseURL: dsn, Args: args})
			b := StartApp(t, AppOptions{DatabaseURL: dsn, Args: args})
			token := mustLogin(t, a.BaseURL, "alice")
			if s := me(t, b.BaseURL, token); s != http.StatusOK {
				t.Fatalf("a session created on A is unknown on B: %d", s)
			}
			tx := db.Begin()
			if err := tx.Exec("SELECT id FROM "+table+" WHERE id = ? FOR UPDATE", gormsession.HashToken(token)).Error; err != nil {
				tx.Rollback()
				t.Fatal(err)
			}
			logout := make(chan error, 1)
			go func() {
				s, err := bearer(http.MethodPost, a.BaseURL+"/api/logout", token)
				if err == nil && s >= 300 {
					err = fmt.Errorf("logout on A: status %d", s)
				}
				logout <- err
			}()
			time.Sleep(hold)
			select {
			case err := <-logout:
				t.Fatalf("the sign-out returned while its write was held back: %v", err)
			default:
			}
			if err := tx.Commit().Error; err != nil {
				t.Fatal(err)
			}
			committed := time.Now()
			if err := <-logout; err != nil {
				t.Fatal(err)
			}
			// The bound is a poll interval (1 s) plus a poll; a busy
			// machine gets a margin on top.
			if !rejectedWithin(t, b, token, 5*time.Second) {
				t.Fatalf("B still accepts a token signed out on A %v after the sign-out committed", time.Since(committed))
			}
			t.Logf("%s: held back %v; B refused the token %v after the commit", tt.name, hold, time.Since(committed).Round(time.Millisecond))
		})
	}
}
