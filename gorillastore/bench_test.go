package gorillastore_test

import (
	"net/http"
	"testing"

	"github.com/gormsession/gormsession"
	"github.com/gormsession/gormsession/gorillastore"
)

// discard is a ResponseWriter that keeps only its header, reset by the
// benchmarks between iterations.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}

// benchSession returns a Store on SQLite and a request that carries the
// cookie of a saved session with a few typical values.
func benchSession(b *testing.B) (*gorillastore.Store, *http.Request, *env) {
	e := newEnv(b, newSQLite(b), gormsession.ManagerOptions{})
	st := gorillastore.New(e.m, key(32))
	return st, savedSession(b, st), e
}

// savedSession saves a new session with a few typical values in st and
// returns a request that carries its cookie.
func savedSession(b *testing.B, st *gorillastore.Store) *http.Request {
	b.Helper()
	r, _ := http.NewRequest("GET", "http://example.com/", nil)
	session, err := st.New(r, "s")
	if err != nil {
		b.Fatal(err)
	}
	session.Values["user"] = "alice"
	session.Values["role"] = "admin"
	session.Values["visits"] = 12
	w := &discard{h: http.Header{}}
	if err := st.Save(r, w, session); err != nil {
		b.Fatal(err)
	}
	r, _ = http.NewRequest("GET", "http://example.com/", nil)
	r.Header.Set("Cookie", w.h.Get("Set-Cookie"))
	return r
}

// BenchmarkGet reads a session from memory, with its decoded Values copied
// from the Store's cache ("cached") and decoded from the stored bytes after
// the cache entry is dropped ("miss"): the difference is what the cache
// buys. Both verify the cookie.
func BenchmarkGet(b *testing.B) {
	for _, cached := range []bool{true, false} {
		name := "cached"
		if !cached {
			name = "miss"
		}
		b.Run(name, func(b *testing.B) {
			st, base, _ := benchSession(b)
			s, err := st.New(base, "s")
			if err != nil || s.IsNew {
				b.Fatalf("New: %v", err)
			}
			id := s.ID
			b.ReportAllocs()
			for b.Loop() {
				if !cached {
					gorillastore.ForgetValues(st, id)
				}
				r := new(http.Request)
				*r = *base
				if s, err := st.Get(r, "s"); err != nil || s.Values["user"] != "alice" {
					b.Fatalf("Get: %v", err)
				}
			}
		})
	}
}

func BenchmarkGetParallel(b *testing.B) {
	st, base, _ := benchSession(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := new(http.Request)
			*r = *base
			if s, err := st.Get(r, "s"); err != nil || s.Values["user"] != "alice" {
				b.Errorf("Get: %v", err)
				return
			}
		}
	})
}

func BenchmarkGetModifySave(b *testing.B) {
	st, base, e := benchSession(b)
	w := &discard{h: http.Header{}}
	before := e.stmts.N()
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		r := new(http.Request)
		*r = *base
		s, err := st.Get(r, "s")
		if err != nil {
			b.Fatal(err)
		}
		n++
		s.Values["visits"] = n
		clear(w.h)
		if err := s.Save(r, w); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(e.stmts.N()-before)/float64(n), "stmts/op")
}
