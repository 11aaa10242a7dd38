/*  shoal_request - a request as its handler sees it. The instance keeps one
    request object and resets it for every message, so serving a request
    allocates nothing here unless the handler asks for fields or metadata.   */
#include "shoal_private.h"

struct _shoal_request_t {
    shoal_instance_t *instance;
    char service [SHOAL_MAX_NAME + 1];
    char method [SHOAL_MAX_NAME + 1];
    const void *body;
    size_t body_size;
    const void *meta;               //  packed, in the request's frame, or NULL
    size_t meta_size;
    int64_t deadline;               //  zclock_mono ms; 0 = none
    shoal_reader_t *reader;         //  made when the handler reads fields
    zlist_t *meta_values;           //  copies handed out by shoal_request_meta
    bool answered;
    shoal_status_t status;
    char *message;
    msgpack_sbuffer reply;
};

shoal_request_t *
shoal_request_new (shoal_instance_t *instance)
{
    shoal_request_t *self = (shoal_request_t *) zmalloc (sizeof (shoal_request_t));
    self->instance = instance;
    msgpack_sbuffer_init (&self->reply);
    return self;
}

static void
s_clear (shoal_request_t *self)
{
    shoal_reader_destroy (&self->reader);
    zlist_destroy (&self->meta_values);
    zstr_free (&self->message);
    msgpack_sbuffer_clear (&self->reply);
    self->answered = false;
    self->status = SHOAL_OK;
}

void
shoal_request_destroy (shoal_request_t **self_p)
{
    shoal_request_t *self = *self_p;
    if (!self)
        return;
    s_clear (self);
    msgpack_sbuffer_destroy (&self->reply);
    free (self);
    *self_p = NULL;
}

void
shoal_request_reset (shoal_request_t *self, const shoal_wire_header_t *header,
                     const void *body, size_t size)
{
    s_clear (self);
    memcpy (self->service, header->service, header->service_size);
    self->service [header->service_size] = 0;
    memcpy (self->method, header->method, header->method_size);
    self->method [header->method_size] = 0;
    self->body = body;
    self->body_size = size;
    self->meta = header->meta;
    self->meta_size = header->meta_size;
    self->deadline = header->timeout_ms ? zclock_mono () + header->timeout_ms : 0;
}

const char *
shoal_request_service (shoal_request_t *self)
{
    return self->service;
}

const char *
shoal_request_method (shoal_request_t *self)
{
    return self->method;
}

const void *
shoal_request_body (shoal_request_t *self, size_t *size)
{
    *size = self->body_size;
    return self->body;
}

const char *
shoal_request_meta (shoal_request_t *self, const char *key)
{
    size_t size;
    const char *value = shoal_wire_meta_get (self->meta, self->meta_size, key, &size);
    if (!value)
        return NULL;
    if (!self->meta_values) {
        self->meta_values = zlist_new ();
        zlist_autofree (self->meta_values);
    }
    char *copy = zmalloc (size + 1);
    memcpy (copy, value, size);
    zlist_append (self->meta_values, copy);    //  autofree: the list copies it
    free (copy);
    return (const char *) zlist_last (self->meta_values);
}

int
shoal_request_remaining (shoal_request_t *self)
{
    if (!self->deadline)
        return -1;
    int64_t left = self->deadline - zclock_mono ();
    return left > 0 ? (int) left : 0;
}

int
shoal_request_get (shoal_request_t *self, const char *format, ...)
{
    if (!self->reader) {
        self->reader = shoal_reader_new (self->body, self->body_size);
        shoal_reader_set_max_depth (self->reader, shoal_instance_max_depth (self->instance));
    }
    va_list args;
    va_start (args, format);
    int rc = shoal_reader_vget (self->reader, format, args);
    va_end (args);
    if (rc)
        shoal_request_fail (self, SHOAL_INVALID_ARGUMENT, "%s",
                            shoal_reader_error (self->reader));
    return rc;
}

int
shoal_request_reply (shoal_request_t *self, const char *format, ...)
{
    if (self->answered)
        return 0;
    va_list args;
    va_start (args, format);
    shoal_body_t *body = shoal_body_vpack (format, args);
    va_end (args);
    if (!body) {
        shoal_request_fail (self, SHOAL_INTERNAL, "handler of '%s' packed a bad reply",
                            self->method);
        return -1;
    }
    shoal_request_reply_raw (self, shoal_body_data (body), shoal_body_size (body));
    shoal_body_destroy (&body);
    return 0;
}

void
shoal_request_reply_raw (shoal_request_t *self, const void *data, size_t size)
{
    if (self->answered)
        return;
    self->answered = true;
    self->status = SHOAL_OK;
    msgpack_sbuffer_write (&self->reply, (const char *) data, size);
}

void
shoal_request_fail (shoal_request_t *self, shoal_status_t status, const char *format, ...)
{
    if (self->answered)
        return;
    self->answered = true;
    //  OK is not an error: a handler that "fails" with it gets INTERNAL, so
    //  that the caller does not read a nil body as success by mistake
    if (status <= SHOAL_OK || status > SHOAL_STATUS_MAX)
        status = SHOAL_INTERNAL;
    self->status = status;
    va_list args;
    va_start (args, format);
    self->message = zsys_vprintf (format, args);
    va_end (args);
}

bool
shoal_request_answered (shoal_request_t *self)
{
    return self->answered;
}

shoal_status_t
shoal_request_status (shoal_request_t *self)
{
    return self->status;
}

const char *
shoal_request_message (shoal_request_t *self)
{
    return self->message ? self->message : "";
}

const void *
shoal_request_reply_body (shoal_request_t *self, size_t *size)
{
    //  Unanswered, or failed: a nil body
    if (self->status != SHOAL_OK || self->reply.size == 0) {
        *size = 1;
        return "\xc0";
    }
    *size = self->reply.size;
    return self->reply.data;
}

const char *
shoal_request_instance (shoal_request_t *self)
{
    return shoal_instance_id (self->instance);
}

const char *
shoal_request_node (shoal_request_t *self)
{
    return shoal_instance_node (self->instance);
}

shoal_client_t *
shoal_request_client (shoal_request_t *self)
{
    return shoal_instance_client (self->instance);
}

int
shoal_request_publish (shoal_request_t *self, const char *topic, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    shoal_body_t *body = shoal_body_vpack (format, args);
    va_end (args);
    if (!body)
        return -1;
    int rc = shoal_instance_publish (self->instance, topic, shoal_request_meta (self, "trace"),
                                     shoal_body_data (body), shoal_body_size (body));
    shoal_body_destroy (&body);
    return rc;
}

shoal_call_t *
shoal_request_call (shoal_request_t *self, const char *endpoint, const char *service,
                    const char *method, const void *body, size_t size, int timeout_ms)
{
    //  The nested call gets no more time than its caller has left
    if (timeout_ms <= 0)
        timeout_ms = SHOAL_DEFAULT_TIMEOUT;
    int remaining = shoal_request_remaining (self);
    if (remaining >= 0 && remaining < timeout_ms)
        timeout_ms = remaining;
    if (timeout_ms == 0) {
        shoal_call_t *call = shoal_call_new (NULL, 0, zclock_mono ());
        shoal_call_finishf (call, SHOAL_DEADLINE_EXCEEDED,
                            "no time left of the caller's deadline");
        return call;
    }
    if (endpoint ? shoal_instance_is_self (self->instance, endpoint)
                 : shoal_instance_only_self (self->instance, service))
        return shoal_instance_call_self (self->instance, service, method, body, size,
                                         timeout_ms, self->meta, self->meta_size);
    shoal_client_t *client = shoal_instance_client (self->instance);
    shoal_call_t *call = shoal_client_send_meta (client, endpoint, service, method, body,
                                                 size, timeout_ms, self->meta,
                                                 self->meta_size);
    shoal_call_wait (call);
    return call;
}
