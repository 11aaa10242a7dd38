/*  shoal_body - builds msgpack bodies from C in one line.

        shoal_body_t *body = shoal_body_pack ("{s:s, s:i, s:[i,i]}",
                                              "sku", "A-1", "qty", 2, "dims", 3, 4);

    The format is modelled on jansson's json_pack:
        n         nil                      (no argument)
        b         boolean                  (int)
        i         integer                  (int)
        I         integer                  (int64_t)
        f         float                    (double)
        s         string                   (const char *, NULL packs nil)
        s%        string with length       (const char *, size_t)
        x%        binary                   (const void *, size_t)
        z%        raw msgpack, inserted as one value (const void *, size_t)
        [ ... ]   array of the values inside
        { ... }   map: keys are `s` or `s%`, each followed by `:` and a value
    Spaces, commas and colons between items are ignored.                      */
#ifndef SHOAL_BODY_H_INCLUDED
#define SHOAL_BODY_H_INCLUDED

#include <stdarg.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _shoal_body_t shoal_body_t;

//  A body packed from FORMAT. Returns NULL if the format is malformed (a
//  programmer's mistake, logged). The caller destroys the body.
SHOAL_EXPORT shoal_body_t *
    shoal_body_pack (const char *format, ...);

//  Same, with a va_list.
SHOAL_EXPORT shoal_body_t *
    shoal_body_vpack (const char *format, va_list args);

//  A body converted from JSON text. On bad JSON returns NULL and, if ERROR is
//  not NULL, writes a message naming the line and column into it.
SHOAL_EXPORT shoal_body_t *
    shoal_body_from_json (const char *json, char *error, size_t error_size);

//  The JSON text of the msgpack value in DATA/SIZE (empty data reads as null).
//  Binary values become base64 strings, non-string map keys their JSON text.
//  Returns a fresh string the caller frees, or NULL if DATA is not one valid
//  msgpack value, or if non-string map keys would need more than 8 times
//  the body's size as JSON text (writing why into ERROR when given).
SHOAL_EXPORT char *
    shoal_body_to_json (const void *data, size_t size, char *error, size_t error_size);

//  The packed bytes and their length; borrowed, valid until the body dies.
SHOAL_EXPORT const void *
    shoal_body_data (shoal_body_t *self);
SHOAL_EXPORT size_t
    shoal_body_size (shoal_body_t *self);

//  Destroys the body and nulls the caller's pointer; safe on NULL.
SHOAL_EXPORT void
    shoal_body_destroy (shoal_body_t **self_p);

SHOAL_EXPORT void
    shoal_body_test (bool verbose);

#ifdef __cplusplus
}
#endif
#endif
