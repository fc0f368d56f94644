/* rampart-backup's manifest (backup.h): manifest.json, the first entry of every archive, lists
 * the header (format, versions, installation) and every part with its count, sizes and SHA-256.
 * Written with libbson's relaxed extended JSON (64-bit counts are plain JSON numbers) and parsed
 * strictly: every member is required and typed, part names must be exactly "<kind>/<object>.ext"
 * so that nothing in a manifest can name a path outside the archive's own layout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backup.h"
#include "rampart/mem.h"

void bk_manifest_cleanup(struct bk_manifest *m)
{
    if (!m)
        return;
    free(m->rampart_version);
    free(m->installation_id);
    free(m->created_at);
    free(m->pg_database);
    free(m->mongo_database);
    for (size_t i = 0; i < m->n_parts; i++) {
        free(m->parts[i].name);
        free(m->parts[i].kind);
        free(m->parts[i].object);
        if (m->parts[i].extra)
            bson_destroy(m->parts[i].extra);
    }
    free(m->parts);
    memset(m, 0, sizeof(*m));
}

static const char *or_empty(const char *s)
{
    return s ? s : "";
}

char *bk_manifest_to_json(const struct bk_manifest *m)
{
    bson_t doc, sub, arr, part;
    bson_init(&doc);
    bson_append_int32(&doc, "format", -1, m->format);
    bson_append_utf8(&doc, "rampart_version", -1, or_empty(m->rampart_version), -1);
    bson_append_int32(&doc, "schema_version", -1, m->schema_version);
    bson_append_utf8(&doc, "installation_id", -1, or_empty(m->installation_id), -1);
    bson_append_utf8(&doc, "created_at", -1, or_empty(m->created_at), -1);
    bson_append_document_begin(&doc, "postgres", -1, &sub);
    bson_append_utf8(&sub, "database", -1, or_empty(m->pg_database), -1);
    bson_append_document_end(&doc, &sub);
    bson_append_document_begin(&doc, "mongo", -1, &sub);
    bson_append_utf8(&sub, "database", -1, or_empty(m->mongo_database), -1);
    bson_append_document_end(&doc, &sub);
    bson_append_array_begin(&doc, "parts", -1, &arr);
    for (size_t i = 0; i < m->n_parts; i++) {
        const struct bk_part_info *p = &m->parts[i];
        char key[24];
        snprintf(key, sizeof(key), "%zu", i);
        bson_append_document_begin(&arr, key, -1, &part);
        bson_append_utf8(&part, "name", -1, or_empty(p->name), -1);
        bson_append_utf8(&part, "kind", -1, or_empty(p->kind), -1);
        bson_append_utf8(&part, "object", -1, or_empty(p->object), -1);
        bson_append_int64(&part, "count", -1, (int64_t)p->count);
        bson_append_int64(&part, "bytes", -1, (int64_t)p->bytes);
        bson_append_int64(&part, "raw_bytes", -1, (int64_t)p->raw_bytes);
        bson_append_utf8(&part, "sha256", -1, p->sha256, -1);
        if (p->extra)
            bson_append_document(&part, "extra", -1, p->extra);
        bson_append_document_end(&arr, &part);
    }
    bson_append_array_end(&doc, &arr);
    size_t len = 0;
    char *j = bson_as_relaxed_extended_json(&doc, &len);
    char *out = rp_xstrdup(j ? j : "{}");
    bson_free(j);
    bson_destroy(&doc);
    return out;
}

/* ---- parsing ------------------------------------------------------------------------------ */

/* A string member: UTF-8 without an embedded NUL. */
static int get_str(const bson_iter_t *it, const char *what, char **out, struct rp_error *err)
{
    if (!BSON_ITER_HOLDS_UTF8(it))
        return rp_error_set(err, RP_EINVAL, "manifest.json: %s must be a string", what);
    uint32_t n = 0;
    const char *s = bson_iter_utf8(it, &n);
    if (strlen(s) != n)
        return rp_error_set(err, RP_EINVAL, "manifest.json: %s contains a NUL character", what);
    free(*out);
    *out = rp_xstrndup(s, n);
    return RP_OK;
}

static int get_int(const bson_iter_t *it, const char *what, int64_t min, int64_t max, int64_t *out,
                   struct rp_error *err)
{
    int64_t v;
    if (BSON_ITER_HOLDS_INT32(it))
        v = bson_iter_int32(it);
    else if (BSON_ITER_HOLDS_INT64(it))
        v = bson_iter_int64(it);
    else
        return rp_error_set(err, RP_EINVAL, "manifest.json: %s must be an integer", what);
    if (v < min || v > max)
        return rp_error_set(err, RP_EINVAL, "manifest.json: %s is %lld, outside %lld..%lld", what,
                            (long long)v, (long long)min, (long long)max);
    *out = v;
    return RP_OK;
}

/* Bit of `key` in `names` (NULL-terminated), or -1 for a member the format does not have. */
static int member_bit(const char *const *names, const char *key)
{
    for (int i = 0; names[i]; i++)
        if (strcmp(names[i], key) == 0)
            return i;
    return -1;
}

/* Check that every member of `names` but the optional ones (bits in `optional`) was seen. */
static int check_seen(const char *const *names, unsigned seen, unsigned optional, const char *where,
                      struct rp_error *err)
{
    for (int i = 0; names[i]; i++)
        if (!(seen & (1u << i)) && !(optional & (1u << i)))
            return rp_error_set(err, RP_EINVAL, "manifest.json: %s%s is missing", where, names[i]);
    return RP_OK;
}

static int object_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 120 || strstr(s, ".."))
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return 0;
    }
    return 1;
}

static int sha_ok(const char *s)
{
    if (strlen(s) != 64)
        return 0;
    for (int i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

/* {"database": string} */
static int parse_db(const bson_iter_t *it, const char *what, char **out, struct rp_error *err)
{
    if (!BSON_ITER_HOLDS_DOCUMENT(it))
        return rp_error_set(err, RP_EINVAL, "manifest.json: %s must be an object", what);
    static const char *const names[] = {"database", NULL};
    bson_iter_t child;
    unsigned seen = 0;
    char path[64];
    if (!bson_iter_recurse(it, &child))
        return rp_error_set(err, RP_EINVAL, "manifest.json: %s is malformed", what);
    while (bson_iter_next(&child)) {
        const char *key = bson_iter_key(&child);
        int bit = member_bit(names, key);
        if (bit < 0)
            return rp_error_set(err, RP_EINVAL, "manifest.json: unknown member %s.%.100s", what,
                                key);
        if (seen & (1u << bit))
            return rp_error_set(err, RP_EINVAL, "manifest.json: %s.%s appears twice", what, key);
        seen |= 1u << bit;
        snprintf(path, sizeof(path), "%s.database", what);
        if (get_str(&child, path, out, err) != RP_OK)
            return RP_EINVAL;
    }
    snprintf(path, sizeof(path), "%s.", what);
    return check_seen(names, seen, 0, path, err);
}

enum { P_NAME, P_KIND, P_OBJECT, P_COUNT, P_BYTES, P_RAW, P_SHA, P_EXTRA };
static const char *const part_names[] = {"name",      "kind",   "object", "count", "bytes",
                                         "raw_bytes", "sha256", "extra",  NULL};

static int parse_part(const bson_iter_t *it, size_t idx, struct bk_part_info *p,
                      struct rp_error *err)
{
    char what[64];
    snprintf(what, sizeof(what), "parts[%zu]", idx);
    if (!BSON_ITER_HOLDS_DOCUMENT(it))
        return rp_error_set(err, RP_EINVAL, "manifest.json: %s must be an object", what);
    bson_iter_t c;
    if (!bson_iter_recurse(it, &c))
        return rp_error_set(err, RP_EINVAL, "manifest.json: %s is malformed", what);
    unsigned seen = 0;
    char m[96];
    while (bson_iter_next(&c)) {
        const char *key = bson_iter_key(&c);
        int bit = member_bit(part_names, key);
        if (bit < 0)
            return rp_error_set(err, RP_EINVAL, "manifest.json: unknown member %s.%.100s", what,
                                key);
        if (seen & (1u << bit))
            return rp_error_set(err, RP_EINVAL, "manifest.json: %s.%s appears twice", what, key);
        seen |= 1u << bit;
        snprintf(m, sizeof(m), "%s.%s", what, key);
        int64_t v = 0;
        int rc = RP_OK;
        switch (bit) {
        case P_NAME:
            rc = get_str(&c, m, &p->name, err);
            break;
        case P_KIND:
            rc = get_str(&c, m, &p->kind, err);
            break;
        case P_OBJECT:
            rc = get_str(&c, m, &p->object, err);
            break;
        case P_COUNT:
        case P_BYTES:
        case P_RAW:
            rc = get_int(&c, m, 0, INT64_MAX, &v, err);
            if (bit == P_COUNT)
                p->count = (uint64_t)v;
            else if (bit == P_BYTES)
                p->bytes = (uint64_t)v;
            else
                p->raw_bytes = (uint64_t)v;
            break;
        case P_SHA: {
            char *s = NULL;
            rc = get_str(&c, m, &s, err);
            if (rc == RP_OK && !sha_ok(s))
                rc = rp_error_set(err, RP_EINVAL,
                                  "manifest.json: %s must be 64 lowercase hex digits", m);
            if (rc == RP_OK)
                memcpy(p->sha256, s, 65);
            free(s);
            break;
        }
        case P_EXTRA: {
            if (!BSON_ITER_HOLDS_DOCUMENT(&c)) {
                rc = rp_error_set(err, RP_EINVAL, "manifest.json: %s must be an object", m);
                break;
            }
            uint32_t dl = 0;
            const uint8_t *d = NULL;
            bson_iter_document(&c, &dl, &d);
            p->extra = d ? bson_new_from_data(d, dl) : NULL;
            if (!p->extra)
                rc = rp_error_set(err, RP_EINVAL, "manifest.json: %s is malformed", m);
            break;
        }
        }
        if (rc != RP_OK)
            return rc;
    }
    snprintf(m, sizeof(m), "%s.", what);
    if (check_seen(part_names, seen, 1u << P_EXTRA, m, err) != RP_OK)
        return RP_EINVAL;
    if (strcmp(p->kind, "postgres") != 0 && strcmp(p->kind, "mongo") != 0)
        return rp_error_set(err, RP_EINVAL,
                            "manifest.json: %s.kind \"%.100s\" is neither postgres nor mongo", what,
                            p->kind);
    if (!object_name_ok(p->object))
        return rp_error_set(err, RP_EINVAL,
                            "manifest.json: %s.object \"%.130s\" is not a safe name "
                            "([A-Za-z0-9_.-], 1 to 120 characters, no \"..\")",
                            what, p->object);
    char *expect = rp_xasprintf("%s/%s.%s.zst", p->kind, p->object,
                                strcmp(p->kind, "postgres") == 0 ? "copy" : "bson");
    int same = strcmp(expect, p->name) == 0;
    free(expect);
    if (!same)
        return rp_error_set(err, RP_EINVAL,
                            "manifest.json: %s.name \"%.200s\" is not a safe part name (expected "
                            "\"%s/%s.%s.zst\")",
                            what, p->name, p->kind, p->object,
                            strcmp(p->kind, "postgres") == 0 ? "copy" : "bson");
    return RP_OK;
}

enum { M_FORMAT, M_VERSION, M_SCHEMA, M_INSTALL, M_CREATED, M_PG, M_MONGO, M_PARTS };
static const char *const top_names[] = {"format",          "rampart_version", "schema_version",
                                        "installation_id", "created_at",      "postgres",
                                        "mongo",           "parts",           NULL};

static int parse_parts(const bson_iter_t *it, struct bk_manifest *m, struct rp_error *err)
{
    if (!BSON_ITER_HOLDS_ARRAY(it))
        return rp_error_set(err, RP_EINVAL, "manifest.json: parts must be an array");
    bson_iter_t c;
    if (!bson_iter_recurse(it, &c))
        return rp_error_set(err, RP_EINVAL, "manifest.json: parts is malformed");
    size_t cap = 0;
    while (bson_iter_next(&c)) {
        if (m->n_parts == cap) {
            cap = cap ? cap * 2 : 16;
            m->parts = rp_xrealloc(m->parts, cap * sizeof(*m->parts));
        }
        struct bk_part_info *p = &m->parts[m->n_parts++];
        memset(p, 0, sizeof(*p));
        if (parse_part(&c, m->n_parts - 1, p, err) != RP_OK)
            return RP_EINVAL;
        for (size_t i = 0; i + 1 < m->n_parts; i++)
            if (strcmp(m->parts[i].name, p->name) == 0)
                return rp_error_set(err, RP_EINVAL,
                                    "manifest.json: parts[%zu].name %s is listed twice (also "
                                    "parts[%zu])",
                                    m->n_parts - 1, p->name, i);
    }
    return RP_OK;
}

int bk_manifest_parse(const char *json, size_t len, struct bk_manifest *out, struct rp_error *err)
{
    int rc = RP_EINVAL;
    struct bk_manifest m = {0};
    bson_t doc;
    bson_error_t be;
    if (len > (size_t)INT32_MAX)
        return rp_error_set(err, RP_EINVAL, "manifest.json: %zu bytes is too large", len);
    if (!bson_init_from_json(&doc, json, (ssize_t)len, &be))
        return rp_error_set(err, RP_EINVAL,
                            "manifest.json is not valid JSON (%s): the archive is damaged",
                            be.message);
    bson_iter_t it;
    unsigned seen = 0;
    if (!bson_iter_init(&it, &doc)) {
        rp_error_set(err, RP_EINVAL, "manifest.json: not a JSON object");
        goto out;
    }
    while (bson_iter_next(&it)) {
        const char *key = bson_iter_key(&it);
        int bit = member_bit(top_names, key);
        if (bit < 0) {
            rp_error_set(err, RP_EINVAL, "manifest.json: unknown member %.100s", key);
            goto out;
        }
        if (seen & (1u << bit)) {
            rp_error_set(err, RP_EINVAL, "manifest.json: %s appears twice", key);
            goto out;
        }
        seen |= 1u << bit;
        int64_t v = 0;
        int r = RP_OK;
        switch (bit) {
        case M_FORMAT:
            r = get_int(&it, "format", 1, INT32_MAX, &v, err);
            m.format = (int)v;
            if (r == RP_OK && v > BK_FORMAT)
                r = rp_error_set(err, RP_EINVAL,
                                 "archive format %d is newer than this rampart-backup "
                                 "understands (%d): use a newer rampart-backup",
                                 m.format, BK_FORMAT);
            break;
        case M_VERSION:
            r = get_str(&it, key, &m.rampart_version, err);
            break;
        case M_SCHEMA:
            r = get_int(&it, key, 0, INT32_MAX, &v, err);
            m.schema_version = (int)v;
            break;
        case M_INSTALL:
            r = get_str(&it, key, &m.installation_id, err);
            break;
        case M_CREATED:
            r = get_str(&it, key, &m.created_at, err);
            break;
        case M_PG:
            r = parse_db(&it, key, &m.pg_database, err);
            break;
        case M_MONGO:
            r = parse_db(&it, key, &m.mongo_database, err);
            break;
        case M_PARTS:
            r = parse_parts(&it, &m, err);
            break;
        }
        if (r != RP_OK)
            goto out;
    }
    if (check_seen(top_names, seen, 0, "", err) != RP_OK)
        goto out;
    *out = m;
    memset(&m, 0, sizeof(m));
    rc = RP_OK;
out:
    bson_destroy(&doc);
    bk_manifest_cleanup(&m);
    return rc;
}
