/* Channel kind "statuspage": a status page incident opened and resolved through two configurable
 * HTTP calls, config.open (opened and test notifications) and config.resolve (resolved), each
 * {"method", "url", "body_template"?}, with the headers of secrets.headers (an API key, say).
 * The body is the template rendered with ${name} variables (template.c; docs/channels.md), or
 * without a template the webhook event object. Reminders send nothing: a status page already
 * shows the incident. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "connector.h"

#define BODY_CAP (256 * 1024)

static int build(const struct cnct_ctx *ctx, const struct rp_alert_msg *m,
                 const struct rp_alert_channel *ch, struct cnct_request *req, char *why,
                 size_t why_len)
{
    static const char *const methods[] = {"POST", "PUT", "PATCH", "DELETE"};
    const char *which = strcmp(m->kind, "resolved") == 0 ? "resolve" : "open";
    const char *secret_headers = cnct_secret(ch, "headers");
    bson_t call;
    if (strcmp(m->kind, "reminder") == 0) {
        req->nothing = "reminders are not sent to status pages";
        return RP_OK;
    }
    if (!cnct_config_doc(ch->config, which, &call)) {
        snprintf(why, why_len, "config.%s is missing", which);
        return RP_EINVAL;
    }
    const char *method = cnct_config_str(&call, "method"), *url = cnct_config_str(&call, "url");
    const char *tmpl = cnct_config_str(&call, "body_template");
    req->method = NULL;
    for (size_t i = 0; method && i < sizeof(methods) / sizeof(methods[0]); i++)
        if (strcmp(method, methods[i]) == 0)
            req->method = methods[i];
    if (!req->method || !url) {
        snprintf(why, why_len, "config.%s needs a method (POST, PUT, PATCH or DELETE) and a url",
                 which);
        return RP_EINVAL;
    }
    req->url = rp_xstrdup(url);
    req->target = strcmp(which, "open") == 0 ? "status page open call" : "status page resolve call";
    if (secret_headers && cnct_json_headers(req, secret_headers, "secrets.headers", CNCT_HDR_ADD,
                                            why, why_len) != RP_OK)
        return RP_EINVAL;
    if (!tmpl) {
        bson_t doc = BSON_INITIALIZER;
        cnct_event_doc(m, &doc);
        req->body = cnct_json(&doc);
        bson_destroy(&doc);
        return RP_OK;
    }
    struct cnct_var vars[CNCT_TEMPLATE_VARS];
    char reason[300];
    cnct_template_vars(m, vars);
    if (cnct_template_render(tmpl, vars, CNCT_TEMPLATE_VARS, BODY_CAP, &req->body, reason,
                             sizeof(reason)) != RP_OK) {
        snprintf(why, why_len, "config.%s.body_template: %s", which, reason);
        return RP_EINVAL;
    }
    /* sent as JSON unless the headers say otherwise: then it must be JSON */
    int json = 1;
    for (struct curl_slist *h = req->headers; h; h = h->next)
        if (strncasecmp(h->data, "Content-Type:", 13) == 0)
            json = strstr(h->data + 13, "json") != NULL;
    bson_t check;
    bson_error_t e;
    if (json && *req->body) {
        if (!bson_init_from_json(&check, req->body, -1, &e)) {
            snprintf(why, why_len,
                     "config.%s.body_template does not render a JSON object (%s); values are "
                     "inserted without quotes: write \"name\": \"${test}\"",
                     which, e.message);
            return RP_EINVAL;
        }
        bson_destroy(&check);
    }
    return RP_OK;
}

const struct cnct_kind cnct_kind_statuspage = {"statuspage", build};
