package ginmiddleware

import (
	"net/http"
	"time"

	"github.com/gorilla/sessions"

	"github.com/gormsession/gormsession"
)

// Options are the cookie attributes of a gorilla-style session, for
// Session.Options. They have the names and meaning of gorilla's
// sessions.Options (and gin-contrib/sessions' Options), so code that
// passes sessions.Options{...} to Session.Options compiles unchanged once
// its import path is changed. They replace the session cookie's attributes
// wholesale, exactly as written.
type Options struct {
	// Path is the cookie path.
	Path string
	// Domain is the cookie domain; empty is a host-only cookie.
	Domain string
	// MaxAge is the cookie lifetime in seconds: 0 is a browser-session
	// cookie, a negative value deletes the cookie and the session.
	MaxAge int
	// Secure is the Secure attribute.
	Secure bool
	// HttpOnly is the HttpOnly attribute.
	HttpOnly bool
	// Partitioned is the Partitioned attribute (CHIPS).
	Partitioned bool
	// SameSite is the SameSite attribute.
	SameSite http.SameSite
}

// AuthOptions configures Authenticate and, through it, the token cookie
// that Login sets and Logout deletes. The zero value is the safe default:
// an HttpOnly, Secure, SameSite=Lax cookie named "session" on path "/"
// that lives as long as the session, and cross-origin protection for
// unsafe requests that the cookie authenticates.
type AuthOptions struct {
	// CookieName is the name of the token cookie. Default: "session"
	// (gormsession.DefaultCookieName).
	CookieName string
	// Path is the cookie path. Default: "/".
	Path string
	// Domain is the cookie domain. Default: none, a host-only cookie.
	Domain string
	// MaxAge caps the cookie lifetime, in seconds. Default: 0, the
	// session's remaining lifetime.
	MaxAge int
	// BrowserSession makes the token cookie a browser-session cookie (no
	// Max-Age), gone when the browser closes. Default: false.
	BrowserSession bool
	// Insecure leaves the Secure attribute off the token cookie, for
	// plain-HTTP development on another host than localhost. Default:
	// false. SameSite=None always comes with Secure, whatever Insecure
	// says. The cookie is always HttpOnly: scripts have no business
	// reading a bearer token.
	Insecure bool
	// SameSite is the SameSite attribute. Default: Lax.
	SameSite http.SameSite
	// Partitioned is the Partitioned attribute (CHIPS). Default: false.
	Partitioned bool
	// CrossOrigin is the cross-origin (CSRF) protection applied to unsafe
	// requests (POST, PUT, PATCH, DELETE, ...) that are not authenticated
	// by a bearer token. Default: http.NewCrossOriginProtection().
	// Configure one to trust other origins (AddTrustedOrigin) or to exempt
	// paths (AddInsecureBypassPattern; the pattern "/" turns the
	// protection off, for applications that have their own).
	CrossOrigin *http.CrossOriginProtection
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

// config is AuthOptions resolved to their defaults, computed once by
// Authenticate.
type config struct {
	cookie         gormsession.CookieOptions
	name           string
	maxAge         int
	browserSession bool
	partitioned    bool
	cop            *http.CrossOriginProtection
}

// defaultConfig is used by Login and Logout on routes without Authenticate.
var defaultConfig = newConfig(AuthOptions{})

func newConfig(o AuthOptions) *config {
	cfg := &config{
		cookie: gormsession.CookieOptions{
			Name:     o.CookieName,
			Path:     o.Path,
			Domain:   o.Domain,
			Insecure: o.Insecure,
			SameSite: o.SameSite,
		},
		maxAge:         o.MaxAge,
		browserSession: o.BrowserSession,
		partitioned:    o.Partitioned,
		cop:            o.CrossOrigin,
	}
	cfg.name = o.CookieName
	if cfg.name == "" {
		cfg.name = gormsession.DefaultCookieName
	}
	if cfg.cop == nil {
		cfg.cop = http.NewCrossOriginProtection()
	}
	return cfg
}

// sessionCookie returns the cookie that carries s.Token.
func (cfg *config) sessionCookie(s gormsession.Session, now time.Time) *http.Cookie {
	c := cfg.cookie.Cookie(s, now)
	c.Partitioned = cfg.partitioned
	switch {
	case cfg.browserSession:
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
