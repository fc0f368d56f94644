/* Internals shared by the JSON Schema files and nothing else: the compiled tree (struct node),
 * which schema_compile.c builds and schema_check.c walks, the names of types and formats that
 * both put in messages, and the few helpers each borrows from another (ASCII classes from
 * formats.c, BSON type and number readers from schema_compile.c). The public side is the
 * "JSON Schema" and "formats" sections of rampart/testlang.h. */
#ifndef RAMPART_TESTLANG_SCHEMA_INT_H
#define RAMPART_TESTLANG_SCHEMA_INT_H

#define PCRE2_CODE_UNIT_WIDTH 8

#include <pcre2.h>

#include "rampart/testlang.h"

#define MAX_PATH 1024 /* bytes of an instance location in a message */

/* ==== the compiled tree =================================================================== */

enum {
    T_NULL = 1 << 0,
    T_BOOLEAN = 1 << 1,
    T_INTEGER = 1 << 2,
    T_NUMBER = 1 << 3,
    T_STRING = 1 << 4,
    T_ARRAY = 1 << 5,
    T_OBJECT = 1 << 6,
};
extern const char *const rp_schema_type_names[]; /* one per T_* bit, in bit order */

enum format { F_NONE = 0, F_EMAIL, F_URI, F_UUID, F_DATE_TIME };
extern const char *const rp_schema_format_names[]; /* indexed by enum format */

struct prop {
    char *name;
    size_t len;
    struct node *schema;
};

struct list {
    struct node **v;
    size_t n;
};

struct node {
    int boolean; /* -1: an object schema; 0: `false` (nothing valid); 1: `true` */
    unsigned types;
    bson_t *enum_doc;  /* {"v": [...]} */
    bson_t *const_doc; /* {"v": value} */
    struct prop *props;
    size_t n_props;
    char **required;
    size_t n_required;
    struct node *additional; /* NULL: anything */
    struct node *items;
    int64_t min_items, max_items, min_length, max_length; /* -1: absent */
    int unique_items;
    pcre2_code *re;
    char *pattern;
    enum format format;
    int has_min, has_max, has_xmin, has_xmax, has_mult;
    double min, max, xmin, xmax, mult;
    struct list all_of, any_of, one_of;
    struct node *not_;
    char *ref;
    const struct node *target; /* resolved $ref, owned elsewhere */
};

struct def {
    int legacy; /* 1: "definitions", 0: "$defs" */
    char *name;
    struct node *node;
};

struct rp_schema {
    struct node *root;
    struct def *defs;
    size_t n_defs;
    pcre2_match_context *mctx;
};

/* ---- formats.c ----------------------------------------------------------------------------- */

int rp_schema_is_alpha(char c);
int rp_schema_is_alnum(char c);

/* ---- schema_compile.c ---------------------------------------------------------------------- */

/* The JSON type of a BSON value, for messages. */
const char *rp_schema_bson_type_name(const bson_iter_t *it);
/* 1 and the value in *out if `it` holds a number, else 0. */
int rp_schema_num_of(const bson_iter_t *it, double *out);

#endif
