package gormsession

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
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
	// TombstoneTTL is how long the tombstone of a revoked session is kept,
	// so that other instances reading the change feed see the revocation.
	// RemoveExpired deletes older tombstones. Default: 24 hours.
	TombstoneTTL time.Duration
}

const defaultTombstoneTTL = 24 * time.Hour

// Store is the GORM implementation of Backend. It implements every optional
// Backend interface. It is safe for concurrent use.
//
// Removing a session leaves a tombstone (the row with revoked_at set and
// its data cleared) for StoreOptions.TombstoneTTL, so that other instances
// on the same database learn of the revocation from the change feed. A
// tombstone is never loaded, returned by Get or brought back by Save.
type Store struct {
	db           *gorm.DB
	table        string
	dialect      string
	tombstoneTTL time.Duration
	upsert       clause.OnConflict
}

var (
	_ Backend        = (*Store)(nil)
	_ Getter         = (*Store)(nil)
	_ UserRemover    = (*Store)(nil)
	_ ExpiredRemover = (*Store)(nil)
	_ Streamer       = (*Store)(nil)
	_ Toucher        = (*Store)(nil)
	_ ChangeFeed     = (*Store)(nil)
)

// updatableColumns are the columns an upsert overwrites: all but id,
// created_at and revoked_at.
var updatableColumns = []string{"user_id", "tenant_id", "device", "data", "updated_at", "expires_at"}

// selectColumns are read, in this order, by scanSession.
const selectColumns = "id, user_id, tenant_id, device, data, created_at, updated_at, expires_at, revoked_at"

// NewStore returns a Store on db. Unless opts.SkipMigrate is set it runs
// Migrate, which is idempotent. db is used with its own driver and
// settings; NewStore never opens a connection of its own.
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
	if s.tombstoneTTL <= 0 {
		s.tombstoneTTL = defaultTombstoneTTL
	}
	s.upsert = s.upsertClause()
	if !opts.SkipMigrate {
		if err := s.Migrate(context.Background()); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// upsertClause is the ON CONFLICT clause of Save. It never overwrites a
// tombstone, so an update racing with a revocation cannot bring the session
// back.
func (s *Store) upsertClause() clause.OnConflict {
	c := clause.OnConflict{Columns: []clause.Column{{Name: "id"}}}
	if s.dialect == "mysql" {
		// ON DUPLICATE KEY UPDATE has no WHERE: guard each assignment.
		for _, col := range updatableColumns {
			c.DoUpdates = append(c.DoUpdates, clause.Assignment{
				Column: clause.Column{Name: col},
				Value:  gorm.Expr("IF(revoked_at IS NULL, VALUES(?), ?)", clause.Column{Name: col}, clause.Column{Name: col}),
			})
		}
		return c
	}
	c.DoUpdates = clause.AssignmentColumns(updatableColumns)
	c.Where = clause.Where{Exprs: []clause.Expression{
		clause.Expr{SQL: "?.revoked_at IS NULL", Vars: []any{clause.Table{Name: s.table}}},
	}}
	return c
}

// TableName returns the name of the table the Store uses.
func (s *Store) TableName() string { return s.table }

// Dialect returns the name of the GORM dialect of the Store's database
// ("sqlite", "postgres", "mysql", ...).
func (s *Store) Dialect() string { return s.dialect }

// migrationLockKey is the PostgreSQL advisory lock that serializes
// migrations of every Store, so that instances starting together do not
// race to create the same table, index or function.
var migrationLockKey = func() int64 {
	h := fnv.New64a()
	h.Write([]byte("gormsession migrate"))
	return int64(h.Sum64() >> 1)
}()

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
	var err error
	for attempt := range 5 {
		if err = s.tx(ctx).AutoMigrate(migrationModel(s.dialect)); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("gormsession: migrate %s: %w", s.table, ctx.Err())
		case <-time.After(time.Duration(attempt+1) * 100 * time.Millisecond):
		}
	}
	return fmt.Errorf("gormsession: migrate %s: %w", s.table, err)
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
	trigger := s.table + "_notify"
	err = conn.Raw("SELECT count(*) FROM pg_trigger WHERE tgname = ? AND tgrelid = ?::regclass",
		trigger, conn.Statement.Quote(s.table)).Scan(&n).Error
	if err != nil || n > 0 {
		return err
	}
	return conn.Exec("CREATE TRIGGER ? AFTER INSERT OR UPDATE OR DELETE ON ? FOR EACH STATEMENT EXECUTE FUNCTION gormsession_notify()",
		clause.Table{Name: trigger}, clause.Table{Name: s.table}).Error
}

// NotifyChannel returns the PostgreSQL NOTIFY channel on which the Store's
// trigger announces changes: the table name.
func (s *Store) NotifyChannel() string { return s.table }

// tx returns a statement builder on the Store's table.
func (s *Store) tx(ctx context.Context) *gorm.DB {
	return s.db.WithContext(ctx).Table(s.table)
}

// live returns a statement builder on the live (not revoked) rows.
func (s *Store) live(ctx context.Context) *gorm.DB {
	return s.tx(ctx).Where("revoked_at IS NULL")
}

// Save upserts sess in one statement (INSERT ... ON CONFLICT DO UPDATE, or
// the dialect's equivalent), without reading first and without a
// transaction. The stored created_at of an existing row is kept, and a
// revoked session's tombstone is left as it is.
func (s *Store) Save(ctx context.Context, sess *Session) error {
	row := toModel(sess)
	if err := s.tx(ctx).Clauses(s.upsert).Create(&row).Error; err != nil {
		return fmt.Errorf("gormsession: save %s: %w", sess.ID, err)
	}
	return nil
}

// tombstone marks the live rows matched by where as revoked, in one
// statement, and returns how many it marked.
func (s *Store) tombstone(ctx context.Context, query string, arg any) (int64, error) {
	now := time.Now().UTC()
	res := s.live(ctx).Where(query, arg).UpdateColumns(map[string]any{
		"revoked_at": now,
		"updated_at": now,
		"data":       nil,
	})
	return res.RowsAffected, res.Error
}

// Remove revokes the session with id: its row becomes a tombstone until
// cleanup deletes it. A missing id is not an error.
func (s *Store) Remove(ctx context.Context, id string) error {
	if _, err := s.tombstone(ctx, "id = ?", id); err != nil {
		return fmt.Errorf("gormsession: remove %s: %w", id, err)
	}
	return nil
}

// RemoveUser revokes every session of userID in one statement.
func (s *Store) RemoveUser(ctx context.Context, userID string) (int64, error) {
	n, err := s.tombstone(ctx, "user_id = ?", userID)
	if err != nil {
		return 0, fmt.Errorf("gormsession: remove sessions of user %q: %w", userID, err)
	}
	return n, nil
}

// LoadAll returns every live session, expired or not. A Manager uses Stream
// instead, which does not hold every row twice.
func (s *Store) LoadAll(ctx context.Context) ([]Session, error) {
	var rows []Model
	if err := s.live(ctx).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("gormsession: load all: %w", err)
	}
	out := make([]Session, len(rows))
	for i := range rows {
		out[i] = rows[i].session()
	}
	return out, nil
}

// Get returns the live session with id; found is false when there is none.
func (s *Store) Get(ctx context.Context, id string) (Session, bool, error) {
	var rows []Model
	if err := s.live(ctx).Where("id = ?", id).Limit(1).Find(&rows).Error; err != nil {
		return Session{}, false, fmt.Errorf("gormsession: get %s: %w", id, err)
	}
	if len(rows) == 0 {
		return Session{}, false, nil
	}
	return rows[0].session(), true, nil
}

// RemoveExpired deletes every session that is expired at now, using the
// index on expires_at, and the tombstones older than TombstoneTTL. It
// returns how many expired sessions it deleted.
func (s *Store) RemoveExpired(ctx context.Context, now time.Time) (int64, error) {
	res := s.tx(ctx).Where("expires_at IS NOT NULL AND expires_at <= ?", now.UTC()).Delete(&Model{})
	if res.Error != nil {
		return 0, fmt.Errorf("gormsession: remove expired: %w", res.Error)
	}
	err := s.tx(ctx).Where("revoked_at IS NOT NULL AND revoked_at <= ?", now.Add(-s.tombstoneTTL).UTC()).Delete(&Model{}).Error
	if err != nil {
		return res.RowsAffected, fmt.Errorf("gormsession: remove tombstones: %w", err)
	}
	return res.RowsAffected, nil
}

// Touch sets updated_at to at for the live sessions in ids, in one
// statement.
func (s *Store) Touch(ctx context.Context, ids []string, at time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	err := s.live(ctx).Where("id IN ?", ids).UpdateColumn("updated_at", at.UTC()).Error
	if err != nil {
		return fmt.Errorf("gormsession: touch %d sessions: %w", len(ids), err)
	}
	return nil
}

// Stream calls fn for every live session not expired at now, reading rows
// one at a time from a single query, so that memory holds one row beyond
// what fn keeps.
//
// The query reads the table in storage order and expired rows are skipped
// here: most rows are unexpired (cleanup deletes the others), and a filter on
// expires_at would lead SQLite to fetch every row through the index, which
// is several times slower than a sequential scan.
func (s *Store) Stream(ctx context.Context, now time.Time, fn func(*Session) error) error {
	return s.scan(s.live(ctx), "load", func(sess *Session, _ bool) error {
		if sess.Expired(now) {
			return nil
		}
		return fn(sess)
	})
}

// Changes calls fn for every session saved, touched or revoked at or after
// since (by updated_at, using its index), in that order; revoked is true
// for tombstones.
func (s *Store) Changes(ctx context.Context, since time.Time, fn func(s *Session, revoked bool) error) error {
	return s.scan(s.tx(ctx).Where("updated_at >= ?", since.UTC()).Order("updated_at"), "changes", fn)
}

// scan runs q and calls fn for each row, reusing one Session.
func (s *Store) scan(q *gorm.DB, what string, fn func(*Session, bool) error) error {
	rows, err := q.Select(selectColumns).Rows()
	if err != nil {
		return fmt.Errorf("gormsession: %s: %w", what, err)
	}
	defer rows.Close()
	var (
		sess             Session
		expires, revoked sql.NullTime
	)
	for rows.Next() {
		sess = Session{}
		if err := rows.Scan(&sess.ID, &sess.UserID, &sess.TenantID, &sess.Device, &sess.Data,
			&sess.CreatedAt, &sess.UpdatedAt, &expires, &revoked); err != nil {
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
