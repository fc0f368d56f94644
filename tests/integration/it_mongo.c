/* Integration test of the MongoDB module against the real MongoDB-wire server of the test
 * set-up (FerretDB, started by scripts/servers.sh; URI in RAMPART_TEST_MONGO). Proves that
 * libmongoc works with it for what Rampart needs: bulk inserts, find with filter + sort +
 * limit, unique indexes reported as RP_EEXIST, idempotent upserts, aggregate $match/$group/
 * $sum, a bounded server-selection timeout, and a bounded wait for a reply that never comes
 * (a relay in the test forwards to the server, then swallows its replies, as a network cut
 * does). Each run uses its own database, dropped at the end. */
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
#include "tcp_relay.h"

#define NDOCS     600
#define NPROJECTS 7

static struct rp_mongo *m;
static char dbname[64];

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The fixture: a document per "run" with a project, a status and a duration. */
static int doc_project(int i)
{
    return (i * 3 + 1) % NPROJECTS;
}
static int doc_pass(int i)
{
    return i % 4 != 0;
}
static int doc_ms(int i)
{
    return (i * 37) % 1000;
}

static int setup(void **state)
{
    const char *base = getenv("RAMPART_TEST_MONGO");
    if (!base || !*base) {
        fprintf(stderr, "RAMPART_TEST_MONGO is not set: run `eval \"$(scripts/servers.sh "
                        "env)\"` after `scripts/servers.sh start`\n");
        return -1;
    }
    snprintf(dbname, sizeof(dbname), "rp_it_mongo_%ld_%ld", (long)getpid(), (long)time(NULL));
    /* Put our database into the URI: mongodb://hosts/DB?options. */
    const char *hosts = strstr(base, "://");
    if (!hosts) {
        fprintf(stderr, "RAMPART_TEST_MONGO=%s is not a mongodb:// URI\n", base);
        return -1;
    }
    size_t host_end = (size_t)(hosts + 3 - base) + strcspn(hosts + 3, "/?");
    const char *query = strchr(base + host_end, '?');
    char *uri = rp_xasprintf("%.*s/%s%s", (int)host_end, base, dbname, query ? query : "");
    struct rp_error err = {0};
    int rc = rp_mongo_open(uri, 5000, 0, &m, &err);
    free(uri);
    if (rc != RP_OK) {
        fprintf(stderr, "cannot open RAMPART_TEST_MONGO=%s: %s\n", base, err.msg);
        return -1;
    }
    if (strcmp(rp_mongo_db_name(m), dbname) != 0) { /* never write into a shared database */
        fprintf(stderr, "database is %s, expected %s\n", rp_mongo_db_name(m), dbname);
        rp_mongo_close(m);
        m = NULL;
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    if (!m)
        return 0;
    mongoc_client_t *c = rp_mongo_acquire(m);
    mongoc_database_t *db = mongoc_client_get_database(c, dbname);
    bson_error_t e;
    int ok = mongoc_database_drop(db, &e);
    if (!ok)
        fprintf(stderr, "drop database %s: %s\n", dbname, e.message);
    mongoc_database_destroy(db);
    rp_mongo_release(m, c);
    rp_mongo_close(m);
    m = NULL;
    return ok ? 0 : -1;
}

static void test_db_name_and_ping(void **state)
{
    struct rp_error err = {0};
    assert_string_equal(rp_mongo_db_name(m), dbname);
    assert_int_equal(rp_mongo_ping(m, &err), RP_OK);
}

static void test_insert_find_sort_limit(void **state)
{
    mongoc_client_t *c = rp_mongo_acquire(m);
    mongoc_collection_t *col = rp_mongo_collection(m, c, "results");
    bson_t *docs[NDOCS];
    for (int i = 0; i < NDOCS; i++) {
        char id[32], project[16];
        snprintf(id, sizeof(id), "run-%04d", i);
        snprintf(project, sizeof(project), "p%d", doc_project(i));
        docs[i] = BCON_NEW("_id", BCON_UTF8(id), "project", BCON_UTF8(project), "status",
                           BCON_UTF8(doc_pass(i) ? "pass" : "fail"), "ms", BCON_INT32(doc_ms(i)),
                           "n", BCON_INT32(i));
    }
    bson_error_t e;
    bson_t reply;
    long t0 = now_ms();
    bool ok = mongoc_collection_insert_many(col, (const bson_t **)docs, NDOCS, NULL, &reply, &e);
    long ms = now_ms() - t0;
    if (!ok)
        fail_msg("insert_many: %s (%u/%u)", e.message, e.domain, e.code);
    bson_iter_t it;
    assert_true(bson_iter_init_find(&it, &reply, "insertedCount"));
    assert_int_equal(bson_iter_as_int64(&it), NDOCS);
    bson_destroy(&reply);
    for (int i = 0; i < NDOCS; i++)
        bson_destroy(docs[i]);
    printf("mongo: inserted %d docs in %ld ms\n", NDOCS, ms);

    /* Expected: project p3, status fail, slowest first (ties by n descending), 5 docs. */
    int want[NDOCS], nwant = 0;
    for (int i = 0; i < NDOCS; i++) {
        if (doc_project(i) == 3 && !doc_pass(i))
            want[nwant++] = i;
    }
    for (int a = 0; a < nwant; a++) { /* sort by (ms desc, n desc) */
        for (int b = a + 1; b < nwant; b++) {
            int x = want[a], y = want[b];
            if (doc_ms(y) > doc_ms(x) || (doc_ms(y) == doc_ms(x) && y > x)) {
                want[a] = y;
                want[b] = x;
            }
        }
    }
    assert_true(nwant > 5);
    bson_t *filter = BCON_NEW("project", BCON_UTF8("p3"), "status", BCON_UTF8("fail"));
    bson_t *opts =
        BCON_NEW("sort", "{", "ms", BCON_INT32(-1), "n", BCON_INT32(-1), "}", "limit",
                 BCON_INT64(5), "projection", "{", "n", BCON_INT32(1), "ms", BCON_INT32(1), "}");
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(col, filter, opts, NULL);
    const bson_t *doc;
    int got = 0;
    while (mongoc_cursor_next(cur, &doc)) {
        assert_true(got < 5);
        assert_true(bson_iter_init_find(&it, doc, "n"));
        assert_int_equal(bson_iter_int32(&it), want[got]);
        assert_false(bson_iter_init_find(&it, doc, "project")); /* projected out */
        got++;
    }
    if (mongoc_cursor_error(cur, &e))
        fail_msg("find: %s", e.message);
    assert_int_equal(got, 5);
    mongoc_cursor_destroy(cur);
    bson_destroy(filter);
    bson_destroy(opts);

    /* count_documents with the same filter. */
    filter = BCON_NEW("project", BCON_UTF8("p3"), "status", BCON_UTF8("fail"));
    int64_t n = mongoc_collection_count_documents(col, filter, NULL, NULL, NULL, &e);
    assert_int_equal(n, nwant);
    bson_destroy(filter);
    mongoc_collection_destroy(col);
    rp_mongo_release(m, c);
}

/* Run $match{status: pass} -> $group{_id: $project, ACC...} -> $sort{_id: 1} and return the
 * cursor. `accs` is a JSON object of accumulators, e.g. {"total": {"$sum": "$ms"}}. */
static mongoc_cursor_t *group_by_project(mongoc_collection_t *col, const char *accs)
{
    char *json = rp_xasprintf("{\"pipeline\": [{\"$match\": {\"status\": \"pass\"}}, "
                              "{\"$group\": {\"_id\": \"$project\", %s}}, "
                              "{\"$sort\": {\"_id\": 1}}]}",
                              accs);
    bson_error_t e;
    bson_t *pipeline = bson_new_from_json((const uint8_t *)json, -1, &e);
    assert_non_null(pipeline);
    mongoc_cursor_t *cur =
        mongoc_collection_aggregate(col, MONGOC_QUERY_NONE, pipeline, NULL, NULL);
    bson_destroy(pipeline);
    free(json);
    return cur;
}

/* Read the sorted groups into `out[project]` (field `field`); returns the number of groups. */
static int read_groups(mongoc_cursor_t *cur, const char *field, long long *out)
{
    const bson_t *doc;
    bson_iter_t it;
    int got = 0;
    while (mongoc_cursor_next(cur, &doc) && got < NPROJECTS) {
        char want_id[16];
        snprintf(want_id, sizeof(want_id), "p%d", got);
        assert_true(bson_iter_init_find(&it, doc, "_id"));
        assert_string_equal(bson_iter_utf8(&it, NULL), want_id);
        out[got] = bson_iter_init_find(&it, doc, field) ? bson_iter_as_int64(&it) : -1;
        got++;
    }
    bson_error_t e;
    if (mongoc_cursor_error(cur, &e))
        fail_msg("aggregate: %s (%u/%u)", e.message, e.domain, e.code);
    mongoc_cursor_destroy(cur);
    return got;
}

static void test_aggregate_group_sum(void **state)
{
    long long want_sum[NPROJECTS] = {0}, want_n[NPROJECTS] = {0}, got[NPROJECTS];
    for (int i = 0; i < NDOCS; i++) {
        if (doc_pass(i)) {
            want_sum[doc_project(i)] += doc_ms(i);
            want_n[doc_project(i)]++;
        }
    }
    mongoc_client_t *c = rp_mongo_acquire(m);
    mongoc_collection_t *col = rp_mongo_collection(m, c, "results");

    /* One accumulator per $group stage: see the FerretDB note in mongo.c. */
    assert_int_equal(
        read_groups(group_by_project(col, "\"total\": {\"$sum\": \"$ms\"}"), "total", got),
        NPROJECTS);
    for (int p = 0; p < NPROJECTS; p++)
        assert_int_equal(got[p], want_sum[p]);
    assert_int_equal(read_groups(group_by_project(col, "\"runs\": {\"$sum\": 1}"), "runs", got),
                     NPROJECTS);
    for (int p = 0; p < NPROJECTS; p++)
        assert_int_equal(got[p], want_n[p]);
    assert_int_equal(read_groups(group_by_project(col, "\"runs\": {\"$count\": {}}"), "runs", got),
                     NPROJECTS);
    for (int p = 0; p < NPROJECTS; p++)
        assert_int_equal(got[p], want_n[p]);

    /* Probe (reported, not asserted): two accumulators in one $group. */
    assert_int_equal(read_groups(group_by_project(col, "\"total\": {\"$sum\": \"$ms\"}, "
                                                       "\"runs\": {\"$sum\": 1}"),
                                 "runs", got),
                     NPROJECTS);
    printf("mongo: two accumulators in one $group: second one %s\n",
           got[0] == want_n[0] ? "correct" : "WRONG (server computes only the first)");

    const bson_t *doc;
    bson_error_t e;
    mongoc_cursor_t *cur;
    bson_t *pipeline;
    /* An unsupported stage ($lookup on FerretDB) is a permanent error, not a retry. */
    pipeline = BCON_NEW("pipeline", "[", "{", "$lookup", "{", "from", BCON_UTF8("x"), "localField",
                        BCON_UTF8("a"), "foreignField", BCON_UTF8("b"), "as", BCON_UTF8("c"), "}",
                        "}", "]");
    cur = mongoc_collection_aggregate(col, MONGOC_QUERY_NONE, pipeline, NULL, NULL);
    while (mongoc_cursor_next(cur, &doc)) {
    }
    if (mongoc_cursor_error(cur, &e)) {
        struct rp_error err = {0};
        int rc = rp_mongo_error(&err, &e, "aggregate $lookup");
        printf("mongo: $lookup -> %s [%s]\n", err.msg, rp_strerror(rc));
        assert_false(rp_is_transient(rc));
    } else {
        printf("mongo: $lookup is supported by this server\n");
    }
    mongoc_cursor_destroy(cur);
    bson_destroy(pipeline);
    mongoc_collection_destroy(col);
    rp_mongo_release(m, c);
}

static void test_unique_index_is_eexist(void **state)
{
    mongoc_client_t *c = rp_mongo_acquire(m);
    mongoc_collection_t *col = rp_mongo_collection(m, c, "users");
    /* createIndexes as a command: the index-model helpers arrived in libmongoc 1.24. */
    bson_t *cmd = BCON_NEW("createIndexes", BCON_UTF8("users"), "indexes", "[", "{", "key", "{",
                           "email", BCON_INT32(1), "}", "name", BCON_UTF8("email_unique"), "unique",
                           BCON_BOOL(true), "}", "]");
    mongoc_database_t *db = mongoc_client_get_database(c, rp_mongo_db_name(m));
    bson_error_t e;
    if (!mongoc_database_write_command_with_opts(db, cmd, NULL, NULL, &e))
        fail_msg("create index: %s (%u/%u)", e.message, e.domain, e.code);
    mongoc_database_destroy(db);
    bson_destroy(cmd);

    bson_t *a = BCON_NEW("_id", BCON_UTF8("u1"), "email", BCON_UTF8("a@example.org"));
    bson_t *b = BCON_NEW("_id", BCON_UTF8("u2"), "email", BCON_UTF8("a@example.org"));
    assert_true(mongoc_collection_insert_one(col, a, NULL, NULL, &e));
    struct rp_error err = {0};
    assert_false(mongoc_collection_insert_one(col, b, NULL, NULL, &e));
    assert_int_equal(rp_mongo_error(&err, &e, "insert u2"), RP_EEXIST);
    printf("mongo: unique index violation -> %s\n", err.msg);
    /* The same _id twice is a duplicate too. */
    assert_false(mongoc_collection_insert_one(col, a, NULL, NULL, &e));
    assert_int_equal(rp_mongo_map_error(&e), RP_EEXIST);
    bson_destroy(a);
    bson_destroy(b);

    /* Upsert by _id: twice leaves one document holding the second version. */
    bson_t *v1 = BCON_NEW("_id", BCON_UTF8("run-x"), "status", BCON_UTF8("running"));
    bson_t *v2 =
        BCON_NEW("_id", BCON_UTF8("run-x"), "status", BCON_UTF8("pass"), "ms", BCON_INT32(12));
    assert_int_equal(rp_mongo_upsert_by_id(m, "upserts", v1, &err), RP_OK);
    assert_int_equal(rp_mongo_upsert_by_id(m, "upserts", v2, &err), RP_OK);
    assert_int_equal(rp_mongo_upsert_by_id(m, "upserts", v2, &err), RP_OK);
    bson_t *noid = BCON_NEW("status", BCON_UTF8("x"));
    assert_int_equal(rp_mongo_upsert_by_id(m, "upserts", noid, &err), RP_EINVAL);
    mongoc_collection_t *ups = rp_mongo_collection(m, c, "upserts");
    bson_t empty = BSON_INITIALIZER;
    assert_int_equal(mongoc_collection_count_documents(ups, &empty, NULL, NULL, NULL, &e), 1);
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(ups, &empty, NULL, NULL);
    const bson_t *doc;
    bson_iter_t it;
    assert_true(mongoc_cursor_next(cur, &doc));
    assert_true(bson_iter_init_find(&it, doc, "status"));
    assert_string_equal(bson_iter_utf8(&it, NULL), "pass");
    mongoc_cursor_destroy(cur);
    mongoc_collection_destroy(ups);
    bson_destroy(v1);
    bson_destroy(v2);
    bson_destroy(noid);
    mongoc_collection_destroy(col);
    rp_mongo_release(m, c);
}

static void test_server_selection_bound(void **state)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    char *uri = rp_xasprintf("mongodb://127.0.0.1:%d/", ntohs(a.sin_port));
    struct rp_mongo *down = NULL;
    struct rp_error err = {0};
    long t0 = now_ms();
    assert_int_equal(rp_mongo_open(uri, 500, 0, &down, &err), RP_EAGAIN);
    long ms = now_ms() - t0;
    assert_null(down);
    printf("mongo: closed port, 500 ms bound -> RP_EAGAIN after %ld ms (%s)\n", ms, err.msg);
    assert_true(ms < 2000);
    free(uri);
}

static int insert_one(const char *coll, int i, int *ms, struct rp_error *err)
{
    mongoc_client_t *c = rp_mongo_acquire(m);
    mongoc_collection_t *col = rp_mongo_collection(m, c, coll);
    bson_t *doc = BCON_NEW("i", BCON_INT32(i));
    bson_error_t e;
    long t0 = now_ms();
    int rc = mongoc_collection_insert_one(col, doc, NULL, NULL, &e)
                 ? RP_OK
                 : rp_mongo_error(err, &e, "insert");
    *ms = (int)(now_ms() - t0);
    bson_destroy(doc);
    mongoc_collection_destroy(col);
    rp_mongo_release(m, c);
    return rc;
}

/* A reply that never comes fails the operation after the socket timeout, as transient, and
 * the next operation works on a new connection (libmongoc's default would wait 300 s). */
static void test_lost_reply_bound(void **state)
{
    struct rp_mongo *keep = m;
    struct tcp_relay *r = tcp_relay_start(getenv("RAMPART_TEST_MONGO"));
    assert_non_null(r);
    char *uri = rp_xasprintf("mongodb://127.0.0.1:%u/%s", tcp_relay_port(r), dbname);
    struct rp_error err = {0};
    assert_int_equal(rp_mongo_open(uri, 2000, 1000, &m, &err), RP_OK);
    int ms_ok = 0, ms_lost = 0, ms_again = 0;
    assert_int_equal(insert_one("relay", 1, &ms_ok, &err), RP_OK);
    tcp_relay_swallow(r, 1);
    int rc = insert_one("relay", 2, &ms_lost, &err);
    printf("mongo: reply swallowed, 1000 ms socket timeout -> %s after %d ms (%s)\n",
           rp_strerror(rc), ms_lost, err.msg);
    assert_int_equal(rc, RP_EAGAIN);
    assert_true(ms_lost >= 900 && ms_lost < 5000);
    tcp_relay_swallow(r, 0);
    assert_int_equal(insert_one("relay", 3, &ms_again, &err), RP_OK);
    printf("mongo: next insert on a new connection: ok after %d ms\n", ms_again);
    rp_mongo_close(m);
    m = keep;
    tcp_relay_stop(r);
    free(uri);
}

int main(void)
{
    rp_log_init("it_mongo", "t", RP_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_db_name_and_ping),
        cmocka_unit_test(test_insert_find_sort_limit),
        cmocka_unit_test(test_aggregate_group_sum),
        cmocka_unit_test(test_unique_index_is_eexist),
        cmocka_unit_test(test_server_selection_bound),
        cmocka_unit_test(test_lost_reply_bound),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
