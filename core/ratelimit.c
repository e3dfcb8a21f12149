/*
 * ratelimit: token bucket and abuse score (see ratelimit.h).
 */
#include "core/ratelimit.h"

void ratelimit_init(struct ratelimit *r, int rate, int64_t now_ms)
{
    r->tokens = rate;
    r->ms = now_ms;
    r->abuse = 0;
}

enum ratelimit_verdict ratelimit_take(struct ratelimit *r, int rate, int64_t now_ms)
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
