package gormsession_test

import (
	"testing"

	"gorm.io/gorm"

	"github.com/gormsession/gormsession"
	"github.com/gormsession/gormsession/internal/testdb"
)

// testDB is one database a test runs on; see package testdb.
type testDB = testdb.DB

func newSQLite(t testing.TB) testDB   { return testdb.SQLite(t) }
func newPostgres(t testing.TB) testDB { return testdb.Postgres(t) }
func uniqueTable() string             { return testdb.UniqueName("gs_test_") }

// eachDB runs t in parallel with the package's other parallel tests (each
// has tables of its own), and f as a parallel subtest on SQLite and on
// PostgreSQL.
func eachDB(t *testing.T, f func(t *testing.T, tdb testDB)) {
	t.Parallel()
	testdb.Each(t, f)
}

// newStore opens a Store on the test's own table of tdb, through db when it
// is not nil, else through a new connection pool.
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
