/* Channel kind "opsgenie": the Opsgenie Alert API with secrets.api_key (header
 * "Authorization: GenieKey <key>"), in the region of config.region (us: RAMPART_OPSGENIE_URL_US,
 * eu: RAMPART_OPSGENIE_URL_EU). Opened, reminder and test create an alert whose alias is
 * m->dedup_key (Opsgenie folds a second create of an open alias into the first: a reminder
 * raises its count); resolved closes the alert of that alias. Opsgenie answers 202. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connector.h"

static void tag(bson_t *tags, unsigned *n, const char *value)
{
    char key[16];
    if (!value || !*value)
        return;
    snprintf(key, sizeof(key), "%u", (*n)++);
    cnct_append_cut(tags, key, value, 50);
}

static void detail(bson_t *d, const char *key, const char *value)
{
    if (value)
        cnct_append_cut(d, key, value, 4000);
}

static int build(const struct cnct_ctx *ctx, const struct rp_alert_msg *m,
                 const struct rp_alert_channel *ch, struct cnct_request *req, char *why,
                 size_t why_len)
{
    const char *key = cnct_secret(ch, "api_key");
    const char *region = cnct_config_str(ch->config, "region");
    const char *priority = cnct_config_str(ch->config, "priority");
    if (!key) {
        snprintf(why, why_len, "secrets.api_key is missing");
        return RP_EINVAL;
    }
    if (region && strcmp(region, "us") != 0 && strcmp(region, "eu") != 0) {
        snprintf(why, why_len, "config.region must be us or eu");
        return RP_EINVAL;
    }
    if (!priority)
        priority = "P3";
    if (strlen(priority) != 2 || priority[0] != 'P' || priority[1] < '1' || priority[1] > '5') {
        snprintf(why, why_len, "config.priority must be P1, P2, P3, P4 or P5");
        return RP_EINVAL;
    }
    if (!m->dedup_key) {
        snprintf(why, why_len, "the notification has no dedup key");
        return RP_EINVAL;
    }
    const char *base =
        region && strcmp(region, "eu") == 0 ? ctx->opsgenie_url_eu : ctx->opsgenie_url_us;
    char *auth = rp_xasprintf("GenieKey %s", key);
    int bad = cnct_header(req, "Authorization", auth, CNCT_HDR_FORCE) != RP_OK;
    free(auth);
    if (bad) {
        snprintf(why, why_len, "secrets.api_key holds a line break");
        return RP_EINVAL;
    }
    req->target = "opsgenie alert API";
    char *line = cnct_headline(m), dur[64];
    bson_t doc = BSON_INITIALIZER, tags, d;
    if (strcmp(m->kind, "resolved") == 0) {
        char *alias = cnct_url_escape(m->dedup_key);
        req->url = rp_xasprintf("%s/v2/alerts/%s/close?identifierType=alias", base, alias);
        free(alias);
        cnct_append_str(&doc, "source", "Rampart");
        cnct_append_cut(&doc, "note", line, 25000);
    } else {
        req->url = rp_xasprintf("%s/v2/alerts", base);
        unsigned n = 0;
        cnct_append_cut(&doc, "message", line, 130);
        cnct_append_cut(&doc, "alias", m->dedup_key, 512);
        char *desc =
            rp_xasprintf("%s%s%s%s%s", line, m->failure ? "\n\n" : "", m->failure ? m->failure : "",
                         m->run_url ? "\n\nRun: " : "", m->run_url ? m->run_url : "");
        cnct_append_cut(&doc, "description", desc, 15000);
        free(desc);
        cnct_append_str(&doc, "priority", priority);
        cnct_append_str(&doc, "source", "Rampart");
        if (m->test_name)
            cnct_append_cut(&doc, "entity", m->test_name, 512);
        bson_append_array_begin(&doc, "tags", -1, &tags);
        tag(&tags, &n, "rampart");
        tag(&tags, &n, m->project_slug);
        tag(&tags, &n, m->location);
        if (strcmp(m->kind, "test") == 0)
            tag(&tags, &n, "test-notification");
        bson_append_array_end(&doc, &tags);
        bson_append_document_begin(&doc, "details", -1, &d);
        detail(&d, "project", m->project_name);
        detail(&d, "test", m->test_name);
        detail(&d, "location", m->location);
        detail(&d, "rule", m->rule_name);
        detail(&d, "failure", m->failure);
        detail(&d, "failing_since", m->failing_since);
        if (strcmp(m->kind, "reminder") == 0) {
            cnct_duration(m->failing_for_s, dur, sizeof(dur));
            detail(&d, "failing_for", dur);
        }
        detail(&d, "run_url", m->run_url);
        detail(&d, "test_url", m->test_url);
        detail(&d, "incident_id", m->incident_id);
        detail(&d, "notification_id", m->notification_id);
        detail(&d, "requested_by", m->requested_by);
        bson_append_document_end(&doc, &d);
    }
    req->body = cnct_json(&doc);
    bson_destroy(&doc);
    free(line);
    return RP_OK;
}

const struct cnct_kind cnct_kind_opsgenie = {"opsgenie", build};
