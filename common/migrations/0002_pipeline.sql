-- 0002: the run pipeline (issue #5, docs/pipeline.md). Projects own tests (every saved
-- definition is a new row of test_versions), environments (variables) and schedules (an
-- interval or a cron expression in a time zone, run from one or more locations). A run is one
-- execution of one test version at one location: one row per (schedule, fire time, location),
-- so two schedulers can never create the same run twice. Its result document lives in
-- MongoDB (`results`, _id = runs.id). Never edit once applied: add 0003_... instead.

CREATE TABLE projects (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    slug text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tests (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    tags text[] NOT NULL DEFAULT '{}',
    current_version integer NOT NULL DEFAULT 0 CHECK (current_version >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, name)
);

-- The definition is kept as the text the user saved (the editor shows it back as written);
-- the cast checks that it is JSON. Its meaning is checked by the worker's parser on save.
CREATE TABLE test_versions (
    test_id uuid NOT NULL REFERENCES tests (id) ON DELETE CASCADE,
    version integer NOT NULL CHECK (version >= 1),
    definition text NOT NULL CHECK (definition::json IS NOT NULL),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (test_id, version)
);

CREATE TABLE environments (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    variables jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(variables) = 'object'),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, name)
);

-- interval_s XOR cron. Interval fire times are next_run_at + k * interval_s (no drift);
-- cron fire times are computed in `timezone` (an IANA name). retries: how many times a failed
-- scheduled run is run again at once before its result counts (0..5). last_error: why the
-- scheduler paused the schedule (a cron it cannot parse), NULL when healthy.
CREATE TABLE schedules (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    test_id uuid NOT NULL REFERENCES tests (id) ON DELETE CASCADE,
    environment_id uuid REFERENCES environments (id) ON DELETE SET NULL,
    interval_s integer CHECK (interval_s BETWEEN 1 AND 31622400),
    cron text CHECK (length(cron) <= 200),
    timezone text NOT NULL DEFAULT 'UTC' CHECK (length(timezone) <= 64),
    locations text[] NOT NULL DEFAULT '{default}'
        CHECK (cardinality(locations) BETWEEN 1 AND 32
               AND array_to_string(locations, ',') ~ '^[a-z0-9][a-z0-9_-]{0,31}(,[a-z0-9][a-z0-9_-]{0,31})*$'),
    enabled boolean NOT NULL DEFAULT true,
    retries integer NOT NULL DEFAULT 0 CHECK (retries BETWEEN 0 AND 5),
    next_run_at timestamptz NOT NULL DEFAULT now(),
    last_error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((interval_s IS NULL) <> (cron IS NULL))
);
CREATE INDEX schedules_due ON schedules (next_run_at) WHERE enabled;
CREATE INDEX schedules_test ON schedules (test_id);

-- status: pending (created, not yet confirmed by the broker) -> queued (job confirmed) ->
-- running (a worker started it) -> passed | failed | error. attempts: deliveries that started
-- it (more than 1 after a worker died mid-run). lease_until: a pending run is (re)published
-- by the sweep once this has passed, so a scheduler that died between commit and publish
-- loses nothing. Manual and API runs have no schedule (schedule_id NULL).
CREATE TABLE runs (
    id uuid PRIMARY KEY,
    project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    test_id uuid NOT NULL REFERENCES tests (id) ON DELETE CASCADE,
    test_version integer NOT NULL CHECK (test_version >= 1),
    schedule_id uuid REFERENCES schedules (id) ON DELETE SET NULL,
    environment_id uuid REFERENCES environments (id) ON DELETE SET NULL,
    fire_time timestamptz NOT NULL,
    trigger text NOT NULL CHECK (trigger IN ('schedule', 'manual', 'api')),
    location text NOT NULL CHECK (location ~ '^[a-z0-9][a-z0-9_-]{0,31}$'),
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'queued', 'running', 'passed', 'failed', 'error')),
    attempts integer NOT NULL DEFAULT 0,
    retries integer NOT NULL DEFAULT 0 CHECK (retries BETWEEN 0 AND 5),
    error text,
    lease_until timestamptz NOT NULL DEFAULT now(),
    created_at timestamptz NOT NULL DEFAULT now(),
    queued_at timestamptz,
    started_at timestamptz,
    finished_at timestamptz,
    UNIQUE (schedule_id, fire_time, location)
);
CREATE INDEX runs_unpublished ON runs (lease_until) WHERE status = 'pending';
CREATE INDEX runs_test_latest ON runs (test_id, fire_time DESC);
CREATE INDEX runs_project_latest ON runs (project_id, fire_time DESC);
CREATE INDEX runs_fire_time ON runs (fire_time);
