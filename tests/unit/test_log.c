/* Unit tests for the JSON-lines logger (log.c): fields, levels, escaping, one line per call. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rampart/error.h"
#include "rampart/log.h"

static void test_log_json(void **state)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    rp_log_set_stream(f);
    rp_log_init("testsvc", "inst-1", RP_LOG_INFO);
    rp_log(RP_LOG_DEBUG, NULL, "hidden");
    rp_log(RP_LOG_WARN, "run-42", "quote \" and newline\n and tab\t");
    rp_log_set_stream(NULL);
    fclose(f);
    assert_null(strstr(out, "hidden"));
    assert_non_null(strstr(out, "\"level\":\"warn\""));
    assert_non_null(strstr(out, "\"service\":\"testsvc\""));
    assert_non_null(strstr(out, "\"instance\":\"inst-1\""));
    assert_non_null(strstr(out, "\"run_id\":\"run-42\""));
    assert_non_null(strstr(out, "quote \\\" and newline\\n and tab\\t\"}\n"));
    assert_int_equal(strchr(out, '\n') - out + 1, (long)len);
    free(out);
    enum rp_log_level lv;
    assert_int_equal(rp_log_level_parse("ERROR", &lv), RP_OK);
    assert_int_equal(lv, RP_LOG_ERROR);
    assert_int_equal(rp_log_level_parse("loud", &lv), RP_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
