-- The reference RP's first schema, for SQLite and PostgreSQL alike.
--
-- Byte strings are BLOB on SQLite and BYTEA on PostgreSQL (the blob token,
-- which sqlstore expands). Every *_at column holds microseconds since the
-- Unix epoch (UTC) as BIGINT, the precision both databases keep and the
-- one audit entries are hashed with; it is NULL where the Go field is the
-- zero time. Secrets are never stored: sessions and grants keep only
-- hashes of their tokens and codes.

CREATE TABLE users (
    id           {{blob}} PRIMARY KEY,       -- WebAuthn user handle
    name         TEXT     NOT NULL UNIQUE,   -- case-folded
    display_name TEXT     NOT NULL,
    -- display_name case-folded in Go, so that search folds the same way
    -- on both databases.
    search_name  TEXT     NOT NULL,
    roles        TEXT     NOT NULL,          -- comma-separated storage.Role values
    disabled     BOOLEAN  NOT NULL,
    created_at   BIGINT   NOT NULL
);

-- Credentials are never deleted: a revoked key keeps its row for the
-- audit trail, with revoked_at set.
CREATE TABLE credentials (
    id               {{blob}} PRIMARY KEY,
    user_id          {{blob}} NOT NULL REFERENCES users (id),
    nickname         TEXT     NOT NULL,
    webauthn         {{blob}},               -- go-webauthn's Credential as JSON, without its attestation
    attestation      {{blob}},               -- the attestation it was registered with, as JSON
    aaguid           {{blob}},
    sign_count       BIGINT   NOT NULL,
    attestation_type TEXT     NOT NULL,
    created_at       BIGINT   NOT NULL,
    last_used_at     BIGINT,
    revoked_at       BIGINT,
    revoke_reason    TEXT     NOT NULL,
    provisioned_by   TEXT     NOT NULL,
    batch            TEXT     NOT NULL
);
CREATE INDEX credentials_by_user ON credentials (user_id, created_at);

-- A consumed ceremony stays, with consumed_at set, until it expires, so
-- that a second finish is told it came too late rather than that the
-- ceremony never existed, and so that its result can be kept.
CREATE TABLE ceremonies (
    id           TEXT     PRIMARY KEY,
    kind         TEXT     NOT NULL,
    user_id      {{blob}} REFERENCES users (id),
    session_hash {{blob}},
    session      {{blob}},                   -- go-webauthn's SessionData as JSON
    nickname     TEXT     NOT NULL,
    expires_at   BIGINT   NOT NULL,
    consumed_at  BIGINT
);
CREATE INDEX ceremonies_by_expiry ON ceremonies (expires_at);

CREATE TABLE ceremony_results (
    ceremony_id  TEXT     PRIMARY KEY REFERENCES ceremonies (id) ON DELETE CASCADE,
    request_hash {{blob}} NOT NULL,
    result       {{blob}} NOT NULL,
    created_at   BIGINT   NOT NULL
);

CREATE TABLE sessions (
    token_hash {{blob}} PRIMARY KEY,
    user_id    {{blob}} NOT NULL REFERENCES users (id),
    scope      TEXT     NOT NULL,
    created_at BIGINT   NOT NULL,
    expires_at BIGINT   NOT NULL,
    auth_time  BIGINT,
    grant_id   TEXT     NOT NULL             -- '' when none; the grant may expire first
);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

CREATE TABLE grants (
    id         TEXT     PRIMARY KEY,
    user_id    {{blob}} NOT NULL REFERENCES users (id),
    kind       TEXT     NOT NULL,
    code_hash  {{blob}} NOT NULL UNIQUE,
    issued_by  TEXT     NOT NULL,
    created_at BIGINT   NOT NULL,
    expires_at BIGINT   NOT NULL,
    max_uses   INTEGER  NOT NULL CHECK (max_uses >= 1),
    uses       INTEGER  NOT NULL CHECK (uses >= 0 AND uses <= max_uses),
    revoked_at BIGINT
);
CREATE INDEX grants_by_expiry ON grants (expires_at);

-- The policy is one JSON document in one row.
CREATE TABLE policy (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    document TEXT    NOT NULL
);

-- The audit log keeps every field of audit.Entry as written, so that
-- audit.Verifier can check the rows as they are. details is the Details
-- map as a JSON object, NULL when empty.
CREATE TABLE audit (
    seq           BIGINT   PRIMARY KEY,
    version       INTEGER  NOT NULL,
    happened_at   BIGINT   NOT NULL,
    actor         TEXT     NOT NULL,
    actor_role    TEXT     NOT NULL,
    action        TEXT     NOT NULL,
    subject       TEXT     NOT NULL,
    credential_id TEXT     NOT NULL,
    remote_addr   TEXT     NOT NULL,
    details       TEXT,
    prev_hash     {{blob}} NOT NULL,
    hash          {{blob}} NOT NULL
);
CREATE INDEX audit_by_subject ON audit (subject, seq);
CREATE INDEX audit_by_actor ON audit (actor, seq);

-- audit_head is the chain's newest entry (seq 0 and no hash before the
-- first). Appending updates it in the same transaction, so appenders
-- queue on its row lock (SQLite: on the write lock) and the chain never
-- forks.
CREATE TABLE audit_head (
    id   INTEGER  PRIMARY KEY CHECK (id = 1),
    seq  BIGINT   NOT NULL,
    hash {{blob}}
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, NULL);
