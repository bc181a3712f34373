// Command bench measures pgflight against the ways a fleet of processes
// can share one cached computation today, and writes the results to
// BENCHMARKS.md at the root of the repository, with an SVG chart in docs/.
//
// Run it from this directory, the bench module (it has a go.mod of its own,
// so that the peers it compares never become dependencies of pgflight):
//
//	cd bench && go run .          # full run: 7 repetitions, about 10 minutes
//	cd bench && go run . -quick   # 1 repetition, shorter loops, half the cold-start keys, about a minute
//
// It uses the PostgreSQL server named by -database-url, else DATABASE_URL,
// else postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable, and the
// Redis server named by -redis-url, else REDIS_URL, else
// redis://127.0.0.1:6379/0. Every key it writes is under a prefix unique to
// the run, and it deletes only those keys. Progress goes to stderr.
//
// # Method
//
// Every measurement is a fleet: the command re-executes itself as P worker
// processes, each of which connects, says "ready" on stdout and waits for a
// line on stdin; the parent releases them together. Each worker runs G
// goroutines that call one contender, counts the calls of the compute
// function, and reports on stdout. The parent samples the fleet's
// PostgreSQL sessions and advisory locks (pg_stat_activity and pg_locks,
// filtered by an application_name unique to the run) and its Redis clients
// (CLIENT LIST, filtered by client name) while it runs.
//
// The contenders (one file each): none (cache-aside on Redis, no
// coordination), recipe (a Go port of the Django recipe
// cache_chained_calculation: a transaction-scoped advisory lock per caller),
// singleflight (golang.org/x/sync/singleflight in front of Redis), sturdyc
// (github.com/viccon/sturdyc, in-process cache only), redsync
// (github.com/go-redsync/redsync/v4 mutex per key, then a re-check) and
// pgflight (redisstore and pglock.New(pool) with its default options, on
// pgxpool's default pool, as a new user configures them; pgflight-tx is
// the same with pglock.WithTransactionMode). The scenarios are stampede,
// crash, expiry, expiry-stale (plain pgflight beside pgflight serving stale
// values while one process refreshes them, with and without XFetch early
// refresh), zipf, hits, coldstart-small and coldstart-large (the group
// coldstart: on an empty cache, every process asks for every one of many
// keys at about the same moment; see coldstart.go) and manykeys; see
// scenario.go. Every scenario runs R times (coldstart-large at most 3)
// with the contenders interleaved, in a rotating order, and the report
// gives medians, and ratios computed between contenders of the same
// repetition. -scenarios selects scenarios by name or group, for example
// -scenarios coldstart.
//
// # Invalidation checker
//
//	cd bench && go run . -checker    # issue 10, item 5: 60 s in each configuration, about 2.5 minutes
//
// measures instead whether readers are served values older than a committed
// write (checker.go): writers in the parent update rows of a table of the
// run's own and call pglock.Invalidate in the same transaction, while 4
// reader processes Fetch the rows through pgflight on Redis and pglock,
// without and then with the local tier; every read is checked against the
// writers' log, which the parent streams to the readers with watermarks.
// It prints a Markdown section (or writes it to -checker-out) with the
// strict violations, their lag distribution, the violations beyond
// -checker-bound and the checks that hold whatever the timing; the
// -checker-* flags set it up, and -checker-mode picks the invalidation
// method (keys: pglock.Invalidate; tag modes are to come).
package main
