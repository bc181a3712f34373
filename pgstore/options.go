package pgstore

import "time"

// Defaults of the options.
const (
	defaultTable         = "pgflight_cache"
	defaultSweepInterval = time.Minute
	defaultSweepLimit    = 1000
)

// An Option configures a [Store] in [New].
type Option func(*options)

type options struct {
	table         string
	sweepInterval time.Duration
	sweepLimit    int
	manualSchema  bool
}

// WithTable sets the table that holds the entries: a name such as
// "app_cache", or a schema and a name, "cache.app". Each part is 1 to 63
// bytes of ASCII letters, digits and '_', not starting with a digit (52
// bytes at most for the name itself, so that the expiry index's name,
// name + "_expires_at", fits PostgreSQL's 63); New refuses anything else
// with an error, so no name can carry SQL. Names are quoted, so "App" and
// "app" are two tables. An unqualified name is found, and created, in the
// connection's search_path; a schema named here must already exist.
//
// Stores that share a table share their entries, like clients of one
// Redis database. pgflight's Config.Namespace already keeps the Groups of
// one table apart.
//
// Default: "pgflight_cache".
func WithTable(name string) Option {
	return func(o *options) { o.table = name }
}

// WithSweepInterval sets how often the Store's janitor deletes expired
// rows. At each tick it deletes them in batches of [WithSweepLimit] rows,
// one statement each, until a batch comes back short. Expired rows are
// never returned, swept or not; sweeping only frees their space. Every
// process of a fleet may run a janitor: the batches skip rows that another
// janitor is deleting. d < 0 turns the janitor off (call [Store.Sweep]
// yourself, for example from a scheduled job); d == 0 means the default.
//
// Default: 1 minute.
func WithSweepInterval(d time.Duration) Option {
	return func(o *options) { o.sweepInterval = d }
}

// WithSweepLimit sets the most rows one sweep statement deletes, which
// bounds the locks it holds and the time it runs. n < 1 means the default.
//
// Default: 1,000.
func WithSweepLimit(n int) Option {
	return func(o *options) { o.sweepLimit = n }
}

// WithManualSchema makes the Store never run DDL. By default a Store whose
// table does not exist creates it, and its index, at the first statement
// that finds it missing; with this option that statement fails instead,
// with an error saying to create the table. It is for roles that may not
// create tables: create the table once with [Store.CreateSchema] as a role
// that may, or have a DBA apply the statements of [Store.Schema].
func WithManualSchema() Option {
	return func(o *options) { o.manualSchema = true }
}
