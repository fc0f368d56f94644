/* Delivery over SMTP with libcurl: one easy handle per try (so any number of engine threads may
 * send at once), the composed message uploaded as is, STARTTLS / implicit TLS and AUTH per the
 * settings. The outcome sorts failures for the engine: an SMTP 5xx reply, a bad address or
 * setting, a certificate that does not verify are permanent; a refused connection, a timeout or
 * an SMTP 4xx reply are worth a retry. The detail quotes the server's reply that decided (only
 * the server's side of the dialogue is kept, so the AUTH line with the credentials is never
 * seen). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "mailer.h"
#include "rampart/mem.h"

#define N_REPLIES 4 /* the server's last reply lines kept, to quote the one that failed */

struct upload {
    const char *data;
    size_t len, pos;
    char reply[N_REPLIES][256]; /* a ring of the server's last reply lines */
    unsigned n_replies;
};

static size_t read_cb(char *buf, size_t size, size_t nitems, void *ud)
{
    struct upload *u = ud;
    size_t n = size * nitems, left = u->len - u->pos;
    if (n > left)
        n = left;
    memcpy(buf, u->data + u->pos, n);
    u->pos += n;
    return n;
}

/* Keeps the server's reply lines (CURLINFO_HEADER_IN is what the server sends, for SMTP); what
 * the client sent, AUTH included, is never looked at. */
static int debug_cb(CURL *c, curl_infotype type, char *data, size_t size, void *ud)
{
    struct upload *u = ud;
    (void)c;
    if (type != CURLINFO_HEADER_IN)
        return 0;
    while (size > 0) {
        size_t n = 0;
        while (n < size && data[n] != '\n' && data[n] != '\r')
            n++;
        if (n > 0) {
            char *r = u->reply[u->n_replies++ % N_REPLIES];
            size_t k = n < 255 ? n : 255;
            for (size_t i = 0; i < k; i++) {
                unsigned char ch = (unsigned char)data[i];
                r[i] = ch < 0x20 || ch == 0x7F ? ' ' : (char)ch;
            }
            r[k] = '\0';
        }
        while (n < size && (data[n] == '\n' || data[n] == '\r'))
            n++;
        data += n;
        size -= n;
    }
    return 0;
}

/* The latest reply line with code `code` ("" if none): after a failure curl may still have said
 * QUIT, whose "221 Bye" is not the answer worth quoting. */
static const char *reply_with(const struct upload *u, long code)
{
    char want[8];
    snprintf(want, sizeof(want), "%ld", code);
    for (unsigned i = 0; i < N_REPLIES && i < u->n_replies; i++) {
        const char *r = u->reply[(u->n_replies - 1 - i) % N_REPLIES];
        if (strncmp(r, want, 3) == 0 && (r[3] == ' ' || r[3] == '-' || r[3] == '\0'))
            return r;
    }
    return "";
}

static int is_smtp_url(const char *url)
{
    return strncasecmp(url, "smtp://", 7) == 0 || strncasecmp(url, "smtps://", 8) == 0;
}

int mail_smtp_check(const struct mail_smtp *s, struct rp_error *err)
{
    char name[256], addr[256];
    struct rp_error e;
    if (!s->url || !is_smtp_url(s->url))
        return rp_error_set(err, RP_EINVAL,
                            "RAMPART_SMTP_URL must be smtp://host[:port] or smtps://host[:port]");
    CURLU *u = curl_url();
    char *host = NULL, *user = NULL, *password = NULL;
    int bad = !u || curl_url_set(u, CURLUPART_URL, s->url, 0) != CURLUE_OK ||
              curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host || !*host;
    int creds = !bad && (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK ||
                         curl_url_get(u, CURLUPART_PASSWORD, &password, 0) == CURLUE_OK);
    curl_free(host);
    curl_free(user);
    curl_free(password);
    curl_url_cleanup(u);
    if (bad)
        return rp_error_set(err, RP_EINVAL, "RAMPART_SMTP_URL is not a URL with a host");
    if (creds)
        return rp_error_set(err, RP_EINVAL,
                            "RAMPART_SMTP_URL carries credentials: put them in RAMPART_SMTP_USER "
                            "and RAMPART_SMTP_PASSWORD");
    if (!s->tls || (strcmp(s->tls, "auto") != 0 && strcmp(s->tls, "starttls") != 0 &&
                    strcmp(s->tls, "none") != 0))
        return rp_error_set(err, RP_EINVAL, "RAMPART_SMTP_TLS must be auto, starttls or none");
    if (mail_parse_from(s->from, name, sizeof(name), addr, sizeof(addr), &e) != RP_OK)
        return rp_error_set(err, RP_EINVAL, "RAMPART_SMTP_FROM: %s", e.msg);
    return RP_OK;
}

/* Whether a failed try may succeed later. The SMTP reply code decides when there is one (4xx
 * transient, 5xx permanent); otherwise the kind of error. */
static int is_permanent(CURLcode cc, long code)
{
    if (code >= 400 && code < 500)
        return 0;
    if (code >= 500 && code < 600)
        return 1;
    switch (cc) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_LOGIN_DENIED:
    case CURLE_AUTH_ERROR:
    case CURLE_USE_SSL_FAILED:           /* STARTTLS required, not offered */
    case CURLE_PEER_FAILED_VERIFICATION: /* the certificate does not verify */
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_NOT_BUILT_IN:
        return 1;
    default:
        return 0;
    }
}

/* Format the outcome's detail; should it contain the password, it is replaced. */
static void set_detail(struct rp_alert_outcome *out, const struct mail_smtp *s, const char *fmt,
                       ...) __attribute__((format(printf, 3, 4)));
static void set_detail(struct rp_alert_outcome *out, const struct mail_smtp *s, const char *fmt,
                       ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->detail, sizeof(out->detail), fmt, ap);
    va_end(ap);
    if (s->password && *s->password && strstr(out->detail, s->password))
        snprintf(out->detail, sizeof(out->detail),
                 "SMTP failure (the reply is withheld: it quoted the password)");
}

void mail_send(void *ctx, const struct rp_alert_msg *m, const struct rp_alert_channel *ch,
               struct rp_alert_outcome *out)
{
    const struct mail_smtp *s = ctx;
    struct mail_message mm = {0};
    struct rp_error e;
    struct curl_slist *rcpt = NULL;
    CURL *c = NULL;
    char errbuf[CURL_ERROR_SIZE] = "";
    memset(out, 0, sizeof(*out));

    int rc = mail_compose(m, ch, s->from, time(NULL), &mm, &e);
    if (rc != RP_OK) {
        out->permanent = 1;
        set_detail(out, s, "not sent: %s", e.msg);
        goto out;
    }
    for (size_t i = 0; i < mm.n_rcpt; i++) {
        struct curl_slist *n = curl_slist_append(rcpt, mm.rcpt[i]);
        if (!n) {
            set_detail(out, s, "not sent: out of memory");
            goto out;
        }
        rcpt = n;
    }
    c = curl_easy_init();
    if (!c) {
        set_detail(out, s, "not sent: curl_easy_init failed");
        goto out;
    }
    struct upload up = {.data = mm.data, .len = mm.len};
    const char *tls = s->tls ? s->tls : "auto";
    long use_ssl = strcmp(tls, "starttls") == 0 ? CURLUSESSL_ALL
                   : strcmp(tls, "none") == 0   ? CURLUSESSL_NONE
                                                : CURLUSESSL_TRY;
    long timeout = s->timeout_ms > 0 ? s->timeout_ms : 15000;
    CURLcode cc = CURLE_OK;
#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (cc == CURLE_OK)                                                                        \
            cc = curl_easy_setopt(c, opt, val);                                                    \
    } while (0)
    SET(CURLOPT_URL, s->url);
    SET(CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    SET(CURLOPT_MAIL_FROM, mm.envelope_from);
    SET(CURLOPT_MAIL_RCPT, rcpt);
    SET(CURLOPT_UPLOAD, 1L);
    SET(CURLOPT_READFUNCTION, read_cb);
    SET(CURLOPT_READDATA, &up);
    SET(CURLOPT_INFILESIZE_LARGE, (curl_off_t)mm.len);
    SET(CURLOPT_USE_SSL, use_ssl);
    SET(CURLOPT_SSL_VERIFYPEER, s->verify_tls ? 1L : 0L);
    SET(CURLOPT_SSL_VERIFYHOST, s->verify_tls ? 2L : 0L);
    SET(CURLOPT_TIMEOUT_MS, timeout);
    SET(CURLOPT_CONNECTTIMEOUT_MS, timeout);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_ERRORBUFFER, errbuf);
    SET(CURLOPT_VERBOSE, 1L); /* feeds debug_cb; nothing is printed */
    SET(CURLOPT_DEBUGFUNCTION, debug_cb);
    SET(CURLOPT_DEBUGDATA, &up);
    if (s->user && *s->user) {
        SET(CURLOPT_USERNAME, s->user);
        SET(CURLOPT_PASSWORD, s->password ? s->password : "");
    }
#undef SET
    if (cc != CURLE_OK) {
        out->permanent = 1;
        set_detail(out, s, "not sent: libcurl refused an option: %s", curl_easy_strerror(cc));
        goto out;
    }

    cc = curl_easy_perform(c);
    long code = 0;
    (void)curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    const char *reply = reply_with(&up, code);
    const char *said = reply[0] && reply[3] ? reply + 4 : ""; /* the reply after its code */
    if (cc == CURLE_OK) {
        out->ok = 1;
        set_detail(out, s, "SMTP %ld accepted for %zu recipient%s%s%s%s", code, mm.n_rcpt,
                   mm.n_rcpt == 1 ? "" : "s", *said ? " (" : "", said, *said ? ")" : "");
        goto out;
    }
    out->permanent = is_permanent(cc, code);
    const char *why = *errbuf ? errbuf : curl_easy_strerror(cc);
    if (code >= 400 && *reply && *errbuf)
        set_detail(out, s, "SMTP %s (%s)", reply, errbuf);
    else if (code >= 400 && *reply)
        set_detail(out, s, "SMTP %s", reply);
    else if (cc == CURLE_OPERATION_TIMEDOUT)
        set_detail(out, s, "SMTP timed out (limit %ld ms): %s", timeout, why);
    else
        set_detail(out, s, "SMTP failed: %s", why);
out:
    curl_easy_cleanup(c);
    curl_slist_free_all(rcpt);
    mail_message_cleanup(&mm);
}
