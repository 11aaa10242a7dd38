/*  shoal_stats - an instance's figures per method: calls, errors by status,
    and latency percentiles from a log-scale histogram (fixed size, so the
    figures cost the same memory after a billion calls as after one).
    Owned by one instance actor; no locks.                                  */
#ifndef SHOAL_STATS_H_INCLUDED
#define SHOAL_STATS_H_INCLUDED

typedef struct _shoal_stats_t shoal_stats_t;

shoal_stats_t *
    shoal_stats_new (void);
void
    shoal_stats_destroy (shoal_stats_t **self_p);

//  Records one answered call of METHOD that took MICROS and ended STATUS.
//  At most 256 methods are kept apart; the rest count as "(others)".
void
    shoal_stats_record (shoal_stats_t *self, const char *method, int status, uint64_t micros);

//  Packs {method: {"calls", "errors": {CODE: n}, "p50_us", "p90_us",
//  "p99_us", "max_us"}} into PACKER.
void
    shoal_stats_pack (shoal_stats_t *self, msgpack_packer *packer);

void
    shoal_stats_test (bool verbose);

#endif
