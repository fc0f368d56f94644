/* Test definitions: JSON text -> struct rp_test (format in docs/tests.md). Everything that can
 * be checked before a run is checked here, so a run fails only on what depends on the server:
 * unknown keys (with a "did you mean" hint), types, ranges, method tokens, URL and header
 * syntax, templates, expressions, JSON paths and schemas. The first problem wins, and its
 * message starts with where it is, in words a user can find in the file: `step 3 ("get user"),
 * assertion 2: column 9: unknown operator ...`. JSON syntax errors carry a line and column.
 * Every list and string has a cap, so a hostile definition costs bounded memory and time.
 * Here: the test, its variables and the message/scalar helpers; a step is in defn_step.c. */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rampart/mem.h"
#include "defn_int.h"

/* ==== messages ========================================================================== */

/* `s` (n bytes) made safe and short for a message: control characters, quotes and bytes of
 * invalid UTF-8 escaped, cut after 40 characters with "...". */
void rp_defn_show(char *dst, size_t cap, const char *s, size_t n)
{
    size_t j = 0, chars = 0;
    int valid = bson_utf8_validate(s, n, true);
    for (size_t i = 0; i < n && j + 8 < cap; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((!valid || (ch & 0xc0) != 0x80) && chars++ == 40) {
            memcpy(dst + j, "...", 3);
            j += 3;
            break;
        }
        if (ch == '"' || ch == '\\') {
            dst[j++] = '\\';
            dst[j++] = (char)ch;
        } else if (ch < 0x20 || ch == 0x7f || (ch >= 0x80 && !valid)) {
            j += (size_t)snprintf(dst + j, cap - j, "\\x%02x", ch);
        } else {
            dst[j++] = (char)ch;
        }
    }
    dst[j] = '\0';
}

/* Fail with "<where>, <field>: <message>" (either part may be absent). Returns RP_EINVAL. */
int rp_defn_fail(struct ctx *c, const char *field, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    int has_field = field && *field;
    if (!c->where[0] && !has_field)
        return rp_error_set(c->err, RP_EINVAL, "top level: %s", msg);
    return rp_error_set(c->err, RP_EINVAL, "%s%s%s: %s", c->where,
                        c->where[0] && has_field ? ", " : "", has_field ? field : "", msg);
}

const char *rp_defn_type_of(const bson_iter_t *it)
{
    switch (bson_iter_type(it)) {
    case BSON_TYPE_UTF8:
        return "a string";
    case BSON_TYPE_INT32:
    case BSON_TYPE_INT64:
    case BSON_TYPE_DOUBLE:
        return "a number";
    case BSON_TYPE_BOOL:
        return "a boolean";
    case BSON_TYPE_NULL:
        return "null";
    case BSON_TYPE_DOCUMENT:
        return "an object";
    case BSON_TYPE_ARRAY:
        return "an array";
    default:
        return "an extended JSON value";
    }
}

/* Edit distance (insert, delete, substitute, swap neighbours), case-insensitive; large
 * inputs are not compared (SIZE_MAX). */
static size_t distance(const char *a, const char *b)
{
    size_t n = strlen(a), m = strlen(b);
    if (n > 32 || m > 32)
        return SIZE_MAX;
    size_t d[33][33];
    for (size_t i = 0; i <= n; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= m; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= n; i++) {
        for (size_t j = 1; j <= m; j++) {
            size_t cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
            size_t v = d[i - 1][j - 1] + cost;
            if (d[i - 1][j] + 1 < v)
                v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v)
                v = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    }
    return d[n][m];
}

/* The word of `words` (NULL-terminated) closest to `s`, when close enough to be a typo. */
const char *rp_defn_closest(const char *s, const char *const *words)
{
    const char *best = NULL;
    size_t best_d = SIZE_MAX, len = strlen(s);
    size_t limit = len <= 4 ? 1 : len <= 8 ? 2 : 3;
    for (size_t i = 0; words[i]; i++) {
        size_t d = distance(s, words[i]);
        if (d <= limit && d < best_d) {
            best = words[i];
            best_d = d;
        }
    }
    return best;
}

static int unknown_key(struct ctx *c, const char *field, const char *key, const char *const *keys,
                       const struct alias *aliases)
{
    char k[SHOW_MAX], list[400] = "";
    rp_defn_show(k, sizeof(k), key, strlen(key));
    for (size_t i = 0; aliases && aliases[i].key; i++)
        if (strcasecmp(key, aliases[i].key) == 0)
            return rp_defn_fail(c, field, "unknown key `%s`; %s", k, aliases[i].hint);
    const char *near = rp_defn_closest(key, keys);
    if (near)
        return rp_defn_fail(c, field, "unknown key `%s`; did you mean `%s`?", k, near);
    for (size_t i = 0; keys[i]; i++) {
        strncat(list, i ? ", " : "", sizeof(list) - strlen(list) - 1);
        strncat(list, keys[i], sizeof(list) - strlen(list) - 1);
    }
    return rp_defn_fail(c, field, "unknown key `%s`; expected one of: %s", k, list);
}

/* Every key of the object at `obj` must be in `keys` (at most 32), and none twice. */
int rp_defn_check_keys(struct ctx *c, const bson_iter_t *obj, const char *field,
                       const char *const *keys, const struct alias *aliases)
{
    bson_iter_t ch;
    uint32_t seen = 0;
    if (!bson_iter_recurse(obj, &ch))
        return rp_defn_fail(c, field, "unreadable object");
    while (bson_iter_next(&ch)) {
        const char *k = bson_iter_key(&ch);
        size_t i = 0;
        while (keys[i] && strcmp(keys[i], k) != 0)
            i++;
        if (!keys[i])
            return unknown_key(c, field, k, keys, aliases);
        if (seen & (1u << i))
            return rp_defn_fail(c, field, "duplicate key `%s`", keys[i]);
        seen |= 1u << i;
    }
    return RP_OK;
}

/* Position `out` on member `key` of the object at `obj`; 0 when absent. */
int rp_defn_find(const bson_iter_t *obj, const char *key, bson_iter_t *out)
{
    return bson_iter_recurse(obj, out) && bson_iter_find(out, key);
}

/* Members of the object or array at `it`, counting no further than `limit` + 1. */
size_t rp_defn_count_members(const bson_iter_t *it, size_t limit)
{
    bson_iter_t ch;
    size_t n = 0;
    if (bson_iter_recurse(it, &ch))
        while (n <= limit && bson_iter_next(&ch))
            n++;
    return n;
}

/* ==== scalars =========================================================================== */

/* A string member: UTF-8, no NUL, at most `max` bytes. New string in `*out`. */
int rp_defn_get_str(struct ctx *c, const bson_iter_t *it, const char *field, size_t max, int flags,
                    char **out)
{
    if (!BSON_ITER_HOLDS_UTF8(it))
        return rp_defn_fail(c, field, "must be a string, got %s", rp_defn_type_of(it));
    uint32_t n;
    const char *s = bson_iter_utf8(it, &n);
    if (memchr(s, '\0', n))
        return rp_defn_fail(c, field, "must not contain a NUL character (\\u0000)");
    if (!bson_utf8_validate(s, n, false))
        return rp_defn_fail(c, field, "is not valid UTF-8");
    if (n == 0 && !(flags & STR_EMPTY_OK))
        return rp_defn_fail(c, field, "must not be empty");
    if (max && n > max)
        return rp_defn_fail(c, field, "is %u bytes long; the limit is %zu", n, max);
    if (flags & STR_NO_CTRL)
        for (uint32_t i = 0; i < n; i++)
            if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
                return rp_defn_fail(c, field,
                                    "must not contain control characters (tab, newline...)");
    *out = rp_xstrndup(s, n);
    return RP_OK;
}

int rp_defn_get_bool(struct ctx *c, const bson_iter_t *it, const char *field, int *out)
{
    if (!BSON_ITER_HOLDS_BOOL(it))
        return rp_defn_fail(c, field, "must be true or false, got %s", rp_defn_type_of(it));
    *out = bson_iter_bool(it);
    return RP_OK;
}

/* An integer in [min, max]: int32, int64, or a double without a fraction. */
int rp_defn_get_int(struct ctx *c, const bson_iter_t *it, const char *field, long min, long max,
                    long *out)
{
    double d;
    switch (bson_iter_type(it)) {
    case BSON_TYPE_INT32:
    case BSON_TYPE_INT64:
        d = (double)bson_iter_as_int64(it);
        break;
    case BSON_TYPE_DOUBLE:
        d = bson_iter_double(it);
        if (!isfinite(d) || d != floor(d))
            return rp_defn_fail(c, field, "must be a whole number, got %g", d);
        break;
    default:
        return rp_defn_fail(c, field, "must be a number, got %s", rp_defn_type_of(it));
    }
    if (d < (double)min || d > (double)max)
        return rp_defn_fail(c, field, "must be between %ld and %ld, got %.17g", min, max, d);
    *out = (long)d;
    return RP_OK;
}

/* Variable names a definition introduces (captures, `as`, test variables): letters, digits,
 * `_` and `-`, not starting with a digit or `-`; `.` and `[` would read into the value. */
int rp_defn_check_var_name(struct ctx *c, const char *field, const char *name)
{
    char s[SHOW_MAX];
    size_t n = strlen(name);
    rp_defn_show(s, sizeof(s), name, n);
    if (n == 0)
        return rp_defn_fail(c, field, "variable name must not be empty");
    if (n > MAX_VARNAME_LEN)
        return rp_defn_fail(c, field, "variable name `%s` is longer than %d bytes", s,
                            MAX_VARNAME_LEN);
    if (!isalpha((unsigned char)name[0]) && name[0] != '_')
        return rp_defn_fail(c, field, "variable name `%s` must start with a letter or `_`", s);
    for (size_t i = 1; i < n; i++) {
        unsigned char ch = (unsigned char)name[i];
        if (!isalnum(ch) && ch != '_' && ch != '-')
            return rp_defn_fail(
                c, field, "variable name `%s` may only contain letters, digits, `_` and `-`", s);
    }
    return RP_OK;
}

int rp_defn_check_template(struct ctx *c, const char *field, const char *tmpl)
{
    struct rp_error e = {0};
    if (rp_template_check(tmpl, &e) != RP_OK)
        return rp_defn_fail(c, field, "%s", e.msg[0] ? e.msg : "invalid template");
    return RP_OK;
}

int rp_defn_is_tchar(unsigned char ch)
{
    return isalnum(ch) || (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* ==== top-level fields ================================================================== */

static const char *const variable_keys[] = {"value", "secret", NULL};

/* Test variables: {"name": value | {"value": v, "secret": true}}. An object whose keys are
 * only `value` and `secret` (with `value` present) is the long form; any other object is a
 * value. Kept as {"v": {...}} for rp_vars_load_object at run time. */
static int parse_variables(struct ctx *c, const bson_iter_t *it, bson_t **out)
{
    bson_iter_t ch, w;
    char field[256], k[SHOW_MAX];
    if (!BSON_ITER_HOLDS_DOCUMENT(it))
        return rp_defn_fail(c, "variables", "must be an object, got %s", rp_defn_type_of(it));
    if (rp_defn_count_members(it, MAX_VARIABLES) > MAX_VARIABLES)
        return rp_defn_fail(c, "variables", "more than %d variables", MAX_VARIABLES);
    if (!bson_iter_recurse(it, &ch))
        return rp_defn_fail(c, "variables", "unreadable object");
    while (bson_iter_next(&ch)) {
        const char *name = bson_iter_key(&ch);
        rp_defn_show(k, sizeof(k), name, strlen(name));
        snprintf(field, sizeof(field), "variables.%s", k);
        if (rp_defn_check_var_name(c, "variables", name) != RP_OK)
            return RP_EINVAL;
        bson_iter_t dup = ch;
        while (bson_iter_next(&dup))
            if (strcmp(bson_iter_key(&dup), name) == 0)
                return rp_defn_fail(c, "variables", "duplicate variable `%s`", k);
        if (!BSON_ITER_HOLDS_DOCUMENT(&ch) || !rp_defn_find(&ch, "value", &w))
            continue;
        int only_long_form = 1, secret;
        if (!bson_iter_recurse(&ch, &w))
            return rp_defn_fail(c, field, "unreadable object");
        while (bson_iter_next(&w))
            only_long_form &=
                strcmp(bson_iter_key(&w), "value") == 0 || strcmp(bson_iter_key(&w), "secret") == 0;
        if (!only_long_form)
            continue;
        if (rp_defn_check_keys(c, &ch, field, variable_keys, NULL) != RP_OK)
            return RP_EINVAL;
        if (rp_defn_find(&ch, "secret", &w)) {
            snprintf(field, sizeof(field), "variables.%s.secret", k);
            if (rp_defn_get_bool(c, &w, field, &secret) != RP_OK)
                return RP_EINVAL;
        }
    }
    *out = bson_new();
    bson_append_iter(*out, "v", 1, it);
    return RP_OK;
}

static int parse_tags(struct ctx *c, const bson_iter_t *it, struct rp_test *t)
{
    bson_iter_t ch;
    char field[32];
    if (!BSON_ITER_HOLDS_ARRAY(it))
        return rp_defn_fail(c, "tags", "must be an array of strings, got %s", rp_defn_type_of(it));
    uint32_t n = 0;
    if (!bson_iter_recurse(it, &ch))
        return rp_defn_fail(c, "tags", "unreadable array");
    while (bson_iter_next(&ch))
        n++;
    if (n > MAX_TAGS)
        return rp_defn_fail(c, "tags", "has %u tags; the limit is %d", n, MAX_TAGS);
    t->tags = rp_xcalloc(n ? n : 1, sizeof(*t->tags));
    (void)bson_iter_recurse(it, &ch);
    while (bson_iter_next(&ch)) {
        snprintf(field, sizeof(field), "tags[%zu]", t->n_tags + 1);
        char *tag;
        if (rp_defn_get_str(c, &ch, field, MAX_TAG_LEN, STR_NO_CTRL, &tag) != RP_OK)
            return RP_EINVAL;
        t->tags[t->n_tags++] = tag;
    }
    return RP_OK;
}

/* ==== the test ========================================================================== */

static const char *const test_keys[] = {"version",   "name",  "description",     "tags",
                                        "variables", "steps", "stop_on_failure", NULL};
static const struct alias test_aliases[] = {
    {"vars", "did you mean `variables`?"},
    {"env", "did you mean `variables`?"},
    {"title", "did you mean `name`?"},
    {"request", "a test has `steps`, each with a `request`"},
    {"requests", "a test has `steps`, each with a `request`"},
    {"url", "a test has `steps`, each with a `request` that has the `url`"},
    {"assert", "assertions belong to a step: `steps[].assert`"},
    {NULL, NULL}};

/* "invalid JSON at byte N: ..." from rp_json_parse, with N turned into line and column
 * (columns count characters, tabs as one). */
static int json_error(const char *text, size_t len, const struct rp_error *je, struct rp_error *err)
{
    const char *p = strstr(je->msg, " at byte ");
    if (!p)
        return rp_error_set(err, je->code, "%s", je->msg);
    char *end;
    unsigned long long at = strtoull(p + 9, &end, 10);
    if (at > len)
        at = len;
    size_t line = 1, col = 1;
    for (size_t i = 0; i < at; i++) {
        if (text[i] == '\n') {
            line++;
            col = 1;
        } else if (((unsigned char)text[i] & 0xc0) != 0x80) {
            col++;
        }
    }
    return rp_error_set(err, je->code, "%.*s at line %zu, column %zu%s", (int)(p - je->msg),
                        je->msg, line, col, end);
}

int rp_test_parse(const char *json, size_t len, struct rp_test **out, struct rp_error *err)
{
    int rc = RP_EINVAL;
    bson_t *doc = NULL;
    bson_iter_t root, it, ch;
    struct rp_error je = {0};
    struct ctx c = {.err = err, .where = ""};
    struct rp_test *t = rp_xcalloc(1, sizeof(*t));

    if (len > MAX_INPUT_LEN) {
        rc = rp_error_set(err, RP_ENOMEM, "test definition is %zu bytes; the limit is 4 MiB", len);
        goto out;
    }
    if (len >= 3 && memcmp(json, "\xef\xbb\xbf", 3) == 0) { /* a BOM some editors write */
        json += 3;
        len -= 3;
    }
    size_t blank = 0;
    while (json && blank < len && strchr(" \t\r\n", json[blank]) && json[blank])
        blank++;
    if (!json || blank == len) {
        rc = rp_error_set(err, RP_EINVAL, "test definition is empty");
        goto out;
    }
    rc = rp_json_parse(json, len, MAX_INPUT_LEN, &doc, &je);
    if (rc != RP_OK) {
        rc = json_error(json, len, &je, err);
        goto out;
    }
    rc = RP_EINVAL;
    if (rp_json_root(doc, &root) != RP_OK || !BSON_ITER_HOLDS_DOCUMENT(&root)) {
        rp_defn_fail(&c, NULL,
                     "a test definition is a JSON object ({\"name\": ..., \"steps\": [...]}), "
                     "got %s",
                     rp_defn_type_of(&root));
        goto out;
    }
    if (rp_defn_check_keys(&c, &root, NULL, test_keys, test_aliases) != RP_OK)
        goto out;
    if (rp_defn_find(&root, "version", &it)) {
        long v;
        if (rp_defn_get_int(&c, &it, "version", 1, 1000, &v) != RP_OK)
            goto out;
        if (v != 1) {
            rp_defn_fail(&c, "version", "this worker reads version 1 definitions, got %ld", v);
            goto out;
        }
    }
    if (!rp_defn_find(&root, "name", &it)) {
        rp_defn_fail(&c, NULL, "`name` is required");
        goto out;
    }
    if (rp_defn_get_str(&c, &it, "name", MAX_NAME_LEN, STR_NO_CTRL, &t->name) != RP_OK)
        goto out;
    if (rp_defn_find(&root, "description", &it) &&
        rp_defn_get_str(&c, &it, "description", MAX_DESC_LEN, STR_EMPTY_OK, &t->description) !=
            RP_OK)
        goto out;
    if (rp_defn_find(&root, "tags", &it) && parse_tags(&c, &it, t) != RP_OK)
        goto out;
    if (rp_defn_find(&root, "variables", &it) && parse_variables(&c, &it, &t->variables) != RP_OK)
        goto out;
    int stop_default = 0;
    if (rp_defn_find(&root, "stop_on_failure", &it) &&
        rp_defn_get_bool(&c, &it, "stop_on_failure", &stop_default) != RP_OK)
        goto out;

    if (!rp_defn_find(&root, "steps", &it)) {
        rp_defn_fail(&c, NULL, "`steps` is required (a list of at least one step)");
        goto out;
    }
    if (!BSON_ITER_HOLDS_ARRAY(&it)) {
        rp_defn_fail(&c, "steps", "must be an array of steps, got %s", rp_defn_type_of(&it));
        goto out;
    }
    size_t n = 0;
    if (bson_iter_recurse(&it, &ch))
        while (bson_iter_next(&ch) && n <= MAX_STEPS)
            n++;
    if (n == 0) {
        rp_defn_fail(&c, "steps", "must have at least one step");
        goto out;
    }
    if (n > MAX_STEPS) {
        rp_defn_fail(&c, "steps", "more than %d steps; split the test", MAX_STEPS);
        goto out;
    }
    t->steps = rp_xcalloc(n, sizeof(*t->steps));
    (void)bson_iter_recurse(&it, &ch);
    while (bson_iter_next(&ch)) {
        struct rp_step *s = &t->steps[t->n_steps++];
        if (rp_defn_parse_step(&c, &ch, t->n_steps, stop_default, s) != RP_OK)
            goto out;
    }
    *out = t;
    t = NULL;
    rc = RP_OK;
out:
    rp_test_free(t);
    if (doc)
        bson_destroy(doc);
    return rc;
}

static void free_kv(struct rp_kv *kv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(kv[i].name);
        free(kv[i].value);
    }
    free(kv);
}

void rp_test_free(struct rp_test *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n_steps; i++) {
        struct rp_step *s = &t->steps[i];
        free(s->name);
        free(s->method);
        free(s->url);
        free_kv(s->headers, s->n_headers);
        free(s->body);
        free_kv(s->form, s->n_form);
        free(s->expect_status);
        for (size_t j = 0; j < s->n_captures; j++) {
            free(s->captures[j].name);
            free(s->captures[j].src);
            rp_expr_free(s->captures[j].from);
        }
        free(s->captures);
        for (size_t j = 0; j < s->n_asserts; j++) {
            free(s->asserts[j].src);
            rp_expr_free(s->asserts[j].expr);
        }
        free(s->asserts);
        rp_schema_free(s->schema);
        rp_expr_free(s->if_expr);
        free(s->if_src);
        rp_expr_free(s->each);
        free(s->each_src);
        free(s->each_as);
    }
    free(t->steps);
    for (size_t i = 0; i < t->n_tags; i++)
        free(t->tags[i]);
    free(t->tags);
    free(t->description);
    if (t->variables)
        bson_destroy(t->variables);
    free(t->name);
    free(t);
}
