/*  test_testkit - the testing kit, tested as its users would use it.

    A. A kit of two nodes: a service spawned and awaited; a wait that cannot
       be met fails at its deadline and says what each node saw; calls
       checked against JSON subsets, passing and failing with messages that
       say where they differ.
    B. Mocks: rules tried in order, matched on a subset of the body; errors;
       delays; an unexpected call answered UNIMPLEMENTED and reported by
       verify; waits for calls that wake on the call, and one that expires
       saying what came instead; a script with a mistake in it.
    C. Kills: an idempotent call held by an instance that crashes is served
       by another; a call that is not idempotent ends UNAVAILABLE, never
       sent twice; calls by name go on succeeding.
    D. Freeze: a frozen node's instance leaves the other's view within the
       expiry, and a call sent to it meanwhile is answered once it thaws.
    E. Cut and heal: a partition hides each side from the other, and only
       from it; healed, they meet again.
    F. Lossy links: the same calls are dropped on every run; a delayed link
       delays every call.
    G. Two kits side by side never meet.

    Every wait is for an event, with a deadline; the kit's own waits say
    what they awaited when they fail, and those messages are shown.         */
#include <shoal.h>
#include <czmq.h>
#include <stdatomic.h>
#include "tap.h"

//  Upper bounds on times are multiplied by this: under valgrind every
//  thread runs many times slower
static int s_slow = 1;

//  --------------------------------------------------------------------------
//  Services under test

static void
s_echo (shoal_request_t *request, void *state)
{
    size_t size;
    const void *body = shoal_request_body (request, &size);
    shoal_request_reply_raw (request, body, size);
}

//  Says which node and instance answered
static void
s_whoami (shoal_request_t *request, void *state)
{
    shoal_request_reply (request, "{s:s, s:s}", "node", shoal_request_node (request),
                         "instance", shoal_request_instance (request));
}

static shoal_service_t *
s_echo_service (void)
{
    shoal_service_t *service = shoal_service_new ("echo", "1.0.0");
    shoal_service_method (service, "echo", s_echo, SHOAL_IDEMPOTENT, "the body back");
    shoal_service_method (service, "whoami", s_whoami, SHOAL_IDEMPOTENT, "node, instance");
    return service;
}

//  A counter per instance: "add" is not idempotent, "get" is
typedef struct {
    int count;
} s_counter_t;

static void *
s_counter_new (void *arg)
{
    return calloc (1, sizeof (s_counter_t));
}

static void
s_counter_destroy (void *state)
{
    free (state);
}

static void
s_counter_add (shoal_request_t *request, void *state)
{
    s_counter_t *counter = (s_counter_t *) state;
    counter->count++;
    shoal_request_reply (request, "{s:i}", "count", counter->count);
}

static void
s_counter_get (shoal_request_t *request, void *state)
{
    shoal_request_reply (request, "{s:i}", "count", ((s_counter_t *) state)->count);
}

static shoal_service_t *
s_counter_service (void)
{
    shoal_service_t *service = shoal_service_new ("counter", "1.0.0");
    shoal_service_set_state (service, s_counter_new, s_counter_destroy, NULL);
    shoal_service_method (service, "add", s_counter_add, 0, "counts one");
    shoal_service_method (service, "get", s_counter_get, SHOAL_IDEMPOTENT, "the count");
    return service;
}

//  --------------------------------------------------------------------------
//  Helpers

//  True if the kit's last error contains TEXT; shows it either way
static bool
s_error_says (shoal_testkit_t *kit, const char *text)
{
    const char *error = shoal_testkit_error (kit);
    tap_diag ("kit error: %s", error);
    return strstr (error, text) != NULL;
}

//  Instances of SERVICE in NODE's view (any state)
static size_t
s_seen (shoal_node_t *node, const char *service)
{
    shoal_view_t *view = shoal_node_view (node);
    size_t count;
    shoal_view_service (view, service, &count);
    shoal_view_destroy (&view);
    return count;
}

//  Waits until NODE's own view has COUNT instances of SERVICE: one node's
//  view, where the kit's waits ask every node. Wakes on each new view.
static bool
s_node_sees (shoal_node_t *node, const char *service, size_t count, int timeout_ms)
{
    int64_t deadline = zclock_mono () + timeout_ms;
    while (s_seen (node, service) != count) {
        int64_t left = deadline - zclock_mono ();
        if (left <= 0)
            return false;
        shoal_node_wait_nodes (node, SIZE_MAX, (int) (left < 50 ? left : 50));
    }
    return true;
}

//  The endpoint of the instance of SERVICE on node ON, as node FROM sees it
static char *
s_endpoint_on (shoal_node_t *from, shoal_node_t *on, const char *service)
{
    char *endpoint = NULL;
    shoal_view_t *view = shoal_node_view (from);
    size_t count;
    const shoal_instance_info_t *const *instances = shoal_view_service (view, service, &count);
    for (size_t index = 0; index < count && !endpoint; index++)
        if (streq (instances [index]->node, shoal_node_id (on)))
            endpoint = strdup (instances [index]->endpoint);
    shoal_view_destroy (&view);
    return endpoint;
}

//  --------------------------------------------------------------------------
//  A. Spawning, waiting, checking calls

static void
s_test_basics (void)
{
    shoal_testkit_t *kit = shoal_testkit_new (2);
    if (!tap_ok (kit != NULL, "a kit of two nodes starts, each seeing the other"))
        tap_bail ("no kit");
    tap_ok (streq (shoal_testkit_error (kit), ""), "no error to begin with");
    tap_ok (shoal_testkit_node (kit, 1) && !shoal_testkit_node (kit, 2)
                && !shoal_testkit_client (kit, 2),
            "nodes 0 and 1, no node 2");
    tap_ok (shoal_testkit_new (17) == NULL, "no kit of 17 nodes");

    shoal_service_t *echo = s_echo_service ();
    tap_ok (shoal_testkit_spawn (kit, 5, &echo, 1) == -1 && echo
                && s_error_says (kit, "spawn: no node 5"),
            "a spawn on a node that does not exist fails, and the service stays ours");
    tap_ok (shoal_testkit_spawn (kit, 0, &echo, 2) == 0 && echo == NULL,
            "echo spawned with two instances on node 0; the kit took it");
    shoal_service_t *started = s_echo_service ();
    shoal_service_bind (started, "inproc://test-testkit-started");
    shoal_service_start (started, 1);
    tap_ok (shoal_testkit_spawn (kit, 1, &started, 1) == -1 && started
                && s_error_says (kit, "'echo' runs already"),
            "a service that runs already is refused");
    shoal_service_destroy (&started);
    tap_ok (shoal_testkit_wait_up (kit, "echo", 2, 2000) == 0,
            "both instances are up on every node");

    int64_t start = zclock_mono ();
    int rc = shoal_testkit_wait_up (kit, "echo", 3, 200);
    int64_t waited = zclock_mono () - start;
    tap_ok (rc == -1 && waited >= 200 && waited < 1000 * s_slow,
            "a wait for 3 fails after 200 ms (%d ms)", (int) waited);
    tap_ok (s_error_says (kit, "waited 200 ms for 3 instances of 'echo' to be up on every "
                               "node; node 0 sees 2, node 1 sees 2"),
            "and says what it awaited and what each node saw");
    tap_ok (shoal_testkit_wait_gone (kit, "echo", 0, 100) == -1
                && s_error_says (kit, "waited 100 ms for 'echo' to be gone from every node"),
            "a wait for echo to be gone fails likewise");

    //  Calls, checked against a subset of their reply
    shoal_client_t *client = shoal_testkit_client (kit, 1);
    tap_ok (client && client == shoal_testkit_client (kit, 1), "one client per node, kept");
    shoal_call_t *call = shoal_client_callf (
        client, NULL, "echo", "echo", 1000, "{s:i, s:[i,f], s:{s:s, s:n}, s:b}", "a", 1,
        "list", 1, 2.0, "inner", "name", "x", "none", "flag", 1);
    tap_ok (shoal_testkit_check_call (kit, call, SHOAL_OK,
                                      "{\"list\": [1, 2], \"inner\": {\"name\": \"x\"}}") == 0,
            "a reply contains a subset: nested objects in part, arrays whole, 2 == 2.0");
    tap_ok (shoal_testkit_check_call (kit, call, SHOAL_OK, NULL) == 0, "NULL expects any body");
    tap_ok (shoal_testkit_check_call (kit, call, SHOAL_OK, "{\"inner\": {\"name\": \"y\"}}")
                == -1
                && s_error_says (kit, "at .inner.name: expected \"y\", got \"x\""),
            "a value that differs is named by its path");
    tap_ok (shoal_testkit_check_call (kit, call, SHOAL_OK, "{\"b\": 1}") == -1
                && s_error_says (kit, "at .b: missing"),
            "a missing key is named");
    tap_ok (shoal_testkit_check_call (kit, call, SHOAL_OK, "{\"list\": [1]}") == -1
                && s_error_says (kit, "at .list: expected 1 items, got 2"),
            "an array of another length differs");
    tap_ok (shoal_testkit_check_call (kit, call, SHOAL_OK, "{\"list\": [1, 2.5]}") == -1
                && s_error_says (kit, "at .list[1]: expected 2.5, got 2.0"),
            "an item of an array that differs is named");
    tap_ok (shoal_testkit_check_call (kit, call, SHOAL_OK, "{\"flag\": false}") == -1
                && s_error_says (kit, "expected OK with {\"flag\": false}, got {"),
            "the message shows what was expected and what came");
    tap_ok (shoal_testkit_check_call (kit, call, SHOAL_NOT_FOUND, NULL) == -1
                && s_error_says (kit, "expected NOT_FOUND, got OK {"),
            "a status that differs is named, with the body that came instead");
    tap_ok (shoal_testkit_check_call (kit, call, SHOAL_OK, "{\"a\": ") == -1
                && s_error_says (kit, "the expected body is not JSON"),
            "an expected body that is not JSON is a failed check, not a crash");
    shoal_call_destroy (&call);

    call = shoal_client_callf (client, NULL, "echo", "nothing", 1000, "{}");
    tap_ok (shoal_testkit_check_call (kit, call, SHOAL_OK, NULL) == -1
                && s_error_says (kit, "expected OK, got UNIMPLEMENTED: service 'echo' has no "
                                      "method 'nothing'"),
            "an error where OK was expected shows its code and message");
    tap_ok (shoal_testkit_check_call (kit, call, SHOAL_UNIMPLEMENTED, "{\"ignored\": 1}") == 0,
            "the error expected passes (a body is only checked for OK)");
    shoal_call_destroy (&call);
    tap_ok (shoal_testkit_check_call (kit, NULL, SHOAL_OK, NULL) == -1, "no call, no pass");

    //  Bad arguments are errors with messages, not crashes
    tap_ok (shoal_testkit_kill (kit, "echo", 2) == -1
                && s_error_says (kit, "kill: no instance 2 of 'echo' (the kit spawned 2)"),
            "kill names an instance that does not exist");
    tap_ok (shoal_testkit_kill (kit, "nobody", 0) == -1, "nor a service");
    tap_ok (shoal_testkit_cut (kit, 0, 0) == -1 && shoal_testkit_cut (kit, 0, 4) == -1
                && shoal_testkit_heal (kit, 3, 1) == -1,
            "a cut needs two nodes that exist");
    tap_ok (shoal_testkit_lossy (kit, 0, 1, 1.5, 0) == -1
                && s_error_says (kit, "drop is 0..1"),
            "a drop rate above 1 is refused");
    tap_ok (shoal_testkit_thaw (kit, 1) == -1 && s_error_says (kit, "node 1 is not frozen"),
            "a node that is not frozen cannot thaw");
    shoal_testkit_destroy (&kit);
    tap_ok (kit == NULL, "the kit is destroyed, pointer nulled");
    shoal_testkit_destroy (&kit);
}

//  --------------------------------------------------------------------------
//  B. Mocks

static void
s_test_mocks (void)
{
    shoal_testkit_t *kit = shoal_testkit_new (2);
    if (!kit)
        tap_bail ("no kit");
    shoal_mock_t *payments = shoal_testkit_mock (kit, 1, "payments");
    tap_ok (payments != NULL, "a mock of payments on node 1");
    tap_ok (shoal_testkit_wait_up (kit, "payments", 1, 0) == 0,
            "callable by name from every node when made");
    tap_ok (shoal_testkit_mock (kit, 2, "x") == NULL && shoal_testkit_mock (kit, 0, "bad name")
                == NULL,
            "no mock on a node that does not exist, nor with a bad name");

    shoal_mock_on (payments, "charge", "{\"amount\": 30}", "{\"ok\": true, \"id\": 1}");
    shoal_mock_on (payments, "charge", "{\"amount\": 30}", "{\"ok\": true, \"id\": 2}");
    shoal_mock_on (payments, "charge", NULL, "{\"ok\": false}");
    shoal_mock_fail (payments, "refund", "{\"order\": 9}", SHOAL_FAILED_PRECONDITION,
                     "order 9 was never paid");
    shoal_mock_on (payments, "ping", NULL, NULL);

    shoal_client_t *client = shoal_testkit_client (kit, 0);
    int rc;
    shoal_call_t *call = shoal_client_callf (client, NULL, "payments", "charge", 1000,
                                             "{s:i, s:s}", "amount", 30, "currency", "EUR");
    tap_ok (shoal_testkit_check_call (kit, call, SHOAL_OK, "{\"ok\": true, \"id\": 1}") == 0,
            "the first rule that matches answers (the body has more than the match)");
    shoal_call_destroy (&call);
    call = shoal_client_callf (client, NULL, "payments", "charge", 1000, "{s:i}", "amount", 5);
    tap_ok (shoal_testkit_check_call (kit, call, SHOAL_OK, "{\"ok\": false}") == 0,
            "a body the match does not contain falls to the next rule");
    shoal_call_destroy (&call);
    call = shoal_client_callf (client, NULL, "payments", "refund", 1000, "{s:i}", "order", 9);
    tap_ok (shoal_testkit_check_call (kit, call, SHOAL_FAILED_PRECONDITION, NULL) == 0
                && streq (shoal_call_message (call), "order 9 was never paid"),
            "a failing rule answers its status and message");
    shoal_call_destroy (&call);
    call = shoal_client_callf (client, NULL, "payments", "ping", 1000, "[]");
    size_t size = 99;
    shoal_call_body (call, &size);
    tap_ok (shoal_call_status (call) == SHOAL_OK && size == 1, "a NULL reply is nil");
    shoal_call_destroy (&call);

    tap_ok (shoal_mock_calls (payments, "charge") == 2 && shoal_mock_calls (payments, "refund")
                == 1 && shoal_mock_calls (payments, "other") == 0,
            "calls are counted per method");
    char *body = shoal_mock_body (payments, "charge", 0);
    tap_ok (body && streq (body, "{\"amount\": 30, \"currency\": \"EUR\"}"),
            "the body of each call is kept, as JSON (%s)", body ? body : "NULL");
    free (body);
    body = shoal_mock_body (payments, "charge", 2);
    tap_ok (body == NULL, "there is no third charge");
    tap_ok (shoal_mock_verify (payments) == 0, "verify: nothing unexpected so far");

    //  An unexpected call
    call = shoal_client_callf (client, NULL, "payments", "void", 1000, "{s:i}", "order", 3);
    tap_ok (shoal_testkit_check_call (kit, call, SHOAL_UNIMPLEMENTED, NULL) == 0
                && streq (shoal_call_message (call),
                          "mock payments has no rule for void {\"order\": 3}"),
            "a call no rule takes is UNIMPLEMENTED, saying so (%s)", shoal_call_message (call));
    shoal_call_destroy (&call);
    call = shoal_client_callf (client, NULL, "payments", "refund", 1000, "{s:i}", "order", 4);
    tap_ok (shoal_call_status (call) == SHOAL_UNIMPLEMENTED,
            "so is a known method with a body no rule matches");
    shoal_call_destroy (&call);
    tap_ok (shoal_mock_calls (payments, "void") == 1, "unexpected calls are recorded too");
    tap_ok (shoal_mock_verify (payments) == -1
                && s_error_says (kit, "payments got 2 unexpected calls; the first: void "
                                      "{\"order\": 3}"),
            "verify reports the first unexpected call, with its body");

    //  Waiting for calls: on the call itself, with a deadline
    shoal_mock_delay (payments, "slow", 150);
    shoal_mock_on (payments, "slow", NULL, "{\"done\": true}");
    int64_t start = zclock_mono ();
    call = shoal_client_send (client, NULL, "payments", "slow", NULL, 0, 2000);
    tap_ok (shoal_mock_wait_calls (payments, "slow", 1, 1000) == 0 && !shoal_call_done (call),
            "a wait for a call returns when it arrives, before it is answered");
    rc = shoal_testkit_check_call (kit, call, SHOAL_OK, "{\"done\": true}");
    int64_t took = zclock_mono () - start;
    tap_ok (rc == 0 && took >= 150, "a delayed method answers after its delay (%d ms)",
            (int) took);
    shoal_call_destroy (&call);
    start = zclock_mono ();
    rc = shoal_mock_wait_calls (payments, "charge", 3, 150);
    int64_t waited = zclock_mono () - start;
    tap_ok (rc == -1 && waited >= 150 && waited < 1000 * s_slow,
            "a wait for a call that never comes fails at its deadline (%d ms)", (int) waited);
    tap_ok (s_error_says (kit, "waited 150 ms for 3 calls of payments.charge; it had 2 "
                               "(all calls: charge {\"amount\": 30, \"currency\": \"EUR\"}; "
                               "charge {\"amount\": 5}; refund {\"order\": 9}; ping []; "
                               "void {\"order\": 3}; ...)"),
            "and says what it awaited, and what came");

    //  Idempotent: every node's view says so when it returns
    shoal_mock_idempotent (payments, "charge");
    shoal_view_t *view = shoal_node_view (shoal_testkit_node (kit, 0));
    tap_ok (shoal_view_idempotent (view, "payments", "charge")
                && !shoal_view_idempotent (view, "payments", "refund"),
            "a method marked idempotent is known so on other nodes");
    shoal_view_destroy (&view);

    //  A mistake in the script is reported, at once and by verify
    shoal_mock_t *users = shoal_testkit_mock (kit, 0, "users");
    shoal_mock_on (users, "find", "{\"id\": ", "{}");
    tap_ok (s_error_says (kit, "mock users: on find: the match is not JSON"),
            "a match that is not JSON is reported at once");
    shoal_mock_on (users, "find", NULL, "{\"name\": \"ada\"");
    shoal_mock_fail (users, "find", NULL, SHOAL_OK, "not an error");
    tap_ok (shoal_mock_verify (users) == -1
                && s_error_says (kit, "mock users: on find: the match is not JSON"),
            "verify reports the first mistake of the script");
    shoal_testkit_destroy (&kit);
}

//  --------------------------------------------------------------------------
//  C. Kills

static void
s_test_kill (void)
{
    shoal_testkit_t *kit = shoal_testkit_new (2);
    if (!kit)
        tap_bail ("no kit");
    //  A real service with two instances: one dies, the other serves on
    shoal_service_t *counter = s_counter_service ();
    shoal_testkit_spawn (kit, 1, &counter, 2);
    tap_ok (shoal_testkit_wait_up (kit, "counter", 2, 2000) == 0, "two counters are up");
    tap_ok (shoal_testkit_kill (kit, "counter", 0) == 0, "counter instance 0 is killed");
    tap_ok (shoal_testkit_wait_gone (kit, "counter", 1, 2000) == 0,
            "and leaves every node's view");
    shoal_client_t *client = shoal_testkit_client (kit, 0);
    int ok = 0;
    for (int index = 0; index < 20; index++) {
        shoal_call_t *call = shoal_client_callf (client, NULL, "counter", "add", 1000, "{}");
        ok += shoal_testkit_check_call (kit, call, SHOAL_OK, "{}") == 0;
        shoal_call_destroy (&call);
    }
    tap_ok (ok == 20, "calls by name keep succeeding, idempotent or not (%d of 20)", ok);
    tap_ok (shoal_testkit_kill (kit, "counter", 0) == -1
                && s_error_says (kit, "instance 0 of 'counter' is dead already"),
            "a dead instance cannot die twice");

    //  Calls held by an instance when it dies. Three mocks of payments:
    //  A on node 0 (instance 0 of payments), and B and C on node 1
    //  (instances 1 and 2), which take 200 ms to answer
    shoal_mock_t *mocks [3] = {
        shoal_testkit_mock (kit, 0, "payments"),
        shoal_testkit_mock (kit, 1, "payments"),
        shoal_testkit_mock (kit, 1, "payments"),
    };
    const char *names [3] = { "A", "B", "C" };
    for (int index = 0; index < 3; index++) {
        char reply [32];
        snprintf (reply, sizeof (reply), "{\"by\": \"%s\"}", names [index]);
        shoal_mock_on (mocks [index], "status", NULL, reply);
        shoal_mock_on (mocks [index], "charge", NULL, reply);
        shoal_mock_idempotent (mocks [index], "status");
        if (index > 0) {
            shoal_mock_delay (mocks [index], "status", 200);
            shoal_mock_delay (mocks [index], "charge", 200);
        }
    }
    //  Node 1's client calls its own node's instances, B and C, in turn,
    //  and A only when neither is left
    shoal_client_t *local = shoal_testkit_client (kit, 1);
    shoal_client_set_prefer_local (local, true);
    shoal_client_set_route (local, SHOAL_ROUTE_ROUND_ROBIN);

    //  An idempotent call held by the instance that dies is served by another
    shoal_call_t *call = shoal_client_send (local, NULL, "payments", "status", NULL, 0, 3000);
    //  B or C has it: the balancer chose. Wait for it at either
    shoal_mock_t *holder = NULL;
    size_t holder_index = 0;
    int64_t deadline = zclock_mono () + 2000;
    while (!holder && zclock_mono () < deadline)
        for (size_t index = 1; index < 3 && !holder; index++)
            if (shoal_mock_wait_calls (mocks [index], "status", 1, 10) == 0) {
                holder = mocks [index];
                holder_index = index;
            }
    tap_ok (holder != NULL, "the status call reached a mock on node 1 (%s)",
            holder ? names [holder_index] : "none");
    tap_ok (shoal_testkit_kill (kit, "payments", holder_index) == 0,
            "the instance holding it is killed");
    tap_ok (shoal_testkit_check_call (kit, call, SHOAL_OK, NULL) == 0,
            "the idempotent call still ends OK");
    char *json = shoal_call_json (call);
    tap_diag ("answered by %s", json ? json : "?");
    tap_ok (json && !strstr (json, names [holder_index]),
            "answered by another instance, not the dead one (%s)", json ? json : "");
    free (json);
    shoal_call_destroy (&call);

    //  A call that is not idempotent, held by an instance that dies, ends
    //  UNAVAILABLE: it may have been served, so it is not sent again
    size_t other = holder_index == 1 ? 2 : 1;
    call = shoal_client_send (local, NULL, "payments", "charge", NULL, 0, 3000);
    tap_ok (shoal_mock_wait_calls (mocks [other], "charge", 1, 2000) == 0,
            "a charge reached the other mock on node 1 (%s)", names [other]);
    tap_ok (shoal_testkit_kill (kit, "payments", other) == 0, "which is killed");
    int rc = shoal_testkit_check_call (kit, call, SHOAL_UNAVAILABLE, NULL);
    tap_ok (rc == 0, "the charge ends UNAVAILABLE (%s)", shoal_call_message (call));
    tap_ok (shoal_mock_calls (mocks [0], "charge") == 0, "and was not sent to A behind our back");
    shoal_call_destroy (&call);

    tap_ok (shoal_testkit_wait_gone (kit, "payments", 1, 2000) == 0, "only A is left");
    ok = 0;
    for (int index = 0; index < 10; index++) {
        call = shoal_client_callf (local, NULL, "payments", "charge", 1000, "{}");
        ok += shoal_testkit_check_call (kit, call, SHOAL_OK, "{\"by\": \"A\"}") == 0;
        shoal_call_destroy (&call);
    }
    tap_ok (ok == 10, "and A answers every charge (%d of 10)", ok);
    shoal_testkit_destroy (&kit);
}

//  --------------------------------------------------------------------------
//  D. Freeze and thaw

static void
s_test_freeze (void)
{
    shoal_testkit_t *kit = shoal_testkit_new (2);
    if (!kit)
        tap_bail ("no kit");
    shoal_service_t *echo = s_echo_service ();
    shoal_testkit_spawn (kit, 0, &echo, 1);
    echo = s_echo_service ();
    shoal_testkit_spawn (kit, 1, &echo, 1);
    tap_ok (shoal_testkit_wait_up (kit, "echo", 2, 2000) == 0, "echo is up on both nodes");
    char *frozen = s_endpoint_on (shoal_testkit_node (kit, 0), shoal_testkit_node (kit, 1),
                                  "echo");
    shoal_client_t *client = shoal_testkit_client (kit, 0);

    int64_t start = zclock_mono ();
    tap_ok (shoal_testkit_freeze (kit, 1) == 0, "node 1 freezes");
    tap_ok (shoal_testkit_freeze (kit, 1) == -1 && s_error_says (kit, "frozen already"),
            "and cannot freeze twice");
    //  Sent to the frozen instance by its endpoint: it waits
    shoal_body_t *body = shoal_body_pack ("{s:i}", "n", 7);
    shoal_call_t *held = shoal_client_send (client, frozen, "echo", "echo",
                                            shoal_body_data (body), shoal_body_size (body), 5000);
    shoal_body_destroy (&body);
    tap_ok (shoal_testkit_wait_gone (kit, "echo", 1, 2000) == 0,
            "its instance leaves node 0's view (node 1, frozen, is not asked)");
    int64_t gone = zclock_mono () - start;
    tap_ok (gone >= 200 && gone < 1000 * s_slow, "within the expiry and a beat or so (%d ms)",
            (int) gone);
    tap_ok (shoal_testkit_wait_up (kit, "echo", 2, 100) == -1
                && s_error_says (kit, "node 0 sees 1, node 1 is frozen (not asked)"),
            "a wait that fails says which node is frozen");
    shoal_call_t *call = shoal_client_callf (client, NULL, "echo", "echo", 1000, "{s:i}", "n", 1);
    tap_ok (shoal_testkit_check_call (kit, call, SHOAL_OK, "{\"n\": 1}") == 0,
            "calls by name go to node 0's instance meanwhile");
    shoal_call_destroy (&call);
    tap_ok (!shoal_call_done (held), "the call sent to the frozen instance waits");
    tap_ok (shoal_testkit_kill (kit, "echo", 1) == -1 && s_error_says (kit, "frozen"),
            "an instance of a frozen node cannot be killed before the thaw");
    shoal_service_t *late = s_echo_service ();
    tap_ok (shoal_testkit_spawn (kit, 1, &late, 1) == -1 && s_error_says (kit, "frozen")
                && shoal_testkit_cut (kit, 0, 1) == -1,
            "nor can a service be spawned there, or its links cut");
    shoal_service_destroy (&late);

    start = zclock_mono ();
    tap_ok (shoal_testkit_thaw (kit, 1) == 0, "node 1 thaws");
    int rc = shoal_testkit_check_call (kit, held, SHOAL_OK, "{\"n\": 7}");
    tap_ok (rc == 0, "the held call is answered (%d ms after the thaw)",
            (int) (zclock_mono () - start));
    shoal_call_destroy (&held);
    rc = shoal_testkit_wait_up (kit, "echo", 2, 2000);
    tap_ok (rc == 0, "and node 1's instance is back in every view (%d ms after the thaw)",
            (int) (zclock_mono () - start));
    free (frozen);

    //  A kit destroyed with a node frozen thaws it first
    tap_ok (shoal_testkit_freeze (kit, 0) == 0, "node 0 freezes, and is left frozen");
    shoal_testkit_destroy (&kit);
    tap_ok (kit == NULL, "the kit is destroyed all the same");
}

//  --------------------------------------------------------------------------
//  E. Cut and heal

static void
s_test_cut (void)
{
    shoal_testkit_t *kit = shoal_testkit_new (3);
    if (!kit)
        tap_bail ("no kit");
    shoal_service_t *echo = s_echo_service ();
    shoal_testkit_spawn (kit, 1, &echo, 1);
    tap_ok (shoal_testkit_wait_up (kit, "echo", 1, 2000) == 0, "echo is up on node 1");
    shoal_node_t *zero = shoal_testkit_node (kit, 0);

    int64_t start = zclock_mono ();
    tap_ok (shoal_testkit_cut (kit, 0, 1) == 0, "the link between nodes 0 and 1 is cut");
    bool unseen = s_node_sees (zero, "echo", 0, 2000);
    tap_ok (unseen, "node 0 no longer sees echo (%d ms)", (int) (zclock_mono () - start));
    tap_ok (s_seen (shoal_testkit_node (kit, 2), "echo") == 1, "node 2 still does");
    shoal_view_t *view = shoal_node_view (zero);
    tap_ok (shoal_view_nodes (view) == 2, "node 0 sees two nodes, itself and node 2");
    shoal_view_destroy (&view);
    shoal_call_t *call = shoal_client_callf (shoal_testkit_client (kit, 0), NULL, "echo",
                                             "echo", 500, "{}");
    tap_ok (shoal_testkit_check_call (kit, call, SHOAL_UNAVAILABLE, NULL) == 0,
            "a call by name from node 0 finds no echo (%s)", shoal_call_message (call));
    shoal_call_destroy (&call);
    call = shoal_client_callf (shoal_testkit_client (kit, 2), NULL, "echo", "echo", 500, "{}");
    tap_ok (shoal_testkit_check_call (kit, call, SHOAL_OK, "{}") == 0, "one from node 2 does");
    shoal_call_destroy (&call);
    tap_ok (shoal_testkit_wait_up (kit, "echo", 1, 100) == -1
                && s_error_says (kit, "node 0 sees 0"),
            "a wait on every node names the node cut off");

    start = zclock_mono ();
    tap_ok (shoal_testkit_heal (kit, 0, 1) == 0, "the link is healed");
    int rc = shoal_testkit_wait_up (kit, "echo", 1, 2000);
    tap_ok (rc == 0, "every node sees echo again (%d ms)", (int) (zclock_mono () - start));
    call = shoal_client_callf (shoal_testkit_client (kit, 0), NULL, "echo", "echo", 1000, "{}");
    tap_ok (shoal_testkit_check_call (kit, call, SHOAL_OK, "{}") == 0,
            "and node 0 calls it by name");
    shoal_call_destroy (&call);
    shoal_testkit_destroy (&kit);
}

//  --------------------------------------------------------------------------
//  F. Lossy links

//  Sends 100 calls from a new client on node 0 to echo on node 1, all at
//  once, and writes which failed into FAILED; returns how many did
#define S_LOSSY_CALLS 100
//  Drops of 0.5 on a link give this many failures out of 100, on every run:
//  the generator is seeded the same for every link
#define S_LOSSY_DROPPED 53

static int
s_lossy_round (shoal_testkit_t *kit, bool *failed, int *other)
{
    shoal_client_t *client = shoal_client_new ();
    shoal_client_set_node (client, shoal_testkit_node (kit, 0));
    shoal_call_t *calls [S_LOSSY_CALLS];
    for (int index = 0; index < S_LOSSY_CALLS; index++) {
        shoal_body_t *body = shoal_body_pack ("{s:i}", "i", index);
        calls [index] = shoal_client_send (client, NULL, "echo", "echo",
                                           shoal_body_data (body), shoal_body_size (body),
                                           300 * s_slow);
        shoal_body_destroy (&body);
    }
    int count = 0;
    *other = 0;
    for (int index = 0; index < S_LOSSY_CALLS; index++) {
        shoal_status_t status = shoal_call_wait (calls [index]);
        failed [index] = status != SHOAL_OK;
        count += failed [index];
        *other += status != SHOAL_OK && status != SHOAL_DEADLINE_EXCEEDED;
        shoal_call_destroy (&calls [index]);
    }
    shoal_client_destroy (&client);
    return count;
}

static void
s_test_lossy (void)
{
    shoal_testkit_t *kit = shoal_testkit_new (2);
    if (!kit)
        tap_bail ("no kit");
    shoal_service_t *echo = s_echo_service ();
    shoal_testkit_spawn (kit, 1, &echo, 1);
    tap_ok (shoal_testkit_wait_up (kit, "echo", 1, 2000) == 0, "echo is up on node 1");

    bool first [S_LOSSY_CALLS], second [S_LOSSY_CALLS];
    int other;
    tap_ok (shoal_testkit_lossy (kit, 0, 1, 0.5, 0) == 0, "the link from 0 to 1 drops half");
    int dropped = s_lossy_round (kit, first, &other);
    tap_ok (dropped == S_LOSSY_DROPPED && dropped >= 30 && dropped <= 70,
            "%d of %d calls fail, as on every run", dropped, S_LOSSY_CALLS);
    tap_ok (other == 0, "each one by its deadline, as lost on the wire");
    shoal_testkit_lossy (kit, 0, 1, 0.5, 0);
    s_lossy_round (kit, second, &other);
    tap_ok (memcmp (first, second, sizeof (first)) == 0,
            "set again, the link drops the very same calls");

    tap_ok (shoal_testkit_lossy (kit, 0, 1, 0, 50) == 0, "the link now delays by 50 ms");
    shoal_client_t *client = shoal_client_new ();
    shoal_client_set_node (client, shoal_testkit_node (kit, 0));
    int64_t start = zclock_mono ();
    shoal_call_t *call = shoal_client_callf (client, NULL, "echo", "echo", 1000, "{}");
    int64_t took = zclock_mono () - start;
    tap_ok (shoal_testkit_check_call (kit, call, SHOAL_OK, "{}") == 0 && took >= 50,
            "a call takes 50 ms or more (%d ms)", (int) took);
    shoal_call_destroy (&call);
    call = shoal_client_callf (shoal_testkit_client (kit, 1), NULL, "echo", "echo", 1000, "{}");
    tap_ok (shoal_call_status (call) == SHOAL_OK, "the other way is not delayed");
    shoal_call_destroy (&call);
    tap_ok (shoal_testkit_lossy (kit, 0, 1, 0, 0) == 0, "the link is restored");
    int ok = 0;
    for (int index = 0; index < 20; index++) {
        call = shoal_client_callf (client, NULL, "echo", "echo", 1000, "{}");
        ok += shoal_call_status (call) == SHOAL_OK;
        shoal_call_destroy (&call);
    }
    tap_ok (ok == 20, "and every call goes through (%d of 20)", ok);
    shoal_client_destroy (&client);
    shoal_testkit_destroy (&kit);
}

//  --------------------------------------------------------------------------
//  G. Two kits side by side

static void
s_test_side_by_side (void)
{
    shoal_testkit_t *one = shoal_testkit_new (1);
    shoal_testkit_t *two = shoal_testkit_new (1);
    if (!one || !two)
        tap_bail ("no kits");
    shoal_service_t *echo = s_echo_service ();
    shoal_testkit_spawn (one, 0, &echo, 1);
    tap_ok (shoal_testkit_wait_up (one, "echo", 1, 2000) == 0, "echo is up in kit one");
    shoal_view_t *view = shoal_node_view (shoal_testkit_node (two, 0));
    tap_ok (shoal_view_nodes (view) == 1 && shoal_view_size (view) == 0,
            "kit two sees neither kit one's node nor its service");
    shoal_view_destroy (&view);
    tap_ok (!streq (shoal_node_cluster (shoal_testkit_node (one, 0)),
                    shoal_node_cluster (shoal_testkit_node (two, 0))),
            "each kit is a cluster of its own (%s)",
            shoal_node_cluster (shoal_testkit_node (one, 0)));
    shoal_testkit_destroy (&one);
    shoal_testkit_destroy (&two);
}

int
main (void)
{
    if (getenv ("SHOAL_UNDER_VALGRIND"))
        s_slow = 5;
    s_test_basics ();
    s_test_mocks ();
    s_test_kill ();
    s_test_freeze ();
    s_test_cut ();
    s_test_lossy ();
    s_test_side_by_side ();
    return tap_exit_status ();
}
