/* The run state machine: many runs at once on one thread, driven by wrk_engine_run over the
 * libcurl multi handle of http.c, each building its result document through result.c.
 *
 * Design note: a run is on the engine's ready queue (it can move without waiting) or has one
 * transfer in flight. advance() moves a ready run as far as it can go without waiting:
 *   NEXT_STEP: past the last step, or stopped -> DONE (document to the callback).
 *              `if` false -> step recorded as skipped. `each` -> the array is computed once.
 *   RENDER:    url, headers, body from templates (an unknown variable ends the run: error).
 *   REQUEST:   wrk_http_start; the run leaves the queue until on_xfer_done puts it back.
 *   CHECK:     (in advance, when the run comes back) captures, expected status, schema,
 *              assertions; then the next `each` element or NEXT_STEP.
 * At most max_concurrent transfers run at once; ready runs beyond that wait in the queue. The
 * response of the latest request stays available to the next step's `if` and `each`. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "engine_int.h"
#include "rampart/mem.h"

#define MAX_URL_LEN    (64 * 1024)
#define MAX_HEADER_LEN (64 * 1024)
#define MAX_BODY_LEN   (8 * 1024 * 1024)

struct resp {
    struct wrk_xfer x;
    bson_t *json;   /* the body parsed, once something asked for it */
    int json_tried; /* parsing was attempted (json may still be NULL: not JSON) */
    int used;       /* x holds a response (or a failed request) */
};

struct run {
    struct wrk_engine *e;
    const struct rp_test *test;
    struct rp_vars *vars;
    char *run_id;
    wrk_done_fn done;
    void *ud;
    struct wrk_result *result;
    struct run *next;                /* ready queue */
    struct run *all_prev, *all_next; /* every run, for wrk_engine_free */

    size_t step;          /* current step index */
    int in_step;          /* `if` and `each` of the current step already evaluated */
    int in_flight;        /* a transfer is on the multi handle */
    struct rp_value each; /* the `each` array (RP_V_ARRAY) or MISSING */
    int each_secret;
    bson_iter_t each_it;
    long iteration; /* -1 without `each` */
    struct resp bufs[2];
    struct resp *cur, *prev;

    /* the step being run: redacted request and records for the document */
    char *red_url, *red_body;
    struct rp_kv *red_headers;
    size_t n_red_headers;
    struct wrk_check_rec *checks;
    size_t n_checks, checks_alloc;
    struct wrk_capture_rec *captures;
    size_t n_captures, captures_alloc;

    int failed;  /* an error-severity check failed */
    int stopped; /* no further step runs */
    char *error; /* the run could not run: why */
};

struct wrk_engine {
    struct wrk_http *http;
    struct wrk_engine_opts opts;
    char *user_agent;
    size_t in_flight; /* runs submitted and not yet done */
    struct run *ready_head, *ready_tail;
    struct run *all;
    uint64_t finished;   /* runs done, ever */
    uint64_t xfers_done; /* transfers ended, ever */
};

static void enqueue(struct wrk_engine *e, struct run *r)
{
    r->next = NULL;
    if (e->ready_tail)
        e->ready_tail->next = r;
    else
        e->ready_head = r;
    e->ready_tail = r;
}

static struct run *dequeue(struct wrk_engine *e)
{
    struct run *r = e->ready_head;
    if (r) {
        e->ready_head = r->next;
        if (!e->ready_head)
            e->ready_tail = NULL;
        r->next = NULL;
    }
    return r;
}

int wrk_engine_new(const struct wrk_engine_opts *opts, struct wrk_engine **out,
                   struct rp_error *err)
{
    struct wrk_engine *e = rp_xcalloc(1, sizeof(*e));
    if (opts)
        e->opts = *opts;
    if (!e->opts.body_cap)
        e->opts.body_cap = 1024 * 1024;
    if (!e->opts.max_concurrent)
        e->opts.max_concurrent = 256;
    e->user_agent = rp_xstrdup(e->opts.user_agent ? e->opts.user_agent : "rampart/" RP_VERSION);
    e->opts.user_agent = e->user_agent;
    struct wrk_http_opts ho = {
        .body_cap = e->opts.body_cap,
        .max_total_connections = (long)e->opts.max_concurrent,
        .max_host_connections = e->opts.max_host_connections,
        .user_agent = e->user_agent,
    };
    int rc = wrk_http_new(&ho, &e->http, err);
    if (rc != RP_OK) {
        free(e->user_agent);
        free(e);
        return rc;
    }
    *out = e;
    return RP_OK;
}

static void clear_step(struct run *r)
{
    free(r->red_url);
    free(r->red_body);
    r->red_url = r->red_body = NULL;
    for (size_t i = 0; i < r->n_red_headers; i++) {
        free(r->red_headers[i].name);
        free(r->red_headers[i].value);
    }
    free(r->red_headers);
    r->red_headers = NULL;
    r->n_red_headers = 0;
    for (size_t i = 0; i < r->n_checks; i++) {
        rp_check_clear(&r->checks[i].check);
        free(r->checks[i].owned);
    }
    r->n_checks = 0;
    for (size_t i = 0; i < r->n_captures; i++)
        rp_value_clear(&r->captures[i].value);
    r->n_captures = 0;
}

static void resp_clear(struct resp *p)
{
    wrk_xfer_cleanup(&p->x);
    if (p->json)
        bson_destroy(p->json);
    p->json = NULL;
    p->json_tried = 0;
    p->used = 0;
}

static void run_free(struct run *r)
{
    if (!r)
        return;
    clear_step(r);
    resp_clear(&r->bufs[0]);
    resp_clear(&r->bufs[1]);
    free(r->checks);
    free(r->captures);
    rp_value_clear(&r->each);
    rp_vars_free(r->vars);
    wrk_result_free(r->result);
    free(r->run_id);
    free(r->error);
    free(r);
}

void wrk_engine_free(struct wrk_engine *e)
{
    if (!e)
        return;
    struct run *r = e->all;
    while (r) {
        struct run *next = r->all_next;
        if (r->in_flight)
            wrk_http_cancel(e->http, &r->cur->x);
        run_free(r);
        r = next;
    }
    wrk_http_free(e->http);
    free(e->user_agent);
    free(e);
}

size_t wrk_engine_in_flight(const struct wrk_engine *e)
{
    return e->in_flight;
}

uint64_t wrk_engine_connections(const struct wrk_engine *e)
{
    return wrk_http_connections(e->http);
}

int wrk_engine_submit(struct wrk_engine *e, const struct rp_test *test, const struct rp_vars *vars,
                      const char *run_id, wrk_done_fn done, void *ud, struct rp_error *err)
{
    if (!test || !done)
        return rp_error_set(err, RP_EINVAL, "wrk_engine_submit: no test or no callback");
    struct rp_vars *v = vars ? rp_vars_clone(vars) : rp_vars_new();
    if (test->variables) {
        bson_iter_t it;
        if (rp_json_root(test->variables, &it) == RP_OK && BSON_ITER_HOLDS_DOCUMENT(&it)) {
            int rc = rp_vars_load_object(v, RP_LAYER_TEST, &it, err);
            if (rc != RP_OK) {
                rp_vars_free(v);
                return rc;
            }
        }
    }
    struct run *r = rp_xcalloc(1, sizeof(*r));
    r->e = e;
    r->test = test;
    r->vars = v;
    r->run_id = rp_xstrdup(run_id ? run_id : "");
    r->done = done;
    r->ud = ud;
    r->iteration = -1;
    r->cur = &r->bufs[0];
    r->prev = &r->bufs[1];
    r->all_next = e->all;
    if (e->all)
        e->all->all_prev = r;
    e->all = r;
    e->in_flight++;
    enqueue(e, r);
    return RP_OK;
}

/* ---- responses as expressions see them --------------------------------------------------- */

/* Does an expression's source read the JSON body? A JSON path operand starts with `$` not
 * followed by `{` (that is a variable). A false positive only costs a parse. */
static int reads_json(const char *src)
{
    for (const char *p = src ? strchr(src, '$') : NULL; p; p = strchr(p + 1, '$'))
        if (p[1] != '{')
            return 1;
    return 0;
}

static const char *find_header(const struct wrk_xfer *x, const char *name)
{
    for (size_t i = 0; i < x->n_headers; i++)
        if (strcasecmp(x->headers[i].name, name) == 0)
            return x->headers[i].value;
    return NULL;
}

/* Parse the body as JSON if it looks like JSON (Content-Type or first byte) and it was not
 * tried before. */
static void ensure_json(struct resp *p)
{
    if (p->json_tried || !p->used || p->x.rc != RP_OK)
        return;
    p->json_tried = 1;
    const char *ct = find_header(&p->x, "Content-Type");
    int looks = ct && strstr(ct, "json");
    if (!looks) {
        const char *b = p->x.resp_body, *end = b + p->x.body_len;
        while (b && b < end && (*b == ' ' || *b == '\t' || *b == '\r' || *b == '\n'))
            b++;
        looks = b && b < end && (*b == '{' || *b == '[');
    }
    if (!looks)
        return;
    if (rp_json_parse(p->x.resp_body, p->x.body_len, 0, &p->json, NULL) != RP_OK)
        p->json = NULL;
}

static void make_view(struct run *r, struct resp *p, struct rp_response_view *v)
{
    memset(v, 0, sizeof(*v));
    v->lookup = rp_vars_lookup;
    v->lookup_ud = r->vars;
    if (!p || !p->used || p->x.rc != RP_OK)
        return;
    v->status = p->x.status;
    v->headers = p->x.headers;
    v->n_headers = p->x.n_headers;
    v->body = p->x.resp_body ? p->x.resp_body : "";
    v->body_len = p->x.body_len;
    v->body_size = p->x.body_size;
    v->body_truncated = p->x.body_truncated;
    v->body_json = p->json;
    v->timings = p->x.timings;
}

/* ---- recording ---------------------------------------------------------------------------- */

static struct wrk_check_rec *add_check(struct run *r, const char *expr, enum rp_severity sev)
{
    if (r->n_checks == r->checks_alloc) {
        r->checks_alloc = r->checks_alloc ? r->checks_alloc * 2 : 8;
        r->checks = rp_xrealloc(r->checks, r->checks_alloc * sizeof(*r->checks));
    }
    struct wrk_check_rec *c = &r->checks[r->n_checks++];
    memset(c, 0, sizeof(*c));
    c->expr = expr;
    c->severity = sev;
    return c;
}

static void record(struct run *r, const struct rp_step *s, int skipped, struct resp *p,
                   const char *method, const char *error)
{
    struct wrk_step_rec rec = {
        .name = s->name,
        .iteration = r->iteration,
        .skipped = skipped,
        .method = method,
        .url = r->red_url,
        .body = r->red_body,
        .req_headers = r->red_headers,
        .n_req_headers = r->n_red_headers,
        .resp = p && p->used ? &p->x : NULL,
        .checks = r->checks,
        .n_checks = r->n_checks,
        .captures = r->captures,
        .n_captures = r->n_captures,
        .error = error,
    };
    wrk_result_add_step(r->result, &rec, rp_vars_secrets(r->vars));
    clear_step(r);
}

/* The run cannot go on: remember why (the first reason wins) and stop. */
static void run_error(struct run *r, const struct rp_step *s, const char *msg)
{
    if (!r->error)
        r->error = rp_xasprintf("step %zu (\"%s\"): %s", r->step + 1, s->name ? s->name : "", msg);
    r->stopped = 1;
}

/* ---- rendering ---------------------------------------------------------------------------- */

static int render(struct run *r, const char *tmpl, size_t max, char **out, char **red,
                  struct rp_error *err)
{
    if (!strchr(tmpl, '$')) { /* nothing to substitute: skip the template engine */
        *out = rp_xstrdup(tmpl);
        if (red)
            *red = rp_xstrdup(tmpl);
        return RP_OK;
    }
    return rp_template_render(tmpl, r->vars, max, out, red, err);
}

/* Append `s` to `b` as the inside of a JSON string. */
static void json_escape(struct rp_buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[7] = "\\u00";
        if (*p == '"' || *p == '\\') {
            esc[1] = (char)*p;
            (void)rp_buf_append(b, esc, 2);
        } else if (*p == '\n') {
            (void)rp_buf_append(b, "\\n", 2);
        } else if (*p == '\r') {
            (void)rp_buf_append(b, "\\r", 2);
        } else if (*p == '\t') {
            (void)rp_buf_append(b, "\\t", 2);
        } else if (*p < 0x20) {
            esc[4] = hex[*p >> 4];
            esc[5] = hex[*p & 15];
            (void)rp_buf_append(b, esc, 6);
        } else {
            (void)rp_buf_append(b, p, 1);
        }
    }
}

/* A JSON body is templated inside its strings only: each `${...}` in a string literal is
 * replaced by the variable's text, JSON-escaped, so a value with quotes cannot break the
 * document; everything else (numbers, structure) is sent exactly as written. A string that is
 * exactly one placeholder ("${count}") is replaced by the variable's JSON value, keeping its
 * type (number, boolean, object...). */
static int render_json_body(struct run *r, const char *src, char **out, char **red,
                            struct rp_error *err)
{
    if (!strstr(src, "${")) {
        *out = rp_xstrdup(src);
        *red = rp_xstrdup(src);
        return RP_OK;
    }
    struct rp_buf b, rb;
    int rc = RP_EINVAL, in_str = 0;
    rp_buf_init(&b, MAX_BODY_LEN);
    rp_buf_init(&rb, MAX_BODY_LEN);
    for (const char *p = src; *p;) {
        const char *whole_end = !in_str && p[0] == '"' && p[1] == '$' && p[2] == '{'
                                    ? p + 3 + strcspn(p + 3, "}\"\\$")
                                    : NULL;
        if (whole_end && whole_end[0] == '}' && whole_end[1] == '"' && whole_end > p + 3 &&
            whole_end[2 + strspn(whole_end + 2, " \t\r\n")] != ':') {
            /* "${name}" alone as a value (not a key): the variable's JSON value */
            char *name = rp_xstrndup(p + 3, (size_t)(whole_end - p - 3));
            struct rp_value v = {0};
            int secret = 0;
            if (rp_vars_lookup(r->vars, name, &v, &secret) != RP_OK) {
                rc = rp_error_set(err, RP_EINVAL, "body: unknown variable ${%s}", name);
                free(name);
                goto out;
            }
            free(name);
            char *js = rp_value_to_json(&v, 0);
            (void)rp_buf_append(&b, js, strlen(js));
            if (secret)
                (void)rp_buf_append(&rb, "\"***\"", 5);
            else
                (void)rp_buf_append(&rb, js, strlen(js));
            free(js);
            rp_value_clear(&v);
            p = whole_end + 2;
            continue;
        }
        if (in_str && *p == '\\' && p[1]) {
            (void)rp_buf_append(&b, p, 2);
            (void)rp_buf_append(&rb, p, 2);
            p += 2;
        } else if (in_str && p[0] == '$' && p[1] == '$' && p[2] == '{') {
            (void)rp_buf_append(&b, "${", 2);
            (void)rp_buf_append(&rb, "${", 2);
            p += 3;
        } else if (in_str && p[0] == '$' && p[1] == '{') {
            const char *close = strchr(p, '}');
            const char *quote = strchr(p, '"');
            if (!close || (quote && quote < close)) {
                rp_error_set(err, RP_EINVAL, "body: unclosed `${`");
                goto out;
            }
            char *piece = rp_xstrndup(p, (size_t)(close - p + 1)), *val = NULL, *rval = NULL;
            rc = rp_template_render(piece, r->vars, MAX_BODY_LEN, &val, &rval, err);
            free(piece);
            if (rc != RP_OK)
                goto out;
            json_escape(&b, val);
            json_escape(&rb, rval);
            free(val);
            free(rval);
            rc = RP_EINVAL;
            p = close + 1;
        } else {
            if (*p == '"')
                in_str = !in_str;
            (void)rp_buf_append(&b, p, 1);
            (void)rp_buf_append(&rb, p, 1);
            p++;
        }
        if (b.len >= MAX_BODY_LEN - 8) {
            rp_error_set(err, RP_ENOMEM, "body: longer than %d bytes", MAX_BODY_LEN);
            goto out;
        }
    }
    *out = b.data ? b.data : rp_xstrdup("");
    *red = rb.data ? rb.data : rp_xstrdup("");
    return RP_OK;
out:
    rp_buf_cleanup(&b);
    rp_buf_cleanup(&rb);
    return rc == RP_OK ? RP_EINVAL : rc;
}

/* Form fields, URL-encoded. The redacted twin keeps "***" readable. */
static int render_form(struct run *r, const struct rp_step *s, char **out, char **red,
                       struct rp_error *err)
{
    struct rp_buf b, rb;
    int rc = RP_OK;
    rp_buf_init(&b, MAX_BODY_LEN);
    rp_buf_init(&rb, MAX_BODY_LEN);
    for (size_t i = 0; i < s->n_form && rc == RP_OK; i++) {
        char *parts[2][2] = {{NULL, NULL}, {NULL, NULL}}; /* [name|value][real|redacted] */
        rc = render(r, s->form[i].name, MAX_HEADER_LEN, &parts[0][0], &parts[0][1], err);
        if (rc == RP_OK)
            rc = render(r, s->form[i].value, MAX_BODY_LEN, &parts[1][0], &parts[1][1], err);
        for (int k = 0; k < 2 && rc == RP_OK; k++) {
            for (int t = 0; t < 2; t++) {
                struct rp_buf *dst = t ? &rb : &b;
                char *esc = curl_easy_escape(NULL, parts[k][t], 0);
                if (!esc) {
                    rc = rp_error_set(err, RP_ENOMEM, "form field %zu: cannot encode", i + 1);
                    break;
                }
                if ((k == 0 && i > 0 && rp_buf_append(dst, "&", 1) != RP_OK) ||
                    (k == 1 && rp_buf_append(dst, "=", 1) != RP_OK))
                    rc = RP_ENOMEM;
                if (t == 1) { /* "***" would read %2A%2A%2A */
                    for (char *q = esc; (q = strstr(q, "%2A%2A%2A")) != NULL;) {
                        memcpy(q, "***", 3);
                        memmove(q + 3, q + 9, strlen(q + 9) + 1);
                        q += 3;
                    }
                }
                if (rc == RP_OK && rp_buf_append(dst, esc, strlen(esc)) != RP_OK)
                    rc = RP_ENOMEM;
                curl_free(esc);
                if (rc == RP_ENOMEM)
                    rp_error_set(err, rc, "form body: longer than %d bytes", MAX_BODY_LEN);
            }
        }
        for (int k = 0; k < 2; k++)
            for (int t = 0; t < 2; t++)
                free(parts[k][t]);
    }
    if (rc != RP_OK) {
        rp_buf_cleanup(&b);
        rp_buf_cleanup(&rb);
        return rc;
    }
    *out = b.data ? b.data : rp_xstrdup("");
    *red = rb.data ? rb.data : rp_xstrdup("");
    return RP_OK;
}

/* Render the step's request into r->cur->x (real) and r->red_* (redacted). */
static int render_request(struct run *r, const struct rp_step *s, struct rp_error *err)
{
    struct wrk_xfer *x = &r->cur->x;
    int rc = render(r, s->url, MAX_URL_LEN, &x->url, &r->red_url, err);
    if (rc != RP_OK)
        return rc;
    x->method = s->method ? s->method : "GET";
    x->timeout_ms = s->timeout_ms > 0 ? s->timeout_ms : 30000;
    x->follow_redirects = s->follow_redirects;
    x->verify_tls = s->verify_tls;
    int has_ct = 0;
    if (s->n_headers)
        r->red_headers = rp_xcalloc(s->n_headers, sizeof(*r->red_headers));
    for (size_t i = 0; i < s->n_headers; i++) {
        char *name = NULL, *value = NULL;
        struct rp_kv *red = &r->red_headers[r->n_red_headers];
        rc = render(r, s->headers[i].name, MAX_HEADER_LEN, &name, &red->name, err);
        if (rc == RP_OK)
            rc = render(r, s->headers[i].value, MAX_HEADER_LEN, &value, &red->value, err);
        r->n_red_headers++;
        if (rc == RP_OK && (strchr(name, '\n') || strchr(name, '\r') || strchr(value, '\n') ||
                            strchr(value, '\r')))
            rc = rp_error_set(err, RP_EINVAL, "header %s: line breaks are not allowed",
                              red->name ? red->name : "?");
        if (rc == RP_OK) {
            has_ct |= strcasecmp(name, "Content-Type") == 0;
            /* "Name;" is libcurl's way of sending a header with an empty value */
            char *line = *value ? rp_xasprintf("%s: %s", name, value) : rp_xasprintf("%s;", name);
            x->req_headers = curl_slist_append(x->req_headers, line);
            free(line);
        }
        free(name);
        free(value);
        if (rc != RP_OK)
            return rc;
    }
    switch (s->body_kind) {
    case RP_BODY_JSON:
        rc = render_json_body(r, s->body ? s->body : "null", &x->req_body, &r->red_body, err);
        if (rc == RP_OK && !has_ct)
            x->req_headers = curl_slist_append(x->req_headers, "Content-Type: application/json");
        break;
    case RP_BODY_FORM:
        rc = render_form(r, s, &x->req_body, &r->red_body, err);
        if (rc == RP_OK && !has_ct)
            x->req_headers = curl_slist_append(x->req_headers,
                                               "Content-Type: application/x-www-form-urlencoded");
        break;
    case RP_BODY_RAW:
        rc = render(r, s->body ? s->body : "", MAX_BODY_LEN, &x->req_body, &r->red_body, err);
        break;
    case RP_BODY_NONE:
        break;
    }
    if (rc != RP_OK)
        return rc;
    if (x->req_body) {
        x->req_body_len = strlen(x->req_body);
        x->req_headers = curl_slist_append(x->req_headers, "Expect:"); /* no 100-continue wait */
    }
    return RP_OK;
}

/* ---- checking ----------------------------------------------------------------------------- */

/* The expected statuses as people write them: "200", "2xx", "200, 201 or 404". */
static void put_statuses(struct rp_buf *b, const long *st, size_t n, const char *last_sep)
{
    size_t i = 0, groups = 0;
    while (i < n) {
        size_t run = 1;
        while (i + run < n && st[i + run] == st[i] + (long)run)
            run++;
        size_t take = run;
        int klass = st[i] % 100 == 0 && run >= 100;
        if (klass)
            take = 100;
        else if (run > 1)
            take = 1;
        int is_last = i + take >= n;
        if (groups)
            (void)rp_buf_printf(b, "%s", is_last ? last_sep : ", ");
        if (klass)
            (void)rp_buf_printf(b, "%ldxx", st[i] / 100);
        else
            (void)rp_buf_printf(b, "%ld", st[i]);
        groups++;
        i += take;
    }
}

static void check_status(struct run *r, const struct rp_step *s, long status)
{
    struct wrk_check_rec *c = add_check(r, NULL, RP_SEV_ERROR);
    struct rp_buf b, m;
    int ok = 0;
    for (size_t i = 0; i < s->n_expect_status; i++)
        ok |= s->expect_status[i] == status;
    rp_buf_init(&b, 0);
    (void)rp_buf_printf(&b, "expect status ");
    put_statuses(&b, s->expect_status, s->n_expect_status, ", ");
    rp_buf_init(&m, 0);
    (void)rp_buf_printf(&m, "status: expected ");
    put_statuses(&m, s->expect_status, s->n_expect_status, " or ");
    (void)rp_buf_printf(&m, ", got %ld", status);
    c->check.passed = ok;
    c->check.actual = rp_xasprintf("%ld", status);
    c->check.message = m.data;
    c->owned = b.data;
    c->expr = c->owned;
}

static int step_reads_json(const struct rp_step *s)
{
    if (s->schema)
        return 1;
    for (size_t i = 0; i < s->n_captures; i++)
        if (reads_json(s->captures[i].src))
            return 1;
    for (size_t i = 0; i < s->n_asserts; i++)
        if (reads_json(s->asserts[i].src))
            return 1;
    return 0;
}

/* CHECK: the response of the current step is in r->cur. Captures first (assertions may use
 * them), then the expected status, the schema and the assertions. */
static void check_step(struct run *r, const struct rp_step *s)
{
    struct resp *p = r->cur;
    struct rp_response_view view;
    int step_failed = 0, stop = 0;
    if (step_reads_json(s))
        ensure_json(p);
    make_view(r, p, &view);
    for (size_t i = 0; i < s->n_captures; i++) {
        const struct rp_capture *cap = &s->captures[i];
        if (r->n_captures == r->captures_alloc) {
            r->captures_alloc = r->captures_alloc ? r->captures_alloc * 2 : 4;
            r->captures = rp_xrealloc(r->captures, r->captures_alloc * sizeof(*r->captures));
        }
        struct wrk_capture_rec *c = &r->captures[r->n_captures++];
        memset(c, 0, sizeof(*c));
        c->name = cap->name;
        rp_expr_value(cap->from, &view, &c->value, &c->secret);
        c->secret |= cap->secret;
        /* A capture that matched nothing leaves the variable as it was: a later ${name} is
         * then an unknown variable, which names the problem. */
        if (c->value.type != RP_V_MISSING &&
            rp_vars_set(r->vars, RP_LAYER_CAPTURE, cap->name, &c->value, c->secret) != RP_OK) {
            struct wrk_check_rec *k = add_check(r, cap->src, RP_SEV_ERROR);
            k->check.actual = rp_xstrdup("");
            k->check.message = rp_xasprintf("capture %s: not a valid variable name", cap->name);
            step_failed = 1;
        }
    }
    if (s->n_expect_status)
        check_status(r, s, p->x.status);
    if (s->schema) {
        struct wrk_check_rec *c = add_check(r, "schema", RP_SEV_ERROR);
        bson_iter_t root;
        if (p->json && rp_json_root(p->json, &root) == RP_OK) {
            rp_schema_check(s->schema, &root, &c->check);
        } else {
            c->check.actual = rp_xstrdup("(not JSON)");
            c->check.message =
                rp_xstrdup(p->x.body_truncated ? "schema: the body was cut at the size cap"
                                               : "schema: the body is not JSON");
        }
    }
    for (size_t i = 0; i < r->n_checks; i++) /* expected status and schema so far */
        step_failed |= !r->checks[i].check.passed;
    for (size_t i = 0; i < s->n_asserts; i++) {
        const struct rp_assertion *a = &s->asserts[i];
        struct wrk_check_rec *c = add_check(r, a->src, a->severity);
        rp_expr_check(a->expr, &view, &c->check);
        if (!c->check.passed) {
            if (a->severity == RP_SEV_ERROR)
                step_failed = 1;
            if (a->stop)
                stop = 1;
        }
    }
    if (step_failed)
        r->failed = 1;
    if (stop || (step_failed && s->stop_on_failure))
        r->stopped = 1;
    record(r, s, 0, p, p->x.method, NULL);
}

/* Move to the next `each` element, or out of the step. */
static void next_iteration(struct run *r)
{
    if (r->each.type == RP_V_ARRAY && bson_iter_next(&r->each_it)) {
        r->iteration++;
        return;
    }
    rp_value_clear(&r->each);
    r->in_step = 0;
    r->iteration = -1;
    r->step++;
}

static void finish_run(struct run *r)
{
    struct wrk_engine *e = r->e;
    /* steps that never ran because the test stopped are listed as skipped */
    for (size_t i = r->step + (r->in_step ? 1 : 0); i < r->test->n_steps; i++) {
        r->iteration = -1;
        record(r, &r->test->steps[i], 1, NULL, NULL, NULL);
    }
    const char *status = r->error ? "error" : r->failed ? "failed" : "passed";
    bson_t *doc = wrk_result_finish(r->result, status, r->error, rp_vars_secrets(r->vars));
    r->result = NULL;
    if (r->all_prev)
        r->all_prev->all_next = r->all_next;
    else
        e->all = r->all_next;
    if (r->all_next)
        r->all_next->all_prev = r->all_prev;
    e->in_flight--;
    e->finished++;
    r->done(r->ud, r->run_id, doc);
    run_free(r);
}

/* Enter the current step: `if` against the previous response, then `each`. Returns 1 when
 * the step is to be run (r->iteration set for `each`), 0 when it was recorded and left. */
static int enter_step(struct run *r, const struct rp_step *s)
{
    struct rp_response_view view;
    if (s->if_expr) {
        if (reads_json(s->if_src))
            ensure_json(r->prev);
        make_view(r, r->prev, &view);
        struct rp_check c;
        rp_expr_check(s->if_expr, &view, &c);
        int go = c.passed;
        rp_check_clear(&c);
        if (!go) {
            record(r, s, 1, NULL, NULL, NULL);
            r->step++;
            return 0;
        }
    }
    r->in_step = 1;
    r->iteration = -1;
    if (!s->each)
        return 1;
    if (reads_json(s->each_src))
        ensure_json(r->prev);
    make_view(r, r->prev, &view);
    rp_expr_value(s->each, &view, &r->each, &r->each_secret);
    if (r->each.type != RP_V_ARRAY) {
        char *msg = rp_xasprintf("each %s: expected an array, got %s",
                                 s->each_src ? s->each_src : "", rp_value_type_name(r->each.type));
        record(r, s, 0, NULL, NULL, msg);
        run_error(r, s, msg);
        free(msg);
        rp_value_clear(&r->each);
        r->in_step = 0;
        r->step++;
        return 0;
    }
    bson_iter_t root;
    if (rp_json_root(r->each.doc, &root) != RP_OK || !bson_iter_recurse(&root, &r->each_it) ||
        !bson_iter_next(&r->each_it)) {
        record(r, s, 1, NULL, NULL, NULL); /* an empty array: nothing to do */
        rp_value_clear(&r->each);
        r->in_step = 0;
        r->step++;
        return 0;
    }
    r->iteration = 0;
    return 1;
}

/* Move a ready run as far as it goes without waiting: to a started request or to DONE. */
static void advance(struct run *r)
{
    struct wrk_engine *e = r->e;
    const struct rp_test *t = r->test;
    struct rp_error err;
    if (!r->result)
        r->result = wrk_result_new(r->run_id, t->name);
    if (r->cur->used) { /* back from REQUEST */
        const struct rp_step *s = &t->steps[r->step];
        if (r->cur->x.rc != RP_OK) {
            record(r, s, 0, r->cur, r->cur->x.method, r->cur->x.error);
            run_error(r, s, r->cur->x.error);
        } else {
            check_step(r, s);
        }
        struct resp *old = r->prev; /* this response is what the next `if`/`each` sees */
        r->prev = r->cur;
        r->cur = old;
        resp_clear(r->cur);
        next_iteration(r);
    }
    while (!r->stopped && r->step < t->n_steps) {
        const struct rp_step *s = &t->steps[r->step];
        if (!r->in_step && !enter_step(r, s))
            continue;
        if (r->iteration >= 0) {
            struct rp_value item = {0};
            rp_value_from_iter(&item, &r->each_it);
            int rc = rp_vars_set(r->vars, RP_LAYER_CAPTURE, s->each_as ? s->each_as : "item", &item,
                                 r->each_secret);
            rp_value_clear(&item);
            if (rc != RP_OK) {
                record(r, s, 0, NULL, NULL, "each: `as` is not a valid variable name");
                run_error(r, s, "each: `as` is not a valid variable name");
                break;
            }
        }
        err.msg[0] = '\0';
        if (render_request(r, s, &err) != RP_OK) {
            record(r, s, 0, NULL, NULL, err.msg[0] ? err.msg : "could not render the request");
            run_error(r, s, err.msg[0] ? err.msg : "could not render the request");
            resp_clear(r->cur);
            break;
        }
        r->cur->used = 1;
        r->cur->x.ud = r;
        if (wrk_http_start(e->http, &r->cur->x) != RP_OK) {
            record(r, s, 0, r->cur, r->cur->x.method, r->cur->x.error);
            run_error(r, s, r->cur->x.error);
            resp_clear(r->cur);
            break;
        }
        r->in_flight = 1;
        return; /* REQUEST: on_xfer_done puts the run back on the queue */
    }
    finish_run(r);
}

static void on_xfer_done(void *ud, struct wrk_xfer *x)
{
    struct wrk_engine *e = ud;
    struct run *r = x->ud;
    r->in_flight = 0;
    e->xfers_done++;
    enqueue(e, r);
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

size_t wrk_engine_run(struct wrk_engine *e, long timeout_ms)
{
    long deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    uint64_t finished = e->finished;
    for (;;) {
        while (e->ready_head && wrk_http_active(e->http) < e->opts.max_concurrent)
            advance(dequeue(e));
        if (!e->in_flight || e->finished != finished)
            break;
        long left = deadline - now_ms();
        if (left < 0)
            left = 0;
        uint64_t ended = e->xfers_done;
        wrk_http_step(e->http, left, on_xfer_done, e);
        if (e->xfers_done != ended)
            continue; /* a transfer ended: move its run on before deciding anything */
        if (now_ms() >= deadline)
            break;
    }
    return e->in_flight;
}
