package gorillastore

import (
	"bytes"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Serializer turns a session's Values into the bytes kept in the stored
// session's Data, and back. Implementations must be safe for concurrent use
// and must not keep references to the maps they are given.
type Serializer interface {
	// Encode returns the serialized form of values.
	Encode(values map[any]any) ([]byte, error)
	// Decode returns the values serialized in data, in a new map.
	Decode(data []byte) (map[any]any, error)
}

// GobSerializer encodes Values with encoding/gob, as gorilla's own stores do. It
// keeps Go types exactly. The basic types, their slices, []any,
// map[string]any, map[any]any and time.Time need no registration (this
// package registers the last three); other types must be
// registered with gob.Register, as with every gob-based store. It is the
// default Serializer.
type GobSerializer struct{}

func init() {
	gob.Register(map[string]any{})
	gob.Register(map[any]any{})
	gob.Register(time.Time{})
}

// Encode implements Serializer.
func (GobSerializer) Encode(values map[any]any) ([]byte, error) {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(values); err != nil {
		return nil, fmt.Errorf("gorillastore: gob encode: %w", err)
	}
	return buf.Bytes(), nil
}

// Decode implements Serializer.
func (GobSerializer) Decode(data []byte) (map[any]any, error) {
	values := make(map[any]any)
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&values); err != nil {
		return nil, fmt.Errorf("gorillastore: gob decode: %w", err)
	}
	return values, nil
}

// JSONSerializer encodes Values as a JSON object, readable by other languages
// and tools and needing no type registration.
//
// Keys must be strings. Values may be anything encoding/json marshals; they
// decode to the JSON types: string, bool, nil, []any and map[string]any,
// and numbers as int when they are whole and fit an int, float64 otherwise
// (so a float64 holding 2.0 comes back as the int 2). Other types, such as
// structs or time.Time, come back in their JSON shape, as a map or a string.
// Flashes, which are []any, survive the round trip.
type JSONSerializer struct{}

// Encode implements Serializer.
func (JSONSerializer) Encode(values map[any]any) ([]byte, error) {
	obj := make(map[string]any, len(values))
	for k, v := range values {
		ks, ok := k.(string)
		if !ok {
			return nil, fmt.Errorf("gorillastore: JSON encode: key %v is a %T, not a string", k, k)
		}
		obj[ks] = v
	}
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("gorillastore: JSON encode: %w", err)
	}
	return b, nil
}

// Decode implements Serializer.
func (JSONSerializer) Decode(data []byte) (map[any]any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return nil, fmt.Errorf("gorillastore: JSON decode: %w", err)
	}
	if obj == nil {
		return nil, errors.New("gorillastore: JSON decode: not an object")
	}
	if dec.More() {
		return nil, errors.New("gorillastore: JSON decode: trailing data")
	}
	values := make(map[any]any, len(obj))
	for k, v := range obj {
		values[k] = fromJSON(v)
	}
	return values, nil
}

// fromJSON replaces the json.Numbers in v by int or float64.
func fromJSON(v any) any {
	switch v := v.(type) {
	case json.Number:
		s := string(v)
		if !strings.ContainsAny(s, ".eE") {
			if n, err := strconv.ParseInt(s, 10, 64); err == nil && n >= math.MinInt && n <= math.MaxInt {
				return int(n)
			}
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			// Out of float64 range: keep the text rather than lose it.
			return s
		}
		return f
	case []any:
		for i := range v {
			v[i] = fromJSON(v[i])
		}
		return v
	case map[string]any:
		for k, e := range v {
			v[k] = fromJSON(e)
		}
		return v
	}
	return v
}
