/*
 * metrics_page: the text of GET /metrics (Prometheus exposition format
 * 0.0.4), gathered from the transport's counters, the data plane's, and
 * the modules that count their own (events, tasks, approvals, agents).
 * Counts and durations only: no ids, users, paths, names a client chose,
 * or anything secret. The sources are borrowed for the call.
 */
#ifndef COMPANION_METRICS_PAGE_H
#define COMPANION_METRICS_PAGE_H

struct agents;
struct app_counters;
struct approvals;
struct dispatch;
struct events;
struct metrics_buf;
struct server;

struct metrics_page_src {
    const struct server *server;
    const struct app_counters *counters;
    const struct events *events;
    const struct dispatch *dispatch;
    const struct approvals *approvals;
    const struct agents *agents;
};

void metrics_page_write(const struct metrics_page_src *src, struct metrics_buf *b);

#endif
