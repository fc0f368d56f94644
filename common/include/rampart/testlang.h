/* The test language, shared by the services that run tests (rampart-worker) and those that only
 * read or check them (the dashboard): a test definition as JSON, the assertion expressions, JSON
 * path, a JSON Schema subset, layered variables with secrets and ${var} templating, and reading
 * result documents (for people, and as JUnit XML). Sections, one per concern, each implemented by
 * the file of common/src/testlang/ named in its title. Running a test (HTTP) is the worker's
 * engine, not here. Nothing here is thread-safe unless it says so. */
#ifndef RAMPART_TESTLANG_H
#define RAMPART_TESTLANG_H

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
int rp_json_parse(const char *text, size_t len, size_t max_len, bson_t **out,
                  struct rp_error *err) RP_MUST_CHECK;
/* Position `it` on the root value of a document made by rp_json_parse (or any {"v": ...}). */
int rp_json_root(const bson_t *doc, bson_iter_t *it);

enum rp_value_type {
    RP_V_MISSING = 0, /* no such value (a path that matched nothing, an absent header) */
    RP_V_NULL,
    RP_V_BOOL,
    RP_V_NUMBER, /* `num`; `is_int` when it is an exact integer (JSON 3, not 3.5) */
    RP_V_STRING, /* `str` (owned, NUL-terminated, may contain no NUL) */
    RP_V_ARRAY,  /* `doc` (owned) = {"v": [...]} */
    RP_V_OBJECT, /* `doc` (owned) = {"v": {...}} */
};

struct rp_value {
    enum rp_value_type type;
    int b;
    double num;
    int is_int;
    char *str;
    bson_t *doc;
};

/* Release what a value owns and make it RP_V_MISSING. Accepts NULL. */
void rp_value_clear(struct rp_value *v);
/* Deep copy. */
void rp_value_copy(struct rp_value *dst, const struct rp_value *src);
/* Build a value from a bson_iter_t positioned on a JSON-ish BSON element (int32/int64/double
 * -> number, utf8 -> string, document/array -> object/array, bool, null). */
void rp_value_from_iter(struct rp_value *out, const bson_iter_t *it);
void rp_value_set_string(struct rp_value *out, const char *s, size_t len);
void rp_value_set_number(struct rp_value *out, double n);
/* Append `v` to `doc` under `key` (missing -> nothing appended). */
void rp_value_append(bson_t *doc, const char *key, const struct rp_value *v);
/* JSON text of the value (strings quoted and escaped; missing -> "(missing)"), new string.
 * At most `max_len` bytes of output (0: no limit), cut with "..." at the end. */
char *rp_value_to_json(const struct rp_value *v, size_t max_len);
/* The value as text for templating: strings raw (no quotes), numbers shortest form (3, 2.5),
 * true/false/null, arrays/objects as compact JSON. New string. */
char *rp_value_to_text(const struct rp_value *v);
/* Name of a type ("string", "number", ...) for messages. */
const char *rp_value_type_name(enum rp_value_type t);

/* ==== JSON path (jsonpath.c) ==============================================================
 * Syntax: `$` root, `.name`, `["name"]` or `['name']`, `[3]`, `[-1]` (from the end), `[*]` and
 * `.*` (every element / member), `..name` (recursive descent). Documented in docs/tests.md. */

struct rp_jsonpath;

/* Compile `path` (must start with `$`). RP_EINVAL with the column of the problem in `err`. */
int rp_jsonpath_compile(const char *path, struct rp_jsonpath **out,
                        struct rp_error *err) RP_MUST_CHECK;
void rp_jsonpath_free(struct rp_jsonpath *p);
/* True when the path can select more than one value (wildcards, recursive descent). */
int rp_jsonpath_is_multi(const struct rp_jsonpath *p);
/* Evaluate against the root value `root`; calls `fn` for every match in document order until
 * it returns non-zero. Returns the number of matches visited. Never fails: a path that does
 * not fit the document matches nothing. */
typedef int (*rp_jsonpath_fn)(const bson_iter_t *match, void *ud);
size_t rp_jsonpath_eval(const struct rp_jsonpath *p, const bson_iter_t *root, rp_jsonpath_fn fn,
                        void *ud);

/* ==== the response an expression looks at ================================================ */

struct rp_header {
    char *name; /* as received; lookups are case-insensitive */
    char *value;
};

/* Timing phases in milliseconds, from libcurl (CURLINFO_*_TIME_T), each measured from the start
 * of the request: dns = name lookup done, connect = TCP connected, tls = TLS handshake done
 * (0 without TLS), first_byte = first response byte, total = complete. */
struct rp_timings {
    double dns, connect, tls, first_byte, total;
};

/* Looks a variable up for `${name}` operands in expressions. Returns RP_OK and a copy in
 * `out`, or RP_ENOENT. `*secret` (may be NULL) is set when the value is a secret. */
typedef int (*rp_var_lookup_fn)(void *ud, const char *name, struct rp_value *out, int *secret);

struct rp_response_view {
    long status;
    const struct rp_header *headers;
    size_t n_headers;
    const char *body; /* as received, at most the cap (not NUL-terminated) */
    size_t body_len;  /* bytes in `body` */
    size_t body_size; /* bytes the server sent (more than body_len when capped) */
    int body_truncated;
    const bson_t *body_json; /* parsed body {"v": ...}, or NULL when it is not JSON */
    struct rp_timings timings;
    rp_var_lookup_fn lookup; /* may be NULL: every ${var} is then unknown */
    void *lookup_ud;
};

/* ==== expressions (expr_parse.c, expr_eval.c) ============================================
 * An assertion is `operand [operator operand]`; a capture or `each` is one operand.
 *  operands:  status | time | size | body | header.NAME | header["Name"] | timing.dns|connect|
 *             tls|first_byte|total | $.json.path | ${var} | ${var.path} | len(operand) |
 *             literals: 12, -3.5, "text", 'text', true, false, null, [lit, ...]
 *  operators: == != < <= > >= contains matches in exists "not exists" "is TYPE" "is not TYPE"
 *             where TYPE: string number integer boolean array object null email url uuid
 *             date-time; `schema` is a step field, not an operator.
 * A JSON path that selects several values (wildcard) asserts on every one: the assertion
 * passes when all pass (and at least one matched), and the message names the first failure. */

struct rp_expr;

/* Parse `src`. On error RP_EINVAL, `err` says what and at which column ("column 9: unknown
 * operator `=>`; expected one of == != < <= > >= contains matches in exists is"). */
int rp_expr_parse(const char *src, struct rp_expr **out, struct rp_error *err) RP_MUST_CHECK;
/* Parse `src` as a single operand (captures, `each`, `if` uses full expressions). */
int rp_expr_parse_operand(const char *src, struct rp_expr **out,
                          struct rp_error *err) RP_MUST_CHECK;
void rp_expr_free(struct rp_expr *e);

struct rp_check {
    int passed;
    char *actual; /* JSON text of the actual value (cut to 1 KiB; "***" if it came from a secret) */
    char *message; /* "$.user.age: expected > 18, got 12" / "status: expected 200, got 503" */
};
void rp_check_clear(struct rp_check *c);

/* Evaluate an assertion against a response. Never fails: a type mismatch or a missing value
 * is a failed check with a message saying so. */
void rp_expr_check(const struct rp_expr *e, const struct rp_response_view *r, struct rp_check *out);
/* Evaluate an operand expression to a value (captures, `each`). A wildcard path yields an
 * array of its matches. Missing values give RP_V_MISSING. `*secret` (may be NULL) is set when
 * the value came from a secret variable. */
void rp_expr_value(const struct rp_expr *e, const struct rp_response_view *r, struct rp_value *out,
                   int *secret);

/* ==== JSON Schema (schema_compile.c, schema_check.c) =====================================
 * A documented subset of draft 2020-12 / draft-07: type (incl. lists), enum, const,
 * properties, required, additionalProperties (bool or schema), items (schema), minItems,
 * maxItems, uniqueItems, minLength, maxLength, pattern (PCRE2), format (email, uri, uuid,
 * date-time), minimum, maximum, exclusiveMinimum, exclusiveMaximum, multipleOf, allOf, anyOf,
 * oneOf, not, $ref to "#/$defs/..." or "#/definitions/...". Unknown keywords are ignored, as
 * the standard says. */

struct rp_schema;

/* Compile a schema given as a document {"v": <schema>} (rp_json_parse output). RP_EINVAL when
 * the schema itself is malformed, naming the keyword's location (#/properties/age/minimum). */
int rp_schema_compile(const bson_t *schema, struct rp_schema **out,
                      struct rp_error *err) RP_MUST_CHECK;
void rp_schema_free(struct rp_schema *s);
/* Validate the root value `instance`. Fills `out` with passed/actual/message; the message names
 * the first violation by instance location: "$.user.age: 12 is less than minimum 18". */
void rp_schema_check(const struct rp_schema *s, const bson_iter_t *instance, struct rp_check *out);

/* ==== formats (formats.c) =================================================================
 * Shared by JSON Schema `format` and the expression language's `is email|url|uuid|date-time`,
 * so both agree. Each returns 1 when `s` (NUL-terminated) has the format, else 0. Pure,
 * thread-safe. Exactly what is accepted is documented atop each function in formats.c. */

/* local@domain: the local part 1-64 bytes of letters, digits and !#$%&'*+/=?^_`{|}~.- with no
 * dot first, last or doubled; the domain a DNS name: labels of letters, digits and `-` (not at
 * either end), 1-63 bytes each, at least two labels, at most 253 bytes, the last label not all
 * digits. ASCII only; no quoted local parts, no IP-literal domains. */
int rp_is_email(const char *s);
/* scheme://[userinfo@]host[:port][/path][?query][#fragment]: scheme a letter then letters,
 * digits, + . - (any scheme: http, https, ftp, ws...); host letters, digits, . - _ (not
 * starting or ending with . or -) or a bracketed IPv6 address; port 1-5 digits up to 65535; no
 * space, control or non-ASCII byte and none of " < > \ ^ ` { | } anywhere. */
int rp_is_url(const char *s);
/* 8-4-4-4-12 hex digits, either case, any version or variant (the nil UUID too). */
int rp_is_uuid(const char *s);
/* RFC 3339 date-time: YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM), `T` and `Z` in either case;
 * the day must exist in that month (leap years counted); second 60 (a leap second) allowed. */
int rp_is_date_time(const char *s);

/* ==== variables (vars.c) and templating (template.c) ======================================
 * Layers, lowest to highest: project variables, environment, test variables, run-time
 * overrides, captures. A lookup takes the highest layer that has the name. A variable may be
 * marked secret: its value never appears in results or logs (rendered as "***"). */

enum rp_layer {
    RP_LAYER_PROJECT = 0,
    RP_LAYER_ENVIRONMENT,
    RP_LAYER_TEST,
    RP_LAYER_OVERRIDE,
    RP_LAYER_CAPTURE,
    RP_N_LAYERS
};

struct rp_vars;

struct rp_vars *rp_vars_new(void);
void rp_vars_free(struct rp_vars *v);
/* A copy sharing nothing with `v` (each run gets its own, since captures differ). */
struct rp_vars *rp_vars_clone(const struct rp_vars *v);
/* Set `name` in `layer` (replacing it there). Names: [A-Za-z_][A-Za-z0-9_.-]*, at most 128
 * bytes; RP_EINVAL otherwise. The value is copied. */
int rp_vars_set(struct rp_vars *v, enum rp_layer layer, const char *name,
                const struct rp_value *value, int secret) RP_MUST_CHECK;
int rp_vars_set_string(struct rp_vars *v, enum rp_layer layer, const char *name, const char *value,
                       int secret) RP_MUST_CHECK;
/* Look `name` up; a dotted or bracketed suffix reads into a JSON value: "user.id",
 * "items[0].name". Names may contain dots, so the longest prefix that is a variable wins (a
 * variable "user.id" hides the member `id` of "user"). RP_OK with a copy in `out`, or
 * RP_ENOENT. A value read from a secret is secret. Matches rp_var_lookup_fn with `ud` = the
 * struct rp_vars. */
int rp_vars_lookup(void *vars, const char *name, struct rp_value *out, int *secret);
/* True when `ref` (`len` bytes: the inside of `${...}`) is well formed: a name
 * [A-Za-z_][A-Za-z0-9_.-]*, then steps `.key`, `[N]`, `[-N]` (from the end), `["key"]` or
 * `['key']`. The template syntax check uses it; lookups accept the same grammar. */
int rp_vars_ref_valid(const char *ref, size_t len);
/* Load every member of a JSON object {"name": value | {"value": v, "secret": true}} into
 * `layer` (environment files and definitions use this shape). RP_EINVAL naming the member. */
int rp_vars_load_object(struct rp_vars *v, enum rp_layer layer, const bson_iter_t *object,
                        struct rp_error *err) RP_MUST_CHECK;
/* Every secret's current text value (in any layer, also a secret shadowed by a higher layer),
 * plus the strings and numbers inside secret objects and arrays; no empty strings, no
 * duplicates. For redaction of strings that were not rendered from a template (e.g. a response
 * echoing a token). NULL-terminated array owned by `v`, valid until the next change. */
const char *const *rp_vars_secrets(struct rp_vars *v);

/* Render `tmpl`, replacing ${name} (and ${name.path}) by the variable's text value; `$${`
 * writes a literal `${`. `*out` gets the real text, `*redacted` (may be NULL) the same with every
 * secret's value replaced by "***". RP_EINVAL for an unknown variable or an unclosed `${`, with
 * the variable's name / column in `err`. Output is capped at `max_len` bytes (RP_ENOMEM). */
int rp_template_render(const char *tmpl, const struct rp_vars *vars, size_t max_len, char **out,
                       char **redacted, struct rp_error *err) RP_MUST_CHECK;
/* Check a template's syntax without variables (definition time). */
int rp_template_check(const char *tmpl, struct rp_error *err) RP_MUST_CHECK;
/* Replace every occurrence of any of `secrets` (NULL-terminated; NULL: none) in `len` bytes of
 * `text` by "***" (new string). Overlapping or adjacent occurrences, of one secret or several,
 * become a single "***", so no part of any secret is left; empty secrets are ignored. */
char *rp_redact(const char *text, size_t len, const char *const *secrets);

/* ==== definitions (defn.c, defn_step.c) ==================================================
 * The JSON format is documented in docs/tests.md. Parsing checks everything it can before a
 * run (expressions, paths, templates' syntax, schemas, value ranges) and reports the first
 * problem with its location: "step 3 (\"get user\"), assertion 2: column 9: unknown operator
 * `=>`". */

enum rp_body_kind { RP_BODY_NONE = 0, RP_BODY_JSON, RP_BODY_FORM, RP_BODY_RAW };
enum rp_severity { RP_SEV_ERROR = 0, RP_SEV_WARNING };

struct rp_kv {
    char *name;  /* template */
    char *value; /* template */
};

struct rp_capture {
    char *name; /* variable to set (capture layer) */
    char *src;  /* the operand as written */
    struct rp_expr *from;
    int secret; /* the captured value is a secret (e.g. a token) */
};

struct rp_assertion {
    char *src; /* as written; results show it */
    struct rp_expr *expr;
    enum rp_severity severity;
    int stop; /* stop the test when this fails */
};

struct rp_step {
    char *name;
    char *method; /* upper case; any token */
    char *url;    /* template */
    struct rp_kv *headers;
    size_t n_headers;
    enum rp_body_kind body_kind;
    char *body;         /* JSON: the JSON text, templated inside strings; RAW: template */
    struct rp_kv *form; /* FORM: fields */
    size_t n_form;
    long timeout_ms;      /* default 30000 */
    int follow_redirects; /* most redirects to follow, 0..10: 0 = off (default 10) */
    int verify_tls;       /* default 1 */
    long *expect_status;  /* NULL: no status check unless an assertion does it */
    size_t n_expect_status;
    struct rp_capture *captures;
    size_t n_captures;
    struct rp_assertion *asserts;
    size_t n_asserts;
    struct rp_schema *schema; /* validate the JSON body, or NULL */
    struct rp_expr *if_expr;  /* run the step only when true (evaluated on variables and the
                                   previous step's response); NULL: always */
    char *if_src;
    struct rp_expr *each; /* operand giving an array: the step runs once per element */
    char *each_src;
    char *each_as;       /* variable holding the element (default "item") */
    int stop_on_failure; /* a failed step (any error-severity failure) ends the test */
};

struct rp_test {
    char *name;
    char *description;
    char **tags;
    size_t n_tags;
    bson_t *variables; /* {"v": {...}} test variables, loaded into RP_LAYER_TEST per run */
    struct rp_step *steps;
    size_t n_steps;
};

/* Parse a test definition. RP_EINVAL with a located message; never crashes on any input.
 * Inputs above 4 MiB are refused with RP_ENOMEM. */
int rp_test_parse(const char *json, size_t len, struct rp_test **out,
                  struct rp_error *err) RP_MUST_CHECK;
void rp_test_free(struct rp_test *t);

/* ==== reading result documents (report.c) =================================================
 * A result document is what the worker's engine builds for one run (BSON); its fields are in
 * docs/tests.md, "The result document". */

/* Field access by dotted path ("response.status"); absent or mistyped -> NULL / `def`. */
const char *rp_doc_str(const bson_t *doc, const char *dotted);
double rp_doc_num(const bson_t *doc, const char *dotted, double def);
int rp_doc_bool(const bson_t *doc, const char *dotted, int def);
/* Print a result for people: a status line, then (when `detail` or when the run did not pass)
 * every step with its request, response status and time, and every check, failed ones with
 * their message. `color`: ANSI colors. */
void rp_report_print(FILE *f, const bson_t *result, int detail, int color);

/* ==== JUnit XML (junit.c) ================================================================= */

/* Write JUnit XML for `n` result documents (engine output): one <testsuite> per run, one
 * <testcase> per step (iteration), a <failure> listing each failed error-severity check, an
 * <error> when the step could not run, warnings in <system-out>. RP_EIO on a write error. */
int rp_junit_write(FILE *f, bson_t *const *results, size_t n, struct rp_error *err) RP_MUST_CHECK;

#endif
