/* Internals shared by the two halves of the expression language and nothing else: the parsed
 * form (struct rp_expr: two operands, an operator, a compiled regular expression) and the
 * names of types and operators. expr_parse.c builds it, expr_eval.c reads it; the public side
 * is the "expressions" section of rampart/testlang.h. */
#ifndef RAMPART_TESTLANG_EXPR_INT_H
#define RAMPART_TESTLANG_EXPR_INT_H

#define PCRE2_CODE_UNIT_WIDTH 8

#include <pcre2.h>

#include "rampart/testlang.h"

enum opd_kind { O_STATUS, O_TIME, O_SIZE, O_BODY, O_HEADER, O_TIMING, O_PATH, O_VAR, O_LEN, O_LIT };

struct operand {
    enum opd_kind kind;
    char *label; /* as written, for messages */
    char *name;  /* O_HEADER: header name; O_VAR: variable name (with any .path suffix) */
    size_t timing;
    struct rp_jsonpath *path;
    struct rp_value lit;
    struct operand *arg; /* O_LEN */
};

enum op {
    OP_NONE,
    OP_EQ,
    OP_NE,
    OP_LT,
    OP_LE,
    OP_GT,
    OP_GE,
    OP_CONTAINS,
    OP_MATCHES,
    OP_IN,
    OP_EXISTS,
    OP_IS
};

enum vtype {
    T_STRING,
    T_NUMBER,
    T_INTEGER,
    T_BOOLEAN,
    T_ARRAY,
    T_OBJECT,
    T_NULL,
    T_EMAIL,
    T_URL,
    T_UUID,
    T_DATETIME,
    N_TYPES
};

extern const char *const rp_expr_type_names[N_TYPES];
extern const char *const rp_expr_op_names[];

struct rp_expr {
    struct operand lhs, rhs;
    int has_rhs;
    enum op op;
    int negate; /* not exists / is not / not contains / not matches / not in */
    enum vtype type;
    pcre2_code *re;
    pcre2_match_context *mctx;
};

#endif
