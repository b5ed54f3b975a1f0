package gormsession

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"time"
)

// Session is one login on one device.
//
// A Session is a value: changing a copy changes nothing stored. Data is shared
// with the Manager's memory and must be treated as read-only; use
// [Manager.Update] to change it.
type Session struct {
	// ID is the hex SHA-256 of the token. It is the primary key at rest, safe
	// to log and to show to the user, and it is what Revoke takes.
	ID string
	// Token is the bearer secret. It is set only on the value returned by
	// Create and Rotate; it is never stored and must never be logged.
	Token string
	// UserID is the application's identifier of the user.
	UserID string
	// TenantID is an optional tenant (organisation, workspace) identifier.
	TenantID string
	// Device is a short label for the device, such as "Firefox on Linux".
	Device string
	// Data is an opaque payload kept with the session.
	Data []byte
	// CreatedAt is when the session was created. It never changes.
	CreatedAt time.Time
	// UpdatedAt is when the session was last changed, or last seen when the
	// Manager has an idle timeout.
	UpdatedAt time.Time
	// ExpiresAt is when the session stops being valid; the zero time means
	// never. A session is expired when now >= ExpiresAt.
	ExpiresAt time.Time
	// Version is the stored version of the session: 1 when created,
	// advanced by every change. Backends write conditionally on it, and the
	// Manager applies changes from other instances in version order. It is
	// 0 on a session not yet stored.
	Version int64
}

// Expired reports whether the session is expired at now. The boundary is
// inclusive: a session whose ExpiresAt equals now is expired. A zero
// ExpiresAt never expires.
func (s *Session) Expired(now time.Time) bool {
	return !s.ExpiresAt.IsZero() && !now.Before(s.ExpiresAt)
}

// Backend is where sessions are persisted. Implementations must be safe for
// concurrent use. Optional capabilities are the small interfaces below
// (UserRevoker, ExpiredRemover, Toucher, ChangeFeed), detected by
// type assertion the way database/sql detects driver capabilities.
//
// A Backend keeps the Manager's consistency model (see the package doc):
// every stored session carries a Version that every change advances;
// Insert only inserts, Update only updates the live row at the version the
// caller read, and a removed session stays removed. The package backendtest
// is the contract every Backend must pass.
type Backend interface {
	// Stream calls fn for every live session with a UserID that is not
	// expired at now (anonymous sessions, without a UserID, are left out:
	// they are read by ID when used), so that a Manager loading a million
	// sessions needs no second copy of them. The *Session is reused between
	// calls; fn must copy what it keeps (the strings and the Data slice are
	// freshly allocated and may be kept). An error from fn stops the stream
	// and is returned.
	Stream(ctx context.Context, now time.Time, fn func(*Session) error) error
	// Get returns the live session with the given ID. found is false, with
	// a nil error, when there is none.
	Get(ctx context.Context, id string) (s Session, found bool, err error)
	// Insert stores a new session and sets s.Version to 1. It never
	// overwrites: an ID that exists, live or removed, is an error. The
	// Token field is ignored.
	Insert(ctx context.Context, s *Session) error
	// Update writes TenantID, Device, Data, UpdatedAt and ExpiresAt of s
	// over the live session with s.ID, only if its version is still
	// s.Version, and then sets s.Version to the new version. It returns an
	// error wrapping ErrNotFound when there is no live session with s.ID
	// (an update never inserts), and one wrapping ErrConflict when the
	// session has another version. UserID and CreatedAt never change.
	Update(ctx context.Context, s *Session) error
	// Rotate replaces the live, unexpired (at at) session oldID with a
	// successor newID in one atomic step: the old session is removed and
	// the successor, with the old one's user, tenant, device, data,
	// creation and expiry times, is inserted at version 1 with UpdatedAt
	// at. It returns the successor. When oldID is not live and unexpired it
	// changes nothing and returns an error wrapping ErrNotFound, so that
	// concurrent rotations of one session yield one successor and a removed
	// session has none.
	Rotate(ctx context.Context, oldID, newID string, at time.Time) (Session, error)
	// Revoke ends the session with the given ID. Revoking an ID that does
	// not exist, or was revoked already, is not an error. A revoked session
	// never comes back: Get, Stream and Update no longer see it.
	Revoke(ctx context.Context, id string) error
}

// UserRevoker is a Backend that can revoke the sessions of a user at once.
type UserRevoker interface {
	// RevokeUser revokes every live session of userID, except the one with
	// ID exceptID (none when empty), and returns the IDs it revoked. With a
	// zero createdBefore it revokes every such session committed before
	// the statement runs: the database decides what came first, so no
	// instance's clock can let a session created a moment earlier slip
	// through. A non-zero createdBefore (a revocation retried after an
	// outage) further limits it to the sessions created before that time,
	// so that a retry does not end the sessions of a later sign-in.
	RevokeUser(ctx context.Context, userID, exceptID string, createdBefore time.Time) ([]string, error)
}

// ExpiredRemover is a Backend that can delete expired sessions in bulk.
type ExpiredRemover interface {
	// RemoveExpired deletes every session whose ExpiresAt is at or before
	// the database's clock, and the tombstones older than the Backend
	// keeps them, and returns how many expired sessions it deleted. The
	// database's clock decides, so that an instance whose clock runs
	// ahead cannot delete sessions that are live by everyone else's.
	RemoveExpired(ctx context.Context) (int64, error)
}

// Toucher is a Backend that can record activity on many sessions in one
// statement. The Manager uses it to persist idle-timeout activity in
// coalesced batches rather than one write per request.
type Toucher interface {
	// Touch moves UpdatedAt forward to at for every live session in ids
	// whose UpdatedAt is earlier. Activity is not a change of the session:
	// Touch does not advance the Version.
	Touch(ctx context.Context, ids []string, at time.Time) error
}

// FeedPosition is where a reader of a ChangeFeed stands, and the
// database's clock as that read saw it.
type FeedPosition struct {
	// Cursor is what the next call of Changes continues from. Its meaning
	// is the Backend's own; the Manager only hands it back.
	Cursor int64
	// Now is the database's clock at the read. The Manager measures its
	// own clock's offset from it, so that every instance judges expiry by
	// the database's clock.
	Now time.Time
	// Ordered reports whether the feed is ordered by commit: Changes from
	// a Cursor returns every change committed after the read that gave
	// it, however long its commit waited. When false (a feed that reads a
	// window of the database's clock, as on MySQL), a change whose commit
	// landed later than the window allows can be missed, and the Manager
	// backs the feed with a periodic full comparison (see
	// ManagerOptions.ResyncInterval).
	Ordered bool
}

// ChangeFeed is a Backend that can list changes in the order the database
// committed them, so that several Managers on one database stay coherent:
// what one instance creates, updates, rotates or revokes reaches the
// others. No part of it rests on the instances' clocks.
type ChangeFeed interface {
	// Head returns the position of the feed now, without reading changes:
	// a Manager takes it before loading, and reads changes from it after.
	Head(ctx context.Context) (FeedPosition, error)
	// Changes calls fn for every session inserted, updated, touched or
	// removed after the read that returned cursor, with its Version, and
	// returns the position to continue from. revoked is true for a removed
	// session; the Backend must report removals this way for
	// TombstoneTTL after they happen (a tombstone), not forget them at
	// once. A change may be reported more than once: the Manager applies
	// changes by version. It may leave out anonymous sessions exactly as
	// they were inserted (version 1, never touched): no instance can hold
	// an older copy of one, so there is nothing to apply, and a flood of
	// new visitors on one instance then costs the others nothing.
	Changes(ctx context.Context, cursor int64, fn func(s *Session, revoked bool) error) (FeedPosition, error)
	// TombstoneTTL is how long, by the database's clock, a removal stays
	// in the feed. A Manager whose last successful read is older than half
	// of it reloads every session instead of trusting the feed.
	TombstoneTTL() time.Duration
}

// ChangeNotifier pushes word of changes made by other instances, so that a
// Manager reads the ChangeFeed at once instead of at its next poll. The
// package pgnotify implements it with PostgreSQL LISTEN/NOTIFY.
type ChangeNotifier interface {
	// Listen calls wake whenever sessions may have changed, until ctx is
	// done or listening fails. It returns nil when ctx is done; on any
	// other error the Manager calls it again after a pause.
	Listen(ctx context.Context, wake func()) error
}

// Errors returned by this package. They are wrapped with context; test them
// with errors.Is.
var (
	// ErrNotFound means the session does not exist, was revoked or expired.
	ErrNotFound = errors.New("gormsession: session not found")
	// ErrClosed means the Manager has been closed.
	ErrClosed = errors.New("gormsession: manager closed")
	// ErrTooLong means a UserID or TenantID is longer than MaxFieldLen.
	ErrTooLong = errors.New("gormsession: user or tenant ID too long")
	// ErrInvalidToken means a token is not of the form NewToken produces.
	ErrInvalidToken = errors.New("gormsession: malformed token")
	// ErrConflict means a Backend update found the session at another
	// version than the one the writer read: someone else changed it first.
	ErrConflict = errors.New("gormsession: session changed concurrently")
	// ErrNotPersisted means a revocation took effect in memory but could
	// not yet be written to the Backend. The Manager keeps refusing the
	// session and retries the write (see ManagerOptions.Journal for
	// surviving a restart meanwhile).
	ErrNotPersisted = errors.New("gormsession: revocation not yet persisted")
)

// MaxFieldLen is the column size, in bytes, of UserID, TenantID and Device.
// A longer Device label is shortened to it; a longer UserID or TenantID is
// rejected with ErrTooLong.
const MaxFieldLen = 191

// tokenBytes is the number of random bytes in a token.
const tokenBytes = 32

// tokenLen is the length of a token's base64url (unpadded) text.
const tokenLen = (tokenBytes*8 + 5) / 6

// NewToken returns a new random token: 32 bytes from crypto/rand, encoded as
// base64url without padding (43 characters).
func NewToken() string {
	var b [tokenBytes]byte
	rand.Read(b[:]) // crypto/rand.Read never returns an error
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// idLen is the length of a session ID: hex SHA-256.
const idLen = sha256.Size * 2

// tokenDigest returns the SHA-256 of token, a string of tokenLen bytes,
// whose hex is the token's ID. It allocates nothing: HashToken for the
// request path.
func tokenDigest(token string) [sha256.Size]byte {
	var buf [tokenLen]byte
	copy(buf[:], token)
	return sha256.Sum256(buf[:])
}

// tokenID writes the ID of token, a valid token, into id. It allocates
// nothing.
func tokenID(token string, id *[idLen]byte) {
	sum := tokenDigest(token)
	hex.Encode(id[:], sum[:])
}

// HashToken returns the ID of a token: the hex SHA-256 of its text.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// ValidToken reports whether token has the shape of a token made by
// NewToken: 43 characters of the base64url alphabet. It does not say whether
// any session has that token.
func ValidToken(token string) bool {
	if len(token) != tokenLen {
		return false
	}
	for i := 0; i < len(token); i++ {
		if !base64url[token[i]] {
			return false
		}
	}
	// The last character carries the last 4 bits of the 32 bytes; its low 2
	// bits must be 0, so that each token has exactly one spelling.
	return decodeValue(token[tokenLen-1])&0x03 == 0
}

// ValidID reports whether id has the shape of a session ID: 64 lowercase hex
// digits.
func ValidID(id string) bool {
	if len(id) != idLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

var base64url = func() (t [256]bool) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") {
		t[c] = true
	}
	return t
}()

func decodeValue(c byte) byte {
	switch {
	case c >= 'A' && c <= 'Z':
		return c - 'A'
	case c >= 'a' && c <= 'z':
		return c - 'a' + 26
	case c >= '0' && c <= '9':
		return c - '0' + 52
	case c == '-':
		return 62
	default:
		return 63
	}
}
