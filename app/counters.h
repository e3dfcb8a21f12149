/*
 * counters: what the data plane and the git watcher count, for
 * server/status and GET /metrics (beside the transport's own, server.h). One instance, owned
 * by the helper, written on the loop thread only.
 */
#ifndef COMPANION_COUNTERS_H
#define COMPANION_COUNTERS_H

#include <stdint.h>

#include "core/metrics.h"

struct app_counters {
    uint64_t auth_succeeded;
    uint64_t auth_failed;
    uint64_t messages_in;
    uint64_t commands;
    uint64_t command_errors;
    uint64_t invalid_messages;
    uint64_t rate_limited;
    uint64_t git_status_cached;  /* answered from the last status */
    uint64_t git_status_partial; /* brought up to date from the paths that changed */
    uint64_t git_status_full;    /* walked the whole work tree (watched folders) */
    /* for GET /metrics */
    struct metrics_table in_by_type; /* closed: the types a client may send */
    struct metrics_table command_errors_by_code;
    struct metrics_hist_table command_latency; /* by command name */
};

#endif
