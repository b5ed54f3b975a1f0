package gormsession_test

import (
	"context"
	"testing"

	"github.com/gormsession/gormsession"
)

// newManager returns a Manager on b that is closed when the test ends.
func newManager(t testing.TB, b gormsession.Backend, opts gormsession.ManagerOptions) *gormsession.Manager {
	t.Helper()
	m, err := gormsession.NewManager(context.Background(), b, opts)
	if err != nil {
		t.Fatalf("NewManager: %v", err)
	}
	// Some tests take the database away under the Manager on purpose;
	// Close then reports the writes it could not make, which is no failure
	// of theirs. Tests that care about Close's error call it themselves.
	t.Cleanup(func() { _ = m.Close() })
	return m
}
