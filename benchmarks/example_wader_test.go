package benchmarks

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/gorilla/sessions"
	"gorm.io/gorm"

	"github.com/gormsession/gormsession"
	"github.com/gormsession/gormsession/gorillastore"
)

// newSessionStore replaces waderSetup: a Store on a Manager on the
// database the application already opened. Close the Manager when the
// application stops: that stops its background cleanup.
func newSessionStore(ctx context.Context, db *gorm.DB, hashKey []byte) (*gorillastore.Store, *gormsession.Manager, error) {
	backend, err := gormsession.NewStore(db, gormsession.StoreOptions{}) // table "gormsession_sessions"
	if err != nil {
		return nil, nil, err
	}
	m, err := gormsession.NewManager(ctx, backend, gormsession.ManagerOptions{
		Lifetime: 60 * 24 * time.Hour, // of sessions saved with MaxAge 0
	})
	if err != nil {
		return nil, nil, err
	}
	store := gorillastore.New(m, hashKey)    // the same key: see "Moving signed-in users"
	store.Options.MaxAge = 60 * 60 * 24 * 60 // Secure, HttpOnly and SameSite=Lax are already set
	store.CookieRejected = func(r *http.Request, reason error) {
		// Optional: why a request's cookie gave a new session (expired,
		// revoked, tampered, another store's).
		slog.Info("session cookie not used", "path", r.URL.Path, "reason", reason)
	}
	return store, m, nil
}

// counter is a handler written for wader/gormstore. It runs unchanged on
// gorillastore: Get fails only when a live session's values do not decode.
func counter(store sessions.Store) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		session, err := store.Get(r, "session")
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		n, _ := session.Values["visits"].(int)
		session.Values["visits"] = n + 1
		if err := session.Save(r, w); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "visit %d\n", n+1)
	}
}

// signIn gives the client a new session for user, and a new token: the
// old session is deleted, not reused.
func signIn(w http.ResponseWriter, r *http.Request, store *gorillastore.Store, user string) error {
	session, err := store.Get(r, "session")
	if err != nil {
		return err
	}
	session.Options.MaxAge = -1
	if err := session.Save(r, w); err != nil { // revokes the old token
		return err
	}
	session.Options.MaxAge = store.Options.MaxAge
	session.Values = map[any]any{"user": user}
	return session.Save(r, w) // a new session, a new cookie
}

func Example_fromWader() {
	ctx := context.Background()
	db, err := openDatabase() // the *gorm.DB wader/gormstore had
	if err != nil {
		slog.Error("open the database", "err", err)
		return
	}
	store, m, err := newSessionStore(ctx, db, hashKey)
	if err != nil {
		slog.Error("sessions", "err", err)
		return
	}
	defer func() {
		if err := m.Close(); err != nil {
			slog.Error("close sessions", "err", err)
		}
	}()

	mux := http.NewServeMux()
	mux.Handle("GET /{$}", counter(store))
	mux.HandleFunc("POST /signin", func(w http.ResponseWriter, r *http.Request) {
		if err := signIn(w, r, store, r.FormValue("user")); err != nil {
			http.Error(w, "sessions are unavailable", http.StatusServiceUnavailable)
			return
		}
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})
	_ = http.ListenAndServe("127.0.0.1:8080", mux)
}
