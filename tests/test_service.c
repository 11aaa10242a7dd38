/*  test_service - several service actors in one process, called for real
    (real sockets, real wire format): nested calls, deadlines, concurrent
    callers, errors, and a clean stop with requests in flight.              */
#include <shoal.h>
#include <czmq.h>
#include <pthread.h>
#include <stdatomic.h>
#include "tap.h"

//  --------------------------------------------------------------------------
//  The services under test

static atomic_int s_sleepers_started;

static void
s_echo (shoal_request_t *request, void *state)
{
    size_t size;
    const void *body = shoal_request_body (request, &size);
    shoal_request_reply_raw (request, body, size);
}

//  Sleeps: the one method whose purpose is to take time
static void
s_sleep (shoal_request_t *request, void *state)
{
    int ms;
    if (shoal_request_get (request, "{s:i}", "ms", &ms))
        return;
    atomic_fetch_add (&s_sleepers_started, 1);
    zclock_sleep (ms);
    shoal_request_reply (request, "{s:i, s:i}", "slept", ms, "budget",
                         shoal_request_remaining (request));
}

static void
s_whoami (shoal_request_t *request, void *state)
{
    shoal_request_reply (request, "{s:s, s:s}", "instance",
                         shoal_request_instance (request), "node",
                         shoal_request_node (request));
}

static shoal_service_t *
s_echo_service (const char *endpoint, size_t instances)
{
    shoal_service_t *service = shoal_service_new ("echo", "1.0.0");
    shoal_service_method (service, "echo", s_echo, SHOAL_IDEMPOTENT, "echo");
    shoal_service_method (service, "sleep", s_sleep, SHOAL_IDEMPOTENT, "sleep");
    shoal_service_method (service, "whoami", s_whoami, SHOAL_IDEMPOTENT, "ids");
    shoal_service_bind (service, endpoint);
    if (shoal_service_start (service, instances))
        shoal_service_destroy (&service);
    return service;
}

//  "front" calls echo (another service) and itself: nested calls
typedef struct {
    char echo [256];        //  where echo lives
    char self [256];        //  where this front instance lives
} s_front_config_t;

static void
s_front_relay (shoal_request_t *request, void *state)
{
    s_front_config_t *config = (s_front_config_t *) state;
    const char *method = "echo";
    shoal_request_get (request, "{s?s}", "method", &method);
    size_t size;
    const void *body = shoal_request_body (request, &size);
    shoal_call_t *call = shoal_request_call (request, config->echo, "echo", method, body,
                                             size, 10000);
    if (shoal_call_status (call) == SHOAL_OK) {
        const void *reply = shoal_call_body (call, &size);
        shoal_request_reply_raw (request, reply, size);
    }
    else
        shoal_request_fail (request, shoal_call_status (call), "relay: %s",
                            shoal_call_message (call));
    shoal_call_destroy (&call);
}

//  Counts down by calling itself, through its own endpoint
static void
s_front_countdown (shoal_request_t *request, void *state)
{
    s_front_config_t *config = (s_front_config_t *) state;
    int n;
    if (shoal_request_get (request, "{s:i}", "n", &n))
        return;
    if (n == 0) {
        shoal_request_reply (request, "{s:i}", "n", 0);
        return;
    }
    shoal_body_t *body = shoal_body_pack ("{s:i}", "n", n - 1);
    shoal_call_t *call = shoal_request_call (request, config->self, "front", "countdown",
                                             shoal_body_data (body), shoal_body_size (body),
                                             1000);
    int reached = -1;
    if (shoal_call_get (call, "{s:i}", "n", &reached) == 0)
        shoal_request_reply (request, "{s:i}", "n", reached + 1);
    else
        shoal_request_fail (request, shoal_call_status (call), "%s",
                            shoal_call_message (call));
    shoal_call_destroy (&call);
    shoal_body_destroy (&body);
}

//  Fans out: two asynchronous calls to echo at once, then waits for both
static void
s_front_fanout (shoal_request_t *request, void *state)
{
    s_front_config_t *config = (s_front_config_t *) state;
    shoal_client_t *client = shoal_request_client (request);
    shoal_body_t *body = shoal_body_pack ("{s:i}", "ms", 100);
    shoal_call_t *first = shoal_client_send (client, config->echo, "echo", "sleep",
                                             shoal_body_data (body), shoal_body_size (body),
                                             shoal_request_remaining (request));
    shoal_call_t *second = shoal_client_send (client, config->echo, "echo", "sleep",
                                              shoal_body_data (body),
                                              shoal_body_size (body),
                                              shoal_request_remaining (request));
    shoal_call_wait (first);
    shoal_call_wait (second);
    shoal_request_reply (request, "{s:i, s:i}", "first", shoal_call_status (first),
                         "second", shoal_call_status (second));
    shoal_call_destroy (&first);
    shoal_call_destroy (&second);
    shoal_body_destroy (&body);
}

//  --------------------------------------------------------------------------
//  The tests

static void
test_calls (shoal_service_t *echo)
{
    shoal_client_t *client = shoal_client_new ();
    const char *endpoint = shoal_service_endpoint (echo, 0);
    shoal_call_t *call = shoal_client_callf (client, endpoint, "echo", "echo", 1000,
                                             "{s:s, s:[i,i]}", "sku", "A-1", "dims", 3, 4);
    const char *sku = NULL;
    int width = 0, height = 0;
    tap_ok (shoal_call_get (call, "{s:s, s:[i,i]}", "sku", &sku, "dims", &width, &height)
                == 0 && sku && streq (sku, "A-1") && width == 3 && height == 4,
            "echo over tcp returns the body unchanged");
    shoal_call_destroy (&call);

    //  The same instance through its in-process endpoint
    call = shoal_client_call (client, shoal_service_inproc (echo, 0), "echo", "whoami", NULL,
                              0, 1000);
    shoal_call_t *over_tcp = shoal_client_call (client, endpoint, "echo", "whoami", NULL, 0,
                                                1000);
    const char *inproc_id = NULL, *tcp_id = NULL;
    tap_ok (shoal_call_get (call, "{s:s}", "instance", &inproc_id) == 0
                && shoal_call_get (over_tcp, "{s:s}", "instance", &tcp_id) == 0
                && streq (inproc_id, tcp_id),
            "the inproc endpoint reaches the same instance as tcp");
    shoal_call_destroy (&call);
    shoal_call_destroy (&over_tcp);

    //  Three instances are three distinct actors
    zhashx_t *ids = zhashx_new ();
    for (size_t index = 0; index < shoal_service_size (echo); index++) {
        call = shoal_client_call (client, shoal_service_endpoint (echo, index), "echo",
                                  "whoami", NULL, 0, 1000);
        const char *id = NULL;
        if (shoal_call_get (call, "{s:s}", "instance", &id) == 0)
            zhashx_insert (ids, id, (void *) 1);
        shoal_call_destroy (&call);
    }
    tap_ok (zhashx_size (ids) == 3, "three instances answer with three ids");
    zhashx_destroy (&ids);

    call = shoal_client_call (client, endpoint, "echo", "nope", NULL, 0, 1000);
    tap_ok (shoal_call_status (call) == SHOAL_UNIMPLEMENTED
                && strstr (shoal_call_message (call), "'nope'"),
            "an unknown method gives UNIMPLEMENTED naming it (%s)",
            shoal_call_message (call));
    shoal_call_destroy (&call);

    call = shoal_client_call (client, endpoint, "cart", "add", NULL, 0, 1000);
    tap_ok (shoal_call_status (call) == SHOAL_NOT_FOUND,
            "a call for another service at this endpoint gives NOT_FOUND");
    shoal_call_destroy (&call);

    call = shoal_client_callf (client, endpoint, "echo", "sleep", 1000, "{s:s}", "ms", "ten");
    tap_ok (shoal_call_status (call) == SHOAL_INVALID_ARGUMENT
                && streq (shoal_call_message (call), "field 'ms' must be an integer, got a string"),
            "a mistyped field gives INVALID_ARGUMENT naming it (%s)",
            shoal_call_message (call));
    shoal_call_destroy (&call);

    //  A timeout ends the call on time, and the instance serves on
    int64_t start = zclock_mono ();
    call = shoal_client_callf (client, endpoint, "echo", "sleep", 100, "{s:i}", "ms", 400);
    int64_t took = zclock_mono () - start;
    tap_ok (shoal_call_status (call) == SHOAL_DEADLINE_EXCEEDED && took >= 100 && took < 300,
            "a call past its deadline ends DEADLINE_EXCEEDED after %d ms", (int) took);
    shoal_call_destroy (&call);
    call = shoal_client_call (client, endpoint, "echo", "$ping", NULL, 0, 2000);
    tap_ok (shoal_call_status (call) == SHOAL_OK, "the instance serves on after a timeout");
    shoal_call_destroy (&call);

    start = zclock_mono ();
    call = shoal_client_call (client, "tcp://127.0.0.1:1", "echo", "echo", NULL, 0, 200);
    took = zclock_mono () - start;
    tap_ok (shoal_call_status (call) == SHOAL_UNAVAILABLE && took < 400,
            "no service at the endpoint gives UNAVAILABLE within the deadline");
    shoal_call_destroy (&call);
    shoal_client_destroy (&client);
}

static void
test_nested (shoal_service_t *echo)
{
    s_front_config_t config;
    snprintf (config.echo, sizeof (config.echo), "%s", shoal_service_endpoint (echo, 0));
    shoal_service_t *front = shoal_service_new ("front", "1.0.0");
    shoal_service_method (front, "relay", s_front_relay, 0, "relays to echo");
    shoal_service_method (front, "countdown", s_front_countdown, 0, "calls itself");
    shoal_service_method (front, "fanout", s_front_fanout, 0, "two calls at once");
    shoal_service_set_state (front, NULL, NULL, &config);
    shoal_service_bind (front, "ipc://@shoal-test-front");   //  abstract: no file
    int rc = shoal_service_start (front, 1);
    tap_ok (rc == 0, "a second service starts in the same process");
    if (rc)
        return;
    snprintf (config.self, sizeof (config.self), "%s", shoal_service_endpoint (front, 0));
    const char *endpoint = shoal_service_endpoint (front, 0);
    shoal_client_t *client = shoal_client_new ();

    shoal_call_t *call = shoal_client_callf (client, endpoint, "front", "relay", 1000,
                                             "{s:s}", "word", "hello");
    const char *word = NULL;
    tap_ok (shoal_call_get (call, "{s:s}", "word", &word) == 0 && streq (word, "hello"),
            "a handler calls another service and relays its reply");
    shoal_call_destroy (&call);

    call = shoal_client_callf (client, endpoint, "front", "countdown", 1000, "{s:i}", "n", 5);
    int n = -1;
    tap_ok (shoal_call_get (call, "{s:i}", "n", &n) == 0 && n == 5,
            "a handler calls its own instance five deep without deadlock");
    shoal_call_destroy (&call);

    //  The nested call gets only what is left of the caller's deadline
    int64_t start = zclock_mono ();
    call = shoal_client_callf (client, endpoint, "front", "relay", 150, "{s:s, s:i}",
                               "method", "sleep", "ms", 1000);
    int64_t took = zclock_mono () - start;
    tap_ok (shoal_call_status (call) == SHOAL_DEADLINE_EXCEEDED && took < 400,
            "a nested call inherits the caller's deadline (%d ms)", (int) took);
    shoal_call_destroy (&call);
    call = shoal_client_callf (client, endpoint, "front", "relay", 2000, "{s:s, s:i}",
                               "method", "sleep", "ms", 10);
    int budget = -1;
    bool got = shoal_call_get (call, "{s:i}", "budget", &budget) == 0;
    tap_ok (got && budget > 0 && budget <= 2000,
            "the nested callee sees the remaining budget (%d ms)", budget);
    shoal_call_destroy (&call);

    //  Wait for the echo instance to finish the abandoned 1 s sleep, via a
    //  call that queues behind it
    call = shoal_client_call (client, config.echo, "echo", "$ping", NULL, 0, 3000);
    shoal_call_destroy (&call);

    call = shoal_client_call (client, endpoint, "front", "fanout", NULL, 0, 3000);
    int first = -1, second = -1;
    tap_ok (shoal_call_get (call, "{s:i, s:i}", "first", &first, "second", &second) == 0
                && first == SHOAL_OK && second == SHOAL_OK,
            "a handler makes two asynchronous calls and waits for both");
    shoal_call_destroy (&call);
    shoal_client_destroy (&client);
    shoal_service_destroy (&front);
}

//  Many threads, each with its own client, calling at once
#define CALLERS 8
#define CALLS_PER_CALLER 300

typedef struct {
    const char *endpoint;
    int index;
    int good;
} s_caller_t;

static void *
s_caller (void *arg)
{
    s_caller_t *caller = (s_caller_t *) arg;
    shoal_client_t *client = shoal_client_new ();
    for (int count = 0; count < CALLS_PER_CALLER; count++) {
        shoal_call_t *call = shoal_client_callf (client, caller->endpoint, "echo", "echo",
                                                 5000, "{s:i, s:i}", "caller",
                                                 caller->index, "count", count);
        int index = -1, echoed = -1;
        if (shoal_call_get (call, "{s:i, s:i}", "caller", &index, "count", &echoed) == 0
            && index == caller->index && echoed == count)
            caller->good++;
        shoal_call_destroy (&call);
    }
    shoal_client_destroy (&client);
    return NULL;
}

static void
test_concurrent (shoal_service_t *echo)
{
    pthread_t threads [CALLERS];
    s_caller_t callers [CALLERS];
    for (int index = 0; index < CALLERS; index++) {
        callers [index] = (s_caller_t) {
            .endpoint = shoal_service_endpoint (echo, (size_t) index % 3), .index = index
        };
        pthread_create (&threads [index], NULL, s_caller, &callers [index]);
    }
    int good = 0;
    for (int index = 0; index < CALLERS; index++) {
        pthread_join (threads [index], NULL);
        good += callers [index].good;
    }
    tap_ok (good == CALLERS * CALLS_PER_CALLER,
            "%d threads x %d calls: %d answered, each with its own body", CALLERS,
            CALLS_PER_CALLER, good);

    //  One client, many calls in flight, collected as they finish
    shoal_client_t *client = shoal_client_new ();
    shoal_call_t *calls [64];
    for (int index = 0; index < 64; index++)
        calls [index] = shoal_client_send (client, shoal_service_endpoint (echo, 1), "echo",
                                           "echo", "\x01", 1, 5000);
    int finished = 0;
    while (shoal_client_wait_any (client, 5000))
        finished++;
    int ok = 0;
    for (int index = 0; index < 64; index++) {
        ok += shoal_call_status (calls [index]) == SHOAL_OK;
        shoal_call_destroy (&calls [index]);
    }
    tap_ok (finished == 64 && ok == 64, "64 asynchronous calls in flight all finish OK");
    shoal_client_destroy (&client);
}

static bool
s_sleepers_reached (void *arg)
{
    return atomic_load (&s_sleepers_started) >= *(int *) arg;
}

//  A stop answers every request already received before it ends
static void
test_clean_stop (void)
{
    shoal_service_t *echo = s_echo_service ("inproc://shoal-test-stop", 1);
    shoal_client_t *client = shoal_client_new ();
    atomic_store (&s_sleepers_started, 0);
    //  One call first, so the connection is up before the ones in flight
    shoal_call_t *warm = shoal_client_callf (client, "inproc://shoal-test-stop", "echo",
                                             "sleep", 0, "{s:i}", "ms", 0);
    shoal_call_destroy (&warm);
    shoal_call_t *calls [4];
    for (int index = 0; index < 4; index++) {
        shoal_body_t *body = shoal_body_pack ("{s:i}", "ms", 50);
        calls [index] = shoal_client_send (client, "inproc://shoal-test-stop", "echo",
                                           "sleep", shoal_body_data (body),
                                           shoal_body_size (body), 5000);
        shoal_body_destroy (&body);
    }
    //  Stop while the first is being served and three wait in the queue
    int target = 2;
    tap_ok (tap_wait_until (s_sleepers_reached, &target, 2000),
            "the first queued request is being served");
    shoal_service_stop (echo);
    int answered = 0;
    for (int index = 0; index < 4; index++) {
        answered += shoal_call_wait (calls [index]) == SHOAL_OK;
        shoal_call_destroy (&calls [index]);
    }
    tap_ok (answered == 4, "a stop answers all %d requests in flight (%d did)", 4, answered);
    shoal_client_destroy (&client);
    shoal_service_destroy (&echo);
}

int
main (void)
{
    shoal_service_t *echo = s_echo_service ("tcp://127.0.0.1:*", 3);
    if (!echo)
        tap_bail ("cannot start the echo service");
    test_calls (echo);
    test_nested (echo);
    test_concurrent (echo);
    shoal_service_destroy (&echo);
    test_clean_stop ();

    //  A second service cannot take a port that is in use
    shoal_service_t *first = s_echo_service ("tcp://127.0.0.1:*", 1);
    shoal_service_t *second = s_echo_service (shoal_service_endpoint (first, 0), 1);
    tap_ok (second == NULL, "binding a port in use fails with an error, not a crash");
    if (second)
        shoal_service_destroy (&second);
    shoal_service_destroy (&first);
    return tap_exit_status ();
}
