/*  test_cluster - calls by name across a cluster, told as stories.

    A. Three nodes in this process on inproc://, with no network at all: a
       service with instances on two of them, called by name from the third.
       Every instance gets calls; consistent hashing keeps a key on its
       instance; prefer-local stays local; a service that stops leaves the
       view; an unknown service is UNAVAILABLE at once; a handler that calls
       another service by name passes its deadline on.
    B. shoal-echo processes on loopback that find each other and this test's
       node through the rendezvous folder: a process killed in the middle of
       a stream of calls, one frozen and resumed, a rolling restart under
       load, and two clusters side by side in the same folder.

    Every wait is for an event, with a deadline. Every process is killed and
    reaped and the runtime folder removed, on the failure paths too (a
    watchdog thread does it if the whole program overruns).                   */
#include <shoal.h>
#include <czmq.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include "tap.h"

//  Timings are asserted; under valgrind this process is many times slower
static int s_slow = 1;

//  --------------------------------------------------------------------------
//  The runtime folder, the child processes, and their cleanup

#define MAX_PROCESSES 16

typedef struct {
    atomic_int pid;             //  while it runs (0 once reaped)
    int number;                 //  its pid, kept for messages
    int status;                 //  exit code, 128+signal; -1 until reaped
    int out;                    //  its stdout, kept open while it runs
    char endpoint [256];        //  its instance's, as it printed it
    char log [600];             //  its stderr
    int64_t spawned;            //  zclock_mono at fork
    int64_t printed;            //  zclock_mono when we read its endpoint
} s_process_t;

static s_process_t s_processes [MAX_PROCESSES];
static int s_process_count = 0;
static char s_runtime [] = "/tmp/shoal-test-cluster-XXXXXX";
static bool s_runtime_made = false;
static atomic_bool s_cleaned = false;

static int s_unremoved = 0;

static int
s_remove_entry (const char *path, const struct stat *info, int flag, struct FTW *ftw)
{
    if (remove (path))
        s_unremoved++;
    return 0;                   //  carry on with the rest
}

//  Kills and reaps every child still there, and removes the runtime folder
static void
s_cleanup (void)
{
    if (atomic_exchange (&s_cleaned, true))
        return;
    for (int index = 0; index < MAX_PROCESSES; index++) {
        pid_t pid = atomic_exchange (&s_processes [index].pid, 0);
        if (pid > 0) {
            kill (pid, SIGCONT);
            kill (pid, SIGKILL);
            waitpid (pid, NULL, 0);
        }
    }
    if (s_runtime_made
        && (nftw (s_runtime, s_remove_entry, 16, FTW_DEPTH | FTW_PHYS) || s_unremoved))
        tap_diag ("could not remove all of %s (%d left)", s_runtime, s_unremoved);
}

//  After tap_bail (exit without the normal cleanup): clean up, and leave
//  before CZMQ's own exit handler waits on sockets that are still open
static void
s_at_exit (void)
{
    if (!atomic_load (&s_cleaned)) {
        s_cleanup ();
        fflush (stdout);
        _exit (1);
    }
}

//  The watchdog. Every thread blocks SIGINT, SIGTERM and SIGHUP (they are
//  blocked before the first thread starts, and threads inherit the mask);
//  this one takes them with sigtimedwait. If one comes, or if the program
//  overruns, it bails out and cleans up. SIGUSR1 from main: all is done.
static sigset_t s_watched;
static int s_watch_seconds = 55;

static void *
s_watchdog (void *arg)
{
    int64_t deadline = zclock_mono () + s_watch_seconds * 1000;
    int signal_number = -1;
    while (signal_number == -1) {
        int64_t left = deadline - zclock_mono ();
        if (left <= 0)
            break;
        struct timespec timeout = { (time_t) (left / 1000), (long) (left % 1000) * 1000000L };
        signal_number = sigtimedwait (&s_watched, NULL, &timeout);
    }
    if (signal_number == SIGUSR1)
        return NULL;
    if (signal_number == -1)
        printf ("Bail out! still running after %d s\n", s_watch_seconds);
    else
        printf ("Bail out! stopped by signal %d\n", signal_number);
    s_cleanup ();
    fflush (stdout);
    _exit (1);
}

//  True once PROCESS has exited; reaps it and keeps its status
static bool
s_exited (void *arg)
{
    s_process_t *process = (s_process_t *) arg;
    pid_t pid = atomic_load (&process->pid);
    if (pid <= 0)
        return true;
    int status;
    if (waitpid (pid, &status, WNOHANG) != pid)
        return false;
    process->status = WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
    atomic_store (&process->pid, 0);
    close (process->out);
    return true;
}

//  Kills PROCESS if it is still there, and reaps it
static void
s_reap (s_process_t *process)
{
    pid_t pid = atomic_load (&process->pid);
    if (pid > 0 && !s_exited (process)) {
        kill (pid, SIGCONT);
        kill (pid, SIGKILL);
        int status;
        if (waitpid (pid, &status, 0) == pid)
            process->status = 128 + (WIFSIGNALED (status) ? WTERMSIG (status) : 0);
        atomic_store (&process->pid, 0);
        close (process->out);
    }
}

static void
s_signal (s_process_t *process, int signal_number)
{
    pid_t pid = atomic_load (&process->pid);
    if (pid > 0)
        kill (pid, signal_number);
}

//  Writes the last lines a process logged, as diagnostics
static void
s_show_log (s_process_t *process)
{
    FILE *file = fopen (process->log, "r");
    if (!file)
        return;
    char line [512];
    while (fgets (line, sizeof (line), file)) {
        line [strcspn (line, "\n")] = 0;
        tap_diag ("  [%d] %s", process->number, line);
    }
    fclose (file);
}

//  Starts shoal-echo in CLUSTER and reads the endpoint it prints; NULL if it
//  does not print one in time (it is then reaped)
static s_process_t *
s_spawn (const char *cluster)
{
    if (s_process_count == MAX_PROCESSES)
        return NULL;
    s_process_t *process = &s_processes [s_process_count];
    const char *top = getenv ("top_builddir");
    char path [512];
    snprintf (path, sizeof (path), "%s/services/echo/shoal-echo", top ? top : ".");
    snprintf (process->log, sizeof (process->log), "%s/echo-%d.log", s_runtime,
              s_process_count);
    s_process_count++;
    char *argv [] = { path, "--cluster", (char *) cluster, NULL };
    int out [2];
    if (pipe2 (out, O_CLOEXEC))
        return NULL;
    sigset_t none;
    sigemptyset (&none);
    pid_t parent = getpid ();
    process->status = -1;
    process->spawned = zclock_mono ();
    pid_t pid = fork ();
    if (pid == 0) {
        //  Only async-signal-safe calls between fork and exec. It must die
        //  with us, even if we are SIGKILLed (the main thread forks, and it
        //  lives as long as the process); and it must not inherit our
        //  blocked signals, or SIGTERM would never reach it.
        prctl (PR_SET_PDEATHSIG, SIGKILL);
        if (getppid () != parent)
            _exit (127);
        sigprocmask (SIG_SETMASK, &none, NULL);
        signal (SIGPIPE, SIG_DFL);
        dup2 (out [1], STDOUT_FILENO);
        int log = open (process->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (log != -1)
            dup2 (log, STDERR_FILENO);
        execv (path, argv);
        _exit (127);
    }
    close (out [1]);
    if (pid < 0) {
        close (out [0]);
        return NULL;
    }
    process->number = pid;
    //  Kept open until it is reaped: a late line on its stdout must not
    //  kill it with SIGPIPE
    process->out = out [0];
    atomic_store (&process->pid, pid);
    char buffer [512];
    size_t filled = 0;
    int64_t deadline = zclock_mono () + 5000 * s_slow;
    while (!memchr (buffer, '\n', filled) && filled < sizeof (buffer) - 1) {
        int64_t left = deadline - zclock_mono ();
        zmq_pollitem_t item = { NULL, out [0], ZMQ_POLLIN, 0 };
        if (left <= 0 || zmq_poll (&item, 1, (long) left) <= 0)
            break;
        ssize_t got = read (out [0], buffer + filled, sizeof (buffer) - 1 - filled);
        if (got <= 0)
            break;
        filled += (size_t) got;
    }
    process->printed = zclock_mono ();
    char *newline = (char *) memchr (buffer, '\n', filled);
    if (!newline || newline - buffer >= (ptrdiff_t) sizeof (process->endpoint)) {
        tap_diag ("shoal-echo (%s) printed no endpoint", path);
        s_reap (process);
        s_show_log (process);
        return NULL;
    }
    *newline = 0;
    memcpy (process->endpoint, buffer, (size_t) (newline - buffer) + 1);
    return process;
}

//  --------------------------------------------------------------------------
//  Looking at a node's view

//  The instance of SERVICE whose endpoint (or id) is KEY in NODE's view:
//  returns its state, or -1 if it is not there. Copies its id and node id.
static int
s_find (shoal_node_t *node, const char *service, const char *key, char *instance,
        char *node_id)
{
    shoal_view_t *view = shoal_node_view (node);
    size_t count;
    const shoal_instance_info_t *const *instances = shoal_view_service (view, service, &count);
    int state = -1;
    for (size_t index = 0; index < count; index++)
        if (streq (instances [index]->endpoint, key) || streq (instances [index]->instance, key)) {
            state = (int) instances [index]->state;
            if (instance)
                snprintf (instance, 65, "%s", instances [index]->instance);
            if (node_id)
                snprintf (node_id, 65, "%s", instances [index]->node);
        }
    shoal_view_destroy (&view);
    return state;
}

static size_t
s_count (shoal_node_t *node, const char *service)
{
    shoal_view_t *view = shoal_node_view (node);
    size_t count;
    shoal_view_service (view, service, &count);
    shoal_view_destroy (&view);
    return count;
}

typedef struct {
    shoal_node_t *node;
    const char *service;
    const char *key;            //  endpoint or instance id
    size_t count;
} s_seek_t;

static bool
s_is_up (void *arg)
{
    s_seek_t *seek = (s_seek_t *) arg;
    return s_find (seek->node, seek->service, seek->key, NULL, NULL) == SHOAL_INSTANCE_UP;
}

static bool
s_is_gone (void *arg)
{
    s_seek_t *seek = (s_seek_t *) arg;
    return s_find (seek->node, seek->service, seek->key, NULL, NULL) == -1;
}

static bool
s_count_is (void *arg)
{
    s_seek_t *seek = (s_seek_t *) arg;
    return s_count (seek->node, seek->service) == seek->count;
}

//  Milliseconds until CONDITION holds (polling every ms), or -1 on timeout
static int
s_time_until (bool (*condition) (void *), void *arg, int timeout_ms)
{
    int64_t start = zclock_usecs ();
    if (!tap_wait_until (condition, arg, timeout_ms))
        return -1;
    return (int) ((zclock_usecs () - start + 500) / 1000);
}

//  Index of ID in IDS (adding it if there is room), or -1
static int
s_slot_of (char ids [][65], int *size, int capacity, const char *id)
{
    for (int index = 0; index < *size; index++)
        if (streq (ids [index], id))
            return index;
    if (*size == capacity)
        return -1;
    snprintf (ids [*size], 65, "%s", id);
    return (*size)++;
}

//  --------------------------------------------------------------------------
//  A. Three nodes in this process, over inproc://

typedef struct {
    int count;
} s_tally_t;

static void *
s_tally_new (void *arg)
{
    return zmalloc (sizeof (s_tally_t));
}

static void
s_tally_destroy (void *state)
{
    free (state);
}

static void
s_tally_echo (shoal_request_t *request, void *state)
{
    size_t size;
    const void *body = shoal_request_body (request, &size);
    shoal_request_reply_raw (request, body, size);
}

static void
s_tally_whoami (shoal_request_t *request, void *state)
{
    shoal_request_reply (request, "{s:s, s:s}", "instance", shoal_request_instance (request),
                         "node", shoal_request_node (request));
}

//  Not idempotent: each call counts once, on the instance that serves it
static void
s_tally_count (shoal_request_t *request, void *state)
{
    s_tally_t *tally = (s_tally_t *) state;
    tally->count++;
    shoal_request_reply (request, "{s:i, s:s}", "count", tally->count, "instance",
                         shoal_request_instance (request));
}

static void
s_tally_remaining (shoal_request_t *request, void *state)
{
    shoal_request_reply (request, "{s:i, s:s}", "remaining", shoal_request_remaining (request),
                         "instance", shoal_request_instance (request));
}

static shoal_service_t *
s_tally_service (void)
{
    shoal_service_t *service = shoal_service_new ("tally", "1.0.0");
    shoal_service_set_state (service, s_tally_new, s_tally_destroy, NULL);
    shoal_service_method (service, "echo", s_tally_echo, SHOAL_IDEMPOTENT, NULL);
    shoal_service_method (service, "whoami", s_tally_whoami, SHOAL_IDEMPOTENT, NULL);
    shoal_service_method (service, "count", s_tally_count, 0, NULL);
    shoal_service_method (service, "remaining", s_tally_remaining, SHOAL_IDEMPOTENT, NULL);
    return service;
}

static shoal_service_t *
s_tally_start (shoal_node_t *node, size_t instances)
{
    shoal_service_t *service = s_tally_service ();
    shoal_service_set_node (service, node);
    if (shoal_service_start (service, instances))
        shoal_service_destroy (&service);
    return service;
}

//  front.relay {service, method, timeout}: calls SERVICE.METHOD by name from
//  inside the handler and answers {status, outer, inner}: the nested call's
//  status, the time this request had left before it, and the nested reply
static void
s_front_relay (shoal_request_t *request, void *state)
{
    const char *service, *method;
    int timeout;
    if (shoal_request_get (request, "{s:s, s:s, s:i}", "service", &service, "method", &method,
                           "timeout", &timeout))
        return;
    int outer = shoal_request_remaining (request);
    shoal_call_t *call = shoal_request_call (request, NULL, service, method, NULL, 0, timeout);
    size_t size;
    const void *body = shoal_call_body (call, &size);
    if (shoal_call_status (call) == SHOAL_OK && size)
        shoal_request_reply (request, "{s:i, s:i, s:z%}", "status", 0, "outer", outer, "inner",
                             body, size);
    else
        shoal_request_reply (request, "{s:i, s:i, s:n}", "status",
                             (int) shoal_call_status (call), "outer", outer, "inner");
    shoal_call_destroy (&call);
}

//  Calls tally.whoami by name (by KEY if given); copies the instance that
//  answered into INSTANCE and its node into NODE. Returns the status.
static shoal_status_t
s_whoami (shoal_client_t *client, const char *service, const char *key, char *instance,
          char *node)
{
    shoal_call_t *call = key
        ? shoal_client_send_key (client, key, service, "whoami", NULL, 0, 2000 * s_slow)
        : shoal_client_send (client, NULL, service, "whoami", NULL, 0, 2000 * s_slow);
    const char *answered = "", *from = "";
    shoal_status_t status = shoal_call_wait (call);
    if (status == SHOAL_OK
        && shoal_call_get (call, "{s:s, s?s}", "instance", &answered, "node", &from))
        status = SHOAL_INTERNAL;
    snprintf (instance, 65, "%s", answered);
    if (node)
        snprintf (node, 65, "%s", from);
    shoal_call_destroy (&call);
    return status;
}

//  The in-process cluster, and what node 3 learnt of it
typedef struct {
    shoal_testkit_t *kit;       //  the cluster: its nodes, client and services
    shoal_node_t *nodes [3];    //  the kit's
    shoal_service_t *tally2;    //  1 instance on node 2, stopped mid-test: ours
    char on_node1 [2][65];      //  instance ids
    char on_node2 [65];
    shoal_client_t *client;     //  on node 3, which serves nothing
} s_cluster_t;

static bool
s_is_tally (s_cluster_t *self, const char *instance)
{
    return streq (instance, self->on_node1 [0]) || streq (instance, self->on_node1 [1])
        || streq (instance, self->on_node2);
}

//  The testing kit makes three nodes that have met; tally and front start;
//  node 3 sees where each runs
static void
s_cluster_start (s_cluster_t *self)
{
    self->kit = shoal_testkit_new (3);
    if (!self->kit)
        tap_bail ("the testing kit could not make a cluster of 3 nodes");
    bool inproc = true;
    for (int index = 0; index < 3; index++) {
        self->nodes [index] = shoal_testkit_node (self->kit, (size_t) index);
        inproc = inproc
              && strncmp (shoal_node_endpoint (self->nodes [index]), "inproc://", 9) == 0;
    }
    tap_ok (inproc, "A: the kit's 3 nodes are on inproc:// and have met");

    //  tally on node 1 and front are the kit's; tally on node 2 is stopped
    //  mid-test (a clean departure, not a crash), so it stays ours
    shoal_service_t *tally1 = s_tally_service ();
    shoal_service_t *front = shoal_service_new ("front", "1.0.0");
    shoal_service_method (front, "relay", s_front_relay, 0, NULL);
    self->tally2 = s_tally_start (self->nodes [1], 1);
    if (shoal_testkit_spawn (self->kit, 0, &tally1, 2)
        || shoal_testkit_spawn (self->kit, 1, &front, 1) || !self->tally2)
        tap_bail ("cannot start the in-process services: %s", shoal_testkit_error (self->kit));
    bool met = shoal_testkit_wait_up (self->kit, "tally", 3, 2000 * s_slow) == 0
            && shoal_testkit_wait_up (self->kit, "front", 1, 2000 * s_slow) == 0;
    if (!met)
        tap_diag ("%s", shoal_testkit_error (self->kit));

    int from_node1 = 0, from_node2 = 0, remote = 0;
    shoal_view_t *view = shoal_node_view (self->nodes [2]);
    size_t count;
    const shoal_instance_info_t *const *instances = shoal_view_service (view, "tally", &count);
    for (size_t index = 0; index < count; index++) {
        const shoal_instance_info_t *info = instances [index];
        if (streq (info->node, shoal_node_id (self->nodes [0])) && from_node1 < 2)
            snprintf (self->on_node1 [from_node1++], 65, "%s", info->instance);
        else if (streq (info->node, shoal_node_id (self->nodes [1])) && from_node2 < 1)
            snprintf (self->on_node2, 65, "%s", info->instance), from_node2++;
        remote += !info->local && strncmp (info->endpoint, "inproc://", 9) == 0;
    }
    bool idempotent = shoal_view_idempotent (view, "tally", "echo")
                   && shoal_view_idempotent (view, "tally", "whoami")
                   && !shoal_view_idempotent (view, "tally", "count");
    shoal_view_destroy (&view);
    if (!tap_ok (met && count == 3 && from_node1 == 2 && from_node2 == 1 && remote == 3,
                 "A: node 3 sees tally's 3 instances, 2 on node 1 and 1 on node 2, on "
                 "inproc:// (%zu, %d, %d)", count, from_node1, from_node2))
        tap_bail ("node 3 does not see the services");
    tap_ok (idempotent, "A: echo and whoami are idempotent in the view, count is not");
    self->client = shoal_testkit_client (self->kit, 2);
}

static void
s_cluster_stop (s_cluster_t *self)
{
    shoal_service_destroy (&self->tally2);
    shoal_testkit_destroy (&self->kit);     //  its services, client and nodes
}

//  Least loaded and round robin both use every instance; a method that is
//  not idempotent runs exactly once per call
static void
test_spread (s_cluster_t *self)
{
    char seen [3][65], instance [65], node [65];
    int size = 0, hits [3] = { 0 }, good = 0, right_node = 0;
    for (int round = 0; round < 30; round++)
        if (s_whoami (self->client, "tally", NULL, instance, node) == SHOAL_OK) {
            good++;
            int slot = s_slot_of (seen, &size, 3, instance);
            if (slot >= 0)
                hits [slot]++;
            char expected [65] = "";
            s_find (self->nodes [2], "tally", instance, NULL, expected);
            right_node += streq (node, expected);
        }
    tap_ok (good == 30 && size == 3 && hits [0] && hits [1] && hits [2],
            "A: least loaded: 30 calls by name all answered, by all 3 instances (%d/%d/%d)",
            hits [0], hits [1], hits [2]);
    tap_ok (right_node == 30,
            "A: whoami's node (shoal_request_node) is the id of the node that announced the "
            "instance (%d of 30)", right_node);

    shoal_client_set_route (self->client, SHOAL_ROUTE_ROUND_ROBIN);
    memset (hits, 0, sizeof (hits));
    good = 0;
    for (int round = 0; round < 30; round++)
        if (s_whoami (self->client, "tally", NULL, instance, NULL) == SHOAL_OK) {
            good++;
            int slot = s_slot_of (seen, &size, 3, instance);
            if (slot >= 0)
                hits [slot]++;
        }
    tap_ok (good == 30 && size == 3 && hits [0] == 10 && hits [1] == 10 && hits [2] == 10,
            "A: round robin: 30 calls give each instance exactly 10 (%d/%d/%d)", hits [0],
            hits [1], hits [2]);

    //  Each instance's count goes 1, 2, 3... with no gap and no repeat
    int counted [3] = { 0 }, in_order = 0;
    good = 0;
    for (int round = 0; round < 30; round++) {
        shoal_call_t *call = shoal_client_call (self->client, NULL, "tally", "count", NULL, 0,
                                                2000 * s_slow);
        int value;
        const char *counter;
        if (shoal_call_get (call, "{s:i, s:s}", "count", &value, "instance", &counter) == 0) {
            good++;
            int slot = s_slot_of (seen, &size, 3, counter);
            if (slot >= 0 && value == ++counted [slot])
                in_order++;
        }
        shoal_call_destroy (&call);
    }
    shoal_client_set_route (self->client, SHOAL_ROUTE_LEAST_LOADED);
    tap_ok (good == 30 && in_order == 30 && counted [0] + counted [1] + counted [2] == 30,
            "A: count (not idempotent): 30 calls counted exactly once each (%d+%d+%d)",
            counted [0], counted [1], counted [2]);
}

//  Consistent hashing: a key stays on its instance, and keys spread. Writes
//  where each of KEYS keys went into KEYED, for test_departure.
static void
test_hashing (s_cluster_t *self, char keyed [][65], int keys)
{
    char first [65] = "", instance [65];
    int same = 0;
    for (int round = 0; round < 20; round++)
        if (s_whoami (self->client, "tally", "cart-42", instance, NULL) == SHOAL_OK) {
            if (!*first)
                snprintf (first, sizeof (first), "%s", instance);
            same += streq (first, instance);
        }
    tap_ok (same == 20, "A: hashing: key cart-42 went to instance %s 20 times (%d)", first,
            same);
    char seen [3][65];
    int size = 0, hits [3] = { 0 }, good = 0;
    for (int key = 0; key < keys; key++) {
        char name [32];
        snprintf (name, sizeof (name), "user-%d", key);
        if (s_whoami (self->client, "tally", name, keyed [key], NULL) == SHOAL_OK) {
            good++;
            int slot = s_slot_of (seen, &size, 3, keyed [key]);
            if (slot >= 0)
                hits [slot]++;
        }
        else
            keyed [key][0] = 0;
    }
    tap_ok (good == keys && size == 3 && hits [0] && hits [1] && hits [2],
            "A: hashing: %d keys spread over the 3 instances (%d/%d/%d)", keys, hits [0],
            hits [1], hits [2]);
}

//  Prefer local: a client on node 1 stays on node 1's two instances; on
//  node 3, which has none, it is served elsewhere
static void
test_prefer_local (s_cluster_t *self)
{
    shoal_client_t *client = shoal_client_new ();
    shoal_client_set_node (client, self->nodes [0]);
    shoal_client_set_prefer_local (client, true);
    int hits [2] = { 0, 0 }, elsewhere = 0;
    char instance [65];
    for (int round = 0; round < 20; round++) {
        if (s_whoami (client, "tally", NULL, instance, NULL) != SHOAL_OK)
            elsewhere++;
        else if (streq (instance, self->on_node1 [0]))
            hits [0]++;
        else if (streq (instance, self->on_node1 [1]))
            hits [1]++;
        else
            elsewhere++;
    }
    shoal_client_destroy (&client);
    tap_ok (elsewhere == 0 && hits [0] && hits [1],
            "A: prefer local on node 1: 20 calls, all to node 1's 2 instances (%d/%d)",
            hits [0], hits [1]);
    shoal_client_set_prefer_local (self->client, true);
    shoal_status_t status = s_whoami (self->client, "tally", NULL, instance, NULL);
    shoal_client_set_prefer_local (self->client, false);
    tap_ok (status == SHOAL_OK && s_is_tally (self, instance),
            "A: prefer local on node 3, which has none: served elsewhere");
}

//  A handler calls another service by name: the nested call gets no more
//  time than its caller has left
static void
test_nested (s_cluster_t *self)
{
    shoal_call_t *call = shoal_client_callf (self->client, NULL, "front", "relay",
                                             700 * s_slow, "{s:s, s:s, s:i}", "service",
                                             "tally", "method", "remaining", "timeout",
                                             10000 * s_slow);
    int nested = -1, outer = -1, inner = -1;
    const char *served = "";
    if (shoal_call_get (call, "{s:i, s:i, s:{s:i, s:s}}", "status", &nested, "outer", &outer,
                        "inner", "remaining", &inner, "instance", &served))
        tap_diag ("relay: %s: %s %s", shoal_status_name (shoal_call_status (call)),
                  shoal_call_message (call), shoal_call_get_error (call));
    tap_ok (nested == SHOAL_OK && s_is_tally (self, served) && outer > 0
                && outer <= 700 * s_slow && inner > 0 && inner <= outer,
            "A: a handler calls tally by name: the nested call (asked for %d ms) gets %d ms, "
            "what its caller had left (%d of %d)", 10000 * s_slow, inner, outer, 700 * s_slow);
    shoal_call_destroy (&call);

    call = shoal_client_callf (self->client, NULL, "front", "relay", 5000 * s_slow,
                               "{s:s, s:s, s:i}", "service", "tally", "method", "remaining",
                               "timeout", 150);
    nested = outer = inner = -1;
    shoal_call_get (call, "{s:i, s:i, s:{s:i}}", "status", &nested, "outer", &outer, "inner",
                    "remaining", &inner);
    tap_ok (nested == SHOAL_OK && inner > 0 && inner <= 150 && outer > 150,
            "A: a nested call asking for less than is left keeps its own timeout (%d ms)",
            inner);
    shoal_call_destroy (&call);

    call = shoal_client_callf (self->client, NULL, "front", "relay", 2000 * s_slow,
                               "{s:s, s:s, s:i}", "service", "nowhere", "method", "whoami",
                               "timeout", 1000);
    nested = -1;
    shoal_call_get (call, "{s:i}", "status", &nested);
    tap_ok (shoal_call_status (call) == SHOAL_OK && nested == SHOAL_UNAVAILABLE,
            "A: a nested call to an unknown service ends %s", shoal_status_name (nested));
    shoal_call_destroy (&call);
}

//  Node 2's tally stops: its instance leaves node 3's view, only its keys
//  move, and calls by name go on
static void
test_departure (s_cluster_t *self, char keyed [][65], int keys)
{
    int64_t start = zclock_mono ();
    shoal_service_destroy (&self->tally2);
    int stopped = (int) (zclock_mono () - start);
    s_seek_t seek = { self->nodes [2], "tally", self->on_node2, 0 };
    int left = s_time_until (s_is_gone, &seek, 2000 * s_slow);
    tap_ok (left >= 0 && s_count (self->nodes [2], "tally") == 2,
            "A: tally stops on node 2 (the stop took %d ms): its instance left node 3's view "
            "%d ms later", stopped, left);

    int kept = 0, moved = 0, stable = 0, wrong = 0;
    for (int key = 0; key < keys; key++) {
        char name [32], now [65];
        snprintf (name, sizeof (name), "user-%d", key);
        if (s_whoami (self->client, "tally", name, now, NULL) != SHOAL_OK || !*keyed [key])
            wrong++;
        else if (streq (keyed [key], self->on_node2)) {
            moved++;
            wrong += streq (now, self->on_node2);
        }
        else {
            stable++;
            kept += streq (now, keyed [key]);
        }
    }
    tap_ok (wrong == 0 && kept == stable && moved > 0,
            "A: hashing after the departure: the %d keys of the other instances stayed, "
            "the %d of the one that left moved", kept, moved);

    int good = 0, on_node1 = 0;
    char instance [65];
    for (int round = 0; round < 10; round++)
        if (s_whoami (self->client, "tally", NULL, instance, NULL) == SHOAL_OK) {
            good++;
            on_node1 += streq (instance, self->on_node1 [0])
                     || streq (instance, self->on_node1 [1]);
        }
    tap_ok (good == 10 && on_node1 == 10, "A: calls by name go on, to node 1's instances");

    //  A service nobody serves: UNAVAILABLE at once, not at the deadline
    start = zclock_mono ();
    shoal_call_t *call = shoal_client_call (self->client, NULL, "nosuch", "whoami", NULL, 0,
                                            3000);
    int took = (int) (zclock_mono () - start);
    tap_ok (shoal_call_status (call) == SHOAL_UNAVAILABLE && took < 50 * s_slow,
            "A: a call by name to an unknown service ends %s in %d ms",
            shoal_status_name (shoal_call_status (call)), took);
    shoal_call_destroy (&call);
}

static void
test_in_process (void)
{
    s_cluster_t cluster = { .client = NULL };
    s_cluster_start (&cluster);
    test_spread (&cluster);
    char keyed [60][65];
    test_hashing (&cluster, keyed, 60);
    test_prefer_local (&cluster);
    test_nested (&cluster);
    test_departure (&cluster, keyed, 60);
    s_cluster_stop (&cluster);
}

//  --------------------------------------------------------------------------
//  B. shoal-echo processes on loopback

//  A stream of calls by name from its own thread, a few in flight
typedef struct {
    shoal_node_t *node;
    int in_flight;              //  1..8
    bool whoami;                //  alternate echo and whoami
    int timeout;                //  ms per call
    int max_calls;
    int max_ms;
    atomic_bool stop;
    atomic_int done;
    atomic_int failed;
    int64_t worst_us;
    char error [400];           //  the first failure
    pthread_t thread;
} s_stream_t;

typedef struct {
    shoal_call_t *call;
    int64_t sequence;
    int64_t start;
    bool whoami;
} s_attempt_t;

static void
s_stream_fail (s_stream_t *self, const char *format, ...)
{
    if (atomic_fetch_add (&self->failed, 1) == 0) {
        va_list args;
        va_start (args, format);
        vsnprintf (self->error, sizeof (self->error), format, args);
        va_end (args);
    }
}

static void *
s_stream_run (void *arg)
{
    s_stream_t *self = (s_stream_t *) arg;
    shoal_client_t *client = shoal_client_new ();
    shoal_client_set_node (client, self->node);
    s_attempt_t attempts [8] = { { 0 } };
    int64_t end = zclock_mono () + self->max_ms;
    int64_t sent = 0;
    int pending = 0;
    while (true) {
        for (int index = 0; index < self->in_flight; index++) {
            if (attempts [index].call || atomic_load (&self->stop) || sent >= self->max_calls
                || zclock_mono () >= end)
                continue;
            s_attempt_t *attempt = &attempts [index];
            attempt->sequence = ++sent;
            attempt->whoami = self->whoami && sent % 2 == 0;
            attempt->start = zclock_usecs ();
            if (attempt->whoami)
                attempt->call = shoal_client_send (client, NULL, "echo", "whoami", NULL, 0,
                                                   self->timeout);
            else {
                shoal_body_t *body = shoal_body_pack ("{s:I}", "n", attempt->sequence);
                attempt->call = shoal_client_send (client, NULL, "echo", "echo",
                                                   shoal_body_data (body),
                                                   shoal_body_size (body), self->timeout);
                shoal_body_destroy (&body);
            }
            pending++;
        }
        if (pending == 0)
            break;
        shoal_call_t *call = shoal_client_wait_any (client, self->timeout + 1000);
        if (!call) {
            s_stream_fail (self, "wait_any returned nothing with %d calls pending", pending);
            break;
        }
        s_attempt_t *attempt = NULL;
        for (int index = 0; index < self->in_flight && !attempt; index++)
            if (attempts [index].call == call)
                attempt = &attempts [index];
        if (!attempt) {
            s_stream_fail (self, "wait_any returned a call we did not send");
            shoal_call_destroy (&call);
            continue;
        }
        int64_t took = zclock_usecs () - attempt->start;
        if (took > self->worst_us)
            self->worst_us = took;
        int64_t echoed = -1, pid = -1;
        const char *instance = NULL;
        bool right = attempt->whoami
            ? shoal_call_get (call, "{s:s, s:I}", "instance", &instance, "pid", &pid) == 0
                  && pid > 0
            : shoal_call_get (call, "{s:I}", "n", &echoed) == 0 && echoed == attempt->sequence;
        if (!right)
            s_stream_fail (self, "call %" PRId64 " (%s) after %d ms: %s: %s",
                           attempt->sequence, attempt->whoami ? "whoami" : "echo",
                           (int) (took / 1000), shoal_status_name (shoal_call_status (call)),
                           shoal_call_message (call));
        shoal_call_destroy (&attempt->call);
        pending--;
        atomic_fetch_add (&self->done, 1);
    }
    for (int index = 0; index < self->in_flight; index++)
        if (attempts [index].call) {
            s_stream_fail (self, "call %" PRId64 " never ended", attempts [index].sequence);
            shoal_call_destroy (&attempts [index].call);
        }
    shoal_client_destroy (&client);
    return NULL;
}

#define STREAMS 2

typedef struct {
    s_stream_t streams [STREAMS];
    int target;                 //  for s_streams_reached
} s_load_t;

static void
s_load_start (s_load_t *load, shoal_node_t *node, bool whoami, int timeout_ms)
{
    for (int index = 0; index < STREAMS; index++) {
        s_stream_t *stream = &load->streams [index];
        memset (stream, 0, sizeof (*stream));
        stream->node = node;
        stream->in_flight = 3;
        stream->whoami = whoami;
        stream->timeout = timeout_ms * s_slow;
        stream->max_calls = 100000;
        stream->max_ms = 15000 * s_slow;
        if (pthread_create (&stream->thread, NULL, s_stream_run, stream))
            tap_bail ("cannot start a thread");
    }
}

static int
s_load_done (s_load_t *load)
{
    int done = 0;
    for (int index = 0; index < STREAMS; index++)
        done += atomic_load (&load->streams [index].done);
    return done;
}

static bool
s_load_reached (void *arg)
{
    s_load_t *load = (s_load_t *) arg;
    return s_load_done (load) >= load->target;
}

//  Waits for N more calls to be done (so the load spans what just happened)
static void
s_load_more (s_load_t *load, int calls)
{
    load->target = s_load_done (load) + calls;
    tap_wait_until (s_load_reached, load, 5000 * s_slow);
}

//  Stops the streams; returns the failed calls, and the total and worst
static int
s_load_stop (s_load_t *load, int *done, int *worst_ms, const char **error)
{
    int failed = 0;
    int64_t worst = 0;
    *error = "";
    for (int index = 0; index < STREAMS; index++)
        atomic_store (&load->streams [index].stop, true);
    for (int index = 0; index < STREAMS; index++) {
        s_stream_t *stream = &load->streams [index];
        pthread_join (stream->thread, NULL);
        failed += atomic_load (&stream->failed);
        if (stream->worst_us > worst)
            worst = stream->worst_us;
        if (*stream->error && !**error)
            *error = stream->error;
    }
    *done = s_load_done (load);
    *worst_ms = (int) ((worst + 500) / 1000);
    return failed;
}

//  Spawns shoal-echo in CLUSTER and waits until NODE sees its instance up;
//  writes how long it took, from the spawn, into IN_VIEW. Bails if it fails.
static s_process_t *
s_start_echo (shoal_node_t *node, const char *cluster, int *in_view)
{
    s_process_t *process = s_spawn (cluster);
    if (!process)
        tap_bail ("cannot start shoal-echo (top_builddir=%s)", getenv ("top_builddir"));
    s_seek_t seek = { node, "echo", process->endpoint, 0 };
    if (!tap_wait_until (s_is_up, &seek, 3000 * s_slow)) {
        s_show_log (process);
        tap_bail ("shoal-echo %d (%s) never appeared in the view", process->number,
                  process->endpoint);
    }
    *in_view = (int) (zclock_mono () - process->spawned);
    tap_diag ("shoal-echo %d: endpoint printed %d ms after the spawn, in the view at %d ms "
              "(%+d ms from the print)", process->number,
              (int) (process->printed - process->spawned), *in_view,
              (int) (*in_view - (process->printed - process->spawned)));
    return process;
}

//  The instance id of PROCESS in NODE's view ("" if none)
static void
s_instance_of (shoal_node_t *node, s_process_t *process, char *instance)
{
    *instance = 0;
    s_find (node, "echo", process->endpoint, instance, NULL);
}

static void
test_processes (void)
{
    char cluster [64];
    snprintf (cluster, sizeof (cluster), "b-%d", (int) getpid ());
    shoal_node_t *node = shoal_node_new (cluster);
    if (!node || shoal_node_start (node))
        tap_bail ("cannot start a node of cluster %s", cluster);
    shoal_client_t *client = shoal_client_new ();
    shoal_client_set_node (client, node);

    //  Three processes join, one by one
    s_process_t *processes [3];
    int worst_join = 0, worst_after_print = -1000;
    for (int index = 0; index < 3; index++) {
        int in_view;
        processes [index] = s_start_echo (node, cluster, &in_view);
        int after_print = in_view - (int) (processes [index]->printed
                                           - processes [index]->spawned);
        if (in_view > worst_join)
            worst_join = in_view;
        if (after_print > worst_after_print)
            worst_after_print = after_print;
    }
    //  An echo announces its instance before it prints the endpoint; its
    //  node greets ours as soon as it is connected, not at the next beat
    tap_ok (shoal_node_wait_for (node, "echo", 3, 2000 * s_slow) && s_count (node, "echo") == 3
                && worst_after_print < 100 * s_slow,
            "B: 3 shoal-echo processes are in the view, each within %d ms of its spawn and "
            "%+d ms of printing its endpoint", worst_join, worst_after_print);

    //  Calls by name reach every process; whoami says which
    char instances [3][65], node_ids [3][65];
    for (int index = 0; index < 3; index++)
        s_find (node, "echo", processes [index]->endpoint, instances [index], node_ids [index]);
    int hits [3] = { 0 }, good = 0, matched = 0;
    for (int call_index = 0; call_index < 30; call_index++) {
        shoal_call_t *call = shoal_client_call (client, NULL, "echo", "whoami", NULL, 0,
                                                2000 * s_slow);
        const char *instance, *from;
        int64_t pid;
        if (shoal_call_get (call, "{s:s, s:s, s:I}", "instance", &instance, "node", &from,
                            "pid", &pid) == 0) {
            good++;
            for (int index = 0; index < 3; index++)
                if (pid == processes [index]->number) {
                    hits [index]++;
                    matched += streq (instance, instances [index])
                            && streq (from, node_ids [index]);
                }
        }
        shoal_call_destroy (&call);
    }
    tap_ok (good == 30 && matched == 30 && hits [0] && hits [1] && hits [2],
            "B: 30 calls by name reach all 3 processes (%d/%d/%d), each answering as the "
            "instance and node the view gives for its endpoint", hits [0], hits [1], hits [2]);

    //  SIGKILL one in the middle of a stream of idempotent calls
    s_load_t load;
    s_load_start (&load, node, false, 2000);
    s_load_more (&load, 200);
    s_seek_t seek = { node, "echo", instances [0], 0 };
    int killed_at = s_load_done (&load);
    s_signal (processes [0], SIGKILL);
    int detected = s_time_until (s_is_gone, &seek, 3000 * s_slow);
    tap_wait_until (s_exited, processes [0], 2000);
    s_load_more (&load, 200);
    int done, worst;
    const char *error;
    int failed = s_load_stop (&load, &done, &worst, &error);
    tap_diag ("SIGKILL: instance left the view %d ms after the kill; %d calls, %d failed, "
              "worst %d ms", detected, done, failed, worst);
    tap_ok (detected >= 0 && detected < 600 * s_slow && processes [0]->status == 128 + SIGKILL,
            "B: a SIGKILLed process leaves the view in %d ms (exit %d)", detected,
            processes [0]->status);
    tap_ok (failed == 0 && done >= 400,
            "B: %d calls by name around the kill (at call %d), %d failed, worst %d ms %s", done,
            killed_at, failed, worst, error);
    int in_view;
    processes [0] = s_start_echo (node, cluster, &in_view);
    s_instance_of (node, processes [0], instances [0]);

    //  SIGSTOP another: it leaves the view; calls go on; SIGCONT: it is back.
    //  A call it had taken waits for it to leave the view (the expiry, 1 s,
    //  and up to a beat), then goes elsewhere: hence a longer deadline
    s_load_start (&load, node, false, 3000);
    s_load_more (&load, 200);
    seek.key = instances [1];
    s_signal (processes [1], SIGSTOP);
    int frozen = s_time_until (s_is_gone, &seek, 4000 * s_slow);
    s_load_more (&load, 200);
    s_signal (processes [1], SIGCONT);
    int back = s_time_until (s_is_up, &seek, 4000 * s_slow);
    s_load_more (&load, 200);
    failed = s_load_stop (&load, &done, &worst, &error);
    tap_diag ("SIGSTOP: left the view after %d ms; SIGCONT: back after %d ms; %d calls, "
              "%d failed, worst %d ms", frozen, back, done, failed, worst);
    tap_ok (frozen >= 0 && frozen < 2000 * s_slow,
            "B: a SIGSTOPped process leaves the view in %d ms", frozen);
    tap_ok (back >= 0 && back < 3000 * s_slow,
            "B: after SIGCONT it is back in the view in %d ms", back);
    tap_ok (failed == 0 && done >= 600,
            "B: %d calls by name meanwhile, %d failed, worst %d ms %s", done, failed, worst,
            error);

    //  Rolling restart under load: each process drains on SIGTERM, exits 0,
    //  and a replacement joins before the next one goes
    s_load_start (&load, node, true, 2000);
    s_load_more (&load, 200);
    int clean = 0, joined = 0, slowest_exit = 0;
    for (int index = 0; index < 3; index++) {
        s_process_t *old = processes [index];
        s_seek_t leaving = { node, "echo", instances [index], 0 };
        int64_t start = zclock_mono ();
        s_signal (old, SIGTERM);
        bool exited = tap_wait_until (s_exited, old, 8000 * s_slow);
        int took = (int) (zclock_mono () - start);
        if (took > slowest_exit)
            slowest_exit = took;
        bool gone = tap_wait_until (s_is_gone, &leaving, 2000 * s_slow);
        if (exited && old->status == 0 && gone)
            clean++;
        else {
            tap_diag ("process %d: exited %d status %d, left the view %d", old->number, exited,
                      old->status, gone);
            s_show_log (old);
        }
        processes [index] = s_start_echo (node, cluster, &in_view);
        s_instance_of (node, processes [index], instances [index]);
        joined += *instances [index] != 0;
        s_load_more (&load, 100);
    }
    failed = s_load_stop (&load, &done, &worst, &error);
    tap_diag ("rolling restart: %d calls (echo and whoami), %d failed, worst %d ms; slowest "
              "drain and exit %d ms", done, failed, worst, slowest_exit);
    tap_ok (clean == 3, "B: rolling restart: each of 3 processes drains on SIGTERM, exits 0 "
                        "and leaves the view (%d)", clean);
    tap_ok (joined == 3 && s_count (node, "echo") == 3,
            "B: rolling restart: each replacement joins the view before the next goes (%d)",
            joined);
    tap_ok (failed == 0 && done >= 500,
            "B: rolling restart under load: %d calls by name, %d failed, worst %d ms %s", done,
            failed, worst, error);

    //  The rest stop cleanly
    int stopped = 0;
    for (int index = 0; index < 3; index++)
        s_signal (processes [index], SIGTERM);
    for (int index = 0; index < 3; index++)
        stopped += tap_wait_until (s_exited, processes [index], 8000 * s_slow)
                && processes [index]->status == 0;
    seek.count = 0;
    bool empty = tap_wait_until (s_count_is, &seek, 2000 * s_slow);
    tap_ok (stopped == 3 && empty,
            "B: SIGTERM to all 3: each exits 0 and the view is empty (%d)", stopped);
    shoal_client_destroy (&client);
    shoal_node_destroy (&node);
}

//  Two clusters in the same runtime folder do not see each other
static void
test_two_clusters (void)
{
    char names [2][64];
    shoal_node_t *nodes [2];
    s_process_t *processes [2];
    for (int index = 0; index < 2; index++) {
        snprintf (names [index], sizeof (names [index]), "%c-%d", index ? 'y' : 'x',
                  (int) getpid ());
        nodes [index] = shoal_node_new (names [index]);
        if (!nodes [index] || shoal_node_start (nodes [index]))
            tap_bail ("cannot start a node of cluster %s", names [index]);
    }
    for (int index = 0; index < 2; index++) {
        int in_view;
        processes [index] = s_start_echo (nodes [index], names [index], &in_view);
    }
    //  Both are up and seen by their own cluster: each view holds its own
    for (int index = 0; index < 2; index++) {
        shoal_view_t *view = shoal_node_view (nodes [index]);
        size_t count;
        const shoal_instance_info_t *const *instances = shoal_view_service (view, "echo", &count);
        bool own = count == 1 && streq (instances [0]->endpoint, processes [index]->endpoint);
        tap_ok (own && shoal_view_nodes (view) == 2 && shoal_view_size (view) == 1,
                "B: cluster %s: its node sees only its own echo (%zu instances, %zu nodes)",
                names [index], count, shoal_view_nodes (view));
        shoal_view_destroy (&view);
    }
    shoal_client_t *client = shoal_client_new ();
    int right = 0;
    for (int index = 0; index < 2; index++) {
        shoal_client_set_node (client, nodes [index]);
        for (int call_index = 0; call_index < 5; call_index++) {
            shoal_call_t *call = shoal_client_call (client, NULL, "echo", "whoami", NULL, 0,
                                                    2000 * s_slow);
            int64_t pid = 0;
            shoal_call_get (call, "{s:I}", "pid", &pid);
            right += pid == processes [index]->number;
            shoal_call_destroy (&call);
        }
    }
    shoal_client_destroy (&client);
    tap_ok (right == 10, "B: calls by name in each cluster reach its own process (%d/10)", right);
    for (int index = 0; index < 2; index++) {
        s_signal (processes [index], SIGTERM);
        tap_wait_until (s_exited, processes [index], 8000 * s_slow);
        shoal_node_destroy (&nodes [index]);
    }
}

int
main (void)
{
    //  Before any thread starts: see s_watchdog
    sigemptyset (&s_watched);
    sigaddset (&s_watched, SIGINT);
    sigaddset (&s_watched, SIGTERM);
    sigaddset (&s_watched, SIGHUP);
    sigaddset (&s_watched, SIGUSR1);
    pthread_sigmask (SIG_BLOCK, &s_watched, NULL);
    signal (SIGPIPE, SIG_IGN);
    const char *preload = getenv ("LD_PRELOAD");
    if (getenv ("SHOAL_UNDER_VALGRIND") || (preload && strstr (preload, "vgpreload")))
        s_slow = 10;
    //  Same host only: nothing configured from outside, a folder of our own
    unsetenv ("SHOAL_SEEDS");
    unsetenv ("SHOAL_INTERFACE");
    unsetenv ("SHOAL_HOST");
    unsetenv ("SHOAL_CLUSTER");
    if (!mkdtemp (s_runtime))
        tap_bail ("cannot make a temporary folder");
    s_runtime_made = true;
    setenv ("SHOAL_RUNTIME_DIR", s_runtime, 1);
    zsys_init ();
    atexit (s_at_exit);             //  runs before CZMQ's own handler
    s_watch_seconds = 55 * s_slow;
    pthread_t watchdog;
    pthread_create (&watchdog, NULL, s_watchdog, NULL);

    int64_t start = zclock_mono ();
    test_in_process ();
    tap_diag ("scenario A took %d ms", (int) (zclock_mono () - start));
    start = zclock_mono ();
    test_processes ();
    test_two_clusters ();
    tap_diag ("scenario B took %d ms", (int) (zclock_mono () - start));

    pthread_kill (watchdog, SIGUSR1);
    pthread_join (watchdog, NULL);
    s_cleanup ();
    return tap_exit_status ();
}
