/*
 * chat_parse: chat words into the commands they stand for, or into a reply
 * that needs no command (help, usage, a suggestion) (see chat.h). The
 * phone-sized text of answers is chat_format.c's.
 *
 * Decisions (the contract leaves them open):
 * - A leading "/" ("/status", as some bridges send) and a leading "git"
 *   before status, log or diff ("git status", the contract's example) are
 *   accepted. Only ASCII whitespace separates and surrounds words.
 * - The word is case-insensitive; its argument is not. Task names are
 *   case-sensitive because they come from settings, where "Test" and "test"
 *   may be two tasks: "run Test" answers with a suggestion of "test".
 * - An unknown word is compared (Levenshtein, on code points, ASCII case
 *   folded) with every word, allowed or not, so a user learns the word
 *   exists; a suggestion the token does not allow says so. Ties prefer an
 *   allowed word, then the order of the help list. A suggestion needs a
 *   distance of at most 2 and smaller than the word's length.
 * - Words that take no argument refuse one with their usage, so "status x"
 *   does not silently run something else than what was typed.
 * - Arguments must be on one line (no control characters).
 * - "open path:12" opens at line 12; "problems [path]" passes the path on.
 * - Messages over CHAT_TEXT_MAX code points, and those that are not UTF-8
 *   or hold a NUL, are refused before any parsing.
 * - git.diff shows counts only, never the patch: a patch is too long for a
 *   phone, so the reply ends with "Use the app for the full diff."
 * - With a default agent (chat_env.agent), whatever is not a command in
 *   the strict sense of chat.h goes to the agent: a phone user writes
 *   prose, and "log in page is broken" must not answer with a usage line.
 *   A leading "/" keeps the old meaning (always a command, with usage and
 *   suggestions), so a typo can still be asked about. Suggestions for a
 *   message the agent scope keeps from the agent are given only for a
 *   single word: prose ("so what") would suggest nonsense ("no").
 * - ask, new and stop are a table of their own, not words of the help
 *   list: without an agent they only answer that none is configured, and
 *   the suggestions for unknown words stay what they were.
 * - git.log shows relative times up to 30 days ("2h ago"), then the UTC date.
 * - Durations: under 10 s with one decimal, then whole seconds, from 120 s
 *   "2 min 5 s", from an hour "1 h 2 min" (so a 600 s timeout reads
 *   "10 min").
 * - Text from results (paths, summaries, messages, output) is repaired to
 *   UTF-8 and its control and bidi-override characters replaced, so a file
 *   name cannot break lines or reorder a reply.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "workspace/chat.h"
#include "workspace/chat_impl.h"
#include "workspace/commands.h"
#include "workspace/utf8.h"

/* ------------------------------------------------------------------------ */
/* Edit distance, for suggestions */

static size_t to_cps(const char *s, size_t len, uint32_t *out, size_t max, int fold)
{
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        if (n == max)
            return max + 1;
        uint32_t c;
        i += chat_cp_at(s + i, &c);
        if (fold && c >= 'A' && c <= 'Z')
            c += 'a' - 'A';
        out[n++] = c;
    }
    return n;
}

/* Levenshtein distance with ASCII case folded; SIZE_MAX when either string
 * is too long to be worth comparing. Both must be valid UTF-8. */
static size_t distance(const char *a, size_t alen, const char *b, size_t blen)
{
    uint32_t x[CMP_MAX_CP], y[CMP_MAX_CP];
    size_t row[CMP_MAX_CP + 1];
    size_t n = to_cps(a, alen, x, CMP_MAX_CP, 1), m = to_cps(b, blen, y, CMP_MAX_CP, 1);
    if (n > CMP_MAX_CP || m > CMP_MAX_CP)
        return SIZE_MAX;
    for (size_t j = 0; j <= m; j++)
        row[j] = j;
    for (size_t i = 1; i <= n; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= m; j++) {
            size_t up = row[j];
            size_t best = diag + (x[i - 1] != y[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[m];
}

/* Close enough to suggest: at most 2 edits, and fewer edits than the
 * candidate has characters (so "b" never suggests task "a"). */
static int near(size_t d, const char *cand)
{
    return d <= 2 && d < chat_cp_count(cand, strlen(cand));
}

/* ------------------------------------------------------------------------ */
/* Words */

enum word_id {
    W_STATUS,
    W_LOG,
    W_DIFF,
    W_TASKS,
    W_RUN,
    W_CANCEL,
    W_OPEN,
    W_PROBLEMS,
    W_NOTIFY,
    W_APPROVALS,
    W_YES,
    W_ALWAYS,
    W_NO,
    W_HELP,
    W_COUNT
};

struct word_def {
    const char *word;
    const char *usage;
    const char *what;
    unsigned scope;      /* 0: always allowed */
    const char *command; /* NULL for words answered here */
};

/* In the order help lists them. */
static const struct word_def words[W_COUNT] = {
    [W_STATUS] = {"status", "status", "branch and changed files", CMD_SCOPE_READ, "git.status"},
    [W_LOG] = {"log", "log [n]", "last n commits (1 to 100, default 10)", CMD_SCOPE_READ,
               "git.log"},
    [W_DIFF] = {"diff", "diff [path]", "changed files with line counts", CMD_SCOPE_READ,
                "git.diff"},
    [W_TASKS] = {"tasks", "tasks", "configured tasks", CMD_SCOPE_READ, "task.list"},
    [W_RUN] = {"run", "run <task>", "start a task", CMD_SCOPE_RUN, "task.run"},
    [W_CANCEL] = {"cancel", "cancel", "stop the task you started last", CMD_SCOPE_RUN, NULL},
    [W_OPEN] = {"open", "open <path>[:line]", "open a file in the editor", CMD_SCOPE_EDITOR,
                "editor.open"},
    [W_PROBLEMS] = {"problems", "problems [path]", "errors and warnings from the editor",
                    CMD_SCOPE_READ, "editor.diagnostics"},
    [W_NOTIFY] = {"notify", "notify on|off", "a message when a task ends", CMD_SCOPE_READ, NULL},
    [W_APPROVALS] = {"approvals", "approvals", "actions waiting for your approval",
                     CMD_SCOPE_APPROVE, "approvals.list"},
    [W_YES] = {"yes", "yes <n>", "allow approval n once", CMD_SCOPE_APPROVE, "approve"},
    [W_ALWAYS] = {"always", "always <n>", "allow approval n, and the same again until restart",
                  CMD_SCOPE_APPROVE, "approve"},
    [W_NO] = {"no", "no <n>", "deny approval n", CMD_SCOPE_APPROVE, "approve"},
    [W_HELP] = {"help", "help [word]", "this list", 0, NULL},
};

enum agent_word_id { A_ASK, A_NEW, A_STOP, A_COUNT };

/* The agent's words, listed after the others when an agent is configured
 * and the token may use it. */
static const struct word_def agent_words[A_COUNT] = {
    [A_ASK] = {"ask", "ask <text>", "ask the agent, even when the text starts like a command",
               CMD_SCOPE_AGENT, NULL},
    [A_NEW] = {"new", "new [text]", "start a new conversation with the agent", CMD_SCOPE_AGENT,
               NULL},
    [A_STOP] = {"stop", "stop", "stop the agent's answer", CMD_SCOPE_AGENT, NULL},
};

#define AGENT_SCOPE_TEXT                                                                           \
    "Asking the agent needs a token with the \"agent\" scope. Send \"help\" for the list."
#define NO_AGENT_TEXT                                                                              \
    "No agent is configured. Add one in the companion.agents setting and name it in "              \
    "companion.defaultAgent."

static int allowed(const struct word_def *w, unsigned scopes)
{
    return (w->scope & scopes) == w->scope;
}

static const char *scope_name(unsigned scope)
{
    return scope == CMD_SCOPE_RUN       ? "run"
           : scope == CMD_SCOPE_EDITOR  ? "editor"
           : scope == CMD_SCOPE_APPROVE ? "approve"
           : scope == CMD_SCOPE_AGENT   ? "agent"
                                        : "read";
}

static int find_word(const char *w, size_t len)
{
    for (int i = 0; i < W_COUNT; i++)
        if (strlen(words[i].word) == len && strncasecmp(words[i].word, w, len) == 0)
            return i;
    return -1;
}

static int find_agent_word(const char *w, size_t len)
{
    for (int i = 0; i < A_COUNT; i++)
        if (strlen(agent_words[i].word) == len && strncasecmp(agent_words[i].word, w, len) == 0)
            return i;
    return -1;
}

/* The agent may be asked: one is configured and the token has the scope. */
static int agent_usable(const struct chat_env *env)
{
    return env->agent && (env->scopes & CMD_SCOPE_AGENT);
}

static void trim(const char **s, size_t *len)
{
    while (*len && chat_is_space(**s)) {
        (*s)++;
        (*len)--;
    }
    while (*len && chat_is_space((*s)[*len - 1]))
        (*len)--;
}

/* Splits s into its first word and the trimmed rest. */
static void first_word(const char *s, size_t len, size_t *wlen, const char **rest, size_t *rlen)
{
    size_t i = 0;
    while (i < len && !chat_is_space(s[i]))
        i++;
    *wlen = i;
    *rest = s + i;
    *rlen = len - i;
    trim(rest, rlen);
}

static int one_line(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return 1;
}

/* ------------------------------------------------------------------------ */
/* Replies */

static int reply_sb(struct chat_request *out, struct sb *b)
{
    out->kind = CHAT_REPLY;
    out->text = chat_sb_finish(b);
    return out->text ? 0 : -1;
}

static int reply(struct chat_request *out, const char *text)
{
    struct sb b = {0};
    chat_sb_puts(&b, text);
    return reply_sb(out, &b);
}

static void put_usage(struct sb *b, const struct word_def *w)
{
    chat_sb_puts(b, w->usage);
    chat_sb_puts(b, " — ");
    chat_sb_puts(b, w->what);
}

static int usage_reply(struct chat_request *out, const struct word_def *w)
{
    struct sb b = {0};
    chat_sb_puts(&b, "Usage: ");
    put_usage(&b, w);
    chat_sb_puts(&b, ".");
    return reply_sb(out, &b);
}

static void put_not_allowed(struct sb *b, unsigned scope)
{
    chat_sb_puts(b, "Not allowed: this device's token does not include the \"");
    chat_sb_puts(b, scope_name(scope));
    chat_sb_puts(b, "\" scope.");
}

static int help_reply(struct chat_request *out, const struct chat_env *env)
{
    struct sb b = {0};
    chat_sb_puts(&b, "Send one of these:");
    for (int i = 0; i < W_COUNT; i++) {
        if (!allowed(&words[i], env->scopes))
            continue;
        chat_sb_puts(&b, "\n");
        put_usage(&b, &words[i]);
    }
    if (agent_usable(env)) {
        for (int i = 0; i < A_COUNT; i++) {
            chat_sb_puts(&b, "\n");
            put_usage(&b, &agent_words[i]);
        }
        chat_sb_puts(&b, "\nAny other message goes to the agent ");
        chat_sb_quoted(&b, env->agent, strlen(env->agent));
        chat_sb_puts(&b, ".");
    }
    return reply_sb(out, &b);
}

static int help_word_reply(struct chat_request *out, const struct word_def *w, unsigned scopes)
{
    struct sb b = {0};
    put_usage(&b, w);
    chat_sb_puts(&b, ".");
    if (!allowed(w, scopes)) {
        chat_sb_puts(&b, "\n");
        put_not_allowed(&b, w->scope);
    }
    return reply_sb(out, &b);
}

/* The known word nearest to w (see near()), or -1. */
static int nearest_word(const char *w, size_t wlen, unsigned scopes)
{
    int best = -1;
    size_t best_d = SIZE_MAX;
    for (int i = 0; i < W_COUNT; i++) {
        size_t d = distance(w, wlen, words[i].word, strlen(words[i].word));
        if (!near(d, words[i].word))
            continue;
        /* Same distance: an allowed word beats one the token lacks. */
        if (d < best_d ||
            (d == best_d && !allowed(&words[best], scopes) && allowed(&words[i], scopes))) {
            best = i;
            best_d = d;
        }
    }
    return best;
}

/* "Unknown command "x". Did you mean "y"?", or without the question when
 * no word is near. */
static void put_unknown(struct sb *b, const char *w, size_t wlen, int best, unsigned scopes)
{
    chat_sb_puts(b, "Unknown command ");
    chat_sb_quoted(b, w, wlen);
    chat_sb_puts(b, ".");
    if (best < 0)
        return;
    chat_sb_puts(b, " Did you mean \"");
    chat_sb_puts(b, words[best].word);
    chat_sb_puts(b, "\"?");
    if (!allowed(&words[best], scopes)) {
        chat_sb_puts(b, " ");
        put_not_allowed(b, words[best].scope);
    }
}

static int unknown_reply(struct chat_request *out, const char *w, size_t wlen, unsigned scopes)
{
    struct sb b = {0};
    int best = nearest_word(w, wlen, scopes);
    put_unknown(&b, w, wlen, best, scopes);
    if (best < 0) {
        chat_sb_puts(&b, " ");
        chat_sb_puts(&b, HINT);
    }
    return reply_sb(out, &b);
}

/* "Tasks: a, b, c" with at most CHAT_LIST_MAX names. */
static void put_task_names(struct sb *b, const struct chat_env *env)
{
    if (!env->n_tasks) {
        chat_sb_puts(b, "No tasks configured. Add them in the companion.tasks setting.");
        return;
    }
    chat_sb_puts(b, "Tasks: ");
    for (size_t i = 0; i < env->n_tasks && i < CHAT_LIST_MAX; i++) {
        if (i)
            chat_sb_puts(b, ", ");
        chat_sb_cleans(b, env->task_names[i], NAME_MAX_CP);
    }
    if (env->n_tasks > CHAT_LIST_MAX)
        chat_sb_printf(b, ", …and %zu more", env->n_tasks - CHAT_LIST_MAX);
}

static int no_task_reply(struct chat_request *out, const char *name, size_t len,
                         const struct chat_env *env)
{
    struct sb b = {0};
    chat_sb_puts(&b, "No task ");
    chat_sb_quoted(&b, name, len);
    chat_sb_puts(&b, ".");
    const char *best = NULL;
    size_t best_d = SIZE_MAX;
    for (size_t i = 0; i < env->n_tasks; i++) {
        const char *t = env->task_names[i];
        if (!t || !utf8_is_valid(t, strlen(t)))
            continue;
        size_t d = distance(name, len, t, strlen(t));
        if (near(d, t) && d < best_d) {
            best = t;
            best_d = d;
        }
    }
    if (best) {
        chat_sb_puts(&b, " Did you mean ");
        chat_sb_quoted(&b, best, strlen(best));
        chat_sb_puts(&b, "?");
    }
    /* Task names are what task.list shows: only for a token that may read. */
    if (env->scopes & CMD_SCOPE_READ) {
        chat_sb_puts(&b, "\n");
        put_task_names(&b, env);
    }
    return reply_sb(out, &b);
}

/* ------------------------------------------------------------------------ */
/* Arguments */

/* n in [lo, hi] from decimal digits only. */
static int parse_uint(const char *s, size_t len, long lo, long hi, long *out)
{
    long v = 0;
    if (!len || len > 9)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int command(struct chat_request *out, enum word_id w, json_object *args)
{
    out->kind = CHAT_COMMAND;
    out->command = words[w].command;
    out->args = args;
    return 0;
}

/* {key: s[0..len)} or NULL on OOM. */
static json_object *args_str(const char *key, const char *s, size_t len)
{
    json_object *a = json_object_new_object();
    json_object *v = json_object_new_string_len(s, (int)len);
    if (!a || !v || json_object_object_add(a, key, v)) {
        json_object_put(v);
        json_object_put(a);
        return NULL;
    }
    return a;
}

static int path_command(struct chat_request *out, enum word_id w, const char *arg, size_t alen)
{
    if (!alen)
        return command(out, w, NULL);
    json_object *a = args_str("path", arg, alen);
    return a ? command(out, w, a) : -1;
}

static int parse_log(struct chat_request *out, const char *arg, size_t alen)
{
    long n = LOG_DEFAULT;
    if (alen && parse_uint(arg, alen, 1, LOG_MAX, &n))
        return usage_reply(out, &words[W_LOG]);
    json_object *a = json_object_new_object();
    json_object *v = json_object_new_int(n);
    if (!a || !v || json_object_object_add(a, "limit", v)) {
        json_object_put(v);
        json_object_put(a);
        return -1;
    }
    return command(out, W_LOG, a);
}

static int parse_run(struct chat_request *out, const char *arg, size_t alen,
                     const struct chat_env *env)
{
    if (!alen) {
        struct sb b = {0};
        chat_sb_puts(&b, "Usage: ");
        put_usage(&b, &words[W_RUN]);
        chat_sb_puts(&b, ".");
        if (env->scopes & CMD_SCOPE_READ) {
            chat_sb_puts(&b, "\n");
            put_task_names(&b, env);
        }
        return reply_sb(out, &b);
    }
    for (size_t i = 0; i < env->n_tasks; i++) {
        const char *t = env->task_names[i];
        if (t && strlen(t) == alen && memcmp(t, arg, alen) == 0) {
            json_object *a = args_str("name", arg, alen);
            return a ? command(out, W_RUN, a) : -1;
        }
    }
    return no_task_reply(out, arg, alen, env);
}

/* "path" or "path:line"; a name that only looks like ":12" stays a path. */
static int parse_open(struct chat_request *out, const char *arg, size_t alen)
{
    if (!alen)
        return usage_reply(out, &words[W_OPEN]);
    const char *colon = memrchr(arg, ':', alen);
    long line = 0;
    size_t plen = alen;
    if (colon && colon > arg &&
        !parse_uint(colon + 1, alen - (size_t)(colon + 1 - arg), 1, 999999999, &line))
        plen = (size_t)(colon - arg);
    else
        line = 0;
    json_object *a = args_str("path", arg, plen);
    if (!a)
        return -1;
    if (line) {
        json_object *v = json_object_new_int(line);
        if (!v || json_object_object_add(a, "line", v)) {
            json_object_put(v);
            json_object_put(a);
            return -1;
        }
    }
    return command(out, W_OPEN, a);
}

static int parse_notify(struct chat_request *out, const char *arg, size_t alen)
{
    if (alen == 2 && strncasecmp(arg, "on", 2) == 0)
        out->notify_on = 1;
    else if (alen == 3 && strncasecmp(arg, "off", 3) == 0)
        out->notify_on = 0;
    else
        return usage_reply(out, &words[W_NOTIFY]);
    out->kind = CHAT_NOTIFY;
    return 0;
}

/* "yes 7", "always 7", "no 7": exactly the word and an approval number;
 * anything else is not an answer (its usage is). */
static int parse_answer(struct chat_request *out, enum word_id w, const char *arg, size_t alen)
{
    long n;
    if (!alen || parse_uint(arg, alen, 1, 999999999L, &n))
        return usage_reply(out, &words[w]);
    json_object *a = json_object_new_object();
    const char *decision = w == W_YES ? "allow_once" : w == W_ALWAYS ? "allow_always" : "deny";
    if (!a || json_object_object_add(a, "approvalId", json_object_new_int64(n)) ||
        json_object_object_add(a, "decision", json_object_new_string(decision))) {
        json_object_put(a);
        return -1;
    }
    return command(out, w, a);
}

static int parse_word(struct chat_request *out, enum word_id w, const char *arg, size_t alen,
                      const struct chat_env *env)
{
    if (!one_line(arg, alen))
        return usage_reply(out, &words[w]);
    switch (w) {
    case W_HELP: {
        int h = find_word(arg, alen);
        if (h >= 0)
            return help_word_reply(out, &words[h], env->scopes);
        h = env->agent ? find_agent_word(arg, alen) : -1;
        return h >= 0 ? help_word_reply(out, &agent_words[h], env->scopes) : help_reply(out, env);
    }
    case W_STATUS:
    case W_TASKS:
    case W_APPROVALS:
        return alen ? usage_reply(out, &words[w]) : command(out, w, NULL);
    case W_YES:
    case W_ALWAYS:
    case W_NO:
        return parse_answer(out, w, arg, alen);
    case W_LOG:
        return parse_log(out, arg, alen);
    case W_DIFF:
    case W_PROBLEMS:
        return path_command(out, w, arg, alen);
    case W_RUN:
        return parse_run(out, arg, alen, env);
    case W_CANCEL:
        if (alen)
            return usage_reply(out, &words[w]);
        out->kind = CHAT_CANCEL;
        return 0;
    case W_OPEN:
        return parse_open(out, arg, alen);
    case W_NOTIFY:
        return parse_notify(out, arg, alen);
    case W_COUNT:
        break;
    }
    return reply(out, HINT);
}

/* ------------------------------------------------------------------------ */
/* With an agent: what is a command, and what goes to the agent */

static int all_digits(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return len > 0;
}

static int one_token(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (chat_is_space(s[i]))
            return 0;
    return 1;
}

static int is_task(const struct chat_env *env, const char *s, size_t len)
{
    for (size_t i = 0; i < env->n_tasks; i++) {
        const char *t = env->task_names[i];
        if (t && strlen(t) == len && memcmp(t, s, len) == 0)
            return 1;
    }
    return 0;
}

/* The rest of the message has the shape of w's arguments (chat.h's table):
 * then the message is that command even if a value is out of range. */
static int args_parse(enum word_id w, const char *arg, size_t alen, const struct chat_env *env)
{
    if (!one_line(arg, alen))
        return 0;
    switch (w) {
    case W_STATUS:
    case W_TASKS:
    case W_APPROVALS:
    case W_CANCEL:
        return alen == 0;
    case W_HELP:
        return !alen || find_word(arg, alen) >= 0 || find_agent_word(arg, alen) >= 0;
    case W_LOG:
        return !alen || all_digits(arg, alen);
    case W_DIFF:
    case W_PROBLEMS:
        return one_token(arg, alen);
    case W_OPEN:
        return alen && one_token(arg, alen);
    case W_RUN:
        return alen && is_task(env, arg, alen);
    case W_NOTIFY:
        return (alen == 2 && strncasecmp(arg, "on", 2) == 0) ||
               (alen == 3 && strncasecmp(arg, "off", 3) == 0);
    case W_YES:
    case W_ALWAYS:
    case W_NO:
        return all_digits(arg, alen);
    case W_COUNT:
        break;
    }
    return 0;
}

/* kind with text s[0..len) (NULL when len is 0). */
static int agent_request(struct chat_request *out, enum chat_kind kind, const char *word,
                         const char *s, size_t len)
{
    snprintf(out->word, sizeof out->word, "%s", word);
    out->kind = kind;
    if (!len)
        return 0;
    out->text = strndup(s, len);
    return out->text ? 0 : -1;
}

/* ask, new, stop: their arguments are the agent's, never parsed here. */
static int agent_word(struct chat_request *out, enum agent_word_id a, const char *arg, size_t alen,
                      const struct chat_env *env)
{
    snprintf(out->word, sizeof out->word, "%s", agent_words[a].word);
    if (!env->agent)
        return reply(out, NO_AGENT_TEXT);
    if (!allowed(&agent_words[a], env->scopes))
        return reply(out, AGENT_SCOPE_TEXT);
    switch (a) {
    case A_ASK:
        return alen ? agent_request(out, CHAT_AGENT_ASK, "ask", arg, alen)
                    : usage_reply(out, &agent_words[a]);
    case A_NEW:
        return agent_request(out, CHAT_AGENT_NEW, "new", arg, alen);
    case A_STOP:
        return agent_request(out, CHAT_AGENT_STOP, "stop", NULL, 0);
    case A_COUNT:
        break;
    }
    return reply(out, HINT);
}

/* A message that is not a command, s[0..len) trimmed: to the agent, or,
 * without the scope, a reply that says what the scope is for, after the
 * usage of the command word w (-1 for none) or the word nearest to a
 * single unknown word. */
static int to_agent(struct chat_request *out, const char *s, size_t len, int w, size_t wlen,
                    const struct chat_env *env)
{
    if (env->scopes & CMD_SCOPE_AGENT)
        return agent_request(out, CHAT_AGENT_ASK, "ask", s, len);
    struct sb b = {0};
    if (w >= 0) {
        chat_sb_puts(&b, "Usage: ");
        put_usage(&b, &words[w]);
        chat_sb_puts(&b, ".\n");
    } else if (wlen == len) {
        int best = nearest_word(s, wlen, env->scopes);
        if (best >= 0) {
            put_unknown(&b, s, wlen, best, env->scopes);
            chat_sb_puts(&b, "\n");
        }
    }
    chat_sb_puts(&b, AGENT_SCOPE_TEXT);
    return reply_sb(out, &b);
}

int chat_parse(const char *text, size_t len, const struct chat_env *env, struct chat_request *out)
{
    static const struct chat_env no_env = {0};
    memset(out, 0, sizeof *out);
    out->kind = CHAT_REPLY;
    if (!env)
        env = &no_env;
    if (!text) {
        text = "";
        len = 0;
    }
    /* Byte bound first so a huge message is not scanned twice. */
    if (len > (size_t)CHAT_TEXT_MAX * 4)
        return reply(out, "That message is too long. Send \"help\" for the list.");
    if (memchr(text, '\0', len) || !utf8_is_valid(text, len))
        return reply(out, "That message is not valid text. Send \"help\" for the list.");
    if (chat_cp_count(text, len) > CHAT_TEXT_MAX)
        return reply(out, "That message is too long. Send \"help\" for the list.");

    const char *s = text;
    trim(&s, &len);
    int slash = len && s[0] == '/';
    if (slash) {
        s++;
        len--;
    }
    if (!len)
        return reply(out, HINT);

    size_t wlen, alen;
    const char *arg;
    first_word(s, len, &wlen, &arg, &alen);
    int a = find_agent_word(s, wlen);
    if (a >= 0 && (a != A_STOP || !alen || !env->agent || slash)) {
        if (agent_word(out, (enum agent_word_id)a, arg, alen, env) == 0)
            return 0;
        chat_request_clear(out);
        return -1;
    }
    int w = find_word(s, wlen);
    if (w < 0 && wlen == 3 && strncasecmp(s, "git", 3) == 0 && alen) {
        size_t w2len, a2len;
        const char *arg2;
        first_word(arg, alen, &w2len, &arg2, &a2len);
        int w2 = find_word(arg, w2len);
        if (w2 == W_STATUS || w2 == W_LOG || w2 == W_DIFF) {
            w = w2;
            arg = arg2;
            alen = a2len;
        }
    }
    if (env->agent && !slash && (w < 0 || !args_parse((enum word_id)w, arg, alen, env))) {
        if (to_agent(out, s, len, w, wlen, env) == 0)
            return 0;
        chat_request_clear(out);
        return -1;
    }
    if (w < 0)
        return unknown_reply(out, s, wlen, env->scopes);

    snprintf(out->word, sizeof out->word, "%s", words[w].word);
    if (!allowed(&words[w], env->scopes)) {
        struct sb b = {0};
        put_not_allowed(&b, words[w].scope);
        return reply_sb(out, &b);
    }
    if (parse_word(out, (enum word_id)w, arg, alen, env) == 0)
        return 0;
    chat_request_clear(out);
    return -1;
}

void chat_request_clear(struct chat_request *r)
{
    if (!r)
        return;
    json_object_put(r->args);
    free(r->text);
    memset(r, 0, sizeof *r);
    r->kind = CHAT_REPLY;
}

const char *chat_word_command(const char *word)
{
    int w = word ? find_word(word, strlen(word)) : -1;
    return w >= 0 ? words[w].command : NULL;
}

const char *chat_word_name(const char *word)
{
    int w = find_word(word, strlen(word));
    return w >= 0 ? words[w].word : NULL;
}
