/* The pipeline's messages (job.h): job messages (scheduler -> worker) and run.finished events
 * (worker -> everyone), both JSON written and read through libbson, and UUIDv7 run ids. A job
 * is checked field by field on the way in, because a worker acts on it: a malformed message
 * is refused with a message naming the field, and dead-letters instead of crashing anyone. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bson/bson.h>
#include <sodium.h>

#include "rampart/job.h"
#include "rampart/mem.h"

int64_t rp_now_unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- UUIDv7 -------------------------------------------------------------------------------
 * 48 bits of Unix ms, version 7, 12 bits rand_a, variant 10, 62 bits rand_b. Within one
 * millisecond rand_a counts up from a random start (RFC 9562 method 1), so ids from one
 * process sort in creation order; if it overflows, the timestamp is nudged forward by 1 ms. */
static pthread_mutex_t uuid_lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t uuid_last_ms;
static unsigned uuid_counter;

void rp_uuid_v7(char out[RP_UUID_LEN + 1])
{
    unsigned char b[16];
    if (sodium_init() < 0)
        abort();
    randombytes_buf(b, sizeof(b));
    int64_t ms = rp_now_unix_ms();
    pthread_mutex_lock(&uuid_lock);
    if (ms <= uuid_last_ms) {
        ms = uuid_last_ms;
        if (++uuid_counter > 0xfff) {
            ms++;
            uuid_counter = (unsigned)(b[6] & 0x07) << 8 | b[7]; /* restart low: room to count */
        }
    } else {
        uuid_counter = (unsigned)(b[6] & 0x07) << 8 | b[7];
    }
    uuid_last_ms = ms;
    unsigned counter = uuid_counter;
    pthread_mutex_unlock(&uuid_lock);
    for (int i = 0; i < 6; i++)
        b[i] = (unsigned char)((uint64_t)ms >> (40 - 8 * i));
    b[6] = (unsigned char)(0x70 | ((counter >> 8) & 0x0f));
    b[7] = (unsigned char)(counter & 0xff);
    b[8] = (unsigned char)(0x80 | (b[8] & 0x3f));
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = '\0';
}

int rp_uuid_valid(const char *s)
{
    if (!s || strlen(s) != RP_UUID_LEN)
        return 0;
    for (int i = 0; i < RP_UUID_LEN; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return 0;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
            return 0;
        }
    }
    return 1;
}

/* ---- encoding ----------------------------------------------------------------------------- */

static void append_opt_str(bson_t *d, const char *key, const char *v)
{
    if (v)
        bson_append_utf8(d, key, -1, v, -1);
    else
        bson_append_null(d, key, -1);
}

static int emit(bson_t *doc, struct rp_buf *out)
{
    size_t len;
    char *json = bson_as_relaxed_extended_json(doc, &len);
    int rc = json ? rp_buf_append(out, json, len) : RP_EINVAL;
    bson_free(json);
    return rc;
}

int rp_job_encode(const struct rp_job_run *runs, size_t n, struct rp_buf *out)
{
    if (n == 0 || n > RP_JOB_MAX_RUNS)
        return RP_EINVAL;
    bson_t doc = BSON_INITIALIZER, arr;
    BSON_APPEND_INT32(&doc, "v", 1);
    bson_append_array_begin(&doc, "runs", -1, &arr);
    for (size_t i = 0; i < n; i++) {
        const struct rp_job_run *r = &runs[i];
        char key[16];
        const char *k;
        bson_uint32_to_string((uint32_t)i, &k, key, sizeof(key));
        bson_t d;
        bson_append_document_begin(&arr, k, -1, &d);
        BSON_APPEND_UTF8(&d, "run_id", r->run_id);
        BSON_APPEND_UTF8(&d, "project_id", r->project_id);
        BSON_APPEND_UTF8(&d, "test_id", r->test_id);
        BSON_APPEND_INT32(&d, "test_version", r->test_version);
        append_opt_str(&d, "schedule_id", r->schedule_id);
        append_opt_str(&d, "environment_id", r->environment_id);
        BSON_APPEND_INT64(&d, "fire_time_ms", r->fire_time_ms);
        BSON_APPEND_UTF8(&d, "trigger", r->trigger);
        BSON_APPEND_UTF8(&d, "location", r->location);
        BSON_APPEND_INT32(&d, "retries", r->retries);
        BSON_APPEND_UTF8(&d, "definition", r->definition ? r->definition : "");
        BSON_APPEND_UTF8(&d, "variables", r->variables ? r->variables : "{}");
        if (r->overrides)
            BSON_APPEND_UTF8(&d, "overrides", r->overrides);
        bson_append_document_end(&arr, &d);
    }
    bson_append_array_end(&doc, &arr);
    int rc = emit(&doc, out);
    bson_destroy(&doc);
    return rc;
}

int rp_run_finished_encode(const struct rp_run_finished *ev, struct rp_buf *out)
{
    const struct rp_job_run *r = ev->run;
    bson_t d = BSON_INITIALIZER;
    BSON_APPEND_INT32(&d, "v", 1);
    BSON_APPEND_UTF8(&d, "run_id", r->run_id);
    BSON_APPEND_UTF8(&d, "project_id", r->project_id);
    BSON_APPEND_UTF8(&d, "test_id", r->test_id);
    BSON_APPEND_INT32(&d, "test_version", r->test_version);
    append_opt_str(&d, "schedule_id", r->schedule_id);
    BSON_APPEND_UTF8(&d, "location", r->location);
    BSON_APPEND_UTF8(&d, "trigger", r->trigger);
    BSON_APPEND_INT64(&d, "fire_time_ms", r->fire_time_ms);
    BSON_APPEND_UTF8(&d, "status", ev->status ? ev->status : "error");
    BSON_APPEND_INT64(&d, "started_at_ms", ev->started_at_ms);
    BSON_APPEND_INT64(&d, "finished_at_ms", ev->finished_at_ms);
    BSON_APPEND_DOUBLE(&d, "duration_ms", ev->duration_ms);
    BSON_APPEND_INT32(&d, "attempt", ev->attempt);
    append_opt_str(&d, "error", ev->error);
    append_opt_str(&d, "failure", ev->failure);
    int rc = emit(&d, out);
    bson_destroy(&d);
    return rc;
}

/* ---- decoding ----------------------------------------------------------------------------- */

void rp_job_run_cleanup(struct rp_job_run *r)
{
    if (!r)
        return;
    free(r->schedule_id);
    free(r->environment_id);
    free(r->definition);
    free(r->variables);
    free(r->overrides);
    r->schedule_id = r->environment_id = r->definition = r->variables = r->overrides = NULL;
}

void rp_job_free(struct rp_job *job)
{
    if (!job)
        return;
    for (size_t i = 0; i < job->n; i++)
        rp_job_run_cleanup(&job->runs[i]);
    free(job->runs);
    free(job);
}

static int bad(struct rp_error *err, size_t i, const char *field, const char *why)
{
    return rp_error_set(err, RP_EINVAL, "job message: runs[%zu].%s: %s", i, field, why);
}

/* A string field of `d` as a new string; `nullable` allows null (-> NULL). */
static int get_str(const bson_t *d, size_t i, const char *key, int nullable, size_t max, char **out,
                   struct rp_error *err)
{
    bson_iter_t it;
    *out = NULL;
    if (!bson_iter_init_find(&it, d, key))
        return bad(err, i, key, "missing");
    if (BSON_ITER_HOLDS_NULL(&it)) {
        if (nullable)
            return RP_OK;
        return bad(err, i, key, "must not be null");
    }
    if (!BSON_ITER_HOLDS_UTF8(&it))
        return bad(err, i, key, "must be a string");
    uint32_t len;
    const char *s = bson_iter_utf8(&it, &len);
    if (len > max || memchr(s, '\0', len))
        return bad(err, i, key, "too long or holds a NUL character");
    *out = rp_xstrndup(s, len);
    return RP_OK;
}

static int get_int(const bson_t *d, size_t i, const char *key, int64_t lo, int64_t hi, int64_t *out,
                   struct rp_error *err)
{
    bson_iter_t it;
    if (!bson_iter_init_find(&it, d, key))
        return bad(err, i, key, "missing");
    int64_t v;
    if (BSON_ITER_HOLDS_INT32(&it))
        v = bson_iter_int32(&it);
    else if (BSON_ITER_HOLDS_INT64(&it))
        v = bson_iter_int64(&it);
    else
        return bad(err, i, key, "must be an integer");
    if (v < lo || v > hi)
        return bad(err, i, key, "out of range");
    *out = v;
    return RP_OK;
}

/* Copy a checked fixed-size string field into `dst`. */
static int get_fixed(const bson_t *d, size_t i, const char *key, char *dst, size_t dstlen,
                     int (*valid)(const char *), struct rp_error *err)
{
    char *s = NULL;
    int rc = get_str(d, i, key, 0, dstlen - 1, &s, err);
    if (rc == RP_OK && !valid(s))
        rc = bad(err, i, key, "malformed");
    if (rc == RP_OK)
        snprintf(dst, dstlen, "%s", s);
    free(s);
    return rc;
}

static int valid_trigger(const char *s)
{
    return strcmp(s, "schedule") == 0 || strcmp(s, "manual") == 0 || strcmp(s, "api") == 0;
}

static int valid_location(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 32)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int ok =
            (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (i > 0 && (c == '-' || c == '_'));
        if (!ok)
            return 0;
    }
    return 1;
}

static int decode_run(const bson_t *d, size_t i, struct rp_job_run *r, struct rp_error *err)
{
    int64_t v;
    int rc = get_fixed(d, i, "run_id", r->run_id, sizeof(r->run_id), rp_uuid_valid, err);
    if (rc == RP_OK)
        rc =
            get_fixed(d, i, "project_id", r->project_id, sizeof(r->project_id), rp_uuid_valid, err);
    if (rc == RP_OK)
        rc = get_fixed(d, i, "test_id", r->test_id, sizeof(r->test_id), rp_uuid_valid, err);
    if (rc == RP_OK && (rc = get_int(d, i, "test_version", 1, INT32_MAX, &v, err)) == RP_OK)
        r->test_version = (int)v;
    if (rc == RP_OK)
        rc = get_str(d, i, "schedule_id", 1, RP_UUID_LEN, &r->schedule_id, err);
    if (rc == RP_OK && r->schedule_id && !rp_uuid_valid(r->schedule_id))
        rc = bad(err, i, "schedule_id", "malformed");
    if (rc == RP_OK)
        rc = get_str(d, i, "environment_id", 1, RP_UUID_LEN, &r->environment_id, err);
    if (rc == RP_OK && r->environment_id && !rp_uuid_valid(r->environment_id))
        rc = bad(err, i, "environment_id", "malformed");
    if (rc == RP_OK && (rc = get_int(d, i, "fire_time_ms", 0, INT64_MAX / 2, &v, err)) == RP_OK)
        r->fire_time_ms = v;
    if (rc == RP_OK)
        rc = get_fixed(d, i, "trigger", r->trigger, sizeof(r->trigger), valid_trigger, err);
    if (rc == RP_OK)
        rc = get_fixed(d, i, "location", r->location, sizeof(r->location), valid_location, err);
    if (rc == RP_OK && (rc = get_int(d, i, "retries", 0, 5, &v, err)) == RP_OK)
        r->retries = (int)v;
    if (rc == RP_OK)
        rc = get_str(d, i, "definition", 0, RP_JOB_MAX_BYTES, &r->definition, err);
    if (rc == RP_OK)
        rc = get_str(d, i, "variables", 0, RP_JOB_MAX_BYTES, &r->variables, err);
    bson_iter_t it; /* optional: absent or null means none */
    if (rc == RP_OK && bson_iter_init_find(&it, d, "overrides"))
        rc = get_str(d, i, "overrides", 1, RP_JOB_MAX_BYTES, &r->overrides, err);
    return rc;
}

int rp_job_decode(const void *body, size_t len, struct rp_job **out, struct rp_error *err)
{
    struct rp_job *job = rp_xcalloc(1, sizeof(*job));
    bson_t doc;
    int have_doc = 0, rc = RP_EINVAL;
    bson_error_t be;
    if (len == 0 || len > RP_JOB_MAX_BYTES) {
        rc = rp_error_set(err, RP_EINVAL, "job message: empty or larger than %u bytes",
                          RP_JOB_MAX_BYTES);
        goto out;
    }
    if (!bson_init_from_json(&doc, body, (ssize_t)len, &be)) {
        rc = rp_error_set(err, RP_EINVAL, "job message: not JSON: %s", be.message);
        goto out;
    }
    have_doc = 1;
    bson_iter_t it, arr;
    if (!bson_iter_init_find(&it, &doc, "v") || !BSON_ITER_HOLDS_INT32(&it) ||
        bson_iter_int32(&it) != 1) {
        rc = rp_error_set(err, RP_EINVAL, "job message: \"v\" must be 1 (format version)");
        goto out;
    }
    if (!bson_iter_init_find(&it, &doc, "runs") || !BSON_ITER_HOLDS_ARRAY(&it) ||
        !bson_iter_recurse(&it, &arr)) {
        rc = rp_error_set(err, RP_EINVAL, "job message: \"runs\" must be an array");
        goto out;
    }
    size_t cap = 0;
    while (bson_iter_next(&arr)) {
        if (job->n == RP_JOB_MAX_RUNS) {
            rc = rp_error_set(err, RP_EINVAL, "job message: more than %d runs", RP_JOB_MAX_RUNS);
            goto out;
        }
        if (!BSON_ITER_HOLDS_DOCUMENT(&arr)) {
            rc = bad(err, job->n, "", "must be an object");
            goto out;
        }
        uint32_t dlen;
        const uint8_t *data;
        bson_iter_document(&arr, &dlen, &data);
        bson_t run;
        if (!bson_init_static(&run, data, dlen)) {
            rc = bad(err, job->n, "", "malformed object");
            goto out;
        }
        if (job->n == cap) {
            cap = cap ? cap * 2 : 4;
            job->runs = rp_xrealloc(job->runs, cap * sizeof(*job->runs));
        }
        struct rp_job_run *r = &job->runs[job->n];
        memset(r, 0, sizeof(*r));
        job->n++;
        rc = decode_run(&run, job->n - 1, r, err);
        if (rc != RP_OK)
            goto out;
    }
    if (job->n == 0) {
        rc = rp_error_set(err, RP_EINVAL, "job message: \"runs\" is empty");
        goto out;
    }
    *out = job;
    job = NULL;
    rc = RP_OK;
out:
    if (have_doc)
        bson_destroy(&doc);
    rp_job_free(job);
    return rc;
}
