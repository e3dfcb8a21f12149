/*
 * metrics: the counting primitives behind GET /metrics and their
 * Prometheus text rendering (exposition format 0.0.4). No I/O and no
 * allocation except in the text buffer.
 *
 * - metrics_table: counts by a label value (a message type, an error code,
 *   a command name), up to METRICS_TABLE_MAX distinct values; values past
 *   that, or not in the table when it is closed (metrics_table_close, for
 *   names a client chooses), count as "other". Names are copied in.
 * - metrics_hist: a latency histogram with fixed bounds from 1 ms to 60 s.
 * - metrics_buf: a growing text buffer the caller frees with
 *   metrics_buf_free; a failed allocation sets `oom` and drops the rest.
 *
 * Everything is written on the loop thread only; the structures are plain
 * values embedded in their owners.
 */
#ifndef COMPANION_METRICS_H
#define COMPANION_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define METRICS_TABLE_MAX    48
#define METRICS_NAME_MAX     40
#define METRICS_HIST_BUCKETS 12

struct metrics_table {
    size_t n;
    int closed; /* only names already in the table are counted by name */
    struct {
        const char *literal; /* a string literal seen for this name */
        char name[METRICS_NAME_MAX + 1];
        uint64_t value;
    } e[METRICS_TABLE_MAX];
    uint64_t other;
};

struct metrics_hist {
    uint64_t buckets[METRICS_HIST_BUCKETS]; /* not cumulative; +Inf is count */
    uint64_t count;
    uint64_t sum_us;
};

/* Histograms by a label value (a command name), like metrics_table. */
#define METRICS_HIST_TABLE_MAX 48
struct metrics_hist_table {
    size_t n;
    struct {
        char name[METRICS_NAME_MAX + 1];
        struct metrics_hist h;
    } e[METRICS_HIST_TABLE_MAX];
    struct metrics_hist other;
};

struct metrics_buf {
    char *p;
    size_t len, cap;
    int oom;
};

/* Adds n to name's count (a NULL or empty name counts as "other"). */
void metrics_table_add(struct metrics_table *t, const char *name, uint64_t n);
/* The same for a name with static storage (a string literal): found by its
 * address after the first time, without comparing text. */
void metrics_table_add_literal(struct metrics_table *t, const char *name, uint64_t n);
/* Registers names with a zero count, then closes the table to new names. */
void metrics_table_close(struct metrics_table *t, const char *const *names, size_t n);
uint64_t metrics_table_get(const struct metrics_table *t, const char *name);

void metrics_hist_observe(struct metrics_hist *h, int64_t us);
void metrics_hist_table_observe(struct metrics_hist_table *t, const char *name, int64_t us);
/* The upper bound of bucket i in seconds ("+Inf" past the last). */
double metrics_hist_bound_s(size_t i);

void metrics_buf_printf(struct metrics_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void metrics_buf_free(struct metrics_buf *b);

/* One metric family: its HELP and TYPE lines. type: counter, gauge, histogram. */
void metrics_family(struct metrics_buf *b, const char *name, const char *type, const char *help);
/* name{label="value"} n, or name n when label is NULL; value escaped. */
void metrics_sample(struct metrics_buf *b, const char *name, const char *label, const char *value,
                    uint64_t n);
/* Every entry of t as name{label="..."} (with "other" when non-zero). */
void metrics_table_write(struct metrics_buf *b, const char *name, const char *label,
                         const struct metrics_table *t);
/* A histogram's _bucket/_sum/_count samples, with one label or none. */
void metrics_hist_write(struct metrics_buf *b, const char *name, const char *label,
                        const char *value, const struct metrics_hist *h);

/* Every histogram of t, labelled (with "other" when it has samples). */
void metrics_hist_table_write(struct metrics_buf *b, const char *name, const char *label,
                              const struct metrics_hist_table *t);

#endif
