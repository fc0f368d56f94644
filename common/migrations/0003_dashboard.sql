-- 0003: the dashboard (issue #6, docs/api.md): users and their sessions, projects' members
-- and roles, API keys for CI, the login throttle, the audit log, alert channels and rules
-- (configured here, used by the mailer and connector), and each run's duration for the
-- charts. Secrets (session tokens, API keys) are stored as SHA-256 hashes of random tokens;
-- passwords as argon2id strings; channel credentials and secret variables sealed with
-- RAMPART_SECRET_KEY. Never edit once applied: add 0004_... instead.

CREATE TABLE users (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email text NOT NULL CHECK (length(email) BETWEEN 3 AND 254 AND email = lower(email)),
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    password_hash text NOT NULL,
    is_admin boolean NOT NULL DEFAULT false,
    disabled boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email ON users (email);

-- token_hash: SHA-256 of the random cookie value (the cookie alone can open the session).
-- A session ends at expires_at (absolute) or after idle_expires_at (moved forward while used).
CREATE TABLE sessions (
    token_hash bytea PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    idle_expires_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    user_agent text,
    ip text
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expiry ON sessions (expires_at);

CREATE TABLE memberships (
    project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role text NOT NULL CHECK (role IN ('owner', 'editor', 'viewer')),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, user_id)
);
CREATE INDEX memberships_user ON memberships (user_id);

-- An API key belongs to one project and acts with its role there (editor or viewer), for CI.
-- The token is "rpk_" + prefix + "_" + secret; only the prefix (to find the row) and the
-- SHA-256 of the whole token are kept.
CREATE TABLE api_keys (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    role text NOT NULL CHECK (role IN ('editor', 'viewer')),
    prefix text NOT NULL UNIQUE,
    token_hash bytea NOT NULL,
    created_by uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    expires_at timestamptz,
    revoked_at timestamptz
);
CREATE INDEX api_keys_project ON api_keys (project_id);

-- Failed logins per key ("email:..." or "ip:..."), in a sliding window, shared by every
-- dashboard copy.
CREATE TABLE login_throttle (
    key text PRIMARY KEY,
    failures integer NOT NULL,
    window_start timestamptz NOT NULL
);

CREATE TABLE audit_log (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    actor_user_id uuid REFERENCES users (id) ON DELETE SET NULL,
    actor_api_key_id uuid REFERENCES api_keys (id) ON DELETE SET NULL,
    actor text NOT NULL,
    project_id uuid REFERENCES projects (id) ON DELETE CASCADE,
    action text NOT NULL,
    target_type text NOT NULL,
    target_id text,
    details jsonb NOT NULL DEFAULT '{}',
    ip text,
    request_id text
);
CREATE INDEX audit_log_project ON audit_log (project_id, id DESC);

-- A notification channel: kind says which sender (mailer: email; connector: the others);
-- config holds the non-secret settings, secrets the sealed credentials (never returned).
CREATE TABLE channels (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    kind text NOT NULL CHECK (kind IN ('email', 'webhook', 'slack', 'mattermost', 'teams',
                                       'discord', 'pagerduty', 'opsgenie', 'statuspage')),
    config jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(config) = 'object'),
    secrets jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(secrets) = 'object'),
    enabled boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, name)
);

-- Which tests (all, by id, or by tag), which transitions, which channels; thresholds for
-- opening (failures in a row) and resolving (passes in a row); a reminder interval.
CREATE TABLE alert_rules (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    test_ids uuid[] NOT NULL DEFAULT '{}',
    tags text[] NOT NULL DEFAULT '{}',
    on_opened boolean NOT NULL DEFAULT true,
    on_resolved boolean NOT NULL DEFAULT true,
    failures_to_open integer NOT NULL DEFAULT 2 CHECK (failures_to_open BETWEEN 1 AND 100),
    passes_to_resolve integer NOT NULL DEFAULT 1 CHECK (passes_to_resolve BETWEEN 1 AND 100),
    remind_every_s integer CHECK (remind_every_s BETWEEN 60 AND 2592000),
    channel_ids uuid[] NOT NULL DEFAULT '{}',
    enabled boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, name)
);

-- The run's total time (every step, ms), written with its final status, for the charts
-- (percentiles are computed here: the MongoDB-compatible server has no $percentile).
ALTER TABLE runs ADD COLUMN duration_ms double precision;
-- Run-time variables given with a manual or CI run (the "override" layer, above the test's own
-- variables); NULL for scheduled runs.
ALTER TABLE runs ADD COLUMN overrides jsonb CHECK (overrides IS NULL OR jsonb_typeof(overrides) = 'object');
CREATE INDEX runs_test_finished ON runs (test_id, finished_at) WHERE finished_at IS NOT NULL;
