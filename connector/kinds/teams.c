/* Channel kind "teams": Microsoft Teams through a Workflows (Power Automate) webhook,
 * secrets.webhook_url (a secret: outcomes say "teams webhook"). The Office 365 connectors and
 * their MessageCard are retired, so this sends what the "When a Teams webhook request is
 * received" flow expects: {"type": "message", "attachments": [an Adaptive Card 1.4]} with a
 * coloured title, a FactSet, the failure in monospace and an Open URL action to the run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connector.h"

static const char *card_color(const char *kind)
{
    if (strcmp(kind, "opened") == 0)
        return "Attention";
    if (strcmp(kind, "resolved") == 0)
        return "Good";
    if (strcmp(kind, "reminder") == 0)
        return "Warning";
    return "Accent";
}

static void text_block(bson_t *body, unsigned *n, const char *text, int title, const char *color)
{
    char key[16];
    bson_t t;
    snprintf(key, sizeof(key), "%u", (*n)++);
    bson_append_document_begin(body, key, -1, &t);
    cnct_append_str(&t, "type", "TextBlock");
    cnct_append_cut(&t, "text", text, title ? 500 : 4000);
    bson_append_bool(&t, "wrap", -1, true);
    if (title) {
        cnct_append_str(&t, "size", "Large");
        cnct_append_str(&t, "weight", "Bolder");
        cnct_append_str(&t, "color", color);
    } else {
        cnct_append_str(&t, "fontType", "Monospace");
    }
    bson_append_document_end(body, &t);
}

static void fact(bson_t *facts, unsigned *n, const char *title, const char *value)
{
    if (!value)
        return;
    char key[16];
    bson_t f;
    snprintf(key, sizeof(key), "%u", (*n)++);
    bson_append_document_begin(facts, key, -1, &f);
    cnct_append_str(&f, "title", title);
    cnct_append_cut(&f, "value", value, 500);
    bson_append_document_end(facts, &f);
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
    req->target = "teams webhook";
    char *line = cnct_headline(m), *full = rp_xasprintf("%s %s", cnct_emoji(m->kind), line), d[64];
    const char *link = m->run_url ? m->run_url : m->test_url;
    unsigned nb = 0, nf = 0;
    bson_t doc = BSON_INITIALIZER, atts, a, card, body, fb, facts, actions, act;
    cnct_append_str(&doc, "type", "message");
    bson_append_array_begin(&doc, "attachments", -1, &atts);
    bson_append_document_begin(&atts, "0", -1, &a);
    cnct_append_str(&a, "contentType", "application/vnd.microsoft.card.adaptive");
    bson_append_null(&a, "contentUrl", -1);
    bson_append_document_begin(&a, "content", -1, &card);
    cnct_append_str(&card, "$schema", "http://adaptivecards.io/schemas/adaptive-card.json");
    cnct_append_str(&card, "type", "AdaptiveCard");
    cnct_append_str(&card, "version", "1.4");
    bson_append_array_begin(&card, "body", -1, &body);
    text_block(&body, &nb, full, 1, card_color(m->kind));
    char key[16];
    snprintf(key, sizeof(key), "%u", nb++);
    bson_append_document_begin(&body, key, -1, &fb);
    cnct_append_str(&fb, "type", "FactSet");
    bson_append_array_begin(&fb, "facts", -1, &facts);
    fact(&facts, &nf, "Project", m->project_name);
    fact(&facts, &nf, "Test", m->test_name);
    fact(&facts, &nf, "Location", m->location);
    fact(&facts, &nf, "Failing since", m->failing_since);
    cnct_duration(m->failing_for_s, d, sizeof(d));
    if (strcmp(m->kind, "resolved") == 0)
        fact(&facts, &nf, "Failed for", d);
    else if (strcmp(m->kind, "reminder") == 0)
        fact(&facts, &nf, "Failing for", d);
    fact(&facts, &nf, "Rule", m->rule_name);
    fact(&facts, &nf, "Requested by", m->requested_by);
    fact(&facts, &nf, "Event", cnct_event_name(m->kind));
    bson_append_array_end(&fb, &facts);
    bson_append_document_end(&body, &fb);
    if (m->failure && strcmp(m->kind, "resolved") != 0)
        text_block(&body, &nb, m->failure, 0, NULL);
    bson_append_array_end(&card, &body);
    if (link) {
        bson_append_array_begin(&card, "actions", -1, &actions);
        bson_append_document_begin(&actions, "0", -1, &act);
        cnct_append_str(&act, "type", "Action.OpenUrl");
        cnct_append_str(&act, "title", m->run_url ? "View run" : "View test");
        cnct_append_str(&act, "url", link);
        bson_append_document_end(&actions, &act);
        bson_append_array_end(&card, &actions);
    }
    bson_append_document_end(&a, &card);
    bson_append_document_end(&atts, &a);
    bson_append_array_end(&doc, &atts);
    req->body = cnct_json(&doc);
    bson_destroy(&doc);
    free(line);
    free(full);
    return RP_OK;
}

const struct cnct_kind cnct_kind_teams = {"teams", build};
