package testserver_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/pgflight/pgflight/internal/testserver"
)

func TestRedisSentinel(t *testing.T) {
	t.Parallel()
	master, err := testserver.StartRedis()
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	s, err := testserver.StartRedisSentinel(master, "pgflight")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.MasterName() != "pgflight" {
		t.Errorf("MasterName() = %q, want %q", s.MasterName(), "pgflight")
	}
	sc := redis.NewSentinelClient(&redis.Options{Addr: s.Addr()})
	defer sc.Close()
	addr, err := sc.GetMasterAddrByName(t.Context(), "pgflight").Result()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"127.0.0.1", fmt.Sprint(master.Port())}; !slices.Equal(addr, want) {
		t.Errorf("SENTINEL GET-MASTER-ADDR-BY-NAME = %q, want %q", addr, want)
	}
	rdb := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: "pgflight", SentinelAddrs: []string{s.Addr()}})
	defer rdb.Close()
	if err := rdb.Set(t.Context(), "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := newRedis(t, master.URL()).Get(t.Context(), "k").Result(); v != "v" || err != nil {
		t.Errorf("GET on the master after SET through Sentinel = %q, %v; want \"v\", nil", v, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wantRedisDown(t, "redis://"+s.Addr())
}
