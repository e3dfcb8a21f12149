/*
 * framer: the LSP base protocol, bytes in, message bodies out.
 *
 * "Content-Length: N\r\n[Content-Type: ...\r\n]\r\n" then N bytes. Input may
 * come in any split: one byte at a time, or several messages in one read.
 * Header names are matched without regard to case. A frame that cannot be
 * used is reported through on_error and the stream re-synchronises, so one
 * bad frame never stops the ones after it:
 *  - Content-Length larger than max_body: RPC_FRAME_TOO_LARGE is reported
 *    and the body is skipped byte for byte (never buffered), unless it
 *    claims more than RPC_FRAMER_SKIP_FACTOR times max_body: then input is
 *    resynchronised as for a bad header, so one absurd length cannot
 *    swallow the rest of the stream;
 *  - missing, negative, non-numeric, overflowing or conflicting
 *    Content-Length, a header line without ':', a header block over
 *    RPC_FRAMER_HEADER_MAX: reported as RPC_FRAME_BAD_HEADER, then input is
 *    discarded up to the next "Content-Length:" (any case), wherever it
 *    stands: the unusable body has no known end and JSON bodies carry no
 *    newline, so the next frame's header follows it on the same "line".
 *  - a Content-Type whose charset is not utf-8/utf8: RPC_FRAME_BAD_HEADER,
 *    the body is skipped.
 * Blank lines before a header block are skipped silently.
 * Knows nothing of JSON.
 */
#ifndef COMPANION_IPC_FRAMER_H
#define COMPANION_IPC_FRAMER_H

#include <stddef.h>

#define RPC_FRAMER_HEADER_MAX  4096
#define RPC_FRAMER_SKIP_FACTOR 4

enum rpc_frame_error { RPC_FRAME_BAD_HEADER = 1, RPC_FRAME_TOO_LARGE = 2 };

typedef void (*rpc_frame_cb)(void *ud, const char *body, size_t len);
typedef void (*rpc_frame_error_cb)(void *ud, enum rpc_frame_error code, const char *message);

struct rpc_framer {
    size_t max_body;
    int state;
    char *buf; /* header bytes, then the body being collected */
    size_t len, cap;
    size_t body_len;  /* Content-Length of the current frame */
    size_t skip_left; /* bytes of an oversize body still to drop */
};

void rpc_framer_init(struct rpc_framer *f, size_t max_body);
void rpc_framer_free(struct rpc_framer *f);
/* Feeds bytes; calls on_frame for each complete body (the pointer is valid
 * only during the call; body[len] is a NUL so it may be parsed as a string).
 * The callbacks must not feed the same framer. Returns 0, or -1 only when
 * memory runs out (the frame concerned is dropped). */
int rpc_framer_feed(struct rpc_framer *f, const char *data, size_t len, rpc_frame_cb on_frame,
                    rpc_frame_error_cb on_error, void *ud);

/* Appends "Content-Length: N\r\n\r\n" + body to a growing buffer. */
int rpc_frame_encode(char **buf, size_t *len, size_t *cap, const char *body, size_t body_len);

#endif
