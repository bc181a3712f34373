package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/pgflight/pgflight"
	"github.com/pgflight/pgflight/internal/testserver"
	"github.com/pgflight/pgflight/redisstore"
)

// A secret is a password as a test hands it to the command, and the
// strings of which none may appear in the output: the password, and the
// parts of it that a parser's message could quote on their own.
type secret struct {
	pw      string
	needles []string
}

// check fails the test if any part of s appears in out.
func (s secret) check(t *testing.T, out string) {
	t.Helper()
	for _, n := range append([]string{s.pw}, s.needles...) {
		if strings.Contains(out, n) {
			t.Errorf("output shows %q (of password %q)", n, s.pw)
		}
	}
}

// withPassword returns the URL u with userinfo user:pw and the query
// parameters set.
func withPassword(t *testing.T, u, user, pw string, query ...string) string {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" || pw != "" {
		p.User = url.UserPassword(user, pw)
	}
	q := p.Query()
	for i := 0; i+1 < len(query); i += 2 {
		q.Set(query[i], query[i+1])
	}
	p.RawQuery = q.Encode()
	return p.String()
}

// keywordValue returns the PostgreSQL URL u as a keyword/value string,
// with extra settings appended as they are written.
func keywordValue(t *testing.T, u, extra string) string {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return "host=" + p.Hostname() + " port=" + p.Port() + " user=postgres" +
		" dbname=" + strings.TrimPrefix(p.Path, "/") + " sslmode=disable " + extra
}

// redisUser adds a user with password pw to the Redis at redisURL (an ACL
// user, so that the tests' passwordless default user keeps working), and
// deletes it at cleanup.
func redisUser(t *testing.T, redisURL, user, pw string) {
	t.Helper()
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	ctx := context.Background()
	if err := rdb.Do(ctx, "ACL", "SETUSER", user, "reset", "on", ">"+pw, "~*", "&*", "+@all").Err(); err != nil {
		t.Fatalf("ACL SETUSER: %v", err)
	}
	t.Cleanup(func() {
		rdb.Do(ctx, "ACL", "DELUSER", user)
		rdb.Close()
	})
}

// No password given to the demo, to locks (once or with -watch) or to
// inspect, in any form a connection string takes, shows in anything they
// print or return, whether the servers answer or not, and whether the
// string parses or not; not even where a cached value holds it.
func TestNoPasswordInOutput(t *testing.T) {
	pgURL, redisURL := testserver.PostgresURL(t), testserver.RedisURL(t) // before the PG* variables are cleared
	for _, v := range append(pgEnvVars, "DATABASE_URL", "REDIS_URL", "PGSSLPASSWORD") {
		t.Setenv(v, "")
	}
	deadPG, deadRedis := closedURL(t, "postgres", "/postgres"), closedURL(t, "redis", "/0")
	redisUser(t, redisURL, "pgflight-redact", "Rd1sUserPW-Zq8")

	// Passwords: each distinctive, some with characters a parser trips on.
	var (
		userinfo = secret{pw: "Us3rInfoPW-Zq8"}
		query    = secret{pw: "QueryPW-Zq8"}
		sslpw    = secret{pw: "SslPW-Zq8"}
		token    = secret{pw: "AppTok3n-Zq8"}
		quoted   = secret{pw: `Quo ted\'Qx7-tail`, needles: []string{"Quo ted", "Qx7-tail"}}
		unquoted = secret{pw: "UnquotedPW-Zq8"}
		env      = secret{pw: "EnvPGPASSWORD-Zq8"}
		rUser    = secret{pw: "Rd1sUserPW-Zq8"}
		rDefault = secret{pw: "Rd1sDefaultPW-Zq8"}
		// An unescaped % makes the URL unparsable; net/url then quotes
		// the URL, and the % with the two characters after it.
		rBroken  = secret{pw: "Rd1s%ZqBrokenPW", needles: []string{"%Zq", "BrokenPW"}}
		pgBroken = secret{pw: "Pg%ZqBrokenPW", needles: []string{"%Zq", "BrokenPW"}}
	)

	type tc struct {
		name   string
		args   []string          // after the command
		env    map[string]string // set for the case
		secret secret
		want   string // in the output: the path the case takes
	}
	pgEnv := func(pg string) map[string]string {
		p, err := url.Parse(pg)
		if err != nil {
			t.Fatal(err)
		}
		return map[string]string{"PGHOST": p.Hostname(), "PGPORT": p.Port(), "PGUSER": "postgres",
			"PGDATABASE": "postgres", "PGSSLMODE": "disable", "PGPASSWORD": env.pw}
	}

	// pgCases are the PostgreSQL cases: up is in the output when the
	// server answers, down when it does not.
	pgCases := func(up, down string) []tc {
		pg, dead := pgURL, deadPG
		return []tc{
			{"url userinfo", []string{"-database-url", withPassword(t, pg, "postgres", userinfo.pw)}, nil, userinfo, up},
			{"url password param", []string{"-database-url", withPassword(t, pg, "", "", "password", query.pw)}, nil, query, up},
			{"url sslpassword param", []string{"-database-url", withPassword(t, pg, "", "", "sslpassword", sslpw.pw)}, nil, sslpw, up},
			{"keyword/value quoted", []string{"-database-url", keywordValue(t, pg, "password='"+quoted.pw+"'")}, nil, quoted, up},
			{"keyword/value unquoted", []string{"-database-url=" + keywordValue(t, pg, "password="+unquoted.pw)}, nil, unquoted, up},
			{"DATABASE_URL", nil, map[string]string{"DATABASE_URL": withPassword(t, pg, "postgres", userinfo.pw)}, userinfo, up},
			{"PGPASSWORD", nil, pgEnv(pg), env, "from PG* variables"},
			{"unparsable url", []string{"-database-url", strings.Replace(pg, "postgres@", "postgres:"+pgBroken.pw+"@", 1)}, nil, pgBroken, "unparsable URL"},
			{"url userinfo, dead", []string{"-database-url", withPassword(t, dead, "postgres", userinfo.pw)}, nil, userinfo, down},
			{"url password param, dead", []string{"-database-url", withPassword(t, dead, "", "", "password", query.pw)}, nil, query, down},
			{"url token param, dead", []string{"-database-url", withPassword(t, dead, "", "", "app_token", token.pw)}, nil, token, down},
			{"keyword/value quoted, dead", []string{"-database-url", keywordValue(t, dead, "password='"+quoted.pw+"'")}, nil, quoted, down},
			{"PGPASSWORD, dead", nil, pgEnv(dead), env, down},
		}
	}
	var cases []tc
	for _, c := range pgCases("pgflight demo: ", "PostgreSQL is not reachable") {
		c.args = append(c.args, "-redis-url", redisURL)
		cases = append(cases, c)
	}
	cases = append(cases,
		tc{"redis user password", []string{"-database-url", pgURL, "-redis-url", withPassword(t, redisURL, "pgflight-redact", rUser.pw)}, nil, rUser, "pgflight demo: "},
		tc{"redis default password", []string{"-database-url", pgURL, "-redis-url", withPassword(t, redisURL, "", rDefault.pw)}, nil, rDefault, "pgflight demo: "},
		tc{"redis password, dead", []string{"-database-url", pgURL, "-redis-url", withPassword(t, deadRedis, "", rDefault.pw)}, nil, rDefault, "Redis is not reachable"},
		tc{"REDIS_URL", []string{"-database-url", pgURL}, map[string]string{"REDIS_URL": withPassword(t, redisURL, "pgflight-redact", rUser.pw)}, rUser, "pgflight demo: "},
		tc{"redis unparsable url", []string{"-database-url", pgURL, "-redis-url", strings.Replace(redisURL, "redis://", "redis://:"+rBroken.pw+"@", 1)}, nil, rBroken, "unparsable URL"},
		tc{"redis unparsable url, dead", []string{"-database-url", pgURL, "-redis-url", strings.Replace(deadRedis, "redis://", "redis://:"+rBroken.pw+"@", 1)}, nil, rBroken, "unparsable URL"},
	)
	for _, c := range cases {
		t.Run("demo/"+c.name, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			// The cold start in two cases only, to keep the test short:
			// it prints the same things as the stampede.
			cold := "0"
			if c.name == "url userinfo" || c.name == "redis user password" {
				cold = "3"
			}
			args := append([]string{"demo", "-procs", "2", "-goroutines", "3", "-compute", "20ms",
				"-cold-keys", cold, "-cold-compute", "5ms"}, c.args...)
			out, errOut, err := runCmd(t, args...)
			all := out + errOut
			if err != nil {
				all += err.Error()
			}
			t.Logf("stdout:\n%s\nstderr:\n%s\nerr: %v", out, errOut, err)
			c.secret.check(t, all)
			if !strings.Contains(all, c.want) {
				t.Errorf("output lacks %q", c.want)
			}
		})
	}
	check := func(t *testing.T, c tc, args ...string) {
		t.Helper()
		for k, v := range c.env {
			t.Setenv(k, v)
		}
		out, errOut, err := runCmd(t, append(args, c.args...)...)
		all := out + errOut
		if err != nil {
			all += err.Error()
		}
		t.Logf("stdout:\n%s\nstderr:\n%s\nerr: %v", out, errOut, err)
		c.secret.check(t, all)
		if !strings.Contains(all, c.want) {
			t.Errorf("output lacks %q", c.want)
		}
	}
	for _, c := range pgCases("advisory locks in ", "connection refused") {
		t.Run("locks/"+c.name, func(t *testing.T) { check(t, c, "locks") })
		t.Run("locks-watch/"+c.name, func(t *testing.T) { check(t, c, "locks", "-watch", "-interval", "5ms", "-count", "2") })
	}
	for _, c := range pgCases("invalidation committed in ", "connection refused") {
		t.Run("invalidate/"+c.name, func(t *testing.T) { check(t, c, "invalidate", "-namespace", "redact", "-tag", "t") })
	}

	// inspect, on an entry whose value holds a password it is given.
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	g, err := pgflight.New(pgflight.Config{Cache: redisstore.New(rdb), Namespace: "redact"})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if _, err := pgflight.Fetch(context.Background(), g, "leak", func(context.Context) (string, error) {
		return "the password is " + rUser.pw, nil
	}, pgflight.WithForceRefresh()); err != nil {
		t.Fatal(err)
	}
	for _, c := range []tc{
		{"redis user password", []string{"-redis-url", withPassword(t, redisURL, "pgflight-redact", rUser.pw)}, nil, rUser, "the password is xxxxx"},
		{"redis default password", []string{"-redis-url", withPassword(t, redisURL, "", rDefault.pw)}, nil, rDefault, "the password is "},
		{"redis password, dead", []string{"-redis-url", withPassword(t, deadRedis, "", rDefault.pw)}, nil, rDefault, "connection refused"},
		{"REDIS_URL", nil, map[string]string{"REDIS_URL": withPassword(t, redisURL, "pgflight-redact", rUser.pw)}, rUser, "the password is xxxxx"},
		{"redis unparsable url", []string{"-redis-url", strings.Replace(redisURL, "redis://", "redis://:"+rBroken.pw+"@", 1)}, nil, rBroken, "unparsable URL"},
	} {
		t.Run("inspect/"+c.name, func(t *testing.T) { check(t, c, "inspect", "-namespace", "redact", "leak") })
		t.Run("inspect-value/"+c.name, func(t *testing.T) { check(t, c, "inspect", "-value", "-namespace", "redact", "leak") })
	}
}

// redactDSN masks every secret of every form, and dsnSecrets finds each.
func TestRedactDSN(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		secrets  []string // each must be among dsnSecrets(in)
	}{
		{"postgres://bob:pw1@h:5432/db?sslmode=disable&sslpassword=pw2", "postgres://bob:xxxxx@h:5432/db?sslmode=disable&sslpassword=xxxxx", []string{"pw1", "pw2"}},
		{"postgres://h/db?pass%77ord=pw3;app_token=pw4", "postgres://h/db?pass%77ord=xxxxx;app_token=xxxxx", []string{"pw3", "pw4"}},
		{"postgres://bob:p%40w5@h/db", "postgres://bob:xxxxx@h/db", []string{"p%40w5", "p@w5"}},
		{"redis://:pw6@h:6379/0", "redis://:xxxxx@h:6379/0", []string{"pw6"}},
		{"redis://:p%w7@h:6379/0", "redis://xxxxx@h:6379 (unparsable URL)", []string{"p%w7"}},
		{"postgres://bob:p?w8@h/db", "postgres://(unparsable URL)", []string{"p?w8"}},
		{"postgres://bob:p@w9@h/db", "postgres://bob:xxxxx@h/db", []string{"p@w9", "p", "w9"}},
		{"host=h password='a b\\' c' user=bob", "host=h password=xxxxx user=bob", []string{"'a b\\' c'", "a b' c"}},
		{"host=h sslpassword = pw10 user=bob", "host=h sslpassword = xxxxx user=bob", []string{"pw10"}},
		{"host=h password='unterminated pw11", "host=h xxxxx (malformed)", []string{"unterminated pw11"}},
		{"host=h password pw12", "host=h xxxxx (malformed)", []string{"pw12"}},
		{"host=h user=bob", "host=h user=bob", nil},
	} {
		if got := redactDSN(tc.in); got != tc.want {
			t.Errorf("redactDSN(%q) = %q, want %q", tc.in, got, tc.want)
		}
		got := dsnSecrets(tc.in)
		for _, s := range tc.secrets {
			if !slices.Contains(got, s) {
				t.Errorf("dsnSecrets(%q) = %q, want it to hold %q", tc.in, got, s)
			}
		}
	}
}

// The redactor masks the secrets of args and of the environment in whole
// lines, even when a write splits a secret, and in errors.
func TestRedactor(t *testing.T) {
	t.Setenv("PGPASSWORD", "envPW-Zq8")
	t.Setenv("REDIS_URL", "redis://:redisEnvPW-Zq8@h:6379/0")
	rd := newRedactor([]string{"demo", "-database-url=postgres://bob:argPW-Zq8@h/db", "-procs", "3"})
	var b strings.Builder
	w := rd.writer(&b)
	for _, p := range []string{"a argP", "W-Zq8 b\nc envPW", "-Zq8 redisEnvPW-Zq8 d\ne 3 ", "argPW-Zq8"} {
		if _, err := w.Write([]byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if got, want := b.String(), "a xxxxx b\nc xxxxx xxxxx d\ne 3 xxxxx"; got != want {
		t.Errorf("written %q, want %q", got, want)
	}
	err := rd.error(fmt.Errorf("connect: %w", errors.New("bad password argPW-Zq8")))
	if got, want := err.Error(), "connect: bad password xxxxx"; got != want {
		t.Errorf("error %q, want %q", got, want)
	}
}
