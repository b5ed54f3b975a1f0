// Command basic is the smallest web app on gormsession: the standard
// library's net/http, a SQLite file, sign-in by name and a list of the
// signed-in user's devices. Restart it: you stay signed in.
//
//	go run ./examples/basic            # then open http://localhost:8080
//	go run ./examples/basic -db postgres://postgres@127.0.0.1:5432/test?sslmode=disable
//
// -addr (ADDR) is the listen address, 127.0.0.1:8080 by default; -db
// (DATABASE_URL) a SQLite file (default gormsession-basic.db) or a
// postgres:// URL. -h lists them.
package main

import (
	"context"
	"html/template"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/gormsession/gormsession"
	"github.com/gormsession/gormsession/examples/internal/exampleapp"
)

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>gormsession basic example</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40em; margin: 2em auto">
{{if .User}}
  <h1>Hello, {{.User}}</h1>
  <h2>Your devices</h2>
  <ul>{{range .Devices}}<li>{{.Device}} — since {{.CreatedAt.Local.Format "2006-01-02 15:04 MST"}}{{if eq .ID $.Current}} (this device){{end}}</li>{{end}}</ul>
  <form method="post" action="/logout"><button>Sign out</button></form>
{{else}}
  <h1>Sign in</h1>
  <form method="post" action="/login"><input name="user" placeholder="your name" required autofocus> <button>Sign in</button></form>
{{end}}
</body></html>`))

func main() {
	var f exampleapp.Flags
	exampleapp.Main("basic",
		func(args []string) error {
			return exampleapp.NewFlagSet("basic",
				"basic: sign-in by name and your devices, on gormsession and net/http alone.",
				"gormsession-basic.db", &f).Parse(args)
		},
		func(ctx context.Context) error { return run(ctx, f) })
}

// run serves until ctx is done, then shuts the server down and closes the
// Manager.
func run(ctx context.Context, f exampleapp.Flags) error {
	db, err := exampleapp.Open(f.DSN)
	if err != nil {
		return err
	}
	sqlDB, err := db.DB()
	if err != nil {
		return err
	}
	defer sqlDB.Close()
	m, err := newManager(ctx, db)
	if err != nil {
		return err
	}
	defer func() {
		if err := m.Close(); err != nil {
			slog.Error("close sessions", "err", err)
		}
	}()
	return exampleapp.Serve(ctx, f.Addr, handler(m), "db", exampleapp.Redact(f.DSN), "sessions", m.Stats().SignedIn)
}

// newManager migrates the sessions table on db and loads its sessions.
func newManager(ctx context.Context, db *gorm.DB) (*gormsession.Manager, error) {
	store, err := gormsession.NewStore(db, gormsession.StoreOptions{})
	if err != nil {
		return nil, err
	}
	return gormsession.NewManager(ctx, store, gormsession.ManagerOptions{})
}

// cookies leaves out the Secure attribute: the example serves plain HTTP
// on localhost.
var cookies = gormsession.CookieOptions{Insecure: true}

// handler returns the app: its pages behind the session middleware and
// cross-origin protection.
func handler(m *gormsession.Manager) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Vary", "Cookie")
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
		s, err := m.Create(r.Context(), gormsession.Attributes{UserID: user, Device: gormsession.DeviceLabel(r.UserAgent())})
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
	return http.NewCrossOriginProtection().Handler(gormsession.Middleware(m, cookies)(mux))
}
