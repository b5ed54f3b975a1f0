package gormsession

// Anonymous sessions: those without a user, such as the ones gorillastore
// creates for every visitor. They live apart from signed-in sessions, so
// that no code path that authenticates can ever find one, and only a
// bounded number of them stay in memory: a flood of cookieless visitors
// costs rows, not memory.

import (
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

// anonCache holds the most recently used anonymous sessions, in shards:
// a simplelru each, under a lock of its own, the shard chosen by the ID's
// first byte as the sessions map's is (IDs are hex SHA-256 digests, spread
// evenly). Every ResolveAnonymous marks its session used, a write to the
// LRU: under one lock every visitor's request on every core would wait its
// turn there. A second-chance clock read under a read lock would spare
// that write but not the read lock's counter, which every reader writes
// too, and it would be a structure of our own to get right; shards keep
// simplelru and split both. Each shard evicts its own least recently used
// session, which, the IDs being spread evenly, is among the least
// recently used of all.
//
// The shards' capacities add up to the cache's size exactly (they differ
// by one at most), so it never holds more than ManagerOptions.MaxAnonymous.
// A small cache has fewer shards, each of at least anonShardMin sessions,
// and one below 2*anonShardMin: a cache of size 1 holds one session.
// Each method takes one shard's lock at a time. An evicted session is read
// from the Backend by ID on its next use.
type anonCache struct {
	shards    []anonShard
	evictions atomic.Int64 // only what put pushed out to stay within size
}

// anonShard is one part of the anonymous cache, with its own lock.
type anonShard struct {
	mu  sync.Mutex
	lru *simplelru.LRU[string, *entry]
	_   [48]byte // keep neighbouring locks off one cache line
}

const (
	// anonShardsMax is the most shards an anonCache has (a power of two):
	// at the default size, 32 shards of 312 sessions.
	anonShardsMax = 32
	// anonShardMin is the fewest sessions a shard holds when there are
	// several: a shard much smaller than that would evict sessions that
	// a single LRU of the same total size keeps.
	anonShardMin = 64
)

func newAnonCache(size int) *anonCache {
	n := 1
	for n < anonShardsMax && size/(2*n) >= anonShardMin {
		n *= 2
	}
	c := &anonCache{shards: make([]anonShard, n)}
	for i := range c.shards {
		capacity := size / n
		if i < size%n {
			capacity++
		}
		// NewLRU fails only for a size below 1, which withDefaults
		// rules out (capacity >= 1 since n <= size). No eviction
		// callback: simplelru calls it for Remove and Purge too, and
		// only what Add pushes out to stay within size is an eviction.
		c.shards[i].lru, _ = simplelru.NewLRU[string, *entry](capacity, nil)
	}
	return c
}

// shard returns the shard of id: the one the low bits of its first hash
// byte pick, as Manager.shardOf picks a shard of the sessions map.
func (c *anonCache) shard(id string) *anonShard {
	var b byte
	if len(id) >= 2 {
		b = unhex(id[0])<<4 | unhex(id[1])
	}
	return &c.shards[int(b)&(len(c.shards)-1)]
}

// get returns the entry of id and marks it recently used. It keeps
// nothing of id, which may point into the caller's buffer
// (ResolveAnonymous).
func (c *anonCache) get(id string) *entry {
	sh := c.shard(id)
	sh.mu.Lock()
	e, _ := sh.lru.Get(id)
	sh.mu.Unlock()
	return e
}

// peek returns the entry of id without marking it used.
func (c *anonCache) peek(id string) *entry {
	sh := c.shard(id)
	sh.mu.Lock()
	e, _ := sh.lru.Peek(id)
	sh.mu.Unlock()
	return e
}

// put adds s, or replaces an older version of it, and returns the entry
// now held; as Manager.put does for signed-in sessions. Adding s may evict
// the least recently used session of its shard.
func (c *anonCache) put(s *Session) *entry {
	sh := c.shard(s.ID)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e, ok := sh.lru.Peek(s.ID); ok && e.version >= s.Version {
		e.seen(s.UpdatedAt.UnixNano())
		return e
	} else if ok {
		ne := newEntry(s, "")
		ne.seen(e.updated.Load())
		sh.lru.Add(s.ID, ne) // replaces e: no eviction
		return ne
	}
	e := newEntry(s, "")
	if sh.lru.Add(s.ID, e) {
		c.evictions.Add(1)
	}
	return e
}

// remove drops id and reports whether it was held.
func (c *anonCache) remove(id string) bool {
	sh := c.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.lru.Remove(id)
}

// len returns how many anonymous sessions are held: the sum of the
// shards', each read under its lock, so not one instant's count while
// sessions are added or removed.
func (c *anonCache) len() int {
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		n += sh.lru.Len()
		sh.mu.Unlock()
	}
	return n
}

// sweep removes the entries for which expired reports true and returns
// how many, one shard at a time.
func (c *anonCache) sweep(expired func(*entry) bool) int {
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		for _, id := range sh.lru.Keys() {
			if e, ok := sh.lru.Peek(id); ok && expired(e) {
				sh.lru.Remove(id)
				n++
			}
		}
		sh.mu.Unlock()
	}
	return n
}

// purge drops every entry, one shard at a time: an entry put meanwhile
// may stay, as one put just after a purge of the whole cache would.
func (c *anonCache) purge() {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		sh.lru.Purge()
		sh.mu.Unlock()
	}
}
