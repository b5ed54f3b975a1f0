package gorillastore_test

import (
	"bytes"
	"encoding/gob"
	"math"
	"reflect"
	"strings"
	"sync"
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

// gobFresh encodes values with a new gob encoder.
func gobFresh(t *testing.T, values map[any]any) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(values); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// gobDecode decodes data with a new gob decoder.
func gobDecode(t *testing.T, data []byte) map[any]any {
	t.Helper()
	var got map[any]any
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&got); err != nil {
		t.Fatalf("decode %x: %v", data, err)
	}
	return got
}

// TestGobSerializerWritesWhatANewEncoderWrites: GobSerializer's encoding is
// a complete gob stream, byte for byte what a new encoder writes, whatever
// it encoded before (maps of basic types go through pooled encoders, the
// others not), in turn or at once.
func TestGobSerializerWritesWhatANewEncoderWrites(t *testing.T) {
	type role string
	gob.Register(role(""))
	singles := []any{"text", "", true, 42, int8(-8), int16(16), int32(-32), int64(1) << 60,
		uint(7), uint8(8), uint16(16), uint32(32), uint64(1) << 63, float32(1.5), 2.5, complex64(1 + 2i),
		complex128(3 - 4i), []byte{0, 1}, math.Inf(1), strings.Repeat("x", 100<<10),
		// Not basic: described by a new encoder every time.
		role("admin"), []string{"a"}, []any{"flash"}, map[string]any{"k": 1}, time.Unix(5, 0).UTC(), profile{Name: "p"}}
	for round := range 3 {
		for _, v := range singles {
			values := map[any]any{"k": v}
			data, err := gorillastore.GobSerializer{}.Encode(values)
			if err != nil {
				t.Fatal(err)
			}
			if want := gobFresh(t, values); !bytes.Equal(data, want) {
				t.Fatalf("round %d, %T: encoded\n%x\nwant what a new encoder writes\n%x", round, v, data, want)
			}
			if got := gobDecode(t, data); !reflect.DeepEqual(got, values) {
				t.Fatalf("round %d, %T: decoded %#v", round, v, got)
			}
		}
	}

	// Many entries, from several goroutines at once.
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				values := map[any]any{"user": "alice", "visits": g*1000 + i, 3: 2.5, "raw": []byte("x")}
				if i%7 == 0 {
					values["flash"] = []any{"hello"}
				}
				data, err := gorillastore.GobSerializer{}.Encode(values)
				if err != nil {
					t.Error(err)
					return
				}
				var got map[any]any
				if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&got); err != nil || !reflect.DeepEqual(got, values) {
					t.Errorf("decoded %#v, %v; want %#v", got, err, values)
					return
				}
			}
		})
	}
	wg.Wait()
}
