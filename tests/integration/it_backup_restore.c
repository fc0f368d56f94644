/* Integration test of `rampart-backup restore` (bk_restore) against the real servers of the test
 * set-up (RAMPART_TEST_PG, RAMPART_TEST_MONGO). A private source PostgreSQL database (migrated,
 * data in most tables: text with tabs, newlines, backslashes and unicode, bytea, jsonb, audit_log
 * rows with identity ids) and a source Mongo database (2,000 results with an index, an empty
 * collection) are dumped into an archive, which is restored into new empty databases. Proves:
 * every table's content and every collection's documents and indexes come back identical, the
 * identity sequence continues after the restored ids; a second restore into the non-empty
 * targets is refused naming what is not empty and changes nothing, and succeeds with force; an
 * archive with one flipped byte is refused before anything is created; an archive of schema
 * version 99 is refused with the newer-schema message; migrations newer than the archive's schema
 * version are not applied. Every database created is dropped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "backup.h"
#include "backup_testdb.h"
#include "rampart/error.h"
#include "rampart/mem.h"
#include "rampart/mongo.h"
#include "rampart/pg.h"

#define NRESULTS 2000
#define NTABLES  21 /* every table of migrations 0001..0006 + schema_migrations */

/* Three PostgreSQL and three Mongo databases: the source, the restore target, and a spare
 * target for the refusals that must leave it untouched. */
enum { SRC, DST, SPARE, NDB };
static const char *const ROLE[NDB] = {"src", "dst", "spare"};
static struct btdb tdb[NDB];
static struct rp_pg *admin; /* base database: CREATE / DROP DATABASE */
static char tmpdir[128], archive_path[192], bad_path[192], v99_path[192];

/* Text COPY must escape (tab, newline, backslash), unicode, bytea, jsonb, identity ids. */
static const char FIXTURE_SQL[] =
    "INSERT INTO users (id, email, name, password_hash) VALUES "
    " ('00000000-0000-0000-0000-0000000000a1', 'ann@example.com', E'Zo\\u00eb \\u2603 "
    "\\u65e5\\u672c', 'x');"
    "INSERT INTO projects (id, slug, name) VALUES "
    " ('00000000-0000-0000-0000-0000000000b1', 'it-restore', E'Restore\\ttest\\r\\n');"
    "INSERT INTO memberships (project_id, user_id, role) VALUES "
    " ('00000000-0000-0000-0000-0000000000b1', '00000000-0000-0000-0000-0000000000a1', 'owner');"
    "INSERT INTO sessions (token_hash, user_id, csrf_token, idle_expires_at, expires_at, "
    "                      user_agent) VALUES "
    " ('\\x00ff5c0a09'::bytea, '00000000-0000-0000-0000-0000000000a1', 'c', now(), now(), "
    "  E'agent\\\\with\\tstuff');"
    "INSERT INTO api_keys (id, project_id, name, role, prefix, token_hash, created_by) VALUES "
    " ('00000000-0000-0000-0000-0000000000a2', '00000000-0000-0000-0000-0000000000b1', 'ci', "
    "  'editor', 'pfx1', '\\x5c5c00'::bytea, '00000000-0000-0000-0000-0000000000a1');"
    "INSERT INTO tests (id, project_id, name, current_version) VALUES "
    " ('00000000-0000-0000-0000-0000000000c1', '00000000-0000-0000-0000-0000000000b1', "
    "  E'health\\nline two', 1),"
    " ('00000000-0000-0000-0000-0000000000c2', '00000000-0000-0000-0000-0000000000b1', "
    "  E'login \\\\ slash', 1);"
    "INSERT INTO test_versions (test_id, version, definition) VALUES "
    " ('00000000-0000-0000-0000-0000000000c1', 1, E'{\"steps\":\\n[]}'),"
    " ('00000000-0000-0000-0000-0000000000c2', 1, '{}');"
    "INSERT INTO schedules (id, project_id, test_id, interval_s) VALUES "
    " ('00000000-0000-0000-0000-0000000000d1', '00000000-0000-0000-0000-0000000000b1', "
    "  '00000000-0000-0000-0000-0000000000c1', 60);"
    "INSERT INTO runs (id, project_id, test_id, test_version, schedule_id, fire_time, trigger, "
    "                  location, status, overrides, error) "
    "SELECT ('00000000-0000-0000-0000-0000000001' || lpad(n::text, 2, '0'))::uuid, "
    "       '00000000-0000-0000-0000-0000000000b1', '00000000-0000-0000-0000-0000000000c1', 1, "
    "       '00000000-0000-0000-0000-0000000000d1', "
    "       '2026-01-01 00:00:00+00'::timestamptz + n * interval '1 minute', 'schedule', "
    "       'default', 'failed', jsonb_build_object('k', E'v\\t\\u00e9\\\\', 'n', n), "
    "       E'boom\\nat line ' || n FROM generate_series(1, 50) n;"
    "INSERT INTO channels (id, project_id, name, kind, config) VALUES "
    " ('00000000-0000-0000-0000-0000000000e1', '00000000-0000-0000-0000-0000000000b1', 'ops', "
    "  'webhook', '{\"url\": \"http://x/\\u00fc\"}');"
    "INSERT INTO alert_rules (id, project_id, name) VALUES "
    " ('00000000-0000-0000-0000-0000000000f1', '00000000-0000-0000-0000-0000000000b1', 'all');"
    "INSERT INTO incidents (id, project_id, rule_id, test_id, location, failing_since, "
    "                       opened_at, opened_run_id) VALUES "
    " ('00000000-0000-0000-0000-000000000201', '00000000-0000-0000-0000-0000000000b1', "
    "  '00000000-0000-0000-0000-0000000000f1', '00000000-0000-0000-0000-0000000000c1', "
    "  'default', now(), now(), '00000000-0000-0000-0000-000000000102');"
    "INSERT INTO incident_transitions (id, project_id, incident_id, kind, run_id, occurred_at) "
    "VALUES ('00000000-0000-0000-0000-000000000301', '00000000-0000-0000-0000-0000000000b1', "
    "  '00000000-0000-0000-0000-000000000201', 'opened', "
    "  '00000000-0000-0000-0000-000000000102', now());"
    "INSERT INTO notifications (project_id, transition_id, channel_id, status) VALUES "
    " ('00000000-0000-0000-0000-0000000000b1', '00000000-0000-0000-0000-000000000301', "
    "  '00000000-0000-0000-0000-0000000000e1', 'sent');"
    "INSERT INTO audit_log (actor, project_id, action, target_type, details) "
    "SELECT 'it', '00000000-0000-0000-0000-0000000000b1', 'create', 'project', "
    "       jsonb_build_object('note', E'tab\\there \\u2603', 'i', n) "
    "FROM generate_series(1, 7) n;"
    "DELETE FROM audit_log WHERE id = 3;"; /* a gap: the sequence must follow max(id) */

/* The source's results: NRESULTS documents with text to escape, 64-bit integers and arrays. */
static int fill_mongo(void)
{
    bson_t **docs = rp_xcalloc(NRESULTS, sizeof(*docs));
    for (int i = 0; i < NRESULTS; i++) {
        char id[32];
        int k = (i * 7919) % NRESULTS; /* inserted out of _id order */
        snprintf(id, sizeof(id), "run-%05d", k);
        docs[i] =
            BCON_NEW("_id", BCON_UTF8(id), "project", BCON_UTF8(k % 3 ? "p1" : "p2"), "status",
                     BCON_UTF8(k % 4 ? "passed" : "failed"), "ms", BCON_DOUBLE(k * 1.5), "n",
                     BCON_INT32(k), "big", BCON_INT64(k * 1000000000LL), "note",
                     BCON_UTF8("tab\there \xe2\x98\x83 \\ \"q\""), "steps", "[", "{", "name",
                     BCON_UTF8("get"), "ok", BCON_BOOL(k % 2), "}", "]");
    }
    int rc = btdb_fill_results(&tdb[SRC], docs, NRESULTS);
    free(docs);
    return rc;
}

static int setup(void **state)
{
    (void)state;
    if (!btdb_env("RAMPART_TEST_PG") || !btdb_env("RAMPART_TEST_MONGO"))
        return -1;
    if (btdb_tmpdir_make(tmpdir, sizeof(tmpdir), "rp_it_bkrest") != 0)
        return -1;
    snprintf(archive_path, sizeof(archive_path), "%s/backup.tar", tmpdir);
    snprintf(bad_path, sizeof(bad_path), "%s/flipped.tar", tmpdir);
    snprintf(v99_path, sizeof(v99_path), "%s/v99.tar", tmpdir);
    if (btdb_admin_open(&admin) != 0)
        return -1;
    for (int i = 0; i < NDB; i++) {
        char name[64];
        snprintf(name, sizeof(name), "rp_it_bkrest_%s_%ld", ROLE[i], (long)getpid());
        if (btdb_create(admin, name, &tdb[i]) != 0)
            return -1; /* teardown still runs and drops what was created */
    }
    if (btdb_load(&tdb[SRC], FIXTURE_SQL) != 0)
        return -1;
    return fill_mongo();
}

static int teardown(void **state)
{
    (void)state;
    int ok = 1;
    for (int i = 0; i < NDB; i++)
        if (btdb_drop(admin, &tdb[i]) != 0)
            ok = 0;
    rp_pg_close(admin);
    admin = NULL;
    if (tmpdir[0]) {
        unlink(archive_path);
        unlink(bad_path);
        unlink(v99_path);
    }
    btdb_tmpdir_remove(tmpdir);
    return ok ? 0 : -1;
}

static PGresult *query(int i, const char *sql)
{
    PGresult *res = NULL;
    struct rp_error err = {0};
    if (rp_pg_exec(tdb[i].pg, sql, 0, NULL, &res, &err) != RP_OK)
        fail_msg("%s on %s: %s", sql, tdb[i].pg_name, err.msg);
    return res;
}

static char *query_text(int i, const char *sql)
{
    PGresult *res = query(i, sql);
    assert_int_equal(PQntuples(res), 1);
    char *v = rp_xstrdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    return v;
}

static int count_tables(int i)
{
    char *n = query_text(i, "SELECT count(*) FROM pg_class c JOIN pg_namespace n "
                            "ON n.oid = c.relnamespace WHERE n.nspname = 'public' "
                            "AND c.relkind IN ('r', 'p')");
    int v = atoi(n);
    free(n);
    return v;
}

/* Every table of the source has the same rows in the target. */
static void compare_pg(int dst)
{
    PGresult *res = query(SRC, "SELECT c.relname FROM pg_class c JOIN pg_namespace n "
                               "ON n.oid = c.relnamespace WHERE n.nspname = 'public' "
                               "AND c.relkind IN ('r', 'p') ORDER BY 1");
    assert_int_equal(PQntuples(res), NTABLES);
    assert_int_equal(count_tables(dst), NTABLES);
    int nonempty = 0;
    for (int t = 0; t < PQntuples(res); t++) {
        const char *table = PQgetvalue(res, t, 0);
        char *sql = rp_xasprintf("SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, '|' "
                                 "ORDER BY t::text)), '-') FROM public.\"%s\" t",
                                 table);
        char *a = query_text(SRC, sql), *b = query_text(dst, sql);
        if (strcmp(a, b) != 0)
            fail_msg("table %s differs: source %s, restored %s", table, a, b);
        nonempty += strncmp(a, "0:", 2) != 0;
        free(a);
        free(b);
        free(sql);
    }
    PQclear(res);
    assert_true(nonempty >= 15); /* the comparison is not of empty tables */
    char *runs = query_text(dst, "SELECT count(*) FROM runs WHERE error LIKE E'boom\\nat line %'");
    assert_string_equal(runs, "50");
    free(runs);
    char *name = query_text(dst, "SELECT name FROM users");
    assert_string_equal(name, "Zo\xc3\xab \xe2\x98\x83 \xe6\x97\xa5\xe6\x9c\xac");
    free(name);
    char *tok = query_text(dst, "SELECT encode(token_hash, 'hex') FROM sessions");
    assert_string_equal(tok, "00ff5c0a09");
    free(tok);
    char *a = query_text(SRC, "SELECT installation_id::text FROM rampart_meta");
    char *b = query_text(dst, "SELECT installation_id::text FROM rampart_meta");
    assert_string_equal(a, b); /* the seeded row was replaced by the archive's */
    free(a);
    free(b);
}

/* The documents of `coll` sorted by _id, concatenated; *n gets their count. */
static char *collection_bytes(int i, const char *coll, size_t *n, size_t *len)
{
    mongoc_client_t *c = rp_mongo_acquire(tdb[i].mongo);
    mongoc_collection_t *col = rp_mongo_collection(tdb[i].mongo, c, coll);
    bson_t filter = BSON_INITIALIZER;
    bson_t *opts = BCON_NEW("sort", "{", "_id", BCON_INT32(1), "}");
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(col, &filter, opts, NULL);
    const bson_t *doc;
    struct rp_buf b;
    rp_buf_init(&b, 0);
    *n = 0;
    while (mongoc_cursor_next(cur, &doc)) {
        assert_int_equal(rp_buf_append(&b, bson_get_data(doc), doc->len), RP_OK);
        (*n)++;
    }
    bson_error_t e;
    if (mongoc_cursor_error(cur, &e))
        fail_msg("read %s.%s: %s", tdb[i].mongo_name, coll, e.message);
    mongoc_cursor_destroy(cur);
    bson_destroy(opts);
    bson_destroy(&filter);
    mongoc_collection_destroy(col);
    rp_mongo_release(tdb[i].mongo, c);
    *len = b.len;
    return b.data;
}

/* The key of index `name` of results as JSON (caller frees), NULL if absent; *n gets the number
 * of indexes. */
static char *index_key(int i, const char *name, int *n)
{
    mongoc_client_t *c = rp_mongo_acquire(tdb[i].mongo);
    mongoc_collection_t *col = rp_mongo_collection(tdb[i].mongo, c, "results");
    mongoc_cursor_t *cur = mongoc_collection_find_indexes_with_opts(col, NULL);
    const bson_t *doc;
    char *key = NULL;
    *n = 0;
    while (mongoc_cursor_next(cur, &doc)) {
        bson_iter_t it, k;
        (*n)++;
        if (bson_iter_init_find(&it, doc, "name") && strcmp(bson_iter_utf8(&it, NULL), name) == 0 &&
            bson_iter_init_find(&k, doc, "key") && BSON_ITER_HOLDS_DOCUMENT(&k)) {
            uint32_t len;
            const uint8_t *data;
            bson_t kd;
            bson_iter_document(&k, &len, &data);
            assert_true(bson_init_static(&kd, data, len));
            char *json = bson_as_relaxed_extended_json(&kd, NULL);
            key = rp_xstrdup(json);
            bson_free(json);
        }
    }
    mongoc_cursor_destroy(cur);
    mongoc_collection_destroy(col);
    rp_mongo_release(tdb[i].mongo, c);
    return key;
}

static void compare_mongo(int dst)
{
    size_t na, nb, la, lb;
    char *a = collection_bytes(SRC, "results", &na, &la);
    char *b = collection_bytes(dst, "results", &nb, &lb);
    assert_int_equal(na, NRESULTS);
    assert_int_equal(nb, NRESULTS);
    assert_int_equal(la, lb);
    assert_memory_equal(a, b, la);
    free(a);
    free(b);
    a = collection_bytes(dst, "empty", &na, &la);
    assert_int_equal(na, 0);
    free(a);
    /* the empty collection exists in the target */
    mongoc_client_t *c = rp_mongo_acquire(tdb[dst].mongo);
    mongoc_database_t *db = mongoc_client_get_database(c, tdb[dst].mongo_name);
    bson_error_t e;
    char **names = mongoc_database_get_collection_names_with_opts(db, NULL, &e);
    assert_non_null(names);
    int seen = 0;
    for (int i = 0; names[i]; i++)
        seen += strcmp(names[i], "empty") == 0 || strcmp(names[i], "results") == 0;
    assert_int_equal(seen, 2);
    bson_strfreev(names);
    mongoc_database_destroy(db);
    rp_mongo_release(tdb[dst].mongo, c);

    int n_src = 0, n_dst = 0;
    char *ks = index_key(SRC, "project_n", &n_src), *kd = index_key(dst, "project_n", &n_dst);
    assert_non_null(ks);
    assert_non_null(kd);
    assert_string_equal(ks, kd);
    assert_int_equal(n_src, 2);
    assert_int_equal(n_dst, 2);
    free(ks);
    free(kd);
}

struct progress_log {
    int calls;
    uint64_t runs_done, results_done;
};

static void on_progress(void *ud, const char *what, uint64_t done, uint64_t total, const char *unit)
{
    (void)total;
    (void)unit;
    struct progress_log *p = ud;
    p->calls++;
    if (strcmp(what, "postgres/runs") == 0 && strcmp(unit, "rows") == 0)
        p->runs_done = done;
    else if (strcmp(what, "mongo/results") == 0 && strcmp(unit, "documents") == 0)
        p->results_done = done;
}

static void make_archive(void)
{
    struct rp_error err = {0};
    struct bk_manifest m = {0};
    struct bk_writer *w = btdb_writer_open(tmpdir);
    btdb_manifest_start(&m);
    if (bk_pg_dump(tdb[SRC].pg_conninfo, NULL, w, &m, NULL, NULL, &err) != RP_OK)
        fail_msg("bk_pg_dump: %s", err.msg);
    if (bk_mongo_dump(tdb[SRC].mongo_uri, w, &m, NULL, NULL, &err) != RP_OK)
        fail_msg("bk_mongo_dump: %s", err.msg);
    if (bk_writer_finish(w, &m, archive_path, &err) != RP_OK)
        fail_msg("bk_writer_finish: %s", err.msg);
    bk_writer_free(w);
    bk_manifest_cleanup(&m);
}

static void test_restore_into_empty(void **state)
{
    (void)state;
    make_archive();
    struct rp_error err = {0};
    struct progress_log prog = {0};
    if (bk_restore(archive_path, tdb[DST].pg_conninfo, tdb[DST].mongo_uri, NULL, 0, on_progress,
                   &prog, &err) != RP_OK)
        fail_msg("bk_restore: %s", err.msg);
    assert_int_equal(prog.runs_done, 50);
    assert_int_equal(prog.results_done, NRESULTS);
    compare_pg(DST);
    compare_mongo(DST);
    /* the identity sequence continues after the largest restored id (7), not at 1 */
    char *next = query_text(DST, "SELECT nextval(pg_get_serial_sequence('public.audit_log', "
                                 "'id'))");
    assert_string_equal(next, "8");
    free(next);
    printf("restored: %d tables, %d results, progress reports %d\n", NTABLES, NRESULTS, prog.calls);
}

static void test_non_empty_refused(void **state)
{
    (void)state;
    struct rp_error err = {0};
    int rc = bk_restore(archive_path, tdb[DST].pg_conninfo, tdb[DST].mongo_uri, NULL, 0, NULL, NULL,
                        &err);
    assert_int_equal(rc, RP_EEXIST);
    printf("non-empty postgres: %s\n", err.msg);
    assert_non_null(strstr(err.msg, tdb[DST].pg_name));
    assert_non_null(strstr(err.msg, "is not empty"));
    assert_non_null(strstr(err.msg, "--force"));
    /* the Mongo side alone is refused too, naming its database and a collection */
    rc = bk_restore(archive_path, NULL, tdb[DST].mongo_uri, NULL, 0, NULL, NULL, &err);
    assert_int_equal(rc, RP_EEXIST);
    printf("non-empty mongo: %s\n", err.msg);
    assert_non_null(strstr(err.msg, tdb[DST].mongo_name));
    assert_non_null(strstr(err.msg, "results"));
    /* nothing changed: not even the extra audit_log id the sequence handed out above */
    compare_pg(DST);
    compare_mongo(DST);
}

static void test_force_replaces(void **state)
{
    (void)state;
    struct rp_error err = {0};
    /* something the restore must remove */
    if (rp_pg_exec_script(tdb[DST].pg, "CREATE TABLE leftover (x int)", &err) != RP_OK)
        fail_msg("create leftover: %s", err.msg);
    if (bk_restore(archive_path, tdb[DST].pg_conninfo, tdb[DST].mongo_uri, NULL, 1, NULL, NULL,
                   &err) != RP_OK)
        fail_msg("bk_restore --force: %s", err.msg);
    compare_pg(DST); /* 21 tables: leftover is gone */
    compare_mongo(DST);
}

/* The spare target has no table and no collection. */
static void assert_spare_untouched(void)
{
    assert_int_equal(count_tables(SPARE), 0);
    mongoc_client_t *c = rp_mongo_acquire(tdb[SPARE].mongo);
    mongoc_database_t *db = mongoc_client_get_database(c, tdb[SPARE].mongo_name);
    bson_error_t e;
    char **names = mongoc_database_get_collection_names_with_opts(db, NULL, &e);
    assert_non_null(names);
    assert_null(names[0]);
    bson_strfreev(names);
    mongoc_database_destroy(db);
    rp_mongo_release(tdb[SPARE].mongo, c);
}

static void test_flipped_byte_refused(void **state)
{
    (void)state;
    /* copy the archive, flipping one byte in the middle of the stored runs part */
    FILE *in = fopen(archive_path, "rb");
    assert_non_null(in);
    struct rp_buf b;
    rp_buf_init(&b, 0);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), in)) > 0)
        assert_int_equal(rp_buf_append(&b, chunk, n), RP_OK);
    fclose(in);
    struct bk_reader *r = NULL;
    struct rp_error err = {0};
    if (bk_reader_open(archive_path, &r, &err) != RP_OK)
        fail_msg("bk_reader_open: %s", err.msg);
    uint64_t bytes = 0;
    const struct bk_manifest *m = bk_reader_manifest(r);
    for (size_t i = 0; i < m->n_parts; i++)
        if (strcmp(m->parts[i].name, "postgres/runs.copy.zst") == 0)
            bytes = m->parts[i].bytes;
    bk_reader_close(r);
    assert_true(bytes > 8);
    size_t at = 0; /* the tar header whose name field is the part's name */
    for (size_t off = 0; off + 512 <= b.len; off += 512)
        if (strncmp(b.data + off, "postgres/runs.copy.zst", 100) == 0) {
            at = off + 512 + bytes / 2;
            break;
        }
    assert_true(at > 0);
    b.data[at] ^= 0x20;
    FILE *out = fopen(bad_path, "wb");
    assert_non_null(out);
    assert_int_equal(fwrite(b.data, 1, b.len, out), b.len);
    assert_int_equal(fclose(out), 0);
    rp_buf_cleanup(&b);

    int rc = bk_restore(bad_path, tdb[SPARE].pg_conninfo, tdb[SPARE].mongo_uri, NULL, 0, NULL, NULL,
                        &err);
    assert_int_not_equal(rc, RP_OK);
    printf("flipped byte: %s\n", err.msg);
    assert_non_null(strstr(err.msg, "postgres/runs.copy.zst"));
    assert_spare_untouched();
}

static void test_newer_schema_refused(void **state)
{
    (void)state;
    struct rp_error err = {0};
    struct bk_manifest m = {0};
    struct bk_writer *w = btdb_writer_open(tmpdir);
    static const char row[] = "1\t0001_init.sql\tx\t2026-01-01 00:00:00+00\n";
    if (bk_part_begin(w, "postgres", "schema_migrations", "copy", &err) != RP_OK ||
        bk_part_write(w, row, strlen(row), &err) != RP_OK || bk_part_end(w, 1, NULL, &err) != RP_OK)
        fail_msg("write part: %s", err.msg);
    btdb_manifest_start(&m);
    m.schema_version = 99;
    m.installation_id = rp_xstrdup("00000000-0000-0000-0000-000000000099");
    m.pg_database = rp_xstrdup("future");
    if (bk_writer_finish(w, &m, v99_path, &err) != RP_OK)
        fail_msg("bk_writer_finish: %s", err.msg);
    bk_writer_free(w);
    bk_manifest_cleanup(&m);

    int rc = bk_restore(v99_path, tdb[SPARE].pg_conninfo, NULL, NULL, 0, NULL, NULL, &err);
    assert_int_equal(rc, RP_EINVAL);
    printf("newer schema: %s\n", err.msg);
    assert_non_null(strstr(err.msg, "the archive has schema version 99 but this rampart-backup "
                                    "knows migrations up to 6: use a newer rampart-backup"));
    assert_spare_untouched();
}

/* The migrations stop at the archive's schema version: a folder that also holds a newer 0007
 * (as a newer rampart-backup would) restores the version-6 archive without applying 0007, which
 * the services apply to the restored data when they start. Runs last: it fills the spare. */
static void test_migrations_stop_at_archive_version(void **state)
{
    (void)state;
    char *dir = rp_xasprintf("%s/migrations", tmpdir);
    char *future = rp_xasprintf("%s/0007_future.sql", dir);
    struct rp_pg_migration *mig = NULL;
    size_t n = 0;
    struct rp_error err = {0};
    assert_int_equal(mkdir(dir, 0700), 0);
    if (rp_pg_migrations_load(RP_MIGRATIONS_DIR, &mig, &n, &err) != RP_OK)
        fail_msg("load migrations: %s", err.msg);
    assert_int_equal(n, 6);
    for (size_t i = 0; i <= n; i++) {
        char *path = i < n ? rp_xasprintf("%s/%s", dir, mig[i].name) : rp_xstrdup(future);
        const char *sql = i < n ? mig[i].sql : "CREATE TABLE future_table (x int);";
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(sql, 1, strlen(sql), f), strlen(sql));
        assert_int_equal(fclose(f), 0);
        free(path);
    }
    int rc = bk_restore(archive_path, tdb[SPARE].pg_conninfo, NULL, dir, 0, NULL, NULL, &err);
    for (size_t i = 0; i < n; i++) {
        char *path = rp_xasprintf("%s/%s", dir, mig[i].name);
        unlink(path);
        free(path);
    }
    rp_pg_migrations_free(mig, n);
    unlink(future);
    rmdir(dir);
    free(future);
    free(dir);
    if (rc != RP_OK)
        fail_msg("bk_restore with a 0007 present: %s", err.msg);
    compare_pg(SPARE);
    char *v = query_text(SPARE, "SELECT max(version)::text || ':' || "
                                "(to_regclass('public.future_table') IS NULL)::text "
                                "FROM schema_migrations");
    assert_string_equal(v, "6:true");
    free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_restore_into_empty),
        cmocka_unit_test(test_non_empty_refused),
        cmocka_unit_test(test_force_replaces),
        cmocka_unit_test(test_flipped_byte_refused),
        cmocka_unit_test(test_newer_schema_refused),
        cmocka_unit_test(test_migrations_stop_at_archive_version),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
