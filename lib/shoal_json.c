/*  shoal_json - shoal_body's conversions between msgpack and JSON text, for
    tools and for people (its selftest is part of shoal_body_test).

    msgpack says more than JSON can, so the way out is lossy where it must
    be: binary becomes base64, map keys that are not strings become their
    JSON text, NaN and infinities become null, integers above INT64_MAX
    become reals, and bytes of a string that are not UTF-8 become U+FFFD.    */

#include "shoal_private.h"
#include <jansson.h>
#include <math.h>

//  msgpack-c unpacks at most 32 nested containers; we stop one short of it
#define S_MAX_DEPTH SHOAL_MSGPACK_MAX_DEPTH



//  --------------------------------------------------------------------------
//  JSON to msgpack. DEPTH containers are open around JSON.

static int
s_pack_string (msgpack_packer *packer, const char *string, size_t length,
               char *error, size_t error_size)
{
    if (msgpack_pack_str (packer, length)
    ||  msgpack_pack_str_body (packer, string, length))
        return shoal_error_message (error, error_size, "out of memory");
    return 0;
}

static int
s_pack_json (msgpack_packer *packer, json_t *json, int depth,
             char *error, size_t error_size)
{
    if ((json_is_object (json) || json_is_array (json)) && depth == S_MAX_DEPTH)
        return shoal_error_message (error, error_size, "nested deeper than %d", S_MAX_DEPTH);
    int rc = 0;
    switch (json_typeof (json)) {
        case JSON_OBJECT: {
            const char *key;
            size_t key_length;
            json_t *value;
            if (msgpack_pack_map (packer, json_object_size (json)))
                return shoal_error_message (error, error_size, "out of memory");
            json_object_keylen_foreach (json, key, key_length, value) {
                if (s_pack_string (packer, key, key_length, error, error_size)
                ||  s_pack_json (packer, value, depth + 1, error, error_size))
                    return -1;
            }
            return 0;
        }
        case JSON_ARRAY: {
            size_t index;
            json_t *value;
            if (msgpack_pack_array (packer, json_array_size (json)))
                return shoal_error_message (error, error_size, "out of memory");
            json_array_foreach (json, index, value) {
                if (s_pack_json (packer, value, depth + 1, error, error_size))
                    return -1;
            }
            return 0;
        }
        case JSON_STRING:
            return s_pack_string (packer, json_string_value (json),
                                  json_string_length (json), error, error_size);
        case JSON_INTEGER:
            rc = msgpack_pack_int64 (packer, json_integer_value (json));
            break;
        case JSON_REAL:
            rc = msgpack_pack_double (packer, json_real_value (json));
            break;
        case JSON_TRUE:
            rc = msgpack_pack_true (packer);
            break;
        case JSON_FALSE:
            rc = msgpack_pack_false (packer);
            break;
        case JSON_NULL:
            rc = msgpack_pack_nil (packer);
            break;
    }
    return rc ? shoal_error_message (error, error_size, "out of memory") : 0;
}


//  --------------------------------------------------------------------------
//  A body converted from JSON text, or NULL with the reason in ERROR.

shoal_body_t *
shoal_body_from_json (const char *json, char *error, size_t error_size)
{
    assert (json);
    json_error_t parse_error;
    json_t *root = json_loads (json, JSON_DECODE_ANY | JSON_ALLOW_NUL, &parse_error);
    if (!root) {
        shoal_error_message (error, error_size, "line %d column %d: %s",
                 parse_error.line, parse_error.column, parse_error.text);
        return NULL;
    }
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer packer;
    msgpack_packer_init (&packer, &buffer, msgpack_sbuffer_write);
    shoal_body_t *body = NULL;
    //  The body's own buffer is private to shoal_body.c: z% copies into it
    if (s_pack_json (&packer, root, 0, error, error_size) == 0
    &&  !(body = shoal_body_pack ("z%", buffer.data, buffer.size)))
        shoal_error_message (error, error_size, "out of memory");
    msgpack_sbuffer_destroy (&buffer);
    json_decref (root);
    return body;
}


//  --------------------------------------------------------------------------
//  Length of the UTF-8 sequence at BYTES (LEFT > 0 of them), or 0 if it is
//  not valid: the same rules as jansson's, so that what passes here passes
//  json_stringn.

static size_t
s_utf8_length (const uint8_t *bytes, size_t left)
{
    size_t length;
    uint32_t code, least;
    if (bytes [0] < 0x80)
        return 1;
    if (bytes [0] >= 0xc2 && bytes [0] <= 0xdf) {
        length = 2;
        code = bytes [0] & 0x1f;
        least = 0x80;
    }
    else if (bytes [0] >= 0xe0 && bytes [0] <= 0xef) {
        length = 3;
        code = bytes [0] & 0x0f;
        least = 0x800;
    }
    else if (bytes [0] >= 0xf0 && bytes [0] <= 0xf4) {
        length = 4;
        code = bytes [0] & 0x07;
        least = 0x10000;
    }
    else
        return 0;
    if (length > left)
        return 0;
    for (size_t index = 1; index < length; index++) {
        if ((bytes [index] & 0xc0) != 0x80)
            return 0;
        code = code << 6 | (bytes [index] & 0x3f);
    }
    if (code < least || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff))
        return 0;
    return length;
}


//  --------------------------------------------------------------------------
//  A JSON string of the msgpack string DATA/SIZE. JSON text is UTF-8, and
//  msgpack strings from the network need not be: each stray byte becomes
//  U+FFFD rather than failing the whole conversion.

static json_t *
s_string (const char *data, size_t size)
{
    //  msgpack-c leaves the pointer NULL for an empty string
    json_t *string = json_stringn (data ? data : "", size);
    if (string)
        return string;
    char *text = (char *) malloc (size * 3);
    if (!text)
        return NULL;
    char *end = text;
    for (size_t at = 0; at < size;) {
        size_t length = s_utf8_length ((const uint8_t *) data + at, size - at);
        if (length)
            memcpy (end, data + at, length);
        else
            memcpy (end, "\xef\xbf\xbd", 3);
        end += length ? length : 3;
        at += length ? length : 1;
    }
    string = json_stringn (text, end - text);
    free (text);
    return string;
}


//  --------------------------------------------------------------------------
//  A JSON string of DATA/SIZE in base64 (RFC 4648, padded).

static json_t *
s_base64 (const char *data, size_t size)
{
    static const char alphabet [] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const uint8_t *bytes = (const uint8_t *) data;
    char *text = (char *) malloc ((size + 2) / 3 * 4 + 1);
    if (!text)
        return NULL;
    char *end = text;
    for (size_t at = 0; at < size; at += 3) {
        uint32_t group = (uint32_t) bytes [at] << 16
                       | (at + 1 < size ? bytes [at + 1] << 8 : 0)
                       | (at + 2 < size ? bytes [at + 2] : 0);
        *end++ = alphabet [group >> 18];
        *end++ = alphabet [group >> 12 & 63];
        *end++ = at + 1 < size ? alphabet [group >> 6 & 63] : '=';
        *end++ = at + 2 < size ? alphabet [group & 63] : '=';
    }
    json_t *string = json_stringn_nocheck (text, end - text);
    free (text);
    return string;
}


//  --------------------------------------------------------------------------
//  msgpack to JSON. The recursion is as deep as the value, which
//  shoal_reader_check has bounded. A key's JSON text is escaped again by
//  every key it is nested in, doubling at each level, so 300 bytes of maps
//  keyed by maps could ask for gigabytes: such texts draw on BUDGET, and
//  when it runs out the conversion fails with BUDGET 0. Returns NULL on
//  failure.

static json_t *
s_to_json (msgpack_object *obj, size_t *budget)
{
    switch (obj->type) {
        case MSGPACK_OBJECT_NIL:
            return json_null ();
        case MSGPACK_OBJECT_BOOLEAN:
            return json_boolean (obj->via.boolean);
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
            return obj->via.u64 <= INT64_MAX ? json_integer ((json_int_t) obj->via.u64)
                                             : json_real ((double) obj->via.u64);
        case MSGPACK_OBJECT_NEGATIVE_INTEGER:
            return json_integer (obj->via.i64);
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64:
            return isfinite (obj->via.f64) ? json_real (obj->via.f64) : json_null ();
        case MSGPACK_OBJECT_STR:
            return s_string (obj->via.str.ptr, obj->via.str.size);
        case MSGPACK_OBJECT_BIN:
            return s_base64 (obj->via.bin.ptr, obj->via.bin.size);
        case MSGPACK_OBJECT_EXT:
            return json_pack ("{s:i, s:o}", "type", obj->via.ext.type,
                              "data", s_base64 (obj->via.ext.ptr, obj->via.ext.size));
        case MSGPACK_OBJECT_ARRAY: {
            json_t *array = json_array ();
            for (uint32_t index = 0; index < obj->via.array.size; index++) {
                //  Appending NULL, or to NULL, fails and frees what it was given
                json_t *item = s_to_json (obj->via.array.ptr + index, budget);
                if (json_array_append_new (array, item)) {
                    json_decref (array);
                    return NULL;
                }
            }
            return array;
        }
        default: {
            json_t *object = json_object ();
            for (uint32_t index = 0; index < obj->via.map.size; index++) {
                msgpack_object_kv *entry = obj->via.map.ptr + index;
                json_t *key = s_to_json (&entry->key, budget);
                const char *name = json_string_value (key);
                size_t length = json_string_length (key);
                char *text = NULL;
                if (key && !name) {
                    //  A JSON key is a string: any other key becomes its JSON text
                    text = json_dumps (key, JSON_COMPACT | JSON_ENCODE_ANY);
                    length = text ? strlen (text) : 0;
                    if (length < *budget)
                        *budget -= length;
                    else
                        *budget = 0;
                    name = *budget ? text : NULL;
                }
                int rc = name ? json_object_setn_new (object, name, length,
                                                     s_to_json (&entry->val, budget))
                              : -1;
                free (text);
                json_decref (key);
                if (rc) {
                    json_decref (object);
                    return NULL;
                }
            }
            return object;
        }
    }
}


//  --------------------------------------------------------------------------
//  The JSON text of the msgpack value in DATA/SIZE; the caller frees it.

char *
shoal_body_to_json (const void *data, size_t size, char *error, size_t error_size)
{
    if (size == 0)
        return strdup ("null");
    if (shoal_reader_check (data, size, S_MAX_DEPTH, error, error_size))
        return NULL;
    msgpack_zone zone;
    if (!msgpack_zone_init (&zone, MSGPACK_ZONE_CHUNK_SIZE)) {
        shoal_error_message (error, error_size, "out of memory");
        return NULL;
    }
    char *text = NULL;
    msgpack_object root;
    size_t offset = 0;
    //  Generous: a one-byte nil key takes four bytes as "null"
    size_t budget = 8 * size + 64;
    if (msgpack_unpack ((const char *) data, size, &offset, &zone, &root)
        == MSGPACK_UNPACK_SUCCESS) {
        json_t *json = s_to_json (&root, &budget);
        if (json)
            text = json_dumps (json, JSON_COMPACT | JSON_ENCODE_ANY);
        json_decref (json);
    }
    msgpack_zone_destroy (&zone);
    if (!text)
        shoal_error_message (error, error_size,
                 budget ? "out of memory" : "map keys too long for JSON");
    return text;
}
