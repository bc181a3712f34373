package pglock

import (
	"context"
	_ "embed"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Tag versions (pgflight's WithTags, InvalidateTags and Clear) live in the
// table pgflight_tags (tags.sql): one row per tag of a namespace that was
// ever invalidated, holding its version; the empty tag is the namespace's
// Clear. There is no index of keys per tag: an entry records the versions
// of its tags, and a reader compares them with these.
//
// An invalidation increments the versions and notifies, in one statement,
// so both take effect at COMMIT. The message names the namespace and the
// tags, not the versions: a Group that receives it forgets those tags and
// reads their versions again when it next meets them.
var (
	//go:embed tags.sql
	tagsSchema    string
	ensureTagsSQL = ensureTableSQL(tagsTable, tagsLockKey2, tagsSchema)
	bumpSQL       = "insert into " + tagsTable + " (namespace, tag, version) select $1, t, 1 from unnest($2::bytea[]) t " +
		"on conflict (namespace, tag) do update set version = " + tagsTable + ".version + 1"
	// invalidateTagsSQL is the transaction's statement; bumpReturningSQL
	// the Locker's, which also returns the new versions.
	invalidateTagsSQL = ensureTagsSQL + "; " + bumpSQL + "; select pg_notify('" + broadcastChannel + "', $3)"
	bumpReturningSQL  = "with bumped as (" + bumpSQL + " returning tag, version), sent as (select pg_notify('" +
		broadcastChannel + "', $3)) select tag, version from bumped, sent"
	tagVersionsSQL = "select tag, version from " + tagsTable + " where namespace = $1 and tag = any($2::bytea[])"
)

const (
	// tagsTable is the table of tag versions, in the first schema of the
	// search_path.
	tagsTable = "pgflight_tags"
	// tagsLockKey2 ("tags") guards the table's creation, with
	// outboxLockKey1.
	tagsLockKey2 = 0x74616773
	// tagsTopic is the broadcast topic of tag invalidations. Its message:
	// a kind byte (msgTags or msgAllTags), the namespace as a uvarint
	// length and its bytes, then for msgTags each tag the same way.
	tagsTopic = "pgflight:tags"
	msgTags   = 'T'
	msgAll    = 'A' // too many tags for one message: forget them all
	// maxTagsPerCall bounds one call's tags, as pgflight's WithTags does;
	// maxTagLen bounds a tag.
	maxTagsPerCall = 1024
	maxTagLen      = 256
)

// InvalidateTags records, in the application's transaction tx, the
// invalidation of tags in pgflight namespace namespace: when tx commits,
// every entry stored with any of them (pgflight's WithTags) by a
// computation that began before the commit is a miss, in every process
// whose Groups of that namespace use a Locker of the same database; if tx
// rolls back, nothing happens. Call it in the transaction that changes the
// data the tagged entries were computed from.
//
// It increments each tag's version in the table pgflight_tags and sends a
// notification, both taking effect at COMMIT. Nothing else has to run
// afterwards, so a process that crashes right after COMMIT loses nothing.
// A Group that misses the notification (its session lost) forgets every
// version it knew and reads them again. The first call on a database
// creates the table (tags.sql), under an advisory transaction lock; a role
// that may not create tables needs [CreateOutbox] run once. It uses the
// simple protocol, so it works through PgBouncer in transaction pooling.
// Two transactions that invalidate one tag wait for each other's row
// lock, as any two updates of one row do.
//
// namespace is as for [Invalidate]; each tag is 1 to 256 bytes, at most
// 1024 per call. No tags is a no-op. ctx bounds the statement.
func InvalidateTags(ctx context.Context, tx Execer, namespace string, tags ...string) error {
	bs, payload, err := tagsArgs(namespace, tags, false)
	if err != nil || bs == nil {
		return err
	}
	if _, err := tx.Exec(ctx, invalidateTagsSQL, pgx.QueryExecModeSimpleProtocol, namespace, bs, payload); err != nil {
		return fmt.Errorf("pglock: invalidate tags: %w", err)
	}
	return nil
}

// Clear records, in the application's transaction tx, the invalidation of
// every entry of pgflight namespace namespace, as pgflight's Group.Clear
// does, taking effect at COMMIT as [InvalidateTags] does.
func Clear(ctx context.Context, tx Execer, namespace string) error {
	bs, payload, err := tagsArgs(namespace, []string{""}, true)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, invalidateTagsSQL, pgx.QueryExecModeSimpleProtocol, namespace, bs, payload); err != nil {
		return fmt.Errorf("pglock: clear: %w", err)
	}
	return nil
}

// tagsArgs checks an invalidation of tags and returns its statement's
// arguments: the distinct tags, and the notification's payload. clear
// allows the empty tag (the namespace's Clear). No tags returns nil.
func tagsArgs(namespace string, tags []string, clear bool) (bs [][]byte, payload string, err error) {
	if err := checkNamespace(namespace); err != nil {
		return nil, "", fmt.Errorf("pglock: invalidate tags: %w", err)
	}
	if len(tags) > maxTagsPerCall {
		return nil, "", fmt.Errorf("pglock: invalidate tags: %d tags, at most %d: %w", len(tags), maxTagsPerCall, ErrInvalidKey)
	}
	seen := make(map[string]bool, len(tags))
	msg := binary.AppendUvarint([]byte{msgTags}, uint64(len(namespace)))
	msg = append(msg, namespace...)
	for i, t := range tags {
		if (t == "" && !clear) || len(t) > maxTagLen {
			return nil, "", fmt.Errorf("pglock: invalidate tags: tag %d of %d has %d bytes, want 1 to %d: %w", i, len(tags), len(t), maxTagLen, ErrInvalidKey)
		}
		if seen[t] {
			continue // one row is updated once per statement
		}
		seen[t] = true
		bs = append(bs, []byte(t))
		msg = binary.AppendUvarint(msg, uint64(len(t)))
		msg = append(msg, t...)
	}
	if len(msg) > MaxBroadcast {
		msg = binary.AppendUvarint([]byte{msgAll}, uint64(len(namespace)))
		msg = append(msg, namespace...)
	}
	return bs, tagsTopic + " " + base64.StdEncoding.EncodeToString(msg), nil
}

// InvalidateTags increments the versions of tags of namespace, as
// [InvalidateTags] does in a transaction, and returns the new versions, in
// the order of tags: the pgflight TagSource contract, for Group's
// InvalidateTags and Clear (the empty tag). It runs one statement on the
// pool.
func (l *Locker) InvalidateTags(ctx context.Context, namespace string, tags []string) ([]uint64, error) {
	bs, payload, err := tagsArgs(namespace, tags, true)
	if err != nil || bs == nil {
		return make([]uint64, len(tags)), err
	}
	if !l.tagsReady.Load() {
		if _, err := l.pool.Exec(ctx, ensureTagsSQL, pgx.QueryExecModeSimpleProtocol); err != nil {
			return nil, fmt.Errorf("pglock: invalidate tags: %w", err)
		}
		l.tagsReady.Store(true)
	}
	got, err := l.queryVersions(ctx, bumpReturningSQL, namespace, bs, payload)
	if err != nil {
		return nil, fmt.Errorf("pglock: invalidate tags: %w", err)
	}
	vs := make([]uint64, len(tags))
	for i, t := range tags {
		if vs[i] = got[t]; vs[i] == 0 {
			return nil, fmt.Errorf("pglock: invalidate tags: no version returned for tag %d", i)
		}
	}
	return vs, nil
}

// TagVersions returns the current versions of tags of namespace, in their
// order (0 for a tag never invalidated): the pgflight TagSource contract.
// A missing table counts as an empty one. It runs one SELECT in the lock
// session's next round trip, with the lock operations pending then, so it
// takes no pool connection; in transaction mode it runs on the pool.
func (l *Locker) TagVersions(ctx context.Context, namespace string, tags []string) ([]uint64, error) {
	if err := checkNamespace(namespace); err != nil {
		return nil, fmt.Errorf("pglock: tag versions: %w", err)
	}
	var got map[string]uint64
	var err error
	if l.s != nil {
		got, err = l.sessionVersions(ctx, namespace, tags)
	} else {
		bs := make([][]byte, len(tags))
		for i, t := range tags {
			bs[i] = []byte(t)
		}
		got, err = l.queryVersions(ctx, tagVersionsSQL, namespace, bs)
	}
	if err = missingOK(err); err != nil {
		return nil, fmt.Errorf("pglock: tag versions: %w", err)
	}
	vs := make([]uint64, len(tags))
	for i, t := range tags {
		vs[i] = got[t]
	}
	return vs, nil
}

// sessionVersions reads the versions of tags on the lock session. The
// statement carries its values as hex literals, decoded by the server, so
// no byte of a tag or namespace can change its meaning whatever the
// server's string settings.
func (l *Locker) sessionVersions(ctx context.Context, namespace string, tags []string) (map[string]uint64, error) {
	sql := appendText([]byte("select tag, version from "+tagsTable+" where namespace = "), namespace)
	sql = append(sql, " and tag in ("...)
	for i, t := range tags {
		if i > 0 {
			sql = append(sql, ", "...)
		}
		sql = appendBytea(sql, t)
	}
	sql = append(sql, ')')
	rows, err := l.s.query(ctx, string(sql))
	if err != nil {
		return nil, err
	}
	got := make(map[string]uint64, len(rows))
	for _, row := range rows {
		if len(row) != 2 {
			return nil, fmt.Errorf("tag versions: %d columns, want 2", len(row))
		}
		tag, err := hex.DecodeString(strings.TrimPrefix(string(row[0]), `\x`))
		if err != nil || !strings.HasPrefix(string(row[0]), `\x`) {
			return nil, fmt.Errorf("tag versions: tag %q is not hex bytea output", row[0])
		}
		v, err := strconv.ParseUint(string(row[1]), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("tag versions: %w", err)
		}
		got[string(tag)] = v
	}
	return got, nil
}

// queryVersions runs a query of (tag, version) rows.
func (l *Locker) queryVersions(ctx context.Context, sql string, args ...any) (map[string]uint64, error) {
	rows, err := l.pool.Query(ctx, sql, append([]any{pgx.QueryExecModeSimpleProtocol}, args...)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	got := make(map[string]uint64)
	for rows.Next() {
		var tag []byte
		var v int64
		if err := rows.Scan(&tag, &v); err != nil {
			return nil, err
		}
		got[string(tag)] = uint64(v)
	}
	return got, rows.Err()
}

// WatchTags calls forget with the tags of namespace that any process
// invalidates, through the lock session's broadcasts, and gap as
// [Locker.Subscribe] does: the pgflight TagSource contract. forget(nil)
// means any tag may have been invalidated. In transaction mode it returns
// an error wrapping errors.ErrUnsupported.
func (l *Locker) WatchTags(namespace string, forget func(tags []string), gap func()) (stop func(), err error) {
	if err := checkNamespace(namespace); err != nil {
		return nil, fmt.Errorf("pglock: watch tags: %w", err)
	}
	if l.s == nil {
		return nil, fmt.Errorf("pglock: watch tags: transaction mode has no lock session: %w", errors.ErrUnsupported)
	}
	return l.Subscribe(tagsTopic, func(msg []byte) {
		kind, ns, tags, ok := parseTagsMsg(msg)
		if !ok {
			forget(nil) // malformed: trust nothing
			return
		}
		if ns != namespace {
			return
		}
		if kind == msgAll {
			tags = nil
		}
		forget(tags)
	}, gap)
}

// parseTagsMsg decodes a message of tagsTopic.
func parseTagsMsg(msg []byte) (kind byte, ns string, tags []string, ok bool) {
	if len(msg) == 0 || (msg[0] != msgTags && msg[0] != msgAll) {
		return 0, "", nil, false
	}
	kind, b := msg[0], msg[1:]
	next := func() (string, bool) {
		n, w := binary.Uvarint(b)
		if w <= 0 || n > uint64(len(b)-w) {
			return "", false
		}
		s := string(b[w : w+int(n)])
		b = b[w+int(n):]
		return s, true
	}
	if ns, ok = next(); !ok {
		return 0, "", nil, false
	}
	for len(b) > 0 {
		t, ok := next()
		if !ok {
			return 0, "", nil, false
		}
		tags = append(tags, t)
	}
	return kind, ns, tags, true
}
