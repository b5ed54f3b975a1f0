package benchmarks

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/gorilla/securecookie"
	gorillasessions "github.com/gorilla/sessions"
	"gorm.io/gorm"

	"github.com/gormsession/gormsession"
	sessions "github.com/gormsession/gormsession/ginmiddleware"
)

// ginSetup replaces ginContribGormSetup and ginContribCookieSetup.
func ginSetup(ctx context.Context, r *gin.Engine, db *gorm.DB) (*gormsession.Manager, error) {
	store, m, err := newSessionStore(ctx, db, []byte("secret")) // as for wader/gormstore
	if err != nil {
		return nil, err
	}
	store.MaxAge(3600)
	r.Use(sessions.Sessions("mysession", store))
	return m, nil
}

// incr is ginContribIncr with its import changed.
func incr(c *gin.Context) {
	session := sessions.Default(c)
	count, _ := session.Get("count").(int)
	count++
	session.Set("count", count)
	if err := session.Save(); err != nil {
		c.AbortWithStatus(http.StatusInternalServerError)
		return
	}
	c.JSON(http.StatusOK, gin.H{"count": count})
}

// ginMovingSetup is ginSetup keeping signed-in users: moveOldGin runs
// before Sessions and takes the values of the old store's cookie with
// oldValues, one of the two functions below.
func ginMovingSetup(ctx context.Context, r *gin.Engine, db *gorm.DB, oldValues func(*http.Request) map[any]any) (*gormsession.Manager, error) {
	store, m, err := newSessionStore(ctx, db, []byte("secret"))
	if err != nil {
		return nil, err
	}
	store.MaxAge(3600)
	r.Use(moveOldGin(store, "mysession", oldValues))
	r.Use(sessions.Sessions("mysession", store))
	return m, nil
}

// fromGinContribGorm reads gin-contrib/sessions' gorm store's sessions
// (wader/gormstore's table), made with the old key.
func fromGinContribGorm(db *gorm.DB) func(*http.Request) map[any]any {
	oldCodecs := securecookie.CodecsFromPairs([]byte("secret"))
	return func(r *http.Request) map[any]any {
		return waderValues(db, "sessions", oldCodecs, r, "mysession")
	}
}

// fromGinContribCookie reads gin-contrib/sessions' cookie store's cookies,
// made with the old key.
func fromGinContribCookie() func(*http.Request) map[any]any {
	old := gorillasessions.NewCookieStore([]byte("secret"))
	return func(r *http.Request) map[any]any {
		return cookieStoreValues(old, r, "mysession")
	}
}

func Example_fromGinContrib() {
	db, err := openDatabase()
	if err != nil {
		return
	}
	r := gin.New()
	m, err := ginSetup(context.Background(), r, db)
	if err != nil {
		return
	}
	defer func() {
		if err := m.Close(); err != nil {
			slog.Error("close sessions", "err", err)
		}
	}()
	r.GET("/incr", incr)
	_ = r.Run("127.0.0.1:8080")
}

func Example_fromGinContribKeepingUsers() {
	db, err := openDatabase()
	if err != nil {
		return
	}
	r := gin.New()
	m, err := ginMovingSetup(context.Background(), r, db, fromGinContribGorm(db)) // or fromGinContribCookie()
	if err != nil {
		return
	}
	defer func() {
		if err := m.Close(); err != nil {
			slog.Error("close sessions", "err", err)
		}
	}()
	r.GET("/incr", incr)
	_ = r.Run("127.0.0.1:8080")
}
