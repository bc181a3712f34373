package main

import (
	"net/url"
	"regexp"
	"strings"
)

// This file finds the secrets in connection strings, in every form that pgx
// and go-redis accept: PostgreSQL and Redis URLs (the userinfo password and
// any query parameter that carries a secret), keyword/value strings (quoted
// or not), and strings that are neither because they do not parse.

// mask replaces every secret that the command shows.
const mask = "xxxxx"

// secretParam reports whether a connection parameter named name carries a
// secret: password and sslpassword, and, generously, any other name that
// contains "pass", "secret" or "token", whatever its case.
func secretParam(name string) bool {
	n := strings.ToLower(name)
	return strings.Contains(n, "pass") || strings.Contains(n, "secret") || strings.Contains(n, "token")
}

// urlScheme matches the start of a URL.
var urlScheme = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*://`)

// redactDSN returns s, a connection URL or keyword/value string, for people:
// every secret masked. A URL that does not parse shows its scheme and host
// only, or neither if even they are ambiguous.
func redactDSN(s string) string {
	if urlScheme.MatchString(s) {
		return redactURL(s)
	}
	return redactKV(s)
}

// dsnSecrets returns the secrets that s, a connection URL or keyword/value
// string, carries, as written and as decoded. For a string that does not
// parse it returns every reading of it that a driver might make.
func dsnSecrets(s string) []string {
	if urlScheme.MatchString(s) {
		return urlSecrets(s)
	}
	return kvSecrets(s)
}

// redactURL masks the userinfo password and the values of secret query
// parameters of the URL s, and drops its fragment.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return redactBrokenURL(s)
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), mask)
	}
	u.RawQuery = redactQuery(u.RawQuery)
	u.Fragment, u.RawFragment = "", ""
	return u.String()
}

// hostLike matches what may be shown of an unparsable URL as its host.
var hostLike = regexp.MustCompile(`^[A-Za-z0-9._\-:\[\],]+$`)

// redactBrokenURL describes a URL that net/url cannot parse: its scheme and
// host. Anything before the last "@" may be userinfo, because a password
// may hold any character, so none of it is shown; and if that part holds a
// "/", "?" or "#", the "@" may as well be in the path or query, and then
// the host is not shown either.
func redactBrokenURL(s string) string {
	scheme, rest, _ := strings.Cut(s, "://")
	user := ""
	at := strings.LastIndex(rest, "@")
	if at >= 0 {
		if strings.ContainsAny(rest[:at], "/?#") {
			return scheme + "://(unparsable URL)"
		}
		user = mask + "@"
	}
	host := rest[at+1:]
	if i := strings.IndexAny(host, "/?#"); i >= 0 {
		host = host[:i]
	}
	if !hostLike.MatchString(host) {
		return scheme + "://(unparsable URL)"
	}
	return scheme + "://" + user + host + " (unparsable URL)"
}

// redactQuery masks the values of the secret parameters of a raw query,
// splitting it at "&" and at ";", and decoding names, as a lenient parser
// would.
func redactQuery(q string) string {
	var b strings.Builder
	for q != "" {
		i := strings.IndexAny(q, "&;")
		if i < 0 {
			i = len(q)
		}
		part := q[:i]
		if name, _, ok := strings.Cut(part, "="); ok && secretParam(unescapeQuery(name)) {
			part = name + "=" + mask
		}
		b.WriteString(part)
		if i < len(q) {
			b.WriteByte(q[i])
			i++
		}
		q = q[i:]
	}
	return b.String()
}

// urlSecrets returns the userinfo password of the URL s and the values of
// its secret query parameters, each as written and decoded. Where parsers
// could split s differently, it returns what any of them might take for
// the password: a password that holds an "@", "/" or "?" not escaped ends
// at the last "@" for net/url and go-redis, but may end at an earlier one
// for pgx, which then takes the rest for the host and quotes it in its
// errors; so every span from the first ":" to an "@", and every span
// between two "@", is one.
func urlSecrets(s string) []string {
	var out []string
	add := func(raw string, unescape func(string) (string, error)) {
		out = append(out, raw)
		if d, err := unescape(raw); err == nil {
			out = append(out, d)
		}
	}
	_, rest, _ := strings.Cut(s, "://")
	colon, prev := -1, -1
	for i := 0; i < len(rest); i++ {
		switch {
		case rest[i] == ':' && colon < 0 && prev < 0:
			colon = i
		case rest[i] == '@':
			if colon >= 0 {
				add(rest[colon+1:i], url.PathUnescape)
			}
			if prev >= 0 {
				add(rest[prev+1:i], url.PathUnescape)
			}
			prev = i
		}
	}
	if _, q, ok := strings.Cut(s, "?"); ok {
		q, _, _ = strings.Cut(q, "#")
		for _, part := range strings.FieldsFunc(q, func(r rune) bool { return r == '&' || r == ';' }) {
			if name, v, ok := strings.Cut(part, "="); ok && secretParam(unescapeQuery(name)) {
				add(v, url.QueryUnescape)
			}
		}
	}
	return out
}

// unescapeQuery decodes a query parameter's name, or returns it as it is.
func unescapeQuery(s string) string {
	if d, err := url.QueryUnescape(s); err == nil {
		return d
	}
	return s
}

// A kvField is one keyword=value setting of a keyword/value connection
// string: s[start:end] is its value as written, quotes included, and value
// the value unquoted and unescaped.
type kvField struct {
	key        string
	start, end int
	value      string
}

// splitKV splits s as pgx parses a keyword/value string: keyword, "=" with
// optional spaces, then a value that is either quoted with ' or runs to the
// next space, with \ escaping the next character in both. It returns the
// fields it could read, and where s stops making sense (len(s) if it never
// does): a keyword without "=", holding a space, or an unterminated quote
// or escape. Everything from there on might be a secret.
func splitKV(s string) (fields []kvField, bad int) {
	i := 0
	for {
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		if i == len(s) {
			return fields, i
		}
		eq := strings.IndexByte(s[i:], '=')
		if eq < 0 {
			return fields, i
		}
		key := strings.TrimSpace(s[i : i+eq])
		if key == "" || strings.ContainsAny(key, " \t\n\v\f\r") {
			return fields, i
		}
		j := i + eq + 1
		for j < len(s) && isSpace(s[j]) {
			j++
		}
		start := j
		var value string
		if j < len(s) && s[j] == '\'' {
			for j++; j < len(s) && s[j] != '\''; j++ {
				if s[j] == '\\' {
					j++
				}
			}
			if j >= len(s) {
				return fields, i
			}
			j++ // the closing quote
			value = unescapeKV(s[start+1 : j-1])
		} else {
			for ; j < len(s) && !isSpace(s[j]); j++ {
				if s[j] == '\\' {
					j++
				}
			}
			if j > len(s) {
				return fields, i
			}
			value = unescapeKV(s[start:j])
		}
		fields = append(fields, kvField{key, start, j, value})
		i = j
	}
}

// isSpace reports whether c is a space to pgx's keyword/value parser.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

// unescapeKV undoes the escapes of a keyword/value string's value.
func unescapeKV(s string) string {
	return strings.NewReplacer(`\\`, `\`, `\'`, `'`).Replace(s)
}

// redactKV masks the values of the secret settings of a keyword/value
// string, and everything from where it stops making sense.
func redactKV(s string) string {
	fields, bad := splitKV(s)
	var b strings.Builder
	last := 0
	for _, f := range fields {
		if secretParam(f.key) {
			b.WriteString(s[last:f.start])
			b.WriteString(mask)
			last = f.end
		}
	}
	if bad < len(s) {
		b.WriteString(s[last:bad])
		b.WriteString(mask + " (malformed)")
		return b.String()
	}
	b.WriteString(s[last:])
	return b.String()
}

// kvSecrets returns the values of the secret settings of a keyword/value
// string, as written and as meant, and if the string stops making sense,
// all of the rest and each word of it. A string with no setting at all is
// not a keyword/value string, and has none.
func kvSecrets(s string) []string {
	fields, bad := splitKV(s)
	if len(fields) == 0 {
		return nil
	}
	var out []string
	for _, f := range fields {
		if secretParam(f.key) {
			out = append(out, s[f.start:f.end], f.value)
		}
	}
	if rest := strings.TrimSpace(s[bad:]); rest != "" {
		out = append(out, rest)
		out = append(out, strings.Fields(rest)...)
		if _, v, ok := strings.Cut(rest, "="); ok { // an unterminated quote
			out = append(out, strings.TrimPrefix(strings.TrimSpace(v), "'"))
		}
	}
	return out
}
