/* Layered variables (project < environment < test < override < capture) with secrets. One
 * open-addressing hash table maps a name to an entry holding one slot per layer, so a lookup is
 * one probe and the highest present slot wins. A reference may read into a JSON value
 * ("user.id", "items[0].name"); names may contain dots themselves, so the longest prefix that
 * is a variable wins. The list of secret texts (for redaction) is rebuilt whenever a secret
 * changes, so readers never pay for it. */
#include <stdlib.h>
#include <string.h>

#include "rampart/mem.h"
#include "rampart/testlang.h"

#define MAX_NAME 128

struct slot {
    int present;
    int secret;
    struct rp_value val;
};

struct entry {
    char *name;
    size_t len;
    uint32_t hash;
    struct slot layer[RP_N_LAYERS];
};

struct rp_vars {
    struct entry *entries;
    size_t n, cap;
    uint32_t *index; /* entry number + 1; 0 = empty; size index_cap (a power of two) */
    size_t index_cap;
    char **secrets; /* NULL-terminated */
    size_t n_secrets, cap_secrets;
};

static uint32_t hash_name(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static int is_name_start(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static int is_name_char(char c)
{
    return is_name_start(c) || (c >= '0' && c <= '9') || c == '.' || c == '-';
}

static int valid_name(const char *s, size_t n)
{
    if (n == 0 || n > MAX_NAME || !is_name_start(s[0]))
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!is_name_char(s[i]))
            return 0;
    return 1;
}

static struct entry *find(const struct rp_vars *v, const char *name, size_t n, uint32_t h)
{
    if (!v->index_cap)
        return NULL;
    for (size_t i = h & (v->index_cap - 1);; i = (i + 1) & (v->index_cap - 1)) {
        uint32_t e = v->index[i];
        if (!e)
            return NULL;
        struct entry *en = &v->entries[e - 1];
        if (en->hash == h && en->len == n && memcmp(en->name, name, n) == 0)
            return en;
    }
}

static void reindex(struct rp_vars *v, size_t cap)
{
    free(v->index);
    v->index = rp_xcalloc(cap, sizeof(*v->index));
    v->index_cap = cap;
    for (size_t k = 0; k < v->n; k++) {
        size_t i = v->entries[k].hash & (cap - 1);
        while (v->index[i])
            i = (i + 1) & (cap - 1);
        v->index[i] = (uint32_t)(k + 1);
    }
}

static struct entry *find_or_add(struct rp_vars *v, const char *name, size_t n)
{
    uint32_t h = hash_name(name, n);
    struct entry *en = find(v, name, n, h);
    if (en)
        return en;
    if (v->n == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 16;
        v->entries = rp_xrealloc(v->entries, v->cap * sizeof(*v->entries));
    }
    en = &v->entries[v->n++];
    memset(en, 0, sizeof(*en));
    en->name = rp_xstrndup(name, n);
    en->len = n;
    en->hash = h;
    if (v->n * 2 > v->index_cap)
        reindex(v, v->index_cap ? v->index_cap * 2 : 32);
    else {
        size_t i = h & (v->index_cap - 1);
        while (v->index[i])
            i = (i + 1) & (v->index_cap - 1);
        v->index[i] = (uint32_t)v->n;
    }
    return en;
}

/* ---- the secrets list ---- */

static void add_secret(struct rp_vars *v, char *text)
{
    if (!text[0]) {
        free(text);
        return;
    }
    for (size_t i = 0; i < v->n_secrets; i++) {
        if (strcmp(v->secrets[i], text) == 0) {
            free(text);
            return;
        }
    }
    if (v->n_secrets + 2 > v->cap_secrets) {
        v->cap_secrets = v->cap_secrets ? v->cap_secrets * 2 : 8;
        v->secrets = rp_xrealloc(v->secrets, v->cap_secrets * sizeof(*v->secrets));
    }
    v->secrets[v->n_secrets++] = text;
    v->secrets[v->n_secrets] = NULL;
}

/* Strings and numbers inside a secret object or array are secrets too: `${creds.password}`
 * renders only the leaf. */
static void add_leaves(struct rp_vars *v, const bson_iter_t *it, int depth)
{
    bson_iter_t child;
    if (depth > 100 || !bson_iter_recurse(it, &child))
        return;
    while (bson_iter_next(&child)) {
        if (BSON_ITER_HOLDS_DOCUMENT(&child) || BSON_ITER_HOLDS_ARRAY(&child)) {
            add_leaves(v, &child, depth + 1);
            continue;
        }
        struct rp_value leaf;
        rp_value_from_iter(&leaf, &child);
        if (leaf.type == RP_V_STRING || leaf.type == RP_V_NUMBER)
            add_secret(v, rp_value_to_text(&leaf));
        rp_value_clear(&leaf);
    }
}

static void rebuild_secrets(struct rp_vars *v)
{
    for (size_t i = 0; i < v->n_secrets; i++)
        free(v->secrets[i]);
    v->n_secrets = 0;
    if (v->secrets)
        v->secrets[0] = NULL;
    for (size_t k = 0; k < v->n; k++) {
        for (int l = 0; l < RP_N_LAYERS; l++) {
            const struct slot *s = &v->entries[k].layer[l];
            if (!s->present || !s->secret)
                continue;
            add_secret(v, rp_value_to_text(&s->val));
            bson_iter_t it;
            if ((s->val.type == RP_V_OBJECT || s->val.type == RP_V_ARRAY) &&
                rp_json_root(s->val.doc, &it) == RP_OK)
                add_leaves(v, &it, 0);
        }
    }
}

/* ---- lifecycle ---- */

struct rp_vars *rp_vars_new(void)
{
    struct rp_vars *v = rp_xcalloc(1, sizeof(*v));
    return v;
}

void rp_vars_free(struct rp_vars *v)
{
    if (!v)
        return;
    for (size_t k = 0; k < v->n; k++) {
        free(v->entries[k].name);
        for (int l = 0; l < RP_N_LAYERS; l++)
            rp_value_clear(&v->entries[k].layer[l].val);
    }
    for (size_t i = 0; i < v->n_secrets; i++)
        free(v->secrets[i]);
    free(v->secrets);
    free(v->entries);
    free(v->index);
    free(v);
}

struct rp_vars *rp_vars_clone(const struct rp_vars *v)
{
    struct rp_vars *c = rp_vars_new();
    if (!v)
        return c;
    c->n = c->cap = v->n;
    c->entries = rp_xcalloc(v->n ? v->n : 1, sizeof(*c->entries));
    for (size_t k = 0; k < v->n; k++) {
        const struct entry *src = &v->entries[k];
        struct entry *dst = &c->entries[k];
        dst->name = rp_xstrndup(src->name, src->len);
        dst->len = src->len;
        dst->hash = src->hash;
        for (int l = 0; l < RP_N_LAYERS; l++) {
            dst->layer[l].present = src->layer[l].present;
            dst->layer[l].secret = src->layer[l].secret;
            if (src->layer[l].present)
                rp_value_copy(&dst->layer[l].val, &src->layer[l].val);
        }
    }
    if (v->index_cap) {
        c->index_cap = v->index_cap;
        c->index = rp_xmalloc(v->index_cap * sizeof(*c->index));
        memcpy(c->index, v->index, v->index_cap * sizeof(*c->index));
    }
    rebuild_secrets(c);
    return c;
}

int rp_vars_set(struct rp_vars *v, enum rp_layer layer, const char *name,
                const struct rp_value *value, int secret)
{
    if (!v || !name || !value || (int)layer < 0 || layer >= RP_N_LAYERS)
        return RP_EINVAL;
    size_t n = strlen(name);
    if (!valid_name(name, n))
        return RP_EINVAL;
    struct slot *s = &find_or_add(v, name, n)->layer[layer];
    int had_secret = s->present && s->secret;
    struct rp_value copy;
    rp_value_copy(&copy, value); /* before clearing: `value` may be this very slot's */
    rp_value_clear(&s->val);
    s->val = copy;
    s->present = 1;
    s->secret = secret != 0;
    if (had_secret || s->secret)
        rebuild_secrets(v);
    return RP_OK;
}

int rp_vars_set_string(struct rp_vars *v, enum rp_layer layer, const char *name, const char *value,
                       int secret)
{
    struct rp_value val;
    if (!value)
        return RP_EINVAL;
    rp_value_set_string(&val, value, strlen(value));
    int rc = rp_vars_set(v, layer, name, &val, secret);
    rp_value_clear(&val);
    return rc;
}

/* ---- references: name, then .key [N] [-N] ["key"] ['key'] ---- */

static int is_key_char(char c)
{
    return (unsigned char)c > 0x20 && c != '.' && c != '[' && c != ']' && c != '"' && c != '\'' &&
           c != '}' && c != 0x7f;
}

/* Parse one step at `p` (< end). Fills key/key_len (key step) or idx (index step, *is_idx).
 * Returns the position after the step, or NULL when malformed. */
static const char *parse_step(const char *p, const char *end, const char **key, size_t *key_len,
                              long *idx, int *is_idx)
{
    if (*p == '.') {
        const char *k = ++p;
        while (p < end && is_key_char(*p))
            p++;
        if (p == k)
            return NULL;
        *key = k;
        *key_len = (size_t)(p - k);
        *is_idx = 0;
        return p;
    }
    if (*p != '[' || ++p >= end)
        return NULL;
    if (*p == '"' || *p == '\'') {
        char q = *p++;
        const char *k = p;
        while (p < end && *p != q)
            p++;
        if (p + 1 >= end || p[1] != ']')
            return NULL;
        *key = k;
        *key_len = (size_t)(p - k);
        *is_idx = 0;
        return p + 2;
    }
    int neg = 0;
    if (*p == '-') {
        neg = 1;
        p++;
    }
    const char *d = p;
    long n = 0;
    while (p < end && *p >= '0' && *p <= '9') {
        if (n > 100000000)
            return NULL;
        n = n * 10 + (*p - '0');
        p++;
    }
    if (p == d || p >= end || *p != ']' || (neg && n == 0))
        return NULL;
    *idx = neg ? -n : n;
    *is_idx = 1;
    return p + 1;
}

/* Length of the name part: up to the first '[' (dots belong to the name for now). */
static size_t name_part(const char *ref, size_t len)
{
    size_t i = 0;
    while (i < len && ref[i] != '[')
        i++;
    return i;
}

int rp_vars_ref_valid(const char *ref, size_t len)
{
    size_t n = name_part(ref, len);
    if (n == 0 || !is_name_start(ref[0]))
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!is_name_char(ref[i]))
            return 0;
    const char *p = ref + n, *end = ref + len;
    while (p < end) {
        const char *key;
        size_t key_len;
        long idx;
        int is_idx;
        p = parse_step(p, end, &key, &key_len, &idx, &is_idx);
        if (!p)
            return 0;
    }
    return 1;
}

/* Walk `steps` from the value `it` is positioned on; RP_OK with `it` on the result. */
static int walk(bson_iter_t *it, const char *p, const char *end)
{
    while (p < end) {
        const char *key = NULL;
        size_t key_len = 0;
        long idx = 0;
        int is_idx;
        bson_iter_t child;
        p = parse_step(p, end, &key, &key_len, &idx, &is_idx);
        if (!p || !(BSON_ITER_HOLDS_DOCUMENT(it) || BSON_ITER_HOLDS_ARRAY(it)) ||
            !bson_iter_recurse(it, &child))
            return RP_ENOENT;
        if (!is_idx) {
            if (!BSON_ITER_HOLDS_DOCUMENT(it) || key_len > 65536 ||
                !bson_iter_find_w_len(&child, key, (int)key_len))
                return RP_ENOENT;
        } else {
            if (!BSON_ITER_HOLDS_ARRAY(it))
                return RP_ENOENT;
            if (idx < 0) {
                bson_iter_t count = child;
                long n = 0;
                while (bson_iter_next(&count))
                    n++;
                idx += n;
                if (idx < 0)
                    return RP_ENOENT;
            }
            long i = 0;
            int found = 0;
            while (bson_iter_next(&child)) {
                if (i++ == idx) {
                    found = 1;
                    break;
                }
            }
            if (!found)
                return RP_ENOENT;
        }
        *it = child;
    }
    return RP_OK;
}

static int resolve(const struct slot *s, const char *p, const char *end, struct rp_value *out)
{
    bson_iter_t it;
    if (p == end) {
        rp_value_copy(out, &s->val);
        return RP_OK;
    }
    if ((s->val.type != RP_V_OBJECT && s->val.type != RP_V_ARRAY) ||
        rp_json_root(s->val.doc, &it) != RP_OK || walk(&it, p, end) != RP_OK)
        return RP_ENOENT;
    rp_value_from_iter(out, &it);
    return RP_OK;
}

static const struct slot *top(const struct entry *en)
{
    for (int l = RP_N_LAYERS - 1; l >= 0; l--)
        if (en->layer[l].present)
            return &en->layer[l];
    return NULL;
}

int rp_vars_lookup(void *vars, const char *name, struct rp_value *out, int *secret)
{
    const struct rp_vars *v = vars;
    if (!v || !name || !out)
        return RP_ENOENT;
    size_t len = strlen(name);
    if (!rp_vars_ref_valid(name, len))
        return RP_ENOENT;
    const char *end = name + len;
    /* Try the whole name part, then shorter prefixes ending before a dot: the rest is a path. */
    for (size_t n = name_part(name, len); n > 0; n--) {
        if (n < len && name[n] != '.' && name[n] != '[')
            continue;
        if (n > MAX_NAME)
            continue;
        const struct entry *en = find(v, name, n, hash_name(name, n));
        const struct slot *s = en ? top(en) : NULL;
        if (!s)
            continue;
        /* The longest defined prefix decides: a missing sub-path is not retried shorter. */
        int rc = resolve(s, name + n, end, out);
        if (rc == RP_OK && secret)
            *secret = s->secret;
        return rc;
    }
    return RP_ENOENT;
}

/* ---- loading a JSON object ---- */

/* When `it` holds {"value": v[, "secret": bool]}, position `val` on v and set `*secret`.
 * Returns 1 for the wrapper form, 0 for a plain value, -1 for a bad `secret`. */
static int wrapper(const bson_iter_t *it, bson_iter_t *val, int *secret)
{
    bson_iter_t child, sec;
    int has_value = 0, has_secret = 0;
    if (!BSON_ITER_HOLDS_DOCUMENT(it) || !bson_iter_recurse(it, &child))
        return 0;
    while (bson_iter_next(&child)) {
        if (strcmp(bson_iter_key(&child), "value") == 0) {
            has_value = 1;
            *val = child;
        } else if (strcmp(bson_iter_key(&child), "secret") == 0) {
            has_secret = 1;
            sec = child;
        } else {
            return 0;
        }
    }
    if (!has_value)
        return 0;
    *secret = 0;
    if (has_secret) {
        if (!BSON_ITER_HOLDS_BOOL(&sec))
            return -1;
        *secret = bson_iter_bool(&sec);
    }
    return 1;
}

int rp_vars_load_object(struct rp_vars *v, enum rp_layer layer, const bson_iter_t *object,
                        struct rp_error *err)
{
    bson_iter_t child, val;
    int secret;
    if (!v || (int)layer < 0 || layer >= RP_N_LAYERS)
        return rp_error_set(err, RP_EINVAL, "variables: bad layer");
    if (!BSON_ITER_HOLDS_DOCUMENT(object) || !bson_iter_recurse(object, &child))
        return rp_error_set(err, RP_EINVAL, "variables must be a JSON object");
    /* Check everything first, so that a bad member leaves `v` unchanged. */
    while (bson_iter_next(&child)) {
        const char *key = bson_iter_key(&child);
        if (!valid_name(key, strlen(key)))
            return rp_error_set(err, RP_EINVAL,
                                "variable \"%.*s\": invalid name (letters, digits, _ . -, "
                                "starting with a letter or _, at most %d bytes)",
                                200, key, MAX_NAME);
        if (wrapper(&child, &val, &secret) < 0)
            return rp_error_set(err, RP_EINVAL, "variable \"%s\": \"secret\" must be true or false",
                                key);
    }
    if (!bson_iter_recurse(object, &child))
        return rp_error_set(err, RP_EINVAL, "variables must be a JSON object");
    while (bson_iter_next(&child)) {
        struct rp_value value;
        secret = 0;
        if (wrapper(&child, &val, &secret) == 1)
            rp_value_from_iter(&value, &val);
        else
            rp_value_from_iter(&value, &child);
        int rc = rp_vars_set(v, layer, bson_iter_key(&child), &value, secret);
        rp_value_clear(&value);
        if (rc != RP_OK)
            return rp_error_set(err, rc, "variable \"%s\": cannot be set", bson_iter_key(&child));
    }
    return RP_OK;
}

const char *const *rp_vars_secrets(struct rp_vars *v)
{
    static const char *const none[] = {NULL};
    if (!v || !v->secrets)
        return none;
    return (const char *const *)v->secrets;
}
