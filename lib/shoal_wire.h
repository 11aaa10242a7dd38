/*  shoal_wire - the frames of every message kind, version 1 (see
    docs/protocol.md). Pure functions: no sockets, no clocks.

    A request is one frame: a header, then the body; a reply too. msgpack
    values delimit themselves, so the body starts where the header ends and
    is read in place. (One frame, not two: libzmq pays per frame, about a
    third of a small call's whole cost; see docs/performance.md.) The header
    is a msgpack array that starts with the signature "shoal" and the
    protocol version, so a stray frame or a peer of another version is told
    apart from a malformed one, and gets a clear answer.                     */
#ifndef SHOAL_WIRE_H_INCLUDED
#define SHOAL_WIRE_H_INCLUDED

#define SHOAL_WIRE_SIGNATURE    "shoal"
#define SHOAL_WIRE_MAX_HEADER   8192    //  bytes in a header
#define SHOAL_WIRE_MAX_META     32      //  metadata entries
#define SHOAL_WIRE_MAX_META_KEY 64      //  bytes in a metadata key
#define SHOAL_WIRE_MAX_META_VALUE 1024  //  bytes in a metadata value
#define SHOAL_WIRE_MAX_MESSAGE  1024    //  bytes of an error message we send

typedef enum {
    SHOAL_WIRE_REQUEST = 1,
    SHOAL_WIRE_REPLY = 2
} shoal_wire_kind_t;

//  A decoded header. Strings, metadata and body point into the frame;
//  strings are NOT terminated.
typedef struct {
    shoal_wire_kind_t kind;
    uint64_t id;                //  correlation id chosen by the caller
    //  request
    const char *service;
    size_t service_size;
    const char *method;
    size_t method_size;
    uint32_t timeout_ms;        //  budget left when sent; 0 = no deadline
    const void *meta;           //  the packed map of string to string, or NULL
    size_t meta_size;
    //  reply
    int status;
    const char *message;
    size_t message_size;
    //  the body: the rest of the frame (empty means nil)
    const void *body;
    size_t body_size;
} shoal_wire_header_t;

//  Writes a request header into OUT (which it does not clear). META is a
//  packed msgpack map of strings (META_SIZE bytes), or NULL for none.
void
    shoal_wire_encode_request (msgpack_sbuffer *out, uint64_t id, const char *service,
                               const char *method, uint32_t timeout_ms, const void *meta,
                               size_t meta_size);

//  Writes a reply header into OUT (which it does not clear).
void
    shoal_wire_encode_reply (msgpack_sbuffer *out, uint64_t id, int status,
                             const char *message);

//  Decodes the header at the start of a frame, in place (no allocation);
//  HEADER->body is what follows it, not yet checked. Returns SHOAL_OK; or
//  INVALID_ARGUMENT (not a shoal frame, malformed, over a limit) or
//  FAILED_PRECONDITION (another protocol version), with the reason in
//  ERROR. HEADER->id is set whenever it could be read, else 0.
shoal_status_t
    shoal_wire_decode (const void *data, size_t size, shoal_wire_header_t *header,
                       char *error, size_t error_size);

//  Packs STRING as a msgpack str (the one helper every packer here uses).
void
    shoal_wire_pack_string (msgpack_packer *packer, const char *string);

//  True if NAME/SIZE is a valid service or method name: 1..SHOAL_MAX_NAME
//  bytes of [A-Za-z0-9._-], with a leading '$' allowed for built-ins.
bool
    shoal_wire_valid_name (const char *name, size_t size);

//  Looks KEY up in decoded metadata; returns the value and its size (not
//  terminated) or NULL.
const char *
    shoal_wire_meta_get (const void *meta, size_t meta_size, const char *key, size_t *size);

//  --------------------------------------------------------------------------
//  Events: one frame whose first bytes are the topic and a 0 byte, so that
//  ZeroMQ's prefix subscriptions filter on the topic at the publisher:
//      topic 0 ["shoal", 1, "EVT", publisher, seq, meta] body
//      topic 0 ["shoal", 1, "RPL", publisher, seq, meta] body  (a replay)
//      topic 0 ["shoal", 1, "SEQ", publisher, seq]   (last seq on the topic)
//  Upstream, from a subscriber to every publisher it is connected to, as a
//  subscription (0x01 first) withdrawn at once (0x00 first):
//      0x02 ["shoal", 1, "FILL", publisher, topic, first, last]

typedef enum {
    SHOAL_WIRE_EVENT = 3,
    SHOAL_WIRE_REPLAY = 4,
    SHOAL_WIRE_SEQ = 5
} shoal_wire_event_kind_t;

//  A decoded event frame: every pointer points into the frame
typedef struct {
    shoal_wire_event_kind_t kind;
    const char *topic;          //  checked: a valid topic
    size_t topic_size;
    const char *publisher;      //  a node id
    size_t publisher_size;
    uint64_t seq;
    const void *meta;           //  the packed map of string to string, or NULL
    size_t meta_size;
    const void *body;           //  not yet checked; empty for SEQ
    size_t body_size;
} shoal_wire_event_t;

#define SHOAL_WIRE_MAX_PUBLISHER 64     //  bytes of a publisher (node) id

//  Bytes that an event frame takes beyond its topic, meta and body
#define SHOAL_WIRE_EVENT_OVERHEAD (32 + SHOAL_WIRE_MAX_PUBLISHER)

//  Writes an event frame of KIND into OUT, which has room for its topic,
//  meta and body plus SHOAL_WIRE_EVENT_OVERHEAD bytes. META NULL writes
//  {}; BODY is ignored for SEQ. Returns the bytes written.
size_t
    shoal_wire_encode_event (void *out, shoal_wire_event_kind_t kind, const char *topic,
                             size_t topic_size, const char *publisher, uint64_t seq,
                             const void *meta, size_t meta_size, const void *body,
                             size_t body_size);

//  The exact size of an EVT frame with these fields
size_t
    shoal_wire_event_size (size_t topic_size, size_t publisher_size, uint64_t seq,
                           size_t meta_size, size_t body_size);

//  Decodes an event frame in place (no allocation). Returns SHOAL_OK; or
//  INVALID_ARGUMENT / FAILED_PRECONDITION with the reason in ERROR.
shoal_status_t
    shoal_wire_decode_event (const void *data, size_t size, shoal_wire_event_t *event,
                             char *error, size_t error_size);

//  Turns the EVT frame DATA, whose topic is TOPIC_SIZE bytes, into an RPL
//  frame in place
void
    shoal_wire_mark_replay (void *data, size_t topic_size);

//  A FILL request into OUT (CAPACITY bytes): returns its size, 0 if it does
//  not fit. And its decoder: true if DATA is a well-formed FILL.
#define SHOAL_WIRE_FILL_MARK 0x02
size_t
    shoal_wire_encode_fill (void *out, size_t capacity, const char *publisher,
                            const char *topic, uint64_t first, uint64_t last);
bool
    shoal_wire_decode_fill (const void *data, size_t size, shoal_wire_event_t *fill,
                            uint64_t *first, uint64_t *last);

#endif
