package ginmiddleware_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gormsession/gormsession"
	"github.com/gormsession/gormsession/ginmiddleware"
	"github.com/gormsession/gormsession/internal/testdb"
)

// post sends a POST to srvURL+path with client and returns the response
// and its JSON body; it fails the test unless the status is want.
func post(t *testing.T, client *http.Client, url string, want int, header ...string) (*http.Response, map[string]any) {
	t.Helper()
	req := newRequest(t, http.MethodPost, url)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp := do(t, client, req)
	body := decode(t, resp)
	if resp.StatusCode != want {
		t.Fatalf("POST %s: status %d %v, want %d", url, resp.StatusCode, body, want)
	}
	return resp, body
}

func TestLoginCookieAttributes(t *testing.T) {
	const day = 24 * 60 * 60
	tests := []struct {
		name      string
		opts      ginmiddleware.AuthOptions
		lifetime  string
		cookie    string // cookie name
		path      string
		domain    string
		maxAge    int // 0: no Max-Age
		secure    bool
		sameSite  http.SameSite
		partition bool
	}{
		{name: "defaults", cookie: "session", path: "/", maxAge: 30 * day, secure: true, sameSite: http.SameSiteLaxMode},
		{name: "session lifetime", lifetime: "1h", cookie: "session", path: "/", maxAge: 3600, secure: true, sameSite: http.SameSiteLaxMode},
		{name: "never-expiring session", lifetime: "-1s", cookie: "session", path: "/", secure: true, sameSite: http.SameSiteLaxMode},
		{name: "configured",
			opts:   ginmiddleware.AuthOptions{CookieName: "sid", Path: "/app", Domain: "example.com", SameSite: http.SameSiteStrictMode, MaxAge: 60},
			cookie: "sid", path: "/app", domain: "example.com", maxAge: 60, secure: true, sameSite: http.SameSiteStrictMode},
		{name: "MaxAge longer than the session", opts: ginmiddleware.AuthOptions{MaxAge: 7200}, lifetime: "1h",
			cookie: "session", path: "/", maxAge: 3600, secure: true, sameSite: http.SameSiteLaxMode},
		{name: "browser-session cookie", opts: ginmiddleware.AuthOptions{BrowserSession: true},
			cookie: "session", path: "/", secure: true, sameSite: http.SameSiteLaxMode},
		{name: "insecure for development", opts: ginmiddleware.AuthOptions{Insecure: true},
			cookie: "session", path: "/", maxAge: 30 * day, sameSite: http.SameSiteLaxMode},
		{name: "SameSite None forces Secure", opts: ginmiddleware.AuthOptions{Insecure: true, SameSite: http.SameSiteNoneMode},
			cookie: "session", path: "/", maxAge: 30 * day, secure: true, sameSite: http.SameSiteNoneMode},
		{name: "partitioned", opts: ginmiddleware.AuthOptions{Partitioned: true},
			cookie: "session", path: "/", maxAge: 30 * day, secure: true, sameSite: http.SameSiteLaxMode, partition: true},
	}
	e := newEnv(t, testdb.SQLite(t))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newAuthServer(t, e.m, tt.opts)
			client := srv.Client()
			t.Cleanup(client.CloseIdleConnections)
			resp, body := post(t, client, srv.URL+"/login?user=alice&lifetime="+tt.lifetime, 200)
			ck := findCookie(t, resp, tt.cookie)
			if ck.Value != body["token"] {
				t.Fatalf("cookie value %q is not the session token", ck.Value)
			}
			if s, ok := e.m.Resolve(context.Background(), ck.Value); !ok || s.UserID != "alice" {
				t.Fatalf("cookie token does not resolve to alice's session")
			}
			if !ck.HttpOnly || ck.Secure != tt.secure || ck.SameSite != tt.sameSite || ck.Path != tt.path ||
				ck.Domain != tt.domain || ck.MaxAge != tt.maxAge || ck.Partitioned != tt.partition {
				t.Fatalf("cookie %s\nwant HttpOnly Secure=%v SameSite=%v Path=%s Domain=%s Max-Age=%d Partitioned=%v",
					ck, tt.secure, tt.sameSite, tt.path, tt.domain, tt.maxAge, tt.partition)
			}
			if tt.maxAge == 0 && !ck.Expires.IsZero() {
				t.Fatalf("browser-session cookie has Expires %v", ck.Expires)
			}
			if tt.maxAge > 0 {
				if want := e.Now().Add(time.Duration(tt.maxAge) * time.Second); ck.Expires.Sub(want).Abs() > 2*time.Second {
					t.Fatalf("Expires %v, want about %v", ck.Expires, want)
				}
			}
			// The same options delete it on logout.
			resp, _ = post(t, client, srv.URL+"/logout", 200, "Cookie", tt.cookie+"="+ck.Value)
			gone := findCookie(t, resp, tt.cookie)
			if gone.MaxAge >= 0 || gone.Value != "" || gone.Path != tt.path || gone.Domain != tt.domain || !gone.HttpOnly {
				t.Fatalf("logout cookie %s does not delete %s", gone, ck)
			}
			if _, ok := e.m.Resolve(context.Background(), ck.Value); ok {
				t.Fatal("session still resolves after Logout")
			}
		})
	}
}

func TestLoginThenRequestsAreAuthenticated(t *testing.T) {
	e := newEnv(t, testdb.SQLite(t))
	srv := newAuthServer(t, e.m, ginmiddleware.AuthOptions{})
	c := jarClient(t, srv)
	_, body := post(t, c, srv.URL+"/login?user=alice", 200)
	if body["current"] != body["id"] {
		t.Fatalf("Current after Login is %v, want the new session %v", body["current"], body["id"])
	}
	resp := do(t, c, newRequest(t, http.MethodGet, srv.URL+"/private"))
	if got := decode(t, resp); resp.StatusCode != 200 || got["user"] != "alice" || got["id"] != body["id"] {
		t.Fatalf("after login: status %d %v", resp.StatusCode, got)
	}
	_, out := post(t, c, srv.URL+"/logout", 200)
	if out["ok"] != false {
		t.Fatalf("Current after Logout: %v", out)
	}
	if _, ok := e.m.Get(body["id"].(string)); ok {
		t.Fatal("session not revoked by Logout")
	}
	resp = do(t, c, newRequest(t, http.MethodGet, srv.URL+"/private"))
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("after logout: status %d, want 401", resp.StatusCode)
	}
	// Logging out again, anonymous, still clears the cookie and succeeds.
	resp, _ = post(t, c, srv.URL+"/logout", 200)
	if findCookie(t, resp, "session").MaxAge >= 0 {
		t.Fatal("anonymous Logout did not delete the cookie")
	}
}

// TestLoginRevokesThePreviousCookieSession guards against session
// fixation: a token planted in the browser before login does not survive it.
func TestLoginRevokesThePreviousCookieSession(t *testing.T) {
	e := newEnv(t, testdb.SQLite(t))
	srv := newAuthServer(t, e.m, ginmiddleware.AuthOptions{})
	c := jarClient(t, srv)
	_, first := post(t, c, srv.URL+"/login?user=alice", 200)
	_, second := post(t, c, srv.URL+"/login?user=bob", 200)
	if _, ok := e.m.Resolve(context.Background(), first["token"].(string)); ok {
		t.Fatal("the first session still resolves after logging in again")
	}
	if s, ok := e.m.Resolve(context.Background(), second["token"].(string)); !ok || s.UserID != "bob" {
		t.Fatal("the new session does not resolve")
	}
	// A bearer-authenticated login does not revoke the bearer's session.
	other := e.create(t, gormsession.Attributes{UserID: "carol"})
	client := srv.Client()
	post(t, client, srv.URL+"/login?user=carol", 200, "Authorization", "Bearer "+other.Token)
	if _, ok := e.m.Resolve(context.Background(), other.Token); !ok {
		t.Fatal("Login revoked the session of the bearer token")
	}
}

func TestLoginDeviceLabel(t *testing.T) {
	e := newEnv(t, testdb.SQLite(t))
	srv := newAuthServer(t, e.m, ginmiddleware.AuthOptions{})
	client := srv.Client()
	t.Cleanup(client.CloseIdleConnections)
	const firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
	_, body := post(t, client, srv.URL+"/login?user=alice", 200, "User-Agent", firefox)
	if body["device"] != "Firefox on Linux" {
		t.Fatalf("device %v, want Firefox on Linux", body["device"])
	}
	if s, _ := e.m.Get(body["id"].(string)); s.Device != "Firefox on Linux" {
		t.Fatalf("stored device %q", s.Device)
	}
	_, body = post(t, client, srv.URL+"/login?user=alice&device=Work+laptop", 200, "User-Agent", firefox)
	if body["device"] != "Work laptop" {
		t.Fatalf("device %v, want the given label", body["device"])
	}
}

func TestLogoutBearerSession(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d testdb.DB) {
		e := newEnv(t, d)
		s := e.create(t, gormsession.Attributes{UserID: "alice"})
		srv := newAuthServer(t, e.m, ginmiddleware.AuthOptions{})
		post(t, srv.Client(), srv.URL+"/logout", 200, "Authorization", "Bearer "+s.Token)
		if _, ok := e.m.Resolve(context.Background(), s.Token); ok {
			t.Fatal("bearer session still resolves after Logout")
		}
		if _, ok := e.restart(t).Resolve(context.Background(), s.Token); ok {
			t.Fatal("bearer session comes back after a restart")
		}
	})
}

func TestRotateSetsANewCookieAndKillsTheOldToken(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d testdb.DB) {
		e := newEnv(t, d)
		srv := newAuthServer(t, e.m, ginmiddleware.AuthOptions{})
		c := jarClient(t, srv)

		// Cookie session: a new cookie replaces the old one.
		_, login := post(t, c, srv.URL+"/login?user=alice&device=Phone", 200)
		resp, rot := post(t, c, srv.URL+"/rotate", 200)
		if ck := findCookie(t, resp, "session"); ck.Value != rot["token"] || !ck.HttpOnly || !ck.Secure {
			t.Fatalf("rotate cookie %s", ck)
		}
		if _, ok := e.m.Resolve(context.Background(), login["token"].(string)); ok {
			t.Fatal("old token still resolves after Rotate")
		}
		s, ok := e.m.Resolve(context.Background(), rot["token"].(string))
		if !ok || s.UserID != "alice" || s.Device != "Phone" {
			t.Fatalf("rotated session %+v, %v", s, ok)
		}
		resp = do(t, c, newRequest(t, http.MethodGet, srv.URL+"/private"))
		if body := decode(t, resp); body["id"] != rot["id"] {
			t.Fatalf("after rotate the browser has session %v, want %v", body["id"], rot["id"])
		}

		// Bearer session: the new token is in the response, no cookie.
		b := e.create(t, gormsession.Attributes{UserID: "bob"})
		resp, rot = post(t, srv.Client(), srv.URL+"/rotate", 200, "Authorization", "Bearer "+b.Token)
		if sc := resp.Header.Values("Set-Cookie"); len(sc) != 0 {
			t.Fatalf("bearer rotate set cookies %q", sc)
		}
		if _, ok := e.m.Resolve(context.Background(), b.Token); ok {
			t.Fatal("old bearer token still resolves")
		}
		if _, ok := e.m.Resolve(context.Background(), rot["token"].(string)); !ok {
			t.Fatal("new bearer token does not resolve")
		}

		// Anonymous: nothing to rotate.
		post(t, srv.Client(), srv.URL+"/rotate", 401)
	})
}

func TestSignOutOthersAndDevices(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d testdb.DB) {
		e := newEnv(t, d)
		phone := e.create(t, gormsession.Attributes{UserID: "alice", Device: "Safari on iOS"})
		e.Add(time.Second)
		tablet := e.create(t, gormsession.Attributes{UserID: "alice", Device: "Chrome on Android"})
		e.Add(time.Second)
		bob := e.create(t, gormsession.Attributes{UserID: "bob"})
		e.Add(time.Second)
		srv := newAuthServer(t, e.m, ginmiddleware.AuthOptions{})
		c := jarClient(t, srv)
		_, me := post(t, c, srv.URL+"/login?user=alice", 200, "User-Agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0")

		resp := do(t, c, newRequest(t, http.MethodGet, srv.URL+"/devices"))
		got := decode(t, resp)["devices"].([]any)
		want := []string{phone.ID + " Safari on iOS", tablet.ID + " Chrome on Android", me["id"].(string) + " Edge on Windows"}
		if len(got) != len(want) {
			t.Fatalf("devices %v, want %v", got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("devices %v, want %v", got, want)
			}
		}

		_, out := post(t, c, srv.URL+"/signout-others", 200)
		if out["revoked"] != float64(2) {
			t.Fatalf("revoked %v, want 2", out["revoked"])
		}
		for _, s := range []gormsession.Session{phone, tablet} {
			if _, ok := e.m.Resolve(context.Background(), s.Token); ok {
				t.Fatalf("%s still signed in", s.Device)
			}
		}
		if _, ok := e.m.Resolve(context.Background(), bob.Token); !ok {
			t.Fatal("another user's session was revoked")
		}
		resp = do(t, c, newRequest(t, http.MethodGet, srv.URL+"/devices"))
		if got := decode(t, resp)["devices"].([]any); len(got) != 1 || !strings.HasPrefix(got[0].(string), me["id"].(string)) {
			t.Fatalf("devices after sign-out %v, want only this one", got)
		}
		// The revocations reached the database: a new Manager agrees.
		if got := e.restart(t).ListUser("alice"); len(got) != 1 || got[0].ID != me["id"] {
			t.Fatalf("after a restart alice has %d sessions, want only this one", len(got))
		}
		post(t, srv.Client(), srv.URL+"/signout-others", 401)
		resp = do(t, srv.Client(), newRequest(t, http.MethodGet, srv.URL+"/devices"))
		if got := decode(t, resp)["devices"]; got != nil {
			t.Fatalf("anonymous devices %v", got)
		}
	})
}

// TestOversizedHeaderIsRejected checks that a header beyond the server's
// limit is answered 431 by net/http, before the middleware, and that one
// within it but far beyond a token's size is anonymous (see the table).
func TestOversizedHeaderIsRejected(t *testing.T) {
	e := newEnv(t, testdb.SQLite(t))
	srv := newAuthServer(t, e.m, ginmiddleware.AuthOptions{})
	req := newRequest(t, http.MethodGet, srv.URL+"/private")
	req.Header.Set("Authorization", "Bearer "+strings.Repeat("A", http.DefaultMaxHeaderBytes+4096))
	resp := do(t, srv.Client(), req)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("status %d, want 431", resp.StatusCode)
	}
}
