/* MongoDB pool, URI options, log routing and error mapping. libmongoc is initialized once
 * per process (pthread_once) and never cleaned up, because several pools may live at once. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mongoc/mongoc.h>

#include "rampart/error.h"
#include "rampart/log.h"
#include "rampart/mem.h"
#include "rampart/mongo.h"

/* FerretDB v1.24 (sqlite handler) as seen by libmongoc 1.23, measured by it_mongo:
 * - hello reports a standalone server with logicalSessionTimeoutMinutes=30, so libmongoc
 *   attaches implicit sessions (lsid) to commands; FerretDB ignores them, fine. Retryable
 *   writes are only used against replica sets, so retryWrites needs no change in the URI.
 * - endSessions is not implemented: every pool/client destroy logs a warning (dropped in
 *   on_log). Transactions fail at the first write ("unknown field startTransaction").
 * - aggregate: only the FIRST accumulator of a $group stage is computed; the others come
 *   back as 0 with no error. Use one accumulator per $group (run two pipelines to get a sum
 *   and a count). $lookup and $literal answer NotImplemented (238), mapped to RP_EINVAL. */
#define DEFAULT_DB "rampart"
#define APP_NAME   "rampart"

struct rp_mongo {
    mongoc_client_pool_t *pool;
    mongoc_uri_t *uri;
    char *db;
};

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

/* libmongoc's own logging (pool warnings, topology changes) would go to stderr as plain
 * text; route warnings and errors into our JSON lines and drop the chatter. */
static void on_log(mongoc_log_level_t level, const char *domain, const char *message, void *ud)
{
    /* FerretDB has no sessions command: the pool's goodbye "endSessions" fails on every
     * rp_mongo_close. Harmless (the server keeps no session state), so not a warning. */
    if (strstr(message, "\"endSessions\""))
        return;
    switch (level) {
    case MONGOC_LOG_LEVEL_ERROR:
    case MONGOC_LOG_LEVEL_CRITICAL:
        rp_err("mongo: %s: %s", domain, message);
        break;
    case MONGOC_LOG_LEVEL_WARNING:
        rp_warn("mongo: %s: %s", domain, message);
        break;
    default:
        break;
    }
}

static void init_library(void)
{
    mongoc_log_set_handler(on_log, NULL);
    mongoc_init();
}

int rp_mongo_map_error(const bson_error_t *e)
{
    if (!e || e->code == 0)
        return RP_EIO;
    switch (e->domain) {
    case MONGOC_ERROR_SERVER_SELECTION:
    case MONGOC_ERROR_STREAM:
    case MONGOC_ERROR_PROTOCOL:
        return RP_EAGAIN;
    case MONGOC_ERROR_CLIENT:
        if (e->code == MONGOC_ERROR_CLIENT_TOO_BIG || e->code == MONGOC_ERROR_CLIENT_TOO_SMALL)
            return RP_EINVAL;
        if (e->code == MONGOC_ERROR_CLIENT_AUTHENTICATE)
            return RP_EIO;
        return RP_EAGAIN;
    case MONGOC_ERROR_BSON:
    case MONGOC_ERROR_NAMESPACE:
    case MONGOC_ERROR_MATCHER:
    case MONGOC_ERROR_CURSOR:
        return RP_EINVAL;
    case MONGOC_ERROR_COMMAND:
        if (e->code == MONGOC_ERROR_COMMAND_INVALID_ARG)
            return RP_EINVAL;
        break; /* otherwise a server code (error API version 1) */
    default:
        break;
    }
    /* Server error codes (domain SERVER, WRITE_CONCERN, QUERY, COLLECTION...). */
    switch (e->code) {
    case 11000:
    case 11001:
    case 12582:
        return RP_EEXIST;
    case 6:     /* HostUnreachable */
    case 7:     /* HostNotFound */
    case 89:    /* NetworkTimeout */
    case 91:    /* ShutdownInProgress */
    case 112:   /* WriteConflict */
    case 133:   /* FailedToSatisfyReadPreference */
    case 189:   /* PrimarySteppedDown */
    case 251:   /* NoSuchTransaction */
    case 262:   /* ExceededTimeLimit */
    case 9001:  /* SocketException */
    case 10107: /* NotWritablePrimary */
    case 11600: /* InterruptedAtShutdown */
    case 11602: /* InterruptedDueToReplStateChange */
    case 13388: /* StaleConfig */
    case 13435: /* NotPrimaryNoSecondaryOk */
    case 13436: /* NotPrimaryOrSecondary */
        return RP_EAGAIN;
    case 50: /* MaxTimeMSExpired */
    case 64: /* WriteConcernFailed (wtimeout): the write may have happened */
        return RP_ETIMEDOUT;
    case 2:     /* BadValue */
    case 9:     /* FailedToParse */
    case 14:    /* TypeMismatch */
    case 15:    /* Overflow */
    case 17:    /* InvalidLength? (legacy) */
    case 22:    /* InvalidBSON */
    case 26:    /* NamespaceNotFound */
    case 40:    /* ConflictingUpdateOperators */
    case 52:    /* DollarPrefixedFieldName */
    case 59:    /* CommandNotFound */
    case 66:    /* ImmutableField */
    case 67:    /* CannotCreateIndex */
    case 73:    /* InvalidNamespace */
    case 85:    /* IndexOptionsConflict */
    case 86:    /* IndexKeySpecsConflict */
    case 115:   /* CommandNotSupported */
    case 238:   /* NotImplemented (FerretDB: unsupported stage or operator) */
    case 15952: /* unknown group operator */
    case 16410: /* field names cannot start with $ */
    case 17276: /* Use of undefined variable */
    case 40323: /* A pipeline stage specification object must contain exactly one field */
    case 40324: /* Unrecognized pipeline stage name */
        return RP_EINVAL;
    default:
        return RP_EIO;
    }
}

int rp_mongo_error(struct rp_error *err, const bson_error_t *e, const char *what)
{
    int rc = rp_mongo_map_error(e);
    return rp_error_set(err, rc, "mongo: %s: %s (domain %u, code %u)", what,
                        e && e->message[0] ? e->message : "unknown error", e ? e->domain : 0,
                        e ? e->code : 0);
}

int rp_mongo_uri_new(const char *uri_string, long timeout_ms, long socket_timeout_ms,
                     mongoc_uri_t **out, struct rp_error *err)
{
    bson_error_t e;
    if (timeout_ms <= 0 || timeout_ms > INT32_MAX)
        return rp_error_set(err, RP_EINVAL, "mongo: server selection timeout %ld ms out of range",
                            timeout_ms);
    if (socket_timeout_ms < 0 || socket_timeout_ms > INT32_MAX)
        return rp_error_set(err, RP_EINVAL, "mongo: socket timeout %ld ms out of range",
                            socket_timeout_ms);
    mongoc_uri_t *uri = mongoc_uri_new_with_error(uri_string ? uri_string : "", &e);
    if (!uri)
        return rp_error_set(err, RP_EINVAL, "mongo: bad URI: %s", e.message);
    mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, (int32_t)timeout_ms);
    if (!mongoc_uri_has_option(uri, MONGOC_URI_CONNECTTIMEOUTMS)) {
        long ct = timeout_ms < 100 ? 100 : timeout_ms > 10000 ? 10000 : timeout_ms;
        mongoc_uri_set_option_as_int32(uri, MONGOC_URI_CONNECTTIMEOUTMS, (int32_t)ct);
    }
    /* libmongoc waits 300 s for a reply by default: a reply lost with its connection (a
     * network cut) would hold the caller that long (measured: a worker's writer, stalled) */
    if (!mongoc_uri_has_option(uri, MONGOC_URI_SOCKETTIMEOUTMS))
        mongoc_uri_set_option_as_int32(
            uri, MONGOC_URI_SOCKETTIMEOUTMS,
            (int32_t)(socket_timeout_ms ? socket_timeout_ms : RP_MONGO_SOCKET_TIMEOUT_MS));
    if (!mongoc_uri_get_appname(uri))
        mongoc_uri_set_appname(uri, APP_NAME);
    *out = uri;
    return RP_OK;
}

int rp_mongo_open(const char *uri_string, long timeout_ms, long socket_timeout_ms,
                  struct rp_mongo **out, struct rp_error *err)
{
    pthread_once(&init_once, init_library);
    struct rp_mongo *m = rp_xcalloc(1, sizeof(*m));
    int rc = rp_mongo_uri_new(uri_string, timeout_ms, socket_timeout_ms, &m->uri, err);
    if (rc != RP_OK)
        goto out;
    const char *db = mongoc_uri_get_database(m->uri);
    m->db = rp_xstrdup(db && *db ? db : DEFAULT_DB);
    bson_error_t e;
    m->pool = mongoc_client_pool_new_with_error(m->uri, &e);
    if (!m->pool) {
        rc = rp_mongo_error(err, &e, "cannot create client pool");
        rc = rc == RP_EAGAIN ? RP_EAGAIN : RP_EINVAL;
        goto out;
    }
    mongoc_client_pool_set_error_api(m->pool, MONGOC_ERROR_API_VERSION_2);
    rc = rp_mongo_ping(m, err);
    if (rc != RP_OK)
        goto out;
    *out = m;
    m = NULL;
out:
    rp_mongo_close(m);
    return rc;
}

void rp_mongo_close(struct rp_mongo *m)
{
    if (!m)
        return;
    if (m->pool)
        mongoc_client_pool_destroy(m->pool);
    mongoc_uri_destroy(m->uri);
    free(m->db);
    free(m);
}

mongoc_client_t *rp_mongo_acquire(struct rp_mongo *m)
{
    return mongoc_client_pool_pop(m->pool);
}

void rp_mongo_release(struct rp_mongo *m, mongoc_client_t *client)
{
    if (client)
        mongoc_client_pool_push(m->pool, client);
}

const char *rp_mongo_db_name(const struct rp_mongo *m)
{
    return m->db;
}

mongoc_collection_t *rp_mongo_collection(const struct rp_mongo *m, mongoc_client_t *client,
                                         const char *name)
{
    return mongoc_client_get_collection(client, m->db, name);
}

int rp_mongo_ping(struct rp_mongo *m, struct rp_error *err)
{
    bson_error_t e;
    bson_t cmd = BSON_INITIALIZER;
    BSON_APPEND_INT32(&cmd, "ping", 1);
    mongoc_client_t *c = rp_mongo_acquire(m);
    int rc = RP_OK;
    if (!mongoc_client_command_simple(c, "admin", &cmd, NULL, NULL, &e)) {
        rc = rp_mongo_error(err, &e, "ping");
        if (rc != RP_EAGAIN && rc != RP_EINVAL)
            rc = RP_EAGAIN;
    }
    rp_mongo_release(m, c);
    bson_destroy(&cmd);
    return rc;
}

int rp_mongo_upsert_by_id(struct rp_mongo *m, const char *coll, const bson_t *doc,
                          struct rp_error *err)
{
    int rc = RP_EINVAL;
    bson_iter_t it;
    bson_t selector = BSON_INITIALIZER, opts = BSON_INITIALIZER;
    mongoc_client_t *c = NULL;
    mongoc_collection_t *col = NULL;
    if (!bson_iter_init_find(&it, doc, "_id")) {
        rc = rp_error_set(err, RP_EINVAL, "mongo: upsert into %s: document has no _id", coll);
        goto out;
    }
    bson_append_iter(&selector, "_id", 3, &it);
    BSON_APPEND_BOOL(&opts, "upsert", true);
    c = rp_mongo_acquire(m);
    col = rp_mongo_collection(m, c, coll);
    bson_error_t e;
    if (!mongoc_collection_replace_one(col, &selector, doc, &opts, NULL, &e)) {
        char what[128];
        snprintf(what, sizeof(what), "upsert into %s", coll);
        rc = rp_mongo_error(err, &e, what);
        goto out;
    }
    rc = RP_OK;
out:
    if (col)
        mongoc_collection_destroy(col);
    rp_mongo_release(m, c);
    bson_destroy(&selector);
    bson_destroy(&opts);
    return rc;
}
