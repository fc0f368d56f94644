/* Internals shared by the two files that parse a test definition and nothing else: defn.c (the
 * test, its variables, and the helpers for messages and scalar members) and defn_step.c (a step:
 * request, expect, capture, assert, schema). The limits live here, in one table, because both
 * enforce them. The public side is the "definitions" section of rampart/testlang.h. */
#ifndef RAMPART_TESTLANG_DEFN_INT_H
#define RAMPART_TESTLANG_DEFN_INT_H

#include "rampart/testlang.h"

#define MAX_INPUT_LEN      (4u << 20)
#define MAX_STEPS          200
#define MAX_ASSERTS        500
#define MAX_CAPTURES       100
#define MAX_HEADERS        100
#define MAX_FORM           200
#define MAX_TAGS           20
#define MAX_TAG_LEN        64
#define MAX_VARIABLES      1000
#define MAX_STATUS_ITEMS   50
#define MAX_NAME_LEN       200
#define MAX_DESC_LEN       4096
#define MAX_URL_LEN        8192
#define MAX_EXPR_LEN       4096
#define MAX_VARNAME_LEN    128
#define MAX_METHOD_LEN     32
#define MAX_TIMEOUT_MS     600000
#define DEFAULT_TIMEOUT_MS 30000
#define MAX_REDIRECTS      10
#define SHOW_MAX           192 /* bytes of user text shown in a message (40 characters) */

/* Parsing state: where we are (for messages) and where errors go. */
struct ctx {
    struct rp_error *err;
    char where[256]; /* "step 3 (\"get user\")", or "" at the top level */
};

/* A key that is not in an object's list but that people write: what to tell them. */
struct alias {
    const char *key;
    const char *hint;
};

/* ---- defn.c: messages and scalar members (each documented at its definition) ------------ */

void rp_defn_show(char *dst, size_t cap, const char *s, size_t n);
int rp_defn_fail(struct ctx *c, const char *field, const char *fmt, ...) RP_PRINTF(3, 4);
const char *rp_defn_type_of(const bson_iter_t *it);
const char *rp_defn_closest(const char *s, const char *const *words);
int rp_defn_check_keys(struct ctx *c, const bson_iter_t *obj, const char *field,
                       const char *const *keys, const struct alias *aliases);
size_t rp_defn_count_members(const bson_iter_t *it, size_t limit);
int rp_defn_find(const bson_iter_t *obj, const char *key, bson_iter_t *out);

enum { STR_EMPTY_OK = 1, STR_NO_CTRL = 2 };
int rp_defn_get_str(struct ctx *c, const bson_iter_t *it, const char *field, size_t max, int flags,
                    char **out);
int rp_defn_get_bool(struct ctx *c, const bson_iter_t *it, const char *field, int *out);
int rp_defn_get_int(struct ctx *c, const bson_iter_t *it, const char *field, long min, long max,
                    long *out);
int rp_defn_check_var_name(struct ctx *c, const char *field, const char *name);
int rp_defn_check_template(struct ctx *c, const char *field, const char *tmpl);
int rp_defn_is_tchar(unsigned char ch);

/* ---- defn_step.c ----------------------------------------------------------------------- */

/* Step `idx` (1-based) of the test at `st` into `s`; `stop_default` is the test's
 * stop_on_failure. RP_OK, or RP_EINVAL with the message in c->err. */
int rp_defn_parse_step(struct ctx *c, const bson_iter_t *st, size_t idx, int stop_default,
                       struct rp_step *s);

#endif
