package gormsession_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gormsession/gormsession"
)

// benchJournalOpts are the options of a Manager that journals and never
// retries on its own.
func benchJournalOpts(path string) gormsession.ManagerOptions {
	return gormsession.ManagerOptions{
		Journal: path, SyncInterval: -1, RetryInterval: time.Hour, CleanupInterval: -1,
		Logger: discardLogger(),
	}
}

// BenchmarkJournaledRevoke measures one revocation the database refuses:
// its record written to the journal on disk and synced before Revoke
// returns.
//
//	go test -run '^$' -bench BenchmarkJournaledRevoke -benchtime 2000x -benchmem .
func BenchmarkJournaledRevoke(b *testing.B) {
	f := newFaulty(newStore(b, newSQLite(b), nil))
	m := newManager(b, f, benchJournalOpts(filepath.Join(b.TempDir(), "revocations.journal")))
	f.fail("Revoke", true)
	ids := make([]string, b.N)
	for i := range ids {
		ids[i] = gormsession.HashToken(gormsession.NewToken())
	}
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		if err := m.Revoke(ctx, ids[i]); !errors.Is(err, gormsession.ErrNotPersisted) {
			b.Fatalf("Revoke = %v", err)
		}
	}
}

// BenchmarkStartWithPendingRevocations measures NewManager on a journal
// that holds 10,000 revocations, with the database refusing them (they
// are read, applied in memory and tried once).
//
//	go test -run '^$' -bench BenchmarkStartWithPendingRevocations -benchtime 5x .
func BenchmarkStartWithPendingRevocations(b *testing.B) {
	const pending = 10_000
	f := newFaulty(newStore(b, newSQLite(b), nil))
	// The journal is written in memory when the machine has /dev/shm
	// (each record is synced), then copied to disk.
	dir := b.TempDir()
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if d, err := os.MkdirTemp("/dev/shm", "gormsession-bench-"); err == nil {
			dir = d
			b.Cleanup(func() { _ = os.RemoveAll(d) })
		}
	}
	built := filepath.Join(dir, "built.journal")
	m, err := gormsession.NewManager(context.Background(), f, benchJournalOpts(built))
	if err != nil {
		b.Fatal(err)
	}
	f.fail("Revoke", true)
	for range pending {
		if err := m.Revoke(context.Background(), gormsession.HashToken(gormsession.NewToken())); !errors.Is(err, gormsession.ErrNotPersisted) {
			b.Fatalf("Revoke = %v", err)
		}
	}
	_ = m.Close()
	data, err := os.ReadFile(built)
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "revocations.journal")
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		if err := os.WriteFile(path, data, 0o600); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		m, err := gormsession.NewManager(context.Background(), f, benchJournalOpts(path))
		if err != nil {
			b.Fatal(err)
		}
		if n := m.Stats().PendingRevocations; n != pending {
			b.Fatalf("%d pending after start, want %d", n, pending)
		}
		b.StopTimer()
		_ = m.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(len(data)), "journal-bytes")
}
