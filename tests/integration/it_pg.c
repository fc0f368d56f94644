/* Integration test of the PostgreSQL module against the real server of the test set-up
 * (conninfo in RAMPART_TEST_PG, control script in RAMPART_TEST_SERVERS). Proves: a client
 * rides out a server restart and a terminated backend without a process restart; the
 * transaction helper re-runs a transaction after a serialization failure and a lost
 * connection; migrations run from four processes at once apply each file exactly once and
 * refuse edited files; SQLSTATEs map to RP_EEXIST / RP_EINVAL; a ping whose reply is lost on
 * a connection that stays up (a relay swallows the server's replies) gives up after its bound.
 * Works in a scratch database that is dropped at the end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/wait.h>

#include <cmocka.h>

#include "rampart/error.h"
#include "rampart/log.h"
#include "rampart/mem.h"
#include "rampart/pg.h"
#include "tcp_relay.h"

#define NCHILDREN 4

static const char *base_conninfo, *servers;
static char scratch[64];
static char *scratch_conninfo;
static struct rp_pg *admin; /* connected to the base database, for CREATE/DROP DATABASE */
static struct rp_pg *pg;    /* connected to the scratch database */

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* `base` (keyword string or URL) as a keyword string, with `key` set to `val` (NULL: none). */
static char *conninfo_with(const char *base, const char *key, const char *val, const char *key2,
                           const char *val2)
{
    char *msg = NULL;
    PQconninfoOption *opts = PQconninfoParse(base, &msg);
    if (!opts)
        fail_msg("RAMPART_TEST_PG is not a valid conninfo: %s", msg ? msg : "?");
    struct rp_buf b;
    rp_buf_init(&b, 0);
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        const char *v = key && strcmp(o->keyword, key) == 0     ? val
                        : key2 && strcmp(o->keyword, key2) == 0 ? val2
                                                                : o->val;
        if (!v)
            continue;
        assert_int_equal(rp_buf_printf(&b, "%s='", o->keyword), RP_OK);
        for (const char *p = v; *p; p++) {
            if (*p == '\'' || *p == '\\')
                assert_int_equal(rp_buf_append(&b, "\\", 1), RP_OK);
            assert_int_equal(rp_buf_append(&b, p, 1), RP_OK);
        }
        assert_int_equal(rp_buf_append(&b, "' ", 2), RP_OK);
    }
    PQconninfoFree(opts);
    return b.data;
}

static char *with_dbname(const char *base, const char *dbname)
{
    return conninfo_with(base, "dbname", dbname, NULL, NULL);
}

static void exec_ok(struct rp_pg *c, const char *sql)
{
    struct rp_error err = {0};
    if (rp_pg_exec(c, sql, 0, NULL, NULL, &err) != RP_OK)
        fail_msg("%s: %s", sql, err.msg);
}

static long query_long(struct rp_pg *c, const char *sql)
{
    struct rp_error err = {0};
    PGresult *res = NULL;
    if (rp_pg_exec_idempotent(c, sql, 0, NULL, &res, &err) != RP_OK)
        fail_msg("%s: %s", sql, err.msg);
    long v = atol(PQgetvalue(res, 0, 0));
    PQclear(res);
    return v;
}

static int setup(void **state)
{
    base_conninfo = getenv("RAMPART_TEST_PG");
    servers = getenv("RAMPART_TEST_SERVERS");
    if (!base_conninfo || !*base_conninfo || !servers || !*servers) {
        fprintf(stderr,
                "%s is not set: run `eval \"$(scripts/servers.sh env)\"` after "
                "`scripts/servers.sh start`\n",
                !base_conninfo || !*base_conninfo ? "RAMPART_TEST_PG" : "RAMPART_TEST_SERVERS");
        return -1;
    }
    struct rp_error err = {0};
    if (rp_pg_open(base_conninfo, &admin, &err) != RP_OK) {
        fprintf(stderr, "cannot connect with RAMPART_TEST_PG: %s\n", err.msg);
        return -1;
    }
    snprintf(scratch, sizeof(scratch), "rp_it_pg_%ld_%ld", (long)getpid(), (long)time(NULL));
    char *sql = rp_xasprintf("CREATE DATABASE %s", scratch); /* digits and letters only */
    int rc = rp_pg_exec(admin, sql, 0, NULL, NULL, &err);
    free(sql);
    if (rc != RP_OK) {
        fprintf(stderr, "create scratch database: %s\n", err.msg);
        return -1;
    }
    scratch_conninfo = with_dbname(base_conninfo, scratch);
    if (rp_pg_open(scratch_conninfo, &pg, &err) != RP_OK) {
        fprintf(stderr, "open scratch database: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    rp_pg_close(pg);
    pg = NULL;
    if (!admin)
        return 0;
    struct rp_error err = {0};
    char *sql = rp_xasprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", scratch);
    int rc = rp_pg_exec_idempotent(admin, sql, 0, NULL, NULL, &err);
    free(sql);
    if (rc != RP_OK)
        fprintf(stderr, "drop scratch database %s: %s\n", scratch, err.msg);
    rp_pg_close(admin);
    admin = NULL;
    free(scratch_conninfo);
    return rc == RP_OK ? 0 : -1;
}

/* ---- error mapping ----------------------------------------------------------------------- */

static void test_unique_violation_is_eexist(void **state)
{
    struct rp_error err = {0};
    exec_ok(pg, "CREATE TABLE users (id int PRIMARY KEY, email text UNIQUE)");
    const char *a[] = {"1", "secret-looking@example.org"};
    const char *b[] = {"2", "secret-looking@example.org"};
    const char *sql = "INSERT INTO users (id, email) VALUES ($1, $2)";
    assert_int_equal(rp_pg_exec(pg, sql, 2, a, NULL, &err), RP_OK);
    assert_int_equal(rp_pg_exec(pg, sql, 2, b, NULL, &err), RP_EEXIST);
    printf("pg: unique violation -> %s\n", err.msg);
    assert_non_null(strstr(err.msg, "23505"));
    assert_non_null(strstr(err.msg, "users_email_key"));
    assert_null(strstr(err.msg, "secret-looking")); /* parameter values never appear */

    const char *bad[] = {"not-a-number"};
    assert_int_equal(rp_pg_exec(pg, "SELECT $1::int", 1, bad, NULL, &err), RP_EINVAL);
    assert_non_null(strstr(err.msg, "22P02"));
    assert_int_equal(rp_pg_exec(pg, "SELEC 1", 0, NULL, NULL, &err), RP_EINVAL);
    assert_non_null(strstr(err.msg, "42601"));
    assert_int_equal(rp_pg_exec(pg, "SELECT * FROM no_such_table", 0, NULL, NULL, &err), RP_EINVAL);
    /* The connection is still usable after errors. */
    assert_int_equal(query_long(pg, "SELECT count(*) FROM users"), 1);
}

/* A multi-host conninfo whose first host is down connects to the next one. */
static void test_multi_host(void **state)
{
    PQconninfoOption *opts = PQconninfoParse(scratch_conninfo, NULL);
    const char *host = NULL, *port = NULL;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (strcmp(o->keyword, "host") == 0 || strcmp(o->keyword, "hostaddr") == 0)
            host = host ? host : o->val;
        if (strcmp(o->keyword, "port") == 0)
            port = o->val;
    }
    if (!host)
        host = "localhost"; /* libpq's default */
    char *hosts = rp_xasprintf("%s,%s", host, host);
    char *ports = rp_xasprintf("1,%s", port ? port : "5432");
    char *ci = conninfo_with(scratch_conninfo, "host", hosts, "port", ports);
    struct rp_pg *c = NULL;
    struct rp_error err = {0};
    assert_int_equal(rp_pg_open(ci, &c, &err), RP_OK);
    assert_int_equal(rp_pg_ping(c, 5000, &err), RP_OK);
    assert_string_equal(PQport(rp_pg_conn(c)), port ? port : "5432");
    rp_pg_close(c);
    PQconninfoFree(opts);
    free(hosts);
    free(ports);
    free(ci);
}

/* ---- transactions ------------------------------------------------------------------------ */

struct tx_ctx {
    struct rp_pg *other;
    int attempts;
    int mode; /* 0: conflicting update on attempt 1; 1: terminate our backend on attempt 1 */
};

static int tx_body(struct rp_pg *c, void *arg, struct rp_error *err)
{
    struct tx_ctx *t = arg;
    t->attempts++;
    int rc = rp_pg_exec(c, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ", 0, NULL, NULL, err);
    if (rc != RP_OK)
        return rc;
    PGresult *res = NULL;
    rc = rp_pg_exec(c, "SELECT v, pg_backend_pid() FROM counter WHERE id = 1", 0, NULL, &res, err);
    if (rc != RP_OK)
        return rc;
    char pid[16];
    snprintf(pid, sizeof(pid), "%s", PQgetvalue(res, 0, 1));
    PQclear(res);
    if (t->attempts == 1 && t->mode == 0)
        exec_ok(t->other, "UPDATE counter SET v = v + 100 WHERE id = 1");
    if (t->attempts == 1 && t->mode == 1) {
        const char *p[] = {pid};
        struct rp_error e2 = {0};
        assert_int_equal(
            rp_pg_exec(t->other, "SELECT pg_terminate_backend($1::int)", 1, p, NULL, &e2), RP_OK);
        usleep(100 * 1000);
    }
    rc = rp_pg_exec(c, "UPDATE counter SET v = v + 1 WHERE id = 1", 0, NULL, NULL, err);
    if (rc != RP_OK)
        return rc;
    return rp_pg_exec(c, "INSERT INTO ledger (note) VALUES ('tx')", 0, NULL, NULL, err);
}

static void test_tx_retries(void **state)
{
    struct rp_pg *other = NULL;
    struct rp_error err = {0};
    assert_int_equal(rp_pg_open(scratch_conninfo, &other, &err), RP_OK);
    exec_ok(pg, "CREATE TABLE counter (id int PRIMARY KEY, v int NOT NULL)");
    exec_ok(pg, "CREATE TABLE ledger (id serial PRIMARY KEY, note text)");
    exec_ok(pg, "INSERT INTO counter VALUES (1, 0)");

    /* 40001 (concurrent update under REPEATABLE READ): rolled back and run again. */
    struct tx_ctx t = {other, 0, 0};
    assert_int_equal(rp_pg_tx(pg, tx_body, &t, &err), RP_OK);
    assert_int_equal(t.attempts, 2);
    assert_int_equal(query_long(pg, "SELECT v FROM counter"), 101);
    assert_int_equal(query_long(pg, "SELECT count(*) FROM ledger"), 1);

    /* Our backend terminated mid-transaction: reconnect and run the whole thing again. */
    unsigned long before = rp_pg_reconnects(pg);
    struct tx_ctx t2 = {other, 0, 1};
    assert_int_equal(rp_pg_tx(pg, tx_body, &t2, &err), RP_OK);
    assert_int_equal(t2.attempts, 2);
    assert_int_equal(rp_pg_reconnects(pg), before + 1);
    assert_int_equal(query_long(pg, "SELECT v FROM counter"), 102);
    assert_int_equal(query_long(pg, "SELECT count(*) FROM ledger"), 2);
    printf("pg: tx re-run after 40001 and after a terminated backend: ok\n");
    rp_pg_close(other);
}

/* ---- terminated backend ------------------------------------------------------------------ */

static void terminate(struct rp_pg *victim, struct rp_pg *killer)
{
    char pid[16];
    snprintf(pid, sizeof(pid), "%ld", query_long(victim, "SELECT pg_backend_pid()"));
    const char *p[] = {pid};
    struct rp_error err = {0};
    PGresult *res = NULL;
    assert_int_equal(rp_pg_exec(killer, "SELECT pg_terminate_backend($1::int)", 1, p, &res, &err),
                     RP_OK);
    assert_string_equal(PQgetvalue(res, 0, 0), "t");
    PQclear(res);
    usleep(100 * 1000); /* let the backend exit */
}

static void test_terminated_backend(void **state)
{
    struct rp_pg *killer = NULL;
    struct rp_error err = {0};
    assert_int_equal(rp_pg_open(scratch_conninfo, &killer, &err), RP_OK);
    exec_ok(pg, "CREATE TABLE events (id int PRIMARY KEY)");

    /* Idempotent statement: reconnect and re-send, invisible to the caller. */
    unsigned long before = rp_pg_reconnects(pg);
    long old_pid = query_long(pg, "SELECT pg_backend_pid()");
    terminate(pg, killer);
    long t0 = now_ms();
    long new_pid = query_long(pg, "SELECT pg_backend_pid()");
    printf("pg: terminated backend: idempotent query reconnected in %ld ms\n", now_ms() - t0);
    assert_int_not_equal(new_pid, old_pid);
    assert_int_equal(rp_pg_reconnects(pg), before + 1);

    /* Not idempotent: RP_EAGAIN, not re-sent; the next call works on a new connection. */
    terminate(pg, killer);
    const char *p[] = {"1"};
    assert_int_equal(rp_pg_exec(pg, "INSERT INTO events VALUES ($1)", 1, p, NULL, &err), RP_EAGAIN);
    printf("pg: terminated backend: non-idempotent insert -> %s\n", err.msg);
    assert_int_equal(rp_pg_exec(pg, "INSERT INTO events VALUES ($1)", 1, p, NULL, &err), RP_OK);
    assert_int_equal(query_long(pg, "SELECT count(*) FROM events"), 1);
    assert_int_equal(rp_pg_ping(pg, 5000, &err), RP_OK);
    rp_pg_close(killer);
}

/* ---- migrations -------------------------------------------------------------------------- */

static void put(const char *dir, const char *name, const char *text)
{
    char *p = rp_xasprintf("%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    free(p);
}

static void test_migrations_concurrent(void **state)
{
    char dir[] = "/tmp/rp_it_pg_mig_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *cp = rp_xasprintf("cp '%s/0001_init.sql' '%s/'", RP_MIGRATIONS_DIR, dir);
    assert_int_equal(system(cp), 0);
    free(cp);
    put(dir, "0002_ledger.sql",
        "CREATE TABLE mig_ledger (id serial PRIMARY KEY, note text);\n"
        "INSERT INTO mig_ledger (note) VALUES ('0002 ran');\n");
    /* Slow on purpose, so that the other processes are waiting on the lock meanwhile. */
    put(dir, "0003_slow.sql",
        "SELECT pg_sleep(0.3);\nINSERT INTO mig_ledger (note) VALUES ('0003 ran');\n");

    /* Four processes start together on a fresh database. */
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t kids[NCHILDREN];
    long t0 = now_ms();
    for (int i = 0; i < NCHILDREN; i++) {
        kids[i] = fork();
        assert_true(kids[i] >= 0);
        if (kids[i] == 0) {
            close(fds[0]);
            struct rp_pg *c = NULL;
            struct rp_error e = {0};
            int applied = -1, rc = rp_pg_open(scratch_conninfo, &c, &e);
            if (rc == RP_OK)
                rc = rp_pg_migrate(c, dir, &applied, &e);
            dprintf(fds[1], "%d %d %s\n", rc, applied, rc == RP_OK ? "" : e.msg);
            rp_pg_close(c);
            _exit(rc == RP_OK ? 0 : 1);
        }
    }
    close(fds[1]);
    int total = 0;
    for (int i = 0; i < NCHILDREN; i++) {
        int status = 0;
        assert_int_equal(waitpid(kids[i], &status, 0), kids[i]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    FILE *f = fdopen(fds[0], "r");
    char line[600];
    int lines = 0;
    while (fgets(line, sizeof(line), f)) {
        int rc = 0, applied = 0;
        assert_int_equal(sscanf(line, "%d %d", &rc, &applied), 2);
        assert_int_equal(rc, RP_OK);
        total += applied;
        lines++;
    }
    fclose(f);
    assert_int_equal(lines, NCHILDREN);
    printf("pg: migrations from %d processes at once: %d applied in total in %ld ms\n", NCHILDREN,
           total, now_ms() - t0);
    assert_int_equal(total, 3);
    assert_int_equal(query_long(pg, "SELECT count(*) FROM schema_migrations"), 3);
    assert_int_equal(query_long(pg, "SELECT count(*) FROM mig_ledger"), 2);
    assert_int_equal(query_long(pg, "SELECT count(*) FROM rampart_meta"), 1);
    int version = -1;
    struct rp_error err = {0};
    assert_int_equal(rp_pg_schema_version(pg, &version, &err), RP_OK);
    assert_int_equal(version, 3);

    /* Again: nothing to do. */
    int applied = -1;
    assert_int_equal(rp_pg_migrate(pg, dir, &applied, &err), RP_OK);
    assert_int_equal(applied, 0);

    /* An applied file was edited: refused, naming the file; a new file is not applied. */
    put(dir, "0002_ledger.sql", "CREATE TABLE mig_ledger (id int);\n");
    put(dir, "0004_more.sql", "CREATE TABLE mig_more (id int);\n");
    assert_int_equal(rp_pg_migrate(pg, dir, &applied, &err), RP_EINVAL);
    printf("pg: edited migration -> %s\n", err.msg);
    assert_non_null(strstr(err.msg, "0002_ledger.sql"));
    assert_int_equal(applied, 0);
    assert_int_equal(rp_pg_schema_version(pg, &version, &err), RP_OK);
    assert_int_equal(version, 3);

    /* Restored: 0004 applies, then 0006. A new file numbered below 0006 is refused. */
    put(dir, "0002_ledger.sql",
        "CREATE TABLE mig_ledger (id serial PRIMARY KEY, note text);\n"
        "INSERT INTO mig_ledger (note) VALUES ('0002 ran');\n");
    assert_int_equal(rp_pg_migrate(pg, dir, &applied, &err), RP_OK);
    assert_int_equal(applied, 1);
    put(dir, "0006_six.sql", "CREATE TABLE mig_six (id int);\n");
    assert_int_equal(rp_pg_migrate(pg, dir, &applied, &err), RP_OK);
    assert_int_equal(applied, 1);
    put(dir, "0005_late.sql", "SELECT 1;\n");
    assert_int_equal(rp_pg_migrate(pg, dir, &applied, &err), RP_EINVAL);
    assert_non_null(strstr(err.msg, "0005_late.sql"));

    /* A failing migration rolls back with its row and names the file. */
    char *p7 = rp_xasprintf("%s/0005_late.sql", dir);
    assert_int_equal(unlink(p7), 0);
    free(p7);
    put(dir, "0007_broken.sql", "CREATE TABLE mig_broken (id int);\nSELECT no_such_function();\n");
    assert_int_equal(rp_pg_migrate(pg, dir, &applied, &err), RP_EINVAL);
    printf("pg: failing migration -> %s\n", err.msg);
    assert_non_null(strstr(err.msg, "0007_broken.sql"));
    assert_int_equal(applied, 0);
    assert_int_equal(query_long(pg, "SELECT (to_regclass('mig_broken') IS NULL)::int"), 1);
    assert_int_equal(rp_pg_schema_version(pg, &version, &err), RP_OK);
    assert_int_equal(version, 6);
    char *rm = rp_xasprintf("rm -rf '%s'", dir);
    assert_int_equal(system(rm), 0);
    free(rm);
}

/* ---- server restart (ACCEPTANCE) --------------------------------------------------------- */

static long restart_postgres(void)
{
    char *cmd = rp_xasprintf("\"%s\" restart postgres >/dev/null", servers);
    long t0 = now_ms();
    int rc = system(cmd);
    long ms = now_ms() - t0;
    free(cmd);
    if (rc != 0)
        fail_msg("`%s restart postgres` failed (%d)", servers, rc);
    return ms;
}

static void test_server_restart(void **state)
{
    unsigned long before = rp_pg_reconnects(pg);
    long old_pid = query_long(pg, "SELECT pg_backend_pid()");
    long restart_ms = restart_postgres();
    long t0 = now_ms();
    long new_pid = query_long(pg, "SELECT pg_backend_pid()");
    printf("pg restart: restart took %ld ms; next query reconnected after %ld ms\n", restart_ms,
           now_ms() - t0);
    assert_int_not_equal(old_pid, new_pid);
    assert_int_equal(rp_pg_reconnects(pg), before + 1);

    /* Queries keep flowing while the server restarts underneath: every one succeeds. */
    char *cmd = rp_xasprintf("\"%s\" restart postgres >/dev/null", servers);
    pid_t kid = fork();
    assert_true(kid >= 0);
    if (kid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    int queries = 0, status = 0;
    long longest = 0, start = now_ms();
    pid_t done = 0;
    while (done == 0 || queries < 5) {
        long q0 = now_ms();
        query_long(pg, "SELECT 1"); /* fails the test on any error */
        long q = now_ms() - q0;
        longest = q > longest ? q : longest;
        queries++;
        if (done == 0)
            done = waitpid(kid, &status, WNOHANG);
        usleep(10 * 1000);
    }
    free(cmd);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    printf("pg restart: %d queries during a %ld ms restart all succeeded; longest %ld ms\n",
           queries, now_ms() - start, longest);
    assert_true(rp_pg_reconnects(pg) >= before + 2);
    struct rp_error err = {0};
    assert_int_equal(rp_pg_ping(admin, 5000, &err), RP_OK); /* the admin connection recovers too */
}

/* The readiness check's SELECT 1 through a relay that swallows the server's replies while the
 * connection stays up: keepalives and tcp_user_timeout see a healthy connection, so only the
 * ping's own bound ends the wait. It drops the connection; once replies flow again the next
 * ping works on a new one. */
static void test_ping_reply_lost(void **state)
{
    (void)state;
    const char *port = NULL;
    PQconninfoOption *opts = PQconninfoParse(scratch_conninfo, NULL);
    assert_non_null(opts);
    for (PQconninfoOption *o = opts; o->keyword; o++)
        if (strcmp(o->keyword, "port") == 0 && o->val)
            port = o->val;
    char *target = rp_xasprintf("postgresql://127.0.0.1:%s/", port ? port : "5432");
    PQconninfoFree(opts);
    struct tcp_relay *relay = tcp_relay_start(target);
    free(target);
    assert_non_null(relay);
    char rport[16];
    snprintf(rport, sizeof(rport), "%u", tcp_relay_port(relay));
    char *ci = conninfo_with(scratch_conninfo, "host", "127.0.0.1", "port", rport);
    struct rp_pg *c = NULL;
    struct rp_error err = {0};
    assert_int_equal(rp_pg_open(ci, &c, &err), RP_OK);
    assert_int_equal(rp_pg_ping(c, 1000, &err), RP_OK);
    tcp_relay_swallow(relay, 1);
    long t0 = now_ms();
    int rc = rp_pg_ping(c, 1000, &err);
    long took = now_ms() - t0;
    printf("pg: ping with the replies lost: %s after %ld ms: %s\n", rp_strerror(rc), took, err.msg);
    assert_int_equal(rc, RP_EAGAIN);
    assert_non_null(strstr(err.msg, "no reply to SELECT 1"));
    assert_true(took >= 1000 && took < 3000);
    tcp_relay_swallow(relay, 0);
    t0 = now_ms();
    assert_int_equal(rp_pg_ping(c, 1000, &err), RP_OK);
    printf("pg: replies flowing again: the next ping worked after %ld ms (reconnects %lu)\n",
           now_ms() - t0, rp_pg_reconnects(c));
    assert_int_equal(rp_pg_reconnects(c), 1);
    rp_pg_close(c);
    free(ci);
    tcp_relay_stop(relay);
}

int main(void)
{
    rp_log_init("it_pg", "t", RP_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unique_violation_is_eexist),
        cmocka_unit_test(test_multi_host),
        cmocka_unit_test(test_tx_retries),
        cmocka_unit_test(test_terminated_backend),
        cmocka_unit_test(test_migrations_concurrent),
        cmocka_unit_test(test_server_restart),
        cmocka_unit_test(test_ping_reply_lost),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
