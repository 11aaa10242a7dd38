/*  shoal_view - a snapshot of the cluster as one node knows it: every
    instance of every service, with its node, endpoint, state and load.
    A view never changes once made, so any thread may read it.              */
#ifndef SHOAL_VIEW_H_INCLUDED
#define SHOAL_VIEW_H_INCLUDED

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    SHOAL_INSTANCE_UP = 0,
    SHOAL_INSTANCE_DRAINING = 1
} shoal_instance_state_t;

//  One instance as the registry knows it. All strings are owned by the view.
typedef struct {
    const char *service;
    const char *version;
    const char *instance;       //  instance id
    const char *node;           //  node id
    const char *endpoint;       //  where to call it
    const char *inproc;         //  in-process endpoint, if in this process; else NULL
    shoal_instance_state_t state;
    uint32_t load;              //  requests it is working on or holding
    uint32_t latency_us;        //  recent mean time to answer
    uint64_t calls;             //  answered since it started
    bool local;                 //  on this node
} shoal_instance_info_t;

//  Number of instances in the view.
SHOAL_EXPORT size_t
    shoal_view_size (shoal_view_t *self);

//  Instance INDEX (0..size-1), sorted by service, then node, then instance
//  id; NULL past the end. Borrowed from the view.
SHOAL_EXPORT const shoal_instance_info_t *
    shoal_view_at (shoal_view_t *self, size_t index);

//  The instances of SERVICE (a borrowed array of pointers, its length in
//  COUNT), or NULL with COUNT 0 if the view has none.
SHOAL_EXPORT const shoal_instance_info_t *const *
    shoal_view_service (shoal_view_t *self, const char *service, size_t *count);

//  True if METHOD of SERVICE was declared idempotent by its instances.
SHOAL_EXPORT bool
    shoal_view_idempotent (shoal_view_t *self, const char *service, const char *method);

//  Number of nodes the view has heard from (this one included).
SHOAL_EXPORT size_t
    shoal_view_nodes (shoal_view_t *self);

//  One subscription as the registry knows it. Strings owned by the view.
typedef struct {
    const char *id;             //  the subscriber (broadcast); the service (balanced)
    const char *node;           //  where it is
    const char *service;        //  its service ("" for a plain subscriber)
    const char *pattern;
    shoal_delivery_t delivery;
} shoal_subscription_info_t;

//  Number of subscriptions in the view, and subscription INDEX (NULL past
//  the end), sorted by node then id. Borrowed from the view.
SHOAL_EXPORT size_t
    shoal_view_subscriptions (shoal_view_t *self);
SHOAL_EXPORT const shoal_subscription_info_t *
    shoal_view_subscription_at (shoal_view_t *self, size_t index);

//  Number of nodes with an event publisher, and publisher INDEX's endpoint
//  (NULL past the end), with its node id in *NODE if NODE is given.
SHOAL_EXPORT size_t
    shoal_view_publishers (shoal_view_t *self);
SHOAL_EXPORT const char *
    shoal_view_publisher_at (shoal_view_t *self, size_t index, const char **node);

//  Releases the caller's reference and nulls the pointer. Safe on NULL.
SHOAL_EXPORT void
    shoal_view_destroy (shoal_view_t **self_p);

#ifdef __cplusplus
}
#endif
#endif
