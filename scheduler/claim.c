/* The claim transaction (docs/pipeline.md, "Scheduler"): lock a batch of due schedules with
 * FOR UPDATE SKIP LOCKED (so several schedulers share the work without waiting on each
 * other), insert one run per location for each (unique on schedule + fire time + location:
 * a repeated insert is a no-op), advance next_run_at, commit. Three statements per batch
 * whatever its size: the inserts and updates go through unnest() of array parameters. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rampart/cron.h"
#include "rampart/config.h"
#include "rampart/log.h"
#include "rampart/mem.h"
#include "rampart/metrics.h"
#include "rampart/pg.h"
#include "scheduler.h"

/* The due schedules with what their runs need. Times are whole Unix milliseconds. */
static const char claim_sql[] =
    "SELECT s.id, s.project_id, s.test_id, t.current_version, s.environment_id, s.interval_s, "
    "       s.cron, s.timezone, array_to_string(s.locations, ','), s.retries, "
    "       floor(extract(epoch FROM s.next_run_at) * 1000)::bigint, "
    "       floor(extract(epoch FROM now()) * 1000)::bigint, tv.definition, "
    "       COALESCE(e.variables::text, '{}') "
    "FROM schedules s JOIN tests t ON t.id = s.test_id "
    "LEFT JOIN test_versions tv ON tv.test_id = t.id AND tv.version = t.current_version "
    "LEFT JOIN environments e ON e.id = s.environment_id "
    "WHERE s.enabled AND s.next_run_at <= now() "
    "ORDER BY s.next_run_at LIMIT $1 FOR UPDATE OF s SKIP LOCKED";

static const char insert_sql[] =
    "INSERT INTO runs (id, project_id, test_id, test_version, schedule_id, environment_id, "
    "                  fire_time, trigger, location, retries, lease_until) "
    "SELECT v.id, v.project_id, v.test_id, v.test_version, v.schedule_id, v.environment_id, "
    "       timestamptz 'epoch' + v.fire_ms * interval '1 millisecond', 'schedule', v.location, "
    "       v.retries, now() + $10::bigint * interval '1 millisecond' "
    "FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::int[], $5::uuid[], $6::uuid[], "
    "            $7::bigint[], $8::text[], $9::int[]) "
    "     AS v(id, project_id, test_id, test_version, schedule_id, environment_id, fire_ms, "
    "          location, retries) "
    "ON CONFLICT (schedule_id, fire_time, location) DO NOTHING RETURNING id";

static const char advance_sql[] =
    "UPDATE schedules s SET next_run_at = CASE WHEN v.next_ms IS NULL THEN s.next_run_at "
    "         ELSE timestamptz 'epoch' + v.next_ms * interval '1 millisecond' END, "
    "       enabled = s.enabled AND v.error IS NULL, last_error = v.error, updated_at = "
    "       CASE WHEN v.error IS NULL THEN s.updated_at ELSE now() END "
    "FROM unnest($1::uuid[], $2::bigint[], $3::text[]) AS v(id, next_ms, error) "
    "WHERE s.id = v.id";

static const char next_due_sql[] =
    "SELECT floor(extract(epoch FROM min(next_run_at)) * 1000)::bigint, "
    "       floor(extract(epoch FROM now()) * 1000)::bigint FROM schedules WHERE enabled";

void sched_runs_clear(struct sched_runs *r)
{
    for (size_t i = 0; i < r->n; i++)
        rp_job_run_cleanup(&r->v[i].job);
    r->n = 0;
}

void sched_runs_cleanup(struct sched_runs *r)
{
    sched_runs_clear(r);
    free(r->v);
    r->v = NULL;
    r->cap = 0;
}

static struct sched_run *runs_push(struct sched_runs *r)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 64;
        r->v = rp_xrealloc(r->v, r->cap * sizeof(*r->v));
    }
    struct sched_run *x = &r->v[r->n++];
    memset(x, 0, sizeof(*x));
    return x;
}

static void array_num(struct rp_buf *b, long long v)
{
    char tmp[32];
    snprintf(tmp, sizeof(tmp), "%lld", v);
    rp_pg_array_add(b, tmp);
}

/* The arrays of one claim: runs to insert and schedules to advance. */
struct claim_arrays {
    struct rp_buf id, project, test, version, schedule, env, fire, location, retries;
    struct rp_buf s_id, s_next, s_error;
    size_t n_runs, n_sched;
};

static void arrays_init(struct claim_arrays *a)
{
    struct rp_buf *all[] = {&a->id,       &a->project, &a->test,   &a->version,
                            &a->schedule, &a->env,     &a->fire,   &a->location,
                            &a->retries,  &a->s_id,    &a->s_next, &a->s_error};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        rp_buf_init(all[i], 0);
        (void)rp_buf_append(all[i], "{", 1);
    }
    a->n_runs = a->n_sched = 0;
}

static void arrays_close(struct claim_arrays *a)
{
    struct rp_buf *all[] = {&a->id,       &a->project, &a->test,   &a->version,
                            &a->schedule, &a->env,     &a->fire,   &a->location,
                            &a->retries,  &a->s_id,    &a->s_next, &a->s_error};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        (void)rp_buf_append(all[i], "}", 1);
}

static void arrays_cleanup(struct claim_arrays *a)
{
    struct rp_buf *all[] = {&a->id,       &a->project, &a->test,   &a->version,
                            &a->schedule, &a->env,     &a->fire,   &a->location,
                            &a->retries,  &a->s_id,    &a->s_next, &a->s_error};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        rp_buf_cleanup(all[i]);
}

static void advance(struct claim_arrays *a, const char *id, long long next_ms, const char *error)
{
    rp_pg_array_add(&a->s_id, id);
    if (next_ms >= 0)
        array_num(&a->s_next, next_ms);
    else
        rp_pg_array_add(&a->s_next, NULL);
    rp_pg_array_add(&a->s_error, error);
    a->n_sched++;
}

struct claim_ctx {
    const struct sched_config *cfg;
    struct sched_runs *out;
    size_t base; /* out->n before this attempt: a re-run transaction starts from here */
    size_t claimed;
};

/* Plan one claimed row: append its runs and its advance. */
static void plan_row(struct claim_ctx *c, PGresult *res, int row, struct claim_arrays *a)
{
    const char *id = PQgetvalue(res, row, 0);
    int no_version = PQgetisnull(res, row, 12);
    int64_t due = strtoll(PQgetvalue(res, row, 10), NULL, 10);
    int64_t now = strtoll(PQgetvalue(res, row, 11), NULL, 10);
    struct rp_cron *cron = NULL;
    struct sched_timing t = {0};
    char *why = NULL;
    int64_t fire = -1, next = -1;
    if (no_version) {
        why = rp_xstrdup("the test has no saved version to run");
    } else if (!PQgetisnull(res, row, 5)) {
        t.interval_ms = strtoll(PQgetvalue(res, row, 5), NULL, 10) * 1000;
    } else {
        struct rp_error e;
        if (rp_cron_parse(PQgetvalue(res, row, 6), PQgetvalue(res, row, 7), &cron, &e) != RP_OK)
            why = rp_xstrdup(e.msg);
        t.cron = cron;
    }
    if (!why && sched_plan(&t, due, now, c->cfg->grace_ms, &fire, &next) != RP_OK)
        why = rp_xstrdup("the cron expression has no fire time in the next 5 years");
    if (why) {
        rp_warn("schedule %s paused: %s", id, why);
        advance(a, id, -1, why);
        free(why);
        rp_cron_free(cron);
        return;
    }
    rp_cron_free(cron);
    advance(a, id, next, NULL);
    if (fire < 0)
        return;
    char **locations = rp_split_list(PQgetvalue(res, row, 8), NULL);
    for (char **l = locations; l && *l; l++) {
        struct sched_run *r = runs_push(c->out);
        struct rp_job_run *j = &r->job;
        rp_uuid_v7(j->run_id);
        snprintf(j->project_id, sizeof(j->project_id), "%s", PQgetvalue(res, row, 1));
        snprintf(j->test_id, sizeof(j->test_id), "%s", PQgetvalue(res, row, 2));
        j->test_version = atoi(PQgetvalue(res, row, 3));
        j->schedule_id = rp_xstrdup(id);
        j->environment_id = PQgetisnull(res, row, 4) ? NULL : rp_xstrdup(PQgetvalue(res, row, 4));
        j->fire_time_ms = fire;
        snprintf(j->trigger, sizeof(j->trigger), "schedule");
        snprintf(j->location, sizeof(j->location), "%s", *l);
        j->retries = atoi(PQgetvalue(res, row, 9));
        j->definition = rp_xstrdup(PQgetvalue(res, row, 12));
        j->variables = rp_xstrdup(PQgetvalue(res, row, 13));
        rp_pg_array_add(&a->id, j->run_id);
        rp_pg_array_add(&a->project, j->project_id);
        rp_pg_array_add(&a->test, j->test_id);
        array_num(&a->version, j->test_version);
        rp_pg_array_add(&a->schedule, j->schedule_id);
        rp_pg_array_add(&a->env, j->environment_id);
        array_num(&a->fire, (long long)j->fire_time_ms);
        rp_pg_array_add(&a->location, j->location);
        array_num(&a->retries, j->retries);
        a->n_runs++;
    }
    rp_strv_free(locations);
}

/* Keep only the runs the insert returned (a conflicting one already existed: someone else
 * created it, and it is theirs to publish or the sweep's). */
static void keep_inserted(struct sched_runs *out, size_t base, PGresult *res)
{
    int n = PQntuples(res);
    if ((size_t)n == out->n - base)
        return;
    size_t w = base;
    for (size_t i = base; i < out->n; i++) {
        int found = 0;
        for (int k = 0; k < n && !found; k++)
            found = strcmp(PQgetvalue(res, k, 0), out->v[i].job.run_id) == 0;
        if (found)
            out->v[w++] = out->v[i];
        else
            rp_job_run_cleanup(&out->v[i].job);
    }
    out->n = w;
}

static int claim_tx(struct rp_pg *pg, void *ud, struct rp_error *err)
{
    struct claim_ctx *c = ud;
    /* a re-run transaction forgets what an aborted attempt planned */
    for (size_t i = c->base; i < c->out->n; i++)
        rp_job_run_cleanup(&c->out->v[i].job);
    c->out->n = c->base;
    c->claimed = 0;

    char limit[24];
    snprintf(limit, sizeof(limit), "%ld", c->cfg->batch);
    const char *p1[] = {limit};
    PGresult *res = NULL;
    struct claim_arrays a;
    arrays_init(&a);
    int rc = rp_pg_exec(pg, claim_sql, 1, p1, &res, err);
    if (rc != RP_OK)
        goto out;
    int rows = PQntuples(res);
    c->claimed = (size_t)rows;
    if (rows == 0)
        goto out;
    for (int i = 0; i < rows; i++)
        plan_row(c, res, i, &a);
    PQclear(res);
    res = NULL;
    arrays_close(&a);
    if (a.n_runs) {
        char lease[24];
        snprintf(lease, sizeof(lease), "%ld", c->cfg->lease_ms);
        const char *p[] = {a.id.data,       a.project.data, a.test.data, a.version.data,
                           a.schedule.data, a.env.data,     a.fire.data, a.location.data,
                           a.retries.data,  lease};
        rc = rp_pg_exec(pg, insert_sql, 10, p, &res, err);
        if (rc != RP_OK)
            goto out;
        keep_inserted(c->out, c->base, res);
        PQclear(res);
        res = NULL;
    }
    const char *p3[] = {a.s_id.data, a.s_next.data, a.s_error.data};
    rc = rp_pg_exec(pg, advance_sql, 3, p3, NULL, err);
out:
    PQclear(res);
    arrays_cleanup(&a);
    return rc;
}

int sched_claim(struct rp_pg *pg, const struct sched_config *cfg, struct sched_runs *out,
                size_t *claimed, struct rp_error *err)
{
    struct claim_ctx c = {.cfg = cfg, .out = out, .base = out->n};
    int rc = rp_pg_tx(pg, claim_tx, &c, err);
    if (rc != RP_OK) {
        /* not committed (or unknown, RP_ETIMEDOUT): publish nothing; if the commit did land,
         * the runs are pending with a lease and the sweep publishes them */
        for (size_t i = c.base; i < out->n; i++)
            rp_job_run_cleanup(&out->v[i].job);
        out->n = c.base;
        *claimed = 0;
        return rc;
    }
    *claimed = c.claimed;
    return RP_OK;
}

int sched_next_due_in(struct rp_pg *pg, int64_t *in_ms, struct rp_error *err)
{
    PGresult *res = NULL;
    int rc = rp_pg_exec_idempotent(pg, next_due_sql, 0, NULL, &res, err);
    if (rc != RP_OK)
        return rc;
    static struct rp_series *backlog;
    if (!backlog)
        backlog = rp_metric_series(
            rp_metrics_gauge(rp_metrics_default(), "rampart_scheduler_backlog_seconds",
                             "How late the most overdue enabled schedule is (0 when none is due)",
                             NULL),
            NULL);
    if (PQgetisnull(res, 0, 0)) {
        *in_ms = -1;
        rp_series_set(backlog, 0);
    } else {
        int64_t due = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        int64_t now = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
        *in_ms = due > now ? due - now : 0;
        rp_series_set(backlog, due < now ? (double)(now - due) / 1000.0 : 0);
    }
    PQclear(res);
    return RP_OK;
}
