/* rampart-backup verify (backup.h): reads a whole archive without touching any database. The
 * reader checks every part's SHA-256 and sizes; this file also counts what each part holds (COPY
 * text: one row per '\n'; BSON: concatenated documents, each length prefix checked, a document
 * may span read buffers) and compares it with the manifest's count. Nothing is written. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backup.h"
#include "rampart/mem.h"

#define READ_CHUNK    (256u << 10)
#define PROGRESS_STEP (4u << 20)

/* 1234567 -> "1,234,567" */
static void thousands(uint64_t v, char out[32])
{
    char digits[24];
    int n = snprintf(digits, sizeof(digits), "%llu", (unsigned long long)v);
    int o = 0;
    for (int i = 0; i < n; i++) {
        if (i > 0 && (n - i) % 3 == 0)
            out[o++] = ',';
        out[o++] = digits[i];
    }
    out[o] = '\0';
}

/* Walks concatenated BSON documents fed in arbitrary pieces. */
struct bson_walk {
    uint64_t docs;
    uint64_t offset; /* bytes consumed so far */
    uint64_t total;  /* bytes in the whole stream (the part's raw_bytes) */
    unsigned char hdr[4];
    int hdr_have;  /* bytes of the current length prefix seen */
    uint64_t left; /* bytes of the current document still to come (after the prefix) */
    unsigned char last;
};

static int walk_bson(struct bson_walk *b, const unsigned char *d, size_t n, const char *part,
                     struct rp_error *err)
{
    size_t i = 0;
    while (i < n) {
        if (b->left == 0) {
            b->hdr[b->hdr_have++] = d[i++];
            b->offset++;
            if (b->hdr_have < 4)
                continue;
            uint32_t len = (uint32_t)b->hdr[0] | (uint32_t)b->hdr[1] << 8 |
                           (uint32_t)b->hdr[2] << 16 | (uint32_t)b->hdr[3] << 24;
            uint64_t start = b->offset - 4;
            b->hdr_have = 0;
            if ((int32_t)len < 5 || start + len > b->total) {
                char nb[32];
                thousands(b->docs + 1, nb);
                return rp_error_set(err, RP_EIO,
                                    "%s: document %s at byte %llu has a bad length prefix "
                                    "(%d): the part is damaged",
                                    part, nb, (unsigned long long)start, (int32_t)len);
            }
            b->left = len - 4;
            continue;
        }
        size_t take = n - i;
        if (take > b->left)
            take = (size_t)b->left;
        i += take;
        b->offset += take;
        b->left -= take;
        b->last = d[i - 1];
        if (b->left == 0) {
            if (b->last != 0) {
                char nb[32];
                thousands(b->docs + 1, nb);
                return rp_error_set(err, RP_EIO,
                                    "%s: document %s does not end with a 0 byte: the part is "
                                    "damaged",
                                    part, nb);
            }
            b->docs++;
        }
    }
    return RP_OK;
}

int bk_verify(const char *path, bk_progress_fn progress, void *ud, struct rp_error *err)
{
    struct bk_reader *r = NULL;
    int rc = bk_reader_open(path, &r, err);
    if (rc != RP_OK)
        return rc;
    const struct bk_manifest *m = bk_reader_manifest(r);
    uint64_t total = 0, done = 0;
    for (size_t i = 0; i < m->n_parts; i++)
        total += m->parts[i].bytes;
    unsigned char *buf = rp_xmalloc(READ_CHUNK);
    rc = RP_EIO;
    if (progress)
        progress(ud, "verify", 0, total, "bytes");
    for (;;) {
        const struct bk_part_info *p = NULL;
        int n = bk_reader_next(r, &p, err);
        if (n == RP_ENOENT)
            break;
        if (n != RP_OK) {
            rc = n;
            goto out;
        }
        int bson = strcmp(p->kind, "mongo") == 0;
        struct bson_walk walk = {.total = p->raw_bytes};
        uint64_t lines = 0, raw = 0, last_report = 0;
        for (;;) {
            size_t got = 0;
            int g = bk_reader_read(r, buf, READ_CHUNK, &got, err);
            if (g != RP_OK) {
                rc = g;
                goto out;
            }
            if (got == 0)
                break;
            raw += got;
            if (bson) {
                if (walk_bson(&walk, buf, got, p->name, err) != RP_OK)
                    goto out;
            } else {
                for (const unsigned char *q = buf, *end = buf + got;
                     (q = memchr(q, '\n', (size_t)(end - q))) != NULL; q++)
                    lines++;
            }
            if (progress && raw - last_report >= PROGRESS_STEP && p->raw_bytes > 0) {
                last_report = raw;
                uint64_t part_done =
                    (uint64_t)((double)p->bytes * (double)raw / (double)p->raw_bytes);
                progress(ud, "verify", done + part_done, total, "bytes");
            }
        }
        if (bson && (walk.left != 0 || walk.hdr_have != 0)) {
            rp_error_set(err, RP_EIO, "%s: the last document is cut short: the part is damaged",
                         p->name);
            goto out;
        }
        uint64_t counted = bson ? walk.docs : lines;
        if (counted != p->count) {
            char a[32], b[32];
            thousands(counted, a);
            thousands(p->count, b);
            rp_error_set(err, RP_EIO, "%s: %s %s, the manifest says %s", p->name, a,
                         bson ? "documents" : "rows", b);
            goto out;
        }
        done += p->bytes;
        if (progress)
            progress(ud, "verify", done, total, "bytes");
    }
    rc = RP_OK;
out:
    free(buf);
    bk_reader_close(r);
    return rc;
}
