/*
 * chat_format: the phone-sized text of command results, errors, task
 * starts and ends, and the splitting of long replies into parts (see
 * chat.h; the decisions are listed in chat_parse.c).
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
        chat_sb_clean(b, s, len, max_cp);
}

static void put_more(struct sb *b, size_t n)
{
    if (n > CHAT_LIST_MAX)
        chat_sb_printf(b, "\n…and %zu more", n - CHAT_LIST_MAX);
}

/* ------------------------------------------------------------------------ */
/* git.status */

static void put_count(struct sb *b, int *first, size_t n, const char *one, const char *many)
{
    if (!n)
        return;
    chat_sb_puts(b, *first ? "" : ", ");
    chat_sb_printf(b, "%zu %s", n, n == 1 ? one : many);
    *first = 0;
}

static void status_section(struct sb *b, const char *title, json_object *arr, int letters)
{
    size_t n = jlen(arr);
    if (!n)
        return;
    chat_sb_puts(b, "\n\n");
    chat_sb_puts(b, title);
    for (size_t i = 0; i < n && i < CHAT_LIST_MAX; i++) {
        json_object *e = json_object_array_get_idx(arr, i);
        chat_sb_puts(b, "\n");
        if (letters) {
            const char *st = jstr(e, "status", NULL);
            char c = st && st[0] >= 'A' && st[0] <= 'Z' ? st[0] : '?';
            chat_sb_putn(b, &c, 1);
            chat_sb_puts(b, " ");
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
        chat_sb_puts(b, "detached at ");
        if (head)
            chat_sb_clean(b, head, hlen < 7 ? hlen : 7, 0);
        else
            chat_sb_puts(b, "HEAD");
    } else if (jstr(r, "branch", NULL)) {
        put_jstr(b, r, "branch", NAME_MAX_CP);
    } else {
        chat_sb_puts(b, "(no branch)");
    }
    if (jbool(r, "unborn"))
        chat_sb_puts(b, " (no commits yet)");
    if (ahead > 0)
        chat_sb_printf(b, " ↑%lld", (long long)ahead);
    if (behind > 0)
        chat_sb_printf(b, " ↓%lld", (long long)behind);
    chat_sb_puts(b, " · ");
    int first = 1;
    put_count(b, &first, jlen(conflicted), "conflict", "conflicts");
    put_count(b, &first, jlen(staged), "staged", "staged");
    put_count(b, &first, jlen(unstaged), "modified", "modified");
    put_count(b, &first, jlen(untracked), "untracked", "untracked");
    if (first)
        chat_sb_puts(b, "clean");
    /* The arrows only mean something next to the branch they compare with. */
    if ((ahead > 0 || behind > 0) && jstr(r, "upstream", NULL)) {
        chat_sb_puts(b, "\nUpstream: ");
        put_jstr(b, r, "upstream", NAME_MAX_CP);
    }
    /* Conflicts first: they block everything else. */
    status_section(b, "Conflicts:", conflicted, 0);
    status_section(b, "Staged:", staged, 1);
    status_section(b, "Modified:", unstaged, 1);
    status_section(b, "Untracked:", untracked, 0);
    if (jbool(r, "truncated"))
        chat_sb_puts(b, "\n\n(truncated: there are more changes than listed)");
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
            chat_sb_printf(b, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
    } else if (age < 60) {
        chat_sb_puts(b, "just now");
    } else if (age < 3600) {
        chat_sb_printf(b, "%lldm ago", (long long)(age / 60));
    } else if (age < 86400) {
        chat_sb_printf(b, "%lldh ago", (long long)(age / 3600));
    } else {
        chat_sb_printf(b, "%lldd ago", (long long)(age / 86400));
    }
}

static void format_log(struct sb *b, json_object *r, int64_t now)
{
    json_object *commits = jarr(r, "commits");
    size_t n = jlen(commits);
    if (!n) {
        chat_sb_puts(b, "No commits yet.");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        json_object *c = json_object_array_get_idx(commits, i);
        size_t len;
        const char *id = jstr(c, "shortId", &len);
        if (!id)
            id = jstr(c, "id", &len);
        if (i)
            chat_sb_puts(b, "\n");
        if (id) {
            chat_sb_clean(b, id, len < 7 ? len : 7, 0);
            chat_sb_puts(b, " ");
        }
        put_jstr(b, c, "summary", SUMMARY_MAX);
        int64_t t = jint(c, "time");
        int has_author = jstr(c, "author", NULL) != NULL;
        if (!has_author && !t)
            continue;
        chat_sb_puts(b, " (");
        put_jstr(b, c, "author", NAME_MAX_CP);
        if (has_author && t)
            chat_sb_puts(b, ", ");
        if (t)
            put_when(b, t, now);
        chat_sb_puts(b, ")");
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
        chat_sb_puts(b, "No changes");
        if (path) {
            chat_sb_puts(b, " in ");
            chat_sb_clean(b, path, plen, PATH_MAX_CP);
        }
        chat_sb_puts(b, ".");
        return;
    }
    int64_t add = 0, del = 0;
    for (size_t i = 0; i < n; i++) {
        json_object *f = json_object_array_get_idx(files, i);
        add += jint(f, "additions");
        del += jint(f, "deletions");
    }
    chat_sb_printf(b, "%zu file%s, +%lld −%lld", n, n == 1 ? "" : "s", (long long)add,
                   (long long)del);
    for (size_t i = 0; i < n && i < CHAT_LIST_MAX; i++) {
        json_object *f = json_object_array_get_idx(files, i);
        chat_sb_puts(b, "\n");
        put_jstr(b, f, "path", PATH_MAX_CP);
        if (jbool(f, "binary"))
            chat_sb_puts(b, " (binary)");
        else
            chat_sb_printf(b, " +%lld −%lld", (long long)jint(f, "additions"),
                           (long long)jint(f, "deletions"));
    }
    put_more(b, n);
    if (jbool(r, "truncated"))
        chat_sb_puts(b, "\n(diff truncated)");
    chat_sb_puts(b, "\nUse the app for the full diff.");
}

/* ------------------------------------------------------------------------ */
/* task.list, editor.open, editor.diagnostics */

static void format_tasks(struct sb *b, json_object *r)
{
    json_object *tasks = jarr(r, "tasks");
    size_t n = jlen(tasks);
    if (!n) {
        chat_sb_puts(b, "No tasks configured. Add them in the companion.tasks setting.");
        return;
    }
    chat_sb_puts(b, "Tasks: ");
    for (size_t i = 0; i < n && i < CHAT_LIST_MAX; i++) {
        json_object *t = json_object_array_get_idx(tasks, i);
        if (i)
            chat_sb_puts(b, ", ");
        put_jstr(b, t, "name", NAME_MAX_CP);
        if (jbool(t, "confirm"))
            chat_sb_puts(b, " (asks first)");
    }
    if (n > CHAT_LIST_MAX)
        chat_sb_printf(b, ", …and %zu more", n - CHAT_LIST_MAX);
}

static void format_open(struct sb *b, json_object *args, json_object *r)
{
    size_t plen;
    const char *path = jstr(args, "path", &plen);
    if (!path)
        path = jstr(r, "path", &plen);
    int64_t line = jget(args, "line") ? jint(args, "line") : jint(r, "line");
    if (jget(r, "opened") && !jbool(r, "opened")) {
        chat_sb_puts(b, "The editor did not open ");
        if (path)
            chat_sb_clean(b, path, plen, PATH_MAX_CP);
        else
            chat_sb_puts(b, "the file");
        chat_sb_puts(b, ".");
        return;
    }
    chat_sb_puts(b, "Opened ");
    if (path) {
        chat_sb_clean(b, path, plen, PATH_MAX_CP);
        if (line > 0)
            chat_sb_printf(b, ":%lld", (long long)line);
        chat_sb_puts(b, " ");
    }
    chat_sb_puts(b, "in the editor.");
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
        chat_sb_puts(b, "No problems.");
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
            chat_sb_puts(b, "\n");
            put_jstr(b, d, "path", PATH_MAX_CP);
            int64_t line = jint(d, "line");
            if (line > 0)
                chat_sb_printf(b, ":%lld", (long long)line);
            chat_sb_puts(b, " ");
            if (sev == SEV_OTHER && jstr(d, "severity", NULL))
                put_jstr(b, d, "severity", 12);
            else
                chat_sb_puts(b, sev == SEV_ERROR     ? "error"
                                : sev == SEV_WARNING ? "warning"
                                                     : "note");
            chat_sb_puts(b, ": ");
            put_jstr(b, d, "message", DIAG_MAX_CP);
            shown++;
        }
    }
    put_more(b, n);
}

/* ------------------------------------------------------------------------ */
/* Approvals */

/* What an approval is for, in a line: its title, and for a command its
 * command line. */
static void put_approval_what(struct sb *b, json_object *ap)
{
    json_object *action = jget(ap, "action"), *args = jarr(action, "args");
    put_jstr(b, ap, "title", NAME_MAX_CP * 2);
    size_t clen;
    const char *cmd = jstr(action, "command", &clen);
    if (cmd) {
        chat_sb_puts(b, " (");
        chat_sb_clean(b, cmd, clen, NAME_MAX_CP);
        for (size_t i = 0; i < jlen(args) && i < 8; i++) {
            json_object *v = json_object_array_get_idx(args, i);
            if (json_object_is_type(v, json_type_string)) {
                chat_sb_puts(b, " ");
                chat_sb_clean(b, json_object_get_string(v), (size_t)json_object_get_string_len(v),
                              NAME_MAX_CP);
            }
        }
        if (jlen(args) > 8)
            chat_sb_puts(b, " …");
        chat_sb_puts(b, ")");
    }
}

/* "yes 7 · always 7 · no 7", the answers it accepts. */
static void put_answers(struct sb *b, json_object *ap)
{
    static const char *const opts[][2] = {
        {"allow_once", "yes"}, {"allow_always", "always"}, {"deny", "no"}};
    json_object *o = jarr(ap, "options");
    long long id = (long long)jint(ap, "approvalId");
    int n = 0;
    for (size_t k = 0; k < 3; k++)
        for (size_t i = 0; i < jlen(o); i++) {
            json_object *v = json_object_array_get_idx(o, i);
            if (json_object_is_type(v, json_type_string) &&
                strcmp(json_object_get_string(v), opts[k][0]) == 0) {
                chat_sb_printf(b, "%s%s %lld", n++ ? " · " : "", opts[k][1], id);
                break;
            }
        }
}

static void put_expiry(struct sb *b, json_object *ap, int64_t now_s)
{
    int64_t left = jint(ap, "expiresAt") / 1000 - now_s;
    if (left <= 0)
        chat_sb_puts(b, "expiring now");
    else if (left < 120)
        chat_sb_printf(b, "%lld s left", (long long)left);
    else
        chat_sb_printf(b, "%lld min left", (long long)(left / 60));
}

char *chat_format_approval(json_object *approval, int64_t now_s)
{
    struct sb b = {0};
    chat_sb_printf(&b, "🔐 Approval %lld: ", (long long)jint(approval, "approvalId"));
    put_approval_what(&b, approval);
    chat_sb_puts(&b, "\nAsked by ");
    put_jstr(&b, jget(approval, "requestedBy"), "userId", NAME_MAX_CP);
    chat_sb_puts(&b, ", ");
    put_expiry(&b, approval, now_s);
    chat_sb_puts(&b, ".\nReply ");
    put_answers(&b, approval);
    return chat_sb_finish(&b);
}

char *chat_format_approval_resolved(json_object *resolved)
{
    struct sb b = {0};
    size_t len;
    const char *d = jstr(resolved, "decision", &len);
    const char *how = !d                               ? "decided"
                      : strcmp(d, "allow_once") == 0   ? "allowed once"
                      : strcmp(d, "allow_always") == 0 ? "allowed always"
                      : strcmp(d, "expired") == 0      ? "expired (denied)"
                      : strcmp(d, "withdrawn") == 0    ? "withdrawn"
                                                       : "denied";
    chat_sb_printf(&b, "Approval %lld %s by ", (long long)jint(resolved, "approvalId"), how);
    put_jstr(&b, resolved, "decidedBy", NAME_MAX_CP);
    chat_sb_puts(&b, ".");
    return chat_sb_finish(&b);
}

static void format_approvals(struct sb *b, json_object *r, int64_t now_s)
{
    json_object *list = jarr(r, "approvals");
    size_t n = jlen(list);
    if (!n) {
        chat_sb_puts(b, "Nothing is waiting for your approval.");
        return;
    }
    chat_sb_puts(b, "Waiting for your approval:");
    for (size_t i = 0; i < n && i < 10; i++) {
        json_object *ap = json_object_array_get_idx(list, i);
        chat_sb_printf(b, "\n%lld · ", (long long)jint(ap, "approvalId"));
        put_approval_what(b, ap);
        chat_sb_puts(b, ", ");
        put_expiry(b, ap, now_s);
        chat_sb_puts(b, "\n   ");
        put_answers(b, ap);
    }
    put_more(b, n > 10 ? n - 10 : 0);
}

static void format_approve(struct sb *b, json_object *r)
{
    put_jstr(b, r, "message", MESSAGE_MAX);
    chat_sb_puts(b, ".");
}

char *chat_format_result_at(const char *word, const char *command, json_object *args,
                            json_object *result, int64_t now_s)
{
    struct sb b = {0};
    if (!command)
        command = chat_word_command(word);
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
        chat_sb_puts(&b, "Cancelling.");
    else if (strcmp(command, "approvals.list") == 0)
        format_approvals(&b, result, now_s);
    else if (strcmp(command, "approve") == 0)
        format_approve(&b, result);
    else
        chat_sb_puts(&b, "Done.");
    return chat_sb_finish(&b);
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
    const char *wname = word ? chat_word_name(word) : NULL;
    if (e && !e->detail) {
        chat_sb_puts(&b, e->text);
    } else if (e && !has_msg) {
        chat_sb_puts(&b, e->plain);
    } else {
        if (e) {
            chat_sb_puts(&b, e->text);
        } else {
            /* A code this file does not know yet: say what failed and how. */
            chat_sb_puts(&b, wname ? wname : "That");
            chat_sb_puts(&b, " failed");
            if (code && code[0]) {
                chat_sb_puts(&b, " (");
                chat_sb_cleans(&b, code, 32);
                chat_sb_puts(&b, ")");
            }
        }
        if (has_msg) {
            chat_sb_puts(&b, ": ");
            chat_sb_cleans(&b, message, MESSAGE_MAX);
        } else {
            chat_sb_puts(&b, ".");
        }
    }
    if (e && strcmp(e->code, "INVALID_ARGS") == 0 && wname) {
        chat_sb_puts(&b, "\nSend \"help ");
        chat_sb_puts(&b, wname);
        chat_sb_puts(&b, "\" for its usage.");
    }
    return chat_sb_finish(&b);
}

/* ------------------------------------------------------------------------ */
/* Tasks */

static void put_duration(struct sb *b, int64_t ms)
{
    if (ms < 0)
        ms = 0;
    int64_t tenths = (ms + 50) / 100;
    if (tenths < 100) {
        chat_sb_printf(b, "%lld.%lld s", (long long)(tenths / 10), (long long)(tenths % 10));
        return;
    }
    long long s = (long long)((ms + 500) / 1000);
    if (s < 120)
        chat_sb_printf(b, "%lld s", s);
    else if (s < 3600 && s % 60)
        chat_sb_printf(b, "%lld min %lld s", s / 60, s % 60);
    else if (s < 3600)
        chat_sb_printf(b, "%lld min", s / 60);
    else if ((s % 3600) / 60)
        chat_sb_printf(b, "%lld h %lld min", s / 3600, (s % 3600) / 60);
    else
        chat_sb_printf(b, "%lld h", s / 3600);
}

char *chat_format_task_start(const char *name)
{
    struct sb b = {0};
    chat_sb_puts(&b, "▶ ");
    chat_sb_cleans(&b, name ? name : "task", NAME_MAX_CP);
    chat_sb_puts(&b, " started");
    return chat_sb_finish(&b);
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
    while (len && chat_is_space(tail[len - 1]))
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
    chat_sb_puts(b, "\n```");
    for (size_t i = start; i <= len;) {
        const char *nl = memchr(tail + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - tail) : len;
        size_t n = terminal_line(tail + i, end - i, scratch);
        chat_sb_puts(b, "\n");
        chat_sb_clean(b, scratch, n, LINE_MAX_CP);
        i = end + 1;
    }
    chat_sb_puts(b, "\n```");
    free(scratch);
}

char *chat_format_task_end(const char *name, int exit_code, const char *signal, int64_t duration_ms,
                           int timed_out, int cancelled, const char *tail, int truncated)
{
    struct sb b = {0};
    const char *nm = name ? name : "task";
    int ok = 0;
    if (cancelled) {
        chat_sb_puts(&b, "■ ");
        chat_sb_cleans(&b, nm, NAME_MAX_CP);
        chat_sb_puts(&b, " cancelled after ");
        put_duration(&b, duration_ms);
    } else if (timed_out) {
        chat_sb_puts(&b, "⏱ ");
        chat_sb_cleans(&b, nm, NAME_MAX_CP);
        chat_sb_puts(&b, " timed out after ");
        put_duration(&b, duration_ms);
    } else if (signal && signal[0]) {
        chat_sb_puts(&b, "✘ ");
        chat_sb_cleans(&b, nm, NAME_MAX_CP);
        chat_sb_puts(&b, " killed by ");
        chat_sb_cleans(&b, signal, 16);
        chat_sb_puts(&b, " after ");
        put_duration(&b, duration_ms);
    } else if (exit_code < 0) {
        chat_sb_puts(&b, "✘ ");
        chat_sb_cleans(&b, nm, NAME_MAX_CP);
        chat_sb_puts(&b, " could not start");
    } else {
        ok = exit_code == 0;
        chat_sb_puts(&b, ok ? "✔ " : "✘ ");
        chat_sb_cleans(&b, nm, NAME_MAX_CP);
        chat_sb_printf(&b, ok ? " finished: exit %d in " : " failed: exit %d in ", exit_code);
        put_duration(&b, duration_ms);
    }
    if (truncated)
        chat_sb_puts(&b, "\n(output truncated)");
    put_tail(&b, tail, ok ? TASK_OK_LINES : CHAT_TAIL_LINES);
    return chat_sb_finish(&b);
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
    chat_cp_at(s + i, c);
    return i;
}

/* Moves a cut at `end` back to a character boundary, within reason; `floor`
 * keeps the part at least half full. */
size_t chat_cluster_cut(const char *s, size_t floor, size_t end)
{
    size_t cut = end;
    for (int steps = 0; steps < 32 && cut > floor; steps++) {
        uint32_t next, prev;
        chat_cp_at(s + cut, &next);
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
            i += chat_seq_len((unsigned char)text[i]);
            cps++;
        }
        size_t end;
        if (i >= len)
            end = len;
        else if (nl_end && nl_cps >= CHAT_PART_MAX / 2)
            end = nl_end;
        else
            end = chat_cluster_cut(text, pos + CHAT_PART_MAX / 2, i);
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
