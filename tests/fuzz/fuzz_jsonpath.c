/* libFuzzer target for JSON paths (common/src/testlang/jsonpath.c) and JSON parsing
 * (common/src/testlang/value.c): the input up to the first newline is compiled as a path, the rest
 * parsed as a JSON body, and the path evaluated over it; every match is turned into a value,
 * printed and appended to a document. A crash, leak, hang or sanitizer report fails, and so does a
 * match count that disagrees with the number of callbacks. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rampart/mem.h"
#include "rampart/testlang.h"

struct seen {
    size_t calls;
    bson_t out;
};

static int on_match(const bson_iter_t *match, void *ud)
{
    struct seen *s = ud;
    struct rp_value v, copy;
    rp_value_from_iter(&v, match);
    rp_value_copy(&copy, &v);
    char *json = rp_value_to_json(&copy, 64);
    if (strlen(json) > 64)
        abort();
    free(json);
    char *text = rp_value_to_text(&v);
    free(text);
    if (s->calls < 100)
        rp_value_append(&s->out, "m", &v);
    rp_value_clear(&copy);
    rp_value_clear(&v);
    s->calls++;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *nl = memchr(data, '\n', size);
    size_t line = nl ? (size_t)(nl - (const char *)data) : size;
    char *path = rp_xstrndup((const char *)data, line);
    struct rp_jsonpath *p = NULL;
    struct rp_error err;
    bson_t *doc = NULL;
    bson_iter_t root;

    if (rp_jsonpath_compile(path, &p, &err) != RP_OK) {
        if (strncmp(err.msg, "column ", 7) != 0)
            abort();
        p = NULL;
    }
    if (nl) {
        if (rp_json_parse(nl + 1, size - line - 1, 0, &doc, &err) != RP_OK) {
            if (strncmp(err.msg, "invalid JSON", 12) != 0)
                abort();
            doc = NULL;
        }
    }
    if (p && doc && rp_json_root(doc, &root) == RP_OK) {
        struct seen s = {0};
        bson_init(&s.out);
        size_t n = rp_jsonpath_eval(p, &root, on_match, &s);
        if (n != s.calls)
            abort();
        (void)rp_jsonpath_is_multi(p);
        bson_destroy(&s.out);
    }
    rp_jsonpath_free(p);
    if (doc)
        bson_destroy(doc);
    free(path);
    return 0;
}
