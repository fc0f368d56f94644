/* Expressions: the assertion language (`$.user.age > 18`, `header.content-type contains
 * "json"`, `len($.items) == 3`). A hand-written recursive-descent parser compiles the source
 * once into two operands and an operator (JSON paths compiled, regular expressions compiled by
 * PCRE2 with match limits, literals built); evaluation then reads the response through borrowed
 * views and allocates only for the result's text. The grammar is documented in docs/tests.md;
 * the format checks for `is email|url|uuid|date-time` are in this file, next to their rules.
 * A parsed expression is read-only: several threads may evaluate it at once. */
#define PCRE2_CODE_UNIT_WIDTH 8

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "rampart/mem.h"
#include "worker.h"

#define ACTUAL_MAX     1024 /* bytes of the actual value kept in a check */
#define SHOW_MAX       200  /* bytes of a value quoted in a message */
#define LITERAL_DEPTH  32
#define RE_MATCH_LIMIT 100000
#define RE_DEPTH_LIMIT 5000
#define RE_HEAP_KIB    8192

enum opd_kind { O_STATUS, O_TIME, O_SIZE, O_BODY, O_HEADER, O_TIMING, O_PATH, O_VAR, O_LEN, O_LIT };

struct operand {
    enum opd_kind kind;
    char *label; /* as written, for messages */
    char *name;  /* O_HEADER: header name; O_VAR: variable name (with any .path suffix) */
    size_t timing;
    struct wrk_jsonpath *path;
    struct wrk_value lit;
    struct operand *arg; /* O_LEN */
};

enum op {
    OP_NONE,
    OP_EQ,
    OP_NE,
    OP_LT,
    OP_LE,
    OP_GT,
    OP_GE,
    OP_CONTAINS,
    OP_MATCHES,
    OP_IN,
    OP_EXISTS,
    OP_IS
};

enum vtype {
    T_STRING,
    T_NUMBER,
    T_INTEGER,
    T_BOOLEAN,
    T_ARRAY,
    T_OBJECT,
    T_NULL,
    T_EMAIL,
    T_URL,
    T_UUID,
    T_DATETIME,
    N_TYPES
};

static const char *const type_names[N_TYPES] = {"string", "number", "integer",  "boolean",
                                                "array",  "object", "null",     "email",
                                                "url",    "uuid",   "date-time"};
static const char *const op_names[] = {"",   "==",       "!=",      "<",  "<=",     ">",
                                       ">=", "contains", "matches", "in", "exists", "is"};

struct wrk_expr {
    struct operand lhs, rhs;
    int has_rhs;
    enum op op;
    int negate; /* not exists / is not / not contains / not matches / not in */
    enum vtype type;
    pcre2_code *re;
    pcre2_match_context *mctx;
};

/* ==== parsing ============================================================================ */

struct parser {
    const char *src;
    const char *p;
    struct rp_error *err;
};

static int fail_at(struct parser *ps, const char *at, const char *fmt, ...) RP_PRINTF(3, 4);

static int fail_at(struct parser *ps, const char *at, const char *fmt, ...)
{
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    return rp_error_set(ps->err, RP_EINVAL, "column %ld: %s", (long)(at - ps->src) + 1, what);
}

static void skip_ws(struct parser *ps)
{
    while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')
        ps->p++;
}

static int ident_byte(unsigned char c)
{
    return isalnum(c) || c == '_';
}

static int word_is(const char *s, size_t n, const char *w)
{
    return strlen(w) == n && memcmp(s, w, n) == 0;
}

/* The token at `s` for an error message: up to the next space, at most 24 bytes. */
static const char *token_at(const char *s, char *buf, size_t cap)
{
    size_t n = 0;
    while (s[n] && !isspace((unsigned char)s[n]) && n + 1 < cap && n < 24)
        n++;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return buf;
}

static const char *ident_token(const char *s, size_t n, char *buf, size_t cap)
{
    n = n < cap - 1 ? n : cap - 1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return buf;
}

static void put_utf8(struct rp_buf *b, unsigned long cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        u[0] = (char)(0xF0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    (void)rp_buf_append(b, u, n);
}

static int hex4(const char *s, unsigned long *out)
{
    unsigned long v = 0;
    for (int i = 0; i < 4; i++) {
        if (!isxdigit((unsigned char)s[i]))
            return 0;
        v = v * 16 +
            (unsigned long)(isdigit((unsigned char)s[i]) ? s[i] - '0' : (tolower(s[i]) - 'a' + 10));
    }
    *out = v;
    return 1;
}

/* A "..." or '...' literal with JSON escapes (and \' ). New string in *out. */
static int parse_string(struct parser *ps, char **out, size_t *out_len)
{
    const char *start = ps->p;
    char q = *ps->p++;
    struct rp_buf b;
    rp_buf_init(&b, 0);
    (void)rp_buf_append(&b, "", 0);
    while (*ps->p != q) {
        const char *c = ps->p;
        if (!*c) {
            rp_buf_cleanup(&b);
            return fail_at(ps, start, "unterminated string; expected a closing %s",
                           q == '"' ? "`\"`" : "`'`");
        }
        if (*c != '\\') {
            (void)rp_buf_append(&b, c, 1);
            ps->p++;
            continue;
        }
        char e = c[1];
        unsigned long cp;
        ps->p += 2;
        switch (e) {
        case '"':
        case '\'':
        case '\\':
        case '/':
            (void)rp_buf_append(&b, &e, 1);
            break;
        case 'n':
            (void)rp_buf_append(&b, "\n", 1);
            break;
        case 't':
            (void)rp_buf_append(&b, "\t", 1);
            break;
        case 'r':
            (void)rp_buf_append(&b, "\r", 1);
            break;
        case 'b':
            (void)rp_buf_append(&b, "\b", 1);
            break;
        case 'f':
            (void)rp_buf_append(&b, "\f", 1);
            break;
        case 'u':
            if (!hex4(c + 2, &cp)) {
                rp_buf_cleanup(&b);
                return fail_at(ps, c, "bad \\u escape; expected 4 hex digits");
            }
            ps->p += 4;
            if (cp >= 0xD800 && cp < 0xDC00) {
                unsigned long lo;
                if (ps->p[0] != '\\' || ps->p[1] != 'u' || !hex4(ps->p + 2, &lo) || lo < 0xDC00 ||
                    lo > 0xDFFF) {
                    rp_buf_cleanup(&b);
                    return fail_at(ps, c, "lone surrogate in \\u escape");
                }
                ps->p += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                rp_buf_cleanup(&b);
                return fail_at(ps, c, "lone surrogate in \\u escape");
            }
            if (cp == 0) {
                rp_buf_cleanup(&b);
                return fail_at(ps, c, "\\u0000 is not allowed in a string");
            }
            put_utf8(&b, cp);
            break;
        default:
            rp_buf_cleanup(&b);
            return fail_at(ps, c,
                           "unknown escape; expected one of \\\" \\' \\\\ \\/ \\n \\t "
                           "\\r \\b \\f \\uXXXX");
        }
    }
    ps->p++;
    *out = b.data;
    if (out_len)
        *out_len = b.len;
    return RP_OK;
}

static int parse_number(struct parser *ps, struct wrk_value *out)
{
    const char *s = ps->p, *q = s;
    if (*q == '-')
        q++;
    if (!isdigit((unsigned char)*q))
        return fail_at(ps, s, "expected a number after `-`");
    while (isdigit((unsigned char)*q))
        q++;
    if (*q == '.') {
        if (!isdigit((unsigned char)q[1]))
            return fail_at(ps, q, "expected digits after `.`");
        for (q++; isdigit((unsigned char)*q);)
            q++;
    }
    if (*q == 'e' || *q == 'E') {
        const char *e = q++;
        if (*q == '+' || *q == '-')
            q++;
        if (!isdigit((unsigned char)*q))
            return fail_at(ps, e, "expected digits in the exponent");
        while (isdigit((unsigned char)*q))
            q++;
    }
    if (ident_byte((unsigned char)*q))
        return fail_at(ps, s, "malformed number");
    char *tmp = rp_xstrndup(s, (size_t)(q - s));
    double d = strtod(tmp, NULL);
    free(tmp);
    if (!isfinite(d))
        return fail_at(ps, s, "number out of range");
    wrk_value_set_number(out, d);
    ps->p = q;
    return RP_OK;
}

static int parse_literal(struct parser *ps, struct wrk_value *out, int depth);

/* `[lit, ...]` or `{"key": lit, ...}` into an owned {"v": ...} document. */
static int parse_container(struct parser *ps, struct wrk_value *out, int depth)
{
    const char *start = ps->p;
    int is_array = *ps->p == '[';
    char close = is_array ? ']' : '}';
    bson_t inner = BSON_INITIALIZER;
    int rc = RP_EINVAL;
    uint32_t n = 0;

    if (depth > LITERAL_DEPTH) {
        rc = fail_at(ps, start, "literal nested too deeply");
        goto out;
    }
    ps->p++;
    skip_ws(ps);
    while (*ps->p != close) {
        char keybuf[16];
        const char *key = keybuf;
        char *owned_key = NULL;
        if (n > 0) {
            if (*ps->p != ',') {
                rc = fail_at(ps, ps->p,
                             is_array ? "expected `,` or `]` in the list"
                                      : "expected `,` or `}` in the object");
                goto out;
            }
            ps->p++;
            skip_ws(ps);
        }
        if (is_array) {
            bson_uint32_to_string(n, &key, keybuf, sizeof(keybuf));
        } else {
            size_t klen;
            if (*ps->p != '"' && *ps->p != '\'') {
                rc = fail_at(ps, ps->p, "expected a quoted member name");
                goto out;
            }
            if ((rc = parse_string(ps, &owned_key, &klen)) != RP_OK)
                goto out;
            key = owned_key;
            skip_ws(ps);
            if (*ps->p != ':') {
                free(owned_key);
                rc = fail_at(ps, ps->p, "expected `:` after the member name");
                goto out;
            }
            ps->p++;
            skip_ws(ps);
        }
        struct wrk_value item = {0};
        rc = parse_literal(ps, &item, depth + 1);
        if (rc == RP_OK)
            wrk_value_append(&inner, key, &item);
        wrk_value_clear(&item);
        free(owned_key);
        if (rc != RP_OK)
            goto out;
        n++;
        skip_ws(ps);
        if (!*ps->p) {
            rc = fail_at(ps, ps->p,
                         is_array ? "unterminated list; expected `]`"
                                  : "unterminated object; expected `}`");
            goto out;
        }
    }
    ps->p++;
    memset(out, 0, sizeof(*out));
    out->type = is_array ? WRK_V_ARRAY : WRK_V_OBJECT;
    out->doc = bson_new();
    if (is_array)
        bson_append_array(out->doc, "v", 1, &inner);
    else
        bson_append_document(out->doc, "v", 1, &inner);
    rc = RP_OK;
out:
    bson_destroy(&inner);
    return rc;
}

static int parse_literal(struct parser *ps, struct wrk_value *out, int depth)
{
    const char *s = ps->p;
    char c = *s;
    if (c == '"' || c == '\'') {
        char *str;
        int rc = parse_string(ps, &str, NULL);
        if (rc != RP_OK)
            return rc;
        memset(out, 0, sizeof(*out));
        out->type = WRK_V_STRING;
        out->str = str;
        return RP_OK;
    }
    if (c == '-' || isdigit((unsigned char)c))
        return parse_number(ps, out);
    if (c == '[' || c == '{')
        return parse_container(ps, out, depth);
    size_t n = 0;
    while (ident_byte((unsigned char)s[n]))
        n++;
    memset(out, 0, sizeof(*out));
    if (word_is(s, n, "true") || word_is(s, n, "false")) {
        out->type = WRK_V_BOOL;
        out->b = s[0] == 't';
    } else if (word_is(s, n, "null")) {
        out->type = WRK_V_NULL;
    } else {
        return fail_at(ps, s,
                       "expected a literal (number, \"string\", true, false, null, [...] "
                       "or {...})");
    }
    ps->p += n;
    return RP_OK;
}

static void operand_cleanup(struct operand *o)
{
    free(o->label);
    free(o->name);
    wrk_jsonpath_free(o->path);
    wrk_value_clear(&o->lit);
    if (o->arg) {
        operand_cleanup(o->arg);
        free(o->arg);
    }
    memset(o, 0, sizeof(*o));
}

/* End of the JSON path starting at `s` (on the `$`): dotted names, `..`, `*` and brackets
 * (quotes inside brackets may hold anything). */
static const char *path_end(const char *s)
{
    const char *p = s + 1;
    for (;;) {
        if (*p == '.') {
            p++;
            if (*p == '.')
                p++;
            if (*p == '*') {
                p++;
                continue;
            }
            while (isalnum((unsigned char)*p) || *p == '_' || *p == '-' || *p == '$' || *p == '@' ||
                   (unsigned char)*p >= 0x80)
                p++;
        } else if (*p == '[') {
            char q = 0;
            for (p++; *p; p++) {
                if (q) {
                    if (*p == '\\' && p[1])
                        p++;
                    else if (*p == q)
                        q = 0;
                } else if (*p == '"' || *p == '\'') {
                    q = *p;
                } else if (*p == ']') {
                    break;
                }
            }
            if (*p == ']')
                p++;
        } else {
            return p;
        }
    }
}

static const char *const timing_names[] = {"dns", "connect", "tls", "first_byte", "total"};
static const size_t timing_offsets[] = {
    offsetof(struct wrk_timings, dns), offsetof(struct wrk_timings, connect),
    offsetof(struct wrk_timings, tls), offsetof(struct wrk_timings, first_byte),
    offsetof(struct wrk_timings, total)};

static int header_byte(unsigned char c)
{
    return isalnum(c) || (c && strchr("!#$%&'*+-^_`|~", c));
}

static int parse_operand(struct parser *ps, struct operand *o, int depth)
{
    int rc = RP_EINVAL;
    const char *s;

    memset(o, 0, sizeof(*o));
    skip_ws(ps);
    s = ps->p;
    if (depth > LITERAL_DEPTH)
        return fail_at(ps, s, "expression nested too deeply");
    if (!*s)
        return fail_at(ps, s,
                       "expected an operand (status, time, size, body, header.NAME, "
                       "timing.PHASE, $.path, ${var}, len(...) or a literal)");
    if (s[0] == '$' && s[1] == '{') {
        const char *e = strchr(s + 2, '}');
        if (!e)
            return fail_at(ps, s, "unterminated `${`; expected `}`");
        if (e == s + 2 || !(isalpha((unsigned char)s[2]) || s[2] == '_'))
            return fail_at(ps, s + 2, "expected a variable name after `${`");
        o->kind = O_VAR;
        o->name = rp_xstrndup(s + 2, (size_t)(e - s - 2));
        ps->p = e + 1;
    } else if (s[0] == '$') {
        const char *e = path_end(s);
        char *path = rp_xstrndup(s, (size_t)(e - s));
        struct rp_error perr;
        rc = wrk_jsonpath_compile(path, &o->path, &perr);
        free(path);
        if (rc != RP_OK) {
            long col = 1;
            const char *msg = perr.msg;
            if (sscanf(perr.msg, "column %ld: ", &col) == 1 && strstr(perr.msg, ": "))
                msg = strstr(perr.msg, ": ") + 2;
            return fail_at(ps, s + col - 1, "bad JSON path: %.300s", msg);
        }
        o->kind = O_PATH;
        ps->p = e;
    } else if (*s == '"' || *s == '\'' || *s == '-' || *s == '[' || *s == '{' ||
               isdigit((unsigned char)*s)) {
        o->kind = O_LIT;
        if ((rc = parse_literal(ps, &o->lit, 0)) != RP_OK)
            return rc;
    } else {
        size_t n = 0;
        while (ident_byte((unsigned char)s[n]))
            n++;
        ps->p = s + n;
        if (word_is(s, n, "true") || word_is(s, n, "false") || word_is(s, n, "null")) {
            ps->p = s;
            o->kind = O_LIT;
            if ((rc = parse_literal(ps, &o->lit, 0)) != RP_OK)
                return rc;
        } else if (word_is(s, n, "status")) {
            o->kind = O_STATUS;
        } else if (word_is(s, n, "time")) {
            o->kind = O_TIME;
        } else if (word_is(s, n, "size")) {
            o->kind = O_SIZE;
        } else if (word_is(s, n, "body")) {
            o->kind = O_BODY;
        } else if (word_is(s, n, "header")) {
            o->kind = O_HEADER;
            if (*ps->p == '.') {
                const char *h = ++ps->p;
                while (header_byte((unsigned char)*ps->p))
                    ps->p++;
                if (ps->p == h)
                    return fail_at(ps, h, "expected a header name after `header.`");
                o->name = rp_xstrndup(h, (size_t)(ps->p - h));
            } else if (*ps->p == '[') {
                ps->p++;
                skip_ws(ps);
                if (*ps->p != '"' && *ps->p != '\'')
                    return fail_at(ps, ps->p, "expected a quoted header name after `header[`");
                if ((rc = parse_string(ps, &o->name, NULL)) != RP_OK)
                    return rc;
                skip_ws(ps);
                if (*ps->p != ']') {
                    rc = fail_at(ps, ps->p, "expected `]` after the header name");
                    operand_cleanup(o);
                    return rc;
                }
                ps->p++;
            } else {
                return fail_at(ps, ps->p, "expected `.NAME` or `[\"Name\"]` after `header`");
            }
        } else if (word_is(s, n, "timing")) {
            size_t i, m = 0;
            if (*ps->p != '.')
                return fail_at(ps, ps->p,
                               "expected `.PHASE` after `timing` (dns, connect, tls, "
                               "first_byte, total)");
            ps->p++;
            while (ident_byte((unsigned char)ps->p[m]))
                m++;
            for (i = 0; i < 5 && !word_is(ps->p, m, timing_names[i]); i++)
                ;
            if (i == 5)
                return fail_at(ps, ps->p,
                               "unknown timing phase; expected one of dns, connect, "
                               "tls, first_byte, total");
            o->kind = O_TIMING;
            o->timing = timing_offsets[i];
            ps->p += m;
        } else if (word_is(s, n, "len")) {
            skip_ws(ps);
            if (*ps->p != '(')
                return fail_at(ps, ps->p, "expected `(` after `len`");
            ps->p++;
            o->kind = O_LEN;
            o->arg = rp_xcalloc(1, sizeof(*o->arg));
            if ((rc = parse_operand(ps, o->arg, depth + 1)) != RP_OK) {
                operand_cleanup(o);
                return rc;
            }
            skip_ws(ps);
            if (*ps->p != ')') {
                rc = fail_at(ps, ps->p, "expected `)` to close `len(`");
                operand_cleanup(o);
                return rc;
            }
            ps->p++;
        } else {
            char tok[32];
            return fail_at(ps, s,
                           "unknown operand `%s`; expected status, time, size, body, "
                           "header.NAME, timing.PHASE, $.path, ${var}, len(...) or a literal",
                           n ? ident_token(s, n, tok, sizeof(tok)) : token_at(s, tok, sizeof(tok)));
        }
    }
    o->label = rp_xstrndup(s, (size_t)(ps->p - s));
    return RP_OK;
}

static int parse_regex(struct parser *ps, struct wrk_expr *e)
{
    const char *s = ps->p;
    char *pat;
    size_t len;
    int code;
    PCRE2_SIZE off;
    int rc;

    if (*s != '"' && *s != '\'')
        return fail_at(ps, s, "expected a quoted regular expression after `matches`");
    if ((rc = parse_string(ps, &pat, &len)) != RP_OK)
        return rc;
    e->rhs.kind = O_LIT;
    e->rhs.label = rp_xstrndup(s, (size_t)(ps->p - s));
    e->rhs.lit.type = WRK_V_STRING;
    e->rhs.lit.str = pat;
    e->re =
        pcre2_compile((PCRE2_SPTR)pat, len, PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &code, &off, NULL);
    if (!e->re) {
        PCRE2_UCHAR msg[200];
        pcre2_get_error_message(code, msg, sizeof(msg));
        char what[300];
        snprintf(what, sizeof(what),
                 "invalid regular expression: %s (at offset %zu of the pattern)", (const char *)msg,
                 (size_t)off);
        return fail_at(ps, s, "%s", what);
    }
    (void)pcre2_jit_compile(e->re, PCRE2_JIT_COMPLETE); /* optional: the interpreter is fine */
    e->mctx = pcre2_match_context_create(NULL);
    pcre2_set_match_limit(e->mctx, RE_MATCH_LIMIT);
    pcre2_set_depth_limit(e->mctx, RE_DEPTH_LIMIT);
    pcre2_set_heap_limit(e->mctx, RE_HEAP_KIB);
    return RP_OK;
}

#define OPERATORS "one of == != < <= > >= contains matches in exists is not"

static int parse_operator(struct parser *ps, struct wrk_expr *e)
{
    const char *s = ps->p;
    size_t n = 0;
    char tok[32];

    if (strchr("=!<>~&|^%*+/?:", *s)) {
        while (s[n] && strchr("=!<>~&|^%*+/?:", s[n]))
            n++;
        static const char *const sym[] = {"==", "!=", "<", "<=", ">", ">="};
        for (int i = 0; i < 6; i++)
            if (word_is(s, n, sym[i])) {
                e->op = (enum op)(OP_EQ + i);
                ps->p += n;
                return RP_OK;
            }
        memcpy(tok, s, n < 24 ? n : 24);
        tok[n < 24 ? n : 24] = '\0';
        return fail_at(ps, s, "unknown operator `%s`; expected " OPERATORS, tok);
    }
    while (ident_byte((unsigned char)s[n]))
        n++;
    ps->p += n;
    if (word_is(s, n, "not")) {
        e->negate = 1;
        skip_ws(ps);
        s = ps->p;
        for (n = 0; ident_byte((unsigned char)s[n]);)
            n++;
        ps->p += n;
        if (!(word_is(s, n, "exists") || word_is(s, n, "contains") || word_is(s, n, "matches") ||
              word_is(s, n, "in")))
            return fail_at(ps, s, "expected exists, contains, matches or in after `not`");
    }
    if (word_is(s, n, "contains")) {
        e->op = OP_CONTAINS;
    } else if (word_is(s, n, "matches")) {
        e->op = OP_MATCHES;
    } else if (word_is(s, n, "in")) {
        e->op = OP_IN;
    } else if (word_is(s, n, "exists")) {
        e->op = OP_EXISTS;
    } else if (word_is(s, n, "is")) {
        e->op = OP_IS;
        skip_ws(ps);
        s = ps->p;
        for (n = 0; ident_byte((unsigned char)s[n]) || s[n] == '-';)
            n++;
        if (word_is(s, n, "not")) {
            e->negate = 1;
            ps->p += n;
            skip_ws(ps);
            s = ps->p;
            for (n = 0; ident_byte((unsigned char)s[n]) || s[n] == '-';)
                n++;
        }
        int t;
        for (t = 0; t < N_TYPES && !word_is(s, n, type_names[t]); t++)
            ;
        if (t == N_TYPES)
            return fail_at(ps, s,
                           "unknown type `%s`; expected one of string number integer boolean "
                           "array object null email url uuid date-time",
                           token_at(s, tok, sizeof(tok)));
        e->type = (enum vtype)t;
        ps->p += n;
    } else {
        return fail_at(ps, s, "unknown operator `%s`; expected " OPERATORS,
                       token_at(s, tok, sizeof(tok)));
    }
    return RP_OK;
}

static int parse(const char *src, int operand_only, struct wrk_expr **out, struct rp_error *err)
{
    struct parser ps = {src, src, err};
    struct wrk_expr *e = rp_xcalloc(1, sizeof(*e));
    int rc;
    char tok[32];

    if ((rc = parse_operand(&ps, &e->lhs, 0)) != RP_OK)
        goto out;
    skip_ws(&ps);
    if (*ps.p && operand_only) {
        rc = fail_at(&ps, ps.p, "unexpected `%s` after the operand",
                     token_at(ps.p, tok, sizeof(tok)));
        goto out;
    }
    if (*ps.p) {
        if ((rc = parse_operator(&ps, e)) != RP_OK)
            goto out;
        skip_ws(&ps);
        if (e->op == OP_MATCHES) {
            rc = parse_regex(&ps, e);
            e->has_rhs = 1;
        } else if (e->op != OP_EXISTS && e->op != OP_IS) {
            if (!*ps.p) {
                rc = fail_at(&ps, ps.p, "expected an operand after `%s`", op_names[e->op]);
                goto out;
            }
            rc = parse_operand(&ps, &e->rhs, 0);
            e->has_rhs = rc == RP_OK;
            if (rc == RP_OK && e->op == OP_IN && e->rhs.kind == O_LIT &&
                e->rhs.lit.type != WRK_V_ARRAY)
                rc =
                    fail_at(&ps, ps.p - strlen(e->rhs.label), "expected a list `[...]` after `in`");
        }
        if (rc != RP_OK)
            goto out;
        skip_ws(&ps);
        if (*ps.p) {
            rc = fail_at(&ps, ps.p, "unexpected `%s` after the expression",
                         token_at(ps.p, tok, sizeof(tok)));
            goto out;
        }
    }
    *out = e;
    e = NULL;
    rc = RP_OK;
out:
    wrk_expr_free(e);
    return rc;
}

int wrk_expr_parse(const char *src, struct wrk_expr **out, struct rp_error *err)
{
    return parse(src, 0, out, err);
}

int wrk_expr_parse_operand(const char *src, struct wrk_expr **out, struct rp_error *err)
{
    return parse(src, 1, out, err);
}

void wrk_expr_free(struct wrk_expr *e)
{
    if (!e)
        return;
    operand_cleanup(&e->lhs);
    operand_cleanup(&e->rhs);
    pcre2_code_free(e->re);
    pcre2_match_context_free(e->mctx);
    free(e);
}

void wrk_check_clear(struct wrk_check *c)
{
    if (!c)
        return;
    free(c->actual);
    free(c->message);
    memset(c, 0, sizeof(*c));
}

/* ==== formats for `is email|url|uuid|date-time`: the rules live in schema.c (wrk_is_*), shared
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
    enum wrk_value_type type;
    int b;
    double num;
    int is_int;
    const char *str;
    size_t len;
    bson_iter_t it; /* arrays and objects */
    int secret;
};

struct ctx {
    const struct wrk_response_view *r;
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
    v->type = WRK_V_NUMBER;
    v->num = d;
    v->is_int = integral(d);
}

static void view_from_value(struct view *v, const struct wrk_value *val)
{
    memset(v, 0, sizeof(*v));
    v->type = val->type;
    v->b = val->b;
    v->num = val->num;
    v->is_int = val->is_int;
    if (val->type == WRK_V_STRING) {
        v->str = val->str ? val->str : "";
        v->len = strlen(v->str);
    } else if (val->type == WRK_V_ARRAY || val->type == WRK_V_OBJECT) {
        if (!val->doc || wrk_json_root(val->doc, &v->it) != RP_OK)
            v->type = WRK_V_MISSING;
    }
}

/* `tmp` keeps a conversion alive for BSON types JSON has no word for. */
static void view_from_iter(struct view *v, const bson_iter_t *it, struct wrk_value *tmp)
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
        v->type = WRK_V_STRING;
        v->str = bson_iter_utf8(it, &n);
        v->len = n;
        break;
    case BSON_TYPE_BOOL:
        v->type = WRK_V_BOOL;
        v->b = bson_iter_bool(it);
        break;
    case BSON_TYPE_NULL:
    case BSON_TYPE_UNDEFINED:
        v->type = WRK_V_NULL;
        break;
    case BSON_TYPE_ARRAY:
    case BSON_TYPE_DOCUMENT:
        v->type = BSON_ITER_HOLDS_ARRAY(it) ? WRK_V_ARRAY : WRK_V_OBJECT;
        v->it = *it;
        break;
    default:
        wrk_value_clear(tmp);
        wrk_value_from_iter(tmp, it);
        view_from_value(v, tmp);
        break;
    }
}

static void view_to_value(const struct view *v, struct wrk_value *out)
{
    memset(out, 0, sizeof(*out));
    switch (v->type) {
    case WRK_V_STRING:
        wrk_value_set_string(out, v->str, v->len);
        break;
    case WRK_V_ARRAY:
    case WRK_V_OBJECT:
        wrk_value_from_iter(out, &v->it);
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
    struct wrk_value tmp;
    if (v->secret)
        return rp_xstrdup("***");
    view_to_value(v, &tmp);
    char *s = wrk_value_to_json(&tmp, max);
    wrk_value_clear(&tmp);
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
    if (c->r->body_json && wrk_json_root(c->r->body_json, root) == RP_OK)
        return 1;
    c->note = "the body is not JSON";
    return 0;
}

static void eval_header(struct ctx *c, const char *name, struct view *v, struct wrk_value *tmp)
{
    const struct wrk_response_view *r = c->r;
    size_t hits = 0;
    struct rp_buf b;
    rp_buf_init(&b, 0);
    for (size_t i = 0; i < r->n_headers; i++) {
        if (!r->headers[i].name || strcasecmp(r->headers[i].name, name) != 0)
            continue;
        const char *val = r->headers[i].value ? r->headers[i].value : "";
        if (hits++ == 0) {
            v->type = WRK_V_STRING;
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
        wrk_value_set_string(tmp, b.data, b.len);
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
                        struct wrk_value *tmp);

static void eval_len(struct ctx *c, const struct operand *o, struct view *v)
{
    struct wrk_value inner = {0};
    struct view a;
    bson_iter_t root, child;
    size_t n = 0;

    memset(v, 0, sizeof(*v));
    if (o->arg->kind == O_PATH && wrk_jsonpath_is_multi(o->arg->path)) {
        if (body_root(c, &root))
            view_number(v, (double)wrk_jsonpath_eval(o->arg->path, &root, NULL, NULL));
        return;
    }
    eval_single(c, o->arg, &a, &inner);
    switch (a.type) {
    case WRK_V_STRING:
        view_number(v, (double)utf8_chars(a.str, a.len));
        break;
    case WRK_V_ARRAY:
    case WRK_V_OBJECT:
        if (bson_iter_recurse(&a.it, &child))
            while (bson_iter_next(&child))
                n++;
        view_number(v, (double)n);
        break;
    case WRK_V_MISSING:
        break;
    default:
        snprintf(c->note_buf, sizeof(c->note_buf), "len() needs a string, array or object, got %s",
                 wrk_value_type_name(a.type));
        c->note = c->note_buf;
        break;
    }
    v->secret = a.secret;
    wrk_value_clear(&inner);
}

static void eval_single(struct ctx *c, const struct operand *o, struct view *v,
                        struct wrk_value *tmp)
{
    const struct wrk_response_view *r = c->r;
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
        v->type = WRK_V_STRING;
        v->str = r->body ? r->body : "";
        v->len = r->body ? r->body_len : 0;
        break;
    case O_HEADER:
        eval_header(c, o->name, v, tmp);
        break;
    case O_PATH:
        if (!body_root(c, &root))
            break;
        if (wrk_jsonpath_is_multi(o->path)) {
            struct collect col = {.n = 0};
            bson_init(&col.arr);
            (void)wrk_jsonpath_eval(o->path, &root, collect_fn, &col);
            wrk_value_clear(tmp);
            tmp->type = WRK_V_ARRAY;
            tmp->doc = bson_new();
            bson_append_array(tmp->doc, "v", 1, &col.arr);
            bson_destroy(&col.arr);
            view_from_value(v, tmp);
        } else if (wrk_jsonpath_eval(o->path, &root, first_fn, &match) > 0) {
            view_from_iter(v, &match, tmp);
        }
        break;
    case O_VAR:
        wrk_value_clear(tmp);
        if (!r->lookup || r->lookup(r->lookup_ud, o->name, tmp, &secret) != RP_OK) {
            wrk_value_clear(tmp);
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
    case WRK_V_MISSING:
        return 0;
    case WRK_V_NULL:
        return 1;
    case WRK_V_BOOL:
        return !a->b == !b->b;
    case WRK_V_NUMBER:
        return a->num == b->num;
    case WRK_V_STRING:
        return a->len == b->len && memcmp(a->str, b->str, a->len) == 0;
    case WRK_V_ARRAY:
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
    case WRK_V_OBJECT: {
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
    struct wrk_value ta = {0}, tb = {0};
    struct view va, vb;
    view_from_iter(&va, a, &ta);
    view_from_iter(&vb, b, &tb);
    int eq = view_eq(&va, &vb, depth);
    wrk_value_clear(&ta);
    wrk_value_clear(&tb);
    return eq;
}

/* -1, 0, 1, or -2 when the two cannot be ordered. */
static int view_cmp(const struct view *a, const struct view *b)
{
    if (a->type == WRK_V_NUMBER && b->type == WRK_V_NUMBER) {
        if (isnan(a->num) || isnan(b->num))
            return -2;
        return a->num < b->num ? -1 : a->num > b->num;
    }
    if (a->type == WRK_V_STRING && b->type == WRK_V_STRING) {
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
        struct wrk_value t = {0};
        struct view e;
        view_from_iter(&e, &child, &t);
        int eq = view_eq(&e, v, 0);
        wrk_value_clear(&t);
        if (eq)
            return 1;
    }
    return 0;
}

static int type_is(const struct view *v, enum vtype t)
{
    int str = v->type == WRK_V_STRING;
    switch (t) {
    case T_STRING:
        return str;
    case T_NUMBER:
        return v->type == WRK_V_NUMBER;
    case T_INTEGER:
        return v->type == WRK_V_NUMBER && (v->is_int || integral(v->num));
    case T_BOOLEAN:
        return v->type == WRK_V_BOOL;
    case T_ARRAY:
        return v->type == WRK_V_ARRAY;
    case T_OBJECT:
        return v->type == WRK_V_OBJECT;
    case T_NULL:
        return v->type == WRK_V_NULL;
    case T_EMAIL:
        return str && is_format(wrk_is_email, v->str, v->len);
    case T_URL:
        return str && is_format(wrk_is_url, v->str, v->len);
    case T_UUID:
        return str && is_format(wrk_is_uuid, v->str, v->len);
    case T_DATETIME:
        return str && is_format(wrk_is_date_time, v->str, v->len);
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

static int regex_match(struct ctx *c, const struct wrk_expr *e, const struct view *v)
{
    char num[64];
    const char *subj = v->str;
    size_t len = v->len;
    if (v->type == WRK_V_NUMBER) {
        num_text(num, sizeof(num), v->num, v->is_int);
        subj = num;
        len = strlen(num);
    } else if (v->type == WRK_V_BOOL) {
        subj = v->b ? "true" : "false";
        len = strlen(subj);
    } else if (v->type != WRK_V_STRING) {
        snprintf(c->note_buf, sizeof(c->note_buf), "matches needs a string, got %s",
                 wrk_value_type_name(v->type));
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
static int apply(struct ctx *c, const struct wrk_expr *e, const struct view *l,
                 const struct view *rv, const char *rnote)
{
    int res = 0;
    if (e->op == OP_NONE)
        return l->type != WRK_V_MISSING && l->type != WRK_V_NULL &&
               !(l->type == WRK_V_BOOL && !l->b);
    if (e->op == OP_EXISTS)
        return (l->type != WRK_V_MISSING) != e->negate;
    if (l->type == WRK_V_MISSING)
        return 0;
    if (e->has_rhs && rv->type == WRK_V_MISSING) {
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
                     wrk_value_type_name(l->type), wrk_value_type_name(rv->type));
            c->note = c->note_buf;
            return 0;
        }
        return e->op == OP_LT   ? cmp < 0
               : e->op == OP_LE ? cmp <= 0
               : e->op == OP_GT ? cmp > 0
                                : cmp >= 0;
    }
    case OP_CONTAINS:
        if (l->type == WRK_V_STRING && rv->type == WRK_V_STRING) {
            res = rv->len == 0 || find(l->str, l->len, rv->str, rv->len);
        } else if (l->type == WRK_V_ARRAY) {
            res = array_has(l, rv);
        } else if (l->type == WRK_V_OBJECT && rv->type == WRK_V_STRING) {
            bson_iter_t child;
            res = bson_iter_recurse(&l->it, &child) &&
                  bson_iter_find_w_len(&child, rv->str, (int)rv->len);
        } else {
            snprintf(c->note_buf, sizeof(c->note_buf),
                     "contains needs a string in a string, a value in an array or a key in an "
                     "object, got %s and %s",
                     wrk_value_type_name(l->type), wrk_value_type_name(rv->type));
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
        if (rv->type != WRK_V_ARRAY) {
            snprintf(c->note_buf, sizeof(c->note_buf), "in needs a list on the right, got %s",
                     wrk_value_type_name(rv->type));
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
static void put_expected(struct rp_buf *b, const struct wrk_expr *e, const struct view *rv)
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
        (void)rp_buf_printf(b, "expected is %s%s", neg, type_names[e->type]);
        return;
    case OP_EQ:
        (void)rp_buf_printf(b, "expected ");
        break;
    default:
        (void)rp_buf_printf(b, "expected %s%s ", neg, op_names[e->op]);
        break;
    }
    char *r = show(rv, SHOW_MAX);
    (void)rp_buf_printf(b, "%s", r);
    free(r);
    if (e->rhs.kind != O_LIT)
        (void)rp_buf_printf(b, " (%s)", e->rhs.label);
}

static char *message(const struct wrk_expr *e, const char *label, size_t match_no,
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
    const struct wrk_expr *e;
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
    struct wrk_value tmp = {0};
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
    wrk_value_clear(&tmp);
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

void wrk_expr_check(const struct wrk_expr *e, const struct wrk_response_view *r,
                    struct wrk_check *out)
{
    struct ctx lc = {r, NULL, {0}}, rc = {r, NULL, {0}};
    struct wrk_value ltmp = {0}, rtmp = {0};
    struct view lv, rv;
    bson_iter_t root;

    memset(out, 0, sizeof(*out));
    memset(&rv, 0, sizeof(rv));
    if (e->has_rhs)
        eval_single(&rc, &e->rhs, &rv, &rtmp);

    if (e->lhs.kind == O_PATH && wrk_jsonpath_is_multi(e->lhs.path) && e->op != OP_NONE &&
        e->op != OP_EXISTS) {
        /* every match must pass, and there must be one */
        struct each w = {&lc, e, &rv, rc.note, 0, 0, NULL, NULL, {0}};
        rp_buf_init(&w.all, 0);
        if (body_root(&lc, &root))
            (void)wrk_jsonpath_eval(e->lhs.path, &root, each_fn, &w);
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
        if (e->op == OP_EXISTS && e->lhs.kind == O_PATH && wrk_jsonpath_is_multi(e->lhs.path) &&
            lv.type == WRK_V_ARRAY &&
            !(bson_iter_recurse(&lv.it, &child) && bson_iter_next(&child)))
            lv.type = WRK_V_MISSING; /* a wildcard exists when it matches something */
        out->passed = apply(&lc, e, &lv, &rv, rc.note);
        out->actual = show(&lv, ACTUAL_MAX);
        const char *note = out->passed ? NULL : lc.note ? lc.note : missing_note;
        if (e->op == OP_EXISTS && lv.type == WRK_V_MISSING && out->passed)
            note = NULL;
        out->message = message(e, e->lhs.label, 0, &rv, out->actual, note);
    }
    wrk_value_clear(&ltmp);
    wrk_value_clear(&rtmp);
}

void wrk_expr_value(const struct wrk_expr *e, const struct wrk_response_view *r,
                    struct wrk_value *out, int *secret)
{
    struct ctx c = {r, NULL, {0}};
    struct wrk_value tmp = {0};
    struct view v;

    memset(out, 0, sizeof(*out));
    if (secret)
        *secret = 0;
    if (e->op != OP_NONE) {
        struct wrk_check chk;
        wrk_expr_check(e, r, &chk);
        out->type = WRK_V_BOOL;
        out->b = chk.passed;
        wrk_check_clear(&chk);
        return;
    }
    eval_single(&c, &e->lhs, &v, &tmp);
    view_to_value(&v, out);
    if (secret)
        *secret = v.secret;
    wrk_value_clear(&tmp);
}
