package ginmiddleware

import (
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"

	"github.com/gin-gonic/gin"

	"github.com/gormsession/gormsession"
	"github.com/gormsession/gormsession/internal/vary"
)

// ctxKey is the type of this package's gin context keys. Pointers to it
// are compared by identity, so no other package can collide with them.
type ctxKey struct{ name string }

var authKey = &ctxKey{"session"}

// authState is what Authenticate stores for an authenticated request. An
// anonymous request gets its *config alone under the same key, so that
// every request costs one context entry and Login finds the configuration.
type authState struct {
	s          gormsession.Session
	cfg        *config
	fromCookie bool // s came from the cookie rather than a bearer token
}

// Authenticate returns middleware that finds the session of each request
// and stores it in the gin context, where Current finds it.
//
// The token is taken from an "Authorization: Bearer <token>" header (the
// scheme is case-insensitive; an empty token counts as none) or from the
// token cookie; a bearer token that resolves wins over the cookie. Known
// tokens are resolved from the Manager's memory: no database statement is
// run. (A Manager with SyncInterval, one of several instances, may look an
// unknown token up in the database, at a bounded rate and with the
// request's context.) Unknown, malformed, expired and revoked tokens leave
// the request anonymous; RequireSession turns those away.
//
// Unsafe requests (any method but GET, HEAD and OPTIONS) that are not
// authenticated by a bearer token pass through opts.CrossOrigin, the
// standard library's http.CrossOriginProtection, and are answered 403 when
// it finds them cross-origin. That covers cookie-authenticated requests,
// the ones a forged cross-site form could ride on, and anonymous ones
// without an Authorization header, so a login form cannot be submitted from
// another site either. Requests carrying a bearer token are exempt: a
// browser never attaches one on its own.
func Authenticate(m *gormsession.Manager, opts AuthOptions) gin.HandlerFunc {
	cfg := newConfig(opts)
	return func(c *gin.Context) {
		// The response depends on the session: tell caches so.
		vary.Add(c.Writer.Header())
		if st, ok := cfg.resolve(c.Request, m); ok {
			c.Set(authKey, newState(st))
			if st.fromCookie {
				cfg.checkOrigin(c)
			}
			return
		}
		c.Set(authKey, cfg) // a pointer: no allocation
		// Anonymous requests are checked too (a forged login form), except
		// those with an Authorization header: a browser does not add one
		// on its own, so they carry no credential a forgery could ride on.
		if c.Request.Header.Get("Authorization") == "" {
			cfg.checkOrigin(c)
		}
	}
}

// stateBatch hands out authStates from an array, so that storing one in
// the gin context (which boxes it) costs one allocation every
// stateBatchSize requests instead of one per request. Each element is
// handed out once, by an atomic counter, and not written after it is
// stored: no two requests share one. A batch stays in memory while any
// request holds one of its elements. BenchmarkRequest shows what it buys
// (an allocation of about 230 bytes per authenticated request);
// TestConcurrentRequestsGetTheirOwnSession checks that requests never see
// each other's session.
type stateBatch struct {
	states [stateBatchSize]authState
	next   atomic.Int32
}

const stateBatchSize = 32

// batch is the batch elements are handed out from.
var batch atomic.Pointer[stateBatch]

// newState returns a pointer to a copy of st that no other request holds.
func newState(st authState) *authState {
	for {
		b := batch.Load()
		if b != nil {
			if i := b.next.Add(1) - 1; i < stateBatchSize {
				b.states[i] = st
				return &b.states[i]
			}
		}
		fresh := new(stateBatch)
		fresh.next.Store(1)
		fresh.states[0] = st
		if batch.CompareAndSwap(b, fresh) {
			return &fresh.states[0]
		}
	}
}

// resolve finds the signed-in session of r: its bearer token's, else its
// cookie's.
func (cfg *config) resolve(r *http.Request, m *gormsession.Manager) (authState, bool) {
	s, src := m.ResolveRequest(r, cfg.name)
	return authState{s: s, cfg: cfg, fromCookie: src == gormsession.SourceCookie}, src != gormsession.SourceNone
}

// ErrCrossOrigin is returned, wrapped, by Login and Logout for an unsafe
// cross-origin request, which they answer 403 without signing anyone in
// or out.
var ErrCrossOrigin = errors.New("ginmiddleware: cross-origin request rejected")

// checkOrigin answers 403 to an unsafe cross-origin request and reports
// whether it did.
func (cfg *config) checkOrigin(c *gin.Context) bool {
	if err := cfg.cop.Check(c.Request); err != nil {
		c.AbortWithStatusJSON(http.StatusForbidden, gin.H{"error": "cross-origin request rejected"})
		return true
	}
	return false
}

// RequireSession returns middleware that answers 401 Unauthorized, with a
// JSON body and "WWW-Authenticate: Bearer", to requests that Authenticate
// left anonymous. Install it after Authenticate.
func RequireSession() gin.HandlerFunc {
	return func(c *gin.Context) {
		if _, ok := Current(c); ok {
			return
		}
		c.Header("WWW-Authenticate", "Bearer")
		c.AbortWithStatusJSON(http.StatusUnauthorized, gin.H{"error": "authentication required"})
	}
}

// Current returns the session Authenticate found for the request, with its
// Token set to the token the request presented. ok is false for an
// anonymous request.
func Current(c *gin.Context) (s gormsession.Session, ok bool) {
	st, ok := current(c)
	return st.s, ok
}

func current(c *gin.Context) (authState, bool) {
	v, _ := c.Get(authKey)
	if st, ok := v.(*authState); ok {
		return *st, true
	}
	return authState{}, false
}

// configOf returns the configuration of the Authenticate middleware on the
// route, or the defaults.
func configOf(c *gin.Context) *config {
	v, _ := c.Get(authKey)
	switch v := v.(type) {
	case *authState:
		if v.cfg != nil {
			return v.cfg
		}
	case *config:
		return v
	}
	return defaultConfig
}

// Login creates a session, sets the token cookie on the response and makes
// the new session the request's Current one. The cookie is configured by
// the AuthOptions of the Authenticate middleware on the route (the defaults
// when there is none): HttpOnly, Secure, SameSite=Lax, Path "/", Max-Age
// the session lifetime.
//
// When p.Device is empty it is derived from the User-Agent header (see
// gormsession.DeviceLabel). A session the request's cookie carried is
// revoked, so one browser holds one session and a token planted before
// login is worthless; a failure to remove it from the database is recorded
// with c.Error (it is already dead in memory and its removal is retried).
//
// The returned session has its Token set; an API client that does not use
// cookies takes it from there.
func Login(c *gin.Context, m *gormsession.Manager, p gormsession.Attributes) (gormsession.Session, error) {
	cfg := configOf(c)
	if cfg.checkOrigin(c) {
		return gormsession.Session{}, fmt.Errorf("ginmiddleware: login: %w", ErrCrossOrigin)
	}
	if p.Device == "" {
		p.Device = gormsession.DeviceLabel(c.GetHeader("User-Agent"))
	}
	s, err := m.Create(c.Request.Context(), p)
	if err != nil {
		return gormsession.Session{}, fmt.Errorf("ginmiddleware: login: %w", err)
	}
	if old, ok := current(c); ok && old.fromCookie {
		if err := m.Revoke(c.Request.Context(), old.s.ID); err != nil {
			_ = c.Error(fmt.Errorf("ginmiddleware: login: revoke previous session: %w", err))
		}
	}
	http.SetCookie(c.Writer, cfg.sessionCookie(s, s.UpdatedAt))
	c.Set(authKey, newState(authState{s: s, cfg: cfg, fromCookie: true}))
	return s, nil
}

// Logout revokes the request's session, whether it came from the cookie or
// a bearer token, and deletes the token cookie. Without Authenticate on the
// route it resolves the request itself. The cookie is deleted even when
// there is no session or the revoke fails; the error is the Manager's
// (the session is already dead in memory when the database write fails).
func Logout(c *gin.Context, m *gormsession.Manager) error {
	cfg := configOf(c)
	st, ok := current(c)
	if !ok {
		st, ok = cfg.resolve(c.Request, m)
	}
	if !ok || st.fromCookie {
		// A bearer token is no browser's doing; anything else may be a
		// forged cross-site request.
		if cfg.checkOrigin(c) {
			return fmt.Errorf("ginmiddleware: logout: %w", ErrCrossOrigin)
		}
	}
	s := st.s
	http.SetCookie(c.Writer, cfg.expiredCookie())
	c.Set(authKey, cfg)
	if !ok {
		return nil
	}
	if err := m.Revoke(c.Request.Context(), s.ID); err != nil {
		return fmt.Errorf("ginmiddleware: logout: %w", err)
	}
	return nil
}

// Rotate gives the request's session a new token, keeping its user,
// tenant, device, data and expiry, and kills the old token. Call it when
// privileges change (a password change, a step-up to an admin role) to
// defend against session fixation. When the session came from the cookie
// a new cookie is set; a bearer client takes the new Token from the
// returned session. It returns an error wrapping gormsession.ErrNotFound
// when the request is anonymous.
func Rotate(c *gin.Context, m *gormsession.Manager) (gormsession.Session, error) {
	st, ok := current(c)
	if !ok {
		return gormsession.Session{}, fmt.Errorf("ginmiddleware: rotate: %w", gormsession.ErrNotFound)
	}
	s, err := m.Rotate(c.Request.Context(), st.s.Token)
	if err != nil {
		return gormsession.Session{}, fmt.Errorf("ginmiddleware: rotate: %w", err)
	}
	cfg := configOf(c)
	if st.fromCookie {
		http.SetCookie(c.Writer, cfg.sessionCookie(s, s.UpdatedAt))
	}
	c.Set(authKey, newState(authState{s: s, cfg: cfg, fromCookie: st.fromCookie}))
	return s, nil
}

// RevokeOthers revokes every session of the current user except the
// request's own ("sign out everywhere else") and returns how many it
// revoked. It returns an error wrapping gormsession.ErrNotFound when the
// request is anonymous or its session has no user.
func RevokeOthers(c *gin.Context, m *gormsession.Manager) (int, error) {
	s, ok := Current(c)
	if !ok || s.UserID == "" {
		return 0, fmt.Errorf("ginmiddleware: sign out others: %w", gormsession.ErrNotFound)
	}
	n, err := m.RevokeOthers(c.Request.Context(), s.UserID, s.ID)
	if err != nil {
		return n, fmt.Errorf("ginmiddleware: sign out others: %w", err)
	}
	return n, nil
}

// ListUser returns the current user's unexpired sessions, oldest first and
// without tokens, for a "your devices" page; compare their ID with
// Current's to mark this one. It reads memory only and returns nil for an
// anonymous request.
func ListUser(c *gin.Context, m *gormsession.Manager) []gormsession.Session {
	s, ok := Current(c)
	if !ok {
		return nil
	}
	return m.ListUser(s.UserID)
}
