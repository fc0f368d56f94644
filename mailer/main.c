/* rampart-mailer: delivers the e-mail alerts (channels of kind "email") of each project's alert
 * rules (N copies, docs/alerts.md). main.c holds the settings and the wiring: the alert engine
 * (common/src/alert/) consumes `rampart.mailer`, keeps the ledger, retries and drains; this
 * service brings the sender (smtp.c), which composes the mail (compose.c) and hands it to an
 * SMTP server. The service skeleton (common/src/service.c) serves /healthz /readyz /metrics. */
#include <curl/curl.h>

#include "mailer.h"
#include "rampart/alert.h"
#include "rampart/amqp.h"
#include "rampart/log.h"
#include "rampart/service.h"

static char *pg_url;
static char *migrations_dir;
static char *amqp_urls;
static struct rp_alert_config alert_cfg;
static char *smtp_url, *smtp_tls, *smtp_user, *smtp_password, *smtp_from;
static int smtp_verify_tls;

static const struct rp_setting settings[] = {
    RP_SETTING_PG_URL(&pg_url),
    RP_SETTING_MIGRATIONS_DIR(&migrations_dir),
    RP_SETTING_AMQP_URLS(&amqp_urls),
    RP_ALERT_SETTINGS(alert_cfg),
    {"RAMPART_SMTP_URL", RP_SET_STRING, "smtp://127.0.0.1:2525",
     "SMTP server: smtp://host:port (STARTTLS per RAMPART_SMTP_TLS) or smtps://host:port "
     "(implicit TLS, usually port 465); no credentials in the URL",
     &smtp_url, 0, 0, NULL, 0},
    {"RAMPART_SMTP_TLS", RP_SET_ENUM, "auto",
     "STARTTLS on smtp:// URLs: auto (when the server offers it), starttls (required: fail "
     "without it), none",
     &smtp_tls, 0, 0, "auto|starttls|none", 0},
    {"RAMPART_SMTP_VERIFY_TLS", RP_SET_BOOL, "true",
     "check the SMTP server's certificate and host name", &smtp_verify_tls, 0, 0, NULL, 0},
    {"RAMPART_SMTP_USER", RP_SET_STRING, "", "SMTP AUTH user name; empty: no AUTH", &smtp_user, 0,
     0, NULL, 0},
    {"RAMPART_SMTP_PASSWORD", RP_SET_STRING, "", "SMTP AUTH password", &smtp_password, 0, 0, NULL,
     1},
    {"RAMPART_SMTP_FROM", RP_SET_STRING, "Rampart <rampart@localhost>",
     "sender of the alerts: \"Name <address>\" or \"address\" (also the envelope sender)",
     &smtp_from, 0, 0, NULL, 0},
};

static const struct rp_service_def def = {
    .name = "mailer",
    .summary = "rampart-mailer sends the e-mail alerts of each project's alert rules over SMTP: "
               "one mail per incident transition and e-mail channel (failing, recovered, "
               "reminder, test), with a plain-text and an HTML part saying what failed, where, "
               "since when, and linking to the run. Failed sends are retried with back-off; a "
               "redelivered event sends nothing twice. Run several copies.",
    .default_port = 9103,
    .settings = settings,
    .n_settings = sizeof(settings) / sizeof(settings[0]),
};

int main(int argc, char **argv)
{
    struct rp_service *svc;
    int code;
    if (rp_service_open(&def, argc, argv, &svc, &code) != RP_OK)
        return code;
    struct mail_smtp smtp = {
        .url = smtp_url,
        .tls = smtp_tls,
        .verify_tls = smtp_verify_tls,
        .user = smtp_user,
        .password = smtp_password,
        .from = smtp_from,
        .timeout_ms = alert_cfg.send_timeout_ms,
    };
    struct rp_error e;
    if (mail_smtp_check(&smtp, &e) != RP_OK) {
        rp_log(RP_LOG_FATAL, NULL, "%s", e.msg);
        rp_service_close(svc);
        return 2;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) { /* before the engine's threads */
        rp_log(RP_LOG_FATAL, NULL, "curl_global_init failed");
        rp_service_close(svc);
        return 1;
    }
    rp_service_use_postgres(svc, &pg_url, &migrations_dir);
    rp_service_use_rabbitmq(svc, &amqp_urls);
    static const char *const kinds[] = {"email", NULL};
    const struct rp_alert_def adef = {
        .queue = RP_AMQP_MAILER_QUEUE,
        .kinds = kinds,
        .send = mail_send,
        .ctx = &smtp,
    };
    struct rp_alert *alert = NULL;
    if (rp_alert_start(svc, &adef, &alert_cfg, pg_url, amqp_urls, &alert, &e) != RP_OK) {
        rp_log(RP_LOG_FATAL, NULL, "%s", e.msg);
        rp_service_close(svc);
        curl_global_cleanup();
        return 1;
    }
    rp_info("sending e-mail through %s (TLS %s%s%s), from %s", smtp_url, smtp_tls,
            smtp_verify_tls ? "" : ", certificate not verified", *smtp_user ? ", with AUTH" : "",
            smtp_from);
    code = rp_service_run(svc);
    rp_alert_free(alert);
    rp_service_close(svc);
    curl_global_cleanup();
    return code;
}
