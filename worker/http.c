/* libcurl multi plumbing for the engine: one CURLM per engine, easy handles recycled through a
 * free list (curl_easy_reset keeps nothing request-specific, while connections and the DNS
 * cache live in the multi handle, so they are shared across runs and steps). Response bodies
 * are kept up to a cap and counted beyond it; headers are capped in count and bytes. A libcurl
 * failure becomes one short message a person understands ("connection refused (host:80)"). */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "engine_int.h"
#include "rampart/mem.h"

/* An easy handle and its error buffer, which only a running transfer needs. */
struct wrk_handle {
    CURL *easy;
    char errbuf[CURL_ERROR_SIZE];
};

struct wrk_http {
    CURLM *multi;
    struct wrk_http_opts opts;
    struct wrk_handle **free_easy; /* handles ready for reuse */
    size_t n_free, free_alloc;
    size_t active;
    uint64_t connections;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc;

static void global_init(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int wrk_http_new(const struct wrk_http_opts *opts, struct wrk_http **out, struct rp_error *err)
{
    pthread_once(&global_once, global_init);
    if (global_rc != CURLE_OK)
        return rp_error_set(err, RP_EIO, "curl_global_init: %s", curl_easy_strerror(global_rc));
    CURLM *m = curl_multi_init();
    if (!m)
        return rp_error_set(err, RP_EIO, "curl_multi_init failed");
    curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS, opts->max_total_connections);
    curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, opts->max_host_connections);
    /* Keep as many idle connections as there may be transfers, so that a burst of runs to one
     * host reuses them instead of closing and reopening. */
    if (opts->max_total_connections > 0)
        curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, opts->max_total_connections);
    struct wrk_http *h = rp_xcalloc(1, sizeof(*h));
    h->multi = m;
    h->opts = *opts;
    *out = h;
    return RP_OK;
}

void wrk_http_free(struct wrk_http *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->n_free; i++) {
        curl_easy_cleanup(h->free_easy[i]->easy);
        free(h->free_easy[i]);
    }
    free(h->free_easy);
    curl_multi_cleanup(h->multi);
    free(h);
}

size_t wrk_http_active(const struct wrk_http *h)
{
    return h->active;
}

uint64_t wrk_http_connections(const struct wrk_http *h)
{
    return h->connections;
}

static void clear_headers(struct wrk_xfer *x)
{
    x->n_headers = 0;
    x->hdr_len = 0;
}

void wrk_xfer_cleanup(struct wrk_xfer *x)
{
    if (!x)
        return;
    free(x->url);
    curl_slist_free_all(x->req_headers);
    free(x->req_body);
    free(x->error);
    free(x->headers);
    free(x->hdr_text);
    free(x->resp_body);
    memset(x, 0, sizeof(*x));
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    struct wrk_xfer *x = ud;
    size_t n = size * nmemb, cap = x->http->opts.body_cap;
    x->body_size += n;
    size_t keep = x->body_len < cap ? cap - x->body_len : 0;
    if (keep > n)
        keep = n;
    if (keep < n)
        x->body_truncated = 1;
    if (keep) {
        if (x->body_len + keep + 1 > x->body_alloc) {
            size_t want = x->body_alloc ? x->body_alloc * 2 : 1024;
            while (want < x->body_len + keep + 1)
                want *= 2;
            if (want > cap + 1)
                want = cap + 1;
            x->resp_body = rp_xrealloc(x->resp_body, want);
            x->body_alloc = want;
        }
        memcpy(x->resp_body + x->body_len, data, keep);
        x->body_len += keep;
        x->resp_body[x->body_len] = '\0';
    }
    return n; /* never abort: the rest is counted, not stored */
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ud)
{
    struct wrk_xfer *x = ud;
    size_t n = size * nmemb, len = n;
    /* A status line starts a new response (a redirect or 100 Continue): keep the last one's. */
    if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        clear_headers(x);
        return n;
    }
    while (len && (data[len - 1] == '\n' || data[len - 1] == '\r'))
        len--;
    const char *colon = memchr(data, ':', len);
    if (!len || !colon || colon == data)
        return n;
    if (x->n_headers >= WRK_MAX_RESP_HEADERS || x->hdr_len + len + 2 > WRK_MAX_RESP_HEADER_LEN)
        return n;
    size_t nlen = (size_t)(colon - data);
    const char *v = colon + 1, *end = data + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    size_t vlen = (size_t)(end - v);
    if (x->n_headers == x->headers_alloc) {
        x->headers_alloc = x->headers_alloc ? x->headers_alloc * 2 : 16;
        x->headers = rp_xrealloc(x->headers, x->headers_alloc * sizeof(*x->headers));
    }
    if (x->hdr_len + nlen + vlen + 2 > x->hdr_alloc) {
        size_t want = x->hdr_alloc ? x->hdr_alloc * 2 : 512;
        while (want < x->hdr_len + nlen + vlen + 2)
            want *= 2;
        x->hdr_text = rp_xrealloc(x->hdr_text, want);
        x->hdr_alloc = want;
    }
    /* store offsets now (the text may move as it grows); wrk_http fixes the pointers at the end */
    char *mem = x->hdr_text + x->hdr_len;
    memcpy(mem, data, nlen);
    mem[nlen] = '\0';
    memcpy(mem + nlen + 1, v, vlen);
    mem[nlen + 1 + vlen] = '\0';
    x->headers[x->n_headers].name = (char *)(uintptr_t)x->hdr_len;
    x->headers[x->n_headers].value = (char *)(uintptr_t)(x->hdr_len + nlen + 1);
    x->n_headers++;
    x->hdr_len += nlen + vlen + 2;
    return n;
}

int wrk_http_start(struct wrk_http *h, struct wrk_xfer *x)
{
    struct wrk_handle *hd = h->n_free ? h->free_easy[--h->n_free] : NULL;
    if (!hd) {
        hd = rp_xcalloc(1, sizeof(*hd));
        hd->easy = curl_easy_init();
        if (!hd->easy) {
            free(hd);
            x->rc = RP_EIO;
            x->error = rp_xstrdup("curl_easy_init failed");
            return RP_EIO;
        }
    }
    CURL *c = hd->easy;
    x->handle = hd;
    x->http = h;
    hd->errbuf[0] = '\0';
    curl_easy_setopt(c, CURLOPT_PRIVATE, x);
    curl_easy_setopt(c, CURLOPT_URL, x->url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, hd->errbuf);
    /* A test must never make the worker read its own files (file://) or speak other protocols. */
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, x->timeout_ms > 0 ? x->timeout_ms : 30000L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, x->follow_redirects > 0 ? 1L : 0L);
    curl_easy_setopt(
        c, CURLOPT_MAXREDIRS,
        (long)(x->follow_redirects < WRK_MAX_REDIRECTS ? x->follow_redirects : WRK_MAX_REDIRECTS));
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, x->verify_tls ? 1L : 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, x->verify_tls ? 2L : 0L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, h->opts.user_agent);
    /* Small receive buffer: most checked responses are small, and at 1,000 concurrent runs
     * libcurl's 16 KiB default per handle is most of the memory used. */
    curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 4096L);
    if (x->req_headers)
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, x->req_headers);
    const char *m = x->method ? x->method : "GET";
    if (strcmp(m, "HEAD") == 0) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else {
        if (x->req_body) {
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->req_body_len);
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, x->req_body);
        }
        if (x->req_body ? strcmp(m, "POST") != 0 : strcmp(m, "GET") != 0)
            curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, m);
    }
    CURLMcode mc = curl_multi_add_handle(h->multi, c);
    if (mc != CURLM_OK) {
        curl_easy_cleanup(c);
        free(hd);
        x->handle = NULL;
        x->rc = RP_EIO;
        x->error = rp_xasprintf("could not start the request: %s", curl_multi_strerror(mc));
        return RP_EIO;
    }
    h->active++;
    return RP_OK;
}

static void release(struct wrk_http *h, struct wrk_xfer *x)
{
    curl_multi_remove_handle(h->multi, x->handle->easy);
    curl_easy_reset(x->handle->easy);
    if (h->n_free == h->free_alloc) {
        h->free_alloc = h->free_alloc ? h->free_alloc * 2 : 64;
        h->free_easy = rp_xrealloc(h->free_easy, h->free_alloc * sizeof(*h->free_easy));
    }
    h->free_easy[h->n_free++] = x->handle;
    x->handle = NULL;
    h->active--;
}

void wrk_http_cancel(struct wrk_http *h, struct wrk_xfer *x)
{
    if (x && x->handle)
        release(h, x);
}

static double ms(CURL *c, CURLINFO info)
{
    curl_off_t us = 0;
    if (curl_easy_getinfo(c, info, &us) != CURLE_OK)
        return 0;
    return (double)us / 1000.0;
}

/* "host:port" of the request's URL, for messages; a new string. */
static char *host_port(const char *url, int with_port)
{
    CURLU *u = curl_url();
    char *host = NULL, *port = NULL, *out;
    if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK)
        (void)curl_url_get(u, CURLUPART_HOST, &host, 0);
    if (with_port && host)
        (void)curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT);
    if (host && port)
        out = rp_xasprintf("%s:%s", host, port);
    else
        out = rp_xstrdup(host ? host : "(no host)");
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return out;
}

static void set_error(struct wrk_xfer *x, CURLcode rc)
{
    const char *eb = x->handle->errbuf, *detail = eb[0] ? eb : curl_easy_strerror(rc);
    char *hp;
    long os_errno = 0;
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
        hp = host_port(x->url, 0);
        x->rc = RP_EAGAIN;
        x->error = rp_xasprintf("could not resolve host %s", hp);
        free(hp);
        break;
    case CURLE_COULDNT_CONNECT:
        hp = host_port(x->url, 1);
        (void)curl_easy_getinfo(x->handle->easy, CURLINFO_OS_ERRNO, &os_errno);
        x->rc = RP_EAGAIN;
        if (os_errno == ECONNREFUSED)
            x->error = rp_xasprintf("connection refused (%s)", hp);
        else
            x->error = rp_xasprintf("could not connect to %s: %s", hp,
                                    os_errno ? strerror((int)os_errno) : detail);
        free(hp);
        break;
    case CURLE_OPERATION_TIMEDOUT:
        x->rc = RP_ETIMEDOUT;
        x->error =
            rp_xasprintf("timed out after %ld ms", x->timeout_ms > 0 ? x->timeout_ms : 30000L);
        break;
    case CURLE_TOO_MANY_REDIRECTS:
        x->rc = RP_EIO;
        x->error = rp_xasprintf("too many redirects (more than %d)", x->follow_redirects);
        break;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
        x->rc = RP_EIO;
        x->error = rp_xasprintf("TLS: %s", detail);
        break;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
        x->rc = RP_EINVAL;
        x->error = rp_xasprintf("bad URL: %s", detail);
        break;
    default:
        x->rc = RP_EIO;
        x->error = rp_xasprintf("request failed: %s", detail);
    }
}

static void finish(struct wrk_http *h, CURL *c, CURLcode rc, wrk_xfer_done_fn done, void *ud)
{
    struct wrk_xfer *x = NULL;
    (void)curl_easy_getinfo(c, CURLINFO_PRIVATE, (char **)&x);
    long connects = 0;
    (void)curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &connects);
    x->num_connects = connects;
    h->connections += (uint64_t)connects;
    x->timings.dns = ms(c, CURLINFO_NAMELOOKUP_TIME_T);
    x->timings.connect = ms(c, CURLINFO_CONNECT_TIME_T);
    x->timings.tls = ms(c, CURLINFO_APPCONNECT_TIME_T);
    x->timings.first_byte = ms(c, CURLINFO_STARTTRANSFER_TIME_T);
    x->timings.total = ms(c, CURLINFO_TOTAL_TIME_T);
    for (size_t i = 0; i < x->n_headers; i++) { /* offsets -> pointers, the text is final */
        x->headers[i].name = x->hdr_text + (uintptr_t)x->headers[i].name;
        x->headers[i].value = x->hdr_text + (uintptr_t)x->headers[i].value;
    }
    if (rc == CURLE_OK) {
        (void)curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &x->status);
        x->rc = RP_OK;
    } else {
        set_error(x, rc);
    }
    release(h, x);
    done(ud, x);
}

void wrk_http_step(struct wrk_http *h, long timeout_ms, wrk_xfer_done_fn done, void *ud)
{
    int running = 0, left = 0;
    if (timeout_ms > 0)
        curl_multi_poll(h->multi, NULL, 0, (int)timeout_ms, NULL);
    curl_multi_perform(h->multi, &running);
    CURLMsg *msg;
    while ((msg = curl_multi_info_read(h->multi, &left)) != NULL)
        if (msg->msg == CURLMSG_DONE)
            finish(h, msg->easy_handle, msg->data.result, done, ud);
}
