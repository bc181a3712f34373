package pglock_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgflight/pgflight/internal/testserver"
	"github.com/pgflight/pgflight/pglock"
)

// Fleet shape: each Locker stands for one process, with goroutinesPerLocker
// callers. fleetMaxConns leaves room above the largest fleet for the
// fleet's own query connection and superuser_reserved_connections.
const (
	goroutinesPerLocker = 4
	baselineActive      = 8
	fleetMaxConns       = "300"
)

// The fleet's own queries, on a connection apart from the lock sessions.
const (
	serverVersionSQL = "show server_version"
	// serverPIDsSQL lists the server's processes (not the postmaster),
	// saying which are lock sessions of the fleet.
	serverPIDsSQL = "select pid, application_name like 'pglock_fleet_%' from pg_stat_activity"
)

// BenchmarkFleetSessions measures what one PostgreSQL sustains through 8, 64
// and 256 lock sessions: N Lockers, each on a pool of its own (one session,
// as one process of a fleet has), each driven by 4 goroutines that take an
// uncontended TryLock on a random id and unlock it. It starts a server of
// its own with max_connections = 300.
//
// One op of the benchmark is a cycle, a TryLock and its unlock; b.N cycles
// are split over the N × 4 goroutines (RunParallel), so the run lasts
// -benchtime: use -benchtime 3s for stable figures (-benchtime 1x would time
// a single cycle). The sessions are opened before the timer starts and
// reused by every run of a size. Metrics:
//   - cycles/s; ops/s and ops/roundtrip from Stats (tries and unlocks sent,
//     and the statements that carried them, summed over the fleet);
//   - notifs/s, the release notifications all sessions received during the
//     timed run, and notifs/unlock, counted after waiting for deliveries
//     still in flight: 0 since releases notify only followed ids (the
//     cycles here are uncontended); it was N when every release reached
//     every session, the fan-out that made a larger fleet cost more;
//   - server-cpu-us/cycle and client-cpu-us/cycle, the CPU time of the
//     server's processes (from /proc; 0 if unreadable) and of this process
//     per cycle, since both share the machine here, while a fleet spreads
//     its client side over N machines;
//   - backend-kB, the mean private memory of a lock session's backend
//     (Private_Clean + Private_Dirty of /proc/PID/smaps_rollup).
//
// The baseline beside each larger fleet, sessions=N,active=8, drives only 8
// of its Lockers (the load of the smallest fleet) while all N listen: it
// tells the cost of the fan-out from that of N busy sessions.
//
// Benchmarks run only with -bench:
//
//	go test -run '^$' -bench BenchmarkFleetSessions -benchtime 3s ./pglock
func BenchmarkFleetSessions(b *testing.B) {
	pg, err := testserver.StartPostgres(testserver.PostgresOptions{
		Settings: map[string]string{"max_connections": fleetMaxConns},
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := pg.Close(); err != nil {
			b.Error(err)
		}
	})
	ctx := context.Background()
	admin, err := pgxpool.New(ctx, pg.URL())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(admin.Close)
	var version string
	if err := admin.QueryRow(ctx, serverVersionSQL).Scan(&version); err != nil {
		b.Fatal(err)
	}
	b.Logf("PostgreSQL %s, GOMAXPROCS %d", version, runtime.GOMAXPROCS(0))

	for _, n := range []int{8, 64, 256} {
		f := openFleet(b, pg.URL(), n)
		f.admin = admin
		b.Run(fmt.Sprintf("sessions=%d", n), f.run(n))
		if n > baselineActive {
			b.Run(fmt.Sprintf("sessions=%d,active=%d", n, baselineActive), f.run(baselineActive))
		}
		// Every Locker with a subscriber, as under pgflight Groups (their
		// tags and transactional invalidations): every session LISTENs.
		var stops []func()
		for _, l := range f.lockers {
			stop, err := l.Subscribe("fleet", func([]byte) {}, func() {})
			if err != nil {
				b.Fatal(err)
			}
			stops = append(stops, stop)
		}
		b.Run(fmt.Sprintf("sessions=%d,subscribed", n), f.run(n))
		for _, stop := range stops {
			stop()
		}
		f.close(b)
	}
}

// A fleet is N Lockers on one server, each with a pool of its own.
type fleet struct {
	admin   *pgxpool.Pool // the fleet's own queries
	pools   []*pgxpool.Pool
	lockers []*pglock.Locker
}

// openFleet opens n Lockers on url and their sessions, with one lock and
// unlock each, 8 at a time.
func openFleet(b *testing.B, url string, n int) *fleet {
	b.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		b.Fatal(err)
	}
	cfg.MaxConns = 1 // never opened: a Locker's session is a connection of its own
	f := &fleet{}
	for i := range n {
		c := cfg.Copy()
		c.ConnConfig.RuntimeParams["application_name"] = fmt.Sprintf("pglock_fleet_%d", i)
		pool, err := pgxpool.NewWithConfig(context.Background(), c)
		if err != nil {
			f.close(b)
			b.Fatal(err)
		}
		f.pools = append(f.pools, pool)
		f.lockers = append(f.lockers, pglock.New(pool))
	}
	var (
		wg   sync.WaitGroup
		errs = make(chan error, n)
		sem  = make(chan struct{}, 8)
	)
	for _, l := range f.lockers {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			errs <- cycle(context.Background(), l)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			f.close(b)
			b.Fatalf("open session: %v", err)
		}
	}
	return f
}

// cycle takes an uncontended lock on a random id and releases it.
func cycle(ctx context.Context, l *pglock.Locker) error {
	unlock, err := l.TryLock(ctx, rand.Int64())
	if err != nil {
		return err
	}
	if unlock == nil {
		return fmt.Errorf("TryLock on a random id: not taken")
	}
	return unlock(ctx)
}

// run returns the sub-benchmark that drives the first active Lockers of
// the fleet; the others only receive notifications.
func (f *fleet) run(active int) func(*testing.B) {
	return func(b *testing.B) { f.bench(b, f.lockers[:active]) }
}

func (f *fleet) bench(b *testing.B, lockers []*pglock.Locker) {
	ctx := context.Background()
	pids, sessions := f.serverPIDs(b)
	n := len(lockers)
	before, serverBefore, clientBefore := f.stats(), cpuOf(pids), selfCPU()
	var next atomic.Int64 // goroutine i drives Locker i mod n
	b.SetParallelism((n*goroutinesPerLocker + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		l := lockers[int(next.Add(1)-1)%n]
		for pb.Next() {
			if err := cycle(ctx, l); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	secs := b.Elapsed().Seconds()
	during := f.stats()
	after := f.drain(during)
	server, client := cpuOf(pids)-serverBefore, selfCPU()-clientBefore

	cycles := float64(b.N)
	ops := during.Ops - before.Ops
	b.ReportMetric(cycles/secs, "cycles/s")
	b.ReportMetric(float64(ops)/secs, "ops/s")
	if trips := during.RoundTrips - before.RoundTrips; trips > 0 {
		b.ReportMetric(float64(ops)/float64(trips), "ops/roundtrip")
	}
	b.ReportMetric(float64(during.Notifications-before.Notifications)/secs, "notifs/s")
	b.ReportMetric(float64(after.Notifications-before.Notifications)/cycles, "notifs/unlock")
	b.ReportMetric(float64(server.Microseconds())/cycles, "server-cpu-us/cycle")
	b.ReportMetric(float64(client.Microseconds())/cycles, "client-cpu-us/cycle")
	b.ReportMetric(meanPrivateKB(sessions), "backend-kB")
}

// drain waits, for at most 10 seconds, until the fleet has received every
// notification still in flight: until the count stops growing for 200 ms.
// It returns the fleet's stats then.
func (f *fleet) drain(last pglock.Stats) pglock.Stats {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		st := f.stats()
		if st.Notifications == last.Notifications {
			return st
		}
		last = st
	}
	return last
}

// stats sums the counters of the fleet's Lockers.
func (f *fleet) stats() pglock.Stats {
	var sum pglock.Stats
	for _, l := range f.lockers {
		st := l.Stats()
		sum.Ops += st.Ops
		sum.RoundTrips += st.RoundTrips
		sum.Notifications += st.Notifications
	}
	return sum
}

// serverPIDs returns the pids of the server's processes, and those of its
// lock sessions.
func (f *fleet) serverPIDs(b *testing.B) (all, sessions []int) {
	b.Helper()
	rows, err := f.admin.Query(context.Background(), serverPIDsSQL)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			pid     int
			session bool
		)
		if err := rows.Scan(&pid, &session); err != nil {
			b.Fatal(err)
		}
		all = append(all, pid)
		if session {
			sessions = append(sessions, pid)
		}
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	return all, sessions
}

// close closes every Locker, ending its session, then its pool.
func (f *fleet) close(b *testing.B) {
	b.Helper()
	for _, l := range f.lockers {
		if err := l.Close(); err != nil {
			b.Error(err)
		}
	}
	for _, p := range f.pools {
		p.Close()
	}
}

// userHZ is the unit of the CPU times in /proc/PID/stat on Linux.
const userHZ = 100

// cpuOf returns the CPU time, user and system, that the processes pids
// have used, from /proc. A process it cannot read counts as 0.
func cpuOf(pids []int) time.Duration {
	var ticks int64
	for _, pid := range pids {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			continue
		}
		// "pid (comm) state ppid …": utime and stime are the 12th and 13th
		// fields after comm.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := bytes.Fields(b[i+1:])
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseInt(string(f[11]), 10, 64)
		s, _ := strconv.ParseInt(string(f[12]), 10, 64)
		ticks += u + s
	}
	return time.Duration(ticks) * time.Second / userHZ
}

// selfCPU returns the CPU time, user and system, this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// meanPrivateKB returns the mean private memory of the processes pids,
// Private_Clean + Private_Dirty of /proc/PID/smaps_rollup, in kB; 0 if none
// can be read.
func meanPrivateKB(pids []int) float64 {
	var sum, n int64
	for _, pid := range pids {
		fh, err := os.Open("/proc/" + strconv.Itoa(pid) + "/smaps_rollup")
		if err != nil {
			continue
		}
		var kb int64
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			f := bytes.Fields(sc.Bytes())
			if len(f) >= 2 && (string(f[0]) == "Private_Clean:" || string(f[0]) == "Private_Dirty:") {
				v, _ := strconv.ParseInt(string(f[1]), 10, 64)
				kb += v
			}
		}
		fh.Close()
		sum += kb
		n++
	}
	if n == 0 {
		return 0
	}
	return float64(sum) / float64(n)
}
