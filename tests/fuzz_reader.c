/*  fuzz_reader - libFuzzer target for the values layer: whatever bytes a
    peer sends, shoal_reader_check, shoal_reader_get and shoal_body_to_json
    must neither crash nor allocate for counts the bytes cannot hold.

        clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE \
            -Iinclude -Ilib -DSHOAL_BUILD tests/fuzz_reader.c \
            lib/shoal_body.c lib/shoal_json.c lib/shoal_reader.c \
            $(pkg-config --cflags --libs libczmq msgpack jansson) -o fuzz_reader
        ./fuzz_reader -max_total_time=180 -rss_limit_mb=512 -malloc_limit_mb=64

    Beyond not crashing, it asserts that what the check accepts msgpack-c
    unpacks, that what z% hands back passes the check, and that
    shoal_body_from_json reads back what shoal_body_to_json writes, but for
    the two cases noted where it is called.                                  */

#include <msgpack.h>
#include "shoal.h"
#include <assert.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

//  Reads the first and last of SIZE bytes, so that the sanitizer sees a
//  pointer or size that does not hold
static void
s_touch (const void *bytes, size_t size)
{
    if (size) {
        volatile char first = ((const char *) bytes) [0];
        volatile char last = ((const char *) bytes) [size - 1];
        (void) first;
        (void) last;
    }
}

//  Gets that reach every type, optional keys, and nesting
static void
s_read (shoal_reader_t *reader)
{
    int number;
    int64_t number64;
    double real;
    const char *string;
    const void *bytes;
    size_t size;
    shoal_reader_get (reader, "n");
    shoal_reader_get (reader, "b", &number);
    shoal_reader_get (reader, "i", &number);
    shoal_reader_get (reader, "I", &number64);
    shoal_reader_get (reader, "f", &real);
    if (shoal_reader_get (reader, "s", &string) == 0)
        s_touch (string, strlen (string) + 1);
    if (shoal_reader_get (reader, "s%", &string, &size) == 0)
        s_touch (string, size);
    if (shoal_reader_get (reader, "x%", &bytes, &size) == 0)
        s_touch (bytes, size);
    if (shoal_reader_get (reader, "z%", &bytes, &size) == 0)
        assert (shoal_reader_check (bytes, size, 31, NULL, 0) == 0);
    shoal_reader_get (reader, "[i, I, f, s]", &number, &number64, &real, &string);
    shoal_reader_get (reader, "{s:i, s?s, s?[b, f], s?{s:x%}}",
                      "a", &number, "b", &string, "c", &number, &real,
                      "d", "e", &bytes, &size);
    shoal_reader_get (reader, "{s?z%, s?I, s?s%}", "a", &bytes, &size, "b", &number64,
                      "", &string, &size);
    shoal_reader_get (reader, "[[i], {s:s}, z%]", &number, "k", &string, &bytes, &size);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char error [256];
    bool valid = shoal_reader_check (data, size, 31, error, sizeof error) == 0;
    if (valid) {
        msgpack_zone zone;
        msgpack_zone_init (&zone, MSGPACK_ZONE_CHUNK_SIZE);
        msgpack_object root;
        size_t offset = 0;
        int rc = msgpack_unpack ((const char *) data, size, &offset, &zone, &root);
        assert (rc == MSGPACK_UNPACK_SUCCESS && offset == size);
        msgpack_zone_destroy (&zone);
    }
    shoal_reader_t *reader = shoal_reader_new (data, size);
    s_read (reader);
    //  The limit can change between gets of one reader
    shoal_reader_set_max_depth (reader, 31);
    s_read (reader);
    shoal_reader_destroy (&reader);

    //  Empty data is null. Beyond what the check refuses, the one failure
    //  is map keys whose JSON text would grow out of all proportion
    char *json = shoal_body_to_json (data, size, error, sizeof error);
    if (size && !valid)
        assert (!json);
    else if (!json)
        assert (strcmp (error, "map keys too long for JSON") == 0);
    if (json) {
        shoal_body_t *body = shoal_body_from_json (json, error, sizeof error);
        //  Two ways back can fail: an extension becomes a JSON object, one
        //  level deeper; and jansson refuses "\u0000" in an object key
        assert (body
                || strcmp (error, "nested deeper than 31") == 0
                || strstr (error, "NUL byte in object key"));
        shoal_body_destroy (&body);
        free (json);
    }
    return 0;
}
