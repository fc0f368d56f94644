/* Unit tests of the alert engine's pure parts (common/src/alert): the back-off ladder that
 * names the retry queues, and reading a channel's opened secrets. The engine's behaviour with
 * real servers (ledger, retries, muting, kill -9) is tested end to end in tests/alerts/. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "rampart/alert.h"

static void test_backoff_doubles_then_caps(void **state)
{
    (void)state;
    assert_int_equal(rp_alert_backoff_ms(200, 3600000, 1), 200);
    assert_int_equal(rp_alert_backoff_ms(200, 3600000, 2), 400);
    assert_int_equal(rp_alert_backoff_ms(200, 3600000, 3), 800);
    assert_int_equal(rp_alert_backoff_ms(10000, 3600000, 8), 1280000);
    assert_int_equal(rp_alert_backoff_ms(10000, 3600000, 9), 2560000);
    assert_int_equal(rp_alert_backoff_ms(10000, 3600000, 10), 3600000); /* capped */
    assert_int_equal(rp_alert_backoff_ms(10000, 3600000, 50), 3600000); /* no overflow */
    assert_int_equal(rp_alert_backoff_ms(5000, 1000, 1), 1000);         /* base above the cap */
}

static void test_secret_lookup(void **state)
{
    (void)state;
    bson_t *s =
        BCON_NEW("webhook_url", BCON_UTF8("https://hooks.example.com/x"), "n", BCON_INT32(3));
    struct rp_alert_channel ch = {.id = "c", .name = "n", .kind = "slack", .secrets = s};
    assert_string_equal(rp_alert_secret(&ch, "webhook_url"), "https://hooks.example.com/x");
    assert_null(rp_alert_secret(&ch, "missing"));
    assert_null(rp_alert_secret(&ch, "n")); /* not a string */
    struct rp_alert_channel none = {.id = "c"};
    assert_null(rp_alert_secret(&none, "webhook_url"));
    assert_null(rp_alert_secret(NULL, "webhook_url"));
    bson_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff_doubles_then_caps),
        cmocka_unit_test(test_secret_lookup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
