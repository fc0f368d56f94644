/* Expressions, parsing: the assertion language (`$.user.age > 18`, `header.content-type contains
 * "json"`, `len($.items) == 3`). A hand-written recursive-descent parser compiles the source
 * once into two operands and an operator (JSON paths compiled, regular expressions compiled by
 * PCRE2 with match limits, literals built). The grammar is documented in docs/tests.md;
 * evaluation is in expr_eval.c. A parsed expression is read-only: several threads may evaluate
 * it at once. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "rampart/mem.h"
#include "expr_int.h"

#define LITERAL_DEPTH  32
#define RE_MATCH_LIMIT 100000
#define RE_DEPTH_LIMIT 5000
#define RE_HEAP_KIB    8192

const char *const rp_expr_type_names[N_TYPES] = {"string", "number", "integer",  "boolean",
                                                 "array",  "object", "null",     "email",
                                                 "url",    "uuid",   "date-time"};
const char *const rp_expr_op_names[] = {"",   "==",       "!=",      "<",  "<=",     ">",
                                        ">=", "contains", "matches", "in", "exists", "is"};

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

static int parse_number(struct parser *ps, struct rp_value *out)
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
    rp_value_set_number(out, d);
    ps->p = q;
    return RP_OK;
}

static int parse_literal(struct parser *ps, struct rp_value *out, int depth);

/* `[lit, ...]` or `{"key": lit, ...}` into an owned {"v": ...} document. */
static int parse_container(struct parser *ps, struct rp_value *out, int depth)
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
        struct rp_value item = {0};
        rc = parse_literal(ps, &item, depth + 1);
        if (rc == RP_OK)
            rp_value_append(&inner, key, &item);
        rp_value_clear(&item);
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
    out->type = is_array ? RP_V_ARRAY : RP_V_OBJECT;
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

static int parse_literal(struct parser *ps, struct rp_value *out, int depth)
{
    const char *s = ps->p;
    char c = *s;
    if (c == '"' || c == '\'') {
        char *str;
        int rc = parse_string(ps, &str, NULL);
        if (rc != RP_OK)
            return rc;
        memset(out, 0, sizeof(*out));
        out->type = RP_V_STRING;
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
        out->type = RP_V_BOOL;
        out->b = s[0] == 't';
    } else if (word_is(s, n, "null")) {
        out->type = RP_V_NULL;
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
    rp_jsonpath_free(o->path);
    rp_value_clear(&o->lit);
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
    offsetof(struct rp_timings, dns), offsetof(struct rp_timings, connect),
    offsetof(struct rp_timings, tls), offsetof(struct rp_timings, first_byte),
    offsetof(struct rp_timings, total)};

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
        rc = rp_jsonpath_compile(path, &o->path, &perr);
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

static int parse_regex(struct parser *ps, struct rp_expr *e)
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
    e->rhs.lit.type = RP_V_STRING;
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

static int parse_operator(struct parser *ps, struct rp_expr *e)
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
        for (t = 0; t < N_TYPES && !word_is(s, n, rp_expr_type_names[t]); t++)
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

static int parse(const char *src, int operand_only, struct rp_expr **out, struct rp_error *err)
{
    struct parser ps = {src, src, err};
    struct rp_expr *e = rp_xcalloc(1, sizeof(*e));
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
                rc = fail_at(&ps, ps.p, "expected an operand after `%s`", rp_expr_op_names[e->op]);
                goto out;
            }
            rc = parse_operand(&ps, &e->rhs, 0);
            e->has_rhs = rc == RP_OK;
            if (rc == RP_OK && e->op == OP_IN && e->rhs.kind == O_LIT &&
                e->rhs.lit.type != RP_V_ARRAY)
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
    rp_expr_free(e);
    return rc;
}

int rp_expr_parse(const char *src, struct rp_expr **out, struct rp_error *err)
{
    return parse(src, 0, out, err);
}

int rp_expr_parse_operand(const char *src, struct rp_expr **out, struct rp_error *err)
{
    return parse(src, 1, out, err);
}

void rp_expr_free(struct rp_expr *e)
{
    if (!e)
        return;
    operand_cleanup(&e->lhs);
    operand_cleanup(&e->rhs);
    pcre2_code_free(e->re);
    pcre2_match_context_free(e->mctx);
    free(e);
}
