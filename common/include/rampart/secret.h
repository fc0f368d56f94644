/* Secrets at rest: values the dashboard stores for later use by another service (secret
 * variables of environments, channel credentials) are sealed with a 32-byte key shared by
 * every service through RAMPART_SECRET_KEY, and opened only where they are used (the worker,
 * the mailer, the connector). Sealed form: "v1:" + base64(nonce || ciphertext+MAC) of
 * libsodium's crypto_secretbox (XSalsa20-Poly1305, random 24-byte nonce). Thread-safe. */
#ifndef RAMPART_SECRET_H
#define RAMPART_SECRET_H

#include <stddef.h>

#include "rampart/error.h"

#define RP_SECRET_KEY_BYTES 32

/* The setting's text: 64 hex digits. RP_OK and the key, or RP_EINVAL naming what is wrong.
 * An empty text is RP_ENOENT (no key configured). */
int rp_secret_key_parse(const char *text, unsigned char key[RP_SECRET_KEY_BYTES],
                        struct rp_error *err) RP_MUST_CHECK;

/* Seal `len` bytes of `plain`. Returns the sealed text (caller frees). */
char *rp_secret_seal(const unsigned char key[RP_SECRET_KEY_BYTES], const char *plain, size_t len);

/* True when `s` looks like a sealed value ("v1:..."). */
int rp_secret_is_sealed(const char *s);

/* Open a sealed text: RP_OK and `*out` (NUL-terminated, caller frees; `*len` may be NULL),
 * RP_EINVAL when it is not a sealed value or was sealed with another key or altered. */
int rp_secret_open(const unsigned char key[RP_SECRET_KEY_BYTES], const char *sealed, char **out,
                   size_t *len, struct rp_error *err) RP_MUST_CHECK;

#endif
