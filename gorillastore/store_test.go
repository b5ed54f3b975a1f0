package gorillastore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"

	"github.com/gormsession/gormsession"
	"github.com/gormsession/gormsession/gorillastore"
)

func key(n int) []byte { return securecookie.GenerateRandomKey(n) }

// newApp returns a Store on e's Manager with a fresh hash key, the test app
// over it and its server.
func newApp(t *testing.T, e *env, keyPairs ...[]byte) (*gorillastore.Store, *app, *httptest.Server) {
	t.Helper()
	if len(keyPairs) == 0 {
		keyPairs = [][]byte{key(32)}
	}
	st := gorillastore.New(e.m, keyPairs...)
	a := newTestApp(st)
	return st, a, serve(t, a)
}

func TestNewSessionSaveAndReadBack(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		e := newEnv(t, tdb, gormsession.ManagerOptions{Lifetime: 2 * time.Hour})
		_, a, srv := newApp(t, e)
		b := newBrowser(t, srv)

		resp, rep := b.get("/?set=user=alice&set=role=admin&flash=welcome")
		if !rep.IsNew || rep.ID != "" || len(rep.Values) != 0 || rep.GetErr != "" {
			t.Fatalf("first request without a cookie: %+v, want a new empty session and no error", rep)
		}
		if _, saveErr := a.errs(); saveErr != nil {
			t.Fatalf("Save: %v", saveErr)
		}
		sc := setCookie(t, resp, "s")
		// The default MaxAge is gorilla's 30 days, whatever the Manager's lifetime.
		want := []string{"Expires", "HttpOnly", "Max-Age=2592000", "Path=/", "SameSite=Lax", "Secure"}
		if got := attrs(sc); !sameStrings(got, want) {
			t.Fatalf("default cookie attributes %q, want %q", got, want)
		}

		_, rep = b.get("/?flashes=1")
		if rep.IsNew || rep.GetErr != "" || rep.Values["user"] != "alice" || rep.Values["role"] != "admin" {
			t.Fatalf("second request: %+v, want the saved session", rep)
		}
		if len(rep.Flashes) != 1 || rep.Flashes[0] != "welcome" {
			t.Fatalf("flashes %q, want [welcome]", rep.Flashes)
		}
		if !gormsession.ValidID(rep.ID) {
			t.Fatalf("session ID %q is not a gormsession ID", rep.ID)
		}
		if s, ok := e.m.Get(rep.ID); !ok || len(s.Data) == 0 {
			t.Fatalf("Manager has no data for session %s", rep.ID)
		}
		_, rep = b.get("/?flashes=1")
		if len(rep.Flashes) != 0 || rep.Values["user"] != "alice" {
			t.Fatalf("third request: %+v, want the flash consumed and the values kept", rep)
		}
		if n := e.rows(t); n != 1 {
			t.Fatalf("%d rows, want 1", n)
		}
	})
}

// TestCookieCarriesOnlyTheSignedToken checks that the cookie holds the
// token, signed, and not the values.
func TestCookieCarriesOnlyTheSignedToken(t *testing.T) {
	e := newEnv(t, newSQLite(t), gormsession.ManagerOptions{})
	hashKey := key(32)
	_, _, srv := newApp(t, e, hashKey)
	b := newBrowser(t, srv)
	secret := strings.Repeat("s3cr3t", 20)
	_, _ = b.get("/?set=v=" + secret)
	c := b.cookie("s")
	if c == nil {
		t.Fatal("no cookie")
	}
	var token []byte
	sc := securecookie.New(hashKey, nil).SetSerializer(securecookie.NopEncoder{})
	if err := sc.Decode("s", c.Value, &token); err != nil {
		t.Fatalf("cookie does not decode with the store's key: %v", err)
	}
	if !gormsession.ValidToken(string(token)) {
		t.Fatalf("cookie carries %q, not a token", token)
	}
	if strings.Contains(c.Value, "s3cr3t") || len(c.Value) > 200 {
		t.Fatalf("cookie %q carries more than a token", c.Value)
	}
	if _, ok := e.m.ResolveAnonymous(context.Background(), string(token)); !ok {
		t.Fatal("the cookie's token does not resolve as an anonymous session")
	}
	if _, ok := e.m.Resolve(context.Background(), string(token)); ok {
		t.Fatal("the cookie's token of an anonymous session authenticates")
	}
}

func TestMaxAgeNegativeDeletesRowAndExpiresCookie(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		e := newEnv(t, tdb, gormsession.ManagerOptions{})
		_, a, srv := newApp(t, e)
		b := newBrowser(t, srv)
		b.get("/?set=user=alice")
		old := b.cookie("s")
		_, rep := b.get("/")
		id := rep.ID
		if n := e.rows(t); n != 1 {
			t.Fatalf("%d rows before delete, want 1", n)
		}

		resp, _ := b.get("/?maxage=-1")
		if _, saveErr := a.errs(); saveErr != nil {
			t.Fatalf("Save with MaxAge -1: %v", saveErr)
		}
		if sc := setCookie(t, resp, "s"); !strings.Contains(sc, "Max-Age=0") {
			t.Fatalf("Set-Cookie %q does not expire the cookie", sc)
		}
		if b.cookie("s") != nil {
			t.Fatal("the browser still has the cookie")
		}
		if n := e.rows(t); n != 0 {
			t.Fatalf("%d rows after delete, want 0", n)
		}
		if _, ok := e.m.Get(id); ok {
			t.Fatal("the Manager still has the session")
		}

		// The deleted session's cookie, replayed, gives a new session.
		hdr := "s=" + old.Value
		_, rep = do(t, srv.Client(), srv.URL+"/?nosave=1", &hdr)
		getErr, _ := a.errs()
		if !rep.IsNew || len(rep.Values) != 0 || getErr != nil || !errors.Is(a.reason(), gormsession.ErrNotFound) {
			t.Fatalf("replayed deleted cookie: %+v, err %v, reason %v; want a new session, no error and ErrNotFound",
				rep, getErr, a.reason())
		}
	})
}

// TestMaxAgeZeroIsBrowserSessionCookie guards against the fault of other
// stores that turn MaxAge 0 into an instantly expired row.
func TestMaxAgeZeroIsBrowserSessionCookie(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		lifetime := 3 * time.Hour
		e := newEnv(t, tdb, gormsession.ManagerOptions{Lifetime: lifetime})
		st, _, srv := newApp(t, e)
		st.Options.MaxAge = 0
		b := newBrowser(t, srv)

		resp, _ := b.get("/?set=user=alice")
		sc := setCookie(t, resp, "s")
		if strings.Contains(sc, "Max-Age") || strings.Contains(sc, "Expires") {
			t.Fatalf("Set-Cookie %q is not a browser-session cookie", sc)
		}
		_, rep := b.get("/?nosave=1")
		s, ok := e.m.Get(rep.ID)
		if !ok || rep.Values["user"] != "alice" {
			t.Fatalf("session not found after MaxAge 0 save: %+v", rep)
		}
		created := s.CreatedAt
		if want := created.Add(lifetime); !s.ExpiresAt.Equal(want) {
			t.Fatalf("ExpiresAt %v, want the Manager's lifetime after creation (%v)", s.ExpiresAt, want)
		}

		// A later save extends the row by the Manager's lifetime again, in
		// steps of a 64th of it.
		e.clock.Add(time.Hour)
		b.get("/?set=user=bob")
		s, _ = e.m.Get(rep.ID)
		step := lifetime / 64
		if latest := e.clock.Now().Add(lifetime); s.ExpiresAt.After(latest) || s.ExpiresAt.Before(latest.Add(-step)) {
			t.Fatalf("ExpiresAt after a save %v, want within %v before %v", s.ExpiresAt, step, latest)
		}
		e.clock.Add(lifetime - step - time.Minute)
		if _, rep = b.get("/?nosave=1"); rep.IsNew || rep.Values["user"] != "bob" {
			t.Fatalf("session gone before the Manager's lifetime: %+v", rep)
		}
		// And the row is there for a restarted process.
		m2 := e.newManager(t, gormsession.ManagerOptions{Lifetime: lifetime})
		if _, err := m2.Update(context.Background(), rep.ID, func(*gormsession.Session) {}); err != nil {
			t.Fatalf("restarted Manager does not find the MaxAge 0 session: %v", err)
		}
	})
}

func TestPerSessionOptionsAreHonoured(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		e := newEnv(t, tdb, gormsession.ManagerOptions{})
		st := gorillastore.New(e.m, key(32))
		srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			session, _ := st.Get(r, "s")
			session.Options.Path = "/account"
			session.Options.MaxAge = 90
			session.Options.HttpOnly = false
			session.Options.Secure = true
			session.Options.SameSite = http.SameSiteStrictMode
			session.Values["n"] = 1
			if err := session.Save(r, w); err != nil {
				http.Error(w, err.Error(), 500)
			}
		}))
		resp, err := srv.Client().Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %s", resp.Status)
		}
		want := []string{"Expires", "Max-Age=90", "Path=/account", "SameSite=Strict", "Secure"}
		if got := attrs(setCookie(t, resp, "s")); !sameStrings(got, want) {
			t.Fatalf("cookie attributes %q, want %q", got, want)
		}
		// The row lives as long as the cookie.
		var id string
		for _, sess := range allSessions(t, e) {
			id = sess.ID
			if want := sess.CreatedAt.Add(90 * time.Second); !sess.ExpiresAt.Equal(want) {
				t.Fatalf("row expires at %v, want %v", sess.ExpiresAt, want)
			}
		}
		if id == "" {
			t.Fatal("no session stored")
		}
	})
}

func TestStoreOptionsReplaceDefaultsWholesale(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		e := newEnv(t, tdb, gormsession.ManagerOptions{})
		st, _, srv := newApp(t, e)
		st.Options = &sessions.Options{Path: "/app", MaxAge: 60}
		resp, _ := newBrowser(t, srv).get("/?set=a=b")
		want := []string{"Expires", "Max-Age=60", "Path=/app"}
		if got := attrs(setCookie(t, resp, "s")); !sameStrings(got, want) {
			t.Fatalf("cookie attributes %q, want exactly %q", got, want)
		}
	})
}

func TestKeyRotation(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		e := newEnv(t, tdb, gormsession.ManagerOptions{})
		oldHash := key(32)
		newHash, newBlock := key(64), key(32)
		_, oldApp, oldSrv := newApp(t, e, oldHash)
		_, rotApp, rotSrv := newApp(t, e, newHash, newBlock, oldHash, nil)
		_, newApp, newSrv := newApp(t, e, newHash, newBlock)

		// jarless sends cookie to srv and returns the report, the cookie the
		// answer set (if any) and the reason the cookie was rejected.
		jarless := func(srv *httptest.Server, a *app, cookie, query string) (report, string, error) {
			hdr := "s=" + cookie
			resp, rep := do(t, srv.Client(), srv.URL+"/?"+query, &hdr)
			getErr, saveErr := a.errs()
			if getErr != nil || saveErr != nil {
				t.Fatalf("Get: %v, Save: %v", getErr, saveErr)
			}
			var set string
			if c := resp.Cookies(); len(c) == 1 {
				set = c[0].Value
			}
			return rep, set, a.reason()
		}

		// A cookie made with the old key.
		resp, _ := newBrowser(t, oldSrv).get("/?set=user=alice")
		oldCookie := resp.Cookies()[0].Value

		// The rotated store reads it and writes a cookie with the new pair.
		rep, newCookie, err := jarless(rotSrv, rotApp, oldCookie, "set=step=2")
		if err != nil || rep.IsNew || rep.Values["user"] != "alice" {
			t.Fatalf("rotated store on an old cookie: %+v, %v; want the session", rep, err)
		}
		if newCookie == "" || newCookie == oldCookie {
			t.Fatal("the rotated store did not write a new cookie")
		}
		// That cookie is made with the first pair: the new-key-only store
		// reads it, the old-key-only store does not.
		rep, _, err = jarless(newSrv, newApp, newCookie, "nosave=1")
		if err != nil || rep.IsNew || rep.Values["step"] != "2" {
			t.Fatalf("new-key store on the rotated cookie: %+v, %v", rep, err)
		}
		rep, _, err = jarless(oldSrv, oldApp, newCookie, "nosave=1")
		if !errors.Is(err, gorillastore.ErrUnverifiedCookie) || !rep.IsNew {
			t.Fatalf("old-key store decoded a cookie made with the new key: %+v", rep)
		}
		// And the new-key-only store rejects the old cookie.
		rep, _, err = jarless(newSrv, newApp, oldCookie, "nosave=1")
		if !errors.Is(err, gorillastore.ErrUnverifiedCookie) || !rep.IsNew {
			t.Fatalf("new-key store decoded an old-key cookie: %+v", rep)
		}
	})
}

// TestBadCookiesGiveNewSessionAndNoError is the security regression test
// for cookies that must not resolve: each gives a new session and no error
// (as wader/gormstore does, so that a handler answering any Get error with
// a 500 keeps working), never a panic or a 500, and the reason goes to
// CookieRejected.
func TestBadCookiesGiveNewSessionAndNoError(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		e := newEnv(t, tdb, gormsession.ManagerOptions{})
		hashKey := key(32)
		_, a, srv := newApp(t, e, hashKey)
		_, _, otherSrv := newApp(t, e, key(32))

		mint := func(query string) (cookie, id string) {
			b := newBrowser(t, srv)
			b.get("/?" + query)
			_, rep := b.get("/?nosave=1")
			return b.cookie("s").Value, rep.ID
		}
		good, _ := mint("set=user=alice&maxage=60")
		revoked, revokedID := mint("set=user=bob")
		if err := e.m.Revoke(context.Background(), revokedID); err != nil {
			t.Fatal(err)
		}
		expiring, _ := mint("set=user=carol&maxage=30")
		ob := newBrowser(t, otherSrv)
		ob.get("/?set=user=mallory")
		wrongKey := ob.cookie("s").Value
		notToken, err := securecookie.New(hashKey, nil).SetSerializer(securecookie.NopEncoder{}).
			Encode("s", []byte("not a token"))
		if err != nil {
			t.Fatal(err)
		}
		otherName, err := securecookie.New(hashKey, nil).SetSerializer(securecookie.NopEncoder{}).
			Encode("s2", []byte(gormsession.NewToken()))
		if err != nil {
			t.Fatal(err)
		}
		// wader/gormstore's cookie: its row's ID, gob-encoded and signed
		// with the same key.
		wader, err := securecookie.New(hashKey, nil).Encode("s", "MZXW6YTBOI5DEMJSGM2DKNRXHA4TAYLCMNSGKZQ")
		if err != nil {
			t.Fatal(err)
		}
		// gorilla's CookieStore's cookie, with the same key.
		cs := sessions.NewCookieStore(hashKey)
		csReq := httptest.NewRequest("GET", "/", nil)
		csSession, _ := cs.New(csReq, "s")
		csSession.Values["user"] = "dave"
		csRec := httptest.NewRecorder()
		if err := cs.Save(csReq, csRec, csSession); err != nil {
			t.Fatal(err)
		}
		cookieStore := csRec.Result().Cookies()[0].Value
		e.clock.Add(45 * time.Second) // expiring has expired; good has not

		flip := []byte(good)
		flip[len(flip)/2] ^= 0x01

		tests := []struct {
			name   string
			cookie string
			reason error // what the reason given to CookieRejected wraps
		}{
			{name: "tampered", cookie: string(flip), reason: gorillastore.ErrUnverifiedCookie},
			{name: "truncated", cookie: good[:len(good)-5], reason: gorillastore.ErrUnverifiedCookie},
			{name: "wrong key", cookie: wrongKey, reason: gorillastore.ErrUnverifiedCookie},
			{name: "expired", cookie: expiring, reason: gormsession.ErrNotFound},
			{name: "revoked", cookie: revoked, reason: gormsession.ErrNotFound},
			{name: "signed non-token", cookie: notToken, reason: gormsession.ErrInvalidToken},
			{name: "wader/gormstore's, same key", cookie: wader, reason: gormsession.ErrInvalidToken},
			{name: "CookieStore's, same key", cookie: cookieStore, reason: gormsession.ErrInvalidToken},
			{name: "signed for another name", cookie: otherName, reason: gorillastore.ErrUnverifiedCookie},
			{name: "empty", cookie: "", reason: gorillastore.ErrUnverifiedCookie},
			{name: "garbage", cookie: "%%%|||", reason: gorillastore.ErrUnverifiedCookie},
			{name: "huge", cookie: strings.Repeat("A", 8000), reason: gorillastore.ErrUnverifiedCookie},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				hdr := "s=" + tt.cookie
				_, rep := do(t, srv.Client(), srv.URL+"/?nosave=1", &hdr)
				getErr, _ := a.errs()
				if !rep.IsNew || rep.ID != "" || len(rep.Values) != 0 {
					t.Fatalf("got %+v, want a new empty session", rep)
				}
				if getErr != nil {
					t.Fatalf("Get: %v, want no error", getErr)
				}
				if reason := a.reason(); !errors.Is(reason, tt.reason) {
					t.Fatalf("reason %v, want one wrapping %v", reason, tt.reason)
				}
			})
		}

		// The good cookie still works, and a bad one is replaced by Save.
		hdr := "s=" + good
		if _, rep := do(t, srv.Client(), srv.URL+"/?nosave=1", &hdr); rep.IsNew || rep.Values["user"] != "alice" || rep.Rejected != "" {
			t.Fatalf("good cookie: %+v", rep)
		}
		for _, bad := range []string{string(flip), revoked, wader} {
			hdr = "s=" + bad
			resp, rep := do(t, srv.Client(), srv.URL+"/?set=user=eve", &hdr)
			if rep.SaveErr != "" || len(resp.Cookies()) != 1 || resp.Cookies()[0].Value == bad {
				t.Fatalf("saving the new session that replaces a bad cookie: %+v", rep)
			}
		}
	})
}

func TestValuesOverLimitFailSaveAndKeepStoredSession(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		e := newEnv(t, tdb, gormsession.ManagerOptions{})
		st, a, srv := newApp(t, e)
		st.MaxLength(200)
		b := newBrowser(t, srv)
		b.get("/?set=user=alice")
		_, rep := b.get("/?nosave=1")
		before, _ := e.m.Get(rep.ID)

		big := strings.Repeat("x", 300)
		resp, rep := b.get("/?set=blob=" + big)
		_, saveErr := a.errs()
		if !errors.Is(saveErr, gorillastore.ErrTooLarge) {
			t.Fatalf("Save of %d bytes over a 200-byte limit: %v, want ErrTooLarge", len(big), saveErr)
		}
		if !strings.Contains(saveErr.Error(), "over the limit of 200") {
			t.Fatalf("error %q does not say the limit", saveErr)
		}
		if len(resp.Header.Values("Set-Cookie")) != 0 {
			t.Fatal("a failed Save set a cookie")
		}
		after, _ := e.m.Get(rep.ID)
		if !bytes.Equal(after.Data, before.Data) || !after.ExpiresAt.Equal(before.ExpiresAt) {
			t.Fatal("a failed Save changed the stored session")
		}
		if _, rep = b.get("/?nosave=1"); rep.Values["user"] != "alice" || rep.Values["blob"] != "" {
			t.Fatalf("after a failed Save: %+v, want the old values", rep)
		}
		rows := allSessions(t, e)
		if len(rows) != 1 || !bytes.Equal(rows[0].Data, before.Data) {
			t.Fatal("the row changed after a failed Save")
		}

		// A new session over the limit creates nothing.
		_, rep = newBrowser(t, srv).get("/?set=blob=" + big)
		if _, saveErr := a.errs(); !errors.Is(saveErr, gorillastore.ErrTooLarge) {
			t.Fatalf("new session over the limit: %v", saveErr)
		}
		if n := e.rows(t); n != 1 {
			t.Fatalf("%d rows, want 1", n)
		}
	})
}

func TestSessionSurvivesRestart(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		e := newEnv(t, tdb, gormsession.ManagerOptions{})
		hashKey, blockKey := key(32), key(16)
		_, _, srv := newApp(t, e, hashKey, blockKey)
		b := newBrowser(t, srv)
		b.get("/?set=user=alice&set=cart=3%20apples")
		cookie := b.cookie("s").Value
		if err := e.m.Close(); err != nil {
			t.Fatal(err)
		}

		m2 := e.newManager(t, gormsession.ManagerOptions{})
		st2 := gorillastore.New(m2, hashKey, blockKey)
		a2 := &app{store: st2}
		srv2 := serve(t, a2)
		hdr := "s=" + cookie
		_, rep := do(t, srv2.Client(), srv2.URL+"/?nosave=1", &hdr)
		if getErr, _ := a2.errs(); getErr != nil || rep.IsNew ||
			rep.Values["user"] != "alice" || rep.Values["cart"] != "3 apples" {
			t.Fatalf("after restart: %+v, %v", rep, getErr)
		}
	})
}

// TestGetIsZeroStatementsAndSaveIsOne counts the SQL statements of each
// operation, over HTTP.
func TestGetIsZeroStatementsAndSaveIsOne(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		e := newEnv(t, tdb, gormsession.ManagerOptions{})
		_, a, srv := newApp(t, e)
		b := newBrowser(t, srv)
		step := func(what, query string, want int64) {
			t.Helper()
			before := e.stmts.N()
			_, rep := b.get(query)
			if rep.GetErr != "" || rep.SaveErr != "" {
				t.Fatalf("%s: %+v", what, rep)
			}
			if _, saveErr := a.errs(); saveErr != nil {
				t.Fatal(saveErr)
			}
			if got := e.stmts.N() - before; got != want {
				t.Fatalf("%s ran %d statements, want %d", what, got, want)
			}
		}
		step("Get of no session", "/?nosave=1", 0)
		step("Save of a new session", "/?set=user=alice", 1)
		for range 3 {
			step("Get", "/?nosave=1", 0)
		}
		step("Get and Save of an existing session", "/?set=n=1", 1)
		step("Get after a change", "/?nosave=1", 0)
		step("Save with MaxAge -1", "/?maxage=-1", 1)
	})
}

// TestConcurrentRequestsAreRaceFree runs many clients against one Store at
// once; run it with -race. Each client counts in its own session, and a
// shared session is read by all of them.
func TestConcurrentRequestsAreRaceFree(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		e := newEnv(t, tdb, gormsession.ManagerOptions{})
		st := gorillastore.New(e.m, key(32))
		srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			session, err := st.Get(r, "s")
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			if r.URL.Query().Get("read") == "1" {
				session.Values["scratch"] = "not saved" // must not leak to other requests
				fmt.Fprintf(w, "%v", session.Values["shared"])
				return
			}
			n, _ := session.Values["n"].(int)
			session.Values["n"] = n + 1
			session.AddFlash(n)
			if err := session.Save(r, w); err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			fmt.Fprintf(w, "%d", n+1)
		}))
		shared := newBrowser(t, srv)
		if err := shared.set(st, "shared", "yes"); err != nil {
			t.Fatal(err)
		}
		sharedCookie := "s=" + shared.cookie("s").Value

		const clients, rounds = 6, 15
		var wg sync.WaitGroup
		errs := make(chan error, clients*rounds*2)
		for range clients {
			wg.Go(func() {
				b := newBrowser(t, srv)
				for i := range rounds {
					body, err := b.text("/")
					if err != nil || body != fmt.Sprint(i+1) {
						errs <- fmt.Errorf("round %d: %q, %v", i, body, err)
						return
					}
					body, err = b.textWithCookie("/?read=1", sharedCookie)
					if err != nil || body != "yes" {
						errs <- fmt.Errorf("shared read: %q, %v", body, err)
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if n := e.rows(t); n != clients+1 {
			t.Fatalf("%d rows, want %d", n, clients+1)
		}
	})
}

func TestRegistryAndSeveralNamesPerRequest(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		e := newEnv(t, tdb, gormsession.ManagerOptions{})
		st := gorillastore.New(e.m, key(32))
		srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			a1, err1 := st.Get(r, "a")
			bs, err2 := st.Get(r, "b")
			again, _ := st.Get(r, "a")
			if err1 != nil || err2 != nil || again != a1 || a1 == bs {
				http.Error(w, fmt.Sprintf("registry: %v %v same=%v", err1, err2, again == a1), 500)
				return
			}
			seen := fmt.Sprintf("%v %v|%v %v", a1.IsNew, a1.Values["k"], bs.IsNew, bs.Values["k"])
			a1.Values["k"] = "from-a"
			bs.Values["k"] = "from-b"
			if err := sessions.Save(r, w); err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			fmt.Fprint(w, seen)
		}))
		b := newBrowser(t, srv)
		if got, err := b.text("/"); err != nil || got != "true <nil>|true <nil>" {
			t.Fatalf("first request: %q, %v", got, err)
		}
		if got, err := b.text("/"); err != nil || got != "false from-a|false from-b" {
			t.Fatalf("second request: %q, %v", got, err)
		}
		if b.cookie("a") == nil || b.cookie("b") == nil {
			t.Fatalf("cookies %v, want a and b", b.cookies())
		}
		if n := e.rows(t); n != 2 {
			t.Fatalf("%d rows, want 2", n)
		}
	})
}

// TestSaveAfterRevokeDoesNotResurrect checks that a session revoked between
// Get and Save (another device signed it out) is not brought back.
func TestSaveAfterRevokeDoesNotResurrect(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		e := newEnv(t, tdb, gormsession.ManagerOptions{})
		st := gorillastore.New(e.m, key(32))
		srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			session, _ := st.Get(r, "s")
			if r.URL.Query().Get("revoke") == "1" {
				if err := e.m.Revoke(r.Context(), session.ID); err != nil {
					http.Error(w, err.Error(), 500)
					return
				}
			}
			session.Values["user"] = "alice"
			err := session.Save(r, w)
			fmt.Fprintf(w, "%v", errors.Is(err, gormsession.ErrNotFound))
		}))
		b := newBrowser(t, srv)
		if got, _ := b.text("/"); got != "false" {
			t.Fatalf("first save: %q", got)
		}
		if got, _ := b.text("/?revoke=1"); got != "true" {
			t.Fatalf("save after revoke: ErrNotFound = %q, want true", got)
		}
		if n := e.rows(t); n != 0 {
			t.Fatalf("%d rows after a revoke and a save, want 0", n)
		}
	})
}

// TestHandlerChangesDoNotLeakBetweenRequests guards the decoded-values
// cache: a handler that modifies its Values (maps, slices and flashes
// inside them) without saving must not change what the next request sees.
func TestHandlerChangesDoNotLeakBetweenRequests(t *testing.T) {
	for _, codec := range []gorillastore.Serializer{gorillastore.GobSerializer{}, gorillastore.JSONSerializer{}} {
		t.Run(fmt.Sprintf("%T", codec), func(t *testing.T) {
			e := newEnv(t, newSQLite(t), gormsession.ManagerOptions{})
			st := gorillastore.New(e.m, key(32))
			st.Serializer = codec
			srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				session, err := st.Get(r, "s")
				if err != nil {
					http.Error(w, err.Error(), 500)
					return
				}
				if session.IsNew {
					session.Values["list"] = []any{"a", "b"}
					session.Values["map"] = map[string]any{"k": "v"}
					session.AddFlash("f1")
					if err := session.Save(r, w); err != nil {
						http.Error(w, err.Error(), 500)
					}
					return
				}
				fmt.Fprintf(w, "%v %v %v", session.Values["list"], session.Values["map"], session.Values["_flash"])
				// Modify everything in place, and do not save.
				session.Values["list"].([]any)[0] = "changed"
				session.Values["map"].(map[string]any)["k"] = "changed"
				session.Values["extra"] = 1
				flashes := session.Values["_flash"].([]any)
				_ = append(flashes[:0], "changed")
			}))
			b := newBrowser(t, srv)
			if _, err := b.text("/"); err != nil {
				t.Fatal(err)
			}
			const want = "[a b] map[k:v] [f1]"
			for i := range 3 {
				if got, err := b.text("/"); err != nil || got != want {
					t.Fatalf("request %d: %q, %v; want %q", i, got, err, want)
				}
			}
		})
	}
}

func TestJSONSerializerOverHTTP(t *testing.T) {
	e := newEnv(t, newSQLite(t), gormsession.ManagerOptions{})
	st := gorillastore.New(e.m, key(32))
	st.Serializer = gorillastore.JSONSerializer{}
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		session, _ := st.Get(r, "s")
		if session.IsNew {
			session.Values["n"] = 41
			session.Values["name"] = "alice"
			session.AddFlash("hello")
			if r.URL.Query().Get("badkey") == "1" {
				session.Values[7] = "int key"
			}
			err := session.Save(r, w)
			fmt.Fprint(w, err)
			return
		}
		n, isInt := session.Values["n"].(int)
		fmt.Fprintf(w, "%d %v %v %v", n+1, isInt, session.Values["name"], session.Flashes())
	}))
	b := newBrowser(t, srv)
	if got, _ := b.text("/"); got != "<nil>" {
		t.Fatalf("save: %s", got)
	}
	if got, _ := b.text("/"); got != "42 true alice [hello]" {
		t.Fatalf("read back: %q", got)
	}
	if got, _ := newBrowser(t, srv).text("/?badkey=1"); !strings.Contains(got, "not a string") {
		t.Fatalf("non-string key: %q, want an error", got)
	}
}

func TestNilManagerAndMissingKeysGiveErrors(t *testing.T) {
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("New(nil) made a Store; want it to fail at construction")
			}
		}()
		gorillastore.New(nil, key(32))
	}()
	r := httptest.NewRequest("GET", "/", nil)
	st := &gorillastore.Store{} // not made by New: no Manager
	session, err := st.Get(r, "s")
	if err == nil || session == nil || !session.IsNew {
		t.Fatalf("Get on a Store without Manager: %v, %v", session, err)
	}
	if err := session.Save(r, httptest.NewRecorder()); err == nil {
		t.Fatal("Save on a Store without Manager: no error")
	}

	e := newEnv(t, newSQLite(t), gormsession.ManagerOptions{})
	for name, keys := range map[string][][]byte{
		"no keys":       nil,
		"bad block key": {key(32), []byte("short")},
	} {
		st := gorillastore.New(e.m, keys...)
		r := httptest.NewRequest("GET", "/", nil)
		session, _ := st.Get(r, "s")
		session.Values["a"] = "b"
		w := httptest.NewRecorder()
		if err := session.Save(r, w); err == nil {
			t.Fatalf("%s: Save succeeded", name)
		}
		if len(w.Result().Cookies()) != 0 {
			t.Fatalf("%s: a cookie was set", name)
		}
	}
	if n := e.rows(t); n != 0 {
		t.Fatalf("%d rows left by failed saves, want 0", n)
	}
}

// set saves Values[k] = v in the browser's session "s", outside the app.
func (b *browser) set(st *gorillastore.Store, k, v string) error {
	r := httptest.NewRequest("GET", b.srv.URL, nil)
	for _, c := range b.cookies() {
		r.AddCookie(c)
	}
	session, err := st.Get(r, "s")
	if err != nil {
		return err
	}
	session.Values[k] = v
	w := httptest.NewRecorder()
	if err := session.Save(r, w); err != nil {
		return err
	}
	b.client.Jar.SetCookies(r.URL, w.Result().Cookies())
	return nil
}

// text requests path and returns the body; a non-200 answer is an error.
func (b *browser) text(path string) (string, error) {
	return b.textWithCookie(path, "")
}

func (b *browser) textWithCookie(path, cookie string) (string, error) {
	req, err := http.NewRequest("GET", b.srv.URL+path, nil)
	if err != nil {
		return "", err
	}
	client := b.client
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
		client = b.srv.Client()
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", resp.Status, buf.String())
	}
	return buf.String(), nil
}

// allSessions returns the live stored sessions (the store's are
// anonymous, so not streamed), read from the database by ID.
func allSessions(t *testing.T, e *env) []gormsession.Session {
	t.Helper()
	db := e.tdb.Open(t)
	st, err := gormsession.NewStore(db, gormsession.StoreOptions{TableName: e.tdb.Table, SkipMigrate: true})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	if err := db.Table(e.tdb.Table).Where("revoked_at IS NULL").Pluck("id", &ids).Error; err != nil {
		t.Fatal(err)
	}
	var all []gormsession.Session
	for _, id := range ids {
		s, found, err := st.Get(context.Background(), id)
		if err != nil || !found {
			t.Fatalf("Get(%s) = %v, %v", id, found, err)
		}
		all = append(all, s)
	}
	return all
}

// TestValuesWithPointersAreNotShared covers values the cache cannot copy (a
// pointer, a struct holding a slice): they are decoded for every request,
// so a change that is not saved stays in its request.
func TestValuesWithPointersAreNotShared(t *testing.T) {
	e := newEnv(t, newSQLite(t), gormsession.ManagerOptions{})
	st := gorillastore.New(e.m, key(32))
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		session, err := st.Get(r, "s")
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		if session.IsNew {
			session.Values["acct"] = &account{ID: 1}
			session.Values["prof"] = profile{Name: "alice", Roles: []string{"admin"}}
			if err := session.Save(r, w); err != nil {
				http.Error(w, err.Error(), 500)
			}
			return
		}
		acct := session.Values["acct"].(*account)
		prof := session.Values["prof"].(profile)
		fmt.Fprintf(w, "%d %s", acct.ID, prof.Roles[0])
		acct.ID = 99
		prof.Roles[0] = "changed"
	}))
	b := newBrowser(t, srv)
	if _, err := b.text("/"); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if got, err := b.text("/"); err != nil || got != "1 admin" {
			t.Fatalf("request %d: %q, %v", i, got, err)
		}
	}
}

// TestSaveOfUnchangedValuesWritesNothing: a request that reads a session
// and saves it without changing its values runs no statement, however
// often it comes within a step of the sliding expiry, even though gob
// encodes a map of several values in a different order each time; a
// changed value is one statement.
func TestSaveOfUnchangedValuesWritesNothing(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		e := newEnv(t, tdb, gormsession.ManagerOptions{})
		_, a, srv := newApp(t, e)
		b := newBrowser(t, srv)
		// Start just after a step of the default 30-day lifetime begins,
		// so that the saves below stay within one step.
		lifetime, step := 30*24*time.Hour, 30*24*time.Hour/64
		e.clock.Set(e.clock.Now().Add(lifetime).Truncate(step).Add(step).Add(-lifetime).Add(time.Second))
		b.get("/?set=user=alice&set=role=admin&set=cart=3") // creates the session
		b.get("/?set=user=alice&set=role=admin&set=cart=3") // puts its expiry on the grid
		before := e.stmts.N()
		for range 5 {
			e.clock.Add(time.Second)
			if _, rep := b.get("/?set=user=alice&set=role=admin&set=cart=3"); rep.SaveErr != "" || rep.Values["role"] != "admin" {
				t.Fatalf("save of unchanged values: %+v", rep)
			}
		}
		if _, saveErr := a.errs(); saveErr != nil {
			t.Fatal(saveErr)
		}
		if n := e.stmts.N() - before; n != 0 {
			t.Fatalf("5 saves of unchanged values ran %d statements, want 0", n)
		}
		before = e.stmts.N()
		b.get("/?set=user=bob")
		if n := e.stmts.N() - before; n != 1 {
			t.Fatalf("a save of a changed value ran %d statements, want 1", n)
		}
		if _, rep := b.get("/?nosave=1"); rep.Values["user"] != "bob" {
			t.Fatalf("after a save of a changed value: %+v", rep)
		}
		// A save a whole step later moves the expiry: one statement.
		e.clock.Add(step)
		before = e.stmts.N()
		b.get("/?set=user=bob")
		if n := e.stmts.N() - before; n != 1 {
			t.Fatalf("a save a step later ran %d statements, want 1 (the expiry moves)", n)
		}
	})
}
