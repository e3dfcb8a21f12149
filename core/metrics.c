/*
 * metrics: counting by label, latency histograms and their Prometheus text
 * (see metrics.h). The text buffer is the only allocation; its owner frees
 * it with metrics_buf_free.
 */
#include "core/metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Upper bounds in microseconds: 1 ms .. 60 s, roughly x2.5 apart. */
static const int64_t hist_bounds_us[METRICS_HIST_BUCKETS] = {
    1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 1000000, 5000000, 20000000, 60000000,
};

static void table_add(struct metrics_table *t, const char *name, uint64_t n, int literal)
{
    if (!name || !*name) {
        t->other += n;
        return;
    }
    /* A literal is found by one pointer comparison once it has been seen. */
    if (literal)
        for (size_t i = 0; i < t->n; i++)
            if (t->e[i].literal == name) {
                t->e[i].value += n;
                return;
            }
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->e[i].name, name) == 0) {
            if (literal)
                t->e[i].literal = name;
            t->e[i].value += n;
            return;
        }
    if (t->closed || t->n == METRICS_TABLE_MAX || strlen(name) > METRICS_NAME_MAX) {
        t->other += n;
        return;
    }
    snprintf(t->e[t->n].name, sizeof(t->e[t->n].name), "%s", name);
    t->e[t->n].literal = literal ? name : NULL;
    t->e[t->n].value = n;
    t->n++;
}

void metrics_table_add(struct metrics_table *t, const char *name, uint64_t n)
{
    table_add(t, name, n, 0);
}

void metrics_table_add_literal(struct metrics_table *t, const char *name, uint64_t n)
{
    table_add(t, name, n, 1);
}

void metrics_table_close(struct metrics_table *t, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        metrics_table_add(t, names[i], 0);
    t->closed = 1;
}

uint64_t metrics_table_get(const struct metrics_table *t, const char *name)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->e[i].name, name) == 0)
            return t->e[i].value;
    return strcmp(name, "other") == 0 ? t->other : 0;
}

void metrics_hist_observe(struct metrics_hist *h, int64_t us)
{
    if (us < 0)
        us = 0;
    h->count++;
    h->sum_us += (uint64_t)us;
    for (size_t i = 0; i < METRICS_HIST_BUCKETS; i++)
        if (us <= hist_bounds_us[i]) {
            h->buckets[i]++;
            return;
        }
}

void metrics_hist_table_observe(struct metrics_hist_table *t, const char *name, int64_t us)
{
    for (size_t i = 0; name && i < t->n; i++)
        if (strcmp(t->e[i].name, name) == 0) {
            metrics_hist_observe(&t->e[i].h, us);
            return;
        }
    if (!name || !*name || t->n == METRICS_HIST_TABLE_MAX || strlen(name) > METRICS_NAME_MAX) {
        metrics_hist_observe(&t->other, us);
        return;
    }
    snprintf(t->e[t->n].name, sizeof(t->e[t->n].name), "%s", name);
    memset(&t->e[t->n].h, 0, sizeof(t->e[t->n].h));
    metrics_hist_observe(&t->e[t->n].h, us);
    t->n++;
}

double metrics_hist_bound_s(size_t i)
{
    return i < METRICS_HIST_BUCKETS ? (double)hist_bounds_us[i] / 1e6 : 0;
}

void metrics_buf_printf(struct metrics_buf *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->len;
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? room : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if (b->p && (size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap : 4096;
        while (cap - b->len <= (size_t)n)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
}

void metrics_buf_free(struct metrics_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

void metrics_family(struct metrics_buf *b, const char *name, const char *type, const char *help)
{
    metrics_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value with \, " and newlines escaped, as the format asks. */
static void escaped(char *out, size_t outlen, const char *v)
{
    size_t o = 0;
    for (; *v && o + 3 < outlen; v++) {
        if (*v == '\\' || *v == '"') {
            out[o++] = '\\';
            out[o++] = *v;
        } else if (*v == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else {
            out[o++] = *v;
        }
    }
    out[o] = '\0';
}

void metrics_sample(struct metrics_buf *b, const char *name, const char *label, const char *value,
                    uint64_t n)
{
    if (!label) {
        metrics_buf_printf(b, "%s %llu\n", name, (unsigned long long)n);
        return;
    }
    char v[2 * METRICS_NAME_MAX + 8];
    escaped(v, sizeof(v), value);
    metrics_buf_printf(b, "%s{%s=\"%s\"} %llu\n", name, label, v, (unsigned long long)n);
}

void metrics_table_write(struct metrics_buf *b, const char *name, const char *label,
                         const struct metrics_table *t)
{
    for (size_t i = 0; i < t->n; i++)
        metrics_sample(b, name, label, t->e[i].name, t->e[i].value);
    if (t->other)
        metrics_sample(b, name, label, "other", t->other);
}

void metrics_hist_write(struct metrics_buf *b, const char *name, const char *label,
                        const char *value, const struct metrics_hist *h)
{
    char lv[2 * METRICS_NAME_MAX + 32] = "";
    if (label) {
        char v[2 * METRICS_NAME_MAX + 8];
        escaped(v, sizeof(v), value);
        snprintf(lv, sizeof(lv), "%s=\"%s\",", label, v);
    }
    uint64_t cum = 0;
    for (size_t i = 0; i < METRICS_HIST_BUCKETS; i++) {
        cum += h->buckets[i];
        metrics_buf_printf(b, "%s_bucket{%sle=\"%g\"} %llu\n", name, lv, metrics_hist_bound_s(i),
                           (unsigned long long)cum);
    }
    metrics_buf_printf(b, "%s_bucket{%sle=\"+Inf\"} %llu\n", name, lv,
                       (unsigned long long)h->count);
    size_t l = strlen(lv);
    if (l)
        lv[l - 1] = '\0'; /* the trailing comma */
    metrics_buf_printf(b, "%s_sum%s%s%s %.6f\n", name, l ? "{" : "", lv, l ? "}" : "",
                       (double)h->sum_us / 1e6);
    metrics_buf_printf(b, "%s_count%s%s%s %llu\n", name, l ? "{" : "", lv, l ? "}" : "",
                       (unsigned long long)h->count);
}

void metrics_hist_table_write(struct metrics_buf *b, const char *name, const char *label,
                              const struct metrics_hist_table *t)
{
    for (size_t i = 0; i < t->n; i++)
        metrics_hist_write(b, name, label, t->e[i].name, &t->e[i].h);
    if (t->other.count)
        metrics_hist_write(b, name, label, "other", &t->other);
}
