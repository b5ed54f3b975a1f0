package gormsession

// The Store's methods for operators and their tools (the gormsession
// command): listing by the database rather than by a Manager's memory,
// counting, and the schema. None of them is on a request path.

import (
	"context"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/logger"
	"gorm.io/gorm/schema"
)

// ListUser returns the live sessions of userID that are unexpired by the
// database's clock, newest first, read from the database in one statement
// (Manager.ListUser reads a Manager's memory). An empty userID lists
// nothing: anonymous sessions belong to no user.
func (s *Store) ListUser(ctx context.Context, userID string) ([]Session, error) {
	if userID == "" {
		return nil, nil
	}
	var out []Session
	err := s.query(ctx, "list sessions of user "+userID, "SELECT "+selectColumns+" FROM "+s.quoted+
		" WHERE user_id = ? AND user_id > '' AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > "+s.expr.now+")"+
		" ORDER BY created_at DESC, id", []any{userID}, func(sess *Session, _ bool) error {
		out = append(out, *sess)
		return nil
	})
	return out, err
}

// Counts is what a table holds, as Count reports it: for one tenant, or
// for the whole table. Live and expired are decided by the database's
// clock.
type Counts struct {
	// TenantID is the tenant counted; "" for sessions without a tenant, or
	// for the whole table when Count was not asked for tenants.
	TenantID string
	// SignedIn is the number of live, unexpired sessions with a user.
	SignedIn int64
	// Anonymous is the number of live, unexpired sessions without a user.
	Anonymous int64
	// Expired is the number of expired sessions that cleanup
	// (RemoveExpired) has not deleted yet.
	Expired int64
	// Tombstones is the number of revoked sessions kept so that other
	// instances learn of the revocation (see StoreOptions.TombstoneTTL).
	Tombstones int64
	// Oldest and Newest are when the oldest and the newest live, unexpired
	// session was created; zero when there is none.
	Oldest, Newest time.Time
}

// Count counts the table's sessions by kind, in one statement: for the
// whole table, or when byTenant is set for each tenant, ordered by tenant.
// An empty table counts zero (one Counts, or none by tenant).
func (s *Store) Count(ctx context.Context, byTenant bool) ([]Counts, error) {
	now := s.expr.now
	live := "revoked_at IS NULL AND (expires_at IS NULL OR expires_at > " + now + ")"
	tenant, group := "''", ""
	if byTenant {
		tenant, group = "tenant_id", " GROUP BY tenant_id ORDER BY tenant_id"
	}
	query := "SELECT " + tenant + "," +
		" COALESCE(SUM(CASE WHEN user_id > '' AND " + live + " THEN 1 ELSE 0 END), 0)," +
		" COALESCE(SUM(CASE WHEN user_id = '' AND " + live + " THEN 1 ELSE 0 END), 0)," +
		" COALESCE(SUM(CASE WHEN revoked_at IS NULL AND expires_at <= " + now + " THEN 1 ELSE 0 END), 0)," +
		" COALESCE(SUM(CASE WHEN revoked_at IS NOT NULL THEN 1 ELSE 0 END), 0)," +
		" MIN(CASE WHEN " + live + " THEN created_at END)," +
		" MAX(CASE WHEN " + live + " THEN created_at END)" +
		" FROM " + s.quoted + group
	rows, err := s.db.WithContext(ctx).Raw(query).Rows()
	if err != nil {
		return nil, fmt.Errorf("gormsession: count sessions: %w", err)
	}
	defer rows.Close()
	var out []Counts
	for rows.Next() {
		var (
			c              Counts
			oldest, newest any
		)
		if err := rows.Scan(&c.TenantID, &c.SignedIn, &c.Anonymous, &c.Expired, &c.Tombstones, &oldest, &newest); err != nil {
			return nil, fmt.Errorf("gormsession: count sessions: scan: %w", err)
		}
		if c.Oldest, err = aggregateTime(oldest); err == nil {
			c.Newest, err = aggregateTime(newest)
		}
		if err != nil {
			return nil, fmt.Errorf("gormsession: count sessions: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("gormsession: count sessions: %w", err)
	}
	return out, nil
}

// aggregateTime converts the MIN or MAX of a time column to a time: a
// time.Time from most drivers, the stored text from SQLite (an aggregate
// has no declared type there), nil when there were no rows.
func aggregateTime(v any) (time.Time, error) {
	switch v := v.(type) {
	case nil:
		return time.Time{}, nil
	case time.Time:
		return v.UTC(), nil
	case []byte:
		return aggregateTime(string(v))
	case string:
		for _, layout := range []string{"2006-01-02 15:04:05.999999999-07:00", "2006-01-02 15:04:05.999999999", time.RFC3339Nano} {
			if t, err := time.Parse(layout, v); err == nil {
				return t.UTC(), nil
			}
		}
		return time.Time{}, fmt.Errorf("unreadable time %q", v)
	default:
		return time.Time{}, fmt.Errorf("unreadable time of type %T", v)
	}
}

// MissingSchema returns what Migrate would add to the table: "table" when
// there is none; else each missing column ("column version") and index
// ("index idx_..._revoked_at"), and each missing trigger ("trigger
// ..._seq_update"; on PostgreSQL also "trigger ..._notify"). It is empty for a table of the current schema,
// and reads the database's catalog only; it changes nothing.
//
// It is derived from the model and the migration, so it follows them: a
// Store opened with StoreOptions.SkipMigrate on a table that lacks
// something can check with it before use.
func (s *Store) MissingSchema(ctx context.Context) ([]string, error) {
	db := s.db.WithContext(ctx)
	model := migrationModel(s.dialect)
	if err := db.Exec("SELECT 1").Error; err != nil {
		return nil, fmt.Errorf("gormsession: check schema of %s: %w", s.table, err)
	}
	m := db.Table(s.table).Migrator()
	if !m.HasTable(s.table) {
		return []string{"table"}, nil
	}
	sch, err := s.parseModel(model)
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, name := range sch.DBNames {
		if !m.HasColumn(model, name) {
			missing = append(missing, "column "+name)
		}
	}
	for _, idx := range sch.ParseIndexes() {
		if !m.HasIndex(model, idx.Name) {
			missing = append(missing, "index "+idx.Name)
		}
	}
	var triggers []string
	for _, tr := range s.seqTriggers() {
		triggers = append(triggers, tr.name)
	}
	if s.dialect == "postgres" {
		triggers = append(triggers, s.notifyTrigger())
	}
	for _, name := range triggers {
		has, err := s.hasTrigger(db, name)
		if err != nil {
			return nil, fmt.Errorf("gormsession: check schema of %s: %w", s.table, err)
		}
		if !has {
			missing = append(missing, "trigger "+name)
		}
	}
	return missing, nil
}

// parseModel returns GORM's schema of model on the Store's table: the
// columns and indexes, with the index names Migrate gives them (GORM names
// the indexes of schema.table after the table alone).
func (s *Store) parseModel(model any) (*schema.Schema, error) {
	tx := s.db.Table(s.table)
	stmt := &gorm.Statement{DB: tx}
	if err := stmt.ParseWithSpecialTableName(model, tx.Statement.Table); err != nil {
		return nil, fmt.Errorf("gormsession: parse the model of %s: %w", s.table, err)
	}
	return stmt.Schema, nil
}

// notifyTrigger is the name of the table's NOTIFY trigger on PostgreSQL.
func (s *Store) notifyTrigger() string {
	_, bare, found := strings.Cut(s.table, ".")
	if !found {
		bare = s.table
	}
	return bare + "_notify"
}

// Statement is one statement of the schema, as SchemaSQL writes it.
type Statement struct {
	// SQL is the statement, without a terminating semicolon.
	SQL string
	// DialectSpecific says why the statement exists only on this dialect,
	// or takes a form only this dialect has; empty when the statement is
	// the same on every dialect but for its types and quoting.
	DialectSpecific string
}

// SchemaSQL returns the statements that create the table on the Store's
// dialect as Migrate does, without running them and without reading the
// database: the table, its indexes, on SQLite and PostgreSQL the triggers
// that keep an earlier version's writes in the change feed, and on
// PostgreSQL the NOTIFY function and trigger. A table made with them is one that a Store with
// StoreOptions.SkipMigrate accepts. They are derived from the model by
// GORM's migrator, as Migrate's are.
func (s *Store) SchemaSQL() ([]Statement, error) {
	rec := &ddlRecorder{Interface: logger.Discard}
	dry := s.db.Session(&gorm.Session{DryRun: true, Logger: rec, NewDB: true})
	model := migrationModel(s.dialect)
	if err := dry.Table(s.table).Migrator().CreateTable(model); err != nil {
		return nil, fmt.Errorf("gormsession: schema of %s: %w", s.table, err)
	}
	sch, err := s.parseModel(model)
	if err != nil {
		return nil, err
	}
	var partial []string
	for _, idx := range sch.ParseIndexes() {
		if idx.Where != "" {
			partial = append(partial, idx.Name)
		}
	}
	out := make([]Statement, 0, len(rec.sqls)+2)
	for _, q := range rec.sqls {
		st := Statement{SQL: q}
		switch {
		case s.dialect == "mysql" && strings.HasPrefix(q, "CREATE TABLE"):
			st.DialectSpecific = "MySQL and MariaDB: times as DATETIME(6), with the microseconds their DATETIME lacks by default"
		case strings.HasPrefix(q, "CREATE INDEX") && createsOneOf(q, partial):
			st.DialectSpecific = "partial index (PostgreSQL and SQLite): it leaves out rows no query by it reads; MySQL and MariaDB index every row"
		}
		out = append(out, st)
	}
	seqWhy := "SQLite and PostgreSQL: gives a change written without a seq (by an earlier version, during a rolling deploy) its place in the change feed; this version's statements never fire it"
	for i, tr := range s.seqTriggers() {
		if i == 0 && s.dialect == "postgres" {
			out = append(out, Statement{SQL: seqFunction, DialectSpecific: seqWhy})
		}
		out = append(out, Statement{SQL: tr.create, DialectSpecific: seqWhy})
	}
	if s.dialect == "postgres" {
		var b strings.Builder
		s.db.Dialector.QuoteTo(&b, s.notifyTrigger())
		why := "PostgreSQL only: announces every change with NOTIFY so that other instances (package pgnotify) read it at once; without it they learn of changes by polling"
		out = append(out, Statement{SQL: notifyFunction, DialectSpecific: why},
			Statement{SQL: "CREATE TRIGGER " + b.String() + " AFTER INSERT OR UPDATE OR DELETE ON " + s.quoted +
				" FOR EACH STATEMENT EXECUTE FUNCTION gormsession_notify()", DialectSpecific: why})
	}
	return out, nil
}

// createsOneOf reports whether the CREATE INDEX statement q creates one
// of the indexes names.
func createsOneOf(q string, names []string) bool {
	on, _, _ := strings.Cut(q, " ON ")
	for _, name := range names {
		if strings.HasSuffix(strings.Trim(on, "\"`"), name) {
			return true
		}
	}
	return false
}

// ddlRecorder is a GORM logger that keeps the SQL of the statements a dry
// run builds.
type ddlRecorder struct {
	logger.Interface
	sqls []string
}

// LogMode returns r: the level does not matter to a recording.
func (r *ddlRecorder) LogMode(logger.LogLevel) logger.Interface { return r }

// Trace records one statement.
func (r *ddlRecorder) Trace(_ context.Context, _ time.Time, fc func() (string, int64), _ error) {
	q, _ := fc()
	r.sqls = append(r.sqls, q)
}
