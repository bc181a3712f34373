package main

import (
	"fmt"
	"math"
)

// A targetRow is one target of issue 3, 5 or 8 and how the run did.
type targetRow struct {
	target, measured, verdict string
}

// targets checks pgflight against the targets of issues 3, 5 and 8, on
// medians and on ratios between contenders of the same repetition. Every
// target is pgflight's as configured by default; where pgflight (transaction
// mode) ran, the measured text gives its figure beside it.
func (s *suite) targets() []targetRow {
	var rows []targetRow
	add := func(target, measured string, ok, ran bool) {
		v := "yes"
		switch {
		case !ran:
			v, measured = "not run", "–"
		case !ok:
			v = "**no**"
		}
		rows = append(rows, targetRow{target, measured, v})
	}
	ran := func(sc string, names ...string) bool {
		for _, n := range names {
			if len(s.values(sc, n, "calls")) == 0 {
				return false
			}
		}
		return true
	}
	ratio := func(sc, a, b, key string) float64 { return median(ratios(s.runs[sc][a], s.runs[sc][b], key)) }
	// tx returns "; transaction mode: " and f(x) for pgflight-tx's x, or ""
	// if it did not run.
	tx := func(sc string, x func(name string) float64, f func(float64) string) string {
		if !ran(sc, "pgflight-tx") {
			return ""
		}
		return "; transaction mode: " + f(x("pgflight-tx"))
	}
	medianOf := func(sc, key string) func(string) float64 {
		return func(name string) float64 { return s.medianOf(sc, name, key) }
	}
	maxOf := func(sc, key string) func(string) float64 {
		return func(name string) float64 { return s.maxOf(sc, name, key) }
	}
	ratioTo := func(sc, b, key string) func(string) float64 {
		return func(name string) float64 { return ratio(sc, name, b, key) }
	}

	comps := s.values("stampede", "pgflight", "computations")
	add("stampede: exactly 1 computation", "pgflight: "+list(comps, num)+" (per repetition)"+
		tx("stampede", maxOf("stampede", "computations"), func(x float64) string { return num(x) + " at most" }),
		allEqual(comps, 1), ran("stampede", "pgflight"))
	r := ratio("stampede", "pgflight", "sturdyc", "p50")
	add("stampede: pgflight p50 ≤ 1.05x sturdyc's", fmt.Sprintf("%s (%s ms vs %s ms)", ratioText(r),
		msec(s.medianOf("stampede", "pgflight", "p50")), msec(s.medianOf("stampede", "sturdyc", "p50")))+
		tx("stampede", ratioTo("stampede", "sturdyc", "p50"), ratioText),
		r <= 1.05, ran("stampede", "pgflight", "sturdyc"))
	r = ratio("stampede", "pgflight", "sturdyc", "max")
	add("stampede: pgflight max ≤ 1.15x sturdyc's", fmt.Sprintf("%s (%s ms vs %s ms)", ratioText(r),
		msec(s.medianOf("stampede", "pgflight", "max")), msec(s.medianOf("stampede", "sturdyc", "max")))+
		tx("stampede", ratioTo("stampede", "sturdyc", "max"), ratioText),
		r <= 1.15, ran("stampede", "pgflight", "sturdyc"))
	c := s.maxOf("stampede", "pgflight", "conns")
	add(fmt.Sprintf("stampede: peak PostgreSQL connections ≤ %d (one per process; the harness's sampler not counted)", s.o.procs),
		fmt.Sprintf("%s at most, median %s", num(c), num(s.medianOf("stampede", "pgflight", "conns")))+
			tx("stampede", maxOf("stampede", "conns"), func(x float64) string { return num(x) + " at most" }),
		c <= float64(s.o.procs), ran("stampede", "pgflight"))

	rec, errs := s.medianOf("crash", "pgflight", "recovery"), s.maxOf("crash", "pgflight", "errors")
	add(fmt.Sprintf("crash: every survivor has a value ≤ 120 ms after the kill (computation %v), no errors", s.o.compute),
		fmt.Sprintf("%s ms (median; per repetition %s), errors %s at most (recipe: %s ms)", msec(rec),
			list(s.values("crash", "pgflight", "recovery"), msec), num(errs), msec(s.medianOf("crash", "recipe", "recovery")))+
			tx("crash", medianOf("crash", "recovery"), func(x float64) string { return msec(x) + " ms" }),
		rec <= 120 && errs == 0, ran("crash", "pgflight"))

	pp, errs := s.medianOf("expiry", "pgflight", "per_period"), s.maxOf("expiry", "pgflight", "errors")
	wave := s.maxOf("expiry", "pgflight", "max_wave")
	add("expiry: ≤ 1 computation per TTL period, no errors",
		fmt.Sprintf("at most %s computation in any one expiry; %s per TTL period, %s per expiry (medians); errors %s",
			num(wave), dec2(pp), dec2(s.medianOf("expiry", "pgflight", "per_expiry")), num(errs)),
		wave <= 1 && errs == 0, ran("expiry", "pgflight"))

	// Issue 5. A stale hit returns at once, so no caller waits for the
	// recomputation: no flight misses, and the p99 of the calls around a
	// recomputation stays below the computation time. At hit latency: that
	// p99 is within 1.25x of the other calls', which are all hits. The
	// fleet computes once per refresh.
	without := func(key string) float64 { return s.medianOf("expiry-stale", "pgflight", key) }
	for _, v := range []struct{ name, what string }{
		{"pgflight-stale", fmt.Sprintf("expiry with stale (StaleTTL %v)", s.o.expiryStale)},
		{"pgflight-xfetch", "expiry with stale and XFetch β = 1"},
	} {
		med := func(key string) float64 { return s.medianOf("expiry-stale", v.name, key) }
		ok := ran("expiry-stale", v.name)
		waits, p99 := s.maxOf("expiry-stale", v.name, "waits"), med("rc_p99")
		add(fmt.Sprintf("%s: no caller waits for the recomputation (no flight misses; p99 of the calls around a recomputation < the %v computation)", v.what, s.o.expiryCompute),
			fmt.Sprintf("flights that waited: %s at most (without stale: %s); p99 around a recomputation %s ms (without stale: %s ms)",
				num(waits), num(without("waits")), msec(p99), msec(without("rc_p99"))),
			waits == 0 && p99 < ms(int64(s.o.expiryCompute)), ok)
		rr := med("rc_ratio")
		add(v.what+": p99 of the calls around a recomputation at hit latency (≤ 1.25x the other calls' p99)",
			fmt.Sprintf("%s (%s ms vs %s ms; per repetition %s); without stale: %s", ratioText(rr), msec(p99), msec(med("out_p99")),
				list(s.values("expiry-stale", v.name, "rc_ratio"), ratioText), ratioText(without("rc_ratio"))),
			rr <= 1.25, ok)
		pp, dups, errs := med("per_period"), s.maxOf("expiry-stale", v.name, "dups"), s.maxOf("expiry-stale", v.name, "errors")
		target, met := v.what+": ≤ 1 computation per TTL period for the fleet, no duplicate, no errors",
			math.Round(pp*100) <= 100 && dups == 0 && errs == 0
		if v.name == "pgflight-xfetch" {
			// XFetch refreshes before the expiry, so by design its
			// periods are shorter than a TTL plus a computation.
			target, met = v.what+": one computation per refresh for the fleet (no duplicate), no errors", dups == 0 && errs == 0
		}
		add(target, fmt.Sprintf("%s per TTL period (median; per repetition %s); duplicates %s at most; errors %s (without stale: %s per TTL period)",
			dec2(pp), list(s.values("expiry-stale", v.name, "per_period"), dec2), num(dups), num(errs),
			dec2(without("per_period"))), met, ok)
	}

	pk := s.medianOf("zipf", "pgflight", "per_key")
	zipf := fmt.Sprintf("zipf (%d × %d, %s keys)", s.o.procs, s.o.zipfGoroutines, rate(float64(s.o.zipfKeys)))
	add(zipf+": 1.00 computations per key", fmt.Sprintf("%s (none: %s)%s", dec2(pk), dec2(s.medianOf("zipf", "none", "per_key")),
		tx("zipf", medianOf("zipf", "per_key"), dec2)),
		math.Round(pk*100) <= 100, ran("zipf", "pgflight"))
	// Throughput: taking turns in one fleet where that ran, as it pairs
	// the two under the same background load; separate fleets otherwise.
	tput := func(sc string) (float64, string) {
		sep := ratio(sc, "pgflight", "none", "throughput")
		text := fmt.Sprintf("separate fleets: %s", ratioText(sep))
		if rs := pairRatios(s.pairs[sc]["none+pgflight"], "throughput"); len(rs) > 0 {
			r := median(rs)
			text = fmt.Sprintf("%s taking turns in one fleet (per repetition %s); %s", ratioText(r), list(rs, ratioText), text)
			if aa := pairRatios(s.pairs[sc]["none+none"], "throughput"); len(aa) > 0 {
				text += fmt.Sprintf("; A/A control none vs none taking turns: %s", ratioText(median(aa)))
			}
			return r, text
		}
		return sep, text
	}
	r, text := tput("zipf")
	add(zipf+": throughput ≥ 1.0x no protection", text, r >= 1.0, ran("zipf", "pgflight", "none"))
	r, text = tput("hits")
	add("hits on Redis: throughput ≥ 0.95x no protection", text, r >= 0.95, ran("hits", "pgflight", "none"))

	// Issue 8: cold starts.
	for _, cs := range []struct {
		name  string
		c     coldStart
		small bool // its targets are throughput and connections; the large one's, errors
	}{{"coldstart-small", s.o.coldSmall, true}, {"coldstart-large", s.o.coldLarge, false}} {
		sc := cs.name
		what := fmt.Sprintf("cold start (%d × %d, %s keys, %v)", s.o.procs, cs.c.goroutines, rate(float64(cs.c.keys)), cs.c.compute)
		pk := s.maxOf(sc, "pgflight", "per_key")
		add(what+": 1.00 computations per key in every repetition",
			fmt.Sprintf("%s at most (per repetition %s); most for one key %s; fail-opens %s (median)%s; none: %s",
				dec2(pk), list(s.values(sc, "pgflight", "per_key"), dec2), num(s.maxOf(sc, "pgflight", "max_key")),
				num(s.medianOf(sc, "pgflight", "fail_opens")), tx(sc, maxOf(sc, "per_key"), dec2), dec2(s.medianOf(sc, "none", "per_key"))),
			math.Round(pk*100) <= 100, ran(sc, "pgflight"))
		if !cs.small {
			errs, oom := s.maxOf(sc, "pgflight", "errors"), s.maxOf(sc, "pgflight", "oom")
			text := fmt.Sprintf("errors %s, 'out of shared memory' %s (at most); fail-opens %s (median)", num(errs), num(oom),
				num(s.medianOf(sc, "pgflight", "fail_opens")))
			if ran(sc, "pgflight-tx") {
				text += fmt.Sprintf("; transaction mode: errors %s, 'out of shared memory' %s, fail-opens %s", num(s.maxOf(sc, "pgflight-tx", "errors")),
					num(s.maxOf(sc, "pgflight-tx", "oom")), num(s.medianOf(sc, "pgflight-tx", "fail_opens")))
			}
			add(what+": no errors, no 'out of shared memory' (53200)", text, errs == 0 && oom == 0, ran(sc, "pgflight"))
			continue
		}
		r := ratio(sc, "pgflight", "none", "throughput")
		add(what+": throughput ≥ 0.95x no protection (keys served/s, i.e. all keys served in ≤ 1/0.95 of none's wall time)",
			fmt.Sprintf("%s (per repetition %s; %s vs %s keys/s)%s", ratioText(r), list(ratios(s.runs[sc]["pgflight"], s.runs[sc]["none"], "throughput"), ratioText),
				rate(s.medianOf(sc, "pgflight", "throughput")), rate(s.medianOf(sc, "none", "throughput")), tx(sc, ratioTo(sc, "none", "throughput"), ratioText)),
			r >= 0.95, ran(sc, "pgflight", "none"))
		c := s.maxOf(sc, "pgflight", "conns")
		add(fmt.Sprintf("%s: peak PostgreSQL connections ≤ %d (1 per process; the harness's sampler not counted)", what, s.o.procs),
			fmt.Sprintf("%s at most, median %s%s", num(c), num(s.medianOf(sc, "pgflight", "conns")),
				tx(sc, maxOf(sc, "conns"), func(x float64) string { return num(x) + " at most" })),
			c <= float64(s.o.procs), ran(sc, "pgflight"))
	}

	many := rate(float64(s.o.manyKeys))
	oom, errs, held := s.maxOf("manykeys", "pgflight", "oom"), s.maxOf("manykeys", "pgflight", "errors"), s.maxOf("manykeys", "pgflight", "locks_held")
	add(fmt.Sprintf("%s distinct keys missed at once by one process: no 'out of shared memory', no errors", many),
		fmt.Sprintf("'out of shared memory' %s, errors %s (at most); peak locks held %s, held or awaited %s; fail-opens %s (median)",
			num(oom), num(errs), num(held), num(s.maxOf("manykeys", "pgflight", "locks")), num(s.medianOf("manykeys", "pgflight", "fail_opens"))),
		oom == 0 && errs == 0, ran("manykeys", "pgflight"))
	oom, all, cap := s.maxOf("manykeys", "pgflight-tx", "oom"), s.maxOf("manykeys", "pgflight-tx", "locks"), s.maxOf("manykeys", "pgflight-tx", "cap")
	add(fmt.Sprintf("%s distinct keys missed at once, transaction mode: no 'out of shared memory', peak advisory locks ≤ its documented cap", many),
		fmt.Sprintf("'out of shared memory' %s; peak locks held %s, held or awaited %s; cap %s; fail-opens %s",
			num(oom), num(s.maxOf("manykeys", "pgflight-tx", "locks_held")), num(all), num(cap), num(s.medianOf("manykeys", "pgflight-tx", "fail_opens"))),
		oom == 0 && all <= cap, ran("manykeys", "pgflight-tx"))
	return rows
}

// allEqual reports whether xs is not empty and every x equals v.
func allEqual(xs []float64, v float64) bool {
	for _, x := range xs {
		if x != v {
			return false
		}
	}
	return len(xs) > 0
}
