/* What the alerting did (issue #7): a project's incidents (opened and resolved by SQL
 * finish_runs(), 0006_incidents.sql), each with its transitions and their deliveries, and the
 * notification ledger the mailer and connector write; plus the "send a test notification"
 * action of a channel (routed in api_channels.c, served here next to the ledger it reads).
 * Reads are for viewers; lists are newest first, paginated by (time, id) cursors as the runs.
 * Design note — a test notification: one transaction inserts a transition of kind 'test' (the
 * outbox row the mailer/connector sweep publishes within about a second) and its audit row ->
 * with ?wait=S, poll the ledger row every POLL_MS, the PostgreSQL connection given back to the
 * pool between polls, until it is sent, failed or muted, the wait is over or the dashboard
 * drains -> answer the ledger row as it is (200 when final, 202 otherwise). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dash.h"
#include "rampart/job.h"
#include "rampart/pg.h"
#include "rampart/service.h"

#define POLL_MS       100
#define MAX_TEST_WAIT 30 /* seconds a test notification may be waited for */

/* A ledger row (notifications n) with its channel and transition: FROM notifications n
 * LEDGER_JOINS. A test transition has no incident: its test and location are null. */
#define LEDGER_JSON                                                                                \
    "json_build_object('id', n.id, 'status', n.status, 'attempts', n.attempts, "                   \
    "'reason', n.reason, 'response', n.response, 'created_at', n.created_at, "                     \
    "'updated_at', n.updated_at, 'sent_at', n.sent_at, "                                           \
    "'channel', json_build_object('id', nc.id, 'name', nc.name, 'kind', nc.kind), "                \
    "'transition', json_build_object('id', nx.id, 'kind', nx.kind, 'seq', nx.seq, "                \
    "  'occurred_at', nx.occurred_at, 'incident_id', nx.incident_id, "                             \
    "  'test', CASE WHEN nt.id IS NULL THEN NULL "                                                 \
    "          ELSE json_build_object('id', nt.id, 'name', nt.name) END, "                         \
    "  'location', ni.location))"
#define LEDGER_JOINS                                                                               \
    " JOIN channels nc ON nc.id = n.channel_id "                                                   \
    "JOIN incident_transitions nx ON nx.id = n.transition_id "                                     \
    "LEFT JOIN incidents ni ON ni.id = nx.incident_id LEFT JOIN tests nt ON nt.id = ni.test_id "

/* The members of an incident (incidents i, its rule ar and test t) with the count of its
 * deliveries by outcome: pending is the ledger rows still being tried (sending or retrying). */
#define INCIDENT_MEMBERS                                                                           \
    "'id', i.id, 'state', CASE WHEN i.resolved_at IS NULL THEN 'open' ELSE 'resolved' END, "       \
    "'rule', json_build_object('id', ar.id, 'name', ar.name), "                                    \
    "'test', json_build_object('id', t.id, 'name', t.name), 'location', i.location, "              \
    "'failing_since', i.failing_since, 'opened_at', i.opened_at, 'resolved_at', i.resolved_at, "   \
    "'failure', i.failure, 'opened_run_id', i.opened_run_id, "                                     \
    "'resolved_run_id', i.resolved_run_id, "                                                       \
    "'notifications', (SELECT json_build_object("                                                  \
    "  'sent', count(*) FILTER (WHERE d.status = 'sent'), "                                        \
    "  'failed', count(*) FILTER (WHERE d.status = 'failed'), "                                    \
    "  'muted', count(*) FILTER (WHERE d.status = 'muted'), "                                      \
    "  'pending', count(*) FILTER (WHERE d.status IN ('sending', 'retrying'))) "                   \
    "  FROM incident_transitions dx JOIN notifications d ON d.transition_id = dx.id "              \
    "  WHERE dx.incident_id = i.id)"
#define INCIDENT_FROM                                                                              \
    "incidents i JOIN alert_rules ar ON ar.id = i.rule_id JOIN tests t ON t.id = i.test_id"

/* A page of a list: a CTE `page` of (id, at) rows, newest first, one more than the limit ($6)
 * to tell whether a next page exists; `shown` the rows answered; `last_key` the key of the last
 * one, for the cursor (Unix microseconds: exact). A cursor's key is $4 (microseconds) and $5
 * (the id), both NULL without one. The answer's row: the items, whether more follow, the last
 * key; no row when the project does not exist. */
#define PAGE_AFTER                                                                                 \
    "($4::bigint IS NULL OR (at, id) < (timestamptz 'epoch' + "                                    \
    "$4::bigint * interval '1 microsecond', $5::uuid))"
#define PAGE_REST                                                                                  \
    "shown AS (SELECT * FROM page ORDER BY at DESC, id DESC LIMIT $6::int), "                      \
    "last_key AS (SELECT (extract(epoch FROM at) * 1000000)::bigint AS us, id FROM shown "         \
    "  ORDER BY at, id LIMIT 1) "
#define PAGE_TAIL                                                                                  \
    ", (SELECT count(*) FROM page) > $6::int, (SELECT us::text FROM last_key), "                   \
    "(SELECT id::text FROM last_key) FROM projects p WHERE p.id = $1"

/* $1 project, $2 state, $3 test, $4/$5 cursor, $6 limit. */
static const char incidents_sql[] =
    "WITH page AS (SELECT id, at FROM (SELECT id, opened_at AS at, resolved_at, test_id "
    "  FROM incidents WHERE project_id = $1) q "
    "  WHERE ($2::text IS NULL OR (resolved_at IS NULL) = ($2 = 'open')) "
    "    AND ($3::uuid IS NULL OR test_id = $3::uuid) AND " PAGE_AFTER " "
    "  ORDER BY at DESC, id DESC LIMIT $6::int + 1), " PAGE_REST
    "SELECT (SELECT COALESCE(json_agg(json_build_object(" INCIDENT_MEMBERS ") "
    "  ORDER BY i.opened_at DESC, i.id DESC), '[]') "
    "  FROM shown s JOIN incidents i ON i.id = s.id JOIN alert_rules ar ON ar.id = i.rule_id "
    "  JOIN tests t ON t.id = i.test_id)" PAGE_TAIL;

/* $1 project, $2 status, $3 channel, $4/$5 cursor, $6 limit. */
static const char notifications_sql[] =
    "WITH page AS (SELECT id, at FROM (SELECT id, created_at AS at, status, channel_id "
    "  FROM notifications WHERE project_id = $1) q "
    "  WHERE ($2::text IS NULL OR status = $2) AND ($3::uuid IS NULL OR channel_id = $3::uuid) "
    "    AND " PAGE_AFTER " ORDER BY at DESC, id DESC LIMIT $6::int + 1), " PAGE_REST
    "SELECT (SELECT COALESCE(json_agg(" LEDGER_JSON " ORDER BY n.created_at DESC, n.id DESC), "
    "  '[]') FROM shown s JOIN notifications n ON n.id = s.id" LEDGER_JOINS ")" PAGE_TAIL;

/* The incident with its transitions, oldest first, each with its deliveries. */
static const char incident_sql[] =
    "SELECT json_build_object(" INCIDENT_MEMBERS ", 'transitions', COALESCE(("
    "  SELECT json_agg(json_build_object('id', x.id, 'kind', x.kind, 'seq', x.seq, "
    "    'occurred_at', x.occurred_at, 'created_at', x.created_at, "
    "    'published_at', x.published_at, 'run_id', x.run_id, "
    "    'notifications', COALESCE((SELECT json_agg(" LEDGER_JSON " ORDER BY n.created_at, n.id) "
    "      FROM notifications n" LEDGER_JOINS "WHERE n.transition_id = x.id), '[]')) "
    "    ORDER BY x.created_at, x.seq, x.id) "
    "  FROM incident_transitions x WHERE x.incident_id = i.id), '[]'))::text "
    "FROM " INCIDENT_FROM " WHERE i.project_id = $1 AND i.id = $2";

static const char *const incident_states[] = {"open", "resolved", NULL};
static const char *const ledger_statuses[] = {"sending", "retrying", "sent",
                                              "failed",  "muted",    NULL};

/* ---- lists ------------------------------------------------------------------------------ */

/* Query argument `name` as an id: RP_OK with *out (NULL when absent), or 400 naming it. */
static int arg_uuid(struct dash_req *r, const char *name, const char **out)
{
    const char *v = dash_arg(r, name);
    *out = v;
    if (v && !rp_uuid_valid(v)) {
        dash_error_field(r, 400, "invalid_field", name, "%s must be an id (a UUID)", name);
        return RP_EINVAL;
    }
    return RP_OK;
}

/* ?limit and ?cursor of a list: the limit as text and the cursor's key (*us and *id, freed by
 * the caller; NULL without a cursor). */
static int page_args(struct dash_req *r, char lim[16], char **us, char **id)
{
    long limit;
    const char *cursor = dash_arg(r, "cursor");
    *us = *id = NULL;
    if (dash_arg_long(r, "limit", 1, 200, 50, &limit) != RP_OK)
        return RP_EINVAL;
    snprintf(lim, 16, "%ld", limit);
    if (!cursor)
        return RP_OK;
    int ok = dash_cursor_decode(cursor, us, id) == RP_OK;
    const char *d = ok ? *us + (**us == '-') : NULL;
    ok = ok && *d && strlen(d) <= 17; /* |t| < 10^17 us: 1200 BC to AD 5100, never out of range */
    for (; ok && *d; d++)
        ok = *d >= '0' && *d <= '9';
    if (!ok) {
        free(*us);
        free(*id);
        *us = *id = NULL;
        dash_error_field(r, 400, "invalid_field", "cursor",
                         "cursor: not a cursor from this list (use next_cursor as given)");
        return RP_EINVAL;
    }
    return RP_OK;
}

/* Run a list statement (columns: items, more, last key's microseconds and id; no row when the
 * project does not exist) and answer {"items": [...], "next_cursor": "..." | null}. */
static void reply_page(struct dash_req *r, const char *sql, const char *const *p)
{
    PGresult *res = NULL;
    if (dash_exec(r, "list", sql, 6, p, &res) != RP_OK)
        return;
    if (PQntuples(res) != 1) { /* an admin passes the role check for any project id */
        PQclear(res);
        dash_error(r, 404, "not_found", "project not found");
        return;
    }
    struct rp_buf b;
    rp_buf_init(&b, 0);
    (void)rp_buf_append(&b, "{\"items\":", 9);
    (void)rp_buf_append(&b, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
    if (strcmp(PQgetvalue(res, 0, 1), "t") == 0 && !PQgetisnull(res, 0, 2)) {
        char *next = dash_cursor_encode(PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 3));
        (void)rp_buf_printf(&b, ",\"next_cursor\":\"%s\"}", next);
        free(next);
    } else {
        (void)rp_buf_append(&b, ",\"next_cursor\":null}", 20);
    }
    PQclear(res);
    dash_reply_json(r, 200, b.data, b.len);
    rp_buf_cleanup(&b);
}

static void list_incidents(struct dash_req *r)
{
    const char *state, *test;
    char lim[16], *us = NULL, *id = NULL;
    if (dash_arg_enum(r, "state", incident_states, &state) != RP_OK ||
        arg_uuid(r, "test_id", &test) != RP_OK || page_args(r, lim, &us, &id) != RP_OK)
        return;
    const char *p[6] = {dash_param(r, "project"), state, test, us, id, lim};
    reply_page(r, incidents_sql, p);
    free(us);
    free(id);
}

static void get_incident(struct dash_req *r)
{
    const char *id = dash_param_uuid(r, "incident", "incident");
    if (!id)
        return;
    const char *p[2] = {dash_param(r, "project"), id};
    dash_query_reply(r, 200, "incident", incident_sql, 2, p);
}

static void list_notifications(struct dash_req *r)
{
    const char *status, *channel;
    char lim[16], *us = NULL, *id = NULL;
    if (dash_arg_enum(r, "status", ledger_statuses, &status) != RP_OK ||
        arg_uuid(r, "channel_id", &channel) != RP_OK || page_args(r, lim, &us, &id) != RP_OK)
        return;
    const char *p[6] = {dash_param(r, "project"), status, channel, us, id, lim};
    reply_page(r, notifications_sql, p);
    free(us);
    free(id);
}

/* ---- POST .../channels/{channel}/test ----------------------------------------------------- */

struct test_in {
    const char *project, *channel, *user;
    char transition[RP_UUID_LEN + 1];
};

static int channel_test_tx(struct dash_req *r, struct rp_pg *pg, void *ud)
{
    struct test_in *in = ud;
    PGresult *res = NULL;
    const char *p[3] = {in->project, in->channel, in->user};
    /* FOR SHARE: the channel is neither deleted nor disabled before this commits */
    int rc = dash_tx_exec(
        r, pg, "channel",
        "SELECT enabled FROM channels WHERE project_id = $1 AND id = $2 FOR SHARE", 2, p, &res);
    if (rc != RP_OK)
        return rc;
    int found = PQntuples(res) == 1, enabled = found && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    if (!found) {
        dash_error(r, 404, "not_found", "channel not found");
        return RP_ENOENT;
    }
    if (!enabled) {
        dash_error(r, 409, "conflict", "the channel is disabled: enable it to send a test");
        return RP_EINVAL;
    }
    rc =
        dash_tx_exec(r, pg, "test notification",
                     "INSERT INTO incident_transitions (project_id, channel_id, kind, occurred_at, "
                     "requested_by) VALUES ($1, $2, 'test', now(), $3::uuid) RETURNING id",
                     3, p, &res);
    if (rc != RP_OK)
        return rc;
    snprintf(in->transition, sizeof(in->transition), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    char details[80];
    snprintf(details, sizeof(details), "{\"transition_id\":\"%s\"}", in->transition);
    return dash_audit(r, pg, in->project, "channel.test", "channel", in->channel, details);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Poll the ledger row of `transition` until its outcome is known, `wait_ms` passed or the
 * dashboard drains. The connection goes back to the pool between polls, so a wait holds no
 * slot; a failed poll (failover) is simply tried again at the next one. */
static void wait_delivery(struct dash_req *r, const char *transition, int64_t wait_ms)
{
    int64_t deadline = mono_ms() + wait_ms;
    const char *p[1] = {transition};
    for (;;) {
        int64_t now = mono_ms();
        if (now >= deadline || rp_service_draining(r->app->svc))
            return;
        int64_t nap = deadline - now < POLL_MS ? deadline - now : POLL_MS;
        struct timespec ts = {0, (long)nap * 1000000};
        nanosleep(&ts, NULL);
        struct rp_pg *pg = dash_pg(r);
        if (!pg)
            return; /* answered 503 */
        PGresult *res = NULL;
        struct rp_error e = {0};
        int done = 0;
        if (rp_pg_exec_idempotent(pg,
                                  "SELECT 1 FROM notifications WHERE transition_id = $1 "
                                  "AND status IN ('sent', 'failed', 'muted')",
                                  1, p, &res, &e) == RP_OK) {
            done = PQntuples(res) > 0;
            PQclear(res);
        }
        dash_db_release(r);
        if (done)
            return;
    }
}

/* 200 {"transition_id", "notification": the ledger row} when its outcome is known, else 202
 * with the row as it is (null before the sender took it). */
static void reply_test(struct dash_req *r, const char *transition)
{
    const char *p[1] = {transition};
    PGresult *res = NULL;
    if (dash_exec(r, "test notification",
                  "SELECT json_build_object('transition_id', $1::uuid, 'notification', "
                  "  (SELECT " LEDGER_JSON " FROM notifications n" LEDGER_JOINS
                  "   WHERE n.transition_id = $1::uuid))::text, "
                  "COALESCE((SELECT status IN ('sent', 'failed', 'muted') FROM notifications "
                  "  WHERE transition_id = $1::uuid), false)",
                  1, p, &res) != RP_OK)
        return;
    unsigned status = strcmp(PQgetvalue(res, 0, 1), "t") == 0 ? 200 : 202;
    dash_reply_json(r, status, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
    PQclear(res);
}

void dash_channel_test(struct dash_req *r)
{
    struct test_in in = {.project = dash_param(r, "project")};
    long wait_s;
    bson_t body;
    static const char *const no_members[] = {NULL};
    if (!(in.channel = dash_param_uuid(r, "channel", "channel")) ||
        dash_arg_long(r, "wait", 0, MAX_TEST_WAIT, 0, &wait_s) != RP_OK)
        return;
    if (r->body.len > 0) { /* no body, or an empty object */
        if (dash_body(r, &body) != RP_OK)
            return;
        int rc = dash_only(r, &body, no_members);
        bson_destroy(&body);
        if (rc != RP_OK)
            return;
    }
    in.user = r->who.kind == DASH_SESSION ? r->who.user_id : NULL;
    if (dash_tx(r, channel_test_tx, &in) != RP_OK)
        return;
    if (!wait_s) {
        char json[96];
        int n = snprintf(json, sizeof(json), "{\"transition_id\":\"%s\",\"notification\":null}",
                         in.transition);
        dash_reply_json(r, 202, json, (size_t)n);
        return;
    }
    /* the operator's cap on waiting requests (RAMPART_RUN_WAIT_MAX) holds here too */
    int64_t wait_ms = (int64_t)wait_s * 1000;
    if (wait_ms > r->app->cfg->run_wait_max_ms)
        wait_ms = r->app->cfg->run_wait_max_ms;
    dash_db_release(r); /* committed: no slot is held while waiting */
    wait_delivery(r, in.transition, wait_ms);
    if (!r->replied)
        reply_test(r, in.transition);
}

#define PROJ "/api/v1/projects/{project}"
const struct dash_route dash_routes_incidents[] = {
    {"GET", PROJ "/incidents", DASH_PROJECT_VIEWER, list_incidents},
    {"GET", PROJ "/incidents/{incident}", DASH_PROJECT_VIEWER, get_incident},
    {"GET", PROJ "/notifications", DASH_PROJECT_VIEWER, list_notifications},
    {NULL, NULL, 0, NULL},
};
