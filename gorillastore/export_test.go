package gorillastore

// noCache is a valueCache that holds nothing: every Get decodes.
type noCache struct{}

func (noCache) copyInto(map[any]any, string, []byte) bool { return false }
func (noCache) equal(string, []byte, map[any]any) bool    { return false }
func (noCache) put(string, []byte, map[any]any)           {}
func (noCache) remove(string)                             {}

// WithoutValuesCache makes s decode the Values on every Get, so that a
// benchmark can show what the cache buys. It is for tests.
func WithoutValuesCache(s *Store) { s.cache = noCache{} }
