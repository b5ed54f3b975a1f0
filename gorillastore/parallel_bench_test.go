package gorillastore_test

import (
	"errors"
	"net/http"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/gormsession/gormsession"
	"github.com/gormsession/gormsession/gorillastore"
)

// parallelSessions is how many visitors the parallel benchmarks serve.
const parallelSessions = 512

// parallelVisitors returns a Store on SQLite and, for each of n saved
// sessions with a few typical values, a request that carries its cookie.
func parallelVisitors(b *testing.B, n int) (*gorillastore.Store, []*http.Request) {
	b.Helper()
	e := newEnv(b, newSQLite(b), gormsession.ManagerOptions{})
	st := gorillastore.New(e.m, key(32))
	reqs := make([]*http.Request, n)
	for i := range reqs {
		reqs[i] = savedSession(b, st)
	}
	return st, reqs
}

// runVisitors runs visit from GOMAXPROCS goroutines, goroutine g on the
// requests g, g+GOMAXPROCS, g+2*GOMAXPROCS, ...: many visitors at once,
// none of them served by two goroutines, so that what the goroutines
// contend for is the Store and the Manager, not one session.
func runVisitors(b *testing.B, reqs []*http.Request, visit func(r *http.Request) error) {
	procs := runtime.GOMAXPROCS(0)
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(1)-1) % procs
		for pb.Next() {
			r := new(http.Request)
			*r = *reqs[i]
			if err := visit(r); err != nil {
				b.Error(err)
				return
			}
			if i += procs; i >= len(reqs) {
				i %= procs
			}
		}
	})
}

// BenchmarkParallelGet is Get from many goroutines at once, each on
// visitors of its own.
func BenchmarkParallelGet(b *testing.B) {
	st, reqs := parallelVisitors(b, parallelSessions)
	runVisitors(b, reqs, func(r *http.Request) error {
		s, err := st.Get(r, "s")
		if err == nil && (s.IsNew || s.Values["user"] != "alice") {
			err = errNotResolved
		}
		return err
	})
}

// BenchmarkParallelGetModifySave is a Get, a change of one value and a
// Save from many goroutines at once, each on visitors of its own.
func BenchmarkParallelGetModifySave(b *testing.B) {
	st, reqs := parallelVisitors(b, parallelSessions)
	runVisitors(b, reqs, func(r *http.Request) error {
		s, err := st.Get(r, "s")
		if err != nil {
			return err
		}
		if s.IsNew {
			return errNotResolved
		}
		visits, _ := s.Values["visits"].(int)
		s.Values["visits"] = visits + 1
		return s.Save(r, &discard{h: http.Header{}})
	})
}

// errNotResolved is the error of a Get that did not find the visitor's
// session.
var errNotResolved = errors.New("the visitor's session was not found")
