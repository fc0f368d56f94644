/* /api/v1/projects/{project}/alert-rules: when an incident of a test is announced and where
 * (issue #7). A rule picks tests by id and/or tag, says whether opening and resolving are
 * announced, the incident thresholds (N failures open, M passes resolve), an optional reminder
 * and the channels to notify; the mailer and connector act upon it. Viewers read; editors (and
 * owners) write, each change with its audit row. A rule refers only to tests and channels of its
 * own project (checked and locked in the write's transaction: alerts_input.c). */
#include <stdio.h>
#include <stdlib.h>

#include "alerts_int.h"

#define MAX_RULE_CHANNELS 50

#define RULE_JSON                                                                                  \
    "json_build_object('id', a.id, 'name', a.name, 'test_ids', a.test_ids, 'tags', a.tags, "       \
    "'on_opened', a.on_opened, 'on_resolved', a.on_resolved, "                                     \
    "'failures_to_open', a.failures_to_open, 'passes_to_resolve', a.passes_to_resolve, "           \
    "'remind_every_s', a.remind_every_s, 'channel_ids', a.channel_ids, 'enabled', a.enabled, "     \
    "'created_at', a.created_at, 'updated_at', a.updated_at)"

struct rule_in {
    const char *project, *id, *name;
    struct rp_buf test_ids, tags, channel_ids;
    const char *on_opened, *on_resolved, *enabled, *fto, *pto, *remind, *remind_set;
    char fto_s[24], pto_s[24], remind_s[24];
    char *details;
    char new_id[37];
};

static void rule_in_cleanup(struct rule_in *in)
{
    rp_buf_cleanup(&in->test_ids);
    rp_buf_cleanup(&in->tags);
    rp_buf_cleanup(&in->channel_ids);
    free(in->details);
}

static int read_rule(struct dash_req *r, const bson_t *body, int creating, struct rule_in *in)
{
    static const char *const allowed[] = {"name",
                                          "test_ids",
                                          "tags",
                                          "on_opened",
                                          "on_resolved",
                                          "failures_to_open",
                                          "passes_to_resolve",
                                          "remind_every_s",
                                          "channel_ids",
                                          "enabled",
                                          NULL};
    int opened = 1, resolved = 1, enabled = 1, has_o = 0, has_r = 0, has_e = 0, has_f = 0,
        has_p = 0, has_m = 0;
    long fto = 0, pto = 0, remind = -1;
    if (dash_only(r, body, allowed) != RP_OK ||
        dash_get_str(r, body, "name", creating ? DASH_REQUIRED : 0, 1, 100, &in->name, NULL) !=
            RP_OK ||
        dash_get_str_array(r, body, "test_ids", 0, DASH_MAX_SCOPE_TESTS, dash_check_uuid,
                           &in->test_ids, NULL) != RP_OK ||
        dash_get_str_array(r, body, "tags", 0, DASH_MAX_SCOPE_TAGS, dash_check_tag, &in->tags,
                           NULL) != RP_OK ||
        dash_get_str_array(r, body, "channel_ids", 0, MAX_RULE_CHANNELS, dash_check_uuid,
                           &in->channel_ids, NULL) != RP_OK ||
        dash_get_bool(r, body, "on_opened", 0, &opened, &has_o) != RP_OK ||
        dash_get_bool(r, body, "on_resolved", 0, &resolved, &has_r) != RP_OK ||
        dash_get_bool(r, body, "enabled", 0, &enabled, &has_e) != RP_OK ||
        dash_get_int(r, body, "failures_to_open", 0, 1, 100, &fto, &has_f) != RP_OK ||
        dash_get_int(r, body, "passes_to_resolve", 0, 1, 100, &pto, &has_p) != RP_OK ||
        dash_get_int(r, body, "remind_every_s", DASH_NULLABLE, 60, 2592000, &remind, &has_m) !=
            RP_OK)
        return RP_EINVAL;
    in->on_opened = dash_bool_param(has_o, opened);
    in->on_resolved = dash_bool_param(has_r, resolved);
    in->enabled = dash_bool_param(has_e, enabled);
    in->fto = dash_int_param(has_f, fto, in->fto_s, sizeof(in->fto_s));
    in->pto = dash_int_param(has_p, pto, in->pto_s, sizeof(in->pto_s));
    in->remind = dash_int_param(has_m && remind >= 0, remind, in->remind_s, sizeof(in->remind_s));
    in->remind_set = has_m ? "true" : "false";
    if (creating) {
        bson_t d = BSON_INITIALIZER;
        BSON_APPEND_UTF8(&d, "name", in->name);
        in->details = dash_json_text(&d);
        bson_destroy(&d);
    } else {
        in->details = dash_changed_details(body, NULL, NULL);
    }
    return RP_OK;
}

static int rule_tx(struct dash_req *r, struct rp_pg *pg, void *ud)
{
    struct rule_in *in = ud;
    PGresult *res = NULL;
    int rc;
    if ((rc = dash_check_refs(r, pg, in->project, in->test_ids.data, 0)) != RP_OK ||
        (rc = dash_check_refs(r, pg, in->project, in->channel_ids.data, 1)) != RP_OK)
        return rc;
    if (!in->id) {
        const char *p[11] = {
            in->project,     in->name, in->test_ids.data, in->tags.data, in->on_opened,
            in->on_resolved, in->fto,  in->pto,           in->remind,    in->channel_ids.data,
            in->enabled};
        rc = dash_tx_exec(
            r, pg, "alert rule",
            "INSERT INTO alert_rules (project_id, name, test_ids, tags, on_opened, on_resolved, "
            "failures_to_open, passes_to_resolve, remind_every_s, channel_ids, enabled) "
            "SELECT id, $2, COALESCE($3::uuid[], '{}'), COALESCE($4::text[], '{}'), "
            "COALESCE($5::bool, true), COALESCE($6::bool, true), COALESCE($7::int, 2), "
            "COALESCE($8::int, 1), $9::int, COALESCE($10::uuid[], '{}'), "
            "COALESCE($11::bool, true) FROM projects WHERE id = $1 RETURNING id",
            11, p, &res);
    } else {
        const char *p[13] = {in->project,   in->id,        in->name,        in->test_ids.data,
                             in->tags.data, in->on_opened, in->on_resolved, in->fto,
                             in->pto,       in->remind,    in->remind_set,  in->channel_ids.data,
                             in->enabled};
        rc = dash_tx_exec(
            r, pg, "alert rule",
            "UPDATE alert_rules SET name = COALESCE($3, name), "
            "test_ids = COALESCE($4::uuid[], test_ids), tags = COALESCE($5::text[], tags), "
            "on_opened = COALESCE($6::bool, on_opened), "
            "on_resolved = COALESCE($7::bool, on_resolved), "
            "failures_to_open = COALESCE($8::int, failures_to_open), "
            "passes_to_resolve = COALESCE($9::int, passes_to_resolve), "
            "remind_every_s = CASE WHEN $11::bool THEN $10::int ELSE remind_every_s END, "
            "channel_ids = COALESCE($12::uuid[], channel_ids), "
            "enabled = COALESCE($13::bool, enabled), updated_at = now() "
            "WHERE project_id = $1 AND id = $2 RETURNING id",
            13, p, &res);
    }
    if (rc != RP_OK)
        return rc;
    if (PQntuples(res) != 1) {
        PQclear(res);
        dash_error(r, 404, "not_found", in->id ? "alert rule not found" : "project not found");
        return RP_ENOENT;
    }
    snprintf(in->new_id, sizeof(in->new_id), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return dash_audit(r, pg, in->project, in->id ? "alert_rule.update" : "alert_rule.create",
                      "alert_rule", in->new_id, in->details);
}

static void reply_rule(struct dash_req *r, unsigned status, const char *project, const char *id)
{
    const char *p[2] = {project, id};
    dash_query_reply(
        r, status, "alert rule",
        "SELECT " RULE_JSON " FROM alert_rules a WHERE a.project_id = $1 AND a.id = $2", 2, p);
}

static void list_rules(struct dash_req *r)
{
    const char *p[1] = {dash_param(r, "project")};
    dash_query_reply(r, 200, "project",
                     DASH_LIST_SQL(RULE_JSON, "alert_rules a WHERE a.project_id = p.id", "a.name"),
                     1, p);
}

static void get_rule(struct dash_req *r)
{
    const char *id = dash_param_uuid(r, "rule", "alert rule");
    if (id)
        reply_rule(r, 200, dash_param(r, "project"), id);
}

static void write_rule(struct dash_req *r, int creating)
{
    bson_t body;
    struct rule_in in = {.project = dash_param(r, "project")};
    rp_buf_init(&in.test_ids, 0);
    rp_buf_init(&in.tags, 0);
    rp_buf_init(&in.channel_ids, 0);
    if ((!creating && !(in.id = dash_param_uuid(r, "rule", "alert rule"))) ||
        dash_body(r, &body) != RP_OK)
        return;
    if (read_rule(r, &body, creating, &in) == RP_OK && dash_tx(r, rule_tx, &in) == RP_OK)
        reply_rule(r, creating ? 201 : 200, in.project, in.new_id);
    rule_in_cleanup(&in);
    bson_destroy(&body);
}

static void create_rule(struct dash_req *r)
{
    write_rule(r, 1);
}

static void patch_rule(struct dash_req *r)
{
    write_rule(r, 0);
}

static void delete_rule(struct dash_req *r)
{
    struct dash_delete_in in = {
        .what = "alert rule",
        .sql = "DELETE FROM alert_rules WHERE project_id = $1 AND id = $2 "
               "RETURNING json_build_object('name', name)",
        .action = "alert_rule.delete",
        .target = "alert_rule",
    };
    dash_delete_thing(r, &in, "rule");
}

#define PROJ "/api/v1/projects/{project}"
const struct dash_route dash_routes_alert_rules[] = {
    {"GET", PROJ "/alert-rules", DASH_PROJECT_VIEWER, list_rules},
    {"POST", PROJ "/alert-rules", DASH_PROJECT_EDITOR, create_rule},
    {"GET", PROJ "/alert-rules/{rule}", DASH_PROJECT_VIEWER, get_rule},
    {"PATCH", PROJ "/alert-rules/{rule}", DASH_PROJECT_EDITOR, patch_rule},
    {"DELETE", PROJ "/alert-rules/{rule}", DASH_PROJECT_EDITOR, delete_rule},
    {NULL, NULL, 0, NULL},
};
