package gormsession_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/gormsession/gormsession"
)

// testDB is one database the suite runs on. Open returns a new *gorm.DB (a
// new connection pool) on the same database each time, as a restarted
// process would get.
type testDB struct {
	Name  string
	DSN   string // the DSN Open uses (SQLite: with its options)
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

// sqliteDSN returns the DSN of a SQLite file in WAL mode with a busy
// timeout, as the README advises.
func sqliteDSN(path string) string {
	return path + "?_journal_mode=WAL&_busy_timeout=10000&_synchronous=NORMAL"
}

func newSQLite(t testing.TB) testDB {
	path := filepath.Join(t.TempDir(), "sessions.db")
	return testDB{
		Name:  "sqlite",
		DSN:   sqliteDSN(path),
		Table: uniqueTable(),
		Open: func(t testing.TB) *gorm.DB {
			t.Helper()
			db, err := openDSN(sqliteDSN(path))
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
// GORMSESSION_REQUIRE_DB names postgres) when it is unreachable. The
// test's table is dropped when the test ends.
func newPostgres(t testing.TB) testDB {
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
	tdb := testDB{Name: "postgres", DSN: dsn, Table: uniqueTable(), Open: open}
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
	return "gs_test_" + hex.EncodeToString(b[:])
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

// newStore opens a Store on its own table of tdb.
func newStore(t testing.TB, tdb testDB, db *gorm.DB) *gormsession.Store {
	t.Helper()
	if db == nil {
		db = tdb.Open(t)
	}
	st, err := gormsession.NewStore(db, gormsession.StoreOptions{TableName: tdb.Table})
	if err != nil {
		t.Fatalf("NewStore: %v", err)
	}
	return st
}

// counter is a GORM logger that counts the SQL statements run through it.
type counter struct {
	logger.Interface
	n atomic.Int64
}

func newCounter() *counter { return &counter{Interface: logger.Discard} }

func (c *counter) LogMode(logger.LogLevel) logger.Interface { return c }

func (c *counter) Trace(ctx context.Context, begin time.Time, fc func() (string, int64), err error) {
	c.n.Add(1)
}

// counted returns db logging through a new counter.
func counted(db *gorm.DB) (*gorm.DB, *counter) {
	c := newCounter()
	return db.Session(&gorm.Session{Logger: c}), c
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
func (c *clock) Set(t time.Time)     { c.t.Store(t.UnixNano()) }

// openDSN opens a postgres:// DSN with the PostgreSQL driver and anything
// else as a SQLite file.
func openDSN(dsn string) (*gorm.DB, error) {
	if strings.HasPrefix(dsn, "postgres://") {
		return gorm.Open(postgres.Open(dsn), quietConfig())
	}
	return gorm.Open(sqlite.Open(dsn), quietConfig())
}

// recorder is a GORM logger that keeps the SQL of every statement.
type recorder struct {
	logger.Interface
	mu   sync.Mutex
	sqls []string
}

func (r *recorder) LogMode(logger.LogLevel) logger.Interface { return r }

func (r *recorder) Trace(ctx context.Context, begin time.Time, fc func() (string, int64), err error) {
	sql, _ := fc()
	r.mu.Lock()
	r.sqls = append(r.sqls, sql)
	r.mu.Unlock()
}

func (r *recorder) statements() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.sqls)
}
