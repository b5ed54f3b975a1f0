package gormsession_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"go.uber.org/goleak"

	"github.com/gormsession/gormsession"
	"github.com/gormsession/gormsession/internal/testdb"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		runChild()
	}
	if os.Getenv(journalChildEnv) != "" {
		runJournalChild()
	}
	testdb.RaiseParallel()
	goleak.VerifyTestMain(m)
}

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func create(t *testing.T, m *gormsession.Manager, p gormsession.Attributes) gormsession.Session {
	t.Helper()
	s, err := m.Create(context.Background(), p)
	if err != nil {
		t.Fatalf("Create(%+v): %v", p, err)
	}
	if s.Token == "" || s.ID != gormsession.HashToken(s.Token) {
		t.Fatalf("Create returned token %q with ID %s", s.Token, s.ID)
	}
	return s
}

func mustResolve(t *testing.T, m *gormsession.Manager, token string) gormsession.Session {
	t.Helper()
	s, ok := m.Resolve(context.Background(), token)
	if !ok {
		t.Fatalf("token does not resolve")
	}
	return s
}

func mustNotResolve(t *testing.T, m *gormsession.Manager, token, why string) {
	t.Helper()
	if _, ok := m.Resolve(context.Background(), token); ok {
		t.Fatalf("token resolves, but %s", why)
	}
}

func sameSession(t *testing.T, got, want gormsession.Session) {
	t.Helper()
	if got.ID != want.ID || got.UserID != want.UserID || got.TenantID != want.TenantID ||
		got.Device != want.Device || !bytes.Equal(got.Data, want.Data) ||
		!got.CreatedAt.Equal(want.CreatedAt) || !got.ExpiresAt.Equal(want.ExpiresAt) {
		t.Fatalf("session differs\n got: %+v\nwant: %+v", got, want)
	}
}

// TestSessionsSurviveRestart is the reason the library exists: a new process
// (new *gorm.DB, new Manager) on the same database resolves every token.
func TestSessionsSurviveRestart(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		ctx := context.Background()
		clk := testdb.NewClock(time.Now())
		opts := gormsession.ManagerOptions{Now: clk.Now}
		m1, err := gormsession.NewManager(ctx, newStore(t, tdb, nil), opts)
		if err != nil {
			t.Fatal(err)
		}
		kept := []gormsession.Session{
			create(t, m1, gormsession.Attributes{UserID: "alice", TenantID: "acme", Device: "Firefox on Linux", Data: []byte{0, 1, 2}, Lifetime: time.Hour}),
			create(t, m1, gormsession.Attributes{UserID: "alice", Device: "Safari on iOS", Lifetime: -1}),
			create(t, m1, gormsession.Attributes{UserID: "bob", TenantID: "globex"}),
		}
		revoked := create(t, m1, gormsession.Attributes{UserID: "bob"})
		short := create(t, m1, gormsession.Attributes{UserID: "carol", Lifetime: 300 * time.Millisecond})
		rotatedFrom := create(t, m1, gormsession.Attributes{UserID: "dave", Data: []byte("cart")})
		if err := m1.Revoke(ctx, revoked.ID); err != nil {
			t.Fatal(err)
		}
		rotated, err := m1.Rotate(ctx, rotatedFrom.Token)
		if err != nil {
			t.Fatal(err)
		}
		kept = append(kept, rotated)
		if err := m1.Close(); err != nil {
			t.Fatal(err)
		}

		// short expires meanwhile, by the database's clock (a Manager's
		// clock is moved to it: advancing clk alone would not do).
		time.Sleep(400 * time.Millisecond)
		m2 := newManager(t, newStore(t, tdb, nil), opts)
		for _, want := range kept {
			sameSession(t, mustResolve(t, m2, want.Token), want)
		}
		mustNotResolve(t, m2, revoked.Token, "it was revoked before the restart")
		mustNotResolve(t, m2, short.Token, "it expired")
		mustNotResolve(t, m2, rotatedFrom.Token, "it was rotated away")
		if n := resident(m2); n != len(kept) {
			t.Fatalf("restarted Manager loaded %d sessions, want %d", n, len(kept))
		}
	})
}

func TestExpiryBoundaryIsInclusive(t *testing.T) {
	// Without a change feed the Manager has no database clock to follow:
	// its own decides, to the nanosecond.
	st := ownClock{newStore(t, newSQLite(t), nil)}
	clk := testdb.NewClock(t0)
	m := newManager(t, st, gormsession.ManagerOptions{Now: clk.Now})
	s := create(t, m, gormsession.Attributes{UserID: "alice", Lifetime: time.Hour})
	never := create(t, m, gormsession.Attributes{UserID: "alice", Lifetime: -1})
	if !s.ExpiresAt.Equal(t0.Add(time.Hour)) || !never.ExpiresAt.IsZero() {
		t.Fatalf("ExpiresAt = %v and %v, want t0+1h and zero", s.ExpiresAt, never.ExpiresAt)
	}
	clk.Set(s.ExpiresAt.Add(-time.Nanosecond))
	mustResolve(t, m, s.Token)
	clk.Set(s.ExpiresAt)
	mustNotResolve(t, m, s.Token, "now == ExpiresAt is expired")
	if _, ok := m.Get(s.ID); ok {
		t.Fatal("Get finds an expired session")
	}
	clk.Add(100 * 365 * 24 * time.Hour)
	mustResolve(t, m, never.Token)

	ss := gormsession.Session{ExpiresAt: t0}
	if ss.Expired(t0.Add(-1)) || !ss.Expired(t0) || (&gormsession.Session{}).Expired(t0) {
		t.Fatal("Session.Expired boundary wrong")
	}
}

func TestDefaultLifetimeIsThirtyDays(t *testing.T) {
	clk := testdb.NewClock(t0)
	m := newManager(t, ownClock{newStore(t, newSQLite(t), nil)}, gormsession.ManagerOptions{Now: clk.Now})
	s := create(t, m, gormsession.Attributes{UserID: "alice"})
	if want := t0.Add(30 * 24 * time.Hour); !s.ExpiresAt.Equal(want) {
		t.Fatalf("ExpiresAt = %v, want %v", s.ExpiresAt, want)
	}
}

func TestRevokeAndListUser(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		ctx := context.Background()
		st := newStore(t, tdb, nil)
		clk := testdb.NewClock(time.Now())
		m := newManager(t, st, gormsession.ManagerOptions{Now: clk.Now})
		var alice []gormsession.Session
		for i := range 4 {
			alice = append(alice, create(t, m, gormsession.Attributes{UserID: "alice", Device: fmt.Sprint("device ", i)}))
			clk.Add(time.Second)
		}
		bob := create(t, m, gormsession.Attributes{UserID: "bob"})

		list := m.ListUser("alice")
		if len(list) != 4 {
			t.Fatalf("ListUser = %d sessions, want 4", len(list))
		}
		for i, s := range list {
			if s.ID != alice[i].ID || s.Token != "" {
				t.Fatalf("ListUser[%d] = %s (token %q), want %s oldest first without token", i, s.ID, s.Token, alice[i].ID)
			}
		}

		if err := m.Revoke(ctx, alice[0].ID); err != nil {
			t.Fatal(err)
		}
		mustNotResolve(t, m, alice[0].Token, "it was revoked")
		if err := m.Revoke(ctx, alice[0].ID); err != nil {
			t.Fatalf("second Revoke: %v", err)
		}

		n, err := m.RevokeOthers(ctx, "alice", alice[3].ID)
		if err != nil || n != 2 {
			t.Fatalf("RevokeOthers = %d, %v; want 2, nil", n, err)
		}
		mustNotResolve(t, m, alice[1].Token, "RevokeOthers revoked it")
		mustResolve(t, m, alice[3].Token)
		if got := m.ListUser("alice"); len(got) != 1 || got[0].ID != alice[3].ID {
			t.Fatalf("after RevokeOthers ListUser = %v", got)
		}

		n, err = m.RevokeUser(ctx, "alice")
		if err != nil || n != 1 {
			t.Fatalf("RevokeUser = %d, %v; want 1, nil", n, err)
		}
		mustNotResolve(t, m, alice[3].Token, "RevokeUser revoked it")
		if got := m.ListUser("alice"); len(got) != 0 {
			t.Fatalf("after RevokeUser ListUser = %v", got)
		}
		mustResolve(t, m, bob.Token)

		if rows := streamAll(t, st); len(rows) != 1 || rows[0].ID != bob.ID {
			t.Fatalf("rows after revocations = %v; want only bob's", rows)
		}
	})
}

func TestUpdateChangesTenantDeviceDataAndExpiryAndSurvivesRestart(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		ctx := context.Background()
		clk := testdb.NewClock(time.Now())
		m := newManager(t, newStore(t, tdb, nil), gormsession.ManagerOptions{Now: clk.Now})
		s := create(t, m, gormsession.Attributes{UserID: "alice", Data: []byte("v1")})
		clk.Add(time.Minute)
		if _, err := setTenant(m, ctx, s.ID, "acme"); err != nil {
			t.Fatal(err)
		}
		if _, err := setDevice(m, ctx, s.ID, "Edge on Windows"); err != nil {
			t.Fatal(err)
		}
		if _, err := setData(m, ctx, s.ID, []byte("v2")); err != nil {
			t.Fatal(err)
		}
		exp := clk.Now().Add(10 * time.Minute).UTC().Truncate(time.Microsecond)
		u, err := setExpiry(m, ctx, s.ID, exp)
		if err != nil {
			t.Fatal(err)
		}
		got := mustResolve(t, m, s.Token)
		want := s
		want.TenantID, want.Device, want.Data, want.ExpiresAt = "acme", "Edge on Windows", []byte("v2"), exp
		sameSession(t, got, want)
		sameSession(t, u, want)
		if !got.UpdatedAt.After(s.UpdatedAt) {
			t.Fatalf("UpdatedAt did not advance: %v", got.UpdatedAt)
		}
		// The fields that name the session cannot be changed.
		u, err = m.Update(ctx, s.ID, func(x *gormsession.Session) {
			x.UserID, x.ID, x.CreatedAt = "mallory", "other", t0
		})
		if err != nil || u.UserID != "alice" || u.ID != s.ID || !u.CreatedAt.Equal(s.CreatedAt) {
			t.Fatalf("Update changed identity fields: %+v, %v", u, err)
		}
		// And the stored row agrees after a restart.
		m2 := newManager(t, newStore(t, tdb, nil), gormsession.ManagerOptions{Now: clk.Now})
		sameSession(t, mustResolve(t, m2, s.Token), want)

		if _, err := setTenant(m, ctx, gormsession.HashToken("nope"), "x"); !errors.Is(err, gormsession.ErrNotFound) {
			t.Fatalf("SetTenant of unknown session: %v, want ErrNotFound", err)
		}
	})
}

func TestRotateKillsOldTokenAndKeepsData(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		ctx := context.Background()
		st := newStore(t, tdb, nil)
		m := newManager(t, st, gormsession.ManagerOptions{})
		s := create(t, m, gormsession.Attributes{UserID: "alice", TenantID: "acme", Device: "Firefox", Data: []byte("cart"), Lifetime: time.Hour})
		r, err := m.Rotate(ctx, s.Token)
		if err != nil {
			t.Fatal(err)
		}
		if r.Token == s.Token || r.ID == s.ID || r.ID != gormsession.HashToken(r.Token) {
			t.Fatalf("Rotate did not give a new token/ID")
		}
		mustNotResolve(t, m, s.Token, "it was rotated away")
		got := mustResolve(t, m, r.Token)
		want := s
		want.ID = r.ID
		sameSession(t, got, want)
		if _, err := m.Rotate(ctx, s.Token); !errors.Is(err, gormsession.ErrNotFound) {
			t.Fatalf("Rotate of a dead token: %v, want ErrNotFound", err)
		}
		if _, found, _ := st.Get(ctx, s.ID); found {
			t.Fatal("old row still in the database after Rotate")
		}
	})
}

// breakTable makes every statement on the Store's table fail, as a database
// outage would, and returns a function that repairs it.
func breakTable(t *testing.T, tdb testDB) (repair func()) {
	t.Helper()
	db := tdb.Open(t)
	hidden := tdb.Table + "_away"
	if err := db.Exec(fmt.Sprintf("ALTER TABLE %q RENAME TO %q", tdb.Table, hidden)).Error; err != nil {
		t.Fatalf("break table: %v", err)
	}
	return func() {
		t.Helper()
		if err := db.Exec(fmt.Sprintf("ALTER TABLE %q RENAME TO %q", hidden, tdb.Table)).Error; err != nil {
			t.Fatalf("repair table: %v", err)
		}
	}
}

func TestDatabaseDown(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		ctx := context.Background()
		db := tdb.Open(t)
		m := newManager(t, newStore(t, tdb, db), gormsession.ManagerOptions{})
		a := create(t, m, gormsession.Attributes{UserID: "alice"})
		b := create(t, m, gormsession.Attributes{UserID: "bob"})
		sqlDB, _ := db.DB()
		sqlDB.Close()

		before := resident(m)
		if s, err := m.Create(ctx, gormsession.Attributes{UserID: "carol"}); err == nil || s.Token != "" {
			t.Fatalf("Create with the database down = %+v, %v; want an error and no token", s, err)
		}
		if resident(m) != before || len(m.ListUser("carol")) != 0 {
			t.Fatal("a failed Create left a session in memory")
		}
		mustResolve(t, m, a.Token)
		if err := m.Revoke(ctx, b.ID); err == nil {
			t.Fatal("Revoke with the database down returned no error")
		}
		mustNotResolve(t, m, b.Token, "it was revoked, even if the database was down")
		if m.Stats().PendingRevocations != 1 {
			t.Fatalf("PendingRemovals = %d, want 1", m.Stats().PendingRevocations)
		}
		if _, err := setData(m, ctx, a.ID, []byte("x")); err == nil {
			t.Fatal("SetData with the database down returned no error")
		}
		if got := mustResolve(t, m, a.Token); len(got.Data) != 0 {
			t.Fatal("a failed update changed memory")
		}
	})
}

// TestFailedRevokeIsRetriedAndNeverComesBack breaks the table, revokes, mends
// the table and checks that the retried delete keeps the session dead after
// a restart.
func TestFailedRevokeIsRetriedAndNeverComesBack(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		ctx := context.Background()
		m1, err := gormsession.NewManager(ctx, newStore(t, tdb, nil), gormsession.ManagerOptions{RetryInterval: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		s := create(t, m1, gormsession.Attributes{UserID: "alice"})
		u := create(t, m1, gormsession.Attributes{UserID: "bob"})
		repair := breakTable(t, tdb)
		if err := m1.Revoke(ctx, s.ID); err == nil {
			t.Fatal("Revoke on a broken table returned no error")
		}
		if n, err := m1.RevokeUser(ctx, "bob"); err == nil || n != 1 {
			t.Fatalf("RevokeUser on a broken table = %d, %v; want 1 and an error", n, err)
		}
		mustNotResolve(t, m1, s.Token, "revoked")
		repair()
		if m1.Stats().PendingRevocations != 2 {
			t.Fatalf("PendingRemovals = %d, want 2", m1.Stats().PendingRevocations)
		}
		if err := m1.Close(); err != nil { // Close retries what is pending
			t.Fatalf("Close: %v", err)
		}
		m2 := newManager(t, newStore(t, tdb, nil), gormsession.ManagerOptions{})
		mustNotResolve(t, m2, s.Token, "its revoke was retried before the restart")
		mustNotResolve(t, m2, u.Token, "its RevokeUser was retried before the restart")
	})
}

func TestBackgroundRetryRemovesPendingRows(t *testing.T) {
	tdb := newSQLite(t)
	ctx := context.Background()
	st := newStore(t, tdb, nil)
	m := newManager(t, st, gormsession.ManagerOptions{RetryInterval: 20 * time.Millisecond})
	s := create(t, m, gormsession.Attributes{UserID: "alice"})
	repair := breakTable(t, tdb)
	if err := m.Revoke(ctx, s.ID); err == nil {
		t.Fatal("Revoke on a broken table returned no error")
	}
	repair()
	deadline := time.Now().Add(10 * time.Second)
	for m.Stats().PendingRevocations != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if _, found, err := st.Get(ctx, s.ID); found || err != nil {
		t.Fatalf("row still present after background retry (found %v, err %v)", found, err)
	}
}

func TestCleanupRemovesExpiredFromMemoryAndDatabase(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		ctx := context.Background()
		st := newStore(t, tdb, nil)
		m := newManager(t, st, gormsession.ManagerOptions{CleanupInterval: -1})
		short := create(t, m, gormsession.Attributes{UserID: "alice", Lifetime: 300 * time.Millisecond})
		long := create(t, m, gormsession.Attributes{UserID: "alice", Lifetime: time.Hour})
		time.Sleep(400 * time.Millisecond)
		n, err := m.Cleanup(ctx)
		if err != nil || n != 1 {
			t.Fatalf("Cleanup = %d, %v; want 1, nil", n, err)
		}
		if resident(m) != 1 || len(m.ListUser("alice")) != 1 {
			t.Fatalf("after Cleanup: %d in memory", resident(m))
		}
		rows := streamAll(t, st)
		if len(rows) != 1 || rows[0].ID != long.ID {
			t.Fatalf("after Cleanup %d rows, want only the long one (short %s)", len(rows), short.ID)
		}
	})
}

func TestIdleTimeoutWithCoalescedTouches(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		ctx := context.Background()
		db, c := testdb.Counted(tdb.Open(t))
		st := newStore(t, tdb, db)
		clk := testdb.NewClock(time.Now())
		// Alone (no polling), so that every statement counted is the
		// Manager's own activity write.
		opts := gormsession.ManagerOptions{Now: clk.Now, IdleTimeout: 10 * time.Minute, CleanupInterval: -1, SyncInterval: -1}
		m := newManager(t, st, opts)
		s := create(t, m, gormsession.Attributes{UserID: "alice"})
		idle := create(t, m, gormsession.Attributes{UserID: "alice"})

		c.Reset()
		for range 9 {
			clk.Add(time.Minute)
			for range 100 {
				mustResolve(t, m, s.Token)
			}
		}
		if n := c.N(); n != 0 {
			t.Fatalf("900 resolves ran %d statements, want 0", n)
		}
		clk.Add(time.Minute) // idle has not been used for 10 minutes
		mustNotResolve(t, m, idle.Token, "it was idle for the idle timeout")
		mustResolve(t, m, s.Token)

		if _, err := m.Cleanup(ctx); err != nil {
			t.Fatal(err)
		}
		// One touch batch for s, one delete for idle.
		if n := c.N(); n > 4 {
			t.Fatalf("Cleanup after 900 resolves ran %d statements, want a few", n)
		}
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		clk.Add(9 * time.Minute)
		m2 := newManager(t, newStore(t, tdb, nil), opts)
		mustResolve(t, m2, s.Token) // activity survived the restart
		mustNotResolve(t, m2, idle.Token, "it timed out before the restart")
	})
}

func TestResolveAndCreateStatementCounts(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		db, c := testdb.Counted(tdb.Open(t))
		m := newManager(t, newStore(t, tdb, db), gormsession.ManagerOptions{SyncInterval: -1})
		c.Reset()
		s := create(t, m, gormsession.Attributes{UserID: "alice"})
		if n := c.N(); n != 1 {
			t.Errorf("Create ran %d statements, want 1", n)
		}
		c.Reset()
		for range 1000 {
			mustResolve(t, m, s.Token)
			m.Resolve(context.Background(), "not-a-token")
		}
		m.ListUser("alice")
		m.Get(s.ID)
		if n := c.N(); n != 0 {
			t.Errorf("reads ran %d statements, want 0", n)
		}
	})
}

func TestCloseStopsEveryGoroutine(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	tdb := newSQLite(t)
	db := tdb.Open(t)
	st := newStore(t, tdb, db)
	m, err := gormsession.NewManager(context.Background(), st, gormsession.ManagerOptions{
		CleanupInterval: time.Millisecond, RetryInterval: time.Millisecond, IdleTimeout: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	create(t, m, gormsession.Attributes{UserID: "alice"})
	time.Sleep(20 * time.Millisecond)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := m.Create(context.Background(), gormsession.Attributes{UserID: "a"}); !errors.Is(err, gormsession.ErrClosed) {
		t.Fatalf("Create after Close: %v, want ErrClosed", err)
	}
	sqlDB, _ := db.DB()
	sqlDB.Close()
}

func TestConcurrentCreateResolveRevoke(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		ctx := context.Background()
		m := newManager(t, newStore(t, tdb, nil), gormsession.ManagerOptions{})
		const workers, each = 8, 15
		var wg sync.WaitGroup
		errs := make(chan error, workers*each)
		for w := range workers {
			wg.Go(func() {
				user := fmt.Sprint("user-", w%3)
				for i := range each {
					s, err := m.Create(ctx, gormsession.Attributes{UserID: user, Data: []byte{byte(i)}})
					if err != nil {
						errs <- err
						return
					}
					for range 20 {
						if _, ok := m.Resolve(context.Background(), s.Token); !ok {
							errs <- fmt.Errorf("fresh session does not resolve")
						}
						m.ListUser(user)
					}
					if i%2 == 0 {
						if err := m.Revoke(ctx, s.ID); err != nil {
							errs <- err
						}
						if _, ok := m.Resolve(context.Background(), s.Token); ok {
							errs <- fmt.Errorf("revoked session resolves")
						}
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		want := workers * (each / 2)
		if n := resident(m); n != want {
			t.Fatalf("%d sessions in memory, want %d", n, want)
		}
	})
}

func FuzzResolve(f *testing.F) {
	for _, seed := range []string{"", "a", gormsession.NewToken(), gormsession.NewToken() + "x",
		string(make([]byte, 43)), "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!", string(bytes.Repeat([]byte("A"), 1<<16))} {
		f.Add(seed)
	}
	m := newManager(f, newStore(f, newSQLite(f), nil), gormsession.ManagerOptions{CleanupInterval: -1})
	known, err := m.Create(context.Background(), gormsession.Attributes{UserID: "alice"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, token string) {
		s, ok := m.Resolve(context.Background(), token)
		if ok != (token == known.Token) {
			t.Fatalf("Resolve(%q) = %v", token, ok)
		}
		if ok && s.ID != known.ID {
			t.Fatalf("Resolve gave the wrong session")
		}
		if gormsession.ValidToken(token) && len(token) != 43 {
			t.Fatalf("ValidToken accepts length %d", len(token))
		}
	})
}

func TestLongFields(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		ctx := context.Background()
		m := newManager(t, newStore(t, tdb, nil), gormsession.ManagerOptions{})
		ua := strings.Repeat("Mozilla/5.0 (X11; Linux x86_64) é ", 40)
		s := create(t, m, gormsession.Attributes{UserID: "alice", Device: ua})
		if len(s.Device) > gormsession.MaxFieldLen || !strings.HasPrefix(ua, s.Device) || !utf8.ValidString(s.Device) {
			t.Fatalf("long device label stored as %d bytes %q", len(s.Device), s.Device)
		}
		long := strings.Repeat("u", gormsession.MaxFieldLen+1)
		if _, err := m.Create(ctx, gormsession.Attributes{UserID: long}); !errors.Is(err, gormsession.ErrTooLong) {
			t.Fatalf("Create with a long user ID: %v, want ErrTooLong", err)
		}
		if _, err := setTenant(m, ctx, s.ID, long); !errors.Is(err, gormsession.ErrTooLong) {
			t.Fatalf("SetTenant with a long tenant: %v, want ErrTooLong", err)
		}
		if _, err := setDevice(m, ctx, s.ID, ua); err != nil {
			t.Fatalf("SetDevice with a long label: %v", err)
		}
	})
}

// plainBackend is a Backend and nothing more: none of the optional
// interfaces (UserRevoker, ChangeFeed, Toucher, ExpiredRemover) shows.
type plainBackend struct{ gormsession.Backend }

// TestRevokeUserWithoutUserRevoker checks the fallback RevokeUser's doc
// states: with a Backend that cannot revoke a user in one statement, the
// sessions of the user that this Manager holds are revoked one by one, in
// memory and in the Backend, the kept one and other users' stay, and a
// session another instance created after this one loaded is not reached.
func TestRevokeUserWithoutUserRevoker(t *testing.T) {
	ctx := context.Background()
	st := newStore(t, newSQLite(t), nil)
	opts := gormsession.ManagerOptions{SyncInterval: -1, CleanupInterval: -1, Logger: discardLogger()}
	m, err := gormsession.NewManager(ctx, plainBackend{st}, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = m.Close() }()
	other, err := gormsession.NewManager(ctx, plainBackend{st}, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = other.Close() }()

	a1 := create(t, m, gormsession.Attributes{UserID: "alice"})
	a2 := create(t, m, gormsession.Attributes{UserID: "alice"})
	a3 := create(t, m, gormsession.Attributes{UserID: "alice"})
	bob := create(t, m, gormsession.Attributes{UserID: "bob"})
	elsewhere := create(t, other, gormsession.Attributes{UserID: "alice"})

	n, err := m.RevokeOthers(ctx, "alice", a1.ID)
	if err != nil || n != 2 {
		t.Fatalf("RevokeOthers = %d, %v; want 2, nil", n, err)
	}
	mustResolve(t, m, a1.Token)
	for _, s := range []gormsession.Session{a2, a3} {
		mustNotResolve(t, m, s.Token, "RevokeOthers revoked it")
		if _, found, err := st.Get(ctx, s.ID); err != nil || found {
			t.Fatalf("the Backend still has a revoked session: found=%v err=%v", found, err)
		}
	}
	if n, err = m.RevokeUser(ctx, "alice"); err != nil || n != 1 {
		t.Fatalf("RevokeUser = %d, %v; want 1, nil", n, err)
	}
	mustNotResolve(t, m, a1.Token, "RevokeUser revoked it")
	mustResolve(t, m, bob.Token)
	// Not reached, as the doc says: this Manager never saw it.
	if _, found, err := st.Get(ctx, elsewhere.ID); err != nil || !found {
		t.Fatalf("the session created elsewhere: found=%v err=%v; the fallback cannot know it", found, err)
	}
}

// TestUpdateOfAnEvictedAnonymousSession checks that Update reads an
// anonymous session memory no longer holds from the Backend, as its doc
// says, rather than reporting ErrNotFound.
func TestUpdateOfAnEvictedAnonymousSession(t *testing.T) {
	ctx := context.Background()
	st := newStore(t, newSQLite(t), nil)
	m, err := gormsession.NewManager(ctx, st, gormsession.ManagerOptions{MaxAnonymous: 1, CleanupInterval: -1, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = m.Close() }()
	a := create(t, m, gormsession.Attributes{})
	if _, err := m.Update(ctx, a.ID, func(s *gormsession.Session) { s.Data = []byte("first") }); err != nil {
		t.Fatal(err)
	}
	create(t, m, gormsession.Attributes{}) // evicts a
	if m.Stats().AnonymousEvictions == 0 {
		t.Fatal("nothing was evicted")
	}
	s, err := m.Update(ctx, a.ID, func(s *gormsession.Session) { s.Data = append(s.Data, " second"...) })
	if err != nil {
		t.Fatalf("Update of an evicted anonymous session: %v", err)
	}
	if string(s.Data) != "first second" {
		t.Fatalf("Data = %q, want the stored data with the change", s.Data)
	}
	if got, ok := m.ResolveAnonymous(ctx, a.Token); !ok || string(got.Data) != "first second" {
		t.Fatalf("ResolveAnonymous = %q, %v", got.Data, ok)
	}
}
