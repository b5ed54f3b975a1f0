package gormsession

// The Manager's memory: the sessions map, in shards with a lock each, and
// the index of each user's sessions.
//
// Lock order, for the whole package: syncState.pollMu (only polls take
// it, and it is the one lock held across I/O: the poll's query, a
// reload's stream), then Manager.mu (the claims, see revocations.go), then
// a shard's mu, then userIndex.mu, then the anonymous cache's shard lock
// (anonymous.go). A shard's dirtyMu (activity not yet written),
// missCache.mu and metrics.mu are taken alone. bbolt's own lock (the
// journal) is never taken with any of them held.
//
// The user index changes only under the lock of the shard whose entry it
// indexes, so that it always lists exactly the entries in the map.

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"iter"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unique"
	"unsafe"
)

// shard is one part of the sessions map, with its own lock. Padding keeps
// the locks of neighbouring shards off one cache line.
type shard struct {
	mu sync.RWMutex
	m  sessionMap

	dirtyMu sync.Mutex
	dirty   []string // IDs with activity not yet written (idle timeout only)

	_ [64]byte
}

// entry is a session in memory. Its ID is kept inline, so that a lookup
// that checks the ID reads no other memory; the user ID shares its bytes
// with the user index, labels are interned since devices and tenants
// repeat, and data is a pointer that is nil for the many sessions without a
// payload. Every field but updated is immutable after the entry is
// published; a change replaces the entry.
type entry struct {
	user    string // "" for an anonymous session
	labels  unique.Handle[labels]
	data    *[]byte // nil when empty
	created int64   // unix nanoseconds
	expires int64   // unix nanoseconds; 0 = never
	version int64
	updated atomic.Int64
	hexID   [idLen]byte
}

// labels are the descriptive fields of a session, interned together.
type labels struct{ tenant, device string }

// newEntry makes the entry of s, a session with a valid ID (see ValidID),
// for the given user ID.
func newEntry(s *Session, user string) *entry {
	e := &entry{
		user:    user,
		labels:  unique.Make(labels{tenant: s.TenantID, device: s.Device}),
		created: s.CreatedAt.UnixNano(),
		version: s.Version,
	}
	copy(e.hexID[:], s.ID)
	if len(s.Data) > 0 {
		data := s.Data // s may be reused by the caller
		e.data = &data
	}
	if !s.ExpiresAt.IsZero() {
		e.expires = s.ExpiresAt.UnixNano()
	}
	e.updated.Store(s.UpdatedAt.UnixNano())
	return e
}

// id returns the session's ID. The string shares the entry's memory, which
// never changes, so it costs no allocation.
func (e *entry) id() string { return unsafe.String(&e.hexID[0], idLen) }

// is reports whether e, found under the key of sum's first 8 bytes, is the
// session whose ID is the hex of sum: it compares the other 24 bytes, eight
// hex digits at a time (see hex8).
func (e *entry) is(sum *[sha256.Size]byte) bool {
	for i := 8; i < sha256.Size; i += 4 {
		if hex8(binary.BigEndian.Uint32(sum[i:])) != binary.BigEndian.Uint64(e.hexID[2*i:]) {
			return false
		}
	}
	return true
}

// hex8 returns the 8 lowercase hex digits of v as the bytes of a word,
// most significant first: what encoding/hex writes for v's 4 bytes, without
// a loop over them.
func hex8(v uint32) uint64 {
	x := uint64(v)
	// Give each 4-bit digit a byte of its own, in order.
	x = (x | x<<16) & 0x0000ffff0000ffff
	x = (x | x<<8) & 0x00ff00ff00ff00ff
	x = (x | x<<4) & 0x0f0f0f0f0f0f0f0f
	// Digits 10 to 15 (those that reach 16 when 6 is added) become 'a'
	// to 'f', the others '0' to '9'.
	letters := (x + 0x0606060606060606) >> 4 & 0x0101010101010101
	return x + 0x3030303030303030 + letters*('a'-'0'-10)
}

// session returns the entry as a Session (without Token). It does not
// allocate.
func (e *entry) session() Session {
	var s Session
	e.fill(&s)
	return s
}

// fill writes the entry into s, a zero Session, as session returns it.
func (e *entry) fill(s *Session) {
	l := e.labels.Value()
	s.ID = e.id()
	s.UserID = e.user
	s.TenantID, s.Device = l.tenant, l.device
	s.CreatedAt = time.Unix(0, e.created).UTC()
	s.UpdatedAt = time.Unix(0, e.updated.Load()).UTC()
	s.Version = e.version
	if e.data != nil {
		s.Data = *e.data
	}
	if e.expires != 0 {
		s.ExpiresAt = time.Unix(0, e.expires).UTC()
	}
}

// seen moves the entry's last activity forward to at (unix nanoseconds).
// Activity only ever moves forward, whatever order it is learnt in.
func (e *entry) seen(at int64) {
	for {
		cur := e.updated.Load()
		if at <= cur || e.updated.CompareAndSwap(cur, at) {
			return
		}
	}
}

// sessionMap maps the IDs of one shard's sessions to their entries. A key
// is the first 8 bytes of the ID's digest rather than the ID's 64
// characters: a probe hashes and compares one word, the map spends 8 bytes
// a key, and the entry's inline ID confirms the rest. The rare ID whose
// first 8 bytes equal those of an ID already held is kept in a second map,
// by its full ID; that map is empty but for a chance in billions.
type sessionMap struct {
	byPrefix map[uint64]*entry
	clashes  map[string]*entry
}

func newSessionMap() sessionMap {
	return sessionMap{byPrefix: make(map[uint64]*entry), clashes: make(map[string]*entry)}
}

// prefix returns the key of a valid ID: its first 8 digest bytes.
func prefix(id string) uint64 {
	var b [8]byte
	for i := range b {
		b[i] = unhex(id[2*i])<<4 | unhex(id[2*i+1])
	}
	return binary.LittleEndian.Uint64(b[:])
}

// get returns the entry of id, or nil.
func (sm *sessionMap) get(id string) *entry {
	if !ValidID(id) {
		return nil
	}
	if e := sm.byPrefix[prefix(id)]; e != nil && e.id() == id {
		return e
	}
	if len(sm.clashes) == 0 {
		return nil
	}
	return sm.clashes[id]
}

// getDigest returns the entry whose ID is the hex of sum, or nil. It does
// not allocate.
func (sm *sessionMap) getDigest(sum *[sha256.Size]byte) *entry {
	if e := sm.byPrefix[binary.LittleEndian.Uint64(sum[:8])]; e != nil && e.is(sum) {
		return e
	}
	if len(sm.clashes) == 0 {
		return nil
	}
	var id [idLen]byte
	hex.Encode(id[:], sum[:])
	return sm.clashes[string(id[:])]
}

// set puts e in the map, replacing the entry of the same ID if there is
// one.
func (sm *sessionMap) set(e *entry) {
	id := e.id()
	if _, ok := sm.clashes[id]; ok {
		sm.clashes[id] = e
		return
	}
	k := prefix(id)
	if cur := sm.byPrefix[k]; cur != nil && cur.id() != id {
		sm.clashes[id] = e
		return
	}
	sm.byPrefix[k] = e
}

// del removes the entry of id, if there is one.
func (sm *sessionMap) del(id string) {
	if e := sm.get(id); e == nil {
		return
	} else if k := prefix(id); sm.byPrefix[k] == e {
		delete(sm.byPrefix, k)
	} else {
		delete(sm.clashes, id)
	}
}

func (sm *sessionMap) len() int { return len(sm.byPrefix) + len(sm.clashes) }

// all yields every entry. The loop's body may delete the entry it is given.
func (sm *sessionMap) all() iter.Seq[*entry] {
	return func(yield func(*entry) bool) {
		for _, e := range sm.byPrefix {
			if !yield(e) {
				return
			}
		}
		for _, e := range sm.clashes {
			if !yield(e) {
				return
			}
		}
	}
}

// userIndex maps a user to their sessions.
type userIndex struct {
	mu sync.Mutex
	m  map[string]*userSessions
}

// userSessions is one user's entry in the index. id is immutable; entries
// is guarded by the index's mutex.
type userSessions struct {
	id      string
	entries []*entry
}

func shardIndex(b byte) int { return int(b) & (shardCount - 1) }

// shardOf returns the shard of a session ID: the one its first hash byte
// selects, as Resolve computes it.
func (m *Manager) shardOf(id string) *shard {
	var b byte
	if len(id) >= 2 {
		b = unhex(id[0])<<4 | unhex(id[1])
	}
	return &m.shards[shardIndex(b)]
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return 0
}

// lookup returns the entry of id, signed-in or anonymous, or nil.
func (m *Manager) lookup(id string) *entry {
	sh := m.shardOf(id)
	sh.mu.RLock()
	e := sh.m.get(id)
	sh.mu.RUnlock()
	if e == nil {
		e = m.anon.peek(id)
	}
	return e
}

// resident returns the number of sessions in memory, signed-in and
// anonymous, including expired ones not yet cleaned up.
func (m *Manager) resident() int {
	return m.signedIn() + m.anon.len()
}

// signedIn returns the number of signed-in sessions in memory.
func (m *Manager) signedIn() int {
	n := 0
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.RLock()
		n += sh.m.len()
		sh.mu.RUnlock()
	}
	return n
}

// put adds s to memory, or replaces the entry of an older version of it,
// and returns the entry now in memory. An entry of the same or a newer
// version stays; it only learns s's activity. Anonymous sessions go to the
// bounded cache of their own. A session whose ID no token can have (see
// ValidID) is not kept: put returns nil.
func (m *Manager) put(s *Session) *entry {
	if !ValidID(s.ID) {
		return nil
	}
	if s.UserID == "" {
		return m.anon.put(s)
	}
	sh := m.shardOf(s.ID)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e := sh.m.get(s.ID); e != nil {
		if e.version >= s.Version {
			e.seen(s.UpdatedAt.UnixNano())
			return e
		}
		return m.swap(sh, e, s)
	}
	e := newEntry(s, "")
	m.users.add(s.UserID, e)
	sh.m.set(e)
	return e
}

// swap replaces old with an entry for s, keeping the later activity of the
// two. sh is locked.
func (m *Manager) swap(sh *shard, old *entry, s *Session) *entry {
	e := newEntry(s, old.user)
	e.seen(old.updated.Load())
	sh.m.set(e)
	m.users.replace(old, e)
	return e
}

// drop removes the session with id from memory and reports whether it was
// there.
func (m *Manager) drop(id string) bool {
	sh := m.shardOf(id)
	sh.mu.Lock()
	e := sh.m.get(id)
	if e != nil {
		sh.m.del(id)
		m.users.remove(e)
	}
	sh.mu.Unlock()
	return m.anon.remove(id) || e != nil
}

// add records that e, a new entry not yet published, belongs to userID,
// and sets e's user to the index's copy of userID, so that the sessions of
// a user share one. The caller holds the lock of e's shard and has checked
// that e's ID is not in it.
func (u *userIndex) add(userID string, e *entry) {
	u.mu.Lock()
	defer u.mu.Unlock()
	rec := u.m[userID]
	if rec == nil {
		rec = &userSessions{id: userID}
		u.m[userID] = rec
	}
	e.user = rec.id
	rec.entries = append(rec.entries, e)
}

// replace puts e where old, an entry of the same session, was. The caller
// holds the lock of their shard.
func (u *userIndex) replace(old, e *entry) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if rec := u.m[old.user]; rec != nil {
		if i := slices.Index(rec.entries, old); i >= 0 {
			rec.entries[i] = e
		}
	}
}

// remove forgets e. The caller holds the lock of e's shard.
func (u *userIndex) remove(e *entry) {
	u.mu.Lock()
	defer u.mu.Unlock()
	rec := u.m[e.user]
	if rec == nil {
		return
	}
	if i := slices.Index(rec.entries, e); i >= 0 {
		rec.entries = slices.Delete(rec.entries, i, i+1)
	}
	if len(rec.entries) == 0 {
		delete(u.m, rec.id)
	}
}

// ids returns the session IDs of userID.
func (u *userIndex) ids(userID string) []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	rec := u.m[userID]
	if rec == nil {
		return nil
	}
	ids := make([]string, len(rec.entries))
	for i, e := range rec.entries {
		ids[i] = e.id()
	}
	return ids
}
