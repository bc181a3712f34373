// Command pgflight demonstrates and inspects pgflight, which makes a fleet
// of processes compute each cached value once.
//
// Usage:
//
//	pgflight demo [flags]    start worker processes that all miss one cold key
//	                         at once, then many (a cold start), and compare no
//	                         coordination, in-process coalescing and pgflight
//	                         on PostgreSQL
//	pgflight locks [flags]   list the advisory locks held or awaited in the database
//	                         (-watch: again every -interval until interrupted)
//	pgflight inspect [flags] KEY
//	                         show the entry stored for KEY in Redis: times, size,
//	                         kind and value (exit status 0 found, 1 not, 2 error)
//	pgflight help            print this help
//
// The demo and locks find PostgreSQL through -database-url, else
// DATABASE_URL, else the usual PG* variables, else
// postgres://127.0.0.1:5432/postgres. The demo and inspect find Redis
// through -redis-url, else REDIS_URL, else redis://127.0.0.1:6379/0; if
// either server is unreachable the demo says so and runs its comparison in
// one process on the embedded default.
//
// Run "pgflight <command> -h" for each command's flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// main runs the command line, and on failure reports it and exits 1.
func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "pgflight:", err)
		os.Exit(exitStatus(err))
	}
}

// A statusError is an error that ends the command with an exit status
// other than 1.
type statusError struct {
	code int
	err  error
}

func (e *statusError) Error() string { return e.err.Error() }
func (e *statusError) Unwrap() error { return e.err }

// exitStatus returns the exit status for err, a non-nil error from run:
// a statusError's, else 1.
func exitStatus(err error) int {
	var se *statusError
	if errors.As(err, &se) {
		return se.code
	}
	return 1
}

// usage is the help text printed by "pgflight help" and on a bad command.
const usage = `usage: pgflight <command> [flags]

commands:
  demo     start worker processes that all miss one cold key at once, then many
           (a cold start), and compare no coordination, in-process coalescing
           and pgflight on PostgreSQL
  locks    list the advisory locks held or awaited in the database; -watch
           lists them again every -interval until interrupted
  inspect  show the entry stored for a key in Redis: its times, size, kind and
           value (exit status 0 found, 1 not found, 2 error)
  invalidate
           invalidate keys (-key), tagged entries (-tag) or a whole namespace
           (-clear) across the fleet, in one transaction; -create-tables
           creates the tables that needs
  help     print this help

Run "pgflight <command> -h" for the command's flags.
`

// run runs the command named by args[0] with the rest of args as its flags,
// writing its report to stdout and diagnostics to stderr. ctx ends the
// command early (the demo kills its workers).
//
// No password reaches stdout, stderr or the error returned: every secret
// in args and in the connection variables is masked in all of them (see
// redactor), whatever wrote it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	rd := newRedactor(args)
	out, errOut := rd.writer(stdout), rd.writer(stderr)
	if len(args) > 0 && args[0] == workerCommand {
		// A worker's stdout is the demo's pipe from it, not output: a
		// masked number would break its reports. The demo's own run
		// scrubs whatever of them it prints.
		err := runWorker(ctx, args[1:], os.Stdin, stdout, errOut)
		return rd.error(errors.Join(err, errOut.Flush()))
	}
	err := dispatch(ctx, args, out, errOut)
	return rd.error(errors.Join(err, out.Flush(), errOut.Flush()))
}

// dispatch runs the command named by args[0], as run describes.
func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command")
	}
	cmd, args := args[0], args[1:]
	var err error
	switch cmd {
	case "demo":
		err = runDemo(ctx, args, stdout, stderr)
	case "locks":
		err = runLocks(ctx, args, stdout, stderr)
	case "inspect":
		err = runInspect(ctx, args, stdout, stderr)
	case "invalidate":
		err = runInvalidate(ctx, args, stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
	if errors.Is(err, flag.ErrHelp) {
		return nil // the FlagSet printed the command's help
	}
	return err
}

// parseFlags parses args into fs, which prints its own errors and help, and
// rejects arguments left over after the flags.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	return nil
}
