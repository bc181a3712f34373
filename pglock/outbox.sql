-- The outbox of transactional invalidations (pglock.Invalidate): one row per
-- call, written in the application's transaction, deleted once a process
-- whose Groups handle the namespace has invalidated its keys. keys are
-- bytea because a key may hold any bytes. The index serves the processors'
-- claim: the oldest rows of one namespace.
--
-- pglock runs this inside a block that first checks whether the table
-- exists, under an advisory transaction lock, so every statement here ends
-- with a semicolon and none uses dollar quoting.
create table if not exists pgflight_outbox (
	id bigserial primary key,
	namespace text not null,
	keys bytea[] not null,
	created_at timestamptz not null default now()
);
create index if not exists pgflight_outbox_namespace_id on pgflight_outbox (namespace, id);
