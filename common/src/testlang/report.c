/* Reading result documents (the worker engine's BSON, fields in docs/tests.md) and printing them
 * for people: one status line per run, then the steps and checks of a run that did not pass, so
 * the terminal says exactly what failed and why. Used by the worker's `run` command and the JUnit
 * writer. */
#include <string.h>

#include "rampart/testlang.h"

static int find(const bson_t *doc, const char *dotted, bson_iter_t *it)
{
    bson_iter_t top;
    return doc && bson_iter_init(&top, doc) && bson_iter_find_descendant(&top, dotted, it);
}

const char *rp_doc_str(const bson_t *doc, const char *dotted)
{
    bson_iter_t it;
    if (!find(doc, dotted, &it) || !BSON_ITER_HOLDS_UTF8(&it))
        return NULL;
    return bson_iter_utf8(&it, NULL);
}

double rp_doc_num(const bson_t *doc, const char *dotted, double def)
{
    bson_iter_t it;
    if (!find(doc, dotted, &it) || !BSON_ITER_HOLDS_NUMBER(&it))
        return def;
    return bson_iter_as_double(&it);
}

int rp_doc_bool(const bson_t *doc, const char *dotted, int def)
{
    bson_iter_t it;
    if (!find(doc, dotted, &it) || !BSON_ITER_HOLDS_BOOL(&it))
        return def;
    return bson_iter_bool(&it);
}

#define C_RED    "\033[31m"
#define C_GREEN  "\033[32m"
#define C_YELLOW "\033[33m"
#define C_DIM    "\033[2m"
#define C_OFF    "\033[0m"

static const char *col(int color, const char *c)
{
    return color ? c : "";
}

/* Print the checks (assertions array) of one step. */
static void print_checks(FILE *f, const bson_t *step, int detail, int color)
{
    bson_iter_t it, arr;
    if (!find(step, "assertions", &it) || !BSON_ITER_HOLDS_ARRAY(&it) ||
        !bson_iter_recurse(&it, &arr))
        return;
    while (bson_iter_next(&arr)) {
        bson_t check;
        const uint8_t *data;
        uint32_t len;
        if (!BSON_ITER_HOLDS_DOCUMENT(&arr))
            continue;
        bson_iter_document(&arr, &len, &data);
        if (!bson_init_static(&check, data, len))
            continue;
        int passed = rp_doc_bool(&check, "passed", 0);
        const char *sev = rp_doc_str(&check, "severity");
        int warning = sev && strcmp(sev, "warning") == 0;
        const char *expr = rp_doc_str(&check, "expr");
        const char *msg = rp_doc_str(&check, "message");
        if (passed && !detail)
            continue;
        if (passed)
            fprintf(f, "      %sok%s    %s\n", col(color, C_GREEN), col(color, C_OFF),
                    expr ? expr : "?");
        else
            fprintf(f, "      %s%s%s  %s\n             %s\n",
                    col(color, warning ? C_YELLOW : C_RED), warning ? "WARN" : "FAIL",
                    col(color, C_OFF), expr ? expr : "?", msg ? msg : "");
    }
}

void rp_report_print(FILE *f, const bson_t *result, int detail, int color)
{
    const char *status = rp_doc_str(result, "status");
    const char *name = rp_doc_str(result, "test");
    int passed = status && strcmp(status, "passed") == 0;
    int failed = status && strcmp(status, "failed") == 0;
    const char *c = passed ? C_GREEN : failed ? C_RED : C_YELLOW;
    fprintf(f, "%s%-6s%s %s  %s(%.0f ms, %.0f checks, %.0f failed, %.0f warnings)%s\n",
            col(color, c),
            passed   ? "PASS"
            : failed ? "FAIL"
                     : "ERROR",
            col(color, C_OFF), name ? name : "?", col(color, C_DIM),
            rp_doc_num(result, "duration_ms", 0), rp_doc_num(result, "counts.assertions", 0),
            rp_doc_num(result, "counts.failed", 0), rp_doc_num(result, "counts.warnings", 0),
            col(color, C_OFF));
    const char *error = rp_doc_str(result, "error");
    if (error)
        fprintf(f, "       %serror:%s %s\n", col(color, C_YELLOW), col(color, C_OFF), error);
    if (passed && !detail && rp_doc_num(result, "counts.warnings", 0) == 0)
        return;

    bson_iter_t it, steps;
    if (!find(result, "steps", &it) || !BSON_ITER_HOLDS_ARRAY(&it) ||
        !bson_iter_recurse(&it, &steps))
        return;
    int n = 0;
    while (bson_iter_next(&steps)) {
        bson_t step;
        const uint8_t *data;
        uint32_t len;
        n++;
        if (!BSON_ITER_HOLDS_DOCUMENT(&steps))
            continue;
        bson_iter_document(&steps, &len, &data);
        if (!bson_init_static(&step, data, len))
            continue;
        const char *sname = rp_doc_str(&step, "name");
        double iter = rp_doc_num(&step, "iteration", -1);
        char label[64] = "";
        if (iter >= 0)
            snprintf(label, sizeof(label), " [%.0f]", iter);
        if (rp_doc_bool(&step, "skipped", 0)) {
            fprintf(f, "   %sstep %d \"%s\"%s: skipped%s\n", col(color, C_DIM), n,
                    sname ? sname : "", label, col(color, C_OFF));
            continue;
        }
        const char *method = rp_doc_str(&step, "request.method");
        const char *url = rp_doc_str(&step, "request.url");
        double st = rp_doc_num(&step, "response.status", 0);
        fprintf(f, "   step %d \"%s\"%s: %s %s -> %.0f (%.1f ms)\n", n, sname ? sname : "", label,
                method ? method : "?", url ? url : "?", st, rp_doc_num(&step, "timings.total", 0));
        const char *serr = rp_doc_str(&step, "error");
        if (serr)
            fprintf(f, "      %sERROR%s %s\n", col(color, C_YELLOW), col(color, C_OFF), serr);
        print_checks(f, &step, detail, color);
    }
}
