package gormsession

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/gormsession/gormsession/internal/testdb"
)

// TestPermanentClassifiesRealErrors runs statements that fail on the real
// PostgreSQL and SQLite and checks which errors a revocation is retried
// after: not those the database will never accept (bad data, a violated
// constraint), but connection failures, timeouts and a missing table.
func TestPermanentClassifiesRealErrors(t *testing.T) {
	pg := testdb.Postgres(t)
	db := pg.Open(t)
	table := pg.Table
	if err := db.Exec(fmt.Sprintf(`CREATE TABLE %q (id varchar(4) PRIMARY KEY, n int NOT NULL CHECK (n > 0))`, table)).Error; err != nil {
		t.Fatal(err)
	}
	if err := db.Exec(fmt.Sprintf(`INSERT INTO %q VALUES ('a', 1)`, table)).Error; err != nil {
		t.Fatal(err)
	}
	exec := func(sql string, args ...any) func(context.Context) error {
		return func(ctx context.Context) error { return db.WithContext(ctx).Exec(sql, args...).Error }
	}
	lite := testdb.SQLite(t).Open(t)
	// Opening pings: nothing listens on port 1.
	_, refused := testdb.OpenDSN("postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=1")
	cases := []struct {
		name      string
		run       func(context.Context) error
		permanent bool
	}{
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
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.run(t.Context())
			if err == nil {
				t.Fatal("the statement did not fail")
			}
			wrapped := fmt.Errorf("gormsession: revoke: %w", err)
			if got := permanent(wrapped); got != c.permanent {
				t.Fatalf("permanent(%v) = %v, want %v", err, got, c.permanent)
			}
		})
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
