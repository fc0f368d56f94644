/* Unit tests for JSON Schema validation (common/src/testlang/schema_compile.c, schema_check.c):
 * every supported keyword passes a good value and fails a bad one with the exact message a user
 * would read, malformed schemas are refused with their location, $ref cycles and costly schemas
 * stop cleanly, and the format checks shared with the expression language accept and refuse what
 * they document. */
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

static struct rp_schema *compile(const char *schema)
{
    bson_t *doc;
    struct rp_schema *s = NULL;
    struct rp_error err = {0};
    if (rp_json_parse(schema, strlen(schema), 0, &doc, &err) != RP_OK)
        fail_msg("schema is not JSON: %s: %s", schema, err.msg);
    if (rp_schema_compile(doc, &s, &err) != RP_OK)
        fail_msg("schema did not compile: %s: %s", schema, err.msg);
    bson_destroy(doc);
    return s;
}

/* Validate `instance` against `schema`; returns the check (caller clears it). */
static struct rp_check run(const char *schema, const char *instance)
{
    struct rp_schema *s = compile(schema);
    bson_t *doc;
    bson_iter_t it;
    struct rp_error err = {0};
    struct rp_check c;
    if (rp_json_parse(instance, strlen(instance), 0, &doc, &err) != RP_OK)
        fail_msg("instance is not JSON: %s: %s", instance, err.msg);
    assert_int_equal(rp_json_root(doc, &it), RP_OK);
    rp_schema_check(s, &it, &c);
    bson_destroy(doc);
    rp_schema_free(s);
    return c;
}

static void pass(const char *schema, const char *instance)
{
    struct rp_check c = run(schema, instance);
    if (!c.passed)
        fail_msg("%s should accept %s: %s", schema, instance, c.message);
    assert_string_equal(c.message, "matches the schema");
    rp_check_clear(&c);
}

static void fail_with(const char *schema, const char *instance, const char *message)
{
    struct rp_check c = run(schema, instance);
    if (c.passed)
        fail_msg("%s should refuse %s", schema, instance);
    assert_non_null(c.message);
    if (strcmp(c.message, message) != 0)
        fail_msg("%s on %s:\n  got      %s\n  expected %s", schema, instance, c.message, message);
    rp_check_clear(&c);
}

static void bad_schema(const char *schema, const char *message)
{
    bson_t *doc;
    struct rp_schema *s = NULL;
    struct rp_error err = {0};
    assert_int_equal(rp_json_parse(schema, strlen(schema), 0, &doc, &err), RP_OK);
    int rc = rp_schema_compile(doc, &s, &err);
    bson_destroy(doc);
    if (rc == RP_OK) {
        rp_schema_free(s);
        fail_msg("%s should not compile", schema);
    }
    assert_int_equal(rc, RP_EINVAL);
    if (strcmp(err.msg, message) != 0)
        fail_msg("%s:\n  got      %s\n  expected %s", schema, err.msg, message);
}

static void test_type(void **state)
{
    pass("{\"type\":\"string\"}", "\"x\"");
    pass("{\"type\":\"number\"}", "2.5");
    pass("{\"type\":\"number\"}", "3");
    pass("{\"type\":\"integer\"}", "3");
    pass("{\"type\":\"integer\"}", "3.0");
    pass("{\"type\":\"boolean\"}", "false");
    pass("{\"type\":\"null\"}", "null");
    pass("{\"type\":\"array\"}", "[]");
    pass("{\"type\":\"object\"}", "{}");
    pass("{\"type\":[\"string\",\"null\"]}", "null");
    fail_with("{\"type\":\"string\"}", "12", "$: expected string, got number");
    fail_with("{\"type\":\"integer\"}", "2.5", "$: expected integer, got number");
    fail_with("{\"type\":\"object\"}", "[1]", "$: expected object, got array");
    fail_with("{\"type\":[\"string\",\"null\"]}", "true",
              "$: expected null or string, got boolean");
    fail_with("{\"type\":[\"string\",\"null\",\"array\"]}", "1",
              "$: expected null, string or array, got number");
    fail_with("{\"properties\":{\"tags\":{\"items\":{\"type\":\"string\"}}}}",
              "{\"tags\":[\"a\",\"b\",3]}", "$.tags[2]: expected string, got number");
}

static void test_enum_const(void **state)
{
    pass("{\"enum\":[\"a\",1,null,{\"k\":[1,2]}]}", "\"a\"");
    pass("{\"enum\":[\"a\",1,null,{\"k\":[1,2]}]}", "1.0");
    pass("{\"enum\":[\"a\",1,null,{\"k\":[1,2]}]}", "{\"k\":[1,2]}");
    fail_with("{\"enum\":[\"a\",\"b\"]}", "\"c\"", "$: \"c\" is not one of [\"a\",\"b\"] (enum)");
    fail_with("{\"enum\":[{\"k\":[1,2]}]}", "{\"k\":[2,1]}",
              "$: {\"k\":[2,1]} is not one of [{\"k\":[1,2]}] (enum)");
    pass("{\"const\":{\"a\":1,\"b\":[true]}}", "{\"b\":[true],\"a\":1}");
    pass("{\"const\":null}", "null");
    fail_with("{\"const\":4}", "3", "$: expected 4 (const), got 3");
    fail_with("{\"const\":{\"a\":1}}", "{\"a\":1,\"b\":2}",
              "$: expected {\"a\":1} (const), got {\"a\":1,\"b\":2}");
}

static void test_objects(void **state)
{
    const char *user = "{\"type\":\"object\",\"required\":[\"id\",\"user\"],"
                       "\"properties\":{\"id\":{\"type\":\"integer\"},"
                       "\"user\":{\"properties\":{\"age\":{\"minimum\":18}}}}}";
    pass(user, "{\"id\":1,\"user\":{\"age\":30}}");
    pass(user, "{\"id\":1,\"user\":{},\"other\":true}");
    fail_with(user, "{\"user\":{}}", "$: missing required property \"id\"");
    fail_with(user, "{\"id\":1,\"user\":{\"age\":12}}", "$.user.age: 12 is less than minimum 18");
    fail_with(user, "{\"id\":\"1\",\"user\":{}}", "$.id: expected integer, got string");
    /* member names that are not identifiers are quoted in the location */
    fail_with("{\"properties\":{\"first name\":{\"type\":\"string\"}}}", "{\"first name\":1}",
              "$[\"first name\"]: expected string, got number");
    /* additionalProperties */
    pass("{\"properties\":{\"a\":{}},\"additionalProperties\":false}", "{\"a\":1}");
    fail_with("{\"properties\":{\"a\":{}},\"additionalProperties\":false}", "{\"a\":1,\"b\":2}",
              "$: property \"b\" is not allowed (additionalProperties)");
    pass("{\"additionalProperties\":{\"type\":\"number\"}}", "{\"x\":1,\"y\":2}");
    fail_with("{\"properties\":{\"s\":{}},\"additionalProperties\":{\"type\":\"number\"}}",
              "{\"s\":\"ok\",\"x\":1,\"y\":\"2\"}", "$.y: expected number, got string");
    pass("{\"additionalProperties\":true}", "{\"x\":1}");
    /* object keywords do not apply to other types */
    pass("{\"required\":[\"a\"],\"properties\":{\"a\":false}}", "\"not an object\"");
}

static void test_arrays(void **state)
{
    pass("{\"items\":{\"type\":\"integer\"},\"minItems\":1,\"maxItems\":3}", "[1,2,3]");
    fail_with("{\"minItems\":2}", "[1]", "$: 1 items, fewer than minItems 2");
    fail_with("{\"maxItems\":2}", "[1,2,3]", "$: 3 items, more than maxItems 2");
    pass("{\"uniqueItems\":true}", "[1,\"1\",[1],{\"a\":1},{\"a\":2},true,null]");
    pass("{\"uniqueItems\":false}", "[1,1]");
    fail_with("{\"uniqueItems\":true}", "[1,2,1.0]", "$: items 0 and 2 are equal (uniqueItems)");
    fail_with("{\"uniqueItems\":true}", "[{\"a\":1,\"b\":2},3,{\"b\":2,\"a\":1}]",
              "$: items 0 and 2 are equal (uniqueItems)");
    fail_with("{\"uniqueItems\":true}", "[5,4,4,5]", "$: items 1 and 2 are equal (uniqueItems)");
    fail_with("{\"items\":{\"properties\":{\"n\":{\"type\":\"string\"}}}}",
              "[{\"n\":\"a\"},{\"n\":2}]", "$[1].n: expected string, got number");
    pass("{\"items\":false}", "[]");
    fail_with("{\"items\":false}", "[1]", "$[0]: no value is allowed here (schema false)");
}

static void test_strings(void **state)
{
    pass("{\"minLength\":2,\"maxLength\":3}", "\"ab\"");
    /* lengths count characters, not bytes */
    pass("{\"maxLength\":2}", "\"\xc3\xa9\xc3\xa9\"");
    fail_with("{\"minLength\":3}", "\"ab\"", "$: length 2 is less than minLength 3");
    fail_with("{\"maxLength\":1}", "\"\xc3\xa9\xc3\xa9\"", "$: length 2 is more than maxLength 1");
    pass("{\"pattern\":\"^[0-9]{3}$\"}", "\"123\"");
    pass("{\"pattern\":\"b\"}", "\"abc\""); /* not anchored, as the standard says */
    fail_with("{\"pattern\":\"^[0-9]{3}$\"}", "\"12a\"",
              "$: \"12a\" does not match pattern ^[0-9]{3}$");
    fail_with("{\"pattern\":\"(a+)+$\"}", "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!\"",
              "$: pattern (a+)+$ gave up (match limit reached)");
    pass("{\"format\":\"email\"}", "\"ann@example.com\"");
    fail_with("{\"format\":\"email\"}", "\"ann@localhost\"",
              "$: \"ann@localhost\" is not a valid email (format)");
    pass("{\"format\":\"uri\"}", "\"https://example.com/a?b=1#c\"");
    fail_with("{\"format\":\"uri\"}", "\"example.com\"",
              "$: \"example.com\" is not a valid uri (format)");
    pass("{\"format\":\"uuid\"}", "\"123e4567-e89b-12d3-a456-426614174000\"");
    fail_with("{\"format\":\"uuid\"}", "\"123e4567e89b12d3a456426614174000\"",
              "$: \"123e4567e89b12d3a456426614174000\" is not a valid uuid (format)");
    pass("{\"format\":\"date-time\"}", "\"2024-02-29T12:00:00.5+01:00\"");
    fail_with("{\"format\":\"date-time\"}", "\"2023-02-29T12:00:00Z\"",
              "$: \"2023-02-29T12:00:00Z\" is not a valid date-time (format)");
    pass("{\"format\":\"hostname\"}", "\"!!\"");           /* unknown formats are annotations */
    pass("{\"format\":\"email\",\"minLength\":50}", "42"); /* string keywords skip numbers */
}

static void test_numbers(void **state)
{
    pass("{\"minimum\":18,\"maximum\":99}", "18");
    pass("{\"minimum\":18,\"maximum\":99}", "99");
    fail_with("{\"minimum\":18}", "12", "$: 12 is less than minimum 18");
    fail_with("{\"maximum\":1.5}", "2", "$: 2 is greater than maximum 1.5");
    pass("{\"exclusiveMinimum\":0}", "0.001");
    fail_with("{\"exclusiveMinimum\":0}", "0", "$: 0 is not greater than exclusiveMinimum 0");
    pass("{\"exclusiveMaximum\":10}", "9.99");
    fail_with("{\"exclusiveMaximum\":10}", "10", "$: 10 is not less than exclusiveMaximum 10");
    /* draft-04 boolean form */
    fail_with("{\"minimum\":5,\"exclusiveMinimum\":true}", "5",
              "$: 5 is not greater than exclusiveMinimum 5");
    pass("{\"multipleOf\":0.1}", "0.3");
    pass("{\"multipleOf\":3}", "-9");
    fail_with("{\"multipleOf\":2}", "7", "$: 7 is not a multiple of 2");
    pass("{\"minimum\":100}", "\"5\""); /* number keywords skip strings */
}

static void test_combinators(void **state)
{
    pass("{\"allOf\":[{\"type\":\"integer\"},{\"minimum\":1}]}", "2");
    fail_with("{\"allOf\":[{\"type\":\"integer\"},{\"minimum\":1}]}", "0",
              "$: 0 is less than minimum 1");
    pass("{\"anyOf\":[{\"type\":\"string\"},{\"minimum\":1}]}", "5");
    fail_with("{\"anyOf\":[{\"type\":\"string\"},{\"minimum\":1}]}", "0",
              "$: matches none of the 2 schemas in anyOf (first: $: expected string, got number)");
    pass("{\"oneOf\":[{\"type\":\"integer\"},{\"type\":\"string\"}]}", "\"x\"");
    fail_with("{\"oneOf\":[{\"type\":\"integer\"},{\"minimum\":0}]}", "3",
              "$: matches schemas 0 and 1 in oneOf, expected exactly one");
    fail_with("{\"oneOf\":[{\"type\":\"integer\"},{\"type\":\"string\"}]}", "null",
              "$: matches none of the 2 schemas in oneOf (first: $: expected integer, got null)");
    pass("{\"not\":{\"type\":\"null\"}}", "1");
    fail_with("{\"not\":{\"type\":\"null\"}}", "null", "$: must not match the schema in not");
    /* the location inside a combinator is the instance's */
    fail_with("{\"properties\":{\"a\":{\"anyOf\":[{\"items\":{\"type\":\"string\"}}]}}}",
              "{\"a\":[\"x\",1]}",
              "$.a: matches none of the 1 schemas in anyOf (first: $.a[1]: expected string, got "
              "number)");
    pass("true", "{\"anything\":1}");
    fail_with("false", "1", "$: no value is allowed here (schema false)");
}

static void test_refs(void **state)
{
    const char *s = "{\"$defs\":{\"pos\":{\"type\":\"integer\",\"minimum\":1}},"
                    "\"definitions\":{\"name\":{\"type\":\"string\"}},"
                    "\"properties\":{\"n\":{\"$ref\":\"#/$defs/pos\"},"
                    "\"s\":{\"$ref\":\"#/definitions/name\"}}}";
    pass(s, "{\"n\":3,\"s\":\"x\"}");
    fail_with(s, "{\"n\":0}", "$.n: 0 is less than minimum 1");
    fail_with(s, "{\"s\":1}", "$.s: expected string, got number");
    /* a recursive schema: a tree of nodes */
    const char *tree = "{\"$defs\":{\"node\":{\"type\":\"object\",\"required\":[\"v\"],"
                       "\"properties\":{\"kids\":{\"items\":{\"$ref\":\"#/$defs/node\"}}}}},"
                       "\"$ref\":\"#/$defs/node\"}";
    pass(tree, "{\"v\":1,\"kids\":[{\"v\":2,\"kids\":[{\"v\":3}]}]}");
    fail_with(tree, "{\"v\":1,\"kids\":[{\"v\":2,\"kids\":[{}]}]}",
              "$.kids[0].kids[0]: missing required property \"v\"");
    pass("{\"properties\":{\"next\":{\"$ref\":\"#\"}},\"type\":\"object\"}",
         "{\"next\":{\"next\":{}}}");
    pass("{\"$defs\":{\"a/b~c\":{\"type\":\"null\"}},\"$ref\":\"#/$defs/a~1b~0c\"}", "null");
    /* a cycle that never descends into the instance stops at the depth limit */
    fail_with("{\"$defs\":{\"a\":{\"$ref\":\"#/$defs/b\"},\"b\":{\"$ref\":\"#/$defs/a\"}},"
              "\"$ref\":\"#/$defs/a\"}",
              "1", "$: schema nested deeper than 200 while validating (a $ref cycle?)");
    fail_with("{\"anyOf\":[{\"$ref\":\"#\"}]}", "1",
              "$: schema nested deeper than 200 while validating (a $ref cycle?)");
    /* combinators that multiply the work stop at the step budget */
    char big[4096];
    int n = snprintf(big, sizeof(big), "{\"$defs\":{");
    for (int i = 0; i < 30; i++)
        n += snprintf(
            big + n, sizeof(big) - (size_t)n,
            "%s\"d%d\":{\"allOf\":[{\"$ref\":\"#/$defs/d%d\"},{\"$ref\":\"#/$defs/d%d\"}]}",
            i ? "," : "", i, i + 1, i + 1);
    snprintf(big + n, sizeof(big) - (size_t)n, ",\"d30\":true},\"$ref\":\"#/$defs/d0\"}");
    fail_with(big, "1", "$: validation stopped after 1000000 steps (schema too costly)");
}

static void test_malformed_schemas(void **state)
{
    bad_schema("[1]", "schema #: a schema must be an object or a boolean, got array");
    bad_schema("{\"properties\":{\"age\":{\"minimum\":\"18\"}}}",
               "schema #/properties/age/minimum: must be a number");
    bad_schema("{\"type\":\"text\"}", "schema #/type: unknown type \"text\" (expected null, "
                                      "boolean, integer, number, string, array or object)");
    bad_schema("{\"type\":[\"string\",1]}",
               "schema #/type: must be a type name or an array of them");
    bad_schema("{\"required\":\"id\"}", "schema #/required: must be an array of property names");
    bad_schema("{\"pattern\":\"(\"}",
               "schema #/pattern: invalid regular expression at offset 1: missing closing "
               "parenthesis");
    bad_schema("{\"minLength\":-1}", "schema #/minLength: must be a non-negative integer");
    bad_schema("{\"maxItems\":1.5}", "schema #/maxItems: must be a non-negative integer");
    bad_schema("{\"multipleOf\":0}", "schema #/multipleOf: must be a number greater than 0");
    bad_schema("{\"anyOf\":[]}", "schema #/anyOf: must be a non-empty array of schemas");
    bad_schema("{\"allOf\":[{\"type\":1}]}",
               "schema #/allOf/0/type: must be a type name or an array of them");
    bad_schema("{\"items\":[{}]}",
               "schema #/items: the array (tuple) form is not supported; give one schema");
    bad_schema("{\"enum\":1}", "schema #/enum: must be an array");
    bad_schema("{\"uniqueItems\":1}", "schema #/uniqueItems: must be true or false");
    bad_schema("{\"properties\":{\"a\":{\"$ref\":\"#/$defs/missing\"}}}",
               "schema #/properties/a/$ref: cannot resolve \"#/$defs/missing\" (supported: \"#\", "
               "\"#/$defs/NAME\" and \"#/definitions/NAME\" of this schema)");
    bad_schema("{\"$ref\":\"http://example.com/s.json\"}",
               "schema #/$ref: cannot resolve \"http://example.com/s.json\" (supported: \"#\", "
               "\"#/$defs/NAME\" and \"#/definitions/NAME\" of this schema)");
    bad_schema("{\"additionalProperties\":{},\"additionalProperties\":false}",
               "schema #/additionalProperties: the keyword appears twice");
    bad_schema("{\"$defs\":{},\"pattern\":\"a\",\"pattern\":\"b\"}",
               "schema #/pattern: the keyword appears twice");
    /* unknown keywords are ignored */
    pass("{\"x-note\":{\"anything\":[1]},\"title\":\"t\"}", "1");
}

static void test_actual_and_limits(void **state)
{
    struct rp_check c =
        run("{\"properties\":{\"u\":{\"type\":\"string\"}}}", "{\"u\":{\"a\":[1]}}");
    assert_false(c.passed);
    assert_string_equal(c.actual, "{\"a\":[1]}");
    assert_string_equal(c.message, "$.u: expected string, got object");
    rp_check_clear(&c);
    /* a long value is cut in the message */
    char inst[400];
    memset(inst, 'x', sizeof(inst));
    inst[0] = '"';
    inst[sizeof(inst) - 2] = '"';
    inst[sizeof(inst) - 1] = '\0';
    c = run("{\"pattern\":\"^y\"}", inst);
    assert_false(c.passed);
    assert_true(strlen(c.message) < 120);
    assert_non_null(strstr(c.message, "...\" does not match pattern ^y"));
    rp_check_clear(&c);
}

/* The step budget grows with the body: a big array checked by a few schemas each still passes. */
static void test_big_instance(void **state)
{
    size_t n = 300000;
    char *json = rp_xmalloc(n * 2 + 2), *w = json;
    *w++ = '[';
    for (size_t i = 0; i < n; i++) {
        *w++ = '1';
        *w++ = i + 1 < n ? ',' : ']';
    }
    *w = '\0';
    pass("{\"items\":{\"allOf\":[{\"type\":\"integer\"},{\"minimum\":0},{\"not\":{\"const\":2}}]}}",
         json);
    free(json);
}

static void test_formats(void **state)
{
    /* email */
    assert_true(rp_is_email("a.b+tag@sub.example.co"));
    assert_true(rp_is_email("x@a-b.io"));
    assert_false(rp_is_email("no-at.example.com"));
    assert_false(rp_is_email("a..b@example.com"));
    assert_false(rp_is_email(".a@example.com"));
    assert_false(rp_is_email("a@example"));
    assert_false(rp_is_email("a@-x.com"));
    assert_false(rp_is_email("a@1.2"));
    assert_false(rp_is_email("a b@example.com"));
    assert_false(rp_is_email("a@b@example.com"));
    assert_false(rp_is_email(""));
    /* url */
    assert_true(rp_is_url("http://example.com"));
    assert_true(rp_is_url("https://user:pw@api.example.com:8443/v1/x?y=1#z"));
    assert_true(rp_is_url("ftp://files.example.com/a.txt"));
    assert_true(rp_is_url("http://[::1]:8080/"));
    assert_true(rp_is_url("http://localhost"));
    assert_false(rp_is_url("example.com"));
    assert_false(rp_is_url("http://"));
    assert_false(rp_is_url("http://exa mple.com"));
    assert_false(rp_is_url("http://example.com:99999"));
    assert_false(rp_is_url("http://-bad.com"));
    assert_false(rp_is_url("1http://example.com"));
    assert_false(rp_is_url("mailto:a@b.com"));
    /* uuid */
    assert_true(rp_is_uuid("123e4567-e89b-12d3-a456-426614174000"));
    assert_true(rp_is_uuid("00000000-0000-0000-0000-000000000000"));
    assert_true(rp_is_uuid("ABCDEFAB-CDEF-ABCD-EFAB-CDEFABCDEFAB"));
    assert_false(rp_is_uuid("123e4567-e89b-12d3-a456-42661417400"));
    assert_false(rp_is_uuid("123e4567-e89b-12d3-a456-4266141740000"));
    assert_false(rp_is_uuid("123e4567-e89b-12d3-a456_426614174000"));
    assert_false(rp_is_uuid("g23e4567-e89b-12d3-a456-426614174000"));
    assert_false(rp_is_uuid(""));
    /* date-time */
    assert_true(rp_is_date_time("2024-01-31T23:59:59Z"));
    assert_true(rp_is_date_time("2024-01-31t23:59:60.123456z"));
    assert_true(rp_is_date_time("2000-02-29T00:00:00-05:30"));
    assert_false(rp_is_date_time("1900-02-29T00:00:00Z"));
    assert_false(rp_is_date_time("2024-04-31T00:00:00Z"));
    assert_false(rp_is_date_time("2024-01-31 23:59:59Z"));
    assert_false(rp_is_date_time("2024-01-31T24:00:00Z"));
    assert_false(rp_is_date_time("2024-01-31T23:59:59"));
    assert_false(rp_is_date_time("2024-01-31T23:59:59.Z"));
    assert_false(rp_is_date_time("2024-01-31T23:59:59+0100"));
    assert_false(rp_is_date_time("2024-01-31"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type),
        cmocka_unit_test(test_enum_const),
        cmocka_unit_test(test_objects),
        cmocka_unit_test(test_arrays),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_combinators),
        cmocka_unit_test(test_refs),
        cmocka_unit_test(test_malformed_schemas),
        cmocka_unit_test(test_actual_and_limits),
        cmocka_unit_test(test_big_instance),
        cmocka_unit_test(test_formats),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
