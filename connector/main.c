/* rampart-connector: delivers incident notifications to outside systems (webhook, Slack,
 * Mattermost, Microsoft Teams, Discord, PagerDuty, Opsgenie, status pages) in N copies. main.c
 * holds the settings and the wiring: the alert engine (common/src/alert) consumes
 * `rampart.connector`, keeps the ledger and retries; the senders are send.c and kinds/. The
 * service skeleton (common/src/service.c) serves /healthz /readyz /metrics and drains on
 * SIGTERM. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "connector.h"
#include "rampart/amqp.h"
#include "rampart/log.h"
#include "rampart/service.h"

static char *pg_url;
static char *migrations_dir;
static char *amqp_urls;
static struct rp_alert_config alert_cfg;
static char *pagerduty_url;
static char *opsgenie_url_us;
static char *opsgenie_url_eu;

static const struct rp_setting settings[] = {
    RP_SETTING_PG_URL(&pg_url),
    RP_SETTING_MIGRATIONS_DIR(&migrations_dir),
    RP_SETTING_AMQP_URLS(&amqp_urls),
    RP_ALERT_SETTINGS(alert_cfg),
    {"RAMPART_PAGERDUTY_URL", RP_SET_STRING, "https://events.pagerduty.com/v2/enqueue",
     "where PagerDuty channels send their events (Events API v2 enqueue URL; change for tests "
     "or a proxy)",
     &pagerduty_url, 0, 0, NULL, 0},
    {"RAMPART_OPSGENIE_URL_US", RP_SET_STRING, "https://api.opsgenie.com",
     "the Opsgenie API base of channels in region us", &opsgenie_url_us, 0, 0, NULL, 0},
    {"RAMPART_OPSGENIE_URL_EU", RP_SET_STRING, "https://api.eu.opsgenie.com",
     "the Opsgenie API base of channels in region eu", &opsgenie_url_eu, 0, 0, NULL, 0},
};

static const struct rp_service_def def = {
    .name = "connector",
    .summary = "rampart-connector delivers incident notifications to outside systems (webhook, "
               "Slack, Mattermost, Microsoft Teams, Discord, PagerDuty, Opsgenie, status pages) "
               "with retry and back-off. Run several copies.",
    .default_port = 9104,
    .settings = settings,
    .n_settings = sizeof(settings) / sizeof(settings[0]),
};

/* An http(s) URL setting, its trailing slashes dropped; 0 if it is not one. */
static int http_setting(const char *name, char *url)
{
    size_t n = strlen(url);
    while (n > 0 && url[n - 1] == '/')
        url[--n] = '\0';
    if ((strncasecmp(url, "http://", 7) == 0 && n > 7) ||
        (strncasecmp(url, "https://", 8) == 0 && n > 8))
        return 1;
    rp_log(RP_LOG_FATAL, NULL, "%s must be an http:// or https:// URL", name);
    return 0;
}

int main(int argc, char **argv)
{
    struct rp_service *svc;
    struct rp_alert *alert = NULL;
    struct rp_error err;
    int code;
    if (rp_service_open(&def, argc, argv, &svc, &code) != RP_OK)
        return code;
    if (!http_setting("RAMPART_PAGERDUTY_URL", pagerduty_url) ||
        !http_setting("RAMPART_OPSGENIE_URL_US", opsgenie_url_us) ||
        !http_setting("RAMPART_OPSGENIE_URL_EU", opsgenie_url_eu)) {
        rp_service_close(svc);
        return 1;
    }
    CURLcode crc = curl_global_init(CURL_GLOBAL_DEFAULT); /* before any thread */
    if (crc != CURLE_OK) {
        rp_log(RP_LOG_FATAL, NULL, "curl_global_init: %s", curl_easy_strerror(crc));
        rp_service_close(svc);
        return 1;
    }
    struct cnct_ctx ctx = {
        .timeout_ms = alert_cfg.send_timeout_ms,
        .pagerduty_url = pagerduty_url,
        .opsgenie_url_us = opsgenie_url_us,
        .opsgenie_url_eu = opsgenie_url_eu,
    };
    const struct rp_alert_def adef = {
        .queue = RP_AMQP_CONNECTOR_QUEUE,
        .kinds = cnct_kind_names(),
        .send = cnct_send,
        .ctx = &ctx,
    };
    rp_service_use_postgres(svc, &pg_url, &migrations_dir);
    rp_service_use_rabbitmq(svc, &amqp_urls);
    if (rp_alert_start(svc, &adef, &alert_cfg, pg_url, amqp_urls, &alert, &err) != RP_OK) {
        rp_log(RP_LOG_FATAL, NULL, "%s", err.msg);
        rp_service_close(svc);
        curl_global_cleanup();
        return 1;
    }
    code = rp_service_run(svc);
    rp_alert_free(alert);
    rp_service_close(svc);
    curl_global_cleanup();
    return code;
}
