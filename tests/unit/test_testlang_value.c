/* Unit tests for the test language's values (common/src/testlang/value.c): JSON parsing of every
 * top-level type, errors with byte offsets, what the {"v": ...} wrapper must not let through, big
 * numbers, and the value type's conversions (from BSON, to JSON text, to template text, append). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rampart/mem.h"
#include "rampart/testlang.h"

/* Parse `json` and return the root's JSON text (new string), or NULL with `err` filled. */
static char *roundtrip(const char *json, struct rp_error *err)
{
    bson_t *doc;
    bson_iter_t it;
    struct rp_value v;
    if (rp_json_parse(json, strlen(json), 0, &doc, err) != RP_OK)
        return NULL;
    assert_int_equal(rp_json_root(doc, &it), RP_OK);
    rp_value_from_iter(&v, &it);
    char *s = rp_value_to_json(&v, 0);
    rp_value_clear(&v);
    bson_destroy(doc);
    return s;
}

static void expect_json(const char *in, const char *out)
{
    struct rp_error err = {0};
    char *s = roundtrip(in, &err);
    if (!s)
        fail_msg("%s: %s", in, err.msg);
    assert_string_equal(s, out);
    free(s);
}

static void expect_error(const char *in, const char *msg)
{
    struct rp_error err = {0};
    char *s = roundtrip(in, &err);
    if (s)
        fail_msg("%s parsed as %s", in, s);
    assert_int_equal(err.code, RP_EINVAL);
    assert_string_equal(err.msg, msg);
}

static void test_top_level_types(void **state)
{
    expect_json("{\"a\": 1, \"b\": [true, null, \"x\"]}", "{\"a\":1,\"b\":[true,null,\"x\"]}");
    expect_json("[1, 2.5, -3]", "[1,2.5,-3]");
    expect_json("  \"hi\"  ", "\"hi\"");
    expect_json("42", "42");
    expect_json("-0.125", "-0.125");
    expect_json("true", "true");
    expect_json("false", "false");
    expect_json("null", "null");
    expect_json("[]", "[]");
    expect_json("{}", "{}");
}

static void test_numbers(void **state)
{
    expect_json("9007199254740992", "9007199254740992");
    /* numbers are doubles: beyond 2^53 they print in exponent form */
    expect_json("9223372036854775807", "9.223372036854776e+18");
    /* beyond int64: read as a double instead of refused */
    expect_json("12345678901234567890", "1.2345678901234567e+19");
    expect_json("[1, 99999999999999999999999, 2]", "[1,1e+23,2]");
    expect_json("1e3", "1000");
    expect_json("0.1", "0.1");
    expect_json("1e-400", "0");
    expect_json("3.0", "3");
}

static void test_strings(void **state)
{
    expect_json("\"caf\\u00e9 \xe2\x9c\x93 \\ud83d\\ude00\"",
                "\"caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80\"");
    expect_json("\"a\\\"b\\\\c\\n\\t\\u0001\"", "\"a\\\"b\\\\c\\n\\t\\u0001\"");
}

static void test_errors_have_offsets(void **state)
{
    expect_error("[1, 2", "invalid JSON at byte 5: unexpected end of input (bracket mismatch)");
    expect_error("{\"a\": tru}", "invalid JSON at byte 9: misspelled true, false or null");
    expect_error("[1 2]", "invalid JSON at byte 3: missing `,` or `:`");
    expect_error("  x", "invalid JSON at byte 2: unexpected character");
    expect_error("{\"a\":1", "invalid JSON at byte 6: unexpected end of input");
    expect_error("", "invalid JSON at byte 0: unexpected end of input (value expected)");
    expect_error("{\"a\":1,}", "invalid JSON at byte 7: trailing comma");
    expect_error("01", "invalid JSON at byte 1: invalid number");
    /* what the wrapper {"v": TEXT} could otherwise let through */
    expect_error("1, \"v\": 2", "invalid JSON at byte 1: text after the value");
    expect_error("1}{\"v\":2", "invalid JSON at byte 1: text after the value");
    expect_error("{\"a\":1}}",
                 "invalid JSON at byte 8: unexpected end of input (bracket mismatch)");
    /* an error after a rewritten big number still points into the caller's text */
    expect_error("[123456789012345678901, x]", "invalid JSON at byte 24: unexpected character");

    struct rp_error err;
    bson_t *doc;
    assert_int_equal(rp_json_parse("1\0", 2, 0, &doc, &err), RP_EINVAL);
    assert_string_equal(err.msg, "invalid JSON at byte 1: NUL byte");
    assert_int_equal(rp_json_parse("[1,2,3]", 7, 6, &doc, &err), RP_ENOMEM);
    assert_int_equal(rp_json_parse("[1,2,3]", 7, 7, &doc, &err), RP_OK);
    bson_destroy(doc);
}

static void test_deep_nesting_refused(void **state)
{
    char buf[1024];
    memset(buf, '[', 500);
    memset(buf + 500, ']', 500);
    bson_t *doc;
    struct rp_error err;
    assert_int_equal(rp_json_parse(buf, 1000, 0, &doc, &err), RP_EINVAL);
    assert_non_null(strstr(err.msg, "levels exceeded"));
}

static void test_value_conversions(void **state)
{
    struct rp_value v, c;
    char *s;

    rp_value_set_number(&v, 3);
    assert_true(v.is_int);
    s = rp_value_to_text(&v);
    assert_string_equal(s, "3");
    free(s);
    rp_value_set_number(&v, 2.5);
    assert_false(v.is_int);
    s = rp_value_to_text(&v);
    assert_string_equal(s, "2.5");
    free(s);

    rp_value_set_string(&v, "say \"hi\"", 8);
    s = rp_value_to_text(&v);
    assert_string_equal(s, "say \"hi\"");
    free(s);
    s = rp_value_to_json(&v, 0);
    assert_string_equal(s, "\"say \\\"hi\\\"\"");
    free(s);
    rp_value_copy(&c, &v);
    assert_ptr_not_equal(c.str, v.str);
    rp_value_clear(&v);
    assert_int_equal(v.type, RP_V_MISSING);
    assert_string_equal(c.str, "say \"hi\"");
    rp_value_clear(&c);
    rp_value_clear(NULL);

    s = rp_value_to_json(&v, 0);
    assert_string_equal(s, "(missing)");
    free(s);
    assert_string_equal(rp_value_type_name(RP_V_OBJECT), "object");
    assert_string_equal(rp_value_type_name(RP_V_BOOL), "boolean");
}

static void test_to_json_cut(void **state)
{
    struct rp_value v;
    /* é is two bytes: the cut must not split it */
    rp_value_set_string(&v, "abc\xc3\xa9xyz", 9);
    char *s = rp_value_to_json(&v, 8);
    assert_string_equal(s, "\"abc...");
    free(s);
    s = rp_value_to_json(&v, 9);
    assert_string_equal(s, "\"abc\xc3\xa9...");
    assert_true(strlen(s) <= 9);
    free(s);
    rp_value_clear(&v);
}

static void test_append_and_containers(void **state)
{
    bson_t *doc;
    struct rp_error err;
    bson_iter_t it;
    struct rp_value v, n;
    const char *json = "{\"list\":[1,\"two\",{\"three\":3.5}],\"ok\":true}";
    assert_int_equal(rp_json_parse(json, strlen(json), 0, &doc, &err), RP_OK);
    assert_int_equal(rp_json_root(doc, &it), RP_OK);
    rp_value_from_iter(&v, &it);
    assert_int_equal(v.type, RP_V_OBJECT);

    bson_t out = BSON_INITIALIZER;
    rp_value_append(&out, "o", &v);
    rp_value_set_number(&n, 7);
    rp_value_append(&out, "n", &n);
    struct rp_value missing = {0};
    rp_value_append(&out, "m", &missing);
    assert_int_equal(bson_count_keys(&out), 2);
    assert_true(bson_iter_init_find(&it, &out, "n") && BSON_ITER_HOLDS_INT32(&it));
    char *s = rp_value_to_text(&v);
    assert_string_equal(s, json);
    free(s);
    bson_destroy(&out);
    rp_value_clear(&v);
    bson_destroy(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_top_level_types),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_errors_have_offsets),
        cmocka_unit_test(test_deep_nesting_refused),
        cmocka_unit_test(test_value_conversions),
        cmocka_unit_test(test_to_json_cut),
        cmocka_unit_test(test_append_and_containers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
