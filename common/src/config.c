/* Settings table parsing, --help and Markdown generation, URL redaction. Connection strings
 * are checked by the library that will use them (rabbitmq-c, libpq, libmongoc), so a setting
 * that passes here is one the client accepts. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <amqp.h>
#include <libpq-fe.h>
#include <mongoc/mongoc.h>

#include "rampart/config.h"
#include "rampart/mem.h"

char **rp_split_list(const char *s, size_t *count)
{
    size_t n = 0, cap = 4;
    char **v = rp_xcalloc(cap, sizeof(*v));
    const char *p = s ? s : "";
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *a = p, *b = p + len;
        while (a < b && isspace((unsigned char)*a))
            a++;
        while (b > a && isspace((unsigned char)b[-1]))
            b--;
        if (b > a) {
            if (n + 1 >= cap) {
                cap *= 2;
                v = rp_xrealloc(v, cap * sizeof(*v));
            }
            v[n++] = rp_xstrndup(a, (size_t)(b - a));
        }
        p = end ? end + 1 : p + len;
    }
    v[n] = NULL;
    if (count)
        *count = n;
    return v;
}

void rp_strv_free(char **v)
{
    if (!v)
        return;
    for (char **p = v; *p; p++)
        free(*p);
    free(v);
}

int rp_parse_duration_ms(const char *s, long *out_ms)
{
    if (!s || !*s)
        return RP_EINVAL;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (errno || end == s || !(v >= 0) || v > 1e15) /* also refuses NaN and infinities */
        return RP_EINVAL;
    double mult;
    if (*end == '\0' || strcmp(end, "ms") == 0)
        mult = 1;
    else if (strcmp(end, "s") == 0)
        mult = 1000;
    else if (strcmp(end, "m") == 0)
        mult = 60000;
    else if (strcmp(end, "h") == 0)
        mult = 3600000;
    else
        return RP_EINVAL;
    double ms = v * mult;
    if (ms > 1e15)
        return RP_EINVAL;
    *out_ms = (long)ms;
    return RP_OK;
}

static int parse_bool(const char *s, int *out)
{
    static const char *yes[] = {"1", "true", "yes", "on"};
    static const char *no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return RP_OK;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return RP_OK;
        }
    }
    return RP_EINVAL;
}

static int check_amqp_urls(const char *s, char *why, size_t whylen)
{
    size_t n;
    char **urls = rp_split_list(s, &n);
    int rc = n ? RP_OK : RP_EINVAL;
    if (!n)
        snprintf(why, whylen, "expected one or more amqp://user:pass@host:port/vhost URLs");
    for (size_t i = 0; i < n && rc == RP_OK; i++) {
        struct amqp_connection_info info;
        char *copy = rp_xstrdup(urls[i]);
        if (amqp_parse_url(copy, &info) != AMQP_STATUS_OK) {
            char *red = rp_redact_url(urls[i]);
            snprintf(why, whylen, "URL %zu (\"%s\") is not amqp://user:pass@host:port/vhost", i + 1,
                     red);
            free(red);
            rc = RP_EINVAL;
        }
        free(copy);
    }
    rp_strv_free(urls);
    return rc;
}

static int check_pg(const char *s, char *why, size_t whylen)
{
    char *msg = NULL;
    PQconninfoOption *opts = PQconninfoParse(s, &msg);
    if (!opts) {
        snprintf(why, whylen, "not a libpq conninfo or postgres:// URL: %.300s",
                 msg ? msg : "unparsable");
        size_t l = strlen(why);
        while (l && (why[l - 1] == '\n'))
            why[--l] = '\0';
        PQfreemem(msg);
        return RP_EINVAL;
    }
    PQconninfoFree(opts);
    return RP_OK;
}

static void quiet_log(mongoc_log_level_t level, const char *domain, const char *message, void *ud)
{
}

static int check_mongo(const char *s, char *why, size_t whylen)
{
    bson_error_t e;
    /* the parser also logs its complaint on stderr: the error message says it already, in
     * our one fatal JSON line (settings are read before any thread or client exists; the
     * MongoDB client module installs its own handler later) */
    mongoc_log_set_handler(quiet_log, NULL);
    mongoc_uri_t *uri = mongoc_uri_new_with_error(s, &e);
    mongoc_log_set_handler(mongoc_log_default_handler, NULL);
    if (!uri) {
        snprintf(why, whylen, "not a mongodb:// URI: %.300s", e.message);
        return RP_EINVAL;
    }
    mongoc_uri_destroy(uri);
    return RP_OK;
}

static int check_listen(const char *s, char *why, size_t whylen)
{
    const char *colon = strrchr(s, ':');
    char *end;
    long port = colon ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || colon == s || colon[1] == '\0' || *end != '\0' || port < 0 || port > 65535) {
        snprintf(why, whylen, "expected host:port, e.g. 127.0.0.1:8080");
        return RP_EINVAL;
    }
    return RP_OK;
}

static int parse_one(const struct rp_setting *s, const char *val, char *why, size_t whylen)
{
    char *end;
    switch (s->type) {
    case RP_SET_INT: {
        errno = 0;
        long v = strtol(val, &end, 10);
        if (errno || end == val || *end != '\0') {
            snprintf(why, whylen, "expected an integer");
            return RP_EINVAL;
        }
        if ((s->min || s->max) && (v < s->min || v > s->max)) {
            snprintf(why, whylen, "expected an integer from %ld to %ld", s->min, s->max);
            return RP_EINVAL;
        }
        *(long *)s->out = v;
        return RP_OK;
    }
    case RP_SET_DURATION: {
        long ms;
        if (rp_parse_duration_ms(val, &ms) != RP_OK) {
            snprintf(why, whylen, "expected a duration such as 500ms, 5s, 2m or 1h");
            return RP_EINVAL;
        }
        if ((s->min || s->max) && (ms < s->min || ms > s->max)) {
            snprintf(why, whylen, "expected a duration from %ldms to %ldms", s->min, s->max);
            return RP_EINVAL;
        }
        *(long *)s->out = ms;
        return RP_OK;
    }
    case RP_SET_BOOL:
        if (parse_bool(val, (int *)s->out) != RP_OK) {
            snprintf(why, whylen, "expected true or false");
            return RP_EINVAL;
        }
        return RP_OK;
    case RP_SET_ENUM: {
        int found = 0;
        size_t vlen = strlen(val);
        for (const char *c = s->choices; c && *c && !found;) {
            size_t len = strcspn(c, "|");
            found = len == vlen && vlen && strncmp(c, val, len) == 0;
            c += len + (c[len] == '|');
        }
        if (!found) {
            snprintf(why, whylen, "expected one of: %s", s->choices);
            return RP_EINVAL;
        }
        break;
    }
    case RP_SET_AMQP_URLS:
        if (check_amqp_urls(val, why, whylen) != RP_OK)
            return RP_EINVAL;
        break;
    case RP_SET_PG_CONNINFO:
        if (check_pg(val, why, whylen) != RP_OK)
            return RP_EINVAL;
        break;
    case RP_SET_MONGO_URI:
        if (check_mongo(val, why, whylen) != RP_OK)
            return RP_EINVAL;
        break;
    case RP_SET_LISTEN:
        if (check_listen(val, why, whylen) != RP_OK)
            return RP_EINVAL;
        break;
    case RP_SET_STRING:
        break;
    }
    char **out = (char **)s->out;
    free(*out);
    *out = rp_xstrdup(val);
    return RP_OK;
}

static int is_string_type(enum rp_setting_type t)
{
    return t != RP_SET_INT && t != RP_SET_BOOL && t != RP_SET_DURATION;
}

int rp_config_load(const struct rp_setting *table, size_t n, struct rp_error *err)
{
    for (size_t i = 0; i < n; i++) {
        const struct rp_setting *s = &table[i];
        const char *val = getenv(s->env);
        int from_env = val != NULL;
        if (!val)
            val = s->def;
        if (!val)
            return rp_error_set(err, RP_EINVAL, "setting %s is required: %s", s->env, s->help);
        char why[400] = "";
        if (parse_one(s, val, why, sizeof(why)) != RP_OK) {
            if (s->secret)
                return rp_error_set(err, RP_EINVAL, "bad setting %s%s: %s", s->env,
                                    from_env ? "" : " (default)", why);
            char *red = rp_redact_url(val);
            int rc = rp_error_set(err, RP_EINVAL, "bad setting %s=\"%s\"%s: %s", s->env, red,
                                  from_env ? "" : " (default)", why);
            free(red);
            return rc;
        }
    }
    return RP_OK;
}

void rp_config_cleanup(const struct rp_setting *table, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (is_string_type(table[i].type) && table[i].out) {
            char **out = (char **)table[i].out;
            free(*out);
            *out = NULL;
        }
    }
}

static const char *type_hint(const struct rp_setting *s)
{
    switch (s->type) {
    case RP_SET_INT:
        return "integer";
    case RP_SET_BOOL:
        return "bool";
    case RP_SET_DURATION:
        return "duration";
    case RP_SET_ENUM:
        return s->choices;
    case RP_SET_AMQP_URLS:
        return "amqp URLs, comma-separated";
    case RP_SET_PG_CONNINFO:
        return "libpq conninfo";
    case RP_SET_MONGO_URI:
        return "mongodb URI";
    case RP_SET_LISTEN:
        return "host:port";
    default:
        return "string";
    }
}

void rp_config_print_help(FILE *out, const char *prog, const char *summary,
                          const struct rp_setting *table, size_t n)
{
    fprintf(out, "Usage: %s [--help] [--version]\n\n%s\n\n", prog, summary);
    fprintf(out, "Settings (environment variables):\n");
    for (size_t i = 0; i < n; i++) {
        const struct rp_setting *s = &table[i];
        fprintf(out, "  %-28s %s\n", s->env, s->help);
        fprintf(out, "  %-28s (%s; %s%s)\n", "", type_hint(s), s->def ? "default: " : "required",
                s->def ? (s->secret ? "***" : (*s->def ? s->def : "\"\"")) : "");
    }
}

/* Print `s` for a Markdown table cell: a '|' would end the cell. */
static void md_cell(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '|')
            fputc('\\', out);
        fputc(*s, out);
    }
}

void rp_config_print_markdown(FILE *out, const struct rp_setting *table, size_t n)
{
    fprintf(out, "| variable | type | default | meaning |\n|---|---|---|---|\n");
    for (size_t i = 0; i < n; i++) {
        const struct rp_setting *s = &table[i];
        fprintf(out, "| `%s` | ", s->env);
        md_cell(out, type_hint(s));
        fputs(" | ", out);
        if (!s->def)
            fputs("required", out);
        else if (s->secret)
            fputs("`***`", out);
        else if (!*s->def)
            fputs("(empty)", out);
        else {
            fputc('`', out);
            md_cell(out, s->def);
            fputc('`', out);
        }
        fputs(" | ", out);
        md_cell(out, s->help);
        fputs(" |\n", out);
    }
}

char *rp_redact_url(const char *url)
{
    struct rp_buf b;
    rp_buf_init(&b, 0);
    const char *p = url;
    while (*p) {
        const char *scheme = strstr(p, "://");
        const char *pw = strstr(p, "password=");
        if (pw && (!scheme || pw < scheme)) {
            (void)rp_buf_append(&b, p, (size_t)(pw - p) + 9);
            (void)rp_buf_append(&b, "***", 3);
            p = pw + 9;
            while (*p && !isspace((unsigned char)*p) && *p != '&')
                p++;
            continue;
        }
        if (!scheme) {
            (void)rp_buf_append(&b, p, strlen(p));
            break;
        }
        const char *auth = scheme + 3;
        const char *hostend = auth + strcspn(auth, "/?,");
        const char *at = NULL;
        for (const char *q = auth; q < hostend; q++)
            if (*q == '@')
                at = q;
        const char *colon = NULL;
        if (at)
            for (const char *q = auth; q < at; q++)
                if (*q == ':') {
                    colon = q;
                    break;
                }
        if (colon) {
            (void)rp_buf_append(&b, p, (size_t)(colon - p) + 1);
            (void)rp_buf_append(&b, "***", 3);
            p = at;
        } else {
            (void)rp_buf_append(&b, p, (size_t)(auth - p));
            p = auth;
        }
    }
    if (!b.data)
        return rp_xstrdup("");
    return b.data;
}
