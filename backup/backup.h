/* rampart-backup's private header (issue #8): the archive format (archive.c, manifest.c) and
 * the PostgreSQL and MongoDB dump and restore (pgdump.c, mongodump.c) that main.c drives.
 *
 * The archive is one POSIX tar file (libarchive) that `tar tf` can list:
 *   manifest.json                       first: what follows, with counts and SHA-256s
 *   postgres/<table>.copy.zst           one per table: COPY text format, zstd-compressed
 *   mongo/<collection>.bson.zst         one per collection: concatenated BSON documents, zstd
 * Every part is compressed and hashed while it is written to a temporary file; once all parts
 * exist the tar is assembled (manifest first, so a reader knows the schema version and every
 * checksum before it reads any data) into OUT.tmp and renamed to OUT. The SHA-256 of a part is
 * over its stored (compressed) bytes; its count is rows (lines of COPY text) or documents.
 *
 * Errors always name the part ("postgres/runs.copy.zst: checksum mismatch ...") so an operator
 * knows what is damaged. */
#ifndef RAMPART_BACKUP_H
#define RAMPART_BACKUP_H
#include <stddef.h>
#include <stdint.h>

#include <bson/bson.h>
#include <mongoc/mongoc.h>

#include "rampart/error.h"

#define BK_FORMAT 1 /* manifest "format"; a reader refuses a newer one */

/* One part as the manifest lists it. */
struct bk_part_info {
    char *name;         /* "postgres/runs.copy.zst" */
    char *kind;         /* "postgres" | "mongo" */
    char *object;       /* table or collection name */
    uint64_t count;     /* rows or documents */
    uint64_t bytes;     /* stored (compressed) size */
    uint64_t raw_bytes; /* uncompressed size */
    char sha256[65];    /* hex of the stored bytes */
    bson_t *extra;      /* kind-specific, may be NULL: mongo {"indexes": [index specs]} */
};

struct bk_manifest {
    int format;            /* BK_FORMAT */
    char *rampart_version; /* RP_VERSION of the writer */
    int schema_version;    /* highest applied PostgreSQL migration number (0006 -> 6) */
    char *installation_id; /* rampart_meta.installation_id */
    char *created_at;      /* ISO 8601 UTC */
    char *pg_database, *mongo_database; /* names, for information */
    struct bk_part_info *parts;
    size_t n_parts;
};
void bk_manifest_cleanup(struct bk_manifest *m); /* frees members; accepts a zeroed one */
/* JSON text of the manifest (caller frees) / parse it back, checking every member's type and
 * that names are safe ("kind/object.ext", no "..", no absolute path). RP_EINVAL with a message
 * naming the member on any problem; a format newer than BK_FORMAT is refused. */
char *bk_manifest_to_json(const struct bk_manifest *m);
int bk_manifest_parse(const char *json, size_t len, struct bk_manifest *out,
                      struct rp_error *err) RP_MUST_CHECK;

/* Progress of a long step, for the CLI's bar / JSON lines. `done` and `total` in `unit`s
 * ("rows", "documents", "bytes"); total 0 = unknown. */
typedef void (*bk_progress_fn)(void *ud, const char *what, uint64_t done, uint64_t total,
                               const char *unit);

/* ---- writing ------------------------------------------------------------------------------ */
struct bk_writer;
/* Temporary part files go to `tmpdir` (created if missing, removed by bk_writer_free). */
int bk_writer_open(const char *tmpdir, struct bk_writer **out, struct rp_error *err) RP_MUST_CHECK;
/* Start part "<kind>/<object>.<ext>.zst" (ext "copy" or "bson"); one part open at a time. */
int bk_part_begin(struct bk_writer *w, const char *kind, const char *object, const char *ext,
                  struct rp_error *err) RP_MUST_CHECK;
int bk_part_write(struct bk_writer *w, const void *data, size_t len,
                  struct rp_error *err) RP_MUST_CHECK;
/* Close the part with its count of rows / documents; `extra` (may be NULL) is copied. */
int bk_part_end(struct bk_writer *w, uint64_t count, const bson_t *extra,
                struct rp_error *err) RP_MUST_CHECK;
/* Write the archive to `out_path` (via out_path.tmp + rename): the manifest `m` (its header
 * members set by the caller; its parts are the writer's) then every part in the order written. */
int bk_writer_finish(struct bk_writer *w, struct bk_manifest *m, const char *out_path,
                     struct rp_error *err) RP_MUST_CHECK;
void bk_writer_free(struct bk_writer *w);

/* ---- reading ------------------------------------------------------------------------------ */
struct bk_reader;
/* Open an archive and read its manifest (the first entry). */
int bk_reader_open(const char *path, struct bk_reader **out, struct rp_error *err) RP_MUST_CHECK;
const struct bk_manifest *bk_reader_manifest(const struct bk_reader *r);
/* Go to the next part (archive order = manifest order): RP_OK and *part, RP_ENOENT after the
 * last one (then every part of the manifest was seen, else an error names the missing part).
 * An entry the manifest does not list, or out of order, is an error naming it. */
int bk_reader_next(struct bk_reader *r, const struct bk_part_info **part,
                   struct rp_error *err) RP_MUST_CHECK;
/* Read up to `cap` decompressed bytes of the current part into `buf`; *got = 0 at its end,
 * when the SHA-256 and sizes have been checked against the manifest (an error names the part). */
int bk_reader_read(struct bk_reader *r, void *buf, size_t cap, size_t *got,
                   struct rp_error *err) RP_MUST_CHECK;
void bk_reader_close(struct bk_reader *r);

/* Check an archive without touching a database: the manifest, then every part's SHA-256, sizes
 * and count (COPY lines / BSON documents, each document's length prefix checked). RP_OK, or an
 * error whose message names the bad part ("postgres/runs.copy.zst: checksum mismatch"), a
 * missing part, or a truncated archive. */
int bk_verify(const char *path, bk_progress_fn progress, void *ud,
              struct rp_error *err) RP_MUST_CHECK;

/* ---- PostgreSQL (pgdump.c) ----------------------------------------------------------------- */
/* Dump every table of the public schema except schema_migrations-style bookkeeping listed in
 * pgdump.c, in one REPEATABLE READ READ ONLY transaction (one snapshot), COPY text format, one
 * part per table; fills m->schema_version, installation_id, pg_database. A table the backup does
 * not know (a new migration added it and pgdump.c's list was not updated) is an error naming it:
 * the backup fails loudly instead of silently missing data.
 * `snapshot` (NULL: a snapshot of its own) is a snapshot another session exported with
 * pg_export_snapshot() and still holds open, as pg_dump --snapshot: the dump then sees exactly
 * what that session sees (bk_snapshot_valid() checks its form first). */
int bk_pg_dump(const char *conninfo, const char *snapshot, struct bk_writer *w,
               struct bk_manifest *m, bk_progress_fn progress, void *ud,
               struct rp_error *err) RP_MUST_CHECK;

/* 1 when `s` has the form of an exported snapshot id ("00000003-0000001B-1": hex groups and
 * dashes, at most 64 characters), else 0. */
int bk_snapshot_valid(const char *s);

/* ---- MongoDB (mongodump.c) ---------------------------------------------------------------- */
/* The documents `coll` holds, from {$collStats: {count: {}}}: the storage's own count, which
 * FerretDB answers without decoding a document (count / estimatedDocumentCount decode every
 * one: about 20 s per 100,000 results, measured). -1 when the server cannot say. */
int64_t bk_mongo_stored_count(mongoc_collection_t *coll);

/* Dump every collection of the URI's database (documents streamed with a cursor, BSON as
 * stored) with its index definitions in the part's extra; fills m->mongo_database. */
int bk_mongo_dump(const char *uri, struct bk_writer *w, struct bk_manifest *m,
                  bk_progress_fn progress, void *ud, struct rp_error *err) RP_MUST_CHECK;

/* ---- restore (restore.c) ------------------------------------------------------------------ */
/* Restore ARCHIVE into the databases of `pg_conninfo` and `mongo_uri` (either may be NULL to skip
 * it, e.g. an archive made with --only). Nothing is written before the whole archive has been
 * verified (bk_verify). Refuses: an archive whose schema_version is newer than the newest migration
 * in `migrations_dir` (NULL: RP_MIGRATIONS_DIR) — "the archive has schema version 7 but this
 * rampart-backup knows migrations up to 6: use a newer rampart-backup"; a PostgreSQL database with
 * any table in schema public, or a MongoDB database with any collection, unless `force` (then the
 * public schema is dropped and recreated, the MongoDB database dropped). PostgreSQL: applies the
 * migrations up to the archive's schema_version (not newer: the services migrate the restored data
 * forward at start), then in ONE transaction empties the tables those migrations seeded, loads
 * every postgres part with COPY FROM STDIN in archive order, sets every sequence owned by a column
 * to the column's max, and checks each table's count(*) against the manifest before COMMIT.
 * MongoDB: inserts each collection's documents in unordered bulk batches, creates its indexes
 * from the part's extra (not _id_), then checks the count (the inserts the server acknowledged,
 * and bk_mongo_stored_count). Progress through `progress`. */
int bk_restore(const char *archive, const char *pg_conninfo, const char *mongo_uri,
               const char *migrations_dir, int force, bk_progress_fn progress, void *ud,
               struct rp_error *err) RP_MUST_CHECK;

#endif
