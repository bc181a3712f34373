package pglock_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgflight/pgflight/pglock"
)

// inbox is a subscriber that hands what it gets to channels.
type inbox struct {
	msgs chan string
	gaps chan struct{}
}

func newInbox() *inbox { return &inbox{msgs: make(chan string, 100), gaps: make(chan struct{}, 100)} }

func (b *inbox) receive(msg []byte) { b.msgs <- string(msg) }
func (b *inbox) gap()               { b.gaps <- struct{}{} }

// Issue 10.2: a broadcast reaches the subscribers of its topic in every
// Locker (process), the sender's included, and no one else's.
func TestBroadcast(t *testing.T) {
	a, b := newSessionLocker(t), newSessionLocker(t)
	ina, inb, other := newInbox(), newInbox(), newInbox()
	for _, s := range []struct {
		l     *pglock.Locker
		topic string
		in    *inbox
	}{{a, "ns", ina}, {b, "ns", inb}, {b, "other", other}} {
		stop, err := s.l.Subscribe(s.topic, s.in.receive, s.in.gap)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(stop)
		<-s.in.gaps // the LISTEN took effect
	}
	msg := "k\x00\xff binary " + strings.Repeat("x", 100)
	if err := a.Broadcast(context.Background(), "ns", []byte(msg)); err != nil {
		t.Fatal(err)
	}
	for name, in := range map[string]*inbox{"sender": ina, "other process": inb} {
		if got := <-in.msgs; got != msg {
			t.Errorf("%s received %q, want %q", name, got, msg)
		}
	}
	if err := a.Broadcast(context.Background(), "other", []byte("o")); err != nil {
		t.Fatal(err)
	}
	if got := <-other.msgs; got != "o" {
		t.Errorf("topic other received %q, want o", got)
	}
	select {
	case m := <-inb.msgs:
		t.Errorf("topic ns received %q, sent to other", m)
	default:
	}
}

// A lost session tells its subscribers of the gap, reconnects by itself,
// listens again (another gap), and receives what is sent after.
func TestBroadcastGapOnSessionLoss(t *testing.T) {
	a, b := newSessionLocker(t), newSessionLocker(t)
	obs := newObserver(t)
	in := newInbox()
	stop, err := b.Subscribe("ns", in.receive, in.gap)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	<-in.gaps
	id := randomID()
	unlock := mustLock(t, b, id)
	terminate(t, holderPID(t, obs, id))
	<-in.gaps // lost
	<-in.gaps // listening again, on a new connection
	unlock(context.Background())
	if err := a.Broadcast(context.Background(), "ns", []byte("after")); err != nil {
		t.Fatal(err)
	}
	if got := <-in.msgs; got != "after" {
		t.Errorf("received %q, want after", got)
	}
	if st := b.Stats(); st.SessionLosses != 1 || st.Gaps < 3 || st.Broadcasts != 1 {
		t.Errorf("stats %+v: want a loss, three gaps, one broadcast", st)
	}
}

// Bad input is refused before anything is sent; transaction mode has no
// session to broadcast on.
func TestBroadcastRefuses(t *testing.T) {
	l := newSessionLocker(t)
	ctx := context.Background()
	for _, topic := range []string{"", "a b", "it's", strings.Repeat("t", 129), "ä"} {
		if err := l.Broadcast(ctx, topic, nil); err == nil {
			t.Errorf("Broadcast on topic %q = nil, want an error", topic)
		}
	}
	if err := l.Broadcast(ctx, "ns", make([]byte, pglock.MaxBroadcast+1)); err == nil {
		t.Error("Broadcast of MaxBroadcast+1 bytes = nil, want an error")
	}
	if err := l.Broadcast(ctx, "ns", make([]byte, pglock.MaxBroadcast)); err != nil {
		t.Errorf("Broadcast of MaxBroadcast bytes: %v", err)
	}
	tx := pglock.New(newPool(t, 2, pgx.QueryExecModeCacheStatement), pglock.WithTransactionMode())
	t.Cleanup(func() { tx.Close() })
	if err := tx.Broadcast(ctx, "ns", nil); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("transaction mode Broadcast = %v, want ErrUnsupported", err)
	}
	if _, err := tx.Subscribe("ns", func([]byte) {}, func() {}); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("transaction mode Subscribe = %v, want ErrUnsupported", err)
	}
}

// Sync returns only once every broadcast committed before it has reached
// the subscribers: each round, another Locker broadcasts (Broadcast returns
// once PostgreSQL has taken it), then Sync, and the message must be there
// already. Also in transaction mode Sync says it cannot.
func TestSyncDeliversCommittedBroadcasts(t *testing.T) {
	ctx := context.Background()
	l, sender := newSessionLocker(t), newSessionLocker(t)
	var mu sync.Mutex
	got := map[string]bool{}
	live := make(chan struct{}, 10)
	stop, err := l.Subscribe("sync-test", func(msg []byte) {
		mu.Lock()
		got[string(msg)] = true
		mu.Unlock()
	}, func() { live <- struct{}{} })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	<-live
	missed := 0
	for i := range 300 {
		msg := strconv.Itoa(i)
		if err := sender.Broadcast(ctx, "sync-test", []byte(msg)); err != nil {
			t.Fatal(err)
		}
		if err := l.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		if !got[msg] {
			missed++
		}
		mu.Unlock()
	}
	if missed > 0 {
		t.Errorf("%d of 300 broadcasts had not arrived when Sync returned", missed)
	}
	tx := pglock.New(newPool(t, 2, pgx.QueryExecModeSimpleProtocol), pglock.WithTransactionMode())
	t.Cleanup(func() { tx.Close() })
	if err := tx.Sync(ctx); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("Sync in transaction mode = %v, want ErrUnsupported", err)
	}
}
