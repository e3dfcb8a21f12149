/*
 * ratelimit: a token bucket per client, with abuse measured over time.
 *
 * A client may send `rate` messages a second with bursts of that many.
 * Beyond it a message is refused; refusals add to a score that drains at
 * the allowed rate, so a client that backs off when told is never closed,
 * and one that keeps flooding is (RATELIMIT_ABUSE) once its undrained
 * refusals exceed RATELIMIT_ABUSE_SECONDS worth of the rate (at least
 * RATELIMIT_ABUSE_MIN). Pure: time is passed in.
 */
#ifndef COMPANION_RATELIMIT_H
#define COMPANION_RATELIMIT_H

#include <stdint.h>

#define RATELIMIT_ABUSE_SECONDS 10
#define RATELIMIT_ABUSE_MIN     50

struct ratelimit {
    double tokens;
    int64_t ms;
    double abuse;
};

enum ratelimit_verdict {
    RATELIMIT_ALLOW = 0,
    RATELIMIT_REFUSE, /* refuse this message */
    RATELIMIT_ABUSE,  /* refuse it, and close the client (4008) */
};

/* A full bucket at now_ms. Inline: it runs for every message a client
 * sends. */
static inline void ratelimit_init(struct ratelimit *r, int rate, int64_t now_ms)
{
    r->tokens = rate;
    r->ms = now_ms;
    r->abuse = 0;
}

/* Takes one token at now_ms (monotonic). */
static inline enum ratelimit_verdict ratelimit_take(struct ratelimit *r, int rate, int64_t now_ms)
{
    double per_ms = (double)rate / 1000.0, elapsed = (double)(now_ms - r->ms);
    if (elapsed < 0)
        elapsed = 0;
    r->tokens += elapsed * per_ms;
    if (r->tokens > rate)
        r->tokens = rate;
    r->abuse -= elapsed * per_ms;
    if (r->abuse < 0)
        r->abuse = 0;
    r->ms = now_ms;
    if (r->tokens >= 1.0) {
        r->tokens -= 1.0;
        return RATELIMIT_ALLOW;
    }
    r->abuse += 1.0;
    double limit = (double)rate * RATELIMIT_ABUSE_SECONDS;
    if (limit < RATELIMIT_ABUSE_MIN)
        limit = RATELIMIT_ABUSE_MIN;
    return r->abuse > limit ? RATELIMIT_ABUSE : RATELIMIT_REFUSE;
}

#endif
