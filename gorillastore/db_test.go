package gorillastore_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"
	"gorm.io/gorm"

	"github.com/gormsession/gormsession"
	"github.com/gormsession/gormsession/internal/testdb"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testDB is one database a test runs on; see package testdb.
type testDB = testdb.DB

func newSQLite(t testing.TB) testDB { return testdb.SQLite(t) }

// eachDB runs f as a parallel subtest on SQLite and on PostgreSQL.
func eachDB(t *testing.T, f func(t *testing.T, tdb testDB)) { testdb.Each(t, f) }

// env is a Manager on its own table of a test database, with a statement
// counter on its connection.
type env struct {
	tdb   testDB
	db    *gorm.DB
	m     *gormsession.Manager
	stmts *testdb.Counter
	clock *testdb.Clock
}

// newEnv opens tdb, makes a Store on its table and a Manager on it with a
// test clock starting at the current time. The Manager is closed when the
// test ends.
func newEnv(t testing.TB, tdb testDB, opts gormsession.ManagerOptions) *env {
	t.Helper()
	e := &env{tdb: tdb, stmts: testdb.NewCounter(), clock: testdb.NewClock(time.Now())}
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
	if opts.SyncInterval == 0 {
		// One instance: no polls among the statements the tests count.
		opts.SyncInterval = -1
	}
	m, err := gormsession.NewManager(context.Background(), st, opts)
	if err != nil {
		t.Fatalf("NewManager: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("close the Manager: %v", err)
		}
	})
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
