package gorillastore

import (
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"

	"github.com/gormsession/gormsession"
)

// issuedCookie is the cookie value a Store last set for a session: what
// Save may send again instead of checking the request's cookie against the
// session and encoding a new one (see Store.reusable).
type issuedCookie struct {
	name  string             // the cookie's name, which the codec signs
	value string             // the encoded value, as set
	codec securecookie.Codec // the codec that encoded it
	at    time.Time          // when, by the Store's clock
}

// maxCookieReuse bounds how long Save sends an issued cookie value again.
// The codecs New makes do not limit a cookie's age, but Codecs assigned by
// hand may (securecookie's MaxAge): a value is never sent again once it is
// older than this, so such a codec still refuses the cookies it would have
// as long as its MaxAge is longer.
const maxCookieReuse = time.Minute

// decodeToken verifies a cookie value with the Store's Codecs and returns
// the token it carries. Every cookie a request carries goes through here
// before its token is used: none is accepted for what it looks like.
func (s *Store) decodeToken(name, value string) (string, error) {
	var raw []byte
	if err := securecookie.DecodeMulti(name, value, &raw, s.Codecs...); err != nil {
		return "", fmt.Errorf("gorillastore: session %q: %w: %w", name, ErrUnverifiedCookie, err)
	}
	if !gormsession.ValidToken(string(raw)) {
		return "", fmt.Errorf("gorillastore: session %q: %w", name, gormsession.ErrInvalidToken)
	}
	return string(raw), nil
}

// encodeCookie encodes token into the value of the cookie called name.
func (s *Store) encodeCookie(name, token string) (issuedCookie, error) {
	value, err := securecookie.EncodeMulti(name, []byte(token), s.Codecs...)
	if err != nil {
		return issuedCookie{}, fmt.Errorf("gorillastore: save %q: encode cookie: %w", name, err)
	}
	return issuedCookie{name: name, value: value, codec: s.Codecs[0], at: s.clock()}, nil
}

// reusable returns the cookie value this Store issued for the session id
// called name, when the client sent it back (in r, or a cookie an earlier
// Save set on w in this request) and it may be sent again as it is. Save
// then needs neither the token (Manager.Update takes the ID) nor a new
// encoding; any other cookie (older, another instance's, made before a key
// rotation) goes through the full check in sessionToken: decode, compare
// the token's hash with the ID.
//
// Invariant: a value is reused only for the session it was issued for
// (the cache keys it by ID; deleting the session drops it), under the name
// it was issued under (the codec signs the name), while the first of the
// Store's Codecs is still the codec that encoded it, and only when the
// client sent exactly that value: such a client holds the token of session
// id, as decoding the value would have shown. Get never relies on it; it
// decodes every cookie. The value is reused only while it is younger than a
// step of the sliding expiry (see slide) and maxCookieReuse, so the
// timestamp securecookie signs into it stays recent, and a save a step
// later issues a fresh one. These tests fail if it breaks:
// TestCopiesOfTheIssuedCookieThatDoNotMatchAreRefused,
// TestRotatedKeysIssueANewCookie, TestIssuedCookieIsReplacedAfterAStep,
// TestDeleteForgetsTheIssuedCookie.
func (s *Store) reusable(r *http.Request, w http.ResponseWriter, name, id string, opts *sessions.Options) (string, bool) {
	ic, ok := s.cache.issued(id)
	if !ok || ic.name != name || len(s.Codecs) == 0 || !sameCodec(ic.codec, s.Codecs[0]) {
		return "", false
	}
	if age := s.clock().Sub(ic.at); age < 0 || age >= reuseWindow(opts.MaxAge) {
		return "", false
	}
	if requestHasCookie(r, name, ic.value) {
		return ic.value, true
	}
	if v, set := responseValue(w, name); set && v == ic.value {
		return ic.value, true
	}
	return "", false
}

// requestHasCookie reports whether r carries a cookie called name whose
// value is value: a client that sends the value holds it, whichever of
// several cookies of that name r.Cookie would pick.
func requestHasCookie(r *http.Request, name, value string) bool {
	for _, c := range r.CookiesNamed(name) {
		if c.Value == value {
			return true
		}
	}
	return false
}

// reuseWindow is how long a cookie issued for a session saved with maxAge
// may be sent again: a step of its sliding expiry, at most maxCookieReuse.
func reuseWindow(maxAge int) time.Duration {
	if lifetime := maxAgeLifetime(maxAge); lifetime > 0 {
		return min(max(lifetime/64, time.Second), maxCookieReuse)
	}
	return maxCookieReuse
}

// sameCodec reports whether a and b are the same codec. Codecs of a type
// that cannot be compared are never the same.
func sameCodec(a, b securecookie.Codec) bool {
	if a == nil || b == nil {
		return false
	}
	if pa, ok := a.(*securecookie.SecureCookie); ok {
		pb, ok := b.(*securecookie.SecureCookie)
		return ok && pa == pb
	}
	t := reflect.TypeOf(a)
	return t == reflect.TypeOf(b) && t.Comparable() && a == b
}

// clock returns the time by which the age of issued cookies is measured.
func (s *Store) clock() time.Time {
	if s.now != nil {
		return s.now()
	}
	return time.Now()
}

// sessionToken returns the token of the session id called name: the
// token of the request's cookie or of a cookie set on the response, the
// one whose hash is id; or "" when neither is.
//
// The token of a session is not kept with the session: Save finds it
// again in the two places that already hold it for exactly one request,
// the request's cookie and the cookies an earlier Save set on the
// response. So a session can be saved again however it reached Save (from
// the registry, which puts the plain Store back on it; copied; built by
// hand with the ID of the client's cookie). The ID check
// (HashToken(token) == ID) makes both places safe to trust: a session is
// written only with the token of a cookie this Store's keys signed. (Save
// looks here only when the cookie is not the value it last issued for the
// session; see reusable.)
func (s *Store) sessionToken(r *http.Request, w http.ResponseWriter, name, id string) string {
	if token := s.requestToken(r, name); token != "" && gormsession.HashToken(token) == id {
		return token
	}
	if token, _ := s.responseToken(w, name); token != "" && gormsession.HashToken(token) == id {
		return token
	}
	return ""
}

// clientToken returns the token of the cookie called name that the client
// holds after this response: the last one set on w, else r's; "" when that
// cookie is missing, invalid or a deletion.
func (s *Store) clientToken(r *http.Request, w http.ResponseWriter, name string) string {
	if token, set := s.responseToken(w, name); set {
		return token
	}
	return s.requestToken(r, name)
}

// requestToken returns the token of r's cookie called name, or "".
func (s *Store) requestToken(r *http.Request, name string) string {
	c, err := r.Cookie(name)
	if err != nil {
		return ""
	}
	token, err := s.decodeToken(name, c.Value)
	if err != nil {
		return ""
	}
	return token
}

// responseToken returns the token of the last cookie called name set on w,
// and whether one is set at all (a deleting cookie carries no token).
func (s *Store) responseToken(w http.ResponseWriter, name string) (token string, set bool) {
	value, set := responseValue(w, name)
	if value == "" {
		return "", set
	}
	token, err := s.decodeToken(name, value)
	if err != nil {
		return "", true
	}
	return token, true
}

// responseValue returns the value of the last cookie called name set on w,
// "" for a deleting one, and whether one is set at all.
func responseValue(w http.ResponseWriter, name string) (value string, set bool) {
	lines := w.Header()["Set-Cookie"]
	for i := len(lines) - 1; i >= 0; i-- {
		if !strings.HasPrefix(lines[i], name+"=") {
			continue
		}
		c, err := http.ParseSetCookie(lines[i])
		if err != nil || c.Name != name {
			continue
		}
		if c.MaxAge < 0 {
			return "", true
		}
		return c.Value, true
	}
	return "", false
}
