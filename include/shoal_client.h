/*  shoal_client - makes calls to services, addressed by endpoint.

    A client belongs to the thread that uses it, like a ZeroMQ socket: make
    one per thread (they are cheap); calls from many threads at once are
    safe that way. Inside a handler, use shoal_request_call or
    shoal_request_client instead: those carry the caller's deadline.

    The call path is short on purpose: the caller's own DEALER socket per
    endpoint, straight to the instance's ROUTER; no actor in between.        */
#ifndef SHOAL_CLIENT_H_INCLUDED
#define SHOAL_CLIENT_H_INCLUDED

#ifdef __cplusplus
extern "C" {
#endif

//  Deadline used when a call is given a timeout <= 0.
#define SHOAL_DEFAULT_TIMEOUT 5000
//  Largest reply frame a client accepts, by default.
#define SHOAL_DEFAULT_MAX_REPLY (16 * 1024 * 1024)

//  How a call by name chooses among the instances of a service.
typedef enum {
    SHOAL_ROUTE_LEAST_LOADED = 0,   //  fewest calls in flight, of two drawn at random
    SHOAL_ROUTE_ROUND_ROBIN = 1,
    SHOAL_ROUTE_RANDOM = 2,
    SHOAL_ROUTE_HASH = 3            //  consistent hashing on the key of shoal_client_send_key
} shoal_route_t;

//  A new client, or NULL if out of memory.
SHOAL_EXPORT shoal_client_t *
    shoal_client_new (void);

//  Destroys the client; its pending calls end CANCELLED (they remain the
//  caller's to destroy). Nulls the caller's pointer; safe on NULL.
SHOAL_EXPORT void
    shoal_client_destroy (shoal_client_t **self_p);

//  Makes calls by name go through NODE's view of the cluster. The node
//  must outlive the client.
SHOAL_EXPORT void
    shoal_client_set_node (shoal_client_t *self, shoal_node_t *node);

//  How calls by name choose an instance (default SHOAL_ROUTE_LEAST_LOADED).
SHOAL_EXPORT void
    shoal_client_set_route (shoal_client_t *self, shoal_route_t route);

//  Calls by name go to instances in this process when there are some.
SHOAL_EXPORT void
    shoal_client_set_prefer_local (shoal_client_t *self, bool prefer_local);

//  Sends a call without waiting and returns it (never NULL). A call whose
//  connection is not up yet is kept and sent while this client waits
//  (shoal_call_wait, shoal_client_wait_any): wait on calls you send.
//  ENDPOINT NULL
//  calls SERVICE by name (see shoal_client_set_node): an instance that is
//  up is chosen, and a call to an idempotent method is sent again to
//  another instance, within the same deadline, when its instance leaves,
//  cannot be reached or answers UNAVAILABLE; a call to any other method
//  then ends UNAVAILABLE, never sent twice. BODY is msgpack (NULL/0 sends
//  nil); it is copied. TIMEOUT_MS bounds the whole call. If it cannot be
//  sent the call is already done: INVALID_ARGUMENT (bad endpoint or name),
//  UNAVAILABLE (no peer until the deadline, no instance up), or
//  RESOURCE_EXHAUSTED (every instance has SHOAL_MAX_IN_FLIGHT calls of
//  this client, or its circuit breaker open).
SHOAL_EXPORT shoal_call_t *
    shoal_client_send (shoal_client_t *self, const char *endpoint,
                       const char *service, const char *method,
                       const void *body, size_t size, int timeout_ms);

//  shoal_client_send by name, choosing the instance by consistent hashing
//  on KEY (a cart id, a user id): the same key goes to the same instance
//  while the instances stay the same.
SHOAL_EXPORT shoal_call_t *
    shoal_client_send_key (shoal_client_t *self, const char *key, const char *service,
                           const char *method, const void *body, size_t size,
                           int timeout_ms);

//  Sends a call and waits for it: a done call, never NULL.
//  Status: OK; or the service's error; DEADLINE_EXCEEDED; UNAVAILABLE when
//  nothing answers at ENDPOINT; INVALID_ARGUMENT for a bad endpoint.
SHOAL_EXPORT shoal_call_t *
    shoal_client_call (shoal_client_t *self, const char *endpoint,
                       const char *service, const char *method,
                       const void *body, size_t size, int timeout_ms);

//  Same as shoal_client_call with a body packed from FORMAT (shoal_body.h).
//  A malformed format ends the call with INVALID_ARGUMENT.
SHOAL_EXPORT shoal_call_t *
    shoal_client_callf (shoal_client_t *self, const char *endpoint,
                        const char *service, const char *method,
                        int timeout_ms, const char *format, ...);

//  Returns the next call of this client that finished and was not yet
//  returned here or waited on, waiting up to TIMEOUT_MS (-1: until one of
//  the pending calls ends, which each deadline bounds). NULL if none.
//  The call stays the caller's: this does not transfer ownership.
SHOAL_EXPORT shoal_call_t *
    shoal_client_wait_any (shoal_client_t *self, int timeout_ms);

//  Largest reply frame accepted from endpoints connected from now on.
//  A server that sends more is disconnected by ZeroMQ (ZMQ_MAXMSGSIZE): the
//  call then ends DEADLINE_EXCEEDED, and a hostile server cannot make the
//  client allocate without bound.
SHOAL_EXPORT void
    shoal_client_set_max_message (shoal_client_t *self, size_t bytes);

//  Number of calls sent and not yet done.
SHOAL_EXPORT size_t
    shoal_client_pending (shoal_client_t *self);

SHOAL_EXPORT void
    shoal_client_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
