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
//	updated_at  the change marker other instances poll; indexed
//	expires_at  indexed; NULL means the session never expires
//	revoked_at  NULL for a live session; set on a revoked session's
//	            tombstone, which cleanup deletes later; indexed
//	version     1 when inserted, advanced by every change; writes are
//	            conditional on it
//
// On SQLite and PostgreSQL the indexes on user_id and updated_at are
// partial: they leave out anonymous sessions, and (updated_at) those only
// until they first change, which no query by user or by change needs. So
// creating an anonymous session, as gorillastore does for every new
// visitor, writes the table, its primary key and the index on expires_at,
// and no more. The index on revoked_at holds tombstones only, so that
// cleanup finds them without reading the table, and no write but a
// revocation touches it. MySQL and MariaDB have no partial indexes: they
// index user_id and updated_at for every row, and have no index on
// revoked_at (cleanup reads the table). A table migrated by an earlier
// version gains the index on revoked_at and keeps its full indexes on
// user_id and updated_at; drop those two and Migrate creates the partial
// ones.
//
// Applications rarely use Model directly; it is exported so that the table
// can be inspected, or created with the application's own tooling (with
// StoreOptions.SkipMigrate). Store.Migrate does more than AutoMigrate of
// Model: the MySQL precision above, and on PostgreSQL the trigger that
// announces changes with NOTIFY (see package pgnotify).
type Model struct {
	ID        string     `gorm:"primaryKey;size:64"`
	UserID    string     `gorm:"size:191;not null;index:,where:user_id > ''"`
	TenantID  string     `gorm:"size:191;not null;default:''"`
	Device    string     `gorm:"size:191;not null;default:''"`
	Data      []byte     `gorm:""`
	CreatedAt time.Time  `gorm:"not null;autoCreateTime:false"`
	UpdatedAt time.Time  `gorm:"not null;autoUpdateTime:false;index:,where:user_id > '' OR version > 1 OR updated_at > created_at"`
	ExpiresAt *time.Time `gorm:"index"`
	RevokedAt *time.Time `gorm:"index:,where:revoked_at IS NOT NULL"`
	Version   int64      `gorm:"not null;default:1"`
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
	UpdatedAt time.Time  `gorm:"not null;autoUpdateTime:false;precision:6;index"`
	ExpiresAt *time.Time `gorm:"precision:6;index"`
	RevokedAt *time.Time `gorm:"precision:6"`
	Version   int64      `gorm:"not null;default:1"`
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
