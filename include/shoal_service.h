/*  shoal_service - a named, versioned set of methods, served by N instance
    actors. Each instance is a thread with its own state (made by the state
    callback) and its own sockets, so handlers need no locks.

        int main (int argc, char **argv)
        {
            shoal_service_t *service = shoal_service_new ("echo", "1.0.0");
            shoal_service_method (service, "echo", s_echo, SHOAL_IDEMPOTENT,
                                  "Returns the body unchanged");
            return shoal_service_main (&service, argc, argv);
        }
*/
#ifndef SHOAL_SERVICE_H_INCLUDED
#define SHOAL_SERVICE_H_INCLUDED

#ifdef __cplusplus
extern "C" {
#endif

//  Method flags.
#define SHOAL_IDEMPOTENT 1      //  safe to retry on another instance

//  Limits with their defaults; all can be set per service.
#define SHOAL_DEFAULT_MAX_MESSAGE (1024 * 1024)    //  bytes per wire frame
#define SHOAL_MAX_NAME 128                          //  service / method name bytes

typedef void (shoal_handler_fn) (shoal_request_t *request, void *state);
typedef void *(shoal_state_new_fn) (void *arg);
typedef void (shoal_state_destroy_fn) (void *state);

//  A new service. NAME: 1..SHOAL_MAX_NAME bytes of [A-Za-z0-9._-]. Returns
//  NULL if the name is invalid. The caller destroys it.
SHOAL_EXPORT shoal_service_t *
    shoal_service_new (const char *name, const char *version);

//  Stops the service if it runs (see shoal_service_stop), frees it and
//  nulls the caller's pointer. Safe on NULL.
SHOAL_EXPORT void
    shoal_service_destroy (shoal_service_t **self_p);

SHOAL_EXPORT const char *
    shoal_service_name (shoal_service_t *self);
SHOAL_EXPORT const char *
    shoal_service_version (shoal_service_t *self);

//  Adds a method. FLAGS: 0 or SHOAL_IDEMPOTENT. DOC may be NULL. Returns 0,
//  or -1 if the name is invalid, taken, starts with '$' (reserved for the
//  built-ins) or the service already runs.
SHOAL_EXPORT int
    shoal_service_method (shoal_service_t *self, const char *name,
                          shoal_handler_fn *handler, int flags, const char *doc);

//  How each instance makes and frees its state; ARG is passed to NEW_FN.
//  Without it the handlers get ARG itself as state (shared: read-only!).
SHOAL_EXPORT void
    shoal_service_set_state (shoal_service_t *self, shoal_state_new_fn *new_fn,
                             shoal_state_destroy_fn *destroy_fn, void *arg);

//  Announces the instances through NODE, so they are called by name and
//  drained cleanly. Before start; the node must outlive the service.
SHOAL_EXPORT void
    shoal_service_set_node (shoal_service_t *self, shoal_node_t *node);

//  Sets the endpoint the instances bind (default "tcp://127.0.0.1:*", or
//  the node's host with an ephemeral port when a node is set).
//  With several instances: a "*" port gives each its own ephemeral port, a
//  fixed port P gives instance i port P+i, and an ipc:// or inproc:// name
//  gets "-i" appended for every instance after the first.
SHOAL_EXPORT void
    shoal_service_bind (shoal_service_t *self, const char *endpoint);

//  Largest frame accepted from the network (default SHOAL_DEFAULT_MAX_MESSAGE).
//  A peer that sends more is disconnected by ZeroMQ (ZMQ_MAXMSGSIZE).
SHOAL_EXPORT void
    shoal_service_set_max_message (shoal_service_t *self, size_t bytes);

//  Nesting limit for request bodies (default SHOAL_DEFAULT_MAX_DEPTH).
SHOAL_EXPORT void
    shoal_service_set_max_depth (shoal_service_t *self, int depth);

//  Subscribes every instance to PATTERN (see shoal_event.h): HANDLER runs in
//  the instance actor with the instance's state. DELIVERY: SHOAL_BROADCAST
//  (each instance gets every event) or SHOAL_BALANCED (one instance of the
//  service gets each event). Before start. Returns 0, or -1 if the pattern
//  is malformed, SHOAL_MAX_PATTERNS are already taken, or the service runs.
SHOAL_EXPORT int
    shoal_service_on_event (shoal_service_t *self, const char *pattern,
                            shoal_delivery_t delivery, shoal_event_fn *handler);

//  Calls FN (with the instance's state as ARG) when an instance loses
//  events for good. Before start.
SHOAL_EXPORT void
    shoal_service_on_gap (shoal_service_t *self, shoal_gap_fn *fn);

//  Starts INSTANCES instance actors and returns once every one is bound and
//  serving. Returns 0, or -1 if an endpoint cannot be bound (logged; no
//  instance is left running) or the service already runs.
SHOAL_EXPORT int
    shoal_service_start (shoal_service_t *self, size_t instances);

//  Number of running instances.
SHOAL_EXPORT size_t
    shoal_service_size (shoal_service_t *self);

//  The endpoint instance INDEX is bound to, with the real port, e.g.
//  "tcp://127.0.0.1:40311"; and its in-process endpoint ("inproc://...")
//  that callers in the same process use to skip the TCP stack. NULL if no
//  such instance. Borrowed.
SHOAL_EXPORT const char *
    shoal_service_endpoint (shoal_service_t *self, size_t index);
SHOAL_EXPORT const char *
    shoal_service_inproc (shoal_service_t *self, size_t index);

//  How a stopping instance drains: it answers every request it has, and
//  goes on until no request has come for SHOAL_DRAIN_QUIET ms (requests
//  sent just before the stop are still arriving), for SHOAL_DRAIN_MAX ms
//  at most.
#define SHOAL_DRAIN_QUIET 100
#define SHOAL_DRAIN_MAX 5000
//  With a node: how long a draining instance goes on serving after it has
//  told the cluster, before it starts its quiet countdown.
#define SHOAL_DRAIN_ANNOUNCE 300

//  With a node: tells the cluster that every instance is draining, so
//  callers send them nothing new, and returns after SHOAL_DRAIN_ANNOUNCE ms
//  (the instances serve on meanwhile). shoal_service_stop does this first.
SHOAL_EXPORT void
    shoal_service_drain (shoal_service_t *self);

//  Stops every instance: each answers the requests it has received (see
//  SHOAL_DRAIN_QUIET), then exits. Blocks until all are gone.
SHOAL_EXPORT void
    shoal_service_stop (shoal_service_t *self);

//  Starts the service (if not started) and serves until SIGINT or SIGTERM,
//  then stops it cleanly. Returns 0, or -1 if it could not start.
SHOAL_EXPORT int
    shoal_service_run (shoal_service_t *self, size_t instances);

//  A whole main(): parses the standard flags (--bind, --instances,
//  --cluster, --seed, --interface, --host, --node-port, --help), joins the
//  cluster with a node of its own, prints the bound endpoints on stdout,
//  one per line, logs to stderr, runs until SIGINT/SIGTERM and returns the process
//  exit code (0; 1 if it could not start; 2 for bad flags). Takes the
//  service and destroys it (NULL is allowed: exit code 1).
SHOAL_EXPORT int
    shoal_service_main (shoal_service_t **self_p, int argc, char **argv);

SHOAL_EXPORT void
    shoal_service_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
