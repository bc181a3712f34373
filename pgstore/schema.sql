-- The table of a pgstore.Store. pgstore replaces {{table}} and {{index}}
-- with the quoted names of the table and of its expiry index, and runs the
-- statements in one transaction (Store.CreateSchema, or on demand); a team
-- whose application role may not run DDL applies Store.Schema's text
-- instead, which is this file with the names filled in.
--
-- UNLOGGED: a cache needs no crash safety, and skipping the WAL makes
-- writes cheaper; PostgreSQL empties the table after a crash, and a
-- standby does not have it. key is the entry's key as bytes (keys may hold
-- any bytes, which text cannot), or for a key longer than 1,024 bytes its
-- first 1,024 bytes followed by the SHA-256 of the whole key, so that every key
-- fits a B-tree entry. expires_at is set from the server's clock.
CREATE UNLOGGED TABLE IF NOT EXISTS {{table}} (
	key        bytea       PRIMARY KEY,
	value      bytea       NOT NULL,
	expires_at timestamptz NOT NULL
);

-- The sweep finds expired rows through this index, so each bounded batch
-- reads only the rows it deletes.
CREATE INDEX IF NOT EXISTS {{index}} ON {{table}} (expires_at);
