package gorillastore

import (
	"reflect"
	"sync"
	"time"
	"unsafe"
)

// valuesCache keeps the decoded Values of recently read sessions, so that a
// Get copies them instead of decoding the session's Data again (BenchmarkGet:
// "cached" against "miss").
//
// Invariants, on which a Get's correctness rests:
//   - An entry's values are served only for the exact Data slice they were
//     decoded from (or, after priming, encoded to): same address, same
//     length (sameSlice). The Manager never modifies a session's Data in
//     place but replaces it, so another slice means the session changed;
//     the entry keeps its slice alive, so the address cannot be reused for
//     other bytes meanwhile.
//   - The values are kept as a private deep copy, and every Get receives a
//     deep copy of that (copyValue), so a handler that modifies its Values,
//     or a slice or map inside them, never touches the cache. Values that
//     cannot be copied that way are not cached: a session holding them is
//     decoded on every Get.
//
// TestCacheServesOnlyTheBytesItWasFilledFrom and
// TestHandlerChangesDoNotLeakBetweenRequests fail if these break.
//
// An entry also holds the cookie value the Store last issued for the
// session, for Save to send again (see Store.reusable). No Get relies on
// it: every cookie a request carries is decoded and verified (see
// Store.decodeToken). Deleting the session through the Store drops the
// entry.
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

// sameSlice reports whether a and b are the same slice: the same first
// element in memory and the same length. It compares identity, not
// contents: two equal copies of some bytes are not the same slice.
func sameSlice(a, b []byte) bool {
	return len(a) == len(b) && unsafe.SliceData(a) == unsafe.SliceData(b)
}

// copyInto copies the cached values of the session id with Data data into
// dst. It reports false, leaving dst alone, when there is no valid entry.
func (c *valuesCache) copyInto(dst map[any]any, id string, data []byte) bool {
	sh := c.shard(id)
	sh.mu.RLock()
	e, ok := sh.m[id]
	sh.mu.RUnlock()
	if !ok || e.values == nil || !sameSlice(e.data, data) {
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
// are deeply equal to values (reflect.DeepEqual). It reads the entry in
// place, under the shard's read lock: nothing is copied.
func (c *valuesCache) equal(id string, data []byte, values map[any]any) bool {
	sh := c.shard(id)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	e, ok := sh.m[id]
	return ok && e.values != nil && sameSlice(e.data, data) && reflect.DeepEqual(e.values, values)
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
// false when it does not know how. It knows three kinds of values:
//   - values of immutable types (see immutable): each is its own copy;
//   - slices and maps whose elements and keys are of immutable types, such
//     as []string, []time.Time or map[string]int: copied whole (copyFlat);
//   - []any, map[string]any and map[any]any (flashes are []any): copied
//     element by element with copyValue.
func copyValue(v any) (any, bool) {
	switch v := v.(type) {
	case []any:
		return copyAll(v)
	case map[string]any:
		return copyMap(v)
	case map[any]any:
		return copyMap(v)
	}
	if immutable(v) {
		return v, true
	}
	return copyFlat(reflect.ValueOf(v))
}

// copyFlat copies a slice or map whose elements and keys are of immutable
// types, or reports false. A slice is copied into one whose capacity is its
// length, so that an append to the copy never writes into memory another
// copy uses.
func copyFlat(v reflect.Value) (any, bool) {
	t := v.Type()
	switch {
	case t.Kind() == reflect.Slice && immutableType(t.Elem()):
		if v.IsNil() {
			return v.Interface(), true
		}
		out := reflect.MakeSlice(t, v.Len(), v.Len())
		reflect.Copy(out, v)
		return out.Interface(), true
	case t.Kind() == reflect.Map && immutableType(t.Key()) && immutableType(t.Elem()):
		if v.IsNil() {
			return v.Interface(), true
		}
		out := reflect.MakeMapWithSize(t, v.Len())
		for it := v.MapRange(); it.Next(); {
			out.SetMapIndex(it.Key(), it.Value())
		}
		return out.Interface(), true
	}
	return nil, false
}

// immutableTypes memoizes isImmutableType per type.
var immutableTypes sync.Map // reflect.Type -> bool

// immutable reports whether a value of v's type can be shared: one with no
// pointers, slices, maps, channels, functions or interfaces inside, such as
// a struct of strings and numbers, or a time.Time. (An interface holds its
// own copy of such a value, and strings cannot be modified.)
func immutable(v any) bool {
	switch v.(type) {
	case nil, string, bool, int, int64, float64, time.Time:
		// The common keys and values, without reflection.
		return true
	}
	return immutableType(reflect.TypeOf(v))
}

// immutableType is isImmutableType, memoized.
func immutableType(t reflect.Type) bool {
	if r, ok := immutableTypes.Load(t); ok {
		return r.(bool)
	}
	r := isImmutableType(t, 0)
	immutableTypes.Store(t, r)
	return r
}

// timeType is the one type with a pointer inside that is immutable: a
// time.Time's *Location is never modified once made.
var timeType = reflect.TypeFor[time.Time]()

func isImmutableType(t reflect.Type, depth int) bool {
	if depth > 16 {
		return false
	}
	if t == timeType {
		return true
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
