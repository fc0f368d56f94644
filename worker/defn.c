/* Test definitions: JSON text -> struct wrk_test (format in docs/tests.md). Everything that can
 * be checked before a run is checked here, so a run fails only on what depends on the server:
 * unknown keys (with a "did you mean" hint), types, ranges, method tokens, URL and header
 * syntax, templates, expressions, JSON paths and schemas. The first problem wins, and its
 * message starts with where it is, in words a user can find in the file: `step 3 ("get user"),
 * assertion 2: column 9: unknown operator ...`. JSON syntax errors carry a line and column.
 * Every list and string has a cap, so a hostile definition costs bounded memory and time. */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rampart/config.h"
#include "rampart/mem.h"
#include "worker.h"

#define MAX_INPUT_LEN      (4u << 20)
#define MAX_STEPS          200
#define MAX_ASSERTS        500
#define MAX_CAPTURES       100
#define MAX_HEADERS        100
#define MAX_FORM           200
#define MAX_TAGS           20
#define MAX_TAG_LEN        64
#define MAX_VARIABLES      1000
#define MAX_STATUS_ITEMS   50
#define MAX_NAME_LEN       200
#define MAX_DESC_LEN       4096
#define MAX_URL_LEN        8192
#define MAX_EXPR_LEN       4096
#define MAX_VARNAME_LEN    128
#define MAX_METHOD_LEN     32
#define MAX_TIMEOUT_MS     600000
#define DEFAULT_TIMEOUT_MS 30000
#define MAX_REDIRECTS      10
#define SHOW_MAX           192 /* bytes of user text shown in a message (40 characters) */

/* Parsing state: where we are (for messages) and where errors go. */
struct ctx {
    struct rp_error *err;
    char where[256]; /* "step 3 (\"get user\")", or "" at the top level */
};

/* A key that is not in an object's list but that people write: what to tell them. */
struct alias {
    const char *key;
    const char *hint;
};

/* ==== messages ========================================================================== */

/* `s` (n bytes) made safe and short for a message: control characters, quotes and bytes of
 * invalid UTF-8 escaped, cut after 40 characters with "...". */
static void show(char *dst, size_t cap, const char *s, size_t n)
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
static int fail(struct ctx *c, const char *field, const char *fmt, ...) RP_PRINTF(3, 4);
static int fail(struct ctx *c, const char *field, const char *fmt, ...)
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

static const char *type_of(const bson_iter_t *it)
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
static const char *closest(const char *s, const char *const *words)
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
    show(k, sizeof(k), key, strlen(key));
    for (size_t i = 0; aliases && aliases[i].key; i++)
        if (strcasecmp(key, aliases[i].key) == 0)
            return fail(c, field, "unknown key `%s`; %s", k, aliases[i].hint);
    const char *near = closest(key, keys);
    if (near)
        return fail(c, field, "unknown key `%s`; did you mean `%s`?", k, near);
    for (size_t i = 0; keys[i]; i++) {
        strncat(list, i ? ", " : "", sizeof(list) - strlen(list) - 1);
        strncat(list, keys[i], sizeof(list) - strlen(list) - 1);
    }
    return fail(c, field, "unknown key `%s`; expected one of: %s", k, list);
}

/* Every key of the object at `obj` must be in `keys` (at most 32), and none twice. */
static int check_keys(struct ctx *c, const bson_iter_t *obj, const char *field,
                      const char *const *keys, const struct alias *aliases)
{
    bson_iter_t ch;
    uint32_t seen = 0;
    if (!bson_iter_recurse(obj, &ch))
        return fail(c, field, "unreadable object");
    while (bson_iter_next(&ch)) {
        const char *k = bson_iter_key(&ch);
        size_t i = 0;
        while (keys[i] && strcmp(keys[i], k) != 0)
            i++;
        if (!keys[i])
            return unknown_key(c, field, k, keys, aliases);
        if (seen & (1u << i))
            return fail(c, field, "duplicate key `%s`", keys[i]);
        seen |= 1u << i;
    }
    return RP_OK;
}

/* Position `out` on member `key` of the object at `obj`; 0 when absent. */
static int find(const bson_iter_t *obj, const char *key, bson_iter_t *out)
{
    return bson_iter_recurse(obj, out) && bson_iter_find(out, key);
}

/* Members of the object or array at `it`, counting no further than `limit` + 1. */
static size_t count_members(const bson_iter_t *it, size_t limit)
{
    bson_iter_t ch;
    size_t n = 0;
    if (bson_iter_recurse(it, &ch))
        while (n <= limit && bson_iter_next(&ch))
            n++;
    return n;
}

/* ==== scalars =========================================================================== */

enum { STR_EMPTY_OK = 1, STR_NO_CTRL = 2 };

/* A string member: UTF-8, no NUL, at most `max` bytes. New string in `*out`. */
static int get_str(struct ctx *c, const bson_iter_t *it, const char *field, size_t max, int flags,
                   char **out)
{
    if (!BSON_ITER_HOLDS_UTF8(it))
        return fail(c, field, "must be a string, got %s", type_of(it));
    uint32_t n;
    const char *s = bson_iter_utf8(it, &n);
    if (memchr(s, '\0', n))
        return fail(c, field, "must not contain a NUL character (\\u0000)");
    if (!bson_utf8_validate(s, n, false))
        return fail(c, field, "is not valid UTF-8");
    if (n == 0 && !(flags & STR_EMPTY_OK))
        return fail(c, field, "must not be empty");
    if (max && n > max)
        return fail(c, field, "is %u bytes long; the limit is %zu", n, max);
    if (flags & STR_NO_CTRL)
        for (uint32_t i = 0; i < n; i++)
            if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
                return fail(c, field, "must not contain control characters (tab, newline...)");
    *out = rp_xstrndup(s, n);
    return RP_OK;
}

static int get_bool(struct ctx *c, const bson_iter_t *it, const char *field, int *out)
{
    if (!BSON_ITER_HOLDS_BOOL(it))
        return fail(c, field, "must be true or false, got %s", type_of(it));
    *out = bson_iter_bool(it);
    return RP_OK;
}

/* An integer in [min, max]: int32, int64, or a double without a fraction. */
static int get_int(struct ctx *c, const bson_iter_t *it, const char *field, long min, long max,
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
            return fail(c, field, "must be a whole number, got %g", d);
        break;
    default:
        return fail(c, field, "must be a number, got %s", type_of(it));
    }
    if (d < (double)min || d > (double)max)
        return fail(c, field, "must be between %ld and %ld, got %.17g", min, max, d);
    *out = (long)d;
    return RP_OK;
}

/* Variable names a definition introduces (captures, `as`, test variables): letters, digits,
 * `_` and `-`, not starting with a digit or `-`; `.` and `[` would read into the value. */
static int check_var_name(struct ctx *c, const char *field, const char *name)
{
    char s[SHOW_MAX];
    size_t n = strlen(name);
    show(s, sizeof(s), name, n);
    if (n == 0)
        return fail(c, field, "variable name must not be empty");
    if (n > MAX_VARNAME_LEN)
        return fail(c, field, "variable name `%s` is longer than %d bytes", s, MAX_VARNAME_LEN);
    if (!isalpha((unsigned char)name[0]) && name[0] != '_')
        return fail(c, field, "variable name `%s` must start with a letter or `_`", s);
    for (size_t i = 1; i < n; i++) {
        unsigned char ch = (unsigned char)name[i];
        if (!isalnum(ch) && ch != '_' && ch != '-')
            return fail(c, field,
                        "variable name `%s` may only contain letters, digits, `_` and `-`", s);
    }
    return RP_OK;
}

static int check_template(struct ctx *c, const char *field, const char *tmpl)
{
    struct rp_error e = {0};
    if (wrk_template_check(tmpl, &e) != RP_OK)
        return fail(c, field, "%s", e.msg[0] ? e.msg : "invalid template");
    return RP_OK;
}

static int is_tchar(unsigned char ch)
{
    return isalnum(ch) || (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* ==== top-level fields ================================================================== */

static const char *const variable_keys[] = {"value", "secret", NULL};

/* Test variables: {"name": value | {"value": v, "secret": true}}. An object whose keys are
 * only `value` and `secret` (with `value` present) is the long form; any other object is a
 * value. Kept as {"v": {...}} for wrk_vars_load_object at run time. */
static int parse_variables(struct ctx *c, const bson_iter_t *it, bson_t **out)
{
    bson_iter_t ch, w;
    char field[256], k[SHOW_MAX];
    if (!BSON_ITER_HOLDS_DOCUMENT(it))
        return fail(c, "variables", "must be an object, got %s", type_of(it));
    if (count_members(it, MAX_VARIABLES) > MAX_VARIABLES)
        return fail(c, "variables", "more than %d variables", MAX_VARIABLES);
    if (!bson_iter_recurse(it, &ch))
        return fail(c, "variables", "unreadable object");
    while (bson_iter_next(&ch)) {
        const char *name = bson_iter_key(&ch);
        show(k, sizeof(k), name, strlen(name));
        snprintf(field, sizeof(field), "variables.%s", k);
        if (check_var_name(c, "variables", name) != RP_OK)
            return RP_EINVAL;
        bson_iter_t dup = ch;
        while (bson_iter_next(&dup))
            if (strcmp(bson_iter_key(&dup), name) == 0)
                return fail(c, "variables", "duplicate variable `%s`", k);
        if (!BSON_ITER_HOLDS_DOCUMENT(&ch) || !find(&ch, "value", &w))
            continue;
        int only_long_form = 1, secret;
        if (!bson_iter_recurse(&ch, &w))
            return fail(c, field, "unreadable object");
        while (bson_iter_next(&w))
            only_long_form &=
                strcmp(bson_iter_key(&w), "value") == 0 || strcmp(bson_iter_key(&w), "secret") == 0;
        if (!only_long_form)
            continue;
        if (check_keys(c, &ch, field, variable_keys, NULL) != RP_OK)
            return RP_EINVAL;
        if (find(&ch, "secret", &w)) {
            snprintf(field, sizeof(field), "variables.%s.secret", k);
            if (get_bool(c, &w, field, &secret) != RP_OK)
                return RP_EINVAL;
        }
    }
    *out = bson_new();
    bson_append_iter(*out, "v", 1, it);
    return RP_OK;
}

static int parse_tags(struct ctx *c, const bson_iter_t *it, struct wrk_test *t)
{
    bson_iter_t ch;
    char field[32];
    if (!BSON_ITER_HOLDS_ARRAY(it))
        return fail(c, "tags", "must be an array of strings, got %s", type_of(it));
    uint32_t n = 0;
    if (!bson_iter_recurse(it, &ch))
        return fail(c, "tags", "unreadable array");
    while (bson_iter_next(&ch))
        n++;
    if (n > MAX_TAGS)
        return fail(c, "tags", "has %u tags; the limit is %d", n, MAX_TAGS);
    t->tags = rp_xcalloc(n ? n : 1, sizeof(*t->tags));
    (void)bson_iter_recurse(it, &ch);
    while (bson_iter_next(&ch)) {
        snprintf(field, sizeof(field), "tags[%zu]", t->n_tags + 1);
        char *tag;
        if (get_str(c, &ch, field, MAX_TAG_LEN, STR_NO_CTRL, &tag) != RP_OK)
            return RP_EINVAL;
        t->tags[t->n_tags++] = tag;
    }
    return RP_OK;
}

/* ==== request =========================================================================== */

/* One header or form value: a string, number or boolean (numbers and booleans as their text).
 * Appended to `*kv` under `name`. */
static int add_value(struct ctx *c, const bson_iter_t *it, const char *field, const char *name,
                     int header, int in_array, size_t max, struct wrk_kv **kv, size_t *n)
{
    char *val = NULL;
    bson_type_t ty = bson_iter_type(it);
    if (*n >= max)
        return fail(c, field, "more than %zu %s", max, header ? "headers" : "form fields");
    if (ty == BSON_TYPE_INT32 || ty == BSON_TYPE_INT64 || ty == BSON_TYPE_DOUBLE ||
        ty == BSON_TYPE_BOOL) {
        struct wrk_value v;
        wrk_value_from_iter(&v, it);
        val = wrk_value_to_text(&v);
        wrk_value_clear(&v);
    } else if (ty != BSON_TYPE_UTF8) {
        return fail(c, field, "must be a string, number or boolean%s, got %s",
                    in_array ? "" : " (or an array of them)", type_of(it));
    } else if (get_str(c, it, field, 0, STR_EMPTY_OK, &val) != RP_OK) {
        return RP_EINVAL;
    }
    if (header && strpbrk(val, "\r\n")) {
        free(val);
        return fail(c, field, "must not contain a line break");
    }
    if (check_template(c, field, val) != RP_OK) {
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
                      int header, size_t max, struct wrk_kv **kv, size_t *n)
{
    bson_iter_t arr;
    char f[320];
    size_t i = 0;
    if (!BSON_ITER_HOLDS_ARRAY(it))
        return add_value(c, it, field, name, header, 0, max, kv, n);
    if (!bson_iter_recurse(it, &arr))
        return fail(c, field, "unreadable array");
    while (bson_iter_next(&arr)) {
        snprintf(f, sizeof(f), "%s[%zu]", field, ++i);
        if (add_value(c, &arr, f, name, header, 1, max, kv, n) != RP_OK)
            return RP_EINVAL;
    }
    if (i == 0)
        return fail(c, field, "an array of values must not be empty");
    return RP_OK;
}

/* `headers` (header = 1) or `form`: an object of name -> value(s). */
static int parse_pairs(struct ctx *c, const bson_iter_t *it, const char *what, int header,
                       struct wrk_kv **kv, size_t *n)
{
    bson_iter_t ch, dup;
    char field[256], k[SHOW_MAX];
    size_t max = header ? MAX_HEADERS : MAX_FORM;
    if (!BSON_ITER_HOLDS_DOCUMENT(it))
        return fail(c, what, "must be an object of name: value, got %s", type_of(it));
    if (count_members(it, max) > max)
        return fail(c, what, "more than %zu %s", max, header ? "headers" : "form fields");
    if (!bson_iter_recurse(it, &ch))
        return fail(c, what, "unreadable object");
    while (bson_iter_next(&ch)) {
        const char *name = bson_iter_key(&ch);
        show(k, sizeof(k), name, strlen(name));
        snprintf(field, sizeof(field), "%s.%s", what, k);
        if (!*name)
            return fail(c, what, "a name must not be empty");
        dup = ch;
        while (bson_iter_next(&dup)) {
            const char *other = bson_iter_key(&dup);
            if (header ? strcasecmp(other, name) == 0 : strcmp(other, name) == 0)
                return fail(c, field, "given twice%s",
                            header ? " (names are case-insensitive); to send a header several "
                                     "times give an array of values"
                                   : "; to send a field several times give an array of values");
        }
        if (header && !strstr(name, "${")) {
            for (const char *p = name; *p; p++)
                if (!is_tchar((unsigned char)*p))
                    return fail(c, field,
                                "`%s` is not a valid header name (letters, digits "
                                "and !#$%%&'*+-.^_`|~ only)",
                                k);
        }
        if (check_template(c, field, name) != RP_OK)
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
        return check_template(c, path->data, s);
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
            show(k, sizeof(k), bson_iter_key(&ch), strlen(bson_iter_key(&ch)));
            (void)rp_buf_printf(path, ".%s", k);
            if (check_template(c, path->data, bson_iter_key(&ch)) != RP_OK)
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
        show(shown, sizeof(shown), s, strlen(s));
        size_t digits = strspn(s, "0123456789."), dots = 0;
        for (size_t i = 0; i < digits; i++)
            dots += s[i] == '.';
        const char *unit = s + digits;
        int unit_ok = !*unit || !strcmp(unit, "ms") || !strcmp(unit, "s") || !strcmp(unit, "m");
        if (!digits || dots > 1 || s[0] == '.' || !unit_ok || digits > 12 ||
            rp_parse_duration_ms(s, &ms) != RP_OK)
            return fail(c, f,
                        "\"%s\" is not a duration; write milliseconds (5000) or a number with "
                        "a unit: \"250ms\", \"5s\", \"1m\"",
                        shown);
        if (ms < 1 || ms > MAX_TIMEOUT_MS)
            return fail(c, f, "must be between 1ms and 10m, got \"%s\"", shown);
    } else if (BSON_ITER_HOLDS_NUMBER(it)) {
        double d =
            BSON_ITER_HOLDS_DOUBLE(it) ? bson_iter_double(it) : (double)bson_iter_as_int64(it);
        if (!isfinite(d) || d != floor(d))
            return fail(c, f, "must be a whole number, got %g", d);
        if (d < 1 || d > MAX_TIMEOUT_MS)
            return fail(c, f, "must be between 1ms and 10m, got %.15g", d);
        ms = (long)d;
    } else {
        return fail(c, f, "must be milliseconds (5000) or a duration (\"5s\"), got %s",
                    type_of(it));
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

static int parse_request(struct ctx *c, const bson_iter_t *req, struct wrk_step *s)
{
    bson_iter_t it;
    if (!BSON_ITER_HOLDS_DOCUMENT(req))
        return fail(c, "request", "must be an object, got %s", type_of(req));
    if (check_keys(c, req, "request", request_keys, request_aliases) != RP_OK)
        return RP_EINVAL;

    if (find(req, "method", &it)) {
        if (get_str(c, &it, "request.method", 0, 0, &s->method) != RP_OK)
            return RP_EINVAL;
        char m[SHOW_MAX];
        show(m, sizeof(m), s->method, strlen(s->method));
        if (strlen(s->method) > MAX_METHOD_LEN)
            return fail(c, "request.method", "is longer than %d characters", MAX_METHOD_LEN);
        for (char *p = s->method; *p; p++) {
            if (!is_tchar((unsigned char)*p))
                return fail(c, "request.method",
                            "`%s` is not an HTTP method (a single word such as GET, POST, "
                            "PUT, PATCH, DELETE, HEAD, OPTIONS)",
                            m);
            *p = (char)toupper((unsigned char)*p);
        }
    } else {
        s->method = rp_xstrdup("GET");
    }

    if (!find(req, "url", &it))
        return fail(c, "request", "`url` is required");
    if (get_str(c, &it, "request.url", MAX_URL_LEN, 0, &s->url) != RP_OK)
        return RP_EINVAL;
    for (const char *p = s->url; *p; p++) {
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return fail(c, "request.url", "column %ld: %s", (long)(p - s->url) + 1,
                        *p == ' ' ? "a space must be written %20"
                                  : "control characters are not allowed");
    }
    if (strncmp(s->url, "${", 2) != 0 && strncasecmp(s->url, "http://", 7) != 0 &&
        strncasecmp(s->url, "https://", 8) != 0) {
        char u[SHOW_MAX];
        show(u, sizeof(u), s->url, strlen(s->url));
        return fail(c, "request.url",
                    "must start with http:// or https:// (or a variable such as ${base}), got "
                    "\"%s\"",
                    u);
    }
    if (check_template(c, "request.url", s->url) != RP_OK)
        return RP_EINVAL;

    if (find(req, "headers", &it) &&
        parse_pairs(c, &it, "request.headers", 1, &s->headers, &s->n_headers) != RP_OK)
        return RP_EINVAL;

    if (find(req, "json", &it) + find(req, "form", &it) + find(req, "body", &it) > 1)
        return fail(c, "request", "`json`, `form` and `body` are alternatives; give only one");
    if (find(req, "json", &it)) {
        struct rp_buf path;
        rp_buf_init(&path, 0);
        (void)rp_buf_printf(&path, "request.json");
        int rc = check_json_strings(c, &it, &path);
        rp_buf_cleanup(&path);
        if (rc != RP_OK)
            return rc;
        struct wrk_value v;
        wrk_value_from_iter(&v, &it);
        s->body = wrk_value_to_json(&v, 0);
        wrk_value_clear(&v);
        s->body_kind = WRK_BODY_JSON;
    }
    if (find(req, "form", &it)) {
        if (parse_pairs(c, &it, "request.form", 0, &s->form, &s->n_form) != RP_OK)
            return RP_EINVAL;
        s->body_kind = WRK_BODY_FORM;
    }
    if (find(req, "body", &it)) {
        if (BSON_ITER_HOLDS_DOCUMENT(&it) || BSON_ITER_HOLDS_ARRAY(&it))
            return fail(c, "request.body",
                        "must be a string (raw text); to send JSON use `json` instead");
        if (get_str(c, &it, "request.body", 0, STR_EMPTY_OK, &s->body) != RP_OK ||
            check_template(c, "request.body", s->body) != RP_OK)
            return RP_EINVAL;
        s->body_kind = WRK_BODY_RAW;
    }

    s->timeout_ms = DEFAULT_TIMEOUT_MS;
    if (find(req, "timeout", &it) && parse_timeout(c, &it, &s->timeout_ms) != RP_OK)
        return RP_EINVAL;

    s->follow_redirects = MAX_REDIRECTS;
    if (find(req, "follow_redirects", &it)) {
        long n;
        if (BSON_ITER_HOLDS_BOOL(&it))
            s->follow_redirects = bson_iter_bool(&it) ? MAX_REDIRECTS : 0;
        else if (!BSON_ITER_HOLDS_NUMBER(&it))
            return fail(c, "request.follow_redirects",
                        "must be true, false or the most redirects to follow (0 to %d), got %s",
                        MAX_REDIRECTS, type_of(&it));
        else if (get_int(c, &it, "request.follow_redirects", 0, MAX_REDIRECTS, &n) != RP_OK)
            return RP_EINVAL;
        else
            s->follow_redirects = (int)n;
    }

    s->verify_tls = 1;
    if (find(req, "verify_tls", &it) &&
        get_bool(c, &it, "request.verify_tls", &s->verify_tls) != RP_OK)
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
static int add_status(struct ctx *c, const bson_iter_t *it, const char *field, struct wrk_step *s)
{
    long lo, hi;
    if (BSON_ITER_HOLDS_UTF8(it)) {
        const char *v = bson_iter_utf8(it, NULL);
        char shown[SHOW_MAX];
        show(shown, sizeof(shown), v, strlen(v));
        if (strlen(v) != 3 || v[0] < '1' || v[0] > '5' || tolower((unsigned char)v[1]) != 'x' ||
            tolower((unsigned char)v[2]) != 'x')
            return fail(c, field,
                        "\"%s\" is not a status; write a number (100 to 599) or a class such as "
                        "\"2xx\"",
                        shown);
        lo = (v[0] - '0') * 100;
        hi = lo + 99;
    } else if (BSON_ITER_HOLDS_NUMBER(it)) {
        if (get_int(c, it, field, 100, 599, &lo) != RP_OK)
            return RP_EINVAL;
        hi = lo;
    } else {
        return fail(c, field, "must be a status (200), a class (\"2xx\") or a list of them, got %s",
                    type_of(it));
    }
    s->expect_status =
        rp_xrealloc(s->expect_status, (s->n_expect_status + (size_t)(hi - lo + 1)) * sizeof(long));
    for (long v = lo; v <= hi; v++)
        s->expect_status[s->n_expect_status++] = v;
    return RP_OK;
}

static int parse_expect(struct ctx *c, const bson_iter_t *exp, struct wrk_step *s)
{
    bson_iter_t it, ch;
    char field[64];
    if (!BSON_ITER_HOLDS_DOCUMENT(exp))
        return fail(c, "expect", "must be an object such as {\"status\": 200}, got %s",
                    type_of(exp));
    if (check_keys(c, exp, "expect", expect_keys, expect_aliases) != RP_OK)
        return RP_EINVAL;
    if (!find(exp, "status", &it))
        return RP_OK;
    if (!BSON_ITER_HOLDS_ARRAY(&it))
        return add_status(c, &it, "expect.status", s);
    size_t i = 0;
    if (!bson_iter_recurse(&it, &ch))
        return fail(c, "expect.status", "unreadable array");
    while (bson_iter_next(&ch)) {
        if (++i > MAX_STATUS_ITEMS)
            return fail(c, "expect.status", "more than %d entries", MAX_STATUS_ITEMS);
        snprintf(field, sizeof(field), "expect.status[%zu]", i);
        if (add_status(c, &ch, field, s) != RP_OK)
            return RP_EINVAL;
    }
    if (i == 0)
        return fail(c, "expect.status", "must not be an empty list");
    return RP_OK;
}

static const char *const capture_keys[] = {"from", "secret", NULL};

/* {"var": "operand" | {"from": "operand", "secret": true}} */
static int parse_captures(struct ctx *c, const bson_iter_t *cap, struct wrk_step *s)
{
    bson_iter_t ch, it;
    char field[256], k[SHOW_MAX];
    if (!BSON_ITER_HOLDS_DOCUMENT(cap))
        return fail(c, "capture",
                    "must be an object of variable: source (\"token\": "
                    "\"$.json.token\"), got %s",
                    type_of(cap));
    if (count_members(cap, MAX_CAPTURES) > MAX_CAPTURES)
        return fail(c, "capture", "more than %d captures", MAX_CAPTURES);
    if (!bson_iter_recurse(cap, &ch))
        return fail(c, "capture", "unreadable object");
    while (bson_iter_next(&ch)) {
        const char *name = bson_iter_key(&ch);
        show(k, sizeof(k), name, strlen(name));
        snprintf(field, sizeof(field), "capture.%s", k);
        if (check_var_name(c, "capture", name) != RP_OK)
            return RP_EINVAL;
        it = ch;
        while (bson_iter_next(&it))
            if (strcmp(bson_iter_key(&it), name) == 0)
                return fail(c, "capture", "`%s` is captured twice", k);
        struct wrk_capture *cp;
        s->captures = rp_xrealloc(s->captures, (s->n_captures + 1) * sizeof(*s->captures));
        cp = &s->captures[s->n_captures++];
        memset(cp, 0, sizeof(*cp));
        cp->name = rp_xstrdup(name);
        it = ch;
        if (BSON_ITER_HOLDS_DOCUMENT(&ch)) {
            if (check_keys(c, &ch, field, capture_keys, NULL) != RP_OK)
                return RP_EINVAL;
            if (find(&ch, "secret", &it)) {
                char f2[320];
                snprintf(f2, sizeof(f2), "%s.secret", field);
                if (get_bool(c, &it, f2, &cp->secret) != RP_OK)
                    return RP_EINVAL;
            }
            if (!find(&ch, "from", &it))
                return fail(c, field,
                            "`from` is required (what to capture, e.g. "
                            "\"$.json.token\" or \"header.Location\")");
            snprintf(field, sizeof(field), "capture.%s.from", k);
        } else if (!BSON_ITER_HOLDS_UTF8(&ch)) {
            return fail(c, field,
                        "must be a source such as \"$.json.token\" or {\"from\": ..., "
                        "\"secret\": true}, got %s",
                        type_of(&ch));
        }
        if (get_str(c, &it, field, MAX_EXPR_LEN, 0, &cp->src) != RP_OK)
            return RP_EINVAL;
        struct rp_error e = {0};
        if (wrk_expr_parse_operand(cp->src, &cp->from, &e) != RP_OK)
            return fail(c, field, "%s", e.msg);
    }
    return RP_OK;
}

static const char *const assert_keys[] = {"that", "severity", "stop", NULL};
static const char *const severities[] = {"error", "warning", NULL};

/* One assertion: "expr" or {"that": "expr", "severity": "warning", "stop": true}. */
static int parse_assertion(struct ctx *c, const bson_iter_t *it, size_t i, struct wrk_step *s)
{
    char field[64], f2[96];
    bson_iter_t v;
    struct wrk_assertion *a = &s->asserts[s->n_asserts++];
    snprintf(field, sizeof(field), "assertion %zu", i);
    v = *it;
    if (BSON_ITER_HOLDS_DOCUMENT(it)) {
        if (check_keys(c, it, field, assert_keys, NULL) != RP_OK)
            return RP_EINVAL;
        if (find(it, "severity", &v)) {
            char *sev = NULL;
            snprintf(f2, sizeof(f2), "%s, severity", field);
            if (get_str(c, &v, f2, 0, STR_EMPTY_OK, &sev) != RP_OK)
                return RP_EINVAL;
            int bad = strcmp(sev, "error") != 0 && strcmp(sev, "warning") != 0;
            if (bad) {
                char shown[SHOW_MAX];
                const char *near = closest(sev, severities);
                show(shown, sizeof(shown), sev, strlen(sev));
                fail(c, f2, "must be \"error\" or \"warning\", got \"%s\"%s%s%s", shown,
                     near ? "; did you mean \"" : "", near ? near : "", near ? "\"?" : "");
            } else if (strcmp(sev, "warning") == 0) {
                a->severity = WRK_SEV_WARNING;
            }
            free(sev);
            if (bad)
                return RP_EINVAL;
        }
        if (find(it, "stop", &v)) {
            snprintf(f2, sizeof(f2), "%s, stop", field);
            if (get_bool(c, &v, f2, &a->stop) != RP_OK)
                return RP_EINVAL;
        }
        if (!find(it, "that", &v))
            return fail(c, field, "`that` is required (the expression, e.g. \"status == 200\")");
    } else if (!BSON_ITER_HOLDS_UTF8(it)) {
        return fail(c, field,
                    "must be an expression string (\"status == 200\") or {\"that\": ..., "
                    "\"severity\": \"warning\"}, got %s",
                    type_of(it));
    }
    if (get_str(c, &v, field, MAX_EXPR_LEN, 0, &a->src) != RP_OK)
        return RP_EINVAL;
    struct rp_error e = {0};
    if (wrk_expr_parse(a->src, &a->expr, &e) != RP_OK)
        return fail(c, field, "%s", e.msg);
    return RP_OK;
}

static int parse_asserts(struct ctx *c, const bson_iter_t *arr, struct wrk_step *s)
{
    bson_iter_t ch;
    size_t n = 0;
    if (!BSON_ITER_HOLDS_ARRAY(arr))
        return fail(c, "assert", "must be an array of expressions ([\"status == 200\"]), got %s",
                    type_of(arr));
    if (!bson_iter_recurse(arr, &ch))
        return fail(c, "assert", "unreadable array");
    while (bson_iter_next(&ch))
        if (++n > MAX_ASSERTS)
            return fail(c, "assert", "more than %d assertions", MAX_ASSERTS);
    s->asserts = rp_xcalloc(n ? n : 1, sizeof(*s->asserts));
    (void)bson_iter_recurse(arr, &ch);
    for (size_t i = 1; bson_iter_next(&ch); i++)
        if (parse_assertion(c, &ch, i, s) != RP_OK)
            return RP_EINVAL;
    return RP_OK;
}

static int parse_schema(struct ctx *c, const bson_iter_t *it, struct wrk_step *s)
{
    if (!BSON_ITER_HOLDS_DOCUMENT(it) && !BSON_ITER_HOLDS_BOOL(it))
        return fail(c, "schema", "must be a JSON Schema (an object), got %s", type_of(it));
    bson_t doc = BSON_INITIALIZER;
    bson_append_iter(&doc, "v", 1, it);
    struct rp_error e = {0};
    int rc = wrk_schema_compile(&doc, &s->schema, &e);
    bson_destroy(&doc);
    if (rc != RP_OK) { /* schema.c says "schema #/a/b: ...": the location already names it */
        const char *m = e.msg[0] ? e.msg : "invalid schema";
        m += strncmp(m, "schema: ", 8) == 0 ? 8 : strncmp(m, "schema ", 7) == 0 ? 7 : 0;
        return fail(c, "schema", "%s", m);
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

static int parse_step(struct ctx *c, const bson_iter_t *st, size_t idx, int stop_default,
                      struct wrk_step *s)
{
    bson_iter_t it;
    snprintf(c->where, sizeof(c->where), "step %zu", idx);
    if (!BSON_ITER_HOLDS_DOCUMENT(st))
        return fail(c, NULL, "must be an object with a `request`, got %s", type_of(st));
    if (find(st, "name", &it) && BSON_ITER_HOLDS_UTF8(&it)) {
        uint32_t n;
        const char *name = bson_iter_utf8(&it, &n);
        char shown[SHOW_MAX];
        show(shown, sizeof(shown), name, n);
        snprintf(c->where, sizeof(c->where), "step %zu (\"%s\")", idx, shown);
    }
    if (check_keys(c, st, NULL, step_keys, step_aliases) != RP_OK)
        return RP_EINVAL;
    if (find(st, "name", &it) &&
        get_str(c, &it, "name", MAX_NAME_LEN, STR_NO_CTRL, &s->name) != RP_OK)
        return RP_EINVAL;
    if (!find(st, "request", &it))
        return fail(c, NULL, "`request` is required ({\"url\": \"...\"})");
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
    if (find(st, "expect", &it) && parse_expect(c, &it, s) != RP_OK)
        return RP_EINVAL;
    if (find(st, "capture", &it) && parse_captures(c, &it, s) != RP_OK)
        return RP_EINVAL;
    if (find(st, "assert", &it) && parse_asserts(c, &it, s) != RP_OK)
        return RP_EINVAL;
    if (find(st, "schema", &it) && parse_schema(c, &it, s) != RP_OK)
        return RP_EINVAL;

    struct rp_error e = {0};
    if (find(st, "if", &it)) {
        if (get_str(c, &it, "if", MAX_EXPR_LEN, 0, &s->if_src) != RP_OK)
            return RP_EINVAL;
        if (wrk_expr_parse(s->if_src, &s->if_expr, &e) != RP_OK)
            return fail(c, "if", "%s", e.msg);
    }
    if (find(st, "each", &it)) {
        if (get_str(c, &it, "each", MAX_EXPR_LEN, 0, &s->each_src) != RP_OK)
            return RP_EINVAL;
        if (wrk_expr_parse_operand(s->each_src, &s->each, &e) != RP_OK)
            return fail(c, "each", "%s", e.msg);
    }
    if (find(st, "as", &it)) {
        if (!s->each)
            return fail(c, "as", "names the element of `each`; add `each` or remove `as`");
        if (get_str(c, &it, "as", 0, 0, &s->each_as) != RP_OK ||
            check_var_name(c, "as", s->each_as) != RP_OK)
            return RP_EINVAL;
    } else if (s->each) {
        s->each_as = rp_xstrdup("item");
    }
    s->stop_on_failure = stop_default;
    if (find(st, "stop_on_failure", &it) &&
        get_bool(c, &it, "stop_on_failure", &s->stop_on_failure) != RP_OK)
        return RP_EINVAL;
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

/* "invalid JSON at byte N: ..." from wrk_json_parse, with N turned into line and column
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

int wrk_test_parse(const char *json, size_t len, struct wrk_test **out, struct rp_error *err)
{
    int rc = RP_EINVAL;
    bson_t *doc = NULL;
    bson_iter_t root, it, ch;
    struct rp_error je = {0};
    struct ctx c = {.err = err, .where = ""};
    struct wrk_test *t = rp_xcalloc(1, sizeof(*t));

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
    rc = wrk_json_parse(json, len, MAX_INPUT_LEN, &doc, &je);
    if (rc != RP_OK) {
        rc = json_error(json, len, &je, err);
        goto out;
    }
    rc = RP_EINVAL;
    if (wrk_json_root(doc, &root) != RP_OK || !BSON_ITER_HOLDS_DOCUMENT(&root)) {
        fail(&c, NULL,
             "a test definition is a JSON object ({\"name\": ..., \"steps\": [...]}), "
             "got %s",
             type_of(&root));
        goto out;
    }
    if (check_keys(&c, &root, NULL, test_keys, test_aliases) != RP_OK)
        goto out;
    if (find(&root, "version", &it)) {
        long v;
        if (get_int(&c, &it, "version", 1, 1000, &v) != RP_OK)
            goto out;
        if (v != 1) {
            fail(&c, "version", "this worker reads version 1 definitions, got %ld", v);
            goto out;
        }
    }
    if (!find(&root, "name", &it)) {
        fail(&c, NULL, "`name` is required");
        goto out;
    }
    if (get_str(&c, &it, "name", MAX_NAME_LEN, STR_NO_CTRL, &t->name) != RP_OK)
        goto out;
    if (find(&root, "description", &it) &&
        get_str(&c, &it, "description", MAX_DESC_LEN, STR_EMPTY_OK, &t->description) != RP_OK)
        goto out;
    if (find(&root, "tags", &it) && parse_tags(&c, &it, t) != RP_OK)
        goto out;
    if (find(&root, "variables", &it) && parse_variables(&c, &it, &t->variables) != RP_OK)
        goto out;
    int stop_default = 0;
    if (find(&root, "stop_on_failure", &it) &&
        get_bool(&c, &it, "stop_on_failure", &stop_default) != RP_OK)
        goto out;

    if (!find(&root, "steps", &it)) {
        fail(&c, NULL, "`steps` is required (a list of at least one step)");
        goto out;
    }
    if (!BSON_ITER_HOLDS_ARRAY(&it)) {
        fail(&c, "steps", "must be an array of steps, got %s", type_of(&it));
        goto out;
    }
    size_t n = 0;
    if (bson_iter_recurse(&it, &ch))
        while (bson_iter_next(&ch) && n <= MAX_STEPS)
            n++;
    if (n == 0) {
        fail(&c, "steps", "must have at least one step");
        goto out;
    }
    if (n > MAX_STEPS) {
        fail(&c, "steps", "more than %d steps; split the test", MAX_STEPS);
        goto out;
    }
    t->steps = rp_xcalloc(n, sizeof(*t->steps));
    (void)bson_iter_recurse(&it, &ch);
    while (bson_iter_next(&ch)) {
        struct wrk_step *s = &t->steps[t->n_steps++];
        if (parse_step(&c, &ch, t->n_steps, stop_default, s) != RP_OK)
            goto out;
    }
    *out = t;
    t = NULL;
    rc = RP_OK;
out:
    wrk_test_free(t);
    if (doc)
        bson_destroy(doc);
    return rc;
}

static void free_kv(struct wrk_kv *kv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(kv[i].name);
        free(kv[i].value);
    }
    free(kv);
}

void wrk_test_free(struct wrk_test *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n_steps; i++) {
        struct wrk_step *s = &t->steps[i];
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
            wrk_expr_free(s->captures[j].from);
        }
        free(s->captures);
        for (size_t j = 0; j < s->n_asserts; j++) {
            free(s->asserts[j].src);
            wrk_expr_free(s->asserts[j].expr);
        }
        free(s->asserts);
        wrk_schema_free(s->schema);
        wrk_expr_free(s->if_expr);
        free(s->if_src);
        wrk_expr_free(s->each);
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
