/* String formats shared by JSON Schema's `format` and the expression language's
 * `is email|url|uuid|date-time`, so both agree: rp_is_email, rp_is_url, rp_is_uuid and
 * rp_is_date_time, with the ASCII classes they are built from (which schema_check.c also uses,
 * hence not static). What each accepts is documented at its declaration in
 * rampart/testlang.h. */
#include <string.h>

#include "schema_int.h"

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 1;
}

int rp_schema_is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

int rp_schema_is_alnum(char c)
{
    return rp_schema_is_alpha(c) || is_digit(c);
}

static int is_xdigit(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

int rp_is_uuid(const char *s)
{
    size_t i;
    for (i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        } else if (!is_xdigit(s[i])) {
            return 0;
        }
    }
    return s[i] == '\0';
}

int rp_is_date_time(const char *s)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, mo, d, h, mi, sec, oh, om;
    size_t n = strlen(s);
    if (n < 20 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
        !digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') || !digits(s + 11, 2, &h) ||
        s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' || !digits(s + 17, 2, &sec))
        return 0;
    if (mo < 1 || mo > 12 || h > 23 || mi > 59 || sec > 60)
        return 0;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d < 1 || d > mdays[mo - 1] + (mo == 2 && leap))
        return 0;
    size_t i = 19;
    if (s[i] == '.') {
        size_t f = ++i;
        while (is_digit(s[i]))
            i++;
        if (i == f)
            return 0;
    }
    if (s[i] == 'Z' || s[i] == 'z')
        return s[i + 1] == '\0';
    if ((s[i] == '+' || s[i] == '-') && n - i == 6 && digits(s + i + 1, 2, &oh) &&
        s[i + 3] == ':' && digits(s + i + 4, 2, &om))
        return oh <= 23 && om <= 59;
    return 0;
}

/* A DNS name: see rp_is_email in rampart/testlang.h. */
static int is_hostname(const char *s, size_t n)
{
    size_t labels = 0, start = 0;
    int all_digits = 1;
    if (n == 0 || n > 253)
        return 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == '.') {
            size_t len = i - start;
            if (len == 0 || len > 63 || s[start] == '-' || s[i - 1] == '-')
                return 0;
            labels++;
            if (i < n)
                all_digits = 1;
            start = i + 1;
        } else if (rp_schema_is_alnum(s[i]) || s[i] == '-') {
            if (!is_digit(s[i]))
                all_digits = 0;
        } else {
            return 0;
        }
    }
    return labels >= 2 && !all_digits;
}

int rp_is_email(const char *s)
{
    const char *at = strchr(s, '@');
    if (!at)
        return 0;
    size_t local = (size_t)(at - s);
    if (local == 0 || local > 64 || s[0] == '.' || s[local - 1] == '.')
        return 0;
    for (size_t i = 0; i < local; i++) {
        char c = s[i];
        if (!(rp_schema_is_alnum(c) || strchr("!#$%&'*+/=?^_`{|}~.-", c)))
            return 0;
        if (c == '.' && s[i + 1] == '.')
            return 0;
    }
    return is_hostname(at + 1, strlen(at + 1));
}

int rp_is_url(const char *s)
{
    size_t n = strlen(s), i = 0;
    for (size_t k = 0; k < n; k++) {
        unsigned char c = (unsigned char)s[k];
        if (c <= 0x20 || c >= 0x7f || strchr("\"<>\\^`{|}", c))
            return 0;
    }
    if (n == 0 || !rp_schema_is_alpha(s[0]))
        return 0;
    while (i < n && (rp_schema_is_alnum(s[i]) || s[i] == '+' || s[i] == '.' || s[i] == '-'))
        i++;
    if (n - i < 3 || memcmp(s + i, "://", 3) != 0)
        return 0;
    i += 3;
    size_t end = i;
    while (end < n && s[end] != '/' && s[end] != '?' && s[end] != '#')
        end++;
    for (size_t k = i; k < end; k++) /* userinfo@: the host starts after the last @ */
        if (s[k] == '@')
            i = k + 1;
    size_t host = i;
    if (i < end && s[i] == '[') {
        while (i < end && s[i] != ']') {
            if (i > host && !is_xdigit(s[i]) && s[i] != ':' && s[i] != '.')
                return 0;
            i++;
        }
        if (i >= end || i == host + 1)
            return 0;
        i++;
    } else {
        while (i < end && (rp_schema_is_alnum(s[i]) || s[i] == '.' || s[i] == '-' || s[i] == '_'))
            i++;
        if (i == host || strchr(".-", s[host]) || strchr(".-", s[i - 1]))
            return 0;
    }
    if (i < end && s[i] == ':') {
        int port;
        size_t plen = end - i - 1;
        if (plen < 1 || plen > 5 || !digits(s + i + 1, (int)plen, &port) || port > 65535)
            return 0;
        i = end;
    }
    return i == end;
}
