package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgflight/pgflight/pglock"
)

// locksTimeout bounds the whole of "pgflight locks".
const locksTimeout = 10 * time.Second

// nowSQL reads the server's clock, against which wait times are measured.
const nowSQL = "select clock_timestamp()"

// runLocks is "pgflight locks": the advisory locks held or awaited in the
// database, one line per session and lock, holders first.
func runLocks(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("locks", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: pgflight locks [flags]

Lists the advisory locks (bigint keys, as pgflight takes them) held or awaited
in the database, by every session: pid, lock id, mode, whether granted, how
long it has waited, which sessions block it, and its application_name.

flags:
`)
		fs.PrintDefaults()
	}
	databaseURL := fs.String("database-url", "", "PostgreSQL `URL` (default: DATABASE_URL, else the PG* variables, else "+defaultDatabaseURL+")")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	target := resolvePostgres(*databaseURL)
	cfg, err := target.poolConfig("pgflight-locks")
	if err != nil {
		return fmt.Errorf("locks: %w", err)
	}
	cfg.MaxConns = 1
	ctx, cancel := context.WithTimeout(ctx, locksTimeout)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("locks: %w", err)
	}
	defer pool.Close()

	locks, err := pglock.New(pool).Held(ctx)
	if err != nil {
		return fmt.Errorf("locks: %s: %w", target, err)
	}
	var now time.Time
	if err := pool.QueryRow(ctx, nowSQL).Scan(&now); err != nil {
		return fmt.Errorf("locks: %s: %w", target, err)
	}

	fmt.Fprintf(stdout, "advisory locks in %s: %d\n", target, len(locks))
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "pid\tlock id\thex\tmode\tgranted\twaiting\tblocked by\tapplication_name")
	for _, l := range locks {
		waiting := "-"
		if !l.Granted && !l.WaitStart.IsZero() {
			waiting = strconv.FormatInt(now.Sub(l.WaitStart).Milliseconds(), 10) + "ms"
		}
		blockedBy := "-"
		if len(l.BlockedBy) > 0 {
			pids := make([]string, len(l.BlockedBy))
			for i, pid := range l.BlockedBy {
				pids[i] = strconv.Itoa(int(pid))
			}
			blockedBy = strings.Join(pids, ",")
		}
		app := l.ApplicationName
		if app == "" {
			app = "-"
		}
		fmt.Fprintf(tw, "%d\t%d\t%016x\t%s\t%t\t%s\t%s\t%s\n",
			l.PID, l.ID, uint64(l.ID), l.Mode, l.Granted, waiting, blockedBy, app)
	}
	return tw.Flush()
}
