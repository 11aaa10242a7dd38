/*  shoal_body - builds msgpack bodies from C in one line.

    The packing core, s_pack, writes to any msgpack_packer, so that code
    which packs into its own buffer can share the format language. A format
    error is a programmer's mistake, but one the caller can recover from:
    it is logged and the body is NULL, never an abort.                        */

#include "shoal_private.h"

//  msgpack-c unpacks at most 32 nested containers; we stop one short of it
#define S_MAX_DEPTH SHOAL_MSGPACK_MAX_DEPTH

struct _shoal_body_t {
    msgpack_sbuffer buffer;
};

//  One pass of a format over its arguments
typedef struct {
    msgpack_packer *packer;
    const char *cursor;         //  Next character to read
    va_list *args;
    char error [128];           //  Why the format is bad, or ""
} s_pack_t;

static int
    s_pack_value (s_pack_t *self, int depth);


//  --------------------------------------------------------------------------
//  Notes why the format is bad; returns -1 for the caller to pass on.

static int
s_bad (s_pack_t *self, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    vsnprintf (self->error, sizeof self->error, format, args);
    va_end (args);
    return -1;
}


//  --------------------------------------------------------------------------
//  Separators carry no meaning; they only make formats readable.

static void
s_skip (s_pack_t *self)
{
    while (*self->cursor && strchr (" \t\n,:", *self->cursor))
        self->cursor++;
}


//  --------------------------------------------------------------------------
//  Counts the values between the cursor and the bracket CLOSE that ends its
//  container: msgpack puts the count in front. Returns -1 if the format
//  ends first. Types are checked later, by s_pack_value.

static int
s_count (const char *cursor, char close)
{
    int count = 0;
    int depth = 0;
    for (; *cursor; cursor++) {
        if (depth == 0 && *cursor == close)
            return count;
        if (strchr (" \t\n,:%", *cursor))
            continue;
        if (depth == 0)
            count++;
        if (*cursor == '[' || *cursor == '{')
            depth++;
        else if (*cursor == ']' || *cursor == '}')
            depth--;
        if (depth < 0)
            return -1;
    }
    return -1;
}


//  --------------------------------------------------------------------------
//  Packs a string argument, and its length if the format says `s%`.

static int
s_pack_string (s_pack_t *self, bool is_key)
{
    const char *string = va_arg (*self->args, const char *);
    size_t length = 0;
    if (*self->cursor == '%') {
        self->cursor++;
        length = va_arg (*self->args, size_t);
    }
    else if (string)
        length = strlen (string);
    if (!string && is_key)
        return s_bad (self, "NULL key");
    if (!string)
        return msgpack_pack_nil (self->packer);
    return msgpack_pack_str (self->packer, length)
        || msgpack_pack_str_body (self->packer, string, length);
}


//  --------------------------------------------------------------------------
//  Packs the array or map whose bracket the cursor has passed.

static int
s_pack_container (s_pack_t *self, char close, int depth)
{
    int count = s_count (self->cursor, close);
    if (count < 0)
        return s_bad (self, close == ']' ? "missing ']'" : "missing '}'");
    if (close == '}' && count % 2)
        return s_bad (self, "a map key without a value");
    if (close == ']' ? msgpack_pack_array (self->packer, count)
                     : msgpack_pack_map (self->packer, count / 2))
        return -1;
    for (int index = 0; index < count; index++) {
        s_skip (self);
        if (close == '}' && index % 2 == 0) {
            if (*self->cursor != 's')
                return s_bad (self, "a map key must be 's'");
            self->cursor++;
            if (s_pack_string (self, true))
                return -1;
        }
        else if (s_pack_value (self, depth))
            return -1;
    }
    s_skip (self);
    if (*self->cursor != close)
        return s_bad (self, close == ']' ? "']' expected" : "'}' expected");
    self->cursor++;
    return 0;
}


//  --------------------------------------------------------------------------
//  Packs the value at the cursor. DEPTH is the number of containers open
//  around it.

static int
s_pack_value (s_pack_t *self, int depth)
{
    msgpack_packer *packer = self->packer;
    s_skip (self);
    char type = *self->cursor;
    if (type == 0)
        return s_bad (self, "missing a value");
    if (!strchr ("nbiIfsxz[{", type))
        return s_bad (self, "unknown type '%c'", type);
    self->cursor++;
    if (type == '[' || type == '{') {
        if (depth == S_MAX_DEPTH)
            return s_bad (self, "nested too deep");
        return s_pack_container (self, type == '[' ? ']' : '}', depth + 1);
    }
    if (type == 's')
        return s_pack_string (self, false);
    bool sized = *self->cursor == '%';
    if (sized != (type == 'x' || type == 'z'))
        return s_bad (self, sized ? "'%%' after a type that has no length"
                                  : "missing '%%'");
    self->cursor += sized;

    switch (type) {
        case 'n':
            return msgpack_pack_nil (packer);
        case 'b':
            return va_arg (*self->args, int) ? msgpack_pack_true (packer)
                                             : msgpack_pack_false (packer);
        case 'i':
            return msgpack_pack_int (packer, va_arg (*self->args, int));
        case 'I':
            return msgpack_pack_int64 (packer, va_arg (*self->args, int64_t));
        case 'f':
            return msgpack_pack_double (packer, va_arg (*self->args, double));
    }
    const void *data = va_arg (*self->args, const void *);
    size_t size = va_arg (*self->args, size_t);
    if (!data && size)
        return s_bad (self, "NULL data with a size");
    if (type == 'x')
        return msgpack_pack_bin (packer, size)
            || msgpack_pack_bin_body (packer, data, size);

    //  z%: refuse anything that would make the body unreadable; no data
    //  reads as nil, as an empty body does
    if (size == 0)
        return msgpack_pack_nil (packer);
    char why [96];
    if (shoal_reader_check (data, size, S_MAX_DEPTH - depth, why, sizeof why))
        return s_bad (self, "z%% value refused: %s", why);
    return packer->callback (packer->data, (const char *) data, size);
}


//  --------------------------------------------------------------------------
//  Packs exactly one value per FORMAT into PACKER. Returns 0, or -1 if the
//  format is bad (logged) or memory ran out; the packer may then hold part
//  of a value.

static int
s_pack (msgpack_packer *packer, const char *format, va_list *args)
{
    s_pack_t self = { .packer = packer, .cursor = format, .args = args };
    int rc = s_pack_value (&self, 0);
    if (rc == 0) {
        s_skip (&self);
        if (*self.cursor)
            rc = s_bad (&self, "text after the value");
    }
    if (rc && *self.error)
        zsys_error ("shoal_body: bad format \"%s\" at %td: %s",
                    format, self.cursor - format, self.error);
    else if (rc)
        zsys_error ("shoal_body: out of memory packing \"%s\"", format);
    return rc;
}


//  --------------------------------------------------------------------------
//  A body packed from FORMAT, or NULL if the format is malformed.

shoal_body_t *
shoal_body_pack (const char *format, ...)
{
    va_list args;
    va_start (args, format);
    shoal_body_t *self = shoal_body_vpack (format, args);
    va_end (args);
    return self;
}

shoal_body_t *
shoal_body_vpack (const char *format, va_list args)
{
    assert (format);
    shoal_body_t *self = (shoal_body_t *) zmalloc (sizeof (shoal_body_t));
    msgpack_sbuffer_init (&self->buffer);
    msgpack_packer packer;
    msgpack_packer_init (&packer, &self->buffer, msgpack_sbuffer_write);
    va_list copy;
    va_copy (copy, args);
    if (s_pack (&packer, format, &copy))
        shoal_body_destroy (&self);
    va_end (copy);
    return self;
}


const void *
shoal_body_data (shoal_body_t *self)
{
    assert (self);
    return self->buffer.data;
}

size_t
shoal_body_size (shoal_body_t *self)
{
    assert (self);
    return self->buffer.size;
}


void
shoal_body_destroy (shoal_body_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        msgpack_sbuffer_destroy (&(*self_p)->buffer);
        free (*self_p);
        *self_p = NULL;
    }
}


//  --------------------------------------------------------------------------
//  Selftest

//  Asserts that BODY holds exactly the SIZE bytes EXPECTED, and destroys it
static void
s_assert_bytes (shoal_body_t **body_p, const char *expected, size_t size)
{
    assert (*body_p);
    assert (shoal_body_size (*body_p) == size);
    assert (memcmp (shoal_body_data (*body_p), expected, size) == 0);
    shoal_body_destroy (body_p);
}

//  Asserts that the msgpack in DATA/SIZE reads as the JSON EXPECTED
static void
s_assert_json (const void *data, size_t size, const char *expected)
{
    char error [256];
    char *json = shoal_body_to_json (data, size, error, sizeof error);
    assert (json);
    assert (streq (json, expected));
    free (json);
}

void
shoal_body_test (bool verbose)
{
    if (verbose)
        printf (" * shoal_body: ");

    //  @selftest
    //  Every type packs to its shortest msgpack form
    shoal_body_t *body = shoal_body_pack ("{s:i}", "a", 1);
    s_assert_bytes (&body, "\x81\xa1" "a" "\x01", 4);
    body = shoal_body_pack ("[n, b, b, i, I, f]", true, false, -1, INT64_MIN, 1.5);
    s_assert_bytes (&body, "\x96\xc0\xc3\xc2\xff"
                           "\xd3\x80\x00\x00\x00\x00\x00\x00\x00"
                           "\xcb\x3f\xf8\x00\x00\x00\x00\x00\x00", 23);
    body = shoal_body_pack ("[s, s, s%, x%]", "hi", NULL, "abc", (size_t) 2,
                            "\x00\x01", (size_t) 2);
    s_assert_bytes (&body, "\x94\xa2" "hi" "\xc0\xa2" "ab" "\xc4\x02\x00\x01", 12);
    body = shoal_body_pack ("{}");
    s_assert_bytes (&body, "\x80", 1);

    //  z% inserts packed msgpack as one value; empty raw data is nil
    shoal_body_t *inner = shoal_body_pack ("[i, i]", 3, 4);
    body = shoal_body_pack ("{s%:z%, s:z%}", "dimsXX", (size_t) 4,
                            shoal_body_data (inner), shoal_body_size (inner),
                            "none", NULL, (size_t) 0);
    s_assert_bytes (&body, "\x82\xa4" "dims" "\x92\x03\x04" "\xa4" "none" "\xc0", 15);
    shoal_body_destroy (&inner);

    //  What shoal_body_pack writes, shoal_reader reads back
    body = shoal_body_pack ("{s:s, s:i, s:[i,i], s:f}",
                            "sku", "A-1", "qty", 2, "dims", 3, 4, "price", 9.5);
    shoal_reader_t *reader = shoal_reader_new (shoal_body_data (body),
                                               shoal_body_size (body));
    const char *sku;
    int qty, width, height;
    double price;
    int rc = shoal_reader_get (reader, "{s:s, s:i, s:[i,i], s:f}",
                               "sku", &sku, "qty", &qty, "dims", &width, &height,
                               "price", &price);
    assert (rc == 0);
    assert (streq (sku, "A-1"));
    assert (qty == 2 && width == 3 && height == 4 && price == 9.5);
    shoal_reader_destroy (&reader);
    s_assert_json (shoal_body_data (body), shoal_body_size (body),
                   "{\"sku\":\"A-1\",\"qty\":2,\"dims\":[3,4],\"price\":9.5}");
    shoal_body_destroy (&body);

    //  A bad format is logged and gives no body; the log is CZMQ's, on
    //  stdout by default, so a quiet test turns it off for a while
    if (verbose)
        zsys_info ("the next errors are expected:");
    else
        zsys_set_logstream (NULL);
    assert (shoal_body_pack ("") == NULL);
    assert (shoal_body_pack ("i i", 1, 2) == NULL);
    assert (shoal_body_pack ("[i", 1) == NULL);
    assert (shoal_body_pack ("i]", 1) == NULL);
    assert (shoal_body_pack ("[i}", 1) == NULL);
    assert (shoal_body_pack ("{s}", "a") == NULL);
    assert (shoal_body_pack ("{i:i}", 1, 2) == NULL);
    assert (shoal_body_pack ("{s:i}", NULL, 2) == NULL);
    assert (shoal_body_pack ("q") == NULL);
    assert (shoal_body_pack ("i%", 1, (size_t) 1) == NULL);
    assert (shoal_body_pack ("x", "ab") == NULL);
    assert (shoal_body_pack ("x%", NULL, (size_t) 3) == NULL);
    assert (shoal_body_pack ("z%", "\x92\x01", (size_t) 2) == NULL);
    assert (shoal_body_pack ("[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
                             "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]") == NULL);
    zsys_set_logstream (stdout);

    //  JSON in: integers stay integers, objects keep their key order
    char error [256];
    body = shoal_body_from_json ("{\"b\":[true,null,-2,2.5],\"a\":\"x\\u0000y\"}",
                                 error, sizeof error);
    s_assert_bytes (&body, "\x82\xa1" "b" "\x94\xc3\xc0\xfe"
                           "\xcb\x40\x04\x00\x00\x00\x00\x00\x00"
                           "\xa1" "a" "\xa3" "x\0y", 22);
    body = shoal_body_from_json ("42", error, sizeof error);
    s_assert_bytes (&body, "\x2a", 1);
    assert (shoal_body_from_json ("{\"a\":", error, sizeof error) == NULL);
    assert (strncmp (error, "line 1 column 5: ", 17) == 0);
    //  Deeper than msgpack-c could unpack
    char deep [65] = "";
    memset (deep, '[', 32);
    memset (deep + 32, ']', 32);
    assert (shoal_body_from_json (deep, error, sizeof error) == NULL);
    assert (streq (error, "nested deeper than 31"));

    //  JSON out: binary is base64, other keys become their JSON text, what
    //  JSON cannot say becomes the nearest thing it can
    s_assert_json ("", 0, "null");
    s_assert_json ("\x93\xc4\x00\xc4\x01" "a" "\xc4\x05" "hello", 13,
                   "[\"\",\"YQ==\",\"aGVsbG8=\"]");
    s_assert_json ("\x84\x01\xa1" "a" "\xc0\xc2\x92\x01\x02\x03\xc4\x02" "hi" "\x04",
                   15, "{\"1\":\"a\",\"null\":false,\"[1,2]\":3,\"aGk=\":4}");
    s_assert_json ("\x92\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00"
                   "\xca\x7f\x80\x00\x00", 15, "[null,null]");
    s_assert_json ("\xcf\xff\xff\xff\xff\xff\xff\xff\xff", 9, "1.8446744073709552e19");
    s_assert_json ("\xd3\x80\x00\x00\x00\x00\x00\x00\x00", 9, "-9223372036854775808");
    s_assert_json ("\xa4" "a\xff" "\xc3\xa9", 5, "\"a\xef\xbf\xbd\xc3\xa9\"");
    s_assert_json ("\xd5\x07\x01\x02", 4, "{\"type\":7,\"data\":\"AQI=\"}");
    //  Keys nested in keys are escaped again at each level: these 61 bytes
    //  would take gigabytes of JSON, and are refused
    char keys [61];
    memset (keys, 0x81, 30);
    memset (keys + 30, 0xc0, 31);
    assert (shoal_body_to_json (keys, 61, error, sizeof error) == NULL);
    assert (streq (error, "map keys too long for JSON"));
    s_assert_json (keys + 28, 5, "{\"{\\\"null\\\":null}\":null}");
    assert (shoal_body_to_json ("\x92\x01", 2, error, sizeof error) == NULL);
    assert (streq (error, "array of 2 elements at byte 0 exceeds the 1 bytes left"));
    //  @end

    if (verbose)
        printf ("OK\n");
}
