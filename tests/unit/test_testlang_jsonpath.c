/* Unit tests for JSON paths (common/src/testlang/jsonpath.c): every selector, negative indexes,
 * wildcards, recursive descent, quoted names with spaces and quotes, unicode names, paths that do
 * not fit the document, early stop, and compile errors with their column. */
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

static const char *doc_json =
    "{\"user\": {\"name\": \"Ann\", \"age\": 12, \"tags\": [\"a\", \"b\", \"c\"]},"
    " \"items\": [{\"id\": 1, \"price\": 3.5}, {\"id\": 2, \"price\": 0}, {\"id\": 3}],"
    " \"odd key\": {\"it's\": 1, \"say \\\"x\\\"\": 2}, \"caf\\u00e9\": \"cr\\u00e8me\","
    " \"content-type\": \"json\", \"empty\": [], \"nested\": {\"id\": 9, \"deeper\": {\"id\": "
    "10}}}";

static int collect(const bson_iter_t *match, void *ud)
{
    struct rp_buf *b = ud;
    struct rp_value v;
    rp_value_from_iter(&v, match);
    char *s = rp_value_to_json(&v, 0);
    (void)rp_buf_printf(b, "%s%s", b->len ? "|" : "", s);
    free(s);
    rp_value_clear(&v);
    return 0;
}

/* Every match of `path` in doc_json joined by "|". */
static void expect(const char *path, const char *want, int multi)
{
    bson_t *doc;
    bson_iter_t root;
    struct rp_error err = {0};
    struct rp_jsonpath *p;
    struct rp_buf b;
    assert_int_equal(rp_json_parse(doc_json, strlen(doc_json), 0, &doc, &err), RP_OK);
    assert_int_equal(rp_json_root(doc, &root), RP_OK);
    if (rp_jsonpath_compile(path, &p, &err) != RP_OK)
        fail_msg("%s: %s", path, err.msg);
    rp_buf_init(&b, 0);
    (void)rp_buf_append(&b, "", 0);
    size_t n = rp_jsonpath_eval(p, &root, collect, &b);
    if (strcmp(b.data, want) != 0)
        fail_msg("%s: got %s, want %s", path, b.data, want);
    assert_int_equal(rp_jsonpath_is_multi(p), multi);
    size_t bars = 0;
    for (const char *c = want; *c; c++)
        bars += *c == '|';
    assert_int_equal(n, *want ? bars + 1 : 0);
    rp_buf_cleanup(&b);
    rp_jsonpath_free(p);
    bson_destroy(doc);
}

static void expect_error(const char *path, const char *msg)
{
    struct rp_error err = {0};
    struct rp_jsonpath *p = NULL;
    assert_int_equal(rp_jsonpath_compile(path, &p, &err), RP_EINVAL);
    assert_null(p);
    if (strcmp(err.msg, msg) != 0)
        fail_msg("%s: got \"%s\", want \"%s\"", path, err.msg, msg);
}

static void test_members_and_indexes(void **state)
{
    expect("$.user.name", "\"Ann\"", 0);
    expect("$.user.age", "12", 0);
    expect("$['user'][\"name\"]", "\"Ann\"", 0);
    expect("$.user.tags[0]", "\"a\"", 0);
    expect("$.user.tags[2]", "\"c\"", 0);
    expect("$.user.tags[ 1 ]", "\"b\"", 0);
    expect("$.items[1].price", "0", 0);
    expect("$.content-type", "\"json\"", 0);
}

static void test_root(void **state)
{
    bson_t *doc;
    bson_iter_t root;
    struct rp_jsonpath *p;
    assert_int_equal(rp_json_parse("[1,2]", 5, 0, &doc, NULL), RP_OK);
    assert_int_equal(rp_json_root(doc, &root), RP_OK);
    assert_int_equal(rp_jsonpath_compile("$", &p, NULL), RP_OK);
    struct rp_buf b;
    rp_buf_init(&b, 0);
    assert_int_equal(rp_jsonpath_eval(p, &root, collect, &b), 1);
    assert_string_equal(b.data, "[1,2]");
    rp_buf_cleanup(&b);
    rp_jsonpath_free(p);
    bson_destroy(doc);
}

static void test_negative_indexes(void **state)
{
    expect("$.user.tags[-1]", "\"c\"", 0);
    expect("$.user.tags[-3]", "\"a\"", 0);
    expect("$.user.tags[-4]", "", 0);
    expect("$.user.tags[3]", "", 0);
    expect("$.empty[-1]", "", 0);
}

static void test_wildcards(void **state)
{
    expect("$.user.tags[*]", "\"a\"|\"b\"|\"c\"", 1);
    expect("$.items[*].id", "1|2|3", 1);
    expect("$.items.*.price", "3.5|0", 1);
    expect("$.user.*", "\"Ann\"|12|[\"a\",\"b\",\"c\"]", 1);
    expect("$.empty[*]", "", 1);
    expect("$.user.name[*]", "", 1);
}

static void test_recursive_descent(void **state)
{
    expect("$..id", "1|2|3|9|10", 1);
    expect("$.nested..id", "9|10", 1);
    expect("$..deeper.id", "10", 1);
    expect("$..tags[-1]", "\"c\"", 1);
    expect("$..[\"it's\"]", "1", 1);
    expect("$..nope", "", 1);
    expect("$.nested..*", "9|{\"id\":10}|10", 1);
}

static void test_quoted_and_unicode_names(void **state)
{
    expect("$[\"odd key\"][\"it's\"]", "1", 0);
    expect("$['odd key']['it\\'s']", "1", 0);
    expect("$['odd key']['say \"x\"']", "2", 0);
    expect("$[\"odd key\"][\"say \\\"x\\\"\"]", "2", 0);
    expect("$.caf\xc3\xa9", "\"cr\xc3\xa8me\"", 0);
    expect("$[\"caf\xc3\xa9\"]", "\"cr\xc3\xa8me\"", 0);
}

static void test_no_fit(void **state)
{
    expect("$.user.name.first", "", 0);
    expect("$.user[0]", "", 0);
    expect("$.items.id", "", 0);
    expect("$.missing", "", 0);
    expect("$.user.tags.length", "", 0);
}

static int stop_after_first(const bson_iter_t *match, void *ud)
{
    (*(int *)ud)++;
    return 1;
}

static void test_early_stop(void **state)
{
    bson_t *doc;
    bson_iter_t root;
    struct rp_jsonpath *p;
    int calls = 0;
    assert_int_equal(rp_json_parse(doc_json, strlen(doc_json), 0, &doc, NULL), RP_OK);
    assert_int_equal(rp_json_root(doc, &root), RP_OK);
    assert_int_equal(rp_jsonpath_compile("$..id", &p, NULL), RP_OK);
    assert_int_equal(rp_jsonpath_eval(p, &root, stop_after_first, &calls), 1);
    assert_int_equal(calls, 1);
    assert_int_equal(rp_jsonpath_eval(p, &root, NULL, NULL), 5);
    rp_jsonpath_free(p);
    bson_destroy(doc);
    rp_jsonpath_free(NULL);
}

static void test_compile_errors(void **state)
{
    expect_error("user.name", "column 1: a JSON path starts with `$`");
    expect_error("", "column 1: a JSON path starts with `$`");
    expect_error("$.", "column 3: expected a member name or `*` after `.`");
    expect_error("$.a..", "column 6: expected a member name or `*` after `.`");
    expect_error("$.a[", "column 5: expected `*`, an index or a quoted name after `[`");
    expect_error("$.a[1", "column 6: expected `]`");
    expect_error("$.a['x", "column 4: unterminated quoted name; expected a closing quote");
    expect_error("$.a[x]", "column 5: expected `*`, an index or a quoted name after `[`");
    expect_error("$.a[-]", "column 5: expected an index after `-`");
    expect_error("$.a[99999999999]", "column 5: index out of range");
    expect_error("$.a b", "column 4: unexpected character; expected `.`, `..` or `[`");
    expect_error("$a", "column 2: unexpected character; expected `.`, `..` or `[`");
    expect_error("$.a[1,2]", "column 6: expected `]`");

    char long_path[1024] = "$";
    for (int i = 0; i < 300; i++)
        strcat(long_path, "[0]");
    expect_error(long_path, "column 770: path too long (at most 256 steps)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_root),
        cmocka_unit_test(test_negative_indexes),
        cmocka_unit_test(test_wildcards),
        cmocka_unit_test(test_recursive_descent),
        cmocka_unit_test(test_quoted_and_unicode_names),
        cmocka_unit_test(test_no_fit),
        cmocka_unit_test(test_early_stop),
        cmocka_unit_test(test_compile_errors),
        cmocka_unit_test(test_members_and_indexes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
