/* JSON-lines logger. Each line is built in a local buffer and written with one fwrite under
 * a mutex, so lines from several threads never interleave. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "rampart/error.h"
#include "rampart/log.h"
#include "rampart/mem.h"

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_service[64] = "rampart";
static char log_instance[128];
static enum rp_log_level log_min = RP_LOG_INFO;
static FILE *log_stream;

static const char *level_names[] = {"debug", "info", "warn", "error", "fatal"};

void rp_log_init(const char *service, const char *instance, enum rp_log_level min_level)
{
    pthread_mutex_lock(&log_lock);
    snprintf(log_service, sizeof(log_service), "%s", service ? service : "rampart");
    if (instance && *instance) {
        snprintf(log_instance, sizeof(log_instance), "%s", instance);
    } else {
        char host[64] = "localhost";
        gethostname(host, sizeof(host) - 1);
        host[sizeof(host) - 1] = '\0';
        snprintf(log_instance, sizeof(log_instance), "%s-%ld", host, (long)getpid());
    }
    log_min = min_level;
    pthread_mutex_unlock(&log_lock);
}

const char *rp_log_instance(void)
{
    return log_instance[0] ? log_instance : "unknown";
}

int rp_log_level_parse(const char *s, enum rp_log_level *out)
{
    for (int i = RP_LOG_DEBUG; i <= RP_LOG_ERROR; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (enum rp_log_level)i;
            return RP_OK;
        }
    }
    return RP_EINVAL;
}

void rp_log_set_stream(FILE *f)
{
    pthread_mutex_lock(&log_lock);
    log_stream = f;
    pthread_mutex_unlock(&log_lock);
}

int rp_json_escape(struct rp_buf *out, const char *s)
{
    int rc = RP_OK;
    for (const unsigned char *p = (const unsigned char *)s; *p && rc == RP_OK; p++) {
        switch (*p) {
        case '"':
            rc = rp_buf_append(out, "\\\"", 2);
            break;
        case '\\':
            rc = rp_buf_append(out, "\\\\", 2);
            break;
        case '\n':
            rc = rp_buf_append(out, "\\n", 2);
            break;
        case '\r':
            rc = rp_buf_append(out, "\\r", 2);
            break;
        case '\t':
            rc = rp_buf_append(out, "\\t", 2);
            break;
        default:
            if (*p < 0x20)
                rc = rp_buf_printf(out, "\\u%04x", *p);
            else
                rc = rp_buf_append(out, p, 1);
        }
    }
    return rc;
}

void rp_logv(enum rp_log_level level, const char *run_id, const char *fmt, va_list ap)
{
    if (level < log_min)
        return;
    char msg[2048];
    vsnprintf(msg, sizeof(msg), fmt, ap);

    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char ts[40];
    size_t n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof(ts) - n, ".%03ldZ", (long)(tv.tv_usec / 1000));

    struct rp_buf line;
    rp_buf_init(&line, 0);
    (void)rp_buf_printf(&line, "{\"time\":\"%s\",\"level\":\"%s\",\"service\":\"", ts,
                        level_names[level]);
    (void)rp_json_escape(&line, log_service);
    (void)rp_buf_append(&line, "\",\"instance\":\"", 14);
    (void)rp_json_escape(&line, rp_log_instance());
    if (run_id) {
        (void)rp_buf_append(&line, "\",\"run_id\":\"", 12);
        (void)rp_json_escape(&line, run_id);
    }
    (void)rp_buf_append(&line, "\",\"msg\":\"", 9);
    (void)rp_json_escape(&line, msg);
    (void)rp_buf_append(&line, "\"}\n", 3);

    pthread_mutex_lock(&log_lock);
    FILE *f = log_stream ? log_stream : stderr;
    fwrite(line.data, 1, line.len, f);
    fflush(f);
    pthread_mutex_unlock(&log_lock);
    rp_buf_cleanup(&line);
}

void rp_log(enum rp_log_level level, const char *run_id, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rp_logv(level, run_id, fmt, ap);
    va_end(ap);
}
