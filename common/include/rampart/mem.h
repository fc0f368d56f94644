/* Allocation helpers that abort on out-of-memory: a service cannot do anything useful without
 * memory, and checking every allocation hides real error paths. Sizes that grow from outside
 * input must be capped by the caller before they reach these functions. */
#ifndef RAMPART_MEM_H
#define RAMPART_MEM_H

#include <stddef.h>

/* malloc/calloc/realloc/strdup that print one line and abort() when memory runs out.
 * They never return NULL (rp_xmalloc(0) returns a unique pointer). Thread-safe. */
void *rp_xmalloc(size_t size);
void *rp_xcalloc(size_t count, size_t size);
void *rp_xrealloc(void *ptr, size_t size);
char *rp_xstrdup(const char *s);
char *rp_xstrndup(const char *s, size_t n);
/* printf into a new string owned by the caller. */
char *rp_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A growable byte buffer, always NUL-terminated. `cap_limit` (0 = none) bounds its size;
 * appends past it return RP_ENOMEM and leave the buffer unchanged. */
struct rp_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t cap_limit;
};
void rp_buf_init(struct rp_buf *b, size_t cap_limit);
int rp_buf_append(struct rp_buf *b, const void *data, size_t len);
int rp_buf_printf(struct rp_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void rp_buf_reset(struct rp_buf *b);
void rp_buf_cleanup(struct rp_buf *b);

#endif
