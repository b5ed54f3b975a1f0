package benchmarks

import (
	"net/http"

	"github.com/gin-contrib/sessions"
	"github.com/gin-contrib/sessions/cookie"
	gormsessions "github.com/gin-contrib/sessions/gorm"
	"github.com/gin-gonic/gin"
	"gorm.io/gorm"
)

// ginContribGormSetup is the gin-contrib/sessions gorm store setup the
// guide starts from.
func ginContribGormSetup(r *gin.Engine, db *gorm.DB) {
	store := gormsessions.NewStore(db, true, []byte("secret"))
	store.Options(sessions.Options{MaxAge: 3600})
	r.Use(sessions.Sessions("mysession", store))
}

// ginContribCookieSetup is the gin-contrib/sessions cookie store setup the
// guide starts from.
func ginContribCookieSetup(r *gin.Engine) {
	store := cookie.NewStore([]byte("secret"))
	store.Options(sessions.Options{MaxAge: 3600})
	r.Use(sessions.Sessions("mysession", store))
}

// ginContribIncr is a gin-contrib/sessions handler.
func ginContribIncr(c *gin.Context) {
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

func Example_ginContribBefore() {
	db, err := openDatabase()
	if err != nil {
		return
	}
	withGorm := gin.New()
	ginContribGormSetup(withGorm, db)
	withGorm.GET("/incr", ginContribIncr)
	withCookies := gin.New()
	ginContribCookieSetup(withCookies)
	withCookies.GET("/incr", ginContribIncr)
	_ = withGorm.Run("127.0.0.1:8080")
}
