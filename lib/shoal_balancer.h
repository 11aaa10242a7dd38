/*  shoal_balancer - chooses the instance for a call by name, from a view and
    what this client has seen of each instance: its calls in flight here and
    a circuit breaker. One per client, so it needs no locks.                */
#ifndef SHOAL_BALANCER_H_INCLUDED
#define SHOAL_BALANCER_H_INCLUDED

#define SHOAL_BREAKER_FAILURES 5        //  consecutive failures that open it
#define SHOAL_BREAKER_OPEN 1000         //  ms before one probe is let through
#define SHOAL_MAX_IN_FLIGHT 1024        //  calls in flight per instance, per client

typedef struct _shoal_balancer_t shoal_balancer_t;

shoal_balancer_t *
    shoal_balancer_new (void);
void
    shoal_balancer_destroy (shoal_balancer_t **self_p);

//  Picks an instance of SERVICE in VIEW that is up, not in TRIED (instance
//  ids; may be NULL), not EXCLUDED (may be NULL), whose breaker lets a call
//  through and that has room. KEY is for SHOAL_ROUTE_HASH. Returns it
//  (borrowed from VIEW), or NULL with STATUS set: UNAVAILABLE (none up) or
//  RESOURCE_EXHAUSTED (all full or broken).
const shoal_instance_info_t *
    shoal_balancer_pick (shoal_balancer_t *self, shoal_view_t *view, const char *service,
                         shoal_route_t route, const char *key, bool prefer_local,
                         zlistx_t *tried, const char *excluded, int64_t now,
                         shoal_status_t *status);

//  A call was sent to INSTANCE.
void
    shoal_balancer_sent (shoal_balancer_t *self, const char *instance);

//  A call to INSTANCE ended; FAILED if the instance failed to serve it
//  (unreachable, gone, UNAVAILABLE, no reply in time).
void
    shoal_balancer_done (shoal_balancer_t *self, const char *instance, bool failed,
                         int64_t now);

//  Calls in flight to INSTANCE from this client.
size_t
    shoal_balancer_in_flight (shoal_balancer_t *self, const char *instance);

//  Forgets what it knows of instances not in VIEW.
void
    shoal_balancer_prune (shoal_balancer_t *self, shoal_view_t *view);

void
    shoal_balancer_test (bool verbose);

#endif
