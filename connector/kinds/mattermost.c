/* Channel kind "mattermost": a Mattermost incoming webhook (secrets.webhook_url, a secret:
 * outcomes say "mattermost webhook"), in its Slack-compatible form: "text" plus one attachment
 * coloured by the transition, titled and linked to the run, the failure in a code block and the
 * project, test, location and times as short fields. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connector.h"

/* Text for a Markdown code block: a ``` inside would close it. Caller frees. */
static char *code(const char *s, size_t max)
{
    char *c = cnct_cut(s, max);
    for (char *p = c; (p = strstr(p, "```"));)
        *p = '\'';
    return c;
}

static void field(bson_t *fields, unsigned *n, const char *title, const char *value)
{
    if (!value)
        return;
    char key[16];
    bson_t f;
    snprintf(key, sizeof(key), "%u", (*n)++);
    bson_append_document_begin(fields, key, -1, &f);
    bson_append_bool(&f, "short", -1, true);
    cnct_append_str(&f, "title", title);
    cnct_append_cut(&f, "value", value, 500);
    bson_append_document_end(fields, &f);
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
    req->target = "mattermost webhook";
    char *line = cnct_headline(m), *full = rp_xasprintf("%s %s", cnct_emoji(m->kind), line);
    char color[8], d[64];
    unsigned n = 0;
    bson_t doc = BSON_INITIALIZER, atts, a, fields;
    snprintf(color, sizeof(color), "#%06X", cnct_color(m->kind));
    cnct_append_cut(&doc, "text", full, 1000);
    bson_append_array_begin(&doc, "attachments", -1, &atts);
    bson_append_document_begin(&atts, "0", -1, &a);
    cnct_append_cut(&a, "fallback", full, 1000);
    cnct_append_str(&a, "color", color);
    cnct_append_cut(&a, "title", line, 500);
    if (m->run_url || m->test_url)
        cnct_append_str(&a, "title_link", m->run_url ? m->run_url : m->test_url);
    if (m->failure && strcmp(m->kind, "resolved") != 0) {
        char *f = code(m->failure, 4000), *text = rp_xasprintf("```\n%s\n```", f);
        cnct_append_str(&a, "text", text);
        free(f);
        free(text);
    }
    bson_append_array_begin(&a, "fields", -1, &fields);
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
    bson_append_array_end(&a, &fields);
    bson_append_document_end(&atts, &a);
    bson_append_array_end(&doc, &atts);
    req->body = cnct_json(&doc);
    bson_destroy(&doc);
    free(line);
    free(full);
    return RP_OK;
}

const struct cnct_kind cnct_kind_mattermost = {"mattermost", build};
