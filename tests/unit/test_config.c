/* Unit tests for the settings table (config.c): types, bounds, defaults, one-line errors that
 * name the variable and never echo a secret, --help and Markdown output, URL redaction. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rampart/config.h"
#include "rampart/error.h"
#include "rampart/mem.h"

static void test_duration(void **state)
{
    long ms;
    assert_int_equal(rp_parse_duration_ms("250ms", &ms), RP_OK);
    assert_int_equal(ms, 250);
    assert_int_equal(rp_parse_duration_ms("5s", &ms), RP_OK);
    assert_int_equal(ms, 5000);
    assert_int_equal(rp_parse_duration_ms("1.5m", &ms), RP_OK);
    assert_int_equal(ms, 90000);
    assert_int_equal(rp_parse_duration_ms("1500", &ms), RP_OK);
    assert_int_equal(ms, 1500);
    assert_int_equal(rp_parse_duration_ms("5 parsecs", &ms), RP_EINVAL);
    assert_int_equal(rp_parse_duration_ms("-1s", &ms), RP_EINVAL);
    assert_int_equal(rp_parse_duration_ms("", &ms), RP_EINVAL);
    assert_int_equal(rp_parse_duration_ms("nan", &ms), RP_EINVAL);
    assert_int_equal(rp_parse_duration_ms("infs", &ms), RP_EINVAL);
    assert_int_equal(rp_parse_duration_ms("1e300h", &ms), RP_EINVAL);
}

static void test_split_and_redact(void **state)
{
    size_t n;
    char **v = rp_split_list(" a , ,b,c ", &n);
    assert_int_equal(n, 3);
    assert_string_equal(v[0], "a");
    assert_string_equal(v[2], "c");
    assert_null(v[3]);
    rp_strv_free(v);
    char *r = rp_redact_url("amqp://guest:s3cret@h1:5672/,amqp://u:p@h2/v");
    assert_string_equal(r, "amqp://guest:***@h1:5672/,amqp://u:***@h2/v");
    free(r);
    r = rp_redact_url("host=a,b password=hunter2 dbname=x");
    assert_string_equal(r, "host=a,b password=*** dbname=x");
    free(r);
    r = rp_redact_url("postgres://bob@h/db");
    assert_string_equal(r, "postgres://bob@h/db");
    free(r);
}

static char *s_url, *s_mode, *s_pg, *s_mongo, *s_listen;
static long s_port, s_timeout;
static int s_flag;

static const struct rp_setting table[] = {
    {"RPT_AMQP", RP_SET_AMQP_URLS, "amqp://guest:guest@127.0.0.1:5672/", "broker", &s_url, 0, 0,
     NULL, 1},
    {"RPT_PORT", RP_SET_INT, "8080", "port", &s_port, 1, 65535, NULL, 0},
    {"RPT_TIMEOUT", RP_SET_DURATION, "5s", "timeout", &s_timeout, 0, 0, NULL, 0},
    {"RPT_FLAG", RP_SET_BOOL, "false", "flag", &s_flag, 0, 0, NULL, 0},
    {"RPT_MODE", RP_SET_ENUM, "fast", "mode", &s_mode, 0, 0, "fast|slow", 0},
    {"RPT_PG", RP_SET_PG_CONNINFO, "host=a,b dbname=x target_session_attrs=read-write", "pg", &s_pg,
     0, 0, NULL, 0},
    {"RPT_MONGO", RP_SET_MONGO_URI, "mongodb://127.0.0.1:27017/rampart", "mongo", &s_mongo, 0, 0,
     NULL, 0},
    {"RPT_LISTEN", RP_SET_LISTEN, "127.0.0.1:0", "listen", &s_listen, 0, 0, NULL, 0},
};
#define NT (sizeof(table) / sizeof(table[0]))

static void unset_all(void)
{
    for (size_t i = 0; i < NT; i++)
        unsetenv(table[i].env);
}

static void test_config_defaults(void **state)
{
    unset_all();
    struct rp_error e;
    assert_int_equal(rp_config_load(table, NT, &e), RP_OK);
    assert_int_equal(s_port, 8080);
    assert_int_equal(s_timeout, 5000);
    assert_int_equal(s_flag, 0);
    assert_string_equal(s_mode, "fast");
    setenv("RPT_FLAG", "yes", 1);
    setenv("RPT_PORT", "9090", 1);
    assert_int_equal(rp_config_load(table, NT, &e), RP_OK);
    assert_int_equal(s_flag, 1);
    assert_int_equal(s_port, 9090);
    rp_config_cleanup(table, NT);
    assert_null(s_url);
}

static void expect_bad(const char *env, const char *val, const char *needle)
{
    unset_all();
    setenv(env, val, 1);
    struct rp_error e;
    assert_int_equal(rp_config_load(table, NT, &e), RP_EINVAL);
    rp_config_cleanup(table, NT);
    if (!strstr(e.msg, needle))
        fail_msg("message \"%s\" lacks \"%s\"", e.msg, needle);
    assert_non_null(strstr(e.msg, env));
    assert_null(strchr(e.msg, '\n'));
}

static void test_config_errors(void **state)
{
    expect_bad("RPT_AMQP", "amqp://guest:pw@host:notaport/", "RPT_AMQP: URL 1");
    expect_bad("RPT_AMQP", "http://x/", "not amqp://");
    expect_bad("RPT_PORT", "80000", "from 1 to 65535");
    expect_bad("RPT_PORT", "12ab", "expected an integer");
    expect_bad("RPT_TIMEOUT", "soon", "duration");
    expect_bad("RPT_FLAG", "maybe", "true or false");
    expect_bad("RPT_MODE", "medium", "fast|slow");
    expect_bad("RPT_PG", "host=a port", "conninfo");
    expect_bad("RPT_MONGO", "mongo://x", "mongodb://");
    expect_bad("RPT_LISTEN", "8080", "host:port");
    /* a secret setting's value is never echoed */
    unset_all();
    setenv("RPT_AMQP", "amqp://u:topsecret@h:bad/", 1);
    struct rp_error e;
    assert_int_equal(rp_config_load(table, NT, &e), RP_EINVAL);
    rp_config_cleanup(table, NT);
    assert_null(strstr(e.msg, "topsecret"));
    unset_all();
}

static void test_help(void **state)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    rp_config_print_help(f, "prog", "Does things.", table, NT);
    rp_config_print_markdown(f, table, NT);
    fclose(f);
    assert_non_null(strstr(out, "RPT_PORT"));
    assert_non_null(strstr(out, "default: 8080"));
    assert_non_null(strstr(out, "| `RPT_MODE` | fast\\|slow |"));
    assert_null(strstr(out, "guest:guest")); /* secret default hidden */
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duration),
        cmocka_unit_test(test_split_and_redact),
        cmocka_unit_test(test_config_defaults),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_help),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
