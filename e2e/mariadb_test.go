package e2e

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/gormsession/gormsession/internal/testdb"

	"gorm.io/driver/mysql"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/gormsession/gormsession"
	"github.com/gormsession/gormsession/backendtest"
)

const defaultMySQLDSN = "root@tcp(127.0.0.1:3306)/test?parseTime=true&loc=UTC"

// openMariaDB opens the MariaDB/MySQL test database at GORMSESSION_MYSQL_DSN
// (default: root on 127.0.0.1:3306, database test). It skips when the
// database is unreachable, unless GORMSESSION_REQUIRE_DB names mysql.
func openMariaDB(t *testing.T) *gorm.DB {
	t.Helper()
	dsn := os.Getenv("GORMSESSION_MYSQL_DSN")
	if dsn == "" {
		dsn = defaultMySQLDSN
	}
	db, err := gorm.Open(mysql.Open(dsn), &gorm.Config{Logger: logger.Discard})
	if err == nil {
		sqlDB, _ := db.DB()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = sqlDB.PingContext(ctx)
		cancel()
	}
	if err != nil {
		if testdb.Required("mysql") {
			t.Fatalf("MariaDB at %s is unreachable and GORMSESSION_REQUIRE_DB requires it: %v", dsn, err)
		}
		t.Skipf("MariaDB unreachable (set GORMSESSION_MYSQL_DSN): %v", err)
	}
	t.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			sqlDB.Close()
		}
	})
	return db
}

func TestMariaDBConformance(t *testing.T) {
	db := openMariaDB(t)
	backendtest.Run(t, func(t *testing.T) gormsession.Backend {
		table := testdb.UniqueName("gs_e2e_")
		t.Cleanup(func() { db.Exec("DROP TABLE IF EXISTS `" + table + "`") })
		st, err := gormsession.NewStore(db, gormsession.StoreOptions{TableName: table})
		if err != nil {
			t.Fatalf("NewStore on MariaDB: %v", err)
		}
		return st
	})
}

func TestMariaDBSessionsSurviveRestart(t *testing.T) {
	ctx := context.Background()
	table := testdb.UniqueName("gs_e2e_")
	db := openMariaDB(t)
	t.Cleanup(func() { db.Exec("DROP TABLE IF EXISTS `" + table + "`") })
	st, err := gormsession.NewStore(db, gormsession.StoreOptions{TableName: table})
	if err != nil {
		t.Fatal(err)
	}
	m1, err := gormsession.NewManager(ctx, st, gormsession.ManagerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := m1.Create(ctx, gormsession.Attributes{UserID: "alice", TenantID: "acme", Device: "Firefox", Data: []byte{0, 1}})
	if err != nil {
		t.Fatal(err)
	}
	gone, err := m1.Create(ctx, gormsession.Attributes{UserID: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if err := m1.Revoke(ctx, gone.ID); err != nil {
		t.Fatal(err)
	}
	if err := m1.Close(); err != nil {
		t.Fatal(err)
	}

	st2, err := gormsession.NewStore(openMariaDB(t), gormsession.StoreOptions{TableName: table})
	if err != nil {
		t.Fatal(err)
	}
	m2, err := gormsession.NewManager(ctx, st2, gormsession.ManagerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := m2.Close(); err != nil {
			t.Error(err)
		}
	}()
	got, ok := m2.Resolve(context.Background(), s.Token)
	if !ok || got.UserID != "alice" || got.TenantID != "acme" || string(got.Data) != "\x00\x01" || !got.ExpiresAt.Equal(s.ExpiresAt) {
		t.Fatalf("after restart on MariaDB: %+v, %v", got, ok)
	}
	if _, ok := m2.Resolve(context.Background(), gone.Token); ok {
		t.Fatal("a revoked session came back after a restart on MariaDB")
	}
}

// TestMariaDBHostileTableNamesAreRejected: on MariaDB too a table name is
// an identifier, never SQL.
func TestMariaDBHostileTableNamesAreRejected(t *testing.T) {
	db := openMariaDB(t)
	for _, name := range []string{"x` (id int); DROP TABLE y; -- ", "a b", "test.sessions", "semi;colon", "1abc"} {
		if _, err := gormsession.NewStore(db, gormsession.StoreOptions{TableName: name}); err == nil {
			t.Fatalf("NewStore on MariaDB accepted the table name %q", name)
		}
	}
}

// TestMariaDBLateCommitIsCaughtByTheResync is the bound the README states
// for MySQL and MariaDB, which offer no snapshot horizon to read the change
// feed against: a revocation whose commit a concurrent transaction holds
// back for longer than the feed's window (5 s) is not in the feed, and the
// periodic reload (ResyncInterval) catches it. Skewed clocks do not enter:
// the window is the database's clock.
func TestMariaDBLateCommitIsCaughtByTheResync(t *testing.T) {
	ctx := context.Background()
	table := testdb.UniqueName("gs_e2e_")
	db := openMariaDB(t)
	t.Cleanup(func() { db.Exec("DROP TABLE IF EXISTS `" + table + "`") })
	manager := func(now func() time.Time) *gormsession.Manager {
		st, err := gormsession.NewStore(openMariaDB(t), gormsession.StoreOptions{TableName: table})
		if err != nil {
			t.Fatal(err)
		}
		m, err := gormsession.NewManager(ctx, st, gormsession.ManagerOptions{
			SyncInterval: 100 * time.Millisecond, ResyncInterval: time.Second, Now: now,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = m.Close() })
		return m
	}
	a := manager(func() time.Time { return time.Now().Add(-10 * time.Minute) })
	b := manager(nil)
	s, err := a.Create(ctx, gormsession.Attributes{UserID: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := b.Resolve(ctx, s.Token); !ok {
		t.Fatal("B does not read through a session created on A")
	}
	tx := db.Begin()
	if err := tx.Exec("SELECT id FROM `"+table+"` WHERE id = ? FOR UPDATE", s.ID).Error; err != nil {
		tx.Rollback()
		t.Fatal(err)
	}
	revoked := make(chan error, 1)
	go func() { revoked <- a.Revoke(ctx, s.ID) }()
	time.Sleep(6 * time.Second)
	if err := tx.Commit().Error; err != nil {
		t.Fatal(err)
	}
	if err := <-revoked; err != nil {
		t.Fatal(err)
	}
	committed := time.Now()
	for {
		if _, ok := b.Resolve(ctx, s.Token); !ok {
			break
		}
		if time.Since(committed) > 5*time.Second {
			t.Fatalf("B still accepts the token %v after the late revocation committed (ResyncInterval 1 s)", time.Since(committed))
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("refused on B %v after the commit; reloads on B: %d", time.Since(committed).Round(time.Millisecond), b.Stats().Resyncs)
}
