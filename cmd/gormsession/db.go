package main

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"

	mysqldriver "github.com/go-sql-driver/mysql"
	"gorm.io/driver/mysql"
	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/callbacks"
	"gorm.io/gorm/logger"

	"github.com/gormsession/gormsession"
)

// target is a parsed DSN: the dialect and what its driver opens.
type target struct {
	dialect string // "postgres", "mysql" or "sqlite"
	dsn     string // as the driver takes it
	file    string // the SQLite file; "" for other dialects
}

// parseDSN tells the dialect of a DSN. A string with a scheme that is
// none of the known ones is a usage error, not a SQLite file name.
func parseDSN(dsn string) (target, error) {
	if dsn == "" {
		return target{}, usagef("no database: give --dsn or set DATABASE_URL")
	}
	scheme, rest, hasScheme := strings.Cut(dsn, "://")
	switch {
	case hasScheme && (scheme == "postgres" || scheme == "postgresql"):
		return target{dialect: "postgres", dsn: dsn}, nil
	case hasScheme && (scheme == "mysql" || scheme == "mariadb"):
		if !strings.Contains(rest, "parseTime=") {
			sep := "?"
			if strings.Contains(rest, "?") {
				sep = "&"
			}
			rest += sep + "parseTime=true"
		}
		if _, err := mysqldriver.ParseDSN(rest); err != nil {
			return target{}, usagef("--dsn: %v", err)
		}
		return target{dialect: "mysql", dsn: rest}, nil
	case hasScheme && (scheme == "sqlite" || scheme == "sqlite3" || scheme == "file"):
		return sqliteTarget(rest)
	case hasScheme:
		return target{}, usagef("--dsn: unknown scheme %q (postgres://, mysql://, or a SQLite file)", scheme)
	case strings.HasPrefix(dsn, "file:"):
		return sqliteTarget(strings.TrimPrefix(dsn, "file:"))
	default:
		return sqliteTarget(dsn)
	}
}

// sqliteTarget is the SQLite file path (with optional ?options). A busy
// timeout is added, so that the command waits for the applications'
// writes rather than failing.
func sqliteTarget(path string) (target, error) {
	file, query, _ := strings.Cut(path, "?")
	if file == "" {
		return target{}, usagef("--dsn: no SQLite file named")
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return target{}, usagef("--dsn: options of the SQLite file: %v", err)
	}
	if q.Get("_busy_timeout") == "" {
		q.Set("_busy_timeout", "10000")
	}
	return target{dialect: "sqlite", dsn: "file:" + file + "?" + q.Encode(), file: file}, nil
}

// openOptions says what opening may do.
type openOptions struct {
	// create allows a SQLite file that does not exist yet (migrate).
	create bool
	// offline opens without connecting (migrate --print).
	offline bool
}

// open opens the database of the flags.
func (c connFlags) open(ctx context.Context, o openOptions) (*gorm.DB, error) {
	t, err := parseDSN(c.dsn)
	if err != nil {
		return nil, err
	}
	if o.offline {
		return openOffline(t.dialect)
	}
	if t.file != "" && !o.create {
		if _, err := os.Stat(t.file); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no SQLite database at %s (migrate creates one)", t.file)
		}
	}
	var d gorm.Dialector
	switch t.dialect {
	case "postgres":
		d = postgres.Open(t.dsn)
	case "mysql":
		d = mysql.Open(t.dsn)
	default:
		d = sqlite.Open(t.dsn)
	}
	db, err := gorm.Open(d, &gorm.Config{Logger: logger.Discard, DisableAutomaticPing: true})
	if err != nil { // the MySQL and SQLite drivers query their version
		return nil, fmt.Errorf("cannot reach the %s database: %w", t.dialect, err)
	}
	sqlDB, err := db.DB()
	if err == nil {
		err = sqlDB.PingContext(ctx)
		if err != nil {
			sqlDB.Close()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("cannot reach the %s database: %w", t.dialect, err)
	}
	return db, nil
}

// errOffline is the error of every statement run on the database of
// openOffline.
var errOffline = errors.New("migrate --print contacts no database")

// openOffline returns a *gorm.DB of dialect whose connection pool never
// connects: every statement sent to it fails with errOffline. It serves
// Store.SchemaSQL, which builds its DDL in a dry run, so migrate --print
// neither reads nor creates a database, and needs no SQLite driver that
// works (a build without cgo prints SQLite's DDL too).
func openOffline(dialect string) (*gorm.DB, error) {
	pool := sql.OpenDB(offlineConnector{})
	var d gorm.Dialector
	switch dialect {
	case "postgres":
		d = postgres.New(postgres.Config{Conn: pool})
	case "mysql":
		d = mysql.New(mysql.Config{Conn: pool, SkipInitializeWithVersion: true})
	default:
		d = offlineSQLite{sqlite.Dialector{Conn: pool}}
	}
	db, err := gorm.Open(d, &gorm.Config{Logger: logger.Discard, DisableAutomaticPing: true})
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("open the %s dialect: %w", dialect, err)
	}
	return db, nil
}

// offlineConnector is a database/sql connector that refuses to connect.
type offlineConnector struct{}

// Connect returns errOffline.
func (offlineConnector) Connect(context.Context) (driver.Conn, error) { return nil, errOffline }

// Driver returns a driver that refuses to connect.
func (offlineConnector) Driver() driver.Driver { return offlineDriver{} }

// offlineDriver is the driver of offlineConnector.
type offlineDriver struct{}

// Open returns errOffline.
func (offlineDriver) Open(string) (driver.Conn, error) { return nil, errOffline }

// offlineSQLite is SQLite's dialect without the query of the library's
// version that its Initialize sends, which would fail on a pool that
// never connects. The version only decides whether GORM may add RETURNING
// clauses to its own inserts, updates and deletes, which the DDL has none
// of: the callbacks are those of a SQLite without RETURNING.
type offlineSQLite struct{ sqlite.Dialector }

// Initialize sets the pool, callbacks and clause builders as SQLite's
// Initialize does, without reading the version.
func (d offlineSQLite) Initialize(db *gorm.DB) error {
	db.ConnPool = d.Conn
	callbacks.RegisterDefaultCallbacks(db, &callbacks.Config{LastInsertIDReversed: true})
	for k, v := range d.ClauseBuilders() {
		if _, ok := db.ClauseBuilders[k]; !ok {
			db.ClauseBuilders[k] = v
		}
	}
	return nil
}

// close closes db's connections.
func closeDB(db *gorm.DB) {
	if sqlDB, err := db.DB(); err == nil {
		sqlDB.Close()
	}
}

// store opens the database and the Store on the table, which must exist
// and be of the current schema: nothing but migrate changes the schema.
func (e *env) store(ctx context.Context) (*gormsession.Store, func(), error) {
	st, done, err := e.openStore(ctx, openOptions{})
	if err != nil {
		return nil, nil, err
	}
	missing, err := st.MissingSchema(ctx)
	if err == nil && len(missing) > 0 {
		err = schemaError(st.TableName(), missing)
	}
	if err != nil {
		done()
		return nil, nil, err
	}
	return st, done, nil
}

// openStore opens the database and a Store on the table that does not
// migrate it. done closes both.
func (e *env) openStore(ctx context.Context, o openOptions) (*gormsession.Store, func(), error) {
	if err := checkTableName(e.conn.table); err != nil {
		return nil, nil, err
	}
	db, err := e.conn.open(ctx, o)
	if err != nil {
		return nil, nil, err
	}
	st, err := gormsession.NewStore(db, gormsession.StoreOptions{TableName: e.conn.table, SkipMigrate: true, NoPreparedStatements: true, TombstoneTTL: e.tombstoneTTL})
	if err != nil {
		closeDB(db)
		return nil, nil, usageError{err.Error()}
	}
	// The Store prepares no statement: only the database to close.
	return st, func() { closeDB(db) }, nil
}

// checkTableName rejects an empty table name early; NewStore checks the
// rest of what a table name may be.
func checkTableName(table string) error {
	if table == "" {
		return usagef("--table is empty")
	}
	return nil
}

// schemaError says what the table lacks and what to do about it.
func schemaError(table string, missing []string) error {
	if len(missing) == 1 && missing[0] == "table" {
		return fmt.Errorf("table %s does not exist (gormsession migrate creates it)", table)
	}
	return fmt.Errorf("table %s is of an older schema: it lacks %s (gormsession migrate adds them; nothing was changed)",
		table, strings.Join(missing, ", "))
}
