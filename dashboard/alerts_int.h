/* What the alerting resources share (issue #7): api_channels.c, api_alert_rules.c and
 * api_maintenance.c, with the helpers in alerts_input.c. Nested members are read with refusals
 * that name the member as a path ("config.open.url", "secrets.headers.X-Key"): 400
 * invalid_field / missing_field / unknown_field, answered before returning. Every function
 * answers on the request's thread and keeps no state; strings returned are borrowed from the
 * document read unless said otherwise. Private to those four files (the rest use dash.h). */
#ifndef ALERTS_INT_H
#define ALERTS_INT_H

#include <stddef.h>

#include "dash.h"

#define DASH_MAX_SCOPE_TESTS 1000 /* test_ids of a rule or window */
#define DASH_MAX_SCOPE_TAGS  50

/* A list of the project's things; no row (404) when the project does not exist. */
#define DASH_LIST_SQL(json, from, order)                                                           \
    "SELECT json_build_object('items', COALESCE((SELECT json_agg(" json " ORDER BY " order         \
    ") FROM " from "), '[]')) FROM projects p WHERE p.id = $1"

/* ---- small checks (alerts_input.c) --------------------------------------------------------- */
int dash_is_digit(char c);
/* ASCII letter or digit. */
int dash_is_alnum(char c);
/* 1 when `s` is one of `values` (NULL-terminated). */
int dash_one_of(const char *s, const char *const *values);

/* A check `fn` (NULL when fine, else `msg`) that `s` is one of the values given. */
#define DASH_ENUM_CHECK(fn, msg, ...)                                                              \
    static const char *fn(const char *s)                                                           \
    {                                                                                              \
        static const char *const values[] = {__VA_ARGS__, NULL};                                   \
        return dash_one_of(s, values) ? NULL : msg;                                                \
    }

/* ---- reading nested input (alerts_input.c) -------------------------------------------------- */
/* Answer 400 invalid_field "field: why"; returns RP_EINVAL. */
int dash_refuse(struct dash_req *r, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* "prefix.key" into `out` ("key" when prefix is ""), the key cut to 100 bytes on a character
 * boundary (it goes into JSON). */
void dash_field_path(char *out, size_t cap, const char *prefix, const char *key);
/* The string at `it` (valid UTF-8 without NUL) or NULL. */
const char *dash_iter_str(const bson_iter_t *it);
/* The object at `it` into `out` (static: it borrows the parent's data), or 400 naming `field`. */
int dash_iter_doc(struct dash_req *r, const bson_iter_t *it, const char *field,
                  bson_t *out) RP_MUST_CHECK;
/* Refuse more than `max` members, a member repeated (case-insensitively with `nocase`: header
 * names) and, when `allowed` (NULL-terminated) is given, members not in it. */
int dash_members_ok(struct dash_req *r, const bson_t *doc, const char *prefix,
                    const char *const *allowed, int nocase, size_t max) RP_MUST_CHECK;
/* Find member `key` of `doc` (at `prefix`): 1 with `it` on it (not null); 0 when absent and not
 * `required`; -1 after answering (absent but required, or null). */
int dash_member(struct dash_req *r, const bson_t *doc, const char *prefix, const char *key,
                int required, bson_iter_t *it) RP_MUST_CHECK;
/* The string at `it`: min..max characters, checked by `check` (may be NULL; returns a reason or
 * NULL). RP_OK with *out (`out` may be NULL) or RP_EINVAL answered. */
int dash_str_value(struct dash_req *r, const bson_iter_t *it, const char *field, size_t min,
                   size_t max, const char *(*check)(const char *), const char **out) RP_MUST_CHECK;
/* Member `key` as dash_str_value checks it (absent is fine unless `required`). */
int dash_sub_str(struct dash_req *r, const bson_t *doc, const char *prefix, const char *key,
                 int required, size_t min, size_t max,
                 const char *(*check)(const char *)) RP_MUST_CHECK;
/* Member `key` as an array of min_items..max_items strings of 1..max_chars characters, each
 * checked by `check`. */
int dash_sub_str_list(struct dash_req *r, const bson_t *doc, const char *prefix, const char *key,
                      int required, size_t min_items, size_t max_items, size_t max_chars,
                      const char *(*check)(const char *)) RP_MUST_CHECK;

/* ---- audit details (alerts_input.c) --------------------------------------------------------- */
/* Names (borrowed), at most 16: the rest are dropped. Zero-initialize. */
struct dash_names {
    const char *v[16];
    size_t n;
};
void dash_names_add(struct dash_names *l, const char *s);
/* Append `l` to `d` as an array of strings named `key`. */
void dash_append_names(bson_t *d, const char *key, const struct dash_names *l);
/* Relaxed extended JSON of `d` (plain JSON for strings, arrays and objects); caller frees. */
char *dash_json_text(const bson_t *d);
/* {"changed": [the members of the body]} for an update's audit row, with "secrets_set" and
 * "secrets_removed" when those lists (may be NULL) are not empty. Caller frees. */
char *dash_changed_details(const bson_t *body, const struct dash_names *extra_set,
                           const struct dash_names *extra_removed);

/* ---- statement parameters (alerts_input.c) -------------------------------------------------- */
/* "true"/"false", or NULL (SQL NULL: keep) when not `present`. */
const char *dash_bool_param(int present, int v);
/* `v` as text in `buf`, or NULL when not `present`. */
const char *dash_int_param(int present, long v, char *buf, size_t cap);

/* ---- references and deletes (alerts_input.c) ------------------------------------------------ */
/* Inside a dash_tx: every id in `lit` (a uuid[] literal; NULL: nothing to check) names a test
 * (`channels` 0) or a channel (1) of `project`, once; else 400 naming the item (test_ids[2]).
 * The rows found are locked (FOR KEY SHARE) so that a concurrent delete waits for this
 * transaction and then cleans up after it. */
int dash_check_refs(struct dash_req *r, struct rp_pg *pg, const char *project, const char *lit,
                    int channels) RP_MUST_CHECK;

/* A delete: `sql` ($1 project, $2 id) deletes the row and returns its audit details (JSON
 * text); `after` (may be NULL, same parameters) runs next in the same transaction. */
struct dash_delete_in {
    const char *project, *id, *what, *sql, *action, *target, *after;
    char *details; /* filled and freed by dash_delete_thing */
};
/* DELETE .../{param}: the delete and its audit row in one transaction, then 204 (or 404 "<what>
 * not found"). Fills in->project and in->id from the path. */
void dash_delete_thing(struct dash_req *r, struct dash_delete_in *in, const char *param);

#endif
