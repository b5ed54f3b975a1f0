package benchmarks

import (
	"strings"
	"testing"

	"github.com/gormsession/gormsession/internal/testdb"
)

// fixture is one store on one database, with a saved session.
type fixture struct {
	sub    subject
	stmts  *testdb.Counter
	cookie string // the Cookie header of the saved session
}

// eachStore runs bench for every store on every database, as
// Benchmark<Op>/<database>/<store>.
func eachStore(b *testing.B, bench func(b *testing.B, f *fixture)) {
	for _, d := range databases {
		b.Run(d.name, func(b *testing.B) {
			for _, st := range stores {
				b.Run(st.name, func(b *testing.B) {
					stmts := testdb.NewCounter()
					db, table := d.open(b, stmts, st.fixedTable)
					f := &fixture{sub: st.open(b, db, table), stmts: stmts}
					f.cookie = newSession(b, f.sub)
					bench(b, f)
				})
			}
		})
	}
}

// run measures op over b.N iterations and reports the SQL statements per
// operation.
func (f *fixture) run(b *testing.B, op func(i int)) {
	b.ReportAllocs()
	before := f.stmts.N()
	n := 0
	for b.Loop() {
		op(n)
		n++
	}
	b.ReportMetric(float64(f.stmts.N()-before)/float64(n), "stmts/op")
}

// BenchmarkGet reads a session whose cookie the request carries.
func BenchmarkGet(b *testing.B) {
	eachStore(b, func(b *testing.B, f *fixture) {
		base := baseRequest(f.cookie)
		w := newWriter()
		f.run(b, func(int) {
			user, err := f.sub.get(w, request(base))
			if err != nil || user != "alice" {
				b.Fatalf("get: %v, %v", user, err)
			}
		})
	})
}

// BenchmarkGetModifySave reads a session, changes a value and saves it.
func BenchmarkGetModifySave(b *testing.B) {
	eachStore(b, func(b *testing.B, f *fixture) {
		base := baseRequest(f.cookie)
		w := newWriter()
		kv := map[string]any{"visits": 0}
		f.run(b, func(i int) {
			clear(w.h)
			kv["visits"] = i
			if err := f.sub.getSet(w, request(base), kv); err != nil {
				b.Fatalf("get+save: %v", err)
			}
		})
	})
}

// BenchmarkGetSaveUnchanged handles a request that reads its session and
// saves it without changing a value, as middleware that saves on every
// request does.
func BenchmarkGetSaveUnchanged(b *testing.B) {
	eachStore(b, func(b *testing.B, f *fixture) {
		base := baseRequest(f.cookie)
		w := newWriter()
		kv := map[string]any{"visits": 1}
		f.run(b, func(int) {
			clear(w.h)
			if err := f.sub.getSet(w, request(base), kv); err != nil {
				b.Fatalf("get+save: %v", err)
			}
		})
	})
}

// BenchmarkNewSession handles a request without a cookie: a new session
// with a few values, saved.
func BenchmarkNewSession(b *testing.B) {
	eachStore(b, func(b *testing.B, f *fixture) {
		base := baseRequest("")
		w := newWriter()
		f.run(b, func(int) {
			clear(w.h)
			if err := f.sub.getSet(w, request(base), values); err != nil {
				b.Fatalf("new session: %v", err)
			}
		})
	})
}

// BenchmarkGetParallel reads one session from GOMAXPROCS goroutines.
func BenchmarkGetParallel(b *testing.B) {
	eachStore(b, func(b *testing.B, f *fixture) {
		base := baseRequest(f.cookie)
		b.ReportAllocs()
		before := f.stmts.N()
		b.RunParallel(func(pb *testing.PB) {
			w := newWriter()
			for pb.Next() {
				user, err := f.sub.get(w, request(base))
				if err != nil || user != "alice" {
					b.Errorf("get: %v, %v", user, err)
					return
				}
			}
		})
		b.ReportMetric(float64(f.stmts.N()-before)/float64(b.N), "stmts/op")
	})
}

// TestStoresRoundTrip checks, on every database, that every store keeps a
// value from one request to the next, that its Get reads what its Save
// wrote, and that gormsession's store needs no statement to read, one to
// save a change and none to save unchanged values. It keeps the benchmarks
// honest and the module compiling.
func TestStoresRoundTrip(t *testing.T) {
	for _, d := range databases {
		t.Run(d.name, func(t *testing.T) {
			for _, st := range stores {
				t.Run(st.name, func(t *testing.T) {
					stmts := testdb.NewCounter()
					db, table := d.open(t, stmts, st.fixedTable)
					sub := st.open(t, db, table)
					cookie := newSession(t, sub)
					if st.name == "floor" {
						// The floor keeps no values, only its one statement.
						w := newWriter()
						before := stmts.N()
						if err := sub.getSet(w, baseRequest(cookie), map[string]any{"user": "bob"}); err != nil || stmts.N()-before != 1 {
							t.Fatalf("floor save: %v after %d statements; want 1", err, stmts.N()-before)
						}
						return
					}
					before := stmts.N()
					user, err := sub.get(newWriter(), baseRequest(cookie))
					if err != nil || user != "alice" {
						t.Fatalf("get: %v, %v; want alice", user, err)
					}
					getStmts := stmts.N() - before

					w := newWriter()
					before = stmts.N()
					if err := sub.getSet(w, baseRequest(cookie), map[string]any{"user": "bob"}); err != nil {
						t.Fatalf("save: %v", err)
					}
					saveStmts := stmts.N() - before
					next := cookie
					if st.name == "gorilla-cookiestore" {
						next = newCookie(t, w)
					}
					if user, err := sub.get(newWriter(), baseRequest(next)); err != nil || user != "bob" {
						t.Fatalf("get after save: %v, %v; want bob", user, err)
					}
					before = stmts.N()
					if err := sub.getSet(newWriter(), baseRequest(next), map[string]any{"user": "bob"}); err != nil {
						t.Fatalf("unchanged save: %v", err)
					}
					unchangedStmts := stmts.N() - before
					if st.name == "gormsession" && (getStmts != 0 || saveStmts != 1 || unchangedStmts != 0) {
						t.Fatalf("gormsession: %d statements per Get, %d per Get+Save, %d per unchanged Get+Save; want 0, 1 and 0",
							getStmts, saveStmts, unchangedStmts)
					}
					if st.usesDB && saveStmts == 0 {
						t.Fatalf("%s saved without a statement: the counter does not see it", st.name)
					}
					t.Logf("%s: %d statements per Get, %d per Get+Save, %d per unchanged Get+Save", st.name, getStmts, saveStmts, unchangedStmts)
				})
			}
		})
	}
}

func newCookie(t *testing.T, w *writer) string {
	t.Helper()
	h := w.h.Values("Set-Cookie")
	if len(h) != 1 {
		t.Fatalf("Set-Cookie %q, want one", h)
	}
	c, _, _ := strings.Cut(h[0], ";")
	return c
}

// TestAsyncCommitParameterReachesTheServer checks that the
// postgres-async-commit database really runs with synchronous_commit off.
func TestAsyncCommitParameterReachesTheServer(t *testing.T) {
	for _, d := range databases {
		if !strings.HasPrefix(d.name, "postgres") {
			continue
		}
		t.Run(d.name, func(t *testing.T) {
			db, _ := d.open(t, testdb.NewCounter(), false)
			var got string
			if err := db.Raw("SHOW synchronous_commit").Scan(&got).Error; err != nil {
				t.Fatal(err)
			}
			want := "on"
			if strings.HasSuffix(d.name, "async-commit") {
				want = "off"
			}
			if got != want {
				t.Fatalf("synchronous_commit = %q, want %q", got, want)
			}
		})
	}
}
