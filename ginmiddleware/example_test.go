package ginmiddleware_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"

	"github.com/gin-gonic/gin"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/gormsession/gormsession"
	"github.com/gormsession/gormsession/ginmiddleware"
	"github.com/gormsession/gormsession/gorillastore"
)

// exampleManager opens a Manager on a SQLite file in a temporary directory.
// The returned function closes everything and removes the directory.
func exampleManager() (*gormsession.Manager, func()) {
	dir, err := os.MkdirTemp("", "ginmiddleware-example")
	if err != nil {
		log.Fatal(err)
	}
	db, err := gorm.Open(sqlite.Open(filepath.Join(dir, "sessions.db")), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		log.Fatal(err)
	}
	backend, err := gormsession.NewStore(db, gormsession.StoreOptions{})
	if err != nil {
		log.Fatal(err)
	}
	m, err := gormsession.NewManager(context.Background(), backend, gormsession.ManagerOptions{})
	if err != nil {
		log.Fatal(err)
	}
	return m, func() {
		if err := m.Close(); err != nil {
			log.Fatal(err)
		}
		if sqlDB, err := db.DB(); err == nil {
			sqlDB.Close()
		}
		if err := os.RemoveAll(dir); err != nil {
			log.Fatal(err)
		}
	}
}

// show prints the status and body of a response.
func show(resp *http.Response, err error) {
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(strings.TrimSpace(fmt.Sprintf("%d %s", resp.StatusCode, body)))
}

// A bearer token resolves to its session; without one the protected route
// answers 401.
func ExampleAuthenticate() {
	m, done := exampleManager()
	defer done()

	r := gin.New()
	r.Use(ginmiddleware.Authenticate(m, ginmiddleware.AuthOptions{}))
	r.GET("/me", ginmiddleware.RequireSession(), func(c *gin.Context) {
		s, _ := ginmiddleware.Current(c)
		c.JSON(http.StatusOK, gin.H{"user": s.UserID})
	})
	srv := httptest.NewServer(r)
	defer srv.Close()

	s, err := m.Create(context.Background(), gormsession.Attributes{UserID: "alice"})
	if err != nil {
		log.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/me", nil)
	req.Header.Set("Authorization", "Bearer "+s.Token)
	show(http.DefaultClient.Do(req))
	show(http.Get(srv.URL + "/me"))
	// Output:
	// 200 {"user":"alice"}
	// 401 {"error":"authentication required"}
}

// Login sets the session cookie; a browser (here a client with a cookie
// jar) is then signed in until Logout.
func ExampleLogin() {
	m, done := exampleManager()
	defer done()

	r := gin.New()
	r.Use(ginmiddleware.Authenticate(m, ginmiddleware.AuthOptions{}))
	r.POST("/login", func(c *gin.Context) {
		// A real application checks a password here.
		s, err := ginmiddleware.Login(c, m, gormsession.Attributes{UserID: c.PostForm("user")})
		if err != nil {
			c.AbortWithStatus(http.StatusInternalServerError)
			return
		}
		c.JSON(http.StatusOK, gin.H{"user": s.UserID, "device": s.Device})
	})
	r.POST("/logout", func(c *gin.Context) {
		if err := ginmiddleware.Logout(c, m); err != nil {
			c.AbortWithStatus(http.StatusInternalServerError)
			return
		}
		c.Status(http.StatusNoContent)
	})
	r.GET("/me", ginmiddleware.RequireSession(), func(c *gin.Context) {
		s, _ := ginmiddleware.Current(c)
		c.JSON(http.StatusOK, gin.H{"user": s.UserID})
	})
	srv := httptest.NewTLSServer(r) // the cookie is Secure
	defer srv.Close()
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Transport: srv.Client().Transport, Jar: jar}

	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/login", strings.NewReader("user=alice"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0")
	show(browser.Do(req))
	show(browser.Get(srv.URL + "/me"))
	show(browser.Post(srv.URL+"/logout", "", nil))
	show(browser.Get(srv.URL + "/me"))
	// Output:
	// 200 {"device":"Firefox on Linux","user":"alice"}
	// 200 {"user":"alice"}
	// 204
	// 401 {"error":"authentication required"}
}

// Sessions and Default work as in gin-contrib/sessions, here over
// gorillastore.
func ExampleSessions() {
	m, done := exampleManager()
	defer done()

	store := gorillastore.New(m, []byte("a hash key of 32 random bytes..."))
	r := gin.New()
	r.Use(ginmiddleware.Sessions("mysession", store))
	r.GET("/incr", func(c *gin.Context) {
		session := ginmiddleware.Default(c)
		count, _ := session.Get("count").(int)
		count++
		session.Set("count", count)
		if err := session.Save(); err != nil {
			c.AbortWithStatus(http.StatusInternalServerError)
			return
		}
		c.JSON(http.StatusOK, gin.H{"count": count})
	})
	srv := httptest.NewServer(r)
	defer srv.Close()
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}

	for range 3 {
		show(browser.Get(srv.URL + "/incr"))
	}
	// Output:
	// 200 {"count":1}
	// 200 {"count":2}
	// 200 {"count":3}
}
