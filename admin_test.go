package gormsession_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/gormsession/gormsession"
	"github.com/gormsession/gormsession/backendtest"
	"github.com/gormsession/gormsession/internal/testdb"
)

// eachDBAndMySQL runs f as a parallel subtest on SQLite, PostgreSQL and
// MySQL/MariaDB: for the Store's SQL that differs there.
func eachDBAndMySQL(t *testing.T, f func(t *testing.T, tdb testDB)) {
	eachDB(t, f)
	t.Run("mysql", func(t *testing.T) {
		t.Parallel()
		f(t, testdb.MySQL(t))
	})
}

// adminFixture stores, on st, the sessions the admin tests count and list:
// two live ones of alice (older and newer, tenants acme and ""), one
// expired and one revoked of alice, one of bob (tenant acme), and two
// anonymous ones (one expired). It returns alice's live ones, newest
// first.
func adminFixture(t *testing.T, st *gormsession.Store) []gormsession.Session {
	t.Helper()
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	mk := func(user, tenant string, created, expires time.Time) gormsession.Session {
		s := gormsession.Session{ID: gormsession.HashToken(gormsession.NewToken()), UserID: user, TenantID: tenant,
			Device: "dev " + user, CreatedAt: created, UpdatedAt: created, ExpiresAt: expires}
		if err := st.Insert(ctx, &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	older := mk("alice", "acme", now.Add(-2*time.Hour), now.Add(time.Hour))
	newer := mk("alice", "", now.Add(-time.Hour), time.Time{})
	mk("alice", "acme", now.Add(-3*time.Hour), now.Add(-time.Minute)) // expired
	revoked := mk("alice", "acme", now.Add(-time.Hour), now.Add(time.Hour))
	if err := st.Revoke(ctx, revoked.ID); err != nil {
		t.Fatal(err)
	}
	mk("bob", "acme", now.Add(-time.Minute), now.Add(time.Hour))
	mk("", "", now.Add(-time.Minute), now.Add(time.Hour))
	mk("", "acme", now.Add(-time.Hour), now.Add(-time.Second)) // expired
	return []gormsession.Session{newer, older}
}

func TestStoreListUserReadsLiveSessionsNewestFirst(t *testing.T) {
	eachDBAndMySQL(t, func(t *testing.T, tdb testDB) {
		st := newStore(t, tdb, nil)
		want := adminFixture(t, st)
		got, err := st.ListUser(context.Background(), "alice")
		if err != nil {
			t.Fatal(err)
		}
		ids := func(ss []gormsession.Session) (out []string) {
			for _, s := range ss {
				out = append(out, s.ID[:8]+" "+s.CreatedAt.UTC().Format(time.TimeOnly))
			}
			return out
		}
		if !slices.Equal(ids(got), ids(want)) {
			t.Fatalf("ListUser(alice) = %v, want %v (live, unexpired, newest first)", ids(got), ids(want))
		}
		if got[0].Device != "dev alice" || !got[0].ExpiresAt.IsZero() || !got[1].ExpiresAt.Equal(want[1].ExpiresAt) {
			t.Fatalf("ListUser(alice)[0] = %+v", got[0])
		}
		if none, err := st.ListUser(context.Background(), ""); err != nil || len(none) != 0 {
			t.Fatalf(`ListUser("") = %v, %v; want nothing: anonymous sessions belong to no user`, none, err)
		}
	})
}

func TestStoreCountCountsEachKind(t *testing.T) {
	eachDBAndMySQL(t, func(t *testing.T, tdb testDB) {
		ctx := context.Background()
		st := newStore(t, tdb, nil)
		if c, err := st.Count(ctx, false); err != nil || len(c) != 1 || c[0] != (gormsession.Counts{}) {
			t.Fatalf("Count of an empty table = %+v, %v; want one zero Counts", c, err)
		}
		if c, err := st.Count(ctx, true); err != nil || len(c) != 0 {
			t.Fatalf("Count by tenant of an empty table = %+v, %v; want none", c, err)
		}
		live := adminFixture(t, st)
		all, err := st.Count(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		// The oldest live session is alice's older one (2 h); the newest,
		// bob's and the anonymous one, a minute old.
		want := gormsession.Counts{SignedIn: 3, Anonymous: 1, Expired: 2, Tombstones: 1,
			Oldest: live[1].CreatedAt, Newest: live[0].CreatedAt.Add(59 * time.Minute)}
		if len(all) != 1 || !all[0].Oldest.Equal(want.Oldest) || !all[0].Newest.Equal(want.Newest) {
			t.Fatalf("Count = %+v, want %+v", all, want)
		}
		all[0].Oldest, all[0].Newest = want.Oldest, want.Newest
		if all[0] != want {
			t.Fatalf("Count = %+v, want %+v", all, want)
		}
		byTenant, err := st.Count(ctx, true)
		if err != nil {
			t.Fatal(err)
		}
		got := fmt.Sprint(byTenant)
		if len(byTenant) != 2 || byTenant[0].TenantID != "" || byTenant[1].TenantID != "acme" ||
			byTenant[0].SignedIn != 1 || byTenant[0].Anonymous != 1 || byTenant[0].Expired != 0 || byTenant[0].Tombstones != 0 ||
			byTenant[1].SignedIn != 2 || byTenant[1].Anonymous != 0 || byTenant[1].Expired != 2 || byTenant[1].Tombstones != 1 {
			t.Fatalf("Count by tenant = %s", got)
		}
	})
}

func TestStoreMissingSchemaSaysWhatMigrateAdds(t *testing.T) {
	eachDBAndMySQL(t, func(t *testing.T, tdb testDB) {
		ctx := context.Background()
		db := tdb.Open(t)
		st := unmigratedStore(t, db, tdb.Table)
		if m, err := st.MissingSchema(ctx); err != nil || !slices.Equal(m, []string{"table"}) {
			t.Fatalf("MissingSchema without a table = %v, %v; want [table]", m, err)
		}
		if db.Migrator().HasTable(tdb.Table) {
			t.Fatal("MissingSchema created the table")
		}
		// An older table: no revoked_at, no version, no indexes.
		if err := db.Table(tdb.Table).AutoMigrate(&testdb.OlderModel{}); err != nil {
			t.Fatal(err)
		}
		m, err := st.MissingSchema(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got := strings.Join(m, ", ")
		for _, want := range []string{"column revoked_at", "column version", "column seq", "index idx_" + tdb.Table + "_expires_at", "index idx_" + tdb.Table + "_seq"} {
			if !strings.Contains(got, want) {
				t.Errorf("MissingSchema of an older table = %s; lacks %q", got, want)
			}
		}
		if tdb.Name == "postgres" && !strings.Contains(got, "trigger "+tdb.Table+"_notify") {
			t.Errorf("MissingSchema on PostgreSQL = %s; lacks the NOTIFY trigger", got)
		}
		if db.Migrator().HasColumn(tdb.Table, "version") {
			t.Fatal("MissingSchema changed the table")
		}
		if err := st.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		if m, err := st.MissingSchema(ctx); err != nil || len(m) != 0 {
			t.Fatalf("MissingSchema after Migrate = %v, %v; want nothing", m, err)
		}
	})
}

// TestSchemaSQLMakesATableTheStoreAccepts runs SchemaSQL's statements on
// an empty database, then runs the conformance suite on Stores that do not
// migrate: the printed schema is the migrated one.
func TestSchemaSQLMakesATableTheStoreAccepts(t *testing.T) {
	eachDBAndMySQL(t, func(t *testing.T, tdb testDB) {
		ctx := context.Background()
		db := tdb.Open(t)
		st := unmigratedStore(t, db, tdb.Table)
		stmts, err := st.SchemaSQL()
		if err != nil {
			t.Fatal(err)
		}
		if db.Migrator().HasTable(tdb.Table) {
			t.Fatal("SchemaSQL created the table")
		}
		if err := testdb.ExecDDL(db, sqlOf(stmts)...); err != nil {
			t.Fatal(err)
		}
		var partial, notify int
		for _, s := range stmts {
			switch {
			case strings.Contains(s.DialectSpecific, "partial index"):
				partial++
			case strings.Contains(s.DialectSpecific, "NOTIFY"):
				notify++
			}
		}
		wantPartial, wantNotify := 3, 0
		switch tdb.Name {
		case "postgres":
			wantNotify = 2
		case "mysql":
			wantPartial = 0
		}
		if partial != wantPartial || notify != wantNotify {
			t.Errorf("%d statements marked partial index, %d NOTIFY; want %d and %d", partial, notify, wantPartial, wantNotify)
		}
		if m, err := st.MissingSchema(ctx); err != nil || len(m) != 0 {
			t.Fatalf("MissingSchema of the table SchemaSQL made = %v, %v; want nothing", m, err)
		}
		backendtest.Run(t, func(t *testing.T) gormsession.Backend {
			st := unmigratedStore(t, db, tdb.Table)
			if err := db.Exec("DELETE FROM " + tdb.Table).Error; err != nil {
				t.Fatal(err)
			}
			return st
		})
	})
}

// TestMissingSchemaOfASchemaQualifiedTable: on PostgreSQL a table may be
// schema.table; its indexes and trigger are found under the names Migrate
// gives them, and SchemaSQL creates them there.
func TestMissingSchemaOfASchemaQualifiedTable(t *testing.T) {
	tdb := testdb.Postgres(t)
	db := tdb.Open(t)
	schema := uniqueTable()
	if err := db.Exec(fmt.Sprintf("CREATE SCHEMA %q", schema)).Error; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Exec(fmt.Sprintf("DROP SCHEMA %q CASCADE", schema)) })
	ctx := context.Background()
	for _, migrate := range []bool{true, false} {
		table := schema + "." + uniqueTable()
		st, err := gormsession.NewStore(db, gormsession.StoreOptions{TableName: table, SkipMigrate: !migrate})
		if err != nil {
			t.Fatal(err)
		}
		if !migrate {
			stmts, err := st.SchemaSQL()
			if err != nil {
				t.Fatal(err)
			}
			if err := testdb.ExecDDL(db, sqlOf(stmts)...); err != nil {
				t.Fatal(err)
			}
		}
		if m, err := st.MissingSchema(ctx); err != nil || len(m) != 0 {
			t.Fatalf("MissingSchema of %s (migrated: %v) = %v, %v; want nothing", table, migrate, m, err)
		}
	}
}

// sqlOf returns the SQL of statements.
func sqlOf(statements []gormsession.Statement) []string {
	out := make([]string, len(statements))
	for i, s := range statements {
		out[i] = s.SQL
	}
	return out
}

// unmigratedStore returns a Store on table that does not migrate it.
func unmigratedStore(t *testing.T, db *gorm.DB, table string) *gormsession.Store {
	t.Helper()
	st, err := gormsession.NewStore(db, gormsession.StoreOptions{TableName: table, SkipMigrate: true})
	if err != nil {
		t.Fatal(err)
	}
	return st
}
