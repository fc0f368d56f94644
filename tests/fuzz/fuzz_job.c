/* libFuzzer target for job messages (common/src/job.c): every input is decoded; a decoded job is
 * encoded again and must decode to the same runs. A crash, leak or sanitizer report fails. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rampart/job.h"
#include "rampart/mem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rp_job *job = NULL;
    if (rp_job_decode(data, size, &job, NULL) != RP_OK)
        return 0;
    struct rp_buf b;
    rp_buf_init(&b, 0);
    if (rp_job_encode(job->runs, job->n, &b) != RP_OK)
        abort();
    struct rp_job *again = NULL;
    if (rp_job_decode(b.data, b.len, &again, NULL) != RP_OK || again->n != job->n)
        abort();
    for (size_t i = 0; i < job->n; i++) {
        if (strcmp(job->runs[i].run_id, again->runs[i].run_id) != 0 ||
            strcmp(job->runs[i].definition, again->runs[i].definition) != 0 ||
            job->runs[i].fire_time_ms != again->runs[i].fire_time_ms)
            abort();
        const char *o1 = job->runs[i].overrides, *o2 = again->runs[i].overrides;
        if ((o1 == NULL) != (o2 == NULL) || (o1 && strcmp(o1, o2) != 0))
            abort();
    }
    rp_job_free(again);
    rp_job_free(job);
    rp_buf_cleanup(&b);
    return 0;
}
