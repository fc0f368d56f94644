-- The demo project scripts/run.sh seeds (idempotently) so that a newcomer sees runs flowing at
-- once: two tests against the local httpbin run.sh starts on 127.0.0.1:8090, scheduled every
-- 10 s from the "default" location. One passes; one fails on purpose (a wrong status) so that
-- a failure and its explanation can be seen too. psql variables: none.
INSERT INTO projects (slug, name) VALUES ('demo', 'Demo') ON CONFLICT (slug) DO NOTHING;

INSERT INTO environments (project_id, name, variables)
SELECT id, 'local', '{"base": "http://127.0.0.1:8090"}' FROM projects WHERE slug = 'demo'
ON CONFLICT (project_id, name) DO NOTHING;

INSERT INTO tests (project_id, name, tags, current_version)
SELECT id, t.name, ARRAY['demo'], 1 FROM projects,
       (VALUES ('httpbin is up'), ('a failing check')) AS t(name)
WHERE slug = 'demo'
ON CONFLICT (project_id, name) DO NOTHING;

INSERT INTO test_versions (test_id, version, definition)
SELECT t.id, 1, CASE t.name
    WHEN 'httpbin is up' THEN '{
  "name": "httpbin is up",
  "steps": [{
    "name": "get",
    "request": {"url": "${base}/get?from=rampart"},
    "expect": {"status": 200},
    "assert": ["$.args.from == \"rampart\"", "time < 1000"]
  }]
}'
    ELSE '{
  "name": "a failing check",
  "steps": [{
    "name": "teapot",
    "request": {"url": "${base}/status/418"},
    "expect": {"status": 200}
  }]
}' END
FROM tests t JOIN projects p ON p.id = t.project_id WHERE p.slug = 'demo'
ON CONFLICT (test_id, version) DO NOTHING;

INSERT INTO schedules (project_id, test_id, environment_id, interval_s, locations)
SELECT p.id, t.id, e.id, 10, ARRAY['default']
FROM projects p JOIN tests t ON t.project_id = p.id JOIN environments e ON e.project_id = p.id
WHERE p.slug = 'demo' AND NOT EXISTS (SELECT 1 FROM schedules s WHERE s.test_id = t.id);

-- Alerts: an e-mail channel to the local mail catcher run.sh starts (its mails land in
-- .run/mail.jsonl) and a rule for every test of the project: the failing test opens an
-- incident after 2 failed runs, so one "FAILING" mail arrives about 20 s after start.
INSERT INTO channels (project_id, name, kind, config)
SELECT id, 'team mail', 'email', '{"to": ["team@demo.local"]}' FROM projects WHERE slug = 'demo'
ON CONFLICT (project_id, name) DO NOTHING;

INSERT INTO alert_rules (project_id, name, channel_ids)
SELECT p.id, 'every test', ARRAY[c.id]
FROM projects p JOIN channels c ON c.project_id = p.id AND c.name = 'team mail'
WHERE p.slug = 'demo'
ON CONFLICT (project_id, name) DO NOTHING;
