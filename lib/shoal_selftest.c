/*  shoal_selftest - runs the selftest of every class, each in a process of
    its own (a failed assert then fails that class alone), and reports in
    TAP so the test harness counts classes.

        shoal_selftest              all classes
        shoal_selftest -t NAME      one class
        shoal_selftest -v           verbose                                   */
#include "shoal_private.h"
#include <sys/wait.h>

typedef struct {
    const char *name;
    void (*test) (bool verbose);
} s_test_t;

//  Bottom layer first, as in DESIGN.md
static const s_test_t s_tests [] = {
    { "shoal_status", shoal_status_test },
    { "shoal_wire", shoal_wire_test },
    { "shoal_body", shoal_body_test },
    { "shoal_reader", shoal_reader_test },
    { "shoal_topic", shoal_topic_test },
    { "shoal_registry", shoal_registry_test },
    { "shoal_rendezvous", shoal_rendezvous_test },
    { "shoal_stats", shoal_stats_test },
    { "shoal_balancer", shoal_balancer_test },
    { "shoal_client", shoal_client_test },
    { "shoal_instance", shoal_instance_test },
    { "shoal_service", shoal_service_test },
    { "shoal_node", shoal_node_test },
    { "shoal_subscriber", shoal_subscriber_test },
    { "shoal_testkit", shoal_testkit_test },
};

int
main (int argc, char *argv [])
{
    bool verbose = false;
    const char *only = NULL;
    for (int index = 1; index < argc; index++) {
        if (streq (argv [index], "-v"))
            verbose = true;
        else if (streq (argv [index], "-t") && index + 1 < argc)
            only = argv [++index];
        else {
            fprintf (stderr, "usage: shoal_selftest [-v] [-t NAME]\n");
            return 2;
        }
    }
    size_t count = sizeof (s_tests) / sizeof (s_tests [0]);
    size_t run = 0, failed = 0;
    for (size_t index = 0; index < count; index++) {
        if (only && !streq (only, s_tests [index].name))
            continue;
        fflush (stdout);
        pid_t pid = fork ();
        if (pid == 0) {
            s_tests [index].test (verbose);
            fflush (stdout);
            zsys_shutdown ();
            _exit (0);
        }
        int status = 0;
        waitpid (pid, &status, 0);
        bool ok = WIFEXITED (status) && WEXITSTATUS (status) == 0;
        printf ("%s %zu - %s selftest\n", ok ? "ok" : "not ok", ++run, s_tests [index].name);
        failed += !ok;
    }
    if (run == 0) {
        printf ("Bail out! no selftest named '%s'\n", only);
        return 1;
    }
    printf ("1..%zu\n", run);
    return failed ? 1 : 0;
}
