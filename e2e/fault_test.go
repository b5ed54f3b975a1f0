package e2e

// Faults: the database stops and comes back; the app is killed during a
// burst of sign-ins. No acknowledged sign-in may be lost.

import (
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gormsession/gormsession"
	"github.com/gormsession/gormsession/internal/testdb"
)

// faultCluster is a PostgreSQL cluster of the fault tests' own (port 5433),
// so that stopping it disturbs no other test.
type faultCluster struct {
	version string
	DSN     string
}

const faultPort = "5433"

// newFaultCluster creates the cluster if needed (pg_createcluster, trust
// authentication) and starts it. It skips when that cannot be done here,
// unless GORMSESSION_REQUIRE_DB names postgres.
func newFaultCluster(t *testing.T) *faultCluster {
	t.Helper()
	skip := func(why string) {
		t.Helper()
		if testdb.Required("postgres") {
			t.Fatalf("fault tests need a PostgreSQL cluster of their own: %s", why)
		}
		t.Skipf("fault tests need a PostgreSQL cluster of their own: %s", why)
	}
	if os.Geteuid() != 0 {
		skip("not root")
	}
	if _, err := exec.LookPath("pg_createcluster"); err != nil {
		skip("pg_createcluster not found")
	}
	entries, err := os.ReadDir("/etc/postgresql")
	if err != nil || len(entries) == 0 {
		skip("no PostgreSQL installation under /etc/postgresql")
	}
	c := &faultCluster{
		version: entries[0].Name(),
		DSN:     "postgres://postgres@127.0.0.1:" + faultPort + "/postgres?sslmode=disable",
	}
	if _, err := os.Stat("/etc/postgresql/" + c.version + "/faults"); err != nil {
		runCmd(t, "pg_createcluster", c.version, "faults", "--port", faultPort, "--", "--auth=trust")
	}
	c.Start(t)
	t.Cleanup(func() { c.Start(t) }) // leave it running, as found
	return c
}

func runCmd(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Start starts the cluster (if it is not running) and waits until it
// accepts connections.
func (c *faultCluster) Start(t *testing.T) {
	t.Helper()
	// Starting a running cluster fails; pg_isready below is the judge.
	if out, err := exec.Command("pg_ctlcluster", "--skip-systemctl-redirect", c.version, "faults", "start").CombinedOutput(); err != nil {
		t.Logf("pg_ctlcluster start: %v: %s", err, strings.TrimSpace(string(out)))
	}
	deadline := time.Now().Add(30 * time.Second)
	for exec.Command("pg_isready", "-q", "-h", "127.0.0.1", "-p", faultPort).Run() != nil {
		if time.Now().After(deadline) {
			t.Fatal("the fault cluster did not start")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// DropTable starts the cluster if a failed test left it stopped, and drops
// the test's table (with the notify function when no table uses it).
func (c *faultCluster) DropTable(t *testing.T, table string) {
	t.Helper()
	c.Start(t)
	db, err := testdb.OpenDSN(c.DSN)
	if err != nil {
		t.Errorf("open the fault cluster: %v", err)
		return
	}
	defer func() {
		if sqlDB, err := db.DB(); err == nil {
			sqlDB.Close()
		}
	}()
	if err := testdb.DropTable(db, table); err != nil {
		t.Errorf("drop %s: %v", table, err)
	}
}

// WaitRevoked waits until the session id in table is revoked in the
// database (a tombstone, or no row), failing the test after timeout.
func (c *faultCluster) WaitRevoked(t *testing.T, table, id string, timeout time.Duration) {
	t.Helper()
	db, err := testdb.OpenDSN(c.DSN)
	if err != nil {
		t.Fatalf("open the fault cluster: %v", err)
	}
	defer func() {
		if sqlDB, err := db.DB(); err == nil {
			sqlDB.Close()
		}
	}()
	deadline := time.Now().Add(timeout)
	for {
		var live int64
		err := db.Table(table).Where("id = ? AND revoked_at IS NULL", id).Count(&live).Error
		if err == nil && live == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("session %s not revoked in the database %v after the outage: %d live rows, %v", id, timeout, live, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop stops the cluster at once (fast shutdown: connections are cut).
func (c *faultCluster) Stop(t *testing.T) {
	t.Helper()
	runCmd(t, "pg_ctlcluster", "--skip-systemctl-redirect", c.version, "faults", "stop", "-m", "fast")
}

// TestDatabaseStopsAndReturns stops the app's database under it: signed-in
// users stay signed in, sign-ins fail with 503, and once the database is
// back everything works without a restart and nothing acknowledged is lost.
func TestDatabaseStopsAndReturns(t *testing.T) {
	c := newFaultCluster(t)
	table := testdb.UniqueName("gs_fault_")
	t.Cleanup(func() { c.DropTable(t, table) }) // after the app is killed
	app := StartApp(t, AppOptions{DatabaseURL: c.DSN, Args: []string{"-table", table}})

	var acknowledged []string
	for _, user := range []string{"alice", "bob", "alice"} {
		acknowledged = append(acknowledged, mustLogin(t, app.BaseURL, user))
	}
	loggedOut := mustLogin(t, app.BaseURL, "bob")

	c.Stop(t)
	for _, token := range acknowledged {
		if s := me(t, app.BaseURL, token); s != http.StatusOK {
			t.Fatalf("with the database down a signed-in user gets %d, want 200 from memory", s)
		}
	}
	if _, status, err := login(app.BaseURL, "alice"); err != nil || status != http.StatusServiceUnavailable {
		t.Fatalf("sign-in with the database down: %d, %v; want 503", status, err)
	}
	// Signing out still works: at once in memory, the delete is retried.
	if s, err := bearer(http.MethodPost, app.BaseURL+"/api/logout", loggedOut); err != nil || s >= 500 {
		t.Fatalf("sign-out with the database down: %d, %v", s, err)
	}
	if s := me(t, app.BaseURL, loggedOut); s != http.StatusUnauthorized {
		t.Fatalf("signed-out token answers %d with the database down, want 401", s)
	}

	c.Start(t)
	// Without a restart of the app, sign-ins work again.
	deadline := time.Now().Add(30 * time.Second)
	for {
		token, status, err := login(app.BaseURL, "bob")
		if err == nil && status == http.StatusOK {
			acknowledged = append(acknowledged, token)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sign-in still fails 30 s after the database returned: %d, %v", status, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Wait until the queued delete of the signed-out session has landed
	// (the Manager retries every 5 s), then restart: every acknowledged
	// session is there, the signed-out one is not.
	c.WaitRevoked(t, table, gormsession.HashToken(loggedOut), time.Minute)
	app.Restart()
	for i, token := range acknowledged {
		if s := me(t, app.BaseURL, token); s != http.StatusOK {
			t.Errorf("acknowledged session %d answers %d after the outage and a restart", i, s)
		}
	}
	if s := me(t, app.BaseURL, loggedOut); s != http.StatusUnauthorized {
		t.Errorf("a session signed out during the outage is back after a restart (%d)", s)
	}
}

// TestKillDuringSignInBurst kills the app with SIGKILL while sign-ins are
// in flight: every sign-in that was answered 200 must resolve after a
// restart.
func TestKillDuringSignInBurst(t *testing.T) {
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			opts := AppOptions{}
			if db == "postgres" {
				dsn, _ := postgresDSN(t)
				opts = AppOptions{DatabaseURL: dsn, Args: []string{"-table", freshTable(t, dsn)}}
			}
			app := StartApp(t, opts)
			var (
				mu       sync.Mutex
				acked    []string
				failures atomic.Int64
				stop     atomic.Bool
				wg       sync.WaitGroup
			)
			for w := range 6 {
				wg.Go(func() {
					user := []string{"alice", "bob"}[w%2]
					for !stop.Load() {
						token, status, err := login(app.BaseURL, user)
						if err != nil || status != http.StatusOK {
							failures.Add(1) // the kill cuts requests short
							continue
						}
						mu.Lock()
						acked = append(acked, token)
						mu.Unlock()
					}
				})
			}
			// Kill once enough sign-ins were acknowledged (however slow the
			// machine), with more in flight.
			deadline := time.Now().Add(time.Minute)
			for {
				mu.Lock()
				n := len(acked)
				mu.Unlock()
				if n >= 20 || time.Now().After(deadline) {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			stop.Store(true) // the sign-ins in flight now are cut by the kill
			app.Kill()
			wg.Wait()
			app.Restart()
			found := 0
			for _, token := range acked {
				if me(t, app.BaseURL, token) == http.StatusOK {
					found++
				}
			}
			t.Logf("%s: %d sign-ins acknowledged before kill -9, %d found after restart (%d requests cut short)",
				db, len(acked), found, failures.Load())
			if len(acked) == 0 {
				t.Fatal("no sign-in was acknowledged before the kill")
			}
			if found != len(acked) {
				t.Fatalf("%d of %d acknowledged sign-ins were lost", len(acked)-found, len(acked))
			}
		})
	}
}
