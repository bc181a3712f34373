package main

import (
	"bytes"
	"cmp"
	"errors"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5/pgconn"
)

// A redactor knows the secrets that the command was given, and masks them
// in whatever it writes: its report, its diagnostics, the lines its worker
// processes write and the error that ends it. The connection strings are
// shown redacted where the command prints them on purpose; the redactor is
// for everything else, such as a driver's error message that quotes its
// input. It masks each secret wherever its text appears, so a password that
// is also an everyday word ("postgres") or a number masks those too: output
// that is harder to read, never a password on the screen.
type redactor struct {
	r *strings.Replacer // nil if there is no secret
}

// newRedactor returns a redactor of the secrets in args, in the
// connection-string variables the command reads (DATABASE_URL, REDIS_URL,
// a worker's) and in the PG* variables that hold a secret (PGPASSWORD,
// PGSSLPASSWORD).
func newRedactor(args []string) *redactor {
	var secrets []string
	for _, a := range args {
		secrets = append(secrets, dsnSecrets(a)...)
		if _, v, ok := strings.Cut(a, "="); ok { // -database-url=…
			secrets = append(secrets, dsnSecrets(v)...)
		}
	}
	for _, kv := range os.Environ() {
		name, v, _ := strings.Cut(kv, "=")
		switch {
		case name == "DATABASE_URL" || name == "REDIS_URL" || name == workerDatabaseEnv || name == workerRedisEnv:
			secrets = append(secrets, dsnSecrets(v)...)
		case strings.HasPrefix(name, "PG") && name != "PGPASSFILE" && secretParam(name):
			secrets = append(secrets, v)
		}
	}
	for _, s := range secrets {
		if strings.Contains(s, "\n") { // a line of it may reach the output alone
			secrets = append(secrets, strings.Split(s, "\n")...)
		}
	}
	secrets = slices.DeleteFunc(secrets, func(s string) bool { return strings.TrimSpace(s) == "" })
	if len(secrets) == 0 {
		return &redactor{}
	}
	// Longest first: where two secrets start at one place, the
	// Replacer takes the first it was given.
	slices.SortFunc(secrets, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	pairs := make([]string, 0, 2*len(secrets))
	for _, s := range slices.Compact(secrets) {
		pairs = append(pairs, s, mask)
	}
	return &redactor{r: strings.NewReplacer(pairs...)}
}

// scrub returns s with every secret masked.
func (rd *redactor) scrub(s string) string {
	if rd.r == nil {
		return s
	}
	return rd.r.Replace(s)
}

// error returns err with every secret masked in its message; it still
// unwraps to err.
func (rd *redactor) error(err error) error {
	if err == nil {
		return nil
	}
	return &redactedError{msg: rd.scrub(err.Error()), err: err}
}

// A redactedError is an error whose message has its secrets masked.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// maxLine is how much a scrubWriter holds of a line before it writes it
// anyway.
const maxLine = 64 << 10

// A scrubWriter writes whole lines to w with the secrets masked, so that a
// secret split across two writes is still found. It is safe for concurrent
// use by multiple goroutines. Flush writes what is left of a last line.
type scrubWriter struct {
	rd  *redactor
	mu  sync.Mutex
	w   io.Writer
	buf []byte
}

// writer returns a scrubWriter on w.
func (rd *redactor) writer(w io.Writer) *scrubWriter { return &scrubWriter{rd: rd, w: w} }

// Write writes the complete lines of what it has been given so far.
func (s *scrubWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf = append(s.buf, p...)
	n := bytes.LastIndexByte(s.buf, '\n') + 1
	if n == 0 && len(s.buf) < maxLine {
		return len(p), nil
	}
	if n == 0 {
		n = len(s.buf)
	}
	_, err := io.WriteString(s.w, s.rd.scrub(string(s.buf[:n])))
	s.buf = append(s.buf[:0], s.buf[n:]...)
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush writes what is left.
func (s *scrubWriter) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.buf) == 0 {
		return nil
	}
	_, err := io.WriteString(s.w, s.rd.scrub(string(s.buf)))
	s.buf = s.buf[:0]
	return err
}

// parseReason says why pgx or go-redis could not parse a connection string,
// without the string. Both quote it in their messages: pgx masks passwords
// on a best-effort basis that misses some malformed strings, and go-redis
// passes net/url's message on, which quotes the whole URL and, for a bad
// escape, the characters of the password that follow the "%".
func parseReason(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		var esc url.EscapeError
		if errors.As(ue.Err, &esc) {
			return "malformed URL: a % not followed by two hex digits (write a % in a password as %25)"
		}
		return "malformed URL (percent-encode any @ / ? # % in a password)"
	}
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) {
		// "cannot parse `<string>`: <why>"
		msg := pe.Error()
		if i := strings.LastIndex(msg, "`: "); i >= 0 {
			return msg[i+len("`: "):]
		}
		return "malformed connection string"
	}
	return err.Error()
}
