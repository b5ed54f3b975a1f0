package gormsession

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// StoreOptions configures a Store. The zero value is ready to use.
type StoreOptions struct {
	// TableName is the sessions table. Default: DefaultTableName
	// ("gormsession_sessions").
	TableName string
	// SkipMigrate stops NewStore from running Migrate. Default: false,
	// NewStore creates the table, or adds the columns and indexes an older
	// table lacks.
	SkipMigrate bool
	// NoPreparedStatements runs every statement unprepared. By default the
	// statements of the hot paths (create, update, revoke, get by ID) are
	// prepared once on the *sql.DB under the *gorm.DB, and Close releases
	// them. Set it behind a pooler that cannot keep prepared statements
	// across transactions, such as PgBouncer in transaction mode (there,
	// also give pgx default_query_exec_mode=exec or simple_protocol in the
	// DSN, since pgx caches statements of its own). Default: false.
	NoPreparedStatements bool
	// TombstoneTTL is how long the tombstone of a revoked session is kept,
	// so that other instances reading the change feed see the revocation.
	// RemoveExpired deletes older tombstones. Default: 24 hours.
	TombstoneTTL time.Duration
}

const defaultTombstoneTTL = 24 * time.Hour

// Store is the GORM implementation of Backend. It implements every optional
// Backend interface. It is safe for concurrent use.
//
// Every row carries a version that every change advances, and every write
// is conditional: Insert only inserts, Update only changes the live row at
// the version the caller read, Rotate removes the old row and inserts its
// successor in one transaction. Removing a session leaves a tombstone (the
// row with revoked_at set and its data cleared) for
// StoreOptions.TombstoneTTL, so that other instances on the same database
// learn of the revocation from the change feed. A tombstone is never
// loaded, returned by Get or changed by Update.
type Store struct {
	db           *gorm.DB
	table        string // as configured
	quoted       string // quoted for the dialect, for SQL text
	dialect      string
	tombstoneTTL time.Duration
	sql          statements

	// The hot statements, prepared on sqlDB; nil sqlDB: run through GORM.
	sqlDB                           *sql.DB
	insert, update, revoke, getByID *prepared
}

// prepared is one hot statement, prepared on first use and kept until
// Close.
type prepared struct {
	sql   string // with ? placeholders, as GORM runs it unprepared
	query string // with the dialect's placeholders, as it is prepared

	mu     sync.Mutex
	stmt   *sql.Stmt
	closed bool
}

// statements are the SQL texts of the Store's writes, built once by
// NewStore. GORM binds the ? placeholders in the dialect's own style.
type statements struct {
	insert, update, remove, removeUser, removeUserSelect, touch      string
	rotateRevoke, clearData, purgeTombstones, get, signedIn, changes string
}

var (
	_ Backend        = (*Store)(nil)
	_ UserRevoker    = (*Store)(nil)
	_ ExpiredRemover = (*Store)(nil)
	_ Toucher        = (*Store)(nil)
	_ ChangeFeed     = (*Store)(nil)
)

// selectColumns are read, in this order, by scan.
const selectColumns = "id, user_id, tenant_id, device, data, created_at, updated_at, expires_at, revoked_at, version"

// tableNamePattern is what a table name may be: a plain identifier, or on
// PostgreSQL schema.table.
var tableNamePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// validTableName reports whether name is an identifier the Store accepts
// as its table name on dialect.
func validTableName(name, dialect string) bool {
	if dialect == "postgres" {
		if schema, table, ok := strings.Cut(name, "."); ok {
			return tableNamePattern.MatchString(schema) && tableNamePattern.MatchString(table)
		}
	}
	return tableNamePattern.MatchString(name)
}

// NewStore returns a Store on db. Unless opts.SkipMigrate is set it runs
// Migrate, which is idempotent. db is used with its own driver and
// settings; NewStore never opens a connection of its own.
//
// The table name must be an identifier (letters, digits and underscores,
// not starting with a digit), or schema.table on PostgreSQL; anything else
// is an error.
func NewStore(db *gorm.DB, opts StoreOptions) (*Store, error) {
	if db == nil {
		return nil, errors.New("gormsession: NewStore: nil *gorm.DB")
	}
	s := &Store{
		db:           db.Session(&gorm.Session{SkipDefaultTransaction: true, NewDB: true}),
		table:        opts.TableName,
		dialect:      db.Dialector.Name(),
		tombstoneTTL: opts.TombstoneTTL,
	}
	if s.table == "" {
		s.table = DefaultTableName
	}
	if !validTableName(s.table, s.dialect) {
		return nil, fmt.Errorf("gormsession: NewStore: table name %q is not an identifier (letters, digits, underscores; schema.table on PostgreSQL)", s.table)
	}
	if s.tombstoneTTL <= 0 {
		s.tombstoneTTL = defaultTombstoneTTL
	}
	var b strings.Builder
	db.Dialector.QuoteTo(&b, s.table)
	s.quoted = b.String()
	s.sql = buildStatements(s.quoted)
	if sqlDB, err := db.DB(); err == nil && !opts.NoPreparedStatements {
		s.sqlDB = sqlDB
	}
	s.insert, s.update = s.prepare(s.sql.insert), s.prepare(s.sql.update)
	s.revoke, s.getByID = s.prepare(s.sql.remove), s.prepare(s.sql.get)
	if !opts.SkipMigrate {
		if err := s.Migrate(context.Background()); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// prepare returns the hot statement of query, whose prepared form has the
// ? placeholders turned into the dialect's.
func (s *Store) prepare(query string) *prepared {
	p := &prepared{sql: query, query: query}
	if s.dialect == "postgres" {
		var b strings.Builder
		n := 0
		for _, c := range query {
			if c == '?' {
				n++
				b.WriteString("$" + strconv.Itoa(n))
				continue
			}
			b.WriteRune(c)
		}
		p.query = b.String()
	}
	return p
}

// statement returns p's prepared statement, preparing it on first use, or
// nil when the Store runs p unprepared (NoPreparedStatements, or after
// Close).
func (s *Store) statement(ctx context.Context, p *prepared) (*sql.Stmt, error) {
	if s.sqlDB == nil {
		return nil, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.stmt != nil {
		return p.stmt, nil
	}
	stmt, err := s.sqlDB.PrepareContext(ctx, p.query)
	if err != nil {
		return nil, err
	}
	p.stmt = stmt
	return stmt, nil
}

// Close releases the Store's prepared statements. Close the Manager first:
// a Store used after Close runs its statements unprepared. The *gorm.DB is
// the application's and stays open. Close starts and leaves no goroutine.
func (s *Store) Close() error {
	var errs []error
	for _, p := range []*prepared{s.insert, s.update, s.revoke, s.getByID} {
		p.mu.Lock()
		if p.stmt != nil {
			errs = append(errs, p.stmt.Close())
		}
		p.stmt, p.closed = nil, true
		p.mu.Unlock()
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("gormsession: close store: %w", err)
	}
	return nil
}

// buildStatements returns the SQL of the Store's statements on table (quoted).
func buildStatements(t string) statements {
	const tombstone = "revoked_at = ?, updated_at = ?, data = NULL, version = version + 1"
	return statements{
		insert: "INSERT INTO " + t + " (id, user_id, tenant_id, device, data, created_at, updated_at, expires_at, version)" +
			" VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1)",
		update: "UPDATE " + t + " SET tenant_id = ?, device = ?, data = ?, updated_at = ?, expires_at = ?, version = version + 1" +
			" WHERE id = ? AND version = ? AND revoked_at IS NULL",
		remove: "UPDATE " + t + " SET " + tombstone + " WHERE id = ? AND revoked_at IS NULL",
		// user_id > '' lets the partial index on user_id serve (see Model).
		removeUser:       "UPDATE " + t + " SET " + tombstone + " WHERE user_id = ? AND user_id > '' AND id <> ? AND created_at < ? AND revoked_at IS NULL",
		removeUserSelect: "SELECT id FROM " + t + " WHERE user_id = ? AND user_id > '' AND id <> ? AND created_at < ? AND revoked_at IS NULL",
		touch:            "UPDATE " + t + " SET updated_at = ? WHERE id IN ? AND updated_at < ? AND revoked_at IS NULL",
		rotateRevoke: "UPDATE " + t + " SET revoked_at = ?, updated_at = ?, version = version + 1" +
			" WHERE id = ? AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)",
		clearData: "UPDATE " + t + " SET data = NULL WHERE id = ?",
		// Served by the partial index on revoked_at (see Model).
		purgeTombstones: "DELETE FROM " + t + " WHERE revoked_at IS NOT NULL AND revoked_at <= ?",
		get:             "SELECT " + selectColumns + " FROM " + t + " WHERE id = ? AND revoked_at IS NULL",
		signedIn:        "SELECT " + selectColumns + " FROM " + t + " WHERE revoked_at IS NULL AND user_id > ''",
		// Anonymous rows exactly as inserted are left out (see Changes);
		// the condition is the partial index's on updated_at (see Model),
		// word for word, so that the index serves.
		changes: "SELECT " + selectColumns + " FROM " + t + " WHERE updated_at >= ?" +
			" AND (user_id > '' OR version > 1 OR updated_at > created_at) ORDER BY updated_at",
	}
}

// TableName returns the name of the table the Store uses.
func (s *Store) TableName() string { return s.table }

// migrationLockKey is the PostgreSQL advisory lock that serializes
// migrations of every Store, so that instances starting together do not
// race to create the same table, index or function.
var migrationLockKey = func() int64 {
	h := fnv.New64a()
	h.Write([]byte("gormsession migrate"))
	return int64(h.Sum64() >> 1)
}()

// migrateRetryFor is how long a migration that lost a race with another
// process (SQLite: "database is locked") is retried.
const migrateRetryFor = 15 * time.Second

// Migrate creates the table, or adds the columns and indexes that an older
// table lacks; on PostgreSQL it also installs the trigger that announces
// changes with NOTIFY (see ChangeNotifier). Existing rows are kept. It is
// safe to run more than once, and from several processes at once: on
// PostgreSQL migrations are serialized with an advisory lock, on other
// dialects a migration that lost a race is retried.
func (s *Store) Migrate(ctx context.Context) error {
	if s.dialect == "postgres" {
		err := s.db.WithContext(ctx).Connection(func(conn *gorm.DB) error {
			if err := conn.Exec("SELECT pg_advisory_lock(?)", migrationLockKey).Error; err != nil {
				return err
			}
			defer conn.Exec("SELECT pg_advisory_unlock(?)", migrationLockKey)
			if err := conn.Table(s.table).AutoMigrate(&Model{}); err != nil {
				return err
			}
			return s.installNotifyTrigger(conn)
		})
		if err != nil {
			return fmt.Errorf("gormsession: migrate %s: %w", s.table, err)
		}
		return nil
	}
	deadline := time.Now().Add(migrateRetryFor)
	for attempt := 1; ; attempt++ {
		err := s.db.WithContext(ctx).Table(s.table).AutoMigrate(migrationModel(s.dialect))
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("gormsession: migrate %s: %w", s.table, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("gormsession: migrate %s: %w", s.table, ctx.Err())
		case <-time.After(time.Duration(min(attempt, 10)) * 50 * time.Millisecond):
		}
	}
}

// notifyFunction is the PostgreSQL trigger function that announces a change
// to a sessions table on the channel named after the table.
const notifyFunction = `CREATE OR REPLACE FUNCTION gormsession_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify(TG_TABLE_NAME, '');
	RETURN NULL;
END
$$`

// installNotifyTrigger adds the statement-level NOTIFY trigger to the table
// if it has none. conn holds the migration lock.
func (s *Store) installNotifyTrigger(conn *gorm.DB) error {
	var n int64
	// The function lives in the schema the table is created in (the first
	// of the search path), where the trigger will look it up.
	err := conn.Raw(`SELECT count(*) FROM pg_proc p JOIN pg_namespace ns ON ns.oid = p.pronamespace
		WHERE p.proname = 'gormsession_notify' AND ns.nspname = current_schema()`).Scan(&n).Error
	if err != nil {
		return err
	}
	if n == 0 {
		if err := conn.Exec(notifyFunction).Error; err != nil {
			return err
		}
	}
	_, bare, found := strings.Cut(s.table, ".")
	if !found {
		bare = s.table
	}
	trigger := bare + "_notify"
	err = conn.Raw("SELECT count(*) FROM pg_trigger WHERE tgname = ? AND tgrelid = ?::regclass",
		trigger, s.quoted).Scan(&n).Error
	if err != nil || n > 0 {
		return err
	}
	return conn.Exec("CREATE TRIGGER ? AFTER INSERT OR UPDATE OR DELETE ON "+s.quoted+
		" FOR EACH STATEMENT EXECUTE FUNCTION gormsession_notify()", clause.Table{Name: trigger}).Error
}

// exec runs one of the Store's statements and returns the rows it changed.
func (s *Store) exec(ctx context.Context, query string, args ...any) (int64, error) {
	res := s.db.WithContext(ctx).Exec(query, args...)
	return res.RowsAffected, res.Error
}

// execPrepared runs the hot statement p, prepared, and reports it to the
// *gorm.DB's logger as GORM reports its own statements; or unprepared,
// through GORM.
func (s *Store) execPrepared(ctx context.Context, p *prepared, args ...any) (int64, error) {
	stmt, err := s.statement(ctx, p)
	if err != nil {
		return 0, err
	}
	if stmt == nil {
		return s.exec(ctx, p.sql, args...)
	}
	begin := time.Now()
	var n int64
	res, err := stmt.ExecContext(ctx, args...)
	if err == nil {
		n, err = res.RowsAffected()
	}
	s.db.Logger.Trace(ctx, begin, func() (string, int64) { return p.query, n }, err)
	return n, err
}

// nullTime is t for a nullable time column: NULL for the zero time.
func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC()
}

// Insert stores a new session at version 1 in one statement. An existing
// ID, live or tombstone, is an error.
func (s *Store) Insert(ctx context.Context, sess *Session) error {
	_, err := s.execPrepared(ctx, s.insert, sess.ID, sess.UserID, sess.TenantID, sess.Device, sess.Data,
		sess.CreatedAt.UTC(), sess.UpdatedAt.UTC(), nullTime(sess.ExpiresAt))
	if err != nil {
		return fmt.Errorf("gormsession: insert %s: %w", sess.ID, err)
	}
	sess.Version = 1
	return nil
}

// Update writes sess over the live row at version sess.Version in one
// statement, and advances the version. When no row matches it reads the
// row once to tell ErrNotFound from ErrConflict.
func (s *Store) Update(ctx context.Context, sess *Session) error {
	n, err := s.execPrepared(ctx, s.update, sess.TenantID, sess.Device, sess.Data, sess.UpdatedAt.UTC(),
		nullTime(sess.ExpiresAt), sess.ID, sess.Version)
	if err != nil {
		return fmt.Errorf("gormsession: update %s: %w", sess.ID, err)
	}
	if n == 1 {
		sess.Version++
		return nil
	}
	cur, found, err := s.Get(ctx, sess.ID)
	switch {
	case err != nil:
		return fmt.Errorf("gormsession: update %s: %w", sess.ID, err)
	case !found:
		return fmt.Errorf("gormsession: update %s: %w", sess.ID, ErrNotFound)
	default:
		return fmt.Errorf("gormsession: update %s at version %d (now %d): %w", sess.ID, sess.Version, cur.Version, ErrConflict)
	}
}

// Rotate tombstones the live, unexpired row oldID and inserts its
// successor newID, in one transaction. Of several concurrent rotations of
// one row, only the first to tombstone it inserts a successor.
func (s *Store) Rotate(ctx context.Context, oldID, newID string, at time.Time) (Session, error) {
	at = at.UTC()
	var next Session
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Exec(s.sql.rotateRevoke, at, at, oldID, at)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected != 1 {
			return ErrNotFound
		}
		rows, err := tx.Raw("SELECT "+selectColumns+" FROM "+s.quoted+" WHERE id = ?", oldID).Rows()
		if err != nil {
			return err
		}
		found := false
		err = scanRows(rows, "read rotated row", func(old *Session, _ bool) error {
			next, found = *old, true
			return nil
		})
		if err != nil {
			return err
		}
		if !found {
			return ErrNotFound
		}
		next.ID, next.UpdatedAt, next.Version = newID, at, 1
		if err := tx.Exec(s.sql.insert, next.ID, next.UserID, next.TenantID, next.Device, next.Data,
			next.CreatedAt, next.UpdatedAt, nullTime(next.ExpiresAt)).Error; err != nil {
			return err
		}
		return tx.Exec(s.sql.clearData, oldID).Error
	})
	if err != nil {
		return Session{}, fmt.Errorf("gormsession: rotate %s: %w", oldID, err)
	}
	return next, nil
}

// Remove revokes the session with id: its row becomes a tombstone until
// cleanup deletes it. A missing id is not an error.
func (s *Store) Revoke(ctx context.Context, id string) error {
	now := time.Now().UTC()
	if _, err := s.execPrepared(ctx, s.revoke, now, now, id); err != nil {
		return fmt.Errorf("gormsession: remove %s: %w", id, err)
	}
	return nil
}

// RemoveUser revokes the live sessions of userID created before
// createdBefore, except exceptID, and returns their IDs: in one statement
// with RETURNING where the dialect has it, else in a transaction that
// selects them for update first.
func (s *Store) RevokeUser(ctx context.Context, userID, exceptID string, createdBefore time.Time) ([]string, error) {
	now := time.Now().UTC()
	before := createdBefore.UTC()
	var ids []string
	var err error
	if s.dialect == "mysql" {
		err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			if err := tx.Raw(s.sql.removeUserSelect+" FOR UPDATE", userID, exceptID, before).Scan(&ids).Error; err != nil {
				return err
			}
			if len(ids) == 0 {
				return nil
			}
			return tx.Exec(s.sql.removeUser, now, now, userID, exceptID, before).Error
		})
	} else {
		err = s.db.WithContext(ctx).Raw(s.sql.removeUser+" RETURNING id", now, now, userID, exceptID, before).Scan(&ids).Error
	}
	if err != nil {
		return nil, fmt.Errorf("gormsession: remove sessions of user %q: %w", userID, err)
	}
	return ids, nil
}

// Get returns the live session with id; found is false when there is none.
func (s *Store) Get(ctx context.Context, id string) (Session, bool, error) {
	var (
		out   Session
		found bool
	)
	fn := func(sess *Session, _ bool) error {
		out, found = *sess, true
		return nil
	}
	stmt, err := s.statement(ctx, s.getByID)
	if err != nil {
		return Session{}, false, fmt.Errorf("gormsession: get %s: %w", id, err)
	}
	if stmt == nil {
		return out, found, s.query(ctx, "get "+id, s.getByID.sql, []any{id}, fn)
	}
	begin := time.Now()
	rows, err := stmt.QueryContext(ctx, id)
	s.db.Logger.Trace(ctx, begin, func() (string, int64) { return s.getByID.query, -1 }, err)
	if err != nil {
		return Session{}, false, fmt.Errorf("gormsession: get %s: %w", id, err)
	}
	return out, found, scanRows(rows, "get "+id, fn)
}

// RemoveExpired deletes every session that is expired at now, using the
// index on expires_at, and the tombstones older than TombstoneTTL, using
// the partial index on revoked_at. It returns how many expired sessions it
// deleted.
func (s *Store) RemoveExpired(ctx context.Context, now time.Time) (int64, error) {
	n, err := s.exec(ctx, "DELETE FROM "+s.quoted+" WHERE expires_at IS NOT NULL AND expires_at <= ?", now.UTC())
	if err != nil {
		return 0, fmt.Errorf("gormsession: remove expired: %w", err)
	}
	_, err = s.exec(ctx, s.sql.purgeTombstones, now.Add(-s.tombstoneTTL).UTC())
	if err != nil {
		return n, fmt.Errorf("gormsession: remove tombstones: %w", err)
	}
	return n, nil
}

// Touch moves updated_at forward to at for the live sessions in ids, in one
// statement. It does not advance their versions.
func (s *Store) Touch(ctx context.Context, ids []string, at time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	if _, err := s.exec(ctx, s.sql.touch, at.UTC(), ids, at.UTC()); err != nil {
		return fmt.Errorf("gormsession: touch %d sessions: %w", len(ids), err)
	}
	return nil
}

// Stream calls fn for every live signed-in session not expired at now,
// reading rows one at a time from a single query, so that memory holds one
// row beyond what fn keeps.
//
// Anonymous rows are left out by the query (user_id > ” can use the
// index on user_id), so loading does not depend on how many visitors came.
// Expired rows are skipped here rather than by the query: most rows are
// unexpired (cleanup deletes the others), and a filter on expires_at would
// lead SQLite to fetch every row through that index.
func (s *Store) Stream(ctx context.Context, now time.Time, fn func(*Session) error) error {
	return s.query(ctx, "load", s.sql.signedIn, nil, func(sess *Session, _ bool) error {
		if sess.Expired(now) {
			return nil
		}
		return fn(sess)
	})
}

// Changes calls fn for every session inserted, updated, touched or revoked
// at or after since (by updated_at, using its index), in that order;
// revoked is true for tombstones. Anonymous sessions exactly as inserted
// (version 1, updated_at still created_at) are left out, as ChangeFeed
// allows.
func (s *Store) Changes(ctx context.Context, since time.Time, fn func(s *Session, revoked bool) error) error {
	return s.query(ctx, "changes", s.sql.changes, []any{since.UTC()}, fn)
}

// query runs a SELECT of selectColumns and calls fn for each row.
func (s *Store) query(ctx context.Context, what, query string, args []any, fn func(*Session, bool) error) error {
	rows, err := s.db.WithContext(ctx).Raw(query, args...).Rows()
	if err != nil {
		return fmt.Errorf("gormsession: %s: %w", what, err)
	}
	return scanRows(rows, what, fn)
}

// scanRows calls fn for each row of selectColumns, reusing one Session,
// and closes rows. An error from fn is returned as it is.
func scanRows(rows *sql.Rows, what string, fn func(*Session, bool) error) error {
	defer rows.Close()
	var (
		sess             Session
		expires, revoked sql.NullTime
	)
	for rows.Next() {
		sess = Session{}
		if err := rows.Scan(&sess.ID, &sess.UserID, &sess.TenantID, &sess.Device, &sess.Data,
			&sess.CreatedAt, &sess.UpdatedAt, &expires, &revoked, &sess.Version); err != nil {
			return fmt.Errorf("gormsession: %s: scan: %w", what, err)
		}
		sess.CreatedAt = sess.CreatedAt.UTC()
		sess.UpdatedAt = sess.UpdatedAt.UTC()
		if expires.Valid {
			sess.ExpiresAt = expires.Time.UTC()
		}
		if err := fn(&sess, revoked.Valid); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("gormsession: %s: %w", what, err)
	}
	return nil
}
