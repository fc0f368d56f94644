/* Unit tests for the error codes (error.c) and the allocation helpers and capped buffer (mem.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rampart/error.h"
#include "rampart/mem.h"

static void test_strerror(void **state)
{
    assert_string_equal(rp_strerror(RP_OK), "success");
    assert_string_equal(rp_strerror(RP_EAGAIN), "transient failure, retry later");
    assert_string_equal(rp_strerror(-999), "unknown error");
    assert_true(rp_is_transient(RP_EAGAIN));
    assert_false(rp_is_transient(RP_EINVAL));
    struct rp_error e;
    assert_int_equal(rp_error_set(&e, RP_EIO, "disk %d", 3), RP_EIO);
    assert_int_equal(e.code, RP_EIO);
    assert_string_equal(e.msg, "disk 3");
    assert_int_equal(rp_error_set(NULL, RP_EINVAL, "x"), RP_EINVAL);
}

static void test_buf_cap(void **state)
{
    struct rp_buf b;
    rp_buf_init(&b, 8);
    assert_int_equal(rp_buf_append(&b, "abcd", 4), RP_OK);
    assert_int_equal(rp_buf_printf(&b, "%d", 1234), RP_OK);
    assert_string_equal(b.data, "abcd1234");
    assert_int_equal(rp_buf_append(&b, "x", 1), RP_ENOMEM);
    assert_string_equal(b.data, "abcd1234");
    rp_buf_reset(&b);
    assert_int_equal(b.len, 0);
    rp_buf_cleanup(&b);
    rp_buf_cleanup(NULL);
    char *s = rp_xasprintf("%s-%d", "a", 7);
    assert_string_equal(s, "a-7");
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strerror),
        cmocka_unit_test(test_buf_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
