package gormsession

import (
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/gormsession/gormsession/internal/testdb"
)

// TestQueriesUseThePartialIndexes checks that the queries that must not
// read the whole table are served by the partial indexes of Model, whose
// conditions they repeat: the change feed's poll by the index on
// seq, which leaves out visitors exactly as inserted, and a user's
// sessions by the index on user_id, which leaves out visitors, and the
// purge of old tombstones by the index on revoked_at, which holds only
// tombstones. A query
// whose condition drifted from its index's would scan the table, once a
// second for the poll. Dropping the two indexes and migrating again, as
// Model's documentation tells the owners of older tables, brings them back.
func TestQueriesUseThePartialIndexes(t *testing.T) {
	testdb.Each(t, func(t *testing.T, d testdb.DB) {
		db := d.Open(t)
		st, err := NewStore(db, StoreOptions{TableName: d.Table})
		if err != nil {
			t.Fatal(err)
		}
		since := time.Now().UTC()
		check := func() {
			t.Helper()
			for _, q := range []struct {
				sql   string
				args  []any
				index string
			}{
				{st.sql.changes, []any{int64(1)}, "seq"},
				{st.sql.revokeUserSelectBefore, []any{"alice", "x", since}, "user_id"},
				{st.sql.revokeUser, []any{"alice", "x"}, "user_id"},
				{st.sql.purgeTombstones, nil, "revoked_at"},
			} {
				plan := explain(t, db, d.Name, q.sql, q.args)
				if want := "idx_" + d.Table + "_" + q.index; !strings.Contains(plan, want) {
					t.Errorf("%s\nis planned without %s:\n%s", q.sql, want, plan)
				}
			}
		}
		check()
		for _, column := range []string{"user_id", "seq", "revoked_at"} {
			if err := db.Exec("DROP INDEX idx_" + d.Table + "_" + column).Error; err != nil {
				t.Fatal(err)
			}
		}
		if err := st.Migrate(t.Context()); err != nil {
			t.Fatal(err)
		}
		check()
	})
}

// explain returns the plan of query on the database, with sequential scans
// discouraged on PostgreSQL, whose planner prefers them on a small table.
func explain(t *testing.T, db *gorm.DB, dialect, query string, args []any) string {
	t.Helper()
	var lines []string
	err := db.Connection(func(conn *gorm.DB) error {
		if dialect == "sqlite" {
			var rows []struct {
				ID, Parent, Notused int
				Detail              string
			}
			err := conn.Raw("EXPLAIN QUERY PLAN "+query, args...).Scan(&rows).Error
			for _, r := range rows {
				lines = append(lines, r.Detail)
			}
			return err
		}
		if err := conn.Exec("SET enable_seqscan = off").Error; err != nil {
			return err
		}
		defer conn.Exec("RESET enable_seqscan")
		return conn.Raw("EXPLAIN "+query, args...).Scan(&lines).Error
	})
	if err != nil {
		t.Fatalf("explain %s: %v", query, err)
	}
	return strings.Join(lines, "\n")
}
