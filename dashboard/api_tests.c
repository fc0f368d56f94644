/* /api/v1/projects/{project}/tests: a project's tests (a name, tags and a history of
 * definitions: every save is a new row of test_versions, tests.current_version points at the
 * latest), the test list with each test's recent results, validating a definition, and "run
 * now". A definition is checked with the worker's own parser (rp_test_parse) before anything is
 * stored; a refusal says where the problem is in a form the editor can use: the parser's
 * message, the dotted path and JSON pointer of the spot and, for a definition sent as text, its
 * line and column (found by re-reading the text, below). A run-now inserts a `pending` run
 * with lease_until = now(): the scheduler's sweep publishes it within a second (dispatch.c). */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dash.h"
#include "rampart/job.h"
#include "rampart/log.h"
#include "rampart/pg.h"
#include "rampart/testlang.h"

#define MAX_TAGS      20
#define DEFAULT_LIMIT 50
#define MAX_LIMIT     200

static int starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* ==== where a parser message points in the definition's text ===============================
 * The parser names a spot in words ("step 2 (\"login\"), request.headers.X-Id[1]: ...",
 * "variables.token.secret: ...", "step 1, schema: #/properties/a/minimum: ..."). We walk the
 * same names through the JSON text with a small scanner (the text already passed libbson, so
 * it is well formed; every step is still bounds-checked) to get a path, a JSON pointer and an
 * offset. Keys are compared as the parser quotes them (escaped, cut after 40 characters) and
 * the longest key that fits wins, so a header named "a.b" is found. When a name cannot be
 * followed the location stays at the last spot found: less precise, never wrong. */

struct scan {
    const char *s;
    size_t n;
};

struct loc {
    struct rp_buf path;    /* steps[0].expect.status[1] */
    struct rp_buf pointer; /* /steps/0/expect/status/1 (RFC 6901) */
    size_t at;             /* offset of the value (or of the key at fault) in the text */
    char last[16];         /* the last key followed */
    int in_json;           /* inside a request's `json`: the parser counts indexes from 0 there */
};

enum key_mode { KEY_FIELD, KEY_QUOTED, KEY_POINTER };

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int at_char(const struct scan *sc, size_t i, char c)
{
    return i < sc->n && sc->s[i] == c;
}

static size_t skip_ws(const struct scan *sc, size_t i)
{
    while (i < sc->n && is_ws(sc->s[i]))
        i++;
    return i;
}

/* `i` on an opening quote: the index after the closing one. */
static size_t skip_string(const struct scan *sc, size_t i)
{
    for (i++; i < sc->n; i++) {
        if (sc->s[i] == '\\')
            i++;
        else if (sc->s[i] == '"')
            return i + 1;
    }
    return sc->n;
}

/* `i` on a value: the index after it. */
static size_t skip_value(const struct scan *sc, size_t i)
{
    size_t depth = 0;
    while (i < sc->n) {
        char c = sc->s[i];
        if (c == '"') {
            i = skip_string(sc, i);
            if (depth == 0)
                return i;
            continue;
        }
        if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            if (depth == 0)
                return i; /* a scalar ended by its container's end */
            if (--depth == 0)
                return i + 1;
        } else if (depth == 0 && (c == ',' || c == ':' || is_ws(c))) {
            return i;
        }
        i++;
    }
    return i;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Four hex digits at `i`, or -1. */
static long hex4(const struct scan *sc, size_t i)
{
    long v = 0;
    for (size_t k = 0; k < 4; k++) {
        int d = i + k < sc->n ? hex_digit(sc->s[i + k]) : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

static void put_utf8(struct rp_buf *b, unsigned long cp)
{
    unsigned char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (unsigned char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (unsigned char)(0xc0 | (cp >> 6));
        u[1] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (unsigned char)(0xe0 | (cp >> 12));
        u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (unsigned char)(0xf0 | (cp >> 18));
        u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        u[3] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    (void)rp_buf_append(b, u, n);
}

/* Decode the string literal at `i` into `out` and return the index after it. With `at`, also
 * the offset in the text where decoded byte `want` is written (the closing quote if beyond). */
static size_t read_string(const struct scan *sc, size_t i, struct rp_buf *out, size_t want,
                          size_t *at)
{
    size_t found = SIZE_MAX;
    rp_buf_reset(out);
    for (i++; i < sc->n && sc->s[i] != '"'; i++) {
        if (found == SIZE_MAX && out->len >= want)
            found = i;
        if (sc->s[i] != '\\') {
            (void)rp_buf_append(out, sc->s + i, 1);
            continue;
        }
        if (++i >= sc->n)
            break;
        char c = sc->s[i];
        if (c == 'u') {
            long cp = hex4(sc, i + 1);
            if (cp < 0)
                continue;
            i += 4;
            if (cp >= 0xd800 && cp < 0xdc00 && at_char(sc, i + 1, '\\') &&
                at_char(sc, i + 2, 'u')) {
                long lo = hex4(sc, i + 3);
                if (lo >= 0xdc00 && lo < 0xe000) {
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    i += 6;
                }
            }
            put_utf8(out, (unsigned long)cp);
            continue;
        }
        char d = c == 'b'   ? '\b'
                 : c == 'f' ? '\f'
                 : c == 'n' ? '\n'
                 : c == 'r' ? '\r'
                 : c == 't' ? '\t'
                            : c;
        (void)rp_buf_append(out, &d, 1);
    }
    if (at)
        *at = found != SIZE_MAX ? found : i < sc->n ? i : sc->n;
    return i < sc->n ? i + 1 : sc->n;
}

/* A key as the parser quotes it in messages (rp_defn_show in defn.c): `"` and `\` escaped,
 * control characters and bytes of invalid UTF-8 as \xNN, cut after 40 characters with "...". */
static void shown(struct rp_buf *dst, const char *s, size_t n)
{
    int valid = bson_utf8_validate(s, n, true);
    size_t chars = 0;
    rp_buf_reset(dst);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((!valid || (ch & 0xc0) != 0x80) && chars++ == 40) {
            (void)rp_buf_append(dst, "...", 3);
            break;
        }
        if (ch == '"' || ch == '\\') {
            (void)rp_buf_append(dst, "\\", 1);
            (void)rp_buf_append(dst, &ch, 1);
        } else if (ch < 0x20 || ch == 0x7f || (ch >= 0x80 && !valid)) {
            (void)rp_buf_printf(dst, "\\x%02x", ch);
        } else {
            (void)rp_buf_append(dst, &ch, 1);
        }
    }
}

/* A key as a JSON pointer step (~ and / escaped), as the schema compiler writes it. */
static void pointer_step(struct rp_buf *dst, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '~')
            (void)rp_buf_append(dst, "~0", 2);
        else if (s[i] == '/')
            (void)rp_buf_append(dst, "~1", 2);
        else
            (void)rp_buf_append(dst, s + i, 1);
    }
}

static int key_ends(enum key_mode mode, char c)
{
    switch (mode) {
    case KEY_FIELD:
        return c == '\0' || c == '.' || c == '[' || c == ',' || c == ':';
    case KEY_QUOTED:
        return c == '`';
    default:
        return c == '\0' || c == '/' || c == ':';
    }
}

/* In the object at `obj`, the member whose key (written as `mode` says) starts `c` and ends
 * where a name ends; the longest such key, the first of equals. Returns how many characters of
 * `c` it covers (0: none) and fills the key's and the value's offsets and the key. */
static size_t find_key(const struct scan *sc, size_t obj, const char *c, enum key_mode mode,
                       size_t *key_at, size_t *val_at, struct rp_buf *name)
{
    struct rp_buf k, f;
    size_t best = 0, i = skip_ws(sc, obj + 1);
    rp_buf_init(&k, 0);
    rp_buf_init(&f, 0);
    while (at_char(sc, i, '"')) {
        size_t ks = i;
        i = skip_ws(sc, read_string(sc, i, &k, 0, NULL));
        if (!at_char(sc, i, ':'))
            break;
        size_t vs = skip_ws(sc, i + 1);
        rp_buf_reset(&f);
        if (mode == KEY_POINTER)
            pointer_step(&f, k.data ? k.data : "", k.len);
        else
            shown(&f, k.data ? k.data : "", k.len);
        if (f.len > best && strncmp(c, f.data, f.len) == 0 && key_ends(mode, c[f.len])) {
            best = f.len;
            *key_at = ks;
            *val_at = vs;
            rp_buf_reset(name);
            (void)rp_buf_append(name, k.data, k.len);
        }
        i = skip_ws(sc, skip_value(sc, vs));
        if (!at_char(sc, i, ','))
            break;
        i = skip_ws(sc, i + 1);
    }
    rp_buf_cleanup(&k);
    rp_buf_cleanup(&f);
    return best;
}

/* Element `k` (from 0) of the array at `arr`. */
static int nth(const struct scan *sc, size_t arr, long k, size_t *val_at)
{
    size_t i = skip_ws(sc, arr + 1);
    for (long j = 0; k >= 0 && i < sc->n && sc->s[i] != ']'; j++) {
        if (j == k) {
            *val_at = i;
            return 1;
        }
        i = skip_ws(sc, skip_value(sc, i));
        if (!at_char(sc, i, ','))
            break;
        i = skip_ws(sc, i + 1);
    }
    return 0;
}

static void add_key(struct loc *L, const char *k, size_t n)
{
    int plain = n > 0 && (isalpha((unsigned char)k[0]) || k[0] == '_');
    for (size_t i = 1; plain && i < n; i++)
        plain = isalnum((unsigned char)k[i]) || k[i] == '_' || k[i] == '-' || k[i] == '$';
    if (plain) {
        if (L->path.len)
            (void)rp_buf_append(&L->path, ".", 1);
        (void)rp_buf_append(&L->path, k, n);
    } else {
        (void)rp_buf_append(&L->path, "[\"", 2);
        (void)rp_json_escape(&L->path, k);
        (void)rp_buf_append(&L->path, "\"]", 2);
    }
    (void)rp_buf_append(&L->pointer, "/", 1);
    pointer_step(&L->pointer, k, n);
}

static void descend_key(struct loc *L, size_t *node, size_t val_at, const struct rp_buf *key)
{
    const char *k = key->data ? key->data : "";
    L->in_json |= strcmp(k, "json") == 0 && strcmp(L->last, "request") == 0;
    snprintf(L->last, sizeof(L->last), "%s", k);
    add_key(L, k, key->len);
    *node = L->at = val_at;
}

static int descend_index(const struct scan *sc, struct loc *L, size_t *node, long k)
{
    size_t v;
    if (!at_char(sc, *node, '[') || !nth(sc, *node, k, &v))
        return 0;
    (void)rp_buf_printf(&L->path, "[%ld]", k);
    (void)rp_buf_printf(&L->pointer, "/%ld", k);
    *node = L->at = v;
    return 1;
}

/* Follow the key `c` names (KEY_FIELD: a literal such as "steps" also works). */
static size_t follow(const struct scan *sc, struct loc *L, size_t *node, const char *c,
                     enum key_mode mode, size_t *key_at)
{
    struct rp_buf key;
    size_t k_at = 0, v_at = 0, used = 0;
    rp_buf_init(&key, 0);
    if (at_char(sc, *node, '{') && (used = find_key(sc, *node, c, mode, &k_at, &v_at, &key)))
        descend_key(L, node, v_at, &key);
    if (key_at)
        *key_at = k_at;
    rp_buf_cleanup(&key);
    return used;
}

/* A field as the parser names it ("request.headers.X-Id[2]", "tags[1]", "request.json.a[0]");
 * returns the rest of the message. Indexes count from 1 in messages, except inside `json`. */
static const char *walk_field(const struct scan *sc, struct loc *L, size_t *node, const char *c)
{
    for (int first = 1;; first = 0) {
        size_t used;
        if ((first || *c == '.') &&
            (used = follow(sc, L, node, first ? c : c + 1, KEY_FIELD, NULL))) {
            c += used + (first ? 0 : 1);
        } else if (*c == '[' && isdigit((unsigned char)c[1])) {
            char *end;
            long i = strtol(c + 1, &end, 10);
            if (*end != ']' || !descend_index(sc, L, node, L->in_json ? i : i - 1))
                break;
            c = end + 1;
        } else {
            break;
        }
    }
    return c;
}

/* The message after the location: a schema's own location (#/properties/a), a column inside a
 * string, or a key named in backquotes (unknown, duplicate or badly named: point at it). */
static void walk_tail(const struct scan *sc, struct loc *L, size_t node, const char *t)
{
    if (t[0] == '#' && t[1] == '/') {
        for (t++; *t == '/';) {
            size_t used = follow(sc, L, &node, t + 1, KEY_POINTER, NULL);
            char *end;
            if (used) {
                t += 1 + used;
            } else if (isdigit((unsigned char)t[1]) &&
                       descend_index(sc, L, &node, strtol(t + 1, &end, 10))) {
                t = end;
            } else {
                break;
            }
        }
        const char *rest = strstr(t, ": ");
        t = rest ? rest + 2 : t;
    }
    if (starts(t, "column ") && at_char(sc, node, '"')) {
        long col = strtol(t + 7, NULL, 10);
        struct rp_buf tmp;
        rp_buf_init(&tmp, 0);
        if (col >= 1)
            (void)read_string(sc, node, &tmp, (size_t)col - 1, &L->at);
        rp_buf_cleanup(&tmp);
        return;
    }
    const char *q = strchr(t, '`');
    size_t key_at;
    if (q && !strstr(t, " is required") && follow(sc, L, &node, q + 1, KEY_QUOTED, &key_at))
        L->at = key_at;
}

/* "assertion N[, severity|, stop]": assert[N-1], and its `that` for an expression's problem. */
static const char *walk_assertion(const struct scan *sc, struct loc *L, size_t *node, const char *c)
{
    char *end;
    long i = strtol(c + 10, &end, 10);
    c = end;
    if (!follow(sc, L, node, "assert", KEY_FIELD, NULL) || !descend_index(sc, L, node, i - 1))
        return c;
    if (starts(c, ", severity") || starts(c, ", stop"))
        c += 2 + follow(sc, L, node, c + 2, KEY_FIELD, NULL);
    else if (starts(c, ": ") && !starts(c + 2, "unknown key") && !starts(c + 2, "duplicate key"))
        (void)follow(sc, L, node, "that", KEY_FIELD, NULL);
    return c;
}

static void locate(const struct scan *sc, const char *msg, struct loc *L)
{
    size_t node = skip_ws(sc, 0);
    const char *c = msg;
    L->at = node;
    if (starts(c, "invalid JSON ") || starts(c, "test definition is "))
        return;
    if (starts(c, "top level: ")) {
        walk_tail(sc, L, node, c + 11);
        return;
    }
    if (starts(c, "step ") && isdigit((unsigned char)c[5])) {
        char *end;
        long i = strtol(c + 5, &end, 10);
        if (!follow(sc, L, &node, "steps", KEY_FIELD, NULL) || !descend_index(sc, L, &node, i - 1))
            return;
        c = end;
        if (starts(c, " (\"")) { /* the step's name, with \" escaped */
            for (c += 3; *c && *c != '"'; c++)
                if (*c == '\\' && c[1])
                    c++;
            c += *c ? 1 : 0;
            c += *c == ')' ? 1 : 0;
        }
        if (starts(c, ": ")) {
            walk_tail(sc, L, node, c + 2);
            return;
        }
        if (!starts(c, ", "))
            return;
        c += 2;
        if (starts(c, "assertion ") && isdigit((unsigned char)c[10]))
            c = walk_assertion(sc, L, &node, c);
        else
            c = walk_field(sc, L, &node, c);
    } else {
        c = walk_field(sc, L, &node, c);
    }
    if (starts(c, ": "))
        walk_tail(sc, L, node, c + 2);
}

/* The value that contains offset `at`, for a problem found by offset (a non-JSON word). */
static void locate_offset(const struct scan *sc, size_t at, struct loc *L)
{
    size_t node = skip_ws(sc, 0);
    struct rp_buf key;
    rp_buf_init(&key, 0);
    for (int depth = 0; depth < 256 && node < at; depth++) {
        size_t i = skip_ws(sc, node + 1), next = SIZE_MAX;
        for (long k = 0; i < sc->n && next == SIZE_MAX; k++) {
            size_t vs = i;
            if (sc->s[node] == '{') {
                if (!at_char(sc, i, '"'))
                    break;
                i = skip_ws(sc, read_string(sc, i, &key, 0, NULL));
                if (!at_char(sc, i, ':'))
                    break;
                vs = skip_ws(sc, i + 1);
            } else if (sc->s[node] != '[' || sc->s[i] == ']') {
                break;
            }
            size_t ve = skip_value(sc, vs);
            if (at >= vs && at < ve) {
                if (sc->s[node] == '{') {
                    descend_key(L, &next, vs, &key);
                } else {
                    (void)rp_buf_printf(&L->path, "[%ld]", k);
                    (void)rp_buf_printf(&L->pointer, "/%ld", k);
                    next = vs;
                }
                break;
            }
            i = skip_ws(sc, ve);
            if (!at_char(sc, i, ','))
                break;
            i = skip_ws(sc, i + 1);
        }
        if (next == SIZE_MAX)
            break;
        node = next;
    }
    L->at = at;
    rp_buf_cleanup(&key);
}

/* Lines from 1; columns from 1 in characters (a tab is one), as the parser counts them. */
static void line_col(const struct scan *sc, size_t at, long *line, long *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < at && i < sc->n; i++) {
        if (sc->s[i] == '\n') {
            ++*line;
            *col = 1;
        } else if (((unsigned char)sc->s[i] & 0xc0) != 0x80) {
            ++*col;
        }
    }
}

/* true, false, null or a JSON number. */
static int json_word(const char *s, size_t n)
{
    if ((n == 4 && (!memcmp(s, "true", 4) || !memcmp(s, "null", 4))) ||
        (n == 5 && !memcmp(s, "false", 5)))
        return 1;
    size_t i = s[0] == '-';
    if (i < n && s[i] == '0') {
        i++;
    } else if (i < n && s[i] >= '1' && s[i] <= '9') {
        while (i < n && isdigit((unsigned char)s[i]))
            i++;
    } else {
        return 0;
    }
    if (i < n && s[i] == '.') {
        if (++i >= n || !isdigit((unsigned char)s[i]))
            return 0;
        while (i < n && isdigit((unsigned char)s[i]))
            i++;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i += i + 1 < n && (s[i + 1] == '+' || s[i + 1] == '-') ? 2 : 1;
        if (i >= n || !isdigit((unsigned char)s[i]))
            return 0;
        while (i < n && isdigit((unsigned char)s[i]))
            i++;
    }
    return i == n;
}

/* libbson reads NaN and Infinity; PostgreSQL's json (test_versions.definition) does not. The
 * offset of the first word outside strings that is not JSON, or SIZE_MAX. */
static size_t non_json_word(const struct scan *sc, size_t *len)
{
    for (size_t i = 0; i < sc->n;) {
        char c = sc->s[i];
        if (c == '"') {
            i = skip_string(sc, i);
            continue;
        }
        if (is_ws(c) || strchr("{}[],:", c)) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < sc->n && !is_ws(sc->s[j]) && !strchr("{}[],:\"", sc->s[j]))
            j++;
        if (!json_word(sc->s + i, j - i)) {
            *len = j - i;
            return i;
        }
        i = j;
    }
    return SIZE_MAX;
}

/* ==== reading a definition =============================================================== */

struct defn {
    char *text; /* as stored: the user's text, or the object rendered as JSON */
    size_t len;
    int as_text; /* sent as a string: lines and columns mean something to its author */
    struct rp_test *t;
};

static void defn_cleanup(struct defn *d)
{
    free(d->text);
    rp_test_free(d->t);
    memset(d, 0, sizeof(*d));
}

/* 400 invalid_definition with the location (`at`: an offset already known, or SIZE_MAX to find
 * it from the message). Built here: the common error shape has no path/line/column. */
static void definition_error(struct dash_req *r, const struct defn *d, const char *msg, size_t at)
{
    struct scan sc = {d->text, d->len};
    struct loc L;
    struct rp_buf b;
    long line = 0, col = 0;
    const char *p = strstr(msg, " at line ");
    memset(&L, 0, sizeof(L));
    rp_buf_init(&L.path, 0);
    rp_buf_init(&L.pointer, 0);
    rp_buf_init(&b, 0);
    if (starts(msg, "invalid JSON ") && p) {
        if (sscanf(p, " at line %ld, column %ld", &line, &col) != 2)
            line = col = 0;
    } else {
        if (at == SIZE_MAX)
            locate(&sc, msg, &L);
        else
            locate_offset(&sc, at, &L);
        if (d->as_text)
            line_col(&sc, L.at, &line, &col);
    }
    (void)rp_buf_printf(&b, "{\"error\":{\"code\":\"invalid_definition\",\"message\":\"");
    (void)rp_json_escape(&b, msg);
    (void)rp_buf_printf(&b, "\",\"field\":\"definition\",\"path\":\"");
    (void)rp_json_escape(&b, L.path.data ? L.path.data : "");
    (void)rp_buf_printf(&b, "\",\"pointer\":\"");
    (void)rp_json_escape(&b, L.pointer.data ? L.pointer.data : "");
    (void)rp_buf_printf(&b, "\"");
    if (line > 0 && col > 0)
        (void)rp_buf_printf(&b, ",\"line\":%ld,\"column\":%ld", line, col);
    (void)rp_buf_printf(&b, ",\"request_id\":\"%s\"}}\n", r->request_id);
    dash_reply_json(r, 400, b.data, b.len);
    rp_buf_cleanup(&b);
    rp_buf_cleanup(&L.path);
    rp_buf_cleanup(&L.pointer);
}

/* Member "definition": an object (stored as its JSON text, as sent) or a string holding the JSON
 * text (stored as given, less a leading BOM), so the editor gets the author's layout back.
 * Checked with the worker's parser. RP_OK with `d` filled (defn_cleanup it), or RP_EINVAL
 * answered. */
static int read_definition(struct dash_req *r, const bson_t *body, struct defn *d)
{
    bson_iter_t it;
    uint32_t n = 0;
    memset(d, 0, sizeof(*d));
    if (!bson_iter_init_find(&it, body, "definition")) {
        dash_error_field(r, 400, "missing_field", "definition", "\"definition\" is required");
        return RP_EINVAL;
    }
    if (BSON_ITER_HOLDS_UTF8(&it)) {
        const char *s = bson_iter_utf8(&it, &n);
        if (memchr(s, '\0', n)) {
            dash_error_field(r, 400, "invalid_field", "definition",
                             "\"definition\" must not contain a NUL character");
            return RP_EINVAL;
        }
        if (n >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0) {
            s += 3;
            n -= 3;
        }
        d->text = rp_xstrndup(s, n);
        d->len = n;
        d->as_text = 1;
    } else if (BSON_ITER_HOLDS_DOCUMENT(&it)) {
        /* its text as sent (found in the body, which libbson accepted), not libbson's
         * rendering of it, which writes 0.1 as 0.10000000000000000555 */
        struct scan b = {r->body.data, r->body.len};
        struct rp_buf key;
        size_t k_at, v_at, root = skip_ws(&b, 0);
        rp_buf_init(&key, 0);
        if (at_char(&b, root, '{') &&
            find_key(&b, root, "definition", KEY_POINTER, &k_at, &v_at, &key) &&
            at_char(&b, v_at, '{')) {
            d->len = skip_value(&b, v_at) - v_at;
            d->text = rp_xstrndup(b.s + v_at, d->len);
        }
        rp_buf_cleanup(&key);
        if (!d->text) {
            dash_error_field(r, 400, "invalid_field", "definition", "\"definition\" is malformed");
            return RP_EINVAL;
        }
    } else {
        dash_error_field(r, 400, "invalid_field", "definition",
                         "\"definition\" must be a test definition: a JSON object, or a string "
                         "holding its JSON text (docs/tests.md)");
        return RP_EINVAL;
    }
    struct rp_error e = {0};
    if (rp_test_parse(d->text, d->len, &d->t, &e) != RP_OK) {
        definition_error(r, d, e.msg[0] ? e.msg : "invalid test definition", SIZE_MAX);
        defn_cleanup(d);
        return RP_EINVAL;
    }
    struct scan sc = {d->text, d->len};
    size_t wlen = 0, at = non_json_word(&sc, &wlen);
    if (at != SIZE_MAX) {
        char *msg = rp_xasprintf("`%.*s` is not JSON (definitions are stored as standard JSON): "
                                 "write a number, or a string such as \"%.*s\"",
                                 (int)(wlen > 40 ? 40 : wlen), d->text + at,
                                 (int)(wlen > 40 ? 40 : wlen), d->text + at);
        definition_error(r, d, msg, at);
        free(msg);
        defn_cleanup(d);
        return RP_EINVAL;
    }
    return RP_OK;
}

/* "tags": the request's; else the definition's when it has some (`t` may be NULL). `*have` is
 * 0 when neither gives tags (keep the current ones). */
static int read_tags(struct dash_req *r, const bson_t *body, const struct rp_test *t,
                     struct rp_buf *lit, int *have)
{
    if (dash_get_str_array(r, body, "tags", 0, MAX_TAGS, dash_check_tag, lit, have) != RP_OK)
        return RP_EINVAL;
    if (*have || !t || t->n_tags == 0)
        return RP_OK;
    (void)rp_buf_append(lit, "{", 1);
    for (size_t i = 0; i < t->n_tags; i++) {
        const char *why = dash_check_tag(t->tags[i]);
        if (why) {
            dash_error_field(r, 400, "invalid_field", "tags",
                             "the definition's tag \"%.64s\": %s (or give \"tags\" in the request)",
                             t->tags[i], why);
            return RP_EINVAL;
        }
        rp_pg_array_add(lit, t->tags[i]);
    }
    (void)rp_buf_append(lit, "}", 1);
    *have = 1;
    return RP_OK;
}

static int read_limit(struct dash_req *r, long *out)
{
    const char *s = dash_arg(r, "limit");
    char *end = NULL;
    long v = s && isdigit((unsigned char)s[0]) ? strtol(s, &end, 10) : -1;
    *out = DEFAULT_LIMIT;
    if (!s)
        return RP_OK;
    if (v < 1 || v > MAX_LIMIT || *end) {
        dash_error_field(r, 400, "invalid_field", "limit", "limit must be an integer from 1 to %d",
                         MAX_LIMIT);
        return RP_EINVAL;
    }
    *out = v;
    return RP_OK;
}

/* ==== reads ================================================================================ */

#define FINISHED "('passed', 'failed', 'error')"

/* One test with its current definition (as text, and as JSON). */
static void reply_test(struct dash_req *r, unsigned status, const char *project, const char *test)
{
    const char *p[2] = {test, project};
    dash_query_reply(r, status, "test",
                     "SELECT json_build_object('id', t.id, 'project_id', t.project_id, 'name', "
                     "t.name, 'tags', t.tags, 'current_version', t.current_version, 'version', "
                     "v.version, 'version_created_at', v.created_at, 'created_at', t.created_at, "
                     "'updated_at', t.updated_at, 'definition_text', v.definition, 'definition', "
                     "v.definition::json) "
                     "FROM tests t JOIN test_versions v ON v.test_id = t.id AND v.version = "
                     "t.current_version WHERE t.id = $1 AND t.project_id = $2",
                     2, p);
}

/* The test list: one statement, driven by the (project_id, name) index in name order (the
 * cursor is the last name, hex: names are unique in a project), each test's runs read through
 * runs_test_recent (test_id, fire_time DESC) INCLUDE (status), migration 0005, in LATERAL
 * subqueries: the latest run, the last 20 finished ones (whose newest gives ?status), and the last
 * 24 hours for the uptime. */
static const char list_sql[] =
    "WITH page AS ("
    " SELECT t.name, json_build_object('id', t.id, 'name', t.name, 'tags', t.tags, "
    "  'current_version', t.current_version, 'created_at', t.created_at, 'updated_at', "
    "  t.updated_at, 'last_run', CASE WHEN lr.id IS NOT NULL THEN json_build_object('id', lr.id, "
    "  'status', lr.status, 'fire_time', lr.fire_time, 'finished_at', lr.finished_at, "
    "  'duration_ms', lr.duration_ms) END, 'uptime_percent', up.pct, "
    "  'recent', COALESCE(rc.items, '[]'::json), "
    "  'schedules', (SELECT count(*) FROM schedules s WHERE s.test_id = t.id)) AS j "
    " FROM tests t "
    " LEFT JOIN LATERAL (SELECT r.status FROM runs r WHERE r.test_id = t.id "
    "   AND r.status IN " FINISHED " ORDER BY r.fire_time DESC LIMIT 1) ls ON true "
    " LEFT JOIN LATERAL (SELECT r.id, r.status, r.fire_time, r.finished_at, r.duration_ms "
    "   FROM runs r WHERE r.test_id = t.id ORDER BY r.fire_time DESC LIMIT 1) lr ON true "
    " CROSS JOIN LATERAL (SELECT json_agg(json_build_object('id', f.id, 'status', f.status, "
    "   'fire_time', f.fire_time) ORDER BY f.fire_time, f.id) AS items "
    "   FROM (SELECT r.id, r.status, r.fire_time FROM runs r WHERE r.test_id = t.id "
    "     AND r.status IN " FINISHED " ORDER BY r.fire_time DESC LIMIT 20) f) rc "
    " CROSS JOIN LATERAL (SELECT round(100.0 * count(*) FILTER (WHERE r.status = 'passed') "
    "   / NULLIF(count(*), 0), 2) AS pct FROM runs r WHERE r.test_id = t.id "
    "   AND r.fire_time > now() - interval '24 hours' AND r.status IN " FINISHED ") up "
    " WHERE t.project_id = $1 AND ($2::text IS NULL OR $2 = ANY (t.tags)) "
    "  AND ($3::text IS NULL OR strpos(lower(t.name), lower($3)) > 0) "
    "  AND ($4::text IS NULL OR ($4 = 'passing' AND ls.status = 'passed') "
    "       OR ($4 = 'failing' AND ls.status IN ('failed', 'error'))) "
    "  AND ($5::text IS NULL OR t.name > $5) "
    " ORDER BY t.name LIMIT $6::int + 1) "
    "SELECT json_build_object('items', COALESCE((SELECT json_agg(x.j ORDER BY x.name) FROM "
    "  (SELECT * FROM page ORDER BY name LIMIT $6::int) x), '[]'::json), 'next_cursor', "
    "  CASE WHEN (SELECT count(*) FROM page) > $6::int THEN (SELECT encode(convert_to(y.name, "
    "  'UTF8'), 'hex') FROM (SELECT name FROM page ORDER BY name LIMIT 1 OFFSET $6::int - 1) y) "
    "  END) FROM projects WHERE id = $1";

/* The list cursor: a test name, hex-encoded. NULL when malformed. */
static char *decode_name_cursor(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n % 2 || n > 1600)
        return NULL;
    char *out = rp_xmalloc(n / 2 + 1);
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hex_digit(s[2 * i]), lo = hex_digit(s[2 * i + 1]);
        if (hi < 0 || lo < 0 || (hi | lo) == 0) {
            free(out);
            return NULL;
        }
        out[i] = (char)(hi * 16 + lo);
    }
    out[n / 2] = '\0';
    if (!bson_utf8_validate(out, n / 2, false)) {
        free(out);
        return NULL;
    }
    return out;
}

/* UTF-8 of at most `max` characters. */
static int text_ok(const char *s, size_t max)
{
    size_t chars = 0;
    if (!bson_utf8_validate(s, strlen(s), false))
        return 0;
    for (const char *p = s; *p && chars <= max; p = bson_utf8_next_char(p))
        chars++;
    return chars <= max;
}

static void list_tests(struct dash_req *r)
{
    const char *tag = dash_arg(r, "tag"), *q = dash_arg(r, "q"), *status = dash_arg(r, "status");
    const char *cursor = dash_arg(r, "cursor");
    char *after = NULL, limit_s[16];
    long limit;
    if (read_limit(r, &limit) != RP_OK)
        return;
    if (tag && dash_check_tag(tag)) {
        dash_error_field(r, 400, "invalid_field", "tag", "tag: %s", dash_check_tag(tag));
        return;
    }
    if (q && !text_ok(q, 200)) {
        dash_error_field(r, 400, "invalid_field", "q", "q must be text of at most 200 characters");
        return;
    }
    if (status && strcmp(status, "passing") != 0 && strcmp(status, "failing") != 0) {
        dash_error_field(r, 400, "invalid_field", "status", "status must be passing or failing");
        return;
    }
    if (cursor && !(after = decode_name_cursor(cursor))) {
        dash_error_field(r, 400, "invalid_field", "cursor",
                         "cursor must be the next_cursor of a previous page");
        return;
    }
    snprintf(limit_s, sizeof(limit_s), "%ld", limit);
    const char *p[6] = {dash_param(r, "project"), tag, q && *q ? q : NULL, status, after, limit_s};
    dash_query_reply(r, 200, "project", list_sql, 6, p);
    free(after);
}

static void get_test(struct dash_req *r)
{
    const char *test = dash_param_uuid(r, "test", "test");
    if (test)
        reply_test(r, 200, dash_param(r, "project"), test);
}

static void list_versions(struct dash_req *r)
{
    const char *test = dash_param_uuid(r, "test", "test"), *cursor = dash_arg(r, "cursor");
    char limit_s[16];
    long limit;
    if (!test || read_limit(r, &limit) != RP_OK)
        return;
    if (cursor &&
        (strspn(cursor, "0123456789") != strlen(cursor) || !*cursor || strlen(cursor) > 9)) {
        dash_error_field(r, 400, "invalid_field", "cursor",
                         "cursor must be the next_cursor of a previous page");
        return;
    }
    snprintf(limit_s, sizeof(limit_s), "%ld", limit);
    const char *p[4] = {test, dash_param(r, "project"), cursor, limit_s};
    dash_query_reply(
        r, 200, "test",
        "WITH t AS (SELECT id, current_version FROM tests WHERE id = $1 AND project_id = $2), "
        "page AS (SELECT v.version, v.created_at, octet_length(v.definition) AS size "
        "  FROM test_versions v JOIN t ON v.test_id = t.id "
        "  WHERE $3::int IS NULL OR v.version < $3::int ORDER BY v.version DESC LIMIT $4::int + 1) "
        "SELECT json_build_object('current_version', t.current_version, 'items', "
        "  COALESCE((SELECT json_agg(json_build_object('version', x.version, 'created_at', "
        "  x.created_at, 'size', x.size) ORDER BY x.version DESC) FROM (SELECT * FROM page "
        "  ORDER BY version DESC LIMIT $4::int) x), '[]'::json), 'next_cursor', "
        "  CASE WHEN (SELECT count(*) FROM page) > $4::int THEN (SELECT min(y.version)::text "
        "  FROM (SELECT version FROM page ORDER BY version DESC LIMIT $4::int) y) END) FROM t",
        4, p);
}

static void get_version(struct dash_req *r)
{
    const char *test = dash_param_uuid(r, "test", "test"), *v = dash_param(r, "version");
    if (!test)
        return;
    if (!v || strspn(v, "0123456789") != strlen(v) || strlen(v) > 9 || atol(v) < 1) {
        dash_error(r, 404, "not_found", "version not found (versions are numbered from 1)");
        return;
    }
    const char *p[3] = {test, dash_param(r, "project"), v};
    dash_query_reply(r, 200, "version",
                     "SELECT json_build_object('test_id', v.test_id, 'version', v.version, "
                     "'created_at', v.created_at, 'size', octet_length(v.definition), "
                     "'definition_text', v.definition, 'definition', v.definition::json) "
                     "FROM test_versions v JOIN tests t ON t.id = v.test_id "
                     "WHERE v.test_id = $1 AND t.project_id = $2 AND v.version = $3::int",
                     3, p);
}

static void validate_test(struct dash_req *r)
{
    bson_t body;
    struct defn d;
    static const char *const allowed[] = {"definition", NULL};
    if (r->who.is_admin) { /* owner of any id: say so when the project does not exist */
        const char *p[1] = {dash_param(r, "project")};
        PGresult *res = NULL;
        if (dash_exec(r, "project", "SELECT 1 FROM projects WHERE id = $1", 1, p, &res) != RP_OK)
            return;
        int n = PQntuples(res);
        PQclear(res);
        if (n != 1) {
            dash_error(r, 404, "not_found", "project not found");
            return;
        }
    }
    if (dash_body(r, &body) != RP_OK)
        return;
    if (dash_only(r, &body, allowed) == RP_OK && read_definition(r, &body, &d) == RP_OK) {
        struct rp_buf b;
        rp_buf_init(&b, 0);
        (void)rp_buf_printf(&b, "{\"valid\":true,\"name\":\"");
        (void)rp_json_escape(&b, d.t->name);
        (void)rp_buf_printf(&b, "\",\"steps\":%zu}\n", d.t->n_steps);
        dash_reply_json(r, 200, b.data, b.len);
        rp_buf_cleanup(&b);
        defn_cleanup(&d);
    }
    bson_destroy(&body);
}

/* ==== writes =============================================================================== */

struct test_in {
    const char *project, *test;
    const char *name;     /* NULL: keep */
    const char *tags;     /* PostgreSQL array literal; NULL: keep */
    const struct defn *d; /* NULL: no new version (PATCH) */
    char id[37];
};

static int create_tx(struct dash_req *r, struct rp_pg *pg, void *ud)
{
    struct test_in *in = ud;
    PGresult *res = NULL;
    const char *p[4] = {in->project, in->name, in->tags, in->d->text};
    int rc = dash_tx_exec(r, pg, "test",
                          "WITH t AS (INSERT INTO tests (project_id, name, tags, current_version) "
                          "  SELECT p.id, $2, COALESCE($3::text[], '{}'), 1 FROM projects p "
                          "  WHERE p.id = $1 RETURNING id), "
                          "v AS (INSERT INTO test_versions (test_id, version, definition) "
                          "  SELECT id, 1, $4 FROM t) "
                          "SELECT id FROM t",
                          4, p, &res);
    if (rc != RP_OK)
        return rc;
    if (PQntuples(res) != 1) {
        PQclear(res);
        dash_error(r, 404, "not_found", "project not found");
        return RP_ENOENT;
    }
    snprintf(in->id, sizeof(in->id), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return dash_audit(r, pg, in->project, "test.create", "test", in->id, "{\"version\":1}");
}

static void create_test(struct dash_req *r)
{
    bson_t body;
    struct defn d = {0};
    struct rp_buf tags;
    int have_tags = 0;
    static const char *const allowed[] = {"name", "tags", "definition", NULL};
    struct test_in in = {.project = dash_param(r, "project"), .d = &d};
    if (dash_body(r, &body) != RP_OK)
        return;
    rp_buf_init(&tags, 0);
    if (dash_only(r, &body, allowed) != RP_OK ||
        dash_get_str(r, &body, "name", 0, 1, 200, &in.name, NULL) != RP_OK ||
        read_definition(r, &body, &d) != RP_OK ||
        read_tags(r, &body, d.t, &tags, &have_tags) != RP_OK)
        goto out;
    in.name = in.name ? in.name : d.t->name;
    in.tags = have_tags ? tags.data : NULL;
    if (dash_tx(r, create_tx, &in) == RP_OK)
        reply_test(r, 201, in.project, in.id);
out:
    defn_cleanup(&d);
    rp_buf_cleanup(&tags);
    bson_destroy(&body);
}

/* A save (PUT: a new version) or a change of name/tags (PATCH), the tests row locked. */
static int update_tx(struct dash_req *r, struct rp_pg *pg, void *ud)
{
    struct test_in *in = ud;
    PGresult *res = NULL;
    const char *p[2] = {in->test, in->project};
    int rc = dash_tx_exec(r, pg, "test",
                          "SELECT current_version + 1 FROM tests WHERE id = $1 AND project_id = $2 "
                          "FOR UPDATE",
                          2, p, &res);
    if (rc != RP_OK)
        return rc;
    if (PQntuples(res) != 1) {
        PQclear(res);
        dash_error(r, 404, "not_found", "test not found");
        return RP_ENOENT;
    }
    char version[16], details[48];
    snprintf(version, sizeof(version), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    if (in->d) {
        const char *v[3] = {in->test, version, in->d->text};
        rc = dash_tx_exec(r, pg, "test version",
                          "INSERT INTO test_versions (test_id, version, definition) "
                          "VALUES ($1, $2::int, $3)",
                          3, v, NULL);
        if (rc != RP_OK)
            return rc;
    }
    const char *u[4] = {in->test, in->d ? version : NULL, in->name, in->tags};
    rc = dash_tx_exec(r, pg, "test",
                      "UPDATE tests SET current_version = COALESCE($2::int, current_version), "
                      "name = COALESCE($3, name), tags = COALESCE($4::text[], tags), "
                      "updated_at = now() WHERE id = $1",
                      4, u, NULL);
    if (rc != RP_OK)
        return rc;
    snprintf(details, sizeof(details), "{\"version\":%s}", version);
    return dash_audit(r, pg, in->project, in->d ? "test.save" : "test.update", "test", in->test,
                      in->d ? details : NULL);
}

static void save_test(struct dash_req *r)
{
    bson_t body;
    struct defn d = {0};
    struct rp_buf tags;
    int have_tags = 0;
    static const char *const allowed[] = {"definition", "name", "tags", NULL};
    struct test_in in = {.project = dash_param(r, "project"), .d = &d};
    if (!(in.test = dash_param_uuid(r, "test", "test")) || dash_body(r, &body) != RP_OK)
        return;
    rp_buf_init(&tags, 0);
    if (dash_only(r, &body, allowed) != RP_OK ||
        dash_get_str(r, &body, "name", 0, 1, 200, &in.name, NULL) != RP_OK ||
        read_definition(r, &body, &d) != RP_OK ||
        read_tags(r, &body, d.t, &tags, &have_tags) != RP_OK)
        goto out;
    in.tags = have_tags ? tags.data : NULL;
    if (dash_tx(r, update_tx, &in) == RP_OK)
        reply_test(r, 200, in.project, in.test);
out:
    defn_cleanup(&d);
    rp_buf_cleanup(&tags);
    bson_destroy(&body);
}

static void patch_test(struct dash_req *r)
{
    bson_t body;
    struct rp_buf tags;
    int have_tags = 0;
    static const char *const allowed[] = {"name", "tags", NULL};
    struct test_in in = {.project = dash_param(r, "project")};
    if (!(in.test = dash_param_uuid(r, "test", "test")) || dash_body(r, &body) != RP_OK)
        return;
    rp_buf_init(&tags, 0);
    if (dash_only(r, &body, allowed) != RP_OK ||
        dash_get_str(r, &body, "name", 0, 1, 200, &in.name, NULL) != RP_OK ||
        read_tags(r, &body, NULL, &tags, &have_tags) != RP_OK)
        goto out;
    in.tags = have_tags ? tags.data : NULL;
    if ((!in.name && !in.tags) || dash_tx(r, update_tx, &in) == RP_OK)
        reply_test(r, 200, in.project, in.test); /* nothing to change: the test as it is */
out:
    rp_buf_cleanup(&tags);
    bson_destroy(&body);
}

static int delete_tx(struct dash_req *r, struct rp_pg *pg, void *ud)
{
    struct test_in *in = ud;
    PGresult *res = NULL;
    const char *p[2] = {in->test, in->project};
    int rc = dash_audit(r, pg, in->project, "test.delete", "test", in->test, NULL);
    if (rc != RP_OK)
        return rc;
    rc = dash_tx_exec(r, pg, "test",
                      "DELETE FROM tests WHERE id = $1 AND project_id = $2 RETURNING id", 2, p,
                      &res);
    if (rc != RP_OK)
        return rc;
    int n = PQntuples(res);
    PQclear(res);
    if (n != 1) {
        dash_error(r, 404, "not_found", "test not found");
        return RP_ENOENT; /* the audit row rolls back with it */
    }
    return RP_OK;
}

static void delete_test(struct dash_req *r)
{
    struct test_in in = {.project = dash_param(r, "project")};
    if ((in.test = dash_param_uuid(r, "test", "test")) && dash_tx(r, delete_tx, &in) == RP_OK)
        dash_reply_empty(r, 204);
}

/* ==== run now ============================================================================== */

struct run_in {
    const char *project, *test, *env, *location;
    char *overrides; /* JSON object text or NULL */
    char run_id[RP_UUID_LEN + 1];
    char *reply; /* the answer, made by the INSERT (the run may be queued a moment later) */
};

static int run_tx(struct dash_req *r, struct rp_pg *pg, void *ud)
{
    struct run_in *in = ud;
    PGresult *res = NULL;
    const char *p[2] = {in->test, in->project};
    free(in->reply);
    in->reply = NULL;
    int rc = dash_tx_exec(r, pg, "test",
                          "SELECT current_version FROM tests WHERE id = $1 AND project_id = $2 "
                          "FOR KEY SHARE",
                          2, p, &res);
    if (rc != RP_OK)
        return rc;
    if (PQntuples(res) != 1) {
        PQclear(res);
        dash_error(r, 404, "not_found", "test not found");
        return RP_ENOENT;
    }
    char version[16];
    snprintf(version, sizeof(version), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    if (in->env) {
        const char *e[2] = {in->env, in->project};
        rc = dash_tx_exec(r, pg, "environment",
                          "SELECT 1 FROM environments WHERE id = $1 AND project_id = $2", 2, e,
                          &res);
        if (rc != RP_OK)
            return rc;
        int n = PQntuples(res);
        PQclear(res);
        if (n != 1) {
            dash_error_field(r, 400, "unknown_reference", "environment_id",
                             "environment_id: the project has no such environment");
            return RP_EINVAL;
        }
    }
    const char *ip[8] = {in->run_id,   in->project,  in->test,
                         version,      in->env,      r->who.kind == DASH_API_KEY ? "api" : "manual",
                         in->location, in->overrides};
    rc = dash_tx_exec(r, pg, "run",
                      "INSERT INTO runs (id, project_id, test_id, test_version, environment_id, "
                      "fire_time, trigger, location, status, lease_until, overrides) "
                      "VALUES ($1, $2, $3, $4::int, $5, now(), $6, $7, 'pending', now(), "
                      "$8::jsonb) RETURNING json_build_object('run_id', id, 'status', status, "
                      "'project_id', project_id, 'test_id', test_id, 'test_version', "
                      "test_version, 'environment_id', environment_id, 'location', location, "
                      "'trigger', trigger, 'fire_time', fire_time)",
                      8, ip, &res);
    if (rc != RP_OK)
        return rc;
    in->reply = rp_xstrdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    char *details = rp_xasprintf("{\"test_id\":\"%s\",\"test_version\":%s}", in->test, version);
    rc = dash_audit(r, pg, in->project, "test.run", "run", in->run_id, details);
    free(details);
    return rc;
}

/* {"value": v[, "secret": bool]}, the variables' wrapper form: `val` on v. */
static int wrapped(const bson_iter_t *it, bson_iter_t *val, int *secret)
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

/* "variables" (the override layer) as runs.overrides stores it, the same as the CI trigger
 * (api_runs.c): checked as the worker loads it, each secret sealed as {"secret": true,
 * "sealed": "v1:..."} (the JSON text of its value), never kept in clear. RP_OK with *out (NULL
 * when absent; bson_free it) or RP_EINVAL answered. */
static int read_overrides(struct dash_req *r, const bson_t *body, char **out)
{
    bson_iter_t it, c;
    struct rp_error e = {0};
    *out = NULL;
    if (!bson_iter_init_find(&it, body, "variables") || BSON_ITER_HOLDS_NULL(&it))
        return RP_OK;
    if (!BSON_ITER_HOLDS_DOCUMENT(&it) || !bson_iter_recurse(&it, &c)) {
        dash_error_field(r, 400, "invalid_field", "variables",
                         "\"variables\" must be a JSON object of name: value");
        return RP_EINVAL;
    }
    struct rp_vars *vars = rp_vars_new();
    int rc = rp_vars_load_object(vars, RP_LAYER_OVERRIDE, &it, &e);
    rp_vars_free(vars);
    if (rc != RP_OK) {
        dash_error_field(r, 400, "invalid_field", "variables", "variables: %s", e.msg);
        return RP_EINVAL;
    }
    bson_t stored = BSON_INITIALIZER, w;
    while (rc == RP_OK && bson_iter_next(&c)) {
        bson_iter_t val, probe;
        int secret = 0;
        const char *key = bson_iter_key(&c);
        if (BSON_ITER_HOLDS_DOCUMENT(&c) && bson_iter_recurse(&c, &probe) &&
            bson_iter_find(&probe, "sealed")) {
            dash_error_field(r, 400, "invalid_field", "variables",
                             "variables: \"%.128s\": send a secret as {\"value\": ..., "
                             "\"secret\": true}",
                             key);
            rc = RP_EINVAL;
        } else if (!wrapped(&c, &val, &secret) || !secret) {
            bson_append_iter(&stored, NULL, -1, &c);
        } else {
            struct rp_value v;
            rp_value_from_iter(&v, &val);
            char *text = rp_value_to_json(&v, 0), *box = dash_seal(r->app, text);
            rp_value_clear(&v);
            free(text);
            if (!box) {
                dash_error_field(r, 400, "invalid_field", "variables",
                                 "variables: \"%.128s\" is secret, and the dashboard has no "
                                 "RAMPART_SECRET_KEY to keep it with",
                                 key);
                rc = RP_EINVAL;
                break;
            }
            bson_append_document_begin(&stored, key, -1, &w);
            BSON_APPEND_BOOL(&w, "secret", true);
            BSON_APPEND_UTF8(&w, "sealed", box);
            bson_append_document_end(&stored, &w);
            free(box);
        }
    }
    if (rc == RP_OK)
        *out = bson_as_relaxed_extended_json(&stored, NULL);
    bson_destroy(&stored);
    return rc;
}

static void run_test(struct dash_req *r)
{
    bson_t body = BSON_INITIALIZER;
    static const char *const allowed[] = {"environment_id", "location", "variables", NULL};
    struct run_in in = {.project = dash_param(r, "project"), .location = "default"};
    const char *location = NULL;
    if (!(in.test = dash_param_uuid(r, "test", "test")))
        return;
    if (r->body.len > 0) { /* every member is optional: no body at all is fine */
        bson_destroy(&body);
        if (dash_body(r, &body) != RP_OK)
            return;
    }
    if (dash_only(r, &body, allowed) != RP_OK ||
        dash_get_str(r, &body, "environment_id", DASH_NULLABLE, 36, 36, &in.env, NULL) != RP_OK ||
        dash_get_str(r, &body, "location", 0, 1, 32, &location, NULL) != RP_OK ||
        read_overrides(r, &body, &in.overrides) != RP_OK)
        goto out;
    if (in.env && !rp_uuid_valid(in.env)) {
        dash_error_field(r, 400, "invalid_field", "environment_id",
                         "environment_id must be an environment's id (a UUID)");
        goto out;
    }
    if (location && dash_check_location(location)) {
        dash_error_field(r, 400, "invalid_field", "location", "location: %s",
                         dash_check_location(location));
        goto out;
    }
    in.location = location ? location : in.location;
    rp_uuid_v7(in.run_id);
    if (dash_tx(r, run_tx, &in) == RP_OK) {
        char *where = rp_xasprintf("/api/v1/projects/%s/runs/%s", in.project, in.run_id);
        dash_reply_json(r, 202, in.reply, strlen(in.reply));
        dash_add_header(r, "Location", where);
        free(where);
    }
out:
    free(in.reply);
    bson_free(in.overrides);
    bson_destroy(&body);
}

const struct dash_route dash_routes_tests[] = {
    {"GET", "/api/v1/projects/{project}/tests", DASH_PROJECT_VIEWER, list_tests},
    {"POST", "/api/v1/projects/{project}/tests", DASH_PROJECT_EDITOR, create_test},
    {"POST", "/api/v1/projects/{project}/tests/validate", DASH_PROJECT_VIEWER, validate_test},
    {"GET", "/api/v1/projects/{project}/tests/{test}", DASH_PROJECT_VIEWER, get_test},
    {"PUT", "/api/v1/projects/{project}/tests/{test}", DASH_PROJECT_EDITOR, save_test},
    {"PATCH", "/api/v1/projects/{project}/tests/{test}", DASH_PROJECT_EDITOR, patch_test},
    {"DELETE", "/api/v1/projects/{project}/tests/{test}", DASH_PROJECT_EDITOR, delete_test},
    {"GET", "/api/v1/projects/{project}/tests/{test}/versions", DASH_PROJECT_VIEWER, list_versions},
    {"GET", "/api/v1/projects/{project}/tests/{test}/versions/{version}", DASH_PROJECT_VIEWER,
     get_version},
    {"POST", "/api/v1/projects/{project}/tests/{test}/run", DASH_PROJECT_EDITOR, run_test},
    {NULL, NULL, 0, NULL},
};
