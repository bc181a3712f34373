package pgflight

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Every cache entry is a small versioned envelope around the encoded value:
//
//	offset size
//	0      1    magic 0xF1
//	1      1    version (1)
//	2      1    flags
//	3      8    computed at, Unix nanoseconds, big endian
//	11     8    fresh until, Unix nanoseconds, big endian
//	19     8    duration of the computation, nanoseconds, big endian
//	27     …    payload: the Codec's output, or the raw []byte or string
//
// The times let later versions serve stale entries and refresh early without
// a format change. A reader rejects an unknown version rather than guess.
const (
	envMagic      = 0xF1
	envVersion    = 1
	envHeaderSize = 27
)

// Envelope flags.
const (
	flagNil     byte = 1 << iota // the value was a nil []byte
	flagMissing                  // a negative entry: the payload is fn's error message

	knownFlags = flagNil | flagMissing
)

// entry is a decoded envelope.
type entry struct {
	flags      byte
	computedAt int64 // Unix nanoseconds
	freshUntil int64 // Unix nanoseconds
	took       time.Duration
	payload    []byte // aliases the decoded buffer
}

var (
	errShortEntry = errors.New("entry shorter than its header")
	errNotEntry   = errors.New("not a pgflight entry")
)

// appendEntry appends e's header and then payload to dst.
func appendEntry(dst []byte, e entry) []byte {
	dst = append(dst, envMagic, envVersion, e.flags)
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.computedAt))
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.freshUntil))
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.took))
	return append(dst, e.payload...)
}

// parseEntry decodes an envelope; the payload aliases b.
func parseEntry(b []byte) (entry, error) {
	if len(b) < envHeaderSize {
		if len(b) > 0 && b[0] != envMagic {
			return entry{}, errNotEntry
		}
		return entry{}, errShortEntry
	}
	if b[0] != envMagic {
		return entry{}, errNotEntry
	}
	if b[1] != envVersion {
		return entry{}, fmt.Errorf("unknown entry version %d", b[1])
	}
	if b[2]&^knownFlags != 0 || b[2] == knownFlags {
		// Unknown bits come from a newer writer or a forged entry; a nil
		// value cannot also be a negative entry.
		return entry{}, fmt.Errorf("unknown entry flags %#02x", b[2])
	}
	e := entry{
		flags:      b[2],
		computedAt: int64(binary.BigEndian.Uint64(b[3:])),
		freshUntil: int64(binary.BigEndian.Uint64(b[11:])),
		took:       time.Duration(binary.BigEndian.Uint64(b[19:])),
		payload:    b[envHeaderSize:],
	}
	if e.freshUntil < e.computedAt || e.took < 0 {
		return entry{}, errors.New("entry times out of order")
	}
	return e, nil
}
