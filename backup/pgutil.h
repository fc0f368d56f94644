/* rampart-backup: the libpq helpers the PostgreSQL dump (pgdump.c) and restore (restore.c) share:
 * one statement on a raw connection, its failure turned into "postgres: WHAT: message (SQLSTATE
 * x)" with the error code the services use for that SQLSTATE (a lost connection: RP_EAGAIN).
 * Internal to backup/: the public interface is backup.h. */
#ifndef RAMPART_BACKUP_PGUTIL_H
#define RAMPART_BACKUP_PGUTIL_H

#include <libpq-fe.h>

#include "rampart/error.h"

/* Fill `err` from a failed result (or, with res NULL, the connection); returns the code. */
int bk_pg_fail(struct rp_error *err, PGconn *conn, const PGresult *res, const char *what);

/* Run a statement without parameters that returns nothing. */
int bk_pg_cmd(PGconn *conn, const char *sql, const char *what, struct rp_error *err);

/* Run a query (parameters optional) that must return tuples; *out on success (PQclear it). */
int bk_pg_query(PGconn *conn, const char *sql, int nparams, const char *const *params,
                const char *what, PGresult **out, struct rp_error *err);

#endif
