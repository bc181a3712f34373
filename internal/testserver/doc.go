// Package testserver starts throwaway PostgreSQL, Redis, PgBouncer and
// memcached servers for tests, in the manner of net/http/httptest: each on
// a free port of 127.0.0.1, in a temporary directory of its own, with a
// clean Close.
//
// # Shared servers
//
// Most tests need one server and do not care whose it is. [PostgresURL] and
// [RedisURL] start one per test binary on first use, because initdb takes
// seconds, and [Main] stops them after the tests:
//
//	func TestMain(m *testing.M) { testserver.Main(m) }
//
//	func TestFetch(t *testing.T) {
//		pool, err := pgxpool.New(ctx, testserver.PostgresURL(t))
//		…
//	}
//
// PGFLIGHT_TEST_DATABASE_URL and PGFLIGHT_TEST_REDIS_URL name running
// servers instead; a test binary that starts a server sets them, so child
// processes that re-execute it use the same one. A server that cannot be
// started fails the test and names the Debian package to install; it is
// never a skip.
//
// # Servers of one's own
//
// A test that stops, kills or freezes its server starts its own with
// [StartPostgres], [StartRedis], [StartPgBouncer] or [StartMemcached]. Stop,
// Start, Kill, Pause and Resume each return once the server has reached the
// state they name: gone, answering, or frozen with SIGSTOP.
//
// [StartRedisCluster] starts a Redis Cluster of masters without replicas,
// and [RedisClusterURL] shares one per test binary, as [RedisURL] does;
// PGFLIGHT_TEST_REDIS_CLUSTER_URL names a running one instead.
// [StartRedisSentinel] starts a sentinel that monitors a [Redis].
//
// # Requirements
//
// Linux, and the servers' binaries: PostgreSQL from PATH or
// /usr/lib/postgresql/*/bin, the others from PATH or /usr/sbin. Run as root,
// PostgreSQL and PgBouncer run as the postgres user, since both refuse
// root. A server dies with the test binary even if that crashes; its
// temporary directory (pgflight-*) then stays behind.
package testserver
