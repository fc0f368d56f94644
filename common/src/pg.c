/* PostgreSQL connection with reconnect, parameterized execution, SQLSTATE mapping and the
 * retrying transaction helper. The reconnect state machine is described in rampart/pg.h:
 * run() is the one place that sends statements, notices a lost connection, drops it and (for
 * idempotent statements outside a transaction) reconnects and re-sends. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "rampart/config.h"
#include "rampart/error.h"
#include "rampart/log.h"
#include "rampart/mem.h"
#include "rampart/pg.h"

#define DEFAULT_BUDGET_MS 15000L
#define BACKOFF_MIN_MS    50L
#define BACKOFF_MAX_MS    1000L
#define MAX_RESENDS       5
#define TX_ATTEMPTS       5

enum { RUN_IDEMPOTENT = 1, RUN_SCRIPT = 2 };

struct rp_pg {
    PGconn *conn;   /* NULL while LOST or DOWN */
    char *conninfo; /* kept for reconnects; may hold a password: never log it */
    char *target;   /* redacted conninfo, for logs */
    long budget_ms; /* reconnect budget per call */
    unsigned long reconnects;
    int in_tx;     /* inside rp_pg_tx, between BEGIN and COMMIT/ROLLBACK */
    int tx_broken; /* the connection was lost inside the transaction */
    /* prepared statements of the current connection (rp_pg_set_statement_cache): statement
     * i is named "rp_s<i>"; they die with the connection, so the cache belongs to conn_gen */
    unsigned long conn_gen, stmts_gen;
    char **stmts;
    size_t n_stmts, max_stmts;
};

static void stmts_clear(struct rp_pg *pg)
{
    for (size_t i = 0; i < pg->n_stmts; i++)
        free(pg->stmts[i]);
    pg->n_stmts = 0;
    pg->stmts_gen = pg->conn_gen;
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* Copy a libpq message into `buf` on one line (libpq ends messages with newlines). */
static void one_line(char *buf, size_t len, const char *msg)
{
    snprintf(buf, len, "%s", msg && *msg ? msg : "unknown error");
    for (char *p = buf; *p; p++) {
        if (*p == '\n' || *p == '\r' || *p == '\t')
            *p = ' ';
    }
    size_t n = strlen(buf);
    while (n && buf[n - 1] == ' ')
        buf[--n] = '\0';
}

int rp_pg_sqlstate_needs_reconnect(const char *s)
{
    if (!s || strlen(s) != 5)
        return 0;
    return strncmp(s, "08", 2) == 0 || strcmp(s, "57P01") == 0 || strcmp(s, "57P02") == 0 ||
           strcmp(s, "57P03") == 0 || strcmp(s, "25006") == 0;
}

int rp_pg_map_sqlstate(const char *s)
{
    if (!s || strlen(s) != 5)
        return RP_EIO;
    if (rp_pg_sqlstate_needs_reconnect(s))
        return RP_EAGAIN;
    static const char *const transient[] = {"40001", "40P01", "57P04", "57P05",
                                            "57014", "55P03", "55006", "58000"};
    for (size_t i = 0; i < sizeof(transient) / sizeof(transient[0]); i++) {
        if (strcmp(s, transient[i]) == 0)
            return RP_EAGAIN;
    }
    if (strncmp(s, "53", 2) == 0)
        return RP_EAGAIN;
    if (strcmp(s, "23505") == 0)
        return RP_EEXIST;
    if (strncmp(s, "22", 2) == 0 || strncmp(s, "42", 2) == 0 || strncmp(s, "23", 2) == 0)
        return RP_EINVAL;
    return RP_EIO;
}

/* Failures of the connection start-up that retrying will not fix. libpq gives no SQLSTATE
 * here, so this looks at the (English) message; anything unrecognized counts as transient. */
static int connect_error_is_permanent(const char *msg)
{
    return strstr(msg, "authentication failed") || strstr(msg, "does not exist") ||
           strstr(msg, "no pg_hba.conf entry") || strstr(msg, "invalid ");
}

/* Server notices (e.g. "relation already exists, skipping") go to the debug log, not to
 * libpq's default stderr printer. */
static void on_notice(void *arg, const char *message)
{
    char line[300];
    one_line(line, sizeof(line), message);
    rp_debug("pg: server notice: %s", line);
}

/* One connection attempt over every host of the conninfo. Sets pg->conn on success. */
static int connect_once(struct rp_pg *pg, struct rp_error *err)
{
    /* Entries before "dbname" are defaults the conninfo may override (expand_dbname).
     * Keepalives find a dead server while we wait for a reply (25 s); tcp_user_timeout bounds
     * how long sent data may stay unacknowledged (a query sent into a network cut), which
     * keepalives do not cover: without it the kernel retries for about 15 minutes. */
    const char *const keys[] = {"connect_timeout",
                                "application_name",
                                "keepalives",
                                "keepalives_idle",
                                "keepalives_interval",
                                "keepalives_count",
                                "tcp_user_timeout",
                                "dbname",
                                NULL};
    const char *const vals[] = {"5", "rampart", "1", "10", "5", "3", "25000", pg->conninfo, NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (c && PQstatus(c) == CONNECTION_OK) {
        PQsetNoticeProcessor(c, on_notice, NULL);
        pg->conn = c;
        pg->conn_gen++;
        return RP_OK;
    }
    char msg[400];
    one_line(msg, sizeof(msg), c ? PQerrorMessage(c) : "out of memory");
    PQfinish(c);
    int rc = connect_error_is_permanent(msg) ? RP_EINVAL : RP_EAGAIN;
    return rp_error_set(err, rc, "pg: cannot connect to %s: %s", pg->target, msg);
}

/* LOST/DOWN -> UP, with back-off until the budget is spent. */
static int reconnect(struct rp_pg *pg, struct rp_error *err)
{
    long start = now_ms(), delay = BACKOFF_MIN_MS;
    PQfinish(pg->conn);
    pg->conn = NULL;
    for (;;) {
        int rc = connect_once(pg, err);
        long elapsed = now_ms() - start;
        if (rc == RP_OK) {
            pg->reconnects++;
            rp_info("pg: reconnected to %s after %ld ms", pg->target, elapsed);
            return RP_OK;
        }
        if (rc != RP_EAGAIN || elapsed + delay > pg->budget_ms) {
            rp_warn("pg: reconnect to %s failed after %ld ms: %s", pg->target, elapsed,
                    err ? err->msg : rp_strerror(rc));
            return rc;
        }
        sleep_ms(delay);
        delay = delay * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : delay * 2;
    }
}

int rp_pg_open(const char *conninfo, struct rp_pg **out, struct rp_error *err)
{
    char *msg = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo ? conninfo : "", &msg);
    if (!opts) {
        char line[300];
        one_line(line, sizeof(line), msg ? msg : "unparsable");
        PQfreemem(msg);
        return rp_error_set(err, RP_EINVAL, "pg: bad conninfo: %s", line);
    }
    PQconninfoFree(opts);

    struct rp_pg *pg = rp_xcalloc(1, sizeof(*pg));
    pg->conninfo = rp_xstrdup(conninfo);
    pg->target = rp_redact_url(conninfo);
    pg->budget_ms = DEFAULT_BUDGET_MS;
    int rc = connect_once(pg, err);
    if (rc != RP_OK)
        goto out;
    *out = pg;
    pg = NULL;
out:
    rp_pg_close(pg);
    return rc;
}

void rp_pg_close(struct rp_pg *pg)
{
    if (!pg)
        return;
    PQfinish(pg->conn);
    stmts_clear(pg);
    free(pg->stmts);
    if (pg->conninfo)
        memset(pg->conninfo, 0, strlen(pg->conninfo));
    free(pg->conninfo);
    free(pg->target);
    free(pg);
}

void rp_pg_set_statement_cache(struct rp_pg *pg, size_t max)
{
    stmts_clear(pg);
    free(pg->stmts);
    pg->stmts = max ? rp_xcalloc(max, sizeof(*pg->stmts)) : NULL;
    pg->max_stmts = max;
}

/* Run `sql` as a prepared statement of this connection, preparing it on first use; past the
 * cache's size, as an unnamed one. Returns the result (or a failed PREPARE's result). */
static PGresult *exec_cached(struct rp_pg *pg, const char *sql, int nparams,
                             const char *const *params)
{
    if (pg->stmts_gen != pg->conn_gen)
        stmts_clear(pg); /* a new connection: nothing is prepared on it */
    size_t i = 0;
    while (i < pg->n_stmts && strcmp(pg->stmts[i], sql) != 0)
        i++;
    char name[32];
    snprintf(name, sizeof(name), "rp_s%zu", i);
    if (i == pg->n_stmts) {
        if (i == pg->max_stmts)
            return PQexecParams(pg->conn, sql, nparams, NULL, params, NULL, NULL, 0);
        PGresult *prep = PQprepare(pg->conn, name, sql, nparams, NULL);
        if (!prep || PQresultStatus(prep) != PGRES_COMMAND_OK)
            return prep;
        PQclear(prep);
        pg->stmts[pg->n_stmts++] = rp_xstrdup(sql);
    }
    return PQexecPrepared(pg->conn, name, nparams, params, NULL, NULL, 0);
}

void rp_pg_set_reconnect_budget(struct rp_pg *pg, long budget_ms)
{
    pg->budget_ms = budget_ms < 0 ? 0 : budget_ms;
}

unsigned long rp_pg_reconnects(const struct rp_pg *pg)
{
    return pg->reconnects;
}

PGconn *rp_pg_conn(struct rp_pg *pg)
{
    return pg->conn;
}

/* Fill `err` from a failed result: SQLSTATE, the server's primary message, and the start of
 * the statement (constant SQL text; parameter values are never included). */
static int result_error(struct rp_error *err, int rc, const PGresult *res, PGconn *conn,
                        const char *sql)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    char msg[300], stmt[72];
    one_line(msg, sizeof(msg), primary ? primary : (conn ? PQerrorMessage(conn) : NULL));
    one_line(stmt, sizeof(stmt), sql);
    return rp_error_set(err, rc, "pg: %s%s%s%s (statement: %s%s)", state ? "SQLSTATE " : "",
                        state ? state : "", state ? ": " : "", msg, stmt,
                        strlen(sql) >= sizeof(stmt) - 1 ? "..." : "");
}

static int run(struct rp_pg *pg, const char *sql, int nparams, const char *const *params, int flags,
               PGresult **out, struct rp_error *err)
{
    if (pg->in_tx && pg->tx_broken)
        return rp_error_set(err, RP_EAGAIN, "pg: transaction lost with its connection");
    for (int resends = 0;; resends++) {
        if (!pg->conn || PQstatus(pg->conn) != CONNECTION_OK) {
            if (pg->in_tx) {
                pg->tx_broken = 1;
                return rp_error_set(err, RP_EAGAIN, "pg: connection lost inside a transaction");
            }
            int rc = reconnect(pg, err);
            if (rc != RP_OK)
                return rc == RP_EINVAL ? RP_EINVAL : RP_EAGAIN;
        }
        PGresult *res = (flags & RUN_SCRIPT) ? PQexec(pg->conn, sql)
                        : pg->max_stmts
                            ? exec_cached(pg, sql, nparams, params)
                            : PQexecParams(pg->conn, sql, nparams, NULL, params, NULL, NULL, 0);
        ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
        if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY) {
            if (out)
                *out = res;
            else
                PQclear(res);
            return RP_OK;
        }
        const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        if (pg->max_stmts && !pg->in_tx && state && strcmp(state, "0A000") == 0 &&
            resends < MAX_RESENDS && !(flags & RUN_SCRIPT)) {
            /* "cached plan must not change result type": the schema changed under a
             * prepared statement (a migration); prepare everything again */
            PQclear(res);
            PQclear(PQexec(pg->conn, "DEALLOCATE ALL"));
            stmts_clear(pg);
            continue;
        }
        int lost = PQstatus(pg->conn) != CONNECTION_OK || rp_pg_sqlstate_needs_reconnect(state);
        int rc = lost ? RP_EAGAIN : rp_pg_map_sqlstate(state);
        result_error(err, rc, res, pg->conn, sql);
        PQclear(res);
        if (!lost)
            return rc;
        rp_warn("pg: connection to %s lost: %s", pg->target, err ? err->msg : "");
        PQfinish(pg->conn);
        pg->conn = NULL;
        if (pg->in_tx) {
            pg->tx_broken = 1;
            return rc;
        }
        if (!(flags & RUN_IDEMPOTENT) || resends >= MAX_RESENDS)
            return rc;
    }
}

int rp_pg_exec(struct rp_pg *pg, const char *sql, int nparams, const char *const *params,
               PGresult **out, struct rp_error *err)
{
    return run(pg, sql, nparams, params, 0, out, err);
}

int rp_pg_exec_idempotent(struct rp_pg *pg, const char *sql, int nparams, const char *const *params,
                          PGresult **out, struct rp_error *err)
{
    return run(pg, sql, nparams, params, RUN_IDEMPOTENT, out, err);
}

int rp_pg_exec_script(struct rp_pg *pg, const char *sql, struct rp_error *err)
{
    return run(pg, sql, 0, NULL, RUN_SCRIPT, NULL, err);
}

/* Wait until the reply on `conn` is whole, or `deadline` (now_ms()) passes. 1: the reply is
 * in; 0: the deadline passed; -1: the connection failed. */
static int wait_reply(PGconn *conn, long deadline)
{
    while (PQisBusy(conn)) {
        long left = deadline - now_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = {.fd = PQsocket(conn), .events = POLLIN};
        int n = poll(&p, 1, (int)left);
        if (n < 0 && errno != EINTR)
            return -1;
        if (n > 0 && !PQconsumeInput(conn))
            return -1;
    }
    return 1;
}

/* One SELECT 1 on the current connection, its reply waited for until `deadline`. RP_OK;
 * RP_ETIMEDOUT (no reply: the connection is dropped, as it cannot be used again before the
 * reply comes); RP_EAGAIN (the connection failed, dropped). */
static int ping_once(struct rp_pg *pg, long deadline, long reply_ms, struct rp_error *err)
{
    int w = PQsendQuery(pg->conn, "SELECT 1") ? wait_reply(pg->conn, deadline) : -1;
    int rc = RP_OK;
    if (w == 0) {
        rc = rp_error_set(err, RP_ETIMEDOUT,
                          "pg: no reply to SELECT 1 from %s within %ld ms; connection dropped",
                          pg->target, reply_ms);
    } else {
        PGresult *res;
        while ((res = PQgetResult(pg->conn)) != NULL) { /* the result, then NULL */
            if (rc == RP_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
                rc = result_error(err, RP_EAGAIN, res, pg->conn, "SELECT 1");
            PQclear(res);
        }
        if (w < 0 && rc == RP_OK)
            rc = result_error(err, RP_EAGAIN, NULL, pg->conn, "SELECT 1");
    }
    if (rc != RP_OK) {
        PQfinish(pg->conn);
        pg->conn = NULL;
    }
    return rc;
}

int rp_pg_ping(struct rp_pg *pg, long reply_ms, struct rp_error *err)
{
    long deadline = now_ms() + reply_ms;
    int rc = RP_EAGAIN;
    for (int attempt = 0; attempt < 2; attempt++) { /* a lost connection: once more, anew */
        if (!pg->conn || PQstatus(pg->conn) != CONNECTION_OK) {
            rc = reconnect(pg, err);
            if (rc != RP_OK)
                return RP_EAGAIN;
        }
        rc = ping_once(pg, deadline, reply_ms, err);
        if (rc != RP_EAGAIN)
            break;
    }
    if (rc == RP_ETIMEDOUT && err)
        rp_warn("%s", err->msg);
    return rc == RP_OK ? RP_OK : RP_EAGAIN;
}

/* Leave a failed transaction. If even ROLLBACK fails, drop the connection: the next call
 * reconnects and the server discards the transaction. */
static void rollback_quietly(struct rp_pg *pg)
{
    if (!pg->conn || PQstatus(pg->conn) != CONNECTION_OK)
        return;
    if (PQtransactionStatus(pg->conn) == PQTRANS_IDLE)
        return;
    PGresult *res = PQexec(pg->conn, "ROLLBACK");
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        PQfinish(pg->conn);
        pg->conn = NULL;
    }
    PQclear(res);
}

/* COMMIT, telling apart "not committed" (retry) from "outcome unknown" (RP_ETIMEDOUT). */
static int commit(struct rp_pg *pg, struct rp_error *err)
{
    if (!pg->conn || PQstatus(pg->conn) != CONNECTION_OK) {
        pg->tx_broken = 1;
        return rp_error_set(err, RP_EAGAIN, "pg: connection lost before COMMIT");
    }
    PGresult *res = NULL;
    int rc = run(pg, "COMMIT", 0, NULL, 0, &res, err);
    if (rc == RP_OK && strcmp(PQcmdStatus(res), "COMMIT") != 0)
        rc = rp_error_set(err, RP_EAGAIN, "pg: transaction was aborted, COMMIT rolled back");
    PQclear(res);
    if (rc != RP_OK && pg->tx_broken)
        rc = rp_error_set(err, RP_ETIMEDOUT,
                          "pg: connection lost during COMMIT, outcome unknown: %s",
                          err ? err->msg : "");
    return rc;
}

int rp_pg_tx(struct rp_pg *pg, rp_pg_tx_fn fn, void *ctx, struct rp_error *err)
{
    int rc = RP_EAGAIN;
    long delay = BACKOFF_MIN_MS;
    for (int attempt = 1; attempt <= TX_ATTEMPTS; attempt++) {
        if (attempt > 1) {
            rp_info("pg: retrying transaction (attempt %d of %d) after: %s", attempt, TX_ATTEMPTS,
                    err ? err->msg : rp_strerror(rc));
            sleep_ms(delay);
            delay = delay * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : delay * 2;
        }
        rc = run(pg, "BEGIN", 0, NULL, RUN_IDEMPOTENT, NULL, err);
        if (rc == RP_EAGAIN)
            continue;
        if (rc != RP_OK)
            return rc;
        pg->in_tx = 1;
        pg->tx_broken = 0;
        rc = fn(pg, ctx, err);
        if (rc == RP_OK && pg->tx_broken)
            rc = rp_error_set(err, RP_EAGAIN, "pg: transaction lost with its connection");
        if (rc == RP_OK)
            rc = commit(pg, err);
        int broken = pg->tx_broken;
        pg->in_tx = 0;
        pg->tx_broken = 0;
        if (rc == RP_OK || rc == RP_ETIMEDOUT)
            return rc;
        if (!broken)
            rollback_quietly(pg);
        if (rc != RP_EAGAIN)
            return rc;
    }
    return rc;
}

void rp_pg_array_add(struct rp_buf *b, const char *s)
{
    if (b->len > 0 && b->data[b->len - 1] != '{')
        (void)rp_buf_append(b, ",", 1);
    if (!s) {
        (void)rp_buf_append(b, "NULL", 4);
        return;
    }
    (void)rp_buf_append(b, "\"", 1);
    for (const char *p = s; *p; p++) {
        if (*p == '"' || *p == '\\')
            (void)rp_buf_append(b, "\\", 1);
        (void)rp_buf_append(b, p, 1);
    }
    (void)rp_buf_append(b, "\"", 1);
}
