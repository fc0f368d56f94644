/* JSON-lines logging to stderr: one object per line with time, level, service, instance and
 * message, plus run_id / request_id where the caller has one. One module, so no secret can be
 * printed by accident elsewhere: callers log messages, never raw settings or URLs with
 * passwords (see rp_redact_url in config.h). All functions are thread-safe. */
#ifndef RAMPART_LOG_H
#define RAMPART_LOG_H

#include <stdarg.h>
#include <stdio.h>

enum rp_log_level { RP_LOG_DEBUG = 0, RP_LOG_INFO, RP_LOG_WARN, RP_LOG_ERROR, RP_LOG_FATAL };

/* Set the service name and instance id written on every line, and the lowest level that is
 * printed. `instance` may be NULL: hostname + pid is used. Call once at start-up. */
void rp_log_init(const char *service, const char *instance, enum rp_log_level min_level);
/* Parse "debug|info|warn|error"; returns RP_OK or RP_EINVAL. */
int rp_log_level_parse(const char *s, enum rp_log_level *out);
/* Redirect output (tests); NULL restores stderr. */
void rp_log_set_stream(FILE *f);
const char *rp_log_instance(void);

/* Log one line. `run_id` may be NULL. Additional structured fields are not supported on
 * purpose: put them in the message. */
void rp_log(enum rp_log_level level, const char *run_id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void rp_logv(enum rp_log_level level, const char *run_id, const char *fmt, va_list ap);

#define rp_debug(...) rp_log(RP_LOG_DEBUG, NULL, __VA_ARGS__)
#define rp_info(...)  rp_log(RP_LOG_INFO, NULL, __VA_ARGS__)
#define rp_warn(...)  rp_log(RP_LOG_WARN, NULL, __VA_ARGS__)
#define rp_err(...)   rp_log(RP_LOG_ERROR, NULL, __VA_ARGS__)

/* Append `s` to `out` as the inside of a JSON string (escaped, no quotes). Exposed for the
 * metrics and health modules. Returns RP_OK or RP_ENOMEM when `out` hits its cap. */
struct rp_buf;
int rp_json_escape(struct rp_buf *out, const char *s);

#endif
