package gormsession_test

// Regression tests for the consistency model: each reproduces one
// interleaving of writers, instances or faults that once broke it.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gormsession/gormsession"
	"github.com/gormsession/gormsession/internal/testdb"
)

// appendMark returns an Update function that appends "|mark" to the data.
func appendMark(mark string) func(*gormsession.Session) {
	return func(s *gormsession.Session) {
		s.Data = append(slices.Clone(s.Data), "|"+mark...)
	}
}

// liveIDs returns the IDs of the live rows of userID in st.
func liveIDs(t *testing.T, st gormsession.Backend, userID string) []string {
	t.Helper()
	all := streamAll(t, st)
	var ids []string
	for _, s := range all {
		if s.UserID == userID {
			ids = append(ids, s.ID)
		}
	}
	slices.Sort(ids)
	return ids
}

// listedIDs returns the IDs ListUser gives for userID on m.
func listedIDs(m *gormsession.Manager, userID string) []string {
	var ids []string
	for _, s := range m.ListUser(userID) {
		ids = append(ids, s.ID)
	}
	slices.Sort(ids)
	return ids
}

// TestConcurrentUpdatesLoseNothing: A writes the row, B writes the row, B
// updates memory, then A does. Memory must end as the database says, and
// both changes must be in it.
func TestConcurrentUpdatesLoseNothing(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		ctx := context.Background()
		st := newStore(t, tdb, nil)
		f := newFaulty(st)
		m := newManager(t, f, gormsession.ManagerOptions{})
		s := create(t, m, gormsession.Attributes{UserID: "alice", Data: []byte("start")})

		g := f.holdAfter("Update")
		errA := make(chan error, 1)
		go func() {
			_, err := m.Update(ctx, s.ID, appendMark("A"))
			errA <- err
		}()
		<-g.reached // A's write is in the database; memory not yet updated
		if _, err := m.Update(ctx, s.ID, appendMark("B")); err != nil {
			t.Fatalf("Update B: %v", err)
		}
		close(g.release)
		if err := <-errA; err != nil {
			t.Fatalf("Update A: %v", err)
		}
		mem, _ := m.Get(s.ID)
		row, _, err := st.Get(ctx, s.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(mem.Data, row.Data) || mem.Version != row.Version {
			t.Fatalf("memory says %q (version %d), the database %q (version %d)", mem.Data, mem.Version, row.Data, row.Version)
		}
		for _, mark := range []string{"|A", "|B"} {
			if !bytes.Contains(row.Data, []byte(mark)) {
				t.Fatalf("data %q lost the update %s", row.Data, mark)
			}
		}
		restarted := newManager(t, newStore(t, tdb, nil), gormsession.ManagerOptions{})
		if got := mustResolve(t, restarted, s.Token); !bytes.Equal(got.Data, row.Data) {
			t.Fatalf("after a restart the data is %q, before it was %q", got.Data, row.Data)
		}
	})
}

// TestRotateOnALaggingInstanceCannotResurrect: the user is signed out
// everywhere on A; B, not yet synced, is asked to rotate the old token.
func TestRotateOnALaggingInstanceCannotResurrect(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		ctx := context.Background()
		a, b := twoInstances(t, tdb, gormsession.ManagerOptions{SyncInterval: time.Hour})
		s := create(t, a, gormsession.Attributes{UserID: "alice"})
		mustResolve(t, b, s.Token) // B has it in memory now
		if n, err := a.RevokeUser(ctx, "alice"); err != nil || n != 1 {
			t.Fatalf("RevokeUser = %d, %v", n, err)
		}
		if r, err := b.Rotate(ctx, s.Token); !errors.Is(err, gormsession.ErrNotFound) {
			t.Fatalf("B rotated a token revoked on A: %+v, %v; want ErrNotFound", r, err)
		}
		mustNotResolve(t, b, s.Token, "the failed rotation told B it is revoked")
		if ids := liveIDs(t, newStore(t, tdb, nil), "alice"); len(ids) != 0 {
			t.Fatalf("the database has %d live sessions of alice after RevokeUser, want 0", len(ids))
		}
		if err := a.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if n := len(a.ListUser("alice")); n != 0 {
			t.Fatalf("A lists %d sessions of alice after syncing, want 0", n)
		}
	})
}

// TestConcurrentRotationsOnTwoInstancesYieldOneSuccessor rotates one token
// on two instances at once, many times over.
func TestConcurrentRotationsOnTwoInstancesYieldOneSuccessor(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		ctx := context.Background()
		a, b := twoInstances(t, tdb, gormsession.ManagerOptions{SyncInterval: time.Hour})
		st := newStore(t, tdb, nil)
		for round := range 20 {
			user := fmt.Sprintf("user-%d", round)
			s := create(t, a, gormsession.Attributes{UserID: user})
			mustResolve(t, b, s.Token)
			var (
				wg    sync.WaitGroup
				mu    sync.Mutex
				succs []gormsession.Session
			)
			for _, m := range []*gormsession.Manager{a, b} {
				wg.Go(func() {
					r, err := m.Rotate(ctx, s.Token)
					if err != nil {
						return
					}
					mu.Lock()
					succs = append(succs, r)
					mu.Unlock()
				})
			}
			wg.Wait()
			if len(succs) != 1 {
				t.Fatalf("round %d: two instances rotating one token gave %d successors, want 1", round, len(succs))
			}
			if ids := liveIDs(t, st, user); len(ids) != 1 || ids[0] != succs[0].ID {
				t.Fatalf("round %d: live rows %v, want only the successor %s", round, ids, succs[0].ID)
			}
			for _, m := range []*gormsession.Manager{a, b} {
				if err := m.Sync(ctx); err != nil {
					t.Fatal(err)
				}
				mustNotResolve(t, m, s.Token, "it was rotated")
				mustResolve(t, m, succs[0].Token)
			}
		}
	})
}

// TestRevokeUserRacingCreate revokes a user while one of their sessions is
// being created: the session ends either live in the database and in
// memory, or in neither.
func TestRevokeUserRacingCreate(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		ctx := context.Background()
		st := newStore(t, tdb, nil)
		f := newFaulty(st)
		m := newManager(t, f, gormsession.ManagerOptions{})

		// The interleaving that broke it: the row is written, RevokeUser
		// runs to the end, then Create goes on.
		g := f.holdAfter("Insert")
		done := async(func() (gormsession.Session, error) { return m.Create(ctx, gormsession.Attributes{UserID: "alice"}) })
		<-g.reached
		if _, err := m.RevokeUser(ctx, "alice"); err != nil {
			t.Fatal(err)
		}
		close(g.release)
		r := <-done
		if !errors.Is(r.err, gormsession.ErrNotFound) {
			t.Fatalf("Create whose row RevokeUser revoked = %v; want ErrNotFound", r.err)
		}
		if ids := listedIDs(m, "alice"); len(ids) != 0 {
			t.Fatalf("memory lists %d sessions the database revoked", len(ids))
		}

		// And under free-running concurrency.
		for round := range 100 {
			user := fmt.Sprintf("racer-%d", round)
			var wg sync.WaitGroup
			wg.Go(func() { _, _ = m.Create(ctx, gormsession.Attributes{UserID: user}) })
			wg.Go(func() { _, _ = m.Create(ctx, gormsession.Attributes{UserID: user}) })
			wg.Go(func() { _, _ = m.RevokeUser(ctx, user) })
			wg.Wait()
			if mem, db := listedIDs(m, user), liveIDs(t, st, user); !slices.Equal(mem, db) {
				t.Fatalf("round %d: memory lists %v, the database has %v live", round, mem, db)
			}
		}
	})
}

// TestChangeFeedAppliesByVersionNotClock: B's clock runs ahead and B has
// recorded activity on the session more recently than A changed it; B
// must still apply A's change.
func TestChangeFeedAppliesByVersionNotClock(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		ctx := context.Background()
		a := newManager(t, newStore(t, tdb, nil), gormsession.ManagerOptions{SyncInterval: time.Hour})
		ahead := func() time.Time { return time.Now().Add(time.Second) }
		b := newManager(t, newStore(t, tdb, nil), gormsession.ManagerOptions{
			SyncInterval: time.Hour, Now: ahead, IdleTimeout: time.Hour, TouchInterval: time.Nanosecond,
		})
		s := create(t, a, gormsession.Attributes{UserID: "alice", Data: []byte("v1")})
		time.Sleep(2 * time.Millisecond)
		mustResolve(t, b, s.Token) // B records activity, stamped by its clock
		if _, err := setData(a, ctx, s.ID, []byte("v2")); err != nil {
			t.Fatal(err)
		}
		if err := b.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if got := mustResolve(t, b, s.Token); string(got.Data) != "v2" {
			t.Fatalf("B kept %q after syncing A's change to v2", got.Data)
		}
	})
}

// TestUpdateNeverReinsertsADeletedRow: cleanup elsewhere deleted the row of
// a session this instance still holds; an update must not write it back.
func TestUpdateNeverReinsertsADeletedRow(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		ctx := context.Background()
		st := newStore(t, tdb, nil)
		m := newManager(t, st, gormsession.ManagerOptions{})
		s := create(t, m, gormsession.Attributes{UserID: "alice", Lifetime: time.Hour})
		// Cleanup elsewhere deletes its row.
		if err := tdb.Open(t).Exec("DELETE FROM "+tdb.Table+" WHERE id = ?", s.ID).Error; err != nil {
			t.Fatal(err)
		}
		if _, err := setData(m, ctx, s.ID, []byte("late")); !errors.Is(err, gormsession.ErrNotFound) {
			t.Fatalf("Update of a deleted session = %v, want ErrNotFound", err)
		}
		if _, found, err := st.Get(ctx, s.ID); found || err != nil {
			t.Fatalf("the update wrote the deleted session back (found %v, err %v)", found, err)
		}
		mustNotResolve(t, m, s.Token, "its row is gone")
	})
}

// TestRevocationDuringOutageSurvivesRestart revokes while the database is
// down, closes, and starts a new process once it is back.
func TestRevocationDuringOutageSurvivesRestart(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		ctx := context.Background()
		journal := filepath.Join(t.TempDir(), "revocations.journal")
		opts := gormsession.ManagerOptions{Journal: journal, RetryInterval: time.Hour}
		m1, err := gormsession.NewManager(ctx, newStore(t, tdb, nil), opts)
		if err != nil {
			t.Fatal(err)
		}
		s := create(t, m1, gormsession.Attributes{UserID: "alice"})
		kept := create(t, m1, gormsession.Attributes{UserID: "alice"})
		bob := create(t, m1, gormsession.Attributes{UserID: "bob"})
		repair := breakTable(t, tdb)
		if err := m1.Revoke(ctx, s.ID); !errors.Is(err, gormsession.ErrNotPersisted) {
			t.Fatalf("Revoke with the database down = %v, want ErrNotPersisted", err)
		}
		if n, err := m1.RevokeUser(ctx, "bob"); !errors.Is(err, gormsession.ErrNotPersisted) || n != 1 {
			t.Fatalf("RevokeUser with the database down = %d, %v; want 1, ErrNotPersisted", n, err)
		}
		mustNotResolve(t, m1, s.Token, "it was revoked")
		mustNotResolve(t, m1, bob.Token, "it was revoked")
		if err := m1.Close(); !errors.Is(err, gormsession.ErrNotPersisted) {
			t.Fatalf("Close with revocations unwritten = %v, want ErrNotPersisted", err)
		}
		repair()

		m2 := newManager(t, newStore(t, tdb, nil), opts)
		mustNotResolve(t, m2, s.Token, "its revocation was journaled")
		mustNotResolve(t, m2, bob.Token, "his revocation was journaled")
		mustResolve(t, m2, kept.Token)
		st := newStore(t, tdb, nil)
		for _, id := range []string{s.ID, bob.ID} {
			if _, found, err := st.Get(ctx, id); found || err != nil {
				t.Fatalf("the replayed revocation is not in the database (found %v, err %v)", found, err)
			}
		}
		if n := m2.Stats().PendingRevocations; n != 0 {
			t.Fatalf("%d revocations still pending after replay", n)
		}
		if err := m2.Close(); err != nil {
			t.Fatal(err)
		}
		if recs, err := gormsession.JournalState(journal); len(recs) != 0 || err != nil {
			t.Fatalf("journal after replay: %q, %v; want no records", recs, err)
		}
	})
}

// TestCloseReportsUnpersistedRevocations: without a journal, Close says
// that a revocation is lost rather than dropping it silently.
func TestCloseReportsUnpersistedRevocations(t *testing.T) {
	tdb := newSQLite(t)
	ctx := context.Background()
	m, err := gormsession.NewManager(ctx, newStore(t, tdb, nil), gormsession.ManagerOptions{RetryInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	s := create(t, m, gormsession.Attributes{UserID: "alice"})
	repair := breakTable(t, tdb)
	defer repair()
	if err := m.Revoke(ctx, s.ID); !errors.Is(err, gormsession.ErrNotPersisted) {
		t.Fatalf("Revoke = %v, want ErrNotPersisted", err)
	}
	if err := m.Close(); !errors.Is(err, gormsession.ErrNotPersisted) {
		t.Fatalf("Close = %v, want ErrNotPersisted", err)
	}
}

// TestRevokedMarkerOutlivesItsQueuedWrite: a revocation whose write keeps
// failing must keep refusing the session, however long it takes, even
// when the rest of the database answers (a read-through finds the row
// still live).
func TestRevokedMarkerOutlivesItsQueuedWrite(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		ctx := context.Background()
		clock := testdb.NewClock(time.Now())
		f := newFaulty(newStore(t, tdb, nil))
		m := newManager(t, f, gormsession.ManagerOptions{
			SyncInterval: time.Hour, Now: clock.Now, RetryInterval: time.Hour, CleanupInterval: -1,
		})
		s := create(t, m, gormsession.Attributes{UserID: "alice"})
		f.fail("Revoke", true)
		if err := m.Revoke(ctx, s.ID); !errors.Is(err, gormsession.ErrNotPersisted) {
			t.Fatalf("Revoke = %v, want ErrNotPersisted", err)
		}
		clock.Add(time.Hour) // far beyond the time a revoked ID is remembered
		if _, err := m.Cleanup(ctx); err == nil {
			t.Fatal("Cleanup retried the failing write without an error")
		}
		mustNotResolve(t, m, s.Token, "its revocation is still queued")
		f.fail("Revoke", false)
		if _, err := m.Cleanup(ctx); err != nil {
			t.Fatal(err)
		}
		if n := m.Stats().PendingRevocations; n != 0 {
			t.Fatalf("PendingRemovals = %d after the database came back", n)
		}
		mustNotResolve(t, m, s.Token, "it was revoked")
	})
}

// TestPollDuringCreateListsTheSessionOnce: a poll of the change feed that
// runs between Create's database write and its memory insert.
func TestPollDuringCreateListsTheSessionOnce(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		ctx := context.Background()
		f := newFaulty(newStore(t, tdb, nil))
		m := newManager(t, f, gormsession.ManagerOptions{SyncInterval: time.Hour})
		g := f.holdAfter("Insert")
		done := make(chan gormsession.Session, 1)
		go func() {
			s, err := m.Create(ctx, gormsession.Attributes{UserID: "alice"})
			if err != nil {
				t.Error(err)
			}
			done <- s
		}()
		<-g.reached
		if err := m.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		close(g.release)
		s := <-done
		if n := len(m.ListUser("alice")); n != 1 {
			t.Fatalf("ListUser lists %d sessions, want 1", n)
		}
		if err := m.Revoke(ctx, s.ID); err != nil {
			t.Fatal(err)
		}
		if n := m.IndexedIDs("alice"); n != 0 {
			t.Fatalf("the user index keeps %d IDs after the revocation", n)
		}
	})
}

// TestSyncIsSafeAlongsideTheSyncLoop polls by hand from several goroutines
// while the Manager's own loop polls and sessions are created (run with
// -race).
func TestSyncIsSafeAlongsideTheSyncLoop(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		ctx := context.Background()
		a, b := twoInstances(t, tdb, gormsession.ManagerOptions{SyncInterval: time.Millisecond})
		var wg sync.WaitGroup
		for range 3 {
			wg.Go(func() {
				for range 20 {
					if err := b.Sync(ctx); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		var created []gormsession.Session
		for i := range 20 {
			created = append(created, create(t, a, gormsession.Attributes{UserID: fmt.Sprintf("u%d", i%3)}))
		}
		wg.Wait()
		if err := b.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		for _, s := range created {
			mustResolve(t, b, s.Token)
		}
		for i := range 3 {
			user := fmt.Sprintf("u%d", i)
			if n, idx := len(b.ListUser(user)), b.IndexedIDs(user); n != idx || n != len(liveIDs(t, newStore(t, tdb, nil), user)) {
				t.Fatalf("B lists %d sessions of %s and indexes %d", n, user, idx)
			}
		}
	})
}

// TestUpdateThatChangesNothingWritesNothing: an update to the same tenant,
// device, data and expiry runs no statement and keeps the version.
func TestUpdateThatChangesNothingWritesNothing(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		ctx := context.Background()
		db, c := testdb.Counted(tdb.Open(t))
		m := newManager(t, newStore(t, tdb, db), gormsession.ManagerOptions{SyncInterval: -1})
		s := create(t, m, gormsession.Attributes{UserID: "alice", Data: []byte("v1")})
		c.Reset()
		u, err := m.Update(ctx, s.ID, func(x *gormsession.Session) { x.Data = []byte("v1") })
		if err != nil || u.Version != s.Version || string(u.Data) != "v1" {
			t.Fatalf("no-op Update = %+v, %v", u, err)
		}
		if n := c.N(); n != 0 {
			t.Fatalf("an Update that changes nothing ran %d statements, want 0", n)
		}
		if u, err = setData(m, ctx, s.ID, []byte("v2")); err != nil || u.Version != s.Version+1 || c.N() != 1 {
			t.Fatalf("a real change: %+v, %v after %d statements; want the next version in 1", u, err, c.N())
		}
	})
}

// TestQueuedRevokeOthersKeepsTheRotatedSession: "sign out my other
// devices" refused by the database is queued; the device it keeps is then
// rotated on this instance, and the queued revocation lands afterwards. It
// must keep the rotated device: its successor has a new ID but the old
// creation time, so a revocation still keyed to the old ID would end it.
// The same holds when the queue waits in the journal for the next process.
func TestQueuedRevokeOthersKeepsTheRotatedSession(t *testing.T) {
	for _, restart := range []bool{false, true} {
		name := "retried"
		if restart {
			name = "replayed from the journal"
		}
		t.Run(name, func(t *testing.T) {
			eachDB(t, func(t *testing.T, tdb testDB) {
				ctx := context.Background()
				st := newStore(t, tdb, nil)
				f := newFaulty(st)
				opts := gormsession.ManagerOptions{
					SyncInterval: -1, RetryInterval: time.Hour, CleanupInterval: -1,
					Journal: filepath.Join(t.TempDir(), "journal"),
				}
				m := newManager(t, f, opts)
				kept := create(t, m, gormsession.Attributes{UserID: "alice"})
				other := create(t, m, gormsession.Attributes{UserID: "alice"})
				f.fail("RevokeUser", true)
				if _, err := m.RevokeOthers(ctx, "alice", kept.ID); !errors.Is(err, gormsession.ErrNotPersisted) {
					t.Fatalf("RevokeOthers = %v, want ErrNotPersisted", err)
				}
				rotated, err := m.Rotate(ctx, kept.Token)
				if err != nil {
					t.Fatal(err)
				}
				if restart {
					if err := m.Close(); !errors.Is(err, gormsession.ErrNotPersisted) {
						t.Fatalf("Close = %v, want ErrNotPersisted", err)
					}
					f.fail("RevokeUser", false)
					m = newManager(t, f, opts)
				} else {
					f.fail("RevokeUser", false)
					if _, err := m.Cleanup(ctx); err != nil {
						t.Fatal(err)
					}
				}
				if n := m.Stats().PendingRevocations; n != 0 {
					t.Fatalf("%d revocations still queued", n)
				}
				if _, ok := m.Resolve(ctx, rotated.Token); !ok {
					t.Fatal("the kept device, rotated while its sign-out of the others was queued, was signed out")
				}
				if live, found, err := st.Get(ctx, rotated.ID); err != nil || !found {
					t.Fatalf("the kept device's row: found %v, err %v", found, live)
				}
				mustNotResolve(t, m, other.Token, "it was signed out")
				if _, found, _ := st.Get(ctx, other.ID); found {
					t.Fatal("the other device's row is live")
				}
			})
		})
	}
}

// TestCreateRacingARefusedSignOutEverywhereIsRefused: a session of the
// user is being created (its row written, memory not yet) when the
// user's RevokeUser is refused by the database and queued. The queued
// revocation covers the new session, so Create must not publish it: it
// reports ErrNotFound, the token never resolves here, and the retry ends
// the row.
func TestCreateRacingARefusedSignOutEverywhereIsRefused(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		ctx := context.Background()
		st := newStore(t, tdb, nil)
		f := newFaulty(st)
		m := newManager(t, f, gormsession.ManagerOptions{SyncInterval: -1, RetryInterval: time.Hour, CleanupInterval: -1, Logger: discardLogger()})
		g := f.holdAfter("Insert")
		done := async(func() (gormsession.Session, error) { return m.Create(ctx, gormsession.Attributes{UserID: "alice"}) })
		<-g.reached // the row is in the database; memory not yet
		f.fail("RevokeUser", true)
		if _, err := m.RevokeUser(ctx, "alice"); !errors.Is(err, gormsession.ErrNotPersisted) {
			t.Fatalf("RevokeUser with the database refusing it = %v, want ErrNotPersisted", err)
		}
		close(g.release)
		r := <-done
		if !errors.Is(r.err, gormsession.ErrNotFound) {
			t.Fatalf("Create covered by a queued RevokeUser = %v; want ErrNotFound", r.err)
		}
		if ids := listedIDs(m, "alice"); len(ids) != 0 {
			t.Fatalf("memory lists %v after RevokeUser returned ErrNotPersisted", ids)
		}
		f.fail("RevokeUser", false)
		if _, err := m.Cleanup(ctx); err != nil {
			t.Fatal(err)
		}
		if ids := liveIDs(t, st, "alice"); len(ids) != 0 {
			t.Fatalf("the database has %v live after the retry, want none", ids)
		}
		if ids := listedIDs(m, "alice"); len(ids) != 0 {
			t.Fatalf("memory lists %v after the retry landed", ids)
		}
	})
}

// TestUpdateRacingARefusedSignOutEverywhereIsRefused: a session's Update
// is being written when its user's RevokeUser is refused by the database
// and queued. Update must report the session gone and leave it out of
// memory, where the refused sign-out took it, until the retry ends the
// row.
func TestUpdateRacingARefusedSignOutEverywhereIsRefused(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		ctx := context.Background()
		st := newStore(t, tdb, nil)
		f := newFaulty(st)
		m := newManager(t, f, gormsession.ManagerOptions{SyncInterval: -1, RetryInterval: time.Hour, CleanupInterval: -1, Logger: discardLogger()})
		s := create(t, m, gormsession.Attributes{UserID: "alice"})
		g := f.holdAfter("Update")
		done := make(chan error, 1)
		go func() {
			_, err := setData(m, ctx, s.ID, []byte("late"))
			done <- err
		}()
		<-g.reached // the change is in the database; memory not yet
		f.fail("RevokeUser", true)
		if n, err := m.RevokeUser(ctx, "alice"); !errors.Is(err, gormsession.ErrNotPersisted) || n != 1 {
			t.Fatalf("RevokeUser with the database refusing it = %d, %v; want 1, ErrNotPersisted", n, err)
		}
		close(g.release)
		if err := <-done; !errors.Is(err, gormsession.ErrNotFound) {
			t.Fatalf("Update of a session a queued RevokeUser covers = %v, want ErrNotFound", err)
		}
		mustNotResolve(t, m, s.Token, "RevokeUser on this instance returned ErrNotPersisted")
		f.fail("RevokeUser", false)
		if _, err := m.Cleanup(ctx); err != nil {
			t.Fatal(err)
		}
		if ids := liveIDs(t, st, "alice"); len(ids) != 0 {
			t.Fatalf("the database has %v live after the retry, want none", ids)
		}
		mustNotResolve(t, m, s.Token, "the retry of its user's sign-out landed")
	})
}

// TestCreateAfterASignOutEverywhereLandsIsLive: a session of the user is
// created while the user's RevokeUser is under way, and its row is
// written after the RevokeUser statement: the database keeps it live.
// Create must wait for RevokeUser's outcome rather than guess, and so
// return the session, live in memory as in the database.
func TestCreateAfterASignOutEverywhereLandsIsLive(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		ctx := context.Background()
		st := newStore(t, tdb, nil)
		f := newFaulty(st)
		m := newManager(t, f, gormsession.ManagerOptions{SyncInterval: -1, RetryInterval: time.Hour, CleanupInterval: -1, Logger: discardLogger()})
		insert := f.holdBefore("Insert")
		created := async(func() (gormsession.Session, error) { return m.Create(ctx, gormsession.Attributes{UserID: "alice"}) })
		<-insert.reached // the session is stamped, its row not yet written
		reply := f.holdAfter("RevokeUser")
		revoked := make(chan error, 1)
		go func() {
			_, err := m.RevokeUser(ctx, "alice")
			revoked <- err
		}()
		<-reply.reached // the statement has run; its reply is not back
		close(insert.release)
		// Create waits for RevokeUser's reply; were it not held back, it
		// would end within the time allowed here.
		select {
		case r := <-created:
			created <- r
		case <-time.After(200 * time.Millisecond):
		}
		close(reply.release)
		if err := <-revoked; err != nil {
			t.Fatalf("RevokeUser: %v", err)
		}
		r := <-created
		if r.err != nil {
			t.Fatalf("Create whose row the database keeps live = %v, want the session", r.err)
		}
		if ids := liveIDs(t, st, "alice"); !slices.Equal(ids, []string{r.s.ID}) {
			t.Fatalf("the database has %v live, want the new session", ids)
		}
		mustResolve(t, m, r.s.Token)
	})
}

// TestPollDuringCreateKeepsALaterVersion: while A's Create is between its
// database write and its memory insert, B reads the new session from the
// feed and changes it, and A polls that change. A must end with B's
// version: the feed has moved past it and will not show it again.
func TestPollDuringCreateKeepsALaterVersion(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		ctx := context.Background()
		opts := gormsession.ManagerOptions{SyncInterval: time.Hour, Logger: discardLogger()}
		f := newFaulty(newStore(t, tdb, nil))
		a := newManager(t, f, opts)
		b := newManager(t, newStore(t, tdb, nil), opts)
		g := f.holdAfter("Insert")
		created := make(chan gormsession.Session, 1)
		go func() {
			s, err := a.Create(ctx, gormsession.Attributes{UserID: "alice", Data: []byte("v1")})
			if err != nil {
				t.Error(err)
			}
			created <- s
		}()
		<-g.reached // the row is in the database; A's memory not yet
		if err := b.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		listed := b.ListUser("alice")
		if len(listed) != 1 {
			t.Fatalf("B lists %d sessions of alice, want the one being created", len(listed))
		}
		if _, err := setData(b, ctx, listed[0].ID, []byte("v2")); err != nil {
			t.Fatal(err)
		}
		if err := a.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		close(g.release)
		s := <-created
		if got := mustResolve(t, a, s.Token); string(got.Data) != "v2" {
			t.Fatalf("A holds %q (version %d) after polling B's change to v2", got.Data, got.Version)
		}
	})
}
