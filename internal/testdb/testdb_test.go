package testdb_test

import (
	"context"
	"testing"

	"github.com/gormsession/gormsession"
	"github.com/gormsession/gormsession/internal/testdb"
)

// countNotifyFunctions counts gormsession_notify() functions in schema.
func countNotifyFunctions(t *testing.T, d testdb.DB, schema string) int64 {
	t.Helper()
	var n int64
	err := d.Open(t).Raw(`SELECT count(*) FROM pg_proc p JOIN pg_namespace ns ON ns.oid = p.pronamespace
		WHERE p.proname = ? AND ns.nspname = ?`, testdb.NotifyFunction, schema).Scan(&n).Error
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestDropTableRemovesNotifyFunctionWithItsLastTrigger(t *testing.T) {
	pg := testdb.Postgres(t)
	// A schema of the test's own, so that other tests' tables, which use
	// the function in the default schema, play no part.
	schema := testdb.UniqueName("gs_cleanup_")
	admin := pg.Open(t)
	if err := admin.Exec(`CREATE SCHEMA "` + schema + `"`).Error; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Exec(`DROP SCHEMA IF EXISTS "` + schema + `" CASCADE`) })
	d := pg
	d.DSN += "&search_path=" + schema

	db := d.Open(t)
	tables := []string{testdb.UniqueName("gs_test_"), testdb.UniqueName("gs_test_")}
	for _, table := range tables {
		if _, err := gormsession.NewStore(db, gormsession.StoreOptions{TableName: table}); err != nil {
			t.Fatal(err)
		}
	}
	if n := countNotifyFunctions(t, d, schema); n != 1 {
		t.Fatalf("after migrating two tables: %d notify functions, want 1", n)
	}
	if err := testdb.DropTable(db, tables[0]); err != nil {
		t.Fatal(err)
	}
	if n := countNotifyFunctions(t, d, schema); n != 1 {
		t.Fatalf("dropping one of two tables left %d notify functions; the other table's trigger still needs it", n)
	}
	if err := testdb.DropTable(db, tables[1]); err != nil {
		t.Fatal(err)
	}
	if n := countNotifyFunctions(t, d, schema); n != 0 {
		t.Fatalf("dropping the last table left %d notify functions", n)
	}
	// A Store made afterwards installs it again.
	st, err := gormsession.NewStore(db, gormsession.StoreOptions{TableName: tables[0]})
	if err != nil {
		t.Fatal(err)
	}
	s := gormsession.Session{ID: gormsession.HashToken(gormsession.NewToken()), UserID: "alice"}
	if err := st.Insert(context.Background(), &s); err != nil {
		t.Fatal(err)
	}
	if err := testdb.DropTable(db, tables[0]); err != nil {
		t.Fatal(err)
	}
}
