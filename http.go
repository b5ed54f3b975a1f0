package gormsession

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/gormsession/gormsession/internal/vary"
)

// DefaultCookieName is the session cookie's name when CookieOptions.Name is
// empty.
const DefaultCookieName = "session"

// CookieOptions configures the session cookie. The zero value gives the
// defaults stated on each field. The cookie is always HttpOnly: scripts have
// no business reading a bearer secret.
type CookieOptions struct {
	// Name is the cookie name. Default: "session".
	Name string
	// Path is the cookie path. Default: "/".
	Path string
	// Domain is the cookie domain. Default: none (host-only cookie).
	Domain string
	// Insecure leaves out the Secure attribute, for plain-HTTP development.
	// Default: false, the cookie is sent over HTTPS only. It is ignored when
	// SameSite is None, which browsers accept only with Secure.
	Insecure bool
	// SameSite is the SameSite attribute. Default: Lax.
	SameSite http.SameSite
	// CrossOrigin is the cross-site request (CSRF) protection Middleware
	// applies to unsafe requests (any method but GET, HEAD and OPTIONS)
	// that this cookie could authenticate: those it authenticates, and
	// anonymous ones without an Authorization header (a forged sign-in
	// form). Cross-origin ones are answered 403. Requests authenticated by
	// a bearer token are exempt: a browser never adds one on its own.
	// Default: http.NewCrossOriginProtection(). Configure one to trust
	// other origins (AddTrustedOrigin) or to exempt paths
	// (AddInsecureBypassPattern; the pattern "/" turns it off).
	CrossOrigin *http.CrossOriginProtection
}

// cookieName returns the configured cookie name or its default.
func (o CookieOptions) cookieName() string {
	if o.Name == "" {
		return DefaultCookieName
	}
	return o.Name
}

// Cookie returns the cookie that carries s.Token, expiring with the
// session (a browser-session cookie when the session never expires).
func (o CookieOptions) Cookie(s Session, now time.Time) *http.Cookie {
	c := o.base()
	c.Value = s.Token
	if !s.ExpiresAt.IsZero() {
		c.Expires = s.ExpiresAt
		c.MaxAge = max(1, int(s.ExpiresAt.Sub(now).Seconds()))
	}
	return c
}

// ExpiredCookie returns a cookie that deletes the session cookie.
func (o CookieOptions) ExpiredCookie() *http.Cookie {
	c := o.base()
	c.MaxAge = -1
	c.Expires = time.Unix(0, 0)
	return c
}

func (o CookieOptions) base() *http.Cookie {
	c := &http.Cookie{
		Name:     o.cookieName(),
		Path:     o.Path,
		Domain:   o.Domain,
		HttpOnly: true,
		Secure:   !o.Insecure,
		SameSite: o.SameSite,
	}
	if c.Path == "" {
		c.Path = "/"
	}
	if c.SameSite == 0 || c.SameSite == http.SameSiteDefaultMode {
		c.SameSite = http.SameSiteLaxMode
	}
	if c.SameSite == http.SameSiteNoneMode {
		c.Secure = true
	}
	return c
}

// bearerToken returns the token of an "Authorization: Bearer <token>"
// header value. The scheme is case-insensitive; anything else, including an
// empty token, gives "".
func bearerToken(header string) string {
	const scheme = "bearer "
	if len(header) <= len(scheme) || !strings.EqualFold(header[:len(scheme)], scheme) {
		return ""
	}
	return strings.TrimSpace(header[len(scheme):])
}

// TokenSource tells where the token of a request's session came from.
type TokenSource int

// The sources ResolveRequest reports.
const (
	// SourceNone: the request has no signed-in session.
	SourceNone TokenSource = iota
	// SourceBearer: an "Authorization: Bearer" header, which a browser
	// never sends on its own.
	SourceBearer
	// SourceCookie: the session cookie, which a browser attaches to
	// cross-site requests too.
	SourceCookie
)

// ResolveRequest finds the signed-in session of r and says where its token
// came from: the bearer token of its Authorization header (the scheme is
// case-insensitive) if that resolves, else the token in the cookie named
// cookieName. The Session's Token is the token the request presented. A
// known token is resolved from memory; an unknown one may be looked up
// with the request's context (see Resolve).
func (m *Manager) ResolveRequest(r *http.Request, cookieName string) (Session, TokenSource) {
	if tok := bearerToken(r.Header.Get("Authorization")); tok != "" {
		if s, ok := m.Resolve(r.Context(), tok); ok {
			s.Token = tok
			return s, SourceBearer
		}
	}
	if c, err := r.Cookie(cookieName); err == nil && c.Value != "" {
		if s, ok := m.Resolve(r.Context(), c.Value); ok {
			s.Token = c.Value
			return s, SourceCookie
		}
	}
	return Session{}, SourceNone
}

type contextKey struct{}

// newContext returns a copy of ctx carrying s.
func newContext(ctx context.Context, s Session) context.Context {
	return context.WithValue(ctx, contextKey{}, s)
}

// FromContext returns the session that Middleware stored in ctx.
func FromContext(ctx context.Context) (Session, bool) {
	s, ok := ctx.Value(contextKey{}).(Session)
	return s, ok
}

// Middleware is net/http middleware (for the standard library, chi and the
// like) that resolves the request's bearer token or session cookie against
// m and stores the signed-in Session in the request context, where
// FromContext finds it. Requests without a valid token pass through
// anonymous. The Session in the context has its Token set to the token the
// request presented.
//
// Unsafe cross-origin requests that the cookie authenticates, or that carry
// no credential at all, are answered 403 (see CookieOptions.CrossOrigin).
// Every response gets "Vary: Cookie, Authorization", since it may depend
// on the session.
func Middleware(m *Manager, opts CookieOptions) func(http.Handler) http.Handler {
	name := opts.cookieName()
	cop := opts.CrossOrigin
	if cop == nil {
		cop = http.NewCrossOriginProtection()
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			vary.Add(w.Header())
			s, src := m.ResolveRequest(r, name)
			if src == SourceCookie || (src == SourceNone && r.Header.Get("Authorization") == "") {
				if err := cop.Check(r); err != nil {
					http.Error(w, "cross-origin request rejected", http.StatusForbidden)
					return
				}
			}
			if src != SourceNone {
				r = r.WithContext(newContext(r.Context(), s))
			}
			next.ServeHTTP(w, r)
		})
	}
}
