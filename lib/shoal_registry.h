/*  shoal_registry - which nodes the node knows of, and the instances each
    announced. A pure data structure owned by the membership actor: no
    sockets, no clocks (callers pass the time), so it is tested alone.

    Each node's announcement replaces what the registry held for it. The
    announcement is msgpack (see docs/protocol.md, section Cluster):
        instances: [[service, version, instance, endpoint, state, load,
                     latency_us, calls, inproc], ...]
        methods:   {service: [idempotent method, ...], ...}
        events:    [publisher endpoint, [[id, delivery, service, pattern], ...]]
                   (absent from nodes that predate events)                   */
#ifndef SHOAL_REGISTRY_H_INCLUDED
#define SHOAL_REGISTRY_H_INCLUDED

#define SHOAL_REGISTRY_MAX_NODES 1024
#define SHOAL_REGISTRY_MAX_INSTANCES 256    //  per node
#define SHOAL_REGISTRY_MAX_METHODS 256      //  idempotent ones, per node
#define SHOAL_REGISTRY_MAX_SUBSCRIPTIONS 1024   //  per node

typedef struct _shoal_registry_t shoal_registry_t;

//  A registry for the node SELF (whose instances are marked local).
shoal_registry_t *
    shoal_registry_new (const char *self);
void
    shoal_registry_destroy (shoal_registry_t **self_p);

//  Applies NODE's announcement, heard at NOW. Returns 1 if what the view
//  shows changed, 0 if not (the node is only marked alive), -1 if the
//  announcement is refused (malformed, over a limit, an older incarnation,
//  or the registry is full), with the reason in ERROR.
int
    shoal_registry_update (shoal_registry_t *self, const char *node, uint64_t incarnation,
                           const char *endpoint, const msgpack_object *instances,
                           const msgpack_object *methods, const msgpack_object *events,
                           int64_t now, char *error, size_t error_size);

//  Removes the nodes not heard from since NOW - TIMEOUT (never SELF) and
//  appends their ids to GONE (a list of strings, which it duplicates; may
//  be NULL). Returns how many it removed.
size_t
    shoal_registry_expire (shoal_registry_t *self, int64_t now, int64_t timeout,
                           zlistx_t *gone);

//  Removes NODE at once (it said goodbye). Returns true if it was there.
bool
    shoal_registry_remove (shoal_registry_t *self, const char *node);

//  NODE's gossip endpoint, or NULL if unknown. Borrowed until NODE changes.
const char *
    shoal_registry_endpoint (shoal_registry_t *self, const char *node);

//  True if NODE is in the registry.
bool
    shoal_registry_knows (shoal_registry_t *self, const char *node);

//  Number of nodes, SELF included once it announced.
size_t
    shoal_registry_size (shoal_registry_t *self);

//  Appends the gossip endpoint of every node but SELF to ENDPOINTS.
void
    shoal_registry_endpoints (shoal_registry_t *self, zlistx_t *endpoints);

//  A new view of everything the registry holds (see shoal_view.h).
shoal_view_t *
    shoal_registry_view (shoal_registry_t *self);

//  shoal_view's private side: views are made by the registry, shared by
//  reference count, and read by any thread.
shoal_view_t *
    shoal_view_new (void);
void
    shoal_view_add (shoal_view_t *self, const shoal_instance_info_t *info);
void
    shoal_view_add_idempotent (shoal_view_t *self, const char *service, const char *method);
void
    shoal_view_add_subscription (shoal_view_t *self, const shoal_subscription_info_t *info);
void
    shoal_view_add_publisher (shoal_view_t *self, const char *node, const char *endpoint);
//  Sorts and indexes the view; after this it never changes
void
    shoal_view_seal (shoal_view_t *self, size_t nodes);
shoal_view_t *
    shoal_view_ref (shoal_view_t *self);

void
    shoal_registry_test (bool verbose);

#endif
