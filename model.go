package gormsession

import (
	"time"
)

// DefaultTableName is the table a Store uses when StoreOptions.TableName is
// empty.
const DefaultTableName = "gormsession_sessions"

// Model is the GORM model of the sessions table. The same columns, with the
// same meaning, are created on every dialect:
//
//	id          primary key, hex SHA-256 of the token (64 characters)
//	user_id     indexed
//	tenant_id   '' when unused
//	device      '' when unknown
//	data        opaque bytes (blob / bytea)
//	created_at  never changed after the first save
//	updated_at  indexed; the change marker other instances poll
//	expires_at  indexed; NULL means the session never expires
//	revoked_at  NULL for a live session; set on a revoked session's
//	            tombstone, which cleanup deletes later
//
// Applications rarely use Model directly; it is exported so that migrations
// can be run or inspected with the application's own tooling.
type Model struct {
	ID        string     `gorm:"primaryKey;size:64"`
	UserID    string     `gorm:"size:191;not null;index"`
	TenantID  string     `gorm:"size:191;not null;default:''"`
	Device    string     `gorm:"size:191;not null;default:''"`
	Data      []byte     `gorm:""`
	CreatedAt time.Time  `gorm:"not null;autoCreateTime:false"`
	UpdatedAt time.Time  `gorm:"not null;autoUpdateTime:false;index"`
	ExpiresAt *time.Time `gorm:"index"`
	RevokedAt *time.Time
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

// toModel converts s to its row. Times are stored in UTC so that every
// dialect compares them the same way.
func toModel(s *Session) Model {
	m := Model{
		ID:        s.ID,
		UserID:    s.UserID,
		TenantID:  s.TenantID,
		Device:    s.Device,
		Data:      s.Data,
		CreatedAt: s.CreatedAt.UTC(),
		UpdatedAt: s.UpdatedAt.UTC(),
	}
	if !s.ExpiresAt.IsZero() {
		t := s.ExpiresAt.UTC()
		m.ExpiresAt = &t
	}
	return m
}

// session converts the row to a Session (without Token).
func (m *Model) session() Session {
	s := Session{
		ID:        m.ID,
		UserID:    m.UserID,
		TenantID:  m.TenantID,
		Device:    m.Device,
		Data:      m.Data,
		CreatedAt: m.CreatedAt.UTC(),
		UpdatedAt: m.UpdatedAt.UTC(),
	}
	if m.ExpiresAt != nil {
		s.ExpiresAt = m.ExpiresAt.UTC()
	}
	return s
}
