/* rampart-backup's archive (backup.h): the writer streams each part through zstd into a
 * temporary file while hashing the compressed bytes, then assembles one POSIX tar (manifest.json
 * first, then the parts) into OUT.tmp, fsyncs it and renames it to OUT. The reader walks the tar
 * in manifest order, decompressing each part while hashing what is stored, and checks the
 * SHA-256 and sizes at the end of every part; every error names the part it concerns.
 *
 * Writer states: open -> (part_begin -> part_write* -> part_end)* -> finish -> free.
 * Reader states: open (manifest read) -> (next -> read* until *got == 0)* -> next = ENOENT. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <sodium.h>
#include <zstd.h>

#include "backup.h"
#include "rampart/mem.h"

#define MANIFEST_NAME "manifest.json"
#define MANIFEST_CAP  (64u << 20)
#define IO_CHUNK      (64u << 10)

/* ---- writing ------------------------------------------------------------------------------ */

struct bk_writer {
    char *tmpdir;
    int made_tmpdir;
    struct bk_part_info *parts;
    char **files; /* temporary file of each part */
    size_t n_parts, cap;
    /* the open part */
    int open;
    int broken; /* a part failed: finish refuses to write an archive missing data */
    FILE *f;
    ZSTD_CCtx *cctx;
    crypto_hash_sha256_state sha;
    void *outbuf;
    size_t outcap;
};

static void hex(const unsigned char *d, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[d[i] >> 4];
        out[2 * i + 1] = digits[d[i] & 15];
    }
    out[2 * n] = '\0';
}

static int object_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 120 || strstr(s, ".."))
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return 0;
    }
    return 1;
}

int bk_writer_open(const char *tmpdir, struct bk_writer **out, struct rp_error *err)
{
    if (sodium_init() < 0)
        return rp_error_set(err, RP_EIO, "libsodium failed to initialise");
    int made = 0;
    if (mkdir(tmpdir, 0700) == 0)
        made = 1;
    else if (errno != EEXIST)
        return rp_error_set(err, RP_EIO, "cannot create the temporary directory %s: %s", tmpdir,
                            strerror(errno));
    struct bk_writer *w = rp_xcalloc(1, sizeof(*w));
    w->tmpdir = rp_xstrdup(tmpdir);
    w->made_tmpdir = made;
    w->outcap = ZSTD_CStreamOutSize();
    w->outbuf = rp_xmalloc(w->outcap);
    *out = w;
    return RP_OK;
}

static void abandon_part(struct bk_writer *w)
{
    if (w->f)
        fclose(w->f);
    w->f = NULL;
    ZSTD_freeCCtx(w->cctx);
    w->cctx = NULL;
    w->open = 0;
}

int bk_part_begin(struct bk_writer *w, const char *kind, const char *object, const char *ext,
                  struct rp_error *err)
{
    if (w->open)
        return rp_error_set(err, RP_EINVAL, "%s: a part is already open (end it first)",
                            w->parts[w->n_parts - 1].name);
    int pg = strcmp(kind, "postgres") == 0 && strcmp(ext, "copy") == 0;
    int mg = strcmp(kind, "mongo") == 0 && strcmp(ext, "bson") == 0;
    if (!pg && !mg)
        return rp_error_set(err, RP_EINVAL,
                            "part kind/extension %.40s/%.40s: must be postgres/copy or mongo/bson",
                            kind, ext);
    if (!object_ok(object))
        return rp_error_set(err, RP_EINVAL,
                            "%s object \"%.130s\" is not a safe name ([A-Za-z0-9_.-], 1 to 120 "
                            "characters, no \"..\"): rename it or leave it out",
                            kind, object);
    char *name = rp_xasprintf("%s/%s.%s.zst", kind, object, ext);
    for (size_t i = 0; i < w->n_parts; i++)
        if (strcmp(w->parts[i].name, name) == 0) {
            rp_error_set(err, RP_EEXIST, "%s: this part was already written", name);
            free(name);
            return RP_EEXIST;
        }
    char *file = rp_xasprintf("%s/part-%zu.zst", w->tmpdir, w->n_parts);
    int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (!f) {
        if (fd >= 0)
            close(fd);
        rp_error_set(err, RP_EIO, "%s: cannot create the temporary file %s: %s", name, file,
                     strerror(errno));
        free(name);
        free(file);
        return RP_EIO;
    }
    if (w->n_parts == w->cap) {
        w->cap = w->cap ? w->cap * 2 : 16;
        w->parts = rp_xrealloc(w->parts, w->cap * sizeof(*w->parts));
        w->files = rp_xrealloc(w->files, w->cap * sizeof(*w->files));
    }
    struct bk_part_info *p = &w->parts[w->n_parts];
    memset(p, 0, sizeof(*p));
    p->name = name;
    p->kind = rp_xstrdup(kind);
    p->object = rp_xstrdup(object);
    w->files[w->n_parts] = file;
    w->n_parts++;
    w->f = f;
    w->cctx = ZSTD_createCCtx();
    if (!w->cctx)
        abort(); /* only fails when out of memory */
    ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_compressionLevel, 3);
    ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_checksumFlag, 1);
    crypto_hash_sha256_init(&w->sha);
    w->open = 1;
    return RP_OK;
}

/* Compress `data` with `op`; write and hash what comes out. */
static int compress(struct bk_writer *w, const void *data, size_t len, ZSTD_EndDirective op,
                    struct rp_error *err)
{
    struct bk_part_info *p = &w->parts[w->n_parts - 1];
    ZSTD_inBuffer in = {data, len, 0};
    for (;;) {
        ZSTD_outBuffer o = {w->outbuf, w->outcap, 0};
        size_t left = ZSTD_compressStream2(w->cctx, &o, &in, op);
        if (ZSTD_isError(left))
            return rp_error_set(err, RP_EIO, "%s: zstd compression failed: %s", p->name,
                                ZSTD_getErrorName(left));
        if (o.pos > 0) {
            if (fwrite(w->outbuf, 1, o.pos, w->f) != o.pos)
                return rp_error_set(err, RP_EIO,
                                    "%s: cannot write the temporary file in %s: %s (is the "
                                    "disk full?)",
                                    p->name, w->tmpdir, strerror(errno));
            crypto_hash_sha256_update(&w->sha, w->outbuf, o.pos);
            p->bytes += o.pos;
        }
        if (op == ZSTD_e_continue ? in.pos == in.size : left == 0)
            return RP_OK;
    }
}

int bk_part_write(struct bk_writer *w, const void *data, size_t len, struct rp_error *err)
{
    if (!w->open)
        return rp_error_set(err, RP_EINVAL, "bk_part_write: no part is open");
    if (len == 0)
        return RP_OK;
    int rc = compress(w, data, len, ZSTD_e_continue, err);
    if (rc != RP_OK) {
        w->broken = 1;
        return rc;
    }
    w->parts[w->n_parts - 1].raw_bytes += len;
    return RP_OK;
}

int bk_part_end(struct bk_writer *w, uint64_t count, const bson_t *extra, struct rp_error *err)
{
    if (!w->open)
        return rp_error_set(err, RP_EINVAL, "bk_part_end: no part is open");
    struct bk_part_info *p = &w->parts[w->n_parts - 1];
    int rc = compress(w, NULL, 0, ZSTD_e_end, err);
    if (rc == RP_OK && fclose(w->f) != 0)
        rc = rp_error_set(err, RP_EIO, "%s: cannot write the temporary file in %s: %s", p->name,
                          w->tmpdir, strerror(errno));
    else if (rc != RP_OK)
        fclose(w->f);
    w->f = NULL;
    abandon_part(w);
    if (rc != RP_OK) {
        w->broken = 1;
        return rc;
    }
    unsigned char d[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final(&w->sha, d);
    hex(d, sizeof(d), p->sha256);
    p->count = count;
    p->extra = extra ? bson_copy(extra) : NULL;
    return RP_OK;
}

static void copy_parts(struct bk_manifest *m, const struct bk_part_info *src, size_t n)
{
    for (size_t i = 0; i < m->n_parts; i++) {
        free(m->parts[i].name);
        free(m->parts[i].kind);
        free(m->parts[i].object);
        if (m->parts[i].extra)
            bson_destroy(m->parts[i].extra);
    }
    free(m->parts);
    m->parts = rp_xcalloc(n ? n : 1, sizeof(*m->parts));
    for (size_t i = 0; i < n; i++) {
        m->parts[i] = src[i];
        m->parts[i].name = rp_xstrdup(src[i].name);
        m->parts[i].kind = rp_xstrdup(src[i].kind);
        m->parts[i].object = rp_xstrdup(src[i].object);
        m->parts[i].extra = src[i].extra ? bson_copy(src[i].extra) : NULL;
    }
    m->n_parts = n;
}

static int tar_header(struct archive *a, const char *name, uint64_t size, time_t now,
                      const char *out_path, struct rp_error *err)
{
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, name);
    archive_entry_set_size(e, (la_int64_t)size);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_mtime(e, now, 0);
    int r = archive_write_header(a, e);
    archive_entry_free(e);
    if (r != ARCHIVE_OK)
        return rp_error_set(err, RP_EIO, "%s: cannot write the entry %s: %s", out_path, name,
                            archive_error_string(a));
    return RP_OK;
}

static int tar_data(struct archive *a, const void *d, size_t n, const char *name,
                    const char *out_path, struct rp_error *err)
{
    la_ssize_t r = archive_write_data(a, d, n);
    if (r < 0 || (size_t)r != n)
        return rp_error_set(err, RP_EIO, "%s: cannot write %s: %s (is the disk full?)", out_path,
                            name, archive_error_string(a));
    return RP_OK;
}

static int fsync_dir_of(const char *path)
{
    char *copy = rp_xstrdup(path);
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
    free(copy);
    if (fd < 0)
        return -1;
    int r = fsync(fd);
    close(fd);
    return r;
}

int bk_writer_finish(struct bk_writer *w, struct bk_manifest *m, const char *out_path,
                     struct rp_error *err)
{
    int rc = RP_EIO;
    if (w->open)
        return rp_error_set(err, RP_EINVAL, "%s: the part is still open (end it first)",
                            w->parts[w->n_parts - 1].name);
    if (w->broken)
        return rp_error_set(err, RP_EINVAL,
                            "%s: not written, because writing a part failed earlier", out_path);
    if (m->format == 0)
        m->format = BK_FORMAT;
    copy_parts(m, w->parts, w->n_parts);
    char *json = bk_manifest_to_json(m);
    char *tmp = rp_xasprintf("%s.tmp", out_path);
    void *buf = rp_xmalloc(IO_CHUNK);
    struct archive *a = archive_write_new();
    FILE *f = NULL;
    time_t now = time(NULL);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        rp_error_set(err, RP_EIO, "cannot create %s: %s", tmp, strerror(errno));
        goto out;
    }
    if (fchmod(fd, 0600) != 0) { /* O_CREAT does not change the mode of an old leftover */
        rp_error_set(err, RP_EIO, "%s: cannot make it private (chmod 0600): %s", tmp,
                     strerror(errno));
        goto out;
    }
    if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
        archive_write_open_fd(a, fd) != ARCHIVE_OK) {
        rp_error_set(err, RP_EIO, "%s: libarchive: %s", tmp, archive_error_string(a));
        goto out;
    }
    if (tar_header(a, MANIFEST_NAME, strlen(json), now, tmp, err) != RP_OK ||
        tar_data(a, json, strlen(json), MANIFEST_NAME, tmp, err) != RP_OK)
        goto out;
    for (size_t i = 0; i < w->n_parts; i++) {
        const struct bk_part_info *p = &w->parts[i];
        f = fopen(w->files[i], "rb");
        if (!f) {
            rp_error_set(err, RP_EIO, "%s: cannot reopen the temporary file %s: %s", p->name,
                         w->files[i], strerror(errno));
            goto out;
        }
        if (tar_header(a, p->name, p->bytes, now, tmp, err) != RP_OK)
            goto out;
        uint64_t copied = 0;
        size_t n;
        while ((n = fread(buf, 1, IO_CHUNK, f)) > 0) {
            if (tar_data(a, buf, n, p->name, tmp, err) != RP_OK)
                goto out;
            copied += n;
        }
        if (ferror(f) || copied != p->bytes) {
            rp_error_set(err, RP_EIO,
                         "%s: the temporary file %s changed size (%llu bytes, "
                         "expected %llu)",
                         p->name, w->files[i], (unsigned long long)copied,
                         (unsigned long long)p->bytes);
            goto out;
        }
        fclose(f);
        f = NULL;
    }
    if (archive_write_close(a) != ARCHIVE_OK) {
        rp_error_set(err, RP_EIO, "%s: cannot finish the archive: %s", tmp,
                     archive_error_string(a));
        goto out;
    }
    if (fsync(fd) != 0) {
        rp_error_set(err, RP_EIO, "%s: fsync failed: %s", tmp, strerror(errno));
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        rp_error_set(err, RP_EIO, "%s: close failed: %s", tmp, strerror(errno));
        goto out;
    }
    fd = -1;
    if (rename(tmp, out_path) != 0) {
        rp_error_set(err, RP_EIO, "cannot rename %s to %s: %s", tmp, out_path, strerror(errno));
        goto out;
    }
    if (fsync_dir_of(out_path) != 0) {
        rp_error_set(err, RP_EIO, "%s: fsync of its directory failed: %s", out_path,
                     strerror(errno));
        goto out;
    }
    rc = RP_OK;
out:
    if (f)
        fclose(f);
    archive_write_free(a); /* closes the archive if still open; never the fd */
    if (fd >= 0)
        close(fd);
    if (rc != RP_OK)
        unlink(tmp);
    free(buf);
    free(tmp);
    free(json);
    return rc;
}

void bk_writer_free(struct bk_writer *w)
{
    if (!w)
        return;
    abandon_part(w);
    for (size_t i = 0; i < w->n_parts; i++) {
        unlink(w->files[i]);
        free(w->files[i]);
        free(w->parts[i].name);
        free(w->parts[i].kind);
        free(w->parts[i].object);
        if (w->parts[i].extra)
            bson_destroy(w->parts[i].extra);
    }
    if (w->made_tmpdir)
        rmdir(w->tmpdir);
    free(w->files);
    free(w->parts);
    free(w->tmpdir);
    free(w->outbuf);
    free(w);
}

/* ---- reading ------------------------------------------------------------------------------ */

struct bk_reader {
    struct archive *a;
    char *path;
    struct bk_manifest m;
    size_t next;              /* index of the next part expected */
    struct bk_part_info *cur; /* part being read, or NULL */
    int cur_done;             /* its end was reached and checked */
    ZSTD_DCtx *dctx;
    crypto_hash_sha256_state sha;
    unsigned char *inbuf;
    ZSTD_inBuffer in;
    int in_eof;
    size_t zret; /* last ZSTD_decompressStream result: 0 = a frame just ended */
    uint64_t stored, raw;
};

static int truncated(struct archive *a)
{
    const char *s = archive_error_string(a);
    return s && (strstr(s, "runcated") || strstr(s, "unexpected end"));
}

/* An error from libarchive while inside `where` (an entry name). */
static int archive_fail(struct bk_reader *r, const char *where, struct rp_error *err)
{
    if (truncated(r->a))
        return rp_error_set(err, RP_EIO, "%s: the archive ends inside %s: truncated", r->path,
                            where);
    return rp_error_set(err, RP_EIO, "%s: %s: the archive is damaged (%s)", r->path, where,
                        archive_error_string(r->a));
}

int bk_reader_open(const char *path, struct bk_reader **out, struct rp_error *err)
{
    int rc = RP_EINVAL;
    struct bk_reader *r = rp_xcalloc(1, sizeof(*r));
    char *json = NULL;
    r->path = rp_xstrdup(path);
    r->a = archive_read_new();
    archive_read_support_format_tar(r->a);
    if (archive_read_open_filename(r->a, path, IO_CHUNK) != ARCHIVE_OK) {
        if (access(path, R_OK) != 0)
            rc = rp_error_set(err, errno == ENOENT ? RP_ENOENT : RP_EIO, "cannot open %s: %s", path,
                              strerror(errno));
        else
            rc = rp_error_set(err, RP_EINVAL,
                              "%s: not a Rampart backup (not a tar archive, or its first header "
                              "is damaged): %s",
                              path, archive_error_string(r->a));
        goto out;
    }
    struct archive_entry *e;
    int h = archive_read_next_header(r->a, &e);
    if (h == ARCHIVE_EOF) {
        rc = rp_error_set(err, RP_EINVAL, "%s: not a Rampart backup: the archive is empty", path);
        goto out;
    }
    if (h != ARCHIVE_OK && h != ARCHIVE_WARN) {
        if (truncated(r->a))
            rc = rp_error_set(err, RP_EINVAL, "%s: the archive ends inside %s: truncated", path,
                              MANIFEST_NAME);
        else
            rc = rp_error_set(err, RP_EINVAL,
                              "%s: not a Rampart backup (not a tar archive, or "
                              "damaged): %s",
                              path, archive_error_string(r->a));
        goto out;
    }
    const char *name = archive_entry_pathname(e);
    if (!name || strcmp(name, MANIFEST_NAME) != 0) {
        rc = rp_error_set(err, RP_EINVAL, "%s: not a Rampart backup: the first entry is %.200s",
                          path, name ? name : "(unnamed)");
        goto out;
    }
    if (!archive_entry_size_is_set(e) || archive_entry_size(e) < 0 ||
        archive_entry_size(e) > (la_int64_t)MANIFEST_CAP) {
        rc = rp_error_set(err, RP_EINVAL, "%s: %s is larger than %u MiB: the archive is damaged",
                          path, MANIFEST_NAME, MANIFEST_CAP >> 20);
        goto out;
    }
    size_t size = (size_t)archive_entry_size(e), got = 0;
    json = rp_xmalloc(size + 1);
    while (got < size) {
        la_ssize_t n = archive_read_data(r->a, json + got, size - got);
        if (n < 0) {
            rc = archive_fail(r, MANIFEST_NAME, err);
            goto out;
        }
        if (n == 0) {
            rc = rp_error_set(err, RP_EIO, "%s: the archive ends inside %s: truncated", path,
                              MANIFEST_NAME);
            goto out;
        }
        got += (size_t)n;
    }
    json[size] = '\0';
    struct rp_error perr = {0};
    if (bk_manifest_parse(json, size, &r->m, &perr) != RP_OK) {
        rc = rp_error_set(err, perr.code, "%s: %s", path, perr.msg);
        goto out;
    }
    r->inbuf = rp_xmalloc(IO_CHUNK);
    r->dctx = ZSTD_createDCtx();
    if (!r->dctx)
        abort();
    *out = r;
    r = NULL;
    rc = RP_OK;
out:
    free(json);
    bk_reader_close(r);
    return rc;
}

const struct bk_manifest *bk_reader_manifest(const struct bk_reader *r)
{
    return &r->m;
}

int bk_reader_next(struct bk_reader *r, const struct bk_part_info **part, struct rp_error *err)
{
    const char *prev = r->cur ? r->cur->name : MANIFEST_NAME;
    r->cur = NULL;
    struct archive_entry *e;
    int h = archive_read_next_header(r->a, &e);
    if (h == ARCHIVE_EOF) {
        if (r->next < r->m.n_parts)
            return rp_error_set(err, RP_EINVAL,
                                "%s: part %s listed in the manifest is missing from the archive",
                                r->path, r->m.parts[r->next].name);
        return RP_ENOENT;
    }
    if (h != ARCHIVE_OK && h != ARCHIVE_WARN)
        return archive_fail(r, prev, err);
    const char *name = archive_entry_pathname(e);
    if (!name)
        name = "(unnamed)";
    if (r->next < r->m.n_parts && strcmp(name, r->m.parts[r->next].name) != 0) {
        for (size_t i = r->next + 1; i < r->m.n_parts; i++)
            if (strcmp(name, r->m.parts[i].name) == 0)
                return rp_error_set(
                    err, RP_EINVAL,
                    "%s: part %s listed in the manifest is missing from the archive", r->path,
                    r->m.parts[r->next].name);
    }
    if (r->next >= r->m.n_parts || strcmp(name, r->m.parts[r->next].name) != 0)
        return rp_error_set(err, RP_EINVAL,
                            "%s: unexpected entry %.200s (not listed in the manifest, or out of "
                            "order): the archive was modified",
                            r->path, name);
    struct bk_part_info *p = &r->m.parts[r->next];
    if (archive_entry_filetype(e) != AE_IFREG || !archive_entry_size_is_set(e) ||
        (uint64_t)archive_entry_size(e) != p->bytes)
        return rp_error_set(err, RP_EINVAL,
                            "%s: %s: %lld bytes in the archive, the manifest says %llu (the "
                            "archive is damaged)",
                            r->path, p->name, (long long)archive_entry_size(e),
                            (unsigned long long)p->bytes);
    r->next++;
    r->cur = p;
    r->cur_done = 0;
    ZSTD_DCtx_reset(r->dctx, ZSTD_reset_session_only);
    crypto_hash_sha256_init(&r->sha);
    r->in = (ZSTD_inBuffer){r->inbuf, 0, 0};
    r->in_eof = 0;
    r->zret = 1;
    r->stored = r->raw = 0;
    *part = p;
    return RP_OK;
}

/* End of the current part's stored bytes: check everything against the manifest. */
static int finish_part(struct bk_reader *r, struct rp_error *err)
{
    struct bk_part_info *p = r->cur;
    if (r->zret != 0)
        return rp_error_set(err, RP_EIO,
                            "%s: the compressed data ends in the middle of a frame (the archive "
                            "is damaged)",
                            p->name);
    unsigned char d[crypto_hash_sha256_BYTES];
    char h[65];
    crypto_hash_sha256_final(&r->sha, d);
    hex(d, sizeof(d), h);
    if (strcmp(h, p->sha256) != 0 || r->stored != p->bytes)
        return rp_error_set(err, RP_EIO, "%s: checksum mismatch (the archive is damaged)", p->name);
    if (r->raw != p->raw_bytes)
        return rp_error_set(err, RP_EIO,
                            "%s: %llu bytes uncompressed, the manifest says %llu (the archive "
                            "is damaged)",
                            p->name, (unsigned long long)r->raw, (unsigned long long)p->raw_bytes);
    r->cur_done = 1;
    return RP_OK;
}

int bk_reader_read(struct bk_reader *r, void *buf, size_t cap, size_t *got, struct rp_error *err)
{
    *got = 0;
    if (!r->cur)
        return rp_error_set(err, RP_EINVAL, "bk_reader_read: no current part (call next)");
    if (r->cur_done)
        return RP_OK;
    if (cap == 0)
        return rp_error_set(err, RP_EINVAL, "bk_reader_read: empty buffer");
    struct bk_part_info *p = r->cur;
    ZSTD_outBuffer o = {buf, cap, 0};
    for (;;) {
        if (r->in.pos == r->in.size && !r->in_eof) {
            la_ssize_t n = archive_read_data(r->a, r->inbuf, IO_CHUNK);
            if (n < 0)
                return archive_fail(r, p->name, err);
            if (n == 0) {
                r->in_eof = 1;
                if (r->stored != p->bytes)
                    return rp_error_set(err, RP_EIO, "%s: the archive ends inside %s: truncated",
                                        r->path, p->name);
            } else {
                crypto_hash_sha256_update(&r->sha, r->inbuf, (size_t)n);
                r->stored += (uint64_t)n;
                r->in = (ZSTD_inBuffer){r->inbuf, (size_t)n, 0};
            }
        }
        size_t before = r->in.pos;
        size_t ret = ZSTD_decompressStream(r->dctx, &o, &r->in);
        if (ZSTD_isError(ret))
            return rp_error_set(err, RP_EIO,
                                "%s: corrupted compressed data (%s): the archive is "
                                "damaged",
                                p->name, ZSTD_getErrorName(ret));
        if (r->in.pos != before || o.pos > 0)
            r->zret = ret;
        if (o.pos > 0)
            break;
        if (r->in.pos == r->in.size && r->in_eof) {
            int rc = finish_part(r, err);
            return rc;
        }
    }
    r->raw += o.pos;
    *got = o.pos;
    return RP_OK;
}

void bk_reader_close(struct bk_reader *r)
{
    if (!r)
        return;
    if (r->a)
        archive_read_free(r->a);
    ZSTD_freeDCtx(r->dctx);
    bk_manifest_cleanup(&r->m);
    free(r->inbuf);
    free(r->path);
    free(r);
}
