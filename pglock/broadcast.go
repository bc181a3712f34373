package pglock

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// MaxBroadcast is the largest message [Locker.Broadcast] sends: what fits
// in a NOTIFY payload (under 8,000 bytes) with its topic, once encoded.
const MaxBroadcast = 5632

// A subscription is one subscriber of one topic.
type subscription struct {
	topic   string
	receive func(msg []byte)
	gap     func()
}

// Broadcast sends msg to every subscriber of topic in every process whose
// Locker shares the database, in the session's next round trip (with the
// lock operations pending then), and returns once PostgreSQL has taken it.
// Delivery is at most once: a subscriber whose session is lost misses what
// is sent meanwhile, and is told so (see Subscribe). Topics are 1 to 128
// bytes of printable ASCII without space or quote; msg is at most
// MaxBroadcast bytes.
//
// In transaction mode ([WithTransactionMode]) there is no lock session:
// Broadcast and Subscribe return an error wrapping errors.ErrUnsupported.
func (l *Locker) Broadcast(ctx context.Context, topic string, msg []byte) error {
	if l.s == nil {
		return fmt.Errorf("pglock: broadcast: transaction mode has no lock session: %w", errors.ErrUnsupported)
	}
	if err := checkTopic(topic); err != nil {
		return err
	}
	if len(msg) > MaxBroadcast {
		return fmt.Errorf("pglock: broadcast: message of %d bytes, at most %d", len(msg), MaxBroadcast)
	}
	r := &request{notify: topic + " " + base64.StdEncoding.EncodeToString(msg), done: make(chan struct{})}
	s := l.s
	s.mu.Lock()
	err := s.enqueue(r)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		s.mu.Lock()
		r.gone = true
		s.mu.Unlock()
		return ctx.Err()
	}
}

// Subscribe calls receive with every message broadcast on topic by any
// process sharing the database, this one included, until stop is called.
// receive runs in the lock session's goroutine and must return quickly.
//
// While a Locker has subscribers its lock session stays connected,
// reconnecting after a loss, and LISTENs on the broadcast channel. gap is
// called (from a goroutine of its own) once the subscription is live: the
// LISTEN has taken effect, and no message sent after it is missed until the
// next gap. It is called again after every loss of the session, and when
// the new session listens again.
func (l *Locker) Subscribe(topic string, receive func(msg []byte), gap func()) (stop func(), err error) {
	if l.s == nil {
		return nil, fmt.Errorf("pglock: subscribe: transaction mode has no lock session: %w", errors.ErrUnsupported)
	}
	if err := checkTopic(topic); err != nil {
		return nil, err
	}
	s := l.s
	sn := &subscription{topic: topic, receive: receive, gap: gap}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errClosed
	}
	if s.subs == nil {
		s.subs = make(map[string][]*subscription)
	}
	s.subs[topic] = append(s.subs[topic], sn)
	if s.subscribed {
		go gap() // live already: from now on, nothing is missed
	} else {
		s.kick()
	}
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		list := s.subs[topic]
		for i, x := range list {
			if x == sn {
				s.subs[topic] = append(list[:i:i], list[i+1:]...)
				break
			}
		}
		if len(s.subs[topic]) == 0 {
			delete(s.subs, topic)
		}
	}, nil
}

// checkTopic refuses a topic that could not travel in a payload.
func checkTopic(topic string) error {
	if len(topic) == 0 || len(topic) > 128 {
		return fmt.Errorf("pglock: broadcast topic of %d bytes, want 1 to 128", len(topic))
	}
	for i := 0; i < len(topic); i++ {
		if c := topic[i]; c <= ' ' || c > '~' || c == '\'' || c == '\\' {
			return fmt.Errorf("pglock: broadcast topic %q: byte %#x at %d is not printable ASCII other than space, quote and backslash", topic, c, i)
		}
	}
	return nil
}

// deliver hands a broadcast's payload to the subscribers of its topic. It
// runs in the loop's goroutine, without mu held during the calls.
func (s *session) deliver(payload string) {
	topic, enc, ok := strings.Cut(payload, " ")
	if !ok {
		return
	}
	msg, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return
	}
	s.mu.Lock()
	s.stats.Broadcasts++
	subs := s.subs[topic]
	s.mu.Unlock()
	for _, sn := range subs {
		sn.receive(msg)
	}
}

// gapLater tells every subscriber of a gap, from a goroutine of its own.
// Called with mu held.
func (s *session) gapLater() {
	var subs []*subscription
	for _, list := range s.subs {
		subs = append(subs, list...)
	}
	s.stats.Gaps++
	if s.gapping == 0 {
		s.gapsDone = make(chan struct{})
	}
	s.gapping++
	go func() {
		for _, sn := range subs {
			sn.gap()
		}
		s.mu.Lock()
		if s.gapping--; s.gapping == 0 {
			close(s.gapsDone)
		}
		s.mu.Unlock()
	}()
}

// Sync returns once every broadcast committed before it was called (by
// any process, through [Locker.Broadcast], [InvalidateTags] or [Clear])
// has been handed to this Locker's subscribers, and every gap noticed by
// then has been delivered: the pgflight Syncer contract, for
// pgflight.WithConsistentRead. It costs one round trip on the lock
// session, shared with the lock operations and other Syncs pending then.
//
// It rests on PostgreSQL sending a listening session the notifications
// committed before a statement ends ahead of that statement's answer;
// the server signals listeners as part of every COMMIT. In transaction
// mode there is no session: Sync returns an error wrapping
// errors.ErrUnsupported.
func (l *Locker) Sync(ctx context.Context) error {
	if l.s == nil {
		return fmt.Errorf("pglock: sync: transaction mode has no lock session: %w", errors.ErrUnsupported)
	}
	s := l.s
	if _, err := s.query(ctx, "select 1"); err != nil {
		return fmt.Errorf("pglock: sync: %w", err)
	}
	s.mu.Lock()
	pending, done := s.gapping > 0, s.gapsDone
	s.mu.Unlock()
	if pending {
		select {
		case <-done:
		case <-ctx.Done():
			return fmt.Errorf("pglock: sync: %w", ctx.Err())
		}
	}
	return nil
}
