/*  shoal - the command line: JSON on the command line and on stdout,
    msgpack on the wire. Built only on the public API.

    Exit codes: 0 success, 1 the operation failed (the reason is printed
    as "error: CODE_NAME: message" on stderr), 2 bad usage.

    Each command is one row of s_commands; a later command is a new row and
    a new handler.                                                          */
#include <czmq.h>
#include <getopt.h>
#include "shoal.h"

enum { S_EXIT_OK = 0, S_EXIT_ERROR = 1, S_EXIT_USAGE = 2 };

//  The flags every command takes. They are collected now so that scripts
//  can pass them already; discovery will act on them.
typedef struct {
    const char *cluster; //  --cluster, else SHOAL_CLUSTER; borrowed
    zlist_t *seeds;      //  --seed (repeatable), else SHOAL_SEEDS
    bool seeds_from_env; //  so the first --seed replaces them
} options_t;

typedef int (command_fn) (options_t *options, int argc, char **argv);

typedef struct {
    const char *name;
    command_fn *handler; //  NULL: named in DESIGN.md, not built yet
    const char *args;
    const char *summary;
} command_t;

static int s_call (options_t *options, int argc, char **argv);
static int s_help (options_t *options, int argc, char **argv);

static command_t s_commands[] = {
    { "ls", NULL, "[--json]", "Lists services, instances, endpoints, load and health" },
    { "call", s_call, "SERVICE METHOD [JSON] --endpoint ENDPOINT [--timeout MS]",
      "Calls METHOD with JSON as the body and prints the reply as JSON" },
    { "pub", NULL, "TOPIC JSON", "Publishes an event" },
    { "sub", NULL, "PREFIX [--count N]", "Prints events as TOPIC JSON lines" },
    { "bench", NULL,
      "SERVICE METHOD JSON [-c CONCURRENCY] [-n REQUESTS | -d SECONDS] [--json]",
      "Measures throughput and latency of one method" },
    { "run", NULL, "FILE", "Starts and supervises the services FILE lists" },
    { "keygen", NULL, "NAME", "Writes a CURVE certificate pair" },
    { "help", s_help, "", "Prints this text" },
};
#define S_COMMANDS (sizeof (s_commands) / sizeof (s_commands[0]))

//  The global flags, for the option tables of main and of every command.
#define S_GLOBAL_FLAGS                                                                   \
    { "cluster", required_argument, NULL, 'C' }, { "seed", required_argument, NULL, 'S' }

static void
s_usage (FILE *stream)
{
    fprintf (stream, "usage: shoal [--cluster NAME] [--seed ENDPOINT]... COMMAND [ARGS]\n"
                     "       shoal --help | --version\n\ncommands:\n");
    for (size_t index = 0; index < S_COMMANDS; index++) {
        command_t *command = &s_commands[index];
        fprintf (stream, "  shoal %s%s%s\n      %s%s\n", command->name,
                 *command->args ? " " : "", command->args, command->summary,
                 command->handler ? "" : " (not available yet)");
    }
    fprintf (stream, "\nevery command takes (flags win over the environment):\n"
                     "  --cluster NAME       the cluster to join (SHOAL_CLUSTER)\n"
                     "  --seed ENDPOINT      a node to meet peers through; repeatable\n"
                     "                       (SHOAL_SEEDS, comma or space separated)\n");
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
    options->cluster = getenv ("SHOAL_CLUSTER");
    options->seeds = zlist_new ();
    assert (options->seeds);
    zlist_autofree (options->seeds);
    char *seeds = getenv ("SHOAL_SEEDS");
    if (seeds) {
        //  strtok_r writes into the string, and the environment is not ours
        seeds = strdup (seeds);
        assert (seeds);
        char *saveptr;
        for (char *seed = strtok_r (seeds, ", \t\n", &saveptr); seed;
             seed = strtok_r (NULL, ", \t\n", &saveptr))
            zlist_append (options->seeds, seed);
        free (seeds);
    }
    options->seeds_from_env = true;
}

//  Takes a global flag that getopt_long returned. Returns true if OPT was one.
static bool
s_options_flag (options_t *options, int opt, const char *value)
{
    if (opt == 'C')
        options->cluster = value;
    else if (opt == 'S') {
        if (options->seeds_from_env) {
            zlist_purge (options->seeds);
            options->seeds_from_env = false;
        }
        zlist_append (options->seeds, (void *)value);
    } else
        return false;
    return true;
}

static void
s_options_destroy (options_t *options)
{
    zlist_destroy (&options->seeds);
}

//  shoal call

static void
s_call_usage (FILE *stream)
{
    fprintf (
        stream,
        "usage: shoal call SERVICE METHOD [JSON] --endpoint ENDPOINT [--timeout MS]\n"
        "Calls METHOD of SERVICE and prints the reply as one line of JSON.\n"
        "Without JSON the request has no body; put -- before a JSON that starts\n"
        "with '-' (a negative number), so it is not taken for a flag.\n"
        "  --endpoint ENDPOINT  the instance to call, e.g. tcp://127.0.0.1:5555\n"
        "  --timeout MS         deadline of the whole call (default %d)\n"
        "exit: 0 reply printed, 1 call failed, 2 bad usage\n",
        SHOAL_DEFAULT_TIMEOUT);
}

static int
s_call (options_t *options, int argc, char **argv)
{
    static struct option flags[] = { { "endpoint", required_argument, NULL, 'e' },
                                     { "timeout", required_argument, NULL, 't' },
                                     { "help", no_argument, NULL, 'h' },
                                     S_GLOBAL_FLAGS,
                                     { NULL, 0, NULL, 0 } };
    const char *endpoint = NULL;
    int timeout = SHOAL_DEFAULT_TIMEOUT;
    int opt;
    while ((opt = getopt_long (argc, argv, ":", flags, NULL)) != -1) {
        if (s_options_flag (options, opt, optarg))
            continue;
        if (opt == 'e')
            endpoint = optarg;
        else if (opt == 't') {
            char *end;
            long value = strtol (optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || value < 1 || value > INT_MAX)
                return s_usage_error (s_call_usage,
                                      "--timeout must be milliseconds above 0, got '%s'",
                                      optarg);
            timeout = (int)value;
        } else if (opt == 'h') {
            s_call_usage (stdout);
            return S_EXIT_OK;
        } else
            return s_bad_flag (s_call_usage, opt, argv);
    }
    int positionals = argc - optind;
    if (positionals < 2 || positionals > 3)
        return s_usage_error (s_call_usage, "shoal call needs SERVICE METHOD [JSON]");
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
    if (!endpoint) {
        fprintf (stderr, "error: UNAVAILABLE: calls by service name need discovery "
                         "(not yet available); use --endpoint\n");
        shoal_body_destroy (&body);
        return S_EXIT_ERROR;
    }
    shoal_client_t *client = shoal_client_new ();
    if (!client) {
        fprintf (stderr, "error: RESOURCE_EXHAUSTED: cannot make a client\n");
        shoal_body_destroy (&body);
        return S_EXIT_ERROR;
    }
    shoal_call_t *call = shoal_client_call (client, endpoint, service, method,
                                            body ? shoal_body_data (body) : NULL,
                                            body ? shoal_body_size (body) : 0, timeout);
    int rc = S_EXIT_OK;
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
    shoal_client_destroy (&client);
    shoal_body_destroy (&body);
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
    int rc = s_run (&options, argc, argv);
    s_options_destroy (&options);
    return rc;
}
