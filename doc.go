// Package gormsession keeps server-side sessions in memory and persists them
// with GORM, so that resolving a session costs no database round trip and a
// restart logs no one out.
//
// # Overview
//
// A [Store] keeps sessions in one table through any GORM dialect (SQLite by
// default, PostgreSQL in production; the schema is the same on both). A
// [Manager] loads every unexpired signed-in session at start and serves
// them from memory, writing each change through to the Store first.
//
//	db, _ := gorm.Open(sqlite.Open("sessions.db?_journal_mode=WAL&_busy_timeout=5000"), &gorm.Config{})
//	store, err := gormsession.NewStore(db, gormsession.StoreOptions{})
//	m, err := gormsession.NewManager(ctx, store, gormsession.ManagerOptions{})
//	defer m.Close()
//
//	s, err := m.Create(ctx, gormsession.Attributes{UserID: "42", Device: "Firefox on Linux"})
//	// hand s.Token to the client (cookie or bearer); it is never stored
//
//	s, ok := m.Resolve(ctx, token) // a known token: memory only, no I/O, no allocation
//
// # Tokens
//
// A token is 32 bytes from crypto/rand in unpadded base64url. Only its
// SHA-256 (the session [Session.ID]) is stored, so a copy of the table lets
// no one in, and lookups are by hash, so their timing does not depend on the
// secret. A token of the wrong length is rejected before hashing, and a
// malformed one before any lookup in the database.
//
// # Consistency model
//
// The database is the source of truth; memory is a cache, written through
// for this instance's own changes and kept coherent with other instances
// by the change feed. The rules every write keeps:
//
//   - Every row carries a version ([Session.Version]) that every change
//     advances. An update applies only to the live row at the version its
//     writer read ([ErrConflict] otherwise; [Manager.Update] then reads the
//     session again and calls its function again, so concurrent updates
//     lose nothing). Create only inserts; an update never inserts, so a
//     revoked session, or one whose row cleanup deleted, stays gone.
//   - Create, Update and Rotate write the Backend first and memory second:
//     a token is never handed out, nor a change acknowledged, that a
//     restart would forget. A change from another instance is applied by
//     version, never by comparing clocks.
//   - Rotate is one atomic step in the Backend: of concurrent rotations of
//     one token, on any number of instances, one yields a successor; a
//     token revoked on any instance cannot be rotated.
//   - A revocation takes effect in this instance's memory at once, and the
//     revoking call returns nil only once the Backend has it. Otherwise the
//     call returns an error wrapping [ErrNotPersisted], the session stays
//     refused here, and the write is retried in the background, at Close
//     and, with [ManagerOptions].Journal, after a restart of the process.
//     Other instances refuse the session after their next poll of the
//     change feed once the revocation committed, however long its commit
//     waited within the tombstones' lifetime (a tombstone ages from its
//     statement's start): the feed follows the database's commit order,
//     not a window of any instance's clock.
//   - One clock decides what instances must agree on, the database's: a
//     tombstone's age, which rows cleanup deletes, which sessions a
//     sign-out everywhere covers are decided inside the statement; each
//     Manager measures its clock's offset from the database's at start and
//     with every poll, and judges expiry by the database's clock.
//   - A session revoked while it was being created (a concurrent
//     RevokeUser) is not returned by Create; memory and database agree on
//     every session of a user after any interleaving.
//
// TestSimulation checks these rules with three Managers on one database
// under random operations, outages, lost replies, restarts, clocks off by
// up to ten minutes, commits held back and partitions longer than the
// tombstones are kept.
//
// # Several instances
//
// Instances of an application that share one database are coherent by
// default: each polls the Store's change feed every
// [ManagerOptions].SyncInterval (one second) for what the others created,
// updated, rotated or revoked, and looks a token it does not know up in the
// database (rate-limited) before rejecting it; a negative SyncInterval
// tells a Manager it is alone. Revoked sessions leave a tombstone for
// [StoreOptions].TombstoneTTL so that every instance sees the revocation;
// an instance that could not read the feed for half that reloads every
// session.
// On PostgreSQL, package pgnotify delivers changes at once with
// LISTEN/NOTIFY.
//
// # Anonymous sessions
//
// A session without a user (what gorillastore creates for a visitor) is
// anonymous. Anonymous sessions never authenticate: [Manager.Resolve] and
// everything built on it see only signed-in sessions, and
// [Manager.ResolveAnonymous] only anonymous ones. They are not loaded at
// start, and at most [ManagerOptions].MaxAnonymous stay in memory, in
// parts split by session ID, each evicting its own least recently used;
// an evicted one is read back by ID when used.
//
// # HTTP
//
// [Middleware] resolves the bearer token or session cookie of each request
// for net/http routers, refuses cross-site requests that the cookie would
// authenticate, and [FromContext] returns the session. The packages
// gorillastore and ginmiddleware plug the Manager into gorilla/sessions and
// Gin.
package gormsession
