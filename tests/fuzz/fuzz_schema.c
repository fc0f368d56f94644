/* libFuzzer target for JSON Schema (common/src/testlang/schema_compile.c, schema_check.c): the
 * input is split at its first newline into a schema (JSON) and an instance (JSON); when both parse,
 * the schema is compiled and the instance checked against it, and the format checks run on the raw
 * text. A crash, leak, sanitizer report or hang (libFuzzer's timeout) fails the run; a check must
 * always produce a message. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rampart/mem.h"
#include "rampart/testlang.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    const char *nl = memchr(text, '\n', size);
    size_t slen = nl ? (size_t)(nl - text) : size;
    const char *inst = nl ? nl + 1 : "null";
    size_t ilen = nl ? size - slen - 1 : 4;
    bson_t *sdoc = NULL, *idoc = NULL;
    struct rp_schema *schema = NULL;
    struct rp_error err;

    char *raw = rp_xstrndup(text, size);
    (void)rp_is_email(raw);
    (void)rp_is_url(raw);
    (void)rp_is_uuid(raw);
    (void)rp_is_date_time(raw);
    free(raw);

    if (rp_json_parse(text, slen, 1 << 16, &sdoc, &err) != RP_OK)
        goto out;
    if (rp_schema_compile(sdoc, &schema, &err) != RP_OK)
        goto out;
    if (rp_json_parse(inst, ilen, 1 << 16, &idoc, &err) != RP_OK)
        goto out;
    bson_iter_t it;
    struct rp_check c;
    if (rp_json_root(idoc, &it) != RP_OK)
        abort();
    rp_schema_check(schema, &it, &c);
    if (!c.message || (!c.passed && c.message[0] != '$'))
        abort();
    rp_check_clear(&c);
out:
    rp_schema_free(schema);
    if (sdoc)
        bson_destroy(sdoc);
    if (idoc)
        bson_destroy(idoc);
    return 0;
}
