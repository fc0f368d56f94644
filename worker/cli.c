/* `rampart-worker run FILE...`: runs test definitions locally, as a developer or a CI job
 * would, on the same engine the service uses. Readable output (what failed and why), a summary
 * with rates, optional JUnit XML and JSON results, exit code 0 (all passed), 1 (a test failed)
 * or 2 (bad usage, a bad definition, or a run that could not run). */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "rampart/log.h"
#include "rampart/mem.h"
#include "worker.h"

#define MAX_FILE_BYTES (4L * 1024 * 1024)
#define MAX_PRINTED    20 /* detailed reports of failing runs before the rest is only counted */

static const char usage[] =
    "Usage: rampart-worker run FILE... [options]\n"
    "\n"
    "Runs API test definitions (JSON, see docs/tests.md) and reports what failed and why.\n"
    "Exit code: 0 all passed, 1 a test failed, 2 bad usage / bad definition / could not run.\n"
    "\n"
    "Options:\n"
    "  --env FILE          environment variables (JSON object, or {\"variables\": {...}})\n"
    "  --var NAME=VALUE    override a variable (repeatable); --secret-var hides the value\n"
    "  --secret-var NAME=VALUE\n"
    "  --junit FILE        write JUnit XML (one testsuite per run, one testcase per step)\n"
    "  --json FILE         write every result document as a JSON array\n"
    "  --concurrency N     runs in flight at once (default 10, at most 10000)\n"
    "  --repeat N          run each test N times (default 1)\n"
    "  --body-cap BYTES    response bytes kept per step (default 1048576)\n"
    "  --detail            print every step and check, also of passing runs\n"
    "  --quiet             print only the summary (and failures' first lines)\n"
    "  --no-color          no ANSI colors (also when NO_COLOR is set or not a terminal)\n"
    "  --help              this text\n";

struct cli {
    struct rp_test **tests;
    char **files;
    size_t n_tests;
    struct rp_vars *vars;
    long concurrency, repeat;
    size_t body_cap;
    const char *junit, *json;
    int detail, quiet, color, progress;
    /* results */
    bson_t **kept;
    size_t n_kept, cap_kept;
    size_t done, passed, failed, errors, printed;
    double checks, check_failures, warnings;
};

static int read_file(const char *path, char **out, size_t *len, struct rp_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return rp_error_set(err, RP_ENOENT, "%s: cannot open: %s", path, strerror(errno));
    struct rp_buf b;
    rp_buf_init(&b, MAX_FILE_BYTES);
    char chunk[65536];
    size_t n;
    int rc = RP_OK;
    while (rc == RP_OK && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        rc = rp_buf_append(&b, chunk, n);
    int bad = ferror(f);
    fclose(f);
    if (rc != RP_OK) {
        rp_buf_cleanup(&b);
        return rp_error_set(err, RP_EINVAL, "%s: larger than %ld bytes", path, MAX_FILE_BYTES);
    }
    if (bad) {
        rp_buf_cleanup(&b);
        return rp_error_set(err, RP_EIO, "%s: read error", path);
    }
    *out = b.data ? b.data : rp_xstrdup("");
    *len = b.len;
    return RP_OK;
}

static int load_env(struct cli *c, const char *path, struct rp_error *err)
{
    char *text = NULL;
    size_t len;
    bson_t *doc = NULL;
    int rc = read_file(path, &text, &len, err);
    if (rc != RP_OK)
        return rc;
    struct rp_error perr;
    rc = rp_json_parse(text, len, MAX_FILE_BYTES, &doc, &perr);
    if (rc != RP_OK) {
        rc = rp_error_set(err, RP_EINVAL, "%s: %s", path, perr.msg);
        goto out;
    }
    bson_iter_t root, inner;
    if (rp_json_root(doc, &root) != RP_OK || !BSON_ITER_HOLDS_DOCUMENT(&root)) {
        rc = rp_error_set(err, RP_EINVAL, "%s: expected a JSON object of variables", path);
        goto out;
    }
    /* {"variables": {...}} or the variables themselves */
    bson_iter_t probe;
    if (bson_iter_recurse(&root, &probe) && bson_iter_find(&probe, "variables") &&
        BSON_ITER_HOLDS_DOCUMENT(&probe))
        inner = probe;
    else
        inner = root;
    rc = rp_vars_load_object(c->vars, RP_LAYER_ENVIRONMENT, &inner, &perr);
    if (rc != RP_OK)
        rc = rp_error_set(err, RP_EINVAL, "%s: %s", path, perr.msg);
out:
    bson_destroy(doc);
    free(text);
    return rc;
}

static int set_var(struct cli *c, const char *arg, int secret, struct rp_error *err)
{
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg)
        return rp_error_set(err, RP_EINVAL, "--%svar %s: expected NAME=VALUE",
                            secret ? "secret-" : "", secret ? "(hidden)" : arg);
    char *name = rp_xstrndup(arg, (size_t)(eq - arg));
    int rc = rp_vars_set_string(c->vars, RP_LAYER_OVERRIDE, name, eq + 1, secret);
    if (rc != RP_OK)
        rc = rp_error_set(err, rc, "--%svar: bad variable name \"%s\"", secret ? "secret-" : "",
                          name);
    free(name);
    return rc;
}

static long parse_count(const char *opt, const char *v, long max, struct rp_error *err, int *bad)
{
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || end == v || *end || n < 1 || n > max) {
        rp_error_set(err, RP_EINVAL, "%s %s: expected a number from 1 to %ld", opt, v, max);
        *bad = 1;
    }
    return n;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void on_done(void *ud, const char *run_id, bson_t *result)
{
    struct cli *c = ud;
    (void)run_id;
    const char *status = rp_doc_str(result, "status");
    int passed = status && strcmp(status, "passed") == 0;
    int failed = status && strcmp(status, "failed") == 0;
    c->done++;
    if (passed)
        c->passed++;
    else if (failed)
        c->failed++;
    else
        c->errors++;
    c->checks += rp_doc_num(result, "counts.assertions", 0);
    c->check_failures += rp_doc_num(result, "counts.failed", 0);
    c->warnings += rp_doc_num(result, "counts.warnings", 0);

    int show = !c->quiet && (c->detail || !passed || c->repeat * (long)c->n_tests <= 100);
    if (show && (passed || c->printed < MAX_PRINTED)) {
        if (c->progress)
            fputs("\r\033[K", stderr);
        rp_report_print(stdout, result, c->detail, c->color);
        if (!passed)
            c->printed++;
    }
    if (c->junit || c->json) {
        if (c->n_kept == c->cap_kept) {
            c->cap_kept = c->cap_kept ? c->cap_kept * 2 : 64;
            c->kept = rp_xrealloc(c->kept, c->cap_kept * sizeof(*c->kept));
        }
        c->kept[c->n_kept++] = result;
    } else {
        bson_destroy(result);
    }
}

static void progress(const struct cli *c, size_t total, double t0)
{
    int width = 30, fill = (int)((double)c->done / (double)total * width);
    fprintf(stderr, "\r[%.*s%*s] %zu/%zu runs, %.0f runs/s", fill, "##############################",
            width - fill, "", c->done, total, c->done / (now_s() - t0 + 1e-9));
    fflush(stderr);
}

static int write_outputs(struct cli *c, struct rp_error *err)
{
    if (c->junit) {
        FILE *f = fopen(c->junit, "w");
        if (!f)
            return rp_error_set(err, RP_EIO, "--junit %s: %s", c->junit, strerror(errno));
        int rc = rp_junit_write(f, c->kept, c->n_kept, err);
        if (fclose(f) != 0 && rc == RP_OK)
            rc = rp_error_set(err, RP_EIO, "--junit %s: %s", c->junit, strerror(errno));
        if (rc != RP_OK)
            return rc;
    }
    if (c->json) {
        FILE *f = fopen(c->json, "w");
        if (!f)
            return rp_error_set(err, RP_EIO, "--json %s: %s", c->json, strerror(errno));
        fputs("[\n", f);
        for (size_t i = 0; i < c->n_kept; i++) {
            size_t len;
            char *js = bson_as_relaxed_extended_json(c->kept[i], &len);
            fprintf(f, "%s%s\n", js ? js : "null", i + 1 < c->n_kept ? "," : "");
            bson_free(js);
        }
        fputs("]\n", f);
        if (fclose(f) != 0)
            return rp_error_set(err, RP_EIO, "--json %s: %s", c->json, strerror(errno));
    }
    return RP_OK;
}

int wrk_cli_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"env", required_argument, NULL, 'e'},
        {"var", required_argument, NULL, 'v'},
        {"secret-var", required_argument, NULL, 's'},
        {"junit", required_argument, NULL, 'j'},
        {"json", required_argument, NULL, 'o'},
        {"concurrency", required_argument, NULL, 'c'},
        {"repeat", required_argument, NULL, 'r'},
        {"body-cap", required_argument, NULL, 'b'},
        {"detail", no_argument, NULL, 'd'},
        {"quiet", no_argument, NULL, 'q'},
        {"no-color", no_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct cli c = {.concurrency = 10, .repeat = 1, .body_cap = 1048576};
    struct rp_error err = {0};
    struct wrk_engine *engine = NULL;
    int code = 2, bad = 0, no_color = getenv("NO_COLOR") != NULL;
    const char *envs[16], *vars[256];
    int var_secret[256];
    size_t n_envs = 0, n_vars = 0;
    if (sodium_init() < 0)
        return 2;
    c.vars = rp_vars_new();
    optind = 1;
    opterr = 0;
    int ch;
    while (!bad && (ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case 'e':
            if (n_envs == 16) {
                rp_error_set(&err, RP_EINVAL, "--env: at most 16 files");
                bad = 1;
            } else {
                envs[n_envs++] = optarg;
            }
            break;
        case 'v':
        case 's': /* applied after the env files, whatever the order on the command line */
            if (n_vars == 256) {
                rp_error_set(&err, RP_EINVAL, "--var: at most 256");
                bad = 1;
            } else {
                var_secret[n_vars] = ch == 's';
                vars[n_vars++] = optarg;
            }
            break;
        case 'j':
            c.junit = optarg;
            break;
        case 'o':
            c.json = optarg;
            break;
        case 'c':
            c.concurrency = parse_count("--concurrency", optarg, 10000, &err, &bad);
            break;
        case 'r':
            c.repeat = parse_count("--repeat", optarg, 100000000, &err, &bad);
            break;
        case 'b':
            c.body_cap = (size_t)parse_count("--body-cap", optarg, 1L << 30, &err, &bad);
            break;
        case 'd':
            c.detail = 1;
            break;
        case 'q':
            c.quiet = 1;
            break;
        case 'n':
            no_color = 1;
            break;
        case 'h':
            fputs(usage, stdout);
            code = 0;
            goto out;
        default:
            rp_error_set(&err, RP_EINVAL, "unknown option %s", argv[optind - 1]);
            bad = 1;
        }
    }
    if (bad)
        goto usage_error;
    if (optind >= argc) {
        rp_error_set(&err, RP_EINVAL, "no test file given");
        goto usage_error;
    }
    for (size_t i = 0; i < n_envs; i++)
        if (load_env(&c, envs[i], &err) != RP_OK)
            goto fail;
    for (size_t i = 0; i < n_vars; i++)
        if (set_var(&c, vars[i], var_secret[i], &err) != RP_OK)
            goto usage_error;

    c.n_tests = (size_t)(argc - optind);
    c.tests = rp_xcalloc(c.n_tests, sizeof(*c.tests));
    c.files = argv + optind;
    for (size_t i = 0; i < c.n_tests; i++) {
        char *text;
        size_t len;
        struct rp_error perr;
        if (read_file(c.files[i], &text, &len, &err) != RP_OK)
            goto fail;
        int rc = rp_test_parse(text, len, &c.tests[i], &perr);
        free(text);
        if (rc != RP_OK) {
            rp_error_set(&err, rc, "%s: %s", c.files[i], perr.msg);
            goto fail;
        }
    }

    /* Runs beyond 256 wait for a transfer slot inside the engine: more sockets at once add
     * memory (libcurl buffers per connection) without adding speed on one thread. */
    struct wrk_engine_opts eo = {.body_cap = c.body_cap,
                                 .max_concurrent =
                                     c.concurrency < 256 ? (size_t)c.concurrency : 256};
    if (wrk_engine_new(&eo, &engine, &err) != RP_OK)
        goto fail;
    c.color = !no_color && isatty(STDOUT_FILENO);
    size_t total = (size_t)c.repeat * c.n_tests, next = 0;
    c.progress = isatty(STDERR_FILENO) && total > 100;
    double t0 = now_s(), last = 0;
    while (c.done < total) {
        while (next < total && wrk_engine_in_flight(engine) < (size_t)c.concurrency) {
            char run_id[48];
            snprintf(run_id, sizeof(run_id), "local-%ld-%zu", (long)getpid(), next + 1);
            if (wrk_engine_submit(engine, c.tests[next % c.n_tests], c.vars, run_id, on_done, &c,
                                  &err) != RP_OK)
                goto fail;
            next++;
        }
        wrk_engine_run(engine, 100);
        if (c.progress && now_s() - last > 0.2) {
            progress(&c, total, t0);
            last = now_s();
        }
    }
    double secs = now_s() - t0;
    if (c.progress) {
        progress(&c, total, t0);
        fputc('\n', stderr);
    }
    if (c.failed + c.errors > c.printed && c.printed >= MAX_PRINTED)
        printf("... and %zu more runs that did not pass\n", c.failed + c.errors - c.printed);
    printf("\n%zu run%s: %zu passed, %zu failed, %zu could not run; %.0f checks (%.0f failed, "
           "%.0f warnings) in %.2f s: %.0f runs/s, %.0f checks/s\n",
           total, total == 1 ? "" : "s", c.passed, c.failed, c.errors, c.checks, c.check_failures,
           c.warnings, secs, total / secs, c.checks / secs);
    if (write_outputs(&c, &err) != RP_OK)
        goto fail;
    code = c.errors ? 2 : c.failed ? 1 : 0;
    goto out;

usage_error:
    fprintf(stderr, "rampart-worker run: %s\n(try rampart-worker run --help)\n", err.msg);
    code = 2;
    goto out;
fail:
    fprintf(stderr, "rampart-worker run: %s\n", err.msg);
    code = 2;
out:
    wrk_engine_free(engine);
    for (size_t i = 0; i < c.n_tests; i++)
        rp_test_free(c.tests ? c.tests[i] : NULL);
    free(c.tests);
    for (size_t i = 0; i < c.n_kept; i++)
        bson_destroy(c.kept[i]);
    free(c.kept);
    rp_vars_free(c.vars);
    return code;
}
