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
