package gormsession_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
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
	alice := create(t, m, gormsession.NewSession{UserID: "alice"})
	bob := create(t, m, gormsession.NewSession{UserID: "bob"})
	revoked := create(t, m, gormsession.NewSession{UserID: "revoked"})
	expired := create(t, m, gormsession.NewSession{UserID: "expired", Lifetime: time.Minute})
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

func TestCookieOptions(t *testing.T) {
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

func TestBearerToken(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"Bearer abc", "abc"}, {"bearer abc", "abc"}, {"bEaReR  abc ", "abc"},
		{"Bearer", ""}, {"Bearer ", ""}, {"Basic abc", ""}, {"", ""}, {"Bearerabc", ""},
	} {
		if got := gormsession.BearerToken(tt.in); got != tt.want {
			t.Errorf("BearerToken(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
