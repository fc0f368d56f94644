/* Unit tests for the dashboard's pure parts: route matching (placeholders, 404 versus 405,
 * literal routes before placeholders), list cursors, and the input check helpers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dash.h"

static const char pid[] = "0190d6c3-1f2a-7b3c-8d4e-5f60718293ab";
static const char uid[] = "0190d6c3-1f2a-7b3c-8d4e-5f60718293ac";

static void free_values(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
}

static void test_route_match(void **state)
{
    const char *names[DASH_MAX_PARAMS];
    char *values[DASH_MAX_PARAMS];
    size_t n = 0;
    int known = 0;
    const struct dash_route *r =
        dash_route_match("GET", "/api/v1/projects", names, values, &n, &known);
    assert_non_null(r);
    assert_int_equal(n, 0);
    assert_int_equal(r->access, DASH_LOGGED_IN);

    char path[200];
    snprintf(path, sizeof(path), "/api/v1/projects/%s/members/%s", pid, uid);
    r = dash_route_match("PUT", path, names, values, &n, &known);
    assert_non_null(r);
    assert_int_equal(n, 2);
    assert_string_equal(values[0], pid);
    assert_string_equal(values[1], uid);
    assert_true(strncmp(names[0], "project}", 8) == 0);
    assert_true(strncmp(names[1], "user}", 5) == 0);
    assert_int_equal(r->access, DASH_PROJECT_OWNER);
    free_values(values, n);

    /* HEAD is served by the GET route */
    r = dash_route_match("HEAD", "/api/v1/projects", names, values, &n, &known);
    assert_non_null(r);
    assert_string_equal(r->method, "GET");

    /* a known path with another method: 405, not 404 */
    r = dash_route_match("PUT", "/api/v1/projects", names, values, &n, &known);
    assert_null(r);
    assert_true(known);
    r = dash_route_match("GET", "/api/v1/nothing", names, values, &n, &known);
    assert_null(r);
    assert_false(known);
    /* empty segments and trailing slashes do not match placeholders */
    r = dash_route_match("GET", "/api/v1/projects//members", names, values, &n, &known);
    assert_null(r);
    r = dash_route_match("GET", "/api/v1/projects/", names, values, &n, &known);
    assert_null(r);
    r = dash_route_match("GET", "", names, values, &n, &known);
    assert_null(r);
}

static void test_every_route_well_formed(void **state)
{
    size_t count = 0;
    for (size_t t = 0; dash_route_tables[t]; t++) {
        for (const struct dash_route *rt = dash_route_tables[t]; rt->method; rt++) {
            count++;
            assert_non_null(rt->fn);
            assert_true(strncmp(rt->pattern, "/api/v1/", 8) == 0);
            /* project routes name their project {project} and check a project role */
            int has_project = strstr(rt->pattern, "/projects/{project}") != NULL;
            int project_access = rt->access >= DASH_PROJECT_VIEWER;
            assert_int_equal(has_project, project_access);
            /* a route matches its own pattern (placeholders filled in) */
            char path[300] = "";
            const char *p = rt->pattern;
            while (*p) {
                if (*p == '{') {
                    strcat(path, pid);
                    p = strchr(p, '}') + 1;
                } else {
                    strncat(path, p++, 1);
                }
            }
            const char *names[DASH_MAX_PARAMS];
            char *values[DASH_MAX_PARAMS];
            size_t n = 0;
            int known = 0;
            const struct dash_route *m =
                dash_route_match(rt->method, path, names, values, &n, &known);
            assert_non_null(m);
            free_values(values, n);
        }
    }
    assert_true(count >= 10);
}

/* Every route is described in the OpenAPI document, and every operation there exists. */
static void test_openapi_matches_routes(void **state)
{
    const struct dash_asset *a = dash_asset_find("/api/v1/openapi.json");
    assert_non_null(a);
    bson_t doc;
    bson_error_t e;
    if (!bson_init_from_json(&doc, (const char *)a->data, (ssize_t)a->len, &e))
        fail_msg("openapi.json does not parse: %s", e.message);
    bson_iter_t it, paths;
    assert_true(bson_iter_init_find(&it, &doc, "paths") && bson_iter_recurse(&it, &paths));
    size_t documented = 0;
    while (bson_iter_next(&paths)) {
        const char *path = bson_iter_key(&paths);
        bson_iter_t ops;
        assert_true(bson_iter_recurse(&paths, &ops));
        while (bson_iter_next(&ops)) {
            char method[16];
            const char *k = bson_iter_key(&ops);
            if (strcmp(k, "parameters") == 0 || strcmp(k, "summary") == 0 ||
                strcmp(k, "description") == 0)
                continue;
            size_t i = 0;
            for (; k[i] && i < sizeof(method) - 1; i++)
                method[i] = (char)(k[i] >= 'a' && k[i] <= 'z' ? k[i] - 32 : k[i]);
            method[i] = '\0';
            int found = 0;
            for (size_t t = 0; dash_route_tables[t] && !found; t++)
                for (const struct dash_route *rt = dash_route_tables[t]; rt->method; rt++)
                    if (strcmp(rt->method, method) == 0 && strcmp(rt->pattern, path) == 0)
                        found = 1;
            if (!found)
                fail_msg("openapi.json documents %s %s, which no route serves", method, path);
            documented++;
        }
    }
    size_t routes = 0;
    for (size_t t = 0; dash_route_tables[t]; t++) {
        for (const struct dash_route *rt = dash_route_tables[t]; rt->method; rt++) {
            routes++;
            bson_iter_t p, op;
            /* a dotted lookup would break on the dot of "openapi.json": walk by hand */
            int ok = 0;
            if (bson_iter_init_find(&p, &doc, "paths") && bson_iter_recurse(&p, &op)) {
                while (bson_iter_next(&op)) {
                    if (strcmp(bson_iter_key(&op), rt->pattern) != 0)
                        continue;
                    bson_iter_t m;
                    char lower[16];
                    size_t i = 0;
                    for (; rt->method[i] && i < sizeof(lower) - 1; i++)
                        lower[i] = (char)(rt->method[i] + 32);
                    lower[i] = '\0';
                    ok = bson_iter_recurse(&op, &m) && bson_iter_find(&m, lower);
                }
            }
            if (!ok)
                fail_msg("route %s %s is not in openapi.json", rt->method, rt->pattern);
        }
    }
    assert_int_equal(documented, routes);
    bson_destroy(&doc);
}

static void test_cursor(void **state)
{
    char *c = dash_cursor_encode("2026-11-23T10:00:00.123+00:00", pid);
    char *t = NULL, *id = NULL;
    assert_int_equal(dash_cursor_decode(c, &t, &id), RP_OK);
    assert_string_equal(t, "2026-11-23T10:00:00.123+00:00");
    assert_string_equal(id, pid);
    free(t);
    free(id);
    free(c);
    assert_int_equal(dash_cursor_decode("", &t, &id), RP_EINVAL);
    assert_int_equal(dash_cursor_decode("!!!", &t, &id), RP_EINVAL);
    char *bad = dash_cursor_encode("x", "not-a-uuid");
    assert_int_equal(dash_cursor_decode(bad, &t, &id), RP_EINVAL);
    free(bad);
    char longc[400];
    memset(longc, 'A', sizeof(longc) - 1);
    longc[sizeof(longc) - 1] = '\0';
    assert_int_equal(dash_cursor_decode(longc, &t, &id), RP_EINVAL);
}

static void test_checks(void **state)
{
    assert_null(dash_check_uuid(pid));
    assert_non_null(dash_check_uuid("x"));
    assert_null(dash_check_tag("smoke"));
    assert_null(dash_check_tag("team:checkout/v2"));
    assert_non_null(dash_check_tag(""));
    assert_non_null(dash_check_tag("has space"));
    assert_null(dash_check_location("eu-west_1"));
    assert_non_null(dash_check_location("EU"));
    assert_non_null(dash_check_location("-x"));
    assert_null(dash_password_weak("long enough pw"));
    assert_non_null(dash_password_weak("short"));
    assert_int_equal(dash_role_parse("editor"), DASH_ROLE_EDITOR);
    assert_int_equal(dash_role_parse("admin"), DASH_ROLE_NONE);
    assert_string_equal(dash_role_name(DASH_ROLE_OWNER), "owner");
}

static void test_password_hash(void **state)
{
    char h[128];
    assert_int_equal(dash_password_hash("correct horse battery", h), RP_OK);
    assert_true(strncmp(h, "$argon2id$", 10) == 0);
    assert_true(dash_password_verify(h, "correct horse battery"));
    assert_false(dash_password_verify(h, "correct horse battery!"));
    char tok[64], tok2[64];
    dash_random_token(tok);
    dash_random_token(tok2);
    assert_int_equal(strlen(tok), 43);
    assert_string_not_equal(tok, tok2);
    char b[67];
    dash_sha256_bytea("abc", b);
    assert_string_equal(b, "\\xba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_route_match),
        cmocka_unit_test(test_every_route_well_formed),
        cmocka_unit_test(test_openapi_matches_routes),
        cmocka_unit_test(test_cursor),
        cmocka_unit_test(test_checks),
        cmocka_unit_test(test_password_hash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
