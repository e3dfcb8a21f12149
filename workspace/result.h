/*
 * result: how a command answers, success or error, apart from how it is
 * run or sent: a JSON result the caller takes, or a contract error code
 * ("INVALID_ARGS", "NOT_FOUND", ...) with a message that is always valid
 * UTF-8. A leaf: every command module (fs, git, editor, tasks) and the git
 * module (companion-git.so) link it.
 */
#ifndef COMPANION_RESULT_H
#define COMPANION_RESULT_H

#include <json-c/json.h>

enum cmd_status { CMD_OK = 0, CMD_ERROR };

struct cmd_result {
    json_object *result; /* on CMD_OK; the caller takes it */
    const char *code;    /* on CMD_ERROR: a contract code such as "INVALID_ARGS" */
    char message[256];
    json_object *data; /* on CMD_ERROR, optional: the error's `data` (CONFLICT's
                        * currentSha256); the caller takes it */
};

/* Sets code and a formatted message (cut on a UTF-8 boundary); returns
 * CMD_ERROR. */
enum cmd_status cmd_fail(struct cmd_result *res, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* args[key], or NULL when args is NULL, the key is absent or its value is
 * JSON null (clients often send null for "unset"). Borrowed. */
json_object *cmd_arg(json_object *args, const char *key);

#endif
