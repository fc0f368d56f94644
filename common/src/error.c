/* rp_strerror and rp_error_set: the one error type shared by every module. */
#include <stdarg.h>
#include <stdio.h>

#include "rampart/error.h"

const char *rp_strerror(int code)
{
    switch (code) {
    case RP_OK:
        return "success";
    case RP_EINVAL:
        return "invalid input or setting";
    case RP_EAGAIN:
        return "transient failure, retry later";
    case RP_EIO:
        return "server or system error";
    case RP_ENOENT:
        return "not found";
    case RP_EEXIST:
        return "already exists (unique key taken)";
    case RP_ETIMEDOUT:
        return "timed out";
    case RP_ECANCELED:
        return "canceled (shutting down)";
    case RP_ENOMEM:
        return "size limit reached";
    default:
        return "unknown error";
    }
}

int rp_error_set(struct rp_error *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
    }
    return code;
}
