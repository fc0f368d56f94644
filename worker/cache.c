/* Parsed test definitions by (test_id, version), least recently used first out. A saved
 * version never changes, so the key identifies the text; parsing (expressions, schemas, JSON
 * paths) costs far more than a lookup when the same tests run every few seconds. Entries held
 * by runs in flight are never evicted (the engine needs the test until the run is done), so
 * the cache may briefly exceed its capacity. One thread (exec) uses it: no locks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumer.h"
#include "rampart/mem.h"
#include "worker.h"

#define N_BUCKETS 1024

struct entry {
    struct wrk_cached pub; /* first: the public part */
    char key[RP_UUID_LEN + 16];
    int refs;
    struct entry *hnext;               /* hash chain */
    struct entry *lru_prev, *lru_next; /* most recent at the head */
};

struct wrk_cache {
    struct entry *buckets[N_BUCKETS];
    struct entry *head, *tail;
    size_t n, capacity;
};

static unsigned hash(const char *s)
{
    unsigned h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % N_BUCKETS;
}

struct wrk_cache *wrk_cache_new(size_t capacity)
{
    struct wrk_cache *c = rp_xcalloc(1, sizeof(*c));
    c->capacity = capacity ? capacity : 1;
    return c;
}

static void entry_free(struct entry *e)
{
    rp_test_free(e->pub.test);
    free(e->pub.error);
    free(e);
}

void wrk_cache_free(struct wrk_cache *c)
{
    if (!c)
        return;
    struct entry *e = c->head;
    while (e) {
        struct entry *next = e->lru_next;
        entry_free(e);
        e = next;
    }
    free(c);
}

static void lru_unlink(struct wrk_cache *c, struct entry *e)
{
    if (e->lru_prev)
        e->lru_prev->lru_next = e->lru_next;
    else
        c->head = e->lru_next;
    if (e->lru_next)
        e->lru_next->lru_prev = e->lru_prev;
    else
        c->tail = e->lru_prev;
    e->lru_prev = e->lru_next = NULL;
}

static void lru_push_front(struct wrk_cache *c, struct entry *e)
{
    e->lru_next = c->head;
    if (c->head)
        c->head->lru_prev = e;
    c->head = e;
    if (!c->tail)
        c->tail = e;
}

static void evict(struct wrk_cache *c)
{
    struct entry *e = c->tail;
    while (c->n > c->capacity && e) {
        struct entry *prev = e->lru_prev;
        if (e->refs == 0) {
            struct entry **pp = &c->buckets[hash(e->key)];
            while (*pp != e)
                pp = &(*pp)->hnext;
            *pp = e->hnext;
            lru_unlink(c, e);
            entry_free(e);
            c->n--;
        }
        e = prev;
    }
}

const struct wrk_cached *wrk_cache_get(struct wrk_cache *c, const char *test_id, int version,
                                       const char *definition)
{
    char key[RP_UUID_LEN + 16];
    snprintf(key, sizeof(key), "%s/%d", test_id, version);
    unsigned h = hash(key);
    struct entry *e = c->buckets[h];
    while (e && strcmp(e->key, key) != 0)
        e = e->hnext;
    if (e) {
        lru_unlink(c, e);
        lru_push_front(c, e);
        e->refs++;
        return &e->pub;
    }
    e = rp_xcalloc(1, sizeof(*e));
    snprintf(e->key, sizeof(e->key), "%s", key);
    struct rp_error err = {0};
    const char *def = definition ? definition : "";
    if (rp_test_parse(def, strlen(def), &e->pub.test, &err) != RP_OK) {
        e->pub.test = NULL;
        e->pub.error = rp_xstrdup(err.msg[0] ? err.msg : "the definition does not parse");
    }
    e->refs = 1;
    e->hnext = c->buckets[h];
    c->buckets[h] = e;
    lru_push_front(c, e);
    c->n++;
    evict(c);
    return &e->pub;
}

void wrk_cache_release(struct wrk_cache *c, const struct wrk_cached *pub)
{
    if (!pub)
        return;
    struct entry *e = (struct entry *)(void *)pub; /* pub is the first member */
    if (e->refs > 0)
        e->refs--;
    evict(c);
}
