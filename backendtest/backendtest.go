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
// Run checks the required methods and every optional interface the Backend
// implements (Getter, UserRemover, ExpiredRemover, Streamer, Toucher).
package backendtest

import (
	"bytes"
	"context"
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
	{"SaveThenLoadAllRoundTripsEveryField", testRoundTrip},
	{"SaveIsAnUpsertThatKeepsCreatedAt", testUpsert},
	{"RemoveDeletesAndMissingIDIsNotAnError", testRemove},
	{"ZeroExpiresAtMeansNever", testZeroExpiry},
	{"BinaryAndLargeDataRoundTrip", testBinaryData},
	{"ConcurrentSavesAreAllKept", testConcurrentSaves},
	{"CanceledContextIsAnError", testCanceledContext},
	{"GetFindsByID", testGetter},
	{"RemoveUserDeletesOnlyThatUser", testRemoveUser},
	{"RemoveExpiredUsesInclusiveBoundary", testRemoveExpired},
	{"StreamSkipsExpired", testStream},
	{"TouchSetsUpdatedAt", testTouch},
	{"ChangesReportSavesAndRemovals", testChanges},
	{"SaveDoesNotReviveRemovedSession", testNoRevive},
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

func save(t *testing.T, b gormsession.Backend, ss ...gormsession.Session) {
	t.Helper()
	for i := range ss {
		if err := b.Save(context.Background(), &ss[i]); err != nil {
			t.Fatalf("Save(%s): %v", ss[i].ID, err)
		}
	}
}

func loadAll(t *testing.T, b gormsession.Backend) map[string]gormsession.Session {
	t.Helper()
	all, err := b.LoadAll(context.Background())
	if err != nil {
		t.Fatalf("LoadAll: %v", err)
	}
	m := make(map[string]gormsession.Session, len(all))
	for _, s := range all {
		if _, dup := m[s.ID]; dup {
			t.Fatalf("LoadAll returned %s twice", s.ID)
		}
		m[s.ID] = s
	}
	return m
}

// equal compares what a Backend stores (everything but Token), with times
// compared as instants.
func equal(t *testing.T, got, want gormsession.Session) {
	t.Helper()
	if got.ID != want.ID || got.UserID != want.UserID || got.TenantID != want.TenantID ||
		got.Device != want.Device || !bytes.Equal(got.Data, want.Data) ||
		!got.CreatedAt.Equal(want.CreatedAt) || !got.UpdatedAt.Equal(want.UpdatedAt) ||
		!got.ExpiresAt.Equal(want.ExpiresAt) {
		t.Errorf("stored session differs\n got: %s\nwant: %s", describe(got), describe(want))
	}
	if got.Token != "" {
		t.Errorf("stored session has a Token")
	}
}

func testRoundTrip(t *testing.T, b gormsession.Backend) {
	a, c := newSession("alice"), newSession("carol")
	a.Token = "must-not-be-stored"
	save(t, b, a, c)
	all := loadAll(t, b)
	if len(all) != 2 {
		t.Fatalf("LoadAll returned %d sessions, want 2", len(all))
	}
	a.Token = ""
	equal(t, all[a.ID], a)
	equal(t, all[c.ID], c)
}

func testUpsert(t *testing.T, b gormsession.Backend) {
	s := newSession("alice")
	save(t, b, s)
	changed := s
	changed.TenantID = "other-tenant"
	changed.Device = "Safari on iOS"
	changed.Data = []byte("new payload")
	changed.CreatedAt = base.Add(time.Hour) // must be ignored
	changed.UpdatedAt = base.Add(2 * time.Hour)
	changed.ExpiresAt = base.Add(48 * time.Hour)
	save(t, b, changed)
	all := loadAll(t, b)
	if len(all) != 1 {
		t.Fatalf("after two saves of one ID LoadAll returned %d sessions, want 1", len(all))
	}
	want := changed
	want.CreatedAt = s.CreatedAt
	equal(t, all[s.ID], want)
}

func testRemove(t *testing.T, b gormsession.Backend) {
	s1, s2 := newSession("alice"), newSession("alice")
	save(t, b, s1, s2)
	ctx := context.Background()
	if err := b.Remove(ctx, s1.ID); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if err := b.Remove(ctx, s1.ID); err != nil {
		t.Fatalf("Remove of a removed ID: %v, want nil", err)
	}
	if err := b.Remove(ctx, gormsession.HashToken("never-saved")); err != nil {
		t.Fatalf("Remove of an unknown ID: %v, want nil", err)
	}
	all := loadAll(t, b)
	if _, ok := all[s1.ID]; ok || len(all) != 1 {
		t.Fatalf("after Remove LoadAll has %d sessions (removed one present: %v), want only the other", len(all), ok)
	}
}

func testZeroExpiry(t *testing.T, b gormsession.Backend) {
	s := newSession("alice")
	s.ExpiresAt = time.Time{}
	save(t, b, s)
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
	save(t, b, bin, big, empty)
	all := loadAll(t, b)
	equal(t, all[bin.ID], bin)
	equal(t, all[big.ID], big)
	if len(all[empty.ID].Data) != 0 {
		t.Errorf("nil Data came back as %d bytes", len(all[empty.ID].Data))
	}
}

func testConcurrentSaves(t *testing.T, b gormsession.Backend) {
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan error, n)
	ids := make([]string, n)
	for i := range n {
		s := newSession(fmt.Sprintf("user-%d", i%5))
		ids[i] = s.ID
		wg.Go(func() {
			if err := b.Save(context.Background(), &s); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent Save: %v", err)
	}
	all := loadAll(t, b)
	for _, id := range ids {
		if _, ok := all[id]; !ok {
			t.Errorf("session %s saved concurrently is missing", id)
		}
	}
}

func testCanceledContext(t *testing.T, b gormsession.Backend) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s := newSession("alice")
	if err := b.Save(ctx, &s); err == nil {
		t.Fatal("Save with a canceled context succeeded, want an error")
	}
	if _, err := b.LoadAll(ctx); err == nil {
		t.Fatal("LoadAll with a canceled context succeeded, want an error")
	}
}

func testGetter(t *testing.T, b gormsession.Backend) {
	g, ok := b.(gormsession.Getter)
	if !ok {
		t.Skip("backend is not a Getter")
	}
	s := newSession("alice")
	save(t, b, s)
	got, found, err := g.Get(context.Background(), s.ID)
	if err != nil || !found {
		t.Fatalf("Get(saved) = found %v, err %v", found, err)
	}
	equal(t, got, s)
	_, found, err = g.Get(context.Background(), gormsession.HashToken("unknown"))
	if err != nil || found {
		t.Fatalf("Get(unknown) = found %v, err %v; want false, nil", found, err)
	}
}

func testRemoveUser(t *testing.T, b gormsession.Backend) {
	r, ok := b.(gormsession.UserRemover)
	if !ok {
		t.Skip("backend is not a UserRemover")
	}
	a1, a2, c := newSession("alice"), newSession("alice"), newSession("carol")
	save(t, b, a1, a2, c)
	n, err := r.RemoveUser(context.Background(), "alice")
	if err != nil || n != 2 {
		t.Fatalf("RemoveUser = %d, %v; want 2, nil", n, err)
	}
	all := loadAll(t, b)
	if len(all) != 1 || all[c.ID].UserID != "carol" {
		t.Fatalf("after RemoveUser(alice) LoadAll = %v, want only carol's session", slices.Collect(maps.Keys(all)))
	}
	if n, err := r.RemoveUser(context.Background(), "nobody"); err != nil || n != 0 {
		t.Fatalf("RemoveUser(nobody) = %d, %v; want 0, nil", n, err)
	}
}

func testRemoveExpired(t *testing.T, b gormsession.Backend) {
	r, ok := b.(gormsession.ExpiredRemover)
	if !ok {
		t.Skip("backend is not an ExpiredRemover")
	}
	now := base.Add(time.Hour)
	past, atNow, future, never := newSession("a"), newSession("a"), newSession("a"), newSession("a")
	past.ExpiresAt = now.Add(-time.Second)
	atNow.ExpiresAt = now
	future.ExpiresAt = now.Add(time.Microsecond)
	never.ExpiresAt = time.Time{}
	save(t, b, past, atNow, future, never)
	n, err := r.RemoveExpired(context.Background(), now)
	if err != nil || n != 2 {
		t.Fatalf("RemoveExpired = %d, %v; want 2 (past and expiring exactly now), nil", n, err)
	}
	all := loadAll(t, b)
	_, hasFuture := all[future.ID]
	_, hasNever := all[never.ID]
	if len(all) != 2 || !hasFuture || !hasNever {
		t.Fatalf("after RemoveExpired: %d left (future %v, never %v), want those two", len(all), hasFuture, hasNever)
	}
}

func testStream(t *testing.T, b gormsession.Backend) {
	st, ok := b.(gormsession.Streamer)
	if !ok {
		t.Skip("backend is not a Streamer")
	}
	now := base.Add(time.Hour)
	atNow, future, never := newSession("a"), newSession("a"), newSession("b")
	atNow.ExpiresAt = now
	future.ExpiresAt = now.Add(time.Microsecond)
	never.ExpiresAt = time.Time{}
	save(t, b, atNow, future, never)
	got := map[string]gormsession.Session{}
	err := st.Stream(context.Background(), now, func(s *gormsession.Session) error {
		got[s.ID] = *s
		return nil
	})
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	if len(got) != 2 {
		t.Fatalf("Stream gave %d sessions, want 2 (the one expiring exactly now is expired)", len(got))
	}
	equal(t, got[future.ID], future)
	equal(t, got[never.ID], never)

	stop := fmt.Errorf("stop")
	calls := 0
	err = st.Stream(context.Background(), now, func(*gormsession.Session) error { calls++; return stop })
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
	save(t, b, s1, s2, s3)
	at := base.Add(3 * time.Hour)
	if err := to.Touch(context.Background(), []string{s1.ID, s2.ID, gormsession.HashToken("x")}, at); err != nil {
		t.Fatalf("Touch: %v", err)
	}
	all := loadAll(t, b)
	if !all[s1.ID].UpdatedAt.Equal(at) || !all[s2.ID].UpdatedAt.Equal(at) {
		t.Errorf("touched sessions have UpdatedAt %v, %v; want %v", all[s1.ID].UpdatedAt, all[s2.ID].UpdatedAt, at)
	}
	if !all[s3.ID].UpdatedAt.Equal(s3.UpdatedAt) {
		t.Errorf("untouched session's UpdatedAt changed to %v", all[s3.ID].UpdatedAt)
	}
	if len(all) != 3 {
		t.Errorf("Touch of an unknown ID created a row: %d sessions", len(all))
	}
}

func testChanges(t *testing.T, b gormsession.Backend) {
	cf, ok := b.(gormsession.ChangeFeed)
	if !ok {
		t.Skip("backend is not a ChangeFeed")
	}
	ctx := context.Background()
	old, fresh, removed := newSession("a"), newSession("a"), newSession("b")
	now := time.Now().UTC().Truncate(time.Microsecond)
	old.UpdatedAt = now.Add(-time.Hour)
	fresh.UpdatedAt = now
	removed.UpdatedAt = now.Add(-time.Hour)
	save(t, b, old, fresh, removed)
	if err := b.Remove(ctx, removed.ID); err != nil {
		t.Fatal(err)
	}
	type change struct {
		s       gormsession.Session
		revoked bool
	}
	var got []change
	err := cf.Changes(ctx, now.Add(-time.Minute), func(s *gormsession.Session, revoked bool) error {
		got = append(got, change{*s, revoked})
		return nil
	})
	if err != nil {
		t.Fatalf("Changes: %v", err)
	}
	seen := map[string]bool{}
	for _, c := range got {
		seen[c.s.ID] = c.revoked
	}
	if _, ok := seen[old.ID]; ok {
		t.Error("Changes reported a session unchanged since before since")
	}
	if rev, ok := seen[fresh.ID]; !ok || rev {
		t.Errorf("Changes: fresh session reported %v (revoked %v), want live", ok, rev)
	}
	if rev, ok := seen[removed.ID]; !ok || !rev {
		t.Errorf("Changes: removed session reported %v (revoked %v), want a removal", ok, rev)
	}
	if len(got) != 2 {
		t.Errorf("Changes reported %d changes, want 2", len(got))
	}
}

func testNoRevive(t *testing.T, b gormsession.Backend) {
	if _, ok := b.(gormsession.ChangeFeed); !ok {
		t.Skip("backend keeps no tombstones (not a ChangeFeed)")
	}
	s := newSession("alice")
	save(t, b, s)
	if err := b.Remove(context.Background(), s.ID); err != nil {
		t.Fatal(err)
	}
	s.Data = []byte("late update")
	if err := b.Save(context.Background(), &s); err != nil {
		t.Fatalf("Save after Remove: %v", err)
	}
	if all := loadAll(t, b); len(all) != 0 {
		t.Fatalf("Save after Remove brought the session back")
	}
	if g, ok := b.(gormsession.Getter); ok {
		if _, found, err := g.Get(context.Background(), s.ID); found || err != nil {
			t.Fatalf("Get after Remove+Save = found %v, err %v", found, err)
		}
	}
}

// describe prints a session for a failure message, with Data abridged.
func describe(s gormsession.Session) string {
	data := s.Data
	if len(data) > 16 {
		data = data[:16]
	}
	return fmt.Sprintf("{ID:%s User:%q Tenant:%q Device:%q Data(%d bytes):%x Created:%v Updated:%v Expires:%v}",
		s.ID, s.UserID, s.TenantID, s.Device, len(s.Data), data, s.CreatedAt, s.UpdatedAt, s.ExpiresAt)
}
