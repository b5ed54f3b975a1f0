package ginmiddleware_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/gormsession/gormsession"
	"github.com/gormsession/gormsession/ginmiddleware"
	"github.com/gormsession/gormsession/gorillastore"
	"github.com/gormsession/gormsession/internal/testdb"
)

// TestLoginLogoutWithoutAuthenticate checks that Login and Logout work on
// routes without Authenticate, with the default cookie.
func TestLoginLogoutWithoutAuthenticate(t *testing.T) {
	e := newEnv(t, testdb.SQLite(t))
	r := gin.New()
	r.POST("/login", func(c *gin.Context) {
		if _, err := ginmiddleware.Login(c, e.m, gormsession.Attributes{UserID: "alice"}); err != nil {
			c.AbortWithStatus(http.StatusInternalServerError)
		}
	})
	r.POST("/logout", func(c *gin.Context) {
		if err := ginmiddleware.Logout(c, e.m); err != nil {
			c.AbortWithStatus(http.StatusInternalServerError)
		}
	})
	srv := httptest.NewTLSServer(r)
	t.Cleanup(srv.Close)
	c := jarClient(t, srv)

	resp, _ := post(t, c, srv.URL+"/login", 200)
	ck := findCookie(t, resp, gormsession.DefaultCookieName)
	if !ck.HttpOnly || !ck.Secure || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.MaxAge <= 0 {
		t.Fatalf("default cookie %s", ck)
	}
	post(t, c, srv.URL+"/logout", 200)
	if _, ok := e.m.Resolve(context.Background(), ck.Value); ok {
		t.Fatal("Logout without Authenticate did not revoke the cookie's session")
	}
}

func TestLoginFailsWhenManagerIsClosed(t *testing.T) {
	e := newEnv(t, testdb.SQLite(t))
	if err := e.m.Close(); err != nil {
		t.Fatal(err)
	}
	c, _ := gin.CreateTestContext(httptest.NewRecorder())
	c.Request = httptest.NewRequest(http.MethodPost, "/login", nil)
	if _, err := ginmiddleware.Login(c, e.m, gormsession.Attributes{UserID: "alice"}); !errors.Is(err, gormsession.ErrClosed) {
		t.Fatalf("Login on a closed Manager: %v, want ErrClosed", err)
	}
	if sc := c.Writer.Header().Values("Set-Cookie"); len(sc) != 0 {
		t.Fatalf("a failed Login set cookies %q", sc)
	}
}

// TestFlashesOfAPlainValueDoNotPanic guards against a value Set under the
// flash key making Flashes panic (gorilla's own Flashes would).
func TestFlashesOfAPlainValueDoNotPanic(t *testing.T) {
	e := newEnv(t, testdb.SQLite(t))
	r := gin.New()
	r.Use(ginmiddleware.Sessions("s", gorillastore.New(e.m, testKey)))
	r.GET("/", func(c *gin.Context) {
		s := ginmiddleware.Default(c)
		s.Set("_flash", "plain")
		got := s.Flashes()
		c.JSON(http.StatusOK, gin.H{"flashes": got, "after": s.Flashes()})
	})
	w := httptest.NewRecorder()
	r.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
	if w.Code != http.StatusOK || w.Body.String() != `{"after":null,"flashes":["plain"]}` {
		t.Fatalf("status %d body %s", w.Code, w.Body)
	}
}

func TestSaveErrorIsReturned(t *testing.T) {
	e := newEnv(t, testdb.SQLite(t))
	r := gin.New()
	r.Use(ginmiddleware.Sessions("s", gorillastore.New(e.m, testKey)))
	var saveErr error
	r.GET("/", func(c *gin.Context) {
		s := ginmiddleware.Default(c)
		s.Set("big", strings.Repeat("x", gorillastore.DefaultMaxLength+1))
		saveErr = s.Save()
	})
	w := httptest.NewRecorder()
	r.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
	if !errors.Is(saveErr, gorillastore.ErrTooLarge) {
		t.Fatalf("Save of an oversized session: %v, want ErrTooLarge", saveErr)
	}
	if n := e.m.Stats().SignedIn + e.m.Stats().Anonymous; n != 0 {
		t.Fatalf("a failed Save left %d sessions", n)
	}
}

func TestDefaultManyUnknownNamePanics(t *testing.T) {
	r := gin.New()
	r.Use(ginmiddleware.SessionsMany([]string{"a"}, nil))
	var recovered any
	r.GET("/", func(c *gin.Context) {
		defer func() { recovered = recover() }()
		ginmiddleware.DefaultMany(c, "b")
	})
	r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	if msg, _ := recovered.(string); !strings.Contains(msg, `"b"`) {
		t.Fatalf("recovered %v, want a panic naming the session", recovered)
	}
}
