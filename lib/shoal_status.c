/*  shoal_status - names and descriptions of the canonical status codes.     */
#include "shoal_private.h"

static const struct {
    const char *name;
    const char *text;
} s_statuses [SHOAL_STATUS_MAX + 1] = {
    { "OK", "ok" },
    { "CANCELLED", "cancelled" },
    { "UNKNOWN", "unknown error" },
    { "INVALID_ARGUMENT", "invalid argument" },
    { "DEADLINE_EXCEEDED", "deadline exceeded" },
    { "NOT_FOUND", "not found" },
    { "ALREADY_EXISTS", "already exists" },
    { "PERMISSION_DENIED", "permission denied" },
    { "RESOURCE_EXHAUSTED", "resource exhausted" },
    { "FAILED_PRECONDITION", "failed precondition" },
    { "ABORTED", "aborted" },
    { "OUT_OF_RANGE", "out of range" },
    { "UNIMPLEMENTED", "unimplemented" },
    { "INTERNAL", "internal error" },
    { "UNAVAILABLE", "unavailable" },
    { "DATA_LOSS", "data loss" },
    { "UNAUTHENTICATED", "unauthenticated" },
};

const char *
shoal_status_name (int status)
{
    if (status < 0 || status > SHOAL_STATUS_MAX)
        status = SHOAL_UNKNOWN;
    return s_statuses [status].name;
}

const char *
shoal_strerror (int status)
{
    if (status < 0 || status > SHOAL_STATUS_MAX)
        status = SHOAL_UNKNOWN;
    return s_statuses [status].text;
}

int
shoal_status_from_name (const char *name)
{
    if (name)
        for (int status = 0; status <= SHOAL_STATUS_MAX; status++)
            if (strcasecmp (name, s_statuses [status].name) == 0)
                return status;
    return -1;
}

void
shoal_status_test (bool verbose)
{
    if (verbose)
        printf (" * shoal_status: ");
    assert (streq (shoal_status_name (SHOAL_NOT_FOUND), "NOT_FOUND"));
    assert (streq (shoal_status_name (SHOAL_UNAUTHENTICATED), "UNAUTHENTICATED"));
    assert (streq (shoal_status_name (99), "UNKNOWN"));
    assert (streq (shoal_status_name (-1), "UNKNOWN"));
    assert (streq (shoal_strerror (SHOAL_DEADLINE_EXCEEDED), "deadline exceeded"));
    //  Every name maps back to its own number
    for (int status = 0; status <= SHOAL_STATUS_MAX; status++)
        assert (shoal_status_from_name (shoal_status_name (status)) == status);
    assert (shoal_status_from_name ("not_found") == SHOAL_NOT_FOUND);
    assert (shoal_status_from_name ("NOPE") == -1);
    assert (shoal_status_from_name (NULL) == -1);
    if (verbose)
        printf ("OK\n");
}
