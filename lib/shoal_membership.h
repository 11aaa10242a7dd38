/*  shoal_membership - the actor behind shoal_node: discovery, gossip,
    heartbeats and expiry. It owns the registry and publishes views through
    its node. Private.                                                       */
#ifndef SHOAL_MEMBERSHIP_H_INCLUDED
#define SHOAL_MEMBERSHIP_H_INCLUDED

#define SHOAL_GOSSIP_SIGNATURE "shoal-node"
#define SHOAL_GOSSIP_MAX_MESSAGE (256 * 1024)
#define SHOAL_GOSSIP_FORGET 30000       //  ms before a silent peer's socket is closed

//  shoal_actor_new (shoal_membership_actor, node). Commands on the pipe, each
//  answered with a signal (0 = done):
//      "ADD" slot      announce a local instance (shoal_instance_slot_t *)
//      "DRAIN" slot    announce it draining
//      "REMOVE" slot   stop announcing it
void
    shoal_membership_actor (zsock_t *pipe, void *node);

//  What the membership needs of its node (lib/shoal_node.c)
typedef struct {
    char *cluster;
    char id [33];
    char *host;
    int port;
    char *interface;
    char *rendezvous;
    zlistx_t *seeds;            //  given by the program: they win
    zlistx_t *env_seeds;        //  from SHOAL_SEEDS, used when there are none
    int beat;
    int expiry;
    char endpoint [256];        //  out: the bound gossip endpoint
    char events [256];          //  out: the bound event publisher endpoint
    int event_buffer;           //  events queued per subscriber, both ends
    int replay;                 //  events kept for replay
    char error [256];           //  out: why it could not start
} shoal_node_config_t;

shoal_node_config_t *
    shoal_node_config (shoal_node_t *node);
//  Opens the node's event publisher, once the host is known; returns 0 or
//  -1 with the reason in the config's error
int
    shoal_node_open_events (shoal_node_t *node);
void
    shoal_node_post_view (shoal_node_t *node, shoal_view_t *view, size_t pending);
void
    shoal_node_count_refused (shoal_node_t *node);
//  Bumped each time a view is published; read without a lock
uint64_t
    shoal_node_generation (shoal_node_t *node);

#endif
