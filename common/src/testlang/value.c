/* Values: JSON text parsed by libbson into {"v": <value>}, and the small tagged value type the
 * expression language, variables and captures share. libbson's reader only takes objects, so
 * the text is wrapped; offsets in errors are mapped back to the caller's text, and whatever the
 * wrapper could let through (a second member, trailing text) is refused. Integers beyond int64
 * become doubles (libbson would refuse some and silently wrap others). libbson also reads MongoDB
 * extended JSON
 * ({"$oid": ...}); such values come back as strings (see rp_value_from_iter). */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rampart/mem.h"
#include "rampart/testlang.h"

#define WRAP_HEAD "{\"v\":"
#define WRAP_TAIL "\n}"

/* Offset of the first byte after the single top-level value that could not be part of it (a
 * `,` or a closing bracket at depth 0), or `len` when there is none. */
static size_t top_level_junk(const char *s, size_t len)
{
    long depth = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '"') {
            for (i++; i < len && s[i] != '"'; i++)
                if (s[i] == '\\')
                    i++;
        } else if (c == '[' || c == '{') {
            depth++;
        } else if (c == ']' || c == '}') {
            if (--depth < 0)
                return i;
        } else if (c == ',' && depth == 0) {
            return i;
        }
    }
    return len;
}

/* Copy `s` to `out`, appending ".0" to integer literals outside int64 so libbson reads them as
 * doubles (it refuses some and silently wraps others). `*ins` receives the offsets (in `s`)
 * after which 2 bytes were inserted. */
static size_t copy_fix_big_ints(const char *s, size_t len, struct rp_buf *out, size_t **ins)
{
    size_t n_ins = 0, i = 0, from = 0;
    while (i < len) {
        char c = s[i];
        if (c == '"') {
            for (i++; i < len && s[i] != '"'; i++)
                if (s[i] == '\\')
                    i++;
            i++;
            continue;
        }
        if (c != '-' && !(c >= '0' && c <= '9')) {
            i++;
            continue;
        }
        size_t j = i + 1;
        int plain = 1;
        while (j < len && s[j] && strchr("0123456789.eE+-", s[j])) {
            if (s[j] == '.' || s[j] == 'e' || s[j] == 'E')
                plain = 0;
            j++;
        }
        if (plain && j - i >= 19 && j - i < 64) {
            char tmp[64];
            memcpy(tmp, s + i, j - i);
            tmp[j - i] = '\0';
            errno = 0;
            (void)strtoll(tmp, NULL, 10);
            if (errno == ERANGE) {
                (void)rp_buf_append(out, s + from, j - from);
                (void)rp_buf_append(out, ".0", 2);
                from = j;
                *ins = rp_xrealloc(*ins, (n_ins + 1) * sizeof(**ins));
                (*ins)[n_ins++] = j;
            }
        }
        i = j;
    }
    if (from < len)
        (void)rp_buf_append(out, s + from, len - from);
    return n_ins;
}

/* Turn jsonsl's "SPECIAL_EXPECTED" into "special expected". */
static void humanize(char *dst, size_t cap, const char *src, size_t n)
{
    size_t j = 0;
    for (size_t i = 0; i < n && j + 1 < cap; i++) {
        char c = src[i];
        dst[j++] = c == '_' ? ' ' : (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    dst[j] = '\0';
}

static int parse_error(const char *msg, size_t len, const size_t *ins, size_t n_ins,
                       struct rp_error *err)
{
    const char *p = strstr(msg, "position ");
    if (strstr(msg, "Incomplete JSON"))
        return rp_error_set(err, RP_EINVAL, "invalid JSON at byte %zu: unexpected end of input",
                            len);
    if (!p)
        return rp_error_set(err, RP_EINVAL, "invalid JSON: %s", msg);
    long pos = strtol(p + 9, NULL, 10) - (long)strlen(WRAP_HEAD);
    for (size_t i = 0; i < n_ins && pos > 0; i++)
        if ((long)ins[i] < pos)
            pos -= 2;
    if (pos < 0)
        pos = 0;
    char reason[64] = "syntax error";
    const char *q = strchr(p, '"');
    const char *q2 = q ? strchr(q + 1, '"') : NULL;
    if (q && q2)
        humanize(reason, sizeof(reason), q + 1, (size_t)(q2 - q - 1));
    static const char *const friendly[][2] = {
        {"special expected", "unexpected character"},
        {"special incomplete", "misspelled true, false or null"},
        {"cant insert", "missing `,` or `:`"},
    };
    for (size_t i = 0; i < sizeof(friendly) / sizeof(friendly[0]); i++)
        if (strcmp(reason, friendly[i][0]) == 0)
            snprintf(reason, sizeof(reason), "%s", friendly[i][1]);
    if ((size_t)pos >= len)
        return rp_error_set(err, RP_EINVAL,
                            "invalid JSON at byte %zu: unexpected end of input (%s)", len, reason);
    return rp_error_set(err, RP_EINVAL, "invalid JSON at byte %ld: %s", pos, reason);
}

/* Read exactly one document from `data` (the wrapped text). */
static int read_one(const char *data, size_t n, bson_t **out, bson_error_t *berr)
{
    bson_json_reader_t *rd = bson_json_data_reader_new(false, 0);
    bson_t *doc = bson_new();
    int rc = -1;
    bson_json_data_reader_ingest(rd, (const uint8_t *)data, n);
    int r = bson_json_reader_read(rd, doc, berr);
    if (r == 1) {
        bson_t extra = BSON_INITIALIZER;
        bson_error_t e2;
        int r2 = bson_json_reader_read(rd, &extra, &e2);
        bson_destroy(&extra);
        rc = r2 == 0 ? 0 : 1; /* 1: something after the document */
    } else if (r == 0) {
        bson_set_error(berr, 0, 0, "empty input");
    }
    bson_json_reader_destroy(rd);
    if (rc == 0) {
        *out = doc;
        return 0;
    }
    bson_destroy(doc);
    return rc;
}

int rp_json_parse(const char *text, size_t len, size_t max_len, bson_t **out, struct rp_error *err)
{
    int rc = RP_EINVAL;
    struct rp_buf buf;
    bson_t *doc = NULL;
    bson_error_t berr;
    size_t *ins = NULL, n_ins = 0;

    rp_buf_init(&buf, 0);
    if (max_len && len > max_len)
        return rp_error_set(err, RP_ENOMEM, "JSON text of %zu bytes is over the limit of %zu", len,
                            max_len);
    if (memchr(text, '\0', len)) {
        size_t at = (size_t)((const char *)memchr(text, '\0', len) - text);
        rc = rp_error_set(err, RP_EINVAL, "invalid JSON at byte %zu: NUL byte", at);
        goto out;
    }
    (void)rp_buf_append(&buf, WRAP_HEAD, strlen(WRAP_HEAD));
    n_ins = copy_fix_big_ints(text, len, &buf, &ins);
    (void)rp_buf_append(&buf, WRAP_TAIL, strlen(WRAP_TAIL));
    int r = read_one(buf.data, buf.len, &doc, &berr);
    if (r < 0) {
        if (strstr(berr.message, "out of range"))
            rc = rp_error_set(err, RP_EINVAL, "invalid JSON: %s", berr.message);
        else
            rc = parse_error(berr.message, len, ins, n_ins, err);
        goto out;
    }
    if (r > 0 || bson_count_keys(doc) != 1) {
        rc = rp_error_set(err, RP_EINVAL, "invalid JSON at byte %zu: text after the value",
                          top_level_junk(text, len));
        goto out;
    }
    *out = doc;
    doc = NULL;
    rc = RP_OK;
out:
    if (doc)
        bson_destroy(doc);
    free(ins);
    rp_buf_cleanup(&buf);
    return rc;
}

int rp_json_root(const bson_t *doc, bson_iter_t *it)
{
    if (!doc || !bson_iter_init(it, doc) || !bson_iter_next(it))
        return RP_EINVAL;
    return RP_OK;
}

void rp_value_clear(struct rp_value *v)
{
    if (!v)
        return;
    free(v->str);
    if (v->doc)
        bson_destroy(v->doc);
    memset(v, 0, sizeof(*v));
}

void rp_value_copy(struct rp_value *dst, const struct rp_value *src)
{
    *dst = *src;
    if (src->str)
        dst->str = rp_xstrdup(src->str);
    if (src->doc)
        dst->doc = bson_copy(src->doc);
}

static void set_number_exact(struct rp_value *out, double n, int is_int)
{
    memset(out, 0, sizeof(*out));
    out->type = RP_V_NUMBER;
    out->num = n;
    out->is_int = is_int;
}

void rp_value_set_number(struct rp_value *out, double n)
{
    set_number_exact(out, n, isfinite(n) && n == floor(n) && fabs(n) < 9007199254740992.0);
}

void rp_value_set_string(struct rp_value *out, const char *s, size_t len)
{
    memset(out, 0, sizeof(*out));
    out->type = RP_V_STRING;
    out->str = rp_xstrndup(s, len);
}

void rp_value_from_iter(struct rp_value *out, const bson_iter_t *it)
{
    memset(out, 0, sizeof(*out));
    switch (bson_iter_type(it)) {
    case BSON_TYPE_DOUBLE:
        rp_value_set_number(out, bson_iter_double(it));
        break;
    case BSON_TYPE_INT32:
        set_number_exact(out, bson_iter_int32(it), 1);
        break;
    case BSON_TYPE_INT64:
        set_number_exact(out, (double)bson_iter_int64(it), 1);
        break;
    case BSON_TYPE_UTF8: {
        uint32_t n;
        const char *s = bson_iter_utf8(it, &n);
        rp_value_set_string(out, s, n);
        break;
    }
    case BSON_TYPE_BOOL:
        out->type = RP_V_BOOL;
        out->b = bson_iter_bool(it);
        break;
    case BSON_TYPE_NULL:
    case BSON_TYPE_UNDEFINED:
        out->type = RP_V_NULL;
        break;
    case BSON_TYPE_DOCUMENT:
    case BSON_TYPE_ARRAY:
        out->type = bson_iter_type(it) == BSON_TYPE_ARRAY ? RP_V_ARRAY : RP_V_OBJECT;
        out->doc = bson_new();
        bson_append_iter(out->doc, "v", 1, it);
        break;
    case BSON_TYPE_OID: {
        char hex[25];
        bson_oid_to_string(bson_iter_oid(it), hex);
        rp_value_set_string(out, hex, strlen(hex));
        break;
    }
    case BSON_TYPE_DATE_TIME: {
        int64_t ms = bson_iter_date_time(it);
        time_t secs = (time_t)(ms / 1000);
        int frac = (int)(ms % 1000);
        if (frac < 0) {
            frac += 1000;
            secs--;
        }
        struct tm tm;
        char buf[64];
        if (gmtime_r(&secs, &tm) && strftime(buf, sizeof(buf) - 8, "%Y-%m-%dT%H:%M:%S", &tm)) {
            char *s = rp_xasprintf("%s.%03dZ", buf, frac);
            out->type = RP_V_STRING;
            out->str = s;
        } else {
            rp_value_set_number(out, (double)ms);
        }
        break;
    }
    case BSON_TYPE_DECIMAL128: {
        bson_decimal128_t d;
        char s[BSON_DECIMAL128_STRING];
        bson_iter_decimal128(it, &d);
        bson_decimal128_to_string(&d, s);
        rp_value_set_number(out, strtod(s, NULL));
        break;
    }
    default: {
        /* anything else (regex, binary, timestamp...): its extended JSON, as a string */
        bson_t tmp = BSON_INITIALIZER;
        bson_append_iter(&tmp, "v", 1, it);
        size_t n;
        char *j = bson_as_relaxed_extended_json(&tmp, &n);
        out->type = RP_V_STRING;
        out->str = rp_xstrdup(j ? j : "");
        bson_free(j);
        bson_destroy(&tmp);
        break;
    }
    }
}

void rp_value_append(bson_t *doc, const char *key, const struct rp_value *v)
{
    bson_iter_t it;
    switch (v->type) {
    case RP_V_MISSING:
        break;
    case RP_V_NULL:
        bson_append_null(doc, key, -1);
        break;
    case RP_V_BOOL:
        bson_append_bool(doc, key, -1, v->b != 0);
        break;
    case RP_V_NUMBER:
        if (v->is_int && v->num >= -2147483648.0 && v->num <= 2147483647.0)
            bson_append_int32(doc, key, -1, (int32_t)v->num);
        else if (v->is_int && v->num >= -9223372036854775808.0 && v->num < 9223372036854775808.0)
            bson_append_int64(doc, key, -1, (int64_t)v->num);
        else
            bson_append_double(doc, key, -1, v->num);
        break;
    case RP_V_STRING:
        bson_append_utf8(doc, key, -1, v->str ? v->str : "", -1);
        break;
    case RP_V_ARRAY:
    case RP_V_OBJECT:
        if (v->doc && rp_json_root(v->doc, &it) == RP_OK)
            bson_append_iter(doc, key, -1, &it);
        break;
    }
}

/* ---- JSON text ---- */

/* Shortest text that reads back as the same double; integers without a fraction. */
static void fmt_number(char *buf, size_t cap, double n, int is_int)
{
    if (isnan(n)) {
        snprintf(buf, cap, "NaN");
    } else if (isinf(n)) {
        snprintf(buf, cap, n < 0 ? "-Infinity" : "Infinity");
    } else if (is_int && fabs(n) < 9007199254740992.0) {
        snprintf(buf, cap, "%.0f", n);
    } else {
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(buf, cap, "%.*g", prec, n);
            if (strtod(buf, NULL) == n)
                break;
        }
    }
}

struct out {
    struct rp_buf b;
    size_t stop; /* stop writing once this many bytes are out (0: never) */
};

static int full(const struct out *o)
{
    return o->stop && o->b.len > o->stop;
}

static void put(struct out *o, const char *s, size_t n)
{
    if (!full(o))
        (void)rp_buf_append(&o->b, s, n);
}

static void put_str(struct out *o, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    put(o, "\"", 1);
    size_t start = 0;
    for (size_t i = 0; i < n && !full(o); i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        put(o, s + start, i - start);
        start = i + 1;
        char esc[7] = {'\\', 0};
        switch (c) {
        case '"':
        case '\\':
            esc[1] = (char)c;
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            break;
        }
        put(o, esc, strlen(esc));
    }
    put(o, s + start, n - start);
    put(o, "\"", 1);
}

static void put_iter(struct out *o, const bson_iter_t *it, int depth);

static void put_container(struct out *o, const bson_iter_t *it, int depth)
{
    int is_array = bson_iter_type(it) == BSON_TYPE_ARRAY;
    bson_iter_t child;
    put(o, is_array ? "[" : "{", 1);
    if (depth > 200) {
        put(o, "...", 3);
    } else if (bson_iter_recurse(it, &child)) {
        int first = 1;
        while (bson_iter_next(&child) && !full(o)) {
            if (!first)
                put(o, ",", 1);
            first = 0;
            if (!is_array) {
                put_str(o, bson_iter_key(&child), bson_iter_key_len(&child));
                put(o, ":", 1);
            }
            put_iter(o, &child, depth + 1);
        }
    }
    put(o, is_array ? "]" : "}", 1);
}

static void put_value(struct out *o, const struct rp_value *v, int depth)
{
    char num[64];
    bson_iter_t it;
    switch (v->type) {
    case RP_V_MISSING:
        put(o, "(missing)", 9);
        break;
    case RP_V_NULL:
        put(o, "null", 4);
        break;
    case RP_V_BOOL:
        put(o, v->b ? "true" : "false", v->b ? 4 : 5);
        break;
    case RP_V_NUMBER:
        fmt_number(num, sizeof(num), v->num, v->is_int);
        put(o, num, strlen(num));
        break;
    case RP_V_STRING:
        put_str(o, v->str ? v->str : "", v->str ? strlen(v->str) : 0);
        break;
    case RP_V_ARRAY:
    case RP_V_OBJECT:
        if (v->doc && rp_json_root(v->doc, &it) == RP_OK)
            put_container(o, &it, depth);
        else
            put(o, v->type == RP_V_ARRAY ? "[]" : "{}", 2);
        break;
    }
}

static void put_iter(struct out *o, const bson_iter_t *it, int depth)
{
    if (BSON_ITER_HOLDS_DOCUMENT(it) || BSON_ITER_HOLDS_ARRAY(it)) {
        put_container(o, it, depth);
        return;
    }
    struct rp_value v;
    rp_value_from_iter(&v, it);
    put_value(o, &v, depth);
    rp_value_clear(&v);
}

/* Cut `s` to at most `max` bytes ending in "...", not inside a UTF-8 sequence. */
static void cut(struct rp_buf *b, size_t max)
{
    if (!max || b->len <= max)
        return;
    size_t keep = max >= 3 ? max - 3 : 0;
    while (keep > 0 && ((unsigned char)b->data[keep] & 0xC0) == 0x80)
        keep--;
    memcpy(b->data + keep, "...", max >= 3 ? 3 : max);
    b->len = keep + (max >= 3 ? 3 : max);
    b->data[b->len] = '\0';
}

char *rp_value_to_json(const struct rp_value *v, size_t max_len)
{
    struct out o;
    rp_buf_init(&o.b, 0);
    o.stop = max_len;
    put_value(&o, v, 0);
    cut(&o.b, max_len);
    char *s = o.b.data ? o.b.data : rp_xstrdup("");
    return s;
}

char *rp_value_to_text(const struct rp_value *v)
{
    if (v->type == RP_V_STRING)
        return rp_xstrdup(v->str ? v->str : "");
    if (v->type == RP_V_MISSING)
        return rp_xstrdup("");
    return rp_value_to_json(v, 0);
}

const char *rp_value_type_name(enum rp_value_type t)
{
    switch (t) {
    case RP_V_MISSING:
        return "missing";
    case RP_V_NULL:
        return "null";
    case RP_V_BOOL:
        return "boolean";
    case RP_V_NUMBER:
        return "number";
    case RP_V_STRING:
        return "string";
    case RP_V_ARRAY:
        return "array";
    case RP_V_OBJECT:
        return "object";
    }
    return "unknown";
}
