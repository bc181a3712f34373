package redisstore_test

import (
	"os"
	"testing"
)

// redisURL returns the URL of the Redis server for the tests.
//
// TEMPORARY, until internal/testserver is committed: it reads
// PGFLIGHT_TEST_REDIS_URL. It will become testserver.RedisURL, with
// TestMain calling testserver.Main.
func redisURL(tb testing.TB) string {
	tb.Helper()
	url := os.Getenv("PGFLIGHT_TEST_REDIS_URL")
	if url == "" {
		tb.Fatal("PGFLIGHT_TEST_REDIS_URL is not set")
	}
	return url
}
