/* The mail of one notification (RFC 5322 + MIME): headers with a deterministic Message-ID
 * (<notification_id@rampart>, so a mail client folds a resend into the first copy), an RFC 2047
 * subject when it is not plain ASCII, and a multipart/alternative body with a text/plain and a
 * text/html part, both UTF-8 and quoted-printable (lines <= 76). Every piece of user text (test,
 * project, location, rule and channel names, the failure) is cleaned first: valid UTF-8, no
 * control characters, CR/LF folded into a space wherever it would reach a header, and capped in
 * length; the HTML part escapes all of it and loads nothing from outside. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <bson/bson.h>
#include <sodium.h>

#include "mailer.h"
#include "rampart/mem.h"

#define CAP_NAME         200  /* a name in the body (test, project, rule, channel, ...) */
#define CAP_SUBJECT_NAME 120  /* the test name in the subject */
#define CAP_SUBJECT_PART 60   /* project and location in the subject */
#define CAP_FAILURE      8000 /* the failure text */
#define CAP_URL          2000
#define CAP_ID           64 /* ids in headers */
#define QP_LINE          76 /* RFC 2045 */
#define HEADER_LINE      78 /* RFC 5322's recommended limit */
#define EW_BYTES         39 /* input bytes per encoded-word: a line stays under 76 */

/* ---- output with a cap ------------------------------------------------------------------- */

struct out {
    struct rp_buf b;
    int full; /* an append hit the cap: the message is too large */
};

static void out_init(struct out *o)
{
    rp_buf_init(&o->b, MAIL_MAX_MESSAGE);
    o->full = 0;
}

static void putn(struct out *o, const char *s, size_t n)
{
    if (!o->full && rp_buf_append(&o->b, s, n) != RP_OK)
        o->full = 1;
}

static void put(struct out *o, const char *s)
{
    putn(o, s, strlen(s));
}

static void putf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(struct out *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    char *s = rp_xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    putn(o, s, (size_t)n);
    free(s);
}

/* ---- user text --------------------------------------------------------------------------- */

/* Length (1-4) of the valid UTF-8 character at `s`, or 0 (overlong forms and surrogates are
 * invalid). Reads no further than a NUL. */
static size_t utf8_len(const unsigned char *s)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return (s[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if ((s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
            return 0;
        if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] > 0x9F))
            return 0;
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if ((s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
            return 0;
        if ((c == 0xF0 && s[1] < 0x90) || (c == 0xF4 && s[1] > 0x8F))
            return 0;
        return 4;
    }
    return 0;
}

/* A copy of `s` fit for a mail: valid UTF-8 (a bad byte becomes U+FFFD), control characters
 * (C0, DEL, C1) replaced by a space. `multiline`: line breaks kept as "\n" (CRLF and CR
 * normalized) and tabs kept; otherwise every run of CR/LF becomes one space, so the text can
 * never start a header line. Leading and trailing blanks trimmed; cut at `cap` bytes on a
 * character boundary, ending in "...". NULL stays NULL. Caller frees. */
static char *clean(const char *s, size_t cap, int multiline)
{
    if (!s)
        return NULL;
    struct rp_buf b;
    rp_buf_init(&b, 0);
    const unsigned char *p = (const unsigned char *)s;
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
        p++;
    while (*p) {
        char tmp[4];
        const char *w = tmp;
        size_t n = utf8_len(p), adv = n;
        if (n == 0) {
            w = "\xEF\xBF\xBD";
            n = 3;
            adv = 1;
        } else if (*p == '\r' || *p == '\n') {
            if (multiline) {
                tmp[0] = '\n';
                adv = (*p == '\r' && p[1] == '\n') ? 2 : 1;
            } else {
                tmp[0] = ' ';
                adv = strspn((const char *)p, "\r\n");
            }
            n = 1;
        } else if (*p == '\t' && multiline) {
            tmp[0] = '\t';
        } else if (*p < 0x20 || *p == 0x7F || (*p == 0xC2 && p[1] < 0xA0)) {
            tmp[0] = ' '; /* C0, DEL, C1 (U+0080-U+009F) */
            n = 1;
        } else {
            memcpy(tmp, p, n);
        }
        if (b.len + n > cap) {
            (void)rp_buf_append(&b, "...", 3);
            break;
        }
        (void)rp_buf_append(&b, w, n);
        p += adv;
    }
    while (b.len > 0 && strchr(" \t\n", b.data[b.len - 1]))
        b.data[--b.len] = '\0';
    if (!b.data)
        return rp_xstrdup("");
    return b.data;
}

/* `s` reduced to the characters of an id token ([A-Za-z0-9._-], at most CAP_ID) in `buf`;
 * NULL when nothing is left. */
static const char *id_token(const char *s, char *buf, size_t cap)
{
    size_t n = 0;
    for (; s && *s && n + 1 < cap && n < CAP_ID; s++)
        if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
            *s == '.' || *s == '_' || *s == '-')
            buf[n++] = *s;
    buf[n] = '\0';
    return n ? buf : NULL;
}

static int is_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80)
            return 0;
    return 1;
}

/* ---- addresses --------------------------------------------------------------------------- */

/* An address SMTP can carry as is: local@domain in printable ASCII without blanks, brackets,
 * quotes or separators (the dashboard accepts less: dot-atom and host names). */
static int addr_ok(const char *a)
{
    size_t len = strlen(a);
    const char *at = strrchr(a, '@');
    if (len < 3 || len > 254 || !at || at == a || at - a > 64 || !at[1])
        return 0;
    for (const char *p = a; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= 0x20 || c >= 0x7F || strchr("<>()[]\\,;:\"", c) || (c == '@' && p != at))
            return 0;
    }
    return 1;
}

static void add_rcpt(struct mail_message *mm, const char *a)
{
    for (size_t i = 0; i < mm->n_rcpt; i++)
        if (strcasecmp(mm->rcpt[i], a) == 0)
            return;
    mm->rcpt = rp_xrealloc(mm->rcpt, (mm->n_rcpt + 2) * sizeof(*mm->rcpt));
    mm->rcpt[mm->n_rcpt++] = rp_xstrdup(a);
    mm->rcpt[mm->n_rcpt] = NULL;
}

/* Read config member `field` (an array of addresses) into the envelope and the header line. */
static int read_rcpts(const bson_t *config, const char *field, int required,
                      struct mail_message *mm, struct out *hdr, struct rp_error *err)
{
    bson_iter_t it, arr;
    if (!config || !bson_iter_init_find(&it, config, field)) {
        if (required)
            return rp_error_set(err, RP_EINVAL, "the channel's config has no \"%s\" addresses",
                                field);
        return RP_OK;
    }
    if (!BSON_ITER_HOLDS_ARRAY(&it) || !bson_iter_recurse(&it, &arr))
        return rp_error_set(err, RP_EINVAL, "the channel's \"%s\" is not a list of addresses",
                            field);
    size_t n = 0, col = 0;
    while (bson_iter_next(&arr)) {
        if (!BSON_ITER_HOLDS_UTF8(&arr))
            return rp_error_set(err, RP_EINVAL, "the channel's \"%s\" holds a non-string", field);
        const char *a = bson_iter_utf8(&arr, NULL);
        if (!addr_ok(a))
            return rp_error_set(err, RP_EINVAL, "the channel's \"%s\" address %zu is not usable",
                                field, n + 1);
        if (++n > MAIL_MAX_RCPT_PER_FIELD)
            return rp_error_set(err, RP_EINVAL, "the channel's \"%s\" has more than %d addresses",
                                field, MAIL_MAX_RCPT_PER_FIELD);
        size_t len = strlen(a);
        if (n == 1) {
            put(hdr, field[0] == 't' ? "To: " : "Cc: ");
            col = 4;
        } else if (col + 2 + len > HEADER_LINE) {
            put(hdr, ",\r\n ");
            col = 1;
        } else {
            put(hdr, ", ");
            col += 2;
        }
        put(hdr, a);
        col += len;
        add_rcpt(mm, a);
    }
    if (n == 0 && required)
        return rp_error_set(err, RP_EINVAL, "the channel's \"%s\" list is empty", field);
    if (n > 0)
        put(hdr, "\r\n");
    return RP_OK;
}

int mail_parse_from(const char *from, char *name, size_t name_cap, char *addr, size_t addr_cap,
                    struct rp_error *err)
{
    if (!from || !*from)
        return rp_error_set(err, RP_EINVAL, "the From address is empty");
    for (const unsigned char *p = (const unsigned char *)from; *p; p++)
        if (*p < 0x20 || *p == 0x7F)
            return rp_error_set(err, RP_EINVAL, "the From address has a control character");
    for (const unsigned char *p = (const unsigned char *)from; *p;) {
        size_t n = utf8_len(p);
        if (!n)
            return rp_error_set(err, RP_EINVAL, "the From address is not valid UTF-8");
        p += n;
    }
    const char *s = from, *e = from + strlen(from);
    while (*s == ' ')
        s++;
    while (e > s && e[-1] == ' ')
        e--;
    const char *ns = s, *ne = s, *as = s, *ae = e;
    const char *lt = memchr(s, '<', (size_t)(e - s));
    if (lt) {
        const char *gt = memchr(lt, '>', (size_t)(e - lt));
        if (!gt || gt + 1 != e)
            return rp_error_set(err, RP_EINVAL,
                                "the From address \"%s\" is not \"Name <address>\" or \"address\"",
                                from);
        as = lt + 1;
        ae = gt;
        ne = lt;
        while (ne > ns && ne[-1] == ' ')
            ne--;
        if (ne - ns >= 2 && *ns == '"' && ne[-1] == '"') {
            ns++;
            ne--;
        }
    }
    if ((size_t)(ae - as) >= addr_cap || (size_t)(ne - ns) >= name_cap)
        return rp_error_set(err, RP_EINVAL, "the From address \"%s\" is too long", from);
    size_t k = 0;
    for (const char *p = ns; p < ne; p++)
        if (!(*p == '\\' && p + 1 < ne)) /* drop quoted-pair backslashes */
            name[k++] = *p;
        else
            name[k++] = *++p;
    name[k] = '\0';
    memcpy(addr, as, (size_t)(ae - as));
    addr[ae - as] = '\0';
    if (!addr_ok(addr))
        return rp_error_set(err, RP_EINVAL, "the From address \"%s\" has no usable address", from);
    return RP_OK;
}

/* ---- header encodings -------------------------------------------------------------------- */

/* `s` (valid UTF-8, one line) as RFC 2047 B encoded-words of whole characters, each line of the
 * header under 76 characters. */
static void put_encoded_words(struct out *o, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    int first = 1;
    while (*p) {
        size_t n = 0;
        while (p[n]) {
            size_t l = utf8_len(p + n);
            if (!l)
                l = 1;
            if (n + l > EW_BYTES)
                break;
            n += l;
        }
        char b64[sodium_base64_ENCODED_LEN(EW_BYTES, sodium_base64_VARIANT_ORIGINAL)];
        sodium_bin2base64(b64, sizeof(b64), p, n, sodium_base64_VARIANT_ORIGINAL);
        put(o, first ? "=?UTF-8?B?" : "\r\n =?UTF-8?B?");
        put(o, b64);
        put(o, "?=");
        p += n;
        first = 0;
    }
}

/* The value of an unstructured header (Subject) starting at column `col`: plain ASCII folded at
 * spaces when every line then fits in 78 characters; otherwise (non-ASCII, a word too long to
 * fold, or text that would read as an encoded-word) encoded-words. `s` is one clean line. */
static void put_unstructured(struct out *o, const char *s, size_t col)
{
    if (is_ascii(s) && !strstr(s, "=?")) {
        struct out f;
        out_init(&f);
        const char *p = s;
        int fits = 1;
        while (*p) {
            size_t rem = strlen(p), room = HEADER_LINE - col;
            if (rem <= room) {
                put(&f, p);
                break;
            }
            size_t brk = 0; /* fold before the last space that keeps the line short */
            for (size_t i = room; i >= 1; i--)
                if (p[i] == ' ') {
                    brk = i;
                    break;
                }
            if (!brk) {
                fits = 0;
                break;
            }
            putn(&f, p, brk);
            put(&f, "\r\n");
            p += brk; /* the space starts the continuation line */
            col = 0;
        }
        if (fits && !f.full) {
            putn(o, f.b.data ? f.b.data : "", f.b.len);
            rp_buf_cleanup(&f.b);
            return;
        }
        rp_buf_cleanup(&f.b);
    }
    put_encoded_words(o, s);
}

/* A display name as an RFC 5322 phrase: atoms as they are, other ASCII quoted, non-ASCII as
 * encoded-words. */
static void put_phrase(struct out *o, const char *name)
{
    if (!is_ascii(name) || strstr(name, "=?")) {
        put_encoded_words(o, name);
        return;
    }
    int atoms = 1;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              strchr(" !#$%&'*+-/=?^_`{|}~", *p)))
            atoms = 0;
    if (atoms) {
        put(o, name);
        return;
    }
    put(o, "\"");
    for (const char *p = name; *p; p++) {
        if (*p == '"' || *p == '\\')
            put(o, "\\");
        putn(o, p, 1);
    }
    put(o, "\"");
}

static void put_date(struct out *o, time_t now)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    gmtime_r(&now, &tm);
    putf(o, "Date: %s, %02d %s %04d %02d:%02d:%02d +0000\r\n", days[tm.tm_wday % 7], tm.tm_mday,
         months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* ---- body encodings ---------------------------------------------------------------------- */

/* `text` ("\n" line breaks) as quoted-printable with CRLF hard breaks and soft breaks keeping
 * every line within 76 characters. A dot at the start of a line is encoded too, so no line of
 * the body can look like the end of the SMTP DATA. */
static void put_qp(struct out *o, const char *text)
{
    const unsigned char *p = (const unsigned char *)text;
    size_t col = 0;
    while (*p) {
        if (*p == '\n') {
            put(o, "\r\n");
            col = 0;
            p++;
            continue;
        }
        unsigned char c = *p;
        int eol = p[1] == '\n' || p[1] == '\0';
        char enc[4];
        size_t n = 1;
        if ((c >= 33 && c <= 126 && c != '=' && !(col == 0 && c == '.')) ||
            ((c == ' ' || c == '\t') && !eol)) {
            enc[0] = (char)c;
        } else {
            snprintf(enc, sizeof(enc), "=%02X", c);
            n = 3;
        }
        if (col + n > (eol ? QP_LINE : QP_LINE - 1)) { /* room for the soft break's '=' */
            put(o, "=\r\n");
            col = 0;
            continue; /* encode again: the rules at the start of a line differ */
        }
        putn(o, enc, n);
        col += n;
        p++;
    }
}

/* `s` with &<>"' escaped, for HTML text and attribute values. */
static void put_html(struct out *o, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&':
            put(o, "&amp;");
            break;
        case '<':
            put(o, "&lt;");
            break;
        case '>':
            put(o, "&gt;");
            break;
        case '"':
            put(o, "&quot;");
            break;
        case '\'':
            put(o, "&#39;");
            break;
        default:
            putn(o, s, 1);
        }
    }
}

/* ---- what the mail says ------------------------------------------------------------------ */

enum kind { K_OPENED, K_RESOLVED, K_REMINDER, K_TEST, K_OTHER };

/* The notification's fields, cleaned. */
struct view {
    enum kind kind;
    char *kind_name;
    char *test, *project, *slug, *location, *rule, *failure, *run_url, *test_url, *channel;
    char *requested_by, *since, *at;
    char *subject;  /* one clean line */
    char *headline; /* "FAILING: checkout" */
    char *sentence; /* one line saying what happened */
    char *footer;   /* who sent it, to which channel, which notification */
    char duration[32];
    long long failing_for_s;
};

static void fmt_duration(long long s, char *buf, size_t cap)
{
    if (s < 0)
        s = 0;
    if (s < 60)
        snprintf(buf, cap, "%llds", s);
    else if (s < 3600)
        snprintf(buf, cap, "%lldm %llds", s / 60, s % 60);
    else if (s < 86400)
        snprintf(buf, cap, "%lldh %lldm", s / 3600, s % 3600 / 60);
    else
        snprintf(buf, cap, "%lldd %lldh", s / 86400, s % 86400 / 3600);
}

/* "2026-11-23T22:40:00Z" (fractions allowed) as "2026-11-23 22:40:00 UTC"; other text as it is. */
static char *fmt_time(const char *iso)
{
    char *c = clean(iso, 64, 0);
    if (!c)
        return NULL;
    size_t len = strlen(c);
    if (len >= 20 && c[4] == '-' && c[7] == '-' && c[10] == 'T' && c[13] == ':' && c[16] == ':' &&
        c[len - 1] == 'Z' && strspn(c, "0123456789-:T.Z") == len) {
        char *r = rp_xasprintf("%.10s %.8s UTC", c, c + 11);
        free(c);
        return r;
    }
    return c;
}

static int is_web_url(const char *u)
{
    return u && (strncasecmp(u, "https://", 8) == 0 || strncasecmp(u, "http://", 7) == 0);
}

static void view_init(struct view *v, const struct rp_alert_msg *m,
                      const struct rp_alert_channel *ch)
{
    memset(v, 0, sizeof(*v));
    const char *k = m->kind ? m->kind : "";
    v->kind = strcmp(k, "opened") == 0     ? K_OPENED
              : strcmp(k, "resolved") == 0 ? K_RESOLVED
              : strcmp(k, "reminder") == 0 ? K_REMINDER
              : strcmp(k, "test") == 0     ? K_TEST
                                           : K_OTHER;
    v->kind_name = clean(*k ? k : "notification", 40, 0);
    v->test = clean(m->test_name, CAP_NAME, 0);
    v->project = clean(m->project_name, CAP_NAME, 0);
    v->slug = clean(m->project_slug, CAP_NAME, 0);
    v->location = clean(m->location, CAP_NAME, 0);
    v->rule = clean(m->rule_name, CAP_NAME, 0);
    v->failure = clean(m->failure, CAP_FAILURE, 1);
    v->run_url = clean(m->run_url, CAP_URL, 0);
    v->test_url = clean(m->test_url, CAP_URL, 0);
    v->channel = clean(ch ? ch->name : NULL, CAP_NAME, 0);
    v->requested_by = clean(m->requested_by, CAP_NAME, 0);
    v->since = fmt_time(m->failing_since);
    v->at = fmt_time(m->occurred_at);
    v->failing_for_s = m->failing_for_s;
    fmt_duration(m->failing_for_s, v->duration, sizeof(v->duration));
    char **opt[] = {&v->test,    &v->project,      &v->slug,    &v->location,
                    &v->rule,    &v->failure,      &v->run_url, &v->test_url,
                    &v->channel, &v->requested_by, &v->since,   &v->at};
    for (size_t i = 0; i < sizeof(opt) / sizeof(opt[0]); i++) /* "" reads as absent */
        if (*opt[i] && !**opt[i]) {
            free(*opt[i]);
            *opt[i] = NULL;
        }

    /* the subject: "<test> (<project>, <location>)" with shorter caps */
    char *st = clean(m->test_name, CAP_SUBJECT_NAME, 0);
    char *sp = clean(m->project_name && *m->project_name ? m->project_name : m->project_slug,
                     CAP_SUBJECT_PART, 0);
    char *sl = clean(m->location, CAP_SUBJECT_PART, 0);
    const char *sp_ = sp && *sp ? sp : NULL, *sl_ = sl && *sl ? sl : NULL;
    char *target =
        rp_xasprintf("%s%s%s%s%s%s", st && *st ? st : "unnamed test", sp_ || sl_ ? " (" : "",
                     sp_ ? sp_ : "", sp_ && sl_ ? ", " : "", sl_ ? sl_ : "", sp_ || sl_ ? ")" : "");
    const char *tn = v->test ? v->test : "unnamed test";
    char where[CAP_NAME + 8] = "";
    if (v->location)
        snprintf(where, sizeof(where), " in %s", v->location);
    char *chn = clean(ch ? ch->name : NULL, CAP_SUBJECT_PART, 0);
    const char *chs = chn && *chn ? chn : "(unnamed)";
    switch (v->kind) {
    case K_OPENED:
        v->subject = rp_xasprintf("[Rampart] FAILING: %s", target);
        v->headline = rp_xasprintf("FAILING: %s", tn);
        v->sentence = rp_xasprintf("The test \"%s\" started failing%s.", tn, where);
        break;
    case K_RESOLVED:
        v->subject = m->failing_for_s > 0
                         ? rp_xasprintf("[Rampart] RECOVERED: %s after %s", target, v->duration)
                         : rp_xasprintf("[Rampart] RECOVERED: %s", target);
        v->headline = rp_xasprintf("RECOVERED: %s", tn);
        v->sentence = m->failing_for_s > 0
                          ? rp_xasprintf("The test \"%s\" passes again%s, after failing for %s.",
                                         tn, where, v->duration)
                          : rp_xasprintf("The test \"%s\" passes again%s.", tn, where);
        break;
    case K_REMINDER: {
        char no[32] = "";
        if (m->reminder_no > 0)
            snprintf(no, sizeof(no), " (reminder %d)", m->reminder_no);
        v->subject =
            m->failing_for_s > 0
                ? rp_xasprintf("[Rampart] STILL FAILING%s: %s for %s", no, target, v->duration)
                : rp_xasprintf("[Rampart] STILL FAILING%s: %s", no, target);
        v->headline = rp_xasprintf("STILL FAILING%s: %s", no, tn);
        v->sentence = m->failing_for_s > 0
                          ? rp_xasprintf("The test \"%s\" is still failing%s, for %s now.", tn,
                                         where, v->duration)
                          : rp_xasprintf("The test \"%s\" is still failing%s.", tn, where);
        break;
    }
    case K_TEST:
        v->subject = rp_xasprintf("[Rampart] Test notification for channel %s", chs);
        v->headline = rp_xasprintf("Test notification");
        v->sentence = rp_xasprintf(
            "This is a test notification for the e-mail channel \"%s\"%s%s. If you can read it, "
            "Rampart's alerts reach this address.",
            v->channel ? v->channel : "(unnamed)",
            v->requested_by ? ", sent at the request of " : "",
            v->requested_by ? v->requested_by : "");
        break;
    case K_OTHER:
        v->subject = rp_xasprintf("[Rampart] %s: %s", v->kind_name, target);
        v->headline = rp_xasprintf("%s: %s", v->kind_name, tn);
        v->sentence =
            rp_xasprintf("Rampart has news about the test \"%s\"%s (%s).", tn, where, v->kind_name);
        break;
    }
    char id[CAP_ID + 1];
    const char *nid = id_token(m->notification_id, id, sizeof(id));
    v->footer =
        rp_xasprintf("Sent by Rampart%s%s%s%s%s.", v->channel ? " to the e-mail channel \"" : "",
                     v->channel ? v->channel : "", v->channel ? "\"" : "",
                     nid ? ", notification " : "", nid ? nid : "");
    free(st);
    free(sp);
    free(sl);
    free(chn);
    free(target);
}

static void view_cleanup(struct view *v)
{
    char **all[] = {&v->kind_name,    &v->test,    &v->project, &v->slug,     &v->location,
                    &v->rule,         &v->failure, &v->run_url, &v->test_url, &v->channel,
                    &v->requested_by, &v->since,   &v->at,      &v->subject,  &v->headline,
                    &v->sentence,     &v->footer};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        free(*all[i]);
        *all[i] = NULL;
    }
}

/* The rows of the summary table: label and value, NULL-terminated. */
struct row {
    const char *label;
    const char *value;
};

static void rows_of(const struct view *v, struct row *r, char *project, size_t project_cap)
{
    size_t n = 0;
    if (v->project && v->slug && strcmp(v->project, v->slug) != 0)
        snprintf(project, project_cap, "%s (%s)", v->project, v->slug);
    else
        snprintf(project, project_cap, "%s", v->project ? v->project : v->slug ? v->slug : "");
    if (*project)
        r[n++] = (struct row){"Project", project};
    if (v->test)
        r[n++] = (struct row){"Test", v->test};
    if (v->location)
        r[n++] = (struct row){"Location", v->location};
    if (v->rule)
        r[n++] = (struct row){"Alert rule", v->rule};
    if (v->since && v->kind != K_TEST)
        r[n++] = (struct row){"Failing since", v->since};
    if (v->at) {
        static const char *const at_label[] = {"Opened at", "Recovered at", "Still failing at",
                                               "Requested at", "At"};
        r[n++] = (struct row){at_label[v->kind], v->at};
    }
    if (v->kind == K_RESOLVED && v->failing_for_s > 0)
        r[n++] = (struct row){"Failed for", v->duration};
    if (v->kind == K_REMINDER && v->failing_for_s > 0)
        r[n++] = (struct row){"Failing for", v->duration};
    if (v->kind == K_TEST && v->requested_by)
        r[n++] = (struct row){"Requested by", v->requested_by};
    r[n] = (struct row){NULL, NULL};
}

static void text_body(const struct view *v, struct out *o)
{
    struct row rows[12];
    char project[2 * CAP_NAME + 8];
    rows_of(v, rows, project, sizeof(project));
    put(o, v->headline);
    put(o, "\n\n");
    put(o, v->sentence);
    put(o, "\n\n");
    for (struct row *r = rows; r->label; r++)
        putf(o, "%s:%*s%s\n", r->label, (int)(16 - strlen(r->label)), "", r->value);
    if (v->failure) {
        put(o, "\nWhat failed:\n");
        for (const char *p = v->failure; *p;) {
            size_t n = strcspn(p, "\n");
            put(o, "  ");
            putn(o, p, n);
            put(o, "\n");
            p += n + (p[n] == '\n');
        }
    }
    if (v->run_url || v->test_url)
        put(o, "\n");
    if (v->run_url)
        putf(o, "View the run: %s\n", v->run_url);
    if (v->test_url)
        putf(o, "Open the test: %s\n", v->test_url);
    put(o, "\n-- \n");
    put(o, v->footer);
    put(o, "\n");
}

static void html_link(struct out *o, const char *url, const char *label)
{
    if (!is_web_url(url)) { /* never a javascript: or data: link; show the text */
        put_html(o, label);
        put(o, ": ");
        put_html(o, url);
        put(o, "\n");
        return;
    }
    put(o, "<a href=\"");
    put_html(o, url);
    put(o, "\" style=\"display:inline-block;margin:0 8px 8px 0;padding:8px 14px;"
           "background:#1f6feb;color:#ffffff;text-decoration:none;border-radius:4px;"
           "font-weight:bold\">");
    put_html(o, label);
    put(o, "</a>\n");
}

static void html_body(const struct view *v, struct out *o)
{
    static const char *const color[] = {"#b42318", "#067647", "#b54708", "#175cd3", "#344054"};
    struct row rows[12];
    char project[2 * CAP_NAME + 8];
    rows_of(v, rows, project, sizeof(project));
    put(o, "<!DOCTYPE html>\n<html><head>\n<meta http-equiv=\"Content-Type\" "
           "content=\"text/html; charset=utf-8\">\n<title>");
    put_html(o, v->subject);
    put(o, "</title>\n</head>\n<body style=\"margin:0;padding:16px;background:#ffffff;"
           "color:#1f2933;font-family:Arial,Helvetica,sans-serif;font-size:14px;"
           "line-height:1.4\">\n");
    putf(o, "<h1 style=\"margin:0 0 8px;font-size:20px;color:%s\">", color[v->kind]);
    put_html(o, v->headline);
    put(o, "</h1>\n<p style=\"margin:0 0 16px\">");
    put_html(o, v->sentence);
    put(o, "</p>\n");
    if (rows[0].label) {
        put(o, "<table role=\"presentation\" cellpadding=\"0\" cellspacing=\"0\" "
               "style=\"border-collapse:collapse;margin:0 0 16px\">\n");
        for (struct row *r = rows; r->label; r++) {
            put(o, "<tr><td style=\"padding:4px 16px 4px 0;color:#52606d;vertical-align:top;"
                   "white-space:nowrap\">");
            put_html(o, r->label);
            put(o, "</td><td style=\"padding:4px 0;vertical-align:top\">");
            put_html(o, r->value);
            put(o, "</td></tr>\n");
        }
        put(o, "</table>\n");
    }
    if (v->failure) {
        put(o, "<p style=\"margin:0 0 4px;font-weight:bold\">What failed</p>\n"
               "<pre style=\"margin:0 0 16px;padding:8px 12px;background:#f5f7fa;"
               "border:1px solid #e4e7eb;white-space:pre-wrap;word-break:break-word;"
               "font-family:Consolas,Menlo,monospace;font-size:13px\">");
        put_html(o, v->failure);
        put(o, "</pre>\n");
    }
    if (v->run_url || v->test_url) {
        put(o, "<p style=\"margin:0 0 8px\">\n");
        if (v->run_url)
            html_link(o, v->run_url, "View the run");
        if (v->test_url)
            html_link(o, v->test_url, "Open the test");
        put(o, "</p>\n");
    }
    put(o, "<p style=\"margin:16px 0 0;color:#7b8794;font-size:12px\">");
    put_html(o, v->footer);
    put(o, "</p>\n</body></html>\n");
}

/* ---- the message ------------------------------------------------------------------------- */

void mail_message_cleanup(struct mail_message *mm)
{
    if (!mm)
        return;
    free(mm->data);
    free(mm->envelope_from);
    for (size_t i = 0; i < mm->n_rcpt; i++)
        free(mm->rcpt[i]);
    free(mm->rcpt);
    memset(mm, 0, sizeof(*mm));
}

int mail_compose(const struct rp_alert_msg *m, const struct rp_alert_channel *ch, const char *from,
                 time_t now, struct mail_message *out, struct rp_error *err)
{
    int rc = RP_EINVAL;
    struct mail_message mm = {0};
    struct out hdr, text, html, msg;
    struct view v;
    char name[256], addr[256], id[CAP_ID + 1], nid_buf[CAP_ID + 1];
    out_init(&hdr);
    out_init(&text);
    out_init(&html);
    out_init(&msg);
    view_init(&v, m, ch);

    if (mail_parse_from(from, name, sizeof(name), addr, sizeof(addr), err) != RP_OK)
        goto out;
    put(&hdr, "From: ");
    if (*name) {
        put_phrase(&hdr, name);
        put(&hdr, " <");
        put(&hdr, addr);
        put(&hdr, ">\r\n");
    } else {
        put(&hdr, addr);
        put(&hdr, "\r\n");
    }
    if (!ch)
        rc = rp_error_set(err, RP_EINVAL, "no channel");
    if (!ch || read_rcpts(ch->config, "to", 1, &mm, &hdr, err) != RP_OK ||
        read_rcpts(ch->config, "cc", 0, &mm, &hdr, err) != RP_OK)
        goto out;
    put(&hdr, "Subject: ");
    put_unstructured(&hdr, v.subject, strlen("Subject: "));
    put(&hdr, "\r\n");
    put_date(&hdr, now);
    const char *nid = id_token(m->notification_id, nid_buf, sizeof(nid_buf));
    if (!nid) { /* the engine always gives one; a unique id is the next best thing */
        bson_oid_t oid;
        bson_oid_init(&oid, NULL);
        bson_oid_to_string(&oid, nid_buf);
        nid = nid_buf;
    }
    putf(&hdr, "Message-ID: <%s@rampart>\r\n", nid);
    if (v.kind != K_TEST && id_token(m->dedup_key, id, sizeof(id)))
        putf(&hdr, "References: <%s@rampart>\r\n", id); /* threads one incident's mails */
    put(&hdr, "MIME-Version: 1.0\r\n");
    putf(&hdr, "Content-Type: multipart/alternative;\r\n boundary=\"=_rampart_%.56s\"\r\n", nid);
    put(&hdr, "Auto-Submitted: auto-generated\r\nX-Auto-Response-Suppress: All\r\n");
    if (id_token(m->notification_id, id, sizeof(id)))
        putf(&hdr, "X-Rampart-Notification: %s\r\n", id);
    if (id_token(m->transition_id, id, sizeof(id)))
        putf(&hdr, "X-Rampart-Transition: %s\r\n", id);
    if (id_token(m->kind, id, sizeof(id)))
        putf(&hdr, "X-Rampart-Kind: %s\r\n", id);
    if (id_token(m->incident_id, id, sizeof(id)))
        putf(&hdr, "X-Rampart-Incident: %s\r\n", id);

    text_body(&v, &text);
    html_body(&v, &html);

    /* "=_" never occurs in quoted-printable text ('=' is always followed by hex digits or a
     * line break), so this boundary cannot appear inside a part; at most 66 characters (RFC
     * 2046 allows 70) */
    putn(&msg, hdr.b.data, hdr.b.len);
    put(&msg, "\r\nThis is a multi-part message in MIME format.\r\n");
    putf(&msg, "\r\n--=_rampart_%.56s\r\n", nid);
    put(&msg, "Content-Type: text/plain; charset=utf-8\r\n"
              "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
    put_qp(&msg, text.b.data ? text.b.data : "");
    putf(&msg, "\r\n--=_rampart_%.56s\r\n", nid);
    put(&msg, "Content-Type: text/html; charset=utf-8\r\n"
              "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
    put_qp(&msg, html.b.data ? html.b.data : "");
    putf(&msg, "\r\n--=_rampart_%.56s--\r\n", nid);
    if (hdr.full || text.full || html.full || msg.full) {
        rc = rp_error_set(err, RP_ENOMEM, "the mail would exceed %d bytes", MAIL_MAX_MESSAGE);
        goto out;
    }
    mm.envelope_from = rp_xstrdup(addr);
    mm.data = msg.b.data;
    mm.len = msg.b.len;
    msg.b.data = NULL;
    *out = mm;
    memset(&mm, 0, sizeof(mm));
    rc = RP_OK;
out:
    mail_message_cleanup(&mm);
    view_cleanup(&v);
    rp_buf_cleanup(&hdr.b);
    rp_buf_cleanup(&text.b);
    rp_buf_cleanup(&html.b);
    rp_buf_cleanup(&msg.b);
    return rc;
}
