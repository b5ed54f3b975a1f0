package gorillastore_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gorilla/sessions"

	"github.com/gormsession/gormsession"
	"github.com/gormsession/gormsession/gorillastore"
)

// exchange serves one request to st that carries the cookie "name=cookie"
// (none when cookie is ""): it gets the session, lets change modify it and
// saves it. It returns the session, the value of the cookie the response
// sets ("" for none) and Save's error.
func exchange(t *testing.T, st *gorillastore.Store, name, cookie string, change func(*sessions.Session)) (*sessions.Session, string, error) {
	t.Helper()
	r := httptest.NewRequest("GET", "/", nil)
	if cookie != "" {
		r.AddCookie(&http.Cookie{Name: name, Value: cookie})
	}
	w := httptest.NewRecorder()
	s, _ := st.Get(r, name)
	if change != nil {
		change(s)
	}
	err := s.Save(r, w)
	var set string
	for _, c := range w.Result().Cookies() {
		if c.Name == name {
			set = c.Value
		}
	}
	return s, set, err
}

func setValue(k string, v any) func(*sessions.Session) {
	return func(s *sessions.Session) { s.Values[k] = v }
}

// encryptingStore returns a Store on e's Manager whose cookies are
// encrypted as well as signed: every encoding of a token then gives a
// different value (a random IV), so a cookie value sent again is told apart
// from one encoded again. Its clock for the age of issued cookies is e's.
func encryptingStore(e *env, keyPairs ...[]byte) *gorillastore.Store {
	if len(keyPairs) == 0 {
		keyPairs = [][]byte{key(32), key(32)}
	}
	st := gorillastore.New(e.m, keyPairs...)
	gorillastore.SetCookieClock(st, e.clock.Now)
	return st
}

// TestSaveSendsTheIssuedCookieAgain: a save of a session whose request
// carries the cookie this Store issued for it, shortly before, sets that
// same cookie value again, whether the values changed (one statement) or
// not (no statement).
func TestSaveSendsTheIssuedCookieAgain(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		e := newEnv(t, tdb, gormsession.ManagerOptions{})
		st := encryptingStore(e)
		// Start just after a step of the default 30-day lifetime begins, so
		// that the saves below stay within one step of the sliding expiry.
		lifetime, step := 30*24*time.Hour, 30*24*time.Hour/64
		e.clock.Set(e.clock.Now().Add(lifetime).Truncate(step).Add(step).Add(-lifetime).Add(time.Second))
		created, c0, err := exchange(t, st, "sid", "", setValue("user", "alice"))
		if err != nil || c0 == "" {
			t.Fatalf("create: %q, %v", c0, err)
		}
		if got, ok := gorillastore.IssuedCookie(st, created.ID); !ok || got != c0 {
			t.Fatalf("issued cookie of the new session: %q, %v; want the one set", got, ok)
		}
		// The first save puts the expiry on the grid of steps: one statement.
		if _, c, err := exchange(t, st, "sid", c0, nil); err != nil || c != c0 {
			t.Fatalf("first save: %v", err)
		}

		e.clock.Add(time.Second)
		before := e.stmts.N()
		s, c1, err := exchange(t, st, "sid", c0, nil)
		if err != nil || s.ID != created.ID {
			t.Fatalf("unchanged save: %v (ID %s, want %s)", err, s.ID, created.ID)
		}
		if c1 != c0 {
			t.Fatalf("unchanged save set %q, want the issued cookie %q again", c1, c0)
		}
		if n := e.stmts.N() - before; n != 0 {
			t.Fatalf("unchanged save ran %d statements, want 0", n)
		}

		before = e.stmts.N()
		_, c2, err := exchange(t, st, "sid", c0, setValue("visits", 2))
		if err != nil || c2 != c0 {
			t.Fatalf("save of a change: %q, %v; want the issued cookie again", c2, err)
		}
		if n := e.stmts.N() - before; n != 1 {
			t.Fatalf("save of a change ran %d statements, want 1", n)
		}
		r := httptest.NewRequest("GET", "/", nil)
		r.AddCookie(&http.Cookie{Name: "sid", Value: c0})
		if got, err := st.New(r, "sid"); err != nil || got.Values["visits"] != 2 || got.Values["user"] != "alice" {
			t.Fatalf("read back: %v, %v", got.Values, err)
		}
	})
}

// TestNewSessionSavedTwiceSetsOneCookieValue: the second save of a new
// session in its own request finds the cookie the first one set and sends
// it again.
func TestNewSessionSavedTwiceSetsOneCookieValue(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		e := newEnv(t, tdb, gormsession.ManagerOptions{})
		st := encryptingStore(e)
		r := httptest.NewRequest("GET", "/", nil)
		w := httptest.NewRecorder()
		s, _ := st.Get(r, "sid")
		s.Values["a"] = 1
		if err := s.Save(r, w); err != nil {
			t.Fatal(err)
		}
		s.Values["b"] = 2
		if err := s.Save(r, w); err != nil {
			t.Fatal(err)
		}
		cookies := w.Result().Cookies()
		if len(cookies) != 2 || cookies[0].Value != cookies[1].Value {
			t.Fatalf("cookies %v, want two with the same value", cookies)
		}
	})
}

// TestIssuedCookieIsReplacedAfterAStep: a cookie is sent again only within
// the step of the sliding expiry it was issued in (a 64th of the lifetime,
// at most a minute); a later save encodes a fresh one, which is then the
// one sent again. The older cookie keeps working.
func TestIssuedCookieIsReplacedAfterAStep(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		e := newEnv(t, tdb, gormsession.ManagerOptions{})
		st := encryptingStore(e)
		// A lifetime of 640 s: steps of 10 s.
		st.MaxAge(640)
		created, c0, err := exchange(t, st, "sid", "", setValue("user", "alice"))
		if err != nil {
			t.Fatal(err)
		}
		e.clock.Add(5 * time.Second)
		if _, c, err := exchange(t, st, "sid", c0, nil); err != nil || c != c0 {
			t.Fatalf("save 5 s later: %v; new cookie %v, want the issued one", err, c != c0)
		}
		e.clock.Add(6 * time.Second)
		s, c1, err := exchange(t, st, "sid", c0, nil)
		if err != nil || c1 == "" || c1 == c0 || s.ID != created.ID {
			t.Fatalf("save 11 s later: %v; want a fresh cookie for the same session", err)
		}
		if _, c, err := exchange(t, st, "sid", c1, nil); err != nil || c != c1 {
			t.Fatalf("save with the fresh cookie: %v; want it sent again", err)
		}
		// The older cookie still names the session: decoded, and answered
		// with a cookie encoded anew.
		s, c2, err := exchange(t, st, "sid", c0, setValue("n", 1))
		if err != nil || s.ID != created.ID || c2 == "" || c2 == c0 || c2 == c1 {
			t.Fatalf("save with the older cookie: %v", err)
		}

		// The default lifetime of 30 days: a cookie is sent again for at
		// most a minute.
		st.MaxAge(30 * 86400)
		_, c3, err := exchange(t, st, "sid", c2, nil)
		if err != nil || c3 != c2 {
			t.Fatalf("save within the minute: %v", err)
		}
		e.clock.Add(time.Minute)
		if _, c4, err := exchange(t, st, "sid", c2, nil); err != nil || c4 == c2 {
			t.Fatalf("save a minute later: %v; want a fresh cookie", err)
		}
	})
}

// TestCookieOfAnotherInstanceIsDecoded: a cookie this Store did not issue
// (another instance's, sharing the database and the keys) is decoded and
// answered with one this Store issues, which it then sends again.
func TestCookieOfAnotherInstanceIsDecoded(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		e := newEnv(t, tdb, gormsession.ManagerOptions{})
		k := [][]byte{key(32), key(32)}
		one := encryptingStore(e, k...)
		other := gorillastore.New(e.newManager(t, gormsession.ManagerOptions{}), k...)
		gorillastore.SetCookieClock(other, e.clock.Now)

		created, c0, err := exchange(t, one, "sid", "", setValue("user", "alice"))
		if err != nil {
			t.Fatal(err)
		}
		s, c1, err := exchange(t, other, "sid", c0, setValue("user", "bob"))
		if err != nil || s.ID != created.ID || c1 == "" || c1 == c0 {
			t.Fatalf("other instance: %v (ID %s), want the session and a cookie of its own", err, s.ID)
		}
		if _, c, err := exchange(t, other, "sid", c1, nil); err != nil || c != c1 {
			t.Fatalf("other instance, its own cookie: %v; want it sent again", err)
		}
		if got, _, err := exchange(t, other, "sid", c0, nil); err != nil || got.Values["user"] != "bob" {
			t.Fatalf("other instance, first cookie again: %v, %v", got.Values, err)
		}
	})
}

// TestRotatedKeysIssueANewCookie: once the Store's codecs are replaced (a
// key rotation), a save encodes the cookie with the new first key even
// when the request carries the cookie issued before.
func TestRotatedKeysIssueANewCookie(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		e := newEnv(t, tdb, gormsession.ManagerOptions{})
		oldHash, newHash := key(32), key(32)
		st := encryptingStore(e, oldHash)
		created, c0, err := exchange(t, st, "sid", "", setValue("user", "alice"))
		if err != nil {
			t.Fatal(err)
		}
		st.Codecs = gorillastore.New(e.m, newHash, nil, oldHash).Codecs
		s, c1, err := exchange(t, st, "sid", c0, nil)
		if err != nil || s.ID != created.ID || c1 == "" || c1 == c0 {
			t.Fatalf("save after the rotation: %v; want a new cookie", err)
		}
		newOnly := gorillastore.New(e.m, newHash)
		r := httptest.NewRequest("GET", "/", nil)
		r.AddCookie(&http.Cookie{Name: "sid", Value: c1})
		if got, err := newOnly.New(r, "sid"); err != nil || got.ID != created.ID {
			t.Fatalf("the new key does not read the new cookie: %v", err)
		}
	})
}

// TestCopiesOfTheIssuedCookieThatDoNotMatchAreRefused: only the exact
// value issued for the session, under its name, is sent again; a tampered
// copy, or the value under another name, gives ErrNoToken and writes
// nothing.
func TestCopiesOfTheIssuedCookieThatDoNotMatchAreRefused(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		e := newEnv(t, tdb, gormsession.ManagerOptions{})
		st := encryptingStore(e)
		victim, c0, err := exchange(t, st, "sid", "", setValue("user", "victim"))
		if err != nil {
			t.Fatal(err)
		}
		flip := []byte(c0)
		if flip[10] == 'A' {
			flip[10] = 'B'
		} else {
			flip[10] = 'A'
		}
		tests := []struct{ name, cookieName, value string }{
			{"tampered", "sid", string(flip)},
			{"truncated", "sid", c0[:len(c0)-1]},
			{"under another name", "other", c0},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				before := e.stmts.N()
				r := httptest.NewRequest("GET", "/", nil)
				r.AddCookie(&http.Cookie{Name: tt.cookieName, Value: tt.value})
				w := httptest.NewRecorder()
				s := sessions.NewSession(st, tt.cookieName)
				s.ID = victim.ID
				s.Values["user"] = "mallory"
				if err := st.Save(r, w, s); !errors.Is(err, gorillastore.ErrNoToken) {
					t.Fatalf("Save: %v, want ErrNoToken", err)
				}
				if len(w.Result().Cookies()) != 0 {
					t.Fatal("a refused Save set a cookie")
				}
				if n := e.stmts.N() - before; n != 0 {
					t.Fatalf("a refused Save ran %d statements", n)
				}
			})
		}
		if got, _, err := exchange(t, st, "sid", c0, nil); err != nil || got.Values["user"] != "victim" {
			t.Fatalf("the victim's session: %v, %v", got.Values, err)
		}
	})
}

// TestDeleteForgetsTheIssuedCookie: deleting a session forgets the cookie
// issued for it, and its cookie can neither be sent again nor bring the
// session back; neither can a session revoked or expired behind the
// Store's back.
func TestDeleteForgetsTheIssuedCookie(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		e := newEnv(t, tdb, gormsession.ManagerOptions{})
		st := encryptingStore(e)
		created, c0, err := exchange(t, st, "sid", "", setValue("user", "alice"))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := exchange(t, st, "sid", c0, func(s *sessions.Session) { s.Options.MaxAge = -1 }); err != nil {
			t.Fatalf("delete: %v", err)
		}
		if _, ok := gorillastore.IssuedCookie(st, created.ID); ok {
			t.Fatal("the deleted session's cookie is still remembered")
		}
		r := httptest.NewRequest("GET", "/", nil)
		r.AddCookie(&http.Cookie{Name: "sid", Value: c0})
		w := httptest.NewRecorder()
		s := sessions.NewSession(st, "sid")
		s.ID = created.ID
		s.Values["user"] = "alice"
		if err := st.Save(r, w, s); !errors.Is(err, gormsession.ErrNotFound) {
			t.Fatalf("save of the deleted session: %v, want ErrNotFound", err)
		}
		if len(w.Result().Cookies()) != 0 {
			t.Fatal("the save of a deleted session set a cookie")
		}

		for _, end := range []string{"revoked", "expired"} {
			t.Run(end, func(t *testing.T) {
				created, c, err := exchange(t, st, "sid", "", setValue("user", "alice"))
				if err != nil {
					t.Fatal(err)
				}
				if end == "revoked" {
					if err := e.m.Revoke(t.Context(), created.ID); err != nil {
						t.Fatal(err)
					}
				} else {
					st.MaxAge(60)
					defer st.MaxAge(30 * 86400)
					if _, _, err := exchange(t, st, "sid", c, setValue("short", true)); err != nil {
						t.Fatal(err)
					}
					e.clock.Add(2 * time.Minute)
				}
				r := httptest.NewRequest("GET", "/", nil)
				r.AddCookie(&http.Cookie{Name: "sid", Value: c})
				w := httptest.NewRecorder()
				s := sessions.NewSession(st, "sid")
				s.ID = created.ID
				if err := st.Save(r, w, s); !errors.Is(err, gormsession.ErrNotFound) {
					t.Fatalf("save: %v, want ErrNotFound", err)
				}
				if len(w.Result().Cookies()) != 0 {
					t.Fatal("the failed save set a cookie")
				}
			})
		}
	})
}
