/* Unit tests for rampart-connector's senders (connector/send.c, template.c and kinds/): every kind
 * builds a request for each transition from messages full of quotes, line breaks, markup and
 * non-ASCII text (and NULLs for a test notification) whose JSON parses and carries the documented
 * members; the webhook signature verifies; PagerDuty and Opsgenie keep one key per incident;
 * status-page templates substitute and refuse; limits cut on character boundaries; statuses and
 * libcurl failures are classified; and a loopback HTTP server checks what cnct_send puts on the
 * wire and what it reports, secrets masked. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "connector.h"

#define TRICKY                                                                                     \
    "he said \"hi\"\n\tthen <script>alert('x')</script> & left \\ caf\xc3\xa9 "                    \
    "\xf0\x9f\x94\xb4 \xe6\x97\xa5\xe6\x9c\xac"
#define NOTIF "22222222-2222-4222-8222-222222222222"
#define DEDUP "rampart-33333333-3333-4333-8333-333333333333"
#define RUN_URL                                                                                    \
    "https://rampart.example.com/projects/shop/runs/66666666-6666-4666-8666-666666666666?a=1&b=2"
#define TEST_URL "https://rampart.example.com/projects/shop/tests/55555555"
#define FAILURE  "status: expected 200, got 500\nbody: {\"error\": \"<b>boom</b>\"} ```x```"

static const char *const transitions[] = {"opened", "resolved", "reminder", "test"};

static const struct cnct_ctx ctx = {
    .timeout_ms = 2000,
    .pagerduty_url = "https://events.pagerduty.example/v2/enqueue",
    .opsgenie_url_us = "https://api.opsgenie.example",
    .opsgenie_url_eu = "https://api.eu.opsgenie.example",
};

static struct rp_alert_msg msg(const char *kind)
{
    struct rp_alert_msg m = {
        .kind = kind,
        .transition_id = "11111111-1111-4111-8111-111111111111",
        .notification_id = NOTIF,
        .dedup_key = DEDUP,
        .project_id = "44444444-4444-4444-8444-444444444444",
        .project_slug = "shop",
        .project_name = "Shop \"EU\" <prod> & co",
        .test_id = "55555555-5555-4555-8555-555555555555",
        .test_name = TRICKY,
        .location = "eu-west",
        .rule_name = "Page on-call",
        .incident_id = "33333333-3333-4333-8333-333333333333",
        .failing_since = "2026-11-23T22:40:00Z",
        .occurred_at = "2026-11-23T22:45:00Z",
        .failure = FAILURE,
        .run_id = "66666666-6666-4666-8666-666666666666",
        .run_url = RUN_URL,
        .test_url = TEST_URL,
        .failing_for_s = strcmp(kind, "opened") == 0 ? 0 : 7500,
        .reminder_no = strcmp(kind, "reminder") == 0 ? 3 : 0,
    };
    if (strcmp(kind, "test") == 0) { /* what a test notification has */
        struct rp_alert_msg t = {
            .kind = kind,
            .transition_id = m.transition_id,
            .notification_id = NOTIF,
            .dedup_key = "rampart-test-11111111-1111-4111-8111-111111111111",
            .project_id = m.project_id,
            .project_slug = m.project_slug,
            .project_name = m.project_name,
            .occurred_at = m.occurred_at,
            .requested_by = "ann@example.com",
        };
        return t;
    }
    return m;
}

/* ---- helpers -----------------------------------------------------------------------------------
 */

struct chan {
    bson_t *config, *secrets;
    struct rp_alert_channel ch;
};

static bson_t *parse(const char *json)
{
    bson_error_t e;
    bson_t *b = bson_new_from_json((const uint8_t *)json, -1, &e);
    if (!b)
        fail_msg("not JSON (%s): %s", e.message, json);
    return b;
}

static void chan_init(struct chan *c, const char *kind, const char *config, const char *secrets)
{
    c->config = parse(config);
    c->secrets = parse(secrets);
    c->ch = (struct rp_alert_channel){"77777777-7777-4777-8777-777777777777", "ops", kind,
                                      c->config, c->secrets};
}

static void chan_cleanup(struct chan *c)
{
    bson_destroy(c->config);
    bson_destroy(c->secrets);
}

/* The value of header `name` in `req`, or NULL. */
static const char *header(const struct cnct_request *req, const char *name)
{
    size_t n = strlen(name);
    for (struct curl_slist *h = req->headers; h; h = h->next)
        if (strncasecmp(h->data, name, n) == 0 && h->data[n] == ':')
            return h->data[n + 1] == ' ' ? h->data + n + 2 : h->data + n + 1;
    return NULL;
}

static int count_headers(const struct cnct_request *req, const char *name)
{
    int k = 0;
    size_t n = strlen(name);
    for (struct curl_slist *h = req->headers; h; h = h->next)
        k += strncasecmp(h->data, name, n) == 0 && h->data[n] == ':';
    return k;
}

/* doc at dotted `path` ("blocks.0.text.text"): its string, or NULL when absent or not one. */
static const char *str_at(const bson_t *doc, const char *path)
{
    bson_iter_t it, d;
    if (!bson_iter_init(&it, doc) || !bson_iter_find_descendant(&it, path, &d) ||
        !BSON_ITER_HOLDS_UTF8(&d))
        return NULL;
    return bson_iter_utf8(&d, NULL);
}

static int has(const bson_t *doc, const char *path)
{
    bson_iter_t it, d;
    return bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, path, &d);
}

static int is_null(const bson_t *doc, const char *path)
{
    bson_iter_t it, d;
    return bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, path, &d) &&
           BSON_ITER_HOLDS_NULL(&d);
}

static int64_t int_at(const bson_t *doc, const char *path)
{
    bson_iter_t it, d;
    assert_true(bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, path, &d));
    assert_true(BSON_ITER_HOLDS_INT(&d));
    return bson_iter_as_int64(&d);
}

static uint32_t count_keys(const bson_t *doc)
{
    return bson_count_keys(doc);
}

/* UTF-16 code units of (valid) UTF-8 `s` */
static size_t units(const char *s)
{
    size_t u = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p & 0xc0) != 0x80)
            u += *p >= 0xf0 ? 2 : 1;
    return u;
}

/* Build for `kind` and return the parsed body; the request stays in `req`. */
static bson_t *build(const char *kind, const char *config, const char *secrets,
                     const struct rp_alert_msg *m, struct cnct_request *req)
{
    struct chan c;
    char why[400] = "";
    chan_init(&c, kind, config, secrets);
    int rc = cnct_build(&ctx, m, &c.ch, req, why, sizeof(why));
    chan_cleanup(&c);
    if (rc != RP_OK)
        fail_msg("%s/%s: %s", kind, m->kind, why);
    assert_non_null(req->body);
    return parse(req->body);
}

/* Expect a config error for `kind` whose why contains `expect` and none of `secret`. */
static void build_fails(const char *kind, const char *config, const char *secrets,
                        const char *transition, const char *expect, const char *secret)
{
    struct chan c;
    struct cnct_request req;
    char why[400] = "";
    struct rp_alert_msg m = msg(transition);
    chan_init(&c, kind, config, secrets);
    assert_int_equal(cnct_build(&ctx, &m, &c.ch, &req, why, sizeof(why)), RP_EINVAL);
    if (!strstr(why, expect))
        fail_msg("%s: why \"%s\" does not say \"%s\"", kind, why, expect);
    if (secret)
        assert_null(strstr(why, secret));
    cnct_request_cleanup(&req);
    chan_cleanup(&c);
}

/* A working config and secrets of each kind. */
static const struct {
    const char *kind, *config, *secrets;
} good[] = {
    {"webhook", "{\"url\": \"https://hooks.example.com/rampart\"}", "{}"},
    {"slack", "{}", "{\"webhook_url\": \"https://hooks.slack.com/services/T0/B0/SLACKSECRET\"}"},
    {"mattermost", "{}", "{\"webhook_url\": \"https://mm.example.com/hooks/MMSECRET\"}"},
    {"teams", "{}", "{\"webhook_url\": \"https://prod.logic.azure.com/workflows/TEAMSSECRET\"}"},
    {"discord", "{}", "{\"webhook_url\": \"https://discord.com/api/webhooks/1/DISCORDSECRET\"}"},
    {"pagerduty", "{}", "{\"routing_key\": \"R0123456789abcdef0123456789abcde\"}"},
    {"opsgenie", "{}", "{\"api_key\": \"OPSGENIE-KEY-0001\"}"},
    {"statuspage",
     "{\"open\": {\"method\": \"POST\", \"url\": \"https://status.example.com/open\", "
     "\"body_template\": \"{\\\"name\\\": \\\"${test}\\\"}\"}, \"resolve\": {\"method\": "
     "\"PATCH\", \"url\": \"https://status.example.com/resolve\"}}",
     "{}"},
};

/* ---- every kind ---------------------------------------------------------------------------- */

static void test_every_kind_every_transition(void **state)
{
    const char *const *names = cnct_kind_names();
    size_t n = 0;
    while (names[n])
        n++;
    assert_int_equal(n, sizeof(good) / sizeof(good[0]));
    for (size_t k = 0; k < n; k++) {
        assert_string_equal(names[k], good[k].kind);
        assert_ptr_equal(cnct_find_kind(good[k].kind)->name, names[k]);
        for (size_t t = 0; t < 4; t++) {
            struct rp_alert_msg m = msg(transitions[t]);
            struct cnct_request req;
            if (strcmp(good[k].kind, "statuspage") == 0 && strcmp(transitions[t], "reminder") == 0)
                continue; /* sends nothing: test_statuspage */
            bson_t *b = build(good[k].kind, good[k].config, good[k].secrets, &m, &req);
            assert_string_equal(header(&req, "User-Agent"), "Rampart/" RP_VERSION);
            assert_string_equal(header(&req, "X-Rampart-Notification"), NOTIF);
            assert_int_equal(count_headers(&req, "User-Agent"), 1);
            assert_string_equal(header(&req, "Content-Type"), "application/json");
            assert_non_null(req.url);
            assert_true(strncmp(req.url, "https://", 8) == 0);
            assert_non_null(req.target);
            for (const char *p = req.body; *p; p++) /* JSON escapes every control character */
                assert_true((unsigned char)*p >= 0x20);
            bson_destroy(b);
            cnct_request_cleanup(&req);
        }
    }
    assert_null(cnct_find_kind("email"));
    assert_null(cnct_find_kind(NULL));
}

/* ---- webhook --------------------------------------------------------------------------------- */

static void test_webhook_body(void **state)
{
    static const char cfg[] = "{\"url\": \"https://hooks.example.com/x\", \"method\": \"PUT\", "
                              "\"headers\": {\"X-Team\": \"sre\", \"X-Env\": \"config\"}}";
    static const char sec[] = "{\"headers\": \"{\\\"Authorization\\\": \\\"Bearer tok-1\\\", "
                              "\\\"X-Env\\\": \\\"secret\\\"}\"}";
    for (size_t t = 0; t < 4; t++) {
        struct rp_alert_msg m = msg(transitions[t]);
        struct cnct_request req;
        bson_t *b = build("webhook", cfg, sec, &m, &req);
        assert_string_equal(req.method, "PUT");
        assert_string_equal(req.url, "https://hooks.example.com/x");
        assert_string_equal(header(&req, "X-Team"), "sre");
        assert_string_equal(header(&req, "Authorization"), "Bearer tok-1");
        assert_string_equal(header(&req, "X-Env"), "secret"); /* the secret one wins */
        assert_int_equal(count_headers(&req, "X-Env"), 1);
        assert_null(header(&req, "X-Rampart-Signature"));
        char event[40];
        snprintf(event, sizeof(event), "incident.%s", transitions[t]);
        assert_string_equal(str_at(b, "event"), event);
        assert_string_equal(str_at(b, "notification_id"), NOTIF);
        assert_string_equal(str_at(b, "transition_id"), m.transition_id);
        assert_string_equal(str_at(b, "dedup_key"), m.dedup_key);
        assert_string_equal(str_at(b, "project.id"), m.project_id);
        assert_string_equal(str_at(b, "project.slug"), "shop");
        assert_string_equal(str_at(b, "project.name"), "Shop \"EU\" <prod> & co");
        assert_string_equal(str_at(b, "occurred_at"), m.occurred_at);
        if (strcmp(m.kind, "test") == 0) {
            assert_true(is_null(b, "test") && is_null(b, "run") && is_null(b, "incident_id"));
            assert_true(is_null(b, "location") && is_null(b, "failure") && is_null(b, "rule"));
            assert_true(is_null(b, "failing_since") && is_null(b, "test_url"));
            assert_true(is_null(b, "failing_for_s") && is_null(b, "reminder_no"));
            assert_string_equal(str_at(b, "requested_by"), "ann@example.com");
        } else {
            assert_string_equal(str_at(b, "test.name"), TRICKY); /* exact round trip */
            assert_string_equal(str_at(b, "test.id"), m.test_id);
            assert_string_equal(str_at(b, "incident_id"), m.incident_id);
            assert_string_equal(str_at(b, "location"), "eu-west");
            assert_string_equal(str_at(b, "rule"), "Page on-call");
            assert_string_equal(str_at(b, "failing_since"), m.failing_since);
            assert_string_equal(str_at(b, "failure"), FAILURE);
            assert_string_equal(str_at(b, "run.id"), m.run_id);
            assert_string_equal(str_at(b, "run.url"), RUN_URL);
            assert_string_equal(str_at(b, "test_url"), TEST_URL);
            assert_true(is_null(b, "requested_by"));
            if (strcmp(m.kind, "opened") == 0)
                assert_true(is_null(b, "failing_for_s"));
            else
                assert_int_equal(int_at(b, "failing_for_s"), 7500);
            if (strcmp(m.kind, "reminder") == 0)
                assert_int_equal(int_at(b, "reminder_no"), 3);
            else
                assert_true(is_null(b, "reminder_no"));
        }
        bson_destroy(b);
        cnct_request_cleanup(&req);
    }
}

static void test_webhook_signature(void **state)
{
    static const char key[] = "whsec_0123456789";
    struct rp_alert_msg m = msg("opened");
    struct cnct_request req;
    bson_t *b = build("webhook", "{\"url\": \"http://127.0.0.1:9/h\"}",
                      "{\"hmac_secret\": \"whsec_0123456789\"}", &m, &req);
    assert_string_equal(req.method, "POST");
    const char *sig = header(&req, "X-Rampart-Signature"),
               *ts = header(&req, "X-Rampart-Timestamp");
    assert_non_null(sig);
    assert_non_null(ts);
    long long t = 0;
    char hex[65] = "";
    assert_int_equal(sscanf(sig, "t=%lld,v1=%64[0-9a-f]", &t, hex), 2);
    assert_int_equal(strlen(hex), 64);
    char tstr[32];
    snprintf(tstr, sizeof(tstr), "%lld", t);
    assert_string_equal(tstr, ts);
    assert_true(llabs(t - (long long)time(NULL)) < 60);
    /* recompute as a receiver would: HMAC-SHA256(key, "<t>.<body>") */
    char *signed_text = rp_xasprintf("%s.%s", ts, req.body);
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    char want[65];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)key, strlen(key));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)signed_text, strlen(signed_text));
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_bin2hex(want, sizeof(want), mac, sizeof(mac));
    assert_string_equal(hex, want);
    /* another key does not verify */
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)"whsec_other", 11);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)signed_text, strlen(signed_text));
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_bin2hex(want, sizeof(want), mac, sizeof(mac));
    assert_string_not_equal(hex, want);
    assert_null(strstr(req.body, key));
    free(signed_text);
    bson_destroy(b);
    cnct_request_cleanup(&req);
}

static void test_webhook_errors(void **state)
{
    build_fails("webhook", "{}", "{}", "opened", "config.url is missing", NULL);
    build_fails("webhook", "{\"url\": \"https://h.example.com\", \"method\": \"GET\"}", "{}",
                "opened", "config.method", NULL);
    build_fails("webhook", "{\"url\": \"https://h.example.com\"}",
                "{\"headers\": \"not json TOPSECRET\"}", "opened", "secrets.headers", "TOPSECRET");
    build_fails("webhook", "{\"url\": \"https://h.example.com\"}",
                "{\"headers\": \"{\\\"X-A\\\": \\\"TOPSECRET\\\\r\\\\nX-Evil: 1\\\"}\"}", "opened",
                "line break", "TOPSECRET");
    build_fails("webhook",
                "{\"url\": \"https://h.example.com\", \"headers\": {\"Bad Name\": \"v\"}}", "{}",
                "opened", "config.headers", NULL);
    build_fails("email", "{}", "{}", "opened", "does not deliver", NULL);
}

/* ---- chat kinds --------------------------------------------------------------------------------
 */

static void check_slack(const char *transition, const char *emoji)
{
    struct rp_alert_msg m = msg(transition);
    struct cnct_request req;
    bson_t *b = build("slack", "{}", good[1].secrets, &m, &req);
    assert_string_equal(req.url, "https://hooks.slack.com/services/T0/B0/SLACKSECRET");
    assert_string_equal(req.target, "slack webhook");
    assert_non_null(str_at(b, "text"));
    assert_string_equal(str_at(b, "blocks.0.type"), "header");
    const char *h = str_at(b, "blocks.0.text.text");
    assert_true(strncmp(h, emoji, strlen(emoji)) == 0);
    assert_true(units(h) <= 150);
    assert_string_equal(str_at(b, "blocks.1.type"), "section");
    assert_string_equal(str_at(b, "blocks.1.fields.0.text"),
                        "*Project*\nShop \"EU\" &lt;prod&gt; &amp; co");
    /* mrkdwn is escaped; the header is plain_text, shown as is */
    assert_null(strstr(str_at(b, "text"), "<prod>"));
    assert_non_null(strstr(str_at(b, "text"), "&lt;prod&gt;"));
    if (m.test_name)
        assert_non_null(strstr(h, "<script>"));
    if (strcmp(m.kind, "test") == 0) {
        assert_string_equal(str_at(b, "blocks.1.fields.1.text"), "*Requested by*\nann@example.com");
        assert_false(has(b, "blocks.2"));
    } else {
        assert_non_null(strstr(str_at(b, "blocks.1.fields.1.text"), "&lt;script&gt;"));
        assert_non_null(strstr(str_at(b, "blocks.1.fields.1.text"), "caf\xc3\xa9"));
        const char *last = strcmp(m.kind, "resolved") == 0 ? "blocks.2" : "blocks.3";
        if (strcmp(m.kind, "resolved") != 0) {
            const char *code = str_at(b, "blocks.2.text.text");
            assert_true(strncmp(code, "```", 3) == 0);
            assert_non_null(strstr(code, "&lt;b&gt;boom&lt;/b&gt;"));
            assert_null(strstr(code + 3, "```x```")); /* cannot close the block early */
        }
        char path[40];
        snprintf(path, sizeof(path), "%s.type", last);
        assert_string_equal(str_at(b, path), "actions");
        snprintf(path, sizeof(path), "%s.elements.0.url", last);
        assert_string_equal(str_at(b, path), RUN_URL);
    }
    bson_destroy(b);
    cnct_request_cleanup(&req);
}

static void test_slack(void **state)
{
    check_slack("opened", "\xf0\x9f\x94\xb4");
    check_slack("resolved", "\xe2\x9c\x85");
    check_slack("reminder", "\xe2\x8f\xb0");
    check_slack("test", "\xf0\x9f\xa7\xaa");
    build_fails("slack", "{}", "{}", "opened", "secrets.webhook_url is missing", NULL);
}

static void test_mattermost(void **state)
{
    struct rp_alert_msg m = msg("opened");
    struct cnct_request req;
    bson_t *b = build("mattermost", "{}", good[2].secrets, &m, &req);
    assert_string_equal(req.target, "mattermost webhook");
    assert_non_null(strstr(str_at(b, "text"), "Failing"));
    assert_string_equal(str_at(b, "attachments.0.color"), "#D0021B");
    assert_string_equal(str_at(b, "attachments.0.title_link"), RUN_URL);
    assert_non_null(strstr(str_at(b, "attachments.0.title"), TRICKY));
    assert_string_equal(str_at(b, "attachments.0.fields.0.title"), "Project");
    assert_string_equal(str_at(b, "attachments.0.fields.1.value"), TRICKY);
    assert_true(strncmp(str_at(b, "attachments.0.text"), "```\n", 4) == 0);
    bson_destroy(b);
    cnct_request_cleanup(&req);
    m = msg("resolved");
    b = build("mattermost", "{}", good[2].secrets, &m, &req);
    assert_string_equal(str_at(b, "attachments.0.color"), "#2EB67D");
    assert_non_null(strstr(str_at(b, "text"), "Recovered after 2h 5m"));
    bson_destroy(b);
    cnct_request_cleanup(&req);
    build_fails("mattermost", "{}", "{}", "opened", "secrets.webhook_url", NULL);
}

static void test_teams(void **state)
{
    struct rp_alert_msg m = msg("reminder");
    struct cnct_request req;
    bson_t *b = build("teams", "{}", good[3].secrets, &m, &req);
    assert_string_equal(req.target, "teams webhook");
    assert_string_equal(str_at(b, "type"), "message");
    assert_string_equal(str_at(b, "attachments.0.contentType"),
                        "application/vnd.microsoft.card.adaptive");
    assert_string_equal(str_at(b, "attachments.0.content.type"), "AdaptiveCard");
    assert_string_equal(str_at(b, "attachments.0.content.version"), "1.4");
    const char *title = str_at(b, "attachments.0.content.body.0.text");
    assert_non_null(strstr(title, "Still failing for 2h 5m (reminder 3)"));
    assert_string_equal(str_at(b, "attachments.0.content.body.0.color"), "Warning");
    assert_string_equal(str_at(b, "attachments.0.content.body.1.type"), "FactSet");
    assert_string_equal(str_at(b, "attachments.0.content.body.1.facts.1.value"), TRICKY);
    assert_string_equal(str_at(b, "attachments.0.content.body.2.text"), FAILURE);
    assert_string_equal(str_at(b, "attachments.0.content.actions.0.type"), "Action.OpenUrl");
    assert_string_equal(str_at(b, "attachments.0.content.actions.0.url"), RUN_URL);
    bson_destroy(b);
    cnct_request_cleanup(&req);
    build_fails("teams", "{}", "{\"webhook_url\": 5}", "opened", "secrets.webhook_url", NULL);
}

static void test_discord_limits(void **state)
{
    /* 300 x "é" + an emoji: the title must be cut to 256 units, never inside a character */
    struct rp_buf name, fail;
    rp_buf_init(&name, 0);
    rp_buf_init(&fail, 0);
    for (int i = 0; i < 300; i++)
        assert_int_equal(rp_buf_append(&name, "\xc3\xa9", 2), RP_OK);
    assert_int_equal(rp_buf_append(&name, "\xf0\x9f\x94\xb4", 4), RP_OK);
    for (int i = 0; i < 3000; i++)
        assert_int_equal(rp_buf_append(&fail, "\xe6\x97\xa5\xf0\x9f\x94\xb4", 7), RP_OK);
    struct rp_alert_msg m = msg("opened");
    m.test_name = name.data;
    m.failure = fail.data;
    struct cnct_request req;
    bson_t *b = build("discord", "{}", good[4].secrets, &m, &req);
    assert_string_equal(req.target, "discord webhook");
    const char *title = str_at(b, "embeds.0.title"), *desc = str_at(b, "embeds.0.description");
    assert_true(units(title) <= 256);
    assert_true(units(title) >= 250);
    assert_non_null(strstr(title, "\xe2\x80\xa6")); /* "…" says it was cut */
    assert_true(units(desc) <= 4096);
    assert_true(units(desc) >= 4000);
    assert_true(strncmp(desc, "```\n", 4) == 0);
    assert_true(strcmp(desc + strlen(desc) - 4, "\n```") == 0);
    assert_true(units(str_at(b, "content")) <= 2000);
    assert_int_equal(int_at(b, "embeds.0.color"), 0xD0021B);
    assert_string_equal(str_at(b, "embeds.0.url"), RUN_URL);
    assert_string_equal(str_at(b, "embeds.0.timestamp"), m.occurred_at);
    assert_string_equal(str_at(b, "embeds.0.fields.0.name"), "Project");
    size_t total = units(title) + units(desc);
    for (int i = 0; i < 25; i++) {
        char p[40];
        snprintf(p, sizeof(p), "embeds.0.fields.%d.name", i);
        if (!str_at(b, p))
            break;
        total += units(str_at(b, p));
        snprintf(p, sizeof(p), "embeds.0.fields.%d.value", i);
        assert_true(units(str_at(b, p)) <= 1024);
        total += units(str_at(b, p));
    }
    assert_true(total <= 6000);
    assert_true(has(b, "allowed_mentions.parse"));
    assert_false(has(b, "allowed_mentions.parse.0")); /* "@everyone" in a name pings no one */
    bson_destroy(b);
    cnct_request_cleanup(&req);
    rp_buf_cleanup(&name);
    rp_buf_cleanup(&fail);
    build_fails("discord", "{}", "{}", "opened", "secrets.webhook_url", NULL);
}

/* ---- incident tools ------------------------------------------------------------------------- */

static void test_pagerduty(void **state)
{
    struct rp_alert_msg m = msg("opened");
    struct cnct_request req;
    bson_t *b = build("pagerduty", "{\"severity\": \"critical\"}", good[5].secrets, &m, &req);
    assert_string_equal(req.url, ctx.pagerduty_url);
    assert_string_equal(req.method, "POST");
    assert_string_equal(str_at(b, "routing_key"), "R0123456789abcdef0123456789abcde");
    assert_string_equal(str_at(b, "event_action"), "trigger");
    assert_string_equal(str_at(b, "dedup_key"), DEDUP);
    assert_non_null(strstr(str_at(b, "payload.summary"), TRICKY));
    assert_string_equal(str_at(b, "payload.source"), "eu-west");
    assert_string_equal(str_at(b, "payload.severity"), "critical");
    assert_string_equal(str_at(b, "payload.timestamp"), m.occurred_at);
    assert_string_equal(str_at(b, "payload.component"), TRICKY);
    assert_string_equal(str_at(b, "payload.group"), m.project_name);
    assert_string_equal(str_at(b, "payload.custom_details.failure"), FAILURE);
    assert_string_equal(str_at(b, "links.0.href"), RUN_URL);
    assert_string_equal(str_at(b, "links.0.text"), "Run in Rampart");
    bson_destroy(b);
    cnct_request_cleanup(&req);

    /* resolve: the same dedup_key and nothing else but the key and the action */
    m = msg("resolved");
    b = build("pagerduty", "{}", good[5].secrets, &m, &req);
    assert_string_equal(str_at(b, "event_action"), "resolve");
    assert_string_equal(str_at(b, "dedup_key"), DEDUP);
    assert_int_equal(count_keys(b), 3);
    bson_destroy(b);
    cnct_request_cleanup(&req);

    /* a reminder triggers on the same key; the default severity is error; summary <= 1024 */
    struct rp_buf longname;
    rp_buf_init(&longname, 0);
    for (int i = 0; i < 700; i++)
        assert_int_equal(rp_buf_append(&longname, "\xc3\xa9", 2), RP_OK);
    m = msg("reminder");
    m.test_name = longname.data;
    b = build("pagerduty", "{}", good[5].secrets, &m, &req);
    assert_string_equal(str_at(b, "event_action"), "trigger");
    assert_string_equal(str_at(b, "dedup_key"), DEDUP);
    assert_string_equal(str_at(b, "payload.severity"), "error");
    assert_true(units(str_at(b, "payload.summary")) <= 1024);
    assert_true(units(str_at(b, "payload.component")) <= 255);
    bson_destroy(b);
    cnct_request_cleanup(&req);
    rp_buf_cleanup(&longname);

    /* a test notification: a source even without a location */
    m = msg("test");
    b = build("pagerduty", "{}", good[5].secrets, &m, &req);
    assert_string_equal(str_at(b, "event_action"), "trigger");
    assert_string_equal(str_at(b, "payload.source"), "rampart");
    assert_string_equal(str_at(b, "dedup_key"), m.dedup_key);
    bson_destroy(b);
    cnct_request_cleanup(&req);

    build_fails("pagerduty", "{}", "{}", "opened", "secrets.routing_key is missing", NULL);
    build_fails("pagerduty", "{\"severity\": \"meh\"}", good[5].secrets, "opened",
                "config.severity", "R0123456789abcdef");
}

static void test_opsgenie(void **state)
{
    struct rp_alert_msg m = msg("opened");
    struct cnct_request req;
    bson_t *b = build("opsgenie", "{}", good[6].secrets, &m, &req);
    assert_string_equal(req.url, "https://api.opsgenie.example/v2/alerts");
    assert_string_equal(header(&req, "Authorization"), "GenieKey OPSGENIE-KEY-0001");
    assert_true(units(str_at(b, "message")) <= 130);
    assert_string_equal(str_at(b, "alias"), DEDUP);
    assert_string_equal(str_at(b, "priority"), "P3");
    assert_string_equal(str_at(b, "source"), "Rampart");
    assert_string_equal(str_at(b, "tags.0"), "rampart");
    assert_string_equal(str_at(b, "tags.1"), "shop");
    assert_string_equal(str_at(b, "details.test"), TRICKY);
    assert_non_null(strstr(str_at(b, "description"), FAILURE));
    bson_destroy(b);
    cnct_request_cleanup(&req);

    m = msg("reminder");
    b = build("opsgenie", "{\"region\": \"eu\", \"priority\": \"P1\"}", good[6].secrets, &m, &req);
    assert_string_equal(req.url, "https://api.eu.opsgenie.example/v2/alerts");
    assert_string_equal(str_at(b, "priority"), "P1");
    assert_string_equal(str_at(b, "alias"), DEDUP);
    bson_destroy(b);
    cnct_request_cleanup(&req);

    /* close by alias, percent-encoded */
    m = msg("resolved");
    m.dedup_key = "rampart-a b/c?d&e\xc3\xa9";
    b = build("opsgenie", "{}", good[6].secrets, &m, &req);
    assert_string_equal(req.url, "https://api.opsgenie.example/v2/alerts/"
                                 "rampart-a%20b%2Fc%3Fd%26e%C3%A9/close?identifierType=alias");
    assert_string_equal(req.method, "POST");
    assert_string_equal(str_at(b, "source"), "Rampart");
    assert_non_null(strstr(str_at(b, "note"), "Recovered after 2h 5m"));
    assert_int_equal(count_keys(b), 2);
    bson_destroy(b);
    cnct_request_cleanup(&req);

    build_fails("opsgenie", "{}", "{}", "opened", "secrets.api_key is missing", NULL);
    build_fails("opsgenie", "{}", "{\"api_key\": \"KEY-WITH\\nBREAK\"}", "opened", "line break",
                "KEY-WITH");
    build_fails("opsgenie", "{\"region\": \"mars\"}", good[6].secrets, "opened", "config.region",
                NULL);
}

/* ---- status pages and templates ----------------------------------------------------------------
 */

static void test_statuspage(void **state)
{
    static const char cfg[] =
        "{\"open\": {\"method\": \"PUT\", \"url\": \"https://status.example.com/i\", "
        "\"body_template\": \"{\\\"name\\\": \\\"${test}\\\", \\\"body\\\": \\\"${failure}\\\", "
        "\\\"key\\\": \\\"${dedup_key}\\\", \\\"lit\\\": \\\"$${test}\\\", \\\"cost\\\": "
        "\\\"$5 $\\\", \\\"where\\\": \\\"${location}\\\", \\\"e\\\": \\\"${event}\\\"}\"}, "
        "\"resolve\": {\"method\": \"DELETE\", \"url\": \"https://status.example.com/r\"}}";
    static const char sec[] = "{\"headers\": \"{\\\"Authorization\\\": \\\"OAuth SPKEY-1\\\"}\"}";
    struct rp_alert_msg m = msg("opened");
    struct cnct_request req;
    bson_t *b = build("statuspage", cfg, sec, &m, &req);
    assert_string_equal(req.method, "PUT");
    assert_string_equal(req.url, "https://status.example.com/i");
    assert_string_equal(req.target, "status page open call");
    assert_string_equal(header(&req, "Authorization"), "OAuth SPKEY-1");
    assert_string_equal(str_at(b, "name"), TRICKY);
    assert_string_equal(str_at(b, "body"), FAILURE);
    assert_string_equal(str_at(b, "key"), DEDUP);
    assert_string_equal(str_at(b, "lit"), "${test}");
    assert_string_equal(str_at(b, "cost"), "$5 $");
    assert_string_equal(str_at(b, "e"), "incident.opened");
    bson_destroy(b);
    cnct_request_cleanup(&req);

    /* a test notification opens too; NULL values render as nothing */
    m = msg("test");
    b = build("statuspage", cfg, sec, &m, &req);
    assert_string_equal(str_at(b, "name"), "");
    assert_string_equal(str_at(b, "where"), "");
    assert_string_equal(str_at(b, "e"), "incident.test");
    bson_destroy(b);
    cnct_request_cleanup(&req);

    /* resolve without a template: the webhook event */
    m = msg("resolved");
    b = build("statuspage", cfg, sec, &m, &req);
    assert_string_equal(req.method, "DELETE");
    assert_string_equal(req.url, "https://status.example.com/r");
    assert_string_equal(str_at(b, "event"), "incident.resolved");
    assert_string_equal(str_at(b, "dedup_key"), DEDUP);
    bson_destroy(b);
    cnct_request_cleanup(&req);

    /* reminders send nothing, and the outcome says so (no network: nothing is sent) */
    struct chan c;
    struct rp_alert_outcome out;
    chan_init(&c, "statuspage", cfg, sec);
    m = msg("reminder");
    char why[300];
    assert_int_equal(cnct_build(&ctx, &m, &c.ch, &req, why, sizeof(why)), RP_OK);
    assert_non_null(req.nothing);
    assert_null(req.url);
    cnct_request_cleanup(&req);
    cnct_send((void *)&ctx, &m, &c.ch, &out);
    assert_true(out.skipped && !out.ok);
    assert_false(out.permanent);
    assert_string_equal(out.detail, "reminders are not sent to status pages");
    chan_cleanup(&c);

    build_fails("statuspage",
                "{\"open\": {\"method\": \"POST\", \"url\": \"https://s.example\", "
                "\"body_template\": \"{\\\"a\\\": \\\"${nope}\\\"}\"}}",
                "{}", "opened", "unknown variable ${nope}", NULL);
    build_fails("statuspage",
                "{\"open\": {\"method\": \"POST\", \"url\": \"https://s.example\", "
                "\"body_template\": \"x ${test\"}}",
                "{}", "opened", "no closing }", NULL);
    build_fails("statuspage",
                "{\"open\": {\"method\": \"POST\", \"url\": \"https://s.example\", "
                "\"body_template\": \"{\\\"a\\\": ${test}}\"}}",
                "{}", "opened", "does not render a JSON object", NULL);
    build_fails("statuspage", "{\"resolve\": {\"method\": \"POST\", \"url\": \"https://s.ex\"}}",
                "{}", "opened", "config.open is missing", NULL);
    build_fails("statuspage", "{}", "{}", "resolved", "config.resolve is missing", NULL);
    build_fails("statuspage", "{\"open\": {\"method\": \"GET\", \"url\": \"https://s.example\"}}",
                "{}", "opened", "config.open needs a method", NULL);
}

static void test_template_render(void **state)
{
    const struct cnct_var v[] = {{"a", "x\"y\\z\n\x01</script>"}, {"n", NULL}, {"u", "\xff\xc3"}};
    char *out = NULL, why[200];
    assert_int_equal(
        cnct_template_render("[${a}|${n}|${u}|$$|$${a}|$x|$]", v, 3, 1000, &out, why, sizeof(why)),
        RP_OK);
    assert_string_equal(out,
                        "[x\\\"y\\\\z\\n\\u0001</script>||\xef\xbf\xbd\xef\xbf\xbd|$$|${a}|$x|$]");
    free(out);
    assert_int_equal(cnct_template_render("", v, 3, 10, &out, why, sizeof(why)), RP_OK);
    assert_string_equal(out, "");
    free(out);
    out = NULL;
    assert_int_equal(cnct_template_render("${a}${a}", v, 3, 20, &out, why, sizeof(why)), RP_ENOMEM);
    assert_null(out);
    assert_non_null(strstr(why, "over 20 bytes"));
    assert_int_equal(cnct_template_render("${}", v, 3, 20, &out, why, sizeof(why)), RP_EINVAL);
    assert_non_null(strstr(why, "unknown variable ${}"));
    assert_int_equal(cnct_template_render("${\x01\x02}", v, 3, 20, &out, why, sizeof(why)),
                     RP_EINVAL);
    assert_non_null(strstr(why, "${??}"));
    assert_int_equal(cnct_template_render("ok ${a", v, 3, 20, &out, why, sizeof(why)), RP_EINVAL);
    assert_non_null(strstr(why, "at byte 3"));
    /* every documented variable exists */
    struct cnct_var all[CNCT_TEMPLATE_VARS];
    struct rp_alert_msg m = msg("opened");
    cnct_template_vars(&m, all);
    static const char *const names[] = {
        "event",       "project",         "test",          "location",    "failure",
        "run_url",     "test_url",        "failing_since", "occurred_at", "dedup_key",
        "incident_id", "notification_id", "rule",          "kind"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char t[64];
        snprintf(t, sizeof(t), "${%s}", names[i]);
        assert_int_equal(
            cnct_template_render(t, all, CNCT_TEMPLATE_VARS, 4096, &out, why, sizeof(why)), RP_OK);
        free(out);
    }
}

static void test_cut_and_clean(void **state)
{
    char *c = cnct_cut("hello", 5);
    assert_string_equal(c, "hello");
    free(c);
    c = cnct_cut("hello!", 5);
    assert_string_equal(c, "hell\xe2\x80\xa6");
    free(c);
    c = cnct_cut("ab\xf0\x9f\x94\xb4", 3); /* the emoji is 2 units: does not fit with "…" */
    assert_string_equal(c, "ab\xe2\x80\xa6");
    free(c);
    c = cnct_cut("ab\xf0\x9f\x94\xb4", 4);
    assert_string_equal(c, "ab\xf0\x9f\x94\xb4");
    free(c);
    c = cnct_cut("abc", 0);
    assert_string_equal(c, "");
    free(c);
    assert_null(cnct_cut(NULL, 3));
    c = cnct_utf8_clean("a\xc0\xaf"
                        "b\xed\xa0\x80"
                        "c\xf4\x90\x80\x80"
                        "d\xe2\x82");
    assert_string_equal(c, "a\xef\xbf\xbd\xef\xbf\xbd"
                           "b\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
                           "c\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
                           "d\xef\xbf\xbd\xef\xbf\xbd");
    free(c);
    c = cnct_url_escape("a-b_c.d~e f/\xc3\xa9");
    assert_string_equal(c, "a-b_c.d~e%20f%2F%C3%A9");
    free(c);
    char d[32];
    cnct_duration(45, d, sizeof(d));
    assert_string_equal(d, "45s");
    cnct_duration(600, d, sizeof(d));
    assert_string_equal(d, "10m");
    cnct_duration(7500, d, sizeof(d));
    assert_string_equal(d, "2h 5m");
    cnct_duration(90000, d, sizeof(d));
    assert_string_equal(d, "1d 1h");
    /* invalid UTF-8 in a message still makes JSON */
    struct rp_alert_msg m = msg("opened");
    m.failure = "bad \xff byte";
    struct cnct_request req;
    bson_t *b = build("webhook", good[0].config, "{}", &m, &req);
    assert_string_equal(str_at(b, "failure"), "bad \xef\xbf\xbd byte");
    bson_destroy(b);
    cnct_request_cleanup(&req);
}

/* ---- outcomes ------------------------------------------------------------------------------ */

static void test_classify(void **state)
{
    static const long ok[] = {200, 201, 202, 204, 299};
    static const long retry[] = {408, 429, 500, 502, 503, 504, 599};
    static const long perm[] = {100, 301, 302, 400, 401, 403, 404, 409, 410, 413, 422, 600};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        assert_int_equal(cnct_classify_status(ok[i]), CNCT_OK);
    for (size_t i = 0; i < sizeof(retry) / sizeof(retry[0]); i++)
        assert_int_equal(cnct_classify_status(retry[i]), CNCT_RETRY);
    for (size_t i = 0; i < sizeof(perm) / sizeof(perm[0]); i++)
        assert_int_equal(cnct_classify_status(perm[i]), CNCT_PERMANENT);
    assert_int_equal(cnct_classify_curl(CURLE_COULDNT_CONNECT), CNCT_RETRY);
    assert_int_equal(cnct_classify_curl(CURLE_COULDNT_RESOLVE_HOST), CNCT_RETRY);
    assert_int_equal(cnct_classify_curl(CURLE_OPERATION_TIMEDOUT), CNCT_RETRY);
    assert_int_equal(cnct_classify_curl(CURLE_SSL_CONNECT_ERROR), CNCT_RETRY);
    assert_int_equal(cnct_classify_curl(CURLE_GOT_NOTHING), CNCT_RETRY);
    assert_int_equal(cnct_classify_curl(CURLE_URL_MALFORMAT), CNCT_PERMANENT);
    assert_int_equal(cnct_classify_curl(CURLE_UNSUPPORTED_PROTOCOL), CNCT_PERMANENT);
}

static void test_outcome_detail(void **state)
{
    struct rp_alert_outcome out;
    const char *const secrets[] = {"R0123456789abcdef", "abc", NULL};
    struct rp_buf body;
    rp_buf_init(&body, 0);
    assert_int_equal(rp_buf_printf(&body, "bad key R0123456789abcdef\r\n\tabc\x01 end"), RP_OK);
    while (body.len < 199)
        assert_int_equal(rp_buf_append(&body, "x", 1), RP_OK);
    assert_int_equal(rp_buf_append(&body, "\xc3\xa9 after 200", 13), RP_OK); /* é at 199-200 */
    memset(&out, 0x5a, sizeof(out));
    cnct_outcome_http(&out, 500, body.data, body.len, secrets);
    assert_false(out.ok);
    assert_false(out.permanent);
    assert_true(strncmp(out.detail, "HTTP 500 Internal Server Error: bad key *** abc end", 51) ==
                0);
    for (const char *p = out.detail; *p; p++)
        assert_true((unsigned char)*p >= 0x20 && *p != 0x7f);
    assert_null(strstr(out.detail, "after")); /* 200 bytes of the body at most */
    assert_null(strstr(out.detail, "\xc3"));  /* é straddled byte 200: left out whole */
    assert_true(bson_utf8_validate(out.detail, strlen(out.detail), false));
    rp_buf_cleanup(&body);

    cnct_outcome_http(&out, 404, "", 0, NULL);
    assert_false(out.ok);
    assert_true(out.permanent);
    assert_string_equal(out.detail, "HTTP 404 Not Found");
    cnct_outcome_http(&out, 202, "{\"status\":\"success\"}", 20, NULL);
    assert_true(out.ok);
    assert_string_equal(out.detail, "HTTP 202 Accepted: {\"status\":\"success\"}");
    cnct_outcome_http(&out, 429, NULL, 0, NULL);
    assert_false(out.ok || out.permanent);
    cnct_outcome_http(&out, 301, "", 0, NULL);
    assert_true(out.permanent);
    assert_non_null(strstr(out.detail, "redirects are not followed"));
    cnct_outcome_http(&out, 299, "", 0, NULL);
    assert_string_equal(out.detail, "HTTP 299");
    /* what PostgreSQL would refuse as text: a surrogate, an overlong form */
    cnct_outcome_http(&out, 400, "a\xed\xa0\x80z\xc0\xafy\xe2\x82", 10, NULL);
    assert_string_equal(out.detail, "HTTP 400 Bad Request: a???z??y??");
}

static void test_send_config_errors(void **state)
{
    struct chan c;
    struct rp_alert_outcome out;
    struct rp_alert_msg m = msg("opened");
    chan_init(&c, "slack", "{}", "{}");
    cnct_send((void *)&ctx, &m, &c.ch, &out);
    assert_false(out.ok);
    assert_true(out.permanent);
    assert_string_equal(out.detail, "slack channel: secrets.webhook_url is missing");
    chan_cleanup(&c);
    chan_init(&c, "email", "{}", "{}");
    cnct_send((void *)&ctx, &m, &c.ch, &out);
    assert_true(out.permanent);
    chan_cleanup(&c);
}

/* ---- the wire: a loopback HTTP server answering canned responses -------------------------------
 */

static char *find_ci(const char *hay, const char *needle)
{
    for (size_t n = strlen(needle); *hay; hay++)
        if (strncasecmp(hay, needle, n) == 0)
            return (char *)hay;
    return NULL;
}

struct server {
    int fd, port;
    const char *reply; /* NULL: accept and say nothing (timeout) */
    char request[16384];
    size_t len;
    pthread_t thread;
};

static void *serve(void *ud)
{
    struct server *s = ud;
    int c = accept(s->fd, NULL, NULL);
    if (c < 0)
        return NULL;
    /* read the head, then Content-Length bytes of body */
    size_t need = 0;
    for (;;) {
        ssize_t n = recv(c, s->request + s->len, sizeof(s->request) - 1 - s->len, 0);
        if (n <= 0)
            break;
        s->len += (size_t)n;
        s->request[s->len] = '\0';
        char *end = strstr(s->request, "\r\n\r\n");
        if (end && !need) {
            char *cl = find_ci(s->request, "\r\nContent-Length:");
            need =
                (size_t)(end + 4 - s->request) + (cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0);
        }
        if (need && s->len >= need)
            break;
    }
    if (s->reply) {
        (void)!send(c, s->reply, strlen(s->reply), MSG_NOSIGNAL); /* the client may stop early */
    } else {
        char x[1];
        (void)recv(c, x, 1, 0); /* until the client gives up */
    }
    close(c);
    return NULL;
}

static void server_start(struct server *s, const char *reply)
{
    memset(s, 0, sizeof(*s));
    s->reply = reply;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s->fd >= 0);
    assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s->fd, 4), 0);
    assert_int_equal(getsockname(s->fd, (struct sockaddr *)&a, &al), 0);
    s->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&s->thread, NULL, serve, s), 0);
}

static void server_stop(struct server *s)
{
    pthread_join(s->thread, NULL);
    close(s->fd);
}

/* cnct_send a slack message to the loopback server answering `reply`. */
static void send_slack(struct server *s, const char *reply, long timeout_ms,
                       struct rp_alert_outcome *out)
{
    server_start(s, reply);
    char secrets[200];
    snprintf(secrets, sizeof(secrets),
             "{\"webhook_url\": \"http://127.0.0.1:%d/services/T0/SLACKSECRET\"}", s->port);
    struct chan c;
    struct cnct_ctx x = ctx;
    x.timeout_ms = timeout_ms;
    struct rp_alert_msg m = msg("opened");
    chan_init(&c, "slack", "{}", secrets);
    cnct_send(&x, &m, &c.ch, out);
    chan_cleanup(&c);
    server_stop(s);
}

static void test_send_wire(void **state)
{
    struct server s;
    struct rp_alert_outcome out;

    send_slack(&s,
               "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 37\r\nConnection: close\r\n"
               "\r\nno such hook /services/T0/SLACKSECRET",
               5000, &out);
    assert_true(strncmp(s.request, "POST /services/T0/SLACKSECRET HTTP/1.1\r\n", 40) == 0);
    assert_non_null(strstr(s.request, "\r\nUser-Agent: Rampart/" RP_VERSION "\r\n"));
    assert_non_null(strstr(s.request, "\r\nX-Rampart-Notification: " NOTIF "\r\n"));
    assert_non_null(strstr(s.request, "\r\nContent-Type: application/json\r\n"));
    assert_null(find_ci(s.request, "\r\nExpect:"));
    bson_t *b = parse(strstr(s.request, "\r\n\r\n") + 4); /* the whole body arrived */
    assert_string_equal(str_at(b, "blocks.0.type"), "header");
    bson_destroy(b);
    assert_false(out.ok);
    assert_false(out.permanent);
    assert_string_equal(out.detail, "HTTP 500 Internal Server Error: no such hook ***");

    send_slack(&s, "HTTP/1.1 404 Not Found\r\nContent-Length: 14\r\n\r\nno_such_hook\r\n", 5000,
               &out);
    assert_false(out.ok);
    assert_true(out.permanent);
    assert_string_equal(out.detail, "HTTP 404 Not Found: no_such_hook");

    send_slack(&s,
               "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/\r\nContent-Length: 0\r\n\r\n",
               5000, &out);
    assert_true(out.permanent);
    assert_string_equal(out.detail, "HTTP 302 Found (redirects are not followed)");

    send_slack(&s, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 5000, &out);
    assert_true(out.ok);
    assert_string_equal(out.detail, "HTTP 200 OK: ok");

    /* an answer larger than what is kept: the status still counts */
    static char big[20000];
    int n = snprintf(big, sizeof(big),
                     "HTTP/1.1 503 Service Unavailable\r\nContent-Length: %d\r\n\r\n", 12000);
    memset(big + n, 'y', 12000);
    big[n + 12000] = '\0';
    send_slack(&s, big, 5000, &out);
    assert_false(out.ok || out.permanent);
    assert_true(strncmp(out.detail, "HTTP 503 Service Unavailable: yyy", 33) == 0);

    /* no answer: a timeout, to retry; the URL (a secret) is not in the detail */
    send_slack(&s, NULL, 300, &out);
    assert_false(out.ok || out.permanent);
    assert_non_null(strstr(out.detail, "slack webhook: Timeout was reached"));
    assert_null(strstr(out.detail, "SLACKSECRET"));
}

static void test_send_refused(void **state)
{
    /* a port nobody listens on: bind one, close it, send there */
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    close(fd);
    char cfg[200];
    snprintf(cfg, sizeof(cfg), "{\"url\": \"http://127.0.0.1:%d/hook\"}", ntohs(a.sin_port));
    struct chan c;
    struct rp_alert_outcome out;
    struct rp_alert_msg m = msg("opened");
    chan_init(&c, "webhook", cfg, "{\"hmac_secret\": \"whsec_0123456789\"}");
    cnct_send((void *)&ctx, &m, &c.ch, &out);
    assert_false(out.ok || out.permanent);
    assert_true(strncmp(out.detail, "webhook: Couldn't connect to server", 35) == 0);
    chan_cleanup(&c);
    /* a scheme other than http(s) is refused for good */
    chan_init(&c, "webhook", "{\"url\": \"file:///etc/passwd\"}", "{}");
    cnct_send((void *)&ctx, &m, &c.ch, &out);
    assert_false(out.ok);
    assert_true(out.permanent);
    chan_cleanup(&c);
}

static int setup(void **state)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK && sodium_init() >= 0 ? 0 : -1;
}

static int teardown(void **state)
{
    curl_global_cleanup();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_kind_every_transition),
        cmocka_unit_test(test_webhook_body),
        cmocka_unit_test(test_webhook_signature),
        cmocka_unit_test(test_webhook_errors),
        cmocka_unit_test(test_slack),
        cmocka_unit_test(test_mattermost),
        cmocka_unit_test(test_teams),
        cmocka_unit_test(test_discord_limits),
        cmocka_unit_test(test_pagerduty),
        cmocka_unit_test(test_opsgenie),
        cmocka_unit_test(test_statuspage),
        cmocka_unit_test(test_template_render),
        cmocka_unit_test(test_cut_and_clean),
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_outcome_detail),
        cmocka_unit_test(test_send_config_errors),
        cmocka_unit_test(test_send_wire),
        cmocka_unit_test(test_send_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
