/* JSON path: compiles `$.a.b[0]["c d"][*]..e` once into a list of segments and walks a parsed
 * body (bson) without copying it. Each segment is a selector (member name, index, wildcard),
 * optionally applied at every depth (`..`). A walk visits at most WALK_BUDGET nodes, so a path
 * like $..*..*..* over a large body stays cheap; the syntax is in docs/tests.md. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "rampart/mem.h"
#include "rampart/testlang.h"

#define MAX_SEGMENTS 256
#define MAX_DEPTH    256
#define WALK_BUDGET  1000000

enum sel_kind { SEL_NAME, SEL_INDEX, SEL_WILD };

struct segment {
    enum sel_kind kind;
    int descend; /* `..`: apply the selector to the node and every descendant */
    char *name;  /* SEL_NAME */
    size_t name_len;
    long long index; /* SEL_INDEX, negative counts from the end */
};

struct rp_jsonpath {
    struct segment *segs;
    size_t n;
    int multi;
};

/* Bytes allowed in a dotted member name (`$.content-type`); anything else needs brackets. */
static int name_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '$' || c == '@' || c >= 0x80;
}

void rp_jsonpath_free(struct rp_jsonpath *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++)
        free(p->segs[i].name);
    free(p->segs);
    free(p);
}

static int perr(struct rp_error *err, const char *path, const char *at, const char *what)
{
    return rp_error_set(err, RP_EINVAL, "column %ld: %s", (long)(at - path) + 1, what);
}

/* Parse a bracket `[...]` at *pp (on the `[`) into `seg`. */
static int parse_bracket(const char *path, const char **pp, struct segment *seg,
                         struct rp_error *err)
{
    const char *p = *pp + 1;
    while (*p == ' ')
        p++;
    if (*p == '*') {
        seg->kind = SEL_WILD;
        p++;
    } else if (*p == '"' || *p == '\'') {
        char q = *p++;
        struct rp_buf b;
        rp_buf_init(&b, 0);
        (void)rp_buf_append(&b, "", 0);
        while (*p && *p != q) {
            if (*p == '\\' && p[1])
                p++;
            (void)rp_buf_append(&b, p, 1);
            p++;
        }
        if (!*p) {
            rp_buf_cleanup(&b);
            return perr(err, path, *pp, "unterminated quoted name; expected a closing quote");
        }
        p++;
        seg->kind = SEL_NAME;
        seg->name = b.data;
        seg->name_len = b.len;
    } else if (*p == '-' || (*p >= '0' && *p <= '9')) {
        char *end;
        errno = 0;
        long long n = strtoll(p, &end, 10);
        if (end == p || (*p == '-' && end == p + 1))
            return perr(err, path, p, "expected an index after `-`");
        if (errno == ERANGE || n > 1000000000LL || n < -1000000000LL)
            return perr(err, path, p, "index out of range");
        seg->kind = SEL_INDEX;
        seg->index = n;
        p = end;
    } else {
        return perr(err, path, p, "expected `*`, an index or a quoted name after `[`");
    }
    while (*p == ' ')
        p++;
    if (*p != ']')
        return perr(err, path, p, "expected `]`");
    *pp = p + 1;
    return RP_OK;
}

int rp_jsonpath_compile(const char *path, struct rp_jsonpath **out, struct rp_error *err)
{
    int rc = RP_EINVAL;
    struct rp_jsonpath *jp = rp_xcalloc(1, sizeof(*jp));
    const char *p = path;

    if (*p != '$') {
        rc = perr(err, path, p, "a JSON path starts with `$`");
        goto out;
    }
    p++;
    while (*p) {
        struct segment seg = {0};
        if (jp->n >= MAX_SEGMENTS) {
            rc = perr(err, path, p, "path too long (at most 256 steps)");
            goto out;
        }
        if (*p == '.') {
            p++;
            if (*p == '.') {
                seg.descend = 1;
                p++;
            }
            if (*p == '*') {
                seg.kind = SEL_WILD;
                p++;
            } else if (*p == '[' && seg.descend) {
                if ((rc = parse_bracket(path, &p, &seg, err)) != RP_OK) {
                    free(seg.name);
                    goto out;
                }
            } else if (name_byte((unsigned char)*p)) {
                const char *s = p;
                while (name_byte((unsigned char)*p))
                    p++;
                seg.kind = SEL_NAME;
                seg.name = rp_xstrndup(s, (size_t)(p - s));
                seg.name_len = (size_t)(p - s);
            } else {
                rc = perr(err, path, p, "expected a member name or `*` after `.`");
                goto out;
            }
        } else if (*p == '[') {
            if ((rc = parse_bracket(path, &p, &seg, err)) != RP_OK) {
                free(seg.name);
                goto out;
            }
        } else {
            rc = perr(err, path, p, "unexpected character; expected `.`, `..` or `[`");
            goto out;
        }
        if (seg.descend || seg.kind == SEL_WILD)
            jp->multi = 1;
        jp->segs = rp_xrealloc(jp->segs, (jp->n + 1) * sizeof(*jp->segs));
        jp->segs[jp->n++] = seg;
    }
    *out = jp;
    jp = NULL;
    rc = RP_OK;
out:
    rp_jsonpath_free(jp);
    return rc;
}

int rp_jsonpath_is_multi(const struct rp_jsonpath *p)
{
    return p->multi;
}

struct walk {
    const struct rp_jsonpath *p;
    rp_jsonpath_fn fn;
    void *ud;
    size_t matches;
    long budget;
    int stop;
};

static void step(struct walk *w, size_t i, const bson_iter_t *node, int depth);

static int is_container(const bson_iter_t *it)
{
    return BSON_ITER_HOLDS_DOCUMENT(it) || BSON_ITER_HOLDS_ARRAY(it);
}

/* Apply the selector of segment `i` to `node`, continuing with segment i+1 on each result. */
static void select_children(struct walk *w, size_t i, const bson_iter_t *node, int depth)
{
    const struct segment *s = &w->p->segs[i];
    bson_iter_t child;
    if (!is_container(node) || !bson_iter_recurse(node, &child))
        return;
    switch (s->kind) {
    case SEL_NAME:
        if (!BSON_ITER_HOLDS_DOCUMENT(node) || memchr(s->name, '\0', s->name_len))
            return;
        while (bson_iter_next(&child) && !w->stop && --w->budget > 0)
            if (bson_iter_key_len(&child) == s->name_len &&
                memcmp(bson_iter_key(&child), s->name, s->name_len) == 0) {
                step(w, i + 1, &child, depth + 1);
                return; /* duplicate keys: the first one wins */
            }
        return;
    case SEL_INDEX: {
        if (!BSON_ITER_HOLDS_ARRAY(node))
            return;
        long long want = s->index;
        if (want < 0) {
            bson_iter_t count = child;
            long long n = 0;
            while (bson_iter_next(&count) && --w->budget > 0)
                n++;
            want += n;
            if (want < 0)
                return;
        }
        for (long long k = 0; bson_iter_next(&child) && --w->budget > 0; k++)
            if (k == want) {
                step(w, i + 1, &child, depth + 1);
                return;
            }
        return;
    }
    case SEL_WILD:
        while (bson_iter_next(&child) && !w->stop && --w->budget > 0)
            step(w, i + 1, &child, depth + 1);
        return;
    }
}

/* `..sel`: the selector at this node, then at every descendant (document order). */
static void descend(struct walk *w, size_t i, const bson_iter_t *node, int depth)
{
    bson_iter_t child;
    if (w->stop || depth > MAX_DEPTH || --w->budget <= 0)
        return;
    select_children(w, i, node, depth);
    if (!is_container(node) || !bson_iter_recurse(node, &child))
        return;
    while (bson_iter_next(&child) && !w->stop)
        descend(w, i, &child, depth + 1);
}

static void step(struct walk *w, size_t i, const bson_iter_t *node, int depth)
{
    if (w->stop || depth > MAX_DEPTH || w->budget <= 0)
        return;
    if (i == w->p->n) {
        w->matches++;
        if (w->fn && w->fn(node, w->ud))
            w->stop = 1;
        return;
    }
    if (w->p->segs[i].descend)
        descend(w, i, node, depth);
    else
        select_children(w, i, node, depth);
}

size_t rp_jsonpath_eval(const struct rp_jsonpath *p, const bson_iter_t *root, rp_jsonpath_fn fn,
                        void *ud)
{
    struct walk w = {p, fn, ud, 0, WALK_BUDGET, 0};
    step(&w, 0, root, 0);
    return w.matches;
}
