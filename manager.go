package gormsession

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unique"
)

// ManagerOptions configures a Manager. The zero value gives the defaults
// stated on each field.
type ManagerOptions struct {
	// Lifetime is how long a session lives when NewSession.Lifetime is zero.
	// Default: 30 days. A negative value means sessions never expire unless
	// NewSession.Lifetime says otherwise.
	Lifetime time.Duration

	// IdleTimeout ends a session that has not been resolved for this long.
	// Default: 0, no idle timeout. Activity is recorded in memory and
	// written to the Backend in coalesced batches every TouchInterval, never
	// once per request, so after a restart the last activity is known to
	// within TouchInterval.
	IdleTimeout time.Duration

	// TouchInterval is how often recorded activity is written to the
	// Backend when IdleTimeout is set. Default: IdleTimeout/10, at most one
	// minute.
	TouchInterval time.Duration

	// CleanupInterval is how often expired sessions are removed from memory
	// and from the Backend. Default: 5 minutes. A negative value disables
	// the periodic cleanup; Cleanup can still be called directly.
	CleanupInterval time.Duration

	// RetryInterval is how often removals that failed in the Backend (a
	// revoke while the database was down) are tried again. Default: 5
	// seconds.
	RetryInterval time.Duration

	// Now is the clock. Default: time.Now. Tests inject their own.
	Now func() time.Time

	// Logger receives errors of background work. Default: slog.Default().
	Logger *slog.Logger

	// SyncInterval makes the Manager one of several instances on one
	// database. Every SyncInterval it reads the Backend's ChangeFeed and
	// applies what other instances created, updated, rotated or revoked; and
	// it looks a token it does not know up in the Backend (a Getter) before
	// rejecting it. A change made on another instance is seen here within
	// SyncInterval plus the time of one poll, or at once with a Notifier.
	// Default: 0, a single instance: no polling, no lookups. When set, the
	// Backend must implement ChangeFeed.
	SyncInterval time.Duration

	// SyncOverlap is how far before the previous poll each poll reads, to
	// catch writes that committed late or were stamped by a clock running
	// slightly behind; the instances' clocks must agree to within it.
	// Default: 2 seconds.
	SyncOverlap time.Duration

	// Notifier pushes word of changes so that a poll runs at once (package
	// pgnotify, PostgreSQL LISTEN/NOTIFY). Default: nil, polling only. Used
	// only with SyncInterval.
	Notifier ChangeNotifier

	// ReadThroughRate bounds the Backend lookups of unknown tokens per
	// second. Unknown tokens beyond it, and tokens looked up in vain within
	// the last SyncInterval, are rejected without a query, so a flood of
	// random tokens cannot become a flood of queries. Default: 100. Used
	// only with SyncInterval.
	ReadThroughRate float64
}

// NewSession describes a session to create.
type NewSession struct {
	// UserID identifies the user. It may be empty for an anonymous session;
	// anonymous sessions are not listed by ListUser.
	UserID string
	// TenantID is optional.
	TenantID string
	// Device is a short label for the device, such as "Firefox on Linux".
	Device string
	// Lifetime is how long the session lives. Zero means the Manager's
	// Lifetime; a negative value means it never expires.
	Lifetime time.Duration
	// Data is an opaque payload; it is copied.
	Data []byte
}

const (
	defaultLifetime        = 30 * 24 * time.Hour
	defaultCleanupInterval = 5 * time.Minute
	defaultRetryInterval   = 5 * time.Second
	maxTouchInterval       = time.Minute
	closeTimeout           = 5 * time.Second

	shardCount = 64 // a power of two
)

// Manager holds the loaded sessions in memory and writes every change
// through to a Backend: a request resolves its session with no database
// round trip, and a restart logs no one out.
//
// Writes go to the Backend first and to memory after, so a token is never
// handed out that a restart would forget. Revocations are the exception:
// they take effect in memory at once, and a Backend delete that fails is
// retried in the background and at Close, so a revoked session cannot come
// back.
//
// A Manager is safe for concurrent use. No lock is held across Backend
// calls, and resolving one session never waits for writes to another.
type Manager struct {
	backend Backend
	opts    ManagerOptions
	now     func() time.Time
	log     *slog.Logger

	shards [shardCount]shard
	users  userIndex

	pendingMu      sync.Mutex
	pendingRemoves map[string]struct{}

	sync *syncState // nil for a single instance

	closed atomic.Bool
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// shard is one part of the sessions map, with its own lock. Padding keeps
// the locks of neighbouring shards off one cache line.
type shard struct {
	mu sync.RWMutex
	m  map[string]*entry

	dirtyMu sync.Mutex
	dirty   []string // IDs with activity not yet written (idle timeout only)

	_ [64]byte
}

// entry is a session in memory, laid out to fit a 64-byte allocation: the
// user is shared with the user index, labels are interned since devices and
// tenants repeat, and data is a pointer that is nil for the many sessions
// without a payload. Every field but updated is immutable after the entry is
// published; a change replaces the entry.
type entry struct {
	id      string
	user    *userSessions // nil for an anonymous session
	labels  unique.Handle[labels]
	data    *[]byte // nil when empty
	created int64   // unix nanoseconds
	expires int64   // unix nanoseconds; 0 = never
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

// NewManager loads every unexpired session from b and returns a Manager
// serving them from memory. When b implements Streamer the rows are
// streamed, so loading needs no second copy of them.
//
// The Manager starts one background goroutine for cleanup and retries;
// Close stops it.
func NewManager(ctx context.Context, b Backend, opts ManagerOptions) (*Manager, error) {
	if b == nil {
		return nil, errors.New("gormsession: NewManager: nil Backend")
	}
	if opts.Lifetime == 0 {
		opts.Lifetime = defaultLifetime
	}
	if opts.IdleTimeout > 0 && opts.TouchInterval <= 0 {
		opts.TouchInterval = min(opts.IdleTimeout/10, maxTouchInterval)
	}
	if opts.CleanupInterval == 0 {
		opts.CleanupInterval = defaultCleanupInterval
	}
	if opts.RetryInterval <= 0 {
		opts.RetryInterval = defaultRetryInterval
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	m := &Manager{
		backend:        b,
		opts:           opts,
		now:            opts.Now,
		log:            opts.Logger,
		users:          userIndex{m: make(map[string]*userSessions)},
		pendingRemoves: make(map[string]struct{}),
	}
	for i := range m.shards {
		m.shards[i].m = make(map[string]*entry)
	}
	if opts.SyncInterval > 0 {
		feed, ok := b.(ChangeFeed)
		if !ok {
			return nil, fmt.Errorf("gormsession: NewManager: SyncInterval needs a Backend that implements ChangeFeed; %T does not", b)
		}
		m.sync = newSyncState(feed, b, &m.opts)
	}
	loadStart := m.now()
	if err := m.load(ctx); err != nil {
		return nil, err
	}
	bg, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	m.wg.Go(func() { m.loop(bg) })
	if m.sync != nil {
		m.sync.since = loadStart.Add(-m.opts.SyncOverlap)
		m.wg.Go(func() { m.syncLoop(bg) })
		if m.opts.Notifier != nil {
			m.wg.Go(func() { m.listen(bg) })
		}
	}
	return m, nil
}

func (m *Manager) load(ctx context.Context) error {
	now := m.now()
	add := func(s *Session) error {
		e := newEntry(s, nil)
		if m.expired(e, now.UnixNano()) {
			return nil
		}
		e.user = m.users.add(s.UserID, e.id)
		m.shardOf(e.id).m[e.id] = e
		return nil
	}
	if st, ok := m.backend.(Streamer); ok {
		if err := st.Stream(ctx, now, add); err != nil {
			return fmt.Errorf("gormsession: load sessions: %w", err)
		}
		return nil
	}
	all, err := m.backend.LoadAll(ctx)
	if err != nil {
		return fmt.Errorf("gormsession: load sessions: %w", err)
	}
	for i := range all {
		_ = add(&all[i])
	}
	return nil
}

// newEntry makes the entry of s for the given user record.
func newEntry(s *Session, user *userSessions) *entry {
	e := &entry{
		id:      s.ID,
		user:    user,
		labels:  unique.Make(labels{tenant: s.TenantID, device: s.Device}),
		created: s.CreatedAt.UnixNano(),
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
	s := Session{
		ID:        e.id,
		TenantID:  e.labels.Value().tenant,
		Device:    e.labels.Value().device,
		CreatedAt: time.Unix(0, e.created).UTC(),
		UpdatedAt: time.Unix(0, e.updated.Load()).UTC(),
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

// expired reports whether e is expired at now (unix nanoseconds), by its
// expiry or by the idle timeout.
func (m *Manager) expired(e *entry, now int64) bool {
	if e.expires != 0 && now >= e.expires {
		return true
	}
	return m.opts.IdleTimeout > 0 && now-e.updated.Load() >= int64(m.opts.IdleTimeout)
}

// clock returns the current time in UTC, truncated to microseconds: the
// precision every supported database keeps, so memory and rows agree.
func (m *Manager) clock() time.Time {
	return m.now().UTC().Truncate(time.Microsecond)
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

func (m *Manager) lookup(id string) *entry {
	sh := m.shardOf(id)
	sh.mu.RLock()
	e := sh.m[id]
	sh.mu.RUnlock()
	return e
}

// Resolve returns the session whose token is token. It reads memory only:
// no I/O and no allocation. Malformed tokens are rejected before hashing;
// expired, revoked and unknown tokens are not found.
//
// With SyncInterval set, a token not in memory is looked up in the Backend
// (within ReadThroughRate) before it is rejected; see ResolveContext.
func (m *Manager) Resolve(token string) (Session, bool) {
	return m.ResolveContext(context.Background(), token)
}

// ResolveContext is Resolve with a context for the Backend lookup of an
// unknown token that a Manager with SyncInterval makes. A known token never
// causes I/O.
func (m *Manager) ResolveContext(ctx context.Context, token string) (Session, bool) {
	if !ValidToken(token) {
		return Session{}, false
	}
	var buf [tokenLen]byte
	copy(buf[:], token)
	sum := sha256.Sum256(buf[:])
	var id [sha256.Size * 2]byte
	hex.Encode(id[:], sum[:])
	sh := &m.shards[shardIndex(sum[0])]
	sh.mu.RLock()
	e := sh.m[string(id[:])]
	sh.mu.RUnlock()
	if e == nil && m.sync != nil {
		e = m.readThrough(ctx, string(id[:]))
	}
	return m.use(e)
}

// Get returns the session with the given ID from memory, if it exists and
// is not expired. It does not count as activity for the idle timeout.
func (m *Manager) Get(id string) (Session, bool) {
	e := m.lookup(id)
	if e == nil || m.expired(e, m.now().UnixNano()) {
		return Session{}, false
	}
	return e.session(), true
}

// use checks e and records activity for the idle timeout.
func (m *Manager) use(e *entry) (Session, bool) {
	if e == nil {
		return Session{}, false
	}
	now := m.now().UnixNano()
	if m.expired(e, now) {
		return Session{}, false
	}
	if m.opts.IdleTimeout > 0 {
		m.touch(e, now)
	}
	return e.session(), true
}

// touch records activity on e at most once per TouchInterval, and queues e
// for the next coalesced write.
func (m *Manager) touch(e *entry, now int64) {
	last := e.updated.Load()
	if now-last < int64(m.opts.TouchInterval) || !e.updated.CompareAndSwap(last, now) {
		return
	}
	sh := m.shardOf(e.id)
	sh.dirtyMu.Lock()
	sh.dirty = append(sh.dirty, e.id)
	sh.dirtyMu.Unlock()
}

// Len returns the number of sessions in memory, including expired ones not
// yet cleaned up.
func (m *Manager) Len() int {
	n := 0
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.RLock()
		n += len(sh.m)
		sh.mu.RUnlock()
	}
	return n
}

// Create creates a session, writes it to the Backend and then to memory,
// and returns it with its Token set. If the Backend fails, the error is
// returned and the token is never valid.
func (m *Manager) Create(ctx context.Context, p NewSession) (Session, error) {
	if m.closed.Load() {
		return Session{}, ErrClosed
	}
	now := m.clock()
	token := NewToken()
	s := Session{
		ID:        HashToken(token),
		UserID:    p.UserID,
		TenantID:  p.TenantID,
		Device:    p.Device,
		Data:      cloneData(p.Data),
		CreatedAt: now,
		UpdatedAt: now,
	}
	if err := fitFields(&s); err != nil {
		return Session{}, err
	}
	lifetime := p.Lifetime
	if lifetime == 0 {
		lifetime = m.opts.Lifetime
	}
	if lifetime > 0 {
		s.ExpiresAt = now.Add(lifetime)
	}
	if err := m.backend.Save(ctx, &s); err != nil {
		return Session{}, err
	}
	m.insert(&s)
	s.Token = token
	return s, nil
}

// fitFields checks s against the column sizes: a Device label (often taken
// from a User-Agent header) is shortened to MaxFieldLen bytes, a longer
// UserID or TenantID is an error.
func fitFields(s *Session) error {
	if len(s.UserID) > MaxFieldLen || len(s.TenantID) > MaxFieldLen {
		return fmt.Errorf("%w (user %d bytes, tenant %d bytes)", ErrTooLong, len(s.UserID), len(s.TenantID))
	}
	if len(s.Device) > MaxFieldLen {
		s.Device = strings.ToValidUTF8(s.Device[:MaxFieldLen], "")
	}
	return nil
}

// cloneData copies b into a slice of its own whose capacity equals its
// length, so that appending to a Session's Data never writes into memory
// another reader shares.
func cloneData(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return slices.Clip(bytes.Clone(b))
}

// insert adds a new session to memory.
func (m *Manager) insert(s *Session) {
	e := newEntry(s, m.users.add(s.UserID, s.ID))
	sh := m.shardOf(e.id)
	sh.mu.Lock()
	sh.m[e.id] = e
	sh.mu.Unlock()
}

// replace swaps in e for the entry with the same ID, only if that entry is
// still there. It reports whether it was.
func (m *Manager) replace(e *entry) bool {
	sh := m.shardOf(e.id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, ok := sh.m[e.id]; !ok {
		return false
	}
	sh.m[e.id] = e
	return true
}

// forget removes revoked sessions from memory and returns how many were
// there. A synced Manager also remembers them as revoked, under the same
// lock that applies changes read from the Backend, so that a change read
// before the revocation cannot bring them back.
func (m *Manager) forget(ids ...string) int {
	if m.sync != nil {
		m.sync.mu.Lock()
		defer m.sync.mu.Unlock()
		now := m.now().UnixNano()
		for _, id := range ids {
			m.sync.revoked[id] = now
		}
	}
	n := 0
	for _, id := range ids {
		if m.drop(id) != nil {
			n++
		}
	}
	return n
}

// drop removes the session with id from memory and returns its entry, or
// nil if it was not there.
func (m *Manager) drop(id string) *entry {
	sh := m.shardOf(id)
	sh.mu.Lock()
	e := sh.m[id]
	delete(sh.m, id)
	sh.mu.Unlock()
	if e != nil {
		m.users.remove(e.user, id)
	}
	return e
}

// Revoke ends the session with the given ID. It takes effect in memory at
// once, even when the Backend fails; the Backend error is then returned and
// the delete is retried in the background, so the session cannot come back
// after a restart. Revoking an unknown ID is not an error.
func (m *Manager) Revoke(ctx context.Context, id string) error {
	if m.closed.Load() {
		return ErrClosed
	}
	m.forget(id)
	return m.removeFromBackend(ctx, id)
}

// removeFromBackend deletes id from the Backend, or queues the delete for
// retry when the Backend fails.
func (m *Manager) removeFromBackend(ctx context.Context, id string) error {
	if err := m.backend.Remove(ctx, id); err != nil {
		m.queueRemove(id)
		return err
	}
	return nil
}

func (m *Manager) queueRemove(ids ...string) {
	m.pendingMu.Lock()
	for _, id := range ids {
		m.pendingRemoves[id] = struct{}{}
	}
	m.pendingMu.Unlock()
}

// RevokeUser ends every session of userID, in memory at once and in the
// Backend (in one statement when the Backend is a UserRemover). It returns
// how many sessions were revoked: those in memory, or the rows the Backend
// deleted if that is more.
func (m *Manager) RevokeUser(ctx context.Context, userID string) (int, error) {
	if m.closed.Load() {
		return 0, ErrClosed
	}
	if userID == "" {
		return 0, errors.New("gormsession: RevokeUser: empty user ID")
	}
	ids := m.users.ids(userID)
	m.forget(ids...)
	ur, ok := m.backend.(UserRemover)
	if !ok {
		return len(ids), m.removeEach(ctx, ids)
	}
	n, err := ur.RemoveUser(ctx, userID)
	if err != nil {
		m.queueRemove(ids...)
		return len(ids), err
	}
	return max(len(ids), int(n)), nil
}

// removeEach deletes ids from the Backend one by one, queueing failures.
func (m *Manager) removeEach(ctx context.Context, ids []string) error {
	var errs []error
	for _, id := range ids {
		if err := m.removeFromBackend(ctx, id); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// RevokeOthers ends every session of userID except keepID ("sign out
// everywhere else") and returns how many it revoked.
func (m *Manager) RevokeOthers(ctx context.Context, userID, keepID string) (int, error) {
	if m.closed.Load() {
		return 0, ErrClosed
	}
	ids := slices.DeleteFunc(m.users.ids(userID), func(id string) bool { return id == keepID })
	m.forget(ids...)
	return len(ids), m.removeEach(ctx, ids)
}

// ListUser returns the unexpired sessions of userID, oldest first, without
// tokens. It reads memory only.
func (m *Manager) ListUser(userID string) []Session {
	if userID == "" {
		return nil
	}
	now := m.now().UnixNano()
	ids := m.users.ids(userID)
	out := make([]Session, 0, len(ids))
	for _, id := range ids {
		if e := m.lookup(id); e != nil && !m.expired(e, now) {
			out = append(out, e.session())
		}
	}
	slices.SortFunc(out, func(a, b Session) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return out
}

// Update changes the session with the given ID: fn receives a copy and may
// change TenantID, Device, Data and ExpiresAt (changes to ID, Token, UserID,
// CreatedAt and UpdatedAt are ignored). fn must not modify the bytes of the
// Data it receives; assign a new slice instead. The result is written to the
// Backend first and then to memory. It returns the updated session, or
// ErrNotFound when there is no such unexpired session.
func (m *Manager) Update(ctx context.Context, id string, fn func(*Session)) (Session, error) {
	if m.closed.Load() {
		return Session{}, ErrClosed
	}
	e := m.lookup(id)
	if e == nil || m.expired(e, m.now().UnixNano()) {
		return Session{}, fmt.Errorf("gormsession: update %s: %w", id, ErrNotFound)
	}
	old := e.session()
	s := old
	fn(&s)
	s.ID, s.Token, s.UserID, s.CreatedAt = old.ID, "", old.UserID, old.CreatedAt
	s.UpdatedAt = m.clock()
	if err := fitFields(&s); err != nil {
		return Session{}, err
	}
	if bytes.Equal(s.Data, old.Data) {
		s.Data = old.Data
	} else {
		s.Data = cloneData(s.Data)
	}
	if err := m.backend.Save(ctx, &s); err != nil {
		return Session{}, err
	}
	if !m.replace(newEntry(&s, e.user)) {
		// Revoked while we were writing: the upsert must not bring it back.
		_ = m.removeFromBackend(ctx, id)
		return Session{}, fmt.Errorf("gormsession: update %s: %w", id, ErrNotFound)
	}
	return s, nil
}

// SetTenant sets the tenant of the session with the given ID.
func (m *Manager) SetTenant(ctx context.Context, id, tenantID string) (Session, error) {
	return m.Update(ctx, id, func(s *Session) { s.TenantID = tenantID })
}

// SetDevice sets the device label of the session with the given ID.
func (m *Manager) SetDevice(ctx context.Context, id, device string) (Session, error) {
	return m.Update(ctx, id, func(s *Session) { s.Device = device })
}

// SetData replaces the payload of the session with the given ID. data is
// copied.
func (m *Manager) SetData(ctx context.Context, id string, data []byte) (Session, error) {
	return m.Update(ctx, id, func(s *Session) { s.Data = data })
}

// SetExpiry sets when the session with the given ID expires; the zero time
// means never.
func (m *Manager) SetExpiry(ctx context.Context, id string, expiresAt time.Time) (Session, error) {
	return m.Update(ctx, id, func(s *Session) { s.ExpiresAt = expiresAt })
}

// Rotate replaces the session of token with a new one: a new token, the same
// user, tenant, device, data, creation time and expiry. The old token stops
// working. Call it when privileges change (after sign-in, after a password
// change) to defend against session fixation. It returns the new session
// with its Token set, or an error wrapping ErrNotFound when token does not
// resolve.
func (m *Manager) Rotate(ctx context.Context, token string) (Session, error) {
	if m.closed.Load() {
		return Session{}, ErrClosed
	}
	old, ok := m.Resolve(token)
	if !ok {
		return Session{}, fmt.Errorf("gormsession: rotate: %w", ErrNotFound)
	}
	newToken := NewToken()
	s := old
	s.ID = HashToken(newToken)
	s.UpdatedAt = m.clock()
	if err := m.backend.Save(ctx, &s); err != nil {
		return Session{}, err
	}
	m.insert(&s)
	if m.forget(old.ID) == 0 {
		// The old session was revoked meanwhile: so is its successor.
		m.forget(s.ID)
		_ = m.removeFromBackend(ctx, s.ID)
		_ = m.removeFromBackend(ctx, old.ID)
		return Session{}, fmt.Errorf("gormsession: rotate: %w", ErrNotFound)
	}
	if err := m.removeFromBackend(ctx, old.ID); err != nil {
		// The old token is dead in memory and its delete will be retried;
		// the new session is good.
		m.log.Warn("gormsession: rotate: old session delete queued for retry", "id", old.ID, "err", err)
	}
	s.Token = newToken
	return s, nil
}

// Cleanup runs one pass of the background work now: it removes expired
// sessions from memory and from the Backend, retries queued removals and
// writes recorded activity. It returns how many sessions it removed from
// memory. The Manager runs it periodically; tests and tools may call it.
func (m *Manager) Cleanup(ctx context.Context) (int, error) {
	n, idle := m.sweep()
	var errs []error
	if len(idle) > 0 {
		m.queueRemove(idle...)
	}
	if er, ok := m.backend.(ExpiredRemover); ok {
		if _, err := er.RemoveExpired(ctx, m.now()); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, m.retryRemoves(ctx), m.flushTouches(ctx))
	return n, errors.Join(errs...)
}

// sweep removes expired entries from memory. It returns how many it removed
// and the IDs of those that ended by idle timeout (their rows are not
// expired by expires_at, so they are deleted by ID).
func (m *Manager) sweep() (int, []string) {
	now := m.now().UnixNano()
	var gone []*entry
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		for id, e := range sh.m {
			if m.expired(e, now) {
				delete(sh.m, id)
				gone = append(gone, e)
			}
		}
		sh.mu.Unlock()
	}
	var idle []string
	for _, e := range gone {
		m.users.remove(e.user, e.id)
		if e.expires == 0 || now < e.expires {
			idle = append(idle, e.id)
		}
	}
	return len(gone), idle
}

// retryRemoves tries the queued Backend deletes again. An ID leaves the
// queue only once its delete has succeeded.
func (m *Manager) retryRemoves(ctx context.Context) error {
	m.pendingMu.Lock()
	ids := make([]string, 0, len(m.pendingRemoves))
	for id := range m.pendingRemoves {
		ids = append(ids, id)
	}
	m.pendingMu.Unlock()
	var errs []error
	for _, id := range ids {
		if err := m.backend.Remove(ctx, id); err != nil {
			errs = append(errs, err)
			continue
		}
		m.pendingMu.Lock()
		delete(m.pendingRemoves, id)
		m.pendingMu.Unlock()
	}
	return errors.Join(errs...)
}

// PendingRemovals returns how many Backend deletes are queued for retry.
func (m *Manager) PendingRemovals() int {
	m.pendingMu.Lock()
	defer m.pendingMu.Unlock()
	return len(m.pendingRemoves)
}

// flushTouches writes the activity recorded since the last flush.
func (m *Manager) flushTouches(ctx context.Context) error {
	if m.opts.IdleTimeout <= 0 {
		return nil
	}
	var ids []string
	for i := range m.shards {
		sh := &m.shards[i]
		sh.dirtyMu.Lock()
		ids = append(ids, sh.dirty...)
		sh.dirty = nil
		sh.dirtyMu.Unlock()
	}
	if len(ids) == 0 {
		return nil
	}
	if t, ok := m.backend.(Toucher); ok {
		const batch = 500
		var errs []error
		for chunk := range slices.Chunk(ids, batch) {
			// The latest activity in the batch; every session in it was
			// active within TouchInterval of it.
			at := m.clock()
			if err := t.Touch(ctx, chunk, at); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
	var errs []error
	for _, id := range ids {
		if e := m.lookup(id); e != nil {
			s := e.session()
			if err := m.backend.Save(ctx, &s); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// loop is the background goroutine: cleanup, retries and activity writes.
func (m *Manager) loop(ctx context.Context) {
	tick := m.opts.RetryInterval
	if m.opts.CleanupInterval > 0 {
		tick = min(tick, m.opts.CleanupInterval)
	}
	if m.opts.IdleTimeout > 0 {
		tick = min(tick, m.opts.TouchInterval)
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	lastCleanup := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if m.opts.CleanupInterval > 0 && time.Since(lastCleanup) >= m.opts.CleanupInterval {
			lastCleanup = time.Now()
			if _, err := m.Cleanup(ctx); err != nil && ctx.Err() == nil {
				m.log.Error("gormsession: cleanup", "err", err)
			}
			continue
		}
		if err := errors.Join(m.retryRemoves(ctx), m.flushTouches(ctx)); err != nil && ctx.Err() == nil {
			m.log.Error("gormsession: background write", "err", err)
		}
	}
}

// Close stops the background goroutines and waits for them to end, then
// makes a last attempt at queued removals and activity writes. Sessions stay
// resolvable from memory; writes return ErrClosed. Close is idempotent.
func (m *Manager) Close() error {
	if !m.closed.CompareAndSwap(false, true) {
		return nil
	}
	m.cancel()
	m.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	err := errors.Join(m.retryRemoves(ctx), m.flushTouches(ctx))
	if err != nil {
		return fmt.Errorf("gormsession: close: %w", err)
	}
	return nil
}

// add records that session id belongs to userID and returns the user's
// record, or nil for an anonymous session.
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

// remove forgets session id of rec's user.
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

// Lifetime returns the lifetime of a session created with a zero
// NewSession.Lifetime; a negative value means such sessions never expire.
func (m *Manager) Lifetime() time.Duration { return m.opts.Lifetime }

// Now returns the current time by the Manager's clock (ManagerOptions.Now),
// so that code computing expiry times for Update agrees with the Manager on
// what "now" is.
func (m *Manager) Now() time.Time { return m.now() }
