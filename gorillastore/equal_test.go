package gorillastore

import (
	"math"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"
)

// TestMapsEqualIsDeepEqual checks the fast comparison of Values against
// reflect.DeepEqual, which it stands for.
func TestMapsEqualIsDeepEqual(t *testing.T) {
	type point struct{ X, Y int }
	now := time.Now()
	vals := []any{
		nil, "", "a", "b", 0, 1, int64(1), int32(1), uint(1), true, false, 1.5, math.NaN(),
		[]any(nil), []any{}, []any{"a", 1}, []any{"a", 2}, []any{[]any{1}},
		map[string]any(nil), map[string]any{}, map[string]any{"a": 1}, map[string]any{"a": "1"},
		[]string{"a"}, []byte("a"), []byte(nil), point{1, 2}, point{1, 3}, now, now.UTC(),
		map[any]any{"a": 1}, map[any]any{"a": 1.0},
	}
	for _, a := range vals {
		for _, b := range vals {
			if got, want := valuesEqual(a, b), reflect.DeepEqual(a, b); got != want {
				t.Errorf("valuesEqual(%#v, %#v) = %v, DeepEqual %v", a, b, got, want)
			}
			ma, mb := map[any]any{"k": a, 1: "x"}, map[any]any{"k": b, 1: "x"}
			if got, want := mapsEqual(ma, mb), reflect.DeepEqual(ma, mb); got != want {
				t.Errorf("mapsEqual(%#v, %#v) = %v, DeepEqual %v", ma, mb, got, want)
			}
		}
	}
	maps := []map[any]any{nil, {}, {"a": 1}, {"a": 1, "b": 2}, {"b": 1}, {1: 1}}
	for _, a := range maps {
		for _, b := range maps {
			if got, want := mapsEqual(a, b), reflect.DeepEqual(a, b); got != want {
				t.Errorf("mapsEqual(%#v, %#v) = %v, DeepEqual %v", a, b, got, want)
			}
		}
	}
}

func TestRequestHasCookie(t *testing.T) {
	tests := []struct {
		headers []string
		want    bool
	}{
		{nil, false},
		{[]string{"sid=v"}, true},
		{[]string{"sid=w"}, false},
		{[]string{"a=1; sid=v; b=2"}, true},
		{[]string{" a=1 ;  sid=v  "}, true},
		{[]string{`sid="v"`}, true},
		{[]string{"xsid=v; sidx=v; sid=vv; sid"}, false},
		{[]string{"a=1", "sid=w; sid=v"}, true},
		{[]string{"sid=v=; a=v"}, false},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "/", nil)
		for _, h := range tt.headers {
			r.Header.Add("Cookie", h)
		}
		if got := requestHasCookie(r, "sid", "v"); got != tt.want {
			t.Errorf("requestHasCookie(%q) = %v, want %v", tt.headers, got, tt.want)
		}
	}
}
