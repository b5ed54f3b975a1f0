package gormsession

// Anonymous sessions: those without a user, such as the ones gorillastore
// creates for every visitor. They live apart from signed-in sessions, so
// that no code path that authenticates can ever find one, and only a
// bounded number of them stay in memory: a flood of cookieless visitors
// costs rows, not memory.

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

const (
	// defaultMaxAnonymous is ManagerOptions.MaxAnonymous's default.
	defaultMaxAnonymous = 10_000
	// anonMissTTL is how long an anonymous token looked up in vain is
	// refused without another lookup.
	anonMissTTL = time.Second
)

// anonCache holds the most recently used anonymous sessions. An evicted one
// is read from the Backend by ID on its next use.
type anonCache struct {
	mu        sync.Mutex
	lru       *simplelru.LRU[string, *entry]
	evictions atomic.Int64
}

func newAnonCache(size int) *anonCache {
	c := &anonCache{}
	// NewLRU fails only for a size below 1, which withDefaults rules out.
	// No eviction callback: simplelru calls it for Remove and Purge too,
	// and only what Add pushes out to stay within size is an eviction.
	c.lru, _ = simplelru.NewLRU[string, *entry](size, nil)
	return c
}

// get returns the entry of id and marks it recently used.
func (c *anonCache) get(id string) *entry {
	c.mu.Lock()
	e, _ := c.lru.Get(id)
	c.mu.Unlock()
	return e
}

// peek returns the entry of id without marking it used.
func (c *anonCache) peek(id string) *entry {
	c.mu.Lock()
	e, _ := c.lru.Peek(id)
	c.mu.Unlock()
	return e
}

// put adds s, or replaces an older version of it, and returns the entry
// now held; as Manager.put does for signed-in sessions.
func (c *anonCache) put(s *Session) *entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.lru.Peek(s.ID); ok && e.version >= s.Version {
		e.seen(s.UpdatedAt.UnixNano())
		return e
	} else if ok {
		ne := newEntry(s, "")
		ne.seen(e.updated.Load())
		c.lru.Add(s.ID, ne) // replaces e: no eviction
		return ne
	}
	e := newEntry(s, "")
	if c.lru.Add(s.ID, e) {
		c.evictions.Add(1)
	}
	return e
}

// remove drops id and reports whether it was held.
func (c *anonCache) remove(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Remove(id)
}

// len returns how many anonymous sessions are held.
func (c *anonCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// sweep removes the entries expired at now and returns how many.
func (c *anonCache) sweep(expired func(*entry) bool) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, id := range c.lru.Keys() {
		if e, ok := c.lru.Peek(id); ok && expired(e) {
			c.lru.Remove(id)
			n++
		}
	}
	return n
}

// purge drops every entry.
func (c *anonCache) purge() {
	c.mu.Lock()
	c.lru.Purge()
	c.mu.Unlock()
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
// verifying its cookie's signature (or finding the cookie to be one it
// issued); a token looked up in vain is not looked up again for a while.
func (m *Manager) ResolveAnonymous(ctx context.Context, token string) (s Session, ok bool) {
	if !ValidToken(token) {
		return Session{}, false
	}
	var buf [idLen]byte
	tokenID(token, &buf)
	id := string(buf[:])
	e := m.anon.get(id)
	if e == nil {
		e = m.readAnonymous(ctx, id)
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
