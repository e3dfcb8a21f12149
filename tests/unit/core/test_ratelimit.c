/*
 * core/ratelimit.c: the token bucket and the abuse score. Pure, so time is
 * passed in: every test drives the clock itself. Bursts of `rate`, refill
 * at `rate` per second (capped at the bucket), refusals that turn into
 * RATELIMIT_ABUSE only for a client that keeps flooding, never for one that
 * backs off, and a clock that goes backwards does no harm.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>

#include "core/ratelimit.h"

/* The refusals a client may pile up (undrained) before it is abusive. */
static int abuse_limit(int rate)
{
    int limit = rate * RATELIMIT_ABUSE_SECONDS;
    return limit < RATELIMIT_ABUSE_MIN ? RATELIMIT_ABUSE_MIN : limit;
}

/* Takes n tokens at `now`, expecting each verdict to be `want`. */
static void take_n(struct ratelimit *r, int rate, int64_t now, int n, enum ratelimit_verdict want)
{
    for (int i = 0; i < n; i++) {
        enum ratelimit_verdict v = ratelimit_take(r, rate, now);
        if (v != want)
            fail_msg("take %d of %d at %lld ms: verdict %d, expected %d", i + 1, n, (long long)now,
                     (int)v, (int)want);
    }
}

/* How many ALLOW in a row at `now`, stopping at the first refusal (which
 * is taken too) or at `max`. */
static int allowed_now(struct ratelimit *r, int rate, int64_t now, int max)
{
    int n = 0;
    while (n < max && ratelimit_take(r, rate, now) == RATELIMIT_ALLOW)
        n++;
    return n;
}

/* ---- the bucket ---------------------------------------------------------- */

static void test_init_is_a_full_bucket(void **state)
{
    struct ratelimit r;
    ratelimit_init(&r, 20, 12345);
    assert_true(r.tokens == 20.0);
    assert_int_equal(r.ms, 12345);
    assert_true(r.abuse == 0.0);
}

static void test_burst_of_rate_then_refused(void **state)
{
    const int rates[] = {1, 2, 20, 100, 10000};
    for (size_t k = 0; k < sizeof(rates) / sizeof(rates[0]); k++) {
        int rate = rates[k];
        struct ratelimit r;
        ratelimit_init(&r, rate, 1000);
        take_n(&r, rate, 1000, rate, RATELIMIT_ALLOW);
        assert_int_equal(ratelimit_take(&r, rate, 1000), RATELIMIT_REFUSE);
        assert_int_equal(ratelimit_take(&r, rate, 1000), RATELIMIT_REFUSE);
    }
}

static void test_refill_over_time(void **state)
{
    const int rate = 20; /* one token every 50 ms */
    struct ratelimit r;
    ratelimit_init(&r, rate, 0);
    take_n(&r, rate, 0, rate, RATELIMIT_ALLOW);
    assert_int_equal(ratelimit_take(&r, rate, 0), RATELIMIT_REFUSE);

    /* 49 ms: not a whole token yet (0.98). */
    assert_int_equal(ratelimit_take(&r, rate, 49), RATELIMIT_REFUSE);
    /* 51 ms: 1.02 tokens, one message. */
    assert_int_equal(ratelimit_take(&r, rate, 51), RATELIMIT_ALLOW);
    assert_int_equal(ratelimit_take(&r, rate, 51), RATELIMIT_REFUSE);

    /* Half a second later: ten tokens (10.02). */
    assert_int_equal(allowed_now(&r, rate, 551, 1000), 10);

    /* A long pause refills the bucket, but never beyond `rate`. */
    assert_int_equal(allowed_now(&r, rate, 551 + 3600 * 1000, 1000), rate);

    /* Steady traffic at the rate, from an empty bucket, is always allowed. */
    ratelimit_init(&r, rate, 0);
    take_n(&r, rate, 0, rate, RATELIMIT_ALLOW);
    for (int i = 1; i <= 2000; i++)
        assert_int_equal(ratelimit_take(&r, rate, (int64_t)i * 51), RATELIMIT_ALLOW);
}

static void test_refill_is_fractional(void **state)
{
    /* rate 3: a token every 333.3 ms; tokens are not rounded away. */
    const int rate = 3;
    struct ratelimit r;
    ratelimit_init(&r, rate, 0);
    take_n(&r, rate, 0, rate, RATELIMIT_ALLOW);
    assert_int_equal(ratelimit_take(&r, rate, 200), RATELIMIT_REFUSE); /* 0.6 */
    assert_int_equal(ratelimit_take(&r, rate, 340), RATELIMIT_ALLOW);  /* 1.02 */
    assert_int_equal(ratelimit_take(&r, rate, 340), RATELIMIT_REFUSE); /* 0.02 */
    assert_int_equal(ratelimit_take(&r, rate, 667), RATELIMIT_ALLOW);  /* 1.001 */
}

/* ---- abuse ----------------------------------------------------------------- */

static void test_flood_at_one_instant_reaches_abuse(void **state)
{
    const int rates[] = {1, 2, 5, 20, 100};
    for (size_t k = 0; k < sizeof(rates) / sizeof(rates[0]); k++) {
        int rate = rates[k], limit = abuse_limit(rate);
        struct ratelimit r;
        ratelimit_init(&r, rate, 0);
        take_n(&r, rate, 0, rate, RATELIMIT_ALLOW);
        /* `limit` refusals are only refusals ... */
        take_n(&r, rate, 0, limit, RATELIMIT_REFUSE);
        /* ... the next one is abuse, and it stays abuse while it floods. */
        take_n(&r, rate, 0, 5, RATELIMIT_ABUSE);
    }
    /* The floor: at rate 1, ten seconds' worth (10) would be too few. */
    assert_int_equal(abuse_limit(1), RATELIMIT_ABUSE_MIN);
    assert_true(1 * RATELIMIT_ABUSE_SECONDS < RATELIMIT_ABUSE_MIN);
}

/* A client sending `per_s` messages a second (evenly) until it is told
 * ABUSE: the time that took, in ms, or -1 when it never was within
 * `max_ms`. *refused counts the refusals before it. */
static int64_t flood_until_abuse(int rate, int per_s, int64_t max_ms, int *refused)
{
    struct ratelimit r;
    ratelimit_init(&r, rate, 0);
    *refused = 0;
    for (int64_t i = 0;; i++) {
        int64_t now = i * 1000 / per_s;
        if (now > max_ms)
            return -1;
        enum ratelimit_verdict v = ratelimit_take(&r, rate, now);
        if (v == RATELIMIT_ABUSE)
            return now;
        if (v == RATELIMIT_REFUSE)
            (*refused)++;
    }
}

static void test_sustained_flood_reaches_abuse(void **state)
{
    int refused;
    /* At three times the rate, the score grows by `rate` a second (the
     * refusals, 2 x rate, less the drain, rate): abuse after about
     * RATELIMIT_ABUSE_SECONDS, counted from the end of the first burst. */
    const int rates[] = {10, 20, 50};
    for (size_t k = 0; k < sizeof(rates) / sizeof(rates[0]); k++) {
        int rate = rates[k];
        int64_t t = flood_until_abuse(rate, 3 * rate, 120 * 1000, &refused);
        if (t < 0)
            fail_msg("rate %d: a 3x flood was never told ABUSE", rate);
        /* Never sooner than the limit allows ... */
        assert_true(refused >= abuse_limit(rate));
        assert_true(t >= (RATELIMIT_ABUSE_SECONDS - 1) * 1000);
        /* ... and not much later either. */
        if (t > (RATELIMIT_ABUSE_SECONDS + 2) * 1000)
            fail_msg("rate %d: ABUSE only after %lld ms", rate, (long long)t);
    }

    /* At rate 1 the floor decides: 50 undrained refusals. At 10 a second
     * the score grows by 9 - 1 = 8 a second: about 6 s. */
    int64_t t = flood_until_abuse(1, 10, 120 * 1000, &refused);
    assert_true(t > 0);
    assert_true(refused >= RATELIMIT_ABUSE_MIN);
    assert_true(t >= 5000 && t <= 8000);

    /* A hard flood (one message a millisecond) is caught quickly, but not
     * before `limit` refusals. */
    t = flood_until_abuse(20, 1000, 120 * 1000, &refused);
    assert_true(t >= 0 && t < 1000);
    assert_true(refused >= abuse_limit(20));
}

static void test_backing_off_is_never_abuse(void **state)
{
    const int rates[] = {1, 20, 100};
    for (size_t k = 0; k < sizeof(rates) / sizeof(rates[0]); k++) {
        int rate = rates[k];
        struct ratelimit r;
        ratelimit_init(&r, rate, 0);
        int64_t now = 0;
        int refusals = 0;
        /* An hour of a client that sends as fast as it is allowed and,
         * when refused, waits a second before trying again. */
        while (now < 3600 * 1000) {
            enum ratelimit_verdict v = ratelimit_take(&r, rate, now);
            if (v == RATELIMIT_ABUSE)
                fail_msg("rate %d: a client that backs off was told ABUSE at %lld ms", rate,
                         (long long)now);
            if (v == RATELIMIT_REFUSE) {
                refusals++;
                now += 1000;
            } else {
                now += 1; /* as fast as it may */
            }
        }
        assert_true(refusals > 1000); /* it was refused, often */
    }

    /* One that retries after a single token's time (1000 / rate ms) is
     * backing off too: each refusal is drained before the next. */
    struct ratelimit r;
    ratelimit_init(&r, 20, 0);
    int64_t now = 0;
    for (int i = 0; i < 100000; i++) {
        enum ratelimit_verdict v = ratelimit_take(&r, 20, now);
        assert_int_not_equal(v, RATELIMIT_ABUSE);
        now += v == RATELIMIT_REFUSE ? 50 : 0;
    }

    /* Twice the rate for ten minutes: half refused, each refusal drained
     * by the tokens' own refill; never closed. */
    ratelimit_init(&r, 20, 0);
    for (int64_t i = 0; i < 40 * 600; i++)
        assert_int_not_equal(ratelimit_take(&r, 20, i * 25), RATELIMIT_ABUSE);
}

static void test_abuse_score_drains(void **state)
{
    const int rate = 20, limit = abuse_limit(rate);
    struct ratelimit r;
    ratelimit_init(&r, rate, 0);
    take_n(&r, rate, 0, rate, RATELIMIT_ALLOW);
    take_n(&r, rate, 0, limit, RATELIMIT_REFUSE); /* one short of abuse */
    /* A second's pause drains `rate` refusals: that many more are refused
     * (not abuse) once the refilled tokens are spent. */
    take_n(&r, rate, 1000, rate, RATELIMIT_ALLOW);
    take_n(&r, rate, 1000, rate, RATELIMIT_REFUSE);
    assert_int_equal(ratelimit_take(&r, rate, 1000), RATELIMIT_ABUSE);

    /* After a long quiet spell the score is gone entirely. */
    take_n(&r, rate, 1000 + 3600 * 1000, rate, RATELIMIT_ALLOW);
    take_n(&r, rate, 1000 + 3600 * 1000, limit, RATELIMIT_REFUSE);
    assert_int_equal(ratelimit_take(&r, rate, 1000 + 3600 * 1000), RATELIMIT_ABUSE);
}

/* ---- the clock --------------------------------------------------------------- */

static void test_time_going_backwards_is_harmless(void **state)
{
    const int rate = 20;
    struct ratelimit r;
    ratelimit_init(&r, rate, 100000);
    take_n(&r, rate, 100000, 10, RATELIMIT_ALLOW); /* 10 tokens left */
    /* 100 s back: no tokens are taken away, none are added. */
    take_n(&r, rate, 0, 10, RATELIMIT_ALLOW);
    assert_int_equal(ratelimit_take(&r, rate, 0), RATELIMIT_REFUSE);
    assert_false(isnan(r.tokens));
    assert_true(r.tokens >= 0.0 && r.tokens < 1.0);

    /* Backwards does not raise the score: at rate 1 the floor is 50
     * refusals; going back a minute must not make the 50th abuse. */
    ratelimit_init(&r, 1, 60000);
    take_n(&r, 1, 60000, 1, RATELIMIT_ALLOW);
    take_n(&r, 1, 60000, RATELIMIT_ABUSE_MIN - 1, RATELIMIT_REFUSE);
    assert_int_equal(ratelimit_take(&r, 1, 0), RATELIMIT_REFUSE);
    assert_true(r.abuse <= RATELIMIT_ABUSE_MIN);
    /* ... nor does it drain it. */
    assert_int_equal(ratelimit_take(&r, 1, -5000), RATELIMIT_ABUSE);

    /* From the earlier time the bucket refills as usual, never past rate. */
    ratelimit_init(&r, rate, 5000);
    take_n(&r, rate, 5000, rate, RATELIMIT_ALLOW);
    assert_int_equal(ratelimit_take(&r, rate, 1000), RATELIMIT_REFUSE);
    assert_int_equal(ratelimit_take(&r, rate, 1049), RATELIMIT_REFUSE);
    assert_int_equal(ratelimit_take(&r, rate, 1051), RATELIMIT_ALLOW);
    assert_int_equal(allowed_now(&r, rate, 10 * 60 * 1000, 1000), rate);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_is_a_full_bucket),
        cmocka_unit_test(test_burst_of_rate_then_refused),
        cmocka_unit_test(test_refill_over_time),
        cmocka_unit_test(test_refill_is_fractional),
        cmocka_unit_test(test_flood_at_one_instant_reaches_abuse),
        cmocka_unit_test(test_sustained_flood_reaches_abuse),
        cmocka_unit_test(test_backing_off_is_never_abuse),
        cmocka_unit_test(test_abuse_score_drains),
        cmocka_unit_test(test_time_going_backwards_is_harmless),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
