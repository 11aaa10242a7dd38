/*  shoal_private - what the library's own files share and users never see.  */
#ifndef SHOAL_PRIVATE_H_INCLUDED
#define SHOAL_PRIVATE_H_INCLUDED

#include <stdatomic.h>
#include <czmq.h>
#include <jansson.h>
#include <msgpack.h>
#include <zmq.h>
#include "shoal.h"

#include "shoal_actor.h"
#include "shoal_wire.h"
#include "shoal_socket.h"
#include "shoal_instance.h"
#include "shoal_registry.h"
#include "shoal_rendezvous.h"
#include "shoal_membership.h"
#include "shoal_balancer.h"
#include "shoal_stats.h"
#include "shoal_topic.h"
#include "shoal_publisher.h"

//  msgpack-c cannot unpack deeper than 32 levels: the values layer stops
//  at 31 (packing, reading, JSON)
#define SHOAL_MSGPACK_MAX_DEPTH 31

//  Writes a printf-style reason into ERROR (if given) and returns -1: the
//  one way the values layer reports (lib/shoal_reader.c)
int
    shoal_error_message (char *error, size_t size, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

//  shoal_call: the client's side of a call (lib/shoal_call.c)
shoal_call_t *
    shoal_call_new (shoal_client_t *client, uint64_t id, int64_t deadline);
void
    shoal_call_finish (shoal_call_t *self, shoal_status_t status, const char *message,
                       const void *body, size_t size);
//  Finishes with the reply in REPLY, which it takes (zero copy); the body
//  starts at BODY_OFFSET
void
    shoal_call_finish_msg (shoal_call_t *self, shoal_status_t status, const char *message,
                           size_t message_size, zmq_msg_t *reply, size_t body_offset);
void
    shoal_call_finishf (shoal_call_t *self, shoal_status_t status, const char *format, ...);
uint64_t
    shoal_call_id (shoal_call_t *self);
int64_t
    shoal_call_deadline (shoal_call_t *self);
void
    shoal_call_detach (shoal_call_t *self);
void **
    shoal_call_handle (shoal_call_t *self);     //  slot for the client's list handle
void
    shoal_call_set_id (shoal_call_t *self, uint64_t id);
//  The client's routing state of a call by name, freed with the call
void
    shoal_call_set_route (shoal_call_t *self, void *route, void (*destructor) (void **));
void *
    shoal_call_route (shoal_call_t *self);

//  shoal_client: used by shoal_call and by nested calls
shoal_status_t
    shoal_client_wait_for (shoal_client_t *self, shoal_call_t *call);
void
    shoal_client_forget (shoal_client_t *self, shoal_call_t *call);
//  Sends with metadata (a packed msgpack map, or NULL)
shoal_call_t *
    shoal_client_send_meta (shoal_client_t *self, const char *endpoint,
                            const char *service, const char *method,
                            const void *body, size_t size, int timeout_ms,
                            const void *meta, size_t meta_size);
//  Calls by name never pick instance ID (an instance's own client: a call
//  to itself would wait on itself)
void
    shoal_client_exclude (shoal_client_t *self, const char *id);

//  shoal_request: built by the instance actor for each request
shoal_request_t *
    shoal_request_new (shoal_instance_t *instance);
void
    shoal_request_destroy (shoal_request_t **self_p);
void
    shoal_request_reset (shoal_request_t *self, const shoal_wire_header_t *header,
                         const void *body, size_t size);
shoal_status_t
    shoal_request_status (shoal_request_t *self);
const char *
    shoal_request_message (shoal_request_t *self);
const void *
    shoal_request_reply_body (shoal_request_t *self, size_t *size);

//  shoal_service: what instances read from their service (read-only while
//  it runs, so instances share it without locks)
typedef struct {
    char *name;
    shoal_handler_fn *handler;
    int flags;
    char *doc;
} shoal_method_t;

//  Fills a slot for a new instance: its own copy of the method table
void
    shoal_service_prepare_slot (shoal_service_t *self, shoal_instance_slot_t *slot);
void
    shoal_service_release_slot (shoal_instance_slot_t *slot);

//  shoal_node: services announce their instances ("ADD", "DRAIN",
//  "REMOVE"); returns once the node has acted
void
    shoal_node_announce (shoal_node_t *self, const char *command,
                         shoal_instance_slot_t *slot);
//  Subscribers announce themselves ("SUB") and leave ("UNSUB") likewise;
//  and the node's publisher, for what reads it directly
void
    shoal_node_announce_subscriber (shoal_node_t *self, const char *command,
                                    shoal_subscriber_t *subscriber);
//  Publishes with metadata {"sender": SENDER, "trace": TRACE} (SENDER NULL:
//  "node/ID"; TRACE NULL: none)
int
    shoal_node_publish_as (shoal_node_t *self, const char *topic, const char *sender,
                           const char *trace, const void *body, size_t size);
shoal_publisher_t *
    shoal_node_publisher (shoal_node_t *self);

//  shoal_subscriber: what the membership announces of a subscriber, and
//  what an instance actor uses to run its broadcast handlers
const char *
    shoal_subscriber_service (shoal_subscriber_t *self);
size_t
    shoal_subscriber_patterns (shoal_subscriber_t *self);
const char *
    shoal_subscriber_pattern_at (shoal_subscriber_t *self, size_t index);
//  A subscriber for the broadcast patterns of an instance of SERVICE
shoal_subscriber_t *
    shoal_subscriber_new_for (shoal_node_t *node, const char *service);
//  The socket to poll; and the next event, without waiting (NULL if none
//  is ready: call it until NULL after each wake-up). Events are borrowed
//  until the next call.
zsock_t *
    shoal_subscriber_socket (shoal_subscriber_t *self);
shoal_event_t *
    shoal_subscriber_next (shoal_subscriber_t *self);
//  Ms until the subscriber next needs shoal_subscriber_next to run (for
//  its timers: new publishers, replay deadlines)
int
    shoal_subscriber_timeout (shoal_subscriber_t *self);
void
    shoal_subscriber_count_failed (shoal_subscriber_t *self);

//  shoal_event: made from a frame (taking it) or from a balanced delivery's
//  request (borrowing it)
shoal_event_t *
    shoal_event_from_frame (zmq_msg_t *frame, const shoal_wire_event_t *decoded,
                            shoal_node_t *node);
void
    shoal_event_init_request (shoal_event_t *self, shoal_request_t *request,
                              shoal_node_t *node);
size_t
    shoal_event_sizeof (void);

//  shoal_service's event subscriptions, read by its instances
typedef struct {
    char *pattern;
    shoal_delivery_t delivery;
    shoal_event_fn *handler;
} shoal_service_event_t;
size_t
    shoal_service_events (shoal_service_t *self);
const shoal_service_event_t *
    shoal_service_event_at (shoal_service_t *self, size_t index);
shoal_gap_fn *
    shoal_service_gap_handler (shoal_service_t *self);

void *
    shoal_service_state_new (shoal_service_t *self);
void
    shoal_service_state_destroy (shoal_service_t *self, void *state);
size_t
    shoal_service_max_message (shoal_service_t *self);
int
    shoal_service_max_depth (shoal_service_t *self);
const char *
    shoal_service_node (shoal_service_t *self);

//  For mocks (shoal_testkit): HANDLER serves every method that is not
//  declared, instead of UNIMPLEMENTED; and METHOD is announced idempotent
//  (also once the service runs)
void
    shoal_service_fallback (shoal_service_t *self, shoal_handler_fn *handler);
int
    shoal_service_set_idempotent (shoal_service_t *self, const char *method);
//  The same through the node, for a running instance
void
    shoal_node_announce_idempotent (shoal_node_t *self, shoal_instance_slot_t *slot,
                                    const char *method);

//  Faults, for shoal_testkit. Each returns once it has taken effect.
//  Instance INDEX stops at once: no draining, no answer to what it holds
int
    shoal_service_crash (shoal_service_t *self, size_t index);
//  Every instance stops reading its socket until thawed
void
    shoal_service_freeze (shoal_service_t *self, bool frozen);
//  The node stops gossiping until thawed
void
    shoal_node_freeze (shoal_node_t *self, bool frozen);
//  Gossip with node PEER is lost, and this node's clients cannot send to
//  PEER's instances (CUT false heals)
void
    shoal_node_cut (shoal_node_t *self, const char *peer, bool cut);
//  Calls from this node's clients to PEER's instances are dropped with
//  probability DROP (seeded, so the same ones on every run) and delayed
void
    shoal_node_lossy (shoal_node_t *self, const char *peer, double drop, int delay_ms);
//  What a client must do with a call to an instance of node PEER:
//  SHOAL_FAULT_NONE, _CUT or _DROP; DELAY_MS is set to the delay to apply
typedef enum { SHOAL_FAULT_NONE, SHOAL_FAULT_CUT, SHOAL_FAULT_DROP } shoal_fault_t;
shoal_fault_t
    shoal_node_fault (shoal_node_t *self, const char *peer, int *delay_ms);

//  What the testing kit and its mocks share (lib/shoal_testkit.c,
//  lib/shoal_mock.c)
int
    shoal_testkit_fail (shoal_testkit_t *self, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));
int
    shoal_testkit_wait_idempotent (shoal_testkit_t *self, const char *service,
                                   const char *method, int timeout_ms);
bool
    shoal_testkit_contains (json_t *expected, json_t *got, char *why, size_t why_size);
shoal_mock_t *
    shoal_mock_new (shoal_testkit_t *kit, const char *service, shoal_service_t **service_p);
void
    shoal_mock_destroy (shoal_mock_t **self_p);

//  Selftests of the private classes
void shoal_wire_test (bool verbose);
void shoal_instance_test (bool verbose);
void shoal_publisher_test (bool verbose);

#endif
