package redisstore

// An Option configures a [Store] made by [New].
type Option func(*Store)

// WithPrefix makes the Store put prefix in front of every key it sends to
// Redis, for example to match an ACL key pattern such as "~cache:*".
//
// Most users need none: pgflight already puts its Config.Namespace in front
// of every key. A prefix costs an allocation per call to build the key; no
// prefix, the default, costs nothing.
func WithPrefix(prefix string) Option {
	return func(s *Store) {
		s.prefix = prefix
	}
}
