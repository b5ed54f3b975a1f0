package gorillastore

import "time"

// noCache is a valueCache that holds nothing: every Get decodes.
type noCache struct{}

func (noCache) copyInto(map[any]any, string, []byte) bool { return false }
func (noCache) equal(string, []byte, map[any]any) bool    { return false }
func (noCache) put(string, []byte, map[any]any)           {}
func (noCache) issued(string) (issuedCookie, bool)        { return issuedCookie{}, false }
func (noCache) issue(string, issuedCookie)                {}
func (noCache) remove(string)                             {}

// WithoutValuesCache makes s decode the Values on every Get, so that a
// benchmark can show what the cache buys. It is for tests.
func WithoutValuesCache(s *Store) { s.cache = noCache{} }

// SetCookieClock makes s read the age of the cookies it issued from now
// instead of the wall clock.
func SetCookieClock(s *Store, now func() time.Time) { s.now = now }

// IssuedCookie returns the cookie value s last issued for the session id,
// if it remembers one.
func IssuedCookie(s *Store, id string) (string, bool) {
	ic, ok := s.cache.issued(id)
	return ic.value, ok
}
