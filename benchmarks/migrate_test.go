package benchmarks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"
	"github.com/wader/gormstore/v2"
	"gorm.io/gorm"

	"github.com/gormsession/gormsession"
	"github.com/gormsession/gormsession/gorillastore"
	"github.com/gormsession/gormsession/internal/testdb"
)

// The tests of this file check what docs/migrating.md says about moving
// from wader/gormstore, against wader/gormstore itself, with the guide's
// functions (example_*_test.go).

// migrationEnv is a database with a wader/gormstore table and a gorillastore
// Store on a table of its own, both with the same key.
type migrationEnv struct {
	db    *gorm.DB
	wader *gormstore.Store
	table string // wader's
	store *gorillastore.Store
	m     *gormsession.Manager // the store's
}

func eachMigrationDB(t *testing.T, f func(t *testing.T, e migrationEnv)) {
	for _, d := range databases[:2] {
		t.Run(d.name, func(t *testing.T) {
			db, table := d.open(t, testdb.NewCounter(), false)
			backend, err := gormsession.NewStore(db, gormsession.StoreOptions{TableName: testdb.UniqueName("gs_migrate_")})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Exec(`DROP TABLE IF EXISTS "` + backend.TableName() + `"`) })
			m, err := gormsession.NewManager(context.Background(), backend, gormsession.ManagerOptions{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = m.Close() })
			f(t, migrationEnv{
				db:    db,
				wader: gormstore.NewOptions(db, gormstore.Options{TableName: table}, hashKey),
				table: table,
				store: gorillastore.New(m, hashKey),
				m:     m,
			})
		})
	}
}

// jarClient returns a client of srv with a cookie jar, and a function that
// GETs a path and returns the body, failing the test on a non-200 answer.
func jarClient(t *testing.T, srv *httptest.Server) func(path string) string {
	jar, _ := cookiejar.New(nil)
	c := *srv.Client()
	c.Jar = jar
	return func(path string) string {
		t.Helper()
		resp, err := c.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s: %s", path, resp.Status, body)
		}
		return string(body)
	}
}

// TestHandlersWrittenForWaderWork runs handlers that work with
// wader/gormstore on both stores: a new session saved twice and then with
// sessions.Save, and a session with a cleared ID saved on a request with a
// cookie (wader/gormstore's own TestReuseSessionByName).
func TestHandlersWrittenForWaderWork(t *testing.T) {
	eachMigrationDB(t, func(t *testing.T, e migrationEnv) {
		for _, st := range []sessions.Store{e.wader, e.store} {
			t.Run(fmt.Sprintf("%T", st), func(t *testing.T) {
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					s, _ := st.Get(r, cookieName)
					if r.URL.Query().Get("clear") == "1" {
						s.ID = ""
					}
					n, _ := s.Values["n"].(int)
					s.Values["n"] = n + 1
					if err := s.Save(r, w); err != nil {
						http.Error(w, err.Error(), http.StatusInternalServerError)
						return
					}
					s.Values["again"] = true
					if err := s.Save(r, w); err != nil {
						http.Error(w, err.Error(), http.StatusInternalServerError)
						return
					}
					if err := sessions.Save(r, w); err != nil {
						http.Error(w, err.Error(), http.StatusInternalServerError)
						return
					}
					fmt.Fprint(w, n+1)
				}))
				defer srv.Close()
				get := jarClient(t, srv)
				for i, path := range []string{"/", "/?clear=1", "/?clear=1", "/"} {
					if got := get(path); got != fmt.Sprint(i+1) {
						t.Fatalf("request %d (%s): %q, want %d", i+1, path, got, i+1)
					}
				}
			})
		}
	})
}

// TestWaderCookieGivesNewSessionAndNoError checks what a signed-in user of
// wader/gormstore meets after the switch, with the same key: a new session
// and no error from Get, as wader/gormstore itself gives for a cookie it
// cannot use, the reason given to CookieRejected, and a Save that replaces
// the cookie.
func TestWaderCookieGivesNewSessionAndNoError(t *testing.T) {
	eachMigrationDB(t, func(t *testing.T, e migrationEnv) {
		cookie := newSession(t, gorillaSubject{e.wader})
		var reason error
		e.store.CookieRejected = func(_ *http.Request, err error) { reason = err }
		r := baseRequest(cookie)
		s, err := e.store.Get(r, cookieName)
		if err != nil || s == nil || !s.IsNew || len(s.Values) != 0 {
			t.Fatalf("Get with a wader cookie: %v, %v; want a new session and no error", s, err)
		}
		if !errors.Is(reason, gormsession.ErrInvalidToken) {
			t.Fatalf("reason %v; want one wrapping gormsession.ErrInvalidToken (a signed cookie that is no token)", reason)
		}
		w := newWriter()
		s.Values["user"] = "alice"
		if err := s.Save(r, w); err != nil {
			t.Fatalf("Save of the new session: %v", err)
		}
		if got := w.h.Values("Set-Cookie"); len(got) != 1 {
			t.Fatalf("Set-Cookie %q, want one", got)
		}
	})
}

// waderEraHandler is a handler written for wader/gormstore, whose Get
// never fails: any Get error is a 500. It counts a session's visits.
func waderEraHandler(store sessions.Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := store.Get(r, cookieName)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		n, _ := s.Values["n"].(int)
		s.Values["n"] = n + 1
		if err := s.Save(r, w); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, n+1)
	})
}

// TestWaderEraAppAnswersAlikeOnBothStores runs a handler written for
// wader/gormstore on wader/gormstore and, unchanged, on gorillastore, with
// the cookies returning visitors hold after the switch: wader/gormstore's
// own (live, expired, tampered), one signed with a key no longer used, and
// gorillastore's own expired and revoked ones. Every answer is a 200 that
// starts a new session with a new cookie, on both stores alike.
func TestWaderEraAppAnswersAlikeOnBothStores(t *testing.T) {
	eachMigrationDB(t, func(t *testing.T, e migrationEnv) {
		waderSrv := httptest.NewServer(waderEraHandler(e.wader))
		defer waderSrv.Close()
		ourSrv := httptest.NewServer(waderEraHandler(e.store))
		defer ourSrv.Close()

		visit := func(srv *httptest.Server, cookie string) (int, string, bool) {
			t.Helper()
			req, _ := http.NewRequest("GET", srv.URL, nil)
			if cookie != "" {
				req.Header.Set("Cookie", cookie)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(body), len(resp.Cookies()) == 1
		}
		first := func(srv *httptest.Server) string {
			t.Helper()
			req, _ := http.NewRequest("GET", srv.URL, nil)
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			c := resp.Cookies()[0]
			return c.Name + "=" + c.Value
		}

		waderLive := first(waderSrv)
		waderExpired := first(waderSrv)
		// Expire the row behind waderExpired, as time would.
		var id string
		if err := securecookie.DecodeMulti(cookieName, strings.TrimPrefix(waderExpired, cookieName+"="), &id,
			securecookie.CodecsFromPairs(hashKey)...); err != nil {
			t.Fatal(err)
		}
		if err := e.db.Table(e.table).Where("id = ?", id).Update("expires_at", time.Now().Add(-time.Hour)).Error; err != nil {
			t.Fatal(err)
		}
		tampered := []byte(waderLive)
		tampered[len(tampered)/2] ^= 0x01
		retired, err := securecookie.New(securecookie.GenerateRandomKey(32), nil).Encode(cookieName, id)
		if err != nil {
			t.Fatal(err)
		}
		oursRevoked := first(ourSrv)
		s, err := e.store.Get(baseRequest(oursRevoked), cookieName)
		if err != nil || s.IsNew {
			t.Fatalf("our own cookie: %v, new %v", err, s.IsNew)
		}
		if err := e.m.Revoke(context.Background(), s.ID); err != nil {
			t.Fatal(err)
		}

		for _, tt := range []struct{ name, cookie string }{
			{"wader/gormstore's live cookie", waderLive},
			{"wader/gormstore's expired cookie", waderExpired},
			{"tampered", string(tampered)},
			{"another key", cookieName + "=" + retired},
			{"gorillastore's revoked cookie", oursRevoked},
		} {
			for _, srv := range []*httptest.Server{waderSrv, ourSrv} {
				if tt.name == "wader/gormstore's live cookie" && srv == waderSrv {
					continue // its own live session, which it continues
				}
				status, body, set := visit(srv, tt.cookie)
				if status != http.StatusOK || body != "1" || !set {
					t.Errorf("%s on %s: %d %q, cookie set %v; want 200, a new session and its cookie",
						tt.name, map[bool]string{true: "wader/gormstore", false: "gorillastore"}[srv == waderSrv], status, body, set)
				}
			}
		}
	})
}

// TestMovingOldSessions runs the guide's middleware: a user signed in with
// wader/gormstore, or holding a CookieStore cookie, keeps their values after
// the switch.
func TestMovingOldSessions(t *testing.T) {
	eachMigrationDB(t, func(t *testing.T, e migrationEnv) {
		oldCodecs := securecookie.CodecsFromPairs(hashKey)
		cookieStore := sessions.NewCookieStore(hashKey)
		tests := []struct {
			name      string
			old       subject
			oldValues func(r *http.Request) map[any]any
		}{
			{"wader", gorillaSubject{e.wader}, func(r *http.Request) map[any]any {
				return waderValues(e.db, e.table, oldCodecs, r, cookieName)
			}},
			{"cookiestore", gorillaSubject{cookieStore}, func(r *http.Request) map[any]any {
				return cookieStoreValues(cookieStore, r, cookieName)
			}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				srv := httptest.NewServer(moveOld(e.store, cookieName, tt.oldValues, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					s, _ := e.store.Get(r, cookieName)
					fmt.Fprintf(w, "%v %v %v", s.Values["user"], s.Values["role"], s.Values["visits"])
				})))
				defer srv.Close()
				get := func(cookie *http.Cookie, header string) (string, []*http.Cookie) {
					t.Helper()
					req, _ := http.NewRequest("GET", srv.URL, nil)
					if cookie != nil {
						req.AddCookie(cookie)
					} else {
						req.Header.Set("Cookie", header)
					}
					resp, err := srv.Client().Do(req)
					if err != nil {
						t.Fatal(err)
					}
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					return string(body), resp.Cookies()
				}
				body, moved := get(nil, newSession(t, tt.old))
				if body != "alice admin 12" {
					t.Fatalf("first request with the old cookie: %q", body)
				}
				if len(moved) != 1 || moved[0].Name != cookieName {
					t.Fatalf("cookies set: %v, want the moved session's", moved)
				}
				// The next request carries only the new cookie.
				if body, set := get(moved[0], ""); body != "alice admin 12" || len(set) != 0 {
					t.Fatalf("request with the moved session's cookie: %q, cookies %v", body, set)
				}
			})
		}
	})
}

// TestSkipMigrateWithoutTableFailsAtStart checks the guide's note on
// wader/gormstore's SkipCreateTable: with SkipMigrate and no table, the
// error comes from NewManager, at start, not from the first request.
func TestSkipMigrateWithoutTableFailsAtStart(t *testing.T) {
	for _, d := range databases[:2] {
		t.Run(d.name, func(t *testing.T) {
			db, _ := d.open(t, testdb.NewCounter(), false)
			backend, err := gormsession.NewStore(db, gormsession.StoreOptions{
				TableName:   testdb.UniqueName("gs_missing_"),
				SkipMigrate: true,
			})
			if err != nil {
				t.Fatalf("NewStore with SkipMigrate: %v; want no statement and no error", err)
			}
			m, err := gormsession.NewManager(context.Background(), backend, gormsession.ManagerOptions{})
			if err == nil {
				_ = m.Close()
				t.Fatal("NewManager on a missing table: no error")
			}
		})
	}
}
