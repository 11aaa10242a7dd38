/*  shoal_client - calls from one thread. One DEALER per endpoint, owned by
    the client: a call goes from the caller's thread straight to the socket,
    and the reply is read by the same thread when it waits. There is no
    background actor between the caller and the wire, because every hop
    there is paid on every call.

    Pending calls are found by correlation id in a hash; finished calls wait
    in a list for shoal_client_wait_any. A reply whose call is gone (timed
    out, destroyed) is dropped and counted.

    Sending never blocks: with ZMQ_IMMEDIATE a link that is not connected
    yet refuses a message, and the call is then parked, with a copy of what
    it needs, and sent from the wait loop once the link can take it.

    Calls by name pick an instance from the node's view (shoal_balancer) and
    keep what they need to be sent again: an idempotent call whose instance
    leaves the view, cannot be reached or answers UNAVAILABLE goes to
    another instance, under a new correlation id, within its deadline.      */
#include "shoal_private.h"

typedef struct {
    zsock_t *dealer;
    void *handle;               //  its libzmq socket
    size_t parked;              //  calls waiting for it to take them
} s_link_t;

//  What a call keeps when it may have to be sent later or again
typedef struct {
    char *endpoint;             //  a call by endpoint; NULL: by name
    char *service;
    char *method;
    char *key;
    void *body;
    size_t size;
    void *meta;
    size_t meta_size;
    char instance [65];         //  by name: the instance of the current attempt
    zlistx_t *tried;            //  by name: instances that failed this call
    bool idempotent;
    bool counted;               //  by name: the attempt is in the balancer's figures
    s_link_t *link;             //  while parked: the link it waits for
    int64_t until;              //  while parked: when to give up on that link
    int64_t not_before;         //  while parked: a delay (a fault), else 0
    void *parked;               //  while parked: handle in the client's list
} s_route_t;

struct _shoal_client_t {
    zhashx_t *links;            //  endpoint -> s_link_t
    zhashx_t *pending;          //  id -> shoal_call_t, calls sent and not done
    zlistx_t *finished;         //  done calls not yet waited on nor returned
    zlistx_t *parked;           //  calls waiting for their link
    shoal_call_t *waiting;      //  the call shoal_call_wait waits on, if any
    uint64_t next_id;
    msgpack_sbuffer header;     //  request encoding, reused
    zmq_pollitem_t *items;      //  one per link
    size_t items_size;
    bool items_stale;           //  links came or parked calls changed
    uint64_t stale_replies;
    size_t max_message;         //  largest reply frame accepted
    //  Calls by name
    shoal_node_t *node;
    shoal_view_t *view;         //  the node's view as of VIEW_GENERATION
    uint64_t view_generation;
    shoal_balancer_t *balancer;
    shoal_route_t route;
    bool prefer_local;
    char *excluded;             //  an instance never to pick (see _exclude)
    size_t named_pending;       //  calls by name in flight
};

//  How long one attempt by name may wait for a connection before another
//  instance is tried: nothing was sent, so trying elsewhere is always safe
#define SHOAL_CONNECT_BUDGET 200
//  How often a client waiting on calls by name looks at the view
#define SHOAL_VIEW_CHECK 50

static void
s_route_destroy (void **item)
{
    s_route_t *route = (s_route_t *) *item;
    free (route->endpoint);
    free (route->service);
    free (route->method);
    free (route->key);
    free (route->body);
    free (route->meta);
    zlistx_destroy (&route->tried);
    free (route);
    *item = NULL;
}

//  Keeps copies of what CALL needs to be sent later, or again
static s_route_t *
s_route_new (shoal_call_t *call, const char *endpoint, const char *key, const char *service,
             const char *method, const void *body, size_t size, const void *meta,
             size_t meta_size)
{
    s_route_t *route = (s_route_t *) zmalloc (sizeof (s_route_t));
    route->endpoint = endpoint ? strdup (endpoint) : NULL;
    route->service = strdup (service);
    route->method = strdup (method);
    route->key = key ? strdup (key) : NULL;
    if (body && size) {
        route->body = malloc (size);
        memcpy (route->body, body, size);
        route->size = size;
    }
    if (meta && meta_size) {
        route->meta = malloc (meta_size);
        memcpy (route->meta, meta, meta_size);
        route->meta_size = meta_size;
    }
    shoal_call_set_route (call, route, s_route_destroy);
    return route;
}

//  Notes that the current attempt's instance failed this call; the list is
//  made on the first failure only, as most calls never need it
static void
s_tried (s_route_t *route)
{
    if (!route->tried) {
        route->tried = zlistx_new ();
        zlistx_set_duplicator (route->tried, (zlistx_duplicator_fn *) strdup);
        zlistx_set_destructor (route->tried, (zlistx_destructor_fn *) zstr_free);
    }
    zlistx_add_end (route->tried, route->instance);
}

//  Correlation ids are the hash keys themselves (never 0), not pointers
static size_t
s_id_hash (const void *key)
{
    return (size_t) (uintptr_t) key;
}

static int
s_id_compare (const void *a, const void *b)
{
    return a == b ? 0 : (a < b ? -1 : 1);
}

static void *
s_key (shoal_call_t *call)
{
    return (void *) (uintptr_t) shoal_call_id (call);
}

static void
s_link_destroy (void **item)
{
    s_link_t *link = (s_link_t *) *item;
    zsock_destroy (&link->dealer);
    free (link);
    *item = NULL;
}

shoal_client_t *
shoal_client_new (void)
{
    zsys_init ();
    shoal_client_t *self = (shoal_client_t *) zmalloc (sizeof (shoal_client_t));
    self->links = zhashx_new ();
    zhashx_set_destructor (self->links, s_link_destroy);
    self->pending = zhashx_new ();
    zhashx_set_key_hasher (self->pending, s_id_hash);
    zhashx_set_key_comparator (self->pending, s_id_compare);
    zhashx_set_key_duplicator (self->pending, NULL);
    zhashx_set_key_destructor (self->pending, NULL);
    self->finished = zlistx_new ();
    self->parked = zlistx_new ();
    msgpack_sbuffer_init (&self->header);
    self->max_message = SHOAL_DEFAULT_MAX_REPLY;
    self->balancer = shoal_balancer_new ();
    return self;
}

void
shoal_client_destroy (shoal_client_t **self_p)
{
    shoal_client_t *self = *self_p;
    if (!self)
        return;
    //  Calls outlive their client: they end CANCELLED, and stay the caller's
    shoal_call_t *call;
    for (call = (shoal_call_t *) zhashx_first (self->pending); call;
         call = (shoal_call_t *) zhashx_next (self->pending)) {
        s_route_t *route = (s_route_t *) shoal_call_route (call);
        if (route) {
            route->link = NULL;
            route->parked = NULL;
        }
        shoal_call_detach (call);
        shoal_call_finishf (call, SHOAL_CANCELLED, "the client was destroyed");
    }
    for (call = (shoal_call_t *) zlistx_first (self->finished); call;
         call = (shoal_call_t *) zlistx_next (self->finished))
        shoal_call_detach (call);
    zhashx_destroy (&self->pending);
    zlistx_destroy (&self->finished);
    zlistx_destroy (&self->parked);
    zhashx_destroy (&self->links);
    msgpack_sbuffer_destroy (&self->header);
    free (self->items);
    shoal_view_destroy (&self->view);
    shoal_balancer_destroy (&self->balancer);
    free (self->excluded);
    free (self);
    *self_p = NULL;
}

void
shoal_client_set_node (shoal_client_t *self, shoal_node_t *node)
{
    self->node = node;
    shoal_view_destroy (&self->view);
    self->view_generation = 0;
}

void
shoal_client_set_route (shoal_client_t *self, shoal_route_t route)
{
    self->route = route;
}

void
shoal_client_set_prefer_local (shoal_client_t *self, bool prefer_local)
{
    self->prefer_local = prefer_local;
}

void
shoal_client_set_max_message (shoal_client_t *self, size_t bytes)
{
    self->max_message = bytes;
}

void
shoal_client_exclude (shoal_client_t *self, const char *id)
{
    free (self->excluded);
    self->excluded = id ? strdup (id) : NULL;
}

size_t
shoal_client_pending (shoal_client_t *self)
{
    return zhashx_size (self->pending);
}

//  --------------------------------------------------------------------------
//  Links, sending and parking

//  The link to ENDPOINT, connecting on first use; NULL if it is malformed
static s_link_t *
s_link (shoal_client_t *self, const char *endpoint)
{
    s_link_t *link = (s_link_t *) zhashx_lookup (self->links, endpoint);
    if (link)
        return link;
    zsock_t *dealer = shoal_socket_client (endpoint, self->max_message);
    if (!dealer)
        return NULL;
    link = (s_link_t *) zmalloc (sizeof (s_link_t));
    link->dealer = dealer;
    link->handle = zsock_resolve (dealer);
    zhashx_insert (self->links, endpoint, link);
    self->items_stale = true;
    return link;
}

//  Sends CALL's message on LINK without waiting: the header, made now so its
//  timeout is what is left, then the body, in one frame. Returns 0 if sent,
//  EAGAIN if the link cannot take it now, or -1.
static int
s_send (shoal_client_t *self, s_link_t *link, shoal_call_t *call, const char *service,
        const char *method, const void *body, size_t size, const void *meta,
        size_t meta_size)
{
    int64_t left = shoal_call_deadline (call) - zclock_mono ();
    if (left <= 0)
        return -1;
    msgpack_sbuffer_clear (&self->header);
    shoal_wire_encode_request (&self->header, shoal_call_id (call), service, method,
                               (uint32_t) left, meta, meta_size);
    zmq_msg_t message;
    zmq_msg_init_size (&message, self->header.size + (body ? size : 0));
    memcpy (zmq_msg_data (&message), self->header.data, self->header.size);
    if (body && size)
        memcpy ((char *) zmq_msg_data (&message) + self->header.size, body, size);
    if (zmq_msg_send (&message, link->handle, ZMQ_DONTWAIT) != -1)
        return 0;
    int error = errno;
    zmq_msg_close (&message);
    return error == EAGAIN ? EAGAIN : -1;
}

//  Parks CALL until its link takes it, or until NOT_BEFORE for a delayed
//  one (a fault); a link is polled for writing only for the former
static void
s_park (shoal_client_t *self, shoal_call_t *call, s_route_t *route, s_link_t *link,
        int64_t until, int64_t not_before)
{
    route->link = link;
    route->until = until;
    route->not_before = not_before;
    route->parked = zlistx_add_end (self->parked, call);
    if (!not_before) {
        link->parked++;
        self->items_stale = true;
    }
}

static void
s_unpark (shoal_client_t *self, s_route_t *route)
{
    if (!route->parked)
        return;
    zlistx_delete (self->parked, route->parked);
    route->parked = NULL;
    if (!route->not_before) {
        route->link->parked--;
        self->items_stale = true;
    }
    route->link = NULL;
}

//  --------------------------------------------------------------------------
//  Ending calls

//  Takes CALL out of the pending calls (and of the parked ones); a call by
//  name tells the balancer how its attempt went
static void
s_unpend (shoal_client_t *self, shoal_call_t *call, bool failed)
{
    zhashx_delete (self->pending, s_key (call));
    s_route_t *route = (s_route_t *) shoal_call_route (call);
    if (!route)
        return;
    s_unpark (self, route);
    if (route->counted) {
        route->counted = false;
        self->named_pending--;
        shoal_balancer_done (self->balancer, route->instance, failed, zclock_mono ());
    }
}

//  CALL is done: it joins the finished list, unless it is the one its
//  caller is waiting on right now
static void
s_finished (shoal_client_t *self, shoal_call_t *call)
{
    s_unpend (self, call, false);
    if (call != self->waiting)
        *shoal_call_handle (call) = zlistx_add_end (self->finished, call);
}

//  Takes CALL out of the finished list: it has been seen
static void
s_take (shoal_client_t *self, shoal_call_t *call)
{
    void **handle = shoal_call_handle (call);
    if (*handle) {
        zlistx_delete (self->finished, *handle);
        *handle = NULL;
    }
}

static void
s_expire (shoal_client_t *self, shoal_call_t *call)
{
    s_unpend (self, call, true);
    shoal_call_finishf (call, SHOAL_DEADLINE_EXCEEDED, "no reply within the deadline");
    s_finished (self, call);
}

//  --------------------------------------------------------------------------
//  Calls by name

//  Takes the node's latest view if it moved on; returns true if it did
static bool
s_refresh_view (shoal_client_t *self)
{
    uint64_t generation = shoal_node_generation (self->node);
    if (self->view && generation == self->view_generation)
        return false;
    shoal_view_destroy (&self->view);
    self->view = shoal_node_view (self->node);
    self->view_generation = generation;
    return true;
}

//  Sends an attempt of a call by name to the best instance that can take
//  it, or parks it for that instance; ends the call if no instance can
static void
s_dispatch (shoal_client_t *self, shoal_call_t *call)
{
    s_route_t *route = (s_route_t *) shoal_call_route (call);
    while (true) {
        s_refresh_view (self);
        int64_t now = zclock_mono ();
        if (now >= shoal_call_deadline (call)) {
            shoal_call_finishf (call, SHOAL_DEADLINE_EXCEEDED,
                                "no instance of '%s' answered within the deadline",
                                route->service);
            s_finished (self, call);
            return;
        }
        shoal_status_t status;
        const shoal_instance_info_t *info = shoal_balancer_pick (
            self->balancer, self->view, route->service,
            route->key ? SHOAL_ROUTE_HASH : self->route, route->key, self->prefer_local,
            route->tried, self->excluded, now, &status);
        if (!info) {
            shoal_call_finishf (call, status,
                                status == SHOAL_UNAVAILABLE
                                    ? "no instance of '%s' is up%s"
                                    : "every instance of '%s' is busy or failing%s",
                                route->service,
                                route->tried ? " (others failed)" : "");
            s_finished (self, call);
            return;
        }
        //  Built-ins are all idempotent ($event included: a balanced event
        //  is delivered at least once)
        route->idempotent = *route->method == '$'
                         || shoal_view_idempotent (self->view, route->service, route->method);
        size_t length = strnlen (info->instance, sizeof (route->instance) - 1);
        memcpy (route->instance, info->instance, length);
        route->instance [length] = 0;
        s_link_t *link = s_link (self, info->local && info->inproc ? info->inproc
                                                                  : info->endpoint);
        shoal_call_set_id (call, ++self->next_id);
        //  Faults a test asked for (shoal_testkit): one atomic load if none
        int delay;
        shoal_fault_t fault = shoal_node_fault (self->node, info->node, &delay);
        int rc = -1;
        if (link && fault == SHOAL_FAULT_DROP)
            rc = 0;                     //  lost on the wire: never sent
        else if (link && fault == SHOAL_FAULT_NONE && delay == 0)
            rc = s_send (self, link, call, route->service, route->method, route->body,
                         route->size, route->meta, route->meta_size);
        else if (link && fault == SHOAL_FAULT_NONE)
            rc = EAGAIN;                //  delayed: parked below
        if (rc != -1) {
            zhashx_insert (self->pending, s_key (call), call);
            shoal_balancer_sent (self->balancer, route->instance);
            route->counted = true;
            self->named_pending++;
            if (rc == EAGAIN) {
                int64_t until = delay ? shoal_call_deadline (call) : now + SHOAL_CONNECT_BUDGET;
                s_park (self, call, route, link,
                        until < shoal_call_deadline (call) ? until : shoal_call_deadline (call),
                        delay ? now + delay : 0);
            }
            return;
        }
        //  Nothing was sent: another instance may take it, whatever the method
        shoal_balancer_sent (self->balancer, route->instance);
        shoal_balancer_done (self->balancer, route->instance, true, now);
        s_tried (route);
    }
}

//  The instance of a call by name failed it (gone, unreachable, answered
//  UNAVAILABLE): an idempotent call tries another instance, others end,
//  unless nothing was sent yet
static void
s_failover (shoal_client_t *self, shoal_call_t *call, const char *why, bool sent)
{
    s_route_t *route = (s_route_t *) shoal_call_route (call);
    s_unpend (self, call, true);
    s_tried (route);
    if (route->idempotent || !sent)
        s_dispatch (self, call);
    else {
        shoal_call_finishf (call, SHOAL_UNAVAILABLE,
                            "instance %s of '%s' %s; '%s' is not idempotent, so it was "
                            "not sent again", route->instance, route->service, why,
                            route->method);
        s_finished (self, call);
    }
}

//  True if INSTANCE of SERVICE is still in the view (in any state: one that
//  drains still answers what it has)
static bool
s_in_view (shoal_client_t *self, const char *service, const char *instance)
{
    size_t count;
    const shoal_instance_info_t *const *instances =
        shoal_view_service (self->view, service, &count);
    for (size_t index = 0; index < count; index++)
        if (streq (instances [index]->instance, instance))
            return true;
    return false;
}

//  The view changed: calls in flight to instances that left it fail over
static void
s_check_departures (shoal_client_t *self)
{
    shoal_balancer_prune (self->balancer, self->view);
    zlistx_t *orphans = zlistx_new ();
    for (shoal_call_t *call = (shoal_call_t *) zhashx_first (self->pending); call;
         call = (shoal_call_t *) zhashx_next (self->pending)) {
        s_route_t *route = (s_route_t *) shoal_call_route (call);
        if (route && route->counted && !s_in_view (self, route->service, route->instance))
            zlistx_add_end (orphans, call);
    }
    for (shoal_call_t *call = (shoal_call_t *) zlistx_first (orphans); call;
         call = (shoal_call_t *) zlistx_next (orphans)) {
        s_route_t *route = (s_route_t *) shoal_call_route (call);
        s_failover (self, call, "left the cluster before answering", !route->parked);
    }
    zlistx_destroy (&orphans);
}

//  --------------------------------------------------------------------------
//  Receiving and waiting

//  Reads every reply waiting on one socket
static void
s_receive (shoal_client_t *self, void *handle)
{
    while (true) {
        zmq_msg_t frame;
        zmq_msg_init (&frame);
        if (zmq_msg_recv (&frame, handle, ZMQ_DONTWAIT) == -1) {
            zmq_msg_close (&frame);
            return;
        }
        int frames = 1;
        bool more = zmq_msg_more (&frame);
        while (more) {                      //  surplus frames: drop
            zmq_msg_t surplus;
            zmq_msg_init (&surplus);
            zmq_msg_recv (&surplus, handle, 0);
            more = zmq_msg_more (&surplus);
            zmq_msg_close (&surplus);
            frames++;
        }
        shoal_wire_header_t header;
        char error [256];
        shoal_status_t status = shoal_wire_decode (zmq_msg_data (&frame), zmq_msg_size (&frame),
                                                   &header, error, sizeof (error));
        shoal_call_t *call = header.id
            ? (shoal_call_t *) zhashx_lookup (self->pending, (void *) (uintptr_t) header.id)
            : NULL;
        s_route_t *route = call ? (s_route_t *) shoal_call_route (call) : NULL;
        if (!call || (route && route->parked))
            self->stale_replies++;          //  nothing of it was sent: not ours
        else if (status != SHOAL_OK || header.kind != SHOAL_WIRE_REPLY || frames != 1) {
            s_unpend (self, call, true);
            shoal_call_finishf (call, SHOAL_INTERNAL, "malformed reply: %s",
                                status == SHOAL_OK ? "wrong kind or frames" : error);
            s_finished (self, call);
        }
        else if (header.status == SHOAL_UNAVAILABLE && route && !route->endpoint
                 && route->idempotent)
            s_failover (self, call, "answered UNAVAILABLE", true);
        else {
            shoal_call_finish_msg (
                call, (shoal_status_t) header.status, header.message, header.message_size,
                &frame, (size_t) ((const char *) header.body - (const char *) zmq_msg_data (&frame)));
            s_finished (self, call);
        }
        zmq_msg_close (&frame);
    }
}

//  Tries to send the parked calls; gives up on those whose time is out
static void
s_flush_parked (shoal_client_t *self)
{
    int64_t now = zclock_mono ();
    shoal_call_t *call = (shoal_call_t *) zlistx_first (self->parked);
    while (call) {
        //  The list may change under us (a failover parks anew): take the
        //  next before acting on this one
        shoal_call_t *next = (shoal_call_t *) zlistx_next (self->parked);
        s_route_t *route = (s_route_t *) shoal_call_route (call);
        if (route->not_before > now) {
            call = next;                //  delayed, and not yet due
            continue;
        }
        int rc = s_send (self, route->link, call, route->service, route->method, route->body,
                         route->size, route->meta, route->meta_size);
        if (rc == 0)
            s_unpark (self, route);
        else if (rc == -1 || now >= route->until) {
            if (route->endpoint) {
                s_unpend (self, call, true);
                shoal_call_finishf (call, SHOAL_UNAVAILABLE,
                                    "no service reachable at %s within the deadline",
                                    route->endpoint);
                s_finished (self, call);
            }
            else
                s_failover (self, call, "could not be reached", false);
            //  The list has changed: start over from its head
            next = (shoal_call_t *) zlistx_first (self->parked);
        }
        call = next;
    }
}

//  Waits up to TIMEOUT ms for replies on any link, and reads them; sends
//  parked calls whose link connected; looks at the view for departures
static void
s_pump (shoal_client_t *self, int64_t timeout)
{
    if (self->items_stale) {
        self->items_size = zhashx_size (self->links);
        self->items = (zmq_pollitem_t *) realloc (self->items, self->items_size
                                                  * sizeof (zmq_pollitem_t));
        size_t index = 0;
        for (s_link_t *link = (s_link_t *) zhashx_first (self->links); link;
             link = (s_link_t *) zhashx_next (self->links))
            self->items [index++] = (zmq_pollitem_t) {
                link->handle, 0, (short) (ZMQ_POLLIN | (link->parked ? ZMQ_POLLOUT : 0)), 0
            };
        self->items_stale = false;
    }
    if (zlistx_size (self->parked)) {
        int64_t now = zclock_mono ();
        for (shoal_call_t *call = (shoal_call_t *) zlistx_first (self->parked); call;
             call = (shoal_call_t *) zlistx_next (self->parked)) {
            s_route_t *route = (s_route_t *) shoal_call_route (call);
            int64_t left = (route->not_before > now ? route->not_before : route->until) - now;
            if (left < timeout)
                timeout = left > 0 ? left : 0;
        }
    }
    //  Instances can leave while we wait: look at the view now and then
    if (self->named_pending && timeout > SHOAL_VIEW_CHECK)
        timeout = SHOAL_VIEW_CHECK;
    if (zmq_poll (self->items, (int) self->items_size, (long) timeout) > 0)
        for (size_t index = 0; index < self->items_size; index++)
            if (self->items [index].revents & ZMQ_POLLIN)
                s_receive (self, self->items [index].socket);
    if (zlistx_size (self->parked))
        s_flush_parked (self);
    if (self->named_pending && s_refresh_view (self))
        s_check_departures (self);
}

shoal_status_t
shoal_client_wait_for (shoal_client_t *self, shoal_call_t *call)
{
    shoal_call_t *outer = self->waiting;    //  a nested wait, from a callback
    self->waiting = call;
    while (!shoal_call_done (call)) {
        int64_t left = shoal_call_deadline (call) - zclock_mono ();
        if (left <= 0)
            s_expire (self, call);
        else
            s_pump (self, left);
    }
    self->waiting = outer;
    s_take (self, call);
    return shoal_call_status (call);
}

//  Expires the pending calls whose deadline has passed; returns the time
//  until the earliest remaining deadline (or LIMIT if later)
static int64_t
s_expire_due (shoal_client_t *self, int64_t limit)
{
    int64_t now = zclock_mono ();
    int64_t next = limit;
    zlistx_t *due = NULL;
    for (shoal_call_t *call = (shoal_call_t *) zhashx_first (self->pending); call;
         call = (shoal_call_t *) zhashx_next (self->pending)) {
        int64_t left = shoal_call_deadline (call) - now;
        if (left <= 0) {
            if (!due)
                due = zlistx_new ();
            zlistx_add_end (due, call);
        }
        else if (left < next)
            next = left;
    }
    if (due) {
        for (shoal_call_t *call = (shoal_call_t *) zlistx_first (due); call;
             call = (shoal_call_t *) zlistx_next (due))
            s_expire (self, call);
        zlistx_destroy (&due);
    }
    return next;
}

shoal_call_t *
shoal_client_wait_any (shoal_client_t *self, int timeout_ms)
{
    int64_t end = timeout_ms < 0 ? INT64_MAX : zclock_mono () + timeout_ms;
    while (true) {
        shoal_call_t *call = (shoal_call_t *) zlistx_first (self->finished);
        if (call) {
            s_take (self, call);
            return call;
        }
        if (zhashx_size (self->pending) == 0)
            return NULL;
        int64_t now = zclock_mono ();
        if (now >= end)
            return NULL;
        int64_t wait = s_expire_due (self, end - now);
        if (zlistx_size (self->finished) == 0)
            s_pump (self, wait);
    }
}

void
shoal_client_forget (shoal_client_t *self, shoal_call_t *call)
{
    s_unpend (self, call, false);
    s_take (self, call);
}

//  --------------------------------------------------------------------------
//  Starting calls

static shoal_call_t *
s_start (shoal_client_t *self, const char *endpoint, const char *key, const char *service,
         const char *method, const void *body, size_t size, int timeout_ms,
         const void *meta, size_t meta_size)
{
    assert (self);
    if (timeout_ms <= 0)
        timeout_ms = SHOAL_DEFAULT_TIMEOUT;
    shoal_call_t *call = shoal_call_new (self, ++self->next_id, zclock_mono () + timeout_ms);
    if (!service || !method || !shoal_wire_valid_name (service, strlen (service))
        || !shoal_wire_valid_name (method, strlen (method))) {
        shoal_call_finishf (call, SHOAL_INVALID_ARGUMENT,
                            "service and method names must be 1..%d bytes of "
                            "[A-Za-z0-9._-]", SHOAL_MAX_NAME);
        s_finished (self, call);
        return call;
    }
    if (!endpoint) {
        if (!self->node) {
            shoal_call_finishf (call, SHOAL_INVALID_ARGUMENT,
                                "no endpoint, and no node to call '%s' by name "
                                "(shoal_client_set_node)", service);
            s_finished (self, call);
        }
        else {
            s_route_new (call, NULL, key, service, method, body, size, meta, meta_size);
            s_dispatch (self, call);
        }
        return call;
    }
    s_link_t *link = s_link (self, endpoint);
    if (!link) {
        shoal_call_finishf (call, SHOAL_INVALID_ARGUMENT, "bad endpoint '%s': %s", endpoint,
                            zmq_strerror (errno));
        s_finished (self, call);
        return call;
    }
    int rc = s_send (self, link, call, service, method, body, size, meta, meta_size);
    if (rc == -1) {
        shoal_call_finishf (call, SHOAL_UNAVAILABLE, "cannot send to %s: %s", endpoint,
                            zmq_strerror (errno));
        s_finished (self, call);
        return call;
    }
    zhashx_insert (self->pending, s_key (call), call);
    if (rc == EAGAIN) {
        //  Not connected yet: keep a copy, and send it once it is
        s_route_t *route = s_route_new (call, endpoint, NULL, service, method, body, size,
                                        meta, meta_size);
        s_park (self, call, route, link, shoal_call_deadline (call), 0);
    }
    return call;
}

shoal_call_t *
shoal_client_send_meta (shoal_client_t *self, const char *endpoint, const char *service,
                        const char *method, const void *body, size_t size, int timeout_ms,
                        const void *meta, size_t meta_size)
{
    return s_start (self, endpoint, NULL, service, method, body, size, timeout_ms, meta,
                    meta_size);
}

shoal_call_t *
shoal_client_send (shoal_client_t *self, const char *endpoint, const char *service,
                   const char *method, const void *body, size_t size, int timeout_ms)
{
    return s_start (self, endpoint, NULL, service, method, body, size, timeout_ms, NULL, 0);
}

shoal_call_t *
shoal_client_send_key (shoal_client_t *self, const char *key, const char *service,
                       const char *method, const void *body, size_t size, int timeout_ms)
{
    return s_start (self, NULL, key, service, method, body, size, timeout_ms, NULL, 0);
}

shoal_call_t *
shoal_client_call (shoal_client_t *self, const char *endpoint, const char *service,
                   const char *method, const void *body, size_t size, int timeout_ms)
{
    shoal_call_t *call = shoal_client_send (self, endpoint, service, method, body, size,
                                            timeout_ms);
    shoal_call_wait (call);
    return call;
}

shoal_call_t *
shoal_client_callf (shoal_client_t *self, const char *endpoint, const char *service,
                    const char *method, int timeout_ms, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    shoal_body_t *body = shoal_body_vpack (format, args);
    va_end (args);
    if (!body) {
        shoal_call_t *call = shoal_call_new (NULL, 0, zclock_mono ());
        shoal_call_finishf (call, SHOAL_INVALID_ARGUMENT, "bad body format '%s'", format);
        return call;
    }
    shoal_call_t *call = shoal_client_call (self, endpoint, service, method,
                                            shoal_body_data (body), shoal_body_size (body),
                                            timeout_ms);
    shoal_body_destroy (&body);
    return call;
}

//  --------------------------------------------------------------------------
//  Selftest: a client against a bare ROUTER that plays the server by hand,
//  so the client is checked alone: replies out of order, late replies,
//  deadlines and a bad endpoint.

void
shoal_client_test (bool verbose)
{
    if (verbose)
        printf (" * shoal_client: ");
    zsock_t *server = zsock_new_router ("inproc://shoal-client-test");
    assert (server);
    shoal_client_t *client = shoal_client_new ();

    //  Two calls in flight, answered in reverse order
    shoal_call_t *first = shoal_client_send (client, "inproc://shoal-client-test", "svc",
                                             "one", NULL, 0, 1000);
    shoal_call_t *second = shoal_client_send (client, "inproc://shoal-client-test", "svc",
                                              "two", "\x01", 1, 1000);
    assert (shoal_client_pending (client) == 2);
    zmsg_t *requests [2];
    for (int index = 0; index < 2; index++)
        requests [index] = zmsg_recv (server);
    for (int index = 1; index >= 0; index--) {
        zmsg_t *request = requests [index];
        zframe_t *identity = zmsg_pop (request);
        zframe_t *header = zmsg_first (request);
        shoal_wire_header_t decoded;
        char error [128];
        assert (shoal_wire_decode (zframe_data (header), zframe_size (header), &decoded, error,
                                   sizeof (error)) == SHOAL_OK);
        assert (decoded.timeout_ms > 0 && decoded.timeout_ms <= 1000);
        msgpack_sbuffer reply;
        msgpack_sbuffer_init (&reply);
        shoal_wire_encode_reply (&reply, decoded.id, SHOAL_OK, "");
        msgpack_sbuffer_write (&reply, index ? "\x02" : "\x01", 1);   //  the body
        zmsg_t *answer = zmsg_new ();
        zmsg_append (answer, &identity);
        zmsg_addmem (answer, reply.data, reply.size);
        zmsg_send (&answer, server);
        msgpack_sbuffer_destroy (&reply);
        zmsg_destroy (&request);
    }
    //  wait_any hands them back in the order they finished
    assert (shoal_client_wait_any (client, 1000) == second);
    assert (shoal_client_wait_any (client, 1000) == first);
    assert (shoal_client_wait_any (client, 0) == NULL);
    size_t size;
    const char *body = (const char *) shoal_call_body (second, &size);
    assert (size == 1 && body [0] == 2);
    assert (shoal_call_wait (first) == SHOAL_OK);
    shoal_call_destroy (&first);
    shoal_call_destroy (&second);

    //  No answer: the deadline ends the call, and the late reply is dropped
    int64_t start = zclock_mono ();
    shoal_call_t *call = shoal_client_call (client, "inproc://shoal-client-test", "svc",
                                            "slow", NULL, 0, 50);
    assert (shoal_call_status (call) == SHOAL_DEADLINE_EXCEEDED);
    assert (zclock_mono () - start >= 50);
    shoal_call_destroy (&call);
    zmsg_t *late = zmsg_recv (server);
    zmsg_destroy (&late);

    //  A malformed endpoint, and bad names, fail at once
    call = shoal_client_call (client, "nonsense", "svc", "m", NULL, 0, 1000);
    assert (shoal_call_status (call) == SHOAL_INVALID_ARGUMENT);
    shoal_call_destroy (&call);
    call = shoal_client_call (client, "inproc://shoal-client-test", "svc", "", NULL, 0, 100);
    assert (shoal_call_status (call) == SHOAL_INVALID_ARGUMENT);
    shoal_call_destroy (&call);

    //  Nobody there: sending does not wait, and the call ends UNAVAILABLE
    //  at its deadline
    int64_t sent = zclock_mono ();
    call = shoal_client_send (client, "tcp://127.0.0.1:1", "svc", "m", NULL, 0, 600);
    assert (zclock_mono () - sent < 300);       //  well before the deadline, even under valgrind
    assert (shoal_call_wait (call) == SHOAL_UNAVAILABLE);
    assert (zclock_mono () - sent >= 600);
    shoal_call_destroy (&call);

    //  A pending call outlives its client, CANCELLED
    call = shoal_client_send (client, "inproc://shoal-client-test", "svc", "m", NULL, 0,
                              1000);
    shoal_client_destroy (&client);
    assert (shoal_call_wait (call) == SHOAL_CANCELLED);
    shoal_call_destroy (&call);
    zsock_destroy (&server);
    if (verbose)
        printf ("OK\n");
}
