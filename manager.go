package gormsession

import (
	"bytes"
	"cmp"
	"context"
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
	// Lifetime is how long a session lives when Attributes.Lifetime is zero.
	// Default: 30 days. A negative value means sessions never expire unless
	// Attributes.Lifetime says otherwise.
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

	// RetryInterval is how often revocations the Backend refused (the
	// database was down) are tried again. Default: 5 seconds.
	RetryInterval time.Duration

	// Now is this instance's clock. Default: time.Now, except that
	// Resolve and Get read the wall clock at most once a second and
	// advance it by the monotonic clock in between, for half the cost.
	// Tests inject their own, which is then used everywhere.
	//
	// The Manager does not trust it to agree with other instances: with a
	// Backend that implements ChangeFeed, it reads the database's clock
	// at start and with every poll, and tells every time (expiry on the
	// request path, the times it stamps on sessions) by this clock moved
	// by the offset it measured, so that every instance judges by one
	// clock, the database's, to within a poll's round trip. Stats reports
	// the offset.
	Now func() time.Time

	// Logger receives errors of background work. Default: slog.Default().
	Logger *slog.Logger

	// SyncInterval is how often the Manager reads the Backend's ChangeFeed
	// and applies what other instances on the same database created,
	// updated, rotated or revoked; a token it does not know is also looked
	// up in the Backend (Get) before it is rejected. A change made on
	// another instance is seen here within SyncInterval plus the time of
	// one poll after it commits, or at once with a Notifier. It must be at
	// most a tenth of the Backend's TombstoneTTL (NewManager refuses a
	// longer one), so that no revocation leaves the feed between two
	// polls. Default: 1 second when the
	// Backend implements ChangeFeed (the Store does), so that instances are
	// coherent unless told otherwise. A negative value tells the Manager it
	// is alone: no polling, no lookups. A positive value needs a Backend
	// that implements ChangeFeed.
	SyncInterval time.Duration

	// MaxAnonymous is how many anonymous sessions (without a user, such as
	// gorillastore's) are kept in memory at most, the least recently used
	// evicted first: the cache is split by session ID into up to 32 parts
	// with a lock each, each part evicting its own least recently used. An
	// evicted one is read from the Backend by ID on its next use.
	// Anonymous sessions are not loaded at start. Default: 10,000.
	MaxAnonymous int

	// SyncOverlap is ignored: the change feed is read by the database's
	// commit order, not by a window of the instances' clocks.
	//
	// Deprecated: the feed needs no overlap; leave it unset.
	SyncOverlap time.Duration

	// ResyncInterval is how often the Manager reloads every session and
	// drops those the Backend no longer has, when the Backend's feed is
	// not ordered by commit (FeedPosition.Ordered is false: MySQL and
	// MariaDB), to catch a change whose commit landed too late for the
	// feed's window. Default: 5 minutes. A negative value disables it.
	// A feed ordered by commit (SQLite, PostgreSQL) needs no resync; any
	// feed is reloaded in full after the Manager could not read it for
	// half the Backend's TombstoneTTL.
	ResyncInterval time.Duration

	// Notifier pushes word of changes so that a poll runs at once (package
	// pgnotify, PostgreSQL LISTEN/NOTIFY). Default: nil, polling only. Used
	// only with SyncInterval.
	Notifier ChangeNotifier

	// Journal is the path of a local file where revocations the Backend
	// refused (the database was down) are recorded, synced, before the
	// revoking call returns; NewManager replays them before serving, and
	// each leaves the file when it reaches the Backend. With it, a session
	// revoked during a database outage stays revoked across a restart or a
	// crash of this process; without it, such a revocation is retried only
	// until the process ends. The file is a bbolt database: a crash at any
	// byte of a write loses no revocation acknowledged before it, and a
	// damaged file is refused at start with an error naming it. It holds
	// at most MaxPendingRevocations revocations. Each instance needs a file
	// of its own: NewManager fails when another Manager or process holds
	// it. Default: "", no journal.
	Journal string

	// ReadThroughRate bounds the Backend lookups of unknown tokens per
	// second. Unknown tokens beyond it, and tokens looked up in vain within
	// the last SyncInterval, are rejected without a query, so a flood of
	// random tokens cannot become a flood of queries. Default: 100. Used
	// only with SyncInterval.
	ReadThroughRate float64
}

// Attributes are what a new session starts with (see Manager.Create).
type Attributes struct {
	// UserID identifies the user of a signed-in session. Empty makes an
	// anonymous session, which never authenticates (see ResolveAnonymous).
	UserID string
	// TenantID is optional.
	TenantID string
	// Device is a short label for the device, such as "Firefox on Linux".
	Device string
	// Lifetime is how long the session lives. Zero means
	// ManagerOptions.Lifetime; a negative value means it never expires.
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
// they take effect in memory at once; a Backend write that fails is
// reported (ErrNotPersisted), retried in the background and kept in the
// Journal if there is one, and the session stays refused meanwhile.
//
// A Manager is safe for concurrent use. A request's lookup takes one lock:
// the read lock of the shard of the sessions map that holds the token's
// ID, or the lock of the anonymous cache's shard that would hold it (a
// mutex: a use reorders the shard's LRU). No lock that a lookup waits for
// is held across a Backend call or a journal write: a write holds a
// shard's lock only to put its entry in, and the cleanup sweep only to
// delete the entries it found expired (an anonymous shard, a few hundred
// sessions by default, it also scans under its lock). The one lock held
// across I/O serializes the polls of the change feed, and only polls take
// it. The lock order is at the top of memory.go.
type Manager struct {
	backend Backend
	opts    ManagerOptions
	now     func() time.Time // the database's clock, as measured (see offset)
	wall    *wallClock       // the request path's clock; nil when Now is injected
	log     *slog.Logger

	shards [shardCount]shard // signed-in sessions, all resident
	users  userIndex
	anon   *anonCache // anonymous sessions, the most recently used
	misses missCache  // IDs looked up in the Backend in vain

	// mu guards the claims (see revocations.go): what the Manager has
	// under way or knows about session IDs and users, which orders what it
	// learns from the Backend (the change feed, read-through, reloads)
	// with its own revocations and creations, so that a row read before a
	// revocation cannot bring the session back, and a session revoked
	// while it was being created is not published. Whatever changes a
	// claim takes it for writing; a changed Save only reads the claims
	// (commitUpdate) and takes it for reading, so that the saves of
	// different sessions do not wait for one another here.
	mu sync.RWMutex
	cl claims

	pending *pendingRevocations // the queue's persistence: the journal

	sync    *syncState // nil for a single instance
	metrics metrics
	// offset is the database's clock minus opts.Now, in nanoseconds, as
	// last measured (see measure); now and nowNano add it.
	offset atomic.Int64
	// uncertainty bounds the error of offset, in nanoseconds: half the
	// round trip it was measured across, plus the database clock's
	// resolution.
	uncertainty atomic.Int64

	closed atomic.Bool
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewManager loads every unexpired session from b and returns a Manager
// serving them from memory; the rows are streamed, so loading needs no
// second copy of them. Anonymous sessions are not loaded: they are read
// when used. Revocations left in the Journal by an earlier process are
// applied before it returns.
//
// The Manager starts one background goroutine for cleanup and retries,
// and with SyncInterval one more to poll for changes (and one for the
// Notifier); Close stops them all.
func NewManager(ctx context.Context, b Backend, opts ManagerOptions) (*Manager, error) {
	if b == nil {
		return nil, errors.New("gormsession: NewManager: nil Backend")
	}
	feed, isFeed := b.(ChangeFeed)
	if opts.SyncInterval > 0 && !isFeed {
		return nil, fmt.Errorf("gormsession: NewManager: SyncInterval needs a Backend that implements ChangeFeed; %T does not", b)
	}
	systemClock := opts.Now == nil
	opts = opts.withDefaults(isFeed)
	if opts.SyncInterval > 0 && minTombstoneIntervals*opts.SyncInterval > feed.TombstoneTTL() {
		return nil, fmt.Errorf("gormsession: NewManager: SyncInterval %v is too long for the Backend's TombstoneTTL %v: revocations could leave the change feed between two polls (the TTL must be at least %d SyncIntervals)",
			opts.SyncInterval, feed.TombstoneTTL(), minTombstoneIntervals)
	}
	pending, err := openJournal(opts.Journal)
	if err != nil {
		return nil, err
	}
	m := newManager(b, opts, pending)
	if systemClock {
		m.wall = &wallClock{}
	}
	var pos FeedPosition
	if isFeed {
		// Before loading: the first poll reads every change committed
		// after this read, and the clock is the database's from here on.
		if pos, err = m.head(ctx, feed); err != nil {
			_ = pending.close()
			return nil, err
		}
	}
	if opts.SyncInterval > 0 {
		m.sync = newSyncState(feed, &m.opts)
		m.sync.follow(pos)
	}
	if err := m.load(ctx); err != nil {
		_ = pending.close()
		return nil, err
	}
	m.replayRevocations(ctx)
	m.start()
	return m, nil
}

// newManager returns a Manager with empty memory.
func newManager(b Backend, opts ManagerOptions, pending *pendingRevocations) *Manager {
	m := &Manager{
		backend: b,
		opts:    opts,
		log:     opts.Logger,
		users:   userIndex{m: make(map[string]*userSessions)},
		cl:      newClaims(),
		anon:    newAnonCache(opts.MaxAnonymous),
		misses:  missCache{m: make(map[string]int64)},
		pending: pending,
	}
	m.now = func() time.Time { return opts.Now().Add(time.Duration(m.offset.Load())) }
	for i := range m.shards {
		m.shards[i].m = newSessionMap()
	}
	return m
}

// start starts the background goroutines.
func (m *Manager) start() {
	bg, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	m.wg.Go(func() { m.loop(bg) })
	if m.sync == nil {
		return
	}
	m.metrics.lastSync.Store(m.now().UnixNano())
	m.wg.Go(func() { m.syncLoop(bg) })
	if m.opts.Notifier != nil {
		m.wg.Go(func() { m.listen(bg) })
	}
}

// withDefaults returns o with every unset field at its default; isFeed
// says whether the Backend has a change feed to read.
func (o ManagerOptions) withDefaults(isFeed bool) ManagerOptions {
	if o.Lifetime == 0 {
		o.Lifetime = defaultLifetime
	}
	if o.IdleTimeout > 0 && o.TouchInterval <= 0 {
		o.TouchInterval = min(o.IdleTimeout/10, maxTouchInterval)
	}
	if o.CleanupInterval == 0 {
		o.CleanupInterval = defaultCleanupInterval
	}
	if o.RetryInterval <= 0 {
		o.RetryInterval = defaultRetryInterval
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxAnonymous <= 0 {
		o.MaxAnonymous = defaultMaxAnonymous
	}
	if o.SyncInterval == 0 && isFeed {
		o.SyncInterval = defaultSyncInterval
	}
	if o.SyncInterval > 0 {
		if o.ReadThroughRate <= 0 {
			o.ReadThroughRate = defaultReadThroughRate
		}
		if o.ResyncInterval == 0 {
			o.ResyncInterval = defaultResyncInterval
		}
	}
	return o
}

func (m *Manager) load(ctx context.Context) error {
	now := m.now()
	add := func(s *Session) error {
		// Anonymous sessions are read when used, not at start.
		if s.UserID != "" && !s.Expired(now) && !m.idle(s.UpdatedAt.UnixNano(), now.UnixNano()) {
			m.put(s)
		}
		return nil
	}
	if err := m.backend.Stream(ctx, now, add); err != nil {
		return fmt.Errorf("gormsession: load sessions: %w", err)
	}
	return nil
}

// clock returns the current time in UTC, truncated to microseconds: the
// precision every supported database keeps, so memory and rows agree.
func (m *Manager) clock() time.Time {
	return m.now().UTC().Truncate(time.Microsecond)
}

// Create creates a session, writes it to the Backend and then to memory,
// and returns it with its Token set. If the Backend fails, the error is
// returned and the token is never valid. A session that a concurrent
// RevokeUser or RevokeOthers revoked before Create could return it is not
// returned: the error wraps ErrNotFound.
func (m *Manager) Create(ctx context.Context, p Attributes) (Session, error) {
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
	m.beginCreate(s.ID)
	if err := m.backend.Insert(ctx, &s); err != nil {
		m.abortCreate(s.ID)
		return Session{}, err
	}
	if !m.commitCreate(ctx, &s) {
		return Session{}, fmt.Errorf("gormsession: create: revoked while being created: %w", ErrNotFound)
	}
	s.Token = token
	return s, nil
}

// fitFields checks s against the column sizes: a Device label (often taken
// from a User-Agent header) is shortened to MaxFieldLen bytes, a longer
// UserID or TenantID is an error.
func fitFields(s *Session) error {
	if len(s.UserID) > MaxFieldLen || len(s.TenantID) > MaxFieldLen {
		return fmt.Errorf("%w: user %d bytes, tenant %d bytes, at most %d each", ErrTooLong, len(s.UserID), len(s.TenantID), MaxFieldLen)
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

// maxUpdateAttempts bounds how often Update re-reads a session that others
// keep changing before it gives up with ErrConflict.
const maxUpdateAttempts = 8

// Update changes the session with the given ID: fn receives a copy and may
// change TenantID, Device, Data and ExpiresAt (changes to ID, Token, UserID,
// CreatedAt, UpdatedAt and Version are ignored). fn must not modify the
// bytes of the Data it receives; assign a new slice instead. fn sees
// UpdatedAt set to the time of this update, by the Manager's clock, so that
// it can set an expiry relative to it (a sliding lifetime).
//
// An update that changes nothing (the same tenant, device, data and expiry)
// writes nothing and returns the session as it is.
//
// The write is conditional on the version fn saw: when another writer, on
// this instance or another, changed the session first, Update reads the
// session again and calls fn again on the new copy, so no change is lost.
// fn may therefore run more than once. The result is written to the
// Backend first and then to memory. An anonymous session that memory no
// longer holds (evicted, see MaxAnonymous) is read from the Backend first.
// Update returns the updated session, or an error wrapping ErrNotFound
// when the Backend has no such unexpired session (revoked, expired, or
// removed), or when this Manager revoked it while the write was under way.
func (m *Manager) Update(ctx context.Context, id string, fn func(*Session)) (Session, error) {
	if m.closed.Load() {
		return Session{}, ErrClosed
	}
	cur, err := m.current(ctx, id)
	if err != nil {
		return Session{}, err
	}
	for range maxUpdateAttempts {
		s, err := m.change(cur, fn)
		if err != nil {
			return Session{}, err
		}
		if sameContent(&s, &cur) {
			return cur, nil // nothing to write
		}
		err = m.backend.Update(ctx, &s)
		switch {
		case err == nil:
			if !m.commitUpdate(&s) {
				// Revoked here while the write was under way; the
				// revocation's own write ends the row.
				return Session{}, fmt.Errorf("gormsession: update %s: %w", id, ErrNotFound)
			}
			return s, nil
		case errors.Is(err, ErrConflict):
			fresh, found, gerr := m.backend.Get(ctx, id)
			if gerr != nil {
				return Session{}, gerr
			}
			if !found || m.learn(&fresh) == nil {
				m.recordRevoked(id)
				return Session{}, fmt.Errorf("gormsession: update %s: %w", id, ErrNotFound)
			}
			cur = fresh
		case errors.Is(err, ErrNotFound):
			m.recordRevoked(id)
			return Session{}, err
		default:
			return Session{}, err
		}
	}
	return Session{}, fmt.Errorf("gormsession: update %s: gave up after %d attempts: %w", id, maxUpdateAttempts, ErrConflict)
}

// sameContent reports whether a and b hold the same tenant, device, data and
// expiry: an update from one to the other changes nothing stored.
func sameContent(a, b *Session) bool {
	return a.TenantID == b.TenantID && a.Device == b.Device && bytes.Equal(a.Data, b.Data) &&
		a.ExpiresAt.Equal(b.ExpiresAt)
}

// current returns the unexpired session id from memory or, when memory does
// not hold it (an evicted anonymous session, one created on another
// instance moments ago), from the Backend.
func (m *Manager) current(ctx context.Context, id string) (Session, error) {
	e := m.lookup(id)
	if e == nil && ValidID(id) {
		s, found, err := m.backend.Get(ctx, id)
		if err != nil {
			return Session{}, err
		}
		if found {
			e = m.learn(&s)
		}
	}
	if e == nil || m.expired(e, m.now().UnixNano()) {
		return Session{}, fmt.Errorf("gormsession: update %s: %w", id, ErrNotFound)
	}
	return e.session(), nil
}

// change applies fn to a copy of cur and returns the session to write.
func (m *Manager) change(cur Session, fn func(*Session)) (Session, error) {
	now := m.clock()
	s := cur
	s.UpdatedAt = now
	fn(&s)
	s.ID, s.Token, s.UserID, s.CreatedAt, s.Version = cur.ID, "", cur.UserID, cur.CreatedAt, cur.Version
	s.UpdatedAt = now
	if err := fitFields(&s); err != nil {
		return Session{}, err
	}
	if bytes.Equal(s.Data, cur.Data) {
		s.Data = cur.Data
	} else {
		s.Data = cloneData(s.Data)
	}
	return s, nil
}

// Rotate replaces the session of token with a new one: a new token, the same
// user, tenant, device, data, creation time and expiry. The old token stops
// working. Call it when privileges change (after sign-in, after a password
// change) to defend against session fixation.
//
// Rotation is one atomic step in the Backend: of concurrent rotations of
// one token, on any number of instances, one succeeds; a token revoked on
// any instance cannot be rotated. It returns the new session with its Token
// set, or an error wrapping ErrNotFound when token does not resolve or was
// revoked or rotated already.
func (m *Manager) Rotate(ctx context.Context, token string) (Session, error) {
	if m.closed.Load() {
		return Session{}, ErrClosed
	}
	old, ok := m.Resolve(ctx, token)
	if !ok {
		return Session{}, fmt.Errorf("gormsession: rotate: %w", ErrNotFound)
	}
	newToken := NewToken()
	newID := HashToken(newToken)
	if err := m.beginRotate(ctx, old.ID, newID); err != nil {
		return Session{}, fmt.Errorf("gormsession: rotate: %w", err)
	}
	defer m.endRotate(old.ID)
	s, err := m.backend.Rotate(ctx, old.ID, newID, m.clock())
	if err != nil {
		m.abortCreate(newID)
		if errors.Is(err, ErrNotFound) {
			m.recordRevoked(old.ID)
		}
		return Session{}, err
	}
	m.recordRevoked(old.ID)
	if err := m.rekeep(old.ID, s.ID); err != nil {
		m.log.Warn("gormsession: rotation not journaled: a restart may sign the session out with its queued revocation",
			"id", s.ID, "err", err)
	}
	if !m.commitCreate(ctx, &s) {
		return Session{}, fmt.Errorf("gormsession: rotate: revoked while being rotated: %w", ErrNotFound)
	}
	s.Token = newToken
	return s, nil
}

// Close stops the background goroutines and waits for them to end, then
// makes a last attempt at queued revocations and activity writes.
// Revocations still not persisted are reported with ErrNotPersisted; they
// stay in the Journal, if there is one, for the next process to replay.
// Sessions stay resolvable from memory; writes return ErrClosed. Close is
// idempotent.
func (m *Manager) Close() error {
	if !m.closed.CompareAndSwap(false, true) {
		return nil
	}
	m.cancel()
	m.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	err := errors.Join(m.retryRevocations(ctx), m.flushTouches(ctx), m.pending.close())
	if err != nil {
		return fmt.Errorf("gormsession: close: %w", err)
	}
	return nil
}
