/*  shoal_view - an immutable snapshot of the registry, shared by reference
    count between the node that makes it and the threads that read it.

    Lookups are binary searches over sorted arrays, not zhashx: a zhashx
    lookup writes a cached index into the table, so two threads looking up
    at once would race. Nothing here is written after the view is sealed.   */
#include "shoal_private.h"

struct _shoal_view_t {
    atomic_int references;
    size_t size;
    size_t capacity;
    shoal_instance_info_t *instances;   //  sorted once sealed
    const shoal_instance_info_t **pointers;  //  the same, as pointers, in order
    zlistx_t *idempotent_list;          //  "service\0method", while building
    char **idempotent;                  //  the same, sorted, once sealed
    size_t idempotent_size;
    size_t nodes;
    shoal_subscription_info_t *subscriptions;
    size_t subscriptions_size;
    char **publishers;                  //  node, endpoint, node, endpoint...
    size_t publishers_size;             //  pairs
};

shoal_view_t *
shoal_view_new (void)
{
    shoal_view_t *self = (shoal_view_t *) zmalloc (sizeof (shoal_view_t));
    atomic_init (&self->references, 1);
    self->idempotent_list = zlistx_new ();
    zlistx_set_destructor (self->idempotent_list, (zlistx_destructor_fn *) zstr_free);
    return self;
}

shoal_view_t *
shoal_view_ref (shoal_view_t *self)
{
    atomic_fetch_add (&self->references, 1);
    return self;
}

void
shoal_view_destroy (shoal_view_t **self_p)
{
    shoal_view_t *self = *self_p;
    if (!self)
        return;
    *self_p = NULL;
    if (atomic_fetch_sub (&self->references, 1) > 1)
        return;
    for (size_t index = 0; index < self->size; index++) {
        shoal_instance_info_t *info = &self->instances [index];
        free ((char *) info->service);
        free ((char *) info->version);
        free ((char *) info->instance);
        free ((char *) info->node);
        free ((char *) info->endpoint);
        free ((char *) info->inproc);
    }
    free (self->instances);
    free (self->pointers);
    for (size_t index = 0; index < self->idempotent_size; index++)
        free (self->idempotent [index]);
    free (self->idempotent);
    zlistx_destroy (&self->idempotent_list);
    for (size_t index = 0; index < self->subscriptions_size; index++) {
        shoal_subscription_info_t *info = &self->subscriptions [index];
        free ((char *) info->id);
        free ((char *) info->node);
        free ((char *) info->service);
        free ((char *) info->pattern);
    }
    free (self->subscriptions);
    for (size_t index = 0; index < 2 * self->publishers_size; index++)
        free (self->publishers [index]);
    free (self->publishers);
    free (self);
}

//  Building, before the view is sealed and shared

void
shoal_view_add (shoal_view_t *self, const shoal_instance_info_t *info)
{
    if (self->size == self->capacity) {
        self->capacity = self->capacity ? self->capacity * 2 : 16;
        self->instances = (shoal_instance_info_t *) realloc (
            self->instances, self->capacity * sizeof (shoal_instance_info_t));
    }
    shoal_instance_info_t *copy = &self->instances [self->size++];
    *copy = *info;
    copy->service = strdup (info->service);
    copy->version = strdup (info->version);
    copy->instance = strdup (info->instance);
    copy->node = strdup (info->node);
    copy->endpoint = strdup (info->endpoint);
    copy->inproc = info->inproc ? strdup (info->inproc) : NULL;
}

void
shoal_view_add_idempotent (shoal_view_t *self, const char *service, const char *method)
{
    //  Kept as service, NUL, method: compared field by field, so a lookup
    //  formats nothing
    size_t service_size = strlen (service) + 1, method_size = strlen (method) + 1;
    char *key = (char *) malloc (service_size + method_size);
    memcpy (key, service, service_size);
    memcpy (key + service_size, method, method_size);
    zlistx_add_end (self->idempotent_list, key);
}

void
shoal_view_add_subscription (shoal_view_t *self, const shoal_subscription_info_t *info)
{
    self->subscriptions = (shoal_subscription_info_t *) realloc (
        self->subscriptions, (self->subscriptions_size + 1) * sizeof (*info));
    shoal_subscription_info_t *copy = &self->subscriptions [self->subscriptions_size++];
    *copy = *info;
    copy->id = strdup (info->id);
    copy->node = strdup (info->node);
    copy->service = strdup (info->service);
    copy->pattern = strdup (info->pattern);
}

void
shoal_view_add_publisher (shoal_view_t *self, const char *node, const char *endpoint)
{
    self->publishers = (char **) realloc (self->publishers,
                                          2 * (self->publishers_size + 1) * sizeof (char *));
    self->publishers [2 * self->publishers_size] = strdup (node);
    self->publishers [2 * self->publishers_size + 1] = strdup (endpoint);
    self->publishers_size++;
}

static int
s_compare_subscriptions (const void *a, const void *b)
{
    const shoal_subscription_info_t *left = (const shoal_subscription_info_t *) a;
    const shoal_subscription_info_t *right = (const shoal_subscription_info_t *) b;
    int order = strcmp (left->node, right->node);
    if (!order)
        order = strcmp (left->id, right->id);
    return order ? order : strcmp (left->pattern, right->pattern);
}

static int
s_compare_keys (const char *a, const char *b)
{
    int order = strcmp (a, b);
    return order ? order : strcmp (a + strlen (a) + 1, b + strlen (b) + 1);
}

static int
s_compare_strings (const void *a, const void *b)
{
    return s_compare_keys (*(char *const *) a, *(char *const *) b);
}

static int
s_compare (const void *a, const void *b)
{
    const shoal_instance_info_t *left = (const shoal_instance_info_t *) a;
    const shoal_instance_info_t *right = (const shoal_instance_info_t *) b;
    int order = strcmp (left->service, right->service);
    if (!order)
        order = strcmp (left->node, right->node);
    if (!order)
        order = strcmp (left->instance, right->instance);
    return order;
}

void
shoal_view_seal (shoal_view_t *self, size_t nodes)
{
    self->nodes = nodes;
    if (self->size)
        qsort (self->instances, self->size, sizeof (shoal_instance_info_t), s_compare);
    self->pointers = (const shoal_instance_info_t **) malloc (
        (self->size + 1) * sizeof (shoal_instance_info_t *));
    for (size_t index = 0; index < self->size; index++)
        self->pointers [index] = &self->instances [index];
    self->idempotent_size = zlistx_size (self->idempotent_list);
    self->idempotent = (char **) malloc ((self->idempotent_size + 1) * sizeof (char *));
    size_t index = 0;
    for (char *key = (char *) zlistx_first (self->idempotent_list); key;
         key = (char *) zlistx_next (self->idempotent_list))
        self->idempotent [index++] = key;
    qsort (self->idempotent, self->idempotent_size, sizeof (char *), s_compare_strings);
    if (self->subscriptions_size)
        qsort (self->subscriptions, self->subscriptions_size,
               sizeof (shoal_subscription_info_t), s_compare_subscriptions);
    //  The keys now belong to the array
    zlistx_set_destructor (self->idempotent_list, NULL);
    zlistx_destroy (&self->idempotent_list);
}

//  Reading

size_t
shoal_view_size (shoal_view_t *self)
{
    return self->size;
}

const shoal_instance_info_t *
shoal_view_at (shoal_view_t *self, size_t index)
{
    return index < self->size ? &self->instances [index] : NULL;
}

const shoal_instance_info_t *const *
shoal_view_service (shoal_view_t *self, const char *service, size_t *count)
{
    //  The first instance of SERVICE in the sorted array, then its run
    size_t low = 0, high = self->size;
    while (low < high) {
        size_t middle = (low + high) / 2;
        if (strcmp (self->instances [middle].service, service) < 0)
            low = middle + 1;
        else
            high = middle;
    }
    size_t end = low;
    while (end < self->size && streq (self->instances [end].service, service))
        end++;
    *count = end - low;
    return *count ? &self->pointers [low] : NULL;
}

bool
shoal_view_idempotent (shoal_view_t *self, const char *service, const char *method)
{
    size_t low = 0, high = self->idempotent_size;
    while (low < high) {
        size_t middle = (low + high) / 2;
        const char *key = self->idempotent [middle];
        int order = strcmp (key, service);
        if (!order)
            order = strcmp (key + strlen (key) + 1, method);
        if (!order)
            return true;
        if (order < 0)
            low = middle + 1;
        else
            high = middle;
    }
    return false;
}

size_t
shoal_view_nodes (shoal_view_t *self)
{
    return self->nodes;
}

size_t
shoal_view_subscriptions (shoal_view_t *self)
{
    return self->subscriptions_size;
}

const shoal_subscription_info_t *
shoal_view_subscription_at (shoal_view_t *self, size_t index)
{
    return index < self->subscriptions_size ? &self->subscriptions [index] : NULL;
}

size_t
shoal_view_publishers (shoal_view_t *self)
{
    return self->publishers_size;
}

const char *
shoal_view_publisher_at (shoal_view_t *self, size_t index, const char **node)
{
    if (index >= self->publishers_size)
        return NULL;
    if (node)
        *node = self->publishers [2 * index];
    return self->publishers [2 * index + 1];
}
