/* Unit tests for the consumer's pure parts: the parsed-test cache (worker/cache.c: hits, LRU
 * eviction, held entries never evicted, bad definitions cached with their error) and the
 * dead-letter helpers (worker/deadletter.c: the error text from the dead letter's headers, the
 * error result document and the fields read back from it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "consumer.h"
#include "rampart/mem.h"
#include "worker.h"

#define T1 "11111111-1111-4111-8111-111111111111"
#define T2 "22222222-2222-4222-8222-222222222222"
#define T3 "33333333-3333-4333-8333-333333333333"
#define DEF                                                                                        \
    "{\"name\": \"ping\", \"steps\": [{\"request\": {\"url\": \"http://127.0.0.1:9/\"}, "          \
    "\"expect\": {\"status\": 200}}]}"

static void test_cache_hits_and_lru(void **state)
{
    struct wrk_cache *c = wrk_cache_new(2);
    const struct wrk_cached *a = wrk_cache_get(c, T1, 1, DEF);
    assert_non_null(a->test);
    assert_null(a->error);
    assert_string_equal(a->test->name, "ping");
    /* a hit gives the same parsed test, whatever text is passed (a version never changes) */
    const struct wrk_cached *a2 = wrk_cache_get(c, T1, 1, "not even JSON");
    assert_ptr_equal(a, a2);
    wrk_cache_release(c, a2);
    wrk_cache_release(c, a);
    /* another version is another entry */
    const struct wrk_cached *b = wrk_cache_get(c, T1, 2, DEF);
    assert_ptr_not_equal(a, b);
    wrk_cache_release(c, b);
    /* a third key evicts the least recently used (T1 v1), which parses again afterwards */
    const struct wrk_cached *d = wrk_cache_get(c, T2, 1, DEF);
    wrk_cache_release(c, d);
    const struct wrk_cached *again = wrk_cache_get(c, T1, 1, "{\"steps\": 5}");
    assert_null(again->test); /* parsed anew: the new text is what it saw */
    assert_non_null(again->error);
    wrk_cache_release(c, again);
    wrk_cache_free(c);
}

static void test_cache_held_entries_stay(void **state)
{
    struct wrk_cache *c = wrk_cache_new(1);
    const struct wrk_cached *held = wrk_cache_get(c, T1, 1, DEF);
    const struct wrk_cached *x = wrk_cache_get(c, T2, 1, DEF);
    const struct wrk_cached *y = wrk_cache_get(c, T3, 1, DEF);
    /* over capacity while held: nothing freed under a run in flight */
    assert_string_equal(held->test->name, "ping");
    assert_string_equal(x->test->name, "ping");
    assert_ptr_equal(wrk_cache_get(c, T1, 1, "x"), held);
    wrk_cache_release(c, held);
    wrk_cache_release(c, held);
    wrk_cache_release(c, x);
    wrk_cache_release(c, y);
    wrk_cache_free(c); /* LeakSanitizer checks the rest */
}

static void test_cache_bad_definition(void **state)
{
    struct wrk_cache *c = wrk_cache_new(4);
    const struct wrk_cached *e = wrk_cache_get(c, T1, 1, "{\"name\": 3}");
    assert_null(e->test);
    assert_non_null(e->error);
    assert_non_null(strstr(e->error, "name"));
    wrk_cache_release(c, e);
    wrk_cache_free(c);
}

static void test_dead_error(void **state)
{
    struct rp_amqp_header h[] = {{"x-first-death-reason", "delivery_limit"}};
    struct rp_amqp_delivery d = {.delivery_count = -1, .headers = h, .n_headers = 1};
    char *msg = wrk_dead_error(&d, 5);
    assert_string_equal(msg, "dead-lettered after 6 deliveries: the job crashed or stalled every "
                             "worker that took it");
    free(msg);
    struct rp_amqp_header r[] = {{"x-first-death-reason", "rejected"}};
    d.headers = r;
    msg = wrk_dead_error(&d, 5);
    assert_non_null(strstr(msg, "dead-lettered (rejected)"));
    free(msg);
}

static void test_error_result(void **state)
{
    bson_t *doc = wrk_error_result("0190d6c3-1f2a-7b3c-8d4e-5f60718293ab", "ping", "it broke",
                                   1767225600000LL);
    assert_string_equal(rp_doc_str(doc, "_id"), "0190d6c3-1f2a-7b3c-8d4e-5f60718293ab");
    assert_string_equal(rp_doc_str(doc, "status"), "error");
    assert_string_equal(rp_doc_str(doc, "error"), "it broke");
    assert_string_equal(rp_doc_str(doc, "test"), "ping");
    struct wrk_item it = {.doc = doc};
    wrk_item_read_doc(&it);
    assert_string_equal(it.status, "error");
    assert_string_equal(it.error, "it broke");
    free(it.error);
    free(it.failure);
    bson_destroy(doc);
    char *name = wrk_definition_name(DEF);
    assert_string_equal(name, "ping");
    free(name);
    assert_null(wrk_definition_name("[1, 2]"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cache_hits_and_lru),   cmocka_unit_test(test_cache_held_entries_stay),
        cmocka_unit_test(test_cache_bad_definition), cmocka_unit_test(test_dead_error),
        cmocka_unit_test(test_error_result),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
