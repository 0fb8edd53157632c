-- The hub's first PostgreSQL schema. Shipped: never edit this file; a
-- change of schema is a new numbered file (see src/migrations.rs).
--
-- The same tables as the SQLite hub (daemon/hub-sqlite), with PostgreSQL
-- types: record ids are UUIDs, times TIMESTAMPTZ, dates DATE. Tokens and
-- codes are kept only as SHA-256 hashes.

CREATE TABLE orgs (
    slug       TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    -- The feed position last given out in this org. Writers lock this row
    -- (SELECT ... FOR UPDATE) for the whole transaction that assigns
    -- positions: see src/feed.rs for why a SEQUENCE would be wrong.
    seq        BIGINT NOT NULL DEFAULT 0,
    epoch      BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE admin_tokens (
    hash       TEXT PRIMARY KEY,
    org        TEXT,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE enrol_codes (
    hash       TEXT PRIMARY KEY,
    org        TEXT NOT NULL REFERENCES orgs(slug),
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ
);

CREATE TABLE devices (
    id                TEXT PRIMARY KEY,
    org               TEXT NOT NULL REFERENCES orgs(slug),
    token_hash        TEXT NOT NULL UNIQUE,
    enrolled_at       TIMESTAMPTZ NOT NULL,
    last_seen         TIMESTAMPTZ,
    clock_offset_secs BIGINT,
    revoked_at        TIMESTAMPTZ
);

CREATE TABLE docs (
    org               TEXT NOT NULL REFERENCES orgs(slug),
    id                UUID NOT NULL,
    doc               BYTEA NOT NULL,
    heads             BYTEA NOT NULL,
    seq               BIGINT NOT NULL,
    origin            TEXT NOT NULL,
    first_received_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (org, id)
);
-- Unique: two entries at one feed position would be a broken counter.
CREATE UNIQUE INDEX docs_feed ON docs (org, seq);

CREATE TABLE tombstones (
    org        TEXT NOT NULL REFERENCES orgs(slug),
    id         UUID NOT NULL,
    seq        BIGINT NOT NULL,
    deleted_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (org, id)
);
CREATE UNIQUE INDEX tombstones_feed ON tombstones (org, seq);

-- The admin projection (export, stats). `site_key` is the site folded as
-- the SQLite hub's fold() does (trimmed, Unicode lower case), so a site
-- filter matches the same records on both backends.
CREATE TABLE records (
    org        TEXT NOT NULL REFERENCES orgs(slug),
    id         UUID NOT NULL,
    kind       TEXT NOT NULL,
    site       TEXT NOT NULL,
    site_key   TEXT NOT NULL,
    date_from  DATE,
    date_to    DATE,
    created_at TEXT NOT NULL,
    body       TEXT NOT NULL,
    PRIMARY KEY (org, id)
);
CREATE INDEX records_org_date ON records (org, date_from, created_at, id);

CREATE TABLE secrets (
    name  TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);
