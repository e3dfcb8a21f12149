/*
 * log: levelled logging to stderr and, once an editor is attached, to it as
 * `window/logMessage` (through a forwarder the helper installs).
 *
 * Callers never pass tokens or secrets here; there is no redaction pass to
 * rely on, so the rule is enforced at the call sites and by the tests that
 * grep the helper's stderr for the token and secret.
 */
#ifndef COMPANION_LOG_H
#define COMPANION_LOG_H

#include <stdarg.h>

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

typedef void (*log_forward_fn)(void *ud, enum log_level level, const char *message);

struct logger {
    enum log_level level;
    log_forward_fn forward; /* NULL: stderr only */
    void *forward_ud;
    int forwarding; /* guards against a forwarder that logs */
};

void log_init(struct logger *lg, enum log_level level);
void log_msg(struct logger *lg, enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void log_vmsg(struct logger *lg, enum log_level level, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
const char *log_level_name(enum log_level level);

#endif
