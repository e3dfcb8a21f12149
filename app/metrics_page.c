/*
 * metrics_page: composes GET /metrics from every module's counters (see
 * metrics_page.h). Families are named companion_*; counters end in _total,
 * durations are in seconds.
 */
#include "app/metrics_page.h"

#include "app/agents.h"
#include "app/approvals.h"
#include "app/counters.h"
#include "app/dispatch.h"
#include "app/events.h"
#include "core/metrics.h"
#include "server/server.h"

static void counter(struct metrics_buf *b, const char *name, const char *help, uint64_t v)
{
    metrics_family(b, name, "counter", help);
    metrics_sample(b, name, NULL, NULL, v);
}

static void connections(const struct server *srv, struct metrics_buf *b)
{
    const struct server_counters *t = server_counters(srv);
    int open = server_connections(srv), authenticating = server_authenticating(srv);
    metrics_family(b, "companion_connections", "gauge",
                   "WebSocket connections open now, by state.");
    metrics_sample(b, "companion_connections", "state", "authenticated",
                   (uint64_t)(open > authenticating ? open - authenticating : 0));
    metrics_sample(b, "companion_connections", "state", "authenticating", (uint64_t)authenticating);
    counter(b, "companion_connections_total", "WebSocket connections accepted.",
            t->connections_total);
    counter(b, "companion_http_refused_total",
            "HTTP requests refused before an upgrade (Host, Origin, path, caps).",
            t->connections_refused);
    counter(b, "companion_auth_timeouts_total",
            "Connections closed for not authenticating in time.", t->auth_timeouts);
    counter(b, "companion_slow_consumers_total",
            "Connections closed 1008 because they did not read.", t->slow_consumers);
    counter(b, "companion_heartbeat_timeouts_total",
            "Connections closed 4002 after the idle limit.", t->heartbeat_timeouts);
    counter(b, "companion_oversize_messages_total",
            "Messages refused for exceeding limits.maxMessageBytes.", t->oversize_messages);
    counter(b, "companion_received_bytes_total", "WebSocket payload bytes received.", t->bytes_in);
    counter(b, "companion_sent_bytes_total", "WebSocket payload bytes sent.", t->bytes_out);
    metrics_family(b, "companion_messages_sent_total", "counter", "Messages queued, by type.");
    metrics_table_write(b, "companion_messages_sent_total", "type", &t->out_by_type);
    metrics_family(b, "companion_error_messages_total", "counter",
                   "`error` messages sent, by code.");
    metrics_table_write(b, "companion_error_messages_total", "code", &t->errors_by_code);
}

static void data_plane(const struct app_counters *c, struct metrics_buf *b)
{
    metrics_family(b, "companion_auth_total", "counter", "Authentications, by result.");
    metrics_sample(b, "companion_auth_total", "result", "success", c->auth_succeeded);
    metrics_sample(b, "companion_auth_total", "result", "failure", c->auth_failed);
    metrics_family(b, "companion_messages_received_total", "counter",
                   "Messages received, by type (other: a type the protocol does not have).");
    metrics_table_write(b, "companion_messages_received_total", "type", &c->in_by_type);
    counter(b, "companion_rate_limited_total", "Messages refused by the per-client rate limit.",
            c->rate_limited);
    counter(b, "companion_commands_total", "Commands received (chat words included).", c->commands);
    metrics_family(b, "companion_command_errors_total", "counter",
                   "Commands answered with an error, by code.");
    metrics_table_write(b, "companion_command_errors_total", "code", &c->command_errors_by_code);
    metrics_family(b, "companion_command_duration_seconds", "histogram",
                   "From a command's arrival to its answer, by command.");
    metrics_hist_table_write(b, "companion_command_duration_seconds", "command",
                             &c->command_latency);
    metrics_family(b, "companion_git_status_total", "counter",
                   "git.status answers of watched folders, by how they were made.");
    metrics_sample(b, "companion_git_status_total", "how", "cached", c->git_status_cached);
    metrics_sample(b, "companion_git_status_total", "how", "partial", c->git_status_partial);
    metrics_sample(b, "companion_git_status_total", "how", "full", c->git_status_full);
}

void metrics_page_write(const struct metrics_page_src *src, struct metrics_buf *b)
{
    connections(src->server, b);
    data_plane(src->counters, b);
    metrics_family(b, "companion_events_total", "counter", "Events published, by kind.");
    metrics_table_write(b, "companion_events_total", "kind", &src->events->published);
    metrics_family(b, "companion_tasks_running", "gauge", "Tasks running now.");
    metrics_sample(b, "companion_tasks_running", NULL, NULL,
                   (uint64_t)dispatch_running_tasks(src->dispatch));
    approvals_metrics_write(src->approvals, b);
    agents_metrics_write(src->agents, b);
}
