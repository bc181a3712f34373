package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgflight/pgflight/pglock"
)

// locksTimeout bounds the whole of "pgflight locks", and each frame of
// "pgflight locks -watch".
const locksTimeout = 10 * time.Second

// nowSQL reads the server's clock, against which wait times are measured.
const nowSQL = "select clock_timestamp()"

// clearScreen moves a terminal's cursor home and clears the screen.
const clearScreen = "\x1b[H\x1b[2J"

// runLocks is "pgflight locks": the advisory locks held or awaited in the
// database, one line per session and lock, holders first; with -watch,
// again every -interval until interrupted.
func runLocks(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("locks", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: pgflight locks [flags]

Lists the advisory locks (bigint keys, as pgflight takes them) held or awaited
in the database, by every session: pid, lock id, mode, whether granted, how
long it has waited, which sessions block it, and its application_name.

With -watch it lists them again every -interval, each frame under a line with
the local time, until interrupted (Ctrl-C or SIGTERM, exit status 0) or, with
-count, after that many frames (exit status 1 if the last one failed). On a
terminal each frame replaces the last; otherwise frames follow one another,
separated by a blank line. A frame whose query fails shows the error in place
of the table, and the watch goes on: it recovers when PostgreSQL is back.

flags:
`)
		fs.PrintDefaults()
	}
	databaseURL := fs.String("database-url", "", "PostgreSQL `URL` (default: DATABASE_URL, else the PG* variables, else "+defaultDatabaseURL+")")
	watch := fs.Bool("watch", false, "list the locks again every -interval until interrupted")
	interval := fs.Duration("interval", time.Second, "with -watch, time between frames")
	count := fs.Int("count", 0, "with -watch, stop after this many frames; 0: until interrupted")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *interval <= 0 || *count < 0 {
		fs.Usage()
		return errors.New("locks: -interval must be positive and -count not negative")
	}
	if !*watch && (isSet(fs, "interval") || isSet(fs, "count")) {
		fs.Usage()
		return errors.New("locks: -interval and -count need -watch")
	}
	target := resolvePostgres(*databaseURL)
	cfg, err := target.poolConfig("pgflight-locks")
	if err != nil {
		return fmt.Errorf("locks: %w", err)
	}
	cfg.MaxConns = 1
	// The pool connects on first use, and again after a failure: a watch
	// outlives a server that goes away and comes back.
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("locks: %w", err)
	}
	defer pool.Close()
	l := lister{pool: pool, locker: pglock.New(pool), target: target}
	if !*watch {
		ctx, cancel := context.WithTimeout(ctx, locksTimeout)
		defer cancel()
		return l.list(ctx, stdout)
	}
	return l.watch(ctx, stdout, *interval, *count, isTerminal(stdout))
}

// isSet reports whether the command line set the flag name of fs.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// isTerminal reports whether w, or the writer a scrubWriter w writes to,
// is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	if s, ok := w.(*scrubWriter); ok {
		w = s.w
	}
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// A lister lists the advisory locks of one database.
type lister struct {
	pool   *pgxpool.Pool
	locker *pglock.Locker
	target pgTarget
}

// watch writes a frame of the locks every interval until ctx ends, or
// count frames if count > 0, and returns the last frame's error then. A
// frame that fails shows its error and the watch goes on; the end of ctx
// (an interrupt) is not an error. On a terminal (tty) each frame clears the
// screen; otherwise a blank line separates it from the one before.
func (l lister) watch(ctx context.Context, w io.Writer, interval time.Duration, count int, tty bool) error {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for frame := 1; ; frame++ {
		var b bytes.Buffer
		switch {
		case tty:
			b.WriteString(clearScreen)
		case frame > 1:
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "%s  pgflight locks -watch, every %v\n", time.Now().Format("2006-01-02 15:04:05.000 MST"), interval)
		fctx, cancel := context.WithTimeout(ctx, locksTimeout)
		err := l.list(fctx, &b)
		cancel()
		if ctx.Err() != nil {
			return nil // interrupted: the frame cut short is not shown
		}
		if err != nil {
			fmt.Fprintf(&b, "error: %s\n", oneLine(err))
		}
		if _, werr := w.Write(b.Bytes()); werr != nil {
			return werr
		}
		if frame == count {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// list writes the table of the locks to w. It writes nothing if a query
// fails.
func (l lister) list(ctx context.Context, w io.Writer) error {
	locks, err := l.locker.Held(ctx)
	if err != nil {
		return fmt.Errorf("locks: %s: %w", l.target, err)
	}
	var now time.Time
	if err := l.pool.QueryRow(ctx, nowSQL).Scan(&now); err != nil {
		return fmt.Errorf("locks: %s: %w", l.target, err)
	}

	fmt.Fprintf(w, "advisory locks in %s: %d\n", l.target, len(locks))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "pid\tlock id\thex\tmode\tgranted\twaiting\tblocked by\tapplication_name")
	for _, k := range locks {
		waiting := "-"
		if !k.Granted && !k.WaitStart.IsZero() {
			waiting = strconv.FormatInt(now.Sub(k.WaitStart).Milliseconds(), 10) + "ms"
		}
		blockedBy := "-"
		if len(k.BlockedBy) > 0 {
			pids := make([]string, len(k.BlockedBy))
			for i, pid := range k.BlockedBy {
				pids[i] = strconv.Itoa(int(pid))
			}
			blockedBy = strings.Join(pids, ",")
		}
		app := k.ApplicationName
		if app == "" {
			app = "-"
		}
		fmt.Fprintf(tw, "%d\t%d\t%016x\t%s\t%t\t%s\t%s\t%s\n",
			k.PID, k.ID, uint64(k.ID), k.Mode, k.Granted, waiting, blockedBy, app)
	}
	return tw.Flush()
}
