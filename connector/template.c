/* The text side of rampart-connector's payloads: UTF-8 cleaning and cutting to a receiver's
 * limits, JSON through libbson, the one-line headline and the webhook event object every kind
 * builds on, and the ${name} body templates of status-page calls. Everything here is pure,
 * thread-safe and fuzzed (tests/fuzz/fuzz_connector_template.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connector.h"
#include "rampart/log.h"

/* ---- UTF-8 ----------------------------------------------------------------------------------- */

size_t cnct_utf8_seq(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    unsigned char c = p[0];
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        return (p[1] & 0xc0) == 0x80 ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        unsigned char lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
        return p[1] >= lo && p[1] <= hi && (p[2] & 0xc0) == 0x80 ? 3 : 0;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        unsigned char lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
        return p[1] >= lo && p[1] <= hi && (p[2] & 0xc0) == 0x80 && (p[3] & 0xc0) == 0x80 ? 4 : 0;
    }
    return 0;
}

static int utf8_valid(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        size_t n = cnct_utf8_seq((const char *)p);
        if (!n)
            return 0;
        p += n;
    }
    return 1;
}

char *cnct_utf8_clean(const char *s)
{
    if (!s)
        return NULL;
    struct rp_buf b;
    rp_buf_init(&b, 0);
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        size_t n = cnct_utf8_seq((const char *)p);
        if (n) {
            (void)rp_buf_append(&b, p, n);
            p += n;
        } else {
            (void)rp_buf_append(&b, "\xef\xbf\xbd", 3); /* U+FFFD */
            p++;
        }
    }
    if (!b.data)
        (void)rp_buf_append(&b, "", 0);
    return b.data;
}

char *cnct_cut(const char *s, size_t max)
{
    if (!s)
        return NULL;
    char *c = cnct_utf8_clean(s);
    size_t units = 0, keep = 0; /* keep: the bytes that fit in max - 1 units (room for "…") */
    for (size_t i = 0; c[i];) {
        size_t n = cnct_utf8_seq(c + i), u = n == 4 ? 2 : 1;
        if (units + u > max) {
            char *r = rp_xmalloc(keep + 4);
            memcpy(r, c, keep);
            memcpy(r + keep, max ? "\xe2\x80\xa6" : "", max ? 4 : 1);
            free(c);
            return r;
        }
        units += u;
        i += n;
        if (units + 1 <= max)
            keep = i;
    }
    return c;
}

void cnct_append_str(bson_t *doc, const char *key, const char *s)
{
    if (!s) {
        bson_append_null(doc, key, -1);
    } else if (utf8_valid(s)) {
        bson_append_utf8(doc, key, -1, s, -1);
    } else {
        char *c = cnct_utf8_clean(s);
        bson_append_utf8(doc, key, -1, c, -1);
        free(c);
    }
}

void cnct_append_cut(bson_t *doc, const char *key, const char *s, size_t max)
{
    char *c = cnct_cut(s, max);
    cnct_append_str(doc, key, c);
    free(c);
}

char *cnct_json(const bson_t *doc)
{
    char *j = bson_as_relaxed_extended_json(doc, NULL);
    if (!j)
        abort(); /* every string went through cnct_append_str: only memory can fail */
    char *out = rp_xstrdup(j);
    bson_free(j);
    return out;
}

int cnct_json_escape(struct rp_buf *b, const char *s)
{
    if (utf8_valid(s))
        return rp_json_escape(b, s);
    char *c = cnct_utf8_clean(s);
    int rc = rp_json_escape(b, c);
    free(c);
    return rc;
}

char *cnct_url_escape(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    struct rp_buf b;
    rp_buf_init(&b, 0);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("-._~", *p)) {
            (void)rp_buf_append(&b, p, 1);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            (void)rp_buf_append(&b, e, 3);
        }
    }
    if (!b.data)
        (void)rp_buf_append(&b, "", 0);
    return b.data;
}

/* ---- words -------------------------------------------------------------------------------- */

const char *cnct_event_name(const char *kind)
{
    if (strcmp(kind, "opened") == 0)
        return "incident.opened";
    if (strcmp(kind, "resolved") == 0)
        return "incident.resolved";
    if (strcmp(kind, "reminder") == 0)
        return "incident.reminder";
    return "incident.test";
}

const char *cnct_emoji(const char *kind)
{
    if (strcmp(kind, "opened") == 0)
        return "\xf0\x9f\x94\xb4"; /* 🔴 */
    if (strcmp(kind, "resolved") == 0)
        return "\xe2\x9c\x85"; /* ✅ */
    if (strcmp(kind, "reminder") == 0)
        return "\xe2\x8f\xb0"; /* ⏰ */
    return "\xf0\x9f\xa7\xaa"; /* 🧪 */
}

unsigned cnct_color(const char *kind)
{
    if (strcmp(kind, "opened") == 0)
        return 0xD0021B;
    if (strcmp(kind, "resolved") == 0)
        return 0x2EB67D;
    if (strcmp(kind, "reminder") == 0)
        return 0xF5A623;
    return 0x4A90E2;
}

void cnct_duration(long long s, char *buf, size_t len)
{
    if (s < 0)
        s = 0;
    if (s < 60)
        snprintf(buf, len, "%llds", s);
    else if (s < 3600)
        snprintf(buf, len, "%lldm", s / 60);
    else if (s < 86400)
        snprintf(buf, len, "%lldh %lldm", s / 3600, s % 3600 / 60);
    else
        snprintf(buf, len, "%lldd %lldh", s / 86400, s % 86400 / 3600);
}

char *cnct_headline(const struct rp_alert_msg *m)
{
    char d[32], what[96];
    const char *test = m->test_name ? m->test_name : "a test";
    cnct_duration(m->failing_for_s, d, sizeof(d));
    if (strcmp(m->kind, "opened") == 0)
        snprintf(what, sizeof(what), "Failing");
    else if (strcmp(m->kind, "resolved") == 0)
        snprintf(what, sizeof(what), "Recovered after %s", d);
    else if (strcmp(m->kind, "reminder") == 0)
        snprintf(what, sizeof(what), "Still failing for %s (reminder %d)", d, m->reminder_no);
    else
        return rp_xasprintf("Test notification from Rampart%s%s%s", m->project_name ? " (" : "",
                            m->project_name ? m->project_name : "", m->project_name ? ")" : "");
    return rp_xasprintf("%s: %s%s%s%s%s%s", what, test, m->location ? " at " : "",
                        m->location ? m->location : "", m->project_name ? " (" : "",
                        m->project_name ? m->project_name : "", m->project_name ? ")" : "");
}

/* ---- the webhook event object ------------------------------------------------------------- */

void cnct_event_doc(const struct rp_alert_msg *m, bson_t *doc)
{
    bson_t sub;
    int resolved = strcmp(m->kind, "resolved") == 0, reminder = strcmp(m->kind, "reminder") == 0;
    cnct_append_str(doc, "event", cnct_event_name(m->kind));
    cnct_append_str(doc, "notification_id", m->notification_id);
    cnct_append_str(doc, "transition_id", m->transition_id);
    cnct_append_str(doc, "incident_id", m->incident_id);
    cnct_append_str(doc, "dedup_key", m->dedup_key);
    if (m->project_id || m->project_slug || m->project_name) {
        bson_append_document_begin(doc, "project", -1, &sub);
        cnct_append_str(&sub, "id", m->project_id);
        cnct_append_str(&sub, "slug", m->project_slug);
        cnct_append_str(&sub, "name", m->project_name);
        bson_append_document_end(doc, &sub);
    } else {
        bson_append_null(doc, "project", -1);
    }
    if (m->test_id || m->test_name) {
        bson_append_document_begin(doc, "test", -1, &sub);
        cnct_append_str(&sub, "id", m->test_id);
        cnct_append_str(&sub, "name", m->test_name);
        bson_append_document_end(doc, &sub);
    } else {
        bson_append_null(doc, "test", -1);
    }
    cnct_append_str(doc, "location", m->location);
    cnct_append_str(doc, "rule", m->rule_name);
    cnct_append_str(doc, "failing_since", m->failing_since);
    cnct_append_str(doc, "occurred_at", m->occurred_at);
    cnct_append_str(doc, "failure", m->failure);
    if (m->run_id || m->run_url) {
        bson_append_document_begin(doc, "run", -1, &sub);
        cnct_append_str(&sub, "id", m->run_id);
        cnct_append_str(&sub, "url", m->run_url);
        bson_append_document_end(doc, &sub);
    } else {
        bson_append_null(doc, "run", -1);
    }
    cnct_append_str(doc, "test_url", m->test_url);
    if (resolved || reminder)
        bson_append_int64(doc, "failing_for_s", -1, m->failing_for_s);
    else
        bson_append_null(doc, "failing_for_s", -1);
    if (reminder)
        bson_append_int32(doc, "reminder_no", -1, m->reminder_no);
    else
        bson_append_null(doc, "reminder_no", -1);
    cnct_append_str(doc, "requested_by", m->requested_by);
}

/* ---- ${name} templates -------------------------------------------------------------------- */

void cnct_template_vars(const struct rp_alert_msg *m, struct cnct_var v[CNCT_TEMPLATE_VARS])
{
    const struct cnct_var all[CNCT_TEMPLATE_VARS] = {
        {"event", cnct_event_name(m->kind)},
        {"kind", m->kind},
        {"project", m->project_name},
        {"test", m->test_name},
        {"location", m->location},
        {"failure", m->failure},
        {"run_url", m->run_url},
        {"test_url", m->test_url},
        {"failing_since", m->failing_since},
        {"occurred_at", m->occurred_at},
        {"dedup_key", m->dedup_key},
        {"incident_id", m->incident_id},
        {"notification_id", m->notification_id},
        {"rule", m->rule_name},
    };
    memcpy(v, all, sizeof(all));
}

/* A name as a why message may quote it: printable ASCII, at most 40 bytes. */
static void quote_name(const char *s, size_t n, char *buf, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < n && i < 40 && o + 1 < len; i++)
        buf[o++] = s[i] > 0x20 && s[i] < 0x7f ? s[i] : '?';
    buf[o] = '\0';
    if (n > 40 && o + 4 < len)
        strcpy(buf + o, "...");
}

int cnct_template_render(const char *tmpl, const struct cnct_var *vars, size_t n_vars, size_t cap,
                         char **out, char *why, size_t why_len)
{
    int rc = RP_EINVAL;
    struct rp_buf b;
    rp_buf_init(&b, cap);
    const char *p = tmpl;
    while (*p) {
        const char *d = strchr(p, '$');
        if (!d) {
            if (rp_buf_append(&b, p, strlen(p)) != RP_OK)
                goto too_big;
            break;
        }
        if (rp_buf_append(&b, p, (size_t)(d - p)) != RP_OK)
            goto too_big;
        if (d[1] == '$' && d[2] == '{') { /* $${ : a literal ${ */
            if (rp_buf_append(&b, "${", 2) != RP_OK)
                goto too_big;
            p = d + 3;
            continue;
        }
        if (d[1] != '{') { /* any other $ is itself */
            if (rp_buf_append(&b, "$", 1) != RP_OK)
                goto too_big;
            p = d + 1;
            continue;
        }
        const char *name = d + 2, *end = strchr(name, '}');
        char q[48];
        if (!end) {
            snprintf(why, why_len,
                     "the body template has a ${ with no closing } at byte %zu (write $${ for a "
                     "literal ${)",
                     (size_t)(d - tmpl));
            goto out;
        }
        size_t n = (size_t)(end - name), i;
        for (i = 0; i < n_vars; i++)
            if (strlen(vars[i].name) == n && memcmp(vars[i].name, name, n) == 0)
                break;
        if (i == n_vars) {
            quote_name(name, n, q, sizeof(q));
            snprintf(why, why_len, "the body template uses an unknown variable ${%s}", q);
            goto out;
        }
        if (vars[i].value && cnct_json_escape(&b, vars[i].value) != RP_OK)
            goto too_big;
        p = end + 1;
    }
    if (!b.data && rp_buf_append(&b, "", 0) != RP_OK)
        goto too_big;
    *out = b.data;
    return RP_OK;
too_big:
    rc = RP_ENOMEM;
    snprintf(why, why_len, "the rendered body template is over %zu bytes", cap);
out:
    rp_buf_cleanup(&b);
    return rc;
}
