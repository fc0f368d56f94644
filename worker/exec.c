/* The exec thread: runs the jobs the intake thread hands over on the test engine. For each
 * group of messages taken together it records the start in PostgreSQL with one statement
 * (runs already finished are skipped, not run again), parses definitions through the cache,
 * loads the environment's variables and the run's overrides (opening sealed secrets with
 * RAMPART_SECRET_KEY; one it cannot open makes the run an `error`), submits the runs, runs failures
 * again while retries remain, and hands each final result document, enriched, to the writer. Dead
 * letters get their `error` items here too (only for runs still unfinished). The thread owns the
 * engine and its own PostgreSQL connection.
 *
 * Design note — suspects. A worker that dies returns every message it held, and a quorum
 * queue counts that return towards the delivery limit even for messages it never touched
 * (measured on 3.10). So a poison job would drag its neighbours into the dead-letter queue.
 * A redelivered message whose runs are still `running` (a worker started them and died) is a
 * suspect: it runs alone, once this worker holds no other message at all (everything else
 * finished, stored and acked) and none has arrived for SUSPECT_QUIET_MS (after a restart
 * the broker sends a prefetch-full at once); nothing else starts until it is done; suspects
 * with the fewest starts go first. The poison job, started again at each delivery, sinks to
 * the back; the others finish before it kills the next worker, and only the poison job
 * reaches the limit. So that a steady stream cannot starve a suspect, after SUSPECT_WAIT_MS
 * no new message is taken until it ran (those arriving meanwhile are only returned, never
 * started, if it crashes). Redelivered messages whose runs never started are not suspects.
 * Running alone is a precaution, not a condition of correctness: suspects that still cannot
 * run alone after SUSPECT_MAX_WAIT_MS (something this worker holds does not finish, e.g. its
 * writer waits for a database) all run beside the rest, so that no run waits without bound;
 * while suspects wait, a warning every SUSPECT_REPORT_MS says what holds them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "consumer.h"
#include "rampart/log.h"
#include "rampart/mem.h"
#include "rampart/metrics.h"
#include "rampart/pg.h"
#include "rampart/secret.h"
#include "worker.h"

#define CACHE_ENTRIES       256
#define RUN_SLICE_MS        10    /* engine time slice: new messages wait at most this long */
#define SUSPECT_QUIET_MS    250   /* see "suspects" */
#define SUSPECT_WAIT_MS     2000  /* on a busy queue: stop taking new messages after this */
#define SUSPECT_MAX_WAIT_MS 30000 /* then: run it beside whatever else is held */
#define SUSPECT_REPORT_MS   10000 /* a warning this often while suspects wait */

/* locks in id order, like every batch update of runs (no deadlock with the scheduler's) */
static const char start_sql[] =
    "WITH l AS MATERIALIZED (SELECT id FROM runs WHERE id = ANY($1::uuid[]) "
    "                        ORDER BY id FOR UPDATE) "
    "UPDATE runs AS r SET status = 'running', started_at = now(), attempts = r.attempts + 1 "
    "FROM l WHERE r.id = l.id AND r.status IN ('pending', 'queued', 'running') "
    "RETURNING r.id, r.attempts";

static const char probe_sql[] =
    "SELECT id, status = 'running', attempts FROM runs WHERE id = ANY($1::uuid[])";

static const char unfinished_sql[] =
    "SELECT id, attempts FROM runs "
    "WHERE id = ANY($1::uuid[]) AND status IN ('pending', 'queued', 'running')";

struct exec;

/* A run on the engine: what it needs until its final result. */
struct xrun {
    struct exec *x;
    struct wrk_item *item;
    const struct wrk_cached *ce;
    struct rp_vars *vars;
    struct xrun *retry_next;
    struct xrun *prev, *next; /* every run on the engine (freed on abort) */
};

struct exec {
    struct wrk_shared *s;
    const struct wrk_config *cfg;
    struct wrk_engine *engine;
    struct rp_pg *pg;
    struct wrk_cache *cache;
    struct wrk_msg *pending;  /* taken; start not recorded yet */
    struct wrk_msg *suspects; /* redelivered after a crash: run alone, fewest starts first */
    size_t n_suspects;
    long long suspect_since;  /* when the oldest waiting suspect arrived */
    int suspect_active;       /* a suspect is on the engine: start nothing else */
    long long suspect_report; /* when the next "suspects waiting" warning is due */
    long long next_try;       /* PostgreSQL back-off */
    long wait;
    struct wrk_item *done; /* finished, for the writer */
    size_t n_done;
    struct xrun *retry; /* failed with retries left: submit again */
    struct xrun *runs;
    char last_err[512];
};

/* One row returned by the start statement. */
struct started {
    char id[RP_UUID_LEN + 1];
    int attempts;
};

static int cmp_started(const void *a, const void *b)
{
    return strcasecmp(((const struct started *)a)->id, ((const struct started *)b)->id);
}

static void fail_later(struct exec *x, const char *what, const struct rp_error *e)
{
    if (strcmp(x->last_err, e->msg) != 0)
        rp_warn("%s: %s; retrying", what, e->msg);
    snprintf(x->last_err, sizeof(x->last_err), "%s", e->msg);
    x->next_try = wrk_now_ms() + x->wait;
    x->wait = x->wait * 2 > 5000 ? 5000 : x->wait * 2;
}

static int ensure_pg(struct exec *x)
{
    if (x->pg)
        return 1;
    if (wrk_now_ms() < x->next_try)
        return 0;
    struct rp_error e = {0};
    const char *dir =
        x->cfg->migrations_dir && *x->cfg->migrations_dir ? x->cfg->migrations_dir : NULL;
    int rc = rp_pg_open(x->cfg->pg_url, &x->pg, &e);
    if (rc == RP_OK && (rc = rp_pg_migrate(x->pg, dir, NULL, &e)) != RP_OK) {
        rp_pg_close(x->pg);
        x->pg = NULL;
    }
    if (rc != RP_OK) {
        fail_later(x, "exec: PostgreSQL", &e);
        return 0;
    }
    return 1;
}

static void add_done(struct exec *x, struct wrk_item *it)
{
    it->next = x->done;
    x->done = it;
    x->n_done++;
}

static void flush_done(struct exec *x)
{
    if (!x->done)
        return;
    /* the list was built newest first: turn it around so the writer sees finishing order */
    struct wrk_item *rev = NULL, *it = x->done;
    while (it) {
        struct wrk_item *next = it->next;
        it->next = rev;
        rev = it;
        it = next;
    }
    wrk_store_push(x->s, rev, x->n_done);
    x->done = NULL;
    x->n_done = 0;
}

static void xrun_free(struct exec *x, struct xrun *xr)
{
    if (xr->prev)
        xr->prev->next = xr->next;
    else
        x->runs = xr->next;
    if (xr->next)
        xr->next->prev = xr->prev;
    wrk_cache_release(x->cache, xr->ce);
    rp_vars_free(xr->vars);
    free(xr);
}

/* The run cannot run: an `error` item replaces it. */
static void run_error(struct exec *x, struct wrk_item *it, const char *prefix, const char *why)
{
    char *msg = rp_xasprintf("%s%s", prefix, why);
    struct wrk_item *e = wrk_error_item(it->msg, it->run, it->attempt, NULL, msg);
    e->tries = it->tries;
    rp_log(RP_LOG_WARN, it->run->run_id, "run cannot run: %s", msg);
    free(msg);
    wrk_item_free(it);
    add_done(x, e);
}

static void on_done(void *ud, const char *run_id, bson_t *result)
{
    struct xrun *xr = ud;
    struct exec *x = xr->x;
    struct wrk_item *it = xr->item;
    const char *status = rp_doc_str(result, "status");
    it->tries++;
    if ((!status || strcmp(status, "passed") != 0) && it->tries <= it->run->retries &&
        !atomic_load(&x->s->abort)) {
        rp_log(RP_LOG_DEBUG, run_id, "try %d did not pass (%s); running it again", it->tries,
               status ? status : "?");
        bson_destroy(result);
        xr->retry_next = x->retry;
        x->retry = xr;
        return;
    }
    it->doc = result;
    it->finished_ms = rp_now_unix_ms();
    wrk_item_read_doc(it);
    wrk_item_enrich(it);
    rp_log(RP_LOG_DEBUG, run_id, "run %s after %d tr%s", it->status, it->tries,
           it->tries == 1 ? "y" : "ies");
    xr->item = NULL;
    xrun_free(x, xr);
    add_done(x, it);
}

static void submit(struct exec *x, struct xrun *xr)
{
    struct rp_error e = {0};
    if (wrk_engine_submit(x->engine, xr->ce->test, xr->vars, xr->item->run->run_id, on_done, xr,
                          &e) == RP_OK)
        return;
    struct wrk_item *it = xr->item;
    xr->item = NULL;
    xrun_free(x, xr);
    run_error(x, it, "", e.msg);
}

static void resubmit(struct exec *x)
{
    struct xrun *xr = x->retry;
    x->retry = NULL;
    while (xr) {
        struct xrun *next = xr->retry_next;
        submit(x, xr);
        xr = next;
    }
}

/* A sealed secret variable as the dashboard stores it: {"secret": true, "sealed": "v1:..."}
 * (no other member; "secret" may be left out). Returns 1 and the sealed text, or 0. */
static int sealed_member(const bson_iter_t *member, const char **sealed)
{
    bson_iter_t c;
    *sealed = NULL;
    if (!BSON_ITER_HOLDS_DOCUMENT(member) || !bson_iter_recurse(member, &c))
        return 0;
    while (bson_iter_next(&c)) {
        const char *k = bson_iter_key(&c);
        if (strcmp(k, "sealed") == 0 && BSON_ITER_HOLDS_UTF8(&c))
            *sealed = bson_iter_utf8(&c, NULL);
        else if (strcmp(k, "secret") != 0 || !BSON_ITER_HOLDS_BOOL(&c))
            return 0;
    }
    return *sealed && rp_secret_is_sealed(*sealed);
}

/* Open one sealed member into `dst` as {"value": <the opened JSON>, "secret": true}. The
 * messages name the variable, never its value (nor the parser's excerpt of it). */
static int open_sealed(const struct wrk_config *cfg, bson_t *dst, const char *name,
                       const char *sealed, const char *what, struct rp_error *err)
{
    if (!cfg->have_secret_key)
        return rp_error_set(err, RP_EINVAL,
                            "%s: variable \"%.128s\" is a sealed secret and this worker has no "
                            "RAMPART_SECRET_KEY (set it to the dashboard's key)",
                            what, name);
    char *plain = NULL;
    size_t len = 0;
    struct rp_error e = {0};
    if (rp_secret_open(cfg->secret_key, sealed, &plain, &len, &e) != RP_OK)
        return rp_error_set(err, RP_EINVAL,
                            "%s: variable \"%.128s\": the sealed secret cannot be opened (sealed "
                            "with another RAMPART_SECRET_KEY than this worker's, or altered)",
                            what, name);
    bson_t *doc = NULL;
    bson_iter_t root;
    int rc = rp_json_parse(plain, len, RP_JOB_MAX_BYTES, &doc, &e);
    sodium_memzero(plain, len);
    free(plain);
    if (rc != RP_OK || rp_json_root(doc, &root) != RP_OK) {
        if (doc)
            bson_destroy(doc);
        return rp_error_set(err, RP_EINVAL,
                            "%s: variable \"%.128s\": the sealed secret does not hold a JSON "
                            "value",
                            what, name);
    }
    bson_t w;
    bson_append_document_begin(dst, name, -1, &w);
    bson_append_iter(&w, "value", -1, &root);
    BSON_APPEND_BOOL(&w, "secret", true);
    bson_append_document_end(dst, &w);
    bson_destroy(doc);
    return RP_OK;
}

/* Load a JSON object of variables (`text`; `what` names it in messages) into `layer` of `v`,
 * sealed secrets opened first. On failure `v` is unchanged in that layer. */
static int load_layer(const struct wrk_config *cfg, struct rp_vars *v, enum rp_layer layer,
                      const char *text, const char *what, struct rp_error *err)
{
    bson_t *doc = NULL, opened = BSON_INITIALIZER, obj;
    bson_iter_t root, it;
    struct rp_error e = {0};
    int rc = rp_json_parse(text, strlen(text), RP_JOB_MAX_BYTES, &doc, &e);
    if (rc != RP_OK) {
        rp_error_set(err, rc, "%s: %s", what, e.msg);
        goto out;
    }
    if (rp_json_root(doc, &root) != RP_OK || !BSON_ITER_HOLDS_DOCUMENT(&root) ||
        !bson_iter_recurse(&root, &it)) {
        rc = rp_error_set(err, RP_EINVAL, "%s: not a JSON object", what);
        goto out;
    }
    /* the same object with every sealed member opened, as {"v": {...}} */
    bson_append_document_begin(&opened, "v", -1, &obj);
    while (bson_iter_next(&it)) {
        const char *sealed;
        if (!sealed_member(&it, &sealed)) {
            bson_append_iter(&obj, NULL, -1, &it);
            continue;
        }
        rc = open_sealed(cfg, &obj, bson_iter_key(&it), sealed, what, err);
        if (rc != RP_OK) {
            bson_append_document_end(&opened, &obj);
            goto out;
        }
    }
    bson_append_document_end(&opened, &obj);
    if (rp_json_root(&opened, &root) != RP_OK) {
        rc = rp_error_set(err, RP_EINVAL, "%s: not a JSON object", what);
        goto out;
    }
    rc = rp_vars_load_object(v, layer, &root, &e);
    if (rc != RP_OK)
        rp_error_set(err, rc, "%s: %s", what, e.msg);
out:
    if (doc)
        bson_destroy(doc);
    bson_destroy(&opened);
    return rc;
}

/* The run's variables: its environment's, then the run-time overrides (a manual or CI run)
 * in the override layer, above the test's own variables (which the engine adds). */
static int load_vars(const struct wrk_config *cfg, const struct rp_job_run *r, struct rp_vars **out,
                     struct rp_error *err)
{
    struct rp_vars *v = rp_vars_new();
    int rc = load_layer(cfg, v, RP_LAYER_ENVIRONMENT, r->variables ? r->variables : "{}",
                        "environment variables", err);
    if (rc == RP_OK && r->overrides)
        rc = load_layer(cfg, v, RP_LAYER_OVERRIDE, r->overrides, "run overrides", err);
    if (rc != RP_OK) {
        rp_vars_free(v);
        return rc;
    }
    *out = v;
    return RP_OK;
}

static void launch(struct exec *x, struct wrk_msg *m, const struct rp_job_run *r, int attempt)
{
    struct wrk_shared *s = x->s;
    int64_t now = rp_now_unix_ms();
    rp_series_inc(s->m.started);
    rp_series_add(s->m.in_flight, 1);
    rp_series_observe(s->m.start_lag,
                      now > r->fire_time_ms ? (double)(now - r->fire_time_ms) / 1000.0 : 0);

    struct wrk_item *it = rp_xcalloc(1, sizeof(*it));
    it->msg = m;
    it->run = r;
    it->attempt = attempt;
    it->started_ms = now;
    const struct wrk_cached *ce =
        wrk_cache_get(x->cache, r->test_id, r->test_version, r->definition);
    if (!ce->test) {
        run_error(x, it, "definition: ", ce->error);
        wrk_cache_release(x->cache, ce);
        return;
    }
    const char *marker = x->cfg->crash_marker;
    if (marker && *marker && ce->test->name && strstr(ce->test->name, marker)) {
        rp_log(RP_LOG_ERROR, r->run_id,
               "RAMPART_WORKER_TEST_CRASH_MARKER \"%s\" is in the test's name: aborting (a "
               "test-only setting)",
               marker);
        abort();
    }
    struct rp_error e = {0};
    struct rp_vars *vars = NULL;
    if (load_vars(x->cfg, r, &vars, &e) != RP_OK) {
        wrk_cache_release(x->cache, ce);
        run_error(x, it, "", e.msg);
        return;
    }
    struct xrun *xr = rp_xcalloc(1, sizeof(*xr));
    xr->x = x;
    xr->item = it;
    xr->ce = ce;
    xr->vars = vars;
    xr->next = x->runs;
    if (x->runs)
        x->runs->prev = xr;
    x->runs = xr;
    submit(x, xr);
}

/* Append the ids of `m`'s runs to the array literal `b` ("{a,b"); ids are checked UUIDs. */
static void add_ids(struct rp_buf *b, const struct wrk_msg *m)
{
    for (size_t i = 0; i < m->job->n; i++)
        rp_pg_array_add(b, m->job->runs[i].run_id);
}

static struct started *rows_of(PGresult *res, size_t *n)
{
    *n = res ? (size_t)PQntuples(res) : 0;
    struct started *v = rp_xcalloc(*n ? *n : 1, sizeof(*v));
    for (size_t i = 0; i < *n; i++) {
        snprintf(v[i].id, sizeof(v[i].id), "%s", PQgetvalue(res, (int)i, 0));
        v[i].attempts = atoi(PQgetvalue(res, (int)i, 1));
    }
    qsort(v, *n, sizeof(*v), cmp_started);
    return v;
}

static const struct started *find(const struct started *v, size_t n, const char *id)
{
    struct started key;
    snprintf(key.id, sizeof(key.id), "%s", id);
    return bsearch(&key, v, n, sizeof(*v), cmp_started);
}

static int is_redelivered(const struct wrk_msg *m)
{
    return !m->dead && !m->suspect_checked && (m->d->redelivered || m->d->delivery_count > 0);
}

/* Move the pending messages that are suspects (see the design note) to x->suspects, in order
 * of their runs' starts so far. RP_OK, or the database's error (nothing moved). */
static int find_suspects(struct exec *x, struct rp_error *err)
{
    struct rp_buf ids;
    rp_buf_init(&ids, 0);
    (void)rp_buf_append(&ids, "{", 1);
    for (struct wrk_msg *m = x->pending; m; m = m->next)
        if (is_redelivered(m))
            add_ids(&ids, m);
    (void)rp_buf_append(&ids, "}", 1);
    if (ids.len <= 2) {
        rp_buf_cleanup(&ids);
        return RP_OK;
    }
    PGresult *res = NULL;
    const char *p[] = {ids.data};
    int rc = rp_pg_exec_idempotent(x->pg, probe_sql, 1, p, &res, err);
    rp_buf_cleanup(&ids);
    if (rc != RP_OK)
        return rc;
    /* rows: id, running (t/f), attempts; `attempts` of a running run, -1 otherwise */
    size_t n = (size_t)PQntuples(res);
    struct started *v = rp_xcalloc(n ? n : 1, sizeof(*v));
    for (size_t i = 0; i < n; i++) {
        snprintf(v[i].id, sizeof(v[i].id), "%s", PQgetvalue(res, (int)i, 0));
        v[i].attempts =
            strcmp(PQgetvalue(res, (int)i, 1), "t") == 0 ? atoi(PQgetvalue(res, (int)i, 2)) : -1;
    }
    PQclear(res);
    qsort(v, n, sizeof(*v), cmp_started);
    struct wrk_msg **pp = &x->pending;
    while (*pp) {
        struct wrk_msg *m = *pp;
        if (!is_redelivered(m)) {
            pp = &m->next;
            continue;
        }
        m->suspect_checked = 1;
        int starts = -1;
        for (size_t i = 0; i < m->job->n; i++) {
            const struct started *st = find(v, n, m->job->runs[i].run_id);
            if (st && st->attempts > starts)
                starts = st->attempts;
        }
        if (starts < 0) { /* nothing of it was running: an ordinary message */
            pp = &m->next;
            continue;
        }
        *pp = m->next; /* to the suspects, after those with as many starts or fewer */
        m->suspect_starts = starts;
        struct wrk_msg **sp = &x->suspects;
        while (*sp && (*sp)->suspect_starts <= starts)
            sp = &(*sp)->next;
        m->next = *sp;
        *sp = m;
        if (!x->n_suspects++)
            x->suspect_since = wrk_now_ms();
        rp_log(RP_LOG_WARN, m->job->runs[0].run_id,
               "job redelivered (delivery %ld) while its runs were running: a worker died on "
               "it; running it alone",
               m->d->delivery_count > 0 ? m->d->delivery_count + 1 : 2);
    }
    free(v);
    return RP_OK;
}

/* Record the start of every run of the pending messages and launch them. On a database
 * failure the messages stay pending and the statement is tried again after a back-off. */
static void start_pending(struct exec *x)
{
    struct wrk_shared *s = x->s;
    struct rp_error e = {0};
    if (find_suspects(x, &e) != RP_OK) {
        fail_later(x, "exec: checking redelivered runs", &e);
        return;
    }
    if (!x->pending)
        return;
    struct rp_buf jobs, dead;
    rp_buf_init(&jobs, 0);
    rp_buf_init(&dead, 0);
    (void)rp_buf_append(&jobs, "{", 1);
    (void)rp_buf_append(&dead, "{", 1);
    for (struct wrk_msg *m = x->pending; m; m = m->next)
        add_ids(m->dead ? &dead : &jobs, m);
    (void)rp_buf_append(&jobs, "}", 1);
    (void)rp_buf_append(&dead, "}", 1);

    PGresult *rj = NULL, *rd = NULL;
    int rc = RP_OK;
    /* the idempotent read first: a failure after the UPDATE must not repeat the UPDATE */
    if (dead.len > 2) {
        const char *p[] = {dead.data};
        rc = rp_pg_exec_idempotent(x->pg, unfinished_sql, 1, p, &rd, &e);
    }
    if (rc == RP_OK && jobs.len > 2) {
        const char *p[] = {jobs.data};
        rc = rp_pg_exec(x->pg, start_sql, 1, p, &rj, &e);
    }
    rp_buf_cleanup(&jobs);
    rp_buf_cleanup(&dead);
    if (rc != RP_OK) {
        PQclear(rj);
        PQclear(rd);
        fail_later(x, "exec: recording the start of runs", &e);
        return;
    }
    x->wait = 100;
    x->last_err[0] = '\0';
    size_t nj, nd;
    struct started *sj = rows_of(rj, &nj), *sd = rows_of(rd, &nd);
    PQclear(rj);
    PQclear(rd);

    struct wrk_msg *m = x->pending;
    x->pending = NULL;
    while (m) {
        struct wrk_msg *next = m->next; /* m may be settled (and freed) below */
        size_t skipped = 0;
        for (size_t i = 0; i < m->job->n; i++) {
            const struct rp_job_run *r = &m->job->runs[i];
            const struct started *st = m->dead ? find(sd, nd, r->run_id) : find(sj, nj, r->run_id);
            if (!st) {
                skipped++;
                if (!m->dead) {
                    rp_series_inc(s->m.skipped);
                    rp_log(RP_LOG_INFO, r->run_id, "run already finished: not run again");
                }
            } else if (m->dead) {
                rp_log(RP_LOG_WARN, r->run_id, "%s", m->dead_error);
                struct wrk_item *it = wrk_error_item(m, r, st->attempts, NULL, m->dead_error);
                it->dead = 1;
                add_done(x, it);
            } else {
                launch(x, m, r, st->attempts);
            }
        }
        if (skipped)
            wrk_complete(s, m, skipped);
        m = next;
    }
    free(sj);
    free(sd);
}

static void hand_back_list(struct wrk_shared *s, struct wrk_msg **list)
{
    while (*list) {
        struct wrk_msg *next = (*list)->next;
        wrk_hand_back(s, *list);
        *list = next;
    }
}

void *wrk_exec_main(void *arg)
{
    struct wrk_shared *s = arg;
    struct exec x = {.s = s, .cfg = s->cfg, .wait = 100};
    x.cache = wrk_cache_new(CACHE_ENTRIES);
    struct wrk_engine_opts eo = {.max_concurrent = (size_t)s->cfg->concurrency};
    struct rp_error e = {0};
    while (wrk_engine_new(&eo, &x.engine, &e) != RP_OK && !atomic_load(&s->abort)) {
        rp_err("exec: cannot create the test engine: %s", e.msg);
        wrk_nap(s, 1000);
    }
    while (x.engine && !atomic_load(&s->abort)) {
        wrk_beat(s, WRK_EXEC, "running tests", 0);
        int draining = atomic_load(&s->draining);
        size_t busy = wrk_engine_in_flight(x.engine);
        if (!busy && !x.retry)
            x.suspect_active = 0;
        int starving = x.suspects && wrk_now_ms() - x.suspect_since > SUSPECT_WAIT_MS;
        if (!x.pending && !x.suspect_active && !starving && !draining &&
            busy < (size_t)s->cfg->concurrency)
            x.pending = wrk_exec_take(s, busy || x.suspects ? 0 : 100);
        if (draining) {
            /* never started: back to the broker for another worker */
            hand_back_list(s, &x.pending);
            hand_back_list(s, &x.suspects);
            x.n_suspects = 0;
        } else if (!x.pending && x.suspects) {
            long long last = 0, now = wrk_now_ms();
            size_t queued = 0, held = wrk_unsettled(s, &queued, &last);
            int overdue = now - x.suspect_since > SUSPECT_MAX_WAIT_MS;
            /* normally nothing else may be held at all; once starving, what waits in the exec
             * queue (never started while the suspect runs) is no reason to wait longer */
            int alone = !busy && !x.retry && !x.suspect_active &&
                        (starving ? held - queued == x.n_suspects
                                  : held == x.n_suspects && now - last >= SUSPECT_QUIET_MS);
            if (!alone && now >= x.suspect_report) {
                x.suspect_report = now + SUSPECT_REPORT_MS;
                if (now - x.suspect_since >= SUSPECT_REPORT_MS)
                    rp_warn("%zu redelivered jobs wait to run alone (the next for %lld s): this "
                            "worker holds %zu other messages (%zu not started), %zu runs on the "
                            "engine%s",
                            x.n_suspects, (now - x.suspect_since) / 1000, held - x.n_suspects,
                            queued, busy, x.retry ? ", runs waiting to retry" : "");
            }
            if (!alone && overdue) {
                rp_warn("%zu redelivered jobs could not run alone for %d s: running them beside "
                        "the %zu other messages this worker holds",
                        x.n_suspects, SUSPECT_MAX_WAIT_MS / 1000, held - x.n_suspects);
                x.pending = x.suspects; /* all of them, as ordinary messages */
                x.suspects = NULL;
                x.n_suspects = 0;
            } else if (alone) {
                x.pending = x.suspects; /* the next suspect, alone */
                x.suspects = x.pending->next;
                x.pending->next = NULL;
                if (--x.n_suspects)
                    x.suspect_since = wrk_now_ms();
                x.suspect_active = 1;
            }
        }
        if (x.pending) {
            wrk_beat(s, WRK_EXEC, "recording the start of runs in PostgreSQL", 0);
            if (ensure_pg(&x) && wrk_now_ms() >= x.next_try)
                start_pending(&x);
        }
        rp_series_set(s->m.suspects, (double)x.n_suspects);
        if (wrk_engine_in_flight(x.engine))
            wrk_engine_run(x.engine, RUN_SLICE_MS);
        else if (x.pending || x.suspects)
            wrk_nap(s, 20); /* waiting for PostgreSQL, or for the engine to empty */
        resubmit(&x);
        flush_done(&x);
        if (draining && !x.pending && !x.retry && !wrk_engine_in_flight(x.engine))
            break;
    }
    /* after an abort: runs still on the engine are dropped with it */
    wrk_engine_free(x.engine);
    while (x.runs) {
        wrk_item_free(x.runs->item);
        xrun_free(&x, x.runs);
    }
    while (x.done) {
        struct wrk_item *next = x.done->next;
        wrk_item_free(x.done);
        x.done = next;
    }
    wrk_cache_free(x.cache);
    rp_pg_close(x.pg);
    wrk_beat_end(s, WRK_EXEC);
    wrk_exec_finished(s);
    return NULL;
}
