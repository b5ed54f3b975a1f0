package gormsession_test

// Reproducers for the revocation journal and the claims that decide what
// memory may hold: each is an ordinary failure (a crash, an outage, a
// second process, bad input, a race) that once lost or corrupted a
// revocation, or let a session back in.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gormsession/gormsession"
	"github.com/gormsession/gormsession/internal/testdb"
)

// journalOpts are the options of a Manager that journals and retries only
// when told to.
func journalOpts(t *testing.T) gormsession.ManagerOptions {
	return gormsession.ManagerOptions{
		Journal:       filepath.Join(t.TempDir(), "revocations.journal"),
		SyncInterval:  -1,
		RetryInterval: time.Hour, CleanupInterval: -1,
		Logger: discardLogger(),
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tornWrite returns the file a crash leaves when it cuts the write that
// turned before into after once k of the bytes that differ are on disk.
// The bytes land in the order they are written: for a bbolt file, as
// commitOrder says; for a file written only at its end, in file order.
func tornWrite(before, after []byte, k int) []byte {
	out := make([]byte, len(after))
	copy(out, before)
	order := diffOrder(before, after)
	if len(after) >= 2*4096 {
		order = commitOrder(before, after)
	}
	for _, off := range order {
		if k == 0 {
			break
		}
		out[off] = after[off]
		k--
	}
	return out
}

// diffOrder returns the offsets where after differs from before (beyond
// before's end: every offset), in the order tornWrite applies them.
func diffOrder(before, after []byte) []int {
	const metaRegion = 2 * 4096
	var data, meta []int
	for off := range after {
		if off < len(before) && before[off] == after[off] {
			continue
		}
		if off >= metaRegion {
			data = append(data, off)
		} else {
			meta = append(meta, off)
		}
	}
	return append(data, meta...)
}

// TestJournalTornWriteLosesNothing: a crash in the middle of journaling one
// revocation must neither lose those acknowledged before nor swallow the
// next one.
func TestJournalTornWriteLosesNothing(t *testing.T) {
	tdb := newSQLite(t)
	ctx := context.Background()
	f := newFaulty(newStore(t, tdb, nil))
	opts := journalOpts(t)
	m := newManager(t, f, opts)
	a := create(t, m, gormsession.Attributes{UserID: "alice"})
	b := create(t, m, gormsession.Attributes{UserID: "alice"})
	c := create(t, m, gormsession.Attributes{UserID: "alice"})
	f.fail("Revoke", true)
	if err := m.Revoke(ctx, a.ID); !errors.Is(err, gormsession.ErrNotPersisted) {
		t.Fatalf("Revoke = %v, want ErrNotPersisted", err)
	}
	before := readFile(t, opts.Journal)
	if err := m.Revoke(ctx, b.ID); !errors.Is(err, gormsession.ErrNotPersisted) {
		t.Fatalf("Revoke = %v, want ErrNotPersisted", err)
	}
	after := readFile(t, opts.Journal)
	_ = m.Close()
	n := len(diffOrder(before, after))
	for _, k := range []int{1, n / 3, n / 2, n - 1} {
		t.Run(fmt.Sprintf("cut after %d of %d bytes", k, n), func(t *testing.T) {
			opts := opts
			opts.Journal = filepath.Join(t.TempDir(), "torn.journal")
			if err := os.WriteFile(opts.Journal, tornWrite(before, after, k), 0o600); err != nil {
				t.Fatal(err)
			}
			m2, err := gormsession.NewManager(ctx, f, opts)
			if err != nil {
				t.Fatalf("NewManager after a crash mid-write: %v", err)
			}
			mustNotResolve(t, m2, a.Token, "its revocation was journaled before the crash")
			if err := m2.Revoke(ctx, c.ID); !errors.Is(err, gormsession.ErrNotPersisted) {
				t.Fatalf("Revoke = %v, want ErrNotPersisted", err)
			}
			_ = m2.Close()
			m3 := newManager(t, f, opts)
			mustNotResolve(t, m3, a.Token, "its revocation was journaled before the crash")
			mustNotResolve(t, m3, c.Token, "its revocation was journaled after the restart")
		})
	}
}

// TestJournalDoesNotReplayLandedRevocations: a RevokeOthers that landed
// while another revocation stayed stuck must not be replayed at the next
// start, where it would sign out the kept device rotated since.
func TestJournalDoesNotReplayLandedRevocations(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		ctx := context.Background()
		st := newStore(t, tdb, nil)
		f := newFaulty(st)
		opts := journalOpts(t)
		m := newManager(t, f, opts)
		kept := create(t, m, gormsession.Attributes{UserID: "alice"})
		other := create(t, m, gormsession.Attributes{UserID: "alice"})
		stuck := create(t, m, gormsession.Attributes{UserID: "bob"})
		f.fail("RevokeUser", true)
		f.fail("Revoke", true)
		if _, err := m.RevokeOthers(ctx, "alice", kept.ID); !errors.Is(err, gormsession.ErrNotPersisted) {
			t.Fatalf("RevokeOthers = %v, want ErrNotPersisted", err)
		}
		if err := m.Revoke(ctx, stuck.ID); !errors.Is(err, gormsession.ErrNotPersisted) {
			t.Fatalf("Revoke = %v, want ErrNotPersisted", err)
		}
		f.fail("RevokeUser", false)
		_, _ = m.Cleanup(ctx) // RevokeOthers lands; the Revoke stays stuck
		if n := m.Stats().PendingRevocations; n != 1 {
			t.Fatalf("%d revocations pending, want 1", n)
		}
		rotated, err := m.Rotate(ctx, kept.Token)
		if err != nil {
			t.Fatal(err)
		}
		_ = m.Close()
		m2 := newManager(t, f, opts)
		if _, ok := m2.Resolve(ctx, rotated.Token); !ok {
			t.Fatal("the kept device, rotated after its RevokeOthers landed, was signed out by the replay")
		}
		if _, found, err := st.Get(ctx, rotated.ID); !found || err != nil {
			t.Fatalf("the rotated device's row: found %v, err %v", found, err)
		}
		mustNotResolve(t, m2, other.Token, "it was signed out")
		mustNotResolve(t, m2, stuck.Token, "its revocation is journaled")
	})
}

// TestJournalIsBoundedByWhatIsPending: with one revocation stuck, many
// others that are journaled and then land leave nothing behind: the next
// start replays one, and the file stops growing.
func TestJournalIsBoundedByWhatIsPending(t *testing.T) {
	tdb := newSQLite(t)
	ctx := context.Background()
	f := newFaulty(newStore(t, tdb, nil))
	opts := journalOpts(t)
	m := newManager(t, f, opts)
	stuck := create(t, m, gormsession.Attributes{UserID: "bob"})
	f.fail("Revoke", true)
	if err := m.Revoke(ctx, stuck.ID); !errors.Is(err, gormsession.ErrNotPersisted) {
		t.Fatalf("Revoke = %v, want ErrNotPersisted", err)
	}
	var sizes []int64
	for i := range 200 {
		user := fmt.Sprintf("user-%d", i)
		create(t, m, gormsession.Attributes{UserID: user})
		f.fail("RevokeUser", true)
		if _, err := m.RevokeUser(ctx, user); !errors.Is(err, gormsession.ErrNotPersisted) {
			t.Fatalf("RevokeUser = %v, want ErrNotPersisted", err)
		}
		f.fail("RevokeUser", false)
		_, _ = m.Cleanup(ctx)
		if i == 49 || i == 199 {
			fi, err := os.Stat(opts.Journal)
			if err != nil {
				t.Fatal(err)
			}
			sizes = append(sizes, fi.Size())
		}
	}
	if sizes[1] > sizes[0] {
		t.Errorf("the journal grew from %d to %d bytes with one revocation pending", sizes[0], sizes[1])
	}
	_ = m.Close()
	m2 := newManager(t, f, opts)
	if n := m2.Stats().PendingRevocations; n != 1 {
		t.Fatalf("the next start replays %d revocations, want the 1 pending", n)
	}
	mustNotResolve(t, m2, stuck.Token, "its revocation is journaled")
}

// TestRevokeOfAnImpossibleIDIsANoOp: an ID no session can have (here one
// over 1 MiB) is not an error, queues nothing, and cannot block the next
// start; an over-long user ID is refused at the call.
func TestRevokeOfAnImpossibleIDIsANoOp(t *testing.T) {
	tdb := newSQLite(t)
	ctx := context.Background()
	f := newFaulty(newStore(t, tdb, nil))
	opts := journalOpts(t)
	m := newManager(t, f, opts)
	f.setDown(true)
	for _, id := range []string{strings.Repeat("a", 2<<20), "", "not an id", strings.Repeat("A", 64), "\xff" + strings.Repeat("a", 63)} {
		if err := m.Revoke(ctx, id); err != nil {
			t.Errorf("Revoke(%.20q) = %v, want nil", id, err)
		}
	}
	if _, err := m.RevokeUser(ctx, strings.Repeat("u", 2<<20)); !errors.Is(err, gormsession.ErrTooLong) {
		t.Errorf("RevokeUser of a 2 MiB user ID = %v, want ErrTooLong", err)
	}
	if n := m.Stats().PendingRevocations; n != 0 {
		t.Fatalf("%d revocations queued, want 0", n)
	}
	_ = m.Close()
	f.setDown(false)
	m2, err := gormsession.NewManager(ctx, f, opts)
	if err != nil {
		t.Fatalf("NewManager after revoking impossible IDs: %v", err)
	}
	_ = m2.Close()
}

// TestJournalHasOneOwner: a second Manager, in this process or another,
// on a journal in use is refused, with an error that names the file.
func TestJournalHasOneOwner(t *testing.T) {
	tdb := newSQLite(t)
	opts := journalOpts(t)
	newManager(t, newStore(t, tdb, nil), opts)
	m2, err := gormsession.NewManager(context.Background(), newStore(t, tdb, nil), opts)
	if err == nil {
		_ = m2.Close()
		t.Fatal("a second Manager opened a journal in use")
	}
	if !strings.Contains(err.Error(), opts.Journal) {
		t.Fatalf("the error does not name the file: %v", err)
	}

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), journalChildEnv+"=1",
		"GORMSESSION_CHILD_DSN="+tdb.DSN, "GORMSESSION_CHILD_TABLE="+tdb.Table, "GORMSESSION_CHILD_JOURNAL="+opts.Journal)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v: %s", err, out)
	}
	if !bytes.HasPrefix(out, []byte("refused: ")) || !bytes.Contains(out, []byte(opts.Journal)) {
		t.Fatalf("another process on the journal: %s", out)
	}
}

// journalChildEnv turns the test binary into a process that opens a
// Manager on a journal (see TestJournalHasOneOwner).
const journalChildEnv = "GORMSESSION_TEST_JOURNAL_CHILD"

// runJournalChild opens a Manager on the journal it is given and prints
// whether it was refused.
func runJournalChild() {
	db, err := testdb.OpenDSN(os.Getenv("GORMSESSION_CHILD_DSN"))
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	st, err := gormsession.NewStore(db, gormsession.StoreOptions{TableName: os.Getenv("GORMSESSION_CHILD_TABLE")})
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	m, err := gormsession.NewManager(context.Background(), st, gormsession.ManagerOptions{
		Journal: os.Getenv("GORMSESSION_CHILD_JOURNAL"), SyncInterval: -1,
	})
	if err != nil {
		fmt.Println("refused:", err)
		os.Exit(0)
	}
	_ = m.Close()
	fmt.Println("opened")
	os.Exit(0)
}

// TestMalformedInputCannotPoisonTheQueue: on PostgreSQL, an ID or a user
// ID with invalid UTF-8 fails with SQLSTATE 22021 whenever it is written.
// It must be refused or dropped at once, never queued and retried forever.
func TestMalformedInputCannotPoisonTheQueue(t *testing.T) {
	tdb := newPostgres(t)
	ctx := context.Background()
	opts := journalOpts(t)
	m := newManager(t, newStore(t, tdb, nil), opts)
	s := create(t, m, gormsession.Attributes{UserID: "alice"})
	if err := m.Revoke(ctx, "\xff"+strings.Repeat("a", 63)); err != nil {
		t.Fatalf("Revoke of a malformed ID = %v, want nil (a no-op)", err)
	}
	if _, err := m.RevokeUser(ctx, "\xffalice"); err == nil || errors.Is(err, gormsession.ErrNotPersisted) {
		t.Fatalf("RevokeUser of a user ID the database refuses = %v, want an error that is not ErrNotPersisted", err)
	}
	if n := m.Stats().PendingRevocations; n != 0 {
		t.Fatalf("%d revocations queued for retry, want 0", n)
	}
	if _, err := m.Cleanup(ctx); err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	mustResolve(t, m, s.Token)
}

// TestRetryRacingARotationKeepsTheSuccessor: the background retry of a
// queued RevokeOthers is under way when the kept device is rotated; the
// successor must stay signed in.
func TestRetryRacingARotationKeepsTheSuccessor(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		ctx := context.Background()
		f, m, kept, other := queuedRevokeOthers(t, tdb)
		g := f.holdBefore("RevokeUser")
		retried := make(chan error, 1)
		go func() {
			_, err := m.Cleanup(ctx)
			retried <- err
		}()
		<-g.reached // the retry is under way, keeping kept
		rotated := async(func() (gormsession.Session, error) { return m.Rotate(ctx, kept.Token) })
		var r sessionResult
		early := false
		select {
		case r = <-rotated: // nothing held the rotation back
			early = true
		case <-time.After(200 * time.Millisecond):
		}
		close(g.release)
		if err := <-retried; err != nil {
			t.Fatalf("Cleanup: %v", err)
		}
		if !early {
			r = <-rotated
		}
		if r.err != nil {
			t.Fatal(r.err)
		}
		if _, ok := m.Resolve(ctx, r.s.Token); !ok {
			t.Fatal("the kept device, rotated while the retry was under way, was signed out")
		}
		if _, found, err := f.Store.Get(ctx, r.s.ID); !found || err != nil {
			t.Fatalf("the successor's row: found %v, err %v", found, err)
		}
		mustNotResolve(t, m, other.Token, "it was signed out")
	})
}

// TestRefusedSignOutEverywhereLetsNoSessionBackIn: while RevokeUser's
// write is under way, this instance reads a session of the user (by
// read-through or by a poll); the write lands but its reply is lost. The
// session must stay refused here, and after the retry lands.
func TestRefusedSignOutEverywhereLetsNoSessionBackIn(t *testing.T) {
	for _, read := range []string{"read-through", "poll"} {
		t.Run(read, func(t *testing.T) {
			eachDB(t, func(t *testing.T, tdb testDB) {
				ctx := context.Background()
				opts := gormsession.ManagerOptions{SyncInterval: time.Hour, RetryInterval: time.Hour, CleanupInterval: -1, Logger: discardLogger()}
				f := newFaulty(newStore(t, tdb, nil))
				a := newManager(t, f, opts)
				b := newManager(t, newStore(t, tdb, nil), opts)
				s := create(t, b, gormsession.Attributes{UserID: "alice"}) // a does not know it
				f.loseReply("RevokeUser", true)
				g := f.holdBefore("RevokeUser")
				done := make(chan error, 1)
				go func() {
					_, err := a.RevokeUser(ctx, "alice")
					done <- err
				}()
				<-g.reached
				if read == "poll" {
					if err := a.Sync(ctx); err != nil {
						t.Fatal(err)
					}
				} else {
					a.Resolve(ctx, s.Token)
				}
				close(g.release)
				if err := <-done; !errors.Is(err, gormsession.ErrNotPersisted) {
					t.Fatalf("RevokeUser with its reply lost = %v, want ErrNotPersisted", err)
				}
				mustNotResolve(t, a, s.Token, "RevokeUser on this instance returned ErrNotPersisted")
				f.loseReply("RevokeUser", false)
				if _, err := a.Cleanup(ctx); err != nil {
					t.Fatal(err)
				}
				mustNotResolve(t, a, s.Token, "its user was signed out everywhere, and the retry landed")
				if n := len(a.ListUser("alice")); n != 0 {
					t.Fatalf("a lists %d sessions of alice", n)
				}
			})
		})
	}
}

// TestUpdateOfAnEvictedAnonymousSessionSucceeds: another visitor's Create
// evicts an anonymous session while its Update is being written. The
// database has the change, so Update must report it.
func TestUpdateOfAnEvictedAnonymousSessionSucceeds(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		ctx := context.Background()
		st := newStore(t, tdb, nil)
		f := newFaulty(st)
		m := newManager(t, f, gormsession.ManagerOptions{MaxAnonymous: 1, SyncInterval: -1})
		a := create(t, m, gormsession.Attributes{})
		g := f.holdAfter("Update")
		done := make(chan error, 1)
		go func() {
			_, err := setData(m, ctx, a.ID, []byte("changed"))
			done <- err
		}()
		<-g.reached
		create(t, m, gormsession.Attributes{}) // evicts a
		close(g.release)
		if err := <-done; err != nil {
			t.Fatalf("Update whose write landed = %v, want nil", err)
		}
		if row, found, err := st.Get(ctx, a.ID); !found || err != nil || string(row.Data) != "changed" {
			t.Fatalf("row: %+v, %v, %v", row, found, err)
		}
		if got, ok := m.ResolveAnonymous(ctx, a.Token); !ok || string(got.Data) != "changed" {
			t.Fatalf("ResolveAnonymous = %+v, %v", got, ok)
		}
	})
}

// TestRetryWaitsForARotationUnderWay: the kept device's rotation has
// landed in the database but not yet moved the keeping when the retry of
// the queued RevokeOthers starts; the retry must keep the successor.
func TestRetryWaitsForARotationUnderWay(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		ctx := context.Background()
		f, m, kept, other := queuedRevokeOthers(t, tdb)
		g := f.holdAfter("Rotate")
		rotated := async(func() (gormsession.Session, error) { return m.Rotate(ctx, kept.Token) })
		<-g.reached // the successor is in the database
		retried := make(chan error, 1)
		go func() {
			_, err := m.Cleanup(ctx)
			retried <- err
		}()
		time.Sleep(100 * time.Millisecond)
		close(g.release)
		r := <-rotated
		if err := <-retried; err != nil || r.err != nil {
			t.Fatalf("Cleanup: %v; Rotate: %v", err, r.err)
		}
		if _, found, err := f.Store.Get(ctx, r.s.ID); !found || err != nil {
			t.Fatalf("the successor's row: found %v, err %v", found, err)
		}
		mustResolve(t, m, r.s.Token)
		mustNotResolve(t, m, other.Token, "it was signed out")
	})
}

// TestUpdateRacingARevocationDoesNotBringItBack: the session is revoked
// while its Update is being written; Update must report it gone and leave
// it out of memory.
func TestUpdateRacingARevocationDoesNotBringItBack(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		ctx := context.Background()
		f := newFaulty(newStore(t, tdb, nil))
		m := newManager(t, f, gormsession.ManagerOptions{SyncInterval: -1})
		s := create(t, m, gormsession.Attributes{UserID: "alice"})
		g := f.holdAfter("Update")
		done := make(chan error, 1)
		go func() {
			_, err := setData(m, ctx, s.ID, []byte("late"))
			done <- err
		}()
		<-g.reached
		if err := m.Revoke(ctx, s.ID); err != nil {
			t.Fatal(err)
		}
		close(g.release)
		if err := <-done; !errors.Is(err, gormsession.ErrNotFound) {
			t.Fatalf("Update of a session revoked meanwhile = %v, want ErrNotFound", err)
		}
		mustNotResolve(t, m, s.Token, "it was revoked")
	})
}

// queuedRevokeOthers makes a Manager with a journal on tdb, two sessions
// of alice, and a RevokeOthers keeping the first that the database
// refused: it is queued for the retry, which the database now accepts.
func queuedRevokeOthers(t *testing.T, tdb testDB) (f *faultyBackend, m *gormsession.Manager, kept, other gormsession.Session) {
	t.Helper()
	f = newFaulty(newStore(t, tdb, nil))
	m = newManager(t, f, journalOpts(t))
	kept = create(t, m, gormsession.Attributes{UserID: "alice"})
	other = create(t, m, gormsession.Attributes{UserID: "alice"})
	f.fail("RevokeUser", true)
	if _, err := m.RevokeOthers(context.Background(), "alice", kept.ID); !errors.Is(err, gormsession.ErrNotPersisted) {
		t.Fatalf("RevokeOthers = %v, want ErrNotPersisted", err)
	}
	f.fail("RevokeUser", false)
	return f, m, kept, other
}

// fillPendingToTheBound makes a Manager with a journal whose bound on
// pending revocations is lowered to bound, takes the database down, and
// queues bound revocations (one in three a RevokeUser, the others a
// Revoke), each of its own session; it returns those sessions.
func fillPendingToTheBound(t *testing.T, bound int) (f *faultyBackend, m *gormsession.Manager, opts gormsession.ManagerOptions, queued []gormsession.Session) {
	t.Helper()
	ctx := context.Background()
	f = newFaulty(newStore(t, newSQLite(t), nil))
	opts = journalOpts(t)
	m = newManager(t, f, opts)
	m.SetMaxPendingRevocations(bound)
	for i := range bound {
		queued = append(queued, create(t, m, gormsession.Attributes{UserID: fmt.Sprintf("user-%d", i)}))
	}
	f.setDown(true)
	for i, s := range queued {
		var err error
		if i%3 == 0 {
			_, err = m.RevokeUser(ctx, s.UserID)
		} else {
			err = m.Revoke(ctx, s.ID)
		}
		if !errors.Is(err, gormsession.ErrNotPersisted) || errors.Is(err, gormsession.ErrTooManyPending) {
			t.Fatalf("revocation %d of %d = %v, want ErrNotPersisted only", i+1, bound, err)
		}
	}
	if n := m.Stats().PendingRevocations; n != bound {
		t.Fatalf("%d revocations pending, want %d", n, bound)
	}
	return f, m, opts, queued
}

// TestPendingRevocationsAreBounded: with the database down, revocations
// queue up to the bound (MaxPendingRevocations, lowered here). The next
// one, a Revoke or a RevokeUser, refuses its session in memory but returns
// ErrTooManyPending and ErrNotPersisted; nothing already queued is dropped:
// all of it lands once the database is back, or replays after a restart,
// and the journal is empty once it has landed.
func TestPendingRevocationsAreBounded(t *testing.T) {
	const bound = 12
	ctx := context.Background()
	overflow := func(t *testing.T, f *faultyBackend, m *gormsession.Manager) {
		t.Helper()
		f.setDown(false)
		one := create(t, m, gormsession.Attributes{UserID: "one"})
		all := create(t, m, gormsession.Attributes{UserID: "all"})
		f.setDown(true)
		err := m.Revoke(ctx, one.ID)
		if !errors.Is(err, gormsession.ErrTooManyPending) || !errors.Is(err, gormsession.ErrNotPersisted) {
			t.Fatalf("Revoke past the bound = %v, want ErrTooManyPending and ErrNotPersisted", err)
		}
		_, err = m.RevokeUser(ctx, all.UserID)
		if !errors.Is(err, gormsession.ErrTooManyPending) || !errors.Is(err, gormsession.ErrNotPersisted) {
			t.Fatalf("RevokeUser past the bound = %v, want ErrTooManyPending and ErrNotPersisted", err)
		}
		mustNotResolve(t, m, one.Token, "it was revoked past the bound")
		mustNotResolve(t, m, all.Token, "its user was signed out past the bound")
		if n := m.Stats().PendingRevocations; n != bound {
			t.Fatalf("%d revocations pending past the bound, want %d", n, bound)
		}
	}
	landed := func(t *testing.T, f *faultyBackend, m *gormsession.Manager, queued []gormsession.Session) {
		t.Helper()
		if _, err := m.Cleanup(ctx); err != nil {
			t.Fatalf("Cleanup with the database back: %v", err)
		}
		if n := m.Stats().PendingRevocations; n != 0 {
			t.Fatalf("%d revocations pending with the database back, want 0", n)
		}
		for i, s := range queued {
			mustNotResolve(t, m, s.Token, "it was revoked")
			if _, found, err := f.Store.Get(ctx, s.ID); found || err != nil {
				t.Fatalf("queued revocation %d did not land: found %v, err %v", i+1, found, err)
			}
		}
	}
	journalHolds := func(t *testing.T, path string, want int) {
		t.Helper()
		recs, err := gormsession.JournalState(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != want {
			t.Fatalf("the journal holds %d revocations, want %d", len(recs), want)
		}
	}

	t.Run("the database returns", func(t *testing.T) {
		f, m, opts, queued := fillPendingToTheBound(t, bound)
		overflow(t, f, m)
		for i, s := range queued {
			if _, ok := m.Resolve(ctx, s.Token); ok {
				t.Fatalf("queued revocation %d: the token resolves", i+1)
			}
		}
		f.setDown(false)
		landed(t, f, m, queued)
		if err := m.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		journalHolds(t, opts.Journal, 0)
	})

	t.Run("a restart before they land", func(t *testing.T) {
		f, m, opts, queued := fillPendingToTheBound(t, bound)
		overflow(t, f, m)
		m.Crash()
		journalHolds(t, opts.Journal, bound)
		// The database is back for the start, but refuses revocations.
		f.setDown(false)
		f.fail("Revoke", true)
		f.fail("RevokeUser", true)
		m2 := newManager(t, f, opts)
		if n := m2.Stats().PendingRevocations; n != bound {
			t.Fatalf("%d revocations replayed, want %d", n, bound)
		}
		for i, s := range queued {
			mustNotResolve(t, m2, s.Token, fmt.Sprintf("its revocation (%d) is journaled", i+1))
		}
		f.fail("Revoke", false)
		f.fail("RevokeUser", false)
		landed(t, f, m2, queued)
		if err := m2.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		journalHolds(t, opts.Journal, 0)
	})
}

// TestMalformedInputCannotPoisonTheQueueOnMariaDB: MariaDB refuses a
// statement that compares the user_id column (utf8mb4) with a user ID the
// connection's character set cannot hold, whenever it is run: error 1267
// on a utf8mb3 connection (invalid UTF-8, or a 4-byte character), 1300 on
// a binary one. Such a RevokeUser or RevokeOthers must be returned as an
// error at once, never queued and retried forever. On a utf8mb4
// connection, the driver's default, the same user ID matches no session
// and revokes nothing.
func TestMalformedInputCannotPoisonTheQueueOnMariaDB(t *testing.T) {
	for _, tt := range []struct {
		charset string
		userIDs []string
		refused bool
	}{
		{"utf8mb3", []string{"\xffalice", "\U0001F600"}, true},
		{"binary", []string{"\xffalice"}, true},
		{"utf8mb4", []string{"\xffalice", "\U0001F600"}, false},
	} {
		t.Run(tt.charset, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			tdb := testdb.MySQL(t)
			newStore(t, tdb, nil) // the table, made on a utf8mb4 connection
			opts := journalOpts(t)
			m := newManager(t, newStore(t, tdb.WithDSNParam("charset="+tt.charset), nil), opts)
			s := create(t, m, gormsession.Attributes{UserID: "alice"})
			check := func(call string, n int, err error) {
				t.Helper()
				switch {
				case tt.refused && (err == nil || errors.Is(err, gormsession.ErrNotPersisted)):
					t.Fatalf("%s = %v, want an error that is not ErrNotPersisted", call, err)
				case !tt.refused && (err != nil || n != 0):
					t.Fatalf("%s = %d, %v, want 0, nil", call, n, err)
				}
			}
			for _, u := range tt.userIDs {
				n, err := m.RevokeUser(ctx, u)
				check(fmt.Sprintf("RevokeUser(%q)", u), n, err)
				n, err = m.RevokeOthers(ctx, u, s.ID)
				check(fmt.Sprintf("RevokeOthers(%q)", u), n, err)
			}
			if n := m.Stats().PendingRevocations; n != 0 {
				t.Fatalf("%d revocations queued for retry, want 0", n)
			}
			if _, err := m.Cleanup(ctx); err != nil {
				t.Fatalf("Cleanup: %v", err)
			}
			mustResolve(t, m, s.Token)
			if err := m.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if recs, err := gormsession.JournalState(opts.Journal); err != nil || len(recs) != 0 {
				t.Fatalf("the journal holds %q, %v; want nothing", recs, err)
			}
		})
	}
}

// TestRepeatedRevokeQueuesOnce: a session revoked again and again while
// the database refuses it (a user pressing "sign out" until it works) is
// queued and journaled once: the repeats neither take places in the
// bounded queue nor are written to the database twice.
func TestRepeatedRevokeQueuesOnce(t *testing.T) {
	tdb := newSQLite(t)
	ctx := context.Background()
	f := newFaulty(newStore(t, tdb, nil))
	opts := journalOpts(t)
	m := newManager(t, f, opts)
	m.SetMaxPendingRevocations(2)
	s := create(t, m, gormsession.Attributes{UserID: "alice"})
	other := create(t, m, gormsession.Attributes{UserID: "bob"})
	f.setDown(true)
	for i := range 3 {
		err := m.Revoke(ctx, s.ID)
		if !errors.Is(err, gormsession.ErrNotPersisted) || errors.Is(err, gormsession.ErrTooManyPending) {
			t.Fatalf("Revoke %d of one session = %v, want ErrNotPersisted only", i+1, err)
		}
	}
	if n := m.Stats().PendingRevocations; n != 1 {
		t.Fatalf("%d revocations pending for one session revoked 3 times, want 1", n)
	}
	if err := m.Revoke(ctx, other.ID); !errors.Is(err, gormsession.ErrNotPersisted) || errors.Is(err, gormsession.ErrTooManyPending) {
		t.Fatalf("Revoke of another session, within the bound = %v, want ErrNotPersisted only", err)
	}
	m.Crash()
	if recs, err := gormsession.JournalState(opts.Journal); len(recs) != 2 || err != nil {
		t.Fatalf("the journal holds %q, %v; want the 2 revocations", recs, err)
	}
	f.setDown(false)
	m2 := newManager(t, f, opts)
	if n := m2.Stats().PendingRevocations; n != 0 {
		t.Fatalf("%d revocations pending after the replay landed, want 0", n)
	}
	mustNotResolve(t, m2, s.Token, "it was revoked")
	mustNotResolve(t, m2, other.Token, "it was revoked")
}

// TestSecondRotationWaitsForTheFirst: the kept device of a queued
// RevokeOthers is rotated twice at once on one instance (two tabs
// refreshing a token). The first rotation has landed in the database and
// not yet moved the keeping; the second, which the database refuses, must
// not end the first's hold on the kept ID: the retry of the queued
// RevokeOthers that runs meanwhile must keep the first's successor.
func TestSecondRotationWaitsForTheFirst(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		ctx := context.Background()
		f, m, kept, other := queuedRevokeOthers(t, tdb)
		g := f.holdAfter("Rotate")
		first := async(func() (gormsession.Session, error) { return m.Rotate(ctx, kept.Token) })
		<-g.reached // the first successor is in the database
		second := make(chan error, 1)
		go func() {
			_, err := m.Rotate(ctx, kept.Token)
			second <- err
		}()
		// Each of these waits for the first rotation; were either not held
		// back, it would end within the time allowed here.
		var errSecond error
		secondDone := false
		select {
		case errSecond = <-second:
			secondDone = true
		case <-time.After(200 * time.Millisecond):
		}
		retried := make(chan error, 1)
		go func() {
			_, err := m.Cleanup(ctx)
			retried <- err
		}()
		select {
		case err := <-retried:
			retried <- err
		case <-time.After(200 * time.Millisecond):
		}
		close(g.release)
		r := <-first
		if !secondDone {
			errSecond = <-second
		}
		if err := <-retried; err != nil {
			t.Fatalf("Cleanup: %v", err)
		}
		if r.err != nil {
			t.Fatalf("the first rotation = %v, want its successor", r.err)
		}
		if !errors.Is(errSecond, gormsession.ErrNotFound) {
			t.Fatalf("the second rotation of one token = %v, want ErrNotFound", errSecond)
		}
		if _, found, err := f.Store.Get(ctx, r.s.ID); !found || err != nil {
			t.Fatalf("the successor's row: found %v, err %v", found, err)
		}
		mustResolve(t, m, r.s.Token)
		mustNotResolve(t, m, kept.Token, "it was rotated")
		mustNotResolve(t, m, other.Token, "it was signed out")
	})
}

// TestRevokeOthersWaitsForARotationOfTheKeptDevice: "sign out my other
// devices" is called while the kept device's rotation has landed in the
// database but not yet moved the keeping; the RevokeOthers write lands
// and its reply is lost. The rotation's move of the keeping must not
// overtake a write that still keeps the old ID: memory must end as the
// database says, the successor live in both or in neither.
func TestRevokeOthersWaitsForARotationOfTheKeptDevice(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		ctx := context.Background()
		st := newStore(t, tdb, nil)
		f := newFaulty(st)
		m := newManager(t, f, journalOpts(t))
		kept := create(t, m, gormsession.Attributes{UserID: "alice"})
		other := create(t, m, gormsession.Attributes{UserID: "alice"})
		g := f.holdAfter("Rotate")
		rotated := async(func() (gormsession.Session, error) { return m.Rotate(ctx, kept.Token) })
		<-g.reached // the successor is in the database
		f.loseReply("RevokeUser", true)
		revoked := make(chan error, 1)
		go func() {
			_, err := m.RevokeOthers(ctx, "alice", kept.ID)
			revoked <- err
		}()
		// RevokeOthers waits for the rotation; were it not held back, it
		// would end within the time allowed here.
		select {
		case err := <-revoked:
			revoked <- err
		case <-time.After(200 * time.Millisecond):
		}
		close(g.release)
		r := <-rotated
		if err := <-revoked; !errors.Is(err, gormsession.ErrNotPersisted) {
			t.Fatalf("RevokeOthers with its reply lost = %v, want ErrNotPersisted", err)
		}
		f.loseReply("RevokeUser", false)
		if _, err := m.Cleanup(ctx); err != nil {
			t.Fatalf("Cleanup: %v", err)
		}
		if n := m.Stats().PendingRevocations; n != 0 {
			t.Fatalf("%d revocations still queued", n)
		}
		if mem, db := listedIDs(m, "alice"), liveIDs(t, st, "alice"); !slices.Equal(mem, db) {
			t.Fatalf("memory lists %v, the database has %v live", mem, db)
		}
		if r.err == nil {
			_, live, err := st.Get(ctx, r.s.ID)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := m.Resolve(ctx, r.s.Token); ok != live {
				t.Fatalf("the successor resolves: %v; its row is live: %v", ok, live)
			}
		}
		mustNotResolve(t, m, kept.Token, "it was rotated")
		mustNotResolve(t, m, other.Token, "it was signed out")
	})
}

// TestConcurrentRetriesWriteAJobOnce: two passes of the retry run at once
// (the background one and Cleanup, or Close): a queued revocation whose
// write one of them has under way is left to it by the other, so it lands
// and leaves the queue once.
func TestConcurrentRetriesWriteAJobOnce(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		ctx := context.Background()
		f := newFaulty(newStore(t, tdb, nil))
		m := newManager(t, f, journalOpts(t))
		s := create(t, m, gormsession.Attributes{UserID: "alice"})
		f.fail("Revoke", true)
		if err := m.Revoke(ctx, s.ID); !errors.Is(err, gormsession.ErrNotPersisted) {
			t.Fatalf("Revoke = %v, want ErrNotPersisted", err)
		}
		f.fail("Revoke", false)
		g := f.holdBefore("Revoke")
		first := make(chan error, 1)
		go func() {
			_, err := m.Cleanup(ctx)
			first <- err
		}()
		<-g.reached // the first pass is writing the revocation
		if _, err := m.Cleanup(ctx); err != nil {
			t.Fatalf("the second pass: %v", err)
		}
		close(g.release)
		if err := <-first; err != nil {
			t.Fatalf("the first pass: %v", err)
		}
		if n := m.Stats().PendingRevocations; n != 0 {
			t.Fatalf("%d revocations pending after one queued revocation landed, want 0", n)
		}
		mustNotResolve(t, m, s.Token, "it was revoked")
	})
}

// TestRetriesWaitingForARotationWriteAJobOnce: two passes of the retry
// wait for the rotation of the device a queued RevokeOthers keeps; when
// it ends, one of them writes the revocation and the other leaves it, so
// it lands and leaves the queue once, keeping the successor.
func TestRetriesWaitingForARotationWriteAJobOnce(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		ctx := context.Background()
		f, m, kept, other := queuedRevokeOthers(t, tdb)
		g := f.holdAfter("Rotate")
		rotated := async(func() (gormsession.Session, error) { return m.Rotate(ctx, kept.Token) })
		<-g.reached // the successor is in the database
		retried := make(chan error, 2)
		for range 2 {
			go func() {
				_, err := m.Cleanup(ctx)
				retried <- err
			}()
		}
		time.Sleep(200 * time.Millisecond) // both passes wait for the rotation
		close(g.release)
		r := <-rotated
		for range 2 {
			if err := <-retried; err != nil {
				t.Fatalf("Cleanup: %v", err)
			}
		}
		if r.err != nil {
			t.Fatal(r.err)
		}
		if n := m.Stats().PendingRevocations; n != 0 {
			t.Fatalf("%d revocations pending after one queued revocation landed, want 0", n)
		}
		mustResolve(t, m, r.s.Token)
		mustNotResolve(t, m, other.Token, "it was signed out")
	})
}
