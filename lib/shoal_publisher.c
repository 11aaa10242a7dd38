/*  shoal_publisher - a node's events going out (docs/events.md).

    The hot path is the caller's own thread: take the mutex, number the
    event, write its frame once, keep a reference to it for replays, send it
    on the XPUB without waiting. ZeroMQ sockets are not thread-safe; a mutex
    around every use of the XPUB gives the full barrier they need to change
    threads. The XPUB drops what a slow subscriber cannot take (per
    subscriber, at its high-water mark), so no subscriber ever slows the
    publisher or the others: the numbers let the subscriber count the loss.

    The actor (one thread) does what must happen when nobody publishes:
    reads what subscribers send upstream (presence, FILL requests), repeats
    the topics' last numbers each beat so that a loss at the end of a burst
    is seen too, and delivers balanced events through a client of its own,
    whose failover sends an event again to another instance when the one
    chosen dies.                                                             */
#include "shoal_private.h"
#include <poll.h>
#include <pthread.h>

typedef struct {
    uint64_t seq;               //  last number given on the topic
    int repeats;                //  beats its number is still repeated
} s_topic_t;

typedef struct {
    zmq_msg_t frame;            //  shares the sent frame's bytes
    size_t topic_size;
    uint64_t seq;               //  0: empty slot
} s_kept_t;

struct _shoal_publisher_t {
    shoal_node_t *node;
    const char *node_id;
    size_t node_id_size;
    char endpoint [256];
    size_t max_message;
    int beat;
    pthread_mutex_t lock;               //  guards everything down to STATS
    pthread_cond_t presence_changed;
    zsock_t *xpub;
    zsock_t *balanced;                  //  PUSH to the actor
    zhashx_t *topics;                   //  topic -> s_topic_t
    s_kept_t *kept;                     //  ring of recent events
    size_t kept_size;
    size_t kept_next;
    zhashx_t *present;                  //  subscriber ids connected
    shoal_view_t *view;                 //  for balanced subscriptions
    uint64_t generation;
    bool any_balanced;
    shoal_publisher_stats_t stats;
    shoal_actor_t *actor;
};

//  --------------------------------------------------------------------------
//  Publishing, from any thread

//  Refreshes the cached view if the node has a newer one. Under LOCK.
static void
s_refresh_view (shoal_publisher_t *self)
{
    uint64_t generation = shoal_node_generation (self->node);
    if (self->view && generation == self->generation)
        return;
    shoal_view_destroy (&self->view);
    self->view = shoal_node_view (self->node);
    self->generation = generation;
    self->any_balanced = false;
    size_t count = self->view ? shoal_view_subscriptions (self->view) : 0;
    for (size_t index = 0; index < count; index++)
        self->any_balanced |=
            shoal_view_subscription_at (self->view, index)->delivery == SHOAL_BALANCED;
}

//  True if a balanced subscription in the view matches TOPIC. Under LOCK.
static bool
s_wanted_balanced (shoal_publisher_t *self, const char *topic)
{
    s_refresh_view (self);
    if (!self->any_balanced)
        return false;
    size_t count = shoal_view_subscriptions (self->view);
    for (size_t index = 0; index < count; index++) {
        const shoal_subscription_info_t *info = shoal_view_subscription_at (self->view, index);
        if (info->delivery == SHOAL_BALANCED && shoal_pattern_match (info->pattern, topic))
            return true;
    }
    return false;
}

int
shoal_publisher_send (shoal_publisher_t *self, const char *topic, const void *meta,
                      size_t meta_size, const void *body, size_t size)
{
    size_t topic_size = strnlen (topic, SHOAL_MAX_TOPIC + 1);
    if (topic_size > SHOAL_MAX_TOPIC || size > self->max_message)
        return -1;
    if (!body || !size) {
        body = "\xc0";                  //  nil
        size = 1;
    }
    pthread_mutex_lock (&self->lock);
    //  The table holds valid topics only: one found needs no checking
    s_topic_t *numbered = (s_topic_t *) zhashx_lookup (self->topics, topic);
    if (!numbered && !shoal_topic_valid_size (topic, topic_size)) {
        pthread_mutex_unlock (&self->lock);
        return -1;
    }
    if (!numbered && zhashx_size (self->topics) < SHOAL_PUBLISHER_MAX_TOPICS) {
        numbered = (s_topic_t *) zmalloc (sizeof (s_topic_t));
        zhashx_insert (self->topics, topic, numbered);
    }
    uint64_t seq = 0;
    if (numbered) {
        seq = ++numbered->seq;
        numbered->repeats = SHOAL_PUBLISHER_SEQ_WINDOW / self->beat + 1;
    }
    else
        self->stats.unnumbered++;
    zmq_msg_t frame;
    zmq_msg_init_size (&frame, shoal_wire_event_size (topic_size, self->node_id_size, seq,
                                                      meta_size, size));
    size_t written = shoal_wire_encode_event (zmq_msg_data (&frame), SHOAL_WIRE_EVENT, topic,
                                              topic_size, self->node_id, seq, meta, meta_size,
                                              body, size);
    assert (written == zmq_msg_size (&frame));
    if (self->kept_size && seq && written <= SHOAL_PUBLISHER_MAX_KEPT_EVENT) {
        s_kept_t *kept = &self->kept [self->kept_next];
        self->kept_next = (self->kept_next + 1) % self->kept_size;
        if (kept->seq)
            zmq_msg_close (&kept->frame);
        zmq_msg_init (&kept->frame);
        zmq_msg_copy (&kept->frame, &frame);
        kept->topic_size = topic_size;
        kept->seq = seq;
    }
    if (s_wanted_balanced (self, topic)) {
        zmq_msg_t copy;
        zmq_msg_init (&copy);
        zmq_msg_copy (&copy, &frame);
        if (zmq_msg_send (&copy, zsock_resolve (self->balanced), ZMQ_DONTWAIT) == -1) {
            zmq_msg_close (&copy);
            self->stats.balanced_dropped++;
        }
    }
    //  An XPUB never blocks: at a subscriber's high-water mark it drops
    if (zmq_msg_send (&frame, zsock_resolve (self->xpub), ZMQ_DONTWAIT) == -1)
        zmq_msg_close (&frame);
    self->stats.published++;
    pthread_mutex_unlock (&self->lock);
    return 0;
}

//  --------------------------------------------------------------------------
//  The actor

typedef struct {
    shoal_publisher_t *publisher;
    zsock_t *pipe;
    zsock_t *balanced;          //  PULL
    shoal_client_t *client;
    int64_t next_beat;
    int fills_left;             //  in this beat
    msgpack_sbuffer meta;
} s_actor_t;

//  Sends the kept events of TOPIC numbered FIRST..LAST again. Under LOCK.
static void
s_replay (shoal_publisher_t *self, const shoal_wire_event_t *fill, uint64_t first,
          uint64_t last)
{
    for (size_t step = 0; step < self->kept_size; step++) {
        s_kept_t *kept = &self->kept [(self->kept_next + step) % self->kept_size];
        if (!kept->seq || kept->seq < first || kept->seq > last
            || kept->topic_size != fill->topic_size
            || memcmp (zmq_msg_data (&kept->frame), fill->topic, fill->topic_size) != 0)
            continue;
        zmq_msg_t replay;
        zmq_msg_init_size (&replay, zmq_msg_size (&kept->frame));
        memcpy (zmq_msg_data (&replay), zmq_msg_data (&kept->frame), zmq_msg_size (&replay));
        shoal_wire_mark_replay (zmq_msg_data (&replay), kept->topic_size);
        if (zmq_msg_send (&replay, zsock_resolve (self->xpub), ZMQ_DONTWAIT) == -1)
            zmq_msg_close (&replay);
        else
            self->stats.replayed++;
    }
}

//  Reads everything subscribers sent upstream. Under LOCK.
static void
s_read_upstream (s_actor_t *actor)
{
    shoal_publisher_t *self = actor->publisher;
    void *xpub = zsock_resolve (self->xpub);
    bool changed = false;
    while (true) {
        uint8_t data [SHOAL_PUBLISHER_MAX_UPSTREAM];
        int size = zmq_recv (xpub, data, sizeof (data), ZMQ_DONTWAIT);
        if (size < 0)
            break;
        if (size > (int) sizeof (data))
            continue;                   //  cut: MAXMSGSIZE makes it impossible
        //  Presence: a subscription to 0x03 and the subscriber's id, which
        //  no event can match; ZeroMQ unsubscribes it when the peer leaves
        if (size > 2 && size < 2 + 65 && data [0] <= 1 && data [1] == 0x03) {
            char id [65];
            memcpy (id, data + 2, (size_t) size - 2);
            id [size - 2] = 0;
            if (data [0] == 0)
                zhashx_delete (self->present, id);
            else if (zhashx_size (self->present) < SHOAL_PUBLISHER_MAX_PRESENT)
                zhashx_insert (self->present, id, (void *) 1);
            changed = true;
        }
        else if (size > 1 && data [0] == 1 && data [1] == SHOAL_WIRE_FILL_MARK) {
            //  A replay request, sent as a subscription (and withdrawn:
            //  the withdrawal, data [0] == 0, is ignored)
            shoal_wire_event_t fill;
            uint64_t first, last;
            if (!shoal_wire_decode_fill (data + 1, (size_t) size - 1, &fill, &first, &last)
                || actor->fills_left == 0)
                self->stats.fills_refused++;
            else if (fill.publisher_size == strlen (self->node_id)
                     && memcmp (fill.publisher, self->node_id, fill.publisher_size) == 0) {
                actor->fills_left--;
                s_replay (self, &fill, first, last);
            }
        }
        //  Topic subscriptions: ZeroMQ has applied them already. Anything
        //  else a subscriber sends upstream means nothing here
    }
    if (changed)
        pthread_cond_broadcast (&self->presence_changed);
}

//  Each beat: the last number of every topic published in the last
//  SHOAL_PUBLISHER_SEQ_WINDOW ms. Under LOCK.
static void
s_send_numbers (shoal_publisher_t *self)
{
    void *xpub = zsock_resolve (self->xpub);
    uint8_t frame [SHOAL_MAX_TOPIC + SHOAL_WIRE_EVENT_OVERHEAD];
    for (s_topic_t *topic = (s_topic_t *) zhashx_first (self->topics); topic;
         topic = (s_topic_t *) zhashx_next (self->topics)) {
        if (topic->repeats == 0)
            continue;
        topic->repeats--;
        const char *name = (const char *) zhashx_cursor (self->topics);
        size_t size = shoal_wire_encode_event (frame, SHOAL_WIRE_SEQ, name, strlen (name),
                                               self->node_id, topic->seq, NULL, 0, NULL, 0);
        zmq_send (xpub, frame, size, ZMQ_DONTWAIT);
    }
}

//  Hands one balanced event to an instance of each service that subscribed
static void
s_deliver_balanced (s_actor_t *actor, zmq_msg_t *frame)
{
    shoal_publisher_t *self = actor->publisher;
    shoal_wire_event_t event;
    char error [128];
    if (shoal_wire_decode_event (zmq_msg_data (frame), zmq_msg_size (frame), &event, error,
                                 sizeof (error))
        != SHOAL_OK)
        return;                         //  cannot happen: we wrote it
    char topic [SHOAL_MAX_TOPIC + 1];
    memcpy (topic, event.topic, event.topic_size);
    topic [event.topic_size] = 0;
    //  The metadata an instance makes the event from, and the publisher's
    msgpack_sbuffer_clear (&actor->meta);
    msgpack_packer packer;
    msgpack_packer_init (&packer, &actor->meta, msgpack_sbuffer_write);
    const char *keys [] = { "trace", "sender" };
    const char *values [2];
    size_t sizes [2], extra = 0;
    for (int index = 0; index < 2; index++) {
        values [index] = shoal_wire_meta_get (event.meta, event.meta_size, keys [index],
                                              &sizes [index]);
        extra += values [index] != NULL;
    }
    msgpack_pack_map (&packer, 3 + extra);
    shoal_wire_pack_string (&packer, "topic");
    shoal_wire_pack_string (&packer, topic);
    shoal_wire_pack_string (&packer, "publisher");
    shoal_wire_pack_string (&packer, self->node_id);
    char seq [24];
    snprintf (seq, sizeof (seq), "%" PRIu64, event.seq);
    shoal_wire_pack_string (&packer, "seq");
    shoal_wire_pack_string (&packer, seq);
    for (int index = 0; index < 2; index++)
        if (values [index]) {
            shoal_wire_pack_string (&packer, keys [index]);
            msgpack_pack_str (&packer, sizes [index]);
            msgpack_pack_str_body (&packer, values [index], sizes [index]);
        }
    //  Once per subscribing service, however many of its patterns match
    pthread_mutex_lock (&self->lock);
    s_refresh_view (self);
    shoal_view_t *view = self->view ? shoal_view_ref (self->view) : NULL;
    pthread_mutex_unlock (&self->lock);
    if (!view)
        return;
    zlistx_t *services = zlistx_new ();
    zlistx_set_comparator (services, (zlistx_comparator_fn *) strcmp);
    size_t count = shoal_view_subscriptions (view);
    for (size_t index = 0; index < count; index++) {
        const shoal_subscription_info_t *info = shoal_view_subscription_at (view, index);
        if (info->delivery == SHOAL_BALANCED && !zlistx_find (services, (void *) info->service)
            && shoal_pattern_match (info->pattern, topic))
            zlistx_add_end (services, (void *) info->service);
    }
    for (const char *service = (const char *) zlistx_first (services); service;
         service = (const char *) zlistx_next (services)) {
        if (shoal_client_pending (actor->client) >= SHOAL_PUBLISHER_MAX_BALANCED) {
            pthread_mutex_lock (&self->lock);
            self->stats.balanced_dropped++;
            pthread_mutex_unlock (&self->lock);
            continue;
        }
        //  Sent and forgotten here: s_collect counts how each one ends
        shoal_client_send_meta (actor->client, NULL, service, "$event", event.body,
                                event.body_size, SHOAL_PUBLISHER_BALANCED_TIMEOUT,
                                actor->meta.data, actor->meta.size);
    }
    zlistx_destroy (&services);
    shoal_view_destroy (&view);
}

//  Counts and frees the balanced deliveries that have ended
static void
s_collect (s_actor_t *actor, int timeout_ms)
{
    shoal_call_t *call;
    while ((call = shoal_client_wait_any (actor->client, timeout_ms))) {
        timeout_ms = 0;
        pthread_mutex_lock (&actor->publisher->lock);
        if (shoal_call_status (call) == SHOAL_OK)
            actor->publisher->stats.balanced++;
        else
            actor->publisher->stats.balanced_failed++;
        pthread_mutex_unlock (&actor->publisher->lock);
        shoal_call_destroy (&call);
    }
}

static void
s_publisher_actor (zsock_t *pipe, void *argument)
{
    s_actor_t actor = { .publisher = (shoal_publisher_t *) argument, .pipe = pipe };
    shoal_publisher_t *self = actor.publisher;
    actor.balanced = zsock_new (ZMQ_PULL);
    zsock_set_rcvhwm (actor.balanced, SHOAL_PUBLISHER_MAX_BALANCED);
    zsock_connect (actor.balanced, "inproc://shoal-balanced/%p", (void *) self);
    actor.client = shoal_client_new ();
    shoal_client_set_node (actor.client, self->node);
    msgpack_sbuffer_init (&actor.meta);
    int fd;
    size_t fd_size = sizeof (fd);
    pthread_mutex_lock (&self->lock);
    zmq_getsockopt (zsock_resolve (self->xpub), ZMQ_FD, &fd, &fd_size);
    pthread_mutex_unlock (&self->lock);
    zsock_signal (pipe, 0);
    actor.next_beat = zclock_mono () + self->beat;
    while (true) {
        //  The XPUB's descriptor is an edge, which a publishing thread may
        //  consume: every wake-up reads the socket, and the beat bounds how
        //  long a request can wait
        zmq_pollitem_t items [3] = {
            { zsock_resolve (pipe), 0, ZMQ_POLLIN, 0 },
            { zsock_resolve (actor.balanced), 0, ZMQ_POLLIN, 0 },
            { NULL, fd, ZMQ_POLLIN, 0 },
        };
        int64_t wait = actor.next_beat - zclock_mono ();
        bool pending = shoal_client_pending (actor.client) > 0;
        if (pending)
            wait = 0;
        if (zmq_poll (items, 3, wait > 0 ? (long) wait : 0) == -1 && errno != EINTR)
            break;
        if (items [0].revents & ZMQ_POLLIN) {
            char *command = zstr_recv (pipe);
            bool term = !command || streq (command, "$TERM");
            zstr_free (&command);
            if (term)
                break;
        }
        pthread_mutex_lock (&self->lock);
        s_read_upstream (&actor);
        if (zclock_mono () >= actor.next_beat) {
            s_send_numbers (self);
            actor.fills_left = SHOAL_PUBLISHER_FILLS_PER_BEAT;
            actor.next_beat = zclock_mono () + self->beat;
        }
        pthread_mutex_unlock (&self->lock);
        for (int batch = 0; batch < 256; batch++) {
            zmq_msg_t frame;
            zmq_msg_init (&frame);
            if (zmq_msg_recv (&frame, zsock_resolve (actor.balanced), ZMQ_DONTWAIT) == -1) {
                zmq_msg_close (&frame);
                break;
            }
            s_deliver_balanced (&actor, &frame);
            zmq_msg_close (&frame);
        }
        //  Replies (and the sending of calls parked until their instance
        //  connects) happen only while the client waits: a millisecond,
        //  while deliveries are pending
        if (shoal_client_pending (actor.client))
            s_collect (&actor, 1);
    }
    //  What is still pending ends CANCELLED with the client: counted failed
    s_collect (&actor, 0);
    pthread_mutex_lock (&self->lock);
    self->stats.balanced_failed += shoal_client_pending (actor.client);
    pthread_mutex_unlock (&self->lock);
    shoal_client_destroy (&actor.client);
    zsock_destroy (&actor.balanced);
    msgpack_sbuffer_destroy (&actor.meta);
}

//  --------------------------------------------------------------------------

shoal_publisher_t *
shoal_publisher_new (shoal_node_t *node, const char *bind, int buffer, int replay,
                     size_t max_message, int beat, char *error, size_t error_size)
{
    shoal_publisher_t *self = (shoal_publisher_t *) zmalloc (sizeof (shoal_publisher_t));
    self->node = node;
    self->node_id = shoal_node_id (node);
    self->node_id_size = strlen (self->node_id);
    self->max_message = max_message;
    self->beat = beat > 0 ? beat : SHOAL_DEFAULT_BEAT;
    pthread_mutex_init (&self->lock, NULL);
    pthread_condattr_t attributes;
    pthread_condattr_init (&attributes);
    pthread_condattr_setclock (&attributes, CLOCK_MONOTONIC);
    pthread_cond_init (&self->presence_changed, &attributes);
    pthread_condattr_destroy (&attributes);
    self->topics = zhashx_new ();
    zhashx_set_destructor (self->topics, (zhashx_destructor_fn *) zstr_free);
    self->present = zhashx_new ();
    self->kept_size = replay > 0 ? (size_t) replay : 0;
    self->kept = (s_kept_t *) zmalloc ((self->kept_size + 1) * sizeof (s_kept_t));
    self->xpub = zsock_new (ZMQ_XPUB);
    //  Per subscriber: the queue beyond which its events are dropped. What
    //  subscribers send upstream is small (subscriptions, FILL): a long one
    //  is an attack on the subscription trie, and disconnects its sender
    zsock_set_sndhwm (self->xpub, buffer > 0 ? buffer : SHOAL_DEFAULT_EVENT_BUFFER);
    zsock_set_maxmsgsize (self->xpub, SHOAL_PUBLISHER_MAX_UPSTREAM);
    //  Every subscription is handed to us, also one that another subscriber
    //  made already: a replay request (a subscription) held by one peer
    //  must not hide the same request of another
    zsock_set_xpub_verbose (self->xpub, 1);
    //  Events queued when the node stops still go out, for a moment: a tool
    //  publishes one event and exits
    zsock_set_linger (self->xpub, 200);
    //  No ZMTP heartbeats on event sockets: libzmq 4.3.4 aborts
    //  ("Assertion failed: _input_stopped", stream_engine_base.cpp:417) when
    //  a heartbeat meets a subscriber whose queue is full, i.e. a slow
    //  subscriber. A dead or frozen peer leaves the view through gossip
    //  instead, and a publisher only ever drops for a stalled subscriber
    if (zmq_bind (zsock_resolve (self->xpub), bind)) {
        snprintf (error, error_size, "cannot bind events to %s: %s", bind,
                  zmq_strerror (errno));
        shoal_publisher_destroy (&self);
        return NULL;
    }
    char *last = zsock_last_endpoint (self->xpub);
    snprintf (self->endpoint, sizeof (self->endpoint), "%s", last ? last : bind);
    zstr_free (&last);
    self->balanced = zsock_new (ZMQ_PUSH);
    zsock_set_sndhwm (self->balanced, SHOAL_PUBLISHER_MAX_BALANCED);
    zsock_bind (self->balanced, "inproc://shoal-balanced/%p", (void *) self);
    self->actor = shoal_actor_new (s_publisher_actor, self);
    return self;
}

void
shoal_publisher_destroy (shoal_publisher_t **self_p)
{
    shoal_publisher_t *self = *self_p;
    if (!self)
        return;
    shoal_actor_destroy (&self->actor);
    zsock_destroy (&self->balanced);
    zsock_destroy (&self->xpub);
    for (size_t index = 0; index < self->kept_size; index++)
        if (self->kept [index].seq)
            zmq_msg_close (&self->kept [index].frame);
    free (self->kept);
    zhashx_destroy (&self->topics);
    zhashx_destroy (&self->present);
    shoal_view_destroy (&self->view);
    pthread_cond_destroy (&self->presence_changed);
    pthread_mutex_destroy (&self->lock);
    free (self);
    *self_p = NULL;
}

const char *
shoal_publisher_endpoint (shoal_publisher_t *self)
{
    return self->endpoint;
}

bool
shoal_publisher_present (shoal_publisher_t *self, const char *id)
{
    pthread_mutex_lock (&self->lock);
    bool present = zhashx_lookup (self->present, id) != NULL;
    pthread_mutex_unlock (&self->lock);
    return present;
}

bool
shoal_publisher_wait_presence (shoal_publisher_t *self, int timeout_ms)
{
    struct timespec deadline;
    clock_gettime (CLOCK_MONOTONIC, &deadline);
    deadline.tv_nsec += (long) timeout_ms * 1000000L;
    deadline.tv_sec += deadline.tv_nsec / 1000000000L;
    deadline.tv_nsec %= 1000000000L;
    pthread_mutex_lock (&self->lock);
    bool changed = pthread_cond_timedwait (&self->presence_changed, &self->lock, &deadline) == 0;
    pthread_mutex_unlock (&self->lock);
    return changed;
}

shoal_publisher_stats_t
shoal_publisher_stats (shoal_publisher_t *self)
{
    pthread_mutex_lock (&self->lock);
    shoal_publisher_stats_t stats = self->stats;
    pthread_mutex_unlock (&self->lock);
    return stats;
}
