/*  shoal_event - one event as a subscriber gets it. Made from the frame it
    arrived in, which it keeps (the body is read in place), or from the
    request of a balanced delivery, which it borrows.                       */
#include "shoal_private.h"

struct _shoal_event_t {
    zmq_msg_t frame;            //  owned, if made from a frame
    bool owns_frame;
    const char *topic;          //  in the frame (a 0 byte ends it there), or the request's
    char publisher [SHOAL_WIRE_MAX_PUBLISHER + 1];
    uint64_t seq;
    bool replayed;
    const void *meta;
    size_t meta_size;
    shoal_request_t *request;   //  a balanced delivery's, for its metadata
    shoal_node_t *node;         //  the node that received it
    const void *body;
    size_t body_size;
    shoal_reader_t *reader;     //  made on first get
    char *value;                //  the last meta value asked for, made on first use
};

static void
s_copy (char *to, size_t capacity, const char *from, size_t size)
{
    if (size >= capacity)
        size = capacity - 1;
    memcpy (to, from, size);
    to [size] = 0;
}

shoal_event_t *
shoal_event_from_frame (zmq_msg_t *frame, const shoal_wire_event_t *decoded,
                        shoal_node_t *node)
{
    //  Made for every event received: small, and only what is read is set
    shoal_event_t *self = (shoal_event_t *) malloc (sizeof (shoal_event_t));
    self->request = NULL;
    self->reader = NULL;
    self->value = NULL;
    //  A small message keeps its bytes inside the zmq_msg_t, so they move
    //  with it: the decoded pointers are kept as offsets across the move
    const uint8_t *was = (const uint8_t *) zmq_msg_data (frame);
    size_t meta_at = decoded->meta ? (size_t) ((const uint8_t *) decoded->meta - was) : 0;
    size_t body_at = (size_t) ((const uint8_t *) decoded->body - was);
    zmq_msg_init (&self->frame);
    zmq_msg_move (&self->frame, frame);
    const uint8_t *now = (const uint8_t *) zmq_msg_data (&self->frame);
    self->owns_frame = true;
    self->node = node;
    self->topic = (const char *) now;
    s_copy (self->publisher, sizeof (self->publisher), decoded->publisher,
            decoded->publisher_size);
    self->seq = decoded->seq;
    self->replayed = decoded->kind == SHOAL_WIRE_REPLAY;
    self->meta = decoded->meta ? now + meta_at : NULL;
    self->meta_size = decoded->meta_size;
    self->body = now + body_at;
    self->body_size = decoded->body_size;
    return self;
}

size_t
shoal_event_sizeof (void)
{
    return sizeof (shoal_event_t);
}

void
shoal_event_init_request (shoal_event_t *self, shoal_request_t *request, shoal_node_t *node)
{
    memset (self, 0, sizeof (*self));
    self->request = request;
    self->node = node;
    const char *topic = shoal_request_meta (request, "topic");
    const char *publisher = shoal_request_meta (request, "publisher");
    const char *seq = shoal_request_meta (request, "seq");
    self->topic = topic ? topic : "";
    snprintf (self->publisher, sizeof (self->publisher), "%s", publisher ? publisher : "");
    self->seq = seq ? strtoull (seq, NULL, 10) : 0;
    self->body = shoal_request_body (request, &self->body_size);
}

int
shoal_event_publish (shoal_event_t *self, const char *topic, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    shoal_body_t *body = shoal_body_vpack (format, args);
    va_end (args);
    if (!body || !self->node) {
        shoal_body_destroy (&body);
        return -1;
    }
    int rc = shoal_node_publish_as (self->node, topic, NULL, shoal_event_meta (self, "trace"),
                                    shoal_body_data (body), shoal_body_size (body));
    shoal_body_destroy (&body);
    return rc;
}

void
shoal_event_destroy (shoal_event_t **self_p)
{
    shoal_event_t *self = *self_p;
    if (!self)
        return;
    //  A borrowed event (a balanced delivery's) lives on in its instance:
    //  only what was made of it goes
    shoal_reader_destroy (&self->reader);
    free (self->value);
    self->value = NULL;
    if (self->owns_frame) {
        zmq_msg_close (&self->frame);
        free (self);
    }
    *self_p = NULL;
}

const char *
shoal_event_topic (shoal_event_t *self)
{
    return self->topic;
}

const char *
shoal_event_publisher (shoal_event_t *self)
{
    return self->publisher;
}

uint64_t
shoal_event_seq (shoal_event_t *self)
{
    return self->seq;
}

bool
shoal_event_replayed (shoal_event_t *self)
{
    return self->replayed;
}

const char *
shoal_event_meta (shoal_event_t *self, const char *key)
{
    if (self->request)
        return shoal_request_meta (self->request, key);
    size_t size;
    const char *value = shoal_wire_meta_get (self->meta, self->meta_size, key, &size);
    char sender [SHOAL_WIRE_MAX_PUBLISHER + 8];
    if (!value && streq (key, "sender")) {
        //  Published by the node itself: its events carry no metadata
        size = (size_t) snprintf (sender, sizeof (sender), "node/%s", self->publisher);
        value = sender;
    }
    if (!value)
        return NULL;
    if (!self->value)
        self->value = (char *) malloc (SHOAL_WIRE_MAX_META_VALUE + 1);
    s_copy (self->value, SHOAL_WIRE_MAX_META_VALUE + 1, value, size);
    return self->value;
}

const void *
shoal_event_body (shoal_event_t *self, size_t *size)
{
    *size = self->body_size;
    return self->body;
}

int
shoal_event_get (shoal_event_t *self, const char *format, ...)
{
    if (!self->reader)
        self->reader = shoal_reader_new (self->body, self->body_size);
    va_list args;
    va_start (args, format);
    int rc = shoal_reader_vget (self->reader, format, args);
    va_end (args);
    return rc;
}

const char *
shoal_event_get_error (shoal_event_t *self)
{
    return self->reader ? shoal_reader_error (self->reader) : "";
}

char *
shoal_event_json (shoal_event_t *self)
{
    return shoal_body_to_json (self->body, self->body_size, NULL, 0);
}
