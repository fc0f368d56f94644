/* libFuzzer target for the assertion language (common/src/testlang/expr_parse.c, expr_eval.c): the
 * first line of the input is parsed as an expression and as an operand, then evaluated against a
 * response view whose body is the rest of the input when it is JSON, a fixed JSON document
 * otherwise. A crash, leak, hang or sanitizer report fails; a check must always come back with a
 * message and an actual value, and a secret variable's value must never appear in either. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rampart/mem.h"
#include "rampart/testlang.h"

static const char fixed_body[] =
    "{\"user\": {\"age\": 12, \"name\": \"Ann\", \"tags\": [\"a\", \"b\"], \"nick\": null,"
    " \"email\": \"a@example.com\"}, \"items\": [{\"price\": 3.5}, {\"price\": 0}],"
    " \"big\": 12345678901234567890, \"s\": \"h\\u00e9llo\", \"ok\": true}";

static struct rp_header headers[] = {
    {"Content-Type", "application/json"}, {"X-Id", "abc"}, {"x-id", "def"}};

static int lookup(void *ud, const char *name, struct rp_value *out, int *secret)
{
    if (strcmp(name, "token") == 0) {
        rp_value_set_string(out, "S3CR3T-XYZ", 10);
        *secret = 1;
        return RP_OK;
    }
    if (strcmp(name, "n") == 0) {
        rp_value_set_number(out, 18);
        return RP_OK;
    }
    if (strcmp(name, "body") == 0) {
        bson_iter_t it;
        if (rp_json_root(ud, &it) == RP_OK) {
            rp_value_from_iter(out, &it);
            return RP_OK;
        }
    }
    return RP_ENOENT;
}

static const char *input; /* the whole input, NUL-terminated */

/* The secret may only show up when the input itself contains it (a literal or the body). */
static void no_secret(const char *text, const char *src)
{
    (void)src;
    if (text && strstr(text, "S3CR3T-XYZ") && !strstr(input, "S3CR3T-XYZ"))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bson_t *fixed;
    const char *nl = memchr(data, '\n', size);
    size_t line = nl ? (size_t)(nl - (const char *)data) : size;
    char *src = rp_xstrndup((const char *)data, line);
    char *all = rp_xmalloc(size + 1);
    memcpy(all, data, size);
    for (size_t i = 0; i < size; i++)
        if (!all[i])
            all[i] = ' ';
    all[size] = '\0';
    input = all;
    bson_t *own = NULL;

    if (!fixed && rp_json_parse(fixed_body, strlen(fixed_body), 0, &fixed, NULL) != RP_OK)
        abort();
    if (nl && rp_json_parse(nl + 1, size - line - 1, 0, &own, NULL) != RP_OK)
        own = NULL;

    struct rp_response_view r = {0};
    r.status = 200;
    r.headers = headers;
    r.n_headers = 3;
    r.body = (const char *)data;
    r.body_len = size;
    r.body_size = size;
    r.body_json = own ? own : fixed;
    r.timings = (struct rp_timings){1, 2, 3, 4, 5};
    r.lookup = lookup;
    r.lookup_ud = (void *)r.body_json;

    struct rp_expr *e;
    struct rp_error err;
    if (rp_expr_parse(src, &e, &err) == RP_OK) {
        struct rp_check c;
        struct rp_value v;
        int secret;
        rp_expr_check(e, &r, &c);
        if (!c.message || !c.actual || strlen(c.actual) > 1024)
            abort();
        no_secret(c.message, src);
        no_secret(c.actual, src);
        rp_check_clear(&c);
        rp_expr_value(e, &r, &v, &secret);
        char *s = rp_value_to_json(&v, 100);
        if (strlen(s) > 100)
            abort();
        free(s);
        rp_value_clear(&v);
        rp_expr_free(e);
    } else if (strncmp(err.msg, "column ", 7) != 0) {
        abort(); /* every parse error names its column */
    }
    if (rp_expr_parse_operand(src, &e, &err) == RP_OK) {
        struct rp_value v;
        int secret = 0;
        rp_expr_value(e, &r, &v, &secret);
        char *t = rp_value_to_text(&v);
        if (!secret)
            no_secret(t, src);
        free(t);
        rp_value_clear(&v);
        rp_expr_free(e);
    }
    if (own)
        bson_destroy(own);
    free(src);
    free(all);
    return 0;
}
