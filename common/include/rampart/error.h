/* Rampart error codes: every fallible function returns RP_OK or a negative RP_E* code.
 * RP_EAGAIN is the one transient code ("retry later": server down, failover in progress);
 * the others are permanent. Adapters for libpq, rabbitmq-c, libmongoc and libcurl map
 * their errors onto this split, because it decides retry versus dead-letter.
 * Details of a failure go into an optional struct rp_error that callers may pass as NULL. */
#ifndef RAMPART_ERROR_H
#define RAMPART_ERROR_H

#include <stddef.h>

#define RP_MUST_CHECK        __attribute__((warn_unused_result))
#define RP_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))

enum {
    RP_OK = 0,
    RP_EINVAL = -1,    /* bad input or setting: fix the input, retrying will not help */
    RP_EAGAIN = -2,    /* transient: the server is down or failing over; retry later */
    RP_EIO = -3,       /* permanent failure reported by a server or the system */
    RP_ENOENT = -4,    /* the thing asked for does not exist */
    RP_EEXIST = -5,    /* a unique key is already taken (duplicate) */
    RP_ETIMEDOUT = -6, /* gave up waiting; the operation may or may not have happened */
    RP_ECANCELED = -7, /* stopped because the process is draining or shutting down */
    RP_ENOMEM = -8,    /* a size cap was hit (memory itself aborts, see mem.h) */
};

/* Details of the last failure, filled by functions that take a `struct rp_error *`. */
struct rp_error {
    int code;      /* the RP_E* code that was returned */
    char msg[512]; /* human-readable: what failed, where, and how to fix it if known */
};

/* Name of an RP_* code ("transient failure, retry later"). Never returns NULL. */
const char *rp_strerror(int code);

/* Fill `err` (if not NULL) with `code` and a printf-style message; returns `code`, so that
 * `return rp_error_set(err, RP_EINVAL, "...")` reads naturally. Thread-safe. */
int rp_error_set(struct rp_error *err, int code, const char *fmt, ...) RP_PRINTF(3, 4);

/* True if `code` means "transient, retry later". */
static inline int rp_is_transient(int code)
{
    return code == RP_EAGAIN || code == RP_ETIMEDOUT;
}

#endif
