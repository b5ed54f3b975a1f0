// Package gormsession keeps server-side sessions in memory and persists them
// with GORM, so that resolving a session costs no database round trip and a
// restart logs no one out.
//
// # Overview
//
// A [Store] keeps sessions in one table through any GORM dialect (SQLite by
// default, PostgreSQL in production; the schema is the same on both). A
// [Manager] loads every unexpired session at start and serves them from
// memory, writing each change through to the Store first.
//
//	db, _ := gorm.Open(sqlite.Open("sessions.db?_journal_mode=WAL&_busy_timeout=5000"), &gorm.Config{})
//	store, err := gormsession.NewStore(db, gormsession.StoreOptions{})
//	m, err := gormsession.NewManager(ctx, store, gormsession.ManagerOptions{})
//	defer m.Close()
//
//	s, err := m.Create(ctx, gormsession.NewSession{UserID: "42", Device: "Firefox on Linux"})
//	// hand s.Token to the client (cookie or bearer); it is never stored
//
//	s, ok := m.Resolve(token) // memory only: no I/O, no allocation
//
// # Tokens
//
// A token is 32 bytes from crypto/rand in unpadded base64url. Only its
// SHA-256 (the session [Session.ID]) is stored, so a copy of the table lets
// no one in, and lookups are by hash, so their timing does not depend on the
// secret. Malformed tokens are rejected before hashing.
//
// # Durability
//
// Create, Update and Rotate write the Backend first and memory second: a
// token is never handed out that a restart would forget. Revocations take
// effect in memory at once; a failed Backend delete is returned and retried
// in the background and at Close, so a revoked session does not come back.
//
// # Backends
//
// [Backend] is three methods with contexts and errors. Optional
// capabilities ([Getter], [UserRemover], [ExpiredRemover], [Streamer],
// [Toucher], [ChangeFeed]) are detected by type assertion. The package
// backendtest holds the conformance suite every Backend must pass.
//
// # Several instances
//
// Instances of an application that share one database set
// [ManagerOptions].SyncInterval: each polls the Store's change feed for what
// the others created, updated, rotated or revoked, and looks a token it does
// not know up in the database (rate-limited) before rejecting it. Revoked
// sessions leave a tombstone for [StoreOptions].TombstoneTTL so that every
// instance sees the revocation. On PostgreSQL, package pgnotify delivers
// changes at once with LISTEN/NOTIFY.
//
// # HTTP
//
// [Middleware] resolves the bearer token or session cookie of each request
// for net/http routers; [FromContext] returns the session. The packages
// gorillastore and ginmiddleware plug the Manager into gorilla/sessions and
// Gin.
package gormsession
