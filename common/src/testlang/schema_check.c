/* JSON Schema, checking: a body against a schema compiled by schema_compile.c. Checking walks
 * the tree and the libbson value together and stops at the first violation, named by its
 * instance location in JSON-path form ("$.user.age: 12 is less than minimum 18"). Recursion is
 * bounded twice: a depth limit (a $ref cycle that never descends into the instance) and a step
 * budget (schemas whose combinators multiply the work). */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "rampart/mem.h"
#include "schema_int.h"

#define MAX_DEPTH      200     /* validation recursion (instance depth + $ref chains) */
#define MAX_STEPS      1000000 /* schema nodes visited in one check, at least; more for */
#define STEPS_PER_BYTE 16      /* big bodies: 16 per byte of the instance */
#define SHOWN          64      /* bytes of a value quoted in a message */
#define ACTUAL_MAX     1024    /* bytes of `actual` */

/* ==== validating ========================================================================== */

struct vctx {
    const struct rp_schema *s;
    struct rp_buf path; /* "$.user.tags[2]" */
    int quiet;          /* > 0 inside anyOf/oneOf/not trials: failures are not described */
    int depth;
    long steps, max_steps;
    int aborted; /* a limit was hit: the check fails whatever the combinators say */
    char *msg;
    char *actual;
};

static char *json_of(const bson_iter_t *it, size_t max)
{
    struct rp_value v;
    rp_value_from_iter(&v, it);
    char *s = rp_value_to_json(&v, max);
    rp_value_clear(&v);
    return s;
}

static char *num_text(double d)
{
    struct rp_value v;
    rp_value_set_number(&v, d);
    char *s = rp_value_to_json(&v, 0);
    rp_value_clear(&v);
    return s;
}

static int fail(struct vctx *v, const bson_iter_t *it, const char *fmt, ...) RP_PRINTF(3, 4);

/* Record the first violation (unless quiet); always returns 0 ("invalid"). */
static int fail(struct vctx *v, const bson_iter_t *it, const char *fmt, ...)
{
    if (v->quiet || v->msg)
        return 0;
    char what[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    v->msg = rp_xasprintf("%s: %s", v->path.data, what);
    v->actual = json_of(it, ACTUAL_MAX);
    return 0;
}

static int abort_check(struct vctx *v, const char *fmt, ...) RP_PRINTF(2, 3);

static int abort_check(struct vctx *v, const char *fmt, ...)
{
    char what[300];
    va_list ap;
    if (v->aborted)
        return 0;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    v->aborted = 1;
    free(v->msg);
    free(v->actual);
    v->msg = rp_xasprintf("%s: %s", v->path.data, what);
    v->actual = NULL;
    return 0;
}

static int plain_key(const char *k, size_t n)
{
    if (n == 0 || !(rp_schema_is_alpha(k[0]) || k[0] == '_'))
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!(rp_schema_is_alnum(k[i]) || k[i] == '_'))
            return 0;
    return 1;
}

static size_t path_push_key(struct vctx *v, const char *k, size_t n)
{
    size_t keep = v->path.len;
    if (plain_key(k, n)) {
        if (rp_buf_append(&v->path, ".", 1) == RP_OK)
            (void)rp_buf_append(&v->path, k, n);
        return keep;
    }
    (void)rp_buf_append(&v->path, "[\"", 2);
    for (size_t i = 0; i < n; i++) {
        if (k[i] == '"' || k[i] == '\\')
            (void)rp_buf_append(&v->path, "\\", 1);
        (void)rp_buf_append(&v->path, k + i, 1);
    }
    (void)rp_buf_append(&v->path, "\"]", 2);
    return keep;
}

static size_t path_push_index(struct vctx *v, size_t i)
{
    size_t keep = v->path.len;
    (void)rp_buf_printf(&v->path, "[%zu]", i);
    return keep;
}

static void path_pop(struct vctx *v, size_t keep)
{
    v->path.len = keep;
    v->path.data[keep] = '\0';
}

static int json_equal(const bson_iter_t *a, const bson_iter_t *b, int depth);

static int doc_equal(const bson_iter_t *a, const bson_iter_t *b, int depth)
{
    bson_iter_t ca, cb, find;
    size_t na = 0, nb = 0;
    if (!bson_iter_recurse(a, &ca) || !bson_iter_recurse(b, &cb))
        return 0;
    while (bson_iter_next(&cb))
        nb++;
    while (bson_iter_next(&ca)) {
        na++;
        if (!bson_iter_recurse(b, &find) ||
            !bson_iter_find_w_len(&find, bson_iter_key(&ca), (int)bson_iter_key_len(&ca)) ||
            !json_equal(&ca, &find, depth + 1))
            return 0;
    }
    return na == nb;
}

static int array_equal(const bson_iter_t *a, const bson_iter_t *b, int depth)
{
    bson_iter_t ca, cb;
    if (!bson_iter_recurse(a, &ca) || !bson_iter_recurse(b, &cb))
        return 0;
    for (;;) {
        int ha = bson_iter_next(&ca), hb = bson_iter_next(&cb);
        if (ha != hb)
            return 0;
        if (!ha)
            return 1;
        if (!json_equal(&ca, &cb, depth + 1))
            return 0;
    }
}

/* JSON equality: numbers by value (1 == 1.0), objects regardless of member order. */
static int json_equal(const bson_iter_t *a, const bson_iter_t *b, int depth)
{
    double x, y;
    if (depth > MAX_DEPTH)
        return 0;
    if (rp_schema_num_of(a, &x) && rp_schema_num_of(b, &y))
        return x == y;
    bson_type_t ta = bson_iter_type(a), tb = bson_iter_type(b);
    if (ta == BSON_TYPE_UNDEFINED)
        ta = BSON_TYPE_NULL;
    if (tb == BSON_TYPE_UNDEFINED)
        tb = BSON_TYPE_NULL;
    if (ta != tb)
        return 0;
    switch (ta) {
    case BSON_TYPE_UTF8: {
        uint32_t la, lb;
        const char *sa = bson_iter_utf8(a, &la), *sb = bson_iter_utf8(b, &lb);
        return la == lb && memcmp(sa, sb, la) == 0;
    }
    case BSON_TYPE_BOOL:
        return bson_iter_bool(a) == bson_iter_bool(b);
    case BSON_TYPE_NULL:
        return 1;
    case BSON_TYPE_DOCUMENT:
        return doc_equal(a, b, depth);
    case BSON_TYPE_ARRAY:
        return array_equal(a, b, depth);
    default: {
        char *ja = json_of(a, 0), *jb = json_of(b, 0);
        int eq = strcmp(ja, jb) == 0;
        free(ja);
        free(jb);
        return eq;
    }
    }
}

/* A hash that agrees with json_equal: equal values hash alike (numbers by value, objects
 * whatever their member order). */
static uint64_t hash_bytes(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

static uint64_t json_hash(const bson_iter_t *it, int depth)
{
    double d;
    bson_iter_t child;
    uint64_t h = 14695981039346656037ull;
    if (rp_schema_num_of(it, &d)) {
        if (d == 0)
            d = 0; /* -0 == 0 */
        return hash_bytes(h ^ 1, &d, sizeof(d));
    }
    switch (bson_iter_type(it)) {
    case BSON_TYPE_UTF8: {
        uint32_t len;
        const char *s = bson_iter_utf8(it, &len);
        return hash_bytes(h ^ 2, s, len);
    }
    case BSON_TYPE_BOOL:
        return h ^ (bson_iter_bool(it) ? 3 : 4);
    case BSON_TYPE_NULL:
    case BSON_TYPE_UNDEFINED:
        return h ^ 5;
    case BSON_TYPE_ARRAY:
        h ^= 6;
        if (depth < MAX_DEPTH && bson_iter_recurse(it, &child))
            while (bson_iter_next(&child))
                h = (h ^ json_hash(&child, depth + 1)) * 1099511628211ull;
        return h;
    case BSON_TYPE_DOCUMENT: {
        uint64_t sum = 7;
        if (depth < MAX_DEPTH && bson_iter_recurse(it, &child))
            while (bson_iter_next(&child))
                sum += hash_bytes(json_hash(&child, depth + 1), bson_iter_key(&child),
                                  bson_iter_key_len(&child));
        return h ^ sum;
    }
    default: {
        char *j = json_of(it, 0);
        h = hash_bytes(h ^ 8, j, strlen(j));
        free(j);
        return h;
    }
    }
}

struct hashed {
    uint64_t hash;
    size_t index;
    bson_iter_t it;
};

static int by_hash(const void *a, const void *b)
{
    const struct hashed *x = a, *y = b;
    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* Find two equal items among the `count` items after `first` (an iterator before the first
 * item): sort by hash, compare only items that hash alike. O(n log n). */
static int find_duplicate(const bson_iter_t *first, size_t count, size_t *i_out, size_t *j_out)
{
    struct hashed *h = rp_xmalloc(count * sizeof(*h));
    bson_iter_t c = *first;
    size_t n = 0, best_i = SIZE_MAX, best_j = SIZE_MAX;
    while (n < count && bson_iter_next(&c)) {
        h[n].hash = json_hash(&c, 0);
        h[n].index = n;
        h[n].it = c;
        n++;
    }
    qsort(h, n, sizeof(*h), by_hash);
    for (size_t a = 0; a < n; a++)
        for (size_t b = a + 1; b < n && h[b].hash == h[a].hash; b++)
            if ((h[b].index < best_j || (h[b].index == best_j && h[a].index < best_i)) &&
                json_equal(&h[a].it, &h[b].it, 0)) {
                best_i = h[a].index;
                best_j = h[b].index;
            }
    free(h);
    *i_out = best_i;
    *j_out = best_j;
    return best_j != SIZE_MAX;
}

static int validate(struct vctx *v, const struct node *n, const bson_iter_t *it);

/* The instance's type bit; numbers get T_NUMBER, plus T_INTEGER when integral. */
static unsigned type_bits(const bson_iter_t *it, double *num)
{
    switch (bson_iter_type(it)) {
    case BSON_TYPE_NULL:
    case BSON_TYPE_UNDEFINED:
        return T_NULL;
    case BSON_TYPE_BOOL:
        return T_BOOLEAN;
    case BSON_TYPE_DOUBLE:
    case BSON_TYPE_INT32:
    case BSON_TYPE_INT64:
    case BSON_TYPE_DECIMAL128:
        rp_schema_num_of(it, num);
        return T_NUMBER | (isfinite(*num) && *num == floor(*num) ? T_INTEGER : 0);
    case BSON_TYPE_ARRAY:
        return T_ARRAY;
    case BSON_TYPE_DOCUMENT:
        return T_OBJECT;
    default:
        return T_STRING; /* utf8, and what value.c shows as text (ids, dates, ...) */
    }
}

static int check_type(struct vctx *v, const struct node *n, const bson_iter_t *it, unsigned bits)
{
    if (!n->types || (n->types & bits))
        return 1;
    if ((n->types & T_NUMBER) && (bits & T_INTEGER))
        return 1;
    if (v->quiet)
        return 0;
    char want[96] = "";
    size_t nt = 0, total = 0;
    for (unsigned k = 0; k < 7; k++)
        total += (n->types >> k) & 1;
    for (unsigned k = 0; k < 7; k++) {
        if (!(n->types & (1u << k)))
            continue;
        nt++;
        if (nt > 1)
            strcat(want, nt == total ? " or " : ", ");
        strcat(want, rp_schema_type_names[k]);
    }
    return fail(v, it, "expected %s, got %s", want, rp_schema_bson_type_name(it));
}

static int check_number(struct vctx *v, const struct node *n, const bson_iter_t *it, double x)
{
    const char *why = NULL;
    double lim = 0;
    if (n->has_min && x < n->min)
        why = "is less than minimum", lim = n->min;
    else if (n->has_max && x > n->max)
        why = "is greater than maximum", lim = n->max;
    else if (n->has_xmin && x <= n->xmin)
        why = "is not greater than exclusiveMinimum", lim = n->xmin;
    else if (n->has_xmax && x >= n->xmax)
        why = "is not less than exclusiveMaximum", lim = n->xmax;
    else if (n->has_mult) {
        double q = x / n->mult;
        if (!isfinite(q) || fabs(q - nearbyint(q)) > 1e-9 * fmax(1.0, fabs(q)))
            why = "is not a multiple of", lim = n->mult;
    }
    if (!why)
        return 1;
    if (v->quiet)
        return 0;
    char *a = num_text(x), *b = num_text(lim);
    fail(v, it, "%s %s %s", a, why, b);
    free(a);
    free(b);
    return 0;
}

static int check_string(struct vctx *v, const struct node *n, const bson_iter_t *it)
{
    uint32_t len = 0;
    const char *s;
    char *tmp = NULL;
    int ok = 0;
    if (BSON_ITER_HOLDS_UTF8(it)) {
        s = bson_iter_utf8(it, &len);
    } else { /* ids, dates...: checked as the text value.c shows for them */
        struct rp_value val;
        rp_value_from_iter(&val, it);
        tmp = rp_value_to_text(&val);
        rp_value_clear(&val);
        s = tmp;
        len = (uint32_t)strlen(s);
    }
    if (n->min_length >= 0 || n->max_length >= 0) {
        int64_t chars = 0;
        for (uint32_t i = 0; i < len; i++)
            chars += ((unsigned char)s[i] & 0xC0) != 0x80;
        if (n->min_length >= 0 && chars < n->min_length) {
            fail(v, it, "length %lld is less than minLength %lld", (long long)chars,
                 (long long)n->min_length);
            goto out;
        }
        if (n->max_length >= 0 && chars > n->max_length) {
            fail(v, it, "length %lld is more than maxLength %lld", (long long)chars,
                 (long long)n->max_length);
            goto out;
        }
    }
    if (n->re) {
        pcre2_match_data *md = pcre2_match_data_create(1, NULL);
        int r = pcre2_match(n->re, (PCRE2_SPTR)s, len, 0, 0, md, v->s->mctx);
        pcre2_match_data_free(md);
        if (r == PCRE2_ERROR_MATCHLIMIT || r == PCRE2_ERROR_DEPTHLIMIT) {
            fail(v, it, "pattern %.200s gave up (match limit reached)", n->pattern);
            goto out;
        }
        if (r < 0) {
            fail(v, it, "\"%.*s%s\" does not match pattern %.200s", len > SHOWN ? SHOWN : (int)len,
                 s, len > SHOWN ? "..." : "", n->pattern);
            goto out;
        }
    }
    if (n->format) {
        int fine = strlen(s) == len;
        switch (n->format) {
        case F_EMAIL:
            fine = fine && rp_is_email(s);
            break;
        case F_URI:
            fine = fine && rp_is_url(s);
            break;
        case F_UUID:
            fine = fine && rp_is_uuid(s);
            break;
        case F_DATE_TIME:
            fine = fine && rp_is_date_time(s);
            break;
        case F_NONE:
            break;
        }
        if (!fine) {
            fail(v, it, "\"%.*s%s\" is not a valid %s (format)", len > SHOWN ? SHOWN : (int)len, s,
                 len > SHOWN ? "..." : "", rp_schema_format_names[n->format]);
            goto out;
        }
    }
    ok = 1;
out:
    free(tmp);
    return ok;
}

static int check_array(struct vctx *v, const struct node *n, const bson_iter_t *it)
{
    bson_iter_t child;
    if (!bson_iter_recurse(it, &child))
        return fail(v, it, "unreadable array");
    int64_t count = 0;
    if (n->min_items >= 0 || n->max_items >= 0 || n->unique_items) {
        bson_iter_t c2 = child;
        while (bson_iter_next(&c2))
            count++;
        if (n->min_items >= 0 && count < n->min_items)
            return fail(v, it, "%lld items, fewer than minItems %lld", (long long)count,
                        (long long)n->min_items);
        if (n->max_items >= 0 && count > n->max_items)
            return fail(v, it, "%lld items, more than maxItems %lld", (long long)count,
                        (long long)n->max_items);
    }
    if (n->unique_items && count > 1) {
        size_t i, j;
        if (find_duplicate(&child, (size_t)count, &i, &j))
            return fail(v, it, "items %zu and %zu are equal (uniqueItems)", i, j);
    }
    if (n->items) {
        for (size_t i = 0; bson_iter_next(&child); i++) {
            size_t keep = path_push_index(v, i);
            int ok = validate(v, n->items, &child);
            path_pop(v, keep);
            if (!ok)
                return 0;
        }
    }
    return 1;
}

static int check_object(struct vctx *v, const struct node *n, const bson_iter_t *it)
{
    bson_iter_t child;
    for (size_t i = 0; i < n->n_required; i++) {
        if (!bson_iter_recurse(it, &child) || !bson_iter_find(&child, n->required[i]))
            return fail(v, it, "missing required property \"%.200s\"", n->required[i]);
    }
    if (!n->n_props && !n->additional)
        return 1;
    if (!bson_iter_recurse(it, &child))
        return fail(v, it, "unreadable object");
    while (bson_iter_next(&child)) {
        const char *k = bson_iter_key(&child);
        size_t klen = bson_iter_key_len(&child);
        const struct node *sub = NULL;
        for (size_t i = 0; i < n->n_props && !sub; i++)
            if (n->props[i].len == klen && !memcmp(n->props[i].name, k, klen))
                sub = n->props[i].schema;
        if (!sub) {
            sub = n->additional;
            if (!sub)
                continue;
            if (sub->boolean == 0) {
                return fail(v, it, "property \"%.200s\" is not allowed (additionalProperties)", k);
            }
        }
        size_t keep = path_push_key(v, k, klen);
        int ok = validate(v, sub, &child);
        path_pop(v, keep);
        if (!ok)
            return 0;
    }
    return 1;
}

/* Run `n` on `it` without describing failures. */
static int trial(struct vctx *v, const struct node *n, const bson_iter_t *it)
{
    v->quiet++;
    int ok = validate(v, n, it);
    v->quiet--;
    return ok;
}

/* "(first: $.x: expected string, got number)": why the first alternative failed. */
static char *first_reason(struct vctx *v, const struct node *n, const bson_iter_t *it)
{
    if (v->quiet)
        return NULL;
    char *saved_msg = v->msg, *saved_actual = v->actual;
    v->msg = v->actual = NULL;
    (void)validate(v, n, it);
    char *why = v->msg;
    free(v->actual);
    v->msg = saved_msg;
    v->actual = saved_actual;
    return why;
}

static int check_combinators(struct vctx *v, const struct node *n, const bson_iter_t *it)
{
    for (size_t i = 0; i < n->all_of.n; i++)
        if (!validate(v, n->all_of.v[i], it))
            return 0;
    if (n->any_of.n) {
        int any = 0;
        for (size_t i = 0; i < n->any_of.n && !any && !v->aborted; i++)
            any = trial(v, n->any_of.v[i], it);
        if (v->aborted)
            return 0;
        if (!any) {
            char *why = first_reason(v, n->any_of.v[0], it);
            fail(v, it, "matches none of the %zu schemas in anyOf (first: %s)", n->any_of.n,
                 why ? why : "?");
            free(why);
            return 0;
        }
    }
    if (n->one_of.n) {
        size_t hits = 0, first = 0, second = 0;
        for (size_t i = 0; i < n->one_of.n && hits < 2 && !v->aborted; i++) {
            if (trial(v, n->one_of.v[i], it)) {
                if (hits++ == 0)
                    first = i;
                else
                    second = i;
            }
        }
        if (v->aborted)
            return 0;
        if (hits == 0) {
            char *why = first_reason(v, n->one_of.v[0], it);
            fail(v, it, "matches none of the %zu schemas in oneOf (first: %s)", n->one_of.n,
                 why ? why : "?");
            free(why);
            return 0;
        }
        if (hits > 1)
            return fail(v, it, "matches schemas %zu and %zu in oneOf, expected exactly one", first,
                        second);
    }
    if (n->not_) {
        int ok = trial(v, n->not_, it);
        if (v->aborted)
            return 0;
        if (ok)
            return fail(v, it, "must not match the schema in not");
    }
    return 1;
}

static int validate(struct vctx *v, const struct node *n, const bson_iter_t *it)
{
    double num = 0;
    int ok = 0;
    if (v->aborted)
        return 0;
    if (++v->steps > v->max_steps)
        return abort_check(v, "validation stopped after %ld steps (schema too costly)",
                           v->max_steps);
    if (n->boolean >= 0)
        return n->boolean ? 1 : fail(v, it, "no value is allowed here (schema false)");
    if (v->depth >= MAX_DEPTH)
        return abort_check(v, "schema nested deeper than %d while validating (a $ref cycle?)",
                           MAX_DEPTH);
    v->depth++;
    unsigned bits = type_bits(it, &num);
    if (!check_type(v, n, it, bits))
        goto out;
    if (n->const_doc) {
        bson_iter_t c;
        if (rp_json_root(n->const_doc, &c) == RP_OK && !json_equal(it, &c, 0)) {
            if (!v->quiet) {
                char *want = json_of(&c, SHOWN), *got = json_of(it, SHOWN);
                fail(v, it, "expected %s (const), got %s", want, got);
                free(want);
                free(got);
            }
            goto out;
        }
    }
    if (n->enum_doc) {
        bson_iter_t e, c;
        int found = 0;
        if (rp_json_root(n->enum_doc, &e) == RP_OK && bson_iter_recurse(&e, &c))
            while (!found && bson_iter_next(&c))
                found = json_equal(it, &c, 0);
        if (!found) {
            if (!v->quiet) {
                char *got = json_of(it, SHOWN), *list = json_of(&e, 200);
                fail(v, it, "%s is not one of %s (enum)", got, list);
                free(got);
                free(list);
            }
            goto out;
        }
    }
    if ((bits & T_NUMBER) && !check_number(v, n, it, num))
        goto out;
    if ((bits & T_STRING) && (n->min_length >= 0 || n->max_length >= 0 || n->re || n->format) &&
        !check_string(v, n, it))
        goto out;
    if ((bits & T_ARRAY) && !check_array(v, n, it))
        goto out;
    if ((bits & T_OBJECT) && !check_object(v, n, it))
        goto out;
    if (n->target && !validate(v, n->target, it))
        goto out;
    if (!check_combinators(v, n, it))
        goto out;
    ok = !v->aborted;
out:
    v->depth--;
    return ok;
}

void rp_schema_check(const struct rp_schema *s, const bson_iter_t *instance, struct rp_check *out)
{
    struct vctx v = {0};
    memset(out, 0, sizeof(*out));
    v.s = s;
    rp_buf_init(&v.path, MAX_PATH);
    (void)rp_buf_append(&v.path, "$", 1);
    uint32_t size = 0;
    const uint8_t *data;
    if (BSON_ITER_HOLDS_DOCUMENT(instance))
        bson_iter_document(instance, &size, &data);
    else if (BSON_ITER_HOLDS_ARRAY(instance))
        bson_iter_array(instance, &size, &data);
    v.max_steps = MAX_STEPS;
    if ((long)size * STEPS_PER_BYTE > v.max_steps)
        v.max_steps = (long)size * STEPS_PER_BYTE;
    out->passed = s && s->root && validate(&v, s->root, instance) && !v.aborted;
    if (out->passed) {
        free(v.msg);
        free(v.actual);
        out->message = rp_xstrdup("matches the schema");
    } else {
        out->message = v.msg ? v.msg : rp_xstrdup("$: does not match the schema");
        out->actual = v.actual;
    }
    rp_buf_cleanup(&v.path);
}
