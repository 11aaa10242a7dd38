/*  shoal_reader - reads typed fields out of a msgpack body, and says which
    field was missing or of the wrong type.

        const char *sku; int qty = 1;
        if (shoal_reader_get (reader, "{s:s, s?i}", "sku", &sku, "qty", &qty))
            puts (shoal_reader_error (reader));   // "field 'sku' is missing"

    The format mirrors shoal_body_pack (and jansson's json_unpack):
        n   nil                       (no argument)
        b   boolean                   (int *)
        i   integer that fits an int  (int *)
        I   integer                   (int64_t *)
        f   number, integer or float  (double *)
        s   string                    (const char **, NUL-terminated)
        s%  string                    (const char **, size_t *)
        x%  binary (or string) bytes  (const void **, size_t *)
        z%  any value, as raw msgpack (const void **, size_t *)
        [ ] array: its first elements, in order
        { } map: `s:` key then a value; `s?` marks a key optional (its
            variable is left untouched when the key is absent or nil)
    Strings and bytes are borrowed: valid while the reader lives.
    The body is checked before it is unpacked: nesting deeper than the limit,
    or any count larger than the bytes that remain, is refused without
    allocating for it.                                                        */
#ifndef SHOAL_READER_H_INCLUDED
#define SHOAL_READER_H_INCLUDED

#include <stdarg.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _shoal_reader_t shoal_reader_t;

//  Default limit on nesting depth of a body (msgpack-c itself stops at 32).
#define SHOAL_DEFAULT_MAX_DEPTH 16

//  A reader over DATA/SIZE, which it borrows: the data must outlive the
//  reader. Empty data reads as nil. Never NULL.
SHOAL_EXPORT shoal_reader_t *
    shoal_reader_new (const void *data, size_t size);

//  Sets the nesting limit used for the next shoal_reader_get (1..31).
SHOAL_EXPORT void
    shoal_reader_set_max_depth (shoal_reader_t *self, int max_depth);

//  Reads values per FORMAT. Returns 0 on success; -1 if the body is not valid
//  msgpack, a field is missing or has the wrong type (see shoal_reader_error).
SHOAL_EXPORT int
    shoal_reader_get (shoal_reader_t *self, const char *format, ...);

SHOAL_EXPORT int
    shoal_reader_vget (shoal_reader_t *self, const char *format, va_list args);

//  Why the last shoal_reader_get failed, e.g. "field 'qty' must be an
//  integer, got a string"; "" after success. Borrowed.
SHOAL_EXPORT const char *
    shoal_reader_error (shoal_reader_t *self);

//  Checks that DATA/SIZE holds exactly one well-formed msgpack value no
//  deeper than MAX_DEPTH, without allocating. Empty data holds no value and
//  is refused here (the protocol reads an empty body as nil before
//  checking). Returns 0 if so, else -1 and,
//  if ERROR is given, why. Used on every body that comes from the network.
SHOAL_EXPORT int
    shoal_reader_check (const void *data, size_t size, int max_depth,
                        char *error, size_t error_size);

//  Checks, as shoal_reader_check does, the one msgpack value at the start of
//  DATA/SIZE, and writes its length to USED: what follows is left to the
//  caller (a shoal message is a header value followed by a body value).
SHOAL_EXPORT int
    shoal_reader_check_prefix (const void *data, size_t size, int max_depth, size_t *used,
                               char *error, size_t error_size);

SHOAL_EXPORT void
    shoal_reader_destroy (shoal_reader_t **self_p);

SHOAL_EXPORT void
    shoal_reader_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
