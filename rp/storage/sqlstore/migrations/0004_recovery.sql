-- Account recovery (issue 7): QR handoff sessions, one-time recovery codes,
-- and helpdesk recovery grants with their identity checklist and four-eyes
-- approval. As everywhere, secrets are never stored: only keyed hashes of
-- the handoff's secret, typed code and desktop token, and argon2id hashes
-- of recovery codes.

-- A QR handoff. user_id is NULL for a decoy (a request naming no usable
-- account), which behaves as a real one but can never be approved. Every
-- change of status is one conditional UPDATE (WHERE status = ...), so that
-- of instances racing on a session exactly one moves it. Rows stay an
-- hour past expires_at, so that a late desktop hears "expired".
CREATE TABLE recovery_sessions (
    id                 TEXT     PRIMARY KEY,
    user_id            {{blob}} REFERENCES users (id),
    username           TEXT     NOT NULL,   -- as asked, case-folded
    secret_hash        {{blob}} NOT NULL,   -- keyed hash of the QR secret
    code_hash          {{blob}} NOT NULL,   -- keyed hash of the typed fallback code
    desktop_token_hash {{blob}} NOT NULL,   -- keyed hash of the desktop's bearer token
    number             INTEGER  NOT NULL,   -- the two digits the desktop shows
    candidates         TEXT     NOT NULL,   -- the three the phone offers, comma-separated, in order
    desktop_name       TEXT     NOT NULL,
    desktop_key        {{blob}} NOT NULL,   -- ECDSA P-256 public key, SPKI DER
    desktop_ip         TEXT     NOT NULL,
    created_at         BIGINT   NOT NULL,
    expires_at         BIGINT   NOT NULL,
    status             TEXT     NOT NULL,   -- storage.RecoveryStatus
    status_at          BIGINT   NOT NULL,
    ceremony_id        TEXT,                -- the approval ceremony begun last
    credential_id      {{blob}},            -- the key that approved
    nonce              {{blob}}             -- what the desktop signs to redeem
);
CREATE INDEX recovery_sessions_by_expiry ON recovery_sessions (expires_at);

-- One-time recovery codes: hash is argon2id in PHC string format (salt and
-- parameters included); lookup, a truncated keyed hash of the code, finds
-- the one row worth verifying. A new set replaces the old one.
CREATE TABLE recovery_codes (
    user_id    {{blob}} NOT NULL REFERENCES users (id),
    id         TEXT     NOT NULL,
    lookup     {{blob}} NOT NULL,
    hash       TEXT     NOT NULL,
    created_at BIGINT   NOT NULL,
    used_at    BIGINT,
    PRIMARY KEY (user_id, id)
);
CREATE INDEX recovery_codes_by_lookup ON recovery_codes (user_id, lookup);

-- Helpdesk recovery grants are grants of kind 'recovery' with what the
-- issuer checked; under the four-eyes policy they wait for approved_at.
ALTER TABLE grants ADD COLUMN verification TEXT NOT NULL DEFAULT '';  -- checklist item IDs, comma-separated
ALTER TABLE grants ADD COLUMN note TEXT NOT NULL DEFAULT '';
ALTER TABLE grants ADD COLUMN needs_approval BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE grants ADD COLUMN approved_by TEXT NOT NULL DEFAULT '';
ALTER TABLE grants ADD COLUMN approved_at BIGINT;

-- A recovery-scoped session may register one key: the first registration
-- sets these, in the same conditional UPDATE that checks they were unset.
-- The key is remembered so that the session cannot revoke it.
ALTER TABLE sessions ADD COLUMN key_registered_at BIGINT;
ALTER TABLE sessions ADD COLUMN registered_key {{blob}};
