/*
 * Unit tests of workspace/chat_stream.c: an agent's streamed chunks into
 * chat messages. Text streamed word by word gives the same messages'
 * content as the whole answer; no message is cut inside a paragraph or a
 * fenced block, and every message has its fences balanced, is valid UTF-8
 * and at most CHAT_PART_MAX code points; tool, plan and permission lines;
 * each stop reason; malformed chunks; the bound on memory; random chunk
 * boundaries (fixed seeds) keep every line.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "workspace/chat_stream.h"
#include "workspace/utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */

static size_t cps(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xc0) != 0x80)
            n++;
    return n;
}

/* A growing string for the tests. */
struct str {
    char *p;
    size_t len;
};

static void str_addn(struct str *s, const char *t, size_t n)
{
    s->p = realloc(s->p, s->len + n + 1);
    assert_non_null(s->p);
    memcpy(s->p + s->len, t, n);
    s->len += n;
    s->p[s->len] = '\0';
}

static void str_add(struct str *s, const char *t)
{
    str_addn(s, t, strlen(t));
}

/* A fence line (up to 3 spaces, then 3 or more ` or ~): its character and
 * run length, written independently of the code under test. */
static int fence_line(const char *l, size_t len, char *ch, size_t *n, int *rest_blank)
{
    size_t i = 0;
    while (i < len && i < 3 && l[i] == ' ')
        i++;
    if (i == len || (l[i] != '`' && l[i] != '~'))
        return 0;
    size_t j = i;
    while (j < len && l[j] == l[i])
        j++;
    if (j - i < 3)
        return 0;
    *ch = l[i];
    *n = j - i;
    *rest_blank = 1;
    for (size_t k = j; k < len; k++)
        if (l[k] != ' ' && l[k] != '\t')
            *rest_blank = 0;
    return 1;
}

/* Every fence opened in t is closed in t. */
static int fences_balanced(const char *t)
{
    int open = 0;
    char och = 0;
    size_t on = 0;
    for (const char *l = t; *l;) {
        const char *e = strchr(l, '\n');
        size_t len = e ? (size_t)(e - l) : strlen(l);
        char ch;
        size_t n;
        int rest_blank;
        if (fence_line(l, len, &ch, &n, &rest_blank)) {
            if (!open) {
                open = 1;
                och = ch;
                on = n;
            } else if (ch == och && n >= on && rest_blank) {
                open = 0;
            }
        }
        l += len + (e != NULL);
    }
    return !open;
}

/* A message as it may be sent. */
static void check_part(const char *t)
{
    assert_non_null(t);
    if (!utf8_is_valid(t, strlen(t)))
        fail_msg("not valid UTF-8: %s", t);
    if (cps(t) > CHAT_PART_MAX)
        fail_msg("%zu code points", cps(t));
    if (!*t)
        fail_msg("an empty message");
    for (const char *p = t; *p; p++)
        if (((unsigned char)*p < 0x20 && *p != '\n' && *p != '\t') || *p == 0x7f)
            fail_msg("control character 0x%02x", (unsigned char)*p);
    if (!fences_balanced(t))
        fail_msg("unbalanced fences in:\n%s", t);
}

/* The lines that carry content: not blank, not a fence; trailing spaces
 * dropped; one per line. */
static void content_lines(struct str *out, const char *t)
{
    for (const char *l = t; *l;) {
        const char *e = strchr(l, '\n');
        size_t len = e ? (size_t)(e - l) : strlen(l);
        char ch;
        size_t n;
        int rb;
        size_t k = len;
        while (k && (l[k - 1] == ' ' || l[k - 1] == '\t'))
            k--;
        if (k && !fence_line(l, k, &ch, &n, &rb)) {
            str_addn(out, l, k);
            str_add(out, "\n");
        }
        l += len + (e != NULL);
    }
}

static int add_json(struct chat_stream *cs, const char *json)
{
    json_object *o = json_tokener_parse(json);
    if (!o)
        fail_msg("test JSON does not parse: %s", json);
    int r = chat_stream_add(cs, o);
    json_object_put(o);
    return r;
}

static void add_msg_n(struct chat_stream *cs, const char *text, size_t len)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "kind", json_object_new_string("message"));
    json_object_object_add(o, "text", json_object_new_string_len(text, (int)len));
    assert_int_equal(chat_stream_add(cs, o), 0);
    json_object_put(o);
}

static void add_msg(struct chat_stream *cs, const char *text)
{
    add_msg_n(cs, text, strlen(text));
}

/* Messages taken, checked, in order. */
struct taken {
    char *m[4096];
    size_t n;
};

static void take_into(struct chat_stream *cs, struct taken *tk)
{
    char *t;
    while ((t = chat_stream_take(cs)) != NULL) {
        check_part(t);
        assert_true(tk->n < 4096);
        tk->m[tk->n++] = t;
    }
    assert_false(chat_stream_pending(cs));
}

/* Only one message: the caller takes once. */
static void take_one(struct chat_stream *cs, struct taken *tk)
{
    char *t = chat_stream_take(cs);
    if (t) {
        check_part(t);
        tk->m[tk->n++] = t;
    }
}

static char *joined(const struct taken *tk, const char *sep)
{
    struct str s = {0};
    str_add(&s, "");
    for (size_t i = 0; i < tk->n; i++) {
        if (i)
            str_add(&s, sep);
        str_add(&s, tk->m[i]);
    }
    return s.p;
}

static void taken_free(struct taken *tk)
{
    for (size_t i = 0; i < tk->n; i++)
        free(tk->m[i]);
    tk->n = 0;
}

/* Word by word: each chunk a word and the whitespace after it. */
static void stream_words(struct chat_stream *cs, const char *text, struct taken *tk)
{
    const char *p = text;
    while (*p) {
        const char *e = p;
        while (*e && *e != ' ' && *e != '\n')
            e++;
        while (*e == ' ' || *e == '\n')
            e++;
        add_msg_n(cs, p, (size_t)(e - p));
        if (tk)
            take_into(cs, tk);
        p = e;
    }
}

static const char answer[] = "Here is the fix for the login page.\n"
                             "\n"
                             "First, change the handler in `src/login.js`:\n"
                             "\n"
                             "```js\n"
                             "function login(user) {\n"
                             "\n"
                             "    return check(user);\n"
                             "}\n"
                             "```\n"
                             "\n"
                             "Then run the tests — all of them:\n"
                             "\n"
                             "~~~\n"
                             "npm test\n"
                             "\n"
                             "npm run lint\n"
                             "~~~\n"
                             "\n"
                             "That should be all. 👍🏽";

/* ------------------------------------------------------------------------ */
/* Text                                                                     */

static void test_words_equal_whole(void **state)
{
    (void)state;
    struct taken tk = {0};
    struct chat_stream *cs = chat_stream_new();
    assert_non_null(cs);
    stream_words(cs, answer, &tk);
    /* Paragraphs came one by one; the last waits for its blank line. */
    assert_true(tk.n >= 4);
    for (size_t i = 0; i < tk.n; i++)
        assert_null(strstr(tk.m[i], "That should"));
    assert_string_equal(tk.m[0], "Here is the fix for the login page.");
    assert_int_equal(chat_stream_end(cs, "end_turn", NULL), 0);
    take_into(cs, &tk);
    assert_true(chat_stream_finished(cs));
    char *all = joined(&tk, "\n\n");
    assert_string_equal(all, "Here is the fix for the login page.\n\n"
                             "First, change the handler in `src/login.js`:\n\n"
                             "```js\nfunction login(user) {\n\n    return check(user);\n}\n```\n\n"
                             "Then run the tests — all of them:\n\n"
                             "~~~\nnpm test\n\nnpm run lint\n~~~\n\n"
                             "That should be all. 👍🏽\n\nDone.");
    free(all);
    taken_free(&tk);
    chat_stream_free(cs);

    /* The whole answer at once: one message, the same text. */
    cs = chat_stream_new();
    add_msg(cs, answer);
    assert_true(chat_stream_pending(cs));
    assert_int_equal(chat_stream_end(cs, "end_turn", NULL), 0);
    take_into(cs, &tk);
    assert_int_equal(tk.n, 1);
    char *want = malloc(sizeof answer + 16);
    snprintf(want, sizeof answer + 16, "%s\n\nDone.", answer);
    assert_string_equal(tk.m[0], want);
    free(want);
    taken_free(&tk);

    /* Word by word but taken only at the end: merged into that one message. */
    chat_stream_free(cs);
    cs = chat_stream_new();
    stream_words(cs, answer, NULL);
    chat_stream_end(cs, "end_turn", NULL);
    take_one(cs, &tk);
    assert_false(chat_stream_pending(cs));
    assert_int_equal(tk.n, 1);
    assert_non_null(strstr(tk.m[0], "```js\nfunction login(user) {\n\n    return"));
    taken_free(&tk);
    chat_stream_free(cs);
}

/* Nothing before the blank line; nothing inside an open fence. */
static void test_waits_for_boundaries(void **state)
{
    (void)state;
    struct chat_stream *cs = chat_stream_new();
    add_msg(cs, "One paragraph,\nstill going");
    assert_false(chat_stream_pending(cs));
    assert_null(chat_stream_take(cs));
    add_msg(cs, ".\n\n```c\nint a;\n\nint b;\n");
    char *t = chat_stream_take(cs);
    assert_string_equal(t, "One paragraph,\nstill going.");
    free(t);
    add_msg(cs, "\n\n\nint c;\n");
    assert_false(chat_stream_pending(cs));
    add_msg(cs, "```\nafter");
    assert_false(chat_stream_pending(cs));
    add_msg(cs, "\n\n");
    t = chat_stream_take(cs);
    assert_string_equal(t, "```c\nint a;\n\nint b;\n\n\n\nint c;\n```\nafter");
    free(t);
    /* "```a```" is inline code, not a fence: the paragraph goes. */
    add_msg(cs, "```x``` here\n\n");
    t = chat_stream_take(cs);
    assert_string_equal(t, "```x``` here");
    free(t);
    /* A longer run does not close a shorter one's fence... */
    add_msg(cs, "````\n```\n\n");
    assert_false(chat_stream_pending(cs));
    add_msg(cs, "````\n\n");
    t = chat_stream_take(cs);
    assert_string_equal(t, "````\n```\n\n````");
    free(t);
    chat_stream_free(cs);
}

/* A 20 KB answer: parts of at most CHAT_PART_MAX, balanced, every line kept. */
static void test_long_answer(void **state)
{
    (void)state;
    struct str a = {0};
    for (int p = 0; p < 50; p++) {
        for (int l = 0; l < 4; l++) {
            char line[128];
            snprintf(line, sizeof line,
                     "Paragraph %d line %d: the quick brown fox jumps — ünïcode.\n", p, l);
            str_add(&a, line);
        }
        str_add(&a, "\n");
        if (p == 10) {
            str_add(&a, "```python\n");
            for (int l = 0; l < 200; l++) {
                char line[128];
                snprintf(line, sizeof line, "    value_%03d = compute(%d)  # a comment of code\n",
                         l, l);
                str_add(&a, line);
                if (l % 40 == 39)
                    str_add(&a, "\n");
            }
            str_add(&a, "```\n\n");
        }
    }
    assert_true(a.len > 20000);
    struct str want = {0};
    content_lines(&want, a.p);
    str_add(&want, "Done.\n");

    for (int mode = 0; mode < 3; mode++) {
        struct chat_stream *cs = chat_stream_new();
        struct taken tk = {0};
        if (mode == 0) {
            add_msg(cs, a.p);
        } else {
            /* 7 bytes or a little more: chunks are whole characters. */
            for (size_t i = 0, n; i < a.len; i += n) {
                n = a.len - i < 7 ? a.len - i : 7;
                while (i + n < a.len && ((unsigned char)a.p[i + n] & 0xc0) == 0x80)
                    n++;
                add_msg_n(cs, a.p + i, n);
            }
            if (mode == 2) /* something went before the end: the long fence too */
                assert_true(chat_stream_pending(cs));
        }
        chat_stream_end(cs, "end_turn", NULL);
        take_into(cs, &tk);
        assert_true(tk.n >= 5);
        /* Outside the code block, parts end where paragraphs end. */
        for (size_t i = 0; i < tk.n; i++) {
            const char *last = strrchr(tk.m[i], '\n');
            last = last ? last + 1 : tk.m[i];
            if (strncmp(last, "Paragraph ", 10) == 0 && !strstr(last, " line 3: "))
                fail_msg("mode %d: part %zu ends inside a paragraph: %s", mode, i, last);
        }
        struct str got = {0};
        str_add(&got, "");
        for (size_t i = 0; i < tk.n; i++)
            content_lines(&got, tk.m[i]);
        assert_string_equal(got.p, want.p);
        /* The code block was cut: closed at the end of one part and
         * reopened, with its language, in the next. */
        int opened = 0;
        for (size_t i = 0; i < tk.n; i++)
            for (const char *p = tk.m[i]; (p = strstr(p, "```python\n")) != NULL; p++)
                opened++;
        assert_true(opened >= 2);
        free(got.p);
        taken_free(&tk);
        chat_stream_free(cs);
    }
    free(want.p);
    free(a.p);
}

/* Many paragraphs at once: cut between paragraphs, not inside one. Each
 * paragraph's last line ends with "¶". */
static void test_parts_end_at_paragraphs(void **state)
{
    (void)state;
    struct str a = {0};
    str_add(&a, "");
    for (int p = 0; p < 80; p++) {
        int lines = 1 + (p * 7) % 5;
        for (int l = 0; l < lines; l++) {
            char line[160];
            snprintf(line, sizeof line, "%d.%d %.*s%s\n", p, l, 10 + (p * 13 + l * 29) % 90,
                     "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor "
                     "incididunt ut labore et dolore",
                     l == lines - 1 ? " ¶" : "");
            str_add(&a, line);
        }
        str_add(&a, "\n");
    }
    struct chat_stream *cs = chat_stream_new();
    add_msg(cs, a.p);
    chat_stream_end(cs, "end_turn", NULL);
    struct taken tk = {0};
    take_into(cs, &tk);
    assert_true(tk.n >= 3);
    for (size_t i = 0; i + 1 < tk.n; i++) {
        size_t n = strlen(tk.m[i]);
        if (n < 3 || strcmp(tk.m[i] + n - 3, " ¶") != 0)
            fail_msg("part %zu ends inside a paragraph: ...%s", i, tk.m[i] + (n > 40 ? n - 40 : 0));
    }
    taken_free(&tk);
    chat_stream_free(cs);
    free(a.p);
}

/* An open fence that grows past a part goes before it is closed. */
static void test_open_fence_overflows(void **state)
{
    (void)state;
    struct chat_stream *cs = chat_stream_new();
    add_msg(cs, "~~~~sh\n");
    size_t sent = 0;
    while (!chat_stream_pending(cs)) {
        add_msg(cs, "echo some output of a script 0123456789\n");
        sent += 40;
        assert_true(sent < 6000);
    }
    assert_true(sent > CHAT_STREAM_BLOCK_MAX - 100);
    char *t = chat_stream_take(cs);
    check_part(t);
    assert_true(!strncmp(t, "~~~~sh\necho", 11));
    size_t n = strlen(t);
    assert_string_equal(t + n - 5, "\n~~~~");
    free(t);
    add_msg(cs, "done\n~~~~\n\nok\n\n");
    t = chat_stream_take(cs);
    check_part(t);
    assert_true(!strncmp(t, "~~~~sh\n", 7));
    assert_non_null(strstr(t, "done\n~~~~\n\nok"));
    free(t);
    chat_stream_free(cs);
}

/* Both sides of a cut taken together: the text as it came, without the
 * fence closed and reopened, nor a blank line where there was none. */
static void test_cut_rejoined(void **state)
{
    (void)state;
    for (int fenced = 0; fenced < 2; fenced++) {
        struct chat_stream *cs = chat_stream_new();
        struct str a = {0};
        str_add(&a, fenced ? "~~~~sh\n" : "");
        add_msg(cs, a.p);
        while (!chat_stream_pending(cs)) {
            const char *line = "echo some output of a script 0123456789\n";
            str_add(&a, line);
            add_msg(cs, line);
        }
        const char *tail = fenced ? "end\n~~~~\n\n" : "end\n\n";
        str_add(&a, tail);
        add_msg(cs, tail);
        char *t = chat_stream_take(cs);
        check_part(t);
        a.p[a.len - 2] = '\0'; /* the blank line is the boundary */
        assert_string_equal(t, a.p);
        assert_false(chat_stream_pending(cs));
        free(t);
        free(a.p);
        chat_stream_free(cs);
    }
}

/* A line longer than a part, without any newline: cut at characters, no
 * emoji, flag or accent split. */
static void test_long_line(void **state)
{
    (void)state;
    static const char *const units[] = {"a", "é", "🚀", "👍🏽", "🇫🇷", "e\xcc\x81"};
    for (size_t u = 0; u < 6; u++) {
        struct str a = {0};
        for (int i = 0; i < 5000; i++)
            str_add(&a, units[u]);
        struct chat_stream *cs = chat_stream_new();
        for (size_t i = 0; i < a.len; i += 1000) {
            size_t n = a.len - i < 1000 ? a.len - i : 1000;
            /* Chunks at code point boundaries, as JSON strings are. */
            while (i + n < a.len && ((unsigned char)a.p[i + n] & 0xc0) == 0x80)
                n--;
            add_msg_n(cs, a.p + i, n);
            i -= 1000 - n;
        }
        struct taken tk = {0};
        take_into(cs, &tk);
        assert_true(tk.n >= 1);
        chat_stream_end(cs, "end_turn", NULL);
        take_into(cs, &tk);
        struct str got = {0};
        str_add(&got, "");
        for (size_t i = 0; i < tk.n; i++) {
            /* Every part starts with a whole unit. */
            assert_true(!strncmp(tk.m[i], units[u], strlen(units[u])) ||
                        !strncmp(tk.m[i], "Done.", 5));
            str_add(&got, tk.m[i]);
        }
        str_add(&a, "\n\nDone.");
        /* The last part merges the end line after a blank line. */
        assert_string_equal(got.p, a.p);
        free(got.p);
        free(a.p);
        taken_free(&tk);
        chat_stream_free(cs);
    }
}

/* ------------------------------------------------------------------------ */
/* Tool, plan, permission, end                                              */

static void test_tools(void **state)
{
    (void)state;
    struct chat_stream *cs = chat_stream_new();
    add_msg(cs, "Let me run the tests");
    assert_false(chat_stream_pending(cs));
    assert_int_equal(add_json(cs, "{\"kind\":\"tool\",\"toolCallId\":\"t1\",\"title\":\"npm "
                                  "test\",\"status\":\"pending\"}"),
                     0);
    add_json(cs, "{\"kind\":\"tool\",\"toolCallId\":\"t1\",\"title\":\"npm "
                 "test\",\"status\":\"in_progress\"}");
    add_json(cs, "{\"kind\":\"tool\",\"toolCallId\":\"t1\",\"status\":\"completed\"}");
    add_json(cs, "{\"kind\":\"tool\",\"toolCallId\":\"t2\",\"title\":\"Read "
                 "src/a.c\",\"status\":\"in_progress\"}");
    add_json(cs, "{\"kind\":\"tool\",\"toolCallId\":\"t2\",\"title\":\"Read "
                 "src/a.c\",\"status\":\"failed\"}");
    add_json(cs, "{\"kind\":\"tool\",\"toolCallId\":\"t2\",\"status\":\"failed\"}");
    add_json(cs, "{\"kind\":\"tool\",\"toolCallId\":\"t3\",\"title\":\"Quick\",\"status\":"
                 "\"completed\"}");
    add_json(cs, "{\"kind\":\"tool\",\"toolCallId\":\"t4\",\"title\":\"Write "
                 "x\\ny\",\"status\":\"failed\"}");
    add_json(cs, "{\"kind\":\"tool\",\"toolCallId\":\"t5\"}");
    /* A failed update without a title (ACP sends only what changed) names the call. */
    add_json(cs, "{\"kind\":\"tool\",\"toolCallId\":\"t6\",\"title\":\"make "
                 "deploy\",\"status\":\"pending\"}");
    add_json(cs, "{\"kind\":\"tool\",\"toolCallId\":\"t6\",\"status\":\"failed\"}");
    add_msg(cs, "The tests pass.");
    chat_stream_end(cs, "end_turn", NULL);
    char *t = chat_stream_take(cs);
    assert_string_equal(t, "Let me run the tests\n\n"
                           "Running: npm test\n"
                           "Running: Read src/a.c\n"
                           "Failed: Read src/a.c\n"
                           "Failed: Write x y\n"
                           "Running: a tool\n"
                           "Running: make deploy\n"
                           "Failed: make deploy\n\n"
                           "The tests pass.\n\nDone.");
    free(t);
    assert_true(chat_stream_finished(cs));
    chat_stream_free(cs);

    /* Tool lines between takes: one message each time. */
    cs = chat_stream_new();
    add_json(cs,
             "{\"kind\":\"tool\",\"toolCallId\":\"a\",\"title\":\"ls\",\"status\":\"pending\"}");
    t = chat_stream_take(cs);
    assert_string_equal(t, "Running: ls");
    free(t);
    add_json(cs,
             "{\"kind\":\"tool\",\"toolCallId\":\"a\",\"title\":\"ls\",\"status\":\"pending\"}");
    assert_false(chat_stream_pending(cs));
    chat_stream_free(cs);
}

/* More tool calls than remembered: the oldest are forgotten, nothing leaks. */
static void test_many_tools(void **state)
{
    (void)state;
    struct chat_stream *cs = chat_stream_new();
    char j[160];
    for (int i = 0; i < CHAT_STREAM_TOOLS + 50; i++) {
        snprintf(j, sizeof j,
                 "{\"kind\":\"tool\",\"toolCallId\":\"id%d\",\"title\":\"t%d\",\"status\":"
                 "\"pending\"}",
                 i, i);
        assert_int_equal(add_json(cs, j), 0);
        free(chat_stream_take(cs));
    }
    /* The newest is remembered: no second line. */
    snprintf(j, sizeof j,
             "{\"kind\":\"tool\",\"toolCallId\":\"id%d\",\"title\":\"t\",\"status\":\"pending\"}",
             CHAT_STREAM_TOOLS + 49);
    add_json(cs, j);
    assert_false(chat_stream_pending(cs));
    chat_stream_free(cs);
}

static void test_plan(void **state)
{
    (void)state;
    static const char plan1[] =
        "{\"kind\":\"plan\",\"entries\":[{\"content\":\"Read the code\",\"status\":\"completed\"},"
        "{\"content\":\"Fix the bug\",\"status\":\"in_progress\"},"
        "{\"content\":\"Run the tests\",\"status\":\"pending\"}]}";
    static const char plan2[] =
        "{\"kind\":\"plan\",\"entries\":[{\"content\":\"Read the code\",\"status\":\"completed\"},"
        "{\"content\":\"Fix the bug\",\"status\":\"completed\"},"
        "{\"content\":\"Run the tests\",\"status\":\"in_progress\"}]}";
    struct chat_stream *cs = chat_stream_new();
    assert_int_equal(add_json(cs, plan1), 0);
    char *t = chat_stream_take(cs);
    assert_string_equal(t, "Plan:\n1. Read the code (done)\n2. Fix the bug (in progress)\n"
                           "3. Run the tests");
    free(t);
    add_json(cs, plan1);
    assert_false(chat_stream_pending(cs));
    add_json(cs, plan2);
    add_json(cs, plan1); /* replaces plan2 while untaken */
    t = chat_stream_take(cs);
    assert_string_equal(t, "Plan:\n1. Read the code (done)\n2. Fix the bug (in progress)\n"
                           "3. Run the tests");
    free(t);
    add_json(cs, plan2);
    t = chat_stream_take(cs);
    assert_non_null(strstr(t, "2. Fix the bug (done)\n3. Run the tests (in progress)"));
    free(t);
    /* Long plans are cut. */
    struct str big = {0};
    str_add(&big, "{\"kind\":\"plan\",\"entries\":[");
    for (int i = 0; i < 40; i++) {
        char e[64];
        snprintf(e, sizeof e, "%s{\"content\":\"step %d\"}", i ? "," : "", i);
        str_add(&big, e);
    }
    str_add(&big, "]}");
    add_json(cs, big.p);
    t = chat_stream_take(cs);
    check_part(t);
    assert_non_null(strstr(t, "\n15. step 14\n…and 25 more"));
    free(t);
    free(big.p);
    chat_stream_free(cs);
}

static void test_permission(void **state)
{
    (void)state;
    struct chat_stream *cs = chat_stream_new();
    add_msg(cs, "I need to run a command");
    assert_int_equal(add_json(cs, "{\"kind\":\"permission\",\"approvalId\":7,\"toolCallId\":\"t\","
                                  "\"title\":\"Run npm test\",\"options\":[\"allow_once\","
                                  "\"allow_always\",\"deny\"],\"expiresAt\":1}"),
                     0);
    char *t = chat_stream_take(cs);
    assert_string_equal(t, "I need to run a command\n\n"
                           "Approval 7: Run npm test\nReply yes 7, always 7 or no 7.");
    free(t);
    add_json(cs, "{\"kind\":\"permission\",\"approvalId\":8,\"title\":\"rm -rf build\","
                 "\"options\":[\"deny\",\"allow_once\"]}");
    t = chat_stream_take(cs);
    assert_string_equal(t, "Approval 8: rm -rf build\nReply yes 8 or no 8.");
    free(t);
    add_json(cs,
             "{\"kind\":\"permission\",\"approvalId\":9,\"title\":\"x\",\"options\":[\"deny\"]}");
    t = chat_stream_take(cs);
    assert_string_equal(t, "Approval 9: x\nReply no 9.");
    free(t);
    /* Resolved before it was taken: not shown. */
    add_json(cs, "{\"kind\":\"permission\",\"approvalId\":10,\"title\":\"y\"}");
    assert_true(chat_stream_pending(cs));
    assert_int_equal(add_json(cs, "{\"kind\":\"permission_resolved\",\"approvalId\":10,"
                                  "\"outcome\":\"allowed_once\",\"decidedBy\":\"editor\"}"),
                     0);
    assert_false(chat_stream_pending(cs));
    /* Resolved after: nothing more. */
    add_json(cs, "{\"kind\":\"permission_resolved\",\"approvalId\":7,\"outcome\":\"denied\"}");
    assert_false(chat_stream_pending(cs));
    chat_stream_free(cs);
}

static void test_stop_reasons(void **state)
{
    (void)state;
    static const char *const cases[][3] = {
        {"end_turn", NULL, "Done."},
        {"cancelled", NULL, "Cancelled."},
        {"cancelled", "Turn timed out.", "Cancelled. Turn timed out."},
        {"max_tokens", NULL, "Stopped: the agent hit its token limit."},
        {"max_turn_requests", NULL, "Stopped: the agent hit its limit of steps for one turn."},
        {"refusal", NULL, "Stopped: the agent refused to go on."},
        {"error", "spawn npx ENOENT", "The agent failed: spawn npx ENOENT"},
        {"error", NULL, "The agent failed."},
        {"error", "", "The agent failed."},
        {"error", "line\nbreak\x1b[31m", "The agent failed: line break?[31m"},
        {"weird", NULL, "Ended (weird)."},
        {NULL, NULL, "Ended (no reason given)."},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct chat_stream *cs = chat_stream_new();
        add_msg(cs, "Partial answer");
        assert_int_equal(chat_stream_end(cs, cases[i][0], cases[i][1]), 0);
        char *t = chat_stream_take(cs);
        char want[256];
        snprintf(want, sizeof want, "Partial answer\n\n%s", cases[i][2]);
        check_part(t);
        assert_string_equal(t, want);
        free(t);
        assert_true(chat_stream_finished(cs));
        /* After the end: nothing more is taken in. */
        assert_int_equal(add_json(cs, "{\"kind\":\"message\",\"text\":\"late\\n\\n\"}"), 1);
        assert_int_equal(chat_stream_end(cs, "end_turn", NULL), 0);
        assert_false(chat_stream_pending(cs));
        assert_null(chat_stream_take(cs));
        chat_stream_free(cs);
    }
    /* An end inside an open fence closes it. */
    struct chat_stream *cs = chat_stream_new();
    add_msg(cs, "```\nhalf");
    chat_stream_end(cs, "cancelled", NULL);
    char *t = chat_stream_take(cs);
    assert_string_equal(t, "```\nhalf\n```\n\nCancelled.");
    free(t);
    chat_stream_free(cs);
    /* Nothing said at all. */
    cs = chat_stream_new();
    assert_false(chat_stream_finished(cs));
    chat_stream_end(cs, "end_turn", NULL);
    assert_false(chat_stream_finished(cs));
    t = chat_stream_take(cs);
    assert_string_equal(t, "Done.");
    free(t);
    assert_true(chat_stream_finished(cs));
    chat_stream_free(cs);
}

static void test_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "[1,2]",
        "\"message\"",
        "{}",
        "{\"kind\":5,\"text\":\"x\\n\\n\"}",
        "{\"kind\":\"message\"}",
        "{\"kind\":\"message\",\"text\":7}",
        "{\"kind\":\"thought\",\"text\":\"secret thinking\\n\\n\"}",
        "{\"kind\":\"nonsense\",\"text\":\"x\\n\\n\"}",
        "{\"kind\":\"tool\",\"title\":\"no id\",\"status\":\"pending\"}",
        "{\"kind\":\"tool\",\"toolCallId\":\"\",\"status\":\"pending\"}",
        "{\"kind\":\"tool\",\"toolCallId\":5,\"status\":\"pending\"}",
        "{\"kind\":\"tool\",\"toolCallId\":\"x\",\"status\":\"exploded\"}",
        "{\"kind\":\"plan\"}",
        "{\"kind\":\"plan\",\"entries\":{}}",
        "{\"kind\":\"plan\",\"entries\":[]}",
        "{\"kind\":\"plan\",\"entries\":[5,{\"status\":\"pending\"}]}",
        "{\"kind\":\"permission\",\"title\":\"no id\"}",
        "{\"kind\":\"permission\",\"approvalId\":\"7\",\"title\":\"string id\"}",
        "{\"kind\":\"permission\",\"approvalId\":-3,\"title\":\"negative\"}",
        "{\"kind\":\"permission\",\"approvalId\":3,\"options\":[\"maybe\"]}",
        "{\"kind\":\"permission_resolved\"}",
    };
    struct chat_stream *cs = chat_stream_new();
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_object *o = json_tokener_parse(bad[i]);
        assert_non_null(o);
        if (chat_stream_add(cs, o) != 1)
            fail_msg("not ignored: %s", bad[i]);
        json_object_put(o);
        assert_false(chat_stream_pending(cs));
    }
    assert_int_equal(chat_stream_add(cs, NULL), 1);
    assert_int_equal(chat_stream_add(NULL, NULL), 1);
    chat_stream_end(cs, "end_turn", NULL);
    char *t = chat_stream_take(cs);
    assert_string_equal(t, "Done.");
    free(t);
    chat_stream_free(cs);
    chat_stream_free(NULL);
}

/* Agent text is cleaned: CR LF as LF, control and bidi characters as "?",
 * invalid UTF-8 repaired; tab kept. */
static void test_cleaning(void **state)
{
    (void)state;
    struct chat_stream *cs = chat_stream_new();
    add_msg(cs, "");
    assert_false(chat_stream_pending(cs));
    add_msg(cs, "a\r\nb\tc\x07 \xe2\x80\xae rtl \xff end\r\n\r\n");
    char *t = chat_stream_take(cs);
    assert_string_equal(t, "a\nb\tc? ? rtl \xef\xbf\xbd end");
    free(t);
    chat_stream_free(cs);
}

/* Another chunk in the middle of a fence: the fence is closed before it and
 * reopened after. */
static void test_event_inside_fence(void **state)
{
    (void)state;
    struct chat_stream *cs = chat_stream_new();
    add_msg(cs, "```c\nint a;\n");
    add_json(cs,
             "{\"kind\":\"tool\",\"toolCallId\":\"t\",\"title\":\"cc\",\"status\":\"pending\"}");
    char *t = chat_stream_take(cs);
    assert_string_equal(t, "```c\nint a;\n```\n\nRunning: cc");
    free(t);
    add_msg(cs, "int b;\n```\n\nafter\n\n");
    t = chat_stream_take(cs);
    assert_string_equal(t, "```c\nint b;\n```\n\nafter");
    free(t);
    chat_stream_free(cs);
}

/* More than CHAT_STREAM_KEEP bytes untaken: the newest are kept, the
 * message says how much was dropped, and nothing else is lost. */
static void test_memory_bound(void **state)
{
    (void)state;
    struct chat_stream *cs = chat_stream_new();
    add_json(cs, "{\"kind\":\"permission\",\"approvalId\":1,\"title\":\"keep me\"}");
    size_t total = 0;
    char para[128];
    for (int i = 0; i < 3000; i++) {
        snprintf(para, sizeof para, "Paragraph %04d of a very long answer — é.\n\n", i);
        add_msg(cs, para);
        total += cps(para) - 2;
    }
    chat_stream_end(cs, "end_turn", NULL);
    struct taken tk = {0};
    take_into(cs, &tk);
    unsigned long dropped = 0;
    assert_int_equal(sscanf(tk.m[0], "[… %lu characters not shown]", &dropped), 1);
    size_t shown = 0, bytes = 0;
    for (size_t i = 0; i < tk.n; i++) {
        bytes += strlen(tk.m[i]);
        for (const char *p = tk.m[i]; (p = strstr(p, "Paragraph ")) != NULL; p++)
            shown += cps("Paragraph 0000 of a very long answer — é.");
    }
    assert_true(bytes <= CHAT_STREAM_KEEP + 8192);
    assert_int_equal(dropped + shown, total);
    assert_non_null(strstr(tk.m[0], "Approval 1: keep me"));
    assert_non_null(strstr(tk.m[tk.n - 1], "Paragraph 2999 of a very long answer — é.\n\nDone."));
    taken_free(&tk);
    chat_stream_free(cs);

    /* Tool lines alone are bounded too. */
    cs = chat_stream_new();
    char j[512];
    for (int i = 0; i < 3000; i++) {
        snprintf(j, sizeof j,
                 "{\"kind\":\"tool\",\"toolCallId\":\"%d\",\"title\":\"%0150d\",\"status\":"
                 "\"pending\"}",
                 i, i);
        assert_int_equal(add_json(cs, j), 0);
    }
    take_into(cs, &tk);
    bytes = 0;
    for (size_t i = 0; i < tk.n; i++)
        bytes += strlen(tk.m[i]);
    assert_true(bytes <= CHAT_STREAM_KEEP + 8192);
    assert_true(!strncmp(tk.m[0], "[… ", 5));
    taken_free(&tk);
    chat_stream_free(cs);
}

/* ------------------------------------------------------------------------ */
/* Random chunk boundaries                                                  */

static uint32_t rng;

static uint32_t rnd(uint32_t n)
{
    rng = rng * 1103515245u + 12345u;
    return (rng >> 8) % n;
}

static void random_answer(struct str *a)
{
    static const char *const words[] = {"the", "fix",    "é",     "🚀",   "👍🏽",
                                        "🇫🇷",  "日本語", "code",  "`x`", "**bold**",
                                        "-",   "a\tb",   "naïve", "~~",  "``"};
    int paras = 3 + (int)rnd(20);
    str_add(a, "");
    for (int p = 0; p < paras; p++) {
        int kind = (int)rnd(6);
        if (kind == 0) {
            str_add(a, rnd(2) ? "```sh\n" : "~~~\n");
            const char *close = a->p[a->len - 2] == 'h' ? "```\n" : "~~~\n";
            int lines = 1 + (int)rnd(kind == 0 && rnd(4) == 0 ? 200 : 12);
            for (int l = 0; l < lines; l++) {
                if (rnd(6) == 0)
                    str_add(a, "\n");
                int n = (int)rnd(10);
                for (int w = 0; w < n; w++) {
                    str_add(a, words[rnd(15)]);
                    str_add(a, " ");
                }
                str_add(a, "line\n");
            }
            str_add(a, close);
        } else {
            int lines = 1 + (int)rnd(kind == 1 ? 120 : 4);
            for (int l = 0; l < lines; l++) {
                int n = 1 + (int)rnd(25);
                for (int w = 0; w < n; w++) {
                    if (w)
                        str_add(a, " ");
                    str_add(a, words[rnd(15)]);
                }
                str_add(a, "\n");
            }
        }
        str_add(a, rnd(5) ? "\n" : "\n\n\n");
    }
}

static void test_random_boundaries(void **state)
{
    (void)state;
    for (uint32_t seed = 1; seed <= 300; seed++) {
        rng = seed;
        struct str a = {0};
        random_answer(&a);
        struct str want = {0};
        content_lines(&want, a.p);
        struct chat_stream *cs = chat_stream_new();
        struct taken tk = {0};
        size_t ntools = 0;
        for (size_t i = 0; i < a.len;) {
            size_t n = 1 + rnd(rnd(8) == 0 ? 3000 : 40);
            if (n > a.len - i)
                n = a.len - i;
            while (i + n < a.len && ((unsigned char)a.p[i + n] & 0xc0) == 0x80)
                n++;
            add_msg_n(cs, a.p + i, n);
            i += n;
            /* Tools between lines (a partial line would be cut there). */
            if (a.p[i - 1] == '\n' && rnd(10) == 0) {
                char j[128];
                snprintf(j, sizeof j,
                         "{\"kind\":\"tool\",\"toolCallId\":\"%zu\",\"title\":\"tool\","
                         "\"status\":\"pending\"}",
                         ntools++);
                add_json(cs, j);
            }
            if (rnd(3) == 0)
                take_one(cs, &tk);
            assert_true(tk.n < 4000);
        }
        chat_stream_end(cs, "end_turn", NULL);
        take_into(cs, &tk);
        struct str got = {0};
        str_add(&got, "");
        size_t tools_seen = 0;
        for (size_t i = 0; i < tk.n; i++) {
            struct str lines = {0};
            str_add(&lines, "");
            content_lines(&lines, tk.m[i]);
            /* Tool lines and the end are not the answer's. */
            for (char *l = lines.p; *l;) {
                char *e = strchr(l, '\n');
                if (!strncmp(l, "Running: tool\n", 14))
                    tools_seen++;
                else if (strncmp(l, "Done.\n", 6) != 0)
                    str_addn(&got, l, (size_t)(e - l + 1));
                l = e + 1;
            }
            free(lines.p);
        }
        if (strcmp(got.p, want.p ? want.p : "") != 0)
            fail_msg("seed %u: content differs", seed);
        assert_int_equal(tools_seen, ntools);
        assert_string_equal(tk.m[tk.n - 1] + strlen(tk.m[tk.n - 1]) - 5, "Done.");
        free(got.p);
        free(want.p);
        free(a.p);
        taken_free(&tk);
        chat_stream_free(cs);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_words_equal_whole),
        cmocka_unit_test(test_waits_for_boundaries),
        cmocka_unit_test(test_long_answer),
        cmocka_unit_test(test_parts_end_at_paragraphs),
        cmocka_unit_test(test_open_fence_overflows),
        cmocka_unit_test(test_cut_rejoined),
        cmocka_unit_test(test_long_line),
        cmocka_unit_test(test_tools),
        cmocka_unit_test(test_many_tools),
        cmocka_unit_test(test_plan),
        cmocka_unit_test(test_permission),
        cmocka_unit_test(test_stop_reasons),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_cleaning),
        cmocka_unit_test(test_event_inside_fence),
        cmocka_unit_test(test_memory_bound),
        cmocka_unit_test(test_random_boundaries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
