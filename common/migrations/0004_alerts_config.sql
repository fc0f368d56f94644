-- 0004: maintenance windows (issue #7, configured through the dashboard: api_alerts.c). A
-- window mutes the alerts of a project, or of some of its tests (by id or tag), while it is
-- active. Two kinds, each well-defined:
--   once:   active for starts_at <= t < ends_at.
--   weekly: on each listed day (mon..sun), starting at the wall-clock time start_time in
--           `timezone` (an IANA name) and lasting duration_minutes of elapsed time (so a
--           window crossing a DST change keeps its length; a start time that does not exist
--           that day is placed as PostgreSQL's AT TIME ZONE places it). A window may run
--           past midnight and into the next listed day.
-- maintenance_window_active(w, t) is the one definition of "active" the alert pipeline uses.
-- Never edit once applied: add 0005_... instead.

CREATE TABLE maintenance_windows (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    kind text NOT NULL CHECK (kind IN ('once', 'weekly')),
    starts_at timestamptz,
    ends_at timestamptz,
    days text[] CHECK (days <@ ARRAY['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun']
                       AND cardinality(days) BETWEEN 1 AND 7),
    start_time time CHECK (start_time = date_trunc('minute', start_time)),
    duration_minutes integer CHECK (duration_minutes BETWEEN 1 AND 10080),
    timezone text CHECK (length(timezone) BETWEEN 1 AND 64),
    -- scope: both empty = the whole project; otherwise tests listed or carrying one of the tags
    test_ids uuid[] NOT NULL DEFAULT '{}',
    tags text[] NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, name),
    CHECK (CASE kind
           WHEN 'once' THEN starts_at IS NOT NULL AND ends_at IS NOT NULL AND starts_at < ends_at
                            AND days IS NULL AND start_time IS NULL
                            AND duration_minutes IS NULL AND timezone IS NULL
           ELSE starts_at IS NULL AND ends_at IS NULL AND days IS NOT NULL
                AND start_time IS NOT NULL AND duration_minutes IS NOT NULL
                AND timezone IS NOT NULL
           END)
);
CREATE INDEX maintenance_windows_project ON maintenance_windows (project_id);

-- Is window w active at instant t? (weekly: an occurrence starting on local day d began at
-- (d + start_time) in the zone; the longest lasts 7 days, so days t-7 .. t are enough.)
CREATE FUNCTION maintenance_window_active(w maintenance_windows, t timestamptz)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT CASE w.kind
        WHEN 'once' THEN t >= w.starts_at AND t < w.ends_at
        ELSE EXISTS (
            SELECT 1
            FROM generate_series(0, 7) AS back (n),
                 LATERAL (SELECT (t AT TIME ZONE w.timezone)::date - back.n AS day) d,
                 LATERAL (SELECT (d.day + w.start_time) AT TIME ZONE w.timezone AS at) s
            WHERE (ARRAY['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'])
                      [extract(isodow FROM d.day)::int] = ANY (w.days)
              AND t >= s.at AND t < s.at + w.duration_minutes * interval '1 minute')
    END
$$;
