/*
 * Unit tests of chat_parse with a default agent (workspace/chat_parse.c):
 * which messages are commands and which go to the agent, ask / new / stop,
 * the agent scope, help, and the unchanged behaviour without an agent. One
 * table of messages and what each must give, then the limits. Every reply
 * is checked to be valid UTF-8.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "workspace/chat.h"
#include "workspace/commands.h"
#include "workspace/utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const tasks[] = {"test", "build", "unit tests"};

#define ALL                                                                                        \
    (CMD_SCOPE_READ | CMD_SCOPE_RUN | CMD_SCOPE_EDITOR | CMD_SCOPE_APPROVE | CMD_SCOPE_AGENT)

/* No agent configured, every scope. */
static const struct chat_env e_none = {ALL, tasks, 3, NULL};
/* The agent "claude", every scope. */
static const struct chat_env e_agent = {ALL, tasks, 3, "claude"};
/* The agent, every scope but "agent". */
static const struct chat_env e_noscope = {ALL & ~CMD_SCOPE_AGENT, tasks, 3, "claude"};
/* The agent, only "read" and "agent". */
static const struct chat_env e_read_agent = {CMD_SCOPE_READ | CMD_SCOPE_AGENT, tasks, 3, "claude"};

#define SCOPE_TEXT                                                                                 \
    "Asking the agent needs a token with the \"agent\" scope. Send \"help\" for the list."
#define NO_AGENT "No agent is configured."

struct want {
    const char *msg;
    const struct chat_env *env;
    enum chat_kind kind;
    const char *word; /* NULL: not checked */
    /* Agent kinds: the exact text (NULL: no text). CHAT_COMMAND: the command.
     * CHAT_REPLY: a part of the reply ("=...": how the reply starts). */
    const char *text;
};

static const struct want table[] = {
    /* Commands whose rest parses stay commands. */
    {"log 5", &e_agent, CHAT_COMMAND, "log", "git.log"},
    {"log", &e_agent, CHAT_COMMAND, "log", "git.log"},
    {"  Status  ", &e_agent, CHAT_COMMAND, "status", "git.status"},
    {"STATUS", &e_agent, CHAT_COMMAND, "status", "git.status"},
    {"/status", &e_agent, CHAT_COMMAND, "status", "git.status"},
    {"git status", &e_agent, CHAT_COMMAND, "status", "git.status"},
    {"git log 3", &e_agent, CHAT_COMMAND, "log", "git.log"},
    {"log 5\n", &e_agent, CHAT_COMMAND, "log", "git.log"},
    {"diff", &e_agent, CHAT_COMMAND, "diff", "git.diff"},
    {"diff src/a.c", &e_agent, CHAT_COMMAND, "diff", "git.diff"},
    {"tasks", &e_agent, CHAT_COMMAND, "tasks", "task.list"},
    {"run test", &e_agent, CHAT_COMMAND, "run", "task.run"},
    {"run unit tests", &e_agent, CHAT_COMMAND, "run", "task.run"},
    {"open src/a.c:12", &e_agent, CHAT_COMMAND, "open", "editor.open"},
    {"problems", &e_agent, CHAT_COMMAND, "problems", "editor.diagnostics"},
    {"problems src/a.c", &e_agent, CHAT_COMMAND, "problems", "editor.diagnostics"},
    {"approvals", &e_agent, CHAT_COMMAND, "approvals", "approvals.list"},
    {"yes 7", &e_agent, CHAT_COMMAND, "yes", "approve"},
    {"always 2", &e_agent, CHAT_COMMAND, "always", "approve"},
    {"No 3", &e_agent, CHAT_COMMAND, "no", "approve"},
    {"cancel", &e_agent, CHAT_CANCEL, "cancel", NULL},
    {"notify ON", &e_agent, CHAT_NOTIFY, "notify", NULL},
    {"help log", &e_agent, CHAT_REPLY, "help", "=log [n] — last n commits (1 to 100, default 10)."},
    {"help ask", &e_agent, CHAT_REPLY, "help", "=ask <text> — ask the agent, even when"},
    /* The right shape with a bad value: the command's usage, not the agent. */
    {"log 500", &e_agent, CHAT_REPLY, "log", "=Usage: log [n] — last n"},
    {"yes 0", &e_agent, CHAT_REPLY, "yes", "=Usage: yes <n> — allow approval n once."},
    /* Prose that starts with a command word goes to the agent, whole. */
    {"log in page is broken", &e_agent, CHAT_AGENT_ASK, "ask", "log in page is broken"},
    {"log x", &e_agent, CHAT_AGENT_ASK, "ask", "log x"},
    {"no, use the other file", &e_agent, CHAT_AGENT_ASK, "ask", "no, use the other file"},
    {"status of the build?", &e_agent, CHAT_AGENT_ASK, "ask", "status of the build?"},
    {"STATUS OF THE BUILD", &e_agent, CHAT_AGENT_ASK, "ask", "STATUS OF THE BUILD"},
    {"help me fix the tests", &e_agent, CHAT_AGENT_ASK, "ask", "help me fix the tests"},
    {"run the tests please", &e_agent, CHAT_AGENT_ASK, "ask", "run the tests please"},
    {"run", &e_agent, CHAT_AGENT_ASK, "ask", "run"},
    {"run Test", &e_agent, CHAT_AGENT_ASK, "ask", "run Test"},
    {"diff the two files", &e_agent, CHAT_AGENT_ASK, "ask", "diff the two files"},
    {"tasks please", &e_agent, CHAT_AGENT_ASK, "ask", "tasks please"},
    {"cancel that", &e_agent, CHAT_AGENT_ASK, "ask", "cancel that"},
    {"open the file", &e_agent, CHAT_AGENT_ASK, "ask", "open the file"},
    {"open", &e_agent, CHAT_AGENT_ASK, "ask", "open"},
    {"problems in main.c", &e_agent, CHAT_AGENT_ASK, "ask", "problems in main.c"},
    {"notify me when done", &e_agent, CHAT_AGENT_ASK, "ask", "notify me when done"},
    {"yes please", &e_agent, CHAT_AGENT_ASK, "ask", "yes please"},
    {"yes", &e_agent, CHAT_AGENT_ASK, "ask", "yes"},
    {"always", &e_agent, CHAT_AGENT_ASK, "ask", "always"},
    {"yes 7 and 8", &e_agent, CHAT_AGENT_ASK, "ask", "yes 7 and 8"},
    {"status\nand more", &e_agent, CHAT_AGENT_ASK, "ask", "status\nand more"},
    {"log\t5", &e_agent, CHAT_COMMAND, "log", "git.log"},
    {"log 5\n6", &e_agent, CHAT_AGENT_ASK, "ask", "log 5\n6"},
    {"diff a\x01b", &e_agent, CHAT_AGENT_ASK, "ask", "diff a\x01b"},
    {"git push fails", &e_agent, CHAT_AGENT_ASK, "ask", "git push fails"},
    {"git status of main", &e_agent, CHAT_AGENT_ASK, "ask", "git status of main"},
    {"stauts", &e_agent, CHAT_AGENT_ASK, "ask", "stauts"},
    {"  why does the build fail?  \n", &e_agent, CHAT_AGENT_ASK, "ask", "why does the build fail?"},
    {"¿Qué pasa con el build? 🚀", &e_agent, CHAT_AGENT_ASK, "ask", "¿Qué pasa con el build? 🚀"},
    {"Ünïcödé", &e_agent, CHAT_AGENT_ASK, "ask", "Ünïcödé"},
    {"státus", &e_agent, CHAT_AGENT_ASK, "ask", "státus"},
    /* ask, new, stop. */
    {"ask status", &e_agent, CHAT_AGENT_ASK, "ask", "status"},
    {"ASK  what is\n  this? ", &e_agent, CHAT_AGENT_ASK, "ask", "what is\n  this?"},
    {"/ask hello", &e_agent, CHAT_AGENT_ASK, "ask", "hello"},
    {"ask", &e_agent, CHAT_REPLY, "ask", "=Usage: ask <text> — ask the agent"},
    {"ask   ", &e_agent, CHAT_REPLY, "ask", "=Usage: ask <text>"},
    {"new", &e_agent, CHAT_AGENT_NEW, "new", NULL},
    {" NEW ", &e_agent, CHAT_AGENT_NEW, "new", NULL},
    {"new fix the login page", &e_agent, CHAT_AGENT_NEW, "new", "fix the login page"},
    {"new\nline two", &e_agent, CHAT_AGENT_NEW, "new", "line two"},
    {"stop", &e_agent, CHAT_AGENT_STOP, "stop", NULL},
    {"Stop", &e_agent, CHAT_AGENT_STOP, "stop", NULL},
    {"/stop", &e_agent, CHAT_AGENT_STOP, "stop", NULL},
    {"stop it", &e_agent, CHAT_AGENT_ASK, "ask", "stop it"},
    {"asking for a friend", &e_agent, CHAT_AGENT_ASK, "ask", "asking for a friend"},
    /* Never to the agent: empty, "/" commands. */
    {"", &e_agent, CHAT_REPLY, "", "=Send \"help\" for the list."},
    {" \t\n ", &e_agent, CHAT_REPLY, "", "=Send \"help\" for the list."},
    {"/", &e_agent, CHAT_REPLY, "", "=Send \"help\" for the list."},
    {"/stauts", &e_agent, CHAT_REPLY, "", "=Unknown command \"stauts\". Did you mean \"status\"?"},
    {"/run tset", &e_agent, CHAT_REPLY, "run", "No task \"tset\". Did you mean \"test\"?"},
    {"/log in", &e_agent, CHAT_REPLY, "log", "=Usage: log [n]"},
    /* A command the token may not run is refused, not sent to the agent. */
    {"run test", &e_read_agent, CHAT_REPLY, "run", "=Not allowed: this device's token does not"},
    {"yes 7", &e_read_agent, CHAT_REPLY, "yes", "\"approve\" scope."},
    {"run the tests please", &e_read_agent, CHAT_AGENT_ASK, "ask", "run the tests please"},
    {"status", &e_read_agent, CHAT_COMMAND, "status", "git.status"},
    /* An agent but no agent scope. */
    {"log 5", &e_noscope, CHAT_COMMAND, "log", "git.log"},
    {"why does it fail", &e_noscope, CHAT_REPLY, "", "=" SCOPE_TEXT},
    {"so what", &e_noscope, CHAT_REPLY, "", "=" SCOPE_TEXT},
    {"stauts", &e_noscope, CHAT_REPLY, "",
     "=Unknown command \"stauts\". Did you mean \"status\"?\n" SCOPE_TEXT},
    {"log in page", &e_noscope, CHAT_REPLY, "",
     "=Usage: log [n] — last n commits (1 to 100, default 10).\n" SCOPE_TEXT},
    {"ask hi", &e_noscope, CHAT_REPLY, "ask", "=" SCOPE_TEXT},
    {"new", &e_noscope, CHAT_REPLY, "new", "=" SCOPE_TEXT},
    {"stop", &e_noscope, CHAT_REPLY, "stop", "=" SCOPE_TEXT},
    /* No agent configured: as before, and ask / new / stop say so. */
    {"ask hi", &e_none, CHAT_REPLY, "ask", "=" NO_AGENT " Add one in the companion.agents"},
    {"new", &e_none, CHAT_REPLY, "new", "=" NO_AGENT},
    {"STOP", &e_none, CHAT_REPLY, "stop", "=" NO_AGENT},
    {"stop it", &e_none, CHAT_REPLY, "stop", "=" NO_AGENT},
    {"log in page is broken", &e_none, CHAT_REPLY, "log", "=Usage: log [n]"},
    {"yes please", &e_none, CHAT_REPLY, "yes", "=Usage: yes <n> — allow approval n once."},
    {"stauts", &e_none, CHAT_REPLY, "", "=Unknown command \"stauts\". Did you mean \"status\"?"},
    {"why", &e_none, CHAT_REPLY, "", "=Unknown command \"why\". Send \"help\" for the list."},
    {"askk", &e_none, CHAT_REPLY, "", "=Unknown command \"askk\". Did you mean \"tasks\"?"},
    {"log 5", &e_none, CHAT_COMMAND, "log", "git.log"},
    {"help me", &e_none, CHAT_REPLY, "help", "=Send one of these:\nstatus"},
};

static const char *env_name(const struct chat_env *env)
{
    return env == &e_none      ? "no agent"
           : env == &e_agent   ? "agent"
           : env == &e_noscope ? "agent, no scope"
                               : "agent, read only";
}

static void check_text(const char *s)
{
    if (!s)
        fail_msg("text is NULL");
    if (!utf8_is_valid(s, strlen(s)))
        fail_msg("not valid UTF-8: %s", s);
}

static void check_one(const struct want *w)
{
    struct chat_request r;
    if (chat_parse(w->msg, strlen(w->msg), w->env, &r) != 0)
        fail_msg("\"%s\" (%s): chat_parse failed", w->msg, env_name(w->env));
    if (r.kind != w->kind)
        fail_msg("\"%s\" (%s): kind %d, expected %d (reply \"%s\")", w->msg, env_name(w->env),
                 (int)r.kind, (int)w->kind, r.text ? r.text : "");
    if (w->word && strcmp(r.word, w->word) != 0)
        fail_msg("\"%s\" (%s): word \"%s\", expected \"%s\"", w->msg, env_name(w->env), r.word,
                 w->word);
    switch (w->kind) {
    case CHAT_COMMAND:
        if (!r.command || strcmp(r.command, w->text) != 0)
            fail_msg("\"%s\": command %s, expected %s", w->msg, r.command ? r.command : "none",
                     w->text);
        assert_null(r.text);
        break;
    case CHAT_REPLY:
        check_text(r.text);
        assert_null(r.args);
        if (w->text[0] == '=' ? strncmp(r.text, w->text + 1, strlen(w->text + 1)) != 0
                              : strstr(r.text, w->text) == NULL)
            fail_msg("\"%s\" (%s): reply\n%s\nexpected %s", w->msg, env_name(w->env), r.text,
                     w->text);
        break;
    case CHAT_AGENT_ASK:
    case CHAT_AGENT_NEW:
    case CHAT_AGENT_STOP:
        assert_null(r.args);
        assert_null(r.command);
        if (!w->text) {
            if (r.text)
                fail_msg("\"%s\": text \"%s\", expected none", w->msg, r.text);
        } else if (!r.text || strcmp(r.text, w->text) != 0) {
            fail_msg("\"%s\": text \"%s\", expected \"%s\"", w->msg, r.text ? r.text : "(none)",
                     w->text);
        }
        break;
    case CHAT_CANCEL:
    case CHAT_NOTIFY:
        assert_null(r.text);
        break;
    }
    chat_request_clear(&r);
}

static void test_table(void **state)
{
    (void)state;
    assert_true(sizeof table / sizeof table[0] >= 40);
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        check_one(&table[i]);
}

/* Whole replies. */
static void expect_exact(const char *msg, const struct chat_env *env, const char *want)
{
    struct chat_request r;
    assert_int_equal(chat_parse(msg, strlen(msg), env, &r), 0);
    assert_int_equal(r.kind, CHAT_REPLY);
    check_text(r.text);
    if (strcmp(r.text, want) != 0)
        fail_msg("\"%s\": reply\n%s\nexpected\n%s", msg, r.text, want);
    chat_request_clear(&r);
}

static void test_exact_replies(void **state)
{
    (void)state;
    expect_exact("why does it fail", &e_noscope, SCOPE_TEXT);
    expect_exact("ask hi", &e_none,
                 "No agent is configured. Add one in the companion.agents setting and name it "
                 "in companion.defaultAgent.");
    expect_exact("ask", &e_agent,
                 "Usage: ask <text> — ask the agent, even when the text starts like a command.");
    expect_exact("help ask", &e_noscope,
                 "ask <text> — ask the agent, even when the text starts like a command.\n"
                 "Not allowed: this device's token does not include the \"agent\" scope.");
}

static void test_help(void **state)
{
    (void)state;
    struct chat_request r;
    assert_int_equal(chat_parse("help", 4, &e_read_agent, &r), 0);
    assert_int_equal(r.kind, CHAT_REPLY);
    assert_string_equal(r.text, "Send one of these:\n"
                                "status — branch and changed files\n"
                                "log [n] — last n commits (1 to 100, default 10)\n"
                                "diff [path] — changed files with line counts\n"
                                "tasks — configured tasks\n"
                                "problems [path] — errors and warnings from the editor\n"
                                "notify on|off — a message when a task ends\n"
                                "help [word] — this list\n"
                                "ask <text> — ask the agent, even when the text starts like a "
                                "command\n"
                                "new [text] — start a new conversation with the agent\n"
                                "stop — stop the agent's answer\n"
                                "Any other message goes to the agent \"claude\".");
    chat_request_clear(&r);

    /* Without the scope, or without an agent: none of it. */
    const struct chat_env *no[] = {&e_noscope, &e_none};
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(chat_parse("help", 4, no[i], &r), 0);
        assert_int_equal(r.kind, CHAT_REPLY);
        assert_null(strstr(r.text, "ask <text>"));
        assert_null(strstr(r.text, "stop —"));
        assert_null(strstr(r.text, "agent"));
        assert_non_null(strstr(r.text, "approvals — "));
        chat_request_clear(&r);
    }
    /* help with the agent lists what the scope-less help lists, then more. */
    struct chat_request a;
    assert_int_equal(chat_parse("help", 4, &e_agent, &a), 0);
    assert_int_equal(chat_parse("help", 4, &e_noscope, &r), 0);
    assert_true(strncmp(a.text, r.text, strlen(r.text)) == 0);
    assert_true(strlen(a.text) > strlen(r.text));
    chat_request_clear(&a);
    chat_request_clear(&r);
}

static char *repeat(const char *unit, size_t n)
{
    size_t ul = strlen(unit);
    char *s = malloc(ul * n + 1);
    assert_non_null(s);
    for (size_t i = 0; i < n; i++)
        memcpy(s + i * ul, unit, ul);
    s[ul * n] = '\0';
    return s;
}

/* CHAT_TEXT_MAX code points go to the agent; one more is refused. */
static void test_length_limit(void **state)
{
    (void)state;
    const char *units[] = {"a", "é", "🚀", "why "};
    for (size_t u = 0; u < 4; u++) {
        size_t per = u == 3 ? 4 : 1;
        char *ok = repeat(units[u], CHAT_TEXT_MAX / per);
        char *big = repeat(units[u], CHAT_TEXT_MAX / per + 1);
        struct chat_request r;
        assert_int_equal(chat_parse(ok, strlen(ok), &e_agent, &r), 0);
        assert_int_equal(r.kind, CHAT_AGENT_ASK);
        /* Trimmed: "why why ... why" without the last space. */
        size_t want = strlen(ok) - (u == 3);
        assert_int_equal(strlen(r.text), want);
        assert_memory_equal(r.text, ok, want);
        chat_request_clear(&r);
        assert_int_equal(chat_parse(big, strlen(big), &e_agent, &r), 0);
        assert_int_equal(r.kind, CHAT_REPLY);
        assert_string_equal(r.text, "That message is too long. Send \"help\" for the list.");
        chat_request_clear(&r);
        free(ok);
        free(big);
    }
    /* "ask" and 4092 more code points: the text after "ask ". */
    char *body = repeat("x", CHAT_TEXT_MAX - 4);
    char *msg = malloc(CHAT_TEXT_MAX + 1);
    assert_non_null(msg);
    snprintf(msg, CHAT_TEXT_MAX + 1, "ask %s", body);
    struct chat_request r;
    assert_int_equal(chat_parse(msg, strlen(msg), &e_agent, &r), 0);
    assert_int_equal(r.kind, CHAT_AGENT_ASK);
    assert_string_equal(r.text, body);
    chat_request_clear(&r);
    free(body);
    free(msg);
}

/* Bytes that are not text never reach the agent. */
static void test_invalid_text(void **state)
{
    (void)state;
    static const char bad[][8] = {"a\xff", "\xc3", "ok\x00no"};
    static const size_t lens[] = {2, 1, 5};
    for (size_t i = 0; i < 3; i++) {
        struct chat_request r;
        assert_int_equal(chat_parse(bad[i], lens[i], &e_agent, &r), 0);
        assert_int_equal(r.kind, CHAT_REPLY);
        assert_string_equal(r.text, "That message is not valid text. Send \"help\" for the list.");
        chat_request_clear(&r);
    }
    /* NULL text: the hint, as for an empty message. */
    struct chat_request r;
    assert_int_equal(chat_parse(NULL, 0, &e_agent, &r), 0);
    assert_int_equal(r.kind, CHAT_REPLY);
    chat_request_clear(&r);
}

/* The agent's text is the message's own bytes: a copy, freed by clear. */
static void test_text_is_a_copy(void **state)
{
    (void)state;
    char msg[] = "please look at the build";
    struct chat_request r;
    assert_int_equal(chat_parse(msg, strlen(msg), &e_agent, &r), 0);
    assert_int_equal(r.kind, CHAT_AGENT_ASK);
    assert_ptr_not_equal(r.text, msg);
    msg[0] = 'X';
    assert_string_equal(r.text, "please look at the build");
    chat_request_clear(&r);
    assert_null(r.text);
    assert_int_equal(r.kind, CHAT_REPLY);
    /* A length shorter than the string: only those bytes. */
    assert_int_equal(chat_parse("why not yet", 7, &e_agent, &r), 0);
    assert_string_equal(r.text, "why not");
    chat_request_clear(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),        cmocka_unit_test(test_exact_replies),
        cmocka_unit_test(test_help),         cmocka_unit_test(test_length_limit),
        cmocka_unit_test(test_invalid_text), cmocka_unit_test(test_text_is_a_copy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
