package ginmiddleware_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/gormsession/gormsession"
	"github.com/gormsession/gormsession/ginmiddleware"
	"github.com/gormsession/gormsession/internal/testdb"
)

// me answers with the request's session as Current sees it.
func me(c *gin.Context) {
	s, ok := ginmiddleware.Current(c)
	c.JSON(http.StatusOK, gin.H{"ok": ok, "user": s.UserID, "id": s.ID, "token": s.Token})
}

// newAuthServer serves an engine with Authenticate(m, opts) and the routes
// the tests use, over TLS (Secure cookies need it).
func newAuthServer(t testing.TB, m *gormsession.Manager, opts ginmiddleware.AuthOptions) *httptest.Server {
	t.Helper()
	r := gin.New()
	r.Use(ginmiddleware.Authenticate(m, opts))
	r.GET("/me", me)
	r.HEAD("/me", me)
	r.POST("/me", me)
	r.PUT("/me", me)
	r.PATCH("/me", me)
	r.DELETE("/me", me)
	private := r.Group("/private", ginmiddleware.RequireSession())
	private.GET("", me)
	private.POST("", me)
	r.POST("/login", func(c *gin.Context) {
		p := gormsession.Attributes{UserID: c.Query("user"), Device: c.Query("device")}
		if lt := c.Query("lifetime"); lt != "" {
			d, err := time.ParseDuration(lt)
			if err != nil {
				c.AbortWithStatus(http.StatusBadRequest)
				return
			}
			p.Lifetime = d
		}
		s, err := ginmiddleware.Login(c, m, p)
		if err != nil {
			c.AbortWithStatus(http.StatusInternalServerError)
			return
		}
		cur, _ := ginmiddleware.Current(c)
		c.JSON(http.StatusOK, gin.H{"user": s.UserID, "id": s.ID, "device": s.Device, "token": s.Token, "current": cur.ID})
	})
	r.POST("/logout", func(c *gin.Context) {
		if err := ginmiddleware.Logout(c, m); err != nil {
			c.AbortWithStatus(http.StatusInternalServerError)
			return
		}
		_, ok := ginmiddleware.Current(c)
		c.JSON(http.StatusOK, gin.H{"ok": ok})
	})
	r.POST("/rotate", func(c *gin.Context) {
		s, err := ginmiddleware.Rotate(c, m)
		if errors.Is(err, gormsession.ErrNotFound) {
			c.AbortWithStatus(http.StatusUnauthorized)
			return
		}
		if err != nil {
			c.AbortWithStatus(http.StatusInternalServerError)
			return
		}
		c.JSON(http.StatusOK, gin.H{"id": s.ID, "token": s.Token})
	})
	r.POST("/signout-others", func(c *gin.Context) {
		n, err := ginmiddleware.RevokeOthers(c, m)
		if errors.Is(err, gormsession.ErrNotFound) {
			c.AbortWithStatus(http.StatusUnauthorized)
			return
		}
		if err != nil {
			c.AbortWithStatus(http.StatusInternalServerError)
			return
		}
		c.JSON(http.StatusOK, gin.H{"revoked": n})
	})
	r.GET("/devices", func(c *gin.Context) {
		var ids []string
		for _, s := range ginmiddleware.ListUser(c, m) {
			ids = append(ids, s.ID+" "+s.Device)
		}
		c.JSON(http.StatusOK, gin.H{"devices": ids})
	})
	srv := httptest.NewTLSServer(r)
	t.Cleanup(srv.Close)
	return srv
}

// jarClient returns a client of srv that keeps cookies.
func jarClient(t testing.TB, srv *httptest.Server) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	// srv.Client() is shared; a client of its own keeps its own cookies.
	c := &http.Client{Transport: srv.Client().Transport, Jar: jar}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// TestAuthenticateHeadersAndCookies runs every combination of bearer header
// and cookie through a real engine on SQLite and PostgreSQL.
func TestAuthenticateHeadersAndCookies(t *testing.T) {
	testdb.Each(t, testAuthenticateHeadersAndCookies)
}

func testAuthenticateHeadersAndCookies(t *testing.T, d testdb.DB) {
	e := newEnv(t, d)
	ctx := context.Background()
	alice := e.create(t, gormsession.Attributes{UserID: "alice"})
	bob := e.create(t, gormsession.Attributes{UserID: "bob"})
	revoked := e.create(t, gormsession.Attributes{UserID: "revoked"})
	if err := e.m.Revoke(ctx, revoked.ID); err != nil {
		t.Fatal(err)
	}
	expired := e.create(t, gormsession.Attributes{UserID: "expired", Lifetime: time.Minute})
	e.Add(time.Minute) // expired is now exactly at its expiry: expired
	// A token of the right shape that no session has.
	unknown := gormsession.NewToken()
	// alice's token with one character changed.
	tampered := []byte(alice.Token)
	tampered[5] ^= 1
	if tampered[5] == alice.Token[5] || !gormsession.ValidToken(string(tampered)) {
		tampered[5] = 'A' + (alice.Token[5]-'A'+1)%26
	}

	srv := newAuthServer(t, e.m, ginmiddleware.AuthOptions{})
	client := srv.Client()
	t.Cleanup(client.CloseIdleConnections)
	before := e.sql.N()

	tests := []struct {
		name     string
		auth     []string // Authorization header values; nil = none
		cookie   string   // raw Cookie header; "" = none
		wantUser string   // "" = anonymous
	}{
		{name: "missing"},
		{name: "bearer", auth: []string{"Bearer " + alice.Token}, wantUser: "alice"},
		{name: "lowercase scheme", auth: []string{"bearer " + alice.Token}, wantUser: "alice"},
		{name: "uppercase scheme", auth: []string{"BEARER " + alice.Token}, wantUser: "alice"},
		{name: "mixed case scheme and padding", auth: []string{"bEaReR   " + alice.Token + "  "}, wantUser: "alice"},
		{name: "scheme only", auth: []string{"Bearer"}},
		{name: "empty token", auth: []string{"Bearer "}},
		{name: "blank token", auth: []string{"Bearer    "}},
		{name: "no space after scheme", auth: []string{"Bearer" + alice.Token}},
		{name: "basic scheme", auth: []string{"Basic " + alice.Token}},
		{name: "token without scheme", auth: []string{alice.Token}},
		{name: "two tokens", auth: []string{"Bearer " + alice.Token + " " + bob.Token}},
		{name: "token with bad characters", auth: []string{"Bearer " + alice.Token[:42] + "+"}},
		{name: "short token", auth: []string{"Bearer " + alice.Token[:20]}},
		{name: "session ID instead of token", auth: []string{"Bearer " + alice.ID}},
		{name: "unknown token", auth: []string{"Bearer " + unknown}},
		{name: "revoked bearer", auth: []string{"Bearer " + revoked.Token}},
		{name: "expired bearer", auth: []string{"Bearer " + expired.Token}},
		{name: "tampered bearer", auth: []string{"Bearer " + string(tampered)}},
		{name: "oversized header", auth: []string{"Bearer " + strings.Repeat("A", 64<<10)}},
		{name: "second header ignored", auth: []string{"Basic eA==", "Bearer " + alice.Token}},
		{name: "cookie", cookie: "session=" + alice.Token, wantUser: "alice"},
		{name: "cookie among others", cookie: "theme=dark; session=" + alice.Token + "; lang=en", wantUser: "alice"},
		{name: "cookie with other name", cookie: "sid=" + alice.Token},
		{name: "empty cookie", cookie: "session="},
		{name: "malformed cookie", cookie: "session=%%%"},
		{name: "quoted cookie", cookie: `session="` + alice.Token + `"`, wantUser: "alice"},
		{name: "revoked cookie", cookie: "session=" + revoked.Token},
		{name: "expired cookie", cookie: "session=" + expired.Token},
		{name: "tampered cookie", cookie: "session=" + string(tampered)},
		{name: "oversized cookie", cookie: "session=" + strings.Repeat("A", 64<<10)},
		{name: "both present: bearer wins", auth: []string{"Bearer " + bob.Token}, cookie: "session=" + alice.Token, wantUser: "bob"},
		{name: "both present, lowercase scheme", auth: []string{"bearer " + bob.Token}, cookie: "session=" + alice.Token, wantUser: "bob"},
		{name: "invalid bearer falls back to cookie", auth: []string{"Bearer " + unknown}, cookie: "session=" + alice.Token, wantUser: "alice"},
		{name: "revoked bearer falls back to cookie", auth: []string{"Bearer " + revoked.Token}, cookie: "session=" + alice.Token, wantUser: "alice"},
		{name: "empty bearer falls back to cookie", auth: []string{"Bearer "}, cookie: "session=" + alice.Token, wantUser: "alice"},
		{name: "valid bearer with tampered cookie", auth: []string{"Bearer " + bob.Token}, cookie: "session=" + string(tampered), wantUser: "bob"},
		{name: "both revoked or expired", auth: []string{"Bearer " + revoked.Token}, cookie: "session=" + expired.Token},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, path := range []string{"/me", "/private"} {
				req := newRequest(t, http.MethodGet, srv.URL+path)
				for _, v := range tt.auth {
					req.Header.Add("Authorization", v)
				}
				if tt.cookie != "" {
					req.Header.Set("Cookie", tt.cookie)
				}
				resp := do(t, client, req)
				body := decode(t, resp)
				if path == "/private" && tt.wantUser == "" {
					if resp.StatusCode != http.StatusUnauthorized {
						t.Fatalf("GET /private: status %d, want 401", resp.StatusCode)
					}
					if got := resp.Header.Get("WWW-Authenticate"); got != "Bearer" {
						t.Errorf("WWW-Authenticate = %q, want Bearer", got)
					}
					if body["error"] == nil {
						t.Errorf("401 body %v has no error", body)
					}
					continue
				}
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("GET %s: status %d, want 200", path, resp.StatusCode)
				}
				if body["user"] != tt.wantUser || body["ok"] != (tt.wantUser != "") {
					t.Fatalf("GET %s: session %v, want user %q", path, body, tt.wantUser)
				}
				if tt.wantUser != "" {
					// Current carries the token the request presented.
					tok, _ := body["token"].(string)
					if gormsession.HashToken(tok) != body["id"] {
						t.Errorf("Current token does not hash to its ID: %v", body)
					}
				}
			}
		})
	}
	if n := e.sql.N() - before; n != 0 {
		t.Errorf("resolving %d requests ran %d SQL statements, want 0", 2*len(tests), n)
	}
}
