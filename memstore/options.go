package memstore

// An Option configures a [Store] made by [New].
type Option func(*config)

type config struct {
	maxBytes int64
}

// WithMaxBytes sets the capacity of the Store to n bytes of keys and values.
// otter's own bookkeeping, about 130 bytes per entry, is not counted. A value
// n ≤ 0 means the default, [DefaultMaxBytes] (64 MiB).
func WithMaxBytes(n int64) Option {
	return func(c *config) {
		if n > 0 {
			c.maxBytes = n
		} else {
			c.maxBytes = DefaultMaxBytes
		}
	}
}
