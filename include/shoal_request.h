/*  shoal_request - what a handler receives: the method, the body, the
    metadata and the deadline, and the way to answer. A request is borrowed
    by the handler; it dies when the handler returns.

        static void
        s_add (shoal_request_t *request, void *state)
        {
            const char *sku; int qty;
            if (shoal_request_get (request, "{s:s, s:i}", "sku", &sku, "qty", &qty))
                return;     //  already answered INVALID_ARGUMENT naming the field
            ...
            shoal_request_reply (request, "{s:i}", "total", total);
        }

    A handler that returns without answering answers OK with a nil body.
    Only the first answer counts; later ones are ignored.                     */
#ifndef SHOAL_REQUEST_H_INCLUDED
#define SHOAL_REQUEST_H_INCLUDED

#ifdef __cplusplus
extern "C" {
#endif

SHOAL_EXPORT const char *
    shoal_request_service (shoal_request_t *self);
SHOAL_EXPORT const char *
    shoal_request_method (shoal_request_t *self);

//  The request body (msgpack) and its size; borrowed.
SHOAL_EXPORT const void *
    shoal_request_body (shoal_request_t *self, size_t *size);

//  A metadata value sent by the caller (e.g. "trace"), or NULL. Borrowed.
SHOAL_EXPORT const char *
    shoal_request_meta (shoal_request_t *self, const char *key);

//  Milliseconds left before the caller's deadline: 0 if it has passed, -1
//  if the caller set none (possible from other clients; shoal's always do).
SHOAL_EXPORT int
    shoal_request_remaining (shoal_request_t *self);

//  Reads fields of the body (format as in shoal_reader.h). Returns 0; or -1,
//  having answered INVALID_ARGUMENT with a message that names the field.
SHOAL_EXPORT int
    shoal_request_get (shoal_request_t *self, const char *format, ...);

//  Answers OK with a body packed from FORMAT (shoal_body.h). Returns 0, or
//  -1 if the format is malformed (then the caller gets INTERNAL).
SHOAL_EXPORT int
    shoal_request_reply (shoal_request_t *self, const char *format, ...);

//  Answers OK with DATA/SIZE as the body (msgpack; copied).
SHOAL_EXPORT void
    shoal_request_reply_raw (shoal_request_t *self, const void *data, size_t size);

//  Answers with the error STATUS and a printf-style message.
SHOAL_EXPORT void
    shoal_request_fail (shoal_request_t *self, shoal_status_t status,
                        const char *format, ...);

//  True once the request has been answered.
SHOAL_EXPORT bool
    shoal_request_answered (shoal_request_t *self);

//  The id of the instance that serves the request, and of its node. Borrowed.
SHOAL_EXPORT const char *
    shoal_request_instance (shoal_request_t *self);
SHOAL_EXPORT const char *
    shoal_request_node (shoal_request_t *self);

//  A nested call from inside a handler: like shoal_client_call (ENDPOINT
//  NULL calls by name, through the service's node), but its timeout is cut
//  to what is left of this request's deadline, the caller's metadata (trace
//  id) travels on, and a call that would reach this very instance runs
//  inline rather than waiting on itself. Returns a done call that the
//  handler destroys.
SHOAL_EXPORT shoal_call_t *
    shoal_request_call (shoal_request_t *self, const char *endpoint,
                        const char *service, const char *method,
                        const void *body, size_t size, int timeout_ms);

//  Publishes an event from a handler through the service's node (see
//  shoal_node_publish), with the caller's trace id and this instance as
//  the sender. Returns 0, or -1 (no node, bad topic or format).
SHOAL_EXPORT int
    shoal_request_publish (shoal_request_t *self, const char *topic, const char *format, ...);

//  The instance's own client, for asynchronous nested calls (fan-out).
//  Owned by the instance; use it only inside the handler.
SHOAL_EXPORT shoal_client_t *
    shoal_request_client (shoal_request_t *self);

#ifdef __cplusplus
}
#endif
#endif
