package main

import (
	"context"
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
	if t.file != "" && !o.create && !o.offline {
		if _, err := os.Stat(t.file); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no SQLite database at %s (migrate creates one)", t.file)
		}
	}
	var d gorm.Dialector
	switch t.dialect {
	case "postgres":
		d = postgres.Open(t.dsn)
	case "mysql":
		d = mysql.New(mysql.Config{DSN: t.dsn, SkipInitializeWithVersion: o.offline})
	default:
		d = sqlite.Open(t.dsn)
	}
	db, err := gorm.Open(d, &gorm.Config{Logger: logger.Discard, DisableAutomaticPing: true})
	if err != nil { // the MySQL driver connects to read the server's version
		return nil, fmt.Errorf("cannot reach the %s database: %w", t.dialect, err)
	}
	if o.offline {
		return db, nil
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
