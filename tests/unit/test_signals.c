/* Unit tests for the drain signals: SIGTERM sets the flag and makes the descriptor readable
 * (and keeps it readable for every poller), a second signal exits at once with 128 + signo,
 * SIGPIPE is ignored, and uninstall resets the state. */
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "rampart/signals.h"

static int readable(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN);
}

static void test_sigterm_drains(void **state)
{
    assert_int_equal(rp_signals_install(NULL), RP_OK);
    int fd = rp_signals_fd();
    assert_true(fd >= 0);
    assert_false(rp_signals_draining());
    assert_false(readable(fd, 0));
    assert_int_equal(rp_signals_wait(20), 0); /* times out, not draining */

    assert_int_equal(raise(SIGTERM), 0);
    assert_true(rp_signals_draining());
    assert_int_equal(rp_signals_drain_signal(), SIGTERM);
    assert_true(readable(fd, 1000));
    assert_true(readable(fd, 0)); /* level-triggered: still readable for the next poller */
    assert_int_equal(rp_signals_wait(-1), 1);

    rp_signals_uninstall();
    assert_false(rp_signals_draining());
    assert_int_equal(rp_signals_fd(), -1);
}

static void test_request_drain_and_sigpipe(void **state)
{
    assert_int_equal(rp_signals_install(NULL), RP_OK);
    assert_int_equal(raise(SIGPIPE), 0); /* ignored: we are still here */
    assert_false(rp_signals_draining());
    rp_signals_request_drain();
    rp_signals_request_drain(); /* from code, repeating is harmless */
    assert_true(rp_signals_draining());
    assert_int_equal(rp_signals_drain_signal(), 0);
    assert_true(readable(rp_signals_fd(), 1000));
    rp_signals_uninstall();
}

static void test_wait_wakes_up(void **state)
{
    assert_int_equal(rp_signals_install(NULL), RP_OK);
    pid_t parent = getpid();
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        usleep(100 * 1000);
        kill(parent, SIGINT);
        _exit(0);
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(rp_signals_wait(10000), 1);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_true(t1.tv_sec - t0.tv_sec < 5); /* woke on the signal, not the timeout */
    assert_int_equal(rp_signals_drain_signal(), SIGINT);
    int status;
    waitpid(child, &status, 0);
    rp_signals_uninstall();
}

static void test_second_signal_exits(void **state)
{
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        if (rp_signals_install(NULL) != RP_OK)
            _exit(99);
        raise(SIGTERM);
        if (!rp_signals_draining())
            _exit(98);
        raise(SIGTERM); /* must not return */
        _exit(97);
    }
    int status;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 128 + SIGTERM);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sigterm_drains),
        cmocka_unit_test(test_request_drain_and_sigpipe),
        cmocka_unit_test(test_wait_wakes_up),
        cmocka_unit_test(test_second_signal_exits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
