package gormsession_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gormsession/gormsession"
	"github.com/gormsession/gormsession/internal/testdb"
)

// whoami answers the user of the request's session, or "anonymous".
var whoami = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	if s, ok := gormsession.FromContext(r.Context()); ok {
		fmt.Fprint(w, s.UserID)
		return
	}
	fmt.Fprint(w, "anonymous")
})

func TestMiddlewareResolvesBearerAndCookie(t *testing.T) {
	ctx := context.Background()
	clk := testdb.NewClock(time.Now())
	m := newManager(t, newStore(t, newSQLite(t), nil), gormsession.ManagerOptions{Now: clk.Now})
	alice := create(t, m, gormsession.Attributes{UserID: "alice"})
	bob := create(t, m, gormsession.Attributes{UserID: "bob"})
	revoked := create(t, m, gormsession.Attributes{UserID: "revoked"})
	expired := create(t, m, gormsession.Attributes{UserID: "expired", Lifetime: time.Minute})
	if err := m.Revoke(ctx, revoked.ID); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Minute)

	srv := httptest.NewServer(gormsession.Middleware(m, gormsession.CookieOptions{Name: "sid"})(whoami))
	defer srv.Close()

	tests := []struct {
		name          string
		authorization string
		cookie        string
		want          string
	}{
		{"no credentials", "", "", "anonymous"},
		{"bearer", "Bearer " + alice.Token, "", "alice"},
		{"lowercase scheme", "bearer " + alice.Token, "", "alice"},
		{"uppercase scheme", "BEARER " + alice.Token, "", "alice"},
		{"cookie", "", alice.Token, "alice"},
		{"bearer wins over cookie", "Bearer " + bob.Token, alice.Token, "bob"},
		{"invalid bearer falls back to cookie", "Bearer " + gormsession.NewToken(), alice.Token, "alice"},
		{"empty bearer", "Bearer ", "", "anonymous"},
		{"basic scheme", "Basic " + alice.Token, "", "anonymous"},
		{"unknown token", "Bearer " + gormsession.NewToken(), "", "anonymous"},
		{"revoked", "Bearer " + revoked.Token, "", "anonymous"},
		{"expired", "", expired.Token, "anonymous"},
		{"garbage cookie", "", "%%%garbage", "anonymous"},
		{"token with NUL", "Bearer " + alice.Token[:20] + "\x00" + alice.Token[21:], "", "anonymous"},
		{"huge header", "Bearer " + strings.Repeat("A", 60<<10), "", "anonymous"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", srv.URL, nil)
			if tt.authorization != "" {
				req.Header["Authorization"] = []string{tt.authorization}
			}
			if tt.cookie != "" {
				req.Header.Set("Cookie", "sid="+tt.cookie)
			}
			res, err := srv.Client().Do(req)
			if err != nil {
				// A header the client refuses to send (NUL) is bad input
				// that never reaches the server.
				if strings.Contains(tt.name, "NUL") {
					return
				}
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK || string(body) != tt.want {
				t.Fatalf("got %d %q, want 200 %q", res.StatusCode, body, tt.want)
			}
		})
	}
}

func TestCookieOptionsDefaultToSecureHttpOnlyLax(t *testing.T) {
	now := time.Now()
	s := gormsession.Session{Token: "tok", ExpiresAt: now.Add(time.Hour)}
	c := gormsession.CookieOptions{}.Cookie(s, now)
	if c.Name != "session" || c.Path != "/" || !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteLaxMode ||
		c.MaxAge != 3600 || c.Value != "tok" {
		t.Fatalf("default cookie = %+v", c)
	}
	c = gormsession.CookieOptions{Insecure: true, SameSite: http.SameSiteNoneMode}.Cookie(s, now)
	if !c.Secure {
		t.Fatal("SameSite=None cookie without Secure")
	}
	c = gormsession.CookieOptions{Insecure: true}.Cookie(gormsession.Session{Token: "t"}, now)
	if c.Secure || c.MaxAge != 0 {
		t.Fatalf("insecure session cookie = %+v", c)
	}
	if d := (gormsession.CookieOptions{Name: "x"}).ExpiredCookie(); d.MaxAge >= 0 || d.Name != "x" {
		t.Fatalf("expired cookie = %+v", d)
	}
}

func TestResolveRequestReportsWhereTheTokenCameFrom(t *testing.T) {
	m := newManager(t, newStore(t, newSQLite(t), nil), gormsession.ManagerOptions{})
	alice := create(t, m, gormsession.Attributes{UserID: "alice"})
	bob := create(t, m, gormsession.Attributes{UserID: "bob"})
	for _, tt := range []struct {
		authorization, cookie string
		want                  gormsession.TokenSource
		user                  string
	}{
		{"Bearer " + alice.Token, "", gormsession.SourceBearer, "alice"},
		{"bearer " + alice.Token, "", gormsession.SourceBearer, "alice"},
		{"bEaReR  " + alice.Token + " ", "", gormsession.SourceBearer, "alice"},
		{"Bearer " + alice.Token, bob.Token, gormsession.SourceBearer, "alice"},
		{"", bob.Token, gormsession.SourceCookie, "bob"},
		{"Bearer " + gormsession.NewToken(), bob.Token, gormsession.SourceCookie, "bob"},
		{"Bearer", "", gormsession.SourceNone, ""},
		{"Bearer ", "", gormsession.SourceNone, ""},
		{"Basic " + alice.Token, "", gormsession.SourceNone, ""},
		{"Bearer" + alice.Token, "", gormsession.SourceNone, ""},
		{"", "", gormsession.SourceNone, ""},
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		if tt.authorization != "" {
			r.Header.Set("Authorization", tt.authorization)
		}
		if tt.cookie != "" {
			r.AddCookie(&http.Cookie{Name: "sid", Value: tt.cookie})
		}
		s, src := m.ResolveRequest(r, "sid")
		if src != tt.want || s.UserID != tt.user {
			t.Errorf("Authorization %q, cookie %v: %q from %d, want %q from %d", tt.authorization, tt.cookie != "", s.UserID, src, tt.user, tt.want)
		}
		if src != gormsession.SourceNone && gormsession.HashToken(s.Token) != s.ID {
			t.Errorf("the Session's Token is not the token presented")
		}
	}
}

// TestMiddlewareRejectsCrossSiteCookieRequests: a forged cross-site form
// riding on the session cookie is answered 403 before it reaches the
// handler; same-origin requests, safe methods and bearer-authenticated
// requests pass.
func TestMiddlewareRejectsCrossSiteCookieRequests(t *testing.T) {
	m := newManager(t, newStore(t, newSQLite(t), nil), gormsession.ManagerOptions{})
	alice := create(t, m, gormsession.Attributes{UserID: "alice"})
	reached := 0
	handler := gormsession.Middleware(m, gormsession.CookieOptions{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached++
		whoami(w, r)
	}))
	tests := []struct {
		name, method, secFetchSite, origin string
		bearer, cookie                     bool
		want                               int
	}{
		{"cross-site POST with the cookie", http.MethodPost, "cross-site", "", false, true, http.StatusForbidden},
		{"cross-site POST, Origin header only", http.MethodPost, "", "https://evil.example", false, true, http.StatusForbidden},
		{"cross-site DELETE with the cookie", http.MethodDelete, "cross-site", "", false, true, http.StatusForbidden},
		{"cross-site anonymous POST (forged sign-in)", http.MethodPost, "cross-site", "", false, false, http.StatusForbidden},
		{"same-origin POST with the cookie", http.MethodPost, "same-origin", "", false, true, http.StatusOK},
		{"cross-site GET with the cookie", http.MethodGet, "cross-site", "", false, true, http.StatusOK},
		{"cross-site POST with a bearer token", http.MethodPost, "cross-site", "", true, false, http.StatusOK},
		{"POST without browser headers (a script)", http.MethodPost, "", "", false, true, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "https://app.example/account", nil)
			if tt.secFetchSite != "" {
				r.Header.Set("Sec-Fetch-Site", tt.secFetchSite)
			}
			if tt.origin != "" {
				r.Header.Set("Origin", tt.origin)
			}
			if tt.bearer {
				r.Header.Set("Authorization", "Bearer "+alice.Token)
			}
			if tt.cookie {
				r.AddCookie(&http.Cookie{Name: gormsession.DefaultCookieName, Value: alice.Token})
			}
			before := reached
			w := httptest.NewRecorder()
			handler.ServeHTTP(w, r)
			if w.Code != tt.want {
				t.Fatalf("status %d, want %d", w.Code, tt.want)
			}
			if tt.want == http.StatusForbidden && reached != before {
				t.Fatal("the handler ran for a rejected request")
			}
			if vary := varyFields(w.Header()); !slices.Equal(vary, []string{"Cookie", "Authorization"}) {
				t.Fatalf("Vary = %q, want Cookie and Authorization, once each", vary)
			}
		})
	}

	// Trusting an origin lets its requests through.
	cop := http.NewCrossOriginProtection()
	if err := cop.AddTrustedOrigin("https://partner.example"); err != nil {
		t.Fatal(err)
	}
	trusting := gormsession.Middleware(m, gormsession.CookieOptions{CrossOrigin: cop})(whoami)
	r := httptest.NewRequest(http.MethodPost, "https://app.example/account", nil)
	r.Header.Set("Origin", "https://partner.example")
	r.AddCookie(&http.Cookie{Name: gormsession.DefaultCookieName, Value: alice.Token})
	w := httptest.NewRecorder()
	trusting.ServeHTTP(w, r)
	if w.Code != http.StatusOK || w.Body.String() != "alice" {
		t.Fatalf("trusted origin: %d %q, want 200 alice", w.Code, w.Body.String())
	}
}

// varyFields returns the fields of h's Vary lines, in order.
func varyFields(h http.Header) []string {
	var fields []string
	for _, line := range h.Values("Vary") {
		for f := range strings.SplitSeq(line, ",") {
			fields = append(fields, strings.TrimSpace(f))
		}
	}
	return fields
}

// TestMiddlewareMergesVary: a Vary that an outer handler set already
// keeps its fields, and Cookie and Authorization appear once each.
func TestMiddlewareMergesVary(t *testing.T) {
	m := newManager(t, newStore(t, newSQLite(t), nil), gormsession.ManagerOptions{SyncInterval: -1})
	inner := gormsession.Middleware(m, gormsession.CookieOptions{})(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Vary", "Accept-Encoding, Cookie")
		inner.ServeHTTP(w, r)
	})
	w := httptest.NewRecorder()
	handler.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	if got, want := varyFields(w.Header()), []string{"Accept-Encoding", "Cookie", "Authorization"}; !slices.Equal(got, want) {
		t.Fatalf("Vary fields %q, want %q", got, want)
	}
}
