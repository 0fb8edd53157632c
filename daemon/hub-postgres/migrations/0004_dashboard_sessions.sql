-- The coordinator dashboard's one-time sign-in codes (`outpost admin
-- signin`) and sessions, shared by every hub node. Only hashes are kept;
-- `token_hash` is the admin token the code was made for, so a session
-- sees what its token sees and ends when the token stops working.
CREATE TABLE signin_codes (
    hash       TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ
);
CREATE TABLE dash_sessions (
    hash       TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    last_seen  TIMESTAMPTZ NOT NULL
);
