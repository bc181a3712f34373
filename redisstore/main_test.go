package redisstore_test

import (
	"testing"

	"github.com/pgflight/pgflight/internal/testserver"
)

// TestMain stops the Redis server that testserver.RedisURL starts for the
// tests, unless PGFLIGHT_TEST_REDIS_URL names one.
func TestMain(m *testing.M) { testserver.Main(m) }
