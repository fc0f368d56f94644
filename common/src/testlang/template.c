/* `${name}` templating and redaction. A template is text with references `${name}`,
 * `${name.key}`, `${items[0].name}` (spaces inside the braces are ignored); `$${` writes a
 * literal `${`, any other `$` is literal. Rendering produces the real text and, on request, a
 * redacted twin in which secret variables are "***" and any secret text left over (a secret
 * inside a non-secret value or in the template itself) is hidden by rp_redact. */
#include <stdlib.h>
#include <string.h>

#include "rampart/mem.h"
#include "rampart/testlang.h"

#define REF_SHOWN 64 /* bytes of a reference quoted in an error message */

/* Position of the `}` closing the reference that starts at `p` (just after `${`), skipping
 * quoted keys in brackets (`${a["}"]}`); NULL when there is none. */
static const char *ref_end(const char *p)
{
    for (; *p; p++) {
        if (*p == '}')
            return p;
        if (*p == '[' && (p[1] == '"' || p[1] == '\'')) {
            const char *q = strchr(p + 2, p[1]);
            if (!q)
                return NULL;
            p = q;
        }
    }
    return NULL;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* Render into `real` (and `red` when not NULL), or with `check_only` only check the syntax. */
static int scan(const char *tmpl, const struct rp_vars *vars, int check_only, size_t max_len,
                struct rp_buf *real, struct rp_buf *red, struct rp_error *err)
{
    const char *p = tmpl;
    char small[256];
    while (*p) {
        const char *d = strchr(p, '$');
        if (!d)
            d = p + strlen(p);
        if (!check_only && d > p) {
            if (rp_buf_append(real, p, (size_t)(d - p)) != RP_OK)
                goto cap;
            if (red)
                (void)rp_buf_append(red, p, (size_t)(d - p));
        }
        if (!*d)
            break;
        if (d[1] == '$' && d[2] == '{') { /* $${ -> ${ */
            if (!check_only) {
                if (rp_buf_append(real, "${", 2) != RP_OK)
                    goto cap;
                if (red)
                    (void)rp_buf_append(red, "${", 2);
            }
            p = d + 3;
            continue;
        }
        if (d[1] != '{') { /* a lone `$` */
            if (!check_only) {
                if (rp_buf_append(real, "$", 1) != RP_OK)
                    goto cap;
                if (red)
                    (void)rp_buf_append(red, "$", 1);
            }
            p = d + 1;
            continue;
        }
        size_t col = (size_t)(d - tmpl) + 1;
        const char *s = d + 2, *e = ref_end(s);
        if (!e)
            return rp_error_set(err, RP_EINVAL, "column %zu: unclosed ${ (no matching })", col);
        p = e + 1;
        while (s < e && is_space(*s))
            s++;
        while (e > s && is_space(e[-1]))
            e--;
        size_t n = (size_t)(e - s);
        int shown = n > REF_SHOWN ? REF_SHOWN : (int)n;
        if (n == 0)
            return rp_error_set(err, RP_EINVAL, "column %zu: empty variable reference ${}", col);
        if (!rp_vars_ref_valid(s, n))
            return rp_error_set(err, RP_EINVAL,
                                "column %zu: invalid variable reference ${%.*s%s} (expected a "
                                "name like user_id, user.id or items[0].name)",
                                col, shown, s, n > REF_SHOWN ? "..." : "");
        if (check_only)
            continue;

        char *name = n < sizeof(small) ? small : rp_xmalloc(n + 1);
        memcpy(name, s, n);
        name[n] = '\0';
        struct rp_value val;
        int secret = 0;
        int rc = vars ? rp_vars_lookup((void *)vars, name, &val, &secret) : RP_ENOENT;
        if (name != small)
            free(name);
        if (rc != RP_OK)
            return rp_error_set(err, RP_EINVAL, "column %zu: unknown variable ${%.*s%s}", col,
                                shown, s, n > REF_SHOWN ? "..." : "");
        char *text = rp_value_to_text(&val);
        rp_value_clear(&val);
        rc = rp_buf_append(real, text, strlen(text));
        if (rc == RP_OK && red) {
            if (secret)
                (void)rp_buf_append(red, "***", 3);
            else
                (void)rp_buf_append(red, text, strlen(text));
        }
        free(text);
        if (rc != RP_OK)
            goto cap;
    }
    return RP_OK;
cap:
    return rp_error_set(err, RP_ENOMEM, "rendered text is over the limit of %zu bytes", max_len);
}

int rp_template_render(const char *tmpl, const struct rp_vars *vars, size_t max_len, char **out,
                       char **redacted, struct rp_error *err)
{
    int rc = RP_EINVAL;
    struct rp_buf real, red;
    rp_buf_init(&real, max_len);
    rp_buf_init(&red, 0);
    if (!tmpl || !out) {
        rc = rp_error_set(err, RP_EINVAL, "no template");
        goto out;
    }
    rc = scan(tmpl, vars, 0, max_len, &real, redacted ? &red : NULL, err);
    if (rc != RP_OK)
        goto out;
    if (redacted) {
        /* A secret can still hide in a non-secret value or in the template's own text. */
        const char *const *secrets = vars ? rp_vars_secrets((struct rp_vars *)vars) : NULL;
        if (secrets && secrets[0]) {
            *redacted = rp_redact(red.data ? red.data : "", red.len, secrets);
            rp_buf_cleanup(&red);
        } else {
            *redacted = red.data ? red.data : rp_xstrdup("");
            red.data = NULL;
        }
    }
    *out = real.data ? real.data : rp_xstrdup("");
    real.data = NULL;
    rc = RP_OK;
out:
    rp_buf_cleanup(&real);
    rp_buf_cleanup(&red);
    return rc;
}

int rp_template_check(const char *tmpl, struct rp_error *err)
{
    if (!tmpl)
        return rp_error_set(err, RP_EINVAL, "no template");
    return scan(tmpl, NULL, 1, 0, NULL, NULL, err);
}

/* First occurrence of `needle` (n > 0 bytes) in `hay`, or NULL (memmem is not in C11/POSIX). */
static const char *find(const char *hay, size_t len, const char *needle, size_t n)
{
    const char *end = hay + len;
    while ((size_t)(end - hay) >= n) {
        const char *p = memchr(hay, needle[0], (size_t)(end - hay) - n + 1);
        if (!p)
            return NULL;
        if (memcmp(p, needle, n) == 0)
            return p;
        hay = p + 1;
    }
    return NULL;
}

struct span {
    size_t from, to;
};

static int by_start(const void *a, const void *b)
{
    const struct span *x = a, *y = b;
    return x->from < y->from ? -1 : x->from > y->from;
}

/* Every byte covered by an occurrence of any secret is hidden; each run of hidden bytes becomes
 * one "***". Collecting the covered spans first (rather than replacing secret by secret) hides
 * overlapping secrets completely whatever their order. */
char *rp_redact(const char *text, size_t len, const char *const *secrets)
{
    struct span *spans = NULL;
    size_t n_spans = 0, cap = 0;
    if (!text)
        return rp_xstrdup("");
    for (size_t k = 0; secrets && secrets[k]; k++) {
        size_t n = strlen(secrets[k]);
        if (n == 0 || n > len)
            continue;
        const char *p = text, *end = text + len;
        size_t first = n_spans; /* this secret's spans start here */
        while ((size_t)(end - p) >= n) {
            const char *hit = find(p, (size_t)(end - p), secrets[k], n);
            if (!hit)
                break;
            size_t from = (size_t)(hit - text);
            p = hit + 1;
            if (n_spans > first && from <= spans[n_spans - 1].to) { /* overlaps its previous */
                spans[n_spans - 1].to = from + n;
                continue;
            }
            if (n_spans == cap) {
                cap = cap ? cap * 2 : 16;
                spans = rp_xrealloc(spans, cap * sizeof(*spans));
            }
            spans[n_spans].from = from;
            spans[n_spans++].to = from + n;
        }
    }
    if (!n_spans)
        return rp_xstrndup(text, len);
    qsort(spans, n_spans, sizeof(*spans), by_start);
    char *out = rp_xmalloc(len + 3 * n_spans + 1), *w = out;
    size_t at = 0;
    for (size_t i = 0; i < n_spans;) {
        size_t from = spans[i].from, to = spans[i].to;
        for (i++; i < n_spans && spans[i].from <= to; i++) /* merge touching and overlapping */
            if (spans[i].to > to)
                to = spans[i].to;
        memcpy(w, text + at, from - at);
        w += from - at;
        memcpy(w, "***", 3);
        w += 3;
        at = to;
    }
    memcpy(w, text + at, len - at);
    w += len - at;
    *w = '\0';
    free(spans);
    return out;
}
