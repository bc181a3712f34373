package pgflight

import (
	"math"
	"testing"
	"time"
)

// With a real random source, an early refresh at remaining time r happens
// with probability P(−δβ·ln U ≥ r) = exp(−r/(δβ)).
func TestEarlyRefreshProbability(t *testing.T) {
	g, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	now := time.Now()
	g.now = func() time.Time { return now }
	const n = 40_000
	delta := 100 * time.Millisecond
	for _, beta := range []float64{0.5, 1, 2} {
		for _, r := range []time.Duration{10 * time.Millisecond, 100 * time.Millisecond, 300 * time.Millisecond} {
			e := entry{computedAt: now.Add(-time.Minute).UnixNano(), freshUntil: now.Add(r).UnixNano(), took: delta}
			hits := 0
			for range n {
				if g.refreshEarly(e, callOptions{beta: beta}) {
					hits++
				}
			}
			p := math.Exp(-float64(r) / (float64(delta) * beta))
			sigma := math.Sqrt(p * (1 - p) / n)
			if got := float64(hits) / n; math.Abs(got-p) > 5*sigma+1e-4 {
				t.Errorf("β %v, remaining %v: refresh rate %.4f, want %.4f ± %.4f", beta, r, got, p, 5*sigma)
			}
		}
	}
}
