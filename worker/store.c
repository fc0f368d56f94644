/* The writer thread: takes finished runs in batches (whatever is ready, up to
 * RAMPART_WORKER_BATCH, so batching grows by itself under load) and, in this order, inserts
 * their result documents into MongoDB `results` in one unordered bulk write (a run stored by
 * an earlier delivery keeps that result), publishes each
 * run.finished.<status> with confirms, records their final status in PostgreSQL with one
 * guarded statement, and only then reports the runs complete (intake acks). The final status
 * comes last because a redelivered run that is already final is skipped: so a final status
 * means its event was confirmed (a worker dying in between makes the event go twice, never
 * zero times). A transient failure
 * keeps the batch and retries it with back-off: every step is idempotent, so redoing one is
 * harmless, and nothing is acked before it is stored and announced. The final write also
 * decides the tests' incidents (finish_runs() in PostgreSQL); the transitions it creates are
 * then published as incident.<kind> (best effort: the alert services' outbox sweep publishes
 * any left behind). Also: the `results` indexes, and the hourly retention delete on a thread of
 * its own (wrk_retention_start). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mongoc/mongoc.h>
#include <sodium.h>

#include "consumer.h"
#include "rampart/log.h"
#include "rampart/mem.h"
#include "rampart/metrics.h"
#include "rampart/mongo.h"
#include "rampart/pg.h"

#define RETENTION_PERIOD_MS (3600L * 1000) /* results past the retention are deleted this often */
#define MONGO_TIMEOUT_MS    5000           /* server selection: a down server fails this fast */
#define WRITE_REPLY_MS      30000          /* one reply (an insert batch, a read by _id) */
#define RETENTION_REPLY_MS  (15 * 60000L)  /* the retention delete: FerretDB scans the collection */
#define FLUSH_MS            5000           /* one wait for the events' confirms */
#define MAX_PERM_TRIES      10             /* a permanent failure is retried this often */
#define REPEAT_WARN_MS      30000          /* a failure that goes on is logged again this often */
#define RESULTS             "results"

/* The final write: finish_runs() (migration 0006) locks the runs in id order (as every batch
 * update of runs does, so two never deadlock), records the final status of those not final
 * yet, and applies each scheduled run to its test's incidents in the same transaction,
 * returning the incident transitions it created (published after it, below). duration_ms is
 * the run's total time, as in its run.finished event; a run that executed nothing (a dead
 * letter, a definition or variables that cannot be used: 0 ms) gets NULL, so it does not drag
 * the charts' percentiles to zero. failure: the first failed check, for the alerts' text. */
static const char finish_sql[] =
    "SELECT transition_id, kind FROM finish_runs($1::uuid[], $2::text[], $3::timestamptz[], "
    "                                            $4::text[], $5::float8[], $6::text[])";
static const char published_sql[] =
    "UPDATE incident_transitions SET published_at = now() WHERE id = ANY ($1::uuid[])";

struct store {
    struct wrk_shared *s;
    const struct wrk_config *cfg;
    struct rp_mongo *mongo;
    mongoc_client_t *client;
    mongoc_collection_t *coll;
    long long next_mongo_try;
    struct rp_pg *pg;
    struct rp_amqp_publisher *pub;
    int need_declare;
    PGresult *transitions; /* created by the batch's final write: to publish */
    struct wrk_item **v;   /* the batch */
    size_t n, cap, hint;
    char last_err[512];       /* the failing step's last error, "" while steps succeed */
    long long fail_since_ms;  /* when the step started failing */
    long long last_warn_ms;   /* when its failure was last logged */
    unsigned long fail_tries; /* attempts since then */
};

/* ---- MongoDB: connection, indexes, retention ---------------------------------------------- */

static int command(struct store *st, bson_t *cmd, bson_error_t *e)
{
    bson_t reply;
    bool ok = mongoc_collection_write_command_with_opts(st->coll, cmd, NULL, &reply, e);
    bson_destroy(&reply);
    bson_destroy(cmd);
    return ok ? RP_OK : rp_mongo_map_error(e);
}

/* Append index number *n (then counted) to the `indexes` array of a createIndexes. */
static void add_index(bson_t *arr, int *n, const char *name, const char *f1, int d1, const char *f2,
                      int d2, const char *f3, int d3, long ttl_s)
{
    bson_t ix, key;
    char buf[16];
    const char *k;
    bson_uint32_to_string((uint32_t)(*n)++, &k, buf, sizeof(buf));
    bson_append_document_begin(arr, k, -1, &ix);
    bson_append_document_begin(&ix, "key", -1, &key);
    BSON_APPEND_INT32(&key, f1, d1);
    if (f2)
        BSON_APPEND_INT32(&key, f2, d2);
    if (f3)
        BSON_APPEND_INT32(&key, f3, d3);
    bson_append_document_end(&ix, &key);
    BSON_APPEND_UTF8(&ix, "name", name);
    if (ttl_s > 0)
        BSON_APPEND_INT64(&ix, "expireAfterSeconds", ttl_s);
    bson_append_document_end(arr, &ix);
}

/* Names of the indexes `results` has (1 each in `have`, same order as `names`). */
static int existing(struct store *st, const char *const *names, int *have, size_t n)
{
    mongoc_cursor_t *cur = mongoc_collection_find_indexes_with_opts(st->coll, NULL);
    const bson_t *ix;
    bson_error_t e;
    while (mongoc_cursor_next(cur, &ix)) {
        bson_iter_t it;
        if (bson_iter_init_find(&it, ix, "name") && BSON_ITER_HOLDS_UTF8(&it))
            for (size_t i = 0; i < n; i++)
                if (strcmp(bson_iter_utf8(&it, NULL), names[i]) == 0)
                    have[i] = 1;
    }
    int rc = RP_OK;
    if (mongoc_cursor_error(cur, &e) && e.code != 26) { /* 26: no collection yet */
        rp_warn("results: cannot list the indexes: %s", e.message);
        rc = rp_mongo_map_error(&e);
    }
    mongoc_cursor_destroy(cur);
    return rc;
}

/* The indexes of docs/pipeline.md. Only missing ones are created: FerretDB 1.24 drops the
 * connection on a createIndexes naming an index that exists (MongoDB accepts it). The
 * fire_time index carries the retention as a TTL where the server has TTL indexes; FerretDB
 * has none, and the hourly delete covers it. An existing fire_time index is left as it is. */
static void create_indexes(struct store *st)
{
    static const char *const names[] = {"test_id_1_fire_time_-1", "project_id_1_fire_time_-1",
                                        "project_id_1_status_1_fire_time_-1", "fire_time_1"};
    int have[4] = {0};
    if (existing(st, names, have, 4) != RP_OK)
        return;
    bson_error_t e;
    bson_t arr, *cmd = bson_new();
    BSON_APPEND_UTF8(cmd, "createIndexes", RESULTS);
    bson_append_array_begin(cmd, "indexes", -1, &arr);
    int n = 0;
    if (!have[0])
        add_index(&arr, &n, names[0], "test_id", 1, "fire_time", -1, NULL, 0, 0);
    if (!have[1])
        add_index(&arr, &n, names[1], "project_id", 1, "fire_time", -1, NULL, 0, 0);
    if (!have[2])
        add_index(&arr, &n, names[2], "project_id", 1, "status", 1, "fire_time", -1, 0);
    bson_append_array_end(cmd, &arr);
    if (n == 0)
        bson_destroy(cmd);
    else if (command(st, cmd, &e) != RP_OK)
        rp_warn("results: cannot create the indexes: %s (code %u)", e.message, e.code);
    if (have[3])
        return;
    long ttl = st->cfg->retention_days * 86400L;
    for (int with_ttl = ttl > 0; with_ttl >= 0; with_ttl--) {
        cmd = bson_new();
        BSON_APPEND_UTF8(cmd, "createIndexes", RESULTS);
        bson_append_array_begin(cmd, "indexes", -1, &arr);
        int one = 0;
        add_index(&arr, &one, names[3], "fire_time", 1, NULL, 0, NULL, 0, with_ttl ? ttl : 0);
        bson_append_array_end(cmd, &arr);
        if (command(st, cmd, &e) == RP_OK)
            return;
        if (with_ttl)
            rp_info("results: no TTL index on this server (%s); retention by the hourly delete",
                    e.message);
        else
            rp_warn("results: cannot create the fire_time index: %s (code %u)", e.message, e.code);
    }
}

/* ---- retention: a thread of its own ------------------------------------------------------ */

/* What the retention thread owns: copies, so that it may outlive the consumer. A delete can
 * wait up to RETENTION_REPLY_MS for its reply (FerretDB scans the whole collection; a reply
 * lost in a network cut takes the whole bound), and neither the writer nor the worker's exit
 * waits for it. Freed by the last of its two owners (the thread and wrk_retention_stop). */
struct wrk_retention {
    char *mongo_url;
    long days, first_ms;
    pthread_t tid;
    atomic_int stop, done, refs;
};

static void retention_release(struct wrk_retention *r)
{
    if (atomic_fetch_sub(&r->refs, 1) == 1) {
        free(r->mongo_url);
        free(r);
    }
}

/* One delete, on a pool of its own. 1 when it ran. */
static int delete_old(struct wrk_retention *r)
{
    bson_t sel = BSON_INITIALIZER, lt, reply;
    bson_error_t e;
    struct rp_mongo *m = NULL;
    struct rp_error err = {0};
    if (rp_mongo_open(r->mongo_url, MONGO_TIMEOUT_MS, RETENTION_REPLY_MS, &m, &err) != RP_OK) {
        rp_warn("retention: cannot delete old results: %s", err.msg);
        return 0;
    }
    mongoc_client_t *client = rp_mongo_acquire(m);
    mongoc_collection_t *coll = rp_mongo_collection(m, client, RESULTS);
    int64_t cutoff = rp_now_unix_ms() - r->days * 86400000LL;
    bson_append_document_begin(&sel, "fire_time", -1, &lt);
    BSON_APPEND_DATE_TIME(&lt, "$lt", cutoff);
    bson_append_document_end(&sel, &lt);
    int ok = mongoc_collection_delete_many(coll, &sel, NULL, &reply, &e);
    if (ok) {
        bson_iter_t it;
        int64_t n = 0;
        if (bson_iter_init_find(&it, &reply, "deletedCount"))
            n = bson_iter_as_int64(&it);
        if (n)
            rp_info("retention: deleted %lld results older than %ld days", (long long)n, r->days);
    } else {
        rp_warn("retention: cannot delete old results: %s", e.message);
    }
    bson_destroy(&reply);
    bson_destroy(&sel);
    mongoc_collection_destroy(coll);
    rp_mongo_release(m, client);
    rp_mongo_close(m);
    return ok;
}

/* The first delete waits a random 1 to 60 minutes, then one runs every period (a failed one
 * is tried again a minute later): on FerretDB a delete with a filter scans and decodes the
 * whole collection (tens of seconds at 100,000 results, measured after a restore), and the
 * copies that a rolling update or a restore starts at once must not all scan together. */
static void *retention_main(void *arg)
{
    struct wrk_retention *r = arg;
    long long next = wrk_now_ms() +
                     (r->first_ms > 0 ? r->first_ms
                                      : 60 * 1000 + (long long)randombytes_uniform(59 * 60 * 1000));
    while (!atomic_load(&r->stop)) {
        if (wrk_now_ms() >= next) {
            next = wrk_now_ms() + (delete_old(r) ? RETENTION_PERIOD_MS : 60 * 1000);
            continue;
        }
        struct timespec ts = {0, 200 * 1000000L};
        nanosleep(&ts, NULL);
    }
    atomic_store(&r->done, 1);
    retention_release(r);
    return NULL;
}

struct wrk_retention *wrk_retention_start(const struct wrk_config *cfg)
{
    if (cfg->retention_days <= 0)
        return NULL;
    struct wrk_retention *r = rp_xcalloc(1, sizeof(*r));
    r->mongo_url = rp_xstrdup(cfg->mongo_url);
    r->days = cfg->retention_days;
    r->first_ms = cfg->retention_first_ms;
    atomic_init(&r->stop, 0);
    atomic_init(&r->done, 0);
    atomic_init(&r->refs, 2);
    if (pthread_create(&r->tid, NULL, retention_main, r) != 0) {
        rp_warn("retention: cannot start its thread; old results are not deleted");
        free(r->mongo_url);
        free(r);
        return NULL;
    }
    return r;
}

void wrk_retention_stop(struct wrk_retention *r, long wait_ms)
{
    if (!r)
        return;
    atomic_store(&r->stop, 1);
    for (long waited = 0; !atomic_load(&r->done) && waited < wait_ms; waited += 50) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (atomic_load(&r->done)) {
        pthread_join(r->tid, NULL);
    } else {
        rp_warn("retention: a delete is still waiting for MongoDB; not waiting for it");
        pthread_detach(r->tid);
    }
    retention_release(r);
}

static int ensure_mongo(struct store *st, struct rp_error *err)
{
    if (st->coll)
        return RP_OK;
    if (!st->mongo) {
        int rc =
            rp_mongo_open(st->cfg->mongo_url, MONGO_TIMEOUT_MS, WRITE_REPLY_MS, &st->mongo, err);
        if (rc != RP_OK)
            return rc == RP_EINVAL ? rc : RP_EAGAIN;
    }
    st->client = rp_mongo_acquire(st->mongo);
    st->coll = rp_mongo_collection(st->mongo, st->client, RESULTS);
    create_indexes(st);
    return RP_OK;
}

/* ---- step 1: the result documents ------------------------------------------------------- */

/* The document without its steps, saying why: for a document the server refuses (too large). */
static bson_t *strip_doc(const bson_t *doc, const char *why)
{
    bson_t *out = bson_new(), empty;
    bson_iter_t it;
    if (bson_iter_init(&it, doc))
        while (bson_iter_next(&it))
            if (strcmp(bson_iter_key(&it), "steps") != 0)
                bson_append_iter(out, bson_iter_key(&it), -1, &it);
    bson_append_array_begin(out, "steps", -1, &empty);
    bson_append_array_end(out, &empty);
    char *msg = rp_xasprintf("the result could not be stored whole: %.300s", why);
    BSON_APPEND_UTF8(out, "store_error", msg);
    free(msg);
    return out;
}

/* Results are written with inserts only: FerretDB 1.24 runs every write with a filter
 * (replace, update, delete by _id) as a scan of the collection — 40 ms per document at 8,000
 * documents and growing (measured) — while inserts stay at 0.1 ms. A run already stored by an
 * earlier delivery (duplicate _id) keeps that first result: the item adopts it, so the event
 * and the final status say what the stored document says. */
static int adopt_existing(struct store *st, struct wrk_item *it, int *found, bson_error_t *e)
{
    bson_t filter = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&filter, "_id", it->run->run_id);
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(st->coll, &filter, NULL, NULL);
    const bson_t *doc;
    *found = 0;
    if (mongoc_cursor_next(cur, &doc)) {
        bson_destroy(it->doc);
        it->doc = bson_copy(doc);
        wrk_item_read_doc(it);
        *found = 1;
        rp_log(RP_LOG_INFO, it->run->run_id,
               "result already stored by an earlier delivery: keeping it (%s)", it->status);
    }
    int rc = mongoc_cursor_error(cur, e) ? rp_mongo_map_error(e) : RP_OK;
    mongoc_cursor_destroy(cur);
    bson_destroy(&filter);
    return rc;
}

/* One by one, after a bulk insert failed and its reply did not say which documents: adopt
 * what is already stored, insert the rest, stripping what the server refuses (too large). */
static int store_each(struct store *st, struct rp_error *err)
{
    for (size_t i = 0; i < st->n; i++) {
        struct wrk_item *it = st->v[i];
        bson_error_t e;
        int found = 0;
        wrk_beat(st->s, WRK_WRITER, "storing results one by one in MongoDB", 0);
        int rc = adopt_existing(st, it, &found, &e);
        if (rc != RP_OK)
            return rp_mongo_error(err, &e, "reading a stored result");
        if (found)
            continue;
        if (mongoc_collection_insert_one(st->coll, it->doc, NULL, NULL, &e))
            continue;
        rc = rp_mongo_map_error(&e);
        if (rp_is_transient(rc) || rc == RP_EEXIST)
            return rp_mongo_error(err, &e, "storing a result"), RP_EAGAIN;
        rp_log(RP_LOG_ERROR, it->run->run_id,
               "result refused by MongoDB (%s): storing it without its steps", e.message);
        bson_t *small = strip_doc(it->doc, e.message);
        bson_destroy(it->doc);
        it->doc = small;
        if (mongoc_collection_insert_one(st->coll, it->doc, NULL, NULL, &e))
            continue;
        rc = rp_mongo_map_error(&e);
        if (rp_is_transient(rc) || rc == RP_EEXIST)
            return rp_mongo_error(err, &e, "storing a result"), RP_EAGAIN;
        rp_log(RP_LOG_ERROR, it->run->run_id, "result not stored: %s", e.message);
    }
    return RP_OK;
}

/* After an unordered bulk insert failed for some documents, its reply's writeErrors name them
 * by index: the others are stored. A duplicate _id (11000: an earlier delivery stored this run)
 * adopts the stored result; a document the server refuses is stripped and inserted alone. Only
 * those are read back: a find by _id costs FerretDB a scan (0.28 s at 30,000 results), so a
 * redelivered batch with one duplicate must not read back all of its runs (measured: a restore
 * that republished 381 runs took the workers minutes that way). Without writeErrors the reply
 * says nothing per document: store_each() checks each one. */
static int store_after_bulk(struct store *st, const bson_t *reply, struct rp_error *err)
{
    bson_iter_t it, arr;
    int32_t *code = rp_xcalloc(st->n ? st->n : 1, sizeof(*code)); /* 0: stored by the bulk */
    size_t n_errors = 0;
    if (bson_iter_init_find(&it, reply, "writeErrors") && BSON_ITER_HOLDS_ARRAY(&it) &&
        bson_iter_recurse(&it, &arr)) {
        while (bson_iter_next(&arr)) {
            bson_iter_t f;
            int64_t idx = -1;
            int32_t c = -1;
            if (!BSON_ITER_HOLDS_DOCUMENT(&arr) || !bson_iter_recurse(&arr, &f))
                continue;
            while (bson_iter_next(&f)) {
                if (strcmp(bson_iter_key(&f), "index") == 0 && BSON_ITER_HOLDS_NUMBER(&f))
                    idx = bson_iter_as_int64(&f);
                else if (strcmp(bson_iter_key(&f), "code") == 0 && BSON_ITER_HOLDS_NUMBER(&f))
                    c = (int32_t)bson_iter_as_int64(&f);
            }
            if (idx >= 0 && (size_t)idx < st->n) {
                code[idx] = c ? c : -1;
                n_errors++;
            }
        }
    }
    if (n_errors == 0) {
        free(code);
        return store_each(st, err);
    }
    bson_error_t e;
    int rc = RP_OK;
    for (size_t i = 0; i < st->n && rc == RP_OK; i++) {
        struct wrk_item *item = st->v[i];
        int found = 0;
        if (code[i] == 0)
            continue;
        wrk_beat(st->s, WRK_WRITER, "reading back results stored earlier", 0);
        if (code[i] == 11000) {
            rc = adopt_existing(st, item, &found, &e);
            if (rc != RP_OK)
                rc = rp_mongo_error(err, &e, "reading a stored result");
            else if (!found) /* deleted since: store it again, with the whole batch */
                rc = rp_error_set(err, RP_EAGAIN, "mongo: a stored result of run %s vanished",
                                  item->run->run_id);
            continue;
        }
        rp_log(RP_LOG_ERROR, item->run->run_id,
               "result refused by MongoDB (code %d): storing it without its steps", code[i]);
        bson_t *small = strip_doc(item->doc, "refused by MongoDB");
        bson_destroy(item->doc);
        item->doc = small;
        if (mongoc_collection_insert_one(st->coll, item->doc, NULL, NULL, &e))
            continue;
        rc = rp_mongo_map_error(&e);
        if (rp_is_transient(rc) || rc == RP_EEXIST)
            rc = (rp_mongo_error(err, &e, "storing a result"), RP_EAGAIN);
        else {
            rp_log(RP_LOG_ERROR, item->run->run_id, "result not stored: %s", e.message);
            rc = RP_OK;
        }
    }
    free(code);
    return rc;
}

static int store_docs(struct store *st, struct rp_error *err)
{
    int rc = ensure_mongo(st, err);
    if (rc != RP_OK)
        return rc;
    bson_t opts = BSON_INITIALIZER, reply;
    BSON_APPEND_BOOL(&opts, "ordered", false);
    mongoc_bulk_operation_t *bulk =
        mongoc_collection_create_bulk_operation_with_opts(st->coll, &opts);
    bson_destroy(&opts);
    bson_error_t e;
    for (size_t i = 0; i < st->n; i++) {
        struct wrk_item *it = st->v[i];
        if (!mongoc_bulk_operation_insert_with_opts(bulk, it->doc, NULL, &e)) {
            bson_t *small = strip_doc(it->doc, e.message);
            bson_destroy(it->doc);
            it->doc = small;
            (void)mongoc_bulk_operation_insert_with_opts(bulk, it->doc, NULL, &e);
        }
    }
    uint32_t ok = mongoc_bulk_operation_execute(bulk, &reply, &e);
    mongoc_bulk_operation_destroy(bulk);
    if (ok) {
        bson_destroy(&reply);
        return RP_OK;
    }
    rc = rp_mongo_error(err, &e, "bulk insert of results");
    if (rp_is_transient(rc)) { /* retried whole: what was inserted comes back as duplicates */
        bson_destroy(&reply);
        return RP_EAGAIN;
    }
    rc = store_after_bulk(st, &reply, err); /* duplicates (a redelivery) or refused documents */
    bson_destroy(&reply);
    return rc;
}

/* ---- step 2: the final status ------------------------------------------------------------ */

/* Invalid UTF-8 would make PostgreSQL refuse the whole batch: replace such bytes by '?'. */
static char *valid_utf8(const char *s)
{
    char *out = rp_xstrdup(s);
    unsigned char *p = (unsigned char *)out;
    while (*p) {
        int n = *p < 0x80 ? 1 : (*p >> 5) == 6 ? 2 : (*p >> 4) == 14 ? 3 : (*p >> 3) == 30 ? 4 : 0;
        int ok = n > 0;
        for (int k = 1; ok && k < n; k++)
            ok = (p[k] & 0xc0) == 0x80;
        if (!ok) {
            *p++ = '?';
            continue;
        }
        p += n;
    }
    return out;
}

static int finish_runs(struct store *st, struct rp_error *err)
{
    if (!st->pg) {
        int rc = rp_pg_open(st->cfg->pg_url, &st->pg, err);
        if (rc != RP_OK)
            return rc;
    }
    struct rp_buf ids, statuses, times, errors, durations, failures;
    struct rp_buf *all[] = {&ids, &statuses, &times, &errors, &durations, &failures};
    for (int i = 0; i < 6; i++) {
        rp_buf_init(all[i], 0);
        (void)rp_buf_append(all[i], "{", 1);
    }
    for (size_t i = 0; i < st->n; i++) {
        struct wrk_item *it = st->v[i];
        char at[64];
        wrk_iso_ms(it->finished_ms, at);
        rp_pg_array_add(&ids, it->run->run_id);
        rp_pg_array_add(&statuses, it->status);
        rp_pg_array_add(&times, at);
        char *e = it->error ? valid_utf8(it->error) : NULL;
        rp_pg_array_add(&errors, e);
        free(e);
        char dur[32];
        snprintf(dur, sizeof(dur), "%.3f", it->duration_ms);
        rp_pg_array_add(&durations, it->duration_ms > 0 ? dur : NULL);
        char *f = it->failure ? valid_utf8(it->failure) : NULL;
        rp_pg_array_add(&failures, f);
        free(f);
    }
    for (int i = 0; i < 6; i++)
        (void)rp_buf_append(all[i], "}", 1);
    const char *p[] = {ids.data,    statuses.data,  times.data,
                       errors.data, durations.data, failures.data};
    PQclear(st->transitions);
    st->transitions = NULL;
    int rc = rp_pg_exec_idempotent(st->pg, finish_sql, 6, p, &st->transitions, err);
    for (int i = 0; i < 6; i++)
        rp_buf_cleanup(all[i]);
    return rc;
}

/* ---- step 4: the incident transitions the final write created -------------------------- */

/* Publish each as incident.<kind> with confirms and mark it published. Best effort, once: a
 * transition left unpublished (the broker or the database failed here, or this worker died)
 * is published by the mailer's and connector's outbox sweep a few seconds later. */
static void publish_incidents(struct store *st)
{
    PGresult *t = st->transitions;
    int n = t ? PQntuples(t) : 0;
    if (n == 0 || !st->pub)
        return;
    wrk_beat(st->s, WRK_WRITER, "publishing incident events", 0);
    struct rp_amqp_pub_stats before, after;
    rp_amqp_publisher_stats(st->pub, &before);
    struct rp_error err = {0};
    struct rp_buf ids;
    rp_buf_init(&ids, 0);
    (void)rp_buf_append(&ids, "{", 1);
    struct rp_amqp_props props = {.content_type = "application/json", .persistent = 1};
    int rc = RP_OK;
    for (int i = 0; i < n && rc == RP_OK; i++) {
        char key[48], body[120];
        snprintf(key, sizeof(key), "incident.%s", PQgetvalue(t, i, 1));
        int len = snprintf(body, sizeof(body), "{\"transition_id\":\"%s\",\"kind\":\"%s\"}",
                           PQgetvalue(t, i, 0), PQgetvalue(t, i, 1));
        rc = rp_amqp_publish(st->pub, RP_AMQP_EVENTS_EXCHANGE, key, body, (size_t)len, &props, 0,
                             NULL, &err);
        rp_pg_array_add(&ids, PQgetvalue(t, i, 0));
    }
    (void)rp_buf_append(&ids, "}", 1);
    if (rc == RP_OK)
        rc = rp_amqp_publisher_flush(st->pub, FLUSH_MS, &err);
    rp_amqp_publisher_stats(st->pub, &after);
    if (rc == RP_OK && (after.returned != before.returned || after.failed != before.failed))
        rc = rp_error_set(&err, RP_EIO, "refused by the broker");
    if (rc == RP_OK) {
        const char *p[] = {ids.data};
        rc = rp_pg_exec_idempotent(st->pg, published_sql, 1, p, NULL, &err);
    }
    if (rc != RP_OK)
        rp_warn("incident events: %s; the outbox sweep will publish %d transition(s)", err.msg, n);
    else
        rp_debug("incident events: %d published", n);
    rp_buf_cleanup(&ids);
    PQclear(st->transitions);
    st->transitions = NULL;
}

/* ---- step 3: the events ------------------------------------------------------------------- */

static void on_confirm(void *opaque, uint64_t seq, enum rp_amqp_outcome outcome, const char *why)
{
    struct store *st = opaque;
    /* confirms come mostly in publish order: search on from the last hit */
    for (size_t k = 0; k < st->n; k++) {
        size_t i = (st->hint + k) % st->n;
        struct wrk_item *it = st->v[i];
        if (!it->published || it->seq != seq)
            continue;
        st->hint = i + 1;
        if (outcome == RP_AMQP_FAILED) {
            it->refused = 1;
            rp_log(RP_LOG_WARN, it->run->run_id, "run.finished refused by the broker: %s",
                   why ? why : "no reason");
        } else {
            it->confirmed = 1;
        }
        return;
    }
}

static int publish_events(struct store *st, struct rp_error *err)
{
    int rc;
    if (!st->pub) {
        struct rp_amqp_opts o = {.name = "worker events publisher"};
        rc = rp_amqp_publisher_new(st->cfg->amqp_urls, &o, on_confirm, st, &st->pub, err);
        if (rc != RP_OK)
            return rc;
    }
    if (st->need_declare) { /* an event was refused: the exchange may be gone */
        struct rp_amqp_admin *a = NULL;
        rc = rp_amqp_admin_open(st->cfg->amqp_urls, NULL, &a, err);
        if (rc == RP_OK)
            rc = rp_amqp_declare_topology(a, NULL, 0, NULL, err);
        rp_amqp_admin_close(a);
        if (rc != RP_OK)
            return rc;
        st->need_declare = 0;
    }
    struct rp_buf body;
    rp_buf_init(&body, 0);
    rc = RP_OK;
    for (size_t i = 0; i < st->n && rc == RP_OK; i++) {
        struct wrk_item *it = st->v[i];
        if (it->published && !it->refused)
            continue;
        struct rp_run_finished ev = {
            .run = it->run,
            .status = it->status,
            .started_at_ms = it->started_ms,
            .finished_at_ms = it->finished_ms,
            .duration_ms = it->duration_ms,
            .attempt = it->attempt,
            .error = it->error,
            .failure = it->failure,
        };
        rp_buf_reset(&body);
        if (rp_run_finished_encode(&ev, &body) != RP_OK) {
            rp_log(RP_LOG_ERROR, it->run->run_id, "run.finished: cannot encode the event");
            it->published = it->confirmed = 1;
            continue;
        }
        char key[32];
        snprintf(key, sizeof(key), "run.finished.%s", it->status);
        struct rp_amqp_props props = {
            .content_type = "application/json", .message_id = it->run->run_id, .persistent = 1};
        /* the confirm can come inside rp_amqp_publish (it reads frames after sending, and
         * sets it->seq before): the item must already be waiting for it */
        it->published = 1;
        it->refused = 0;
        rc = rp_amqp_publish(st->pub, RP_AMQP_EVENTS_EXCHANGE, key, body.data, body.len, &props, 0,
                             &it->seq, err);
        if (rc != RP_OK)
            it->published = 0; /* not taken */
    }
    rp_buf_cleanup(&body);
    if (rc != RP_OK)
        return rc;
    rc = rp_amqp_publisher_flush(st->pub, FLUSH_MS, err);
    if (rc != RP_OK)
        return rc;
    for (size_t i = 0; i < st->n; i++)
        if (!st->v[i]->confirmed) {
            st->need_declare = 1;
            return rp_error_set(err, RP_EIO, "run.finished refused by the broker");
        }
    return RP_OK;
}

/* ---- the batch ---------------------------------------------------------------------------- */

typedef int (*step_fn)(struct store *st, struct rp_error *err);

/* Run one step until it succeeds: transient failures forever (with back-off), permanent ones
 * MAX_PERM_TRIES times, then the step is given up with an error (the batch goes on: stalling
 * every run behind one bad batch would be worse). Returns 0 when the worker aborted. */
static int step(struct store *st, step_fn fn, const char *what)
{
    long wait = 100;
    int perm = 0;
    for (;;) {
        if (atomic_load(&st->s->abort))
            return 0;
        wrk_beat(st->s, WRK_WRITER, what, 0);
        struct rp_error e = {0};
        int rc = fn(st, &e);
        long long now = wrk_now_ms();
        if (rc == RP_OK) {
            if (st->last_err[0])
                rp_info("%s: working again after %.1f s (%lu attempts)", what,
                        (double)(now - st->fail_since_ms) / 1000, st->fail_tries + 1);
            st->last_err[0] = '\0';
            return 1;
        }
        if (!rp_is_transient(rc) && ++perm >= MAX_PERM_TRIES) {
            rp_err("%s: %s; given up for %zu runs", what, e.msg, st->n);
            return 1;
        }
        /* a new error is logged at once, one that goes on every REPEAT_WARN_MS: a writer
         * retrying for minutes says so, where a stuck call would be told by the stall check */
        if (!st->last_err[0]) {
            st->fail_since_ms = now;
            st->fail_tries = 0;
        }
        st->fail_tries++;
        if (strcmp(st->last_err, e.msg) != 0) {
            rp_warn("%s: %s; retrying (%zu runs waiting)", what, e.msg, st->n);
            st->last_warn_ms = now;
        } else if (now - st->last_warn_ms >= REPEAT_WARN_MS) {
            rp_warn("%s: still failing after %.0f s (%lu attempts): %s; retrying (%zu runs "
                    "waiting)",
                    what, (double)(now - st->fail_since_ms) / 1000, st->fail_tries, e.msg, st->n);
            st->last_warn_ms = now;
        }
        snprintf(st->last_err, sizeof(st->last_err), "%s", e.msg);
        if (st->pub)
            (void)rp_amqp_publisher_poll(st->pub, 0, NULL);
        wrk_nap(st->s, wait);
        wait = wait * 2 > 5000 ? 5000 : wait * 2;
    }
}

static void complete_batch(struct store *st)
{
    struct wrk_shared *s = st->s;
    for (size_t i = 0; i < st->n; i++) {
        struct wrk_item *it = st->v[i];
        struct rp_series *fin = strcmp(it->status, "passed") == 0   ? s->m.finished_passed
                                : strcmp(it->status, "failed") == 0 ? s->m.finished_failed
                                                                    : s->m.finished_error;
        rp_series_inc(fin);
        if (it->dead)
            rp_series_inc(s->m.dead_lettered);
        else
            rp_series_add(s->m.in_flight, -1);
        rp_log(RP_LOG_DEBUG, it->run->run_id, "run %s stored and announced", it->status);
        wrk_complete(s, it->msg, 1); /* the message (and it->run) may be freed from here on */
        wrk_item_free(it);
        st->v[i] = NULL;
    }
    st->n = 0;
}

static void idle(struct store *st)
{
    if (st->pub)
        (void)rp_amqp_publisher_poll(st->pub, 0, NULL);
    long long now = wrk_now_ms();
    if (!st->coll && now >= st->next_mongo_try) {
        struct rp_error e = {0};
        if (ensure_mongo(st, &e) != RP_OK) {
            rp_debug("results: MongoDB not reachable yet: %s", e.msg);
            st->next_mongo_try = now + 5000;
        }
    }
}

void *wrk_store_main(void *arg)
{
    struct wrk_shared *s = arg;
    struct store st = {.s = s, .cfg = s->cfg};
    st.cap = (size_t)s->cfg->batch;
    st.v = rp_xcalloc(st.cap, sizeof(*st.v));
    for (;;) {
        if (atomic_load(&s->abort))
            break;
        wrk_beat(s, WRK_WRITER, "storing results", 0);
        int finished = 0;
        struct wrk_item *list = wrk_store_take(s, st.cap, 1000, &finished);
        if (!list) {
            if (finished)
                break;
            idle(&st);
            continue;
        }
        st.n = 0;
        st.hint = 0;
        while (list) {
            st.v[st.n++] = list;
            list = list->next;
            st.v[st.n - 1]->next = NULL;
        }
        if (!step(&st, store_docs, "storing results in MongoDB") ||
            !step(&st, publish_events, "publishing run.finished") ||
            !step(&st, finish_runs, "recording final statuses in PostgreSQL"))
            break;
        publish_incidents(&st);
        complete_batch(&st);
    }
    for (size_t i = 0; i < st.n; i++) /* after an abort: left unacked */
        wrk_item_free(st.v[i]);
    PQclear(st.transitions);
    free(st.v);
    if (st.pub) {
        struct rp_error e = {0};
        if (!atomic_load(&s->abort) && rp_amqp_publisher_flush(st.pub, 1000, &e) != RP_OK)
            rp_warn("events publisher: %s", e.msg);
        rp_amqp_publisher_free(st.pub);
    }
    if (st.coll)
        mongoc_collection_destroy(st.coll);
    if (st.client)
        rp_mongo_release(st.mongo, st.client);
    rp_mongo_close(st.mongo);
    rp_pg_close(st.pg);
    wrk_beat_end(s, WRK_WRITER);
    wrk_store_finished(s);
    return NULL;
}
