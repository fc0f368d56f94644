/* What the alerting resources (api_channels.c, api_alert_rules.c, api_maintenance.c) share:
 * the readers of nested input whose refusals name the member as a path ("config.open.url"),
 * from which the channel kinds' validators are built; the audit details of an update; the
 * check that a rule's or window's ids name tests and channels of its own project; and the
 * delete all three resources do the same way. Declared in alerts_int.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "alerts_int.h"

/* ---- small checks -------------------------------------------------------------------------- */

int dash_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

int dash_is_alnum(char c)
{
    return dash_is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

int dash_one_of(const char *s, const char *const *values)
{
    for (size_t i = 0; values[i]; i++)
        if (strcmp(s, values[i]) == 0)
            return 1;
    return 0;
}

/* ---- reading nested input: errors name the member as a path ("config.open.url") ---------- */

/* 400 invalid_field "field: why"; returns RP_EINVAL. */
int dash_refuse(struct dash_req *r, const char *field, const char *fmt, ...)
{
    char why[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    dash_error_field(r, 400, "invalid_field", field, "%s: %s", field, why);
    return RP_EINVAL;
}

/* "prefix.key", the key cut to 100 bytes on a character boundary (it goes into JSON). */
void dash_field_path(char *out, size_t cap, const char *prefix, const char *key)
{
    size_t n = strlen(key);
    if (n > 100)
        for (n = 100; n > 0 && ((unsigned char)key[n] & 0xC0) == 0x80; n--)
            ;
    snprintf(out, cap, "%s%s%.*s", prefix, *prefix ? "." : "", (int)n, key);
}

/* The string at `it` (valid UTF-8 without NUL) or NULL. */
const char *dash_iter_str(const bson_iter_t *it)
{
    uint32_t len = 0;
    const char *s = BSON_ITER_HOLDS_UTF8(it) ? bson_iter_utf8(it, &len) : NULL;
    return s && strlen(s) == len && bson_utf8_validate(s, len, false) ? s : NULL;
}

int dash_iter_doc(struct dash_req *r, const bson_iter_t *it, const char *field, bson_t *out)
{
    uint32_t len = 0;
    const uint8_t *data = NULL;
    if (!BSON_ITER_HOLDS_DOCUMENT(it))
        return dash_refuse(r, field, "must be a JSON object");
    bson_iter_document(it, &len, &data);
    if (!bson_init_static(out, data, len))
        return dash_refuse(r, field, "is malformed");
    return RP_OK;
}

/* Refuse more than `max` members, a member repeated (case-insensitively with `nocase`: header
 * names) and, when `allowed` is given, members not in it. */
int dash_members_ok(struct dash_req *r, const bson_t *doc, const char *prefix,
                    const char *const *allowed, int nocase, size_t max)
{
    bson_iter_t it, prev;
    char field[200];
    size_t n = 0;
    if (!bson_iter_init(&it, doc))
        return dash_refuse(r, prefix, "is malformed");
    while (bson_iter_next(&it)) {
        const char *k = bson_iter_key(&it);
        dash_field_path(field, sizeof(field), prefix, k);
        if (++n > max)
            return dash_refuse(r, prefix, "has more than %zu members", max);
        if (allowed && !dash_one_of(k, allowed)) {
            char list[300] = "";
            for (size_t j = 0; allowed[j]; j++)
                snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", j ? ", " : "",
                         allowed[j]);
            dash_error_field(r, 400, "unknown_field", field, "unknown member \"%s\"; expected: %s",
                             field, *list ? list : "none");
            return RP_EINVAL;
        }
        if (!bson_iter_init(&prev, doc))
            return RP_EINVAL;
        while (bson_iter_next(&prev) && bson_iter_key(&prev) != k)
            if ((nocase ? strcasecmp : strcmp)(bson_iter_key(&prev), k) == 0)
                return dash_refuse(r, field, "is given twice");
    }
    return RP_OK;
}

/* 1: `key` is there (and not null); 0: absent and optional; -1: answered. */
int dash_member(struct dash_req *r, const bson_t *doc, const char *prefix, const char *key,
                int required, bson_iter_t *it)
{
    char field[200];
    dash_field_path(field, sizeof(field), prefix, key);
    if (!bson_iter_init_find(it, doc, key)) {
        if (!required)
            return 0;
        dash_error_field(r, 400, "missing_field", field, "\"%s\" is required", field);
        return -1;
    }
    if (BSON_ITER_HOLDS_NULL(it)) {
        dash_refuse(r, field, "must not be null");
        return -1;
    }
    return 1;
}

int dash_str_value(struct dash_req *r, const bson_iter_t *it, const char *field, size_t min,
                   size_t max, const char *(*check)(const char *), const char **out)
{
    const char *s = dash_iter_str(it);
    if (!s)
        return dash_refuse(r, field, "must be a string");
    size_t n = 0;
    for (const char *p = s; *p; p = bson_utf8_next_char(p))
        n++;
    if (n < min || n > max)
        return min == max ? dash_refuse(r, field, "must have %zu characters", min)
                          : dash_refuse(r, field, "must have %zu to %zu characters", min, max);
    const char *why = check ? check(s) : NULL;
    if (why)
        return dash_refuse(r, field, "%s", why);
    if (out)
        *out = s;
    return RP_OK;
}

int dash_sub_str(struct dash_req *r, const bson_t *doc, const char *prefix, const char *key,
                 int required, size_t min, size_t max, const char *(*check)(const char *))
{
    bson_iter_t it;
    char field[200];
    dash_field_path(field, sizeof(field), prefix, key);
    int f = dash_member(r, doc, prefix, key, required, &it);
    if (f <= 0)
        return f < 0 ? RP_EINVAL : RP_OK;
    return dash_str_value(r, &it, field, min, max, check, NULL);
}

int dash_sub_str_list(struct dash_req *r, const bson_t *doc, const char *prefix, const char *key,
                      int required, size_t min_items, size_t max_items, size_t max_chars,
                      const char *(*check)(const char *))
{
    bson_iter_t it, child;
    char field[200], item[220];
    dash_field_path(field, sizeof(field), prefix, key);
    int f = dash_member(r, doc, prefix, key, required, &it);
    if (f <= 0)
        return f < 0 ? RP_EINVAL : RP_OK;
    if (!BSON_ITER_HOLDS_ARRAY(&it) || !bson_iter_recurse(&it, &child))
        return dash_refuse(r, field, "must be an array of strings");
    size_t n = 0;
    while (bson_iter_next(&child)) {
        snprintf(item, sizeof(item), "%s[%zu]", field, n);
        if (++n > max_items)
            return dash_refuse(r, field, "takes at most %zu items", max_items);
        if (dash_str_value(r, &child, item, 1, max_chars, check, NULL) != RP_OK)
            return RP_EINVAL;
    }
    if (n < min_items)
        return dash_refuse(r, field, "takes at least %zu item%s", min_items,
                           min_items == 1 ? "" : "s");
    return RP_OK;
}

/* ---- audit details --------------------------------------------------------------------------- */

void dash_names_add(struct dash_names *l, const char *s)
{
    if (l->n < sizeof(l->v) / sizeof(l->v[0]))
        l->v[l->n++] = s;
}

void dash_append_names(bson_t *d, const char *key, const struct dash_names *l)
{
    bson_t arr;
    char buf[16];
    const char *idx;
    bson_append_array_begin(d, key, -1, &arr);
    for (size_t i = 0; i < l->n; i++) {
        bson_uint32_to_string((uint32_t)i, &idx, buf, sizeof(buf));
        bson_append_utf8(&arr, idx, -1, l->v[i], -1);
    }
    bson_append_array_end(d, &arr);
}

/* Relaxed extended JSON of `d` (plain JSON for strings, arrays and objects), caller frees. */
char *dash_json_text(const bson_t *d)
{
    char *j = bson_as_relaxed_extended_json(d, NULL);
    char *out = rp_xstrdup(j ? j : "{}");
    bson_free(j);
    return out;
}

/* {"changed": [the members of the body]} for an update's audit row. */
char *dash_changed_details(const bson_t *body, const struct dash_names *extra_set,
                           const struct dash_names *extra_removed)
{
    struct dash_names changed = {0};
    bson_iter_t it;
    if (bson_iter_init(&it, body))
        while (bson_iter_next(&it))
            dash_names_add(&changed, bson_iter_key(&it));
    bson_t d = BSON_INITIALIZER;
    dash_append_names(&d, "changed", &changed);
    if (extra_set && extra_set->n)
        dash_append_names(&d, "secrets_set", extra_set);
    if (extra_removed && extra_removed->n)
        dash_append_names(&d, "secrets_removed", extra_removed);
    char *out = dash_json_text(&d);
    bson_destroy(&d);
    return out;
}

const char *dash_bool_param(int present, int v)
{
    return present ? (v ? "true" : "false") : NULL;
}

const char *dash_int_param(int present, long v, char *buf, size_t cap)
{
    if (!present)
        return NULL;
    snprintf(buf, cap, "%ld", v);
    return buf;
}

/* ---- references and deletes --------------------------------------------------------------- */

/* Every id in `lit` (a uuid[] literal, NULL: nothing to check) names a test (or a channel) of
 * the project, once; else 400 naming the item. The rows found are locked (FOR KEY SHARE) so
 * that a concurrent delete waits for this transaction and then cleans up after it. */
int dash_check_refs(struct dash_req *r, struct rp_pg *pg, const char *project, const char *lit,
                    int channels)
{
#define REFS_TAIL                                                                                  \
    "SELECT u.i, EXISTS (SELECT 1 FROM known k WHERE k.id = u.id) "                                \
    "FROM unnest($2::uuid[]) WITH ORDINALITY AS u (id, i) "                                        \
    "WHERE NOT EXISTS (SELECT 1 FROM known k WHERE k.id = u.id) "                                  \
    "   OR EXISTS (SELECT 1 FROM unnest($2::uuid[]) WITH ORDINALITY AS v (id, j) "                 \
    "              WHERE v.id = u.id AND v.j < u.i) "                                              \
    "ORDER BY u.i LIMIT 1"
    static const char tests_sql[] =
        "WITH known AS MATERIALIZED (SELECT id FROM tests WHERE project_id = $1 "
        "AND id = ANY ($2::uuid[]) FOR KEY SHARE) " REFS_TAIL;
    static const char channels_sql[] =
        "WITH known AS MATERIALIZED (SELECT id FROM channels WHERE project_id = $1 "
        "AND id = ANY ($2::uuid[]) FOR KEY SHARE) " REFS_TAIL;
    if (!lit)
        return RP_OK;
    const char *member_name = channels ? "channel_ids" : "test_ids";
    const char *p[2] = {project, lit};
    PGresult *res = NULL;
    int rc = dash_tx_exec(r, pg, member_name, channels ? channels_sql : tests_sql, 2, p, &res);
    if (rc != RP_OK || PQntuples(res) == 0) {
        PQclear(res);
        return rc;
    }
    char field[40];
    snprintf(field, sizeof(field), "%s[%ld]", member_name,
             strtol(PQgetvalue(res, 0, 0), NULL, 10) - 1);
    int known = PQgetvalue(res, 0, 1)[0] == 't';
    PQclear(res);
    if (known)
        return dash_refuse(r, field, "repeats an id given before");
    dash_error_field(r, 400, "unknown_reference", field, "%s: no %s with this id in this project",
                     field, channels ? "channel" : "test");
    return RP_EINVAL;
}

static int delete_tx(struct dash_req *r, struct rp_pg *pg, void *ud)
{
    struct dash_delete_in *in = ud;
    PGresult *res = NULL;
    const char *p[2] = {in->project, in->id};
    int rc = dash_tx_exec(r, pg, in->what, in->sql, 2, p, &res);
    if (rc != RP_OK)
        return rc;
    if (PQntuples(res) != 1) {
        PQclear(res);
        dash_error(r, 404, "not_found", "%s not found", in->what);
        return RP_ENOENT;
    }
    free(in->details);
    in->details = rp_xstrdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    if (in->after && (rc = dash_tx_exec(r, pg, in->what, in->after, 2, p, NULL)) != RP_OK)
        return rc;
    return dash_audit(r, pg, in->project, in->action, in->target, in->id, in->details);
}

void dash_delete_thing(struct dash_req *r, struct dash_delete_in *in, const char *param)
{
    in->project = dash_param(r, "project");
    if ((in->id = dash_param_uuid(r, param, in->what)) && dash_tx(r, delete_tx, in) == RP_OK)
        dash_reply_empty(r, 204);
    free(in->details);
}
