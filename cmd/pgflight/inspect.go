package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/pgflight/pgflight"
	"github.com/pgflight/pgflight/redisstore"
)

// inspectTimeout bounds the whole of "pgflight inspect".
const inspectTimeout = 10 * time.Second

// defaultNamespace is Config.Namespace's default, which Groups use when
// they set none.
const defaultNamespace = "pgflight"

// How much of a value the report shows: text up to showText bytes, other
// values as a hex dump of up to showHex bytes.
const (
	showText = 200
	showHex  = 64
)

// staleSlack is how much longer than its fresh time the store must keep an
// entry for the report to call the difference a stale window: the store's
// TTL is counted from the write, a little after the computation ended.
const staleSlack = time.Second

// Exit statuses of "pgflight inspect".
const (
	exitNotFound = 1
	exitFailed   = 2
)

// runInspect is "pgflight inspect KEY": the entry stored for KEY, as
// pgflight.Inspect decodes it, with the store's expiry, or with -value the
// value alone.
func runInspect(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("inspect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: pgflight inspect [flags] KEY

Shows the entry that Groups with the namespace store for KEY in Redis: its
cache key, whether it is there, and if so what kind it is (a value, a negative
entry cached for ErrMissing, a nil []byte), when it was computed, until when
it is fresh, until when it may be served stale (the store's expiry, when that
is later than fresh until), how long its computation took, its size and its
value: text quoted and cut to `+strconv.Itoa(showText)+` bytes, anything else as a hex dump
of its first `+strconv.Itoa(showHex)+` bytes. With -value it prints the value alone, whole
and raw, for a pipe (passwords the command was given are still masked in it).
Flags may also follow KEY; a KEY that starts with "-" comes after "--".

Exit status: 0 if the entry is there, 1 if it is not, 2 if the entry cannot be
decoded (the report shows its raw bytes), Redis fails or the command line is
wrong.

flags:
`)
		fs.PrintDefaults()
	}
	namespace := fs.String("namespace", defaultNamespace, "the Groups' Config.Namespace")
	redisURL := fs.String("redis-url", "", "Redis `URL` (default: REDIS_URL, else "+defaultRedisURL+")")
	prefix := fs.String("redis-prefix", "", "the redisstore.WithPrefix of the Groups' Store, if any")
	valueOnly := fs.Bool("value", false, "print only the value, whole and raw")
	key, err := parseKeyArg(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &statusError{exitFailed, err}
	}

	target := resolveRedis(*redisURL)
	ctx, cancel := context.WithTimeout(ctx, inspectTimeout)
	defer cancel()
	if err := probeRedis(ctx, target); err != nil {
		return &statusError{exitFailed, fmt.Errorf("inspect: %s: %s", target, oneLine(err))}
	}
	rdb, err := target.client()
	if err != nil {
		return &statusError{exitFailed, fmt.Errorf("inspect: %w", err)}
	}
	defer rdb.Close()
	info, err := pgflight.Inspect(ctx, redisstore.New(rdb, redisstore.WithPrefix(*prefix)), *namespace, key)
	var de *pgflight.DecodeError
	switch {
	case errors.As(err, &de):
		if !*valueOnly {
			writeUndecodable(stdout, info, de)
		}
		return &statusError{exitFailed, fmt.Errorf("inspect: %w", err)}
	case err != nil:
		return &statusError{exitFailed, fmt.Errorf("inspect: %s: %w", target, err)}
	case !info.Found:
		if !*valueOnly {
			writeReport(stdout, []field{{"cache key", info.Key}, {"found", "no"}})
		}
		return &statusError{exitNotFound, fmt.Errorf("inspect: %s: not found in %s", strconv.Quote(info.Key), target)}
	case *valueOnly:
		_, err := stdout.Write(info.Value)
		return err
	}
	// The store's expiry, against which to tell a stale window.
	pttl, err := rdb.PTTL(ctx, *prefix+info.Key).Result()
	if err != nil {
		return &statusError{exitFailed, fmt.Errorf("inspect: %s: pttl: %w", target, err)}
	}
	writeReport(stdout, describe(info, time.Now(), pttl))
	return nil
}

// parseKeyArg parses args into fs and returns its one argument, KEY, which
// flags may also follow.
func parseKeyArg(fs *flag.FlagSet, args []string) (string, error) {
	if err := fs.Parse(args); err != nil {
		return "", err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return "", errors.New("inspect: no KEY")
	}
	key := fs.Arg(0)
	if err := parseFlags(fs, fs.Args()[1:]); err != nil {
		return "", err
	}
	return key, nil
}

// A field is one line of the report: a name and its value.
type field struct{ name, value string }

// writeReport writes fields as two aligned columns.
func writeReport(w io.Writer, fields []field) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, f := range fields {
		for i, line := range strings.Split(f.value, "\n") {
			name := f.name
			if i > 0 {
				name = ""
			}
			fmt.Fprintf(tw, "%s\t%s\n", name, line)
		}
	}
	tw.Flush()
}

// describe returns the report's fields for info, found at now, which the
// store keeps for pttl more (negative: no expiry, or the key has just gone).
func describe(info pgflight.EntryInfo, now time.Time, pttl time.Duration) []field {
	kind := "value"
	switch {
	case info.Missing:
		kind = "negative entry: fn's error wrapped ErrMissing, and callers get it without calling fn"
	case info.Nil:
		kind = "nil []byte"
	}
	fresh := fmt.Sprintf("%s (fresh, %v left)", stamp(info.FreshUntil), info.FreshUntil.Sub(now).Round(time.Millisecond))
	if !now.Before(info.FreshUntil) {
		fresh = fmt.Sprintf("%s (expired %v ago)", stamp(info.FreshUntil), now.Sub(info.FreshUntil).Round(time.Millisecond))
	}
	stale := "- (the store's TTL is not known)"
	if pttl > 0 {
		expiry := now.Add(pttl)
		if expiry.Sub(info.FreshUntil) > staleSlack {
			stale = fmt.Sprintf("%s (the store's expiry, in %v)", stamp(expiry), pttl.Round(time.Millisecond))
		} else {
			stale = fmt.Sprintf("- (no stale window: the store drops it in %v)", pttl.Round(time.Millisecond))
		}
	} else if pttl == -1 {
		stale = "- (the store keeps it with no expiry)"
	}
	value := showValue(info.Value)
	if info.Missing {
		value = "fn's message " + value
	}
	fields := []field{
		{"cache key", info.Key},
		{"found", "yes"},
		{"kind", kind},
		{"computed at", fmt.Sprintf("%s (%v ago)", stamp(info.ComputedAt), now.Sub(info.ComputedAt).Round(time.Millisecond))},
		{"fresh until", fresh},
		{"stale until", stale},
		{"compute time", info.ComputeTime.String()},
	}
	if len(info.Tags) > 0 || info.ClearVersion > 0 {
		fields = append(fields, field{"tags", showTags(info)})
	}
	return append(fields,
		field{"size", fmt.Sprintf("%d bytes of value, %d bytes stored", len(info.Value), info.Size)},
		field{"value", value},
	)
}

// showTags lists an entry's tags with the versions it recorded, and the
// Clear version if any.
func showTags(info pgflight.EntryInfo) string {
	tags := make([]string, 0, len(info.Tags))
	for t := range info.Tags {
		tags = append(tags, t)
	}
	slices.Sort(tags)
	var parts []string
	for _, t := range tags {
		parts = append(parts, fmt.Sprintf("%s (version %d)", showValue([]byte(t)), info.Tags[t]))
	}
	if info.ClearVersion > 0 {
		parts = append(parts, fmt.Sprintf("Clear version %d", info.ClearVersion))
	}
	return strings.Join(parts, ", ") + " when computed"
}

// writeUndecodable reports an entry that is not a pgflight envelope.
func writeUndecodable(w io.Writer, info pgflight.EntryInfo, de *pgflight.DecodeError) {
	writeReport(w, []field{
		{"cache key", info.Key},
		{"found", "yes, but undecodable: " + de.Err.Error()},
		{"size", fmt.Sprintf("%d bytes stored", info.Size)},
		{"stored bytes", showValue(info.Value)},
	})
}

// stamp formats t for the report, in UTC to the millisecond.
func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000 MST") }

// showValue returns v for people, safely: printable text quoted (escapes
// and all, so no byte of it can drive the terminal), anything else as a hex
// dump, each cut short with a note of how much is left.
func showValue(v []byte) string {
	if len(v) == 0 {
		return "(empty)"
	}
	if isText(v) {
		n := min(len(v), showText)
		for n < len(v) && !utf8.RuneStart(v[n]) {
			n-- // cut at a character's start
		}
		return strconv.Quote(string(v[:n])) + rest(len(v)-n)
	}
	n := min(len(v), showHex)
	return strings.TrimSuffix(hex.Dump(v[:n]), "\n") + rest(len(v)-n)
}

// rest notes that n bytes of a value were not shown.
func rest(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(" ... (%d more bytes; -value prints it whole)", n)
}

// isText reports whether v is UTF-8 whose characters are all printable or
// white space.
func isText(v []byte) bool {
	if !utf8.Valid(v) {
		return false
	}
	for _, r := range string(v) {
		if !unicode.IsPrint(r) && r != '\n' && r != '\t' && r != '\r' {
			return false
		}
	}
	return true
}
