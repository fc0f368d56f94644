/* Channel kind "webhook": the event as a documented JSON object (docs/channels.md) to the URL of
 * config.url with config.method (POST or PUT), the headers of config.headers and
 * secrets.headers, and, when secrets.hmac_secret is set, a Stripe-style signature:
 * X-Rampart-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "connector.h"

/* "t=<t>,v1=<hex>" of `body` under `key` into sig. */
static void sign(const char *key, long long t, const char *body, char *sig, size_t len)
{
    crypto_auth_hmacsha256_state st;
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    char ts[32], hex[2 * sizeof(mac) + 1];
    snprintf(ts, sizeof(ts), "%lld.", t);
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)key, strlen(key));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)ts, strlen(ts));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)body, strlen(body));
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_bin2hex(hex, sizeof(hex), mac, sizeof(mac));
    snprintf(sig, len, "t=%lld,v1=%s", t, hex);
    sodium_memzero(&st, sizeof(st));
}

static int build(const struct cnct_ctx *ctx, const struct rp_alert_msg *m,
                 const struct rp_alert_channel *ch, struct cnct_request *req, char *why,
                 size_t why_len)
{
    const char *url = cnct_config_str(ch->config, "url");
    const char *method = cnct_config_str(ch->config, "method");
    const char *secret_headers = cnct_secret(ch, "headers");
    const char *key = cnct_secret(ch, "hmac_secret");
    bson_t headers;
    if (!url) {
        snprintf(why, why_len, "config.url is missing");
        return RP_EINVAL;
    }
    if (method && strcmp(method, "POST") != 0 && strcmp(method, "PUT") != 0) {
        snprintf(why, why_len, "config.method must be POST or PUT");
        return RP_EINVAL;
    }
    req->method = method && strcmp(method, "PUT") == 0 ? "PUT" : "POST";
    req->url = rp_xstrdup(url);
    req->target = "webhook";
    /* secret headers win over config ones of the same name */
    if (secret_headers && cnct_json_headers(req, secret_headers, "secrets.headers", CNCT_HDR_ADD,
                                            why, why_len) != RP_OK)
        return RP_EINVAL;
    if (cnct_config_doc(ch->config, "headers", &headers) &&
        cnct_doc_headers(req, &headers, "config.headers", CNCT_HDR_DEFAULT, why, why_len) != RP_OK)
        return RP_EINVAL;
    bson_t doc = BSON_INITIALIZER;
    cnct_event_doc(m, &doc);
    req->body = cnct_json(&doc);
    bson_destroy(&doc);
    if (key) {
        char sig[128], ts[32];
        long long t = (long long)time(NULL);
        sign(key, t, req->body, sig, sizeof(sig));
        snprintf(ts, sizeof(ts), "%lld", t);
        if (cnct_header(req, "X-Rampart-Timestamp", ts, CNCT_HDR_FORCE) != RP_OK ||
            cnct_header(req, "X-Rampart-Signature", sig, CNCT_HDR_FORCE) != RP_OK)
            return RP_EINVAL; /* cannot happen: both are plain ASCII */
    }
    return RP_OK;
}

const struct cnct_kind cnct_kind_webhook = {"webhook", build};
