/* Internals shared by the engine's three files and nothing else: http.c (libcurl multi
 * plumbing: one transfer = one struct wrk_xfer), result.c (the result document of a run) and
 * engine.c (the run state machine that drives both). The public side is the "engine" section
 * of worker.h. */
#ifndef RAMPART_WORKER_ENGINE_INT_H
#define RAMPART_WORKER_ENGINE_INT_H

#include <stdint.h>

#include <curl/curl.h>

#include "worker.h"

#define WRK_MAX_REDIRECTS       10
#define WRK_MAX_RESP_HEADERS    100         /* response headers kept (the rest are dropped) */
#define WRK_MAX_RESP_HEADER_LEN (64 * 1024) /* bytes of response headers kept */

/* ---- http.c -------------------------------------------------------------------------------- */

struct wrk_http; /* one CURLM and a free list of easy handles */

struct wrk_http_opts {
    size_t body_cap;
    long max_total_connections; /* 0: unlimited */
    long max_host_connections;  /* 0: unlimited */
    const char *user_agent;
};

/* One request and its response. The caller fills the request part, wrk_http_start sends it,
 * and the done callback of wrk_http_perform finds the response part filled. */
struct wrk_xfer {
    /* request; strings owned by the xfer (freed by wrk_xfer_cleanup), `method` borrowed */
    const char *method;
    char *url;
    struct curl_slist *req_headers;
    char *req_body; /* NULL: no body */
    size_t req_body_len;
    long timeout_ms;
    int follow_redirects; /* most redirects to follow, 0: none */
    int verify_tls;
    void *ud; /* the owner (a run) */

    /* response */
    int rc;      /* RP_OK when a response arrived; else RP_E* and `error` */
    char *error; /* "could not resolve host x", "timed out after 500 ms" */
    long status;
    struct rp_header *headers;
    size_t n_headers;
    char *resp_body; /* at most body_cap bytes, NUL-terminated after body_len */
    size_t body_len, body_size;
    int body_truncated;
    struct rp_timings timings;
    long num_connects; /* new connections this transfer opened (0: reused one) */

    /* private to http.c */
    struct wrk_handle *handle; /* the easy handle while the transfer runs */
    struct wrk_http *http;
    size_t body_alloc, headers_alloc;
    char *hdr_text; /* every header's "name\0value\0", one allocation; `headers` point in */
    size_t hdr_len, hdr_alloc;
};

typedef void (*wrk_xfer_done_fn)(void *ud, struct wrk_xfer *x);

int wrk_http_new(const struct wrk_http_opts *opts, struct wrk_http **out,
                 struct rp_error *err) RP_MUST_CHECK;
void wrk_http_free(struct wrk_http *h);
/* Start `x` on the multi handle. On failure (a URL libcurl refuses outright) returns RP_EINVAL
 * with `x->error` set; the done callback is then not called. */
int wrk_http_start(struct wrk_http *h, struct wrk_xfer *x) RP_MUST_CHECK;
/* Wait up to `timeout_ms` for activity (curl_multi_poll), then move transfers on and call
 * `done` for each finished one, its easy handle already back on the free list. */
void wrk_http_step(struct wrk_http *h, long timeout_ms, wrk_xfer_done_fn done, void *ud);
/* Take a started transfer off the multi handle without calling `done` (engine shutdown). */
void wrk_http_cancel(struct wrk_http *h, struct wrk_xfer *x);
size_t wrk_http_active(const struct wrk_http *h);
uint64_t wrk_http_connections(const struct wrk_http *h);
/* Free the request and response parts of `x` (not `x` itself); `x` may be reused after. */
void wrk_xfer_cleanup(struct wrk_xfer *x);

/* ---- result.c ------------------------------------------------------------------------------ */

struct wrk_result; /* the document of one run, built step by step */

/* One check as stored: `expr` is the source ("status in [200, 201]", "schema"). */
struct wrk_check_rec {
    const char *expr;
    enum rp_severity severity;
    struct rp_check check;
    char *owned; /* `expr` when the engine built it (expected status); freed with the record */
};

struct wrk_capture_rec {
    const char *name;
    struct rp_value value; /* MISSING: nothing matched */
    int secret;
};

/* Everything about one step (or one `each` iteration) that goes into the document. */
struct wrk_step_rec {
    const char *name;
    long iteration; /* -1: not an `each` step */
    int skipped;
    /* rendered request, redacted twin (NULL when rendering failed) */
    const char *method, *url, *body;
    const struct rp_kv *req_headers;
    size_t n_req_headers;
    const struct wrk_xfer *resp; /* NULL: no response */
    const struct wrk_check_rec *checks;
    size_t n_checks;
    const struct wrk_capture_rec *captures;
    size_t n_captures;
    const char *error; /* why the step could not run, or NULL */
};

struct wrk_result *wrk_result_new(const char *run_id, const char *test_name);
void wrk_result_free(struct wrk_result *r);
/* Append a step; strings are redacted with `secrets` (the run's current secrets). */
void wrk_result_add_step(struct wrk_result *r, const struct wrk_step_rec *s,
                         const char *const *secrets);
/* The finished document (see wrk_done_fn); `status` passed|failed|error, `error` may be NULL.
 * Every string is redacted once more with the final `secrets` (a secret captured late may have
 * appeared in an earlier response). The caller owns the document; `r` is spent. */
bson_t *wrk_result_finish(struct wrk_result *r, const char *status, const char *error,
                          const char *const *secrets);

#endif
