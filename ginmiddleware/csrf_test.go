package ginmiddleware_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/gormsession/gormsession"
	"github.com/gormsession/gormsession/ginmiddleware"
	"github.com/gormsession/gormsession/internal/testdb"
)

// TestCrossSiteRequestForgeryIsRejected checks the cross-origin protection
// Authenticate applies: unsafe cookie-authenticated (and anonymous)
// requests from another site are refused with 403, bearer-authenticated
// ones and safe methods are not.
func TestCrossSiteRequestForgeryIsRejected(t *testing.T) {
	e := newEnv(t, testdb.SQLite(t))
	alice := e.create(t, gormsession.Attributes{UserID: "alice"})
	bob := e.create(t, gormsession.Attributes{UserID: "bob"})

	// Turned off the one way there is: a bypass for every path.
	disabled := http.NewCrossOriginProtection()
	disabled.AddInsecureBypassPattern("/")
	trusted := http.NewCrossOriginProtection()
	if err := trusted.AddTrustedOrigin("https://app.example"); err != nil {
		t.Fatal(err)
	}
	servers := map[string]string{
		"default":  newAuthServer(t, e.m, ginmiddleware.AuthOptions{}).URL,
		"disabled": newAuthServer(t, e.m, ginmiddleware.AuthOptions{CrossOrigin: disabled}).URL,
		"trusted":  newAuthServer(t, e.m, ginmiddleware.AuthOptions{CrossOrigin: trusted}).URL,
	}
	client := newAuthServer(t, e.m, ginmiddleware.AuthOptions{}).Client()
	t.Cleanup(client.CloseIdleConnections)

	const (
		none          = ""
		cookie        = "cookie"
		bearer        = "bearer"
		bearerCookie  = "bearer+cookie"
		badBearer     = "bad bearer"
		badBearerCook = "bad bearer+cookie"
	)
	tests := []struct {
		name      string
		server    string // default when ""
		method    string
		path      string // /me when ""
		auth      string
		fetchSite string // Sec-Fetch-Site
		origin    string // Origin; "self" = the server's own
		want      int
		wantUser  string
	}{
		{name: "cookie POST cross-site", method: "POST", auth: cookie, fetchSite: "cross-site", want: 403},
		{name: "cookie POST same-site", method: "POST", auth: cookie, fetchSite: "same-site", want: 403},
		{name: "cookie POST same-origin", method: "POST", auth: cookie, fetchSite: "same-origin", want: 200, wantUser: "alice"},
		{name: "cookie POST user-initiated", method: "POST", auth: cookie, fetchSite: "none", want: 200, wantUser: "alice"},
		{name: "cookie POST non-browser", method: "POST", auth: cookie, want: 200, wantUser: "alice"},
		{name: "cookie POST foreign Origin", method: "POST", auth: cookie, origin: "https://evil.example", want: 403},
		{name: "cookie POST own Origin", method: "POST", auth: cookie, origin: "self", want: 200, wantUser: "alice"},
		{name: "cookie PUT cross-site", method: "PUT", auth: cookie, fetchSite: "cross-site", want: 403},
		{name: "cookie PATCH cross-site", method: "PATCH", auth: cookie, fetchSite: "cross-site", want: 403},
		{name: "cookie DELETE cross-site", method: "DELETE", auth: cookie, fetchSite: "cross-site", want: 403},
		{name: "cookie GET cross-site", method: "GET", auth: cookie, fetchSite: "cross-site", want: 200, wantUser: "alice"},
		{name: "cookie HEAD cross-site", method: "HEAD", auth: cookie, fetchSite: "cross-site", want: 200},
		{name: "bearer POST cross-site", method: "POST", auth: bearer, fetchSite: "cross-site", origin: "https://evil.example", want: 200, wantUser: "bob"},
		{name: "bearer DELETE cross-site", method: "DELETE", auth: bearer, fetchSite: "cross-site", want: 200, wantUser: "bob"},
		{name: "bearer and cookie POST cross-site", method: "POST", auth: bearerCookie, fetchSite: "cross-site", want: 200, wantUser: "bob"},
		{name: "bad bearer riding on cookie POST cross-site", method: "POST", auth: badBearerCook, fetchSite: "cross-site", want: 403},
		{name: "anonymous POST cross-site (login forgery)", method: "POST", path: "/login?user=mallory", fetchSite: "cross-site", want: 403},
		{name: "anonymous POST same-origin", method: "POST", fetchSite: "same-origin", want: 200},
		{name: "bad bearer POST cross-site reaches RequireSession", method: "POST", path: "/private", auth: badBearer, fetchSite: "cross-site", want: 401},
		{name: "protection disabled", server: "disabled", method: "POST", auth: cookie, fetchSite: "cross-site", want: 200, wantUser: "alice"},
		{name: "trusted origin", server: "trusted", method: "POST", auth: cookie, fetchSite: "cross-site", origin: "https://app.example", want: 200, wantUser: "alice"},
		{name: "untrusted origin with trusted list", server: "trusted", method: "POST", auth: cookie, fetchSite: "cross-site", origin: "https://evil.example", want: 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := servers[tt.server]
			if tt.server == "" {
				base = servers["default"]
			}
			path := tt.path
			if path == "" {
				path = "/me"
			}
			req := newRequest(t, tt.method, base+path)
			switch tt.auth {
			case cookie, bearerCookie, badBearerCook:
				req.AddCookie(&http.Cookie{Name: "session", Value: alice.Token})
			}
			switch tt.auth {
			case bearer, bearerCookie:
				req.Header.Set("Authorization", "Bearer "+bob.Token)
			case badBearer, badBearerCook:
				req.Header.Set("Authorization", "Bearer "+gormsession.NewToken())
			}
			if tt.fetchSite != "" {
				req.Header.Set("Sec-Fetch-Site", tt.fetchSite)
			}
			switch tt.origin {
			case "":
			case "self":
				req.Header.Set("Origin", base)
			default:
				req.Header.Set("Origin", tt.origin)
			}
			resp := do(t, client, req)
			if tt.method == "HEAD" {
				resp.Body.Close()
				if resp.StatusCode != tt.want {
					t.Fatalf("status %d, want %d", resp.StatusCode, tt.want)
				}
				return
			}
			body := decode(t, resp)
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d %v, want %d", resp.StatusCode, body, tt.want)
			}
			if tt.want == 403 && body["error"] == nil {
				t.Errorf("403 body %v has no error", body)
			}
			if tt.want == 200 && body["user"] != tt.wantUser {
				t.Errorf("user %v, want %q", body["user"], tt.wantUser)
			}
		})
	}
	if got := e.m.ListUser("mallory"); len(got) != 0 {
		t.Errorf("a forged cross-site login created %d sessions", len(got))
	}
}

// TestLoginAndLogoutCheckTheOriginWithoutAuthenticate: on routes without
// Authenticate, a cross-site POST can neither sign someone in (a forged
// login) nor sign the cookie's user out; same-origin requests can.
func TestLoginAndLogoutCheckTheOriginWithoutAuthenticate(t *testing.T) {
	e := newEnv(t, testdb.SQLite(t))
	alice := e.create(t, gormsession.Attributes{UserID: "alice"})
	r := gin.New()
	r.POST("/login", func(c *gin.Context) {
		if _, err := ginmiddleware.Login(c, e.m, gormsession.Attributes{UserID: "mallory"}); err != nil {
			if !errors.Is(err, ginmiddleware.ErrCrossOrigin) {
				t.Errorf("Login error %v does not wrap ErrCrossOrigin", err)
			}
			return
		}
		c.Status(http.StatusOK)
	})
	r.POST("/logout", func(c *gin.Context) {
		if err := ginmiddleware.Logout(c, e.m); err != nil {
			return
		}
		c.Status(http.StatusOK)
	})
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	post := func(path, site string, withCookie bool) int {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, nil)
		req.Header.Set("Sec-Fetch-Site", site)
		if withCookie {
			req.AddCookie(&http.Cookie{Name: gormsession.DefaultCookieName, Value: alice.Token})
		}
		resp := do(t, srv.Client(), req)
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post("/login", "cross-site", false); code != http.StatusForbidden {
		t.Fatalf("cross-site POST /login: %d, want 403", code)
	}
	if n := len(e.m.ListUser("mallory")); n != 0 {
		t.Fatalf("a cross-site login created %d sessions", n)
	}
	if code := post("/logout", "cross-site", true); code != http.StatusForbidden {
		t.Fatalf("cross-site POST /logout: %d, want 403", code)
	}
	if _, ok := e.m.Resolve(context.Background(), alice.Token); !ok {
		t.Fatal("a cross-site logout signed alice out")
	}
	if code := post("/login", "same-origin", false); code != http.StatusOK {
		t.Fatalf("same-origin POST /login: %d, want 200", code)
	}
	if code := post("/logout", "same-origin", true); code != http.StatusOK {
		t.Fatalf("same-origin POST /logout: %d, want 200", code)
	}
	if _, ok := e.m.Resolve(context.Background(), alice.Token); ok {
		t.Fatal("a same-origin logout left alice signed in")
	}
}

// TestAnonymousTokenNeverAuthenticates: the token of a gorillastore
// session (a visitor's, without a user) replayed as a bearer token or as
// the auth cookie is turned away by RequireSession.
func TestAnonymousTokenNeverAuthenticates(t *testing.T) {
	e := newEnv(t, testdb.SQLite(t))
	visitor := e.create(t, gormsession.Attributes{Data: []byte("visits")})
	srv := newAuthServer(t, e.m, ginmiddleware.AuthOptions{})
	for _, via := range []string{"bearer", "cookie"} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/private", nil)
		if via == "bearer" {
			req.Header.Set("Authorization", "Bearer "+visitor.Token)
		} else {
			req.AddCookie(&http.Cookie{Name: gormsession.DefaultCookieName, Value: visitor.Token})
		}
		resp := do(t, srv.Client(), req)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("anonymous token as %s: status %d, want 401", via, resp.StatusCode)
		}
	}
}
