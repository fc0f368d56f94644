/* Channel kind "discord": a Discord webhook (secrets.webhook_url, a secret: outcomes say
 * "discord webhook"). A short "content" line and one embed: the headline as title linked to the
 * run, the failure in a code block as description, the colour of the transition, fields and the
 * transition's time. Discord's limits are kept by cutting on character boundaries (content
 * 2000, title 256, description 4096, field name 256 and value 1024, 6000 in all), and
 * "allowed_mentions" is empty so a test named "@everyone" pings no one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connector.h"

static void field(bson_t *fields, unsigned *n, const char *name, const char *value)
{
    if (!value || *n >= 25)
        return;
    char key[16];
    bson_t f;
    snprintf(key, sizeof(key), "%u", (*n)++);
    bson_append_document_begin(fields, key, -1, &f);
    cnct_append_str(&f, "name", name);
    cnct_append_cut(&f, "value", value, 200); /* 7 fields x (13 + 200) + 4096 + 256 < 6000 */
    bson_append_bool(&f, "inline", -1, true);
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
    req->target = "discord webhook";
    char *line = cnct_headline(m), *full = rp_xasprintf("%s %s", cnct_emoji(m->kind), line), d[64];
    const char *link = m->run_url ? m->run_url : m->test_url;
    unsigned n = 0;
    bson_t doc = BSON_INITIALIZER, embeds, e, fields, am, parse;
    cnct_append_cut(&doc, "content", full, 2000);
    bson_append_array_begin(&doc, "embeds", -1, &embeds);
    bson_append_document_begin(&embeds, "0", -1, &e);
    cnct_append_cut(&e, "title", line, 256);
    if (m->failure && strcmp(m->kind, "resolved") != 0) {
        char *f = cnct_cut(m->failure, 4096 - 8); /* room for the fences */
        for (char *p = f; (p = strstr(p, "```"));)
            *p = '\'';
        char *text = rp_xasprintf("```\n%s\n```", f);
        cnct_append_str(&e, "description", text);
        free(f);
        free(text);
    }
    if (link)
        cnct_append_str(&e, "url", link);
    bson_append_int32(&e, "color", -1, (int32_t)cnct_color(m->kind));
    bson_append_array_begin(&e, "fields", -1, &fields);
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
    bson_append_array_end(&e, &fields);
    if (m->occurred_at)
        cnct_append_str(&e, "timestamp", m->occurred_at);
    bson_append_document_end(&embeds, &e);
    bson_append_array_end(&doc, &embeds);
    bson_append_document_begin(&doc, "allowed_mentions", -1, &am);
    bson_append_array_begin(&am, "parse", -1, &parse);
    bson_append_array_end(&am, &parse);
    bson_append_document_end(&doc, &am);
    req->body = cnct_json(&doc);
    bson_destroy(&doc);
    free(line);
    free(full);
    return RP_OK;
}

const struct cnct_kind cnct_kind_discord = {"discord", build};
