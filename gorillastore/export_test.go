package gorillastore

import "time"

// ForgetValues drops the cached Values (and issued cookie) of the session
// id, so that a benchmark can measure a Get that misses the cache.
func ForgetValues(s *Store, id string) { s.cache.remove(id) }

// SetCookieClock makes s read the age of the cookies it issued from now
// instead of the wall clock.
func SetCookieClock(s *Store, now func() time.Time) { s.now = now }

// IssuedCookie returns the cookie value s last issued for the session id,
// if it remembers one.
func IssuedCookie(s *Store, id string) (string, bool) {
	ic, ok := s.cache.issued(id)
	return ic.value, ok
}
