package main

import (
	"context"

	"github.com/pgflight/pgflight/pglock"
)

// followTwice emulates, from outside the library, the takeover that an
// earlier analysis proposed and that pgflight's fill has done since
// 4df2511: when a follower woke and found nothing (the holder died), it
// tries the lock once more and, if another survivor took it over
// meanwhile, follows that one in shared mode, so that every survivor
// wakes at once, instead of queueing for the exclusive lock and being
// granted it one after the other.
//
// pgflight now calls Locker.Lock only after two such rounds found
// nothing. Lock here returns an unlock that holds nothing after it
// followed, so that pgflight's double check reads the new holder's value;
// were that holder to fail too, the caller would compute without the
// lock. It is a diagnostic contender (pgflight-follow2, run only on
// request) kept to compare with the fix, not a proposal to copy.
type followTwice struct {
	*pglock.Locker
}

func (f followTwice) Lock(ctx context.Context, id int64) (func(context.Context) error, error) {
	unlock, err := f.Locker.LockOrFollow(ctx, id)
	if err != nil || unlock != nil {
		return unlock, err
	}
	return func(context.Context) error { return nil }, nil
}
