/* Prometheus metrics: a registry of families (counters, gauges, histograms), each with a fixed
 * set of label names, rendered in the text exposition format 0.0.4 for GET /metrics.
 * A family holds one series per combination of label values; callers that update a series on
 * a hot path look it up once (rp_metric_series) and keep the pointer. Updates are thread-safe:
 * counters and gauges are lock-free atomics, a histogram observation takes its family's mutex
 * so that buckets, _sum and _count are always rendered consistently. */
#ifndef RAMPART_METRICS_H
#define RAMPART_METRICS_H

#include <stddef.h>

#include "rampart/error.h"

struct rp_buf;
struct rp_metrics; /* a registry */
struct rp_metric;  /* a family: one name, help, type and label names */
struct rp_series;  /* one time series: a family plus one value per label */

enum rp_metric_type { RP_METRIC_COUNTER, RP_METRIC_GAUGE, RP_METRIC_HISTOGRAM };

/* Label names per family, and series per family; label values usually come from code, but a
 * family whose values come from outside input must map them onto a small set itself. Past
 * RP_METRICS_MAX_SERIES, new series are dropped (updates go to a sink that is not rendered). */
#define RP_METRICS_MAX_LABELS 4
#define RP_METRICS_MAX_SERIES 1000
/* Prometheus' default buckets, in seconds: 5 ms .. 10 s. */
#define RP_METRICS_DEFAULT_BUCKETS                                                                 \
    {                                                                                              \
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10                                    \
    }

/* A new empty registry. Free with rp_metrics_free (which accepts NULL); every family and
 * series pointer obtained from it dies with it. */
struct rp_metrics *rp_metrics_new(void);
void rp_metrics_free(struct rp_metrics *r);

/* The process-wide registry that services and common modules (pg, amqp, health) register
 * into; created on first use, lives until exit. Thread-safe. */
struct rp_metrics *rp_metrics_default(void);

/* Register a family, or return the existing one when a family of that name, type and labels
 * is already registered (so modules may register idempotently). `labels` is a comma-separated
 * list of label names ("path,code") or NULL for none. `name` and labels must match
 * [a-zA-Z_:][a-zA-Z0-9_:]*; a bad name, too many labels or a conflicting re-registration is a
 * programming error and aborts. A family without labels has its one series from the start,
 * so it renders 0 before the first update. Thread-safe; the family lives as long as `r`. */
struct rp_metric *rp_metrics_counter(struct rp_metrics *r, const char *name, const char *help,
                                     const char *labels);
struct rp_metric *rp_metrics_gauge(struct rp_metrics *r, const char *name, const char *help,
                                   const char *labels);
/* `bounds` are the upper bounds of the buckets, strictly increasing, without +Inf (added by
 * the renderer); NULL/0 means RP_METRICS_DEFAULT_BUCKETS. The array is copied. */
struct rp_metric *rp_metrics_histogram(struct rp_metrics *r, const char *name, const char *help,
                                       const char *labels, const double *bounds, size_t nbounds);

/* The series of `m` for the label values `values` (NULL-terminated array, one value per label
 * name; NULL for a family without labels). Created on first use; values are copied and may be
 * any UTF-8 text (escaped at render time). A wrong number of values aborts. Thread-safe; the
 * pointer stays valid as long as the registry. */
struct rp_series *rp_metric_series(struct rp_metric *m, const char *const *values);
/* rp_metric_labels(m, "GET", "200"): the same with the values as arguments. */
#define rp_metric_labels(m, ...) rp_metric_series((m), (const char *const[]){__VA_ARGS__, NULL})

/* Counters: add a non-negative amount (a negative one is ignored). Gauges: add any amount.
 * Thread-safe, lock-free. */
void rp_series_add(struct rp_series *s, double v);
static inline void rp_series_inc(struct rp_series *s)
{
    rp_series_add(s, 1);
}
/* Gauges: set the value. Also allowed on counters, to mirror a monotonic value kept elsewhere
 * (CPU seconds from the kernel) from a collector. Thread-safe, lock-free. */
void rp_series_set(struct rp_series *s, double v);
/* Histograms: record one observation. Thread-safe. */
void rp_series_observe(struct rp_series *s, double v);
/* Current value of a counter or gauge; a histogram's _count. For tests and readiness. */
double rp_series_value(struct rp_series *s);

/* Called at the start of every rendering, to refresh gauges that are cheaper to read on
 * demand (memory, queue depth). Runs on the rendering thread, must not block for long. At most
 * 16 collectors per registry; more is a programming error and aborts. */
typedef void (*rp_metrics_collect_fn)(struct rp_metrics *r, void *ud);
void rp_metrics_add_collector(struct rp_metrics *r, rp_metrics_collect_fn fn, void *ud);

/* Register the standard process metrics: process_start_time_seconds,
 * process_cpu_seconds_total, process_resident_memory_bytes, process_open_fds, and
 * rampart_build_info{service,version} 1. Call once per registry. */
void rp_metrics_add_process(struct rp_metrics *r, const char *service, const char *version);

/* Append the whole registry to `out` in the Prometheus text format (version 0.0.4): families in
 * registration order, each with # HELP and # TYPE, series in creation order. Returns RP_OK or
 * RP_ENOMEM when `out` reaches its cap (its content is then incomplete). Thread-safe. */
int rp_metrics_render(struct rp_metrics *r, struct rp_buf *out) RP_MUST_CHECK;

#endif
