/* The scheduler's pure timing decision (scheduler.h, sched_plan): which fire time a due
 * schedule runs now and when it is due next, with the catch-up policy of docs/pipeline.md —
 * late within the grace: run as scheduled; later: coalesce the missed fires into one run. */
#include "rampart/cron.h"
#include "scheduler.h"

/* Cron fires walked at most this many times to find the latest missed one (a minutely
 * expression after ~70 days down); past that the run takes the last fire reached. */
#define MAX_CRON_WALK 100000

int sched_plan(const struct sched_timing *t, int64_t due_ms, int64_t now_ms, int64_t grace_ms,
               int64_t *fire_ms, int64_t *next_ms)
{
    int64_t fire = due_ms;
    if (t->interval_ms > 0) {
        if (now_ms - due_ms > grace_ms)
            fire = due_ms + (now_ms - due_ms) / t->interval_ms * t->interval_ms;
        *fire_ms = fire;
        *next_ms = fire + t->interval_ms;
        return RP_OK;
    }
    /* A cron schedule whose next_run_at is not one of its fire times (just created or edited
     * with next_run_at = now): no run, it becomes due at its first real fire time. */
    int64_t next;
    int rc = rp_cron_next(t->cron, due_ms - 1, &next);
    if (rc != RP_OK)
        return rc;
    if (next != due_ms) {
        *fire_ms = -1;
        *next_ms = next;
        return RP_OK;
    }
    rc = rp_cron_next(t->cron, fire, &next);
    if (rc != RP_OK)
        return rc;
    if (now_ms - due_ms > grace_ms) {
        for (int i = 0; i < MAX_CRON_WALK && next <= now_ms; i++) {
            fire = next;
            rc = rp_cron_next(t->cron, fire, &next);
            if (rc != RP_OK)
                return rc;
        }
    }
    *fire_ms = fire;
    *next_ms = next;
    return RP_OK;
}
