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
    /* Only when chat_env.agent is set and the token has CMD_SCOPE_AGENT: */
    CHAT_AGENT_ASK,  /* send `text` (malloc'd) to the default agent, in the chat's conversation */
    CHAT_AGENT_NEW,  /* start a fresh conversation; `text` (malloc'd) its first prompt, or NULL */
    CHAT_AGENT_STOP, /* cancel the agent's turn in the chat's conversation */
};

struct chat_request {
    enum chat_kind kind;
    char word[16];       /* the chat word: "status", "log", ... */
    const char *command; /* CHAT_COMMAND: "git.status", ... (static string) */
    json_object *args;   /* CHAT_COMMAND: owned, may be NULL */
    char *text;          /* CHAT_REPLY, CHAT_AGENT_ASK, CHAT_AGENT_NEW: malloc'd */
    int notify_on;       /* CHAT_NOTIFY */
};

/* What chat_parse may consult. */
struct chat_env {
    unsigned scopes;               /* token scopes (CMD_SCOPE_* bits, commands.h) */
    const char *const *task_names; /* configured tasks, for "run" suggestions and "tasks" */
    size_t n_tasks;
    const char *agent; /* name of the default agent; NULL when none is configured */
};

/* Words: help, status, log [n], diff [path], tasks, run <task>, cancel,
 * open <path>, problems [path], notify on|off, approvals, yes <n>,
 * always <n>, no <n>. Case-insensitive word, surrounding whitespace
 * ignored. `help` lists only the words the scopes allow. A word the scopes
 * do not allow gives CHAT_REPLY saying so (no command runs). An unknown
 * word gives CHAT_REPLY naming the nearest known word (edit distance). Bad
 * arguments ("log x", "run" without a name, "run nosuch") give a CHAT_REPLY
 * explaining the usage. Returns 0, -1 only on OOM.
 *
 * With env->agent set (a default agent configured), a message is a command
 * only when its first word is a command word (after an optional "git"
 * before status, log or diff) AND the rest, trimmed, parses as that word's
 * arguments; anything else goes to the agent (CHAT_AGENT_ASK, `text` the
 * whole message, trimmed, word "ask"). "Parses" means, per word (the rest
 * must also hold no control character, so a second line never parses):
 *   status, tasks, approvals, cancel   nothing
 *   help                               nothing, or one word of this list
 *                                      (or ask, new, stop)
 *   log                                nothing, or decimal digits only
 *   diff, problems                     nothing, or one token (no space)
 *   open                               one token (no space)
 *   run                                exactly a configured task's name
 *   notify                             "on" or "off" (any case)
 *   yes, always, no                    decimal digits only
 * A rest of that shape with a bad value ("log 500", "yes 0") is still the
 * command, answered with its usage as without an agent. So "log 5" is a
 * command, "log in page is broken", "yes please", "no, use the other
 * file", "run the tests please" and "diff the two files" go to the agent,
 * and so does an unknown or misspelt word. A message that starts with "/"
 * ("/stauts", "/run tset") is always taken as a command, with the
 * suggestions and usage replies of the mode without an agent.
 * Agent words (only listed by help with the agent scope):
 *   ask <text>    CHAT_AGENT_ASK with the text after "ask" (may span
 *                 lines); "ask" alone: CHAT_REPLY with its usage
 *   new [text]    CHAT_AGENT_NEW, text the rest or NULL (may span lines)
 *   stop          CHAT_AGENT_STOP ("stop" with more text goes to the agent)
 * Without CMD_SCOPE_AGENT, a message that would go to the agent, and ask,
 * new and stop, give a CHAT_REPLY saying that asking the agent needs a
 * token with the "agent" scope (with the usage of a command word whose
 * arguments did not parse, or the nearest word to a misspelt one). An
 * empty message, one that is too long or not UTF-8 is answered as without
 * an agent, never sent to it.
 * With env->agent NULL everything is as above without an agent, and ask,
 * new and stop answer that no agent is configured. */
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
