package gormsession

// The request path: resolving a token to its session. A signed-in
// session is found in the sharded map under one read lock, with no
// allocation; an anonymous one in the anonymous cache (anonymous.go). A
// token not in memory is looked up in the Backend by ID (read-through),
// within a rate limit, and an ID looked up in vain is remembered for a
// while (the miss cache), so that unknown tokens cannot become a flood of
// queries. Time on this path is told by a clock that costs half of
// time.Now.

import (
	"context"
	"encoding/hex"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// Resolve returns the signed-in session whose token is token. A known token
// is resolved from memory: no I/O, no allocation. A token of the wrong
// length is rejected before hashing, and a malformed one before any lookup
// in the Backend; expired, revoked, unknown and anonymous tokens are not
// found (see ResolveAnonymous for the latter).
//
// A token not in memory is looked up in the Backend with ctx, within
// ReadThroughRate, when the Manager reads a change feed (the session may
// have been created on another instance moments ago).
func (m *Manager) Resolve(ctx context.Context, token string) (s Session, ok bool) {
	if len(token) != tokenLen {
		return Session{}, false
	}
	sum := tokenDigest(token)
	sh := &m.shards[shardIndex(sum[0])]
	sh.mu.RLock()
	e := sh.m.getDigest(&sum)
	sh.mu.RUnlock()
	// Only an issued token can hash to a session held, so the shape of one
	// is checked only before a lookup in the Backend.
	if e == nil && m.sync != nil && ValidToken(token) {
		var id [idLen]byte
		hex.Encode(id[:], sum[:])
		e = m.readThrough(ctx, string(id[:]))
	}
	ok = m.use(e, &s)
	return s, ok
}

// ResolveAnonymous returns the anonymous session (one without a user)
// whose token is token. Signed-in sessions are never returned here, and
// anonymous ones never by Resolve: code that authenticates cannot mistake
// one for the other.
//
// The most recently used anonymous sessions (ManagerOptions.MaxAnonymous)
// are resolved from memory; any other is read from the Backend by ID, one
// indexed query, and kept. That read is not rate-limited, so the caller
// must have checked that the token is authentic, as gorillastore does by
// verifying its cookie's signature; a token looked up in vain is not
// looked up again for a while.
func (m *Manager) ResolveAnonymous(ctx context.Context, token string) (s Session, ok bool) {
	if !ValidToken(token) {
		return Session{}, false
	}
	var buf [idLen]byte
	tokenID(token, &buf)
	// The cache does not keep the key it is asked for, so the lookup reads
	// the ID in place; a read from the Backend keeps it, and gets a copy.
	e := m.anon.get(unsafe.String(&buf[0], len(buf)))
	if e == nil {
		e = m.readAnonymous(ctx, string(buf[:]))
	}
	ok = m.use(e, &s)
	return s, ok
}

// readAnonymous reads an anonymous session that is not in memory from the
// Backend and keeps it.
func (m *Manager) readAnonymous(ctx context.Context, id string) *entry {
	if m.misses.recent(id, m.now().UnixNano()) {
		m.metrics.refused.Add(1)
		return nil
	}
	s, found := m.fetch(ctx, id, anonMissTTL)
	if !found || s.UserID != "" {
		return nil
	}
	return m.learn(&s)
}

// Get returns the session with the given ID from memory, if it exists and
// is not expired. It does not count as activity for the idle timeout.
func (m *Manager) Get(id string) (Session, bool) {
	e := m.lookup(id)
	if e == nil || m.expired(e, m.nowNano()) {
		return Session{}, false
	}
	return e.session(), true
}

// use checks e, records activity for the idle timeout and, when e is
// valid, writes its session into s: in place, since a Session is too large
// to copy on every request.
func (m *Manager) use(e *entry, s *Session) bool {
	if e == nil {
		return false
	}
	now := m.nowNano()
	if m.expired(e, now) {
		return false
	}
	if m.opts.IdleTimeout > 0 {
		m.touch(e, now)
	}
	e.fill(s)
	return true
}

// expired reports whether e is expired at now (unix nanoseconds), by its
// expiry or by the idle timeout.
func (m *Manager) expired(e *entry, now int64) bool {
	if e.expires != 0 && now >= e.expires {
		return true
	}
	return m.idle(e.updated.Load(), now)
}

// idle reports whether a session last active at updated (unix ns) has
// passed the idle timeout at now.
func (m *Manager) idle(updated, now int64) bool {
	return m.opts.IdleTimeout > 0 && now-updated >= int64(m.opts.IdleTimeout)
}

// nowNano returns the current time in unix nanoseconds, for the request
// path: from the wallClock unless the clock was injected.
func (m *Manager) nowNano() int64 {
	if m.wall != nil {
		return m.wall.unixNano() + m.offset.Load()
	}
	return m.now().UnixNano()
}

// wallClock tells the time for about half the cost of time.Now, which
// reads two clocks: it reads the wall clock at most once a second and, in
// between, adds what the monotonic clock measured since. So a step of the
// wall clock (a correction by NTP) is seen within a second.
type wallClock struct {
	last atomic.Pointer[wallReading]
}

// wallReading is one reading of time.Now, with its wall time in unix
// nanoseconds.
type wallReading struct {
	at   time.Time // with its monotonic reading
	unix int64
}

// unixNano returns the current time in unix nanoseconds.
func (c *wallClock) unixNano() int64 {
	if r := c.last.Load(); r != nil {
		if d := time.Since(r.at); d >= 0 && d < time.Second {
			return r.unix + int64(d)
		}
	}
	now := time.Now()
	c.last.Store(&wallReading{at: now, unix: now.UnixNano()})
	return now.UnixNano()
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
		m.misses.add(id, m.now().UnixNano(), ttl)
	}
	return s, found
}

// missCache remembers the IDs looked up in the Backend in vain, so that a
// token replayed or guessed again does not cost another query for a while.
// It holds at most negativeCacheSize IDs: when full, the lookups that ran
// out leave it, and if none did it starts over (a flood of random tokens
// is then held back by the rate limit alone).
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

// add remembers a vain lookup of id, at now, for ttl.
func (c *missCache) add(id string, now int64, ttl time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= negativeCacheSize {
		c.pruneLocked(now)
		if len(c.m) >= negativeCacheSize {
			clear(c.m)
		}
	}
	c.m[id] = now + int64(ttl)
}

// prune forgets the lookups that have run out.
func (c *missCache) prune(now int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pruneLocked(now)
}

func (c *missCache) pruneLocked(now int64) {
	for id, until := range c.m {
		if until <= now {
			delete(c.m, id)
		}
	}
}
