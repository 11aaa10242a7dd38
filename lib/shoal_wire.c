/*  shoal_wire - encoder and decoder of the version 1 messages.

    request: ["shoal", 1, "REQ", id, service, method, timeout_ms, meta] body
    reply:   ["shoal", 1, "REP", id, status, message] body

    The header has a fixed shape and is on the path of every call, so it is
    read in place by a small bounds-checked cursor (every length is checked
    against the bytes left before it is used; nothing is allocated) and
    written straight into bytes. Going through msgpack-c's object unpacker
    and packer cost about 2,500 instructions a call more (docs/performance
    .md); msgpack-c stays the codec of bodies, and the selftest checks these
    bytes against msgpack-c's own in both directions.                        */
#include "shoal_private.h"

void
shoal_wire_pack_string (msgpack_packer *packer, const char *string)
{
    size_t size = strlen (string);
    msgpack_pack_str (packer, size);
    msgpack_pack_str_body (packer, string, size);
}

//  --------------------------------------------------------------------------
//  Writing

static uint8_t *
s_put_uint (uint8_t *at, uint64_t value)
{
    if (value < 128)
        *at++ = (uint8_t) value;
    else if (value <= UINT8_MAX) {
        *at++ = 0xcc;
        *at++ = (uint8_t) value;
    }
    else if (value <= UINT16_MAX) {
        *at++ = 0xcd;
        *at++ = (uint8_t) (value >> 8);
        *at++ = (uint8_t) value;
    }
    else if (value <= UINT32_MAX) {
        *at++ = 0xce;
        for (int shift = 24; shift >= 0; shift -= 8)
            *at++ = (uint8_t) (value >> shift);
    }
    else {
        *at++ = 0xcf;
        for (int shift = 56; shift >= 0; shift -= 8)
            *at++ = (uint8_t) (value >> shift);
    }
    return at;
}

//  SIZE is at most 65535 here: names, messages and the like are bounded
static uint8_t *
s_put_str (uint8_t *at, const char *string, size_t size)
{
    if (size < 32)
        *at++ = (uint8_t) (0xa0 | size);
    else if (size <= UINT8_MAX) {
        *at++ = 0xd9;
        *at++ = (uint8_t) size;
    }
    else {
        *at++ = 0xda;
        *at++ = (uint8_t) (size >> 8);
        *at++ = (uint8_t) size;
    }
    memcpy (at, string, size);
    return at + size;
}

//  ["shoal", 1, KIND, id]: the first four of FIELDS fields
static uint8_t *
s_put_preamble (uint8_t *at, int fields, const char *kind, uint64_t id)
{
    *at++ = (uint8_t) (0x90 | fields);
    at = s_put_str (at, SHOAL_WIRE_SIGNATURE, 5);
    at = s_put_uint (at, SHOAL_PROTOCOL_VERSION);
    at = s_put_str (at, kind, 3);
    return s_put_uint (at, id);
}

void
shoal_wire_encode_request (msgpack_sbuffer *out, uint64_t id, const char *service,
                           const char *method, uint32_t timeout_ms, const void *meta,
                           size_t meta_size)
{
    //  Names are at most SHOAL_MAX_NAME: the fixed part fits here
    uint8_t bytes [64 + 2 * (SHOAL_MAX_NAME + 3)];
    size_t service_size = strlen (service), method_size = strlen (method);
    assert (service_size <= SHOAL_MAX_NAME && method_size <= SHOAL_MAX_NAME);
    uint8_t *at = s_put_preamble (bytes, 8, "REQ", id);
    at = s_put_str (at, service, service_size);
    at = s_put_str (at, method, method_size);
    at = s_put_uint (at, timeout_ms);
    if (!meta || !meta_size)
        *at++ = 0x80;                   //  {}
    msgpack_sbuffer_write (out, (const char *) bytes, (size_t) (at - bytes));
    if (meta && meta_size)
        msgpack_sbuffer_write (out, (const char *) meta, meta_size);
}

void
shoal_wire_encode_reply (msgpack_sbuffer *out, uint64_t id, int status, const char *message)
{
    uint8_t bytes [32 + SHOAL_WIRE_MAX_MESSAGE];
    size_t size = message ? strlen (message) : 0;
    if (size > SHOAL_WIRE_MAX_MESSAGE) {
        //  Cut on a character boundary: a str must stay valid UTF-8, or
        //  strict decoders (Python's msgpack) cannot read the status at all
        size = SHOAL_WIRE_MAX_MESSAGE;
        while (size > 0 && ((unsigned char) message [size] & 0xC0) == 0x80)
            size--;
    }
    uint8_t *at = s_put_preamble (bytes, 6, "REP", id);
    at = s_put_uint (at, (uint64_t) status);
    at = s_put_str (at, message ? message : "", size);
    msgpack_sbuffer_write (out, (const char *) bytes, (size_t) (at - bytes));
}

//  --------------------------------------------------------------------------
//  Reading

typedef struct {
    const uint8_t *at;
    const uint8_t *end;
} s_cursor_t;

static bool
s_take (s_cursor_t *cursor, size_t count, const uint8_t **bytes)
{
    if ((size_t) (cursor->end - cursor->at) < count)
        return false;
    *bytes = cursor->at;
    cursor->at += count;
    return true;
}

//  A big-endian length of WIDTH bytes
static bool
s_take_length (s_cursor_t *cursor, int width, uint64_t *value)
{
    const uint8_t *bytes;
    if (!s_take (cursor, (size_t) width, &bytes))
        return false;
    *value = 0;
    for (int index = 0; index < width; index++)
        *value = (*value << 8) | bytes [index];
    return true;
}

static bool
s_read_uint (s_cursor_t *cursor, uint64_t *value)
{
    const uint8_t *marker;
    if (!s_take (cursor, 1, &marker))
        return false;
    if (*marker < 0x80) {
        *value = *marker;
        return true;
    }
    //  uint 8/16/32/64, and int 8/16/32/64 holding a value >= 0
    static const int widths [] = { 1, 2, 4, 8 };
    if (*marker >= 0xcc && *marker <= 0xcf)
        return s_take_length (cursor, widths [*marker - 0xcc], value);
    if (*marker >= 0xd0 && *marker <= 0xd3) {
        //  Read aside: a negative value must leave VALUE as it was
        int width = widths [*marker - 0xd0];
        uint64_t read;
        if (!s_take_length (cursor, width, &read) || (read >> (8 * width - 1)) != 0)
            return false;
        *value = read;
        return true;
    }
    return false;
}

static bool
s_read_str (s_cursor_t *cursor, const char **string, size_t *size)
{
    const uint8_t *marker, *bytes;
    uint64_t length;
    if (!s_take (cursor, 1, &marker))
        return false;
    if ((*marker & 0xe0) == 0xa0)
        length = *marker & 0x1f;
    else if (*marker < 0xd9 || *marker > 0xdb
             || !s_take_length (cursor, 1 << (*marker - 0xd9), &length))
        return false;
    if (!s_take (cursor, (size_t) length, &bytes))
        return false;
    *string = (const char *) bytes;
    *size = (size_t) length;
    return true;
}

//  An array (BASE 0x90, 0xdc) or a map (BASE 0x80, 0xde) header
static bool
s_read_count (s_cursor_t *cursor, uint8_t fix, uint8_t wide, uint32_t *count)
{
    const uint8_t *marker;
    uint64_t length;
    if (!s_take (cursor, 1, &marker))
        return false;
    if ((*marker & 0xf0) == fix)
        length = *marker & 0x0f;
    else if (*marker != wide && *marker != wide + 1)
        return false;
    else if (!s_take_length (cursor, *marker == wide ? 2 : 4, &length))
        return false;
    *count = (uint32_t) length;
    return true;
}

static bool
s_is (const char *string, size_t size, const char *expected)
{
    return size == strlen (expected) && memcmp (string, expected, size) == 0;
}

//  The metadata map: string keys and values, bounded; its bytes stay where
//  they are, and are read again by key when asked for
static bool
s_read_meta (s_cursor_t *cursor, shoal_wire_header_t *header, char *error, size_t error_size)
{
    const uint8_t *start = cursor->at;
    uint32_t count;
    if (!s_read_count (cursor, 0x80, 0xde, &count)) {
        snprintf (error, error_size, "metadata must be a map");
        return false;
    }
    if (count > SHOAL_WIRE_MAX_META) {
        snprintf (error, error_size, "metadata has %u entries, limit is %d", count,
                  SHOAL_WIRE_MAX_META);
        return false;
    }
    for (uint32_t index = 0; index < count; index++) {
        const char *key, *value;
        size_t key_size, value_size;
        if (!s_read_str (cursor, &key, &key_size) || !s_read_str (cursor, &value, &value_size)) {
            snprintf (error, error_size, "metadata keys and values must be strings");
            return false;
        }
        if (key_size > SHOAL_WIRE_MAX_META_KEY || value_size > SHOAL_WIRE_MAX_META_VALUE) {
            snprintf (error, error_size, "metadata entry longer than %d/%d bytes",
                      SHOAL_WIRE_MAX_META_KEY, SHOAL_WIRE_MAX_META_VALUE);
            return false;
        }
    }
    if (count) {
        header->meta = start;
        header->meta_size = (size_t) (cursor->at - start);
    }
    return true;
}

static shoal_status_t
s_decode_request (s_cursor_t *cursor, uint32_t count, shoal_wire_header_t *header,
                  char *error, size_t error_size)
{
    uint64_t timeout;
    if (count != 8) {
        snprintf (error, error_size, "request header has %u fields, expected 8", count);
        return SHOAL_INVALID_ARGUMENT;
    }
    if (!s_read_str (cursor, &header->service, &header->service_size)
        || !s_read_str (cursor, &header->method, &header->method_size)) {
        snprintf (error, error_size, "service and method must be strings");
        return SHOAL_INVALID_ARGUMENT;
    }
    if (!shoal_wire_valid_name (header->service, header->service_size)
        || !shoal_wire_valid_name (header->method, header->method_size)) {
        snprintf (error, error_size,
                  "service and method names must be 1..%d bytes of [A-Za-z0-9._-]",
                  SHOAL_MAX_NAME);
        return SHOAL_INVALID_ARGUMENT;
    }
    if (!s_read_uint (cursor, &timeout) || timeout > UINT32_MAX) {
        snprintf (error, error_size, "timeout must be an integer of milliseconds");
        return SHOAL_INVALID_ARGUMENT;
    }
    header->timeout_ms = (uint32_t) timeout;
    return s_read_meta (cursor, header, error, error_size) ? SHOAL_OK
                                                           : SHOAL_INVALID_ARGUMENT;
}

static shoal_status_t
s_decode_reply (s_cursor_t *cursor, uint32_t count, shoal_wire_header_t *header,
                char *error, size_t error_size)
{
    uint64_t status;
    if (count != 6) {
        snprintf (error, error_size, "reply header has %u fields, expected 6", count);
        return SHOAL_INVALID_ARGUMENT;
    }
    if (!s_read_uint (cursor, &status) || status > SHOAL_STATUS_MAX
        || !s_read_str (cursor, &header->message, &header->message_size)) {
        snprintf (error, error_size, "reply status or message malformed");
        return SHOAL_INVALID_ARGUMENT;
    }
    header->status = (int) status;
    return SHOAL_OK;
}

shoal_status_t
shoal_wire_decode (const void *data, size_t size, shoal_wire_header_t *header, char *error,
                   size_t error_size)
{
    memset (header, 0, sizeof (*header));
    s_cursor_t cursor = { (const uint8_t *) data, (const uint8_t *) data + size };
    uint32_t count;
    const char *text;
    size_t text_size;
    uint64_t version;
    if (!s_read_count (&cursor, 0x90, 0xdc, &count) || count < 4
        || !s_read_str (&cursor, &text, &text_size)
        || !s_is (text, text_size, SHOAL_WIRE_SIGNATURE)) {
        snprintf (error, error_size, "not a shoal header (expected [\"shoal\", version, ...])");
        return SHOAL_INVALID_ARGUMENT;
    }
    const uint8_t *version_at = cursor.at;
    bool numeric = s_read_uint (&cursor, &version);
    size_t skipped;
    if (!numeric) {
        //  A version of another form ("2.0") is another version; no version
        //  at all is a broken header
        char reason [64];
        cursor.at = version_at;
        if (shoal_reader_check_prefix (cursor.at, (size_t) (cursor.end - cursor.at), 2,
                                       &skipped, reason, sizeof (reason))) {
            snprintf (error, error_size, "not a shoal header: no version");
            return SHOAL_INVALID_ARGUMENT;
        }
        cursor.at += skipped;
    }
    if (!numeric || version != SHOAL_PROTOCOL_VERSION) {
        //  Another version: its id, if it sits where ours does, so that even
        //  the refusal can be matched to its call
        if (s_read_str (&cursor, &text, &text_size))
            s_read_uint (&cursor, &header->id);
        snprintf (error, error_size,
                  "protocol version not supported: this peer speaks version %d",
                  SHOAL_PROTOCOL_VERSION);
        return SHOAL_FAILED_PRECONDITION;
    }
    const char *kind;
    size_t kind_size;
    if (!s_read_str (&cursor, &kind, &kind_size)) {
        snprintf (error, error_size, "unknown message kind (expected \"REQ\" or \"REP\")");
        return SHOAL_INVALID_ARGUMENT;
    }
    if (!s_read_uint (&cursor, &header->id)) {
        snprintf (error, error_size, "id must be an unsigned integer");
        return SHOAL_INVALID_ARGUMENT;
    }
    shoal_status_t status;
    if (s_is (kind, kind_size, "REQ")) {
        header->kind = SHOAL_WIRE_REQUEST;
        status = s_decode_request (&cursor, count, header, error, error_size);
    }
    else if (s_is (kind, kind_size, "REP")) {
        header->kind = SHOAL_WIRE_REPLY;
        status = s_decode_reply (&cursor, count, header, error, error_size);
    }
    else {
        snprintf (error, error_size, "unknown message kind (expected \"REQ\" or \"REP\")");
        return SHOAL_INVALID_ARGUMENT;
    }
    if (status != SHOAL_OK)
        return status;
    size_t header_size = (size_t) (cursor.at - (const uint8_t *) data);
    if (header_size > SHOAL_WIRE_MAX_HEADER) {
        snprintf (error, error_size, "header of %zu bytes exceeds %d", header_size,
                  SHOAL_WIRE_MAX_HEADER);
        return SHOAL_INVALID_ARGUMENT;
    }
    header->body = cursor.at;
    header->body_size = size - header_size;
    return SHOAL_OK;
}

//  Names are checked on every call, on both sides: a table, not isalnum
static const bool s_name_chars [256] = {
    ['-'] = 1, ['.'] = 1, ['_'] = 1,
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
    ['8'] = 1, ['9'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1,
    ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1,
    ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
    ['Y'] = 1, ['Z'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1,
    ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1,
    ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
    ['y'] = 1, ['z'] = 1,
};

bool
shoal_wire_valid_name (const char *name, size_t size)
{
    if (size == 0 || size > SHOAL_MAX_NAME)
        return false;
    for (size_t index = *name == '$' ? 1 : 0; index < size; index++)
        if (!s_name_chars [(unsigned char) name [index]])
            return false;
    return size > 1 || *name != '$';
}

const char *
shoal_wire_meta_get (const void *meta, size_t meta_size, const char *key, size_t *size)
{
    if (!meta)
        return NULL;
    //  Decoded once already: the shape is known to be good
    s_cursor_t cursor = { (const uint8_t *) meta, (const uint8_t *) meta + meta_size };
    uint32_t count;
    s_read_count (&cursor, 0x80, 0xde, &count);
    for (uint32_t index = 0; index < count; index++) {
        const char *name, *value;
        size_t name_size, value_size;
        if (!s_read_str (&cursor, &name, &name_size)
            || !s_read_str (&cursor, &value, &value_size))
            return NULL;
        if (s_is (name, name_size, key)) {
            *size = value_size;
            return value;
        }
    }
    return NULL;
}

//  --------------------------------------------------------------------------
//  Events

size_t
shoal_wire_encode_event (void *out, shoal_wire_event_kind_t kind, const char *topic,
                         size_t topic_size, const char *publisher, uint64_t seq,
                         const void *meta, size_t meta_size, const void *body,
                         size_t body_size)
{
    uint8_t *at = (uint8_t *) out;
    memcpy (at, topic, topic_size);
    at += topic_size;
    *at++ = 0;
    const char *name = kind == SHOAL_WIRE_SEQ ? "SEQ" : kind == SHOAL_WIRE_REPLAY ? "RPL" : "EVT";
    *at++ = kind == SHOAL_WIRE_SEQ ? 0x95 : 0x96;
    at = s_put_str (at, SHOAL_WIRE_SIGNATURE, 5);
    at = s_put_uint (at, SHOAL_PROTOCOL_VERSION);
    at = s_put_str (at, name, 3);
    at = s_put_str (at, publisher, strlen (publisher));
    at = s_put_uint (at, seq);
    if (kind == SHOAL_WIRE_SEQ)
        return (size_t) (at - (uint8_t *) out);
    if (meta && meta_size) {
        memcpy (at, meta, meta_size);
        at += meta_size;
    }
    else
        *at++ = 0x80;
    if (body_size) {
        memcpy (at, body, body_size);
        at += body_size;
    }
    return (size_t) (at - (uint8_t *) out);
}

static size_t
s_uint_size (uint64_t value)
{
    return value < 128 ? 1 : value <= UINT8_MAX ? 2 : value <= UINT16_MAX ? 3
         : value <= UINT32_MAX ? 5 : 9;
}

static size_t
s_str_size (size_t size)
{
    return size + (size < 32 ? 1 : size <= UINT8_MAX ? 2 : 3);
}

size_t
shoal_wire_event_size (size_t topic_size, size_t publisher_size, uint64_t seq,
                       size_t meta_size, size_t body_size)
{
    //  topic, 0, fixarray, "shoal", 1, "EVT", publisher, seq, meta, body
    return topic_size + 1 + 1 + s_str_size (5) + s_uint_size (SHOAL_PROTOCOL_VERSION)
         + s_str_size (3) + s_str_size (publisher_size) + s_uint_size (seq)
         + (meta_size ? meta_size : 1) + body_size;
}

void
shoal_wire_mark_replay (void *data, size_t topic_size)
{
    //  topic, 0, fixarray, "shoal" (6 bytes), 1, 0xa3, then the kind
    memcpy ((uint8_t *) data + topic_size + 10, "RPL", 3);
}

//  ["shoal", 1, KIND...: the array's size and the kind, after the version
static bool
s_read_event_preamble (s_cursor_t *cursor, uint32_t *count, const char **kind,
                       size_t *kind_size, char *error, size_t error_size, shoal_status_t *status)
{
    const char *text;
    size_t text_size;
    uint64_t version;
    *status = SHOAL_INVALID_ARGUMENT;
    if (!s_read_count (cursor, 0x90, 0xdc, count) || *count < 5
        || !s_read_str (cursor, &text, &text_size)
        || !s_is (text, text_size, SHOAL_WIRE_SIGNATURE)) {
        snprintf (error, error_size, "not a shoal event header");
        return false;
    }
    if (!s_read_uint (cursor, &version) || version != SHOAL_PROTOCOL_VERSION) {
        snprintf (error, error_size, "event of another protocol version");
        *status = SHOAL_FAILED_PRECONDITION;
        return false;
    }
    if (!s_read_str (cursor, kind, kind_size)) {
        snprintf (error, error_size, "event kind must be a string");
        return false;
    }
    return true;
}

shoal_status_t
shoal_wire_decode_event (const void *data, size_t size, shoal_wire_event_t *event,
                         char *error, size_t error_size)
{
    memset (event, 0, sizeof (*event));
    const uint8_t *bytes = (const uint8_t *) data;
    const uint8_t *zero = (const uint8_t *) memchr (bytes, 0,
                                                    size < SHOAL_MAX_TOPIC + 1 ? size
                                                                               : SHOAL_MAX_TOPIC + 1);
    if (!zero || !shoal_topic_valid_size ((const char *) bytes, (size_t) (zero - bytes))) {
        snprintf (error, error_size, "event frame does not start with a valid topic");
        return SHOAL_INVALID_ARGUMENT;
    }
    event->topic = (const char *) bytes;
    event->topic_size = (size_t) (zero - bytes);
    s_cursor_t cursor = { zero + 1, bytes + size };
    uint32_t count;
    const char *kind;
    size_t kind_size;
    shoal_status_t status;
    //  Nearly every frame is an EVT of version 1: its fixed start in one
    //  compare, the general path for the rest
    static const uint8_t evt [] = { 0x96, 0xa5, 's', 'h', 'o', 'a', 'l', 0x01, 0xa3, 'E', 'V', 'T' };
    if ((size_t) (cursor.end - cursor.at) >= sizeof (evt)
        && memcmp (cursor.at, evt, sizeof (evt)) == 0) {
        cursor.at += sizeof (evt);
        count = 6;
        kind = "EVT";
        kind_size = 3;
    }
    else if (!s_read_event_preamble (&cursor, &count, &kind, &kind_size, error, error_size,
                                     &status))
        return status;
    if (s_is (kind, kind_size, "EVT") && count == 6)
        event->kind = SHOAL_WIRE_EVENT;
    else if (s_is (kind, kind_size, "RPL") && count == 6)
        event->kind = SHOAL_WIRE_REPLAY;
    else if (s_is (kind, kind_size, "SEQ") && count == 5)
        event->kind = SHOAL_WIRE_SEQ;
    else {
        snprintf (error, error_size, "unknown event kind or wrong number of fields");
        return SHOAL_INVALID_ARGUMENT;
    }
    if (!s_read_str (&cursor, &event->publisher, &event->publisher_size)
        || event->publisher_size == 0 || event->publisher_size > SHOAL_WIRE_MAX_PUBLISHER
        || !shoal_wire_valid_name (event->publisher, event->publisher_size)
        || !s_read_uint (&cursor, &event->seq) || event->seq == UINT64_MAX) {
        //  (the last number there is has no next one)
        snprintf (error, error_size, "event publisher or number malformed");
        return SHOAL_INVALID_ARGUMENT;
    }
    if (event->kind != SHOAL_WIRE_SEQ) {
        shoal_wire_header_t header = { 0 };
        if (!s_read_meta (&cursor, &header, error, error_size))
            return SHOAL_INVALID_ARGUMENT;
        event->meta = header.meta;
        event->meta_size = header.meta_size;
        event->body = cursor.at;
        event->body_size = (size_t) (cursor.end - cursor.at);
    }
    else if (cursor.at != cursor.end) {
        snprintf (error, error_size, "SEQ frame has trailing bytes");
        return SHOAL_INVALID_ARGUMENT;
    }
    return SHOAL_OK;
}

size_t
shoal_wire_encode_fill (void *out, size_t capacity, const char *publisher, const char *topic,
                        uint64_t first, uint64_t last)
{
    size_t publisher_size = strlen (publisher), topic_size = strlen (topic);
    if (capacity < 48 + publisher_size + topic_size || publisher_size > SHOAL_WIRE_MAX_PUBLISHER
        || topic_size > SHOAL_MAX_TOPIC)
        return 0;
    uint8_t *at = (uint8_t *) out;
    *at++ = SHOAL_WIRE_FILL_MARK;
    *at++ = 0x97;
    at = s_put_str (at, SHOAL_WIRE_SIGNATURE, 5);
    at = s_put_uint (at, SHOAL_PROTOCOL_VERSION);
    at = s_put_str (at, "FILL", 4);
    at = s_put_str (at, publisher, publisher_size);
    at = s_put_str (at, topic, topic_size);
    at = s_put_uint (at, first);
    at = s_put_uint (at, last);
    return (size_t) (at - (uint8_t *) out);
}

bool
shoal_wire_decode_fill (const void *data, size_t size, shoal_wire_event_t *fill,
                        uint64_t *first, uint64_t *last)
{
    memset (fill, 0, sizeof (*fill));
    if (size < 2 || *(const uint8_t *) data != SHOAL_WIRE_FILL_MARK)
        return false;
    s_cursor_t cursor = { (const uint8_t *) data + 1, (const uint8_t *) data + size };
    uint32_t count;
    const char *kind;
    size_t kind_size;
    char error [64];
    shoal_status_t status;
    return s_read_event_preamble (&cursor, &count, &kind, &kind_size, error, sizeof (error),
                                  &status)
        && count == 7 && s_is (kind, kind_size, "FILL")
        && s_read_str (&cursor, &fill->publisher, &fill->publisher_size)
        && s_read_str (&cursor, &fill->topic, &fill->topic_size)
        && shoal_topic_valid_size (fill->topic, fill->topic_size)
        && s_read_uint (&cursor, first) && s_read_uint (&cursor, last) && *first <= *last
        && cursor.at == cursor.end;
}

//  --------------------------------------------------------------------------
//  Selftest

static shoal_status_t
s_decode_bytes (const char *bytes, size_t size, shoal_wire_header_t *header)
{
    char error [256];
    return shoal_wire_decode (bytes, size, header, error, sizeof (error));
}

//  Event frames: the bytes msgpack-c would write after the topic, every
//  size computed exactly, every truncation refused, replays marked in place
static void
s_test_events (void)
{
    char error [256];
    shoal_body_t *meta = shoal_body_pack ("{s:s}", "trace", "t-1");
    shoal_body_t *body = shoal_body_pack ("{s:i}", "id", 7);
    uint64_t numbers [] = { 0, 1, 127, 128, 255, 256, 65535, 65536, UINT32_MAX,
                            (uint64_t) UINT32_MAX + 1, UINT64_MAX - 1 };
    for (size_t index = 0; index < sizeof (numbers) / sizeof (numbers [0]); index++) {
        uint8_t frame [256];
        size_t size = shoal_wire_encode_event (frame, SHOAL_WIRE_EVENT, "order.placed", 12,
                                               "a1b2c3", numbers [index], shoal_body_data (meta),
                                               shoal_body_size (meta), shoal_body_data (body),
                                               shoal_body_size (body));
        assert (size == shoal_wire_event_size (12, 6, numbers [index], shoal_body_size (meta),
                                               shoal_body_size (body)));
        //  The header after the topic is what msgpack-c writes
        msgpack_sbuffer reference;
        msgpack_sbuffer_init (&reference);
        msgpack_packer packer;
        msgpack_packer_init (&packer, &reference, msgpack_sbuffer_write);
        msgpack_pack_array (&packer, 6);
        shoal_wire_pack_string (&packer, "shoal");
        msgpack_pack_uint8 (&packer, 1);
        shoal_wire_pack_string (&packer, "EVT");
        shoal_wire_pack_string (&packer, "a1b2c3");
        msgpack_pack_uint64 (&packer, numbers [index]);
        msgpack_sbuffer_write (&reference, (const char *) shoal_body_data (meta),
                               shoal_body_size (meta));
        assert (memcmp (frame, "order.placed\0", 13) == 0);
        assert (memcmp (frame + 13, reference.data, reference.size) == 0);
        msgpack_sbuffer_destroy (&reference);
        shoal_wire_event_t event;
        assert (shoal_wire_decode_event (frame, size, &event, error, sizeof (error)) == SHOAL_OK);
        assert (event.kind == SHOAL_WIRE_EVENT && event.seq == numbers [index]);
        assert (event.topic_size == 12 && memcmp (event.topic, "order.placed", 12) == 0);
        assert (event.publisher_size == 6 && memcmp (event.publisher, "a1b2c3", 6) == 0);
        assert (event.body_size == shoal_body_size (body)
                && memcmp (event.body, shoal_body_data (body), event.body_size) == 0);
        size_t trace_size;
        const char *trace = shoal_wire_meta_get (event.meta, event.meta_size, "trace",
                                                 &trace_size);
        assert (trace && trace_size == 3 && memcmp (trace, "t-1", 3) == 0);
        //  Marked as a replay in place, it decodes as one, all else equal
        shoal_wire_mark_replay (frame, 12);
        assert (shoal_wire_decode_event (frame, size, &event, error, sizeof (error)) == SHOAL_OK);
        assert (event.kind == SHOAL_WIRE_REPLAY && event.seq == numbers [index]);
        //  Every truncation is refused (a SEQ-shaped prefix is not an EVT)
        for (size_t cut = 0; cut < size - shoal_body_size (body); cut++)
            assert (shoal_wire_decode_event (frame, cut, &event, error, sizeof (error))
                    != SHOAL_OK);
    }
    //  The last number there is has no next one: refused
    uint8_t final [256];
    size_t final_size = shoal_wire_encode_event (final, SHOAL_WIRE_EVENT, "tick", 4, "p1", UINT64_MAX,
                                                NULL, 0, NULL, 0);
    shoal_wire_event_t refused;
    assert (shoal_wire_decode_event (final, final_size, &refused, error, sizeof (error))
            == SHOAL_INVALID_ARGUMENT);
    //  SEQ: no meta, no body, nothing after the number
    uint8_t frame [128];
    size_t size = shoal_wire_encode_event (frame, SHOAL_WIRE_SEQ, "tick", 4, "p1", 42, NULL, 0,
                                           NULL, 0);
    shoal_wire_event_t event;
    assert (shoal_wire_decode_event (frame, size, &event, error, sizeof (error)) == SHOAL_OK);
    assert (event.kind == SHOAL_WIRE_SEQ && event.seq == 42 && event.body_size == 0);
    frame [size] = 0xc0;
    assert (shoal_wire_decode_event (frame, size + 1, &event, error, sizeof (error)) != SHOAL_OK);
    //  Topics are checked: none, bad, too long
    assert (shoal_wire_decode_event ("\0\x95", 2, &event, error, sizeof (error)) != SHOAL_OK);
    assert (shoal_wire_decode_event ("a..b\0\x95", 6, &event, error, sizeof (error))
            != SHOAL_OK);
    uint8_t long_topic [400];
    memset (long_topic, 'a', sizeof (long_topic));
    assert (shoal_wire_decode_event (long_topic, sizeof (long_topic), &event, error,
                                     sizeof (error))
            != SHOAL_OK);
    //  FILL round trip; first > last and trailing bytes refused
    uint8_t fill [128];
    size = shoal_wire_encode_fill (fill, sizeof (fill), "p1", "tick", 5, 9);
    uint64_t first, last;
    assert (size && shoal_wire_decode_fill (fill, size, &event, &first, &last));
    assert (first == 5 && last == 9 && event.topic_size == 4 && event.publisher_size == 2);
    assert (!shoal_wire_decode_fill (fill, size - 1, &event, &first, &last));
    size = shoal_wire_encode_fill (fill, sizeof (fill), "p1", "tick", 9, 5);
    assert (!shoal_wire_decode_fill (fill, size, &event, &first, &last));
    assert (shoal_wire_encode_fill (fill, 10, "p1", "tick", 1, 2) == 0);
    shoal_body_destroy (&meta);
    shoal_body_destroy (&body);
}

void
shoal_wire_test (bool verbose)
{
    if (verbose)
        printf (" * shoal_wire: ");

    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    shoal_wire_header_t header;
    char error [256];

    //  A request round-trips, metadata and body included
    shoal_body_t *meta = shoal_body_pack ("{s:s, s:s}", "trace", "abc123", "caller", "me");
    shoal_wire_encode_request (&buffer, 42, "cart", "add", 250, shoal_body_data (meta),
                               shoal_body_size (meta));
    size_t header_size = buffer.size;
    msgpack_sbuffer_write (&buffer, "\x81\xa1k\x01", 4);
    assert (shoal_wire_decode (buffer.data, buffer.size, &header, error, sizeof (error))
            == SHOAL_OK);
    assert (header.kind == SHOAL_WIRE_REQUEST);
    assert (header.id == 42);
    assert (header.service_size == 4 && memcmp (header.service, "cart", 4) == 0);
    assert (header.method_size == 3 && memcmp (header.method, "add", 3) == 0);
    assert (header.timeout_ms == 250);
    assert (header.body == buffer.data + header_size && header.body_size == 4);
    size_t size;
    const char *trace = shoal_wire_meta_get (header.meta, header.meta_size, "trace", &size);
    assert (trace && size == 6 && memcmp (trace, "abc123", 6) == 0);
    assert (shoal_wire_meta_get (header.meta, header.meta_size, "nope", &size) == NULL);

    //  The same header, as msgpack-c packs and reads it: same bytes, same
    //  values (big ids and timeouts take the wide forms)
    msgpack_sbuffer reference;
    msgpack_sbuffer_init (&reference);
    msgpack_packer packer;
    msgpack_packer_init (&packer, &reference, msgpack_sbuffer_write);
    uint64_t ids [] = { 1, 127, 128, 255, 256, 65535, 65536, UINT32_MAX, UINT64_MAX };
    for (size_t index = 0; index < sizeof (ids) / sizeof (ids [0]); index++) {
        msgpack_sbuffer_clear (&buffer);
        msgpack_sbuffer_clear (&reference);
        shoal_wire_encode_request (&buffer, ids [index], "catalog.v2", "price_of", 70000,
                                   NULL, 0);
        msgpack_pack_array (&packer, 8);
        shoal_wire_pack_string (&packer, "shoal");
        msgpack_pack_uint8 (&packer, 1);
        shoal_wire_pack_string (&packer, "REQ");
        msgpack_pack_uint64 (&packer, ids [index]);
        shoal_wire_pack_string (&packer, "catalog.v2");
        shoal_wire_pack_string (&packer, "price_of");
        msgpack_pack_uint32 (&packer, 70000);
        msgpack_pack_map (&packer, 0);
        assert (buffer.size == reference.size);
        assert (memcmp (buffer.data, reference.data, buffer.size) == 0);
        assert (shoal_wire_decode (buffer.data, buffer.size, &header, error, sizeof (error))
                == SHOAL_OK);
        assert (header.id == ids [index] && header.timeout_ms == 70000);
    }
    //  What other encoders may write: a signed int for the id, a str8 name
    msgpack_sbuffer_clear (&reference);
    msgpack_pack_array (&packer, 8);
    shoal_wire_pack_string (&packer, "shoal");
    msgpack_pack_int64 (&packer, 1);
    shoal_wire_pack_string (&packer, "REQ");
    msgpack_pack_int64 (&packer, 300);
    msgpack_pack_str (&packer, 3);
    msgpack_pack_str_body (&packer, "svc", 3);
    shoal_wire_pack_string (&packer, "$ping");
    msgpack_pack_int32 (&packer, 10);
    msgpack_pack_map (&packer, 0);
    assert (shoal_wire_decode (reference.data, reference.size, &header, error, sizeof (error))
            == SHOAL_OK);
    assert (header.id == 300 && header.timeout_ms == 10 && header.body_size == 0);

    //  The exact bytes of a reply header, as docs/protocol.md shows them
    msgpack_sbuffer_clear (&buffer);
    shoal_wire_encode_reply (&buffer, 7, SHOAL_NOT_FOUND, "no");
    const char expected [] = "\x96\xa5shoal\x01\xa3REP\x07\x05\xa2no";
    assert (buffer.size == sizeof (expected) - 1);
    assert (memcmp (buffer.data, expected, buffer.size) == 0);
    assert (shoal_wire_decode (buffer.data, buffer.size, &header, error, sizeof (error))
            == SHOAL_OK);
    assert (header.kind == SHOAL_WIRE_REPLY && header.id == 7);
    assert (header.status == SHOAL_NOT_FOUND);
    assert (header.message_size == 2);
    //  A long message is cut on a character boundary
    char long_message [SHOAL_WIRE_MAX_MESSAGE + 8];
    memset (long_message, 'x', sizeof (long_message) - 1);
    long_message [sizeof (long_message) - 1] = 0;
    memcpy (long_message + SHOAL_WIRE_MAX_MESSAGE - 1, "\xc3\xa9", 2);
    msgpack_sbuffer_clear (&buffer);
    shoal_wire_encode_reply (&buffer, 8, SHOAL_INTERNAL, long_message);
    assert (shoal_wire_decode (buffer.data, buffer.size, &header, error, sizeof (error))
            == SHOAL_OK);
    assert (header.message_size == SHOAL_WIRE_MAX_MESSAGE - 1);

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
    const char negative [] = "\x98\xa5shoal\x01\xa3REQ\xff";
    assert (s_decode_bytes (negative, sizeof (negative) - 1, &header) == SHOAL_INVALID_ARGUMENT);
    const char negative8 [] = "\x98\xa5shoal\x01\xa3REQ\xd0\x9c";
    assert (s_decode_bytes (negative8, sizeof (negative8) - 1, &header) == SHOAL_INVALID_ARGUMENT);
    assert (header.id == 0);
    //  A request with too few fields, or a name that is too long or odd
    const char short_request [] = "\x94\xa5shoal\x01\xa3REQ\x01";
    assert (s_decode_bytes (short_request, sizeof (short_request) - 1, &header)
            == SHOAL_INVALID_ARGUMENT);
    char long_name [SHOAL_MAX_NAME + 2];
    memset (long_name, 'm', sizeof (long_name) - 1);
    long_name [sizeof (long_name) - 1] = 0;
    msgpack_sbuffer_clear (&reference);
    msgpack_pack_array (&packer, 8);
    shoal_wire_pack_string (&packer, "shoal");
    msgpack_pack_uint8 (&packer, 1);
    shoal_wire_pack_string (&packer, "REQ");
    msgpack_pack_uint8 (&packer, 1);
    shoal_wire_pack_string (&packer, "echo");
    shoal_wire_pack_string (&packer, long_name);
    msgpack_pack_uint8 (&packer, 0);
    msgpack_pack_map (&packer, 0);
    assert (shoal_wire_decode (reference.data, reference.size, &header, error, sizeof (error))
            == SHOAL_INVALID_ARGUMENT);
    assert (header.id == 1);
    msgpack_sbuffer_destroy (&reference);
    assert (shoal_wire_valid_name ("$ping", 5));
    assert (!shoal_wire_valid_name ("pi$ng", 5));
    assert (!shoal_wire_valid_name ("$", 1));
    assert (!shoal_wire_valid_name ("a b", 3));
    //  Every truncation of a valid header is refused, never misread
    msgpack_sbuffer_clear (&buffer);
    shoal_wire_encode_request (&buffer, 3, "echo", "echo", 100, shoal_body_data (meta),
                               shoal_body_size (meta));
    for (size_t cut = 0; cut < buffer.size; cut++)
        assert (s_decode_bytes (buffer.data, cut, &header) == SHOAL_INVALID_ARGUMENT);
    shoal_body_destroy (&meta);
    msgpack_sbuffer_destroy (&buffer);
    s_test_events ();
    if (verbose)
        printf ("OK\n");
}
