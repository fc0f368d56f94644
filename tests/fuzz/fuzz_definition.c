/* libFuzzer target for test definitions (common/src/testlang/defn.c and what it calls: the JSON
 * reader, expressions, JSON paths, templates, schemas). The input is parsed as a whole definition,
 * and once more planted as a string (an assertion, a URL, a capture, `each`, a header) inside a
 * valid one, to reach the inner parsers quickly. A crash, leak, sanitizer report or broken contract
 * (success without steps, failure without a message) aborts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rampart/mem.h"
#include "rampart/testlang.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void parse(const char *json, size_t len)
{
    struct rp_test *t = NULL;
    struct rp_error err = {0};
    int rc = rp_test_parse(json, len, &t, &err);
    if (rc == RP_OK) {
        if (!t || t->n_steps == 0 || !t->name)
            abort();
        for (size_t i = 0; i < t->n_steps; i++) {
            const struct rp_step *s = &t->steps[i];
            if (!s->name || !s->method || !s->url || s->timeout_ms < 1 || s->timeout_ms > 600000 ||
                s->follow_redirects < 0 || s->follow_redirects > 10 ||
                (s->body_kind == RP_BODY_JSON && !s->body) || (s->each && !s->each_as))
                abort();
        }
        rp_test_free(t);
    } else if (t || (rc != RP_EINVAL && rc != RP_ENOMEM) || !err.msg[0] ||
               !memchr(err.msg, '\0', sizeof(err.msg))) {
        abort();
    }
}

/* The input as the inside of a JSON string. */
static char *escape(const uint8_t *data, size_t size)
{
    struct rp_buf b;
    rp_buf_init(&b, 0);
    for (size_t i = 0; i < size; i++) {
        unsigned char c = data[i];
        if (c == '"' || c == '\\' || c < 0x20)
            (void)rp_buf_printf(&b, "\\u%04x", c);
        else
            (void)rp_buf_append(&b, &c, 1);
    }
    return b.data;
}

/* Where the input goes (the "%s") in a valid definition: escaped into a string, or raw as a
 * JSON value. The first byte of the input picks the place. */
static const struct {
    int raw;
    const char *fmt;
} plant[] = {
    {0, "{\"name\": \"f\", \"steps\": [{\"request\": {\"url\": \"http://h/%s\"}}]}"},
    {0, "{\"name\": \"f\", \"steps\": [{\"request\": {\"url\": \"http://h/\", \"headers\": "
        "{\"X-F\": \"%s\"}}}]}"},
    {0, "{\"name\": \"f\", \"steps\": [{\"request\": {\"url\": \"http://h/\", \"timeout\": "
        "\"%s\"}}]}"},
    {0, "{\"name\": \"f\", \"steps\": [{\"request\": {\"url\": \"http://h/\"}, \"assert\": "
        "[\"status == 200\", \"%s\"]}]}"},
    {0, "{\"name\": \"f\", \"steps\": [{\"request\": {\"url\": \"http://h/\"}, \"capture\": "
        "{\"c\": \"%s\"}}]}"},
    {0, "{\"name\": \"f\", \"steps\": [{\"request\": {\"url\": \"http://h/\"}, \"each\": "
        "\"%s\"}]}"},
    {0, "{\"name\": \"f\", \"steps\": [{\"request\": {\"url\": \"http://h/\"}, \"if\": "
        "\"%s\"}]}"},
    {1, "{\"name\": \"f\", \"steps\": [{\"request\": {\"url\": \"http://h/\"}, \"schema\": "
        "%s}]}"},
    {1, "{\"name\": \"f\", \"steps\": [{\"request\": {\"url\": \"http://h/\", \"json\": %s}}]}"},
    {1, "{\"name\": \"f\", \"variables\": %s, \"steps\": [{\"request\": {\"url\": "
        "\"http://h/\"}}]}"},
    {1, "{\"name\": \"f\", \"steps\": [{\"request\": {\"url\": \"http://h/\"}, \"expect\": "
        "%s}]}"},
    {1, "{\"name\": \"f\", \"steps\": [{\"request\": %s}]}"},
    {1, "{\"name\": \"f\", \"steps\": [%s]}"},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    parse((const char *)data, size);
    if (size < 1 || size > 2048)
        return 0;
    size_t which = data[0] % (sizeof(plant) / sizeof(plant[0]));
    char *s = plant[which].raw ? rp_xstrndup((const char *)data + 1, size - 1)
                               : escape(data + 1, size - 1);
    const char *fmt = plant[which].fmt, *hole = strstr(fmt, "%s");
    char *json = rp_xasprintf("%.*s%s%s", (int)(hole - fmt), fmt, s, hole + 2);
    parse(json, strlen(json));
    free(json);
    free(s);
    return 0;
}
