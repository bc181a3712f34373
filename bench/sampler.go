package main

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

// sampleSQL counts the sessions whose application_name starts with $1, the
// advisory locks they hold, and the advisory locks they hold or wait for.
const sampleSQL = `select
  (select count(*) from pg_stat_activity where left(application_name, length($1)) = $1),
  count(*) filter (where l.granted),
  count(*)
from pg_locks l join pg_stat_activity a using (pid)
where l.locktype = 'advisory' and left(a.application_name, length($1)) = $1`

// How often a sampler looks. CLIENT LIST is costlier for Redis, which is
// single-threaded and serves the contenders too, than the query is for
// PostgreSQL.
const (
	samplePGEvery    = 10 * time.Millisecond
	sampleRedisEvery = 20 * time.Millisecond
)

// peaks are the largest numbers a sampler saw.
type peaks struct {
	conns        int    // PostgreSQL sessions whose application_name starts with sessions
	locksHeld    int    // advisory locks held by them
	locks        int    // advisory locks held or awaited by them
	redisClients int    // Redis clients named app
	err          string // the first sampling error, if any
}

// A sampler records peaks for one run, from start until stop.
type sampler struct {
	stopc chan struct{}
	wg    sync.WaitGroup
	mu    sync.Mutex
	p     peaks
}

// startSampler samples, on conn and rdb, the PostgreSQL sessions whose
// application_name starts with sessions and the Redis clients named app.
func startSampler(conn *pgx.Conn, rdb *redis.Client, sessions, app string) *sampler {
	s := &sampler{stopc: make(chan struct{})}
	s.wg.Go(func() {
		s.loop(samplePGEvery, func(ctx context.Context) error {
			var n, held, all int
			if err := conn.QueryRow(ctx, sampleSQL, sessions).Scan(&n, &held, &all); err != nil {
				return err
			}
			s.mu.Lock()
			s.p.conns, s.p.locksHeld, s.p.locks = max(s.p.conns, n), max(s.p.locksHeld, held), max(s.p.locks, all)
			s.mu.Unlock()
			return nil
		})
	})
	s.wg.Go(func() {
		s.loop(sampleRedisEvery, func(ctx context.Context) error {
			list, err := rdb.ClientList(ctx).Result()
			if err != nil {
				return err
			}
			n := strings.Count(list, " name="+app+" ")
			s.mu.Lock()
			s.p.redisClients = max(s.p.redisClients, n)
			s.mu.Unlock()
			return nil
		})
	})
	return s
}

// loop calls sample every interval until stop. An error is recorded, and
// sampling goes on.
func (s *sampler) loop(every time.Duration, sample func(context.Context) error) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		// A context of its own: a query interrupted by cancellation would
		// cost the connection, which the next run needs.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := sample(ctx)
		cancel()
		if err != nil {
			s.mu.Lock()
			if s.p.err == "" {
				s.p.err = err.Error()
			}
			s.mu.Unlock()
		}
		select {
		case <-t.C:
		case <-s.stopc:
			return
		}
	}
}

// stop ends the sampling and returns the peaks.
func (s *sampler) stop() peaks {
	close(s.stopc)
	s.wg.Wait()
	return s.p
}
