/*  shoal_stats - per-method counters and latency histograms.

    Buckets grow by a quarter of a power of two: bucket b holds times near
    2^(b/4) microseconds, so a percentile is exact to within 19%, from 1 us
    to over an hour, in 128 counters per method.                             */
#include "shoal_private.h"
#include <math.h>

#define SHOAL_STATS_BUCKETS 128

//  Methods tracked apart; past that (a mock answering any name) the rest
//  share one entry, so the figures stay bounded
#define SHOAL_STATS_METHODS 256

typedef struct {
    char *name;
    uint64_t calls;
    uint64_t errors [SHOAL_STATUS_MAX + 1];
    uint64_t buckets [SHOAL_STATS_BUCKETS];
    uint64_t max;
} s_method_t;

struct _shoal_stats_t {
    zhashx_t *methods;          //  name -> s_method_t
};

static void
s_method_destroy (void **item)
{
    s_method_t *method = (s_method_t *) *item;
    free (method->name);
    free (method);
    *item = NULL;
}

shoal_stats_t *
shoal_stats_new (void)
{
    shoal_stats_t *self = (shoal_stats_t *) zmalloc (sizeof (shoal_stats_t));
    self->methods = zhashx_new ();
    zhashx_set_destructor (self->methods, s_method_destroy);
    return self;
}

void
shoal_stats_destroy (shoal_stats_t **self_p)
{
    shoal_stats_t *self = *self_p;
    if (!self)
        return;
    zhashx_destroy (&self->methods);
    free (self);
    *self_p = NULL;
}

static size_t
s_bucket (uint64_t micros)
{
    if (micros <= 1)
        return 0;
    size_t bucket = (size_t) (4.0 * log2 ((double) micros) + 0.5);
    return bucket < SHOAL_STATS_BUCKETS ? bucket : SHOAL_STATS_BUCKETS - 1;
}

void
shoal_stats_record (shoal_stats_t *self, const char *name, int status, uint64_t micros)
{
    s_method_t *method = (s_method_t *) zhashx_lookup (self->methods, name);
    if (!method && zhashx_size (self->methods) >= SHOAL_STATS_METHODS) {
        name = "(others)";
        method = (s_method_t *) zhashx_lookup (self->methods, name);
    }
    if (!method) {
        method = (s_method_t *) zmalloc (sizeof (s_method_t));
        method->name = strdup (name);
        zhashx_insert (self->methods, name, method);
    }
    method->calls++;
    if (status > 0 && status <= SHOAL_STATUS_MAX)
        method->errors [status]++;
    method->buckets [s_bucket (micros)]++;
    if (micros > method->max)
        method->max = micros;
}

//  The time below which FRACTION of the calls fell
static uint64_t
s_percentile (s_method_t *method, double fraction)
{
    uint64_t wanted = (uint64_t) ceil (fraction * (double) method->calls);
    uint64_t seen = 0;
    for (size_t bucket = 0; bucket < SHOAL_STATS_BUCKETS; bucket++) {
        seen += method->buckets [bucket];
        if (seen >= wanted && seen > 0) {
            uint64_t value = (uint64_t) llround (pow (2.0, (double) bucket / 4.0));
            return value < method->max ? value : method->max;
        }
    }
    return method->max;
}

void
shoal_stats_pack (shoal_stats_t *self, msgpack_packer *packer)
{
    msgpack_pack_map (packer, zhashx_size (self->methods));
    for (s_method_t *method = (s_method_t *) zhashx_first (self->methods); method;
         method = (s_method_t *) zhashx_next (self->methods)) {
        shoal_wire_pack_string (packer, method->name);
        msgpack_pack_map (packer, 6);
        shoal_wire_pack_string (packer, "calls");
        msgpack_pack_uint64 (packer, method->calls);
        size_t codes = 0;
        for (int status = 1; status <= SHOAL_STATUS_MAX; status++)
            codes += method->errors [status] > 0;
        shoal_wire_pack_string (packer, "errors");
        msgpack_pack_map (packer, codes);
        for (int status = 1; status <= SHOAL_STATUS_MAX; status++)
            if (method->errors [status]) {
                shoal_wire_pack_string (packer, shoal_status_name (status));
                msgpack_pack_uint64 (packer, method->errors [status]);
            }
        shoal_wire_pack_string (packer, "p50_us");
        msgpack_pack_uint64 (packer, s_percentile (method, 0.50));
        shoal_wire_pack_string (packer, "p90_us");
        msgpack_pack_uint64 (packer, s_percentile (method, 0.90));
        shoal_wire_pack_string (packer, "p99_us");
        msgpack_pack_uint64 (packer, s_percentile (method, 0.99));
        shoal_wire_pack_string (packer, "max_us");
        msgpack_pack_uint64 (packer, method->max);
    }
}

void
shoal_stats_test (bool verbose)
{
    if (verbose)
        printf (" * shoal_stats: ");
    shoal_stats_t *stats = shoal_stats_new ();
    //  90 fast calls of 100 us, 9 of 1 ms, one of 50 ms that failed
    for (int count = 0; count < 90; count++)
        shoal_stats_record (stats, "get", SHOAL_OK, 100);
    for (int count = 0; count < 9; count++)
        shoal_stats_record (stats, "get", SHOAL_OK, 1000);
    shoal_stats_record (stats, "get", SHOAL_NOT_FOUND, 50000);
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer packer;
    msgpack_packer_init (&packer, &buffer, msgpack_sbuffer_write);
    shoal_stats_pack (stats, &packer);
    shoal_reader_t *reader = shoal_reader_new (buffer.data, buffer.size);
    int64_t calls, p50, p90, p99, max, not_found;
    int rc = shoal_reader_get (reader, "{s:{s:I, s:{s:I}, s:I, s:I, s:I, s:I}}", "get", "calls",
                               &calls, "errors", "NOT_FOUND", &not_found, "p50_us", &p50,
                               "p90_us", &p90, "p99_us", &p99, "max_us", &max);
    assert (rc == 0);
    assert (calls == 100 && not_found == 1 && max == 50000);
    //  Within the histogram's 19%
    assert (p50 >= 85 && p50 <= 119);
    assert (p90 >= 85 && p90 <= 119);
    assert (p99 >= 850 && p99 <= 1190);
    shoal_reader_destroy (&reader);
    msgpack_sbuffer_destroy (&buffer);
    shoal_stats_destroy (&stats);
    if (verbose)
        printf ("OK\n");
}
