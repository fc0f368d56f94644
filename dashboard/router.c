/* Matching a method and path against the route tables of the api_*.c files (listed in
 * dash_route_tables below). Patterns are literal segments and {name} placeholders; a
 * placeholder matches one non-empty segment. About sixty routes: a linear scan costs well
 * under a microsecond, less than any index would save. */
#include <string.h>

#include "dash.h"

const struct dash_route *const dash_route_tables[] = {
    dash_routes_session,      dash_routes_users,
    dash_routes_projects,     dash_routes_keys,
    dash_routes_environments, dash_routes_tests,
    dash_routes_schedules,    dash_routes_runs,
    dash_routes_ci,           dash_routes_channels,
    dash_routes_alert_rules,  dash_routes_maintenance,
    dash_routes_incidents,    dash_routes_audit,
    dash_routes_static,       NULL,
};

/* Match `pattern` against `path`; on success fill names/values (values point into `path`
 * with their lengths). */
static int match(const char *pattern, const char *path, const char **names, const char **vals,
                 size_t *lens, size_t *n)
{
    const char *p = pattern, *s = path;
    size_t k = 0;
    while (*p && *s) {
        if (*p != '/' || *s != '/')
            return 0;
        p++;
        s++;
        const char *pe = strchr(p, '/'), *se = strchr(s, '/');
        size_t pl = pe ? (size_t)(pe - p) : strlen(p), sl = se ? (size_t)(se - s) : strlen(s);
        if (pl >= 2 && p[0] == '{' && p[pl - 1] == '}') {
            if (sl == 0 || k >= DASH_MAX_PARAMS)
                return 0;
            names[k] = p + 1; /* up to the closing brace: copied by the caller */
            vals[k] = s;
            lens[k] = sl;
            k++;
        } else if (pl != sl || memcmp(p, s, pl) != 0) {
            return 0;
        }
        p += pl;
        s += sl;
    }
    if (*p || *s)
        return 0;
    *n = k;
    return 1;
}

const struct dash_route *dash_route_match(const char *method, const char *path, const char **names,
                                          char **values, size_t *n, int *path_known)
{
    const char *nm[DASH_MAX_PARAMS], *vals[DASH_MAX_PARAMS];
    size_t lens[DASH_MAX_PARAMS], k = 0;
    *path_known = 0;
    *n = 0;
    for (size_t t = 0; dash_route_tables[t]; t++) {
        for (const struct dash_route *rt = dash_route_tables[t]; rt->method; rt++) {
            if (!match(rt->pattern, path, nm, vals, lens, &k))
                continue;
            if (strcmp(rt->method, method) != 0 &&
                !(strcmp(method, "HEAD") == 0 && strcmp(rt->method, "GET") == 0)) {
                *path_known = 1;
                continue;
            }
            for (size_t i = 0; i < k; i++) {
                names[i] = nm[i]; /* "name}...": dash_param compares up to the brace */
                values[i] = rp_xstrndup(vals[i], lens[i]);
            }
            *n = k;
            return rt;
        }
    }
    return NULL;
}

void dash_route_allowed(const char *path, char *out, size_t cap)
{
    const char *nm[DASH_MAX_PARAMS], *vals[DASH_MAX_PARAMS];
    size_t lens[DASH_MAX_PARAMS], k = 0, len = 0;
    out[0] = '\0';
    for (size_t t = 0; dash_route_tables[t]; t++) {
        for (const struct dash_route *rt = dash_route_tables[t]; rt->method; rt++) {
            if (!match(rt->pattern, path, nm, vals, lens, &k))
                continue;
            int is_get = strcmp(rt->method, "GET") == 0;
            int n = snprintf(out + len, cap - len, "%s%s%s", len ? ", " : "", rt->method,
                             is_get ? ", HEAD" : "");
            if (n < 0 || (size_t)n >= cap - len)
                return;
            len += (size_t)n;
        }
    }
}
