/* Unit tests for the MongoDB module that need no server: error mapping, the URI options
 * Rampart forces or defaults, and a bounded failure against a closed port. */
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
#include "rampart/mongo.h"

static bson_error_t mk(uint32_t domain, uint32_t code)
{
    bson_error_t e;
    memset(&e, 0, sizeof(e));
    e.domain = domain;
    e.code = code;
    snprintf(e.message, sizeof(e.message), "synthetic %u/%u", domain, code);
    return e;
}

static void test_map_error(void **state)
{
    static const struct {
        uint32_t domain, code;
        int rc;
    } cases[] = {
        {MONGOC_ERROR_SERVER, 11000, RP_EEXIST},
        {MONGOC_ERROR_COLLECTION, 11000, RP_EEXIST}, /* error API version 1 */
        {MONGOC_ERROR_SERVER, 11001, RP_EEXIST},
        {MONGOC_ERROR_SERVER_SELECTION, MONGOC_ERROR_SERVER_SELECTION_FAILURE, RP_EAGAIN},
        {MONGOC_ERROR_STREAM, MONGOC_ERROR_STREAM_SOCKET, RP_EAGAIN},
        {MONGOC_ERROR_STREAM, MONGOC_ERROR_STREAM_CONNECT, RP_EAGAIN},
        {MONGOC_ERROR_STREAM, MONGOC_ERROR_STREAM_NAME_RESOLUTION, RP_EAGAIN},
        {MONGOC_ERROR_PROTOCOL, MONGOC_ERROR_PROTOCOL_INVALID_REPLY, RP_EAGAIN},
        {MONGOC_ERROR_CLIENT, MONGOC_ERROR_CLIENT_NOT_READY, RP_EAGAIN},
        {MONGOC_ERROR_CLIENT, MONGOC_ERROR_CLIENT_TOO_BIG, RP_EINVAL},
        {MONGOC_ERROR_CLIENT, MONGOC_ERROR_CLIENT_AUTHENTICATE, RP_EIO},
        {MONGOC_ERROR_SERVER, 10107, RP_EAGAIN}, /* NotWritablePrimary */
        {MONGOC_ERROR_SERVER, 189, RP_EAGAIN},   /* PrimarySteppedDown */
        {MONGOC_ERROR_SERVER, 91, RP_EAGAIN},    /* ShutdownInProgress */
        {MONGOC_ERROR_SERVER, 11602, RP_EAGAIN}, /* InterruptedDueToReplStateChange */
        {MONGOC_ERROR_SERVER, 13435, RP_EAGAIN}, /* NotPrimaryNoSecondaryOk */
        {MONGOC_ERROR_SERVER, 89, RP_EAGAIN},    /* NetworkTimeout */
        {MONGOC_ERROR_SERVER, 9001, RP_EAGAIN},  /* SocketException */
        {MONGOC_ERROR_SERVER, 50, RP_ETIMEDOUT}, /* MaxTimeMSExpired */
        {MONGOC_ERROR_WRITE_CONCERN, 64, RP_ETIMEDOUT},
        {MONGOC_ERROR_SERVER, 2, RP_EINVAL}, /* BadValue */
        {MONGOC_ERROR_SERVER, 9, RP_EINVAL}, /* FailedToParse */
        {MONGOC_ERROR_SERVER, 14, RP_EINVAL},
        {MONGOC_ERROR_SERVER, 40324, RP_EINVAL}, /* unknown pipeline stage */
        {MONGOC_ERROR_SERVER, 238, RP_EINVAL},   /* NotImplemented */
        {MONGOC_ERROR_COMMAND, MONGOC_ERROR_COMMAND_INVALID_ARG, RP_EINVAL},
        {MONGOC_ERROR_BSON, MONGOC_ERROR_BSON_INVALID, RP_EINVAL},
        {MONGOC_ERROR_NAMESPACE, MONGOC_ERROR_NAMESPACE_INVALID, RP_EINVAL},
        {MONGOC_ERROR_SERVER, 8000, RP_EIO},
        {MONGOC_ERROR_SERVER, 13, RP_EIO}, /* Unauthorized */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bson_error_t e = mk(cases[i].domain, cases[i].code);
        int rc = rp_mongo_map_error(&e);
        if (rc != cases[i].rc)
            fail_msg("domain %u code %u: got %d, want %d", cases[i].domain, cases[i].code, rc,
                     cases[i].rc);
    }
    assert_int_equal(rp_mongo_map_error(NULL), RP_EIO);

    struct rp_error err = {0};
    bson_error_t e = mk(MONGOC_ERROR_SERVER, 11000);
    snprintf(e.message, sizeof(e.message), "E11000 duplicate key error");
    assert_int_equal(rp_mongo_error(&err, &e, "insert into results"), RP_EEXIST);
    assert_int_equal(err.code, RP_EEXIST);
    assert_string_equal(err.msg, "mongo: insert into results: E11000 duplicate key error "
                                 "(domain 17, code 11000)");
    assert_int_equal(rp_mongo_error(NULL, &e, "x"), RP_EEXIST);
}

static void test_uri_options(void **state)
{
    mongoc_uri_t *u = NULL;
    struct rp_error err = {0};

    /* The caller's bound wins over the URI's; connectTimeoutMS follows it when unset. */
    assert_int_equal(rp_mongo_uri_new("mongodb://127.0.0.1:57017/?serverSelectionTimeoutMS=30000",
                                      500, 0, &u, &err),
                     RP_OK);
    assert_int_equal(mongoc_uri_get_option_as_int32(u, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 0),
                     500);
    assert_int_equal(mongoc_uri_get_option_as_int32(u, MONGOC_URI_CONNECTTIMEOUTMS, 0), 500);
    /* no reply waits libmongoc's 300 s: the default bound when neither caller nor URI says */
    assert_int_equal(mongoc_uri_get_option_as_int32(u, MONGOC_URI_SOCKETTIMEOUTMS, 0),
                     RP_MONGO_SOCKET_TIMEOUT_MS);
    assert_string_equal(mongoc_uri_get_appname(u), "rampart");
    assert_null(mongoc_uri_get_database(u));
    mongoc_uri_destroy(u);

    /* connectTimeoutMS and appName given in the URI are kept; the database is read. */
    assert_int_equal(rp_mongo_uri_new("mongodb://a:1,b:2/results?connectTimeoutMS=2500"
                                      "&appname=worker-7&replicaSet=rs0&socketTimeoutMS=7000",
                                      60000, 30000, &u, &err),
                     RP_OK);
    assert_int_equal(mongoc_uri_get_option_as_int32(u, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 0),
                     60000);
    assert_int_equal(mongoc_uri_get_option_as_int32(u, MONGOC_URI_CONNECTTIMEOUTMS, 0), 2500);
    assert_int_equal(mongoc_uri_get_option_as_int32(u, MONGOC_URI_SOCKETTIMEOUTMS, 0), 7000);
    assert_string_equal(mongoc_uri_get_appname(u), "worker-7");
    assert_string_equal(mongoc_uri_get_database(u), "results");
    assert_string_equal(mongoc_uri_get_replica_set(u), "rs0");
    mongoc_uri_destroy(u);

    /* connectTimeoutMS is clamped to 100..10000 ms when derived from the bound. */
    assert_int_equal(rp_mongo_uri_new("mongodb://h/", 20, 30000, &u, &err), RP_OK);
    assert_int_equal(mongoc_uri_get_option_as_int32(u, MONGOC_URI_CONNECTTIMEOUTMS, 0), 100);
    assert_int_equal(mongoc_uri_get_option_as_int32(u, MONGOC_URI_SOCKETTIMEOUTMS, 0), 30000);
    mongoc_uri_destroy(u);
    assert_int_equal(rp_mongo_uri_new("mongodb://h/", 120000, 0, &u, &err), RP_OK);
    assert_int_equal(mongoc_uri_get_option_as_int32(u, MONGOC_URI_CONNECTTIMEOUTMS, 0), 10000);
    mongoc_uri_destroy(u);

    u = NULL;
    assert_int_equal(rp_mongo_uri_new("http://not-mongo/", 500, 0, &u, &err), RP_EINVAL);
    assert_null(u);
    assert_non_null(strstr(err.msg, "bad URI"));
    assert_int_equal(rp_mongo_uri_new("mongodb://h/", 0, 0, &u, &err), RP_EINVAL);
    assert_int_equal(rp_mongo_uri_new("mongodb://h/", 500, -1, &u, &err), RP_EINVAL);
    assert_non_null(strstr(err.msg, "socket timeout"));
    assert_int_equal(rp_mongo_uri_new(NULL, 500, 0, &u, &err), RP_EINVAL);
    assert_null(u);
}

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

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_open_closed_port(void **state)
{
    struct rp_mongo *m = NULL;
    struct rp_error err = {0};
    char *uri = rp_xasprintf("mongodb://127.0.0.1:%d/", closed_port());
    long t0 = now_ms();
    assert_int_equal(rp_mongo_open(uri, 300, 0, &m, &err), RP_EAGAIN);
    long ms = now_ms() - t0;
    assert_null(m);
    assert_true(ms < 2000);
    assert_non_null(strstr(err.msg, "ping"));
    assert_int_equal(rp_mongo_open("bogus://", 300, 0, &m, &err), RP_EINVAL);
    assert_null(m);
    rp_mongo_close(NULL);
    free(uri);
}

int main(void)
{
    rp_log_init("test_mongo", "t", RP_LOG_FATAL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_map_error),
        cmocka_unit_test(test_uri_options),
        cmocka_unit_test(test_open_closed_port),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
