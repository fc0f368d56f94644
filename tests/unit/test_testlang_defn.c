/* Unit tests for test definitions (common/src/testlang/defn.c): a full definition lands in the
 * expected struct fields, defaults apply, and every kind of bad input is refused with the exact,
 * located message a user would read (unknown keys with hints, types, ranges, methods, URLs,
 * headers, expressions, templates, schemas, JSON syntax with line and column, caps). Definitions
 * are written with ' for " to stay readable; \' becomes \". */
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
#include "rampart/testlang.h"

/* `src` with every ' turned into ". New string. */
static char *dq(const char *src)
{
    char *s = rp_xstrdup(src);
    for (char *p = s; *p; p++)
        if (*p == '\'')
            *p = '"';
    return s;
}

static struct rp_test *parse_ok(const char *src)
{
    char *json = dq(src);
    struct rp_test *t = NULL;
    struct rp_error err = {0};
    int rc = rp_test_parse(json, strlen(json), &t, &err);
    if (rc != RP_OK)
        print_error("unexpected error: %s\n", err.msg);
    assert_int_equal(rc, RP_OK);
    assert_non_null(t);
    free(json);
    return t;
}

/* Parse `src` (' for ") expecting RP_EINVAL; its message must equal `want`, or start with it
 * when `prefix` (for messages finished by other modules). */
static void expect_error(const char *src, const char *want, int prefix)
{
    char *json = dq(src);
    struct rp_test *t = NULL;
    struct rp_error err = {0};
    int rc = rp_test_parse(json, strlen(json), &t, &err);
    int ok = rc == RP_EINVAL && err.code == RP_EINVAL && t == NULL &&
             (prefix ? strncmp(err.msg, want, strlen(want)) == 0 : strcmp(err.msg, want) == 0);
    if (!ok)
        print_error("input: %s\n  want: %s%s\n  got:  %s (rc %d)\n", json, want,
                    prefix ? "..." : "", err.msg, rc);
    free(json);
    assert_true(ok);
}

#define ERR(src, want)     expect_error(src, want, 0)
#define ERR_PRE(src, want) expect_error(src, want, 1)

/* A test with these steps, and a step with this request and these extra fields. */
#define TEST(steps)      "{'name': 't', 'steps': [" steps "]}"
#define STEP(req, extra) "{'name': 's', 'request': {" req "}" extra "}"
#define URL              "'url': 'http://h/'"
#define WITH(extra)      TEST(STEP(URL, extra))
#define REQ(req)         TEST(STEP(URL ", " req, ""))

static const char full_def[] =
    "{'version': 1, 'name': 'checkout', 'description': 'buy things',"
    " 'tags': ['smoke', 'shop'], 'stop_on_failure': true,"
    " 'variables': {'base': 'http://127.0.0.1:8000', 'n': 3,"
    "               'password': {'value': 'pw', 'secret': true},"
    "               'obj': {'value': 1, 'other': 2}},"
    " 'steps': ["
    "  {'name': 'log in',"
    "   'request': {'method': 'post', 'url': '${base}/post',"
    "               'headers': {'Accept': 'application/json', 'X-N': 5, 'X-Multi': ['a', 'b']},"
    "               'json': {'user': '${user}', 'n': 5, 'list': [true, null]},"
    "               'timeout': '1.5m', 'follow_redirects': 3, 'verify_tls': false},"
    "   'expect': {'status': [200, '2xx']},"
    "   'capture': {'token': {'from': '$.json.token', 'secret': true}, 'who': '$.json.user'},"
    "   'assert': ['status == 200', {'that': 'time < 500', 'severity': 'warning'},"
    "              {'that': '$.ok == true', 'stop': true}],"
    "   'schema': {'type': 'object', 'required': ['json']},"
    "   'stop_on_failure': false},"
    "  {'request': {'url': '${base}/form', 'method': 'PUT',"
    "               'form': {'a': 'b', 'c': ['1', '2']}, 'timeout': 250,"
    "               'follow_redirects': false},"
    "   'if': '${n} > 2', 'each': '$.json.list'},"
    "  {'name': 'raw', 'request': {'url': 'https://h/raw', 'body': 'hello ${who}'},"
    "   'expect': {'status': 204}, 'each': '$.items', 'as': 'it'}"
    " ]}";

static void test_full_definition(void **state)
{
    struct rp_test *t = parse_ok(full_def);
    assert_string_equal(t->name, "checkout");
    assert_string_equal(t->description, "buy things");
    assert_int_equal(t->n_tags, 2);
    assert_string_equal(t->tags[1], "shop");
    assert_non_null(t->variables);
    bson_iter_t it, sub;
    assert_true(bson_iter_init(&it, t->variables));
    assert_true(bson_iter_find_descendant(&it, "v.password.secret", &sub));
    assert_true(BSON_ITER_HOLDS_BOOL(&sub) && bson_iter_bool(&sub));
    assert_int_equal(t->n_steps, 3);

    struct rp_step *s = &t->steps[0];
    assert_string_equal(s->name, "log in");
    assert_string_equal(s->method, "POST");
    assert_string_equal(s->url, "${base}/post");
    assert_int_equal(s->n_headers, 4);
    assert_string_equal(s->headers[0].name, "Accept");
    assert_string_equal(s->headers[0].value, "application/json");
    assert_string_equal(s->headers[1].value, "5");
    assert_string_equal(s->headers[2].name, "X-Multi");
    assert_string_equal(s->headers[3].name, "X-Multi");
    assert_string_equal(s->headers[3].value, "b");
    assert_int_equal(s->body_kind, RP_BODY_JSON);
    assert_string_equal(s->body, "{\"user\":\"${user}\",\"n\":5,\"list\":[true,null]}");
    assert_int_equal(s->timeout_ms, 90000);
    assert_int_equal(s->follow_redirects, 3);
    assert_int_equal(s->verify_tls, 0);
    assert_int_equal(s->n_expect_status, 101); /* 200, then 200..299 */
    assert_int_equal(s->expect_status[0], 200);
    assert_int_equal(s->expect_status[1], 200);
    assert_int_equal(s->expect_status[100], 299);
    assert_int_equal(s->n_captures, 2);
    assert_string_equal(s->captures[0].name, "token");
    assert_string_equal(s->captures[0].src, "$.json.token");
    assert_non_null(s->captures[0].from);
    assert_true(s->captures[0].secret);
    assert_string_equal(s->captures[1].name, "who");
    assert_false(s->captures[1].secret);
    assert_int_equal(s->n_asserts, 3);
    assert_string_equal(s->asserts[0].src, "status == 200");
    assert_int_equal(s->asserts[0].severity, RP_SEV_ERROR);
    assert_false(s->asserts[0].stop);
    assert_int_equal(s->asserts[1].severity, RP_SEV_WARNING);
    assert_string_equal(s->asserts[2].src, "$.ok == true");
    assert_true(s->asserts[2].stop);
    assert_non_null(s->asserts[2].expr);
    assert_non_null(s->schema);
    assert_null(s->if_expr);
    assert_null(s->each);
    assert_null(s->each_as);
    assert_false(s->stop_on_failure); /* the step's own value beats the test's */

    s = &t->steps[1];
    assert_string_equal(s->name, "PUT ${base}/form"); /* default name */
    assert_int_equal(s->body_kind, RP_BODY_FORM);
    assert_int_equal(s->n_form, 3);
    assert_string_equal(s->form[2].name, "c");
    assert_string_equal(s->form[2].value, "2");
    assert_null(s->body);
    assert_int_equal(s->timeout_ms, 250);
    assert_int_equal(s->follow_redirects, 0);
    assert_int_equal(s->verify_tls, 1);
    assert_null(s->expect_status);
    assert_string_equal(s->if_src, "${n} > 2");
    assert_non_null(s->if_expr);
    assert_string_equal(s->each_src, "$.json.list");
    assert_string_equal(s->each_as, "item");
    assert_true(s->stop_on_failure); /* inherited from the test */

    s = &t->steps[2];
    assert_string_equal(s->method, "GET");
    assert_int_equal(s->body_kind, RP_BODY_RAW);
    assert_string_equal(s->body, "hello ${who}");
    assert_int_equal(s->timeout_ms, 30000);
    assert_int_equal(s->follow_redirects, 10);
    assert_int_equal(s->n_expect_status, 1);
    assert_int_equal(s->expect_status[0], 204);
    assert_string_equal(s->each_as, "it");
    rp_test_free(t);
    rp_test_free(NULL);
}

static void test_minimal_and_bom(void **state)
{
    const char src[] =
        "\xef\xbb\xbf{\"name\": \"m\", \"steps\": [{\"request\": {\"url\": \"${u}\"}}]}";
    struct rp_test *t = NULL;
    struct rp_error err = {0};
    assert_int_equal(rp_test_parse(src, sizeof(src) - 1, &t, &err), RP_OK);
    assert_int_equal(t->n_steps, 1);
    assert_string_equal(t->steps[0].name, "GET ${u}");
    assert_int_equal(t->steps[0].body_kind, RP_BODY_NONE);
    assert_null(t->variables);
    assert_int_equal(t->n_tags, 0);
    assert_false(t->steps[0].stop_on_failure);
    rp_test_free(t);
}

static void test_templates_and_bodies(void **state)
{
    /* header values may be templates, names too; a JSON body may be any JSON value */
    struct rp_test *t = parse_ok(REQ("'headers': {'${h}': 'Bearer ${token}'}, 'json': [1, 'x']"));
    assert_string_equal(t->steps[0].headers[0].name, "${h}");
    assert_string_equal(t->steps[0].body, "[1,\"x\"]");
    rp_test_free(t);
    t = parse_ok(REQ("'json': '${payload}', 'timeout': 600000"));
    assert_string_equal(t->steps[0].body, "\"${payload}\"");
    assert_int_equal(t->steps[0].timeout_ms, 600000);
    rp_test_free(t);
}

static void test_bad_json(void **state)
{
    ERR("", "test definition is empty");
    ERR(" \n\t ", "test definition is empty");
    ERR_PRE("{\n  'name': 't',\n  'steps': [\n    {'request': }\n  ]\n}",
            "invalid JSON at line 4, column ");
    ERR_PRE("{'name': 't',\n 'steps': [", "invalid JSON at line 2, column 12: unexpected end");
    ERR_PRE("{'name': 't'}\n{}", "invalid JSON at line 2, column ");
    ERR("[1, 2]", "top level: a test definition is a JSON object ({\"name\": ..., \"steps\": "
                  "[...]}), got an array");
    ERR("'steps'", "top level: a test definition is a JSON object ({\"name\": ..., \"steps\": "
                   "[...]}), got a string");

    /* deeper than libbson's nesting limit: refused, not a crash */
    char deep[700] = "{'name': 't', 'steps': [{'request': {'url': 'http://h', 'json': ";
    for (int i = 0; i < 150; i++)
        strcat(deep, "[");
    ERR_PRE(deep, "invalid JSON at line 1, column ");
}

static void test_size_cap(void **state)
{
    size_t n = (4u << 20) + 1;
    char *big = rp_xmalloc(n);
    memset(big, ' ', n);
    struct rp_test *t = NULL;
    struct rp_error err = {0};
    assert_int_equal(rp_test_parse(big, n, &t, &err), RP_ENOMEM);
    assert_string_equal(err.msg, "test definition is 4194305 bytes; the limit is 4 MiB");
    assert_null(t);
    free(big);
    /* a definition just under the cap parses (a long description is fine, up to its own cap) */
    assert_int_equal(rp_test_parse("", 0, &t, NULL), RP_EINVAL);
}

static void test_top_level_errors(void **state)
{
    ERR("{'name': 't', 'stesp': []}", "top level: unknown key `stesp`; did you mean `steps`?");
    ERR("{'name': 't', 'vars': {}, 'steps': []}",
        "top level: unknown key `vars`; did you mean `variables`?");
    ERR("{'name': 't', 'zzz': 1}", "top level: unknown key `zzz`; expected one of: version, "
                                   "name, description, tags, variables, steps, stop_on_failure");
    ERR("{'name': 't', 'name': 'u'}", "top level: duplicate key `name`");
    ERR("{'steps': []}", "top level: `name` is required");
    ERR("{'name': 5, 'steps': []}", "name: must be a string, got a number");
    ERR("{'name': '', 'steps': []}", "name: must not be empty");
    ERR("{'name': 'a\\nb', 'steps': []}",
        "name: must not contain control characters (tab, newline...)");
    ERR("{'name': 'a\\u0000b', 'steps': []}", "name: must not contain a NUL character (\\u0000)");
    ERR("{'version': 2, 'name': 't'}", "version: this worker reads version 1 definitions, got 2");
    ERR("{'name': 't'}", "top level: `steps` is required (a list of at least one step)");
    ERR("{'name': 't', 'steps': {}}", "steps: must be an array of steps, got an object");
    ERR("{'name': 't', 'steps': []}", "steps: must have at least one step");
    ERR("{'name': 't', 'tags': ['a', 2], 'steps': []}", "tags[2]: must be a string, got a number");
    ERR("{'name': 't', 'stop_on_failure': 'yes', 'steps': []}",
        "stop_on_failure: must be true or false, got a string");
    ERR("{'name': 't', 'variables': [], 'steps': []}",
        "variables: must be an object, got an array");
    ERR("{'name': 't', 'variables': {'my var': 1}, 'steps': []}",
        "variables: variable name `my var` may only contain letters, digits, `_` and `-`");
    ERR("{'name': 't', 'variables': {'pw': {'value': 1, 'secret': 'yes'}}, 'steps': []}",
        "variables.pw.secret: must be true or false, got a string");

    /* too many steps */
    struct rp_buf b;
    rp_buf_init(&b, 0);
    (void)rp_buf_printf(&b, "{'name': 't', 'steps': [");
    for (int i = 0; i < 201; i++)
        (void)rp_buf_printf(&b, "%s{'request': {'url': 'http://h/'}}", i ? "," : "");
    (void)rp_buf_printf(&b, "]}");
    ERR(b.data, "steps: more than 200 steps; split the test");
    rp_buf_cleanup(&b);
}

static void test_step_errors(void **state)
{
    ERR(TEST("'x'"), "step 1: must be an object with a `request`, got a string");
    ERR(TEST("{'name': 's', 'request': {'url': 'http://h/'}, 'asert': []}"),
        "step 1 (\"s\"): unknown key `asert`; did you mean `assert`?");
    ERR(TEST("{'name': 's', 'url': 'http://h/'}"),
        "step 1 (\"s\"): unknown key `url`; `url` belongs inside `request`");
    ERR(TEST("{'name': 's', 'assertions': []}"),
        "step 1 (\"s\"): unknown key `assertions`; did you mean `assert`?");
    ERR(TEST("{'name': 's', 'request': {}, 'request': {}}"),
        "step 1 (\"s\"): duplicate key `request`");
    ERR(TEST("{'name': 's'}"), "step 1 (\"s\"): `request` is required ({\"url\": \"...\"})");
    ERR(TEST("{'name': 7, 'request': {'url': 'http://h/'}}"),
        "step 1, name: must be a string, got a number");
    ERR(TEST(STEP(URL, "") ", {'name': 'second', 'request': {'method': 'GET'}}"),
        "step 2 (\"second\"), request: `url` is required");
    ERR(TEST("{'name': 'say \\'hi\\'', 'request': []}"),
        "step 1 (\"say \\\"hi\\\"\"), request: must be an object, got an array");
    ERR(WITH(", 'as': 'x'"), "step 1 (\"s\"), as: names the element of `each`; add `each` or "
                             "remove `as`");
    ERR(WITH(", 'each': '$.items', 'as': 'a.b'"),
        "step 1 (\"s\"), as: variable name `a.b` may only contain letters, digits, `_` and `-`");
    ERR(WITH(", 'stop_on_failure': 1"),
        "step 1 (\"s\"), stop_on_failure: must be true or false, got a number");
    ERR_PRE(WITH(", 'each': 'status =='"), "step 1 (\"s\"), each: column ");
    ERR_PRE(WITH(", 'if': '${env} =>  \\'prod\\''"), "step 1 (\"s\"), if: column 8: ");
}

static void test_request_errors(void **state)
{
    ERR(TEST(STEP("'url': 'example.com/x'", "")),
        "step 1 (\"s\"), request.url: must start with http:// or https:// (or a variable such "
        "as ${base}), got \"example.com/x\"");
    ERR(TEST(STEP("'url': 'http://h/a b'", "")),
        "step 1 (\"s\"), request.url: column 11: a space must be written %20");
    ERR(TEST(STEP("'url': ''", "")), "step 1 (\"s\"), request.url: must not be empty");
    ERR(TEST(STEP("'url': '${base/x'", "")),
        "step 1 (\"s\"), request.url: column 1: unclosed ${ (no matching })");
    ERR(REQ("'method': 'GET /x'"),
        "step 1 (\"s\"), request.method: `GET /x` is not an HTTP method (a single word such as "
        "GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS)");
    ERR(REQ("'mehtod': 'GET'"),
        "step 1 (\"s\"), request: unknown key `mehtod`; did you mean `method`?");
    ERR(REQ("'query': {}"), "step 1 (\"s\"), request: unknown key `query`; put query parameters "
                            "in `url` (\"${base}/search?q=${term}\")");
    ERR(REQ("'timeout': '5 secs'"),
        "step 1 (\"s\"), request.timeout: \"5 secs\" is not a duration; write milliseconds "
        "(5000) or a number with a unit: \"250ms\", \"5s\", \"1m\"");
    ERR(REQ("'timeout': 'nan'"),
        "step 1 (\"s\"), request.timeout: \"nan\" is not a duration; write milliseconds "
        "(5000) or a number with a unit: \"250ms\", \"5s\", \"1m\"");
    ERR(REQ("'timeout': '11m'"),
        "step 1 (\"s\"), request.timeout: must be between 1ms and 10m, got \"11m\"");
    ERR(REQ("'timeout': 0"), "step 1 (\"s\"), request.timeout: must be between 1ms and 10m, got 0");
    ERR(REQ("'timeout': 2.5"), "step 1 (\"s\"), request.timeout: must be a whole number, got 2.5");
    ERR(REQ("'timeout': true"), "step 1 (\"s\"), request.timeout: must be milliseconds (5000) or "
                                "a duration (\"5s\"), got a boolean");
    ERR(REQ("'follow_redirects': 11"),
        "step 1 (\"s\"), request.follow_redirects: must be between 0 and 10, got 11");
    ERR(REQ("'verify_tls': 'no'"),
        "step 1 (\"s\"), request.verify_tls: must be true or false, got a string");
    ERR(REQ("'json': {}, 'body': ''"),
        "step 1 (\"s\"), request: `json`, `form` and `body` are alternatives; give only one");
    ERR(REQ("'body': {'a': 1}"), "step 1 (\"s\"), request.body: must be a string (raw text); to "
                                 "send JSON use `json` instead");
    ERR(REQ("'json': {'user': {'name': 'x ${oops'}}"),
        "step 1 (\"s\"), request.json.user.name: column 3: unclosed ${ (no matching })");
    ERR(REQ("'json': [1, '${}'] "),
        "step 1 (\"s\"), request.json[1]: column 1: empty variable reference ${}");
    ERR(REQ("'json': {'${k': 1}"),
        "step 1 (\"s\"), request.json.${k: column 1: unclosed ${ (no matching })");
    ERR(REQ("'headers': {'X-A': 'Bearer ${tok'}"),
        "step 1 (\"s\"), request.headers.X-A: column 8: unclosed ${ (no matching })");
    ERR(REQ("'body': 'a ${}'"), "step 1 (\"s\"), request.body: column 3: empty variable "
                                "reference ${}");
    ERR(REQ("'headers': {'X-A': 'a\\r\\nEvil: 1'}"),
        "step 1 (\"s\"), request.headers.X-A: must not contain a line break");
    ERR(REQ("'headers': {'X A': 'v'}"),
        "step 1 (\"s\"), request.headers.X A: `X A` is not a valid header name (letters, digits "
        "and !#$%&'*+-.^_`|~ only)");
    ERR(REQ("'headers': {'Accept': 'a', 'accept': 'b'}"),
        "step 1 (\"s\"), request.headers.Accept: given twice (names are case-insensitive); to "
        "send a header several times give an array of values");
    ERR(REQ("'headers': {'X-A': null}"), "step 1 (\"s\"), request.headers.X-A: must be a string, "
                                         "number or boolean (or an array of them), got null");
    ERR(REQ("'headers': {'X-A': ['a', {}]}"),
        "step 1 (\"s\"), request.headers.X-A[2]: must be a string, number or boolean, got an "
        "object");
    ERR(REQ("'headers': {'X-A': []}"),
        "step 1 (\"s\"), request.headers.X-A: an array of values must not be empty");
    ERR(REQ("'headers': 'Accept: x'"), "step 1 (\"s\"), request.headers: must be an object of "
                                       "name: value, got a string");
    ERR(REQ("'form': {'a': 'b', 'a': 'c'}"),
        "step 1 (\"s\"), request.form.a: given twice; to send a field several times give an "
        "array of values");
}

static void test_check_errors(void **state)
{
    ERR(WITH(", 'expect': {'status': 99}"),
        "step 1 (\"s\"), expect.status: must be between 100 and 599, got 99");
    ERR(WITH(", 'expect': {'status': [200, '2xy']}"),
        "step 1 (\"s\"), expect.status[2]: \"2xy\" is not a status; write a number (100 to 599) "
        "or a class such as \"2xx\"");
    ERR(WITH(", 'expect': {'status': []}"),
        "step 1 (\"s\"), expect.status: must not be an empty list");
    ERR(WITH(", 'expect': {'status_code': 200}"),
        "step 1 (\"s\"), expect: unknown key `status_code`; did you mean `status`?");
    ERR(WITH(", 'expect': 200"),
        "step 1 (\"s\"), expect: must be an object such as {\"status\": 200}, got a number");
    ERR(WITH(", 'status': 200"),
        "step 1 (\"s\"): unknown key `status`; write `\"expect\": {\"status\": 200}`");

    ERR(WITH(", 'assert': 'status == 200'"), "step 1 (\"s\"), assert: must be an array of "
                                             "expressions ([\"status == 200\"]), got a string");
    ERR(WITH(", 'assert': ['status == 200', 'status => 200']"),
        "step 1 (\"s\"), assertion 2: column 8: unknown operator `=>`; expected one of == != < "
        "<= > >= contains matches in exists is not");
    ERR(WITH(", 'assert': [{'severity': 'warning'}]"),
        "step 1 (\"s\"), assertion 1: `that` is required (the expression, e.g. \"status == "
        "200\")");
    ERR(WITH(", 'assert': [{'that': 'status == 200', 'severity': 'warnign'}]"),
        "step 1 (\"s\"), assertion 1, severity: must be \"error\" or \"warning\", got "
        "\"warnign\"; did you mean \"warning\"?");
    ERR(WITH(", 'assert': [{'that': 'status == 200', 'stop': 'yes'}]"),
        "step 1 (\"s\"), assertion 1, stop: must be true or false, got a string");
    ERR(WITH(", 'assert': [{'that': 'status == 200', 'level': 'x'}]"),
        "step 1 (\"s\"), assertion 1: unknown key `level`; expected one of: that, severity, stop");
    ERR(WITH(", 'assert': [42]"),
        "step 1 (\"s\"), assertion 1: must be an expression string (\"status == 200\") or "
        "{\"that\": ..., \"severity\": \"warning\"}, got a number");
    ERR(WITH(", 'assert': ['']"), "step 1 (\"s\"), assertion 1: must not be empty");

    struct rp_buf b;
    rp_buf_init(&b, 0);
    (void)rp_buf_printf(&b,
                        "{'name': 't', 'steps': [{'name': 's', 'request': {" URL "}, 'assert': [");
    for (int i = 0; i < 501; i++)
        (void)rp_buf_printf(&b, "%s'status == 200'", i ? "," : "");
    (void)rp_buf_printf(&b, "]}]}");
    ERR(b.data, "step 1 (\"s\"), assert: more than 500 assertions");
    rp_buf_cleanup(&b);

    ERR(WITH(", 'capture': {'1tok': '$.a'}"),
        "step 1 (\"s\"), capture: variable name `1tok` must start with a letter or `_`");
    ERR(WITH(", 'capture': {'tok': {'secret': true}}"),
        "step 1 (\"s\"), capture.tok: `from` is required (what to capture, e.g. \"$.json.token\" "
        "or \"header.Location\")");
    ERR(WITH(", 'capture': {'tok': 5}"),
        "step 1 (\"s\"), capture.tok: must be a source such as \"$.json.token\" or {\"from\": "
        "..., \"secret\": true}, got a number");
    ERR(WITH(", 'capture': [{'name': 'tok'}]"),
        "step 1 (\"s\"), capture: must be an object of variable: source (\"token\": "
        "\"$.json.token\"), got an array");
    ERR_PRE(WITH(", 'capture': {'tok': 'status == 200'}"), "step 1 (\"s\"), capture.tok: column ");
    ERR_PRE(WITH(", 'capture': {'tok': {'from': '$.a[', 'secret': true}}"),
            "step 1 (\"s\"), capture.tok.from: ");

    ERR(WITH(", 'schema': 'object'"),
        "step 1 (\"s\"), schema: must be a JSON Schema (an object), got a string");
    ERR(WITH(", 'schema': {'type': 'object', 'properties': {'age': {'minimum': 'x'}}}"),
        "step 1 (\"s\"), schema: #/properties/age/minimum: must be a number");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_definition),
        cmocka_unit_test(test_minimal_and_bom),
        cmocka_unit_test(test_templates_and_bodies),
        cmocka_unit_test(test_bad_json),
        cmocka_unit_test(test_size_cap),
        cmocka_unit_test(test_top_level_errors),
        cmocka_unit_test(test_step_errors),
        cmocka_unit_test(test_request_errors),
        cmocka_unit_test(test_check_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
