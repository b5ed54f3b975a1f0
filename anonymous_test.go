package gormsession_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gormsession/gormsession"
	"github.com/gormsession/gormsession/internal/testdb"
)

// TestAnonymousSessionsNeverAuthenticate: a session without a user (what
// gorillastore creates for a visitor) is refused by everything that means
// "signed in", on this instance and on another, and found only by
// ResolveAnonymous.
func TestAnonymousSessionsNeverAuthenticate(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		ctx := context.Background()
		a, b := twoInstances(t, tdb, gormsession.ManagerOptions{})
		anon := create(t, a, gormsession.Attributes{Data: []byte("visits=3")})
		for name, m := range map[string]*gormsession.Manager{"creator": a, "other instance": b} {
			if _, ok := m.Resolve(context.Background(), anon.Token); ok {
				t.Fatalf("%s: Resolve accepted an anonymous token", name)
			}
			if _, ok := m.Resolve(ctx, anon.Token); ok {
				t.Fatalf("%s: ResolveContext accepted an anonymous token", name)
			}
			if _, err := m.Rotate(ctx, anon.Token); err == nil {
				t.Fatalf("%s: Rotate accepted an anonymous token", name)
			}
			handler := gormsession.Middleware(m, gormsession.CookieOptions{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if _, ok := gormsession.FromContext(r.Context()); ok {
					w.WriteHeader(http.StatusOK)
					return
				}
				w.WriteHeader(http.StatusUnauthorized)
			}))
			for _, via := range []string{"bearer", "cookie"} {
				r := httptest.NewRequest(http.MethodGet, "/", nil)
				if via == "bearer" {
					r.Header.Set("Authorization", "Bearer "+anon.Token)
				} else {
					r.AddCookie(&http.Cookie{Name: gormsession.DefaultCookieName, Value: anon.Token})
				}
				if _, src := m.ResolveRequest(r, gormsession.DefaultCookieName); src != gormsession.SourceNone {
					t.Fatalf("%s: ResolveRequest accepted an anonymous token as %s", name, via)
				}
				w := httptest.NewRecorder()
				handler.ServeHTTP(w, r)
				if w.Code != http.StatusUnauthorized {
					t.Fatalf("%s: Middleware signed in an anonymous token as %s", name, via)
				}
			}
			got, ok := m.ResolveAnonymous(ctx, anon.Token)
			if !ok || string(got.Data) != "visits=3" || got.UserID != "" {
				t.Fatalf("%s: ResolveAnonymous = %+v, %v; want the visitor's session", name, got, ok)
			}
		}
		// And the other way round: a signed-in token is not anonymous.
		user := create(t, a, gormsession.Attributes{UserID: "alice"})
		if _, ok := b.ResolveAnonymous(ctx, user.Token); ok {
			t.Fatal("ResolveAnonymous accepted a signed-in token")
		}
		if n := len(a.ListUser("")); n != 0 {
			t.Fatalf("ListUser(\"\") lists %d anonymous sessions", n)
		}
	})
}

// TestAnonymousSessionsStayBounded: only MaxAnonymous anonymous sessions are
// resident; an evicted one is read back by ID when used, and none is loaded
// at start.
func TestAnonymousSessionsStayBounded(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		ctx := context.Background()
		db, c := testdb.Counted(tdb.Open(t))
		opts := gormsession.ManagerOptions{MaxAnonymous: 50, SyncInterval: -1}
		m := newManager(t, newStore(t, tdb, db), opts)
		signedIn := create(t, m, gormsession.Attributes{UserID: "alice"})
		var visitors []gormsession.Session
		for range 500 {
			visitors = append(visitors, create(t, m, gormsession.Attributes{Lifetime: time.Hour}))
		}
		if n := resident(m); n != 51 {
			t.Fatalf("%d sessions resident after 500 visitors, want 50 anonymous and 1 signed in", n)
		}
		first := visitors[0]
		c.Reset()
		if _, ok := m.ResolveAnonymous(ctx, first.Token); !ok {
			t.Fatal("an evicted anonymous session does not resolve")
		}
		if n := c.N(); n != 1 {
			t.Fatalf("reading back an evicted anonymous session ran %d statements, want 1", n)
		}
		c.Reset()
		if _, ok := m.ResolveAnonymous(ctx, first.Token); !ok || c.N() != 0 {
			t.Fatalf("the session read back is not resident (%d statements)", c.N())
		}
		if _, err := setData(m, ctx, visitors[1].ID, []byte("x")); err != nil {
			t.Fatalf("Update of an evicted anonymous session: %v", err)
		}
		if err := m.Revoke(ctx, visitors[2].ID); err != nil {
			t.Fatal(err)
		}
		if _, ok := m.ResolveAnonymous(ctx, visitors[2].Token); ok {
			t.Fatal("a revoked anonymous session resolves")
		}
		_ = m.Close()

		restarted := newManager(t, newStore(t, tdb, nil), opts)
		if n := resident(restarted); n != 1 {
			t.Fatalf("a restart loaded %d sessions, want only the signed-in one", n)
		}
		mustResolve(t, restarted, signedIn.Token)
		if got, ok := restarted.ResolveAnonymous(ctx, visitors[1].Token); !ok || string(got.Data) != "x" {
			t.Fatalf("after a restart the visitor's session is %+v, %v", got, ok)
		}
	})
}

// TestOtherInstancesVisitorsAreNotPulledIn: the change feed keeps resident
// anonymous sessions up to date but does not fill memory with the
// visitors of other instances.
func TestOtherInstancesVisitorsAreNotPulledIn(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		ctx := context.Background()
		a, b := twoInstances(t, tdb, gormsession.ManagerOptions{SyncInterval: time.Hour})
		seen := create(t, a, gormsession.Attributes{Data: []byte("v1")})
		if _, ok := b.ResolveAnonymous(ctx, seen.Token); !ok {
			t.Fatal("B does not find A's visitor")
		}
		for range 20 {
			create(t, a, gormsession.Attributes{})
		}
		if _, err := setData(a, ctx, seen.ID, []byte("v2")); err != nil {
			t.Fatal(err)
		}
		if err := b.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if n := b.Stats().Anonymous; n != 1 {
			t.Fatalf("after a poll B holds %d anonymous sessions, want only the one it served", n)
		}
		if got, _ := b.ResolveAnonymous(ctx, seen.Token); string(got.Data) != "v2" {
			t.Fatalf("B's resident visitor has %q after the poll, want v2", got.Data)
		}
		// And a resident visitor revoked on A is refused on B after a poll.
		if err := a.Revoke(ctx, seen.ID); err != nil {
			t.Fatal(err)
		}
		if err := b.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if _, ok := b.ResolveAnonymous(ctx, seen.Token); ok {
			t.Fatal("a visitor revoked on A still resolves on B after a poll")
		}
	})
}
