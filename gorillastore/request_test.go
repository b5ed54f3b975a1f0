package gorillastore_test

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gorilla/sessions"

	"github.com/gormsession/gormsession"
	"github.com/gormsession/gormsession/gorillastore"
)

// fail answers 500 with what went wrong, as a handler that treats a failed
// Save as a server error does.
func fail(w http.ResponseWriter, what string, err error) {
	http.Error(w, fmt.Sprintf("%s: %v", what, err), http.StatusInternalServerError)
}

// TestNewSessionSavedTwiceInOneRequest is the reproducer of a new session
// that could be saved only once per request: the registry puts the plain
// Store back on the session, and the request carries no cookie yet. The
// handler saves the session, changes it, saves it again, and then saves
// every session of the request as middleware does at the end.
func TestNewSessionSavedTwiceInOneRequest(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		e := newEnv(t, tdb, gormsession.ManagerOptions{})
		st := gorillastore.New(e.m, key(32))
		srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s, _ := st.Get(r, "sid")
			if !s.IsNew {
				fmt.Fprintf(w, "%v %v %v", s.Values["a"], s.Values["b"], s.Values["c"])
				return
			}
			s.Values["a"] = 1
			if err := s.Save(r, w); err != nil {
				fail(w, "first save", err)
				return
			}
			s.Values["b"] = 2
			if err := s.Save(r, w); err != nil {
				fail(w, "second save", err)
				return
			}
			again, _ := st.Get(r, "sid")
			again.Values["c"] = 3
			if err := sessions.Save(r, w); err != nil {
				fail(w, "sessions.Save", err)
				return
			}
		}))
		b := newBrowser(t, srv)
		if _, err := b.text("/"); err != nil {
			t.Fatal(err)
		}
		if got, err := b.text("/"); err != nil || got != "1 2 3" {
			t.Fatalf("next request: %q, %v; want the values of all three saves", got, err)
		}
		if n := e.rows(t); n != 1 {
			t.Fatalf("%d rows, want 1: every save after the first updates the session it created", n)
		}
	})
}

// TestSeveralNamedNewSessionsSavedTwiceInOneRequest saves two new sessions
// of different names in one request, each one twice through the registry.
func TestSeveralNamedNewSessionsSavedTwiceInOneRequest(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		e := newEnv(t, tdb, gormsession.ManagerOptions{})
		st := gorillastore.New(e.m, key(32))
		srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			a, _ := st.Get(r, "a")
			bs, _ := st.Get(r, "b")
			if !a.IsNew || !bs.IsNew {
				fmt.Fprintf(w, "%v %v|%v %v", a.Values["n"], a.Values["m"], bs.Values["n"], bs.Values["m"])
				return
			}
			a.Values["n"] = "a1"
			bs.Values["n"] = "b1"
			if err := sessions.Save(r, w); err != nil {
				fail(w, "first sessions.Save", err)
				return
			}
			a.Values["m"] = "a2"
			if err := a.Save(r, w); err != nil {
				fail(w, "save a", err)
				return
			}
			bs.Values["m"] = "b2"
			if err := sessions.Save(r, w); err != nil {
				fail(w, "second sessions.Save", err)
				return
			}
		}))
		b := newBrowser(t, srv)
		if _, err := b.text("/"); err != nil {
			t.Fatal(err)
		}
		if got, err := b.text("/"); err != nil || got != "a1 a2|b1 b2" {
			t.Fatalf("next request: %q, %v", got, err)
		}
		if n := e.rows(t); n != 2 {
			t.Fatalf("%d rows, want 2", n)
		}
	})
}

// TestSeveralSavesAndADeleteInOneRequest saves an existing session, deletes
// it, then saves a new one twice in the same request: the way to give a
// client a new token. The old token is dead, the new one holds the last
// values, and no other row is left.
func TestSeveralSavesAndADeleteInOneRequest(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		e := newEnv(t, tdb, gormsession.ManagerOptions{})
		st := gorillastore.New(e.m, key(32))
		srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s, _ := st.Get(r, "sid")
			switch r.URL.Query().Get("step") {
			case "start":
				s.Values["user"] = "anonymous"
				if err := s.Save(r, w); err != nil {
					fail(w, "save", err)
				}
			case "signin":
				s.Values["seen"] = true
				if err := s.Save(r, w); err != nil {
					fail(w, "save before delete", err)
					return
				}
				s.Options.MaxAge = -1
				if err := s.Save(r, w); err != nil {
					fail(w, "delete", err)
					return
				}
				s.Options.MaxAge = 3600
				s.Values = map[any]any{"user": "alice"}
				if err := s.Save(r, w); err != nil {
					fail(w, "save of the new session", err)
					return
				}
				s.Values["role"] = "admin"
				if err := s.Save(r, w); err != nil {
					fail(w, "second save of the new session", err)
					return
				}
				if err := sessions.Save(r, w); err != nil {
					fail(w, "sessions.Save", err)
				}
			default:
				fmt.Fprintf(w, "%v %v %v", s.IsNew, s.Values["user"], s.Values["role"])
			}
		}))
		b := newBrowser(t, srv)
		if _, err := b.text("/?step=start"); err != nil {
			t.Fatal(err)
		}
		oldCookie := "sid=" + b.cookie("sid").Value
		if _, err := b.text("/?step=signin"); err != nil {
			t.Fatal(err)
		}
		if got, err := b.text("/"); err != nil || got != "false alice admin" {
			t.Fatalf("after sign-in: %q, %v", got, err)
		}
		if got, err := b.textWithCookie("/", oldCookie); err != nil || got != "true <nil> <nil>" {
			t.Fatalf("the old cookie: %q, %v; want a new session", got, err)
		}
		if n := e.rows(t); n != 1 {
			t.Fatalf("%d rows, want 1", n)
		}
	})
}

// TestClearedIDReusesTheCookiesSession pins the reuse of the session that
// the request's cookie names when a session with no ID is saved, as
// wader/gormstore does: no second session, and the first one is not left
// valid behind it.
func TestClearedIDReusesTheCookiesSession(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		e := newEnv(t, tdb, gormsession.ManagerOptions{})
		st := gorillastore.New(e.m, key(32))
		srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			q := r.URL.Query()
			var s *sessions.Session
			switch q.Get("via") {
			case "new": // the store's New, no registry
				s, _ = st.New(r, "sid")
			case "hand": // built by hand, as some middleware does
				s = sessions.NewSession(st, "sid")
				s.Options = &sessions.Options{Path: "/", MaxAge: 3600}
			default:
				s, _ = st.Get(r, "sid")
			}
			s.ID = ""
			if v := q.Get("v"); v != "" {
				s.Values["v"] = v
			}
			if q.Get("delete") == "1" {
				s.Options.MaxAge = -1
			}
			if err := s.Save(r, w); err != nil {
				fail(w, "save", err)
				return
			}
			if q.Get("twice") == "1" {
				s.ID = ""
				s.Values["twice"] = "yes"
				if err := s.Save(r, w); err != nil {
					fail(w, "second save", err)
					return
				}
			}
			fmt.Fprint(w, s.ID)
		}))
		b := newBrowser(t, srv)
		first, err := b.text("/?v=1&twice=1")
		if err != nil || !gormsession.ValidID(first) {
			t.Fatalf("first request: %q, %v", first, err)
		}
		for _, via := range []string{"registry", "new", "hand"} {
			id, err := b.text("/?v=" + via + "&via=" + via)
			if err != nil || id != first {
				t.Fatalf("save with a cleared ID via %s: session %q, %v; want the cookie's session %s", via, id, err, first)
			}
		}
		if n := e.rows(t); n != 1 {
			t.Fatalf("%d rows, want 1", n)
		}
		if s, ok := e.m.Get(first); !ok || len(s.Data) == 0 {
			t.Fatal("the reused session is gone")
		}
		vals, err := b.values(st, "sid")
		if err != nil || vals["v"] != "hand" || vals["twice"] != nil {
			t.Fatalf("values after the last save: %v, %v; want those of that save only", vals, err)
		}

		// Deleting a session with a cleared ID deletes the cookie's session.
		if _, err := b.text("/?delete=1&via=hand"); err != nil {
			t.Fatal(err)
		}
		if _, ok := e.m.Get(first); ok {
			t.Fatal("the cookie's session outlived a delete of a session with a cleared ID")
		}
		if n := e.rows(t); n != 0 {
			t.Fatalf("%d rows after the delete, want 0", n)
		}
	})
}

// TestCopiedSessionSavesInTheSameRequest saves, in the request that created
// a session, copies of it that do not carry what the original carried: a
// struct copy, and a session built by hand with the same name and ID.
func TestCopiedSessionSavesInTheSameRequest(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		e := newEnv(t, tdb, gormsession.ManagerOptions{})
		hashKey := key(32)
		st := gorillastore.New(e.m, hashKey)
		other := gorillastore.New(e.m, hashKey)
		srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s, _ := st.Get(r, "sid")
			if !s.IsNew {
				fmt.Fprintf(w, "%v %v", s.Values["copy"], s.Values["hand"])
				return
			}
			if err := s.Save(r, w); err != nil {
				fail(w, "save", err)
				return
			}
			cp := *s
			cp.Values = map[any]any{"copy": 1}
			if err := cp.Save(r, w); err != nil {
				fail(w, "save of a copy", err)
				return
			}
			// Saved through another Store with the same key on the same
			// Manager: not the Store that created the session.
			hand := sessions.NewSession(other, "sid")
			hand.ID = s.ID
			hand.Options = s.Options
			hand.Values = map[any]any{"copy": 1, "hand": 2}
			if err := other.Save(r, w, hand); err != nil {
				fail(w, "save of a session built by hand", err)
			}
		}))
		b := newBrowser(t, srv)
		if _, err := b.text("/"); err != nil {
			t.Fatal(err)
		}
		if got, err := b.text("/"); err != nil || got != "1 2" {
			t.Fatalf("next request: %q, %v", got, err)
		}
		if n := e.rows(t); n != 1 {
			t.Fatalf("%d rows, want 1", n)
		}
	})
}

// TestErrNoTokenOnlyWithoutTheToken pins what ErrNoToken means: the
// session's token is neither in the request's cookie nor in a cookie this
// response already carries. A session kept from an earlier request, or one
// given another session's ID, is refused, and nothing is written.
func TestErrNoTokenOnlyWithoutTheToken(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		e := newEnv(t, tdb, gormsession.ManagerOptions{})
		st := gorillastore.New(e.m, key(32))

		// A victim's session, saved in its own request.
		r := httptest.NewRequest("GET", "/", nil)
		victim, _ := st.Get(r, "sid")
		victim.Values["user"] = "victim"
		if err := victim.Save(r, httptest.NewRecorder()); err != nil {
			t.Fatal(err)
		}
		before, _ := e.m.Get(victim.ID)

		tests := []struct {
			name    string
			session func(r *http.Request, w http.ResponseWriter) *sessions.Session
		}{
			{"kept from an earlier request", func(*http.Request, http.ResponseWriter) *sessions.Session { return victim }},
			{"given another session's ID", func(r *http.Request, _ http.ResponseWriter) *sessions.Session {
				s, _ := st.Get(r, "sid")
				s.ID = victim.ID
				return s
			}},
			{"created under another name", func(r *http.Request, w http.ResponseWriter) *sessions.Session {
				s, _ := st.Get(r, "other")
				if err := s.Save(r, w); err != nil {
					t.Fatal(err)
				}
				forged := sessions.NewSession(st, "sid")
				forged.ID = s.ID
				return forged
			}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := httptest.NewRequest("GET", "/", nil)
				w := httptest.NewRecorder()
				s := tt.session(r, w)
				s.Values["user"] = "mallory"
				err := st.Save(r, w, s)
				if !errors.Is(err, gorillastore.ErrNoToken) {
					t.Fatalf("Save: %v, want ErrNoToken", err)
				}
				for _, c := range w.Result().Cookies() {
					if c.Name == "sid" {
						t.Fatal("a refused Save set a cookie")
					}
				}
			})
		}
		after, _ := e.m.Get(victim.ID)
		if !bytes.Equal(after.Data, before.Data) || !after.UpdatedAt.Equal(before.UpdatedAt) {
			t.Fatal("a refused Save changed the victim's session")
		}
	})
}

// values returns the Values of the browser's session called name, read
// outside the app.
func (b *browser) values(st *gorillastore.Store, name string) (map[any]any, error) {
	r := httptest.NewRequest("GET", b.srv.URL, nil)
	for _, c := range b.cookies() {
		r.AddCookie(c)
	}
	s, err := st.New(r, name)
	if err != nil {
		return nil, err
	}
	return s.Values, nil
}
