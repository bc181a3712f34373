package memcachedstore

// DefaultMaxItemSize is memcached's default item size limit, 1 MiB: that of
// a server started without -I.
const DefaultMaxItemSize = 1 << 20

// An Option configures a [Store] made by [New].
type Option func(*Store)

// WithMaxItemSize tells the Store the item size limit of its servers, in
// bytes: memcached's -I option, for example 2 << 20 for -I 2m. An item is
// its key, its value and a header of 59 bytes, so the longest value that
// fits is a little shorter than the limit.
//
// Set refuses a value that does not fit with a [*TooLargeError], before
// sending anything. A limit larger than the server's only moves the refusal
// to the server, which answers with the same error after a wasted transfer
// (and deletes the previous value); a limit smaller than the server's
// refuses values it would take.
//
// Default: [DefaultMaxItemSize], 1 MiB. A limit of 0 or less means the
// default.
func WithMaxItemSize(bytes int) Option {
	return func(s *Store) {
		if bytes > 0 {
			s.maxItemSize = bytes
		}
	}
}
