package gorillastore

import (
	"maps"
	"reflect"
	"sync"
	"time"
	"unsafe"

	"github.com/gorilla/securecookie"
)

// valuesCache keeps the decoded Values of recently read sessions, so that a
// Get does not decode the same Data again and again. An entry is valid only
// for the exact Data slice it was decoded from: the Manager never modifies
// a session's Data in place but replaces it, so a change of the slice's
// address or length means the session changed. The entry keeps that slice
// alive, so its address cannot be reused for other data meanwhile.
//
// An entry also holds the cookie value the Store last issued for the
// session, for Save to send again (see Store.reusable). That value is only
// ever sent: no request is accepted because it carries it, since every
// cookie a request carries is decoded and verified (see Store.decodeToken).
// Deleting the session through the Store drops the entry.
//
// Entries hold a private deep copy of the values; every Get receives a deep
// copy of that, so a handler that modifies its Values (or a slice or map
// inside them) never touches the cache. Only values that can be copied that
// way are cached (see copyValue); a session holding other values is decoded
// on every Get.
type valuesCache struct {
	shards [cacheShards]cacheShard
}

// The cache holds at most cacheShards*cacheShardCap entries (10,240): as
// many sessions as the Manager keeps anonymous ones in memory by default
// (ManagerOptions.MaxAnonymous). An entry outlives its use once the Manager
// has evicted the session (its Data is read anew), so a larger cache would
// only let a flood of visitors grow memory.
const (
	cacheShards   = 16 // one per hex digit
	cacheShardCap = 640
)

type cacheShard struct {
	mu sync.RWMutex
	m  map[string]cacheEntry
	_  [40]byte // keep neighbouring locks off one cache line
}

type cacheEntry struct {
	data   []byte
	values map[any]any // nil when the entry holds only an issued cookie
	cookie issuedCookie
}

// issuedCookie is the cookie value a Store last set for a session: what
// Save may send again instead of decoding the request's cookie and
// encoding a new one (see Store.reusable).
type issuedCookie struct {
	name  string             // the cookie's name, which the codec signs
	value string             // the encoded value, as set
	codec securecookie.Codec // the codec that encoded it
	at    time.Time          // when, by the Store's clock
}

func (c *valuesCache) shard(id string) *cacheShard {
	// IDs are hex; their last digit picks the shard.
	var b byte
	if len(id) > 0 {
		b = id[len(id)-1]
		if b >= 'a' {
			b -= 'a' - 10
		} else {
			b -= '0'
		}
	}
	return &c.shards[int(b)&(cacheShards-1)]
}

func sameData(a, b []byte) bool {
	return len(a) == len(b) && unsafe.SliceData(a) == unsafe.SliceData(b)
}

// copyInto copies the cached values of the session id with Data data into
// dst. It reports false, leaving dst alone, when there is no valid entry.
func (c *valuesCache) copyInto(dst map[any]any, id string, data []byte) bool {
	sh := c.shard(id)
	sh.mu.RLock()
	e, ok := sh.m[id]
	sh.mu.RUnlock()
	if !ok || e.values == nil || !sameData(e.data, data) {
		return false
	}
	for k, v := range e.values {
		// Every cached value was copyable when it was stored.
		dst[k], _ = copyValue(v)
	}
	return true
}

// put caches a deep copy of values as the decoded form of data, when every
// key and value can be copied. Entries of other sessions are evicted when the
// shard is full.
func (c *valuesCache) put(id string, data []byte, values map[any]any) {
	snap, ok := copyMap(values)
	if !ok {
		return
	}
	c.edit(id, func(e *cacheEntry) { e.data, e.values = data, snap })
}

// edit applies f to the entry of id, a new empty one if there is none, under
// its shard's write lock. A new entry evicts an arbitrary other one when the
// shard is full.
func (c *valuesCache) edit(id string, f func(*cacheEntry)) {
	sh := c.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.m == nil {
		sh.m = make(map[string]cacheEntry)
	}
	e, exists := sh.m[id]
	if !exists && len(sh.m) >= cacheShardCap {
		for k := range sh.m {
			delete(sh.m, k)
			break
		}
	}
	f(&e)
	sh.m[id] = e
}

// issued returns the cookie last issued for the session id, if it is known.
func (c *valuesCache) issued(id string) (issuedCookie, bool) {
	sh := c.shard(id)
	sh.mu.RLock()
	e, ok := sh.m[id]
	sh.mu.RUnlock()
	return e.cookie, ok && e.cookie.value != ""
}

// issue records ic as the cookie issued for the session id, keeping the
// entry's values.
func (c *valuesCache) issue(id string, ic issuedCookie) {
	c.edit(id, func(e *cacheEntry) { e.cookie = ic })
}

// equal reports whether the cached values of the session id with Data data
// are equal to values. It reads the entry in place: nothing is copied.
func (c *valuesCache) equal(id string, data []byte, values map[any]any) bool {
	sh := c.shard(id)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	e, ok := sh.m[id]
	return ok && e.values != nil && sameData(e.data, data) && mapsEqual(e.values, values)
}

// mapsEqual is reflect.DeepEqual(a, b) for two Values maps, without
// reflection for the types sessions commonly hold.
func mapsEqual[K comparable](a, b map[K]any) bool {
	if (a == nil) != (b == nil) || len(a) != len(b) {
		return false
	}
	for k, va := range a {
		vb, ok := b[k]
		if !ok || !valuesEqual(va, vb) {
			return false
		}
	}
	return true
}

// valuesEqual is reflect.DeepEqual(a, b).
func valuesEqual(a, b any) bool {
	switch x := a.(type) {
	case string:
		y, ok := b.(string)
		return ok && x == y
	case int:
		y, ok := b.(int)
		return ok && x == y
	case int64:
		y, ok := b.(int64)
		return ok && x == y
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case float64:
		y, ok := b.(float64)
		return ok && x == y
	case []any:
		y, ok := b.([]any)
		if !ok || (x == nil) != (y == nil) || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !valuesEqual(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		return ok && mapsEqual(x, y)
	}
	return reflect.DeepEqual(a, b)
}

// remove drops the entry of the session id: its values and its cookie.
func (c *valuesCache) remove(id string) {
	sh := c.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	delete(sh.m, id)
}

// copyMap returns a deep copy of m, or false when a key or value cannot be
// copied.
func copyMap[K comparable](m map[K]any) (map[K]any, bool) {
	if m == nil {
		return nil, true
	}
	out := make(map[K]any, len(m))
	for k, v := range m {
		if !immutable(k) {
			return nil, false
		}
		cv, ok := copyValue(v)
		if !ok {
			return nil, false
		}
		out[k] = cv
	}
	return out, true
}

// copyAll copies the elements of s with copyValue.
func copyAll(s []any) ([]any, bool) {
	if s == nil {
		return nil, true
	}
	out := make([]any, len(s))
	for i, e := range s {
		c, ok := copyValue(e)
		if !ok {
			return nil, false
		}
		out[i] = c
	}
	return out, true
}

// copyValue returns a copy of v that shares no mutable memory with it, or
// false when it does not know how. Values of immutable types are their own
// copy; the slices and maps that codecs produce (flashes are []any) are
// copied element by element.
func copyValue(v any) (any, bool) {
	switch v := v.(type) {
	case nil, string, bool, int, int8, int16, int32, int64, uint, uint8, uint16, uint32,
		uint64, uintptr, float32, float64, complex64, complex128, time.Time, time.Duration:
		return v, true
	case []any:
		return copyAll(v)
	case map[string]any:
		return copyMap(v)
	case map[any]any:
		return copyMap(v)
	case []string:
		return cloneSlice(v), true
	case []byte:
		return cloneSlice(v), true
	case []int:
		return cloneSlice(v), true
	case []int64:
		return cloneSlice(v), true
	case []float64:
		return cloneSlice(v), true
	case []bool:
		return cloneSlice(v), true
	case map[string]string:
		return maps.Clone(v), true
	}
	if immutable(v) {
		return v, true
	}
	return nil, false
}

// cloneSlice copies s into a slice whose capacity equals its length, so that
// an append to the copy never writes into memory another copy uses.
func cloneSlice[T any](s []T) []T {
	if s == nil {
		return nil
	}
	out := make([]T, len(s))
	copy(out, s)
	return out
}

// immutableTypes memoizes isImmutableType per type.
var immutableTypes sync.Map // reflect.Type -> bool

// immutable reports whether a value of v's type can be shared: one with no
// pointers, slices, maps, channels, functions or interfaces inside, such as
// a struct of strings and numbers. (An interface holds its own copy of such
// a value, and strings cannot be modified.)
func immutable(v any) bool {
	switch v.(type) {
	case nil, string, bool, int, int64, float64:
		// The common keys and values, without reflection.
		return true
	}
	t := reflect.TypeOf(v)
	if r, ok := immutableTypes.Load(t); ok {
		return r.(bool)
	}
	r := isImmutableType(t, 0)
	immutableTypes.Store(t, r)
	return r
}

func isImmutableType(t reflect.Type, depth int) bool {
	if depth > 16 {
		return false
	}
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128, reflect.String:
		return true
	case reflect.Array:
		return isImmutableType(t.Elem(), depth+1)
	case reflect.Struct:
		for i := range t.NumField() {
			if !isImmutableType(t.Field(i).Type, depth+1) {
				return false
			}
		}
		return true
	}
	return false
}
