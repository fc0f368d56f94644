/* /api/v1/projects/{project}/maintenance-windows: times when a project's alerts are muted
 * (issue #7), one-off (starts_at..ends_at) or weekly (days, start, duration, an IANA time zone).
 * Viewers read; editors (and owners) write, each change with its audit row. A window refers
 * only to tests of its own project. maintenance_window_active() in 0004_alerts_config.sql is
 * the one definition of when a window mutes alerts; here the input is checked (RFC 3339 times,
 * HH:MM, zone names both GLib and PostgreSQL know) so that it always can be evaluated. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>

#include "alerts_int.h"

/* ---- checks of times (each returns NULL when fine, else the reason) ------------------------- */

DASH_ENUM_CHECK(check_window_kind, "must be once or weekly", "once", "weekly")

static const char *check_hhmm(const char *s)
{
    if (strlen(s) == 5 && dash_is_digit(s[0]) && dash_is_digit(s[1]) && s[2] == ':' &&
        dash_is_digit(s[3]) && dash_is_digit(s[4]) && (s[0] - '0') * 10 + (s[1] - '0') < 24 &&
        s[3] < '6')
        return NULL;
    return "must be a time of day HH:MM from 00:00 to 23:59";
}

/* An IANA zone name that GLib loads (as the mailer and connector will). GLib alone would also
 * take offsets ("+01:00") and POSIX TZ rules ("ABC5"), which are not zone names and which
 * PostgreSQL reads with the opposite sign, so the name must also be a TZif file of the zone
 * database ($TZDIR or /usr/share/zoneinfo, as GLib and the C library read). It may hold
 * letters, digits, _ - + and single slashes only: no '.', so it cannot leave that folder. */
static const char *check_timezone(const char *s)
{
    static const char why[] = "must be an IANA time zone name such as Europe/Paris or UTC";
    size_t n = strlen(s);
    if (n < 1 || n > 64 || s[0] == '/' || s[n - 1] == '/')
        return why;
    for (size_t i = 0; i < n; i++)
        if (!(dash_is_alnum(s[i]) || strchr("_-+/", s[i])) || (s[i] == '/' && s[i + 1] == '/'))
            return why;
    if (strncmp(s, "right/", 6) == 0 || strncmp(s, "posix/", 6) == 0 ||
        strcmp(s, "posixrules") == 0)
        return "must be a plain IANA zone name (not right/, posix/ or posixrules)";
    const char *dir = getenv("TZDIR");
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", s);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return "is not a known time zone (IANA names such as Europe/Paris, UTC)";
    struct stat st;
    char magic[4];
    int ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && read(fd, magic, 4) == 4 &&
             memcmp(magic, "TZif", 4) == 0;
    close(fd);
    GTimeZone *tz = ok ? g_time_zone_new_identifier(s) : NULL;
    if (tz)
        g_time_zone_unref(tz);
    return tz ? NULL : "is not a known time zone (IANA names such as Europe/Paris, UTC)";
}

/* Howard Hinnant's days_from_civil: days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    return era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
}

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!dash_is_digit(s[i]))
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 1;
}

/* An RFC 3339 date-time ("2030-01-31T22:00:00Z", "2030-01-31T22:00:00.5+02:00") as seconds
 * since the epoch plus nanoseconds; 0 when malformed or out of range. */
static int parse_rfc3339(const char *s, int64_t *sec, long *nsec)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, mo, d, h, mi, se, oh = 0, om = 0, sign = 0, k = 0;
    if (!(digits(s, 4, &y) && s[4] == '-' && digits(s + 5, 2, &mo) && s[7] == '-' &&
          digits(s + 8, 2, &d) && (s[10] == 'T' || s[10] == 't') && digits(s + 11, 2, &h) &&
          s[13] == ':' && digits(s + 14, 2, &mi) && s[16] == ':' && digits(s + 17, 2, &se)))
        return 0;
    const char *p = s + 19;
    long ns = 0;
    if (*p == '.')
        for (p++; dash_is_digit(*p); p++, k++)
            if (k < 9)
                ns = ns * 10 + (*p - '0');
    if ((p > s + 19 && (k == 0 || k > 9)))
        return 0;
    for (int i = k; i < 9; i++)
        ns *= 10;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if ((*p == '+' || *p == '-') && digits(p + 1, 2, &oh) && p[3] == ':' &&
               digits(p + 4, 2, &om)) {
        sign = *p == '+' ? 1 : -1;
        p += 6;
    } else {
        return 0;
    }
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (*p || y < 1 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] + (mo == 2 && leap) ||
        h > 23 || mi > 59 || se > 59 || oh > 23 || om > 59)
        return 0;
    *sec =
        days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - sign * (oh * 3600 + om * 60);
    *nsec = ns;
    return 1;
}

/* ---- maintenance windows ------------------------------------------------------------------ */

#define WINDOW_JSON                                                                                \
    "(jsonb_build_object('id', w.id, 'name', w.name, 'kind', w.kind, 'test_ids', w.test_ids, "     \
    "'tags', w.tags, 'active', maintenance_window_active(w, now()), "                              \
    "'created_at', w.created_at, 'updated_at', w.updated_at) || CASE w.kind "                      \
    "WHEN 'once' THEN jsonb_build_object('starts_at', w.starts_at, 'ends_at', w.ends_at) "         \
    "ELSE jsonb_build_object('days', w.days, 'start', to_char(w.start_time, 'HH24:MI'), "          \
    "'duration_minutes', w.duration_minutes, 'timezone', w.timezone) END)"

static const char *const day_names[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun", NULL};

struct window_in {
    const char *project, *id, *name, *kind, *starts_at, *ends_at, *days, *start, *duration,
        *timezone;
    char starts_s[72], ends_s[72], days_s[40], duration_s[24];
    struct rp_buf test_ids, tags;
    char *details;
    char new_id[37];
};

static void window_in_cleanup(struct window_in *in)
{
    rp_buf_cleanup(&in->test_ids);
    rp_buf_cleanup(&in->tags);
    free(in->details);
}

static int read_time(struct dash_req *r, const bson_t *body, const char *name, int required,
                     char out[72], const char **param, int64_t *sec, long *nsec)
{
    const char *s = NULL;
    if (dash_get_str(r, body, name, required ? DASH_REQUIRED : 0, 1, 64, &s, NULL) != RP_OK)
        return RP_EINVAL;
    if (!s)
        return RP_OK;
    if (!parse_rfc3339(s, sec, nsec))
        return dash_refuse(r, name, "must be an RFC 3339 date-time such as 2030-01-31T22:00:00Z");
    snprintf(out, 72, "%s", s);
    for (char *c = out; *c; c++)
        if (*c == 't' || *c == 'z')
            *c = (char)(*c - 'a' + 'A');
    *param = out;
    return RP_OK;
}

/* "days": ["mon", ...], each once, stored in week order. */
static int read_days(struct dash_req *r, const bson_t *body, int required, struct window_in *in)
{
    bson_iter_t it, child;
    char item[32];
    unsigned mask = 0;
    size_t n = 0;
    int f = dash_member(r, body, "", "days", required, &it);
    if (f <= 0)
        return f < 0 ? RP_EINVAL : RP_OK;
    if (!BSON_ITER_HOLDS_ARRAY(&it) || !bson_iter_recurse(&it, &child))
        return dash_refuse(r, "days",
                           "must be an array of days (mon, tue, wed, thu, fri, sat, sun)");
    while (bson_iter_next(&child)) {
        snprintf(item, sizeof(item), "days[%zu]", n++);
        const char *s = dash_iter_str(&child);
        int d = 0;
        while (s && day_names[d] && strcmp(day_names[d], s) != 0)
            d++;
        if (!s || !day_names[d])
            return dash_refuse(r, item, "must be one of mon, tue, wed, thu, fri, sat, sun");
        if (mask & (1u << d))
            return dash_refuse(r, item, "repeats %s", s);
        mask |= 1u << d;
    }
    if (!mask)
        return dash_refuse(r, "days", "takes at least one day");
    snprintf(in->days_s, sizeof(in->days_s), "{");
    for (int d = 0; d < 7; d++)
        if (mask & (1u << d))
            snprintf(in->days_s + strlen(in->days_s), sizeof(in->days_s) - strlen(in->days_s),
                     "%s%s", in->days_s[1] ? "," : "", day_names[d]);
    strcat(in->days_s, "}");
    in->days = in->days_s;
    return RP_OK;
}

/* The members of a window of `kind`; the other kind's members are refused. */
static int read_window(struct dash_req *r, const bson_t *body, int creating, struct window_in *in)
{
    static const char *const once_only[] = {"starts_at", "ends_at", NULL};
    static const char *const weekly_only[] = {"days", "start", "duration_minutes", "timezone",
                                              NULL};
    int once = strcmp(in->kind, "once") == 0;
    const char *const *other = once ? weekly_only : once_only;
    for (size_t i = 0; other[i]; i++)
        if (bson_has_field(body, other[i]))
            return dash_refuse(r, other[i], "applies to %s windows only", once ? "weekly" : "once");
    if (once) {
        int64_t s = 0, e = 0;
        long sn = 0, en = 0;
        if (read_time(r, body, "starts_at", creating, in->starts_s, &in->starts_at, &s, &sn) !=
                RP_OK ||
            read_time(r, body, "ends_at", creating, in->ends_s, &in->ends_at, &e, &en) != RP_OK)
            return RP_EINVAL;
        if (in->starts_at && in->ends_at && (e < s || (e == s && en <= sn)))
            return dash_refuse(r, "ends_at", "must be after starts_at");
    } else {
        long duration = 0;
        int has_duration = 0;
        const char *why = NULL;
        int req = creating ? DASH_REQUIRED : 0;
        if (read_days(r, body, creating, in) != RP_OK ||
            dash_get_str(r, body, "start", req, 1, 5, &in->start, NULL) != RP_OK ||
            (in->start && (why = check_hhmm(in->start)) && dash_refuse(r, "start", "%s", why)) ||
            dash_get_int(r, body, "duration_minutes", req, 1, 10080, &duration, &has_duration) !=
                RP_OK ||
            dash_get_str(r, body, "timezone", req, 1, 64, &in->timezone, NULL) != RP_OK ||
            (in->timezone && (why = check_timezone(in->timezone)) &&
             dash_refuse(r, "timezone", "%s", why)))
            return RP_EINVAL;
        in->duration =
            dash_int_param(has_duration, duration, in->duration_s, sizeof(in->duration_s));
    }
    if (dash_get_str_array(r, body, "test_ids", 0, DASH_MAX_SCOPE_TESTS, dash_check_uuid,
                           &in->test_ids, NULL) != RP_OK ||
        dash_get_str_array(r, body, "tags", 0, DASH_MAX_SCOPE_TAGS, dash_check_tag, &in->tags,
                           NULL) != RP_OK)
        return RP_EINVAL;
    if (creating) {
        bson_t d = BSON_INITIALIZER;
        BSON_APPEND_UTF8(&d, "name", in->name);
        BSON_APPEND_UTF8(&d, "kind", in->kind);
        in->details = dash_json_text(&d);
        bson_destroy(&d);
    } else {
        in->details = dash_changed_details(body, NULL, NULL);
    }
    return RP_OK;
}

/* On PATCH of a one-off window, the merged times must still be in order. */
static int window_times_ok(struct dash_req *r, struct rp_pg *pg, struct window_in *in)
{
    if (!in->id || (!in->starts_at && !in->ends_at))
        return RP_OK;
    const char *p[4] = {in->project, in->id, in->starts_at, in->ends_at};
    PGresult *res = NULL;
    int rc = dash_tx_exec(r, pg, "maintenance window",
                          "SELECT COALESCE($3::timestamptz, starts_at) < "
                          "COALESCE($4::timestamptz, ends_at) FROM maintenance_windows "
                          "WHERE project_id = $1 AND id = $2 FOR UPDATE",
                          4, p, &res);
    if (rc != RP_OK)
        return rc;
    int rows = PQntuples(res), ordered = rows == 1 && PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    if (rows != 1) {
        dash_error(r, 404, "not_found", "maintenance window not found");
        return RP_ENOENT;
    }
    if (!ordered)
        return in->ends_at ? dash_refuse(r, "ends_at", "must be after starts_at")
                           : dash_refuse(r, "starts_at", "must be before ends_at");
    return RP_OK;
}

static int window_tx(struct dash_req *r, struct rp_pg *pg, void *ud)
{
    struct window_in *in = ud;
    PGresult *res = NULL;
    int rc;
    if ((rc = dash_check_refs(r, pg, in->project, in->test_ids.data, 0)) != RP_OK ||
        (rc = window_times_ok(r, pg, in)) != RP_OK)
        return rc;
    /* the zone file was found; PostgreSQL, which evaluates windows, must know it too */
    if (in->timezone && (rc = dash_tx_exec(r, pg, "timezone", "SELECT now() AT TIME ZONE $1", 1,
                                           &in->timezone, NULL)) != RP_OK)
        return rc;
    if (!in->id) {
        const char *p[11] = {in->project,  in->name,          in->kind,     in->starts_at,
                             in->ends_at,  in->days,          in->start,    in->duration,
                             in->timezone, in->test_ids.data, in->tags.data};
        rc = dash_tx_exec(r, pg, "maintenance window",
                          "INSERT INTO maintenance_windows (project_id, name, kind, starts_at, "
                          "ends_at, days, start_time, duration_minutes, timezone, test_ids, tags) "
                          "SELECT id, $2, $3, $4::timestamptz, $5::timestamptz, $6::text[], "
                          "$7::time, $8::int, $9, COALESCE($10::uuid[], '{}'), "
                          "COALESCE($11::text[], '{}') FROM projects WHERE id = $1 RETURNING id",
                          11, p, &res);
    } else {
        const char *p[11] = {
            in->project, in->id,       in->name,     in->starts_at,     in->ends_at,  in->days,
            in->start,   in->duration, in->timezone, in->test_ids.data, in->tags.data};
        rc = dash_tx_exec(r, pg, "maintenance window",
                          "UPDATE maintenance_windows SET name = COALESCE($3, name), "
                          "starts_at = COALESCE($4::timestamptz, starts_at), "
                          "ends_at = COALESCE($5::timestamptz, ends_at), "
                          "days = COALESCE($6::text[], days), "
                          "start_time = COALESCE($7::time, start_time), "
                          "duration_minutes = COALESCE($8::int, duration_minutes), "
                          "timezone = COALESCE($9, timezone), "
                          "test_ids = COALESCE($10::uuid[], test_ids), "
                          "tags = COALESCE($11::text[], tags), updated_at = now() "
                          "WHERE project_id = $1 AND id = $2 RETURNING id",
                          11, p, &res);
    }
    if (rc != RP_OK)
        return rc;
    if (PQntuples(res) != 1) {
        PQclear(res);
        dash_error(r, 404, "not_found",
                   in->id ? "maintenance window not found" : "project not found");
        return RP_ENOENT;
    }
    snprintf(in->new_id, sizeof(in->new_id), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return dash_audit(r, pg, in->project,
                      in->id ? "maintenance_window.update" : "maintenance_window.create",
                      "maintenance_window", in->new_id, in->details);
}

static void reply_window(struct dash_req *r, unsigned status, const char *project, const char *id)
{
    const char *p[2] = {project, id};
    dash_query_reply(r, status, "maintenance window",
                     "SELECT " WINDOW_JSON " FROM maintenance_windows w "
                     "WHERE w.project_id = $1 AND w.id = $2",
                     2, p);
}

static void list_windows(struct dash_req *r)
{
    const char *p[1] = {dash_param(r, "project")};
    dash_query_reply(
        r, 200, "project",
        DASH_LIST_SQL(WINDOW_JSON, "maintenance_windows w WHERE w.project_id = p.id", "w.name"), 1,
        p);
}

static void get_window(struct dash_req *r)
{
    const char *id = dash_param_uuid(r, "window", "maintenance window");
    if (id)
        reply_window(r, 200, dash_param(r, "project"), id);
}

static const char *const window_members[] = {
    "name",     "kind",     "starts_at", "ends_at", "days", "start", "duration_minutes",
    "timezone", "test_ids", "tags",      NULL};

static void create_window(struct dash_req *r)
{
    bson_t body;
    struct window_in in = {.project = dash_param(r, "project")};
    rp_buf_init(&in.test_ids, 0);
    rp_buf_init(&in.tags, 0);
    if (dash_body(r, &body) != RP_OK)
        return;
    const char *why = NULL;
    if (dash_only(r, &body, window_members) == RP_OK &&
        dash_get_str(r, &body, "name", DASH_REQUIRED, 1, 100, &in.name, NULL) == RP_OK &&
        dash_get_str(r, &body, "kind", DASH_REQUIRED, 1, 10, &in.kind, NULL) == RP_OK &&
        !((why = check_window_kind(in.kind)) && dash_refuse(r, "kind", "%s", why)) &&
        read_window(r, &body, 1, &in) == RP_OK && dash_tx(r, window_tx, &in) == RP_OK)
        reply_window(r, 201, in.project, in.new_id);
    window_in_cleanup(&in);
    bson_destroy(&body);
}

static void patch_window(struct dash_req *r)
{
    bson_t body;
    struct window_in in = {.project = dash_param(r, "project")};
    rp_buf_init(&in.test_ids, 0);
    rp_buf_init(&in.tags, 0);
    if (!(in.id = dash_param_uuid(r, "window", "maintenance window")) ||
        dash_body(r, &body) != RP_OK)
        return;
    PGresult *res = NULL;
    const char *kind = NULL;
    const char *p[2] = {in.project, in.id};
    if (dash_only(r, &body, window_members) != RP_OK ||
        dash_get_str(r, &body, "name", 0, 1, 100, &in.name, NULL) != RP_OK ||
        dash_get_str(r, &body, "kind", 0, 1, 10, &kind, NULL) != RP_OK ||
        dash_exec(r, "maintenance window",
                  "SELECT kind FROM maintenance_windows WHERE project_id = $1 AND id = $2", 2, p,
                  &res) != RP_OK)
        goto out;
    if (PQntuples(res) != 1) {
        dash_error(r, 404, "not_found", "maintenance window not found");
        goto out;
    }
    in.kind = PQgetvalue(res, 0, 0);
    if (kind && strcmp(kind, in.kind) != 0) {
        dash_refuse(r, "kind", "cannot be changed (this window is %s): create a new window",
                    in.kind);
        goto out;
    }
    if (read_window(r, &body, 0, &in) == RP_OK && dash_tx(r, window_tx, &in) == RP_OK)
        reply_window(r, 200, in.project, in.id);
out:
    PQclear(res);
    window_in_cleanup(&in);
    bson_destroy(&body);
}

static void delete_window(struct dash_req *r)
{
    struct dash_delete_in in = {
        .what = "maintenance window",
        .sql = "DELETE FROM maintenance_windows WHERE project_id = $1 AND id = $2 "
               "RETURNING json_build_object('name', name, 'kind', kind)",
        .action = "maintenance_window.delete",
        .target = "maintenance_window",
    };
    dash_delete_thing(r, &in, "window");
}

#define PROJ "/api/v1/projects/{project}"
const struct dash_route dash_routes_maintenance[] = {
    {"GET", PROJ "/maintenance-windows", DASH_PROJECT_VIEWER, list_windows},
    {"POST", PROJ "/maintenance-windows", DASH_PROJECT_EDITOR, create_window},
    {"GET", PROJ "/maintenance-windows/{window}", DASH_PROJECT_VIEWER, get_window},
    {"PATCH", PROJ "/maintenance-windows/{window}", DASH_PROJECT_EDITOR, patch_window},
    {"DELETE", PROJ "/maintenance-windows/{window}", DASH_PROJECT_EDITOR, delete_window},
    {NULL, NULL, 0, NULL},
};
