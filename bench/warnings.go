package main

import (
	"context"
	"log/slog"
	"slices"
	"sync"
)

// warnings is a slog.Handler that keeps the distinct messages logged, with
// their error, so that the worker can report them (pgflight rate-limits its
// warnings, so this is a sample, not a count).
type warnings struct {
	mu   sync.Mutex
	seen []string
}

// Enabled reports that every level is kept.
func (w *warnings) Enabled(context.Context, slog.Level) bool { return true }

// Handle keeps r's message and error, if they are new.
func (w *warnings) Handle(_ context.Context, r slog.Record) error {
	msg := r.Message
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "err" {
			msg += ": " + a.Value.String()
		}
		return true
	})
	w.mu.Lock()
	defer w.mu.Unlock()
	if !slices.Contains(w.seen, msg) && len(w.seen) < 20 {
		w.seen = append(w.seen, msg)
	}
	return nil
}

// WithAttrs returns w: attributes other than err are not kept.
func (w *warnings) WithAttrs([]slog.Attr) slog.Handler { return w }

// WithGroup returns w: groups are not kept.
func (w *warnings) WithGroup(string) slog.Handler { return w }

// list returns the messages kept.
func (w *warnings) list() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.seen)
}
