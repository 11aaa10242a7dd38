/*  shoal_service - the definition of a service and its running instances.
    The definition (methods, state callbacks, limits) is fixed once the
    service starts, so the instance actors read it without locks.            */
#include "shoal_private.h"

typedef struct {
    shoal_actor_t *actor;
    shoal_instance_slot_t slot;
} s_instance_t;

struct _shoal_service_t {
    char *name;
    char *version;
    zhashx_t *methods;              //  name -> shoal_method_t
    shoal_state_new_fn *state_new;
    shoal_state_destroy_fn *state_destroy;
    void *state_arg;
    char *endpoint;                 //  what instances bind (a pattern)
    size_t max_message;
    int max_depth;
    s_instance_t *instances;
    size_t size;
    shoal_node_t *node;             //  announces the instances, if set
    shoal_handler_fn *fallback;     //  serves undeclared methods (mocks)
    zlistx_t *idempotent;           //  idempotent names beyond the methods'
    shoal_service_event_t events [SHOAL_MAX_PATTERNS];     //  subscriptions
    size_t events_size;
    shoal_gap_fn *on_gap;
};

//  --------------------------------------------------------------------------
//  The node id: one per process until discovery brings real nodes. Made
//  once; the only process-wide state here.

static pthread_once_t s_node_once = PTHREAD_ONCE_INIT;
static char s_node_id [33];

static void
s_node_init (void)
{
    zuuid_t *uuid = zuuid_new ();
    snprintf (s_node_id, sizeof (s_node_id), "%s", zuuid_str_canonical (uuid) + 24);
    zuuid_destroy (&uuid);
}

static void
s_method_destroy (void **item)
{
    shoal_method_t *method = (shoal_method_t *) *item;
    free (method->name);
    free (method->doc);
    free (method);
    *item = NULL;
}

shoal_service_t *
shoal_service_new (const char *name, const char *version)
{
    if (!name || !shoal_wire_valid_name (name, strlen (name)) || *name == '$') {
        zsys_error ("shoal: invalid service name '%s'", name ? name : "(null)");
        return NULL;
    }
    zsys_init ();
    pthread_once (&s_node_once, s_node_init);
    shoal_service_t *self = (shoal_service_t *) zmalloc (sizeof (shoal_service_t));
    self->name = strdup (name);
    self->version = strdup (version ? version : "0");
    self->methods = zhashx_new ();
    zhashx_set_destructor (self->methods, s_method_destroy);
    self->endpoint = strdup ("tcp://127.0.0.1:*");
    self->max_message = SHOAL_DEFAULT_MAX_MESSAGE;
    self->max_depth = SHOAL_DEFAULT_MAX_DEPTH;
    self->idempotent = zlistx_new ();
    zlistx_set_duplicator (self->idempotent, (zlistx_duplicator_fn *) strdup);
    zlistx_set_destructor (self->idempotent, (zlistx_destructor_fn *) zstr_free);
    return self;
}

void
shoal_service_destroy (shoal_service_t **self_p)
{
    shoal_service_t *self = *self_p;
    if (!self)
        return;
    shoal_service_stop (self);
    zhashx_destroy (&self->methods);
    zlistx_destroy (&self->idempotent);
    for (size_t index = 0; index < self->events_size; index++)
        free (self->events [index].pattern);
    free (self->name);
    free (self->version);
    free (self->endpoint);
    free (self);
    *self_p = NULL;
}

const char *
shoal_service_name (shoal_service_t *self)
{
    return self->name;
}

const char *
shoal_service_version (shoal_service_t *self)
{
    return self->version;
}

int
shoal_service_method (shoal_service_t *self, const char *name, shoal_handler_fn *handler,
                      int flags, const char *doc)
{
    if (self->size || !name || !handler || *name == '$'
        || !shoal_wire_valid_name (name, strlen (name))
        || zhashx_lookup (self->methods, name))
        return -1;
    shoal_method_t *method = (shoal_method_t *) zmalloc (sizeof (shoal_method_t));
    method->name = strdup (name);
    method->handler = handler;
    method->flags = flags;
    method->doc = strdup (doc ? doc : "");
    zhashx_insert (self->methods, name, method);
    return 0;
}

int
shoal_service_on_event (shoal_service_t *self, const char *pattern, shoal_delivery_t delivery,
                        shoal_event_fn *handler)
{
    if (self->size || !handler || !pattern || !shoal_pattern_valid (pattern)
        || (delivery != SHOAL_BROADCAST && delivery != SHOAL_BALANCED)
        || self->events_size >= SHOAL_MAX_PATTERNS)
        return -1;
    shoal_service_event_t *event = &self->events [self->events_size++];
    event->pattern = strdup (pattern);
    event->delivery = delivery;
    event->handler = handler;
    return 0;
}

void
shoal_service_on_gap (shoal_service_t *self, shoal_gap_fn *fn)
{
    self->on_gap = fn;
}

size_t
shoal_service_events (shoal_service_t *self)
{
    return self->events_size;
}

const shoal_service_event_t *
shoal_service_event_at (shoal_service_t *self, size_t index)
{
    return index < self->events_size ? &self->events [index] : NULL;
}

shoal_gap_fn *
shoal_service_gap_handler (shoal_service_t *self)
{
    return self->on_gap;
}

void
shoal_service_set_state (shoal_service_t *self, shoal_state_new_fn *new_fn,
                         shoal_state_destroy_fn *destroy_fn, void *arg)
{
    self->state_new = new_fn;
    self->state_destroy = destroy_fn;
    self->state_arg = arg;
}

void
shoal_service_set_node (shoal_service_t *self, shoal_node_t *node)
{
    self->node = node;
}

void
shoal_service_bind (shoal_service_t *self, const char *endpoint)
{
    free (self->endpoint);
    self->endpoint = strdup (endpoint);
}

void
shoal_service_set_max_message (shoal_service_t *self, size_t bytes)
{
    self->max_message = bytes;
}

void
shoal_service_set_max_depth (shoal_service_t *self, int depth)
{
    self->max_depth = depth < 1 ? 1 : depth > 31 ? 31 : depth;
}

//  Instance INDEX's endpoint, from the service's pattern (see the header)
static void
s_instance_endpoint (const char *pattern, size_t index, char *out, size_t out_size)
{
    snprintf (out, out_size, "%s", pattern);
    if (index == 0)
        return;
    if (strncmp (pattern, "tcp://", 6) == 0) {
        const char *colon = strrchr (pattern, ':');
        char *end;
        long port = strtol (colon + 1, &end, 10);
        if (colon > pattern + 5 && *end == 0 && port > 0)
            snprintf (out, out_size, "%.*s:%ld", (int) (colon - pattern), pattern,
                      port + (long) index);
    }
    else
        snprintf (out, out_size, "%s-%zu", pattern, index);
}

void
shoal_service_prepare_slot (shoal_service_t *self, shoal_instance_slot_t *slot)
{
    slot->service = self;
    slot->node = self->node;
    slot->fallback = self->fallback;
    slot->methods = zhashx_new ();
    slot->idempotent = zlistx_new ();
    zlistx_set_duplicator (slot->idempotent, (zlistx_duplicator_fn *) strdup);
    zlistx_set_destructor (slot->idempotent, (zlistx_destructor_fn *) zstr_free);
    for (shoal_method_t *method = (shoal_method_t *) zhashx_first (self->methods); method;
         method = (shoal_method_t *) zhashx_next (self->methods)) {
        zhashx_insert (slot->methods, method->name, method);
        if (method->flags & SHOAL_IDEMPOTENT)
            zlistx_add_end (slot->idempotent, method->name);
    }
    for (char *name = (char *) zlistx_first (self->idempotent); name;
         name = (char *) zlistx_next (self->idempotent))
        zlistx_add_end (slot->idempotent, name);
}

void
shoal_service_fallback (shoal_service_t *self, shoal_handler_fn *handler)
{
    self->fallback = handler;
}

int
shoal_service_set_idempotent (shoal_service_t *self, const char *method)
{
    if (!shoal_wire_valid_name (method, strlen (method)))
        return -1;
    zlistx_add_end (self->idempotent, (void *) method);
    //  Running instances: their node owns their list, so it makes the change
    for (size_t index = 0; index < self->size; index++)
        if (self->node && self->instances [index].actor)
            shoal_node_announce_idempotent (self->node, &self->instances [index].slot, method);
    return 0;
}

int
shoal_service_crash (shoal_service_t *self, size_t index)
{
    if (index >= self->size || !self->instances [index].actor)
        return -1;
    s_instance_t *instance = &self->instances [index];
    //  Marked first: a handler running now must not answer when it returns
    atomic_store (&instance->slot.crashed, 1);
    zstr_send (shoal_actor_sock (instance->actor), "CRASH");
    shoal_actor_destroy (&instance->actor);
    if (self->node)
        shoal_node_announce (self->node, "REMOVE", &instance->slot);
    return 0;
}

void
shoal_service_freeze (shoal_service_t *self, bool frozen)
{
    for (size_t index = 0; index < self->size; index++)
        if (self->instances [index].actor) {
            zsock_t *pipe = shoal_actor_sock (self->instances [index].actor);
            zstr_send (pipe, frozen ? "FREEZE" : "THAW");
            zsock_wait (pipe);
        }
}

void
shoal_service_release_slot (shoal_instance_slot_t *slot)
{
    zhashx_destroy (&slot->methods);
    zlistx_destroy (&slot->idempotent);
}

int
shoal_service_start (shoal_service_t *self, size_t instances)
{
    if (self->size || instances == 0)
        return -1;
    //  With a node and no explicit bind, bind where the node is reachable
    if (self->node && streq (self->endpoint, "tcp://127.0.0.1:*")) {
        free (self->endpoint);
        if (streq (shoal_node_host (self->node), "inproc"))
            self->endpoint = zsys_sprintf ("inproc://shoal-%s-%s", shoal_node_id (self->node),
                                           self->name);
        else
            self->endpoint = zsys_sprintf ("tcp://%s:*", shoal_node_host (self->node));
    }
    self->instances = (s_instance_t *) zmalloc (instances * sizeof (s_instance_t));
    for (size_t index = 0; index < instances; index++) {
        s_instance_t *instance = &self->instances [index];
        shoal_service_prepare_slot (self, &instance->slot);
        s_instance_endpoint (self->endpoint, index, instance->slot.endpoint,
                             sizeof (instance->slot.endpoint));
        instance->actor = shoal_actor_new (shoal_instance_actor, &instance->slot);
        self->size = index + 1;
        if (!instance->actor && !*instance->slot.error)
            snprintf (instance->slot.error, sizeof (instance->slot.error), "no thread");
        if (*instance->slot.error) {
            zsys_error ("shoal: %s: instance %zu: %s", self->name, index,
                        instance->slot.error);
            shoal_service_stop (self);
            return -1;
        }
    }
    if (self->node)
        for (size_t index = 0; index < instances; index++)
            shoal_node_announce (self->node, "ADD", &self->instances [index].slot);
    return 0;
}

void
shoal_service_drain (shoal_service_t *self)
{
    if (!self->node || !self->size)
        return;
    size_t running = 0;
    for (size_t index = 0; index < self->size; index++)
        if (self->instances [index].actor) {
            shoal_node_announce (self->node, "DRAIN", &self->instances [index].slot);
            running++;
        }
    if (running == 0)
        return;                 //  all crashed: nobody to wait for
    //  The announcement is pushed at once; callers that picked an instance
    //  just before they heard of it are still served meanwhile
    zmq_poll (NULL, 0, SHOAL_DRAIN_ANNOUNCE);
}

size_t
shoal_service_size (shoal_service_t *self)
{
    return self->size;
}

const char *
shoal_service_endpoint (shoal_service_t *self, size_t index)
{
    return index < self->size ? self->instances [index].slot.endpoint : NULL;
}

const char *
shoal_service_inproc (shoal_service_t *self, size_t index)
{
    return index < self->size ? self->instances [index].slot.inproc : NULL;
}

void
shoal_service_stop (shoal_service_t *self)
{
    shoal_service_drain (self);
    //  Tell every instance first, so they drain side by side, then wait.
    //  An instance that could not bind has ended already: nobody to tell.
    for (size_t index = 0; index < self->size; index++)
        if (*self->instances [index].slot.error == 0 && self->instances [index].actor)
            zstr_send (shoal_actor_sock (self->instances [index].actor), "$TERM");
    for (size_t index = 0; index < self->size; index++) {
        bool running = self->instances [index].actor != NULL;
        shoal_actor_destroy (&self->instances [index].actor);
        if (self->node && running && *self->instances [index].slot.error == 0)
            shoal_node_announce (self->node, "REMOVE", &self->instances [index].slot);
        shoal_service_release_slot (&self->instances [index].slot);
    }
    free (self->instances);
    self->instances = NULL;
    self->size = 0;
}

//  --------------------------------------------------------------------------
//  Running until a signal. CZMQ's handler sets zsys_interrupted; ours also
//  writes to a pipe, so the waiting thread wakes at once whichever thread
//  the signal was delivered to.

static int s_signal_pipe [2] = { -1, -1 };

static void
s_signal_handler (int signal_value)
{
    zsys_interrupted = 1;
    if (s_signal_pipe [1] != -1) {
        ssize_t rc = write (s_signal_pipe [1], "!", 1);
        (void) rc;
    }
}

static pthread_once_t s_signal_once = PTHREAD_ONCE_INIT;

static void
s_signal_init (void)
{
    if (pipe (s_signal_pipe) == 0) {
        fcntl (s_signal_pipe [1], F_SETFL, O_NONBLOCK);
        zsys_handler_set (s_signal_handler);
    }
}

int
shoal_service_run (shoal_service_t *self, size_t instances)
{
    pthread_once (&s_signal_once, s_signal_init);
    if (!self->size && shoal_service_start (self, instances))
        return -1;
    zmq_pollitem_t item = { NULL, s_signal_pipe [0], ZMQ_POLLIN, 0 };
    while (!zsys_interrupted)
        zmq_poll (&item, 1, -1);
    zsys_info ("shoal: %s: stopping, answering requests already received", self->name);
    shoal_service_stop (self);
    return 0;
}

static void
s_usage (shoal_service_t *self, FILE *out)
{
    fprintf (out,
             "usage: shoal-%s [options]\n"
             "Serves the '%s' service (version %s) as a member of a shoal cluster.\n\n"
             "  --bind ENDPOINT    endpoint to bind (default tcp://HOST:*);\n"
             "                     instance i binds port+i, or NAME-i for ipc://\n"
             "  --instances N      instance actors to run (default 1)\n"
             "  --cluster NAME     cluster to join (default: $SHOAL_CLUSTER or 'default')\n"
             "  --seed ENDPOINT    a node to join through (repeatable; $SHOAL_SEEDS)\n"
             "  --interface NAME   find nodes on this LAN interface by UDP beacon\n"
             "                     ($SHOAL_INTERFACE; never on by default)\n"
             "  --host ADDRESS     address to bind and advertise (default 127.0.0.1,\n"
             "                     or the interface's; $SHOAL_HOST)\n"
             "  --node-port PORT   gossip port, for others to use as seed (default any)\n"
             "  --help             show this\n\n"
             "Prints each bound endpoint on stdout, then serves until SIGINT or SIGTERM,\n"
             "when it tells the cluster it is draining, answers what it has, and exits.\n\n"
             "methods:\n",
             self->name, self->name, self->version);
    for (shoal_method_t *method = (shoal_method_t *) zhashx_first (self->methods); method;
         method = (shoal_method_t *) zhashx_next (self->methods))
        fprintf (out, "  %-16s %s%s\n", method->name, method->doc,
                 method->flags & SHOAL_IDEMPOTENT ? " (idempotent)" : "");
}

//  Parses the standard flags into SELF and NODE; returns 0, or 2 for bad
//  usage (said on stderr), or -1 after --help
static int
s_parse (shoal_service_t *self, shoal_node_t *node, int argc, char **argv, long *instances)
{
    for (int index = 1; index < argc; index++) {
        const char *arg = argv [index];
        const char *value = index + 1 < argc ? argv [index + 1] : NULL;
        if (streq (arg, "--help") || streq (arg, "-h")) {
            s_usage (self, stdout);
            return -1;
        }
        if (!value || strncmp (arg, "--", 2)) {
            fprintf (stderr, "error: unknown or incomplete option '%s'\n", arg);
            s_usage (self, stderr);
            return 2;
        }
        index++;
        char *end;
        if (streq (arg, "--bind"))
            shoal_service_bind (self, value);
        else if (streq (arg, "--instances")) {
            *instances = strtol (value, &end, 10);
            if (*end || *instances < 1 || *instances > 1024) {
                fprintf (stderr, "error: --instances takes 1..1024\n");
                return 2;
            }
        }
        else if (streq (arg, "--seed"))
            shoal_node_add_seed (node, value);
        else if (streq (arg, "--interface"))
            shoal_node_set_interface (node, value);
        else if (streq (arg, "--host"))
            shoal_node_set_host (node, value);
        else if (streq (arg, "--node-port")) {
            long port = strtol (value, &end, 10);
            if (*end || port < 0 || port > 65535) {
                fprintf (stderr, "error: --node-port takes 0..65535\n");
                return 2;
            }
            shoal_node_set_port (node, (int) port);
        }
        else if (!streq (arg, "--cluster")) {
            fprintf (stderr, "error: unknown option '%s'\n", arg);
            s_usage (self, stderr);
            return 2;
        }
    }
    return 0;
}

//  The --cluster flag, read first: the node is made with it
static const char *
s_cluster_flag (int argc, char **argv)
{
    const char *cluster = NULL;
    for (int index = 1; index + 1 < argc; index++)
        if (streq (argv [index], "--cluster"))
            cluster = argv [index + 1];
    return cluster;
}

int
shoal_service_main (shoal_service_t **self_p, int argc, char **argv)
{
    shoal_service_t *self = self_p ? *self_p : NULL;
    if (!self)
        return 1;
    //  A service program's stdout carries its endpoints; logs go to stderr
    zsys_set_logstream (stderr);
    long instances = 1;
    shoal_node_t *node = shoal_node_new (s_cluster_flag (argc, argv));
    int rc = node ? s_parse (self, node, argc, argv, &instances) : 2;
    if (rc == 0) {
        if (shoal_node_start (node)) {
            fprintf (stderr, "error: cannot join the cluster (see the log above)\n");
            rc = 1;
        }
        else {
            zsys_info ("shoal: %s: node %s of cluster '%s', gossip at %s", self->name,
                       shoal_node_id (node), shoal_node_cluster (node),
                       shoal_node_endpoint (node));
            shoal_service_set_node (self, node);
            if (shoal_service_start (self, (size_t) instances) == 0) {
                //  The program's own output, not logging: scripts read it
                for (size_t index = 0; index < self->size; index++)
                    fprintf (stdout, "%s\n", self->instances [index].slot.endpoint);
                fflush (stdout);
                shoal_service_run (self, (size_t) instances);
            }
            else
                rc = 1;
        }
    }
    shoal_service_destroy (self_p);
    shoal_node_destroy (&node);
    return rc < 0 ? 0 : rc;
}

//  --------------------------------------------------------------------------
//  What instances read

void *
shoal_service_state_new (shoal_service_t *self)
{
    return self->state_new ? self->state_new (self->state_arg) : self->state_arg;
}

void
shoal_service_state_destroy (shoal_service_t *self, void *state)
{
    if (self->state_new && self->state_destroy)
        self->state_destroy (state);
}

size_t
shoal_service_max_message (shoal_service_t *self)
{
    return self->max_message;
}

int
shoal_service_max_depth (shoal_service_t *self)
{
    return self->max_depth;
}

const char *
shoal_service_node (shoal_service_t *self)
{
    return s_node_id;
}

//  --------------------------------------------------------------------------
//  Selftest: a counter service with per-instance state

typedef struct {
    int count;
} s_counter_t;

static void *
s_counter_new (void *arg)
{
    return zmalloc (sizeof (s_counter_t));
}

static void
s_counter_destroy (void *state)
{
    free (state);
}

static void
s_counter_add (shoal_request_t *request, void *state)
{
    s_counter_t *counter = (s_counter_t *) state;
    int by;
    if (shoal_request_get (request, "{s:i}", "by", &by))
        return;
    counter->count += by;
    shoal_request_reply (request, "{s:i}", "count", counter->count);
}

void
shoal_service_test (bool verbose)
{
    if (verbose)
        printf (" * shoal_service: ");
    assert (shoal_service_new ("bad name", "1") == NULL);
    assert (shoal_service_new ("$builtin", "1") == NULL);

    shoal_service_t *service = shoal_service_new ("counter", "1.0.0");
    shoal_service_set_state (service, s_counter_new, s_counter_destroy, NULL);
    assert (shoal_service_method (service, "add", s_counter_add, 0, "Adds 'by'") == 0);
    assert (shoal_service_method (service, "add", s_counter_add, 0, NULL) == -1);
    assert (shoal_service_method (service, "$add", s_counter_add, 0, NULL) == -1);
    shoal_service_bind (service, "tcp://127.0.0.1:*");
    assert (shoal_service_start (service, 2) == 0);
    assert (shoal_service_size (service) == 2);
    assert (shoal_service_method (service, "late", s_counter_add, 0, NULL) == -1);
    const char *first = shoal_service_endpoint (service, 0);
    const char *second = shoal_service_endpoint (service, 1);
    assert (strncmp (first, "tcp://127.0.0.1:", 16) == 0 && !streq (first, second));

    //  Each instance keeps its own count, over tcp and over inproc alike
    shoal_client_t *client = shoal_client_new ();
    int count = 0;
    shoal_call_t *call = shoal_client_callf (client, first, "counter", "add", 1000, "{s:i}",
                                             "by", 2);
    assert (shoal_call_get (call, "{s:i}", "count", &count) == 0 && count == 2);
    shoal_call_destroy (&call);
    call = shoal_client_callf (client, shoal_service_inproc (service, 0), "counter", "add",
                               1000, "{s:i}", "by", 3);
    assert (shoal_call_get (call, "{s:i}", "count", &count) == 0 && count == 5);
    shoal_call_destroy (&call);
    call = shoal_client_callf (client, second, "counter", "add", 1000, "{s:i}", "by", 1);
    assert (shoal_call_get (call, "{s:i}", "count", &count) == 0 && count == 1);
    shoal_call_destroy (&call);

    //  A body without the field is refused, naming it
    call = shoal_client_callf (client, first, "counter", "add", 1000, "{s:i}", "step", 1);
    assert (shoal_call_status (call) == SHOAL_INVALID_ARGUMENT);
    assert (strstr (shoal_call_message (call), "'by'"));
    shoal_call_destroy (&call);

    shoal_client_destroy (&client);
    shoal_service_destroy (&service);

    //  Fixed ports count up per instance; ipc names get a suffix
    char endpoint [64];
    s_instance_endpoint ("tcp://127.0.0.1:7000", 2, endpoint, sizeof (endpoint));
    assert (streq (endpoint, "tcp://127.0.0.1:7002"));
    s_instance_endpoint ("tcp://127.0.0.1:*", 2, endpoint, sizeof (endpoint));
    assert (streq (endpoint, "tcp://127.0.0.1:*"));
    s_instance_endpoint ("ipc:///tmp/echo", 1, endpoint, sizeof (endpoint));
    assert (streq (endpoint, "ipc:///tmp/echo-1"));
    if (verbose)
        printf ("OK\n");
}
