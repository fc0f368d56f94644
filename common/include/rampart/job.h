/* The messages of the run pipeline (docs/pipeline.md): a job (scheduler -> worker, on
 * `rampart.jobs`, one or more runs of one location per message) and the `run.finished.<status>`
 * event (worker -> `rampart.events`), both JSON. Also run ids: UUIDv7, time-ordered, made by
 * the process that creates the run (PostgreSQL row id and MongoDB _id alike). Pure code, no
 * I/O; thread-safe. */
#ifndef RAMPART_JOB_H
#define RAMPART_JOB_H

#include <stddef.h>
#include <stdint.h>

#include "rampart/error.h"

struct rp_buf;

#define RP_UUID_LEN      36          /* "xxxxxxxx-xxxx-7xxx-yxxx-xxxxxxxxxxxx" */
#define RP_JOB_MAX_RUNS  1000        /* runs in one job message */
#define RP_JOB_MAX_BYTES (16u << 20) /* a job message larger than this is refused */

/* A new UUIDv7 (RFC 9562): 48-bit Unix milliseconds, then random bits (libsodium), written
 * as 36 lower-case characters + NUL into `out`. Ids made later in the same process sort
 * after earlier ones (a counter in the random part keeps order within one millisecond). */
void rp_uuid_v7(char out[RP_UUID_LEN + 1]);
/* 1 if `s` is a UUID in the canonical 8-4-4-4-12 hex form (any version, either case). */
int rp_uuid_valid(const char *s);

/* Milliseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t rp_now_unix_ms(void);

/* One run to execute. Strings are NUL-terminated; optional ones are NULL when absent. */
struct rp_job_run {
    char run_id[RP_UUID_LEN + 1];
    char project_id[RP_UUID_LEN + 1];
    char test_id[RP_UUID_LEN + 1];
    int test_version;
    char *schedule_id;    /* NULL for manual and API runs */
    char *environment_id; /* NULL when the run has no environment */
    int64_t fire_time_ms; /* when it was due (Unix ms) */
    char trigger[16];     /* "schedule" | "manual" | "api" */
    char location[33];
    int retries;      /* retries on failure allowed (0..5) */
    char *definition; /* the test definition, JSON text as saved */
    char *variables;  /* environment variables, a JSON object as text ("{}" if none) */
    char *overrides;  /* run-time variables of a manual or API run (the override layer, above the
                         test's own), a JSON object as text; NULL when none (scheduled runs) */
};

/* A decoded job message: `n` runs, all for the same location. */
struct rp_job {
    struct rp_job_run *runs;
    size_t n;
};

/* Append the job message for `runs[0..n)` to `out`:
 *   {"v":1,"runs":[{"run_id":..,"project_id":..,"test_id":..,"test_version":N,
 *     "schedule_id":..|null,"environment_id":..|null,"fire_time_ms":N,"trigger":..,
 *     "location":..,"retries":N,"definition":"<JSON text>","variables":"<JSON text>"
 *     [,"overrides":"<JSON text>"]}]}
 * "overrides" is left out when the run has none (NULL), so a message without overrides is the
 * same as before they existed. RP_EINVAL when n is 0 or above RP_JOB_MAX_RUNS; RP_ENOMEM when `out`
 * reaches its cap. */
int rp_job_encode(const struct rp_job_run *runs, size_t n, struct rp_buf *out) RP_MUST_CHECK;

/* Parse a job message. Checks everything a worker relies on (ids are UUIDs, trigger known,
 * location well-formed, version >= 1, retries 0..5, definition and variables present,
 * overrides a string, null or absent) and
 * refuses anything else with RP_EINVAL and a message naming the field and the run index.
 * Never crashes on any input (fuzzed). Caller frees *out with rp_job_free. */
int rp_job_decode(const void *body, size_t len, struct rp_job **out,
                  struct rp_error *err) RP_MUST_CHECK;
void rp_job_free(struct rp_job *job);
/* Free the strings a struct rp_job_run owns (not the struct itself). */
void rp_job_run_cleanup(struct rp_job_run *r);

/* The `run.finished.<status>` event, published by the worker after the result is stored:
 *   {"v":1,"run_id":..,"project_id":..,"test_id":..,"test_version":N,"schedule_id":..|null,
 *    "location":..,"trigger":..,"fire_time_ms":N,"status":"passed|failed|error",
 *    "started_at_ms":N,"finished_at_ms":N,"duration_ms":N,"attempt":N,
 *    "error":..|null,"failure":..|null}
 * `failure` is the first failed error-severity check's message (what a person reads first). */
struct rp_run_finished {
    const struct rp_job_run *run;
    const char *status;
    int64_t started_at_ms, finished_at_ms;
    double duration_ms;
    int attempt;
    const char *error;   /* may be NULL */
    const char *failure; /* may be NULL */
};
int rp_run_finished_encode(const struct rp_run_finished *ev, struct rp_buf *out) RP_MUST_CHECK;

#endif
