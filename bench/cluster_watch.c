/*  cluster-watch - a long-lived member of a cluster that says, with a
    timestamp, each time its view of one service changes. It is the
    observer of bench/cluster_scale.sh: a node that was there before the
    others came, so the times it prints are when an existing member learnt
    of a join or a death, without the start-up of a fresh `shoal ls`.

        cluster-watch --cluster NAME [--service echo] [--rendezvous DIR]
                      [--poll-ms 2] [--max-seconds 300]

    Lines on stdout (flushed at once), times in seconds since the epoch with
    microseconds, as bash's $EPOCHREALTIME, so that a script can subtract
    the time it did something:

        ready TIME NODE-ID GOSSIP-ENDPOINT
        view TIME NODES INSTANCES UP        (each time one of the three changes)

    NODES: nodes the view has heard from, this one included; INSTANCES: of
    the service, in any state; UP: of those, the ones up (not draining).
    Runs until SIGINT or SIGTERM, or --max-seconds. Uses the public API
    only. Exit code 0, 1 if it cannot join, 2 on a bad command line.        */
#include <czmq.h>
#include "shoal.h"

static double
s_realtime (void)
{
    struct timespec now;
    clock_gettime (CLOCK_REALTIME, &now);
    return (double)now.tv_sec + now.tv_nsec / 1e9;
}

static void
s_usage (FILE *out)
{
    fprintf (out,
             "usage: cluster-watch --cluster NAME [--service NAME] [--rendezvous DIR]\n"
             "                     [--poll-ms MS] [--max-seconds S]\n"
             "Joins the cluster and prints 'view TIME NODES INSTANCES UP' each time\n"
             "its view of the service changes (TIME as bash's $EPOCHREALTIME).\n");
}

int
main (int argc, char **argv)
{
    const char *cluster = NULL, *service = "echo", *rendezvous = NULL;
    long poll_ms = 2, max_seconds = 300;
    for (int index = 1; index < argc; index++) {
        const char *arg = argv[index];
        const char *value = index + 1 < argc ? argv[index + 1] : NULL;
        if (streq (arg, "-h") || streq (arg, "--help")) {
            s_usage (stdout);
            return 0;
        }
        if (!value) {
            s_usage (stderr);
            return 2;
        }
        index++;
        char *end = NULL;
        if (streq (arg, "--cluster"))
            cluster = value;
        else if (streq (arg, "--service"))
            service = value;
        else if (streq (arg, "--rendezvous"))
            rendezvous = value;
        else if (streq (arg, "--poll-ms")) {
            poll_ms = strtol (value, &end, 10);
            if (*end || poll_ms < 1 || poll_ms > 1000) {
                fprintf (stderr, "cluster-watch: --poll-ms takes 1..1000\n");
                return 2;
            }
        } else if (streq (arg, "--max-seconds")) {
            max_seconds = strtol (value, &end, 10);
            if (*end || max_seconds < 1 || max_seconds > 3600) {
                fprintf (stderr, "cluster-watch: --max-seconds takes 1..3600\n");
                return 2;
            }
        } else {
            s_usage (stderr);
            return 2;
        }
    }
    zsys_set_logstream (stderr);
    shoal_node_t *node = shoal_node_new (cluster);
    if (!node) {
        fprintf (stderr, "cluster-watch: bad cluster name\n");
        return 2;
    }
    if (rendezvous)
        shoal_node_set_rendezvous (node, rendezvous);
    if (shoal_node_start (node)) {
        fprintf (stderr, "cluster-watch: cannot join cluster %s\n",
                 shoal_node_cluster (node));
        shoal_node_destroy (&node);
        return 1;
    }
    printf ("ready %.6f %s %s\n", s_realtime (), shoal_node_id (node),
            shoal_node_endpoint (node));
    fflush (stdout);

    //  A view never changes once made, and the node publishes a new one on
    //  each change: holding the last one keeps its address from being
    //  reused, so a different pointer means a newer view
    shoal_view_t *last = NULL;
    long nodes = -1, instances = -1, up = -1;
    int64_t end = zclock_mono () + max_seconds * 1000;
    while (!zsys_interrupted && zclock_mono () < end) {
        shoal_view_t *view = shoal_node_view (node);
        if (view && view != last) {
            size_t count = 0;
            const shoal_instance_info_t *const *list
                = shoal_view_service (view, service, &count);
            long up_now = 0;
            for (size_t index = 0; index < count; index++)
                up_now += list[index]->state == SHOAL_INSTANCE_UP;
            long nodes_now = (long)shoal_view_nodes (view);
            if (nodes_now != nodes || (long)count != instances || up_now != up) {
                nodes = nodes_now;
                instances = (long)count;
                up = up_now;
                printf ("view %.6f %ld %ld %ld\n", s_realtime (), nodes, instances, up);
                fflush (stdout);
            }
            shoal_view_destroy (&last);
            last = view;
        } else
            shoal_view_destroy (&view);
        zclock_sleep ((int)poll_ms);
    }
    shoal_view_destroy (&last);
    shoal_node_destroy (&node);
    return 0;
}
