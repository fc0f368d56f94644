/* libFuzzer target for ${var} templating (common/src/testlang/template.c, vars.c): an arbitrary
 * template is checked and rendered against a fixed set of variables in several layers, some secret
 * (one a JSON object whose members are secret too). A crash, leak or sanitizer report fails the
 * run; so does a redacted output that still holds a secret's value, a render that succeeds where
 * the syntax check failed, or output over the cap. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rampart/mem.h"
#include "rampart/testlang.h"

#define CAP 4096

static struct rp_vars *vars;

static void setup(void)
{
    static const char obj[] = "{\"id\": 42, \"name\": \"ann\", \"tags\": [\"a\", \"b\"], "
                              "\"creds\": {\"user\": \"bob\", \"pass\": \"visible\"}}";
    static const char sec[] = "{\"user\": \"svc-bot\", \"pass\": \"Pa55-w0rd\", \"pin\": 90210}";
    bson_t *doc;
    bson_iter_t it;
    vars = rp_vars_new();
    if (rp_vars_set_string(vars, RP_LAYER_PROJECT, "host", "api.example.com", 0) ||
        rp_vars_set_string(vars, RP_LAYER_ENVIRONMENT, "token", "s3cr3t-T0KEN", 1) ||
        rp_vars_set_string(vars, RP_LAYER_TEST, "user", "ann", 0) ||
        rp_vars_set_string(vars, RP_LAYER_OVERRIDE, "key", "KEY123KEY", 1) ||
        rp_vars_set_string(vars, RP_LAYER_CAPTURE, "part", "T0KENKEY", 1) ||
        rp_vars_set_string(vars, RP_LAYER_CAPTURE, "dollar", "${token}", 0) ||
        rp_json_parse(obj, strlen(obj), 0, &doc, NULL) || rp_json_root(doc, &it))
        abort();
    struct rp_value v;
    rp_value_from_iter(&v, &it);
    if (rp_vars_set(vars, RP_LAYER_TEST, "obj", &v, 0))
        abort();
    rp_value_clear(&v);
    bson_destroy(doc);
    if (rp_json_parse(sec, strlen(sec), 0, &doc, NULL) || rp_json_root(doc, &it))
        abort();
    rp_value_from_iter(&v, &it);
    if (rp_vars_set(vars, RP_LAYER_OVERRIDE, "sec", &v, 1))
        abort();
    rp_value_clear(&v);
    bson_destroy(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!vars)
        setup();
    char *tmpl = rp_xstrndup((const char *)data, size);
    char *out = NULL, *red = NULL;
    struct rp_error err;
    int checked = rp_template_check(tmpl, &err);
    int rc = rp_template_render(tmpl, vars, CAP, &out, &red, &err);
    if (rc == RP_OK) {
        if (checked != RP_OK || strlen(out) > CAP)
            abort();
        for (const char *const *s = rp_vars_secrets(vars); *s; s++)
            if (strstr(red, *s))
                abort();
        char *again = rp_redact(out, strlen(out), rp_vars_secrets(vars));
        for (const char *const *s = rp_vars_secrets(vars); *s; s++)
            if (strstr(again, *s))
                abort();
        free(again);
        free(out);
        free(red);
    } else if (rc != RP_EINVAL && rc != RP_ENOMEM) {
        abort();
    }
    /* the template text itself, redacted */
    char *r = rp_redact(tmpl, strlen(tmpl), rp_vars_secrets(vars));
    for (const char *const *s = rp_vars_secrets(vars); *s; s++)
        if (strstr(r, *s))
            abort();
    free(r);
    free(tmpl);
    return 0;
}
