/* rampart-backup: the MongoDB dump (bk_mongo_dump). Every collection of the URI's database
 * (system.* excepted), in name order, becomes one archive part: its documents as stored
 * (concatenated BSON, read with one cursor in the server's natural order and streamed to the
 * writer) and its index definitions in the part's extra. No sort: FerretDB sorts in memory, so
 * a sort by _id made it decode the whole collection before the first batch; the restore needs
 * no order. The server may be FerretDB, which has no sessions or transactions: collections are
 * read one after the other, not at one point in time, which is fine because result documents
 * are keyed by run id (a run finishing during the backup is either in or out, never half).
 * FerretDB decodes every document it reads (its CPU is the dump's time, see bench/README.md):
 * one scan per collection, no count (the progress total comes from $collStats, which FerretDB
 * answers from SQLite). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mongoc/mongoc.h>

#include "backup.h"
#include "rampart/mem.h"
#include "rampart/mongo.h"

#define SERVER_SELECTION_MS 5000    /* fail fast when the server is down */
#define SOCKET_TIMEOUT_MS   600000L /* one reply (a batch, a $collStats on a large collection) */
#define PROGRESS_EVERY      10000   /* documents between progress reports within one collection */
#define FIND_BATCH          2000    /* documents per reply: few round trips, small replies */

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Append {"indexes": [spec, ...]} of `coll` to `extra` (initialized by the caller): each spec as
 * the server lists it, minus "v" (the server's index format version) and "ns" (names the old
 * database), which a restore into another server or database must not carry over. */
static int read_indexes(mongoc_collection_t *coll, const char *name, const char *dbname,
                        bson_t *extra, struct rp_error *err)
{
    int rc = RP_OK;
    bson_t arr;
    const bson_t *doc;
    bson_error_t e;
    uint32_t i = 0;
    mongoc_cursor_t *cur = mongoc_collection_find_indexes_with_opts(coll, NULL);

    BSON_APPEND_ARRAY_BEGIN(extra, "indexes", &arr);
    while (mongoc_cursor_next(cur, &doc)) {
        char buf[16];
        const char *key;
        bson_t spec;
        bson_uint32_to_string(i++, &key, buf, sizeof(buf));
        bson_init(&spec);
        bson_copy_to_excluding_noinit(doc, &spec, "v", "ns", NULL);
        bson_append_document(&arr, key, -1, &spec);
        bson_destroy(&spec);
    }
    bson_append_array_end(extra, &arr);
    if (mongoc_cursor_error(cur, &e)) {
        char *what = rp_xasprintf("list the indexes of collection %s of database %s", name, dbname);
        rc = rp_mongo_error(err, &e, what);
        free(what);
    }
    mongoc_cursor_destroy(cur);
    return rc;
}

int64_t bk_mongo_stored_count(mongoc_collection_t *coll)
{
    int64_t have = -1;
    const bson_t *doc;
    bson_iter_t it;
    bson_t *pipeline =
        BCON_NEW("pipeline", "[", "{", "$collStats", "{", "count", "{", "}", "}", "}", "]");
    mongoc_cursor_t *cur =
        mongoc_collection_aggregate(coll, MONGOC_QUERY_NONE, pipeline, NULL, NULL);
    if (mongoc_cursor_next(cur, &doc) && bson_iter_init_find(&it, doc, "count") &&
        BSON_ITER_HOLDS_NUMBER(&it))
        have = bson_iter_as_int64(&it);
    mongoc_cursor_destroy(cur);
    bson_destroy(pipeline);
    return have;
}

/* Dump one collection into its part. */
static int dump_collection(mongoc_database_t *db, const char *name, const char *dbname,
                           struct bk_writer *w, bk_progress_fn progress, void *ud,
                           struct rp_error *err)
{
    int rc = RP_EIO;
    bson_t extra = BSON_INITIALIZER;
    bson_t *filter = bson_new();
    bson_t *opts = BCON_NEW("batchSize", BCON_INT32(FIND_BATCH)); /* no sort: natural order */
    mongoc_collection_t *coll = mongoc_database_get_collection(db, name);
    mongoc_cursor_t *cur = NULL;
    char *what = rp_xasprintf("mongo/%s", name);
    const bson_t *doc;
    bson_error_t e;
    int64_t stored = bk_mongo_stored_count(coll); /* only for progress: 0 is "unknown" */
    uint64_t docs = 0, total = stored > 0 ? (uint64_t)stored : 0;

    rc = read_indexes(coll, name, dbname, &extra, err);
    if (rc != RP_OK)
        goto out;
    rc = bk_part_begin(w, "mongo", name, "bson", err);
    if (rc != RP_OK)
        goto out;
    if (progress)
        progress(ud, what, 0, total, "documents");
    cur = mongoc_collection_find_with_opts(coll, filter, opts, NULL);
    while (mongoc_cursor_next(cur, &doc)) {
        rc = bk_part_write(w, bson_get_data(doc), doc->len, err);
        if (rc != RP_OK)
            goto out;
        docs++;
        if (progress && docs % PROGRESS_EVERY == 0)
            progress(ud, what, docs, total, "documents");
    }
    if (mongoc_cursor_error(cur, &e)) {
        char *msg = rp_xasprintf("read collection %s of database %s", name, dbname);
        rc = rp_mongo_error(err, &e, msg);
        free(msg);
        goto out;
    }
    rc = bk_part_end(w, docs, &extra, err);
    if (rc != RP_OK)
        goto out;
    if (progress)
        progress(ud, what, docs, docs, "documents"); /* done: the total is now known */
out:
    mongoc_cursor_destroy(cur);
    mongoc_collection_destroy(coll);
    bson_destroy(&extra);
    bson_destroy(filter);
    bson_destroy(opts);
    free(what);
    return rc;
}

int bk_mongo_dump(const char *uri, struct bk_writer *w, struct bk_manifest *m,
                  bk_progress_fn progress, void *ud, struct rp_error *err)
{
    int rc = RP_EIO;
    struct rp_mongo *mg = NULL;
    mongoc_client_t *client = NULL;
    mongoc_database_t *db = NULL;
    char **names = NULL;
    bson_error_t e;

    rc = rp_mongo_open(uri, SERVER_SELECTION_MS, SOCKET_TIMEOUT_MS, &mg, err);
    if (rc != RP_OK) {
        if (err) { /* say what could not be reached; the URI itself may hold a password */
            char why[sizeof(err->msg)];
            const char *m0 = strncmp(err->msg, "mongo: ", 7) == 0 ? err->msg + 7 : err->msg;
            snprintf(why, sizeof(why), "%s", m0);
            rp_error_set(err, rc, "mongo: cannot reach the server of the backup's URI: %s", why);
        }
        goto out;
    }
    client = rp_mongo_acquire(mg);
    const char *dbname = rp_mongo_db_name(mg);
    db = mongoc_client_get_database(client, dbname);
    names = mongoc_database_get_collection_names_with_opts(db, NULL, &e);
    if (!names) {
        char *what = rp_xasprintf("list the collections of database %s", dbname);
        rc = rp_mongo_error(err, &e, what);
        free(what);
        goto out;
    }
    size_t n = 0;
    while (names[n])
        n++;
    qsort(names, n, sizeof(*names), cmp_names);
    for (size_t i = 0; i < n; i++) {
        if (strncmp(names[i], "system.", 7) == 0)
            continue; /* the server's own (views, profile): not Rampart's data */
        rc = dump_collection(db, names[i], dbname, w, progress, ud, err);
        if (rc != RP_OK)
            goto out;
    }
    free(m->mongo_database);
    m->mongo_database = rp_xstrdup(dbname);
    rc = RP_OK;
out:
    bson_strfreev(names);
    if (db)
        mongoc_database_destroy(db);
    if (client)
        rp_mongo_release(mg, client);
    rp_mongo_close(mg);
    return rc;
}
