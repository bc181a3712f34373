-- The versions of tags (pgflight's WithTags, InvalidateTags and Clear): one
-- row per tag of a namespace that was ever invalidated; the empty tag is
-- the namespace's Clear. An invalidation increments version; a tag without
-- a row has version 0. tag is bytea because a tag may hold any bytes.
--
-- pglock runs this inside a block that first checks whether the table
-- exists, under an advisory transaction lock, so every statement here ends
-- with a semicolon and none uses dollar quoting.
create table if not exists pgflight_tags (
	namespace text not null,
	tag bytea not null,
	version bigint not null,
	primary key (namespace, tag)
);
