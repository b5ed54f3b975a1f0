package ginmiddleware_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/gormsession/gormsession"
	"github.com/gormsession/gormsession/ginmiddleware"
	"github.com/gormsession/gormsession/internal/testdb"
)

// TestVaryIsSetOnceAndMerged: every response through Authenticate says
// Vary: Cookie and Authorization, once each, whatever Vary an earlier
// middleware set; "*" is left alone.
func TestVaryIsSetOnceAndMerged(t *testing.T) {
	e := newEnv(t, testdb.SQLite(t))
	for _, tt := range []struct {
		name   string
		before []string // Vary lines set before Authenticate
		want   []string // the fields of the response's Vary, in order
	}{
		{"none", nil, []string{"Cookie", "Authorization"}},
		{"other", []string{"Accept-Encoding"}, []string{"Accept-Encoding", "Cookie", "Authorization"}},
		{"cookie already", []string{"Accept-Encoding, cookie"}, []string{"Accept-Encoding", "cookie", "Authorization"}},
		{"authorization already", []string{"Authorization"}, []string{"Authorization", "Cookie"}},
		{"both already", []string{"Cookie", "Authorization"}, []string{"Cookie", "Authorization"}},
		{"star", []string{"*"}, []string{"*"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := gin.New()
			r.Use(func(c *gin.Context) {
				for _, v := range tt.before {
					c.Writer.Header().Add("Vary", v)
				}
			})
			r.Use(ginmiddleware.Authenticate(e.m, ginmiddleware.AuthOptions{}))
			r.GET("/", func(c *gin.Context) { c.Header("X-Other", "1"); c.Status(http.StatusNoContent) })
			w := httptest.NewRecorder()
			r.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
			var got []string
			for _, line := range w.Header().Values("Vary") {
				got = append(got, splitFields(line)...)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("Vary fields %q, want %q", got, tt.want)
			}
		})
	}
	// A handler that adds to Vary does not change what another response
	// gets (the shared value is copied, not written into).
	r := gin.New()
	r.Use(ginmiddleware.Authenticate(e.m, ginmiddleware.AuthOptions{}))
	r.GET("/add", func(c *gin.Context) { c.Writer.Header().Add("Vary", "Accept-Language"); c.Status(http.StatusNoContent) })
	r.GET("/plain", func(c *gin.Context) { c.Status(http.StatusNoContent) })
	for range 3 {
		w := httptest.NewRecorder()
		r.ServeHTTP(w, httptest.NewRequest("GET", "/add", nil))
		w = httptest.NewRecorder()
		r.ServeHTTP(w, httptest.NewRequest("GET", "/plain", nil))
		if got := w.Header().Values("Vary"); !slices.Equal(got, []string{"Cookie, Authorization"}) {
			t.Fatalf("Vary after another response added to its own: %q", got)
		}
	}
}

func splitFields(line string) []string {
	var out []string
	for f := range strings.SplitSeq(line, ",") {
		out = append(out, strings.TrimSpace(f))
	}
	return out
}

// TestConcurrentRequestsGetTheirOwnSession: requests of different users,
// served at once, each see their own session through Current, including
// across the batches Authenticate hands its per-request state out from.
func TestConcurrentRequestsGetTheirOwnSession(t *testing.T) {
	e := newEnv(t, testdb.SQLite(t))
	const users = 8
	tokens := make([]string, users)
	for i := range tokens {
		tokens[i] = e.create(t, gormsession.Attributes{UserID: fmt.Sprint("user", i)}).Token
	}
	r := gin.New()
	r.Use(ginmiddleware.Authenticate(e.m, ginmiddleware.AuthOptions{}), ginmiddleware.RequireSession())
	r.GET("/", func(c *gin.Context) {
		s, _ := ginmiddleware.Current(c)
		c.String(http.StatusOK, "%s %s", s.UserID, s.Token)
	})
	var wg sync.WaitGroup
	for i := range users {
		wg.Go(func() {
			for range 200 {
				req := httptest.NewRequest("GET", "/", nil)
				req.Header.Set("Authorization", "Bearer "+tokens[i])
				w := httptest.NewRecorder()
				r.ServeHTTP(w, req)
				if want := fmt.Sprint("user", i, " ", tokens[i]); w.Code != http.StatusOK || w.Body.String() != want {
					t.Errorf("got %d %q, want %q", w.Code, w.Body.String(), want)
					return
				}
			}
		})
	}
	wg.Wait()
}
