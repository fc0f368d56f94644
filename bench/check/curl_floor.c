/* The cost of libcurl itself, for scripts/bench-check.sh: GET requests through one multi handle
 * with N easy handles kept busy (connections reused), no checks, no result documents, the body
 * thrown away. Whatever an engine built on libcurl does, it cannot beat this rate; the script
 * prints it next to wrk and rampart-worker. Usage: curl_floor URL REQUESTS CONCURRENCY */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <curl/curl.h>

static size_t discard(char *data, size_t size, size_t nmemb, void *ud)
{
    return size * nmemb;
}

static CURL *easy(const char *url)
{
    CURL *c = curl_easy_init();
    if (!c)
        abort();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    return c;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: curl_floor URL REQUESTS CONCURRENCY\n");
        return 2;
    }
    const char *url = argv[1];
    long total = atol(argv[2]), conc = atol(argv[3]), started = 0, done = 0, failed = 0;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURLM *m = curl_multi_init();
    curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS, conc);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (; started < conc && started < total; started++)
        curl_multi_add_handle(m, easy(url));
    while (done < total) {
        int running, left;
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        while ((msg = curl_multi_info_read(m, &left)) != NULL) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            CURL *c = msg->easy_handle;
            failed += msg->data.result != CURLE_OK;
            done++;
            curl_multi_remove_handle(m, c);
            if (started < total) { /* same handle again, as the engine reuses its handles */
                curl_multi_add_handle(m, c);
                started++;
            } else {
                curl_easy_cleanup(c);
            }
        }
        if (done < total)
            curl_multi_poll(m, NULL, 0, 1000, NULL);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("%ld requests (%ld failed) in %.2f s: %.0f requests/s\n", total, failed, secs,
           (double)total / secs);
    curl_multi_cleanup(m);
    curl_global_cleanup();
    return failed ? 1 : 0;
}
