/* Unit tests for layered variables (common/src/testlang/vars.c): precedence across all five layers,
 * secrets and the redaction list, references into JSON values (user.id, items[0].name), names with
 * dots, clones that share nothing, and loading {"name": value | {"value": v, "secret": true}}
 * objects with bad names and bad `secret` flags refused. */
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

/* Look `name` up and return its template text (new string), or NULL when unknown. */
static char *text_of(struct rp_vars *v, const char *name, int *secret)
{
    struct rp_value val;
    int sec = -1;
    if (rp_vars_lookup(v, name, &val, &sec) != RP_OK)
        return NULL;
    assert_true(sec == 0 || sec == 1);
    if (secret)
        *secret = sec;
    char *s = rp_value_to_text(&val);
    rp_value_clear(&val);
    return s;
}

static void expect(struct rp_vars *v, const char *name, const char *want)
{
    char *s = text_of(v, name, NULL);
    if (!s)
        fail_msg("%s: unknown, expected %s", name, want);
    assert_string_equal(s, want);
    free(s);
}

static void expect_unknown(struct rp_vars *v, const char *name)
{
    struct rp_value val = {0};
    assert_int_equal(rp_vars_lookup(v, name, &val, NULL), RP_ENOENT);
    assert_int_equal(val.type, RP_V_MISSING);
}

/* Load `json` (an object) into `layer`; returns the rc, `err` filled. */
static int load(struct rp_vars *v, enum rp_layer layer, const char *json, struct rp_error *err)
{
    bson_t *doc;
    bson_iter_t it;
    assert_int_equal(rp_json_parse(json, strlen(json), 0, &doc, err), RP_OK);
    assert_int_equal(rp_json_root(doc, &it), RP_OK);
    int rc = rp_vars_load_object(v, layer, &it, err);
    bson_destroy(doc);
    return rc;
}

static void test_layers(void **state)
{
    struct rp_vars *v = rp_vars_new();
    static const char *const names[] = {"project", "environment", "test", "override", "capture"};
    /* each layer beats every lower one */
    for (int top = 0; top < RP_N_LAYERS; top++) {
        for (int l = 0; l <= top; l++)
            assert_int_equal(rp_vars_set_string(v, (enum rp_layer)l, "x", names[l], 0), RP_OK);
        expect(v, "x", names[top]);
    }
    /* setting a lower layer afterwards does not shadow a higher one */
    assert_int_equal(rp_vars_set_string(v, RP_LAYER_PROJECT, "x", "late", 0), RP_OK);
    expect(v, "x", "capture");
    /* replacing within a layer */
    assert_int_equal(rp_vars_set_string(v, RP_LAYER_CAPTURE, "x", "again", 0), RP_OK);
    expect(v, "x", "again");
    /* a name only in a low layer is still found */
    assert_int_equal(rp_vars_set_string(v, RP_LAYER_PROJECT, "base", "b", 0), RP_OK);
    expect(v, "base", "b");
    expect_unknown(v, "nope");
    /* many names: the table grows */
    for (int i = 0; i < 500; i++) {
        char name[16], val[16];
        snprintf(name, sizeof(name), "v%d", i);
        snprintf(val, sizeof(val), "%d", i * 7);
        assert_int_equal(rp_vars_set_string(v, (enum rp_layer)(i % RP_N_LAYERS), name, val, 0),
                         RP_OK);
    }
    expect(v, "v0", "0");
    expect(v, "v499", "3493");
    expect(v, "x", "again");
    rp_vars_free(v);
}

static void test_names(void **state)
{
    struct rp_vars *v = rp_vars_new();
    char long_name[200];
    memset(long_name, 'a', sizeof(long_name));
    long_name[128] = '\0';
    assert_int_equal(rp_vars_set_string(v, RP_LAYER_TEST, long_name, "ok", 0), RP_OK);
    long_name[128] = 'a';
    long_name[129] = '\0';
    assert_int_equal(rp_vars_set_string(v, RP_LAYER_TEST, long_name, "x", 0), RP_EINVAL);
    assert_int_equal(rp_vars_set_string(v, RP_LAYER_TEST, "_a.b-c9", "ok", 0), RP_OK);
    assert_int_equal(rp_vars_set_string(v, RP_LAYER_TEST, "9a", "x", 0), RP_EINVAL);
    assert_int_equal(rp_vars_set_string(v, RP_LAYER_TEST, "", "x", 0), RP_EINVAL);
    assert_int_equal(rp_vars_set_string(v, RP_LAYER_TEST, "a b", "x", 0), RP_EINVAL);
    assert_int_equal(rp_vars_set_string(v, RP_LAYER_TEST, "a[0]", "x", 0), RP_EINVAL);
    assert_int_equal(rp_vars_set_string(v, RP_N_LAYERS, "a", "x", 0), RP_EINVAL);
    expect(v, "_a.b-c9", "ok");
    const char *ref = "a.b[0]['x y'][\"z\"][-1].c";
    assert_true(rp_vars_ref_valid(ref, strlen(ref)));
    assert_false(rp_vars_ref_valid("a[", 2));
    assert_false(rp_vars_ref_valid("a[x]", 4));
    assert_false(rp_vars_ref_valid("a[-0]", 5));
    assert_false(rp_vars_ref_valid("a[0].", 5));
    assert_false(rp_vars_ref_valid("1a", 2));
    assert_false(rp_vars_ref_valid("a b", 3));
    assert_false(rp_vars_ref_valid("", 0));
    rp_vars_free(v);
}

static void test_json_paths(void **state)
{
    struct rp_vars *v = rp_vars_new();
    struct rp_error err = {0};
    assert_int_equal(load(v, RP_LAYER_CAPTURE,
                          "{\"user\": {\"id\": 42, \"name\": \"ann\", \"ok\": true, \"x\": null,"
                          " \"tags\": [\"a\", \"b\"], \"first name\": \"A\"},"
                          " \"items\": [{\"name\": \"pen\", \"price\": 2.5}, {\"name\": \"ink\"}],"
                          " \"user.id\": \"literal dotted name\", \"n\": 7}",
                          &err),
                     RP_OK);
    expect(v, "user.name", "ann");
    expect(v, "user.ok", "true");
    expect(v, "user.x", "null");
    expect(v, "user.tags", "[\"a\",\"b\"]");
    expect(v, "user.tags[1]", "b");
    expect(v, "user.tags[-1]", "b");
    expect(v, "user.tags[-2]", "a");
    expect(v, "user[\"first name\"]", "A");
    expect(v, "user['name']", "ann");
    expect(v, "items[0].name", "pen");
    expect(v, "items[0].price", "2.5");
    expect(v, "items[1]", "{\"name\":\"ink\"}");
    expect(v, "items", "[{\"name\":\"pen\",\"price\":2.5},{\"name\":\"ink\"}]");
    /* a variable whose name contains the dot wins over a path into `user` */
    expect(v, "user.id", "literal dotted name");
    expect(v, "n", "7");
    expect_unknown(v, "user.missing");
    expect_unknown(v, "user.tags[2]");
    expect_unknown(v, "user.tags[-3]");
    expect_unknown(v, "user.name.more"); /* into a string */
    expect_unknown(v, "items.name");     /* key step on an array */
    expect_unknown(v, "user[0]");        /* index step on an object */
    expect_unknown(v, "n.x");
    expect_unknown(v, "items[0");
    expect_unknown(v, "nobody.x");
    rp_vars_free(v);
}

static void test_secrets(void **state)
{
    struct rp_vars *v = rp_vars_new();
    struct rp_error err = {0};
    int secret = -1;
    assert_int_equal(rp_vars_secrets(v)[0], NULL);
    assert_int_equal(rp_vars_set_string(v, RP_LAYER_ENVIRONMENT, "token", "t0k3n", 1), RP_OK);
    assert_int_equal(rp_vars_set_string(v, RP_LAYER_ENVIRONMENT, "plain", "p", 0), RP_OK);
    assert_int_equal(rp_vars_set_string(v, RP_LAYER_ENVIRONMENT, "empty", "", 1), RP_OK);
    assert_int_equal(
        load(v, RP_LAYER_TEST,
             "{\"creds\": {\"value\": {\"user\": \"bob\", \"pin\": 1234, \"ok\": true},"
             " \"secret\": true}}",
             &err),
        RP_OK);
    char *s = text_of(v, "token", &secret);
    assert_string_equal(s, "t0k3n");
    assert_int_equal(secret, 1);
    free(s);
    s = text_of(v, "plain", &secret);
    assert_int_equal(secret, 0);
    free(s);
    /* a path into a secret is secret */
    s = text_of(v, "creds.user", &secret);
    assert_string_equal(s, "bob");
    assert_int_equal(secret, 1);
    free(s);

    /* the list: each secret's text, members of secret objects, no empty, no duplicates */
    const char *const *list = rp_vars_secrets(v);
    const char *want[] = {"t0k3n", "{\"user\":\"bob\",\"pin\":1234,\"ok\":true}", "bob", "1234"};
    size_t n = 0;
    while (list[n])
        n++;
    assert_int_equal(n, 4);
    for (size_t i = 0; i < 4; i++) {
        int found = 0;
        for (size_t k = 0; k < n; k++)
            found |= strcmp(list[k], want[i]) == 0;
        if (!found)
            fail_msg("secret %s not listed", want[i]);
    }
    assert_int_equal(rp_vars_set_string(v, RP_LAYER_OVERRIDE, "again", "t0k3n", 1), RP_OK);
    list = rp_vars_secrets(v);
    for (n = 0; list[n]; n++)
        ;
    assert_int_equal(n, 4);

    /* a non-secret override of a secret name: the lookup is not secret, the old value stays
     * listed (it is still a secret worth hiding) */
    assert_int_equal(rp_vars_set_string(v, RP_LAYER_CAPTURE, "token", "public", 0), RP_OK);
    s = text_of(v, "token", &secret);
    assert_string_equal(s, "public");
    assert_int_equal(secret, 0);
    free(s);
    list = rp_vars_secrets(v);
    int has = 0;
    for (n = 0; list[n]; n++)
        has |= strcmp(list[n], "t0k3n") == 0;
    assert_true(has);

    /* replacing a secret with a non-secret in the same layer drops it from the list */
    assert_int_equal(rp_vars_set_string(v, RP_LAYER_ENVIRONMENT, "token", "gone", 0), RP_OK);
    assert_int_equal(rp_vars_set_string(v, RP_LAYER_OVERRIDE, "again", "gone", 0), RP_OK);
    list = rp_vars_secrets(v);
    for (n = 0; list[n]; n++)
        assert_string_not_equal(list[n], "t0k3n");
    rp_vars_free(v);
}

static void test_clone(void **state)
{
    struct rp_vars *v = rp_vars_new();
    struct rp_error err = {0};
    assert_int_equal(rp_vars_set_string(v, RP_LAYER_PROJECT, "a", "1", 0), RP_OK);
    assert_int_equal(rp_vars_set_string(v, RP_LAYER_ENVIRONMENT, "s", "sss", 1), RP_OK);
    assert_int_equal(load(v, RP_LAYER_TEST, "{\"o\": {\"k\": [1, 2]}}", &err), RP_OK);
    struct rp_vars *c = rp_vars_clone(v);
    expect(c, "a", "1");
    expect(c, "o.k[1]", "2");
    assert_string_equal(rp_vars_secrets(c)[0], "sss");
    /* changes on either side do not reach the other */
    assert_int_equal(rp_vars_set_string(c, RP_LAYER_CAPTURE, "a", "2", 0), RP_OK);
    assert_int_equal(rp_vars_set_string(c, RP_LAYER_CAPTURE, "new", "n", 1), RP_OK);
    assert_int_equal(rp_vars_set_string(v, RP_LAYER_PROJECT, "o", "replaced", 0), RP_OK);
    expect(v, "a", "1");
    expect_unknown(v, "new");
    expect(c, "a", "2");
    expect(c, "o.k[0]", "1");
    assert_null(rp_vars_secrets(v)[1]);
    rp_vars_free(v);
    /* the clone outlives the original */
    expect(c, "new", "n");
    expect(c, "s", "sss");
    struct rp_vars *empty = rp_vars_clone(NULL);
    expect_unknown(empty, "a");
    rp_vars_free(empty);
    rp_vars_free(c);
    rp_vars_free(NULL);
}

static void test_load_object(void **state)
{
    struct rp_vars *v = rp_vars_new();
    struct rp_error err = {0};
    int secret;
    assert_int_equal(load(v, RP_LAYER_ENVIRONMENT,
                          "{\"s\": \"x\", \"n\": 2.5, \"b\": false, \"z\": null, \"arr\": [1],"
                          " \"w\": {\"value\": \"hidden\", \"secret\": true},"
                          " \"w2\": {\"value\": 5, \"secret\": false},"
                          " \"w3\": {\"value\": {\"value\": 1}},"
                          " \"obj\": {\"value\": 1, \"other\": 2}}",
                          &err),
                     RP_OK);
    expect(v, "s", "x");
    expect(v, "n", "2.5");
    expect(v, "b", "false");
    expect(v, "z", "null");
    expect(v, "arr", "[1]");
    char *s = text_of(v, "w", &secret);
    assert_string_equal(s, "hidden");
    assert_int_equal(secret, 1);
    free(s);
    s = text_of(v, "w2", &secret);
    assert_string_equal(s, "5");
    assert_int_equal(secret, 0);
    free(s);
    expect(v, "w3", "{\"value\":1}");              /* wrapped, to keep a "value" object */
    expect(v, "obj", "{\"value\":1,\"other\":2}"); /* other members: a plain object */

    /* errors name the member and leave the store unchanged */
    assert_int_equal(load(v, RP_LAYER_TEST, "{\"fine\": 1, \"9bad\": 2}", &err), RP_EINVAL);
    assert_string_equal(err.msg, "variable \"9bad\": invalid name (letters, digits, _ . -, "
                                 "starting with a letter or _, at most 128 bytes)");
    expect_unknown(v, "fine");
    assert_int_equal(load(v, RP_LAYER_TEST, "{\"k\": {\"value\": 1, \"secret\": \"yes\"}}", &err),
                     RP_EINVAL);
    assert_string_equal(err.msg, "variable \"k\": \"secret\" must be true or false");
    assert_int_equal(load(v, RP_LAYER_TEST, "[1, 2]", &err), RP_EINVAL);
    assert_string_equal(err.msg, "variables must be a JSON object");
    assert_int_equal(load(v, RP_LAYER_TEST, "{\"a b\": 1}", &err), RP_EINVAL);
    assert_int_equal(load(v, RP_LAYER_TEST, "{}", &err), RP_OK);
    rp_vars_free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layers),     cmocka_unit_test(test_names),
        cmocka_unit_test(test_json_paths), cmocka_unit_test(test_secrets),
        cmocka_unit_test(test_clone),      cmocka_unit_test(test_load_object),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
