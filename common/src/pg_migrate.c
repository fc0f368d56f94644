/* Schema migration runner: versioned SQL files `NNNN_description.sql` in one folder, applied
 * in order, each exactly once, each in its own transaction together with its row in
 * schema_migrations. Every transaction first takes a transaction-scoped advisory lock, so
 * processes starting together queue up instead of racing (the lock only serializes; it is
 * released by COMMIT/ROLLBACK or a lost connection and never stands for leadership), then
 * checks every applied file's checksum before applying the next one. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "rampart/error.h"
#include "rampart/log.h"
#include "rampart/mem.h"
#include "rampart/pg.h"

#define MAX_FILE_BYTES (4L * 1024 * 1024)
#define MAX_FILES      10000
/* Key of the advisory lock that serializes migration runners ("RAMPMIGR" as ASCII). */
#define MIGRATE_LOCK_KEY       "5927374385466444114"
#define COMMIT_UNKNOWN_RETRIES 3

/* Parse "NNNN_description.sql"; returns the version or -1 if the name is bad. */
static int parse_name(const char *name)
{
    size_t len = strlen(name);
    if (len < 10 || strcmp(name + len - 4, ".sql") != 0 || name[4] != '_')
        return -1;
    int version = 0;
    for (int i = 0; i < 4; i++) {
        if (name[i] < '0' || name[i] > '9')
            return -1;
        version = version * 10 + (name[i] - '0');
    }
    for (size_t i = 5; i < len - 4; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return -1;
    }
    return version >= 1 ? version : -1;
}

static int read_file(const char *dir, struct rp_pg_migration *m, struct rp_error *err)
{
    int rc = RP_EINVAL;
    char *path = rp_xasprintf("%s/%s", dir, m->name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        rc =
            rp_error_set(err, RP_EINVAL, "migration %s: cannot open: %s", m->name, strerror(errno));
        goto out;
    }
    m->sql = rp_xmalloc(MAX_FILE_BYTES + 1);
    size_t n = fread(m->sql, 1, MAX_FILE_BYTES + 1, f);
    if (ferror(f)) {
        rc = rp_error_set(err, RP_EINVAL, "migration %s: read error", m->name);
        goto out;
    }
    if (n > MAX_FILE_BYTES) {
        rc = rp_error_set(err, RP_EINVAL, "migration %s: larger than %ld bytes", m->name,
                          MAX_FILE_BYTES);
        goto out;
    }
    if (memchr(m->sql, '\0', n)) {
        rc = rp_error_set(err, RP_EINVAL, "migration %s: contains a NUL byte", m->name);
        goto out;
    }
    m->sql[n] = '\0';
    m->sql = rp_xrealloc(m->sql, n + 1);
    unsigned char hash[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(hash, (const unsigned char *)m->sql, n);
    sodium_bin2hex(m->checksum, sizeof(m->checksum), hash, sizeof(hash));
    rc = RP_OK;
out:
    if (f)
        fclose(f);
    free(path);
    return rc;
}

static int by_version(const void *a, const void *b)
{
    const struct rp_pg_migration *x = a, *y = b;
    return (x->version > y->version) - (x->version < y->version);
}

int rp_pg_migrations_load(const char *dir, struct rp_pg_migration **out, size_t *n,
                          struct rp_error *err)
{
    int rc = RP_EINVAL;
    struct rp_pg_migration *list = NULL;
    size_t count = 0, cap = 0;
    if (sodium_init() < 0)
        return rp_error_set(err, RP_EIO, "migrations: libsodium failed to initialize");
    DIR *d = opendir(dir);
    if (!d) {
        rc = rp_error_set(err, RP_EINVAL, "migrations: cannot open folder %s: %s", dir,
                          strerror(errno));
        goto out;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *name = e->d_name;
        size_t len = strlen(name);
        if (name[0] == '.' || len < 4 || strcmp(name + len - 4, ".sql") != 0)
            continue;
        int version = parse_name(name);
        if (version < 0) {
            rc = rp_error_set(err, RP_EINVAL,
                              "migration %s in %s: bad name, expected NNNN_description.sql "
                              "(four digits from 0001, then [A-Za-z0-9_-])",
                              name, dir);
            goto out;
        }
        if (count == MAX_FILES) {
            rc = rp_error_set(err, RP_EINVAL, "migrations: more than %d files in %s", MAX_FILES,
                              dir);
            goto out;
        }
        if (count == cap) {
            cap = cap ? cap * 2 : 16;
            list = rp_xrealloc(list, cap * sizeof(*list));
        }
        memset(&list[count], 0, sizeof(list[count]));
        list[count].version = version;
        list[count].name = rp_xstrdup(name);
        count++;
        rc = read_file(dir, &list[count - 1], err);
        if (rc != RP_OK)
            goto out;
    }
    if (count > 1)
        qsort(list, count, sizeof(*list), by_version);
    for (size_t i = 1; i < count; i++) {
        if (list[i].version == list[i - 1].version) {
            rc = rp_error_set(err, RP_EINVAL, "migrations %s and %s in %s share version %04d",
                              list[i - 1].name, list[i].name, dir, list[i].version);
            goto out;
        }
    }
    *out = list;
    *n = count;
    list = NULL;
    count = 0;
    rc = RP_OK;
out:
    if (d)
        closedir(d);
    rp_pg_migrations_free(list, count);
    return rc;
}

void rp_pg_migrations_free(struct rp_pg_migration *m, size_t n)
{
    if (!m)
        return;
    for (size_t i = 0; i < n; i++) {
        free(m[i].name);
        free(m[i].sql);
    }
    free(m);
}

/* State of one migration transaction. */
struct step {
    const struct rp_pg_migration *files;
    size_t n;
    int applied_version; /* out: version applied by this transaction, 0 if none was due */
};

/* Under the lock: verify what is applied, then apply the first file that is not. */
static int step_fn(struct rp_pg *pg, void *ctx, struct rp_error *err)
{
    struct step *s = ctx;
    PGresult *res = NULL;
    const char *lock_params[] = {MIGRATE_LOCK_KEY};
    s->applied_version = 0;
    int rc = rp_pg_exec(pg, "SELECT pg_advisory_xact_lock($1::bigint)", 1, lock_params, NULL, err);
    if (rc != RP_OK)
        goto out;
    rc = rp_pg_exec(pg,
                    "CREATE TABLE IF NOT EXISTS schema_migrations ("
                    " version int PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
                    " applied_at timestamptz NOT NULL DEFAULT now())",
                    0, NULL, NULL, err);
    if (rc != RP_OK)
        goto out;
    rc = rp_pg_exec(pg, "SELECT version, name, checksum FROM schema_migrations ORDER BY version", 0,
                    NULL, &res, err);
    if (rc != RP_OK)
        goto out;

    int rows = PQntuples(res), max_applied = 0;
    const struct rp_pg_migration *next = NULL;
    size_t r = 0;
    for (int i = 0; i < rows; i++) {
        int v = atoi(PQgetvalue(res, i, 0));
        max_applied = v > max_applied ? v : max_applied;
    }
    /* Walk files and rows, both sorted by version. */
    for (size_t i = 0; i < s->n; i++) {
        const struct rp_pg_migration *f = &s->files[i];
        while (r < (size_t)rows && atoi(PQgetvalue(res, (int)r, 0)) < f->version)
            r++;
        if (r < (size_t)rows && atoi(PQgetvalue(res, (int)r, 0)) == f->version) {
            if (strcmp(PQgetvalue(res, (int)r, 2), f->checksum) != 0) {
                rc = rp_error_set(err, RP_EINVAL,
                                  "migration %s was changed after it was applied (as %s, "
                                  "checksum %.12s..., now %.12s...): add a new migration "
                                  "instead of editing an applied one",
                                  f->name, PQgetvalue(res, (int)r, 1), PQgetvalue(res, (int)r, 2),
                                  f->checksum);
                goto out;
            }
            continue;
        }
        if (f->version < max_applied) {
            rc = rp_error_set(err, RP_EINVAL,
                              "migration %s is not applied but version %04d already is: "
                              "number new migrations above the last applied one",
                              f->name, max_applied);
            goto out;
        }
        if (!next)
            next = f;
    }
    if (!next)
        goto out; /* rc is RP_OK: nothing to do */

    rc = rp_pg_exec_script(pg, next->sql, err);
    if (rc != RP_OK) {
        char inner[sizeof(err->msg)];
        snprintf(inner, sizeof(inner), "%s", err ? err->msg : "");
        rc = rp_error_set(err, rc, "migration %s failed: %s", next->name, inner);
        goto out;
    }
    char version[16];
    snprintf(version, sizeof(version), "%d", next->version);
    const char *params[] = {version, next->name, next->checksum};
    rc = rp_pg_exec(pg,
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    3, params, NULL, err);
    if (rc == RP_OK)
        s->applied_version = next->version;
out:
    PQclear(res);
    return rc;
}

int rp_pg_migrate(struct rp_pg *pg, const char *dir, int *applied, struct rp_error *err)
{
    struct rp_pg_migration *files = NULL;
    size_t n = 0;
    int count = 0;
    if (!dir)
        dir = RP_MIGRATIONS_DIR;
    int rc = rp_pg_migrations_load(dir, &files, &n, err);
    if (rc != RP_OK)
        goto out;
    struct step s = {files, n, 0};
    int unknown = 0;
    for (;;) {
        rc = rp_pg_tx(pg, step_fn, &s, err);
        if (rc == RP_ETIMEDOUT && unknown++ < COMMIT_UNKNOWN_RETRIES)
            continue; /* the next transaction sees whether it committed */
        if (rc != RP_OK || s.applied_version == 0)
            break;
        count++;
        rp_info("migrations: applied %04d from %s", s.applied_version, dir);
    }
out:
    if (applied)
        *applied = count;
    rp_pg_migrations_free(files, n);
    return rc;
}

int rp_pg_schema_version(struct rp_pg *pg, int *version, struct rp_error *err)
{
    PGresult *res = NULL;
    int rc = rp_pg_exec_idempotent(pg, "SELECT to_regclass('schema_migrations') IS NOT NULL", 0,
                                   NULL, &res, err);
    if (rc != RP_OK)
        goto out;
    int exists = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    res = NULL;
    if (!exists) {
        *version = 0;
        goto out;
    }
    rc = rp_pg_exec_idempotent(pg, "SELECT coalesce(max(version), 0) FROM schema_migrations", 0,
                               NULL, &res, err);
    if (rc == RP_OK)
        *version = atoi(PQgetvalue(res, 0, 0));
out:
    PQclear(res);
    return rc;
}
