package gormsession

import (
	"sync"
	"sync/atomic"
	"time"
)

// Stats is a snapshot of a Manager's state, for metrics and health checks.
// Counters count from NewManager.
type Stats struct {
	// SignedIn is the number of signed-in sessions in memory, including
	// expired ones not yet cleaned up.
	SignedIn int
	// Anonymous is the number of anonymous sessions in memory (at most
	// ManagerOptions.MaxAnonymous).
	Anonymous int
	// AnonymousEvictions counts anonymous sessions evicted from memory to
	// stay within MaxAnonymous.
	AnonymousEvictions int64
	// PendingRevocations is the number of revocations the Backend has not
	// yet acknowledged (see ErrNotPersisted).
	PendingRevocations int
	// Syncing reports whether the Manager reads a change feed (SyncInterval).
	Syncing bool
	// LastSync is when a poll of the change feed last succeeded (the
	// start, before the first poll); zero when not Syncing.
	LastSync time.Time
	// SyncErrors counts failed polls of the change feed.
	SyncErrors int64
	// LastSyncError is the error of the last failed poll, nil when the
	// last poll succeeded.
	LastSyncError error
	// Lookups counts Backend lookups of tokens not in memory: read-through
	// of signed-in sessions created elsewhere, and anonymous sessions read
	// back after eviction.
	Lookups int64
	// ClockOffset is the database's clock minus this instance's clock, as
	// last measured (at start and with every poll of the change feed). The
	// Manager tells time by the database's clock; a large offset is worth
	// an alert, since it means this machine's clock is wrong.
	ClockOffset time.Duration
	// Resyncs counts full reloads of the signed-in sessions: after the
	// change feed could not be read for half the Backend's TombstoneTTL,
	// and every ResyncInterval on a feed not ordered by commit.
	Resyncs int64
	// LookupsRefused counts tokens unknown in memory that were refused
	// without a lookup: signed-in lookups by the rate limit
	// (ReadThroughRate) or because they were looked up in vain moments
	// before, and anonymous ones (ResolveAnonymous) looked up in vain
	// moments before.
	LookupsRefused int64
}

// metrics are the Manager's counters behind Stats.
type metrics struct {
	lookups, refused, syncErrors, resyncs atomic.Int64
	lastSync                              atomic.Int64 // unix ns

	mu      sync.Mutex
	syncErr error
}

func (mt *metrics) syncDone(err error, at time.Time) {
	if err != nil {
		mt.syncErrors.Add(1)
	} else {
		mt.lastSync.Store(at.UnixNano())
	}
	mt.mu.Lock()
	mt.syncErr = err
	mt.mu.Unlock()
}

// Stats returns a snapshot of the Manager's state. It takes each shard's
// lock briefly; call it for a metrics scrape, not on every request.
func (m *Manager) Stats() Stats {
	st := Stats{
		SignedIn:           m.signedIn(),
		Anonymous:          m.anon.len(),
		AnonymousEvictions: m.anon.evictions.Load(),
		PendingRevocations: m.pending.len(),
		Syncing:            m.sync != nil,
		SyncErrors:         m.metrics.syncErrors.Load(),
		Lookups:            m.metrics.lookups.Load(),
		LookupsRefused:     m.metrics.refused.Load(),
		ClockOffset:        time.Duration(m.offset.Load()),
		Resyncs:            m.metrics.resyncs.Load(),
	}
	if st.Syncing {
		st.LastSync = time.Unix(0, m.metrics.lastSync.Load())
		m.metrics.mu.Lock()
		st.LastSyncError = m.metrics.syncErr
		m.metrics.mu.Unlock()
	}
	return st
}
