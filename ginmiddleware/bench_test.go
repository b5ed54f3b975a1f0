package ginmiddleware_test

import (
	"net/http"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/gormsession/gormsession"
	"github.com/gormsession/gormsession/ginmiddleware"
	"github.com/gormsession/gormsession/internal/testdb"
)

// discardWriter is a ResponseWriter that keeps only the status code, so
// that the benchmark measures gin and the middleware, not a recorder.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }

// BenchmarkRequest serves one gin route with and without Authenticate in
// front of it. The difference between "bare" and "bearer" is what the
// middleware adds to a request; sql/op counts the statements run, which
// must be 0.
func BenchmarkRequest(b *testing.B) {
	e := newEnv(b, testdb.SQLite(b))
	s := e.create(b, gormsession.Attributes{UserID: "alice"})
	handler := func(c *gin.Context) {
		if _, ok := ginmiddleware.Current(c); ok {
			c.Status(http.StatusNoContent)
			return
		}
		c.Status(http.StatusOK)
	}
	bare := gin.New()
	bare.GET("/x", handler)
	// floor is what any gin middleware that stores a value for the request
	// pays: gin's c.Set, which makes the request's Keys map.
	floorKey := new(int)
	floor := gin.New()
	floor.Use(func(c *gin.Context) { c.Set(floorKey, floorKey) })
	floor.GET("/x", handler)
	auth := gin.New()
	auth.Use(ginmiddleware.Authenticate(e.m, ginmiddleware.AuthOptions{}))
	auth.GET("/x", handler)
	required := gin.New()
	required.Use(ginmiddleware.Authenticate(e.m, ginmiddleware.AuthOptions{}), ginmiddleware.RequireSession())
	required.GET("/x", handler)

	request := func(header, value string) *http.Request {
		req, err := http.NewRequest(http.MethodGet, "/x", nil)
		if err != nil {
			b.Fatal(err)
		}
		if header != "" {
			req.Header.Set(header, value)
		}
		return req
	}
	cases := []struct {
		name string
		h    http.Handler
		req  *http.Request
		want int
	}{
		{"bare", bare, request("", ""), http.StatusOK},
		{"floor", floor, request("", ""), http.StatusOK},
		{"bearer", auth, request("Authorization", "Bearer "+s.Token), http.StatusNoContent},
		{"bearer+require", required, request("Authorization", "Bearer "+s.Token), http.StatusNoContent},
		{"cookie", auth, request("Cookie", "session="+s.Token), http.StatusNoContent},
		{"anonymous", auth, request("", ""), http.StatusOK},
	}
	// resolve is Manager.Resolve alone, the work the middleware cannot
	// avoid: the others are measured against bare + resolve.
	b.Run("resolve", func(b *testing.B) {
		ctx := cases[0].req.Context()
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := e.m.Resolve(ctx, s.Token); !ok {
				b.Fatal("not resolved")
			}
		}
	})
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			w := &discardWriter{h: make(http.Header)}
			before := e.sql.N()
			b.ReportAllocs()
			for b.Loop() {
				// Each response starts with no header, as in a server.
				w.code = 0
				clear(w.h)
				bc.h.ServeHTTP(w, bc.req)
			}
			if w.code != bc.want {
				b.Fatalf("status %d, want %d", w.code, bc.want)
			}
			n := e.sql.N() - before
			b.ReportMetric(float64(n)/float64(b.N), "sql/op")
			if n != 0 {
				b.Fatalf("%d SQL statements in %d requests, want 0", n, b.N)
			}
		})
	}
}
