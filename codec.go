package pgflight

import (
	"encoding/json"
	"fmt"
	"reflect"
	"unsafe"
)

// A Codec turns values into bytes for the Cache and back. It must be safe
// for concurrent use by multiple goroutines.
//
// Fetch does not call the Codec for values of type []byte and string: those
// are stored as they are.
type Codec interface {
	Marshal(v any) ([]byte, error)
	Unmarshal(data []byte, v any) error
}

// JSONCodec is the default Codec: encoding/json.
type JSONCodec struct{}

// Marshal returns the JSON encoding of v.
func (JSONCodec) Marshal(v any) ([]byte, error) { return json.Marshal(v) }

// Unmarshal parses JSON data into v, which must be a non-nil pointer.
func (JSONCodec) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

// encodeValue returns v's payload and envelope flags, chosen by T, the
// type the caller asked for, never by v's dynamic type: a string held in an
// any is marshalled like any other value, not stored raw.
//
// It also returns the value the callers of the miss get. That is v itself,
// unless T is or holds an interface type (any, error, []any, a struct with
// an interface field): then it is v as decoded back from the payload, so
// that the miss returns exactly what every later hit will (through JSON an
// int held in an any comes back a float64, a struct a map[string]any). A
// value that does not come back at all (an error through JSON) is an error
// here, at the first call, rather than a value that is never cached.
func encodeValue[T any](c Codec, v T) (T, []byte, byte, error) {
	switch p := any(&v).(type) {
	case *[]byte:
		if *p == nil {
			return v, nil, flagNil, nil
		}
		return v, *p, 0, nil
	case *string:
		return v, []byte(*p), 0, nil
	}
	b, err := c.Marshal(v)
	if err != nil || !holdsInterface(reflect.TypeFor[T]()) {
		return v, b, 0, err
	}
	var back T
	if err := c.Unmarshal(b, &back); err != nil {
		return v, nil, 0, fmt.Errorf("a %s does not survive the codec's round trip, so it could never be served from the cache: %w", reflect.TypeFor[T](), err)
	}
	return back, b, 0, nil
}

// holdsInterface reports whether values of t can hold an interface value,
// whose dynamic type a Codec may not restore.
func holdsInterface(t reflect.Type) bool {
	return holdsInterfaceSeen(t, map[reflect.Type]bool{})
}

func holdsInterfaceSeen(t reflect.Type, seen map[reflect.Type]bool) bool {
	if seen[t] {
		return false // a recursive type: its other branches decide
	}
	seen[t] = true
	switch t.Kind() {
	case reflect.Interface:
		return true
	case reflect.Pointer, reflect.Slice, reflect.Array, reflect.Chan:
		return holdsInterfaceSeen(t.Elem(), seen)
	case reflect.Map:
		return holdsInterfaceSeen(t.Key(), seen) || holdsInterfaceSeen(t.Elem(), seen)
	case reflect.Struct:
		for i := range t.NumField() {
			if holdsInterfaceSeen(t.Field(i).Type, seen) {
				return true
			}
		}
	}
	return false
}

// decodeValue decodes an entry's payload into a T.
func decodeValue[T any](c Codec, e entry) (T, error) {
	if v, ok := decodeRaw[T](e); ok {
		return v, nil
	}
	var v T
	err := c.Unmarshal(e.payload, &v)
	return v, err
}

// decodeRaw decodes e when T is []byte or string, which are stored as they
// are; ok is false for other types. (It is a function of its own so that
// its v stays on the stack: decodeValue's escapes into Unmarshal.)
//
// e.payload is part of the bytes the Cache returned, which belong to the
// Group (the Cache contract) and which nothing writes afterwards: the value
// can use them without a copy.
func decodeRaw[T any](e entry) (v T, ok bool) {
	switch p := any(&v).(type) {
	case *[]byte:
		if e.flags&flagNil == 0 {
			*p = e.payload[:len(e.payload):len(e.payload)]
		}
		return v, true
	case *string:
		*p = unsafe.String(unsafe.SliceData(e.payload), len(e.payload))
		return v, true
	}
	return v, false
}
