// Package testdb opens the databases that gormsession's tests run on: a
// SQLite file of the test's own, always, PostgreSQL when it is reachable,
// and MySQL/MariaDB for the tests that ask for it (MySQL). It also has the
// GORM loggers and the clock the tests measure with. It is for tests only.
//
// An unreachable PostgreSQL or MySQL skips its tests, unless
// GORMSESSION_REQUIRE_DB (a comma-separated list such as "postgres,mysql")
// names it: then they fail. The DSNs are GORMSESSION_POSTGRES_DSN and
// GORMSESSION_MYSQL_DSN, else DefaultPostgresDSN and DefaultMySQLDSN.
package testdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/driver/mysql"
	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// DefaultPostgresDSN is the PostgreSQL the tests use when
// GORMSESSION_POSTGRES_DSN is not set.
const DefaultPostgresDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// DefaultMySQLDSN is the MySQL or MariaDB the tests use when
// GORMSESSION_MYSQL_DSN is not set.
const DefaultMySQLDSN = "root@tcp(127.0.0.1:3306)/test?parseTime=true&loc=UTC"

// MySQLDSN returns GORMSESSION_MYSQL_DSN, else DefaultMySQLDSN.
func MySQLDSN() string {
	if dsn := os.Getenv("GORMSESSION_MYSQL_DSN"); dsn != "" {
		return dsn
	}
	return DefaultMySQLDSN
}

// MySQL returns the MySQL/MariaDB test database, after checking that it
// is reachable (skipping or failing the test when it is not, as for
// PostgreSQL). The test's table is dropped when the test ends.
func MySQL(t testing.TB) DB {
	t.Helper()
	d := DB{Name: "mysql", DSN: MySQLDSN(), Table: UniqueName("gs_test_")}
	admin := d.Open(t)
	DropOnCleanup(t, admin, d.Table)
	return d
}

// DB is one database a test runs on, with a table name of the test's own.
type DB struct {
	// Name is "sqlite", "postgres" or "mysql".
	Name string
	// DSN opens the database (for SQLite: the file with its options).
	DSN string
	// Table is a table name no other test uses.
	Table string
}

// WithDSNParam returns d with param (such as "charset=utf8mb3") added to
// its DSN, a MySQL one: the same database and table, through connections
// set up otherwise.
func (d DB) WithDSNParam(param string) DB {
	sep := "?"
	if strings.Contains(d.DSN, "?") {
		sep = "&"
	}
	d.DSN += sep + param
	return d
}

// Required reports whether GORMSESSION_REQUIRE_DB names the database, which
// must then be reachable.
func Required(name string) bool {
	for _, n := range strings.Split(os.Getenv("GORMSESSION_REQUIRE_DB"), ",") {
		if strings.TrimSpace(n) == name {
			return true
		}
	}
	return false
}

// PostgresDSN returns GORMSESSION_POSTGRES_DSN, else DefaultPostgresDSN.
func PostgresDSN() string {
	if dsn := os.Getenv("GORMSESSION_POSTGRES_DSN"); dsn != "" {
		return dsn
	}
	return DefaultPostgresDSN
}

// SQLiteDSN is the DSN of a SQLite file in WAL mode with a busy timeout, as
// the README advises.
func SQLiteDSN(path string) string {
	return path + "?_journal_mode=WAL&_busy_timeout=10000&_synchronous=NORMAL"
}

// OpenDSN opens a postgres:// DSN with the PostgreSQL driver and anything
// else as a SQLite file, with GORM's logging off.
func OpenDSN(dsn string) (*gorm.DB, error) {
	cfg := &gorm.Config{Logger: logger.Discard}
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		return gorm.Open(postgres.Open(dsn), cfg)
	}
	return gorm.Open(sqlite.Open(dsn), cfg)
}

// UniqueName returns prefix followed by 12 random hex digits.
func UniqueName(prefix string) string {
	var b [6]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// SQLite returns a new SQLite file in t.TempDir().
func SQLite(t testing.TB) DB {
	return DB{
		Name:  "sqlite",
		DSN:   SQLiteDSN(filepath.Join(t.TempDir(), "sessions.db")),
		Table: UniqueName("gs_test_"),
	}
}

// Postgres returns the PostgreSQL test database, after checking that it is
// reachable (skipping or failing the test when it is not). The test's table
// is dropped when the test ends, with DropTable.
func Postgres(t testing.TB) DB {
	t.Helper()
	d := DB{Name: "postgres", DSN: PostgresDSN(), Table: UniqueName("gs_test_")}
	admin := d.Open(t)
	DropOnCleanup(t, admin, d.Table)
	return d
}

// MigrationLockKey is the PostgreSQL advisory lock that the Store's
// Migrate holds while it creates tables, triggers and the notify function
// (a test in the root package checks that the two agree).
var MigrationLockKey = func() int64 {
	h := fnv.New64a()
	h.Write([]byte("gormsession migrate"))
	return int64(h.Sum64() >> 1)
}()

// NotifyFunction is the PostgreSQL trigger function that the Store's
// migration installs in the current schema.
const NotifyFunction = "gormsession_notify"

// DropTable drops table from db. On PostgreSQL it also drops the
// gormsession_notify() function of the current schema when no trigger uses
// it any more, so that the tests leave nothing behind. Tests run in
// parallel, and other tables may still use the function or be about to:
// the check and the drops run in one transaction holding the Store's
// migration lock, so no migration can create a trigger on the function
// between the check and the drop.
func DropTable(db *gorm.DB, table string) error {
	if db.Dialector.Name() != "postgres" {
		return db.Migrator().DropTable(table)
	}
	return db.Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec("SELECT pg_advisory_xact_lock(?)", MigrationLockKey).Error; err != nil {
			return err
		}
		if err := tx.Exec(`DROP TABLE IF EXISTS "` + strings.ReplaceAll(table, `"`, `""`) + `"`).Error; err != nil {
			return err
		}
		var users int64
		err := tx.Raw(`SELECT count(*) FROM pg_trigger t
			JOIN pg_proc p ON p.oid = t.tgfoid
			JOIN pg_namespace ns ON ns.oid = p.pronamespace
			WHERE p.proname = ? AND ns.nspname = current_schema()`, NotifyFunction).Scan(&users).Error
		if err != nil || users > 0 {
			return err
		}
		return tx.Exec("DROP FUNCTION IF EXISTS " + NotifyFunction + "()").Error
	})
}

// ExecDDL runs statements, DDL written out by hand or by the Store's
// SchemaSQL, on db. On PostgreSQL they run in one transaction that holds
// the Store's migration lock: the tests of other packages migrate their
// tables in the same database meanwhile, and two sessions replacing the
// same trigger function at once fail with "tuple concurrently updated".
func ExecDDL(db *gorm.DB, statements ...string) error {
	if db.Dialector.Name() != "postgres" {
		for _, s := range statements {
			if err := db.Exec(s).Error; err != nil {
				return fmt.Errorf("%s: %w", s, err)
			}
		}
		return nil
	}
	return db.Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec("SELECT pg_advisory_xact_lock(?)", MigrationLockKey).Error; err != nil {
			return err
		}
		for _, s := range statements {
			if err := tx.Exec(s).Error; err != nil {
				return fmt.Errorf("%s: %w", s, err)
			}
		}
		return nil
	})
}

// PostgresScript wraps a psql script (such as migrate --print's) in one
// transaction that holds the Store's migration lock; see ExecDDL.
func PostgresScript(script string) string {
	return fmt.Sprintf("BEGIN;\nSELECT pg_advisory_xact_lock(%d);\n%s\nCOMMIT;\n", MigrationLockKey, script)
}

// OlderModel is a sessions table as an older version of the package had
// it: no revoked_at, no version, no seq, no indexes.
type OlderModel struct {
	ID        string `gorm:"primaryKey;size:64"`
	UserID    string `gorm:"size:191;not null"`
	TenantID  string `gorm:"size:191;not null;default:''"`
	Device    string `gorm:"size:191;not null;default:''"`
	Data      []byte
	CreatedAt time.Time `gorm:"not null;autoCreateTime:false"`
	UpdatedAt time.Time `gorm:"not null;autoUpdateTime:false"`
	ExpiresAt *time.Time
}

// DropOnCleanup drops table from db with DropTable when the test ends,
// reporting a failure to do so.
func DropOnCleanup(t testing.TB, db *gorm.DB, table string) {
	t.Cleanup(func() {
		if err := DropTable(db, table); err != nil {
			t.Errorf("drop test table %s: %v", table, err)
		}
	})
}

// Open opens a new *gorm.DB (a new connection pool, as a restarted process
// would have) on the database, closed when the test ends. A PostgreSQL that
// does not answer a ping skips or fails the test (see the package doc).
func (d DB) Open(t testing.TB) *gorm.DB {
	t.Helper()
	var (
		db  *gorm.DB
		err error
	)
	if d.Name == "mysql" {
		db, err = gorm.Open(mysql.Open(d.DSN), &gorm.Config{Logger: logger.Discard})
	} else {
		db, err = OpenDSN(d.DSN)
	}
	if err == nil && d.Name != "sqlite" {
		sqlDB, _ := db.DB()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = sqlDB.PingContext(ctx)
		cancel()
		if err != nil {
			sqlDB.Close()
		}
	}
	if err != nil {
		if d.Name == "sqlite" {
			t.Fatalf("open %s: %v", d.Name, err)
		}
		if Required(d.Name) {
			t.Fatalf("%s at %s is unreachable and GORMSESSION_REQUIRE_DB requires it: %v", d.Name, d.DSN, err)
		}
		t.Skipf("%s unreachable (set GORMSESSION_%s_DSN): %v", d.Name, strings.ToUpper(d.Name), err)
	}
	CloseOnCleanup(t, db)
	return db
}

// CloseOnCleanup closes db's connection pool when the test ends.
func CloseOnCleanup(t testing.TB, db *gorm.DB) {
	t.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			sqlDB.Close()
		}
	})
}

// Each runs f as a parallel subtest on SQLite and on PostgreSQL.
func Each(t *testing.T, f func(t *testing.T, d DB)) {
	t.Helper()
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if name == "sqlite" {
				f(t, SQLite(t))
			} else {
				f(t, Postgres(t))
			}
		})
	}
}

// Counter is a GORM logger that counts the SQL statements run through it.
type Counter struct {
	logger.Interface
	n atomic.Int64
}

// NewCounter returns a Counter at zero.
func NewCounter() *Counter { return &Counter{Interface: logger.Discard} }

// Counted returns db logging through a new Counter.
func Counted(db *gorm.DB) (*gorm.DB, *Counter) {
	c := NewCounter()
	return db.Session(&gorm.Session{Logger: c}), c
}

// N returns the number of statements counted.
func (c *Counter) N() int64 { return c.n.Load() }

// Reset sets the count to zero.
func (c *Counter) Reset() { c.n.Store(0) }

// LogMode returns c: the level does not matter to a count.
func (c *Counter) LogMode(logger.LogLevel) logger.Interface { return c }

// Trace counts one statement.
func (c *Counter) Trace(context.Context, time.Time, func() (string, int64), error) { c.n.Add(1) }

// Recorder is a GORM logger that keeps the SQL of every statement.
type Recorder struct {
	logger.Interface
	mu   sync.Mutex
	sqls []string
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder { return &Recorder{Interface: logger.Discard} }

// LogMode returns r.
func (r *Recorder) LogMode(logger.LogLevel) logger.Interface { return r }

// Trace records the statement's SQL.
func (r *Recorder) Trace(_ context.Context, _ time.Time, fc func() (string, int64), _ error) {
	sql, _ := fc()
	r.mu.Lock()
	r.sqls = append(r.sqls, sql)
	r.mu.Unlock()
}

// Statements returns the SQL recorded so far.
func (r *Recorder) Statements() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.sqls)
}

// Clock is a settable clock for ManagerOptions.Now.
type Clock struct{ t atomic.Int64 }

// NewClock returns a Clock showing t.
func NewClock(t time.Time) *Clock {
	c := &Clock{}
	c.t.Store(t.UnixNano())
	return c
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time { return time.Unix(0, c.t.Load()) }

// Add moves the clock by d.
func (c *Clock) Add(d time.Duration) { c.t.Add(int64(d)) }

// Set sets the clock to t.
func (c *Clock) Set(t time.Time) { c.t.Store(t.UnixNano()) }
