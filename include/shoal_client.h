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

//  A new client, or NULL if out of memory.
SHOAL_EXPORT shoal_client_t *
    shoal_client_new (void);

//  Destroys the client; its pending calls end CANCELLED (they remain the
//  caller's to destroy). Nulls the caller's pointer; safe on NULL.
SHOAL_EXPORT void
    shoal_client_destroy (shoal_client_t **self_p);

//  Sends a call without waiting and returns it (never NULL). BODY is
//  msgpack (NULL/0 sends nil); it is copied. TIMEOUT_MS bounds the whole
//  call. If it cannot be sent (bad endpoint, no peer until the deadline) the
//  call is already done with INVALID_ARGUMENT or UNAVAILABLE.
SHOAL_EXPORT shoal_call_t *
    shoal_client_send (shoal_client_t *self, const char *endpoint,
                       const char *service, const char *method,
                       const void *body, size_t size, int timeout_ms);

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
