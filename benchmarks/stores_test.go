package benchmarks

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gormsession/gormsession/internal/testdb"

	ginsessions "github.com/gin-contrib/sessions"
	gingorm "github.com/gin-contrib/sessions/gorm"
	"github.com/gin-gonic/gin"
	"github.com/gorilla/sessions"
	"github.com/wader/gormstore/v2"
	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"

	"github.com/gormsession/gormsession"
	"github.com/gormsession/gormsession/gorillastore"
)

// cookieName is the session name every store uses.
const cookieName = "session"

var (
	hashKey = []byte("0123456789abcdef0123456789abcdef")
	// values is what every session holds: a few typical entries.
	values = map[string]any{"user": "alice", "role": "admin", "visits": 12}
)

// subject is one store under test, behind the operations the benchmarks
// run. Each method handles one request.
type subject interface {
	// get reads the session of r and returns its "user" value.
	get(w http.ResponseWriter, r *http.Request) (any, error)
	// getSet reads the session of r, sets the entries of kv and saves it.
	getSet(w http.ResponseWriter, r *http.Request, kv map[string]any) error
}

// gorillaSubject runs a gorilla/sessions Store.
type gorillaSubject struct{ store sessions.Store }

func (g gorillaSubject) get(w http.ResponseWriter, r *http.Request) (any, error) {
	s, err := g.store.Get(r, cookieName)
	if err != nil {
		return nil, err
	}
	return s.Values["user"], nil
}

func (g gorillaSubject) getSet(w http.ResponseWriter, r *http.Request, kv map[string]any) error {
	s, err := g.store.Get(r, cookieName)
	if err != nil {
		return err
	}
	for k, v := range kv {
		s.Values[k] = v
	}
	return s.Save(r, w)
}

// ginSubject runs a gin-contrib/sessions Store through its own API, as a
// Gin application uses it: the Sessions middleware, then Default(c).
type ginSubject struct {
	engine *gin.Engine
	mw     gin.HandlerFunc
}

func newGinSubject(store ginsessions.Store) ginSubject {
	gin.SetMode(gin.ReleaseMode)
	return ginSubject{engine: gin.New(), mw: ginsessions.Sessions(cookieName, store)}
}

func (g ginSubject) session(w http.ResponseWriter, r *http.Request) ginsessions.Session {
	c := gin.CreateTestContextOnly(w, g.engine)
	c.Request = r
	g.mw(c)
	return ginsessions.Default(c)
}

func (g ginSubject) get(w http.ResponseWriter, r *http.Request) (any, error) {
	return g.session(w, r).Get("user"), nil
}

func (g ginSubject) getSet(w http.ResponseWriter, r *http.Request, kv map[string]any) error {
	s := g.session(w, r)
	for k, v := range kv {
		s.Set(k, v)
	}
	return s.Save()
}

// store is a way to build a subject on a database.
type store struct {
	name string
	// usesDB is false for the cookie store, which keeps values in the cookie.
	usesDB bool
	// fixedTable is true for a store whose table name cannot be chosen: on
	// PostgreSQL it gets a schema of its own.
	fixedTable bool
	// open builds the store on db, in the given table when it can.
	open func(tb testing.TB, db *gorm.DB, table string) subject
}

var stores = []store{
	{name: "gormsession", usesDB: true, open: func(tb testing.TB, db *gorm.DB, table string) subject {
		backend, err := gormsession.NewStore(db, gormsession.StoreOptions{TableName: table})
		if err != nil {
			tb.Fatal(err)
		}
		m, err := gormsession.NewManager(context.Background(), backend, gormsession.ManagerOptions{})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() {
			if err := m.Close(); err != nil {
				tb.Errorf("close the Manager: %v", err)
			}
		})
		return gorillaSubject{gorillastore.New(m, hashKey)}
	}},
	{name: "wader-gormstore", usesDB: true, open: func(tb testing.TB, db *gorm.DB, table string) subject {
		return gorillaSubject{gormstore.NewOptions(db, gormstore.Options{TableName: table}, hashKey)}
	}},
	{name: "gin-contrib-gorm", usesDB: true, fixedTable: true, open: func(tb testing.TB, db *gorm.DB, _ string) subject {
		// No background cleanup: gin-contrib's cleanup goroutine cannot be
		// stopped. The table is "sessions".
		return newGinSubject(gingorm.NewStore(db, false, hashKey))
	}},
	{name: "floor", usesDB: true, open: newFloorSubject},
	{name: "gorilla-cookiestore", open: func(tb testing.TB, db *gorm.DB, _ string) subject {
		cs := sessions.NewCookieStore(hashKey)
		return gorillaSubject{cs}
	}},
}

// database is one database kind the stores run on.
type database struct {
	name string
	// open returns a database of this kind for one store, with every
	// statement counted by stmts, and a table name of the store's own (its
	// own schema too when ownSchema is set, on PostgreSQL). It skips tb when
	// the database is unreachable.
	open func(tb testing.TB, stmts *testdb.Counter, ownSchema bool) (db *gorm.DB, table string)
}

var databases = []database{
	{name: "sqlite", open: openSQLite},
	{name: "postgres", open: func(tb testing.TB, stmts *testdb.Counter, ownSchema bool) (*gorm.DB, string) {
		return openPostgres(tb, stmts, ownSchema, "")
	}},
	// The same server with synchronous_commit off for every store's
	// connections: a commit no longer waits for its WAL flush, as on a
	// server whose disk has a write cache. It shows the cost of the round
	// trips each store makes, which the flush hides.
	{name: "postgres-async-commit", open: func(tb testing.TB, stmts *testdb.Counter, ownSchema bool) (*gorm.DB, string) {
		return openPostgres(tb, stmts, ownSchema, "synchronous_commit=off")
	}},
}

// openSQLite gives every store a file of its own, with the same settings.
func openSQLite(tb testing.TB, stmts *testdb.Counter, _ bool) (*gorm.DB, string) {
	path := filepath.Join(tb.TempDir(), "sessions.db")
	// WAL, a busy timeout and synchronous=NORMAL, as gormsession's README
	// advises, for every store.
	db, err := gorm.Open(sqlite.Open(testdb.SQLiteDSN(path)), &gorm.Config{Logger: stmts})
	if err != nil {
		tb.Fatalf("open sqlite: %v", err)
	}
	testdb.CloseOnCleanup(tb, db)
	return db, "sessions"
}

// openPostgres gives the store a table of its own, or a schema of its own
// for a store whose table name is fixed; both are dropped at cleanup.
// params are extra run-time parameters ("name=value&...") for the store's
// connections.
func openPostgres(tb testing.TB, stmts *testdb.Counter, ownSchema bool, params string) (*gorm.DB, string) {
	dsn := testdb.PostgresDSN()
	admin := testdb.DB{Name: "postgres", DSN: dsn}.Open(tb) // skips or fails when unreachable
	name := testdb.UniqueName("gs_bench_")
	withParams := func(dsn, params string) string {
		if params == "" {
			return dsn
		}
		if strings.Contains(dsn, "?") {
			return dsn + "&" + params
		}
		return dsn + "?" + params
	}
	if !ownSchema {
		db, err := gorm.Open(postgres.Open(withParams(dsn, params)), &gorm.Config{Logger: stmts})
		if err != nil {
			tb.Fatalf("open postgres: %v", err)
		}
		testdb.CloseOnCleanup(tb, db)
		testdb.DropOnCleanup(tb, admin, name)
		return db, name
	}
	if err := admin.Exec(`CREATE SCHEMA ` + name).Error; err != nil {
		tb.Fatalf("create schema: %v", err)
	}
	tb.Cleanup(func() { admin.Exec(`DROP SCHEMA ` + name + ` CASCADE`) })
	if params != "" {
		params += "&"
	}
	db, err := gorm.Open(postgres.Open(withParams(dsn, params+"search_path="+name)), &gorm.Config{Logger: stmts})
	if err != nil {
		tb.Fatalf("open postgres: %v", err)
	}
	testdb.CloseOnCleanup(tb, db)
	return db, "sessions"
}

// writer is a ResponseWriter that keeps only its header.
type writer struct{ h http.Header }

func newWriter() *writer { return &writer{h: http.Header{}} }

func (w *writer) Header() http.Header         { return w.h }
func (w *writer) Write(b []byte) (int, error) { return len(b), nil }
func (w *writer) WriteHeader(int)             {}

// request returns a new GET request carrying cookie ("" for none). Stores
// keep per-request state in the request (gorilla's registry), so every
// operation gets a request of its own, as it would in a server.
func request(base *http.Request) *http.Request {
	r := new(http.Request)
	*r = *base
	return r
}

func baseRequest(cookie string) *http.Request {
	r, _ := http.NewRequest("GET", "http://example.com/", nil)
	if cookie != "" {
		r.Header.Set("Cookie", cookie)
	}
	return r
}

// newSession saves a session holding values with sub and returns the
// Cookie header that carries it.
func newSession(tb testing.TB, sub subject) string {
	tb.Helper()
	w := newWriter()
	if err := sub.getSet(w, baseRequest(""), values); err != nil {
		tb.Fatalf("save: %v", err)
	}
	setCookie := w.h.Values("Set-Cookie")
	if len(setCookie) != 1 {
		tb.Fatalf("Set-Cookie %q, want one", setCookie)
	}
	cookie, _, _ := strings.Cut(setCookie[0], ";")
	return cookie
}
