/*  shoal - the command line: JSON on the command line and on stdout,
    msgpack on the wire. Built only on the public API.

    Exit codes: 0 success, 1 the operation failed (the reason is printed
    as "error: CODE_NAME: message" on stderr), 2 bad usage.

    Each command is one row of s_commands; a later command is a new row and
    a new handler. A command that needs the cluster (ls, call by name, pub,
    sub) joins it with a node of its own (s_join), which it leaves when it
    exits.                                                                  */
#include <czmq.h>
#include <dirent.h>
#include <getopt.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include "shoal.h"

enum { S_EXIT_OK = 0, S_EXIT_ERROR = 1, S_EXIT_USAGE = 2 };

//  How long a short-lived command waits, at most, for the cluster to answer
//  before it acts: the nodes it found have each sent their state back by
//  then, unless one of them is frozen or far away.
#define S_JOIN_MS 200

//  The flags every command takes, and the node that they configure. Only
//  what the flags say is kept here: the node reads the environment itself
//  (SHOAL_CLUSTER, SHOAL_SEEDS, SHOAL_INTERFACE, SHOAL_HOST), and a flag
//  wins over it.
typedef struct {
    const char *cluster;   //  --cluster, or NULL; borrowed from argv
    zlist_t *seeds;        //  --seed (repeatable); borrowed from argv
    const char *interface; //  --interface, or NULL
    const char *host;      //  --host, or NULL
    shoal_node_t *node;    //  made by s_join; destroyed last, in main
} options_t;

typedef int (command_fn) (options_t *options, int argc, char **argv);

typedef struct {
    const char *name;
    command_fn *handler; //  NULL: named in DESIGN.md, not built yet
    const char *args;
    const char *summary;
} command_t;

static int s_ls (options_t *options, int argc, char **argv);
static int s_call (options_t *options, int argc, char **argv);
static int s_pub (options_t *options, int argc, char **argv);
static int s_sub (options_t *options, int argc, char **argv);
static int s_help (options_t *options, int argc, char **argv);

static command_t s_commands[] = {
    { "ls", s_ls, "[--json]", "Lists services, instances, endpoints, load and health" },
    { "call", s_call,
      "SERVICE METHOD [JSON] [--timeout MS] [--endpoint ENDPOINT | --key KEY]",
      "Calls METHOD with JSON as the body and prints the reply as JSON" },
    { "pub", s_pub, "TOPIC [JSON] [--wait-subscribers N] [--timeout MS]",
      "Publishes an event with JSON as the body" },
    { "sub", s_sub, "PATTERN... [--count N] [--timeout MS] [--json]",
      "Prints the events that match as TOPIC JSON lines" },
    { "bench", NULL,
      "SERVICE METHOD JSON [-c CONCURRENCY] [-n REQUESTS | -d SECONDS] [--json]",
      "Measures throughput and latency of one method" },
    { "run", NULL, "FILE", "Starts and supervises the services FILE lists" },
    { "keygen", NULL, "NAME", "Writes a CURVE certificate pair" },
    { "help", s_help, "", "Prints this text" },
};
#define S_COMMANDS (sizeof (s_commands) / sizeof (s_commands[0]))

//  The global flags, for the option tables of main and of every command.
// clang-format off
#define S_GLOBAL_FLAGS                                                                   \
    { "cluster", required_argument, NULL, 'C' },                                         \
    { "seed", required_argument, NULL, 'S' },                                            \
    { "interface", required_argument, NULL, 'I' },                                       \
    { "host", required_argument, NULL, 'H' }
// clang-format on

static void
s_usage (FILE *stream)
{
    fprintf (stream,
             "usage: shoal [--cluster NAME] [--seed ENDPOINT]... [--interface NAME]\n"
             "             [--host ADDRESS] COMMAND [ARGS]\n"
             "       shoal --help | --version\n\ncommands:\n");
    for (size_t index = 0; index < S_COMMANDS; index++) {
        command_t *command = &s_commands[index];
        fprintf (stream, "  shoal %s%s%s\n      %s%s\n", command->name,
                 *command->args ? " " : "", command->args, command->summary,
                 command->handler ? "" : " (not available yet)");
    }
    fprintf (
        stream,
        "\nevery command takes (before or after its name; flags win over the\n"
        "environment):\n"
        "  --cluster NAME       the cluster to join (SHOAL_CLUSTER, else 'default')\n"
        "  --seed ENDPOINT      a node to meet peers through; repeatable\n"
        "                       (SHOAL_SEEDS, comma or space separated)\n"
        "  --interface NAME     find nodes on this LAN interface by UDP beacon\n"
        "                       (SHOAL_INTERFACE; off by default)\n"
        "  --host ADDRESS       the address to bind and advertise (SHOAL_HOST;\n"
        "                       default 127.0.0.1, or the interface's)\n"
        "Nodes on this host meet in $SHOAL_RUNTIME_DIR (else $XDG_RUNTIME_DIR/shoal,\n"
        "else /tmp/shoal-UID), one folder per cluster.\n");
}

//  Prints a usage error and the usage that goes with it; returns the exit
//  code for bad usage.
static int
s_usage_error (void (*usage) (FILE *), const char *format, ...)
{
    va_list args;
    va_start (args, format);
    fprintf (stderr, "error: INVALID_ARGUMENT: ");
    vfprintf (stderr, format, args);
    fprintf (stderr, "\n\n");
    va_end (args);
    usage (stderr);
    return S_EXIT_USAGE;
}

//  Reports the flag getopt_long refused (it returned '?' or ':', with
//  opterr off so that all our messages share one shape). A long flag is
//  the argument just passed; a short one only optopt names reliably.
static int
s_bad_flag (void (*usage) (FILE *), int opt, char **argv)
{
    const char *arg = argv[optind - 1];
    if (opt == ':')
        return s_usage_error (usage, "flag '%s' needs a value", arg);
    if (strncmp (arg, "--", 2) == 0)
        return s_usage_error (usage, "bad flag '%s'", arg);
    return s_usage_error (usage, "bad flag '-%c'", optopt);
}

static void
s_options_init (options_t *options)
{
    memset (options, 0, sizeof (*options));
    options->seeds = zlist_new ();
    assert (options->seeds);
}

//  Takes a global flag that getopt_long returned. Returns true if OPT was one.
static bool
s_options_flag (options_t *options, int opt, const char *value)
{
    if (opt == 'C')
        options->cluster = value;
    else if (opt == 'S')
        zlist_append (options->seeds, (void *)value);
    else if (opt == 'I')
        options->interface = value;
    else if (opt == 'H')
        options->host = value;
    else
        return false;
    return true;
}

//  The node goes last: every client that used it is gone by now.
static void
s_options_destroy (options_t *options)
{
    shoal_node_destroy (&options->node);
    zlist_destroy (&options->seeds);
}

//  Joins the cluster the options name, and waits up to BUDGET_MS for the
//  nodes found to answer, so that a short-lived command sees the cluster.
//  Returns S_EXIT_OK with options->node set, or the exit code after
//  printing why not.
static int
s_join (options_t *options, int budget_ms)
{
    assert (!options->node);
    //  The node takes SHOAL_SEEDS itself and --seed adds to them; a flag
    //  must replace the environment, so the variable goes first. Nothing
    //  else runs yet that could read the environment meanwhile.
    if (zlist_size (options->seeds))
        unsetenv ("SHOAL_SEEDS");
    shoal_node_t *node = shoal_node_new (options->cluster);
    if (!node) {
        const char *cluster
            = options->cluster ? options->cluster : getenv ("SHOAL_CLUSTER");
        fprintf (stderr,
                 "error: INVALID_ARGUMENT: bad cluster name '%s': it takes 1..64 bytes "
                 "of [A-Za-z0-9._-]\n",
                 cluster ? cluster : "");
        return S_EXIT_USAGE;
    }
    for (const char *seed = (const char *)zlist_first (options->seeds); seed;
         seed = (const char *)zlist_next (options->seeds))
        shoal_node_add_seed (node, seed);
    if (options->interface)
        shoal_node_set_interface (node, options->interface);
    if (options->host)
        shoal_node_set_host (node, options->host);
    if (shoal_node_start (node)) {
        fprintf (stderr,
                 "error: UNAVAILABLE: cannot join cluster '%s' (see the log above)\n",
                 shoal_node_cluster (node));
        shoal_node_destroy (&node);
        return S_EXIT_ERROR;
    }
    options->node = node;
    shoal_node_settle (node, budget_ms);
    return S_EXIT_OK;
}

//  Parses a number of milliseconds above 0 into *VALUE; false if it is not one
static bool
s_parse_ms (const char *text, int *value)
{
    char *end;
    errno = 0;
    long number = strtol (text, &end, 10);
    if (*text == '\0' || *end != '\0' || errno || number < 1 || number > INT_MAX)
        return false;
    *value = (int)number;
    return true;
}

//  Parses a count of at least MINIMUM into *VALUE; false if it is not one
static bool
s_parse_count (const char *text, long minimum, size_t *value)
{
    char *end;
    errno = 0;
    long number = strtol (text, &end, 10);
    if (*text == '\0' || *end != '\0' || errno || number < minimum || number > INT_MAX)
        return false;
    *value = (size_t)number;
    return true;
}

//  shoal ls

static void
s_ls_usage (FILE *stream)
{
    fprintf (
        stream,
        "usage: shoal ls [--json]\n"
        "Lists every instance of every service in the cluster: its version, id,\n"
        "node, endpoint, state (up or draining), load (requests in hand), recent\n"
        "mean latency and calls answered. Waits up to %d ms for the nodes on\n"
        "this host and the seeds to answer.\n"
        "  --json  one JSON document instead of a table:\n"
        "          {\"cluster\": NAME, \"nodes\": N, \"services\": {SERVICE: [\n"
        "            {\"instance\", \"node\", \"endpoint\", \"version\", \"state\",\n"
        "             \"load\", \"latency_us\", \"calls\"}, ...]}}\n"
        "exit: 0 listed (perhaps nothing), 1 cannot join, 2 bad usage\n",
        S_JOIN_MS);
}

//  What other programs announce may hold any bytes: a table shows the
//  printable ASCII ones, so no peer can send escapes to the terminal
static char *
s_printable (const char *text)
{
    char *copy = strdup (text);
    assert (copy);
    for (char *c = copy; *c; c++)
        if (*c < 0x20 || *c > 0x7e)
            *c = '?';
    return copy;
}

//  A JSON string for TEXT; bytes that are not UTF-8 become '?'
static json_t *
s_json_text (const char *text)
{
    json_t *string = json_string (text);
    if (!string) {
        char *copy = s_printable (text);
        string = json_string (copy);
        free (copy);
    }
    return string;
}

static const char *
s_state_name (shoal_instance_state_t state)
{
    return state == SHOAL_INSTANCE_DRAINING ? "draining" : "up";
}

//  LATENCY_US as a person reads it: 850us, 12.3ms, 1.50s
static void
s_format_latency (uint32_t latency_us, char *buffer, size_t size)
{
    if (latency_us < 1000)
        snprintf (buffer, size, "%" PRIu32 "us", latency_us);
    else if (latency_us < 1000000)
        snprintf (buffer, size, "%.1fms", latency_us / 1000.0);
    else
        snprintf (buffer, size, "%.2fs", latency_us / 1000000.0);
}

static int
s_ls_json (shoal_node_t *node, shoal_view_t *view)
{
    json_t *services = json_object ();
    json_t *instances = NULL; //  of the service being filled, borrowed
    const char *service = NULL;
    for (size_t index = 0; index < shoal_view_size (view); index++) {
        const shoal_instance_info_t *info = shoal_view_at (view, index);
        if (streq (info->node, shoal_node_id (node)))
            continue;
        //  The view is sorted by service: a new name starts a new array
        if (!service || strcmp (service, info->service)) {
            instances = json_array ();
            json_object_set_new (services, info->service, instances);
            service = info->service;
        }
        json_array_append_new (
            instances,
            json_pack ("{s:o, s:o, s:o, s:o, s:s, s:I, s:I, s:I}", "instance",
                       s_json_text (info->instance), "node", s_json_text (info->node),
                       "endpoint", s_json_text (info->endpoint), "version",
                       s_json_text (info->version), "state", s_state_name (info->state),
                       "load", (json_int_t)info->load, "latency_us",
                       (json_int_t)info->latency_us, "calls", (json_int_t)info->calls));
    }
    //  The view counts this node too; it is only looking
    size_t nodes = shoal_view_nodes (view);
    json_t *document
        = json_pack ("{s:s, s:I, s:o}", "cluster", shoal_node_cluster (node), "nodes",
                     (json_int_t)(nodes ? nodes - 1 : 0), "services", services);
    char *text = document ? json_dumps (document, JSON_COMPACT) : NULL;
    json_decref (document);
    if (!text) {
        fprintf (stderr, "error: INTERNAL: cannot make the JSON document\n");
        return S_EXIT_ERROR;
    }
    printf ("%s\n", text);
    free (text);
    return S_EXIT_OK;
}

#define S_LS_COLUMNS 9

static int
s_ls_table (shoal_node_t *node, shoal_view_t *view)
{
    static const char *headings[S_LS_COLUMNS]
        = { "SERVICE", "VERSION", "INSTANCE", "NODE", "ENDPOINT",
            "STATE",   "LOAD",    "LATENCY",  "CALLS" };
    //  Cells first, so that every column is as wide as its widest cell
    zlistx_t *rows = zlistx_new ();
    zlistx_set_destructor (rows, (zlistx_destructor_fn *)zstr_free);
    size_t widths[S_LS_COLUMNS];
    for (size_t column = 0; column < S_LS_COLUMNS; column++)
        widths[column] = strlen (headings[column]);
    for (size_t index = 0; index < shoal_view_size (view); index++) {
        const shoal_instance_info_t *info = shoal_view_at (view, index);
        if (streq (info->node, shoal_node_id (node)))
            continue;
        char load[16], latency[32], calls[32];
        snprintf (load, sizeof (load), "%" PRIu32, info->load);
        s_format_latency (info->latency_us, latency, sizeof (latency));
        snprintf (calls, sizeof (calls), "%" PRIu64, info->calls);
        const char *cells[S_LS_COLUMNS]
            = { info->service, info->version,  info->instance,
                info->node,    info->endpoint, s_state_name (info->state),
                load,          latency,        calls };
        //  One row: its cells, made printable, one after another
        char **row = (char **)zmalloc (S_LS_COLUMNS * sizeof (char *));
        for (size_t column = 0; column < S_LS_COLUMNS; column++) {
            row[column] = s_printable (cells[column]);
            size_t width = strlen (row[column]);
            if (width > widths[column])
                widths[column] = width;
        }
        zlistx_add_end (rows, row);
    }
    if (zlistx_size (rows) == 0)
        fprintf (stderr, "no service runs in cluster '%s'\n", shoal_node_cluster (node));
    else {
        for (size_t column = 0; column < S_LS_COLUMNS; column++)
            printf ("%-*s%s", column + 1 < S_LS_COLUMNS ? (int)widths[column] : 0,
                    headings[column], column + 1 < S_LS_COLUMNS ? "  " : "\n");
        for (char **row = (char **)zlistx_first (rows); row;
             row = (char **)zlistx_next (rows)) {
            for (size_t column = 0; column < S_LS_COLUMNS; column++) {
                printf ("%-*s%s", column + 1 < S_LS_COLUMNS ? (int)widths[column] : 0,
                        row[column], column + 1 < S_LS_COLUMNS ? "  " : "\n");
                free (row[column]);
            }
        }
    }
    zlistx_destroy (&rows);
    return S_EXIT_OK;
}

static int
s_ls (options_t *options, int argc, char **argv)
{
    static struct option flags[] = { { "json", no_argument, NULL, 'j' },
                                     { "help", no_argument, NULL, 'h' },
                                     S_GLOBAL_FLAGS,
                                     { NULL, 0, NULL, 0 } };
    bool json = false;
    int opt;
    while ((opt = getopt_long (argc, argv, ":", flags, NULL)) != -1) {
        if (s_options_flag (options, opt, optarg))
            continue;
        if (opt == 'j')
            json = true;
        else if (opt == 'h') {
            s_ls_usage (stdout);
            return S_EXIT_OK;
        } else
            return s_bad_flag (s_ls_usage, opt, argv);
    }
    if (optind < argc)
        return s_usage_error (s_ls_usage, "shoal ls takes no arguments, got '%s'",
                              argv[optind]);
    int rc = s_join (options, S_JOIN_MS);
    if (rc != S_EXIT_OK)
        return rc;
    shoal_view_t *view = shoal_node_view (options->node);
    rc = json ? s_ls_json (options->node, view) : s_ls_table (options->node, view);
    shoal_view_destroy (&view);
    return rc;
}

//  shoal call

static void
s_call_usage (FILE *stream)
{
    fprintf (
        stream,
        "usage: shoal call SERVICE METHOD [JSON] [--timeout MS]\n"
        "                  [--endpoint ENDPOINT | --key KEY]\n"
        "Calls METHOD of SERVICE and prints the reply as one line of JSON.\n"
        "Without JSON the request has no body; put -- before a JSON that starts\n"
        "with '-' (a negative number), so it is not taken for a flag.\n"
        "By default the cluster chooses the instance (the least loaded of two).\n"
        "  --endpoint ENDPOINT  call the instance there, e.g. tcp://127.0.0.1:5555,\n"
        "                       without joining the cluster\n"
        "  --key KEY            choose the instance by consistent hashing on KEY:\n"
        "                       the same key reaches the same instance\n"
        "  --timeout MS         deadline of the whole call, joining included\n"
        "                       (default %d)\n"
        "exit: 0 reply printed, 1 call failed, 2 bad usage\n",
        SHOAL_DEFAULT_TIMEOUT);
}

//  Calls SERVICE by name: joins, waits a little for the service to be seen,
//  then sends with what is left of TIMEOUT. Returns the done call, or NULL
//  with *RC the exit code if it cannot join.
static shoal_call_t *
s_call_by_name (options_t *options, shoal_client_t *client, const char *key,
                const char *service, const char *method, shoal_body_t *body, int timeout,
                int *rc)
{
    int64_t start = zclock_mono ();
    *rc = s_join (options, timeout < S_JOIN_MS ? timeout : S_JOIN_MS);
    if (*rc != S_EXIT_OK)
        return NULL;
    //  A service that has just started, or a node slow to answer, may not
    //  be in the view yet: give it as long again, within the timeout
    int64_t left = timeout - (zclock_mono () - start);
    if (left > 0)
        shoal_node_wait_for (options->node, service, 1,
                             left < S_JOIN_MS ? (int)left : S_JOIN_MS);
    left = timeout - (zclock_mono () - start);
    //  A timeout of 0 would mean the default: 1 ms ends the call at once
    int remaining = left > 0 ? (int)left : 1;
    shoal_client_set_node (client, options->node);
    const void *data = body ? shoal_body_data (body) : NULL;
    size_t size = body ? shoal_body_size (body) : 0;
    shoal_call_t *call
        = key ? shoal_client_send_key (client, key, service, method, data, size,
                                       remaining)
              : shoal_client_send (client, NULL, service, method, data, size, remaining);
    shoal_call_wait (call);
    return call;
}

static int
s_call (options_t *options, int argc, char **argv)
{
    static struct option flags[] = { { "endpoint", required_argument, NULL, 'e' },
                                     { "key", required_argument, NULL, 'k' },
                                     { "timeout", required_argument, NULL, 't' },
                                     { "help", no_argument, NULL, 'h' },
                                     S_GLOBAL_FLAGS,
                                     { NULL, 0, NULL, 0 } };
    const char *endpoint = NULL;
    const char *key = NULL;
    int timeout = SHOAL_DEFAULT_TIMEOUT;
    int opt;
    while ((opt = getopt_long (argc, argv, ":", flags, NULL)) != -1) {
        if (s_options_flag (options, opt, optarg))
            continue;
        if (opt == 'e')
            endpoint = optarg;
        else if (opt == 'k')
            key = optarg;
        else if (opt == 't') {
            if (!s_parse_ms (optarg, &timeout))
                return s_usage_error (s_call_usage,
                                      "--timeout must be milliseconds above 0, got '%s'",
                                      optarg);
        } else if (opt == 'h') {
            s_call_usage (stdout);
            return S_EXIT_OK;
        } else
            return s_bad_flag (s_call_usage, opt, argv);
    }
    int positionals = argc - optind;
    if (positionals < 2 || positionals > 3)
        return s_usage_error (s_call_usage, "shoal call needs SERVICE METHOD [JSON]");
    if (endpoint && key)
        return s_usage_error (s_call_usage,
                              "--key chooses an instance by name; it cannot go with "
                              "--endpoint");
    const char *service = argv[optind];
    const char *method = argv[optind + 1];
    const char *json = positionals == 3 ? argv[optind + 2] : NULL;

    shoal_body_t *body = NULL;
    if (json) {
        char error[256];
        body = shoal_body_from_json (json, error, sizeof (error));
        if (!body) {
            fprintf (stderr, "error: INVALID_ARGUMENT: bad JSON: %s\n", error);
            return S_EXIT_USAGE;
        }
    }
    shoal_client_t *client = shoal_client_new ();
    if (!client) {
        fprintf (stderr, "error: RESOURCE_EXHAUSTED: cannot make a client\n");
        shoal_body_destroy (&body);
        return S_EXIT_ERROR;
    }
    int rc = S_EXIT_OK;
    shoal_call_t *call;
    if (endpoint)
        call = shoal_client_call (client, endpoint, service, method,
                                  body ? shoal_body_data (body) : NULL,
                                  body ? shoal_body_size (body) : 0, timeout);
    else
        call = s_call_by_name (options, client, key, service, method, body, timeout, &rc);
    if (call) {
        shoal_status_t status = shoal_call_status (call);
        char *reply = shoal_call_json (call);
        if (reply)
            printf ("%s\n", reply);
        else if (status == SHOAL_OK) {
            //  Only when the reply body cannot be turned into JSON at all
            fprintf (stderr, "error: INTERNAL: the reply body cannot be shown as JSON\n");
            rc = S_EXIT_ERROR;
        } else {
            fprintf (stderr, "error: %s: %s\n", shoal_status_name (status),
                     shoal_call_message (call));
            rc = S_EXIT_ERROR;
        }
        zstr_free (&reply);
        shoal_call_destroy (&call);
    }
    shoal_client_destroy (&client);
    shoal_body_destroy (&body);
    return rc;
}

//  shoal pub

//  How long pub waits, by default, for the subscribers the cluster shows
//  to connect: a subscriber that started a moment ago is still connecting
#define S_PUB_WAIT_MS 2000

static void
s_pub_usage (FILE *stream)
{
    fprintf (stream,
             "usage: shoal pub TOPIC [JSON] [--wait-subscribers N] [--timeout MS]\n"
             "Publishes one event on TOPIC with JSON as the body (default null), to\n"
             "every subscriber in the cluster whose pattern matches. TOPIC is made of\n"
             "dot-separated segments of [A-Za-z0-9_-], e.g. order.placed. Put -- before\n"
             "a JSON that starts with '-', so it is not taken for a flag.\n"
             "An event is only for the subscribers connected when it is published:\n"
             "pub first waits until every subscriber to TOPIC the cluster shows is\n"
             "connected (if some are not by the timeout, it warns and publishes).\n"
             "  --wait-subscribers N  wait for at least N subscribers to TOPIC, and\n"
             "                        fail without publishing if they do not come\n"
             "  --timeout MS          how long to wait for them (default %d)\n"
             "exit: 0 published, 1 the subscribers asked for did not come, 2 bad usage\n",
             S_PUB_WAIT_MS);
}

//  Refuses a topic the library would refuse, before joining for nothing
static bool
s_topic_ok (const char *topic)
{
    if (shoal_topic_valid (topic))
        return true;
    char *shown = s_printable (topic);
    fprintf (stderr,
             "error: INVALID_ARGUMENT: bad topic '%s': it takes dot-separated segments "
             "of [A-Za-z0-9_-], at most %d bytes and %d segments\n",
             shown, SHOAL_MAX_TOPIC, SHOAL_MAX_SEGMENTS);
    free (shown);
    return false;
}

//  Joins, waits for the subscribers, publishes. Returns the exit code.
static int
s_pub_send (options_t *options, const char *topic, shoal_body_t *body, size_t wanted,
            bool wait_given, int timeout)
{
    int rc = s_join (options, S_JOIN_MS);
    if (rc != S_EXIT_OK)
        return rc;
    if (!shoal_node_wait_subscribers (options->node, topic, wanted, timeout)) {
        if (wait_given) {
            fprintf (stderr,
                     "error: UNAVAILABLE: waited %d ms for %zu connected subscribers "
                     "to '%s'; nothing published\n",
                     timeout, wanted, topic);
            return S_EXIT_ERROR;
        }
        //  Whoever is connected still gets it; the others could come late
        fprintf (stderr,
                 "warning: not every subscriber to '%s' was connected within %d ms; "
                 "they miss this event\n",
                 topic, timeout);
    }
    //  The body was checked against the limits already: only a node that
    //  failed could refuse it now
    if (shoal_node_publish (options->node, topic, body ? shoal_body_data (body) : NULL,
                            body ? shoal_body_size (body) : 0)) {
        fprintf (stderr, "error: INTERNAL: the node refused the event\n");
        return S_EXIT_ERROR;
    }
    //  Leaving at once loses nothing: the publisher's socket lingers until
    //  the event is out, and subscribers stay connected to a publisher that
    //  left for a second, reading what it sent (lib/shoal_subscriber.c)
    return S_EXIT_OK;
}

static int
s_pub (options_t *options, int argc, char **argv)
{
    static struct option flags[] = { { "wait-subscribers", required_argument, NULL, 'w' },
                                     { "timeout", required_argument, NULL, 't' },
                                     { "help", no_argument, NULL, 'h' },
                                     S_GLOBAL_FLAGS,
                                     { NULL, 0, NULL, 0 } };
    size_t wanted = 0;
    bool wait_given = false;
    int timeout = S_PUB_WAIT_MS;
    int opt;
    while ((opt = getopt_long (argc, argv, ":", flags, NULL)) != -1) {
        if (s_options_flag (options, opt, optarg))
            continue;
        if (opt == 'w') {
            if (!s_parse_count (optarg, 0, &wanted))
                return s_usage_error (
                    s_pub_usage, "--wait-subscribers must be a count, got '%s'", optarg);
            wait_given = true;
        } else if (opt == 't') {
            if (!s_parse_ms (optarg, &timeout))
                return s_usage_error (s_pub_usage,
                                      "--timeout must be milliseconds above 0, got '%s'",
                                      optarg);
        } else if (opt == 'h') {
            s_pub_usage (stdout);
            return S_EXIT_OK;
        } else
            return s_bad_flag (s_pub_usage, opt, argv);
    }
    int positionals = argc - optind;
    if (positionals < 1 || positionals > 2)
        return s_usage_error (s_pub_usage, "shoal pub needs TOPIC [JSON]");
    const char *topic = argv[optind];
    if (!s_topic_ok (topic))
        return S_EXIT_USAGE;
    //  No JSON: the body is nil, which subscribers show as null
    shoal_body_t *body = NULL;
    if (positionals == 2) {
        char error[256];
        body = shoal_body_from_json (argv[optind + 1], error, sizeof (error));
        if (!body) {
            fprintf (stderr, "error: INVALID_ARGUMENT: bad JSON: %s\n", error);
            return S_EXIT_USAGE;
        }
        if (shoal_body_size (body) > SHOAL_MAX_EVENT) {
            fprintf (stderr,
                     "error: INVALID_ARGUMENT: the body takes %zu bytes, more than the "
                     "%d an event may carry\n",
                     shoal_body_size (body), SHOAL_MAX_EVENT);
            shoal_body_destroy (&body);
            return S_EXIT_USAGE;
        }
    }
    int rc = s_pub_send (options, topic, body, wanted, wait_given, timeout);
    shoal_body_destroy (&body);
    return rc;
}

//  shoal sub

//  How long sub waits for an event at a time: a signal it got is seen
//  within that, since the library's waits go on when one interrupts them
#define S_SUB_SLICE_MS 100

static volatile sig_atomic_t s_stopping = 0;

static void
s_on_stop_signal (int signum)
{
    s_stopping = 1;
}

static void
s_sub_usage (FILE *stream)
{
    fprintf (
        stream,
        "usage: shoal sub PATTERN... [--count N] [--timeout MS] [--json]\n"
        "Prints the events published in the cluster on topics that a PATTERN\n"
        "matches, one line each as they come: TOPIC JSON. In a pattern '*' is one\n"
        "segment and '**' any number: order.* matches order.placed, order.**\n"
        "matches order and order.a.b. Events published before sub has joined are\n"
        "not for it: a publisher waits for it with pub --wait-subscribers.\n"
        "Runs until SIGINT or SIGTERM, unless:\n"
        "  --count N     stop after N events\n"
        "  --timeout MS  stop once MS ms pass without an event (an error if\n"
        "                fewer than --count N came)\n"
        "  --json        one JSON object per line instead: {\"topic\", \"publisher\",\n"
        "                \"seq\", \"replayed\", \"body\"}\n"
        "Events missed (the publisher dropped them for a slow reader) are\n"
        "counted on stderr at the end.\n"
        "exit: 0 done, 1 fewer than N events came in time, 2 bad usage\n");
}

//  TEXT as a JSON string (sub's own fields, from the network); NULL if
//  it cannot be made
static char *
s_json_string (const char *text)
{
    json_t *string = s_json_text (text);
    char *dumped = string ? json_dumps (string, JSON_ENCODE_ANY) : NULL;
    json_decref (string);
    return dumped;
}

//  One line for EVENT on stdout, at once, so that whoever reads the output
//  sees each event as it comes
static void
s_sub_print (shoal_event_t *event, bool as_json)
{
    const char *topic = shoal_event_topic (event);
    char *body = shoal_event_json (event);
    if (!body) {
        //  It came all the same: it counts towards --count
        fprintf (stderr, "warning: an event on '%s' has a body that cannot be shown\n",
                 topic);
        return;
    }
    if (as_json) {
        //  The body goes in as the library wrote it: parsing it again would
        //  change what jansson cannot hold (integers above INT64_MAX)
        char *topic_text = s_json_string (topic);
        char *publisher = s_json_string (shoal_event_publisher (event));
        printf ("{\"topic\":%s,\"publisher\":%s,\"seq\":%" PRIu64
                ",\"replayed\":%s,\"body\":%s}\n",
                topic_text ? topic_text : "null", publisher ? publisher : "null",
                shoal_event_seq (event), shoal_event_replayed (event) ? "true" : "false",
                body);
        free (topic_text);
        free (publisher);
    } else
        printf ("%s %s\n", topic, body);
    fflush (stdout);
    free (body);
}

//  Prints events until COUNT came (0: no limit), TIMEOUT ms passed
//  without one (0: no limit), or a signal. Returns how many came.
static size_t
s_sub_loop (shoal_subscriber_t *subscriber, size_t count, int timeout, bool as_json)
{
    size_t received = 0;
    int64_t last = zclock_mono ();
    while (!s_stopping && (count == 0 || received < count)) {
        int slice = S_SUB_SLICE_MS;
        if (timeout) {
            int64_t left = last + timeout - zclock_mono ();
            if (left <= 0)
                break;
            if (left < slice)
                slice = (int)left;
        }
        shoal_event_t *event = shoal_subscriber_recv (subscriber, slice);
        if (!event)
            continue;
        s_sub_print (event, as_json);
        shoal_event_destroy (&event);
        received++;
        last = zclock_mono ();
    }
    return received;
}

//  Subscribes to the patterns and prints events. SIGNALS (SIGINT and
//  SIGTERM) are blocked in this thread, and so in every thread the node
//  started: they are let in only while the loop waits, so that a signal
//  never interrupts a wait inside the library, where it would be taken
//  for an answer.
static int
s_sub_run (options_t *options, char **patterns, int patterns_size, size_t count,
           int timeout, bool as_json, sigset_t *signals)
{
    shoal_subscriber_t *subscriber = shoal_subscriber_new (options->node);
    if (!subscriber) {
        fprintf (stderr, "error: RESOURCE_EXHAUSTED: cannot make a subscriber\n");
        return S_EXIT_ERROR;
    }
    int rc = S_EXIT_OK;
    for (int index = 0; index < patterns_size && rc == S_EXIT_OK; index++)
        if (shoal_subscriber_subscribe (subscriber, patterns[index])) {
            fprintf (stderr, "error: INVALID_ARGUMENT: cannot subscribe to '%s'\n",
                     patterns[index]);
            rc = S_EXIT_USAGE;
        }
    if (rc == S_EXIT_OK) {
        pthread_sigmask (SIG_UNBLOCK, signals, NULL);
        size_t received = s_sub_loop (subscriber, count, timeout, as_json);
        pthread_sigmask (SIG_BLOCK, signals, NULL);
        if (count && received < count && !s_stopping) {
            fprintf (stderr, "error: DEADLINE_EXCEEDED: got %zu of %zu events\n",
                     received, count);
            rc = S_EXIT_ERROR;
        }
        shoal_event_stats_t stats = shoal_subscriber_stats (subscriber);
        if (stats.missed)
            fprintf (stderr,
                     "warning: missed %" PRIu64 " events (%" PRIu64 " replayed, %" PRIu64
                     " lost)\n",
                     stats.missed, stats.recovered, stats.lost);
    }
    shoal_subscriber_destroy (&subscriber);
    return rc;
}

static int
s_sub (options_t *options, int argc, char **argv)
{
    static struct option flags[] = { { "count", required_argument, NULL, 'c' },
                                     { "timeout", required_argument, NULL, 't' },
                                     { "json", no_argument, NULL, 'j' },
                                     { "help", no_argument, NULL, 'h' },
                                     S_GLOBAL_FLAGS,
                                     { NULL, 0, NULL, 0 } };
    size_t count = 0;
    int timeout = 0;
    bool as_json = false;
    int opt;
    while ((opt = getopt_long (argc, argv, ":", flags, NULL)) != -1) {
        if (s_options_flag (options, opt, optarg))
            continue;
        if (opt == 'c') {
            if (!s_parse_count (optarg, 1, &count))
                return s_usage_error (
                    s_sub_usage, "--count must be a number above 0, got '%s'", optarg);
        } else if (opt == 't') {
            if (!s_parse_ms (optarg, &timeout))
                return s_usage_error (s_sub_usage,
                                      "--timeout must be milliseconds above 0, got '%s'",
                                      optarg);
        } else if (opt == 'j')
            as_json = true;
        else if (opt == 'h') {
            s_sub_usage (stdout);
            return S_EXIT_OK;
        } else
            return s_bad_flag (s_sub_usage, opt, argv);
    }
    int patterns_size = argc - optind;
    if (patterns_size < 1)
        return s_usage_error (s_sub_usage, "shoal sub needs at least one PATTERN");
    if (patterns_size > SHOAL_MAX_PATTERNS)
        return s_usage_error (s_sub_usage, "shoal sub takes at most %d patterns",
                              SHOAL_MAX_PATTERNS);
    //  Bad patterns are refused before joining for nothing
    for (int index = optind; index < argc; index++)
        if (!shoal_pattern_valid (argv[index])) {
            char *shown = s_printable (argv[index]);
            fprintf (
                stderr,
                "error: INVALID_ARGUMENT: bad pattern '%s': it takes dot-separated "
                "segments of [A-Za-z0-9_-], or '*' or '**' alone, at most %d bytes\n",
                shown, SHOAL_MAX_TOPIC);
            free (shown);
            return S_EXIT_USAGE;
        }
    //  A signal must end sub cleanly (its node says goodbye), not kill it:
    //  the handler raises a flag that the loop reads between its waits.
    //  SA_RESTART, so that a line being written when it comes is written
    sigset_t signals;
    sigemptyset (&signals);
    sigaddset (&signals, SIGINT);
    sigaddset (&signals, SIGTERM);
    pthread_sigmask (SIG_BLOCK, &signals, NULL);
    struct sigaction action;
    memset (&action, 0, sizeof (action));
    action.sa_handler = s_on_stop_signal;
    action.sa_flags = SA_RESTART;
    sigemptyset (&action.sa_mask);
    sigaction (SIGINT, &action, NULL);
    sigaction (SIGTERM, &action, NULL);
    int rc = s_join (options, S_JOIN_MS);
    if (rc == S_EXIT_OK)
        rc = s_sub_run (options, argv + optind, patterns_size, count, timeout, as_json,
                        &signals);
    return rc;
}

//  shoal help

static int
s_help (options_t *options, int argc, char **argv)
{
    s_usage (stdout);
    return S_EXIT_OK;
}

//  Takes the global flags up to the command's name, then runs the command.
static int
s_run (options_t *options, int argc, char **argv)
{
    static struct option flags[] = { { "help", no_argument, NULL, 'h' },
                                     { "version", no_argument, NULL, 'V' },
                                     S_GLOBAL_FLAGS,
                                     { NULL, 0, NULL, 0 } };
    //  "+": stop at the command; what follows is the command's to parse
    int opt;
    while ((opt = getopt_long (argc, argv, "+:", flags, NULL)) != -1) {
        if (s_options_flag (options, opt, optarg))
            continue;
        if (opt == 'h') {
            s_usage (stdout);
            return S_EXIT_OK;
        }
        if (opt == 'V') {
            printf ("shoal %d.%d.%d (protocol %d)\n", SHOAL_VERSION_MAJOR,
                    SHOAL_VERSION_MINOR, SHOAL_VERSION_PATCH, SHOAL_PROTOCOL_VERSION);
            return S_EXIT_OK;
        }
        return s_bad_flag (s_usage, opt, argv);
    }
    if (optind == argc)
        return s_usage_error (s_usage, "no command given");

    const char *name = argv[optind];
    for (size_t index = 0; index < S_COMMANDS; index++) {
        command_t *command = &s_commands[index];
        if (streq (command->name, name)) {
            if (!command->handler) {
                fprintf (stderr,
                         "error: UNIMPLEMENTED: 'shoal %s' is not available yet\n", name);
                return S_EXIT_ERROR;
            }
            //  The command parses from its own name on; optind 0 makes
            //  glibc's getopt start afresh, in its default mode that takes
            //  flags anywhere among the arguments
            int first = optind;
            optind = 0;
            return command->handler (options, argc - first, argv + first);
        }
    }
    return s_usage_error (s_usage, "unknown command '%s'", name);
}

int
main (int argc, char **argv)
{
    //  Ctrl-C must end a command at once, as it does any other command;
    //  CZMQ's handler would only raise a flag and leave a call waiting
    zsys_handler_set (NULL);
    //  stdout carries replies as JSON; anything the library logs goes aside
    zsys_set_logstream (stderr);
    //  We print our own messages, all in the one "error: ..." shape
    opterr = 0;
    options_t options;
    s_options_init (&options);
    //  A command destroys its clients and calls before it returns; the node
    //  they used goes after them, last of all
    int rc = s_run (&options, argc, argv);
    //  Whatever the exit costs, the answer is out already
    fflush (stdout);
    s_options_destroy (&options);
    return rc;
}
