/*
 * log: one line per message on stderr ("2026-11-21T22:50:00.123Z info: ..."),
 * mirrored to the editor when a forwarder is set. stderr is written with a
 * single write() per line so lines from the helper never interleave.
 */
#include "core/log.h"

#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void log_init(struct logger *lg, enum log_level level)
{
    memset(lg, 0, sizeof(*lg));
    lg->level = level;
}

const char *log_level_name(enum log_level level)
{
    return (unsigned)level < 4 ? level_names[level] : "info";
}

void log_vmsg(struct logger *lg, enum log_level level, const char *fmt, va_list ap)
{
    if (level > lg->level)
        return;
    char msg[2048];
    vsnprintf(msg, sizeof(msg), fmt, ap);

    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char line[2200];
    int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s: %s\n",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (long)(tv.tv_usec / 1000), log_level_name(level), msg);
    if (n > (int)sizeof(line) - 1)
        n = (int)sizeof(line) - 1;
    /* A full or closed stderr must not stop the helper. */
    if (write(STDERR_FILENO, line, (size_t)n) < 0) {
    }

    if (lg->forward && !lg->forwarding) {
        lg->forwarding = 1;
        lg->forward(lg->forward_ud, level, msg);
        lg->forwarding = 0;
    }
}

void log_msg(struct logger *lg, enum log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(lg, level, fmt, ap);
    va_end(ap);
}
