/*  shoal_topic - event topics and patterns: validation, matching, and the
    ZeroMQ subscription prefix of a pattern (rules in include/shoal_event.h).
    Pure functions: no allocation, every input bounded, so topics and
    patterns read from the network are handled in place.                     */
#ifndef SHOAL_TOPIC_H_INCLUDED
#define SHOAL_TOPIC_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

//  The same checks on a string that is NOT terminated (network data)
bool
    shoal_topic_valid_size (const char *topic, size_t size);
bool
    shoal_pattern_match_size (const char *pattern, const char *topic, size_t size);

//  Matching when PATTERN and TOPIC are both known to be valid already (a
//  subscriber's own patterns, a topic its decoder checked): no checks again
bool
    shoal_pattern_match_valid (const char *pattern, size_t pattern_size, const char *topic,
                               size_t topic_size);

//  The ZeroMQ subscription prefix for PATTERN, written into PREFIX (SIZE bytes
//  available, >= SHOAL_MAX_TOPIC + 2), returning its length in bytes. Event
//  frames on the wire start with the topic then a 0 byte, so:
//    - a pattern with no wildcard: the topic followed by one '\0' byte
//      (length = strlen + 1), so "order" does not receive "orders";
//    - otherwise the literal segments before the first wildcard: followed by
//      '.' if that wildcard is "*" ("order.*" -> "order."), without the dot
//      if it is "**" ("order.**" -> "order", because ** may match zero
//      segments); a pattern starting with a wildcard -> "" (length 0).
//  The subscriber still matches every event fully: the prefix only lets
//  ZeroMQ filter at the publisher. PREFIX is also a terminated string. An
//  invalid PATTERN gives "" (callers validate patterns first).
size_t
    shoal_pattern_prefix (const char *pattern, char *prefix, size_t size);

void
    shoal_topic_test (bool verbose);

#endif
