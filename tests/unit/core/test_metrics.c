/*
 * core/metrics.c: counting by label (open and closed tables, the cap, the
 * literal fast path that must never confuse two names), histogram buckets
 * at their bounds, and the text: escaping, cumulative buckets, and a
 * buffer that grows past its first allocation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/metrics.h"

static void test_table_counts_by_name(void **state)
{
    (void)state;
    struct metrics_table t = {0};
    metrics_table_add(&t, "pong", 1);
    metrics_table_add(&t, "pong", 2);
    metrics_table_add(&t, "error", 1);
    metrics_table_add(&t, "", 5);
    metrics_table_add(&t, NULL, 1);
    assert_int_equal(metrics_table_get(&t, "pong"), 3);
    assert_int_equal(metrics_table_get(&t, "error"), 1);
    assert_int_equal(metrics_table_get(&t, "other"), 6);
    assert_int_equal(t.n, 2);
}

static void test_literal_never_confuses_a_reused_buffer(void **state)
{
    (void)state;
    struct metrics_table t = {0};
    char buf[16];
    /* A buffer reused for another name: text comparison, not its address. */
    snprintf(buf, sizeof(buf), "a");
    metrics_table_add(&t, buf, 1);
    snprintf(buf, sizeof(buf), "b");
    metrics_table_add(&t, buf, 1);
    assert_int_equal(metrics_table_get(&t, "a"), 1);
    assert_int_equal(metrics_table_get(&t, "b"), 1);
    /* A literal is found by address after the first time, and still by
     * text when a buffer says the same. */
    static const char lit[] = "a";
    metrics_table_add_literal(&t, lit, 1);
    metrics_table_add_literal(&t, lit, 1);
    metrics_table_add(&t, buf, 1); /* "b" */
    assert_int_equal(metrics_table_get(&t, "a"), 3);
    assert_int_equal(metrics_table_get(&t, "b"), 2);
}

static void test_closed_table_and_cap(void **state)
{
    (void)state;
    struct metrics_table t = {0};
    static const char *const names[] = {"auth", "ping"};
    metrics_table_close(&t, names, 2);
    metrics_table_add(&t, "ping", 1);
    metrics_table_add(&t, "chosen-by-a-client", 1);
    assert_int_equal(t.n, 2);
    assert_int_equal(metrics_table_get(&t, "auth"), 0);
    assert_int_equal(metrics_table_get(&t, "ping"), 1);
    assert_int_equal(metrics_table_get(&t, "other"), 1);

    struct metrics_table open = {0};
    char name[32];
    for (int i = 0; i < METRICS_TABLE_MAX + 10; i++) {
        snprintf(name, sizeof(name), "n%d", i);
        metrics_table_add(&open, name, 1);
    }
    assert_int_equal(open.n, METRICS_TABLE_MAX);
    assert_int_equal(open.other, 10);
    char longname[METRICS_NAME_MAX + 2];
    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    struct metrics_table t2 = {0};
    metrics_table_add(&t2, longname, 1);
    assert_int_equal(t2.n, 0);
    assert_int_equal(t2.other, 1);
}

static void test_hist_bounds(void **state)
{
    (void)state;
    struct metrics_hist h = {0};
    metrics_hist_observe(&h, 0);        /* <= 1 ms */
    metrics_hist_observe(&h, 1000);     /* exactly 1 ms: le="0.001" */
    metrics_hist_observe(&h, 1001);     /* the next bucket */
    metrics_hist_observe(&h, -5);       /* a clock step back counts as 0 */
    metrics_hist_observe(&h, 61000000); /* past the last bound: +Inf only */
    assert_int_equal(h.count, 5);
    assert_int_equal(h.buckets[0], 3);
    assert_int_equal(h.buckets[1], 1);
    uint64_t in_buckets = 0;
    for (size_t i = 0; i < METRICS_HIST_BUCKETS; i++)
        in_buckets += h.buckets[i];
    assert_int_equal(in_buckets, 4);
    assert_int_equal(h.sum_us, 0 + 1000 + 1001 + 0 + 61000000);
    assert_true(metrics_hist_bound_s(0) == 0.001);
    assert_true(metrics_hist_bound_s(METRICS_HIST_BUCKETS - 1) == 60.0);
}

static void test_text(void **state)
{
    (void)state;
    struct metrics_buf b = {0};
    struct metrics_table t = {0};
    metrics_table_add(&t, "a\"b\\c\nd", 2);
    metrics_table_add(&t, NULL, 1);
    metrics_family(&b, "x_total", "counter", "Things.");
    metrics_table_write(&b, "x_total", "k", &t);
    metrics_sample(&b, "y", NULL, NULL, 7);
    struct metrics_hist h = {0};
    metrics_hist_observe(&h, 500);
    metrics_hist_observe(&h, 3000000);
    metrics_hist_write(&b, "d_seconds", "command", "git.status", &h);
    metrics_hist_write(&b, "e_seconds", NULL, NULL, &h);
    assert_false(b.oom);
    assert_non_null(strstr(b.p, "# HELP x_total Things.\n# TYPE x_total counter\n"));
    assert_non_null(strstr(b.p, "x_total{k=\"a\\\"b\\\\c\\nd\"} 2\n"));
    assert_non_null(strstr(b.p, "x_total{k=\"other\"} 1\n"));
    assert_non_null(strstr(b.p, "\ny 7\n"));
    assert_non_null(strstr(b.p, "d_seconds_bucket{command=\"git.status\",le=\"0.001\"} 1\n"));
    assert_non_null(strstr(b.p, "d_seconds_bucket{command=\"git.status\",le=\"1\"} 1\n"));
    assert_non_null(strstr(b.p, "d_seconds_bucket{command=\"git.status\",le=\"5\"} 2\n"));
    assert_non_null(strstr(b.p, "d_seconds_bucket{command=\"git.status\",le=\"+Inf\"} 2\n"));
    assert_non_null(strstr(b.p, "d_seconds_sum{command=\"git.status\"} 3.000500\n"));
    assert_non_null(strstr(b.p, "d_seconds_count{command=\"git.status\"} 2\n"));
    assert_non_null(strstr(b.p, "e_seconds_bucket{le=\"+Inf\"} 2\n"));
    assert_non_null(strstr(b.p, "e_seconds_sum 3.000500\n"));
    assert_non_null(strstr(b.p, "e_seconds_count 2\n"));
    assert_int_equal(strlen(b.p), b.len);
    metrics_buf_free(&b);
    assert_null(b.p);
}

static void test_buffer_grows(void **state)
{
    (void)state;
    struct metrics_buf b = {0};
    for (int i = 0; i < 2000; i++)
        metrics_buf_printf(&b, "line %d of a text longer than the first allocation\n", i);
    assert_false(b.oom);
    assert_true(b.len > 4096 * 8);
    assert_non_null(strstr(b.p, "line 1999 of"));
    assert_non_null(strstr(b.p, "line 0 of"));
    assert_int_equal(strlen(b.p), b.len);
    metrics_buf_free(&b);
}

static void test_hist_table(void **state)
{
    (void)state;
    struct metrics_hist_table t = {0};
    metrics_hist_table_observe(&t, "fs.read", 10);
    metrics_hist_table_observe(&t, "fs.read", 20);
    metrics_hist_table_observe(&t, NULL, 20);
    assert_int_equal(t.n, 1);
    assert_int_equal(t.e[0].h.count, 2);
    assert_int_equal(t.other.count, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_counts_by_name),
        cmocka_unit_test(test_literal_never_confuses_a_reused_buffer),
        cmocka_unit_test(test_closed_table_and_cap),
        cmocka_unit_test(test_hist_bounds),
        cmocka_unit_test(test_text),
        cmocka_unit_test(test_buffer_grows),
        cmocka_unit_test(test_hist_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
