package pglock_test

import (
	"testing"

	"github.com/pgflight/pgflight/internal/testserver"
)

func TestMain(m *testing.M) { testserver.Main(m) }
