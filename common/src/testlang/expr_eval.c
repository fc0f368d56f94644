/* Expressions, evaluation: a parsed expression (expr_parse.c) against a response. Evaluation
 * reads the response through borrowed views and allocates only for the result's text: the
 * actual value and, on failure, a message that names the operand and what was expected. The
 * format checks for `is email|url|uuid|date-time` are shared with JSON Schema (formats.c). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rampart/mem.h"
#include "expr_int.h"

#define ACTUAL_MAX 1024 /* bytes of the actual value kept in a check */
#define SHOW_MAX   200  /* bytes of a value quoted in a message */

void rp_check_clear(struct rp_check *c)
{
    if (!c)
        return;
    free(c->actual);
    free(c->message);
    memset(c, 0, sizeof(*c));
}

/* ==== formats for `is email|url|uuid|date-time`: the rules live in formats.c (rp_is_*), shared
 * with JSON Schema's `format`. Values here are borrowed slices, so they are copied to be
 * NUL-terminated; a value with a NUL inside is never a valid format. */
static int is_format(int (*fn)(const char *), const char *s, size_t n)
{
    if (memchr(s, '\0', n))
        return 0;
    char *t = rp_xstrndup(s, n);
    int ok = fn(t);
    free(t);
    return ok;
}

/* ==== evaluation ========================================================================== */

/* A value borrowed from the response, a literal or a temporary: no copies on the hot path. */
struct view {
    enum rp_value_type type;
    int b;
    double num;
    int is_int;
    const char *str;
    size_t len;
    bson_iter_t it; /* arrays and objects */
    int secret;
};

struct ctx {
    const struct rp_response_view *r;
    const char *note; /* why a value is missing or unusable, for the message */
    char note_buf[200];
};

static int integral(double d)
{
    return isfinite(d) && d == floor(d) && fabs(d) < 9007199254740992.0;
}

static void view_number(struct view *v, double d)
{
    memset(v, 0, sizeof(*v));
    v->type = RP_V_NUMBER;
    v->num = d;
    v->is_int = integral(d);
}

static void view_from_value(struct view *v, const struct rp_value *val)
{
    memset(v, 0, sizeof(*v));
    v->type = val->type;
    v->b = val->b;
    v->num = val->num;
    v->is_int = val->is_int;
    if (val->type == RP_V_STRING) {
        v->str = val->str ? val->str : "";
        v->len = strlen(v->str);
    } else if (val->type == RP_V_ARRAY || val->type == RP_V_OBJECT) {
        if (!val->doc || rp_json_root(val->doc, &v->it) != RP_OK)
            v->type = RP_V_MISSING;
    }
}

/* `tmp` keeps a conversion alive for BSON types JSON has no word for. */
static void view_from_iter(struct view *v, const bson_iter_t *it, struct rp_value *tmp)
{
    uint32_t n;
    memset(v, 0, sizeof(*v));
    switch (bson_iter_type(it)) {
    case BSON_TYPE_DOUBLE:
        view_number(v, bson_iter_double(it));
        break;
    case BSON_TYPE_INT32:
        view_number(v, bson_iter_int32(it));
        v->is_int = 1;
        break;
    case BSON_TYPE_INT64:
        view_number(v, (double)bson_iter_int64(it));
        v->is_int = 1;
        break;
    case BSON_TYPE_UTF8:
        v->type = RP_V_STRING;
        v->str = bson_iter_utf8(it, &n);
        v->len = n;
        break;
    case BSON_TYPE_BOOL:
        v->type = RP_V_BOOL;
        v->b = bson_iter_bool(it);
        break;
    case BSON_TYPE_NULL:
    case BSON_TYPE_UNDEFINED:
        v->type = RP_V_NULL;
        break;
    case BSON_TYPE_ARRAY:
    case BSON_TYPE_DOCUMENT:
        v->type = BSON_ITER_HOLDS_ARRAY(it) ? RP_V_ARRAY : RP_V_OBJECT;
        v->it = *it;
        break;
    default:
        rp_value_clear(tmp);
        rp_value_from_iter(tmp, it);
        view_from_value(v, tmp);
        break;
    }
}

static void view_to_value(const struct view *v, struct rp_value *out)
{
    memset(out, 0, sizeof(*out));
    switch (v->type) {
    case RP_V_STRING:
        rp_value_set_string(out, v->str, v->len);
        break;
    case RP_V_ARRAY:
    case RP_V_OBJECT:
        rp_value_from_iter(out, &v->it);
        break;
    default:
        out->type = v->type;
        out->b = v->b;
        out->num = v->num;
        out->is_int = v->is_int;
        break;
    }
}

/* JSON text of a value for results ("***" for secrets), new string. */
static char *show(const struct view *v, size_t max)
{
    struct rp_value tmp;
    if (v->secret)
        return rp_xstrdup("***");
    view_to_value(v, &tmp);
    char *s = rp_value_to_json(&tmp, max);
    rp_value_clear(&tmp);
    return s;
}

struct collect {
    bson_t arr;
    uint32_t n;
    bson_iter_t first;
};

static int collect_fn(const bson_iter_t *match, void *ud)
{
    struct collect *c = ud;
    char buf[16];
    const char *key;
    if (c->n == 0)
        c->first = *match;
    bson_uint32_to_string(c->n++, &key, buf, sizeof(buf));
    bson_append_iter(&c->arr, key, -1, match);
    return 0;
}

static int first_fn(const bson_iter_t *match, void *ud)
{
    *(bson_iter_t *)ud = *match;
    return 1;
}

static int body_root(struct ctx *c, bson_iter_t *root)
{
    if (c->r->body_json && rp_json_root(c->r->body_json, root) == RP_OK)
        return 1;
    c->note = "the body is not JSON";
    return 0;
}

static void eval_header(struct ctx *c, const char *name, struct view *v, struct rp_value *tmp)
{
    const struct rp_response_view *r = c->r;
    size_t hits = 0;
    struct rp_buf b;
    rp_buf_init(&b, 0);
    for (size_t i = 0; i < r->n_headers; i++) {
        if (!r->headers[i].name || strcasecmp(r->headers[i].name, name) != 0)
            continue;
        const char *val = r->headers[i].value ? r->headers[i].value : "";
        if (hits++ == 0) {
            v->type = RP_V_STRING;
            v->str = val;
            v->len = strlen(val);
        } else {
            /* repeated header: one value joined with ", " (RFC 9110, 5.3) */
            if (hits == 2)
                (void)rp_buf_append(&b, v->str, v->len);
            (void)rp_buf_append(&b, ", ", 2);
            (void)rp_buf_append(&b, val, strlen(val));
        }
    }
    if (hits > 1) {
        rp_value_set_string(tmp, b.data, b.len);
        view_from_value(v, tmp);
    }
    rp_buf_cleanup(&b);
}

static size_t utf8_chars(const char *s, size_t n)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            count++;
    return count;
}

static void eval_single(struct ctx *c, const struct operand *o, struct view *v,
                        struct rp_value *tmp);

static void eval_len(struct ctx *c, const struct operand *o, struct view *v)
{
    struct rp_value inner = {0};
    struct view a;
    bson_iter_t root, child;
    size_t n = 0;

    memset(v, 0, sizeof(*v));
    if (o->arg->kind == O_PATH && rp_jsonpath_is_multi(o->arg->path)) {
        if (body_root(c, &root))
            view_number(v, (double)rp_jsonpath_eval(o->arg->path, &root, NULL, NULL));
        return;
    }
    eval_single(c, o->arg, &a, &inner);
    switch (a.type) {
    case RP_V_STRING:
        view_number(v, (double)utf8_chars(a.str, a.len));
        break;
    case RP_V_ARRAY:
    case RP_V_OBJECT:
        if (bson_iter_recurse(&a.it, &child))
            while (bson_iter_next(&child))
                n++;
        view_number(v, (double)n);
        break;
    case RP_V_MISSING:
        break;
    default:
        snprintf(c->note_buf, sizeof(c->note_buf), "len() needs a string, array or object, got %s",
                 rp_value_type_name(a.type));
        c->note = c->note_buf;
        break;
    }
    v->secret = a.secret;
    rp_value_clear(&inner);
}

static void eval_single(struct ctx *c, const struct operand *o, struct view *v,
                        struct rp_value *tmp)
{
    const struct rp_response_view *r = c->r;
    bson_iter_t root, match;
    int secret = 0;

    memset(v, 0, sizeof(*v));
    switch (o->kind) {
    case O_STATUS:
        view_number(v, (double)r->status);
        break;
    case O_TIME:
        view_number(v, r->timings.total);
        break;
    case O_SIZE:
        view_number(v, (double)r->body_size);
        break;
    case O_TIMING:
        view_number(v, *(const double *)((const char *)&r->timings + o->timing));
        break;
    case O_BODY:
        v->type = RP_V_STRING;
        v->str = r->body ? r->body : "";
        v->len = r->body ? r->body_len : 0;
        break;
    case O_HEADER:
        eval_header(c, o->name, v, tmp);
        break;
    case O_PATH:
        if (!body_root(c, &root))
            break;
        if (rp_jsonpath_is_multi(o->path)) {
            struct collect col = {.n = 0};
            bson_init(&col.arr);
            (void)rp_jsonpath_eval(o->path, &root, collect_fn, &col);
            rp_value_clear(tmp);
            tmp->type = RP_V_ARRAY;
            tmp->doc = bson_new();
            bson_append_array(tmp->doc, "v", 1, &col.arr);
            bson_destroy(&col.arr);
            view_from_value(v, tmp);
        } else if (rp_jsonpath_eval(o->path, &root, first_fn, &match) > 0) {
            view_from_iter(v, &match, tmp);
        }
        break;
    case O_VAR:
        rp_value_clear(tmp);
        if (!r->lookup || r->lookup(r->lookup_ud, o->name, tmp, &secret) != RP_OK) {
            rp_value_clear(tmp);
            snprintf(c->note_buf, sizeof(c->note_buf), "${%.150s} is not defined", o->name);
            c->note = c->note_buf;
            break;
        }
        view_from_value(v, tmp);
        v->secret = secret != 0;
        break;
    case O_LEN:
        eval_len(c, o, v);
        break;
    case O_LIT:
        view_from_value(v, &o->lit);
        break;
    }
}

static int iter_eq(const bson_iter_t *a, const bson_iter_t *b, int depth);

/* Is `needle` a substring of `hay`? (memmem is a GNU extension.) */
static int find(const char *hay, size_t n, const char *needle, size_t m)
{
    if (m > n)
        return 0;
    for (size_t i = 0; i + m <= n; i++)
        if (hay[i] == needle[0] && memcmp(hay + i, needle, m) == 0)
            return 1;
    return 0;
}

static int view_eq(const struct view *a, const struct view *b, int depth)
{
    bson_iter_t x, y;
    if (a->type != b->type || depth > 200)
        return 0;
    switch (a->type) {
    case RP_V_MISSING:
        return 0;
    case RP_V_NULL:
        return 1;
    case RP_V_BOOL:
        return !a->b == !b->b;
    case RP_V_NUMBER:
        return a->num == b->num;
    case RP_V_STRING:
        return a->len == b->len && memcmp(a->str, b->str, a->len) == 0;
    case RP_V_ARRAY:
        if (!bson_iter_recurse(&a->it, &x) || !bson_iter_recurse(&b->it, &y))
            return 0;
        for (;;) {
            int nx = bson_iter_next(&x), ny = bson_iter_next(&y);
            if (nx != ny)
                return 0;
            if (!nx)
                return 1;
            if (!iter_eq(&x, &y, depth + 1))
                return 0;
        }
    case RP_V_OBJECT: {
        size_t na = 0, nb = 0;
        if (!bson_iter_recurse(&a->it, &x) || !bson_iter_recurse(&b->it, &y))
            return 0;
        while (bson_iter_next(&y))
            nb++;
        while (bson_iter_next(&x)) {
            na++;
            if (!bson_iter_recurse(&b->it, &y) ||
                !bson_iter_find_w_len(&y, bson_iter_key(&x), (int)bson_iter_key_len(&x)) ||
                !iter_eq(&x, &y, depth + 1))
                return 0;
        }
        return na == nb;
    }
    }
    return 0;
}

static int iter_eq(const bson_iter_t *a, const bson_iter_t *b, int depth)
{
    struct rp_value ta = {0}, tb = {0};
    struct view va, vb;
    view_from_iter(&va, a, &ta);
    view_from_iter(&vb, b, &tb);
    int eq = view_eq(&va, &vb, depth);
    rp_value_clear(&ta);
    rp_value_clear(&tb);
    return eq;
}

/* -1, 0, 1, or -2 when the two cannot be ordered. */
static int view_cmp(const struct view *a, const struct view *b)
{
    if (a->type == RP_V_NUMBER && b->type == RP_V_NUMBER) {
        if (isnan(a->num) || isnan(b->num))
            return -2;
        return a->num < b->num ? -1 : a->num > b->num;
    }
    if (a->type == RP_V_STRING && b->type == RP_V_STRING) {
        int m = memcmp(a->str, b->str, a->len < b->len ? a->len : b->len);
        if (m)
            return m < 0 ? -1 : 1;
        return a->len < b->len ? -1 : a->len > b->len;
    }
    return -2;
}

/* Does any element of the array `arr` equal `v`? */
static int array_has(const struct view *arr, const struct view *v)
{
    bson_iter_t child;
    if (!bson_iter_recurse(&arr->it, &child))
        return 0;
    while (bson_iter_next(&child)) {
        struct rp_value t = {0};
        struct view e;
        view_from_iter(&e, &child, &t);
        int eq = view_eq(&e, v, 0);
        rp_value_clear(&t);
        if (eq)
            return 1;
    }
    return 0;
}

static int type_is(const struct view *v, enum vtype t)
{
    int str = v->type == RP_V_STRING;
    switch (t) {
    case T_STRING:
        return str;
    case T_NUMBER:
        return v->type == RP_V_NUMBER;
    case T_INTEGER:
        return v->type == RP_V_NUMBER && (v->is_int || integral(v->num));
    case T_BOOLEAN:
        return v->type == RP_V_BOOL;
    case T_ARRAY:
        return v->type == RP_V_ARRAY;
    case T_OBJECT:
        return v->type == RP_V_OBJECT;
    case T_NULL:
        return v->type == RP_V_NULL;
    case T_EMAIL:
        return str && is_format(rp_is_email, v->str, v->len);
    case T_URL:
        return str && is_format(rp_is_url, v->str, v->len);
    case T_UUID:
        return str && is_format(rp_is_uuid, v->str, v->len);
    case T_DATETIME:
        return str && is_format(rp_is_date_time, v->str, v->len);
    case N_TYPES:
        break;
    }
    return 0;
}

static void num_text(char *buf, size_t cap, double d, int is_int)
{
    if (is_int && fabs(d) < 1e17) {
        snprintf(buf, cap, "%.0f", d);
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            break;
    }
}

static int regex_match(struct ctx *c, const struct rp_expr *e, const struct view *v)
{
    char num[64];
    const char *subj = v->str;
    size_t len = v->len;
    if (v->type == RP_V_NUMBER) {
        num_text(num, sizeof(num), v->num, v->is_int);
        subj = num;
        len = strlen(num);
    } else if (v->type == RP_V_BOOL) {
        subj = v->b ? "true" : "false";
        len = strlen(subj);
    } else if (v->type != RP_V_STRING) {
        snprintf(c->note_buf, sizeof(c->note_buf), "matches needs a string, got %s",
                 rp_value_type_name(v->type));
        c->note = c->note_buf;
        return -1;
    }
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    int rc = pcre2_match(e->re, (PCRE2_SPTR)subj, len, 0, 0, md, e->mctx);
    pcre2_match_data_free(md);
    if (rc >= 0)
        return 1;
    if (rc == PCRE2_ERROR_NOMATCH)
        return 0;
    c->note = "the regular expression gave up (match limit reached)";
    return -1;
}

/* Apply the operator; 1 passed, 0 failed. A failure for a reason other than the comparison
 * itself (wrong type, missing value) leaves that reason in c->note. */
static int apply(struct ctx *c, const struct rp_expr *e, const struct view *l,
                 const struct view *rv, const char *rnote)
{
    int res = 0;
    if (e->op == OP_NONE)
        return l->type != RP_V_MISSING && l->type != RP_V_NULL && !(l->type == RP_V_BOOL && !l->b);
    if (e->op == OP_EXISTS)
        return (l->type != RP_V_MISSING) != e->negate;
    if (l->type == RP_V_MISSING)
        return 0;
    if (e->has_rhs && rv->type == RP_V_MISSING) {
        c->note = rnote ? rnote : "the right side has no value";
        return 0;
    }
    switch (e->op) {
    case OP_EQ:
        return view_eq(l, rv, 0);
    case OP_NE:
        return !view_eq(l, rv, 0);
    case OP_LT:
    case OP_LE:
    case OP_GT:
    case OP_GE: {
        int cmp = view_cmp(l, rv);
        if (cmp == -2) {
            snprintf(c->note_buf, sizeof(c->note_buf), "cannot order a %s against a %s",
                     rp_value_type_name(l->type), rp_value_type_name(rv->type));
            c->note = c->note_buf;
            return 0;
        }
        return e->op == OP_LT   ? cmp < 0
               : e->op == OP_LE ? cmp <= 0
               : e->op == OP_GT ? cmp > 0
                                : cmp >= 0;
    }
    case OP_CONTAINS:
        if (l->type == RP_V_STRING && rv->type == RP_V_STRING) {
            res = rv->len == 0 || find(l->str, l->len, rv->str, rv->len);
        } else if (l->type == RP_V_ARRAY) {
            res = array_has(l, rv);
        } else if (l->type == RP_V_OBJECT && rv->type == RP_V_STRING) {
            bson_iter_t child;
            res = bson_iter_recurse(&l->it, &child) &&
                  bson_iter_find_w_len(&child, rv->str, (int)rv->len);
        } else {
            snprintf(c->note_buf, sizeof(c->note_buf),
                     "contains needs a string in a string, a value in an array or a key in an "
                     "object, got %s and %s",
                     rp_value_type_name(l->type), rp_value_type_name(rv->type));
            c->note = c->note_buf;
            return 0;
        }
        break;
    case OP_MATCHES:
        res = regex_match(c, e, l);
        if (res < 0)
            return 0;
        break;
    case OP_IN:
        if (rv->type != RP_V_ARRAY) {
            snprintf(c->note_buf, sizeof(c->note_buf), "in needs a list on the right, got %s",
                     rp_value_type_name(rv->type));
            c->note = c->note_buf;
            return 0;
        }
        res = array_has(rv, l);
        break;
    case OP_IS:
        res = type_is(l, e->type);
        break;
    default:
        return 0;
    }
    return res != e->negate;
}

/* "expected > 18" / "expected 200" / "expected is not null" / "expected to exist". */
static void put_expected(struct rp_buf *b, const struct rp_expr *e, const struct view *rv)
{
    const char *neg = e->negate ? "not " : "";
    switch (e->op) {
    case OP_NONE:
        (void)rp_buf_printf(b, "expected a value other than false or null");
        return;
    case OP_EXISTS:
        (void)rp_buf_printf(b, "expected %sto exist", neg);
        return;
    case OP_IS:
        (void)rp_buf_printf(b, "expected is %s%s", neg, rp_expr_type_names[e->type]);
        return;
    case OP_EQ:
        (void)rp_buf_printf(b, "expected ");
        break;
    default:
        (void)rp_buf_printf(b, "expected %s%s ", neg, rp_expr_op_names[e->op]);
        break;
    }
    char *r = show(rv, SHOW_MAX);
    (void)rp_buf_printf(b, "%s", r);
    free(r);
    if (e->rhs.kind != O_LIT)
        (void)rp_buf_printf(b, " (%s)", e->rhs.label);
}

static char *message(const struct rp_expr *e, const char *label, size_t match_no,
                     const struct view *rv, const char *got, const char *note)
{
    struct rp_buf b;
    rp_buf_init(&b, 0);
    (void)rp_buf_printf(&b, "%s", label);
    if (match_no)
        (void)rp_buf_printf(&b, " (match %zu)", match_no);
    (void)rp_buf_printf(&b, ": ");
    put_expected(&b, e, rv);
    (void)rp_buf_printf(&b, ", got %s", got);
    if (note)
        (void)rp_buf_printf(&b, " (%s)", note);
    return b.data;
}

struct each {
    struct ctx *c;
    const struct rp_expr *e;
    const struct view *rv;
    const char *rnote;
    size_t n;
    size_t failed_at; /* 1-based match number of the first failure, 0: none */
    char *fail_got;
    const char *fail_note;
    struct rp_buf all; /* JSON array of the matches, for `actual` */
};

static int each_fn(const bson_iter_t *match, void *ud)
{
    struct each *w = ud;
    struct rp_value tmp = {0};
    struct view v;
    w->n++;
    view_from_iter(&v, match, &tmp);
    w->c->note = NULL;
    int pass = apply(w->c, w->e, &v, w->rv, w->rnote);
    if (!pass) {
        w->failed_at = w->n;
        w->fail_got = show(&v, ACTUAL_MAX);
        w->fail_note = w->c->note;
    } else if (w->all.len <= ACTUAL_MAX) {
        char *s = show(&v, ACTUAL_MAX);
        (void)rp_buf_append(&w->all, w->n > 1 ? "," : "[", 1);
        (void)rp_buf_append(&w->all, s, strlen(s));
        free(s);
    }
    rp_value_clear(&tmp);
    return !pass;
}

static char *cap_text(char *s, size_t max)
{
    size_t n = strlen(s);
    if (n <= max)
        return s;
    size_t keep = max - 3;
    while (keep > 0 && ((unsigned char)s[keep] & 0xC0) == 0x80)
        keep--;
    memcpy(s + keep, "...", 4);
    return s;
}

void rp_expr_check(const struct rp_expr *e, const struct rp_response_view *r, struct rp_check *out)
{
    struct ctx lc = {r, NULL, {0}}, rc = {r, NULL, {0}};
    struct rp_value ltmp = {0}, rtmp = {0};
    struct view lv, rv;
    bson_iter_t root;

    memset(out, 0, sizeof(*out));
    memset(&rv, 0, sizeof(rv));
    if (e->has_rhs)
        eval_single(&rc, &e->rhs, &rv, &rtmp);

    if (e->lhs.kind == O_PATH && rp_jsonpath_is_multi(e->lhs.path) && e->op != OP_NONE &&
        e->op != OP_EXISTS) {
        /* every match must pass, and there must be one */
        struct each w = {&lc, e, &rv, rc.note, 0, 0, NULL, NULL, {0}};
        rp_buf_init(&w.all, 0);
        if (body_root(&lc, &root))
            (void)rp_jsonpath_eval(e->lhs.path, &root, each_fn, &w);
        if (w.n == 0) {
            out->actual = rp_xstrdup("[]");
            out->message = message(e, e->lhs.label, 0, &rv, "no match", lc.note);
        } else if (w.failed_at) {
            out->actual = w.fail_got;
            w.fail_got = NULL;
            out->message = message(e, e->lhs.label, w.failed_at, &rv, out->actual, w.fail_note);
        } else {
            (void)rp_buf_append(&w.all, "]", 1);
            out->passed = 1;
            out->actual = cap_text(w.all.data, ACTUAL_MAX);
            w.all.data = NULL;
            out->message = message(e, e->lhs.label, 0, &rv, out->actual, NULL);
        }
        rp_buf_cleanup(&w.all);
        free(w.fail_got);
    } else {
        eval_single(&lc, &e->lhs, &lv, &ltmp);
        const char *missing_note = lc.note;
        bson_iter_t child;
        if (e->op == OP_EXISTS && e->lhs.kind == O_PATH && rp_jsonpath_is_multi(e->lhs.path) &&
            lv.type == RP_V_ARRAY && !(bson_iter_recurse(&lv.it, &child) && bson_iter_next(&child)))
            lv.type = RP_V_MISSING; /* a wildcard exists when it matches something */
        out->passed = apply(&lc, e, &lv, &rv, rc.note);
        out->actual = show(&lv, ACTUAL_MAX);
        const char *note = out->passed ? NULL : lc.note ? lc.note : missing_note;
        if (e->op == OP_EXISTS && lv.type == RP_V_MISSING && out->passed)
            note = NULL;
        out->message = message(e, e->lhs.label, 0, &rv, out->actual, note);
    }
    rp_value_clear(&ltmp);
    rp_value_clear(&rtmp);
}

void rp_expr_value(const struct rp_expr *e, const struct rp_response_view *r, struct rp_value *out,
                   int *secret)
{
    struct ctx c = {r, NULL, {0}};
    struct rp_value tmp = {0};
    struct view v;

    memset(out, 0, sizeof(*out));
    if (secret)
        *secret = 0;
    if (e->op != OP_NONE) {
        struct rp_check chk;
        rp_expr_check(e, r, &chk);
        out->type = RP_V_BOOL;
        out->b = chk.passed;
        rp_check_clear(&chk);
        return;
    }
    eval_single(&c, &e->lhs, &v, &tmp);
    view_to_value(&v, out);
    if (secret)
        *secret = v.secret;
    rp_value_clear(&tmp);
}
