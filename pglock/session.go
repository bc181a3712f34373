package pglock

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
)

// The lock session's statements. Each batch is one simple-protocol message
// of up to four parts, in this order: the unlocks with their
// notifications, then COMMIT if anything follows, which ends the message's
// implicit transaction so that the notifications go out even if a later
// statement fails; LISTEN or UNLISTEN; the probe; the tries. Each part is a
// SELECT of one row with a column per call (measured here: 10 to 20%
// cheaper for the server than the same calls over unnest of an array), in
// statements of at most maxCallsPerStatement calls.
const (
	// notifyChannel is the channel every lock session LISTENs on; a
	// release notifies it with the id as payload.
	notifyChannel = "pgflight_lock"
	// A session LISTENs only while followers of its process wait (and for
	// listenLinger after), so that a release is delivered to the processes
	// that wait for something, not to every idle process of the fleet.
	// Each goes with COMMIT, which makes it take effect before the
	// statements after it: a follower's try runs after its LISTEN, so no
	// release after the try can be missed.
	listenSQL   = "listen " + notifyChannel + "; commit"
	unlistenSQL = "unlisten " + notifyChannel + "; commit"

	// broadcastChannel carries broadcasts ([Locker.Broadcast]), payload
	// "topic base64(message)"; a session LISTENs on it for as long as it
	// has subscribers.
	broadcastChannel = "pgflight_broadcast"
	subscribeSQL     = "listen " + broadcastChannel + "; commit"

	// The calls a batch makes, each id as an integer literal (see
	// appendCalls). probeFn asks whether no session holds an id
	// exclusively; it is transaction-scoped, so the statement holds
	// nothing once its implicit transaction ends, at the end of the batch.
	tryFn    = "pg_try_advisory_lock("
	unlockFn = "pg_advisory_unlock("
	probeFn  = "pg_try_advisory_xact_lock_shared("
	notifyFn = "pg_notify('" + notifyChannel + "', '"
	// markFn takes a follow marker: a session-level shared lock on the id
	// in PostgreSQL's other advisory key space, the pair of int4 halves,
	// which no lock of pgflight's takes. A session takes one for each id
	// its callers await, and releases it (unmarkFn) once they wake. A
	// release notifies only if another session holds the marker (its
	// statement tries the marker exclusively, which fails while anyone
	// holds it shared, and releases it at once), so an uncontended release wakes
	// no session in the fleet: every LISTENing backend is signalled by
	// every NOTIFY in the database, whatever its channel.
	markFn   = "pg_try_advisory_lock_shared("
	unmarkFn = "pg_advisory_unlock_shared("
	// maxCallsPerStatement keeps a statement's columns (two per unlock)
	// under PostgreSQL's 1,664.
	maxCallsPerStatement = 800
	probeChunk           = 256
	backendSQL           = "select pg_backend_pid()"
)

// Session defaults.
const (
	// defaultMaxLocks caps the locks one Locker holds at once.
	defaultMaxLocks = 256
	// defaultProbeInterval is how often a session checks the ids its
	// followers await, to notice a holder that died without notifying.
	// The bench module's crash scenario (a survivor must serve within 120
	// ms of the kill, computing for 100 ms) bounds it: at 5 ms the median
	// was 116 ms on a loaded machine (BENCHMARKS.md).
	defaultProbeInterval = 5 * time.Millisecond
	// listenLinger is how long a session keeps listening after its last
	// follower stopped waiting, so that a busy process does not LISTEN
	// and UNLISTEN around every wait.
	listenLinger = time.Second
	// Reconnection backoff after a failed connection attempt.
	minBackoff = 10 * time.Millisecond
	maxBackoff = 2 * time.Second
	// connectTimeout bounds one connection attempt and its setup.
	connectTimeout = 10 * time.Second
	// batchTimeout bounds one round trip. Nothing in a batch waits for a
	// lock, so only a stalled server or network reaches it; the
	// connection is then closed, and the session lost and reopened.
	batchTimeout = 5 * time.Second
)

// ErrSessionLost is wrapped by the error an unlock func returns when the
// lock session ended (the connection died, or the server ended it) while
// the lock was held: PostgreSQL released the lock then, and another process
// may have taken it meanwhile.
var ErrSessionLost = errors.New("pglock: lock session lost")

// errClosed is returned by calls on a closed Locker.
var errClosed = errors.New("pglock: locker closed")

// A request is one caller's operation on the lock session: tries or
// unlocks. The loop answers it by setting took and err and closing done.
type request struct {
	unlock bool    // unlock ids; otherwise try them
	ids    []int64 //
	gen    uint64  // the session generation the locks were taken in
	took   []bool  // try: the answer per id
	err    error
	done   chan struct{}
	gone   bool   // the caller stopped waiting; guarded by session.mu
	retry  bool   // tried again once already after the connection died
	owner  bool   // an internal unlock: no caller waits for it
	notify string // a broadcast: the payload to send on broadcastChannel
	// query is a read-only statement that never waits for a lock (the tag
	// versions' SELECT), sent last in the round trip so that its failure
	// costs nothing else; rows are its answer.
	query string
	rows  [][][]byte
}

// waiters are the followers of one id in this process. ch is closed to wake
// them all.
type waiters struct {
	ch chan struct{}
	n  int
}

// A session is a Locker's one PostgreSQL connection. One goroutine, loop,
// owns the connection: it sends the pending requests together in one round
// trip, and while it has nothing to send it waits for notifications. Every
// other field is guarded by mu.
type session struct {
	cfg        *pgconn.Config
	setup      string // run on each new connection: settings and LISTEN
	probeEvery time.Duration
	slots      chan struct{} // one token per lock held or being tried

	mu        sync.Mutex
	conn      *pgconn.PgConn // nil while disconnected
	gen       uint64         // incremented each time a connection is lost
	running   bool           // loop runs
	closed    bool
	pending   []*request
	idleConn  *pgconn.PgConn // the connection the loop waits on for notifications, if it does
	wakeLoop  chan struct{}  // wakes the loop from a wait without a socket (cap 1)
	listening bool           // LISTEN is in effect on conn
	lastWait  time.Time      // when followers last waited
	held      map[int64]bool // ids held, or being tried, for a caller of this process
	waits     map[int64]*waiters
	// marked holds the ids whose follow marker this session holds (or is
	// taking); toMark and toUnmark those whose marker the next round trip
	// takes or releases (see markFn).
	marked           map[int64]bool
	toMark, toUnmark map[int64]struct{}
	awaiting         int       // callers waiting for a release now
	probeNow         bool      // probe at the next batch, not at nextProbe
	nextProbe        time.Time // when the awaited ids are next probed
	retryAt          time.Time // requests fail fast until then: a connection attempt for them failed
	// subRetryAt is when the loop next tries to reconnect for subscribers
	// alone.
	subRetryAt time.Time
	backoff    time.Duration
	lastErr    error // why the last connection attempt failed
	// subs are the subscribers of broadcasts, by topic; while there are
	// any the session keeps its connection and LISTENs on
	// broadcastChannel (subscribed says it does).
	subs       map[string][]*subscription
	subscribed bool
	// gapping counts gap deliveries under way (gapLater); gapsDone is
	// closed when the count falls back to 0, for Sync.
	gapping  int
	gapsDone chan struct{}
	stats    Stats
	done     chan struct{} // closed when the running loop returns
}

func newSession(cfg *pgconn.Config, setup string, probeEvery time.Duration, maxLocks int) *session {
	s := &session{
		setup:      setup,
		probeEvery: probeEvery,
		slots:      make(chan struct{}, maxLocks),
		held:       make(map[int64]bool),
		waits:      make(map[int64]*waiters),
		marked:     make(map[int64]bool),
		toMark:     make(map[int64]struct{}),
		toUnmark:   make(map[int64]struct{}),
		wakeLoop:   make(chan struct{}, 1),
	}
	cfg.OnNotification = s.onNotification
	cfg.OnNotice = nil // pg_advisory_unlock warns when it finds nothing to release
	// A wait for notifications ends when a request arrives, by a deadline
	// on the socket, which leaves the connection usable; a cancel request
	// (which the pool's config may ask for) would cost a connection to the
	// server and could hit the next statement.
	cfg.BuildContextWatcherHandler = func(pc *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.DeadlineContextWatcherHandler{Conn: pc.Conn()}
	}
	s.cfg = cfg
	return s
}

// enqueue hands r to the loop, starting it if needed. It fails r at once
// while the session is closed or waiting out a reconnection backoff.
func (s *session) enqueue(r *request) error {
	if s.closed {
		return errClosed
	}
	if s.conn == nil && time.Now().Before(s.retryAt) {
		return fmt.Errorf("pglock: lock session unavailable, reconnecting: %w", s.lastErr)
	}
	s.pending = append(s.pending, r)
	s.kick()
	return nil
}

// kick makes the loop look at its state again: it starts the loop, or ends
// its wait for notifications. Called with mu held.
func (s *session) kick() {
	if !s.running {
		s.running = true
		s.done = make(chan struct{})
		go s.loop()
		return
	}
	if s.idleConn != nil {
		// End the wait for notifications with a read deadline in the
		// past: the read returns a timeout, which leaves the connection
		// usable. Deadlines are set only under mu, and only while the loop
		// waits, so no statement's read is ever cut.
		_ = s.idleConn.Conn().SetReadDeadline(time.Unix(1, 0))
		s.idleConn = nil
		return
	}
	select {
	case s.wakeLoop <- struct{}{}:
	default:
	}
}

// try tries the locks on ids in one round trip. An id this session already
// holds for another caller of this process, or is trying, is answered "not
// taken" without asking the server, which would grant it to the same
// session again. Each id tried takes a slot of the lock budget
// ([WithMaxLocks]): try waits under ctx for the first, and answers "not
// taken" for ids past the slots then free, so that two batches cannot each
// hold half the slots and wait for the rest. It returns the answers, in the
// order of ids, and the generation they belong to.
func (s *session) try(ctx context.Context, ids []int64) ([]bool, uint64, error) {
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, 0, fmt.Errorf("pglock: wait for one of the %d lock slots: %w", cap(s.slots), ctx.Err())
	}
	n := 1
	for n < len(ids) {
		select {
		case s.slots <- struct{}{}:
			n++
			continue
		default:
		}
		break
	}
	all := ids
	ids = ids[:n]
	r := &request{done: make(chan struct{})}
	s.mu.Lock()
	for _, id := range ids {
		// An id held for another caller of this process, or being tried,
		// is answered "not taken" here: PostgreSQL would grant it to the
		// same session again.
		if !s.held[id] {
			s.held[id] = true
			r.ids = append(r.ids, id)
		}
	}
	if len(r.ids) == 0 {
		s.mu.Unlock()
		s.freeSlots(len(ids))
		return make([]bool, len(all)), 0, nil
	}
	r.took = make([]bool, len(r.ids))
	tried := r.ids
	if err := s.enqueue(r); err != nil {
		for _, id := range tried {
			delete(s.held, id)
		}
		s.mu.Unlock()
		s.freeSlots(len(ids))
		return nil, 0, err
	}
	s.mu.Unlock()
	s.freeSlots(len(ids) - len(tried)) // answered locally

	select {
	case <-r.done:
	case <-ctx.Done():
		s.mu.Lock()
		select {
		case <-r.done:
		default:
			r.gone = true // the loop releases what it takes
			s.mu.Unlock()
			return nil, 0, fmt.Errorf("pglock: lock: %w", ctx.Err())
		}
		s.mu.Unlock()
	}
	if r.err != nil {
		return nil, 0, r.err
	}
	// Map the answers back to the caller's order.
	took := make([]bool, len(all))
	j := 0
	for i, id := range ids {
		if j < len(r.ids) && r.ids[j] == id {
			took[i] = r.took[j]
			j++
		}
	}
	return took, r.gen, nil
}

// freeSlots gives n slots of the lock budget back.
func (s *session) freeSlots(n int) {
	for range n {
		<-s.slots
	}
}

// unlocker returns the unlock func for ids, taken in generation gen. The
// func keeps s reachable, and with it the connection, until it runs.
func (s *session) unlocker(ids []int64, gen uint64) func(context.Context) error {
	var once sync.Once
	return func(ctx context.Context) error {
		err := errUnlocked
		once.Do(func() { err = s.unlock(ctx, ids, gen) })
		return err
	}
}

// unlock releases ids, notifying their followers everywhere. Followers in
// this process are woken at once. The unlock is sent whatever ctx does: ctx
// bounds only the wait for its answer.
func (s *session) unlock(ctx context.Context, ids []int64, gen uint64) error {
	defer s.freeSlots(len(ids))
	r := &request{unlock: true, ids: ids, gen: gen, done: make(chan struct{})}
	s.mu.Lock()
	if gen != s.gen {
		s.stats.LocksLost += uint64(len(ids))
		s.mu.Unlock()
		return fmt.Errorf("pglock: unlock: %w: the lock was released when its connection ended", ErrSessionLost)
	}
	for _, id := range ids {
		delete(s.held, id)
		s.wake(id)
	}
	if err := s.enqueue(r); err != nil {
		s.mu.Unlock()
		return fmt.Errorf("pglock: unlock: %w", err)
	}
	s.mu.Unlock()
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return fmt.Errorf("pglock: unlock sent, its answer not awaited: %w", ctx.Err())
	}
}

// follow registers the caller as a follower of id, before it tries the
// lock, so that no wake-up is lost between the try and the wait.
func (s *session) follow(id int64) *waiters {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.waits[id]
	if w == nil {
		w = &waiters{ch: make(chan struct{})}
		s.waits[id] = w
		if !s.marked[id] {
			s.toMark[id] = struct{}{}
			if s.running {
				s.kick()
			}
		}
		if s.nextProbe.IsZero() {
			s.nextProbe = time.Now().Add(s.probeEvery)
			if s.running {
				s.kick() // the loop must LISTEN, and end its waits in time to probe
			}
		}
	}
	w.n++
	return w
}

// unfollow undoes follow for a caller that stopped waiting.
func (s *session) unfollow(id int64, w *waiters) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.waits[id] == w {
		if w.n--; w.n == 0 {
			delete(s.waits, id)
			s.unmarkLater(id)
		}
	}
}

// wake wakes the followers of id. Called with mu held.
func (s *session) wake(id int64) bool {
	w := s.waits[id]
	if w == nil {
		return false
	}
	close(w.ch)
	delete(s.waits, id)
	s.unmarkLater(id)
	return true
}

// unmarkLater releases id's follow marker, if any, in the next round trip.
// Called with mu held.
func (s *session) unmarkLater(id int64) {
	if s.marked[id] {
		s.toUnmark[id] = struct{}{}
	}
}

// wakeAll wakes every follower, after the connection was lost: they
// re-check the cache, and try again through a new connection. Called with
// mu held.
func (s *session) wakeAll() {
	for id := range s.waits {
		s.wake(id)
	}
}

// await waits for w's wake-up or ctx.
func (s *session) await(ctx context.Context, id int64, w *waiters) error {
	s.mu.Lock()
	s.awaiting++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.awaiting--
		s.mu.Unlock()
	}()
	select {
	case <-w.ch:
		return nil
	case <-ctx.Done():
		s.unfollow(id, w)
		return fmt.Errorf("pglock: follow: %w", ctx.Err())
	}
}

// probeSoon makes the next round trip probe the awaited ids, for a caller
// that awaits ids it has not tried.
func (s *session) probeSoon() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	if s.conn == nil && time.Now().Before(s.retryAt) {
		return fmt.Errorf("pglock: lock session unavailable, reconnecting: %w", s.lastErr)
	}
	s.probeNow = true
	s.kick()
	return nil
}

// onNotification runs in the loop's goroutine, inside a statement or a wait
// for notifications, when a release arrives.
func (s *session) onNotification(_ *pgconn.PgConn, n *pgconn.Notification) {
	if n.Channel == broadcastChannel {
		s.deliver(n.Payload)
		return
	}
	if n.Channel != notifyChannel {
		return
	}
	id, err := strconv.ParseInt(n.Payload, 10, 64)
	if err != nil {
		return
	}
	s.mu.Lock()
	s.stats.Notifications++
	s.wake(id)
	s.mu.Unlock()
}

// close ends the session: the loop closes the connection, which releases
// every lock the session holds, and returns.
func (s *session) close() {
	s.mu.Lock()
	s.closed = true
	running, done := s.running, s.done
	if running {
		s.kick()
	}
	s.mu.Unlock()
	if running {
		<-done
	}
}

// A batch is what the loop sends in one round trip.
type batch struct {
	reqs             []*request
	probes           []int64
	marks, unmarks   []int64 // follow markers to take and to release (see markFn)
	listen, unlisten bool
	subscribe        bool // LISTEN on broadcastChannel
}

// loop owns the connection. It returns when the session is closed, or when
// it is disconnected with nothing to do; kick starts it again.
func (s *session) loop() {
	defer close(s.done)
	for {
		s.mu.Lock()
		if s.closed {
			conn := s.conn
			s.conn = nil
			s.failPending(errClosed)
			s.running = false
			s.mu.Unlock()
			if conn != nil {
				closeConn(conn)
			}
			return
		}
		if s.conn == nil {
			if len(s.pending) == 0 && len(s.subs) == 0 {
				s.running = false
				s.mu.Unlock()
				return
			}
			if wait := time.Until(s.subRetryAt); wait > 0 && len(s.pending) == 0 {
				// Subscribers keep the session: reconnect after the
				// backoff, or at once when a request comes (or the
				// session closes).
				s.mu.Unlock()
				t := time.NewTimer(wait)
				select {
				case <-s.wakeLoop:
				case <-t.C:
				}
				t.Stop()
				continue
			}
			forRequests := len(s.pending) > 0
			s.mu.Unlock()
			conn, err := s.connect()
			s.mu.Lock()
			if err != nil {
				s.lastErr = err
				s.backoff = min(maxBackoff, max(minBackoff, 2*s.backoff))
				next := time.Now().Add(s.backoff/2 + rand.N(s.backoff/2+1))
				s.subRetryAt = next
				if !forRequests {
					// An attempt for subscribers alone fails no request,
					// nor makes requests fail fast: requests that came
					// during it get an attempt of their own at once (a
					// server back from a restart serves them).
					s.mu.Unlock()
					continue
				}
				s.retryAt = next // requests fail fast until then
				s.failPending(fmt.Errorf("pglock: lock session: %w", err))
				s.wakeAll()
				if len(s.subs) > 0 {
					s.mu.Unlock()
					continue // wait out the backoff, above
				}
				s.running = false
				s.mu.Unlock()
				return
			}
			s.conn, s.backoff, s.listening = conn, 0, false
			s.stats.Connects++
			s.mu.Unlock()
			continue
		}
		conn := s.conn
		b := s.takeBatch()
		if b.empty() {
			s.waitIdle(conn)
			continue
		}
		s.mu.Unlock()
		s.send(conn, b)
	}
}

// takeBatch takes the pending requests, and the awaited ids if a probe is
// due, and says whether to start or stop listening. Called with mu held.
func (s *session) takeBatch() batch {
	b := batch{reqs: s.pending, subscribe: len(s.subs) > 0 && !s.subscribed}
	s.pending = nil
	s.takeMarks(&b)
	now := time.Now()
	if len(s.waits) == 0 {
		s.nextProbe, s.probeNow = time.Time{}, false
		b.unlisten = s.listening && now.Sub(s.lastWait) >= listenLinger
		return b
	}
	s.lastWait = now
	b.listen = !s.listening
	// A probe due within half an interval rides along with requests that go
	// anyway, saving a round trip of its own.
	due := s.nextProbe
	if len(b.reqs) > 0 {
		due = due.Add(-s.probeEvery / 2)
	}
	if !s.probeNow && now.Before(due) {
		return b
	}
	// The probe's shared locks count against the lock budget like held
	// ones, for the length of its statement: it probes as many awaited
	// ids as there are free slots (at most probeChunk), in the map's
	// random order, so every id is probed in turn. send frees the slots.
	for id := range s.waits {
		if len(b.probes) == probeChunk {
			break
		}
		if s.held[id] { // a local holder wakes its followers itself
			continue
		}
		select {
		case s.slots <- struct{}{}:
			b.probes = append(b.probes, id)
			continue
		default:
		}
		break
	}
	s.probeNow, s.nextProbe = false, now.Add(s.probeEvery)
	return b
}

// empty reports whether b sends nothing.
func (b *batch) empty() bool {
	return len(b.reqs) == 0 && len(b.probes) == 0 && len(b.marks) == 0 && len(b.unmarks) == 0 &&
		!b.listen && !b.unlisten && !b.subscribe
}

// takeMarks adds to b the follow markers due: one taken for each id newly
// awaited (and not held here: a local holder wakes its followers itself),
// with a probe of the id after it in the same statement, and one released
// for each id no longer awaited. A marker takes a slot of the lock budget
// while held, and markers take at most half of it; past that the id goes
// unmarked, and its holder's release then notifies no one: the periodic
// probe wakes its followers.
// Called with mu held.
func (s *session) takeMarks(b *batch) {
	for id := range s.toUnmark {
		delete(s.toUnmark, id)
		if !s.marked[id] || s.waits[id] != nil {
			continue // never marked, or awaited again
		}
		delete(s.marked, id)
		b.unmarks = append(b.unmarks, id) // send frees the slot
	}
	for id := range s.toMark {
		if s.held[id] {
			continue // being tried, or held here: look again next time
		}
		delete(s.toMark, id)
		if s.waits[id] == nil || s.marked[id] {
			continue
		}
		if 2*len(s.slots) >= cap(s.slots) {
			continue // markers take at most half the budget: tries come first
		}
		select {
		case s.slots <- struct{}{}:
		default:
			continue
		}
		s.marked[id] = true
		b.marks = append(b.marks, id)
		select {
		case s.slots <- struct{}{}:
			b.probes = append(b.probes, id)
		default:
		}
	}
}

// waitIdle waits until a request arrives or the session closes, and, while
// it listens, for notifications, until a probe is due or it is time to stop
// listening. Called with mu held; returns with it not held.
func (s *session) waitIdle(conn *pgconn.PgConn) {
	if !s.listening && !s.subscribed {
		// Nothing can arrive that matters: wait without reading the
		// socket, until a request or a probe is due. A server that ended
		// the session meanwhile is noticed at the next statement, whose
		// tries are then sent again.
		var probe <-chan time.Time
		if len(s.waits) > 0 {
			t := time.NewTimer(time.Until(s.nextProbe))
			defer t.Stop()
			probe = t.C
		}
		s.mu.Unlock()
		select {
		case <-s.wakeLoop:
		case <-probe:
		}
		return
	}
	var deadline time.Time // none: only broadcasts can arrive
	switch {
	case len(s.waits) > 0:
		deadline = s.nextProbe
	case s.listening:
		deadline = s.lastWait.Add(listenLinger)
	}
	if err := conn.Conn().SetReadDeadline(deadline); err != nil {
		s.mu.Unlock()
		s.lost(conn, err)
		return
	}
	s.idleConn = conn
	s.mu.Unlock()
	err := conn.WaitForNotification(context.Background())
	s.mu.Lock()
	s.idleConn = nil
	derr := conn.Conn().SetReadDeadline(time.Time{})
	s.mu.Unlock()
	if err == nil {
		err = derr
	}
	if err != nil && (conn.IsClosed() || derr != nil) {
		s.lost(conn, err)
	}
}

// send runs b in one round trip and answers its requests.
func (s *session) send(conn *pgconn.PgConn, b batch) {
	defer s.freeSlots(len(b.probes) + len(b.unmarks)) // taken by takeBatch and takeMarks
	var unlocks, tries []int64
	var notifies []string
	var queries []*request
	for _, r := range b.reqs {
		switch {
		case r.notify != "":
			notifies = append(notifies, r.notify)
		case r.query != "":
			queries = append(queries, r)
		case r.unlock:
			unlocks = append(unlocks, r.ids...)
		default:
			tries = append(tries, r.ids...)
		}
	}
	sql := make([]byte, 0, 64+48*(len(tries)+len(b.probes))+96*len(unlocks))
	statements := 0
	add := func(stmt string) {
		if statements > 0 {
			sql = append(sql, "; "...)
		}
		sql = append(sql, stmt...)
		statements++
	}
	calls := func(fn string, ids []int64, notify bool) {
		for chunk := range slices.Chunk(ids, maxCallsPerStatement) {
			if statements > 0 {
				sql = append(sql, "; "...)
			}
			sql = appendCalls(sql, fn, chunk, notify)
			statements++
		}
	}
	calls(unlockFn, unlocks, true)
	for _, payload := range notifies {
		add("select pg_notify('" + broadcastChannel + "', '" + payload + "')")
	}
	commit := len(unlocks)+len(notifies) > 0 && (b.listen || b.unlisten || b.subscribe || len(b.probes) > 0 ||
		len(b.marks) > 0 || len(b.unmarks) > 0 || len(tries) > 0 || len(queries) > 0)
	if commit {
		add("commit")
	}
	switch {
	case b.listen:
		add(listenSQL)
	case b.unlisten:
		add(unlistenSQL)
	}
	if b.subscribe {
		add(subscribeSQL)
	}
	// Markers before probes: a probe of a newly marked id sees any
	// release that could not have seen the marker.
	pairs := func(fn string, ids []int64) {
		for chunk := range slices.Chunk(ids, maxCallsPerStatement) {
			if statements > 0 {
				sql = append(sql, "; "...)
			}
			sql = appendPairCalls(sql, fn, chunk)
			statements++
		}
	}
	pairs(unmarkFn, b.unmarks)
	pairs(markFn, b.marks)
	// The probe holds a shared lock per id until its implicit
	// transaction ends: the COMMIT after it ends that at once.
	if len(b.probes) > 0 {
		calls(probeFn, b.probes, false)
		add("commit")
	}
	calls(tryFn, tries, false)
	// Last: a query that fails aborts only itself and the statements
	// after it, and the tries before it are session locks, which an
	// aborted transaction keeps.
	for _, r := range queries {
		add(r.query)
	}

	// A deadline on the socket bounds the round trip (a context would cost
	// a goroutine per statement); on a timeout pgconn closes the
	// connection, and the session is lost.
	var results []*pgconn.Result
	err := conn.Conn().SetDeadline(time.Now().Add(batchTimeout))
	if err == nil {
		results, err = conn.Exec(context.Background(), string(sql)).ReadAll()
		if !conn.IsClosed() {
			if derr := conn.Conn().SetDeadline(time.Time{}); derr != nil && err == nil {
				err = derr
			}
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.RoundTrips++
	s.stats.Ops += uint64(len(unlocks) + len(b.probes) + len(tries))
	if len(b.probes) > 0 {
		s.stats.Probes++
	}
	if err != nil && conn.IsClosed() {
		s.lostLocked(conn, err, b.reqs)
		return
	}
	// Read the answers statement by statement, as far as they came: each
	// call statement returns one row, a column per call (two per unlock:
	// the unlock, then the notification's void).
	next := 0
	ok := func() bool { return next < len(results) && results[next].Err == nil }
	read := func(ids []int64, stride int) (map[int64]bool, bool) {
		answers := make(map[int64]bool, len(ids))
		for chunk := range slices.Chunk(ids, maxCallsPerStatement) {
			if !ok() || len(results[next].Rows) != 1 || len(results[next].Rows[0]) != stride*len(chunk) {
				return nil, false
			}
			row := results[next].Rows[0]
			for i, id := range chunk {
				v := row[stride*i]
				answers[id] = len(v) == 1 && v[0] == 't'
			}
			next++
		}
		return answers, true
	}
	released, unlocked := read(unlocks, 2)
	notified := unlocked
	for range notifies {
		notified = notified && ok()
		next++
	}
	if commit {
		next++
	}
	if b.listen || b.unlisten {
		if notified && ok() {
			s.listening = b.listen
		}
		next += 2 // (un)listen, commit
	}
	if b.subscribe {
		if notified && ok() {
			s.subscribed = true
			// Broadcasts sent before this LISTEN took effect, since the
			// session started or was lost, never reach this process.
			s.gapLater()
		}
		next += 2 // listen, commit
	}
	_, unmarked := read(b.unmarks, 1)
	markedNow, marked := read(b.marks, 1)
	for _, id := range b.marks {
		if marked && markedNow[id] {
			continue
		}
		// Not taken (a release held it exclusively at that instant, or
		// the statement failed): try again in the next round trip.
		if s.marked[id] {
			delete(s.marked, id)
			s.freeSlots(1)
			if s.waits[id] != nil {
				s.toMark[id] = struct{}{}
			}
		}
	}
	free, probed := read(b.probes, 1)
	if len(b.probes) > 0 {
		next++ // commit
	}
	took, tried := read(tries, 1)
	for _, r := range queries {
		switch {
		case next < len(results) && results[next].Err == nil:
			r.rows = results[next].Rows
		case next < len(results):
			r.err = results[next].Err
		case err != nil:
			r.err = err
		default:
			r.err = errors.New("pglock: lock session: no result for a query")
		}
		next++
	}
	for _, id := range b.probes {
		if free[id] && s.wake(id) {
			s.stats.ProbeWakes++
		}
	}
	if err == nil && (!notified || !unmarked || !marked || !probed || !tried) {
		err = fmt.Errorf("pglock: lock session: %d results for a batch of %d statements", len(results), next)
	}
	var cleanup []int64
	for _, r := range b.reqs {
		switch {
		case r.query != "":
		case r.notify != "":
			if !notified {
				r.err = fmt.Errorf("pglock: broadcast: %w", err)
			}
		case r.unlock:
			if !unlocked {
				r.err = fmt.Errorf("pglock: unlock: %w", err)
			} else {
				for _, id := range r.ids {
					if !released[id] {
						s.stats.LocksLost++
						r.err = fmt.Errorf("pglock: unlock: %w: the session did not hold the lock", ErrSessionLost)
					}
				}
			}
		case !tried:
			// The tries failed (53200 "out of shared memory" when the
			// server's lock table is full) and some may have taken their
			// lock: release them all in the next round trip.
			r.err = fmt.Errorf("pglock: lock: %w", err)
			cleanup = append(cleanup, r.ids...)
			for _, id := range r.ids {
				delete(s.held, id)
			}
			s.freeSlots(len(r.ids))
		default:
			var keep []int64
			r.gen = s.gen
			for i, id := range r.ids {
				r.took[i] = took[id]
				if !r.took[i] {
					delete(s.held, id)
				} else {
					keep = append(keep, id)
				}
			}
			s.freeSlots(len(r.ids) - len(keep))
			if r.gone && len(keep) > 0 {
				// The caller left: release what it was granted, at once.
				for _, id := range keep {
					delete(s.held, id)
				}
				s.releaseLater(keep)
				s.freeSlots(len(keep))
			}
		}
		if !r.owner {
			close(r.done)
		}
	}
	if len(cleanup) > 0 {
		s.releaseLater(cleanup)
	}
}

// appendPairCalls appends to b a SELECT of fn(hi, lo) for each id, hi and
// lo being the id's two int4 halves: its follow marker (markFn).
func appendPairCalls(b []byte, fn string, ids []int64) []byte {
	b = append(b, "select "...)
	for i, id := range ids {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = appendPair(append(b, fn...), id)
		b = append(b, ')')
	}
	return b
}

// appendPair appends id's follow-marker key, its two int4 halves.
func appendPair(b []byte, id int64) []byte {
	b = strconv.AppendInt(b, int64(int32(id>>32)), 10)
	b = append(b, ", "...)
	return strconv.AppendInt(b, int64(int32(id)), 10)
}

// appendCalls appends to b a SELECT of fn(id) for each id, each followed by
// the notification of its release if notify. An int64 literal cannot inject
// anything, and it lets the statement run with the simple protocol.
func appendCalls(b []byte, fn string, ids []int64, notify bool) []byte {
	b = append(b, "select "...)
	for i, id := range ids {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, fn...)
		b = strconv.AppendInt(b, id, 10)
		b = append(b, ')')
		if notify {
			// Only if another session holds id's follow marker.
			b = append(b, ", case when pg_try_advisory_lock("...)
			b = appendPair(b, id)
			b = append(b, ") and pg_advisory_unlock("...)
			b = appendPair(b, id)
			b = append(b, ") then null else "...)
			b = append(b, notifyFn...)
			b = strconv.AppendInt(b, id, 10)
			b = append(b, "') end"...)
		}
	}
	return b
}

// releaseLater queues the release of ids, which no caller waits for (a
// caller that left, or a failed try statement's cleanup), for the next
// round trip. Called with mu held.
func (s *session) releaseLater(ids []int64) {
	s.pending = append(s.pending, &request{unlock: true, ids: ids, gen: s.gen, owner: true, done: make(chan struct{})})
}

// lost forgets conn after it died.
func (s *session) lost(conn *pgconn.PgConn, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lostLocked(conn, err, nil)
}

// lostLocked forgets conn, which died with reqs in flight: every lock the
// session held is gone (their unlocks will say so), every follower wakes to
// re-check, and tries in flight are sent once more on a new connection (a
// dead session holds nothing, so trying again is safe). Called with mu
// held.
func (s *session) lostLocked(conn *pgconn.PgConn, err error, reqs []*request) {
	if s.conn != conn {
		return
	}
	closeConn(conn)
	s.conn = nil
	s.gen++
	s.stats.SessionLosses++
	if s.subscribed {
		s.subscribed = false
		s.gapLater()
	}
	// The markers went with the session; its followers, woken below,
	// follow again, and mark again, on the next one.
	s.freeSlots(len(s.marked))
	clear(s.marked)
	clear(s.toUnmark)
	for id := range s.held {
		delete(s.held, id)
	}
	s.wakeAll()
	for _, r := range reqs {
		switch {
		case r.query != "":
			r.err = fmt.Errorf("pglock: %w: %w", ErrSessionLost, err)
		case r.notify != "":
			r.err = fmt.Errorf("pglock: broadcast: %w: %w", ErrSessionLost, err)
		case r.unlock:
			s.stats.LocksLost += uint64(len(r.ids))
			r.err = fmt.Errorf("pglock: unlock: %w: %w", ErrSessionLost, err)
		case !r.retry && !r.gone:
			r.retry = true
			for _, id := range r.ids {
				s.held[id] = true
			}
			s.pending = append(s.pending, r)
			continue
		default:
			r.err = fmt.Errorf("pglock: lock: %w: %w", ErrSessionLost, err)
			s.freeSlots(len(r.ids))
		}
		if !r.owner {
			close(r.done)
		}
	}
	// Tries re-queued above keep their held marks; drop those of others.
}

// failPending answers every pending request with err. Called with mu held.
func (s *session) failPending(err error) {
	for _, r := range s.pending {
		r.err = err
		if !r.unlock {
			for _, id := range r.ids {
				delete(s.held, id)
			}
			s.freeSlots(len(r.ids))
		}
		if !r.owner {
			close(r.done)
		}
	}
	s.pending = nil
}

// connect opens the session's connection and sets it up: the settings,
// LISTEN, and a check that it is not behind a transaction pooler.
func (s *session) connect() (*pgconn.PgConn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	if err := s.markBeforeConnect(ctx); err != nil {
		return nil, err
	}
	conn, err := pgconn.ConnectConfig(ctx, s.cfg)
	if err != nil {
		return nil, err
	}
	setup := s.setup
	if serverMajor(conn) >= 14 {
		setup += "set idle_session_timeout = 0; "
	}
	token := strconv.FormatUint(rand.Uint64(), 36)
	first, err := conn.Exec(ctx, markerSQL+"; "+setup+"set "+markerName+" = '"+token+"'; "+backendSQL).ReadAll()
	if err == nil {
		err = checkNotPooled(ctx, conn, first, token)
	}
	if err != nil {
		closeConn(conn)
		return nil, err
	}
	return conn, nil
}

// The pooler check's statements. markerName is a custom setting each lock
// session sets to a token of its own; it lives as long as the server
// session, which a transaction pooler lends to other clients.
const (
	markerName     = "pgflight.lock_session"
	markerSQL      = "select current_setting('" + markerName + "', true)"
	markerCheckSQL = "select pg_backend_pid()::text || ' ' || coalesce(current_setting('" + markerName + "', true), '')"
)

// errPooled is why a session refuses to run through a transaction pooler.
var errPooled = errors.New("the lock session goes through a transaction or statement pooler (PgBouncer pool_mode=transaction or statement), which would hand its session locks and LISTEN to other clients: use pglock.WithTransactionMode")

// checkNotPooled reports errPooled if conn is behind a pooler that lends
// server sessions per transaction. first holds the results of its first
// statement: the marker as the server session had it before this client
// (set means another client used that server session: a transaction
// pooler, since a new connection gets a new session and PgBouncer's session
// pooling resets settings between clients), then the setup, then its
// backend's pid. Over several rounds the backend and the marker must stay
// this client's (a busy pooler moves statements, and another client
// starting at once takes the session over). It opens no other connection.
// A pooler can still escape the checks (the first client of a fresh server
// session, on a quiet pooler), so choose the mode by the deployment, not by
// this check.
func checkNotPooled(ctx context.Context, conn *pgconn.PgConn, first []*pgconn.Result, token string) error {
	if len(first) == 0 || len(first[0].Rows) != 1 || len(first[0].Rows[0]) != 1 {
		return errors.New("pglock: lock session setup: unexpected result")
	}
	if len(first[0].Rows[0][0]) > 0 {
		return errPooled
	}
	want := lastValue(first) + " " + token
	for range poolerChecks {
		again, err := conn.Exec(ctx, markerCheckSQL).ReadAll()
		if err != nil {
			return err
		}
		if lastValue(again) != want {
			return errPooled
		}
	}
	return nil
}

// markBeforeConnect opens a connection configured as the session's, sets
// the marker on its server session, and closes it, before the session's
// first statement: a quiet transaction pooler then lends the session that
// same server session, marker and all, while a new connection to
// PostgreSQL gets a new one. The check connection is closed before the
// session sends anything, so the process holds one connection at a time.
func (s *session) markBeforeConnect(ctx context.Context) error {
	cfg := s.cfg.Copy()
	cfg.OnNotification = nil
	check, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeConn(check)
	_, err = check.Exec(ctx, "set "+markerName+" = 'check'").ReadAll()
	return err
}

// poolerChecks is how many times checkNotPooled asks the session for its
// backend and marker: each is one more chance for a pooler to show.
const poolerChecks = 4

// lastValue returns the first column of the last row of the last result.
func lastValue(rs []*pgconn.Result) string {
	if len(rs) == 0 {
		return ""
	}
	rows := rs[len(rs)-1].Rows
	if len(rows) == 0 || len(rows[len(rows)-1]) == 0 {
		return ""
	}
	return string(rows[len(rows)-1][0])
}

// serverMajor returns the server's major version, or 0 if unknown.
func serverMajor(conn *pgconn.PgConn) int {
	v := conn.ParameterStatus("server_version")
	if i := strings.IndexAny(v, ". "); i >= 0 {
		v = v[:i]
	}
	n, _ := strconv.Atoi(v)
	return n
}

// closeConn closes conn, which ends its session and releases its locks.
func closeConn(conn *pgconn.PgConn) {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	_ = conn.Close(ctx)
}

// snapshot returns the session's counters and gauges.
func (s *session) snapshot() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Held = len(s.slots)
	st.Awaited = s.awaiting
	st.Connected = s.conn != nil
	return st
}

// Stats are a Locker's counters since New, and its state now. Counters
// count events; Held, Awaited and Connected describe the moment of the
// call.
type Stats struct {
	// Ops counts lock operations sent to PostgreSQL: tries, unlocks and
	// probed ids.
	Ops uint64
	// RoundTrips counts the statements sent for them; Ops / RoundTrips is
	// how many operations share a round trip.
	RoundTrips uint64
	// Notifications counts release notifications received.
	Notifications uint64
	// Probes counts probe statements; ProbeWakes the awaited ids they
	// found free, whose followers they woke (a holder that died, or a
	// notification lost).
	Probes, ProbeWakes uint64
	// Connects counts lock session connections opened; SessionLosses those
	// that died, each of which released every lock the session held.
	Connects, SessionLosses uint64
	// LocksLost counts locks whose unlock found them already released
	// with a lost session.
	LocksLost uint64
	// Held is the number of locks held or being tried now; in transaction
	// mode, the pool connections in use.
	Held int
	// Awaited is the number of callers of this process waiting now for a
	// lock another holder has (a follower, a Lock, a WaitMany per id).
	Awaited int
	// Connected reports whether the lock session is open now.
	Connected bool
	// Broadcasts counts broadcast messages received for the Locker's
	// subscribers; Gaps the times they were told they may have missed
	// some (see [Locker.Subscribe]).
	Broadcasts, Gaps uint64
}
