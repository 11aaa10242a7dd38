/*  shoal_publisher - a node's events going out: one XPUB socket that every
    thread of the process publishes on (under a mutex), the numbers given to
    each topic, the recent events kept for replay, and an actor that serves
    what subscribers ask for upstream (replays, presence), sends the topics'
    last numbers every beat, and hands balanced events to one instance of
    each subscribing service. Private: users publish through shoal_node.   */
#ifndef SHOAL_PUBLISHER_H_INCLUDED
#define SHOAL_PUBLISHER_H_INCLUDED

typedef struct _shoal_publisher_t shoal_publisher_t;

//  Topics a publisher numbers; events of further topics go unnumbered
#define SHOAL_PUBLISHER_MAX_TOPICS 65536
//  Subscribers whose presence a publisher tracks
#define SHOAL_PUBLISHER_MAX_PRESENT 4096
//  How long a topic's last number is repeated after its last event
#define SHOAL_PUBLISHER_SEQ_WINDOW 10000
//  Events larger than this are not kept for replay: the ring holds at most
//  replay x this many bytes (16 MiB by default)
#define SHOAL_PUBLISHER_MAX_KEPT_EVENT (16 * 1024)
//  Replay requests served per beat; more are refused (and counted)
#define SHOAL_PUBLISHER_FILLS_PER_BEAT 64
//  Balanced deliveries waiting for an instance's answer, at most
#define SHOAL_PUBLISHER_MAX_BALANCED 10000
//  Deadline of a balanced delivery (failover to other instances included)
#define SHOAL_PUBLISHER_BALANCED_TIMEOUT 10000
//  Largest message a subscriber may send upstream (subscriptions, FILL)
#define SHOAL_PUBLISHER_MAX_UPSTREAM 512

//  Binds a publisher for NODE at BIND ("tcp://host:*" or an inproc name)
//  and starts its actor. BUFFER events are queued per subscriber, REPLAY
//  kept for replays, MAX_MESSAGE the largest body. Returns NULL with the
//  reason in ERROR. The bound endpoint is shoal_publisher_endpoint.
shoal_publisher_t *
    shoal_publisher_new (shoal_node_t *node, const char *bind, int buffer, int replay,
                         size_t max_message, int beat, char *error, size_t error_size);
void
    shoal_publisher_destroy (shoal_publisher_t **self_p);
const char *
    shoal_publisher_endpoint (shoal_publisher_t *self);

//  Publishes from any thread. META is a packed map of strings, or NULL.
//  Returns 0, or -1 if the topic is malformed or the body too large.
int
    shoal_publisher_send (shoal_publisher_t *self, const char *topic, const void *meta,
                          size_t meta_size, const void *body, size_t size);

//  True once subscriber ID is connected to this publisher
bool
    shoal_publisher_present (shoal_publisher_t *self, const char *id);
//  Waits up to TIMEOUT_MS for the presence to change; false on timeout
bool
    shoal_publisher_wait_presence (shoal_publisher_t *self, int timeout_ms);

shoal_publisher_stats_t
    shoal_publisher_stats (shoal_publisher_t *self);

#endif
