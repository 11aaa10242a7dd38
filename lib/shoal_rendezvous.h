/*  shoal_rendezvous - where nodes on one host meet with no configuration:
    a folder per cluster holding one file per live node with its gossip
    endpoint. Each node keeps an exclusive flock on its file while it lives,
    so a file whose lock can be taken belongs to a dead process (killed,
    crashed) and is removed by whoever finds it. Nothing leaves the host.   */
#ifndef SHOAL_RENDEZVOUS_H_INCLUDED
#define SHOAL_RENDEZVOUS_H_INCLUDED

typedef struct _shoal_rendezvous_t shoal_rendezvous_t;

//  Joins the rendezvous of CLUSTER under DIRECTORY (NULL: the default, see
//  shoal_node_set_rendezvous), announcing ENDPOINT for NODE. Returns NULL
//  with the reason in ERROR if the folder cannot be made or is not ours.
shoal_rendezvous_t *
    shoal_rendezvous_new (const char *directory, const char *cluster, const char *node,
                          const char *endpoint, char *error, size_t error_size);

//  Leaves: removes this node's file.
void
    shoal_rendezvous_destroy (shoal_rendezvous_t **self_p);

//  Appends the endpoints of the other live nodes to ENDPOINTS, removes the
//  files of dead ones and appends their node ids to DEAD (may be NULL).
//  Both lists get fresh strings: give them zstr_free as destructor.
void
    shoal_rendezvous_scan (shoal_rendezvous_t *self, zlistx_t *endpoints, zlistx_t *dead);

void
    shoal_rendezvous_test (bool verbose);

#endif
