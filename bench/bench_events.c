/*  bench-events - what shoal's events cost on top of raw ZeroMQ PUB/SUB,
    measured in one run.

    One publisher, K subscribers (K = 1 and 4 by default), tcp loopback,
    100-byte bodies (a msgpack bin of 98 bytes), the same bytes for both:
        raw     a PUB bound on tcp://127.0.0.1:*, K SUB sockets (each in a
                thread of its own) subscribed to the topic; each message is
                ONE frame: the topic, a 0 byte, the body. SNDHWM and RCVHWM
                are shoal's (SHOAL_DEFAULT_EVENT_BUFFER at the publisher,
                1000 at a subscriber);
        shoal   two nodes of a private cluster in this process (a unique
                name, a rendezvous folder of its own, host 127.0.0.1): the
                publisher's, which publishes with shoal_node_publish, and
                the subscribers', through which K threads each run a
                shoal_subscriber_t subscribed to the topic, after
                shoal_node_wait_subscribers.
    Every subscriber checks every message (its topic, its size, the run it
    belongs to and its index, which must follow the one before) and counts
    it; a benchmark that does not check can measure a bug.

    Two ways of publishing, each run -n events (or -d seconds, or what is
    left of the budget):
        paced   the number that counts: the publisher sends as long as no
                subscriber is more than -W events (500) behind it; when
                one is, it waits until all are within -W/2, on a semaphore
                that the subscriber reaching that count posts (no polling:
                a waiting publisher takes no CPU from the subscribers and
                does not wake late). So at most -W events are ever queued
                for a subscriber, far below the high-water mark (10,000
                each side), and nothing may be lost: the issue asks for no
                loss below the high-water mark, and a loss here is LOSS
                (RAWLOSS if only raw lost). Far below, because a PUB learns
                what its reader took late: only every HWM/2 messages
                (libzmq's low-water mark), and only when it next processes
                commands, which a sending socket does at most every ~1 ms
                (max_command_delay). At 3.5 M events/s a PUB can so think
                its pipe full with ~1,000 queued: raw PUB/SUB on one CPU
                dropped events with -W 1000, 1500 and 2000 (tens to
                hundreds in some runs of 500,000), none seen with 500 or
                750, which give the same ratios. -W is kept to HWM/5.
        blast   as fast as the publisher can, no pacing: the publisher's
                rate, what arrived, what was lost (and for shoal what its
                subscribers counted missed and got replayed; a replay into
                a gap at the end of one run may be counted in the next).
                Information only.
    The rate of a run is events per subscriber per second: events / (the
    time from the first send to the moment the last subscriber has its last
    event). With 4 subscribers the deliveries are 4 times that.

    Each case (K subscribers) is set up once (both sides' subscriber threads
    wait in their receive loops), warmed up, then run -r times per mode with
    the sides interleaved (raw, shoal, raw, shoal, ...): each side's median
    is reported, and shoal/raw is the median of the ratios of each raw run
    to the shoal run right after it, as bench-echo does. The target is
    shoal/raw >= 0.80 on the paced runs.

        bench-events                     full run (10 to 15 s), table on stdout
        bench-events --quick --json      CI smoke run (a few seconds), JSON
        bench-events --pin 0             every thread on CPU 0 (or: taskset -c 0)
        bench-events --impl shoal --subs 1 --mode paced -r 1 -n 1000000
                                         one case only, for a profiler

    Exit code: 0 when the run completed (targets are reported, not
    enforced, unless --strict: then 3 if a target is missed, or a paced run
    lost an event or was cut short), 1 on an error, 2 on a bad command line.
    Logs and errors go to stderr. The whole run is bounded by --budget
    (default 50 s, 9 s with --quick): runs that would not fit are skipped,
    and said so.                                                             */
#include <czmq.h>
#include <msgpack.h>
#include <zmq.h>
#include <dirent.h>
#include <sched.h>
#include <stdatomic.h>
#include <semaphore.h>
#include <sys/prctl.h>
#include "shoal.h"

//  The target: shoal's share of raw's events per second, paced
#define S_TARGET 0.80
//  Runs of one side whose slowest is this much slower than the fastest are
//  reported as unsteady
#define S_UNSTEADY  1.25
#define S_MAX_REPS  15
#define S_MAX_CASES 4
#define S_MAX_SUBS  16
//  The body: a msgpack bin of 98 bytes, 100 bytes in all; its data starts
//  with the run (u32) and the event's index in the run (u32)
#define S_BODY_SIZE 100
#define S_BIN_SIZE  98
//  High-water marks, both sides, as shoal's defaults
#define S_HWM SHOAL_DEFAULT_EVENT_BUFFER         //  the publisher's, per subscriber
#define S_RCV_HWM 1000                          //  a shoal subscriber's queue per publisher
//  How long a subscriber's receive waits before it looks at its commands
#define S_RECV_MS 10
//  A run ends once no subscriber has received anything for this long:
//  paced, where nothing should be missing, long enough for a stalled
//  thread of a busy machine; blast, where events are lost, short
#define S_QUIET_PACED_MS 500
#define S_QUIET_BLAST_MS 200
//  Setting up a case: threads ready, subscribers connected (ms)
#define S_SETUP_MS 5000
//  A subscriber's answer to a snapshot request (ms)
#define S_SNAPSHOT_MS 300
//  Progress of a subscriber: the run in the high bits, the count in the low
#define S_COUNT_BITS 40
#define S_COUNT_MASK ((UINT64_C (1) << S_COUNT_BITS) - 1)

typedef enum { S_RAW = 0, S_SHOAL = 1 } s_impl_t;
#define S_IMPLS 2
static const char *s_impl_name[] = { "raw", "shoal" };
typedef enum { S_PACED = 0, S_BLAST = 1 } s_mode_t;
#define S_MODES 2
static const char *s_mode_name[] = { "paced", "blast" };

typedef struct {
    size_t events;  //  -n: events per run
    double seconds; //  -d: seconds per run, at most
    size_t warmup;  //  -w: events of the warm-up run of each side and case
    size_t window;  //  -W: paced, events a subscriber may be behind
    int reps;       //  -r
    double budget;  //  --budget: seconds for the whole run
    bool json;
    bool strict;
    bool verbose;
    int pin;
    bool impl[S_IMPLS];
    bool mode[S_MODES];
    int subs[S_MAX_CASES];
    size_t case_count;
} s_options_t;

//  One run of one side
typedef struct {
    bool ran;
    bool complete;         //  every subscriber got every event
    uint64_t sent;         //  events published
    double seconds;        //  first send to the last subscriber's last event
    double send_seconds;   //  first send to last send
    double events_per_s;   //  per subscriber
    double send_per_s;     //  the publisher's rate
    uint64_t received_min; //  over the subscribers
    uint64_t lost;         //  sum over the subscribers of sent - received
    uint64_t gaps;         //  sum of the indexes skipped, as seen in order
    uint64_t malformed;    //  wrong topic, size or run
    //  shoal: the subscribers' own counters over the run, summed
    uint64_t missed, recovered, lost_counted, duplicates;
    uint64_t unnumbered; //  the publisher's, over the run
} s_sample_t;

//  One subscriber thread
typedef struct _s_case_t s_case_t;
typedef struct {
    s_case_t *owner;
    s_impl_t impl;
    pthread_t thread;
    bool started;
    atomic_int ready;              //  1 subscribed and receiving, -1 failed
    atomic_uint_fast64_t progress; //  run << S_COUNT_BITS | events of the run
    atomic_int_fast64_t last_ns;   //  last counted (every 64 events, and the last)
    atomic_int_fast64_t done_ns;   //  when the run's last event came
    atomic_uint probe;             //  the last probe seen
    atomic_uint ack;               //  the last snapshot request answered
    //  Written by the thread before it answers a snapshot request
    uint32_t report_run;
    uint64_t report_gaps;
    uint64_t report_malformed;
    shoal_event_stats_t report_stats;
} s_sub_t;

//  What a subscriber thread keeps to itself
typedef struct {
    uint32_t run;
    uint64_t count;
    uint64_t target;
    uint32_t next; //  the index expected next
    uint64_t gaps;
    uint64_t malformed;
} s_local_t;

typedef struct _s_bench_t s_bench_t;

//  One case: K subscribers of each side, on a topic of its own
struct _s_case_t {
    s_bench_t *bench;
    int count;      //  K
    char topic[32]; //  "bench.k1"
    size_t topic_size;
    atomic_uint_fast64_t target; //  events per subscriber of the run under way
    atomic_int stop;
    atomic_uint snapshot; //  requests to the threads
    //  Paced: the progress (run and count) the publisher waits for, 0 if
    //  none, and how a subscriber that reaches it wakes the publisher
    atomic_uint_fast64_t mark;
    sem_t wake;
    s_sub_t subs[S_IMPLS][S_MAX_SUBS];
    void *pub;                             //  raw: the PUB socket
    char endpoint[256];                    //  raw: where it is bound
    unsigned char frame[64 + S_BODY_SIZE]; //  raw: topic, 0, body
    size_t frame_size;
    s_sample_t runs[S_MODES][S_IMPLS][S_MAX_REPS];
    int reps_done[S_MODES];
};

//  One row of the report: a case and a mode
typedef struct {
    int subs;
    s_mode_t mode;
    int reps;
    bool ran[S_IMPLS];
    s_sample_t median[S_IMPLS]; //  per field, the median over the runs
    double spread[S_IMPLS];
    bool judged;
    double ratio;      //  median of the paired ratios (events/s)
    double ratio_send; //  the same for the publisher's rate (blast)
    bool pass;         //  paced: ratio >= target
    bool loss;         //  paced: some event lost by shoal
    bool raw_loss;     //  paced: some event lost by raw PUB/SUB
    bool timeout;      //  paced: a run cut short by its deadline
} s_row_t;

struct _s_bench_t {
    s_options_t options;
    char error[512];
    unsigned char body[S_BODY_SIZE];
    int64_t budget_end;     //  ns
    uint32_t run;           //  the last run id given (probes are run 0)
    uint32_t probe;         //  the last probe id given
    void *context;          //  raw's
    shoal_node_t *pub_node; //  shoal: the publisher's node
    shoal_node_t *sub_node; //  shoal: the subscribers' node
    char cluster[64];
    char rendezvous[64];
    size_t skipped; //  runs that did not fit in the budget
};

//  --------------------------------------------------------------------------
//  Small helpers

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
s_compare_double (const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double
s_median_of (double *values, size_t count)
{
    if (count == 0)
        return 0;
    qsort (values, count, sizeof (double), s_compare_double);
    return count % 2 ? values[count / 2]
                     : (values[count / 2 - 1] + values[count / 2]) / 2;
}

//  Waiting for the subscribers: a few yields (on one CPU they must run),
//  then naps of 20 us
static void
s_nap (int *spins)
{
    if ((*spins)++ < 8)
        sched_yield ();
    else {
        struct timespec pause = { 0, 20000 };
        nanosleep (&pause, NULL);
    }
}

//  A deadline (ns) for a setup step: S_SETUP_MS from now, but never past
//  the budget, less a second to tear down
static int64_t
s_setup_deadline (s_bench_t *self)
{
    int64_t deadline = s_now_ns () + (int64_t)S_SETUP_MS * 1000000;
    int64_t last = self->budget_end - 1000000000;
    return deadline < last ? deadline : last;
}

static int
s_setup_ms (s_bench_t *self)
{
    int64_t left = (s_setup_deadline (self) - s_now_ns ()) / 1000000;
    return left > 0 ? (int)left : 0;
}

//  --------------------------------------------------------------------------
//  The subscribers' side: one thread each

//  Counts one message body. The same code for raw and shoal. A replayed
//  event (shoal, blast) counts, but does not move the clock: it comes a
//  beat later, when the gap is seen
static void
s_count (s_sub_t *sub, s_local_t *local, const uint8_t *body, size_t size, bool replayed)
{
    if (size != S_BODY_SIZE || body[0] != 0xc4 || body[1] != S_BIN_SIZE) {
        local->malformed++;
        return;
    }
    uint32_t run, index;
    memcpy (&run, body + 2, sizeof (run));
    memcpy (&index, body + 6, sizeof (index));
    if (run == 0) {
        atomic_store_explicit (&sub->probe, index, memory_order_release);
        return;
    }
    if (run < local->run)
        return; //  late event of an earlier run: not this run's
    if (run > local->run) {
        local->run = run;
        local->count = 0;
        local->next = 0;
        local->gaps = 0;
        local->target = atomic_load_explicit (&sub->owner->target, memory_order_acquire);
    }
    if (index != local->next)
        local->gaps += index > local->next ? index - local->next : 1;
    local->next = index + 1;
    uint64_t count = ++local->count;
    if (!replayed && (count == local->target || (count & 63) == 0)) {
        int64_t now = s_now_ns ();
        atomic_store_explicit (&sub->last_ns, now, memory_order_relaxed);
        if (count == local->target)
            atomic_store_explicit (&sub->done_ns, now, memory_order_relaxed);
    }
    uint64_t progress = (uint64_t)run << S_COUNT_BITS | count;
    atomic_store_explicit (&sub->progress, progress, memory_order_release);
    //  The publisher waits for this count: wake it
    if (atomic_load_explicit (&sub->owner->mark, memory_order_relaxed) == progress)
        sem_post (&sub->owner->wake);
}

//  Answers a snapshot request if there is one: what main cannot read while
//  the thread runs
static void
s_answer (s_sub_t *sub, s_local_t *local, shoal_subscriber_t *subscriber)
{
    unsigned request = atomic_load_explicit (&sub->owner->snapshot, memory_order_acquire);
    if (request == atomic_load_explicit (&sub->ack, memory_order_relaxed))
        return;
    sub->report_run = local->run;
    sub->report_gaps = local->gaps;
    sub->report_malformed = local->malformed;
    if (subscriber)
        sub->report_stats = shoal_subscriber_stats (subscriber);
    atomic_store_explicit (&sub->ack, request, memory_order_release);
}

static void *
s_raw_subscriber (void *argument)
{
    s_sub_t *sub = (s_sub_t *)argument;
    s_case_t *owner = sub->owner;
    void *socket = zmq_socket (owner->bench->context, ZMQ_SUB);
    if (!socket) {
        atomic_store (&sub->ready, -1);
        return NULL;
    }
    int hwm = S_RCV_HWM, timeout = S_RECV_MS, linger = 0;
    zmq_setsockopt (socket, ZMQ_RCVHWM, &hwm, sizeof (hwm));
    zmq_setsockopt (socket, ZMQ_RCVTIMEO, &timeout, sizeof (timeout));
    zmq_setsockopt (socket, ZMQ_LINGER, &linger, sizeof (linger));
    //  The topic and its 0 byte, as shoal subscribes to a pattern without
    //  wildcards
    if (zmq_setsockopt (socket, ZMQ_SUBSCRIBE, owner->topic, owner->topic_size + 1)
        || zmq_connect (socket, owner->endpoint)) {
        zmq_close (socket);
        atomic_store (&sub->ready, -1);
        return NULL;
    }
    atomic_store (&sub->ready, 1);
    s_local_t local = { 0 };
    while (!atomic_load_explicit (&owner->stop, memory_order_relaxed)) {
        zmq_msg_t message;
        zmq_msg_init (&message);
        if (zmq_msg_recv (&message, socket, 0) >= 0) {
            const uint8_t *data = (const uint8_t *)zmq_msg_data (&message);
            size_t length = zmq_msg_size (&message);
            if (length > owner->topic_size && !zmq_msg_more (&message)
                && memcmp (data, owner->topic, owner->topic_size + 1) == 0)
                s_count (sub, &local, data + owner->topic_size + 1,
                         length - owner->topic_size - 1, false);
            else
                local.malformed++;
        }
        zmq_msg_close (&message);
        s_answer (sub, &local, NULL);
    }
    zmq_close (socket);
    return NULL;
}

static void *
s_shoal_subscriber (void *argument)
{
    s_sub_t *sub = (s_sub_t *)argument;
    s_case_t *owner = sub->owner;
    //  A subscriber belongs to its thread: made, used and destroyed here
    shoal_subscriber_t *subscriber = shoal_subscriber_new (owner->bench->sub_node);
    bool good = subscriber && shoal_subscriber_subscribe (subscriber, owner->topic) == 0;
    if (!good)
        shoal_subscriber_destroy (&subscriber);
    if (!good) {
        atomic_store (&sub->ready, -1);
        return NULL;
    }
    atomic_store (&sub->ready, 1);
    s_local_t local = { 0 };
    //  A plain subscriber follows the cluster (connects to new publishers)
    //  only while it is in recv: it loops there from the start
    while (!atomic_load_explicit (&owner->stop, memory_order_relaxed)) {
        shoal_event_t *event = shoal_subscriber_recv (subscriber, S_RECV_MS);
        if (event) {
            size_t size;
            const void *body = shoal_event_body (event, &size);
            if (streq (shoal_event_topic (event), owner->topic))
                s_count (sub, &local, (const uint8_t *)body, size,
                         shoal_event_replayed (event));
            else
                local.malformed++;
            shoal_event_destroy (&event);
        }
        s_answer (sub, &local, subscriber);
    }
    shoal_subscriber_destroy (&subscriber);
    return NULL;
}

//  --------------------------------------------------------------------------
//  The publisher's side: this thread

//  Publishes one event of run RUN, index INDEX. Returns 0 or -1.
static int
s_publish (s_case_t *self, s_impl_t impl, uint32_t run, uint32_t index)
{
    if (impl == S_RAW) {
        unsigned char *body = self->frame + self->topic_size + 1;
        memcpy (body + 2, &run, sizeof (run));
        memcpy (body + 6, &index, sizeof (index));
        //  A PUB never blocks: at a subscriber's high-water mark it drops
        return zmq_send (self->pub, self->frame, self->frame_size, ZMQ_DONTWAIT)
                       == (int)self->frame_size
                   ? 0
                   : -1;
    }
    unsigned char *body = self->bench->body;
    memcpy (body + 2, &run, sizeof (run));
    memcpy (body + 6, &index, sizeof (index));
    return shoal_node_publish (self->bench->pub_node, self->topic, body, S_BODY_SIZE);
}

//  The events each subscriber of IMPL has of RUN: the smallest, and whether
//  all have TARGET
static uint64_t
s_received_min (s_case_t *self, s_impl_t impl, uint32_t run, uint64_t *total)
{
    uint64_t least = UINT64_MAX;
    *total = 0;
    for (int index = 0; index < self->count; index++) {
        uint64_t progress = atomic_load_explicit (&self->subs[impl][index].progress,
                                                  memory_order_acquire);
        uint64_t count = progress >> S_COUNT_BITS == run ? progress & S_COUNT_MASK : 0;
        least = count < least ? count : least;
        *total += count;
    }
    return least;
}

//  Asks every subscriber thread of IMPL for its report, and waits for it.
//  Returns 0, or -1 if one did not answer in time.
static int
s_snapshot (s_case_t *self, s_impl_t impl)
{
    unsigned request = atomic_fetch_add (&self->snapshot, 1) + 1;
    int64_t deadline = s_now_ns () + (int64_t)S_SNAPSHOT_MS * 1000000;
    int spins = 0;
    for (int index = 0; index < self->count; index++)
        while (atomic_load_explicit (&self->subs[impl][index].ack, memory_order_acquire)
               != request) {
            if (s_now_ns () > deadline)
                return s_fail (self->bench, "%s subscriber %d did not answer",
                               s_impl_name[impl], index);
            s_nap (&spins);
        }
    //  Threads of the other side answer too, at their next wake-up; they
    //  are not waited for
    return 0;
}

//  Publishes probes (run 0) until every subscriber of IMPL has seen one:
//  then each is connected and subscribed. Returns 0 or -1.
static int
s_probe (s_case_t *self, s_impl_t impl)
{
    s_bench_t *bench = self->bench;
    int64_t deadline = s_setup_deadline (bench);
    uint32_t first = bench->probe + 1;
    int64_t next = 0;
    int spins = 0;
    while (true) {
        bool all = true;
        for (int index = 0; index < self->count && all; index++)
            all = atomic_load_explicit (&self->subs[impl][index].probe,
                                        memory_order_acquire)
                  >= first;
        if (all) {
            if (bench->probe > first && impl == S_SHOAL && bench->options.verbose)
                fprintf (stderr,
                         "bench-events: %u probes before every subscriber got one "
                         "(shoal_node_wait_subscribers returned before)\n",
                         bench->probe - first + 1);
            return 0;
        }
        int64_t now = s_now_ns ();
        if (now > deadline)
            return s_fail (bench,
                           "%s, %d subscriber(s): not all connected in time (%d ms at "
                           "most, within the budget)",
                           s_impl_name[impl], self->count, S_SETUP_MS);
        if (now >= next) {
            if (s_publish (self, impl, 0, ++bench->probe))
                return s_fail (bench, "%s: cannot publish a probe", s_impl_name[impl]);
            next = now + 2000000; //  one probe every 2 ms
        }
        s_nap (&spins);
    }
}

//  Waits until every subscriber of IMPL has COUNT events of RUN, or the
//  DEADLINE (ns). The subscriber that reaches COUNT posts WAKE: no polling,
//  so the waiting publisher neither takes CPU from the subscribers nor
//  wakes late. Returns the smallest count.
static uint64_t
s_wait_for (s_case_t *self, s_impl_t impl, uint32_t run, uint64_t count, int64_t deadline)
{
    uint64_t total;
    atomic_store (&self->mark, (uint_fast64_t)run << S_COUNT_BITS | count);
    uint64_t least;
    while ((least = s_received_min (self, impl, run, &total)) < count
           && s_now_ns () < deadline && !zsys_interrupted) {
        //  A post may be missed (a thread that passed COUNT before the mark
        //  was set): the wait is short, and the counts are read again
        struct timespec until;
        clock_gettime (CLOCK_MONOTONIC, &until);
        until.tv_nsec += 2000000;
        until.tv_sec += until.tv_nsec / 1000000000;
        until.tv_nsec %= 1000000000;
        sem_clockwait (&self->wake, CLOCK_MONOTONIC, &until);
    }
    atomic_store (&self->mark, 0);
    while (sem_trywait (&self->wake) == 0)
        ; //  posts of the others, too late to matter
    return least;
}

//  One run of IMPL in MODE: EVENTS events, within SECONDS. SAMPLE NULL for
//  a warm-up. Returns 0, or -1 on an error.
static int
s_run (s_case_t *self, s_impl_t impl, s_mode_t mode, size_t events, double seconds,
       s_sample_t *sample)
{
    s_bench_t *bench = self->bench;
    size_t window = bench->options.window;
    shoal_event_stats_t before[S_MAX_SUBS];
    shoal_publisher_stats_t published = { 0 };
    if (impl == S_SHOAL) {
        if (s_snapshot (self, impl))
            return -1;
        for (int index = 0; index < self->count; index++)
            before[index] = self->subs[impl][index].report_stats;
        published = shoal_node_publisher_stats (bench->pub_node);
    }
    uint32_t run = ++bench->run;
    atomic_store (&self->target, (uint_fast64_t)events);
    int64_t start = s_now_ns ();
    int64_t deadline = start + (int64_t)(seconds * 1e9);
    size_t sent = 0;
    int rc = 0;
    uint64_t total;
    while (sent < events && rc == 0) {
        //  The clock is read every 1024 events at most
        size_t until = events - sent > 1024 ? sent + 1024 : events;
        if (mode == S_PACED) {
            //  No subscriber more than WINDOW events behind the publisher;
            //  once one is, the publisher waits until all are within half
            //  (a subscriber then has WINDOW/2 queued while the publisher
            //  wakes)
            uint64_t least = s_received_min (self, impl, run, &total);
            if (least + window <= sent)
                least = s_wait_for (self, impl, run, sent - window / 2, deadline);
            if (least + window < until)
                until = least + window > sent ? (size_t)(least + window) : sent;
        }
        for (; sent < until; sent++)
            if (s_publish (self, impl, run, (uint32_t)sent)) {
                rc = s_fail (bench, "%s: publishing failed", s_impl_name[impl]);
                break;
            }
        if (s_now_ns () > deadline || zsys_interrupted)
            break;
    }
    int64_t send_end = s_now_ns ();
    //  Until every subscriber has what was sent, or nothing more comes; if
    //  the deadline stopped the sending, what is under way still arrives
    int64_t quiet
        = (int64_t)(mode == S_PACED ? S_QUIET_PACED_MS : S_QUIET_BLAST_MS) * 1000000;
    int64_t wait_end = (send_end > deadline ? send_end : deadline) + quiet;
    uint64_t last_total = UINT64_MAX;
    int64_t last_change = send_end;
    int spins = 0;
    while (rc == 0 && !zsys_interrupted) {
        uint64_t least = s_received_min (self, impl, run, &total);
        int64_t now = s_now_ns ();
        if (least >= sent || now > wait_end)
            break;
        if (total != last_total) {
            last_total = total;
            last_change = now;
        } else if (now - last_change > quiet)
            break;
        s_nap (&spins);
    }
    if (rc == 0 && zsys_interrupted)
        rc = s_fail (bench, "interrupted");
    //  The subscribers' reports, the run's figures
    if (rc == 0 && s_snapshot (self, impl))
        rc = -1;
    if (rc || !sample)
        return rc;
    memset (sample, 0, sizeof (*sample));
    sample->ran = true;
    sample->sent = sent;
    sample->received_min = s_received_min (self, impl, run, &total);
    sample->complete = sent == events && sample->received_min == events;
    int64_t end = start;
    for (int index = 0; index < self->count; index++) {
        s_sub_t *sub = &self->subs[impl][index];
        uint64_t progress = atomic_load_explicit (&sub->progress, memory_order_acquire);
        uint64_t count = progress >> S_COUNT_BITS == run ? progress & S_COUNT_MASK : 0;
        int64_t at = count == events
                         ? atomic_load_explicit (&sub->done_ns, memory_order_relaxed)
                         : atomic_load_explicit (&sub->last_ns, memory_order_relaxed);
        if (count && at > end)
            end = at;
        sample->lost += sent - count;
        if (sub->report_run == run)
            sample->gaps += sub->report_gaps;
        sample->malformed += sub->report_malformed;
        if (impl == S_SHOAL) {
            shoal_event_stats_t *now = &sub->report_stats, *was = &before[index];
            sample->missed += now->missed - was->missed;
            sample->recovered += now->recovered - was->recovered;
            sample->lost_counted += now->lost - was->lost;
            sample->duplicates += now->duplicates - was->duplicates;
            sample->malformed += now->malformed - was->malformed;
        }
    }
    if (impl == S_SHOAL)
        sample->unnumbered = shoal_node_publisher_stats (bench->pub_node).unnumbered
                             - published.unnumbered;
    sample->seconds = (end > start ? end - start : 1) / 1e9;
    sample->send_seconds = (send_end > start ? send_end - start : 1) / 1e9;
    sample->events_per_s = (double)total / self->count / sample->seconds;
    sample->send_per_s = sent / sample->send_seconds;
    return 0;
}

//  --------------------------------------------------------------------------
//  Setting up and tearing down a case

static int
s_case_start (s_case_t *self, s_impl_t impl)
{
    s_bench_t *bench = self->bench;
    if (impl == S_RAW) {
        self->pub = zmq_socket (bench->context, ZMQ_PUB);
        int hwm = S_HWM, linger = 0;
        if (!self->pub)
            return s_fail (bench, "raw: socket: %s", zmq_strerror (errno));
        zmq_setsockopt (self->pub, ZMQ_SNDHWM, &hwm, sizeof (hwm));
        zmq_setsockopt (self->pub, ZMQ_LINGER, &linger, sizeof (linger));
        size_t size = sizeof (self->endpoint);
        if (zmq_bind (self->pub, "tcp://127.0.0.1:*")
            || zmq_getsockopt (self->pub, ZMQ_LAST_ENDPOINT, self->endpoint, &size))
            return s_fail (bench, "raw: bind: %s", zmq_strerror (errno));
    }
    for (int index = 0; index < self->count; index++) {
        s_sub_t *sub = &self->subs[impl][index];
        sub->owner = self;
        sub->impl = impl;
        if (pthread_create (&sub->thread, NULL,
                            impl == S_RAW ? s_raw_subscriber : s_shoal_subscriber, sub))
            return s_fail (bench, "%s: cannot start a subscriber thread",
                           s_impl_name[impl]);
        sub->started = true;
    }
    int64_t deadline = s_setup_deadline (bench);
    int spins = 0;
    for (int index = 0; index < self->count; index++) {
        s_sub_t *sub = &self->subs[impl][index];
        while (atomic_load (&sub->ready) == 0 && s_now_ns () < deadline)
            s_nap (&spins);
        if (atomic_load (&sub->ready) != 1)
            return s_fail (bench, "%s: subscriber %d did not start", s_impl_name[impl],
                           index);
    }
    if (impl == S_SHOAL
        && !shoal_node_wait_subscribers (bench->pub_node, self->topic,
                                         (size_t)self->count, s_setup_ms (bench)))
        return s_fail (bench,
                       "shoal: shoal_node_wait_subscribers did not see %d subscriber(s) "
                       "of %s in time (%d ms at most, within the budget)",
                       self->count, self->topic, S_SETUP_MS);
    return s_probe (self, impl);
}

//  Stops every thread of the case, closes the raw PUB. Safe on any path.
//  Returns 0, or -1 if a thread did not end in time (it is stuck in the
//  library: nothing can be freed safely then)
static int
s_case_stop (s_case_t *self)
{
    atomic_store (&self->stop, 1);
    struct timespec deadline;
    clock_gettime (CLOCK_REALTIME, &deadline);
    deadline.tv_sec += S_SETUP_MS / 1000;
    for (int impl = S_RAW; impl < S_IMPLS; impl++)
        for (int index = 0; index < self->count; index++)
            if (self->subs[impl][index].started) {
                if (pthread_timedjoin_np (self->subs[impl][index].thread, NULL,
                                          &deadline))
                    return s_fail (self->bench,
                                   "%s subscriber %d of %d did not stop within %d ms",
                                   s_impl_name[impl], index, self->count, S_SETUP_MS);
                self->subs[impl][index].started = false;
            }
    if (self->pub) {
        zmq_close (self->pub);
        self->pub = NULL;
    }
    return 0;
}

//  The deadline of each of RUNS more runs, in seconds, so that all fit in
//  the budget; 0 if they do not
static double
s_run_seconds (s_bench_t *self, int runs)
{
    //  0.3 s is kept to tear down; a run may take its deadline, then the
    //  quiet wait, then two snapshots
    double left = (self->budget_end - s_now_ns ()) / 1e9 - 0.3;
    left = left / runs - (S_QUIET_PACED_MS + 2 * S_SNAPSHOT_MS) / 1000.0;
    if (left < 0.1)
        return 0;
    return left < self->options.seconds ? left : self->options.seconds;
}

//  A case: set up, warm up, run interleaved. Returns 0 or -1.
static int
s_case (s_bench_t *bench, s_case_t *self)
{
    s_options_t *options = &bench->options;
    int rc = 0;
    for (int impl = S_RAW; impl < S_IMPLS && rc == 0; impl++)
        if (options->impl[impl])
            rc = s_case_start (self, (s_impl_t)impl);
    int sides = options->impl[S_RAW] + options->impl[S_SHOAL];
    for (int impl = S_RAW; impl < S_IMPLS && rc == 0; impl++)
        if (options->impl[impl] && options->warmup) {
            double seconds = s_run_seconds (bench, 1);
            if (seconds > 0)
                rc = s_run (self, (s_impl_t)impl, S_PACED, options->warmup, seconds,
                            NULL);
        }
    for (int mode = S_PACED; mode < S_MODES && rc == 0; mode++) {
        if (!options->mode[mode])
            continue;
        for (int rep = 0; rep < options->reps && rc == 0; rep++) {
            //  Both sides of a rep, or neither
            double seconds = s_run_seconds (bench, sides);
            if (seconds <= 0) {
                bench->skipped += options->reps - rep;
                break;
            }
            for (int impl = S_RAW; impl < S_IMPLS && rc == 0; impl++) {
                if (!options->impl[impl])
                    continue;
                s_sample_t *sample = &self->runs[mode][impl][rep];
                rc = s_run (self, (s_impl_t)impl, (s_mode_t)mode, options->events,
                            seconds, sample);
                if (rc == 0 && mode == S_PACED && !options->verbose
                    && (sample->lost || sample->gaps || sample->malformed
                        || sample->missed || !sample->complete))
                    fprintf (stderr,
                             "bench-events: %d sub(s) paced %s run %d: %" PRIu64
                             " of %zu sent, %" PRIu64 " lost, %" PRIu64
                             " skipped in order, %" PRIu64 " malformed, %" PRIu64
                             " missed (shoal's count)\n",
                             self->count, s_impl_name[impl], rep + 1, sample->sent,
                             options->events, sample->lost, sample->gaps,
                             sample->malformed, sample->missed);
                if (rc == 0 && options->verbose)
                    fprintf (stderr,
                             "bench-events: %d sub(s) %s %-5s run %d: %" PRIu64
                             " sent in %.3f s (%.0f/s), %.0f events/s per subscriber "
                             "(%.3f s), lost %" PRIu64 ", gaps %" PRIu64
                             ", missed %" PRIu64 ", recovered %" PRIu64 "%s\n",
                             self->count, s_mode_name[mode], s_impl_name[impl], rep + 1,
                             sample->sent, sample->send_seconds, sample->send_per_s,
                             sample->events_per_s, sample->seconds, sample->lost,
                             sample->gaps, sample->missed, sample->recovered,
                             sample->complete ? "" : " (incomplete)");
            }
            if (rc == 0)
                self->reps_done[mode] = rep + 1;
        }
    }
    return rc;
}

//  --------------------------------------------------------------------------
//  The private cluster of the shoal side

static int
s_cluster_make (s_bench_t *self)
{
    struct timespec now;
    clock_gettime (CLOCK_REALTIME, &now);
    snprintf (self->cluster, sizeof (self->cluster), "bench-events-%d-%lx",
              (int)getpid (), (unsigned long)(now.tv_nsec ^ (now.tv_sec << 20)));
    snprintf (self->rendezvous, sizeof (self->rendezvous), "/tmp/bench-events-XXXXXX");
    if (!mkdtemp (self->rendezvous)) {
        *self->rendezvous = 0;
        return s_fail (self, "cannot make a rendezvous folder in /tmp: %s",
                       strerror (errno));
    }
    return 0;
}

//  Removes the rendezvous folder, and what a node may have left in it
static void
s_cluster_remove (s_bench_t *self)
{
    if (!*self->rendezvous)
        return;
    zdir_t *dir = zdir_new (self->rendezvous, NULL);
    if (dir)
        zdir_remove (dir, true);
    zdir_destroy (&dir);
    *self->rendezvous = 0;
}

static shoal_node_t *
s_node_new (s_bench_t *self)
{
    shoal_node_t *node = shoal_node_new (self->cluster);
    if (!node) {
        s_fail (self, "cannot make a node of cluster %s", self->cluster);
        return NULL;
    }
    shoal_node_set_host (node, "127.0.0.1");
    shoal_node_set_rendezvous (node, self->rendezvous);
    if (shoal_node_start (node)) {
        s_fail (self, "cannot start a node of cluster %s", self->cluster);
        shoal_node_destroy (&node);
    }
    return node;
}

//  --------------------------------------------------------------------------
//  Reporting

static void
s_rows (s_bench_t *self, s_case_t *cases, s_row_t *rows, size_t *row_count)
{
    s_options_t *options = &self->options;
    *row_count = 0;
    for (size_t index = 0; index < options->case_count; index++)
        for (int mode = S_PACED; mode < S_MODES; mode++) {
            s_case_t *one = &cases[index];
            if (!options->mode[mode] || one->reps_done[mode] == 0)
                continue;
            s_row_t *row = &rows[(*row_count)++];
            memset (row, 0, sizeof (*row));
            row->subs = one->count;
            row->mode = (s_mode_t)mode;
            int reps = row->reps = one->reps_done[mode];
            double values[S_MAX_REPS];
            for (int impl = S_RAW; impl < S_IMPLS; impl++) {
                row->ran[impl] = options->impl[impl];
                if (!row->ran[impl])
                    continue;
                s_sample_t *runs = one->runs[mode][impl], *median = &row->median[impl];
#define S_MEDIAN(field)                                                                  \
    do {                                                                                 \
        for (int rep = 0; rep < reps; rep++)                                             \
            values[rep] = (double)runs[rep].field;                                       \
        median->field = (__typeof__ (median->field))s_median_of (values, (size_t)reps);  \
    } while (0)
                S_MEDIAN (sent);
                S_MEDIAN (seconds);
                S_MEDIAN (send_seconds);
                S_MEDIAN (events_per_s);
                S_MEDIAN (send_per_s);
                S_MEDIAN (received_min);
                S_MEDIAN (lost);
                S_MEDIAN (gaps);
                S_MEDIAN (malformed);
                S_MEDIAN (missed);
                S_MEDIAN (recovered);
                S_MEDIAN (lost_counted);
                S_MEDIAN (duplicates);
                S_MEDIAN (unnumbered);
#undef S_MEDIAN
                median->complete = true;
                double low = 0, high = 0;
                for (int rep = 0; rep < reps; rep++) {
                    median->complete = median->complete && runs[rep].complete;
                    double value = runs[rep].events_per_s;
                    low = rep == 0 || value < low ? value : low;
                    high = rep == 0 || value > high ? value : high;
                    //  Paced: any event lost in any run is a loss; a run cut
                    //  by its deadline (nothing lost) is a timeout
                    if (mode == S_PACED
                        && (runs[rep].lost || runs[rep].gaps || runs[rep].malformed
                            || runs[rep].missed)) {
                        if (impl == S_SHOAL)
                            row->loss = true;
                        else
                            row->raw_loss = true;
                    } else if (mode == S_PACED && !runs[rep].complete)
                        row->timeout = true;
                }
                row->spread[impl] = low > 0 ? high / low : 0;
            }
            if (row->ran[S_RAW] && row->ran[S_SHOAL]) {
                double sends[S_MAX_REPS];
                for (int rep = 0; rep < reps; rep++) {
                    s_sample_t *raw = &one->runs[mode][S_RAW][rep],
                               *shoal = &one->runs[mode][S_SHOAL][rep];
                    values[rep] = raw->events_per_s > 0
                                      ? shoal->events_per_s / raw->events_per_s
                                      : 0;
                    sends[rep]
                        = raw->send_per_s > 0 ? shoal->send_per_s / raw->send_per_s : 0;
                }
                row->judged = true;
                row->ratio = s_median_of (values, (size_t)reps);
                row->ratio_send = s_median_of (sends, (size_t)reps);
                row->pass = row->ratio >= S_TARGET;
            }
        }
}

static void
s_print_sample_json (const s_sample_t *sample)
{
    printf ("{\"sent\": %" PRIu64 ", \"seconds\": %.4f, \"events_per_s\": %.1f, "
            "\"send_seconds\": %.4f, \"send_per_s\": %.1f, \"received_min\": %" PRIu64
            ", \"lost\": %" PRIu64 ", \"gaps\": %" PRIu64 ", \"malformed\": %" PRIu64
            ", \"missed\": %" PRIu64 ", \"recovered\": %" PRIu64
            ", \"lost_counted\": %" PRIu64 ", \"duplicates\": %" PRIu64
            ", \"unnumbered\": %" PRIu64 ", \"complete\": %s}",
            sample->sent, sample->seconds, sample->events_per_s, sample->send_seconds,
            sample->send_per_s, sample->received_min, sample->lost, sample->gaps,
            sample->malformed, sample->missed, sample->recovered, sample->lost_counted,
            sample->duplicates, sample->unnumbered, sample->complete ? "true" : "false");
}

static void
s_machine_line (char *cpu, size_t cpu_size, double *load)
{
    snprintf (cpu, cpu_size, "unknown");
    FILE *file = fopen ("/proc/cpuinfo", "r");
    if (file) {
        char line[256];
        while (fgets (line, sizeof (line), file))
            if (strncmp (line, "model name", 10) == 0) {
                char *value = strchr (line, ':');
                if (value) {
                    value += 1 + strspn (value + 1, " \t");
                    value[strcspn (value, "\n")] = 0;
                    snprintf (cpu, cpu_size, "%s", value);
                }
                break;
            }
        fclose (file);
    }
    *load = -1;
    file = fopen ("/proc/loadavg", "r");
    if (file) {
        if (fscanf (file, "%lf", load) != 1)
            *load = -1;
        fclose (file);
    }
}

static void
s_print_json (s_bench_t *self, s_case_t *cases, s_row_t *rows, size_t row_count)
{
    s_options_t *options = &self->options;
    char cpu[160];
    double load;
    s_machine_line (cpu, sizeof (cpu), &load);
    int major, minor, patch, cmajor, cminor, cpatch;
    zmq_version (&major, &minor, &patch);
    zsys_version (&cmajor, &cminor, &cpatch);
    printf ("{\n  \"benchmark\": \"bench-events\",\n  \"machine\": {\"nproc\": %d, "
            "\"cpu\": \"%s\", \"load\": %.2f, \"libzmq\": \"%d.%d.%d\", "
            "\"czmq\": \"%d.%d.%d\", \"msgpack\": \"%s\", \"shoal\": \"%d.%d.%d\"},\n",
            (int)sysconf (_SC_NPROCESSORS_ONLN), cpu, load, major, minor, patch, cmajor,
            cminor, cpatch, msgpack_version (), SHOAL_VERSION_MAJOR, SHOAL_VERSION_MINOR,
            SHOAL_VERSION_PATCH);
    printf ("  \"body_bytes\": %d, \"events\": %zu, \"seconds\": %.3f, \"window\": %zu, "
            "\"hwm\": %d, \"reps\": %d, \"pin\": %d, \"skipped_reps\": %zu,\n",
            S_BODY_SIZE, options->events, options->seconds, options->window, S_HWM,
            options->reps, options->pin, self->skipped);
    printf (
        "  \"target\": {\"metric\": \"paced events_per_s shoal/raw\", \"min\": %.2f},\n",
        S_TARGET);
    printf ("  \"results\": [\n");
    bool pass = true;
    for (size_t index = 0; index < row_count; index++) {
        s_row_t *row = &rows[index];
        s_case_t *one = NULL;
        for (size_t at = 0; at < options->case_count; at++)
            if (cases[at].count == row->subs)
                one = &cases[at];
        printf ("    {\"subscribers\": %d, \"mode\": \"%s\", \"reps\": %d", row->subs,
                s_mode_name[row->mode], row->reps);
        for (int impl = S_RAW; impl < S_IMPLS; impl++) {
            if (!row->ran[impl])
                continue;
            printf (",\n     \"%s\": ", s_impl_name[impl]);
            s_print_sample_json (&row->median[impl]);
            printf (",\n     \"%s_runs\": [", s_impl_name[impl]);
            for (int rep = 0; rep < row->reps; rep++) {
                printf (rep ? ",\n       " : "\n       ");
                s_print_sample_json (&one->runs[row->mode][impl][rep]);
            }
            printf ("]");
        }
        printf (",\n     \"spread\": {\"raw\": %.3f, \"shoal\": %.3f}",
                row->spread[S_RAW], row->spread[S_SHOAL]);
        if (row->judged) {
            printf (",\n     \"ratio\": {\"events_per_s\": %.3f, \"send_per_s\": %.3f}",
                    row->ratio, row->ratio_send);
            if (row->mode == S_PACED) {
                printf (",\n     \"target\": {\"ratio\": %.3f, \"limit\": \">= %.2f\", "
                        "\"pass\": %s}",
                        row->ratio, S_TARGET, row->pass ? "true" : "false");
                pass = pass && row->pass;
            }
        }
        if (row->mode == S_PACED)
            printf (",\n     \"loss\": %s, \"raw_loss\": %s, \"timeout\": %s",
                    row->loss ? "true" : "false", row->raw_loss ? "true" : "false",
                    row->timeout ? "true" : "false");
        pass = pass && !(row->mode == S_PACED && (row->loss || row->timeout));
        printf ("}%s\n", index + 1 < row_count ? "," : "");
    }
    printf ("  ],\n  \"pass\": %s\n}\n", pass ? "true" : "false");
}

static void
s_print_table (s_bench_t *self, s_row_t *rows, size_t row_count)
{
    s_options_t *options = &self->options;
    char cpu[160];
    double load;
    s_machine_line (cpu, sizeof (cpu), &load);
    int major, minor, patch;
    zmq_version (&major, &minor, &patch);
    printf ("bench-events: 1 publisher, K subscribers, tcp loopback, %d-byte body; "
            "%zu events per run (or %.1f s);\npaced: no subscriber more than %zu "
            "events behind the publisher (HWM %d, %d at subscribers);\nmedian of "
            "interleaved runs; shoal/raw is the median of the ratios of each raw run "
            "and the shoal run after it\n",
            S_BODY_SIZE, options->events, options->seconds, options->window, S_HWM, S_RCV_HWM);
    if (options->pin >= 0)
        printf ("every thread ran on CPU %d (--pin)\n", options->pin);
    printf ("machine: %d CPUs, %s, load %.2f; libzmq %d.%d.%d, shoal %d.%d.%d\n\n",
            (int)sysconf (_SC_NPROCESSORS_ONLN), cpu, load, major, minor, patch,
            SHOAL_VERSION_MAJOR, SHOAL_VERSION_MINOR, SHOAL_VERSION_PATCH);
    printf ("| %-6s | %-5s | %4s | %12s | %12s | %9s | %10s | %-28s | %-6s |\n", "case",
            "mode", "runs", "raw ev/s", "shoal ev/s", "shoal/raw", "raw lost",
            "shoal lost (missed/recovered)", "result");
    printf ("|--------|-------|------|--------------|--------------|-----------|"
            "------------|-------------------------------|--------|\n");
    for (size_t index = 0; index < row_count; index++) {
        s_row_t *row = &rows[index];
        char name[16], raw[32] = "-", shoal[32] = "-", ratio[16] = "-",
                       raw_lost[32] = "-", shoal_lost[48] = "-";
        snprintf (name, sizeof (name), "%d sub%s", row->subs, row->subs > 1 ? "s" : "");
        s_sample_t *r = &row->median[S_RAW], *s = &row->median[S_SHOAL];
        if (row->ran[S_RAW]) {
            snprintf (raw, sizeof (raw), "%.0f", r->events_per_s);
            snprintf (raw_lost, sizeof (raw_lost), "%" PRIu64, r->lost);
        }
        if (row->ran[S_SHOAL]) {
            snprintf (shoal, sizeof (shoal), "%.0f", s->events_per_s);
            snprintf (shoal_lost, sizeof (shoal_lost),
                      "%" PRIu64 " (%" PRIu64 "/%" PRIu64 ")", s->lost, s->missed,
                      s->recovered);
        }
        if (row->judged)
            snprintf (ratio, sizeof (ratio), "%.2f", row->ratio);
        const char *result = "";
        if (row->mode == S_PACED && row->loss)
            result = "LOSS";
        else if (row->mode == S_PACED && row->raw_loss)
            result = "RAWLOSS";
        else if (row->mode == S_PACED && row->timeout)
            result = "SHORT";
        else if (row->mode == S_PACED && row->judged)
            result = row->pass ? "PASS" : "MISS";
        else if (row->mode == S_BLAST)
            result = "info";
        printf ("| %-6s | %-5s | %4d | %12s | %12s | %9s | %10s | %-29s | %-6s |\n", name,
                s_mode_name[row->mode], row->reps, raw, shoal, ratio, raw_lost,
                shoal_lost, result);
    }
    //  Blast: the publisher's own rate
    bool blast = false;
    for (size_t index = 0; index < row_count; index++)
        blast = blast || rows[index].mode == S_BLAST;
    if (blast) {
        printf ("\nblast, the publisher's rate (events sent per second, no pacing):\n\n");
        printf ("| %-6s | %12s | %12s | %9s |\n", "case", "raw sent/s", "shoal sent/s",
                "shoal/raw");
        printf ("|--------|--------------|--------------|-----------|\n");
        for (size_t index = 0; index < row_count; index++) {
            s_row_t *row = &rows[index];
            if (row->mode != S_BLAST)
                continue;
            char name[16], raw[32] = "-", shoal[32] = "-", ratio[16] = "-";
            snprintf (name, sizeof (name), "%d sub%s", row->subs,
                      row->subs > 1 ? "s" : "");
            if (row->ran[S_RAW])
                snprintf (raw, sizeof (raw), "%.0f", row->median[S_RAW].send_per_s);
            if (row->ran[S_SHOAL])
                snprintf (shoal, sizeof (shoal), "%.0f", row->median[S_SHOAL].send_per_s);
            if (row->judged)
                snprintf (ratio, sizeof (ratio), "%.2f", row->ratio_send);
            printf ("| %-6s | %12s | %12s | %9s |\n", name, raw, shoal, ratio);
        }
    }
    printf ("\n");
    for (size_t index = 0; index < row_count; index++) {
        s_row_t *row = &rows[index];
        if (row->mode != S_PACED)
            continue;
        if (row->judged)
            printf ("%d subscriber%s: %s (shoal/raw %.3f, target >= %.2f)%s\n", row->subs,
                    row->subs > 1 ? "s" : "", row->pass ? "PASS" : "MISS", row->ratio,
                    S_TARGET,
                    row->loss ? "; events were LOST below the high-water mark"
                              : "; nothing lost");
        else if (row->loss)
            printf ("%d subscriber%s: events were LOST below the high-water mark\n",
                    row->subs, row->subs > 1 ? "s" : "");
        if (row->raw_loss)
            printf ("%d subscriber%s: raw PUB/SUB itself lost events below the "
                    "high-water mark (see the top of bench/bench_events.c): lower -W\n",
                    row->subs, row->subs > 1 ? "s" : "");
        if (row->timeout)
            printf ("%d subscriber%s: a paced run was cut short by its deadline (-d); "
                    "its rate counts what arrived\n",
                    row->subs, row->subs > 1 ? "s" : "");
    }
    //  (blast runs are erratic by nature: only paced ones are judged steady)
    for (size_t index = 0; index < row_count; index++)
        for (int impl = S_RAW; impl < S_IMPLS; impl++)
            if (rows[index].mode == S_PACED && rows[index].ran[impl]
                && rows[index].spread[impl] > S_UNSTEADY)
                printf (
                    "unsteady: %d sub(s) %s, %s: its slowest run was %.1fx its fastest; "
                    "rerun when the machine is quieter, or with -r 5\n",
                    rows[index].subs, s_mode_name[rows[index].mode], s_impl_name[impl],
                    rows[index].spread[impl]);
    if (self->skipped)
        printf ("budget: %zu rep(s) skipped to stay within %.0f s\n", self->skipped,
                options->budget);
}

//  --------------------------------------------------------------------------
//  Command line

static void
s_usage (FILE *out)
{
    fprintf (
        out,
        "usage: bench-events [options]\n"
        "Events from one publisher to 1 and to 4 subscribers over tcp loopback,\n"
        "100-byte bodies, through raw ZeroMQ PUB/SUB and through shoal, compared.\n\n"
        "  -n N              events per run (default 500000)\n"
        "  -d SECONDS        seconds per run, at most (default 5)\n"
        "  -w N              warm-up events per case and side (default 20000)\n"
        "  -W N              paced: how many events a subscriber may be behind\n"
        "                    the publisher (default 500, at most 2000: see the\n"
        "                    comment at the top of bench/bench_events.c)\n"
        "  -r N              runs per case, mode and side, median kept (default 3)\n"
        "  --subs LIST       subscriber counts, comma-separated (default 1,4)\n"
        "  --mode M          paced, blast or all (default all)\n"
        "  --impl I          raw, shoal or both (default both)\n"
        "  --budget SECONDS  the whole run, at most (default 50); runs that do not\n"
        "                    fit are skipped\n"
        "  --quick           CI smoke run: -n 100000 -w 10000 -d 1 --budget 9\n"
        "  --json            JSON on stdout instead of the table\n"
        "  --pin CPU         every thread on that one CPU (as taskset -c CPU)\n"
        "  --strict          exit 3 if the target is missed or a paced run lost\n"
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

static bool
s_parse_seconds (const char *text, double max, double *value)
{
    char *end;
    *value = strtod (text, &end);
    return end != text && *end == 0 && *value > 0 && *value <= max;
}

static int
s_parse (s_options_t *options, int argc, char **argv)
{
    long events = -1, warmup = -1, window = 500, reps = 3;
    double seconds = -1, budget = -1;
    bool quick = false;
    options->impl[S_RAW] = options->impl[S_SHOAL] = true;
    options->mode[S_PACED] = options->mode[S_BLAST] = true;
    options->subs[0] = 1;
    options->subs[1] = 4;
    options->case_count = 2;
    options->pin = -1;
    for (int index = 1; index < argc; index++) {
        const char *arg = argv[index];
        const char *value = index + 1 < argc ? argv[index + 1] : NULL;
        bool takes = streq (arg, "-n") || streq (arg, "-d") || streq (arg, "-w")
                     || streq (arg, "-W") || streq (arg, "-r") || streq (arg, "--subs")
                     || streq (arg, "--mode") || streq (arg, "--impl")
                     || streq (arg, "--budget") || streq (arg, "--pin");
        if (takes && !value) {
            fprintf (stderr, "bench-events: %s needs a value\n", arg);
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
            if (!s_parse_size (value, 1, 100000000, &events)) {
                fprintf (stderr, "bench-events: -n takes 1..100000000\n");
                return 2;
            }
        } else if (streq (arg, "-w")) {
            if (!s_parse_size (value, 0, 100000000, &warmup)) {
                fprintf (stderr, "bench-events: -w takes 0..100000000\n");
                return 2;
            }
        } else if (streq (arg, "-W")) {
            if (!s_parse_size (value, 1, S_HWM / 5, &window)) {
                fprintf (stderr, "bench-events: -W takes 1..%d\n", S_HWM / 5);
                return 2;
            }
        } else if (streq (arg, "-r")) {
            if (!s_parse_size (value, 1, S_MAX_REPS, &reps)) {
                fprintf (stderr, "bench-events: -r takes 1..%d\n", S_MAX_REPS);
                return 2;
            }
        } else if (streq (arg, "-d")) {
            if (!s_parse_seconds (value, 3600, &seconds)) {
                fprintf (stderr, "bench-events: -d takes seconds, more than 0\n");
                return 2;
            }
        } else if (streq (arg, "--budget")) {
            if (!s_parse_seconds (value, 36000, &budget)) {
                fprintf (stderr, "bench-events: --budget takes seconds, more than 0\n");
                return 2;
            }
        } else if (streq (arg, "--pin")) {
            long cpu;
            if (!s_parse_size (value, 0, CPU_SETSIZE - 1, &cpu)) {
                fprintf (stderr, "bench-events: --pin takes a CPU number\n");
                return 2;
            }
            options->pin = (int)cpu;
        } else if (streq (arg, "--mode")) {
            options->mode[S_PACED] = streq (value, "paced") || streq (value, "all");
            options->mode[S_BLAST] = streq (value, "blast") || streq (value, "all");
            if (!options->mode[S_PACED] && !options->mode[S_BLAST]) {
                fprintf (stderr, "bench-events: --mode takes paced, blast or all\n");
                return 2;
            }
        } else if (streq (arg, "--impl")) {
            options->impl[S_RAW] = streq (value, "raw") || streq (value, "both");
            options->impl[S_SHOAL] = streq (value, "shoal") || streq (value, "both");
            if (!options->impl[S_RAW] && !options->impl[S_SHOAL]) {
                fprintf (stderr, "bench-events: --impl takes raw, shoal or both\n");
                return 2;
            }
        } else if (streq (arg, "--subs")) {
            options->case_count = 0;
            char copy[128];
            snprintf (copy, sizeof (copy), "%s", value);
            char *saved = NULL;
            for (char *item = strtok_r (copy, ",", &saved); item;
                 item = strtok_r (NULL, ",", &saved)) {
                long subs;
                if (options->case_count == S_MAX_CASES
                    || !s_parse_size (item, 1, S_MAX_SUBS, &subs)) {
                    fprintf (stderr,
                             "bench-events: --subs takes up to %d numbers 1..%d, "
                             "comma-separated\n",
                             S_MAX_CASES, S_MAX_SUBS);
                    return 2;
                }
                options->subs[options->case_count++] = (int)subs;
            }
            if (options->case_count == 0) {
                fprintf (stderr, "bench-events: --subs needs a number\n");
                return 2;
            }
        } else {
            fprintf (stderr, "bench-events: unknown option '%s'\n", arg);
            s_usage (stderr);
            return 2;
        }
    }
    options->events = (size_t)(events > 0 ? events : quick ? 100000 : 500000);
    options->warmup = (size_t)(warmup >= 0 ? warmup : quick ? 10000 : 20000);
    options->seconds = seconds > 0 ? seconds : quick ? 1.0 : 5.0;
    options->budget = budget > 0 ? budget : quick ? 9.0 : 50.0;
    options->window = (size_t)window;
    options->reps = (int)reps;
    return 0;
}

//  --------------------------------------------------------------------------

int
main (int argc, char **argv)
{
    static s_bench_t bench_object;
    static s_case_t cases[S_MAX_CASES];
    s_bench_t *self = &bench_object;
    int rc = s_parse (&self->options, argc, argv);
    if (rc)
        return rc == 1 ? 0 : 2;
    s_options_t *options = &self->options;
    self->budget_end = s_now_ns () + (int64_t)(options->budget * 1e9);

    //  Pinned before any thread starts, so that every thread inherits it
    if (options->pin >= 0) {
        cpu_set_t cpus;
        CPU_ZERO (&cpus);
        CPU_SET (options->pin, &cpus);
        if (sched_setaffinity (0, sizeof (cpus), &cpus)) {
            fprintf (stderr, "bench-events: cannot run on CPU %d: %s\n", options->pin,
                     strerror (errno));
            return 2;
        }
    }
    //  Setup and snapshots wait in naps of 20 us: let the kernel wake this
    //  thread on time
    prctl (PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
    //  Logs go to stderr, so that --json output stays clean
    zsys_set_logstream (stderr);

    //  The body: a bin of 98 bytes, 100 in all; the same bytes for both sides
    unsigned char data[S_BIN_SIZE];
    for (size_t index = 0; index < sizeof (data); index++)
        data[index] = (unsigned char)('a' + index % 26);
    shoal_body_t *body = shoal_body_pack ("x%", data, sizeof (data));
    if (!body || shoal_body_size (body) != S_BODY_SIZE
        || ((const unsigned char *)shoal_body_data (body))[0] != 0xc4)
        rc = s_fail (self, "cannot pack a %d-byte body", S_BODY_SIZE);
    else
        memcpy (self->body, shoal_body_data (body), S_BODY_SIZE);
    shoal_body_destroy (&body);

    if (rc == 0 && options->impl[S_RAW]) {
        self->context = zmq_ctx_new ();
        if (!self->context)
            rc = s_fail (self, "zmq_ctx_new: %s", zmq_strerror (errno));
    }
    if (rc == 0 && options->impl[S_SHOAL]) {
        rc = s_cluster_make (self);
        if (rc == 0)
            self->pub_node = s_node_new (self);
        if (self->pub_node)
            self->sub_node = s_node_new (self);
        if (!self->sub_node)
            rc = -1;
        else if (!shoal_node_wait_nodes (self->sub_node, 2, s_setup_ms (self))
                 || !shoal_node_wait_nodes (self->pub_node, 2, s_setup_ms (self)))
            rc = s_fail (self, "the two nodes did not see each other within %d ms",
                         S_SETUP_MS);
    }

    for (size_t index = 0; index < options->case_count && rc == 0; index++) {
        s_case_t *one = &cases[index];
        one->bench = self;
        one->count = options->subs[index];
        sem_init (&one->wake, 0, 0);
        snprintf (one->topic, sizeof (one->topic), "bench.k%d", one->count);
        one->topic_size = strlen (one->topic);
        memcpy (one->frame, one->topic, one->topic_size + 1);
        memcpy (one->frame + one->topic_size + 1, self->body, S_BODY_SIZE);
        one->frame_size = one->topic_size + 1 + S_BODY_SIZE;
        if (options->verbose)
            fprintf (stderr, "bench-events: %d subscriber(s)\n", one->count);
        rc = s_case (self, one);
        char error[sizeof (self->error)];
        memcpy (error, self->error, sizeof (error));
        if (s_case_stop (one)) {
            //  A thread stuck in the library: say why, and leave at once
            fprintf (stderr, "bench-events: error: %s%s%s\n", rc ? error : "",
                     rc ? "; then " : "", self->error);
            s_cluster_remove (self);
            fflush (NULL);
            _exit (1);
        }
        sem_destroy (&one->wake); //  every thread that posts it has ended
        memcpy (self->error, error, sizeof (error));
    }
    shoal_node_destroy (&self->sub_node);
    shoal_node_destroy (&self->pub_node);
    s_cluster_remove (self);
    if (self->context)
        zmq_ctx_term (self->context);

    if (rc) {
        fprintf (stderr, "bench-events: error: %s\n", self->error);
        return 1;
    }
    s_row_t rows[S_MAX_CASES * S_MODES];
    size_t row_count;
    s_rows (self, cases, rows, &row_count);
    if (row_count == 0) {
        fprintf (stderr, "bench-events: error: no run fitted in the budget (%.1f s)\n",
                 options->budget);
        return 1;
    }
    if (options->json)
        s_print_json (self, cases, rows, row_count);
    else
        s_print_table (self, rows, row_count);
    fflush (stdout);
    if (options->strict)
        for (size_t index = 0; index < row_count; index++)
            if ((rows[index].judged && rows[index].mode == S_PACED && !rows[index].pass)
                || (rows[index].mode == S_PACED
                    && (rows[index].loss || rows[index].timeout)))
                return 3;
    return 0;
}
