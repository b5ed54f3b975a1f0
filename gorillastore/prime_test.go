package gorillastore

import (
	"math"
	"reflect"
	"testing"
	"time"
)

// TestRoundTripsOnlyWhenDecodeGivesValuesBack checks the promise Save's
// cache priming relies on: when roundTrips says yes, decoding the encoded
// values gives exactly the values back. It also checks that the common
// cases are recognised, or priming would never happen.
func TestRoundTripsOnlyWhenDecodeGivesValuesBack(t *testing.T) {
	type named string
	cases := []any{
		"text", "", "\xff invalid utf-8", true, 0, 42, -7, int8(3), int64(math.MaxInt64), uint(7),
		uint64(math.MaxUint64), float32(1.5), 2.5, 2.0, math.Inf(1), complex(1, 2),
		[]any{"a", 1}, []any{}, []any(nil), []any{nil}, []string{"x"}, []string{}, []int{1},
		[]byte{1}, []byte{}, map[string]any{"k": "v"}, map[string]any{}, map[string]any(nil),
		map[string]any{"n": 1.5, "l": []any{"x"}}, nil, time.Unix(0, 0), named("x"),
		struct{ A int }{1}, &struct{ A int }{1},
	}
	recognised := map[string]int{}
	for _, codec := range []Serializer{GobSerializer{}, JSONSerializer{}} {
		name := reflect.TypeOf(codec).Name()
		for _, v := range cases {
			values := map[any]any{"k": v}
			if !roundTrips(codec, values) {
				continue
			}
			recognised[name]++
			data, err := codec.Encode(values)
			if err != nil {
				t.Errorf("%s: roundTrips(%#v) but Encode fails: %v", name, v, err)
				continue
			}
			got, err := codec.Decode(data)
			if err != nil {
				t.Errorf("%s: roundTrips(%#v) but Decode fails: %v", name, v, err)
				continue
			}
			if !reflect.DeepEqual(got, values) {
				t.Errorf("%s: roundTrips(%#v) but it decodes as %#v", name, v, got["k"])
			}
		}
	}
	if recognised["GobSerializer"] < 15 || recognised["JSONSerializer"] < 8 {
		t.Fatalf("too few values recognised as round-tripping: %v", recognised)
	}
	if roundTrips(GobSerializer{}, map[any]any{1: "int key"}) != true || roundTrips(JSONSerializer{}, map[any]any{1: "x"}) {
		t.Fatal("keys: gob keeps an int key, JSON cannot")
	}
}
