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

// JournalRecords returns how many revocations the journal at path holds.
// The journal must not be in use. It is for tests.
func JournalRecords(path string) (int, error) {
	j, recs, err := openJournalFile(path)
	if err != nil {
		return 0, err
	}
	return len(recs), j.close()
}
