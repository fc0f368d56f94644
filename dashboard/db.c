/* The dashboard's database access: a fixed pool of PostgreSQL connections (each a struct
 * rp_pg that reconnects and follows a failover by itself) taken by a request on first use and
 * given back when it ends; the lazily opened MongoDB pool; and the mapping of database
 * failures onto answers: a refused value is the caller's 400, a duplicate 409, an unreachable
 * server 503, anything else 500 (logged, never shown: it would be our bug). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dash.h"
#include "rampart/log.h"
#include "rampart/mongo.h"
#include "rampart/pg.h"

#define ACQUIRE_WAIT_S 10 /* a request waits this long for a free connection, then 503 */

struct dash_pool {
    char *conninfo;
    pthread_mutex_t lock;
    struct waiter *head, *tail; /* requests waiting for a slot, oldest first */
    struct rp_pg **conns;       /* NULL slots are opened on demand */
    int *busy;
    size_t n;
};

int dash_pool_open(const char *conninfo, long size, struct dash_pool **out, struct rp_error *err)
{
    if (size < 1)
        return rp_error_set(err, RP_EINVAL, "the PostgreSQL pool needs at least 1 connection");
    struct dash_pool *p = rp_xcalloc(1, sizeof(*p));
    p->conninfo = rp_xstrdup(conninfo);
    pthread_mutex_init(&p->lock, NULL);
    p->n = (size_t)size;
    p->conns = rp_xcalloc(p->n, sizeof(*p->conns));
    p->busy = rp_xcalloc(p->n, sizeof(*p->busy));
    *out = p;
    return RP_OK;
}

void dash_pool_close(struct dash_pool *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++)
        rp_pg_close(p->conns[i]);
    free(p->conns);
    free(p->busy);
    free(p->conninfo);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

/* A request waiting for a connection: slots are handed to the oldest waiter directly (a plain
 * condition variable hands them out in no order, and the unlucky requests made the p99). */
struct waiter {
    pthread_cond_t cond;
    long slot; /* -1 until given one */
    struct waiter *next;
};

/* Take a slot; returns its index or -1 after ACQUIRE_WAIT_S. First come, first served. */
static long take_slot(struct dash_pool *p)
{
    long slot = -1;
    pthread_mutex_lock(&p->lock);
    if (!p->head) {
        /* nobody waits: take a free slot, an open connection first */
        for (size_t i = 0; i < p->n && slot < 0; i++)
            if (!p->busy[i] && p->conns[i])
                slot = (long)i;
        for (size_t i = 0; i < p->n && slot < 0; i++)
            if (!p->busy[i])
                slot = (long)i;
        if (slot >= 0) {
            p->busy[slot] = 1;
            pthread_mutex_unlock(&p->lock);
            return slot;
        }
    }
    struct waiter w = {.slot = -1};
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&w.cond, &attr);
    pthread_condattr_destroy(&attr);
    if (p->tail)
        p->tail->next = &w;
    else
        p->head = &w;
    p->tail = &w;
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += ACQUIRE_WAIT_S;
    while (w.slot < 0)
        if (pthread_cond_timedwait(&w.cond, &p->lock, &deadline) != 0)
            break;
    if (w.slot < 0) { /* timed out, still queued: leave the queue */
        struct waiter **pp = &p->head, *prev = NULL;
        while (*pp && *pp != &w) {
            prev = *pp;
            pp = &(*pp)->next;
        }
        if (*pp)
            *pp = w.next;
        if (p->tail == &w)
            p->tail = prev;
    }
    slot = w.slot;
    pthread_mutex_unlock(&p->lock);
    pthread_cond_destroy(&w.cond);
    return slot;
}

static void give_slot(struct dash_pool *p, long slot)
{
    pthread_mutex_lock(&p->lock);
    struct waiter *w = p->head;
    if (w) { /* straight to the oldest waiter: the slot stays busy */
        p->head = w->next;
        if (!p->head)
            p->tail = NULL;
        w->slot = slot;
        pthread_cond_signal(&w->cond);
    } else {
        p->busy[slot] = 0;
    }
    pthread_mutex_unlock(&p->lock);
}

/* The slot of a request is kept in pg_slot via the pointer: find it on release. */
static long slot_of(struct dash_pool *p, struct rp_pg *pg)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->conns[i] == pg)
            return (long)i;
    return -1;
}

struct rp_pg *dash_pg(struct dash_req *r)
{
    if (r->pg)
        return r->pg;
    struct dash_pool *p = r->app->pool;
    long slot = take_slot(p);
    if (slot < 0) {
        dash_error(r, 503, "busy", "every database connection is in use; retry in a moment");
        return NULL;
    }
    if (!p->conns[slot]) {
        struct rp_error e = {0};
        struct rp_pg *pg = NULL;
        if (rp_pg_open(p->conninfo, &pg, &e) != RP_OK) {
            give_slot(p, slot);
            rp_warn("PostgreSQL: %s", e.msg);
            dash_error(r, 503, "unavailable", "the database is unreachable; retry in a moment");
            return NULL;
        }
        rp_pg_set_reconnect_budget(pg, 5000);
        rp_pg_set_statement_cache(pg, 256); /* the handlers' SQL is a fixed set of texts */
        p->conns[slot] = pg;                /* the slot is ours: no other thread touches it */
    }
    r->pg = p->conns[slot];
    return r->pg;
}

void dash_db_release(struct dash_req *r)
{
    if (r->pg) {
        struct dash_pool *p = r->app->pool;
        PGconn *c = rp_pg_conn(r->pg);
        if (c && PQtransactionStatus(c) != PQTRANS_IDLE) {
            PGresult *res = PQexec(c, "ROLLBACK"); /* never hand on a connection mid-transaction */
            PQclear(res);
        }
        long slot = slot_of(p, r->pg);
        if (slot >= 0)
            give_slot(p, slot);
        r->pg = NULL;
    }
    if (r->mongo) {
        rp_mongo_release(r->app->mongo, r->mongo);
        r->mongo = NULL;
    }
}

/* ---- failures -> answers ----------------------------------------------------------------- */

/* "pg: SQLSTATE 23505 duplicate key ... (statement: ...)" -> state and the server's message. */
static void split_pg_message(const char *msg, char state[6], char *text, size_t cap)
{
    state[0] = '\0';
    text[0] = '\0';
    const char *s = strstr(msg, "SQLSTATE ");
    if (!s)
        return;
    memcpy(state, s + 9, 5);
    state[5] = '\0';
    const char *t = s + 15;
    const char *end = strstr(t, " (statement:");
    size_t n = end ? (size_t)(end - t) : strlen(t);
    if (n >= cap)
        n = cap - 1;
    memcpy(text, t, n);
    text[n] = '\0';
}

/* Answer a failed statement. Transient failures are answered only when `answer_transient`. */
static void answer_failure(struct dash_req *r, const char *what, int rc, const struct rp_error *e,
                           int answer_transient)
{
    char state[6], text[400];
    split_pg_message(e->msg, state, text, sizeof(text));
    if (rc == RP_EAGAIN || rc == RP_ETIMEDOUT) {
        if (answer_transient)
            dash_error(r, 503, "unavailable",
                       "the database is unavailable (failover or restart); retry in a moment");
        return;
    }
    if (strcmp(state, "23505") == 0) {
        dash_error(r, 409, "conflict", "%s: one with the same unique name already exists", what);
        return;
    }
    if (strcmp(state, "23503") == 0) {
        dash_error(r, 400, "unknown_reference", "%s: it refers to something that does not exist",
                   what);
        return;
    }
    if (state[0] == '2' && (state[1] == '2' || state[1] == '3')) {
        dash_error(r, 400, "invalid_value", "%s: the value was refused: %s", what, text);
        return;
    }
    rp_err("request %s: %s: %s", r->request_id, what, e->msg);
    dash_error(r, 500, "internal", "%s: internal error (logged with request id %s)", what,
               r->request_id);
}

int dash_exec(struct dash_req *r, const char *what, const char *sql, int n,
              const char *const *params, PGresult **out)
{
    struct rp_pg *pg = dash_pg(r);
    if (!pg)
        return RP_EAGAIN;
    struct rp_error e = {0};
    int rc = rp_pg_exec_idempotent(pg, sql, n, params, out, &e);
    if (rc != RP_OK)
        answer_failure(r, what, rc, &e, 1);
    return rc;
}

void dash_query_reply(struct dash_req *r, unsigned status, const char *what, const char *sql, int n,
                      const char *const *params)
{
    PGresult *res = NULL;
    if (dash_exec(r, what, sql, n, params, &res) != RP_OK)
        return;
    if (PQntuples(res) == 0 || PQgetisnull(res, 0, 0))
        dash_error(r, 404, "not_found", "%s not found", what);
    else
        dash_reply_json(r, status, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
    PQclear(res);
}

struct tx_ctx {
    struct dash_req *r;
    dash_tx_fn fn;
    void *ctx;
};

static int tx_body(struct rp_pg *pg, void *ud, struct rp_error *err)
{
    struct tx_ctx *t = ud;
    int rc = t->fn(t->r, pg, t->ctx);
    if (rc != RP_OK && !t->r->replied && rc != RP_EAGAIN)
        dash_error(t->r, 500, "internal", "the change failed (request %s)", t->r->request_id);
    if (rc == RP_EAGAIN)
        rp_error_set(err, RP_EAGAIN, "transient failure inside the transaction");
    return rc;
}

int dash_tx(struct dash_req *r, dash_tx_fn fn, void *ctx)
{
    struct rp_pg *pg = dash_pg(r);
    if (!pg)
        return RP_EAGAIN;
    struct tx_ctx t = {r, fn, ctx};
    struct rp_error e = {0};
    int rc = rp_pg_tx(pg, tx_body, &t, &e);
    if (rc != RP_OK && !r->replied)
        answer_failure(r, "change", rc, &e, 1);
    return rc;
}

int dash_tx_exec(struct dash_req *r, struct rp_pg *pg, const char *what, const char *sql, int n,
                 const char *const *params, PGresult **out)
{
    struct rp_error e = {0};
    int rc = rp_pg_exec(pg, sql, n, params, out, &e);
    if (rc != RP_OK)
        answer_failure(r, what, rc, &e, 0);
    return rc;
}

int dash_audit(struct dash_req *r, struct rp_pg *pg, const char *project_id, const char *action,
               const char *target_type, const char *target_id, const char *details)
{
    static const char sql[] =
        "INSERT INTO audit_log (actor_user_id, actor_api_key_id, actor, project_id, action, "
        "target_type, target_id, details, ip, request_id) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, COALESCE($8::jsonb, '{}'), $9, $10)";
    const char *p[10] = {r->who.user_id[0] ? r->who.user_id : NULL,
                         r->who.api_key_id[0] ? r->who.api_key_id : NULL,
                         r->who.actor[0] ? r->who.actor : "anonymous",
                         project_id,
                         action,
                         target_type,
                         target_id,
                         details,
                         r->ip,
                         r->request_id};
    return dash_tx_exec(r, pg, "audit log", sql, 10, p, NULL);
}

/* ---- MongoDB ----------------------------------------------------------------------------------
 */

mongoc_collection_t *dash_results(struct dash_req *r)
{
    struct dash_app *app = r->app;
    if (!r->mongo) {
        pthread_mutex_lock(&app->mongo_lock);
        if (!app->mongo) {
            struct rp_error e = {0};
            if (rp_mongo_open(app->cfg->mongo_url, 2000, 0, &app->mongo, &e) != RP_OK)
                rp_warn("MongoDB: %s", e.msg);
        }
        pthread_mutex_unlock(&app->mongo_lock);
        if (!app->mongo) {
            dash_error(r, 503, "unavailable", "the results store is unreachable; retry soon");
            return NULL;
        }
        r->mongo = rp_mongo_acquire(app->mongo);
    }
    return rp_mongo_collection(app->mongo, r->mongo, "results");
}
