// Command gorilla shows gormsession's gorilla/sessions store with the
// standard library's net/http, for apps not on Gin: a visit counter and
// flash messages, kept in a SQLite file so they survive a restart.
//
//	SESSION_KEY=$(head -c 32 /dev/urandom | base64) go run ./examples/gorilla   # then open http://localhost:8080
package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/gormsession/gormsession"
	"github.com/gormsession/gormsession/gorillastore"
)

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>gorillastore example</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40em; margin: 2em auto">
{{range .Flashes}}<p style="background: #fff7d6; padding: .5em">{{.}}</p>{{end}}
<h1>You have been here {{.Count}} time{{if ne .Count 1}}s{{end}}</h1>
<form method="post" action="/flash"><button>Leave me a flash message</button></form>
</body></html>`))

func main() {
	addr := flag.String("addr", ":8080", "listen address")
	dsn := flag.String("db", "gormsession-gorilla.db", "SQLite file")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	db, err := gorm.Open(sqlite.Open(*dsn+"?_journal_mode=WAL&_busy_timeout=5000"), &gorm.Config{Logger: logger.Discard})
	check(err)
	backend, err := gormsession.NewStore(db, gormsession.StoreOptions{})
	check(err)
	m, err := gormsession.NewManager(ctx, backend, gormsession.ManagerOptions{})
	check(err)
	defer m.Close()

	key := []byte(os.Getenv("SESSION_KEY")) // signs the cookie; keep it secret and stable
	if len(key) < 32 {
		key = []byte(rand.Text() + rand.Text())
		slog.Warn("SESSION_KEY unset or shorter than 32 bytes: using a random key, cookies will not outlive this run")
	}
	store := gorillastore.New(m, key)

	http.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		session, _ := store.Get(r, "visits") // a bad cookie just gives a new session
		count, _ := session.Values["count"].(int)
		session.Values["count"] = count + 1
		flashes := session.Flashes()
		if err := session.Save(r, w); err != nil {
			slog.Error("save session", "err", err)
			http.Error(w, "sessions are unavailable, try again shortly", http.StatusServiceUnavailable)
			return
		}
		page.Execute(w, map[string]any{"Count": count + 1, "Flashes": flashes})
	})
	http.HandleFunc("POST /flash", func(w http.ResponseWriter, r *http.Request) {
		session, _ := store.Get(r, "visits")
		session.AddFlash(fmt.Sprintf("Flash message saved at %s, shown once.", time.Now().Format("15:04:05")))
		if err := session.Save(r, w); err != nil {
			http.Error(w, "sessions are unavailable, try again shortly", http.StatusServiceUnavailable)
			return
		}
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})

	srv := &http.Server{Addr: *addr, Handler: http.NewCrossOriginProtection().Handler(http.DefaultServeMux)}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	slog.Info("listening", "addr", *addr)
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		slog.Error("serve", "err", err)
	}
}

func check(err error) {
	if err != nil {
		slog.Error("start", "err", err)
		os.Exit(1)
	}
}
