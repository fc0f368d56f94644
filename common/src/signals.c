/* Signal handling for the drain: the handler only sets an atomic flag, records the signal and
 * writes one byte into a non-blocking self-pipe, all async-signal-safe. A second signal writes
 * a fixed JSON line with write(2) and calls _exit, because a stuck drain must still be
 * stoppable from the keyboard or by the orchestrator. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "rampart/signals.h"

static atomic_int draining;
static atomic_int drain_signo;
static int pipe_fds[2] = {-1, -1};
static int installed;

static void poke(void)
{
    if (pipe_fds[1] >= 0) {
        ssize_t n = write(pipe_fds[1], "x", 1);
        (void)n; /* full pipe: already readable, nothing lost */
    }
}

static void on_signal(int signo)
{
    int saved = errno;
    if (atomic_exchange(&draining, 1)) {
        static const char msg[] =
            "{\"level\":\"fatal\",\"msg\":\"second termination signal: exiting now\"}\n";
        ssize_t n = write(STDERR_FILENO, msg, sizeof(msg) - 1);
        (void)n;
        _exit(128 + signo);
    }
    atomic_store(&drain_signo, signo);
    poke();
    errno = saved;
}

static int set_flags(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    int fdfl = fcntl(fd, F_GETFD);
    if (fl < 0 || fdfl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
        fcntl(fd, F_SETFD, fdfl | FD_CLOEXEC) < 0)
        return -1;
    return 0;
}

int rp_signals_install(struct rp_error *err)
{
    int rc = RP_EIO;
    if (installed)
        return RP_OK;
    if (pipe(pipe_fds) != 0) {
        pipe_fds[0] = pipe_fds[1] = -1;
        rc = rp_error_set(err, RP_EIO, "signals: pipe: %s", strerror(errno));
        goto out;
    }
    if (set_flags(pipe_fds[0]) != 0 || set_flags(pipe_fds[1]) != 0) {
        rc = rp_error_set(err, RP_EIO, "signals: fcntl: %s", strerror(errno));
        goto out;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigfillset(&sa.sa_mask); /* one handler at a time: the exchange decides first vs second */
    struct sigaction ign;
    memset(&ign, 0, sizeof(ign));
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0 ||
        sigaction(SIGPIPE, &ign, NULL) != 0) {
        rc = rp_error_set(err, RP_EIO, "signals: sigaction: %s", strerror(errno));
        goto out;
    }
    installed = 1;
    if (atomic_load(&draining))
        poke(); /* drain requested before install: keep the fd consistent with the flag */
    rc = RP_OK;
out:
    if (rc != RP_OK)
        rp_signals_uninstall();
    return rc;
}

void rp_signals_uninstall(void)
{
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    for (int i = 0; i < 2; i++) {
        if (pipe_fds[i] >= 0)
            close(pipe_fds[i]);
        pipe_fds[i] = -1;
    }
    atomic_store(&draining, 0);
    atomic_store(&drain_signo, 0);
    installed = 0;
}

int rp_signals_draining(void)
{
    return atomic_load(&draining);
}

int rp_signals_drain_signal(void)
{
    return atomic_load(&drain_signo);
}

int rp_signals_fd(void)
{
    return pipe_fds[0];
}

void rp_signals_request_drain(void)
{
    if (!atomic_exchange(&draining, 1))
        poke();
}

int rp_signals_wait(long timeout_ms)
{
    if (rp_signals_draining())
        return 1;
    struct pollfd p = {.fd = pipe_fds[0], .events = POLLIN};
    int timeout = timeout_ms < 0 ? -1 : timeout_ms > 86400000L ? 86400000 : (int)timeout_ms;
    if (pipe_fds[0] < 0) {
        poll(NULL, 0, timeout);
        return rp_signals_draining();
    }
    while (poll(&p, 1, timeout) < 0 && errno == EINTR)
        ; /* a signal can only shorten the wait, which the caller tolerates */
    return rp_signals_draining();
}
