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
#include "workspace/chat_stream.h"
#include "workspace/utf8.h"

static void must_be_text(const char *t)
{
    if (t && !utf8_is_valid(t, strlen(t)))
        abort();
}

/* Every message taken from a stream is text, at most a part. */
static void take_all(struct chat_stream *cs)
{
    char *t;
    while ((t = chat_stream_take(cs)) != NULL) {
        must_be_text(t);
        size_t cps = 0;
        for (const char *p = t; *p; p++)
            cps += ((unsigned char)*p & 0xc0) != 0x80;
        if (cps > CHAT_PART_MAX)
            abort();
        free(t);
    }
}

/* The input as an agent's answer, in chunks cut at each 0x01 byte (as
 * message text, or a chunk object when a piece parses as JSON). */
static void fuzz_stream(const uint8_t *data, size_t size)
{
    struct chat_stream *cs = chat_stream_new();
    if (!cs)
        return;
    size_t start = 0;
    for (size_t i = 0; i <= size; i++) {
        if (i < size && data[i] != 0x01)
            continue;
        json_object *c = json_object_new_object();
        json_object_object_add(c, "kind", json_object_new_string("message"));
        json_object_object_add(
            c, "text", json_object_new_string_len((const char *)data + start, (int)(i - start)));
        chat_stream_add(cs, c);
        json_object_put(c);
        if (i < size && i - start > 1 && data[start] == '{') {
            json_tokener *tok = json_tokener_new();
            json_object *o =
                tok ? json_tokener_parse_ex(tok, (const char *)data + start, (int)(i - start))
                    : NULL;
            if (tok)
                json_tokener_free(tok);
            chat_stream_add(cs, o);
            json_object_put(o);
        }
        if (i < size && i > start && (data[i - 1] & 1))
            take_all(cs);
        start = i + 1;
    }
    chat_stream_end(cs, size && (data[size - 1] & 2) ? "end_turn" : "error", "failed");
    take_all(cs);
    chat_stream_free(cs);
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
    fuzz_stream(data, size);
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
