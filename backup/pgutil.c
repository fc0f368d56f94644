/* rampart-backup: the libpq helpers shared by the PostgreSQL dump and restore (pgutil.h). */
#include "pgutil.h"

#include <string.h>

#include "rampart/pg.h"

int bk_pg_fail(struct rp_error *err, PGconn *conn, const PGresult *res, const char *what)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorMessage(res) : NULL;
    if (!msg || !*msg)
        msg = PQerrorMessage(conn);
    int code = PQstatus(conn) != CONNECTION_OK ? RP_EAGAIN
               : state                         ? rp_pg_map_sqlstate(state)
                                               : RP_EIO;
    size_t len = strlen(msg);
    while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == ' '))
        len--;
    return rp_error_set(err, code, "postgres: %s: %.*s (SQLSTATE %s)", what, (int)len, msg,
                        state ? state : "none");
}

int bk_pg_cmd(PGconn *conn, const char *sql, const char *what, struct rp_error *err)
{
    PGresult *res = PQexec(conn, sql);
    int rc = PQresultStatus(res) == PGRES_COMMAND_OK ? RP_OK : bk_pg_fail(err, conn, res, what);
    PQclear(res);
    return rc;
}

int bk_pg_query(PGconn *conn, const char *sql, int nparams, const char *const *params,
                const char *what, PGresult **out, struct rp_error *err)
{
    PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        int rc = bk_pg_fail(err, conn, res, what);
        PQclear(res);
        return rc;
    }
    *out = res;
    return RP_OK;
}
