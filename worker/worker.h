/* The test engine's private interfaces (rampart-worker): the engine (engine.c, http.c, result.c)
 * runs tests concurrently on libcurl's multi interface and builds one result document (BSON) per
 * run, and the `run` command line (cli.c) drives it for local test files. The test language it
 * runs (definitions, expressions, JSON path and Schema, variables, templating, reading results,
 * JUnit XML) is shared with other services: rampart/testlang.h, in common/.
 * Core logic knows no transport: the CLI (cli.c) and the queue consumer call the engine with a
 * definition and variables and get a result back. Nothing here is thread-safe unless it says
 * so: one engine per thread. */
#ifndef RAMPART_WORKER_H
#define RAMPART_WORKER_H

#include <stddef.h>
#include <stdint.h>

#include <bson/bson.h>

#include "rampart/error.h"
#include "rampart/testlang.h"

/* ==== engine (engine.c, http.c, result.c) =================================================
 * Runs many tests at once on one thread with libcurl's multi interface (connections reused
 * across runs and steps). A run is a small state machine:
 *   NEXT_STEP -> (if false: skipped) -> RENDER (templates; an unknown variable is an `error`)
 *   -> REQUEST (in flight on the multi handle) -> CHECK (captures, schema, assertions)
 *   -> NEXT_STEP ... -> DONE (result document handed to the callback).
 * `each` repeats RENDER..CHECK per element. wrk_engine_run moves every run forward. */

struct wrk_engine_opts {
    size_t body_cap;           /* bytes of a response body kept (default 1 MiB); the rest is
                                  counted, not stored */
    size_t max_concurrent;     /* transfers at once (default 256); more runs wait their turn */
    long max_host_connections; /* per host (default 0 = libcurl's default: unlimited) */
    const char *user_agent;    /* default "rampart/<version>" */
};

struct wrk_engine;

int wrk_engine_new(const struct wrk_engine_opts *opts, struct wrk_engine **out,
                   struct rp_error *err) RP_MUST_CHECK;
void wrk_engine_free(struct wrk_engine *e);

/* Called once per run, from inside wrk_engine_run, with the result document (see result.c:
 * {_id: run_id, test, status: passed|failed|error, error?, started_at, finished_at,
 *  duration_ms, steps: [{name, iteration?, skipped?, request: {method, url, headers, body},
 *  response: {status, headers, body, body_size, body_truncated}, timings: {...},
 *  assertions: [{expr, passed, severity, actual, message}], captures: [{name, value}],
 *  error?}], counts: {assertions, failed, warnings}}). Secrets are redacted everywhere in it.
 * The callee may keep `result` (it owns it: bson_destroy). */
typedef void (*wrk_done_fn)(void *ud, const char *run_id, bson_t *result);

/* Start a run of `test` with `vars` (the engine clones them; the caller keeps its copy). The
 * test must outlive the run. */
int wrk_engine_submit(struct wrk_engine *e, const struct rp_test *test, const struct rp_vars *vars,
                      const char *run_id, wrk_done_fn done, void *ud,
                      struct rp_error *err) RP_MUST_CHECK;
/* Drive transfers for up to `timeout_ms` (0: do what is ready, don't wait). Returns early, once
 * at least one run has finished, so the caller can submit more. Returns the number of runs
 * still in flight. */
size_t wrk_engine_run(struct wrk_engine *e, long timeout_ms);
size_t wrk_engine_in_flight(const struct wrk_engine *e);
/* Connections the engine has opened so far (libcurl's CURLINFO_NUM_CONNECTS, summed): a new
 * connection per request means reuse is not working. For tests and metrics. */
uint64_t wrk_engine_connections(const struct wrk_engine *e);

/* ==== command line (cli.c) ================================================================ */

/* `rampart-worker run FILE... [options]`: argv[0] is "run". Returns the exit code: 0 all
 * passed, 1 some test failed, 2 bad usage, a bad definition or a run that could not run. */
int wrk_cli_run(int argc, char **argv);

#endif
