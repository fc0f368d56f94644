/* Channel kind "pagerduty": PagerDuty Events API v2 (RAMPART_PAGERDUTY_URL, by default
 * https://events.pagerduty.com/v2/enqueue) with secrets.routing_key. Opened, reminder and test
 * trigger an alert; resolved resolves it. Every event of one incident carries the same
 * dedup_key (m->dedup_key), so a reminder lands on the open alert and the resolve closes it.
 * PagerDuty answers 202. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connector.h"

static void detail(bson_t *d, const char *key, const char *value)
{
    if (value)
        cnct_append_cut(d, key, value, 4000);
}

static int build(const struct cnct_ctx *ctx, const struct rp_alert_msg *m,
                 const struct rp_alert_channel *ch, struct cnct_request *req, char *why,
                 size_t why_len)
{
    const char *key = cnct_secret(ch, "routing_key");
    const char *severity = cnct_config_str(ch->config, "severity");
    int resolve = strcmp(m->kind, "resolved") == 0;
    if (!key) {
        snprintf(why, why_len, "secrets.routing_key is missing");
        return RP_EINVAL;
    }
    if (!severity)
        severity = "error";
    if (strcmp(severity, "critical") != 0 && strcmp(severity, "error") != 0 &&
        strcmp(severity, "warning") != 0 && strcmp(severity, "info") != 0) {
        snprintf(why, why_len, "config.severity must be critical, error, warning or info");
        return RP_EINVAL;
    }
    if (!m->dedup_key) {
        snprintf(why, why_len, "the notification has no dedup key");
        return RP_EINVAL;
    }
    req->url = rp_xstrdup(ctx->pagerduty_url);
    req->target = "pagerduty events API";
    bson_t doc = BSON_INITIALIZER, p, cd, links, l;
    cnct_append_str(&doc, "routing_key", key);
    cnct_append_str(&doc, "event_action", resolve ? "resolve" : "trigger");
    cnct_append_str(&doc, "dedup_key", m->dedup_key);
    if (!resolve) {
        char *line = cnct_headline(m), dur[64];
        bson_append_document_begin(&doc, "payload", -1, &p);
        cnct_append_cut(&p, "summary", line, 1024);
        cnct_append_cut(&p, "source", m->location ? m->location : "rampart", 255);
        cnct_append_str(&p, "severity", severity);
        if (m->occurred_at)
            cnct_append_str(&p, "timestamp", m->occurred_at);
        if (m->test_name)
            cnct_append_cut(&p, "component", m->test_name, 255);
        if (m->project_name)
            cnct_append_cut(&p, "group", m->project_name, 255);
        cnct_append_str(&p, "class", cnct_event_name(m->kind));
        bson_append_document_begin(&p, "custom_details", -1, &cd);
        detail(&cd, "project", m->project_name);
        detail(&cd, "test", m->test_name);
        detail(&cd, "location", m->location);
        detail(&cd, "rule", m->rule_name);
        detail(&cd, "failure", m->failure);
        detail(&cd, "failing_since", m->failing_since);
        if (strcmp(m->kind, "reminder") == 0) {
            cnct_duration(m->failing_for_s, dur, sizeof(dur));
            detail(&cd, "failing_for", dur);
            bson_append_int32(&cd, "reminder_no", -1, m->reminder_no);
        }
        detail(&cd, "run_url", m->run_url);
        detail(&cd, "test_url", m->test_url);
        detail(&cd, "incident_id", m->incident_id);
        detail(&cd, "notification_id", m->notification_id);
        detail(&cd, "requested_by", m->requested_by);
        bson_append_document_end(&p, &cd);
        bson_append_document_end(&doc, &p);
        cnct_append_str(&doc, "client", "Rampart");
        if (m->test_url)
            cnct_append_str(&doc, "client_url", m->test_url);
        bson_append_array_begin(&doc, "links", -1, &links);
        if (m->run_url) {
            bson_append_document_begin(&links, "0", -1, &l);
            cnct_append_str(&l, "href", m->run_url);
            cnct_append_str(&l, "text", "Run in Rampart");
            bson_append_document_end(&links, &l);
        }
        if (m->test_url) {
            bson_append_document_begin(&links, m->run_url ? "1" : "0", -1, &l);
            cnct_append_str(&l, "href", m->test_url);
            cnct_append_str(&l, "text", "Test in Rampart");
            bson_append_document_end(&links, &l);
        }
        bson_append_array_end(&doc, &links);
        free(line);
    }
    req->body = cnct_json(&doc);
    bson_destroy(&doc);
    return RP_OK;
}

const struct cnct_kind cnct_kind_pagerduty = {"pagerduty", build};
