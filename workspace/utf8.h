/*
 * utf8: validation and repair of byte strings before they enter JSON.
 *
 * json-c writes whatever bytes it is given, so a file name or a line of
 * command output that is not UTF-8 would make the whole reply invalid JSON.
 */
#ifndef COMPANION_UTF8_H
#define COMPANION_UTF8_H

#include <stddef.h>
#include <json-c/json.h>

/* Length of the longest prefix of s[0..len) that is valid UTF-8 and does not
 * end inside a sequence; a stream reader keeps the rest for the next read. */
size_t utf8_valid_prefix(const char *s, size_t len);
/* Bytes at the end of s[0..len) that start a valid sequence still missing
 * its last bytes (0 to 3): a stream keeps them for the next read. */
size_t utf8_incomplete_tail(const char *s, size_t len);
/* 1 when all of s[0..len) is valid UTF-8 (no overlongs, no surrogates). */
int utf8_is_valid(const char *s, size_t len);
/* A malloc'd NUL-terminated copy with each invalid byte replaced by U+FFFD. */
char *utf8_repair(const char *s, size_t len);
/* json_object string of s, repaired when needed. */
json_object *utf8_json_string(const char *s);

#endif
