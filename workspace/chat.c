/*
 * chat: parsing of chat words into commands, and the phone-sized text of
 * their results, errors, task starts and ends; splitting of long replies.
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
 * - git.log shows relative times up to 30 days ("2h ago"), then the UTC date.
 * - Durations: under 10 s with one decimal, then whole seconds, from 120 s
 *   "2 min 5 s", from an hour "1 h 2 min" (so a 600 s timeout reads
 *   "10 min").
 * - Text from results (paths, summaries, messages, output) is repaired to
 *   UTF-8 and its control and bidi-override characters replaced, so a file
 *   name cannot break lines or reorder a reply.
 */
#include "workspace/chat.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "workspace/commands.h"
#include "workspace/utf8.h"

#define ECHO_MAX      40  /* code points of user input echoed in a reply */
#define MESSAGE_MAX   200 /* code points of a helper's error message */
#define SUMMARY_MAX   60  /* code points of a commit summary */
#define NAME_MAX_CP   60  /* code points of a task name or author */
#define PATH_MAX_CP   200 /* code points of a path in a list */
#define LINE_MAX_CP   200 /* code points of a line of task output */
#define DIAG_MAX_CP   120 /* code points of a diagnostic message */
#define TASK_OK_LINES 3   /* lines of output shown after a success */
#define LOG_DEFAULT   10  /* "log" without n: fewer than git.log's 20, for a phone */
#define LOG_MAX       100
#define WORD_BUF      32 /* longer words cannot be near any known word */
#define CMP_MAX_CP    64 /* longer strings are not compared for suggestions */

static const char HINT[] = "Send \"help\" for the list.";

/* ------------------------------------------------------------------------ */
/* Growing string: every formatter writes into one and hands its buffer on. */

struct sb {
    char *p;
    size_t len, cap;
    int oom;
};

static void sb_putn(struct sb *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_puts(struct sb *b, const char *s)
{
    sb_putn(b, s, strlen(s));
}

static void sb_printf(struct sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sb *b, const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    /* Only short numeric pieces go through here; anything longer is a bug. */
    if (n < 0 || (size_t)n >= sizeof buf)
        n = 0;
    sb_putn(b, buf, (size_t)n);
}

/* The text, or NULL on OOM. Checked once more so no path can hand out
 * invalid UTF-8 even if a formatter has a bug. */
static char *sb_finish(struct sb *b)
{
    if (!b->oom && !b->p)
        sb_putn(b, "", 0);
    if (b->oom) {
        free(b->p);
        return NULL;
    }
    if (!utf8_is_valid(b->p, b->len)) {
        char *r = utf8_repair(b->p, b->len);
        free(b->p);
        return r;
    }
    return b->p;
}

/* ------------------------------------------------------------------------ */
/* Code points */

/* Length of the sequence starting with lead byte c of valid UTF-8. */
static size_t seq_len(unsigned char c)
{
    return c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
}

/* Decodes the code point at s (valid UTF-8), returns its length. */
static size_t cp_at(const char *s, uint32_t *cp)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n = seq_len(u[0]);
    uint32_t c = n == 1 ? u[0] : u[0] & (0x7fu >> n);
    for (size_t i = 1; i < n; i++)
        c = (c << 6) | (u[i] & 0x3fu);
    *cp = c;
    return n;
}

static size_t cp_count(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        if (((unsigned char)s[i] & 0xc0) != 0x80)
            n++;
    return n;
}

/* Characters that would break a phone line or reorder the text around them. */
static int cp_unsafe(uint32_t c)
{
    return c < 0x20 || (c >= 0x7f && c <= 0x9f) || (c >= 0x202a && c <= 0x202e) ||
           (c >= 0x2066 && c <= 0x2069);
}

/* Appends untrusted text: repaired to UTF-8, tab and line ends as spaces,
 * other unsafe characters as '?', cut to max_cp code points in all with a
 * final "…" when cut. */
static void sb_clean(struct sb *b, const char *s, size_t len, size_t max_cp)
{
    char *fixed = NULL;
    if (!s)
        return;
    if (!utf8_is_valid(s, len)) {
        fixed = utf8_repair(s, len);
        if (!fixed) {
            b->oom = 1;
            return;
        }
        s = fixed;
        len = strlen(fixed);
    }
    size_t total = cp_count(s, len), keep = total;
    if (max_cp && total > max_cp)
        keep = max_cp - 1;
    size_t i = 0;
    for (size_t k = 0; k < keep && i < len; k++) {
        uint32_t c;
        size_t n = cp_at(s + i, &c);
        if (c == '\t' || c == '\n' || c == '\r')
            sb_putn(b, " ", 1);
        else if (cp_unsafe(c))
            sb_putn(b, "?", 1);
        else
            sb_putn(b, s + i, n);
        i += n;
    }
    if (keep < total)
        sb_puts(b, "…");
    free(fixed);
}

static void sb_cleans(struct sb *b, const char *s, size_t max_cp)
{
    if (s)
        sb_clean(b, s, strlen(s), max_cp);
}

static void sb_quoted(struct sb *b, const char *s, size_t len)
{
    sb_putn(b, "\"", 1);
    sb_clean(b, s, len, ECHO_MAX);
    sb_putn(b, "\"", 1);
}

/* ------------------------------------------------------------------------ */
/* Edit distance, for suggestions */

static size_t to_cps(const char *s, size_t len, uint32_t *out, size_t max, int fold)
{
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        if (n == max)
            return max + 1;
        uint32_t c;
        i += cp_at(s + i, &c);
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
    return d <= 2 && d < cp_count(cand, strlen(cand));
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
    [W_HELP] = {"help", "help [word]", "this list", 0, NULL},
};

static int allowed(const struct word_def *w, unsigned scopes)
{
    return (w->scope & scopes) == w->scope;
}

static const char *scope_name(unsigned scope)
{
    return scope == CMD_SCOPE_RUN ? "run" : scope == CMD_SCOPE_EDITOR ? "editor" : "read";
}

static int find_word(const char *w, size_t len)
{
    for (int i = 0; i < W_COUNT; i++)
        if (strlen(words[i].word) == len && strncasecmp(words[i].word, w, len) == 0)
            return i;
    return -1;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static void trim(const char **s, size_t *len)
{
    while (*len && is_space(**s)) {
        (*s)++;
        (*len)--;
    }
    while (*len && is_space((*s)[*len - 1]))
        (*len)--;
}

/* Splits s into its first word and the trimmed rest. */
static void first_word(const char *s, size_t len, size_t *wlen, const char **rest, size_t *rlen)
{
    size_t i = 0;
    while (i < len && !is_space(s[i]))
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
    out->text = sb_finish(b);
    return out->text ? 0 : -1;
}

static int reply(struct chat_request *out, const char *text)
{
    struct sb b = {0};
    sb_puts(&b, text);
    return reply_sb(out, &b);
}

static void put_usage(struct sb *b, const struct word_def *w)
{
    sb_puts(b, w->usage);
    sb_puts(b, " — ");
    sb_puts(b, w->what);
}

static int usage_reply(struct chat_request *out, const struct word_def *w)
{
    struct sb b = {0};
    sb_puts(&b, "Usage: ");
    put_usage(&b, w);
    sb_puts(&b, ".");
    return reply_sb(out, &b);
}

static void put_not_allowed(struct sb *b, unsigned scope)
{
    sb_puts(b, "Not allowed: this device's token does not include the \"");
    sb_puts(b, scope_name(scope));
    sb_puts(b, "\" scope.");
}

static int help_reply(struct chat_request *out, unsigned scopes)
{
    struct sb b = {0};
    sb_puts(&b, "Send one of these:");
    for (int i = 0; i < W_COUNT; i++) {
        if (!allowed(&words[i], scopes))
            continue;
        sb_puts(&b, "\n");
        put_usage(&b, &words[i]);
    }
    return reply_sb(out, &b);
}

static int help_word_reply(struct chat_request *out, const struct word_def *w, unsigned scopes)
{
    struct sb b = {0};
    put_usage(&b, w);
    sb_puts(&b, ".");
    if (!allowed(w, scopes)) {
        sb_puts(&b, "\n");
        put_not_allowed(&b, w->scope);
    }
    return reply_sb(out, &b);
}

static int unknown_reply(struct chat_request *out, const char *w, size_t wlen, unsigned scopes)
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
    struct sb b = {0};
    sb_puts(&b, "Unknown command ");
    sb_quoted(&b, w, wlen);
    if (best < 0) {
        sb_puts(&b, ". ");
        sb_puts(&b, HINT);
        return reply_sb(out, &b);
    }
    sb_puts(&b, ". Did you mean \"");
    sb_puts(&b, words[best].word);
    sb_puts(&b, "\"?");
    if (!allowed(&words[best], scopes)) {
        sb_puts(&b, " ");
        put_not_allowed(&b, words[best].scope);
    }
    return reply_sb(out, &b);
}

/* "Tasks: a, b, c" with at most CHAT_LIST_MAX names. */
static void put_task_names(struct sb *b, const struct chat_env *env)
{
    if (!env->n_tasks) {
        sb_puts(b, "No tasks configured. Add them in the companion.tasks setting.");
        return;
    }
    sb_puts(b, "Tasks: ");
    for (size_t i = 0; i < env->n_tasks && i < CHAT_LIST_MAX; i++) {
        if (i)
            sb_puts(b, ", ");
        sb_cleans(b, env->task_names[i], NAME_MAX_CP);
    }
    if (env->n_tasks > CHAT_LIST_MAX)
        sb_printf(b, ", …and %zu more", env->n_tasks - CHAT_LIST_MAX);
}

static int no_task_reply(struct chat_request *out, const char *name, size_t len,
                         const struct chat_env *env)
{
    struct sb b = {0};
    sb_puts(&b, "No task ");
    sb_quoted(&b, name, len);
    sb_puts(&b, ".");
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
        sb_puts(&b, " Did you mean ");
        sb_quoted(&b, best, strlen(best));
        sb_puts(&b, "?");
    }
    /* Task names are what task.list shows: only for a token that may read. */
    if (env->scopes & CMD_SCOPE_READ) {
        sb_puts(&b, "\n");
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
        sb_puts(&b, "Usage: ");
        put_usage(&b, &words[W_RUN]);
        sb_puts(&b, ".");
        if (env->scopes & CMD_SCOPE_READ) {
            sb_puts(&b, "\n");
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

static int parse_word(struct chat_request *out, enum word_id w, const char *arg, size_t alen,
                      const struct chat_env *env)
{
    if (!one_line(arg, alen))
        return usage_reply(out, &words[w]);
    switch (w) {
    case W_HELP: {
        int h = find_word(arg, alen);
        return h >= 0 ? help_word_reply(out, &words[h], env->scopes) : help_reply(out, env->scopes);
    }
    case W_STATUS:
    case W_TASKS:
        return alen ? usage_reply(out, &words[w]) : command(out, w, NULL);
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
    if (cp_count(text, len) > CHAT_TEXT_MAX)
        return reply(out, "That message is too long. Send \"help\" for the list.");

    const char *s = text;
    trim(&s, &len);
    if (len && s[0] == '/') {
        s++;
        len--;
    }
    if (!len)
        return reply(out, HINT);

    size_t wlen, alen;
    const char *arg;
    first_word(s, len, &wlen, &arg, &alen);
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

/* ------------------------------------------------------------------------ */
/* JSON access that tolerates missing fields and wrong types */

static json_object *jget(json_object *o, const char *k)
{
    json_object *v = NULL;
    if (o && json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, k, &v))
        return v;
    return NULL;
}

static const char *jstr(json_object *o, const char *k, size_t *len)
{
    json_object *v = jget(o, k);
    if (!v || !json_object_is_type(v, json_type_string)) {
        if (len)
            *len = 0;
        return NULL;
    }
    if (len)
        *len = (size_t)json_object_get_string_len(v);
    return json_object_get_string(v);
}

static int64_t jint(json_object *o, const char *k)
{
    json_object *v = jget(o, k);
    if (v && (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)))
        return json_object_get_int64(v);
    return 0;
}

static int jbool(json_object *o, const char *k)
{
    json_object *v = jget(o, k);
    return v && json_object_is_type(v, json_type_boolean) && json_object_get_boolean(v);
}

static json_object *jarr(json_object *o, const char *k)
{
    json_object *v = jget(o, k);
    return v && json_object_is_type(v, json_type_array) ? v : NULL;
}

static size_t jlen(json_object *arr)
{
    return arr ? json_object_array_length(arr) : 0;
}

static void put_jstr(struct sb *b, json_object *o, const char *k, size_t max_cp)
{
    size_t len;
    const char *s = jstr(o, k, &len);
    if (s)
        sb_clean(b, s, len, max_cp);
}

static void put_more(struct sb *b, size_t n)
{
    if (n > CHAT_LIST_MAX)
        sb_printf(b, "\n…and %zu more", n - CHAT_LIST_MAX);
}

/* ------------------------------------------------------------------------ */
/* git.status */

static void put_count(struct sb *b, int *first, size_t n, const char *one, const char *many)
{
    if (!n)
        return;
    sb_puts(b, *first ? "" : ", ");
    sb_printf(b, "%zu %s", n, n == 1 ? one : many);
    *first = 0;
}

static void status_section(struct sb *b, const char *title, json_object *arr, int letters)
{
    size_t n = jlen(arr);
    if (!n)
        return;
    sb_puts(b, "\n\n");
    sb_puts(b, title);
    for (size_t i = 0; i < n && i < CHAT_LIST_MAX; i++) {
        json_object *e = json_object_array_get_idx(arr, i);
        sb_puts(b, "\n");
        if (letters) {
            const char *st = jstr(e, "status", NULL);
            char c = st && st[0] >= 'A' && st[0] <= 'Z' ? st[0] : '?';
            sb_putn(b, &c, 1);
            sb_puts(b, " ");
        }
        put_jstr(b, e, "path", PATH_MAX_CP);
    }
    put_more(b, n);
}

static void format_status(struct sb *b, json_object *r)
{
    json_object *staged = jarr(r, "staged"), *unstaged = jarr(r, "unstaged");
    json_object *untracked = jarr(r, "untracked"), *conflicted = jarr(r, "conflicted");
    int64_t ahead = jint(r, "ahead"), behind = jint(r, "behind");
    size_t hlen;
    const char *head = jstr(r, "head", &hlen);

    if (jbool(r, "detached")) {
        sb_puts(b, "detached at ");
        if (head)
            sb_clean(b, head, hlen < 7 ? hlen : 7, 0);
        else
            sb_puts(b, "HEAD");
    } else if (jstr(r, "branch", NULL)) {
        put_jstr(b, r, "branch", NAME_MAX_CP);
    } else {
        sb_puts(b, "(no branch)");
    }
    if (jbool(r, "unborn"))
        sb_puts(b, " (no commits yet)");
    if (ahead > 0)
        sb_printf(b, " ↑%lld", (long long)ahead);
    if (behind > 0)
        sb_printf(b, " ↓%lld", (long long)behind);
    sb_puts(b, " · ");
    int first = 1;
    put_count(b, &first, jlen(conflicted), "conflict", "conflicts");
    put_count(b, &first, jlen(staged), "staged", "staged");
    put_count(b, &first, jlen(unstaged), "modified", "modified");
    put_count(b, &first, jlen(untracked), "untracked", "untracked");
    if (first)
        sb_puts(b, "clean");
    /* The arrows only mean something next to the branch they compare with. */
    if ((ahead > 0 || behind > 0) && jstr(r, "upstream", NULL)) {
        sb_puts(b, "\nUpstream: ");
        put_jstr(b, r, "upstream", NAME_MAX_CP);
    }
    /* Conflicts first: they block everything else. */
    status_section(b, "Conflicts:", conflicted, 0);
    status_section(b, "Staged:", staged, 1);
    status_section(b, "Modified:", unstaged, 1);
    status_section(b, "Untracked:", untracked, 0);
    if (jbool(r, "truncated"))
        sb_puts(b, "\n\n(truncated: there are more changes than listed)");
}

/* ------------------------------------------------------------------------ */
/* git.log */

static void put_when(struct sb *b, int64_t t, int64_t now)
{
    int64_t age = now - t;
    if (age < -60 || age >= 30 * 86400) {
        time_t tt = (time_t)t;
        struct tm tm;
        if (gmtime_r(&tt, &tm))
            sb_printf(b, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
    } else if (age < 60) {
        sb_puts(b, "just now");
    } else if (age < 3600) {
        sb_printf(b, "%lldm ago", (long long)(age / 60));
    } else if (age < 86400) {
        sb_printf(b, "%lldh ago", (long long)(age / 3600));
    } else {
        sb_printf(b, "%lldd ago", (long long)(age / 86400));
    }
}

static void format_log(struct sb *b, json_object *r, int64_t now)
{
    json_object *commits = jarr(r, "commits");
    size_t n = jlen(commits);
    if (!n) {
        sb_puts(b, "No commits yet.");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        json_object *c = json_object_array_get_idx(commits, i);
        size_t len;
        const char *id = jstr(c, "shortId", &len);
        if (!id)
            id = jstr(c, "id", &len);
        if (i)
            sb_puts(b, "\n");
        if (id) {
            sb_clean(b, id, len < 7 ? len : 7, 0);
            sb_puts(b, " ");
        }
        put_jstr(b, c, "summary", SUMMARY_MAX);
        int64_t t = jint(c, "time");
        int has_author = jstr(c, "author", NULL) != NULL;
        if (!has_author && !t)
            continue;
        sb_puts(b, " (");
        put_jstr(b, c, "author", NAME_MAX_CP);
        if (has_author && t)
            sb_puts(b, ", ");
        if (t)
            put_when(b, t, now);
        sb_puts(b, ")");
    }
}

/* ------------------------------------------------------------------------ */
/* git.diff */

static void format_diff(struct sb *b, json_object *args, json_object *r)
{
    json_object *files = jarr(r, "files");
    size_t n = jlen(files);
    if (!n) {
        size_t plen;
        const char *path = jstr(args, "path", &plen);
        sb_puts(b, "No changes");
        if (path) {
            sb_puts(b, " in ");
            sb_clean(b, path, plen, PATH_MAX_CP);
        }
        sb_puts(b, ".");
        return;
    }
    int64_t add = 0, del = 0;
    for (size_t i = 0; i < n; i++) {
        json_object *f = json_object_array_get_idx(files, i);
        add += jint(f, "additions");
        del += jint(f, "deletions");
    }
    sb_printf(b, "%zu file%s, +%lld −%lld", n, n == 1 ? "" : "s", (long long)add, (long long)del);
    for (size_t i = 0; i < n && i < CHAT_LIST_MAX; i++) {
        json_object *f = json_object_array_get_idx(files, i);
        sb_puts(b, "\n");
        put_jstr(b, f, "path", PATH_MAX_CP);
        if (jbool(f, "binary"))
            sb_puts(b, " (binary)");
        else
            sb_printf(b, " +%lld −%lld", (long long)jint(f, "additions"),
                      (long long)jint(f, "deletions"));
    }
    put_more(b, n);
    if (jbool(r, "truncated"))
        sb_puts(b, "\n(diff truncated)");
    sb_puts(b, "\nUse the app for the full diff.");
}

/* ------------------------------------------------------------------------ */
/* task.list, editor.open, editor.diagnostics */

static void format_tasks(struct sb *b, json_object *r)
{
    json_object *tasks = jarr(r, "tasks");
    size_t n = jlen(tasks);
    if (!n) {
        sb_puts(b, "No tasks configured. Add them in the companion.tasks setting.");
        return;
    }
    sb_puts(b, "Tasks: ");
    for (size_t i = 0; i < n && i < CHAT_LIST_MAX; i++) {
        json_object *t = json_object_array_get_idx(tasks, i);
        if (i)
            sb_puts(b, ", ");
        put_jstr(b, t, "name", NAME_MAX_CP);
        if (jbool(t, "confirm"))
            sb_puts(b, " (asks first)");
    }
    if (n > CHAT_LIST_MAX)
        sb_printf(b, ", …and %zu more", n - CHAT_LIST_MAX);
}

static void format_open(struct sb *b, json_object *args, json_object *r)
{
    size_t plen;
    const char *path = jstr(args, "path", &plen);
    if (!path)
        path = jstr(r, "path", &plen);
    int64_t line = jget(args, "line") ? jint(args, "line") : jint(r, "line");
    if (jget(r, "opened") && !jbool(r, "opened")) {
        sb_puts(b, "The editor did not open ");
        if (path)
            sb_clean(b, path, plen, PATH_MAX_CP);
        else
            sb_puts(b, "the file");
        sb_puts(b, ".");
        return;
    }
    sb_puts(b, "Opened ");
    if (path) {
        sb_clean(b, path, plen, PATH_MAX_CP);
        if (line > 0)
            sb_printf(b, ":%lld", (long long)line);
        sb_puts(b, " ");
    }
    sb_puts(b, "in the editor.");
}

enum sev { SEV_ERROR, SEV_WARNING, SEV_OTHER };

static enum sev severity(json_object *d)
{
    const char *s = jstr(d, "severity", NULL);
    if (s && strcasecmp(s, "error") == 0)
        return SEV_ERROR;
    if (s && strcasecmp(s, "warning") == 0)
        return SEV_WARNING;
    return SEV_OTHER;
}

static void format_diagnostics(struct sb *b, json_object *r)
{
    json_object *diags = jarr(r, "diagnostics");
    size_t n = jlen(diags), count[3] = {0};
    for (size_t i = 0; i < n; i++)
        count[severity(json_object_array_get_idx(diags, i))]++;
    if (!n) {
        sb_puts(b, "No problems.");
        return;
    }
    int first = 1;
    put_count(b, &first, count[SEV_ERROR], "error", "errors");
    put_count(b, &first, count[SEV_WARNING], "warning", "warnings");
    put_count(b, &first, count[SEV_OTHER], "note", "notes");
    /* Errors first, then warnings, each in the editor's order. */
    size_t shown = 0;
    for (int sev = SEV_ERROR; sev <= SEV_OTHER; sev++) {
        for (size_t i = 0; i < n && shown < CHAT_LIST_MAX; i++) {
            json_object *d = json_object_array_get_idx(diags, i);
            if (severity(d) != (enum sev)sev)
                continue;
            sb_puts(b, "\n");
            put_jstr(b, d, "path", PATH_MAX_CP);
            int64_t line = jint(d, "line");
            if (line > 0)
                sb_printf(b, ":%lld", (long long)line);
            sb_puts(b, " ");
            if (sev == SEV_OTHER && jstr(d, "severity", NULL))
                put_jstr(b, d, "severity", 12);
            else
                sb_puts(b, sev == SEV_ERROR ? "error" : sev == SEV_WARNING ? "warning" : "note");
            sb_puts(b, ": ");
            put_jstr(b, d, "message", DIAG_MAX_CP);
            shown++;
        }
    }
    put_more(b, n);
}

static const char *word_command(const char *word)
{
    int w = word ? find_word(word, strlen(word)) : -1;
    return w >= 0 ? words[w].command : NULL;
}

char *chat_format_result_at(const char *word, const char *command, json_object *args,
                            json_object *result, int64_t now_s)
{
    struct sb b = {0};
    if (!command)
        command = word_command(word);
    if (!command)
        command = "";
    if (strcmp(command, "git.status") == 0)
        format_status(&b, result);
    else if (strcmp(command, "git.log") == 0)
        format_log(&b, result, now_s);
    else if (strcmp(command, "git.diff") == 0)
        format_diff(&b, args, result);
    else if (strcmp(command, "task.list") == 0)
        format_tasks(&b, result);
    else if (strcmp(command, "editor.open") == 0)
        format_open(&b, args, result);
    else if (strcmp(command, "editor.diagnostics") == 0)
        format_diagnostics(&b, result);
    else if (strcmp(command, "task.cancel") == 0)
        sb_puts(&b, "Cancelling.");
    else
        sb_puts(&b, "Done.");
    return sb_finish(&b);
}

char *chat_format_result(const char *word, const char *command, json_object *result)
{
    return chat_format_result_at(word, command, NULL, result, (int64_t)time(NULL));
}

/* ------------------------------------------------------------------------ */
/* Errors */

struct error_text {
    const char *code;
    const char *text;  /* alone, or before ": <message>" when `detail` */
    const char *plain; /* when `detail` and the helper sent no message */
    int detail;        /* the helper's message adds something a user can act on */
};

static const struct error_text errors[] = {
    {"FORBIDDEN", "Not allowed",
     "Not allowed: this device's token does not include the needed scope.", 1},
    {"NOT_A_REPOSITORY", "This workspace is not a git repository.", NULL, 0},
    {"EDITOR_UNAVAILABLE", "The editor is not reachable right now.", NULL, 0},
    {"BUSY", "Too many tasks are running. Try again when one ends.", NULL, 0},
    {"RATE_LIMITED", "Too many messages. Wait a moment and try again.", NULL, 0},
    {"TIMEOUT", "That took too long and was stopped.", NULL, 0},
    {"NOT_FOUND", "Not found", "Not found.", 1},
    {"INVALID_ARGS", "That did not work", "That did not work.", 1},
    {"TOO_LARGE", "The answer is too large for chat. Use the app.", NULL, 0},
    {"UNKNOWN_COMMAND", "This helper does not support that yet.", NULL, 0},
    {"PROCESSING_ERROR", "Something went wrong", "Something went wrong.", 1},
};

char *chat_format_error(const char *word, const char *code, const char *message)
{
    struct sb b = {0};
    const struct error_text *e = NULL;
    for (size_t i = 0; code && i < sizeof errors / sizeof errors[0]; i++)
        if (strcmp(errors[i].code, code) == 0)
            e = &errors[i];
    int has_msg = message && message[0];
    int w = word ? find_word(word, strlen(word)) : -1;
    if (e && !e->detail) {
        sb_puts(&b, e->text);
    } else if (e && !has_msg) {
        sb_puts(&b, e->plain);
    } else {
        if (e) {
            sb_puts(&b, e->text);
        } else {
            /* A code this file does not know yet: say what failed and how. */
            sb_puts(&b, w >= 0 ? words[w].word : "That");
            sb_puts(&b, " failed");
            if (code && code[0]) {
                sb_puts(&b, " (");
                sb_cleans(&b, code, 32);
                sb_puts(&b, ")");
            }
        }
        if (has_msg) {
            sb_puts(&b, ": ");
            sb_cleans(&b, message, MESSAGE_MAX);
        } else {
            sb_puts(&b, ".");
        }
    }
    if (e && strcmp(e->code, "INVALID_ARGS") == 0 && w >= 0) {
        sb_puts(&b, "\nSend \"help ");
        sb_puts(&b, words[w].word);
        sb_puts(&b, "\" for its usage.");
    }
    return sb_finish(&b);
}

/* ------------------------------------------------------------------------ */
/* Tasks */

static void put_duration(struct sb *b, int64_t ms)
{
    if (ms < 0)
        ms = 0;
    int64_t tenths = (ms + 50) / 100;
    if (tenths < 100) {
        sb_printf(b, "%lld.%lld s", (long long)(tenths / 10), (long long)(tenths % 10));
        return;
    }
    long long s = (long long)((ms + 500) / 1000);
    if (s < 120)
        sb_printf(b, "%lld s", s);
    else if (s < 3600 && s % 60)
        sb_printf(b, "%lld min %lld s", s / 60, s % 60);
    else if (s < 3600)
        sb_printf(b, "%lld min", s / 60);
    else if ((s % 3600) / 60)
        sb_printf(b, "%lld h %lld min", s / 3600, (s % 3600) / 60);
    else
        sb_printf(b, "%lld h", s / 3600);
}

char *chat_format_task_start(const char *name)
{
    struct sb b = {0};
    sb_puts(&b, "▶ ");
    sb_cleans(&b, name ? name : "task", NAME_MAX_CP);
    sb_puts(&b, " started");
    return sb_finish(&b);
}

/* One line of output as a terminal would leave it: colour and cursor
 * escapes dropped, and only what follows the last carriage return (progress
 * bars redraw a line with \r). Writes into dst, returns its length. */
static size_t terminal_line(const char *s, size_t len, char *dst)
{
    while (len && s[len - 1] == '\r')
        len--;
    const char *cr = memrchr(s, '\r', len);
    if (cr) {
        len -= (size_t)(cr + 1 - s);
        s = cr + 1;
    }
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        if (s[i] != 0x1b) {
            dst[o++] = s[i++];
            continue;
        }
        i++;
        if (i < len && s[i] == '[') { /* CSI: parameters, intermediates, final */
            i++;
            while (i < len && (unsigned char)s[i] >= 0x20 && (unsigned char)s[i] <= 0x3f)
                i++;
            if (i < len && (unsigned char)s[i] >= 0x40 && (unsigned char)s[i] <= 0x7e)
                i++;
        } else if (i < len && s[i] == ']') { /* OSC: up to BEL or ESC \ */
            while (i < len && s[i] != 0x07 && s[i] != 0x1b)
                i++;
            if (i < len && s[i] == 0x07)
                i++;
            else if (i + 1 < len && s[i + 1] == '\\')
                i += 2;
        } else if (i < len && (unsigned char)s[i] >= 0x20 && (unsigned char)s[i] < 0x7f) {
            i++;
        }
    }
    return o;
}

/* The last `lines` lines of tail in a monospace block (``` in WhatsApp). */
static void put_tail(struct sb *b, const char *tail, size_t lines)
{
    size_t len = tail ? strlen(tail) : 0;
    while (len && is_space(tail[len - 1]))
        len--;
    if (!len)
        return;
    size_t start = len, k = 0;
    while (start > 0) {
        if (tail[start - 1] == '\n' && ++k == lines)
            break;
        start--;
    }
    char *scratch = malloc(len - start + 1);
    if (!scratch) {
        b->oom = 1;
        return;
    }
    sb_puts(b, "\n```");
    for (size_t i = start; i <= len;) {
        const char *nl = memchr(tail + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - tail) : len;
        size_t n = terminal_line(tail + i, end - i, scratch);
        sb_puts(b, "\n");
        sb_clean(b, scratch, n, LINE_MAX_CP);
        i = end + 1;
    }
    sb_puts(b, "\n```");
    free(scratch);
}

char *chat_format_task_end(const char *name, int exit_code, const char *signal, int64_t duration_ms,
                           int timed_out, int cancelled, const char *tail, int truncated)
{
    struct sb b = {0};
    const char *nm = name ? name : "task";
    int ok = 0;
    if (cancelled) {
        sb_puts(&b, "■ ");
        sb_cleans(&b, nm, NAME_MAX_CP);
        sb_puts(&b, " cancelled after ");
        put_duration(&b, duration_ms);
    } else if (timed_out) {
        sb_puts(&b, "⏱ ");
        sb_cleans(&b, nm, NAME_MAX_CP);
        sb_puts(&b, " timed out after ");
        put_duration(&b, duration_ms);
    } else if (signal && signal[0]) {
        sb_puts(&b, "✘ ");
        sb_cleans(&b, nm, NAME_MAX_CP);
        sb_puts(&b, " killed by ");
        sb_cleans(&b, signal, 16);
        sb_puts(&b, " after ");
        put_duration(&b, duration_ms);
    } else if (exit_code < 0) {
        sb_puts(&b, "✘ ");
        sb_cleans(&b, nm, NAME_MAX_CP);
        sb_puts(&b, " could not start");
    } else {
        ok = exit_code == 0;
        sb_puts(&b, ok ? "✔ " : "✘ ");
        sb_cleans(&b, nm, NAME_MAX_CP);
        sb_printf(&b, ok ? " finished: exit %d in " : " failed: exit %d in ", exit_code);
        put_duration(&b, duration_ms);
    }
    if (truncated)
        sb_puts(&b, "\n(output truncated)");
    put_tail(&b, tail, ok ? TASK_OK_LINES : CHAT_TAIL_LINES);
    return sb_finish(&b);
}

/* ------------------------------------------------------------------------ */
/* Splitting */

/* Code points that belong to the character before them: splitting before
 * one would detach an accent, a skin tone or half an emoji sequence. */
static int cp_extends(uint32_t c)
{
    return (c >= 0x300 && c <= 0x36f) || (c >= 0x1ab0 && c <= 0x1aff) ||
           (c >= 0x1dc0 && c <= 0x1dff) || c == 0x200d || (c >= 0x20d0 && c <= 0x20ff) ||
           (c >= 0xfe00 && c <= 0xfe0f) || (c >= 0xfe20 && c <= 0xfe2f) ||
           (c >= 0x1f3fb && c <= 0x1f3ff) || (c >= 0xe0020 && c <= 0xe007f) ||
           (c >= 0xe0100 && c <= 0xe01ef);
}

static int cp_regional(uint32_t c)
{
    return c >= 0x1f1e6 && c <= 0x1f1ff;
}

static size_t cp_before(const char *s, size_t at, uint32_t *c)
{
    size_t i = at;
    do
        i--;
    while (i > 0 && ((unsigned char)s[i] & 0xc0) == 0x80);
    cp_at(s + i, c);
    return i;
}

/* Moves a cut at `end` back to a character boundary, within reason; `floor`
 * keeps the part at least half full. */
static size_t cluster_cut(const char *s, size_t floor, size_t end)
{
    size_t cut = end;
    for (int steps = 0; steps < 32 && cut > floor; steps++) {
        uint32_t next, prev;
        cp_at(s + cut, &next);
        size_t p = cp_before(s, cut, &prev);
        int split = cp_extends(next) || prev == 0x200d;
        if (!split && cp_regional(next) && cp_regional(prev)) {
            /* A flag is a pair: count the regional indicators before the cut. */
            size_t run = 0, i = cut;
            uint32_t c;
            while (i > floor && (i = cp_before(s, i, &c), cp_regional(c)))
                run++;
            split = run % 2 == 1;
        }
        if (!split)
            return cut;
        cut = p;
    }
    return end;
}

static int push_part(char ***parts, size_t *n, size_t *cap, const char *s, size_t len)
{
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 4;
        char **p = realloc(*parts, c * sizeof *p);
        if (!p)
            return -1;
        *parts = p;
        *cap = c;
    }
    char *t = malloc(len + 1);
    if (!t)
        return -1;
    memcpy(t, s, len);
    t[len] = '\0';
    (*parts)[(*n)++] = t;
    return 0;
}

size_t chat_split(const char *text, char ***parts)
{
    char **out = NULL;
    size_t n = 0, cap = 0;
    char *fixed = NULL;
    *parts = NULL;
    if (!text)
        text = "";
    size_t len = strlen(text);
    if (!utf8_is_valid(text, len)) {
        fixed = utf8_repair(text, len);
        if (!fixed)
            return 0;
        text = fixed;
        len = strlen(fixed);
    }
    size_t pos = 0;
    do {
        size_t i = pos, cps = 0, nl_end = 0, nl_cps = 0;
        while (i < len && cps < CHAT_PART_MAX) {
            if (text[i] == '\n') {
                nl_end = i + 1;
                nl_cps = cps + 1;
            }
            i += seq_len((unsigned char)text[i]);
            cps++;
        }
        size_t end;
        if (i >= len)
            end = len;
        else if (nl_end && nl_cps >= CHAT_PART_MAX / 2)
            end = nl_end;
        else
            end = cluster_cut(text, pos + CHAT_PART_MAX / 2, i);
        if (push_part(&out, &n, &cap, text + pos, end - pos)) {
            chat_parts_free(out, n);
            free(fixed);
            return 0;
        }
        pos = end;
    } while (pos < len);
    free(fixed);
    *parts = out;
    return n;
}

void chat_parts_free(char **parts, size_t n)
{
    if (!parts)
        return;
    for (size_t i = 0; i < n; i++)
        free(parts[i]);
    free(parts);
}
