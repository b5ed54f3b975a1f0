package gormsession

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"gorm.io/driver/mysql"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/gormsession/gormsession/internal/testdb"
)

// classifiedError is a statement that fails on a real database, and
// whether a revocation that fails so is refused for good.
type classifiedError struct {
	name      string
	run       func(context.Context) error
	permanent bool
}

// TestPermanentClassifiesRealErrors runs statements that fail on the real
// PostgreSQL, SQLite and MariaDB and checks which errors a revocation is
// retried after: not those the database will never accept (bad data, a
// violated constraint), but connection failures, timeouts and a missing
// table.
func TestPermanentClassifiesRealErrors(t *testing.T) {
	for _, db := range []struct {
		name  string
		cases func(*testing.T) []classifiedError
	}{{"postgres", postgresErrors}, {"mariadb", mariaDBErrors}} {
		t.Run(db.name, func(t *testing.T) {
			for _, c := range db.cases(t) {
				t.Run(c.name, func(t *testing.T) {
					err := c.run(t.Context())
					if err == nil {
						t.Fatal("the statement did not fail")
					}
					if code, _, _ := strings.Cut(c.name, " "); code[0] >= '0' && code[0] <= '9' && !hasCode(err, code) {
						t.Fatalf("the statement failed otherwise: %v", err)
					}
					wrapped := fmt.Errorf("gormsession: revoke: %w", err)
					if got := permanent(wrapped); got != c.permanent {
						t.Fatalf("permanent(%v) = %v, want %v", err, got, c.permanent)
					}
				})
			}
		})
	}
}

// hasCode reports whether err is a PostgreSQL error with SQLSTATE code,
// or a MySQL one with error number code.
func hasCode(err error, code string) bool {
	var st interface{ SQLState() string }
	if errors.As(err, &st) {
		return st.SQLState() == code
	}
	number, _, ok := mysqlError(err)
	return ok && strconv.Itoa(int(number)) == code
}

// execOn returns a statement run on db.
func execOn(db *gorm.DB, sql string, args ...any) func(context.Context) error {
	return func(ctx context.Context) error { return db.WithContext(ctx).Exec(sql, args...).Error }
}

// postgresErrors are the errors of PostgreSQL, and SQLite's and a
// Backend's own.
func postgresErrors(t *testing.T) []classifiedError {
	pg := testdb.Postgres(t)
	db := pg.Open(t)
	table := pg.Table
	if err := db.Exec(fmt.Sprintf(`CREATE TABLE %q (id varchar(4) PRIMARY KEY, n int NOT NULL CHECK (n > 0))`, table)).Error; err != nil {
		t.Fatal(err)
	}
	if err := db.Exec(fmt.Sprintf(`INSERT INTO %q VALUES ('a', 1)`, table)).Error; err != nil {
		t.Fatal(err)
	}
	exec := func(sql string, args ...any) func(context.Context) error { return execOn(db, sql, args...) }
	lite := testdb.SQLite(t).Open(t)
	// Opening pings: nothing listens on port 1.
	_, refused := testdb.OpenDSN("postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=1")
	return []classifiedError{
		{"22021 invalid UTF-8", exec(fmt.Sprintf(`UPDATE %q SET n = 2 WHERE id = ?`, table), "\xff"), true},
		{"22001 value too long", exec(fmt.Sprintf(`INSERT INTO %q VALUES ('toolong', 1)`, table)), true},
		{"22012 division by zero", exec(`SELECT 1/0`), true},
		{"22P02 invalid text", exec(`SELECT 'x'::int`), true},
		{"23505 unique violation", exec(fmt.Sprintf(`INSERT INTO %q VALUES ('a', 1)`, table)), true},
		{"23502 not null", exec(fmt.Sprintf(`INSERT INTO %q (id) VALUES ('b')`, table)), true},
		{"23514 check", exec(fmt.Sprintf(`INSERT INTO %q VALUES ('c', -1)`, table)), true},
		{"42P01 missing table", exec(`UPDATE gs_no_such_table SET x = 1`), false},
		{"57014 statement timeout", func(ctx context.Context) error {
			return db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
				if err := tx.Exec(`SET LOCAL statement_timeout = 1`).Error; err != nil {
					return err
				}
				return tx.Exec(`SELECT pg_sleep(1)`).Error
			})
		}, false},
		{"context deadline", func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
			defer cancel()
			return exec(`SELECT pg_sleep(1)`)(ctx)
		}, false},
		{"connection refused", func(context.Context) error { return refused }, false},
		{"sqlite missing table", func(ctx context.Context) error { return lite.WithContext(ctx).Exec(`UPDATE nope SET x = 1`).Error }, false},
		{"a Backend's own failure", func(context.Context) error { return errors.New("unreachable") }, false},
	}
}

// mariaDBErrors are the errors of MariaDB in strict mode: those a
// revocation's own statements return on a connection whose character set
// is not the table's, and the data and constraint errors of other
// statements.
func mariaDBErrors(t *testing.T) []classifiedError {
	my := testdb.MySQL(t)
	db := my.Open(t)
	table := my.Table
	if err := db.Exec(fmt.Sprintf("CREATE TABLE `%s` (id varchar(4) PRIMARY KEY, n int NOT NULL CHECK (n > 0), d datetime NULL) DEFAULT CHARSET=utf8mb4", table)).Error; err != nil {
		t.Fatal(err)
	}
	if err := db.Exec(fmt.Sprintf("INSERT INTO `%s` VALUES ('a', 1, NULL)", table)).Error; err != nil {
		t.Fatal(err)
	}
	exec := func(sql string, args ...any) func(context.Context) error {
		return execOn(db, strings.ReplaceAll(sql, "{table}", "`"+table+"`"), args...)
	}
	// The Store's RevokeUser on connections in another character set.
	stores := testdb.MySQL(t)
	if _, err := NewStore(stores.Open(t), StoreOptions{TableName: stores.Table}); err != nil {
		t.Fatal(err)
	}
	revokeUser := func(charset, userID string) func(context.Context) error {
		st, err := NewStore(stores.WithDSNParam("charset="+charset).Open(t), StoreOptions{TableName: stores.Table})
		if err != nil {
			t.Fatal(err)
		}
		return func(ctx context.Context) error {
			_, err := st.RevokeUser(ctx, userID, "", time.Time{})
			return err
		}
	}
	// Opening pings: nothing listens on port 1.
	_, refused := gorm.Open(mysql.Open("root@tcp(127.0.0.1:1)/test?timeout=1s"), &gorm.Config{Logger: logger.Discard})
	return []classifiedError{
		{"1267 HY000 RevokeUser of invalid UTF-8 on a utf8mb3 connection", revokeUser("utf8mb3", "\xffalice"), true},
		{"1267 HY000 RevokeUser of a 4-byte character on a utf8mb3 connection", revokeUser("utf8mb3", "\U0001F600"), true},
		{"1300 HY000 RevokeUser of invalid UTF-8 on a binary connection", revokeUser("binary", "\xffalice"), true},
		{"1366 22007 incorrect string value", exec("UPDATE {table} SET id = ? WHERE id = 'a'", "\xff"), true},
		{"1406 22001 data too long", exec("INSERT INTO {table} VALUES ('toolong', 1, NULL)"), true},
		{"1292 22007 incorrect datetime", exec("UPDATE {table} SET d = 'x' WHERE id = 'a'"), true},
		{"1264 22003 out of range", exec("UPDATE {table} SET n = 99999999999 WHERE id = 'a'"), true},
		{"1365 22012 division by zero", exec("UPDATE {table} SET n = 1 DIV 0 WHERE id = 'a'"), true},
		{"1062 23000 duplicate key", exec("INSERT INTO {table} VALUES ('a', 1, NULL)"), true},
		{"1048 23000 not null", exec("UPDATE {table} SET n = NULL WHERE id = 'a'"), true},
		{"4025 23000 check", exec("INSERT INTO {table} VALUES ('c', -1, NULL)"), true},
		{"1146 42S02 missing table", exec("UPDATE gs_no_such_table SET x = 1"), false},
		{"1969 70100 statement timeout", exec("SET STATEMENT max_statement_time = 0.01 FOR SELECT SLEEP(1) FROM {table}"), false},
		{"context deadline", func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
			defer cancel()
			return exec("SELECT SLEEP(1)")(ctx)
		}, false},
		{"connection refused", func(context.Context) error { return refused }, false},
	}
}

// TestPruneForgetsOnlySettledOldClaims: a revocation the Backend has had
// for longer than any read the Manager may still apply is forgotten, so
// the claims stay bounded; one still queued, or recent, is kept and keeps
// refusing the session.
func TestPruneForgetsOnlySettledOldClaims(t *testing.T) {
	clock := time.Now()
	opts := ManagerOptions{Now: func() time.Time { return clock }}.withDefaults(false)
	m := newManager(nil, opts, &pendingRevocations{})
	session := func() Session {
		return Session{ID: HashToken(NewToken()), UserID: "u", CreatedAt: clock, UpdatedAt: clock, Version: 1}
	}
	landed, queued := session(), session()
	m.recordRevoked(landed.ID)
	m.mu.Lock()
	c := m.claim(queued.ID)
	c.revoked, c.job = true, &job{seq: 1, id: queued.ID}
	m.mu.Unlock()

	clock = clock.Add(revokedKeep / 2)
	m.pruneRevoked()
	if m.learn(&landed) != nil || m.learn(&queued) != nil {
		t.Fatal("a revocation was forgotten before the longest read could have seen it")
	}
	clock = clock.Add(revokedKeep)
	landed.UpdatedAt, queued.UpdatedAt = clock, clock
	m.pruneRevoked()
	if m.learn(&queued) != nil {
		t.Fatal("a revocation still queued was forgotten")
	}
	if m.learn(&landed) == nil {
		t.Fatal("a revocation settled long ago still refuses a row the database says is live")
	}
	m.mu.Lock()
	n := len(m.cl.ids)
	m.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d claims kept, want the queued one", n)
	}
}
