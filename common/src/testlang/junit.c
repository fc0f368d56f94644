/* JUnit XML from result documents, the format CI systems (GitLab, Jenkins, GitHub actions'
 * reporters) read: a <testsuite> per run, a <testcase> per step (and per `each` iteration),
 * <failure> with every failed error-severity check and its message, <error> for a step that
 * could not run, warnings in <system-out>. */
#include <string.h>

#include "rampart/mem.h"
#include "rampart/testlang.h"

/* Append `s` escaped for XML text and attributes; control characters XML 1.0 forbids are
 * dropped. */
static void esc(struct rp_buf *b, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        switch (*p) {
        case '&':
            (void)rp_buf_append(b, "&amp;", 5);
            break;
        case '<':
            (void)rp_buf_append(b, "&lt;", 4);
            break;
        case '>':
            (void)rp_buf_append(b, "&gt;", 4);
            break;
        case '"':
            (void)rp_buf_append(b, "&quot;", 6);
            break;
        default:
            if (*p >= 0x20 || *p == '\n' || *p == '\t')
                (void)rp_buf_append(b, p, 1);
        }
    }
}

static int as_doc(const bson_iter_t *it, bson_t *out)
{
    const uint8_t *data;
    uint32_t len;
    if (!BSON_ITER_HOLDS_DOCUMENT(it))
        return 0;
    bson_iter_document(it, &len, &data);
    return bson_init_static(out, data, len);
}

/* Failed checks of a step as text, split into errors (`fail`) and warnings (`warn`). */
static void collect_checks(const bson_t *step, struct rp_buf *fail, int *nfail, struct rp_buf *warn)
{
    bson_iter_t it, arr;
    if (!bson_iter_init_find(&it, step, "assertions") || !BSON_ITER_HOLDS_ARRAY(&it) ||
        !bson_iter_recurse(&it, &arr))
        return;
    while (bson_iter_next(&arr)) {
        bson_t c;
        if (!as_doc(&arr, &c) || rp_doc_bool(&c, "passed", 0))
            continue;
        const char *sev = rp_doc_str(&c, "severity");
        int warning = sev && strcmp(sev, "warning") == 0;
        struct rp_buf *b = warning ? warn : fail;
        if (!warning)
            (*nfail)++;
        (void)rp_buf_printf(b, "%s%s\n    %s\n", warning ? "warning: " : "",
                            rp_doc_str(&c, "expr") ? rp_doc_str(&c, "expr") : "?",
                            rp_doc_str(&c, "message") ? rp_doc_str(&c, "message") : "");
    }
}

static void suite(struct rp_buf *out, const bson_t *r, int *tests, int *failures, int *errors)
{
    const char *name = rp_doc_str(r, "test");
    struct rp_buf cases, sysout;
    rp_buf_init(&cases, 0);
    rp_buf_init(&sysout, 0);
    int t = 0, f = 0, e = 0;
    bson_iter_t it, steps;
    if (bson_iter_init_find(&it, r, "steps") && BSON_ITER_HOLDS_ARRAY(&it) &&
        bson_iter_recurse(&it, &steps)) {
        int n = 0;
        while (bson_iter_next(&steps)) {
            bson_t s;
            n++;
            if (!as_doc(&steps, &s))
                continue;
            t++;
            char label[300];
            double iter = rp_doc_num(&s, "iteration", -1);
            const char *sname = rp_doc_str(&s, "name");
            if (iter >= 0)
                snprintf(label, sizeof(label), "step %d: %s [%.0f]", n, sname ? sname : "", iter);
            else
                snprintf(label, sizeof(label), "step %d: %s", n, sname ? sname : "");
            (void)rp_buf_append(&cases, "    <testcase classname=\"", 25);
            esc(&cases, name);
            (void)rp_buf_append(&cases, "\" name=\"", 8);
            esc(&cases, label);
            (void)rp_buf_printf(&cases, "\" time=\"%.3f\">\n",
                                rp_doc_num(&s, "timings.total", 0) / 1000.0);
            struct rp_buf fail, warn;
            rp_buf_init(&fail, 0);
            rp_buf_init(&warn, 0);
            int nfail = 0;
            collect_checks(&s, &fail, &nfail, &warn);
            const char *serr = rp_doc_str(&s, "error");
            if (rp_doc_bool(&s, "skipped", 0)) {
                (void)rp_buf_append(&cases, "      <skipped message=\"condition was false\"/>\n",
                                    47);
            } else if (serr) {
                e++;
                (void)rp_buf_append(&cases, "      <error message=\"", 22);
                esc(&cases, serr);
                (void)rp_buf_append(&cases, "\" type=\"error\">", 15);
                esc(&cases, serr);
                (void)rp_buf_append(&cases, "</error>\n", 9);
            } else if (nfail) {
                f++;
                (void)rp_buf_printf(&cases,
                                    "      <failure message=\"%d check%s failed\" "
                                    "type=\"assertion\">",
                                    nfail, nfail == 1 ? "" : "s");
                esc(&cases, fail.data);
                (void)rp_buf_append(&cases, "</failure>\n", 11);
            }
            if (warn.len) {
                (void)rp_buf_printf(&sysout, "%s:\n", label);
                (void)rp_buf_append(&sysout, warn.data, warn.len);
            }
            (void)rp_buf_append(&cases, "    </testcase>\n", 16);
            rp_buf_cleanup(&fail);
            rp_buf_cleanup(&warn);
        }
    }
    const char *rerr = rp_doc_str(r, "error");
    if (t == 0 || (rerr && e == 0)) { /* the run failed before or outside any step */
        t++;
        e += rerr ? 1 : 0;
        (void)rp_buf_append(&cases, "    <testcase classname=\"", 25);
        esc(&cases, name);
        (void)rp_buf_append(&cases, "\" name=\"run\" time=\"0\">\n", 23);
        if (rerr) {
            (void)rp_buf_append(&cases, "      <error message=\"", 22);
            esc(&cases, rerr);
            (void)rp_buf_append(&cases, "\" type=\"error\"/>\n", 17);
        }
        (void)rp_buf_append(&cases, "    </testcase>\n", 16);
    }
    (void)rp_buf_append(out, "  <testsuite name=\"", 19);
    esc(out, name);
    (void)rp_buf_printf(out, "\" tests=\"%d\" failures=\"%d\" errors=\"%d\" time=\"%.3f\"", t, f, e,
                        rp_doc_num(r, "duration_ms", 0) / 1000.0);
    const char *started = rp_doc_str(r, "started_at");
    if (started) {
        (void)rp_buf_append(out, " timestamp=\"", 12);
        esc(out, started);
        (void)rp_buf_append(out, "\"", 1);
    }
    (void)rp_buf_append(out, ">\n", 2);
    if (cases.len)
        (void)rp_buf_append(out, cases.data, cases.len);
    if (sysout.len) {
        (void)rp_buf_append(out, "    <system-out>", 16);
        esc(out, sysout.data);
        (void)rp_buf_append(out, "</system-out>\n", 14);
    }
    (void)rp_buf_append(out, "  </testsuite>\n", 15);
    rp_buf_cleanup(&cases);
    rp_buf_cleanup(&sysout);
    *tests += t;
    *failures += f;
    *errors += e;
}

int rp_junit_write(FILE *f, bson_t *const *results, size_t n, struct rp_error *err)
{
    struct rp_buf body;
    rp_buf_init(&body, 0);
    int tests = 0, failures = 0, errors = 0;
    double secs = 0;
    for (size_t i = 0; i < n; i++) {
        suite(&body, results[i], &tests, &failures, &errors);
        secs += rp_doc_num(results[i], "duration_ms", 0) / 1000.0;
    }
    int ok = fprintf(f,
                     "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                     "<testsuites name=\"rampart\" tests=\"%d\" failures=\"%d\" errors=\"%d\" "
                     "time=\"%.3f\">\n",
                     tests, failures, errors, secs) > 0;
    if (ok && body.len)
        ok = fwrite(body.data, 1, body.len, f) == body.len;
    if (ok)
        ok = fputs("</testsuites>\n", f) >= 0;
    rp_buf_cleanup(&body);
    if (!ok)
        return rp_error_set(err, RP_EIO, "writing JUnit XML failed");
    return RP_OK;
}
