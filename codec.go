package pgflight

import "encoding/json"

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

// encodeValue returns v's payload and envelope flags.
func encodeValue[T any](c Codec, v T) ([]byte, byte, error) {
	switch x := any(v).(type) {
	case []byte:
		if x == nil {
			return nil, flagNil, nil
		}
		return x, 0, nil
	case string:
		return []byte(x), 0, nil
	}
	b, err := c.Marshal(v)
	return b, 0, err
}

// decodeValue decodes an entry's payload into a T.
func decodeValue[T any](c Codec, e entry) (T, error) {
	var v T
	switch p := any(&v).(type) {
	case *[]byte:
		if e.flags&flagNil == 0 {
			*p = append([]byte{}, e.payload...)
		}
		return v, nil
	case *string:
		*p = string(e.payload)
		return v, nil
	}
	err := c.Unmarshal(e.payload, &v)
	return v, err
}
