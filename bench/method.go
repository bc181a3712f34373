package main

import (
	"bytes"
	"cmp"
	"fmt"
	"runtime"
	"strings"
)

// method writes how the numbers were made.
func (s *suite) method(b *bytes.Buffer) {
	fmt.Fprintf(b, "\n## Method\n\n")
	fmt.Fprintf(b, "Each measurement is a fleet of worker processes: the command re-executes itself, each worker connects (a Redis client; a pgxpool pool for the contenders that use PostgreSQL, which the recipe pings once, so that one connection is warm, and on which pgflight takes and releases one lock, so that pglock has opened what it uses: its lock session, or in transaction mode a pool connection), says it is ready, and waits on a barrier on its stdin; the parent releases every worker at once. ")
	fmt.Fprintf(b, "The compute function sleeps and counts its own calls; workers report their counts, latencies and errors to the parent. ")
	fmt.Fprintf(b, "While a fleet runs, the parent samples every %v the PostgreSQL sessions and advisory locks (`pg_stat_activity` and `pg_locks`, filtered by an `application_name` that starts with a name unique to the fleet, since pglock names its lock session after the pool's; the sampler's own session is not counted) and every %v the Redis clients (`CLIENT LIST`, filtered by a client name unique to the run), and reports the peaks. ", samplePGEvery, sampleRedisEvery)
	fmt.Fprintf(b, "Every key is written under a prefix unique to the run, and only those keys are deleted afterwards.\n\n")
	fmt.Fprintf(b, "Throughput on this shared 2-core machine moves by ±20%% or more between runs a few seconds apart, more than the differences to measure. So zipf and hits also run pgflight and none **taking turns in one fleet**: every worker holds both, and every goroutine calls the one whose %v turn it is by the clock, so that both see the same background load; each one's calls/s is its calls over its share of the run. In hits, none taking turns with none is the A/A control of that method.\n\n", pairSlice)
	fmt.Fprintf(b, "The contenders, each a small file of [bench/](bench/), with their clients' default settings (go-redis: 10 connections per CPU; pgxpool: max(4, NumCPU) connections per process):\n\n")
	fmt.Fprintf(b, "- **none**: cache-aside on Redis: `GET`, and on a miss compute and `SET`. No coordination.\n")
	fmt.Fprintf(b, "- **recipe**: a Go port of the Django recipe `cache_chained_calculation`: the Redis key is the md5 of the key; on a miss the caller runs `BEGIN`, `select pg_advisory_xact_lock((x'c'::bigint<<60) | first 60 bits of the md5)` (derived in Go, checked against the SQL in `recipe_test.go`), re-reads Redis, computes and `SET`s if it still misses, and `COMMIT`s. Each caller that misses holds a pooled connection and a transaction while it waits.\n")
	fmt.Fprintf(b, "- **singleflight**: `golang.org/x/sync/singleflight` around the cache-aside (as go-redis/cache's `Once`): coalescing inside a process only.\n")
	fmt.Fprintf(b, "- **sturdyc**: `github.com/viccon/sturdyc` `GetOrFetch` on its in-process cache, no shared store: coalescing inside a process only, and hits from memory. The in-process floor for latency.\n")
	fmt.Fprintf(b, "- **redsync**: a `github.com/go-redsync/redsync/v4` mutex per key with its defaults (8 s expiry, 32 tries, 50 to 250 ms between tries) on a miss, then a re-check, compute and `SET`, then unlock.\n")
	pool := "pgxpool's default config (max(4, NumCPU) connections)"
	if s.o.pglockPool > 0 {
		pool = fmt.Sprintf("`MaxConns` %d per process (`-pglock-pool %d`, **not the default**)", s.o.pglockPool, s.o.pglockPool)
	} else if s.o.pgPool > 0 {
		pool = fmt.Sprintf("`MaxConns` %d per process (`-pg-pool %d`, **not the default**)", s.o.pgPool, s.o.pgPool)
	}
	fmt.Fprintf(b, "- **pgflight**: `pgflight.Fetch` with `redisstore` and `pglock.New(pool)`, as a new user configures them: pglock's default options, on a pgxpool pool with %s that only pglock uses; every pgflight setting but the namespace and the TTL at its default. ", pool)
	fmt.Fprintf(b, "**pgflight (transaction mode)** (`-contenders pgflight-tx`) is the same with `pglock.New(pool, pglock.WithTransactionMode())`, pglock's mode for PgBouncer in transaction pooling: each lock held or awaited takes a pool connection inside a transaction, at most min(16, max(2, MaxConns/2)) = %d at once, beyond which a flight waits briefly for one and then computes without the lock; it runs in stampede, crash, zipf, the cold starts and manykeys. ", capOf(cmp.Or(s.o.pglockPool, s.o.pgPool)))
	fmt.Fprintf(b, "In expiry-stale, **pgflight-stale** also serves the value stale for `Config.StaleTTL` = %v while one process refreshes it, and **pgflight-xfetch** also refreshes early by XFetch with `Config.EarlyRefresh` = 1.\n", s.o.expiryStale)
	if s.o.pgPool > 0 {
		fmt.Fprintf(b, "\n**Not the defaults**: the recipe's PostgreSQL pools have %d connections per process (`-pg-pool %d`).\n", s.o.pgPool, s.o.pgPool)
	}
}

// capOf returns pglock's default connection cap for a pool of poolMax
// connections (0: pgxpool's default, max(4, NumCPU)), as pglock documents
// it: min(16, max(2, MaxConns/2)).
func capOf(poolMax int) int {
	if poolMax == 0 {
		poolMax = max(4, runtime.NumCPU())
	}
	return min(16, max(2, poolMax/2))
}

// descriptions returns a paragraph per scenario, with its settings.
func (s *suite) descriptions() map[string]string {
	o := s.o
	return map[string]string{
		"stampede":        fmt.Sprintf("One cold key: %d processes × %d goroutines call once for it at the same moment; computing it takes %v. Latency is per call, from the release of the barrier; \"first computation starts\" is the time from the first release to the start of the first computation, which sets the floor of every caller's latency, and \"fan-out\" is max − first start − computation time: how long after the computation ended the last caller was served. The ideal: 1 computation, every caller served after about one computation.", o.procs, o.goroutines, o.compute),
		"crash":           fmt.Sprintf("The stampede again (%d × %d, %v), but the parent SIGKILLs the first process that starts computing, half-way through its computation (it announces the start on stdout). Measured: the time from the kill until every caller in the surviving processes has a value (\"never\" if any surviving call failed), the survivors' errors and computations. Where the survivors' first computation started after the kill, that time splits into the takeover (from the kill to the start of the new computation), the computation itself, and the fan-out (from its end until the last survivor had the value).", o.procs, o.goroutines, o.compute),
		"expiry":          fmt.Sprintf("One hot key with a TTL of %v under a tight loop: %d processes × %d goroutines for %v; computing takes %v. Every worker reads the key once before the barrier. Computations that started within half a TTL of each other are counted as one expiry (a stored value stays fresh for a whole TTL, so two of them are a duplicate). Computations per TTL period = computations ÷ (run length ÷ TTL), the issue's measure: as a period lasts a TTL plus one computation, the ideal is just under 1, plus the start when the key was cold; per expiry the ideal is exactly 1. Latencies are over all calls: each goroutine waits once per expiry and makes hundreds of hits in between, so the waits are far fewer than 1%% of the calls and the p99 does not show them (the max does); expiry-stale measures the calls around each recomputation.", o.expiryTTL, o.procs, o.loopGoroutines, o.expiryDuration, o.expiryCompute),
		"expiry-stale":    fmt.Sprintf("The expiry scenario again (TTL %v, %d processes × %d goroutines for %v, computing takes %v), run by pgflight as in expiry and by pgflight-stale and pgflight-xfetch, which serve the value stale for %v past its TTL (issue 5). A stale hit returns at once and starts one background refresh per process, which takes the lock with a try, so that one process in the fleet refreshes. The table puts plain expiry and expiry with stale side by side, measured in the same repetitions. **Calls around a recomputation** are the calls that started within one computation time (%v) of the start of a computation, before or after it: the calls across an expiry, chosen by when they started, as the whole run's are; the other calls are hits. **Flights that waited for a computation** are pgflight's `Stats.Misses` during the loop: each such flight, and every caller in its process that joined it, waited for a computation (the holder's or its own). **Duplicates** are computations that started less than two computation times after another, before its value was stored. Stale hits count flights, not callers: callers of one process that ask at once share one read. The counters are pgflight's `Stats`, summed over the fleet: early refreshes tried (`EarlyRefreshes`) counts the background refreshes that XFetch started in any process, most of which find another process refreshing; refreshes that computed (`RefreshesStarted`) those that took the lock and called fn; refreshes skipped (`RefreshesSkipped`) every stale or early hit that started no refresh (its process was refreshing the key already, or had refreshed it less than half a TTL before) and every try that found another process refreshing.", o.expiryTTL, o.procs, o.loopGoroutines, o.expiryDuration, o.expiryCompute, o.expiryStale, o.expiryCompute),
		"zipf":            fmt.Sprintf("%d keys drawn from a Zipf distribution (s = %g), in a tight loop: %d processes × %d goroutines for %v, every key cold at the start; computing takes %v; TTL 10 minutes. Computations per key = computations ÷ distinct keys asked for (ideal 1.00); calls/s over the whole fleet.", o.zipfKeys, o.zipfS, o.procs, o.zipfGoroutines, o.zipfDuration, o.zipfCompute),
		"hits":            fmt.Sprintf("%d warm keys (every worker calls each once before the barrier), drawn uniformly in a tight loop: %d processes × %d goroutines for %v. Pure hit throughput; sturdyc's hits are in-process memory reads and are shown for reference only. Calls/s of separate fleets moves by a factor of 2 from run to run here (the recipe, whose hit is none's GET plus an md5, is an A/A control for that); taking turns in one fleet, with none/none as its A/A control, is the measure to read. Worker CPU per call is the user and system time of the worker processes during the loop, per call.", o.zipfKeys, o.procs, o.loopGoroutines, o.hitsDuration),
		"coldstart-small": coldStartText(o, o.coldSmall),
		"coldstart-large": coldStartText(o, o.coldLarge),
		"manykeys":        fmt.Sprintf("One process misses %d distinct keys at once (one goroutine each; computing takes %v), pgflight and pgflight (transaction mode) only. The parent samples the process's advisory locks in `pg_locks` (held, and held or awaited); the worker samples pglock's connections in use every millisecond and reports `Stats.FailOpens` (flights that computed without the lock because pglock failed or answered ErrBusy) and the 'out of shared memory' errors (SQLSTATE 53200) seen (see the cold start). The documented cap is transaction mode's, min(16, max(2, MaxConns/2)).", o.manyKeys, o.manyCompute),
	}
}

// coldStartText describes the cold start c.
func coldStartText(o *options, c coldStart) string {
	return fmt.Sprintf("An empty cache, and every process wants every key, all starting at the same moment: %d processes × %d goroutines, %s keys, computing one takes %v; TTL 10 minutes. "+
		"Each process walks all the keys once, in an order of its own (a permutation drawn per process and repetition, the same for every contender), its goroutines sharing the walk: each takes the next key as its last call returns. So every process asks for every key, and two processes ask for one key at about the same moment whenever their walks cross. "+
		"**All keys served** is the fleet's wall time, from the first worker's release until the last worker had its last key; **keys served/s** is the calls that returned a value (%s keys × %d processes when none failed) divided by it, so a ratio of keys/s is the inverse ratio of wall times. The ideal: 1.00 computations per key, and the throughput of none, which computes in every process that misses. "+
		"Peak PG conns counts the workers' PostgreSQL sessions in `pg_stat_activity`, not the harness's sampler (see Method). "+
		"'Out of shared memory' counts the errors with SQLSTATE 53200 that calls returned, and the distinct pgflight warnings that carried one: pgflight computes without the lock when pglock fails, and logs at most one warning of a kind per 10 s, so that count is a floor (any 53200 in pglock also shows as fail-opens).",
		o.procs, c.goroutines, rate(float64(c.keys)), c.compute, rate(float64(c.keys)), o.procs)
}

// summary is one run's numbers on one line, for the progress log.
func summary(scenario string, m metrics) string {
	var parts []string
	for _, c := range specs()[scenario].cols {
		if v, ok := m[c.key]; ok {
			parts = append(parts, c.head+"="+c.format(v))
		}
	}
	return strings.Join(parts, " ")
}
