-- Named accounts and the hash-chained audit log (outpost_hub_db::accounts).
-- Shipped: never edit this file.
--
-- Admin tokens become accounts: an id (`tok_` and 8 hex digits), a name,
-- a role (admin or coordinator), when last used and when revoked. The
-- `org` column now holds the orgs an account is scoped to, comma-separated
-- (a token scoped to one org before reads the same); NULL: every org.
-- Tokens made before keep working as admins with a generated id and name.
ALTER TABLE admin_tokens
    ADD COLUMN id         TEXT,
    ADD COLUMN name       TEXT,
    ADD COLUMN role       TEXT NOT NULL DEFAULT 'admin',
    ADD COLUMN last_used  TIMESTAMPTZ,
    ADD COLUMN revoked_at TIMESTAMPTZ;
UPDATE admin_tokens
   SET id = 'tok_' || substr(md5(hash || random()::text), 1, 8),
       name = 'admin (made before account names)';
ALTER TABLE admin_tokens
    ALTER COLUMN id SET NOT NULL,
    ALTER COLUMN name SET NOT NULL;
CREATE UNIQUE INDEX admin_tokens_id ON admin_tokens (id);

-- The audit log: each entry's hash chains it to the one before. `at` is
-- text (RFC 3339) so the hash reproduces byte for byte. The primary key on
-- the position and the head row, locked by every append, keep two nodes
-- from writing two entries at one position (a forked chain).
CREATE TABLE audit_log (
    position   BIGINT PRIMARY KEY,
    at         TEXT NOT NULL,
    actor_id   TEXT,
    actor_name TEXT NOT NULL,
    action     TEXT NOT NULL,
    org        TEXT,
    detail     TEXT NOT NULL,
    hash       TEXT NOT NULL
);
CREATE INDEX audit_log_org ON audit_log (org, position);
CREATE TABLE audit_head (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    position BIGINT NOT NULL,
    hash     TEXT NOT NULL
);
INSERT INTO audit_head (id, position, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
