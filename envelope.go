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
//	27     …    version 2 only: the tag section (below)
//	…      …    payload: the Codec's output, or the raw []byte or string
//
// Version 2 adds, after the header, the versions of the namespace's Clear
// and of the entry's tags (WithTags) as they stood when its computation
// began: a uvarint length, then that many bytes holding a uvarint Clear
// version, a uvarint count of tags, and for each tag a uvarint length, its
// bytes and a uvarint version. Every uvarint is minimal. An entry with no
// tags and a Clear version of 0 is written as version 1, so a namespace
// that never uses tags or Clear keeps version 1's bytes.
//
// The times let later versions serve stale entries and refresh early without
// a format change. A reader rejects an unknown version rather than guess.
const (
	envMagic      = 0xF1
	envVersion    = 1
	envTagged     = 2
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
	tags       tagSection // nil in a version 1 entry
	payload    []byte     // aliases the decoded buffer
}

var (
	errShortEntry = errors.New("entry shorter than its header")
	errNotEntry   = errors.New("not a pgflight entry")
)

// appendEntry appends e's header and then payload to dst.
func appendEntry(dst []byte, e entry) []byte {
	version := byte(envVersion)
	if e.tags != nil {
		version = envTagged
	}
	dst = append(dst, envMagic, version, e.flags)
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.computedAt))
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.freshUntil))
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.took))
	if e.tags != nil {
		dst = binary.AppendUvarint(dst, uint64(len(e.tags)))
		dst = append(dst, e.tags...)
	}
	return append(dst, e.payload...)
}

// entrySize is the length of e's envelope.
func entrySize(e entry) int {
	n := envHeaderSize + len(e.payload)
	if e.tags != nil {
		n += binary.MaxVarintLen64 + len(e.tags)
	}
	return n
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
	if b[1] != envVersion && b[1] != envTagged {
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
	if b[1] == envTagged {
		n, w := uvarint(e.payload)
		if w <= 0 || n > uint64(len(e.payload)-w) {
			return entry{}, errors.New("entry's tag section overruns it")
		}
		e.tags, e.payload = tagSection(e.payload[w:w+int(n)]), e.payload[w+int(n):]
		if err := e.tags.check(); err != nil {
			return entry{}, err
		}
	}
	return e, nil
}

// uvarint decodes a minimal uvarint from b, as binary.Uvarint does, but
// rejects a longer encoding than needed (w = -1), so that an accepted entry
// re-encodes to its own bytes.
func uvarint(b []byte) (v uint64, w int) {
	v, w = binary.Uvarint(b)
	if w > 1 && b[w-1] == 0 {
		return 0, -1
	}
	return v, w
}

// A tagSection is a version 2 entry's tag section, without its length.
type tagSection []byte

// appendTagSection appends the section recording clear, the Clear
// version, and the tags' versions; it returns nil for no tags and a Clear
// version of 0 (a version 1 entry).
func appendTagSection(dst []byte, clear uint64, tags []string, versions []uint64) tagSection {
	if len(tags) == 0 && clear == 0 {
		return nil
	}
	dst = binary.AppendUvarint(dst, clear)
	dst = binary.AppendUvarint(dst, uint64(len(tags)))
	for i, t := range tags {
		dst = binary.AppendUvarint(dst, uint64(len(t)))
		dst = append(dst, t...)
		dst = binary.AppendUvarint(dst, versions[i])
	}
	return tagSection(dst)
}

// check reports whether s is well formed and not one that a version 1
// entry would carry.
func (s tagSection) check() error {
	clear, n, ok := s.head()
	if !ok {
		return errors.New("malformed tag section")
	}
	if clear == 0 && n == 0 {
		return errors.New("empty tag section")
	}
	ok = s.each(func([]byte, uint64) bool { return true })
	if !ok {
		return errors.New("malformed tag section")
	}
	return nil
}

// head returns the section's Clear version and its count of tags.
func (s tagSection) head() (clear, n uint64, ok bool) {
	clear, w := uvarint(s)
	if w <= 0 {
		return 0, 0, false
	}
	n, w2 := uvarint(s[w:])
	if w2 <= 0 {
		return 0, 0, false
	}
	return clear, n, true
}

// clear returns the Clear version the section records; 0 for nil.
func (s tagSection) clear() uint64 {
	c, _, _ := s.head()
	return c
}

// each calls fn with every tag and its version, until fn returns false;
// it reports false if the section is malformed or fn stopped it. The tag
// aliases s.
func (s tagSection) each(fn func(tag []byte, version uint64) bool) bool {
	if s == nil {
		return true
	}
	_, w := uvarint(s)
	n, w2 := uvarint(s[w:])
	b := s[w+w2:]
	for ; n > 0; n-- {
		l, w := uvarint(b)
		if w <= 0 || l > uint64(len(b)-w) {
			return false
		}
		tag := b[w : w+int(l)]
		b = b[w+int(l):]
		v, w := uvarint(b)
		if w <= 0 || !fn(tag, v) {
			return false
		}
		b = b[w:]
	}
	return len(b) == 0
}
