package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
)

// Where the servers are when nothing says otherwise.
const (
	defaultDatabaseURL = "postgres://127.0.0.1:5432/postgres"
	defaultRedisURL    = "redis://127.0.0.1:6379/0"
	// probeTimeout bounds connecting to a server to see whether it is there.
	probeTimeout = 2 * time.Second
)

// pgEnvVars are the libpq variables that, when any is set, make the
// commands leave the connection settings to pgx's own environment handling.
var pgEnvVars = []string{"PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER", "PGPASSWORD", "PGSERVICE"}

// A pgTarget names a PostgreSQL server and where that name came from.
type pgTarget struct {
	// connString is a URL or keyword/value string for pgxpool.ParseConfig;
	// "" means the PG* environment variables, which ParseConfig reads.
	connString string
	source     string // "-database-url", "DATABASE_URL", "PG* variables" or "default"
}

// resolvePostgres returns the server named by flagValue, else DATABASE_URL,
// else the PG* variables, else defaultDatabaseURL.
func resolvePostgres(flagValue string) pgTarget {
	switch {
	case flagValue != "":
		return pgTarget{flagValue, "-database-url"}
	case os.Getenv("DATABASE_URL") != "":
		return pgTarget{os.Getenv("DATABASE_URL"), "DATABASE_URL"}
	}
	for _, v := range pgEnvVars {
		if os.Getenv(v) != "" {
			return pgTarget{"", "PG* variables"}
		}
	}
	return pgTarget{defaultDatabaseURL, "default"}
}

// poolConfig returns a pool configuration for t whose sessions carry
// application name app, so that pg_stat_activity and pg_locks tell them apart.
func (t pgTarget) poolConfig(app string) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(t.connString)
	if err != nil {
		return nil, settingsError("postgres", t.source, t.String(), err)
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = app
	return cfg, nil
}

// connect opens one session to t named app, giving up after probeTimeout.
func (t pgTarget) connect(ctx context.Context, app string) (*pgx.Conn, error) {
	cfg, err := t.poolConfig(app)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	return pgx.ConnectConfig(ctx, cfg.ConnConfig)
}

// String describes t for people: the URL or keyword/value string with
// every secret masked (see redactDSN), or for the PG* variables the server
// they name, without the password.
func (t pgTarget) String() string {
	if t.connString == "" {
		cfg, err := pgx.ParseConfig("")
		if err != nil {
			return "PG* variables (" + parseReason(err) + ")"
		}
		u := url.URL{Scheme: "postgres", User: url.User(cfg.User), Host: fmt.Sprintf("%s:%d", cfg.Host, cfg.Port), Path: "/" + cfg.Database}
		return u.String() + " (from PG* variables)"
	}
	return redactDSN(t.connString)
}

// settingsError reports connection settings from source, shown as shown,
// that do not parse. It says why through parseReason and not with the
// parser's own message, which quotes the settings: the cause is hidden on
// purpose.
func settingsError(server, source, shown string, err error) error {
	return fmt.Errorf("%s settings (%s): cannot parse %s: %s", server, source, shown, parseReason(err))
}

// A redisTarget names a Redis server and where that name came from.
type redisTarget struct {
	url    string
	source string // "-redis-url", "REDIS_URL" or "default"
}

// resolveRedis returns the server named by flagValue, else REDIS_URL, else
// defaultRedisURL.
func resolveRedis(flagValue string) redisTarget {
	switch {
	case flagValue != "":
		return redisTarget{flagValue, "-redis-url"}
	case os.Getenv("REDIS_URL") != "":
		return redisTarget{os.Getenv("REDIS_URL"), "REDIS_URL"}
	}
	return redisTarget{defaultRedisURL, "default"}
}

// client returns a client of t; it connects on first use.
func (t redisTarget) client() (*redis.Client, error) {
	opt, err := redis.ParseURL(t.url)
	if err != nil {
		return nil, settingsError("redis", t.source, t.String(), err)
	}
	opt.ContextTimeoutEnabled = true // so that redisstore calls honour ctx deadlines
	return redis.NewClient(opt), nil
}

// String describes t for people: its URL with every secret masked.
func (t redisTarget) String() string { return redactDSN(t.url) }

// probeRedis reports whether t answers PING within probeTimeout. It dials
// once first, so that an absent server is reported here, once, rather than
// also by go-redis's logger after each of its retries.
func probeRedis(ctx context.Context, t redisTarget) error {
	opt, err := redis.ParseURL(t.url)
	if err != nil {
		return settingsError("redis", t.source, t.String(), err)
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	conn, err := redis.NewDialer(opt)(ctx, opt.Network, opt.Addr)
	if err != nil {
		return err
	}
	conn.Close()
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	return rdb.Ping(ctx).Err()
}

// oneLine joins the lines of a multi-line error message (pgx reports each
// address it tried on a line of its own), dropping repeated lines.
func oneLine(err error) string {
	var out []string
	for _, l := range strings.Split(err.Error(), "\n") {
		if l = strings.TrimSpace(l); l != "" && !slices.Contains(out, l) {
			out = append(out, l)
		}
	}
	return strings.Join(out, " ")
}
