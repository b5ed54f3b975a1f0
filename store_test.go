package gormsession_test

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/gormsession/gormsession"
	"github.com/gormsession/gormsession/backendtest"
	"github.com/gormsession/gormsession/internal/testdb"
)

func TestStoreConformance(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		db := tdb.Open(t)
		backendtest.Run(t, func(t *testing.T) gormsession.Backend {
			// Each subtest gets a table of its own on the shared pool.
			sub := tdb
			sub.Table = uniqueTable()
			st := newStore(t, sub, db)
			testdb.DropOnCleanup(t, db, sub.Table)
			return st
		})
	})
}

func TestStoreCreatesIndexesOnUserIDAndExpiresAt(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		db := tdb.Open(t)
		newStore(t, tdb, db)
		mig := db.Table(tdb.Table).Migrator()
		for _, field := range []string{"UserID", "ExpiresAt"} {
			if !mig.HasIndex(&gormsession.Model{}, field) {
				t.Errorf("no index on %s", field)
			}
		}
	})
}

func TestMigrateIsIdempotent(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		db := tdb.Open(t)
		st := newStore(t, tdb, db)
		s := sessionFor("alice")
		if err := st.Insert(context.Background(), &s); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := st.Migrate(context.Background()); err != nil {
				t.Fatalf("second Migrate: %v", err)
			}
		}
		rec := testdb.NewRecorder()
		if _, err := gormsession.NewStore(db.Session(&gorm.Session{Logger: rec}), gormsession.StoreOptions{TableName: tdb.Table}); err != nil {
			t.Fatalf("NewStore on an existing table: %v", err)
		}
		for _, stmt := range rec.Statements() {
			if up := strings.ToUpper(stmt); strings.HasPrefix(up, "ALTER") || strings.HasPrefix(up, "CREATE") || strings.HasPrefix(up, "DROP") {
				t.Errorf("migrating an up-to-date table ran DDL: %s", stmt)
			}
		}
		if all := streamAll(t, st); len(all) != 1 {
			t.Fatalf("after repeated migrations %d rows, want 1", len(all))
		}
	})
}

// TestMigrateUpgradesTheTableOfAnEarlierVersion starts from the table an
// earlier version created: no seq column (its change feed read updated_at,
// by an index of its own), full indexes on user_id, none on revoked_at.
// Migrating adds seq with its index and triggers and the index on
// revoked_at, keeps the index on updated_at (an instance of the earlier
// version may still poll by it), the full index on user_id and the rows,
// as Model's documentation says; and the change feed then works.
func TestMigrateUpgradesTheTableOfAnEarlierVersion(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		ctx := context.Background()
		db := tdb.Open(t)
		old := newStore(t, tdb, db)
		row := sessionFor("alice")
		if err := old.Insert(ctx, &row); err != nil {
			t.Fatal(err)
		}
		on := ""
		if tdb.Name == "postgres" {
			on = " ON " + tdb.Table
		}
		for _, stmt := range []string{
			"DROP TRIGGER " + tdb.Table + "_seq_insert" + on,
			"DROP TRIGGER " + tdb.Table + "_seq_update" + on,
			"DROP INDEX idx_" + tdb.Table + "_user_id",
			"DROP INDEX idx_" + tdb.Table + "_seq",
			"DROP INDEX idx_" + tdb.Table + "_revoked_at",
			"ALTER TABLE " + tdb.Table + " DROP COLUMN seq",
			"CREATE INDEX idx_" + tdb.Table + "_user_id ON " + tdb.Table + " (user_id)",
			"CREATE INDEX idx_" + tdb.Table + "_updated_at ON " + tdb.Table + " (updated_at)",
		} {
			if err := db.Exec(stmt).Error; err != nil {
				t.Fatalf("%s: %v", stmt, err)
			}
		}
		rec := testdb.NewRecorder()
		st, err := gormsession.NewStore(db.Session(&gorm.Session{Logger: rec}), gormsession.StoreOptions{TableName: tdb.Table})
		if err != nil {
			t.Fatalf("NewStore on the earlier table: %v", err)
		}
		var ddl []string
		for _, stmt := range rec.Statements() {
			if up := strings.ToUpper(stmt); strings.HasPrefix(up, "ALTER") || strings.HasPrefix(up, "CREATE") || strings.HasPrefix(up, "DROP") {
				ddl = append(ddl, stmt)
			}
		}
		joined := strings.Join(ddl, "\n")
		for _, want := range []string{"seq", "idx_" + tdb.Table + "_seq", "_revoked_at", "_seq_insert", "_seq_update"} {
			if !strings.Contains(joined, want) {
				t.Errorf("migrating the earlier table ran\n%s\nwith nothing about %s", joined, want)
			}
		}
		if strings.Contains(joined, "_user_id") || strings.Contains(joined, "_updated_at") {
			t.Errorf("migrating the earlier table touched the index on user_id or updated_at (an earlier version beside this one polls by it):\n%s", joined)
		}
		if all := streamAll(t, st); len(all) != 1 || all[0].ID != row.ID {
			t.Fatalf("after migrating, rows %v, want the one inserted before", all)
		}
		head, err := st.Head(ctx)
		if err != nil {
			t.Fatal(err)
		}
		kept, other := sessionFor("alice"), sessionFor("alice")
		for _, s := range []*gormsession.Session{&kept, &other} {
			if err := st.Insert(ctx, s); err != nil {
				t.Fatal(err)
			}
		}
		ids, err := st.RevokeUser(ctx, "alice", kept.ID, time.Time{})
		if err != nil || len(ids) != 2 {
			t.Fatalf("RevokeUser on the earlier indexes = %v, %v; want the two others than %s", ids, err, kept.ID)
		}
		seen := map[string]bool{}
		if _, err := st.Changes(ctx, head.Cursor, func(s *gormsession.Session, revoked bool) error {
			seen[s.ID] = revoked
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if !seen[row.ID] || !seen[other.ID] || seen[kept.ID] {
			t.Fatalf("the feed after migrating reported %v; want the revocations of %s and %s, and %s live", seen, row.ID, other.ID, kept.ID)
		}
	})
}

// TestMigrateUpgradesOlderTable builds the table an older install had (no
// tenant_id, no indexes) with raw SQL, and checks that NewStore adds what is
// missing and keeps the rows.
func TestMigrateUpgradesOlderTable(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		db := tdb.Open(t)
		// The column types GORM gives each dialect.
		idType, str, blob, ts := "TEXT", "TEXT", "BLOB", "DATETIME"
		if tdb.Name == "postgres" {
			idType, str, blob, ts = "VARCHAR(64)", "VARCHAR(191)", "BYTEA", "TIMESTAMPTZ"
		}
		// One line, as GORM writes DDL: its SQLite migrator parses the stored
		// CREATE TABLE statement.
		create := fmt.Sprintf("CREATE TABLE %q (id %s PRIMARY KEY, user_id %s NOT NULL, "+
			"device %s NOT NULL DEFAULT '', data %s, created_at %s NOT NULL, "+
			"updated_at %s NOT NULL, expires_at %s)", tdb.Table, idType, str, str, blob, ts, ts, ts)
		if err := db.Exec(create).Error; err != nil {
			t.Fatalf("create old table: %v", err)
		}
		tok := gormsession.NewToken()
		id := gormsession.HashToken(tok)
		created := time.Now().UTC().Truncate(time.Second)
		expires := created.Add(time.Hour)
		insert := fmt.Sprintf(`INSERT INTO %q (id, user_id, device, data, created_at, updated_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)`, tdb.Table)
		if err := db.Exec(insert, id, "alice", "Old Browser", []byte("old data"), created, created, expires).Error; err != nil {
			t.Fatalf("insert into old table: %v", err)
		}
		if db.Table(tdb.Table).Migrator().HasColumn(&gormsession.Model{}, "tenant_id") {
			t.Fatal("old table already has tenant_id")
		}

		st := newStore(t, tdb, db)
		mig := db.Table(tdb.Table).Migrator()
		if !mig.HasColumn(&gormsession.Model{}, "tenant_id") {
			t.Fatal("NewStore did not add tenant_id")
		}
		for _, field := range []string{"UserID", "ExpiresAt"} {
			if !mig.HasIndex(&gormsession.Model{}, field) {
				t.Errorf("NewStore did not add the index on %s", field)
			}
		}
		m := newManager(t, st, gormsession.ManagerOptions{})
		s, ok := m.Resolve(context.Background(), tok)
		if !ok {
			t.Fatal("row of the old table does not resolve after the upgrade")
		}
		if s.UserID != "alice" || s.Device != "Old Browser" || string(s.Data) != "old data" ||
			s.TenantID != "" || !s.ExpiresAt.Equal(expires) || !s.CreatedAt.Equal(created) {
			t.Fatalf("upgraded row = %+v", s)
		}
		if _, err := setTenant(m, context.Background(), s.ID, "acme"); err != nil {
			t.Fatalf("SetTenant on upgraded row: %v", err)
		}
	})
}

func TestStoreWritesAreOneStatementEach(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		db, c := testdb.Counted(tdb.Open(t))
		st := newStore(t, tdb, db)
		ctx := context.Background()
		s := sessionFor("alice")
		for _, w := range []struct {
			what  string
			write func() error
		}{
			{"insert", func() error { return st.Insert(ctx, &s) }},
			{"update", func() error { s.Data = []byte("v2"); return st.Update(ctx, &s) }},
			{"touch", func() error { return st.Touch(ctx, []string{s.ID}, time.Now()) }},
			{"remove", func() error { return st.Revoke(ctx, s.ID) }},
		} {
			c.Reset()
			if err := w.write(); err != nil {
				t.Fatalf("%s: %v", w.what, err)
			}
			if n := c.N(); n != 1 {
				t.Errorf("%s ran %d statements, want 1", w.what, n)
			}
		}
	})
}

func TestStoreErrorsAreWrapped(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		db := tdb.Open(t)
		st := newStore(t, tdb, db)
		sqlDB, _ := db.DB()
		sqlDB.Close()
		s := sessionFor("alice")
		err := st.Insert(context.Background(), &s)
		if err == nil || !strings.Contains(err.Error(), "gormsession: insert "+s.ID) {
			t.Fatalf("Insert on a closed database = %v, want a wrapped error naming the session", err)
		}
		if err := st.Stream(context.Background(), time.Now(), func(*gormsession.Session) error { return nil }); err == nil {
			t.Fatal("Stream on a closed database succeeded")
		}
		if _, _, err := st.Get(context.Background(), s.ID); err == nil {
			t.Fatal("Get on a closed database succeeded")
		}
	})
}

func TestNewStoreRejectsNilDB(t *testing.T) {
	if _, err := gormsession.NewStore(nil, gormsession.StoreOptions{}); err == nil {
		t.Fatal("NewStore(nil) succeeded")
	}
}

// TestRawTokenIsNotStored scans every column of every row for the tokens.
func TestRawTokenIsNotStored(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		db := tdb.Open(t)
		m := newManager(t, newStore(t, tdb, db), gormsession.ManagerOptions{})
		ctx := context.Background()
		var tokens []string
		for i := range 5 {
			s, err := m.Create(ctx, gormsession.Attributes{UserID: fmt.Sprint("user", i), Data: []byte("x")})
			if err != nil {
				t.Fatal(err)
			}
			tokens = append(tokens, s.Token)
		}
		r, err := m.Rotate(ctx, tokens[0])
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, r.Token)

		rows, err := db.Table(tdb.Table).Rows()
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		cols, _ := rows.Columns()
		nrows := 0
		for rows.Next() {
			nrows++
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for i, v := range vals {
				cell := fmt.Sprintf("%v %s", v, v)
				for _, tok := range tokens {
					if strings.Contains(cell, tok) {
						t.Fatalf("column %s holds a raw token", cols[i])
					}
				}
			}
		}
		if nrows != 6 { // 5 live sessions and the tombstone of the rotated one
			t.Fatalf("scanned %d rows, want 6", nrows)
		}
	})
}

func sessionFor(user string) gormsession.Session {
	now := time.Now().UTC().Truncate(time.Microsecond)
	return gormsession.Session{
		ID:        gormsession.HashToken(gormsession.NewToken()),
		UserID:    user,
		CreatedAt: now,
		UpdatedAt: now,
		ExpiresAt: now.Add(time.Hour),
	}
}

func TestTombstonesArePurgedAfterTheirTTL(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		ctx := context.Background()
		db := tdb.Open(t)
		st, err := gormsession.NewStore(db, gormsession.StoreOptions{TableName: tdb.Table, TombstoneTTL: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		s := sessionFor("alice")
		s.ExpiresAt = time.Time{}
		if err := st.Insert(ctx, &s); err != nil {
			t.Fatal(err)
		}
		if err := st.Revoke(ctx, s.ID); err != nil {
			t.Fatal(err)
		}
		count := func() (n int64) {
			t.Helper()
			if err := db.Table(tdb.Table).Count(&n).Error; err != nil {
				t.Fatal(err)
			}
			return n
		}
		if _, err := st.RemoveExpired(ctx); err != nil || count() != 1 {
			t.Fatalf("a fresh tombstone was purged (rows %d, err %v)", count(), err)
		}
		// The database's clock tells the tombstone's age: wait out the TTL.
		time.Sleep(1100 * time.Millisecond)
		// On SQLite the newest change is kept until a later one (its seq
		// is what the next is counted from): make one.
		other := sessionFor("bob")
		if err := st.Insert(ctx, &other); err != nil {
			t.Fatal(err)
		}
		if _, err := st.RemoveExpired(ctx); err != nil || count() != 1 {
			t.Fatalf("an old tombstone was kept (rows %d, err %v)", count(), err)
		}
	})
}

// TestChangesLeaveOutNewVisitors checks that the change feed skips
// anonymous rows exactly as inserted, which no other instance can hold an
// older copy of, and reports every other change: a signed-in insert, and an
// anonymous row once touched, updated or revoked.
func TestChangesLeaveOutNewVisitors(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		ctx := context.Background()
		st := newStore(t, tdb, tdb.Open(t))
		head, err := st.Head(ctx)
		if err != nil {
			t.Fatal(err)
		}
		signedIn, fresh, touched, updated, revoked := sessionFor("alice"), sessionFor(""), sessionFor(""), sessionFor(""), sessionFor("")
		for _, s := range []*gormsession.Session{&signedIn, &fresh, &touched, &updated, &revoked} {
			if err := st.Insert(ctx, s); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.Touch(ctx, []string{touched.ID}, touched.UpdatedAt.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		updated.Data = []byte("v2")
		if err := st.Update(ctx, &updated); err != nil {
			t.Fatal(err)
		}
		if err := st.Revoke(ctx, revoked.ID); err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		_, err = st.Changes(ctx, head.Cursor, func(s *gormsession.Session, gone bool) error {
			seen[s.ID] = gone
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]bool{signedIn.ID: false, touched.ID: false, updated.ID: false, revoked.ID: true}
		if !maps.Equal(seen, want) {
			t.Errorf("Changes reported %v, want %v (the untouched visitor %s left out)", seen, want, fresh.ID)
		}
	})
}

// TestMigrateInItsOwnSchema runs two Stores in two PostgreSQL schemas: the
// NOTIFY trigger function must be installed in each.
func TestMigrateInItsOwnSchema(t *testing.T) {
	tdb := newPostgres(t)
	admin := tdb.Open(t)
	for _, schema := range []string{uniqueTable(), uniqueTable()} {
		if err := admin.Exec(fmt.Sprintf("CREATE SCHEMA %q", schema)).Error; err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { admin.Exec(fmt.Sprintf("DROP SCHEMA %q CASCADE", schema)) })
		db, err := testdb.OpenDSN(testdb.PostgresDSN() + "&search_path=" + schema)
		if err != nil {
			t.Fatal(err)
		}
		testdb.CloseOnCleanup(t, db)
		st, err := gormsession.NewStore(db, gormsession.StoreOptions{})
		if err != nil {
			t.Fatalf("NewStore in schema %s: %v", schema, err)
		}
		s := sessionFor("alice")
		if err := st.Insert(context.Background(), &s); err != nil {
			t.Fatalf("Insert in schema %s: %v", schema, err)
		}
	}
}

// TestHostileTableNamesAreRejected: a table name is an identifier, never
// SQL. Names that would smuggle statements in, or are not identifiers,
// are refused by NewStore before any statement runs; a schema-qualified
// name works on PostgreSQL.
func TestHostileTableNamesAreRejected(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		db, c := testdb.Counted(tdb.Open(t))
		for _, name := range []string{
			`x (id text primary key); DROP TABLE y; --`,
			`sessions; DROP TABLE users`,
			`a b`,
			`"quoted"`,
			"back`tick",
			`1starts_with_digit`,
			`semi;colon`,
			`dash-ed`,
			`a.b.c`,
			strings.Repeat("x", 64),
		} {
			c.Reset()
			if _, err := gormsession.NewStore(db, gormsession.StoreOptions{TableName: name}); err == nil {
				t.Fatalf("NewStore accepted the table name %q", name)
			} else if !strings.Contains(err.Error(), "not an identifier") {
				t.Fatalf("NewStore(%q): %v, want an error saying it is not an identifier", name, err)
			}
			if n := c.N(); n != 0 {
				t.Fatalf("NewStore(%q) ran %d statements before refusing it", name, n)
			}
		}
		if tdb.Name != "postgres" {
			if _, err := gormsession.NewStore(db, gormsession.StoreOptions{TableName: "main." + tdb.Table}); err == nil {
				t.Fatal("a schema-qualified name was accepted outside PostgreSQL")
			}
			return
		}
		qualified := "public." + tdb.Table
		st, err := gormsession.NewStore(db, gormsession.StoreOptions{TableName: qualified})
		if err != nil {
			t.Fatalf("NewStore(%q): %v", qualified, err)
		}
		m := newManager(t, st, gormsession.ManagerOptions{})
		s := create(t, m, gormsession.Attributes{UserID: "alice"})
		if _, found, err := newStore(t, tdb, nil).Get(context.Background(), s.ID); !found || err != nil {
			t.Fatalf("a session stored through %q is not in %s (found %v, err %v)", qualified, tdb.Table, found, err)
		}
	})
}

// TestPreparedStatementsAreOptionalAndClosed runs the same work with the
// hot statements prepared (the default) and unprepared
// (NoPreparedStatements, for poolers such as PgBouncer), and after Close,
// which releases the prepared statements: every way gives the same result,
// one statement per write.
func TestPreparedStatementsAreOptionalAndClosed(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		ctx := context.Background()
		for _, tt := range []struct {
			name  string
			opts  gormsession.StoreOptions
			close bool
		}{
			{"prepared", gormsession.StoreOptions{}, false},
			{"unprepared", gormsession.StoreOptions{NoPreparedStatements: true}, false},
			{"after Close", gormsession.StoreOptions{}, true},
		} {
			db, c := testdb.Counted(tdb.Open(t))
			tt.opts.TableName = tdb.Table
			st, err := gormsession.NewStore(db, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			s := sessionFor("alice")
			if err := st.Insert(ctx, &s); err != nil {
				t.Fatalf("%s: Insert: %v", tt.name, err)
			}
			if tt.close {
				if err := st.Close(); err != nil {
					t.Fatalf("Close: %v", err)
				}
			}
			c.Reset()
			s.Data = []byte("v2")
			if err := st.Update(ctx, &s); err != nil {
				t.Fatalf("%s: Update: %v", tt.name, err)
			}
			got, found, err := st.Get(ctx, s.ID)
			if err != nil || !found || string(got.Data) != "v2" || got.Version != s.Version {
				t.Fatalf("%s: Get = %+v, %v, %v", tt.name, got, found, err)
			}
			if err := st.Revoke(ctx, s.ID); err != nil {
				t.Fatalf("%s: Revoke: %v", tt.name, err)
			}
			if n := c.N(); n != 3 {
				t.Fatalf("%s: update, get and revoke ran %d statements, want 3", tt.name, n)
			}
			if err := st.Close(); err != nil {
				t.Fatalf("%s: Close: %v", tt.name, err)
			}
		}
	})
}

// TestRevokeSessionReportsWhetherItEndedTheSession checks that
// RevokeSession revokes as Revoke does, and says true only for the call
// that ended a live session.
func TestRevokeSessionReportsWhetherItEndedTheSession(t *testing.T) {
	eachDBAndMySQL(t, func(t *testing.T, tdb testDB) {
		ctx := context.Background()
		st := newStore(t, tdb, nil)
		s, other := sessionFor("alice"), sessionFor("alice")
		for _, sess := range []*gormsession.Session{&s, &other} {
			if err := st.Insert(ctx, sess); err != nil {
				t.Fatal(err)
			}
		}
		for i, want := range []bool{true, false} {
			if revoked, err := st.RevokeSession(ctx, s.ID); err != nil || revoked != want {
				t.Fatalf("RevokeSession, call %d: %v, %v; want %v", i+1, revoked, err, want)
			}
		}
		if _, found, err := st.Get(ctx, s.ID); found || err != nil {
			t.Fatalf("Get of the revoked session: found %v, %v", found, err)
		}
		if _, found, _ := st.Get(ctx, other.ID); !found {
			t.Fatal("RevokeSession revoked another session")
		}
		if err := st.Revoke(ctx, other.ID); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{other.ID, gormsession.HashToken(gormsession.NewToken())} {
			if revoked, err := st.RevokeSession(ctx, id); err != nil || revoked {
				t.Fatalf("RevokeSession of a revoked or unknown session: %v, %v", revoked, err)
			}
		}
	})
}
