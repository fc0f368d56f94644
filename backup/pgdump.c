/* rampart-backup: the PostgreSQL dump (bk_pg_dump). Every table of schema public is copied in
 * COPY text format, one archive part per table, inside one REPEATABLE READ READ ONLY
 * transaction, so all tables come from one snapshot while the services keep writing. Rows are
 * streamed from PQgetCopyData to the archive writer, never held in memory. The list of tables
 * below is the coverage check: a table in the database that it does not name fails the backup
 * loudly rather than being silently left out. With --snapshot the transaction imports a snapshot
 * another session exported (as pg_dump --snapshot), so a caller can see exactly what was saved. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "backup.h"
#include "pgutil.h"
#include "rampart/mem.h"
#include "rampart/pg.h"

/* Every table the migrations create, with the migration that creates it, in DUMP ORDER: a
 * table comes after every table its foreign keys reference, so a restore can load the parts
 * in archive order with the constraints in place. The runner's bookkeeping table comes first
 * (it says which schema the rest belongs to), then the installation's identity, then users
 * and projects (the roots), then what hangs off them, ending with the incident pipeline
 * (incidents -> incident_transitions -> notifications).
 * When a migration adds a table: add it here, after the tables it references, and to the
 * restore order. */
struct table_def {
    const char *name;
    int since; /* the migration that creates it: present whenever schema_version >= since */
};
static const struct table_def TABLES[] = {
    {"schema_migrations", 1}, /* pg_migrate.c creates it before applying 0001 */
    {"rampart_meta", 1},
    {"users", 3},
    {"projects", 2},
    {"tests", 2},                /* -> projects */
    {"test_versions", 2},        /* -> tests */
    {"environments", 2},         /* -> projects */
    {"schedules", 2},            /* -> projects, tests, environments */
    {"runs", 2},                 /* -> projects, tests, schedules, environments */
    {"sessions", 3},             /* -> users */
    {"memberships", 3},          /* -> projects, users */
    {"api_keys", 3},             /* -> projects, users */
    {"login_throttle", 3},       /* no references */
    {"audit_log", 3},            /* -> users, api_keys, projects */
    {"channels", 3},             /* -> projects */
    {"alert_rules", 3},          /* -> projects */
    {"maintenance_windows", 4},  /* -> projects */
    {"test_health", 6},          /* -> tests, projects */
    {"incidents", 6},            /* -> projects, alert_rules, tests */
    {"incident_transitions", 6}, /* -> projects, incidents, channels, users */
    {"notifications", 6},        /* -> projects, incident_transitions, channels */
};
#define N_TABLES (sizeof(TABLES) / sizeof(TABLES[0]))

#define PROGRESS_EVERY 65536 /* rows between progress reports within one table */

/* One table of the database as pg_class lists it. */
struct db_table {
    char *name;
    char kind;         /* 'r' plain, 'p' partitioned */
    uint64_t estimate; /* reltuples, 0 when never analyzed */
    int seen;          /* matched by an entry of TABLES */
};

/* The highest applied migration; RP_EINVAL when the runner's table is missing. */
static int read_schema_version(PGconn *conn, int *version, struct rp_error *err)
{
    PGresult *res = NULL;
    int rc = bk_pg_query(conn, "SELECT to_regclass('public.schema_migrations') IS NOT NULL", 0,
                         NULL, "look for schema_migrations", &res, err);
    if (rc != RP_OK)
        return rc;
    int present = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    if (!present)
        return rp_error_set(err, RP_EINVAL,
                            "postgres: no table public.schema_migrations: this is not a Rampart "
                            "database, or its migrations were never applied (start a Rampart "
                            "service against it, or check the conninfo's dbname)");
    rc = bk_pg_query(conn, "SELECT coalesce(max(version), 0) FROM public.schema_migrations", 0,
                     NULL, "read schema_migrations", &res, err);
    if (rc != RP_OK)
        return rc;
    *version = atoi(PQgetvalue(res, 0, 0));
    PQclear(res);
    return RP_OK;
}

/* List the tables of schema public (plain and partitioned, not partitions), with their row
 * estimates. */
static int list_tables(PGconn *conn, struct db_table **out, size_t *n, struct rp_error *err)
{
    PGresult *res = NULL;
    int rc = bk_pg_query(conn,
                         "SELECT c.relname, c.relkind, greatest(c.reltuples, 0)::bigint "
                         "FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace "
                         "WHERE ns.nspname = 'public' AND c.relkind IN ('r', 'p') "
                         "AND NOT c.relispartition ORDER BY c.relname",
                         0, NULL, "list the tables of schema public", &res, err);
    if (rc != RP_OK)
        return rc;
    int rows = PQntuples(res);
    struct db_table *t = rp_xcalloc(rows > 0 ? (size_t)rows : 1, sizeof(*t));
    for (int i = 0; i < rows; i++) {
        t[i].name = rp_xstrdup(PQgetvalue(res, i, 0));
        t[i].kind = PQgetvalue(res, i, 1)[0];
        t[i].estimate = strtoull(PQgetvalue(res, i, 2), NULL, 10);
    }
    PQclear(res);
    *out = t;
    *n = (size_t)rows;
    return RP_OK;
}

static void free_tables(struct db_table *t, size_t n)
{
    for (size_t i = 0; t && i < n; i++)
        free(t[i].name);
    free(t);
}

static struct db_table *find_table(struct db_table *t, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(t[i].name, name) == 0)
            return &t[i];
    return NULL;
}

/* Every table of the database is in TABLES, and every table of TABLES that the schema version
 * has created is in the database. */
static int check_coverage(struct db_table *t, size_t n, int schema_version, const char *dbname,
                          struct rp_error *err)
{
    for (size_t i = 0; i < N_TABLES; i++) {
        struct db_table *d = find_table(t, n, TABLES[i].name);
        if (d)
            d->seen = 1;
        else if (schema_version >= TABLES[i].since)
            return rp_error_set(err, RP_EINVAL,
                                "postgres: table %s is missing from database %s at schema "
                                "version %d (migration %04d creates it): the database is "
                                "damaged or was not migrated by Rampart",
                                TABLES[i].name, dbname, schema_version, TABLES[i].since);
    }
    for (size_t i = 0; i < n; i++)
        if (!t[i].seen)
            return rp_error_set(err, RP_EINVAL,
                                "postgres: table %s is not covered by rampart-backup: add it to "
                                "backup/pgdump.c (and to the restore order)",
                                t[i].name);
    return RP_OK;
}

/* COPY one table to a part of the archive, streaming row by row. */
static int dump_table(PGconn *conn, const struct db_table *t, struct bk_writer *w,
                      bk_progress_fn progress, void *ud, struct rp_error *err)
{
    int rc = RP_EIO;
    char *ident = NULL, *sql = NULL, *what = rp_xasprintf("postgres/%s", t->name);
    char *copy_what = rp_xasprintf("COPY table %s", t->name);
    PGresult *res = NULL;
    uint64_t rows = 0;

    ident = PQescapeIdentifier(conn, t->name, strlen(t->name));
    if (!ident) {
        rc = bk_pg_fail(err, conn, NULL, copy_what);
        goto out;
    }
    /* A partitioned table cannot be the source of COPY TO; a query over it can. */
    sql = t->kind == 'p' ? rp_xasprintf("COPY (SELECT * FROM public.%s) TO STDOUT", ident)
                         : rp_xasprintf("COPY public.%s TO STDOUT", ident);
    rc = bk_part_begin(w, "postgres", t->name, "copy", err);
    if (rc != RP_OK)
        goto out;
    if (progress)
        progress(ud, what, 0, t->estimate, "rows");
    res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_COPY_OUT) {
        rc = bk_pg_fail(err, conn, res, copy_what);
        goto out;
    }
    PQclear(res);
    res = NULL;
    for (;;) {
        char *buf = NULL;
        int got = PQgetCopyData(conn, &buf, 0);
        if (got == -1)
            break; /* end of the COPY: its final result follows */
        if (got < 0) {
            rc = bk_pg_fail(err, conn, NULL, copy_what);
            goto out;
        }
        rc = bk_part_write(w, buf, (size_t)got, err);
        PQfreemem(buf);
        if (rc != RP_OK)
            goto out; /* the connection is closed by the caller, which ends the COPY */
        rows++;       /* text COPY hands over exactly one row per call */
        if (progress && rows % PROGRESS_EVERY == 0)
            progress(ud, what, rows, t->estimate, "rows");
    }
    res = PQgetResult(conn);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        rc = bk_pg_fail(err, conn, res, copy_what);
        goto out;
    }
    rc = bk_part_end(w, rows, NULL, err);
    if (rc != RP_OK)
        goto out;
    if (progress)
        progress(ud, what, rows, rows, "rows"); /* done: the total is now known */
out:
    if (res) {
        PQclear(res);
        while ((res = PQgetResult(conn)) != NULL) /* drain, so the connection is reusable */
            PQclear(res);
    }
    PQfreemem(ident);
    free(sql);
    free(what);
    free(copy_what);
    return rc;
}

int bk_snapshot_valid(const char *s)
{
    size_t n = 0, groups = 0, run = 0;
    if (!s)
        return 0;
    for (; s[n]; n++) {
        if (s[n] == '-') {
            if (run == 0)
                return 0;
            run = 0;
        } else if (isxdigit((unsigned char)s[n])) {
            if (run++ == 0)
                groups++;
        } else {
            return 0;
        }
    }
    return n > 0 && n <= 64 && run > 0 && groups >= 2;
}

int bk_pg_dump(const char *conninfo, const char *snapshot, struct bk_writer *w,
               struct bk_manifest *m, bk_progress_fn progress, void *ud, struct rp_error *err)
{
    int rc = RP_EIO;
    struct rp_pg *pg = NULL;
    struct db_table *tables = NULL;
    size_t n_tables = 0;
    PGresult *res = NULL;
    char *dbname = NULL, *installation = NULL;
    int version = 0;

    rc = rp_pg_open(conninfo, &pg, err);
    if (rc != RP_OK)
        goto out;
    /* Everything runs on this one connection and its one snapshot: a reconnect would silently
     * continue outside the transaction, so none is attempted (the backup fails, RP_EAGAIN). */
    rp_pg_set_reconnect_budget(pg, 0);
    PGconn *conn = rp_pg_conn(pg);

    if (snapshot && !bk_snapshot_valid(snapshot)) {
        rc = rp_error_set(err, RP_EINVAL,
                          "postgres: \"%.70s\" is not a snapshot id (pg_export_snapshot() "
                          "returns one like 00000003-0000001B-1)",
                          snapshot);
        goto out;
    }
    rc = bk_pg_cmd(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
                   "begin the snapshot transaction", err);
    if (rc != RP_OK)
        goto out;
    if (snapshot) {
        /* SET TRANSACTION SNAPSHOT takes no parameter: the id, checked above to be hex digits
         * and dashes, goes in as an escaped literal */
        char *lit = PQescapeLiteral(conn, snapshot, strlen(snapshot));
        char *sql = lit ? rp_xasprintf("SET TRANSACTION SNAPSHOT %s", lit) : NULL;
        rc = sql ? bk_pg_cmd(conn, sql,
                             "import the snapshot given with --snapshot (is the session that "
                             "exported it still in its transaction?)",
                             err)
                 : bk_pg_fail(err, conn, NULL, "escape the snapshot id");
        free(sql);
        PQfreemem(lit);
        if (rc != RP_OK)
            goto out;
    }
    /* As pg_dump does: a role's or server's statement / idle timeouts, meant for the services'
     * short statements, must not kill a COPY of a big table half-way. */
    rc = bk_pg_cmd(conn,
                   "SET LOCAL statement_timeout = 0; "
                   "SET LOCAL idle_in_transaction_session_timeout = 0",
                   "disable the statement timeouts for the backup", err);
    if (rc != RP_OK)
        goto out;
    rc = bk_pg_query(conn, "SELECT current_database()", 0, NULL, "read current_database()", &res,
                     err);
    if (rc != RP_OK)
        goto out;
    dbname = rp_xstrdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    res = NULL;

    rc = read_schema_version(conn, &version, err);
    if (rc != RP_OK)
        goto out;
    rc = list_tables(conn, &tables, &n_tables, err);
    if (rc != RP_OK)
        goto out;
    rc = check_coverage(tables, n_tables, version, dbname, err);
    if (rc != RP_OK)
        goto out;

    rc = bk_pg_query(conn, "SELECT installation_id::text FROM public.rampart_meta", 0, NULL,
                     "read rampart_meta", &res, err);
    if (rc != RP_OK)
        goto out;
    if (PQntuples(res) != 1) {
        rc = rp_error_set(err, RP_EINVAL,
                          "postgres: table rampart_meta of database %s holds %d rows instead of "
                          "one: the installation has no identity (re-run migration 0001 on an "
                          "empty database, or restore rampart_meta)",
                          dbname, PQntuples(res));
        goto out;
    }
    installation = rp_xstrdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    res = NULL;

    for (size_t i = 0; i < N_TABLES; i++) {
        const struct db_table *t = find_table(tables, n_tables, TABLES[i].name);
        if (!t)
            continue; /* created by a migration newer than this database's schema */
        rc = dump_table(conn, t, w, progress, ud, err);
        if (rc != RP_OK)
            goto out;
    }
    rc = bk_pg_cmd(conn, "COMMIT", "commit the snapshot transaction", err);
    if (rc != RP_OK)
        goto out;

    m->schema_version = version;
    free(m->installation_id);
    m->installation_id = installation;
    installation = NULL;
    free(m->pg_database);
    m->pg_database = dbname;
    dbname = NULL;
    rc = RP_OK;
out:
    PQclear(res);
    free_tables(tables, n_tables);
    free(dbname);
    free(installation);
    rp_pg_close(pg); /* on failure this also ends the transaction */
    return rc;
}
