/*
 * workspace/acp_map.c: what a phone sees of an ACP agent's session/update,
 * and which of the agent's permission options each approval decision picks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "workspace/acp_map.h"

static json_object *parse(const char *text)
{
    json_object *o = json_tokener_parse(text);
    if (!o)
        fail_msg("test JSON does not parse: %s", text);
    return o;
}

/* acp_map_update(text) as compact JSON, or "null". */
static void expect_chunk(const char *update, const char *want)
{
    json_object *u = parse(update);
    json_object *c = acp_map_update(u);
    const char *got = c ? json_object_to_json_string_ext(c, JSON_C_TO_STRING_PLAIN) : "null";
    if (strcmp(got, want) != 0)
        fail_msg("%s\n  gave %s\n  want %s", update, got, want);
    json_object_put(c);
    json_object_put(u);
}

static void test_updates(void **state)
{
    (void)state;
    expect_chunk("{\"sessionUpdate\":\"agent_message_chunk\",\"content\":{\"type\":\"text\","
                 "\"text\":\"Hi \\n```c\"}}",
                 "{\"kind\":\"message\",\"text\":\"Hi \\n```c\"}");
    expect_chunk("{\"sessionUpdate\":\"agent_thought_chunk\",\"content\":{\"type\":\"text\","
                 "\"text\":\"hmm\"}}",
                 "{\"kind\":\"thought\",\"text\":\"hmm\"}");
    expect_chunk("{\"sessionUpdate\":\"tool_call\",\"toolCallId\":\"t1\",\"title\":\"Running: "
                 "npm test\",\"kind\":\"execute\",\"status\":\"pending\",\"rawInput\":{}}",
                 "{\"kind\":\"tool\",\"toolCallId\":\"t1\",\"title\":\"Running: npm test\","
                 "\"status\":\"pending\"}");
    expect_chunk("{\"sessionUpdate\":\"tool_call_update\",\"toolCallId\":\"t1\",\"status\":"
                 "\"completed\"}",
                 "{\"kind\":\"tool\",\"toolCallId\":\"t1\",\"status\":\"completed\"}");
    expect_chunk("{\"sessionUpdate\":\"plan\",\"entries\":[{\"content\":\"a\",\"priority\":"
                 "\"high\",\"status\":\"in_progress\"},{\"content\":\"b\"},7,{\"status\":\"x\"}]}",
                 "{\"kind\":\"plan\",\"entries\":[{\"content\":\"a\",\"status\":\"in_progress\"},"
                 "{\"content\":\"b\",\"status\":\"pending\"}]}");
    /* Not shown, or not usable. */
    expect_chunk("{\"sessionUpdate\":\"user_message_chunk\",\"content\":{\"type\":\"text\","
                 "\"text\":\"me\"}}",
                 "null");
    expect_chunk("{\"sessionUpdate\":\"available_commands_update\",\"availableCommands\":[]}",
                 "null");
    expect_chunk("{\"sessionUpdate\":\"agent_message_chunk\",\"content\":{\"type\":\"image\","
                 "\"data\":\"x\"}}",
                 "null");
    expect_chunk("{\"sessionUpdate\":\"agent_message_chunk\",\"content\":{\"type\":\"text\","
                 "\"text\":5}}",
                 "null");
    expect_chunk("{\"sessionUpdate\":\"tool_call\",\"title\":\"no id\"}", "null");
    expect_chunk("{\"sessionUpdate\":\"plan\",\"entries\":{}}", "null");
    expect_chunk("{\"content\":{}}", "null");
    expect_chunk("[]", "null");
    assert_null(acp_map_update(NULL));
}

static void expect_options(const char *params, int rc, unsigned offered, const char *once,
                           const char *always, const char *deny)
{
    json_object *p = parse(params);
    struct acp_permission_options o;
    assert_int_equal(acp_map_permission(p, &o), rc);
    json_object_put(p);
    if (rc != 0)
        return;
    assert_int_equal(o.offered, offered);
    const char *want[] = {once, always, deny};
    for (unsigned i = 0; i < 3; i++) {
        const char *got = acp_map_option_id(&o, 1u << i);
        if (!want[i])
            assert_null(got);
        else
            assert_string_equal(got, want[i]);
    }
}

static void test_permission_options(void **state)
{
    (void)state;
    expect_options("{\"options\":[{\"optionId\":\"a1\",\"kind\":\"allow_once\",\"name\":\"Allow\"},"
                   "{\"optionId\":\"a2\",\"kind\":\"allow_always\"},{\"optionId\":\"r1\","
                   "\"kind\":\"reject_once\"},{\"optionId\":\"r2\",\"kind\":\"reject_always\"}]}",
                   0, 7, "a1", "a2", "r1");
    /* deny is reject_always when there is no reject_once; the first of a kind wins. */
    expect_options(
        "{\"options\":[{\"optionId\":\"r2\",\"kind\":\"reject_always\"},{\"optionId\":"
        "\"a1\",\"kind\":\"allow_once\"},{\"optionId\":\"a9\",\"kind\":\"allow_once\"}]}",
        0, 5, "a1", NULL, "r2");
    /* Only what the agent offers: allow_always is refused when absent. */
    expect_options("{\"options\":[{\"optionId\":\"a1\",\"kind\":\"allow_once\"}]}", 0, 1, "a1",
                   NULL, NULL);
    expect_options("{\"options\":[{\"optionId\":\"x\",\"kind\":\"maybe\"}]}", 0, 0, NULL, NULL,
                   NULL);
    expect_options("{\"options\":[]}", 0, 0, NULL, NULL, NULL);
    /* An empty or over-long optionId is never offered. */
    char big[512];
    snprintf(big, sizeof big,
             "{\"options\":[{\"optionId\":\"%0*d\",\"kind\":\"allow_once\"},"
             "{\"optionId\":\"\",\"kind\":\"reject_once\"}]}",
             ACP_OPTION_ID_MAX + 1, 0);
    expect_options(big, 0, 0, NULL, NULL, NULL);
    /* Malformed. */
    expect_options("{}", -1, 0, NULL, NULL, NULL);
    expect_options("{\"options\":{}}", -1, 0, NULL, NULL, NULL);
    expect_options("{\"options\":[{\"kind\":\"allow_once\"}]}", -1, 0, NULL, NULL, NULL);
    expect_options("{\"options\":[{\"optionId\":1,\"kind\":\"allow_once\"}]}", -1, 0, NULL, NULL,
                   NULL);
    expect_options("[]", -1, 0, NULL, NULL, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_updates),
        cmocka_unit_test(test_permission_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
