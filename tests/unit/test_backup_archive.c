/* Unit tests of rampart-backup's archive layer (backup/archive.c, manifest.c, verify.c): a round
 * trip through the writer and reader, then damaged archives (flipped bytes, truncation, a part
 * removed or added with libarchive, a wrong count, a newer format, unsafe names, bad BSON) whose
 * errors must name the part concerned. Archives live in a private mkdtemp directory. */
#define _GNU_SOURCE /* memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>

#include "backup.h"
#include "rampart/mem.h"

#define N_PARTS 3

struct fixture {
    char dir[64];
    char path[128]; /* the good archive */
    char work[128]; /* a damaged copy */
    unsigned char *data[N_PARTS];
    size_t len[N_PARTS];
    uint64_t count[N_PARTS];
    struct bk_manifest m; /* as written */
};

static const char *const names[N_PARTS] = {"postgres/runs.copy.zst", "postgres/empty.copy.zst",
                                           "mongo/results.bson.zst"};

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

/* Append one BSON document {"i": n, "blob": <len random bytes>} to data. */
static void add_doc(unsigned char **data, size_t *len, int n, size_t blob)
{
    unsigned char *b = rp_xmalloc(blob ? blob : 1);
    for (size_t i = 0; i < blob; i++)
        b[i] = (unsigned char)rnd();
    bson_t doc;
    bson_init(&doc);
    bson_append_int32(&doc, "i", -1, n);
    bson_append_binary(&doc, "blob", -1, BSON_SUBTYPE_BINARY, b, (uint32_t)blob);
    *data = rp_xrealloc(*data, *len + doc.len);
    memcpy(*data + *len, bson_get_data(&doc), doc.len);
    *len += doc.len;
    bson_destroy(&doc);
    free(b);
}

/* Write `data` in pieces of random sizes. */
static void write_part(struct bk_writer *w, const char *kind, const char *object, const char *ext,
                       const unsigned char *d, size_t n, uint64_t count, const bson_t *extra)
{
    struct rp_error err = {0};
    assert_int_equal(bk_part_begin(w, kind, object, ext, &err), RP_OK);
    size_t off = 0;
    while (off < n) {
        size_t k = 1 + rnd() % 70000;
        if (k > n - off)
            k = n - off;
        assert_int_equal(bk_part_write(w, d + off, k, &err), RP_OK);
        off += k;
    }
    assert_int_equal(bk_part_end(w, count, extra, &err), RP_OK);
}

static int setup(void **state)
{
    struct fixture *f = rp_xcalloc(1, sizeof(*f));
    strcpy(f->dir, "/tmp/bkarch-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/backup.tar", f->dir);
    snprintf(f->work, sizeof(f->work), "%s/work.tar", f->dir);
    /* postgres/runs: 1000 COPY lines */
    struct rp_buf b;
    rp_buf_init(&b, 0);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(rp_buf_printf(&b, "%d\trun-%d\t{\"ok\": true}\n", i, i * 7), RP_OK);
    f->data[0] = (unsigned char *)b.data;
    f->len[0] = b.len;
    f->count[0] = 1000;
    /* postgres/empty: nothing */
    f->data[1] = rp_xmalloc(1);
    f->len[1] = 0;
    f->count[1] = 0;
    /* mongo/results: > 1 MiB of documents with random payloads, one larger than any buffer */
    int n = 0;
    while (f->len[2] < (3u << 19)) {
        add_doc(&f->data[2], &f->len[2], n, n == 7 ? 400000 : rnd() % 3000);
        n++;
    }
    f->count[2] = (uint64_t)n;

    struct rp_error err = {0};
    char tmpdir[96];
    snprintf(tmpdir, sizeof(tmpdir), "%s/tmp", f->dir);
    struct bk_writer *w = NULL;
    assert_int_equal(bk_writer_open(tmpdir, &w, &err), RP_OK);
    write_part(w, "postgres", "runs", "copy", f->data[0], f->len[0], f->count[0], NULL);
    write_part(w, "postgres", "empty", "copy", f->data[1], f->len[1], f->count[1], NULL);
    bson_t *extra = BCON_NEW("indexes", "[", "{", "key", "{", "run_id", BCON_INT32(1), "}", "name",
                             BCON_UTF8("run_id_1"), "}", "]");
    write_part(w, "mongo", "results", "bson", f->data[2], f->len[2], f->count[2], extra);
    bson_destroy(extra);
    f->m.rampart_version = rp_xstrdup("0.1.0");
    f->m.schema_version = 6;
    f->m.installation_id = rp_xstrdup("7f0c2a4e-1111-4222-8333-944455556666");
    f->m.created_at = rp_xstrdup("2026-11-23T23:59:00Z");
    f->m.pg_database = rp_xstrdup("rampart");
    f->m.mongo_database = rp_xstrdup("rampart");
    assert_int_equal(bk_writer_finish(w, &f->m, f->path, &err), RP_OK);
    bk_writer_free(w);
    struct stat st;
    assert_int_not_equal(stat(tmpdir, &st), 0); /* temporary files and dir removed */
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    unlink(f->path);
    unlink(f->work);
    char tmp[160];
    snprintf(tmp, sizeof(tmp), "%s.tmp", f->path);
    unlink(tmp);
    rmdir(f->dir);
    for (int i = 0; i < N_PARTS; i++)
        free(f->data[i]);
    bk_manifest_cleanup(&f->m);
    free(f);
    return 0;
}

/* ---- helpers on archive files -----------------------------------------------------------------
 */

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    unsigned char *d = rp_xmalloc((size_t)n + 1);
    assert_int_equal(fread(d, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    *len = (size_t)n;
    return d;
}

static void spit(const char *path, const unsigned char *d, size_t n)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(d, 1, n, fp), n);
    assert_int_equal(fclose(fp), 0);
}

/* Offset of the data of entry `name` in the tar at `path` (short names: one 512-byte header). */
static size_t data_offset(const char *path, const char *name, size_t *size)
{
    struct archive *a = archive_read_new();
    archive_read_support_format_tar(a);
    assert_int_equal(archive_read_open_filename(a, path, 10240), ARCHIVE_OK);
    struct archive_entry *e;
    long long off = -1;
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
        if (strcmp(archive_entry_pathname(e), name) == 0) {
            off = archive_read_header_position(a) + 512;
            *size = (size_t)archive_entry_size(e);
            break;
        }
    }
    archive_read_free(a);
    assert_true(off > 0);
    return (size_t)off;
}

/* Copy f->path to f->work with byte `off` xor-ed with `x` and the length cut to `len`. */
static void damaged_copy(struct fixture *f, size_t off, unsigned char x, size_t len)
{
    size_t n;
    unsigned char *d = slurp(f->path, &n);
    if (off < n)
        d[off] ^= x;
    spit(f->work, d, len < n ? len : n);
    free(d);
}

/* Rebuild f->path into f->work: leave out entry `skip`, add an entry `add` after entry
 * `add_after` (NULL: at the end), and replace the manifest by `manifest` if not NULL. */
static void rebuild(struct fixture *f, const char *skip, const char *add, const char *add_after,
                    const char *manifest)
{
    struct archive *in = archive_read_new(), *out = archive_write_new();
    archive_read_support_format_tar(in);
    assert_int_equal(archive_read_open_filename(in, f->path, 10240), ARCHIVE_OK);
    assert_int_equal(archive_write_set_format_pax_restricted(out), ARCHIVE_OK);
    assert_int_equal(archive_write_open_filename(out, f->work), ARCHIVE_OK);
    struct archive_entry *e;
    char buf[8192];
    const char junk[] = "not part of any backup\n";
    while (archive_read_next_header(in, &e) == ARCHIVE_OK) {
        const char *name = archive_entry_pathname(e);
        int is_manifest = strcmp(name, "manifest.json") == 0;
        int skip_it = skip && strcmp(name, skip) == 0;
        if (!skip_it) {
            if (is_manifest && manifest)
                archive_entry_set_size(e, (la_int64_t)strlen(manifest));
            assert_int_equal(archive_write_header(out, e), ARCHIVE_OK);
            if (is_manifest && manifest) {
                assert_int_equal(archive_write_data(out, manifest, strlen(manifest)),
                                 (la_ssize_t)strlen(manifest));
            } else {
                la_ssize_t n;
                while ((n = archive_read_data(in, buf, sizeof(buf))) > 0)
                    assert_int_equal(archive_write_data(out, buf, (size_t)n), n);
                assert_true(n == 0);
            }
        }
        if (add && add_after && strcmp(name, add_after) == 0) {
            struct archive_entry *x = archive_entry_new();
            archive_entry_set_pathname(x, add);
            archive_entry_set_size(x, (la_int64_t)strlen(junk));
            archive_entry_set_filetype(x, AE_IFREG);
            archive_entry_set_perm(x, 0644);
            assert_int_equal(archive_write_header(out, x), ARCHIVE_OK);
            assert_int_equal(archive_write_data(out, junk, strlen(junk)), (la_ssize_t)strlen(junk));
            archive_entry_free(x);
        }
    }
    if (add && !add_after) {
        struct archive_entry *x = archive_entry_new();
        archive_entry_set_pathname(x, add);
        archive_entry_set_size(x, (la_int64_t)strlen(junk));
        archive_entry_set_filetype(x, AE_IFREG);
        archive_entry_set_perm(x, 0644);
        assert_int_equal(archive_write_header(out, x), ARCHIVE_OK);
        assert_int_equal(archive_write_data(out, junk, strlen(junk)), (la_ssize_t)strlen(junk));
        archive_entry_free(x);
    }
    assert_int_equal(archive_write_close(out), ARCHIVE_OK);
    archive_write_free(out);
    archive_read_free(in);
}

/* bk_verify on `path` must fail with a message containing every given fragment. */
static void expect_verify_error(const char *path, const char *frag1, const char *frag2)
{
    struct rp_error err = {0};
    int rc = bk_verify(path, NULL, NULL, &err);
    if (rc == RP_OK || !strstr(err.msg, frag1) || (frag2 && !strstr(err.msg, frag2)))
        fail_msg("expected an error with \"%s\" and \"%s\", got %d: %s", frag1, frag2 ? frag2 : "",
                 rc, err.msg);
}

/* ---- tests ---------------------------------------------------------------------------------- */

struct progress_seen {
    uint64_t done, total;
    int calls;
};
static void on_progress(void *ud, const char *what, uint64_t done, uint64_t total, const char *unit)
{
    struct progress_seen *p = ud;
    assert_string_equal(unit, "bytes");
    assert_true(done >= p->done && done <= total);
    p->done = done;
    p->total = total;
    p->calls++;
}

static void test_round_trip(void **state)
{
    struct fixture *f = *state;
    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_true(f->len[2] > (1u << 20));

    struct rp_error err = {0};
    struct bk_reader *r = NULL;
    assert_int_equal(bk_reader_open(f->path, &r, &err), RP_OK);
    const struct bk_manifest *m = bk_reader_manifest(r);
    assert_int_equal(m->format, BK_FORMAT);
    assert_int_equal(m->n_parts, N_PARTS);
    char *j1 = bk_manifest_to_json(&f->m), *j2 = bk_manifest_to_json(m);
    assert_string_equal(j1, j2);
    free(j1);
    free(j2);
    assert_non_null(m->parts[2].extra);
    unsigned char *buf = rp_xmalloc(1000);
    for (int i = 0; i < N_PARTS; i++) {
        const struct bk_part_info *p = NULL;
        assert_int_equal(bk_reader_next(r, &p, &err), RP_OK);
        assert_string_equal(p->name, names[i]);
        assert_int_equal(p->count, f->count[i]);
        assert_int_equal(p->raw_bytes, f->len[i]);
        size_t off = 0, got;
        size_t cap = 1 + (size_t)i * 499; /* odd read sizes */
        do {
            assert_int_equal(bk_reader_read(r, buf, cap, &got, &err), RP_OK);
            assert_true(off + got <= f->len[i]);
            assert_memory_equal(buf, f->data[i] + off, got);
            off += got;
        } while (got > 0);
        assert_int_equal(off, f->len[i]);
    }
    const struct bk_part_info *p = NULL;
    assert_int_equal(bk_reader_next(r, &p, &err), RP_ENOENT);
    free(buf);
    bk_reader_close(r);

    struct progress_seen seen = {0};
    assert_int_equal(bk_verify(f->path, on_progress, &seen, &err), RP_OK);
    assert_true(seen.calls >= N_PARTS);
    assert_true(seen.total > 0);
    assert_int_equal(seen.done, seen.total);
}

static void test_flipped_part_byte(void **state)
{
    struct fixture *f = *state;
    for (int i = 0; i < N_PARTS; i++) {
        size_t size, off = data_offset(f->path, names[i], &size);
        size_t len;
        unsigned char *d = slurp(f->path, &len);
        assert_memory_equal(d + off, "\x28\xb5\x2f\xfd", 4); /* a zstd frame starts here */
        assert_true(d[off + 4] & 0x04); /* Content_Checksum_flag: zstd checks its own output */
        free(d);
        /* the middle, the last byte (zstd's own checksum) */
        damaged_copy(f, off + size / 2, 0x10, SIZE_MAX);
        expect_verify_error(f->work, names[i], "damaged");
        damaged_copy(f, off + size - 1, 0x01, SIZE_MAX);
        expect_verify_error(f->work, names[i], "damaged");
    }
}

static void test_flipped_manifest_byte(void **state)
{
    struct fixture *f = *state;
    size_t size, off = data_offset(f->path, "manifest.json", &size);
    struct rp_error err = {0};
    struct bk_reader *r = NULL;
    /* the opening brace */
    damaged_copy(f, off, 0x01, SIZE_MAX);
    assert_int_not_equal(bk_reader_open(f->work, &r, &err), RP_OK);
    assert_non_null(strstr(err.msg, "manifest.json is not valid JSON"));
    /* a digit of a part's sha256: the checksum no longer matches that part */
    size_t len;
    unsigned char *d = slurp(f->path, &len);
    unsigned char *s = memmem(d + off, size, f->m.parts[0].sha256, 64);
    assert_non_null(s);
    size_t at = (size_t)(s - d) + 10;
    unsigned char c = d[at];
    free(d);
    damaged_copy(f, at, (unsigned char)(c ^ (c == '0' ? '1' : '0')), SIZE_MAX);
    expect_verify_error(f->work, "postgres/runs.copy.zst: checksum mismatch", NULL);
    /* a letter of a member name */
    d = slurp(f->path, &len);
    s = memmem(d + off, size, "\"raw_bytes\"", 11);
    assert_non_null(s);
    at = (size_t)(s - d) + 1;
    free(d);
    damaged_copy(f, at, 0x20, SIZE_MAX);
    assert_int_not_equal(bk_reader_open(f->work, &r, &err), RP_OK);
    assert_non_null(strstr(err.msg, "unknown member parts[0].Raw_bytes"));
    /* the tar header of the manifest (its name) */
    damaged_copy(f, 3, 0x01, SIZE_MAX);
    assert_int_not_equal(bk_reader_open(f->work, &r, &err), RP_OK);
    if (!strstr(err.msg, "not a Rampart backup"))
        fail_msg("%s", err.msg);
}

static void test_truncated(void **state)
{
    struct fixture *f = *state;
    struct rp_error err = {0};
    struct bk_reader *r = NULL;
    size_t msize, moff = data_offset(f->path, "manifest.json", &msize);
    /* inside the manifest */
    size_t cuts[] = {moff + 10, moff + msize / 2};
    for (size_t i = 0; i < 2; i++) {
        damaged_copy(f, 0, 0, cuts[i]);
        assert_int_not_equal(bk_reader_open(f->work, &r, &err), RP_OK);
        if (!strstr(err.msg, "manifest.json"))
            fail_msg("cut at %zu: %s", cuts[i], err.msg);
    }
    /* inside each part: near its start, middle and end */
    for (int i = 0; i < N_PARTS; i++) {
        size_t size, off = data_offset(f->path, names[i], &size);
        size_t at[] = {off + 1, off + size / 2, off + size - 1};
        for (size_t k = 0; k < 3; k++) {
            damaged_copy(f, 0, 0, at[k]);
            expect_verify_error(f->work, names[i], "truncated");
        }
    }
}

static void test_missing_part(void **state)
{
    struct fixture *f = *state;
    rebuild(f, "postgres/empty.copy.zst", NULL, NULL, NULL);
    expect_verify_error(f->work, "part postgres/empty.copy.zst listed in the manifest is missing",
                        NULL);
    rebuild(f, "mongo/results.bson.zst", NULL, NULL, NULL);
    expect_verify_error(f->work, "part mongo/results.bson.zst listed in the manifest is missing",
                        NULL);
    /* sanity: an unchanged rebuild verifies */
    rebuild(f, NULL, NULL, NULL, NULL);
    struct rp_error err = {0};
    assert_int_equal(bk_verify(f->work, NULL, NULL, &err), RP_OK);
}

static void test_extra_entry(void **state)
{
    struct fixture *f = *state;
    rebuild(f, NULL, "notes.txt", NULL, NULL);
    expect_verify_error(f->work, "unexpected entry notes.txt", NULL);
    rebuild(f, NULL, "postgres/zzz.copy.zst", "postgres/runs.copy.zst", NULL);
    expect_verify_error(f->work, "unexpected entry postgres/zzz.copy.zst", NULL);
    /* an archive whose first entry is not the manifest */
    rebuild(f, "manifest.json", NULL, NULL, NULL);
    struct rp_error err = {0};
    struct bk_reader *r = NULL;
    assert_int_not_equal(bk_reader_open(f->work, &r, &err), RP_OK);
    assert_non_null(strstr(err.msg, "not a Rampart backup: the first entry is postgres/runs"));
}

static void test_wrong_count(void **state)
{
    struct fixture *f = *state;
    struct bk_manifest m = {0};
    char *j = bk_manifest_to_json(&f->m);
    struct rp_error err = {0};
    assert_int_equal(bk_manifest_parse(j, strlen(j), &m, &err), RP_OK);
    free(j);
    m.parts[0].count = 1001;
    m.parts[2].count += 1;
    j = bk_manifest_to_json(&m);
    rebuild(f, NULL, NULL, NULL, j);
    expect_verify_error(f->work, "postgres/runs.copy.zst: 1,000 rows, the manifest says 1,001",
                        NULL);
    free(j);
    m.parts[0].count = 1000;
    j = bk_manifest_to_json(&m);
    rebuild(f, NULL, NULL, NULL, j);
    char want[128];
    char n1[32], n2[32];
    snprintf(n1, sizeof(n1), "%llu", (unsigned long long)f->count[2]);
    snprintf(n2, sizeof(n2), "%llu", (unsigned long long)f->count[2] + 1);
    snprintf(want, sizeof(want), "mongo/results.bson.zst: %s documents, the manifest says %s", n1,
             n2);
    expect_verify_error(f->work, want, NULL);
    free(j);
    bk_manifest_cleanup(&m);
}

static const char *const good_part =
    "{\"name\":\"postgres/runs.copy.zst\",\"kind\":\"postgres\",\"object\":\"runs\",\"count\":1,"
    "\"bytes\":2,\"raw_bytes\":3,\"sha256\":"
    "\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"}";

/* Parse a manifest whose parts are `parts` and format `format`; expect `frag` in the error, or
 * success when frag is NULL. */
static void expect_parse(int format, const char *parts, const char *frag)
{
    char *j = rp_xasprintf("{\"format\":%d,\"rampart_version\":\"0.1.0\",\"schema_version\":6,"
                           "\"installation_id\":\"x\",\"created_at\":\"t\",\"postgres\":{"
                           "\"database\":\"r\"},\"mongo\":{\"database\":\"r\"},\"parts\":[%s]}",
                           format, parts);
    struct bk_manifest m = {0};
    struct rp_error err = {0};
    int rc = bk_manifest_parse(j, strlen(j), &m, &err);
    if (!frag && rc != RP_OK)
        fail_msg("%s: %s", j, err.msg);
    if (frag && (rc != RP_EINVAL || !strstr(err.msg, frag)))
        fail_msg("%s: expected \"%s\", got %d: %s", j, frag, rc, err.msg);
    bk_manifest_cleanup(&m);
    free(j);
}

static char *part_with(const char *from, const char *to)
{
    const char *s = strstr(good_part, from);
    assert_non_null(s);
    return rp_xasprintf("%.*s%s%s", (int)(s - good_part), good_part, to, s + strlen(from));
}

static void test_format_and_strictness(void **state)
{
    (void)state;
    expect_parse(1, good_part, NULL);
    expect_parse(1, "", NULL);
    expect_parse(2, good_part,
                 "archive format 2 is newer than this rampart-backup understands (1): use a "
                 "newer rampart-backup");
    expect_parse(0, good_part, "format is 0");
    char *p, *two;
    struct {
        const char *from, *to, *frag;
    } cases[] = {
        {"\"count\":1", "\"count\":\"1\"", "parts[0].count must be an integer"},
        {"\"count\":1", "\"count\":-1", "parts[0].count is -1"},
        {"\"count\":1", "\"count\":1.5", "parts[0].count must be an integer"},
        {"\"count\":1,", "", "parts[0].count is missing"},
        {"0123456789abcdef\"", "0123456789ABCDEF\"", "parts[0].sha256 must be 64 lowercase hex"},
        {"0123456789abcdef\"", "0123456789abcde\"", "parts[0].sha256 must be 64 lowercase hex"},
        {"\"bytes\":2", "\"bytes\":2,\"bytes\":2", "parts[0].bytes appears twice"},
        {"\"bytes\":2", "\"size\":2", "unknown member parts[0].size"},
        {"\"kind\":\"postgres\"", "\"kind\":\"mysql\"", "parts[0].kind \"mysql\" is neither"},
        {"\"object\":\"runs\"", "\"object\":7", "parts[0].object must be a string"},
        {"}", ",\"extra\":[1]}", "parts[0].extra must be an object"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        p = part_with(cases[i].from, cases[i].to);
        expect_parse(1, p, cases[i].frag);
        free(p);
    }
    p = part_with("}", ",\"extra\":{\"indexes\":[]}}");
    expect_parse(1, p, NULL);
    free(p);
    two = rp_xasprintf("%s,%s", good_part, good_part);
    expect_parse(1, two, "parts[1].name postgres/runs.copy.zst is listed twice");
    free(two);
    expect_parse(1, "[]", "parts[0] must be an object");
    /* header members */
    struct bk_manifest m = {0};
    struct rp_error err = {0};
    const char *bad[][2] = {
        {"{}", "format is missing"},
        {"[1]", "unknown member 0"},
        {"{\"format\":\"1\"}", "format must be an integer"},
        {"{\"format\":1,\"rampart_version\":1}", "rampart_version must be a string"},
        {"{\"format\":1,\"postgres\":\"x\"}", "postgres must be an object"},
        {"{\"format\":1,\"mongo\":{\"db\":\"x\"}}", "unknown member mongo.db"},
        {"{\"format\":1,\"parts\":{}}", "parts must be an array"},
        {"{\"format\":1", "not valid JSON"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (bk_manifest_parse(bad[i][0], strlen(bad[i][0]), &m, &err) != RP_EINVAL ||
            !strstr(err.msg, bad[i][1]))
            fail_msg("%s: expected \"%s\", got: %s", bad[i][0], bad[i][1], err.msg);
    }
}

static void test_unsafe_names(void **state)
{
    (void)state;
    struct {
        const char *from, *to, *frag;
    } cases[] = {
        {"\"name\":\"postgres/runs.copy.zst\"", "\"name\":\"../x\"", "\"../x\" is not a safe"},
        {"\"name\":\"postgres/runs.copy.zst\"", "\"name\":\"/etc/passwd\"",
         "\"/etc/passwd\" is not a safe"},
        {"\"name\":\"postgres/runs.copy.zst\"", "\"name\":\"postgres/runs.bson.zst\"",
         "not a safe part name"},
        {"\"name\":\"postgres/runs.copy.zst\"", "\"name\":\"postgres/../runs.copy.zst\"",
         "not a safe part name"},
        {"\"object\":\"runs\"", "\"object\":\"..\"", "parts[0].object \"..\" is not a safe"},
        {"\"object\":\"runs\"", "\"object\":\"a/b\"", "parts[0].object \"a/b\" is not a safe"},
        {"\"object\":\"runs\"", "\"object\":\"\"", "is not a safe name"},
        {"\"kind\":\"postgres\"", "\"kind\":\"..\"", "is neither postgres nor mongo"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *p = part_with(cases[i].from, cases[i].to);
        expect_parse(1, p, cases[i].frag);
        free(p);
    }
    /* the writer refuses them too */
    char dir[] = "/tmp/bkarch-w-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct bk_writer *w = NULL;
    struct rp_error err = {0};
    assert_int_equal(bk_writer_open(dir, &w, &err), RP_OK);
    assert_int_equal(bk_part_begin(w, "postgres", "../x", "copy", &err), RP_EINVAL);
    assert_non_null(strstr(err.msg, "\"../x\" is not a safe name"));
    assert_int_equal(bk_part_begin(w, "postgres", "/etc/passwd", "copy", &err), RP_EINVAL);
    assert_int_equal(bk_part_begin(w, "postgres", "runs", "bson", &err), RP_EINVAL);
    assert_int_equal(bk_part_begin(w, "etc", "runs", "copy", &err), RP_EINVAL);
    bk_writer_free(w);
    assert_int_equal(rmdir(dir), 0); /* pre-existing: kept by bk_writer_free */
}

/* Write one mongo part holding `d` (claimed count `count`) and verify it. */
static int verify_bson(const unsigned char *d, size_t n, uint64_t count, struct rp_error *err)
{
    char dir[] = "/tmp/bkarch-b-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char tmpdir[64], out[64];
    snprintf(tmpdir, sizeof(tmpdir), "%s/tmp", dir);
    snprintf(out, sizeof(out), "%s/b.tar", dir);
    struct bk_writer *w = NULL;
    assert_int_equal(bk_writer_open(tmpdir, &w, err), RP_OK);
    write_part(w, "mongo", "docs", "bson", d, n, count, NULL);
    struct bk_manifest m = {0};
    assert_int_equal(bk_writer_finish(w, &m, out, err), RP_OK);
    bk_writer_free(w);
    bk_manifest_cleanup(&m);
    int rc = bk_verify(out, NULL, NULL, err);
    unlink(out);
    rmdir(dir);
    return rc;
}

static void test_bson_counting(void **state)
{
    (void)state;
    struct rp_error err = {0};
    /* many documents of odd sizes, a few larger than the read buffer (256 KiB): documents and
     * length prefixes straddle buffer boundaries */
    unsigned char *d = NULL;
    size_t n = 0;
    int docs = 0;
    while (n < (5u << 20)) {
        size_t blob = docs % 97 == 3 ? 300000 + rnd() % 5000 : rnd() % 777;
        add_doc(&d, &n, docs++, blob);
    }
    assert_int_equal(verify_bson(d, n, (uint64_t)docs, &err), RP_OK);
    assert_int_equal(verify_bson(d, n, (uint64_t)docs - 1, &err), RP_EIO);
    assert_non_null(strstr(err.msg, "mongo/docs.bson.zst"));
    assert_non_null(strstr(err.msg, "documents, the manifest says"));
    free(d);

    /* bad length prefixes: too small, negative, past the end of the stream */
    unsigned char small[] = {4, 0, 0, 0, 0};
    assert_int_equal(verify_bson(small, sizeof(small), 1, &err), RP_EIO);
    assert_non_null(strstr(err.msg, "mongo/docs.bson.zst: document 1 at byte 0 has a bad length"));
    unsigned char two[] = {5, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0};
    assert_int_equal(verify_bson(two, sizeof(two), 2, &err), RP_EIO);
    assert_non_null(strstr(err.msg, "document 2 at byte 5 has a bad length prefix (-1)"));
    unsigned char past[] = {5, 0, 0, 0, 0, 6, 0, 0, 0, 0};
    assert_int_equal(verify_bson(past, sizeof(past), 2, &err), RP_EIO);
    assert_non_null(strstr(err.msg, "bad length prefix (6)"));
    unsigned char noend[] = {6, 0, 0, 0, 1, 1};
    assert_int_equal(verify_bson(noend, sizeof(noend), 1, &err), RP_EIO);
    assert_non_null(strstr(err.msg, "does not end with a 0 byte"));
    unsigned char cut[] = {5, 0, 0, 0, 0, 5, 0};
    assert_int_equal(verify_bson(cut, sizeof(cut), 1, &err), RP_EIO);
    assert_non_null(strstr(err.msg, "mongo/docs.bson.zst: the last document is cut short"));
    /* an empty collection */
    assert_int_equal(verify_bson(NULL, 0, 0, &err), RP_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flipped_part_byte, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flipped_manifest_byte, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_part, setup, teardown),
        cmocka_unit_test_setup_teardown(test_extra_entry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_count, setup, teardown),
        cmocka_unit_test(test_format_and_strictness),
        cmocka_unit_test(test_unsafe_names),
        cmocka_unit_test(test_bson_counting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
