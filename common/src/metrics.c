/* Prometheus registry and text-format renderer. Families form an append-only list under the
 * registry mutex; each family's series form an append-only list under the family mutex, which
 * also guards histogram buckets. Counter and gauge values are doubles stored as their bit
 * pattern in a 64-bit atomic and updated with a compare-and-swap loop, so a hot counter costs
 * no lock. Nothing is ever removed before rp_metrics_free, so series pointers stay valid. */
#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "rampart/log.h"
#include "rampart/mem.h"
#include "rampart/metrics.h"

#define MAX_COLLECTORS 16

struct rp_series {
    struct rp_series *next;
    struct rp_metric *family;
    char **values;         /* one per label name */
    _Atomic uint64_t bits; /* counter/gauge value, a double's bit pattern */
    uint64_t *buckets;     /* histogram: per-bucket counts (not cumulative), nbounds + 1 */
    double sum;            /* histogram, under family->lock */
    uint64_t count;        /* histogram, under family->lock */
};

struct rp_metric {
    struct rp_metric *next;
    char *name;
    char *help;
    enum rp_metric_type type;
    size_t nlabels;
    char *labels[RP_METRICS_MAX_LABELS];
    double *bounds;
    size_t nbounds;
    pthread_mutex_t lock;
    struct rp_series *series, **series_tail;
    size_t nseries;
    struct rp_series sink; /* target of updates past RP_METRICS_MAX_SERIES; never rendered */
    int warned;
};

struct rp_metrics {
    pthread_mutex_t lock;
    struct rp_metric *families, **tail;
    struct {
        rp_metrics_collect_fn fn;
        void *ud;
    } collectors[MAX_COLLECTORS];
    size_t ncollectors;
};

static void die(const char *what, const char *name)
{
    fprintf(stderr, "{\"level\":\"fatal\",\"msg\":\"metrics: %s: %s\"}\n", what, name);
    abort();
}

static uint64_t d2u(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof(u));
    return u;
}

static double u2d(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof(d));
    return d;
}

struct rp_metrics *rp_metrics_new(void)
{
    struct rp_metrics *r = rp_xcalloc(1, sizeof(*r));
    pthread_mutex_init(&r->lock, NULL);
    r->tail = &r->families;
    return r;
}

static void series_free(struct rp_series *s, size_t nlabels)
{
    if (s->values)
        for (size_t i = 0; i < nlabels; i++)
            free(s->values[i]);
    free(s->values);
    free(s->buckets);
}

void rp_metrics_free(struct rp_metrics *r)
{
    if (!r)
        return;
    struct rp_metric *m = r->families;
    while (m) {
        struct rp_metric *next = m->next;
        struct rp_series *s = m->series;
        while (s) {
            struct rp_series *snext = s->next;
            series_free(s, m->nlabels);
            free(s);
            s = snext;
        }
        free(m->sink.buckets);
        for (size_t i = 0; i < m->nlabels; i++)
            free(m->labels[i]);
        free(m->name);
        free(m->help);
        free(m->bounds);
        pthread_mutex_destroy(&m->lock);
        free(m);
        m = next;
    }
    pthread_mutex_destroy(&r->lock);
    free(r);
}

static struct rp_metrics *default_registry;
static pthread_once_t default_once = PTHREAD_ONCE_INIT;

static void default_init(void)
{
    default_registry = rp_metrics_new();
}

struct rp_metrics *rp_metrics_default(void)
{
    pthread_once(&default_once, default_init);
    return default_registry;
}

static int valid_name(const char *s, size_t len)
{
    if (len == 0)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        int alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
        if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
            return 0;
    }
    return 1;
}

/* Split "a,b" into label names; returns the count. Aborts on a bad name or too many. */
static size_t parse_labels(const char *labels, char **out, const char *family)
{
    size_t n = 0;
    for (const char *p = labels; p && *p;) {
        size_t len = strcspn(p, ",");
        if (n == RP_METRICS_MAX_LABELS)
            die("too many labels", family);
        if (!valid_name(p, len) || memchr(p, ':', len) || (len == 2 && strncmp(p, "le", 2) == 0))
            die("bad label name", family);
        out[n++] = rp_xstrndup(p, len);
        p += len + (p[len] == ',');
    }
    return n;
}

static void series_init(struct rp_metric *m, struct rp_series *s)
{
    s->family = m;
    atomic_init(&s->bits, d2u(0.0));
    if (m->type == RP_METRIC_HISTOGRAM)
        s->buckets = rp_xcalloc(m->nbounds + 1, sizeof(uint64_t));
}

static int same_shape(const struct rp_metric *m, enum rp_metric_type type, size_t nlabels,
                      char **labels, const double *bounds, size_t nbounds)
{
    if (m->type != type || m->nlabels != nlabels)
        return 0;
    for (size_t i = 0; i < nlabels; i++)
        if (strcmp(m->labels[i], labels[i]) != 0)
            return 0;
    if (type == RP_METRIC_HISTOGRAM &&
        (m->nbounds != nbounds || memcmp(m->bounds, bounds, nbounds * sizeof(double)) != 0))
        return 0;
    return 1;
}

static struct rp_metric *add_family(struct rp_metrics *r, const char *name, const char *help,
                                    enum rp_metric_type type, const char *labels,
                                    const double *bounds, size_t nbounds)
{
    static const double defaults[] = RP_METRICS_DEFAULT_BUCKETS;
    if (!name || !valid_name(name, strlen(name)))
        die("bad metric name", name ? name : "(null)");
    if (type == RP_METRIC_HISTOGRAM && (!bounds || !nbounds)) {
        bounds = defaults;
        nbounds = sizeof(defaults) / sizeof(defaults[0]);
    }
    for (size_t i = 1; i < nbounds; i++)
        if (!(bounds[i] > bounds[i - 1]))
            die("histogram bounds must increase", name);

    char *lab[RP_METRICS_MAX_LABELS] = {0};
    size_t nlab = parse_labels(labels, lab, name);

    pthread_mutex_lock(&r->lock);
    struct rp_metric *m;
    for (m = r->families; m; m = m->next) {
        if (strcmp(m->name, name) == 0) {
            if (!same_shape(m, type, nlab, lab, bounds, nbounds))
                die("registered twice with a different type or labels", name);
            break;
        }
    }
    if (m) {
        pthread_mutex_unlock(&r->lock);
        for (size_t i = 0; i < nlab; i++)
            free(lab[i]);
        return m;
    }
    m = rp_xcalloc(1, sizeof(*m));
    m->name = rp_xstrdup(name);
    m->help = rp_xstrdup(help ? help : "");
    m->type = type;
    m->nlabels = nlab;
    memcpy(m->labels, lab, sizeof(lab));
    if (type == RP_METRIC_HISTOGRAM) {
        m->nbounds = nbounds;
        m->bounds = rp_xmalloc(nbounds * sizeof(double));
        memcpy(m->bounds, bounds, nbounds * sizeof(double));
    }
    pthread_mutex_init(&m->lock, NULL);
    m->series_tail = &m->series;
    series_init(m, &m->sink);
    if (nlab == 0) {
        struct rp_series *s = rp_xcalloc(1, sizeof(*s));
        series_init(m, s);
        m->series = s;
        m->series_tail = &s->next;
        m->nseries = 1;
    }
    *r->tail = m;
    r->tail = &m->next;
    pthread_mutex_unlock(&r->lock);
    return m;
}

struct rp_metric *rp_metrics_counter(struct rp_metrics *r, const char *name, const char *help,
                                     const char *labels)
{
    return add_family(r, name, help, RP_METRIC_COUNTER, labels, NULL, 0);
}

struct rp_metric *rp_metrics_gauge(struct rp_metrics *r, const char *name, const char *help,
                                   const char *labels)
{
    return add_family(r, name, help, RP_METRIC_GAUGE, labels, NULL, 0);
}

struct rp_metric *rp_metrics_histogram(struct rp_metrics *r, const char *name, const char *help,
                                       const char *labels, const double *bounds, size_t nbounds)
{
    return add_family(r, name, help, RP_METRIC_HISTOGRAM, labels, bounds, nbounds);
}

struct rp_series *rp_metric_series(struct rp_metric *m, const char *const *values)
{
    size_t n = 0;
    while (values && values[n])
        n++;
    if (n != m->nlabels)
        die("wrong number of label values", m->name);

    pthread_mutex_lock(&m->lock);
    struct rp_series *s;
    for (s = m->series; s; s = s->next) {
        size_t i = 0;
        while (i < n && strcmp(s->values[i], values[i]) == 0)
            i++;
        if (i == n)
            break;
    }
    if (!s && m->nseries >= RP_METRICS_MAX_SERIES) {
        if (!m->warned)
            rp_err("metrics: %s has %d series; new ones are dropped", m->name,
                   RP_METRICS_MAX_SERIES);
        m->warned = 1;
        s = &m->sink;
    }
    if (!s) {
        s = rp_xcalloc(1, sizeof(*s));
        series_init(m, s);
        s->values = rp_xcalloc(n ? n : 1, sizeof(char *));
        for (size_t i = 0; i < n; i++)
            s->values[i] = rp_xstrdup(values[i]);
        *m->series_tail = s;
        m->series_tail = &s->next;
        m->nseries++;
    }
    pthread_mutex_unlock(&m->lock);
    return s;
}

void rp_series_add(struct rp_series *s, double v)
{
    if (s->family->type == RP_METRIC_HISTOGRAM)
        return;
    if (s->family->type == RP_METRIC_COUNTER && !(v >= 0))
        return;
    uint64_t old = atomic_load_explicit(&s->bits, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&s->bits, &old, d2u(u2d(old) + v),
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

void rp_series_set(struct rp_series *s, double v)
{
    if (s->family->type != RP_METRIC_HISTOGRAM)
        atomic_store_explicit(&s->bits, d2u(v), memory_order_relaxed);
}

void rp_series_observe(struct rp_series *s, double v)
{
    struct rp_metric *m = s->family;
    if (m->type != RP_METRIC_HISTOGRAM)
        return;
    size_t i = 0;
    while (i < m->nbounds && !(v <= m->bounds[i]))
        i++;
    pthread_mutex_lock(&m->lock);
    s->buckets[i]++;
    s->sum += v;
    s->count++;
    pthread_mutex_unlock(&m->lock);
}

double rp_series_value(struct rp_series *s)
{
    if (s->family->type != RP_METRIC_HISTOGRAM)
        return u2d(atomic_load_explicit(&s->bits, memory_order_relaxed));
    pthread_mutex_lock(&s->family->lock);
    double c = (double)s->count;
    pthread_mutex_unlock(&s->family->lock);
    return c;
}

void rp_metrics_add_collector(struct rp_metrics *r, rp_metrics_collect_fn fn, void *ud)
{
    pthread_mutex_lock(&r->lock);
    if (r->ncollectors == MAX_COLLECTORS)
        die("too many collectors", "rp_metrics_add_collector");
    r->collectors[r->ncollectors].fn = fn;
    r->collectors[r->ncollectors].ud = ud;
    r->ncollectors++;
    pthread_mutex_unlock(&r->lock);
}

/* --- process metrics ------------------------------------------------------------------- */

static void collect_process(struct rp_metrics *r, void *ud)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                     (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
        rp_series_set(rp_metric_series(rp_metrics_counter(r, "process_cpu_seconds_total",
                                                          "Total user and system CPU time "
                                                          "spent in seconds.",
                                                          NULL),
                                       NULL),
                      cpu);
    }
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        unsigned long size, rss;
        if (fscanf(f, "%lu %lu", &size, &rss) == 2)
            rp_series_set(rp_metric_series(rp_metrics_gauge(r, "process_resident_memory_bytes",
                                                            "Resident memory size in bytes.", NULL),
                                           NULL),
                          (double)rss * (double)sysconf(_SC_PAGESIZE));
        fclose(f);
    }
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        long n = -1; /* the directory stream itself holds one descriptor */
        const struct dirent *e;
        while ((e = readdir(d)))
            if (e->d_name[0] != '.')
                n++;
        closedir(d);
        rp_series_set(rp_metric_series(rp_metrics_gauge(r, "process_open_fds",
                                                        "Number of open file descriptors.", NULL),
                                       NULL),
                      (double)n);
    }
}

void rp_metrics_add_process(struct rp_metrics *r, const char *service, const char *version)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct rp_metric *start =
        rp_metrics_gauge(r, "process_start_time_seconds",
                         "Start time of the process since unix epoch in seconds.", NULL);
    rp_series_set(rp_metric_series(start, NULL), (double)now.tv_sec);
    struct rp_metric *info =
        rp_metrics_gauge(r, "rampart_build_info",
                         "Always 1; labels name the service and its version.", "service,version");
    rp_series_set(rp_metric_labels(info, service, version), 1);
    rp_metrics_add_collector(r, collect_process, NULL);
    collect_process(r, NULL); /* registers the families now, so their order is stable */
}

/* --- rendering ------------------------------------------------------------------------- */

/* Shortest of %.15g / %.17g that reads back exactly; Prometheus' spelling of infinities. */
static void fmt_double(char *buf, size_t len, double v)
{
    if (isnan(v))
        snprintf(buf, len, "NaN");
    else if (isinf(v))
        snprintf(buf, len, "%s", v > 0 ? "+Inf" : "-Inf");
    else if (snprintf(buf, len, "%.15g", v), strtod(buf, NULL) != v)
        snprintf(buf, len, "%.17g", v);
}

static int put_value(struct rp_buf *out, double v)
{
    char tmp[40];
    fmt_double(tmp, sizeof(tmp), v);
    return rp_buf_append(out, tmp, strlen(tmp));
}

/* Escape `s` for a label value (\\, \", \n) or, with quotes = 0, for HELP text (\\, \n). */
static int put_escaped(struct rp_buf *out, const char *s, int quotes)
{
    int rc = RP_OK;
    for (const char *p = s; *p && rc == RP_OK; p++) {
        if (*p == '\\')
            rc = rp_buf_append(out, "\\\\", 2);
        else if (*p == '\n')
            rc = rp_buf_append(out, "\\n", 2);
        else if (*p == '"' && quotes)
            rc = rp_buf_append(out, "\\\"", 2);
        else
            rc = rp_buf_append(out, p, 1);
    }
    return rc;
}

/* name{l1="v1",...,le="x"} — `le` may be NULL. */
static int put_series_name(struct rp_buf *out, const struct rp_metric *m, const char *suffix,
                           const struct rp_series *s, const char *le)
{
    int rc = rp_buf_printf(out, "%s%s", m->name, suffix);
    if (rc == RP_OK && (m->nlabels || le)) {
        rc = rp_buf_append(out, "{", 1);
        for (size_t i = 0; i < m->nlabels && rc == RP_OK; i++) {
            rc = rp_buf_printf(out, "%s%s=\"", i ? "," : "", m->labels[i]);
            if (rc == RP_OK)
                rc = put_escaped(out, s->values[i], 1);
            if (rc == RP_OK)
                rc = rp_buf_append(out, "\"", 1);
        }
        if (le && rc == RP_OK)
            rc = rp_buf_printf(out, "%sle=\"%s\"", m->nlabels ? "," : "", le);
        if (rc == RP_OK)
            rc = rp_buf_append(out, "}", 1);
    }
    return rc == RP_OK ? rp_buf_append(out, " ", 1) : rc;
}

static int render_histogram(struct rp_buf *out, const struct rp_metric *m,
                            const struct rp_series *s)
{
    int rc = RP_OK;
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= m->nbounds && rc == RP_OK; i++) {
        char le[40];
        fmt_double(le, sizeof(le), i < m->nbounds ? m->bounds[i] : INFINITY);
        cumulative += s->buckets[i];
        if (rc == RP_OK)
            rc = put_series_name(out, m, "_bucket", s, le);
        if (rc == RP_OK)
            rc = rp_buf_printf(out, "%llu\n", (unsigned long long)cumulative);
    }
    if (rc == RP_OK)
        rc = put_series_name(out, m, "_sum", s, NULL);
    if (rc == RP_OK)
        rc = put_value(out, s->sum);
    if (rc == RP_OK)
        rc = rp_buf_append(out, "\n", 1);
    if (rc == RP_OK)
        rc = put_series_name(out, m, "_count", s, NULL);
    if (rc == RP_OK)
        rc = rp_buf_printf(out, "%llu\n", (unsigned long long)s->count);
    return rc;
}

static int render_family(struct rp_buf *out, struct rp_metric *m)
{
    static const char *types[] = {"counter", "gauge", "histogram"};
    int rc = rp_buf_printf(out, "# HELP %s ", m->name);
    if (rc == RP_OK)
        rc = put_escaped(out, m->help, 0);
    if (rc == RP_OK)
        rc = rp_buf_printf(out, "\n# TYPE %s %s\n", m->name, types[m->type]);
    pthread_mutex_lock(&m->lock);
    for (const struct rp_series *s = m->series; s && rc == RP_OK; s = s->next) {
        if (m->type == RP_METRIC_HISTOGRAM) {
            rc = render_histogram(out, m, s);
            continue;
        }
        rc = put_series_name(out, m, "", s, NULL);
        if (rc == RP_OK)
            rc = put_value(out, u2d(atomic_load_explicit(&s->bits, memory_order_relaxed)));
        if (rc == RP_OK)
            rc = rp_buf_append(out, "\n", 1);
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}

int rp_metrics_render(struct rp_metrics *r, struct rp_buf *out)
{
    struct {
        rp_metrics_collect_fn fn;
        void *ud;
    } coll[MAX_COLLECTORS];
    pthread_mutex_lock(&r->lock);
    size_t ncoll = r->ncollectors;
    memcpy(coll, r->collectors, ncoll * sizeof(coll[0]));
    pthread_mutex_unlock(&r->lock);
    for (size_t i = 0; i < ncoll; i++)
        coll[i].fn(r, coll[i].ud);

    /* Lock order: registry, then family (rp_metric_series takes only the family lock). */
    int rc = RP_OK;
    pthread_mutex_lock(&r->lock);
    for (struct rp_metric *m = r->families; m && rc == RP_OK; m = m->next)
        rc = render_family(out, m);
    pthread_mutex_unlock(&r->lock);
    return rc;
}
