package pglock_test

import (
	"os"
	"testing"
)

// TODO: replace with internal/testserver (PostgresURL, Main) once it lands.

const urlEnv = "PGFLIGHT_TEST_DATABASE_URL"

// postgresURL returns the URL of the test database.
func postgresURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv(urlEnv)
	if u == "" {
		tb.Fatalf("%s is not set", urlEnv)
	}
	return u
}
