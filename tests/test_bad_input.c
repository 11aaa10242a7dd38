/*  test_bad_input - hostile input on both ends of the wire, answered as
    docs/protocol.md says ("How bad input is answered").

    A message is one frame: the header, then the body right after it. So
    every message here is built as the bytes of a header followed by the
    bytes of a body, and every reply is split the same way.

    Server side: a raw DEALER sends an in-process echo service every kind
    of broken message, and each reply must be one frame with the exact
    status and id; a frame over the size limit (header and body together)
    costs the sender its connection and nobody else anything; the counters
    of $stats add up; a flood of garbage does not keep a normal call from
    being answered.

    Client side: a raw ROUTER plays a hostile server (garbage, wrong ids,
    wrong frame counts, bad fields) and the shoal client must end each call
    with INTERNAL or DEADLINE_EXCEEDED, on time, and still take a good reply.

    No sleeps: every wait is a receive with a timeout or a condition with a
    deadline.                                                                */
#include <shoal.h>
#include <czmq.h>
#include "tap.h"

#define S_MAX_MESSAGE (64 * 1024) //  the service's message (frame) size limit
#define S_WAIT        2000        //  ms to wait for any one reply
#define S_FLOOD       10000       //  garbage messages in the flood

//  What the service should have counted so far, by the cases that ran:
//  every reply is a call, every non-OK reply an error, and every refusal
//  of the service's own (INVALID_ARGUMENT or FAILED_PRECONDITION, not a
//  handler's) is malformed. NOT_FOUND and UNIMPLEMENTED are well-formed
//  requests for something absent, so they do not count as malformed.
static struct {
    int64_t calls;
    int64_t errors;
    int64_t malformed;
} s_expected;

//  When set, a known bug of the library: a case of s_expect that is right
//  but for the id in the reply is written as skipped, with this reason, not
//  failed. (Not "# TODO": make memcheck fails on any "not ok" line.) Once
//  the bug is fixed the cases pass, and the setting can go.

static void
s_echo (shoal_request_t *request, void *state)
{
    size_t size;
    const void *body = shoal_request_body (request, &size);
    shoal_request_reply_raw (request, body, size);
}

//  --------------------------------------------------------------------------
//  Building messages

//  A frame holding the msgpack packed from FORMAT (shoal_body.h)
static zframe_t *
s_packed (const char *format, ...)
{
    va_list args;
    va_start (args, format);
    shoal_body_t *body = shoal_body_vpack (format, args);
    va_end (args);
    if (!body)
        tap_bail ("cannot pack '%s'", format);
    zframe_t *frame = zframe_new (shoal_body_data (body), shoal_body_size (body));
    shoal_body_destroy (&body);
    return frame;
}

//  A frame holding the bytes of a string literal, NULs included
#define S_RAW(literal) zframe_new ((literal), sizeof (literal) - 1)

//  One frame: the bytes of HEADER, then those of BODY (both taken; BODY
//  may be NULL: nothing after the header)
static zframe_t *
s_join (zframe_t *header, zframe_t *body)
{
    size_t header_size = zframe_size (header);
    size_t body_size = body ? zframe_size (body) : 0;
    zframe_t *frame = zframe_new (NULL, header_size + body_size);
    memcpy (zframe_data (frame), zframe_data (header), header_size);
    if (body_size)
        memcpy (zframe_data (frame) + header_size, zframe_data (body), body_size);
    zframe_destroy (&header);
    zframe_destroy (&body);
    return frame;
}

//  A well-formed request header
static zframe_t *
s_request (int64_t id, const char *service, const char *method)
{
    return s_packed ("[s,i,s,I,s,s,i,{}]", "shoal", 1, "REQ", id, service, method, 1000);
}

//  A request header with metadata META (raw msgpack)
static zframe_t *
s_request_meta (int64_t id, const void *meta, size_t size)
{
    return s_packed ("[s,i,s,I,s,s,i,z%]", "shoal", 1, "REQ", id, "echo", "echo", 1000,
                     meta, size);
}

//  A reply header
static zframe_t *
s_reply (int version, int64_t id, int status, const char *message)
{
    return s_packed ("[s,i,s,I,i,s]", "shoal", version, "REP", id, status, message);
}

//  A message of COUNT frames, which it takes
static zmsg_t *
s_msg (int count, ...)
{
    zmsg_t *msg = zmsg_new ();
    va_list args;
    va_start (args, count);
    for (int index = 0; index < count; index++) {
        zframe_t *frame = va_arg (args, zframe_t *);
        zmsg_append (msg, &frame);
    }
    va_end (args);
    return msg;
}

//  A well-formed message: one frame, HEADER then BODY (both taken; BODY
//  may be NULL)
static zmsg_t *
s_one (zframe_t *header, zframe_t *body)
{
    return s_msg (1, s_join (header, body));
}

//  A raw DEALER connected to ENDPOINT, waiting S_WAIT ms at most per reply
static zsock_t *
s_dealer (const char *endpoint)
{
    zsock_t *dealer = zsock_new_dealer (endpoint);
    if (!dealer)
        tap_bail ("cannot connect a DEALER to %s", endpoint);
    zsock_set_linger (dealer, 0);
    zsock_set_rcvtimeo (dealer, S_WAIT);
    return dealer;
}

//  --------------------------------------------------------------------------
//  Reading replies

typedef struct {
    bool received;
    bool decoded; //  the header read as [s,i,s,I,i,s], "shoal", 1, "REP"
    size_t frames;
    int64_t id;
    int status;
    char message[1100];
    bool nil_body; //  nothing after the header, or 0xc0
    size_t body_size;
    byte body[256]; //  its first bytes
} s_reply_t;

static s_reply_t
s_receive (zsock_t *dealer)
{
    s_reply_t reply = { .status = -1 };
    zmsg_t *msg = zmsg_recv (dealer);
    if (!msg)
        return reply;
    reply.received = true;
    reply.frames = zmsg_size (msg);
    zframe_t *frame = zmsg_first (msg);
    //  The header is the one msgpack value at the start of the frame; the
    //  body is every byte after it
    size_t header_size = 0;
    char error[200];
    if (shoal_reader_check_prefix (zframe_data (frame), zframe_size (frame), 3,
                                   &header_size, error, sizeof (error))) {
        snprintf (reply.message, sizeof (reply.message), "undecodable reply header: %s",
                  error);
        zmsg_destroy (&msg);
        return reply;
    }
    shoal_reader_t *reader = shoal_reader_new (zframe_data (frame), header_size);
    const char *signature, *kind, *message;
    int version;
    if (shoal_reader_get (reader, "[s,i,s,I,i,s]", &signature, &version, &kind, &reply.id,
                          &reply.status, &message)
        == 0) {
        reply.decoded = streq (signature, "shoal") && version == 1 && streq (kind, "REP");
        snprintf (reply.message, sizeof (reply.message), "%s", message);
    } else
        snprintf (reply.message, sizeof (reply.message), "undecodable reply header: %s",
                  shoal_reader_error (reader));
    shoal_reader_destroy (&reader);
    reply.body_size = zframe_size (frame) - header_size;
    memcpy (reply.body, zframe_data (frame) + header_size,
            reply.body_size < sizeof (reply.body) ? reply.body_size
                                                  : sizeof (reply.body));
    reply.nil_body
        = reply.body_size == 0 || (reply.body_size == 1 && reply.body[0] == 0xc0);
    zmsg_destroy (&msg);
    return reply;
}

//  Sends MSG (which it takes) from DEALER and checks the one reply: STATUS,
//  ID, a message that contains NEEDLE, one frame, and a nil body for an
//  error. Returns the reply for further checks.
static s_reply_t
s_expect (zsock_t *dealer, zmsg_t *msg, int status, int64_t id, const char *needle,
          const char *name)
{
    zmsg_send (&msg, dealer);
    s_reply_t reply = s_receive (dealer);
    s_expected.calls++;
    if (status != SHOAL_OK)
        s_expected.errors++;
    if (status == SHOAL_INVALID_ARGUMENT || status == SHOAL_FAILED_PRECONDITION)
        s_expected.malformed++;
    bool ok_but_id = reply.received && reply.decoded && reply.frames == 1
                     && reply.status == status && (status == SHOAL_OK || reply.nil_body)
                     && strstr (reply.message, needle);
    if (!reply.received)
        tap_ok (false, "%s: %s, id %" PRId64 " (no reply within %d ms)", name,
                shoal_status_name (status), id, S_WAIT);
    else
        tap_ok (ok_but_id && reply.id == id,
                "%s: %s, id %" PRId64 " (got %s, id %" PRId64 ", %zu frames: \"%s\")",
                name, shoal_status_name (status), id, shoal_status_name (reply.status),
                reply.id, reply.frames, reply.message);
    return reply;
}

//  --------------------------------------------------------------------------
//  Server side: what a raw DEALER's bad input gets

static void
s_bad_frames (zsock_t *dealer)
{
    s_reply_t reply = s_expect (
        dealer, s_one (s_request (1, "echo", "echo"), s_packed ("{s:i}", "a", 1)),
        SHOAL_OK, 1, "", "a well-formed request, header then body in one frame");
    tap_ok (reply.body_size == 4 && memcmp (reply.body, "\x81\xa1\x61\x01", 4) == 0,
            "its body comes back unchanged, after the reply header in the same frame");
    reply = s_expect (dealer, s_one (s_request (2, "echo", "echo"), NULL), SHOAL_OK, 2,
                      "", "a header with nothing after it (a nil body)");
    tap_ok (reply.body_size == 1 && reply.body[0] == 0xc0,
            "the nil body comes back as c0 (%zu bytes)", reply.body_size);
    s_expect (dealer, s_one (s_request (3, "echo", "echo"), S_RAW ("\xc0")), SHOAL_OK, 3,
              "", "a header then c0 (a nil body)");

    //  Any other number of frames: refused, id 0, whatever the frames hold
    s_expect (dealer,
              s_msg (2, s_request (4, "echo", "echo"), s_packed ("{s:i}", "a", 1)),
              SHOAL_INVALID_ARGUMENT, 0, "got 2",
              "2 frames, header and body apart (the old shape)");
    s_expect (dealer, s_msg (2, s_request (5, "echo", "echo"), S_RAW ("")),
              SHOAL_INVALID_ARGUMENT, 0, "got 2", "2 frames, the second empty");
    s_expect (dealer, s_msg (2, S_RAW (""), s_join (s_request (6, "echo", "echo"), NULL)),
              SHOAL_INVALID_ARGUMENT, 0, "got 2",
              "an empty delimiter frame first (what a REQ socket sends)");
    s_expect (dealer,
              s_msg (3, s_request (7, "echo", "echo"), S_RAW ("\xc0"), S_RAW ("\xc0")),
              SHOAL_INVALID_ARGUMENT, 0, "got 3", "3 frames");
    zmsg_t *many = zmsg_new ();
    for (int index = 0; index < 10; index++)
        zmsg_addstr (many, "frame");
    s_expect (dealer, many, SHOAL_INVALID_ARGUMENT, 0, "got 10", "10 frames");
    //  ... unless the first frame starts with another version's header: a
    //  later version may frame its messages otherwise, and must learn that
    //  it speaks another version, with its id
    s_expect (dealer,
              s_msg (2,
                     s_packed ("[s,i,s,i,s,s,i,{}]", "shoal", 2, "REQ", 8, "echo", "echo",
                               1000),
                     S_RAW ("\xc0")),
              SHOAL_FAILED_PRECONDITION, 8, "version", "2 frames of version 2");
}

static void
s_bad_headers (zsock_t *dealer)
{
    s_expect (dealer, s_one (S_RAW ("\xc1\xc1 GET / HTTP/1.0"), NULL),
              SHOAL_INVALID_ARGUMENT, 0, "not a shoal header",
              "a frame that is not msgpack");
    s_expect (dealer, s_one (S_RAW (""), NULL), SHOAL_INVALID_ARGUMENT, 0,
              "not a shoal header", "an empty frame");
    s_expect (dealer, s_one (s_packed ("{s:s}", "GET", "/"), NULL),
              SHOAL_INVALID_ARGUMENT, 0, "not a shoal header", "a msgpack map as header");
    s_expect (
        dealer,
        s_one (s_packed ("[s,i,s,i,s,s,i,{}]", "zyre", 1, "REQ", 5, "echo", "echo", 1000),
               NULL),
        SHOAL_INVALID_ARGUMENT, 0, "not a shoal header", "another signature");
    s_expect (dealer,
              s_one (S_RAW ("\x98\xc4\x05shoal\x01\xa3REQ\x05\xa4\x65\x63ho\xa4\x65\x63ho"
                            "\x00\x80"),
                     NULL),
              SHOAL_INVALID_ARGUMENT, 0, "not a shoal header",
              "the signature as bin, not str");
    s_expect (dealer, s_one (s_packed ("[s,i,s]", "shoal", 1, "REQ"), NULL),
              SHOAL_INVALID_ARGUMENT, 0, "not a shoal header", "a header of 3 fields");
    s_expect (dealer, s_one (S_RAW ("\x98\xa5shoal\x01\xa3REQ"), NULL),
              SHOAL_INVALID_ARGUMENT, 0, "id", "a header cut short before its id");
    //  Cut inside the metadata: the id was read, so the refusal carries it
    s_expect (dealer,
              s_one (S_RAW ("\x98\xa5shoal\x01\xa3REQ\x09\xa4\x65\x63ho\xa4\x65\x63ho"
                            "\x00\x81\xa5trace"),
                     NULL),
              SHOAL_INVALID_ARGUMENT, 9, "metadata",
              "a header cut short in its metadata");

    //  Another version: refused as such, with the id, in version 1's words
    s_expect (dealer,
              s_one (s_packed ("[s,i,s,i,s,s,i,{}]", "shoal", 2, "REQ", 1234, "echo",
                               "echo", 1000),
                     NULL),
              SHOAL_FAILED_PRECONDITION, 1234, "version", "version 2");
    s_expect (dealer,
              s_one (s_packed ("[s,i,s,i,n,n,n,n,n,n]", "shoal", 2, "HELLO", 1235),
                     S_RAW ("\xc1 anything")),
              SHOAL_FAILED_PRECONDITION, 1235, "version",
              "version 2 with fields and a body version 1 does not know");
    s_expect (dealer, s_one (s_packed ("[s,i,i,i]", "shoal", 7, 3, 1236), NULL),
              SHOAL_FAILED_PRECONDITION, 0, "version",
              "version 7 whose element 2 is not a str (its id cannot be read)");
    //  Any other value is another version; a version that is missing or
    //  not msgpack makes no shoal header
    s_expect (dealer, s_one (s_packed ("[s,s,s,i]", "shoal", "1", "REQ", 1237), NULL),
              SHOAL_FAILED_PRECONDITION, 1237, "version", "a version that is a string");
    s_expect (dealer, s_one (s_packed ("[s,i,s,i]", "shoal", -1, "REQ", 1238), NULL),
              SHOAL_FAILED_PRECONDITION, 1238, "version", "a negative version");
    s_expect (dealer, s_one (s_packed ("[s,[i],s,i]", "shoal", 1, "REQ", 1239), NULL),
              SHOAL_FAILED_PRECONDITION, 1239, "version", "a version that is an array");
    s_expect (dealer, s_one (S_RAW ("\x94\xa5shoal\xc1\xa3REQ\x01"), NULL),
              SHOAL_INVALID_ARGUMENT, 0, "no version", "a version that is the byte c1");
    s_expect (dealer, s_one (S_RAW ("\x94\xa5shoal"), NULL), SHOAL_INVALID_ARGUMENT, 0,
              "no version", "a header cut short before its version");

    s_expect (dealer,
              s_one (s_packed ("[s,i,s,s,s,s,i,{}]", "shoal", 1, "REQ", "6", "echo",
                               "echo", 1000),
                     NULL),
              SHOAL_INVALID_ARGUMENT, 0, "id", "an id that is a string");
    s_expect (dealer,
              s_one (s_packed ("[s,i,s,i,s,s,i,{}]", "shoal", 1, "REQ", -7, "echo",
                               "echo", 1000),
                     NULL),
              SHOAL_INVALID_ARGUMENT, 0, "id", "a negative id");
    //  Negative ids in the wider forms: nothing of them is taken for an id
    s_expect (dealer,
              s_one (S_RAW ("\x98\xa5shoal\x01\xa3REQ\xd0\x9c\xa4\x65\x63ho\xa4\x65\x63ho"
                            "\x00\x80"),
                     NULL),
              SHOAL_INVALID_ARGUMENT, 0, "id", "a negative id of int 8 (-100)");
    s_expect (
        dealer,
        s_one (S_RAW ("\x98\xa5shoal\x01\xa3REQ\xd1\xff\x38\xa4\x65\x63ho\xa4\x65\x63ho"
                      "\x00\x80"),
               NULL),
        SHOAL_INVALID_ARGUMENT, 0, "id", "a negative id of int 16 (-200)");
    s_expect (dealer, s_one (s_reply (1, 77, SHOAL_OK, ""), S_RAW ("\xc0")),
              SHOAL_INVALID_ARGUMENT, 77, "expected a request",
              "a REP sent to the server");
    s_expect (dealer,
              s_one (s_packed ("[s,i,s,i,s,s,i,{}]", "shoal", 1, "PUB", 78, "echo",
                               "echo", 1000),
                     NULL),
              SHOAL_INVALID_ARGUMENT, 78, "kind", "an unknown message kind");
    s_expect (
        dealer,
        s_one (s_packed ("[s,i,i,i,s,s,i,{}]", "shoal", 1, 1, 86, "echo", "echo", 1000),
               NULL),
        SHOAL_INVALID_ARGUMENT, 0, "kind", "a message kind that is not a str");
    s_expect (
        dealer,
        s_one (s_packed ("[s,i,s,i,s,s,i]", "shoal", 1, "REQ", 79, "echo", "echo", 1000),
               NULL),
        SHOAL_INVALID_ARGUMENT, 79, "7 fields", "a request of 7 fields");
    s_expect (dealer,
              s_one (s_packed ("[s,i,s,i,s,s,i,{},n]", "shoal", 1, "REQ", 80, "echo",
                               "echo", 1000),
                     NULL),
              SHOAL_INVALID_ARGUMENT, 80, "9 fields", "a request of 9 fields");
    //  An array header that claims 2^32-1 fields, and 4 of them
    s_expect (dealer,
              s_one (S_RAW ("\xdd\xff\xff\xff\xff\xa5shoal\x01\xa3REQ\x57"), NULL),
              SHOAL_INVALID_ARGUMENT, 87, "4294967295 fields",
              "a request header that claims 2^32-1 fields");
    s_expect (
        dealer,
        s_one (s_packed ("[s,i,s,i,s,i,i,{}]", "shoal", 1, "REQ", 81, "echo", 3, 1000),
               NULL),
        SHOAL_INVALID_ARGUMENT, 81, "strings", "a method that is not a string");
    s_expect (dealer,
              s_one (s_packed ("[s,i,s,I,s,s,I,{}]", "shoal", 1, "REQ", (int64_t)82,
                               "echo", "echo", (int64_t)UINT32_MAX + 1),
                     NULL),
              SHOAL_INVALID_ARGUMENT, 82, "timeout", "a timeout over 32 bits");
    s_expect (
        dealer,
        s_one (s_packed ("[s,i,s,i,s,s,i,{}]", "shoal", 1, "REQ", 83, "echo", "echo", -1),
               NULL),
        SHOAL_INVALID_ARGUMENT, 83, "timeout", "a negative timeout");
    s_expect (dealer,
              s_one (s_packed ("[s,i,s,i,s,s,i,{s:[[i]]}]", "shoal", 1, "REQ", 84, "echo",
                               "echo", 1000, "a", 1),
                     NULL),
              SHOAL_INVALID_ARGUMENT, 84, "must be strings",
              "a header nested 4 deep (a metadata value that is not a str)");

    //  A header over SHOAL_WIRE_MAX_HEADER (8192 bytes), within every other
    //  limit: 9 metadata entries of 1000 bytes
    size_t size = 0;
    byte *bytes = (byte *)zmalloc (16 * 1024);
    bytes[size++] = 0x89; //  map of 9
    for (int index = 0; index < 9; index++) {
        bytes[size++] = 0xa2;
        bytes[size++] = 'k';
        bytes[size++] = '0' + index;
        bytes[size++] = 0xda; //  str 16 of 1000 bytes
        bytes[size++] = 1000 >> 8;
        bytes[size++] = 1000 & 0xff;
        memset (bytes + size, 'v', 1000);
        size += 1000;
    }
    s_expect (dealer, s_one (s_request_meta (85, bytes, size), NULL),
              SHOAL_INVALID_ARGUMENT, 85, "exceeds 8192", "a header of 9 KB");
    free (bytes);
    //  A name far over its limit is refused as a name, before any size
    char *big = (char *)zmalloc (9000);
    memset (big, 'm', 8999);
    s_expect (dealer, s_one (s_request (88, "echo", big), NULL), SHOAL_INVALID_ARGUMENT,
              88, "names must be 1..128", "a method name of 8999 bytes");
    free (big);
}

static void
s_bad_names (zsock_t *dealer)
{
    char name[130];
    memset (name, 'm', sizeof (name));
    name[128] = 0;
    s_expect (dealer, s_one (s_request (90, "echo", name), NULL), SHOAL_UNIMPLEMENTED, 90,
              "has no method", "a method name of 128 bytes (the limit)");
    name[128] = 'm';
    name[129] = 0;
    s_expect (dealer, s_one (s_request (91, "echo", name), NULL), SHOAL_INVALID_ARGUMENT,
              91, "names must be 1..128", "a method name of 129 bytes");
    s_expect (dealer, s_one (s_request (92, "echo", ""), NULL), SHOAL_INVALID_ARGUMENT,
              92, "names", "an empty method name");
    s_expect (dealer, s_one (s_request (93, "echo", "a b"), NULL), SHOAL_INVALID_ARGUMENT,
              93, "names", "a method name with a space");
    s_expect (dealer, s_one (s_request (94, "ech\xc3\xb6", "echo"), NULL),
              SHOAL_INVALID_ARGUMENT, 94, "names", "a service name that is not ASCII");
    s_expect (dealer, s_one (s_request (89, "echo", "$"), NULL), SHOAL_INVALID_ARGUMENT,
              89, "names", "a method name that is only '$'");

    s_expect (dealer, s_one (s_request (95, "cart", "echo"), NULL), SHOAL_NOT_FOUND, 95,
              "no service 'cart' here", "another service's name");
    s_expect (dealer, s_one (s_request (96, "echo", "nope"), NULL), SHOAL_UNIMPLEMENTED,
              96, "no method 'nope'", "an unknown method");
    s_expect (dealer, s_one (s_request (97, "echo", "$nope"), NULL), SHOAL_UNIMPLEMENTED,
              97, "no method '$nope'", "an unknown built-in");
    //  The method is looked up before the body is read
    s_expect (dealer, s_one (s_request (98, "echo", "nope"), S_RAW ("\xc1")),
              SHOAL_UNIMPLEMENTED, 98, "no method", "an unknown method with a bad body");
    s_reply_t reply = s_expect (dealer, s_one (s_request (99, "echo", "$ping"), NULL),
                                SHOAL_OK, 99, "", "$ping");
    shoal_reader_t *reader = shoal_reader_new (reply.body, reply.body_size);
    const char *service = "", *instance = "";
    int rc = shoal_reader_get (reader, "{s:s, s:s}", "service", &service, "instance",
                               &instance);
    tap_ok (rc == 0 && streq (service, "echo") && strlen (instance) > 0,
            "$ping answers {service, instance} (%s, %s)", service, instance);
    shoal_reader_destroy (&reader);
}

static void
s_bad_meta (zsock_t *dealer)
{
    s_expect (dealer,
              s_one (s_packed ("[s,i,s,i,s,s,i,{s:s}]", "shoal", 1, "REQ", 100, "echo",
                               "echo", 1000, "trace", "t-1"),
                     S_RAW ("\xc0")),
              SHOAL_OK, 100, "", "metadata {trace: \"t-1\"}");
    s_expect (dealer,
              s_one (s_packed ("[s,i,s,i,s,s,i,{s:i}]", "shoal", 1, "REQ", 101, "echo",
                               "echo", 1000, "trace", 5),
                     NULL),
              SHOAL_INVALID_ARGUMENT, 101, "must be strings",
              "metadata with an integer value");
    s_expect (dealer,
              s_one (s_packed ("[s,i,s,i,s,s,i,[s]]", "shoal", 1, "REQ", 102, "echo",
                               "echo", 1000, "trace"),
                     NULL),
              SHOAL_INVALID_ARGUMENT, 102, "must be a map", "metadata that is an array");
    s_expect (dealer,
              s_one (s_packed ("[s,i,s,i,s,s,i,n]", "shoal", 1, "REQ", 103, "echo",
                               "echo", 1000),
                     NULL),
              SHOAL_INVALID_ARGUMENT, 103, "must be a map", "metadata that is nil");

    //  33 entries, one over SHOAL_WIRE_MAX_META
    byte meta[1100];
    size_t size = 0;
    meta[size++] = 0xde; //  map 16
    meta[size++] = 0;
    meta[size++] = 33;
    for (int index = 0; index < 33; index++) {
        meta[size++] = 0xa2;
        meta[size++] = 'a' + index / 10;
        meta[size++] = '0' + index % 10;
        meta[size++] = 0xa0;
    }
    s_expect (dealer, s_one (s_request_meta (104, meta, size), NULL),
              SHOAL_INVALID_ARGUMENT, 104, "33 entries", "metadata of 33 entries");
    //  A key of 65 bytes, one over SHOAL_WIRE_MAX_META_KEY
    size = 0;
    meta[size++] = 0x81;
    meta[size++] = 0xd9;
    meta[size++] = 65;
    memset (meta + size, 'k', 65);
    size += 65;
    meta[size++] = 0xa0;
    s_expect (dealer, s_one (s_request_meta (105, meta, size), NULL),
              SHOAL_INVALID_ARGUMENT, 105, "longer than", "a metadata key of 65 bytes");
    //  A value of 1025 bytes, one over SHOAL_WIRE_MAX_META_VALUE
    size = 0;
    meta[size++] = 0x81;
    meta[size++] = 0xa1;
    meta[size++] = 'k';
    meta[size++] = 0xda;
    meta[size++] = 1025 >> 8;
    meta[size++] = 1025 & 0xff;
    memset (meta + size, 'v', 1025);
    size += 1025;
    s_expect (dealer, s_one (s_request_meta (106, meta, size), NULL),
              SHOAL_INVALID_ARGUMENT, 106, "longer than",
              "a metadata value of 1025 bytes");
}

static void
s_bad_bodies (zsock_t *dealer)
{
    s_expect (dealer, s_one (s_request (110, "echo", "echo"), S_RAW ("\xcb\x40\x09")),
              SHOAL_INVALID_ARGUMENT, 110, "truncated", "a truncated body");
    s_expect (dealer,
              s_one (s_request (111, "echo", "echo"), S_RAW ("\xdd\xff\xff\xff\xff")),
              SHOAL_INVALID_ARGUMENT, 111, "array of 4294967295 elements",
              "an array header dd ffffffff and nothing after");
    s_expect (dealer,
              s_one (s_request (112, "echo", "echo"), S_RAW ("\xdb\xff\xff\xff\xff")),
              SHOAL_INVALID_ARGUMENT, 112, "string of 4294967295 bytes",
              "a string header of 4 GiB and nothing after");
    s_expect (
        dealer,
        s_one (s_request (113, "echo", "echo"), S_RAW ("\xdf\x7f\xff\xff\xff\x01\x01")),
        SHOAL_INVALID_ARGUMENT, 113, "map of 2147483647 entries",
        "a map header of 2^31 entries");
    char nested[41];
    memset (nested, 0x91, 40);
    nested[40] = (char)0xc0;
    s_expect (dealer, s_one (s_request (114, "echo", "echo"), zframe_new (nested, 41)),
              SHOAL_INVALID_ARGUMENT, 114, "nested deeper than 16", "40 nested arrays");
    //  The default limit, SHOAL_DEFAULT_MAX_DEPTH, is 16 containers deep
    char *at_limit = nested + 40 - 16;
    s_reply_t reply = s_expect (
        dealer, s_one (s_request (115, "echo", "echo"), zframe_new (at_limit, 17)),
        SHOAL_OK, 115, "", "16 nested arrays (the limit)");
    tap_ok (reply.body_size == 17 && memcmp (reply.body, at_limit, 17) == 0,
            "16 nested arrays come back unchanged");
    s_expect (dealer,
              s_one (s_request (116, "echo", "echo"), zframe_new (at_limit - 1, 18)),
              SHOAL_INVALID_ARGUMENT, 116, "nested deeper than 16", "17 nested arrays");
    s_expect (dealer,
              s_one (s_request (117, "echo", "echo"), S_RAW ("\x81\xa1\x61\x01 junk")),
              SHOAL_INVALID_ARGUMENT, 117, "5 trailing bytes", "trailing garbage");
    s_expect (dealer, s_one (s_request (118, "echo", "echo"), S_RAW ("\xc1")),
              SHOAL_INVALID_ARGUMENT, 118, "reserved byte 0xc1",
              "the reserved byte 0xc1");
    //  A message is one header and one body: a second value is trailing
    s_expect (dealer, s_one (s_request (119, "echo", "echo"), S_RAW ("\xc0\xc0")),
              SHOAL_INVALID_ARGUMENT, 119, "1 trailing bytes",
              "two values after the header");
}

//  A body of SIZE bytes, as one msgpack bin 32 value
static zframe_t *
s_bin (size_t size)
{
    zframe_t *frame = zframe_new (NULL, size + 5);
    byte *data = zframe_data (frame);
    data[0] = 0xc6;
    for (int index = 0; index < 4; index++)
        data[1 + index] = (byte)(size >> (24 - 8 * index));
    memset (data + 5, 'b', size);
    return frame;
}

//  The size limit is on the whole message: header and body, one frame.
//  One byte over it, libzmq drops the connection, silently; the sender
//  reconnects, and everybody else never notices.
static void
s_oversized (const char *endpoint, zsock_t *dealer)
{
    zframe_t *header = s_request (120, "echo", "echo");
    size_t header_size = zframe_size (header);
    zframe_destroy (&header);
    //  Exactly at the limit: served
    size_t fits = S_MAX_MESSAGE - header_size - 5;
    s_reply_t reply = s_expect (
        dealer, s_one (s_request (120, "echo", "echo"), s_bin (fits)), SHOAL_OK, 120, "",
        "a message of exactly the limit, header and body together");
    tap_ok (reply.body_size == fits + 5, "its body of %zu bytes comes back (%zu)",
            fits + 5, reply.body_size);

    zactor_t *monitor = zactor_new (zmonitor, dealer);
    zstr_sendx (monitor, "LISTEN", "DISCONNECTED", NULL);
    zstr_sendx (monitor, "START", NULL);
    zsock_wait (monitor);

    //  One byte more: the body alone is still under the limit
    zmsg_t *msg = s_one (s_request (121, "echo", "echo"), s_bin (fits + 1));
    zmsg_send (&msg, dealer);

    zpoller_t *poller = zpoller_new (monitor, NULL);
    bool disconnected = false;
    if (zpoller_wait (poller, S_WAIT) == monitor) {
        zmsg_t *event = zmsg_recv (monitor); //  [name, value, endpoint]
        char *name = event ? zmsg_popstr (event) : NULL;
        disconnected = name && streq (name, "DISCONNECTED");
        zstr_free (&name);
        zmsg_destroy (&event);
    }
    zpoller_destroy (&poller);
    tap_ok (
        disconnected,
        "a message of %d bytes, its body %zu (limit %d), gets the sender disconnected",
        S_MAX_MESSAGE + 1, fits + 6, S_MAX_MESSAGE);
    zactor_destroy (&monitor);

    zsock_t *fresh = s_dealer (endpoint);
    s_expect (fresh, s_one (s_request (122, "echo", "$ping"), NULL), SHOAL_OK, 122, "",
              "a fresh DEALER is still served");
    zsock_destroy (&fresh);
    //  The oversized message never reached the service: no reply, and the
    //  next thing this DEALER hears is the answer to its next request
    s_expect (dealer, s_one (s_request (123, "echo", "$ping"), NULL), SHOAL_OK, 123, "",
              "the disconnected DEALER reconnects and is served again");
}

//  --------------------------------------------------------------------------
//  Server side: counters, then a flood

typedef struct {
    shoal_client_t *client;
    const char *endpoint;
    int64_t target;
    int64_t malformed;
} s_stats_wait_t;

static bool
s_malformed_reached (void *arg)
{
    s_stats_wait_t *wait = (s_stats_wait_t *)arg;
    shoal_call_t *call = shoal_client_call (wait->client, wait->endpoint, "echo",
                                            "$stats", NULL, 0, 500);
    shoal_call_get (call, "{s:I}", "malformed", &wait->malformed);
    shoal_call_destroy (&call);
    return wait->malformed >= wait->target;
}

static void
s_counters_and_flood (const char *endpoint)
{
    shoal_client_t *client = shoal_client_new ();
    shoal_call_t *call = shoal_client_callf (client, endpoint, "echo", "echo", S_WAIT,
                                             "{s:s}", "text", "still here");
    const char *text = "";
    int rc = shoal_call_get (call, "{s:s}", "text", &text);
    tap_ok (rc == 0 && streq (text, "still here"),
            "after all that, a shoal client's call is answered (%s: \"%s\")",
            shoal_status_name (shoal_call_status (call)), text);
    shoal_call_destroy (&call);
    s_expected.calls++;

    int64_t calls = -1, errors = -1, malformed = -1, dropped = -1;
    call = shoal_client_call (client, endpoint, "echo", "$stats", NULL, 0, S_WAIT);
    shoal_call_get (call, "{s:I, s:I, s:I, s:I}", "calls", &calls, "errors", &errors,
                    "malformed", &malformed, "dropped", &dropped);
    shoal_call_destroy (&call);
    tap_ok (malformed == s_expected.malformed,
            "$stats counts %" PRId64 " malformed messages (expected %" PRId64 ")",
            malformed, s_expected.malformed);
    tap_ok (errors == s_expected.errors && calls == s_expected.calls && dropped == 0,
            "$stats counts %" PRId64 " calls, %" PRId64 " errors, %" PRId64 " dropped "
            "(expected %" PRId64 ", %" PRId64 ", 0)",
            calls, errors, dropped, s_expected.calls, s_expected.errors);

    //  The flood, as fast as the socket takes it, each send bounded by a
    //  timeout, never reading the replies: one-frame messages, in turn
    //  garbage (a random first byte is never the array of a shoal header:
    //  refused unread) and a good header followed by a body that starts
    //  with the reserved byte 0xc1 (refused once the method is found)
    zsock_t *flood = s_dealer (endpoint);
    zsock_set_sndtimeo (flood, S_WAIT);
    void *handle = zsock_resolve (flood);
    zframe_t *header = s_request (1, "echo", "echo");
    size_t header_size = zframe_size (header);
    uint32_t seed = 12345;
    int sent = 0;
    int64_t start = zclock_mono ();
    for (; sent < S_FLOOD && zclock_mono () - start < 30000; sent++) {
        byte message[64 + 32];
        size_t size = 0;
        if (sent % 2) {
            memcpy (message, zframe_data (header), header_size);
            size = header_size;
            message[size++] = 0xc1;
        }
        size_t garbage = 1 + sent % 32;
        for (size_t index = 0; index < garbage; index++) {
            seed = seed * 1103515245 + 12345;
            message[size++] = (byte)(seed >> 16);
        }
        if (zmq_send (handle, message, size, 0) == -1)
            break;
    }
    zframe_destroy (&header);
    tap_ok (sent == S_FLOOD,
            "a flood of %d garbage messages (bad headers, bad bodies) is sent in %" PRId64
            " ms",
            sent, zclock_mono () - start);

    start = zclock_mono ();
    call = shoal_client_callf (client, endpoint, "echo", "echo", S_WAIT, "i", 42);
    int64_t took = zclock_mono () - start;
    int answer = 0;
    rc = shoal_call_get (call, "i", &answer);
    tap_ok (rc == 0 && answer == 42 && took < S_WAIT,
            "right after the flood a normal call is answered in %" PRId64 " ms (%s)",
            took, shoal_status_name (shoal_call_status (call)));
    shoal_call_destroy (&call);

    //  Every garbage message reaches the service and is counted, whether
    //  or not its reply found room to go back
    s_stats_wait_t wait = { client, endpoint, s_expected.malformed + sent, -1 };
    bool reached = tap_wait_until (s_malformed_reached, &wait, 30000);
    tap_ok (reached && wait.malformed == wait.target,
            "$stats counts all %d garbage messages as malformed (%" PRId64 " of %" PRId64
            ")",
            sent, wait.malformed, wait.target);
    zsock_destroy (&flood);
    shoal_client_destroy (&client);
}

//  --------------------------------------------------------------------------
//  Client side: a hostile server

typedef struct {
    zsock_t *router;
    zframe_t *identity; //  of the caller of the last request taken
    int64_t id;         //  its correlation id
} s_hostile_t;

//  Takes the next request from the shoal client; false if none comes
static bool
s_take (s_hostile_t *self)
{
    zframe_destroy (&self->identity);
    self->id = -1;
    zmsg_t *msg = zmsg_recv (self->router);
    if (!msg)
        return false;
    self->identity = zmsg_pop (msg);
    //  [identity, message]: the header at the start of the one frame
    zframe_t *frame = zmsg_first (msg);
    size_t header_size;
    if (zmsg_size (msg) == 1
        && shoal_reader_check_prefix (zframe_data (frame), zframe_size (frame), 3,
                                      &header_size, NULL, 0)
               == 0) {
        shoal_reader_t *reader = shoal_reader_new (zframe_data (frame), header_size);
        const char *signature, *kind;
        int version;
        if (shoal_reader_get (reader, "[s,i,s,I]", &signature, &version, &kind,
                              &self->id))
            self->id = -1;
        shoal_reader_destroy (&reader);
    }
    zmsg_destroy (&msg);
    return self->id > 0;
}

//  Takes the next request from CLIENT, letting it run meanwhile: a call to
//  an endpoint it is not connected to yet is parked, and only sent from its
//  wait loop once the connection is up
static bool
s_take_from (s_hostile_t *self, shoal_client_t *client)
{
    int64_t end = zclock_mono () + S_WAIT;
    while (zclock_mono () < end) {
        if (zsock_events (self->router) & ZMQ_POLLIN)
            return s_take (self);
        shoal_client_wait_any (client, 5);
    }
    return false;
}

//  Sends MSG (which it takes) to the caller of the last request
static void
s_answer (s_hostile_t *self, zmsg_t *msg)
{
    zmsg_pushmem (msg, zframe_data (self->identity), zframe_size (self->identity));
    zmsg_send (&msg, self->router);
}

//  Sends a call with TIMEOUT_MS, answers it with each message in turn (they
//  are built with the call's id, see below) and waits for it. Checks the
//  final STATUS and that it came before the deadline (plus slack).
typedef zmsg_t *(s_answer_fn)(int64_t id, int index);

static shoal_call_t *
s_hostile_call (s_hostile_t *self, shoal_client_t *client, const char *endpoint,
                s_answer_fn *answer, int answers, int timeout_ms, int status,
                const char *name)
{
    int64_t start = zclock_mono ();
    shoal_call_t *call
        = shoal_client_send (client, endpoint, "svc", "method", NULL, 0, timeout_ms);
    if (!s_take_from (self, client)) {
        tap_ok (false, "%s: the hostile server got no request", name);
        return call;
    }
    for (int index = 0; index < answers; index++)
        s_answer (self, answer (self->id, index));
    shoal_status_t got = shoal_call_wait (call);
    int64_t took = zclock_mono () - start;
    tap_ok ((int)got == status && took <= timeout_ms + 500,
            "%s: the call ends %s in %" PRId64 " ms (got %s: %s)", name,
            shoal_status_name (status), took, shoal_status_name (got),
            shoal_call_message (call));
    return call;
}

static zmsg_t *
s_garbage (int64_t id, int index)
{
    return s_one (S_RAW ("\xc1garbage"), NULL);
}

static zmsg_t *
s_wrong_id (int64_t id, int index)
{
    return s_one (s_reply (1, id + 1000, SHOAL_OK, ""), S_RAW ("\x01"));
}

static zmsg_t *
s_id_zero (int64_t id, int index)
{
    return s_one (s_reply (1, 0, SHOAL_OK, ""), S_RAW ("\x01"));
}

//  The old shape: header and body in frames of their own
static zmsg_t *
s_two_frames (int64_t id, int index)
{
    return s_msg (2, s_reply (1, id, SHOAL_OK, ""), S_RAW ("\x01"));
}

//  A good reply, and a surplus empty frame after it
static zmsg_t *
s_surplus_frame (int64_t id, int index)
{
    return s_msg (2, s_join (s_reply (1, id, SHOAL_OK, ""), S_RAW ("\x01")), S_RAW (""));
}

static zmsg_t *
s_three_frames (int64_t id, int index)
{
    return s_msg (3, s_reply (1, id, SHOAL_OK, ""), S_RAW ("\x01"), S_RAW ("\x02"));
}

//  The reply header cut short after its id: the call is known, the rest
//  cannot be read
static zmsg_t *
s_cut_short (int64_t id, int index)
{
    zframe_t *header = s_reply (1, id, SHOAL_OK, "");
    zframe_t *cut = zframe_new (zframe_data (header), zframe_size (header) - 2);
    zframe_destroy (&header);
    return s_one (cut, NULL);
}

static zmsg_t *
s_bad_status (int64_t id, int index)
{
    return s_one (s_reply (1, id, 99, "a status from the future"), NULL);
}

static zmsg_t *
s_version_2 (int64_t id, int index)
{
    return s_one (s_reply (2, id, SHOAL_OK, ""), S_RAW ("\x01"));
}

static zmsg_t *
s_request_back (int64_t id, int index)
{
    return s_one (s_request (id, "svc", "method"), NULL);
}

static zmsg_t *
s_bad_body (int64_t id, int index)
{
    return s_one (s_reply (1, id, SHOAL_OK, ""), S_RAW ("\xdd\xff\xff\xff\xff"));
}

static zmsg_t *
s_header_only (int64_t id, int index)
{
    return s_one (s_reply (1, id, SHOAL_OK, ""), NULL);
}

//  Garbage, a wrong id, an id of 0, then the real reply
static zmsg_t *
s_noise_then_good (int64_t id, int index)
{
    switch (index) {
    case 0:
        return s_garbage (id, index);
    case 1:
        return s_wrong_id (id, index);
    case 2:
        return s_id_zero (id, index);
    default:
        return s_one (s_reply (1, id, SHOAL_OK, ""), S_RAW ("\xa2ok"));
    }
}

static void
s_hostile_server (void)
{
    s_hostile_t hostile = { zsock_new (ZMQ_ROUTER), NULL, -1 };
    assert (hostile.router);
    zsock_set_linger (hostile.router, 0);
    zsock_set_rcvtimeo (hostile.router, S_WAIT);
    if (zsock_bind (hostile.router, "tcp://127.0.0.1:*") == -1)
        tap_bail ("cannot bind a ROUTER on tcp://127.0.0.1:*");
    char *endpoint = zsock_last_endpoint (hostile.router);
    shoal_client_t *client = shoal_client_new ();

    struct {
        s_answer_fn *answer;
        int timeout_ms;
        int status;
        const char *name;
    } cases[] = {
        { s_garbage, 300, SHOAL_DEADLINE_EXCEEDED, "a garbage reply (no id to match)" },
        { s_wrong_id, 300, SHOAL_DEADLINE_EXCEEDED, "a reply with another id" },
        { s_id_zero, 300, SHOAL_DEADLINE_EXCEEDED, "a reply with id 0" },
        { s_two_frames, S_WAIT, SHOAL_INTERNAL,
          "a reply of 2 frames, header and body apart (the old shape)" },
        { s_surplus_frame, S_WAIT, SHOAL_INTERNAL, "a good reply and a surplus frame" },
        { s_three_frames, S_WAIT, SHOAL_INTERNAL, "a reply of 3 frames" },
        { s_cut_short, S_WAIT, SHOAL_INTERNAL, "a reply header cut short after its id" },
        { s_bad_status, S_WAIT, SHOAL_INTERNAL, "a reply with status 99" },
        { s_version_2, S_WAIT, SHOAL_INTERNAL, "a reply of version 2" },
        { s_request_back, S_WAIT, SHOAL_INTERNAL, "a request instead of a reply" },
    };
    for (size_t index = 0; index < sizeof (cases) / sizeof (cases[0]); index++) {
        shoal_call_t *call = s_hostile_call (
            &hostile, client, endpoint, cases[index].answer, 1, cases[index].timeout_ms,
            cases[index].status, cases[index].name);
        shoal_call_destroy (&call);
    }

    //  A body that is not msgpack: the client does not trust it either
    shoal_call_t *call = s_hostile_call (&hostile, client, endpoint, s_bad_body, 1,
                                         S_WAIT, SHOAL_OK, "a reply with a hostile body");
    const void *raw;
    size_t size;
    char *json = shoal_call_json (call);
    int rc = shoal_call_get (call, "z%", &raw, &size);
    tap_ok (rc == -1 && json == NULL, "reading the hostile body fails cleanly (%s)",
            shoal_call_get_error (call));
    zstr_free (&json);
    shoal_call_destroy (&call);

    //  A reply header with nothing after it: OK, with a nil body
    call = s_hostile_call (&hostile, client, endpoint, s_header_only, 1, S_WAIT, SHOAL_OK,
                           "a reply header alone");
    json = shoal_call_json (call);
    rc = shoal_call_get (call, "n");
    tap_ok (rc == 0 && json && streq (json, "null"), "its body reads as nil (%s)",
            json ? json : shoal_call_get_error (call));
    zstr_free (&json);
    shoal_call_destroy (&call);

    //  Noise first, then the real reply: the call takes the real one
    call = s_hostile_call (&hostile, client, endpoint, s_noise_then_good, 4, S_WAIT,
                           SHOAL_OK, "garbage, a wrong id and id 0, then a good reply");
    const char *text = "";
    rc = shoal_call_get (call, "s", &text);
    tap_ok (rc == 0 && streq (text, "ok"), "the good reply's body is read (\"%s\")",
            text);
    shoal_call_destroy (&call);

    //  A reply to a call that was destroyed is dropped; the next call works
    call = shoal_client_send (client, endpoint, "svc", "method", NULL, 0, S_WAIT);
    bool taken = s_take_from (&hostile, client);
    shoal_call_destroy (&call);
    if (taken)
        s_answer (&hostile,
                  s_one (s_reply (1, hostile.id, SHOAL_OK, ""), S_RAW ("\x01")));
    call = s_hostile_call (&hostile, client, endpoint, s_noise_then_good, 4, S_WAIT,
                           SHOAL_OK, "after a reply to a destroyed call");
    shoal_call_destroy (&call);
    tap_ok (shoal_client_pending (client) == 0, "no call is left pending");

    shoal_client_destroy (&client);
    zstr_free (&endpoint);
    zframe_destroy (&hostile.identity);
    zsock_destroy (&hostile.router);
}

int
main (void)
{
    //  The service's warnings about what it refuses go to stderr, away from
    //  the TAP lines (CZMQ logs to stdout unless told otherwise)
    zsys_set_logstream (stderr);
    shoal_service_t *service = shoal_service_new ("echo", "1.0.0");
    shoal_service_method (service, "echo", s_echo, SHOAL_IDEMPOTENT, "echo");
    shoal_service_bind (service, "tcp://127.0.0.1:*");
    shoal_service_set_max_message (service, S_MAX_MESSAGE);
    if (shoal_service_start (service, 1))
        tap_bail ("cannot start the echo service");
    const char *endpoint = shoal_service_endpoint (service, 0);
    tap_diag ("echo service at %s", endpoint);

    zsock_t *dealer = s_dealer (endpoint);
    s_bad_frames (dealer);
    s_bad_headers (dealer);
    s_bad_names (dealer);
    s_bad_meta (dealer);
    s_bad_bodies (dealer);
    s_oversized (endpoint, dealer);
    zsock_destroy (&dealer);
    s_counters_and_flood (endpoint);
    shoal_service_destroy (&service);

    s_hostile_server ();
    return tap_exit_status ();
}
