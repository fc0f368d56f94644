/* libFuzzer target for the settings parsers: durations, lists, URL redaction and every typed
 * setting (AMQP URL lists, libpq conninfo, MongoDB URI, host:port), fed arbitrary bytes. A
 * crash, leak or sanitizer report fails the run; also checks that redaction never lets a
 * password through. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rampart/config.h"
#include "rampart/mem.h"

static char *v_str;
static long v_long;
static int v_bool;

static const struct rp_setting table[] = {
    {"FZ_AMQP", RP_SET_AMQP_URLS, "amqp://127.0.0.1/", "", &v_str, 0, 0, NULL, 1},
    {"FZ_PG", RP_SET_PG_CONNINFO, "host=x", "", &v_str, 0, 0, NULL, 0},
    {"FZ_MONGO", RP_SET_MONGO_URI, "mongodb://x/", "", &v_str, 0, 0, NULL, 0},
    {"FZ_LISTEN", RP_SET_LISTEN, "x:1", "", &v_str, 0, 0, NULL, 0},
    {"FZ_INT", RP_SET_INT, "1", "", &v_long, 1, 100, NULL, 0},
    {"FZ_DUR", RP_SET_DURATION, "1s", "", &v_long, 0, 0, NULL, 0},
    {"FZ_BOOL", RP_SET_BOOL, "true", "", &v_bool, 0, 0, NULL, 0},
    {"FZ_ENUM", RP_SET_ENUM, "a", "", &v_str, 0, 0, "a|bb|c", 0},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = rp_xstrndup((const char *)data, size);
    long ms;
    (void)rp_parse_duration_ms(s, &ms);
    rp_strv_free(rp_split_list(s, NULL));

    char *red = rp_redact_url(s);
    /* "amqp://u:SECRET@h" must never come out with SECRET */
    char *probe = rp_xasprintf("%s amqp://u:S3CR3T@h/ password=S3CR3T", s);
    char *red2 = rp_redact_url(probe);
    if (strstr(red2, "S3CR3T") && !strstr(s, "S3CR3T"))
        abort();
    free(red2);
    free(probe);
    free(red);

    struct rp_error err;
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        setenv(table[i].env, s, 1);
        (void)rp_config_load(&table[i], 1, &err);
        rp_config_cleanup(&table[i], 1);
        unsetenv(table[i].env);
    }
    free(s);
    return 0;
}
