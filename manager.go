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

// NewManager loads every unexpired session from b and returns a Manager
// serving them from memory. When b implements Streamer the rows are
// streamed, so loading needs no second copy of them.
//
// The Manager starts one background goroutine for cleanup and retries,
// and with SyncInterval one more to poll for changes (and one for the
// Notifier); Close stops them all.
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
	old, ok := m.ResolveContext(ctx, token)
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

// Lifetime returns the lifetime of a session created with a zero
// NewSession.Lifetime; a negative value means such sessions never expire.
func (m *Manager) Lifetime() time.Duration { return m.opts.Lifetime }

// Now returns the current time by the Manager's clock (ManagerOptions.Now),
// so that code computing expiry times for Update agrees with the Manager on
// what "now" is.
func (m *Manager) Now() time.Time { return m.now() }
