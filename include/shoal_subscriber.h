/*  shoal_subscriber - receives events in a plain thread (a tool, a test, a
    program that is not a service). Services subscribe with
    shoal_service_on_event instead, and their handlers run in the instances.

        shoal_subscriber_t *subscriber = shoal_subscriber_new (node);
        shoal_subscriber_subscribe (subscriber, "order.**");
        shoal_event_t *event = shoal_subscriber_recv (subscriber, 1000);
        if (event) {
            printf ("%s seq %" PRIu64 "\n", shoal_event_topic (event),
                    shoal_event_seq (event));
            shoal_event_destroy (&event);
        }
        shoal_subscriber_destroy (&subscriber);

    The subscriber connects to the publisher of every node in NODE's view,
    and to new ones as they join; it drops the ones that leave. It belongs to
    the thread that uses it, like a ZeroMQ socket. Delivery is broadcast:
    every subscriber gets every event it subscribed to.                      */
#ifndef SHOAL_SUBSCRIBER_H_INCLUDED
#define SHOAL_SUBSCRIBER_H_INCLUDED

#ifdef __cplusplus
extern "C" {
#endif

//  A new subscriber through NODE (started; it must outlive the subscriber).
SHOAL_EXPORT shoal_subscriber_t *
    shoal_subscriber_new (shoal_node_t *node);

//  Unsubscribes, leaves, frees and nulls the pointer. Safe on NULL.
SHOAL_EXPORT void
    shoal_subscriber_destroy (shoal_subscriber_t **self_p);

//  Subscribes to PATTERN (see shoal_event.h). Returns 0, or -1 if the
//  pattern is malformed or too long. At most SHOAL_MAX_PATTERNS patterns.
#define SHOAL_MAX_PATTERNS 64
SHOAL_EXPORT int
    shoal_subscriber_subscribe (shoal_subscriber_t *self, const char *pattern);

//  The next event, waiting up to TIMEOUT_MS (-1: for ever); NULL if none
//  came. The caller destroys it.
SHOAL_EXPORT shoal_event_t *
    shoal_subscriber_recv (shoal_subscriber_t *self, int timeout_ms);

//  Calls FN when events are lost for good (see shoal_gap_fn).
SHOAL_EXPORT void
    shoal_subscriber_on_gap (shoal_subscriber_t *self, shoal_gap_fn *fn, void *arg);

//  Events this subscriber has seen, missed, recovered and lost.
SHOAL_EXPORT shoal_event_stats_t
    shoal_subscriber_stats (shoal_subscriber_t *self);

//  The subscriber's id, as announced to the cluster. Borrowed.
SHOAL_EXPORT const char *
    shoal_subscriber_id (shoal_subscriber_t *self);

//  How many events the subscriber's socket holds before its publishers
//  drop the next ones for it (ZMQ_RCVHWM; the publisher side has its own,
//  see shoal_node_set_event_buffer). Before the first subscribe.
SHOAL_EXPORT void
    shoal_subscriber_set_buffer (shoal_subscriber_t *self, int events);

SHOAL_EXPORT void
    shoal_subscriber_test (bool verbose);

#ifdef __cplusplus
}
#endif

#endif
