/*  shoal_wire - encoder and decoder of the version 1 frames.

    request header: ["shoal", 1, "REQ", id, service, method, timeout_ms, meta]
    reply header:   ["shoal", 1, "REP", id, status, message]

    The decoder trusts nothing: it runs the allocation-free msgpack check
    first (sizes and depth), then unpacks into a zone that the caller reuses,
    so a steady stream of requests costs no allocation here.                 */
#include "shoal_private.h"

void
shoal_wire_pack_string (msgpack_packer *packer, const char *string)
{
    size_t size = strlen (string);
    msgpack_pack_str (packer, size);
    msgpack_pack_str_body (packer, string, size);
}

static void
s_pack_preamble (msgpack_packer *packer, size_t fields, const char *kind)
{
    msgpack_pack_array (packer, fields);
    shoal_wire_pack_string (packer, SHOAL_WIRE_SIGNATURE);
    msgpack_pack_uint8 (packer, SHOAL_PROTOCOL_VERSION);
    shoal_wire_pack_string (packer, kind);
}

void
shoal_wire_encode_request (msgpack_sbuffer *out, uint64_t id, const char *service,
                           const char *method, uint32_t timeout_ms, const void *meta,
                           size_t meta_size)
{
    msgpack_packer packer;
    msgpack_packer_init (&packer, out, msgpack_sbuffer_write);
    s_pack_preamble (&packer, 8, "REQ");
    msgpack_pack_uint64 (&packer, id);
    shoal_wire_pack_string (&packer, service);
    shoal_wire_pack_string (&packer, method);
    msgpack_pack_uint32 (&packer, timeout_ms);
    if (meta && meta_size)
        msgpack_sbuffer_write (out, (const char *) meta, meta_size);
    else
        msgpack_pack_map (&packer, 0);
}

void
shoal_wire_encode_reply (msgpack_sbuffer *out, uint64_t id, int status,
                         const char *message)
{
    msgpack_packer packer;
    msgpack_packer_init (&packer, out, msgpack_sbuffer_write);
    s_pack_preamble (&packer, 6, "REP");
    msgpack_pack_uint64 (&packer, id);
    msgpack_pack_int (&packer, status);
    //  Our own error texts are bounded, so a handler's long message cannot
    //  grow every reply without limit
    size_t size = message ? strlen (message) : 0;
    if (size > SHOAL_WIRE_MAX_MESSAGE) {
        //  Cut on a character boundary: a str must stay valid UTF-8, or
        //  strict decoders (Python's msgpack) cannot read the status at all
        size = SHOAL_WIRE_MAX_MESSAGE;
        while (size > 0 && ((unsigned char) message [size] & 0xC0) == 0x80)
            size--;
    }
    msgpack_pack_str (&packer, size);
    msgpack_pack_str_body (&packer, message ? message : "", size);
}

bool
shoal_wire_valid_name (const char *name, size_t size)
{
    if (size == 0 || size > SHOAL_MAX_NAME)
        return false;
    for (size_t index = 0; index < size; index++) {
        char c = name [index];
        if (!(isalnum ((unsigned char) c) || c == '.' || c == '_' || c == '-'
              || (c == '$' && index == 0)))
            return false;
    }
    return true;
}

static bool
s_is_string (const msgpack_object *object, const char *expected)
{
    return object->type == MSGPACK_OBJECT_STR
        && object->via.str.size == strlen (expected)
        && memcmp (object->via.str.ptr, expected, object->via.str.size) == 0;
}

static bool
s_get_uint (const msgpack_object *object, uint64_t *value)
{
    if (object->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return false;
    *value = object->via.u64;
    return true;
}

//  Checks that META is a map of bounded strings to bounded strings
static bool
s_valid_meta (const msgpack_object *meta, char *error, size_t error_size)
{
    if (meta->type != MSGPACK_OBJECT_MAP) {
        snprintf (error, error_size, "metadata must be a map");
        return false;
    }
    if (meta->via.map.size > SHOAL_WIRE_MAX_META) {
        snprintf (error, error_size, "metadata has %u entries, limit is %d",
                  meta->via.map.size, SHOAL_WIRE_MAX_META);
        return false;
    }
    for (uint32_t index = 0; index < meta->via.map.size; index++) {
        const msgpack_object *key = &meta->via.map.ptr [index].key;
        const msgpack_object *value = &meta->via.map.ptr [index].val;
        if (key->type != MSGPACK_OBJECT_STR || value->type != MSGPACK_OBJECT_STR) {
            snprintf (error, error_size, "metadata keys and values must be strings");
            return false;
        }
        if (key->via.str.size > SHOAL_WIRE_MAX_META_KEY
            || value->via.str.size > SHOAL_WIRE_MAX_META_VALUE) {
            snprintf (error, error_size, "metadata entry longer than %d/%d bytes",
                      SHOAL_WIRE_MAX_META_KEY, SHOAL_WIRE_MAX_META_VALUE);
            return false;
        }
    }
    return true;
}

static shoal_status_t
s_decode_request (const msgpack_object *fields, uint32_t count,
                  shoal_wire_header_t *header, char *error, size_t error_size)
{
    uint64_t timeout;
    if (count != 8) {
        snprintf (error, error_size, "request header has %u fields, expected 8", count);
        return SHOAL_INVALID_ARGUMENT;
    }
    if (fields [4].type != MSGPACK_OBJECT_STR || fields [5].type != MSGPACK_OBJECT_STR) {
        snprintf (error, error_size, "service and method must be strings");
        return SHOAL_INVALID_ARGUMENT;
    }
    header->service = fields [4].via.str.ptr;
    header->service_size = fields [4].via.str.size;
    header->method = fields [5].via.str.ptr;
    header->method_size = fields [5].via.str.size;
    if (!shoal_wire_valid_name (header->service, header->service_size)
        || !shoal_wire_valid_name (header->method, header->method_size)) {
        snprintf (error, error_size,
                  "service and method names must be 1..%d bytes of [A-Za-z0-9._-]",
                  SHOAL_MAX_NAME);
        return SHOAL_INVALID_ARGUMENT;
    }
    if (!s_get_uint (&fields [6], &timeout) || timeout > UINT32_MAX) {
        snprintf (error, error_size, "timeout must be an integer of milliseconds");
        return SHOAL_INVALID_ARGUMENT;
    }
    header->timeout_ms = (uint32_t) timeout;
    if (!s_valid_meta (&fields [7], error, error_size))
        return SHOAL_INVALID_ARGUMENT;
    header->meta = fields [7].via.map.size ? &fields [7] : NULL;
    return SHOAL_OK;
}

static shoal_status_t
s_decode_reply (const msgpack_object *fields, uint32_t count,
                shoal_wire_header_t *header, char *error, size_t error_size)
{
    uint64_t status;
    if (count != 6) {
        snprintf (error, error_size, "reply header has %u fields, expected 6", count);
        return SHOAL_INVALID_ARGUMENT;
    }
    if (!s_get_uint (&fields [4], &status) || status > SHOAL_STATUS_MAX
        || fields [5].type != MSGPACK_OBJECT_STR) {
        snprintf (error, error_size, "reply status or message malformed");
        return SHOAL_INVALID_ARGUMENT;
    }
    header->status = (int) status;
    header->message = fields [5].via.str.ptr;
    header->message_size = fields [5].via.str.size;
    return SHOAL_OK;
}

shoal_status_t
shoal_wire_decode (const void *data, size_t size, msgpack_zone *zone,
                   shoal_wire_header_t *header, char *error, size_t error_size)
{
    memset (header, 0, sizeof (*header));
    if (size > SHOAL_WIRE_MAX_HEADER) {
        snprintf (error, error_size, "header of %zu bytes exceeds %d", size,
                  SHOAL_WIRE_MAX_HEADER);
        return SHOAL_INVALID_ARGUMENT;
    }
    char reason [128];
    //  Depth 3: the array, the metadata map, its strings
    if (shoal_reader_check (data, size, 3, reason, sizeof (reason))) {
        snprintf (error, error_size, "not a shoal header: %s", reason);
        return SHOAL_INVALID_ARGUMENT;
    }
    msgpack_object root;
    size_t offset = 0;
    if (msgpack_unpack ((const char *) data, size, &offset, zone, &root)
        != MSGPACK_UNPACK_SUCCESS) {
        snprintf (error, error_size, "not a shoal header: bad msgpack");
        return SHOAL_INVALID_ARGUMENT;
    }
    if (root.type != MSGPACK_OBJECT_ARRAY || root.via.array.size < 4
        || !s_is_string (&root.via.array.ptr [0], SHOAL_WIRE_SIGNATURE)) {
        snprintf (error, error_size, "not a shoal header (expected [\"shoal\", version, ...])");
        return SHOAL_INVALID_ARGUMENT;
    }
    const msgpack_object *fields = root.via.array.ptr;
    uint32_t count = root.via.array.size;
    //  The id first, so even a refused header can be answered in kind
    s_get_uint (&fields [3], &header->id);
    uint64_t version;
    if (!s_get_uint (&fields [1], &version) || version != SHOAL_PROTOCOL_VERSION) {
        snprintf (error, error_size,
                  "protocol version not supported: this peer speaks version %d",
                  SHOAL_PROTOCOL_VERSION);
        return SHOAL_FAILED_PRECONDITION;
    }
    if (fields [3].type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        snprintf (error, error_size, "id must be an unsigned integer");
        return SHOAL_INVALID_ARGUMENT;
    }
    if (s_is_string (&fields [2], "REQ")) {
        header->kind = SHOAL_WIRE_REQUEST;
        return s_decode_request (fields, count, header, error, error_size);
    }
    if (s_is_string (&fields [2], "REP")) {
        header->kind = SHOAL_WIRE_REPLY;
        return s_decode_reply (fields, count, header, error, error_size);
    }
    snprintf (error, error_size, "unknown message kind (expected \"REQ\" or \"REP\")");
    return SHOAL_INVALID_ARGUMENT;
}

const char *
shoal_wire_meta_get (const msgpack_object *meta, const char *key, size_t *size)
{
    if (!meta)
        return NULL;
    size_t key_size = strlen (key);
    for (uint32_t index = 0; index < meta->via.map.size; index++) {
        const msgpack_object_kv *entry = &meta->via.map.ptr [index];
        //  msgpack-c gives empty strings a NULL pointer: no memcmp on those
        if (entry->key.via.str.size == key_size
            && (key_size == 0 || memcmp (entry->key.via.str.ptr, key, key_size) == 0)) {
            *size = entry->val.via.str.size;
            return entry->val.via.str.ptr;
        }
    }
    return NULL;
}

//  --------------------------------------------------------------------------
//  Selftest

static shoal_status_t
s_decode_bytes (const char *bytes, size_t size, shoal_wire_header_t *header)
{
    msgpack_zone zone;
    msgpack_zone_init (&zone, 1024);
    char error [256];
    shoal_status_t status = shoal_wire_decode (bytes, size, &zone, header, error,
                                               sizeof (error));
    msgpack_zone_destroy (&zone);
    return status;
}

void
shoal_wire_test (bool verbose)
{
    if (verbose)
        printf (" * shoal_wire: ");

    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_zone zone;
    msgpack_zone_init (&zone, 1024);
    shoal_wire_header_t header;
    char error [256];

    //  A request round-trips, metadata included
    shoal_body_t *meta = shoal_body_pack ("{s:s}", "trace", "abc123");
    shoal_wire_encode_request (&buffer, 42, "cart", "add", 250, shoal_body_data (meta),
                               shoal_body_size (meta));
    assert (shoal_wire_decode (buffer.data, buffer.size, &zone, &header, error,
                               sizeof (error)) == SHOAL_OK);
    assert (header.kind == SHOAL_WIRE_REQUEST);
    assert (header.id == 42);
    assert (header.service_size == 4 && memcmp (header.service, "cart", 4) == 0);
    assert (header.method_size == 3 && memcmp (header.method, "add", 3) == 0);
    assert (header.timeout_ms == 250);
    size_t size;
    const char *trace = shoal_wire_meta_get (header.meta, "trace", &size);
    assert (trace && size == 6 && memcmp (trace, "abc123", 6) == 0);
    assert (shoal_wire_meta_get (header.meta, "caller", &size) == NULL);
    shoal_body_destroy (&meta);

    //  The exact bytes of a reply header, as docs/protocol.md shows them
    msgpack_sbuffer_clear (&buffer);
    shoal_wire_encode_reply (&buffer, 7, SHOAL_NOT_FOUND, "no");
    const char expected [] = "\x96\xa5shoal\x01\xa3REP\x07\x05\xa2no";
    assert (buffer.size == sizeof (expected) - 1);
    assert (memcmp (buffer.data, expected, buffer.size) == 0);
    assert (shoal_wire_decode (buffer.data, buffer.size, &zone, &header, error,
                               sizeof (error)) == SHOAL_OK);
    assert (header.kind == SHOAL_WIRE_REPLY && header.id == 7);
    assert (header.status == SHOAL_NOT_FOUND);
    assert (header.message_size == 2);

    //  Another version is told apart, and its id is still read
    const char v2 [] = "\x96\xa5shoal\x02\xa3REP\x09\x00\xa0";
    assert (s_decode_bytes (v2, sizeof (v2) - 1, &header) == SHOAL_FAILED_PRECONDITION);
    assert (header.id == 9);
    //  Stray frames, garbage and hostile counts are refused without trust
    assert (s_decode_bytes ("hello", 5, &header) == SHOAL_INVALID_ARGUMENT);
    assert (s_decode_bytes ("", 0, &header) == SHOAL_INVALID_ARGUMENT);
    assert (s_decode_bytes ("\xdd\xff\xff\xff\xff", 5, &header) == SHOAL_INVALID_ARGUMENT);
    const char not_shoal [] = "\x94\xa5other\x01\xa3REQ\x01";
    assert (s_decode_bytes (not_shoal, sizeof (not_shoal) - 1, &header)
            == SHOAL_INVALID_ARGUMENT);
    const char kind [] = "\x94\xa5shoal\x01\xa3XYZ\x01";
    assert (s_decode_bytes (kind, sizeof (kind) - 1, &header) == SHOAL_INVALID_ARGUMENT);
    //  A request with too few fields, or a name that is too long or odd
    const char short_request [] = "\x94\xa5shoal\x01\xa3REQ\x01";
    assert (s_decode_bytes (short_request, sizeof (short_request) - 1, &header)
            == SHOAL_INVALID_ARGUMENT);
    char long_name [SHOAL_MAX_NAME + 2];
    memset (long_name, 'm', sizeof (long_name) - 1);
    long_name [sizeof (long_name) - 1] = 0;
    msgpack_sbuffer_clear (&buffer);
    shoal_wire_encode_request (&buffer, 1, "echo", long_name, 0, NULL, 0);
    assert (shoal_wire_decode (buffer.data, buffer.size, &zone, &header, error,
                               sizeof (error)) == SHOAL_INVALID_ARGUMENT);
    assert (header.id == 1);
    msgpack_sbuffer_clear (&buffer);
    shoal_wire_encode_request (&buffer, 1, "echo", "a b", 0, NULL, 0);
    assert (shoal_wire_decode (buffer.data, buffer.size, &zone, &header, error,
                               sizeof (error)) == SHOAL_INVALID_ARGUMENT);
    assert (shoal_wire_valid_name ("$ping", 5));
    assert (!shoal_wire_valid_name ("pi$ng", 5));
    //  Every truncation of a valid header is refused, never misread
    msgpack_sbuffer_clear (&buffer);
    shoal_wire_encode_request (&buffer, 3, "echo", "echo", 100, NULL, 0);
    for (size_t cut = 0; cut < buffer.size; cut++)
        assert (s_decode_bytes (buffer.data, cut, &header) == SHOAL_INVALID_ARGUMENT);

    msgpack_zone_destroy (&zone);
    msgpack_sbuffer_destroy (&buffer);
    if (verbose)
        printf ("OK\n");
}
