package gormsession

// The Manager's memory: the sessions map, in shards with a lock each, and
// the index of each user's sessions.
//
// Lock order: Manager.mu, then a shard's mu, then userIndex.mu. The user
// index changes only under the lock of the shard whose entry it indexes, so
// that it always lists exactly the entries in the map.

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unique"
)

// shard is one part of the sessions map, with its own lock. Padding keeps
// the locks of neighbouring shards off one cache line.
type shard struct {
	mu sync.RWMutex
	m  map[string]*entry

	dirtyMu sync.Mutex
	dirty   []string // IDs with activity not yet written (idle timeout only)

	_ [64]byte
}

// entry is a session in memory. The user is shared with the user index,
// labels are interned since devices and tenants repeat, and data is a
// pointer that is nil for the many sessions without a payload. Every field
// but updated is immutable after the entry is published; a change replaces
// the entry.
type entry struct {
	id      string
	user    *userSessions // nil for an anonymous session
	labels  unique.Handle[labels]
	data    *[]byte // nil when empty
	created int64   // unix nanoseconds
	expires int64   // unix nanoseconds; 0 = never
	version int64
	updated atomic.Int64
}

// labels are the descriptive fields of a session, interned together.
type labels struct{ tenant, device string }

// userIndex maps a user to the IDs of their sessions.
type userIndex struct {
	mu sync.Mutex
	m  map[string]*userSessions
}

// userSessions is one user's entry in the index. id is immutable; ids is
// guarded by the index's mutex.
type userSessions struct {
	id  string
	ids []string
}

// newEntry makes the entry of s for the given user record.
func newEntry(s *Session, user *userSessions) *entry {
	e := &entry{
		id:      s.ID,
		user:    user,
		labels:  unique.Make(labels{tenant: s.TenantID, device: s.Device}),
		created: s.CreatedAt.UnixNano(),
		version: s.Version,
	}
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

// session returns the entry as a Session (without Token). It does not
// allocate.
func (e *entry) session() Session {
	l := e.labels.Value()
	s := Session{
		ID:        e.id,
		TenantID:  l.tenant,
		Device:    l.device,
		CreatedAt: time.Unix(0, e.created).UTC(),
		UpdatedAt: time.Unix(0, e.updated.Load()).UTC(),
		Version:   e.version,
	}
	if e.user != nil {
		s.UserID = e.user.id
	}
	if e.data != nil {
		s.Data = *e.data
	}
	if e.expires != 0 {
		s.ExpiresAt = time.Unix(0, e.expires).UTC()
	}
	return s
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
	e := sh.m[id]
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
		n += len(sh.m)
		sh.mu.RUnlock()
	}
	return n
}

// put adds s to memory, or replaces the entry of an older version of it,
// and returns the entry now in memory. An entry of the same or a newer
// version stays; it only learns s's activity. Anonymous sessions go to the
// bounded cache of their own.
func (m *Manager) put(s *Session) *entry {
	if s.UserID == "" {
		return m.anon.put(s)
	}
	sh := m.shardOf(s.ID)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e := sh.m[s.ID]; e != nil {
		if e.version >= s.Version {
			e.seen(s.UpdatedAt.UnixNano())
			return e
		}
		return m.swap(sh, e, s)
	}
	e := newEntry(s, m.users.add(s.UserID, s.ID))
	sh.m[s.ID] = e
	return e
}

// update replaces the entry of s with s, if the entry is still in memory
// and older. It reports whether the session is in memory.
func (m *Manager) update(s *Session) bool {
	if s.UserID == "" {
		return m.anon.update(s)
	}
	sh := m.shardOf(s.ID)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := sh.m[s.ID]
	if e == nil {
		return false
	}
	if e.version < s.Version {
		m.swap(sh, e, s)
	}
	return true
}

// swap replaces old with an entry for s, keeping the later activity of the
// two. sh is locked.
func (m *Manager) swap(sh *shard, old *entry, s *Session) *entry {
	e := newEntry(s, old.user)
	e.seen(old.updated.Load())
	sh.m[s.ID] = e
	return e
}

// drop removes the session with id from memory and reports whether it was
// there.
func (m *Manager) drop(id string) bool {
	sh := m.shardOf(id)
	sh.mu.Lock()
	e := sh.m[id]
	if e != nil {
		delete(sh.m, id)
		m.users.remove(e.user, id)
	}
	sh.mu.Unlock()
	return m.anon.remove(id) || e != nil
}

// add records that session id belongs to userID and returns the user's
// record, or nil for an anonymous session. The caller holds the lock of
// id's shard and has checked that id is not in it.
func (u *userIndex) add(userID, id string) *userSessions {
	if userID == "" {
		return nil
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	rec := u.m[userID]
	if rec == nil {
		rec = &userSessions{id: userID}
		u.m[userID] = rec
	}
	rec.ids = append(rec.ids, id)
	return rec
}

// remove forgets session id of rec's user. The caller holds the lock of
// id's shard.
func (u *userIndex) remove(rec *userSessions, id string) {
	if rec == nil {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if i := slices.Index(rec.ids, id); i >= 0 {
		rec.ids = slices.Delete(rec.ids, i, i+1)
	}
	if len(rec.ids) == 0 && u.m[rec.id] == rec {
		delete(u.m, rec.id)
	}
}

// ids returns a copy of the session IDs of userID.
func (u *userIndex) ids(userID string) []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	if rec := u.m[userID]; rec != nil {
		return slices.Clone(rec.ids)
	}
	return nil
}
