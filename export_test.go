package gormsession

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// Sync polls the change feed now, as the Manager's sync loop does every
// SyncInterval. It is for tests.
func (m *Manager) Sync(ctx context.Context) error {
	if m.sync == nil {
		return errors.New("gormsession: Sync: the Manager has no SyncInterval")
	}
	return m.poll(ctx)
}

// IndexedIDs returns how many session IDs the user index holds for userID.
// It is for tests.
func (m *Manager) IndexedIDs(userID string) int { return len(m.users.ids(userID)) }

// JournalState returns the revocations the journal at path holds, one
// line each with its sequence, sorted. The journal must not be in use. It
// is for tests.
func JournalState(path string) ([]string, error) {
	j, recs, err := openJournalFile(path)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = fmt.Sprintf("%d %+v", r.seq, r.r)
	}
	slices.Sort(out)
	return out, j.close()
}

// StopBackground ends m's background work (polls, retries, cleanup) and
// waits for it, leaving m open: the journal is then written only by the
// calls the test makes. It is for tests.
func (m *Manager) StopBackground() {
	m.cancel()
	m.wg.Wait()
}

// Crash stops m as a crash of its process would: the background work
// ends, the journal is closed (its lock released), and nothing is written
// to the Backend. It is for tests.
func (m *Manager) Crash() {
	if !m.closed.CompareAndSwap(false, true) {
		return
	}
	m.cancel()
	m.wg.Wait()
	_ = m.pending.close()
}

// SetMaxPendingRevocations lowers how many revocations m queues at most
// (MaxPendingRevocations), so that a test can reach the bound without
// journaling 10,000 of them. It is for tests.
func (m *Manager) SetMaxPendingRevocations(n int) {
	m.mu.Lock()
	m.cl.maxJobs = n
	m.mu.Unlock()
}
