/* One message of the service's queue (an incident event, or a retry of one channel): which
 * channels of the service's kinds hear about the transition, and for each one the ledger row
 * (notifications, unique per transition + channel) that makes a redelivered message send
 * nothing twice:
 *   claim   INSERT ... ON CONFLICT DO UPDATE: a new row, or a 'retrying' one, or a 'sending'
 *           one whose claim has expired (its copy died mid-send) becomes ours ('sending',
 *           attempts + 1, claimed until now + lease). Anything else (sent, failed, muted, or
 *           claimed by a live copy) is not ours: skipped, or looked at again after the lease.
 *   mute    a maintenance window active at the transition's time (or the rule's settings)
 *           writes 'muted' with the reason instead of sending.
 *   send    the service's sender, once.
 *   record  sent | failed (permanent, or out of tries) | retrying + a message to the retry
 *           queue of the back-off delay, confirmed by the broker before the message is acked.
 * A copy killed between send and record leaves a 'sending' row: the message comes back, waits
 * for the lease, and is sent again, so a receiver may see it twice but never zero times; the
 * notification id travels with every try so receivers can tell (docs/alerts.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bson/bson.h>

#include <sodium.h>

#include "alert_int.h"
#include "rampart/log.h"
#include "rampart/mem.h"

/* Everything a notification says about one transition (times as ISO 8601 UTC), plus the
 * maintenance window (if any) active at its time for its test. */
static const char ctx_sql[] =
    "SELECT t.kind, t.seq, t.project_id, p.slug, p.name, t.incident_id, t.channel_id, "
    "       to_char(t.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
    "       t.run_id, i.test_id, te.name, i.location, ar.name, "
    "       ar.on_opened, ar.on_resolved, ar.channel_ids::text, "
    "       to_char(i.failing_since AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
    "       i.failure, floor(extract(epoch FROM t.occurred_at - i.failing_since))::bigint, "
    "       u.email, floor(extract(epoch FROM now() - t.created_at) * 1000)::bigint, "
    "       (SELECT w.name FROM maintenance_windows w "
    "        WHERE t.kind <> 'test' AND w.project_id = t.project_id "
    "          AND maintenance_window_active(w, t.occurred_at) "
    "          AND ((cardinality(w.test_ids) = 0 AND cardinality(w.tags) = 0) "
    "               OR i.test_id = ANY (w.test_ids) OR w.tags && te.tags) "
    "        ORDER BY w.name LIMIT 1) "
    "FROM incident_transitions t JOIN projects p ON p.id = t.project_id "
    "LEFT JOIN incidents i ON i.id = t.incident_id "
    "LEFT JOIN alert_rules ar ON ar.id = i.rule_id "
    "LEFT JOIN tests te ON te.id = i.test_id "
    "LEFT JOIN users u ON u.id = t.requested_by "
    "WHERE t.id = $1";
enum {
    C_KIND,
    C_SEQ,
    C_PROJECT,
    C_SLUG,
    C_PNAME,
    C_INCIDENT,
    C_CHANNEL,
    C_OCCURRED,
    C_RUN,
    C_TEST,
    C_TNAME,
    C_LOCATION,
    C_RULE,
    C_ON_OPENED,
    C_ON_RESOLVED,
    C_CHANNELS,
    C_SINCE,
    C_FAILURE,
    C_FOR_S,
    C_REQUESTER,
    C_AGE_MS,
    C_WINDOW
};

static const char channels_sql[] =
    "SELECT c.id, c.name, c.kind, c.config::text, c.secrets::text FROM channels c "
    "WHERE c.project_id = $1 AND c.id = ANY ($2::uuid[]) AND c.kind = ANY ($3::text[]) "
    "  AND c.enabled AND ($4::uuid IS NULL OR c.id = $4::uuid) ORDER BY c.id";

static const char claim_sql[] =
    "INSERT INTO notifications AS n (project_id, transition_id, channel_id, status, attempts, "
    "                                claimed_by, claimed_until) "
    "VALUES ($1, $2, $3, 'sending', 1, $4, now() + $5::bigint * interval '1 millisecond') "
    "ON CONFLICT (transition_id, channel_id) DO UPDATE "
    "SET status = 'sending', attempts = n.attempts + 1, claimed_by = EXCLUDED.claimed_by, "
    "    claimed_until = EXCLUDED.claimed_until, updated_at = now() "
    "WHERE n.status = 'retrying' OR (n.status = 'sending' AND n.claimed_until < now()) "
    "RETURNING n.id, n.attempts";

static const char state_sql[] =
    "SELECT status, greatest(0, ceil(extract(epoch FROM claimed_until - now()) * 1000))::bigint "
    "FROM notifications WHERE transition_id = $1 AND channel_id = $2";

static const char mute_sql[] =
    "INSERT INTO notifications (project_id, transition_id, channel_id, status, reason) "
    "VALUES ($1, $2, $3, 'muted', $4) ON CONFLICT (transition_id, channel_id) DO NOTHING";

/* What became of the opening of this incident on this channel. */
static const char opened_sql[] =
    "SELECT n.status, n.reason FROM notifications n "
    "JOIN incident_transitions o ON o.id = n.transition_id "
    "WHERE o.incident_id = $1 AND o.kind = 'opened' AND n.channel_id = $2";

static const char sent_sql[] =
    "UPDATE notifications SET status = 'sent', sent_at = now(), response = $3, reason = NULL, "
    "       claimed_until = NULL, updated_at = now() "
    "WHERE id = $1 AND attempts = $2::int AND status = 'sending'";
static const char skipped_sql[] =
    "UPDATE notifications SET status = 'muted', reason = $3, claimed_until = NULL, "
    "       updated_at = now() "
    "WHERE id = $1 AND attempts = $2::int AND status = 'sending'";
static const char failed_sql[] =
    "UPDATE notifications SET status = 'failed', reason = $3, response = $4, "
    "       claimed_until = NULL, updated_at = now() "
    "WHERE id = $1 AND attempts = $2::int AND status = 'sending'";
static const char retrying_sql[] =
    "UPDATE notifications SET status = 'retrying', reason = $3, response = $4, "
    "       claimed_until = NULL, updated_at = now() "
    "WHERE id = $1 AND attempts = $2::int AND status = 'sending'";

static const char *val(PGresult *r, int col)
{
    return PQgetisnull(r, 0, col) ? NULL : PQgetvalue(r, 0, col);
}

static int transient(int rc)
{
    return rc == RP_EAGAIN || rc == RP_ETIMEDOUT;
}

/* A database failure: RP_EAGAIN (the message goes back) for an outage; a permanent one is
 * logged and the message dropped (it would fail the same way forever). */
static int db_failed(int rc, const struct rp_error *err, const char *what)
{
    if (transient(rc)) {
        rp_warn("alert delivery: %s: %s (will retry)", what, err->msg);
        return RP_EAGAIN;
    }
    rp_err("alert delivery: %s: %s", what, err->msg);
    return RP_EIO;
}

struct job {
    struct al_conn *c;
    PGresult *ctx;
    char transition[40];
    char filter_channel[40]; /* a retry: only this channel */
    struct rp_alert_msg msg;
    char run_url[600], test_url[600], dedup[80];
};

static void count(struct rp_alert *a, const char *kind, const char *outcome)
{
    rp_series_inc(rp_metric_labels(a->m_notifications, kind, outcome));
}

/* Publish {"transition_id", "channel_id"} to the retry queue for `delay_ms`, confirmed. */
static int schedule_retry(struct job *j, const char *channel_id, long delay_ms)
{
    struct rp_alert *a = j->c->a;
    char queue[300], body[200];
    al_retry_queue(a, delay_ms, queue, sizeof(queue));
    int n = snprintf(body, sizeof(body), "{\"transition_id\":\"%s\",\"channel_id\":\"%s\"}",
                     j->transition, channel_id);
    struct rp_amqp_props props = {.content_type = "application/json", .persistent = 1};
    struct rp_amqp_pub_stats before, after;
    struct rp_error err = {0};
    rp_amqp_publisher_stats(j->c->pub, &before);
    if (rp_amqp_publish(j->c->pub, "", queue, body, (size_t)n, &props, 1, NULL, &err) != RP_OK ||
        rp_amqp_publisher_flush(j->c->pub, 10000, &err) != RP_OK) {
        rp_warn("alert delivery: cannot queue the retry on %s: %s", queue, err.msg);
        return RP_EAGAIN;
    }
    rp_amqp_publisher_stats(j->c->pub, &after);
    if (after.returned != before.returned || after.failed != before.failed) {
        rp_warn("alert delivery: the retry queue %s refused the retry (declaring it again)", queue);
        atomic_store(&a->declared, 0);
        (void)al_declare_retry_queues(a, &err);
        return RP_EAGAIN;
    }
    return RP_OK;
}

/* Whether this channel hears of this transition: NULL (send it), a reason (mute it), or
 * *defer set: the incident's opening is not settled on this channel yet (not delivered, or
 * being retried), so a resolved or a reminder waits for it; a receiver never hears
 * "resolved" before "opened". An opening with no ledger row at all (the channel joined the
 * rule later) is waited for at most ORDER_WAIT_MS after the transition. */
#define ORDER_WAIT_MS 60000
static char *mute_reason(struct job *j, PGresult *chans, int row, int *defer, int *rc)
{
    PGresult *ctx = j->ctx;
    const char *kind = val(ctx, C_KIND);
    const char *rule = val(ctx, C_RULE);
    int resolved = strcmp(kind, "resolved") == 0;
    *rc = RP_OK;
    *defer = 0;
    if (strcmp(kind, "test") == 0)
        return NULL;
    if (resolved ? strcmp(val(ctx, C_ON_RESOLVED), "t") != 0
                 : strcmp(val(ctx, C_ON_OPENED), "t") != 0)
        return rp_xasprintf("the alert rule \"%s\" does not notify when an incident %s", rule,
                            resolved ? "resolves" : "opens");
    const char *window = val(ctx, C_WINDOW);
    const char *opened_status = NULL;
    PGresult *o = NULL;
    if (strcmp(kind, "opened") != 0) {
        const char *p[] = {val(ctx, C_INCIDENT), PQgetvalue(chans, row, 0)};
        struct rp_error err = {0};
        int q = rp_pg_exec_idempotent(j->c->pg, opened_sql, 2, p, &o, &err);
        if (q != RP_OK) {
            *rc = db_failed(q, &err, "reading the incident's opening");
            return NULL;
        }
        if (PQntuples(o) > 0)
            opened_status = PQgetvalue(o, 0, 0);
        if (opened_status
                ? strcmp(opened_status, "sending") == 0 || strcmp(opened_status, "retrying") == 0
                : atol(val(ctx, C_AGE_MS)) < ORDER_WAIT_MS) {
            *defer = 1;
            PQclear(o);
            return NULL;
        }
    }
    char *why = NULL;
    if (resolved && opened_status && strcmp(opened_status, "sent") == 0) {
        why = NULL; /* they heard it fail: they hear it recover, window or not */
    } else if (window) {
        why = rp_xasprintf("muted by the maintenance window \"%s\", active at %s", window,
                           val(ctx, C_OCCURRED));
    } else if (resolved && opened_status && strcmp(opened_status, "muted") == 0) {
        why = rp_xasprintf("the incident's opening was muted (%s), so its recovery is not "
                           "announced either",
                           PQgetisnull(o, 0, 1) ? "no reason" : PQgetvalue(o, 0, 1));
    }
    PQclear(o);
    return why;
}

/* Turn the stored secrets {"name": "v1:..."} into {"name": "plain"}; NULL + why on failure. */
static bson_t *open_secrets(struct rp_alert *a, const char *json, char *why, size_t cap)
{
    bson_error_t be;
    bson_t *sealed = bson_new_from_json((const uint8_t *)json, -1, &be);
    if (!sealed) {
        snprintf(why, cap, "the channel's stored secrets are not valid JSON");
        return NULL;
    }
    bson_t *out = bson_new();
    bson_iter_t it;
    int ok = 1;
    if (bson_iter_init(&it, sealed))
        while (ok && bson_iter_next(&it)) {
            if (!BSON_ITER_HOLDS_UTF8(&it))
                continue;
            if (!a->have_key) {
                snprintf(why, cap, "%s", a->key_problem);
                ok = 0;
                break;
            }
            char *plain = NULL;
            struct rp_error err = {0};
            if (rp_secret_open(a->key, bson_iter_utf8(&it, NULL), &plain, NULL, &err) != RP_OK) {
                snprintf(why, cap,
                         "the channel's secret \"%s\" cannot be opened with this service's "
                         "RAMPART_SECRET_KEY (it must be the dashboard's key)",
                         bson_iter_key(&it));
                ok = 0;
                break;
            }
            BSON_APPEND_UTF8(out, bson_iter_key(&it), plain);
            sodium_memzero(plain, strlen(plain));
            free(plain);
        }
    bson_destroy(sealed);
    if (!ok) {
        bson_destroy(out);
        return NULL;
    }
    return out;
}

/* One channel: claim, send once, record. */
static int one_channel(struct job *j, PGresult *chans, int row)
{
    struct al_conn *c = j->c;
    struct rp_alert *a = c->a;
    PGresult *ctx = j->ctx;
    const char *channel_id = PQgetvalue(chans, row, 0);
    const char *ckind = PQgetvalue(chans, row, 2);
    const char *tkind = val(ctx, C_KIND);
    struct rp_error err = {0};
    int rc;

    int defer = 0;
    char *why = mute_reason(j, chans, row, &defer, &rc);
    if (rc != RP_OK)
        return rc;
    if (defer) {
        count(a, ckind, "deferred");
        return schedule_retry(j, channel_id, 1000);
    }
    if (why) {
        const char *p[] = {val(ctx, C_PROJECT), j->transition, channel_id, why};
        rc = rp_pg_exec_idempotent(c->pg, mute_sql, 4, p, NULL, &err);
        if (rc == RP_OK) {
            rp_info("alert %s of transition %s to channel %s: %s", tkind, j->transition, channel_id,
                    why);
            count(a, ckind, "muted");
        }
        free(why);
        return rc == RP_OK ? RP_OK : db_failed(rc, &err, "recording a muted notification");
    }

    char lease[32];
    snprintf(lease, sizeof(lease), "%ld", a->lease_ms);
    const char *cp[] = {val(ctx, C_PROJECT), j->transition, channel_id, rp_log_instance(), lease};
    PGresult *claim = NULL;
    rc = rp_pg_exec(c->pg, claim_sql, 5, cp, &claim, &err);
    if (rc != RP_OK)
        return db_failed(rc, &err, "claiming a notification");
    if (PQntuples(claim) == 0) {
        PQclear(claim);
        const char *sp[] = {j->transition, channel_id};
        PGresult *st = NULL;
        rc = rp_pg_exec_idempotent(c->pg, state_sql, 2, sp, &st, &err);
        if (rc != RP_OK)
            return db_failed(rc, &err, "reading a notification");
        int sending = PQntuples(st) > 0 && strcmp(PQgetvalue(st, 0, 0), "sending") == 0;
        long wait_ms = sending ? atol(PQgetvalue(st, 0, 1)) + 200 : 0;
        PQclear(st);
        if (!sending) {
            count(a, ckind, "skipped"); /* already sent, failed or muted: a redelivery */
            return RP_OK;
        }
        /* claimed by a copy that may have died mid-send: look again once its claim ends */
        count(a, ckind, "deferred");
        return schedule_retry(j, channel_id, wait_ms);
    }
    char nid[40];
    snprintf(nid, sizeof(nid), "%s", PQgetvalue(claim, 0, 0));
    int attempt = atoi(PQgetvalue(claim, 0, 1));
    char attempt_s[16];
    snprintf(attempt_s, sizeof(attempt_s), "%d", attempt);
    PQclear(claim);

    struct rp_alert_outcome out = {0};
    char problem[300] = "";
    bson_error_t be;
    bson_t *config = bson_new_from_json((const uint8_t *)PQgetvalue(chans, row, 3), -1, &be);
    bson_t *secrets =
        config ? open_secrets(a, PQgetvalue(chans, row, 4), problem, sizeof(problem)) : NULL;
    if (!config)
        snprintf(problem, sizeof(problem), "the channel's stored config is not valid JSON");
    if (!config || !secrets) {
        out.permanent = 1;
        snprintf(out.detail, sizeof(out.detail), "%s", problem);
    } else {
        struct rp_alert_channel ch = {.id = channel_id,
                                      .name = PQgetvalue(chans, row, 1),
                                      .kind = ckind,
                                      .config = config,
                                      .secrets = secrets};
        j->msg.notification_id = nid;
        long long t0 = al_now_ms();
        a->def.send(a->def.ctx, &j->msg, &ch, &out);
        rp_series_observe(rp_metric_labels(a->m_send_seconds, ckind),
                          (double)(al_now_ms() - t0) / 1000.0);
    }
    if (config)
        bson_destroy(config);
    if (secrets) {
        bson_destroy(secrets); /* libbson has no secure free; the buffer is short-lived */
    }
    out.detail[sizeof(out.detail) - 1] = '\0';

    if (out.skipped) {
        const char *p[] = {nid, attempt_s, out.detail};
        rc = rp_pg_exec_idempotent(c->pg, skipped_sql, 3, p, NULL, &err);
        count(a, ckind, "muted");
        return rc == RP_OK ? RP_OK : db_failed(rc, &err, "recording a skipped notification");
    }
    if (out.ok) {
        const char *p[] = {nid, attempt_s, out.detail};
        rc = rp_pg_exec_idempotent(c->pg, sent_sql, 3, p, NULL, &err);
        count(a, ckind, "sent");
        rp_info("alert %s of transition %s sent to %s channel %s (try %d): %s", tkind,
                j->transition, ckind, channel_id, attempt, out.detail);
        /* not recorded (the database went away): the claim expires and it is sent again */
        return rc == RP_OK ? RP_OK : db_failed(rc, &err, "recording a sent notification");
    }
    int last = out.permanent || attempt >= a->cfg.max_attempts || strcmp(tkind, "test") == 0;
    if (last) {
        char *reason =
            out.permanent || strcmp(tkind, "test") == 0
                ? rp_xasprintf("%s", out.detail)
                : rp_xasprintf("gave up after %d tries; the last: %s", attempt, out.detail);
        const char *p[] = {nid, attempt_s, reason, out.detail};
        rc = rp_pg_exec_idempotent(c->pg, failed_sql, 4, p, NULL, &err);
        count(a, ckind, "failed");
        rp_warn("alert %s of transition %s to %s channel %s failed for good (try %d): %s", tkind,
                j->transition, ckind, channel_id, attempt, reason);
        free(reason);
        return rc == RP_OK ? RP_OK : db_failed(rc, &err, "recording a failed notification");
    }
    long delay = rp_alert_backoff_ms(a->cfg.retry_base_ms, a->cfg.retry_max_ms, attempt);
    char *reason =
        rp_xasprintf("try %d failed, next in %.1f s: %s", attempt, delay / 1000.0, out.detail);
    const char *p[] = {nid, attempt_s, reason, out.detail};
    rc = rp_pg_exec_idempotent(c->pg, retrying_sql, 4, p, NULL, &err);
    free(reason);
    if (rc != RP_OK)
        return db_failed(rc, &err, "recording a notification to retry");
    count(a, ckind, "retry");
    rp_info("alert %s of transition %s to %s channel %s: try %d failed (%s); next try in %ld ms",
            tkind, j->transition, ckind, channel_id, attempt, out.detail, delay);
    return schedule_retry(j, channel_id, delay);
}

static int uuid_ok(const char *s)
{
    if (!s || strlen(s) != 36)
        return 0;
    for (int i = 0; i < 36; i++) {
        char ch = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (ch != '-')
                return 0;
        } else if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') ||
                     (ch >= 'A' && ch <= 'F'))) {
            return 0;
        }
    }
    return 1;
}

static int parse_message(const struct rp_amqp_delivery *d, struct job *j)
{
    bson_error_t be;
    bson_t *doc = bson_new_from_json((const uint8_t *)d->body, (ssize_t)d->len, &be);
    if (!doc)
        return RP_EINVAL;
    bson_iter_t it;
    int ok = 0;
    if (bson_iter_init_find(&it, doc, "transition_id") && BSON_ITER_HOLDS_UTF8(&it) &&
        uuid_ok(bson_iter_utf8(&it, NULL))) {
        snprintf(j->transition, sizeof(j->transition), "%s", bson_iter_utf8(&it, NULL));
        ok = 1;
    }
    if (ok && bson_iter_init_find(&it, doc, "channel_id")) {
        if (BSON_ITER_HOLDS_UTF8(&it) && uuid_ok(bson_iter_utf8(&it, NULL)))
            snprintf(j->filter_channel, sizeof(j->filter_channel), "%s", bson_iter_utf8(&it, NULL));
        else
            ok = 0;
    }
    bson_destroy(doc);
    return ok ? RP_OK : RP_EINVAL;
}

static void fill_msg(struct job *j)
{
    struct rp_alert *a = j->c->a;
    PGresult *r = j->ctx;
    struct rp_alert_msg *m = &j->msg;
    const char *base = a->cfg.public_url ? a->cfg.public_url : "";
    size_t bl = strlen(base);
    while (bl > 0 && base[bl - 1] == '/')
        bl--;
    m->kind = val(r, C_KIND);
    m->transition_id = j->transition;
    m->project_id = val(r, C_PROJECT);
    m->project_slug = val(r, C_SLUG);
    m->project_name = val(r, C_PNAME);
    m->incident_id = val(r, C_INCIDENT);
    m->occurred_at = val(r, C_OCCURRED);
    m->run_id = val(r, C_RUN);
    m->test_id = val(r, C_TEST);
    m->test_name = val(r, C_TNAME);
    m->location = val(r, C_LOCATION);
    m->rule_name = val(r, C_RULE);
    m->failing_since = val(r, C_SINCE);
    m->failure = val(r, C_FAILURE);
    m->failing_for_s = val(r, C_FOR_S) ? atoll(val(r, C_FOR_S)) : 0;
    m->reminder_no = strcmp(m->kind, "reminder") == 0 ? atoi(val(r, C_SEQ)) : 0;
    m->requested_by = val(r, C_REQUESTER);
    if (m->incident_id)
        snprintf(j->dedup, sizeof(j->dedup), "rampart-%s", m->incident_id);
    else
        snprintf(j->dedup, sizeof(j->dedup), "rampart-test-%s", j->transition);
    m->dedup_key = j->dedup;
    if (m->run_id) {
        snprintf(j->run_url, sizeof(j->run_url), "%.*s/app/projects/%s/runs/%s", (int)bl, base,
                 m->project_id, m->run_id);
        m->run_url = j->run_url;
    }
    if (m->test_id) {
        snprintf(j->test_url, sizeof(j->test_url), "%.*s/app/projects/%s/tests/%s", (int)bl, base,
                 m->project_id, m->test_id);
        m->test_url = j->test_url;
    }
}

int al_deliver(struct al_conn *c, const struct rp_amqp_delivery *d)
{
    struct rp_alert *a = c->a;
    struct job j = {.c = c};
    rp_series_inc(a->m_events);
    if (parse_message(d, &j) != RP_OK) {
        rp_series_inc(a->m_bad_messages);
        rp_err("alert delivery: dropped a message that is not {\"transition_id\": uuid, "
               "\"channel_id\"?: uuid} (routing key %s, %zu bytes)",
               d->routing_key ? d->routing_key : "?", d->len);
        return RP_OK;
    }
    struct rp_error err = {0};
    const char *p1[] = {j.transition};
    int rc = rp_pg_exec_idempotent(c->pg, ctx_sql, 1, p1, &j.ctx, &err);
    if (rc != RP_OK)
        return db_failed(rc, &err, "reading the transition") == RP_EAGAIN ? RP_EAGAIN : RP_OK;
    if (PQntuples(j.ctx) == 0) {
        /* deleted with its project, rule or test since; or another installation's event */
        rp_info("alert delivery: transition %s does not exist (deleted since?): nothing to send",
                j.transition);
        PQclear(j.ctx);
        return RP_OK;
    }
    fill_msg(&j);

    /* the channels: the rule's (or the tested one), of this service's kinds, enabled */
    struct rp_buf kinds, ids;
    rp_buf_init(&kinds, 0);
    rp_buf_init(&ids, 0);
    (void)rp_buf_append(&kinds, "{", 1);
    for (size_t i = 0; a->def.kinds[i]; i++) {
        if (i)
            (void)rp_buf_append(&kinds, ",", 1);
        (void)rp_buf_append(&kinds, a->def.kinds[i], strlen(a->def.kinds[i]));
    }
    (void)rp_buf_append(&kinds, "}\0", 2);
    const char *tested = val(j.ctx, C_CHANNEL);
    if (tested) {
        char *one = rp_xasprintf("{%s}", tested);
        (void)rp_buf_append(&ids, one, strlen(one) + 1);
        free(one);
    } else {
        const char *list = val(j.ctx, C_CHANNELS);
        (void)rp_buf_append(&ids, list ? list : "{}", strlen(list ? list : "{}") + 1);
    }
    const char *p2[] = {val(j.ctx, C_PROJECT), ids.data, kinds.data,
                        j.filter_channel[0] ? j.filter_channel : NULL};
    PGresult *chans = NULL;
    rc = rp_pg_exec_idempotent(c->pg, channels_sql, 4, p2, &chans, &err);
    rp_buf_cleanup(&kinds);
    rp_buf_cleanup(&ids);
    if (rc != RP_OK) {
        PQclear(j.ctx);
        return db_failed(rc, &err, "reading the channels") == RP_EAGAIN ? RP_EAGAIN : RP_OK;
    }
    int result = RP_OK;
    for (int i = 0; i < PQntuples(chans) && result == RP_OK; i++) {
        rc = one_channel(&j, chans, i);
        if (rc == RP_EAGAIN)
            result = RP_EAGAIN; /* the rest waits for the redelivery; done ones are skipped */
    }
    PQclear(chans);
    PQclear(j.ctx);
    return result;
}
