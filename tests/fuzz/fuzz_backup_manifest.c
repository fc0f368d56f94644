/* libFuzzer target for rampart-backup's manifest (backup/manifest.c): every input is parsed; a
 * parsed manifest is written back to JSON, which must parse again and give the same JSON. A
 * crash, leak or sanitizer report fails. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct bk_manifest m = {0}, again = {0};
    if (bk_manifest_parse((const char *)data, size, &m, NULL) != RP_OK)
        return 0;
    char *j1 = bk_manifest_to_json(&m);
    struct rp_error err;
    if (bk_manifest_parse(j1, strlen(j1), &again, &err) != RP_OK)
        abort();
    char *j2 = bk_manifest_to_json(&again);
    if (strcmp(j1, j2) != 0 || again.n_parts != m.n_parts)
        abort();
    free(j1);
    free(j2);
    bk_manifest_cleanup(&again);
    bk_manifest_cleanup(&m);
    return 0;
}
