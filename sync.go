package gormsession

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

const (
	defaultSyncInterval    = time.Second
	defaultReadThroughRate = 100
	readThroughTimeout     = time.Second
	negativeCacheSize      = 10_000
	listenRetryPause       = time.Second
	// clockResolution is the coarsest precision of a database's clock
	// (SQLite's is a millisecond), within which a measured offset is noise.
	clockResolution = time.Millisecond
	// defaultResyncInterval is ManagerOptions.ResyncInterval's default
	// for a feed that is not ordered by commit.
	defaultResyncInterval = 5 * time.Minute
	// minTombstoneIntervals is how many SyncIntervals the Backend's
	// TombstoneTTL must span at least: a Manager reloads everything when
	// its reads of the feed are further apart than half the TTL, which a
	// healthy instance must never be.
	minTombstoneIntervals = 10
)

// syncState is what a Manager that shares its database with other
// instances keeps.
type syncState struct {
	feed    ChangeFeed
	limiter *rate.Limiter
	wake    chan struct{}

	// pollMu serializes polls of the change feed. It is held across the
	// poll's query, but only polls wait for it: requests never do.
	pollMu     sync.Mutex
	cursor     int64     // where the next poll reads from
	read       time.Time // the database's clock at the last successful read
	lastResync time.Time // the database's clock at the last full reload
}

func newSyncState(feed ChangeFeed, opts *ManagerOptions) *syncState {
	return &syncState{
		feed:    feed,
		limiter: rate.NewLimiter(rate.Limit(opts.ReadThroughRate), max(1, int(opts.ReadThroughRate))),
		wake:    make(chan struct{}, 1),
	}
}

// applyChange applies a change read from the Backend to memory: a
// revocation drops the session, a live session is added or replaces an
// older version of it (by version, never by comparing clocks). Anonymous
// sessions are only kept up to date when resident: other instances'
// visitors are read here when they come, not as they are created.
func (m *Manager) applyChange(s *Session, revoked bool) error {
	switch {
	case revoked:
		m.recordRevoked(s.ID)
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

// poll reads the changes other instances committed since the last
// successful poll and applies them. Polls are serialized. When the last
// successful read is older than half the Backend's TombstoneTTL (by the
// database's clock), revocations may have left the feed unseen, so it
// reloads every session instead; so it does every ResyncInterval on a
// feed that is not ordered by commit.
func (m *Manager) poll(ctx context.Context) error {
	st := m.sync
	st.pollMu.Lock()
	defer st.pollMu.Unlock()
	// The time spent applying changes is not part of the round trip that
	// the database's clock is measured across.
	var applying time.Duration
	apply := func(s *Session, revoked bool) error {
		t := time.Now()
		err := m.applyChange(s, revoked)
		applying += time.Since(t)
		return err
	}
	start := m.opts.Now()
	pos, err := st.feed.Changes(ctx, st.cursor, apply)
	m.metrics.syncDone(err, m.now())
	if err != nil {
		return err
	}
	m.measure(start, applying, pos.Now)
	stale := pos.Now.Sub(st.read) > st.feed.TombstoneTTL()/2
	due := !pos.Ordered && m.opts.ResyncInterval > 0 && pos.Now.Sub(st.lastResync) >= m.opts.ResyncInterval
	if stale || due {
		return m.resync(ctx)
	}
	st.cursor, st.read = pos.Cursor, pos.Now
	m.misses.prune(m.now().UnixNano())
	return nil
}

// measure records the database's clock, dbNow, read by a call that began
// at start by the Manager's own clock and spent busy of its time on other
// work: the offset between the two clocks, taken at the middle of the
// round trip, is applied to every time the Manager tells. The database's
// clock was read somewhere within the round trip, so the offset is known
// to within half of it; an offset no larger than that cannot be told from
// none, and is taken as none, so that instances whose clocks agree (on one
// machine, or kept by NTP) tell exactly the same time.
func (m *Manager) measure(start time.Time, busy time.Duration, dbNow time.Time) {
	rtt := max(0, m.opts.Now().Sub(start)-busy)
	offset := dbNow.Sub(start.Add(rtt / 2))
	if offset.Abs() <= rtt/2+clockResolution {
		offset = 0
	}
	m.offset.Store(int64(offset))
	m.uncertainty.Store(int64(rtt/2 + clockResolution))
}

// head reads the feed's position before a load, so that the first poll
// reads every change committed after it, and measures the database's
// clock.
func (m *Manager) head(ctx context.Context, feed ChangeFeed) (FeedPosition, error) {
	start := m.opts.Now()
	pos, err := feed.Head(ctx)
	if err != nil {
		return FeedPosition{}, fmt.Errorf("gormsession: read the change feed: %w", err)
	}
	m.measure(start, 0, pos.Now)
	return pos, nil
}

// follow makes the next poll read from pos, taken before a load.
func (st *syncState) follow(pos FeedPosition) {
	st.cursor, st.read, st.lastResync = pos.Cursor, pos.Now, pos.Now
}

// resync reloads every session after a long outage, and drops from memory
// the sessions the Backend no longer has. The next poll reads from where
// the reload began. pollMu is held.
func (m *Manager) resync(ctx context.Context) error {
	pos, err := m.head(ctx, m.sync.feed)
	if err != nil {
		return err
	}
	// What memory held before the reload: a session stored before it
	// began and not in it is gone. One stored meanwhile (a Create, a
	// read-through) is not in it either, and must stay.
	held := make(map[string]*entry, m.signedIn())
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.RLock()
		for e := range sh.m.all() {
			held[e.id()] = e
		}
		sh.mu.RUnlock()
	}
	// Anonymous sessions are read again when next used.
	m.anon.purge()
	present := make(map[string]struct{}, len(held))
	err = m.backend.Stream(ctx, m.now(), func(s *Session) error {
		present[s.ID] = struct{}{}
		m.learn(s)
		return nil
	})
	if err != nil {
		return err
	}
	var gone []string
	for id, e := range held {
		if _, ok := present[id]; !ok && m.lookup(id) == e {
			gone = append(gone, id)
		}
	}
	m.recordRevoked(gone...)
	m.sync.follow(pos)
	m.metrics.resyncs.Add(1)
	return nil
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
