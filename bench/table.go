package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// A col is one column of a scenario's table: the median of a metric.
type col struct {
	head   string
	key    string
	format func(float64) string
}

// A ratio compares two contenders on a metric, repetition by repetition.
type ratio struct {
	a, b, key, label string
}

// tableSpec says how a scenario is reported.
type tableSpec struct {
	cols   []col
	ratios []ratio
}

// specs returns how each scenario is reported.
func specs() map[string]tableSpec {
	coldStart := tableSpec{
		cols: []col{{"computations per key", "per_key", dec2}, {"most for one key", "max_key", num},
			{"all keys served, ms", "wall", msec}, {"keys served/s", "throughput", rate},
			{"p50 ms", "p50", msec}, {"p99 ms", "p99", msec}, {"max ms", "max", msec},
			{"fail-opens", "fail_opens", num}, {"'out of shared memory'", "oom", num}, {"errors", "errors", num},
			{"peak PG conns", "conns", num}, {"peak advisory locks held", "locks_held", num}},
		ratios: []ratio{{"pgflight", "none", "throughput", "keys served/s"},
			{"pgflight-tx", "none", "throughput", "keys served/s"},
			{"recipe", "none", "throughput", "keys served/s"},
			{"singleflight", "none", "throughput", "keys served/s"},
			{"pgflight", "pgflight-tx", "throughput", "keys served/s"}},
	}
	return map[string]tableSpec{
		"coldstart-small": coldStart,
		"coldstart-large": coldStart,
		"stampede": {
			cols: []col{{"computations", "computations", num}, {"first computation starts, ms", "start", msec},
				{"p50 ms", "p50", msec}, {"p99 ms", "p99", msec},
				{"max ms", "max", msec}, {"fan-out ms", "fanout", msec}, {"peak PG conns", "conns", num},
				{"peak Redis clients", "redis", num}, {"errors", "errors", num}},
			ratios: []ratio{{"pgflight", "sturdyc", "p50", "caller p50"}, {"pgflight", "sturdyc", "max", "caller max"},
				{"pgflight", "recipe", "p50", "caller p50"}, {"pgflight", "recipe", "max", "caller max"},
				{"pgflight-tx", "sturdyc", "p50", "caller p50"}, {"pgflight", "pgflight-tx", "p50", "caller p50"}},
		},
		"crash": {
			cols: []col{{"computations (survivors)", "computations", num},
				{"every survivor served, ms after the kill", "recovery", msec},
				{"of which takeover ms", "takeover", msec}, {"and fan-out ms", "fanout", msec}, {"survivors' p50 ms", "p50", msec},
				{"survivors' max ms", "max", msec}, {"errors", "errors", num}, {"peak PG conns", "conns", num}},
			ratios: []ratio{{"pgflight", "recipe", "recovery", "time until every survivor is served"},
				{"pgflight", "pgflight-tx", "recovery", "time until every survivor is served"}},
		},
		"expiry": {
			cols: []col{{"computations", "computations", num}, {"expiries", "expiries", num},
				{"computations per TTL period", "per_period", dec2}, {"per expiry", "per_expiry", dec2},
				{"most in one expiry", "max_wave", num},
				{"calls/s", "throughput", rate}, {"p50 ms", "p50", msec}, {"p99 ms", "p99", msec}, {"max ms", "max", msec},
				{"errors", "errors", num}, {"peak PG conns", "conns", num}},
			ratios: []ratio{{"pgflight", "none", "throughput", "calls/s"}},
		},
		"expiry-stale": {
			cols: []col{{"computations per TTL period", "per_period", dec2}, {"duplicates", "dups", num},
				{"flights that waited for a computation", "waits", num},
				{"calls around a recomputation", "rc_calls", num}, {"their p50 ms", "rc_p50", msec},
				{"their p99 ms", "rc_p99", msec}, {"their max ms", "rc_max", msec},
				{"other calls' p99 ms", "out_p99", msec}, {"all calls' max ms", "max", msec},
				{"stale hits", "stale_hits", num}, {"early refreshes tried", "early", num},
				{"refreshes that computed", "refreshes", num}, {"refreshes skipped", "skipped", num},
				{"calls/s", "throughput", rate}, {"errors", "errors", num}, {"peak PG conns", "conns", num}},
			ratios: []ratio{{"pgflight-stale", "pgflight", "rc_p99", "p99 of the calls around a recomputation"},
				{"pgflight-stale", "pgflight", "per_period", "computations per TTL period"},
				{"pgflight-xfetch", "pgflight", "rc_p99", "p99 of the calls around a recomputation"},
				{"pgflight-xfetch", "pgflight", "per_period", "computations per TTL period"}},
		},
		"zipf": {
			cols: []col{{"computations per key", "per_key", dec2}, {"most for one key", "max_key", num},
				{"keys asked", "keys", num}, {"calls/s", "throughput", rate}, {"worker CPU µs per call", "cpu", dec2},
				{"p50 ms", "p50", msec},
				{"p99 ms", "p99", msec}, {"max ms", "max", msec}, {"errors", "errors", num},
				{"peak PG conns", "conns", num}, {"fail-opens", "fail_opens", num}},
			ratios: []ratio{{"pgflight", "none", "throughput", "calls/s"}, {"pgflight", "recipe", "throughput", "calls/s"},
				{"pgflight-tx", "none", "throughput", "calls/s"},
				{"pgflight", "none", "per_key", "computations per key"},
				{"pgflight", "none", "cpu", "worker CPU per call"}},
		},
		"hits": {
			cols: []col{{"calls/s", "throughput", rate}, {"worker CPU µs per call", "cpu", dec2},
				{"p50 ms", "p50", msec}, {"p99 ms", "p99", msec},
				{"errors", "errors", num}, {"peak PG conns", "conns", num},
				{"peak Redis clients", "redis", num}},
			ratios: []ratio{{"pgflight", "none", "throughput", "calls/s"}, {"pgflight", "none", "cpu", "worker CPU per call"},
				{"recipe", "none", "throughput", "calls/s (A/A control: the recipe's hit is none's GET plus an md5)"},
				{"singleflight", "none", "throughput", "calls/s"}},
		},
		"manykeys": {
			cols: []col{{"keys", "calls", num}, {"computations", "computations", num}, {"all served, ms", "elapsed", msec},
				{"peak advisory locks held", "locks_held", num}, {"peak held + awaited", "locks", num},
				{"documented cap", "cap", num}, {"peak pglock conns in use", "in_use", num},
				{"fail-opens", "fail_opens", num}, {"'out of shared memory'", "oom", num}, {"errors", "errors", num}},
		},
	}
}

// num formats a count; a median of an even number of runs may end in .5.
func num(x float64) string {
	switch {
	case math.IsNaN(x):
		return "–"
	case math.IsInf(x, 1):
		return "never"
	case x == math.Trunc(x):
		return strconv.FormatFloat(x, 'f', 0, 64)
	}
	return strconv.FormatFloat(x, 'f', 1, 64)
}

// msec formats milliseconds.
func msec(x float64) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return num(x)
	}
	if x >= 1000 {
		return strconv.FormatFloat(x, 'f', 0, 64)
	}
	return strconv.FormatFloat(x, 'f', 1, 64)
}

// dec2 formats with two decimals.
func dec2(x float64) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return num(x)
	}
	return strconv.FormatFloat(x, 'f', 2, 64)
}

// rate formats a rate with thousands separators.
func rate(x float64) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return num(x)
	}
	s := strconv.FormatFloat(math.Round(x), 'f', 0, 64)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// ratioText formats a ratio as "1.02x".
func ratioText(x float64) string {
	if math.IsNaN(x) {
		return "–"
	}
	return fmt.Sprintf("%.2fx", x)
}
