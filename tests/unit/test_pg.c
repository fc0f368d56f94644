/* Unit tests for the PostgreSQL module that need no server: SQLSTATE mapping, conninfo
 * validation, a refused connection, and the migration folder loader (names, order,
 * checksums) on temporary folders. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "rampart/error.h"
#include "rampart/log.h"
#include "rampart/mem.h"
#include "rampart/pg.h"

static void test_sqlstate_map(void **state)
{
    static const struct {
        const char *s;
        int rc;
    } cases[] = {
        {"08000", RP_EAGAIN}, {"08006", RP_EAGAIN}, {"08001", RP_EAGAIN}, {"40001", RP_EAGAIN},
        {"40P01", RP_EAGAIN}, {"53300", RP_EAGAIN}, {"53100", RP_EAGAIN}, {"57P01", RP_EAGAIN},
        {"57P02", RP_EAGAIN}, {"57P03", RP_EAGAIN}, {"25006", RP_EAGAIN}, {"55P03", RP_EAGAIN},
        {"57014", RP_EAGAIN}, {"23505", RP_EEXIST}, {"23503", RP_EINVAL}, {"23502", RP_EINVAL},
        {"22P02", RP_EINVAL}, {"22001", RP_EINVAL}, {"42601", RP_EINVAL}, {"42P01", RP_EINVAL},
        {"42501", RP_EINVAL}, {"XX000", RP_EIO},    {"25P02", RP_EIO},    {"40002", RP_EIO},
        {NULL, RP_EIO},       {"", RP_EIO},         {"0800", RP_EIO},     {"080000", RP_EIO},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (rp_pg_map_sqlstate(cases[i].s) != cases[i].rc)
            fail_msg("SQLSTATE %s: got %d, want %d", cases[i].s ? cases[i].s : "NULL",
                     rp_pg_map_sqlstate(cases[i].s), cases[i].rc);
    }
    assert_true(rp_pg_sqlstate_needs_reconnect("08006"));
    assert_true(rp_pg_sqlstate_needs_reconnect("57P01"));
    assert_true(rp_pg_sqlstate_needs_reconnect("25006"));
    assert_false(rp_pg_sqlstate_needs_reconnect("40001"));
    assert_false(rp_pg_sqlstate_needs_reconnect("23505"));
    assert_false(rp_pg_sqlstate_needs_reconnect(NULL));
}

static void test_open_bad_conninfo(void **state)
{
    struct rp_pg *pg = NULL;
    struct rp_error err = {0};
    assert_int_equal(rp_pg_open("host=x nosuchoption=1", &pg, &err), RP_EINVAL);
    assert_null(pg);
    assert_non_null(strstr(err.msg, "nosuchoption"));
    assert_int_equal(rp_pg_open("postgres://u:p@h:notaport/db", &pg, &err), RP_EINVAL);
    rp_pg_close(NULL);
}

/* A loopback port nobody listens on: bind an ephemeral port, then close it. */
static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static void test_open_refused_is_transient(void **state)
{
    struct rp_pg *pg = NULL;
    struct rp_error err = {0};
    char *ci = rp_xasprintf("host=127.0.0.1,127.0.0.1 port=%d,%d user=u password=sekrit "
                            "dbname=d target_session_attrs=read-write",
                            closed_port(), closed_port());
    assert_int_equal(rp_pg_open(ci, &pg, &err), RP_EAGAIN);
    assert_null(pg);
    assert_int_equal(err.code, RP_EAGAIN);
    assert_non_null(strstr(err.msg, "cannot connect"));
    assert_null(strstr(err.msg, "sekrit"));
    free(ci);
}

/* ---- migration folder loader -------------------------------------------------------------- */

static char *make_dir(void)
{
    char *d = rp_xstrdup("/tmp/rp_test_pg_XXXXXX");
    assert_non_null(mkdtemp(d));
    return d;
}

static void put(const char *dir, const char *name, const char *text)
{
    char *p = rp_xasprintf("%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    free(p);
}

static void remove_dir(char *dir)
{
    char *cmd = rp_xasprintf("rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    free(dir);
}

static void test_migrations_order_and_checksum(void **state)
{
    char *dir = make_dir();
    put(dir, "0010_later.sql", "SELECT 10;\n");
    put(dir, "0002_second-step.sql", "SELECT 2;\n");
    put(dir, "0001_init.sql", "SELECT 1;\n");
    put(dir, "README.md", "not a migration");
    put(dir, ".0003_hidden.sql", "ignored");
    put(dir, "0004_notes.sql.orig", "ignored");
    struct rp_pg_migration *m = NULL;
    size_t n = 0;
    struct rp_error err = {0};
    assert_int_equal(rp_pg_migrations_load(dir, &m, &n, &err), RP_OK);
    assert_int_equal(n, 3);
    assert_int_equal(m[0].version, 1);
    assert_string_equal(m[0].name, "0001_init.sql");
    assert_string_equal(m[0].sql, "SELECT 1;\n");
    assert_int_equal(m[1].version, 2);
    assert_string_equal(m[1].name, "0002_second-step.sql");
    assert_int_equal(m[2].version, 10);
    /* sha256("SELECT 1;\n"), as printed by `printf 'SELECT 1;\n' | sha256sum`. */
    assert_string_equal(m[0].checksum,
                        "b4e0497804e46e0a0b0b8c31975b062152d551bac49c3c2e80932567b4085dcd");
    rp_pg_migrations_free(m, n);
    rp_pg_migrations_free(NULL, 0);
    remove_dir(dir);
}

static void expect_refused(const char *name, const char *other, const char *needle)
{
    char *dir = make_dir();
    put(dir, "0001_ok.sql", "SELECT 1;");
    put(dir, name, "SELECT 2;");
    if (other)
        put(dir, other, "SELECT 3;");
    struct rp_pg_migration *m = NULL;
    size_t n = 0;
    struct rp_error err = {0};
    assert_int_equal(rp_pg_migrations_load(dir, &m, &n, &err), RP_EINVAL);
    assert_null(m);
    if (!strstr(err.msg, needle))
        fail_msg("for %s: message \"%s\" lacks \"%s\"", name, err.msg, needle);
    remove_dir(dir);
}

static void test_migrations_bad_names(void **state)
{
    expect_refused("002_short.sql", NULL, "002_short.sql");
    expect_refused("00002_long.sql", NULL, "00002_long.sql");
    expect_refused("0000_zero.sql", NULL, "0000_zero.sql");
    expect_refused("0002-dash.sql", NULL, "0002-dash.sql");
    expect_refused("0002_.sql", NULL, "0002_.sql");
    expect_refused("0002_has space.sql", NULL, "0002_has space.sql");
    expect_refused("abcd_letters.sql", NULL, "abcd_letters.sql");
    expect_refused("0002_a.sql", "0002_b.sql", "share version 0002");
}

static void test_migrations_empty_and_missing(void **state)
{
    char *dir = make_dir();
    struct rp_pg_migration *m = NULL;
    size_t n = 7;
    struct rp_error err = {0};
    assert_int_equal(rp_pg_migrations_load(dir, &m, &n, &err), RP_OK);
    assert_int_equal(n, 0);
    rp_pg_migrations_free(m, n);
    assert_int_equal(rp_pg_migrations_load("/nonexistent/rampart", &m, &n, &err), RP_EINVAL);
    assert_non_null(strstr(err.msg, "/nonexistent/rampart"));
    remove_dir(dir);
}

/* The project's own migrations folder must always load. */
static void test_project_migrations_load(void **state)
{
    struct rp_pg_migration *m = NULL;
    size_t n = 0;
    struct rp_error err = {0};
    assert_int_equal(rp_pg_migrations_load(RP_MIGRATIONS_DIR, &m, &n, &err), RP_OK);
    assert_true(n >= 1);
    assert_int_equal(m[0].version, 1);
    assert_string_equal(m[0].name, "0001_init.sql");
    rp_pg_migrations_free(m, n);
}

int main(void)
{
    rp_log_init("test_pg", "t", RP_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sqlstate_map),
        cmocka_unit_test(test_open_bad_conninfo),
        cmocka_unit_test(test_open_refused_is_transient),
        cmocka_unit_test(test_migrations_order_and_checksum),
        cmocka_unit_test(test_migrations_bad_names),
        cmocka_unit_test(test_migrations_empty_and_missing),
        cmocka_unit_test(test_project_migrations_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
