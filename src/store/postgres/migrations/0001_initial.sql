-- estca's schema, version 1. Text keys use the "C" collation so that listings page in byte
-- order whatever the database's locale. Instants are timestamptz (microseconds) plus the
-- nanoseconds below the microsecond (`*_ns`), so that every record round-trips exactly.

CREATE TABLE contracts (
    code text COLLATE "C" PRIMARY KEY,
    name text NOT NULL,
    created_at timestamptz NOT NULL,
    created_at_ns smallint NOT NULL
);

CREATE TABLE accounts (
    id text COLLATE "C" PRIMARY KEY,
    contract text COLLATE "C" NOT NULL REFERENCES contracts (code),
    role text NOT NULL CHECK (role IN ('master', 'user')),
    name text NOT NULL,
    password_hash text NOT NULL,
    failed_attempts bigint NOT NULL CHECK (failed_attempts BETWEEN 0 AND 4294967295),
    locked boolean NOT NULL,
    choice text NOT NULL CHECK (choice IN ('continue', 'reissue', 'revoked')),
    current_certificate bytea,
    issued_count bigint NOT NULL CHECK (issued_count BETWEEN 0 AND 4294967295),
    -- Compare-and-swap: every decision of the registration authority is committed with
    -- `UPDATE accounts ... WHERE id = $1 AND version = $2`.
    version bigint NOT NULL CHECK (version >= 0),
    created_at timestamptz NOT NULL,
    created_at_ns smallint NOT NULL
);
CREATE INDEX accounts_by_contract ON accounts (contract, id);

-- No two IDs may differ by letter case only (IDs restored from older releases excepted).
CREATE TABLE account_ids_folded (
    folded text COLLATE "C" PRIMARY KEY
);

CREATE TABLE reserved_serials (
    serial bytea PRIMARY KEY CHECK (length(serial) = 16),
    reserved_at timestamptz NOT NULL,
    reserved_at_ns smallint NOT NULL
);

CREATE TABLE certificates (
    serial bytea PRIMARY KEY CHECK (length(serial) = 16),
    key_fingerprint bytea NOT NULL UNIQUE CHECK (length(key_fingerprint) = 32),
    holder_kind text NOT NULL CHECK (holder_kind IN ('account', 'app', 'tls_server', 'ocsp_signer')),
    account_id text COLLATE "C" REFERENCES accounts (id),
    contract text COLLATE "C",
    role text CHECK (role IN ('master', 'user')),
    issued_num bigint CHECK (issued_num BETWEEN 0 AND 4294967295),
    app_name text COLLATE "C",
    tls_names text[],
    -- The account's current certificate (accounts.current_certificate), kept here too so that
    -- the unique index below is a backstop of "one current certificate per ID".
    is_current boolean NOT NULL DEFAULT false,
    subject text NOT NULL,
    not_before timestamptz NOT NULL,
    not_before_ns smallint NOT NULL,
    not_after timestamptz NOT NULL,
    not_after_ns smallint NOT NULL,
    revoked_at timestamptz,
    revoked_at_ns smallint,
    revocation_reason text,
    der bytea NOT NULL,
    CHECK ((holder_kind = 'account') = (account_id IS NOT NULL AND contract IS NOT NULL
        AND role IS NOT NULL AND issued_num IS NOT NULL)),
    CHECK ((holder_kind = 'app') = (app_name IS NOT NULL)),
    CHECK ((holder_kind = 'tls_server') = (tls_names IS NOT NULL)),
    CHECK ((revoked_at IS NULL) = (revocation_reason IS NULL)),
    CHECK ((revoked_at IS NULL) = (revoked_at_ns IS NULL)),
    CHECK (NOT is_current OR holder_kind = 'account')
);
CREATE UNIQUE INDEX one_current_certificate_per_account ON certificates (account_id) WHERE is_current;
-- The revocation index: what a CRL lists, without scanning every certificate.
CREATE INDEX revoked_certificates ON certificates (serial) WHERE revoked_at IS NOT NULL;

CREATE TABLE apps (
    name text COLLATE "C" PRIMARY KEY,
    scope_all boolean NOT NULL,
    scope_contracts text[] NOT NULL,
    can_create_contracts boolean NOT NULL,
    certificate bytea NOT NULL REFERENCES certificates (serial),
    revoked boolean NOT NULL,
    created_at timestamptz NOT NULL,
    created_at_ns smallint NOT NULL
);

-- History in commit order: `seq` is drawn from counters('history_seq') by the appending
-- transaction as its last step, so the row lock on the counter orders appends as their
-- commits (see src/store/postgres/history.rs).
CREATE TABLE history (
    seq bigint PRIMARY KEY CHECK (seq > 0),
    at timestamptz NOT NULL,
    at_ns smallint NOT NULL,
    account_id text COLLATE "C",
    contract text COLLATE "C",
    kind text NOT NULL,
    actor_kind text NOT NULL CHECK (actor_kind IN ('operator', 'account', 'app', 'anonymous', 'system')),
    actor_uid bigint,
    actor_name text,
    source text NOT NULL,
    refused boolean NOT NULL,
    outcome_text text NOT NULL
);
CREATE INDEX history_by_account ON history (account_id, seq) WHERE account_id IS NOT NULL;
CREATE INDEX history_by_contract ON history (contract, seq) WHERE contract IS NOT NULL;

-- Token buckets (src/store/budget.rs), shared by every daemon.
CREATE TABLE budgets (
    name text COLLATE "C" PRIMARY KEY,
    tokens double precision NOT NULL,
    updated_ms bigint NOT NULL
);

-- Numbers drawn under a row lock: the last history entry and the last CRL number.
CREATE TABLE counters (
    name text PRIMARY KEY,
    value bigint NOT NULL CHECK (value >= 0)
);
INSERT INTO counters (name, value) VALUES ('history_seq', 0), ('crl_number', 0);
