package gormsession_test

import (
	"context"
	"testing"
	"time"

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

// resident returns the number of sessions m holds in memory.
func resident(m *gormsession.Manager) int {
	st := m.Stats()
	return st.SignedIn + st.Anonymous
}

// setData, setTenant, setDevice and setExpiry change one field of the
// session id through Manager.Update.
func setData(m *gormsession.Manager, ctx context.Context, id string, data []byte) (gormsession.Session, error) {
	return m.Update(ctx, id, func(s *gormsession.Session) { s.Data = data })
}

func setTenant(m *gormsession.Manager, ctx context.Context, id, tenant string) (gormsession.Session, error) {
	return m.Update(ctx, id, func(s *gormsession.Session) { s.TenantID = tenant })
}

func setDevice(m *gormsession.Manager, ctx context.Context, id, device string) (gormsession.Session, error) {
	return m.Update(ctx, id, func(s *gormsession.Session) { s.Device = device })
}

func setExpiry(m *gormsession.Manager, ctx context.Context, id string, at time.Time) (gormsession.Session, error) {
	return m.Update(ctx, id, func(s *gormsession.Session) { s.ExpiresAt = at })
}

// streamAll returns every live signed-in session in b, expired or not.
func streamAll(t testing.TB, b gormsession.Backend) []gormsession.Session {
	t.Helper()
	var all []gormsession.Session
	if err := b.Stream(context.Background(), time.Time{}, func(s *gormsession.Session) error {
		all = append(all, *s)
		return nil
	}); err != nil {
		t.Fatalf("Stream: %v", err)
	}
	return all
}

// ownClock is a Backend with the Store's required methods only: no change
// feed, so a Manager on it tells time by its own clock (ManagerOptions.Now),
// which a test can then move.
type ownClock struct{ gormsession.Backend }

// sessionResult is what a Manager call that returns a session returned.
type sessionResult struct {
	s   gormsession.Session
	err error
}

// async runs call in a goroutine, so that a test can hold it at a fault
// and go on, and returns the channel its result arrives on (buffered:
// a test that looks early may put it back).
func async(call func() (gormsession.Session, error)) chan sessionResult {
	done := make(chan sessionResult, 1)
	go func() {
		s, err := call()
		done <- sessionResult{s, err}
	}()
	return done
}
