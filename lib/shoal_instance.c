/*  shoal_instance - the actor that serves one instance of a service.

    The hot path is: read [identity, message] from the ROUTER as zmq_msg_t
    (no copies), decode the header at the start of the message in place,
    run the handler on the body that follows it, also in place, send [identity, reply] back, the reply built in
    one zmq_msg_t. The loop reads a batch of messages per poll, since a busy
    instance finds more waiting each time it looks.

    Nothing a peer sends reaches an assert: every refusal is answered with
    a status where the caller can be told, and counted.                       */
#include "shoal_private.h"

//  Messages handled per wake-up before the pipe is looked at again
#define SHOAL_INSTANCE_BATCH 64
//  How deep calls to oneself may nest before they are refused
#define SHOAL_INSTANCE_MAX_SELF_DEPTH 16

struct _shoal_instance_t {
    shoal_service_t *service;
    shoal_instance_slot_t *slot;
    zsock_t *pipe;
    zsock_t *router;
    void *handle;                   //  the router's libzmq socket
    void *state;                    //  the user's per-instance state
    shoal_client_t *client;         //  for nested calls, made on first use
    shoal_request_t *request;       //  reused for every request
    msgpack_sbuffer reply_header;   //  reply encoding, reused
    int self_depth;                 //  nesting of inline self-calls
    //  Counters, reported by $stats
    uint64_t calls;
    uint64_t errors;
    uint64_t malformed;
    uint64_t dropped;               //  replies to callers that went away
    uint64_t errors_by_status [SHOAL_STATUS_MAX + 1];
    uint64_t waiting_max;           //  most requests found waiting at one look
    shoal_stats_t *stats;           //  per method
    int64_t started;                //  zclock_mono
    shoal_method_t fallback;        //  serves undeclared methods, if set (mocks)
    //  Events: broadcast ones through the subscriber, balanced ones as
    //  $event requests
    shoal_subscriber_t *subscriber;
    shoal_event_t *balanced_event;  //  reused for every $event
    uint64_t balanced_received;
    uint64_t balanced_failed;
};

//  --------------------------------------------------------------------------
//  Built-in methods, present on every instance

static void
s_builtin_ping (shoal_request_t *request, void *state)
{
    shoal_instance_t *self = (shoal_instance_t *) state;
    shoal_request_reply (request, "{s:s, s:s}", "service",
                         shoal_service_name (self->service), "instance",
                         self->slot->id);
}

//  "events": what the instance's subscriptions have seen, both deliveries
static void
s_pack_event_stats (shoal_instance_t *self, msgpack_packer *packer)
{
    shoal_event_stats_t stats = { 0 };
    if (self->subscriber)
        stats = shoal_subscriber_stats (self->subscriber);
    stats.received += self->balanced_received;
    stats.failed += self->balanced_failed;
    const char *names [] = { "received", "missed", "recovered", "lost", "duplicates",
                             "malformed", "failed", "balanced" };
    uint64_t values [] = { stats.received, stats.missed, stats.recovered, stats.lost,
                           stats.duplicates, stats.malformed, stats.failed,
                           self->balanced_received };
    shoal_wire_pack_string (packer, "events");
    msgpack_pack_map (packer, 8);
    for (int index = 0; index < 8; index++) {
        shoal_wire_pack_string (packer, names [index]);
        msgpack_pack_uint64 (packer, values [index]);
    }
}

//  Runs the handlers of every subscription of DELIVERY that matches the
//  event; returns how many ran
static size_t
s_run_event_handlers (shoal_instance_t *self, shoal_event_t *event, shoal_delivery_t delivery,
                      uint64_t *failed)
{
    size_t ran = 0;
    for (size_t index = 0; index < shoal_service_events (self->service); index++) {
        const shoal_service_event_t *subscription = shoal_service_event_at (self->service, index);
        if (subscription->delivery != delivery
            || !shoal_pattern_match (subscription->pattern, shoal_event_topic (event)))
            continue;
        ran++;
        atomic_store_explicit (&self->slot->busy, 1, memory_order_relaxed);
        if (subscription->handler (event, self->state) != 0)
            (*failed)++;
        atomic_store_explicit (&self->slot->busy, 0, memory_order_relaxed);
    }
    return ran;
}

//  A balanced event, handed to this instance by its publisher's node. The
//  answer is the acknowledgement: OK once the handlers ran (a handler that
//  failed is counted, not retried), so the publisher sends it nowhere else
static void
s_builtin_event (shoal_request_t *request, void *state)
{
    shoal_instance_t *self = (shoal_instance_t *) state;
    if (!self->balanced_event)
        self->balanced_event = (shoal_event_t *) zmalloc (shoal_event_sizeof ());
    shoal_event_init_request (self->balanced_event, request, self->slot->node);
    if (!shoal_topic_valid (shoal_event_topic (self->balanced_event))) {
        shoal_request_fail (request, SHOAL_INVALID_ARGUMENT, "$event needs a valid topic");
        return;
    }
    uint64_t failed = 0;
    size_t ran = s_run_event_handlers (self, self->balanced_event, SHOAL_BALANCED, &failed);
    //  A borrowed event is not freed, only what the handlers made of it
    shoal_event_t *done = self->balanced_event;
    shoal_event_destroy (&done);
    if (!ran) {
        shoal_request_fail (request, SHOAL_UNIMPLEMENTED,
                            "no balanced subscription of '%s' matches '%s'",
                            shoal_service_name (self->service),
                            shoal_event_topic (self->balanced_event));
        return;
    }
    self->balanced_received++;
    if (failed) {
        self->balanced_failed++;
        if (self->subscriber)
            shoal_subscriber_count_failed (self->subscriber);
    }
}

//  Broadcast events waiting on the subscriber, a batch at a time
static void
s_take_events (shoal_instance_t *self)
{
    shoal_event_t *event;
    for (int count = 0; count < SHOAL_INSTANCE_BATCH; count++) {
        if (atomic_load_explicit (&self->slot->crashed, memory_order_relaxed)
            || !(event = shoal_subscriber_next (self->subscriber)))
            break;
        uint64_t failed = 0;
        s_run_event_handlers (self, event, SHOAL_BROADCAST, &failed);
        while (failed--)
            shoal_subscriber_count_failed (self->subscriber);
    }
}

static void
s_builtin_stats (shoal_request_t *request, void *state)
{
    shoal_instance_t *self = (shoal_instance_t *) state;
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer packer;
    msgpack_packer_init (&packer, &buffer, msgpack_sbuffer_write);
    msgpack_pack_map (&packer, 8);
    shoal_wire_pack_string (&packer, "calls");
    msgpack_pack_uint64 (&packer, self->calls);
    shoal_wire_pack_string (&packer, "errors");
    msgpack_pack_uint64 (&packer, self->errors);
    shoal_wire_pack_string (&packer, "malformed");
    msgpack_pack_uint64 (&packer, self->malformed);
    shoal_wire_pack_string (&packer, "dropped");
    msgpack_pack_uint64 (&packer, self->dropped);
    shoal_wire_pack_string (&packer, "waiting_max");
    msgpack_pack_uint64 (&packer, self->waiting_max);
    shoal_wire_pack_string (&packer, "errors_by_code");
    size_t codes = 0;
    for (int status = 1; status <= SHOAL_STATUS_MAX; status++)
        codes += self->errors_by_status [status] > 0;
    msgpack_pack_map (&packer, codes);
    for (int status = 1; status <= SHOAL_STATUS_MAX; status++)
        if (self->errors_by_status [status]) {
            shoal_wire_pack_string (&packer, shoal_status_name (status));
            msgpack_pack_uint64 (&packer, self->errors_by_status [status]);
        }
    shoal_wire_pack_string (&packer, "methods");
    shoal_stats_pack (self->stats, &packer);
    s_pack_event_stats (self, &packer);
    shoal_request_reply_raw (request, buffer.data, buffer.size);
    msgpack_sbuffer_destroy (&buffer);
}

static void
s_builtin_health (shoal_request_t *request, void *state)
{
    shoal_instance_t *self = (shoal_instance_t *) state;
    //  How many nodes its node hears from: membership, seen from outside
    int64_t nodes = 0;
    if (self->slot->node) {
        shoal_view_t *view = shoal_node_view (self->slot->node);
        nodes = view ? (int64_t) shoal_view_nodes (view) : 0;
        shoal_view_destroy (&view);
    }
    shoal_request_reply (request, "{s:s, s:s, s:s, s:I, s:I}", "status",
                         atomic_load (&self->slot->draining) ? "DRAINING" : "SERVING",
                         "instance", self->slot->id, "node", shoal_instance_node (self),
                         "uptime_ms", zclock_mono () - self->started, "nodes", nodes);
}

static void s_builtin_describe (shoal_request_t *request, void *state);

static shoal_method_t s_builtins [] = {
    { "$ping", s_builtin_ping, SHOAL_IDEMPOTENT, "Answers at once: is the instance alive?" },
    { "$health", s_builtin_health, SHOAL_IDEMPOTENT, "SERVING or DRAINING, and uptime" },
    { "$describe", s_builtin_describe, SHOAL_IDEMPOTENT,
      "The service, its version and methods, with their docs" },
    { "$event", s_builtin_event, SHOAL_IDEMPOTENT,
      "Delivers a balanced event (sent by its publisher's node)" },
    { "$stats", s_builtin_stats, SHOAL_IDEMPOTENT,
      "Calls, errors by code, latency percentiles per method" },
};

static void
s_pack_method (msgpack_packer *packer, shoal_method_t *method)
{
    msgpack_pack_map (packer, 3);
    shoal_wire_pack_string (packer, "name");
    shoal_wire_pack_string (packer, method->name);
    shoal_wire_pack_string (packer, "idempotent");
    if (method->flags & SHOAL_IDEMPOTENT)
        msgpack_pack_true (packer);
    else
        msgpack_pack_false (packer);
    shoal_wire_pack_string (packer, "doc");
    shoal_wire_pack_string (packer, method->doc ? method->doc : "");
}

static void
s_builtin_describe (shoal_request_t *request, void *state)
{
    shoal_instance_t *self = (shoal_instance_t *) state;
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer packer;
    msgpack_packer_init (&packer, &buffer, msgpack_sbuffer_write);
    msgpack_pack_map (&packer, 4);
    shoal_wire_pack_string (&packer, "service");
    shoal_wire_pack_string (&packer, shoal_service_name (self->service));
    shoal_wire_pack_string (&packer, "version");
    shoal_wire_pack_string (&packer, shoal_service_version (self->service));
    shoal_wire_pack_string (&packer, "instance");
    shoal_wire_pack_string (&packer, self->slot->id);
    shoal_wire_pack_string (&packer, "methods");
    size_t builtins = sizeof (s_builtins) / sizeof (s_builtins [0]);
    msgpack_pack_array (&packer, zhashx_size (self->slot->methods) + builtins);
    //  The instance's own table: only this thread iterates it
    for (shoal_method_t *method = (shoal_method_t *) zhashx_first (self->slot->methods);
         method; method = (shoal_method_t *) zhashx_next (self->slot->methods))
        s_pack_method (&packer, method);
    for (size_t index = 0; index < builtins; index++)
        s_pack_method (&packer, &s_builtins [index]);
    shoal_request_reply_raw (request, buffer.data, buffer.size);
    msgpack_sbuffer_destroy (&buffer);
}

//  The method named NAME, built-in or the service's, or NULL
static shoal_method_t *
s_lookup (shoal_instance_t *self, const char *name)
{
    if (*name == '$') {
        for (size_t index = 0; index < sizeof (s_builtins) / sizeof (s_builtins [0]); index++)
            if (streq (s_builtins [index].name, name))
                return &s_builtins [index];
        return NULL;
    }
    shoal_method_t *method = (shoal_method_t *) zhashx_lookup (self->slot->methods, name);
    if (!method && self->slot->fallback) {
        self->fallback.handler = self->slot->fallback;
        return &self->fallback;
    }
    return method;
}

static void *
s_handler_state (shoal_instance_t *self, shoal_method_t *method)
{
    return *method->name == '$' ? self : self->state;
}

//  Runs a handler, keeping the figures the node announces (whether the
//  instance is busy, a moving average of the time to answer) and those of
//  $stats
static void
s_run_handler (shoal_instance_t *self, shoal_method_t *method, shoal_request_t *request)
{
    atomic_store_explicit (&self->slot->busy, 1, memory_order_relaxed);
    int64_t start = zclock_usecs ();
    method->handler (request, s_handler_state (self, method));
    uint32_t took = (uint32_t) (zclock_usecs () - start);
    uint32_t average = atomic_load_explicit (&self->slot->latency_us, memory_order_relaxed);
    atomic_store_explicit (&self->slot->latency_us, average - average / 8 + took / 8,
                           memory_order_relaxed);
    atomic_fetch_add_explicit (&self->slot->calls, 1, memory_order_relaxed);
    atomic_store_explicit (&self->slot->busy, 0, memory_order_relaxed);
    shoal_stats_record (self->stats,
                        method == &self->fallback ? shoal_request_method (request)
                                                  : method->name,
                        shoal_request_status (request), took);
}

//  Logs the first refusals and then every power of two, so a flood of bad
//  input cannot flood the log as well
static void
s_count_malformed (shoal_instance_t *self, const char *reason)
{
    self->malformed++;
    if ((self->malformed & (self->malformed - 1)) == 0)
        zsys_warning ("shoal: %s: refused malformed message (%" PRIu64 " so far): %s",
                      shoal_service_name (self->service), self->malformed, reason);
}

//  Sends [identity, header + body]. A caller that went away
//  (ROUTER_MANDATORY gives EHOSTUNREACH) or that does not read (EAGAIN at
//  the high-water mark) costs a counted, dropped reply, never a blocked
//  instance.
static void
s_send_reply (shoal_instance_t *self, zmq_msg_t *identity, uint64_t id, int status,
              const char *message, const void *body, size_t size)
{
    //  Crashed (a fault) while the handler ran: a dead process answers nothing
    if (atomic_load_explicit (&self->slot->crashed, memory_order_relaxed))
        return;
    self->calls++;
    if (status != SHOAL_OK) {
        self->errors++;
        self->errors_by_status [status]++;
    }
    msgpack_sbuffer_clear (&self->reply_header);
    shoal_wire_encode_reply (&self->reply_header, id, status, message);
    zmq_msg_t reply;
    zmq_msg_init_size (&reply, self->reply_header.size + size);
    memcpy (zmq_msg_data (&reply), self->reply_header.data, self->reply_header.size);
    if (size)
        memcpy ((char *) zmq_msg_data (&reply) + self->reply_header.size, body, size);
    if (zmq_msg_send (identity, self->handle, ZMQ_SNDMORE | ZMQ_DONTWAIT) == -1)
        self->dropped++;
    else    //  once the first frame is accepted, libzmq takes the rest
        zmq_msg_send (&reply, self->handle, ZMQ_DONTWAIT);
    zmq_msg_close (&reply);
}

static void
s_send_error (shoal_instance_t *self, zmq_msg_t *identity, uint64_t id, int status,
              const char *message)
{
    s_send_reply (self, identity, id, status, message, NULL, 0);
}

//  Finds the method for a decoded request and checks the body; returns the
//  method, or NULL having written the status and reason to refuse with
static shoal_method_t *
s_resolve (shoal_instance_t *self, const char *service, size_t service_size,
           const char *method_name, const void *body, size_t size,
           shoal_status_t *status, char *error, size_t error_size)
{
    const char *own = shoal_service_name (self->service);
    if (service_size != strlen (own) || memcmp (service, own, service_size) != 0) {
        *status = SHOAL_NOT_FOUND;
        snprintf (error, error_size, "no service '%.*s' here (this is '%s')",
                  (int) service_size, service, own);
        return NULL;
    }
    shoal_method_t *method = s_lookup (self, method_name);
    if (!method) {
        *status = SHOAL_UNIMPLEMENTED;
        snprintf (error, error_size, "service '%s' has no method '%s'", own, method_name);
        return NULL;
    }
    //  Nothing after the header is a nil body, by the protocol
    char reason [200];
    if (size > 0 && shoal_reader_check (body, size, shoal_service_max_depth (self->service), reason,
                            sizeof (reason))) {
        *status = SHOAL_INVALID_ARGUMENT;
        snprintf (error, error_size, "body is not valid msgpack: %s", reason);
        return NULL;
    }
    return method;
}

static void
s_dispatch (shoal_instance_t *self, zmq_msg_t *identity, zmq_msg_t *frame)
{
    shoal_wire_header_t header;
    char error [320];
    shoal_status_t status = shoal_wire_decode (zmq_msg_data (frame), zmq_msg_size (frame),
                                               &header, error, sizeof (error));
    if (status == SHOAL_OK && header.kind != SHOAL_WIRE_REQUEST) {
        status = SHOAL_INVALID_ARGUMENT;
        snprintf (error, sizeof (error), "expected a request, got a reply");
    }
    if (status != SHOAL_OK) {
        s_count_malformed (self, error);
        s_send_error (self, identity, header.id, status, error);
        return;
    }
    char method_name [SHOAL_MAX_NAME + 1];
    memcpy (method_name, header.method, header.method_size);
    method_name [header.method_size] = 0;
    const void *body = header.body;
    size_t size = header.body_size;
    shoal_method_t *method = s_resolve (self, header.service, header.service_size,
                                        method_name, body, size, &status, error,
                                        sizeof (error));
    if (!method) {
        if (status == SHOAL_INVALID_ARGUMENT)
            s_count_malformed (self, error);
        s_send_error (self, identity, header.id, status, error);
        return;
    }
    shoal_request_reset (self->request, &header, body, size);
    s_run_handler (self, method, self->request);
    size_t reply_size;
    const void *reply = shoal_request_reply_body (self->request, &reply_size);
    s_send_reply (self, identity, header.id, shoal_request_status (self->request),
                  shoal_request_message (self->request), reply, reply_size);
}

//  Answers a message with the wrong number of frames. Its header is read
//  first if there is one: a peer of another version must learn that, not
//  that its frames are wrong, since a later version may frame differently.
static void
s_refuse_frames (shoal_instance_t *self, zmq_msg_t *frames, int parts)
{
    char error [320];
    shoal_wire_header_t header = { 0 };
    shoal_status_t status = SHOAL_INVALID_ARGUMENT;
    if (parts >= 1)
        status = shoal_wire_decode (zmq_msg_data (&frames [1]), zmq_msg_size (&frames [1]),
                                    &header, error, sizeof (error));
    if (status != SHOAL_FAILED_PRECONDITION) {
        status = SHOAL_INVALID_ARGUMENT;
        header.id = 0;
        snprintf (error, sizeof (error), "a message is 1 frame (header and body); got %d",
                  parts);
    }
    s_count_malformed (self, error);
    s_send_error (self, &frames [0], header.id, status, error);
}

//  Reads and serves one message; returns false when none is waiting
static bool
s_serve_one (shoal_instance_t *self)
{
    //  Crashed (a fault): what is queued behind stays unread, as in a dead
    //  process, and no handler runs for it
    if (atomic_load_explicit (&self->slot->crashed, memory_order_relaxed))
        return false;
    zmq_msg_t frames [2];           //  identity, message
    int count = 0;
    int surplus = 0;                //  frames past the second, read and dropped
    bool more = true;
    while (more) {
        zmq_msg_t scratch;
        zmq_msg_t *frame = count < 2 ? &frames [count] : &scratch;
        zmq_msg_init (frame);
        if (zmq_msg_recv (frame, self->handle, ZMQ_DONTWAIT) == -1) {
            zmq_msg_close (frame);
            if (count == 0)
                return false;
            break;                  //  cannot happen: messages arrive whole
        }
        more = zmq_msg_more (frame);
        if (count < 2)
            count++;
        else {
            surplus++;
            zmq_msg_close (frame);
        }
    }
    if (count == 2 && surplus == 0)
        s_dispatch (self, &frames [0], &frames [1]);
    else
        s_refuse_frames (self, frames, count - 1 + surplus);
    for (int index = 0; index < count; index++)
        zmq_msg_close (&frames [index]);
    return true;
}

//  --------------------------------------------------------------------------
//  Life cycle

//  The instance's own subscriber, for the service's broadcast patterns
static void
s_subscribe (shoal_instance_t *self)
{
    if (!self->slot->node)
        return;
    for (size_t index = 0; index < shoal_service_events (self->service); index++) {
        const shoal_service_event_t *subscription = shoal_service_event_at (self->service, index);
        if (subscription->delivery != SHOAL_BROADCAST)
            continue;
        if (!self->subscriber) {
            self->subscriber = shoal_subscriber_new_for (self->slot->node,
                                                         shoal_service_name (self->service));
            if (shoal_service_gap_handler (self->service))
                shoal_subscriber_on_gap (self->subscriber,
                                         shoal_service_gap_handler (self->service), self->state);
        }
        shoal_subscriber_subscribe (self->subscriber, subscription->pattern);
    }
}

static shoal_instance_t *
s_instance_new (zsock_t *pipe, shoal_instance_slot_t *slot)
{
    shoal_instance_t *self = (shoal_instance_t *) zmalloc (sizeof (shoal_instance_t));
    self->service = slot->service;
    self->slot = slot;
    self->pipe = pipe;
    zuuid_t *uuid = zuuid_new ();
    snprintf (slot->id, sizeof (slot->id), "%s", zuuid_str_canonical (uuid) + 24);
    zuuid_destroy (&uuid);
    msgpack_sbuffer_init (&self->reply_header);
    self->stats = shoal_stats_new ();
    self->started = zclock_mono ();
    self->fallback.name = "*";      //  its figures are kept under "*"
    self->fallback.doc = "answers every method not declared";
    self->request = shoal_request_new (self);
    snprintf (slot->inproc, sizeof (slot->inproc), "inproc://shoal/%s/%s",
              shoal_service_name (self->service), slot->id);
    char bound [256];
    self->router = shoal_socket_server (slot->endpoint, slot->inproc,
                                        shoal_service_max_message (self->service), bound,
                                        sizeof (bound), slot->error, sizeof (slot->error));
    if (self->router) {
        snprintf (slot->endpoint, sizeof (slot->endpoint), "%s", bound);
        self->handle = zsock_resolve (self->router);
        self->state = shoal_service_state_new (self->service);
        s_subscribe (self);
    }
    return self;
}

static void
s_instance_destroy (shoal_instance_t **self_p)
{
    shoal_instance_t *self = *self_p;
    if (!self)
        return;
    if (self->router)
        shoal_service_state_destroy (self->service, self->state);
    shoal_subscriber_destroy (&self->subscriber);
    free (self->balanced_event);
    shoal_client_destroy (&self->client);
    shoal_request_destroy (&self->request);
    shoal_stats_destroy (&self->stats);
    zsock_destroy (&self->router);
    msgpack_sbuffer_destroy (&self->reply_header);
    free (self);
    *self_p = NULL;
}

//  The clean stop: answers everything received, and goes on until the
//  socket has been quiet for a moment, because requests sent just before
//  the stop may still be in the kernel's buffers, not yet in our queue.
//  A caller that keeps sending cannot hold the stop past SHOAL_DRAIN_MAX.
static void
s_drain (shoal_instance_t *self)
{
    int64_t end = zclock_mono () + SHOAL_DRAIN_MAX;
    zmq_pollitem_t item = { self->handle, 0, ZMQ_POLLIN, 0 };
    do {
        while (s_serve_one (self))
            ;
    } while (zclock_mono () < end && zmq_poll (&item, 1, SHOAL_DRAIN_QUIET) > 0);
}

void
shoal_instance_actor (zsock_t *pipe, void *args)
{
    shoal_instance_slot_t *slot = (shoal_instance_slot_t *) args;
    shoal_instance_t *self = s_instance_new (pipe, slot);
    zsock_signal (pipe, 0);
    if (!self->router) {
        s_instance_destroy (&self);
        return;
    }
    zmq_pollitem_t items [] = {
        { zsock_resolve (pipe), 0, ZMQ_POLLIN, 0 },
        { self->handle, 0, ZMQ_POLLIN, 0 },
        { self->subscriber ? zsock_resolve (shoal_subscriber_socket (self->subscriber)) : NULL,
          0, ZMQ_POLLIN, 0 },
    };
    bool running = true;
    while (running) {
        //  Signals are for the process's main thread to act on; an instance
        //  stops only when told, so that it can finish what it has. A
        //  subscriber has timers (publishers joining, replays awaited)
        long wait = self->subscriber ? shoal_subscriber_timeout (self->subscriber) : -1;
        if (zmq_poll (items, self->subscriber ? 3 : 2, wait) == -1 && errno != EINTR)
            break;
        if (self->subscriber)
            s_take_events (self);
        if (items [1].revents & ZMQ_POLLIN) {
            uint64_t count = 0;
            while (count < SHOAL_INSTANCE_BATCH && s_serve_one (self))
                count++;
            if (count > self->waiting_max)
                self->waiting_max = count;
        }
        if (items [0].revents & ZMQ_POLLIN) {
            char *command = zstr_recv (pipe);
            if (!command || streq (command, "$TERM"))
                running = false;
            else if (streq (command, "CRASH")) {
                //  A fault (shoal_testkit): stop at once, answer nothing
                zstr_free (&command);
                s_instance_destroy (&self);
                return;
            }
            else if (streq (command, "FREEZE")) {
                //  A fault (shoal_testkit): read nothing until thawed
                zsock_signal (pipe, 0);
                char *thaw = zstr_recv (pipe);
                bool thawed = thaw && streq (thaw, "THAW");
                bool crash = thaw && streq (thaw, "CRASH");
                zstr_free (&thaw);
                if (crash) {
                    zstr_free (&command);
                    s_instance_destroy (&self);
                    return;
                }
                if (thawed)
                    zsock_signal (pipe, 0);
                else
                    running = false;
            }
            else
                zsys_error ("shoal: instance: unknown command '%s'", command);
            zstr_free (&command);
        }
    }
    s_drain (self);
    s_instance_destroy (&self);
}

//  --------------------------------------------------------------------------
//  What requests ask of their instance

int
shoal_instance_publish (shoal_instance_t *self, const char *topic, const char *trace,
                        const void *body, size_t size)
{
    if (!self->slot->node)
        return -1;
    char sender [SHOAL_MAX_NAME + 40];
    snprintf (sender, sizeof (sender), "%s/%s", shoal_service_name (self->service),
              self->slot->id);
    return shoal_node_publish_as (self->slot->node, topic, sender, trace, body, size);
}

const char *
shoal_instance_id (shoal_instance_t *self)
{
    return self->slot->id;
}

const char *
shoal_instance_node (shoal_instance_t *self)
{
    return self->slot->node ? shoal_node_id (self->slot->node)
                            : shoal_service_node (self->service);
}

int
shoal_instance_max_depth (shoal_instance_t *self)
{
    return shoal_service_max_depth (self->service);
}

shoal_client_t *
shoal_instance_client (shoal_instance_t *self)
{
    if (!self->client) {
        self->client = shoal_client_new ();
        if (self->slot->node) {
            shoal_client_set_node (self->client, self->slot->node);
            //  By name it must not pick itself: it would wait on itself
            shoal_client_exclude (self->client, self->slot->id);
        }
    }
    return self->client;
}

bool
shoal_instance_is_self (shoal_instance_t *self, const char *endpoint)
{
    return streq (endpoint, self->slot->endpoint) || streq (endpoint, self->slot->inproc);
}

bool
shoal_instance_only_self (shoal_instance_t *self, const char *service)
{
    if (!streq (service, shoal_service_name (self->service)))
        return false;
    if (!self->slot->node)
        return true;
    shoal_view_t *view = shoal_node_view (self->slot->node);
    size_t count, others = 0;
    const shoal_instance_info_t *const *instances = shoal_view_service (view, service, &count);
    for (size_t index = 0; index < count; index++)
        others += instances [index]->state == SHOAL_INSTANCE_UP
               && !streq (instances [index]->instance, self->slot->id);
    shoal_view_destroy (&view);
    return others == 0;
}

shoal_call_t *
shoal_instance_call_self (shoal_instance_t *self, const char *service,
                          const char *method_name, const void *body, size_t size,
                          int timeout_ms, const void *meta, size_t meta_size)
{
    shoal_call_t *call = shoal_call_new (NULL, 0, zclock_mono () + timeout_ms);
    shoal_status_t status;
    char error [320];
    if (!shoal_wire_valid_name (service, strlen (service))
        || !shoal_wire_valid_name (method_name, strlen (method_name))) {
        shoal_call_finishf (call, SHOAL_INVALID_ARGUMENT, "invalid service or method name");
        return call;
    }
    if (self->self_depth >= SHOAL_INSTANCE_MAX_SELF_DEPTH) {
        shoal_call_finishf (call, SHOAL_RESOURCE_EXHAUSTED,
                            "calls to the same instance nested deeper than %d",
                            SHOAL_INSTANCE_MAX_SELF_DEPTH);
        return call;
    }
    shoal_method_t *method = s_resolve (self, service, strlen (service), method_name, body,
                                        size, &status, error, sizeof (error));
    if (!method) {
        shoal_call_finish (call, status, error, NULL, 0);
        return call;
    }
    shoal_wire_header_t header = {
        .kind = SHOAL_WIRE_REQUEST,
        .service = service,
        .service_size = strlen (service),
        .method = method_name,
        .method_size = strlen (method_name),
        .timeout_ms = (uint32_t) timeout_ms,
        .meta = meta,
        .meta_size = meta_size,
    };
    shoal_request_t *request = shoal_request_new (self);
    shoal_request_reset (request, &header, body, size);
    self->self_depth++;
    s_run_handler (self, method, request);
    self->self_depth--;
    size_t reply_size;
    const void *reply = shoal_request_reply_body (request, &reply_size);
    shoal_call_finish (call, shoal_request_status (request),
                       shoal_request_message (request), reply, reply_size);
    shoal_request_destroy (&request);
    return call;
}

//  --------------------------------------------------------------------------
//  Selftest: the instance is exercised through shoal_service's selftest and
//  tests/; here, the one thing only it can see: a self-call runs inline.

void
shoal_instance_test (bool verbose)
{
    if (verbose)
        printf (" * shoal_instance: ");
    shoal_service_t *service = shoal_service_new ("selftest", "1");
    shoal_instance_slot_t slot = { 0 };
    shoal_service_prepare_slot (service, &slot);
    snprintf (slot.endpoint, sizeof (slot.endpoint), "inproc://shoal-instance-test");
    shoal_actor_t *actor = shoal_actor_new (shoal_instance_actor, &slot);
    assert (slot.error [0] == 0);
    assert (streq (slot.endpoint, "inproc://shoal-instance-test"));
    assert (strlen (slot.id) == 12);
    shoal_client_t *client = shoal_client_new ();
    shoal_call_t *call = shoal_client_call (client, slot.inproc, "selftest", "$ping", NULL,
                                            0, 1000);
    assert (shoal_call_status (call) == SHOAL_OK);
    shoal_call_destroy (&call);
    shoal_client_destroy (&client);
    shoal_actor_destroy (&actor);
    shoal_service_release_slot (&slot);

    //  A bind that fails is reported, and the actor ends by itself
    shoal_instance_slot_t bad = { 0 };
    shoal_service_prepare_slot (service, &bad);
    snprintf (bad.endpoint, sizeof (bad.endpoint), "nonsense://endpoint");
    actor = shoal_actor_new (shoal_instance_actor, &bad);
    assert (bad.error [0] != 0);
    shoal_actor_destroy (&actor);
    shoal_service_release_slot (&bad);
    shoal_service_destroy (&service);
    if (verbose)
        printf ("OK\n");
}
