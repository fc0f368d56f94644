/* Graceful shutdown: the first SIGTERM or SIGINT starts a drain (a flag, and a descriptor that
 * becomes readable so that poll loops wake up), a second one exits at once with 128 + signal
 * number. SIGPIPE is ignored, so a peer closing a socket is an error return, not a death.
 * State: running -> draining (first signal or rp_signals_request_drain) -> exit (second
 * signal, or the service returning from main after its drain). */
#ifndef RAMPART_SIGNALS_H
#define RAMPART_SIGNALS_H

#include "rampart/error.h"

/* Install the handlers (SA_RESTART, so library calls are not interrupted) and the self-pipe.
 * Call once from the main thread before starting other threads. Returns RP_OK, or RP_EIO with
 * `err` filled when a pipe or handler cannot be set up. */
int rp_signals_install(struct rp_error *err) RP_MUST_CHECK;

/* Restore the default dispositions and close the pipe (tests, end of main). The drain flag
 * is cleared. Safe to call when not installed. */
void rp_signals_uninstall(void);

/* True (non-zero) once a drain was requested. Async-signal-safe, callable from any thread. */
int rp_signals_draining(void);

/* The signal number that started the drain (SIGTERM, SIGINT), 0 if requested by code or not
 * draining. */
int rp_signals_drain_signal(void);

/* A descriptor that becomes readable when the drain starts and stays readable (never read it:
 * it is level-triggered on purpose, so every loop polling it sees the drain). -1 when not
 * installed. Owned by this module. */
int rp_signals_fd(void);

/* Start the drain from code, as the first signal would (tests, an admin endpoint).
 * Async-signal-safe. */
void rp_signals_request_drain(void);

/* Sleep up to `timeout_ms` (negative: forever), waking early when the drain starts. Returns
 * non-zero if draining. For main loops that have nothing else to poll. */
int rp_signals_wait(long timeout_ms);

#endif
