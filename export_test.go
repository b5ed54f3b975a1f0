package gormsession

import (
	"context"
	"errors"
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
