/* Test definitions, one step: its name, `if`, `each`/`as` and stop_on_failure, the `request`
 * (method, URL, headers, JSON/form/raw body, timeout, redirects, TLS), `expect`, `capture`,
 * `assert` and `schema`. Everything is checked as in defn.c: unknown keys with a hint, types,
 * caps, and templates, expressions, JSON paths and schemas compiled once to be sure they are
 * valid. Errors name the step and the field ("step 3 (\"get user\"), request.url: ..."). */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rampart/config.h"
#include "rampart/mem.h"
#include "defn_int.h"

/* ==== request =========================================================================== */

/* One header or form value: a string, number or boolean (numbers and booleans as their text).
 * Appended to `*kv` under `name`. */
static int add_value(struct ctx *c, const bson_iter_t *it, const char *field, const char *name,
                     int header, int in_array, size_t max, struct rp_kv **kv, size_t *n)
{
    char *val = NULL;
    bson_type_t ty = bson_iter_type(it);
    if (*n >= max)
        return rp_defn_fail(c, field, "more than %zu %s", max, header ? "headers" : "form fields");
    if (ty == BSON_TYPE_INT32 || ty == BSON_TYPE_INT64 || ty == BSON_TYPE_DOUBLE ||
        ty == BSON_TYPE_BOOL) {
        struct rp_value v;
        rp_value_from_iter(&v, it);
        val = rp_value_to_text(&v);
        rp_value_clear(&v);
    } else if (ty != BSON_TYPE_UTF8) {
        return rp_defn_fail(c, field, "must be a string, number or boolean%s, got %s",
                            in_array ? "" : " (or an array of them)", rp_defn_type_of(it));
    } else if (rp_defn_get_str(c, it, field, 0, STR_EMPTY_OK, &val) != RP_OK) {
        return RP_EINVAL;
    }
    if (header && strpbrk(val, "\r\n")) {
        free(val);
        return rp_defn_fail(c, field, "must not contain a line break");
    }
    if (rp_defn_check_template(c, field, val) != RP_OK) {
        free(val);
        return RP_EINVAL;
    }
    *kv = rp_xrealloc(*kv, (*n + 1) * sizeof(**kv));
    (*kv)[*n].name = rp_xstrdup(name);
    (*kv)[*n].value = val;
    (*n)++;
    return RP_OK;
}

/* A value, or an array of values for a header or field sent several times. */
static int add_values(struct ctx *c, const bson_iter_t *it, const char *field, const char *name,
                      int header, size_t max, struct rp_kv **kv, size_t *n)
{
    bson_iter_t arr;
    char f[320];
    size_t i = 0;
    if (!BSON_ITER_HOLDS_ARRAY(it))
        return add_value(c, it, field, name, header, 0, max, kv, n);
    if (!bson_iter_recurse(it, &arr))
        return rp_defn_fail(c, field, "unreadable array");
    while (bson_iter_next(&arr)) {
        snprintf(f, sizeof(f), "%s[%zu]", field, ++i);
        if (add_value(c, &arr, f, name, header, 1, max, kv, n) != RP_OK)
            return RP_EINVAL;
    }
    if (i == 0)
        return rp_defn_fail(c, field, "an array of values must not be empty");
    return RP_OK;
}

/* `headers` (header = 1) or `form`: an object of name -> value(s). */
static int parse_pairs(struct ctx *c, const bson_iter_t *it, const char *what, int header,
                       struct rp_kv **kv, size_t *n)
{
    bson_iter_t ch, dup;
    char field[256], k[SHOW_MAX];
    size_t max = header ? MAX_HEADERS : MAX_FORM;
    if (!BSON_ITER_HOLDS_DOCUMENT(it))
        return rp_defn_fail(c, what, "must be an object of name: value, got %s",
                            rp_defn_type_of(it));
    if (rp_defn_count_members(it, max) > max)
        return rp_defn_fail(c, what, "more than %zu %s", max, header ? "headers" : "form fields");
    if (!bson_iter_recurse(it, &ch))
        return rp_defn_fail(c, what, "unreadable object");
    while (bson_iter_next(&ch)) {
        const char *name = bson_iter_key(&ch);
        rp_defn_show(k, sizeof(k), name, strlen(name));
        snprintf(field, sizeof(field), "%s.%s", what, k);
        if (!*name)
            return rp_defn_fail(c, what, "a name must not be empty");
        dup = ch;
        while (bson_iter_next(&dup)) {
            const char *other = bson_iter_key(&dup);
            if (header ? strcasecmp(other, name) == 0 : strcmp(other, name) == 0)
                return rp_defn_fail(
                    c, field, "given twice%s",
                    header ? " (names are case-insensitive); to send a header several "
                             "times give an array of values"
                           : "; to send a field several times give an array of values");
        }
        if (header && !strstr(name, "${")) {
            for (const char *p = name; *p; p++)
                if (!rp_defn_is_tchar((unsigned char)*p))
                    return rp_defn_fail(c, field,
                                        "`%s` is not a valid header name (letters, digits "
                                        "and !#$%%&'*+-.^_`|~ only)",
                                        k);
        }
        if (rp_defn_check_template(c, field, name) != RP_OK)
            return RP_EINVAL;
        if (add_values(c, &ch, field, name, header, max, kv, n) != RP_OK)
            return RP_EINVAL;
    }
    return RP_OK;
}

/* Check the templates in every string (keys too) of a JSON body; `path` names the value. */
static int check_json_strings(struct ctx *c, const bson_iter_t *it, struct rp_buf *path)
{
    if (BSON_ITER_HOLDS_UTF8(it)) {
        uint32_t n;
        const char *s = bson_iter_utf8(it, &n);
        if (memchr(s, '\0', n))
            return RP_OK; /* sent as \u0000; no NUL can start a template */
        return rp_defn_check_template(c, path->data, s);
    }
    if (!BSON_ITER_HOLDS_DOCUMENT(it) && !BSON_ITER_HOLDS_ARRAY(it))
        return RP_OK;
    int arr = BSON_ITER_HOLDS_ARRAY(it);
    bson_iter_t ch;
    size_t keep = path->len, i = 0;
    if (!bson_iter_recurse(it, &ch))
        return RP_OK;
    while (bson_iter_next(&ch)) {
        char k[SHOW_MAX];
        path->len = keep;
        path->data[keep] = '\0';
        if (arr) {
            (void)rp_buf_printf(path, "[%zu]", i++);
        } else {
            rp_defn_show(k, sizeof(k), bson_iter_key(&ch), strlen(bson_iter_key(&ch)));
            (void)rp_buf_printf(path, ".%s", k);
            if (rp_defn_check_template(c, path->data, bson_iter_key(&ch)) != RP_OK)
                return RP_EINVAL;
        }
        if (check_json_strings(c, &ch, path) != RP_OK)
            return RP_EINVAL;
    }
    path->len = keep;
    path->data[keep] = '\0';
    return RP_OK;
}

/* "5s", "250ms", "1.5m" or a number of milliseconds. rp_parse_duration_ms takes anything
 * strtod does ("nan", "0x1p4"), so only plain decimals reach it. */
static int parse_timeout(struct ctx *c, const bson_iter_t *it, long *out)
{
    const char *f = "request.timeout";
    long ms;
    if (BSON_ITER_HOLDS_UTF8(it)) {
        const char *s = bson_iter_utf8(it, NULL);
        char shown[SHOW_MAX];
        rp_defn_show(shown, sizeof(shown), s, strlen(s));
        size_t digits = strspn(s, "0123456789."), dots = 0;
        for (size_t i = 0; i < digits; i++)
            dots += s[i] == '.';
        const char *unit = s + digits;
        int unit_ok = !*unit || !strcmp(unit, "ms") || !strcmp(unit, "s") || !strcmp(unit, "m");
        if (!digits || dots > 1 || s[0] == '.' || !unit_ok || digits > 12 ||
            rp_parse_duration_ms(s, &ms) != RP_OK)
            return rp_defn_fail(
                c, f,
                "\"%s\" is not a duration; write milliseconds (5000) or a number with "
                "a unit: \"250ms\", \"5s\", \"1m\"",
                shown);
        if (ms < 1 || ms > MAX_TIMEOUT_MS)
            return rp_defn_fail(c, f, "must be between 1ms and 10m, got \"%s\"", shown);
    } else if (BSON_ITER_HOLDS_NUMBER(it)) {
        double d =
            BSON_ITER_HOLDS_DOUBLE(it) ? bson_iter_double(it) : (double)bson_iter_as_int64(it);
        if (!isfinite(d) || d != floor(d))
            return rp_defn_fail(c, f, "must be a whole number, got %g", d);
        if (d < 1 || d > MAX_TIMEOUT_MS)
            return rp_defn_fail(c, f, "must be between 1ms and 10m, got %.15g", d);
        ms = (long)d;
    } else {
        return rp_defn_fail(c, f, "must be milliseconds (5000) or a duration (\"5s\"), got %s",
                            rp_defn_type_of(it));
    }
    *out = ms;
    return RP_OK;
}

static const char *const request_keys[] = {"method",     "url",  "headers", "json",
                                           "form",       "body", "timeout", "follow_redirects",
                                           "verify_tls", NULL};
static const struct alias request_aliases[] = {
    {"data", "give the body as `json` (a JSON value), `form` (an object) or `body` (text)"},
    {"payload", "give the body as `json` (a JSON value), `form` (an object) or `body` (text)"},
    {"query", "put query parameters in `url` (\"${base}/search?q=${term}\")"},
    {"params", "put query parameters in `url` (\"${base}/search?q=${term}\")"},
    {"insecure", "write `\"verify_tls\": false`"},
    {"verify", "did you mean `verify_tls`?"},
    {"verify_ssl", "did you mean `verify_tls`?"},
    {"redirects", "did you mean `follow_redirects`?"},
    {"max_redirects", "write `\"follow_redirects\": N` (0 to 10)"},
    {NULL, NULL}};

static int parse_request(struct ctx *c, const bson_iter_t *req, struct rp_step *s)
{
    bson_iter_t it;
    if (!BSON_ITER_HOLDS_DOCUMENT(req))
        return rp_defn_fail(c, "request", "must be an object, got %s", rp_defn_type_of(req));
    if (rp_defn_check_keys(c, req, "request", request_keys, request_aliases) != RP_OK)
        return RP_EINVAL;

    if (rp_defn_find(req, "method", &it)) {
        if (rp_defn_get_str(c, &it, "request.method", 0, 0, &s->method) != RP_OK)
            return RP_EINVAL;
        char m[SHOW_MAX];
        rp_defn_show(m, sizeof(m), s->method, strlen(s->method));
        if (strlen(s->method) > MAX_METHOD_LEN)
            return rp_defn_fail(c, "request.method", "is longer than %d characters",
                                MAX_METHOD_LEN);
        for (char *p = s->method; *p; p++) {
            if (!rp_defn_is_tchar((unsigned char)*p))
                return rp_defn_fail(c, "request.method",
                                    "`%s` is not an HTTP method (a single word such as GET, POST, "
                                    "PUT, PATCH, DELETE, HEAD, OPTIONS)",
                                    m);
            *p = (char)toupper((unsigned char)*p);
        }
    } else {
        s->method = rp_xstrdup("GET");
    }

    if (!rp_defn_find(req, "url", &it))
        return rp_defn_fail(c, "request", "`url` is required");
    if (rp_defn_get_str(c, &it, "request.url", MAX_URL_LEN, 0, &s->url) != RP_OK)
        return RP_EINVAL;
    for (const char *p = s->url; *p; p++) {
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return rp_defn_fail(c, "request.url", "column %ld: %s", (long)(p - s->url) + 1,
                                *p == ' ' ? "a space must be written %20"
                                          : "control characters are not allowed");
    }
    if (strncmp(s->url, "${", 2) != 0 && strncasecmp(s->url, "http://", 7) != 0 &&
        strncasecmp(s->url, "https://", 8) != 0) {
        char u[SHOW_MAX];
        rp_defn_show(u, sizeof(u), s->url, strlen(s->url));
        return rp_defn_fail(
            c, "request.url",
            "must start with http:// or https:// (or a variable such as ${base}), got "
            "\"%s\"",
            u);
    }
    if (rp_defn_check_template(c, "request.url", s->url) != RP_OK)
        return RP_EINVAL;

    if (rp_defn_find(req, "headers", &it) &&
        parse_pairs(c, &it, "request.headers", 1, &s->headers, &s->n_headers) != RP_OK)
        return RP_EINVAL;

    if (rp_defn_find(req, "json", &it) + rp_defn_find(req, "form", &it) +
            rp_defn_find(req, "body", &it) >
        1)
        return rp_defn_fail(c, "request",
                            "`json`, `form` and `body` are alternatives; give only one");
    if (rp_defn_find(req, "json", &it)) {
        struct rp_buf path;
        rp_buf_init(&path, 0);
        (void)rp_buf_printf(&path, "request.json");
        int rc = check_json_strings(c, &it, &path);
        rp_buf_cleanup(&path);
        if (rc != RP_OK)
            return rc;
        struct rp_value v;
        rp_value_from_iter(&v, &it);
        s->body = rp_value_to_json(&v, 0);
        rp_value_clear(&v);
        s->body_kind = RP_BODY_JSON;
    }
    if (rp_defn_find(req, "form", &it)) {
        if (parse_pairs(c, &it, "request.form", 0, &s->form, &s->n_form) != RP_OK)
            return RP_EINVAL;
        s->body_kind = RP_BODY_FORM;
    }
    if (rp_defn_find(req, "body", &it)) {
        if (BSON_ITER_HOLDS_DOCUMENT(&it) || BSON_ITER_HOLDS_ARRAY(&it))
            return rp_defn_fail(c, "request.body",
                                "must be a string (raw text); to send JSON use `json` instead");
        if (rp_defn_get_str(c, &it, "request.body", 0, STR_EMPTY_OK, &s->body) != RP_OK ||
            rp_defn_check_template(c, "request.body", s->body) != RP_OK)
            return RP_EINVAL;
        s->body_kind = RP_BODY_RAW;
    }

    s->timeout_ms = DEFAULT_TIMEOUT_MS;
    if (rp_defn_find(req, "timeout", &it) && parse_timeout(c, &it, &s->timeout_ms) != RP_OK)
        return RP_EINVAL;

    s->follow_redirects = MAX_REDIRECTS;
    if (rp_defn_find(req, "follow_redirects", &it)) {
        long n;
        if (BSON_ITER_HOLDS_BOOL(&it))
            s->follow_redirects = bson_iter_bool(&it) ? MAX_REDIRECTS : 0;
        else if (!BSON_ITER_HOLDS_NUMBER(&it))
            return rp_defn_fail(
                c, "request.follow_redirects",
                "must be true, false or the most redirects to follow (0 to %d), got %s",
                MAX_REDIRECTS, rp_defn_type_of(&it));
        else if (rp_defn_get_int(c, &it, "request.follow_redirects", 0, MAX_REDIRECTS, &n) != RP_OK)
            return RP_EINVAL;
        else
            s->follow_redirects = (int)n;
    }

    s->verify_tls = 1;
    if (rp_defn_find(req, "verify_tls", &it) &&
        rp_defn_get_bool(c, &it, "request.verify_tls", &s->verify_tls) != RP_OK)
        return RP_EINVAL;
    return RP_OK;
}

/* ==== checks: expect, capture, assert, schema =========================================== */

static const char *const expect_keys[] = {"status", NULL};
static const struct alias expect_aliases[] = {
    {"schema", "`schema` is a key of the step, next to `expect`"},
    {"status_code", "did you mean `status`?"},
    {NULL, NULL}};

/* One entry of expect.status: 100-599, or a class "2xx" (all of 200-299). */
static int add_status(struct ctx *c, const bson_iter_t *it, const char *field, struct rp_step *s)
{
    long lo, hi;
    if (BSON_ITER_HOLDS_UTF8(it)) {
        const char *v = bson_iter_utf8(it, NULL);
        char shown[SHOW_MAX];
        rp_defn_show(shown, sizeof(shown), v, strlen(v));
        if (strlen(v) != 3 || v[0] < '1' || v[0] > '5' || tolower((unsigned char)v[1]) != 'x' ||
            tolower((unsigned char)v[2]) != 'x')
            return rp_defn_fail(
                c, field,
                "\"%s\" is not a status; write a number (100 to 599) or a class such as "
                "\"2xx\"",
                shown);
        lo = (v[0] - '0') * 100;
        hi = lo + 99;
    } else if (BSON_ITER_HOLDS_NUMBER(it)) {
        if (rp_defn_get_int(c, it, field, 100, 599, &lo) != RP_OK)
            return RP_EINVAL;
        hi = lo;
    } else {
        return rp_defn_fail(c, field,
                            "must be a status (200), a class (\"2xx\") or a list of them, got %s",
                            rp_defn_type_of(it));
    }
    s->expect_status =
        rp_xrealloc(s->expect_status, (s->n_expect_status + (size_t)(hi - lo + 1)) * sizeof(long));
    for (long v = lo; v <= hi; v++)
        s->expect_status[s->n_expect_status++] = v;
    return RP_OK;
}

static int parse_expect(struct ctx *c, const bson_iter_t *exp, struct rp_step *s)
{
    bson_iter_t it, ch;
    char field[64];
    if (!BSON_ITER_HOLDS_DOCUMENT(exp))
        return rp_defn_fail(c, "expect", "must be an object such as {\"status\": 200}, got %s",
                            rp_defn_type_of(exp));
    if (rp_defn_check_keys(c, exp, "expect", expect_keys, expect_aliases) != RP_OK)
        return RP_EINVAL;
    if (!rp_defn_find(exp, "status", &it))
        return RP_OK;
    if (!BSON_ITER_HOLDS_ARRAY(&it))
        return add_status(c, &it, "expect.status", s);
    size_t i = 0;
    if (!bson_iter_recurse(&it, &ch))
        return rp_defn_fail(c, "expect.status", "unreadable array");
    while (bson_iter_next(&ch)) {
        if (++i > MAX_STATUS_ITEMS)
            return rp_defn_fail(c, "expect.status", "more than %d entries", MAX_STATUS_ITEMS);
        snprintf(field, sizeof(field), "expect.status[%zu]", i);
        if (add_status(c, &ch, field, s) != RP_OK)
            return RP_EINVAL;
    }
    if (i == 0)
        return rp_defn_fail(c, "expect.status", "must not be an empty list");
    return RP_OK;
}

static const char *const capture_keys[] = {"from", "secret", NULL};

/* {"var": "operand" | {"from": "operand", "secret": true}} */
static int parse_captures(struct ctx *c, const bson_iter_t *cap, struct rp_step *s)
{
    bson_iter_t ch, it;
    char field[256], k[SHOW_MAX];
    if (!BSON_ITER_HOLDS_DOCUMENT(cap))
        return rp_defn_fail(c, "capture",
                            "must be an object of variable: source (\"token\": "
                            "\"$.json.token\"), got %s",
                            rp_defn_type_of(cap));
    if (rp_defn_count_members(cap, MAX_CAPTURES) > MAX_CAPTURES)
        return rp_defn_fail(c, "capture", "more than %d captures", MAX_CAPTURES);
    if (!bson_iter_recurse(cap, &ch))
        return rp_defn_fail(c, "capture", "unreadable object");
    while (bson_iter_next(&ch)) {
        const char *name = bson_iter_key(&ch);
        rp_defn_show(k, sizeof(k), name, strlen(name));
        snprintf(field, sizeof(field), "capture.%s", k);
        if (rp_defn_check_var_name(c, "capture", name) != RP_OK)
            return RP_EINVAL;
        it = ch;
        while (bson_iter_next(&it))
            if (strcmp(bson_iter_key(&it), name) == 0)
                return rp_defn_fail(c, "capture", "`%s` is captured twice", k);
        struct rp_capture *cp;
        s->captures = rp_xrealloc(s->captures, (s->n_captures + 1) * sizeof(*s->captures));
        cp = &s->captures[s->n_captures++];
        memset(cp, 0, sizeof(*cp));
        cp->name = rp_xstrdup(name);
        it = ch;
        if (BSON_ITER_HOLDS_DOCUMENT(&ch)) {
            if (rp_defn_check_keys(c, &ch, field, capture_keys, NULL) != RP_OK)
                return RP_EINVAL;
            if (rp_defn_find(&ch, "secret", &it)) {
                char f2[320];
                snprintf(f2, sizeof(f2), "%s.secret", field);
                if (rp_defn_get_bool(c, &it, f2, &cp->secret) != RP_OK)
                    return RP_EINVAL;
            }
            if (!rp_defn_find(&ch, "from", &it))
                return rp_defn_fail(c, field,
                                    "`from` is required (what to capture, e.g. "
                                    "\"$.json.token\" or \"header.Location\")");
            snprintf(field, sizeof(field), "capture.%s.from", k);
        } else if (!BSON_ITER_HOLDS_UTF8(&ch)) {
            return rp_defn_fail(c, field,
                                "must be a source such as \"$.json.token\" or {\"from\": ..., "
                                "\"secret\": true}, got %s",
                                rp_defn_type_of(&ch));
        }
        if (rp_defn_get_str(c, &it, field, MAX_EXPR_LEN, 0, &cp->src) != RP_OK)
            return RP_EINVAL;
        struct rp_error e = {0};
        if (rp_expr_parse_operand(cp->src, &cp->from, &e) != RP_OK)
            return rp_defn_fail(c, field, "%s", e.msg);
    }
    return RP_OK;
}

static const char *const assert_keys[] = {"that", "severity", "stop", NULL};
static const char *const severities[] = {"error", "warning", NULL};

/* One assertion: "expr" or {"that": "expr", "severity": "warning", "stop": true}. */
static int parse_assertion(struct ctx *c, const bson_iter_t *it, size_t i, struct rp_step *s)
{
    char field[64], f2[96];
    bson_iter_t v;
    struct rp_assertion *a = &s->asserts[s->n_asserts++];
    snprintf(field, sizeof(field), "assertion %zu", i);
    v = *it;
    if (BSON_ITER_HOLDS_DOCUMENT(it)) {
        if (rp_defn_check_keys(c, it, field, assert_keys, NULL) != RP_OK)
            return RP_EINVAL;
        if (rp_defn_find(it, "severity", &v)) {
            char *sev = NULL;
            snprintf(f2, sizeof(f2), "%s, severity", field);
            if (rp_defn_get_str(c, &v, f2, 0, STR_EMPTY_OK, &sev) != RP_OK)
                return RP_EINVAL;
            int bad = strcmp(sev, "error") != 0 && strcmp(sev, "warning") != 0;
            if (bad) {
                char shown[SHOW_MAX];
                const char *near = rp_defn_closest(sev, severities);
                rp_defn_show(shown, sizeof(shown), sev, strlen(sev));
                rp_defn_fail(c, f2, "must be \"error\" or \"warning\", got \"%s\"%s%s%s", shown,
                             near ? "; did you mean \"" : "", near ? near : "", near ? "\"?" : "");
            } else if (strcmp(sev, "warning") == 0) {
                a->severity = RP_SEV_WARNING;
            }
            free(sev);
            if (bad)
                return RP_EINVAL;
        }
        if (rp_defn_find(it, "stop", &v)) {
            snprintf(f2, sizeof(f2), "%s, stop", field);
            if (rp_defn_get_bool(c, &v, f2, &a->stop) != RP_OK)
                return RP_EINVAL;
        }
        if (!rp_defn_find(it, "that", &v))
            return rp_defn_fail(c, field,
                                "`that` is required (the expression, e.g. \"status == 200\")");
    } else if (!BSON_ITER_HOLDS_UTF8(it)) {
        return rp_defn_fail(c, field,
                            "must be an expression string (\"status == 200\") or {\"that\": ..., "
                            "\"severity\": \"warning\"}, got %s",
                            rp_defn_type_of(it));
    }
    if (rp_defn_get_str(c, &v, field, MAX_EXPR_LEN, 0, &a->src) != RP_OK)
        return RP_EINVAL;
    struct rp_error e = {0};
    if (rp_expr_parse(a->src, &a->expr, &e) != RP_OK)
        return rp_defn_fail(c, field, "%s", e.msg);
    return RP_OK;
}

static int parse_asserts(struct ctx *c, const bson_iter_t *arr, struct rp_step *s)
{
    bson_iter_t ch;
    size_t n = 0;
    if (!BSON_ITER_HOLDS_ARRAY(arr))
        return rp_defn_fail(c, "assert",
                            "must be an array of expressions ([\"status == 200\"]), got %s",
                            rp_defn_type_of(arr));
    if (!bson_iter_recurse(arr, &ch))
        return rp_defn_fail(c, "assert", "unreadable array");
    while (bson_iter_next(&ch))
        if (++n > MAX_ASSERTS)
            return rp_defn_fail(c, "assert", "more than %d assertions", MAX_ASSERTS);
    s->asserts = rp_xcalloc(n ? n : 1, sizeof(*s->asserts));
    (void)bson_iter_recurse(arr, &ch);
    for (size_t i = 1; bson_iter_next(&ch); i++)
        if (parse_assertion(c, &ch, i, s) != RP_OK)
            return RP_EINVAL;
    return RP_OK;
}

static int parse_schema(struct ctx *c, const bson_iter_t *it, struct rp_step *s)
{
    if (!BSON_ITER_HOLDS_DOCUMENT(it) && !BSON_ITER_HOLDS_BOOL(it))
        return rp_defn_fail(c, "schema", "must be a JSON Schema (an object), got %s",
                            rp_defn_type_of(it));
    bson_t doc = BSON_INITIALIZER;
    bson_append_iter(&doc, "v", 1, it);
    struct rp_error e = {0};
    int rc = rp_schema_compile(&doc, &s->schema, &e);
    bson_destroy(&doc);
    if (rc != RP_OK) { /* schema.c says "schema #/a/b: ...": the location already names it */
        const char *m = e.msg[0] ? e.msg : "invalid schema";
        m += strncmp(m, "schema: ", 8) == 0 ? 8 : strncmp(m, "schema ", 7) == 0 ? 7 : 0;
        return rp_defn_fail(c, "schema", "%s", m);
    }
    return RP_OK;
}

/* ==== steps ============================================================================= */

static const char *const step_keys[] = {"name",   "request",         "expect", "capture",
                                        "assert", "schema",          "if",     "each",
                                        "as",     "stop_on_failure", NULL};
static const struct alias step_aliases[] = {
    {"method", "`method` belongs inside `request`"},
    {"url", "`url` belongs inside `request`"},
    {"headers", "`headers` belongs inside `request`"},
    {"json", "`json` belongs inside `request`"},
    {"form", "`form` belongs inside `request`"},
    {"body", "`body` belongs inside `request`"},
    {"timeout", "`timeout` belongs inside `request`"},
    {"follow_redirects", "`follow_redirects` belongs inside `request`"},
    {"verify_tls", "`verify_tls` belongs inside `request`"},
    {"assertions", "did you mean `assert`?"},
    {"asserts", "did you mean `assert`?"},
    {"checks", "did you mean `assert`?"},
    {"conditions", "did you mean `assert`?"},
    {"tests", "did you mean `assert`?"},
    {"captures", "did you mean `capture`?"},
    {"extract", "did you mean `capture`?"},
    {"save", "did you mean `capture`?"},
    {"status", "write `\"expect\": {\"status\": 200}`"},
    {"expect_status", "write `\"expect\": {\"status\": 200}`"},
    {"foreach", "did you mean `each`?"},
    {"for_each", "did you mean `each`?"},
    {"loop", "did you mean `each`?"},
    {"when", "did you mean `if`?"},
    {"condition", "did you mean `if`?"},
    {NULL, NULL}};

int rp_defn_parse_step(struct ctx *c, const bson_iter_t *st, size_t idx, int stop_default,
                       struct rp_step *s)
{
    bson_iter_t it;
    snprintf(c->where, sizeof(c->where), "step %zu", idx);
    if (!BSON_ITER_HOLDS_DOCUMENT(st))
        return rp_defn_fail(c, NULL, "must be an object with a `request`, got %s",
                            rp_defn_type_of(st));
    if (rp_defn_find(st, "name", &it) && BSON_ITER_HOLDS_UTF8(&it)) {
        uint32_t n;
        const char *name = bson_iter_utf8(&it, &n);
        char shown[SHOW_MAX];
        rp_defn_show(shown, sizeof(shown), name, n);
        snprintf(c->where, sizeof(c->where), "step %zu (\"%s\")", idx, shown);
    }
    if (rp_defn_check_keys(c, st, NULL, step_keys, step_aliases) != RP_OK)
        return RP_EINVAL;
    if (rp_defn_find(st, "name", &it) &&
        rp_defn_get_str(c, &it, "name", MAX_NAME_LEN, STR_NO_CTRL, &s->name) != RP_OK)
        return RP_EINVAL;
    if (!rp_defn_find(st, "request", &it))
        return rp_defn_fail(c, NULL, "`request` is required ({\"url\": \"...\"})");
    if (parse_request(c, &it, s) != RP_OK)
        return RP_EINVAL;
    if (!s->name) { /* "GET ${base}/users": what the step does is a fine default name */
        s->name = rp_xasprintf("%s %s", s->method, s->url);
        if (strlen(s->name) > MAX_NAME_LEN) {
            size_t cut = MAX_NAME_LEN - 3;
            while (cut > 0 && ((unsigned char)s->name[cut] & 0xc0) == 0x80)
                cut--;
            memcpy(s->name + cut, "...", 4);
        }
    }
    if (rp_defn_find(st, "expect", &it) && parse_expect(c, &it, s) != RP_OK)
        return RP_EINVAL;
    if (rp_defn_find(st, "capture", &it) && parse_captures(c, &it, s) != RP_OK)
        return RP_EINVAL;
    if (rp_defn_find(st, "assert", &it) && parse_asserts(c, &it, s) != RP_OK)
        return RP_EINVAL;
    if (rp_defn_find(st, "schema", &it) && parse_schema(c, &it, s) != RP_OK)
        return RP_EINVAL;

    struct rp_error e = {0};
    if (rp_defn_find(st, "if", &it)) {
        if (rp_defn_get_str(c, &it, "if", MAX_EXPR_LEN, 0, &s->if_src) != RP_OK)
            return RP_EINVAL;
        if (rp_expr_parse(s->if_src, &s->if_expr, &e) != RP_OK)
            return rp_defn_fail(c, "if", "%s", e.msg);
    }
    if (rp_defn_find(st, "each", &it)) {
        if (rp_defn_get_str(c, &it, "each", MAX_EXPR_LEN, 0, &s->each_src) != RP_OK)
            return RP_EINVAL;
        if (rp_expr_parse_operand(s->each_src, &s->each, &e) != RP_OK)
            return rp_defn_fail(c, "each", "%s", e.msg);
    }
    if (rp_defn_find(st, "as", &it)) {
        if (!s->each)
            return rp_defn_fail(c, "as", "names the element of `each`; add `each` or remove `as`");
        if (rp_defn_get_str(c, &it, "as", 0, 0, &s->each_as) != RP_OK ||
            rp_defn_check_var_name(c, "as", s->each_as) != RP_OK)
            return RP_EINVAL;
    } else if (s->each) {
        s->each_as = rp_xstrdup("item");
    }
    s->stop_on_failure = stop_default;
    if (rp_defn_find(st, "stop_on_failure", &it) &&
        rp_defn_get_bool(c, &it, "stop_on_failure", &s->stop_on_failure) != RP_OK)
        return RP_EINVAL;
    return RP_OK;
}
