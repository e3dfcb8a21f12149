/*
 * result: cmd_fail and cmd_arg (see result.h).
 */
#include "workspace/result.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "workspace/utf8.h"

enum cmd_status cmd_fail(struct cmd_result *res, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->message, sizeof(res->message), fmt, ap);
    va_end(ap);
    /* A message cut by the buffer may end inside a character. */
    res->message[utf8_valid_prefix(res->message, strlen(res->message))] = '\0';
    res->code = code;
    return CMD_ERROR;
}

json_object *cmd_arg(json_object *args, const char *key)
{
    json_object *v = NULL;
    if (!args || !json_object_is_type(args, json_type_object) ||
        !json_object_object_get_ex(args, key, &v) || json_object_is_type(v, json_type_null))
        return NULL;
    return v;
}
