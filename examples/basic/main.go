// Command basic is the smallest web app on gormsession: the standard
// library's net/http, a SQLite file, sign-in by name and a list of the
// signed-in user's devices. Restart it: you stay signed in.
//
//	go run ./examples/basic            # then open http://localhost:8080
//	go run ./examples/basic -db postgres://postgres@127.0.0.1:5432/test?sslmode=disable
package main

import (
	"context"
	"flag"
	"html/template"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/gormsession/gormsession"
)

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>gormsession basic example</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40em; margin: 2em auto">
{{if .User}}
  <h1>Hello, {{.User}}</h1>
  <h2>Your devices</h2>
  <ul>{{range .Devices}}<li>{{.Device}} — since {{.CreatedAt.Format "2006-01-02 15:04"}}{{if eq .ID $.Current}} (this device){{end}}</li>{{end}}</ul>
  <form method="post" action="/logout"><button>Sign out</button></form>
{{else}}
  <h1>Sign in</h1>
  <form method="post" action="/login"><input name="user" placeholder="your name" required autofocus> <button>Sign in</button></form>
{{end}}
</body></html>`))

func main() {
	addr := flag.String("addr", envOr("ADDR", ":8080"), "listen address")
	dsn := flag.String("db", envOr("DATABASE_URL", "gormsession-basic.db"), "SQLite file or postgres:// URL")
	flag.Parse()
	if err := run(*addr, *dsn); err != nil {
		slog.Error("basic example", "err", err)
		os.Exit(1)
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func open(dsn string) (*gorm.DB, error) {
	cfg := &gorm.Config{Logger: logger.Discard}
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		return gorm.Open(postgres.Open(dsn), cfg)
	}
	return gorm.Open(sqlite.Open(dsn+"?_journal_mode=WAL&_busy_timeout=5000"), cfg)
}

func run(addr, dsn string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	db, err := open(dsn)
	if err != nil {
		return err
	}
	store, err := gormsession.NewStore(db, gormsession.StoreOptions{})
	if err != nil {
		return err
	}
	m, err := gormsession.NewManager(ctx, store, gormsession.ManagerOptions{})
	if err != nil {
		return err
	}
	defer m.Close()
	// Plain HTTP on localhost: leave out the Secure attribute.
	cookies := gormsession.CookieOptions{Insecure: true}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		data := map[string]any{}
		if s, ok := gormsession.FromContext(r.Context()); ok {
			data["User"], data["Current"], data["Devices"] = s.UserID, s.ID, m.ListUser(s.UserID)
		}
		if err := page.Execute(w, data); err != nil {
			slog.Error("render", "err", err)
		}
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		user := strings.TrimSpace(r.FormValue("user"))
		if user == "" || len(user) > 64 {
			http.Error(w, "a name of 1 to 64 characters, please", http.StatusBadRequest)
			return
		}
		s, err := m.Create(r.Context(), gormsession.NewSession{UserID: user, Device: r.UserAgent()})
		if err != nil {
			slog.Error("sign in", "err", err)
			http.Error(w, "sessions are unavailable, try again shortly", http.StatusServiceUnavailable)
			return
		}
		http.SetCookie(w, cookies.Cookie(s, time.Now()))
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		if s, ok := gormsession.FromContext(r.Context()); ok {
			if err := m.Revoke(r.Context(), s.ID); err != nil {
				slog.Warn("sign out: delete queued for retry", "err", err)
			}
		}
		http.SetCookie(w, cookies.ExpiredCookie())
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})

	srv := &http.Server{
		Addr:              addr,
		Handler:           http.NewCrossOriginProtection().Handler(gormsession.Middleware(m, cookies)(mux)),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	slog.Info("listening", "addr", addr, "db", dsn, "sessions", m.Len())
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		return err
	}
	return nil
}
