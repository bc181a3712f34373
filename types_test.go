package pgflight_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/pgflight/pgflight"
	"github.com/pgflight/pgflight/memstore"
)

type point struct{ X, Y int }

type stringer struct{ S string }

func (s stringer) String() string { return s.S }

type boxed struct {
	Name string
	V    any
}

// missThenHit fetches key with fn in a Group on a fresh cache, then in a
// second Group on the same cache, as another process would. It returns
// both results and how many times fn ran.
func missThenHit[T any](t *testing.T, fn func() T) (miss, hit T, missErr, hitErr error, calls int) {
	t.Helper()
	cache := memstore.New()
	ns := namespace(t)
	compute := func(context.Context) (T, error) { calls++; return fn(), nil }
	a := newGroup(t, pgflight.Config{Namespace: ns, Cache: cache})
	miss, missErr = pgflight.Fetch(context.Background(), a, "k", compute)
	b := newGroup(t, pgflight.Config{Namespace: ns, Cache: cache})
	hit, hitErr = pgflight.Fetch(context.Background(), b, "k", compute)
	return miss, hit, missErr, hitErr, calls
}

// Issue 9.2: with an interface type argument a hit returns what the miss
// returned (both come from the stored bytes), and a value the codec cannot
// bring back is an error at the first call, never a value that is simply
// never cached.
func TestInterfaceTypeArguments(t *testing.T) {
	roundTrips := []struct {
		name string
		run  func(t *testing.T) (miss, hit any, missErr, hitErr error, calls int)
		want any
	}{
		{"any string number", func(t *testing.T) (any, any, error, error, int) {
			return missThenHit(t, func() any { return "42" })
		}, "42"},
		{"any string", func(t *testing.T) (any, any, error, error, int) {
			return missThenHit(t, func() any { return "hello" })
		}, "hello"},
		{"any int", func(t *testing.T) (any, any, error, error, int) {
			return missThenHit(t, func() any { return 42 })
		}, float64(42)},
		{"any struct", func(t *testing.T) (any, any, error, error, int) {
			return missThenHit(t, func() any { return point{1, 2} })
		}, map[string]any{"X": float64(1), "Y": float64(2)}},
		{"any nil", func(t *testing.T) (any, any, error, error, int) {
			return missThenHit(t, func() any { return nil })
		}, nil},
		{"slice of any", func(t *testing.T) (any, any, error, error, int) {
			m, h, me, he, n := missThenHit(t, func() []any { return []any{1, "a"} })
			return m, h, me, he, n
		}, []any{float64(1), "a"}},
		{"struct with an any field", func(t *testing.T) (any, any, error, error, int) {
			m, h, me, he, n := missThenHit(t, func() boxed { return boxed{"p", point{3, 4}} })
			return m, h, me, he, n
		}, boxed{"p", map[string]any{"X": float64(3), "Y": float64(4)}}},
		{"concrete struct unchanged", func(t *testing.T) (any, any, error, error, int) {
			m, h, me, he, n := missThenHit(t, func() point { return point{5, 6} })
			return m, h, me, he, n
		}, point{5, 6}},
	}
	for _, tc := range roundTrips {
		t.Run(tc.name, func(t *testing.T) {
			miss, hit, missErr, hitErr, calls := tc.run(t)
			if missErr != nil || hitErr != nil {
				t.Fatalf("errors: miss %v, hit %v", missErr, hitErr)
			}
			if !reflect.DeepEqual(miss, tc.want) {
				t.Errorf("miss = %#v, want %#v", miss, tc.want)
			}
			if !reflect.DeepEqual(hit, miss) {
				t.Errorf("hit = %#v (%T), miss = %#v (%T): a hit must return what the miss returned", hit, hit, miss, miss)
			}
			if calls != 1 {
				t.Errorf("fn ran %d times, want 1: the value was not cached", calls)
			}
		})
	}

	refused := []struct {
		name string
		run  func(t *testing.T) (missErr, hitErr error, calls int)
	}{
		{"error", func(t *testing.T) (error, error, int) {
			_, _, me, he, n := missThenHit(t, func() error { return errors.New("boom") })
			return me, he, n
		}},
		{"fmt.Stringer", func(t *testing.T) (error, error, int) {
			_, _, me, he, n := missThenHit(t, func() fmt.Stringer { return stringer{"s"} })
			return me, he, n
		}},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			missErr, hitErr, calls := tc.run(t)
			var ee *pgflight.EncodeError
			if !errors.As(missErr, &ee) || !errors.As(hitErr, &ee) {
				t.Fatalf("errors = %v, %v; want *EncodeError at every call", missErr, hitErr)
			}
			if calls != 2 {
				t.Errorf("fn ran %d times, want 2: nothing may be stored", calls)
			}
		})
	}
}

// FetchMany follows the same rule.
func TestFetchManyInterfaceTypeArgument(t *testing.T) {
	cache := memstore.New()
	ns := namespace(t)
	fn := func(_ context.Context, missing []string) (map[string]any, error) {
		out := map[string]any{}
		for _, k := range missing {
			out[k] = point{1, len(k)}
		}
		return out, nil
	}
	a := newGroup(t, pgflight.Config{Namespace: ns, Cache: cache})
	miss, err := pgflight.FetchMany(context.Background(), a, []string{"a", "bb"}, fn)
	if err != nil {
		t.Fatal(err)
	}
	b := newGroup(t, pgflight.Config{Namespace: ns, Cache: cache})
	hit, err := pgflight.FetchMany(context.Background(), b, []string{"a", "bb"}, func(context.Context, []string) (map[string]any, error) {
		return nil, errors.New("fn called on a hit")
	})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(hit, miss) {
		t.Errorf("hit = %#v, miss = %#v", hit, miss)
	}
	if want := (map[string]any{"X": float64(1), "Y": float64(2)}); !reflect.DeepEqual(miss["bb"], want) {
		t.Errorf("miss[bb] = %#v, want %#v", miss["bb"], want)
	}
}
