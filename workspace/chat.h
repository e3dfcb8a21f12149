/*
 * chat: the plain-text mode for WhatsApp and other chat bridges.
 *
 * chat_parse turns one message ("status", "log 5", "run test") into the
 * command it stands for, or into a reply that needs no command (help, an
 * unknown word answered with the nearest known one). chat_format_* turn a
 * command's result or error into text written for a phone screen: short
 * lines, the branch and counts first, long lists cut with "and N more".
 * chat_split cuts a reply into parts of at most CHAT_PART_MAX characters
 * (code points), at line ends where it can. Pure functions: no I/O.
 */
#ifndef COMPANION_CHAT_H
#define COMPANION_CHAT_H

#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

#define CHAT_PART_MAX   4096
#define CHAT_TEXT_MAX   4096 /* longer incoming messages are refused */
#define CHAT_LIST_MAX   15   /* files listed before "and N more" */
#define CHAT_TAIL_LINES 10   /* last lines of a task's output shown at its end */

enum chat_kind {
    CHAT_REPLY,   /* reply with `text`, nothing to run */
    CHAT_COMMAND, /* run `command` with `args`, then format its result */
    CHAT_CANCEL,  /* cancel the task this chat started last */
    CHAT_NOTIFY,  /* notify on / off: `notify_on` */
};

struct chat_request {
    enum chat_kind kind;
    char word[16];       /* the chat word: "status", "log", ... */
    const char *command; /* CHAT_COMMAND: "git.status", ... (static string) */
    json_object *args;   /* CHAT_COMMAND: owned, may be NULL */
    char *text;          /* CHAT_REPLY: malloc'd */
    int notify_on;       /* CHAT_NOTIFY */
};

/* What chat_parse may consult. */
struct chat_env {
    unsigned scopes;               /* token scopes (read=1, run=2, editor=4 as in command.h) */
    const char *const *task_names; /* configured tasks, for "run" suggestions and "tasks" */
    size_t n_tasks;
};

/* Words: help, status, log [n], diff [path], tasks, run <task>, cancel,
 * open <path>, problems, notify on|off. Case-insensitive word, surrounding
 * whitespace ignored. `help` lists only the words the scopes allow. A word
 * the scopes do not allow gives CHAT_REPLY saying so (no command runs). An
 * unknown word gives CHAT_REPLY naming the nearest known word (edit
 * distance). Bad arguments ("log x", "run" without a name, "run nosuch")
 * give a CHAT_REPLY explaining the usage. Returns 0, -1 only on OOM. */
int chat_parse(const char *text, size_t len, const struct chat_env *env, struct chat_request *out);
void chat_request_clear(struct chat_request *r);

/* Text for a successful command result (result as the command returns it:
 * git.status, git.log, git.diff, task.list, editor.open, editor.diagnostics).
 * command may be NULL (then taken from word). git.log times are relative to
 * time(NULL). malloc'd, never NULL except on OOM. */
char *chat_format_result(const char *word, const char *command, json_object *result);
/* The same with the request's args (may be NULL) and the clock at hand:
 * editor.open names what it opened ("Opened src/a.c:12 in the editor.",
 * its result holds no path), git.diff names the path that has no changes,
 * and git.log dates commits against now_s (seconds since the epoch), which
 * also makes the text reproducible in tests. */
char *chat_format_result_at(const char *word, const char *command, json_object *args,
                            json_object *result, int64_t now_s);
/* Text for a failed command: code as in the contract, message from the helper. */
char *chat_format_error(const char *word, const char *code, const char *message);
/* "run <task>": the start, and the end with exit code or signal, duration and
 * the last CHAT_TAIL_LINES lines of output (tail may be NULL). */
char *chat_format_task_start(const char *name);
char *chat_format_task_end(const char *name, int exit_code, const char *signal, int64_t duration_ms,
                           int timed_out, int cancelled, const char *tail, int truncated);

/* Splits valid UTF-8 text into parts of at most CHAT_PART_MAX code points,
 * preferring to cut after a newline, never inside a character. *parts is a
 * malloc'd array of malloc'd strings; returns the count (>= 1), or 0 on OOM.
 * A cut goes after the last '\n' of the window when that newline lies in
 * its second half (the newline stays in the earlier part, so the parts
 * joined give the text back), else at the limit, moved back a little so an
 * accent, skin tone, emoji joiner or flag half stays with its character.
 * No part is empty, except the single part of an empty (or NULL) text.
 * Invalid UTF-8 is repaired (U+FFFD) first. */
size_t chat_split(const char *text, char ***parts);
/* An approval waiting (as the approval.requested event carries it): what,
 * who asked, how long it waits, and the exact answers ("yes 7 · always 7 ·
 * no 7") it accepts. malloc'd. */
char *chat_format_approval(json_object *approval, int64_t now_s);
/* approval.resolved: "Approval 7 allowed once by editor." malloc'd. */
char *chat_format_approval_resolved(json_object *resolved);
void chat_parts_free(char **parts, size_t n);

#endif
