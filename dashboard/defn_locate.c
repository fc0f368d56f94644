/* Where a test definition's problem is, for the editor (api_tests.c answers with it): the
 * parser names a spot in words ("step 2 (\"login\"), request.headers.X-Id[1]: ..."); this
 * walks the same names through the definition's JSON text to give the spot as a path, a JSON
 * pointer and, for a definition sent as text, a line and column. Also the two other readings of
 * raw JSON text the tests API needs: a member's text as sent, and a word that is not JSON.
 * Apart from api_tests.c because it is a scanner of its own (about 600 lines), with no route. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dash.h"
#include "rampart/log.h"

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

/* ==== the answer, and the other readings of the text ======================================= */

/* Built here: the common error shape (dash_error) has no path/line/column. */
void dash_defn_error(struct dash_req *r, const char *text, size_t len, int as_text, const char *msg,
                     size_t at)
{
    struct scan sc = {text, len};
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
        if (as_text)
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

int dash_defn_body_text(const char *body, size_t len, size_t *off, size_t *text_len)
{
    struct scan b = {body, len};
    struct rp_buf key;
    size_t k_at, v_at, root = skip_ws(&b, 0);
    int found = 0;
    rp_buf_init(&key, 0);
    if (at_char(&b, root, '{') &&
        find_key(&b, root, "definition", KEY_POINTER, &k_at, &v_at, &key) &&
        at_char(&b, v_at, '{')) {
        *off = v_at;
        *text_len = skip_value(&b, v_at) - v_at;
        found = 1;
    }
    rp_buf_cleanup(&key);
    return found;
}

size_t dash_defn_non_json_word(const char *text, size_t len, size_t *word_len)
{
    struct scan sc = {text, len};
    return non_json_word(&sc, word_len);
}
