package gormsession

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// StoreOptions configures a Store. The zero value is ready to use.
type StoreOptions struct {
	// TableName is the sessions table. Default: DefaultTableName
	// ("gormsession_sessions").
	TableName string
	// SkipMigrate stops NewStore from running AutoMigrate. Default: false,
	// NewStore creates the table, or adds the columns and indexes an older
	// table lacks.
	SkipMigrate bool
}

// Store is the GORM implementation of Backend. It implements every optional
// Backend interface. It is safe for concurrent use.
type Store struct {
	db    *gorm.DB
	table string
}

var (
	_ Backend        = (*Store)(nil)
	_ Getter         = (*Store)(nil)
	_ UserRemover    = (*Store)(nil)
	_ ExpiredRemover = (*Store)(nil)
	_ Streamer       = (*Store)(nil)
	_ Toucher        = (*Store)(nil)
)

// updatableColumns are the columns an upsert overwrites: all but id and
// created_at.
var updatableColumns = []string{"user_id", "tenant_id", "device", "data", "updated_at", "expires_at"}

// selectColumns are read, in this order, by Stream.
const selectColumns = "id, user_id, tenant_id, device, data, created_at, updated_at, expires_at"

// NewStore returns a Store on db. Unless opts.SkipMigrate is set it runs
// AutoMigrate, which is idempotent. db is used with its own driver and
// settings; NewStore never opens a connection of its own.
func NewStore(db *gorm.DB, opts StoreOptions) (*Store, error) {
	if db == nil {
		return nil, errors.New("gormsession: NewStore: nil *gorm.DB")
	}
	table := opts.TableName
	if table == "" {
		table = DefaultTableName
	}
	s := &Store{
		db:    db.Session(&gorm.Session{SkipDefaultTransaction: true, NewDB: true}),
		table: table,
	}
	if !opts.SkipMigrate {
		if err := s.Migrate(context.Background()); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// TableName returns the name of the table the Store uses.
func (s *Store) TableName() string { return s.table }

// Migrate creates the table, or adds the columns and indexes that an older
// table lacks. Existing rows are kept. It is safe to run more than once.
func (s *Store) Migrate(ctx context.Context) error {
	if err := s.tx(ctx).AutoMigrate(&Model{}); err != nil {
		return fmt.Errorf("gormsession: migrate %s: %w", s.table, err)
	}
	return nil
}

// tx returns a statement builder on the Store's table.
func (s *Store) tx(ctx context.Context) *gorm.DB {
	return s.db.WithContext(ctx).Table(s.table)
}

// Save upserts sess in one statement (INSERT ... ON CONFLICT DO UPDATE, or
// the dialect's equivalent), without reading first and without a
// transaction. The stored created_at of an existing row is kept.
func (s *Store) Save(ctx context.Context, sess *Session) error {
	row := toModel(sess)
	err := s.tx(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "id"}},
		DoUpdates: clause.AssignmentColumns(updatableColumns),
	}).Create(&row).Error
	if err != nil {
		return fmt.Errorf("gormsession: save %s: %w", sess.ID, err)
	}
	return nil
}

// Remove deletes the session with id. A missing id is not an error.
func (s *Store) Remove(ctx context.Context, id string) error {
	if err := s.tx(ctx).Where("id = ?", id).Delete(&Model{}).Error; err != nil {
		return fmt.Errorf("gormsession: remove %s: %w", id, err)
	}
	return nil
}

// LoadAll returns every stored session, expired or not. A Manager uses
// Stream instead, which does not hold every row twice.
func (s *Store) LoadAll(ctx context.Context) ([]Session, error) {
	var rows []Model
	if err := s.tx(ctx).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("gormsession: load all: %w", err)
	}
	out := make([]Session, len(rows))
	for i := range rows {
		out[i] = rows[i].session()
	}
	return out, nil
}

// Get returns the session with id; found is false when there is none.
func (s *Store) Get(ctx context.Context, id string) (Session, bool, error) {
	var rows []Model
	if err := s.tx(ctx).Where("id = ?", id).Limit(1).Find(&rows).Error; err != nil {
		return Session{}, false, fmt.Errorf("gormsession: get %s: %w", id, err)
	}
	if len(rows) == 0 {
		return Session{}, false, nil
	}
	return rows[0].session(), true, nil
}

// RemoveUser deletes every session of userID in one statement.
func (s *Store) RemoveUser(ctx context.Context, userID string) (int64, error) {
	res := s.tx(ctx).Where("user_id = ?", userID).Delete(&Model{})
	if res.Error != nil {
		return 0, fmt.Errorf("gormsession: remove sessions of user %q: %w", userID, res.Error)
	}
	return res.RowsAffected, nil
}

// RemoveExpired deletes every session that is expired at now, using the
// index on expires_at.
func (s *Store) RemoveExpired(ctx context.Context, now time.Time) (int64, error) {
	res := s.tx(ctx).Where("expires_at IS NOT NULL AND expires_at <= ?", now.UTC()).Delete(&Model{})
	if res.Error != nil {
		return 0, fmt.Errorf("gormsession: remove expired: %w", res.Error)
	}
	return res.RowsAffected, nil
}

// Touch sets updated_at to at for the sessions in ids, in one statement.
func (s *Store) Touch(ctx context.Context, ids []string, at time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	err := s.tx(ctx).Where("id IN ?", ids).UpdateColumn("updated_at", at.UTC()).Error
	if err != nil {
		return fmt.Errorf("gormsession: touch %d sessions: %w", len(ids), err)
	}
	return nil
}

// Stream calls fn for every session not expired at now, reading rows one at
// a time from a single query, so that memory holds one row beyond what fn
// keeps.
//
// The query reads the table in storage order and expired rows are skipped
// here: most rows are unexpired (cleanup deletes the others), and a filter on
// expires_at would lead SQLite to fetch every row through the index, which
// is several times slower than a sequential scan.
func (s *Store) Stream(ctx context.Context, now time.Time, fn func(*Session) error) error {
	rows, err := s.tx(ctx).Select(selectColumns).Rows()
	if err != nil {
		return fmt.Errorf("gormsession: load: %w", err)
	}
	defer rows.Close()
	var (
		sess    Session
		expires sql.NullTime
	)
	for rows.Next() {
		sess = Session{}
		if err := rows.Scan(&sess.ID, &sess.UserID, &sess.TenantID, &sess.Device, &sess.Data,
			&sess.CreatedAt, &sess.UpdatedAt, &expires); err != nil {
			return fmt.Errorf("gormsession: load: scan: %w", err)
		}
		sess.CreatedAt = sess.CreatedAt.UTC()
		sess.UpdatedAt = sess.UpdatedAt.UTC()
		if expires.Valid {
			sess.ExpiresAt = expires.Time.UTC()
		}
		if sess.Expired(now) {
			continue
		}
		if err := fn(&sess); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("gormsession: load: %w", err)
	}
	return nil
}
