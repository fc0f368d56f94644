/* MongoDB client (libmongoc 1.23): a pool of clients built from a mongodb:// URI with a
 * bounded server-selection timeout (the 30 s default would stall a service while the server
 * is down), libmongoc's logging routed into rp_log, and one error mapping onto RP_EAGAIN
 * (retry) versus permanent codes. Works against real MongoDB and FerretDB; with FerretDB
 * there are no transactions, sessions, change streams or TTL indexes, so callers use
 * client-generated _ids and idempotent upserts (rp_mongo_upsert_by_id). */
#ifndef RAMPART_MONGO_H
#define RAMPART_MONGO_H

#include <mongoc/mongoc.h>

#include "rampart/error.h"

struct rp_mongo;

/* How long an operation waits for the server's reply unless the caller or the URI says
 * otherwise (socketTimeoutMS; libmongoc's own default is 300 s). A reply that does not come
 * in time fails the operation as transient (RP_EAGAIN) and closes its connection, so a reply
 * lost with its connection (a network cut, a proxy that dropped the session) costs a retry,
 * not minutes. Operations that legitimately take longer (a retention delete on FerretDB, a
 * backup) ask for more. */
#define RP_MONGO_SOCKET_TIMEOUT_MS 60000L

/* Parse `uri` and apply Rampart's settings: serverSelectionTimeoutMS forced to
 * `server_selection_timeout_ms` (> 0); connectTimeoutMS, when the URI does not set it, to the
 * same bound clamped to 100..10000 ms; socketTimeoutMS, when the URI does not set it, to
 * `socket_timeout_ms` (0: RP_MONGO_SOCKET_TIMEOUT_MS); appname "rampart" unless set. Other URI
 * options are kept as given (retryWrites/retryReads included: see docs in mongo.c for
 * FerretDB). Returns RP_OK and `*out` (caller mongoc_uri_destroy()s it) or RP_EINVAL. Exposed
 * for tests and tools; rp_mongo_open calls it. Thread-safe. */
int rp_mongo_uri_new(const char *uri, long server_selection_timeout_ms, long socket_timeout_ms,
                     mongoc_uri_t **out, struct rp_error *err) RP_MUST_CHECK;

/* Open a pool for `uri` (see rp_mongo_uri_new for the options applied) and ping the server,
 * so that a wrong address is reported now rather than at the first query. Initializes
 * libmongoc once per process (thread-safe) and installs a log handler that sends its
 * warnings and errors to rp_log (lower levels are dropped). Returns RP_OK and `*out` (free
 * with rp_mongo_close), RP_EINVAL for a bad URI, RP_EAGAIN when no server answered within
 * the bound (retry later). The returned object is thread-safe. */
int rp_mongo_open(const char *uri, long server_selection_timeout_ms, long socket_timeout_ms,
                  struct rp_mongo **out, struct rp_error *err) RP_MUST_CHECK;

/* Destroy the pool. Every acquired client must have been released. Accepts NULL. */
void rp_mongo_close(struct rp_mongo *m);

/* Take a client from the pool (blocks while all are in use; the pool holds up to 100). A
 * client is used by one thread at a time; give it back with rp_mongo_release. */
mongoc_client_t *rp_mongo_acquire(struct rp_mongo *m);
void rp_mongo_release(struct rp_mongo *m, mongoc_client_t *client);

/* Database named in the URI ("mongodb://h/dbname"), "rampart" if none. Owned by `m`. */
const char *rp_mongo_db_name(const struct rp_mongo *m);

/* The collection `name` of rp_mongo_db_name() on `client` (caller
 * mongoc_collection_destroy()s it before releasing the client). */
mongoc_collection_t *rp_mongo_collection(const struct rp_mongo *m, mongoc_client_t *client,
                                         const char *name);

/* `{ping: 1}` against the admin database. RP_OK, or RP_EAGAIN when no server answers within
 * the server-selection bound. */
int rp_mongo_ping(struct rp_mongo *m, struct rp_error *err) RP_MUST_CHECK;

/* Map a libmongoc error (error API version 2, as set by rp_mongo_open) to an RP_* code:
 * RP_EEXIST for duplicate keys (11000, 11001, 12582); RP_EAGAIN for server selection,
 * stream and socket failures, network timeouts and replica-set state changes
 * (NotWritablePrimary 10107, PrimarySteppedDown 189, ShutdownInProgress 91,
 * InterruptedDueToReplStateChange 11602, ...); RP_ETIMEDOUT for MaxTimeMSExpired 50 and write
 * concern timeouts 64 (the write may have happened); RP_EINVAL for bad queries, documents and
 * arguments (BadValue 2, FailedToParse 9, TypeMismatch 14, ...); RP_EIO otherwise. Pure. */
int rp_mongo_map_error(const bson_error_t *error);

/* Fill `err` from a libmongoc error: "mongo: WHAT: message (domain D, code C)". Returns the
 * mapped code, so `return rp_mongo_error(err, &e, "insert")` reads naturally. */
int rp_mongo_error(struct rp_error *err, const bson_error_t *error, const char *what);

/* Insert or replace the document whose _id is `doc`'s _id in collection `coll` (replace_one
 * with upsert): running it twice leaves one document, so it is safe for redelivered jobs.
 * `doc` must hold an _id (RP_EINVAL otherwise). Thread-safe (takes a client from the pool). */
int rp_mongo_upsert_by_id(struct rp_mongo *m, const char *coll, const bson_t *doc,
                          struct rp_error *err) RP_MUST_CHECK;

#endif
