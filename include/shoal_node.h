/*  shoal_node - this process's member of a cluster. It finds the other
    nodes (same host with no configuration; a LAN by UDP beacon on a named
    interface; anywhere through seed endpoints), tells them which instances
    run here, learns theirs, and drops nodes that fall silent.

        shoal_node_t *node = shoal_node_new (NULL);     //  $SHOAL_CLUSTER or "default"
        shoal_node_start (node);
        shoal_service_set_node (cart, node);            //  its instances are announced
        shoal_client_set_node (client, node);           //  calls by name
        ...
        shoal_node_destroy (&node);                     //  says goodbye

    Defaults come from the environment: SHOAL_CLUSTER, SHOAL_SEEDS (endpoints
    separated by commas or spaces), SHOAL_INTERFACE, SHOAL_HOST,
    SHOAL_EVENT_BUFFER. Setters win.                                         */
#ifndef SHOAL_NODE_H_INCLUDED
#define SHOAL_NODE_H_INCLUDED

#ifdef __cplusplus
extern "C" {
#endif

#define SHOAL_DEFAULT_BEAT 200          //  ms between heartbeats
#define SHOAL_DEFAULT_EXPIRY 1000       //  ms of silence before a node is dropped
#define SHOAL_DEFAULT_BEACON 1000       //  ms between UDP beacons (LAN only)

//  A new node of CLUSTER (NULL: $SHOAL_CLUSTER, else "default"). Cluster
//  names are 1..64 bytes of [A-Za-z0-9._-]; NULL is returned for others.
SHOAL_EXPORT shoal_node_t *
    shoal_node_new (const char *cluster);

//  Leaves the cluster (the others drop this node at once), stops the node,
//  nulls the pointer. Services and clients using it must be stopped first.
SHOAL_EXPORT void
    shoal_node_destroy (shoal_node_t **self_p);

//  Adds a seed: the gossip endpoint of a node to join through, e.g.
//  "tcp://10.0.0.5:7400". Before start. Seeds added here replace those of
//  SHOAL_SEEDS (flags win over the environment).
SHOAL_EXPORT void
    shoal_node_add_seed (shoal_node_t *self, const char *endpoint);

//  Switches on LAN discovery by UDP beacon on INTERFACE (e.g. "eth1"), and
//  makes the node bind and advertise that interface's address. Before start.
SHOAL_EXPORT void
    shoal_node_set_interface (shoal_node_t *self, const char *interface);

//  The address the node and its services bind and advertise (default
//  127.0.0.1, or the interface's). "inproc" keeps the node and its
//  services on inproc:// endpoints: a cluster inside one process, with no
//  network, for tests. Before start.
SHOAL_EXPORT void
    shoal_node_set_host (shoal_node_t *self, const char *host);

//  The gossip port to bind (default 0: an ephemeral one). Give a fixed one
//  to a node that others use as their seed. Before start.
SHOAL_EXPORT void
    shoal_node_set_port (shoal_node_t *self, int port);

//  Heartbeat interval and the silence after which a node is dropped, in ms.
//  Before start.
SHOAL_EXPORT void
    shoal_node_set_timing (shoal_node_t *self, int beat_ms, int expiry_ms);

//  The folder where nodes on this host meet (default $SHOAL_RUNTIME_DIR,
//  else $XDG_RUNTIME_DIR/shoal, else /tmp/shoal-UID). Before start.
SHOAL_EXPORT void
    shoal_node_set_rendezvous (shoal_node_t *self, const char *directory);

//  Starts the node: binds its gossip socket, joins, and returns once it
//  has introduced itself to the nodes it can find. Returns 0, or -1 (with
//  the reason logged) if it cannot bind or the interface is unusable.
SHOAL_EXPORT int
    shoal_node_start (shoal_node_t *self);

//  The node's id, cluster, gossip endpoint (for others to use as a seed)
//  and host. Borrowed.
SHOAL_EXPORT const char *
    shoal_node_id (shoal_node_t *self);
SHOAL_EXPORT const char *
    shoal_node_cluster (shoal_node_t *self);
SHOAL_EXPORT const char *
    shoal_node_endpoint (shoal_node_t *self);
SHOAL_EXPORT const char *
    shoal_node_host (shoal_node_t *self);

//  What the node knows now: a view the caller destroys. Never NULL once
//  started.
SHOAL_EXPORT shoal_view_t *
    shoal_node_view (shoal_node_t *self);

//  Waits until at least COUNT instances of SERVICE are up in the view, or
//  TIMEOUT_MS pass. Returns true if they are.
SHOAL_EXPORT bool
    shoal_node_wait_for (shoal_node_t *self, const char *service, size_t count,
                         int timeout_ms);

//  Waits until the view has heard from at least COUNT nodes (this one
//  included), or TIMEOUT_MS pass. Returns true if it has.
SHOAL_EXPORT bool
    shoal_node_wait_nodes (shoal_node_t *self, size_t count, int timeout_ms);

//  Waits until every node this one introduced itself to has answered (or
//  is gone), or TIMEOUT_MS pass: a short-lived command uses it to see the
//  whole cluster before it acts. Returns true if settled.
SHOAL_EXPORT bool
    shoal_node_settle (shoal_node_t *self, int timeout_ms);

//  Counters: announcements refused as malformed, from another cluster or
//  another protocol version.
SHOAL_EXPORT uint64_t
    shoal_node_refused (shoal_node_t *self);

//  --------------------------------------------------------------------------
//  Events (see shoal_event.h and docs/events.md). Each node has one
//  publisher: every thread of the process publishes through it.

//  What the node's publisher has done.
typedef struct {
    uint64_t published;         //  events accepted by shoal_node_publish
    uint64_t unnumbered;        //  of those, sent without a number (topic table full)
    uint64_t balanced;          //  deliveries to one instance of a service, answered
    uint64_t balanced_failed;   //  ... that no instance took before the deadline
    uint64_t balanced_dropped;  //  ... dropped: too many waiting already
    uint64_t replayed;          //  events sent again to fill a subscriber's gap
    uint64_t fills_refused;     //  requests to replay refused (malformed, or too many)
} shoal_publisher_stats_t;

//  Publishes BODY (msgpack, SIZE bytes; NULL/0 is nil) on TOPIC from any
//  thread, and returns at once: subscribers too slow to keep up lose
//  events (and count them); nobody waits. Returns 0, or -1 if the topic is
//  malformed, the body too large or the node not started.
SHOAL_EXPORT int
    shoal_node_publish (shoal_node_t *self, const char *topic, const void *body,
                        size_t size);

//  The same with a body packed from FORMAT (shoal_body.h).
SHOAL_EXPORT int
    shoal_node_publishf (shoal_node_t *self, const char *topic, const char *format, ...);

//  Waits until the view shows at least COUNT broadcast subscribers whose
//  patterns match TOPIC, and every such subscriber it shows is connected to
//  this node's publisher, or TIMEOUT_MS pass. Returns true if so. An event
//  published before a subscriber has connected is not for it: a program
//  that publishes at once after it starts (a tool, a test) waits first.
SHOAL_EXPORT bool
    shoal_node_wait_subscribers (shoal_node_t *self, const char *topic, size_t count,
                                 int timeout_ms);

SHOAL_EXPORT shoal_publisher_stats_t
    shoal_node_publisher_stats (shoal_node_t *self);

//  Events the publisher queues per subscriber before it drops the next ones
//  for that subscriber (default SHOAL_DEFAULT_EVENT_BUFFER; the subscribers
//  of this node queue the smaller of this and 1000 per publisher), and how many
//  recent events it keeps to replay into gaps (default
//  SHOAL_DEFAULT_REPLAY). Before start.
#define SHOAL_DEFAULT_EVENT_BUFFER 10000
#define SHOAL_DEFAULT_REPLAY 1024
SHOAL_EXPORT void
    shoal_node_set_event_buffer (shoal_node_t *self, int events, int replay);

SHOAL_EXPORT void
    shoal_node_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
