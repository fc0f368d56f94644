/* Settings from environment variables (12-factor). Each service declares one table of
 * struct rp_setting; the same table drives parsing, `--help` and docs/configuration.md.
 * A bad value is a fatal error at start-up with one line naming the variable, the value
 * (unless secret) and what is expected. */
#ifndef RAMPART_CONFIG_H
#define RAMPART_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#include "rampart/error.h"

enum rp_setting_type {
    RP_SET_STRING,      /* out: char ** (owned, freed by rp_config_cleanup) */
    RP_SET_INT,         /* out: long *, bounded by min..max */
    RP_SET_BOOL,        /* out: int *, accepts 1/0 true/false yes/no on/off */
    RP_SET_DURATION,    /* out: long * in milliseconds; accepts 250ms, 5s, 2m, 1h, or plain ms */
    RP_SET_ENUM,        /* out: char **, one of `choices` ("a|b|c") */
    RP_SET_AMQP_URLS,   /* out: char ** comma-separated amqp:// URLs, each parsed and checked */
    RP_SET_PG_CONNINFO, /* out: char ** libpq conninfo or postgres:// URL, checked by libpq */
    RP_SET_MONGO_URI,   /* out: char ** mongodb:// URI, checked by libmongoc */
    RP_SET_LISTEN,      /* out: char ** "host:port" (port 0..65535) */
};

struct rp_setting {
    const char *env; /* environment variable, e.g. "RAMPART_PG_URL" */
    enum rp_setting_type type;
    const char *def;     /* default as text; NULL means the setting is required */
    const char *help;    /* one line for --help and the docs */
    void *out;           /* where the parsed value goes (see the type) */
    long min, max;       /* RP_SET_INT / RP_SET_DURATION bounds (both 0 = unbounded) */
    const char *choices; /* RP_SET_ENUM: "a|b|c" */
    int secret;          /* never print the value (passwords, keys) */
};

/* Parse every setting of `table` from the environment. On the first bad or missing one,
 * fills `err` with one line naming it and returns RP_EINVAL; outputs already set are still
 * released by rp_config_cleanup. */
int rp_config_load(const struct rp_setting *table, size_t n, struct rp_error *err) RP_MUST_CHECK;

/* Free the strings rp_config_load allocated into the table's outputs. Accepts a table that
 * was never loaded (outputs must then be NULL / zero). */
void rp_config_cleanup(const struct rp_setting *table, size_t n);

/* Print usage: `summary`, then every setting with its default and help. */
void rp_config_print_help(FILE *out, const char *prog, const char *summary,
                          const struct rp_setting *table, size_t n);

/* Print the table as a Markdown table (used to generate docs/configuration.md). */
void rp_config_print_markdown(FILE *out, const struct rp_setting *table, size_t n);

/* Parse a duration ("250ms", "5s", "2m", "1h", "1500") into milliseconds. */
int rp_parse_duration_ms(const char *s, long *out_ms) RP_MUST_CHECK;

/* Copy of `url` with any password replaced by "***" (amqp://u:***@h/, postgres://u:***@h/,
 * password=*** in a conninfo). Caller frees. For logging connection targets safely. */
char *rp_redact_url(const char *url);

/* Split a comma-separated list into a NULL-terminated array of trimmed, non-empty copies.
 * Free with rp_strv_free. `*count` (may be NULL) receives the number of items. */
char **rp_split_list(const char *s, size_t *count);
void rp_strv_free(char **v);

#endif
