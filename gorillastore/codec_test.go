package gorillastore_test

import (
	"encoding/gob"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gormsession/gormsession/gorillastore"
)

type profile struct {
	Name  string
	Age   int
	Roles []string
}

type account struct{ ID int }

func init() {
	gob.Register(profile{})
	gob.Register(&account{})
}

func TestGobSerializerRoundTrip(t *testing.T) {
	when := time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)
	values := map[any]any{
		"s":      "text",
		"i":      42,
		"f":      2.5,
		"b":      true,
		"t":      when,
		"bytes":  []byte{0, 1, 2},
		"_flash": []any{"one", 2},
		"m":      map[string]any{"k": "v"},
		"p":      profile{Name: "alice", Age: 30, Roles: []string{"admin"}},
		"ptr":    &account{ID: 9},
		7:        "int key",
	}
	data, err := gorillastore.GobSerializer{}.Encode(values)
	if err != nil {
		t.Fatal(err)
	}
	got, err := gorillastore.GobSerializer{}.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, values) {
		t.Fatalf("round trip:\n got %#v\nwant %#v", got, values)
	}
}

func TestJSONSerializerRoundTrip(t *testing.T) {
	values := map[any]any{
		"s":      "text",
		"i":      42,
		"neg":    -7,
		"f":      2.5,
		"whole":  2.0, // comes back as int
		"big":    1e300,
		"b":      true,
		"nil":    nil,
		"_flash": []any{"one", 2},
		"m":      map[string]any{"k": "v", "n": 1},
	}
	data, err := gorillastore.JSONSerializer{}.Encode(values)
	if err != nil {
		t.Fatal(err)
	}
	got, err := gorillastore.JSONSerializer{}.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	want := map[any]any{
		"s":      "text",
		"i":      42,
		"neg":    -7,
		"f":      2.5,
		"whole":  2,
		"big":    1e300,
		"b":      true,
		"nil":    nil,
		"_flash": []any{"one", 2},
		"m":      map[string]any{"k": "v", "n": 1},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip:\n got %#v\nwant %#v", got, want)
	}
}

func TestJSONSerializerErrors(t *testing.T) {
	if _, err := (gorillastore.JSONSerializer{}).Encode(map[any]any{1: "x"}); err == nil ||
		!strings.Contains(err.Error(), "not a string") {
		t.Fatalf("int key: %v", err)
	}
	if _, err := (gorillastore.JSONSerializer{}).Encode(map[any]any{"c": make(chan int)}); err == nil {
		t.Fatal("channel value: no error")
	}
	for _, bad := range []string{"", "null", "[1]", "{", `{"a":1} {"b":2}`, `"x"`, "\xff"} {
		if v, err := (gorillastore.JSONSerializer{}).Decode([]byte(bad)); err == nil {
			t.Errorf("Decode(%q) = %v, want an error", bad, v)
		}
	}
	// A number beyond float64 is kept as text, not lost or a panic.
	v, err := gorillastore.JSONSerializer{}.Decode([]byte(`{"n":1e999,"m":9223372036854775808}`))
	if err != nil {
		t.Fatal(err)
	}
	if v["n"] != "1e999" {
		t.Fatalf("1e999 decoded as %#v", v["n"])
	}
	if f, ok := v["m"].(float64); !ok || f != math.Pow(2, 63) {
		t.Fatalf("2^63 decoded as %#v, want float64", v["m"])
	}
}

func TestGobSerializerRejectsGarbage(t *testing.T) {
	for _, bad := range [][]byte{{0xff}, []byte("not gob"), {0x0e, 0xff, 0x81}} {
		if v, err := (gorillastore.GobSerializer{}).Decode(bad); err == nil {
			t.Errorf("Decode(%q) = %v, want an error", bad, v)
		}
	}
	if _, err := (gorillastore.GobSerializer{}).Encode(map[any]any{"f": func() {}}); err == nil {
		t.Fatal("func value: no error")
	}
}
