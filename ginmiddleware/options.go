package ginmiddleware

import (
	"net/http"
	"time"

	"github.com/gorilla/sessions"

	"github.com/gormsession/gormsession"
)

// Options configures cookies. It serves both halves of the package:
//
//   - Authenticate (and through it Login, Logout and Rotate) reads it for
//     the token cookie. The zero value is the safe default: an HttpOnly,
//     Secure, SameSite=Lax cookie named "session" on path "/" that lives
//     as long as the session, and cross-origin protection for unsafe
//     requests authenticated by that cookie.
//   - Session.Options takes it with the meaning it has in
//     gin-contrib/sessions: the fields Path to SameSite replace the
//     session cookie's attributes wholesale, exactly as written.
//
// The first seven fields are those of gin-contrib/sessions' Options, so
// code that passes sessions.Options{...} to Session.Options compiles
// unchanged once its import path is changed.
type Options struct {
	// Path is the cookie path. Authenticate default: "/".
	Path string
	// Domain is the cookie domain. Default: none, a host-only cookie.
	Domain string
	// MaxAge is the cookie lifetime in seconds. For Authenticate, 0 (the
	// default) means the session's remaining lifetime, a positive value
	// caps it, and a negative value makes a browser-session cookie (no
	// Max-Age). For Session.Options it has the gorilla meaning: 0 is a
	// browser-session cookie, negative deletes the cookie and the session.
	MaxAge int
	// Secure is the Secure attribute for Session.Options. Authenticate
	// ignores it: its cookie is Secure unless Insecure is set.
	Secure bool
	// HttpOnly is the HttpOnly attribute for Session.Options. Authenticate
	// ignores it: a cookie carrying a bearer token is always HttpOnly.
	HttpOnly bool
	// Partitioned is the Partitioned attribute (CHIPS). Default: false.
	Partitioned bool
	// SameSite is the SameSite attribute. Authenticate default: Lax.
	// SameSite=None always comes with Secure, whatever Insecure says.
	SameSite http.SameSite

	// CookieName is the name of the token cookie. Default: "session"
	// (gormsession.DefaultCookieName). Session.Options ignores it.
	CookieName string
	// Insecure leaves the Secure attribute off the token cookie, for
	// plain-HTTP development. Default: false. Session.Options ignores it.
	Insecure bool
	// CrossOrigin is the cross-origin (CSRF) protection applied to unsafe
	// requests (POST, PUT, PATCH, DELETE, ...) that are not authenticated
	// by a bearer token. Configure trusted origins and bypass patterns on
	// it. Default: http.NewCrossOriginProtection().
	CrossOrigin *http.CrossOriginProtection
	// DisableCrossOriginProtection turns the cross-origin protection off,
	// for applications that have their own. Default: false.
	DisableCrossOriginProtection bool
}

// gorilla converts the cookie attributes to gorilla's Options, as
// gin-contrib/sessions does.
func (o Options) gorilla() *sessions.Options {
	return &sessions.Options{
		Path:        o.Path,
		Domain:      o.Domain,
		MaxAge:      o.MaxAge,
		Secure:      o.Secure,
		HttpOnly:    o.HttpOnly,
		Partitioned: o.Partitioned,
		SameSite:    o.SameSite,
	}
}

// config is Options resolved to its defaults, computed once by
// Authenticate.
type config struct {
	cookie      gormsession.CookieOptions
	name        string
	maxAge      int
	partitioned bool
	cop         *http.CrossOriginProtection // nil: no protection
}

// defaultConfig is used by Login and Logout on routes without Authenticate.
var defaultConfig = newConfig(Options{})

func newConfig(o Options) *config {
	cfg := &config{
		cookie: gormsession.CookieOptions{
			Name:     o.CookieName,
			Path:     o.Path,
			Domain:   o.Domain,
			Insecure: o.Insecure,
			SameSite: o.SameSite,
		},
		maxAge:      o.MaxAge,
		partitioned: o.Partitioned,
		cop:         o.CrossOrigin,
	}
	cfg.name = cfg.cookie.CookieName()
	if cfg.cop == nil {
		cfg.cop = http.NewCrossOriginProtection()
	}
	if o.DisableCrossOriginProtection {
		cfg.cop = nil
	}
	return cfg
}

// sessionCookie returns the cookie that carries s.Token.
func (cfg *config) sessionCookie(s gormsession.Session, now time.Time) *http.Cookie {
	c := cfg.cookie.Cookie(s, now)
	c.Partitioned = cfg.partitioned
	switch {
	case cfg.maxAge < 0:
		c.MaxAge, c.Expires = 0, time.Time{}
	case cfg.maxAge > 0 && (c.MaxAge == 0 || cfg.maxAge < c.MaxAge):
		c.MaxAge = cfg.maxAge
		c.Expires = now.Add(time.Duration(cfg.maxAge) * time.Second)
	}
	return c
}

// expiredCookie returns the cookie that deletes the token cookie.
func (cfg *config) expiredCookie() *http.Cookie {
	c := cfg.cookie.ExpiredCookie()
	c.Partitioned = cfg.partitioned
	return c
}
