package main

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/pgflight/pgflight"
)

// The environment of a worker process. The job travels in the environment
// rather than on the command line, where any user of the machine could read
// a password of the connection strings in the process list.
const (
	workerEnv = "PGFLIGHT_BENCH_WORKER" // "1": run as a worker
	jobEnv    = "PGFLIGHT_BENCH_JOB"    // the job, as JSON
)

// The workloads a worker can run.
const (
	workOnce = "once" // every goroutine calls once for one key (stampede, crash)
	workLoop = "loop" // every goroutine calls in a tight loop until Duration ends
	workMany = "many" // every goroutine calls once for a key of its own (manykeys)
	workWalk = "walk" // the goroutines share one walk of every key, each called once (cold start)
)

// A job is what one worker process does.
type job struct {
	Work        string        `json:"work"`      // workOnce, workLoop, workMany or workWalk
	Contender   string        `json:"contender"` // see contenders
	Index       int           `json:"index"`     // of the worker in its fleet
	Prefix      string        `json:"prefix"`    // every Redis key starts with it
	App         string        `json:"app"`       // application_name and Redis client name
	DatabaseURL string        `json:"database_url"`
	RedisURL    string        `json:"redis_url"`
	Goroutines  int           `json:"goroutines"`
	Compute     time.Duration `json:"compute"`               // how long one computation takes
	TTL         time.Duration `json:"ttl"`                   // how long a value stays cached
	Duration    time.Duration `json:"duration"`              // of a loop
	Keys        int           `json:"keys"`                  // loop: keys to choose from; walk: keys to walk
	Zipf        float64       `json:"zipf"`                  // loop: Zipf exponent s (> 1); 0 for uniform
	Seed        uint64        `json:"seed"`                  // loop, walk: seeds the key choices
	Warm        bool          `json:"warm"`                  // loop: call every key once before ready
	Announce    bool          `json:"announce"`              // say "computing" on stdout at the first computation
	Times       bool          `json:"times"`                 // report when each computation started
	CPUProfile  string        `json:"cpu_profile,omitempty"` // directory for a CPU profile of the run
	PGPool      int           `json:"pg_pool,omitempty"`     // MaxConns of the PostgreSQL pool of the recipe (and of pgflight if PGLockPool is 0); 0: pgxpool's default
	PGLockPool  int           `json:"pglock_pool,omitempty"` // MaxConns of pgflight's pool, which only pglock uses; 0: as PGPool (the default)
	StaleTTL    time.Duration `json:"stale_ttl,omitempty"`   // pgflight-stale and pgflight-xfetch: Config.StaleTTL
	Calls       bool          `json:"calls,omitempty"`       // loop: report when each call started and how long it took
	Pair        []string      `json:"pair,omitempty"`        // loop: run these contenders in one fleet, taking turns
	Slice       time.Duration `json:"slice,omitempty"`       // loop with Pair: how long each turn lasts
}

// A workerReport is what a worker writes on stdout, as one JSON line, when
// its calls have returned.
type workerReport struct {
	PID          int             `json:"pid"`
	Calls        int64           `json:"calls"`
	Errors       int64           `json:"errors"`
	FirstError   string          `json:"first_error,omitempty"`
	OOM          int64           `json:"oom,omitempty"` // errors that were 'out of shared memory' (SQLSTATE 53200)
	Computations int64           `json:"computations"`
	PerKey       []int32         `json:"per_key,omitempty"`      // loop, walk: computations of each key
	Hist         hist            `json:"hist,omitempty"`         // loop, walk: latencies of the calls
	Stats        *pgflight.Stats `json:"stats,omitempty"`        // pgflight: the Group's counters during the measured calls (after warm-up)
	Requested    []bool          `json:"requested,omitempty"`    // loop: keys asked for at least once
	Latencies    []int64         `json:"latencies_ns,omitempty"` // once: of each call, from the release
	Done         []int64         `json:"done_ns,omitempty"`      // once: Unix time each successful call returned
	ComputeTimes []int64         `json:"compute_ns,omitempty"`   // Unix time each computation started
	Elapsed      int64           `json:"elapsed_ns"`             // from the release until the last call returned
	Release      int64           `json:"release_ns"`             // Unix time of the release from the barrier
	CPU          int64           `json:"cpu_ns"`                 // loop: CPU time of the worker process (user and system) during the loop
	FailOpens    uint64          `json:"fail_opens"`             // pgflight: flights computed without the lock
	PeakInUse    int             `json:"peak_in_use"`            // pgflight: peak pglock connections in use
	PoolMax      int             `json:"pool_max"`               // MaxConns of the PostgreSQL pool; 0 without one
	Warnings     []string        `json:"warnings,omitempty"`     // distinct warnings logged by the contender
	Lanes        []workerReport  `json:"lanes,omitempty"`        // loop with Pair: one report per contender
	CallTimes    []int32         `json:"call_us,omitempty"`      // loop with Calls: each call's start (µs after the release) and latency (µs), in pairs
}

// encode returns j as the value of jobEnv.
func (j job) encode() string {
	b, err := json.Marshal(j)
	if err != nil {
		panic(err) // a job holds only plain values
	}
	return string(b)
}

// jobFromEnv returns the job the parent gave this worker.
func jobFromEnv() (job, error) {
	var j job
	if err := json.Unmarshal([]byte(os.Getenv(jobEnv)), &j); err != nil {
		return j, fmt.Errorf("bad %s: %w", jobEnv, err)
	}
	if j.Goroutines < 1 {
		return j, fmt.Errorf("job: %d goroutines", j.Goroutines)
	}
	return j, nil
}
