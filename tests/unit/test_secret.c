/* Unit tests for sealing secrets at rest (common/src/secret.c): the key setting's parsing, a
 * round trip, and refusals of a wrong key, an altered box and text that is not sealed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rampart/secret.h"

static const char key_hex[] = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

static void test_key_parse(void **state)
{
    unsigned char k[RP_SECRET_KEY_BYTES];
    struct rp_error e = {0};
    assert_int_equal(rp_secret_key_parse(key_hex, k, &e), RP_OK);
    assert_int_equal(k[0], 0);
    assert_int_equal(k[31], 0x1f);
    assert_int_equal(rp_secret_key_parse("", k, &e), RP_ENOENT);
    assert_int_equal(rp_secret_key_parse("abc", k, &e), RP_EINVAL);
    assert_non_null(strstr(e.msg, "64 hex digits"));
    char bad[65];
    memcpy(bad, key_hex, 65);
    bad[10] = 'z';
    assert_int_equal(rp_secret_key_parse(bad, k, &e), RP_EINVAL);
}

static void test_round_trip(void **state)
{
    unsigned char k[RP_SECRET_KEY_BYTES];
    assert_int_equal(rp_secret_key_parse(key_hex, k, NULL), RP_OK);
    const char *plain = "\"s3cret token\"";
    char *a = rp_secret_seal(k, plain, strlen(plain));
    char *b = rp_secret_seal(k, plain, strlen(plain));
    assert_true(rp_secret_is_sealed(a));
    assert_string_not_equal(a, b); /* a fresh nonce each time */
    assert_null(strstr(a, "s3cret"));
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(rp_secret_open(k, a, &out, &len, NULL), RP_OK);
    assert_string_equal(out, plain);
    assert_int_equal(len, strlen(plain));
    free(out);
    /* empty secrets work too */
    char *c = rp_secret_seal(k, "", 0);
    assert_int_equal(rp_secret_open(k, c, &out, NULL, NULL), RP_OK);
    assert_string_equal(out, "");
    free(out);
    free(a);
    free(b);
    free(c);
}

static void test_refusals(void **state)
{
    unsigned char k[RP_SECRET_KEY_BYTES], other[RP_SECRET_KEY_BYTES];
    assert_int_equal(rp_secret_key_parse(key_hex, k, NULL), RP_OK);
    memcpy(other, k, sizeof(k));
    other[0] ^= 1;
    char *s = rp_secret_seal(k, "value", 5);
    char *out = NULL;
    struct rp_error e = {0};
    assert_int_equal(rp_secret_open(other, s, &out, NULL, &e), RP_EINVAL);
    assert_non_null(strstr(e.msg, "another RAMPART_SECRET_KEY"));
    assert_null(out);
    size_t n = strlen(s);
    s[n - 3] = s[n - 3] == 'A' ? 'B' : 'A'; /* alter the box */
    assert_int_equal(rp_secret_open(k, s, &out, NULL, &e), RP_EINVAL);
    assert_int_equal(rp_secret_open(k, "plain", &out, NULL, &e), RP_EINVAL);
    assert_int_equal(rp_secret_open(k, "v1:!!!", &out, NULL, &e), RP_EINVAL);
    assert_int_equal(rp_secret_open(k, "v1:AAAA", &out, NULL, &e), RP_EINVAL); /* too short */
    assert_false(rp_secret_is_sealed(NULL));
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_parse),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
