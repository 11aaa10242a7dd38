/*  shoal_balancer - instance choice: least in flight by the power of two
    random choices (the default: near the best choice, without herding all
    callers onto the one instance that looked idlest), round robin, random,
    and rendezvous hashing, which is consistent: a key keeps its instance
    while membership is stable, and only the keys of an instance that leaves
    move. Each instance has a circuit breaker.                               */
#include "shoal_private.h"

typedef struct {
    size_t in_flight;
    int failures;               //  consecutive
    int64_t open_until;         //  breaker open until then (0: closed)
    bool probing;               //  half open: one call let through
} s_instance_t;

struct _shoal_balancer_t {
    zhashx_t *instances;        //  instance id -> s_instance_t
    zhashx_t *turns;            //  service -> round-robin counter
    uint64_t random;            //  xorshift state
};

shoal_balancer_t *
shoal_balancer_new (void)
{
    shoal_balancer_t *self = (shoal_balancer_t *) zmalloc (sizeof (shoal_balancer_t));
    self->instances = zhashx_new ();
    zhashx_set_destructor (self->instances, (zhashx_destructor_fn *) zstr_free);
    self->turns = zhashx_new ();
    zhashx_set_destructor (self->turns, (zhashx_destructor_fn *) zstr_free);
    self->random = (uint64_t) zclock_usecs () ^ (uint64_t) (uintptr_t) self;
    if (!self->random)
        self->random = 88172645463325252ULL;
    return self;
}

void
shoal_balancer_destroy (shoal_balancer_t **self_p)
{
    shoal_balancer_t *self = *self_p;
    if (!self)
        return;
    zhashx_destroy (&self->instances);
    zhashx_destroy (&self->turns);
    free (self);
    *self_p = NULL;
}

static uint64_t
s_random (shoal_balancer_t *self)
{
    self->random ^= self->random << 13;
    self->random ^= self->random >> 7;
    self->random ^= self->random << 17;
    return self->random;
}

static s_instance_t *
s_instance (shoal_balancer_t *self, const char *id)
{
    s_instance_t *instance = (s_instance_t *) zhashx_lookup (self->instances, id);
    if (!instance) {
        instance = (s_instance_t *) zmalloc (sizeof (s_instance_t));
        zhashx_insert (self->instances, id, instance);
    }
    return instance;
}

//  Whether the breaker lets a call through now
static bool
s_admits (s_instance_t *instance, int64_t now)
{
    if (instance->open_until == 0)
        return true;
    return now >= instance->open_until && !instance->probing;
}

static uint64_t
s_hash (const char *key, const char *instance)
{
    uint64_t hash = 14695981039346656037ULL;     //  FNV-1a over key, '/', id
    for (const char *c = key; *c; c++)
        hash = (hash ^ (unsigned char) *c) * 1099511628211ULL;
    hash = (hash ^ '/') * 1099511628211ULL;
    for (const char *c = instance; *c; c++)
        hash = (hash ^ (unsigned char) *c) * 1099511628211ULL;
    hash ^= hash >> 33;                           //  finalise: spread the bits
    hash *= 0xff51afd7ed558ccdULL;
    hash ^= hash >> 33;
    return hash;
}

static bool
s_tried (zlistx_t *tried, const char *id)
{
    if (tried)
        for (char *other = (char *) zlistx_first (tried); other;
             other = (char *) zlistx_next (tried))
            if (streq (other, id))
                return true;
    return false;
}

const shoal_instance_info_t *
shoal_balancer_pick (shoal_balancer_t *self, shoal_view_t *view, const char *service,
                     shoal_route_t route, const char *key, bool prefer_local, zlistx_t *tried,
                     const char *excluded, int64_t now, shoal_status_t *status)
{
    size_t count;
    const shoal_instance_info_t *const *all = shoal_view_service (view, service, &count);
    const shoal_instance_info_t *candidates [SHOAL_REGISTRY_MAX_INSTANCES];
    size_t size = 0, up = 0, local = 0;
    for (size_t index = 0; index < count && size < SHOAL_REGISTRY_MAX_INSTANCES; index++) {
        const shoal_instance_info_t *info = all [index];
        if (info->state != SHOAL_INSTANCE_UP || s_tried (tried, info->instance)
            || (excluded && streq (info->instance, excluded)))
            continue;
        up++;
        s_instance_t *instance = (s_instance_t *) zhashx_lookup (self->instances, info->instance);
        if (instance && (!s_admits (instance, now) || instance->in_flight >= SHOAL_MAX_IN_FLIGHT))
            continue;
        candidates [size++] = info;
        local += info->local;
    }
    if (size == 0) {
        *status = up ? SHOAL_RESOURCE_EXHAUSTED : SHOAL_UNAVAILABLE;
        return NULL;
    }
    //  Keep only the local ones, when asked and there are some
    if (prefer_local && local && local < size) {
        size_t kept = 0;
        for (size_t index = 0; index < size; index++)
            if (candidates [index]->local)
                candidates [kept++] = candidates [index];
        size = kept;
    }
    const shoal_instance_info_t *chosen = candidates [0];
    if (route == SHOAL_ROUTE_HASH && key) {
        uint64_t best = 0;
        for (size_t index = 0; index < size; index++) {
            uint64_t score = s_hash (key, candidates [index]->instance);
            if (index == 0 || score > best) {
                best = score;
                chosen = candidates [index];
            }
        }
    }
    else if (route == SHOAL_ROUTE_ROUND_ROBIN) {
        uint64_t *turn = (uint64_t *) zhashx_lookup (self->turns, service);
        if (!turn) {
            turn = (uint64_t *) zmalloc (sizeof (uint64_t));
            zhashx_insert (self->turns, service, turn);
        }
        chosen = candidates [(*turn)++ % size];
    }
    else if (route == SHOAL_ROUTE_RANDOM)
        chosen = candidates [s_random (self) % size];
    else if (size > 1) {
        //  Two at random; the one with fewer calls in flight (ours, plus the
        //  instance's own count of what it is working on)
        size_t first = s_random (self) % size;
        size_t second = (first + 1 + s_random (self) % (size - 1)) % size;
        const shoal_instance_info_t *a = candidates [first], *b = candidates [second];
        size_t load_a = shoal_balancer_in_flight (self, a->instance) + a->load;
        size_t load_b = shoal_balancer_in_flight (self, b->instance) + b->load;
        chosen = load_b < load_a ? b : a;
    }
    s_instance_t *instance = s_instance (self, chosen->instance);
    if (instance->open_until)
        instance->probing = true;       //  half open: this is the probe
    return chosen;
}

void
shoal_balancer_sent (shoal_balancer_t *self, const char *instance)
{
    s_instance (self, instance)->in_flight++;
}

void
shoal_balancer_done (shoal_balancer_t *self, const char *id, bool failed, int64_t now)
{
    s_instance_t *instance = s_instance (self, id);
    if (instance->in_flight)
        instance->in_flight--;
    instance->probing = false;
    if (!failed) {
        instance->failures = 0;
        instance->open_until = 0;
    }
    else if (++instance->failures >= SHOAL_BREAKER_FAILURES)
        instance->open_until = now + SHOAL_BREAKER_OPEN;
}

size_t
shoal_balancer_in_flight (shoal_balancer_t *self, const char *id)
{
    s_instance_t *instance = (s_instance_t *) zhashx_lookup (self->instances, id);
    return instance ? instance->in_flight : 0;
}

void
shoal_balancer_prune (shoal_balancer_t *self, shoal_view_t *view)
{
    zlistx_t *gone = zlistx_new ();
    for (void *item = zhashx_first (self->instances); item; item = zhashx_next (self->instances)) {
        const char *id = (const char *) zhashx_cursor (self->instances);
        bool present = false;
        for (size_t index = 0; index < shoal_view_size (view) && !present; index++)
            present = streq (shoal_view_at (view, index)->instance, id);
        if (!present)
            zlistx_add_end (gone, (void *) id);
    }
    for (char *id = (char *) zlistx_first (gone); id; id = (char *) zlistx_next (gone))
        zhashx_delete (self->instances, id);
    zlistx_destroy (&gone);
}

//  --------------------------------------------------------------------------

static shoal_view_t *
s_view (int instances)
{
    shoal_view_t *view = shoal_view_new ();
    for (int index = 0; index < instances; index++) {
        char id [8], endpoint [32];
        snprintf (id, sizeof (id), "i%d", index);
        snprintf (endpoint, sizeof (endpoint), "tcp://127.0.0.1:%d", 7000 + index);
        shoal_instance_info_t info = {
            .service = "cart", .version = "1", .instance = id, .node = "n",
            .endpoint = endpoint, .local = index == 2,
        };
        shoal_view_add (view, &info);
    }
    shoal_view_seal (view, 1);
    return view;
}

void
shoal_balancer_test (bool verbose)
{
    if (verbose)
        printf (" * shoal_balancer: ");
    shoal_balancer_t *balancer = shoal_balancer_new ();
    shoal_view_t *view = s_view (4);
    shoal_status_t status;
    const shoal_instance_info_t *info;

    //  Round robin visits each in turn
    zhashx_t *seen = zhashx_new ();
    for (int count = 0; count < 4; count++) {
        info = shoal_balancer_pick (balancer, view, "cart", SHOAL_ROUTE_ROUND_ROBIN, NULL,
                                    false, NULL, NULL, 0, &status);
        zhashx_update (seen, info->instance, (void *) 1);
    }
    assert (zhashx_size (seen) == 4);
    zhashx_destroy (&seen);

    //  A key keeps its instance; without that instance it moves, and only it
    const char *home = shoal_balancer_pick (balancer, view, "cart", SHOAL_ROUTE_HASH,
                                            "cart-42", false, NULL, NULL, 0, &status)->instance;
    for (int count = 0; count < 10; count++)
        assert (streq (shoal_balancer_pick (balancer, view, "cart", SHOAL_ROUTE_HASH,
                                            "cart-42", false, NULL, NULL, 0, &status)
                           ->instance,
                       home));
    zlistx_t *tried = zlistx_new ();
    zlistx_add_end (tried, (void *) home);
    info = shoal_balancer_pick (balancer, view, "cart", SHOAL_ROUTE_HASH, "cart-42", false,
                                tried, NULL, 0, &status);
    assert (!streq (info->instance, home));
    zlistx_destroy (&tried);

    //  Least in flight: with calls in flight on all but one, that one wins
    for (int index = 0; index < 4; index++)
        if (index != 1)
            for (int count = 0; count < 10; count++)
                shoal_balancer_sent (balancer, shoal_view_at (view, index)->instance);
    int idle = 0;
    for (int count = 0; count < 100; count++)
        idle += streq (shoal_balancer_pick (balancer, view, "cart", SHOAL_ROUTE_LEAST_LOADED,
                                            NULL, false, NULL, NULL, 0, &status)
                           ->instance,
                       "i1");
    //  It wins whenever it is one of the two drawn: about half the time
    assert (idle > 30);

    //  Prefer local: the local one, whatever the load
    info = shoal_balancer_pick (balancer, view, "cart", SHOAL_ROUTE_RANDOM, NULL, true, NULL,
                                NULL, 0, &status);
    assert (info->local && streq (info->instance, "i2"));

    //  Five failures open the breaker; after it, one probe; success closes
    for (int count = 0; count < SHOAL_BREAKER_FAILURES; count++)
        shoal_balancer_done (balancer, "i3", true, 1000);
    for (int count = 0; count < 50; count++)
        assert (!streq (shoal_balancer_pick (balancer, view, "cart", SHOAL_ROUTE_RANDOM, NULL,
                                             false, NULL, NULL, 1500, &status)
                            ->instance,
                        "i3"));
    shoal_view_t *single = shoal_view_new ();
    shoal_instance_info_t lone = { .service = "cart", .version = "1", .instance = "i3",
                                   .node = "n", .endpoint = "tcp://127.0.0.1:7003" };
    shoal_view_add (single, &lone);
    shoal_view_seal (single, 1);
    assert (shoal_balancer_pick (balancer, single, "cart", SHOAL_ROUTE_RANDOM, NULL, false,
                                 NULL, NULL, 1500, &status) == NULL);
    assert (status == SHOAL_RESOURCE_EXHAUSTED);
    assert (shoal_balancer_pick (balancer, single, "cart", SHOAL_ROUTE_RANDOM, NULL, false,
                                 NULL, NULL, 2100, &status));       //  the probe
    assert (shoal_balancer_pick (balancer, single, "cart", SHOAL_ROUTE_RANDOM, NULL, false,
                                 NULL, NULL, 2100, &status) == NULL);
    shoal_balancer_done (balancer, "i3", false, 2200);
    assert (shoal_balancer_pick (balancer, single, "cart", SHOAL_ROUTE_RANDOM, NULL, false,
                                 NULL, NULL, 2300, &status));

    //  An instance with SHOAL_MAX_IN_FLIGHT calls of this client takes no
    //  more: the next goes elsewhere, or ends RESOURCE_EXHAUSTED at once
    shoal_balancer_t *full = shoal_balancer_new ();
    for (int count = 0; count < SHOAL_MAX_IN_FLIGHT; count++)
        shoal_balancer_sent (full, "i3");
    assert (shoal_balancer_pick (full, single, "cart", SHOAL_ROUTE_RANDOM, NULL, false, NULL,
                                 NULL, 0, &status) == NULL);
    assert (status == SHOAL_RESOURCE_EXHAUSTED);
    shoal_balancer_done (full, "i3", false, 0);
    assert (shoal_balancer_pick (full, single, "cart", SHOAL_ROUTE_RANDOM, NULL, false, NULL,
                                 NULL, 0, &status));
    shoal_balancer_destroy (&full);
    shoal_view_destroy (&single);

    //  Nothing up: UNAVAILABLE
    assert (shoal_balancer_pick (balancer, view, "users", SHOAL_ROUTE_RANDOM, NULL, false,
                                 NULL, NULL, 0, &status) == NULL);
    assert (status == SHOAL_UNAVAILABLE);
    shoal_balancer_prune (balancer, view);
    shoal_view_destroy (&view);
    shoal_balancer_destroy (&balancer);
    if (verbose)
        printf ("OK\n");
}
