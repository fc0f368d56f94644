/* Integration test of the mailer's sender (mailer/smtp.c) against a real SMTP server: the test
 * starts tests/integration/alerts/smtp_sink.py (Debian's python3-aiosmtpd) itself on free ports
 * (a plain one, one requiring AUTH, one answering the first DATA with 451) and calls mail_send as
 * the alert engine would. Proves: an "opened" mail reaches both recipients with its headers and
 * body intact; AUTH with the right password delivers, a wrong one fails for good (535) without
 * the password in the outcome; a 451 is worth a retry and the retry delivers exactly once;
 * STARTTLS (a sink with a self-signed certificate made here by openssl) is used when offered,
 * required on demand, and a certificate that does not verify is a permanent failure;
 * nothing listening and a server that never answers are transient; STARTTLS required but not
 * offered, and a channel without recipients, are permanent; several threads sending at once
 * each deliver. No Rampart server is needed. The
 * sinks die with the test (SIGTERM, and PR_SET_PDEATHSIG should the test crash). */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "mailer.h"
#include "rampart/mem.h"

#define PYTHON    "/usr/bin/python3"
#define USER      "alice"
#define PASSWORD  "s3cret-Pa55"
#define WRONG     "wr0ng-Pa55word"
#define N_TESTS   9
#define N_THREADS 8

struct sink {
    const char *name;
    pid_t pid;
    int port;
    char out[300];
};

static char tmpdir[] = "/tmp/it_mailer_smtp.XXXXXX";
static char script[1024];
static struct sink plain = {.name = "plain"}, authed = {.name = "auth"}, flaky = {.name = "flaky"},
                   tls = {.name = "tls"};
static char cert[300], key[300];
static int passed;

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The sink lives next to this file: tests/integration/alerts/smtp_sink.py. */
static int find_script(void)
{
    const char *me = __FILE__, *slash = strrchr(me, '/');
    if (me[0] != '/' || !slash) {
        fprintf(stderr, "cannot locate smtp_sink.py: __FILE__ (%s) is not absolute\n", me);
        return -1;
    }
    snprintf(script, sizeof(script), "%.*s/alerts/smtp_sink.py", (int)(slash - me), me);
    if (access(script, R_OK) != 0) {
        fprintf(stderr, "cannot read %s\n", script);
        return -1;
    }
    return 0;
}

/* Start a sink with up to 6 more arguments (NULL-terminated) and wait for its "listening on
 * PORT". */
static int sink_start(struct sink *s, ...)
{
    const char *extra[7] = {NULL};
    va_list ap;
    va_start(ap, s);
    for (int i = 0; i < 6 && (extra[i] = va_arg(ap, const char *)) != NULL; i++)
        ;
    va_end(ap);
    int pfd[2];
    snprintf(s->out, sizeof(s->out), "%s/%s.jsonl", tmpdir, s->name);
    if (pipe(pfd) != 0)
        return -1;
    pid_t parent = getpid();
    s->pid = fork();
    if (s->pid < 0)
        return -1;
    if (s->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* never outlive the test */
        if (getppid() != parent)
            _exit(1);
        dup2(pfd[1], STDOUT_FILENO);
        close(pfd[0]);
        close(pfd[1]);
        char *argv[13] = {PYTHON, script, "--port", "0", "--out", s->out};
        for (int i = 0; i < 6; i++)
            argv[6 + i] = (char *)extra[i];
        execv(PYTHON, argv);
        _exit(127);
    }
    close(pfd[1]);
    char line[128];
    size_t n = 0;
    long long until = mono_ms() + 15000;
    while (n < sizeof(line) - 1 && !memchr(line, '\n', n) && mono_ms() < until) {
        struct pollfd p = {.fd = pfd[0], .events = POLLIN};
        if (poll(&p, 1, 200) <= 0)
            continue;
        ssize_t r = read(pfd[0], line + n, sizeof(line) - 1 - n);
        if (r <= 0)
            break; /* the sink exited */
        n += (size_t)r;
    }
    close(pfd[0]);
    line[n] = '\0';
    if (sscanf(line, "listening on %d", &s->port) != 1 || s->port <= 0) {
        fprintf(stderr, "%s did not start (got \"%s\"); is python3-aiosmtpd installed?\n", script,
                line);
        return -1;
    }
    fprintf(stderr, "smtp sink %s: pid %d, port %d, messages in %s\n", s->name, (int)s->pid,
            s->port, s->out);
    return 0;
}

static void sink_stop(struct sink *s)
{
    if (s->pid <= 0)
        return;
    kill(s->pid, SIGTERM);
    int status = 0;
    long long until = mono_ms() + 5000;
    while (waitpid(s->pid, &status, WNOHANG) == 0) {
        if (mono_ms() > until) {
            fprintf(stderr, "smtp sink %s ignored SIGTERM; killing it\n", s->name);
            kill(s->pid, SIGKILL);
            waitpid(s->pid, &status, 0);
            break;
        }
        usleep(20000);
    }
    s->pid = 0;
}

static int setup(void **state)
{
    if (!mkdtemp(tmpdir) || find_script() != 0)
        return -1;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return -1;
    /* a self-signed certificate for 127.0.0.1, for the STARTTLS sink */
    snprintf(cert, sizeof(cert), "%s/cert.pem", tmpdir);
    snprintf(key, sizeof(key), "%s/key.pem", tmpdir);
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
             "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout %s -out %s "
             "2>/dev/null",
             key, cert);
    if (system(cmd) != 0) {
        fprintf(stderr, "openssl could not make a test certificate: %s\n", cmd);
        return -1;
    }
    if (sink_start(&plain, NULL) != 0 || sink_start(&authed, "--auth", USER ":" PASSWORD, NULL) ||
        sink_start(&flaky, "--fail-first", "1", NULL) != 0 ||
        sink_start(&tls, "--auth", USER ":" PASSWORD, "--tls-cert", cert, "--tls-key", key, NULL) !=
            0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    sink_stop(&plain);
    sink_stop(&authed);
    sink_stop(&flaky);
    sink_stop(&tls);
    curl_global_cleanup();
    if (passed == N_TESTS) {
        unlink(plain.out);
        unlink(authed.out);
        unlink(flaky.out);
        unlink(tls.out);
        unlink(cert);
        unlink(key);
        rmdir(tmpdir);
    } else {
        fprintf(stderr, "kept the received messages in %s\n", tmpdir);
    }
    return 0;
}

/* ---- helpers ----------------------------------------------------------------------------- */

static struct mail_smtp smtp_for(int port, char *url, size_t cap)
{
    snprintf(url, cap, "smtp://127.0.0.1:%d", port);
    struct mail_smtp s = {
        .url = url,
        .tls = "auto",
        .verify_tls = 1,
        .user = "",
        .password = "",
        .from = "Rampart Test <alerts@example.com>",
        .timeout_ms = 5000,
    };
    return s;
}

static struct rp_alert_msg opened(const char *notification_id)
{
    struct rp_alert_msg m = {
        .kind = "opened",
        .transition_id = "7c1e0c2a-1111-4a5b-9c3d-000000000001",
        .notification_id = notification_id,
        .dedup_key = "rampart-5a4b3c2d-3333-4e5f-a0b1-000000000003",
        .project_slug = "shop",
        .project_name = "Shop",
        .test_name = "checkout",
        .location = "eu-west",
        .rule_name = "Production",
        .incident_id = "5a4b3c2d-3333-4e5f-a0b1-000000000003",
        .failing_since = "2026-11-23T22:35:00Z",
        .occurred_at = "2026-11-23T22:40:00Z",
        .failure = "status: expected 200, got 503",
        .run_url = "https://rampart.example.com/runs/3f405162-6666-4c7d-8e9f-000000000006",
        .test_url = "https://rampart.example.com/tests/2e3f4051-5555-4b6c-9d0e-000000000005",
    };
    return m;
}

static void send_once(const struct mail_smtp *s, const struct rp_alert_msg *m,
                      struct rp_alert_outcome *out)
{
    bson_t *cfg = BCON_NEW("to", "[", "ops@example.com", "]", "cc", "[", "dev@example.com", "]");
    struct rp_alert_channel ch = {.id = "c1", .name = "ops", .kind = "email", .config = cfg};
    memset(out, 0x5a, sizeof(*out)); /* mail_send must fill everything */
    mail_send((void *)s, m, &ch, out);
    fprintf(stderr, "  outcome: ok=%d permanent=%d detail=\"%s\"\n", out->ok, out->permanent,
            out->detail);
    assert_non_null(memchr(out->detail, '\0', sizeof(out->detail)));
    bson_destroy(cfg);
}

/* The JSON lines the sink wrote so far (caller frees each and the array); *n their number. */
static char **read_lines(const char *path, size_t *n)
{
    *n = 0;
    char **v = NULL;
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL; /* nothing received yet */
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) > 0) {
        v = rp_xrealloc(v, (*n + 1) * sizeof(*v));
        v[(*n)++] = rp_xstrndup(line, (size_t)len);
    }
    free(line);
    fclose(f);
    return v;
}

static size_t count_lines(const char *path)
{
    size_t n;
    char **v = read_lines(path, &n);
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
    return n;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Quoted-printable decoded, leniently (the boundary lines pass as they are). Caller frees. */
static char *qp_decode(const char *s)
{
    char *out = rp_xmalloc(strlen(s) + 1), *o = out;
    while (*s) {
        if (s[0] == '=' && s[1] == '\r' && s[2] == '\n') {
            s += 3;
        } else if (s[0] == '=' && hexval(s[1]) >= 0 && hexval(s[2]) >= 0) {
            *o++ = (char)(hexval(s[1]) * 16 + hexval(s[2]));
            s += 3;
        } else {
            *o++ = *s++;
        }
    }
    *o = '\0';
    return out;
}

static void assert_contains(const char *hay, const char *needle)
{
    if (!strstr(hay, needle))
        fail_msg("\"%s\" not found in:\n%s", needle, hay);
}

/* ---- tests ------------------------------------------------------------------------------- */

static void test_opened_two_recipients(void **state)
{
    char url[64];
    struct mail_smtp s = smtp_for(plain.port, url, sizeof(url));
    struct rp_alert_msg m = opened("9f0b6a52-2222-4c6d-8e7f-000000000002");
    struct rp_alert_outcome out;
    send_once(&s, &m, &out);
    assert_int_equal(out.ok, 1);
    assert_int_equal(out.permanent, 0);
    assert_true(strncmp(out.detail, "SMTP 250 accepted for 2 recipients", 34) == 0);
    assert_contains(out.detail, "OK: queued"); /* the server's own words */

    size_t n;
    char **lines = read_lines(plain.out, &n);
    assert_int_equal(n, 1);
    bson_error_t je;
    bson_t *rec = bson_new_from_json((const uint8_t *)lines[0], -1, &je);
    if (!rec)
        fail_msg("the sink wrote bad JSON: %s", je.message);
    bson_iter_t it, arr;
    assert_true(bson_iter_init_find(&it, rec, "mail_from") && BSON_ITER_HOLDS_UTF8(&it));
    assert_string_equal(bson_iter_utf8(&it, NULL), "alerts@example.com");
    assert_true(bson_iter_init_find(&it, rec, "rcpt_tos") && bson_iter_recurse(&it, &arr));
    assert_true(bson_iter_next(&arr));
    assert_string_equal(bson_iter_utf8(&arr, NULL), "ops@example.com");
    assert_true(bson_iter_next(&arr));
    assert_string_equal(bson_iter_utf8(&arr, NULL), "dev@example.com");
    assert_false(bson_iter_next(&arr));
    assert_true(bson_iter_init_find(&it, rec, "received_at") && BSON_ITER_HOLDS_UTF8(&it));
    assert_true(bson_iter_init_find(&it, rec, "data") && BSON_ITER_HOLDS_UTF8(&it));
    const char *data = bson_iter_utf8(&it, NULL);

    const char *body = strstr(data, "\r\n\r\n");
    assert_non_null(body);
    char *headers = rp_xstrndup(data, (size_t)(body - data) + 2);
    assert_true(strncmp(headers, "From: Rampart Test <alerts@example.com>\r\n", 41) == 0);
    assert_contains(headers, "\r\nTo: ops@example.com\r\n");
    assert_contains(headers, "\r\nCc: dev@example.com\r\n");
    assert_contains(headers, "\r\nSubject: [Rampart] FAILING: checkout (Shop, eu-west)\r\n");
    assert_contains(headers, "\r\nMessage-ID: <9f0b6a52-2222-4c6d-8e7f-000000000002@rampart>\r\n");
    assert_contains(headers,
                    "\r\nX-Rampart-Notification: 9f0b6a52-2222-4c6d-8e7f-000000000002\r\n");
    assert_contains(headers, "\r\nX-Rampart-Transition: 7c1e0c2a-1111-4a5b-9c3d-000000000001\r\n");
    assert_contains(headers, "\r\nX-Rampart-Incident: 5a4b3c2d-3333-4e5f-a0b1-000000000003\r\n");
    assert_contains(headers, "\r\nMIME-Version: 1.0\r\n");
    assert_contains(headers, "\r\nDate: ");
    assert_null(strstr(headers, "Bcc"));
    char *decoded = qp_decode(body);
    assert_contains(decoded, "Content-Type: text/plain; charset=utf-8");
    assert_contains(decoded, "Content-Type: text/html; charset=utf-8");
    assert_contains(decoded, "FAILING: checkout\r\n");
    assert_contains(decoded, "Failing since:   2026-11-23 22:35:00 UTC\r\n");
    assert_contains(decoded, "What failed:\r\n  status: expected 200, got 503\r\n");
    assert_contains(decoded, "View the run: https://rampart.example.com/runs/"
                             "3f405162-6666-4c7d-8e9f-000000000006\r\n");
    assert_contains(decoded, "<a href=\"https://rampart.example.com/runs/"
                             "3f405162-6666-4c7d-8e9f-000000000006\"");
    assert_contains(decoded, "--=_rampart_9f0b6a52-2222-4c6d-8e7f-000000000002--");
    free(decoded);
    free(headers);
    bson_destroy(rec);
    free(lines[0]);
    free(lines);
    passed++;
}

static void test_auth(void **state)
{
    char url[64];
    struct mail_smtp s = smtp_for(authed.port, url, sizeof(url));
    struct rp_alert_outcome out;
    struct rp_alert_msg m = opened("9f0b6a52-2222-4c6d-8e7f-0000000000a1");

    /* the right password: delivered */
    s.user = USER;
    s.password = PASSWORD;
    send_once(&s, &m, &out);
    assert_int_equal(out.ok, 1);
    assert_null(strstr(out.detail, PASSWORD));
    assert_int_equal(count_lines(authed.out), 1);

    /* a wrong one: 535, permanent, and the password is nowhere in the outcome */
    s.password = WRONG;
    m.notification_id = "9f0b6a52-2222-4c6d-8e7f-0000000000a2";
    send_once(&s, &m, &out);
    assert_int_equal(out.ok, 0);
    assert_int_equal(out.permanent, 1);
    assert_true(strncmp(out.detail, "SMTP 535 5.7.8 Authentication credentials invalid", 49) == 0);
    assert_null(strstr(out.detail, WRONG));
    assert_null(strstr(out.detail, PASSWORD));

    /* no credentials where the server requires them: 530, permanent */
    s.user = "";
    s.password = "";
    send_once(&s, &m, &out);
    assert_int_equal(out.ok, 0);
    assert_int_equal(out.permanent, 1);
    assert_true(strncmp(out.detail, "SMTP 530 ", 9) == 0);
    assert_int_equal(count_lines(authed.out), 1);
    passed++;
}

static void test_retry_after_451(void **state)
{
    char url[64];
    struct mail_smtp s = smtp_for(flaky.port, url, sizeof(url));
    struct rp_alert_msg m = opened("9f0b6a52-2222-4c6d-8e7f-0000000000b1");
    struct rp_alert_outcome out;
    send_once(&s, &m, &out);
    assert_int_equal(out.ok, 0);
    assert_int_equal(out.permanent, 0);
    assert_string_equal(out.detail, "SMTP 451 4.3.0 try again later");
    assert_int_equal(count_lines(flaky.out), 0);

    send_once(&s, &m, &out); /* the engine's retry */
    assert_int_equal(out.ok, 1);
    assert_int_equal(count_lines(flaky.out), 1);
    passed++;
}

/* A port with nothing listening: connection refused, worth a retry. */
static void test_nothing_listening(void **state)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    close(fd); /* the port is free again, and nobody listens on it */
    char url[64];
    struct mail_smtp s = smtp_for(ntohs(a.sin_port), url, sizeof(url));
    struct rp_alert_msg m = opened("9f0b6a52-2222-4c6d-8e7f-0000000000c1");
    struct rp_alert_outcome out;
    send_once(&s, &m, &out);
    assert_int_equal(out.ok, 0);
    assert_int_equal(out.permanent, 0);
    assert_contains(out.detail, "onnect");
    passed++;
}

/* A server that accepts the connection and never greets: the send timeout applies. */
static void test_silent_server_times_out(void **state)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 4), 0); /* the kernel completes the handshake; no one answers */
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    char url[64];
    struct mail_smtp s = smtp_for(ntohs(a.sin_port), url, sizeof(url));
    s.timeout_ms = 500;
    struct rp_alert_msg m = opened("9f0b6a52-2222-4c6d-8e7f-0000000000d1");
    struct rp_alert_outcome out;
    long long t0 = mono_ms();
    send_once(&s, &m, &out);
    long long took = mono_ms() - t0;
    close(fd);
    assert_int_equal(out.ok, 0);
    assert_int_equal(out.permanent, 0);
    assert_contains(out.detail, "timed out");
    assert_true(took >= 400 && took < 3000);
    passed++;
}

/* STARTTLS required, the server does not offer it: a setting to fix, not a retry. */
static void test_starttls_required(void **state)
{
    char url[64];
    struct mail_smtp s = smtp_for(plain.port, url, sizeof(url));
    s.tls = "starttls";
    size_t before = count_lines(plain.out);
    struct rp_alert_msg m = opened("9f0b6a52-2222-4c6d-8e7f-0000000000e1");
    struct rp_alert_outcome out;
    send_once(&s, &m, &out);
    assert_int_equal(out.ok, 0);
    assert_int_equal(out.permanent, 1);
    assert_int_equal(count_lines(plain.out), before); /* nothing sent in the clear */
    passed++;
}

/* Whether the last message the sink received came over TLS (the sink's "tls" member). */
static int last_over_tls(const struct sink *k)
{
    size_t n;
    char **lines = read_lines(k->out, &n);
    assert_true(n > 0);
    bson_error_t je;
    bson_t *rec = bson_new_from_json((const uint8_t *)lines[n - 1], -1, &je);
    assert_non_null(rec);
    bson_iter_t it;
    assert_true(bson_iter_init_find(&it, rec, "tls") && BSON_ITER_HOLDS_BOOL(&it));
    int over_tls = bson_iter_bool(&it);
    bson_destroy(rec);
    for (size_t i = 0; i < n; i++)
        free(lines[i]);
    free(lines);
    return over_tls;
}

/* STARTTLS per RAMPART_SMTP_TLS, with AUTH inside it; a certificate that does not verify (this
 * one is self-signed) is permanent, and nothing goes out in the clear instead. */
static void test_starttls(void **state)
{
    char url[64];
    struct mail_smtp s = smtp_for(tls.port, url, sizeof(url));
    s.user = USER;
    s.password = PASSWORD;
    struct rp_alert_msg m = opened("9f0b6a52-2222-4c6d-8e7f-0000000000e2");
    struct rp_alert_outcome out;

    s.tls = "starttls";
    s.verify_tls = 0;
    send_once(&s, &m, &out);
    assert_int_equal(out.ok, 1);
    assert_int_equal(count_lines(tls.out), 1);
    assert_true(last_over_tls(&tls));

    s.tls = "auto"; /* offered, so used */
    send_once(&s, &m, &out);
    assert_int_equal(out.ok, 1);
    assert_int_equal(count_lines(tls.out), 2);
    assert_true(last_over_tls(&tls));

    s.tls = "none";
    send_once(&s, &m, &out);
    assert_int_equal(out.ok, 1);
    assert_int_equal(count_lines(tls.out), 3);
    assert_false(last_over_tls(&tls));

    s.tls = "starttls";
    s.verify_tls = 1;
    send_once(&s, &m, &out);
    assert_int_equal(out.ok, 0);
    assert_int_equal(out.permanent, 1);
    assert_int_equal(count_lines(tls.out), 3);
    s.tls = "auto"; /* "auto" does not fall back to plain text when the certificate fails */
    send_once(&s, &m, &out);
    assert_int_equal(out.ok, 0);
    assert_int_equal(out.permanent, 1);
    assert_int_equal(count_lines(tls.out), 3);
    passed++;
}

struct sender {
    const struct mail_smtp *smtp;
    char id[48];
    struct rp_alert_outcome out[3];
};

static void *send_thread(void *ud)
{
    struct sender *t = ud;
    bson_t *cfg = BCON_NEW("to", "[", "ops@example.com", "]");
    struct rp_alert_channel ch = {.id = "c3", .name = "ops", .kind = "email", .config = cfg};
    struct rp_alert_msg m = opened(t->id);
    for (int i = 0; i < 3; i++)
        mail_send((void *)t->smtp, &m, &ch, &t->out[i]);
    bson_destroy(cfg);
    return NULL;
}

/* The engine calls the sender from several threads at once. */
static void test_concurrent_sends(void **state)
{
    char url[64];
    struct mail_smtp s = smtp_for(plain.port, url, sizeof(url));
    size_t before = count_lines(plain.out);
    struct sender t[N_THREADS];
    pthread_t th[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) {
        t[i].smtp = &s;
        snprintf(t[i].id, sizeof(t[i].id), "9f0b6a52-2222-4c6d-8e7f-0000000001%02d", i);
        assert_int_equal(pthread_create(&th[i], NULL, send_thread, &t[i]), 0);
    }
    for (int i = 0; i < N_THREADS; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    for (int i = 0; i < N_THREADS; i++)
        for (int j = 0; j < 3; j++)
            if (!t[i].out[j].ok)
                fail_msg("thread %d, send %d: %s", i, j, t[i].out[j].detail);
    assert_int_equal(count_lines(plain.out), before + 3 * N_THREADS);
    passed++;
}

/* A channel without recipients, bad settings: permanent, and the server never hears of it. */
static void test_bad_channel_and_settings(void **state)
{
    char url[64];
    struct mail_smtp s = smtp_for(plain.port, url, sizeof(url));
    size_t before = count_lines(plain.out);
    struct rp_alert_msg m = opened("9f0b6a52-2222-4c6d-8e7f-0000000000f1");
    bson_t *cfg = BCON_NEW("cc", "[", "dev@example.com", "]");
    struct rp_alert_channel ch = {.id = "c2", .name = "broken", .kind = "email", .config = cfg};
    struct rp_alert_outcome out;
    mail_send(&s, &m, &ch, &out);
    assert_int_equal(out.ok, 0);
    assert_int_equal(out.permanent, 1);
    assert_contains(out.detail, "no \"to\" addresses");
    bson_destroy(cfg);
    assert_int_equal(count_lines(plain.out), before);

    struct rp_error e;
    assert_int_equal(mail_smtp_check(&s, &e), RP_OK);
    s.url = "smtp://bob:" PASSWORD "@127.0.0.1:25";
    assert_int_equal(mail_smtp_check(&s, &e), RP_EINVAL);
    assert_null(strstr(e.msg, PASSWORD));
    s.url = "http://127.0.0.1:25";
    assert_int_equal(mail_smtp_check(&s, &e), RP_EINVAL);
    s.url = url;
    s.from = "no address";
    assert_int_equal(mail_smtp_check(&s, &e), RP_EINVAL);
    assert_contains(e.msg, "RAMPART_SMTP_FROM");
    passed++;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_opened_two_recipients),
        cmocka_unit_test(test_auth),
        cmocka_unit_test(test_retry_after_451),
        cmocka_unit_test(test_nothing_listening),
        cmocka_unit_test(test_silent_server_times_out),
        cmocka_unit_test(test_starttls_required),
        cmocka_unit_test(test_starttls),
        cmocka_unit_test(test_concurrent_sends),
        cmocka_unit_test(test_bad_channel_and_settings),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
