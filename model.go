package gormsession

import (
	"time"
)

// DefaultTableName is the table a Store uses when StoreOptions.TableName is
// empty.
const DefaultTableName = "gormsession_sessions"

// Model is the GORM model of the sessions table. The same columns, with the
// same meaning, are created on every dialect (on MySQL and MariaDB the
// times get microsecond precision, which their DATETIME lacks by default):
//
//	id          primary key, hex SHA-256 of the token (64 characters)
//	user_id     '' for an anonymous session; indexed (see below)
//	tenant_id   '' when unused
//	device      '' when unknown
//	data        opaque bytes (blob / bytea)
//	created_at  never changed after the first save
//	updated_at  when the session last changed or was last active
//	expires_at  indexed; NULL means the session never expires
//	revoked_at  NULL for a live session; set, by the database's clock, on
//	            a revoked session's tombstone, which cleanup deletes
//	            later; indexed
//	version     1 when inserted, advanced by every change; writes are
//	            conditional on it
//	seq         the change feed's order, written by every change inside
//	            its statement: on SQLite one more than the highest (writers
//	            are serialized, so it follows commit order), on PostgreSQL
//	            the writing transaction's ID (read against the snapshot
//	            horizon, so a transaction that has not committed holds the
//	            feed back rather than slipping behind it), on MySQL and
//	            MariaDB the database's clock in microseconds; 0 for an
//	            anonymous session exactly as inserted; indexed
//
// On SQLite and PostgreSQL the indexes on user_id and seq are partial:
// they leave out anonymous sessions, and (seq) those only until they first
// change, which no query by user or by change needs. So creating an
// anonymous session, as gorillastore does for every new visitor, writes
// the table, its primary key and the index on expires_at, and no more. The
// index on revoked_at holds tombstones only, so that cleanup finds them
// without reading the table, and no write but a revocation touches it.
// MySQL and MariaDB have no partial indexes: they index user_id and seq for
// every row, and have no index on revoked_at (cleanup reads the table).
//
// Migrate upgrades a table of an earlier version in place: it adds seq and
// its index and, on SQLite and PostgreSQL, the triggers that give a change
// written by an earlier version a place in the feed, so that both versions
// can run side by side during a rolling deploy. It keeps the index on
// updated_at that the earlier change feed read, which instances of that
// version still poll by; once none runs, drop it (idx_<table>_updated_at)
// to save its cost on every write.
//
// Applications rarely use Model directly; it is exported so that the table
// can be inspected, or created with the application's own tooling (with
// StoreOptions.SkipMigrate). Store.Migrate does more than AutoMigrate of
// Model: the MySQL precision above, the triggers, and on PostgreSQL the
// trigger that announces changes with NOTIFY (see package pgnotify).
type Model struct {
	ID        string     `gorm:"primaryKey;size:64"`
	UserID    string     `gorm:"size:191;not null;index:,where:user_id > ''"`
	TenantID  string     `gorm:"size:191;not null;default:''"`
	Device    string     `gorm:"size:191;not null;default:''"`
	Data      []byte     `gorm:""`
	CreatedAt time.Time  `gorm:"not null;autoCreateTime:false"`
	UpdatedAt time.Time  `gorm:"not null;autoUpdateTime:false"`
	ExpiresAt *time.Time `gorm:"index"`
	RevokedAt *time.Time `gorm:"index:,where:revoked_at IS NOT NULL"`
	Version   int64      `gorm:"not null;default:1"`
	Seq       int64      `gorm:"not null;default:0;index:,where:seq > 0"`
}

// mysqlModel is Model with the microsecond precision that MySQL's DATETIME
// lacks by default (PostgreSQL and SQLite keep it as they are, and GORM
// would alter their columns on every start if asked for it explicitly).
type mysqlModel struct {
	ID        string     `gorm:"primaryKey;size:64"`
	UserID    string     `gorm:"size:191;not null;index"`
	TenantID  string     `gorm:"size:191;not null;default:''"`
	Device    string     `gorm:"size:191;not null;default:''"`
	Data      []byte     `gorm:"type:longblob"`
	CreatedAt time.Time  `gorm:"not null;autoCreateTime:false;precision:6"`
	UpdatedAt time.Time  `gorm:"not null;autoUpdateTime:false;precision:6"`
	ExpiresAt *time.Time `gorm:"precision:6;index"`
	RevokedAt *time.Time `gorm:"precision:6"`
	Version   int64      `gorm:"not null;default:1"`
	Seq       int64      `gorm:"not null;default:0;index"`
}

// TableName returns DefaultTableName, as Model does.
func (mysqlModel) TableName() string { return DefaultTableName }

// migrationModel returns the model AutoMigrate uses on the dialect.
func migrationModel(dialect string) any {
	if dialect == "mysql" {
		return &mysqlModel{}
	}
	return &Model{}
}

// TableName returns DefaultTableName. A Store with another
// StoreOptions.TableName overrides it per statement.
func (Model) TableName() string { return DefaultTableName }
