package gorillastore_test

import (
	"context"
	"errors"
	"fmt"
	"io"
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

// waderEraHandler is a handler as written for wader/gormstore, whose Get
// never fails: any Get error is a 500. It counts the visits of a session.
func waderEraHandler(store sessions.Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		session, err := store.Get(r, "session")
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		n, _ := session.Values["n"].(int)
		session.Values["n"] = n + 1
		if err := session.Save(r, w); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, n+1)
	})
}

// visit requests srv with the cookie session=value (none when value is
// "") and returns the status, the body and the cookie value the answer set.
func visit(t *testing.T, srv *httptest.Server, value string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest("GET", srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if value != "" {
		req.AddCookie(&http.Cookie{Name: "session", Value: value})
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var set string
	for _, c := range resp.Cookies() {
		if c.Name == "session" {
			set = c.Value
		}
	}
	return resp.StatusCode, strings.TrimSpace(string(body)), set
}

// TestWaderEraHandlerAnswersNo5xxAfterTheSwitch migrates a handler written
// for wader/gormstore to gorillastore unchanged: every returning visitor,
// whatever cookie they hold (wader/gormstore's own, an expired, revoked or
// tampered one, one signed with a key no longer used), gets a new session
// and a 200, never a 500; the reason is observable through CookieRejected.
func TestWaderEraHandlerAnswersNo5xxAfterTheSwitch(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		e := newEnv(t, tdb, gormsession.ManagerOptions{})
		hashKey := key(32)
		st := gorillastore.New(e.m, hashKey)
		var mu sync.Mutex
		var reasons []error
		st.CookieRejected = func(_ *http.Request, reason error) {
			mu.Lock()
			defer mu.Unlock()
			reasons = append(reasons, reason)
		}
		srv := serve(t, waderEraHandler(st))

		// mint saves a session with MaxAge maxAge through another Store on
		// the same Manager and key, and returns its cookie and ID.
		mint := func(maxAge int) (cookie, id string) {
			minter := gorillastore.New(e.m, hashKey)
			minter.Options.MaxAge = maxAge
			r := httptest.NewRequest("GET", "/", nil)
			session, err := minter.Get(r, "session")
			if err != nil {
				t.Fatal(err)
			}
			session.Values["n"] = 1
			w := httptest.NewRecorder()
			if err := session.Save(r, w); err != nil {
				t.Fatal(err)
			}
			return w.Result().Cookies()[0].Value, session.ID
		}
		live, _ := mint(3600)
		expired, _ := mint(30)
		revoked, revokedID := mint(3600)
		if err := e.m.Revoke(context.Background(), revokedID); err != nil {
			t.Fatal(err)
		}
		e.clock.Add(time.Minute)
		// wader/gormstore's cookie holds its row's ID, gob-encoded, signed
		// with the same key (the one the guide says to keep).
		wader, err := securecookie.New(hashKey, nil).Encode("session", "MZXW6YTBOI5DEMJSGM2DKNRXHA4TAYLCMNSGKZQ")
		if err != nil {
			t.Fatal(err)
		}
		retired, err := securecookie.New(key(32), nil).Encode("session", "MZXW6YTBOI5DEMJSGM2DKNRXHA4TAYLCMNSGKZQ")
		if err != nil {
			t.Fatal(err)
		}
		tampered := []byte(live)
		tampered[len(tampered)/2] ^= 0x01

		for _, tt := range []struct {
			name, cookie string
			reason       error
		}{
			{"wader/gormstore's cookie", wader, gormsession.ErrInvalidToken},
			{"a cookie signed with another key", retired, gorillastore.ErrUnverifiedCookie},
			{"expired", expired, gormsession.ErrNotFound},
			{"revoked", revoked, gormsession.ErrNotFound},
			{"tampered", string(tampered), gorillastore.ErrUnverifiedCookie},
		} {
			t.Run(tt.name, func(t *testing.T) {
				mu.Lock()
				reasons = nil
				mu.Unlock()
				status, body, set := visit(t, srv, tt.cookie)
				if status != http.StatusOK || body != "1" || set == "" {
					t.Fatalf("answer %d %q, cookie %q; want 200, a new session and its cookie", status, body, set)
				}
				mu.Lock()
				got := reasons
				mu.Unlock()
				if len(got) != 1 || !errors.Is(got[0], tt.reason) {
					t.Fatalf("reasons %v, want one wrapping %v", got, tt.reason)
				}
				// The new cookie carries the new session.
				if status, body, _ := visit(t, srv, set); status != http.StatusOK || body != "2" {
					t.Fatalf("with the new cookie: %d %q, want 200 \"2\"", status, body)
				}
			})
		}
		if status, body, _ := visit(t, srv, live); status != http.StatusOK || body != "2" {
			t.Fatalf("the live cookie: %d %q, want its session", status, body)
		}
	})
}
