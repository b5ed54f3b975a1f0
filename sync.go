package gormsession

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

const (
	defaultSyncInterval    = time.Second
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
	limiter *rate.Limiter
	wake    chan struct{}

	// pollMu serializes polls of the change feed. It is held across the
	// poll's query, but only polls wait for it: requests never do.
	pollMu sync.Mutex
	since  time.Time // where the next poll reads from
}

func newSyncState(feed ChangeFeed, opts *ManagerOptions) *syncState {
	return &syncState{
		feed:    feed,
		limiter: rate.NewLimiter(rate.Limit(opts.ReadThroughRate), max(1, int(opts.ReadThroughRate))),
		wake:    make(chan struct{}, 1),
	}
}

// readThrough looks up a session unknown in memory in the Backend, within
// the rate limit and unless it was looked up in vain recently, and keeps it
// in memory when found.
func (m *Manager) readThrough(ctx context.Context, id string) *entry {
	st := m.sync
	now := m.now().UnixNano()
	if m.anon.peek(id) != nil {
		return nil // anonymous: never authenticates
	}
	if m.misses.recent(id, now) || !st.limiter.Allow() {
		m.metrics.refused.Add(1)
		return nil
	}
	s, found := m.fetch(ctx, id, m.opts.SyncInterval)
	if !found {
		return nil
	}
	e := m.learn(&s)
	if s.UserID == "" {
		// Kept among the anonymous sessions, where the next Resolve of
		// the token finds it without a query, and refused: anonymous
		// sessions never authenticate (see ResolveAnonymous).
		return nil
	}
	return e
}

// fetch reads the session id, whose token is not in memory, from the
// Backend; an ID not found there is refused without a lookup for ttl.
func (m *Manager) fetch(ctx context.Context, id string, ttl time.Duration) (Session, bool) {
	m.metrics.lookups.Add(1)
	ctx, cancel := context.WithTimeout(ctx, readThroughTimeout)
	s, found, err := m.backend.Get(ctx, id)
	cancel()
	if err != nil {
		m.log.Warn("gormsession: lookup of a token not in memory failed", "id", id, "err", err)
		return Session{}, false
	}
	if !found {
		m.misses.add(id, m.now().UnixNano()+int64(ttl))
	}
	return s, found
}

// applyChange applies a change read from the Backend to memory: a
// revocation drops the session, a live session is added or replaces an
// older version of it (by version, never by comparing clocks). Anonymous
// sessions are only kept up to date when resident: other instances'
// visitors are read here when they come, not as they are created.
func (m *Manager) applyChange(s *Session, revoked bool) error {
	switch {
	case revoked:
		m.forget(s.ID)
	case s.UserID != "" || m.anon.peek(s.ID) != nil:
		m.learn(s)
	}
	return nil
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
		if err := m.poll(ctx); err != nil && ctx.Err() == nil {
			m.log.Error("gormsession: sync", "err", err)
		}
	}
}

// poll reads the changes other instances made since the last successful
// poll and applies them. Polls are serialized.
func (m *Manager) poll(ctx context.Context) error {
	st := m.sync
	st.pollMu.Lock()
	defer st.pollMu.Unlock()
	start := m.now()
	var err error
	// Since the last successful poll (or the load).
	if start.Sub(time.Unix(0, m.metrics.lastSync.Load())) > resyncAfter {
		err = m.resync(ctx, start)
	} else {
		err = st.feed.Changes(ctx, st.since, m.applyChange)
	}
	m.metrics.syncDone(err, start)
	if err != nil {
		return err
	}
	st.since = start.Add(-m.opts.SyncOverlap)
	m.misses.prune(start.UnixNano())
	return nil
}

// resync reloads every session after a long outage, and drops from memory
// the sessions older than the reload that the Backend no longer has.
func (m *Manager) resync(ctx context.Context, start time.Time) error {
	// Anonymous sessions are read again when next used.
	m.anon.purge()
	present := make(map[string]struct{}, m.resident())
	err := m.backend.Stream(ctx, start, func(s *Session) error {
		present[s.ID] = struct{}{}
		m.learn(s)
		return nil
	})
	if err != nil {
		return err
	}
	var gone []string
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.RLock()
		for e := range sh.m.all() {
			if _, ok := present[e.id()]; !ok && e.created < start.UnixNano() {
				gone = append(gone, e.id())
			}
		}
		sh.mu.RUnlock()
	}
	m.forget(gone...)
	return nil
}

// missCache remembers the IDs looked up in the Backend in vain, so that a
// token replayed or guessed again does not cost another query for a while.
type missCache struct {
	mu sync.Mutex
	m  map[string]int64 // ID → until when (unix ns)
}

// recent reports whether id was looked up in vain and that is still fresh
// at now.
func (c *missCache) recent(id string, now int64) bool {
	c.mu.Lock()
	until, ok := c.m[id]
	c.mu.Unlock()
	return ok && now < until
}

// add remembers a vain lookup of id until the given time.
func (c *missCache) add(id string, until int64) {
	c.mu.Lock()
	if len(c.m) >= negativeCacheSize {
		clear(c.m)
	}
	c.m[id] = until
	c.mu.Unlock()
}

// prune forgets the lookups that have run out.
func (c *missCache) prune(now int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, until := range c.m {
		if until <= now {
			delete(c.m, id)
		}
	}
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
