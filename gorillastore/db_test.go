package gorillastore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/gormsession/gormsession"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testDB is one database the tests run on. Open returns a new *gorm.DB (a
// new connection pool) on the same database each time, as a restarted
// process would get.
type testDB struct {
	Name  string
	Open  func(t testing.TB) *gorm.DB
	Table string // a table of this test's own
}

const defaultPostgresDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// requireDB reports whether the named database must be reachable
// (GORMSESSION_REQUIRE_DB is a comma-separated list of names).
func requireDB(name string) bool {
	for _, n := range strings.Split(os.Getenv("GORMSESSION_REQUIRE_DB"), ",") {
		if strings.TrimSpace(n) == name {
			return true
		}
	}
	return false
}

func quietConfig() *gorm.Config {
	return &gorm.Config{Logger: logger.Discard}
}

func newSQLite(t testing.TB) testDB {
	path := filepath.Join(t.TempDir(), "sessions.db")
	dsn := path + "?_journal_mode=WAL&_busy_timeout=10000&_synchronous=NORMAL"
	return testDB{
		Name:  "sqlite",
		Table: uniqueTable(),
		Open: func(t testing.TB) *gorm.DB {
			t.Helper()
			db, err := gorm.Open(sqlite.Open(dsn), quietConfig())
			if err != nil {
				t.Fatalf("open sqlite: %v", err)
			}
			closeOnCleanup(t, db)
			return db
		},
	}
}

func postgresDSN() string {
	if dsn := os.Getenv("GORMSESSION_POSTGRES_DSN"); dsn != "" {
		return dsn
	}
	return defaultPostgresDSN
}

// newPostgres returns the PostgreSQL test database, or skips (fails when
// GORMSESSION_REQUIRE_DB names postgres) when it is unreachable. The test's
// table is dropped when the test ends.
func newPostgres(t *testing.T) testDB {
	t.Helper()
	dsn := postgresDSN()
	open := func(t testing.TB) *gorm.DB {
		t.Helper()
		db, err := gorm.Open(postgres.Open(dsn), quietConfig())
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
				t.Fatalf("PostgreSQL at %s is unreachable and GORMSESSION_REQUIRE_DB requires it: %v", dsn, err)
			}
			t.Skipf("PostgreSQL unreachable (set GORMSESSION_POSTGRES_DSN): %v", err)
		}
		closeOnCleanup(t, db)
		return db
	}
	tdb := testDB{Name: "postgres", Table: uniqueTable(), Open: open}
	admin := open(t)
	t.Cleanup(func() { admin.Exec(`DROP TABLE IF EXISTS "` + tdb.Table + `"`) })
	return tdb
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
	return "gs_gorilla_" + hex.EncodeToString(b[:])
}

// eachDB runs f as a parallel subtest on SQLite and on PostgreSQL.
func eachDB(t *testing.T, f func(t *testing.T, tdb testDB)) {
	t.Helper()
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var tdb testDB
			if name == "sqlite" {
				tdb = newSQLite(t)
			} else {
				tdb = newPostgres(t)
			}
			f(t, tdb)
		})
	}
}

// counter is a GORM logger that counts the SQL statements run through it.
type counter struct {
	logger.Interface
	n atomic.Int64
}

func (c *counter) LogMode(logger.LogLevel) logger.Interface { return c }

func (c *counter) Trace(ctx context.Context, begin time.Time, fc func() (string, int64), err error) {
	c.n.Add(1)
}

// env is a Manager on its own table of a test database, with a statement
// counter on its connection.
type env struct {
	tdb   testDB
	db    *gorm.DB
	m     *gormsession.Manager
	stmts *counter
	clock *clock
}

// newEnv opens tdb, makes a Store on its table and a Manager on it with a
// test clock starting at the current time. The Manager is closed when the
// test ends.
func newEnv(t testing.TB, tdb testDB, opts gormsession.ManagerOptions) *env {
	t.Helper()
	e := &env{tdb: tdb, stmts: &counter{Interface: logger.Discard}, clock: newClock(time.Now())}
	e.db = tdb.Open(t).Session(&gorm.Session{Logger: e.stmts})
	if opts.Now == nil {
		opts.Now = e.clock.Now
	}
	e.m = e.newManager(t, opts)
	return e
}

// newManager starts another Manager on the same table, through a new
// connection pool: a restarted process.
func (e *env) newManager(t testing.TB, opts gormsession.ManagerOptions) *gormsession.Manager {
	t.Helper()
	db := e.db
	if e.m != nil {
		db = e.tdb.Open(t)
	}
	st, err := gormsession.NewStore(db, gormsession.StoreOptions{TableName: e.tdb.Table})
	if err != nil {
		t.Fatalf("NewStore: %v", err)
	}
	if opts.Now == nil {
		opts.Now = e.clock.Now
	}
	m, err := gormsession.NewManager(context.Background(), st, opts)
	if err != nil {
		t.Fatalf("NewManager: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// rows returns the number of live sessions in the env's table: rows that
// are not tombstones of revoked sessions (the Store keeps those for a while
// so that other instances learn of the revocation).
func (e *env) rows(t testing.TB) int64 {
	t.Helper()
	var n int64
	if err := e.tdb.Open(t).Table(e.tdb.Table).Where("revoked_at IS NULL").Count(&n).Error; err != nil {
		t.Fatalf("count rows: %v", err)
	}
	return n
}

// clock is a settable test clock.
type clock struct{ t atomic.Int64 }

func newClock(t time.Time) *clock {
	c := &clock{}
	c.t.Store(t.UnixNano())
	return c
}

func (c *clock) Now() time.Time      { return time.Unix(0, c.t.Load()) }
func (c *clock) Add(d time.Duration) { c.t.Add(int64(d)) }
