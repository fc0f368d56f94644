/* Integration test of rampart-scheduler against the real PostgreSQL and RabbitMQ of the test
 * set-up (RAMPART_TEST_PG, RAMPART_TEST_AMQP). The test plays the worker: it consumes the job
 * queue of a location of its own and acks everything. Proves, with two schedulers running at
 * once: every fire time of every interval schedule becomes exactly one run and one job (the
 * test computes the expected fires from where the schedules stopped); a schedule overdue by
 * an hour gets one catch-up run, not a burst; a cron schedule runs on its fire times only; a
 * run-now row (pending, no schedule) is published to its chosen location, even one whose
 * queue did not exist yet; a schedule with a broken cron is paused with the reason; both
 * schedulers drain on SIGTERM with exit 0. Everything it creates has unique names. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/wait.h>

#include <cmocka.h>

#include "rampart/amqp.h"
#include "rampart/job.h"
#include "rampart/log.h"
#include "rampart/mem.h"
#include "rampart/pg.h"

#define N_INTERVAL     20 /* interval schedules, 1 s and 2 s */
#define N_INTERVAL_SQL "20"
#define RUN_FOR_MS     8000
#define N_SCHEDULERS   2

static const char *pg_url, *amqp_url;
static struct rp_pg *pg;
static char tag[32];       /* unique per test run */
static char location[48];  /* the location the schedules run from */
static char location2[48]; /* a location without a queue, for run-now */
static char project_id[40], test_id[40];
static pid_t schedulers[N_SCHEDULERS];

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Run SQL with parameters; returns the result (caller clears) and fails the test on error. */
static PGresult *q(const char *sql, int n, const char *const *params)
{
    PGresult *res = NULL;
    struct rp_error e;
    if (rp_pg_exec(pg, sql, n, params, &res, &e) != RP_OK)
        fail_msg("SQL failed: %s\n%s", e.msg, sql);
    return res;
}

static void q0(const char *sql, int n, const char *const *params)
{
    PQclear(q(sql, n, params));
}

static pid_t start_scheduler(int i)
{
    char log[256], inst[64];
    snprintf(log, sizeof(log), "/tmp/it_pipeline_scheduler.%s.%d.log", tag, i);
    snprintf(inst, sizeof(inst), "sched-%d", i);
    pid_t pid = fork();
    if (pid == 0) {
        FILE *f = freopen(log, "w", stderr);
        (void)f;
        setenv("RAMPART_PG_URL", pg_url, 1);
        setenv("RAMPART_AMQP_URLS", amqp_url, 1);
        setenv("RAMPART_HTTP_LISTEN", "127.0.0.1:0", 1);
        setenv("RAMPART_INSTANCE", inst, 1);
        setenv("RAMPART_SCHEDULER_SWEEP_INTERVAL", "300ms", 1);
        setenv("RAMPART_SCHEDULER_LEASE", "2s", 1);
        setenv("RAMPART_DRAIN_TIMEOUT", "10s", 1);
        execl(RP_BUILD_DIR "/scheduler/rampart-scheduler", "rampart-scheduler", (char *)NULL);
        _exit(127);
    }
    fprintf(stderr, "scheduler %d: pid %d, log %s\n", i, (int)pid, log);
    return pid;
}

/* A consumer of `queue`; every delivery is decoded, its runs recorded, and acked. */
struct seen {
    char (*ids)[RP_UUID_LEN + 1];
    char (*sched)[RP_UUID_LEN + 1];
    int64_t *fire;
    size_t n, cap;
    size_t messages;
};

static void drain_queue(struct rp_amqp_consumer *c, struct seen *s, long long until_ms)
{
    while (mono_ms() < until_ms) {
        struct rp_amqp_delivery *d = NULL;
        int rc = rp_amqp_consumer_next(c, 100, &d, NULL);
        if (rc == RP_ETIMEDOUT)
            continue;
        assert_int_equal(rc, RP_OK);
        struct rp_job *job = NULL;
        struct rp_error e;
        if (rp_job_decode(d->body, d->len, &job, &e) != RP_OK)
            fail_msg("undecodable job: %s", e.msg);
        s->messages++;
        for (size_t i = 0; i < job->n; i++) {
            if (s->n == s->cap) {
                s->cap = s->cap ? s->cap * 2 : 256;
                s->ids = rp_xrealloc(s->ids, s->cap * sizeof(*s->ids));
                s->sched = rp_xrealloc(s->sched, s->cap * sizeof(*s->sched));
                s->fire = rp_xrealloc(s->fire, s->cap * sizeof(*s->fire));
            }
            memcpy(s->ids[s->n], job->runs[i].run_id, RP_UUID_LEN + 1);
            snprintf(s->sched[s->n], RP_UUID_LEN + 1, "%s",
                     job->runs[i].schedule_id ? job->runs[i].schedule_id : "");
            s->fire[s->n] = job->runs[i].fire_time_ms;
            s->n++;
        }
        rp_job_free(job);
        assert_int_equal(rp_amqp_ack(c, d, NULL), RP_OK);
        rp_amqp_delivery_free(d);
    }
}

static void seen_free(struct seen *s)
{
    free(s->ids);
    free(s->sched);
    free(s->fire);
}

static size_t count_seen(const struct seen *s, const char *sched, int64_t fire)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n; i++)
        n += strcmp(s->sched[i], sched) == 0 && s->fire[i] == fire;
    return n;
}

static void setup_data(void)
{
    const char *p[] = {tag};
    PGresult *r = q("INSERT INTO projects (slug, name) VALUES ($1, $1) RETURNING id", 1, p);
    snprintf(project_id, sizeof(project_id), "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    const char *p2[] = {project_id};
    r = q("INSERT INTO tests (project_id, name, current_version) VALUES ($1, 'ping', 1) "
          "RETURNING id",
          1, p2);
    snprintf(test_id, sizeof(test_id), "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    const char *p3[] = {test_id};
    q0("INSERT INTO test_versions (test_id, version, definition) VALUES ($1, 1, "
       "'{\"name\": \"ping\", \"steps\": [{\"request\": {\"url\": \"http://127.0.0.1:9/\"}}]}')",
       1, p3);
}

static void test_scheduler(void **state)
{
    struct rp_error e;
    /* the location's queue, as a worker would declare it */
    struct rp_amqp_admin *adm = NULL;
    assert_int_equal(rp_amqp_admin_open(amqp_url, NULL, &adm, &e), RP_OK);
    const char *loc = location;
    assert_int_equal(rp_amqp_declare_topology(adm, &loc, 1, NULL, &e), RP_OK);
    char queue[80], queue2[80];
    snprintf(queue, sizeof(queue), "rampart.jobs.%s", location);
    snprintf(queue2, sizeof(queue2), "rampart.jobs.%s", location2);
    struct rp_amqp_consumer *c = NULL;
    assert_int_equal(rp_amqp_consumer_new(amqp_url, queue, 200, NULL, &c, &e), RP_OK);

    setup_data();
    const char *pl[] = {project_id, test_id, location};
    /* interval schedules, aligned on whole seconds, due 2 s from now */
    q0("INSERT INTO schedules (project_id, test_id, interval_s, locations, next_run_at) "
       "SELECT $1, $2, 1 + (g % 2), ARRAY[$3], date_trunc('second', now()) + interval '2 s' "
       "FROM generate_series(1, " N_INTERVAL_SQL ") g",
       3, pl);
    /* overdue by an hour: one catch-up run for the latest missed fire, then the cadence */
    PGresult *r = q("INSERT INTO schedules (project_id, test_id, interval_s, locations, "
                    "next_run_at) VALUES ($1, $2, 600, ARRAY[$3], "
                    "date_trunc('second', now()) - interval '3605 s') "
                    "RETURNING id, floor(extract(epoch FROM next_run_at) * 1000)::bigint",
                    3, pl);
    char catchup_id[40];
    snprintf(catchup_id, sizeof(catchup_id), "%s", PQgetvalue(r, 0, 0));
    int64_t catchup_due = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    PQclear(r);
    /* cron every minute, created with next_run_at = now (not a fire time) */
    r = q("INSERT INTO schedules (project_id, test_id, cron, timezone, locations) VALUES ($1, $2, "
          "'* * * * *', 'Europe/Berlin', ARRAY[$3]) RETURNING id",
          3, pl);
    char cron_id[40];
    snprintf(cron_id, sizeof(cron_id), "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    /* a broken cron: paused with the reason */
    r = q("INSERT INTO schedules (project_id, test_id, cron, locations) VALUES ($1, $2, "
          "'61 * * * *', ARRAY[$3]) RETURNING id",
          3, pl);
    char broken_id[40];
    snprintf(broken_id, sizeof(broken_id), "%s", PQgetvalue(r, 0, 0));
    PQclear(r);

    for (int i = 0; i < N_SCHEDULERS; i++)
        schedulers[i] = start_scheduler(i);
    long long t0 = mono_ms();
    struct seen s = {0};
    drain_queue(c, &s, t0 + RUN_FOR_MS / 2);

    /* run now, to a location that has no queue yet: the scheduler declares it */
    char run_id[RP_UUID_LEN + 1];
    rp_uuid_v7(run_id);
    const char *pr[] = {run_id, project_id, test_id, location2};
    q0("INSERT INTO runs (id, project_id, test_id, test_version, fire_time, trigger, location) "
       "VALUES ($1, $2, $3, 1, now(), 'manual', $4)",
       4, pr);
    drain_queue(c, &s, t0 + RUN_FOR_MS);

    /* stop the interval schedules: the row locks make this wait for a claim in progress, so
     * next_run_at is exactly the first fire not created */
    const char *pp[] = {project_id};
    r = q("UPDATE schedules SET enabled = false WHERE project_id = $1 AND interval_s IS NOT NULL "
          "AND interval_s < 600 RETURNING id, interval_s, "
          "floor(extract(epoch FROM next_run_at) * 1000)::bigint",
          1, pp);
    int n_sched = PQntuples(r);
    assert_int_equal(n_sched, N_INTERVAL);
    drain_queue(c, &s, mono_ms() + 3000); /* the last confirms and deliveries */

    /* every expected fire exactly once */
    size_t expected = 0, missing = 0, doubled = 0;
    PGresult *first = q("SELECT s.id, floor(extract(epoch FROM min(r.fire_time)) * 1000)::bigint "
                        "FROM schedules s LEFT JOIN runs r ON r.schedule_id = s.id "
                        "WHERE s.project_id = $1 AND s.interval_s < 600 GROUP BY s.id",
                        1, pp);
    for (int i = 0; i < n_sched; i++) {
        const char *sid = PQgetvalue(r, i, 0);
        int64_t step = strtoll(PQgetvalue(r, i, 1), NULL, 10) * 1000;
        int64_t stop = strtoll(PQgetvalue(r, i, 2), NULL, 10);
        int64_t start = -1;
        for (int k = 0; k < PQntuples(first); k++)
            if (strcmp(PQgetvalue(first, k, 0), sid) == 0 && !PQgetisnull(first, k, 1))
                start = strtoll(PQgetvalue(first, k, 1), NULL, 10);
        assert_true(start > 0);
        for (int64_t f = start; f < stop; f += step) {
            expected++;
            size_t n = count_seen(&s, sid, f);
            missing += n == 0;
            doubled += n > 1;
        }
    }
    PQclear(first);
    PQclear(r);
    /* nothing published that was not expected, and every run row is queued */
    const char *pq[] = {project_id, location};
    r = q("SELECT count(*), count(*) FILTER (WHERE status = 'queued') FROM runs r JOIN schedules s "
          "ON s.id = r.schedule_id WHERE r.project_id = $1 AND s.interval_s < 600 AND "
          "r.location = $2",
          2, pq);
    size_t rows = strtoul(PQgetvalue(r, 0, 0), NULL, 10);
    size_t queued = strtoul(PQgetvalue(r, 0, 1), NULL, 10);
    PQclear(r);
    size_t interval_jobs = 0;
    for (size_t i = 0; i < s.n; i++)
        interval_jobs += strcmp(s.sched[i], catchup_id) != 0 && strcmp(s.sched[i], cron_id) != 0 &&
                         s.sched[i][0];
    fprintf(stderr,
            "pipeline scheduler: schedulers=%d schedules=%d expected=%zu runs=%zu queued=%zu "
            "jobs_received=%zu messages=%zu missing=%zu doubled=%zu\n",
            N_SCHEDULERS, N_INTERVAL, expected, rows, queued, interval_jobs, s.messages, missing,
            doubled);
    assert_true(expected >= (size_t)N_INTERVAL * 3);
    assert_int_equal(missing, 0);
    assert_int_equal(doubled, 0);
    assert_int_equal(rows, expected);
    assert_int_equal(interval_jobs, expected);
    assert_int_equal(queued, rows);

    /* catch-up: exactly one run, for the latest fire before the claim, then next = +600 s */
    const char *pc[] = {catchup_id};
    r = q("SELECT count(*), floor(extract(epoch FROM max(r.fire_time)) * 1000)::bigint, "
          "floor(extract(epoch FROM max(s.next_run_at)) * 1000)::bigint FROM runs r JOIN schedules "
          "s ON s.id = r.schedule_id WHERE s.id = $1",
          1, pc);
    int64_t cu_fire = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    int64_t cu_next = strtoll(PQgetvalue(r, 0, 2), NULL, 10);
    fprintf(stderr,
            "pipeline scheduler: catch-up after 3605 s overdue: runs=%s fire=due+%llds "
            "next=fire+%llds\n",
            PQgetvalue(r, 0, 0), (long long)(cu_fire - catchup_due) / 1000,
            (long long)(cu_next - cu_fire) / 1000);
    assert_string_equal(PQgetvalue(r, 0, 0), "1");
    assert_true(cu_fire == catchup_due + 3600 * 1000LL);
    assert_true(cu_next == cu_fire + 600 * 1000LL);
    assert_int_equal(count_seen(&s, catchup_id, cu_fire), 1);
    PQclear(r);

    /* cron: next_run_at moved to a whole minute in the future, no run made at creation */
    const char *pcr[] = {cron_id};
    r = q("SELECT (SELECT count(*) FROM runs WHERE schedule_id = $1), "
          "extract(second FROM next_run_at) = 0 AND next_run_at > created_at "
          "FROM schedules WHERE id = $1",
          1, pcr);
    fprintf(stderr,
            "pipeline scheduler: cron schedule: runs before its first fire=%s, "
            "next_run_at on a whole minute=%s\n",
            PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1));
    assert_string_equal(PQgetvalue(r, 0, 1), "t");
    PQclear(r);
    const char *pb[] = {broken_id};
    r = q("SELECT enabled, last_error FROM schedules WHERE id = $1", 1, pb);
    fprintf(stderr, "pipeline scheduler: broken cron: enabled=%s last_error=%s\n",
            PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1));
    assert_string_equal(PQgetvalue(r, 0, 0), "f");
    assert_non_null(strstr(PQgetvalue(r, 0, 1), "minute"));
    PQclear(r);

    /* run now: published to the chosen location once its queue existed */
    struct rp_amqp_consumer *c2 = NULL;
    long long deadline = mono_ms() + 10000;
    while (rp_amqp_consumer_new(amqp_url, queue2, 10, NULL, &c2, &e) != RP_OK) {
        assert_true(mono_ms() < deadline);
        rp_amqp_sleep_ms(100);
    }
    struct seen s2 = {0};
    while (s2.n == 0 && mono_ms() < deadline)
        drain_queue(c2, &s2, mono_ms() + 200);
    fprintf(stderr, "pipeline scheduler: run-now to a location without a queue: delivered=%zu\n",
            s2.n);
    assert_int_equal(s2.n, 1);
    assert_string_equal(s2.ids[0], run_id);
    rp_amqp_consumer_free(c2);
    seen_free(&s2);

    /* drain: SIGTERM, exit 0 */
    for (int i = 0; i < N_SCHEDULERS; i++) {
        int st = 0;
        kill(schedulers[i], SIGTERM);
        assert_int_equal(waitpid(schedulers[i], &st, 0), schedulers[i]);
        schedulers[i] = 0;
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
    }
    rp_amqp_consumer_free(c);
    seen_free(&s);
    assert_int_equal(rp_amqp_delete_queue(adm, queue, &e), RP_OK);
    assert_int_equal(rp_amqp_delete_queue(adm, queue2, &e), RP_OK);
    rp_amqp_admin_close(adm);
    q0("DELETE FROM projects WHERE id = $1", 1, pp);
}

static int teardown(void **state)
{
    for (int i = 0; i < N_SCHEDULERS; i++)
        if (schedulers[i] > 0) {
            kill(schedulers[i], SIGKILL);
            waitpid(schedulers[i], NULL, 0);
        }
    rp_pg_close(pg);
    return 0;
}

int main(void)
{
    pg_url = getenv("RAMPART_TEST_PG");
    amqp_url = getenv("RAMPART_TEST_AMQP");
    if (!pg_url || !amqp_url) {
        fprintf(stderr, "it_pipeline_scheduler: RAMPART_TEST_PG and RAMPART_TEST_AMQP must be set "
                        "(scripts/servers.sh env)\n");
        return 1;
    }
    rp_log_init("it_pipeline_scheduler", "test", RP_LOG_WARN);
    struct rp_error e;
    if (rp_pg_open(pg_url, &pg, &e) != RP_OK || rp_pg_migrate(pg, NULL, NULL, &e) != RP_OK) {
        fprintf(stderr, "it_pipeline_scheduler: %s\n", e.msg);
        return 1;
    }
    char id[RP_UUID_LEN + 1];
    rp_uuid_v7(id);
    snprintf(tag, sizeof(tag), "its-%.8s%.4s", id + 24, id + 9);
    snprintf(location, sizeof(location), "%s", tag);
    snprintf(location2, sizeof(location2), "%s-now", tag);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_scheduler, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
