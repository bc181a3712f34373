package memcachedstore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/pgflight/pgflight"
	"github.com/pgflight/pgflight/memcachedstore"
)

// pgflight keeps values in memcached, where every process of the fleet
// finds them.
func Example() {
	ctx := context.Background()
	mc := memcache.New(exampleAddr())
	defer mc.Close()

	g, err := pgflight.New(pgflight.Config{
		Cache:     memcachedstore.New(mc, memcachedstore.WithMaxItemSize(2<<20)), // memcached -I 2m
		Namespace: "example",
	})
	if err != nil {
		panic(err)
	}
	defer g.Close()
	// Forget the value a previous run of this example left behind.
	if err := g.Delete(ctx, "greeting"); err != nil {
		panic(err)
	}

	for range 2 {
		greeting, err := pgflight.Fetch(ctx, g, "greeting", func(ctx context.Context) (string, error) {
			fmt.Println("computing")
			return "hello", nil
		}, pgflight.WithTTL(time.Minute))
		if err != nil {
			panic(err)
		}
		fmt.Println(greeting)
	}
	// Output:
	// computing
	// hello
	// hello
}

// A Store used on its own: a miss is ok == false with a nil error, and a
// key memcached could not take (here, with a space) works like any other.
func ExampleStore_Get() {
	ctx := context.Background()
	mc := memcache.New(exampleAddr())
	defer mc.Close()
	s := memcachedstore.New(mc)

	if err := s.Set(ctx, "example:user 42", []byte("v"), time.Minute); err != nil {
		panic(err)
	}
	val, ok, err := s.Get(ctx, "example:user 42")
	fmt.Printf("%q %v %v\n", val, ok, err)

	if err := s.Delete(ctx, "example:user 42"); err != nil {
		panic(err)
	}
	val, ok, err = s.Get(ctx, "example:user 42")
	fmt.Printf("%q %v %v\n", val, ok, err)
	// Output:
	// "v" true <nil>
	// "" false <nil>
}

// A value too large for memcached's item size limit is refused, with an
// error that names its size and the limit.
func ExampleTooLargeError() {
	ctx := context.Background()
	mc := memcache.New(exampleAddr())
	defer mc.Close()
	s := memcachedstore.New(mc) // the default limit: 1 MiB, memcached's own

	err := s.Set(ctx, "example:big", make([]byte, 2<<20), time.Minute)
	fmt.Println(err)
	var tl *memcachedstore.TooLargeError
	if errors.As(err, &tl) {
		fmt.Println(tl.Size, tl.Limit, errors.Is(err, memcachedstore.ErrTooLarge))
	}
	// Output:
	// memcachedstore: set: value of 2097152 bytes exceeds the item size limit of 1048576 bytes (memcached -I; at most 1048506 bytes of value with this key)
	// 2097152 1048576 true
}

// exampleTB lets examples use the test server, which reports failures
// through a testing.TB.
type exampleTB struct{ testing.TB }

func (exampleTB) Helper()                      {}
func (exampleTB) Fatalf(f string, args ...any) { panic(fmt.Sprintf(f, args...)) }

func exampleAddr() string { return serverAddr(exampleTB{}) }
