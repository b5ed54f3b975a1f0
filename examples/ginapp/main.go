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
//	-addr              ADDR              listen address (default "127.0.0.1:8080")
//	-db                DATABASE_URL      a SQLite file path or a postgres:// URL
//	                                     (default "gormsession-example.db")
//	-table             SESSION_TABLE     sessions table (default "gormsession_sessions")
//	-sync              SYNC_INTERVAL     how often to read the changes other instances on the
//	                                     same database made (default 1s; negative: this
//	                                     instance is alone)
//	-notify            NOTIFY            on PostgreSQL, hear of their changes at once with
//	                                     LISTEN/NOTIFY (default true; NOTIFY=0 turns it off)
//	-insecure-cookies  INSECURE_COOKIES  leave Secure off the cookies, for plain HTTP (default:
//	                                     true when -addr is a loopback or unspecified address)
//
// The gorilla-style session cookie is signed with SESSION_KEY (at least 32
// bytes). Without it, a key is made on the first run and kept in the
// database (table gormsession_example_keys), so the cookies survive a
// restart and instances on one database share the key.
//
// The JSON API, with a token in "Authorization: Bearer":
//
//	POST   /api/login          {"username": ..., "password": ...} → {"token": ..., "expires_at": ...}
//	GET    /api/me             the session of the token
//	GET    /api/sessions       the user's sessions ("your devices")
//	DELETE /api/sessions/{id}  sign out one of them
//	POST   /api/logout         sign out this token
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"github.com/gormsession/gormsession"
	"github.com/gormsession/gormsession/examples/internal/exampleapp"
	"github.com/gormsession/gormsession/ginmiddleware"
	"github.com/gormsession/gormsession/gorillastore"
	"github.com/gormsession/gormsession/pgnotify"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// config is what the flags and environment variables say.
type config struct {
	exampleapp.Flags
	table           string
	sync            time.Duration
	notify          bool
	insecureCookies bool
	sessionKey      []byte // SESSION_KEY; nil: the key kept in the database
}

func init() {
	// Gin's debug mode prints every route at start; run in release mode
	// unless GIN_MODE says otherwise.
	if os.Getenv(gin.EnvGinMode) == "" {
		gin.SetMode(gin.ReleaseMode)
	}
}

func main() {
	var cfg config
	exampleapp.Main("ginapp",
		func(args []string) (err error) { cfg, err = parseConfig(args); return err },
		func(ctx context.Context) error { return run(ctx, cfg) })
}

// parseConfig reads the flags, whose defaults come from the environment.
func parseConfig(args []string) (config, error) {
	var cfg config
	fs := exampleapp.NewFlagSet("ginapp",
		"ginapp: sign-in, your devices, a JSON API and a gorilla-style session, on gormsession and Gin.",
		"gormsession-example.db", &cfg.Flags,
		exampleapp.Env{Name: "SESSION_TABLE", Meaning: "sessions table, as -table"},
		exampleapp.Env{Name: "SYNC_INTERVAL", Meaning: "as -sync"},
		exampleapp.Env{Name: "NOTIFY", Meaning: "0: as -notify=false"},
		exampleapp.Env{Name: "INSECURE_COOKIES", Meaning: "as -insecure-cookies"},
		exampleapp.SessionKeyEnv,
		exampleapp.Env{Name: "GIN_MODE", Meaning: "Gin's mode; default release"})
	fs.StringVar(&cfg.table, "table", exampleapp.EnvOr("SESSION_TABLE", "gormsession_sessions"), "sessions table (env SESSION_TABLE)")
	syncDefault, err := time.ParseDuration(exampleapp.EnvOr("SYNC_INTERVAL", "0s"))
	if err != nil {
		return cfg, fmt.Errorf("SYNC_INTERVAL: %w", err)
	}
	fs.DurationVar(&cfg.sync, "sync", syncDefault, "how often to read other instances' changes; 0 is the library's default (1s), negative means this instance is alone (env SYNC_INTERVAL)")
	fs.BoolVar(&cfg.notify, "notify", os.Getenv("NOTIFY") != "0", "on PostgreSQL, hear of other instances' changes at once with LISTEN/NOTIFY (env NOTIFY=0 turns it off)")
	insecure := fs.String("insecure-cookies", os.Getenv("INSECURE_COOKIES"), "true: leave Secure off cookies, for plain HTTP; default true on a loopback or unspecified address (env INSECURE_COOKIES)")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if cfg.insecureCookies, err = insecureCookies(*insecure, cfg.Addr); err != nil {
		return cfg, err
	}
	// NOTIFY exists on PostgreSQL only, and is of use only to an instance
	// that reads other instances' changes.
	cfg.notify = cfg.notify && cfg.sync >= 0 && exampleapp.IsPostgres(cfg.DSN)
	cfg.sessionKey, err = exampleapp.EnvSessionKey()
	return cfg, err
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

// run serves until ctx is done, then shuts the server down and closes the
// Manager, which stops its background work.
func run(ctx context.Context, cfg config) error {
	db, err := exampleapp.Open(cfg.DSN)
	if err != nil {
		return err
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
	return exampleapp.Serve(ctx, cfg.Addr, a.routes(), "db", exampleapp.Redact(cfg.DSN),
		"table", cfg.table, "sessions", a.m.Stats().SignedIn, "sync", syncLabel(cfg.sync, a.m.Stats().Syncing), "notify", cfg.notify)
}

// syncLabel is the effective interval of reading other instances' changes,
// for the log: the -sync flag, with 0 meaning the library's default of one
// second, and "off" when the Manager reads no change feed.
func syncLabel(flag time.Duration, syncing bool) string {
	switch {
	case !syncing:
		return "off"
	case flag == 0:
		return time.Second.String()
	}
	return flag.String()
}

// newApp makes the sessions store and Manager on db and the demo users.
// The caller closes a.m.
func newApp(ctx context.Context, db *gorm.DB, cfg config) (*app, error) {
	users, err := newUsers(map[string]string{"alice": "password", "bob": "password"})
	if err != nil {
		return nil, err
	}
	key := cfg.sessionKey
	if key == nil {
		if key, err = exampleapp.SessionKey(ctx, db, exampleapp.KeyTable, "ginapp"); err != nil {
			return nil, err
		}
	}
	store, err := gormsession.NewStore(db, gormsession.StoreOptions{TableName: cfg.table})
	if err != nil {
		return nil, err
	}
	opts := gormsession.ManagerOptions{SyncInterval: cfg.sync}
	if cfg.notify {
		opts.Notifier = pgnotify.New(db, store.TableName())
	}
	m, err := gormsession.NewManager(ctx, store, opts)
	if err != nil {
		return nil, err
	}
	a := &app{
		m:       m,
		users:   users,
		visits:  gorillastore.New(m, key),
		cookies: ginmiddleware.AuthOptions{Insecure: cfg.insecureCookies},
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(newSessionCollector(m), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a.metrics = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	a.visits.Options.Secure = !cfg.insecureCookies
	return a, nil
}
