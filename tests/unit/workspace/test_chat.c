/*
 * Unit tests of workspace/chat.c: every chat word and its command and
 * arguments, scopes, suggestions for unknown words and task names, refused
 * messages, the phone text of each result, error and task end, and the
 * splitting of long replies. Every text produced is checked to be valid
 * UTF-8 without stray control characters.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "workspace/chat.h"
#include "workspace/utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOW 1800000000LL /* 2027-01-15, a fixed clock for git.log */

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */

static const char *const three_tasks[] = {"test", "build", "lint"};

static const struct chat_env env_all = {7, three_tasks, 3, NULL};
static const struct chat_env env_read = {1, three_tasks, 3, NULL};
static const struct chat_env env_run_only = {2, three_tasks, 3, NULL};
static const struct chat_env env_no_tasks = {7, NULL, 0, NULL};

static size_t cps(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xc0) != 0x80)
            n++;
    return n;
}

/* Valid UTF-8, and no control character but the line feed. */
static void check_text(const char *s)
{
    if (!s)
        fail_msg("text is NULL");
    if (!utf8_is_valid(s, strlen(s)))
        fail_msg("not valid UTF-8: %s", s);
    for (const char *p = s; *p; p++)
        if (((unsigned char)*p < 0x20 && *p != '\n') || *p == 0x7f)
            fail_msg("control character 0x%02x in: %s", (unsigned char)*p, s);
}

static json_object *json(const char *text)
{
    json_object *o = json_tokener_parse(text);
    if (!o)
        fail_msg("test JSON does not parse: %s", text);
    return o;
}

static void parse(const char *text, const struct chat_env *env, struct chat_request *r)
{
    if (chat_parse(text, strlen(text), env, r) != 0)
        fail_msg("chat_parse(\"%s\") failed", text);
}

/* A command with args equal to args_json (NULL: no args). */
static void expect_command(const char *text, const struct chat_env *env, const char *word,
                           const char *command, const char *args_json)
{
    struct chat_request r;
    parse(text, env, &r);
    if (r.kind != CHAT_COMMAND)
        fail_msg("\"%s\": kind %d, reply \"%s\"", text, (int)r.kind, r.text ? r.text : "");
    assert_string_equal(r.word, word);
    assert_non_null(r.command);
    assert_string_equal(r.command, command);
    assert_null(r.text);
    if (!args_json) {
        if (r.args)
            fail_msg("\"%s\": args %s, expected none", text, json_object_to_json_string(r.args));
    } else {
        json_object *want = json(args_json);
        if (!r.args || !json_object_equal(r.args, want))
            fail_msg("\"%s\": args %s, expected %s", text,
                     r.args ? json_object_to_json_string(r.args) : "none", args_json);
        json_object_put(want);
    }
    chat_request_clear(&r);
}

/* A reply (no command) whose text equals `want` exactly. */
static void expect_reply(const char *text, const struct chat_env *env, const char *want)
{
    struct chat_request r;
    parse(text, env, &r);
    if (r.kind != CHAT_REPLY)
        fail_msg("\"%s\": kind %d, expected a reply", text, (int)r.kind);
    assert_null(r.command);
    assert_null(r.args);
    check_text(r.text);
    if (strcmp(r.text, want) != 0)
        fail_msg("\"%s\": reply\n%s\nexpected\n%s", text, r.text, want);
    chat_request_clear(&r);
}

/* A reply (no command) whose text contains `want`. */
static void expect_reply_has(const char *text, const struct chat_env *env, const char *want)
{
    struct chat_request r;
    parse(text, env, &r);
    if (r.kind != CHAT_REPLY)
        fail_msg("\"%s\": kind %d, expected a reply", text, (int)r.kind);
    assert_null(r.args);
    check_text(r.text);
    if (!strstr(r.text, want))
        fail_msg("\"%s\": reply \"%s\" lacks \"%s\"", text, r.text, want);
    chat_request_clear(&r);
}

/* Formats with the fixed clock and compares with `want`; frees both. */
static void expect_result(const char *command, const char *args_json, const char *result_json,
                          const char *want)
{
    json_object *args = args_json ? json(args_json) : NULL;
    json_object *res = json(result_json);
    char *t = chat_format_result_at(NULL, command, args, res, NOW);
    check_text(t);
    if (strcmp(t, want) != 0)
        fail_msg("%s: got\n%s\nexpected\n%s", command, t, want);
    free(t);
    json_object_put(args);
    json_object_put(res);
}

static void expect_text(char *t, const char *want)
{
    check_text(t);
    if (strcmp(t, want) != 0)
        fail_msg("got\n%s\nexpected\n%s", t, want);
    free(t);
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

static int starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* A line of `text` equal to `line`. */
static int has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; p; p = strchr(p, '\n')) {
        if (*p == '\n')
            p++;
        if (strncmp(p, line, n) == 0 && (p[n] == '\n' || p[n] == '\0'))
            return 1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Words and arguments                                                      */

static void test_status_word(void **state)
{
    (void)state;
    expect_command("status", &env_all, "status", "git.status", NULL);
    expect_command("  STATUS \n", &env_all, "status", "git.status", NULL);
    expect_command("Status", &env_read, "status", "git.status", NULL);
    expect_command("git status", &env_all, "status", "git.status", NULL);
    expect_command("/status", &env_all, "status", "git.status", NULL);
    expect_reply("status now", &env_all, "Usage: status — branch and changed files.");
}

static void test_log_word(void **state)
{
    (void)state;
    expect_command("log", &env_read, "log", "git.log", "{\"limit\":10}");
    expect_command("log 5", &env_read, "log", "git.log", "{\"limit\":5}");
    expect_command("LOG\t  100 ", &env_read, "log", "git.log", "{\"limit\":100}");
    expect_command("log 1", &env_read, "log", "git.log", "{\"limit\":1}");
    expect_command("git log 7", &env_read, "log", "git.log", "{\"limit\":7}");
    const char *bad[] = {"log 0",   "log 101", "log x",
                         "log 5x",  "log -1",  "log +5",
                         "log 5 6", "log 1e2", "log 99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_reply(bad[i], &env_read, "Usage: log [n] — last n commits (1 to 100, default 10).");
}

static void test_diff_word(void **state)
{
    (void)state;
    expect_command("diff", &env_read, "diff", "git.diff", NULL);
    expect_command("diff src/a.c", &env_read, "diff", "git.diff", "{\"path\":\"src/a.c\"}");
    expect_command("Diff   my file.txt  ", &env_read, "diff", "git.diff",
                   "{\"path\":\"my file.txt\"}");
    expect_command("git diff docs/é.md", &env_read, "diff", "git.diff", "{\"path\":\"docs/é.md\"}");
    /* An argument must stay on one line. */
    expect_reply("diff a\nb", &env_read, "Usage: diff [path] — changed files with line counts.");
}

static void test_tasks_word(void **state)
{
    (void)state;
    expect_command("tasks", &env_read, "tasks", "task.list", NULL);
    expect_command("TASKS", &env_no_tasks, "tasks", "task.list", NULL);
    expect_reply("tasks all", &env_read, "Usage: tasks — configured tasks.");
}

static void test_run_word(void **state)
{
    (void)state;
    expect_command("run test", &env_all, "run", "task.run", "{\"name\":\"test\"}");
    expect_command("RUN   build  ", &env_all, "run", "task.run", "{\"name\":\"build\"}");
    /* The word is case-insensitive, the task name is not. */
    expect_reply("RUN   Test", &env_all,
                 "No task \"Test\". Did you mean \"test\"?\nTasks: test, build, lint");
    expect_reply("run tset", &env_all,
                 "No task \"tset\". Did you mean \"test\"?\nTasks: test, build, lint");
    expect_reply("run nosuch", &env_all, "No task \"nosuch\".\nTasks: test, build, lint");
    expect_reply("run", &env_all, "Usage: run <task> — start a task.\nTasks: test, build, lint");
    expect_reply("run x", &env_no_tasks,
                 "No task \"x\".\nNo tasks configured. Add them in the companion.tasks setting.");
    /* Without read the names of the tasks are not shown. */
    expect_reply("run nosuch", &env_run_only, "No task \"nosuch\".");

    static const char *const spaced[] = {"unit tests", "e2e", "a"};
    const struct chat_env env = {7, spaced, 3, NULL};
    expect_command("run unit tests", &env, "run", "task.run", "{\"name\":\"unit tests\"}");
    expect_reply("run unit   tests", &env,
                 "No task \"unit   tests\". Did you mean \"unit tests\"?\n"
                 "Tasks: unit tests, e2e, a");
    expect_reply("run e", &env, "No task \"e\". Did you mean \"e2e\"?\nTasks: unit tests, e2e, a");
    /* One edit is all of "a": no suggestion, it would be a guess. */
    expect_reply("run b", &env, "No task \"b\".\nTasks: unit tests, e2e, a");
}

static void test_run_many_tasks(void **state)
{
    (void)state;
    char names[20][8];
    const char *ptrs[20];
    for (int i = 0; i < 20; i++) {
        snprintf(names[i], sizeof names[i], "t%02d", i);
        ptrs[i] = names[i];
    }
    const struct chat_env env = {7, ptrs, 20, NULL};
    struct chat_request r;
    parse("run zzzzzz", &env, &r);
    check_text(r.text);
    assert_non_null(strstr(r.text, "t14, …and 5 more"));
    assert_null(strstr(r.text, "t15"));
    chat_request_clear(&r);
}

static void test_cancel_word(void **state)
{
    (void)state;
    struct chat_request r;
    parse(" Cancel ", &env_all, &r);
    assert_int_equal(r.kind, CHAT_CANCEL);
    assert_string_equal(r.word, "cancel");
    assert_null(r.args);
    assert_null(r.text);
    chat_request_clear(&r);
    expect_reply("cancel it", &env_all, "Usage: cancel — stop the task you started last.");
}

static void test_open_word(void **state)
{
    (void)state;
    expect_command("open src/a.c", &env_all, "open", "editor.open", "{\"path\":\"src/a.c\"}");
    expect_command("open src/a.c:12", &env_all, "open", "editor.open",
                   "{\"path\":\"src/a.c\",\"line\":12}");
    expect_command("OPEN  a b.c ", &env_all, "open", "editor.open", "{\"path\":\"a b.c\"}");
    /* Not a line number: the colon is part of the name. */
    expect_command("open a.c:x", &env_all, "open", "editor.open", "{\"path\":\"a.c:x\"}");
    expect_command("open a.c:0", &env_all, "open", "editor.open", "{\"path\":\"a.c:0\"}");
    expect_command("open :12", &env_all, "open", "editor.open", "{\"path\":\":12\"}");
    expect_reply("open", &env_all, "Usage: open <path>[:line] — open a file in the editor.");
}

static void test_problems_word(void **state)
{
    (void)state;
    expect_command("problems", &env_read, "problems", "editor.diagnostics", NULL);
    expect_command("PROBLEMS src/a.c", &env_read, "problems", "editor.diagnostics",
                   "{\"path\":\"src/a.c\"}");
}

static void test_notify_word(void **state)
{
    (void)state;
    struct chat_request r;
    parse("notify on", &env_read, &r);
    assert_int_equal(r.kind, CHAT_NOTIFY);
    assert_int_equal(r.notify_on, 1);
    assert_string_equal(r.word, "notify");
    chat_request_clear(&r);
    parse("Notify  OFF", &env_read, &r);
    assert_int_equal(r.kind, CHAT_NOTIFY);
    assert_int_equal(r.notify_on, 0);
    chat_request_clear(&r);
    parse("NOTIFY On", &env_read, &r);
    assert_int_equal(r.kind, CHAT_NOTIFY);
    assert_int_equal(r.notify_on, 1);
    chat_request_clear(&r);
    expect_reply("notify", &env_read, "Usage: notify on|off — a message when a task ends.");
    expect_reply("notify maybe", &env_read, "Usage: notify on|off — a message when a task ends.");
    expect_reply("notify on off", &env_read, "Usage: notify on|off — a message when a task ends.");
}

/* ------------------------------------------------------------------------ */
/* Scopes                                                                   */

static void test_help_read_only(void **state)
{
    (void)state;
    struct chat_request r;
    parse("help", &env_read, &r);
    assert_int_equal(r.kind, CHAT_REPLY);
    assert_string_equal(r.word, "help");
    check_text(r.text);
    const char *shown[] = {"status — branch and changed files",
                           "log [n] — last n commits (1 to 100, default 10)",
                           "diff [path] — changed files with line counts",
                           "tasks — configured tasks",
                           "problems [path] — errors and warnings from the editor",
                           "notify on|off — a message when a task ends",
                           "help [word] — this list"};
    for (size_t i = 0; i < sizeof shown / sizeof shown[0]; i++)
        if (!has_line(r.text, shown[i]))
            fail_msg("help lacks \"%s\":\n%s", shown[i], r.text);
    assert_null(strstr(r.text, "\nrun"));
    assert_null(strstr(r.text, "\ncancel"));
    assert_null(strstr(r.text, "\nopen"));
    chat_request_clear(&r);
}

static void test_help_all_scopes(void **state)
{
    (void)state;
    struct chat_request r;
    parse("  HELP  ", &env_all, &r);
    check_text(r.text);
    const char *shown[] = {"status",        "log [n]",    "diff [path]",        "tasks",
                           "run <task>",    "cancel",     "open <path>[:line]", "problems [path]",
                           "notify on|off", "help [word]"};
    for (size_t i = 0; i < sizeof shown / sizeof shown[0]; i++) {
        char want[64];
        snprintf(want, sizeof want, "\n%s — ", shown[i]);
        if (!strstr(r.text, want))
            fail_msg("help lacks \"%s\":\n%s", shown[i], r.text);
    }
    /* Ten words, one line each, after the heading. */
    size_t lines = 0;
    for (const char *p = r.text; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 10);
    chat_request_clear(&r);
}

static void test_help_word(void **state)
{
    (void)state;
    expect_reply("help log", &env_read, "log [n] — last n commits (1 to 100, default 10).");
    expect_reply("help RUN", &env_read,
                 "run <task> — start a task.\nNot allowed: this device's token does not "
                 "include the \"run\" scope.");
    expect_reply_has("help nosuch", &env_read, "Send one of these:\nstatus");
}

static void test_not_allowed(void **state)
{
    (void)state;
    const char *run_msg = "Not allowed: this device's token does not include the \"run\" scope.";
    expect_reply("run test", &env_read, run_msg);
    expect_reply("run", &env_read, run_msg);
    expect_reply("cancel", &env_read, run_msg);
    expect_reply("open src/a.c", &env_read,
                 "Not allowed: this device's token does not include the \"editor\" scope.");
    expect_reply("status", &env_run_only,
                 "Not allowed: this device's token does not include the \"read\" scope.");
    expect_reply("notify on", &env_run_only,
                 "Not allowed: this device's token does not include the \"read\" scope.");
    /* No environment at all: no scopes, only help. */
    struct chat_request r;
    assert_int_equal(chat_parse("log", 3, NULL, &r), 0);
    assert_int_equal(r.kind, CHAT_REPLY);
    assert_string_equal(r.word, "log");
    assert_non_null(strstr(r.text, "\"read\" scope"));
    chat_request_clear(&r);
    assert_int_equal(chat_parse("help", 4, NULL, &r), 0);
    check_text(r.text);
    assert_string_equal(r.text, "Send one of these:\nhelp [word] — this list");
    chat_request_clear(&r);
}

/* ------------------------------------------------------------------------ */
/* Unknown words and refused messages                                       */

static void test_unknown_suggestions(void **state)
{
    (void)state;
    expect_reply("stauts", &env_read, "Unknown command \"stauts\". Did you mean \"status\"?");
    expect_reply("lgo", &env_read, "Unknown command \"lgo\". Did you mean \"log\"?");
    expect_reply("LGO 5", &env_read, "Unknown command \"LGO\". Did you mean \"log\"?");
    expect_reply("dif src/a.c", &env_read, "Unknown command \"dif\". Did you mean \"diff\"?");
    expect_reply("problem", &env_read, "Unknown command \"problem\". Did you mean \"problems\"?");
    expect_reply("xyzzy", &env_read, "Unknown command \"xyzzy\". Send \"help\" for the list.");
    expect_reply("git", &env_read, "Unknown command \"git\". Send \"help\" for the list.");
    expect_reply("git push", &env_read, "Unknown command \"git\". Send \"help\" for the list.");
    /* The nearest word is named even when the token lacks its scope. */
    expect_reply("rnu", &env_read,
                 "Unknown command \"rnu\". Did you mean \"run\"? Not allowed: this device's "
                 "token does not include the \"run\" scope.");
    expect_reply("rnu", &env_all, "Unknown command \"rnu\". Did you mean \"run\"?");
    /* "hup" is two edits from both "run" and "help": the allowed one wins,
     * and with every scope the first in the help list. */
    expect_reply("hup", &env_read, "Unknown command \"hup\". Did you mean \"help\"?");
    expect_reply("hup", &env_all, "Unknown command \"hup\". Did you mean \"run\"?");
}

static void test_unknown_echo_is_cut(void **state)
{
    (void)state;
    char *word = repeat("x", 100);
    char *want_echo = repeat("x", 39);
    char want[256];
    snprintf(want, sizeof want, "Unknown command \"%s…\". Send \"help\" for the list.", want_echo);
    expect_reply(word, &env_read, want);
    free(word);
    free(want_echo);

    /* Multibyte: 40 code points at most, never half a character. */
    word = repeat("é", 60);
    struct chat_request r;
    parse(word, &env_read, &r);
    check_text(r.text);
    const char *q = strchr(r.text, '"');
    const char *end = strchr(q + 1, '"');
    char echo[256];
    snprintf(echo, sizeof echo, "%.*s", (int)(end - q - 1), q + 1);
    assert_int_equal(cps(echo), 40);
    assert_non_null(strstr(echo, "é…"));
    chat_request_clear(&r);
    free(word);

    /* A control character in the word does not reach the reply. */
    expect_reply("st\x01tus", &env_read, "Unknown command \"st?tus\". Did you mean \"status\"?");
}

static void test_empty_and_long(void **state)
{
    (void)state;
    expect_reply("", &env_read, "Send \"help\" for the list.");
    expect_reply("  \t\n ", &env_read, "Send \"help\" for the list.");
    expect_reply("/", &env_read, "Send \"help\" for the list.");
    struct chat_request r;
    assert_int_equal(chat_parse(NULL, 0, &env_read, &r), 0);
    assert_int_equal(r.kind, CHAT_REPLY);
    assert_string_equal(r.text, "Send \"help\" for the list.");
    chat_request_clear(&r);

    char *big = repeat("a", CHAT_TEXT_MAX + 1);
    expect_reply(big, &env_read, "That message is too long. Send \"help\" for the list.");
    free(big);
    /* The limit counts characters: 4096 two-byte ones pass, 4097 do not. */
    char *e = repeat("é", CHAT_TEXT_MAX);
    expect_reply_has(e, &env_read, "Unknown command \"ééé");
    free(e);
    e = repeat("é", CHAT_TEXT_MAX + 1);
    expect_reply(e, &env_read, "That message is too long. Send \"help\" for the list.");
    free(e);
    /* A huge message is refused on its byte length alone. */
    big = repeat("status ", 100000);
    expect_reply(big, &env_read, "That message is too long. Send \"help\" for the list.");
    free(big);
    /* Exactly at the limit: accepted, however it is padded. */
    big = repeat(" ", CHAT_TEXT_MAX);
    memcpy(big, "status", 6);
    expect_command(big, &env_read, "status", "git.status", NULL);
    free(big);
}

static void test_invalid_text(void **state)
{
    (void)state;
    expect_reply("status\xff", &env_read,
                 "That message is not valid text. Send \"help\" for the list.");
    expect_reply("\xc3\x28", &env_read,
                 "That message is not valid text. Send \"help\" for the list.");
    struct chat_request r;
    assert_int_equal(chat_parse("status\0x", 8, &env_read, &r), 0);
    assert_int_equal(r.kind, CHAT_REPLY);
    assert_string_equal(r.text, "That message is not valid text. Send \"help\" for the list.");
    chat_request_clear(&r);
    /* Length is honoured: the bytes after len are not read. */
    assert_int_equal(chat_parse("status garbage", 6, &env_read, &r), 0);
    assert_int_equal(r.kind, CHAT_COMMAND);
    chat_request_clear(&r);
}

static void test_request_clear(void **state)
{
    (void)state;
    struct chat_request r;
    parse("log 3", &env_read, &r);
    assert_non_null(r.args);
    chat_request_clear(&r);
    assert_null(r.args);
    assert_null(r.text);
    assert_null(r.command);
    chat_request_clear(&r); /* twice is harmless */
    chat_request_clear(NULL);
}

/* ------------------------------------------------------------------------ */
/* Results                                                                  */

static json_object *paths(const char *prefix, size_t n, const char *status)
{
    json_object *a = json_object_new_array();
    for (size_t i = 0; i < n; i++) {
        char p[32];
        snprintf(p, sizeof p, "%s%zu.c", prefix, i);
        json_object *e = json_object_new_object();
        json_object_object_add(e, "path", json_object_new_string(p));
        if (status)
            json_object_object_add(e, "status", json_object_new_string(status));
        json_object_array_add(a, e);
    }
    return a;
}

static void test_status_many(void **state)
{
    (void)state;
    json_object *r = json("{\"branch\":\"main\",\"head\":\"0123456789abcdef\",\"detached\":false,"
                          "\"unborn\":false,\"upstream\":\"origin/main\",\"ahead\":2,"
                          "\"behind\":1,\"truncated\":false,"
                          "\"unstaged\":[{\"path\":\"m0.c\",\"status\":\"M\"},"
                          "{\"path\":\"m1.c\",\"status\":\"D\"},"
                          "{\"path\":\"m2.c\",\"status\":\"T\"}],"
                          "\"conflicted\":[{\"path\":\"c.c\"}]}");
    json_object_object_add(r, "staged", paths("s", 20, "A"));
    json_object_object_add(r, "untracked", paths("u", 17, NULL));

    char want[4096];
    size_t o = 0;
    o += (size_t)snprintf(want + o, sizeof want - o,
                          "main ↑2 ↓1 · 1 conflict, 20 staged, 3 modified, 17 untracked\n"
                          "Upstream: origin/main\n\nConflicts:\nc.c\n\nStaged:");
    for (int i = 0; i < CHAT_LIST_MAX; i++)
        o += (size_t)snprintf(want + o, sizeof want - o, "\nA s%d.c", i);
    o += (size_t)snprintf(want + o, sizeof want - o,
                          "\n…and 5 more\n\nModified:\nM m0.c\nD m1.c\nT m2.c\n\nUntracked:");
    for (int i = 0; i < CHAT_LIST_MAX; i++)
        o += (size_t)snprintf(want + o, sizeof want - o, "\nu%d.c", i);
    snprintf(want + o, sizeof want - o, "\n…and 2 more");

    char *t = chat_format_result("status", "git.status", r);
    expect_text(t, want);
    /* The command may be left to the word. */
    t = chat_format_result("status", NULL, r);
    expect_text(t, want);
    json_object_put(r);
}

static void test_status_states(void **state)
{
    (void)state;
    expect_result("git.status", NULL,
                  "{\"branch\":\"main\",\"head\":\"abc\",\"upstream\":\"origin/main\","
                  "\"ahead\":0,\"behind\":0,\"staged\":[],\"unstaged\":[],\"untracked\":[],"
                  "\"conflicted\":[],\"truncated\":false}",
                  "main · clean");
    expect_result("git.status", NULL,
                  "{\"branch\":\"main\",\"ahead\":3,\"behind\":0,\"upstream\":\"origin/main\"}",
                  "main ↑3 · clean\nUpstream: origin/main");
    expect_result("git.status", NULL,
                  "{\"branch\":null,\"head\":\"abc1234def5678\",\"detached\":true,"
                  "\"unstaged\":[{\"path\":\"a.c\",\"status\":\"M\"}]}",
                  "detached at abc1234 · 1 modified\n\nModified:\nM a.c");
    expect_result("git.status", NULL,
                  "{\"branch\":\"main\",\"head\":null,\"unborn\":true,"
                  "\"untracked\":[{\"path\":\"README\"}]}",
                  "main (no commits yet) · 1 untracked\n\nUntracked:\nREADME");
    expect_result("git.status", NULL,
                  "{\"branch\":\"dev\",\"behind\":4,\"upstream\":\"origin/dev\","
                  "\"staged\":[{\"path\":\"x\",\"status\":\"R\"}],\"truncated\":true}",
                  "dev ↓4 · 1 staged\nUpstream: origin/dev\n\nStaged:\nR x\n\n"
                  "(truncated: there are more changes than listed)");
    /* Exactly CHAT_LIST_MAX paths: all listed, no "and 0 more". */
    json_object *r = json("{\"branch\":\"main\"}");
    json_object_object_add(r, "untracked", paths("u", CHAT_LIST_MAX, NULL));
    char *t = chat_format_result_at("status", "git.status", NULL, r, NOW);
    check_text(t);
    assert_true(has_line(t, "u14.c"));
    assert_null(strstr(t, "more"));
    free(t);
    json_object_put(r);
    /* Nothing usable at all still gives a line. */
    expect_result("git.status", NULL, "{}", "(no branch) · clean");
    expect_result("git.status", NULL, "[1,2]", "(no branch) · clean");
}

static void test_status_hostile_paths(void **state)
{
    (void)state;
    json_object *r = json("{\"branch\":\"main\"}");
    json_object *a = json_object_new_array();
    json_object *e = json_object_new_object();
    /* A newline, a bidi override, an invalid byte and a NUL in one name. */
    json_object_object_add(e, "path",
                           json_object_new_string_len("ev\nil\xe2\x80\xae\xff.c\0x", 13));
    json_object_object_add(e, "status", json_object_new_string("\n"));
    json_object_array_add(a, e);
    json_object_object_add(r, "unstaged", a);
    char *t = chat_format_result_at("status", "git.status", NULL, r, NOW);
    expect_text(t, "main · 1 modified\n\nModified:\n? ev il?\xef\xbf\xbd.c\xef\xbf\xbdx");
    json_object_put(r);
}

static void test_log(void **state)
{
    (void)state;
    char *long_summary = repeat("word ", 30);
    char result[2048];
    snprintf(result, sizeof result,
             "{\"commits\":["
             "{\"id\":\"abc1234ffff\",\"shortId\":\"abc1234\",\"summary\":\"Fix the parser\","
             "\"author\":\"Ana\",\"email\":\"a@x\",\"time\":%lld},"
             "{\"id\":\"def5678000000\",\"summary\":\"%s\",\"author\":\"Bo\",\"time\":%lld},"
             "{\"shortId\":\"1111111\",\"summary\":\"Old\",\"author\":\"Cy\",\"time\":%lld},"
             "{\"shortId\":\"2222222\",\"summary\":\"Just now\",\"author\":\"Di\",\"time\":%lld},"
             "{\"shortId\":\"3333333\",\"summary\":\"Days\",\"author\":\"Ed\",\"time\":%lld}]}",
             NOW - 7200, long_summary, NOW - 90, NOW - 40 * 86400LL, NOW - 5, NOW - 3 * 86400LL);
    char *cut = repeat("word ", 11); /* 55 code points, then "word" and "…" */
    char want[2048];
    snprintf(want, sizeof want,
             "abc1234 Fix the parser (Ana, 2h ago)\n"
             "def5678 %sword… (Bo, 1m ago)\n"
             "1111111 Old (Cy, 2026-12-06)\n"
             "2222222 Just now (Di, just now)\n"
             "3333333 Days (Ed, 3d ago)",
             cut);
    expect_result("git.log", "{\"limit\":5}", result, want);
    free(long_summary);
    free(cut);

    expect_result("git.log", NULL, "{\"commits\":[]}", "No commits yet.");
    expect_result("git.log", NULL, "{}", "No commits yet.");

    /* chat_format_result uses the real clock: a commit of 2001 is a date. */
    json_object *r = json("{\"commits\":[{\"shortId\":\"aaaaaaa\",\"summary\":\"s\","
                          "\"author\":\"A\",\"time\":1000000000}]}");
    expect_text(chat_format_result("log", "git.log", r), "aaaaaaa s (A, 2001-09-09)");
    json_object_put(r);
}

static void test_diff(void **state)
{
    (void)state;
    expect_result("git.diff", NULL,
                  "{\"files\":[{\"path\":\"src/a.c\",\"additions\":3,\"deletions\":1,"
                  "\"binary\":false},{\"path\":\"src/b.c\",\"additions\":7,\"deletions\":3,"
                  "\"binary\":false},{\"path\":\"img.png\",\"additions\":0,\"deletions\":0,"
                  "\"binary\":true}],\"patch\":\"diff --git a/src/a.c b/src/a.c\\n+x\","
                  "\"truncated\":false}",
                  "3 files, +10 −4\nsrc/a.c +3 −1\nsrc/b.c +7 −3\nimg.png (binary)\n"
                  "Use the app for the full diff.");
    expect_result("git.diff", "{\"path\":\"src/a.c\"}",
                  "{\"files\":[{\"path\":\"src/a.c\",\"additions\":1,\"deletions\":0}],"
                  "\"patch\":\"x\",\"truncated\":true}",
                  "1 file, +1 −0\nsrc/a.c +1 −0\n(diff truncated)\nUse the app for the full diff.");
    expect_result("git.diff", NULL, "{\"files\":[],\"patch\":\"\",\"truncated\":false}",
                  "No changes.");
    expect_result("git.diff", "{\"path\":\"src/a.c\"}", "{\"files\":[]}", "No changes in src/a.c.");

    json_object *r = json_object_new_object();
    json_object *files = paths("f", 17, NULL);
    for (size_t i = 0; i < 17; i++) {
        json_object *f = json_object_array_get_idx(files, i);
        json_object_object_add(f, "additions", json_object_new_int(2));
        json_object_object_add(f, "deletions", json_object_new_int(1));
    }
    json_object_object_add(r, "files", files);
    char *t = chat_format_result_at("diff", "git.diff", NULL, r, NOW);
    check_text(t);
    /* Totals count every file, the list only the first CHAT_LIST_MAX. */
    assert_true(starts_with(t, "17 files, +34 −17\nf0.c +2 −1\n"));
    assert_true(has_line(t, "f14.c +2 −1"));
    assert_false(has_line(t, "f15.c +2 −1"));
    assert_true(has_line(t, "…and 2 more"));
    assert_null(strstr(t, "diff --git"));
    free(t);
    json_object_put(r);
}

static void test_task_list(void **state)
{
    (void)state;
    expect_result("task.list", NULL,
                  "{\"tasks\":[{\"name\":\"test\",\"command\":\"make\",\"args\":[\"test\"],"
                  "\"confirm\":false},{\"name\":\"build\",\"command\":\"make\",\"args\":[],"
                  "\"confirm\":true},{\"name\":\"lint\",\"command\":\"x\"}]}",
                  "Tasks: test, build (asks first), lint");
    expect_result("task.list", NULL, "{\"tasks\":[]}",
                  "No tasks configured. Add them in the companion.tasks setting.");
}

static void test_editor_open(void **state)
{
    (void)state;
    expect_result("editor.open", "{\"path\":\"src/a.c\",\"line\":12}", "{\"opened\":true}",
                  "Opened src/a.c:12 in the editor.");
    expect_result("editor.open", "{\"path\":\"src/a.c\"}", "{\"opened\":true}",
                  "Opened src/a.c in the editor.");
    expect_result("editor.open", "{\"path\":\"src/a.c\"}", "{\"opened\":false}",
                  "The editor did not open src/a.c.");
    /* Without the request, a path in the result is used, else none. */
    expect_result("editor.open", NULL, "{\"opened\":true,\"path\":\"b.c\",\"line\":3}",
                  "Opened b.c:3 in the editor.");
    json_object *r = json("{\"opened\":true}");
    expect_text(chat_format_result("open", "editor.open", r), "Opened in the editor.");
    json_object_put(r);
}

static void test_diagnostics(void **state)
{
    (void)state;
    expect_result("editor.diagnostics", NULL,
                  "{\"diagnostics\":["
                  "{\"path\":\"a.c\",\"line\":3,\"severity\":\"warning\",\"message\":\"unused x\","
                  "\"source\":\"gcc\"},"
                  "{\"path\":\"src/a.c\",\"line\":12,\"severity\":\"error\",\"message\":"
                  "\"expected ';'\\nbefore '}'\"},"
                  "{\"path\":\"b.c\",\"line\":1,\"severity\":\"error\",\"message\":\"x\"},"
                  "{\"path\":\"c.c\",\"line\":2,\"severity\":\"info\",\"message\":\"fyi\"}]}",
                  "2 errors, 1 warning, 1 note\n"
                  "src/a.c:12 error: expected ';' before '}'\n"
                  "b.c:1 error: x\n"
                  "a.c:3 warning: unused x\n"
                  "c.c:2 info: fyi");
    expect_result("editor.diagnostics", NULL, "{\"diagnostics\":[]}", "No problems.");

    json_object *r = json_object_new_object();
    json_object *d = paths("w", 20, NULL);
    for (size_t i = 0; i < 20; i++) {
        json_object *e = json_object_array_get_idx(d, i);
        json_object_object_add(e, "severity",
                               json_object_new_string(i == 19 ? "error" : "warning"));
        json_object_object_add(e, "message", json_object_new_string("m"));
        json_object_object_add(e, "line", json_object_new_int((int)i + 1));
    }
    json_object_object_add(r, "diagnostics", d);
    char *t = chat_format_result_at("problems", "editor.diagnostics", NULL, r, NOW);
    check_text(t);
    /* The one error comes first although it is last. */
    assert_true(starts_with(t, "1 error, 19 warnings\nw19.c:20 error: m\nw0.c:1 warning: m\n"));
    assert_true(has_line(t, "w13.c:14 warning: m"));
    assert_false(has_line(t, "w14.c:15 warning: m"));
    assert_true(has_line(t, "…and 5 more"));
    free(t);
    json_object_put(r);
}

static void test_other_results(void **state)
{
    (void)state;
    expect_result("task.cancel", NULL, "{\"cancelled\":true}", "Cancelling.");
    expect_result("workspace.info", NULL, "{}", "Done.");
    expect_text(chat_format_result(NULL, NULL, NULL), "Done.");
    expect_text(chat_format_result("status", NULL, NULL), "(no branch) · clean");
}

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */

static void test_errors(void **state)
{
    (void)state;
    expect_text(chat_format_error("status", "NOT_A_REPOSITORY", "no repo at /home/x"),
                "This workspace is not a git repository.");
    expect_text(chat_format_error("open", "EDITOR_UNAVAILABLE", NULL),
                "The editor is not reachable right now.");
    expect_text(chat_format_error("run", "BUSY", "8 tasks"),
                "Too many tasks are running. Try again when one ends.");
    expect_text(chat_format_error("log", "RATE_LIMITED", ""),
                "Too many messages. Wait a moment and try again.");
    expect_text(chat_format_error("open", "TIMEOUT", "x"), "That took too long and was stopped.");
    expect_text(chat_format_error("open", "NOT_FOUND", "src/zz.c does not exist"),
                "Not found: src/zz.c does not exist");
    expect_text(chat_format_error("open", "NOT_FOUND", NULL), "Not found.");
    expect_text(chat_format_error("diff", "INVALID_ARGS", "path: must stay inside the folder"),
                "That did not work: path: must stay inside the folder\n"
                "Send \"help diff\" for its usage.");
    expect_text(chat_format_error("run", "FORBIDDEN", "the token lacks the run scope"),
                "Not allowed: the token lacks the run scope");
    expect_text(chat_format_error("run", "FORBIDDEN", NULL),
                "Not allowed: this device's token does not include the needed scope.");
    expect_text(chat_format_error("status", "PROCESSING_ERROR", "libgit2: index locked"),
                "Something went wrong: libgit2: index locked");
    expect_text(chat_format_error("diff", "TOO_LARGE", NULL),
                "The answer is too large for chat. Use the app.");
    expect_text(chat_format_error("log", "WEIRD_CODE", "it broke"),
                "log failed (WEIRD_CODE): it broke");
    expect_text(chat_format_error(NULL, NULL, NULL), "That failed.");
}

static void test_error_message_cut(void **state)
{
    (void)state;
    char *msg = repeat("é\n", 300);
    char *t = chat_format_error("status", "PROCESSING_ERROR", msg);
    check_text(t);
    assert_true(starts_with(t, "Something went wrong: é é"));
    /* The message part is cut to 200 characters, its last one "…". */
    assert_int_equal(cps(t) - cps("Something went wrong: "), 200);
    assert_non_null(strstr(t, "…"));
    free(t);
    free(msg);
    t = chat_format_error("x", "NOT_FOUND", "bad\xff\x1b[31mbyte");
    expect_text(t, "Not found: bad\xef\xbf\xbd?[31mbyte");
}

/* ------------------------------------------------------------------------ */
/* Tasks                                                                    */

static void test_task_start(void **state)
{
    (void)state;
    expect_text(chat_format_task_start("test"), "▶ test started");
    expect_text(chat_format_task_start("a\nb"), "▶ a b started");
}

static void test_task_end_success(void **state)
{
    (void)state;
    expect_text(chat_format_task_end("test", 0, NULL, 42000, 0, 0, "1\n2\nok a\nok b\nok c\n", 0),
                "✔ test finished: exit 0 in 42 s\n```\nok a\nok b\nok c\n```");
    expect_text(chat_format_task_end("test", 0, NULL, 900, 0, 0, NULL, 0),
                "✔ test finished: exit 0 in 0.9 s");
    expect_text(chat_format_task_end("test", 0, NULL, 900, 0, 0, "\n \n", 0),
                "✔ test finished: exit 0 in 0.9 s");
    expect_text(chat_format_task_end("test", 0, NULL, 900, 0, 0, "only", 1),
                "✔ test finished: exit 0 in 0.9 s\n(output truncated)\n```\nonly\n```");
}

static void test_task_end_failure(void **state)
{
    (void)state;
    char tail[512] = "";
    for (int i = 1; i <= 15; i++)
        snprintf(tail + strlen(tail), sizeof tail - strlen(tail), "line%d\n", i);
    char want[512] = "✘ test failed: exit 2 in 3.1 s\n(output truncated)\n```";
    for (int i = 6; i <= 15; i++)
        snprintf(want + strlen(want), sizeof want - strlen(want), "\nline%d", i);
    strcat(want, "\n```");
    expect_text(chat_format_task_end("test", 2, NULL, 3100, 0, 0, tail, 1), want);

    /* Fewer lines than the limit: all of them, blank ones inside kept. */
    expect_text(chat_format_task_end("lint", 1, NULL, 12400, 0, 0, "a\n\nb", 0),
                "✘ lint failed: exit 1 in 12 s\n```\na\n\nb\n```");
}

static void test_task_end_other(void **state)
{
    (void)state;
    expect_text(chat_format_task_end("test", -1, "SIGKILL", 5000, 0, 0, NULL, 0),
                "✘ test killed by SIGKILL after 5.0 s");
    expect_text(chat_format_task_end("test", -1, "SIGTERM", 600000, 1, 0, "waiting\n", 0),
                "⏱ test timed out after 10 min\n```\nwaiting\n```");
    expect_text(chat_format_task_end("test", -1, "SIGTERM", 12000, 1, 1, NULL, 0),
                "■ test cancelled after 12 s");
    expect_text(chat_format_task_end("test", -1, NULL, 0, 0, 0, NULL, 0), "✘ test could not start");
    expect_text(chat_format_task_end("test", 3, "", 125000, 0, 0, NULL, 0),
                "✘ test failed: exit 3 in 2 min 5 s");
}

static void test_durations(void **state)
{
    (void)state;
    struct {
        int64_t ms;
        const char *text;
    } cases[] = {{-5, "0.0 s"},     {0, "0.0 s"},          {49, "0.0 s"},
                 {50, "0.1 s"},     {9949, "9.9 s"},       {9950, "10 s"},
                 {42000, "42 s"},   {119499, "119 s"},     {119500, "2 min"},
                 {120000, "2 min"}, {125000, "2 min 5 s"}, {3599000, "59 min 59 s"},
                 {3600000, "1 h"},  {3723000, "1 h 2 min"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char want[128];
        snprintf(want, sizeof want, "✔ t finished: exit 0 in %s", cases[i].text);
        expect_text(chat_format_task_end("t", 0, NULL, cases[i].ms, 0, 0, NULL, 0), want);
    }
}

static void test_task_output_cleaned(void **state)
{
    (void)state;
    /* Colours dropped, CRLF ends, a progress bar shows its last state, an OSC
     * title dropped, invalid bytes repaired, a tab kept as a space. */
    const char *tail = "\x1b[31mFAIL\x1b[0m foo\r\n"
                       "progress 10%\rprogress 100%\n"
                       "\x1b]0;title\x07"
                       "x\tbad\xff\n";
    expect_text(
        chat_format_task_end("t", 1, NULL, 1000, 0, 0, tail, 0),
        "✘ t failed: exit 1 in 1.0 s\n```\nFAIL foo\nprogress 100%\nx bad\xef\xbf\xbd\n```");

    char *line = repeat("é", 1000);
    char *t = chat_format_task_end("t", 1, NULL, 1000, 0, 0, line, 0);
    check_text(t);
    const char *block = strstr(t, "```\n") + 4;
    const char *end = strstr(block, "\n```");
    assert_non_null(end);
    char cut[1024];
    snprintf(cut, sizeof cut, "%.*s", (int)(end - block), block);
    assert_int_equal(cps(cut), 200);
    free(t);
    free(line);
}

/* ------------------------------------------------------------------------ */
/* Splitting                                                                */

/* Checks the promises every split keeps and returns the parts. */
static size_t split_checked(const char *text, char ***parts)
{
    size_t n = chat_split(text, parts);
    assert_true(n >= 1);
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        const char *p = (*parts)[i];
        assert_non_null(p);
        assert_true(utf8_is_valid(p, strlen(p)));
        assert_true(cps(p) <= CHAT_PART_MAX);
        if (n > 1 && !p[0])
            fail_msg("part %zu of %zu is empty", i + 1, n);
        total += strlen(p);
    }
    /* Joined, the parts give the text back. */
    char *joined = malloc(total + 1);
    assert_non_null(joined);
    joined[0] = '\0';
    for (size_t i = 0; i < n; i++)
        strcat(joined, (*parts)[i]);
    if (utf8_is_valid(text, strlen(text)))
        assert_string_equal(joined, text);
    free(joined);
    return n;
}

static void test_split_short(void **state)
{
    (void)state;
    char **parts;
    assert_int_equal(split_checked("hello\nworld", &parts), 1);
    assert_string_equal(parts[0], "hello\nworld");
    chat_parts_free(parts, 1);

    assert_int_equal(split_checked("", &parts), 1);
    assert_string_equal(parts[0], "");
    chat_parts_free(parts, 1);

    assert_int_equal(chat_split(NULL, &parts), 1);
    assert_string_equal(parts[0], "");
    chat_parts_free(parts, 1);
    chat_parts_free(NULL, 0);
}

static void test_split_ascii(void **state)
{
    (void)state;
    char **parts;
    char *t = repeat("a", 10000);
    assert_int_equal(split_checked(t, &parts), 3);
    assert_int_equal(strlen(parts[0]), 4096);
    assert_int_equal(strlen(parts[1]), 4096);
    assert_int_equal(strlen(parts[2]), 1808);
    chat_parts_free(parts, 3);
    free(t);

    t = repeat("a", CHAT_PART_MAX);
    assert_int_equal(split_checked(t, &parts), 1);
    chat_parts_free(parts, 1);
    free(t);

    t = repeat("a", CHAT_PART_MAX + 1);
    assert_int_equal(split_checked(t, &parts), 2);
    assert_int_equal(strlen(parts[0]), 4096);
    assert_string_equal(parts[1], "a");
    chat_parts_free(parts, 2);
    free(t);
}

static void test_split_multibyte(void **state)
{
    (void)state;
    char **parts;
    /* 5000 two-byte characters: 4096 + 904 characters, not bytes. */
    char *t = repeat("é", 5000);
    assert_int_equal(split_checked(t, &parts), 2);
    assert_int_equal(cps(parts[0]), 4096);
    assert_int_equal(strlen(parts[0]), 8192);
    assert_int_equal(cps(parts[1]), 904);
    chat_parts_free(parts, 2);
    free(t);

    /* Four-byte emoji: 9000 -> 4096, 4096, 808. */
    t = repeat("😀", 9000);
    assert_int_equal(split_checked(t, &parts), 3);
    assert_int_equal(cps(parts[0]), 4096);
    assert_int_equal(cps(parts[1]), 4096);
    assert_int_equal(cps(parts[2]), 808);
    chat_parts_free(parts, 3);
    free(t);

    /* Off by one byte, so the limit falls inside a sequence if counted in bytes. */
    char *e = repeat("é€😀", 3000);
    size_t el = strlen(e);
    t = malloc(el + 2);
    t[0] = 'a';
    memcpy(t + 1, e, el + 1);
    size_t n = split_checked(t, &parts);
    assert_int_equal(n, 3);
    assert_int_equal(cps(parts[0]), 4096);
    assert_int_equal(cps(parts[1]), 4096);
    assert_int_equal(cps(parts[2]), 9001 - 8192);
    chat_parts_free(parts, n);
    free(t);
    free(e);
}

static void test_split_newlines(void **state)
{
    (void)state;
    char **parts;
    /* A newline in the second half of the window: the cut goes after it. */
    char *a = repeat("a", 3000), *b = repeat("b", 3000);
    char *t = malloc(6002);
    sprintf(t, "%s\n%s", a, b);
    assert_int_equal(split_checked(t, &parts), 2);
    assert_int_equal(strlen(parts[0]), 3001);
    assert_int_equal(parts[0][3000], '\n');
    assert_string_equal(parts[1], b);
    chat_parts_free(parts, 2);
    free(t);
    free(a);
    free(b);

    /* In the first half: ignored, the cut is at the limit. */
    a = repeat("a", 1000);
    b = repeat("b", 5000);
    t = malloc(6002);
    sprintf(t, "%s\n%s", a, b);
    assert_int_equal(split_checked(t, &parts), 2);
    assert_int_equal(strlen(parts[0]), 4096);
    assert_int_equal(strlen(parts[1]), 6001 - 4096);
    chat_parts_free(parts, 2);
    free(t);
    free(a);
    free(b);

    /* The second half starts at character 2048: a newline that is the
     * 2048th character counts, the 2047th does not. */
    for (size_t before = 2046; before <= 2047; before++) {
        a = repeat("a", before);
        b = repeat("b", 3000);
        t = malloc(before + 3002);
        sprintf(t, "%s\n%s", a, b);
        assert_int_equal(split_checked(t, &parts), 2);
        assert_int_equal(strlen(parts[0]), before == 2047 ? 2048 : 4096);
        chat_parts_free(parts, 2);
        free(t);
        free(a);
        free(b);
    }

    /* Many lines of 100 characters: the last whole line that fits. */
    char *line = repeat("é", 100);
    size_t ll = strlen(line);
    t = malloc((ll + 1) * 60 + 1);
    t[0] = '\0';
    for (int i = 0; i < 60; i++) {
        strcat(t, line);
        strcat(t, "\n");
    }
    assert_int_equal(split_checked(t, &parts), 2);
    assert_int_equal(cps(parts[0]), 40 * 101);
    assert_int_equal(cps(parts[1]), 20 * 101);
    chat_parts_free(parts, 2);
    free(t);
    free(line);
}

static void test_split_keeps_clusters(void **state)
{
    (void)state;
    char **parts;
    /* "woman technologist" is woman, joiner, laptop: not cut after woman. */
    char *a = repeat("a", CHAT_PART_MAX - 1);
    char *t = malloc(CHAT_PART_MAX + 64);
    sprintf(t, "%s👩\u200d💻 done", a);
    assert_int_equal(split_checked(t, &parts), 2);
    assert_string_equal(parts[0], a);
    assert_string_equal(parts[1], "👩\u200d💻 done");
    chat_parts_free(parts, 2);

    /* A flag is two regional indicators: not cut between them. */
    sprintf(t, "%s🇫🇷x", a);
    assert_int_equal(split_checked(t, &parts), 2);
    assert_string_equal(parts[0], a);
    assert_string_equal(parts[1], "🇫🇷x");
    chat_parts_free(parts, 2);

    /* But a cut between two whole flags stays where it is. */
    sprintf(t, "%s🇫🇷🇩🇪", a + 1);
    assert_int_equal(split_checked(t, &parts), 2);
    assert_int_equal(cps(parts[0]), CHAT_PART_MAX);
    assert_string_equal(parts[1], "🇩🇪");
    chat_parts_free(parts, 2);

    /* An accent written as a combining mark stays on its letter. */
    sprintf(t, "%se\u0301!", a);
    assert_int_equal(split_checked(t, &parts), 2);
    assert_string_equal(parts[0], a);
    assert_string_equal(parts[1], "e\u0301!");
    chat_parts_free(parts, 2);
    free(t);
    free(a);
}

static void test_split_invalid_input(void **state)
{
    (void)state;
    char **parts;
    assert_int_equal(chat_split("a\xff"
                                "b",
                                &parts),
                     1);
    assert_string_equal(parts[0], "a\xef\xbf\xbd"
                                  "b");
    chat_parts_free(parts, 1);
}

/* Formatted text goes through chat_split whole: a big status stays valid. */
static void test_split_formatted(void **state)
{
    (void)state;
    json_object *r = json("{\"branch\":\"main\"}");
    json_object *a = json_object_new_array();
    for (int i = 0; i < CHAT_LIST_MAX; i++) {
        char *p = repeat("é", 400);
        json_object *e = json_object_new_object();
        json_object_object_add(e, "path", json_object_new_string(p));
        json_object_object_add(e, "status", json_object_new_string("M"));
        json_object_array_add(a, e);
        free(p);
    }
    json_object_object_add(r, "staged", json_object_get(a));
    json_object_object_add(r, "untracked", json_object_get(a));
    json_object_object_add(r, "unstaged", a);
    char *t = chat_format_result_at("status", "git.status", NULL, r, NOW);
    check_text(t);
    char **parts;
    size_t n = split_checked(t, &parts);
    assert_int_equal(n, 3);
    /* Paths are cut at 200 characters, and every part ends a line. */
    for (size_t i = 0; i + 1 < n; i++)
        assert_int_equal(parts[i][strlen(parts[i]) - 1], '\n');
    chat_parts_free(parts, n);
    free(t);
    json_object_put(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_word),
        cmocka_unit_test(test_log_word),
        cmocka_unit_test(test_diff_word),
        cmocka_unit_test(test_tasks_word),
        cmocka_unit_test(test_run_word),
        cmocka_unit_test(test_run_many_tasks),
        cmocka_unit_test(test_cancel_word),
        cmocka_unit_test(test_open_word),
        cmocka_unit_test(test_problems_word),
        cmocka_unit_test(test_notify_word),
        cmocka_unit_test(test_help_read_only),
        cmocka_unit_test(test_help_all_scopes),
        cmocka_unit_test(test_help_word),
        cmocka_unit_test(test_not_allowed),
        cmocka_unit_test(test_unknown_suggestions),
        cmocka_unit_test(test_unknown_echo_is_cut),
        cmocka_unit_test(test_empty_and_long),
        cmocka_unit_test(test_invalid_text),
        cmocka_unit_test(test_request_clear),
        cmocka_unit_test(test_status_many),
        cmocka_unit_test(test_status_states),
        cmocka_unit_test(test_status_hostile_paths),
        cmocka_unit_test(test_log),
        cmocka_unit_test(test_diff),
        cmocka_unit_test(test_task_list),
        cmocka_unit_test(test_editor_open),
        cmocka_unit_test(test_diagnostics),
        cmocka_unit_test(test_other_results),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_error_message_cut),
        cmocka_unit_test(test_task_start),
        cmocka_unit_test(test_task_end_success),
        cmocka_unit_test(test_task_end_failure),
        cmocka_unit_test(test_task_end_other),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_task_output_cleaned),
        cmocka_unit_test(test_split_short),
        cmocka_unit_test(test_split_ascii),
        cmocka_unit_test(test_split_multibyte),
        cmocka_unit_test(test_split_newlines),
        cmocka_unit_test(test_split_keeps_clusters),
        cmocka_unit_test(test_split_invalid_input),
        cmocka_unit_test(test_split_formatted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
