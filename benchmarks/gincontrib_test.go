package benchmarks

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	ginsessions "github.com/gin-contrib/sessions"
	gincookie "github.com/gin-contrib/sessions/cookie"
	gingorm "github.com/gin-contrib/sessions/gorm"
	"github.com/gin-contrib/sessions/tester"
	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"github.com/gormsession/gormsession"
	"github.com/gormsession/gormsession/ginmiddleware"
	"github.com/gormsession/gormsession/gorillastore"
	"github.com/gormsession/gormsession/internal/testdb"
)

// The tests of this file check what ginmiddleware's doc and
// docs/migrating.md say about gin-contrib/sessions, against
// gin-contrib/sessions itself.

// newManagerOn returns a Manager on a table of its own in db, closed when
// the test ends.
func newManagerOn(t *testing.T, db *gorm.DB, now func() time.Time) *gormsession.Manager {
	t.Helper()
	backend, err := gormsession.NewStore(db, gormsession.StoreOptions{TableName: testdb.UniqueName("gs_gin_")})
	if err != nil {
		t.Fatal(err)
	}
	m, err := gormsession.NewManager(context.Background(), backend, gormsession.ManagerOptions{SyncInterval: -1, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("close the Manager: %v", err)
		}
	})
	return m
}

// newGorillaStore returns a gorillastore Store on a SQLite database of its
// own.
func newGorillaStore(t *testing.T) *gorillastore.Store {
	t.Helper()
	db, _ := openSQLite(t, testdb.NewCounter(), false)
	return gorillastore.New(newManagerOn(t, db, nil), hashKey)
}

// contribStore gives a gorillastore Store gin-contrib/sessions' Store
// interface, the one its Sessions middleware and its tester take: a
// gorilla store with an Options method. (gorillastore's Options is a
// field, as gorilla's CookieStore's is; this is what gin-contrib's own
// cookie store does for CookieStore.)
type contribStore struct{ *gorillastore.Store }

func (s contribStore) Options(o ginsessions.Options) { s.Store.Options = o.ToGorillaOptions() }

// TestGinContribTester runs gin-contrib/sessions' own store tests on
// gorillastore, through gin-contrib's Sessions middleware and Session.
//
// The store's options are set to gin-contrib's as its Options test needs
// them: that test checks the Set-Cookie attributes in their order
// (attribute 1 must be Path or Domain or SameSite), so it passes only for
// a store whose options have no Path of their own where it sets a Domain,
// which is what store.Options(sessions.Options{Domain: "localhost"})
// does: it replaces gorillastore's defaults wholesale, as it does
// CookieStore's.
func TestGinContribTester(t *testing.T) {
	gin.SetMode(gin.TestMode)
	newStore := func(t *testing.T) ginsessions.Store { return contribStore{newGorillaStore(t)} }
	// tester's functions take an unexported function type, to which
	// newStore is assignable: each is called by name.
	t.Run("GetSet", func(t *testing.T) { t.Parallel(); tester.GetSet(t, newStore) })
	t.Run("DeleteKey", func(t *testing.T) { t.Parallel(); tester.DeleteKey(t, newStore) })
	t.Run("Flashes", func(t *testing.T) { t.Parallel(); tester.Flashes(t, newStore) })
	t.Run("Clear", func(t *testing.T) { t.Parallel(); tester.Clear(t, newStore) })
	t.Run("Options", func(t *testing.T) { t.Parallel(); tester.Options(t, newStore) })
	t.Run("Many", func(t *testing.T) { t.Parallel(); tester.Many(t, newStore) })
}

// commonSession is the part of gin-contrib's Session and ginmiddleware's
// Session that have the same signature (all but Options, whose argument
// types differ by package).
type commonSession interface {
	ID() string
	Get(key any) any
	Set(key, val any)
	Delete(key any)
	Clear()
	AddFlash(value any, vars ...string)
	Flashes(vars ...string) []any
	Save() error
}

// ginImpl is one implementation of gin-contrib/sessions' API.
type ginImpl struct {
	name       string
	middleware func(t *testing.T) gin.HandlerFunc
	session    func(c *gin.Context) commonSession
	// options calls Session.Options with gin-contrib's Options, converted.
	options func(c *gin.Context, o ginsessions.Options)
}

var ginImpls = []ginImpl{
	{
		name: "gin-contrib cookie",
		middleware: func(t *testing.T) gin.HandlerFunc {
			return ginsessions.Sessions(cookieName, gincookie.NewStore(hashKey))
		},
		session: func(c *gin.Context) commonSession { return ginsessions.Default(c) },
		options: func(c *gin.Context, o ginsessions.Options) { ginsessions.Default(c).Options(o) },
	},
	{
		name: "gin-contrib gorm",
		middleware: func(t *testing.T) gin.HandlerFunc {
			db, _ := openSQLite(t, testdb.NewCounter(), false)
			return ginsessions.Sessions(cookieName, gingorm.NewStore(db, false, hashKey))
		},
		session: func(c *gin.Context) commonSession { return ginsessions.Default(c) },
		options: func(c *gin.Context, o ginsessions.Options) { ginsessions.Default(c).Options(o) },
	},
	{
		name: "ginmiddleware + gorillastore",
		middleware: func(t *testing.T) gin.HandlerFunc {
			return ginmiddleware.Sessions(cookieName, newGorillaStore(t))
		},
		session: func(c *gin.Context) commonSession { return ginmiddleware.Default(c) },
		options: func(c *gin.Context, o ginsessions.Options) {
			ginmiddleware.Default(c).Options(ginmiddleware.Options{
				Path: o.Path, Domain: o.Domain, MaxAge: o.MaxAge,
				Secure: o.Secure, HttpOnly: o.HttpOnly, SameSite: o.SameSite,
			})
		},
	},
}

// ginParityApp serves the behaviours compared:
//
//	/set?k=&v=   Set and Save
//	/get?k=      Get, no Save
//	/flash?v=    AddFlash and Save
//	/flashes     Flashes and Save (a read-only page that saves)
//	/clear       Clear and Save
//	/logout      Options(MaxAge: -1) and Save
//	/path        Options(Path: "/p", MaxAge: 60) and Save
//
// Every answer is a JSON object with what the handler saw and Save's error.
func ginParityApp(t *testing.T, impl ginImpl) *httptest.Server {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(impl.middleware(t))
	save := func(c *gin.Context, s commonSession, out gin.H) {
		if err := s.Save(); err != nil {
			c.JSON(http.StatusInternalServerError, gin.H{"error": err.Error()})
			return
		}
		c.JSON(http.StatusOK, out)
	}
	r.GET("/set", func(c *gin.Context) {
		s := impl.session(c)
		s.Set(c.Query("k"), c.Query("v"))
		save(c, s, gin.H{})
	})
	r.GET("/get", func(c *gin.Context) {
		c.JSON(http.StatusOK, gin.H{"v": impl.session(c).Get(c.Query("k"))})
	})
	r.GET("/flash", func(c *gin.Context) {
		s := impl.session(c)
		s.AddFlash(c.Query("v"))
		save(c, s, gin.H{})
	})
	r.GET("/flashes", func(c *gin.Context) {
		s := impl.session(c)
		save(c, s, gin.H{"flashes": s.Flashes()})
	})
	r.GET("/clear", func(c *gin.Context) {
		s := impl.session(c)
		s.Clear()
		save(c, s, gin.H{})
	})
	r.GET("/logout", func(c *gin.Context) {
		impl.options(c, ginsessions.Options{MaxAge: -1})
		save(c, impl.session(c), gin.H{})
	})
	r.GET("/path", func(c *gin.Context) {
		s := impl.session(c)
		s.Set("k", "v")
		impl.options(c, ginsessions.Options{Path: "/p", MaxAge: 60})
		save(c, s, gin.H{})
	})
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return srv
}

// observation is what a client sees of one request: the status, the body,
// and the session cookie set (its attributes with Expires and the value
// left out: they differ by store and by clock).
type observation struct {
	Status int
	Body   string
	Cookie string // "" for none; "deleted" for a deleting one
}

// parityClient requests paths of srv with the cookie its last answers set.
type parityClient struct {
	t      *testing.T
	srv    *httptest.Server
	cookie string
	name   string // the cookie's name; "" for cookieName
}

func (p *parityClient) get(path string) observation {
	p.t.Helper()
	name := p.name
	if name == "" {
		name = cookieName
	}
	req, _ := http.NewRequest("GET", p.srv.URL+path, nil)
	if p.cookie != "" {
		req.AddCookie(&http.Cookie{Name: name, Value: p.cookie})
	}
	resp, err := p.srv.Client().Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	o := observation{Status: resp.StatusCode, Body: strings.TrimSpace(string(body))}
	for _, c := range resp.Cookies() {
		if c.Name != name {
			continue
		}
		if c.MaxAge < 0 {
			o.Cookie, p.cookie = "deleted", ""
			continue
		}
		o.Cookie = fmt.Sprintf("Path=%s MaxAge=%d", c.Path, c.MaxAge)
		p.cookie = c.Value
	}
	return o
}

// TestGinContribBehavioursSideBySide runs one gin application on
// gin-contrib/sessions (its cookie store and its gorm store) and on
// ginmiddleware with gorillastore, and requires the same answers and the
// same cookies from all three: flashes (read once; Flashes with none and
// Save still saves), Options (per-session path and MaxAge; MaxAge -1
// deletes the session and the cookie), Clear (saves only when there was
// something to clear).
func TestGinContribBehavioursSideBySide(t *testing.T) {
	scenarios := map[string][]string{
		"flashes":            {"/flash?v=hello", "/flashes", "/flashes", "/get?k=_flash"},
		"flashes with none":  {"/set?k=a&v=1", "/flashes"},
		"flashes, new visit": {"/flashes", "/get?k=a"},
		"clear":              {"/set?k=a&v=1", "/clear", "/get?k=a"},
		"clear of nothing":   {"/clear"},
		"logout":             {"/set?k=a&v=1", "/logout", "/get?k=a"},
		"logout of nothing":  {"/logout"},
		"options path":       {"/path"},
		"read only":          {"/set?k=a&v=1", "/get?k=a"},
	}
	for name, paths := range scenarios {
		t.Run(name, func(t *testing.T) {
			var want []observation
			for i, impl := range ginImpls {
				c := &parityClient{t: t, srv: ginParityApp(t, impl)}
				var got []observation
				for _, p := range paths {
					got = append(got, c.get(p))
				}
				if i == 0 {
					want = got
					continue
				}
				// The default MaxAge is 30 days on every store here; the
				// attributes other than Path and MaxAge are the stores'
				// defaults, which differ (see docs/migrating.md).
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s:\n got %+v\nwant %+v (%s)", impl.name, got, want, ginImpls[0].name)
				}
			}
		})
	}
}

// TestGinContribAppMigrated switches a gin application from
// gin-contrib/sessions to ginmiddleware and gorillastore with only its
// imports and store changed, and sends it the cookies returning visitors
// hold: gin-contrib's cookie store's and gorm store's (same key),
// gorillastore's own expired, revoked and tampered ones. Every answer is a
// 200 with a new session.
func TestGinContribAppMigrated(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	db, _ := openSQLite(t, testdb.NewCounter(), false)
	clock := testdb.NewClock(time.Now())
	m := newManagerOn(t, db, clock.Now)
	store := gorillastore.New(m, hashKey)
	r := gin.New()
	r.Use(ginmiddleware.Sessions(cookieName, store))
	r.GET("/", func(c *gin.Context) {
		s := ginmiddleware.Default(c)
		n, _ := s.Get("n").(int)
		s.Set("n", n+1)
		if c.Query("maxage") != "" {
			s.Options(ginmiddleware.Options{Path: "/", MaxAge: 30})
		}
		if err := s.Save(); err != nil {
			c.AbortWithStatus(http.StatusInternalServerError)
			return
		}
		c.String(http.StatusOK, "%d", n+1)
	})
	srv := httptest.NewServer(r)
	defer srv.Close()

	// Cookies from the stores the application used before.
	oldCookie := func(store ginsessions.Store) string {
		o := &parityClient{t: t, srv: ginParityApp(t, ginImpl{
			middleware: func(*testing.T) gin.HandlerFunc { return ginsessions.Sessions(cookieName, store) },
			session:    func(c *gin.Context) commonSession { return ginsessions.Default(c) },
		})}
		o.get("/set?k=user&v=alice")
		return o.cookie
	}
	fromCookieStore := oldCookie(gincookie.NewStore(hashKey))
	fromGormStore := oldCookie(gingorm.NewStore(db, false, hashKey))

	c := &parityClient{t: t, srv: srv}
	c.get("/?maxage=30")
	expired := c.cookie
	c = &parityClient{t: t, srv: srv}
	c.get("/")
	revoked := c.cookie
	var token []byte
	if err := store.Codecs[0].Decode(cookieName, revoked, &token); err != nil {
		t.Fatal(err)
	}
	id := gormsession.HashToken(string(token))
	if err := m.Revoke(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	c = &parityClient{t: t, srv: srv}
	c.get("/")
	tampered := []byte(c.cookie)
	tampered[len(tampered)/2] ^= 0x01
	clock.Add(time.Minute) // expired has

	for name, cookie := range map[string]string{
		"gin-contrib cookie store's": fromCookieStore,
		"gin-contrib gorm store's":   fromGormStore,
		"expired":                    expired,
		"revoked":                    revoked,
		"tampered":                   string(tampered),
	} {
		c := &parityClient{t: t, srv: srv, cookie: cookie}
		if o := c.get("/"); o.Status != http.StatusOK || o.Body != "1" || o.Cookie == "" {
			t.Errorf("%s cookie: %+v, want 200, a new session and its cookie", name, o)
		}
	}
}

// TestMovingOldSessionsGin runs the guide's gin setup that keeps users
// signed in: a visitor holding a cookie of gin-contrib/sessions' gorm
// store or cookie store (key "secret") keeps their values after the
// switch, and the next request carries only the new cookie.
func TestMovingOldSessionsGin(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	for _, kind := range []string{"gorm", "cookie"} {
		t.Run(kind, func(t *testing.T) {
			db, _ := openSQLite(t, testdb.NewCounter(), false)
			var old ginsessions.Store = gincookie.NewStore([]byte("secret"))
			from := fromGinContribCookie()
			if kind == "gorm" {
				old = gingorm.NewStore(db, false, []byte("secret"))
				from = fromGinContribGorm(db)
			}
			before := &parityClient{t: t, srv: ginParityApp(t, ginImpl{
				middleware: func(*testing.T) gin.HandlerFunc { return ginsessions.Sessions("mysession", old) },
				session:    func(c *gin.Context) commonSession { return ginsessions.Default(c) },
			}), name: "mysession"}
			before.get("/set?k=count&v=41")
			if before.cookie == "" {
				t.Fatal("no cookie from gin-contrib")
			}

			r := gin.New()
			m, err := ginMovingSetup(context.Background(), r, db, from)
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := m.Close(); err != nil {
					t.Errorf("close the Manager: %v", err)
				}
			}()
			r.GET("/", func(c *gin.Context) {
				c.String(http.StatusOK, "%v", ginmiddleware.Default(c).Get("count"))
			})
			srv := httptest.NewServer(r)
			defer srv.Close()
			get := func(cookie string) (string, []*http.Cookie) {
				req, _ := http.NewRequest("GET", srv.URL, nil)
				req.AddCookie(&http.Cookie{Name: "mysession", Value: cookie})
				resp, err := srv.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				body, _ := io.ReadAll(resp.Body)
				return string(body), resp.Cookies()
			}
			body, set := get(before.cookie)
			if body != "41" || len(set) != 1 {
				t.Fatalf("with the old cookie: %q, cookies %v; want 41 and the moved session's cookie", body, set)
			}
			if body, set := get(set[0].Value); body != "41" || len(set) != 0 {
				t.Fatalf("with the new cookie: %q, cookies %v", body, set)
			}
		})
	}
}
