/*  test_bad_gossip - a node's gossip socket under hostile input: garbage,
    truncated messages, another cluster, another version, forged shapes and
    a flood. Each is dropped and counted, none changes what the node knows,
    and the node keeps its cluster meanwhile.                                */
#include <shoal.h>
#include <czmq.h>
#include <msgpack.h>
#include "tap.h"

static char s_folder [] = "/tmp/shoal-test-bad-gossip-XXXXXX";

//  Sends one frame to the node's gossip endpoint from a fresh DEALER
static void
s_send (zsock_t *dealer, const void *data, size_t size)
{
    zmq_send (zsock_resolve (dealer), data, size, 0);
}

//  A gossip message as msgpack, from a format of shoal_body_pack
static void
s_send_packed (zsock_t *dealer, shoal_body_t *body)
{
    s_send (dealer, shoal_body_data (body), shoal_body_size (body));
    shoal_body_destroy (&body);
}

typedef struct {
    shoal_node_t *node;
    uint64_t expected;
} s_refusals_t;

static bool
s_refused (void *arg)
{
    s_refusals_t *refusals = (s_refusals_t *) arg;
    return shoal_node_refused (refusals->node) >= refusals->expected;
}

static size_t
s_nodes (shoal_node_t *node)
{
    shoal_view_t *view = shoal_node_view (node);
    size_t nodes = shoal_view_nodes (view);
    shoal_view_destroy (&view);
    return nodes;
}

static size_t
s_instances (shoal_node_t *node)
{
    shoal_view_t *view = shoal_node_view (node);
    size_t instances = shoal_view_size (view);
    shoal_view_destroy (&view);
    return instances;
}


//  --------------------------------------------------------------------------
//  The events field (11th) of STATE, malformed in each way

//  A STATE of node ID with FIELDS fields (10: an older node without events;
//  11: EVENTS, raw msgpack, is the 11th)
static void
s_send_state (zsock_t *dealer, const char *id, int fields, const msgpack_sbuffer *events)
{
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer packer;
    msgpack_packer_init (&packer, &buffer, msgpack_sbuffer_write);
    msgpack_pack_array (&packer, (size_t) fields);
    const char *texts [] = { "shoal-node", NULL, "STATE", "bad-gossip", id };
    for (int index = 0; index < 5; index++) {
        if (!texts [index]) {
            msgpack_pack_uint8 (&packer, 1);
            continue;
        }
        msgpack_pack_str (&packer, strlen (texts [index]));
        msgpack_pack_str_body (&packer, texts [index], strlen (texts [index]));
    }
    msgpack_pack_uint64 (&packer, 1);                       //  incarnation
    msgpack_pack_str (&packer, 17);
    msgpack_pack_str_body (&packer, "tcp://127.0.0.1:1", 17);
    msgpack_pack_array (&packer, 0);                        //  instances
    msgpack_pack_map (&packer, 0);                          //  methods
    msgpack_pack_array (&packer, 0);                        //  peers
    if (fields == 11)
        msgpack_sbuffer_write (&buffer, events->data, events->size);
    s_send (dealer, buffer.data, buffer.size);
    msgpack_sbuffer_destroy (&buffer);
}

static void
s_pack_text (msgpack_packer *packer, const char *text)
{
    msgpack_pack_str (packer, strlen (text));
    msgpack_pack_str_body (packer, text, strlen (text));
}

//  [endpoint, [[id, delivery, service, pattern] * COUNT]]
static void
s_events (msgpack_sbuffer *out, const char *endpoint, size_t count, const char *id,
          int delivery, const char *pattern)
{
    msgpack_sbuffer_clear (out);
    msgpack_packer packer;
    msgpack_packer_init (&packer, out, msgpack_sbuffer_write);
    msgpack_pack_array (&packer, 2);
    s_pack_text (&packer, endpoint);
    msgpack_pack_array (&packer, count);
    for (size_t index = 0; index < count; index++) {
        char unique [80];
        snprintf (unique, sizeof (unique), "%s%zu", id, index);
        msgpack_pack_array (&packer, 4);
        s_pack_text (&packer, count > 1 ? unique : id);
        msgpack_pack_uint8 (&packer, (uint8_t) delivery);
        s_pack_text (&packer, "");
        s_pack_text (&packer, pattern);
    }
}

//  Sends a STATE whose events are EVENTS, and checks that it is refused,
//  counted once, and adds nothing
static void
s_refused_events (shoal_node_t *node, zsock_t *dealer, const msgpack_sbuffer *events,
                  const char *what)
{
    s_refusals_t refusals = { node, shoal_node_refused (node) + 1 };
    uint64_t before = shoal_node_refused (node);
    size_t nodes = s_nodes (node);
    s_send_state (dealer, "eeeeeeeeeee0", 11, events);
    bool counted = tap_wait_until (s_refused, &refusals, 2000);
    tap_ok (counted && shoal_node_refused (node) - before == 1 && s_nodes (node) == nodes,
            "STATE whose events %s: refused and counted (%" PRIu64 "), no node added "
            "(%zu nodes)", what, shoal_node_refused (node) - before, s_nodes (node));
}

typedef struct {
    shoal_node_t *node;
    size_t nodes;
    const char *publisher;      //  an endpoint the view must show, or NULL
    size_t subscriptions;       //  at least this many in the view
} s_view_wait_t;

static bool
s_view_reaches (void *arg)
{
    s_view_wait_t *wait = (s_view_wait_t *) arg;
    shoal_view_t *view = shoal_node_view (wait->node);
    bool found = !wait->publisher;
    for (size_t index = 0; index < shoal_view_publishers (view); index++)
        if (wait->publisher && streq (shoal_view_publisher_at (view, index, NULL), wait->publisher))
            found = true;
    bool reached = shoal_view_nodes (view) >= wait->nodes && found
                && shoal_view_subscriptions (view) >= wait->subscriptions;
    shoal_view_destroy (&view);
    return reached;
}

static void
s_test_events_field (shoal_node_t *node, zsock_t *dealer)
{
    msgpack_sbuffer events;
    msgpack_sbuffer_init (&events);
    msgpack_packer packer;
    msgpack_packer_init (&packer, &events, msgpack_sbuffer_write);

    msgpack_sbuffer_clear (&events);
    s_pack_text (&packer, "tcp://127.0.0.1:2");
    s_refused_events (node, dealer, &events, "are not an array (a string)");

    msgpack_sbuffer_clear (&events);
    msgpack_pack_array (&packer, 3);
    s_pack_text (&packer, "tcp://127.0.0.1:2");
    msgpack_pack_array (&packer, 0);
    msgpack_pack_uint8 (&packer, 1);
    s_refused_events (node, dealer, &events, "are an array of 3 elements");

    msgpack_sbuffer_clear (&events);
    msgpack_pack_array (&packer, 2);
    msgpack_pack_uint16 (&packer, 4242);
    msgpack_pack_array (&packer, 0);
    s_refused_events (node, dealer, &events, "have an endpoint that is not a string");

    msgpack_sbuffer_clear (&events);
    msgpack_pack_array (&packer, 2);
    s_pack_text (&packer, "http://127.0.0.1:2");
    msgpack_pack_array (&packer, 0);
    s_refused_events (node, dealer, &events, "have an endpoint of no transport we know");

    s_events (&events, "tcp://127.0.0.1:2", 1, "sub1", 7, "order.*");
    s_refused_events (node, dealer, &events, "have a subscription with delivery 7");

    s_events (&events, "tcp://127.0.0.1:2", 1, "sub1", 0, "a..b");
    s_refused_events (node, dealer, &events, "have a subscription to \"a..b\"");

    s_events (&events, "tcp://127.0.0.1:2", 1, "sub1", 0, "ord*");
    s_refused_events (node, dealer, &events, "have a subscription to \"ord*\"");

    char long_pattern [301];
    memset (long_pattern, 'p', 300);
    long_pattern [300] = 0;
    s_events (&events, "tcp://127.0.0.1:2", 1, "sub1", 0, long_pattern);
    s_refused_events (node, dealer, &events, "have a pattern of 300 bytes");

    s_events (&events, "tcp://127.0.0.1:2", 1025, "sub", 0, "order.*");
    s_refused_events (node, dealer, &events, "have 1025 subscriptions (limit 1024)");

    char long_id [101];
    memset (long_id, 'i', 100);
    long_id [100] = 0;
    s_events (&events, "tcp://127.0.0.1:2", 1, long_id, 0, "order.*");
    s_refused_events (node, dealer, &events, "have a subscription id of 100 bytes");

    s_events (&events, "tcp://127.0.0.1:2", 1, "has space", 0, "order.*");
    s_refused_events (node, dealer, &events, "have a subscription id with a space");

    msgpack_sbuffer_clear (&events);
    msgpack_pack_array (&packer, 2);
    s_pack_text (&packer, "tcp://127.0.0.1:2");
    msgpack_pack_array (&packer, 1);
    msgpack_pack_array (&packer, 3);
    s_pack_text (&packer, "sub1");
    msgpack_pack_uint8 (&packer, 0);
    s_pack_text (&packer, "order.*");
    s_refused_events (node, dealer, &events, "have a subscription of 3 fields");

    //  A good STATE after all that is accepted: the node keeps serving.
    //  First an older node's, of 10 fields (no events)...
    uint64_t refused = shoal_node_refused (node);
    size_t nodes = s_nodes (node);
    s_send_state (dealer, "eeeeeeeeeee1", 10, NULL);
    s_view_wait_t wait = { node, nodes + 1, NULL, 0 };
    bool added = tap_wait_until (s_view_reaches, &wait, 2000);
    tap_ok (added && shoal_node_refused (node) == refused,
            "a STATE of 10 fields (a node without events) is still accepted (%zu nodes)",
            s_nodes (node));
    //  ...then one with events: a publisher and 1024 subscriptions (the limit)
    s_events (&events, "tcp://127.0.0.1:2", 1024, "sub", 0, "order.*");
    s_send_state (dealer, "eeeeeeeeeee2", 11, &events);
    s_view_wait_t full = { node, nodes + 2, "tcp://127.0.0.1:2", 1024 };
    added = tap_wait_until (s_view_reaches, &full, 2000);
    tap_ok (added && shoal_node_refused (node) == refused,
            "a STATE of 11 fields with a publisher and 1024 subscriptions is accepted: the view "
            "shows them (%zu nodes, %" PRIu64 " refused since)", s_nodes (node),
            shoal_node_refused (node) - refused);
    msgpack_sbuffer_destroy (&events);
}

int
main (void)
{
    zsys_set_logstream (stderr);
    if (!mkdtemp (s_folder))
        tap_bail ("cannot make a temporary folder");
    shoal_node_t *node = shoal_node_new ("bad-gossip");
    shoal_node_t *peer = shoal_node_new ("bad-gossip");
    shoal_node_set_rendezvous (node, s_folder);
    shoal_node_set_rendezvous (peer, s_folder);
    if (shoal_node_start (node) || shoal_node_start (peer))
        tap_bail ("cannot start the nodes");
    tap_ok (shoal_node_wait_nodes (node, 2, 2000), "two real nodes meet");

    zsock_t *dealer = zsock_new_dealer (shoal_node_endpoint (node));
    s_refusals_t refusals = { node, shoal_node_refused (node) };

    //  One of each kind, each must be counted once
    const char *garbage = "not msgpack at all";
    s_send (dealer, garbage, strlen (garbage));
    s_send (dealer, "\xdd\xff\xff\xff\xff", 5);                     //  a huge array, no bytes
    s_send (dealer, "", 0);
    s_send_packed (dealer, shoal_body_pack ("[s,i,s,s,s,i]", "shoal-node", 2, "STATE",
                                            "bad-gossip", "aaaaaaaaaaaa", 1));    //  version 2
    s_send_packed (dealer, shoal_body_pack ("[s,i,s,s,s,i]", "shoal-node", 1, "BYE",
                                            "other-cluster", "aaaaaaaaaaaa", 1));
    s_send_packed (dealer, shoal_body_pack ("[s,i,s,s,s,i]", "other-protocol", 1, "STATE",
                                            "bad-gossip", "aaaaaaaaaaaa", 1));
    //  A STATE of the right cluster but the wrong shape: instances not an array
    s_send_packed (dealer, shoal_body_pack ("[s,i,s,s,s,i,s,i,{},[]]", "shoal-node", 1, "STATE",
                                            "bad-gossip", "bbbbbbbbbbbb", 1,
                                            "tcp://127.0.0.1:1", 7));
    //  An instance whose endpoint is of no transport we know
    s_send_packed (dealer, shoal_body_pack (
        "[s,i,s,s,s,i,s,[[s,s,s,s,i,i,i,i,s]],{},[]]", "shoal-node", 1, "STATE",
        "bad-gossip", "cccccccccccc", 1, "tcp://127.0.0.1:1", "cart", "1", "x1",
        "http://evil.example/", 0, 0, 0, 0, ""));
    //  A gossip endpoint of another transport: we would connect to it
    s_send_packed (dealer, shoal_body_pack ("[s,i,s,s,s,i,s,[],{},[]]", "shoal-node", 1, "STATE",
                                            "bad-gossip", "dddddddddddd", 1,
                                            "ipc:///tmp/elsewhere", "x"));
    //  Two frames
    zstr_sendx (dealer, "one", "two", NULL);
    uint64_t base = refusals.expected;
    refusals.expected += 10;
    bool counted = tap_wait_until (s_refused, &refusals, 2000);
    tap_ok (counted && shoal_node_refused (node) - base == 10,
            "10 hostile messages are dropped and counted, once each (%" PRIu64 ")",
            shoal_node_refused (node) - base);
    tap_ok (s_nodes (node) == 2 && s_instances (node) == 0,
            "none added a node or an instance (%zu nodes, %zu instances)", s_nodes (node),
            s_instances (node));

    //  A flood: bounded in count, and the node keeps hearing its peer
    int64_t start = zclock_mono ();
    for (int count = 0; count < 20000; count++)
        zmq_send (zsock_resolve (dealer), garbage, strlen (garbage), ZMQ_DONTWAIT);
    int64_t sent = zclock_mono () - start;
    refusals.expected += 1;         //  at least some arrive; wait for the first
    tap_wait_until (s_refused, &refusals, 2000);
    //  The flood is drained: its last message is counted
    uint64_t before = shoal_node_refused (node);
    s_send (dealer, garbage, strlen (garbage));
    refusals.expected = before + 1;
    bool drained = tap_wait_until (s_refused, &refusals, 5000);
    tap_ok (drained, "a flood of 20000 messages (sent in %d ms) is drained", (int) sent);
    //  ...and the real peer was never expired meanwhile
    tap_ok (s_nodes (node) == 2, "the real peer stayed in the view through the flood");
    //  A new instance on the real peer is still seen quickly
    shoal_service_t *service = shoal_service_new ("cart", "1.0.0");
    shoal_service_set_node (service, peer);
    shoal_service_bind (service, "tcp://127.0.0.1:*");
    int rc = shoal_service_start (service, 1);
    int64_t joined = zclock_mono ();
    bool seen = rc == 0 && shoal_node_wait_for (node, "cart", 1, 2000);
    tap_ok (seen, "after the flood, a new instance is seen in %d ms",
            (int) (zclock_mono () - joined));

    //  The events field of STATE (the 11th), malformed in each way
    s_test_events_field (node, dealer);

    shoal_service_destroy (&service);
    zsock_destroy (&dealer);
    shoal_node_destroy (&peer);
    shoal_node_destroy (&node);
    char *command = zsys_sprintf ("rm -rf '%s'", s_folder);
    if (system (command))
        tap_diag ("could not remove %s", s_folder);
    free (command);
    return tap_exit_status ();
}
