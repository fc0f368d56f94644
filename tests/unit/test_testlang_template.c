/* Unit tests for ${var} templating and redaction (common/src/testlang/template.c): literal text and
 * escapes, every value type rendered, references into JSON values, errors that name the variable or
 * the column, the syntax check used at definition time, the output cap, and the redacted twin:
 * secrets inside text, repeated, overlapping, hidden in non-secret values or in the template. */
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

static int setup(void **state)
{
    static const char json[] =
        "{\"host\": \"api.example.com\", \"n\": 2.5, \"i\": 42, \"big\": 1e21, \"b\": true,"
        " \"z\": null, \"o\": {\"a\": 1, \"s\": \"x\"}, \"arr\": [1, \"x\"],"
        " \"items\": [{\"name\": \"pen\"}], \"k\": {\"}\": \"brace\"},"
        " \"token\": {\"value\": \"t0k3n\", \"secret\": true},"
        " \"echo\": \"got t0k3n back\", \"empty\": \"\","
        " \"dollar\": \"${token}\"}";
    bson_t *doc;
    bson_iter_t it;
    struct rp_error err = {0};
    struct rp_vars *v = rp_vars_new();
    assert_int_equal(rp_json_parse(json, strlen(json), 0, &doc, &err), RP_OK);
    assert_int_equal(rp_json_root(doc, &it), RP_OK);
    assert_int_equal(rp_vars_load_object(v, RP_LAYER_ENVIRONMENT, &it, &err), RP_OK);
    bson_destroy(doc);
    *state = v;
    return 0;
}

static int teardown(void **state)
{
    rp_vars_free(*state);
    return 0;
}

/* Render and compare both outputs (`red` NULL: same as `out`). */
static void render(struct rp_vars *v, const char *tmpl, const char *out, const char *red)
{
    char *o = NULL, *r = NULL;
    struct rp_error err = {0};
    if (rp_template_render(tmpl, v, 0, &o, &r, &err) != RP_OK)
        fail_msg("%s: %s", tmpl, err.msg);
    assert_string_equal(o, out);
    assert_string_equal(r, red ? red : out);
    assert_int_equal(rp_template_check(tmpl, &err), RP_OK);
    free(o);
    free(r);
    /* without a redacted twin */
    assert_int_equal(rp_template_render(tmpl, v, 0, &o, NULL, &err), RP_OK);
    assert_string_equal(o, out);
    free(o);
}

static void render_error(struct rp_vars *v, const char *tmpl, int code, const char *msg)
{
    char *o = (char *)"untouched", *r = (char *)"untouched";
    struct rp_error err = {0};
    int rc = rp_template_render(tmpl, v, 0, &o, &r, &err);
    if (rc == RP_OK)
        fail_msg("%s rendered as %s", tmpl, o);
    assert_int_equal(rc, code);
    assert_string_equal(err.msg, msg);
    assert_string_equal(o, "untouched");
    assert_string_equal(r, "untouched");
}

static void test_text_and_escapes(void **state)
{
    struct rp_vars *v = *state;
    render(v, "", "", NULL);
    render(v, "plain text", "plain text", NULL);
    render(v, "https://${host}/v1", "https://api.example.com/v1", NULL);
    render(v, "${ host }", "api.example.com", NULL);
    render(v, "$${host}", "${host}", NULL);
    /* read left to right: `$` then the escape `$${` */
    render(v, "$$${host}", "$${host}", NULL);
    render(v, "cost: $5, $$ and $", "cost: $5, $$ and $", NULL);
    render(v, "{}", "{}", NULL);
    render(v, "${host}${host}", "api.example.comapi.example.com", NULL);
    /* a value that looks like a template is not rendered again */
    render(v, "${dollar}", "${token}", NULL);
    render(v, "[${empty}]", "[]", NULL);
}

static void test_value_types(void **state)
{
    struct rp_vars *v = *state;
    render(v, "${n}|${i}|${b}|${z}", "2.5|42|true|null", NULL);
    render(v, "${big}", "1e+21", NULL);
    render(v, "${o}", "{\"a\":1,\"s\":\"x\"}", NULL);
    render(v, "${arr}", "[1,\"x\"]", NULL);
    render(v, "${o.a}-${o.s}-${arr[1]}-${items[0].name}", "1-x-x-pen", NULL);
    render(v, "${k[\"}\"]}", "brace", NULL);
    render(v, "${arr[-1]}", "x", NULL);
}

static void test_errors(void **state)
{
    struct rp_vars *v = *state;
    render_error(v, "Bearer ${nope}", RP_EINVAL, "column 8: unknown variable ${nope}");
    render_error(v, "${o.missing}", RP_EINVAL, "column 1: unknown variable ${o.missing}");
    render_error(v, "ab${host", RP_EINVAL, "column 3: unclosed ${ (no matching })");
    render_error(v, "${k[\"}]", RP_EINVAL, "column 1: unclosed ${ (no matching })");
    render_error(v, "x ${}", RP_EINVAL, "column 3: empty variable reference ${}");
    render_error(v, "${ }", RP_EINVAL, "column 1: empty variable reference ${}");
    render_error(v, "${1abc}", RP_EINVAL,
                 "column 1: invalid variable reference ${1abc} (expected a name like user_id, "
                 "user.id or items[0].name)");
    render_error(v, "${a b}", RP_EINVAL,
                 "column 1: invalid variable reference ${a b} (expected a name like user_id, "
                 "user.id or items[0].name)");
    render_error(NULL, "${host}", RP_EINVAL, "column 1: unknown variable ${host}");
    /* a long name is cut in the message */
    char tmpl[300] = "${";
    memset(tmpl + 2, 'a', 200);
    strcpy(tmpl + 202, "}");
    char *o = NULL;
    struct rp_error err = {0};
    assert_int_equal(rp_template_render(tmpl, v, 0, &o, NULL, &err), RP_EINVAL);
    assert_non_null(strstr(err.msg, "aaa...}"));
    assert_true(strlen(err.msg) < 120);
}

static void test_check(void **state)
{
    struct rp_error err = {0};
    assert_int_equal(rp_template_check("${anything} ${a.b[0][\"c\"]} $${x} $", &err), RP_OK);
    assert_int_equal(rp_template_check("x${y", &err), RP_EINVAL);
    assert_string_equal(err.msg, "column 2: unclosed ${ (no matching })");
    assert_int_equal(rp_template_check("${a[x]}", &err), RP_EINVAL);
    assert_int_equal(rp_template_check("${}", &err), RP_EINVAL);
    assert_string_equal(err.msg, "column 1: empty variable reference ${}");
}

static void test_cap(void **state)
{
    struct rp_vars *v = *state;
    char *o = NULL, *r = NULL;
    struct rp_error err = {0};
    assert_int_equal(rp_template_render("0123456789", v, 10, &o, &r, &err), RP_OK);
    assert_string_equal(o, "0123456789");
    free(o);
    free(r);
    assert_int_equal(rp_template_render("01234567890", v, 10, &o, &r, &err), RP_ENOMEM);
    assert_string_equal(err.msg, "rendered text is over the limit of 10 bytes");
    assert_int_equal(rp_template_render("x${host}", v, 10, &o, &r, &err), RP_ENOMEM);
    assert_int_equal(rp_template_render("${i}$${", v, 4, &o, &r, &err), RP_OK);
    assert_string_equal(o, "42${");
    free(o);
    free(r);
    assert_int_equal(rp_template_render("${i}$${", v, 3, &o, &r, &err), RP_ENOMEM);
    assert_int_equal(rp_template_render("${i}$", v, 2, &o, &r, &err), RP_ENOMEM);
}

static void test_redaction(void **state)
{
    struct rp_vars *v = *state;
    /* a secret variable, once and twice */
    render(v, "Bearer ${token}", "Bearer t0k3n", "Bearer ***");
    render(v, "${token}:${token}", "t0k3n:t0k3n", "***:***");
    /* a secret inside a non-secret value, and in the template's own text */
    render(v, "${echo}", "got t0k3n back", "got *** back");
    render(v, "literal t0k3n here", "literal t0k3n here", "literal *** here");
    /* adjacent pieces that only together form the secret */
    render(v, "t0k${empty}3n", "t0k3n", "***");
    /* a secret that is a substring of a longer value */
    render(v, "xt0k3nt0k3ny", "xt0k3nt0k3ny", "x***y");
}

static void test_redact(void **state)
{
    const char *const secrets[] = {"abcd", "cdef", "", "zz", NULL};
    char *r = rp_redact("xabcdefx", 8, secrets);
    assert_string_equal(r, "x***x"); /* overlapping: both fully hidden */
    free(r);
    r = rp_redact("abcd..cdef..zzz", 15, secrets);
    assert_string_equal(r, "***..***..***");
    free(r);
    r = rp_redact("nothing here", 12, secrets); /* the empty secret matches nothing */
    assert_string_equal(r, "nothing here");
    free(r);
    r = rp_redact("abcdabcd", 4, secrets); /* only `len` bytes are read */
    assert_string_equal(r, "***");
    free(r);
    const char *const nested[] = {"pass", "password", "word1", NULL};
    r = rp_redact("my password1!", 13, nested); /* longest and overlapping, any order */
    assert_string_equal(r, "my ***!");
    free(r);
    r = rp_redact("pass", 4, NULL);
    assert_string_equal(r, "pass");
    free(r);
    r = rp_redact("", 0, nested);
    assert_string_equal(r, "");
    free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_and_escapes),
        cmocka_unit_test(test_value_types),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_cap),
        cmocka_unit_test(test_redaction),
        cmocka_unit_test(test_redact),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
