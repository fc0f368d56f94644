-- 0006: incidents and the notification ledger (issue #7, docs/alerts.md).
--
-- test_health: one row per (test, location), the streak of its scheduled runs, applied in
--   fire-time order under the row's lock: a result older than the last one applied changes
--   nothing, and a run applied twice (a redelivered job) changes nothing the second time.
-- incidents: one per (alert rule, test, location) while open. A rule's incident opens when the
--   failure streak reaches the rule's failures_to_open and resolves when the pass streak
--   reaches its passes_to_resolve, so rules with different thresholds (chat after 1 failure,
--   the pager after 3) each get their own incident.
-- incident_transitions: every transition once (UNIQUE (incident_id, kind, seq)), and the
--   outbox: published_at is set once the incident.<kind> event is confirmed by the broker; a
--   row left unpublished (its publisher died) is published by the sweep of the mailer and
--   connector. Kind 'reminder' (seq = the reminder's number) is inserted by that sweep while an
--   incident stays open; kind 'test' is the "send test notification" action of one channel.
-- notifications: the ledger, one row per (transition, channel): a redelivered event never
--   sends twice, and the row says what happened (sent, muted and why, failed and why).
-- runs.failure: the first failed check of a failed run, for the alert's text (incidents.failure
--   keeps it, or the run's error when it could not execute).
-- Never edit once applied: add 0007_... instead.

ALTER TABLE runs ADD COLUMN failure text;

CREATE TABLE test_health (
    test_id uuid NOT NULL REFERENCES tests (id) ON DELETE CASCADE,
    location text NOT NULL,
    project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    last_run_id uuid NOT NULL,
    last_fire_time timestamptz NOT NULL,
    last_status text NOT NULL CHECK (last_status IN ('passed', 'failed', 'error')),
    fail_streak integer NOT NULL DEFAULT 0,
    pass_streak integer NOT NULL DEFAULT 0,
    failing_since timestamptz, -- fire time of the first failure of the current streak
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (test_id, location)
);
CREATE INDEX test_health_project ON test_health (project_id);

CREATE TABLE incidents (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    rule_id uuid NOT NULL REFERENCES alert_rules (id) ON DELETE CASCADE,
    test_id uuid NOT NULL REFERENCES tests (id) ON DELETE CASCADE,
    location text NOT NULL,
    failing_since timestamptz NOT NULL,
    opened_at timestamptz NOT NULL, -- fire time of the run that opened it
    opened_run_id uuid NOT NULL,
    resolved_at timestamptz,
    resolved_run_id uuid,
    failure text -- what failed in the run that opened it
);
CREATE UNIQUE INDEX incidents_open ON incidents (rule_id, test_id, location) WHERE resolved_at IS NULL;
CREATE INDEX incidents_project ON incidents (project_id, opened_at DESC);
CREATE INDEX incidents_test ON incidents (test_id, location) WHERE resolved_at IS NULL;

CREATE TABLE incident_transitions (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    incident_id uuid REFERENCES incidents (id) ON DELETE CASCADE,
    channel_id uuid REFERENCES channels (id) ON DELETE CASCADE, -- kind 'test' only
    kind text NOT NULL CHECK (kind IN ('opened', 'resolved', 'reminder', 'test')),
    seq integer NOT NULL DEFAULT 0,
    run_id uuid,
    occurred_at timestamptz NOT NULL, -- the run's fire time; the sweep's time for a reminder
    -- the clock, not the transaction's start: a transaction that waited for the test's lock
    -- records its transition after the one it waited for
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    published_at timestamptz,
    requested_by uuid REFERENCES users (id) ON DELETE SET NULL, -- kind 'test'
    UNIQUE (incident_id, kind, seq),
    CHECK ((kind = 'test') = (incident_id IS NULL)),
    CHECK ((kind = 'test') = (channel_id IS NOT NULL))
);
CREATE INDEX incident_transitions_unpublished ON incident_transitions (created_at)
    WHERE published_at IS NULL;
CREATE INDEX incident_transitions_project ON incident_transitions (project_id, created_at DESC);

-- status: sending (claimed by one copy until claimed_until; a copy that died leaves it to expire)
-- -> sent | retrying (next try through a retry queue) | failed (gave up: reason says why) |
-- muted (a maintenance window or the rule's settings: reason says which).
CREATE TABLE notifications (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    transition_id uuid NOT NULL REFERENCES incident_transitions (id) ON DELETE CASCADE,
    channel_id uuid NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    status text NOT NULL DEFAULT 'sending'
        CHECK (status IN ('sending', 'retrying', 'sent', 'failed', 'muted')),
    attempts integer NOT NULL DEFAULT 0,
    claimed_by text,
    claimed_until timestamptz,
    reason text,
    response text, -- what the receiver answered to the last try (status line, cut)
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    sent_at timestamptz,
    UNIQUE (transition_id, channel_id)
);
CREATE INDEX notifications_project ON notifications (project_id, created_at DESC);
CREATE INDEX notifications_channel ON notifications (channel_id, created_at DESC);

-- Does rule `ar` cover a test with id `t` and tags `tags`? (both lists empty: every test)
CREATE FUNCTION alert_rule_covers(ar alert_rules, t uuid, tags text[])
RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT (cardinality(ar.test_ids) = 0 AND cardinality(ar.tags) = 0)
           OR t = ANY (ar.test_ids) OR ar.tags && tags
$$;

-- Apply one finished scheduled run to its test's health and to the incidents of the rules that
-- cover the test; returns the transitions it created. The caller holds nothing: this locks the
-- (test, location) row of test_health, so concurrent finishes of one test are serialized and
-- each transition is created once. Manual and CI runs change nothing (they are not monitoring).
-- 'error' (the run could not execute: the target refused the connection, a dead letter) counts
-- as a failure, a warning never does (the run passed).
CREATE FUNCTION incident_apply(p_run uuid, p_project uuid, p_test uuid, p_location text,
                               p_fire timestamptz, p_trigger text, p_status text,
                               p_failure text)
RETURNS TABLE (transition_id uuid, kind text) LANGUAGE plpgsql AS $$
DECLARE
    h test_health%ROWTYPE;
    failing boolean := p_status <> 'passed';
    test_tags text[];
    rec record;
    new_incident uuid;
BEGIN
    IF p_trigger <> 'schedule' OR p_status NOT IN ('passed', 'failed', 'error') THEN
        RETURN;
    END IF;
    INSERT INTO test_health AS th (test_id, location, project_id, last_run_id, last_fire_time,
                                   last_status, fail_streak, pass_streak, failing_since)
    VALUES (p_test, p_location, p_project, p_run, p_fire, p_status,
            CASE WHEN failing THEN 1 ELSE 0 END, CASE WHEN failing THEN 0 ELSE 1 END,
            CASE WHEN failing THEN p_fire END)
    ON CONFLICT (test_id, location) DO NOTHING
    RETURNING * INTO h;
    IF NOT FOUND THEN
        SELECT * INTO h FROM test_health
        WHERE test_id = p_test AND location = p_location FOR UPDATE;
        -- older than (or the same as) the last run applied: changes nothing
        IF (h.last_fire_time, h.last_run_id) >= (p_fire, p_run) THEN
            RETURN;
        END IF;
        IF failing THEN
            h.fail_streak := h.fail_streak + 1;
            h.pass_streak := 0;
            IF h.fail_streak = 1 THEN
                h.failing_since := p_fire;
            END IF;
        ELSE
            h.pass_streak := h.pass_streak + 1;
            h.fail_streak := 0;
            h.failing_since := NULL;
        END IF;
        UPDATE test_health SET last_run_id = p_run, last_fire_time = p_fire,
               last_status = p_status, fail_streak = h.fail_streak, pass_streak = h.pass_streak,
               failing_since = h.failing_since, updated_at = now()
        WHERE test_id = p_test AND location = p_location;
    END IF;

    IF NOT failing THEN
        FOR rec IN
            SELECT i.id FROM incidents i JOIN alert_rules ar ON ar.id = i.rule_id
            WHERE i.test_id = p_test AND i.location = p_location AND i.resolved_at IS NULL
              AND h.pass_streak >= ar.passes_to_resolve
            ORDER BY i.id
        LOOP
            UPDATE incidents SET resolved_at = p_fire, resolved_run_id = p_run WHERE id = rec.id;
            INSERT INTO incident_transitions (project_id, incident_id, kind, run_id, occurred_at)
            VALUES (p_project, rec.id, 'resolved', p_run, p_fire)
            RETURNING id INTO transition_id;
            kind := 'resolved';
            RETURN NEXT;
        END LOOP;
        RETURN;
    END IF;

    SELECT t.tags INTO test_tags FROM tests t WHERE t.id = p_test;
    FOR rec IN
        SELECT ar.id FROM alert_rules ar
        WHERE ar.project_id = p_project AND ar.enabled
          AND alert_rule_covers(ar, p_test, coalesce(test_tags, '{}'))
          AND h.fail_streak >= ar.failures_to_open
          AND NOT EXISTS (SELECT 1 FROM incidents i
                          WHERE i.rule_id = ar.id AND i.test_id = p_test
                            AND i.location = p_location AND i.resolved_at IS NULL)
        ORDER BY ar.id
    LOOP
        INSERT INTO incidents (project_id, rule_id, test_id, location, failing_since, opened_at,
                               opened_run_id, failure)
        VALUES (p_project, rec.id, p_test, p_location, coalesce(h.failing_since, p_fire), p_fire,
                p_run, p_failure)
        RETURNING id INTO new_incident;
        INSERT INTO incident_transitions (project_id, incident_id, kind, run_id, occurred_at)
        VALUES (p_project, new_incident, 'opened', p_run, p_fire)
        RETURNING id INTO transition_id;
        kind := 'opened';
        RETURN NEXT;
    END LOOP;
END
$$;

-- The worker's final write for a batch of runs: lock them in id order (as every batch update
-- of runs does, so two never deadlock), record the final status of those not final yet, then
-- apply each to its incidents in (test, location) order (the lock order of test_health).
-- Returns the transitions created, for the caller to publish after commit.
CREATE FUNCTION finish_runs(p_ids uuid[], p_status text[], p_finished timestamptz[],
                            p_error text[], p_duration float8[], p_failure text[])
RETURNS TABLE (transition_id uuid, kind text, project_id uuid) LANGUAGE plpgsql AS $$
DECLARE
    done uuid[];
    rec record;
BEGIN
    PERFORM 1 FROM runs WHERE id = ANY (p_ids) ORDER BY id FOR UPDATE;
    WITH u AS (
        UPDATE runs AS r SET status = v.status, finished_at = v.finished_at, error = v.error,
               duration_ms = v.duration_ms, failure = v.failure
        FROM unnest(p_ids, p_status, p_finished, p_error, p_duration, p_failure)
             AS v(id, status, finished_at, error, duration_ms, failure)
        WHERE r.id = v.id AND r.status IN ('pending', 'queued', 'running')
        RETURNING r.id)
    SELECT array_agg(id) INTO done FROM u;
    IF done IS NULL THEN
        RETURN;
    END IF;
    FOR rec IN
        SELECT r.id, r.project_id, r.test_id, r.location, r.fire_time, r.trigger, r.status,
               coalesce(r.failure, r.error) AS failure
        FROM runs r WHERE r.id = ANY (done)
        ORDER BY r.test_id, r.location, r.fire_time, r.id
    LOOP
        RETURN QUERY
            SELECT a.transition_id, a.kind, rec.project_id
            FROM incident_apply(rec.id, rec.project_id, rec.test_id, rec.location,
                                rec.fire_time, rec.trigger, rec.status, rec.failure) a;
    END LOOP;
END
$$;
