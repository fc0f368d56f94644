/* rampart-mailer's private header: the e-mail sender the alert engine calls (rampart/alert.h).
 * compose.c turns one notification into an RFC 5322 message (multipart/alternative, plain text
 * and HTML, quoted-printable, RFC 2047 subject, deterministic Message-ID); smtp.c delivers it
 * with libcurl's SMTP and says whether a failure is worth a retry. Neither knows RabbitMQ or
 * PostgreSQL: the engine does the ledger, the retries and the threads. */
#ifndef RAMPART_MAILER_H
#define RAMPART_MAILER_H

#include <stddef.h>
#include <time.h>

#include "rampart/alert.h"
#include "rampart/error.h"

/* Largest composed message; user text is capped well below it (compose.c). */
#define MAIL_MAX_MESSAGE (1024 * 1024)
/* Most addresses in "to" and in "cc" (as the dashboard validates channels). */
#define MAIL_MAX_RCPT_PER_FIELD 50

/* How to reach the SMTP server: the service's settings plus the engine's send timeout. Read-only
 * once the engine runs, so mail_send may use it from several threads at once. Strings are not
 * owned. */
struct mail_smtp {
    const char *url;      /* smtp://host:port (STARTTLS per `tls`) or smtps:// (implicit TLS) */
    const char *tls;      /* "auto" (STARTTLS when offered) | "starttls" (required) | "none" */
    int verify_tls;       /* check the server's certificate and host name */
    const char *user;     /* "" or NULL: no AUTH */
    const char *password; /* secret: never in an outcome or a log */
    const char *from;     /* "Name <address>" or "address": From header and envelope sender */
    long timeout_ms;      /* longest one try may take (connect + dialogue) */
};

/* One composed message and its envelope. */
struct mail_message {
    char *data; /* the RFC 5322 message, CRLF line endings, NUL-terminated */
    size_t len;
    char *envelope_from; /* bare address for MAIL FROM */
    char **rcpt;         /* bare addresses for RCPT TO: "to" then "cc", duplicates removed */
    size_t n_rcpt;
};

/* Split a From setting ("Rampart <rampart@example.com>", "\"Ops, EU\" <a@b>" or "a@b") into
 * the display name (may be empty) and the address, both copied into the caller's buffers.
 * Returns RP_OK, or RP_EINVAL with `err` saying why (no address, a control character, ...). */
int mail_parse_from(const char *from, char *name, size_t name_cap, char *addr, size_t addr_cap,
                    struct rp_error *err) RP_MUST_CHECK;

/* Compose the mail of notification `m` for e-mail channel `ch` (config {"to": [...], "cc":
 * [...]}), sent by `from` (as mail_parse_from accepts) at `now` (the Date header). Every string
 * of `m` may be NULL. User text never reaches a header unsanitized (no CR/LF, no controls) and
 * is HTML-escaped in the HTML part. On RP_OK fills `*out` (free with mail_message_cleanup);
 * RP_EINVAL: the channel or the From address is unusable (no recipient, a bad address), which no
 * retry can fix; RP_ENOMEM: the message would exceed MAIL_MAX_MESSAGE. Thread-safe. */
int mail_compose(const struct rp_alert_msg *m, const struct rp_alert_channel *ch, const char *from,
                 time_t now, struct mail_message *out, struct rp_error *err) RP_MUST_CHECK;
void mail_message_cleanup(struct mail_message *mm);

/* Check the SMTP settings once at start: an smtp:// or smtps:// URL with a host and no
 * credentials (they belong in the user/password settings), a known TLS mode, a usable From.
 * Returns RP_OK or RP_EINVAL with `err` naming the setting (never printing the password). */
int mail_smtp_check(const struct mail_smtp *s, struct rp_error *err) RP_MUST_CHECK;

/* The engine's sender (rp_alert_send_fn; `ctx` is a struct mail_smtp): compose the mail of `m`
 * for `ch` and hand it to the SMTP server once. `out->ok` when the server accepted it for every
 * recipient; otherwise `out->permanent` when retrying cannot help (an SMTP 5xx reply, a bad
 * address or setting, a certificate that does not verify, STARTTLS required but not offered)
 * and not when it may (connection refused, timeout, SMTP 4xx). `out->detail` quotes the
 * server's last reply or the connection error, never the password. Thread-safe: one curl
 * handle per call; curl_global_init must have run before the threads start. */
void mail_send(void *ctx, const struct rp_alert_msg *m, const struct rp_alert_channel *ch,
               struct rp_alert_outcome *out);

#endif
