/*  shoal-echo - the service that docs, tests and benchmarks talk to.

    Each method exercises one thing a caller must cope with: a body that
    comes back unchanged (echo), a reply that takes time (sleep), an error
    of the caller's choosing (fail), and which instance answered (whoami).

        shoal-echo --bind tcp://127.0.0.1:* --instances 4
        shoal call --endpoint tcp://127.0.0.1:40311 echo sleep '{"ms": 250}'
*/
#include <czmq.h>
#include "shoal.h"

//  Longest sleep a caller may ask for: ten minutes is far beyond any test
//  deadline, yet keeps a mistyped number from parking an instance for days.
#define S_MAX_SLEEP_MS 600000

static void
s_echo (shoal_request_t *request, void *state)
{
    size_t size;
    const void *body = shoal_request_body (request, &size);
    shoal_request_reply_raw (request, body, size);
}

static void
s_sleep (shoal_request_t *request, void *state)
{
    //  Read as int64_t so that a huge number is reported as out of range
    //  rather than as "not an integer"
    int64_t ms;
    if (shoal_request_get (request, "{s:I}", "ms", &ms))
        return;
    if (ms < 0 || ms > S_MAX_SLEEP_MS) {
        shoal_request_fail (request, SHOAL_INVALID_ARGUMENT,
                            "field 'ms' must be 0..%d, got %" PRId64, S_MAX_SLEEP_MS, ms);
        return;
    }
    //  Sleeping is this method's whole purpose: it holds the instance busy
    //  with a request in flight, which is how tests check deadlines and a
    //  shutdown that must answer what it already received. It deliberately
    //  ignores the caller's deadline, so that the deadline can expire.
    zclock_sleep ((int)ms);
    shoal_request_reply (request, "{s:I}", "slept", ms);
}

static void
s_fail (shoal_request_t *request, void *state)
{
    const char *code;
    const char *message = NULL;
    if (shoal_request_get (request, "{s:s, s?s}", "code", &code, "message", &message))
        return;
    int status = shoal_status_from_name (code);
    if (status == -1 || status == SHOAL_OK) {
        shoal_request_fail (request, SHOAL_INVALID_ARGUMENT,
                            "field 'code' must name an error status, got '%s'", code);
        return;
    }
    shoal_request_fail (request, (shoal_status_t)status, "%s",
                        message ? message : shoal_strerror (status));
}

static void
s_whoami (shoal_request_t *request, void *state)
{
    const char *instance = shoal_request_instance (request);
    const char *node = shoal_request_node (request);
    shoal_request_reply (request, "{s:s, s:s, s:i}", "instance", instance, "node", node,
                         "pid", (int)getpid ());
}

int
main (int argc, char **argv)
{
    shoal_service_t *service = shoal_service_new ("echo", "1.0.0");
    shoal_service_method (service, "echo", s_echo, SHOAL_IDEMPOTENT,
                          "Replies with the request body unchanged");
    shoal_service_method (service, "sleep", s_sleep, SHOAL_IDEMPOTENT,
                          "{ms}: sleeps ms milliseconds (0..600000), replies {slept}");
    shoal_service_method (service, "fail", s_fail, 0,
                          "{code, message?}: answers the error named by code");
    shoal_service_method (service, "whoami", s_whoami, SHOAL_IDEMPOTENT,
                          "Replies {instance, node, pid} of the instance that answered");
    return shoal_service_main (&service, argc, argv);
}
