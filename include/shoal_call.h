/*  shoal_call - one request sent to a service, and (once done) its reply.
    A call is made by a shoal_client (synchronously or not) and belongs to
    the caller, who destroys it. A call always ends with a status: it never
    waits past its deadline.                                                  */
#ifndef SHOAL_CALL_H_INCLUDED
#define SHOAL_CALL_H_INCLUDED

#ifdef __cplusplus
extern "C" {
#endif

//  Waits until the call is done (reply, error or deadline) and returns its
//  status. Returns at once if it is already done.
SHOAL_EXPORT shoal_status_t
    shoal_call_wait (shoal_call_t *self);

//  True once the call has a final status.
SHOAL_EXPORT bool
    shoal_call_done (shoal_call_t *self);

//  The final status; SHOAL_UNKNOWN while the call is still pending.
SHOAL_EXPORT shoal_status_t
    shoal_call_status (shoal_call_t *self);

//  The error message ("" for OK). Borrowed, valid while the call lives.
SHOAL_EXPORT const char *
    shoal_call_message (shoal_call_t *self);

//  The reply body (msgpack) and its size; empty unless status is OK.
//  Borrowed, valid while the call lives.
SHOAL_EXPORT const void *
    shoal_call_body (shoal_call_t *self, size_t *size);

//  Reads fields of the reply body (format as in shoal_reader.h). Returns 0,
//  or -1 if the call failed or the body does not match; see
//  shoal_call_get_error. Strings are borrowed from the call.
SHOAL_EXPORT int
    shoal_call_get (shoal_call_t *self, const char *format, ...);

//  Why the last shoal_call_get failed. Borrowed.
SHOAL_EXPORT const char *
    shoal_call_get_error (shoal_call_t *self);

//  The reply body as JSON text; the caller frees it. NULL if not OK.
SHOAL_EXPORT char *
    shoal_call_json (shoal_call_t *self);

//  Destroys the call, pending or not (a late reply is then discarded), and
//  nulls the caller's pointer. Safe on NULL.
SHOAL_EXPORT void
    shoal_call_destroy (shoal_call_t **self_p);

#ifdef __cplusplus
}
#endif
#endif
