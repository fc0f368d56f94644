/* Reading request bodies: one JSON object (libbson's parser, which reports where it failed),
 * then typed member readers that answer 400 naming the member and what was expected, so every
 * handler validates the same way and a bad input never reaches the database. Also the run-time
 * variables of a run (secret ones sealed before they are stored) and the opaque cursors of
 * paginated lists. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "dash.h"
#include "rampart/job.h"
#include "rampart/pg.h"
#include "rampart/testlang.h"

int dash_body(struct dash_req *r, bson_t *doc)
{
    const char *ct = dash_header_in(r, "Content-Type");
    if (ct && strncasecmp(ct, "application/json", 16) != 0) {
        dash_error(r, 415, "unsupported_media_type",
                   "the body must be JSON (Content-Type: application/json), not %.80s", ct);
        return RP_EINVAL;
    }
    if (r->body.len == 0) {
        dash_error(r, 400, "invalid_json", "the body is empty: send a JSON object");
        return RP_EINVAL;
    }
    /* libbson takes the top level as a document: anything else is not an object */
    size_t i = 0;
    while (i < r->body.len && strchr(" \t\r\n", r->body.data[i]))
        i++;
    if (i == r->body.len || r->body.data[i] != '{') {
        dash_error(r, 400, "invalid_json", "the body must be a JSON object ({...})");
        return RP_EINVAL;
    }
    if (memchr(r->body.data, '\0', r->body.len)) {
        dash_error(r, 400, "invalid_json", "the body contains a NUL byte");
        return RP_EINVAL;
    }
    bson_error_t e;
    if (!bson_init_from_json(doc, r->body.data, (ssize_t)r->body.len, &e)) {
        dash_error(r, 400, "invalid_json", "the body is not valid JSON: %s", e.message);
        return RP_EINVAL;
    }
    return RP_OK;
}

int dash_only(struct dash_req *r, const bson_t *doc, const char *const *allowed)
{
    bson_iter_t it;
    if (!bson_iter_init(&it, doc))
        return RP_EINVAL;
    while (bson_iter_next(&it)) {
        const char *k = bson_iter_key(&it);
        size_t i = 0;
        while (allowed[i] && strcmp(allowed[i], k) != 0)
            i++;
        if (allowed[i])
            continue;
        char list[512] = "";
        for (size_t j = 0; allowed[j]; j++) {
            strncat(list, j ? ", " : "", sizeof(list) - strlen(list) - 1);
            strncat(list, allowed[j], sizeof(list) - strlen(list) - 1);
        }
        dash_error_field(r, 400, "unknown_field", k, "unknown member \"%.100s\"; expected: %s", k,
                         list);
        return RP_EINVAL;
    }
    return RP_OK;
}

/* Find `name`; returns 1 when present and not null; 0 when absent, or null with NULLABLE
 * (then *present = 1 for null); -1 after answering (missing required / null not allowed). */
static int find(struct dash_req *r, const bson_t *doc, const char *name, int flags, bson_iter_t *it,
                int *present)
{
    if (present)
        *present = 0;
    if (!bson_iter_init_find(it, doc, name)) {
        if (flags & DASH_REQUIRED) {
            dash_error_field(r, 400, "missing_field", name, "\"%s\" is required", name);
            return -1;
        }
        return 0;
    }
    if (BSON_ITER_HOLDS_NULL(it)) {
        if (flags & DASH_NULLABLE) {
            if (present)
                *present = 1;
            return 0;
        }
        dash_error_field(r, 400, "invalid_field", name, "\"%s\" must not be null", name);
        return -1;
    }
    if (present)
        *present = 1;
    return 1;
}

int dash_get_str(struct dash_req *r, const bson_t *doc, const char *name, int flags, size_t min,
                 size_t max, const char **out, int *present)
{
    bson_iter_t it;
    *out = NULL;
    int f = find(r, doc, name, flags, &it, present);
    if (f <= 0)
        return f < 0 ? RP_EINVAL : RP_OK;
    uint32_t len = 0;
    const char *s = BSON_ITER_HOLDS_UTF8(&it) ? bson_iter_utf8(&it, &len) : NULL;
    size_t chars = 0;
    if (s && strlen(s) == len && bson_utf8_validate(s, len, false)) {
        for (const char *p = s; *p; p = bson_utf8_next_char(p))
            chars++;
        if (chars >= min && chars <= max) {
            *out = s;
            return RP_OK;
        }
    }
    if (min == max)
        dash_error_field(r, 400, "invalid_field", name, "\"%s\" must be a string of %zu characters",
                         name, min);
    else
        dash_error_field(r, 400, "invalid_field", name,
                         "\"%s\" must be a string of %zu to %zu characters%s", name, min, max,
                         s && chars ? "" : (s ? "" : " (got another type)"));
    return RP_EINVAL;
}

int dash_get_bool(struct dash_req *r, const bson_t *doc, const char *name, int flags, int *out,
                  int *present)
{
    bson_iter_t it;
    int f = find(r, doc, name, flags, &it, present);
    if (f <= 0)
        return f < 0 ? RP_EINVAL : RP_OK;
    if (!BSON_ITER_HOLDS_BOOL(&it)) {
        dash_error_field(r, 400, "invalid_field", name, "\"%s\" must be true or false", name);
        return RP_EINVAL;
    }
    *out = bson_iter_bool(&it);
    return RP_OK;
}

int dash_get_int(struct dash_req *r, const bson_t *doc, const char *name, int flags, long min,
                 long max, long *out, int *present)
{
    bson_iter_t it;
    int f = find(r, doc, name, flags, &it, present);
    if (f <= 0)
        return f < 0 ? RP_EINVAL : RP_OK;
    int ok = 0;
    double v = 0;
    if (BSON_ITER_HOLDS_INT32(&it) || BSON_ITER_HOLDS_INT64(&it)) {
        v = (double)bson_iter_as_int64(&it);
        ok = 1;
    } else if (BSON_ITER_HOLDS_DOUBLE(&it)) {
        v = bson_iter_double(&it);
        ok = v == (double)(long long)v;
    }
    if (!ok || v < (double)min || v > (double)max) {
        dash_error_field(r, 400, "invalid_field", name, "\"%s\" must be an integer from %ld to %ld",
                         name, min, max);
        return RP_EINVAL;
    }
    *out = (long)v;
    return RP_OK;
}

int dash_get_str_array(struct dash_req *r, const bson_t *doc, const char *name, int flags,
                       size_t max_items, const char *(*check)(const char *s), struct rp_buf *lit,
                       int *present)
{
    bson_iter_t it, child;
    int f = find(r, doc, name, flags, &it, present);
    if (f <= 0)
        return f < 0 ? RP_EINVAL : RP_OK;
    if (!BSON_ITER_HOLDS_ARRAY(&it) || !bson_iter_recurse(&it, &child)) {
        dash_error_field(r, 400, "invalid_field", name, "\"%s\" must be an array of strings", name);
        return RP_EINVAL;
    }
    (void)rp_buf_append(lit, "{", 1);
    size_t n = 0;
    while (bson_iter_next(&child)) {
        char field[160];
        snprintf(field, sizeof(field), "%s[%zu]", name, n);
        uint32_t len = 0;
        const char *s = BSON_ITER_HOLDS_UTF8(&child) ? bson_iter_utf8(&child, &len) : NULL;
        if (!s || strlen(s) != len) {
            dash_error_field(r, 400, "invalid_field", field, "%s must be a string", field);
            return RP_EINVAL;
        }
        const char *why = check ? check(s) : NULL;
        if (why) {
            dash_error_field(r, 400, "invalid_field", field, "%s: %s", field, why);
            return RP_EINVAL;
        }
        if (++n > max_items) {
            dash_error_field(r, 400, "invalid_field", name, "\"%s\" takes at most %zu items", name,
                             max_items);
            return RP_EINVAL;
        }
        rp_pg_array_add(lit, s);
    }
    (void)rp_buf_append(lit, "}", 2); /* with the NUL */
    return RP_OK;
}

const char *dash_check_uuid(const char *s)
{
    return rp_uuid_valid(s) ? NULL : "must be an id (a UUID)";
}

const char *dash_check_tag(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 64)
        return "a tag has 1 to 64 characters";
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              strchr("_-.:/", *p)))
            return "a tag holds letters, digits and _ - . : / only";
    return NULL;
}

const char *dash_check_location(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 32 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
        return "a location is 1 to 32 characters a-z 0-9 _ -, starting with a letter or digit";
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
            return "a location is 1 to 32 characters a-z 0-9 _ -, starting with a letter or "
                   "digit";
    return NULL;
}

/* ---- run-time variables: run now (api_tests.c) and the CI trigger (api_ci.c) ------------- */

/* {"value": v[, "secret": bool]} (the variables' wrapper form): position `val` on v. */
static int wrapper(const bson_iter_t *it, bson_iter_t *val, int *secret)
{
    bson_iter_t c;
    int has_value = 0;
    *secret = 0;
    if (!BSON_ITER_HOLDS_DOCUMENT(it) || !bson_iter_recurse(it, &c))
        return 0;
    while (bson_iter_next(&c)) {
        if (strcmp(bson_iter_key(&c), "value") == 0) {
            has_value = 1;
            *val = c;
        } else if (strcmp(bson_iter_key(&c), "secret") == 0 && BSON_ITER_HOLDS_BOOL(&c)) {
            *secret = bson_iter_bool(&c);
        } else {
            return 0;
        }
    }
    return has_value;
}

/* The body's "variables" (the override layer) as JSON text for runs.overrides: checked as the
 * worker will load it, secret values sealed ({"secret": true, "sealed": "v1:..."}), since a
 * secret is never kept in clear. RP_OK with *out (NULL when absent) or 400 answered. */
int dash_read_overrides(struct dash_req *r, const bson_t *body, char **out)
{
    bson_iter_t it, c;
    *out = NULL;
    if (!bson_iter_init_find(&it, body, "variables") || BSON_ITER_HOLDS_NULL(&it))
        return RP_OK;
    if (!BSON_ITER_HOLDS_DOCUMENT(&it) || !bson_iter_recurse(&it, &c)) {
        dash_error_field(r, 400, "invalid_field", "variables",
                         "\"variables\" must be a JSON object of name: value");
        return RP_EINVAL;
    }
    struct rp_vars *v = rp_vars_new();
    struct rp_error e = {0};
    int rc = rp_vars_load_object(v, RP_LAYER_OVERRIDE, &it, &e);
    rp_vars_free(v);
    if (rc != RP_OK) {
        dash_error_field(r, 400, "invalid_field", "variables", "variables: %s", e.msg);
        return RP_EINVAL;
    }
    bson_t sealed = BSON_INITIALIZER;
    while (bson_iter_next(&c)) {
        bson_iter_t val, probe;
        int secret = 0;
        const char *key = bson_iter_key(&c);
        if (BSON_ITER_HOLDS_DOCUMENT(&c) && bson_iter_recurse(&c, &probe) &&
            bson_iter_find(&probe, "sealed")) {
            dash_error_field(r, 400, "invalid_field", "variables",
                             "variables: \"%.128s\": send a secret as {\"value\": ..., "
                             "\"secret\": true}, not sealed",
                             key);
            rc = RP_EINVAL;
            break;
        }
        if (!wrapper(&c, &val, &secret) || !secret) {
            bson_append_iter(&sealed, NULL, -1, &c);
            continue;
        }
        struct rp_value value;
        rp_value_from_iter(&value, &val);
        char *text = rp_value_to_json(&value, 0);
        rp_value_clear(&value);
        char *box = dash_seal(r->app, text);
        free(text);
        if (!box) {
            dash_error_field(r, 400, "secret_key_missing", "variables",
                             "variables: \"%.128s\" is secret, and secrets cannot be kept: the "
                             "dashboard has no RAMPART_SECRET_KEY",
                             key);
            rc = RP_EINVAL;
            break;
        }
        bson_t w;
        bson_append_document_begin(&sealed, key, -1, &w);
        BSON_APPEND_BOOL(&w, "secret", true);
        BSON_APPEND_UTF8(&w, "sealed", box);
        bson_append_document_end(&sealed, &w);
        free(box);
    }
    if (rc == RP_OK)
        *out = bson_as_relaxed_extended_json(&sealed, NULL);
    bson_destroy(&sealed);
    return rc;
}

/* ---- cursors: base64url("time|id") --------------------------------------------------------- */

char *dash_cursor_encode(const char *time, const char *id)
{
    char *raw = rp_xasprintf("%s|%s", time, id);
    size_t n = strlen(raw);
    size_t cap = sodium_base64_encoded_len(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *out = rp_xmalloc(cap);
    sodium_bin2base64(out, cap, (const unsigned char *)raw, n,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    free(raw);
    return out;
}

int dash_cursor_decode(const char *cursor, char **time, char **id)
{
    size_t n = strlen(cursor);
    if (n == 0 || n > 200)
        return RP_EINVAL;
    unsigned char raw[200];
    size_t len = 0;
    if (sodium_base642bin(raw, sizeof(raw) - 1, cursor, n, NULL, &len, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
        return RP_EINVAL;
    raw[len] = '\0';
    char *bar = memchr(raw, '|', len);
    if (!bar || strlen((char *)raw) != len || !rp_uuid_valid(bar + 1))
        return RP_EINVAL;
    *time = rp_xstrndup((char *)raw, (size_t)(bar - (char *)raw));
    *id = rp_xstrdup(bar + 1);
    return RP_OK;
}
