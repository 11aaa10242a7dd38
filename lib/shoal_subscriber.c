/*  shoal_subscriber - events coming in (docs/events.md).

    One XSUB socket, connected to the publisher of every node in the view.
    ZeroMQ filters at the publisher by each pattern's literal prefix; the
    subscriber matches every event fully. Besides its patterns the socket
    subscribes to 0x03 and its own id: no event can match it, and it tells
    each publisher that this subscriber is connected (ZeroMQ sends it again
    on every reconnection, and withdraws it when the connection goes).

    Each publisher numbers its events per topic. The subscriber keeps, per
    publisher and topic (a stream), the next number it expects. A number
    past it is a gap: counted, and asked for again once (a FILL upstream);
    what is replayed within SHOAL_SUBSCRIBER_FILL_WAIT is delivered, marked
    replayed, and the rest is lost: counted, and reported to the gap
    callback. A stream starts at the first event (or number) heard on it.
    The publisher repeats each active topic's last number every beat, so a
    loss at the end of a burst is seen as well.                             */
#include "shoal_private.h"
#include <pthread.h>

//  How long a gap waits for its replay before it is given up as lost
#define SHOAL_SUBSCRIBER_FILL_WAIT 500
//  How often an idle subscriber looks for publishers that came or went
#define SHOAL_SUBSCRIBER_CHECK 50
//  A number this far below the one expected restarts its stream
#define SHOAL_SUBSCRIBER_RESTART (1 << 20)
//  Events queued per publisher at most, whatever the node's event buffer
//  (which is the publisher's queue per subscriber)
#define SHOAL_SUBSCRIBER_QUEUE 1000
//  How long a publisher that left stays connected: disconnecting drops
//  what it sent that is not read yet (its last events, as it stopped)
#define SHOAL_SUBSCRIBER_LINGER 1000
//  Streams (publisher, topic) tracked; the events of further ones are
//  delivered without loss detection
#define SHOAL_SUBSCRIBER_MAX_STREAMS 65536

typedef struct {
    char publisher [SHOAL_WIRE_MAX_PUBLISHER + 1];
    size_t publisher_size;
    char topic [SHOAL_MAX_TOPIC + 1];
    size_t topic_size;
    uint64_t next;              //  the number expected next
    uint64_t fill_first;        //  a gap asked for again: 0 if none
    uint64_t fill_last;
    uint64_t fill_next;         //  the replay expected next within it
    uint64_t fill_recovered;
    int64_t fill_deadline;
} s_stream_t;

struct _shoal_subscriber_t {
    shoal_node_t *node;
    char id [33];
    char *service;              //  "" for a plain subscriber
    zsock_t *socket;            //  XSUB
    //  Read by the membership thread too (to announce them): an array
    //  that only grows, its size published last
    char *patterns [SHOAL_MAX_PATTERNS];
    size_t pattern_sizes [SHOAL_MAX_PATTERNS];
    atomic_size_t patterns_size;
    s_stream_t *last;           //  the stream of the last event, looked up first
    zhashx_t *connected;        //  publisher endpoint -> its node id
    zhashx_t *leaving;          //  publisher endpoint -> when to disconnect it
    uint64_t generation;
    bool announced;
    zhashx_t *streams;          //  "publisher/topic" -> s_stream_t
    size_t fills;               //  streams with a gap being asked for
    int64_t next_check;
    shoal_event_stats_t stats;
    shoal_gap_fn *on_gap;
    void *gap_arg;
    shoal_event_t *current;     //  the event shoal_subscriber_next lent
};

static void
s_stream_destroy (void **item)
{
    free (*item);
    *item = NULL;
}

static void s_follow_view (shoal_subscriber_t *self);

static shoal_subscriber_t *
s_new (shoal_node_t *node, const char *service)
{
    shoal_subscriber_t *self = (shoal_subscriber_t *) zmalloc (sizeof (shoal_subscriber_t));
    self->node = node;
    self->service = strdup (service);
    zuuid_t *uuid = zuuid_new ();
    snprintf (self->id, sizeof (self->id), "%s", zuuid_str (uuid));
    zuuid_destroy (&uuid);
    self->socket = zsock_new (ZMQ_XSUB);
    //  What one publisher can park here is this queue's length of frames,
    //  each at most SHOAL_MAX_EVENT and a header: bounded, also against a
    //  hostile publisher
    int queue = shoal_node_config (node)->event_buffer;
    zsock_set_rcvhwm (self->socket, queue < SHOAL_SUBSCRIBER_QUEUE ? queue : SHOAL_SUBSCRIBER_QUEUE);
    zsock_set_maxmsgsize (self->socket,
                          SHOAL_MAX_EVENT + SHOAL_MAX_TOPIC + SHOAL_WIRE_EVENT_OVERHEAD
                              + SHOAL_WIRE_MAX_HEADER);
    zsock_set_linger (self->socket, 0);
    //  No ZMTP heartbeats (see lib/shoal_publisher.c): a publisher that
    //  dies or freezes leaves the view through gossip
    self->connected = zhashx_new ();
    zhashx_set_destructor (self->connected, (zhashx_destructor_fn *) zstr_free);
    self->leaving = zhashx_new ();
    zhashx_set_destructor (self->leaving, (zhashx_destructor_fn *) zstr_free);
    self->streams = zhashx_new ();
    zhashx_set_destructor (self->streams, s_stream_destroy);
    //  Presence, before any connection: every publisher learns of us
    uint8_t presence [2 + sizeof (self->id)];
    presence [0] = 1;
    presence [1] = 0x03;
    memcpy (presence + 2, self->id, strlen (self->id));
    zmq_send (zsock_resolve (self->socket), presence, 2 + strlen (self->id), 0);
    return self;
}

shoal_subscriber_t *
shoal_subscriber_new (shoal_node_t *node)
{
    return node ? s_new (node, "") : NULL;
}

shoal_subscriber_t *
shoal_subscriber_new_for (shoal_node_t *node, const char *service)
{
    return s_new (node, service);
}

void
shoal_subscriber_destroy (shoal_subscriber_t **self_p)
{
    shoal_subscriber_t *self = *self_p;
    if (!self)
        return;
    if (self->announced)
        shoal_node_announce_subscriber (self->node, "UNSUB", self);
    shoal_event_destroy (&self->current);
    zsock_destroy (&self->socket);
    for (size_t index = 0; index < atomic_load (&self->patterns_size); index++)
        free (self->patterns [index]);
    zhashx_destroy (&self->connected);
    zhashx_destroy (&self->leaving);
    zhashx_destroy (&self->streams);
    free (self->service);
    free (self);
    *self_p = NULL;
}

int
shoal_subscriber_subscribe (shoal_subscriber_t *self, const char *pattern)
{
    size_t count = atomic_load (&self->patterns_size);
    if (!pattern || !shoal_pattern_valid (pattern) || count >= SHOAL_MAX_PATTERNS)
        return -1;
    uint8_t subscription [SHOAL_MAX_TOPIC + 3];
    subscription [0] = 1;
    size_t size = shoal_pattern_prefix (pattern, (char *) subscription + 1,
                                        sizeof (subscription) - 1);
    zmq_send (zsock_resolve (self->socket), subscription, size + 1, 0);
    self->patterns [count] = strdup (pattern);
    self->pattern_sizes [count] = strlen (pattern);
    atomic_store (&self->patterns_size, count + 1);

    //  The cluster learns the pattern: publishers wait for us on it
    //  (shoal_node_wait_subscribers)
    shoal_node_announce_subscriber (self->node, self->announced ? "CHANGED" : "SUB", self);
    self->announced = true;
    s_follow_view (self);
    return 0;
}

void
shoal_subscriber_on_gap (shoal_subscriber_t *self, shoal_gap_fn *fn, void *arg)
{
    self->on_gap = fn;
    self->gap_arg = arg;
}

shoal_event_stats_t
shoal_subscriber_stats (shoal_subscriber_t *self)
{
    return self->stats;
}

const char *
shoal_subscriber_id (shoal_subscriber_t *self)
{
    return self->id;
}

void
shoal_subscriber_set_buffer (shoal_subscriber_t *self, int events)
{
    zsock_set_rcvhwm (self->socket, events > 0 ? events : SHOAL_DEFAULT_EVENT_BUFFER);
}

const char *
shoal_subscriber_service (shoal_subscriber_t *self)
{
    return self->service;
}

size_t
shoal_subscriber_patterns (shoal_subscriber_t *self)
{
    return atomic_load (&self->patterns_size);
}

const char *
shoal_subscriber_pattern_at (shoal_subscriber_t *self, size_t index)
{
    return index < atomic_load (&self->patterns_size) ? self->patterns [index] : NULL;
}

zsock_t *
shoal_subscriber_socket (shoal_subscriber_t *self)
{
    return self->socket;
}

void
shoal_subscriber_count_failed (shoal_subscriber_t *self)
{
    self->stats.failed++;
}

//  --------------------------------------------------------------------------
//  Publishers coming and going

static void
s_forget_publisher (shoal_subscriber_t *self, const char *publisher)
{
    zlistx_t *gone = zlistx_new ();
    for (s_stream_t *stream = (s_stream_t *) zhashx_first (self->streams); stream;
         stream = (s_stream_t *) zhashx_next (self->streams))
        if (streq (stream->publisher, publisher))
            zlistx_add_end (gone, (void *) zhashx_cursor (self->streams));
    for (const char *key = (const char *) zlistx_first (gone); key;
         key = (const char *) zlistx_next (gone)) {
        s_stream_t *stream = (s_stream_t *) zhashx_lookup (self->streams, key);
        if (stream->fill_first)
            self->fills--;
        if (stream == self->last)
            self->last = NULL;
        zhashx_delete (self->streams, key);
    }
    zlistx_destroy (&gone);
}

//  Connects to the publishers that joined; those that left are dropped
//  SHOAL_SUBSCRIBER_LINGER later (s_drop_leavers)
static void
s_follow_view (shoal_subscriber_t *self)
{
    uint64_t generation = shoal_node_generation (self->node);
    if (generation == self->generation)
        return;
    self->generation = generation;
    shoal_view_t *view = shoal_node_view (self->node);
    if (!view)
        return;
    zhashx_t *wanted = zhashx_new ();
    for (size_t index = 0; index < shoal_view_publishers (view); index++) {
        const char *node;
        const char *endpoint = shoal_view_publisher_at (view, index, &node);
        zhashx_insert (wanted, endpoint, (void *) node);
        zhashx_delete (self->leaving, endpoint);        //  back before it was dropped
        if (!zhashx_lookup (self->connected, endpoint)
            && zmq_connect (zsock_resolve (self->socket), endpoint) == 0)
            zhashx_insert (self->connected, endpoint, strdup (node));
    }
    char when [24];
    snprintf (when, sizeof (when), "%" PRId64, zclock_mono () + SHOAL_SUBSCRIBER_LINGER);
    for (char *node = (char *) zhashx_first (self->connected); node;
         node = (char *) zhashx_next (self->connected)) {
        const char *endpoint = (const char *) zhashx_cursor (self->connected);
        if (!zhashx_lookup (wanted, endpoint) && !zhashx_lookup (self->leaving, endpoint))
            zhashx_insert (self->leaving, endpoint, strdup (when));
    }
    zhashx_destroy (&wanted);
    shoal_view_destroy (&view);
}

//  Disconnects the publishers that left long enough ago, and forgets what
//  was known of them
static void
s_drop_leavers (shoal_subscriber_t *self, int64_t now)
{
    zlistx_t *gone = zlistx_new ();
    for (char *when = (char *) zhashx_first (self->leaving); when;
         when = (char *) zhashx_next (self->leaving))
        if (now >= strtoll (when, NULL, 10))
            zlistx_add_end (gone, (void *) zhashx_cursor (self->leaving));
    for (const char *endpoint = (const char *) zlistx_first (gone); endpoint;
         endpoint = (const char *) zlistx_next (gone)) {
        zmq_disconnect (zsock_resolve (self->socket), endpoint);
        s_forget_publisher (self, (const char *) zhashx_lookup (self->connected, endpoint));
        zhashx_delete (self->connected, endpoint);
        zhashx_delete (self->leaving, endpoint);
    }
    zlistx_destroy (&gone);
}

//  --------------------------------------------------------------------------
//  Gaps

static void
s_close_fill (shoal_subscriber_t *self, s_stream_t *stream)
{
    uint64_t lost = stream->fill_last - stream->fill_first + 1 - stream->fill_recovered;
    self->stats.lost += lost;
    if (lost && self->on_gap)
        self->on_gap (stream->publisher, stream->topic, stream->fill_first, lost,
                      self->gap_arg);
    stream->fill_first = stream->fill_last = 0;
    self->fills--;
}

//  Events FIRST..LAST of the stream did not arrive: ask for them again
static void
s_gap (shoal_subscriber_t *self, s_stream_t *stream, uint64_t first, uint64_t last)
{
    self->stats.missed += last - first + 1;
    if (stream->fill_first)
        s_close_fill (self, stream);
    stream->fill_first = first;
    stream->fill_last = last;
    stream->fill_next = first;
    stream->fill_recovered = 0;
    stream->fill_deadline = zclock_mono () + SHOAL_SUBSCRIBER_FILL_WAIT;
    self->fills++;
    //  The request goes as a subscription to itself, withdrawn at once: an
    //  XPUB hands those over cleanly, while libzmq 4.3.4 gives a plain
    //  upstream message the flags it had on its way, which leaks it when
    //  it came over inproc from a subscriber of several publishers
    uint8_t request [1 + SHOAL_MAX_TOPIC + SHOAL_WIRE_MAX_PUBLISHER + 64];
    size_t size = shoal_wire_encode_fill (request + 1, sizeof (request) - 1, stream->publisher,
                                          stream->topic, first, last);
    if (size) {
        request [0] = 1;
        zmq_send (zsock_resolve (self->socket), request, size + 1, ZMQ_DONTWAIT);
        request [0] = 0;
        zmq_send (zsock_resolve (self->socket), request, size + 1, ZMQ_DONTWAIT);
    }
}

//  Gives up the gaps whose replay did not come in time
static void
s_expire_fills (shoal_subscriber_t *self, int64_t now)
{
    if (!self->fills)
        return;
    for (s_stream_t *stream = (s_stream_t *) zhashx_first (self->streams); stream;
         stream = (s_stream_t *) zhashx_next (self->streams))
        if (stream->fill_first && now >= stream->fill_deadline)
            s_close_fill (self, stream);
}

int
shoal_subscriber_timeout (shoal_subscriber_t *self)
{
    int64_t now = zclock_mono ();
    int64_t wait = SHOAL_SUBSCRIBER_CHECK;
    for (s_stream_t *stream = self->fills ? (s_stream_t *) zhashx_first (self->streams) : NULL;
         stream; stream = (s_stream_t *) zhashx_next (self->streams))
        if (stream->fill_first && stream->fill_deadline - now < wait)
            wait = stream->fill_deadline - now;
    return wait > 0 ? (int) wait : 0;
}

//  The stream of EVENT, if known. Events come in runs of one publisher
//  and topic: the last stream is tried before the table
static s_stream_t *
s_find (shoal_subscriber_t *self, const shoal_wire_event_t *event)
{
    s_stream_t *last = self->last;
    if (last && last->topic_size == event->topic_size
        && last->publisher_size == event->publisher_size
        && memcmp (last->topic, event->topic, event->topic_size) == 0
        && memcmp (last->publisher, event->publisher, event->publisher_size) == 0)
        return last;
    char key [SHOAL_WIRE_MAX_PUBLISHER + SHOAL_MAX_TOPIC + 2];
    memcpy (key, event->publisher, event->publisher_size);
    key [event->publisher_size] = '/';
    memcpy (key + event->publisher_size + 1, event->topic, event->topic_size);
    key [event->publisher_size + 1 + event->topic_size] = 0;
    s_stream_t *stream = (s_stream_t *) zhashx_lookup (self->streams, key);
    if (stream)
        self->last = stream;
    return stream;
}

//  A new stream for EVENT (NULL if the table is full). Only wanted topics
//  get one, and patterns are never withdrawn: a stream stays wanted
static s_stream_t *
s_make (shoal_subscriber_t *self, const shoal_wire_event_t *event)
{
    if (zhashx_size (self->streams) >= SHOAL_SUBSCRIBER_MAX_STREAMS)
        return NULL;
    char key [SHOAL_WIRE_MAX_PUBLISHER + SHOAL_MAX_TOPIC + 2];
    memcpy (key, event->publisher, event->publisher_size);
    key [event->publisher_size] = '/';
    memcpy (key + event->publisher_size + 1, event->topic, event->topic_size);
    key [event->publisher_size + 1 + event->topic_size] = 0;
    s_stream_t *stream = (s_stream_t *) zmalloc (sizeof (s_stream_t));
    memcpy (stream->publisher, event->publisher, event->publisher_size);
    stream->publisher_size = event->publisher_size;
    memcpy (stream->topic, event->topic, event->topic_size);
    stream->topic_size = event->topic_size;
    zhashx_insert (self->streams, key, stream);
    self->last = stream;
    return stream;
}

//  Applies EVENT's number to STREAM (NULL: none yet, or the table is
//  full); true if the event is to be delivered
static bool
s_number (shoal_subscriber_t *self, s_stream_t *stream, const shoal_wire_event_t *event)
{
    if (event->seq == 0)
        return event->kind == SHOAL_WIRE_EVENT;     //  unnumbered
    if (!stream) {
        if (event->kind == SHOAL_WIRE_REPLAY)
            return false;
        //  Our first word of this stream: no gap to judge before it
        stream = s_make (self, event);
        if (stream)
            stream->next = event->seq + 1;
        return event->kind == SHOAL_WIRE_EVENT;
    }
    switch (event->kind) {
        case SHOAL_WIRE_EVENT:
            if (event->seq + SHOAL_SUBSCRIBER_RESTART < stream->next) {
                //  Far behind: not a repeat but numbering that started
                //  again (or a forged number far ahead before it): the
                //  stream restarts here rather than drop all that follows
                if (stream->fill_first)
                    s_close_fill (self, stream);
                stream->next = event->seq + 1;
                return true;
            }
            if (event->seq < stream->next) {
                self->stats.duplicates++;
                return false;
            }
            if (event->seq > stream->next)
                s_gap (self, stream, stream->next, event->seq - 1);
            stream->next = event->seq + 1;
            return true;
        case SHOAL_WIRE_SEQ:
            if (event->seq >= stream->next) {
                s_gap (self, stream, stream->next, event->seq);
                stream->next = event->seq + 1;
            }
            return false;
        case SHOAL_WIRE_REPLAY:
            //  Replays go to every subscriber of the topic: only those we
            //  asked for, once each
            if (!stream->fill_first || event->seq < stream->fill_next
                || event->seq > stream->fill_last)
                return false;
            stream->fill_next = event->seq + 1;
            stream->fill_recovered++;
            self->stats.recovered++;
            if (stream->fill_next > stream->fill_last)
                s_close_fill (self, stream);
            return true;
    }
    return false;
}

static bool
s_wanted (shoal_subscriber_t *self, const shoal_wire_event_t *event)
{
    size_t count = atomic_load_explicit (&self->patterns_size, memory_order_relaxed);
    for (size_t index = 0; index < count; index++)
        if (shoal_pattern_match_valid (self->patterns [index], self->pattern_sizes [index],
                                       event->topic, event->topic_size))
            return true;
    return false;
}

shoal_event_t *
shoal_subscriber_next (shoal_subscriber_t *self)
{
    shoal_event_destroy (&self->current);
    s_follow_view (self);
    //  Timers only when something waits on one: the clock is not free
    if (self->fills || zhashx_size (self->leaving)) {
        int64_t now = zclock_mono ();
        if (now >= self->next_check) {
            s_expire_fills (self, now);
            s_drop_leavers (self, now);
            self->next_check = now + SHOAL_SUBSCRIBER_CHECK;
        }
    }
    void *socket = zsock_resolve (self->socket);
    while (true) {
        zmq_msg_t frame;
        zmq_msg_init (&frame);
        if (zmq_msg_recv (&frame, socket, ZMQ_DONTWAIT) == -1) {
            zmq_msg_close (&frame);
            return NULL;
        }
        shoal_wire_event_t event;
        char error [256];
        bool good = !zmq_msg_more (&frame)
                 && shoal_wire_decode_event (zmq_msg_data (&frame), zmq_msg_size (&frame),
                                             &event, error, sizeof (error))
                        == SHOAL_OK;
        if (good && event.kind != SHOAL_WIRE_SEQ)
            good = shoal_reader_check (event.body, event.body_size, SHOAL_DEFAULT_MAX_DEPTH,
                                       error, sizeof (error))
                == 0;
        if (!good) {
            //  A frame of several parts: the rest goes too
            while (zmq_msg_more (&frame)) {
                zmq_msg_close (&frame);
                zmq_msg_init (&frame);
                zmq_msg_recv (&frame, socket, 0);
            }
            self->stats.malformed++;
            zmq_msg_close (&frame);
            continue;
        }
        s_stream_t *stream = s_find (self, &event);
        if ((!stream && !s_wanted (self, &event)) || !s_number (self, stream, &event)) {
            zmq_msg_close (&frame);
            continue;
        }
        self->stats.received++;
        self->current = shoal_event_from_frame (&frame, &event, self->node);
        zmq_msg_close (&frame);
        return self->current;
    }
}

shoal_event_t *
shoal_subscriber_recv (shoal_subscriber_t *self, int timeout_ms)
{
    int64_t deadline = 0;               //  read the clock only if we must wait
    while (true) {
        shoal_event_t *event = shoal_subscriber_next (self);
        if (event) {
            self->current = NULL;       //  the caller's now
            return event;
        }
        int64_t now = zclock_mono ();
        if (!deadline)
            deadline = timeout_ms < 0 ? INT64_MAX : now + timeout_ms;
        int64_t left = deadline - now;
        if (left <= 0)
            return NULL;
        int wait = shoal_subscriber_timeout (self);
        if (left < wait)
            wait = (int) left;
        zmq_pollitem_t item = { zsock_resolve (self->socket), 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, wait) == -1 && errno != EINTR)
            return NULL;
    }
}

//  --------------------------------------------------------------------------
//  Selftest: nodes of one process on inproc, in a folder of their own

static shoal_node_t *
s_test_node (const char *cluster, const char *folder, int buffer)
{
    shoal_node_t *node = shoal_node_new (cluster);
    shoal_node_set_host (node, "inproc");
    shoal_node_set_rendezvous (node, folder);
    shoal_node_set_timing (node, 50, 300);
    shoal_node_set_event_buffer (node, buffer, SHOAL_DEFAULT_REPLAY);
    int rc = shoal_node_start (node);
    assert (rc == 0);
    return node;
}

typedef struct {
    uint64_t lost;
    size_t calls;
} s_test_gaps_t;

static void
s_test_on_gap (const char *publisher, const char *topic, uint64_t first, uint64_t count,
               void *arg)
{
    s_test_gaps_t *gaps = (s_test_gaps_t *) arg;
    assert (streq (topic, "tick") && first > 0 && count > 0 && *publisher);
    gaps->lost += count;
    gaps->calls++;
}

//  Subscribes from its own thread: many at once on one node must not trip
//  over each other's commands to it
static void *
s_test_subscribe_thread (void *node)
{
    for (int round = 0; round < 20; round++) {
        shoal_subscriber_t *subscriber = shoal_subscriber_new ((shoal_node_t *) node);
        assert (shoal_subscriber_subscribe (subscriber, "a.*") == 0);
        assert (shoal_subscriber_subscribe (subscriber, "b.**") == 0);
        shoal_subscriber_destroy (&subscriber);
    }
    return NULL;
}

void
shoal_subscriber_test (bool verbose)
{
    if (verbose)
        printf (" * shoal_subscriber: ");
    char folder [] = "/tmp/shoal-subscriber-test-XXXXXX";
    char *made = mkdtemp (folder);
    assert (made);
    char cluster [64];
    snprintf (cluster, sizeof (cluster), "subscriber-test-%d", (int) getpid ());
    shoal_node_t *publisher = s_test_node (cluster, folder, 100);
    shoal_node_t *listener = s_test_node (cluster, folder, 100);
    assert (shoal_node_wait_nodes (listener, 2, 5000));

    //  Patterns, numbers, metadata, the body read in place
    shoal_subscriber_t *subscriber = shoal_subscriber_new (listener);
    assert (shoal_subscriber_subscribe (subscriber, "order.*") == 0);
    assert (shoal_subscriber_subscribe (subscriber, "bad..pattern") == -1);
    assert (shoal_node_wait_subscribers (publisher, "order.placed", 1, 5000));
    assert (shoal_node_publishf (publisher, "order.placed", "{s:i}", "id", 1) == 0);
    assert (shoal_node_publishf (publisher, "stock.changed", "{s:i}", "id", 9) == 0);
    assert (shoal_node_publishf (publisher, "order.placed.late", "{s:i}", "id", 9) == 0);
    assert (shoal_node_publishf (publisher, "order.paid", "{s:i}", "id", 2) == 0);
    assert (shoal_node_publishf (publisher, "order.placed", "{s:i}", "id", 3) == 0);
    assert (shoal_node_publish (publisher, "not a topic", NULL, 0) == -1);
    int expected [][2] = { { 1, 1 }, { 2, 1 }, { 3, 2 } };     //  id, seq
    for (int index = 0; index < 3; index++) {
        shoal_event_t *event = shoal_subscriber_recv (subscriber, 5000);
        assert (event);
        int id;
        assert (shoal_event_get (event, "{s:i}", "id", &id) == 0);
        assert (id == expected [index][0]);
        assert (shoal_event_seq (event) == (uint64_t) expected [index][1]);
        assert (streq (shoal_event_publisher (event), shoal_node_id (publisher)));
        assert (!shoal_event_replayed (event));
        const char *sender = shoal_event_meta (event, "sender");
        assert (sender && strstr (sender, shoal_node_id (publisher)));
        char *json = shoal_event_json (event);
        assert (json && strstr (json, "\"id\""));
        free (json);
        shoal_event_destroy (&event);
    }
    //  The beat repeats the last numbers: nothing was missed, no event comes
    assert (shoal_subscriber_recv (subscriber, 200) == NULL);
    shoal_event_stats_t stats = shoal_subscriber_stats (subscriber);
    assert (stats.received == 3 && stats.missed == 0 && stats.malformed == 0);

    //  A subscriber that does not read: the publisher drops for it and goes
    //  on; every event is then either received or counted lost, exactly
    shoal_subscriber_t *slow = shoal_subscriber_new (listener);
    shoal_subscriber_set_buffer (slow, 100);
    s_test_gaps_t gaps = { 0, 0 };
    shoal_subscriber_on_gap (slow, s_test_on_gap, &gaps);
    assert (shoal_subscriber_subscribe (slow, "tick") == 0);
    assert (shoal_node_wait_subscribers (publisher, "tick", 1, 5000));
    uint64_t published = 5000;
    for (uint64_t index = 0; index < published; index++)
        assert (shoal_node_publishf (publisher, "tick", "i", (int) index) == 0);
    int64_t deadline = zclock_mono () + 10000;
    while (zclock_mono () < deadline) {
        shoal_event_t *event = shoal_subscriber_recv (slow, 100);
        shoal_event_destroy (&event);
        stats = shoal_subscriber_stats (slow);
        if (stats.received - stats.recovered + stats.missed == published
            && stats.missed == stats.recovered + stats.lost)
            break;
    }
    stats = shoal_subscriber_stats (slow);
    if (verbose)
        printf ("(slow: %" PRIu64 " received, %" PRIu64 " missed, %" PRIu64 " recovered, %" PRIu64
                " lost) ", stats.received, stats.missed, stats.recovered, stats.lost);
    assert (stats.missed > 0);
    assert (stats.received - stats.recovered + stats.missed == published);
    assert (stats.missed == stats.recovered + stats.lost);
    assert (gaps.lost == stats.lost);
    shoal_publisher_stats_t sent = shoal_node_publisher_stats (publisher);
    assert (sent.published == published + 5);

    //  A publisher that joins late is heard without anything done; one
    //  that leaves is dropped
    shoal_node_t *late = s_test_node (cluster, folder, 100);
    //  (a plain subscriber follows the cluster while it waits in recv)
    for (int64_t until = zclock_mono () + 5000;
         !shoal_node_wait_subscribers (late, "order.placed", 1, 0) && zclock_mono () < until;)
        assert (shoal_subscriber_recv (subscriber, 10) == NULL);
    assert (shoal_node_wait_subscribers (late, "order.placed", 1, 0));
    assert (shoal_node_publishf (late, "order.placed", "{s:i}", "id", 4) == 0);
    shoal_event_t *event = shoal_subscriber_recv (subscriber, 5000);
    assert (event && streq (shoal_event_publisher (event), shoal_node_id (late)));
    assert (shoal_event_seq (event) == 1);
    shoal_event_destroy (&event);
    //  Its last event, not read yet when it leaves the view, still comes
    assert (shoal_node_publishf (late, "order.placed", "{s:i}", "id", 5) == 0);
    shoal_node_destroy (&late);
    for (int64_t until = zclock_mono () + 5000; zclock_mono () < until;) {
        shoal_view_t *view = shoal_node_view (listener);
        size_t nodes = shoal_view_nodes (view);
        shoal_view_destroy (&view);
        if (nodes == 2)
            break;
        zmq_poll (NULL, 0, 5);          //  the membership thread acts meanwhile
    }
    subscriber->next_check = 0;         //  its timers run before it reads
    event = shoal_subscriber_recv (subscriber, 5000);
    int id = 0;
    assert (event && shoal_event_get (event, "{s:i}", "id", &id) == 0 && id == 5);
    shoal_event_destroy (&event);
    for (int64_t until = zclock_mono () + 5000;
         zhashx_size (subscriber->connected) != 2 && zclock_mono () < until;)
        assert (shoal_subscriber_recv (subscriber, 20) == NULL);
    assert (zhashx_size (subscriber->connected) == 2);

    pthread_t threads [4];
    for (int index = 0; index < 4; index++)
        pthread_create (&threads [index], NULL, s_test_subscribe_thread, listener);
    for (int index = 0; index < 4; index++)
        pthread_join (threads [index], NULL);
    //  ... nor make the node announce a malformed state meanwhile
    assert (shoal_node_refused (listener) == 0 && shoal_node_refused (publisher) == 0);

    shoal_subscriber_destroy (&slow);
    shoal_subscriber_destroy (&subscriber);
    shoal_node_destroy (&listener);
    shoal_node_destroy (&publisher);
    zdir_t *dir = zdir_new (folder, NULL);
    if (dir)
        zdir_remove (dir, true);
    zdir_destroy (&dir);
    if (verbose)
        printf ("OK\n");
}
