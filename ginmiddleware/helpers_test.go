package ginmiddleware_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"go.uber.org/goleak"
	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/gormsession/gormsession"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode)
	goleak.VerifyTestMain(m)
}

const defaultPostgresDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// requireDB reports whether GORMSESSION_REQUIRE_DB (a comma-separated list)
// names the database, which must then be reachable.
func requireDB(name string) bool {
	for _, n := range strings.Split(os.Getenv("GORMSESSION_REQUIRE_DB"), ",") {
		if strings.TrimSpace(n) == name {
			return true
		}
	}
	return false
}

// counter is a GORM logger that counts the SQL statements run through it.
type counter struct {
	logger.Interface
	n atomic.Int64
}

func (c *counter) LogMode(logger.LogLevel) logger.Interface { return c }

func (c *counter) Trace(context.Context, time.Time, func() (string, int64), error) {
	c.n.Add(1)
}

// openSQLite opens a SQLite file of the test's own, in WAL mode.
func openSQLite(t testing.TB, log logger.Interface) *gorm.DB {
	t.Helper()
	dsn := filepath.Join(t.TempDir(), "sessions.db") + "?_journal_mode=WAL&_busy_timeout=10000"
	db, err := gorm.Open(sqlite.Open(dsn), &gorm.Config{Logger: log})
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	closeOnCleanup(t, db)
	return db
}

// openPostgres opens the PostgreSQL test database, or skips the test when
// it is unreachable (fails when GORMSESSION_REQUIRE_DB names postgres).
func openPostgres(t testing.TB, log logger.Interface) *gorm.DB {
	t.Helper()
	dsn := os.Getenv("GORMSESSION_POSTGRES_DSN")
	if dsn == "" {
		dsn = defaultPostgresDSN
	}
	db, err := gorm.Open(postgres.Open(dsn), &gorm.Config{Logger: log})
	if err == nil {
		sqlDB, _ := db.DB()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = sqlDB.PingContext(ctx)
		cancel()
		if err != nil {
			sqlDB.Close()
		}
	}
	if err != nil {
		if requireDB("postgres") {
			t.Fatalf("PostgreSQL is unreachable and GORMSESSION_REQUIRE_DB requires it: %v", err)
		}
		t.Skipf("PostgreSQL unreachable (set GORMSESSION_POSTGRES_DSN): %v", err)
	}
	closeOnCleanup(t, db)
	return db
}

func closeOnCleanup(t testing.TB, db *gorm.DB) {
	t.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			sqlDB.Close()
		}
	})
}

func uniqueTable() string {
	var b [6]byte
	rand.Read(b[:])
	return "gs_gin_test_" + hex.EncodeToString(b[:])
}

// env is a Manager on a real database with a settable clock and a count
// of the SQL statements it runs.
type env struct {
	m     *gormsession.Manager
	store *gormsession.Store
	sql   *counter
	now   atomic.Int64
	table string
}

func (e *env) Now() time.Time      { return time.Unix(0, e.now.Load()) }
func (e *env) Add(d time.Duration) { e.now.Add(int64(d)) }

// newEnv returns a Manager on its own table of the named database
// ("sqlite" or "postgres"); the table is dropped and the Manager closed
// when the test ends.
func newEnv(t testing.TB, dbName string) *env {
	t.Helper()
	e := &env{sql: &counter{Interface: logger.Discard}, table: uniqueTable()}
	e.now.Store(time.Now().UnixNano())
	var db *gorm.DB
	if dbName == "postgres" {
		db = openPostgres(t, e.sql)
		t.Cleanup(func() { db.Exec(`DROP TABLE IF EXISTS "` + e.table + `"`) })
	} else {
		db = openSQLite(t, e.sql)
	}
	st, err := gormsession.NewStore(db, gormsession.StoreOptions{TableName: e.table})
	if err != nil {
		t.Fatalf("NewStore: %v", err)
	}
	m, err := gormsession.NewManager(context.Background(), st, gormsession.ManagerOptions{Now: e.Now})
	if err != nil {
		t.Fatalf("NewManager: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	e.m, e.store = m, st
	return e
}

// restart returns a new Manager on the same table, as a restarted process
// would have.
func (e *env) restart(t testing.TB) *gormsession.Manager {
	t.Helper()
	m, err := gormsession.NewManager(context.Background(), e.store, gormsession.ManagerOptions{Now: e.Now})
	if err != nil {
		t.Fatalf("NewManager: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func (e *env) create(t testing.TB, p gormsession.NewSession) gormsession.Session {
	t.Helper()
	s, err := e.m.Create(context.Background(), p)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return s
}

// eachDB runs f as a parallel subtest on SQLite and on PostgreSQL.
func eachDB(t *testing.T, f func(t *testing.T, dbName string)) {
	t.Helper()
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f(t, name)
		})
	}
}

// decode reads a JSON response body into a map.
func decode(t testing.TB, resp *http.Response) map[string]any {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	var v map[string]any
	if len(b) > 0 {
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("body %q is not JSON: %v", b, err)
		}
	}
	return v
}

// do sends req with client and fails the test on a transport error.
func do(t testing.TB, client *http.Client, req *http.Request) *http.Response {
	t.Helper()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	return resp
}

func newRequest(t testing.TB, method, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// findCookie returns the Set-Cookie of resp named name.
func findCookie(t testing.TB, resp *http.Response, name string) *http.Cookie {
	t.Helper()
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no Set-Cookie %q in %q", name, resp.Header.Values("Set-Cookie"))
	return nil
}
