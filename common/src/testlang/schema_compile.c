/* JSON Schema, compiling (a documented subset of draft 2020-12 / draft-07): a schema document
 * is compiled once into a tree of nodes (patterns compiled by PCRE2 with match limits, $refs
 * resolved to nodes), and a problem is reported with its location as a JSON pointer. Checking
 * a body against the tree is in schema_check.c; the string formats are in formats.c. */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "rampart/mem.h"
#include "schema_int.h"

#define MAX_COMPILE_DEPTH 128 /* nested schemas in a schema document */
#define MATCH_LIMIT       100000
#define DEPTH_LIMIT       10000

const char *const rp_schema_type_names[] = {"null",   "boolean", "integer", "number",
                                            "string", "array",   "object"};
const char *const rp_schema_format_names[] = {"", "email", "uri", "uuid", "date-time"};

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

void rp_schema_free(struct rp_schema *s)
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
    struct rp_schema *s;
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

const char *rp_schema_bson_type_name(const bson_iter_t *it)
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

int rp_schema_num_of(const bson_iter_t *it, double *out)
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
    if (!rp_schema_num_of(it, &d) || d < 0 || d != floor(d) || d > 9.0e15)
        return cfail(c, key, "must be a non-negative integer");
    *out = (int64_t)d;
    return RP_OK;
}

static int get_number(struct cctx *c, const bson_iter_t *it, const char *key, double *out)
{
    if (!rp_schema_num_of(it, out) || !isfinite(*out))
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
        while (k < sizeof(rp_schema_type_names) / sizeof(rp_schema_type_names[0]) &&
               strcmp(rp_schema_type_names[k], name))
            k++;
        if (k == sizeof(rp_schema_type_names) / sizeof(rp_schema_type_names[0]))
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
    for (int k = 1; k < (int)(sizeof(rp_schema_format_names) / sizeof(rp_schema_format_names[0]));
         k++)
        if (strcmp(f, rp_schema_format_names[k]) == 0)
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
                     rp_schema_bson_type_name(it));
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

static const struct node *resolve_ref(const struct rp_schema *s, const char *ref)
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

int rp_schema_compile(const bson_t *schema, struct rp_schema **out, struct rp_error *err)
{
    int rc = RP_EINVAL;
    bson_iter_t it;
    struct cctx c = {0};
    c.s = rp_xcalloc(1, sizeof(*c.s));
    c.err = err;
    rp_buf_init(&c.loc, MAX_PATH);
    (void)rp_buf_append(&c.loc, "#", 1);
    if (rp_json_root(schema, &it) != RP_OK) {
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
    rp_schema_free(c.s);
    for (size_t i = 0; i < c.n_refs; i++)
        free(c.ref_locs[i]);
    free(c.ref_locs);
    free(c.refs);
    rp_buf_cleanup(&c.loc);
    return rc;
}
