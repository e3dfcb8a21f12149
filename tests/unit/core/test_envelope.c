/*
 * core/envelope.c with a kept tokener (envelope_parse_with): one tokener
 * parses message after message, and each answer must be the one a fresh
 * tokener gives, whatever came before it: a message cut short, trailing
 * data, too deep, bad UTF-8, a control character, a value that is not an
 * object. A large message gets a tokener of its own and parses the same.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/envelope.h"

/* What a parse said, as one comparable line. */
static void describe(int rc, const struct envelope *env, const char *why, char *out, size_t len)
{
    if (rc < 0) {
        snprintf(out, len, "refused: %s", why);
        return;
    }
    snprintf(out, len, "type=%s id=%s data=%s root=%s", env->type,
             env->id ? json_object_to_json_string(env->id) : "-",
             env->data ? json_object_to_json_string(env->data) : "-",
             json_object_to_json_string_ext(env->root, JSON_C_TO_STRING_PLAIN));
}

static void parse_fresh(const char *msg, size_t len, char *out, size_t outlen)
{
    struct envelope env;
    char why[160];
    int rc = envelope_parse(msg, len, &env, why, sizeof(why));
    describe(rc, &env, why, out, outlen);
    envelope_clear(&env);
}

static void parse_kept(json_tokener *tok, const char *msg, size_t len, char *out, size_t outlen)
{
    struct envelope env;
    char why[160];
    int rc = envelope_parse_with(tok, msg, len, &env, why, sizeof(why));
    describe(rc, &env, why, out, outlen);
    envelope_clear(&env);
}

static const char *const messages[] = {
    "{\"type\":\"ping\",\"id\":1}",
    "{\"type\":\"command\",\"id\":\"a\",\"data\":{\"name\":\"git.status\"", /* cut short */
    "{\"type\":\"ping\",\"id\":2}",
    "{\"type\":\"ping\"} {\"type\":\"ping\"}", /* trailing data */
    "{\"type\":\"command\",\"id\":3,\"data\":{\"name\":\"workspace.info\",\"args\":{}}}",
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]", /* deep */
    "{\"type\":\"ping\",\"id\":4}",
    "{\"type\":\"p\xc3\x28\"}", /* bad UTF-8 */
    "{\"type\":\"ping\",\"id\":5}",
    "{\"type\":\"a\tb\"}", /* raw control character */
    "\"just a string\"",
    "{\"type\":\"ping\",\"id\":6,\"data\":null}",
    "{\"type\":", /* cut short again, then a message that would complete it */
    "\"ping\",\"id\":7}",
    "{\"type\":\"ping\",\"id\":8}",
    "",
    "{\"type\":\"ping\",\"id\":9}",
};

static void test_kept_tokener_answers_like_a_fresh_one(void **state)
{
    (void)state;
    json_tokener *tok = envelope_tokener_new();
    assert_non_null(tok);
    for (size_t i = 0; i < sizeof(messages) / sizeof(messages[0]); i++) {
        char fresh[512], kept[512];
        size_t len = strlen(messages[i]);
        parse_fresh(messages[i], len, fresh, sizeof(fresh));
        parse_kept(tok, messages[i], len, kept, sizeof(kept));
        if (strcmp(fresh, kept) != 0)
            fail_msg("message %zu (%s): fresh tokener \"%s\", kept tokener \"%s\"", i, messages[i],
                     fresh, kept);
    }
    json_tokener_free(tok);
}

static void test_fragments_of_a_message_are_not_joined(void **state)
{
    (void)state;
    json_tokener *tok = envelope_tokener_new();
    char out[512];
    parse_kept(tok, "{\"type\":", 8, out, sizeof(out));
    assert_string_equal(out, "refused: invalid JSON: incomplete JSON");
    /* A fresh tokener refuses this; one that kept the first half would
     * have made {"type":"ping"} of the two. */
    char fresh[512];
    parse_fresh("\"ping\"}", 7, fresh, sizeof(fresh));
    parse_kept(tok, "\"ping\"}", 7, out, sizeof(out));
    assert_string_equal(out, fresh);
    assert_true(strncmp(out, "refused: ", 9) == 0);
    json_tokener_free(tok);
}

static void test_large_message_parses_the_same(void **state)
{
    (void)state;
    size_t n = ENVELOPE_REUSE_MAX + 1000;
    char *msg = malloc(n + 64);
    assert_non_null(msg);
    int k = snprintf(msg, 64, "{\"type\":\"chat\",\"id\":10,\"data\":{\"text\":\"");
    memset(msg + k, 'x', n);
    strcpy(msg + k + n, "\"}}");
    json_tokener *tok = envelope_tokener_new();
    char *fresh = malloc(n + 256), *kept = malloc(n + 256);
    assert_non_null(fresh);
    assert_non_null(kept);
    parse_fresh(msg, strlen(msg), fresh, n + 256);
    parse_kept(tok, msg, strlen(msg), kept, n + 256);
    assert_string_equal(fresh, kept);
    assert_non_null(strstr(kept, "type=chat"));
    /* and the kept tokener still works after it */
    parse_kept(tok, "{\"type\":\"ping\",\"id\":11}", 23, kept, n + 256);
    assert_non_null(strstr(kept, "type=ping id=11"));
    free(fresh);
    free(kept);
    free(msg);
    json_tokener_free(tok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kept_tokener_answers_like_a_fresh_one),
        cmocka_unit_test(test_fragments_of_a_message_are_not_joined),
        cmocka_unit_test(test_large_message_parses_the_same),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
