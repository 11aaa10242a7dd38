/*  test_processes - shoal-echo in several processes, called over tcp
    loopback: calls to every instance, concurrent callers, a process killed,
    frozen, and stopped with requests in flight.                             */
#include <shoal.h>
#include <czmq.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include "tap.h"

#define PROCESSES 3
#define INSTANCES 2

typedef struct {
    pid_t pid;
    int exit_status;                //  -1 while running
    char endpoints [INSTANCES][256];
} s_process_t;

//  Starts shoal-echo and reads its endpoints from its stdout, with a deadline
static bool
s_process_start (s_process_t *process, int instances)
{
    const char *top = getenv ("top_builddir");
    char path [512];
    snprintf (path, sizeof (path), "%s/services/echo/shoal-echo", top ? top : ".");
    int out [2];
    if (pipe (out))
        return false;
    char count [8];
    snprintf (count, sizeof (count), "%d", instances);
    process->exit_status = -1;
    process->pid = fork ();
    if (process->pid == 0) {
        dup2 (out [1], STDOUT_FILENO);
        close (out [0]);
        close (out [1]);
        execl (path, path, "--bind", "tcp://127.0.0.1:*", "--instances", count, NULL);
        _exit (127);
    }
    close (out [1]);
    //  Read lines until we have every endpoint or the deadline passes
    char buffer [2048] = "";
    size_t filled = 0;
    int lines = 0;
    int64_t deadline = zclock_mono () + 5000;
    while (lines < instances && zclock_mono () < deadline) {
        zmq_pollitem_t item = { NULL, out [0], ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, (long) (deadline - zclock_mono ())) <= 0)
            break;
        ssize_t got = read (out [0], buffer + filled, sizeof (buffer) - filled - 1);
        if (got <= 0)
            break;
        filled += (size_t) got;
        buffer [filled] = 0;
        lines = 0;
        for (char *c = buffer; *c; c++)
            lines += *c == '\n';
    }
    close (out [0]);
    if (lines < instances)
        return false;
    char *line = buffer;
    for (int index = 0; index < instances; index++) {
        char *end = strchr (line, '\n');
        *end = 0;
        snprintf (process->endpoints [index], sizeof (process->endpoints [index]), "%s", line);
        line = end + 1;
    }
    return true;
}

static bool
s_process_exited (void *arg)
{
    s_process_t *process = (s_process_t *) arg;
    int status;
    if (process->exit_status == -1 && waitpid (process->pid, &status, WNOHANG) == process->pid)
        process->exit_status = WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
    return process->exit_status != -1;
}

//  Stops a process for good: SIGKILL if it is still there, then reap it
static void
s_process_reap (s_process_t *process)
{
    if (process->pid > 0 && !s_process_exited (process)) {
        kill (process->pid, SIGCONT);
        kill (process->pid, SIGKILL);
        waitpid (process->pid, NULL, 0);
    }
    process->pid = 0;
}

//  --------------------------------------------------------------------------

typedef struct {
    s_process_t *processes;
    int good;
    int total;
} s_caller_t;

static void *
s_caller (void *arg)
{
    s_caller_t *caller = (s_caller_t *) arg;
    shoal_client_t *client = shoal_client_new ();
    for (int round = 0; round < 100; round++)
        for (int process = 0; process < PROCESSES; process++)
            for (int instance = 0; instance < INSTANCES; instance++) {
                shoal_call_t *call = shoal_client_callf (
                    client, caller->processes [process].endpoints [instance], "echo", "echo",
                    5000, "{s:i}", "round", round);
                int echoed = -1;
                caller->total++;
                if (shoal_call_get (call, "{s:i}", "round", &echoed) == 0 && echoed == round)
                    caller->good++;
                shoal_call_destroy (&call);
            }
    shoal_client_destroy (&client);
    return NULL;
}

static void
test_every_instance (s_process_t *processes, shoal_client_t *client)
{
    int answered = 0;
    zhashx_t *pids = zhashx_new ();
    for (int process = 0; process < PROCESSES; process++)
        for (int instance = 0; instance < INSTANCES; instance++) {
            shoal_call_t *call = shoal_client_call (
                client, processes [process].endpoints [instance], "echo", "whoami", NULL, 0,
                2000);
            int64_t pid = 0;
            if (shoal_call_get (call, "{s:I}", "pid", &pid) == 0
                && pid == processes [process].pid) {
                answered++;
                char key [32];
                snprintf (key, sizeof (key), "%" PRId64, pid);
                zhashx_insert (pids, key, (void *) 1);
            }
            shoal_call_destroy (&call);
        }
    tap_ok (answered == PROCESSES * INSTANCES && zhashx_size (pids) == PROCESSES,
            "%d instances in %d processes answer whoami with their own pid", answered,
            (int) zhashx_size (pids));
    zhashx_destroy (&pids);
}

static void
test_concurrent (s_process_t *processes)
{
    pthread_t threads [4];
    s_caller_t callers [4];
    for (int index = 0; index < 4; index++) {
        callers [index] = (s_caller_t) { .processes = processes };
        pthread_create (&threads [index], NULL, s_caller, &callers [index]);
    }
    int good = 0, total = 0;
    for (int index = 0; index < 4; index++) {
        pthread_join (threads [index], NULL);
        good += callers [index].good;
        total += callers [index].total;
    }
    tap_ok (good == total, "4 threads call 6 instances in 3 processes: %d of %d OK", good,
            total);
}

//  A frozen process costs a caller its deadline, no more; it serves again
//  when it resumes
static void
test_frozen (s_process_t *process, shoal_client_t *client)
{
    //  kill returns before the process has stopped: wait for that event, or
    //  a busy machine lets it answer first
    kill (process->pid, SIGSTOP);
    int status;
    waitpid (process->pid, &status, WUNTRACED);
    int64_t start = zclock_mono ();
    shoal_call_t *call = shoal_client_call (client, process->endpoints [0], "echo", "echo",
                                            "\xc0", 1, 200);
    int64_t took = zclock_mono () - start;
    tap_ok (shoal_call_status (call) == SHOAL_DEADLINE_EXCEEDED && took < 500,
            "a call to a frozen process ends DEADLINE_EXCEEDED in %d ms (%s)", (int) took,
            shoal_status_name (shoal_call_status (call)));
    shoal_call_destroy (&call);
    kill (process->pid, SIGCONT);
    call = shoal_client_call (client, process->endpoints [0], "echo", "echo", "\xc0", 1, 3000);
    tap_ok (shoal_call_status (call) == SHOAL_OK, "it serves again once resumed");
    shoal_call_destroy (&call);
}

//  A killed process: calls end within their deadline, others serve on
static void
test_killed (s_process_t *processes, shoal_client_t *client)
{
    kill (processes [0].pid, SIGKILL);
    tap_wait_until (s_process_exited, &processes [0], 2000);
    int64_t start = zclock_mono ();
    shoal_call_t *call = shoal_client_call (client, processes [0].endpoints [0], "echo",
                                            "echo", "\xc0", 1, 300);
    int64_t took = zclock_mono () - start;
    shoal_status_t status = shoal_call_status (call);
    tap_ok ((status == SHOAL_UNAVAILABLE || status == SHOAL_DEADLINE_EXCEEDED) && took < 600,
            "a call to a killed process ends %s in %d ms", shoal_status_name (status),
            (int) took);
    shoal_call_destroy (&call);
    call = shoal_client_call (client, processes [1].endpoints [1], "echo", "echo", "\xc0", 1,
                              2000);
    tap_ok (shoal_call_status (call) == SHOAL_OK, "the other processes serve on");
    shoal_call_destroy (&call);
}

//  SIGTERM with requests in flight: every one is answered, then exit 0
static void
test_sigterm (s_process_t *process, shoal_client_t *client)
{
    shoal_call_t *calls [4];
    calls [0] = shoal_client_callf (client, process->endpoints [0], "echo", "echo", 2000,
                                    "[]");
    shoal_call_destroy (&calls [0]);
    shoal_body_t *sleep = shoal_body_pack ("{s:i}", "ms", 200);
    calls [0] = shoal_client_send (client, process->endpoints [0], "echo", "sleep",
                                   shoal_body_data (sleep), shoal_body_size (sleep), 5000);
    for (int index = 1; index < 4; index++)
        calls [index] = shoal_client_send (client, process->endpoints [0], "echo", "echo",
                                           "\x01", 1, 5000);
    shoal_body_destroy (&sleep);
    kill (process->pid, SIGTERM);
    int answered = 0;
    for (int index = 0; index < 4; index++) {
        answered += shoal_call_wait (calls [index]) == SHOAL_OK;
        shoal_call_destroy (&calls [index]);
    }
    tap_ok (answered == 4, "SIGTERM: all 4 requests in flight answered (%d)", answered);
    bool exited = tap_wait_until (s_process_exited, process, 5000);
    tap_ok (exited && process->exit_status == 0, "then the process exits 0 (status %d)",
            process->exit_status);
}

int
main (void)
{
    signal (SIGPIPE, SIG_IGN);
    //  The echo processes join a cluster: give them a rendezvous folder of
    //  their own, so they meet nobody else's nodes and leave nothing behind
    char runtime [] = "/tmp/shoal-test-processes-XXXXXX";
    if (!mkdtemp (runtime))
        tap_bail ("cannot make a temporary folder");
    setenv ("SHOAL_RUNTIME_DIR", runtime, 1);
    setenv ("SHOAL_CLUSTER", "test-processes", 1);
    s_process_t processes [PROCESSES] = { { 0 } };
    for (int index = 0; index < PROCESSES; index++)
        if (!s_process_start (&processes [index], INSTANCES)) {
            for (int other = 0; other <= index; other++)
                s_process_reap (&processes [other]);
            tap_bail ("cannot start shoal-echo (top_builddir=%s)", getenv ("top_builddir"));
        }
    shoal_client_t *client = shoal_client_new ();
    test_every_instance (processes, client);
    test_concurrent (processes);
    test_frozen (&processes [2], client);
    test_killed (processes, client);
    test_sigterm (&processes [1], client);
    shoal_client_destroy (&client);
    for (int index = 0; index < PROCESSES; index++)
        s_process_reap (&processes [index]);
    char *command = zsys_sprintf ("rm -rf '%s'", runtime);
    if (system (command) != 0)
        tap_diag ("could not remove %s", runtime);
    free (command);
    return tap_exit_status ();
}
