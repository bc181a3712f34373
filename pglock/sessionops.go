package pglock

import "context"

// The Locker's operations over its lock session. Each follower registers
// before it tries, so a release between its try and its wait still wakes
// it.

func (s *session) lock(ctx context.Context, id int64) (func(context.Context) error, error) {
	for {
		w := s.follow(id)
		unlock, err := s.tryLock(ctx, id)
		if err != nil || unlock != nil {
			s.unfollow(id, w)
			return unlock, err
		}
		if err := s.await(ctx, id, w); err != nil {
			return nil, err
		}
	}
}

func (s *session) lockOrFollow(ctx context.Context, id int64) (func(context.Context) error, error) {
	w := s.follow(id)
	unlock, err := s.tryLock(ctx, id)
	if err != nil || unlock != nil {
		s.unfollow(id, w)
		return unlock, err
	}
	return nil, s.await(ctx, id, w)
}

func (s *session) tryLock(ctx context.Context, id int64) (func(context.Context) error, error) {
	ids := []int64{id}
	took, gen, err := s.try(ctx, ids)
	if err != nil || !took[0] {
		return nil, err
	}
	return s.unlocker(ids, gen), nil
}

// tryLockMany tries the ids of try, the first ids of ids, in one round trip.
func (s *session) tryLockMany(ctx context.Context, ids, try []int64) ([]bool, func(context.Context) error, error) {
	took, gen, err := s.try(ctx, try)
	if err != nil {
		return nil, nil, err
	}
	held := make([]bool, len(ids))
	var got []int64
	for i, t := range took {
		if t {
			held[i] = true
			got = append(got, try[i])
		}
	}
	if len(got) == 0 {
		return held, nil, nil
	}
	return held, s.unlocker(got, gen), nil
}

// waitMany waits until no other session holds any of ids: each is released
// (notified, or held by a caller of this process that unlocks it), or found
// free by a probe, the first of which goes in the next round trip.
func (s *session) waitMany(ctx context.Context, ids []int64) error {
	ws := make([]*waiters, len(ids))
	for i, id := range ids {
		ws[i] = s.follow(id)
	}
	if err := s.probeSoon(); err != nil {
		for i, id := range ids {
			s.unfollow(id, ws[i])
		}
		return err
	}
	for i, id := range ids {
		if err := s.await(ctx, id, ws[i]); err != nil {
			for j := i + 1; j < len(ids); j++ {
				s.unfollow(ids[j], ws[j])
			}
			return err
		}
	}
	return nil
}

// query runs sql, a read-only statement that never waits for a lock, in
// the session's next round trip, and returns its rows.
func (s *session) query(ctx context.Context, sql string) ([][][]byte, error) {
	r := &request{query: sql, done: make(chan struct{})}
	s.mu.Lock()
	err := s.enqueue(r)
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	select {
	case <-r.done:
		return r.rows, r.err
	case <-ctx.Done():
		s.mu.Lock()
		r.gone = true
		s.mu.Unlock()
		return nil, ctx.Err()
	}
}
