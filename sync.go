package gormsession

import (
	"context"
	"errors"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

const (
	defaultSyncOverlap     = 2 * time.Second
	defaultReadThroughRate = 100
	readThroughTimeout     = time.Second
	negativeCacheSize      = 10_000
	listenRetryPause       = time.Second
	// resyncAfter is how long polls may fail before the next successful
	// one reloads every session instead of reading changes: longer than
	// that, tombstones of revocations might have been cleaned up unseen.
	// It is well below the Store's default TombstoneTTL.
	resyncAfter = time.Hour
)

// syncState is what a Manager that shares its database with other
// instances keeps.
type syncState struct {
	feed    ChangeFeed
	getter  Getter // nil when the Backend cannot get by ID
	limiter *rate.Limiter
	wake    chan struct{}

	// mu orders the changes applied from the Backend with local
	// revocations; revoked holds the IDs revoked recently (unix ns).
	mu      sync.Mutex
	revoked map[string]int64

	negMu    sync.Mutex
	negative map[string]int64 // IDs looked up in vain, until when (unix ns)

	// Owned by the sync goroutine.
	since  time.Time
	lastOK time.Time
}

func newSyncState(feed ChangeFeed, b Backend, opts *ManagerOptions) *syncState {
	if opts.SyncOverlap <= 0 {
		opts.SyncOverlap = defaultSyncOverlap
	}
	if opts.ReadThroughRate <= 0 {
		opts.ReadThroughRate = defaultReadThroughRate
	}
	st := &syncState{
		feed:     feed,
		limiter:  rate.NewLimiter(rate.Limit(opts.ReadThroughRate), max(1, int(opts.ReadThroughRate))),
		wake:     make(chan struct{}, 1),
		revoked:  make(map[string]int64),
		negative: make(map[string]int64),
		lastOK:   time.Now(),
	}
	st.getter, _ = b.(Getter)
	return st
}

// readThrough looks up a session unknown in memory in the Backend, within
// the rate limit and unless it was looked up in vain recently, and keeps it
// in memory when found.
func (m *Manager) readThrough(ctx context.Context, id string) *entry {
	st := m.sync
	if st.getter == nil {
		return nil
	}
	now := m.now().UnixNano()
	st.negMu.Lock()
	until, miss := st.negative[id]
	st.negMu.Unlock()
	if miss && now < until {
		return nil
	}
	if !st.limiter.Allow() {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, readThroughTimeout)
	s, found, err := st.getter.Get(ctx, id)
	cancel()
	if err != nil {
		m.log.Warn("gormsession: read-through lookup failed", "id", id, "err", err)
		return nil
	}
	if !found {
		st.negMu.Lock()
		if len(st.negative) >= negativeCacheSize {
			clear(st.negative)
		}
		st.negative[id] = now + int64(m.opts.SyncInterval)
		st.negMu.Unlock()
		return nil
	}
	return m.applyChange(&s, false)
}

// applyChange applies a session read from the Backend to memory: a
// revocation drops it, a live session is added or replaces an older
// version. It returns the entry now in memory, if any.
func (m *Manager) applyChange(s *Session, revoked bool) *entry {
	st := m.sync
	st.mu.Lock()
	defer st.mu.Unlock()
	if revoked {
		st.revoked[s.ID] = m.now().UnixNano()
		m.drop(s.ID)
		return nil
	}
	if _, ok := st.revoked[s.ID]; ok {
		return nil
	}
	if s.Expired(m.now()) {
		m.drop(s.ID)
		return nil
	}
	sh := m.shardOf(s.ID)
	sh.mu.Lock()
	e := sh.m[s.ID]
	if e != nil && e.updated.Load() >= s.UpdatedAt.UnixNano() {
		sh.mu.Unlock()
		return e // memory is as new or newer
	}
	if e != nil {
		e = newEntry(s, e.user)
		sh.m[s.ID] = e
		sh.mu.Unlock()
		return e
	}
	sh.mu.Unlock()
	m.insert(s)
	return m.lookup(s.ID)
}

// syncLoop polls the ChangeFeed every SyncInterval, and at once when the
// Notifier wakes it.
func (m *Manager) syncLoop(ctx context.Context) {
	t := time.NewTicker(m.opts.SyncInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-m.sync.wake:
		}
		if err := m.Sync(ctx); err != nil && ctx.Err() == nil {
			m.log.Error("gormsession: sync", "err", err)
		}
	}
}

// Sync reads the changes other instances made since the last successful
// Sync and applies them. A Manager with SyncInterval calls it periodically;
// it is exported for tests and tools. It is an error on a Manager without
// SyncInterval.
func (m *Manager) Sync(ctx context.Context) error {
	st := m.sync
	if st == nil {
		return errors.New("gormsession: Sync: the Manager has no SyncInterval")
	}
	start := m.now()
	var err error
	if time.Since(st.lastOK) > resyncAfter {
		err = m.resync(ctx, start)
	} else {
		err = st.feed.Changes(ctx, st.since, func(s *Session, revoked bool) error {
			m.applyChange(s, revoked)
			return nil
		})
	}
	if err != nil {
		return err
	}
	st.since = start.Add(-m.opts.SyncOverlap)
	st.lastOK = time.Now()
	m.pruneSync(start)
	return nil
}

// resync reloads every session after a long outage, and drops from memory
// the sessions older than the reload that the Backend no longer has.
func (m *Manager) resync(ctx context.Context, start time.Time) error {
	streamer, ok := m.backend.(Streamer)
	if !ok {
		return m.sync.feed.Changes(ctx, time.Time{}, func(s *Session, revoked bool) error {
			m.applyChange(s, revoked)
			return nil
		})
	}
	present := make(map[string]struct{}, m.Len())
	err := streamer.Stream(ctx, start, func(s *Session) error {
		present[s.ID] = struct{}{}
		m.applyChange(s, false)
		return nil
	})
	if err != nil {
		return err
	}
	var gone []string
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.RLock()
		for id, e := range sh.m {
			if _, ok := present[id]; !ok && e.created < start.UnixNano() {
				gone = append(gone, id)
			}
		}
		sh.mu.RUnlock()
	}
	m.forget(gone...)
	return nil
}

// pruneSync forgets revocations and failed lookups that no change read
// from now on can contradict.
func (m *Manager) pruneSync(now time.Time) {
	st := m.sync
	keep := 4 * (m.opts.SyncInterval + m.opts.SyncOverlap + readThroughTimeout)
	cutoff := now.Add(-keep).UnixNano()
	st.mu.Lock()
	for id, at := range st.revoked {
		if at < cutoff {
			delete(st.revoked, id)
		}
	}
	st.mu.Unlock()
	st.negMu.Lock()
	for id, until := range st.negative {
		if until <= now.UnixNano() {
			delete(st.negative, id)
		}
	}
	st.negMu.Unlock()
}

// listen runs the Notifier until ctx is done, pausing after failures.
func (m *Manager) listen(ctx context.Context) {
	wake := func() {
		select {
		case m.sync.wake <- struct{}{}:
		default:
		}
	}
	for {
		err := m.opts.Notifier.Listen(ctx, wake)
		if ctx.Err() != nil {
			return
		}
		m.log.Warn("gormsession: change notifications interrupted", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(listenRetryPause):
		}
	}
}
