package main

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// countSQL counts the PostgreSQL sessions of the demo's workers.
const countSQL = "select count(*) from pg_stat_activity where application_name = $1"

// sampleEvery is how often a sampler counts sessions.
const sampleEvery = 2 * time.Millisecond

// A sampler records the peak number of sessions named app.
type sampler struct {
	stopc chan struct{}
	done  chan struct{}
	peak  int
	err   error
}

// startSampler counts the sessions named app on conn every sampleEvery
// until stop. A nil conn samples nothing, and stop then returns -1.
func startSampler(conn *pgx.Conn, app string) *sampler {
	s := &sampler{stopc: make(chan struct{}), done: make(chan struct{}), peak: -1}
	if conn == nil {
		close(s.done)
		return s
	}
	s.peak = 0
	go func() {
		defer close(s.done)
		t := time.NewTicker(sampleEvery)
		defer t.Stop()
		for {
			// A context of its own: a query interrupted by cancellation
			// would cost the connection, which the next mode needs.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			var n int
			err := conn.QueryRow(ctx, countSQL, app).Scan(&n)
			cancel()
			if err != nil {
				s.err = err
				return
			}
			s.peak = max(s.peak, n)
			select {
			case <-t.C:
			case <-s.stopc:
				return
			}
		}
	}()
	return s
}

// stop ends the sampling and returns the peak, or the error that ended it
// early. Calling it again returns the same.
func (s *sampler) stop() (int, error) {
	select {
	case <-s.stopc:
	default:
		close(s.stopc)
	}
	<-s.done
	return s.peak, s.err
}
