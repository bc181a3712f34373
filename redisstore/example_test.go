package redisstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pgflight/pgflight"
	"github.com/pgflight/pgflight/internal/testserver"
	"github.com/pgflight/pgflight/redisstore"
)

// pgflight keeps values in Redis, where every process of the fleet finds
// them.
func Example() {
	ctx := context.Background()
	opt, err := redis.ParseURL(exampleRedisURL())
	if err != nil {
		panic(err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()

	g, err := pgflight.New(pgflight.Config{
		Cache:     redisstore.New(rdb),
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

// A Store used on its own: a miss is ok == false with a nil error.
func ExampleStore_Get() {
	ctx := context.Background()
	opt, err := redis.ParseURL(exampleRedisURL())
	if err != nil {
		panic(err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	s := redisstore.New(rdb)

	if err := s.Set(ctx, "example:k", []byte("v"), time.Minute); err != nil {
		panic(err)
	}
	val, ok, err := s.Get(ctx, "example:k")
	fmt.Printf("%q %v %v\n", val, ok, err)

	if err := s.Delete(ctx, "example:k"); err != nil {
		panic(err)
	}
	val, ok, err = s.Get(ctx, "example:k")
	fmt.Printf("%q %v %v\n", val, ok, err)
	// Output:
	// "v" true <nil>
	// "" false <nil>
}

// New takes any redis.UniversalClient, so the same code serves a single
// node, Sentinel and Redis Cluster.
func ExampleNew_cluster() {
	rdb := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:                 []string{"redis-0:6379", "redis-1:6379", "redis-2:6379"},
		ContextTimeoutEnabled: true,
	})
	defer rdb.Close()

	g, err := pgflight.New(pgflight.Config{Cache: redisstore.New(rdb)})
	if err != nil {
		panic(err)
	}
	defer g.Close()
}

// GetMany reads a batch whose keys hash to different slots of a Redis
// Cluster, served by different masters, with one pipeline per master.
func ExampleStore_GetMany_cluster() {
	ctx := context.Background()
	opt, err := redis.ParseClusterURL(exampleClusterURL())
	if err != nil {
		panic(err)
	}
	rdb := redis.NewClusterClient(opt)
	defer rdb.Close()
	s := redisstore.New(rdb)

	keys := []string{"example:a", "example:b", "example:c", "example:d"}
	vals := [][]byte{[]byte("A"), []byte("B"), []byte("C")}
	ttls := []time.Duration{time.Minute, time.Minute, time.Minute}
	if err := s.SetMany(ctx, keys[:3], vals, ttls); err != nil {
		panic(err)
	}
	got, err := s.GetMany(ctx, keys)
	if err != nil {
		panic(err)
	}
	for i, k := range keys {
		fmt.Printf("%s %q hit=%v\n", k, got[i], got[i] != nil)
	}
	for _, k := range keys {
		if err := s.Delete(ctx, k); err != nil {
			panic(err)
		}
	}
	// Output:
	// example:a "A" hit=true
	// example:b "B" hit=true
	// example:c "C" hit=true
	// example:d "" hit=false
}

// exampleTB lets examples use the test server, which reports failures
// through a testing.TB.
type exampleTB struct{ testing.TB }

func (exampleTB) Helper()                      {}
func (exampleTB) Fatalf(f string, args ...any) { panic(fmt.Sprintf(f, args...)) }

func exampleRedisURL() string { return testserver.RedisURL(exampleTB{}) }

func exampleClusterURL() string { return testserver.RedisClusterURL(exampleTB{}) }
