/*  shoal_reader - reads typed fields out of a msgpack body, and says which
    field was missing or of the wrong type.

    msgpack-c allocates for the counts a header declares before any element
    arrives (PITFALLS.md: five bytes can reserve 512 MiB), so every body is
    first walked by shoal_reader_check, which allocates nothing and refuses
    any count the remaining bytes cannot hold. Only then is it unpacked, once,
    into the reader's zone.                                                   */

#include "shoal_private.h"

//  msgpack-c unpacks at most 32 nested containers; we stop one short of it
#define S_MAX_DEPTH SHOAL_MSGPACK_MAX_DEPTH

struct _shoal_reader_t {
    const char *data;           //  The body, borrowed
    size_t size;
    int max_depth;              //  Nesting limit for the next get
    int checked_depth;          //  Limit the body last passed, 0 if none
    msgpack_zone *zone;         //  Unpacked body and string copies; NULL
                                //  until the first get unpacks the body
    msgpack_object root;        //  The unpacked body, once zone is set
    char error [256];           //  Why the last get failed
};

//  What one msgpack header announces
typedef struct {
    const char *kind;           //  For messages; NULL for fixed-size scalars
    int values;                 //  Values per item: 1 array, 2 map, else 0
    size_t head;                //  Bytes before the payload or first item
    uint64_t length;            //  Payload bytes, or items of a container
} s_header_t;

//  One walk of a format over the unpacked body
typedef struct {
    shoal_reader_t *reader;
    const char *format;         //  The whole format, for messages
    const char *cursor;         //  Next character to read
    va_list args;
    char path [128];            //  Field being read, e.g. "items[2].name"
} s_walk_t;

static int
    s_read_value (s_walk_t *self, msgpack_object *obj, int depth);


//  --------------------------------------------------------------------------
//  Formats an error into ERROR if there is one; returns -1 for the caller to
//  pass on.

int
shoal_error_message (char *error, size_t size, const char *format, ...)
{
    if (error && size) {
        va_list args;
        va_start (args, format);
        vsnprintf (error, size, format, args);
        va_end (args);
    }
    return -1;
}


//  --------------------------------------------------------------------------
//  Decodes the header at BYTES, of which LEFT > 0 remain; the caller checks
//  that the header and what it announces fit.

static void
s_decode (const uint8_t *bytes, size_t left, s_header_t *header)
{
    uint8_t byte = bytes [0];
    size_t width = 0;           //  Bytes of the big-endian length field
    *header = (s_header_t) { .head = 1 };

    if (byte <= 0x7f || byte >= 0xe0 || (byte >= 0xc0 && byte <= 0xc3))
        ;                       //  fixint, nil, false, true (0xc1: caller)
    else if (byte <= 0x8f)
        *header = (s_header_t) { "map", 2, 1, byte & 0x0f };
    else if (byte <= 0x9f)
        *header = (s_header_t) { "array", 1, 1, byte & 0x0f };
    else if (byte <= 0xbf)
        *header = (s_header_t) { "string", 0, 1, byte & 0x1f };
    else if (byte <= 0xc6) {
        header->kind = "binary";
        width = 1 << (byte - 0xc4);
    }
    else if (byte <= 0xc9) {
        header->kind = "extension";
        header->head = 2;       //  The type byte
        width = 1 << (byte - 0xc7);
    }
    else if (byte <= 0xcb)
        header->length = byte == 0xca ? 4 : 8;
    else if (byte <= 0xd3)
        header->length = 1 << ((byte - 0xcc) & 3);
    else if (byte <= 0xd8) {
        header->head = 2;       //  fixext: the type byte, then the data
        header->length = 1 << (byte - 0xd4);
    }
    else if (byte <= 0xdb) {
        header->kind = "string";
        width = 1 << (byte - 0xd9);
    }
    else {
        header->kind = byte <= 0xdd ? "array" : "map";
        header->values = byte <= 0xdd ? 1 : 2;
        width = byte & 1 ? 4 : 2;
    }
    header->head += width;
    for (size_t index = 1; index <= width && index < left; index++)
        header->length = header->length << 8 | bytes [index];
}


//  --------------------------------------------------------------------------
//  Checks that DATA/SIZE holds exactly one well-formed msgpack value no
//  deeper than MAX_DEPTH, without allocating. The walk keeps a stack of the
//  values still due in each open container, so it neither recurses nor
//  spends more than one step per header.

//  Checks the one value at the start of DATA; its length goes to USED
static int
s_check_value (const void *data, size_t size, int max_depth, size_t *used, char *error,
        size_t error_size)
{
    assert (data || size == 0);
    const uint8_t *bytes = (const uint8_t *) data;
    uint64_t due [S_MAX_DEPTH];     //  Values still due in each open container
    int depth = 0;                  //  Containers open
    size_t at = 0;                  //  Offset of the current header
    if (max_depth > S_MAX_DEPTH)
        max_depth = S_MAX_DEPTH;

    do {
        if (at == size)
            return shoal_error_message (error, error_size, "truncated at byte %zu", at);
        if (bytes [at] == 0xc1)
            return shoal_error_message (error, error_size, "reserved byte 0xc1 at byte %zu", at);
        s_header_t header;
        s_decode (bytes + at, size - at, &header);
        if (header.head > size - at)
            return shoal_error_message (error, error_size, "truncated at byte %zu", at);
        size_t left = size - at - header.head;

        if (header.values) {
            if (depth >= max_depth)
                return shoal_error_message (error, error_size, "nested deeper than %d at byte %zu",
                                max_depth, at);
            uint64_t values = header.length * header.values;
            if (values > left)
                return shoal_error_message (error, error_size,
                                "%s of %" PRIu64 " %s at byte %zu"
                                " exceeds the %zu bytes left",
                                header.kind, header.length,
                                header.values == 2 ? "entries" : "elements", at, left);
            at += header.head;
            if (values) {
                due [depth++] = values;
                continue;
            }
        }
        else {
            if (header.length > left) {
                if (header.kind)
                    return shoal_error_message (error, error_size,
                                    "%s of %" PRIu64 " bytes at byte %zu"
                                    " exceeds the %zu bytes left",
                                    header.kind, header.length, at, left);
                return shoal_error_message (error, error_size, "truncated at byte %zu", at);
            }
            at += header.head + header.length;
        }
        //  A value is complete, and so is every container it was the last of
        while (depth > 0 && --due [depth - 1] == 0)
            depth--;
    } while (depth > 0);
    *used = at;
    return 0;
}

int
shoal_reader_check (const void *data, size_t size, int max_depth,
                    char *error, size_t error_size)
{
    size_t used;
    if (s_check_value (data, size, max_depth, &used, error, error_size))
        return -1;
    if (used < size)
        return shoal_error_message (error, error_size, "%zu trailing bytes at byte %zu",
                        size - used, used);
    return 0;
}

int
shoal_reader_check_prefix (const void *data, size_t size, int max_depth, size_t *used,
                           char *error, size_t error_size)
{
    return s_check_value (data, size, max_depth, used, error, error_size);
}


//  --------------------------------------------------------------------------
//  A reader over DATA/SIZE, which it borrows.

shoal_reader_t *
shoal_reader_new (const void *data, size_t size)
{
    assert (data || size == 0);
    shoal_reader_t *self = (shoal_reader_t *) zmalloc (sizeof (shoal_reader_t));
    self->data = (const char *) data;
    self->size = size;
    self->max_depth = SHOAL_DEFAULT_MAX_DEPTH;
    self->root.type = MSGPACK_OBJECT_NIL;
    return self;
}


void
shoal_reader_destroy (shoal_reader_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        shoal_reader_t *self = *self_p;
        if (self->zone)
            msgpack_zone_free (self->zone);
        free (self);
        *self_p = NULL;
    }
}


void
shoal_reader_set_max_depth (shoal_reader_t *self, int max_depth)
{
    assert (self);
    assert (max_depth >= 1 && max_depth <= S_MAX_DEPTH);
    self->max_depth = max_depth;
}


const char *
shoal_reader_error (shoal_reader_t *self)
{
    assert (self);
    return self->error;
}


//  --------------------------------------------------------------------------
//  Checks the body against the current limit, and unpacks it on the first
//  get only: strings that earlier gets returned live in the zone, so it is
//  never cleared while the reader lives.

static int
s_unpack (shoal_reader_t *self)
{
    if (self->size && self->checked_depth != self->max_depth) {
        if (shoal_reader_check (self->data, self->size, self->max_depth,
                                self->error, sizeof self->error))
            return -1;
        self->checked_depth = self->max_depth;
    }
    if (self->zone)
        return 0;
    self->zone = msgpack_zone_new (MSGPACK_ZONE_CHUNK_SIZE);
    if (!self->zone)
        return shoal_error_message (self->error, sizeof self->error, "out of memory");
    size_t offset = 0;
    if (self->size
    &&  msgpack_unpack (self->data, self->size, &offset, self->zone, &self->root)
        != MSGPACK_UNPACK_SUCCESS) {
        //  Only memory can fail here: the check passed
        msgpack_zone_free (self->zone);
        self->zone = NULL;
        return shoal_error_message (self->error, sizeof self->error,
                        "out of memory unpacking the body");
    }
    return 0;
}


//  --------------------------------------------------------------------------
//  The walk's errors. A field error names the field's path, or "body" for
//  the root.

static int
s_bad_format (s_walk_t *self, const char *why)
{
    return shoal_error_message (self->reader->error, sizeof self->reader->error,
                    "bad format: %s at %td in \"%s\"",
                    why, self->cursor - self->format, self->format);
}

static int
s_field_error (s_walk_t *self, const char *format, ...)
{
    char *error = self->reader->error;
    size_t size = sizeof self->reader->error;
    int prefix = *self->path ? snprintf (error, size, "field '%s' ", self->path)
                             : snprintf (error, size, "body ");
    if ((size_t) prefix < size) {
        va_list args;
        va_start (args, format);
        vsnprintf (error + prefix, size - prefix, format, args);
        va_end (args);
    }
    return -1;
}

static const char *
s_type_name (msgpack_object *obj)
{
    switch (obj->type) {
        case MSGPACK_OBJECT_NIL:                return "nil";
        case MSGPACK_OBJECT_BOOLEAN:            return "a boolean";
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
        case MSGPACK_OBJECT_NEGATIVE_INTEGER:   return "an integer";
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64:            return "a float";
        case MSGPACK_OBJECT_STR:                return "a string";
        case MSGPACK_OBJECT_BIN:                return "binary";
        case MSGPACK_OBJECT_ARRAY:              return "an array";
        case MSGPACK_OBJECT_MAP:                return "a map";
        default:                                return "an extension";
    }
}

static int
s_wrong_type (s_walk_t *self, const char *expected, msgpack_object *obj)
{
    return s_field_error (self, "must be %s, got %s", expected, s_type_name (obj));
}


//  --------------------------------------------------------------------------
//  The integer in OBJ if it lies in MIN..MAX, else an error naming TYPE.

static int
s_integer (s_walk_t *self, msgpack_object *obj, int64_t min, int64_t max,
           const char *type, int64_t *value)
{
    if (obj->type == MSGPACK_OBJECT_POSITIVE_INTEGER && obj->via.u64 <= (uint64_t) max)
        *value = (int64_t) obj->via.u64;
    else if (obj->type == MSGPACK_OBJECT_NEGATIVE_INTEGER && obj->via.i64 >= min)
        *value = obj->via.i64;
    else if (obj->type == MSGPACK_OBJECT_POSITIVE_INTEGER
    ||  obj->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        return s_field_error (self, "is out of range for %s", type);
    else
        return s_wrong_type (self, "an integer", obj);
    return 0;
}


//  --------------------------------------------------------------------------
//  OBJ re-packed into the zone, for z%.

static int
s_repack (s_walk_t *self, msgpack_object *obj, const void **data, size_t *size)
{
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer packer;
    msgpack_packer_init (&packer, &buffer, msgpack_sbuffer_write);
    void *copy = NULL;
    if (msgpack_pack_object (&packer, *obj) == 0)
        copy = msgpack_zone_malloc (self->reader->zone, buffer.size);
    if (copy) {
        memcpy (copy, buffer.data, buffer.size);
        *data = copy;
        *size = buffer.size;
    }
    msgpack_sbuffer_destroy (&buffer);
    return copy ? 0 : s_field_error (self, "could not be copied: out of memory");
}


//  --------------------------------------------------------------------------
//  The bytes of a string or binary OBJ. msgpack-c leaves the pointer NULL
//  when there are none, which memcpy and memcmp may not be given even with
//  a zero length, and callers would not expect.

static const char *
s_bytes (msgpack_object *obj)
{
    const char *bytes = obj->type == MSGPACK_OBJECT_BIN ? obj->via.bin.ptr
                                                         : obj->via.str.ptr;
    return bytes ? bytes : "";
}


//  --------------------------------------------------------------------------
//  A NUL-terminated copy of the string OBJ in the zone: msgpack strings are
//  not terminated.

static int
s_copy_string (s_walk_t *self, msgpack_object *obj, const char **value)
{
    char *copy = (char *) msgpack_zone_malloc (self->reader->zone, obj->via.str.size + 1);
    if (!copy)
        return s_field_error (self, "could not be copied: out of memory");
    memcpy (copy, s_bytes (obj), obj->via.str.size);
    copy [obj->via.str.size] = 0;
    *value = copy;
    return 0;
}


//  --------------------------------------------------------------------------
//  Separators carry no meaning; they only make formats readable.

static void
s_skip (s_walk_t *self)
{
    while (*self->cursor && strchr (" \t\n,:", *self->cursor))
        self->cursor++;
}


//  --------------------------------------------------------------------------
//  Reads the array whose '[' the cursor has passed. OBJ NULL means an
//  optional field is absent: the format is walked only to take its
//  arguments.

static int
s_read_array (s_walk_t *self, msgpack_object *obj, int depth)
{
    if (obj && obj->type != MSGPACK_OBJECT_ARRAY)
        return s_wrong_type (self, "an array", obj);
    size_t path_size = strlen (self->path);
    for (uint32_t index = 0; ; index++) {
        s_skip (self);
        if (*self->cursor == ']')
            break;
        if (*self->cursor == 0 || *self->cursor == '}')
            return s_bad_format (self, "missing ']'");
        snprintf (self->path + path_size, sizeof self->path - path_size,
                  "[%" PRIu32 "]", index);
        msgpack_object *item = NULL;
        if (obj) {
            if (index >= obj->via.array.size)
                return s_field_error (self, "is missing");
            item = obj->via.array.ptr + index;
        }
        if (s_read_value (self, item, depth))
            return -1;
        self->path [path_size] = 0;
    }
    self->cursor++;
    return 0;
}


//  --------------------------------------------------------------------------
//  Reads the map whose '{' the cursor has passed; OBJ NULL as above. Keys are
//  looked up by scanning, and the last of duplicate keys wins, as it does
//  when other languages load the map into a dictionary.

static int
s_read_map (s_walk_t *self, msgpack_object *obj, int depth)
{
    if (obj && obj->type != MSGPACK_OBJECT_MAP)
        return s_wrong_type (self, "a map", obj);
    size_t path_size = strlen (self->path);
    while (true) {
        s_skip (self);
        if (*self->cursor == '}')
            break;
        if (*self->cursor == 0 || *self->cursor == ']')
            return s_bad_format (self, "missing '}'");
        if (*self->cursor != 's')
            return s_bad_format (self, "a map key must be 's'");
        bool optional = *++self->cursor == '?';
        if (optional)
            self->cursor++;
        const char *key = va_arg (self->args, const char *);
        if (!key)
            return s_bad_format (self, "NULL key");
        snprintf (self->path + path_size, sizeof self->path - path_size,
                  path_size ? ".%s" : "%s", key);

        msgpack_object *value = NULL;
        size_t key_size = strlen (key);
        for (uint32_t index = 0; obj && index < obj->via.map.size; index++) {
            msgpack_object *candidate = &obj->via.map.ptr [index].key;
            if (candidate->type == MSGPACK_OBJECT_STR
            &&  candidate->via.str.size == key_size
            &&  memcmp (s_bytes (candidate), key, key_size) == 0)
                value = &obj->via.map.ptr [index].val;
        }
        if (obj && !value && !optional)
            return s_field_error (self, "is missing");
        if (optional && value && value->type == MSGPACK_OBJECT_NIL)
            value = NULL;
        if (s_read_value (self, value, depth))
            return -1;
        self->path [path_size] = 0;
    }
    self->cursor++;
    return 0;
}


//  --------------------------------------------------------------------------
//  Reads one value of the format into the caller's variables. With OBJ NULL
//  it only takes the arguments, leaving the variables untouched.

static int
s_read_value (s_walk_t *self, msgpack_object *obj, int depth)
{
    s_skip (self);
    char type = *self->cursor;
    if (type == 0)
        return s_bad_format (self, "missing a value");
    if (!strchr ("nbiIfsxz[{", type))
        return s_bad_format (self, "unknown type");
    self->cursor++;
    if (type == '[' || type == '{') {
        if (depth == S_MAX_DEPTH)
            return s_bad_format (self, "nested too deep");
        return type == '[' ? s_read_array (self, obj, depth + 1)
                           : s_read_map (self, obj, depth + 1);
    }
    bool sized = *self->cursor == '%';
    if (sized && !strchr ("sxz", type))
        return s_bad_format (self, "'%' after a type that has no length");
    if (!sized && (type == 'x' || type == 'z'))
        return s_bad_format (self, "missing '%'");
    if (sized)
        self->cursor++;

    //  Each case takes its arguments before it looks at OBJ
    switch (type) {
        case 'n':
            if (obj && obj->type != MSGPACK_OBJECT_NIL)
                return s_wrong_type (self, "nil", obj);
            return 0;
        case 'b': {
            int *value = va_arg (self->args, int *);
            if (obj && obj->type != MSGPACK_OBJECT_BOOLEAN)
                return s_wrong_type (self, "a boolean", obj);
            if (obj)
                *value = obj->via.boolean;
            return 0;
        }
        case 'i': {
            int *value = va_arg (self->args, int *);
            int64_t number;
            if (obj && s_integer (self, obj, INT_MIN, INT_MAX, "int", &number))
                return -1;
            if (obj)
                *value = (int) number;
            return 0;
        }
        case 'I': {
            int64_t *value = va_arg (self->args, int64_t *);
            if (obj)
                return s_integer (self, obj, INT64_MIN, INT64_MAX, "int64_t", value);
            return 0;
        }
        case 'f': {
            double *value = va_arg (self->args, double *);
            if (!obj)
                return 0;
            if (obj->type == MSGPACK_OBJECT_FLOAT32
            ||  obj->type == MSGPACK_OBJECT_FLOAT64)
                *value = obj->via.f64;
            else if (obj->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
                *value = (double) obj->via.u64;
            else if (obj->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
                *value = (double) obj->via.i64;
            else
                return s_wrong_type (self, "a number", obj);
            return 0;
        }
        case 's': {
            const char **value = va_arg (self->args, const char **);
            size_t *size = sized ? va_arg (self->args, size_t *) : NULL;
            if (obj && obj->type != MSGPACK_OBJECT_STR)
                return s_wrong_type (self, "a string", obj);
            if (obj && size) {
                *value = s_bytes (obj);
                *size = obj->via.str.size;
            }
            else if (obj)
                return s_copy_string (self, obj, value);
            return 0;
        }
        case 'x': {
            const void **value = va_arg (self->args, const void **);
            size_t *size = va_arg (self->args, size_t *);
            if (!obj)
                return 0;
            if (obj->type != MSGPACK_OBJECT_BIN && obj->type != MSGPACK_OBJECT_STR)
                return s_wrong_type (self, "binary", obj);
            *value = s_bytes (obj);
            *size = obj->type == MSGPACK_OBJECT_BIN ? obj->via.bin.size
                                                     : obj->via.str.size;
            return 0;
        }
        default: {
            const void **value = va_arg (self->args, const void **);
            size_t *size = va_arg (self->args, size_t *);
            return obj ? s_repack (self, obj, value, size) : 0;
        }
    }
}


//  --------------------------------------------------------------------------
//  Reads values per FORMAT. Returns 0, or -1 with the reason in the error.

int
shoal_reader_get (shoal_reader_t *self, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    int rc = shoal_reader_vget (self, format, args);
    va_end (args);
    return rc;
}

//  --------------------------------------------------------------------------
//  Walks FORMAT over ROOT, or with ROOT NULL only over the format and its
//  arguments.

static int
s_walk (shoal_reader_t *self, const char *format, va_list args, msgpack_object *root)
{
    s_walk_t walk = { .reader = self, .format = format, .cursor = format };
    va_copy (walk.args, args);
    int rc = s_read_value (&walk, root, 0);
    s_skip (&walk);
    if (rc == 0 && *walk.cursor)
        rc = s_bad_format (&walk, "text after the value");
    va_end (walk.args);
    return rc;
}

int
shoal_reader_vget (shoal_reader_t *self, const char *format, va_list args)
{
    assert (self);
    assert (format);
    *self->error = 0;
    //  A dry walk first, so that a malformed format is reported as such
    //  whatever the body holds
    if (s_walk (self, format, args, NULL)
    ||  s_unpack (self)
    ||  s_walk (self, format, args, &self->root))
        return -1;
    return 0;
}

//  --------------------------------------------------------------------------
//  Selftest

//  Asserts that the check refuses DATA/SIZE with the message EXPECTED
static void
s_assert_refused (const void *data, size_t size, const char *expected)
{
    char error [256];
    assert (shoal_reader_check (data, size, SHOAL_DEFAULT_MAX_DEPTH,
                                error, sizeof error) == -1);
    assert (streq (error, expected));
    //  And so does the reader, before it unpacks anything
    shoal_reader_t *reader = shoal_reader_new (data, size);
    assert (shoal_reader_get (reader, "n") == -1);
    assert (streq (shoal_reader_error (reader), expected));
    shoal_reader_destroy (&reader);
}

//  Asserts that reading BODY with FORMAT fails with the message EXPECTED
static void
s_assert_get_fails (shoal_body_t *body, const char *expected, const char *format, ...)
{
    shoal_reader_t *reader = shoal_reader_new (shoal_body_data (body),
                                               shoal_body_size (body));
    va_list args;
    va_start (args, format);
    assert (shoal_reader_vget (reader, format, args) == -1);
    va_end (args);
    assert (streq (shoal_reader_error (reader), expected));
    shoal_reader_destroy (&reader);
}

void
shoal_reader_test (bool verbose)
{
    if (verbose)
        printf (" * shoal_reader: ");

    //  @selftest
    //  Reading an order: required and optional fields, nested values
    shoal_body_t *body = shoal_body_pack (
        "{s:s, s:i, s:n, s:{s:s, s:b}, s:[i, f, s%], s:x%, s:I, s:f}",
        "sku", "A-1", "qty", 2, "note", "user", "name", "ann", "vip", true,
        "items", 7, 2.5, "ab", (size_t) 2, "blob", "\x00\xff", (size_t) 2,
        "big", INT64_MAX, "ratio", 0.25);
    shoal_reader_t *reader = shoal_reader_new (shoal_body_data (body),
                                               shoal_body_size (body));
    const char *sku, *name, *label;
    size_t label_size, blob_size;
    const void *blob;
    int qty, vip, first;
    int color = 42;
    double second, ratio;
    int64_t big;
    int rc = shoal_reader_get (reader, "{s:s, s:i, s?s, s?i, s:{s:s, s:b}}",
                               "sku", &sku, "qty", &qty, "note", &label, "color", &color,
                               "user", "name", &name, "vip", &vip);
    assert (rc == 0);
    assert (streq (shoal_reader_error (reader), ""));
    assert (streq (sku, "A-1") && qty == 2);
    assert (color == 42);           //  Absent: untouched
    assert (streq (name, "ann") && vip == 1);

    //  The body is unpacked once; each get walks it again
    rc = shoal_reader_get (reader, "{s:[i, f, s%], s:x%, s:I, s:f}",
                           "items", &first, &second, &label, &label_size,
                           "blob", &blob, &blob_size, "big", &big, "ratio", &ratio);
    assert (rc == 0);
    assert (first == 7 && second == 2.5);
    assert (label_size == 2 && memcmp (label, "ab", 2) == 0);
    assert (blob_size == 2 && memcmp (blob, "\x00\xff", 2) == 0);
    assert (big == INT64_MAX && ratio == 0.25);

    //  f takes integers too; x% takes strings; z% hands back a sub-value
    const void *user;
    size_t user_size;
    rc = shoal_reader_get (reader, "{s:f, s:x%, s:z%}", "qty", &ratio,
                           "sku", &blob, &blob_size, "user", &user, &user_size);
    assert (rc == 0);
    assert (ratio == 2.0 && blob_size == 3);
    shoal_reader_t *inner = shoal_reader_new (user, user_size);
    assert (shoal_reader_get (inner, "{s:s}", "name", &name) == 0);
    assert (streq (name, "ann"));
    shoal_reader_destroy (&inner);
    shoal_reader_destroy (&reader);

    //  Errors name the field and say what was wrong with it
    s_assert_get_fails (body, "field 'qty2' is missing", "{s:i}", "qty2", &qty);
    s_assert_get_fails (body, "field 'sku' must be an integer, got a string",
                        "{s:i}", "sku", &qty);
    s_assert_get_fails (body, "field 'note' must be a string, got nil",
                        "{s:s}", "note", &name);
    s_assert_get_fails (body, "field 'user.vip' must be a string, got a boolean",
                        "{s:{s:s}}", "user", "vip", &name);
    s_assert_get_fails (body, "field 'user.vip' must be an integer, got a boolean",
                        "{s:{s?i}}", "user", "vip", &qty);
    s_assert_get_fails (body, "field 'items[2]' must be a number, got a string",
                        "{s:[i, f, f]}", "items", &first, &second, &ratio);
    s_assert_get_fails (body, "field 'items[3]' is missing",
                        "{s:[i, f, s, i]}", "items", &first, &second, &name, &qty);
    s_assert_get_fails (body, "field 'items[0]' must be a boolean, got an integer",
                        "{s:[b]}", "items", &vip);
    s_assert_get_fails (body, "field 'big' is out of range for int",
                        "{s:i}", "big", &qty);
    s_assert_get_fails (body, "field 'ratio' must be an integer, got a float",
                        "{s:I}", "ratio", &big);
    s_assert_get_fails (body, "field 'blob' must be a string, got binary",
                        "{s:s}", "blob", &name);
    s_assert_get_fails (body, "body must be an array, got a map", "[i]", &qty);
    shoal_body_destroy (&body);

    //  An optional map that is absent takes its arguments all the same
    body = shoal_body_pack ("{s:n, s:i}", "opts", "qty", 5);
    reader = shoal_reader_new (shoal_body_data (body), shoal_body_size (body));
    vip = 7;
    rc = shoal_reader_get (reader, "{s?{s:b, s:[i]}, s:i}",
                           "opts", "vip", &vip, "x", &first, "qty", &qty);
    assert (rc == 0 && qty == 5 && vip == 7);
    shoal_reader_destroy (&reader);
    shoal_body_destroy (&body);

    //  Integers are range-checked against the variable they go into
    body = shoal_body_pack ("[I, I, I, I]", (int64_t) INT_MAX + 1, (int64_t) INT_MIN,
                            (int64_t) INT_MIN - 1, INT64_MIN);
    s_assert_get_fails (body, "field '[0]' is out of range for int", "[i]", &qty);
    s_assert_get_fails (body, "field '[2]' is out of range for int",
                        "[I, i, i]", &big, &qty, &first);
    reader = shoal_reader_new (shoal_body_data (body), shoal_body_size (body));
    assert (shoal_reader_get (reader, "[I, i, I, I]", &big, &qty, &big, &big) == 0);
    assert (qty == INT_MIN && big == INT64_MIN);
    shoal_reader_destroy (&reader);
    shoal_body_destroy (&body);
    const char uint64_max [] = "\xcf\xff\xff\xff\xff\xff\xff\xff\xff";
    reader = shoal_reader_new (uint64_max, 9);
    assert (shoal_reader_get (reader, "I", &big) == -1);
    assert (streq (shoal_reader_error (reader), "body is out of range for int64_t"));
    assert (shoal_reader_get (reader, "f", &ratio) == 0);
    assert (ratio == 18446744073709551615.0);
    shoal_reader_destroy (&reader);

    //  Empty strings and binary come back as "", never NULL
    reader = shoal_reader_new ("\x92\xa0\xc4\x00", 4);
    rc = shoal_reader_get (reader, "[s, x%]", &name, &blob, &blob_size);
    assert (rc == 0 && streq (name, "") && blob && blob_size == 0);
    rc = shoal_reader_get (reader, "[s%]", &label, &label_size);
    assert (rc == 0 && label && label_size == 0);
    shoal_reader_destroy (&reader);

    //  Empty data reads as nil
    reader = shoal_reader_new (NULL, 0);
    assert (shoal_reader_get (reader, "n") == 0);
    assert (shoal_reader_get (reader, "{s:i}", "qty", &qty) == -1);
    assert (streq (shoal_reader_error (reader), "body must be a map, got nil"));

    //  A malformed format is an error, not an abort
    const char *bad [] = { "", "q", "i i", "{s:i", "[i", "{i:i}", "i%", "x", "{s:[}]" };
    for (size_t index = 0; index < sizeof bad / sizeof *bad; index++) {
        assert (shoal_reader_get (reader, bad [index], "a", &qty, &qty) == -1);
        assert (strncmp (shoal_reader_error (reader), "bad format: ", 12) == 0);
    }
    shoal_reader_destroy (&reader);

    //  The check: exactly one well-formed value, every count within the
    //  bytes that follow it
    assert (shoal_reader_check ("\xc0", 1, 1, NULL, 0) == 0);
    assert (shoal_reader_check ("\x82\xa1" "a" "\x90\xa1" "b" "\xc4\x00", 8, 2,
                                NULL, 0) == 0);
    assert (shoal_reader_check ("\x92\xd4\x01\x02\xc7\x01\x05" "x", 8, 1, NULL, 0) == 0);
    assert (shoal_reader_check ("\x91\x91\xc0", 3, 1, NULL, 0) == -1);

    //  Empty data holds no value, though a reader reads it as nil
    char error [64];
    assert (shoal_reader_check ("", 0, 1, error, sizeof error) == -1);
    assert (streq (error, "truncated at byte 0"));

    //  The hostile bodies of PITFALLS.md are refused without unpacking
    s_assert_refused ("\xdd\x01\x00\x00\x00", 5,
                      "array of 16777216 elements at byte 0 exceeds the 0 bytes left");
    s_assert_refused ("\xdd\xff\xff\xff\xff\x01\x02\x03\x04", 9,
                      "array of 4294967295 elements at byte 0 exceeds the 4 bytes left");
    s_assert_refused ("\x92\x01\xdf\x00\x00\x00\x02\xc0\xc0\xc0", 10,
                      "map of 2 entries at byte 2 exceeds the 3 bytes left");
    s_assert_refused ("\xdb\xff\xff\xff\xff" "abc", 8,
                      "string of 4294967295 bytes at byte 0 exceeds the 3 bytes left");
    s_assert_refused ("\x91\xc5\x01\x00\x00\x00", 6,
                      "binary of 256 bytes at byte 1 exceeds the 2 bytes left");
    s_assert_refused ("\xc9\x00\x00\x00\x09\x01", 6,
                      "extension of 9 bytes at byte 0 exceeds the 0 bytes left");
    s_assert_refused ("\x92\xc1\xc0", 3, "reserved byte 0xc1 at byte 1");
    s_assert_refused ("\xc0\x01\x02", 3, "2 trailing bytes at byte 1");
    s_assert_refused ("\x92\x91\x01", 3, "truncated at byte 3");
    s_assert_refused ("\x92\xcd\x01", 3, "truncated at byte 1");
    s_assert_refused ("\x91\xcb\x00\x00", 4, "truncated at byte 1");
    s_assert_refused ("\xda\x00", 2, "truncated at byte 0");
    char nested [160];
    for (int index = 0; index < 32; index++)
        memcpy (nested + index * 5, "\xdd\x01\x00\x00\x00", 5);
    s_assert_refused (nested, 160,
                      "array of 16777216 elements at byte 0 exceeds the 155 bytes left");
    memset (nested, 0x91, 32);
    nested [32] = 0x01;
    s_assert_refused (nested, 33, "nested deeper than 16 at byte 16");

    //  The limit is the reader's to set, up to the 31 msgpack-c can unpack
    reader = shoal_reader_new (nested, 32);
    shoal_reader_set_max_depth (reader, 31);
    assert (shoal_reader_get (reader, "n") == -1);
    assert (streq (shoal_reader_error (reader), "nested deeper than 31 at byte 31"));
    shoal_reader_destroy (&reader);
    nested [31] = 0x01;
    reader = shoal_reader_new (nested, 32);
    assert (shoal_reader_get (reader, "z%", &user, &user_size) == -1);
    shoal_reader_set_max_depth (reader, 31);
    assert (shoal_reader_get (reader, "z%", &user, &user_size) == 0);
    assert (user_size == 32 && memcmp (user, nested, 32) == 0);
    shoal_reader_set_max_depth (reader, 2);
    assert (shoal_reader_get (reader, "[n]") == -1);
    assert (streq (shoal_reader_error (reader), "nested deeper than 2 at byte 2"));
    shoal_reader_destroy (&reader);
    //  @end

    if (verbose)
        printf ("OK\n");
}
