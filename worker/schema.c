/* JSON Schema validation (a documented subset of draft 2020-12 / draft-07) and the string
 * formats shared with the expression language. A schema is compiled once into a tree of nodes
 * (patterns compiled by PCRE2 with match limits, $refs resolved to nodes); checking a body
 * walks the tree and the libbson value together and stops at the first violation, named by
 * its instance location in JSON-path form ("$.user.age: 12 is less than minimum 18").
 * Recursion is bounded twice: a depth limit (a $ref cycle that never descends into the
 * instance) and a step budget (schemas whose combinators multiply the work). */
#define PCRE2_CODE_UNIT_WIDTH 8

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <pcre2.h>

#include "rampart/mem.h"
#include "worker.h"

#define MAX_COMPILE_DEPTH 128     /* nested schemas in a schema document */
#define MAX_DEPTH         200     /* validation recursion (instance depth + $ref chains) */
#define MAX_STEPS         1000000 /* schema nodes visited in one check, at least; more for */
#define STEPS_PER_BYTE    16      /* big bodies: 16 per byte of the instance */
#define MAX_PATH          1024    /* bytes of an instance location in a message */
#define SHOWN             64      /* bytes of a value quoted in a message */
#define ACTUAL_MAX        1024    /* bytes of `actual` */
#define MATCH_LIMIT       100000
#define DEPTH_LIMIT       10000

/* ==== formats ============================================================================= */

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 1;
}

static int is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_alnum(char c)
{
    return is_alpha(c) || is_digit(c);
}

static int is_xdigit(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

int wrk_is_uuid(const char *s)
{
    size_t i;
    for (i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        } else if (!is_xdigit(s[i])) {
            return 0;
        }
    }
    return s[i] == '\0';
}

int wrk_is_date_time(const char *s)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, mo, d, h, mi, sec, oh, om;
    size_t n = strlen(s);
    if (n < 20 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
        !digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') || !digits(s + 11, 2, &h) ||
        s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' || !digits(s + 17, 2, &sec))
        return 0;
    if (mo < 1 || mo > 12 || h > 23 || mi > 59 || sec > 60)
        return 0;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d < 1 || d > mdays[mo - 1] + (mo == 2 && leap))
        return 0;
    size_t i = 19;
    if (s[i] == '.') {
        size_t f = ++i;
        while (is_digit(s[i]))
            i++;
        if (i == f)
            return 0;
    }
    if (s[i] == 'Z' || s[i] == 'z')
        return s[i + 1] == '\0';
    if ((s[i] == '+' || s[i] == '-') && n - i == 6 && digits(s + i + 1, 2, &oh) &&
        s[i + 3] == ':' && digits(s + i + 4, 2, &om))
        return oh <= 23 && om <= 59;
    return 0;
}

/* A DNS name: see wrk_is_email in worker.h. */
static int is_hostname(const char *s, size_t n)
{
    size_t labels = 0, start = 0;
    int all_digits = 1;
    if (n == 0 || n > 253)
        return 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == '.') {
            size_t len = i - start;
            if (len == 0 || len > 63 || s[start] == '-' || s[i - 1] == '-')
                return 0;
            labels++;
            if (i < n)
                all_digits = 1;
            start = i + 1;
        } else if (is_alnum(s[i]) || s[i] == '-') {
            if (!is_digit(s[i]))
                all_digits = 0;
        } else {
            return 0;
        }
    }
    return labels >= 2 && !all_digits;
}

int wrk_is_email(const char *s)
{
    const char *at = strchr(s, '@');
    if (!at)
        return 0;
    size_t local = (size_t)(at - s);
    if (local == 0 || local > 64 || s[0] == '.' || s[local - 1] == '.')
        return 0;
    for (size_t i = 0; i < local; i++) {
        char c = s[i];
        if (!(is_alnum(c) || strchr("!#$%&'*+/=?^_`{|}~.-", c)))
            return 0;
        if (c == '.' && s[i + 1] == '.')
            return 0;
    }
    return is_hostname(at + 1, strlen(at + 1));
}

int wrk_is_url(const char *s)
{
    size_t n = strlen(s), i = 0;
    for (size_t k = 0; k < n; k++) {
        unsigned char c = (unsigned char)s[k];
        if (c <= 0x20 || c >= 0x7f || strchr("\"<>\\^`{|}", c))
            return 0;
    }
    if (n == 0 || !is_alpha(s[0]))
        return 0;
    while (i < n && (is_alnum(s[i]) || s[i] == '+' || s[i] == '.' || s[i] == '-'))
        i++;
    if (n - i < 3 || memcmp(s + i, "://", 3) != 0)
        return 0;
    i += 3;
    size_t end = i;
    while (end < n && s[end] != '/' && s[end] != '?' && s[end] != '#')
        end++;
    for (size_t k = i; k < end; k++) /* userinfo@: the host starts after the last @ */
        if (s[k] == '@')
            i = k + 1;
    size_t host = i;
    if (i < end && s[i] == '[') {
        while (i < end && s[i] != ']') {
            if (i > host && !is_xdigit(s[i]) && s[i] != ':' && s[i] != '.')
                return 0;
            i++;
        }
        if (i >= end || i == host + 1)
            return 0;
        i++;
    } else {
        while (i < end && (is_alnum(s[i]) || s[i] == '.' || s[i] == '-' || s[i] == '_'))
            i++;
        if (i == host || strchr(".-", s[host]) || strchr(".-", s[i - 1]))
            return 0;
    }
    if (i < end && s[i] == ':') {
        int port;
        size_t plen = end - i - 1;
        if (plen < 1 || plen > 5 || !digits(s + i + 1, (int)plen, &port) || port > 65535)
            return 0;
        i = end;
    }
    return i == end;
}

/* ==== the compiled tree =================================================================== */

enum {
    T_NULL = 1 << 0,
    T_BOOLEAN = 1 << 1,
    T_INTEGER = 1 << 2,
    T_NUMBER = 1 << 3,
    T_STRING = 1 << 4,
    T_ARRAY = 1 << 5,
    T_OBJECT = 1 << 6,
};
static const char *const type_names[] = {"null",   "boolean", "integer", "number",
                                         "string", "array",   "object"};

enum format { F_NONE = 0, F_EMAIL, F_URI, F_UUID, F_DATE_TIME };
static const char *const format_names[] = {"", "email", "uri", "uuid", "date-time"};

struct prop {
    char *name;
    size_t len;
    struct node *schema;
};

struct list {
    struct node **v;
    size_t n;
};

struct node {
    int boolean; /* -1: an object schema; 0: `false` (nothing valid); 1: `true` */
    unsigned types;
    bson_t *enum_doc;  /* {"v": [...]} */
    bson_t *const_doc; /* {"v": value} */
    struct prop *props;
    size_t n_props;
    char **required;
    size_t n_required;
    struct node *additional; /* NULL: anything */
    struct node *items;
    int64_t min_items, max_items, min_length, max_length; /* -1: absent */
    int unique_items;
    pcre2_code *re;
    char *pattern;
    enum format format;
    int has_min, has_max, has_xmin, has_xmax, has_mult;
    double min, max, xmin, xmax, mult;
    struct list all_of, any_of, one_of;
    struct node *not_;
    char *ref;
    const struct node *target; /* resolved $ref, owned elsewhere */
};

struct def {
    int legacy; /* 1: "definitions", 0: "$defs" */
    char *name;
    struct node *node;
};

struct wrk_schema {
    struct node *root;
    struct def *defs;
    size_t n_defs;
    pcre2_match_context *mctx;
};

static void node_free(struct node *n);

static void list_free(struct list *l)
{
    for (size_t i = 0; i < l->n; i++)
        node_free(l->v[i]);
    free(l->v);
}

static void node_free(struct node *n)
{
    if (!n)
        return;
    if (n->enum_doc)
        bson_destroy(n->enum_doc);
    if (n->const_doc)
        bson_destroy(n->const_doc);
    for (size_t i = 0; i < n->n_props; i++) {
        free(n->props[i].name);
        node_free(n->props[i].schema);
    }
    free(n->props);
    for (size_t i = 0; i < n->n_required; i++)
        free(n->required[i]);
    free(n->required);
    node_free(n->additional);
    node_free(n->items);
    pcre2_code_free(n->re);
    free(n->pattern);
    list_free(&n->all_of);
    list_free(&n->any_of);
    list_free(&n->one_of);
    node_free(n->not_);
    free(n->ref);
    free(n);
}

void wrk_schema_free(struct wrk_schema *s)
{
    if (!s)
        return;
    node_free(s->root);
    for (size_t i = 0; i < s->n_defs; i++) {
        free(s->defs[i].name);
        node_free(s->defs[i].node);
    }
    free(s->defs);
    pcre2_match_context_free(s->mctx);
    free(s);
}

/* ==== compiling =========================================================================== */

struct cctx {
    struct wrk_schema *s;
    struct rp_buf loc; /* "#/properties/age" */
    struct rp_error *err;
    struct node **refs; /* nodes with a $ref, resolved at the end */
    char **ref_locs;
    size_t n_refs;
    int depth;
};

/* Append a JSON-pointer step (~ and / escaped) to the location. */
static void loc_push(struct rp_buf *loc, const char *key)
{
    (void)rp_buf_append(loc, "/", 1);
    for (const char *p = key; *p; p++) {
        if (*p == '~')
            (void)rp_buf_append(loc, "~0", 2);
        else if (*p == '/')
            (void)rp_buf_append(loc, "~1", 2);
        else
            (void)rp_buf_append(loc, p, 1);
    }
}

static int cfail(struct cctx *c, const char *key, const char *fmt, ...) RP_PRINTF(3, 4);

/* Report a malformed schema at the current location (+ `key` when not NULL). */
static int cfail(struct cctx *c, const char *key, const char *fmt, ...)
{
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    size_t keep = c->loc.len;
    if (key)
        loc_push(&c->loc, key);
    int rc =
        rp_error_set(c->err, RP_EINVAL, "schema %s: %s", c->loc.data ? c->loc.data : "#", what);
    c->loc.len = keep;
    if (c->loc.data)
        c->loc.data[keep] = '\0';
    return rc;
}

static const char *bson_type_name(const bson_iter_t *it)
{
    switch (bson_iter_type(it)) {
    case BSON_TYPE_DOUBLE:
    case BSON_TYPE_INT32:
    case BSON_TYPE_INT64:
    case BSON_TYPE_DECIMAL128:
        return "number";
    case BSON_TYPE_UTF8:
        return "string";
    case BSON_TYPE_BOOL:
        return "boolean";
    case BSON_TYPE_NULL:
    case BSON_TYPE_UNDEFINED:
        return "null";
    case BSON_TYPE_ARRAY:
        return "array";
    case BSON_TYPE_DOCUMENT:
        return "object";
    default:
        return "string";
    }
}

static int num_of(const bson_iter_t *it, double *out)
{
    switch (bson_iter_type(it)) {
    case BSON_TYPE_DOUBLE:
        *out = bson_iter_double(it);
        return 1;
    case BSON_TYPE_INT32:
        *out = bson_iter_int32(it);
        return 1;
    case BSON_TYPE_INT64:
        *out = (double)bson_iter_int64(it);
        return 1;
    case BSON_TYPE_DECIMAL128: {
        bson_decimal128_t d;
        char s[BSON_DECIMAL128_STRING];
        bson_iter_decimal128(it, &d);
        bson_decimal128_to_string(&d, s);
        *out = strtod(s, NULL);
        return 1;
    }
    default:
        return 0;
    }
}

static int compile_node(struct cctx *c, const bson_iter_t *it, struct node **out);

/* Compile the schema under `key` of the current object, with the location extended. */
static int compile_child(struct cctx *c, const bson_iter_t *it, const char *key, const char *key2,
                         struct node **out)
{
    size_t keep = c->loc.len;
    loc_push(&c->loc, key);
    if (key2)
        loc_push(&c->loc, key2);
    int rc = compile_node(c, it, out);
    if (rc == RP_OK) {
        c->loc.len = keep;
        c->loc.data[keep] = '\0';
    }
    return rc;
}

static int get_count(struct cctx *c, const bson_iter_t *it, const char *key, int64_t *out)
{
    double d;
    if (!num_of(it, &d) || d < 0 || d != floor(d) || d > 9.0e15)
        return cfail(c, key, "must be a non-negative integer");
    *out = (int64_t)d;
    return RP_OK;
}

static int get_number(struct cctx *c, const bson_iter_t *it, const char *key, double *out)
{
    if (!num_of(it, out) || !isfinite(*out))
        return cfail(c, key, "must be a number");
    return RP_OK;
}

static int compile_list(struct cctx *c, const bson_iter_t *it, const char *key, struct list *l)
{
    bson_iter_t child;
    if (!BSON_ITER_HOLDS_ARRAY(it) || !bson_iter_recurse(it, &child))
        return cfail(c, key, "must be a non-empty array of schemas");
    while (bson_iter_next(&child)) {
        l->v = rp_xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
        l->v[l->n] = NULL;
        int rc = compile_child(c, &child, key, bson_iter_key(&child), &l->v[l->n]);
        l->n++;
        if (rc != RP_OK)
            return rc;
    }
    if (l->n == 0)
        return cfail(c, key, "must be a non-empty array of schemas");
    return RP_OK;
}

static int compile_type(struct cctx *c, const bson_iter_t *it, struct node *n)
{
    bson_iter_t one = *it, child;
    int is_list = BSON_ITER_HOLDS_ARRAY(it);
    if (is_list && !bson_iter_recurse(it, &child))
        return cfail(c, "type", "must be a type name or an array of them");
    for (;;) {
        if (is_list) {
            if (!bson_iter_next(&child))
                break;
            one = child;
        }
        if (!BSON_ITER_HOLDS_UTF8(&one))
            return cfail(c, "type", "must be a type name or an array of them");
        const char *name = bson_iter_utf8(&one, NULL);
        size_t k = 0;
        while (k < sizeof(type_names) / sizeof(type_names[0]) && strcmp(type_names[k], name))
            k++;
        if (k == sizeof(type_names) / sizeof(type_names[0]))
            return cfail(c, "type",
                         "unknown type \"%.64s\" (expected null, boolean, integer, number, "
                         "string, array or object)",
                         name);
        n->types |= 1u << k;
        if (!is_list)
            break;
    }
    if (!n->types)
        return cfail(c, "type", "must name at least one type");
    return RP_OK;
}

static int compile_pattern(struct cctx *c, const bson_iter_t *it, struct node *n)
{
    uint32_t len;
    int code;
    PCRE2_SIZE off;
    if (!BSON_ITER_HOLDS_UTF8(it))
        return cfail(c, "pattern", "must be a string (a regular expression)");
    const char *src = bson_iter_utf8(it, &len);
    n->re =
        pcre2_compile((PCRE2_SPTR)src, len, PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &code, &off, NULL);
    if (!n->re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof(msg));
        return cfail(c, "pattern", "invalid regular expression at offset %zu: %s", (size_t)off,
                     (const char *)msg);
    }
    (void)pcre2_jit_compile(n->re, PCRE2_JIT_COMPLETE); /* interpreted when JIT is missing */
    n->pattern = rp_xstrndup(src, len);
    return RP_OK;
}

static int compile_props(struct cctx *c, const bson_iter_t *it, struct node *n)
{
    bson_iter_t child;
    if (!BSON_ITER_HOLDS_DOCUMENT(it) || !bson_iter_recurse(it, &child))
        return cfail(c, "properties", "must be an object of schemas");
    while (bson_iter_next(&child)) {
        n->props = rp_xrealloc(n->props, (n->n_props + 1) * sizeof(*n->props));
        struct prop *p = &n->props[n->n_props++];
        p->len = bson_iter_key_len(&child);
        p->name = rp_xstrndup(bson_iter_key(&child), p->len);
        p->schema = NULL;
        int rc = compile_child(c, &child, "properties", p->name, &p->schema);
        if (rc != RP_OK)
            return rc;
    }
    return RP_OK;
}

static int compile_required(struct cctx *c, const bson_iter_t *it, struct node *n)
{
    bson_iter_t child;
    if (!BSON_ITER_HOLDS_ARRAY(it) || !bson_iter_recurse(it, &child))
        return cfail(c, "required", "must be an array of property names");
    while (bson_iter_next(&child)) {
        if (!BSON_ITER_HOLDS_UTF8(&child))
            return cfail(c, "required", "must be an array of property names (strings)");
        n->required = rp_xrealloc(n->required, (n->n_required + 1) * sizeof(*n->required));
        n->required[n->n_required++] = rp_xstrdup(bson_iter_utf8(&child, NULL));
    }
    return RP_OK;
}

static int compile_format(struct cctx *c, const bson_iter_t *it, struct node *n)
{
    if (!BSON_ITER_HOLDS_UTF8(it))
        return cfail(c, "format", "must be a string");
    const char *f = bson_iter_utf8(it, NULL);
    for (int k = 1; k < (int)(sizeof(format_names) / sizeof(format_names[0])); k++)
        if (strcmp(f, format_names[k]) == 0)
            n->format = (enum format)k;
    if (strcmp(f, "url") == 0)
        n->format = F_URI;
    return RP_OK; /* other formats are annotations only, as the standard allows */
}

/* Copy the value `it` is on into a new {"v": value}. */
static bson_t *wrap(const bson_iter_t *it)
{
    bson_t *d = bson_new();
    bson_append_iter(d, "v", 1, it);
    return d;
}

static int compile_ref(struct cctx *c, const bson_iter_t *it, struct node *n)
{
    if (!BSON_ITER_HOLDS_UTF8(it))
        return cfail(c, "$ref", "must be a string");
    n->ref = rp_xstrdup(bson_iter_utf8(it, NULL));
    c->refs = rp_xrealloc(c->refs, (c->n_refs + 1) * sizeof(*c->refs));
    c->ref_locs = rp_xrealloc(c->ref_locs, (c->n_refs + 1) * sizeof(*c->ref_locs));
    c->refs[c->n_refs] = n;
    c->ref_locs[c->n_refs++] = rp_xasprintf("%s/$ref", c->loc.data ? c->loc.data : "#");
    return RP_OK;
}

static const char *const keywords[] = {"type",
                                       "enum",
                                       "const",
                                       "properties",
                                       "required",
                                       "additionalProperties",
                                       "items",
                                       "minItems",
                                       "maxItems",
                                       "minLength",
                                       "maxLength",
                                       "uniqueItems",
                                       "pattern",
                                       "format",
                                       "minimum",
                                       "maximum",
                                       "exclusiveMinimum",
                                       "exclusiveMaximum",
                                       "multipleOf",
                                       "allOf",
                                       "anyOf",
                                       "oneOf",
                                       "not",
                                       "$ref",
                                       "$defs",
                                       "definitions"};

/* One keyword of an object schema. Unknown keywords are ignored; a known one given twice (JSON
 * allows duplicate members) is refused rather than guessed at. */
static int compile_keyword(struct cctx *c, const bson_iter_t *it, struct node *n, int is_root,
                           uint32_t *seen)
{
    const char *k = bson_iter_key(it);
    int b;
    for (size_t i = 0; i < sizeof(keywords) / sizeof(keywords[0]); i++) {
        if (strcmp(k, keywords[i]) == 0) {
            if (*seen & (1u << i))
                return cfail(c, k, "the keyword appears twice");
            *seen |= 1u << i;
            break;
        }
    }
    if (!strcmp(k, "type"))
        return compile_type(c, it, n);
    if (!strcmp(k, "enum")) {
        if (!BSON_ITER_HOLDS_ARRAY(it))
            return cfail(c, k, "must be an array");
        n->enum_doc = wrap(it);
        return RP_OK;
    }
    if (!strcmp(k, "const")) {
        n->const_doc = wrap(it);
        return RP_OK;
    }
    if (!strcmp(k, "properties"))
        return compile_props(c, it, n);
    if (!strcmp(k, "required"))
        return compile_required(c, it, n);
    if (!strcmp(k, "additionalProperties"))
        return compile_child(c, it, k, NULL, &n->additional);
    if (!strcmp(k, "items")) {
        if (BSON_ITER_HOLDS_ARRAY(it))
            return cfail(c, k, "the array (tuple) form is not supported; give one schema");
        return compile_child(c, it, k, NULL, &n->items);
    }
    if (!strcmp(k, "minItems"))
        return get_count(c, it, k, &n->min_items);
    if (!strcmp(k, "maxItems"))
        return get_count(c, it, k, &n->max_items);
    if (!strcmp(k, "minLength"))
        return get_count(c, it, k, &n->min_length);
    if (!strcmp(k, "maxLength"))
        return get_count(c, it, k, &n->max_length);
    if (!strcmp(k, "uniqueItems")) {
        if (!BSON_ITER_HOLDS_BOOL(it))
            return cfail(c, k, "must be true or false");
        n->unique_items = bson_iter_bool(it);
        return RP_OK;
    }
    if (!strcmp(k, "pattern"))
        return compile_pattern(c, it, n);
    if (!strcmp(k, "format"))
        return compile_format(c, it, n);
    if (!strcmp(k, "minimum"))
        return (n->has_min = 1, get_number(c, it, k, &n->min));
    if (!strcmp(k, "maximum"))
        return (n->has_max = 1, get_number(c, it, k, &n->max));
    if (!strcmp(k, "exclusiveMinimum") || !strcmp(k, "exclusiveMaximum")) {
        int is_min = k[9] == 'M' && k[10] == 'i';
        if (BSON_ITER_HOLDS_BOOL(it)) { /* draft-04: a flag on minimum / maximum */
            b = bson_iter_bool(it);
            if (is_min)
                n->has_xmin = b ? 2 : n->has_xmin;
            else
                n->has_xmax = b ? 2 : n->has_xmax;
            return RP_OK;
        }
        if (is_min)
            return (n->has_xmin = 1, get_number(c, it, k, &n->xmin));
        return (n->has_xmax = 1, get_number(c, it, k, &n->xmax));
    }
    if (!strcmp(k, "multipleOf")) {
        n->has_mult = 1;
        if (get_number(c, it, k, &n->mult) != RP_OK || n->mult <= 0)
            return cfail(c, k, "must be a number greater than 0");
        return RP_OK;
    }
    if (!strcmp(k, "allOf"))
        return compile_list(c, it, k, &n->all_of);
    if (!strcmp(k, "anyOf"))
        return compile_list(c, it, k, &n->any_of);
    if (!strcmp(k, "oneOf"))
        return compile_list(c, it, k, &n->one_of);
    if (!strcmp(k, "not"))
        return compile_child(c, it, k, NULL, &n->not_);
    if (!strcmp(k, "$ref"))
        return compile_ref(c, it, n);
    if (is_root && (!strcmp(k, "$defs") || !strcmp(k, "definitions"))) {
        bson_iter_t child;
        if (!BSON_ITER_HOLDS_DOCUMENT(it) || !bson_iter_recurse(it, &child))
            return cfail(c, k, "must be an object of schemas");
        while (bson_iter_next(&child)) {
            c->s->defs = rp_xrealloc(c->s->defs, (c->s->n_defs + 1) * sizeof(*c->s->defs));
            struct def *d = &c->s->defs[c->s->n_defs++];
            d->legacy = k[0] == 'd';
            d->name = rp_xstrdup(bson_iter_key(&child));
            d->node = NULL;
            int rc = compile_child(c, &child, k, d->name, &d->node);
            if (rc != RP_OK)
                return rc;
        }
    }
    return RP_OK;
}

static int compile_node(struct cctx *c, const bson_iter_t *it, struct node **out)
{
    bson_iter_t child;
    struct node *n = rp_xcalloc(1, sizeof(*n));
    n->boolean = -1;
    n->min_items = n->max_items = n->min_length = n->max_length = -1;
    *out = n; /* owned by the parent from here on, also on failure */
    if (BSON_ITER_HOLDS_BOOL(it)) {
        n->boolean = bson_iter_bool(it);
        return RP_OK;
    }
    if (!BSON_ITER_HOLDS_DOCUMENT(it) || !bson_iter_recurse(it, &child))
        return cfail(c, NULL, "a schema must be an object or a boolean, got %s",
                     bson_type_name(it));
    if (++c->depth > MAX_COMPILE_DEPTH)
        return cfail(c, NULL, "schemas nested deeper than %d", MAX_COMPILE_DEPTH);
    int is_root = c->depth == 1;
    uint32_t seen = 0;
    while (bson_iter_next(&child)) {
        int rc = compile_keyword(c, &child, n, is_root, &seen);
        if (rc != RP_OK)
            return rc;
    }
    c->depth--;
    if (n->has_xmin == 2) { /* draft-04 exclusiveMinimum: true */
        n->has_xmin = n->has_min;
        n->xmin = n->min;
        n->has_min = 0;
    }
    if (n->has_xmax == 2) {
        n->has_xmax = n->has_max;
        n->xmax = n->max;
        n->has_max = 0;
    }
    return RP_OK;
}

/* Decode a JSON-pointer token (~0 ~1) in place. */
static void unescape_pointer(char *s)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        if (r[0] == '~' && (r[1] == '0' || r[1] == '1')) {
            *w++ = r[1] == '0' ? '~' : '/';
            r++;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
}

static const struct node *resolve_ref(const struct wrk_schema *s, const char *ref)
{
    int legacy;
    const char *name;
    if (!strcmp(ref, "#"))
        return s->root;
    if (!strncmp(ref, "#/$defs/", 8)) {
        legacy = 0;
        name = ref + 8;
    } else if (!strncmp(ref, "#/definitions/", 14)) {
        legacy = 1;
        name = ref + 14;
    } else {
        return NULL;
    }
    char *tok = rp_xstrdup(name);
    unescape_pointer(tok);
    const struct node *found = NULL;
    for (size_t i = 0; i < s->n_defs && !found; i++)
        if (s->defs[i].legacy == legacy && !strcmp(s->defs[i].name, tok))
            found = s->defs[i].node;
    free(tok);
    return found;
}

int wrk_schema_compile(const bson_t *schema, struct wrk_schema **out, struct rp_error *err)
{
    int rc = RP_EINVAL;
    bson_iter_t it;
    struct cctx c = {0};
    c.s = rp_xcalloc(1, sizeof(*c.s));
    c.err = err;
    rp_buf_init(&c.loc, MAX_PATH);
    (void)rp_buf_append(&c.loc, "#", 1);
    if (wrk_json_root(schema, &it) != RP_OK) {
        rc = rp_error_set(err, RP_EINVAL, "schema: empty document");
        goto out;
    }
    rc = compile_node(&c, &it, &c.s->root);
    if (rc != RP_OK)
        goto out;
    for (size_t i = 0; i < c.n_refs; i++) {
        c.refs[i]->target = resolve_ref(c.s, c.refs[i]->ref);
        if (!c.refs[i]->target) {
            rc = rp_error_set(err, RP_EINVAL,
                              "schema %s: cannot resolve \"%.200s\" (supported: \"#\", "
                              "\"#/$defs/NAME\" and \"#/definitions/NAME\" of this schema)",
                              c.ref_locs[i], c.refs[i]->ref);
            goto out;
        }
    }
    c.s->mctx = pcre2_match_context_create(NULL);
    pcre2_set_match_limit(c.s->mctx, MATCH_LIMIT);
    pcre2_set_depth_limit(c.s->mctx, DEPTH_LIMIT);
    *out = c.s;
    c.s = NULL;
    rc = RP_OK;
out:
    wrk_schema_free(c.s);
    for (size_t i = 0; i < c.n_refs; i++)
        free(c.ref_locs[i]);
    free(c.ref_locs);
    free(c.refs);
    rp_buf_cleanup(&c.loc);
    return rc;
}

/* ==== validating ========================================================================== */

struct vctx {
    const struct wrk_schema *s;
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
    struct wrk_value v;
    wrk_value_from_iter(&v, it);
    char *s = wrk_value_to_json(&v, max);
    wrk_value_clear(&v);
    return s;
}

static char *num_text(double d)
{
    struct wrk_value v;
    wrk_value_set_number(&v, d);
    char *s = wrk_value_to_json(&v, 0);
    wrk_value_clear(&v);
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
    if (n == 0 || !(is_alpha(k[0]) || k[0] == '_'))
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!(is_alnum(k[i]) || k[i] == '_'))
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
    if (num_of(a, &x) && num_of(b, &y))
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
    if (num_of(it, &d)) {
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
        num_of(it, num);
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
        strcat(want, type_names[k]);
    }
    return fail(v, it, "expected %s, got %s", want, bson_type_name(it));
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
        struct wrk_value val;
        wrk_value_from_iter(&val, it);
        tmp = wrk_value_to_text(&val);
        wrk_value_clear(&val);
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
            fine = fine && wrk_is_email(s);
            break;
        case F_URI:
            fine = fine && wrk_is_url(s);
            break;
        case F_UUID:
            fine = fine && wrk_is_uuid(s);
            break;
        case F_DATE_TIME:
            fine = fine && wrk_is_date_time(s);
            break;
        case F_NONE:
            break;
        }
        if (!fine) {
            fail(v, it, "\"%.*s%s\" is not a valid %s (format)", len > SHOWN ? SHOWN : (int)len, s,
                 len > SHOWN ? "..." : "", format_names[n->format]);
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
        if (wrk_json_root(n->const_doc, &c) == RP_OK && !json_equal(it, &c, 0)) {
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
        if (wrk_json_root(n->enum_doc, &e) == RP_OK && bson_iter_recurse(&e, &c))
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

void wrk_schema_check(const struct wrk_schema *s, const bson_iter_t *instance,
                      struct wrk_check *out)
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
