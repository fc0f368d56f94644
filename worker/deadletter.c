/* Dead letters and results made without the engine. A job that crashed or stalled every worker
 * that took it reaches the queue's delivery limit and is dead-lettered into
 * `rampart.jobs.dead`; every worker consumes that queue, and each unfinished run there gets an
 * `error` result saying so, stored and announced like any other (docs/pipeline.md "Poison
 * jobs"). The same error documents serve runs whose definition or variables cannot be used.
 * Also here: reading a result document's outcome, and the fields the pipeline adds to it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "consumer.h"
#include "rampart/log.h"
#include "rampart/mem.h"
#include "worker.h"

char *wrk_dead_error(const struct rp_amqp_delivery *d, long delivery_limit)
{
    /* Measured on RabbitMQ 3.10: a quorum queue dead-letters a message whose delivery count
     * passed the limit (limit + 1 deliveries); the dead letter carries x-first-death-reason
     * "delivery_limit" and no x-delivery-count. */
    const char *reason = rp_amqp_delivery_header(d, "x-first-death-reason");
    if (!reason || strcmp(reason, "delivery_limit") == 0) {
        long n = delivery_limit + 1;
        if (d->delivery_count > 0 && d->delivery_count + 1 > n)
            n = d->delivery_count + 1;
        return rp_xasprintf("dead-lettered after %ld deliveries: the job crashed or stalled "
                            "every worker that took it",
                            n);
    }
    return rp_xasprintf("dead-lettered (%.40s): the job could not be processed", reason);
}

/* A copy of `s` cut to at most `max` bytes, never in the middle of a UTF-8 character. */
static char *dup_cut(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n > max) {
        n = max;
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
            n--;
    }
    return rp_xstrndup(s, n);
}

void wrk_iso_ms(int64_t ms, char buf[64])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(buf, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

bson_t *wrk_error_result(const char *run_id, const char *test_name, const char *error,
                         int64_t at_ms)
{
    char at[64];
    wrk_iso_ms(at_ms, at);
    bson_t *doc = bson_new(), sub;
    BSON_APPEND_UTF8(doc, "_id", run_id);
    BSON_APPEND_UTF8(doc, "test", test_name ? test_name : "");
    BSON_APPEND_UTF8(doc, "status", "error");
    BSON_APPEND_UTF8(doc, "error", error);
    BSON_APPEND_UTF8(doc, "started_at", at);
    BSON_APPEND_UTF8(doc, "finished_at", at);
    BSON_APPEND_DOUBLE(doc, "duration_ms", 0);
    bson_append_array_begin(doc, "steps", -1, &sub);
    bson_append_array_end(doc, &sub);
    bson_append_document_begin(doc, "counts", -1, &sub);
    BSON_APPEND_INT32(&sub, "assertions", 0);
    BSON_APPEND_INT32(&sub, "failed", 0);
    BSON_APPEND_INT32(&sub, "warnings", 0);
    bson_append_document_end(doc, &sub);
    return doc;
}

char *wrk_definition_name(const char *definition)
{
    if (!definition)
        return NULL;
    bson_t doc;
    bson_error_t e;
    if (!bson_init_from_json(&doc, definition, -1, &e))
        return NULL;
    bson_iter_t it;
    char *name = NULL;
    if (bson_iter_init_find(&it, &doc, "name") && BSON_ITER_HOLDS_UTF8(&it))
        name = dup_cut(bson_iter_utf8(&it, NULL), 800);
    bson_destroy(&doc);
    return name;
}

/* The message of the first failed error-severity check, steps in order. */
static char *first_failure(const bson_t *doc)
{
    bson_iter_t it, steps, step, checks, check;
    if (!bson_iter_init_find(&it, doc, "steps") || !BSON_ITER_HOLDS_ARRAY(&it) ||
        !bson_iter_recurse(&it, &steps))
        return NULL;
    while (bson_iter_next(&steps)) {
        if (!BSON_ITER_HOLDS_DOCUMENT(&steps) || !bson_iter_recurse(&steps, &step) ||
            !bson_iter_find(&step, "assertions") || !BSON_ITER_HOLDS_ARRAY(&step) ||
            !bson_iter_recurse(&step, &checks))
            continue;
        while (bson_iter_next(&checks)) {
            bson_iter_t f;
            int passed = 1, is_error = 0;
            const char *msg = NULL;
            if (!BSON_ITER_HOLDS_DOCUMENT(&checks) || !bson_iter_recurse(&checks, &check))
                continue;
            f = check;
            if (bson_iter_find(&f, "passed") && BSON_ITER_HOLDS_BOOL(&f))
                passed = bson_iter_bool(&f);
            f = check;
            if (bson_iter_find(&f, "severity") && BSON_ITER_HOLDS_UTF8(&f))
                is_error = strcmp(bson_iter_utf8(&f, NULL), "error") == 0;
            f = check;
            if (bson_iter_find(&f, "message") && BSON_ITER_HOLDS_UTF8(&f))
                msg = bson_iter_utf8(&f, NULL);
            if (!passed && is_error && msg)
                return dup_cut(msg, 1000);
        }
    }
    return NULL;
}

void wrk_item_read_doc(struct wrk_item *it)
{
    const char *status = rp_doc_str(it->doc, "status");
    if (!status || (strcmp(status, "passed") != 0 && strcmp(status, "failed") != 0))
        status = "error";
    snprintf(it->status, sizeof(it->status), "%s", status);
    const char *error = rp_doc_str(it->doc, "error");
    free(it->error);
    it->error = error ? dup_cut(error, 2000) : NULL;
    if (!it->error && strcmp(it->status, "error") == 0)
        it->error = rp_xstrdup("the run could not run");
    free(it->failure);
    it->failure = strcmp(it->status, "failed") == 0 ? first_failure(it->doc) : NULL;
    it->duration_ms = rp_doc_num(it->doc, "duration_ms", 0);
}

void wrk_item_enrich(struct wrk_item *it)
{
    const struct rp_job_run *r = it->run;
    bson_t *d = it->doc;
    BSON_APPEND_UTF8(d, "project_id", r->project_id);
    BSON_APPEND_UTF8(d, "test_id", r->test_id);
    BSON_APPEND_INT32(d, "test_version", r->test_version);
    if (r->schedule_id)
        BSON_APPEND_UTF8(d, "schedule_id", r->schedule_id);
    else
        BSON_APPEND_NULL(d, "schedule_id");
    BSON_APPEND_UTF8(d, "location", r->location);
    BSON_APPEND_UTF8(d, "trigger", r->trigger);
    BSON_APPEND_DATE_TIME(d, "fire_time", r->fire_time_ms);
    BSON_APPEND_INT32(d, "attempt", it->attempt);
    BSON_APPEND_INT32(d, "tries", it->tries);
    BSON_APPEND_UTF8(d, "worker", rp_log_instance());
}

struct wrk_item *wrk_error_item(struct wrk_msg *m, const struct rp_job_run *r, int attempt,
                                const char *test_name, const char *error)
{
    struct wrk_item *it = rp_xcalloc(1, sizeof(*it));
    int64_t now = rp_now_unix_ms();
    char *name = test_name ? NULL : wrk_definition_name(r->definition);
    it->msg = m;
    it->run = r;
    it->attempt = attempt;
    it->started_ms = it->finished_ms = now;
    it->doc = wrk_error_result(r->run_id, test_name ? test_name : name, error, now);
    free(name);
    wrk_item_read_doc(it);
    wrk_item_enrich(it);
    return it;
}
