package pgflightotel

import (
	"errors"
	"strings"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/pgflight/pgflight"
)

// spanName is the name of a Fetch's span.
const spanName = "pgflight.fetch"

// maxKeyLen bounds the key attribute, in bytes: keys are the caller's,
// of any length.
const maxKeyLen = 128

func (o *Observer) startAttrs(d pgflight.FlightStartData) []attribute.KeyValue {
	kvs := []attribute.KeyValue{keyNamespace.String(d.Namespace), keyLed.Bool(d.Led)}
	if o.keys {
		kvs = append(kvs, keyKey.String(truncate(d.Key, maxKeyLen)))
	}
	return kvs
}

// endSpan sets the outcome and the error, if any, on span and ends it.
func (o *Observer) endSpan(span trace.Span, d pgflight.FlightEndData) {
	if !span.IsRecording() {
		span.End()
		return
	}
	span.SetAttributes(keyOutcome.String(d.Outcome.String()))
	if d.Err != nil && !errors.Is(d.Err, pgflight.ErrMissing) {
		span.RecordError(d.Err)
		span.SetStatus(codes.Error, firstLine(d.Err.Error()))
	}
	span.End()
}

func lockWaitAttrs(d pgflight.LockWaitData, out int) []attribute.KeyValue {
	kvs := []attribute.KeyValue{
		keyDuration.Float64(d.Duration.Seconds()),
		keyOutcome.String(lockOutcomes[out]),
	}
	kvs = appendKeys(kvs, d.Keys)
	if d.TimedOut {
		kvs = append(kvs, keyTimedOut.Bool(true))
	}
	return appendErr(kvs, d.Err)
}

func failOpenAttrs(d pgflight.FailOpenData) []attribute.KeyValue {
	return appendErr(appendKeys(nil, d.Keys), d.Err)
}

func computeAttrs(d pgflight.ComputeData, out int) []attribute.KeyValue {
	kvs := []attribute.KeyValue{
		keyDuration.Float64(d.Duration.Seconds()),
		keyOutcome.String(computeOutcomes[out]),
	}
	return appendErr(appendKeys(kvs, d.Keys), d.Err)
}

func storeAttrs(d pgflight.StoreData) []attribute.KeyValue {
	kvs := []attribute.KeyValue{keyBytes.Int(d.Bytes)}
	return appendErr(appendKeys(kvs, d.Keys), d.Err)
}

func refreshAttrs(d pgflight.RefreshData) []attribute.KeyValue {
	kvs := []attribute.KeyValue{keyStarted.Bool(d.Started), keyEarly.Bool(d.Early)}
	if !d.Started {
		kvs = append(kvs, keySkipped.String(d.Skipped.String()))
	}
	return kvs
}

// appendKeys adds the number of keys of a batch (n > 0).
func appendKeys(kvs []attribute.KeyValue, n int) []attribute.KeyValue {
	if n > 0 {
		kvs = append(kvs, keyKeys.Int(n))
	}
	return kvs
}

// appendErr adds the first line of err's message: a *PanicError's next
// lines are its stack, which belongs in the span's exception event.
func appendErr(kvs []attribute.KeyValue, err error) []attribute.KeyValue {
	if err != nil {
		kvs = append(kvs, keyError.String(firstLine(err.Error())))
	}
	return kvs
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

// truncate cuts s to at most n bytes, on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
