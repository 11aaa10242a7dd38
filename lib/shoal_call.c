/*  shoal_call - one call, from the moment it is sent to its final status.
    The reply stays in the zmq_msg_t it arrived in, and the body is read in
    place after the header: no copy.                                         */
#include "shoal_private.h"

struct _shoal_call_t {
    shoal_client_t *client;     //  NULL once detached (done inline, or client gone)
    uint64_t id;
    int64_t deadline;           //  zclock_mono ms
    bool done;
    shoal_status_t status;
    char *message;              //  NULL when empty: most calls have none
    zmq_msg_t body;
    size_t body_offset;         //  where the body starts in BODY
    shoal_reader_t *reader;
    void *handle;               //  the client's handle for this call, if any
    void *route;                //  the client's routing state, calls by name
    void (*route_destructor) (void **);
};

shoal_call_t *
shoal_call_new (shoal_client_t *client, uint64_t id, int64_t deadline)
{
    shoal_call_t *self = (shoal_call_t *) zmalloc (sizeof (shoal_call_t));
    self->client = client;
    self->id = id;
    self->deadline = deadline;
    self->status = SHOAL_UNKNOWN;
    zmq_msg_init (&self->body);
    return self;
}

void
shoal_call_destroy (shoal_call_t **self_p)
{
    shoal_call_t *self = *self_p;
    if (!self)
        return;
    if (self->client)
        shoal_client_forget (self->client, self);
    if (self->route)
        self->route_destructor (&self->route);
    shoal_reader_destroy (&self->reader);
    zmq_msg_close (&self->body);
    zstr_free (&self->message);
    free (self);
    *self_p = NULL;
}

static void
s_finish (shoal_call_t *self, shoal_status_t status, char *message)
{
    assert (!self->done);
    self->done = true;
    self->status = status;
    self->message = message;
}

void
shoal_call_finish (shoal_call_t *self, shoal_status_t status, const char *message,
                   const void *body, size_t size)
{
    if (status == SHOAL_OK && body && size) {
        zmq_msg_close (&self->body);
        zmq_msg_init_size (&self->body, size);
        memcpy (zmq_msg_data (&self->body), body, size);
    }
    s_finish (self, status, message && *message ? strdup (message) : NULL);
}

void
shoal_call_finish_msg (shoal_call_t *self, shoal_status_t status, const char *message,
                       size_t message_size, zmq_msg_t *reply, size_t body_offset)
{
    if (status == SHOAL_OK) {
        zmq_msg_move (&self->body, reply);
        self->body_offset = body_offset;
    }
    char *copy = NULL;
    if (message_size) {
        copy = (char *) malloc (message_size + 1);
        memcpy (copy, message, message_size);
        copy [message_size] = 0;
    }
    s_finish (self, status, copy);
}

void
shoal_call_finishf (shoal_call_t *self, shoal_status_t status, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    s_finish (self, status, zsys_vprintf (format, args));
    va_end (args);
}

uint64_t
shoal_call_id (shoal_call_t *self)
{
    return self->id;
}

int64_t
shoal_call_deadline (shoal_call_t *self)
{
    return self->deadline;
}

void
shoal_call_set_id (shoal_call_t *self, uint64_t id)
{
    self->id = id;
}

void
shoal_call_set_route (shoal_call_t *self, void *route, void (*destructor) (void **))
{
    self->route = route;
    self->route_destructor = destructor;
}

void *
shoal_call_route (shoal_call_t *self)
{
    return self->route;
}

void
shoal_call_detach (shoal_call_t *self)
{
    self->client = NULL;
    self->handle = NULL;
}

void **
shoal_call_handle (shoal_call_t *self)
{
    return &self->handle;
}

shoal_status_t
shoal_call_wait (shoal_call_t *self)
{
    assert (self);
    if (self->client)
        return shoal_client_wait_for (self->client, self);
    return self->status;
}

bool
shoal_call_done (shoal_call_t *self)
{
    return self->done;
}

shoal_status_t
shoal_call_status (shoal_call_t *self)
{
    return self->done ? self->status : SHOAL_UNKNOWN;
}

const char *
shoal_call_message (shoal_call_t *self)
{
    return self->message ? self->message : "";
}

const void *
shoal_call_body (shoal_call_t *self, size_t *size)
{
    *size = zmq_msg_size (&self->body) - self->body_offset;
    return (const char *) zmq_msg_data (&self->body) + self->body_offset;
}

int
shoal_call_get (shoal_call_t *self, const char *format, ...)
{
    if (!self->reader) {
        size_t size;
        const void *body = shoal_call_body (self, &size);
        self->reader = shoal_reader_new (body, size);
    }
    if (!self->done || self->status != SHOAL_OK)
        return -1;
    va_list args;
    va_start (args, format);
    int rc = shoal_reader_vget (self->reader, format, args);
    va_end (args);
    return rc;
}

const char *
shoal_call_get_error (shoal_call_t *self)
{
    if (self->done && self->status != SHOAL_OK)
        return "the call failed";
    return self->reader ? shoal_reader_error (self->reader) : "";
}

char *
shoal_call_json (shoal_call_t *self)
{
    if (!self->done || self->status != SHOAL_OK)
        return NULL;
    size_t size;
    const void *body = shoal_call_body (self, &size);
    return shoal_body_to_json (body, size, NULL, 0);
}
