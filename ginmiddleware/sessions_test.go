package ginmiddleware_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/gorilla/sessions"

	"github.com/gormsession/gormsession"
	"github.com/gormsession/gormsession/ginmiddleware"
	"github.com/gormsession/gormsession/gorillastore"
	"github.com/gormsession/gormsession/internal/testdb"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

// storeCase is a gorilla store the Sessions API is tested on. m is the
// Manager behind it, nil for a store without server-side records.
type storeCase struct {
	name string
	new  func(t *testing.T) (sessions.Store, *gormsession.Manager)
}

var storeCases = []storeCase{
	{"gorillastore", func(t *testing.T) (sessions.Store, *gormsession.Manager) {
		e := newEnv(t, testdb.SQLite(t))
		return gorillastore.New(e.m, testKey), e.m
	}},
	{"cookiestore", func(t *testing.T) (sessions.Store, *gormsession.Manager) {
		return sessions.NewCookieStore(testKey), nil
	}},
}

// eachStore runs f as a parallel subtest on every store case.
func eachStore(t *testing.T, f func(t *testing.T, store sessions.Store, m *gormsession.Manager)) {
	t.Helper()
	for _, sc := range storeCases {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			store, m := sc.new(t)
			f(t, store, m)
		})
	}
}

// saveOr500 saves s, answering 500 when that fails.
func saveOr500(c *gin.Context, s ginmiddleware.Session) bool {
	if err := s.Save(); err != nil {
		c.AbortWithStatusJSON(http.StatusInternalServerError, gin.H{"error": err.Error()})
		return false
	}
	return true
}

// newSessionsServer serves the gin-contrib-shaped API over store:
//
//	/set?k=&v=  /get?k=  /delete?k=  /clear  /flash?v=  /flashes
//	/options?kind=path|domain|delete|samesite  /sub/get?k=
//	/many/set?a=&b=  /many/get
func newSessionsServer(t *testing.T, store sessions.Store) *httptest.Server {
	t.Helper()
	r := gin.New()
	one := r.Group("/", ginmiddleware.Sessions("mysession", store))
	get := func(c *gin.Context) {
		s := ginmiddleware.Default(c)
		c.JSON(http.StatusOK, gin.H{"value": s.Get(c.Query("k")), "id": s.ID(), "errors": len(c.Errors)})
	}
	one.GET("/get", get)
	one.GET("/sub/get", get)
	one.GET("/set", func(c *gin.Context) {
		s := ginmiddleware.Default(c)
		s.Set(c.Query("k"), c.Query("v"))
		if saveOr500(c, s) {
			c.JSON(http.StatusOK, gin.H{"id": s.ID()})
		}
	})
	one.GET("/delete", func(c *gin.Context) {
		s := ginmiddleware.Default(c)
		s.Delete(c.Query("k"))
		if saveOr500(c, s) {
			c.Status(http.StatusNoContent)
		}
	})
	one.GET("/clear", func(c *gin.Context) {
		s := ginmiddleware.Default(c)
		s.Clear()
		if saveOr500(c, s) {
			c.Status(http.StatusNoContent)
		}
	})
	one.GET("/flash", func(c *gin.Context) {
		s := ginmiddleware.Default(c)
		s.AddFlash(c.Query("v"))
		s.AddFlash("other:"+c.Query("v"), "other")
		if saveOr500(c, s) {
			c.Status(http.StatusNoContent)
		}
	})
	one.GET("/flashes", func(c *gin.Context) {
		s := ginmiddleware.Default(c)
		flashes := s.Flashes()
		if saveOr500(c, s) {
			c.JSON(http.StatusOK, gin.H{"flashes": flashes})
		}
	})
	one.GET("/options", func(c *gin.Context) {
		s := ginmiddleware.Default(c)
		switch c.Query("kind") {
		case "path":
			s.Options(ginmiddleware.Options{Path: "/sub", MaxAge: 3600, HttpOnly: true})
			s.Set("k", "in sub")
		case "domain":
			s.Options(ginmiddleware.Options{Path: "/", Domain: "example.com", MaxAge: 3600})
			s.Set("k", "v")
		case "delete":
			// gin-contrib/sessions' logout idiom; Options alone marks the
			// session for saving.
			s.Options(ginmiddleware.Options{Path: "/", MaxAge: -1})
		case "samesite":
			s.Options(ginmiddleware.Options{Path: "/", MaxAge: 3600, Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
			s.Set("k", "strict")
		default:
			c.AbortWithStatus(http.StatusBadRequest)
			return
		}
		if saveOr500(c, s) {
			c.JSON(http.StatusOK, gin.H{"id": s.ID()})
		}
	})
	many := r.Group("/many", ginmiddleware.SessionsMany([]string{"a", "b"}, store))
	many.GET("/set", func(c *gin.Context) {
		for _, name := range []string{"a", "b"} {
			s := ginmiddleware.DefaultMany(c, name)
			s.Set("v", c.Query(name))
			if !saveOr500(c, s) {
				return
			}
		}
		c.Status(http.StatusNoContent)
	})
	many.GET("/get", func(c *gin.Context) {
		c.JSON(http.StatusOK, gin.H{
			"a": ginmiddleware.DefaultMany(c, "a").Get("v"),
			"b": ginmiddleware.DefaultMany(c, "b").Get("v"),
		})
	})
	srv := httptest.NewTLSServer(r)
	t.Cleanup(srv.Close)
	return srv
}

// sessClient drives a sessions server with a cookie jar.
type sessClient struct {
	t      *testing.T
	srv    *httptest.Server
	client *http.Client
}

func newSessClient(t *testing.T, srv *httptest.Server) *sessClient {
	return &sessClient{t: t, srv: srv, client: jarClient(t, srv)}
}

// get requests path and returns the response and its JSON body.
func (c *sessClient) get(path string, query ...string) (*http.Response, map[string]any) {
	c.t.Helper()
	q := url.Values{}
	for i := 0; i+1 < len(query); i += 2 {
		q.Set(query[i], query[i+1])
	}
	u := c.srv.URL + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	resp := do(c.t, c.client, newRequest(c.t, http.MethodGet, u))
	body := decode(c.t, resp)
	if resp.StatusCode >= 300 {
		c.t.Fatalf("GET %s: status %d %v", path, resp.StatusCode, body)
	}
	return resp, body
}

func (c *sessClient) value(key string) any {
	c.t.Helper()
	_, body := c.get("/get", "k", key)
	return body["value"]
}

func TestSessionsSetGetAcrossRequests(t *testing.T) {
	eachStore(t, func(t *testing.T, store sessions.Store, m *gormsession.Manager) {
		c := newSessClient(t, newSessionsServer(t, store))
		if v := c.value("user"); v != nil {
			t.Fatalf("fresh session has user = %v", v)
		}
		_, body := c.get("/set", "k", "user", "v", "alice")
		c.get("/set", "k", "lang", "v", "en")
		if v := c.value("user"); v != "alice" {
			t.Fatalf("user = %v, want alice", v)
		}
		if v := c.value("lang"); v != "en" {
			t.Fatalf("lang = %v, want en", v)
		}
		if m != nil {
			id, _ := body["id"].(string)
			if _, ok := m.Get(id); !ok || id == "" {
				t.Fatalf("ID() = %q is not a session in the Manager", id)
			}
			if _, got := c.get("/get"); got["id"] != id {
				t.Fatalf("ID changed across requests: %v, want %s", got["id"], id)
			}
		}
		// Another browser does not see it.
		if v := newSessClient(t, c.srv).value("user"); v != nil {
			t.Fatalf("another client sees user = %v", v)
		}
	})
}

func TestSessionsDeleteKey(t *testing.T) {
	eachStore(t, func(t *testing.T, store sessions.Store, _ *gormsession.Manager) {
		c := newSessClient(t, newSessionsServer(t, store))
		c.get("/set", "k", "a", "v", "1")
		c.get("/set", "k", "b", "v", "2")
		c.get("/delete", "k", "a")
		if v := c.value("a"); v != nil {
			t.Fatalf("deleted key a = %v", v)
		}
		if v := c.value("b"); v != "2" {
			t.Fatalf("b = %v, want 2", v)
		}
	})
}

func TestSessionsFlashesAreReadOnce(t *testing.T) {
	eachStore(t, func(t *testing.T, store sessions.Store, _ *gormsession.Manager) {
		c := newSessClient(t, newSessionsServer(t, store))
		c.get("/flash", "v", "saved")
		c.get("/flash", "v", "again")
		_, body := c.get("/flashes")
		got, _ := body["flashes"].([]any)
		if len(got) != 2 || got[0] != "saved" || got[1] != "again" {
			t.Fatalf("flashes = %v, want [saved again]", body["flashes"])
		}
		_, body = c.get("/flashes")
		if got, _ := body["flashes"].([]any); len(got) != 0 {
			t.Fatalf("flashes read twice: %v", got)
		}
		// The flashes of another key are untouched by reading the default.
		if v, _ := c.value("other").([]any); len(v) != 2 || v[0] != "other:saved" {
			t.Fatalf("flashes under key other = %v", c.value("other"))
		}
	})
}

// TestSessionsMarkedForSavingAsGinContrib: Flashes marks the session for
// saving even without flashes (a read-only page that saves slides the
// cookie, as with gin-contrib/sessions), and Clear of an empty session
// does not (nothing is created for it).
func TestSessionsMarkedForSavingAsGinContrib(t *testing.T) {
	eachStore(t, func(t *testing.T, store sessions.Store, _ *gormsession.Manager) {
		c := newSessClient(t, newSessionsServer(t, store))
		if resp, _ := c.get("/clear"); len(resp.Header.Values("Set-Cookie")) != 0 {
			t.Fatalf("Clear of an empty session set %q", resp.Header.Values("Set-Cookie"))
		}
		c.get("/set", "k", "a", "v", "1")
		resp, body := c.get("/flashes")
		if got, _ := body["flashes"].([]any); len(got) != 0 {
			t.Fatalf("flashes = %v, want none", got)
		}
		if sc := resp.Header.Values("Set-Cookie"); len(sc) != 1 {
			t.Fatalf("Flashes without flashes, then Save: Set-Cookie %q, want the cookie set again", sc)
		}
		if v := c.value("a"); v != "1" {
			t.Fatalf("a = %v after a save of no flashes, want 1", v)
		}
	})
}

func TestSessionsClear(t *testing.T) {
	eachStore(t, func(t *testing.T, store sessions.Store, _ *gormsession.Manager) {
		c := newSessClient(t, newSessionsServer(t, store))
		c.get("/set", "k", "a", "v", "1")
		c.get("/flash", "v", "x")
		c.get("/clear")
		for _, k := range []string{"a", "_flash", "other"} {
			if v := c.value(k); v != nil {
				t.Fatalf("after Clear %s = %v", k, v)
			}
		}
		c.get("/set", "k", "a", "v", "2")
		if v := c.value("a"); v != "2" {
			t.Fatalf("session unusable after Clear: a = %v", v)
		}
	})
}

func TestSessionsOptions(t *testing.T) {
	eachStore(t, func(t *testing.T, store sessions.Store, m *gormsession.Manager) {
		srv := newSessionsServer(t, store)

		t.Run("path", func(t *testing.T) {
			c := newSessClient(t, srv)
			resp, _ := c.get("/options", "kind", "path")
			ck := findCookie(t, resp, "mysession")
			if ck.Path != "/sub" || ck.MaxAge != 3600 || !ck.HttpOnly {
				t.Fatalf("cookie %s, want Path=/sub Max-Age=3600 HttpOnly", ck)
			}
			if v := c.value("k"); v != nil {
				t.Fatalf("cookie of path /sub sent to /get: k = %v", v)
			}
			if _, body := c.get("/sub/get", "k", "k"); body["value"] != "in sub" {
				t.Fatalf("/sub/get k = %v, want %q", body["value"], "in sub")
			}
		})

		t.Run("domain", func(t *testing.T) {
			c := newSessClient(t, srv)
			resp, _ := c.get("/options", "kind", "domain")
			if ck := findCookie(t, resp, "mysession"); ck.Domain != "example.com" {
				t.Fatalf("cookie %s, want Domain=example.com", ck)
			}
		})

		t.Run("MaxAge -1", func(t *testing.T) {
			c := newSessClient(t, srv)
			_, body := c.get("/set", "k", "k", "v", "v")
			id, _ := body["id"].(string)
			resp, _ := c.get("/options", "kind", "delete")
			if ck := findCookie(t, resp, "mysession"); ck.MaxAge >= 0 {
				t.Fatalf("cookie %s does not delete the session cookie", ck)
			}
			if v := c.value("k"); v != nil {
				t.Fatalf("after MaxAge -1, k = %v", v)
			}
			if m != nil {
				if _, ok := m.Get(id); ok {
					t.Fatalf("session %s still in the Manager after MaxAge -1", id)
				}
			}
		})

		t.Run("SameSite", func(t *testing.T) {
			c := newSessClient(t, srv)
			resp, _ := c.get("/options", "kind", "samesite")
			ck := findCookie(t, resp, "mysession")
			if ck.SameSite != http.SameSiteStrictMode || !ck.Secure || !ck.HttpOnly {
				t.Fatalf("cookie %s, want SameSite=Strict Secure HttpOnly", ck)
			}
			if v := c.value("k"); v != "strict" {
				t.Fatalf("k = %v, want strict", v)
			}
		})
	})
}

func TestSessionsManyInOneRequest(t *testing.T) {
	eachStore(t, func(t *testing.T, store sessions.Store, _ *gormsession.Manager) {
		c := newSessClient(t, newSessionsServer(t, store))
		resp := do(t, c.client, newRequest(t, http.MethodGet, c.srv.URL+"/many/set?a=one&b=two"))
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("status %d", resp.StatusCode)
		}
		a, b := findCookie(t, resp, "a"), findCookie(t, resp, "b")
		if a.Value == b.Value {
			t.Fatal("sessions a and b share a cookie value")
		}
		_, body := c.get("/many/get")
		if body["a"] != "one" || body["b"] != "two" {
			t.Fatalf("many = %v, want a=one b=two", body)
		}
	})
}

// TestSessionsBadCookieIsNewSession guards against a tampered or foreign
// cookie failing the request: it yields a new, empty session. A store's
// Get error (gorilla's CookieStore gives one) is recorded in c.Errors;
// gorillastore gives none and tells its CookieRejected instead.
func TestSessionsBadCookieIsNewSession(t *testing.T) {
	eachStore(t, func(t *testing.T, store sessions.Store, _ *gormsession.Manager) {
		var rejected atomic.Int64
		wantErrors := float64(1)
		if gs, ok := store.(*gorillastore.Store); ok {
			gs.CookieRejected = func(*http.Request, error) { rejected.Add(1) }
			wantErrors = 0
		}
		srv := newSessionsServer(t, store)
		c := newSessClient(t, srv)
		resp, _ := c.get("/set", "k", "k", "v", "v")
		good := findCookie(t, resp, "mysession").Value
		bads := []string{"garbage", good[:len(good)/2], strings.Repeat("A", 4000), good[:10] + "x" + good[11:]}
		for _, bad := range bads {
			req := newRequest(t, http.MethodGet, srv.URL+"/get?k=k")
			req.AddCookie(&http.Cookie{Name: "mysession", Value: bad})
			resp := do(t, srv.Client(), req)
			body := decode(t, resp)
			if resp.StatusCode != http.StatusOK || body["value"] != nil {
				t.Fatalf("cookie %.20q: status %d body %v, want 200 and an empty session", bad, resp.StatusCode, body)
			}
			if body["errors"] != wantErrors {
				t.Fatalf("cookie %.20q: %v errors recorded, want %v", bad, body["errors"], wantErrors)
			}
		}
		if _, ok := store.(*gorillastore.Store); ok && rejected.Load() != int64(len(bads)) {
			t.Fatalf("CookieRejected called %d times, want %d", rejected.Load(), len(bads))
		}
	})
}

// TestSessionsUnusedSessionIsNotSaved checks that a request that never
// changes its session does not set a cookie.
func TestSessionsUnusedSessionIsNotSaved(t *testing.T) {
	eachStore(t, func(t *testing.T, store sessions.Store, _ *gormsession.Manager) {
		c := newSessClient(t, newSessionsServer(t, store))
		resp, _ := c.get("/get", "k", "k")
		if sc := resp.Header.Values("Set-Cookie"); len(sc) != 0 {
			t.Fatalf("reading a session set cookies %q", sc)
		}
	})
}

func TestDefaultWithoutMiddlewarePanics(t *testing.T) {
	c, _ := gin.CreateTestContext(httptest.NewRecorder())
	for name, f := range map[string]func(){
		"Default":     func() { ginmiddleware.Default(c) },
		"DefaultMany": func() { ginmiddleware.DefaultMany(c, "a") },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if r := recover(); r == nil || !strings.Contains(r.(string), "ginmiddleware") {
					t.Fatalf("recovered %v, want a ginmiddleware panic", r)
				}
			}()
			f()
		})
	}
}

// TestSessionSavedTwiceInOneRequest saves a new session, changes it and
// saves it again in one request, as handlers written for
// gin-contrib/sessions do; the second Save must not fail.
func TestSessionSavedTwiceInOneRequest(t *testing.T) {
	eachStore(t, func(t *testing.T, store sessions.Store, _ *gormsession.Manager) {
		r := gin.New()
		r.Use(ginmiddleware.Sessions("mysession", store))
		r.GET("/", func(c *gin.Context) {
			s := ginmiddleware.Default(c)
			if s.Get("a") != nil {
				c.JSON(http.StatusOK, gin.H{"a": s.Get("a"), "b": s.Get("b")})
				return
			}
			s.Set("a", "1")
			if !saveOr500(c, s) {
				return
			}
			s.Set("b", "2")
			if saveOr500(c, s) {
				c.JSON(http.StatusOK, gin.H{})
			}
		})
		srv := httptest.NewTLSServer(r)
		t.Cleanup(srv.Close)
		c := newSessClient(t, srv)
		c.get("/")
		if _, body := c.get("/"); body["a"] != "1" || body["b"] != "2" {
			t.Fatalf("next request: %v, want a=1 b=2", body)
		}
	})
}
