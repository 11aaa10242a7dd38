/*  shoal_mock - a scripted double of a service, for shoal_testkit.

    A mock is a real service (real socket, real wire format) with one
    instance, whose every method is served by one dispatcher: the service's
    fallback handler, so that methods need not be declared before it
    starts, and calls of methods nobody expected are served, answered
    UNIMPLEMENTED and recorded rather than refused unseen.

    The script (rules, delays) is written by the test's thread while the
    instance's thread reads it and records calls: both go through LOCK.
    Every call is signalled on CALLED, so a test waiting for calls wakes on
    the call itself.                                                         */
#include "shoal_private.h"
#include <pthread.h>

//  How long shoal_mock_idempotent waits for every node to know
#define S_IDEMPOTENT_TIMEOUT 5000
//  Calls listed in the message of a wait that fails
#define S_SHOWN_CALLS 5

//  One rule: a call of METHOD whose body contains MATCH gets REPLY, or
//  the error STATUS with MESSAGE
typedef struct {
    char *method;
    json_t *match;              //  NULL: any body
    void *reply;                //  msgpack; NULL: nil
    size_t reply_size;
    shoal_status_t status;
    char *message;
} s_rule_t;

typedef struct {
    char *method;
    int ms;
} s_delay_t;

//  One call received
typedef struct {
    char *method;
    char *body;                 //  as JSON, for people
    bool expected;
} s_call_t;

struct _shoal_mock_t {
    shoal_testkit_t *kit;
    char *name;
    shoal_service_t *service;   //  borrowed: the kit runs it
    pthread_mutex_t lock;       //  guards all that follows
    pthread_cond_t called;      //  signalled with every call
    zlistx_t *rules;            //  s_rule_t, in the order given
    zlistx_t *delays;           //  s_delay_t
    zlistx_t *calls;            //  s_call_t, in the order received
    size_t unexpected;
    char *broken;               //  the first mistake in the script, if any
};

static void
s_rule_destroy (void **item)
{
    s_rule_t *rule = (s_rule_t *) *item;
    free (rule->method);
    json_decref (rule->match);
    free (rule->reply);
    free (rule->message);
    free (rule);
    *item = NULL;
}

static void
s_delay_destroy (void **item)
{
    s_delay_t *delay = (s_delay_t *) *item;
    free (delay->method);
    free (delay);
    *item = NULL;
}

static void
s_call_destroy (void **item)
{
    s_call_t *call = (s_call_t *) *item;
    free (call->method);
    free (call->body);
    free (call);
    *item = NULL;
}

//  The JSON text of a msgpack body, for people: one line, with spaces
//  after separators, as in {"order": 3}
static char *
s_body_text (const void *data, size_t size)
{
    char *compact = shoal_body_to_json (data, size, NULL, 0);
    json_t *value = compact ? json_loads (compact, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL)
                            : NULL;
    char *text = value ? json_dumps (value, JSON_ENCODE_ANY) : NULL;
    json_decref (value);
    if (!text)
        text = compact ? compact : strdup ("(not msgpack)");
    else
        free (compact);
    return text;
}

//  --------------------------------------------------------------------------
//  The dispatcher, on the instance's thread

//  The first rule for METHOD whose match BODY contains, or NULL
static s_rule_t *
s_find_rule (shoal_mock_t *self, const char *method, json_t *body)
{
    for (s_rule_t *rule = (s_rule_t *) zlistx_first (self->rules); rule;
         rule = (s_rule_t *) zlistx_next (self->rules))
        if (streq (rule->method, method)
            && (!rule->match || (body && shoal_testkit_contains (rule->match, body, NULL, 0))))
            return rule;
    return NULL;
}

static int
s_find_delay (shoal_mock_t *self, const char *method)
{
    for (s_delay_t *delay = (s_delay_t *) zlistx_first (self->delays); delay;
         delay = (s_delay_t *) zlistx_next (self->delays))
        if (streq (delay->method, method))
            return delay->ms;
    return 0;
}

static void
s_serve (shoal_request_t *request, void *state)
{
    shoal_mock_t *self = (shoal_mock_t *) state;
    const char *method = shoal_request_method (request);
    size_t size;
    const void *data = shoal_request_body (request, &size);
    s_call_t *call = (s_call_t *) zmalloc (sizeof (s_call_t));
    call->method = strdup (method);
    call->body = s_body_text (data, size);
    json_t *body = json_loads (call->body, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);

    //  Decide under the lock, with copies of the answer; answer outside it
    void *reply = NULL;
    size_t reply_size = 0;
    shoal_status_t status = SHOAL_OK;
    char *message = NULL;
    pthread_mutex_lock (&self->lock);
    s_rule_t *rule = s_find_rule (self, method, body);
    if (rule) {
        status = rule->status;
        message = rule->message ? strdup (rule->message) : NULL;
        if (rule->reply) {
            reply = malloc (rule->reply_size);
            memcpy (reply, rule->reply, rule->reply_size);
            reply_size = rule->reply_size;
        }
    }
    else {
        status = SHOAL_UNIMPLEMENTED;
        message = zsys_sprintf ("mock %s has no rule for %s %s", self->name, method,
                                call->body);
        self->unexpected++;
    }
    call->expected = rule != NULL;
    int delay = s_find_delay (self, method);
    zlistx_add_end (self->calls, call);
    pthread_cond_broadcast (&self->called);
    pthread_mutex_unlock (&self->lock);
    json_decref (body);

    //  A slow dependency, as the test asked: sleeping is the point here. It
    //  holds this instance's thread as a slow handler would, and nothing
    //  else (the lock is free, heartbeats run on the node's thread)
    if (delay > 0)
        zclock_sleep (delay);
    if (status != SHOAL_OK)
        shoal_request_fail (request, status, "%s", message ? message : "");
    else if (reply)
        shoal_request_reply_raw (request, reply, reply_size);
    else
        shoal_request_reply_raw (request, "\xc0", 1);      //  nil
    free (reply);
    free (message);
}

//  --------------------------------------------------------------------------
//  Made and owned by the kit

shoal_mock_t *
shoal_mock_new (shoal_testkit_t *kit, const char *service, shoal_service_t **service_p)
{
    shoal_service_t *double_service = service ? shoal_service_new (service, "mock") : NULL;
    if (!double_service)
        return NULL;
    shoal_mock_t *self = (shoal_mock_t *) zmalloc (sizeof (shoal_mock_t));
    self->kit = kit;
    self->name = strdup (service);
    self->service = double_service;
    pthread_mutex_init (&self->lock, NULL);
    pthread_condattr_t attributes;
    pthread_condattr_init (&attributes);
    pthread_condattr_setclock (&attributes, CLOCK_MONOTONIC);
    pthread_cond_init (&self->called, &attributes);
    pthread_condattr_destroy (&attributes);
    self->rules = zlistx_new ();
    zlistx_set_destructor (self->rules, s_rule_destroy);
    self->delays = zlistx_new ();
    zlistx_set_destructor (self->delays, s_delay_destroy);
    self->calls = zlistx_new ();
    zlistx_set_destructor (self->calls, s_call_destroy);
    //  Without a state callback, every handler gets the mock itself
    shoal_service_set_state (double_service, NULL, NULL, self);
    shoal_service_fallback (double_service, s_serve);
    *service_p = double_service;
    return self;
}

void
shoal_mock_destroy (shoal_mock_t **self_p)
{
    shoal_mock_t *self = *self_p;
    if (!self)
        return;
    zlistx_destroy (&self->rules);
    zlistx_destroy (&self->delays);
    zlistx_destroy (&self->calls);
    pthread_cond_destroy (&self->called);
    pthread_mutex_destroy (&self->lock);
    free (self->name);
    free (self->broken);
    free (self);
    *self_p = NULL;
}

//  --------------------------------------------------------------------------
//  The script

//  Keeps the first mistake in the script, for shoal_mock_verify, and says
//  it in the kit's error at once
static void __attribute__ ((format (printf, 2, 3)))
s_broken (shoal_mock_t *self, const char *format, ...)
{
    char text [512];
    va_list args;
    va_start (args, format);
    vsnprintf (text, sizeof (text), format, args);
    va_end (args);
    if (!self->broken)
        self->broken = zsys_sprintf ("mock %s: %s", self->name, text);
    shoal_testkit_fail (self->kit, "mock %s: %s", self->name, text);
}

static bool
s_valid_method (shoal_mock_t *self, const char *function, const char *method)
{
    if (method && *method != '$' && shoal_wire_valid_name (method, strlen (method)))
        return true;
    s_broken (self, "%s: '%s' is not a method name", function, method ? method : "(null)");
    return false;
}

//  Adds a rule; MATCH and REPLY are JSON (or NULL)
static void
s_add_rule (shoal_mock_t *self, const char *function, const char *method, const char *match,
            const char *reply, shoal_status_t status, const char *message)
{
    if (!s_valid_method (self, function, method))
        return;
    s_rule_t *rule = (s_rule_t *) zmalloc (sizeof (s_rule_t));
    rule->method = strdup (method);
    rule->status = status;
    rule->message = message ? strdup (message) : NULL;
    if (match) {
        json_error_t error;
        rule->match = json_loads (match, JSON_DECODE_ANY, &error);
        if (!rule->match) {
            s_broken (self, "%s %s: the match is not JSON: %s (line %d, column %d)",
                      function, method, error.text, error.line, error.column);
            s_rule_destroy ((void **) &rule);
            return;
        }
    }
    if (reply) {
        char error [256];
        shoal_body_t *body = shoal_body_from_json (reply, error, sizeof (error));
        if (!body) {
            s_broken (self, "%s %s: the reply is not JSON: %s", function, method, error);
            s_rule_destroy ((void **) &rule);
            return;
        }
        rule->reply_size = shoal_body_size (body);
        rule->reply = malloc (rule->reply_size);
        memcpy (rule->reply, shoal_body_data (body), rule->reply_size);
        shoal_body_destroy (&body);
    }
    pthread_mutex_lock (&self->lock);
    zlistx_add_end (self->rules, rule);
    pthread_mutex_unlock (&self->lock);
}

void
shoal_mock_on (shoal_mock_t *self, const char *method, const char *match, const char *reply)
{
    s_add_rule (self, "on", method, match, reply, SHOAL_OK, NULL);
}

void
shoal_mock_fail (shoal_mock_t *self, const char *method, const char *match,
                 shoal_status_t status, const char *message)
{
    if (status == SHOAL_OK || (int) status < 0 || status > SHOAL_STATUS_MAX) {
        s_broken (self, "fail %s: %d is not an error status", method ? method : "(null)",
                  (int) status);
        return;
    }
    s_add_rule (self, "fail", method, match, NULL, status, message ? message : "");
}

void
shoal_mock_delay (shoal_mock_t *self, const char *method, int ms)
{
    if (!s_valid_method (self, "delay", method))
        return;
    pthread_mutex_lock (&self->lock);
    s_delay_t *delay = NULL;
    for (delay = (s_delay_t *) zlistx_first (self->delays); delay;
         delay = (s_delay_t *) zlistx_next (self->delays))
        if (streq (delay->method, method))
            break;
    if (!delay) {
        delay = (s_delay_t *) zmalloc (sizeof (s_delay_t));
        delay->method = strdup (method);
        zlistx_add_end (self->delays, delay);
    }
    delay->ms = ms > 0 ? ms : 0;
    pthread_mutex_unlock (&self->lock);
}

void
shoal_mock_idempotent (shoal_mock_t *self, const char *method)
{
    if (!s_valid_method (self, "idempotent", method))
        return;
    shoal_service_set_idempotent (self->service, method);
    //  Callers decide from their node's view: done once every node knows
    if (shoal_testkit_wait_idempotent (self->kit, self->name, method, S_IDEMPOTENT_TIMEOUT))
        s_broken (self, "idempotent %s: %s", method, shoal_testkit_error (self->kit));
}

//  --------------------------------------------------------------------------
//  What it got

//  Calls of METHOD so far; under the lock
static size_t
s_calls (shoal_mock_t *self, const char *method)
{
    size_t count = 0;
    for (s_call_t *call = (s_call_t *) zlistx_first (self->calls); call;
         call = (s_call_t *) zlistx_next (self->calls))
        count += method && streq (call->method, method);
    return count;
}

size_t
shoal_mock_calls (shoal_mock_t *self, const char *method)
{
    pthread_mutex_lock (&self->lock);
    size_t count = s_calls (self, method);
    pthread_mutex_unlock (&self->lock);
    return count;
}

char *
shoal_mock_body (shoal_mock_t *self, const char *method, size_t number)
{
    char *body = NULL;
    pthread_mutex_lock (&self->lock);
    for (s_call_t *call = (s_call_t *) zlistx_first (self->calls); call && !body;
         call = (s_call_t *) zlistx_next (self->calls))
        if (method && streq (call->method, method) && number-- == 0)
            body = strdup (call->body);
    pthread_mutex_unlock (&self->lock);
    return body;
}

int
shoal_mock_wait_calls (shoal_mock_t *self, const char *method, size_t count, int timeout_ms)
{
    struct timespec deadline;
    clock_gettime (CLOCK_MONOTONIC, &deadline);
    int timeout = timeout_ms > 0 ? timeout_ms : 0;
    deadline.tv_sec += timeout / 1000;
    deadline.tv_nsec += (long) (timeout % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock (&self->lock);
    size_t got = s_calls (self, method);
    while (got < count && pthread_cond_timedwait (&self->called, &self->lock, &deadline) == 0)
        got = s_calls (self, method);
    got = s_calls (self, method);
    if (got >= count) {
        pthread_mutex_unlock (&self->lock);
        return 0;
    }
    //  Says what came instead: the call awaited may have come under
    //  another name, or with a body no rule took
    char seen [1024] = "";
    size_t total = zlistx_size (self->calls);
    size_t shown = 0;
    for (s_call_t *call = (s_call_t *) zlistx_first (self->calls);
         call && shown < S_SHOWN_CALLS; call = (s_call_t *) zlistx_next (self->calls)) {
        size_t used = strlen (seen);
        snprintf (seen + used, sizeof (seen) - used, "%s%s %s", shown ? "; " : "",
                  call->method, call->body);
        shown++;
    }
    pthread_mutex_unlock (&self->lock);
    return shoal_testkit_fail (self->kit,
                               "waited %d ms for %zu call%s of %s.%s; it had %zu "
                               "(all calls: %s%s)", timeout_ms, count, count == 1 ? "" : "s",
                               self->name, method ? method : "(null)", got,
                               total ? seen : "none", total > shown ? "; ..." : "");
}

int
shoal_mock_verify (shoal_mock_t *self)
{
    pthread_mutex_lock (&self->lock);
    char *broken = self->broken ? strdup (self->broken) : NULL;
    size_t unexpected = self->unexpected;
    char *first = NULL;
    for (s_call_t *call = (s_call_t *) zlistx_first (self->calls); call && !first;
         call = (s_call_t *) zlistx_next (self->calls))
        if (!call->expected)
            first = zsys_sprintf ("%s %s", call->method, call->body);
    pthread_mutex_unlock (&self->lock);
    int rc = 0;
    if (broken)
        rc = shoal_testkit_fail (self->kit, "%s", broken);
    else if (unexpected == 1)
        rc = shoal_testkit_fail (self->kit, "%s got an unexpected call: %s", self->name, first);
    else if (unexpected > 1)
        rc = shoal_testkit_fail (self->kit, "%s got %zu unexpected calls; the first: %s",
                                 self->name, unexpected, first);
    free (broken);
    free (first);
    return rc;
}
