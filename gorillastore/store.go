package gorillastore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"

	"github.com/gormsession/gormsession"
)

// DefaultMaxLength is the default limit, in bytes, of a session's encoded
// Values. See Store.MaxLength.
const DefaultMaxLength = 64 << 10

// ErrTooLarge is returned, wrapped, by Save when a session's encoded Values
// are longer than the Store's limit. The stored session is left unchanged.
var ErrTooLarge = errors.New("gorillastore: session values too large")

// ErrNoToken is returned, wrapped, by Save for a session that has an ID
// whose token is in neither the request's cookie nor a cookie that an
// earlier Save of the same request set on the response: a session kept from
// another request, or given an ID that is not the one of the client's
// cookie. Nothing is written. Sessions obtained from Get or New and saved
// in the request they were obtained in (any number of times, copied or
// not) never give it.
var ErrNoToken = errors.New("gorillastore: session has an ID but no known token")

// ErrUnverifiedCookie is wrapped, together with securecookie's error, in
// the reason given to Store.CookieRejected for a cookie whose signature (or
// encryption) does not verify with any of the Store's Codecs: tampered,
// truncated, made with a key the Store no longer has, or another
// application's cookie of the same name.
var ErrUnverifiedCookie = errors.New("gorillastore: cookie does not verify")

// errNoManager is returned by a Store that was not made by New.
var errNoManager = errors.New("gorillastore: Store has no Manager (make it with New)")

// Store is a gorilla/sessions Store that keeps sessions in a
// gormsession.Manager: Get is served from memory, Save writes one
// statement when something changed (see Save for when it takes more) and
// none otherwise, and sessions survive a restart.
//
// Configure a Store (its fields, MaxAge and MaxLength) before it serves
// requests; after that it is safe for concurrent use. Serving a request
// writes no state shared with other requests, except a cache guarded by
// locks and bounded in size: the decoded Values of recent sessions and the
// cookie value last issued for each (see Save).
type Store struct {
	// Codecs sign (and, with a block key, encrypt) the cookie, which holds
	// only the session's token. New builds them from its key pairs with
	// securecookie.CodecsFromPairs: the first codec encodes; all of them
	// are tried in turn to decode, which is how keys are rotated.
	Codecs []securecookie.Codec

	// Options are the cookie options of new sessions; each session gets a
	// copy, which a handler may change before Save. Assigning Options
	// replaces the defaults wholesale. A nil Options means the defaults.
	// Default: Path "/", HttpOnly, Secure, SameSite Lax, MaxAge 30 days (as
	// gorilla's CookieStore). MaxAge is also the stored session's lifetime;
	// 0 (a browser-session cookie) stores it for the Manager's Lifetime.
	Options *sessions.Options

	// Serializer encodes session Values into the stored session's Data.
	// Default (nil): GobSerializer. Changing it makes the Values of existing
	// sessions undecodable, and Get then returns a new session and the
	// decode error.
	Serializer Serializer

	// CookieRejected, when set, is called by Get and New with the reason a
	// request's cookie was not used, before they return a new session and
	// no error. The reason wraps ErrUnverifiedCookie for a cookie that does
	// not verify, gormsession.ErrInvalidToken for one that verifies but
	// carries no token of this Store (another store's cookie signed with
	// the same key), and gormsession.ErrNotFound for the token of no live
	// session (expired, revoked or deleted). Use it to log or count such
	// cookies. It must be safe for concurrent use. Default: nil.
	CookieRejected func(r *http.Request, reason error)

	m         *gormsession.Manager
	maxLength int
	cache     *valuesCache
	now       func() time.Time // the age of issued cookies; nil: time.Now
}

var _ sessions.Store = (*Store)(nil)

// New returns a Store on m. keyPairs are passed to
// securecookie.CodecsFromPairs: a hash key (32 or 64 bytes are recommended)
// and optionally a block key (16, 24 or 32 bytes for AES-128, -192 or -256)
// to encrypt the cookie, then older pairs that still decode cookies during a
// key rotation. New cookies are made with the first pair.
//
// Since the token in the cookie is only valid while its session is in m,
// the codecs made by New do not limit the age of a cookie themselves (their
// MaxAge is 0): expiry and revocation are decided by the stored session.
// Invalid keys are reported by Save and Get, as securecookie reports them.
// New panics when m is nil: a Store without a Manager could serve nothing.
func New(m *gormsession.Manager, keyPairs ...[]byte) *Store {
	if m == nil {
		panic("gorillastore: New: nil Manager")
	}
	codecs := securecookie.CodecsFromPairs(keyPairs...)
	for _, c := range codecs {
		if sc, ok := c.(*securecookie.SecureCookie); ok {
			// The cookie value is the token's bytes: no gob round trip.
			sc.SetSerializer(securecookie.NopEncoder{})
			sc.MaxAge(0)
		}
	}
	s := &Store{Codecs: codecs, m: m, maxLength: DefaultMaxLength, cache: &valuesCache{}}
	s.Options = s.defaultOptions()
	return s
}

// defaultMaxAge is the MaxAge of the default Options: 30 days, as for
// gorilla's CookieStore and FilesystemStore.
const defaultMaxAge = 86400 * 30

func (s *Store) defaultOptions() *sessions.Options {
	// The cookie carries a bearer credential: Secure by default. Browsers
	// accept Secure cookies from http://localhost, so development does not
	// need it off; plain HTTP on another host does (Options.Secure = false).
	return &sessions.Options{
		Path:     "/",
		MaxAge:   defaultMaxAge,
		HttpOnly: true,
		Secure:   true,
		SameSite: http.SameSiteLaxMode,
	}
}

// MaxAge sets Options.MaxAge, the cookie lifetime in seconds and the stored
// lifetime of new and saved sessions. It is there for compatibility with
// other gorilla stores; setting Options.MaxAge does the same.
func (s *Store) MaxAge(age int) {
	if s.Options == nil {
		s.Options = s.defaultOptions()
	}
	s.Options.MaxAge = age
}

// MaxLength sets the limit, in bytes, of a session's encoded Values; Save
// fails with ErrTooLarge beyond it. l <= 0 removes the limit. Default:
// DefaultMaxLength (64 KiB).
func (s *Store) MaxLength(l int) {
	s.maxLength = l
}

// Get returns the session called name for r, from the request's
// sessions.Registry, so that every call for the same name during one
// request returns the same *sessions.Session. See New for the rest.
func (s *Store) Get(r *http.Request, name string) (*sessions.Session, error) {
	return sessions.GetRegistry(r).Get(s, name)
}

// New returns the session called name for r without the registry. When r
// carries a valid cookie for a live session, the session has its ID and
// Values and IsNew is false. Otherwise it is a new, empty session (IsNew)
// and the error is nil, as with wader/gormstore: a missing cookie, and
// equally one that cannot be used (it does not verify, carries no token of
// this Store, or names a session that expired or was revoked), so that a
// handler which answers any Get error with a server error does not fail
// for every visitor holding an old cookie. The reason such a cookie was not
// used goes to CookieRejected. Saving the new session gives the client a
// new token; nothing of the rejected cookie is kept.
//
// New returns an error, with a new session, only when the session is live
// but its stored Values cannot be decoded (the Serializer changed, or a
// type is not registered with gob), or when the Store was not made by New.
// It reads memory only, with no database statement, for every session the
// Manager holds in memory; one it does not hold (an anonymous session
// evicted from memory, or created by another instance) is read by ID, one
// indexed query, and kept (see gormsession.Manager.ResolveAnonymous).
func (s *Store) New(r *http.Request, name string) (*sessions.Session, error) {
	session := sessions.NewSession(s, name)
	opts := *s.options()
	session.Options = &opts
	session.IsNew = true
	if s.m == nil {
		return session, errNoManager
	}
	c, err := r.Cookie(name)
	if err != nil {
		return session, nil
	}
	token, err := s.decodeToken(name, c.Value)
	if err != nil {
		s.reject(r, err)
		return session, nil
	}
	sess, ok := s.m.ResolveAnonymous(r.Context(), token)
	if !ok {
		s.reject(r, fmt.Errorf("gorillastore: session %q: %w", name, gormsession.ErrNotFound))
		return session, nil
	}
	if err := s.loadValues(session.Values, &sess); err != nil {
		return session, fmt.Errorf("gorillastore: session %q: %w", name, err)
	}
	session.ID = sess.ID
	session.IsNew = false
	return session, nil
}

// reject tells CookieRejected, if set, why r's cookie was not used.
func (s *Store) reject(r *http.Request, reason error) {
	if s.CookieRejected != nil {
		s.CookieRejected(r, reason)
	}
}

func (s *Store) options() *sessions.Options {
	if s.Options == nil {
		return s.defaultOptions()
	}
	return s.Options
}

// serializer returns the Serializer of the stored Values: s.Serializer, or
// GobSerializer when it is nil.
func (s *Store) serializer() Serializer {
	if s.Serializer == nil {
		return GobSerializer{}
	}
	return s.Serializer
}

// loadValues puts the decoded Values of sess into dst, from the cache when
// it holds them for this exact Data.
func (s *Store) loadValues(dst map[any]any, sess *gormsession.Session) error {
	if len(sess.Data) == 0 {
		return nil
	}
	if s.cache.copyInto(dst, sess.ID, sess.Data) {
		return nil
	}
	values, err := s.serializer().Decode(sess.Data)
	if err != nil {
		return err
	}
	s.cache.put(sess.ID, sess.Data, values)
	for k, v := range values {
		dst[k] = v
	}
	return nil
}

// Save writes session and sets its cookie on w. A new session is created in
// the Manager (one insert), an existing one updated: no statement when its
// Values and expiry did not change, otherwise one update conditional on the
// version read. That update takes more statements when it loses to another
// writer (reads that tell a conflict from a session gone and fetch the
// fresh copy, then the update again; see gormsession.Manager.Update), and
// a session the Manager no longer holds in memory is read once first. The
// stored session expires session.Options.MaxAge seconds after the save,
// rounded down to a 64th of MaxAge (see slide), or after the lifetime it
// was created with when MaxAge is 0 (the cookie is then a browser-session
// cookie). MaxAge < 0 deletes the session and expires the cookie.
//
// A session may be saved any number of times during a request, through the
// registry ([sessions.Save]) or not. A session with no ID is saved as the
// session of the client's cookie when that cookie names a live session (the
// one this response sets, else the request's), as wader/gormstore does;
// only without one is a session created. To give a client a new token,
// delete its session (MaxAge -1, Save) and then save a new one.
//
// The cookie's value is encoded anew when the session is created, and on
// a save whose request does not carry the value this Store last issued for
// the session (another instance's cookie, an older one, one made before the
// Codecs changed), after that cookie has been decoded and checked against
// session.ID. A save whose request carries that value, issued less than a
// 64th of the session's lifetime ago (at least a second, at most a
// minute), sets the same value again: no decode, no encode.
//
// Save fails, and changes nothing, when the encoded Values exceed the limit
// (ErrTooLarge) or cannot be encoded, and for a session whose token it
// cannot find (ErrNoToken). Saving a session that was revoked or expired
// since it was read returns an error wrapping gormsession.ErrNotFound rather
// than bringing it back.
func (s *Store) Save(r *http.Request, w http.ResponseWriter, session *sessions.Session) error {
	if s.m == nil {
		return errNoManager
	}
	opts := session.Options
	if opts == nil {
		opts = s.options()
	}
	if opts.MaxAge < 0 {
		return s.delete(r, w, session, opts)
	}
	name := session.Name()
	ctx := r.Context()
	if session.ID != "" {
		if value, ok := s.reusable(r, w, name, session.ID, opts); ok {
			return s.update(ctx, w, session, opts, session.ID, "", value)
		}
		token := s.sessionToken(r, w, name, session.ID)
		if token == "" {
			return fmt.Errorf("gorillastore: save %q: %w", name, ErrNoToken)
		}
		return s.update(ctx, w, session, opts, session.ID, token, "")
	}
	if token := s.clientToken(r, w, name); token != "" {
		if live, ok := s.m.ResolveAnonymous(ctx, token); ok {
			return s.update(ctx, w, session, opts, live.ID, token, "")
		}
	}
	data, err := s.encode(name, session.Values)
	if err != nil {
		return err
	}
	return s.create(ctx, w, session, opts, data)
}

// delete revokes session, or the session of the client's cookie when
// session has no ID, and expires the cookie.
func (s *Store) delete(r *http.Request, w http.ResponseWriter, session *sessions.Session, opts *sessions.Options) error {
	name := session.Name()
	id := session.ID
	if id == "" {
		if token := s.clientToken(r, w, name); token != "" {
			if live, ok := s.m.ResolveAnonymous(r.Context(), token); ok {
				id = live.ID
			}
		}
	}
	var err error
	if id != "" {
		s.cache.remove(id)
		if err = s.m.Revoke(r.Context(), id); err != nil {
			err = fmt.Errorf("gorillastore: delete session %q: %w", name, err)
		}
	}
	session.ID = ""
	http.SetCookie(w, sessions.NewCookie(name, "", opts))
	return err
}

// encode encodes values for the session called name, within the limit.
func (s *Store) encode(name string, values map[any]any) ([]byte, error) {
	if len(values) == 0 {
		return nil, nil
	}
	data, err := s.serializer().Encode(values)
	if err != nil {
		return nil, fmt.Errorf("gorillastore: save %q: %w", name, err)
	}
	if s.maxLength > 0 && len(data) > s.maxLength {
		return nil, fmt.Errorf("gorillastore: save %q: encoded values are %d bytes, over the limit of %d: %w",
			name, len(data), s.maxLength, ErrTooLarge)
	}
	return data, nil
}

// create creates a session in the Manager for session and sets its cookie.
func (s *Store) create(ctx context.Context, w http.ResponseWriter, session *sessions.Session, opts *sessions.Options, data []byte) error {
	name := session.Name()
	if len(s.Codecs) == 0 {
		return fmt.Errorf("gorillastore: save %q: no cookie codecs (New was given no keys)", name)
	}
	created, err := s.m.Create(ctx, gormsession.Attributes{Lifetime: maxAgeLifetime(opts.MaxAge), Data: data})
	if err != nil {
		return fmt.Errorf("gorillastore: save %q: %w", name, err)
	}
	ic, err := s.encodeCookie(name, created.Token)
	if err != nil {
		// No cookie can carry the token: do not leave the row behind.
		_ = s.m.Revoke(ctx, created.ID)
		return err
	}
	session.ID = created.ID
	s.prime(&created, session.Values)
	s.cache.issue(created.ID, ic)
	http.SetCookie(w, sessions.NewCookie(name, ic.value, opts))
	return nil
}

// update writes the session's Values to the stored session id, sets
// session's ID to it and sets the cookie again: value, a cookie this Store
// issued for id that may be sent again (see reusable), or else token
// encoded anew.
func (s *Store) update(ctx context.Context, w http.ResponseWriter, session *sessions.Session, opts *sessions.Options, id, token, value string) error {
	name := session.Name()
	var fresh issuedCookie
	if value == "" {
		// Encode first: a cookie that cannot be written must not change the row.
		var err error
		if fresh, err = s.encodeCookie(name, token); err != nil {
			return err
		}
		value = fresh.value
	}
	data, unchanged := s.stored(id, session.Values)
	if !unchanged {
		var err error
		if data, err = s.encode(name, session.Values); err != nil {
			return err
		}
	}
	lifetime := maxAgeLifetime(opts.MaxAge)
	updated, err := s.m.Update(ctx, id, func(x *gormsession.Session) {
		x.Data = data
		x.ExpiresAt = slide(x, lifetime)
	})
	if err != nil {
		if errors.Is(err, gormsession.ErrNotFound) {
			s.cache.remove(id)
		}
		return fmt.Errorf("gorillastore: save %q: %w", name, err)
	}
	session.ID = updated.ID
	if !unchanged {
		s.prime(&updated, session.Values)
	}
	if fresh.value != "" {
		s.cache.issue(updated.ID, fresh)
	}
	http.SetCookie(w, sessions.NewCookie(name, value, opts))
	return nil
}

// stored returns the stored Data of session id when values are the values
// it holds, as the cache of decoded values knows them, so that a save of
// unchanged values needs no encoding and, through Update, no write. (The
// encoded bytes cannot tell: gob writes a map in random order.) Values the
// cache does not keep (see copyValue) are encoded and written on every
// save.
func (s *Store) stored(id string, values map[any]any) ([]byte, bool) {
	cur, ok := s.m.Get(id)
	if !ok || len(cur.Data) == 0 || !s.cache.equal(id, cur.Data, values) {
		return nil, false
	}
	return cur.Data, true
}

// slide returns the expiry of x saved now (x.UpdatedAt): lifetime from now;
// for a browser-session cookie (lifetime 0), the lifetime the session was
// created with, from now; never for a negative lifetime.
//
// The expiry moves in steps of a 64th of the lifetime (at least a second):
// it is the end of the step that holds now+lifetime, rounded down. So the
// saves of one session within one step give the same expiry, and a save
// whose values did not change writes nothing (Manager.Update skips an
// update that changes nothing); the session lives between 63/64 of its
// lifetime and its lifetime after its last save.
func slide(x *gormsession.Session, lifetime time.Duration) time.Time {
	switch {
	case lifetime < 0:
		return time.Time{}
	case lifetime == 0 && x.ExpiresAt.IsZero():
		return time.Time{}
	case lifetime == 0:
		lifetime = x.ExpiresAt.Sub(x.CreatedAt)
	}
	step := max(lifetime/64, time.Second)
	return x.UpdatedAt.Add(lifetime).Truncate(step)
}

// maxAgeLifetime converts a positive MaxAge to a lifetime. One too large for
// a time.Duration (about 292 years) means the session never expires.
func maxAgeLifetime(maxAge int) time.Duration {
	if int64(maxAge) > math.MaxInt64/int64(time.Second) {
		return -1
	}
	return time.Duration(maxAge) * time.Second
}
