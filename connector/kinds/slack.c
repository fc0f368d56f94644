/* Channel kind "slack": a Slack incoming webhook (secrets.webhook_url, itself a secret: outcomes
 * say "slack webhook"). Block Kit message: a header with the emoji of the transition, the
 * project, test, location and times as fields, the failure in a code block and a button to the
 * run; "text" is the notification fallback. User text is mrkdwn-escaped (&, <, >) and cut to
 * Slack's limits (header 150, field 2000, section 3000 characters). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connector.h"

/* `s` cut to `max` characters, then &, < and > escaped (at most 5x longer). Caller frees. */
static char *mrkdwn(const char *s, size_t max)
{
    char *c = cnct_cut(s, max);
    struct rp_buf b;
    rp_buf_init(&b, 0);
    (void)rp_buf_append(&b, "", 0);
    for (const char *p = c; *p; p++) {
        if (*p == '&')
            (void)rp_buf_append(&b, "&amp;", 5);
        else if (*p == '<')
            (void)rp_buf_append(&b, "&lt;", 4);
        else if (*p == '>')
            (void)rp_buf_append(&b, "&gt;", 4);
        else if (*p == '`' && p[1] == '`' && p[2] == '`') /* would close the code block */
            (void)rp_buf_append(&b, "'", 1);
        else
            (void)rp_buf_append(&b, p, 1);
    }
    free(c);
    return b.data;
}

static void text_obj(bson_t *parent, const char *key, const char *type, const char *text)
{
    bson_t t;
    bson_append_document_begin(parent, key, -1, &t);
    cnct_append_str(&t, "type", type);
    cnct_append_str(&t, "text", text);
    if (strcmp(type, "plain_text") == 0)
        bson_append_bool(&t, "emoji", -1, true);
    bson_append_document_end(parent, &t);
}

static void field(bson_t *fields, unsigned *n, const char *title, const char *value)
{
    if (!value || *n >= 10)
        return;
    char key[16], *v = mrkdwn(value, 300), *text = rp_xasprintf("*%s*\n%s", title, v);
    snprintf(key, sizeof(key), "%u", (*n)++);
    text_obj(fields, key, "mrkdwn", text);
    free(v);
    free(text);
}

static int build(const struct cnct_ctx *ctx, const struct rp_alert_msg *m,
                 const struct rp_alert_channel *ch, struct cnct_request *req, char *why,
                 size_t why_len)
{
    const char *url = cnct_secret(ch, "webhook_url");
    if (!url) {
        snprintf(why, why_len, "secrets.webhook_url is missing");
        return RP_EINVAL;
    }
    req->url = rp_xstrdup(url);
    req->target = "slack webhook";
    char *line = cnct_headline(m), *full = rp_xasprintf("%s %s", cnct_emoji(m->kind), line);
    char *fallback = mrkdwn(full, 1000), d[64];
    const char *link = m->run_url ? m->run_url : m->test_url;
    unsigned n = 0, nb = 0;
    char key[16];
    bson_t doc = BSON_INITIALIZER, blocks, b, fields, els, btn;
    cnct_append_str(&doc, "text", fallback);
    bson_append_array_begin(&doc, "blocks", -1, &blocks);

    snprintf(key, sizeof(key), "%u", nb++);
    bson_append_document_begin(&blocks, key, -1, &b);
    cnct_append_str(&b, "type", "header");
    char *header = cnct_cut(full, 150);
    text_obj(&b, "text", "plain_text", header);
    free(header);
    bson_append_document_end(&blocks, &b);

    snprintf(key, sizeof(key), "%u", nb++);
    bson_append_document_begin(&blocks, key, -1, &b);
    cnct_append_str(&b, "type", "section");
    bson_append_array_begin(&b, "fields", -1, &fields);
    field(&fields, &n, "Project", m->project_name);
    field(&fields, &n, "Test", m->test_name);
    field(&fields, &n, "Location", m->location);
    field(&fields, &n, "Failing since", m->failing_since);
    cnct_duration(m->failing_for_s, d, sizeof(d));
    if (strcmp(m->kind, "resolved") == 0)
        field(&fields, &n, "Failed for", d);
    else if (strcmp(m->kind, "reminder") == 0)
        field(&fields, &n, "Failing for", d);
    field(&fields, &n, "Rule", m->rule_name);
    field(&fields, &n, "Requested by", m->requested_by);
    if (n == 0)
        field(&fields, &n, "Event", cnct_event_name(m->kind));
    bson_append_array_end(&b, &fields);
    bson_append_document_end(&blocks, &b);

    if (m->failure && strcmp(m->kind, "resolved") != 0) {
        char *f = mrkdwn(m->failure, 580), *text = rp_xasprintf("```%s```", f);
        snprintf(key, sizeof(key), "%u", nb++);
        bson_append_document_begin(&blocks, key, -1, &b);
        cnct_append_str(&b, "type", "section");
        text_obj(&b, "text", "mrkdwn", text);
        bson_append_document_end(&blocks, &b);
        free(f);
        free(text);
    }
    if (link && strlen(link) <= 3000) {
        snprintf(key, sizeof(key), "%u", nb++);
        bson_append_document_begin(&blocks, key, -1, &b);
        cnct_append_str(&b, "type", "actions");
        bson_append_array_begin(&b, "elements", -1, &els);
        bson_append_document_begin(&els, "0", -1, &btn);
        cnct_append_str(&btn, "type", "button");
        text_obj(&btn, "text", "plain_text", m->run_url ? "View run" : "View test");
        cnct_append_str(&btn, "url", link);
        bson_append_document_end(&els, &btn);
        bson_append_array_end(&b, &els);
        bson_append_document_end(&blocks, &b);
    }
    bson_append_array_end(&doc, &blocks);
    req->body = cnct_json(&doc);
    bson_destroy(&doc);
    free(line);
    free(full);
    free(fallback);
    return RP_OK;
}

const struct cnct_kind cnct_kind_slack = {"slack", build};
