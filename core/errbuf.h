/*
 * errbuf: the "error code plus message buffer" convention of companion_core:
 * functions fill a caller's buffer, which may be NULL when the caller only
 * wants the code.
 */
#ifndef COMPANION_ERRBUF_H
#define COMPANION_ERRBUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

static inline void errbuf_set(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static inline void errbuf_set(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

#endif
