/*  shoal_node - the public face of this process's cluster member. The work
    is done by the membership actor; the node holds the configuration, and
    the board where the actor publishes views for callers on any thread:
    a mutex held only to swap or copy a pointer, a generation number that
    callers read without it, and a condition for those who wait.            */
#include "shoal_private.h"
#include <pthread.h>

struct _shoal_node_t {
    shoal_node_config_t config;
    shoal_actor_t *actor;
    pthread_mutex_t lock;
    pthread_cond_t published;
    shoal_view_t *view;                 //  the latest, under lock
    atomic_uint_fast64_t generation;    //  bumped with every view
    size_t pending;                     //  peers introduced to, not heard from
    atomic_uint_fast64_t refused;
    //  Faults (shoal_testkit), under LOCK; FAULTY is read without it, so
    //  that a client pays one atomic load when there are none
    zlistx_t *faults;
    atomic_bool faulty;
    shoal_publisher_t *publisher;       //  this process's events going out
    pthread_mutex_t command_lock;       //  one command on the actor's pipe at a time
};

//  A fault on the link to one peer node
typedef struct {
    char peer [65];
    bool cut;
    double drop;
    int delay;
    uint64_t random;            //  seeded the same for every link and run
} s_fault_t;

static bool
s_valid_cluster (const char *cluster)
{
    size_t length = strlen (cluster);
    return length > 0 && length <= 64 && shoal_wire_valid_name (cluster, length)
        && *cluster != '$';
}

//  Adds the endpoints in TEXT, separated by commas or spaces, to SEEDS
static void
s_add_seeds (zlistx_t *seeds, const char *text)
{
    char *copy = strdup (text);
    char *state = NULL;
    for (char *seed = strtok_r (copy, ", \t", &state); seed; seed = strtok_r (NULL, ", \t", &state))
        zlistx_add_end (seeds, strdup (seed));
    free (copy);
}

shoal_node_t *
shoal_node_new (const char *cluster)
{
    if (!cluster)
        cluster = getenv ("SHOAL_CLUSTER");
    if (!cluster || !*cluster)
        cluster = "default";
    if (!s_valid_cluster (cluster)) {
        zsys_error ("shoal: invalid cluster name '%s'", cluster);
        return NULL;
    }
    zsys_init ();
    shoal_node_t *self = (shoal_node_t *) zmalloc (sizeof (shoal_node_t));
    self->config.cluster = strdup (cluster);
    zuuid_t *uuid = zuuid_new ();
    snprintf (self->config.id, sizeof (self->config.id), "%s", zuuid_str_canonical (uuid) + 24);
    zuuid_destroy (&uuid);
    self->config.seeds = zlistx_new ();
    zlistx_set_destructor (self->config.seeds, (zlistx_destructor_fn *) zstr_free);
    self->config.env_seeds = zlistx_new ();
    zlistx_set_destructor (self->config.env_seeds, (zlistx_destructor_fn *) zstr_free);
    self->config.beat = SHOAL_DEFAULT_BEAT;
    self->config.expiry = SHOAL_DEFAULT_EXPIRY;
    self->config.event_buffer = SHOAL_DEFAULT_EVENT_BUFFER;
    self->config.replay = SHOAL_DEFAULT_REPLAY;
    const char *seeds = getenv ("SHOAL_SEEDS");
    if (seeds)
        s_add_seeds (self->config.env_seeds, seeds);
    const char *interface = getenv ("SHOAL_INTERFACE");
    if (interface && *interface)
        shoal_node_set_interface (self, interface);
    const char *buffer = getenv ("SHOAL_EVENT_BUFFER");
    if (buffer && atoi (buffer) > 0)
        self->config.event_buffer = atoi (buffer);
    const char *host = getenv ("SHOAL_HOST");
    if (host && *host)
        shoal_node_set_host (self, host);
    pthread_mutex_init (&self->lock, NULL);
    pthread_mutex_init (&self->command_lock, NULL);
    pthread_condattr_t attributes;
    pthread_condattr_init (&attributes);
    pthread_condattr_setclock (&attributes, CLOCK_MONOTONIC);
    pthread_cond_init (&self->published, &attributes);
    pthread_condattr_destroy (&attributes);
    self->faults = zlistx_new ();
    zlistx_set_destructor (self->faults, (zlistx_destructor_fn *) zstr_free);
    return self;
}

void
shoal_node_destroy (shoal_node_t **self_p)
{
    shoal_node_t *self = *self_p;
    if (!self)
        return;
    //  The publisher first: its balanced deliveries read the node's views
    shoal_publisher_destroy (&self->publisher);
    shoal_actor_destroy (&self->actor);
    shoal_view_destroy (&self->view);
    zlistx_destroy (&self->faults);
    pthread_cond_destroy (&self->published);
    pthread_mutex_destroy (&self->lock);
    pthread_mutex_destroy (&self->command_lock);
    zlistx_destroy (&self->config.seeds);
    zlistx_destroy (&self->config.env_seeds);
    free (self->config.cluster);
    free (self->config.host);
    free (self->config.interface);
    free (self->config.rendezvous);
    free (self);
    *self_p = NULL;
}

void
shoal_node_add_seed (shoal_node_t *self, const char *endpoint)
{
    zlistx_add_end (self->config.seeds, strdup (endpoint));
}

void
shoal_node_set_interface (shoal_node_t *self, const char *interface)
{
    free (self->config.interface);
    self->config.interface = strdup (interface);
}

void
shoal_node_set_host (shoal_node_t *self, const char *host)
{
    free (self->config.host);
    self->config.host = strdup (host);
}

void
shoal_node_set_port (shoal_node_t *self, int port)
{
    self->config.port = port;
}

void
shoal_node_set_timing (shoal_node_t *self, int beat_ms, int expiry_ms)
{
    self->config.beat = beat_ms > 0 ? beat_ms : SHOAL_DEFAULT_BEAT;
    self->config.expiry = expiry_ms > beat_ms ? expiry_ms : 5 * self->config.beat;
}

void
shoal_node_set_event_buffer (shoal_node_t *self, int events, int replay)
{
    self->config.event_buffer = events > 0 ? events : SHOAL_DEFAULT_EVENT_BUFFER;
    self->config.replay = replay >= 0 ? replay : SHOAL_DEFAULT_REPLAY;
}

void
shoal_node_set_rendezvous (shoal_node_t *self, const char *directory)
{
    free (self->config.rendezvous);
    self->config.rendezvous = strdup (directory);
}

int
shoal_node_start (shoal_node_t *self)
{
    if (self->actor)
        return -1;
    self->actor = shoal_actor_new (shoal_membership_actor, self);
    if (!self->actor || *self->config.error) {
        zsys_error ("shoal: node: %s", self->config.error);
        shoal_actor_destroy (&self->actor);
        return -1;
    }
    return 0;
}

const char *
shoal_node_id (shoal_node_t *self)
{
    return self->config.id;
}

const char *
shoal_node_cluster (shoal_node_t *self)
{
    return self->config.cluster;
}

const char *
shoal_node_endpoint (shoal_node_t *self)
{
    return self->config.endpoint;
}

const char *
shoal_node_host (shoal_node_t *self)
{
    return self->config.host ? self->config.host : "127.0.0.1";
}

shoal_view_t *
shoal_node_view (shoal_node_t *self)
{
    pthread_mutex_lock (&self->lock);
    shoal_view_t *view = self->view ? shoal_view_ref (self->view) : NULL;
    pthread_mutex_unlock (&self->lock);
    return view;
}

uint64_t
shoal_node_generation (shoal_node_t *self)
{
    return atomic_load_explicit (&self->generation, memory_order_acquire);
}

uint64_t
shoal_node_refused (shoal_node_t *self)
{
    return atomic_load (&self->refused);
}

//  Waits until CONDITION holds for the latest view, or the deadline
static bool
s_wait (shoal_node_t *self, bool (*condition) (shoal_node_t *, const void *),
        const void *argument, int timeout_ms)
{
    struct timespec deadline;
    clock_gettime (CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long) (timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock (&self->lock);
    bool met = condition (self, argument);
    while (!met && pthread_cond_timedwait (&self->published, &self->lock, &deadline) == 0)
        met = condition (self, argument);
    if (!met)
        met = condition (self, argument);
    pthread_mutex_unlock (&self->lock);
    return met;
}

typedef struct {
    const char *service;
    size_t count;
} s_wanted_t;

static bool
s_has_instances (shoal_node_t *self, const void *argument)
{
    const s_wanted_t *wanted = (const s_wanted_t *) argument;
    size_t count, up = 0;
    if (!self->view)
        return false;
    const shoal_instance_info_t *const *instances =
        shoal_view_service (self->view, wanted->service, &count);
    for (size_t index = 0; index < count; index++)
        up += instances [index]->state == SHOAL_INSTANCE_UP;
    return up >= wanted->count;
}

static bool
s_has_nodes (shoal_node_t *self, const void *argument)
{
    return self->view && shoal_view_nodes (self->view) >= *(const size_t *) argument;
}

static bool
s_is_settled (shoal_node_t *self, const void *argument)
{
    return self->view && self->pending == 0;
}

bool
shoal_node_wait_for (shoal_node_t *self, const char *service, size_t count, int timeout_ms)
{
    s_wanted_t wanted = { service, count };
    return s_wait (self, s_has_instances, &wanted, timeout_ms);
}

bool
shoal_node_wait_nodes (shoal_node_t *self, size_t count, int timeout_ms)
{
    return s_wait (self, s_has_nodes, &count, timeout_ms);
}

bool
shoal_node_settle (shoal_node_t *self, int timeout_ms)
{
    return s_wait (self, s_is_settled, NULL, timeout_ms);
}

//  --------------------------------------------------------------------------
//  The membership actor's side

shoal_node_config_t *
shoal_node_config (shoal_node_t *self)
{
    return &self->config;
}

void
shoal_node_post_view (shoal_node_t *self, shoal_view_t *view, size_t pending)
{
    pthread_mutex_lock (&self->lock);
    shoal_view_t *old = self->view;
    self->view = view;
    self->pending = pending;
    atomic_fetch_add_explicit (&self->generation, 1, memory_order_release);
    pthread_cond_broadcast (&self->published);
    pthread_mutex_unlock (&self->lock);
    shoal_view_destroy (&old);
}

void
shoal_node_count_refused (shoal_node_t *self)
{
    atomic_fetch_add (&self->refused, 1);
}

//  Sends a command to the membership and waits until it is done
static void
s_command (shoal_node_t *self, const char *command, void *pointer, const char *text)
{
    if (!self->actor)
        return;
    //  Any thread may command (services starting, subscribers subscribing):
    //  a second command sent before the first one's answer was read would
    //  take that answer, and the first thread would wait for ever
    pthread_mutex_lock (&self->command_lock);
    zsock_send (shoal_actor_sock (self->actor), "sps", command, pointer, text ? text : "");
    zsock_wait (shoal_actor_sock (self->actor));
    pthread_mutex_unlock (&self->command_lock);
}

void
shoal_node_announce (shoal_node_t *self, const char *command, shoal_instance_slot_t *slot)
{
    s_command (self, command, slot, NULL);
}

void
shoal_node_announce_subscriber (shoal_node_t *self, const char *command,
                                shoal_subscriber_t *subscriber)
{
    s_command (self, command, subscriber, NULL);
}

void
shoal_node_announce_idempotent (shoal_node_t *self, shoal_instance_slot_t *slot,
                                const char *method)
{
    s_command (self, "IDEMPOTENT", slot, method);
}

//  --------------------------------------------------------------------------
//  Events

int
shoal_node_open_events (shoal_node_t *self)
{
    char bind [300];
    if (streq (self->config.host, "inproc"))
        snprintf (bind, sizeof (bind), "inproc://shoal-events/%s/%s", self->config.cluster,
                  self->config.id);
    else
        snprintf (bind, sizeof (bind), "tcp://%s:*", self->config.host);
    self->publisher = shoal_publisher_new (self, bind, self->config.event_buffer,
                                           self->config.replay, SHOAL_MAX_EVENT,
                                           self->config.beat, self->config.error,
                                           sizeof (self->config.error));
    if (!self->publisher)
        return -1;
    snprintf (self->config.events, sizeof (self->config.events), "%s",
              shoal_publisher_endpoint (self->publisher));
    return 0;
}

shoal_publisher_t *
shoal_node_publisher (shoal_node_t *self)
{
    return self->publisher;
}

int
shoal_node_publish (shoal_node_t *self, const char *topic, const void *body, size_t size)
{
    if (!self->publisher)
        return -1;
    //  No metadata: the sender is the publisher itself (shoal_event_meta
    //  says "node/ID"), and the frame is the smaller for it
    return shoal_publisher_send (self->publisher, topic, NULL, 0, body, size);
}

int
shoal_node_publish_as (shoal_node_t *self, const char *topic, const char *sender,
                       const char *trace, const void *body, size_t size)
{
    if (!self->publisher)
        return -1;
    if (!sender && !trace)
        return shoal_node_publish (self, topic, body, size);
    char node_sender [64];
    if (!sender) {
        snprintf (node_sender, sizeof (node_sender), "node/%s", self->config.id);
        sender = node_sender;
    }
    msgpack_sbuffer meta;
    msgpack_sbuffer_init (&meta);
    msgpack_packer packer;
    msgpack_packer_init (&packer, &meta, msgpack_sbuffer_write);
    msgpack_pack_map (&packer, trace ? 2 : 1);
    shoal_wire_pack_string (&packer, "sender");
    shoal_wire_pack_string (&packer, sender);
    if (trace) {
        shoal_wire_pack_string (&packer, "trace");
        shoal_wire_pack_string (&packer, trace);
    }
    int rc = shoal_publisher_send (self->publisher, topic, meta.data, meta.size, body, size);
    msgpack_sbuffer_destroy (&meta);
    return rc;
}

int
shoal_node_publishf (shoal_node_t *self, const char *topic, const char *format, ...)
{
    va_list arguments;
    va_start (arguments, format);
    shoal_body_t *body = shoal_body_vpack (format, arguments);
    va_end (arguments);
    if (!body)
        return -1;
    int rc = shoal_node_publish (self, topic, shoal_body_data (body), shoal_body_size (body));
    shoal_body_destroy (&body);
    return rc;
}

//  True if at least COUNT broadcast subscribers in the view want TOPIC,
//  and all that do are connected to our publisher
static bool
s_subscribers_present (shoal_node_t *self, const char *topic, size_t wanted)
{
    shoal_view_t *view = shoal_node_view (self);
    size_t count = view ? shoal_view_subscriptions (view) : 0, matching = 0;
    bool present = view != NULL;
    for (size_t index = 0; present && index < count; index++) {
        const shoal_subscription_info_t *info = shoal_view_subscription_at (view, index);
        if (info->delivery == SHOAL_BROADCAST && shoal_pattern_match (info->pattern, topic)) {
            //  A subscriber with several matching patterns counts once
            const shoal_subscription_info_t *before =
                index ? shoal_view_subscription_at (view, index - 1) : NULL;
            if (!before || !streq (before->id, info->id) || !streq (before->node, info->node)
                || !shoal_pattern_match (before->pattern, topic))
                matching++;
            present = shoal_publisher_present (self->publisher, info->id);
        }
    }
    shoal_view_destroy (&view);
    return present && matching >= wanted;
}

bool
shoal_node_wait_subscribers (shoal_node_t *self, const char *topic, size_t count,
                             int timeout_ms)
{
    if (!self->publisher || !shoal_topic_valid (topic))
        return false;
    int64_t deadline = zclock_mono () + timeout_ms;
    while (!s_subscribers_present (self, topic, count)) {
        int64_t left = deadline - zclock_mono ();
        if (left <= 0)
            return false;
        //  Presence changes wake us; a new view may also bring a subscriber
        //  we have not heard of, so look again every few ms regardless
        shoal_publisher_wait_presence (self->publisher, left < 10 ? (int) left : 10);
    }
    return true;
}

shoal_publisher_stats_t
shoal_node_publisher_stats (shoal_node_t *self)
{
    shoal_publisher_stats_t none = { 0 };
    return self->publisher ? shoal_publisher_stats (self->publisher) : none;
}

//  --------------------------------------------------------------------------
//  Faults

static s_fault_t *
s_fault (shoal_node_t *self, const char *peer)
{
    for (s_fault_t *fault = (s_fault_t *) zlistx_first (self->faults); fault;
         fault = (s_fault_t *) zlistx_next (self->faults))
        if (streq (fault->peer, peer))
            return fault;
    s_fault_t *fault = (s_fault_t *) zmalloc (sizeof (s_fault_t));
    snprintf (fault->peer, sizeof (fault->peer), "%s", peer);
    fault->random = 0x9e3779b97f4a7c15ULL;
    zlistx_add_end (self->faults, fault);
    atomic_store (&self->faulty, true);
    return fault;
}

void
shoal_node_freeze (shoal_node_t *self, bool frozen)
{
    s_command (self, frozen ? "FREEZE" : "THAW", NULL, NULL);
}

void
shoal_node_cut (shoal_node_t *self, const char *peer, bool cut)
{
    pthread_mutex_lock (&self->lock);
    s_fault (self, peer)->cut = cut;
    pthread_mutex_unlock (&self->lock);
    s_command (self, cut ? "CUT" : "HEAL", NULL, peer);
}

void
shoal_node_lossy (shoal_node_t *self, const char *peer, double drop, int delay_ms)
{
    pthread_mutex_lock (&self->lock);
    s_fault_t *fault = s_fault (self, peer);
    fault->drop = drop;
    fault->delay = delay_ms;
    fault->random = 0x9e3779b97f4a7c15ULL;      //  the same sequence each time
    pthread_mutex_unlock (&self->lock);
}

shoal_fault_t
shoal_node_fault (shoal_node_t *self, const char *peer, int *delay_ms)
{
    *delay_ms = 0;
    if (!atomic_load_explicit (&self->faulty, memory_order_relaxed))
        return SHOAL_FAULT_NONE;
    shoal_fault_t result = SHOAL_FAULT_NONE;
    pthread_mutex_lock (&self->lock);
    for (s_fault_t *fault = (s_fault_t *) zlistx_first (self->faults); fault;
         fault = (s_fault_t *) zlistx_next (self->faults))
        if (streq (fault->peer, peer)) {
            if (fault->cut)
                result = SHOAL_FAULT_CUT;
            else if (fault->drop > 0) {
                fault->random ^= fault->random << 13;
                fault->random ^= fault->random >> 7;
                fault->random ^= fault->random << 17;
                if ((double) (fault->random >> 11) / (double) (1ULL << 53) < fault->drop)
                    result = SHOAL_FAULT_DROP;
            }
            *delay_ms = fault->delay;
            break;
        }
    pthread_mutex_unlock (&self->lock);
    return result;
}

//  --------------------------------------------------------------------------
//  Selftest: three nodes in one process find each other through the
//  rendezvous folder, see each other's services, and notice one leave.

static void
s_echo (shoal_request_t *request, void *state)
{
    size_t size;
    const void *body = shoal_request_body (request, &size);
    shoal_request_reply_raw (request, body, size);
}

//  Holds its instance longer than the expiry: the node must not look dead
static void
s_slow (shoal_request_t *request, void *state)
{
    zclock_sleep (SHOAL_DEFAULT_EXPIRY + 500);
    shoal_request_reply (request, "{s:b}", "done", 1);
}

//  Waits until NODE's view has NODES nodes and INSTANCES instances
static bool
s_view_is (shoal_node_t *node, size_t nodes, size_t instances, int timeout_ms)
{
    int64_t deadline = zclock_mono () + timeout_ms;
    while (true) {
        shoal_view_t *view = shoal_node_view (node);
        bool met = shoal_view_nodes (view) == nodes && shoal_view_size (view) == instances;
        shoal_view_destroy (&view);
        int64_t left = deadline - zclock_mono ();
        if (met || left <= 0)
            return met;
        //  Wakes at the next published view (an impossible count never
        //  comes true, so this is a wait for change with a deadline)
        shoal_node_wait_nodes (node, SIZE_MAX, (int) (left < 50 ? left : 50));
    }
}

void
shoal_node_test (bool verbose)
{
    if (verbose)
        printf (" * shoal_node: ");
    char folder [] = "/tmp/shoal-node-test-XXXXXX";
    assert (mkdtemp (folder));
    assert (shoal_node_new ("bad cluster") == NULL);

    shoal_node_t *nodes [3];
    for (int index = 0; index < 3; index++) {
        nodes [index] = shoal_node_new ("selftest");
        shoal_node_set_rendezvous (nodes [index], folder);
        assert (shoal_node_start (nodes [index]) == 0);
        assert (strncmp (shoal_node_endpoint (nodes [index]), "tcp://127.0.0.1:", 16) == 0);
    }
    //  Another cluster in the same folder is not seen
    shoal_node_t *stranger = shoal_node_new ("elsewhere");
    shoal_node_set_rendezvous (stranger, folder);
    assert (shoal_node_start (stranger) == 0);

    shoal_service_t *echo = shoal_service_new ("echo", "1.0.0");
    shoal_service_method (echo, "echo", s_echo, SHOAL_IDEMPOTENT, NULL);
    shoal_service_method (echo, "slow", s_slow, 0, NULL);
    shoal_service_set_node (echo, nodes [0]);
    assert (shoal_service_start (echo, 2) == 0);

    for (int index = 0; index < 3; index++) {
        assert (shoal_node_wait_nodes (nodes [index], 3, 2000));
        assert (shoal_node_wait_for (nodes [index], "echo", 2, 2000));
    }
    shoal_view_t *view = shoal_node_view (nodes [2]);
    size_t count;
    const shoal_instance_info_t *const *instances = shoal_view_service (view, "echo", &count);
    assert (count == 2 && !instances [0]->local && instances [0]->inproc == NULL);
    assert (streq (instances [0]->node, shoal_node_id (nodes [0])));
    assert (shoal_view_idempotent (view, "echo", "echo"));
    shoal_view_destroy (&view);
    view = shoal_node_view (nodes [0]);
    instances = shoal_view_service (view, "echo", &count);
    assert (count == 2 && instances [0]->local && instances [0]->inproc);
    shoal_view_destroy (&view);
    view = shoal_node_view (stranger);
    assert (shoal_view_nodes (view) == 1 && shoal_view_size (view) == 0);
    shoal_view_destroy (&view);

    //  A handler busy for longer than the expiry does not make its node look
    //  dead: heartbeats run on the node's thread, not the instance's
    shoal_client_t *client = shoal_client_new ();
    shoal_client_set_node (client, nodes [2]);
    shoal_call_t *slow = shoal_client_send (client, NULL, "echo", "slow", NULL, 0, 5000);
    int64_t until = zclock_mono () + SHOAL_DEFAULT_EXPIRY + 400;
    while (zclock_mono () < until) {
        assert (shoal_node_wait_for (nodes [2], "echo", 2, 0));
        shoal_node_wait_nodes (nodes [2], SIZE_MAX, 50);    //  until the next view, or 50 ms
    }
    assert (shoal_call_wait (slow) == SHOAL_OK);
    shoal_call_destroy (&slow);
    shoal_client_destroy (&client);

    //  A service that stops leaves every view; a node that leaves too
    shoal_service_destroy (&echo);
    assert (s_view_is (nodes [1], 3, 0, 2000));
    shoal_node_destroy (&nodes [2]);
    assert (s_view_is (nodes [0], 2, 0, 2000));
    assert (s_view_is (nodes [1], 2, 0, 2000));
    shoal_node_destroy (&nodes [0]);
    shoal_node_destroy (&nodes [1]);
    shoal_node_destroy (&stranger);
    char *command = zsys_sprintf ("rm -rf %s", folder);
    assert (system (command) == 0);
    free (command);
    if (verbose)
        printf ("OK\n");
}
