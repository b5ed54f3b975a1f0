package gorillastore_test

import (
	"encoding/gob"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/sessions"

	"github.com/gormsession/gormsession"
	"github.com/gormsession/gormsession/gorillastore"
)

// countingSerializer is GobSerializer, counting its decodes. Save does not
// prime the cache through it (roundTrips knows only the built-in codecs),
// so the first Get after a save decodes and the next ones are served from
// the cache.
type countingSerializer struct {
	gorillastore.GobSerializer
	decodes atomic.Int64
}

func (c *countingSerializer) Decode(data []byte) (map[any]any, error) {
	c.decodes.Add(1)
	return c.GobSerializer.Decode(data)
}

// getValues gets the session "sid" of a request carrying cookie.
func getValues(t *testing.T, st *gorillastore.Store, cookie string) map[any]any {
	t.Helper()
	r := httptest.NewRequest("GET", "/", nil)
	r.AddCookie(&http.Cookie{Name: "sid", Value: cookie})
	s, err := st.New(r, "sid")
	if err != nil || s.IsNew {
		t.Fatalf("get: %v (new %v)", err, s.IsNew)
	}
	return s.Values
}

// TestCacheServesOnlyTheBytesItWasFilledFrom: once the stored Data of a
// session is replaced, by bytes of the same length, the next Get decodes
// them rather than serving the cached values of the bytes before.
func TestCacheServesOnlyTheBytesItWasFilledFrom(t *testing.T) {
	e := newEnv(t, newSQLite(t), gormsession.ManagerOptions{})
	st := gorillastore.New(e.m, key(32))
	created, c0, err := exchange(t, st, "sid", "", setValue("user", "alice"))
	if err != nil {
		t.Fatal(err)
	}
	if got := getValues(t, st, c0)["user"]; got != "alice" {
		t.Fatalf("user %v, want alice", got)
	}
	before, _ := e.m.Get(created.ID)
	data, err := gorillastore.GobSerializer{}.Encode(map[any]any{"user": "bobby"})
	if err != nil || len(data) != len(before.Data) {
		t.Fatalf("encode: %v, %d bytes against %d", err, len(data), len(before.Data))
	}
	if _, err := e.m.Update(t.Context(), created.ID, func(x *gormsession.Session) { x.Data = data }); err != nil {
		t.Fatal(err)
	}
	if got := getValues(t, st, c0)["user"]; got != "bobby" {
		t.Fatalf("after the Data changed: user %v, want bobby", got)
	}
}

// cachePoint is a struct of immutable fields, which the cache shares.
type cachePoint struct {
	X, Y int
	At   time.Time
}

// TestCopyableValuesAreServedFromTheCache: the values the package doc says
// are served from the cache are decoded once and then copied, and each
// Get's copy is its own: changing it in place changes nothing for the next
// Get.
func TestCopyableValuesAreServedFromTheCache(t *testing.T) {
	when := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	values := map[string]any{
		"string":   "s",
		"int":      1,
		"uint8":    uint8(2),
		"float":    2.5,
		"bool":     true,
		"time":     when,
		"duration": time.Second,
		"struct":   cachePoint{1, 2, when},
		"array":    [2]int{1, 2},
		"strings":  []string{"a", "b"},
		"bytes":    []byte{1, 2},
		"ints":     []int{1, 2},
		"floats":   []float64{1.5},
		"bools":    []bool{true},
		"times":    []time.Time{when},
		"points":   []cachePoint{{1, 2, when}},
		"map-ss":   map[string]string{"k": "v"},
		"map-si":   map[string]int{"k": 1},
		"map-sb":   map[string]bool{"k": true},
		"map-is":   map[int]string{1: "v"},
		"flashes":  []any{"f", 1, []string{"x"}},
		"map-sa":   map[string]any{"k": []int{1}, "m": map[string]bool{"k": true}},
	}
	for _, v := range []any{cachePoint{}, []time.Time{}, []cachePoint{}, map[string]int{}, map[string]bool{},
		map[int]string{}, [2]int{}, []float64{}, []bool{}, time.Duration(0), map[string]string{}} {
		gob.Register(v)
	}
	e := newEnv(t, newSQLite(t), gormsession.ManagerOptions{})
	st := gorillastore.New(e.m, key(32))
	codec := &countingSerializer{}
	st.Serializer = codec
	_, c0, err := exchange(t, st, "sid", "", func(s *sessions.Session) {
		for k, v := range values {
			s.Values[k] = v
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		got := getValues(t, st, c0)
		for k, v := range values {
			if !reflect.DeepEqual(got[k], v) {
				t.Fatalf("Get %d: %s = %#v, want %#v", i, k, got[k], v)
			}
		}
		// Change every slice and map in place.
		for _, v := range got {
			scribble(reflect.ValueOf(v))
		}
	}
	if n := codec.decodes.Load(); n != 1 {
		t.Fatalf("%d decodes for 3 Gets; want 1, the others served from the cache", n)
	}
}

// scribble changes the elements of a slice or map in place, recursively.
func scribble(v reflect.Value) {
	switch v.Kind() {
	case reflect.Interface:
		scribble(v.Elem())
	case reflect.Slice:
		for i := range v.Len() {
			e := v.Index(i)
			if e.Kind() == reflect.Interface || e.Kind() == reflect.Slice || e.Kind() == reflect.Map {
				scribble(e)
			} else if e.CanSet() {
				e.SetZero()
			}
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			e := v.MapIndex(k)
			if e.Kind() == reflect.Interface || e.Kind() == reflect.Slice || e.Kind() == reflect.Map {
				scribble(e)
			} else {
				v.SetMapIndex(k, reflect.Zero(e.Type()))
			}
		}
	}
}
