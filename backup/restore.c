/* rampart-backup: the restore (bk_restore). An archive goes back into empty databases: first
 * everything that writes nothing (the manifest's schema version against the migrations this
 * binary knows, the whole archive verified, both targets checked empty), then PostgreSQL in one
 * transaction (schema from the migrations up to the archive's version, data by COPY in archive
 * order, which is FK-safe, sequences moved past the data, counts checked before COMMIT), then
 * MongoDB (documents in unordered bulk batches, then the indexes from the manifest, counts
 * checked: the server's acknowledged inserts and its $collStats count, no scan).
 *
 * Design note, the states of a restore and what moves between them:
 *   checked   -- bk_restore: manifest read, schema version accepted, bk_verify passed, targets
 *                empty (or --force: public schema / Mongo database dropped);
 *   migrated  -- pg_restore: migrations <= schema_version applied from a temporary directory;
 *   loaded    -- pg_restore: TRUNCATE + COPY of every postgres part + setval + counts, COMMIT
 *                (a failure rolls it all back, leaving only the migrated empty schema);
 *   done      -- mongo_restore: every collection inserted, indexed and counted.
 * MongoDB has no transactions on FerretDB: a failure there leaves a partial database, which the
 * error says to restore again with --force. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <mongoc/mongoc.h>

#include "backup.h"
#include "pgutil.h"
#include "rampart/mem.h"
#include "rampart/mongo.h"
#include "rampart/pg.h"

#define IO_CHUNK       (256 * 1024)
#define PROGRESS_EVERY 65536 /* rows or documents between progress reports */
/* one bulk write: this many documents or bytes, whichever comes first (libmongoc splits it
 * further at the server's maxWriteBatchSize and message size) */
#define MONGO_BATCH_DOCS    10000
#define MONGO_BATCH_BYTES   (8 * 1024 * 1024)
#define BSON_DOC_CAP        (16 * 1024 * 1024 + 16 * 1024) /* MongoDB's document limit + slack */
#define SERVER_SELECTION_MS 5000
#define SOCKET_TIMEOUT_MS                                                                          \
    600000L            /* one reply: a bulk write, an index build on a large collection */
#define NAMES_LISTED 5 /* objects named in a "not empty" error */

/* "a, b, c and 4 more" from the first column of `res`. */
static char *list_names(PGresult *res)
{
    struct rp_buf b;
    rp_buf_init(&b, 0);
    int n = PQntuples(res);
    for (int i = 0; i < n && i < NAMES_LISTED; i++)
        if (rp_buf_printf(&b, "%s%s", i ? ", " : "", PQgetvalue(res, i, 0)) != RP_OK)
            abort();
    if (n > NAMES_LISTED && rp_buf_printf(&b, " and %d more", n - NAMES_LISTED) != RP_OK)
        abort();
    return b.data ? b.data : rp_xstrdup("");
}

/* ---- checks that write nothing ------------------------------------------------------------ */

static int check_schema_version(const struct bk_manifest *m, const char *dir, int *newest,
                                struct rp_error *err)
{
    struct rp_pg_migration *mig = NULL;
    size_t n = 0;
    int rc = rp_pg_migrations_load(dir, &mig, &n, err);
    if (rc != RP_OK)
        return rc;
    *newest = n > 0 ? mig[n - 1].version : 0;
    rp_pg_migrations_free(mig, n);
    if (m->schema_version > *newest)
        return rp_error_set(err, RP_EINVAL,
                            "the archive has schema version %d but this rampart-backup knows "
                            "migrations up to %d: use a newer rampart-backup",
                            m->schema_version, *newest);
    return RP_OK;
}

/* The PostgreSQL target has no table in schema public; with `force`, drop and recreate it. */
static int pg_prepare_target(PGconn *conn, int force, struct rp_error *err)
{
    PGresult *res = NULL;
    int rc = bk_pg_query(conn,
                         "SELECT c.relname FROM pg_class c JOIN pg_namespace n "
                         "ON n.oid = c.relnamespace WHERE n.nspname = 'public' "
                         "AND c.relkind IN ('r', 'p') ORDER BY 1",
                         0, NULL, "list the tables of schema public", &res, err);
    if (rc != RP_OK)
        return rc;
    int n = PQntuples(res);
    if (n > 0 && !force) {
        char *names = list_names(res);
        PGresult *db = NULL;
        const char *dbname = "?";
        if (bk_pg_query(conn, "SELECT current_database()", 0, NULL, "read current_database()", &db,
                        NULL) == RP_OK)
            dbname = PQgetvalue(db, 0, 0);
        rc = rp_error_set(err, RP_EEXIST,
                          "postgres: database %s is not empty: schema public has %d table(s) "
                          "(%s): restore into a new empty database, or pass --force to drop "
                          "its schema public first",
                          dbname, n, names);
        PQclear(db);
        free(names);
    } else if (n > 0) {
        rc = bk_pg_cmd(conn, "DROP SCHEMA public CASCADE; CREATE SCHEMA public",
                       "drop and recreate schema public (--force)", err);
    }
    PQclear(res);
    return rc;
}

/* The MongoDB target has no collection; with `force`, drop the database. */
static int mongo_prepare_target(mongoc_database_t *db, const char *dbname, int force,
                                struct rp_error *err)
{
    bson_error_t e;
    char **names = mongoc_database_get_collection_names_with_opts(db, NULL, &e);
    if (!names) {
        char *what = rp_xasprintf("list the collections of database %s", dbname);
        int rc = rp_mongo_error(err, &e, what);
        free(what);
        return rc;
    }
    int rc = RP_OK;
    size_t n = 0;
    struct rp_buf b;
    rp_buf_init(&b, 0);
    for (size_t i = 0; names[i]; i++) {
        if (strncmp(names[i], "system.", 7) == 0)
            continue;
        if (n < NAMES_LISTED && rp_buf_printf(&b, "%s%s", n ? ", " : "", names[i]) != RP_OK)
            abort();
        n++;
    }
    if (n > 0 && !force) {
        rc = rp_error_set(err, RP_EEXIST,
                          "mongo: database %s is not empty: it has %zu collection(s) (%s%s): "
                          "restore into a new empty database, or pass --force to drop it first",
                          dbname, n, b.data, n > NAMES_LISTED ? ", ..." : "");
    } else if (n > 0 && !mongoc_database_drop(db, &e)) {
        char *what = rp_xasprintf("drop database %s (--force)", dbname);
        rc = rp_mongo_error(err, &e, what);
        free(what);
    }
    rp_buf_cleanup(&b);
    bson_strfreev(names);
    return rc;
}

/* ---- PostgreSQL ----------------------------------------------------------------------------- */

/* Copy the migration files numbered <= `version` from `dir` into a new temporary directory. */
static int stage_migrations(const char *dir, int version, char **out, struct rp_error *err)
{
    struct rp_pg_migration *mig = NULL;
    size_t n = 0;
    int rc = rp_pg_migrations_load(dir, &mig, &n, err);
    if (rc != RP_OK)
        return rc;
    const char *tmp = getenv("TMPDIR");
    char *path = rp_xasprintf("%s/rampart-restore-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(path)) {
        rc = rp_error_set(err, RP_EIO, "cannot create a temporary directory %s: %s (set TMPDIR)",
                          path, strerror(errno));
        free(path);
        rp_pg_migrations_free(mig, n);
        return rc;
    }
    rc = RP_OK;
    for (size_t i = 0; i < n && rc == RP_OK; i++) {
        if (mig[i].version > version)
            continue;
        char *file = rp_xasprintf("%s/%s", path, mig[i].name);
        FILE *f = fopen(file, "wb");
        size_t len = strlen(mig[i].sql);
        if (!f || fwrite(mig[i].sql, 1, len, f) != len || fclose(f) != 0) {
            rc = rp_error_set(err, RP_EIO, "cannot write %s: %s (is %s full?)", file,
                              strerror(errno), path);
            f = NULL;
        }
        free(file);
    }
    rp_pg_migrations_free(mig, n);
    *out = path;
    return rc; /* the caller removes `path` in every case */
}

static void remove_dir(const char *path)
{
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char *f = rp_xasprintf("%s/%s", path, e->d_name);
            unlink(f);
            free(f);
        }
        closedir(d);
    }
    rmdir(path);
}

/* TRUNCATE every table of the archive's postgres parts: what the migrations seeded goes. */
static int empty_tables(PGconn *conn, const struct bk_manifest *m, struct rp_error *err)
{
    struct rp_buf b;
    rp_buf_init(&b, 0);
    int rc = RP_OK, any = 0;
    for (size_t i = 0; i < m->n_parts && rc == RP_OK; i++) {
        if (strcmp(m->parts[i].kind, "postgres") != 0)
            continue;
        char *ident = PQescapeIdentifier(conn, m->parts[i].object, strlen(m->parts[i].object));
        if (!ident) {
            rc = bk_pg_fail(err, conn, NULL, "quote a table name");
            break;
        }
        if (rp_buf_printf(&b, "%spublic.%s", any ? ", " : "TRUNCATE ", ident) != RP_OK)
            abort();
        any = 1;
        PQfreemem(ident);
    }
    if (rc == RP_OK && any)
        rc = bk_pg_cmd(conn, b.data,
                       "empty the tables the migrations seeded (TRUNCATE); is a table of the "
                       "archive missing from the migrations?",
                       err);
    rp_buf_cleanup(&b);
    return rc;
}

/* COPY one part into its table, streaming from the reader. */
static int copy_part(PGconn *conn, struct bk_reader *r, const struct bk_part_info *p, char *buf,
                     bk_progress_fn progress, void *ud, struct rp_error *err)
{
    int rc = RP_EIO;
    char *what = rp_xasprintf("postgres/%s", p->object);
    char *copy_what = rp_xasprintf("COPY into table %s from part %s", p->object, p->name);
    char *ident = PQescapeIdentifier(conn, p->object, strlen(p->object));
    char *sql = NULL;
    PGresult *res = NULL;
    int in_copy = 0;
    uint64_t rows = 0, next_report = PROGRESS_EVERY;

    if (!ident) {
        rc = bk_pg_fail(err, conn, NULL, copy_what);
        goto out;
    }
    sql = rp_xasprintf("COPY public.%s FROM STDIN", ident);
    if (progress)
        progress(ud, what, 0, p->count, "rows");
    res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_COPY_IN) {
        rc = bk_pg_fail(err, conn, res, copy_what);
        goto out;
    }
    PQclear(res);
    res = NULL;
    in_copy = 1;
    for (;;) {
        size_t got = 0;
        rc = bk_reader_read(r, buf, IO_CHUNK, &got, err);
        if (rc != RP_OK)
            goto out;
        if (got == 0)
            break;
        if (PQputCopyData(conn, buf, (int)got) != 1) {
            rc = bk_pg_fail(err, conn, NULL, copy_what);
            goto out;
        }
        for (const char *q = buf; (q = memchr(q, '\n', got - (size_t)(q - buf))) != NULL; q++)
            rows++; /* COPY text escapes newlines in data: a raw one ends a row */
        if (progress && rows >= next_report) {
            progress(ud, what, rows, p->count, "rows");
            next_report = rows + PROGRESS_EVERY;
        }
    }
    in_copy = 0;
    if (PQputCopyEnd(conn, NULL) != 1) {
        rc = bk_pg_fail(err, conn, NULL, copy_what);
        goto out;
    }
    res = PQgetResult(conn);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        rc = bk_pg_fail(err, conn, res, copy_what);
        goto out;
    }
    if (progress)
        progress(ud, what, rows, p->count, "rows");
    rc = RP_OK;
out:
    if (in_copy && PQputCopyEnd(conn, "rampart-backup: restore failed") == 1) {
        PQclear(res);
        res = PQgetResult(conn);
    }
    PQclear(res);
    while ((res = PQgetResult(conn)) != NULL) /* drain, so the connection is reusable */
        PQclear(res);
    PQfreemem(ident);
    free(sql);
    free(what);
    free(copy_what);
    return rc;
}

/* Every sequence owned by a column of schema public (serial, identity) continues after the
 * column's largest value, so the services' next insert does not collide with restored rows. */
static int set_sequences(PGconn *conn, struct rp_error *err)
{
    PGresult *res = NULL;
    int rc = bk_pg_query(conn,
                         "SELECT quote_ident(sn.nspname) || '.' || quote_ident(s.relname), "
                         "quote_ident(t.relname), quote_ident(a.attname) "
                         "FROM pg_class s JOIN pg_namespace sn ON sn.oid = s.relnamespace "
                         "JOIN pg_depend d ON d.classid = 'pg_class'::regclass "
                         "AND d.objid = s.oid AND d.refclassid = 'pg_class'::regclass "
                         "AND d.deptype IN ('a', 'i') "
                         "JOIN pg_class t ON t.oid = d.refobjid "
                         "JOIN pg_namespace tn ON tn.oid = t.relnamespace "
                         "JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid "
                         "WHERE s.relkind = 'S' AND tn.nspname = 'public' ORDER BY 1",
                         0, NULL, "list the sequences owned by columns", &res, err);
    if (rc != RP_OK)
        return rc;
    for (int i = 0; i < PQntuples(res) && rc == RP_OK; i++) {
        const char *seq = PQgetvalue(res, i, 0), *tbl = PQgetvalue(res, i, 1),
                   *col = PQgetvalue(res, i, 2);
        /* identifiers (DDL-like: they cannot be parameters) come quoted from quote_ident
         * above; the sequence goes as a parameter */
        char *sql = rp_xasprintf("SELECT setval($1::regclass, coalesce(max(%s), 1), "
                                 "max(%s) IS NOT NULL) FROM public.%s",
                                 col, col, tbl);
        char *what = rp_xasprintf("set sequence %s to the largest %s.%s", seq, tbl, col);
        PGresult *r2 = NULL;
        const char *p1[] = {seq};
        rc = bk_pg_query(conn, sql, 1, p1, what, &r2, err);
        PQclear(r2);
        free(sql);
        free(what);
    }
    PQclear(res);
    return rc;
}

/* count(*) of every restored table equals the manifest's count. */
static int check_counts(PGconn *conn, const struct bk_manifest *m, struct rp_error *err)
{
    int rc = RP_OK;
    for (size_t i = 0; i < m->n_parts && rc == RP_OK; i++) {
        const struct bk_part_info *p = &m->parts[i];
        if (strcmp(p->kind, "postgres") != 0)
            continue;
        char *ident = PQescapeIdentifier(conn, p->object, strlen(p->object));
        if (!ident)
            return bk_pg_fail(err, conn, NULL, "quote a table name");
        char *sql = rp_xasprintf("SELECT count(*) FROM public.%s", ident);
        char *what = rp_xasprintf("count the rows of table %s", p->object);
        PGresult *res = NULL;
        rc = bk_pg_query(conn, sql, 0, NULL, what, &res, err);
        if (rc == RP_OK) {
            uint64_t have = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
            if (have != p->count)
                rc = rp_error_set(err, RP_EIO,
                                  "postgres: table %s holds %llu rows after the restore but part "
                                  "%s has %llu: nothing was committed (is a migration seeding "
                                  "rows the archive also has? report it)",
                                  p->object, (unsigned long long)have, p->name,
                                  (unsigned long long)p->count);
        }
        PQclear(res);
        PQfreemem(ident);
        free(sql);
        free(what);
    }
    return rc;
}

static int pg_restore(const char *archive, struct rp_pg *pg, const char *mig_dir,
                      const struct bk_manifest *m, bk_progress_fn progress, void *ud,
                      struct rp_error *err)
{
    int rc = RP_EIO;
    char *staged = NULL, *buf = NULL;
    struct bk_reader *r = NULL;
    PGconn *conn = NULL;
    int in_tx = 0;

    rc = stage_migrations(mig_dir, m->schema_version, &staged, err);
    if (rc == RP_OK)
        rc = rp_pg_migrate(pg, staged, NULL, err);
    if (staged)
        remove_dir(staged);
    free(staged);
    if (rc != RP_OK)
        goto out;
    conn = rp_pg_conn(pg); /* a reconnect during the migrations replaces it */

    rc = bk_pg_cmd(conn, "BEGIN", "begin the restore transaction", err);
    if (rc != RP_OK)
        goto out;
    in_tx = 1;
    rc = bk_pg_cmd(conn,
                   "SET LOCAL statement_timeout = 0; "
                   "SET LOCAL idle_in_transaction_session_timeout = 0",
                   "disable the statement timeouts for the restore", err);
    if (rc == RP_OK)
        rc = empty_tables(conn, m, err);
    if (rc != RP_OK)
        goto out;

    rc = bk_reader_open(archive, &r, err);
    if (rc != RP_OK)
        goto out;
    buf = rp_xmalloc(IO_CHUNK);
    const struct bk_part_info *p;
    while ((rc = bk_reader_next(r, &p, err)) == RP_OK) {
        if (strcmp(p->kind, "postgres") != 0)
            continue;
        rc = copy_part(conn, r, p, buf, progress, ud, err);
        if (rc != RP_OK)
            goto out;
    }
    if (rc != RP_ENOENT)
        goto out;
    rc = set_sequences(conn, err);
    if (rc == RP_OK)
        rc = check_counts(conn, m, err);
    if (rc == RP_OK)
        rc = bk_pg_cmd(conn, "COMMIT", "commit the restore transaction", err);
    in_tx = 0;
out:
    if (in_tx) {
        PGresult *res = PQexec(conn, "ROLLBACK");
        PQclear(res);
    }
    bk_reader_close(r);
    free(buf);
    return rc;
}

/* ---- MongoDB -------------------------------------------------------------------------------- */

static int mongo_part_error(struct rp_error *err, const bson_error_t *e, const char *what,
                            const struct bk_part_info *p, const char *dbname)
{
    char *msg = rp_xasprintf("%s collection %s of database %s from part %s (the database now "
                             "holds part of the archive: fix the cause and restore again with "
                             "--force)",
                             what, p->object, dbname, p->name);
    int rc = rp_mongo_error(err, e, msg);
    free(msg);
    return rc;
}

/* A new unordered bulk insert: the documents of one batch are independent (a failure stops the
 * restore anyway), and unordered lets the server apply them without stopping at the first. On
 * FerretDB it measured the same as ordered (the server's CPU is the limit, see bench/README.md);
 * nor did 2 connections inserting at once help there, so the restore uses one. */
static mongoc_bulk_operation_t *new_bulk(mongoc_collection_t *coll)
{
    bson_t opts = BSON_INITIALIZER;
    BSON_APPEND_BOOL(&opts, "ordered", false);
    mongoc_bulk_operation_t *bulk = mongoc_collection_create_bulk_operation_with_opts(coll, &opts);
    bson_destroy(&opts);
    return bulk;
}

/* Send the pending documents; *inserted grows by the server's acknowledged count (nInserted; a
 * reply without one, as with w:0 in the URI, counts them all: the count check still follows). */
static int flush_bulk(mongoc_collection_t *coll, mongoc_bulk_operation_t **bulk, size_t *pending,
                      size_t *pending_bytes, uint64_t *inserted, const struct bk_part_info *p,
                      const char *dbname, struct rp_error *err)
{
    int rc = RP_OK;
    if (*pending > 0) {
        bson_t reply;
        bson_error_t e;
        bson_iter_t it;
        if (!mongoc_bulk_operation_execute(*bulk, &reply, &e))
            rc = mongo_part_error(err, &e, "insert documents into", p, dbname);
        else if (bson_iter_init_find(&it, &reply, "nInserted") && BSON_ITER_HOLDS_NUMBER(&it))
            *inserted += (uint64_t)bson_iter_as_int64(&it);
        else
            *inserted += *pending;
        bson_destroy(&reply);
    }
    mongoc_bulk_operation_destroy(*bulk);
    *bulk = new_bulk(coll);
    *pending = 0;
    *pending_bytes = 0;
    return rc;
}

/* createIndexes for every spec of the part's extra.indexes except _id_. */
static int create_indexes(mongoc_database_t *db, const struct bk_part_info *p, const char *dbname,
                          struct rp_error *err)
{
    bson_iter_t it, arr;
    if (!p->extra || !bson_iter_init_find(&it, p->extra, "indexes") ||
        !BSON_ITER_HOLDS_ARRAY(&it) || !bson_iter_recurse(&it, &arr))
        return RP_OK;
    int rc = RP_OK;
    while (rc == RP_OK && bson_iter_next(&arr)) {
        bson_t spec, cmd = BSON_INITIALIZER, list, clean;
        uint32_t len;
        const uint8_t *data;
        bson_iter_t f;
        if (!BSON_ITER_HOLDS_DOCUMENT(&arr))
            return rp_error_set(err, RP_EINVAL,
                                "%s: an index definition in the manifest is not a document",
                                p->name);
        bson_iter_document(&arr, &len, &data);
        if (!bson_init_static(&spec, data, len))
            return rp_error_set(err, RP_EINVAL, "%s: a damaged index definition", p->name);
        if (bson_iter_init_find(&f, &spec, "name") && BSON_ITER_HOLDS_UTF8(&f) &&
            strcmp(bson_iter_utf8(&f, NULL), "_id_") == 0)
            continue;
        bson_init(&clean);
        bson_copy_to_excluding_noinit(&spec, &clean, "v", "ns", NULL);
        BSON_APPEND_UTF8(&cmd, "createIndexes", p->object);
        BSON_APPEND_ARRAY_BEGIN(&cmd, "indexes", &list);
        BSON_APPEND_DOCUMENT(&list, "0", &clean);
        bson_append_array_end(&cmd, &list);
        bson_error_t e;
        if (!mongoc_database_write_command_with_opts(db, &cmd, NULL, NULL, &e))
            rc = mongo_part_error(err, &e, "create an index of", p, dbname);
        bson_destroy(&cmd);
        bson_destroy(&clean);
    }
    return rc;
}

/* The collection's document count: bk_mongo_stored_count, or count_documents (a scan) from a
 * server without $collStats. -1 on error, with `e` set. */
static int64_t stored_count(mongoc_collection_t *coll, bson_error_t *e)
{
    int64_t have = bk_mongo_stored_count(coll);
    if (have < 0) {
        bson_t filter = BSON_INITIALIZER;
        have = mongoc_collection_count_documents(coll, &filter, NULL, NULL, NULL, e);
        bson_destroy(&filter);
    }
    return have;
}

/* Insert the documents of one part, create its indexes (after the documents: one index build
 * instead of an update per insert), check its count twice: the inserts the server acknowledged
 * and the documents the collection then holds. */
static int restore_collection(mongoc_database_t *db, struct bk_reader *r,
                              const struct bk_part_info *p, const char *dbname,
                              bk_progress_fn progress, void *ud, struct rp_error *err)
{
    int rc = RP_EIO;
    bson_error_t e;
    char *what = rp_xasprintf("mongo/%s", p->object);
    mongoc_collection_t *coll = mongoc_database_create_collection(db, p->object, NULL, &e);
    mongoc_bulk_operation_t *bulk = NULL;
    struct rp_buf b; /* bytes read but not yet a whole document */
    rp_buf_init(&b, 0);
    size_t pending = 0, pending_bytes = 0, start = 0;
    uint64_t docs = 0, inserted = 0, next_report = PROGRESS_EVERY;
    bson_t no_validate = BSON_INITIALIZER;
    BSON_APPEND_BOOL(&no_validate, "validate", false);

    if (!coll) {
        rc = mongo_part_error(err, &e, "create", p, dbname);
        goto out;
    }
    bulk = new_bulk(coll);
    if (progress)
        progress(ud, what, 0, p->count, "documents");
    for (;;) {
        if (b.cap - b.len < IO_CHUNK) {
            if (start > 0) { /* drop what was consumed before growing */
                memmove(b.data, b.data + start, b.len - start);
                b.len -= start;
                start = 0;
            }
            if (b.cap - b.len < IO_CHUNK) {
                b.data = rp_xrealloc(b.data, b.len + IO_CHUNK);
                b.cap = b.len + IO_CHUNK;
            }
        }
        size_t got = 0;
        rc = bk_reader_read(r, b.data + b.len, IO_CHUNK, &got, err);
        if (rc != RP_OK)
            goto out;
        if (got == 0)
            break;
        b.len += got;
        while (b.len - start >= 4) {
            const uint8_t *d = (const uint8_t *)b.data + start;
            uint32_t dlen =
                (uint32_t)d[0] | (uint32_t)d[1] << 8 | (uint32_t)d[2] << 16 | (uint32_t)d[3] << 24;
            if (dlen < 5 || dlen > BSON_DOC_CAP) {
                rc = rp_error_set(err, RP_EINVAL,
                                  "%s: document %llu has a bad length (%u bytes): the archive "
                                  "is damaged",
                                  p->name, (unsigned long long)docs + 1, dlen);
                goto out;
            }
            if (b.len - start < dlen) {
                if (b.cap < start + dlen) { /* one document larger than the buffer */
                    b.data = rp_xrealloc(b.data, start + dlen + IO_CHUNK);
                    b.cap = start + dlen + IO_CHUNK;
                }
                break;
            }
            bson_t doc;
            if (!bson_init_static(&doc, d, dlen)) {
                rc = rp_error_set(err, RP_EINVAL,
                                  "%s: document %llu is not valid BSON: the "
                                  "archive is damaged",
                                  p->name, (unsigned long long)docs + 1);
                goto out;
            }
            /* stored documents are inserted as they are (dotted keys included): the archive
             * was verified and the server checks what it accepts */
            if (!mongoc_bulk_operation_insert_with_opts(bulk, &doc, &no_validate, &e)) {
                rc = mongo_part_error(err, &e, "insert a document into", p, dbname);
                goto out;
            }
            start += dlen;
            docs++;
            pending_bytes += dlen;
            if (++pending >= MONGO_BATCH_DOCS || pending_bytes >= MONGO_BATCH_BYTES) {
                rc = flush_bulk(coll, &bulk, &pending, &pending_bytes, &inserted, p, dbname, err);
                if (rc != RP_OK)
                    goto out;
                if (progress && docs >= next_report) {
                    progress(ud, what, docs, p->count, "documents");
                    next_report = docs + PROGRESS_EVERY;
                }
            }
        }
    }
    if (b.len != start) {
        rc = rp_error_set(err, RP_EINVAL,
                          "%s: the data ends inside a document (%zu bytes left): the archive is "
                          "damaged",
                          p->name, b.len - start);
        goto out;
    }
    rc = flush_bulk(coll, &bulk, &pending, &pending_bytes, &inserted, p, dbname, err);
    if (rc != RP_OK)
        goto out;
    if (inserted != docs) {
        rc = rp_error_set(err, RP_EIO,
                          "mongo: the server acknowledged %llu of the %llu documents sent to "
                          "collection %s of database %s from part %s (restore again with --force)",
                          (unsigned long long)inserted, (unsigned long long)docs, p->object, dbname,
                          p->name);
        goto out;
    }
    rc = create_indexes(db, p, dbname, err);
    if (rc != RP_OK)
        goto out;
    int64_t have = stored_count(coll, &e);
    if (have < 0) {
        rc = mongo_part_error(err, &e, "count the documents of", p, dbname);
        goto out;
    }
    if ((uint64_t)have != p->count) {
        rc =
            rp_error_set(err, RP_EIO,
                         "mongo: collection %s of database %s holds %lld documents after the "
                         "restore but part %s has %llu (restore again with --force)",
                         p->object, dbname, (long long)have, p->name, (unsigned long long)p->count);
        goto out;
    }
    if (progress)
        progress(ud, what, docs, p->count, "documents");
    rc = RP_OK;
out:
    mongoc_bulk_operation_destroy(bulk);
    mongoc_collection_destroy(coll);
    rp_buf_cleanup(&b);
    bson_destroy(&no_validate);
    free(what);
    return rc;
}

static int mongo_restore(const char *archive, mongoc_database_t *db, const char *dbname,
                         bk_progress_fn progress, void *ud, struct rp_error *err)
{
    struct bk_reader *r = NULL;
    int rc = bk_reader_open(archive, &r, err);
    if (rc != RP_OK)
        return rc;
    const struct bk_part_info *p;
    while ((rc = bk_reader_next(r, &p, err)) == RP_OK) {
        if (strcmp(p->kind, "mongo") != 0)
            continue;
        rc = restore_collection(db, r, p, dbname, progress, ud, err);
        if (rc != RP_OK)
            break;
    }
    bk_reader_close(r);
    return rc == RP_ENOENT ? RP_OK : rc;
}

/* ---- the whole restore ---------------------------------------------------------------------- */

static size_t count_kind(const struct bk_manifest *m, const char *kind)
{
    size_t n = 0;
    for (size_t i = 0; i < m->n_parts; i++)
        n += strcmp(m->parts[i].kind, kind) == 0;
    return n;
}

int bk_restore(const char *archive, const char *pg_conninfo, const char *mongo_uri,
               const char *migrations_dir, int force, bk_progress_fn progress, void *ud,
               struct rp_error *err)
{
    int rc = RP_EIO, newest = 0;
    struct bk_reader *r = NULL;
    struct rp_pg *pg = NULL;
    struct rp_mongo *mg = NULL;
    mongoc_client_t *client = NULL;
    mongoc_database_t *db = NULL;
    const char *dir = migrations_dir ? migrations_dir : RP_MIGRATIONS_DIR;

    if (!pg_conninfo && !mongo_uri)
        return rp_error_set(err, RP_EINVAL, "restore: no target database given");
    rc = bk_reader_open(archive, &r, err);
    if (rc != RP_OK)
        goto out;
    const struct bk_manifest *m = bk_reader_manifest(r);
    if (pg_conninfo && count_kind(m, "postgres") == 0) {
        rc = rp_error_set(err, RP_EINVAL,
                          "%s holds no PostgreSQL data (made with --only mongo?): leave out the "
                          "PostgreSQL target",
                          archive);
        goto out;
    }
    if (mongo_uri && count_kind(m, "mongo") == 0) {
        rc = rp_error_set(err, RP_EINVAL,
                          "%s holds no MongoDB data (made with --only postgres?): leave out the "
                          "MongoDB target",
                          archive);
        goto out;
    }
    if (pg_conninfo) {
        rc = check_schema_version(m, dir, &newest, err);
        if (rc != RP_OK)
            goto out;
    }
    rc = bk_verify(archive, progress, ud, err);
    if (rc != RP_OK)
        goto out;

    /* both targets are checked before either is written */
    if (pg_conninfo) {
        rc = rp_pg_open(pg_conninfo, &pg, err);
        if (rc != RP_OK)
            goto out;
        rp_pg_set_reconnect_budget(pg, 0); /* the transaction lives on this one connection */
        rc = pg_prepare_target(rp_pg_conn(pg), 0, err);
        if (rc != RP_OK && !(force && rc == RP_EEXIST))
            goto out;
    }
    if (mongo_uri) {
        rc = rp_mongo_open(mongo_uri, SERVER_SELECTION_MS, SOCKET_TIMEOUT_MS, &mg, err);
        if (rc != RP_OK) {
            if (err) { /* the URI itself may hold a password: do not repeat it */
                char why[sizeof(err->msg)];
                snprintf(why, sizeof(why), "%s", err->msg);
                rp_error_set(err, rc, "mongo: cannot reach the restore's target: %s", why);
            }
            goto out;
        }
        client = rp_mongo_acquire(mg);
        db = mongoc_client_get_database(client, rp_mongo_db_name(mg));
        rc = mongo_prepare_target(db, rp_mongo_db_name(mg), 0, err);
        if (rc != RP_OK && !(force && rc == RP_EEXIST))
            goto out;
    }
    if (force) {
        if (pg && (rc = pg_prepare_target(rp_pg_conn(pg), 1, err)) != RP_OK)
            goto out;
        if (db && (rc = mongo_prepare_target(db, rp_mongo_db_name(mg), 1, err)) != RP_OK)
            goto out;
    }

    if (pg) {
        rc = pg_restore(archive, pg, dir, m, progress, ud, err);
        if (rc != RP_OK)
            goto out;
    }
    if (db) {
        rc = mongo_restore(archive, db, rp_mongo_db_name(mg), progress, ud, err);
        if (rc != RP_OK)
            goto out;
    }
    rc = RP_OK;
out:
    if (db)
        mongoc_database_destroy(db);
    if (client)
        rp_mongo_release(mg, client);
    rp_mongo_close(mg);
    rp_pg_close(pg);
    bk_reader_close(r);
    return rc;
}
