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

#endif
