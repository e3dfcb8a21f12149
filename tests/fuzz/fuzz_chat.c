/*
 * Chat mode: a message as a phone sends it, and command results (as JSON
 * from the input) formatted for a phone; everything produced must be valid
 * UTF-8, and split parts must stay within the limit.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "workspace/chat.h"
#include "workspace/utf8.h"

static void must_be_text(const char *t)
{
    if (t && !utf8_is_valid(t, strlen(t)))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const tasks[] = {"test", "build", "lint"};
    /* Bits 0-4: the token's scopes; bit 5: a default agent configured. */
    unsigned b = size ? data[0] : 0x3f;
    struct chat_env env = {b & 0x1f, tasks, 3, (b & 0x20) ? "claude" : NULL};
    struct chat_request req;
    memset(&req, 0, sizeof(req));
    if (chat_parse((const char *)data, size, &env, &req) == 0) {
        must_be_text(req.text);
        chat_request_clear(&req);
    }

    json_tokener *tok = json_tokener_new();
    json_object *j = tok ? json_tokener_parse_ex(tok, (const char *)data, (int)size) : NULL;
    if (tok)
        json_tokener_free(tok);
    if (j) {
        static const char *const cmds[][2] = {
            {"status", "git.status"}, {"log", "git.log"},      {"diff", "git.diff"},
            {"tasks", "task.list"},   {"open", "editor.open"}, {"problems", "editor.diagnostics"},
        };
        for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
            char *t = chat_format_result(cmds[i][0], cmds[i][1], j);
            must_be_text(t);
            char **parts = NULL;
            size_t n = t ? chat_split(t, &parts) : 0;
            for (size_t k = 0; k < n; k++) {
                if (!utf8_is_valid(parts[k], strlen(parts[k])))
                    abort();
            }
            chat_parts_free(parts, n);
            free(t);
        }
        json_object_put(j);
    }
    char *tail = malloc(size + 1);
    if (tail) {
        memcpy(tail, data, size);
        tail[size] = '\0';
        char *end =
            chat_format_task_end("t", size ? data[0] : 0, NULL, (int64_t)size * 997, 0, 0, tail, 0);
        must_be_text(end);
        free(end);
        free(tail);
    }
    return 0;
}
