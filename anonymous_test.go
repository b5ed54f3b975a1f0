package gormsession_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
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

// TestAnonymousCacheStaysWithinMaxAnonymousAndCountsEvictions: for small
// and large bounds, every anonymous session just created is resolved from
// memory, no more than MaxAnonymous are held, a full cache holds exactly
// MaxAnonymous, and AnonymousEvictions counts exactly the sessions evicted
// to stay within it: not those revoked or expired. The sizes give the
// cache one shard (1, 2, 10), a few (200, 1000) and the most (2500).
func TestAnonymousCacheStaysWithinMaxAnonymousAndCountsEvictions(t *testing.T) {
	for _, size := range []int{1, 2, 10, 200, 1000, 2500} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			clk := testdb.NewClock(time.Now())
			tdb := newSQLite(t)
			db, c := testdb.Counted(tdb.Open(t))
			m := newManager(t, ownClock{newStore(t, tdb, db)}, gormsession.ManagerOptions{
				MaxAnonymous: size, Now: clk.Now, CleanupInterval: -1,
			})
			// Twice as many as fit, and a few: every part of the cache
			// overflows, however the IDs fall.
			created := 2*size + 16
			var last gormsession.Session
			for i := range created {
				last = create(t, m, gormsession.Attributes{Lifetime: time.Hour})
				c.Reset()
				if _, ok := m.ResolveAnonymous(ctx, last.Token); !ok || c.N() != 0 {
					t.Fatalf("session %d just created does not resolve from memory (ok %v, %d statements)", i, ok, c.N())
				}
				if st := m.Stats(); st.Anonymous > size || st.AnonymousEvictions != int64(i+1-st.Anonymous) {
					t.Fatalf("after %d sessions: %d held, %d evicted; want at most %d held and the rest evicted",
						i+1, st.Anonymous, st.AnonymousEvictions, size)
				}
			}
			st := m.Stats()
			if st.Anonymous != size {
				t.Fatalf("%d held after %d sessions, want %d", st.Anonymous, created, size)
			}
			evicted := st.AnonymousEvictions

			// An update of a resident session reads nothing and is seen.
			c.Reset()
			if _, err := setData(m, ctx, last.ID, []byte("v2")); err != nil || c.N() != 1 {
				t.Fatalf("update of a resident session: %v, %d statements, want 1", err, c.N())
			}
			c.Reset()
			if got, ok := m.ResolveAnonymous(ctx, last.Token); !ok || string(got.Data) != "v2" || c.N() != 0 {
				t.Fatalf("after the update: %q, %v, %d statements", got.Data, ok, c.N())
			}

			// Neither a revocation nor expiry is an eviction.
			if err := m.Revoke(ctx, last.ID); err != nil {
				t.Fatal(err)
			}
			if _, ok := m.ResolveAnonymous(ctx, last.Token); ok {
				t.Fatal("a revoked anonymous session resolves")
			}
			if st := m.Stats(); st.Anonymous != size-1 || st.AnonymousEvictions != evicted {
				t.Fatalf("after a revocation: %d held, %d evicted; want %d and %d", st.Anonymous, st.AnonymousEvictions, size-1, evicted)
			}
			clk.Add(2 * time.Hour)
			if n, err := m.Cleanup(ctx); err != nil || n != size-1 {
				t.Fatalf("Cleanup removed %d (%v), want %d", n, err, size-1)
			}
			if st := m.Stats(); st.Anonymous != 0 || st.AnonymousEvictions != evicted {
				t.Fatalf("after expiry: %d held, %d evicted; want 0 and %d", st.Anonymous, st.AnonymousEvictions, evicted)
			}
		})
	}
}
