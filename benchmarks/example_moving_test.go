package benchmarks

import (
	"context"
	"log/slog"
	"maps"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"
	"gorm.io/gorm"

	"github.com/gormsession/gormsession/gorillastore"
)

// moveOld gives a request that has no session in store the values
// oldValues finds for it (nil for none) in a new session, and saves it.
func moveOld(store *gorillastore.Store, name string, oldValues func(*http.Request) map[any]any, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s, err := store.Get(r, name); err == nil && s.IsNew {
			if values := oldValues(r); values != nil {
				maps.Copy(s.Values, values)
				if err := s.Save(r, w); err != nil {
					http.Error(w, "sessions are unavailable", http.StatusServiceUnavailable)
					return
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// moveOldGin is moveOld for gin, installed before ginmiddleware.Sessions.
func moveOldGin(store *gorillastore.Store, name string, oldValues func(*http.Request) map[any]any) gin.HandlerFunc {
	return func(c *gin.Context) {
		s, err := store.Get(c.Request, name)
		if err != nil || !s.IsNew {
			return
		}
		if values := oldValues(c.Request); values != nil {
			maps.Copy(s.Values, values)
			if err := s.Save(c.Request, c.Writer); err != nil {
				c.AbortWithStatus(http.StatusServiceUnavailable)
			}
		}
	}
}

// waderValues returns the values of the wader/gormstore session (or
// gin-contrib/sessions gorm store's) that r's cookie called name refers
// to, or nil.
func waderValues(db *gorm.DB, table string, codecs []securecookie.Codec, r *http.Request, name string) map[any]any {
	c, err := r.Cookie(name)
	if err != nil {
		return nil
	}
	var id string
	if securecookie.DecodeMulti(name, c.Value, &id, codecs...) != nil {
		return nil
	}
	var row struct{ Data string }
	err = db.WithContext(r.Context()).Table(table).Select("data").
		Where("id = ? AND expires_at > ?", id, time.Now()).Take(&row).Error
	if err != nil {
		return nil
	}
	values := map[any]any{}
	if securecookie.DecodeMulti(name, row.Data, &values, codecs...) != nil {
		return nil
	}
	return values
}

// cookieStoreValues returns the values of r's cookie called name made by
// old, a CookieStore (or gin-contrib/sessions' cookie store's), or nil.
func cookieStoreValues(old *sessions.CookieStore, r *http.Request, name string) map[any]any {
	if s, err := old.New(r, name); err == nil && !s.IsNew {
		return s.Values
	}
	return nil
}

func Example_movingSignedInUsers() {
	db, err := openDatabase()
	if err != nil {
		return
	}
	store, m, err := newSessionStore(context.Background(), db, hashKey)
	if err != nil {
		return
	}
	defer func() {
		if err := m.Close(); err != nil {
			slog.Error("close sessions", "err", err)
		}
	}()
	app := http.NotFoundHandler() // the application's handler

	// From wader/gormstore, or gin-contrib/sessions' gorm store:
	oldCodecs := securecookie.CodecsFromPairs(hashKey) // the old store's keys
	fromWader := moveOld(store, "session", func(r *http.Request) map[any]any {
		return waderValues(db, "sessions", oldCodecs, r, "session")
	}, app)

	// From CookieStore, or gin-contrib/sessions' cookie store:
	old := sessions.NewCookieStore(hashKey) // the old store's keys
	fromCookieStore := moveOld(store, "session", func(r *http.Request) map[any]any {
		return cookieStoreValues(old, r, "session")
	}, app)

	_, _ = fromWader, fromCookieStore
}
