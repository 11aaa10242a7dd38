/*  shoal_event - something that happened, published on a topic to whoever
    subscribes, across the cluster and with no broker (docs/events.md).

    Topics are dot-separated segments of [A-Za-z0-9_-]: "order.placed",
    "stock.changed.sku-42". Patterns add two wildcards: "*" is one segment,
    "**" any number of segments (none included):
        "order.placed"      that topic only
        "order.*"           "order.placed", not "order" nor "order.a.b"
        "order.**"          "order", "order.placed", "order.a.b" (a prefix)
        "**"                everything

    Publishing (shoal_node_publish, shoal_request_publish) never waits for
    subscribers. A subscriber chooses how it is delivered:
        SHOAL_BROADCAST     every subscribing instance (or plain subscriber)
                            gets each event: cache invalidation, notices
        SHOAL_BALANCED      one instance of each subscribing service gets it,
                            and another one if that instance dies first
    Each publisher numbers its events per topic, so a subscriber counts what
    it missed instead of never knowing (shoal_event_stats_t).              */
#ifndef SHOAL_EVENT_H_INCLUDED
#define SHOAL_EVENT_H_INCLUDED

#ifdef __cplusplus
extern "C" {
#endif

//  Bytes in a topic or a pattern; segments in either
#define SHOAL_MAX_TOPIC 255
#define SHOAL_MAX_SEGMENTS 32
//  Bytes in an event's body. Events say what happened, they do not carry
//  bulk: a subscriber's queue holds up to its length of them per publisher
#define SHOAL_MAX_EVENT (64 * 1024)

typedef enum {
    SHOAL_BROADCAST = 0,
    SHOAL_BALANCED = 1
} shoal_delivery_t;

//  An event handler in a service. It runs in the instance actor, like a
//  method's handler (no locks needed). Returns 0, or -1 if it failed: the
//  failure is counted, and delivery goes on.
typedef int (shoal_event_fn) (shoal_event_t *event, void *state);

//  Called when events are lost for good: COUNT events of TOPIC from node
//  PUBLISHER, numbered FIRST.., were neither received nor replayed.
typedef void (shoal_gap_fn) (const char *publisher, const char *topic, uint64_t first,
                             uint64_t count, void *arg);

//  What a subscriber has seen. missed = recovered + lost + still being
//  asked for again.
typedef struct {
    uint64_t received;          //  delivered (replayed ones included)
    uint64_t missed;            //  numbers skipped: events that did not arrive in turn
    uint64_t recovered;         //  of those, replayed by their publisher
    uint64_t lost;              //  of those, given up (the gap callback ran)
    uint64_t duplicates;        //  dropped, already delivered
    uint64_t malformed;         //  dropped, unreadable or over a limit
    uint64_t failed;            //  handlers that returned -1
} shoal_event_stats_t;

//  The event's topic, its publisher's node id, and the number the publisher
//  gave it on this topic (1, 2, ...; 0 for an unnumbered event). Borrowed.
SHOAL_EXPORT const char *
    shoal_event_topic (shoal_event_t *self);
SHOAL_EXPORT const char *
    shoal_event_publisher (shoal_event_t *self);
SHOAL_EXPORT uint64_t
    shoal_event_seq (shoal_event_t *self);

//  True if the event was replayed to fill a gap: it arrives after events
//  published later than it.
SHOAL_EXPORT bool
    shoal_event_replayed (shoal_event_t *self);

//  A metadata value set by the publisher, as for calls: "trace" (the trace
//  id of the request that published it, if any), "sender" (service/instance,
//  or the node). NULL if absent. Borrowed.
SHOAL_EXPORT const char *
    shoal_event_meta (shoal_event_t *self, const char *key);

//  The body (msgpack) and its size. Borrowed.
SHOAL_EXPORT const void *
    shoal_event_body (shoal_event_t *self, size_t *size);

//  Reads fields of the body (format as in shoal_reader.h). Returns 0, or -1
//  (see shoal_event_get_error). Strings are borrowed from the event.
SHOAL_EXPORT int
    shoal_event_get (shoal_event_t *self, const char *format, ...);
SHOAL_EXPORT const char *
    shoal_event_get_error (shoal_event_t *self);

//  The body as JSON text; the caller frees it.
SHOAL_EXPORT char *
    shoal_event_json (shoal_event_t *self);

//  Publishes an event in reaction to this one, through the node that
//  received it, carrying this event's trace id: "order.placed" handled,
//  "order.shipped" published. Returns 0, or -1 (bad topic or format).
SHOAL_EXPORT int
    shoal_event_publish (shoal_event_t *self, const char *topic, const char *format, ...);

//  Destroys an event returned by shoal_subscriber_recv and nulls the
//  pointer. Safe on NULL. (Events given to handlers are borrowed.)
SHOAL_EXPORT void
    shoal_event_destroy (shoal_event_t **self_p);

//  True if TOPIC (or PATTERN) is well formed, and if PATTERN matches TOPIC.
SHOAL_EXPORT bool
    shoal_topic_valid (const char *topic);
SHOAL_EXPORT bool
    shoal_pattern_valid (const char *pattern);
SHOAL_EXPORT bool
    shoal_pattern_match (const char *pattern, const char *topic);

#ifdef __cplusplus
}
#endif

#endif
