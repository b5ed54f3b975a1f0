package benchmarks

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/gormsession/gormsession"
)

// floorSubject is the floor of a database-backed store: the one statement
// a request needs (an INSERT for a new session, an UPDATE for a save) and
// nothing else, run with database/sql statements prepared once, on a table
// of gormsession's schema (the same indexes), in the same run as the
// stores. A Get is served from memory, like gormsession's: the floor of a
// Get is no work at all.
type floorSubject struct {
	db             *gorm.DB
	insert, update *sql.Stmt
	insertSQL      string
	updateSQL      string
	data           []byte // stored values of a typical size
}

func newFloorSubject(tb testing.TB, db *gorm.DB, table string) subject {
	if _, err := gormsession.NewStore(db, gormsession.StoreOptions{TableName: table}); err != nil {
		tb.Fatal(err)
	}
	f := &floorSubject{db: db, data: []byte(strings.Repeat("v", 120))}
	f.insertSQL = "INSERT INTO " + table + " (id, user_id, tenant_id, device, data, created_at, updated_at, expires_at, version) VALUES (?, '', '', '', ?, ?, ?, ?, 1)"
	// seq changes, as in every write of the Store (see Model): the table's
	// triggers for writers that leave it alone (an earlier version's) then
	// do nothing.
	f.updateSQL = "UPDATE " + table + " SET data = ?, updated_at = ?, expires_at = ?, version = version + 1, seq = seq + 1 WHERE id = ?"
	if db.Dialector.Name() == "postgres" {
		f.insertSQL = "INSERT INTO " + table + " (id, user_id, tenant_id, device, data, created_at, updated_at, expires_at, version) VALUES ($1, '', '', '', $2, $3, $4, $5, 1)"
		f.updateSQL = "UPDATE " + table + " SET data = $1, updated_at = $2, expires_at = $3, version = version + 1, seq = seq + 1 WHERE id = $4"
	}
	sqlDB, err := db.DB()
	if err != nil {
		tb.Fatal(err)
	}
	if f.insert, err = sqlDB.Prepare(f.insertSQL); err != nil {
		tb.Fatal(err)
	}
	if f.update, err = sqlDB.Prepare(f.updateSQL); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		_ = f.insert.Close()
		_ = f.update.Close()
	})
	return f
}

func (f *floorSubject) get(http.ResponseWriter, *http.Request) (any, error) { return "alice", nil }

func (f *floorSubject) getSet(w http.ResponseWriter, r *http.Request, _ map[string]any) error {
	now := time.Now().UTC()
	if c, err := r.Cookie(cookieName); err == nil {
		return f.exec(r, f.update, f.updateSQL, f.data, now, now.Add(time.Hour), c.Value)
	}
	var b [32]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	if err := f.exec(r, f.insert, f.insertSQL, id, f.data, now, now, now.Add(time.Hour)); err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: id})
	return nil
}

// exec runs a prepared statement and reports it to the statement counter.
func (f *floorSubject) exec(r *http.Request, stmt *sql.Stmt, query string, args ...any) error {
	begin := time.Now()
	_, err := stmt.ExecContext(r.Context(), args...)
	f.db.Logger.Trace(r.Context(), begin, func() (string, int64) { return query, 1 }, err)
	return err
}
