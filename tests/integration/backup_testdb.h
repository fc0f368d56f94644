/* Shared set-up of the backup integration tests (it_backup_dump.c, it_backup_restore.c): private
 * PostgreSQL and Mongo databases on the servers of the test set-up (RAMPART_TEST_PG,
 * RAMPART_TEST_MONGO), created under a name the test chooses and dropped at the end, the
 * temporary folder the archives go to, and the archive writer the tests open. Not a test itself:
 * tests/CMakeLists.txt builds it into every it_backup_* executable. The set-up functions print
 * what went wrong on stderr and return -1, so a cmocka group set-up can return at once (its
 * teardown still drops what was created); the writer helpers are for test bodies and fail the
 * test instead. */
#ifndef RAMPART_TESTS_BACKUP_TESTDB_H
#define RAMPART_TESTS_BACKUP_TESTDB_H

#include <stddef.h>

#include "backup.h"
#include "rampart/mongo.h"
#include "rampart/pg.h"

/* One private database pair. Zero-initialise; btdb_create fills it, btdb_drop empties it. */
struct btdb {
    char pg_name[64];       /* "" until the PostgreSQL database exists */
    char mongo_name[64];    /* the Mongo database: the same name */
    char *pg_conninfo;      /* RAMPART_TEST_PG with dbname = pg_name */
    char *mongo_uri;        /* RAMPART_TEST_MONGO with the database mongo_name */
    struct rp_pg *pg;       /* open on pg_name */
    struct rp_mongo *mongo; /* open on mongo_name */
};

/* The value of the environment variable `name` (RAMPART_TEST_PG or RAMPART_TEST_MONGO), or NULL
 * after saying on stderr how to set it when it is unset or empty. */
const char *btdb_env(const char *name);

/* Connects to the base database of RAMPART_TEST_PG, the one CREATE / DROP DATABASE run on.
 * Returns 0 with *admin set (close with rp_pg_close), or -1. */
int btdb_admin_open(struct rp_pg **admin);

/* Creates the PostgreSQL database `name` (letters, digits and _ only) through `admin` and opens
 * it, then opens the Mongo database `name` on RAMPART_TEST_MONGO, refusing any other (never a
 * shared database). Returns 0 or -1; on -1 `db` holds what was made, for btdb_drop. */
int btdb_create(struct rp_pg *admin, const char *name, struct btdb *db);

/* Applies every migration to db's PostgreSQL database, then runs `fixture_sql` on it. */
int btdb_load(struct btdb *db, const char *fixture_sql);

/* Inserts docs[0..n) into the collection `results` of db's Mongo database, then gives it the
 * index project_n {project: 1, n: -1} and creates the empty collection `empty`. Destroys the
 * documents (not the array). Returns 0 or -1. */
int btdb_fill_results(struct btdb *db, bson_t **docs, int n);

/* Closes db's connections, drops both its databases (admin may be NULL: the PostgreSQL one is
 * then left) and frees what it holds; `db` is zeroed and can be dropped again. Returns 0 when
 * every drop succeeded, -1 otherwise. */
int btdb_drop(struct rp_pg *admin, struct btdb *db);

/* Makes the folder /tmp/<prefix>_XXXXXX into dir[size]. Returns 0, or -1 (dir is then ""). */
int btdb_tmpdir_make(char *dir, size_t size, const char *prefix);

/* Removes dir/parts (bk_writer_free empties it) and dir, which the caller has emptied of its
 * own files; says so on stderr if dir stays. Does nothing when dir is "". */
void btdb_tmpdir_remove(const char *dir);

/* Opens an archive writer whose parts go to dir/parts; fails the running cmocka test if it
 * cannot. The caller frees it with bk_writer_free. */
struct bk_writer *btdb_writer_open(const char *dir);

/* Fills the fields of `m` that the CLI fills before a dump: format, rampart version and a fixed
 * creation time. bk_manifest_cleanup frees them. */
void btdb_manifest_start(struct bk_manifest *m);

#endif
