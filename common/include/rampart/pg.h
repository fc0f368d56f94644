/* PostgreSQL client (libpq) that rides out restarts and failovers: one struct rp_pg wraps one
 * connection opened from a multi-host conninfo (`host=a,b target_session_attrs=read-write`) and
 * reconnects by itself, because libpq does not. Statements take parameters only; SQL is never
 * built by string concatenation. SQLSTATEs map onto RP_EAGAIN (retry) versus permanent codes.
 * Also here: a transaction helper that re-runs a whole transaction on transient failures, and
 * the schema migration runner (pg_migrate.c). A struct rp_pg is not thread-safe: use one per
 * thread. */
#ifndef RAMPART_PG_H
#define RAMPART_PG_H

#include <stddef.h>

#include <libpq-fe.h>

#include "rampart/error.h"

/* Reconnect design note. A connection is in one of three states:
 *   UP     -- PQstatus is CONNECTION_OK;
 *   LOST   -- the server went away (PQstatus bad, SQLSTATE class 08, 57P01..57P03) or we are
 *             talking to a standby after a failover (25006 read_only_sql_transaction);
 *   DOWN   -- every reconnect attempt within the budget failed.
 * The next statement call moves LOST -> UP by PQfinish + connect again with the same
 * conninfo (so a multi-host conninfo finds the new primary), with exponential back-off until
 * the reconnect budget is spent (DOWN: RP_EAGAIN). A DOWN connection tries again on the next
 * call. A statement marked idempotent is re-sent after the reconnect (up to 5 times); any
 * other returns RP_EAGAIN and the caller decides. Inside rp_pg_tx nothing is re-sent: the
 * whole transaction is re-run instead. */

struct rp_pg;

/* Open a connection. `conninfo` is a libpq keyword/value string or a postgres:// URL and may
 * name several hosts. Defaults that `conninfo` may override: connect_timeout=5 (seconds, per
 * host), application_name=rampart, TCP keepalives (idle 10 s, interval 5 s, count 3) so that a
 * dead server is noticed. The conninfo is kept (in memory only, never logged unredacted) for
 * reconnects. Returns RP_OK and sets `*out` (free with rp_pg_close), RP_EINVAL for a conninfo
 * libpq cannot parse, RP_EAGAIN when no host accepts a connection (retry later). */
int rp_pg_open(const char *conninfo, struct rp_pg **out, struct rp_error *err) RP_MUST_CHECK;

/* Close the connection and free everything. Accepts NULL. */
void rp_pg_close(struct rp_pg *pg);

/* How long one statement call may spend reconnecting (total, across attempts with back-off
 * from 50 ms up to 1 s). Default 15000 ms; 0 means a single attempt. */
void rp_pg_set_reconnect_budget(struct rp_pg *pg, long budget_ms);

/* Keep up to `max` statements prepared on the connection (0, the default: none): a statement
 * text run again is executed from its prepared form, skipping the server's parse and plan (a
 * measured 1.5 ms of a 2.3 ms API query). Statements are told apart by their text, so use it
 * for a fixed set of texts (parameters vary, the SQL does not); once `max` are prepared,
 * further texts run unprepared. A reconnect forgets them (they are prepared again). */
void rp_pg_set_statement_cache(struct rp_pg *pg, size_t max);

/* Number of successful reconnects since rp_pg_open (for metrics and tests). */
unsigned long rp_pg_reconnects(const struct rp_pg *pg);

/* The underlying libpq connection, for what this module does not wrap (COPY, notices). It is
 * replaced on every reconnect: do not keep it across calls. */
PGconn *rp_pg_conn(struct rp_pg *pg);

/* Run one statement with text parameters ($1..$n; `params[i]` NULL means SQL NULL). On success
 * returns RP_OK and, if `out` is not NULL, sets `*out` to the result (caller PQclear()s it).
 * On a lost connection the statement is NOT re-sent (it may have run): RP_EAGAIN is
 * returned and the next call reconnects. Errors: see rp_pg_map_sqlstate; the message names the
 * SQLSTATE and the server's primary message, never parameter values. */
int rp_pg_exec(struct rp_pg *pg, const char *sql, int nparams, const char *const *params,
               PGresult **out, struct rp_error *err) RP_MUST_CHECK;

/* Like rp_pg_exec, for a statement that is safe to run twice (reads, upserts, `INSERT ... ON
 * CONFLICT DO NOTHING`): after a reconnect it is re-sent, so a restart or failover is
 * invisible to the caller as long as it completes within the reconnect budget. Outside a
 * transaction only; inside rp_pg_tx it behaves like rp_pg_exec. */
int rp_pg_exec_idempotent(struct rp_pg *pg, const char *sql, int nparams, const char *const *params,
                          PGresult **out, struct rp_error *err) RP_MUST_CHECK;

/* Run trusted SQL text that may hold several statements and no parameters (migration files).
 * Never pass anything built from outside input. Not re-sent after a reconnect. */
int rp_pg_exec_script(struct rp_pg *pg, const char *sql, struct rp_error *err) RP_MUST_CHECK;

/* `SELECT 1`, reconnecting if needed, its reply waited for `reply_ms` at most: a reply lost
 * on a connection that stays up (a server that stopped answering, a proxy that lost the
 * session) has no other bound. Past it the connection is dropped (the next call makes a new
 * one). RP_OK or RP_EAGAIN. */
int rp_pg_ping(struct rp_pg *pg, long reply_ms, struct rp_error *err) RP_MUST_CHECK;

/* Body of a transaction: run statements on `pg` with rp_pg_exec and return RP_OK to commit or
 * an RP_E* code to roll back. */
typedef int (*rp_pg_tx_fn)(struct rp_pg *pg, void *ctx, struct rp_error *err);

/* BEGIN, fn, COMMIT. When fn or COMMIT fails with a transient error (40001 serialization
 * failure, 40P01 deadlock, lost connection, failover...) the transaction is rolled back and
 * run again from BEGIN, up to 5 attempts with back-off, so `fn` must be safe to re-run and
 * keep no effects outside the database. Returns RP_OK once committed; fn's permanent error as
 * is; RP_EAGAIN when the attempts ran out; RP_ETIMEDOUT when the connection was lost during
 * COMMIT (the transaction may or may not have committed: make it idempotent and retry, or
 * check). Not re-entrant: fn must not call rp_pg_tx. */
int rp_pg_tx(struct rp_pg *pg, rp_pg_tx_fn fn, void *ctx, struct rp_error *err) RP_MUST_CHECK;

/* Map a five-character SQLSTATE (NULL: a client-side failure) to an RP_* code: RP_EAGAIN for
 * transient ones (class 08 connection, 40001, 40P01, class 53 insufficient resources, 57P01..
 * 57P05 shutdown / cannot connect now, 57014 query canceled, 25006 read-only transaction on a
 * standby, 55P03 lock not available, 55006 object in use), RP_EEXIST for 23505, RP_EINVAL for
 * classes 22 (data) and 42 (syntax, access) and the other integrity violations (23xxx),
 * RP_EIO for the rest. Pure function, thread-safe. */
int rp_pg_map_sqlstate(const char *sqlstate);

/* True if the SQLSTATE means the connection must be dropped and opened again (class 08,
 * 57P01..57P03, 25006: connected to a standby). */
int rp_pg_sqlstate_needs_reconnect(const char *sqlstate);

/* Append one element to a PostgreSQL array literal being built in `b` for a `$n::type[]`
 * parameter (the caller appends the opening "{" and the closing "}"): a comma when needed,
 * then `s` quoted with `"` and `\` escaped, or NULL when `s` is NULL. The element is data in a
 * parameter, never SQL text. */
struct rp_buf;
void rp_pg_array_add(struct rp_buf *b, const char *s);

/* -- Schema migrations (pg_migrate.c) ----------------------------------------------------- */

/* One migration file: `NNNN_description.sql` (exactly four digits, version >= 1, description
 * of [A-Za-z0-9_-]). */
struct rp_pg_migration {
    int version;
    char *name;        /* file name, e.g. "0001_init.sql" */
    char *sql;         /* file contents (capped at 4 MiB) */
    char checksum[65]; /* SHA-256 of the contents, lower-case hex */
};

/* Read the migration files of `dir`, sorted by version. Files whose name does not end in
 * ".sql" and dot-files are ignored; a *.sql file with a bad name, two files with the same
 * version, or an unreadable file is refused with RP_EINVAL naming the file. An empty folder
 * gives `*n` = 0. Free with rp_pg_migrations_free. */
int rp_pg_migrations_load(const char *dir, struct rp_pg_migration **out, size_t *n,
                          struct rp_error *err) RP_MUST_CHECK;
void rp_pg_migrations_free(struct rp_pg_migration *m, size_t n);

/* Apply the migrations of `dir` (NULL: RP_MIGRATIONS_DIR, the source tree's
 * common/migrations) that are not applied yet, in order, each in its own transaction together
 * with its row in `schema_migrations(version, name, checksum, applied_at)`. Several processes
 * may run it at once: a transaction-scoped advisory lock serializes them, so each migration
 * runs exactly once. Refuses (RP_EINVAL, naming the file, nothing applied) a folder where an
 * applied file's checksum changed, or a new file numbered below an applied one. `*applied`
 * (may be NULL) receives how many this call applied. */
/* `*applied` is set on failure too: how many were applied before it. A failing file is
 * rolled back together with its row, and its error names it. */
int rp_pg_migrate(struct rp_pg *pg, const char *dir, int *applied,
                  struct rp_error *err) RP_MUST_CHECK;

/* Highest applied migration version, 0 when none (or no schema_migrations table yet). */
int rp_pg_schema_version(struct rp_pg *pg, int *version, struct rp_error *err) RP_MUST_CHECK;

#endif
