/*  shoal_instance - one instance of a service: an actor with its own state
    and its own ROUTER socket, which receives requests, runs the handlers and
    sends the replies. Private: users see it through shoal_service and
    shoal_request.                                                           */
#ifndef SHOAL_INSTANCE_H_INCLUDED
#define SHOAL_INSTANCE_H_INCLUDED

typedef struct _shoal_instance_t shoal_instance_t;

//  What a starting instance is given, and what it reports back before it
//  signals that it is ready (the parent reads it after shoal_actor_new returns).
typedef struct {
    shoal_service_t *service;   //  read-only while instances run
    zhashx_t *methods;          //  the instance's own method table (see below)
    zlistx_t *idempotent;       //  names of idempotent methods, for the node
    shoal_handler_fn *fallback; //  serves undeclared methods, if set (mocks)
    shoal_node_t *node;         //  announces the instance, if set
    char endpoint [256];        //  in: what to bind; out: the real endpoint
    char inproc [256];          //  out: the in-process endpoint
    char id [33];               //  out: the instance id
    char error [256];           //  out: why it could not start ("" if it did)
    //  Written by the instance, read by its node for the announcements
    atomic_uint_fast64_t calls;
    atomic_int busy;            //  1 while a handler runs
    atomic_uint latency_us;     //  moving average of the time to answer
    atomic_int draining;
    atomic_int crashed;         //  a fault: answer nothing more, from now
} shoal_instance_slot_t;

//  Each instance gets its own method table: a zhashx lookup writes into the
//  table (a cached index), so instances must not share one.

//  The actor: shoal_actor_new (shoal_instance_actor, slot). Ends on $TERM after
//  answering every request it has already received.
void
    shoal_instance_actor (zsock_t *pipe, void *slot);

const char *
    shoal_instance_id (shoal_instance_t *self);

//  Publishes an event through the instance's node, from SERVICE/INSTANCE,
//  with TRACE (may be NULL). Returns 0, or -1.
int
    shoal_instance_publish (shoal_instance_t *self, const char *topic, const char *trace,
                            const void *body, size_t size);
const char *
    shoal_instance_node (shoal_instance_t *self);

//  The nesting limit of request bodies, from the service.
int
    shoal_instance_max_depth (shoal_instance_t *self);

//  The instance's client for nested calls, made on first use.
shoal_client_t *
    shoal_instance_client (shoal_instance_t *self);

//  True if ENDPOINT is one this instance is bound to.
bool
    shoal_instance_is_self (shoal_instance_t *self, const char *endpoint);

//  True if a call by name to SERVICE can only reach this instance: it is
//  this instance's service and no other instance of it is up
bool
    shoal_instance_only_self (shoal_instance_t *self, const char *service);

//  Serves a call to this very instance inline, as a nested handler call,
//  so that a handler calling its own instance cannot deadlock. Returns a
//  done call.
shoal_call_t *
    shoal_instance_call_self (shoal_instance_t *self, const char *service,
                              const char *method, const void *body, size_t size,
                              int timeout_ms, const void *meta, size_t meta_size);

#endif
