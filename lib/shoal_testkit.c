/*  shoal_testkit - a whole cluster inside a test process: nodes on
    inproc://, the test's real services spawned onto them, scripted mocks
    (lib/shoal_mock.c), waits with deadlines, and faults on demand.

    The kit belongs to the test's thread. It holds the nodes, the services
    it was given (mocks' included) in spawn order with the node each runs
    on, one client per node made on first use, and the message of its last
    failure. Waits never sleep blindly: they look at every node's view, and
    when one falls short they wait for that node's next published view,
    with the deadline as the limit.                                         */
#include "shoal_private.h"
#include <ftw.h>
#include <stdarg.h>

#define S_MAX_NODES 16
//  Heartbeat and expiry of the kit's nodes: faults show within a third of
//  a second, and a loaded machine still keeps every node alive
#define S_BEAT 50
#define S_EXPIRY 300
//  How long a new kit waits for its nodes to see each other, and a mock
//  for every node to see it
#define S_JOIN_TIMEOUT 5000
//  A wait for a new view wakes at least this often: a view published just
//  between a look and the wait costs at most this, never the deadline
#define S_SLICE 50

//  --------------------------------------------------------------------------
//  What mocks and the kit share (lib/shoal_mock.c); to move to
//  lib/shoal_private.h


//  --------------------------------------------------------------------------

//  A service the kit runs, and the node it runs on
typedef struct {
    shoal_service_t *service;
    size_t node;
} s_spawned_t;

struct _shoal_testkit_t {
    char folder [64];                   //  the nodes' rendezvous folder
    char cluster [64];
    size_t size;                        //  nodes
    shoal_node_t *nodes [S_MAX_NODES];
    shoal_client_t *clients [S_MAX_NODES];
    bool frozen [S_MAX_NODES];
    zlistx_t *spawned;                  //  s_spawned_t, in spawn order
    zlistx_t *mocks;                    //  shoal_mock_t, destroyed after the services
    size_t spawns;                      //  numbers the spawns' endpoints
    char error [2048];
};

static void
s_spawned_destroy (void **item)
{
    s_spawned_t *spawned = (s_spawned_t *) *item;
    shoal_service_destroy (&spawned->service);
    free (spawned);
    *item = NULL;
}

static void
s_mock_destroy (void **item)
{
    shoal_mock_destroy ((shoal_mock_t **) item);
}

int
shoal_testkit_fail (shoal_testkit_t *self, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    vsnprintf (self->error, sizeof (self->error), format, args);
    va_end (args);
    return -1;
}

//  Appends to TEXT (of SIZE bytes) what FORMAT says, cutting what does not fit
static void __attribute__ ((format (printf, 3, 4)))
s_append (char *text, size_t size, const char *format, ...)
{
    size_t used = strlen (text);
    if (used + 1 >= size)
        return;
    va_list args;
    va_start (args, format);
    vsnprintf (text + used, size - used, format, args);
    va_end (args);
}

static int
s_remove_entry (const char *path, const struct stat *info, int flag, struct FTW *ftw)
{
    remove (path);
    return 0;
}

//  --------------------------------------------------------------------------
//  The kit's life

shoal_testkit_t *
shoal_testkit_new (size_t nodes)
{
    if (nodes < 1 || nodes > S_MAX_NODES) {
        zsys_error ("shoal: testkit: %zu nodes asked for; a kit has 1..%d", nodes,
                    S_MAX_NODES);
        return NULL;
    }
    zsys_init ();
    shoal_testkit_t *self = (shoal_testkit_t *) zmalloc (sizeof (shoal_testkit_t));
    self->spawned = zlistx_new ();
    zlistx_set_destructor (self->spawned, s_spawned_destroy);
    self->mocks = zlistx_new ();
    zlistx_set_destructor (self->mocks, s_mock_destroy);
    snprintf (self->folder, sizeof (self->folder), "/tmp/shoal-testkit-XXXXXX");
    if (!mkdtemp (self->folder)) {
        zsys_error ("shoal: testkit: cannot make %s: %s", self->folder, strerror (errno));
        *self->folder = 0;
        shoal_testkit_destroy (&self);
        return NULL;
    }
    //  A cluster of its own, named after its private folder: two kits, in
    //  one process or in two, never meet
    snprintf (self->cluster, sizeof (self->cluster), "testkit-%d-%s", (int) getpid (),
              self->folder + strlen ("/tmp/shoal-testkit-"));
    for (size_t index = 0; index < nodes; index++) {
        shoal_node_t *node = shoal_node_new (self->cluster);
        if (!node) {
            shoal_testkit_destroy (&self);
            return NULL;
        }
        self->nodes [self->size++] = node;
        shoal_node_set_host (node, "inproc");
        shoal_node_set_rendezvous (node, self->folder);
        shoal_node_set_timing (node, S_BEAT, S_EXPIRY);
        if (shoal_node_start (node)) {
            zsys_error ("shoal: testkit: node %zu of %zu cannot start", index, nodes);
            shoal_testkit_destroy (&self);
            return NULL;
        }
    }
    int64_t deadline = zclock_mono () + S_JOIN_TIMEOUT;
    for (size_t index = 0; index < nodes; index++) {
        int64_t left = deadline - zclock_mono ();
        if (!shoal_node_wait_nodes (self->nodes [index], nodes, left > 0 ? (int) left : 0)) {
            shoal_view_t *view = shoal_node_view (self->nodes [index]);
            zsys_error ("shoal: testkit: waited %d ms for %zu nodes to meet; node %zu sees %zu",
                        S_JOIN_TIMEOUT, nodes, index, view ? shoal_view_nodes (view) : 0);
            shoal_view_destroy (&view);
            shoal_testkit_destroy (&self);
            return NULL;
        }
    }
    return self;
}

void
shoal_testkit_destroy (shoal_testkit_t **self_p)
{
    shoal_testkit_t *self = *self_p;
    if (!self)
        return;
    //  A frozen node or instance could not take its services' goodbyes
    for (size_t index = 0; index < self->size; index++)
        if (self->frozen [index])
            shoal_testkit_thaw (self, index);
    for (size_t index = 0; index < self->size; index++)
        shoal_client_destroy (&self->clients [index]);
    //  The services stop at once, as in a crash: the test is over, and
    //  nobody is left to drain for. Then mocks, whose handlers are gone
    for (s_spawned_t *spawned = (s_spawned_t *) zlistx_first (self->spawned); spawned;
         spawned = (s_spawned_t *) zlistx_next (self->spawned))
        for (size_t index = 0; index < shoal_service_size (spawned->service); index++)
            shoal_service_crash (spawned->service, index);
    zlistx_destroy (&self->spawned);
    zlistx_destroy (&self->mocks);
    for (size_t index = 0; index < self->size; index++)
        shoal_node_destroy (&self->nodes [index]);
    if (*self->folder)
        nftw (self->folder, s_remove_entry, 8, FTW_DEPTH | FTW_PHYS);
    free (self);
    *self_p = NULL;
}

shoal_node_t *
shoal_testkit_node (shoal_testkit_t *self, size_t index)
{
    return index < self->size ? self->nodes [index] : NULL;
}

shoal_client_t *
shoal_testkit_client (shoal_testkit_t *self, size_t index)
{
    if (index >= self->size)
        return NULL;
    if (!self->clients [index]) {
        self->clients [index] = shoal_client_new ();
        shoal_client_set_node (self->clients [index], self->nodes [index]);
    }
    return self->clients [index];
}

const char *
shoal_testkit_error (shoal_testkit_t *self)
{
    return self->error;
}

//  Checks a node index given to a kit function; names FUNCTION if bad
static int
s_check_node (shoal_testkit_t *self, const char *function, size_t node)
{
    if (node >= self->size)
        return shoal_testkit_fail (self, "%s: no node %zu (the kit has %zu)", function, node,
                                   self->size);
    return 0;
}

int
shoal_testkit_spawn (shoal_testkit_t *self, size_t node, shoal_service_t **service_p,
                     size_t instances)
{
    shoal_service_t *service = service_p ? *service_p : NULL;
    if (!service)
        return shoal_testkit_fail (self, "spawn: no service given");
    if (s_check_node (self, "spawn", node))
        return -1;
    //  A frozen node takes no announcement until thawed
    if (self->frozen [node])
        return shoal_testkit_fail (self, "spawn: node %zu is frozen; thaw it first", node);
    //  One that runs already is announced by a node of its own
    if (shoal_service_size (service))
        return shoal_testkit_fail (self, "spawn: '%s' runs already; give the kit a service "
                                   "that is not started", shoal_service_name (service));
    shoal_service_set_node (service, self->nodes [node]);
    //  An endpoint per spawn: the same service may run twice on one node
    char *endpoint = zsys_sprintf ("inproc://testkit/%s/%zu/%s", self->cluster,
                                   self->spawns++, shoal_service_name (service));
    shoal_service_bind (service, endpoint);
    zstr_free (&endpoint);
    if (shoal_service_start (service, instances))
        return shoal_testkit_fail (self, "spawn: '%s' could not start %zu instances on node %zu",
                                   shoal_service_name (service), instances, node);
    s_spawned_t *spawned = (s_spawned_t *) zmalloc (sizeof (s_spawned_t));
    spawned->service = service;
    spawned->node = node;
    zlistx_add_end (self->spawned, spawned);
    *service_p = NULL;
    return 0;
}

//  --------------------------------------------------------------------------
//  Waiting on the views

//  Whether a node's VIEW meets what is awaited; writes what it saw into
//  SEEN (for the message, when the wait fails)
typedef bool (s_check_fn) (shoal_view_t *view, const void *argument, char *seen,
                           size_t seen_size);

//  Waits until CHECK holds for the view of every node that is not frozen
//  (a frozen node's view is as stale as a stopped process's), or until
//  TIMEOUT_MS pass: then the error says what was AWAITED, and what each
//  node that fell short saw
static int
s_wait_views (shoal_testkit_t *self, s_check_fn *check, const void *argument,
              int timeout_ms, const char *awaited)
{
    int64_t deadline = zclock_mono () + (timeout_ms > 0 ? timeout_ms : 0);
    char seen [256];
    while (true) {
        size_t short_of = SIZE_MAX;
        uint64_t generation = 0;
        for (size_t index = 0; index < self->size && short_of == SIZE_MAX; index++) {
            if (self->frozen [index])
                continue;
            //  The generation first: a view published after it wakes the wait
            uint64_t seen_generation = shoal_node_generation (self->nodes [index]);
            shoal_view_t *view = shoal_node_view (self->nodes [index]);
            if (!check (view, argument, seen, sizeof (seen))) {
                short_of = index;
                generation = seen_generation;
            }
            shoal_view_destroy (&view);
        }
        if (short_of == SIZE_MAX)
            return 0;
        int64_t left = deadline - zclock_mono ();
        if (left <= 0)
            break;
        if (shoal_node_generation (self->nodes [short_of]) == generation)
            //  Wakes on that node's next published view (no count of nodes
            //  is ever SIZE_MAX), or at the end of the slice
            shoal_node_wait_nodes (self->nodes [short_of], SIZE_MAX,
                                   (int) (left < S_SLICE ? left : S_SLICE));
    }
    char report [1024] = "";
    for (size_t index = 0; index < self->size; index++) {
        if (self->frozen [index]) {
            s_append (report, sizeof (report), "%snode %zu is frozen (not asked)",
                      *report ? ", " : "", index);
            continue;
        }
        shoal_view_t *view = shoal_node_view (self->nodes [index]);
        if (!check (view, argument, seen, sizeof (seen)))
            s_append (report, sizeof (report), "%snode %zu sees %s", *report ? ", " : "",
                      index, seen);
        shoal_view_destroy (&view);
    }
    if (!*report)
        return 0;               //  met just as the deadline came
    return shoal_testkit_fail (self, "waited %d ms for %s; %s", timeout_ms, awaited, report);
}

typedef struct {
    const char *service;
    size_t count;
    const char *endpoint;       //  only the instance bound there, if not NULL
    const char *method;         //  for s_has_idempotent
} s_awaited_t;

//  Counts the instances of a service in VIEW, up and draining
static void
s_count (shoal_view_t *view, const s_awaited_t *awaited, size_t *up, size_t *draining)
{
    size_t count;
    const shoal_instance_info_t *const *instances =
        shoal_view_service (view, awaited->service, &count);
    *up = *draining = 0;
    for (size_t index = 0; index < count; index++)
        if (!awaited->endpoint || streq (instances [index]->endpoint, awaited->endpoint)) {
            if (instances [index]->state == SHOAL_INSTANCE_UP)
                (*up)++;
            else
                (*draining)++;
        }
}

static bool
s_has_up (shoal_view_t *view, const void *argument, char *seen, size_t seen_size)
{
    const s_awaited_t *awaited = (const s_awaited_t *) argument;
    size_t up, draining;
    s_count (view, awaited, &up, &draining);
    if (draining)
        snprintf (seen, seen_size, "%zu up and %zu draining", up, draining);
    else
        snprintf (seen, seen_size, "%zu", up);
    return up >= awaited->count;
}

static bool
s_has_at_most (shoal_view_t *view, const void *argument, char *seen, size_t seen_size)
{
    const s_awaited_t *awaited = (const s_awaited_t *) argument;
    size_t up, draining;
    s_count (view, awaited, &up, &draining);
    if (draining)
        snprintf (seen, seen_size, "%zu (%zu draining)", up + draining, draining);
    else
        snprintf (seen, seen_size, "%zu", up);
    return up + draining <= awaited->count;
}

static bool
s_has_idempotent (shoal_view_t *view, const void *argument, char *seen, size_t seen_size)
{
    const s_awaited_t *awaited = (const s_awaited_t *) argument;
    bool idempotent = shoal_view_idempotent (view, awaited->service, awaited->method);
    snprintf (seen, seen_size, "it %s", idempotent ? "idempotent" : "not idempotent");
    return idempotent;
}

int
shoal_testkit_wait_up (shoal_testkit_t *self, const char *service, size_t count,
                       int timeout_ms)
{
    s_awaited_t awaited = { service, count, NULL, NULL };
    char what [SHOAL_MAX_NAME + 80];
    snprintf (what, sizeof (what), "%zu instance%s of '%s' to be up on every node", count,
              count == 1 ? "" : "s", service);
    return s_wait_views (self, s_has_up, &awaited, timeout_ms, what);
}

int
shoal_testkit_wait_gone (shoal_testkit_t *self, const char *service, size_t count,
                         int timeout_ms)
{
    s_awaited_t awaited = { service, count, NULL, NULL };
    char what [SHOAL_MAX_NAME + 80];
    if (count == 0)
        snprintf (what, sizeof (what), "'%s' to be gone from every node", service);
    else
        snprintf (what, sizeof (what), "no more than %zu instance%s of '%s' on every node",
                  count, count == 1 ? "" : "s", service);
    return s_wait_views (self, s_has_at_most, &awaited, timeout_ms, what);
}

int
shoal_testkit_wait_idempotent (shoal_testkit_t *self, const char *service,
                               const char *method, int timeout_ms)
{
    s_awaited_t awaited = { service, 0, NULL, method };
    char what [2 * SHOAL_MAX_NAME + 80];
    snprintf (what, sizeof (what), "%s.%s to be idempotent on every node", service, method);
    return s_wait_views (self, s_has_idempotent, &awaited, timeout_ms, what);
}

//  --------------------------------------------------------------------------
//  Mocks: made by lib/shoal_mock.c, run and owned here

shoal_mock_t *
shoal_testkit_mock (shoal_testkit_t *self, size_t node, const char *service)
{
    if (s_check_node (self, "mock", node))
        return NULL;
    shoal_service_t *mocked = NULL;
    shoal_mock_t *mock = shoal_mock_new (self, service, &mocked);
    if (!mock) {
        shoal_testkit_fail (self, "mock: invalid service name '%s'",
                            service ? service : "(null)");
        return NULL;
    }
    if (shoal_testkit_spawn (self, node, &mocked, 1)) {
        shoal_service_destroy (&mocked);
        shoal_mock_destroy (&mock);
        return NULL;
    }
    zlistx_add_end (self->mocks, mock);
    //  Callable by name from every node when this returns
    s_spawned_t *spawned = (s_spawned_t *) zlistx_last (self->spawned);
    s_awaited_t awaited = { service, 1, shoal_service_endpoint (spawned->service, 0), NULL };
    char what [SHOAL_MAX_NAME + 80];
    snprintf (what, sizeof (what), "mock '%s' on node %zu to be up on every node", service,
              node);
    if (s_wait_views (self, s_has_up, &awaited, S_JOIN_TIMEOUT, what))
        return NULL;            //  the kit still owns it
    return mock;
}

//  --------------------------------------------------------------------------
//  Checking a call

//  The JSON text of VALUE, for people: one line, spaces after separators
static char *
s_show (json_t *value)
{
    char *text = value ? json_dumps (value, JSON_ENCODE_ANY) : NULL;
    return text ? text : strdup ("(nothing)");
}

//  Writes PATH, then ": ", then a description of the difference, into WHY
static bool __attribute__ ((format (printf, 4, 5)))
s_differs (char *why, size_t why_size, const char *path, const char *format, ...)
{
    if (why && why_size) {
        snprintf (why, why_size, "at %s: ", *path ? path : "the top");
        size_t used = strlen (why);
        va_list args;
        va_start (args, format);
        vsnprintf (why + used, why_size - used, format, args);
        va_end (args);
    }
    return false;
}

static bool
s_contains (json_t *expected, json_t *got, char *path, size_t path_size, char *why,
            size_t why_size)
{
    if (json_is_number (expected) && json_is_number (got)) {
        bool equal = json_is_integer (expected) && json_is_integer (got)
                         ? json_integer_value (expected) == json_integer_value (got)
                         : json_number_value (expected) == json_number_value (got);
        if (equal)
            return true;
    }
    else if (json_is_object (expected) && json_is_object (got)) {
        const char *key;
        json_t *value;
        size_t length = strlen (path);
        json_object_foreach (expected, key, value) {
            snprintf (path + length, path_size - length, ".%s", key);
            json_t *other = json_object_get (got, key);
            if (!other)
                return s_differs (why, why_size, path, "missing");
            if (!s_contains (value, other, path, path_size, why, why_size))
                return false;
        }
        path [length] = 0;
        return true;
    }
    else if (json_is_array (expected) && json_is_array (got)) {
        if (json_array_size (expected) != json_array_size (got))
            return s_differs (why, why_size, path, "expected %zu items, got %zu",
                              json_array_size (expected), json_array_size (got));
        size_t length = strlen (path);
        for (size_t index = 0; index < json_array_size (expected); index++) {
            snprintf (path + length, path_size - length, "[%zu]", index);
            if (!s_contains (json_array_get (expected, index), json_array_get (got, index),
                             path, path_size, why, why_size))
                return false;
        }
        path [length] = 0;
        return true;
    }
    else if (json_equal (expected, got))
        return true;
    char *want = s_show (expected);
    char *have = s_show (got);
    s_differs (why, why_size, path, "expected %s, got %s", want, have);
    free (want);
    free (have);
    return false;
}

//  True if GOT contains EXPECTED: every key of an expected object is there
//  with a value that matches (objects as subsets, at any depth), arrays
//  have the same length and matching items, scalars are equal (numbers by
//  value: 2 and 2.0 are equal). Else writes where and how they differ.
bool
shoal_testkit_contains (json_t *expected, json_t *got, char *why, size_t why_size)
{
    char path [512] = "";
    return s_contains (expected, got, path, sizeof (path), why, why_size);
}

int
shoal_testkit_check_call (shoal_testkit_t *self, shoal_call_t *call, shoal_status_t status,
                          const char *expected)
{
    if (!call)
        return shoal_testkit_fail (self, "check_call: no call given");
    shoal_status_t got = shoal_call_wait (call);
    if (got != status) {
        if (got == SHOAL_OK) {
            char *text = shoal_call_json (call);
            json_t *body = text ? json_loads (text, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL)
                                : NULL;
            char *shown = s_show (body);
            shoal_testkit_fail (self, "expected %s, got OK %s", shoal_status_name (status),
                                shown);
            free (shown);
            json_decref (body);
            free (text);
            return -1;
        }
        return shoal_testkit_fail (self, "expected %s, got %s: %s", shoal_status_name (status),
                                   shoal_status_name (got), shoal_call_message (call));
    }
    if (status != SHOAL_OK || !expected)
        return 0;
    json_error_t error;
    json_t *want = json_loads (expected, JSON_DECODE_ANY, &error);
    if (!want)
        return shoal_testkit_fail (self, "check_call: the expected body is not JSON: %s "
                                   "(line %d, column %d)", error.text, error.line,
                                   error.column);
    char *text = shoal_call_json (call);
    json_t *body = text ? json_loads (text, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL) : NULL;
    char why [1024];
    int rc = 0;
    if (!shoal_testkit_contains (want, body, why, sizeof (why))) {
        char *shown_want = s_show (want);
        char *shown_body = s_show (body);
        rc = shoal_testkit_fail (self, "expected OK with %s, got %s (%s)", shown_want,
                                 shown_body, why);
        free (shown_want);
        free (shown_body);
    }
    json_decref (want);
    json_decref (body);
    free (text);
    return rc;
}

//  --------------------------------------------------------------------------
//  Faults

int
shoal_testkit_kill (shoal_testkit_t *self, const char *service, size_t index)
{
    size_t seen = 0;        //  instances of SERVICE before this spawn
    for (s_spawned_t *spawned = (s_spawned_t *) zlistx_first (self->spawned); spawned;
         spawned = (s_spawned_t *) zlistx_next (self->spawned)) {
        if (!service || !streq (shoal_service_name (spawned->service), service))
            continue;
        size_t size = shoal_service_size (spawned->service);
        if (index < seen + size) {
            //  A frozen node would not hear that its instance is gone
            if (self->frozen [spawned->node])
                return shoal_testkit_fail (self, "kill: instance %zu of '%s' is on node %zu, "
                                           "which is frozen; thaw it first", index, service,
                                           spawned->node);
            if (shoal_service_crash (spawned->service, index - seen))
                return shoal_testkit_fail (self, "kill: instance %zu of '%s' is dead already",
                                           index, service);
            return 0;
        }
        seen += size;
    }
    return shoal_testkit_fail (self, "kill: no instance %zu of '%s' (the kit spawned %zu)",
                               index, service ? service : "(null)", seen);
}

//  Freezes or thaws the node and every service the kit runs on it
static void
s_freeze (shoal_testkit_t *self, size_t node, bool frozen)
{
    if (frozen) {
        for (s_spawned_t *spawned = (s_spawned_t *) zlistx_first (self->spawned); spawned;
             spawned = (s_spawned_t *) zlistx_next (self->spawned))
            if (spawned->node == node)
                shoal_service_freeze (spawned->service, true);
        shoal_node_freeze (self->nodes [node], true);
    }
    else {
        shoal_node_freeze (self->nodes [node], false);
        for (s_spawned_t *spawned = (s_spawned_t *) zlistx_first (self->spawned); spawned;
             spawned = (s_spawned_t *) zlistx_next (self->spawned))
            if (spawned->node == node)
                shoal_service_freeze (spawned->service, false);
    }
    self->frozen [node] = frozen;
}

int
shoal_testkit_freeze (shoal_testkit_t *self, size_t node)
{
    if (s_check_node (self, "freeze", node))
        return -1;
    if (self->frozen [node])
        return shoal_testkit_fail (self, "freeze: node %zu is frozen already", node);
    s_freeze (self, node, true);
    return 0;
}

int
shoal_testkit_thaw (shoal_testkit_t *self, size_t node)
{
    if (s_check_node (self, "thaw", node))
        return -1;
    if (!self->frozen [node])
        return shoal_testkit_fail (self, "thaw: node %zu is not frozen", node);
    s_freeze (self, node, false);
    return 0;
}

static int
s_check_link (shoal_testkit_t *self, const char *function, size_t a, size_t b)
{
    if (s_check_node (self, function, a) || s_check_node (self, function, b))
        return -1;
    if (a == b)
        return shoal_testkit_fail (self, "%s: a link joins two nodes; got node %zu twice",
                                   function, a);
    return 0;
}

//  A frozen node takes no change to its gossip until thawed
static int
s_check_thawed (shoal_testkit_t *self, const char *function, size_t a, size_t b)
{
    if (self->frozen [a] || self->frozen [b])
        return shoal_testkit_fail (self, "%s: node %zu is frozen; thaw it first", function,
                                   self->frozen [a] ? a : b);
    return 0;
}

int
shoal_testkit_cut (shoal_testkit_t *self, size_t a, size_t b)
{
    if (s_check_link (self, "cut", a, b) || s_check_thawed (self, "cut", a, b))
        return -1;
    shoal_node_cut (self->nodes [a], shoal_node_id (self->nodes [b]), true);
    shoal_node_cut (self->nodes [b], shoal_node_id (self->nodes [a]), true);
    return 0;
}

int
shoal_testkit_heal (shoal_testkit_t *self, size_t a, size_t b)
{
    if (s_check_link (self, "heal", a, b) || s_check_thawed (self, "heal", a, b))
        return -1;
    shoal_node_cut (self->nodes [a], shoal_node_id (self->nodes [b]), false);
    shoal_node_cut (self->nodes [b], shoal_node_id (self->nodes [a]), false);
    return 0;
}

int
shoal_testkit_lossy (shoal_testkit_t *self, size_t a, size_t b, double drop, int delay_ms)
{
    if (s_check_link (self, "lossy", a, b))
        return -1;
    if (!(drop >= 0 && drop <= 1) || delay_ms < 0)
        return shoal_testkit_fail (self, "lossy: drop is 0..1 and delay >= 0; got %g and %d",
                                   drop, delay_ms);
    shoal_node_lossy (self->nodes [a], shoal_node_id (self->nodes [b]), drop, delay_ms);
    return 0;
}

//  --------------------------------------------------------------------------
//  Selftest: a greeter service and a mocked dependency on two nodes

static void
s_hello (shoal_request_t *request, void *state)
{
    const char *name;
    if (shoal_request_get (request, "{s:s}", "name", &name))
        return;
    shoal_request_reply (request, "{s:s, s:s}", "greeting", "hello", "name", name);
}

void
shoal_testkit_test (bool verbose)
{
    if (verbose)
        printf (" * shoal_testkit: ");
    assert (shoal_testkit_new (0) == NULL);
    shoal_testkit_t *kit = shoal_testkit_new (2);
    assert (kit);
    assert (shoal_testkit_node (kit, 2) == NULL);
    assert (streq (shoal_testkit_error (kit), ""));

    //  The service under test, unchanged, on node 0
    shoal_service_t *greeter = shoal_service_new ("greeter", "1.0.0");
    shoal_service_method (greeter, "hello", s_hello, SHOAL_IDEMPOTENT, NULL);
    assert (shoal_testkit_spawn (kit, 0, &greeter, 2) == 0);
    assert (greeter == NULL);
    assert (shoal_testkit_wait_up (kit, "greeter", 2, 2000) == 0);

    //  A dependency it would have, scripted, on node 1
    shoal_mock_t *users = shoal_testkit_mock (kit, 1, "users");
    assert (users);
    shoal_mock_on (users, "find", "{\"id\": 7}", "{\"name\": \"ada\"}");

    shoal_client_t *client = shoal_testkit_client (kit, 1);
    shoal_call_t *call = shoal_client_callf (client, NULL, "users", "find", 1000, "{s:i}",
                                             "id", 7);
    assert (shoal_testkit_check_call (kit, call, SHOAL_OK, "{\"name\": \"ada\"}") == 0);
    shoal_call_destroy (&call);
    call = shoal_client_callf (client, NULL, "greeter", "hello", 1000, "{s:s}", "name", "ada");
    assert (shoal_testkit_check_call (kit, call, SHOAL_OK, "{\"greeting\": \"hello\"}") == 0);
    assert (shoal_testkit_check_call (kit, call, SHOAL_OK, "{\"greeting\": \"bye\"}") == -1);
    assert (strstr (shoal_testkit_error (kit), "at .greeting: expected \"bye\", got \"hello\""));
    shoal_call_destroy (&call);
    assert (shoal_mock_calls (users, "find") == 1);
    assert (shoal_mock_verify (users) == 0);

    //  A fault: one greeter instance crashes; the other answers alone
    assert (shoal_testkit_kill (kit, "greeter", 0) == 0);
    assert (shoal_testkit_wait_gone (kit, "greeter", 1, 2000) == 0);
    call = shoal_client_callf (client, NULL, "greeter", "hello", 1000, "{s:s}", "name", "bo");
    assert (shoal_testkit_check_call (kit, call, SHOAL_OK, "{\"name\": \"bo\"}") == 0);
    shoal_call_destroy (&call);
    assert (shoal_testkit_kill (kit, "greeter", 0) == -1);
    assert (shoal_testkit_wait_up (kit, "greeter", 2, 100) == -1);
    assert (strstr (shoal_testkit_error (kit),
                    "waited 100 ms for 2 instances of 'greeter' to be up on every node"));

    shoal_testkit_destroy (&kit);
    assert (kit == NULL);
    if (verbose)
        printf ("OK\n");
}
