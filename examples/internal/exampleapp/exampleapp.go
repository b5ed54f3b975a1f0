// Package exampleapp is what the example commands share, so that they
// agree on flags, environment variables, exit codes, logging and secrets:
//
//   - -addr (ADDR) is the listen address, 127.0.0.1:8080 by default: an
//     example with demo accounts does not listen on every interface unless
//     told to.
//   - -db (DATABASE_URL) is a SQLite file path or a postgres:// URL; the
//     log shows it with its password redacted.
//   - SESSION_KEY signs cookies. Without it a key is made once and kept in
//     the database (see SessionKey), so cookies survive a restart.
//   - The exit status is 0 after a clean stop (SIGINT, SIGTERM) or -h, 2
//     for a bad command line, and 1 when the example cannot start or stops
//     on an error, such as a port that is already in use.
//   - Logs are log/slog text lines on standard error.
package exampleapp

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/logger"
)

// DefaultAddr is the listen address when neither -addr nor ADDR gives one.
const DefaultAddr = "127.0.0.1:8080"

// KeyTable is the table in which SessionKey keeps the generated keys.
const KeyTable = "gormsession_example_keys"

// minKeyLen is the shortest SESSION_KEY accepted, in bytes.
const minKeyLen = 32

// Main is the main function of an example called name: it logs with slog
// to standard error, parses the command line with parse (exiting 0 after
// -h and 2 when parse fails), then calls run with a context that SIGINT
// and SIGTERM cancel, exiting 1 when run returns an error.
func Main(name string, parse func(args []string) error, run func(ctx context.Context) error) {
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, nil)))
	err := parse(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = run(ctx)
	stop()
	if err != nil {
		slog.Error(name+" stopped", "err", err)
		os.Exit(1)
	}
	slog.Info("stopped")
}

// Env is an environment variable an example reads, for its -h output.
type Env struct {
	Name, Meaning string
}

// Flags are the command-line flags every example has.
type Flags struct {
	// Addr is the listen address (-addr, ADDR).
	Addr string
	// DSN is the database (-db, DATABASE_URL).
	DSN string
}

// NewFlagSet returns a flag set for the example called name with the
// common flags registered into f; defaultDB is the SQLite file used when
// neither -db nor DATABASE_URL is given. Its -h output shows about, the
// flags, and the environment variables: ADDR, DATABASE_URL and env.
func NewFlagSet(name, about, defaultDB string, f *Flags, env ...Env) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.StringVar(&f.Addr, "addr", EnvOr("ADDR", DefaultAddr), "listen address (env ADDR)")
	fs.StringVar(&f.DSN, "db", EnvOr("DATABASE_URL", defaultDB), "SQLite file path or postgres:// URL (env DATABASE_URL)")
	env = append([]Env{
		{"ADDR", "listen address, as -addr"},
		{"DATABASE_URL", "database, as -db"},
	}, env...)
	fs.Usage = func() {
		w := fs.Output()
		var b strings.Builder
		fmt.Fprintf(&b, "%s\n\nUsage: %s [flags]\n\nFlags:\n", about, name)
		fs.SetOutput(&b)
		fs.PrintDefaults()
		fs.SetOutput(w)
		b.WriteString("\nEnvironment (a flag given on the command line wins):\n")
		for _, e := range env {
			fmt.Fprintf(&b, "  %-16s %s\n", e.Name, e.Meaning)
		}
		if _, err := io.WriteString(w, b.String()); err != nil {
			slog.Error("write usage", "err", err)
		}
	}
	return fs
}

// SessionKeyEnv documents SESSION_KEY for NewFlagSet.
var SessionKeyEnv = Env{"SESSION_KEY", "signs the cookies; at least 32 bytes. Default: a key made on the first run and kept in the database (table " + KeyTable + ")"}

// EnvOr returns the environment variable key, or def when it is unset or
// empty.
func EnvOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// IsPostgres reports whether dsn is a postgres:// or postgresql:// URL.
func IsPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// Open opens PostgreSQL for a postgres:// URL and a SQLite file otherwise,
// in WAL mode with a busy timeout so that readers never block the writer.
// GORM's own logging is off.
func Open(dsn string) (*gorm.DB, error) {
	cfg := &gorm.Config{Logger: logger.Discard}
	var (
		db  *gorm.DB
		err error
	)
	if IsPostgres(dsn) {
		db, err = gorm.Open(postgres.Open(dsn), cfg)
	} else {
		db, err = gorm.Open(sqlite.Open(dsn+"?_journal_mode=WAL&_busy_timeout=5000&_synchronous=NORMAL"), cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", Redact(dsn), err)
	}
	return db, nil
}

// Redact returns dsn with the password of a URL replaced by "xxxxx", for
// logs.
func Redact(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		return u.Redacted()
	}
	return dsn
}

// EnvSessionKey returns SESSION_KEY, or nil when it is unset. A key shorter
// than 32 bytes is an error.
func EnvSessionKey() ([]byte, error) {
	key := os.Getenv("SESSION_KEY")
	if key == "" {
		return nil, nil
	}
	if len(key) < minKeyLen {
		return nil, fmt.Errorf("SESSION_KEY must be at least %d bytes, it has %d", minKeyLen, len(key))
	}
	return []byte(key), nil
}

// storedKey is one row of KeyTable.
type storedKey struct {
	Name  string `gorm:"primaryKey;size:64"`
	Value string `gorm:"not null"`
}

// SessionKey returns the cookie key called name that is kept in the table
// of db: the one stored by an earlier run, or a new random key that it
// stores. Instances started together on one database agree on one key.
// It logs which of the two it did.
func SessionKey(ctx context.Context, db *gorm.DB, table, name string) ([]byte, error) {
	tx := db.WithContext(ctx).Table(table)
	var err error
	for attempt := range 5 {
		// Instances starting together may race to create the table.
		if err = tx.AutoMigrate(&storedKey{}); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Duration(attempt+1) * 100 * time.Millisecond):
		}
	}
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", table, err)
	}
	fresh := rand.Text() + rand.Text() // 52 characters, 260 random bits
	err = db.WithContext(ctx).Table(table).Clauses(clause.OnConflict{DoNothing: true}).
		Create(&storedKey{Name: name, Value: fresh}).Error
	if err != nil {
		return nil, fmt.Errorf("store the session key in %s: %w", table, err)
	}
	var got storedKey
	if err := db.WithContext(ctx).Table(table).Where("name = ?", name).Take(&got).Error; err != nil {
		return nil, fmt.Errorf("read the session key from %s: %w", table, err)
	}
	if got.Value == fresh {
		slog.Info("SESSION_KEY is not set: made a cookie key and stored it in the database; later runs use it",
			"table", table, "name", name)
	} else {
		slog.Info("SESSION_KEY is not set: using the cookie key stored in the database", "table", table, "name", name)
	}
	return []byte(got.Value), nil
}

// Serve serves h on addr until ctx is done, then shuts the server down,
// giving the requests in flight 5 seconds. It logs "listening" with the
// address and attrs once the port is open; a port already in use is an
// error.
func Serve(ctx context.Context, addr string, h http.Handler, attrs ...any) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	slog.Info("listening", append([]any{"addr", ln.Addr().String()}, attrs...)...)

	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	slog.Info("shutting down")
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		// Connections still busy, or opened by a browser in advance and
		// never used: close them.
		slog.Warn("closing the connections that are still open", "err", err)
		return srv.Close()
	}
	return nil
}
