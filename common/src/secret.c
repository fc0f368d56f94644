/* Sealing and opening secrets with the installation's key (secret.h): libsodium's
 * crypto_secretbox with a random nonce stored in front of the box, base64-encoded behind a
 * version prefix so the format can change later. */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "rampart/mem.h"
#include "rampart/secret.h"

#define PREFIX     "v1:"
#define PREFIX_LEN 3

int rp_secret_key_parse(const char *text, unsigned char key[RP_SECRET_KEY_BYTES],
                        struct rp_error *err)
{
    if (!text || !*text)
        return rp_error_set(err, RP_ENOENT, "no secret key is configured (RAMPART_SECRET_KEY)");
    size_t len = 0;
    if (strlen(text) != 2 * RP_SECRET_KEY_BYTES ||
        sodium_hex2bin(key, RP_SECRET_KEY_BYTES, text, strlen(text), NULL, &len, NULL) != 0 ||
        len != RP_SECRET_KEY_BYTES)
        return rp_error_set(err, RP_EINVAL,
                            "the secret key must be 64 hex digits (32 bytes), e.g. from "
                            "`openssl rand -hex 32`");
    return RP_OK;
}

char *rp_secret_seal(const unsigned char key[RP_SECRET_KEY_BYTES], const char *plain, size_t len)
{
    if (sodium_init() < 0)
        abort();
    size_t blen = crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + len;
    unsigned char *box = rp_xmalloc(blen);
    randombytes_buf(box, crypto_secretbox_NONCEBYTES);
    crypto_secretbox_easy(box + crypto_secretbox_NONCEBYTES, (const unsigned char *)plain, len, box,
                          key);
    size_t cap = sodium_base64_encoded_len(blen, sodium_base64_VARIANT_ORIGINAL);
    char *out = rp_xmalloc(PREFIX_LEN + cap);
    memcpy(out, PREFIX, PREFIX_LEN);
    sodium_bin2base64(out + PREFIX_LEN, cap, box, blen, sodium_base64_VARIANT_ORIGINAL);
    free(box);
    return out;
}

int rp_secret_is_sealed(const char *s)
{
    return s && strncmp(s, PREFIX, PREFIX_LEN) == 0;
}

int rp_secret_open(const unsigned char key[RP_SECRET_KEY_BYTES], const char *sealed, char **out,
                   size_t *len, struct rp_error *err)
{
    if (!rp_secret_is_sealed(sealed))
        return rp_error_set(err, RP_EINVAL, "not a sealed secret (no v1: prefix)");
    const char *b64 = sealed + PREFIX_LEN;
    size_t n = strlen(b64);
    if (n > (64u << 20))
        return rp_error_set(err, RP_EINVAL, "sealed secret too large");
    unsigned char *box = rp_xmalloc(n + 1);
    size_t blen = 0;
    int rc = RP_EINVAL;
    char *plain = NULL;
    if (sodium_base642bin(box, n + 1, b64, n, NULL, &blen, NULL, sodium_base64_VARIANT_ORIGINAL) !=
            0 ||
        blen < crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES) {
        rp_error_set(err, RP_EINVAL, "sealed secret is not valid base64 or too short");
        goto out;
    }
    size_t plen = blen - crypto_secretbox_NONCEBYTES - crypto_secretbox_MACBYTES;
    plain = rp_xmalloc(plen + 1);
    if (crypto_secretbox_open_easy((unsigned char *)plain, box + crypto_secretbox_NONCEBYTES,
                                   blen - crypto_secretbox_NONCEBYTES, box, key) != 0) {
        rp_error_set(err, RP_EINVAL,
                     "a sealed secret cannot be opened: sealed with another RAMPART_SECRET_KEY, "
                     "or altered");
        goto out;
    }
    plain[plen] = '\0';
    *out = plain;
    plain = NULL;
    if (len)
        *len = plen;
    rc = RP_OK;
out:
    free(plain);
    sodium_memzero(box, n + 1);
    free(box);
    return rc;
}
