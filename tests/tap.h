/*  tap.h - a tiny Test Anything Protocol helper for shoal's C test programs.

    Each test program is one process, run by automake's tap-driver.sh, which
    counts every `ok` / `not ok` line as one case in the test-suite summary.

        #include "tap.h"

        int main (void)
        {
            tap_plan (2);                       //  or tap_done () at the end
            tap_ok (1 + 1 == 2, "arithmetic still works");
            if (!have_netns)
                tap_skip ("no network namespaces here");
            else
                tap_ok (run_partition (), "a partitioned node drops out");
            return tap_exit_status ();
        }

    Every line is flushed as it is written, so a test that crashes or hangs
    still shows how far it got. A failed case does not stop the program; the
    driver marks the whole test failed. tap_bail () stops everything.

    Header-only: all functions are static inline, and the counters are
    per-translation-unit statics (each test program is one .c file).       */
#ifndef SHOAL_TAP_H_INCLUDED
#define SHOAL_TAP_H_INCLUDED

#include <czmq.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#if defined(__GNUC__)
#   define TAP_PRINTF(f, a) __attribute__ ((format (printf, f, a)))
#else
#   define TAP_PRINTF(f, a)
#endif

//  Cases written so far, cases that failed, and the plan (-1: none yet).
static int tap_count_ = 0;
static int tap_failed_ = 0;
static int tap_planned_ = -1;

//  Announces that N cases follow. Call before the first case, or not at all
//  and call tap_done () after the last one instead.
static inline void
tap_plan (int n)
{
    tap_planned_ = n;
    printf ("1..%d\n", n);
    fflush (stdout);
}

//  Writes one case: "ok N - name" if COND holds, "not ok N - name" if not.
//  Returns COND, so a test can stop going down a path that already failed.
static inline bool TAP_PRINTF (2, 3)
tap_ok (bool cond, const char *format, ...)
{
    tap_count_++;
    if (!cond)
        tap_failed_++;
    printf ("%sok %d - ", cond ? "" : "not ", tap_count_);
    va_list args;
    va_start (args, format);
    vprintf (format, args);
    va_end (args);
    printf ("\n");
    fflush (stdout);
    return cond;
}

//  Writes one skipped case: "ok N # SKIP reason". It counts in the plan.
static inline void TAP_PRINTF (1, 2)
tap_skip (const char *format, ...)
{
    tap_count_++;
    printf ("ok %d # SKIP ", tap_count_);
    va_list args;
    va_start (args, format);
    vprintf (format, args);
    va_end (args);
    printf ("\n");
    fflush (stdout);
}

//  Writes a diagnostic line "# ...": shown in the test's .log, never counted.
static inline void TAP_PRINTF (1, 2)
tap_diag (const char *format, ...)
{
    printf ("# ");
    va_list args;
    va_start (args, format);
    vprintf (format, args);
    va_end (args);
    printf ("\n");
    fflush (stdout);
}

//  Gives up on the whole test program: "Bail out! ..." and exit 1. For when
//  carrying on makes no sense (a fixture could not be set up).
static inline void TAP_PRINTF (1, 2)
tap_bail (const char *format, ...)
{
    printf ("Bail out! ");
    va_list args;
    va_start (args, format);
    vprintf (format, args);
    va_end (args);
    printf ("\n");
    fflush (stdout);
    exit (1);
}

//  Ends a run that had no plan up front: writes the plan "1..N" for the N
//  cases written. Does nothing if tap_plan () was called.
static inline void
tap_done (void)
{
    if (tap_planned_ < 0) {
        tap_planned_ = tap_count_;
        printf ("1..%d\n", tap_count_);
        fflush (stdout);
    }
}

//  The value for main () to return. Always 0: the TAP driver judges the run
//  from the ok / not ok lines and the plan, and a non-zero exit would be
//  reported as an extra ERROR on top of the failed cases. It does write a
//  diagnostic when the number of cases differs from the plan, and the plan
//  itself if nobody did.
static inline int
tap_exit_status (void)
{
    if (tap_planned_ < 0)
        tap_done ();
    else
    if (tap_planned_ != tap_count_)
        tap_diag ("planned %d cases but ran %d", tap_planned_, tap_count_);
    if (tap_failed_)
        tap_diag ("%d of %d cases failed", tap_failed_, tap_count_);
    return 0;
}

//  Waits for an event: calls COND (ARG) until it returns true, or until
//  TIMEOUT_MS milliseconds have passed on the monotonic clock. Returns true
//  if COND became true, false if the deadline came first.
//
//  Tests must never sleep to let things settle. This helper is the one
//  sanctioned exception, and it is not that: it waits for a named condition
//  with a deadline, and its 1 ms pause between two checks only keeps it from
//  spinning a core while it waits for something it cannot poll a socket for
//  (a process exit, a file appearing, a counter in another thread). Where a
//  socket can tell you, use zpoller / zsock_set_rcvtimeo instead.
static inline bool
tap_wait_until (bool (*cond) (void *), void *arg, int timeout_ms)
{
    int64_t deadline = zclock_mono () + timeout_ms;
    while (true) {
        if (cond (arg))
            return true;
        if (zclock_mono () >= deadline)
            return false;
        zclock_sleep (1);
    }
}

#endif
