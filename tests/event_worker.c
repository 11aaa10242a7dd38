/*  event_worker - a service that subscribes to events, for the event tests
    (tests/test_events.c) and as the example of docs/events.md.

        event_worker --name shipping --balanced 'order.placed' [--broadcast P]
                     [--slow-ms N] [--quiet] [service flags: --cluster, --instances...]

    Each event it handles is answered with an event of its own, published
    through the node that received it: "seen.NAME" {topic, id, seq, pid,
    instance, delivery, replayed}. The test subscribes to "seen.**" and so
    learns, from outside, which process handled what. With --quiet it only
    counts (its $stats say how many events it received, missed and lost).
    --slow-ms makes every handler take that long: a consumer too slow for
    the rate.                                                                */
#include <shoal.h>
#include <czmq.h>
#include <unistd.h>

typedef struct {
    char name [64];
    int slow_ms;
    bool quiet;
} s_config_t;

static s_config_t s_config;

typedef struct {
    char instance [16];         //  a token per instance, for the tests
} s_worker_t;

static void *
s_worker_new (void *arg)
{
    s_worker_t *worker = (s_worker_t *) zmalloc (sizeof (s_worker_t));
    zuuid_t *uuid = zuuid_new ();
    snprintf (worker->instance, sizeof (worker->instance), "%.12s", zuuid_str (uuid));
    zuuid_destroy (&uuid);
    return worker;
}

static void
s_worker_destroy (void *state)
{
    free (state);
}

static int
s_handle (shoal_event_t *event, s_worker_t *worker, const char *delivery)
{
    if (s_config.slow_ms)
        zclock_sleep (s_config.slow_ms);        //  the work of a slow consumer
    if (s_config.quiet)
        return 0;
    int id = -1;
    shoal_event_get (event, "{s:i}", "id", &id);
    char topic [128];
    snprintf (topic, sizeof (topic), "seen.%s", s_config.name);
    return shoal_event_publish (event, topic, "{s:s, s:i, s:I, s:i, s:s, s:s, s:b}",
                                "topic", shoal_event_topic (event), "id", id, "seq",
                                (int64_t) shoal_event_seq (event), "pid", (int) getpid (),
                                "instance", worker->instance, "delivery", delivery,
                                "replayed", shoal_event_replayed (event));
}

static int
s_on_balanced (shoal_event_t *event, void *state)
{
    return s_handle (event, (s_worker_t *) state, "balanced");
}

static int
s_on_broadcast (shoal_event_t *event, void *state)
{
    return s_handle (event, (s_worker_t *) state, "broadcast");
}

int
main (int argc, char **argv)
{
    snprintf (s_config.name, sizeof (s_config.name), "worker");
    //  Our own flags first; the rest are the service's (shoal_service_main)
    char *rest [argc + 1];
    int kept = 0;
    rest [kept++] = argv [0];
    zlistx_t *balanced = zlistx_new ();
    zlistx_t *broadcast = zlistx_new ();
    for (int index = 1; index < argc; index++) {
        bool valued = index + 1 < argc;
        if (streq (argv [index], "--name") && valued)
            snprintf (s_config.name, sizeof (s_config.name), "%s", argv [++index]);
        else if (streq (argv [index], "--balanced") && valued)
            zlistx_add_end (balanced, argv [++index]);
        else if (streq (argv [index], "--broadcast") && valued)
            zlistx_add_end (broadcast, argv [++index]);
        else if (streq (argv [index], "--slow-ms") && valued)
            s_config.slow_ms = atoi (argv [++index]);
        else if (streq (argv [index], "--quiet"))
            s_config.quiet = true;
        else
            rest [kept++] = argv [index];
    }
    rest [kept] = NULL;

    shoal_service_t *service = shoal_service_new (s_config.name, "1.0.0");
    shoal_service_set_state (service, s_worker_new, s_worker_destroy, NULL);
    int rc = 0;
    for (char *pattern = (char *) zlistx_first (balanced); pattern;
         pattern = (char *) zlistx_next (balanced))
        rc |= shoal_service_on_event (service, pattern, SHOAL_BALANCED, s_on_balanced);
    for (char *pattern = (char *) zlistx_first (broadcast); pattern;
         pattern = (char *) zlistx_next (broadcast))
        rc |= shoal_service_on_event (service, pattern, SHOAL_BROADCAST, s_on_broadcast);
    zlistx_destroy (&balanced);
    zlistx_destroy (&broadcast);
    if (rc) {
        fprintf (stderr, "error: INVALID_ARGUMENT: bad pattern\n");
        shoal_service_destroy (&service);
        return 2;
    }
    return shoal_service_main (&service, kept, rest);
}
