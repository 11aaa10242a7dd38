/*  shoal_status - the one error enum of shoal.
    The numbers are the canonical status codes (the gRPC set), and they travel
    on the wire: a C caller and a Python caller see the same code for the same
    failure.                                                                  */
#ifndef SHOAL_STATUS_H_INCLUDED
#define SHOAL_STATUS_H_INCLUDED

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    SHOAL_OK = 0,
    SHOAL_CANCELLED = 1,
    SHOAL_UNKNOWN = 2,
    SHOAL_INVALID_ARGUMENT = 3,
    SHOAL_DEADLINE_EXCEEDED = 4,
    SHOAL_NOT_FOUND = 5,
    SHOAL_ALREADY_EXISTS = 6,
    SHOAL_PERMISSION_DENIED = 7,
    SHOAL_RESOURCE_EXHAUSTED = 8,
    SHOAL_FAILED_PRECONDITION = 9,
    SHOAL_ABORTED = 10,
    SHOAL_OUT_OF_RANGE = 11,
    SHOAL_UNIMPLEMENTED = 12,
    SHOAL_INTERNAL = 13,
    SHOAL_UNAVAILABLE = 14,
    SHOAL_DATA_LOSS = 15,
    SHOAL_UNAUTHENTICATED = 16
} shoal_status_t;

#define SHOAL_STATUS_MAX SHOAL_UNAUTHENTICATED

//  The code's canonical name, e.g. "NOT_FOUND". Never NULL: an unknown number
//  gives "UNKNOWN". The string is constant.
SHOAL_EXPORT const char *
    shoal_status_name (int status);

//  A short human description, e.g. "not found". Constant string, never NULL.
SHOAL_EXPORT const char *
    shoal_strerror (int status);

//  The code named NAME ("NOT_FOUND", case-insensitive), or -1 if unknown.
SHOAL_EXPORT int
    shoal_status_from_name (const char *name);

SHOAL_EXPORT void
    shoal_status_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
