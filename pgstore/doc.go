// Package pgstore is a [pgflight.Cache] in a PostgreSQL table, through a
// pgx v5 pool, for teams that run PostgreSQL and nothing else: with
// pglock on the same pool, pgflight needs no other server.
//
//	cache, err := pgstore.New(pool) // table pgflight_cache, created on first use
//	if err != nil {
//		return err
//	}
//	defer cache.Close()
//	g, err := pgflight.New(pgflight.Config{Cache: cache, Locker: pglock.New(pool)})
//
// A [Store] also implements [pgflight.Deleter] and [pgflight.BatchCache]:
// [Store.GetMany] and [Store.SetMany] read and write a batch in one
// statement.
//
// # The table
//
// Entries live in one UNLOGGED table (default pgflight_cache, see
// [WithTable]) of three columns: key bytea primary key, value bytea,
// expires_at timestamptz. Keys are bytes because pgflight's keys may hold
// any bytes, NUL and invalid UTF-8 included, which text cannot store; a
// key longer than 1,024 bytes is stored as its first 1,024 bytes and the
// SHA-256 of the whole key, so that it fits a B-tree entry. Unlogged
// tables skip the write-ahead log: writes are cheaper, and PostgreSQL
// empties the table after a crash and does not copy it to standbys, both
// fine for a cache. The schema is the package's schema.sql, which
// [Store.Schema] returns with the names filled in.
//
// By default the first statement that finds the table missing creates it
// and its expiry index ([Store.CreateSchema]), under an advisory lock so
// that a fleet starting at once creates it once: CREATE ... IF NOT EXISTS
// alone fails with a unique violation when raced. An application role that
// may not run DDL uses [WithManualSchema], and the table is created once by
// a role that may.
//
// # Expiry
//
// Every time is the server's: Set stores now() + ttl, with ttl sent as an
// interval, and Get treats a row with expires_at <= now() as a miss, so
// processes whose clocks disagree still agree on what has expired. Every
// time.Duration fits (pgflight caps TTLs at 50 years; the largest Duration
// is 292). Expired rows are deleted by a janitor goroutine that each Store
// runs every minute ([WithSweepInterval]), in statements of at most 1,000
// rows ([WithSweepLimit]) that skip rows another janitor has locked;
// [Store.Close] stops it. [Store.Sweep] runs one such statement, for a
// Store whose janitor is off.
//
// # PgBouncer and the pool
//
// Each method is one statement, in one round trip once the connection has
// prepared it. On a pool of pgx's default exec mode
// (QueryExecModeCacheStatement) the Store uses the connections' prepared
// statements. With any other DefaultQueryExecMode it sends its statements
// unprepared: Parse, Bind and Execute in one round trip, binary parameters
// and results, no prepared statement to lose. PgBouncer in transaction
// pooling breaks prepared statements (pgx's default pool through it fails
// with "prepared statement ... does not exist"); the Store turns them off
// for good at the first such error, before anything ran, and retries
// unprepared, so it works through PgBouncer even on a pool left at pgx's
// defaults. BenchmarkStores measures both ways (below).
//
// # Context
//
// ctx bounds the wait for a pool connection and the statement. With pgx's
// default context handling, a statement whose ctx ends returns at once but
// is not cancelled on the server: the client closes the connection, and a
// write that was waiting for a row lock may still land when it gets it
// (the entry then holds the old or the new value, as the Cache contract
// allows). A pool whose connections use pgconn's
// CancelRequestContextWatcherHandler cancels the statement on the server
// too:
//
//	cfg.ConnConfig.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
//		return &pgconn.CancelRequestContextWatcherHandler{Conn: c, DeadlineDelay: time.Second}
//	}
//
// # Errors
//
// A miss is (nil, false, nil). Any other failure is an error that names
// the operation and wraps pgx's, such as "pgstore: get: ...", and also
// wraps ctx.Err() if ctx has ended; test it with [errors.Is] and
// [errors.As] (a *pgconn.PgError carries the SQLSTATE).
//
// # Cost
//
// Measured by BenchmarkStores beside redisstore on the test machine (2
// shared cores, loopback servers, 5 runs, medians): a hit costs 34 µs
// against Redis's 22 µs (1.5x, 1.1x to 3.0x per run), a miss and its 1 KB
// Set 83 µs (2.1x), and GetMany of 100 keys 441 µs (1.6x). Unprepared, as
// through PgBouncer in transaction pooling, a hit costs 59 µs (2.7x) and a
// miss and Set 155 µs (4.3x): the server parses and plans every
// statement. A Redis-free deployment pays that on every cache access, and
// the cache's reads and writes load the database it shares with the
// application.
//
// pgstore does not import pgflight; it implements [pgflight.Cache],
// [pgflight.Deleter] and [pgflight.BatchCache] by their method sets alone.
//
// [pgflight.Cache]: https://pkg.go.dev/github.com/pgflight/pgflight#Cache
// [pgflight.Deleter]: https://pkg.go.dev/github.com/pgflight/pgflight#Deleter
// [pgflight.BatchCache]: https://pkg.go.dev/github.com/pgflight/pgflight#BatchCache
package pgstore
