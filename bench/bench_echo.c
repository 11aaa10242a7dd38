/*  bench-echo - what shoal costs on top of raw ZeroMQ, measured in one run.

    The same small msgpack request (the 44-byte {"sku", "qty", "note"} map)
    is echoed back by:
        raw     a ROUTER that sends [identity, body] back, and a DEALER that
                calls it: no framework at all, the limit;
        shoal   a shoal service with one `echo` method (one instance), called
                through shoal_client at its endpoint;
        name    (tcp only) the same instance called by name: the server joins
                a private cluster with a node of its own, this process joins
                it too, and the client calls with a NULL endpoint through
                shoal_client_set_node: view, balancer, failover bookkeeping.
    Both over TCP loopback to a server in a separate process (fork), and both
    in-process over inproc:// (a ROUTER thread; the shoal service started in
    this process and called on shoal_service_inproc).

    Every scenario runs with 1, 16 and 128 calls in flight. With 1 in flight
    each call is timed (median, p99) and the throughput kept; with more, a
    client keeps N in flight by sending one more call for each reply. Each run
    stops after -n calls or -d seconds, whichever comes first; each scenario
    is warmed up, then run -r times interleaved (raw, shoal, raw, shoal, ...),
    because a two-core machine is noisy: each side's median is reported, and
    shoal/raw is the median of the ratios of each raw run to the shoal run
    after it. By name is compared with by endpoint the same way (each shoal
    run with the name run right after it). Every reply is checked (status
    OK, body equal to what was sent): a benchmark that does not check can
    measure a bug.

        bench-echo                     full run, table on stdout
        bench-echo --quick --json      CI smoke run, JSON on stdout
        bench-echo --pin 0 -n 200000   steady numbers on a small VM
        bench-echo --transport tcp --impl shoal --inflight 1 -n 50000
                                       one case only, for a profiler
        bench-echo --impl raw --raw-frames 2
                                       raw shaped as shoal's first wire format
                                       (header and body in two frames)
        bench-echo --transport tcp --impl shoal,name
                                       by endpoint against by name only

    Exit code: 0 when every reply was right (targets are reported, not
    enforced, unless --strict: then 3 if one is missed), 1 on an error, 2 on
    a bad command line. Logs and errors go to stderr. docs/performance.md has
    the numbers and what they mean.                                          */
#include <czmq.h>
#include <msgpack.h>
#include <zmq.h>
#include <dirent.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sched.h>
#include <sys/wait.h>
#include "shoal.h"

//  The targets: shoal's share of the raw limit
#define S_TARGET_THROUGHPUT 0.80 //  shoal/raw calls per second, N > 1 in flight
#define S_TARGET_LATENCY    1.20 //  shoal/raw median latency, 1 in flight
//  A call by name should cost no more than a call by endpoint: by-name over
//  by-endpoint, with 5 % allowed for what paired runs differ by anyway
#define S_TARGET_NAME_THROUGHPUT 0.95 //  name/endpoint calls per second
#define S_TARGET_NAME_LATENCY    1.05 //  name/endpoint median latency

//  Runs of one side whose slowest is this much slower than the fastest are
//  reported as unsteady
#define S_UNSTEADY 1.25
//  Runs per scenario and side, and entries in --inflight, at most
#define S_MAX_REPS     15
#define S_MAX_INFLIGHT 8
//  A reply later than this (ms) is an error
#define S_CALL_TIMEOUT 5000
//  Time (ms) for a server process to start or stop: generous, since it may
//  run under valgrind
#define S_CHILD_TIMEOUT 30000

//  The sides: raw ZeroMQ, shoal by endpoint, shoal by name (tcp only)
typedef enum { S_RAW = 0, S_SHOAL = 1, S_NAME = 2 } s_impl_t;
#define S_IMPLS 3
static const char *s_impl_name[] = { "raw", "shoal", "name" };

typedef struct {
    size_t requests; //  -n: calls per run, at most
    double seconds;  //  -d: seconds per run, at most
    size_t warmup;   //  -w: calls before the first run
    int reps;        //  -r: runs per scenario and side
    bool json;
    bool strict;
    bool verbose;
    int raw_frames;     //  --raw-frames: 1, or 2 to send messages shaped as shoal's
                        //  first wire format (shoal now sends one frame)
    int pin;            //  --pin: the one CPU every process and thread runs on, or -1
    bool transport[2];  //  tcp, inproc
    bool impl[S_IMPLS]; //  raw, shoal, name
    int inflight[S_MAX_INFLIGHT];
    size_t inflight_count;
} s_options_t;

//  One run of one side
typedef struct {
    size_t calls;
    double seconds;
    double calls_per_s;
    double median_us; //  1 in flight only
    double p99_us;
} s_sample_t;

//  One scenario: a transport and a number of calls in flight
typedef struct {
    const char *transport;
    int inflight;
    s_sample_t runs[S_IMPLS][S_MAX_REPS];
    s_sample_t median[S_IMPLS];
    bool ran[S_IMPLS]; //  the sides this scenario ran (by name: tcp only)
    //  Primary metric's largest over smallest run, per side: how steady the
    //  machine was
    double spread[S_IMPLS];
    //  shoal/raw, when both sides ran: the median over the runs of the ratio
    //  of each raw run to the shoal run right after it. A pair is measured
    //  close in time, so a machine that changes pace part-way through spoils
    //  one pair, not the verdict (medians of each side taken apart would mix
    //  a fast raw run with a slow shoal run).
    bool judged;
    double ratio_calls;
    double ratio_median;
    double ratio_p99;
    double ratio; //  the one the target is about
    bool pass;
    //  name/endpoint (shoal by name over shoal by endpoint), paired the same
    //  way: each shoal run and the name run right after it
    bool name_judged;
    double name_ratio_calls;
    double name_ratio_median;
    double name_ratio_p99;
    double name_ratio;
    bool name_pass;
} s_row_t;

//  What a run talks to
typedef struct {
    const char *transport;
    void *dealer;           //  raw: a connected DEALER
    shoal_client_t *client; //  shoal: a client of its own
    const char *endpoint;   //  shoal: the instance's endpoint; NULL: by name
} s_target_t;

//  A server process, and the pipe that keeps it alive: when the parent
//  closes its end (or dies), the child sees end-of-file and stops cleanly
typedef struct {
    const char *name;
    pid_t pid;
    int control; //  parent's write end, -1 once closed
    char endpoint[512];
} s_child_t;

typedef struct {
    s_options_t options;
    char error[512];         //  why the run stopped
    unsigned char body[256]; //  the request, sent by raw and shoal alike
    size_t body_size;
    //  With --raw-frames 2, raw sends this before the body, in a frame of its
    //  own: a request header of shoal's (as the bytes go, not as it is made)
    unsigned char header[128];
    size_t header_size;
    int64_t *latencies;    //  one per call of a 1-in-flight run
    s_child_t children[2]; //  raw and shoal servers
    size_t child_count;
    //  Calls by name: a cluster of two nodes (the shoal server's, and this
    //  process's), private to this run: a unique name, and a rendezvous
    //  folder of its own, so no other cluster on the host is seen or touched
    char cluster[64];    //  empty: no calls by name
    char rendezvous[64]; //  the folder, made with mkdtemp
} s_bench_t;

//  --------------------------------------------------------------------------
//  Small helpers

//  Monotonic nanoseconds. Not zclock_usecs: a loopback round trip is a few
//  tens of microseconds, so microsecond ticks would blur the percentiles.
static int64_t
s_now_ns (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int
s_fail (s_bench_t *self, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    vsnprintf (self->error, sizeof (self->error), format, args);
    va_end (args);
    return -1;
}

static int
s_compare_int64 (const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int
s_compare_double (const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double
s_median_of (double *values, size_t count)
{
    qsort (values, count, sizeof (double), s_compare_double);
    return count % 2 ? values[count / 2]
                     : (values[count / 2 - 1] + values[count / 2]) / 2;
}

//  --------------------------------------------------------------------------
//  The servers

//  Echoes one message, whatever its frames, back to where it came from.
//  Returns false when nothing is waiting. The frames are passed on as they
//  are: no copy, no parsing, the least a server can do.
static bool
s_raw_echo_one (void *router)
{
    bool first = true;
    bool more = true;
    while (more) {
        zmq_msg_t frame;
        zmq_msg_init (&frame);
        if (zmq_msg_recv (&frame, router, first ? ZMQ_DONTWAIT : 0) == -1) {
            zmq_msg_close (&frame);
            return !first;
        }
        first = false;
        more = zmq_msg_more (&frame);
        if (zmq_msg_send (&frame, router, more ? ZMQ_SNDMORE : 0) == -1)
            zmq_msg_close (&frame);
    }
    return true;
}

//  Serves ROUTER until CONTROL is readable (end-of-file on the child's
//  pipe, or any message on the in-process thread's pipe). Returns 0, or -1
//  if polling fails.
static int
s_raw_serve (void *router, zmq_pollitem_t control)
{
    zmq_pollitem_t items[] = { control, { router, 0, ZMQ_POLLIN, 0 } };
    while (true) {
        if (zmq_poll (items, 2, -1) == -1) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (items[0].revents)
            return 0;
        if (items[1].revents & ZMQ_POLLIN)
            while (s_raw_echo_one (router))
                ;
    }
}

//  The shoal side: the echo method as any user would write it
static void
s_echo (shoal_request_t *request, void *state)
{
    size_t size;
    const void *body = shoal_request_body (request, &size);
    shoal_request_reply_raw (request, body, size);
}

//  A running echo service with one instance on tcp://127.0.0.1:*,
//  announced through NODE if not NULL; or NULL
static shoal_service_t *
s_echo_service_new (shoal_node_t *node)
{
    shoal_service_t *service = shoal_service_new ("echo", "1.0.0");
    if (!service)
        return NULL;
    shoal_service_bind (service, "tcp://127.0.0.1:*");
    if (node)
        shoal_service_set_node (service, node);
    if (shoal_service_method (service, "echo", s_echo, SHOAL_IDEMPOTENT,
                              "Replies with the request body unchanged")
        || shoal_service_start (service, 1))
        shoal_service_destroy (&service);
    return service;
}

//  Writes one line to the parent: the endpoint, or "error: why"
static void
s_report (int fd, const char *format, ...)
{
    char line[512];
    va_list args;
    va_start (args, format);
    int size = vsnprintf (line, sizeof (line) - 1, format, args);
    va_end (args);
    if (size < 0)
        size = 0;
    if (size > (int)sizeof (line) - 2)
        size = (int)sizeof (line) - 2;
    line[size++] = '\n';
    ssize_t rc = write (fd, line, (size_t)size);
    (void)rc;
    close (fd);
}

//  Waits until FD is readable: the parent closed its end, or died
static void
s_wait_readable (int fd)
{
    struct pollfd item = { fd, POLLIN, 0 };
    while (poll (&item, 1, -1) == -1 && errno == EINTR)
        ;
}

static int
s_raw_child (s_bench_t *self, int report, int control)
{
    void *context = zmq_ctx_new ();
    void *router = context ? zmq_socket (context, ZMQ_ROUTER) : NULL;
    if (!router) {
        s_report (report, "error: raw server cannot make a socket: %s",
                  zmq_strerror (errno));
        if (context)
            zmq_ctx_term (context);
        return 1;
    }
    int linger = 0;
    zmq_setsockopt (router, ZMQ_LINGER, &linger, sizeof (linger));
    char endpoint[256];
    size_t size = sizeof (endpoint);
    int rc = 1;
    if (zmq_bind (router, "tcp://127.0.0.1:*") == 0
        && zmq_getsockopt (router, ZMQ_LAST_ENDPOINT, endpoint, &size) == 0) {
        s_report (report, "%s", endpoint);
        zmq_pollitem_t item = { NULL, control, ZMQ_POLLIN, 0 };
        rc = s_raw_serve (router, item) == 0 ? 0 : 1;
    } else
        s_report (report, "error: raw server cannot bind: %s", zmq_strerror (errno));
    zmq_close (router);
    zmq_ctx_term (context);
    return rc;
}

//  The shoal server. For calls by name it joins the run's cluster with a
//  node of its own, which announces the instance: the same instance, at the
//  same endpoint, is then called both ways.
static int
s_shoal_child (s_bench_t *self, int report, int control)
{
    zsys_set_logstream (stderr); //  (this also starts CZMQ)
    shoal_node_t *node = NULL;
    if (*self->cluster) {
        node = shoal_node_new (self->cluster);
        if (node)
            shoal_node_set_rendezvous (node, self->rendezvous);
        if (!node || shoal_node_start (node)) {
            s_report (report, "error: the shoal server cannot join cluster %s",
                      self->cluster);
            shoal_node_destroy (&node);
            return 1;
        }
    }
    shoal_service_t *service = s_echo_service_new (node);
    if (!service) {
        s_report (report, "error: the shoal echo service did not start");
        shoal_node_destroy (&node);
        return 1;
    }
    s_report (report, "%s", shoal_service_endpoint (service, 0));
    s_wait_readable (control);
    shoal_service_destroy (&service);
    shoal_node_destroy (&node);
    return 0;
}

//  Forks a server process that runs SERVE, and reads the endpoint it
//  reports. Returns 0, or -1 with the error set. Must run before this
//  process makes any ZeroMQ context: a forked child must not inherit one.
static int
s_child_start (s_bench_t *self, const char *name, int (*serve) (s_bench_t *, int, int))
{
    s_child_t *child = &self->children[self->child_count];
    child->name = name;
    child->control = -1;
    int report[2], control[2];
    if (pipe (report))
        return s_fail (self, "pipe: %s", strerror (errno));
    if (pipe (control)) {
        close (report[0]);
        close (report[1]);
        return s_fail (self, "pipe: %s", strerror (errno));
    }
    pid_t parent = getpid ();
    fflush (NULL);
    pid_t pid = fork ();
    if (pid == -1) {
        close (report[0]);
        close (report[1]);
        close (control[0]);
        close (control[1]);
        return s_fail (self, "fork: %s", strerror (errno));
    }
    if (pid == 0) {
        //  The child: die with the parent whatever happens to it, and hold
        //  no other child's pipe open, or that child would never see EOF
        prctl (PR_SET_PDEATHSIG, SIGKILL);
        if (getppid () != parent)
            _exit (1);
        close (report[0]);
        close (control[1]);
        for (size_t index = 0; index < self->child_count; index++)
            close (self->children[index].control);
        exit (serve (self, report[1], control[0])); //  exit: CZMQ checks for leaks
    }
    close (report[1]);
    close (control[0]);
    child->pid = pid;
    child->control = control[1];
    self->child_count++;

    //  The first line the child writes is its endpoint
    char line[512];
    size_t size = 0;
    int64_t deadline = zclock_mono () + S_CHILD_TIMEOUT;
    while (size < sizeof (line) - 1 && !memchr (line, '\n', size)) {
        int64_t left = deadline - zclock_mono ();
        struct pollfd item = { report[0], POLLIN, 0 };
        int rc = left > 0 ? poll (&item, 1, (int)left) : 0;
        if (rc == -1 && errno == EINTR)
            continue;
        if (rc <= 0)
            break;
        ssize_t got = read (report[0], line + size, sizeof (line) - 1 - size);
        if (got <= 0)
            break;
        size += (size_t)got;
    }
    close (report[0]);
    line[size] = 0;
    char *newline = strchr (line, '\n');
    if (!newline)
        return s_fail (self, "%s server: no endpoint reported within %d ms", name,
                       S_CHILD_TIMEOUT);
    *newline = 0;
    if (strncmp (line, "tcp://", 6) != 0)
        return s_fail (self, "%s server: %s", name, line);
    snprintf (child->endpoint, sizeof (child->endpoint), "%s", line);
    return 0;
}

//  Stops every server process and reaps it: closes its pipe, waits for a
//  clean exit, kills it if it does not come. Returns 0 if all exited with
//  status 0, else -1 (reported on stderr). Safe to call more than once.
static int
s_children_stop (s_bench_t *self)
{
    int rc = 0;
    for (size_t index = 0; index < self->child_count; index++)
        if (self->children[index].control != -1) {
            close (self->children[index].control);
            self->children[index].control = -1;
        }
    for (size_t index = 0; index < self->child_count; index++) {
        s_child_t *child = &self->children[index];
        if (child->pid <= 0)
            continue;
        int status = 0;
        int64_t deadline = zclock_mono () + S_CHILD_TIMEOUT;
        pid_t done;
        //  A bounded wait for the child's exit, checked every 10 ms
        while ((done = waitpid (child->pid, &status, WNOHANG)) == 0
               && zclock_mono () < deadline)
            poll (NULL, 0, 10);
        if (done == 0) {
            fprintf (stderr, "bench-echo: %s server did not stop; killing it\n",
                     child->name);
            kill (child->pid, SIGKILL);
            waitpid (child->pid, &status, 0);
            rc = -1;
        } else if (done == -1)
            rc = -1;
        else if (!WIFEXITED (status) || WEXITSTATUS (status) != 0) {
            fprintf (stderr, "bench-echo: %s server ended badly (%s %d)\n", child->name,
                     WIFEXITED (status) ? "exit status" : "signal",
                     WIFEXITED (status) ? WEXITSTATUS (status) : WTERMSIG (status));
            rc = -1;
        }
        child->pid = 0;
    }
    return rc;
}

//  --------------------------------------------------------------------------
//  The private cluster of the calls by name

//  Names the cluster (unique: pid and clock) and makes its rendezvous
//  folder. Returns 0, or -1 with the error set. Before the fork: the shoal
//  server joins the same cluster in the same folder.
static int
s_cluster_make (s_bench_t *self)
{
    struct timespec now;
    clock_gettime (CLOCK_REALTIME, &now);
    snprintf (self->cluster, sizeof (self->cluster), "bench-echo-%d-%lx", (int)getpid (),
              (unsigned long)(now.tv_nsec ^ (now.tv_sec << 20)));
    snprintf (self->rendezvous, sizeof (self->rendezvous), "/tmp/bench-echo-XXXXXX");
    if (!mkdtemp (self->rendezvous)) {
        *self->rendezvous = 0;
        *self->cluster = 0;
        return s_fail (self, "cannot make a rendezvous folder in /tmp: %s",
                       strerror (errno));
    }
    return 0;
}

//  Removes the rendezvous folder: the cluster's folder in it, and any file
//  a node left there (a node removes its own when it leaves cleanly)
static void
s_cluster_remove (s_bench_t *self)
{
    if (!*self->rendezvous)
        return;
    char folder[160];
    snprintf (folder, sizeof (folder), "%s/%s", self->rendezvous, self->cluster);
    DIR *directory = opendir (folder);
    if (directory) {
        struct dirent *entry;
        while ((entry = readdir (directory)))
            if (!streq (entry->d_name, ".") && !streq (entry->d_name, ".."))
                unlinkat (dirfd (directory), entry->d_name, 0);
        closedir (directory);
        rmdir (folder);
    }
    if (rmdir (self->rendezvous))
        fprintf (stderr, "bench-echo: cannot remove %s: %s\n", self->rendezvous,
                 strerror (errno));
    *self->rendezvous = 0;
}

//  This process's node in the cluster, once the shoal server's instance
//  (at ENDPOINT) is in its view; NULL with the error set
static shoal_node_t *
s_cluster_join (s_bench_t *self, const char *endpoint)
{
    shoal_node_t *node = shoal_node_new (self->cluster);
    if (!node) {
        s_fail (self, "cannot make a node of cluster %s", self->cluster);
        return NULL;
    }
    shoal_node_set_rendezvous (node, self->rendezvous);
    if (shoal_node_start (node)) {
        s_fail (self, "cannot join cluster %s", self->cluster);
        shoal_node_destroy (&node);
        return NULL;
    }
    if (!shoal_node_wait_for (node, "echo", 1, S_CHILD_TIMEOUT)) {
        s_fail (self,
                "by name: the shoal server's instance did not show in the view "
                "within %d ms",
                S_CHILD_TIMEOUT);
        shoal_node_destroy (&node);
        return NULL;
    }
    //  The instance called by name must be the one called by endpoint
    shoal_view_t *view = shoal_node_view (node);
    size_t count = 0;
    const shoal_instance_info_t *const *instances
        = shoal_view_service (view, "echo", &count);
    bool same = count == 1 && streq (instances[0]->endpoint, endpoint);
    if (!same)
        s_fail (self, "by name: the view has %zu echo instance(s), %s, not the one at %s",
                count, count ? instances[0]->endpoint : "none", endpoint);
    shoal_view_destroy (&view);
    if (!same)
        shoal_node_destroy (&node);
    return node;
}

//  The in-process raw server: a thread with a ROUTER, stopped by a message
//  on a PAIR pipe
typedef struct {
    void *router;
    void *pipe;
    int rc;
} s_raw_thread_t;

static void *
s_raw_thread (void *args)
{
    s_raw_thread_t *self = (s_raw_thread_t *)args;
    zmq_pollitem_t item = { self->pipe, 0, ZMQ_POLLIN, 0 };
    self->rc = s_raw_serve (self->router, item);
    return NULL;
}

//  --------------------------------------------------------------------------
//  The clients: one call, checked

static int
s_raw_send (s_bench_t *self, s_target_t *target)
{
    if ((self->options.raw_frames == 2
         && zmq_send (target->dealer, self->header, self->header_size, ZMQ_SNDMORE) == -1)
        || zmq_send (target->dealer, self->body, self->body_size, 0) == -1)
        return s_fail (self, "raw %s: send: %s", target->transport, zmq_strerror (errno));
    return 0;
}

//  Receives one reply and checks that it is what was sent, frame by frame
static int
s_raw_receive (s_bench_t *self, s_target_t *target)
{
    int frames = self->options.raw_frames;
    for (int index = 0; index < frames; index++) {
        const void *expected = index + 1 < frames ? self->header : self->body;
        size_t expected_size = index + 1 < frames ? self->header_size : self->body_size;
        zmq_msg_t reply;
        zmq_msg_init (&reply);
        if (zmq_msg_recv (&reply, target->dealer, 0) == -1) {
            int error = errno;
            zmq_msg_close (&reply);
            return s_fail (self, "raw %s: %s", target->transport,
                           error == EAGAIN ? "no reply within the timeout"
                                           : zmq_strerror (error));
        }
        bool right = zmq_msg_more (&reply) == (index + 1 < frames)
                     && zmq_msg_size (&reply) == expected_size
                     && memcmp (zmq_msg_data (&reply), expected, expected_size) == 0;
        size_t size = zmq_msg_size (&reply);
        zmq_msg_close (&reply);
        if (!right)
            return s_fail (self, "raw %s: wrong reply (frame %d: %zu bytes)",
                           target->transport, index + 1, size);
    }
    return 0;
}

//  Checks a finished shoal call, and destroys it
static int
s_shoal_check (s_bench_t *self, s_target_t *target, shoal_call_t **call_p)
{
    shoal_call_t *call = *call_p;
    shoal_status_t status = shoal_call_status (call);
    size_t size = 0;
    const void *body = shoal_call_body (call, &size);
    int rc = 0;
    if (status != SHOAL_OK)
        rc = s_fail (self, "shoal %s: call failed: %s: %s", target->transport,
                     shoal_status_name (status), shoal_call_message (call));
    else if (size != self->body_size || memcmp (body, self->body, size) != 0)
        rc = s_fail (self, "shoal %s: wrong reply body (%zu bytes)", target->transport,
                     size);
    shoal_call_destroy (call_p);
    return rc;
}

//  Sends one call; shoal_client_wait_any hands it back when it is done.
//  A call that is done already could not be sent (the server is gone):
//  that is an error, reported at once rather than after the others.
static int
s_shoal_send (s_bench_t *self, s_target_t *target)
{
    shoal_call_t *call
        = shoal_client_send (target->client, target->endpoint, "echo", "echo", self->body,
                             self->body_size, S_CALL_TIMEOUT);
    if (!shoal_call_done (call))
        return 0;
    if (s_shoal_check (self, target, &call) == 0)
        s_fail (self, "shoal %s: a call was done before it was sent", target->transport);
    return -1;
}

//  --------------------------------------------------------------------------
//  One run: REQUESTS calls at most, SECONDS at most, INFLIGHT in flight

static int
s_run_one_in_flight (s_bench_t *self, s_target_t *target, s_impl_t impl, size_t requests,
                     int64_t end, size_t *calls)
{
    size_t count = 0;
    int rc = 0;
    while (rc == 0 && count < requests && !zsys_interrupted) {
        int64_t start = s_now_ns ();
        if (start >= end)
            break;
        if (impl == S_RAW) {
            rc = s_raw_send (self, target) || s_raw_receive (self, target) ? -1 : 0;
            self->latencies[count++] = s_now_ns () - start;
        } else {
            shoal_call_t *call
                = shoal_client_call (target->client, target->endpoint, "echo", "echo",
                                     self->body, self->body_size, S_CALL_TIMEOUT);
            self->latencies[count++] = s_now_ns () - start;
            rc = s_shoal_check (self, target, &call);
        }
    }
    *calls = count;
    return rc;
}

//  Keeps INFLIGHT calls going: sends that many, then one more per reply
//  until the count or the time is up, then takes the remaining replies
static int
s_run_many_in_flight (s_bench_t *self, s_target_t *target, s_impl_t impl, int inflight,
                      size_t requests, int64_t end, size_t *calls)
{
    size_t sent = 0, received = 0;
    bool expired = false;
    int rc = 0;
    while (sent < (size_t)inflight && sent < requests) {
        rc = impl == S_RAW ? s_raw_send (self, target) : s_shoal_send (self, target);
        if (rc)
            break;
        sent++;
    }
    while (rc == 0 && received < sent) {
        if (impl == S_RAW)
            rc = s_raw_receive (self, target);
        else {
            shoal_call_t *call = shoal_client_wait_any (target->client, S_CALL_TIMEOUT);
            if (!call)
                rc = s_fail (self, "shoal %s: no reply within %d ms", target->transport,
                             S_CALL_TIMEOUT);
            else
                rc = s_shoal_check (self, target, &call);
        }
        if (rc)
            break;
        received++;
        //  The clock is read every 16 replies: at a million calls a second
        //  a read per reply (20 ns here) would be a cost of the benchmark
        if ((received & 15) == 0 && s_now_ns () >= end)
            expired = true;
        if (sent < requests && !expired && !zsys_interrupted) {
            rc = impl == S_RAW ? s_raw_send (self, target) : s_shoal_send (self, target);
            sent += rc == 0;
        }
    }
    if (rc && impl != S_RAW) {
        //  Every call ends by its deadline: collect them all, leak none
        shoal_call_t *call;
        while ((call = shoal_client_wait_any (target->client, -1)))
            shoal_call_destroy (&call);
    }
    *calls = received;
    return rc;
}

static int
s_run (s_bench_t *self, s_target_t *target, s_impl_t impl, int inflight, size_t requests,
       s_sample_t *sample)
{
    int64_t start = s_now_ns ();
    int64_t end = start + (int64_t)(self->options.seconds * 1e9);
    size_t calls = 0;
    int rc = inflight == 1
                 ? s_run_one_in_flight (self, target, impl, requests, end, &calls)
                 : s_run_many_in_flight (self, target, impl, inflight, requests, end,
                                         &calls);
    int64_t elapsed = s_now_ns () - start;
    if (rc == 0 && zsys_interrupted)
        rc = s_fail (self, "interrupted");
    if (rc == 0 && calls == 0)
        rc = s_fail (self, "%s %s: no call completed", s_impl_name[impl],
                     target->transport);
    if (rc || !sample)
        return rc;
    memset (sample, 0, sizeof (*sample));
    sample->calls = calls;
    sample->seconds = elapsed / 1e9;
    sample->calls_per_s = calls / sample->seconds;
    if (inflight == 1) {
        qsort (self->latencies, calls, sizeof (int64_t), s_compare_int64);
        sample->median_us
            = (calls % 2
                   ? self->latencies[calls / 2]
                   : (self->latencies[calls / 2 - 1] + self->latencies[calls / 2]) / 2)
              / 1e3;
        size_t rank = (99 * calls + 99) / 100; //  nearest rank: ceil (0.99 n)
        sample->p99_us = self->latencies[rank - 1] / 1e3;
    }
    return 0;
}

//  Runs one scenario: warm-up, then the runs interleaved, then medians
static int
s_scenario (s_bench_t *self, s_target_t *targets, s_row_t *row)
{
    s_options_t *options = &self->options;
    //  The sides this transport has: by name is made for tcp only
    for (int impl = S_RAW; impl < S_IMPLS; impl++)
        row->ran[impl]
            = options->impl[impl] && (targets[impl].dealer || targets[impl].client);
    for (int impl = S_RAW; impl < S_IMPLS; impl++)
        if (row->ran[impl] && options->warmup
            && s_run (self, &targets[impl], (s_impl_t)impl, row->inflight,
                      options->warmup, NULL))
            return -1;
    for (int rep = 0; rep < options->reps; rep++)
        for (int impl = S_RAW; impl < S_IMPLS; impl++) {
            if (!row->ran[impl])
                continue;
            s_sample_t *sample = &row->runs[impl][rep];
            if (s_run (self, &targets[impl], (s_impl_t)impl, row->inflight,
                       options->requests, sample))
                return -1;
            if (options->verbose && row->inflight == 1)
                fprintf (stderr,
                         "bench-echo: %-6s %3d in flight %-5s run %d: %zu calls in "
                         "%.3f s, %.0f calls/s, median %.1f us, p99 %.1f us\n",
                         row->transport, row->inflight, s_impl_name[impl], rep + 1,
                         sample->calls, sample->seconds, sample->calls_per_s,
                         sample->median_us, sample->p99_us);
            else if (options->verbose)
                fprintf (stderr,
                         "bench-echo: %-6s %3d in flight %-5s run %d: %zu calls in "
                         "%.3f s, %.0f calls/s\n",
                         row->transport, row->inflight, s_impl_name[impl], rep + 1,
                         sample->calls, sample->seconds, sample->calls_per_s);
        }
    for (int impl = S_RAW; impl < S_IMPLS; impl++) {
        if (!row->ran[impl])
            continue;
        double values[S_MAX_REPS];
        s_sample_t *median = &row->median[impl];
        for (int rep = 0; rep < options->reps; rep++)
            values[rep] = row->runs[impl][rep].calls_per_s;
        median->calls_per_s = s_median_of (values, (size_t)options->reps);
        for (int rep = 0; rep < options->reps; rep++)
            values[rep] = row->runs[impl][rep].median_us;
        median->median_us = s_median_of (values, (size_t)options->reps);
        for (int rep = 0; rep < options->reps; rep++)
            values[rep] = row->runs[impl][rep].p99_us;
        median->p99_us = s_median_of (values, (size_t)options->reps);
        for (int rep = 0; rep < options->reps; rep++)
            values[rep] = (double)row->runs[impl][rep].calls;
        median->calls = (size_t)s_median_of (values, (size_t)options->reps);
        for (int rep = 0; rep < options->reps; rep++)
            values[rep] = row->runs[impl][rep].seconds;
        median->seconds = s_median_of (values, (size_t)options->reps);
    }
    for (int impl = S_RAW; impl < S_IMPLS; impl++) {
        if (!row->ran[impl])
            continue;
        double low = 0, high = 0;
        for (int rep = 0; rep < options->reps; rep++) {
            s_sample_t *run = &row->runs[impl][rep];
            double value = row->inflight == 1 ? run->median_us : run->calls_per_s;
            low = rep == 0 || value < low ? value : low;
            high = rep == 0 || value > high ? value : high;
        }
        row->spread[impl] = low > 0 ? high / low : 0;
    }
    //  Paired ratios: each run of BASE with the run of OVER right after it
    double calls[S_MAX_REPS], median[S_MAX_REPS], p99[S_MAX_REPS];
    if (row->ran[S_RAW] && row->ran[S_SHOAL]) {
        for (int rep = 0; rep < options->reps; rep++) {
            s_sample_t *raw = &row->runs[S_RAW][rep], *shoal = &row->runs[S_SHOAL][rep];
            calls[rep] = shoal->calls_per_s / raw->calls_per_s;
            median[rep] = raw->median_us > 0 ? shoal->median_us / raw->median_us : 0;
            p99[rep] = raw->p99_us > 0 ? shoal->p99_us / raw->p99_us : 0;
        }
        row->judged = true;
        row->ratio_calls = s_median_of (calls, (size_t)options->reps);
        row->ratio_median = s_median_of (median, (size_t)options->reps);
        row->ratio_p99 = s_median_of (p99, (size_t)options->reps);
        if (row->inflight == 1) {
            row->ratio = row->ratio_median;
            row->pass = row->ratio <= S_TARGET_LATENCY;
        } else {
            row->ratio = row->ratio_calls;
            row->pass = row->ratio >= S_TARGET_THROUGHPUT;
        }
    }
    if (row->ran[S_SHOAL] && row->ran[S_NAME]) {
        for (int rep = 0; rep < options->reps; rep++) {
            s_sample_t *endpoint = &row->runs[S_SHOAL][rep],
                       *name = &row->runs[S_NAME][rep];
            calls[rep] = name->calls_per_s / endpoint->calls_per_s;
            median[rep]
                = endpoint->median_us > 0 ? name->median_us / endpoint->median_us : 0;
            p99[rep] = endpoint->p99_us > 0 ? name->p99_us / endpoint->p99_us : 0;
        }
        row->name_judged = true;
        row->name_ratio_calls = s_median_of (calls, (size_t)options->reps);
        row->name_ratio_median = s_median_of (median, (size_t)options->reps);
        row->name_ratio_p99 = s_median_of (p99, (size_t)options->reps);
        if (row->inflight == 1) {
            row->name_ratio = row->name_ratio_median;
            row->name_pass = row->name_ratio <= S_TARGET_NAME_LATENCY;
        } else {
            row->name_ratio = row->name_ratio_calls;
            row->name_pass = row->name_ratio >= S_TARGET_NAME_THROUGHPUT;
        }
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Reporting

typedef struct {
    int nproc;
    char cpu[160];
    char zmq[32];
    char czmq[32];
    char msgpack[32];
    double load; //  1-minute load average at the end
} s_machine_t;

static void
s_machine (s_machine_t *machine)
{
    machine->nproc = (int)sysconf (_SC_NPROCESSORS_ONLN);
    snprintf (machine->cpu, sizeof (machine->cpu), "unknown");
    FILE *file = fopen ("/proc/cpuinfo", "r");
    if (file) {
        char line[256];
        while (fgets (line, sizeof (line), file))
            if (strncmp (line, "model name", 10) == 0) {
                char *value = strchr (line, ':');
                if (value) {
                    value += 1 + strspn (value + 1, " \t");
                    value[strcspn (value, "\n")] = 0;
                    snprintf (machine->cpu, sizeof (machine->cpu), "%s", value);
                }
                break;
            }
        fclose (file);
    }
    //  Other work on the machine shows in the numbers: say how much there was
    machine->load = -1;
    file = fopen ("/proc/loadavg", "r");
    if (file) {
        if (fscanf (file, "%lf", &machine->load) != 1)
            machine->load = -1;
        fclose (file);
    }
    int major, minor, patch;
    zmq_version (&major, &minor, &patch);
    snprintf (machine->zmq, sizeof (machine->zmq), "%d.%d.%d", major, minor, patch);
    zsys_version (&major, &minor, &patch);
    snprintf (machine->czmq, sizeof (machine->czmq), "%d.%d.%d", major, minor, patch);
    snprintf (machine->msgpack, sizeof (machine->msgpack), "%s", msgpack_version ());
}

//  Prints STRING as a JSON string (ours are plain ASCII, but be safe)
static void
s_json_string (const char *string)
{
    putchar ('"');
    for (const unsigned char *c = (const unsigned char *)string; *c; c++)
        if (*c == '"' || *c == '\\')
            printf ("\\%c", *c);
        else if (*c < 0x20)
            printf ("\\u%04x", *c);
        else
            putchar (*c);
    putchar ('"');
}

static void
s_json_sample (const s_sample_t *sample, int inflight)
{
    printf ("{\"calls\": %zu, \"seconds\": %.4f, \"calls_per_s\": %.1f", sample->calls,
            sample->seconds, sample->calls_per_s);
    if (inflight == 1)
        printf (", \"median_us\": %.2f, \"p99_us\": %.2f", sample->median_us,
                sample->p99_us);
    printf ("}");
}

//  A ratio and its target, as JSON members after NAME
static void
s_json_ratio (const char *name, int inflight, double calls, double median, double p99,
              double ratio, double limit_latency, double limit_throughput, bool pass)
{
    printf (",\n     \"%sratio\": {\"calls_per_s\": %.3f", name, calls);
    if (inflight == 1)
        printf (", \"median_us\": %.3f, \"p99_us\": %.3f", median, p99);
    printf ("},\n     \"%starget\": {\"metric\": \"%s\", \"ratio\": %.3f, "
            "\"limit\": \"%s %.2f\", \"pass\": %s}",
            name, inflight == 1 ? "median_us" : "calls_per_s", ratio,
            inflight == 1 ? "<=" : ">=", inflight == 1 ? limit_latency : limit_throughput,
            pass ? "true" : "false");
}

static void
s_print_json (s_bench_t *self, s_machine_t *machine, s_row_t *rows, size_t row_count)
{
    s_options_t *options = &self->options;
    printf (
        "{\n  \"benchmark\": \"bench-echo\",\n  \"machine\": {\"nproc\": %d, \"cpu\": ",
        machine->nproc);
    s_json_string (machine->cpu);
    printf (", \"load\": %.2f, \"libzmq\": \"%s\", \"czmq\": \"%s\", "
            "\"msgpack\": \"%s\", \"shoal\": \"%d.%d.%d\"},\n",
            machine->load, machine->zmq, machine->czmq, machine->msgpack,
            SHOAL_VERSION_MAJOR, SHOAL_VERSION_MINOR, SHOAL_VERSION_PATCH);
    printf (
        "  \"body_bytes\": %zu, \"requests\": %zu, \"seconds\": %.3f, \"warmup\": %zu, "
        "\"reps\": %d, \"raw_frames\": %d, \"pin\": %d,\n",
        self->body_size, options->requests, options->seconds, options->warmup,
        options->reps, options->raw_frames, options->pin);
    printf (
        "  \"targets\": {\"throughput_ratio_min\": %.2f, \"latency_ratio_max\": %.2f, "
        "\"name_throughput_ratio_min\": %.2f, \"name_latency_ratio_max\": %.2f},\n",
        S_TARGET_THROUGHPUT, S_TARGET_LATENCY, S_TARGET_NAME_THROUGHPUT,
        S_TARGET_NAME_LATENCY);
    printf ("  \"results\": [\n");
    bool pass = true, name_pass = true;
    for (size_t index = 0; index < row_count; index++) {
        s_row_t *row = &rows[index];
        printf ("    {\"transport\": \"%s\", \"inflight\": %d", row->transport,
                row->inflight);
        for (int impl = S_RAW; impl < S_IMPLS; impl++) {
            if (!row->ran[impl])
                continue;
            printf (",\n     \"%s\": ", s_impl_name[impl]);
            s_json_sample (&row->median[impl], row->inflight);
            printf (",\n     \"%s_runs\": [", s_impl_name[impl]);
            for (int rep = 0; rep < options->reps; rep++) {
                printf (rep ? ", " : "");
                s_json_sample (&row->runs[impl][rep], row->inflight);
            }
            printf ("]");
        }
        printf (",\n     \"spread\": {");
        for (int impl = S_RAW, first = 1; impl < S_IMPLS; impl++)
            if (row->ran[impl]) {
                printf ("%s\"%s\": %.3f", first ? "" : ", ", s_impl_name[impl],
                        row->spread[impl]);
                first = 0;
            }
        printf ("}");
        //  shoal/raw as "ratio" and "target"; name/shoal as "name_ratio"
        //  and "name_target"
        if (row->judged) {
            s_json_ratio ("", row->inflight, row->ratio_calls, row->ratio_median,
                          row->ratio_p99, row->ratio, S_TARGET_LATENCY,
                          S_TARGET_THROUGHPUT, row->pass);
            pass = pass && row->pass;
        }
        if (row->name_judged) {
            s_json_ratio ("name_", row->inflight, row->name_ratio_calls,
                          row->name_ratio_median, row->name_ratio_p99, row->name_ratio,
                          S_TARGET_NAME_LATENCY, S_TARGET_NAME_THROUGHPUT,
                          row->name_pass);
            name_pass = name_pass && row->name_pass;
        }
        printf ("}%s\n", index + 1 < row_count ? "," : "");
    }
    //  "pass": every target judged; the two kinds apart as well
    printf ("  ],\n  \"shoal_pass\": %s,\n  \"name_pass\": %s,\n  \"pass\": %s\n}\n",
            pass ? "true" : "false", name_pass ? "true" : "false",
            pass && name_pass ? "true" : "false");
}

//  One line of a table: a metric, two sides, their ratio, the target
static void
s_table_line (s_row_t *row, const char *metric, const char *unit, double base,
              double over, double ratio, bool base_ran, bool over_ran, const char *target,
              bool judged, bool pass)
{
    char base_text[32] = "-", over_text[32] = "-", ratio_text[16] = "-";
    const char *format = streq (unit, "us") ? "%.1f us" : "%.0f";
    if (base_ran)
        snprintf (base_text, sizeof (base_text), format, base);
    if (over_ran)
        snprintf (over_text, sizeof (over_text), format, over);
    if (base_ran && over_ran)
        snprintf (ratio_text, sizeof (ratio_text), "%.2f", ratio);
    printf ("| %-6s | %9d | %-12s | %12s | %12s | %9s | %-7s | %-6s |\n", row->transport,
            row->inflight, metric, base_text, over_text, ratio_text, target,
            judged ? (pass ? "PASS" : "MISS") : "");
}

static void
s_print_table (s_bench_t *self, s_machine_t *machine, s_row_t *rows, size_t row_count)
{
    s_options_t *options = &self->options;
    printf ("bench-echo: %zu-byte msgpack body echoed; each run %zu calls or %.1f s; "
            "median of %d interleaved runs;\nshoal/raw is the median of the ratios of "
            "each raw run and the shoal run after it\n",
            self->body_size, options->requests, options->seconds, options->reps);
    if (options->pin >= 0)
        printf ("every process and thread ran on CPU %d (--pin)\n", options->pin);
    if (options->raw_frames == 2)
        printf ("raw sends shoal's first wire shape: a %zu-byte header frame, then the "
                "body\n",
                self->header_size);
    printf ("machine: %d CPUs, %s, load %.2f; libzmq %s, CZMQ %s, msgpack-c %s, "
            "shoal %d.%d.%d\n",
            machine->nproc, machine->cpu, machine->load, machine->zmq, machine->czmq,
            machine->msgpack, SHOAL_VERSION_MAJOR, SHOAL_VERSION_MINOR,
            SHOAL_VERSION_PATCH);
    int missed = 0, judged = 0, name_missed = 0, name_judged = 0;
    bool raw_or_shoal = false, named = false;
    for (size_t index = 0; index < row_count; index++) {
        raw_or_shoal = raw_or_shoal || rows[index].ran[S_RAW] || rows[index].ran[S_SHOAL];
        named = named || rows[index].ran[S_NAME];
    }
    if (raw_or_shoal) {
        printf ("\n| %-6s | %9s | %-12s | %12s | %12s | %9s | %-7s | %-6s |\n", "via",
                "in flight", "metric", "raw", "shoal", "shoal/raw", "target", "result");
        printf ("|--------|-----------|--------------|--------------|--------------|"
                "-----------|---------|--------|\n");
    }
    for (size_t index = 0; index < row_count && raw_or_shoal; index++) {
        s_row_t *row = &rows[index];
        s_sample_t *r = &row->median[S_RAW], *s = &row->median[S_SHOAL];
        bool raw = row->ran[S_RAW], shoal = row->ran[S_SHOAL];
        if (row->inflight == 1) {
            s_table_line (row, "median", "us", r->median_us, s->median_us,
                          row->ratio_median, raw, shoal, "<= 1.20", row->judged,
                          row->pass);
            s_table_line (row, "p99", "us", r->p99_us, s->p99_us, row->ratio_p99, raw,
                          shoal, "", false, false);
        }
        s_table_line (row, "calls/s", "", r->calls_per_s, s->calls_per_s,
                      row->ratio_calls, raw, shoal, row->inflight == 1 ? "" : ">= 0.80",
                      row->judged && row->inflight > 1, row->pass);
        if (row->judged) {
            judged++;
            missed += !row->pass;
        }
    }
    if (judged)
        printf ("\ntargets: %d of %d met (throughput ratio >= %.2f with >1 in flight, "
                "median latency ratio <= %.2f with 1 in flight)\n",
                judged - missed, judged, S_TARGET_THROUGHPUT, S_TARGET_LATENCY);
    //  By name against by endpoint: the same instance, the same client code
    if (named) {
        printf ("\ncalls by name: the same tcp instance called through the node's view "
                "(ENDPOINT NULL);\nname/endp is the median of the ratios of each "
                "by-endpoint run and the by-name run after it\n\n");
        printf ("| %-6s | %9s | %-12s | %12s | %12s | %9s | %-7s | %-6s |\n", "via",
                "in flight", "metric", "by endpoint", "by name", "name/endp", "target",
                "result");
        printf ("|--------|-----------|--------------|--------------|--------------|"
                "-----------|---------|--------|\n");
    }
    for (size_t index = 0; index < row_count && named; index++) {
        s_row_t *row = &rows[index];
        if (!row->ran[S_NAME])
            continue;
        s_sample_t *e = &row->median[S_SHOAL], *n = &row->median[S_NAME];
        bool shoal = row->ran[S_SHOAL];
        char latency[16], throughput[16];
        snprintf (latency, sizeof (latency), "<= %.2f", S_TARGET_NAME_LATENCY);
        snprintf (throughput, sizeof (throughput), ">= %.2f", S_TARGET_NAME_THROUGHPUT);
        if (row->inflight == 1) {
            s_table_line (row, "median", "us", e->median_us, n->median_us,
                          row->name_ratio_median, shoal, true, latency, row->name_judged,
                          row->name_pass);
            s_table_line (row, "p99", "us", e->p99_us, n->p99_us, row->name_ratio_p99,
                          shoal, true, "", false, false);
        }
        s_table_line (row, "calls/s", "", e->calls_per_s, n->calls_per_s,
                      row->name_ratio_calls, shoal, true,
                      row->inflight == 1 ? "" : throughput,
                      row->name_judged && row->inflight > 1, row->name_pass);
        if (row->name_judged) {
            name_judged++;
            name_missed += !row->name_pass;
        }
    }
    if (name_judged)
        printf ("\nby name: %d of %d met (a call by name costs no more than one by "
                "endpoint:\nname/endp throughput >= %.2f, median latency <= %.2f; the "
                "5%% is run-to-run noise)\n",
                name_judged - name_missed, name_judged, S_TARGET_NAME_THROUGHPUT,
                S_TARGET_NAME_LATENCY);
    //  Say so when the machine did not hold still: those numbers need a rerun
    for (size_t index = 0; index < row_count; index++)
        for (int impl = S_RAW; impl < S_IMPLS; impl++)
            if (rows[index].ran[impl] && rows[index].spread[impl] > S_UNSTEADY)
                printf ("unsteady: %s %d in flight, %s: its slowest run was %.1fx its "
                        "fastest (%s); rerun when the machine is quieter, or with -r 5\n",
                        rows[index].transport, rows[index].inflight, s_impl_name[impl],
                        rows[index].spread[impl],
                        rows[index].inflight == 1 ? "median latency" : "calls/s");
}

//  --------------------------------------------------------------------------
//  Command line

static void
s_usage (FILE *out)
{
    fprintf (
        out,
        "usage: bench-echo [options]\n"
        "Echoes one small msgpack request through raw ZeroMQ and through shoal,\n"
        "over tcp loopback (server in another process) and inproc, and compares;\n"
        "over tcp, shoal is also called by name (through a node of a private\n"
        "cluster) and compared with the same calls by endpoint.\n\n"
        "  -n N              calls per run, at most (default 20000)\n"
        "  -d SECONDS        seconds per run, at most (default 3)\n"
        "  -w N              warm-up calls per scenario and side (default 1000)\n"
        "  -r N              runs per scenario and side, median kept (default 3)\n"
        "  --quick           smoke test: -n 2000 -d 1 -w 200 (flags given win)\n"
        "  --json            JSON on stdout instead of the table\n"
        "  --transport T     tcp, inproc or all (default all)\n"
        "  --impl LIST       sides, comma-separated: raw, shoal (by endpoint), name\n"
        "                    (by name, tcp only); 'both' is raw,shoal, 'all' (the\n"
        "                    default) all three\n"
        "  --inflight LIST   calls in flight, comma-separated (default 1,16,128)\n"
        "  --raw-frames 2    raw messages shaped as shoal's first wire format: a\n"
        "                    header frame (the bytes of a shoal request header)\n"
        "                    then the body (shoal now sends both in one frame);\n"
        "                    what a second frame per message costs\n"
        "  --pin CPU         run every process and thread on that one CPU: steadier\n"
        "                    numbers on a small, shared or virtual machine, where\n"
        "                    the CPU the scheduler gives each thread moves them\n"
        "  --strict          exit 3 if a target is missed\n"
        "  -v, --verbose     every run on stderr as it ends\n"
        "  -h, --help        this text\n");
}

static bool
s_parse_size (const char *text, long min, long max, long *value)
{
    char *end;
    errno = 0;
    *value = strtol (text, &end, 10);
    return errno == 0 && end != text && *end == 0 && *value >= min && *value <= max;
}

//  Returns 0, 1 for --help (done), or 2 on a bad command line
static int
s_parse (s_options_t *options, int argc, char **argv)
{
    long requests = -1, warmup = -1, reps = 3;
    double seconds = -1;
    bool quick = false;
    options->transport[0] = options->transport[1] = true;
    options->impl[S_RAW] = options->impl[S_SHOAL] = options->impl[S_NAME] = true;
    options->inflight[0] = 1;
    options->inflight[1] = 16;
    options->inflight[2] = 128;
    options->inflight_count = 3;
    options->raw_frames = 1;
    options->pin = -1;
    for (int index = 1; index < argc; index++) {
        const char *arg = argv[index];
        const char *value = index + 1 < argc ? argv[index + 1] : NULL;
        bool takes = streq (arg, "-n") || streq (arg, "-d") || streq (arg, "-w")
                     || streq (arg, "-r") || streq (arg, "--transport")
                     || streq (arg, "--impl") || streq (arg, "--inflight")
                     || streq (arg, "--raw-frames") || streq (arg, "--pin");
        if (takes && !value) {
            fprintf (stderr, "bench-echo: %s needs a value\n", arg);
            return 2;
        }
        if (takes)
            index++;
        if (streq (arg, "-h") || streq (arg, "--help")) {
            s_usage (stdout);
            return 1;
        } else if (streq (arg, "--quick"))
            quick = true;
        else if (streq (arg, "--json"))
            options->json = true;
        else if (streq (arg, "--strict"))
            options->strict = true;
        else if (streq (arg, "-v") || streq (arg, "--verbose"))
            options->verbose = true;
        else if (streq (arg, "-n")) {
            if (!s_parse_size (value, 1, 100000000, &requests)) {
                fprintf (stderr, "bench-echo: -n takes 1..100000000\n");
                return 2;
            }
        } else if (streq (arg, "-w")) {
            if (!s_parse_size (value, 0, 100000000, &warmup)) {
                fprintf (stderr, "bench-echo: -w takes 0..100000000\n");
                return 2;
            }
        } else if (streq (arg, "-r")) {
            if (!s_parse_size (value, 1, S_MAX_REPS, &reps)) {
                fprintf (stderr, "bench-echo: -r takes 1..%d\n", S_MAX_REPS);
                return 2;
            }
        } else if (streq (arg, "-d")) {
            char *end;
            seconds = strtod (value, &end);
            if (end == value || *end || !(seconds > 0 && seconds <= 3600)) {
                fprintf (stderr,
                         "bench-echo: -d takes seconds, more than 0, up to 3600\n");
                return 2;
            }
        } else if (streq (arg, "--transport")) {
            options->transport[0] = streq (value, "tcp") || streq (value, "all");
            options->transport[1] = streq (value, "inproc") || streq (value, "all");
            if (!options->transport[0] && !options->transport[1]) {
                fprintf (stderr, "bench-echo: --transport takes tcp, inproc or all\n");
                return 2;
            }
        } else if (streq (arg, "--raw-frames")) {
            long frames;
            if (!s_parse_size (value, 1, 2, &frames)) {
                fprintf (stderr, "bench-echo: --raw-frames takes 1 or 2\n");
                return 2;
            }
            options->raw_frames = (int)frames;
        } else if (streq (arg, "--pin")) {
            long cpu;
            if (!s_parse_size (value, 0, CPU_SETSIZE - 1, &cpu)) {
                fprintf (stderr, "bench-echo: --pin takes a CPU number\n");
                return 2;
            }
            options->pin = (int)cpu;
        } else if (streq (arg, "--impl")) {
            for (int impl = S_RAW; impl < S_IMPLS; impl++)
                options->impl[impl] = false;
            char copy[128];
            snprintf (copy, sizeof (copy), "%s", value);
            char *saved = NULL;
            bool good = strlen (value) < sizeof (copy);
            for (char *item = strtok_r (copy, ",", &saved); item && good;
                 item = strtok_r (NULL, ",", &saved)) {
                bool known = false;
                for (int impl = S_RAW; impl < S_IMPLS; impl++)
                    if (streq (item, s_impl_name[impl]))
                        options->impl[impl] = known = true;
                if (streq (item, "both") || streq (item, "all")) {
                    options->impl[S_RAW] = options->impl[S_SHOAL] = known = true;
                    options->impl[S_NAME] = options->impl[S_NAME] || streq (item, "all");
                }
                good = known;
            }
            if (!good
                || !(options->impl[S_RAW] || options->impl[S_SHOAL]
                     || options->impl[S_NAME])) {
                fprintf (stderr,
                         "bench-echo: --impl takes raw, shoal, name (comma-separated), "
                         "both or all\n");
                return 2;
            }
        } else if (streq (arg, "--inflight")) {
            options->inflight_count = 0;
            char copy[128];
            snprintf (copy, sizeof (copy), "%s", value);
            char *saved = NULL;
            for (char *item = strtok_r (copy, ",", &saved); item;
                 item = strtok_r (NULL, ",", &saved)) {
                long inflight;
                if (options->inflight_count == S_MAX_INFLIGHT
                    || !s_parse_size (item, 1, 1000, &inflight)) {
                    fprintf (stderr,
                             "bench-echo: --inflight takes up to %d numbers "
                             "1..1000, comma-separated\n",
                             S_MAX_INFLIGHT);
                    return 2;
                }
                options->inflight[options->inflight_count++] = (int)inflight;
            }
            if (options->inflight_count == 0) {
                fprintf (stderr, "bench-echo: --inflight needs a number\n");
                return 2;
            }
        } else {
            fprintf (stderr, "bench-echo: unknown option '%s'\n", arg);
            s_usage (stderr);
            return 2;
        }
    }
    options->requests = (size_t)(requests > 0 ? requests : quick ? 2000 : 20000);
    options->seconds = seconds > 0 ? seconds : quick ? 1.0 : 3.0;
    options->warmup = (size_t)(warmup >= 0 ? warmup : quick ? 200 : 1000);
    options->reps = (int)reps;
    return 0;
}

//  --------------------------------------------------------------------------
//  The run

//  A DEALER on CONTEXT connected to ENDPOINT, with a receive timeout so
//  that a lost reply ends the run instead of hanging it; NULL on error
static void *
s_raw_dealer (s_bench_t *self, void *context, const char *endpoint)
{
    void *dealer = zmq_socket (context, ZMQ_DEALER);
    if (!dealer) {
        s_fail (self, "raw: socket: %s", zmq_strerror (errno));
        return NULL;
    }
    int linger = 0, timeout = S_CALL_TIMEOUT;
    zmq_setsockopt (dealer, ZMQ_LINGER, &linger, sizeof (linger));
    zmq_setsockopt (dealer, ZMQ_RCVTIMEO, &timeout, sizeof (timeout));
    zmq_setsockopt (dealer, ZMQ_SNDTIMEO, &timeout, sizeof (timeout));
    if (zmq_connect (dealer, endpoint)) {
        s_fail (self, "raw: connect %s: %s", endpoint, zmq_strerror (errno));
        zmq_close (dealer);
        return NULL;
    }
    return dealer;
}

int
main (int argc, char **argv)
{
    s_bench_t bench_object;
    s_bench_t *self = &bench_object;
    memset (self, 0, sizeof (*self));
    int rc = s_parse (&self->options, argc, argv);
    if (rc)
        return rc == 1 ? 0 : 2;
    s_options_t *options = &self->options;

    //  Pinned before anything starts, so the servers and every thread
    //  inherit it
    if (options->pin >= 0) {
        cpu_set_t cpus;
        CPU_ZERO (&cpus);
        CPU_SET (options->pin, &cpus);
        if (sched_setaffinity (0, sizeof (cpus), &cpus)) {
            fprintf (stderr, "bench-echo: cannot run on CPU %d: %s\n", options->pin,
                     strerror (errno));
            return 2;
        }
    }

    //  The server processes first, before this process has any ZeroMQ
    //  context (nor CZMQ: any zsys_set_* starts it), so they inherit none
    bool tcp = options->transport[0], inproc = options->transport[1];
    rc = 0;
    if (tcp && options->impl[S_NAME])
        rc = s_cluster_make (self);
    if (rc == 0 && tcp && options->impl[S_RAW])
        rc = s_child_start (self, "raw", s_raw_child);
    if (rc == 0 && tcp && (options->impl[S_SHOAL] || options->impl[S_NAME]))
        rc = s_child_start (self, "shoal", s_shoal_child);

    //  Logs go to stderr, so that --json output stays clean
    zsys_set_logstream (stderr);

    s_row_t rows[2 * S_MAX_INFLIGHT];
    size_t row_count = 0;
    memset (rows, 0, sizeof (rows));
    s_target_t targets[2][S_IMPLS]; //  [tcp, inproc][raw, shoal, name]
    memset (targets, 0, sizeof (targets));
    shoal_node_t *node = NULL; //  this process's, for calls by name
    void *context = NULL;      //  raw's own context
    s_raw_thread_t raw_thread = { NULL, NULL, 0 };
    void *raw_pipe = NULL; //  tells the raw thread to stop
    pthread_t raw_thread_id;
    bool raw_thread_started = false;
    shoal_service_t *service = NULL; //  in-process shoal echo
    shoal_body_t *body = NULL;

    //  The request, the same bytes for raw and shoal
    if (rc == 0) {
        body = shoal_body_pack ("{s:s, s:i, s:s}", "sku", "A-1", "qty", 2, "note",
                                "gift wrap, leave at door");
        if (!body || shoal_body_size (body) > sizeof (self->body))
            rc = s_fail (self, "cannot pack the request body");
        else {
            self->body_size = shoal_body_size (body);
            memcpy (self->body, shoal_body_data (body), self->body_size);
        }
        shoal_body_destroy (&body);
        //  A request header as shoal's client writes one (docs/protocol.md)
        body = shoal_body_pack ("[s, i, s, I, s, s, i, {}]", "shoal", 1, "REQ",
                                (int64_t)1000000, "echo", "echo", S_CALL_TIMEOUT);
        if (rc == 0 && (!body || shoal_body_size (body) > sizeof (self->header)))
            rc = s_fail (self, "cannot pack the raw header");
        else if (rc == 0) {
            self->header_size = shoal_body_size (body);
            memcpy (self->header, shoal_body_data (body), self->header_size);
        }
        shoal_body_destroy (&body);
    }
    if (rc == 0) {
        self->latencies = (int64_t *)malloc (options->requests > options->warmup
                                                 ? options->requests * sizeof (int64_t)
                                                 : options->warmup * sizeof (int64_t));
        if (!self->latencies)
            rc = s_fail (self, "out of memory");
    }
    if (rc == 0 && options->impl[S_RAW]) {
        context = zmq_ctx_new ();
        if (!context)
            rc = s_fail (self, "zmq_ctx_new: %s", zmq_strerror (errno));
    }
    if (rc == 0 && tcp) {
        targets[0][S_RAW].transport = targets[0][S_SHOAL].transport = "tcp";
        for (size_t index = 0; index < self->child_count; index++) {
            s_child_t *child = &self->children[index];
            if (streq (child->name, "raw")) {
                targets[0][S_RAW].dealer = s_raw_dealer (self, context, child->endpoint);
                if (!targets[0][S_RAW].dealer)
                    rc = -1;
            } else if (options->impl[S_SHOAL]) {
                targets[0][S_SHOAL].client = shoal_client_new ();
                targets[0][S_SHOAL].endpoint = child->endpoint;
                if (!targets[0][S_SHOAL].client)
                    rc = s_fail (self, "shoal_client_new failed");
            }
        }
    }
    //  Calls by name: the client goes through this process's node, and
    //  finds the server's instance in the view
    if (rc == 0 && tcp && options->impl[S_NAME]) {
        const char *endpoint = NULL;
        for (size_t index = 0; index < self->child_count; index++)
            if (streq (self->children[index].name, "shoal"))
                endpoint = self->children[index].endpoint;
        node = endpoint ? s_cluster_join (self, endpoint) : NULL;
        if (!node)
            rc = -1;
        else {
            targets[0][S_NAME].transport = "tcp, by name";
            targets[0][S_NAME].client = shoal_client_new ();
            if (!targets[0][S_NAME].client)
                rc = s_fail (self, "shoal_client_new failed");
            else
                shoal_client_set_node (targets[0][S_NAME].client, node);
        }
    }
    if (rc == 0 && inproc && options->impl[S_RAW]) {
        targets[1][S_RAW].transport = "inproc";
        void *router = zmq_socket (context, ZMQ_ROUTER);
        raw_thread.router = router;
        raw_thread.pipe = zmq_socket (context, ZMQ_PAIR);
        raw_pipe = zmq_socket (context, ZMQ_PAIR);
        if (!router || !raw_thread.pipe || !raw_pipe
            || zmq_bind (router, "inproc://bench-echo-raw")
            || zmq_bind (raw_thread.pipe, "inproc://bench-echo-raw-pipe")
            || zmq_connect (raw_pipe, "inproc://bench-echo-raw-pipe"))
            rc = s_fail (self, "raw inproc server: %s", zmq_strerror (errno));
        else if (pthread_create (&raw_thread_id, NULL, s_raw_thread, &raw_thread))
            rc = s_fail (self, "raw inproc server: cannot start its thread");
        else {
            raw_thread_started = true;
            targets[1][S_RAW].dealer
                = s_raw_dealer (self, context, "inproc://bench-echo-raw");
            if (!targets[1][S_RAW].dealer)
                rc = -1;
        }
    }
    if (rc == 0 && inproc && options->impl[S_SHOAL]) {
        targets[1][S_SHOAL].transport = "inproc";
        service = s_echo_service_new (NULL);
        if (!service)
            rc = s_fail (self, "the in-process shoal echo service did not start");
        else {
            targets[1][S_SHOAL].client = shoal_client_new ();
            targets[1][S_SHOAL].endpoint = shoal_service_inproc (service, 0);
            if (!targets[1][S_SHOAL].client)
                rc = s_fail (self, "shoal_client_new failed");
        }
    }

    //  The scenarios, in the order of the table
    for (int transport = 0; transport < 2 && rc == 0; transport++) {
        if (!options->transport[transport])
            continue;
        for (size_t index = 0; index < options->inflight_count && rc == 0; index++) {
            s_row_t *row = &rows[row_count++];
            row->transport = transport ? "inproc" : "tcp";
            row->inflight = options->inflight[index];
            if (options->verbose)
                fprintf (stderr, "bench-echo: %s, %d in flight\n", row->transport,
                         row->inflight);
            rc = s_scenario (self, targets[transport], row);
        }
    }

    //  Everything goes, on every path: sockets, threads, services, children
    for (int transport = 0; transport < 2; transport++) {
        if (targets[transport][S_RAW].dealer)
            zmq_close (targets[transport][S_RAW].dealer);
        shoal_client_destroy (&targets[transport][S_SHOAL].client);
        shoal_client_destroy (&targets[transport][S_NAME].client);
    }
    shoal_node_destroy (&node);
    shoal_service_destroy (&service);
    if (raw_thread_started) {
        zmq_send (raw_pipe, "$TERM", 5, 0);
        pthread_join (raw_thread_id, NULL);
        if (raw_thread.rc && rc == 0)
            rc = s_fail (self, "raw inproc server: poll failed");
    }
    int linger = 0;
    void *sockets[] = { raw_pipe, raw_thread.pipe, raw_thread.router };
    for (size_t index = 0; index < sizeof (sockets) / sizeof (sockets[0]); index++)
        if (sockets[index]) {
            zmq_setsockopt (sockets[index], ZMQ_LINGER, &linger, sizeof (linger));
            zmq_close (sockets[index]);
        }
    if (context)
        zmq_ctx_term (context);
    int children = s_children_stop (self);
    s_cluster_remove (self);
    free (self->latencies);

    if (rc) {
        fprintf (stderr, "bench-echo: error: %s\n", self->error);
        return 1;
    }
    s_machine_t machine;
    s_machine (&machine);
    if (options->json)
        s_print_json (self, &machine, rows, row_count);
    else
        s_print_table (self, &machine, rows, row_count);
    fflush (stdout);
    if (children)
        return 1;
    if (options->strict)
        for (size_t index = 0; index < row_count; index++)
            if (rows[index].judged && !rows[index].pass)
                return 3;
    return 0;
}
