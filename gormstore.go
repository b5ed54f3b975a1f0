package gormsession

import (
	"cmp"
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
	// statements of the hot paths (create, update, revoke, get by ID, the
	// change feed's poll) are
	// prepared once on the *sql.DB under the *gorm.DB, and Close releases
	// them. Set it behind a pooler that cannot keep prepared statements
	// across transactions, such as PgBouncer in transaction mode (there,
	// also give pgx default_query_exec_mode=exec or simple_protocol in the
	// DSN, since pgx caches statements of its own). Default: false.
	NoPreparedStatements bool
	// TombstoneTTL is how long the tombstone of a revoked session is kept,
	// so that other instances reading the change feed see the revocation.
	// RemoveExpired deletes older tombstones, by the database's clock. A
	// Manager that could not read the change feed for half of it reloads
	// every session on its next successful read, and NewManager refuses a
	// SyncInterval too long for it (see ManagerOptions.SyncInterval).
	// A tombstone ages from its statement's start, which on PostgreSQL and
	// MySQL comes before any wait for a row lock: keep the TTL well above
	// the longest a transaction may hold a session's row, or a revocation
	// whose commit waited that long may be deleted before other instances
	// read it. Default: 24 hours; less than one second is refused.
	TombstoneTTL time.Duration
}

const (
	defaultTombstoneTTL = 24 * time.Hour
	minTombstoneTTL     = time.Second
)

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
	expr         dialectSQL // the dialect's clock and feed expressions
	sql          statements

	// The hot statements, prepared on sqlDB; nil sqlDB: run through GORM.
	sqlDB                                                     *sql.DB
	insert, insertAnonymous, update, revoke, getByID, changes *prepared
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

// statements are the SQL texts of the Store's statements, built once by
// NewStore. GORM binds the ? placeholders in the dialect's own style.
type statements struct {
	insert, insertAnonymous, update, revoke, revokeUser, revokeUserBefore string
	revokeUserSelect, revokeUserSelectBefore, touch                       string
	rotateRevoke, clearData, purgeTombstones, purgeExpired, get, signedIn string
	head, changes                                                         string
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
	switch {
	case s.tombstoneTTL <= 0:
		s.tombstoneTTL = defaultTombstoneTTL
	case s.tombstoneTTL < minTombstoneTTL:
		return nil, fmt.Errorf("gormsession: NewStore: TombstoneTTL %v is below %v: revocations would leave the change feed before other instances could read them", opts.TombstoneTTL, minTombstoneTTL)
	}
	var b strings.Builder
	db.Dialector.QuoteTo(&b, s.table)
	s.quoted = b.String()
	s.expr = dialectOf(s.dialect, s.quoted)
	s.sql = buildStatements(s.quoted, s.expr, s.tombstoneTTL)
	if sqlDB, err := db.DB(); err == nil && !opts.NoPreparedStatements {
		s.sqlDB = sqlDB
	}
	s.insert, s.insertAnonymous = s.prepare(s.sql.insert), s.prepare(s.sql.insertAnonymous)
	s.update, s.revoke, s.getByID = s.prepare(s.sql.update), s.prepare(s.sql.revoke), s.prepare(s.sql.get)
	s.changes = s.prepare(s.sql.changes)
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
	for _, p := range []*prepared{s.insert, s.insertAnonymous, s.update, s.revoke, s.getByID, s.changes} {
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

// dialectSQL are the SQL expressions in which the dialects differ: the
// database's clock and the change feed's order.
type dialectSQL struct {
	// now is the database's clock as a value of a time column, in the
	// format the driver writes times in, so that the two compare.
	now string
	// nowMicros is the database's clock in unix microseconds.
	nowMicros string
	// ago returns now moved back by d.
	ago func(d time.Duration) string
	// seq is the change feed's order of a change, inside its statement.
	seq string
	// cursor is where a read of the feed continues from ("" when the Store
	// computes it from the clock, see feedWindow); after is the comparison
	// of seq with the cursor a read was given.
	cursor, after string
	// keepNewest is a condition a DELETE adds so that it never deletes the
	// row with the highest seq, which the next change's seq is counted
	// from ("" when seq is not counted from the table).
	keepNewest string
}

// feedWindow is how far back, on MySQL and MariaDB, a read of the change
// feed reaches before the database's clock at the previous read. Those
// databases offer no cheap snapshot horizon, so their feed is a window of
// the database's clock: a change whose commit lands more than feedWindow
// after its statement began is not in the feed, and is caught by the
// Manager's periodic resync instead (FeedPosition.Ordered is false).
const feedWindow = 5 * time.Second

// dialectOf returns the expressions of dialect, for table t (quoted).
func dialectOf(dialect, t string) dialectSQL {
	switch dialect {
	case "postgres":
		return dialectSQL{
			// The statement's start, not clock_timestamp(): a stable
			// value, which an index can be searched by.
			now:       "statement_timestamp()",
			nowMicros: "(extract(epoch FROM clock_timestamp()) * 1000000)::bigint",
			ago: func(d time.Duration) string {
				return fmt.Sprintf("statement_timestamp() - interval '%d microseconds'", d.Microseconds())
			},
			// The writing transaction's ID: a transaction that has not
			// committed is at or after the horizon of every snapshot that
			// does not see it, so a read from that horizon cannot miss it.
			seq:    "pg_current_xact_id()::text::bigint",
			cursor: "pg_snapshot_xmin(pg_current_snapshot())::text::bigint",
			after:  ">=",
		}
	case "mysql":
		return dialectSQL{
			now:       "UTC_TIMESTAMP(6)",
			nowMicros: "CAST(UNIX_TIMESTAMP(NOW(6)) * 1000000 AS SIGNED)",
			ago: func(d time.Duration) string {
				return fmt.Sprintf("UTC_TIMESTAMP(6) - INTERVAL %d MICROSECOND", d.Microseconds())
			},
			seq:   "CAST(UNIX_TIMESTAMP(NOW(6)) * 1000000 AS SIGNED)",
			after: ">=",
		}
	default: // sqlite
		// The text the SQLite driver writes a UTC time as, to the
		// millisecond: it compares with the stored times as text.
		const format = "'%Y-%m-%d %H:%M:%f+00:00'"
		maxSeq := "(SELECT coalesce(max(seq), 0) FROM " + t + " WHERE seq > 0)"
		return dialectSQL{
			now:       "strftime(" + format + ", 'now')",
			nowMicros: "CAST(unixepoch('subsec') * 1000000 AS INTEGER)",
			ago: func(d time.Duration) string {
				return fmt.Sprintf("strftime(%s, 'now', '-%.6f seconds')", format, d.Seconds())
			},
			// Writers are serialized, from their first write to their
			// commit: one more than the highest seq follows commit order.
			seq:        "(SELECT coalesce(max(seq), 0) + 1 FROM " + t + " WHERE seq > 0)",
			cursor:     maxSeq,
			after:      ">",
			keepNewest: " AND (seq = 0 OR seq < " + maxSeq + ")",
		}
	}
}

// buildStatements returns the SQL of the Store's statements on table t
// (quoted) in dialect d, with tombstones kept for ttl.
func buildStatements(t string, d dialectSQL, ttl time.Duration) statements {
	tombstone := "revoked_at = " + d.now + ", updated_at = " + d.now + ", data = NULL, version = version + 1, seq = " + d.seq
	// user_id > '' lets the partial index on user_id serve (see Model).
	const ofUser = " WHERE user_id = ? AND user_id > '' AND id <> ? AND revoked_at IS NULL"
	const before = " AND created_at < ?"
	columns := "t." + strings.ReplaceAll(selectColumns, ", ", ", t.")
	insert := "INSERT INTO " + t + " (id, user_id, tenant_id, device, data, created_at, updated_at, expires_at, version, seq)" +
		" VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, "
	return statements{
		insert: insert + d.seq + ")",
		// An anonymous session exactly as inserted is not in the feed (see
		// ChangeFeed) nor in the index on seq.
		insertAnonymous: insert + "0)",
		update: "UPDATE " + t + " SET tenant_id = ?, device = ?, data = ?, updated_at = ?, expires_at = ?, version = version + 1, seq = " + d.seq +
			" WHERE id = ? AND version = ? AND revoked_at IS NULL",
		revoke:                 "UPDATE " + t + " SET " + tombstone + " WHERE id = ? AND revoked_at IS NULL",
		revokeUser:             "UPDATE " + t + " SET " + tombstone + ofUser,
		revokeUserBefore:       "UPDATE " + t + " SET " + tombstone + ofUser + before,
		revokeUserSelect:       "SELECT id FROM " + t + ofUser,
		revokeUserSelectBefore: "SELECT id FROM " + t + ofUser + before,
		touch:                  "UPDATE " + t + " SET updated_at = ?, seq = " + d.seq + " WHERE id IN ? AND updated_at < ? AND revoked_at IS NULL",
		rotateRevoke: "UPDATE " + t + " SET revoked_at = " + d.now + ", updated_at = ?, version = version + 1, seq = " + d.seq +
			" WHERE id = ? AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)",
		clearData: "UPDATE " + t + " SET data = NULL WHERE id = ?",
		// Served by the partial index on revoked_at (see Model).
		purgeTombstones: "DELETE FROM " + t + " WHERE revoked_at IS NOT NULL AND revoked_at <= " + d.ago(ttl) + d.keepNewest,
		purgeExpired:    "DELETE FROM " + t + " WHERE expires_at IS NOT NULL AND expires_at <= " + d.now + d.keepNewest,
		get:             "SELECT " + selectColumns + " FROM " + t + " WHERE id = ? AND revoked_at IS NULL",
		signedIn:        "SELECT " + selectColumns + " FROM " + t + " WHERE revoked_at IS NULL AND user_id > ''",
		head:            "SELECT " + cmp.Or(d.cursor, "0") + ", " + d.nowMicros,
		// One statement, so one snapshot: the cursor and the clock are
		// those of the read that returned the rows. seq > 0 is the partial
		// index's condition (see Model). No order: a row per session, each
		// applied by its version.
		changes: "SELECT h.feed_cursor, h.now_us, " + columns + " FROM (SELECT " + cmp.Or(d.cursor, "0") + " AS feed_cursor, " +
			d.nowMicros + " AS now_us) h LEFT JOIN " + t + " t ON t.seq " + d.after + " ? AND t.seq > 0",
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
			if err := s.installSeqTriggers(conn); err != nil {
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
		if err == nil && s.dialect == "sqlite" {
			err = s.installSeqTriggers(s.db.WithContext(ctx))
		}
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

// seqFunction is the PostgreSQL trigger function that gives a change
// written without a seq (by an earlier version of this package) its place
// in the change feed.
const seqFunction = `CREATE OR REPLACE FUNCTION gormsession_seq() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	NEW.seq := pg_current_xact_id()::text::bigint;
	RETURN NEW;
END
$$`

// seqTrigger is one of the triggers that give a change written without a
// seq its place in the change feed (see installSeqTriggers).
type seqTrigger struct{ name, create string }

// seqTriggers returns the table's seq triggers on SQLite and PostgreSQL
// (none on other dialects): an insert of a signed-in session with seq 0,
// an update that leaves seq as it was.
func (s *Store) seqTriggers() []seqTrigger {
	if s.dialect != "postgres" && s.dialect != "sqlite" {
		return nil
	}
	_, bare, found := strings.Cut(s.table, ".")
	if !found {
		bare = s.table
	}
	var out []seqTrigger
	for _, tr := range []struct{ suffix, when, event string }{
		{"_seq_insert", "NEW.seq = 0 AND NEW.user_id > ''", "INSERT"},
		{"_seq_update", "NEW.seq = OLD.seq", "UPDATE"},
	} {
		var b strings.Builder
		s.db.Dialector.QuoteTo(&b, bare+tr.suffix)
		create := "CREATE TRIGGER " + b.String() + " AFTER " + tr.event + " ON " + s.quoted +
			" FOR EACH ROW WHEN " + tr.when + " BEGIN UPDATE " + s.quoted + " SET seq = " + s.expr.seq + " WHERE id = NEW.id; END"
		if s.dialect == "postgres" {
			create = "CREATE TRIGGER " + b.String() + " BEFORE " + tr.event + " ON " + s.quoted +
				" FOR EACH ROW WHEN (" + tr.when + ") EXECUTE FUNCTION gormsession_seq()"
		}
		out = append(out, seqTrigger{name: bare + tr.suffix, create: create})
	}
	return out
}

// hasTrigger reports whether the table has the trigger name.
func (s *Store) hasTrigger(conn *gorm.DB, name string) (bool, error) {
	var n int64
	var err error
	if s.dialect == "postgres" {
		err = conn.Raw("SELECT count(*) FROM pg_trigger WHERE tgname = ? AND tgrelid = ?::regclass", name, s.quoted).Scan(&n).Error
	} else {
		err = conn.Raw("SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name = ?", name).Scan(&n).Error
	}
	return n > 0, err
}

// installSeqTriggers adds the seq triggers (see seqTriggers) the table
// lacks. This version's statements always write seq, so the triggers'
// conditions are false for them and no trigger body runs; they are there
// for instances of an earlier version, which may run beside this one
// during a rolling deploy and would otherwise write changes no new
// instance reads. On MySQL and MariaDB, which have none, the periodic
// resync catches such changes. conn holds the migration lock on
// PostgreSQL.
func (s *Store) installSeqTriggers(conn *gorm.DB) error {
	for _, tr := range s.seqTriggers() {
		has, err := s.hasTrigger(conn, tr.name)
		if err != nil || has {
			if err != nil {
				return err
			}
			continue
		}
		if s.dialect == "postgres" {
			if err := conn.Exec(seqFunction).Error; err != nil {
				return err
			}
		}
		if err := conn.Exec(tr.create).Error; err != nil {
			return err
		}
	}
	return nil
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
	p := s.insert
	if sess.UserID == "" {
		p = s.insertAnonymous
	}
	_, err := s.execPrepared(ctx, p, sess.ID, sess.UserID, sess.TenantID, sess.Device, sess.Data,
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
		res := tx.Exec(s.sql.rotateRevoke, at, oldID, at)
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

// Revoke revokes the session with id: its row becomes a tombstone, stamped
// with the database's clock, until cleanup deletes it. A missing id is not
// an error.
func (s *Store) Revoke(ctx context.Context, id string) error {
	_, err := s.RevokeSession(ctx, id)
	return err
}

// RevokeSession revokes the session with id as Revoke does, and reports
// whether this call ended it: false when there is no such session or it
// was revoked already, by this process or another. Of concurrent calls on
// one session, exactly one reports true (the write is conditional on the
// row being live).
func (s *Store) RevokeSession(ctx context.Context, id string) (revoked bool, err error) {
	n, err := s.execPrepared(ctx, s.revoke, id)
	if err != nil {
		return false, fmt.Errorf("gormsession: revoke %s: %w", id, err)
	}
	return n > 0, nil
}

// RevokeUser revokes the live sessions of userID, except exceptID, and
// returns their IDs: in one statement with RETURNING where the dialect has
// it, else in a transaction that selects them for update first. With a
// zero createdBefore the statement takes every such session it sees;
// otherwise only those created before createdBefore.
func (s *Store) RevokeUser(ctx context.Context, userID, exceptID string, createdBefore time.Time) ([]string, error) {
	update, sel := s.sql.revokeUser, s.sql.revokeUserSelect
	args := []any{userID, exceptID}
	if !createdBefore.IsZero() {
		update, sel = s.sql.revokeUserBefore, s.sql.revokeUserSelectBefore
		args = append(args, createdBefore.UTC())
	}
	var ids []string
	var err error
	if s.dialect == "mysql" {
		err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			if err := tx.Raw(sel+" FOR UPDATE", args...).Scan(&ids).Error; err != nil {
				return err
			}
			if len(ids) == 0 {
				return nil
			}
			return tx.Exec(update, args...).Error
		})
	} else {
		err = s.db.WithContext(ctx).Raw(update+" RETURNING id", args...).Scan(&ids).Error
	}
	if err != nil {
		return nil, fmt.Errorf("gormsession: revoke sessions of user %q: %w", userID, err)
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
	rows, err := s.queryPrepared(ctx, s.getByID, id)
	if err != nil {
		return Session{}, false, fmt.Errorf("gormsession: get %s: %w", id, err)
	}
	return out, found, scanRows(rows, "get "+id, fn)
}

// queryPrepared runs the hot query p, prepared, and reports it to the
// *gorm.DB's logger as GORM reports its own statements; or unprepared,
// through GORM.
func (s *Store) queryPrepared(ctx context.Context, p *prepared, args ...any) (*sql.Rows, error) {
	stmt, err := s.statement(ctx, p)
	if err != nil {
		return nil, err
	}
	if stmt == nil {
		return s.db.WithContext(ctx).Raw(p.sql, args...).Rows()
	}
	begin := time.Now()
	rows, err := stmt.QueryContext(ctx, args...)
	s.db.Logger.Trace(ctx, begin, func() (string, int64) { return p.query, -1 }, err)
	return rows, err
}

// RemoveExpired deletes every session that is expired by the database's
// clock, using the index on expires_at, and the tombstones older than
// TombstoneTTL by that clock, using the partial index on revoked_at. It
// returns how many expired sessions it deleted. On SQLite the row that
// holds the highest seq is kept until a later change: the next change's
// seq is counted from it.
func (s *Store) RemoveExpired(ctx context.Context) (int64, error) {
	n, err := s.exec(ctx, s.sql.purgeExpired)
	if err != nil {
		return 0, fmt.Errorf("gormsession: remove expired: %w", err)
	}
	if _, err = s.exec(ctx, s.sql.purgeTombstones); err != nil {
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

// Head returns the position of the change feed now, and the database's
// clock.
func (s *Store) Head(ctx context.Context) (FeedPosition, error) {
	var cursor, nowMicros int64
	if err := s.db.WithContext(ctx).Raw(s.sql.head).Row().Scan(&cursor, &nowMicros); err != nil {
		return FeedPosition{}, fmt.Errorf("gormsession: read the change feed's head: %w", err)
	}
	return s.position(cursor, nowMicros), nil
}

// position is the FeedPosition of a read that saw cursor and the
// database's clock at nowMicros.
func (s *Store) position(cursor, nowMicros int64) FeedPosition {
	pos := FeedPosition{Cursor: cursor, Now: time.UnixMicro(nowMicros).UTC(), Ordered: s.dialect != "mysql"}
	if !pos.Ordered {
		pos.Cursor = nowMicros - feedWindow.Microseconds()
	}
	return pos
}

// Changes calls fn for every session changed after the read that returned
// cursor (by the seq column, see Model), and returns the position to
// continue from; revoked is true for tombstones. It is one
// statement: the rows, the next cursor and the database's clock come from
// one snapshot. Anonymous sessions exactly as inserted are left out, as
// ChangeFeed allows.
func (s *Store) Changes(ctx context.Context, cursor int64, fn func(s *Session, revoked bool) error) (FeedPosition, error) {
	rows, err := s.queryPrepared(ctx, s.changes, cursor)
	if err != nil {
		return FeedPosition{}, fmt.Errorf("gormsession: changes: %w", err)
	}
	defer rows.Close()
	var (
		next, nowMicros                    int64
		id, user, tenant, device           sql.NullString
		data                               []byte
		created, updated, expires, revoked sql.NullTime
		version                            sql.NullInt64
		sess                               Session
	)
	for rows.Next() {
		if err := rows.Scan(&next, &nowMicros, &id, &user, &tenant, &device, &data,
			&created, &updated, &expires, &revoked, &version); err != nil {
			return FeedPosition{}, fmt.Errorf("gormsession: changes: scan: %w", err)
		}
		if !id.Valid {
			continue // no changes: the row of the cursor alone
		}
		sess = Session{ID: id.String, UserID: user.String, TenantID: tenant.String, Device: device.String,
			Data: data, CreatedAt: created.Time.UTC(), UpdatedAt: updated.Time.UTC(), Version: version.Int64}
		if expires.Valid {
			sess.ExpiresAt = expires.Time.UTC()
		}
		if err := fn(&sess, revoked.Valid); err != nil {
			return FeedPosition{}, err
		}
	}
	if err := rows.Err(); err != nil {
		return FeedPosition{}, fmt.Errorf("gormsession: changes: %w", err)
	}
	return s.position(next, nowMicros), nil
}

// TombstoneTTL returns how long a tombstone stays in the change feed, by
// the database's clock: StoreOptions.TombstoneTTL.
func (s *Store) TombstoneTTL() time.Duration { return s.tombstoneTTL }

// Now returns the database's clock.
func (s *Store) Now(ctx context.Context) (time.Time, error) {
	pos, err := s.Head(ctx)
	return pos.Now, err
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
