/* Integration test of rampart-backup's dumps (bk_pg_dump, bk_mongo_dump) against the real
 * servers of the test set-up (RAMPART_TEST_PG, RAMPART_TEST_MONGO). A private PostgreSQL
 * database gets every migration and a little data in most tables; a private Mongo database a
 * `results` collection of 1,000 documents with an index, and an empty collection. Proves: the
 * archive verifies; its manifest lists every table with the row count the database has (rows
 * with tabs and newlines count once), schema version 6, the installation id, parents before
 * children for every foreign key, the 1,000 results, each once (in the server's natural order),
 * with their index; and a table the backup does not know, or one it expects that is missing, fails
 * the dump with an error naming it; a Mongo server that does not answer is a transient error. Both
 * databases are dropped at the end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "backup.h"
#include "backup_testdb.h"
#include "rampart/error.h"
#include "rampart/mem.h"
#include "rampart/mongo.h"
#include "rampart/pg.h"

#define NRESULTS 1000

static char tmpdir[128], archive_path[192];
static struct rp_pg *admin; /* base database: CREATE / DROP DATABASE */
static struct btdb tdb;     /* the private PostgreSQL and Mongo databases */

static void exec_ok(struct rp_pg *c, const char *sql)
{
    struct rp_error err = {0};
    if (rp_pg_exec_script(c, sql, &err) != RP_OK)
        fail_msg("%s: %s", sql, err.msg);
}

/* A little of everything, with text that COPY must escape (tab, newline, backslash). */
static const char FIXTURE_SQL[] =
    "INSERT INTO users (id, email, name, password_hash) VALUES "
    " ('00000000-0000-0000-0000-0000000000a1', 'ann@example.com', 'Ann', 'x');"
    "INSERT INTO projects (id, slug, name) VALUES "
    " ('00000000-0000-0000-0000-0000000000b1', 'it-backup', E'Backup\\ttest');"
    "INSERT INTO memberships (project_id, user_id, role) VALUES "
    " ('00000000-0000-0000-0000-0000000000b1', '00000000-0000-0000-0000-0000000000a1', 'owner');"
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
    "                  location, status) "
    "SELECT ('00000000-0000-0000-0000-0000000001' || lpad(n::text, 2, '0'))::uuid, "
    "       '00000000-0000-0000-0000-0000000000b1', '00000000-0000-0000-0000-0000000000c1', 1, "
    "       '00000000-0000-0000-0000-0000000000d1', "
    "       '2026-01-01 00:00:00+00'::timestamptz + n * interval '1 minute', 'schedule', "
    "       'default', 'failed' FROM generate_series(1, 3) n;"
    "INSERT INTO channels (id, project_id, name, kind) VALUES "
    " ('00000000-0000-0000-0000-0000000000e1', '00000000-0000-0000-0000-0000000000b1', 'ops', "
    "  'webhook');"
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
    "INSERT INTO audit_log (actor, project_id, action, target_type, details) VALUES "
    " ('it', '00000000-0000-0000-0000-0000000000b1', 'create', 'project', "
    "  '{\"note\": \"tab\\there\"}');";

/* The results collection: NRESULTS small documents; then its index and the empty collection. */
static int fill_mongo(void)
{
    bson_t *docs[NRESULTS];
    for (int i = 0; i < NRESULTS; i++) {
        char id[32];
        int k = (i * 7919) % NRESULTS; /* inserted out of _id order */
        snprintf(id, sizeof(id), "run-%04d", k);
        docs[i] = BCON_NEW("_id", BCON_UTF8(id), "project", BCON_UTF8(k % 3 ? "p1" : "p2"),
                           "status", BCON_UTF8(k % 4 ? "passed" : "failed"), "ms",
                           BCON_DOUBLE(k * 1.5), "n", BCON_INT32(k));
    }
    return btdb_fill_results(&tdb, docs, NRESULTS);
}

static int setup(void **state)
{
    (void)state;
    if (btdb_tmpdir_make(tmpdir, sizeof(tmpdir), "rp_it_bkdump") != 0)
        return -1;
    snprintf(archive_path, sizeof(archive_path), "%s/backup.tar", tmpdir);
    if (btdb_admin_open(&admin) != 0)
        return -1;
    char name[64];
    snprintf(name, sizeof(name), "rp_it_bkdump_%ld_%ld", (long)getpid(), (long)time(NULL));
    if (btdb_create(admin, name, &tdb) != 0 || btdb_load(&tdb, FIXTURE_SQL) != 0 ||
        fill_mongo() != 0)
        return -1; /* teardown still runs and drops what was created */
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    int ok = btdb_drop(admin, &tdb) == 0;
    rp_pg_close(admin);
    admin = NULL;
    if (tmpdir[0])
        unlink(archive_path);
    btdb_tmpdir_remove(tmpdir);
    return ok ? 0 : -1;
}

/* Progress reports: the last `done` seen for two parts, and how many reports came. */
struct progress_log {
    int calls;
    uint64_t runs_done, results_done;
};

static void on_progress(void *ud, const char *what, uint64_t done, uint64_t total, const char *unit)
{
    (void)total;
    struct progress_log *p = ud;
    p->calls++;
    if (strcmp(what, "postgres/runs") == 0) {
        assert_string_equal(unit, "rows");
        p->runs_done = done;
    } else if (strcmp(what, "mongo/results") == 0) {
        assert_string_equal(unit, "documents");
        p->results_done = done;
    }
}

static const struct bk_part_info *find_part(const struct bk_manifest *m, const char *kind,
                                            const char *object, size_t *index)
{
    for (size_t i = 0; i < m->n_parts; i++)
        if (strcmp(m->parts[i].kind, kind) == 0 && strcmp(m->parts[i].object, object) == 0) {
            if (index)
                *index = i;
            return &m->parts[i];
        }
    return NULL;
}

static PGresult *query(const char *sql)
{
    PGresult *res = NULL;
    struct rp_error err = {0};
    if (rp_pg_exec(tdb.pg, sql, 0, NULL, &res, &err) != RP_OK)
        fail_msg("%s: %s", sql, err.msg);
    return res;
}

/* Every table of the database is a part with the database's row count. */
static void check_pg_parts(const struct bk_manifest *m)
{
    PGresult *res = query("SELECT c.relname FROM pg_class c JOIN pg_namespace n "
                          "ON n.oid = c.relnamespace WHERE n.nspname = 'public' "
                          "AND c.relkind IN ('r', 'p') ORDER BY 1");
    size_t n_pg = 0;
    for (size_t i = 0; i < m->n_parts; i++)
        n_pg += strcmp(m->parts[i].kind, "postgres") == 0;
    assert_int_equal(n_pg, PQntuples(res));
    assert_int_equal(n_pg, 21); /* every table of migrations 0001..0006 + schema_migrations */
    for (int i = 0; i < PQntuples(res); i++) {
        const char *table = PQgetvalue(res, i, 0);
        const struct bk_part_info *p = find_part(m, "postgres", table, NULL);
        if (!p)
            fail_msg("table %s has no part in the manifest", table);
        char *sql = rp_xasprintf("SELECT count(*) FROM public.\"%s\"", table);
        PGresult *cnt = query(sql);
        uint64_t want = strtoull(PQgetvalue(cnt, 0, 0), NULL, 10);
        PQclear(cnt);
        free(sql);
        if (p->count != want)
            fail_msg("table %s: manifest count %llu, database %llu", table,
                     (unsigned long long)p->count, (unsigned long long)want);
        char *name = rp_xasprintf("postgres/%s.copy.zst", table);
        assert_string_equal(p->name, name);
        free(name);
    }
    PQclear(res);
    /* a few counts written out, so the check above cannot pass on two empty sides */
    assert_int_equal(find_part(m, "postgres", "schema_migrations", NULL)->count, 6);
    assert_int_equal(find_part(m, "postgres", "rampart_meta", NULL)->count, 1);
    assert_int_equal(find_part(m, "postgres", "tests", NULL)->count, 2);
    assert_int_equal(find_part(m, "postgres", "test_versions", NULL)->count, 2);
    assert_int_equal(find_part(m, "postgres", "runs", NULL)->count, 3);
    assert_int_equal(find_part(m, "postgres", "incidents", NULL)->count, 1);
    assert_int_equal(find_part(m, "postgres", "notifications", NULL)->count, 1);
    assert_int_equal(find_part(m, "postgres", "environments", NULL)->count, 0);

    /* parents before children: for every foreign key the referenced table's part comes first */
    res = query("SELECT DISTINCT c.conrelid::regclass::text, c.confrelid::regclass::text "
                "FROM pg_constraint c WHERE c.contype = 'f' AND c.conrelid <> c.confrelid");
    assert_true(PQntuples(res) > 20);
    for (int i = 0; i < PQntuples(res); i++) {
        size_t child = 0, parent = 0;
        assert_non_null(find_part(m, "postgres", PQgetvalue(res, i, 0), &child));
        assert_non_null(find_part(m, "postgres", PQgetvalue(res, i, 1), &parent));
        if (parent >= child)
            fail_msg("%s references %s but comes before it in the archive", PQgetvalue(res, i, 0),
                     PQgetvalue(res, i, 1));
    }
    PQclear(res);

    res = query("SELECT installation_id::text FROM rampart_meta");
    assert_non_null(m->installation_id);
    assert_string_equal(m->installation_id, PQgetvalue(res, 0, 0));
    PQclear(res);
    assert_int_equal(m->schema_version, 6);
    assert_string_equal(m->pg_database, tdb.pg_name);
}

static void check_mongo_parts(const struct bk_manifest *m)
{
    const struct bk_part_info *p = find_part(m, "mongo", "results", NULL);
    assert_non_null(p);
    assert_string_equal(p->name, "mongo/results.bson.zst");
    assert_int_equal(p->count, NRESULTS);
    assert_non_null(p->extra);
    bson_iter_t it, arr;
    assert_true(bson_iter_init_find(&it, p->extra, "indexes"));
    assert_true(BSON_ITER_HOLDS_ARRAY(&it));
    assert_true(bson_iter_recurse(&it, &arr));
    int found = 0, n = 0;
    while (bson_iter_next(&arr)) {
        bson_t spec;
        uint32_t len;
        const uint8_t *data;
        n++;
        assert_true(BSON_ITER_HOLDS_DOCUMENT(&arr));
        bson_iter_document(&arr, &len, &data);
        assert_true(bson_init_static(&spec, data, len));
        bson_iter_t f;
        assert_false(bson_iter_init_find(&f, &spec, "v"));
        assert_false(bson_iter_init_find(&f, &spec, "ns"));
        assert_true(bson_iter_init_find(&f, &spec, "name"));
        if (strcmp(bson_iter_utf8(&f, NULL), "project_n") == 0) {
            found = 1;
            bson_iter_t key;
            assert_true(bson_iter_init_find(&key, &spec, "key"));
            assert_true(BSON_ITER_HOLDS_DOCUMENT(&key));
        }
    }
    assert_true(found);
    assert_int_equal(n, 2); /* _id_ and project_n */
    const struct bk_part_info *e = find_part(m, "mongo", "empty", NULL);
    assert_non_null(e);
    assert_int_equal(e->count, 0);
    assert_string_equal(m->mongo_database, tdb.mongo_name);
}

/* Read the whole of the current part. */
static char *read_part(struct bk_reader *r, size_t *len)
{
    struct rp_buf b;
    rp_buf_init(&b, 0);
    char buf[4096];
    for (;;) {
        size_t got = 0;
        struct rp_error err = {0};
        if (bk_reader_read(r, buf, sizeof(buf), &got, &err) != RP_OK)
            fail_msg("read part: %s", err.msg);
        if (got == 0)
            break;
        assert_int_equal(rp_buf_append(&b, buf, got), RP_OK);
    }
    *len = b.len;
    return b.data;
}

/* The data itself: the escaped texts of the fixture, every result exactly once. */
static void check_contents(void)
{
    struct bk_reader *r = NULL;
    struct rp_error err = {0};
    if (bk_reader_open(archive_path, &r, &err) != RP_OK)
        fail_msg("bk_reader_open: %s", err.msg);
    const struct bk_part_info *p;
    int seen_tests = 0, seen_results = 0;
    int rc;
    while ((rc = bk_reader_next(r, &p, &err)) == RP_OK) {
        if (strcmp(p->name, "postgres/tests.copy.zst") == 0) {
            size_t len;
            char *text = read_part(r, &len);
            assert_non_null(strstr(text, "health\\nline two"));
            assert_non_null(strstr(text, "login \\\\ slash"));
            free(text);
            seen_tests = 1;
        } else if (strcmp(p->name, "mongo/results.bson.zst") == 0) {
            size_t len;
            char *data = read_part(r, &len);
            bson_reader_t *br = bson_reader_new_from_data((const uint8_t *)data, len);
            const bson_t *doc;
            bool eof = false;
            int i = 0;
            char seen[NRESULTS] = {0}; /* the dump keeps the server's natural order */
            while ((doc = bson_reader_read(br, &eof)) != NULL) {
                bson_iter_t it;
                int k = -1, end = 0;
                i++;
                assert_true(bson_iter_init_find(&it, doc, "_id"));
                const char *id = bson_iter_utf8(&it, NULL);
                assert_int_equal(sscanf(id, "run-%4d%n", &k, &end), 1);
                assert_true(k >= 0 && k < NRESULTS && id[end] == '\0' && !seen[k]);
                seen[k] = 1;
            }
            assert_true(eof);
            assert_int_equal(i, NRESULTS);
            bson_reader_destroy(br);
            free(data);
            seen_results = 1;
        }
    }
    if (rc != RP_ENOENT)
        fail_msg("bk_reader_next: %s", err.msg);
    bk_reader_close(r);
    assert_true(seen_tests);
    assert_true(seen_results);
}

static void test_dump_and_verify(void **state)
{
    (void)state;
    struct rp_error err = {0};
    struct bk_manifest m = {0};
    struct progress_log prog = {0};
    struct bk_writer *w = btdb_writer_open(tmpdir);
    btdb_manifest_start(&m);
    if (bk_pg_dump(tdb.pg_conninfo, NULL, w, &m, on_progress, &prog, &err) != RP_OK)
        fail_msg("bk_pg_dump: %s", err.msg);
    if (bk_mongo_dump(tdb.mongo_uri, w, &m, on_progress, &prog, &err) != RP_OK)
        fail_msg("bk_mongo_dump: %s", err.msg);
    assert_int_equal(m.schema_version, 6);
    assert_int_equal(prog.runs_done, 3);
    assert_int_equal(prog.results_done, NRESULTS);
    assert_true(prog.calls >= 2 * (21 + 2)); /* a start and an end report per part at least */
    if (bk_writer_finish(w, &m, archive_path, &err) != RP_OK)
        fail_msg("bk_writer_finish: %s", err.msg);
    bk_writer_free(w);
    bk_manifest_cleanup(&m);

    if (bk_verify(archive_path, NULL, NULL, &err) != RP_OK)
        fail_msg("bk_verify: %s", err.msg);

    /* the manifest as a restore sees it */
    struct bk_reader *r = NULL;
    if (bk_reader_open(archive_path, &r, &err) != RP_OK)
        fail_msg("bk_reader_open: %s", err.msg);
    const struct bk_manifest *rm = bk_reader_manifest(r);
    assert_int_equal(rm->format, BK_FORMAT);
    check_pg_parts(rm);
    check_mongo_parts(rm);
    printf("archive: %zu parts, schema version %d, installation %s\n", rm->n_parts,
           rm->schema_version, rm->installation_id);
    bk_reader_close(r);
    check_contents();
}

/* --snapshot: the dump sees exactly what the exporting session sees, not rows committed after
 * it exported the snapshot; a malformed id or a snapshot no longer held is refused. */
static void test_dump_imports_snapshot(void **state)
{
    (void)state;
    PGconn *holder = PQconnectdb(tdb.pg_conninfo);
    assert_int_equal(PQstatus(holder), CONNECTION_OK);
    PGresult *res = PQexec(holder, "BEGIN ISOLATION LEVEL REPEATABLE READ");
    assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
    PQclear(res);
    res = PQexec(holder, "SELECT pg_export_snapshot()");
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    char *snap = rp_xstrdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    assert_true(bk_snapshot_valid(snap));
    /* a run committed after the export: not in the dump */
    exec_ok(tdb.pg,
            "INSERT INTO runs (id, project_id, test_id, test_version, schedule_id, fire_time, "
            "trigger, location, status) SELECT '00000000-0000-0000-0000-0000000001ff', "
            "project_id, test_id, test_version, schedule_id, fire_time + interval '1 hour', "
            "trigger, location, status FROM runs ORDER BY fire_time LIMIT 1");

    struct rp_error err = {0};
    struct bk_manifest m = {0};
    struct bk_writer *w = btdb_writer_open(tmpdir);
    if (bk_pg_dump(tdb.pg_conninfo, snap, w, &m, NULL, NULL, &err) != RP_OK)
        fail_msg("bk_pg_dump --snapshot %s: %s", snap, err.msg);
    char *path = rp_xasprintf("%s/snapshot.tar", tmpdir);
    btdb_manifest_start(&m);
    if (bk_writer_finish(w, &m, path, &err) != RP_OK)
        fail_msg("bk_writer_finish: %s", err.msg);
    bk_writer_free(w);
    const struct bk_part_info *p = find_part(&m, "postgres", "runs", NULL);
    assert_non_null(p);
    printf("snapshot %s: runs in the dump %llu (4 in the database now)\n", snap,
           (unsigned long long)p->count);
    assert_int_equal(p->count, 3);
    bk_manifest_cleanup(&m);
    unlink(path);
    free(path);

    /* malformed, then well-formed but no longer held: refused, nothing dumped */
    const char *bad[] = {"x'; DROP TABLE runs; --", "00000003", "", NULL};
    PQfinish(holder); /* ends the exporting transaction: the snapshot is gone */
    bad[3] = snap;
    for (size_t i = 0; i < 4; i++) {
        struct bk_manifest m2 = {0};
        memset(&err, 0, sizeof(err));
        w = btdb_writer_open(tmpdir);
        int rc = bk_pg_dump(tdb.pg_conninfo, bad[i], w, &m2, NULL, NULL, &err);
        bk_writer_free(w);
        printf("snapshot \"%s\": %s\n", bad[i], err.msg);
        assert_int_not_equal(rc, RP_OK);
        assert_non_null(strstr(err.msg, "snapshot"));
        assert_null(m2.pg_database);
        bk_manifest_cleanup(&m2);
    }
    exec_ok(tdb.pg, "DELETE FROM runs WHERE id = '00000000-0000-0000-0000-0000000001ff'");
    free(snap);
}

static void test_uncovered_table_fails(void **state)
{
    (void)state;
    exec_ok(tdb.pg, "CREATE TABLE surprise (id integer PRIMARY KEY)");
    struct rp_error err = {0};
    struct bk_manifest m = {0};
    struct bk_writer *w = btdb_writer_open(tmpdir);
    int rc = bk_pg_dump(tdb.pg_conninfo, NULL, w, &m, NULL, NULL, &err);
    bk_writer_free(w);
    assert_int_equal(rc, RP_EINVAL);
    assert_int_equal(err.code, RP_EINVAL);
    printf("uncovered table: %s\n", err.msg);
    assert_non_null(strstr(err.msg, "table surprise is not covered by rampart-backup"));
    assert_non_null(strstr(err.msg, "backup/pgdump.c"));
    assert_null(m.installation_id); /* nothing filled on failure */
    assert_null(m.pg_database);
    bk_manifest_cleanup(&m);
}

/* A table of the list that the schema version has created but the database lacks (dropped by
 * hand, a damaged database) fails too, naming it and the migration that creates it. */
static void test_missing_table_fails(void **state)
{
    (void)state;
    exec_ok(tdb.pg, "DROP TABLE IF EXISTS surprise; DROP TABLE login_throttle");
    struct rp_error err = {0};
    struct bk_manifest m = {0};
    struct bk_writer *w = btdb_writer_open(tmpdir);
    int rc = bk_pg_dump(tdb.pg_conninfo, NULL, w, &m, NULL, NULL, &err);
    bk_writer_free(w);
    assert_int_equal(rc, RP_EINVAL);
    printf("missing table: %s\n", err.msg);
    assert_non_null(strstr(err.msg, "table login_throttle is missing"));
    assert_non_null(strstr(err.msg, "migration 0003"));
    bk_manifest_cleanup(&m);
}

/* No server behind the URI: a transient error (retry later) within the bounded server
 * selection, not a hang. */
static void test_mongo_down_is_transient(void **state)
{
    (void)state;
    struct rp_error err = {0};
    struct bk_manifest m = {0};
    struct bk_writer *w = btdb_writer_open(tmpdir);
    time_t t0 = time(NULL);
    int rc = bk_mongo_dump("mongodb://127.0.0.1:1/rampart", w, &m, NULL, NULL, &err);
    bk_writer_free(w);
    assert_int_equal(rc, RP_EAGAIN);
    assert_true(time(NULL) - t0 < 30);
    printf("mongo down: %s\n", err.msg);
    assert_null(m.mongo_database);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dump_and_verify),
        cmocka_unit_test(test_dump_imports_snapshot),
        cmocka_unit_test(test_uncovered_table_fails),
        cmocka_unit_test(test_missing_table_fails),
        cmocka_unit_test(test_mongo_down_is_transient),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
