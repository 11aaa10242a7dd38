/*  shoal_registry - nodes and the instances they announced.

    A node's announcement is validated field by field, then kept as msgpack
    (re-packed, so it is canonical): comparing it with the last one tells
    cheaply whether anything a caller sees has changed, and views are built
    from it. Sizes are bounded: nodes, instances per node, string lengths.   */
#include "shoal_private.h"

#define SHOAL_REGISTRY_MAX_STRING 255

typedef struct {
    char *id;
    uint64_t incarnation;
    char *endpoint;             //  its gossip endpoint
    int64_t heard;              //  when it last spoke to us
    msgpack_sbuffer announced;  //  [instances, methods], canonical msgpack
} s_node_t;

struct _shoal_registry_t {
    char *self;
    zhashx_t *nodes;            //  id -> s_node_t
};

static void
s_node_destroy (void **item)
{
    s_node_t *node = (s_node_t *) *item;
    free (node->id);
    free (node->endpoint);
    msgpack_sbuffer_destroy (&node->announced);
    free (node);
    *item = NULL;
}

shoal_registry_t *
shoal_registry_new (const char *self_id)
{
    shoal_registry_t *self = (shoal_registry_t *) zmalloc (sizeof (shoal_registry_t));
    self->self = strdup (self_id);
    self->nodes = zhashx_new ();
    zhashx_set_destructor (self->nodes, s_node_destroy);
    return self;
}

void
shoal_registry_destroy (shoal_registry_t **self_p)
{
    shoal_registry_t *self = *self_p;
    if (!self)
        return;
    zhashx_destroy (&self->nodes);
    free (self->self);
    free (self);
    *self_p = NULL;
}

//  --------------------------------------------------------------------------
//  Validation

static bool
s_is_text (const msgpack_object *object, size_t min, size_t max)
{
    return object->type == MSGPACK_OBJECT_STR && object->via.str.size >= min
        && object->via.str.size <= max;
}

static bool
s_is_name (const msgpack_object *object)
{
    return object->type == MSGPACK_OBJECT_STR
        && shoal_wire_valid_name (object->via.str.ptr, object->via.str.size);
}

static bool
s_is_uint (const msgpack_object *object, uint64_t max)
{
    return object->type == MSGPACK_OBJECT_POSITIVE_INTEGER && object->via.u64 <= max;
}

//  Printable ASCII only: these strings end up in logs, tables and JSON
static bool
s_is_printable (const msgpack_object *object, size_t min, size_t max)
{
    if (!s_is_text (object, min, max))
        return false;
    for (uint32_t index = 0; index < object->via.str.size; index++)
        if (object->via.str.ptr [index] < 0x21 || object->via.str.ptr [index] > 0x7e)
            return false;
    return true;
}

static bool
s_is_endpoint (const msgpack_object *object, size_t min)
{
    if (!s_is_printable (object, min, SHOAL_REGISTRY_MAX_STRING))
        return false;
    if (object->via.str.size == 0)
        return true;
    const char *text = object->via.str.ptr;
    size_t size = object->via.str.size;
    return (size > 6 && memcmp (text, "tcp://", 6) == 0)
        || (size > 6 && memcmp (text, "ipc://", 6) == 0)
        || (size > 9 && memcmp (text, "inproc://", 9) == 0);
}

static bool
s_valid_instance (const msgpack_object *record)
{
    if (record->type != MSGPACK_OBJECT_ARRAY || record->via.array.size != 9)
        return false;
    const msgpack_object *field = record->via.array.ptr;
    return s_is_name (&field [0]) && s_is_printable (&field [1], 0, 64)
        && s_is_name (&field [2]) && field [2].via.str.size <= 64 && s_is_endpoint (&field [3], 1)
        && s_is_uint (&field [4], SHOAL_INSTANCE_DRAINING) && s_is_uint (&field [5], UINT32_MAX)
        && s_is_uint (&field [6], UINT32_MAX) && s_is_uint (&field [7], UINT64_MAX)
        && s_is_endpoint (&field [8], 0);
}

static bool
s_valid_methods (const msgpack_object *methods)
{
    if (methods->type != MSGPACK_OBJECT_MAP)
        return false;
    size_t total = 0;
    for (uint32_t index = 0; index < methods->via.map.size; index++) {
        const msgpack_object_kv *entry = &methods->via.map.ptr [index];
        if (!s_is_name (&entry->key) || entry->val.type != MSGPACK_OBJECT_ARRAY)
            return false;
        total += entry->val.via.array.size;
        if (total > SHOAL_REGISTRY_MAX_METHODS)
            return false;
        for (uint32_t name = 0; name < entry->val.via.array.size; name++)
            if (!s_is_name (&entry->val.via.array.ptr [name]))
                return false;
    }
    return true;
}

//  [endpoint, [[id, delivery, service, pattern], ...]]
static bool
s_valid_events (const msgpack_object *events)
{
    if (events->type != MSGPACK_OBJECT_ARRAY || events->via.array.size != 2
        || !s_is_endpoint (&events->via.array.ptr [0], 0))
        return false;
    const msgpack_object *list = &events->via.array.ptr [1];
    if (list->type != MSGPACK_OBJECT_ARRAY
        || list->via.array.size > SHOAL_REGISTRY_MAX_SUBSCRIPTIONS)
        return false;
    for (uint32_t index = 0; index < list->via.array.size; index++) {
        const msgpack_object *record = &list->via.array.ptr [index];
        if (record->type != MSGPACK_OBJECT_ARRAY || record->via.array.size != 4)
            return false;
        const msgpack_object *field = record->via.array.ptr;
        char pattern [SHOAL_MAX_TOPIC + 1];
        if (!s_is_name (&field [0]) || field [0].via.str.size > 64
            || !s_is_uint (&field [1], SHOAL_BALANCED)
            || !(s_is_name (&field [2]) || s_is_text (&field [2], 0, 0))
            || !s_is_text (&field [3], 1, SHOAL_MAX_TOPIC))
            return false;
        memcpy (pattern, field [3].via.str.ptr, field [3].via.str.size);
        pattern [field [3].via.str.size] = 0;
        if (!shoal_pattern_valid (pattern))
            return false;
    }
    return true;
}

int
shoal_registry_update (shoal_registry_t *self, const char *node_id, uint64_t incarnation,
                       const char *endpoint, const msgpack_object *instances,
                       const msgpack_object *methods, const msgpack_object *events,
                       int64_t now, char *error, size_t error_size)
{
    if (instances->type != MSGPACK_OBJECT_ARRAY
        || instances->via.array.size > SHOAL_REGISTRY_MAX_INSTANCES) {
        snprintf (error, error_size, "instances must be an array of at most %d",
                  SHOAL_REGISTRY_MAX_INSTANCES);
        return -1;
    }
    for (uint32_t index = 0; index < instances->via.array.size; index++)
        if (!s_valid_instance (&instances->via.array.ptr [index])) {
            snprintf (error, error_size, "instance %u is malformed", index);
            return -1;
        }
    if (!s_valid_methods (methods)) {
        snprintf (error, error_size, "methods are malformed or too many");
        return -1;
    }
    if (events && !s_valid_events (events)) {
        snprintf (error, error_size, "events are malformed or too many");
        return -1;
    }
    s_node_t *node = (s_node_t *) zhashx_lookup (self->nodes, node_id);
    if (node && incarnation < node->incarnation) {
        snprintf (error, error_size, "node %s: incarnation %" PRIu64 " is older than %" PRIu64,
                  node_id, incarnation, node->incarnation);
        return -1;
    }
    if (!node && zhashx_size (self->nodes) >= SHOAL_REGISTRY_MAX_NODES) {
        snprintf (error, error_size, "registry full (%d nodes)", SHOAL_REGISTRY_MAX_NODES);
        return -1;
    }
    msgpack_sbuffer announced;
    msgpack_sbuffer_init (&announced);
    msgpack_packer packer;
    msgpack_packer_init (&packer, &announced, msgpack_sbuffer_write);
    msgpack_pack_array (&packer, events ? 3 : 2);
    msgpack_pack_object (&packer, *instances);
    msgpack_pack_object (&packer, *methods);
    if (events)
        msgpack_pack_object (&packer, *events);

    int changed = 1;
    if (!node) {
        node = (s_node_t *) zmalloc (sizeof (s_node_t));
        node->id = strdup (node_id);
        zhashx_insert (self->nodes, node_id, node);
    }
    else {
        changed = node->incarnation != incarnation || !streq (node->endpoint, endpoint)
               || node->announced.size != announced.size
               || memcmp (node->announced.data, announced.data, announced.size) != 0;
        msgpack_sbuffer_destroy (&node->announced);
        free (node->endpoint);
    }
    node->incarnation = incarnation;
    node->endpoint = strdup (endpoint);
    node->announced = announced;        //  takes the buffer
    node->heard = now;
    return changed;
}

size_t
shoal_registry_expire (shoal_registry_t *self, int64_t now, int64_t timeout, zlistx_t *gone)
{
    zlistx_t *expired = zlistx_new ();
    for (s_node_t *node = (s_node_t *) zhashx_first (self->nodes); node;
         node = (s_node_t *) zhashx_next (self->nodes))
        if (!streq (node->id, self->self) && now - node->heard > timeout)
            zlistx_add_end (expired, node->id);
    size_t count = zlistx_size (expired);
    for (char *id = (char *) zlistx_first (expired); id; id = (char *) zlistx_next (expired)) {
        if (gone)
            zlistx_add_end (gone, strdup (id));
        zhashx_delete (self->nodes, id);
    }
    zlistx_destroy (&expired);
    return count;
}

bool
shoal_registry_remove (shoal_registry_t *self, const char *node)
{
    if (!zhashx_lookup (self->nodes, node))
        return false;
    zhashx_delete (self->nodes, node);
    return true;
}

const char *
shoal_registry_endpoint (shoal_registry_t *self, const char *id)
{
    s_node_t *node = (s_node_t *) zhashx_lookup (self->nodes, id);
    return node ? node->endpoint : NULL;
}

bool
shoal_registry_knows (shoal_registry_t *self, const char *node)
{
    return zhashx_lookup (self->nodes, node) != NULL;
}

size_t
shoal_registry_size (shoal_registry_t *self)
{
    return zhashx_size (self->nodes);
}

void
shoal_registry_endpoints (shoal_registry_t *self, zlistx_t *endpoints)
{
    for (s_node_t *node = (s_node_t *) zhashx_first (self->nodes); node;
         node = (s_node_t *) zhashx_next (self->nodes))
        if (!streq (node->id, self->self))
            zlistx_add_end (endpoints, node->endpoint);
}

//  --------------------------------------------------------------------------
//  Views

static char *
s_text (const msgpack_object *object, char *buffer, size_t size)
{
    snprintf (buffer, size, "%.*s", (int) object->via.str.size,
              object->via.str.size ? object->via.str.ptr : "");
    return buffer;
}

static void
s_view_add_node (shoal_view_t *view, s_node_t *node, bool local, msgpack_zone *zone)
{
    msgpack_object announced;
    size_t offset = 0;
    msgpack_zone_clear (zone);
    if (msgpack_unpack (node->announced.data, node->announced.size, &offset, zone, &announced)
        != MSGPACK_UNPACK_SUCCESS)
        return;                         //  cannot happen: we packed it
    const msgpack_object *instances = &announced.via.array.ptr [0];
    const msgpack_object *methods = &announced.via.array.ptr [1];
    for (uint32_t index = 0; index < instances->via.array.size; index++) {
        const msgpack_object *field = instances->via.array.ptr [index].via.array.ptr;
        char service [SHOAL_MAX_NAME + 1], version [65], instance [65], endpoint [256],
            inproc [256];
        shoal_instance_info_t info = {
            .service = s_text (&field [0], service, sizeof (service)),
            .version = s_text (&field [1], version, sizeof (version)),
            .instance = s_text (&field [2], instance, sizeof (instance)),
            .node = node->id,
            .endpoint = s_text (&field [3], endpoint, sizeof (endpoint)),
            .state = (shoal_instance_state_t) field [4].via.u64,
            .load = (uint32_t) field [5].via.u64,
            .latency_us = (uint32_t) field [6].via.u64,
            .calls = field [7].via.u64,
            .local = local,
        };
        //  An inproc endpoint is only reachable from its own process
        if (local && field [8].via.str.size)
            info.inproc = s_text (&field [8], inproc, sizeof (inproc));
        shoal_view_add (view, &info);
    }
    for (uint32_t index = 0; index < methods->via.map.size; index++) {
        const msgpack_object_kv *entry = &methods->via.map.ptr [index];
        char service [SHOAL_MAX_NAME + 1], method [SHOAL_MAX_NAME + 1];
        s_text (&entry->key, service, sizeof (service));
        for (uint32_t name = 0; name < entry->val.via.array.size; name++)
            shoal_view_add_idempotent (view, service,
                                       s_text (&entry->val.via.array.ptr [name], method,
                                               sizeof (method)));
    }
    if (announced.via.array.size < 3)
        return;
    const msgpack_object *events = &announced.via.array.ptr [2];
    char endpoint [256];
    s_text (&events->via.array.ptr [0], endpoint, sizeof (endpoint));
    if (*endpoint)
        shoal_view_add_publisher (view, node->id, endpoint);
    const msgpack_object *list = &events->via.array.ptr [1];
    for (uint32_t index = 0; index < list->via.array.size; index++) {
        const msgpack_object *field = list->via.array.ptr [index].via.array.ptr;
        char id [65], service [SHOAL_MAX_NAME + 1], pattern [SHOAL_MAX_TOPIC + 1];
        shoal_subscription_info_t info = {
            .id = s_text (&field [0], id, sizeof (id)),
            .node = node->id,
            .delivery = (shoal_delivery_t) field [1].via.u64,
            .service = s_text (&field [2], service, sizeof (service)),
            .pattern = s_text (&field [3], pattern, sizeof (pattern)),
        };
        shoal_view_add_subscription (view, &info);
    }
}

shoal_view_t *
shoal_registry_view (shoal_registry_t *self)
{
    shoal_view_t *view = shoal_view_new ();
    msgpack_zone zone;
    msgpack_zone_init (&zone, 4096);
    for (s_node_t *node = (s_node_t *) zhashx_first (self->nodes); node;
         node = (s_node_t *) zhashx_next (self->nodes))
        s_view_add_node (view, node, streq (node->id, self->self), &zone);
    msgpack_zone_destroy (&zone);
    shoal_view_seal (view, zhashx_size (self->nodes));
    return view;
}

//  --------------------------------------------------------------------------
//  Selftest

//  Unpacks an announcement written as a body format, for the test
static void
s_announce (shoal_registry_t *registry, const char *node, uint64_t incarnation,
            shoal_body_t *instances, shoal_body_t *methods, int64_t now, int expected)
{
    msgpack_zone zone;
    msgpack_zone_init (&zone, 1024);
    msgpack_object instances_object, methods_object;
    size_t offset = 0;
    msgpack_unpack (shoal_body_data (instances), shoal_body_size (instances), &offset, &zone,
                    &instances_object);
    offset = 0;
    msgpack_unpack (shoal_body_data (methods), shoal_body_size (methods), &offset, &zone,
                    &methods_object);
    char error [128];
    int rc = shoal_registry_update (registry, node, incarnation, "tcp://127.0.0.1:1",
                                    &instances_object, &methods_object, NULL, now, error,
                                    sizeof (error));
    assert (rc == expected);
    msgpack_zone_destroy (&zone);
}

//  Applies EVENTS (a body format's result) as node "ev"'s announcement
static int
s_announce_events (shoal_registry_t *registry, shoal_body_t *instances, shoal_body_t *methods,
                   shoal_body_t *events)
{
    msgpack_zone zone;
    msgpack_zone_init (&zone, 1024);
    msgpack_object objects [3];
    shoal_body_t *bodies [3] = { instances, methods, events };
    for (int index = 0; index < 3; index++) {
        size_t offset = 0;
        msgpack_unpack (shoal_body_data (bodies [index]), shoal_body_size (bodies [index]),
                        &offset, &zone, &objects [index]);
    }
    char error [128];
    int rc = shoal_registry_update (registry, "ev", 1, "tcp://127.0.0.1:2", &objects [0],
                                    &objects [1], &objects [2], 3000, error, sizeof (error));
    msgpack_zone_destroy (&zone);
    return rc;
}

//  The events part of an announcement: the publisher and subscriptions in
//  views, and every malformed shape refused
static void
s_test_events (shoal_registry_t *registry, shoal_body_t *instances, shoal_body_t *methods)
{
    shoal_body_t *events = shoal_body_pack (
        "[s, [[s,i,s,s], [s,i,s,s]]]", "tcp://127.0.0.1:9000", "S1", 0, "", "order.**",
        "cart", 1, "cart", "order.placed");
    assert (s_announce_events (registry, instances, methods, events) == 1);
    shoal_body_destroy (&events);
    shoal_view_t *view = shoal_registry_view (registry);
    assert (shoal_view_publishers (view) == 1);
    const char *node;
    assert (streq (shoal_view_publisher_at (view, 0, &node), "tcp://127.0.0.1:9000"));
    assert (streq (node, "ev") && shoal_view_publisher_at (view, 1, NULL) == NULL);
    assert (shoal_view_subscriptions (view) == 2);
    //  Sorted by node, then id: "S1" before "cart"
    const shoal_subscription_info_t *first = shoal_view_subscription_at (view, 0);
    const shoal_subscription_info_t *second = shoal_view_subscription_at (view, 1);
    assert (streq (first->id, "S1") && first->delivery == SHOAL_BROADCAST
            && streq (first->service, "") && streq (first->pattern, "order.**"));
    assert (streq (second->service, "cart") && second->delivery == SHOAL_BALANCED);
    assert (shoal_view_subscription_at (view, 2) == NULL);
    shoal_view_destroy (&view);
    const char *bad [] = {
        "[s]",                              //  too short
        "[i, []]",                          //  endpoint not a string
        "[s, [[s,i,s]]]",                   //  subscription too short
        "[s, [[s,i,s,s]]]",                 //  delivery 7
        "[s, [[s,i,s,s]]]",                 //  pattern malformed
    };
    shoal_body_t *shapes [] = {
        shoal_body_pack (bad [0], "tcp://127.0.0.1:1"),
        shoal_body_pack (bad [1], 5),
        shoal_body_pack (bad [2], "tcp://127.0.0.1:1", "S", 0, ""),
        shoal_body_pack (bad [3], "tcp://127.0.0.1:1", "S", 7, "", "a"),
        shoal_body_pack (bad [4], "tcp://127.0.0.1:1", "S", 0, "", "ord*"),
    };
    for (size_t index = 0; index < sizeof (shapes) / sizeof (shapes [0]); index++) {
        assert (s_announce_events (registry, instances, methods, shapes [index]) == -1);
        shoal_body_destroy (&shapes [index]);
    }
    assert (shoal_registry_remove (registry, "ev"));
}

void
shoal_registry_test (bool verbose)
{
    if (verbose)
        printf (" * shoal_registry: ");
    shoal_registry_t *registry = shoal_registry_new ("me");
    shoal_body_t *mine = shoal_body_pack (
        "[[s,s,s,s,i,i,i,i,s]]", "cart", "1.0", "c1", "tcp://127.0.0.1:7000", 0, 0, 0, 0,
        "inproc://shoal/cart/c1");
    shoal_body_t *theirs = shoal_body_pack (
        "[[s,s,s,s,i,i,i,i,s], [s,s,s,s,i,i,i,i,s]]", "cart", "1.0", "c2",
        "tcp://127.0.0.1:7001", 0, 3, 120, 10, "inproc://shoal/cart/c2", "users", "2.0",
        "u1", "tcp://127.0.0.1:7002", 1, 0, 0, 0, "");
    shoal_body_t *methods = shoal_body_pack ("{s:[s]}", "cart", "get");
    shoal_body_t *none = shoal_body_pack ("{}");

    s_announce (registry, "me", 1, mine, methods, 1000, 1);
    s_announce (registry, "peer", 7, theirs, none, 1000, 1);
    //  The same again changes nothing a caller sees; an older self is refused
    s_announce (registry, "peer", 7, theirs, none, 1100, 0);
    s_announce (registry, "peer", 6, theirs, none, 1100, -1);

    shoal_view_t *view = shoal_registry_view (registry);
    assert (shoal_view_size (view) == 3 && shoal_view_nodes (view) == 2);
    size_t count;
    const shoal_instance_info_t *const *carts = shoal_view_service (view, "cart", &count);
    assert (count == 2);
    //  Sorted by node: "me" before "peer"; only the local one keeps inproc
    assert (streq (carts [0]->instance, "c1") && carts [0]->local && carts [0]->inproc);
    assert (streq (carts [1]->instance, "c2") && !carts [1]->local && !carts [1]->inproc);
    assert (carts [1]->load == 3 && carts [1]->latency_us == 120 && carts [1]->calls == 10);
    const shoal_instance_info_t *const *users = shoal_view_service (view, "users", &count);
    assert (count == 1 && users [0]->state == SHOAL_INSTANCE_DRAINING);
    assert (shoal_view_service (view, "nope", &count) == NULL && count == 0);
    assert (shoal_view_idempotent (view, "cart", "get"));
    assert (!shoal_view_idempotent (view, "cart", "add"));

    //  A view outlives changes to the registry, and its references
    shoal_view_t *held = shoal_view_ref (view);
    shoal_view_destroy (&view);
    assert (view == NULL);
    zlistx_t *gone = zlistx_new ();
    zlistx_set_destructor (gone, (zlistx_destructor_fn *) zstr_free);
    assert (shoal_registry_expire (registry, 2000, 500, gone) == 1);
    assert (streq ((char *) zlistx_first (gone), "peer"));
    assert (shoal_registry_knows (registry, "me") && !shoal_registry_knows (registry, "peer"));
    assert (shoal_view_size (held) == 3);
    shoal_view_destroy (&held);

    //  Malformed announcements are refused whole
    shoal_body_t *bad = shoal_body_pack ("[[s,s]]", "cart", "1.0");
    s_announce (registry, "other", 1, bad, none, 2000, -1);
    shoal_body_destroy (&bad);
    bad = shoal_body_pack ("[[s,s,s,s,i,i,i,i,s]]", "bad name", "1", "x", "tcp://a:1", 0, 0,
                           0, 0, "");
    s_announce (registry, "other", 1, bad, none, 2000, -1);
    shoal_body_destroy (&bad);
    bad = shoal_body_pack ("{s:[i]}", "cart", 5);
    s_announce (registry, "other", 1, mine, bad, 2000, -1);
    shoal_body_destroy (&bad);
    assert (!shoal_registry_knows (registry, "other"));
    s_test_events (registry, mine, none);
    assert (shoal_registry_remove (registry, "me"));
    assert (shoal_registry_size (registry) == 0);

    zlistx_destroy (&gone);
    shoal_body_destroy (&mine);
    shoal_body_destroy (&theirs);
    shoal_body_destroy (&methods);
    shoal_body_destroy (&none);
    shoal_registry_destroy (&registry);
    if (verbose)
        printf ("OK\n");
}
