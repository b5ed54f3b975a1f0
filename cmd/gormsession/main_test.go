package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"gorm.io/gorm"

	"github.com/gormsession/gormsession"
	"github.com/gormsession/gormsession/backendtest"
	"github.com/gormsession/gormsession/internal/testdb"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// gs runs the command with args and an empty environment, and returns its
// exit status and output.
func gs(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut, func(string) string { return "" })
	return code, out.String(), errOut.String()
}

// db is one database the command runs on in a test: the test's DB, the
// command's --dsn for it, and an open *gorm.DB.
type db struct {
	testdb.DB
	dsn string
	gdb *gorm.DB
}

// args returns the connection flags followed by more.
func (d db) args(cmd string, more ...string) []string {
	return append([]string{cmd, "--dsn", d.dsn, "--table", d.Table}, more...)
}

func newDB(t *testing.T, d testdb.DB) db {
	t.Helper()
	dsn := d.DSN
	if d.Name == "mysql" {
		dsn = "mysql://" + dsn
	}
	out := db{DB: d, dsn: dsn, gdb: d.Open(t)}
	if d.Name == "sqlite" { // the file exists, as an app's would
		if err := out.gdb.Exec("SELECT 1").Error; err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// each runs f as a parallel subtest on SQLite, PostgreSQL and
// MySQL/MariaDB.
func each(t *testing.T, f func(t *testing.T, d db)) {
	testdb.Each(t, func(t *testing.T, d testdb.DB) { f(t, newDB(t, d)) })
	t.Run("mysql", func(t *testing.T) {
		t.Parallel()
		f(t, newDB(t, testdb.MySQL(t)))
	})
}

// store returns a migrated Store on d's table.
func (d db) store(t *testing.T) *gormsession.Store {
	t.Helper()
	st, err := gormsession.NewStore(d.gdb, gormsession.StoreOptions{TableName: d.Table})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// signIn creates a signed-in session of user through a Manager, as an app
// would.
func signIn(t *testing.T, st *gormsession.Store, user, tenant string) gormsession.Session {
	t.Helper()
	ctx := context.Background()
	m, err := gormsession.NewManager(ctx, st, gormsession.ManagerOptions{SyncInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	s, err := m.Create(ctx, gormsession.Attributes{UserID: user, TenantID: tenant, Device: "Firefox on Linux", Lifetime: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	return s
}

// snapshot returns every row of table, in ID order, as text: what "nothing
// changed" compares.
func snapshot(t *testing.T, gdb *gorm.DB, table string) string {
	t.Helper()
	if !gdb.Migrator().HasTable(table) {
		return "no table"
	}
	rows, err := gdb.Table(table).Order("id").Rows()
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var row map[string]any
		if err := gdb.ScanRows(rows, &row); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintln(&b, row)
	}
	return b.String()
}

func TestRevokeUserSignsTheUserOutEverywhere(t *testing.T) {
	each(t, func(t *testing.T, d db) {
		ctx := context.Background()
		st := d.store(t)
		a1, a2, a3 := signIn(t, st, "alice", ""), signIn(t, st, "alice", "acme"), signIn(t, st, "alice", "")
		bob := signIn(t, st, "bob", "")

		code, out, errOut := gs(t, d.args("revoke", "--user", "alice", "--except", a3.ID)...)
		if code != exitOK || out != "revoked 2 sessions of user \"alice\"\n" {
			t.Fatalf("revoke --user alice --except: %d, %q, %q", code, out, errOut)
		}
		left, err := st.ListUser(ctx, "alice")
		if err != nil || len(left) != 1 || left[0].ID != a3.ID {
			t.Fatalf("alice's sessions after revoke --except = %v, %v; want only %s", left, err, a3.ID[:12])
		}
		for _, s := range []gormsession.Session{a1, a2} {
			if _, found, _ := st.Get(ctx, s.ID); found {
				t.Errorf("session %s still live", s.ID[:12])
			}
		}
		code, out, _ = gs(t, d.args("revoke", "--user", "alice", "--json")...)
		var res revokeResult
		if err := json.Unmarshal([]byte(out), &res); code != exitOK || err != nil || res.Revoked != 1 || res.IDs[0] != a3.ID {
			t.Fatalf("revoke --user alice --json: %d, %q", code, out)
		}
		if _, found, _ := st.Get(ctx, bob.ID); !found {
			t.Fatal("revoking alice signed bob out")
		}
		if code, out, _ = gs(t, d.args("revoke", "--user", "alice")...); code != exitOK || !strings.HasPrefix(out, "revoked 0 sessions") {
			t.Fatalf("revoke of a user with no session: %d, %q", code, out)
		}
	})
}

func TestRevokeSessionSignsOneSessionOut(t *testing.T) {
	each(t, func(t *testing.T, d db) {
		st := d.store(t)
		s, other := signIn(t, st, "alice", ""), signIn(t, st, "alice", "")
		code, out, errOut := gs(t, d.args("revoke", "--session", s.ID)...)
		if code != exitOK || out != fmt.Sprintf("revoked 1 session (%s of user \"alice\")\n", s.ID[:12]) {
			t.Fatalf("revoke --session: %d, %q, %q", code, out, errOut)
		}
		if _, found, _ := st.Get(context.Background(), s.ID); found {
			t.Fatal("the session is still live")
		}
		if _, found, _ := st.Get(context.Background(), other.ID); !found {
			t.Fatal("the other session was revoked")
		}
		code, out, _ = gs(t, d.args("revoke", "--session", s.ID, "--json")...)
		if code != exitOK || strings.Join(strings.Fields(out), "") != `{"revoked":0,"ids":[]}` {
			t.Fatalf("revoking it again: %d, %q", code, out)
		}
	})
}

// TestConcurrentRevokesOfASessionCountItOnce runs revoke --session on one
// session from several processes at once: exactly one of them ended it and
// says so; the others say they revoked none.
func TestConcurrentRevokesOfASessionCountItOnce(t *testing.T) {
	each(t, func(t *testing.T, d db) {
		st := d.store(t)
		for range 5 {
			s := signIn(t, st, "alice", "")
			const n = 6
			outs := make(chan string, n)
			var wg sync.WaitGroup
			for i := range n {
				args := d.args("revoke", "--session", s.ID)
				if i%2 == 0 {
					args = append(args, "--json")
				}
				wg.Go(func() {
					code, out, errOut := gs(t, args...)
					if code != exitOK {
						t.Errorf("revoke --session: %d, %q", code, errOut)
					}
					outs <- out
				})
			}
			wg.Wait()
			close(outs)
			total := 0
			for out := range outs {
				var res revokeResult
				switch {
				case strings.HasPrefix(out, "{"):
					if err := json.Unmarshal([]byte(out), &res); err != nil {
						t.Fatalf("revoke --session --json: %q: %v", out, err)
					}
				case out == fmt.Sprintf("revoked 1 session (%s of user \"alice\")\n", s.ID[:12]):
					res.Revoked = 1
				case out != fmt.Sprintf("revoked 0 sessions: no live session %s\n", s.ID[:12]) &&
					out != fmt.Sprintf("revoked 0 sessions: session %s of user \"alice\" was signed out meanwhile\n", s.ID[:12]):
					t.Fatalf("revoke --session: %q", out)
				}
				total += res.Revoked
			}
			if total != 1 {
				t.Fatalf("%d concurrent revokes of one session reported %d sessions revoked; want 1", n, total)
			}
		}
	})
}

func TestSessionsListsTheUsersLiveSessionsNewestFirst(t *testing.T) {
	each(t, func(t *testing.T, d db) {
		st := d.store(t)
		older := signIn(t, st, "alice", "")
		time.Sleep(10 * time.Millisecond) // SQLite's clock has milliseconds
		newer := signIn(t, st, "alice", "")
		signIn(t, st, "bob", "")
		code, out, errOut := gs(t, d.args("sessions", "--user", "alice")...)
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if code != exitOK || len(lines) != 4 || !strings.HasPrefix(lines[0], "ID ") ||
			!strings.HasPrefix(lines[1], newer.ID[:12]+" ") || !strings.HasPrefix(lines[2], older.ID[:12]+" ") ||
			!strings.Contains(lines[1], "Firefox on Linux") || lines[3] != `2 live sessions of user "alice"` {
			t.Fatalf("sessions --user alice: %d, %q, %q", code, out, errOut)
		}
		code, out, _ = gs(t, d.args("sessions", "--user", "alice", "--json")...)
		var list []sessionJSON
		if err := json.Unmarshal([]byte(out), &list); code != exitOK || err != nil || len(list) != 2 ||
			list[0].ID != newer.ID || list[0].ExpiresAt == nil || list[0].Device != "Firefox on Linux" {
			t.Fatalf("sessions --json: %d, %q, %v", code, out, err)
		}
		if code, out, _ = gs(t, d.args("sessions", "--user", "carol")...); code != exitOK || out != "user \"carol\" has no live session\n" {
			t.Fatalf("sessions of a user without any: %d, %q", code, out)
		}
	})
}

func TestStatsCountsByKindAndTenant(t *testing.T) {
	each(t, func(t *testing.T, d db) {
		st := d.store(t)
		a := signIn(t, st, "alice", "acme")
		bob := signIn(t, st, "bob", "")
		anon := signIn(t, st, "", "acme")
		if err := st.Revoke(context.Background(), a.ID); err != nil {
			t.Fatal(err)
		}
		code, out, errOut := gs(t, d.args("stats", "--json")...)
		var c countsJSON
		if err := json.Unmarshal([]byte(out), &c); code != exitOK || err != nil ||
			c.SignedIn != 1 || c.Anonymous != 1 || c.Expired != 0 || c.Tombstones != 1 || c.Oldest == nil || c.TenantID != nil {
			t.Fatalf("stats --json: %d, %q, %q", code, out, errOut)
		}
		code, out, _ = gs(t, d.args("stats", "--by-tenant")...)
		if code != exitOK || !regexp.MustCompile(`(?m)^ *"" +1 +0 +0 +0 `).MatchString(out) ||
			!regexp.MustCompile(`(?m)^ *acme +0 +1 +0 +1 `).MatchString(out) {
			t.Fatalf("stats --by-tenant: %d, %q", code, out)
		}
		code, out, errOut = gs(t, d.args("stats", "--by-tenant", "--json")...)
		var byTenant []countsJSON
		if err := json.Unmarshal([]byte(out), &byTenant); code != exitOK || err != nil || len(byTenant) != 2 {
			t.Fatalf("stats --by-tenant --json: %d, %q, %q, %v", code, out, errOut, err)
		}
		for i, want := range []struct {
			tenant                                  string
			signedIn, anonymous, expired, tombstone int64
			live                                    gormsession.Session
		}{
			{"", 1, 0, 0, 0, bob},
			{"acme", 0, 1, 0, 1, anon},
		} {
			c := byTenant[i]
			created := storedCreatedAt(t, st, want.live.ID)
			if c.TenantID == nil || *c.TenantID != want.tenant || c.SignedIn != want.signedIn || c.Anonymous != want.anonymous ||
				c.Expired != want.expired || c.Tombstones != want.tombstone ||
				c.Oldest == nil || !c.Oldest.Equal(created) || c.Newest == nil || !c.Newest.Equal(created) {
				t.Errorf("stats --by-tenant --json, tenant %q: %+v; want %+v, oldest and newest %v\n%s", want.tenant, c, want, created, out)
			}
		}
	})
}

// storedCreatedAt returns the creation time of the live session id as the
// table holds it.
func storedCreatedAt(t *testing.T, st *gormsession.Store, id string) time.Time {
	t.Helper()
	s, found, err := st.Get(context.Background(), id)
	if err != nil || !found {
		t.Fatalf("get %s: %v, %v", id[:12], found, err)
	}
	return s.CreatedAt
}

func TestCleanupRemovesExpiredSessions(t *testing.T) {
	each(t, func(t *testing.T, d db) {
		ctx := context.Background()
		st := d.store(t)
		past := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
		expired := gormsession.Session{ID: gormsession.HashToken(gormsession.NewToken()), UserID: "alice",
			CreatedAt: past.Add(-time.Hour), UpdatedAt: past.Add(-time.Hour), ExpiresAt: past}
		if err := st.Insert(ctx, &expired); err != nil {
			t.Fatal(err)
		}
		live := signIn(t, st, "alice", "")
		code, out, errOut := gs(t, d.args("cleanup")...)
		if code != exitOK || out != "removed 1 expired session, and the tombstones older than 24h0m0s\n" {
			t.Fatalf("cleanup: %d, %q, %q", code, out, errOut)
		}
		counts, err := st.Count(ctx, false)
		if err != nil || counts[0].Expired != 0 || counts[0].SignedIn != 1 {
			t.Fatalf("after cleanup: %+v, %v", counts, err)
		}
		if _, found, _ := st.Get(ctx, live.ID); !found {
			t.Fatal("cleanup removed a live session")
		}
		for _, id := range []string{gormsession.HashToken(gormsession.NewToken()), gormsession.HashToken(gormsession.NewToken())} {
			expired.ID = id
			if err := st.Insert(ctx, &expired); err != nil {
				t.Fatal(err)
			}
		}
		// On SQLite the row with the highest seq stays (see the Store's
		// keepNewest): a session written after the expired ones.
		live = signIn(t, st, "alice", "")
		for _, want := range []int64{2, 0} {
			code, out, errOut = gs(t, d.args("cleanup", "--json")...)
			var res map[string]any
			if err := json.Unmarshal([]byte(out), &res); code != exitOK || err != nil || len(res) != 1 || res["expired_removed"] != float64(want) {
				t.Fatalf("cleanup --json: %d, %q, %q; want {\"expired_removed\": %d}", code, out, errOut, want)
			}
		}
		if _, found, _ := st.Get(ctx, live.ID); !found {
			t.Fatal("cleanup --json removed a live session")
		}
	})
}

func TestMigrateCreatesTheTableThenFindsItUpToDate(t *testing.T) {
	each(t, func(t *testing.T, d db) {
		code, out, errOut := gs(t, d.args("migrate")...)
		if code != exitOK || out != "created table "+d.Table+"\n" {
			t.Fatalf("migrate: %d, %q, %q", code, out, errOut)
		}
		if code, out, _ = gs(t, d.args("migrate")...); code != exitOK || out != "table "+d.Table+" is up to date\n" {
			t.Fatalf("migrate again: %d, %q", code, out)
		}
	})
}

func TestMigrateCompletesAnOlderTable(t *testing.T) {
	each(t, func(t *testing.T, d db) {
		olderTable(t, d)
		code, out, errOut := gs(t, d.args("migrate", "--json")...)
		var res struct{ Added []string }
		if err := json.Unmarshal([]byte(out), &res); code != exitOK || err != nil ||
			!strings.Contains(strings.Join(res.Added, ","), "column version") {
			t.Fatalf("migrate of an older table: %d, %q, %q", code, out, errOut)
		}
		if code, _, errOut = gs(t, d.args("stats")...); code != exitOK {
			t.Fatalf("stats after migrate: %d, %q", code, errOut)
		}
	})
}

// olderTable creates d's table as an older version had it (no revoked_at,
// no version, no indexes), with one row of alice.
func olderTable(t *testing.T, d db) {
	t.Helper()
	if err := d.gdb.Table(d.Table).AutoMigrate(&testdb.OlderModel{}); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	row := testdb.OlderModel{ID: gormsession.HashToken(gormsession.NewToken()), UserID: "alice", CreatedAt: now, UpdatedAt: now}
	if err := d.gdb.Table(d.Table).Create(&row).Error; err != nil {
		t.Fatal(err)
	}
}

// TestBadInputChangesNothing runs each bad input of the issue on each
// database: the exit status, the message, and the table as it was.
func TestBadInputChangesNothing(t *testing.T) {
	each(t, func(t *testing.T, d db) {
		st := d.store(t)
		alice := signIn(t, st, "alice", "")
		before := snapshot(t, d.gdb, d.Table)
		missing := testdb.UniqueName("gs_absent_")
		for _, tt := range []struct {
			name string
			args []string
			code int
			msg  string
		}{
			{"malformed session ID", d.args("revoke", "--session", "not-an-id"), exitUsage, `--session "not-an-id" is not a session ID`},
			{"session ID in capitals", d.args("revoke", "--session", strings.ToUpper(alice.ID)), exitUsage, "is not a session ID"},
			{"short session ID", d.args("revoke", "--session", alice.ID[:12]), exitUsage, "is not a session ID but the start of one"},
			{"malformed --except", d.args("revoke", "--user", "alice", "--except", "x"), exitUsage, `--except "x" is not a session ID`},
			{"empty user", d.args("revoke", "--user", ""), exitUsage, "--user is empty"},
			{"blank user", d.args("revoke", "--user", "  "), exitUsage, "--user is empty"},
			{"user and session", d.args("revoke", "--user", "alice", "--session", alice.ID), exitUsage, "not both"},
			{"revoke of nothing", d.args("revoke"), exitUsage, "give --user ID or --session SESSION"},
			{"sessions of no user", d.args("sessions", "--user", ""), exitUsage, "give --user ID"},
			{"unknown flag", d.args("stats", "--verbose"), exitUsage, "flag provided but not defined: -verbose"},
			{"stray argument", d.args("stats", "alice"), exitUsage, `unexpected argument "alice"`},
			{"bad table name", d.args("stats", "--table", "x; DROP TABLE y"), exitUsage, "is not an identifier"},
			{"negative tombstone TTL", d.args("cleanup", "--tombstone-ttl", "-1h"), exitUsage, "--tombstone-ttl must be positive"},
			{"revoke --user, no table", d.args("revoke", "--table", missing, "--user", "alice"), exitFailed, "table " + missing + " does not exist (gormsession migrate creates it)"},
			{"revoke --session, no table", d.args("revoke", "--table", missing, "--session", alice.ID), exitFailed, "does not exist"},
			{"sessions, no table", d.args("sessions", "--table", missing, "--user", "alice"), exitFailed, "does not exist"},
			{"stats, no table", d.args("stats", "--table", missing), exitFailed, "does not exist"},
			{"cleanup, no table", d.args("cleanup", "--table", missing), exitFailed, "does not exist"},
		} {
			code, out, errOut := gs(t, tt.args...)
			if code != tt.code || !strings.Contains(errOut, tt.msg) || out != "" {
				t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit %d and %q", tt.name, code, out, errOut, tt.code, tt.msg)
			}
		}
		if after := snapshot(t, d.gdb, d.Table); after != before {
			t.Errorf("the table changed:\nbefore %s\nafter  %s", before, after)
		}
		if d.gdb.Migrator().HasTable(missing) {
			t.Errorf("a command created the table %s", missing)
		}
	})
}

func TestOlderSchemaIsRefusedAndSaysWhatMigrateAdds(t *testing.T) {
	each(t, func(t *testing.T, d db) {
		olderTable(t, d)
		before := snapshot(t, d.gdb, d.Table)
		for _, args := range [][]string{
			d.args("revoke", "--user", "alice"),
			d.args("revoke", "--session", strings.Repeat("a", 64)),
			d.args("sessions", "--user", "alice"),
			d.args("stats"),
			d.args("cleanup"),
		} {
			code, out, errOut := gs(t, args...)
			if code != exitFailed || out != "" ||
				!strings.Contains(errOut, "table "+d.Table+" is of an older schema: it lacks ") ||
				!strings.Contains(errOut, "column revoked_at") || !strings.Contains(errOut, "column version") ||
				!strings.Contains(errOut, "gormsession migrate adds them") {
				t.Errorf("%s on an older table: exit %d, stdout %q, stderr %q", args[0], code, out, errOut)
			}
		}
		if after := snapshot(t, d.gdb, d.Table); after != before {
			t.Errorf("the table changed:\nbefore %s\nafter  %s", before, after)
		}
		if d.gdb.Migrator().HasColumn(d.Table, "version") {
			t.Error("a command other than migrate added a column")
		}
	})
}

func TestUnreachableDatabaseFails(t *testing.T) {
	for _, dsn := range []string{
		"postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=5",
		"mysql://root@tcp(127.0.0.1:1)/test",
	} {
		code, out, errOut := gs(t, "stats", "--dsn", dsn)
		if code != exitFailed || out != "" || !strings.Contains(errOut, "cannot reach the ") {
			t.Errorf("stats on %s: exit %d, stdout %q, stderr %q", dsn, code, out, errOut)
		}
	}
}

func TestAbsentSQLiteFileIsNotCreated(t *testing.T) {
	file := filepath.Join(t.TempDir(), "typo.db")
	for _, args := range [][]string{
		{"revoke", "--dsn", file, "--user", "alice"},
		{"stats", "--dsn", "sqlite://" + file},
	} {
		code, out, errOut := gs(t, args...)
		if code != exitFailed || out != "" || !strings.Contains(errOut, "no SQLite database at "+file) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
	if _, err := os.Stat(file); err == nil {
		t.Fatal("the SQLite file was created")
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tt := range []struct {
		args []string
		msg  string
	}{
		{nil, "Usage:"},
		{[]string{"revoke-all"}, `unknown command "revoke-all"`},
		{[]string{"stats"}, "no database: give --dsn or set DATABASE_URL"},
		{[]string{"stats", "--dsn", "mongodb://localhost/x"}, `unknown scheme "mongodb"`},
		{[]string{"stats", "--dsn", "x.db", "--table", ""}, "--table is empty"},
		{[]string{"stats", "--dsn", "mysql://root@127.0.0.1"}, "--dsn: invalid DSN"},
	} {
		code, out, errOut := gs(t, tt.args...)
		if code != exitUsage || out != "" || !strings.Contains(errOut, tt.msg) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 2 and %q", tt.args, code, out, errOut, tt.msg)
		}
	}
}

func TestHelpIsPerCommand(t *testing.T) {
	for _, c := range commands {
		code, out, errOut := gs(t, c.name, "-h")
		if code != exitOK || errOut != "" || !strings.HasPrefix(out, "Usage: gormsession "+c.name+" ") || !strings.Contains(out, "-dsn") {
			t.Errorf("%s -h: exit %d, stdout %q, stderr %q", c.name, code, out, errOut)
		}
	}
	if code, out, _ := gs(t, "-h"); code != exitOK || !strings.Contains(out, "gormsession migrate [--print]") {
		t.Errorf("-h: exit %d, %q", code, out)
	}
}

func TestEnvironmentGivesTheDatabaseAndTable(t *testing.T) {
	d := newDB(t, testdb.SQLite(t))
	st := d.store(t)
	signIn(t, st, "alice", "")
	env := map[string]string{"DATABASE_URL": d.dsn, "SESSION_TABLE": d.Table}
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"sessions", "--user", "alice"}, &out, &errOut, func(k string) string { return env[k] })
	if code != exitOK || !strings.Contains(out.String(), `1 live session of user "alice"`) {
		t.Fatalf("sessions with DATABASE_URL and SESSION_TABLE: %d, %q, %q", code, out.String(), errOut.String())
	}
}

// TestMigratePrintIsAppliedByTheDatabasesOwnClient writes the DDL with
// migrate --print, applies it with psql, sqlite3 or mysql, and checks that
// a Store that does not migrate accepts the table and passes the
// conformance suite on it.
func TestMigratePrintIsAppliedByTheDatabasesOwnClient(t *testing.T) {
	each(t, func(t *testing.T, d db) {
		code, ddl, errOut := gs(t, d.args("migrate", "--print")...)
		if code != exitOK {
			t.Fatalf("migrate --print: %d, %q", code, errOut)
		}
		if d.gdb.Migrator().HasTable(d.Table) {
			t.Fatal("migrate --print created the table")
		}
		if n := strings.Count(ddl, "-- dialect-specific: partial index"); (d.Name == "mysql") != (n == 0) {
			t.Errorf("%d statements marked as partial indexes:\n%s", n, ddl)
		}
		if strings.Contains(ddl, "-- dialect-specific: PostgreSQL only") != (d.Name == "postgres") {
			t.Errorf("NOTIFY trigger marked wrongly:\n%s", ddl)
		}
		checkPrintJSON(t, d, ddl)
		var cmd *exec.Cmd
		switch d.Name {
		case "postgres":
			cmd = exec.Command("psql", "-v", "ON_ERROR_STOP=1", "-q", d.DSN)
		case "mysql":
			cmd = exec.Command("mysql", "-h", "127.0.0.1", "-u", "root", "test")
		default:
			file, _, _ := strings.Cut(d.DSN, "?")
			cmd = exec.Command("sqlite3", "-bail", file)
		}
		if _, err := exec.LookPath(cmd.Path); err != nil {
			if testdb.Required(d.Name) {
				t.Fatalf("%s: %v", cmd.Path, err)
			}
			t.Skipf("no %s client: %v", d.Name, err)
		}
		script := ddl
		if d.Name == "postgres" {
			// The tests of other packages migrate in the same database
			// meanwhile; see testdb.ExecDDL.
			script = testdb.PostgresScript(ddl)
		}
		cmd.Stdin = strings.NewReader(script)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s\n%s", cmd, err, out, ddl)
		}
		if code, out, errOut := gs(t, d.args("migrate")...); code != exitOK || out != "table "+d.Table+" is up to date\n" {
			t.Fatalf("migrate after the printed DDL: %d, %q, %q", code, out, errOut)
		}
		backendtest.Run(t, func(t *testing.T) gormsession.Backend {
			st, err := gormsession.NewStore(d.gdb, gormsession.StoreOptions{TableName: d.Table, SkipMigrate: true})
			if err != nil {
				t.Fatal(err)
			}
			if err := d.gdb.Exec("DELETE FROM " + d.Table).Error; err != nil {
				t.Fatal(err)
			}
			return st
		})
	})
}

// checkPrintJSON checks that migrate --print --json gives the statements
// of ddl, the text migrate --print wrote, in its order and with the same
// dialect-specific notes.
func checkPrintJSON(t *testing.T, d db, ddl string) {
	t.Helper()
	code, out, errOut := gs(t, d.args("migrate", "--print", "--json")...)
	var stmts []struct {
		SQL             string `json:"sql"`
		DialectSpecific string `json:"dialect_specific"`
	}
	if err := json.Unmarshal([]byte(out), &stmts); code != exitOK || err != nil || len(stmts) == 0 {
		t.Fatalf("migrate --print --json: %d, %q, %q, %v", code, out, errOut, err)
	}
	if !strings.HasPrefix(stmts[0].SQL, "CREATE TABLE ") || stmts[0].DialectSpecific != "" && d.Name != "mysql" {
		t.Errorf("migrate --print --json: the first statement is %+v; want the plain CREATE TABLE", stmts[0])
	}
	var partial, notify int
	rest := ddl
	for _, s := range stmts {
		text := "\n" + s.SQL + ";\n"
		if s.DialectSpecific != "" {
			text = "\n-- dialect-specific: " + s.DialectSpecific + text
		}
		_, after, found := strings.Cut(rest, text)
		if !found {
			t.Fatalf("migrate --print --json: statement %q not next in the text output:\n%s", text, rest)
		}
		rest = after
		partial += strings.Count(s.DialectSpecific, "partial index")
		notify += strings.Count(s.DialectSpecific, "NOTIFY")
	}
	if strings.TrimSpace(rest) != "" {
		t.Errorf("migrate --print --json lacks what the text output ends with: %q", rest)
	}
	if (partial > 0) == (d.Name == "mysql") || (notify > 0) != (d.Name == "postgres") {
		t.Errorf("migrate --print --json on %s: %d partial indexes, %d NOTIFY statements:\n%s", d.Name, partial, notify, out)
	}
}

// TestLibraryImportsNoDriverOrCLIFramework checks that the command's
// imports stay out of the library packages' import graph: a service on
// PostgreSQL builds without the SQLite or MySQL driver.
func TestLibraryImportsNoDriverOrCLIFramework(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	cmd := exec.Command("go", "list", "-deps", ".", "./gorillastore", "./ginmiddleware", "./backendtest", "./pgnotify")
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		for _, banned := range []string{"gorm.io/driver/", "github.com/go-sql-driver/", "github.com/mattn/go-sqlite3", "github.com/spf13/"} {
			if strings.HasPrefix(pkg, banned) {
				t.Errorf("a library package imports %s", pkg)
			}
		}
	}
}

// TestMigratePrintContactsNoDatabase runs migrate --print on a SQLite file
// that does not exist and on servers that do not listen: it prints the
// DDL of each dialect, creates no file and connects to nothing.
func TestMigratePrintContactsNoDatabase(t *testing.T) {
	file := filepath.Join(t.TempDir(), "absent.db")
	for _, dsn := range []string{
		file,
		"postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=5",
		"mysql://root@tcp(127.0.0.1:1)/test",
	} {
		code, out, errOut := gs(t, "migrate", "--print", "--dsn", dsn)
		if code != exitOK || errOut != "" || !strings.Contains(out, "\nCREATE TABLE ") {
			t.Errorf("migrate --print --dsn %s: exit %d, stdout %q, stderr %q", dsn, code, out, errOut)
		}
	}
	if _, err := os.Stat(file); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("migrate --print created the SQLite file (stat: %v)", err)
	}
}
