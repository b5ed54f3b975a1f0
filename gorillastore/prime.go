package gorillastore

import (
	"math"
	"unicode/utf8"

	"github.com/gormsession/gormsession"
)

// prime caches the values just saved as the decoded form of the stored
// Data, so that the next Get of the session copies them instead of decoding
// the bytes just encoded.
//
// Invariant: values are cached for saved.Data only when decoding saved.Data
// is certain to give them back exactly (roundTrips): a primed entry must be
// what a decode would have put in the cache. Anything else is decoded on the
// next Get. TestRoundTripsOnlyWhenDecodeGivesValuesBack fails if roundTrips
// claims more than the codecs keep.
func (s *Store) prime(saved *gormsession.Session, values map[any]any) {
	if len(saved.Data) > 0 && roundTrips(s.serializer(), values) {
		s.cache.put(saved.ID, saved.Data, values)
	}
}

// roundTrips reports whether decoding what codec encodes from values is
// certain to give values back: the same keys, and values of the same types
// and contents. Save then caches the values it has just encoded, so that
// the next Get needs no decode. Only the built-in codecs and the plain types
// they keep exactly are recognised; anything else is decoded on the next
// Get as usual.
func roundTrips(codec Serializer, values map[any]any) bool {
	var ok, keyOK func(any) bool
	switch codec.(type) {
	case GobSerializer, *GobSerializer:
		ok, keyOK = gobExact, gobExact
	case JSONSerializer, *JSONSerializer:
		ok, keyOK = jsonExact, isString
	default:
		return false
	}
	for k, v := range values {
		if !keyOK(k) || !ok(v) {
			return false
		}
	}
	return true
}

func isString(v any) bool {
	s, ok := v.(string)
	return ok && utf8.ValidString(s)
}

// gobExact reports whether gob keeps v exactly, in an interface: built-in
// scalar types, and non-empty []any, []string, []int, []byte and
// map[string]any of them. (gob may turn an empty or nil slice or map into
// one or the other, and drops what it cannot see in structs.)
func gobExact(v any) bool {
	switch v := v.(type) {
	case string, bool, int, int8, int16, int32, int64, uint, uint16, uint32, uint64,
		float32, float64, complex64, complex128:
		return true
	case []any:
		if len(v) == 0 {
			return false
		}
		for _, e := range v {
			if !gobExact(e) {
				return false
			}
		}
		return true
	case []string:
		return len(v) > 0
	case []int:
		return len(v) > 0
	case []byte:
		return len(v) > 0
	case map[string]any:
		if len(v) == 0 {
			return false
		}
		for _, e := range v {
			if !gobExact(e) {
				return false
			}
		}
		return true
	}
	return false
}

// jsonExact reports whether JSONSerializer keeps v exactly: nil, bool, valid
// UTF-8 strings, int, float64 values that are finite and not whole, and
// non-nil []any and map[string]any of them.
func jsonExact(v any) bool {
	switch v := v.(type) {
	case nil, bool, int:
		return true
	case string:
		return utf8.ValidString(v)
	case float64:
		return !math.IsInf(v, 0) && !math.IsNaN(v) && v != math.Trunc(v)
	case []any:
		if v == nil {
			return false
		}
		for _, e := range v {
			if !jsonExact(e) {
				return false
			}
		}
		return true
	case map[string]any:
		if v == nil {
			return false
		}
		for _, e := range v {
			if !jsonExact(e) {
				return false
			}
		}
		return true
	}
	return false
}
