package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgflight/pgflight/pglock"
)

// invalidateTimeout bounds the whole of "pgflight invalidate".
const invalidateTimeout = 10 * time.Second

// listFlag is a flag that may be given many times.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// runInvalidate is "pgflight invalidate": keys, tags or a whole namespace
// invalidated across the fleet, in one transaction on the database the
// fleet's pglock Lockers use.
func runInvalidate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("invalidate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: pgflight invalidate [flags]

Invalidates, across every process whose pgflight Groups of -namespace use
pglock on the database, the keys given with -key (pglock.Invalidate: each
process deletes them, after any computation of them in flight), the entries
tagged with a -tag (pglock.InvalidateTags), or every entry of the namespace
(-clear, pglock.Clear). All of it is one transaction: it takes effect at
COMMIT, all or nothing. With -create-tables it first creates the tables this
needs (pglock.CreateOutbox), which a role that may not run DDL cannot do on
demand; run it so once, at deployment, and the application's role needs no
DDL rights. Exit status 0 once committed.

flags:
`)
		fs.PrintDefaults()
	}
	databaseURL := fs.String("database-url", "", "PostgreSQL `URL` (default: DATABASE_URL, else the PG* variables, else "+defaultDatabaseURL+")")
	namespace := fs.String("namespace", "pgflight", "the Groups' `namespace` (Config.Namespace)")
	var keys, tags listFlag
	fs.Var(&keys, "key", "a `key` to invalidate (repeat the flag for more)")
	fs.Var(&tags, "tag", "a `tag` whose entries to invalidate (repeat the flag for more)")
	clear := fs.Bool("clear", false, "invalidate every entry of the namespace")
	create := fs.Bool("create-tables", false, "create the tables of transactional invalidation first, if missing")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if len(keys) == 0 && len(tags) == 0 && !*clear && !*create {
		fs.Usage()
		return errors.New("invalidate: nothing to do: give -key, -tag, -clear or -create-tables")
	}
	target := resolvePostgres(*databaseURL)
	cfg, err := target.poolConfig("pgflight-invalidate")
	if err != nil {
		return fmt.Errorf("invalidate: %w", err)
	}
	cfg.MaxConns = 1
	ctx, cancel := context.WithTimeout(ctx, invalidateTimeout)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("invalidate: %w", err)
	}
	defer pool.Close()
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if *create {
			if err := pglock.CreateOutbox(ctx, tx); err != nil {
				return err
			}
		}
		if err := pglock.Invalidate(ctx, tx, *namespace, keys...); err != nil {
			return err
		}
		if err := pglock.InvalidateTags(ctx, tx, *namespace, tags...); err != nil {
			return err
		}
		if *clear {
			return pglock.Clear(ctx, tx, *namespace)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("invalidate in %s: %w", target, err)
	}
	var done []string
	if *create {
		done = append(done, "tables present")
	}
	if len(keys) > 0 {
		done = append(done, fmt.Sprintf("%d keys", len(keys)))
	}
	if len(tags) > 0 {
		done = append(done, fmt.Sprintf("%d tags", len(tags)))
	}
	if *clear {
		done = append(done, "the whole namespace")
	}
	fmt.Fprintf(stdout, "invalidation committed in %s, namespace %s: %s\n", target, *namespace, strings.Join(done, ", "))
	return nil
}
