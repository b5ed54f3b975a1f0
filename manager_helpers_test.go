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
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("close the Manager: %v", err)
		}
	})
	return m
}
