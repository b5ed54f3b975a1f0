package gormsession_test

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/gormsession/gormsession"
)

// BenchmarkResolveAnonymousParallel resolves resident anonymous sessions
// from GOMAXPROCS goroutines, each on its own share of 1,024 sessions, as
// visitors with different cookies reach a busy server: what they contend
// for is the Manager's memory, not a session.
func BenchmarkResolveAnonymousParallel(b *testing.B) {
	ctx := context.Background()
	m := newManager(b, newStore(b, newSQLite(b), nil), gormsession.ManagerOptions{CleanupInterval: -1, SyncInterval: -1})
	tokens := make([]string, 1024)
	for i := range tokens {
		s, err := m.Create(ctx, gormsession.Attributes{Data: []byte("visits=3")})
		if err != nil {
			b.Fatal(err)
		}
		tokens[i] = s.Token
	}
	procs := runtime.GOMAXPROCS(0)
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		// Goroutine g takes the tokens g, g+procs, g+2*procs, ...
		i := int(next.Add(1)-1) % procs
		for pb.Next() {
			if _, ok := m.ResolveAnonymous(ctx, tokens[i]); !ok {
				b.Error("an anonymous session does not resolve")
				return
			}
			if i += procs; i >= len(tokens) {
				i %= procs
			}
		}
	})
}
