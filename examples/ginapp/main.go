// Command ginapp is a small web app on Gin that shows what gormsession is
// for: sign in with a form, see and sign out your devices, use a JSON API
// with bearer tokens, and keep a gorilla-style session (a visit counter and
// a flash message). Sessions live in a SQLite file, so restarting the app
// signs no one out.
//
//	go run ./examples/ginapp            # then open http://localhost:8080
//
// Sign in as alice or bob, password "password". The flags, each with an
// environment variable for deployments:
//
//	-addr              ADDR              listen address (default ":8080")
//	-db                DATABASE_URL      a SQLite file path or a postgres:// URL
//	                                     (default "gormsession-example.db")
//	-table             SESSION_TABLE     sessions table (default "gormsession_sessions")
//	-sync              SYNC_INTERVAL     run as one of several instances on one database,
//	                                     reading their changes this often (default 0: one instance)
//	-notify            NOTIFY=1          with PostgreSQL and -sync, hear of their changes at once
//	-insecure-cookies  INSECURE_COOKIES  leave Secure off the cookies, for plain HTTP (default:
//	                                     true when -addr is a loopback or unspecified address)
//
// The gorilla-style session cookie is signed with SESSION_KEY (at least 32
// bytes); without it a random key is made at start, and those cookies do
// not survive a restart.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"
	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/gormsession/gormsession"
	"github.com/gormsession/gormsession/ginmiddleware"
	"github.com/gormsession/gormsession/gorillastore"
	"github.com/gormsession/gormsession/pgnotify"
)

// config is what the flags and environment variables say.
type config struct {
	addr            string
	dsn             string
	table           string
	sync            time.Duration
	notify          bool
	insecureCookies bool
	sessionKey      []byte
}

func init() {
	// Gin's debug mode prints every route at start; run in release mode
	// unless GIN_MODE says otherwise.
	if os.Getenv(gin.EnvGinMode) == "" {
		gin.SetMode(gin.ReleaseMode)
	}
}

func main() {
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, nil)))
	cfg, err := parseConfig(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ginapp:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		slog.Error("ginapp stopped", "err", err)
		os.Exit(1)
	}
	slog.Info("stopped")
}

// parseConfig reads the flags, whose defaults come from the environment.
func parseConfig(args []string) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("ginapp", flag.ContinueOnError)
	fs.StringVar(&cfg.addr, "addr", envOr("ADDR", ":8080"), "listen address (env ADDR)")
	fs.StringVar(&cfg.dsn, "db", envOr("DATABASE_URL", "gormsession-example.db"), "SQLite file path or postgres:// URL (env DATABASE_URL)")
	fs.StringVar(&cfg.table, "table", envOr("SESSION_TABLE", "gormsession_sessions"), "sessions table (env SESSION_TABLE)")
	syncDefault, err := time.ParseDuration(envOr("SYNC_INTERVAL", "0s"))
	if err != nil {
		return cfg, fmt.Errorf("SYNC_INTERVAL: %w", err)
	}
	fs.DurationVar(&cfg.sync, "sync", syncDefault, "poll interval for changes made by other instances; 0 is a single instance (env SYNC_INTERVAL)")
	fs.BoolVar(&cfg.notify, "notify", os.Getenv("NOTIFY") == "1", "hear of other instances' changes at once with PostgreSQL LISTEN/NOTIFY; needs -sync (env NOTIFY=1)")
	insecure := fs.String("insecure-cookies", os.Getenv("INSECURE_COOKIES"), "true: leave Secure off cookies, for plain HTTP; default true on a loopback or unspecified address (env INSECURE_COOKIES)")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if cfg.insecureCookies, err = insecureCookies(*insecure, cfg.addr); err != nil {
		return cfg, err
	}
	if cfg.notify && (cfg.sync <= 0 || !isPostgres(cfg.dsn)) {
		return cfg, errors.New("-notify needs a postgres:// database and -sync")
	}
	cfg.sessionKey = []byte(os.Getenv("SESSION_KEY"))
	if len(cfg.sessionKey) == 0 {
		cfg.sessionKey = []byte(rand.Text() + rand.Text())
		slog.Warn("SESSION_KEY is not set: using a random key, so visit counters start over after a restart")
	} else if len(cfg.sessionKey) < 32 {
		return cfg, errors.New("SESSION_KEY must be at least 32 bytes")
	}
	return cfg, nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// insecureCookies decides whether cookies go without the Secure attribute.
// A browser does not send a Secure cookie over plain HTTP (except to
// localhost), so an app served without TLS needs them without it; when
// nothing is said, that is assumed for loopback and unspecified addresses,
// where a developer runs the app.
func insecureCookies(value, addr string) (bool, error) {
	if value != "" {
		b, err := strconv.ParseBool(value)
		if err != nil {
			return false, fmt.Errorf("-insecure-cookies: %w", err)
		}
		return b, nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false, fmt.Errorf("-addr %q: %w", addr, err)
	}
	if host == "" || host == "localhost" {
		return true, nil
	}
	ip := net.ParseIP(host)
	return ip != nil && (ip.IsLoopback() || ip.IsUnspecified()), nil
}

func isPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// openDB opens PostgreSQL for a postgres:// URL and a SQLite file
// otherwise, in WAL mode with a busy timeout so that readers never block
// the writer.
func openDB(dsn string) (*gorm.DB, error) {
	cfg := &gorm.Config{Logger: logger.Discard}
	if isPostgres(dsn) {
		return gorm.Open(postgres.Open(dsn), cfg)
	}
	return gorm.Open(sqlite.Open(dsn+"?_journal_mode=WAL&_busy_timeout=5000&_synchronous=NORMAL"), cfg)
}

// run serves until ctx is done, then shuts the server down and closes the
// Manager, which stops its background work.
func run(ctx context.Context, cfg config) error {
	db, err := openDB(cfg.dsn)
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return err
	}
	defer sqlDB.Close()

	a, err := newApp(ctx, db, cfg)
	if err != nil {
		return err
	}
	defer func() {
		if err := a.m.Close(); err != nil {
			slog.Error("close sessions", "err", err)
		}
	}()

	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: a.routes(), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	slog.Info("listening", "addr", ln.Addr().String(), "db", redact(cfg.dsn),
		"table", cfg.table, "sessions", a.m.Len(), "sync", cfg.sync, "notify", cfg.notify)

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

// newApp makes the sessions store and Manager on db and the demo users.
// The caller closes a.m.
func newApp(ctx context.Context, db *gorm.DB, cfg config) (*app, error) {
	users, err := newUsers(map[string]string{"alice": "password", "bob": "password"})
	if err != nil {
		return nil, err
	}
	store, err := gormsession.NewStore(db, gormsession.StoreOptions{TableName: cfg.table})
	if err != nil {
		return nil, err
	}
	opts := gormsession.ManagerOptions{SyncInterval: cfg.sync}
	if cfg.notify {
		opts.Notifier = pgnotify.New(db, store.NotifyChannel())
	}
	m, err := gormsession.NewManager(ctx, store, opts)
	if err != nil {
		return nil, err
	}
	a := &app{
		m:       m,
		users:   users,
		visits:  gorillastore.New(m, cfg.sessionKey),
		cookies: ginmiddleware.Options{Insecure: cfg.insecureCookies},
	}
	a.visits.Options.Secure = !cfg.insecureCookies
	return a, nil
}

// redact hides the password of a database URL for the log.
func redact(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		return u.Redacted()
	}
	return dsn
}
