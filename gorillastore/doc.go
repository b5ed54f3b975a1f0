// Package gorillastore is a gorilla/sessions Store that keeps sessions in a
// [gormsession.Manager], in place of wader/gormstore and other
// database-backed gorilla stores: handlers stay as they are; the setup code
// changes (see docs/migrating.md for a before/after and every difference).
//
// Reading a session the Manager holds in memory costs no database
// statement. Saving a new session is one insert. Saving a changed one is
// one update, conditional on the version read so that parallel requests
// lose no change: when another writer changed the session first, the
// update matches no row, the session is read again (telling a conflict
// from a session gone) and the update is tried again on the fresh copy.
// Saving a session whose values did not change writes nothing, unless its
// sliding expiry moved to the next step (see "Cookies and expiry"). A session the Manager no longer
// holds (an anonymous one evicted from memory) is read back once, by ID,
// when it is next used. Sessions survive a restart, because every change is
// written to the database before it is acknowledged.
//
// # Setting up
//
// Open the database with the driver of your choice, make a
// [gormsession.Store] and a [gormsession.Manager] on it, and a Store here on
// the Manager with the key that signs cookies:
//
//	db, err := gorm.Open(sqlite.Open("sessions.db?_journal_mode=WAL&_busy_timeout=10000"), &gorm.Config{})
//	backend, err := gormsession.NewStore(db, gormsession.StoreOptions{})
//	m, err := gormsession.NewManager(ctx, backend, gormsession.ManagerOptions{})
//	defer m.Close()
//	store := gorillastore.New(m, []byte(os.Getenv("SESSION_KEY")))
//
// The key is a hash key of 32 or 64 random bytes. A second argument, a block
// key of 16, 24 or 32 bytes, also encrypts the cookie. To rotate keys, put
// the new pair first and keep the old one after it: cookies made with the
// old pair are still read, and every saved session gets a cookie made with
// the new one.
//
// # Using sessions
//
// Handlers use the store as any gorilla store:
//
//	func handler(w http.ResponseWriter, r *http.Request) {
//		session, err := store.Get(r, "session")
//		if err != nil {
//			// The stored Values do not decode (a type not registered
//			// with gob): session is a new, empty one.
//			slog.Warn("session values", "err", err)
//		}
//		session.Values["user"] = "alice"
//		session.AddFlash("Welcome back")
//		if err := session.Save(r, w); err != nil {
//			http.Error(w, err.Error(), http.StatusInternalServerError)
//			return
//		}
//	}
//
// Save before writing the response body, since it sets a cookie. Get goes
// through the request's [sessions.Registry], so every Get of one name during
// a request returns the same session, and [sessions.Save] saves them all. A
// session can be saved any number of times during a request; each Save
// after the first updates the session the client's cookie names. A session
// whose ID was cleared is saved as that session too, rather than a second
// one: to give a client a new token, delete its session (MaxAge -1, Save)
// and save a new one.
//
// # Cookies and expiry
//
// The cookie holds only the session's token, signed (and optionally
// encrypted) with securecookie; the Values stay on the server, in the
// session's Data. Store.Options are the cookie options of new sessions; each
// session has its own copy in session.Options, which a handler may change
// before Save:
//
//   - MaxAge > 0: the cookie expires MaxAge seconds after the last Save.
//     The stored session expires at most that late and at most a 64th of
//     MaxAge earlier (22.5 hours at 60 days): its expiry moves in steps of
//     a 64th, so that saves within one step write nothing new.
//   - MaxAge == 0: a browser-session cookie; the stored session lives for the
//     Manager's Lifetime (the one it was created with) after the last Save,
//     in the same steps.
//   - MaxAge < 0: Save deletes the stored session and the cookie (log out).
//
// Every Get verifies the request's cookie with the Store's keys before it
// uses the token inside. Every Save sets the cookie again, so that its
// Expires and Max-Age slide too. Its value is the one the Store issued last
// for the session when the request carries that value and it is recent
// (less than a 64th of the lifetime old, and at most a minute): such a Save
// encodes no new cookie. Otherwise the request's cookie is decoded and
// checked against the session, and a value is encoded anew, with the first
// key pair.
//
// The defaults are Path "/", HttpOnly, Secure, SameSite Lax and MaxAge 30
// days, as for gorilla's CookieStore. Assigning Store.Options replaces them
// all. Because sessions live
// on the server, one can also be revoked from anywhere with
// [gormsession.Manager.Revoke], using session.ID: it is the gormsession
// session ID, safe to log, not the secret token.
//
// # Values
//
// Values are encoded with a [Serializer]: [GobSerializer] by default, which keeps Go
// types and needs gob.Register for your own types, as every gorilla store
// does, or [JSONSerializer], which needs no registration and stores readable
// JSON. Encoded Values are limited to [DefaultMaxLength] bytes unless
// [Store.MaxLength] says otherwise; Save fails with [ErrTooLarge] beyond the
// limit and leaves the stored session as it was.
//
// Decoding Values is most of the cost of a Get, so the Store keeps the
// decoded Values of recently read sessions and hands each request a copy of
// its own. Served from the cache: strings, numbers, booleans, times and
// durations; structs and arrays of those; slices and maps whose elements
// and keys are of those (such as []string, []time.Time or
// map[string]int); and []any, map[string]any and map[any]any holding any
// of these (flashes are []any). A session holding anything else (a pointer,
// a struct with a slice or map inside, a slice of maps) is decoded on every
// Get instead.
//
// # Cookies that name no usable session
//
// Get returns a new, empty session and a nil error, as wader/gormstore
// does, whenever the request's cookie cannot be used: it does not verify
// (tampered, truncated, signed with a key the Store no longer has, another
// application's cookie of the same name), it verifies but carries no token
// (wader/gormstore's or CookieStore's cookie signed with the same key), or
// its session expired or was revoked. A handler that answers any Get error
// with a 500, as many written for wader/gormstore do, keeps working after
// the switch, and the first Save gives the client a new cookie. Get returns
// an error only when a live session's Values do not decode. The reason a
// cookie was not used goes to [Store.CookieRejected], if set: it wraps
// [ErrUnverifiedCookie], [gormsession.ErrInvalidToken] or
// [gormsession.ErrNotFound].
//
// The peers differ. For a cookie whose signature fails: wader/gormstore
// (and gin-contrib/sessions' gorm store, which is wader/gormstore) give a
// new session and no error; gorilla's CookieStore and FilesystemStore and
// boj/redistore give a new session and securecookie's error. For a
// verified cookie whose session is gone: wader/gormstore and redistore
// give a new session and no error; FilesystemStore gives the file's error;
// CookieStore has no such case (a cookie older than its MaxAge is refused
// with securecookie's error, as a bad signature is). gin-contrib/sessions
// logs any Get error and carries on with the session. A failed signature gets no error here either: a client
// that presents one gains nothing (its new session has no values, and
// Save gives it a token of the Store's making), while an error would turn
// every visitor holding a cookie signed with a retired key, or another
// application's cookie, into a server error in such handlers.
//
// # Migrating
//
// Moving from wader/gormstore, gin-contrib/sessions' gorm or cookie store
// or gorilla's CookieStore changes the setup and little else;
// docs/migrating.md in the repository lists every difference and how to
// keep users signed in across the switch.
package gorillastore
