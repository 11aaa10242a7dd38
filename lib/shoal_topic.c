/*  shoal_topic - event topics and patterns.

    Matching works on whole segments with the classic wildcard algorithm:
    "*" and literals advance both sides, "**" records a single backtrack
    point, and a mismatch lets the last "**" swallow one more topic segment.
    Only the last "**" ever needs retrying (an earlier one can only swallow
    less), so the cost is at most segments squared, whatever the input,
    and nothing recurses or allocates: patterns and topics may come from
    the network.                                                             */
#include "shoal_private.h"

//  Length of STRING, but stops past the longest valid one, so a huge or
//  unterminated-looking string costs no more than a valid one
static size_t
s_bounded_length (const char *string)
{
    size_t size = 0;
    while (size <= SHOAL_MAX_TOPIC && string [size])
        size++;
    return size;
}

static bool
s_valid (const char *string, size_t size, bool pattern)
{
    if (!string || size == 0 || size > SHOAL_MAX_TOPIC)
        return false;
    size_t segments = 1, length = 0, stars = 0;     //  of the current segment
    for (size_t at = 0; at <= size; at++) {
        char c = at < size ? string [at] : '.';
        if (c == '.') {
            //  No empty segment; stars only as a whole "*" or "**" segment
            if (length == 0 || (stars && (!pattern || stars != length || stars > 2)))
                return false;
            if (at < size && ++segments > SHOAL_MAX_SEGMENTS)
                return false;
            length = stars = 0;
            continue;
        }
        if (c == '*')
            stars++;
        else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
              || c == '_' || c == '-'))
            return false;
        length++;
    }
    return true;
}

static size_t
s_segment_end (const char *string, size_t at, size_t size)
{
    while (at < size && string [at] != '.')
        at++;
    return at;
}

//  Start of the segment after the one ending at END (SIZE when none)
static size_t
s_after (size_t end, size_t size)
{
    return end < size ? end + 1 : size;
}

//  Both valid; positions are the starts of segments
static bool
s_match (const char *pattern, size_t pattern_size, const char *topic, size_t topic_size)
{
    size_t p = 0, t = 0;
    bool backtrack = false;
    size_t retry_p = 0, retry_t = 0;    //  just after the last "**", and its topic position
    while (t < topic_size) {
        size_t t_end = s_segment_end (topic, t, topic_size);
        if (p < pattern_size) {
            size_t p_end = s_segment_end (pattern, p, pattern_size);
            size_t p_length = p_end - p;
            if (p_length == 2 && pattern [p] == '*') {
                //  Try "**" as zero segments first; remember where to widen it
                backtrack = true;
                p = retry_p = s_after (p_end, pattern_size);
                retry_t = t;
                continue;
            }
            if ((p_length == 1 && pattern [p] == '*')
            || (p_length == t_end - t && memcmp (pattern + p, topic + t, p_length) == 0)) {
                p = s_after (p_end, pattern_size);
                t = s_after (t_end, topic_size);
                continue;
            }
        }
        if (!backtrack)
            return false;
        retry_t = s_after (s_segment_end (topic, retry_t, topic_size), topic_size);
        p = retry_p;
        t = retry_t;
    }
    //  The topic is used up: what is left of the pattern must be "**"s
    while (p < pattern_size && pattern [p] == '*' && p + 1 < pattern_size
           && pattern [p + 1] == '*')
        p = s_after (p + 2, pattern_size);
    return p >= pattern_size;
}

bool
shoal_pattern_match_valid (const char *pattern, size_t pattern_size, const char *topic,
                           size_t topic_size)
{
    return s_match (pattern, pattern_size, topic, topic_size);
}

bool
shoal_topic_valid (const char *topic)
{
    return topic && s_valid (topic, s_bounded_length (topic), false);
}

bool
shoal_topic_valid_size (const char *topic, size_t size)
{
    return s_valid (topic, size, false);
}

bool
shoal_pattern_valid (const char *pattern)
{
    return pattern && s_valid (pattern, s_bounded_length (pattern), true);
}

bool
shoal_pattern_match (const char *pattern, const char *topic)
{
    return topic && shoal_pattern_match_size (pattern, topic, s_bounded_length (topic));
}

bool
shoal_pattern_match_size (const char *pattern, const char *topic, size_t size)
{
    if (!pattern || !s_valid (topic, size, false))
        return false;
    size_t pattern_size = s_bounded_length (pattern);
    return s_valid (pattern, pattern_size, true)
        && s_match (pattern, pattern_size, topic, size);
}

size_t
shoal_pattern_prefix (const char *pattern, char *prefix, size_t size)
{
    assert (prefix && size >= SHOAL_MAX_TOPIC + 2);
    size_t length = 0;
    if (shoal_pattern_valid (pattern)) {
        size_t pattern_size = strlen (pattern);
        length = pattern_size + 1;      //  no wildcard: the topic and its 0 byte
        for (size_t at = 0; at < pattern_size;
             at = s_after (s_segment_end (pattern, at, pattern_size), pattern_size))
            if (pattern [at] == '*') {
                //  "*" needs one more segment, so the dot belongs; "**" may be none
                length = pattern [at + 1] == '*' ? (at ? at - 1 : 0) : at;
                break;
            }
        memcpy (prefix, pattern, length);
    }
    prefix [length] = '\0';
    return length;
}

//  --------------------------------------------------------------------------
//  Selftest

void
shoal_topic_test (bool verbose)
{
    if (verbose)
        printf (" * shoal_topic: ");
    char longest [SHOAL_MAX_TOPIC + 2];
    memset (longest, 'a', SHOAL_MAX_TOPIC + 1);
    longest [SHOAL_MAX_TOPIC + 1] = '\0';
    assert (!shoal_topic_valid (longest) && !shoal_pattern_valid (longest));
    longest [SHOAL_MAX_TOPIC] = '\0';
    assert (shoal_topic_valid (longest) && shoal_pattern_valid (longest));
    //  "a.a...a": SHOAL_MAX_SEGMENTS + 1 segments, then exactly the limit
    char many [2 * SHOAL_MAX_SEGMENTS + 2] = "a";
    for (int segment = 1; segment <= SHOAL_MAX_SEGMENTS; segment++)
        strcat (many, ".a");
    assert (!shoal_topic_valid (many) && !shoal_pattern_valid (many));
    many [2 * SHOAL_MAX_SEGMENTS - 1] = '\0';
    assert (shoal_topic_valid (many));

    const char *topics [] = { "order", "order.placed", "stock.changed.sku-42", "A_b-9" };
    for (size_t index = 0; index < sizeof (topics) / sizeof (topics [0]); index++)
        assert (shoal_topic_valid (topics [index]) && shoal_pattern_valid (topics [index]));
    const char *bad_topics [] = { "", ".a", "a.", "a..b", "a b", "a/b", "\xc3\xa9", "*", "a.**" };
    for (size_t index = 0; index < sizeof (bad_topics) / sizeof (bad_topics [0]); index++)
        assert (!shoal_topic_valid (bad_topics [index]));
    assert (!shoal_topic_valid (NULL) && !shoal_pattern_valid (NULL));
    const char *patterns [] = { "*", "**", "**.**", "a.*.**", "*.placed", "a.**.z" };
    for (size_t index = 0; index < sizeof (patterns) / sizeof (patterns [0]); index++)
        assert (shoal_pattern_valid (patterns [index]));
    const char *bad_patterns [] = { "", "ord*", "*a", "***", "a.**b", "a..*", "*.", "a.*.$" };
    for (size_t index = 0; index < sizeof (bad_patterns) / sizeof (bad_patterns [0]); index++)
        assert (!shoal_pattern_valid (bad_patterns [index]));

    static const struct { const char *pattern, *topic; bool match; } cases [] = {
        { "order.placed", "order.placed", true }, { "order.placed", "order.placedx", false },
        { "order", "order.placed", false }, { "**", "a", true }, { "**", "a.b.c", true },
        { "order.**", "order", true }, { "order.**", "order.placed", true },
        { "order.**", "order.a.b", true }, { "order.**", "orders", false },
        { "order.*", "order.placed", true }, { "order.*", "order", false },
        { "order.*", "order.a.b", false }, { "*.placed", "order.placed", true },
        { "*.placed", "placed", false }, { "*.placed", "a.b.placed", false },
        { "a.**.z", "a.z", true }, { "a.**.z", "a.b.z", true }, { "a.**.z", "a.b.c.z", true },
        { "a.**.z", "a.b.c", false }, { "a.**.z", "z", false }, { "**.**", "a", true },
        { "**.**.z", "z", true }, { "**.z", "z.z.z", true }, { "**.a.b", "a.a.b", true },
        { "a.**.**", "a", true }, { "**.*", "a", true }, { "*.**", "a", true },
        { "a.*", "a", false }, { "**.*.*", "a", false }, { "*.**.*", "a.b", true },
        //  Invalid on either side never matches
        { "ord*", "order", false }, { "**", "a..b", false }, { "**", "", false },
    };
    for (size_t index = 0; index < sizeof (cases) / sizeof (cases [0]); index++)
        assert (shoal_pattern_match (cases [index].pattern, cases [index].topic)
                == cases [index].match);
    assert (!shoal_pattern_match (NULL, "a") && !shoal_pattern_match ("**", NULL));

    //  Network data: the topic is the first SIZE bytes, not terminated
    const char *frame = "order.placed.extra";
    assert (shoal_topic_valid_size (frame, 12) && !shoal_topic_valid_size (frame, 13));
    assert (!shoal_topic_valid_size ("ab\0c", 4) && !shoal_topic_valid_size (NULL, 0));
    assert (shoal_pattern_match_size ("order.placed", frame, 12));
    assert (shoal_pattern_match_size ("order.**", frame, 12));
    assert (!shoal_pattern_match_size ("**.extra", frame, 12));
    assert (!shoal_pattern_match_size ("**", frame, 0));

    //  The worst case for naive backtracking: 32 segments of "a"
    many [2 * SHOAL_MAX_SEGMENTS - 1] = '\0';
    assert (!shoal_pattern_match ("**.a.**.a.**.a.**.b", many));
    many [2 * SHOAL_MAX_SEGMENTS - 2] = 'b';
    assert (shoal_pattern_match ("**.a.**.a.**.a.**.b", many));

    static const struct { const char *pattern, *prefix; size_t length; } prefixes [] = {
        { "order", "order", 6 }, { "order.placed", "order.placed", 13 },
        { "order.*", "order.", 6 }, { "order.**", "order", 5 }, { "order.*.x.**", "order.", 6 },
        { "a.b.**.c", "a.b", 3 }, { "*", "", 0 }, { "**.x", "", 0 }, { "*.x", "", 0 },
        { "ord*", "", 0 },
    };
    char prefix [SHOAL_MAX_TOPIC + 2];
    for (size_t index = 0; index < sizeof (prefixes) / sizeof (prefixes [0]); index++) {
        size_t length = shoal_pattern_prefix (prefixes [index].pattern, prefix, sizeof (prefix));
        assert (length == prefixes [index].length);
        assert (memcmp (prefix, prefixes [index].prefix, length) == 0);
        assert (prefix [length] == '\0');
    }
    assert (shoal_pattern_prefix (longest, prefix, sizeof (prefix)) == SHOAL_MAX_TOPIC + 1);
    assert (prefix [SHOAL_MAX_TOPIC] == '\0');

    if (verbose)
        printf ("OK\n");
}
