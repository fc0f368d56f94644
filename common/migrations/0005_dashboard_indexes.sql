-- 0005: indexes for the dashboard's two hottest reads, measured (issue #6, bench/README.md):
-- the results list pages a project's runs by (fire_time, id) newest first, and the test list
-- counts each test's runs of the last 24 h by status. Both replace an index with the same
-- leading columns, so writes cost no more. Never edit once applied: add 0006_... instead.
CREATE INDEX runs_project_page ON runs (project_id, fire_time DESC, id DESC);
DROP INDEX runs_project_latest;
CREATE INDEX runs_test_recent ON runs (test_id, fire_time DESC) INCLUDE (status);
DROP INDEX runs_test_latest;
