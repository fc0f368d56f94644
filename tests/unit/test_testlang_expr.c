/* Unit tests for the assertion language (common/src/testlang/expr_parse.c, expr_eval.c): every
 * operator and every `is` type with a passing and a failing case (message text checked), every
 * operand kind against a response view built by hand, ${var} operands through a lookup callback
 * (secrets shown as ***), wildcards, len(), literals, and parse errors with their column. */
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

static const char *body =
    "{\"user\": {\"age\": 12, \"name\": \"Ann\", \"email\": \"ann@example.com\","
    " \"id\": \"123e4567-e89b-12d3-a456-426614174000\", \"site\": \"https://example.com/x?y=1\","
    " \"created\": \"2024-02-29T12:30:00.5+01:00\", \"active\": true, \"nick\": null,"
    " \"tags\": [\"a\", \"b\"], \"bio\": \"h\\u00e9llo \\u2713\"},"
    " \"items\": [{\"price\": 3.5}, {\"price\": 0}, {\"price\": -1}],"
    " \"ok\": [{\"price\": 3.5}, {\"price\": 1}], \"count\": 3, \"ratio\": 0.5,"
    " \"big\": 12345678901234567890, \"empty\": {}, \"obj\": {\"b\": [1, 2], \"a\": 1}}";

static struct rp_header headers[] = {
    {"Content-Type", "application/json; charset=utf-8"},
    {"X-Request-Id", "abc"},
    {"Set-Cookie", "a=1"},
    {"set-cookie", "b=2"},
};

static int lookup(void *ud, const char *name, struct rp_value *out, int *secret)
{
    if (strcmp(name, "min_age") == 0) {
        rp_value_set_number(out, 18);
    } else if (strcmp(name, "token") == 0) {
        rp_value_set_string(out, "s3cr3t", 6);
        *secret = 1;
    } else if (strcmp(name, "user.name") == 0) {
        rp_value_set_string(out, "Ann", 3);
    } else if (strcmp(name, "list") == 0) {
        bson_t *d;
        assert_int_equal(rp_json_parse("[\"x\", 12]", 9, 0, &d, NULL), RP_OK);
        memset(out, 0, sizeof(*out));
        out->type = RP_V_ARRAY;
        out->doc = d;
    } else {
        return RP_ENOENT;
    }
    return RP_OK;
}

static bson_t *body_doc;
static struct rp_response_view view;

static int setup(void **state)
{
    assert_int_equal(rp_json_parse(body, strlen(body), 0, &body_doc, NULL), RP_OK);
    memset(&view, 0, sizeof(view));
    view.status = 200;
    view.headers = headers;
    view.n_headers = 4;
    view.body = body;
    view.body_len = strlen(body);
    view.body_size = 5000;
    view.body_json = body_doc;
    view.timings = (struct rp_timings){1.5, 3, 10, 42.25, 120};
    view.lookup = lookup;
    return 0;
}

static int teardown(void **state)
{
    bson_destroy(body_doc);
    return 0;
}

/* Check `src`; when `msg` is not NULL the message must equal it. */
static void check_r(const struct rp_response_view *r, const char *src, int passed, const char *msg)
{
    struct rp_expr *e;
    struct rp_error err = {0};
    struct rp_check c;
    if (rp_expr_parse(src, &e, &err) != RP_OK)
        fail_msg("%s: %s", src, err.msg);
    rp_expr_check(e, r, &c);
    if (c.passed != passed || (msg && strcmp(c.message, msg) != 0))
        fail_msg("%s: passed=%d message \"%s\"", src, c.passed, c.message);
    assert_non_null(c.actual);
    rp_check_clear(&c);
    rp_expr_free(e);
}

static void check(const char *src, int passed, const char *msg)
{
    check_r(&view, src, passed, msg);
}

static void parse_error(const char *src, const char *msg)
{
    struct rp_expr *e = NULL;
    struct rp_error err = {0};
    assert_int_equal(rp_expr_parse(src, &e, &err), RP_EINVAL);
    assert_null(e);
    if (strcmp(err.msg, msg) != 0)
        fail_msg("%s: got \"%s\"", src, err.msg);
}

static void test_issue_examples(void **state)
{
    check("$.user.age > 18", 0, "$.user.age: expected > 18, got 12");
    check("$.user.age > 10", 1, "$.user.age: expected > 10, got 12");
    check("status == 503", 0, "status: expected 503, got 200");
    check("status == 200", 1, NULL);
    check("header.content-type contains \"html\"", 0,
          "header.content-type: expected contains \"html\", got \"application/json; "
          "charset=utf-8\"");
    check("header.content-type contains \"json\"", 1, NULL);
}

static void test_equality(void **state)
{
    check("$.user.name == \"Ann\"", 1, "$.user.name: expected \"Ann\", got \"Ann\"");
    check("$.user.name == 'Bob'", 0, "$.user.name: expected \"Bob\", got \"Ann\"");
    check("$.user.name != \"Bob\"", 1, NULL);
    check("$.user.name != \"Ann\"", 0, "$.user.name: expected != \"Ann\", got \"Ann\"");
    check("$.count == 3.0", 1, NULL);
    check("$.count == \"3\"", 0, "$.count: expected \"3\", got 3");
    check("$.user.active == true", 1, NULL);
    check("$.user.active == false", 0, "$.user.active: expected false, got true");
    check("$.user.nick == null", 1, NULL);
    check("$.user.tags == [\"a\", \"b\"]", 1, NULL);
    check("$.user.tags == [\"b\", \"a\"]", 0,
          "$.user.tags: expected [\"b\",\"a\"], got [\"a\",\"b\"]");
    check("$.obj == {\"a\": 1, \"b\": [1, 2]}", 1, NULL); /* member order does not matter */
    check("$.obj == {\"a\": 1}", 0, "$.obj: expected {\"a\":1}, got {\"b\":[1,2],\"a\":1}");
    check("$.empty == {}", 1, NULL);
    check("$.big == 12345678901234567890", 1, NULL);
    check("$.big > 1e19", 1, NULL);
    check("$.missing != 1", 0, "$.missing: expected != 1, got (missing)");
}

static void test_ordering(void **state)
{
    check("$.ratio < 1", 1, NULL);
    check("$.ratio < 0.5", 0, "$.ratio: expected < 0.5, got 0.5");
    check("$.ratio <= 0.5", 1, NULL);
    check("$.ratio <= 0.25", 0, "$.ratio: expected <= 0.25, got 0.5");
    check("$.count >= 3", 1, NULL);
    check("$.count >= 4", 0, "$.count: expected >= 4, got 3");
    check("$.count > -1e3", 1, NULL);
    check("$.user.name < \"Bob\"", 1, NULL); /* strings: byte order */
    check("$.user.name > \"Bob\"", 0, "$.user.name: expected > \"Bob\", got \"Ann\"");
    check("$.user.name > 3", 0,
          "$.user.name: expected > 3, got \"Ann\" (cannot order a string against a number)");
    check("$.nope > 3", 0, "$.nope: expected > 3, got (missing)");
}

static void test_contains(void **state)
{
    check("$.user.name contains \"nn\"", 1, NULL);
    check("$.user.name contains \"x\"", 0, "$.user.name: expected contains \"x\", got \"Ann\"");
    check("$.user.tags contains \"b\"", 1, NULL);
    check("$.user.tags contains \"z\"", 0,
          "$.user.tags: expected contains \"z\", got [\"a\",\"b\"]");
    check("$.user contains \"email\"", 1, NULL);
    check("$.user contains \"phone\"", 0, NULL);
    check("$.user.name not contains \"x\"", 1, NULL);
    check("$.user.name not contains \"A\"", 0,
          "$.user.name: expected not contains \"A\", got \"Ann\"");
    check("$.count contains 3", 0,
          "$.count: expected contains 3, got 3 (contains needs a string in a string, a value "
          "in an array or a key in an object, got number and number)");
    check("body contains \"\\\"count\\\": 3\"", 1, NULL);
}

static void test_matches(void **state)
{
    check("$.user.name matches \"^A.n$\"", 1, NULL);
    check("$.user.name matches '^b'", 0, "$.user.name: expected matches \"^b\", got \"Ann\"");
    check("$.user.bio matches \"^h.llo .$\"", 1, NULL); /* UTF-8: . is one character */
    check("status matches \"^2\\\\d\\\\d$\"", 1, NULL);
    check("$.user.name not matches \"^B\"", 1, NULL);
    check("$.user.tags matches \"a\"", 0,
          "$.user.tags: expected matches \"a\", got [\"a\",\"b\"] (matches needs a string, got "
          "array)");
    /* catastrophic backtracking stops at the match limit instead of hanging */
    struct rp_response_view r = view;
    static const char evil[] = "{\"s\": \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!\"}";
    bson_t *d;
    assert_int_equal(rp_json_parse(evil, strlen(evil), 0, &d, NULL), RP_OK);
    r.body_json = d;
    check_r(&r, "$.s matches \"^(a|a)*$\"", 0, NULL);
    bson_destroy(d);
}

static void test_in(void **state)
{
    check("status in [200, 201]", 1, "status: expected in [200,201], got 200");
    check("status in [500, 503]", 0, "status: expected in [500,503], got 200");
    check("$.user.name in [\"Ann\", \"Bob\"]", 1, NULL);
    check("$.user.name not in [\"Ann\"]", 0, "$.user.name: expected not in [\"Ann\"], got \"Ann\"");
    check("$.user.tags in [[\"a\", \"b\"], 1]", 1, NULL);
    check("$.count in ${list}", 0, "$.count: expected in [\"x\",12] (${list}), got 3");
    check("$.user.age in ${list}", 1, NULL);
    check("$.count in []", 0, NULL);
}

static void test_exists(void **state)
{
    check("$.user.nick exists", 1, "$.user.nick: expected to exist, got null");
    check("$.user.phone exists", 0, "$.user.phone: expected to exist, got (missing)");
    check("$.user.phone not exists", 1, "$.user.phone: expected not to exist, got (missing)");
    check("$.user.name not exists", 0, "$.user.name: expected not to exist, got \"Ann\"");
    check("header.x-request-id exists", 1, NULL);
    check("header[\"X-Nope\"] exists", 0, NULL);
    check("$.items[*].price exists", 1, NULL);
    check("$.items[*].nope exists", 0, NULL);
    check("$.items[*].nope not exists", 1, NULL);
}

static void test_is_types(void **state)
{
    check("$.user.name is string", 1, "$.user.name: expected is string, got \"Ann\"");
    check("$.count is string", 0, "$.count: expected is string, got 3");
    check("$.ratio is number", 1, NULL);
    check("$.user.name is number", 0, NULL);
    check("$.count is integer", 1, NULL);
    check("$.ratio is integer", 0, "$.ratio: expected is integer, got 0.5");
    check("$.user.active is boolean", 1, NULL);
    check("$.user.nick is boolean", 0, NULL);
    check("$.user.tags is array", 1, NULL);
    check("$.user is array", 0, NULL);
    check("$.user is object", 1, NULL);
    check("$.user.tags is object", 0, NULL);
    check("$.user.nick is null", 1, NULL);
    check("$.user.missing is null", 0, "$.user.missing: expected is null, got (missing)");
    check("$.user.email is email", 1, NULL);
    check("$.user.name is email", 0, "$.user.name: expected is email, got \"Ann\"");
    check("$.user.site is url", 1, NULL);
    check("$.user.email is url", 0, NULL);
    check("$.user.id is uuid", 1, NULL);
    check("$.user.name is uuid", 0, NULL);
    check("$.user.created is date-time", 1, NULL);
    check("$.user.id is date-time", 0, NULL);
    check("$.count is not string", 1, NULL);
    check("$.count is not number", 0, "$.count: expected is not number, got 3");
    check("$.nope is not string", 0, NULL);
}

/* The documented acceptance rules of the format types, value by value. */
static void format_case(const char *type, const char *value, int passed)
{
    char json[300], src[64];
    bson_t *d;
    struct rp_response_view r = view;
    snprintf(json, sizeof(json), "{\"v\": \"%s\"}", value);
    assert_int_equal(rp_json_parse(json, strlen(json), 0, &d, NULL), RP_OK);
    r.body_json = d;
    snprintf(src, sizeof(src), "$.v is %s", type);
    check_r(&r, src, passed, NULL);
    bson_destroy(d);
}

static void test_formats(void **state)
{
    format_case("email", "a.b+c@mail.example.org", 1);
    format_case("email", "x@localhost", 0);
    format_case("email", ".a@example.com", 0);
    format_case("email", "a..b@example.com", 0);
    format_case("email", "a@-example.com", 0);
    format_case("email", "a@example.123", 0);
    format_case("email", "a b@example.com", 0);
    format_case("email", "@example.com", 0);
    format_case("url", "http://localhost:8080/", 1);
    format_case("url", "https://user:pw@api.example.com/v1/x?q=1#top", 1);
    format_case("url", "http://[::1]:80/x", 1);
    format_case("url", "ftp://files.example.com", 1);
    format_case("url", "example.com/x", 0);
    format_case("url", "http://", 0);
    format_case("url", "http://exa mple.com", 0);
    format_case("url", "http://example.com:99999/", 0);
    format_case("url", "http://-x.com/", 0);
    format_case("uuid", "00000000-0000-0000-0000-000000000000", 1);
    format_case("uuid", "123E4567-E89B-12D3-A456-426614174000", 1);
    format_case("uuid", "123e4567e89b12d3a456426614174000", 0);
    format_case("uuid", "123e4567-e89b-12d3-a456-42661417400g", 0);
    format_case("date-time", "1985-04-12T23:20:50.52Z", 1);
    format_case("date-time", "1996-12-19t16:39:57-08:00", 1);
    format_case("date-time", "1990-12-31T23:59:60Z", 1);
    format_case("date-time", "2023-02-29T00:00:00Z", 0);
    format_case("date-time", "2024-13-01T00:00:00Z", 0);
    format_case("date-time", "2024-01-01 00:00:00Z", 0);
    format_case("date-time", "2024-01-01T00:00:00", 0);
    format_case("date-time", "2024-01-01T24:00:00Z", 0);
    format_case("date-time", "2024-01-01T00:00:00.Z", 0);
    format_case("date-time", "2024-01-01T00:00:00+0100", 0);
}

static void test_len(void **state)
{
    check("len($.user.tags) == 2", 1, "len($.user.tags): expected 2, got 2");
    check("len($.user.tags) == 3", 0, "len($.user.tags): expected 3, got 2");
    check("len($.user.bio) == 7", 1, NULL); /* characters, not bytes */
    check("len($.user) >= 10", 1, NULL);
    check("len($.empty) == 0", 1, NULL);
    check("len($.items[*]) == 3", 1, NULL); /* a wildcard counts its matches */
    check("len($..price) == 5", 1, NULL);
    check("len(\"\") == 0", 1, NULL);
    check("len([1, [2, 3]]) == 2", 1, NULL);
    check("len(header.x-request-id) == 3", 1, NULL);
    check("len($.count) == 1", 0,
          "len($.count): expected 1, got (missing) (len() needs a string, array or object, got "
          "number)");
    check("len($.nope) == 0", 0, "len($.nope): expected 0, got (missing)");
}

static void test_operands(void **state)
{
    check("time < 500", 1, "time: expected < 500, got 120");
    check("time < 100", 0, "time: expected < 100, got 120");
    check("size == 5000", 1, NULL);
    check("size > 10000", 0, "size: expected > 10000, got 5000");
    check("timing.dns == 1.5", 1, NULL);
    check("timing.connect == 3", 1, NULL);
    check("timing.tls == 10", 1, NULL);
    check("timing.first_byte > 42", 1, NULL);
    check("timing.total < 100", 0, "timing.total: expected < 100, got 120");
    check("header.CONTENT-TYPE contains \"utf-8\"", 1, NULL);
    check("header[\"Content-Type\"] matches \"^application/json\"", 1, NULL);
    check("header.set-cookie == \"a=1, b=2\"", 1, NULL); /* repeated headers are joined */
    check("header.x-nope == \"a\"", 0, "header.x-nope: expected \"a\", got (missing)");
    check("body matches \"^\\\\{\"", 1, NULL);
    check("$ is object", 1, NULL);
    check("$..price", 1, NULL); /* a bare operand: present and not false/null */
    check("$.user.active", 1, NULL);
    check("$.user.nick", 0, "$.user.nick: expected a value other than false or null, got null");
    check("1 < 2", 1, NULL);
}

static void test_variables(void **state)
{
    check("$.user.age >= ${min_age}", 0, "$.user.age: expected >= 18 (${min_age}), got 12");
    check("${min_age} == 18", 1, NULL);
    check("$.user.name == ${user.name}", 1, NULL);
    check("${token} == \"nope\"", 0, "${token}: expected \"nope\", got ***");
    check("$.user.name == ${token}", 0, "$.user.name: expected *** (${token}), got \"Ann\"");
    check("${undefined} == 1", 0,
          "${undefined}: expected 1, got (missing) (${undefined} is not "
          "defined)");
    check("$.count == ${undefined}", 0,
          "$.count: expected (missing) (${undefined}), got 3 (${undefined} is not defined)");
    struct rp_response_view r = view;
    r.lookup = NULL;
    check_r(&r, "${min_age} exists", 0, NULL);

    struct rp_expr *e;
    struct rp_check c;
    assert_int_equal(rp_expr_parse("${token} == \"s3cr3t\"", &e, NULL), RP_OK);
    rp_expr_check(e, &view, &c);
    assert_true(c.passed);
    assert_string_equal(c.actual, "***");
    assert_string_equal(c.message, "${token}: expected \"s3cr3t\", got ***");
    rp_check_clear(&c);
    rp_expr_free(e);
}

static void test_wildcards(void **state)
{
    check("$.ok[*].price > 0", 1, "$.ok[*].price: expected > 0, got [3.5,1]");
    check("$.items[*].price > 0", 0, "$.items[*].price (match 2): expected > 0, got 0");
    check("$.items[*].price >= 0", 0, "$.items[*].price (match 3): expected >= 0, got -1");
    check("$.nothing[*] == 1", 0, "$.nothing[*]: expected 1, got no match");
    check("$..price is number", 1, NULL);
    check("$.user.tags[*] in [\"a\", \"b\"]", 1, NULL);
}

static void test_no_json_body(void **state)
{
    struct rp_response_view r = view;
    r.body_json = NULL;
    r.body = "<html>";
    r.body_len = 6;
    check_r(&r, "$.a == 1", 0, "$.a: expected 1, got (missing) (the body is not JSON)");
    check_r(&r, "$.a not exists", 1, NULL);
    check_r(&r, "$[*] == 1", 0, "$[*]: expected 1, got no match (the body is not JSON)");
    check_r(&r, "body == \"<html>\"", 1, NULL);
}

static void test_literals(void **state)
{
    check("\"caf\\u00e9\" == \"caf\xc3\xa9\"", 1, NULL);
    check("\"\\ud83d\\ude00\" == \"\xf0\x9f\x98\x80\"", 1, NULL);
    check("'it\\'s' == \"it's\"", 1, NULL);
    check("-0 == 0", 1, NULL);
    check("1.5e2 == 150", 1, NULL);
    check("[1, \"a\", [true, null], {\"k\": 'v'}] == [1, 'a', [true, null], {'k': \"v\"}]", 1,
          NULL);
    check("  status   ==   200  ", 1, NULL);
}

static void test_value(void **state)
{
    struct rp_expr *e;
    struct rp_value v;
    int secret = -1;

    assert_int_equal(rp_expr_parse_operand("$.items[*].price", &e, NULL), RP_OK);
    rp_expr_value(e, &view, &v, &secret);
    assert_int_equal(v.type, RP_V_ARRAY);
    assert_int_equal(secret, 0);
    char *s = rp_value_to_json(&v, 0);
    assert_string_equal(s, "[3.5,0,-1]");
    free(s);
    rp_value_clear(&v);
    rp_expr_free(e);

    assert_int_equal(rp_expr_parse_operand("${token}", &e, NULL), RP_OK);
    rp_expr_value(e, &view, &v, &secret);
    assert_int_equal(secret, 1);
    assert_string_equal(v.str, "s3cr3t");
    rp_value_clear(&v);
    rp_expr_free(e);

    assert_int_equal(rp_expr_parse_operand("$.user.nope", &e, NULL), RP_OK);
    rp_expr_value(e, &view, &v, NULL);
    assert_int_equal(v.type, RP_V_MISSING);
    rp_expr_free(e);

    assert_int_equal(rp_expr_parse_operand("header.x-request-id", &e, NULL), RP_OK);
    rp_expr_value(e, &view, &v, NULL);
    assert_string_equal(v.str, "abc");
    rp_value_clear(&v);
    rp_expr_free(e);

    assert_int_equal(rp_expr_parse("status == 200", &e, NULL), RP_OK);
    rp_expr_value(e, &view, &v, NULL);
    assert_int_equal(v.type, RP_V_BOOL);
    assert_true(v.b);
    rp_expr_free(e);
    rp_expr_free(NULL);

    struct rp_error err;
    assert_int_equal(rp_expr_parse_operand("status == 200", &e, &err), RP_EINVAL);
    assert_string_equal(err.msg, "column 8: unexpected `==` after the operand");
}

static void test_parse_errors(void **state)
{
    parse_error("status => 200", "column 8: unknown operator `=>`; expected one of == != < <= > "
                                 ">= contains matches in exists is not");
    parse_error("status = 200", "column 8: unknown operator `=`; expected one of == != < <= > >= "
                                "contains matches in exists is not");
    parse_error("status equals 200", "column 8: unknown operator `equals`; expected one of == != "
                                     "< <= > >= contains matches in exists is not");
    parse_error("", "column 1: expected an operand (status, time, size, body, header.NAME, "
                    "timing.PHASE, $.path, ${var}, len(...) or a literal)");
    parse_error("stauts == 200", "column 1: unknown operand `stauts`; expected status, time, "
                                 "size, body, header.NAME, timing.PHASE, $.path, ${var}, "
                                 "len(...) or a literal");
    parse_error("status ==", "column 10: expected an operand after `==`");
    parse_error("status == 200 x", "column 15: unexpected `x` after the expression");
    parse_error("$.a is emial", "column 8: unknown type `emial`; expected one of string number "
                                "integer boolean array object null email url uuid date-time");
    parse_error("$.a not between", "column 9: expected exists, contains, matches or in after "
                                   "`not`");
    parse_error("$.a == \"abc", "column 8: unterminated string; expected a closing `\"`");
    parse_error("$.a == 'a\\qb'", "column 10: unknown escape; expected one of \\\" \\' \\\\ \\/ "
                                  "\\n \\t \\r \\b \\f \\uXXXX");
    parse_error("$.a == \"\\u00\"", "column 9: bad \\u escape; expected 4 hex digits");
    parse_error("$.a == \"\\ud800\"", "column 9: lone surrogate in \\u escape");
    parse_error("$.a == \"\\u0000\"", "column 9: \\u0000 is not allowed in a string");
    parse_error("$.a[ == 1", "column 6: bad JSON path: expected `*`, an index or a quoted name "
                             "after `[`");
    parse_error("$.a.. == 1", "column 6: bad JSON path: expected a member name or `*` after `.`");
    parse_error("$.a matches \"(\"", "column 13: invalid regular expression: missing closing "
                                     "parenthesis (at offset 1 of the pattern)");
    parse_error("$.a matches ${re}", "column 13: expected a quoted regular expression after "
                                     "`matches`");
    parse_error("status in 200", "column 11: expected a list `[...]` after `in`");
    parse_error("status in [200, ", "column 17: expected a literal (number, \"string\", true, "
                                    "false, null, [...] or {...})");
    parse_error("status in [200 201]", "column 16: expected `,` or `]` in the list");
    parse_error("$.a == {a: 1}", "column 9: expected a quoted member name");
    parse_error("$.a == 1.", "column 9: expected digits after `.`");
    parse_error("$.a == 1e", "column 9: expected digits in the exponent");
    parse_error("$.a == 12abc", "column 8: malformed number");
    parse_error("$.a == 1e999", "column 8: number out of range");
    parse_error("$.a == -", "column 8: expected a number after `-`");
    parse_error("${ == 1", "column 1: unterminated `${`; expected `}`");
    parse_error("${} == 1", "column 3: expected a variable name after `${`");
    parse_error("header == 1", "column 7: expected `.NAME` or `[\"Name\"]` after `header`");
    parse_error("header[x] == 1", "column 8: expected a quoted header name after `header[`");
    parse_error("header[\"x\" == 1", "column 12: expected `]` after the header name");
    parse_error("timing.ttfb < 1", "column 8: unknown timing phase; expected one of dns, connect, "
                                   "tls, first_byte, total");
    parse_error("len $.a == 1", "column 5: expected `(` after `len`");
    parse_error("len($.a == 1", "column 9: expected `)` to close `len(`");
    parse_error("len(stauts) == 1", "column 5: unknown operand `stauts`; expected status, time, "
                                    "size, body, header.NAME, timing.PHASE, $.path, ${var}, "
                                    "len(...) or a literal");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_issue_examples), cmocka_unit_test(test_equality),
        cmocka_unit_test(test_ordering),       cmocka_unit_test(test_contains),
        cmocka_unit_test(test_matches),        cmocka_unit_test(test_in),
        cmocka_unit_test(test_exists),         cmocka_unit_test(test_is_types),
        cmocka_unit_test(test_formats),        cmocka_unit_test(test_len),
        cmocka_unit_test(test_operands),       cmocka_unit_test(test_variables),
        cmocka_unit_test(test_wildcards),      cmocka_unit_test(test_no_json_body),
        cmocka_unit_test(test_literals),       cmocka_unit_test(test_value),
        cmocka_unit_test(test_parse_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
