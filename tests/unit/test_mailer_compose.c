/* Unit tests of the mail composer (mailer/compose.c): the headers of each kind of notification,
 * a Message-ID that does not change between tries, RFC 2047 subjects, HTML escaping of user
 * text, CR/LF in user text never creating a header, NULL fields, line lengths, the MIME
 * structure (parsed back here with an independent quoted-printable and encoded-word decoder),
 * and channel configs that cannot be sent to. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "mailer.h"
#include "rampart/mem.h"

#define NOW  1795473600 /* Mon, 23 Nov 2026 22:40:00 UTC */
#define FROM "Rampart <rampart@localhost>"
#define E10  "éééééééééé" /* 10 two-byte characters */

static struct rp_alert_msg sample(const char *kind)
{
    struct rp_alert_msg m = {
        .kind = kind,
        .transition_id = "7c1e0c2a-1111-4a5b-9c3d-000000000001",
        .notification_id = "9f0b6a52-2222-4c6d-8e7f-000000000002",
        .dedup_key = "rampart-5a4b3c2d-3333-4e5f-a0b1-000000000003",
        .project_id = "1d2e3f40-4444-4a5b-8c9d-000000000004",
        .project_slug = "shop",
        .project_name = "Shop",
        .test_id = "2e3f4051-5555-4b6c-9d0e-000000000005",
        .test_name = "checkout",
        .location = "eu-west",
        .rule_name = "Production",
        .incident_id = "5a4b3c2d-3333-4e5f-a0b1-000000000003",
        .failing_since = "2026-11-23T22:35:00Z",
        .occurred_at = "2026-11-23T22:40:00.123Z",
        .failure = "status: expected 200, got 503",
        .run_id = "3f405162-6666-4c7d-8e9f-000000000006",
        .run_url = "https://rampart.example.com/runs/3f405162-6666-4c7d-8e9f-000000000006",
        .test_url = "https://rampart.example.com/tests/2e3f4051-5555-4b6c-9d0e-000000000005",
        .failing_for_s = 312,
        .reminder_no = 0,
    };
    return m;
}

static bson_t *email_config(void)
{
    return BCON_NEW("to", "[", "ops@example.com", "oncall@example.com", "]", "cc", "[",
                    "dev@example.com", "]");
}

/* Compose or fail the test. */
static void compose(const struct rp_alert_msg *m, const bson_t *config, const char *name,
                    time_t now, struct mail_message *mm)
{
    struct rp_alert_channel ch = {.id = "c1", .name = name, .kind = "email", .config = config};
    struct rp_error e;
    if (mail_compose(m, &ch, FROM, now, mm, &e) != RP_OK)
        fail_msg("mail_compose: %s", e.msg);
    assert_non_null(mm->data);
    assert_int_equal(strlen(mm->data), mm->len);
}

/* ---- a small, independent reader of the composed message --------------------------------- */

static size_t header_len(const char *msg)
{
    const char *end = strstr(msg, "\r\n\r\n");
    assert_non_null(end);
    return (size_t)(end - msg) + 2; /* up to and including the last header's CRLF */
}

/* The unfolded value of header `name` (caller frees), NULL if absent; fails if it occurs twice. */
static char *header(const char *msg, const char *name)
{
    size_t hl = header_len(msg), nl = strlen(name);
    char *found = NULL;
    for (const char *p = msg; p < msg + hl;) {
        const char *eol = strstr(p, "\r\n");
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            assert_null(found);
            struct rp_buf b;
            rp_buf_init(&b, 0);
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            for (;;) {
                assert_int_equal(rp_buf_append(&b, v, (size_t)(eol - v)), RP_OK);
                if (eol[2] != ' ' && eol[2] != '\t')
                    break;
                v = eol + 2; /* unfolding removes the CRLF only */
                eol = strstr(v, "\r\n");
            }
            found = b.data ? b.data : rp_xstrdup("");
        }
        p = eol + 2;
        while (p < msg + hl && (*p == ' ' || *p == '\t'))
            p = strstr(p, "\r\n") + 2;
    }
    return found;
}

/* The names of all header fields, comma-separated in order (caller frees). */
static char *header_names(const char *msg)
{
    size_t hl = header_len(msg);
    struct rp_buf b;
    rp_buf_init(&b, 0);
    for (const char *p = msg; p < msg + hl; p = strstr(p, "\r\n") + 2) {
        if (*p == ' ' || *p == '\t')
            continue;
        const char *colon = strchr(p, ':');
        assert_non_null(colon);
        assert_true(colon < strstr(p, "\r\n"));
        if (b.len)
            assert_int_equal(rp_buf_append(&b, ",", 1), RP_OK);
        assert_int_equal(rp_buf_append(&b, p, (size_t)(colon - p)), RP_OK);
    }
    return b.data;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Quoted-printable to text with "\n" line breaks; fails on malformed input. Caller frees. */
static char *qp_decode(const char *s, size_t n)
{
    char *out = rp_xmalloc(n + 1), *o = out;
    for (size_t i = 0; i < n;) {
        if (s[i] == '=' && i + 2 < n && s[i + 1] == '\r' && s[i + 2] == '\n') {
            i += 3; /* soft line break */
        } else if (s[i] == '=') {
            assert_true(i + 2 < n);
            int h = hexval(s[i + 1]), l = hexval(s[i + 2]);
            if (h < 0 || l < 0)
                fail_msg("bad quoted-printable escape at %zu: %.10s", i, s + i);
            *o++ = (char)(h * 16 + l);
            i += 3;
        } else if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n') {
            *o++ = '\n';
            i += 2;
        } else {
            assert_true((unsigned char)s[i] < 0x80);
            *o++ = s[i++];
        }
    }
    *o = '\0';
    return out;
}

/* Decode RFC 2047 B/UTF-8 encoded-words in an unfolded value; blanks between two encoded-words
 * are dropped, as RFC 2047 says. Caller frees. */
static char *ew_decode(const char *v)
{
    struct rp_buf b;
    rp_buf_init(&b, 0);
    int prev_ew = 0;
    while (*v) {
        if (strncmp(v, "=?UTF-8?B?", 10) == 0) {
            const char *end = strstr(v + 10, "?=");
            assert_non_null(end);
            assert_true(end + 2 - v <= 75); /* an encoded-word is at most 75 characters */
            unsigned char bin[128];
            size_t bl = 0;
            if (sodium_base642bin(bin, sizeof(bin), v + 10, (size_t)(end - v - 10), NULL, &bl, NULL,
                                  sodium_base64_VARIANT_ORIGINAL) != 0)
                fail_msg("bad base64 in %s", v);
            assert_int_equal(rp_buf_append(&b, bin, bl), RP_OK);
            v = end + 2;
            prev_ew = 1;
            continue;
        }
        size_t ws = strspn(v, " ");
        if (prev_ew && ws && strncmp(v + ws, "=?UTF-8?B?", 10) == 0) {
            v += ws;
            continue;
        }
        assert_int_equal(rp_buf_append(&b, v, 1), RP_OK);
        prev_ew = 0;
        v++;
    }
    return b.data ? b.data : rp_xstrdup("");
}

/* The decoded body of the part with Content-Type `type` (caller frees); checks the structure:
 * one boundary from the Content-Type, exactly two parts (text/plain then text/html), the
 * closing delimiter at the very end. */
static char *part(const char *msg, const char *type)
{
    char *ct = header(msg, "Content-Type");
    assert_non_null(ct);
    const char *bp = strstr(ct, "boundary=\"");
    assert_non_null(bp);
    bp += 10;
    char boundary[128];
    size_t bl = strcspn(bp, "\"");
    assert_true(bl > 0 && bl <= 70);
    snprintf(boundary, sizeof(boundary), "\r\n--%.*s", (int)bl, bp);
    free(ct);
    char closing[140];
    snprintf(closing, sizeof(closing), "%s--\r\n", boundary);
    size_t ml = strlen(msg), cl = strlen(closing);
    assert_true(ml > cl);
    assert_string_equal(msg + ml - cl, closing);

    const char *parts[3];
    int n = 0;
    for (const char *p = strstr(msg, boundary); p; p = strstr(p + 1, boundary)) {
        assert_true(n < 3);
        parts[n++] = p + strlen(boundary);
    }
    assert_int_equal(n, 3); /* two parts, then the closing delimiter */
    assert_memory_equal(parts[0], "\r\n", 2);
    assert_memory_equal(parts[1], "\r\n", 2);
    assert_memory_equal(parts[2], "--\r\n", 4);
    assert_non_null(strstr(parts[0], "Content-Type: text/plain; charset=utf-8\r\n"));
    assert_true(strstr(parts[0], "Content-Type: text/plain") < parts[1]);
    assert_non_null(strstr(parts[1], "Content-Type: text/html; charset=utf-8\r\n"));
    for (int i = 0; i < 2; i++) {
        const char *body = strstr(parts[i], "\r\n\r\n");
        assert_non_null(body);
        const char *hdrs = parts[i] + 2;
        if (strncmp(hdrs, "Content-Type: ", 14) != 0 || strncmp(hdrs + 14, type, strlen(type)) != 0)
            continue;
        assert_non_null(strstr(hdrs, "Content-Transfer-Encoding: quoted-printable\r\n"));
        body += 4;
        return qp_decode(body, (size_t)(parts[i + 1] - strlen(boundary) - body));
    }
    fail_msg("no %s part", type);
    return NULL;
}

/* Every line ends in CRLF; header lines are at most `hmax` characters, body lines at most 76. */
static void check_lines(const char *msg, size_t hmax)
{
    size_t hl = header_len(msg);
    for (const char *p = msg; *p;) {
        const char *eol = strstr(p, "\r\n");
        assert_non_null(eol);
        size_t len = (size_t)(eol - p), max = p < msg + hl ? hmax : 76;
        if (len > max)
            fail_msg("line of %zu characters (max %zu): %.80s", len, max, p);
        for (const char *q = p; q < eol; q++)
            if (*q == '\r' || *q == '\n')
                fail_msg("bare CR or LF in: %.80s", p);
        if (p >= msg + hl && len > 0 && (eol[-1] == ' ' || eol[-1] == '\t') && eol[-1] != '=')
            fail_msg("trailing blank in the body: %.80s", p);
        p = eol + 2;
    }
}

static void assert_header(const char *msg, const char *name, const char *want)
{
    char *v = header(msg, name);
    if (!v)
        fail_msg("no %s header", name);
    if (strcmp(v, want) != 0)
        fail_msg("%s: \"%s\", want \"%s\"", name, v, want);
    free(v);
}

static void assert_contains(const char *hay, const char *needle)
{
    if (!strstr(hay, needle))
        fail_msg("\"%s\" not found in:\n%s", needle, hay);
}

static void assert_lacks(const char *hay, const char *needle)
{
    if (strstr(hay, needle))
        fail_msg("\"%s\" found in:\n%s", needle, hay);
}

/* ---- tests ------------------------------------------------------------------------------- */

static void test_opened(void **state)
{
    struct rp_alert_msg m = sample("opened");
    bson_t *cfg = email_config();
    struct mail_message mm;
    compose(&m, cfg, "ops", NOW, &mm);
    const char *d = mm.data;
    assert_header(d, "From", "Rampart <rampart@localhost>");
    assert_header(d, "To", "ops@example.com, oncall@example.com");
    assert_header(d, "Cc", "dev@example.com");
    assert_header(d, "Subject", "[Rampart] FAILING: checkout (Shop, eu-west)");
    assert_header(d, "Date", "Mon, 23 Nov 2026 22:40:00 +0000");
    assert_header(d, "Message-ID", "<9f0b6a52-2222-4c6d-8e7f-000000000002@rampart>");
    assert_header(d, "MIME-Version", "1.0");
    assert_header(d, "X-Rampart-Notification", "9f0b6a52-2222-4c6d-8e7f-000000000002");
    assert_header(d, "X-Rampart-Transition", "7c1e0c2a-1111-4a5b-9c3d-000000000001");
    assert_header(d, "X-Rampart-Incident", "5a4b3c2d-3333-4e5f-a0b1-000000000003");
    assert_header(d, "X-Rampart-Kind", "opened");
    assert_header(d, "References", "<rampart-5a4b3c2d-3333-4e5f-a0b1-000000000003@rampart>");
    assert_header(d, "Auto-Submitted", "auto-generated");
    char *ct = header(d, "Content-Type");
    assert_non_null(ct);
    assert_true(strncmp(ct, "multipart/alternative; boundary=\"", 33) == 0);
    free(ct);
    assert_null(header(d, "Bcc"));
    check_lines(d, 78);

    assert_string_equal(mm.envelope_from, "rampart@localhost");
    assert_int_equal(mm.n_rcpt, 3);
    assert_string_equal(mm.rcpt[0], "ops@example.com");
    assert_string_equal(mm.rcpt[1], "oncall@example.com");
    assert_string_equal(mm.rcpt[2], "dev@example.com");

    char *text = part(d, "text/plain"), *html = part(d, "text/html");
    assert_contains(text, "FAILING: checkout\n");
    assert_contains(text, "The test \"checkout\" started failing in eu-west.");
    assert_contains(text, "Project:         Shop (shop)\n");
    assert_contains(text, "Test:            checkout\n");
    assert_contains(text, "Location:        eu-west\n");
    assert_contains(text, "Alert rule:      Production\n");
    assert_contains(text, "Failing since:   2026-11-23 22:35:00 UTC\n");
    assert_contains(text, "Opened at:       2026-11-23 22:40:00 UTC\n");
    assert_contains(text, "What failed:\n  status: expected 200, got 503\n");
    assert_contains(text, "View the run: https://rampart.example.com/runs/"
                          "3f405162-6666-4c7d-8e9f-000000000006\n");
    assert_contains(text, "Open the test: https://rampart.example.com/tests/"
                          "2e3f4051-5555-4b6c-9d0e-000000000005\n");
    assert_contains(text, "channel \"ops\"");
    assert_contains(html, "<a href=\"https://rampart.example.com/runs/"
                          "3f405162-6666-4c7d-8e9f-000000000006\"");
    assert_contains(html, ">View the run</a>");
    assert_contains(html, "<td style=\"padding:4px 0;vertical-align:top\">Shop (shop)</td>");
    assert_contains(html, "status: expected 200, got 503</pre>");
    assert_lacks(html, "src="); /* nothing loaded from outside */
    assert_lacks(html, "<link");
    assert_lacks(html, "url(");
    free(text);
    free(html);
    mail_message_cleanup(&mm);
    bson_destroy(cfg);
}

static void test_resolved_and_reminder(void **state)
{
    bson_t *cfg = email_config();
    struct mail_message mm;
    struct rp_alert_msg m = sample("resolved");
    compose(&m, cfg, "ops", NOW, &mm);
    assert_header(mm.data, "Subject", "[Rampart] RECOVERED: checkout (Shop, eu-west) after 5m 12s");
    assert_header(mm.data, "X-Rampart-Kind", "resolved");
    char *text = part(mm.data, "text/plain");
    assert_contains(text, "RECOVERED: checkout\n");
    assert_contains(text, "passes again in eu-west, after failing for 5m 12s.");
    assert_contains(text, "Recovered at:    2026-11-23 22:40:00 UTC\n");
    assert_contains(text, "Failed for:      5m 12s\n");
    free(text);
    mail_message_cleanup(&mm);

    m = sample("reminder");
    m.reminder_no = 2;
    m.failing_for_s = 2 * 3600 + 5 * 60 + 7;
    compose(&m, cfg, "ops", NOW, &mm);
    assert_header(mm.data, "Subject",
                  "[Rampart] STILL FAILING (reminder 2): checkout (Shop, eu-west) for 2h 5m");
    text = part(mm.data, "text/plain");
    assert_contains(text, "STILL FAILING (reminder 2): checkout\n");
    assert_contains(text, "Failing for:     2h 5m\n");
    free(text);
    mail_message_cleanup(&mm);

    m.failing_for_s = 3 * 86400 + 4 * 3600;
    m.project_name = NULL; /* the slug stands in */
    compose(&m, cfg, "ops", NOW, &mm);
    assert_header(mm.data, "Subject",
                  "[Rampart] STILL FAILING (reminder 2): checkout (shop, eu-west) for 3d 4h");
    mail_message_cleanup(&mm);
    bson_destroy(cfg);
}

/* A test notification: no incident, test or run. */
static void test_test_notification(void **state)
{
    struct rp_alert_msg m = {
        .kind = "test",
        .transition_id = "7c1e0c2a-1111-4a5b-9c3d-00000000000a",
        .notification_id = "9f0b6a52-2222-4c6d-8e7f-00000000000b",
        .dedup_key = "rampart-test-7c1e0c2a-1111-4a5b-9c3d-00000000000a",
        .project_name = "Shop",
        .project_slug = "shop",
        .occurred_at = "2026-11-23T22:40:00Z",
        .requested_by = "alice@example.com",
    };
    bson_t *cfg = BCON_NEW("to", "[", "ops@example.com", "]");
    struct mail_message mm;
    compose(&m, cfg, "Ops team", NOW, &mm);
    assert_header(mm.data, "Subject", "[Rampart] Test notification for channel Ops team");
    assert_header(mm.data, "Message-ID", "<9f0b6a52-2222-4c6d-8e7f-00000000000b@rampart>");
    assert_header(mm.data, "X-Rampart-Kind", "test");
    assert_null(header(mm.data, "X-Rampart-Incident"));
    assert_null(header(mm.data, "References"));
    assert_null(header(mm.data, "Cc"));
    assert_int_equal(mm.n_rcpt, 1);
    char *text = part(mm.data, "text/plain"), *html = part(mm.data, "text/html");
    assert_contains(text, "test notification for the e-mail channel \"Ops team\", sent at the "
                          "request of alice@example.com.");
    assert_contains(text, "Requested by:    alice@example.com\n");
    assert_lacks(text, "What failed");
    assert_lacks(text, "View the run");
    assert_lacks(html, "<pre");
    assert_lacks(mm.data, "(null)");
    free(text);
    free(html);
    mail_message_cleanup(&mm);
    bson_destroy(cfg);
}

/* Every field NULL, even the kind and the channel's name: still a sensible mail. */
static void test_all_null(void **state)
{
    struct rp_alert_msg m;
    memset(&m, 0, sizeof(m));
    bson_t *cfg = BCON_NEW("to", "[", "ops@example.com", "]");
    struct mail_message mm;
    compose(&m, cfg, NULL, NOW, &mm);
    assert_header(mm.data, "Subject", "[Rampart] notification: unnamed test");
    char *mid = header(mm.data, "Message-ID");
    assert_non_null(mid);
    assert_int_equal(strlen(mid), 1 + 24 + 9); /* <24 hex digits@rampart> */
    assert_string_equal(mid + 25, "@rampart>");
    free(mid);
    assert_null(header(mm.data, "X-Rampart-Notification"));
    char *names = header_names(mm.data);
    assert_string_equal(names, "From,To,Subject,Date,Message-ID,MIME-Version,Content-Type,"
                               "Auto-Submitted,X-Auto-Response-Suppress");
    free(names);
    char *text = part(mm.data, "text/plain"), *html = part(mm.data, "text/html");
    assert_contains(text, "unnamed test");
    assert_lacks(mm.data, "(null)");
    assert_lacks(text, "(null)");
    assert_lacks(html, "(null)");
    check_lines(mm.data, 78);
    free(text);
    free(html);
    mail_message_cleanup(&mm);
    bson_destroy(cfg);
}

static void test_message_id_deterministic(void **state)
{
    bson_t *cfg = email_config();
    struct rp_alert_msg m = sample("opened");
    struct mail_message a, b, c;
    compose(&m, cfg, "ops", NOW, &a);
    compose(&m, cfg, "ops", NOW + 3600, &b);                    /* a retry an hour later */
    m.notification_id = "9f0b6a52-2222-4c6d-8e7f-0000000000ff"; /* another channel */
    compose(&m, cfg, "ops", NOW, &c);
    char *ida = header(a.data, "Message-ID"), *idb = header(b.data, "Message-ID"),
         *idc = header(c.data, "Message-ID"), *da = header(a.data, "Date"),
         *db = header(b.data, "Date");
    assert_string_equal(ida, idb);
    assert_string_not_equal(ida, idc);
    assert_string_not_equal(da, db);
    assert_string_equal(db, "Mon, 23 Nov 2026 23:40:00 +0000");
    free(ida);
    free(idb);
    free(idc);
    free(da);
    free(db);
    mail_message_cleanup(&a);
    mail_message_cleanup(&b);
    mail_message_cleanup(&c);

    /* an overlong id: cut the same way every time, the boundary within RFC 2046's 70 */
    m.notification_id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
                        "0123456789abcdef0123456789abcdef";
    compose(&m, cfg, "ops", NOW, &a);
    assert_header(a.data, "Message-ID",
                  "<0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef@rampart>");
    char *text = part(a.data, "text/plain"); /* checks the boundary's length */
    free(text);
    mail_message_cleanup(&a);
    bson_destroy(cfg);
}

static void test_non_ascii_subject(void **state)
{
    bson_t *cfg = email_config();
    struct rp_alert_msg m = sample("opened");
    m.test_name = "Paiement échoué ✓ — 支付";
    struct mail_message mm;
    compose(&m, cfg, "ops", NOW, &mm);
    char *raw = header(mm.data, "Subject");
    for (const char *p = raw; *p; p++)
        assert_true((unsigned char)*p < 0x80);
    assert_true(strncmp(raw, "=?UTF-8?B?", 10) == 0);
    char *dec = ew_decode(raw);
    assert_string_equal(dec, "[Rampart] FAILING: Paiement échoué ✓ — 支付 (Shop, eu-west)");
    free(dec);
    free(raw);
    char *text = part(mm.data, "text/plain");
    assert_contains(text, "Test:            Paiement échoué ✓ — 支付\n");
    free(text);
    check_lines(mm.data, 76);
    mail_message_cleanup(&mm);

    /* long enough for several encoded-words: each whole characters, lines within 76 */
    m.test_name = E10 E10 E10 E10 E10 "✓";
    compose(&m, cfg, "ops", NOW, &mm);
    raw = header(mm.data, "Subject");
    assert_non_null(strstr(raw, "?= =?UTF-8?B?")); /* several words */
    dec = ew_decode(raw);
    assert_string_equal(dec, "[Rampart] FAILING: " E10 E10 E10 E10 E10 "✓ (Shop, eu-west)");
    free(dec);
    free(raw);
    check_lines(mm.data, 76);
    mail_message_cleanup(&mm);

    /* a test name past the subject's cap (120 bytes) is cut between two characters */
    m.test_name = E10 E10 E10 E10 E10 E10 "ééééééé✓";
    compose(&m, cfg, "ops", NOW, &mm);
    raw = header(mm.data, "Subject");
    dec = ew_decode(raw);
    assert_string_equal(dec, "[Rampart] FAILING: " E10 E10 E10 E10 E10 E10 "... (Shop, eu-west)");
    free(dec);
    free(raw);
    mail_message_cleanup(&mm);

    /* ASCII that looks like an encoded-word is encoded, so it reads back as typed */
    m.test_name = "=?UTF-8?B?SGk=?=";
    compose(&m, cfg, "ops", NOW, &mm);
    raw = header(mm.data, "Subject");
    dec = ew_decode(raw);
    assert_string_equal(dec, "[Rampart] FAILING: =?UTF-8?B?SGk=?= (Shop, eu-west)");
    free(dec);
    free(raw);
    mail_message_cleanup(&mm);
    bson_destroy(cfg);
}

static void test_html_escaping(void **state)
{
    bson_t *cfg = email_config();
    struct rp_alert_msg m = sample("opened");
    m.test_name = "<script>alert(\"x\")</script> & 'co'";
    m.failure = "body was <img src=x onerror=alert(1)>";
    m.location = "<b>eu</b>";
    m.run_url = "javascript:alert(1)";
    m.test_url = "https://rampart.example.com/tests/x?a=1&b=\"2\"";
    struct mail_message mm;
    compose(&m, cfg, "<i>ops</i>", NOW, &mm);
    char *html = part(mm.data, "text/html"), *text = part(mm.data, "text/plain");
    assert_lacks(html, "<script");
    assert_lacks(html, "<img");
    assert_lacks(html, "<b>");
    assert_lacks(html, "<i>");
    assert_lacks(html, "href=\"javascript:");
    assert_contains(html, "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;co&#39;");
    assert_contains(html, "body was &lt;img src=x onerror=alert(1)&gt;</pre>");
    assert_contains(html, "&lt;b&gt;eu&lt;/b&gt;");
    assert_contains(html, "&quot;&lt;i&gt;ops&lt;/i&gt;&quot;");
    assert_contains(html, "View the run: javascript:alert(1)"); /* shown, not linked */
    assert_contains(html, "href=\"https://rampart.example.com/tests/x?a=1&amp;b=&quot;2&quot;\"");
    assert_contains(text, "Test:            <script>alert(\"x\")</script> & 'co'\n");
    free(html);
    free(text);
    mail_message_cleanup(&mm);
    bson_destroy(cfg);
}

static void test_header_injection(void **state)
{
    bson_t *cfg = email_config();
    struct rp_alert_msg m = sample("opened");
    m.test_name = "checkout\r\nBcc: victim@evil.example\r\n\r\nhello";
    m.location = "eu\nX-Evil: 1";
    m.project_name = "Shop\rReply-To: x@evil.example";
    m.notification_id = "abc\r\nX-Evil: 2";
    struct mail_message mm;
    compose(&m, cfg, "ops", NOW, &mm);
    char *names = header_names(mm.data);
    assert_string_equal(names, "From,To,Cc,Subject,Date,Message-ID,References,MIME-Version,"
                               "Content-Type,Auto-Submitted,X-Auto-Response-Suppress,"
                               "X-Rampart-Notification,X-Rampart-Transition,X-Rampart-Kind,"
                               "X-Rampart-Incident");
    free(names);
    assert_header(mm.data, "Subject",
                  "[Rampart] FAILING: checkout Bcc: victim@evil.example hello "
                  "(Shop Reply-To: x@evil.example, eu X-Evil: 1)");
    assert_header(mm.data, "Message-ID", "<abcX-Evil2@rampart>");
    assert_int_equal(mm.n_rcpt, 3);
    char *text = part(mm.data, "text/plain");
    assert_contains(text, "Test:            checkout Bcc: victim@evil.example hello\n");
    free(text);
    check_lines(mm.data, 78);
    mail_message_cleanup(&mm);

    /* the channel name of a test notification goes into the subject too */
    struct rp_alert_msg t = {.kind = "test", .notification_id = "n1"};
    compose(&t, cfg, "ops\r\nBcc: x@evil.example", NOW, &mm);
    assert_null(header(mm.data, "Bcc"));
    assert_header(mm.data, "Subject",
                  "[Rampart] Test notification for channel ops Bcc: "
                  "x@evil.example");
    mail_message_cleanup(&mm);

    /* an address with CR/LF is refused, not sent */
    bson_t *bad = BCON_NEW("to", "[", "ops@example.com\r\nBcc: x@evil.example", "]");
    struct rp_alert_channel ch = {.name = "ops", .kind = "email", .config = bad};
    struct rp_error e;
    assert_int_equal(mail_compose(&m, &ch, FROM, NOW, &mm, &e), RP_EINVAL);
    assert_non_null(strstr(e.msg, "\"to\" address 1 is not usable"));
    bson_destroy(bad);
    bson_destroy(cfg);
}

static void test_long_lines(void **state)
{
    bson_t *cfg = email_config();
    struct rp_alert_msg m = sample("opened");
    char longword[3001];
    for (size_t i = 0; i < 3000; i++)
        longword[i] = (char)('a' + i % 26);
    longword[3000] = '\0';
    char *failure = rp_xasprintf("%s\n. a line starting with a dot\nends with a blank \n"
                                 "equals = sign and tab\there",
                                 longword);
    m.failure = failure;
    m.test_name = "a rather long test name with many words that will not fit on one header "
                  "line of seventy-eight characters";
    struct mail_message mm;
    compose(&m, cfg, "ops", NOW, &mm);
    check_lines(mm.data, 78);
    assert_header(mm.data, "Subject",
                  "[Rampart] FAILING: a rather long test name with many words that will not fit "
                  "on one header line of seventy-eight characters (Shop, eu-west)");
    char *text = part(mm.data, "text/plain");
    char *want = rp_xasprintf("What failed:\n  %s\n  . a line starting with a dot\n  ends with a "
                              "blank \n  equals = sign and tab\there\n",
                              longword);
    assert_contains(text, want);
    free(want);
    free(text);
    mail_message_cleanup(&mm);

    /* a dot at the start of a line is encoded (never a lone "." line in SMTP DATA) */
    m.failure = ".";
    m.test_name = "x";
    compose(&m, cfg, "ops", NOW, &mm);
    assert_lacks(mm.data, "\r\n.");
    mail_message_cleanup(&mm);

    /* a failure text past the cap is cut, the mail stays small */
    char *huge = rp_xmalloc(100001);
    memset(huge, 'x', 100000);
    huge[100000] = '\0';
    m.failure = huge;
    m.test_name = "aVeryLongTestNameWithoutAnySpaceAtAllThatCannotBeFoldedAnywhereInTheSubjectLine"
                  "WhatSoEver";
    compose(&m, cfg, "ops", NOW, &mm);
    check_lines(mm.data, 78); /* an unfoldable subject is encoded instead */
    char *subj = header(mm.data, "Subject"), *dec = ew_decode(subj);
    assert_string_equal(dec, "[Rampart] FAILING: aVeryLongTestNameWithoutAnySpaceAtAllThatCannot"
                             "BeFoldedAnywhereInTheSubjectLineWhatSoEver (Shop, eu-west)");
    assert_true(mm.len < 40000);
    text = part(mm.data, "text/plain");
    assert_contains(text, "xxx...\n");
    free(subj);
    free(dec);
    free(text);
    free(huge);
    mail_message_cleanup(&mm);
    free(failure);
    bson_destroy(cfg);
}

static void test_structure_and_bad_utf8(void **state)
{
    bson_t *cfg = email_config();
    struct rp_alert_msg m = sample("opened");
    m.test_name = "bad\xff\xfe utf8 \xc0\xaf and C1\xc2\x85 ok";
    struct mail_message mm;
    compose(&m, cfg, "ops", NOW, &mm);
    char *raw = header(mm.data, "Subject"), *dec = ew_decode(raw);
    assert_string_equal(dec, "[Rampart] FAILING: bad\xEF\xBF\xBD\xEF\xBF\xBD utf8 "
                             "\xEF\xBF\xBD\xEF\xBF\xBD and C1  ok (Shop, eu-west)");
    free(raw);
    free(dec);
    /* part() checks: boundary, two parts in order, closing delimiter last */
    char *text = part(mm.data, "text/plain"), *html = part(mm.data, "text/html");
    assert_true(strncmp(html, "<!DOCTYPE html>", 15) == 0);
    assert_contains(html, "</body></html>");
    assert_contains(html,
                    "<meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\">");
    assert_true(strncmp(text, "FAILING: bad", 12) == 0);
    assert_contains(mm.data, "\r\n\r\nThis is a multi-part message in MIME format.\r\n");
    free(text);
    free(html);
    mail_message_cleanup(&mm);
    bson_destroy(cfg);
}

static void test_bad_configs(void **state)
{
    struct rp_alert_msg m = sample("opened");
    struct {
        bson_t *config;
        const char *why;
    } cases[] = {
        {NULL, "no \"to\" addresses"},
        {BCON_NEW("cc", "[", "a@example.com", "]"), "no \"to\" addresses"},
        {BCON_NEW("to", "[", "]"), "\"to\" list is empty"},
        {BCON_NEW("to", "ops@example.com"), "\"to\" is not a list"},
        {BCON_NEW("to", "[", BCON_INT32(1), "]"), "\"to\" holds a non-string"},
        {BCON_NEW("to", "[", "not-an-address", "]"), "\"to\" address 1 is not usable"},
        {BCON_NEW("to", "[", "a@example.com", "]", "cc", "[", "a@b@", "]"),
         "\"cc\" address 1 is not usable"},
        {BCON_NEW("to", "[", "a@example.com", "]", "cc", "[", "<a@example.com>", "]"),
         "\"cc\" address 1 is not usable"},
        {BCON_NEW("to", "[", "a b@example.com", "]"), "\"to\" address 1 is not usable"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct rp_alert_channel ch = {.name = "ops", .kind = "email", .config = cases[i].config};
        struct mail_message mm = {0};
        struct rp_error e = {0};
        assert_int_equal(mail_compose(&m, &ch, FROM, NOW, &mm, &e), RP_EINVAL);
        if (!strstr(e.msg, cases[i].why))
            fail_msg("case %zu: \"%s\", want \"%s\"", i, e.msg, cases[i].why);
        assert_null(mm.data);
        if (cases[i].config)
            bson_destroy(cases[i].config);
    }
    /* more than 50 addresses */
    bson_t *many = bson_new(), arr;
    bson_append_array_begin(many, "to", -1, &arr);
    for (int i = 0; i < 51; i++) {
        char key[16], a[32];
        snprintf(key, sizeof(key), "%d", i);
        snprintf(a, sizeof(a), "u%d@example.com", i);
        BSON_APPEND_UTF8(&arr, key, a);
    }
    bson_append_array_end(many, &arr);
    struct rp_alert_channel ch = {.name = "ops", .kind = "email", .config = many};
    struct mail_message mm = {0};
    struct rp_error e;
    assert_int_equal(mail_compose(&m, &ch, FROM, NOW, &mm, &e), RP_EINVAL);
    assert_non_null(strstr(e.msg, "more than 50"));
    bson_destroy(many);
    /* no channel, a bad From */
    assert_int_equal(mail_compose(&m, NULL, FROM, NOW, &mm, &e), RP_EINVAL);
    bson_t *cfg = email_config();
    ch.config = cfg;
    assert_int_equal(mail_compose(&m, &ch, "Rampart", NOW, &mm, &e), RP_EINVAL);
    assert_int_equal(mail_compose(&m, &ch, NULL, NOW, &mm, &e), RP_EINVAL);
    bson_destroy(cfg);
}

static void test_recipients_deduplicated(void **state)
{
    struct rp_alert_msg m = sample("opened");
    bson_t *cfg = BCON_NEW("to", "[", "ops@example.com", "OPS@example.com", "b@example.com", "]",
                           "cc", "[", "b@example.com", "c@example.com", "]");
    struct mail_message mm;
    compose(&m, cfg, "ops", NOW, &mm);
    assert_int_equal(mm.n_rcpt, 3);
    assert_string_equal(mm.rcpt[0], "ops@example.com");
    assert_string_equal(mm.rcpt[1], "b@example.com");
    assert_string_equal(mm.rcpt[2], "c@example.com");
    assert_null(mm.rcpt[3]);
    mail_message_cleanup(&mm);
    bson_destroy(cfg);

    /* many recipients: the To header is folded */
    bson_t *many = bson_new(), arr;
    bson_append_array_begin(many, "to", -1, &arr);
    for (int i = 0; i < 50; i++) {
        char key[16], a[48];
        snprintf(key, sizeof(key), "%d", i);
        snprintf(a, sizeof(a), "someone.number%d@example.com", i);
        BSON_APPEND_UTF8(&arr, key, a);
    }
    bson_append_array_end(many, &arr);
    compose(&m, many, "ops", NOW, &mm);
    assert_int_equal(mm.n_rcpt, 50);
    check_lines(mm.data, 78);
    char *to = header(mm.data, "To");
    assert_non_null(strstr(to, "someone.number0@example.com, someone.number1@example.com,"));
    assert_non_null(strstr(to, ", someone.number49@example.com"));
    free(to);
    mail_message_cleanup(&mm);
    bson_destroy(many);
}

static void test_from(void **state)
{
    char name[256], addr[256];
    struct rp_error e;
    assert_int_equal(
        mail_parse_from("Rampart <rampart@localhost>", name, sizeof(name), addr, sizeof(addr), &e),
        RP_OK);
    assert_string_equal(name, "Rampart");
    assert_string_equal(addr, "rampart@localhost");
    assert_int_equal(
        mail_parse_from("  alerts@example.com ", name, sizeof(name), addr, sizeof(addr), &e),
        RP_OK);
    assert_string_equal(name, "");
    assert_string_equal(addr, "alerts@example.com");
    assert_int_equal(mail_parse_from("\"Ops, \\\"EU\\\"\" <ops@example.com>", name, sizeof(name),
                                     addr, sizeof(addr), &e),
                     RP_OK);
    assert_string_equal(name, "Ops, \"EU\"");
    const char *bad[] = {"",
                         "Rampart",
                         "Rampart <>",
                         "Rampart <a@b",
                         "Rampart <a@b> x",
                         "Rampart\r\n <a@b.c>",
                         "R <a b@c.d>"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (mail_parse_from(bad[i], name, sizeof(name), addr, sizeof(addr), &e) != RP_EINVAL)
            fail_msg("accepted From \"%s\"", bad[i]);

    /* the From header: quoted when needed, encoded when not ASCII */
    bson_t *cfg = email_config();
    struct rp_alert_channel ch = {.name = "ops", .kind = "email", .config = cfg};
    struct rp_alert_msg m = sample("opened");
    struct mail_message mm;
    assert_int_equal(mail_compose(&m, &ch, "\"Ops, EU\" <ops@example.com>", NOW, &mm, &e), RP_OK);
    assert_header(mm.data, "From", "\"Ops, EU\" <ops@example.com>");
    assert_string_equal(mm.envelope_from, "ops@example.com");
    mail_message_cleanup(&mm);
    assert_int_equal(mail_compose(&m, &ch, "Überwachung <ops@example.com>", NOW, &mm, &e), RP_OK);
    char *from = header(mm.data, "From"), *dec = ew_decode(from);
    assert_true(strncmp(from, "=?UTF-8?B?", 10) == 0);
    assert_string_equal(dec, "Überwachung <ops@example.com>");
    free(from);
    free(dec);
    mail_message_cleanup(&mm);
    bson_destroy(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_opened),
        cmocka_unit_test(test_resolved_and_reminder),
        cmocka_unit_test(test_test_notification),
        cmocka_unit_test(test_all_null),
        cmocka_unit_test(test_message_id_deterministic),
        cmocka_unit_test(test_non_ascii_subject),
        cmocka_unit_test(test_html_escaping),
        cmocka_unit_test(test_header_injection),
        cmocka_unit_test(test_long_lines),
        cmocka_unit_test(test_structure_and_bad_utf8),
        cmocka_unit_test(test_bad_configs),
        cmocka_unit_test(test_recipients_deduplicated),
        cmocka_unit_test(test_from),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
