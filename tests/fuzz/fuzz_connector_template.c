/* libFuzzer target for rampart-connector's body templates and text helpers
 * (connector/template.c). The input is rendered as a ${name} template against fixed variables
 * (quotes, line breaks, invalid UTF-8, a value that looks like a template); it is also used as a
 * variable's value inside {"k": "${v}"}, which must then parse as JSON whose k is exactly the
 * value (invalid UTF-8 replaced); and it is cut to a limit taken from its first byte. A crash,
 * leak, sanitizer report, over-cap output, broken JSON or a cut that is not a clean prefix fails
 * the run. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "connector.h"

#define CAP 4096

static const struct cnct_var vars[] = {
    {"event", "incident.opened"},
    {"test", "login \"EU\"\n<script>caf\xc3\xa9 \xf0\x9f\x94\xb4"},
    {"failure", "${test} $${ \\ \x01\x1f"},
    {"bad", "\xff\xc0\xaf\xed\xa0\x80 end"},
    {"none", NULL},
    {"", "empty name"},
};

/* UTF-16 units of valid UTF-8, or SIZE_MAX if it is not valid */
static size_t units(const char *s)
{
    size_t u = 0;
    if (!bson_utf8_validate(s, strlen(s), false))
        return SIZE_MAX;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p & 0xc0) != 0x80)
            u += *p >= 0xf0 ? 2 : 1;
    return u;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = rp_xstrndup((const char *)data, size), *out = NULL, why[300] = "";

    /* 1. the input as a template */
    int rc =
        cnct_template_render(in, vars, sizeof(vars) / sizeof(vars[0]), CAP, &out, why, sizeof(why));
    if (rc == RP_OK) {
        if (strlen(out) > CAP || (!strchr(in, '$') && strcmp(out, in) != 0))
            abort();
        free(out);
    } else if ((rc != RP_EINVAL && rc != RP_ENOMEM) || !*why || out) {
        abort();
    }

    /* 2. the input as a value: JSON-escaped exactly */
    const struct cnct_var v[] = {{"v", in}};
    out = NULL;
    if (cnct_template_render("{\"k\": \"${v}\"}", v, 1, 8 * size + 64, &out, why, sizeof(why)) !=
        RP_OK)
        abort();
    bson_error_t e;
    bson_t *doc = bson_new_from_json((const uint8_t *)out, -1, &e);
    bson_iter_t it;
    char *clean = cnct_utf8_clean(in);
    if (!doc || !bson_iter_init_find(&it, doc, "k") || !BSON_ITER_HOLDS_UTF8(&it) ||
        strcmp(bson_iter_utf8(&it, NULL), clean) != 0)
        abort();
    bson_destroy(doc);
    free(out);

    /* 3. cut: valid UTF-8, within the limit, a prefix of the clean text (+ "…" when cut) */
    size_t max = size ? data[0] % 64 : 0;
    char *cut = cnct_cut(in, max);
    size_t n = strlen(cut);
    if (units(cut) > max)
        abort();
    if (strcmp(cut, clean) != 0) {
        if (max && (n < 3 || strcmp(cut + n - 3, "\xe2\x80\xa6") != 0))
            abort();
        size_t keep = max ? n - 3 : 0;
        if (strncmp(cut, clean, keep) != 0)
            abort();
    }
    free(cut);
    free(clean);

    /* 4. URL escaping keeps only unreserved characters */
    char *u = cnct_url_escape(in);
    for (const char *p = u; *p; p++)
        if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~%", *p))
            abort();
    free(u);
    free(in);
    return 0;
}
