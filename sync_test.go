package gormsession_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/gormsession/gormsession"
	"github.com/gormsession/gormsession/internal/testdb"
	"github.com/gormsession/gormsession/pgnotify"
)

// twoInstances returns two Managers on one database, each with its own
// *gorm.DB, as two processes of an application would have.
func twoInstances(t *testing.T, tdb testDB, opts gormsession.ManagerOptions) (a, b *gormsession.Manager) {
	t.Helper()
	return newManager(t, newStore(t, tdb, nil), opts), newManager(t, newStore(t, tdb, nil), opts)
}

func TestSyncCarriesChangesBetweenInstances(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		ctx := context.Background()
		// Polling is driven by hand here: a long interval keeps the
		// background poll out of the way.
		a, b := twoInstances(t, tdb, gormsession.ManagerOptions{SyncInterval: time.Hour})
		s := create(t, a, gormsession.Attributes{UserID: "alice", Data: []byte("v1")})
		other := create(t, a, gormsession.Attributes{UserID: "alice"})

		// Created on A: B finds it by reading through, before any poll.
		if got := mustResolve(t, b, s.Token); string(got.Data) != "v1" {
			t.Fatalf("B read %q", got.Data)
		}
		// Updated on A: B sees the new data after a poll.
		if _, err := setData(a, ctx, s.ID, []byte("v2")); err != nil {
			t.Fatal(err)
		}
		if err := b.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if got := mustResolve(t, b, s.Token); string(got.Data) != "v2" {
			t.Fatalf("after sync B reads %q, want v2", got.Data)
		}
		if n := len(b.ListUser("alice")); n != 2 {
			t.Fatalf("B lists %d sessions of alice, want 2", n)
		}
		// Rotated on A: the old token dies on B, the new one works.
		r, err := a.Rotate(ctx, s.Token)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		mustNotResolve(t, b, s.Token, "it was rotated away on A")
		mustResolve(t, b, r.Token)
		// Revoked on A: rejected on B after a poll.
		mustResolve(t, b, other.Token)
		if err := a.Revoke(ctx, other.ID); err != nil {
			t.Fatal(err)
		}
		if err := b.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		mustNotResolve(t, b, other.Token, "it was revoked on A")
		// Revoked on B, where it was never loaded: A drops it.
		late := create(t, a, gormsession.Attributes{UserID: "bob"})
		if err := b.Revoke(ctx, late.ID); err != nil {
			t.Fatal(err)
		}
		if err := a.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		mustNotResolve(t, a, late.Token, "it was revoked on B")
		mustNotResolve(t, b, late.Token, "B revoked it")
	})
}

func TestBackgroundPollingSeesRevocationWithinInterval(t *testing.T) {
	tdb := newSQLite(t)
	a, b := twoInstances(t, tdb, gormsession.ManagerOptions{SyncInterval: 50 * time.Millisecond})
	s := create(t, a, gormsession.Attributes{UserID: "alice"})
	mustResolve(t, b, s.Token)
	if err := a.Revoke(context.Background(), s.ID); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 5*time.Second, func() bool { _, ok := b.Resolve(context.Background(), s.Token); return !ok })
}

func waitUntil(t *testing.T, limit time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("condition not met within %v", limit)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return time.Since(start)
}

func TestNotifyCarriesRevocationWithoutPolling(t *testing.T) {
	tdb := newPostgres(t)
	ctx := context.Background()
	dbA, dbB := tdb.Open(t), tdb.Open(t)
	stA, stB := newStore(t, tdb, dbA), newStore(t, tdb, dbB)
	// An hour between polls: only NOTIFY can explain a fast update.
	opts := gormsession.ManagerOptions{SyncInterval: time.Hour}
	a := newManager(t, stA, opts)
	opts.Notifier = pgnotify.New(dbB, stB.TableName())
	b := newManager(t, stB, opts)

	s := create(t, a, gormsession.Attributes{UserID: "alice"})
	mustResolve(t, b, s.Token)         // read-through
	time.Sleep(100 * time.Millisecond) // let B's listener start
	if err := a.Revoke(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	took := waitUntil(t, 5*time.Second, func() bool { _, ok := b.Resolve(context.Background(), s.Token); return !ok })
	t.Logf("revocation reached the other instance in %v", took)

	u, err := setDevice(a, ctx, create(t, a, gormsession.Attributes{UserID: "bob"}).ID, "Safari")
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 5*time.Second, func() bool { g, ok := b.Get(u.ID); return ok && g.Device == "Safari" })
}

func TestReadThroughMissesAreBounded(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		db, c := testdb.Counted(tdb.Open(t))
		st := newStore(t, tdb, db)
		m := newManager(t, st, gormsession.ManagerOptions{SyncInterval: time.Hour, ReadThroughRate: 5})
		c.Reset()
		// The same unknown token, again and again: one lookup.
		unknown := gormsession.NewToken()
		for range 100 {
			mustNotResolve(t, m, unknown, "it was never created")
		}
		if n := c.N(); n != 1 {
			t.Fatalf("100 resolves of one unknown token ran %d statements, want 1", n)
		}
		// A flood of random tokens: no more lookups than the rate allows.
		c.Reset()
		start := time.Now()
		for range 1000 {
			m.Resolve(context.Background(), gormsession.NewToken())
		}
		elapsed := time.Since(start).Seconds()
		if n, limit := c.N(), int64(5+5*elapsed+1); n > limit {
			t.Fatalf("1000 random tokens in %.2fs ran %d statements, want at most %d", elapsed, n, limit)
		}
		// Malformed tokens never reach the database.
		c.Reset()
		for _, bad := range []string{"", "x", "not a token at all, clearly not", string(make([]byte, 43))} {
			m.Resolve(context.Background(), bad)
		}
		if n := c.N(); n != 0 {
			t.Fatalf("malformed tokens ran %d statements", n)
		}
	})
}

func TestSyncNeedsChangeFeed(t *testing.T) {
	// A Backend without ChangeFeed cannot be synced.
	b := struct{ gormsession.Backend }{newStore(t, newSQLite(t), nil)}
	if _, err := gormsession.NewManager(context.Background(), b, gormsession.ManagerOptions{SyncInterval: time.Second}); err == nil {
		t.Fatal("NewManager with SyncInterval accepted a Backend without ChangeFeed")
	}
}

// childEnv names the environment variables that turn the test binary into a
// helper process for TestConcurrentStartupMigrates.
const childEnv = "GORMSESSION_TEST_CHILD"

// runChild runs in a helper process: open the database and create the
// Store, as an application instance does at start.
func runChild() {
	dsn, table := os.Getenv("GORMSESSION_CHILD_DSN"), os.Getenv("GORMSESSION_CHILD_TABLE")
	// Opening a new SQLite file switches it to WAL, which needs the file to
	// itself for a moment; processes opening it together retry, as an
	// application's start-up retry would.
	db, err := testdb.OpenDSN(dsn)
	for deadline := time.Now().Add(20 * time.Second); err != nil && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		db, err = testdb.OpenDSN(dsn)
	}
	if err == nil {
		_, err = gormsession.NewStore(db, gormsession.StoreOptions{TableName: table})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// TestConcurrentStartupMigrates starts 4 processes at the same moment on an
// empty database; all of them must come up.
func TestConcurrentStartupMigrates(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		dsn := tdb.DSN
		const n = 4
		cmds := make([]*exec.Cmd, n)
		outs := make([][]byte, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range cmds {
			cmds[i] = exec.Command(os.Args[0], "-test.run=^$")
			cmds[i].Env = append(os.Environ(), childEnv+"=migrate",
				"GORMSESSION_CHILD_DSN="+dsn, "GORMSESSION_CHILD_TABLE="+tdb.Table)
			wg.Go(func() {
				<-start
				outs[i], errs[i] = cmds[i].CombinedOutput()
			})
		}
		close(start)
		wg.Wait()
		for i := range cmds {
			if errs[i] != nil {
				t.Errorf("process %d: %v: %s", i, errs[i], outs[i])
			}
		}
		// And the table is usable.
		m := newManager(t, newStore(t, tdb, nil), gormsession.ManagerOptions{})
		mustResolve(t, m, create(t, m, gormsession.Attributes{UserID: "alice"}).Token)
	})
}
