// Command gorilla shows gormsession's gorilla/sessions store with the
// standard library's net/http, for apps not on Gin: a visit counter and
// flash messages, kept in a SQLite file so they survive a restart.
//
//	go run ./examples/gorilla            # then open http://localhost:8080
//
// The cookie is signed with SESSION_KEY (at least 32 bytes). Without it, a
// key is made on the first run and kept in the database (table
// gormsession_example_keys), so the counter survives a restart. -addr
// (ADDR) is the listen address, 127.0.0.1:8080 by default; -db
// (DATABASE_URL) a SQLite file (default gormsession-gorilla.db) or a
// postgres:// URL. -h lists them.
package main

import (
	"context"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"time"

	"gorm.io/gorm"

	"github.com/gormsession/gormsession"
	"github.com/gormsession/gormsession/examples/internal/exampleapp"
	"github.com/gormsession/gormsession/gorillastore"
)

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>gorillastore example</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40em; margin: 2em auto">
{{range .Flashes}}<p style="background: #fff7d6; padding: .5em">{{.}}</p>{{end}}
<h1>You have been here <span id="count">{{.Count}}</span> time{{if ne .Count 1}}s{{end}}</h1>
<form method="post" action="/flash"><button>Leave me a flash message</button></form>
</body></html>`))

func main() {
	var f exampleapp.Flags
	var key []byte
	exampleapp.Main("gorilla",
		func(args []string) (err error) {
			fs := exampleapp.NewFlagSet("gorilla",
				"gorilla: a visit counter and flash messages in a gorilla/sessions store on gormsession.",
				"gormsession-gorilla.db", &f, exampleapp.SessionKeyEnv)
			if err := fs.Parse(args); err != nil {
				return err
			}
			key, err = exampleapp.EnvSessionKey()
			return err
		},
		func(ctx context.Context) error { return run(ctx, f, key) })
}

// run serves until ctx is done, then shuts the server down and closes the
// Manager. A nil key means the key kept in the database.
func run(ctx context.Context, f exampleapp.Flags, key []byte) error {
	db, err := exampleapp.Open(f.DSN)
	if err != nil {
		return err
	}
	sqlDB, err := db.DB()
	if err != nil {
		return err
	}
	defer sqlDB.Close()
	m, store, err := newStore(ctx, db, key)
	if err != nil {
		return err
	}
	defer func() {
		if err := m.Close(); err != nil {
			slog.Error("close sessions", "err", err)
		}
	}()
	return exampleapp.Serve(ctx, f.Addr, handler(store), "db", exampleapp.Redact(f.DSN))
}

// newStore makes the Manager and the gorilla store on db, signing cookies
// with key, or with the key kept in the database when key is nil. The
// caller closes the Manager.
func newStore(ctx context.Context, db *gorm.DB, key []byte) (*gormsession.Manager, *gorillastore.Store, error) {
	if key == nil {
		var err error
		if key, err = exampleapp.SessionKey(ctx, db, exampleapp.KeyTable, "gorilla"); err != nil {
			return nil, nil, err
		}
	}
	backend, err := gormsession.NewStore(db, gormsession.StoreOptions{})
	if err != nil {
		return nil, nil, err
	}
	m, err := gormsession.NewManager(ctx, backend, gormsession.ManagerOptions{})
	if err != nil {
		return nil, nil, err
	}
	store := gorillastore.New(m, key)
	// A cookie that names no usable session (expired, revoked, tampered,
	// another store's) gives a new session; say why in the log.
	store.CookieRejected = func(r *http.Request, reason error) {
		slog.Info("session cookie not used", "reason", reason)
	}
	return m, store, nil
}

// handler returns the app's pages behind cross-origin protection.
func handler(store *gorillastore.Store) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		session, err := store.Get(r, "visits")
		if err != nil {
			// The session's values do not decode: a new session.
			slog.Warn("session values ignored", "err", err)
		}
		count, _ := session.Values["count"].(int)
		session.Values["count"] = count + 1
		flashes := session.Flashes()
		if err := session.Save(r, w); err != nil {
			slog.Error("save session", "err", err)
			http.Error(w, "sessions are unavailable, try again shortly", http.StatusServiceUnavailable)
			return
		}
		if err := page.Execute(w, map[string]any{"Count": count + 1, "Flashes": flashes}); err != nil {
			slog.Error("render", "err", err)
		}
	})
	mux.HandleFunc("POST /flash", func(w http.ResponseWriter, r *http.Request) {
		session, err := store.Get(r, "visits")
		if err != nil {
			slog.Warn("session values ignored", "err", err)
		}
		session.AddFlash(fmt.Sprintf("Flash message saved at %s, shown once.", time.Now().Format("15:04:05 MST")))
		if err := session.Save(r, w); err != nil {
			slog.Error("save session", "err", err)
			http.Error(w, "sessions are unavailable, try again shortly", http.StatusServiceUnavailable)
			return
		}
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})
	return http.NewCrossOriginProtection().Handler(mux)
}
