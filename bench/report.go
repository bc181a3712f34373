package main

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// write writes the report and the chart.
func (s *suite) write() error {
	var chart bytes.Buffer
	s.chart(&chart)
	if err := os.MkdirAll(filepath.Dir(s.o.svg), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(s.o.svg, chart.Bytes(), 0o644); err != nil {
		return err
	}
	var b bytes.Buffer
	s.report(&b)
	if err := os.WriteFile(s.o.out, b.Bytes(), 0o644); err != nil {
		return err
	}
	s.logf("wrote %s and %s", s.o.out, s.o.svg)
	return nil
}

// report writes BENCHMARKS.md.
func (s *suite) report(b *bytes.Buffer) {
	o, m := s.o, s.machine
	fmt.Fprintf(b, "# pgflight benchmarks\n\n")
	fmt.Fprintf(b, "Written by `%s` (the bench module, [bench/](bench/)) on %s; the run took %v.",
		o.command, m.Date.Format("2006-01-02 15:04 UTC"), s.took.Round(time.Second))
	if o.quick {
		fmt.Fprintf(b, " **Quick mode**: %d repetition(s) and shortened loops, a smoke test, not the numbers to quote.", o.runs)
	}
	fmt.Fprintf(b, " Every table gives the median of %d repetition(s); every ratio is computed between contenders of the same repetition (they run interleaved, in a rotating order), and the median of those ratios is given.\n\n", o.runs)

	fmt.Fprintf(b, "## Targets (issues 3, 5 and 8)\n\n| target | measured | met |\n|---|---|---|\n")
	for _, t := range s.targets() {
		fmt.Fprintf(b, "| %s | %s | %s |\n", t.target, t.measured, t.verdict)
	}
	if rel, err := filepath.Rel(filepath.Dir(o.out), o.svg); err == nil {
		fmt.Fprintf(b, "\n![Stampede and crash: caller latency per contender](%s)\n", filepath.ToSlash(rel))
	}

	fmt.Fprintf(b, "\n## Machine\n\n")
	fmt.Fprintf(b, "- pgflight at `%s`\n", m.Revision)
	fmt.Fprintf(b, "- %d cores: %s; %s\n", m.Cores, m.CPU, m.Kernel)
	fmt.Fprintf(b, "- %s; PostgreSQL %s; Redis %s; both on loopback, with their default settings\n", m.GoVersion, m.Postgres, m.Redis)
	fmt.Fprintf(b, "- Load average (1, 5, 15 min) before: %s; after: %s. The machine is shared with other engineers' test suites, so absolute times are noisy: compare the ratios, which pair contenders of the same repetition.\n", m.LoadBefore, m.LoadAfter)
	fmt.Fprintf(b, "\nLoopback floors, measured at the start of the run (median of %d, the operations in turn). On this box a round trip takes either about 15 µs (client and server meet on one core) or about 60 µs (a wake-up across cores), so these medians move between runs:\n\n| operation | round trips | p50 |\n|---|---|---|\n", floorRounds)
	for _, f := range m.Floors {
		fmt.Fprintf(b, "| %s | %d | %.0f µs |\n", f.Name, f.RTTs, float64(f.P50)/float64(time.Microsecond))
	}

	s.method(b)
	desc := s.descriptions()
	sp := specs()
	for _, sc := range scenarios(o) {
		runs, ok := s.runs[sc.name]
		if !ok {
			continue
		}
		title := sc.title
		if title == "" {
			title = strings.ToUpper(sc.name[:1]) + sc.name[1:]
		}
		fmt.Fprintf(b, "\n## %s\n\n%s", title, desc[sc.name])
		if n := sc.repetitions(o.runs); n < o.runs {
			fmt.Fprintf(b, " **%d repetition(s)**, not %d, to keep the full run short: the medians below are of %d.", n, o.runs, n)
		}
		fmt.Fprintf(b, "\n\n")
		spec := sp[sc.name]
		fmt.Fprintf(b, "| contender |")
		for _, c := range spec.cols {
			fmt.Fprintf(b, " %s |", c.head)
		}
		fmt.Fprintf(b, "\n|---|%s\n", strings.Repeat("---|", len(spec.cols)))
		for _, name := range s.contendersOf(sc) {
			fmt.Fprintf(b, "| %s |", label(name))
			for _, c := range spec.cols {
				fmt.Fprintf(b, " %s |", c.format(median(column(runs[name], c.key))))
			}
			fmt.Fprintln(b)
		}
		for _, r := range spec.ratios {
			rs := ratios(runs[r.a], runs[r.b], r.key)
			if len(rs) == 0 {
				continue
			}
			fmt.Fprintf(b, "\n- %s vs %s, %s: **%s** (per repetition: %s)", label(r.a), label(r.b), r.label, ratioText(median(rs)), list(rs, ratioText))
		}
		for _, p := range sc.pairs {
			rs := pairRatios(s.pairs[sc.name][pairName(p)], "throughput")
			if len(rs) == 0 {
				continue
			}
			fmt.Fprintf(b, "\n- %s vs %s, calls/s, **taking turns in one fleet** (%v each): **%s** (per repetition: %s)",
				p[1], p[0], pairSlice, ratioText(median(rs)), list(rs, ratioText))
		}
		fmt.Fprintf(b, "\n\nReproduce: `cd bench && go run . -scenarios %s`\n", sc.name)
	}

	if a, err := os.ReadFile("analysis.md"); err == nil {
		fmt.Fprintf(b, "\n## Analysis\n\nWritten by hand from this run and the investigation runs it cites ([bench/analysis.md](bench/analysis.md)); regenerating the numbers above does not update it.\n\n%s", a)
	}
	if len(s.notes) > 0 {
		fmt.Fprintf(b, "\n## Notes from the run\n\n")
		for _, n := range s.notes {
			fmt.Fprintf(b, "- %s\n", strings.ReplaceAll(n, "\n", " "))
		}
	}
	fmt.Fprintf(b, "\n## Reproduce\n\n```\n%s\n```\n\n", o.command)
	fmt.Fprintf(b, "`cd bench && go run . -quick` runs everything once with shorter loops and cold starts of half the keys (about a minute); `-scenarios` and `-contenders` select (for example `-scenarios stampede,crash -contenders sturdyc,pgflight`, or `-scenarios coldstart` for both cold starts); `-database-url` and `-redis-url` (or DATABASE_URL and REDIS_URL) choose the servers; `go run . -h` lists every setting.\n")
}

// list formats xs with f, separated by spaces.
func list(xs []float64, f func(float64) string) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = f(x)
	}
	return strings.Join(s, " ")
}

// values returns metric key of contender name in scenario sc, one per
// repetition that ran.
func (s *suite) values(sc, name, key string) []float64 {
	return column(s.runs[sc][name], key)
}

// medianOf returns the median of values.
func (s *suite) medianOf(sc, name, key string) float64 {
	return median(s.values(sc, name, key))
}

// maxOf returns the largest of values, or NaN.
func (s *suite) maxOf(sc, name, key string) float64 {
	v := s.values(sc, name, key)
	if len(v) == 0 {
		return math.NaN()
	}
	return slices.Max(v)
}
