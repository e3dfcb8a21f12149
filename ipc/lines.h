/*
 * lines: newline-delimited messages, bytes in, lines out, as the Agent
 * Client Protocol frames JSON-RPC (one JSON message per line, no embedded
 * newline). Input may come in any split. A "\r\n" ending loses its "\r";
 * blank lines are skipped. A line longer than max_line is reported through
 * on_error and dropped up to its newline (never buffered), so one flood
 * never stops the lines after it. Knows nothing of JSON.
 */
#ifndef COMPANION_IPC_LINES_H
#define COMPANION_IPC_LINES_H

#include <stddef.h>

typedef void (*rpc_line_cb)(void *ud, const char *line, size_t len);
typedef void (*rpc_line_error_cb)(void *ud, const char *message);

struct rpc_lines {
    size_t max_line;
    char *buf;
    size_t len, cap;
    int skipping; /* inside a line that was too long */
};

void rpc_lines_init(struct rpc_lines *l, size_t max_line);
void rpc_lines_free(struct rpc_lines *l);
/* Feeds bytes; calls on_line for each complete line (valid during the call,
 * line[len] is a NUL). Returns 0, or -1 when memory runs out (the line
 * concerned is dropped). */
int rpc_lines_feed(struct rpc_lines *l, const char *data, size_t len, rpc_line_cb on_line,
                   rpc_line_error_cb on_error, void *ud);

/* Appends body + "\n" to a growing buffer. body must hold no newline. */
int rpc_line_encode(char **buf, size_t *len, size_t *cap, const char *body, size_t body_len);

#endif
