/* The test engine's private interfaces (rampart-worker). Sections, one per concern, each
 * implemented by the file named in its title:
 *   values (value.c)       JSON parsed with libbson, and one small tagged value type
 *   JSON path (jsonpath.c) $.a.b[0]["c d"][*].e selections over a parsed body
 *   expressions (expr_*.c) the assertion language: operands, operators, types, len()
 *   JSON Schema (schema_*.c, formats.c) validating a body against a schema (a subset)
 *   variables (vars.c)     layered variables with secrets, ${var} templating (template.c)
 *   definitions (defn*.c)  a test as JSON -> struct wrk_test, with located errors
 *   engine (engine.c, http.c, result.c) runs tests concurrently on libcurl's multi interface
 *                          and builds one result document (BSON) per run
 * Core logic knows no transport: the CLI (cli.c) and, later, the queue consumer call the
 * engine with a definition and variables and get a result back. Nothing here is thread-safe
 * unless it says so: one engine per thread. */
#ifndef RAMPART_WORKER_H
#define RAMPART_WORKER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <bson/bson.h>

#include "rampart/error.h"

/* ==== values (value.c) ====================================================================
 * A JSON text of any kind (object, array, scalar) is parsed by libbson into a document
 * {"v": <value>}; a bson_iter_t positioned on "v" is the root. */

/* Parse `len` bytes of JSON (any top-level type). Returns RP_OK and a new document (caller
 * bson_destroy()s it) or RP_EINVAL with the parser's message and byte offset in `err`.
 * Inputs longer than `max_len` (0: no limit) are refused with RP_ENOMEM. */
int wrk_json_parse(const char *text, size_t len, size_t max_len, bson_t **out,
                   struct rp_error *err) RP_MUST_CHECK;
/* Position `it` on the root value of a document made by wrk_json_parse (or any {"v": ...}). */
int wrk_json_root(const bson_t *doc, bson_iter_t *it);

enum wrk_value_type {
    WRK_V_MISSING = 0, /* no such value (a path that matched nothing, an absent header) */
    WRK_V_NULL,
    WRK_V_BOOL,
    WRK_V_NUMBER, /* `num`; `is_int` when it is an exact integer (JSON 3, not 3.5) */
    WRK_V_STRING, /* `str` (owned, NUL-terminated, may contain no NUL) */
    WRK_V_ARRAY,  /* `doc` (owned) = {"v": [...]} */
    WRK_V_OBJECT, /* `doc` (owned) = {"v": {...}} */
};

struct wrk_value {
    enum wrk_value_type type;
    int b;
    double num;
    int is_int;
    char *str;
    bson_t *doc;
};

/* Release what a value owns and make it WRK_V_MISSING. Accepts NULL. */
void wrk_value_clear(struct wrk_value *v);
/* Deep copy. */
void wrk_value_copy(struct wrk_value *dst, const struct wrk_value *src);
/* Build a value from a bson_iter_t positioned on a JSON-ish BSON element (int32/int64/double
 * -> number, utf8 -> string, document/array -> object/array, bool, null). */
void wrk_value_from_iter(struct wrk_value *out, const bson_iter_t *it);
void wrk_value_set_string(struct wrk_value *out, const char *s, size_t len);
void wrk_value_set_number(struct wrk_value *out, double n);
/* Append `v` to `doc` under `key` (missing -> nothing appended). */
void wrk_value_append(bson_t *doc, const char *key, const struct wrk_value *v);
/* JSON text of the value (strings quoted and escaped; missing -> "(missing)"), new string.
 * At most `max_len` bytes of output (0: no limit), cut with "..." at the end. */
char *wrk_value_to_json(const struct wrk_value *v, size_t max_len);
/* The value as text for templating: strings raw (no quotes), numbers shortest form (3, 2.5),
 * true/false/null, arrays/objects as compact JSON. New string. */
char *wrk_value_to_text(const struct wrk_value *v);
/* Name of a type ("string", "number", ...) for messages. */
const char *wrk_value_type_name(enum wrk_value_type t);

/* ==== JSON path (jsonpath.c) ==============================================================
 * Syntax: `$` root, `.name`, `["name"]` or `['name']`, `[3]`, `[-1]` (from the end), `[*]` and
 * `.*` (every element / member), `..name` (recursive descent). Documented in docs/tests.md. */

struct wrk_jsonpath;

/* Compile `path` (must start with `$`). RP_EINVAL with the column of the problem in `err`. */
int wrk_jsonpath_compile(const char *path, struct wrk_jsonpath **out,
                         struct rp_error *err) RP_MUST_CHECK;
void wrk_jsonpath_free(struct wrk_jsonpath *p);
/* True when the path can select more than one value (wildcards, recursive descent). */
int wrk_jsonpath_is_multi(const struct wrk_jsonpath *p);
/* Evaluate against the root value `root`; calls `fn` for every match in document order until
 * it returns non-zero. Returns the number of matches visited. Never fails: a path that does
 * not fit the document matches nothing. */
typedef int (*wrk_jsonpath_fn)(const bson_iter_t *match, void *ud);
size_t wrk_jsonpath_eval(const struct wrk_jsonpath *p, const bson_iter_t *root, wrk_jsonpath_fn fn,
                         void *ud);

/* ==== the response an expression looks at ================================================ */

struct wrk_header {
    char *name; /* as received; lookups are case-insensitive */
    char *value;
};

/* Timing phases in milliseconds, from libcurl (CURLINFO_*_TIME_T), each measured from the start
 * of the request: dns = name lookup done, connect = TCP connected, tls = TLS handshake done
 * (0 without TLS), first_byte = first response byte, total = complete. */
struct wrk_timings {
    double dns, connect, tls, first_byte, total;
};

/* Looks a variable up for `${name}` operands in expressions. Returns RP_OK and a copy in
 * `out`, or RP_ENOENT. `*secret` (may be NULL) is set when the value is a secret. */
typedef int (*wrk_var_lookup_fn)(void *ud, const char *name, struct wrk_value *out, int *secret);

struct wrk_response_view {
    long status;
    const struct wrk_header *headers;
    size_t n_headers;
    const char *body; /* as received, at most the cap (not NUL-terminated) */
    size_t body_len;  /* bytes in `body` */
    size_t body_size; /* bytes the server sent (more than body_len when capped) */
    int body_truncated;
    const bson_t *body_json; /* parsed body {"v": ...}, or NULL when it is not JSON */
    struct wrk_timings timings;
    wrk_var_lookup_fn lookup; /* may be NULL: every ${var} is then unknown */
    void *lookup_ud;
};

/* ==== expressions (expr_parse.c, expr_eval.c) ============================================
 * ============================================================ An assertion is `operand [operator
 * operand]`; a capture or `each` is one operand. operands:  status | time | size | body |
 * header.NAME | header["Name"] | timing.dns|connect| tls|first_byte|total | $.json.path | ${var} |
 * ${var.path} | len(operand) | literals: 12, -3.5, "text", 'text', true, false, null, [lit, ...]
 *  operators: == != < <= > >= contains matches in exists "not exists" "is TYPE" "is not TYPE"
 *             where TYPE: string number integer boolean array object null email url uuid
 *             date-time; `schema` is a step field, not an operator.
 * A JSON path that selects several values (wildcard) asserts on every one: the assertion
 * passes when all pass (and at least one matched), and the message names the first failure. */

struct wrk_expr;

/* Parse `src`. On error RP_EINVAL, `err` says what and at which column ("column 9: unknown
 * operator `=>`; expected one of == != < <= > >= contains matches in exists is"). */
int wrk_expr_parse(const char *src, struct wrk_expr **out, struct rp_error *err) RP_MUST_CHECK;
/* Parse `src` as a single operand (captures, `each`, `if` uses full expressions). */
int wrk_expr_parse_operand(const char *src, struct wrk_expr **out,
                           struct rp_error *err) RP_MUST_CHECK;
void wrk_expr_free(struct wrk_expr *e);

struct wrk_check {
    int passed;
    char *actual; /* JSON text of the actual value (cut to 1 KiB; "***" if it came from a secret) */
    char *message; /* "$.user.age: expected > 18, got 12" / "status: expected 200, got 503" */
};
void wrk_check_clear(struct wrk_check *c);

/* Evaluate an assertion against a response. Never fails: a type mismatch or a missing value
 * is a failed check with a message saying so. */
void wrk_expr_check(const struct wrk_expr *e, const struct wrk_response_view *r,
                    struct wrk_check *out);
/* Evaluate an operand expression to a value (captures, `each`). A wildcard path yields an
 * array of its matches. Missing values give WRK_V_MISSING. `*secret` (may be NULL) is set when
 * the value came from a secret variable. */
void wrk_expr_value(const struct wrk_expr *e, const struct wrk_response_view *r,
                    struct wrk_value *out, int *secret);

/* ==== JSON Schema (schema_compile.c, schema_check.c) =====================================
 * ========================================================== A documented subset of draft 2020-12 /
 * draft-07: type (incl. lists), enum, const, properties, required, additionalProperties (bool or
 * schema), items (schema), minItems, maxItems, uniqueItems, minLength, maxLength, pattern (PCRE2),
 * format (email, uri, uuid, date-time), minimum, maximum, exclusiveMinimum, exclusiveMaximum,
 * multipleOf, allOf, anyOf, oneOf, not, $ref to "#/$defs/..." or "#/definitions/...". Unknown
 * keywords are ignored, as the standard says. */

struct wrk_schema;

/* Compile a schema given as a document {"v": <schema>} (wrk_json_parse output). RP_EINVAL when
 * the schema itself is malformed, naming the keyword's location (#/properties/age/minimum). */
int wrk_schema_compile(const bson_t *schema, struct wrk_schema **out,
                       struct rp_error *err) RP_MUST_CHECK;
void wrk_schema_free(struct wrk_schema *s);
/* Validate the root value `instance`. Fills `out` with passed/actual/message; the message names
 * the first violation by instance location: "$.user.age: 12 is less than minimum 18". */
void wrk_schema_check(const struct wrk_schema *s, const bson_iter_t *instance,
                      struct wrk_check *out);

/* ==== formats (formats.c) =================================================================
 * Shared by JSON Schema `format` and the expression language's `is email|url|uuid|date-time`,
 * so both agree. Each returns 1 when `s` (NUL-terminated) has the format, else 0. Pure,
 * thread-safe. Exactly what is accepted is documented atop each function in formats.c. */

/* local@domain: the local part 1-64 bytes of letters, digits and !#$%&'*+/=?^_`{|}~.- with no
 * dot first, last or doubled; the domain a DNS name: labels of letters, digits and `-` (not at
 * either end), 1-63 bytes each, at least two labels, at most 253 bytes, the last label not all
 * digits. ASCII only; no quoted local parts, no IP-literal domains. */
int wrk_is_email(const char *s);
/* scheme://[userinfo@]host[:port][/path][?query][#fragment]: scheme a letter then letters,
 * digits, + . - (any scheme: http, https, ftp, ws...); host letters, digits, . - _ (not
 * starting or ending with . or -) or a bracketed IPv6 address; port 1-5 digits up to 65535; no
 * space, control or non-ASCII byte and none of " < > \ ^ ` { | } anywhere. */
int wrk_is_url(const char *s);
/* 8-4-4-4-12 hex digits, either case, any version or variant (the nil UUID too). */
int wrk_is_uuid(const char *s);
/* RFC 3339 date-time: YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM), `T` and `Z` in either case;
 * the day must exist in that month (leap years counted); second 60 (a leap second) allowed. */
int wrk_is_date_time(const char *s);

/* ==== variables (vars.c) and templating (template.c) ======================================
 * Layers, lowest to highest: project variables, environment, test variables, run-time
 * overrides, captures. A lookup takes the highest layer that has the name. A variable may be
 * marked secret: its value never appears in results or logs (rendered as "***"). */

enum wrk_layer {
    WRK_LAYER_PROJECT = 0,
    WRK_LAYER_ENVIRONMENT,
    WRK_LAYER_TEST,
    WRK_LAYER_OVERRIDE,
    WRK_LAYER_CAPTURE,
    WRK_N_LAYERS
};

struct wrk_vars;

struct wrk_vars *wrk_vars_new(void);
void wrk_vars_free(struct wrk_vars *v);
/* A copy sharing nothing with `v` (each run gets its own, since captures differ). */
struct wrk_vars *wrk_vars_clone(const struct wrk_vars *v);
/* Set `name` in `layer` (replacing it there). Names: [A-Za-z_][A-Za-z0-9_.-]*, at most 128
 * bytes; RP_EINVAL otherwise. The value is copied. */
int wrk_vars_set(struct wrk_vars *v, enum wrk_layer layer, const char *name,
                 const struct wrk_value *value, int secret) RP_MUST_CHECK;
int wrk_vars_set_string(struct wrk_vars *v, enum wrk_layer layer, const char *name,
                        const char *value, int secret) RP_MUST_CHECK;
/* Look `name` up; a dotted or bracketed suffix reads into a JSON value: "user.id",
 * "items[0].name". Names may contain dots, so the longest prefix that is a variable wins (a
 * variable "user.id" hides the member `id` of "user"). RP_OK with a copy in `out`, or
 * RP_ENOENT. A value read from a secret is secret. Matches wrk_var_lookup_fn with `ud` = the
 * struct wrk_vars. */
int wrk_vars_lookup(void *vars, const char *name, struct wrk_value *out, int *secret);
/* True when `ref` (`len` bytes: the inside of `${...}`) is well formed: a name
 * [A-Za-z_][A-Za-z0-9_.-]*, then steps `.key`, `[N]`, `[-N]` (from the end), `["key"]` or
 * `['key']`. The template syntax check uses it; lookups accept the same grammar. */
int wrk_vars_ref_valid(const char *ref, size_t len);
/* Load every member of a JSON object {"name": value | {"value": v, "secret": true}} into
 * `layer` (environment files and definitions use this shape). RP_EINVAL naming the member. */
int wrk_vars_load_object(struct wrk_vars *v, enum wrk_layer layer, const bson_iter_t *object,
                         struct rp_error *err) RP_MUST_CHECK;
/* Every secret's current text value (in any layer, also a secret shadowed by a higher layer),
 * plus the strings and numbers inside secret objects and arrays; no empty strings, no
 * duplicates. For redaction of strings that were not rendered from a template (e.g. a response
 * echoing a token). NULL-terminated array owned by `v`, valid until the next change. */
const char *const *wrk_vars_secrets(struct wrk_vars *v);

/* Render `tmpl`, replacing ${name} (and ${name.path}) by the variable's text value; `$${`
 * writes a literal `${`. `*out` gets the real text, `*redacted` (may be NULL) the same with every
 * secret's value replaced by "***". RP_EINVAL for an unknown variable or an unclosed `${`, with
 * the variable's name / column in `err`. Output is capped at `max_len` bytes (RP_ENOMEM). */
int wrk_template_render(const char *tmpl, const struct wrk_vars *vars, size_t max_len, char **out,
                        char **redacted, struct rp_error *err) RP_MUST_CHECK;
/* Check a template's syntax without variables (definition time). */
int wrk_template_check(const char *tmpl, struct rp_error *err) RP_MUST_CHECK;
/* Replace every occurrence of any of `secrets` (NULL-terminated; NULL: none) in `len` bytes of
 * `text` by "***" (new string). Overlapping or adjacent occurrences, of one secret or several,
 * become a single "***", so no part of any secret is left; empty secrets are ignored. */
char *wrk_redact(const char *text, size_t len, const char *const *secrets);

/* ==== definitions (defn.c, defn_step.c) ==================================================
 * ============================================================ The JSON format is documented in
 * docs/tests.md. Parsing checks everything it can before a run (expressions, paths, templates'
 * syntax, schemas, value ranges) and reports the first problem with its location: "step 3 (\"get
 * user\"), assertion 2: column 9: unknown operator
 * `=>`". */

enum wrk_body_kind { WRK_BODY_NONE = 0, WRK_BODY_JSON, WRK_BODY_FORM, WRK_BODY_RAW };
enum wrk_severity { WRK_SEV_ERROR = 0, WRK_SEV_WARNING };

struct wrk_kv {
    char *name;  /* template */
    char *value; /* template */
};

struct wrk_capture {
    char *name; /* variable to set (capture layer) */
    char *src;  /* the operand as written */
    struct wrk_expr *from;
    int secret; /* the captured value is a secret (e.g. a token) */
};

struct wrk_assertion {
    char *src; /* as written; results show it */
    struct wrk_expr *expr;
    enum wrk_severity severity;
    int stop; /* stop the test when this fails */
};

struct wrk_step {
    char *name;
    char *method; /* upper case; any token */
    char *url;    /* template */
    struct wrk_kv *headers;
    size_t n_headers;
    enum wrk_body_kind body_kind;
    char *body;          /* JSON: the JSON text, templated inside strings; RAW: template */
    struct wrk_kv *form; /* FORM: fields */
    size_t n_form;
    long timeout_ms;      /* default 30000 */
    int follow_redirects; /* most redirects to follow, 0..10: 0 = off (default 10) */
    int verify_tls;       /* default 1 */
    long *expect_status;  /* NULL: no status check unless an assertion does it */
    size_t n_expect_status;
    struct wrk_capture *captures;
    size_t n_captures;
    struct wrk_assertion *asserts;
    size_t n_asserts;
    struct wrk_schema *schema; /* validate the JSON body, or NULL */
    struct wrk_expr *if_expr;  /* run the step only when true (evaluated on variables and the
                                   previous step's response); NULL: always */
    char *if_src;
    struct wrk_expr *each; /* operand giving an array: the step runs once per element */
    char *each_src;
    char *each_as;       /* variable holding the element (default "item") */
    int stop_on_failure; /* a failed step (any error-severity failure) ends the test */
};

struct wrk_test {
    char *name;
    char *description;
    char **tags;
    size_t n_tags;
    bson_t *variables; /* {"v": {...}} test variables, loaded into WRK_LAYER_TEST per run */
    struct wrk_step *steps;
    size_t n_steps;
};

/* Parse a test definition. RP_EINVAL with a located message; never crashes on any input.
 * Inputs above 4 MiB are refused with RP_ENOMEM. */
int wrk_test_parse(const char *json, size_t len, struct wrk_test **out,
                   struct rp_error *err) RP_MUST_CHECK;
void wrk_test_free(struct wrk_test *t);

/* ==== engine (engine.c, http.c, result.c) =================================================
 * Runs many tests at once on one thread with libcurl's multi interface (connections reused
 * across runs and steps). A run is a small state machine:
 *   NEXT_STEP -> (if false: skipped) -> RENDER (templates; an unknown variable is an `error`)
 *   -> REQUEST (in flight on the multi handle) -> CHECK (captures, schema, assertions)
 *   -> NEXT_STEP ... -> DONE (result document handed to the callback).
 * `each` repeats RENDER..CHECK per element. wrk_engine_run moves every run forward. */

struct wrk_engine_opts {
    size_t body_cap;           /* bytes of a response body kept (default 1 MiB); the rest is
                                  counted, not stored */
    size_t max_concurrent;     /* transfers at once (default 256); more runs wait their turn */
    long max_host_connections; /* per host (default 0 = libcurl's default: unlimited) */
    const char *user_agent;    /* default "rampart/<version>" */
};

struct wrk_engine;

int wrk_engine_new(const struct wrk_engine_opts *opts, struct wrk_engine **out,
                   struct rp_error *err) RP_MUST_CHECK;
void wrk_engine_free(struct wrk_engine *e);

/* Called once per run, from inside wrk_engine_run, with the result document (see result.c:
 * {_id: run_id, test, status: passed|failed|error, error?, started_at, finished_at,
 *  duration_ms, steps: [{name, iteration?, skipped?, request: {method, url, headers, body},
 *  response: {status, headers, body, body_size, body_truncated}, timings: {...},
 *  assertions: [{expr, passed, severity, actual, message}], captures: [{name, value}],
 *  error?}], counts: {assertions, failed, warnings}}). Secrets are redacted everywhere in it.
 * The callee may keep `result` (it owns it: bson_destroy). */
typedef void (*wrk_done_fn)(void *ud, const char *run_id, bson_t *result);

/* Start a run of `test` with `vars` (the engine clones them; the caller keeps its copy). The
 * test must outlive the run. */
int wrk_engine_submit(struct wrk_engine *e, const struct wrk_test *test,
                      const struct wrk_vars *vars, const char *run_id, wrk_done_fn done, void *ud,
                      struct rp_error *err) RP_MUST_CHECK;
/* Drive transfers for up to `timeout_ms` (0: do what is ready, don't wait). Returns early, once
 * at least one run has finished, so the caller can submit more. Returns the number of runs
 * still in flight. */
size_t wrk_engine_run(struct wrk_engine *e, long timeout_ms);
size_t wrk_engine_in_flight(const struct wrk_engine *e);
/* Connections the engine has opened so far (libcurl's CURLINFO_NUM_CONNECTS, summed): a new
 * connection per request means reuse is not working. For tests and metrics. */
uint64_t wrk_engine_connections(const struct wrk_engine *e);

/* ==== reading result documents (report.c) ================================================= */

/* Field access by dotted path ("response.status"); absent or mistyped -> NULL / `def`. */
const char *wrk_doc_str(const bson_t *doc, const char *dotted);
double wrk_doc_num(const bson_t *doc, const char *dotted, double def);
int wrk_doc_bool(const bson_t *doc, const char *dotted, int def);
/* Print a result for people: a status line, then (when `detail` or when the run did not pass)
 * every step with its request, response status and time, and every check, failed ones with
 * their message. `color`: ANSI colors. */
void wrk_report_print(FILE *f, const bson_t *result, int detail, int color);

/* ==== command line (cli.c, junit.c) ======================================================= */

/* `rampart-worker run FILE... [options]`: argv[0] is "run". Returns the exit code: 0 all
 * passed, 1 some test failed, 2 bad usage, a bad definition or a run that could not run. */
int wrk_cli_run(int argc, char **argv);

/* Write JUnit XML for `n` result documents (engine output): one <testsuite> per run, one
 * <testcase> per step (iteration), a <failure> listing each failed error-severity check, an
 * <error> when the step could not run, warnings in <system-out>. RP_EIO on a write error. */
int wrk_junit_write(FILE *f, bson_t *const *results, size_t n, struct rp_error *err) RP_MUST_CHECK;

#endif
