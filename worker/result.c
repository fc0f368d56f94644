/* The result document of one run (BSON, the future MongoDB document; shape in worker.h's
 * wrk_done_fn). Steps are appended as they finish; the document is assembled at the end.
 * Secrets are redacted twice: each step with the secrets known when it ended (a secret that is
 * later overwritten by a new capture is still caught), and the whole document once more with the
 * final secrets (a token captured late may have been echoed by an earlier response).
 * Bodies that are not valid UTF-8 are stored base64-encoded, with body_encoding: "base64". */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "engine_int.h"
#include "rampart/mem.h"

struct wrk_result {
    char *run_id, *test;
    struct timespec started_rt, started_mono;
    bson_t *steps; /* heap: bson_t wants an alignment malloc does not give */
    uint32_t n_steps;
    int32_t n_assertions, n_failed, n_warnings;
};

struct wrk_result *wrk_result_new(const char *run_id, const char *test_name)
{
    struct wrk_result *r = rp_xcalloc(1, sizeof(*r));
    r->run_id = rp_xstrdup(run_id ? run_id : "");
    r->test = rp_xstrdup(test_name ? test_name : "");
    clock_gettime(CLOCK_REALTIME, &r->started_rt);
    clock_gettime(CLOCK_MONOTONIC, &r->started_mono);
    r->steps = bson_new();
    return r;
}

void wrk_result_free(struct wrk_result *r)
{
    if (!r)
        return;
    bson_destroy(r->steps);
    free(r->run_id);
    free(r->test);
    free(r);
}

static int any_secret(const char *const *secrets)
{
    for (size_t i = 0; secrets && secrets[i]; i++)
        if (secrets[i][0])
            return 1;
    return 0;
}

/* Append `s` (NULL: nothing) redacted with `secrets` (NULL when there are none). */
static void put_str(bson_t *d, const char *key, const char *s, const char *const *secrets)
{
    if (!s)
        return;
    if (!secrets) {
        bson_append_utf8(d, key, -1, s, -1);
        return;
    }
    char *red = rp_redact(s, strlen(s), secrets);
    bson_append_utf8(d, key, -1, red, -1);
    free(red);
}

/* Replace every secret in the bytes [p, p+len) by "***": for bodies that are not text. */
static char *redact_bytes(const char *p, size_t len, const char *const *secrets, size_t *out_len)
{
    struct rp_buf b;
    rp_buf_init(&b, 0);
    size_t i = 0;
    while (i < len) {
        size_t hit = 0;
        for (size_t k = 0; secrets[k] && !hit; k++) {
            size_t sl = strlen(secrets[k]);
            if (sl && sl <= len - i && memcmp(p + i, secrets[k], sl) == 0)
                hit = sl;
        }
        if (hit) {
            (void)rp_buf_append(&b, "***", 3);
            i += hit;
        } else {
            (void)rp_buf_append(&b, p + i, 1);
            i++;
        }
    }
    *out_len = b.len;
    return b.data ? b.data : rp_xstrdup("");
}

/* Length of the longest prefix of a capped body that does not end in the middle of a UTF-8
 * sequence (the cap may cut one). */
static size_t utf8_whole(const char *s, size_t len)
{
    size_t back = 0;
    while (back < 4 && back < len && ((unsigned char)s[len - 1 - back] & 0xC0) == 0x80)
        back++;
    if (back < len) {
        unsigned char lead = (unsigned char)s[len - 1 - back];
        size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
        if (need > back + 1)
            return len - 1 - back;
    }
    return len;
}

static void put_body(bson_t *d, const struct wrk_xfer *x, const char *const *secrets)
{
    const char *body = x->resp_body ? x->resp_body : "";
    size_t len = x->body_len;
    if (x->body_truncated)
        len = utf8_whole(body, len);
    if (bson_utf8_validate(body, len, false)) {
        if (!secrets) {
            bson_append_utf8(d, "body", -1, body, (int)len);
        } else {
            char *red = rp_redact(body, len, secrets);
            bson_append_utf8(d, "body", -1, red, -1);
            free(red);
        }
        return;
    }
    size_t blen = x->body_len;
    char *bytes = secrets ? redact_bytes(x->resp_body, x->body_len, secrets, &blen) : NULL;
    const unsigned char *src = (const unsigned char *)(bytes ? bytes : x->resp_body);
    size_t b64_len = sodium_base64_ENCODED_LEN(blen, sodium_base64_VARIANT_ORIGINAL);
    char *b64 = rp_xmalloc(b64_len);
    sodium_bin2base64(b64, b64_len, src, blen, sodium_base64_VARIANT_ORIGINAL);
    bson_append_utf8(d, "body", -1, b64, -1);
    BSON_APPEND_UTF8(d, "body_encoding", "base64");
    free(b64);
    free(bytes);
}

static void put_headers(bson_t *d, const char *key, const struct rp_kv *kv,
                        const struct rp_header *hd, size_t n, const char *const *secrets)
{
    bson_t arr, h;
    char ibuf[16];
    const char *ik;
    bson_append_array_begin(d, key, -1, &arr);
    for (size_t i = 0; i < n; i++) {
        bson_uint32_to_string((uint32_t)i, &ik, ibuf, sizeof(ibuf));
        bson_append_document_begin(&arr, ik, -1, &h);
        put_str(&h, "name", kv ? kv[i].name : hd[i].name, secrets);
        put_str(&h, "value", kv ? kv[i].value : hd[i].value, secrets);
        bson_append_document_end(&arr, &h);
    }
    bson_append_array_end(d, &arr);
}

static void put_capture_value(bson_t *d, const struct wrk_capture_rec *c,
                              const char *const *secrets)
{
    if (c->value.type == RP_V_MISSING)
        return;
    if (c->secret) {
        BSON_APPEND_UTF8(d, "value", "***");
        return;
    }
    if (secrets && (c->value.type == RP_V_STRING || c->value.type == RP_V_ARRAY ||
                    c->value.type == RP_V_OBJECT)) {
        /* A captured structure may hold another variable's secret: redact its text form, and
         * keep the value's type only when nothing had to be hidden. */
        char *text = c->value.type == RP_V_STRING ? rp_xstrdup(c->value.str)
                                                  : rp_value_to_json(&c->value, 0);
        char *red = rp_redact(text, strlen(text), secrets);
        if (strcmp(text, red) != 0)
            BSON_APPEND_UTF8(d, "value", red);
        else
            rp_value_append(d, "value", &c->value);
        free(text);
        free(red);
        return;
    }
    rp_value_append(d, "value", &c->value);
}

void wrk_result_add_step(struct wrk_result *r, const struct wrk_step_rec *s,
                         const char *const *secrets)
{
    char kbuf[16], ibuf[16];
    const char *key, *ik;
    bson_t st, sub, arr, item;
    if (!any_secret(secrets))
        secrets = NULL;
    bson_uint32_to_string(r->n_steps++, &key, kbuf, sizeof(kbuf));
    bson_append_document_begin(r->steps, key, -1, &st);
    BSON_APPEND_UTF8(&st, "name", s->name ? s->name : "");
    if (s->iteration >= 0)
        BSON_APPEND_INT64(&st, "iteration", s->iteration);
    if (s->skipped) {
        BSON_APPEND_BOOL(&st, "skipped", true);
        goto end;
    }
    if (s->method) {
        bson_append_document_begin(&st, "request", -1, &sub);
        BSON_APPEND_UTF8(&sub, "method", s->method);
        put_str(&sub, "url", s->url, secrets);
        put_headers(&sub, "headers", s->req_headers, NULL, s->n_req_headers, secrets);
        put_str(&sub, "body", s->body, secrets);
        bson_append_document_end(&st, &sub);
    }
    const struct wrk_xfer *x = s->resp;
    if (x && x->rc == RP_OK) {
        bson_append_document_begin(&st, "response", -1, &sub);
        BSON_APPEND_INT32(&sub, "status", (int32_t)x->status);
        put_headers(&sub, "headers", NULL, x->headers, x->n_headers, secrets);
        put_body(&sub, x, secrets);
        BSON_APPEND_INT64(&sub, "body_size", (int64_t)x->body_size);
        BSON_APPEND_BOOL(&sub, "body_truncated", x->body_truncated != 0);
        bson_append_document_end(&st, &sub);
    }
    if (x) {
        bson_append_document_begin(&st, "timings", -1, &sub);
        BSON_APPEND_DOUBLE(&sub, "dns", x->timings.dns);
        BSON_APPEND_DOUBLE(&sub, "connect", x->timings.connect);
        BSON_APPEND_DOUBLE(&sub, "tls", x->timings.tls);
        BSON_APPEND_DOUBLE(&sub, "first_byte", x->timings.first_byte);
        BSON_APPEND_DOUBLE(&sub, "total", x->timings.total);
        bson_append_document_end(&st, &sub);
    }
    if (x && x->rc == RP_OK) {
        bson_append_array_begin(&st, "assertions", -1, &arr);
        for (size_t i = 0; i < s->n_checks; i++) {
            const struct wrk_check_rec *c = &s->checks[i];
            bson_uint32_to_string((uint32_t)i, &ik, ibuf, sizeof(ibuf));
            bson_append_document_begin(&arr, ik, -1, &item);
            put_str(&item, "expr", c->expr, secrets);
            BSON_APPEND_BOOL(&item, "passed", c->check.passed != 0);
            BSON_APPEND_UTF8(&item, "severity",
                             c->severity == RP_SEV_WARNING ? "warning" : "error");
            put_str(&item, "actual", c->check.actual, secrets);
            put_str(&item, "message", c->check.message, secrets);
            bson_append_document_end(&arr, &item);
            r->n_assertions++;
            if (!c->check.passed) {
                if (c->severity == RP_SEV_WARNING)
                    r->n_warnings++;
                else
                    r->n_failed++;
            }
        }
        bson_append_array_end(&st, &arr);
        bson_append_array_begin(&st, "captures", -1, &arr);
        for (size_t i = 0; i < s->n_captures; i++) {
            bson_uint32_to_string((uint32_t)i, &ik, ibuf, sizeof(ibuf));
            bson_append_document_begin(&arr, ik, -1, &item);
            BSON_APPEND_UTF8(&item, "name", s->captures[i].name);
            put_capture_value(&item, &s->captures[i], secrets);
            bson_append_document_end(&arr, &item);
        }
        bson_append_array_end(&st, &arr);
    }
    put_str(&st, "error", s->error, secrets);
end:
    bson_append_document_end(r->steps, &st);
}

static void put_digits(char *p, long v, int n)
{
    while (n-- > 0) {
        p[n] = (char)('0' + v % 10);
        v /= 10;
    }
}

/* "2026-01-02T03:04:05.678Z" (24 characters): by hand, as strftime shows in profiles. */
static void iso_time(const struct timespec *ts, char buf[32])
{
    struct tm tm;
    gmtime_r(&ts->tv_sec, &tm);
    memcpy(buf, "0000-00-00T00:00:00.000Z", 25);
    put_digits(buf, tm.tm_year + 1900L, 4);
    put_digits(buf + 5, tm.tm_mon + 1L, 2);
    put_digits(buf + 8, tm.tm_mday, 2);
    put_digits(buf + 11, tm.tm_hour, 2);
    put_digits(buf + 14, tm.tm_min, 2);
    put_digits(buf + 17, tm.tm_sec, 2);
    put_digits(buf + 20, ts->tv_nsec / 1000000, 3);
}

/* Copy `src` into `dst` with every string redacted (keys are the engine's own, not redacted). */
static void redact_copy(bson_t *dst, bson_iter_t *it, const char *const *secrets)
{
    while (bson_iter_next(it)) {
        const char *key = bson_iter_key(it);
        bson_iter_t child;
        bson_t sub;
        if (BSON_ITER_HOLDS_UTF8(it)) {
            uint32_t len;
            const char *s = bson_iter_utf8(it, &len);
            char *red = rp_redact(s, len, secrets);
            bson_append_utf8(dst, key, -1, red, -1);
            free(red);
        } else if (BSON_ITER_HOLDS_DOCUMENT(it) && bson_iter_recurse(it, &child)) {
            bson_append_document_begin(dst, key, -1, &sub);
            redact_copy(&sub, &child, secrets);
            bson_append_document_end(dst, &sub);
        } else if (BSON_ITER_HOLDS_ARRAY(it) && bson_iter_recurse(it, &child)) {
            bson_append_array_begin(dst, key, -1, &sub);
            redact_copy(&sub, &child, secrets);
            bson_append_array_end(dst, &sub);
        } else {
            bson_append_iter(dst, key, -1, it);
        }
    }
}

bson_t *wrk_result_finish(struct wrk_result *r, const char *status, const char *error,
                          const char *const *secrets)
{
    struct timespec end_rt, end_mono;
    char started[32], finished[32];
    clock_gettime(CLOCK_REALTIME, &end_rt);
    clock_gettime(CLOCK_MONOTONIC, &end_mono);
    double dur = (double)(end_mono.tv_sec - r->started_mono.tv_sec) * 1e3 +
                 (double)(end_mono.tv_nsec - r->started_mono.tv_nsec) / 1e6;
    iso_time(&r->started_rt, started);
    iso_time(&end_rt, finished);
    if (!any_secret(secrets))
        secrets = NULL;

    bson_t *doc = bson_new(), sub;
    BSON_APPEND_UTF8(doc, "_id", r->run_id);
    BSON_APPEND_UTF8(doc, "test", r->test);
    BSON_APPEND_UTF8(doc, "status", status);
    put_str(doc, "error", error, secrets);
    BSON_APPEND_UTF8(doc, "started_at", started);
    BSON_APPEND_UTF8(doc, "finished_at", finished);
    BSON_APPEND_DOUBLE(doc, "duration_ms", dur);
    if (secrets) {
        bson_iter_t it;
        bson_append_array_begin(doc, "steps", -1, &sub);
        if (bson_iter_init(&it, r->steps))
            redact_copy(&sub, &it, secrets);
        bson_append_array_end(doc, &sub);
    } else {
        BSON_APPEND_ARRAY(doc, "steps", r->steps);
    }
    bson_append_document_begin(doc, "counts", -1, &sub);
    BSON_APPEND_INT32(&sub, "assertions", r->n_assertions);
    BSON_APPEND_INT32(&sub, "failed", r->n_failed);
    BSON_APPEND_INT32(&sub, "warnings", r->n_warnings);
    bson_append_document_end(doc, &sub);
    wrk_result_free(r);
    return doc;
}
