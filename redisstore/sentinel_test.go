package redisstore_test

import (
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/pgflight/pgflight"
	"github.com/pgflight/pgflight/internal/testserver"
	"github.com/pgflight/pgflight/redisstore"
	"github.com/pgflight/pgflight/storetest"
)

// TestStoreSentinel runs the suite through Sentinel's failover client, on
// a master and a sentinel of the test's own.
func TestStoreSentinel(t *testing.T) {
	master, err := testserver.StartRedis()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { master.Close() })
	sentinel, err := testserver.StartRedisSentinel(master, "pgflight")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sentinel.Close() })
	storetest.Run(t, func(t *testing.T) pgflight.Cache {
		rdb := redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName:    sentinel.MasterName(),
			SentinelAddrs: []string{sentinel.Addr()},
		})
		t.Cleanup(func() { rdb.Close() })
		return redisstore.New(rdb)
	})
}
