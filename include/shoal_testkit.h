/*  shoal_testkit - integration tests with spawned actors: a whole cluster
    in the test process, the user's real services in it, scripted doubles
    for the others, waits with deadlines, and faults on demand.

        shoal_testkit_t *kit = shoal_testkit_new (2);           //  two nodes, ready
        shoal_testkit_spawn (kit, 0, &cart, 1);                 //  your service, unchanged
        shoal_mock_t *payments = shoal_testkit_mock (kit, 1, "payments");
        shoal_mock_on (payments, "charge", "{\"amount\": 30}", "{\"ok\": true}");
        ...
        shoal_call_t *call = shoal_client_callf (shoal_testkit_client (kit, 0), NULL,
                                                 "checkout", "buy", 1000, "{s:i}", "cart", 7);
        if (shoal_testkit_check_call (kit, call, SHOAL_OK, "{\"paid\": true}"))
            fail (shoal_testkit_error (kit));
        shoal_testkit_kill (kit, "cart", 0);                    //  as if it crashed
        ...
        shoal_testkit_destroy (&kit);

    Everything runs in this process on inproc:// endpoints, so a test needs
    no network, and the nodes meet in a folder and cluster of their own, so
    two test processes side by side never meet. Works with any C test
    framework: every function reports through its return value (0 or -1)
    and shoal_testkit_error, which says what was expected or awaited.
    Waits never sleep blindly: they wake on the event, with a deadline.     */
#ifndef SHOAL_TESTKIT_H_INCLUDED
#define SHOAL_TESTKIT_H_INCLUDED

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _shoal_testkit_t shoal_testkit_t;
typedef struct _shoal_mock_t shoal_mock_t;

//  A cluster of NODES nodes (1..16) in this process, every one seeing every
//  other when this returns. NULL if it cannot be made (logged). The nodes
//  beat every 50 ms and drop a silent peer after 300 ms, so faults show
//  quickly.
SHOAL_EXPORT shoal_testkit_t *
    shoal_testkit_new (size_t nodes);

//  Stops every service and mock, then the nodes; removes the folder; nulls
//  the pointer. Safe on NULL.
SHOAL_EXPORT void
    shoal_testkit_destroy (shoal_testkit_t **self_p);

//  Node INDEX (0..nodes-1), or NULL. Borrowed.
SHOAL_EXPORT shoal_node_t *
    shoal_testkit_node (shoal_testkit_t *self, size_t index);

//  A client on node INDEX for the test's own thread, made on first use and
//  owned by the kit. NULL if there is no such node.
SHOAL_EXPORT shoal_client_t *
    shoal_testkit_client (shoal_testkit_t *self, size_t index);

//  What the last failing call of the kit (or of one of its mocks) expected
//  or awaited, e.g. "waited 500 ms for 2 instances of 'cart' to be up on
//  every node; node 1 sees 1". "" if none failed. Borrowed.
SHOAL_EXPORT const char *
    shoal_testkit_error (shoal_testkit_t *self);

//  Runs SERVICE with INSTANCES instances on node NODE; the kit takes the
//  service (and destroys it). Returns 0, or -1 if it cannot start.
SHOAL_EXPORT int
    shoal_testkit_spawn (shoal_testkit_t *self, size_t node, shoal_service_t **service_p,
                         size_t instances);

//  Waits until COUNT instances of SERVICE are up in the view of every node.
SHOAL_EXPORT int
    shoal_testkit_wait_up (shoal_testkit_t *self, const char *service, size_t count,
                           int timeout_ms);

//  Waits until no more than COUNT instances of SERVICE are in the view of
//  every node (0: the service is gone everywhere).
SHOAL_EXPORT int
    shoal_testkit_wait_gone (shoal_testkit_t *self, const char *service, size_t count,
                             int timeout_ms);

//  Checks CALL (waiting for it if needed): its status is STATUS and, for OK,
//  its body contains EXPECTED (JSON; a subset: the keys given must be there
//  with equal values; NULL: anything). Returns 0, or -1 saying what differed.
SHOAL_EXPORT int
    shoal_testkit_check_call (shoal_testkit_t *self, shoal_call_t *call, shoal_status_t status,
                              const char *expected);

//  --------------------------------------------------------------------------
//  Mocks: a scripted double in place of a service, on node NODE, callable
//  by name when this returns. Owned by the kit.

SHOAL_EXPORT shoal_mock_t *
    shoal_testkit_mock (shoal_testkit_t *self, size_t node, const char *service);

//  A call of METHOD whose body contains MATCH (JSON subset; NULL: any body)
//  gets REPLY (JSON; NULL: nil). Rules are tried in the order given; the
//  first that matches answers. Calls no rule matches are unexpected: they
//  get UNIMPLEMENTED, and shoal_mock_verify reports them.
SHOAL_EXPORT void
    shoal_mock_on (shoal_mock_t *self, const char *method, const char *match,
                   const char *reply);

//  Same, answering the error STATUS with MESSAGE.
SHOAL_EXPORT void
    shoal_mock_fail (shoal_mock_t *self, const char *method, const char *match,
                     shoal_status_t status, const char *message);

//  Answers of METHOD wait MS milliseconds first (a slow dependency).
SHOAL_EXPORT void
    shoal_mock_delay (shoal_mock_t *self, const char *method, int ms);

//  METHOD is idempotent (callers may retry it on another instance).
SHOAL_EXPORT void
    shoal_mock_idempotent (shoal_mock_t *self, const char *method);

//  Calls of METHOD so far (any body, expected or not).
SHOAL_EXPORT size_t
    shoal_mock_calls (shoal_mock_t *self, const char *method);

//  The body of call NUMBER (0-based) of METHOD as JSON, or NULL. The caller
//  frees it.
SHOAL_EXPORT char *
    shoal_mock_body (shoal_mock_t *self, const char *method, size_t number);

//  Waits until METHOD has had at least COUNT calls.
SHOAL_EXPORT int
    shoal_mock_wait_calls (shoal_mock_t *self, const char *method, size_t count,
                           int timeout_ms);

//  Returns 0 if no unexpected call came, else -1 naming the first (method
//  and body), e.g. "payments got an unexpected call: refund {\"order\": 3}".
SHOAL_EXPORT int
    shoal_mock_verify (shoal_mock_t *self);

//  --------------------------------------------------------------------------
//  Faults. Each is deterministic: the same test sees the same faults.

//  Instance INDEX of SERVICE crashes: it stops at once, answering nothing
//  more, and leaves without draining or saying goodbye (its node stops
//  announcing it, as a host whose process died).
SHOAL_EXPORT int
    shoal_testkit_kill (shoal_testkit_t *self, const char *service, size_t index);

//  Node NODE freezes (as under SIGSTOP): it stops gossiping and its
//  instances stop answering, until thawed; requests sent meanwhile wait.
SHOAL_EXPORT int
    shoal_testkit_freeze (shoal_testkit_t *self, size_t node);
SHOAL_EXPORT int
    shoal_testkit_thaw (shoal_testkit_t *self, size_t node);

//  Cuts the link between nodes A and B, both ways: their gossip is lost,
//  and calls from one's clients to the other's instances cannot be sent.
SHOAL_EXPORT int
    shoal_testkit_cut (shoal_testkit_t *self, size_t a, size_t b);
SHOAL_EXPORT int
    shoal_testkit_heal (shoal_testkit_t *self, size_t a, size_t b);

//  Calls from A's clients to B's instances are dropped with probability
//  DROP (0..1, drawn from a generator seeded per link, so the same calls
//  are dropped on every run) and delayed by DELAY_MS. 0, 0 restores.
SHOAL_EXPORT int
    shoal_testkit_lossy (shoal_testkit_t *self, size_t a, size_t b, double drop,
                         int delay_ms);

SHOAL_EXPORT void
    shoal_testkit_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
