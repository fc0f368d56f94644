/* Shared set-up of the backup integration tests: private PostgreSQL and Mongo databases on the
 * servers of the test set-up, the temporary archive folder and the archive writer (see
 * backup_testdb.h). Written once here so that the dump and the restore tests create, check and
 * drop their databases the same way. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "backup_testdb.h"
#include "rampart/error.h"
#include "rampart/mem.h"

const char *btdb_env(const char *name)
{
    const char *v = getenv(name);
    if (!v || !*v) {
        fprintf(stderr,
                "%s is not set: run `eval \"$(scripts/servers.sh env)\"` after "
                "`scripts/servers.sh start`\n",
                name);
        return NULL;
    }
    return v;
}

int btdb_admin_open(struct rp_pg **admin)
{
    const char *base = btdb_env("RAMPART_TEST_PG");
    if (!base)
        return -1;
    struct rp_error err = {0};
    if (rp_pg_open(base, admin, &err) != RP_OK) {
        fprintf(stderr, "cannot connect with RAMPART_TEST_PG: %s\n", err.msg);
        return -1;
    }
    return 0;
}

/* `base` (keyword string or URL) as a keyword string with dbname set to `db`. */
static char *with_dbname(const char *base, const char *db)
{
    char *msg = NULL;
    PQconninfoOption *opts = PQconninfoParse(base, &msg);
    if (!opts) {
        fprintf(stderr, "RAMPART_TEST_PG is not a valid conninfo: %s\n", msg ? msg : "?");
        PQfreemem(msg);
        return NULL;
    }
    struct rp_buf b;
    rp_buf_init(&b, 0);
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        const char *v = strcmp(o->keyword, "dbname") == 0 ? db : o->val;
        if (!v)
            continue;
        int rc = rp_buf_printf(&b, "%s='", o->keyword);
        for (const char *p = v; rc == RP_OK && *p; p++) {
            if (*p == '\'' || *p == '\\')
                rc = rp_buf_append(&b, "\\", 1);
            if (rc == RP_OK)
                rc = rp_buf_append(&b, p, 1);
        }
        if (rc == RP_OK)
            rc = rp_buf_append(&b, "' ", 2);
        if (rc != RP_OK)
            abort();
    }
    PQconninfoFree(opts);
    return b.data;
}

static int create_pg(struct rp_pg *admin, const char *name, struct btdb *db)
{
    const char *base = btdb_env("RAMPART_TEST_PG");
    if (!base)
        return -1;
    struct rp_error err = {0};
    snprintf(db->pg_name, sizeof(db->pg_name), "%s", name);
    char *sql = rp_xasprintf("CREATE DATABASE %s", db->pg_name); /* letters, digits, _ only */
    int rc = rp_pg_exec(admin, sql, 0, NULL, NULL, &err);
    free(sql);
    if (rc != RP_OK) {
        fprintf(stderr, "create database %s: %s\n", db->pg_name, err.msg);
        db->pg_name[0] = '\0';
        return -1;
    }
    db->pg_conninfo = with_dbname(base, db->pg_name);
    if (!db->pg_conninfo || rp_pg_open(db->pg_conninfo, &db->pg, &err) != RP_OK) {
        fprintf(stderr, "open database %s: %s\n", db->pg_name, err.msg);
        return -1;
    }
    return 0;
}

static int create_mongo(const char *name, struct btdb *db)
{
    const char *base = btdb_env("RAMPART_TEST_MONGO");
    if (!base)
        return -1;
    const char *hosts = strstr(base, "://");
    if (!hosts) {
        fprintf(stderr, "RAMPART_TEST_MONGO=%s is not a mongodb:// URI\n", base);
        return -1;
    }
    snprintf(db->mongo_name, sizeof(db->mongo_name), "%s", name);
    size_t host_end = (size_t)(hosts + 3 - base) + strcspn(hosts + 3, "/?");
    const char *query = strchr(base + host_end, '?');
    db->mongo_uri =
        rp_xasprintf("%.*s/%s%s", (int)host_end, base, db->mongo_name, query ? query : "");
    struct rp_error err = {0};
    if (rp_mongo_open(db->mongo_uri, 5000, 0, &db->mongo, &err) != RP_OK) {
        fprintf(stderr, "cannot open RAMPART_TEST_MONGO=%s: %s\n", base, err.msg);
        return -1;
    }
    if (strcmp(rp_mongo_db_name(db->mongo), db->mongo_name) != 0) { /* never a shared database */
        fprintf(stderr, "database is %s, expected %s\n", rp_mongo_db_name(db->mongo),
                db->mongo_name);
        return -1;
    }
    return 0;
}

int btdb_create(struct rp_pg *admin, const char *name, struct btdb *db)
{
    return create_pg(admin, name, db) == 0 && create_mongo(name, db) == 0 ? 0 : -1;
}

int btdb_load(struct btdb *db, const char *fixture_sql)
{
    struct rp_error err = {0};
    if (rp_pg_migrate(db->pg, NULL, NULL, &err) != RP_OK) {
        fprintf(stderr, "migrate %s: %s\n", db->pg_name, err.msg);
        return -1;
    }
    if (rp_pg_exec_script(db->pg, fixture_sql, &err) != RP_OK) {
        fprintf(stderr, "fixture: %s\n", err.msg);
        return -1;
    }
    return 0;
}

int btdb_fill_results(struct btdb *db, bson_t **docs, int n)
{
    mongoc_client_t *c = rp_mongo_acquire(db->mongo);
    mongoc_collection_t *col = rp_mongo_collection(db->mongo, c, "results");
    mongoc_database_t *mdb = mongoc_client_get_database(c, db->mongo_name);
    bson_error_t e;
    int ok = mongoc_collection_insert_many(col, (const bson_t **)docs, (size_t)n, NULL, NULL, &e);
    for (int i = 0; i < n; i++)
        bson_destroy(docs[i]);
    if (!ok)
        fprintf(stderr, "insert_many: %s\n", e.message);
    /* createIndexes as a command: the index-model helpers arrived in libmongoc 1.24. */
    bson_t *cmd =
        BCON_NEW("createIndexes", BCON_UTF8("results"), "indexes", "[", "{", "key", "{", "project",
                 BCON_INT32(1), "n", BCON_INT32(-1), "}", "name", BCON_UTF8("project_n"), "}", "]");
    if (ok && !mongoc_database_write_command_with_opts(mdb, cmd, NULL, NULL, &e)) {
        fprintf(stderr, "createIndexes: %s\n", e.message);
        ok = 0;
    }
    bson_destroy(cmd);
    if (ok) {
        mongoc_collection_t *empty = mongoc_database_create_collection(mdb, "empty", NULL, &e);
        if (!empty) {
            fprintf(stderr, "create collection empty: %s\n", e.message);
            ok = 0;
        }
        mongoc_collection_destroy(empty);
    }
    mongoc_database_destroy(mdb);
    mongoc_collection_destroy(col);
    rp_mongo_release(db->mongo, c);
    return ok ? 0 : -1;
}

int btdb_drop(struct rp_pg *admin, struct btdb *db)
{
    int ok = 1;
    rp_pg_close(db->pg);
    if (admin && db->pg_name[0]) {
        struct rp_error err = {0};
        char *sql = rp_xasprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", db->pg_name);
        if (rp_pg_exec_idempotent(admin, sql, 0, NULL, NULL, &err) != RP_OK) {
            fprintf(stderr, "drop database %s: %s\n", db->pg_name, err.msg);
            ok = 0;
        }
        free(sql);
    }
    if (db->mongo) {
        mongoc_client_t *c = rp_mongo_acquire(db->mongo);
        mongoc_database_t *mdb = mongoc_client_get_database(c, db->mongo_name);
        bson_error_t e;
        if (!mongoc_database_drop(mdb, &e)) {
            fprintf(stderr, "drop database %s: %s\n", db->mongo_name, e.message);
            ok = 0;
        }
        mongoc_database_destroy(mdb);
        rp_mongo_release(db->mongo, c);
        rp_mongo_close(db->mongo);
    }
    free(db->pg_conninfo);
    free(db->mongo_uri);
    memset(db, 0, sizeof(*db));
    return ok ? 0 : -1;
}

int btdb_tmpdir_make(char *dir, size_t size, const char *prefix)
{
    snprintf(dir, size, "/tmp/%s_XXXXXX", prefix);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        dir[0] = '\0';
        return -1;
    }
    return 0;
}

void btdb_tmpdir_remove(const char *dir)
{
    if (!dir[0])
        return;
    char *parts = rp_xasprintf("%s/parts", dir);
    rmdir(parts); /* bk_writer_free removed its content */
    free(parts);
    if (rmdir(dir) != 0)
        fprintf(stderr, "note: %s left behind (not empty)\n", dir);
}

struct bk_writer *btdb_writer_open(const char *dir)
{
    struct rp_error err = {0};
    struct bk_writer *w = NULL;
    char *parts = rp_xasprintf("%s/parts", dir);
    int rc = bk_writer_open(parts, &w, &err);
    free(parts);
    if (rc != RP_OK)
        fail_msg("bk_writer_open: %s", err.msg);
    return w;
}

void btdb_manifest_start(struct bk_manifest *m)
{
    m->format = BK_FORMAT;
    m->rampart_version = rp_xstrdup(RP_VERSION);
    m->created_at = rp_xstrdup("2026-11-24T00:00:00Z");
}
