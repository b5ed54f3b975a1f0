package gormsession

// What this Manager has under way or knows about session IDs and users,
// in one table of claims, and the queue of revocations the Backend has not
// acknowledged yet (retried in the background, journaled with
// ManagerOptions.Journal).
//
// Manager.mu comes first in the lock order (see memory.go). It is held
// only for memory work: never across a Backend call, never across a
// journal write (an fsync). Waiting for a claim to be released (a
// rotation waiting for a write that keeps its session, and the other way
// round; a creation waiting for a user-wide revocation under way) releases
// Manager.mu and waits for claims.changed.
//
// learn (a row read from the Backend), commitCreate (a session this
// Manager wrote) and commitUpdate consult the claims and nothing else to
// decide whether a session may be put in memory.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"gorm.io/gorm"
)

// revocation is one revoking write: of one session (ID), or of the
// sessions of a user created before Before (unix nanoseconds) except
// KeepID.
type revocation struct {
	ID     string
	UserID string
	KeepID string
	Before int64
}

// covers reports whether r revokes s.
func (r revocation) covers(s *Session) bool {
	if r.UserID == "" {
		return r.ID == s.ID
	}
	return r.UserID == s.UserID && s.ID != r.KeepID && s.CreatedAt.UnixNano() < r.Before
}

// valid reports whether r is a revocation the API accepts.
func (r revocation) valid() bool {
	if r.UserID == "" {
		return ValidID(r.ID) && r.KeepID == "" && r.Before == 0
	}
	return r.ID == "" && len(r.UserID) <= MaxFieldLen && (r.KeepID == "" || ValidID(r.KeepID))
}

// idClaim is what this Manager has under way, or knows, about one session
// ID. A claim with nothing to say is deleted.
type idClaim struct {
	creating bool // being written by Create or Rotate, not yet in memory
	// seen is the newest copy of a session being created that the Backend
	// showed meanwhile (nil when none): a copy proves the row committed,
	// so a creation whose reply was lost still ends with the row in
	// memory (see abortCreate).
	seen     *Session
	revoked  bool  // revoked: never put in memory again
	settled  int64 // unix ns when the Backend was known to have the revocation; 0 while not
	writing  int   // Revoke calls of this ID whose first write is under way
	job      *job  // the queued write of its revocation
	rotating bool  // being rotated here
	keeps    int   // user-wide writes under way that keep this ID
}

// idle reports whether the claim says nothing any more.
func (c *idClaim) idle() bool {
	return !c.creating && !c.revoked && !c.rotating && c.writing == 0 && c.job == nil && c.keeps == 0
}

// userClaim is a user-wide revocation under way or queued. It is
// registered before its first write, and refuses the sessions it covers
// until the Backend has it.
type userClaim struct {
	r       revocation
	writing bool // a write of it is under way
	failed  bool // a write failed: it is queued, and the first write's outcome is unknown
	job     *job
	// blocked are the sessions it kept out of memory: those it found
	// there, and those learn refused while it was unsettled.
	blocked map[string]struct{}
}

// job is a queued revocation: the persistence of one claim.
type job struct {
	seq  uint64
	id   string     // an ID revocation's ID
	user *userClaim // a user-wide one's claim, whose keep may move
	busy bool       // a write of it is under way
}

// rev returns the revocation j writes. Manager.mu is held.
func (j *job) rev() revocation {
	if j.user != nil {
		return j.user.r
	}
	return revocation{ID: j.id}
}

// claims is the table; Manager.mu guards it.
type claims struct {
	ids      map[string]*idClaim
	users    map[string][]*userClaim
	jobs     map[uint64]*job
	reserved int    // queue places taken by writes that are being journaled
	maxJobs  int    // MaxPendingRevocations; lower in tests
	seq      uint64 // the last job's sequence
	changed  chan struct{}
}

func newClaims() claims {
	return claims{
		ids:     make(map[string]*idClaim),
		users:   make(map[string][]*userClaim),
		jobs:    make(map[uint64]*job),
		maxJobs: MaxPendingRevocations,
		changed: make(chan struct{}),
	}
}

// pendingRevocations is the persistence of the queue: the journal, if
// there is one, and what it held at start.
type pendingRevocations struct {
	journal *journal    // nil without ManagerOptions.Journal
	loaded  []journaled // read at start, for replayRevocations
	n       atomic.Int64
}

// len returns how many revocations are queued.
func (p *pendingRevocations) len() int { return int(p.n.Load()) }

// close closes the journal.
func (p *pendingRevocations) close() error {
	if p.journal == nil {
		return nil
	}
	return p.journal.close()
}

// claim returns the claim of id, making it. Manager.mu is held.
func (m *Manager) claim(id string) *idClaim {
	c := m.cl.ids[id]
	if c == nil {
		c = &idClaim{}
		m.cl.ids[id] = c
	}
	return c
}

// release deletes the claim of id if it says nothing, and wakes those
// waiting for a claim. Manager.mu is held.
func (m *Manager) release(id string) {
	if c := m.cl.ids[id]; c != nil && c.idle() {
		delete(m.cl.ids, id)
	}
	close(m.cl.changed)
	m.cl.changed = make(chan struct{})
}

// waitFor waits, with Manager.mu held on entry and on return, until ok
// reports true or ctx is done.
func (m *Manager) waitFor(ctx context.Context, ok func() bool) error {
	for !ok() {
		ch := m.cl.changed
		m.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			m.mu.Lock()
			return ctx.Err()
		}
		m.mu.Lock()
	}
	return nil
}

// coveringUser returns the unsettled user-wide claim that covers s, if
// any. Manager.mu is held.
func (m *Manager) coveringUser(s *Session) *userClaim {
	for _, uc := range m.cl.users[s.UserID] {
		if uc.r.covers(s) {
			return uc
		}
	}
	return nil
}

// learn puts a session read from the Backend into memory, unless a claim
// says it is being created here or revoked. It returns the entry now in
// memory, if any.
func (m *Manager) learn(s *Session) *entry {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.learnLocked(s)
}

// learnLocked is learn with Manager.mu held.
func (m *Manager) learnLocked(s *Session) *entry {
	c := m.cl.ids[s.ID]
	if c != nil && c.revoked {
		return nil
	}
	if c != nil && c.creating {
		if c.seen == nil || c.seen.Version < s.Version {
			kept := *s // s may be reused by the caller
			c.seen = &kept
		}
		return nil
	}
	if uc := m.coveringUser(s); uc != nil {
		uc.blocked[s.ID] = struct{}{}
		return nil
	}
	now := m.now()
	if s.Expired(now) || m.idle(s.UpdatedAt.UnixNano(), now.UnixNano()) {
		m.drop(s.ID)
		return nil
	}
	return m.put(s)
}

// beginCreate claims id for a session being written to the Backend: until
// commitCreate, learn leaves it to its creator, and a revocation that
// reaches it cancels it.
func (m *Manager) beginCreate(id string) {
	m.mu.Lock()
	m.claim(id).creating = true
	m.mu.Unlock()
}

// abortCreate drops the claim of a creation the Backend reported failed.
// When the change feed or a lookup showed the row meanwhile, the write
// landed and only its reply was lost: the row is put in memory as learn
// would have, since the feed has moved past it and will not show it
// again.
func (m *Manager) abortCreate(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var seen *Session
	if c := m.cl.ids[id]; c != nil {
		c.creating, seen, c.seen = false, c.seen, nil
	}
	if seen != nil {
		m.learnLocked(seen)
	}
	m.release(id)
}

// commitCreate puts s, now in the Backend, into memory, unless it was
// revoked since beginCreate, and reports whether it did. A user-wide
// revocation under way that covers s is waited for: whether its write
// ended s decides.
func (m *Manager) commitCreate(ctx context.Context, s *Session) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	defer m.release(s.ID)
	c := m.claim(s.ID)
	defer func() { c.creating, c.seen = false, nil }()
	err := m.waitFor(ctx, func() bool {
		uc := m.coveringUser(s)
		return c.revoked || uc == nil || !uc.writing || uc.failed
	})
	if err != nil || c.revoked || m.coveringUser(s) != nil {
		// A queued user-wide revocation covers s: its retry ends it.
		return false
	}
	m.put(s)
	if seen := c.seen; seen != nil {
		c.creating = false
		m.learnLocked(seen) // a later version, if another instance changed it already
	}
	return true
}

// commitUpdate puts s, just written to the Backend, into memory, unless a
// claim says it was revoked meanwhile; an anonymous session evicted
// meanwhile comes back. It reports whether s is live. It only reads the
// claims, so it holds Manager.mu for reading: a revocation, which writes
// its claim and drops the session under the write lock, comes wholly
// before or wholly after it. Two commitUpdates of one session may run
// together; put keeps the later version.
func (m *Manager) commitUpdate(s *Session) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if c := m.cl.ids[s.ID]; (c != nil && c.revoked) || m.coveringUser(s) != nil {
		return false
	}
	m.put(s)
	return true
}

// recordRevoked records that the Backend has the revocation of ids (a
// change read from it, or what a revoking write of ours returned): they
// leave memory, their creation is cancelled, and no row read before can
// bring them back. It returns how many were in memory.
func (m *Manager) recordRevoked(ids ...string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.recordRevokedLocked(ids...)
}

// recordRevokedLocked is recordRevoked with Manager.mu held.
func (m *Manager) recordRevokedLocked(ids ...string) int {
	now := m.now().UnixNano()
	n := 0
	for _, id := range ids {
		c := m.claim(id)
		c.creating = false
		if !c.revoked || (c.writing == 0 && c.job == nil) {
			c.settled = now
		}
		c.revoked = true
		if m.drop(id) {
			n++
		}
	}
	if len(ids) > 0 {
		m.release(ids[0])
	}
	return n
}

// Revoke ends the session with the given ID. It takes effect in memory at
// once. It returns nil once the Backend has the revocation; when the
// Backend fails, the error wraps ErrNotPersisted, the session stays refused
// and the write is retried in the background (and journaled, with
// ManagerOptions.Journal). Revoking an unknown ID is not an error, nor is
// revoking an ID no session can have (see ValidID): that does nothing.
// An error the database will never accept is returned and not retried.
func (m *Manager) Revoke(ctx context.Context, id string) error {
	if m.closed.Load() {
		return ErrClosed
	}
	if !ValidID(id) {
		return nil
	}
	m.mu.Lock()
	c := m.claim(id)
	c.creating = false
	c.revoked = true
	c.settled = 0
	c.writing++
	m.drop(id)
	m.mu.Unlock()
	err := m.backend.Revoke(ctx, id)
	if err != nil && !permanent(err) {
		return notPersisted(err, m.enqueue(revocation{ID: id}, nil, func() { c.writing-- }))
	}
	m.mu.Lock()
	c.writing--
	if c.writing == 0 && c.job == nil {
		c.settled = m.now().UnixNano()
	}
	m.release(id)
	m.mu.Unlock()
	if err != nil {
		return fmt.Errorf("gormsession: revoke %s: the database refuses it for good: %w", id, err)
	}
	return nil
}

// RevokeUser ends every session of userID, in memory at once and in the
// Backend, and returns how many sessions it revoked. With a Backend that
// is a UserRevoker (the Store is) that is one statement, which also ends
// the sessions of the user that other instances created and this one has
// not seen yet. With any other Backend it revokes, one by one, the
// sessions of the user that this Manager holds in memory: those it loaded
// at start, created, or read from the change feed since. Errors are as for
// Revoke; a user ID longer than MaxFieldLen is ErrTooLong.
func (m *Manager) RevokeUser(ctx context.Context, userID string) (int, error) {
	return m.revokeUser(ctx, userID, "")
}

// RevokeOthers ends every session of userID except keepID ("sign out
// everywhere else") and returns how many it revoked. Errors are as for
// RevokeUser; a keepID no session can have (see ValidID) is an error, and
// nothing is revoked.
func (m *Manager) RevokeOthers(ctx context.Context, userID, keepID string) (int, error) {
	if !ValidID(keepID) {
		return 0, errors.New("gormsession: revoke other sessions: malformed ID of the session to keep")
	}
	return m.revokeUser(ctx, userID, keepID)
}

func (m *Manager) revokeUser(ctx context.Context, userID, keepID string) (int, error) {
	if m.closed.Load() {
		return 0, ErrClosed
	}
	if userID == "" {
		return 0, errors.New("gormsession: revoke sessions of a user: empty user ID")
	}
	if len(userID) > MaxFieldLen {
		return 0, fmt.Errorf("%w: user %d bytes, at most %d", ErrTooLong, len(userID), MaxFieldLen)
	}
	ur, ok := m.backend.(UserRevoker)
	if !ok {
		return m.revokeEach(ctx, userID, keepID)
	}
	// The claim is registered before the write, so that no session it
	// covers is put in memory meanwhile, and waits for a rotation of the
	// session it keeps.
	m.mu.Lock()
	if keepID != "" {
		if err := m.waitFor(ctx, func() bool { return m.cl.ids[keepID] == nil || !m.cl.ids[keepID].rotating }); err != nil {
			m.mu.Unlock()
			return 0, err
		}
		m.claim(keepID).keeps++
	}
	// The cut-off a retry keeps to, should the database refuse this call:
	// the latest the database's clock can read now, by what this instance
	// measured, so that no session created before the call escapes it (a
	// retry may also end one created within that uncertainty after it).
	uc := &userClaim{
		r:       revocation{UserID: userID, KeepID: keepID, Before: m.clock().UnixNano() + m.uncertainty.Load()},
		writing: true,
		blocked: make(map[string]struct{}),
	}
	m.cl.users[userID] = append(m.cl.users[userID], uc)
	for _, id := range m.users.ids(userID) {
		if e := m.lookup(id); e != nil {
			if s := e.session(); uc.r.covers(&s) {
				uc.blocked[id] = struct{}{}
				m.drop(id)
			}
		}
	}
	found := slices.Collect(maps.Keys(uc.blocked))
	m.mu.Unlock()
	n := len(found)

	// No cut-off on this first attempt: the database decides, inside the
	// statement, which sessions came before it. A retry, later, is limited
	// to the sessions created before r.Before.
	removed, err := ur.RevokeUser(ctx, userID, keepID, time.Time{})
	if err != nil && !permanent(err) {
		err = notPersisted(err, m.enqueue(uc.r, uc, func() {
			uc.writing = false
			uc.failed = true
			m.unkeep(keepID)
		}))
		return n, err
	}
	m.settleUser(ctx, uc, removed, err == nil, func() { m.unkeep(keepID) })
	if err != nil {
		return n, fmt.Errorf("gormsession: revoke sessions of a user: the database refuses it for good: %w", err)
	}
	revoked := make(map[string]struct{}, n+len(removed))
	for _, id := range slices.Concat(found, removed) {
		revoked[id] = struct{}{}
	}
	return len(revoked), nil
}

// revokeEach revokes the sessions of userID that memory holds one by one,
// for a Backend that is not a UserRevoker (see RevokeUser).
func (m *Manager) revokeEach(ctx context.Context, userID, keepID string) (int, error) {
	var ids []string
	for _, id := range m.users.ids(userID) {
		if id != keepID {
			ids = append(ids, id)
		}
	}
	var errs []error
	for _, id := range ids {
		errs = append(errs, m.Revoke(ctx, id))
	}
	return len(ids), errors.Join(errs...)
}

// unkeep ends a user-wide write's hold on the session it keeps. Manager.mu
// is held.
func (m *Manager) unkeep(keepID string) {
	if keepID == "" {
		return
	}
	if c := m.cl.ids[keepID]; c != nil {
		c.keeps--
	}
	m.release(keepID)
}

// settleUser retires user-wide claim uc, whose write returned: landed
// (with the IDs the Backend removed) or refused for good. done runs with
// Manager.mu held. The sessions uc kept out of memory are either ended
// for good or, when no write of uc can have ended them, read again.
func (m *Manager) settleUser(ctx context.Context, uc *userClaim, removed []string, landed bool, done func()) {
	m.mu.Lock()
	done()
	uc.writing = false
	m.cl.users[uc.r.UserID] = slices.DeleteFunc(m.cl.users[uc.r.UserID], func(x *userClaim) bool { return x == uc })
	if len(m.cl.users[uc.r.UserID]) == 0 {
		delete(m.cl.users, uc.r.UserID)
	}
	m.recordRevokedLocked(removed...)
	var reread []string
	if landed && uc.failed {
		// An earlier write may have landed and its reply been lost:
		// every session uc kept out existed before this write, so this
		// write ended it if that one did not.
		m.recordRevokedLocked(slices.Collect(maps.Keys(uc.blocked))...)
	} else {
		// This write is the only one. What it did not remove was ended
		// by someone else, or was created after it, or the database's
		// cut-off left it: the database says which.
		for id := range uc.blocked {
			if !slices.Contains(removed, id) {
				reread = append(reread, id)
			}
		}
	}
	m.release("")
	m.mu.Unlock()
	for _, id := range reread {
		s, found, err := m.backend.Get(ctx, id)
		if err != nil {
			m.log.Warn("gormsession: a session a user-wide revocation left is not read again", "id", id, "err", err)
			continue
		}
		if found {
			m.learn(&s)
		}
	}
}

// enqueue queues the revocation r (of the user-wide claim uc, if not nil)
// that the Backend refused, journaling it first: a retry never sees a job
// whose record is not yet written. attach runs with Manager.mu held once
// the job is queued (or refused). It returns the journal's error, or
// ErrTooManyPending.
func (m *Manager) enqueue(r revocation, uc *userClaim, attach func()) error {
	m.mu.Lock()
	if r.UserID == "" {
		if c := m.cl.ids[r.ID]; c != nil && c.job != nil {
			attach() // queued already
			m.release(r.ID)
			m.mu.Unlock()
			return nil
		}
	}
	if len(m.cl.jobs)+m.cl.reserved >= m.cl.maxJobs {
		attach()
		m.release(r.ID)
		m.mu.Unlock()
		return fmt.Errorf("%w: %d", ErrTooManyPending, m.cl.maxJobs)
	}
	m.cl.reserved++
	m.cl.seq++
	j := &job{seq: m.cl.seq, id: r.ID, user: uc}
	m.mu.Unlock()

	var err error
	if m.pending.journal != nil {
		err = m.pending.journal.put(j.seq, r)
	}

	m.mu.Lock()
	m.cl.reserved--
	m.cl.jobs[j.seq] = j
	m.pending.n.Add(1)
	if uc != nil {
		uc.job = j
	} else {
		m.claim(r.ID).job = j
	}
	attach()
	m.release(r.ID)
	m.mu.Unlock()
	return err
}

// write writes revocation r to the Backend and returns the IDs a
// user-wide one removed.
func (m *Manager) write(ctx context.Context, r revocation) ([]string, error) {
	if r.UserID == "" {
		return nil, m.backend.Revoke(ctx, r.ID)
	}
	ur, ok := m.backend.(UserRevoker)
	if !ok {
		return nil, nil // queued only with a UserRevoker
	}
	return ur.RevokeUser(ctx, r.UserID, r.KeepID, time.Unix(0, r.Before))
}

// rekeep records that session from was rotated into session to: the
// queued user-wide revocations that keep from keep to instead, since the
// user kept that device (a rotation keeps the creation time, so a
// revocation still keyed to from would end to when it lands). The caller
// holds the rotating claim of from, so no write keeping from is under way.
// The journal's records move in one transaction.
func (m *Manager) rekeep(from, to string) error {
	m.mu.Lock()
	var seqs []uint64
	for _, ucs := range m.cl.users {
		for _, uc := range ucs {
			if uc.r.KeepID == from {
				uc.r.KeepID = to
				delete(uc.blocked, to)
				if uc.job != nil {
					seqs = append(seqs, uc.job.seq)
				}
			}
		}
	}
	m.mu.Unlock()
	if len(seqs) == 0 || m.pending.journal == nil {
		return nil
	}
	return m.pending.journal.rekeep(seqs, to)
}

// beginRotate claims old for its rotation into newID, once no user-wide
// write that keeps old is under way, and newID for its creation.
func (m *Manager) beginRotate(ctx context.Context, old, newID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	err := m.waitFor(ctx, func() bool {
		c := m.cl.ids[old]
		return c == nil || (c.keeps == 0 && !c.rotating)
	})
	if err != nil {
		return err
	}
	m.claim(old).rotating = true
	m.claim(newID).creating = true
	return nil
}

// endRotate releases the rotating claim of old.
func (m *Manager) endRotate(old string) {
	m.mu.Lock()
	if c := m.cl.ids[old]; c != nil {
		c.rotating = false
	}
	m.release(old)
	m.mu.Unlock()
}

// permanent reports whether err, a Backend write's error, is one that
// retrying cannot fix: the database refused the statement's data, as
// opposed to a connection failure, a timeout or a missing table, which are
// retried. Refused data is SQLSTATE class 22 (data exception, such as
// invalid UTF-8 on PostgreSQL) or 23 (integrity constraint violation); on
// MySQL and MariaDB also errors 1267 (a string in a character set the
// column's cannot be compared with) and 1300 (bytes invalid in the
// connection's character set), which they report under the general
// SQLSTATE HY000.
func permanent(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var st interface{ SQLState() string }
	if errors.As(err, &st) {
		return refusedData(st.SQLState())
	}
	if number, state, ok := mysqlError(err); ok {
		return refusedData(state) || number == 1267 || number == 1300
	}
	return errors.Is(err, gorm.ErrInvalidValue) || errors.Is(err, gorm.ErrDuplicatedKey) ||
		errors.Is(err, gorm.ErrForeignKeyViolated) || errors.Is(err, gorm.ErrCheckConstraintViolated)
}

// refusedData reports whether a SQLSTATE is of class 22 or 23.
func refusedData(state string) bool {
	return strings.HasPrefix(state, "22") || strings.HasPrefix(state, "23")
}

// mysqlError returns the error number and SQLSTATE of the first error in
// err's tree that is go-sql-driver/mysql's *MySQLError, recognized by its
// fields (Number uint16, SQLState [5]byte): the driver has no method that
// returns them, and the package imports no driver.
func mysqlError(err error) (number uint16, state string, ok bool) {
	v := reflect.ValueOf(err)
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return 0, "", false
		}
		v = v.Elem()
	}
	if v.Kind() == reflect.Struct {
		n, s := v.FieldByName("Number"), v.FieldByName("SQLState")
		if n.IsValid() && n.Kind() == reflect.Uint16 && s.IsValid() && s.Type() == reflect.TypeFor[[5]byte]() {
			code := s.Interface().([5]byte)
			return uint16(n.Uint()), string(code[:]), true
		}
	}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		return mysqlError(u.Unwrap())
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			if number, state, ok := mysqlError(e); ok {
				return number, state, true
			}
		}
	}
	return 0, "", false
}

// notPersisted wraps err, the Backend's refusal of a revocation, with
// ErrNotPersisted, and with the journal's error if that failed too.
func notPersisted(err, journalErr error) error {
	return errors.Join(fmt.Errorf("%w: %w", ErrNotPersisted, err), journalErr)
}
