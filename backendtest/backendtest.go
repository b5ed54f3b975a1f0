// Package backendtest is the conformance suite for gormsession.Backend
// implementations, in the manner of testing/fstest.
//
// A Backend's tests call Run with a function that returns a new, empty
// Backend for each subtest:
//
//	func TestConformance(t *testing.T) {
//		backendtest.Run(t, func(t *testing.T) gormsession.Backend {
//			return newEmptyBackend(t)
//		})
//	}
//
// Run checks the required methods, with the consistency model they keep
// (versions, conditional updates, inserts that never overwrite, atomic
// rotation, removals that stay removed), and every optional interface the
// Backend implements (UserRevoker, ExpiredRemover, Toucher,
// ChangeFeed).
package backendtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gormsession/gormsession"
)

// NewBackend returns a new, empty Backend for one subtest. It should
// register its own cleanup with t.Cleanup.
type NewBackend func(t *testing.T) gormsession.Backend

// Run runs the conformance suite against backends made by newBackend.
func Run(t *testing.T, newBackend NewBackend) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBackend(t)
			if b == nil {
				t.Fatal("newBackend returned nil")
			}
			tt.run(t, b)
		})
	}
}

var tests = []struct {
	name string
	run  func(t *testing.T, b gormsession.Backend)
}{
	{"InsertThenStreamRoundTripsEveryField", testRoundTrip},
	{"InsertNeverOverwrites", testInsertNeverOverwrites},
	{"UpdateIsConditionalOnVersion", testUpdateConditional},
	{"UpdateNeverInserts", testUpdateNeverInserts},
	{"ConcurrentUpdatesAtOneVersionOneWins", testConcurrentUpdates},
	{"RevokeEndsAndMissingIDIsNotAnError", testRevoke},
	{"ZeroExpiresAtMeansNever", testZeroExpiry},
	{"BinaryAndLargeDataRoundTrip", testBinaryData},
	{"ConcurrentInsertsAreAllKept", testConcurrentInserts},
	{"CanceledContextIsAnError", testCanceledContext},
	{"GetFindsLiveByID", testGet},
	{"RotateReplacesAtomically", testRotate},
	{"ConcurrentRotationsYieldOneSuccessor", testConcurrentRotations},
	{"RevokeUserReturnsWhatItRevoked", testRevokeUser},
	{"RemoveExpiredByTheDatabasesClock", testRemoveExpired},
	{"StreamSkipsExpired", testStream},
	{"TouchMovesUpdatedAtForwardOnly", testTouch},
	{"ChangesReportVersionsAndRemovals", testChanges},
	{"ChangesAfterHeadFollowCommitsNotClocks", testChangesIgnoreClocks},
}

// base is a fixed instant with microsecond precision, which every supported
// database keeps.
var base = time.Date(2030, 5, 17, 10, 30, 0, 123456000, time.UTC)

var seq = struct {
	sync.Mutex
	n int
}{}

// newSession returns a distinct session for user.
func newSession(user string) gormsession.Session {
	seq.Lock()
	seq.n++
	n := seq.n
	seq.Unlock()
	tok := gormsession.NewToken()
	return gormsession.Session{
		ID:        gormsession.HashToken(tok),
		UserID:    user,
		TenantID:  fmt.Sprintf("tenant-%d", n%3),
		Device:    "Firefox on Linux",
		Data:      []byte(fmt.Sprintf("payload-%d", n)),
		CreatedAt: base,
		UpdatedAt: base.Add(time.Minute),
		ExpiresAt: base.Add(24 * time.Hour),
	}
}

func insert(t *testing.T, b gormsession.Backend, ss ...*gormsession.Session) {
	t.Helper()
	for _, s := range ss {
		if err := b.Insert(context.Background(), s); err != nil {
			t.Fatalf("Insert(%s): %v", s.ID, err)
		}
		if s.Version != 1 {
			t.Fatalf("Insert set Version %d, want 1", s.Version)
		}
	}
}

func loadAll(t *testing.T, b gormsession.Backend) map[string]gormsession.Session {
	t.Helper()
	m := make(map[string]gormsession.Session)
	// The zero time is before every expiry: every live session streams.
	err := b.Stream(context.Background(), time.Time{}, func(s *gormsession.Session) error {
		if _, dup := m[s.ID]; dup {
			t.Fatalf("Stream gave %s twice", s.ID)
		}
		m[s.ID] = *s
		return nil
	})
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	return m
}

func get(t *testing.T, b gormsession.Backend, id string) (gormsession.Session, bool) {
	t.Helper()
	s, found, err := b.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("Get(%s): %v", id, err)
	}
	return s, found
}

// equal compares what a Backend stores (everything but Token), with times
// compared as instants.
func equal(t *testing.T, got, want gormsession.Session) {
	t.Helper()
	if got.ID != want.ID || got.UserID != want.UserID || got.TenantID != want.TenantID ||
		got.Device != want.Device || !bytes.Equal(got.Data, want.Data) ||
		!got.CreatedAt.Equal(want.CreatedAt) || !got.UpdatedAt.Equal(want.UpdatedAt) ||
		!got.ExpiresAt.Equal(want.ExpiresAt) || got.Version != want.Version {
		t.Errorf("stored session differs\n got: %s\nwant: %s", describe(got), describe(want))
	}
	if got.Token != "" {
		t.Errorf("stored session has a Token")
	}
}

func testRoundTrip(t *testing.T, b gormsession.Backend) {
	a, c := newSession("alice"), newSession("carol")
	a.Token = "must-not-be-stored"
	insert(t, b, &a, &c)
	all := loadAll(t, b)
	if len(all) != 2 {
		t.Fatalf("Stream gave %d sessions, want 2", len(all))
	}
	a.Token = ""
	equal(t, all[a.ID], a)
	equal(t, all[c.ID], c)
}

func testInsertNeverOverwrites(t *testing.T, b gormsession.Backend) {
	s := newSession("alice")
	insert(t, b, &s)
	again := s
	again.Data = []byte("overwritten")
	again.Version = 0
	if err := b.Insert(context.Background(), &again); err == nil {
		t.Fatal("a second Insert of one ID succeeded, want an error")
	}
	got, _ := get(t, b, s.ID)
	equal(t, got, s)
	if err := b.Revoke(context.Background(), s.ID); err != nil {
		t.Fatal(err)
	}
	if err := b.Insert(context.Background(), &again); err == nil {
		t.Fatal("Insert over a removed session succeeded, want an error")
	}
	if _, found := get(t, b, s.ID); found {
		t.Fatal("Insert over a removed session brought it back")
	}
}

func testUpdateConditional(t *testing.T, b gormsession.Backend) {
	ctx := context.Background()
	s := newSession("alice")
	insert(t, b, &s)
	changed := s
	changed.UserID = "mallory"              // must be ignored
	changed.CreatedAt = base.Add(time.Hour) // must be ignored
	changed.TenantID = "other-tenant"
	changed.Device = "Safari on iOS"
	changed.Data = []byte("new payload")
	changed.UpdatedAt = base.Add(2 * time.Hour)
	changed.ExpiresAt = base.Add(48 * time.Hour)
	if err := b.Update(ctx, &changed); err != nil {
		t.Fatalf("Update at the current version: %v", err)
	}
	if changed.Version <= s.Version {
		t.Fatalf("Update left Version at %d, want it advanced past %d", changed.Version, s.Version)
	}
	want := changed
	want.UserID, want.CreatedAt = s.UserID, s.CreatedAt
	got, _ := get(t, b, s.ID)
	equal(t, got, want)

	stale := s // still at the first version
	stale.Data = []byte("lost update")
	err := b.Update(ctx, &stale)
	if !errors.Is(err, gormsession.ErrConflict) {
		t.Fatalf("Update at a stale version: %v, want ErrConflict", err)
	}
	got, _ = get(t, b, s.ID)
	equal(t, got, want)
}

func testUpdateNeverInserts(t *testing.T, b gormsession.Backend) {
	ctx := context.Background()
	ghost := newSession("alice")
	ghost.Version = 1
	if err := b.Update(ctx, &ghost); !errors.Is(err, gormsession.ErrNotFound) {
		t.Fatalf("Update of an unknown ID: %v, want ErrNotFound", err)
	}
	if all := loadAll(t, b); len(all) != 0 {
		t.Fatalf("Update of an unknown ID created %d rows", len(all))
	}
	s := newSession("alice")
	insert(t, b, &s)
	if err := b.Revoke(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	s.Data = []byte("late update")
	if err := b.Update(ctx, &s); !errors.Is(err, gormsession.ErrNotFound) {
		t.Fatalf("Update of a removed session: %v, want ErrNotFound", err)
	}
	if _, found := get(t, b, s.ID); found {
		t.Fatal("Update after Revoke brought the session back")
	}
	if all := loadAll(t, b); len(all) != 0 {
		t.Fatal("Update after Revoke brought the session back into Stream")
	}
}

func testConcurrentUpdates(t *testing.T, b gormsession.Backend) {
	s := newSession("alice")
	insert(t, b, &s)
	const n = 8
	var (
		wg             sync.WaitGroup
		mu             sync.Mutex
		wins, conflict int
		winner         []byte
	)
	for i := range n {
		u := s
		u.Data = []byte(fmt.Sprintf("writer-%d", i))
		wg.Go(func() {
			err := b.Update(context.Background(), &u)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
				winner = u.Data
			case errors.Is(err, gormsession.ErrConflict):
				conflict++
			default:
				t.Errorf("concurrent Update: %v", err)
			}
		})
	}
	wg.Wait()
	if wins != 1 || conflict != n-1 {
		t.Fatalf("%d concurrent Updates at one version: %d won, %d conflicted; want 1 and %d", n, wins, conflict, n-1)
	}
	if got, _ := get(t, b, s.ID); !bytes.Equal(got.Data, winner) {
		t.Fatalf("stored data %q, want the winner's %q", got.Data, winner)
	}
}

func testRevoke(t *testing.T, b gormsession.Backend) {
	s1, s2 := newSession("alice"), newSession("alice")
	insert(t, b, &s1, &s2)
	ctx := context.Background()
	if err := b.Revoke(ctx, s1.ID); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if err := b.Revoke(ctx, s1.ID); err != nil {
		t.Fatalf("Revoke of a revoked ID: %v, want nil", err)
	}
	if err := b.Revoke(ctx, gormsession.HashToken("never-saved")); err != nil {
		t.Fatalf("Revoke of an unknown ID: %v, want nil", err)
	}
	all := loadAll(t, b)
	if _, ok := all[s1.ID]; ok || len(all) != 1 {
		t.Fatalf("after Revoke Stream has %d sessions (removed one present: %v), want only the other", len(all), ok)
	}
	if _, found := get(t, b, s1.ID); found {
		t.Fatal("Get found a removed session")
	}
}

func testZeroExpiry(t *testing.T, b gormsession.Backend) {
	s := newSession("alice")
	s.ExpiresAt = time.Time{}
	insert(t, b, &s)
	got := loadAll(t, b)[s.ID]
	if !got.ExpiresAt.IsZero() {
		t.Fatalf("ExpiresAt = %v, want zero (never)", got.ExpiresAt)
	}
}

func testBinaryData(t *testing.T, b gormsession.Backend) {
	bin := newSession("alice")
	bin.Data = []byte{0, 1, 2, 0xff, 0xfe, 0, '\'', '"', '\\', 0}
	big := newSession("alice")
	big.Data = bytes.Repeat([]byte{0xab, 0x00, 0x7f}, 1<<20/3)
	empty := newSession("alice")
	empty.Data = nil
	insert(t, b, &bin, &big, &empty)
	all := loadAll(t, b)
	equal(t, all[bin.ID], bin)
	equal(t, all[big.ID], big)
	if len(all[empty.ID].Data) != 0 {
		t.Errorf("nil Data came back as %d bytes", len(all[empty.ID].Data))
	}
}

func testConcurrentInserts(t *testing.T, b gormsession.Backend) {
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan error, n)
	ids := make([]string, n)
	for i := range n {
		s := newSession(fmt.Sprintf("user-%d", i%5))
		ids[i] = s.ID
		wg.Go(func() {
			if err := b.Insert(context.Background(), &s); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent Insert: %v", err)
	}
	all := loadAll(t, b)
	for _, id := range ids {
		if _, ok := all[id]; !ok {
			t.Errorf("session %s inserted concurrently is missing", id)
		}
	}
}

func testCanceledContext(t *testing.T, b gormsession.Backend) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s := newSession("alice")
	if err := b.Insert(ctx, &s); err == nil {
		t.Fatal("Insert with a canceled context succeeded, want an error")
	}
	if err := b.Stream(ctx, time.Time{}, func(*gormsession.Session) error { return nil }); err == nil {
		t.Fatal("Stream with a canceled context succeeded, want an error")
	}
	if _, _, err := b.Get(ctx, s.ID); err == nil {
		t.Fatal("Get with a canceled context succeeded, want an error")
	}
}

func testGet(t *testing.T, b gormsession.Backend) {
	s := newSession("alice")
	insert(t, b, &s)
	got, found := get(t, b, s.ID)
	if !found {
		t.Fatal("Get of an inserted session: not found")
	}
	equal(t, got, s)
	if _, found := get(t, b, gormsession.HashToken("unknown")); found {
		t.Fatal("Get of an unknown ID found a session")
	}
}

func testRotate(t *testing.T, b gormsession.Backend) {
	ctx := context.Background()
	old := newSession("alice")
	insert(t, b, &old)
	at := base.Add(5 * time.Minute)
	newID := gormsession.HashToken(gormsession.NewToken())
	next, err := b.Rotate(ctx, old.ID, newID, at)
	if err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	want := old
	want.ID, want.UpdatedAt, want.Version = newID, at, 1
	equal(t, next, want)
	if got, found := get(t, b, newID); !found {
		t.Fatal("the successor is not stored")
	} else {
		equal(t, got, want)
	}
	if _, found := get(t, b, old.ID); found {
		t.Fatal("the rotated session is still live")
	}
	if _, err := b.Rotate(ctx, old.ID, gormsession.HashToken(gormsession.NewToken()), at); !errors.Is(err, gormsession.ErrNotFound) {
		t.Fatalf("Rotate of a rotated session: %v, want ErrNotFound", err)
	}
	removed := newSession("alice")
	insert(t, b, &removed)
	if err := b.Revoke(ctx, removed.ID); err != nil {
		t.Fatal(err)
	}
	lostID := gormsession.HashToken(gormsession.NewToken())
	if _, err := b.Rotate(ctx, removed.ID, lostID, at); !errors.Is(err, gormsession.ErrNotFound) {
		t.Fatalf("Rotate of a removed session: %v, want ErrNotFound", err)
	}
	if _, found := get(t, b, lostID); found {
		t.Fatal("Rotate of a removed session created a successor")
	}
	expired := newSession("alice")
	expired.ExpiresAt = at
	insert(t, b, &expired)
	if _, err := b.Rotate(ctx, expired.ID, lostID, at); !errors.Is(err, gormsession.ErrNotFound) {
		t.Fatalf("Rotate of a session expiring at that instant: %v, want ErrNotFound", err)
	}
	if _, err := b.Rotate(ctx, gormsession.HashToken("unknown"), lostID, at); !errors.Is(err, gormsession.ErrNotFound) {
		t.Fatalf("Rotate of an unknown session: %v, want ErrNotFound", err)
	}
	if all := loadAll(t, b); len(all) != 2 {
		t.Fatalf("after the rotations %d live sessions, want 2 (the successor and the expired one)", len(all))
	}
}

func testConcurrentRotations(t *testing.T, b gormsession.Backend) {
	old := newSession("alice")
	insert(t, b, &old)
	const n = 6
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins []string
	)
	for range n {
		wg.Go(func() {
			id := gormsession.HashToken(gormsession.NewToken())
			_, err := b.Rotate(context.Background(), old.ID, id, base.Add(time.Minute))
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				wins = append(wins, id)
			} else if !errors.Is(err, gormsession.ErrNotFound) {
				// A database may also abort a loser (a deadlock); that is
				// an error, not a second successor.
				t.Logf("concurrent Rotate: %v", err)
			}
		})
	}
	wg.Wait()
	if len(wins) != 1 {
		t.Fatalf("%d concurrent rotations of one session gave %d successors, want 1", n, len(wins))
	}
	all := loadAll(t, b)
	if len(all) != 1 {
		t.Fatalf("after concurrent rotations %d live sessions, want 1", len(all))
	}
	if _, ok := all[wins[0]]; !ok {
		t.Fatal("the live session is not the successor that won")
	}
}

func testRevokeUser(t *testing.T, b gormsession.Backend) {
	r, ok := b.(gormsession.UserRevoker)
	if !ok {
		t.Skip("backend is not a UserRevoker")
	}
	ctx := context.Background()
	a1, a2, a3, c := newSession("alice"), newSession("alice"), newSession("alice"), newSession("carol")
	late := newSession("alice")
	late.CreatedAt = base.Add(time.Hour)
	insert(t, b, &a1, &a2, &a3, &c, &late)
	ids, err := r.RevokeUser(ctx, "alice", a3.ID, base.Add(time.Minute))
	if err != nil {
		t.Fatalf("RevokeUser: %v", err)
	}
	slices.Sort(ids)
	want := []string{a1.ID, a2.ID}
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Fatalf("RevokeUser returned %v, want %v (not the kept one, not the later one)", ids, want)
	}
	all := loadAll(t, b)
	if len(all) != 3 {
		t.Fatalf("after RevokeUser %d live sessions, want 3: %v", len(all), slices.Collect(maps.Keys(all)))
	}
	for _, id := range []string{a3.ID, c.ID, late.ID} {
		if _, ok := all[id]; !ok {
			t.Errorf("RevokeUser removed %s, which it must keep", id)
		}
	}
	if ids, err := r.RevokeUser(ctx, "alice", "", base); err != nil || len(ids) != 0 {
		t.Fatalf("RevokeUser with nothing to remove = %v, %v; want none, nil", ids, err)
	}
	if ids, err := r.RevokeUser(ctx, "alice", "", base.Add(2*time.Hour)); err != nil || len(ids) != 2 {
		t.Fatalf("RevokeUser of the rest = %v, %v; want 2, nil", ids, err)
	}
	// A zero cut-off: every live session of the user, however its
	// creation was stamped, a session created "in the future" included.
	b1, b2, keep := newSession("bob"), newSession("bob"), newSession("bob")
	b2.CreatedAt = time.Now().Add(time.Hour)
	insert(t, b, &b1, &b2, &keep)
	ids, err = r.RevokeUser(ctx, "bob", keep.ID, time.Time{})
	if err != nil || len(ids) != 2 {
		t.Fatalf("RevokeUser with no cut-off = %v, %v; want both sessions but the kept one", ids, err)
	}
	if _, ok := get(t, b, keep.ID); !ok {
		t.Fatal("RevokeUser with no cut-off removed the kept session")
	}
}

func testRemoveExpired(t *testing.T, b gormsession.Backend) {
	r, ok := b.(gormsession.ExpiredRemover)
	if !ok {
		t.Skip("backend is not an ExpiredRemover")
	}
	// The database's clock decides: sessions an hour either side of the
	// real time, whatever the caller's clock says.
	now := time.Now().UTC().Truncate(time.Microsecond)
	past, future, never := newSession("a"), newSession("a"), newSession("a")
	past.ExpiresAt = now.Add(-time.Hour)
	future.ExpiresAt = now.Add(time.Hour)
	never.ExpiresAt = time.Time{}
	insert(t, b, &past, &future, &never)
	n, err := r.RemoveExpired(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("RemoveExpired = %d, %v; want 1 (the one expired an hour ago), nil", n, err)
	}
	all := loadAll(t, b)
	_, hasFuture := all[future.ID]
	_, hasNever := all[never.ID]
	if len(all) != 2 || !hasFuture || !hasNever {
		t.Fatalf("after RemoveExpired: %d left (future %v, never %v), want those two", len(all), hasFuture, hasNever)
	}
	// A deleted row stays gone: an update does not bring it back.
	past.Data = []byte("late")
	if err := b.Update(context.Background(), &past); !errors.Is(err, gormsession.ErrNotFound) {
		t.Fatalf("Update of a deleted expired session: %v, want ErrNotFound", err)
	}
}

func testStream(t *testing.T, b gormsession.Backend) {
	now := base.Add(time.Hour)
	atNow, future, never, removed, anon := newSession("a"), newSession("a"), newSession("b"), newSession("b"), newSession("")
	atNow.ExpiresAt = now
	future.ExpiresAt = now.Add(time.Microsecond)
	never.ExpiresAt = time.Time{}
	insert(t, b, &atNow, &future, &never, &removed, &anon)
	if err := b.Revoke(context.Background(), removed.ID); err != nil {
		t.Fatal(err)
	}
	got := map[string]gormsession.Session{}
	err := b.Stream(context.Background(), now, func(s *gormsession.Session) error {
		got[s.ID] = *s
		return nil
	})
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	if len(got) != 2 {
		t.Fatalf("Stream gave %d sessions, want 2 (the one expiring exactly now is expired, the removed one is gone, the anonymous one is left out)", len(got))
	}
	equal(t, got[future.ID], future)
	equal(t, got[never.ID], never)

	stop := fmt.Errorf("stop")
	calls := 0
	err = b.Stream(context.Background(), now, func(*gormsession.Session) error { calls++; return stop })
	if err != stop || calls != 1 {
		t.Fatalf("Stream with fn error: err %v after %d calls; want fn's error after 1", err, calls)
	}
}

func testTouch(t *testing.T, b gormsession.Backend) {
	to, ok := b.(gormsession.Toucher)
	if !ok {
		t.Skip("backend is not a Toucher")
	}
	s1, s2, s3 := newSession("a"), newSession("a"), newSession("a")
	insert(t, b, &s1, &s2, &s3)
	at := base.Add(3 * time.Hour)
	if err := to.Touch(context.Background(), []string{s1.ID, s2.ID, gormsession.HashToken("x")}, at); err != nil {
		t.Fatalf("Touch: %v", err)
	}
	if err := to.Touch(context.Background(), []string{s1.ID}, at.Add(-time.Hour)); err != nil {
		t.Fatalf("Touch: %v", err)
	}
	all := loadAll(t, b)
	if !all[s1.ID].UpdatedAt.Equal(at) || !all[s2.ID].UpdatedAt.Equal(at) {
		t.Errorf("touched sessions have UpdatedAt %v, %v; want %v (never moved back)", all[s1.ID].UpdatedAt, all[s2.ID].UpdatedAt, at)
	}
	if all[s1.ID].Version != 1 {
		t.Errorf("Touch changed the version to %d; activity is not a change", all[s1.ID].Version)
	}
	if !all[s3.ID].UpdatedAt.Equal(s3.UpdatedAt) {
		t.Errorf("untouched session's UpdatedAt changed to %v", all[s3.ID].UpdatedAt)
	}
	if len(all) != 3 {
		t.Errorf("Touch of an unknown ID created a row: %d sessions", len(all))
	}
}

// changes reads cf from cursor and returns what it reported, by ID, and
// where to continue.
func changes(t *testing.T, cf gormsession.ChangeFeed, cursor int64) (map[string]change, gormsession.FeedPosition) {
	t.Helper()
	seen := map[string]change{}
	pos, err := cf.Changes(context.Background(), cursor, func(s *gormsession.Session, revoked bool) error {
		seen[s.ID] = change{*s, revoked}
		return nil
	})
	if err != nil {
		t.Fatalf("Changes: %v", err)
	}
	return seen, pos
}

type change struct {
	s       gormsession.Session
	revoked bool
}

func testChanges(t *testing.T, b gormsession.Backend) {
	cf, ok := b.(gormsession.ChangeFeed)
	if !ok {
		t.Skip("backend is not a ChangeFeed")
	}
	ctx := context.Background()
	old, fresh, removed := newSession("a"), newSession("a"), newSession("b")
	insert(t, b, &old, &fresh, &removed)
	head, err := cf.Head(ctx)
	if err != nil {
		t.Fatalf("Head: %v", err)
	}
	if d := time.Since(head.Now); d > time.Minute || d < -time.Minute {
		t.Errorf("Head's clock is %v, %v from this machine's: not the database's clock", head.Now, d)
	}
	if cf.TombstoneTTL() <= 0 {
		t.Errorf("TombstoneTTL = %v, want a positive duration", cf.TombstoneTTL())
	}
	fresh.Data = []byte("v2")
	if err := b.Update(ctx, &fresh); err != nil {
		t.Fatal(err)
	}
	if err := b.Revoke(ctx, removed.ID); err != nil {
		t.Fatal(err)
	}
	// A change may be reported again (on PostgreSQL, while any transaction
	// older than it runs), so old may be among them: what matters is that
	// the later ones are.
	seen, pos := changes(t, cf, head.Cursor)
	if c, ok := seen[fresh.ID]; !ok || c.revoked || c.s.Version != fresh.Version || string(c.s.Data) != "v2" {
		t.Errorf("Changes: updated session reported %v (revoked %v, version %d, data %q), want live at version %d with v2",
			ok, c.revoked, c.s.Version, c.s.Data, fresh.Version)
	}
	if c, ok := seen[removed.ID]; !ok || !c.revoked {
		t.Errorf("Changes: removed session reported %v (revoked %v), want a removal", ok, c.revoked)
	}
	// From the returned position: a later change is reported.
	if err := b.Revoke(ctx, fresh.ID); err != nil {
		t.Fatal(err)
	}
	seen, _ = changes(t, cf, pos.Cursor)
	if c, ok := seen[fresh.ID]; !ok || !c.revoked {
		t.Errorf("Changes from the returned cursor: revocation reported %v (revoked %v), want a removal", ok, c.revoked)
	}
}

// testChangesIgnoreClocks writes sessions whose times are far in the past
// and far in the future, as instances with wrong clocks would: the feed
// reports every change after Head whatever the times say.
func testChangesIgnoreClocks(t *testing.T, b gormsession.Backend) {
	cf, ok := b.(gormsession.ChangeFeed)
	if !ok {
		t.Skip("backend is not a ChangeFeed")
	}
	ctx := context.Background()
	head, err := cf.Head(ctx)
	if err != nil {
		t.Fatalf("Head: %v", err)
	}
	behind, ahead := newSession("a"), newSession("a")
	behind.CreatedAt, behind.UpdatedAt = head.Now.Add(-time.Hour), head.Now.Add(-time.Hour)
	ahead.CreatedAt, ahead.UpdatedAt = head.Now.Add(time.Hour), head.Now.Add(time.Hour)
	insert(t, b, &behind, &ahead)
	if err := b.Revoke(ctx, ahead.ID); err != nil {
		t.Fatal(err)
	}
	seen, _ := changes(t, cf, head.Cursor)
	if c, ok := seen[behind.ID]; !ok || c.revoked {
		t.Errorf("a session stamped an hour behind the database was reported %v (revoked %v), want it live", ok, c.revoked)
	}
	if c, ok := seen[ahead.ID]; !ok || !c.revoked {
		t.Errorf("a revocation of a session stamped an hour ahead was reported %v (revoked %v), want it", ok, c.revoked)
	}
}

// describe prints a session for a failure message, with Data abridged.
func describe(s gormsession.Session) string {
	data := s.Data
	if len(data) > 16 {
		data = data[:16]
	}
	return fmt.Sprintf("{ID:%s User:%q Tenant:%q Device:%q Data(%d bytes):%x Created:%v Updated:%v Expires:%v Version:%d}",
		s.ID, s.UserID, s.TenantID, s.Device, len(s.Data), data, s.CreatedAt, s.UpdatedAt, s.ExpiresAt, s.Version)
}
