package pgstore_test

import (
	"testing"

	"github.com/pgflight/pgflight/internal/testserver"
)

// TestMain stops the PostgreSQL and Redis servers that testserver starts
// for the tests (once per test binary), unless PGFLIGHT_TEST_DATABASE_URL
// and PGFLIGHT_TEST_REDIS_URL name running ones.
func TestMain(m *testing.M) { testserver.Main(m) }
