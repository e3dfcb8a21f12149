/*
 * approvals: the registry of pending approvals (see approvals.h).
 */
#include "app/approvals.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "app/editor_port.h"
#include "app/events.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/secret.h"
#include "core/settings.h"
#include "server/loop.h"

/* Ids reserved from the state file at a time. */
#define ID_BLOCK 64
/* Decided approvals remembered to tell a late answer who decided. */
#define RECENT_MAX 128
/* allow_always entries kept (until the helper restarts). */
#define ALWAYS_MAX 256

struct approval {
    struct approval *next;
    struct approvals *a;
    int64_t id;
    char *kind, *title, *user_id, *session_id, *remember;
    json_object *action;
    unsigned options;
    int64_t created_ms, expires_ms; /* wall clock */
    const void *owner;
    struct loop_timer *timer;
    void (*done)(void *ud, enum approval_outcome outcome, const char *decided_by);
    void *ud;
};

struct recent {
    int64_t id;
    enum approval_outcome outcome;
    char by[64];
    int64_t at_ms;
};

struct approvals {
    struct approvals_env env;
    struct approval *pending;
    int64_t next_id, block_end; /* ids next_id..block_end-1 are ours */
    struct recent recent[RECENT_MAX];
    size_t n_recent, recent_head;
    char *always[ALWAYS_MAX]; /* "kind\n" action "\n" remember key */
    size_t n_always;
    uint64_t requested;
    struct metrics_table outcomes; /* for GET /metrics */
};

/* ---- ids ---- */

/* Takes the next block of ids from the state file, under a lock, so two
 * helpers (two workspaces) and a restart never hand out one id twice. */
static int reserve_block(struct approvals *a)
{
    char err[256], buf[32];
    int fd = secret_state_open("approval-ids", err, sizeof(err));
    if (fd < 0) {
        log_msg(a->env.log, LOG_WARN, "approval ids: %s", err);
        return -1;
    }
    int rc = -1;
    if (flock(fd, LOCK_EX) == 0) {
        ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
        buf[n > 0 ? n : 0] = '\0';
        char *end;
        long long next = strtoll(buf, &end, 10);
        if (next < 1 || next > INT64_MAX / 2)
            next = 1;
        int len = snprintf(buf, sizeof(buf), "%lld\n", next + ID_BLOCK);
        if (pwrite(fd, buf, (size_t)len, 0) == len && ftruncate(fd, len) == 0 && fsync(fd) == 0) {
            a->next_id = next;
            a->block_end = next + ID_BLOCK;
            rc = 0;
        }
        flock(fd, LOCK_UN);
    }
    close(fd);
    return rc;
}

static int64_t next_id(struct approvals *a)
{
    if (a->next_id >= a->block_end && reserve_block(a) < 0) {
        /* No state folder: ids from the clock (eight a second since
         * 2026, nine digits until about 2029+), still growing across
         * restarts unless more than eight a second were asked for. */
        int64_t t = (clock_wall_ms() / 1000 - 1767225600LL) * 8;
        if (t < 1000)
            t = 1000;
        if (a->next_id < t)
            a->next_id = t;
        a->block_end = a->next_id + 1;
    }
    return a->next_id++;
}

/* ---- names and JSON ---- */

unsigned approval_decision_parse(const char *name)
{
    if (!name)
        return 0;
    if (strcmp(name, "allow_once") == 0)
        return APPROVAL_ALLOW_ONCE;
    if (strcmp(name, "allow_always") == 0)
        return APPROVAL_ALLOW_ALWAYS;
    if (strcmp(name, "deny") == 0)
        return APPROVAL_DENY;
    return 0;
}

const char *approval_decision_name(enum approval_decision d)
{
    return d == APPROVAL_ALLOW_ONCE     ? "allow_once"
           : d == APPROVAL_ALLOW_ALWAYS ? "allow_always"
                                        : "deny";
}

const char *approval_outcome_name(enum approval_outcome o)
{
    static const char *const names[] = {"allow_once", "allow_always", "deny", "expired",
                                        "withdrawn"};
    return (unsigned)o < sizeof(names) / sizeof(names[0]) ? names[o] : "deny";
}

static json_object *options_json(unsigned options)
{
    json_object *arr = json_object_new_array();
    static const enum approval_decision all[] = {APPROVAL_ALLOW_ONCE, APPROVAL_ALLOW_ALWAYS,
                                                 APPROVAL_DENY};
    for (size_t i = 0; i < 3; i++)
        if (options & all[i])
            json_object_array_add(arr, json_object_new_string(approval_decision_name(all[i])));
    return arr;
}

static json_object *approval_json(const struct approval *p)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "approvalId", json_object_new_int64(p->id));
    json_object_object_add(o, "kind", json_object_new_string(p->kind));
    json_object_object_add(o, "title", json_object_new_string(p->title));
    json_object_object_add(o, "action", json_object_get(p->action));
    json_object *by = json_object_new_object();
    json_object_object_add(by, "userId", json_object_new_string(p->user_id));
    json_object_object_add(by, "sessionId", json_object_new_string(p->session_id));
    json_object_object_add(o, "requestedBy", by);
    json_object_object_add(o, "createdAt", json_object_new_int64(p->created_ms));
    json_object_object_add(o, "expiresAt", json_object_new_int64(p->expires_ms));
    json_object_object_add(o, "options", options_json(p->options));
    return o;
}

static json_object *resolved_json(int64_t id, enum approval_outcome o, const char *by, int64_t at)
{
    json_object *r = json_object_new_object();
    json_object_object_add(r, "approvalId", json_object_new_int64(id));
    json_object_object_add(r, "decision", json_object_new_string(approval_outcome_name(o)));
    json_object_object_add(r, "decidedBy", json_object_new_string(by));
    json_object_object_add(r, "decidedAt", json_object_new_int64(at));
    return r;
}

/* The registry's allow_always key of an action. malloc'd or NULL. */
static char *always_key(const char *kind, json_object *action, const char *remember)
{
    const char *act = json_object_to_json_string_ext(action, JSON_C_TO_STRING_PLAIN);
    size_t n = strlen(kind) + strlen(act) + strlen(remember) + 3;
    char *k = malloc(n);
    if (k)
        snprintf(k, n, "%s\n%s\n%s", kind, act, remember);
    return k;
}

static int always_has(const struct approvals *a, const char *key)
{
    for (size_t i = 0; key && i < a->n_always; i++)
        if (strcmp(a->always[i], key) == 0)
            return 1;
    return 0;
}

static void always_add(struct approvals *a, char *key)
{
    if (!key || always_has(a, key)) {
        free(key);
        return;
    }
    if (a->n_always == ALWAYS_MAX) { /* the oldest goes */
        free(a->always[0]);
        memmove(a->always, a->always + 1, (ALWAYS_MAX - 1) * sizeof(char *));
        a->n_always--;
    }
    a->always[a->n_always++] = key;
}

/* ---- ending ---- */

static void unlink_pending(struct approvals *a, struct approval *p)
{
    for (struct approval **pp = &a->pending; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            return;
        }
}

static void approval_free(struct approval *p)
{
    loop_timer_free(p->timer);
    json_object_put(p->action);
    free(p->kind);
    free(p->title);
    free(p->user_id);
    free(p->session_id);
    free(p->remember);
    free(p);
}

/* Ends p with outcome (decided by `by`): announces it, remembers it, tells
 * its owner last (the owner may start the action, or make a new approval). */
static void finish(struct approval *p, enum approval_outcome outcome, const char *by)
{
    struct approvals *a = p->a;
    int64_t now = clock_wall_ms();
    unlink_pending(a, p);
    struct recent *r = &a->recent[(a->recent_head + a->n_recent) % RECENT_MAX];
    if (a->n_recent == RECENT_MAX)
        a->recent_head = (a->recent_head + 1) % RECENT_MAX;
    else
        a->n_recent++;
    r->id = p->id;
    r->outcome = outcome;
    snprintf(r->by, sizeof(r->by), "%s", by);
    r->at_ms = now;
    if (outcome == APPROVAL_ALLOWED_ALWAYS && p->remember)
        always_add(a, always_key(p->kind, p->action, p->remember));
    log_msg(a->env.log, LOG_INFO, "approval %" PRId64 " (%s: %s) %s by %s", p->id, p->kind,
            p->title, approval_outcome_name(outcome), by);
    metrics_table_add_literal(&a->outcomes, approval_outcome_name(outcome), 1);
    events_publish(a->env.events, EVENT_APPROVAL_RESOLVED, resolved_json(p->id, outcome, by, now));
    const struct editor_port *ed = a->env.editor;
    if (ed->attached(ed->ud))
        ed->notify(ed->ud, "companion/approvalResolved", resolved_json(p->id, outcome, by, now));
    void (*done)(void *, enum approval_outcome, const char *) = p->done;
    void *ud = p->ud;
    char who[64];
    snprintf(who, sizeof(who), "%s", by);
    approval_free(p);
    if (done)
        done(ud, outcome, who);
}

static void on_expiry(void *arg)
{
    finish(arg, APPROVAL_EXPIRED, "nobody (expired)");
}

/* ---- the registry ---- */

struct approvals *approvals_new(const struct approvals_env *env)
{
    struct approvals *a = calloc(1, sizeof(*a));
    if (a)
        a->env = *env;
    return a;
}

void approvals_free(struct approvals *a)
{
    if (!a)
        return;
    while (a->pending)
        finish(a->pending, APPROVAL_WITHDRAWN, "the helper (stopping)");
    for (size_t i = 0; i < a->n_always; i++)
        free(a->always[i]);
    free(a);
}

int64_t approvals_request(struct approvals *a, const struct approval_request *req, char *err,
                          size_t errlen)
{
    char *key = req->remember_key ? always_key(req->kind, req->action, req->remember_key) : NULL;
    if (key && always_has(a, key)) {
        free(key);
        log_msg(a->env.log, LOG_INFO, "approval not asked again (%s: %s): allowed always for %s",
                req->kind, req->title, req->user_id);
        json_object_put(req->action);
        req->done(req->ud, APPROVAL_ALLOWED_ALWAYS, "an earlier allow_always");
        return 0;
    }
    free(key);
    size_t mine = 0;
    for (const struct approval *p = a->pending; p; p = p->next)
        mine += req->owner && p->owner == req->owner;
    if (req->owner && mine >= APPROVALS_PER_OWNER) {
        snprintf(err, errlen, "too many approvals waiting for this client (at most %d)",
                 APPROVALS_PER_OWNER);
        log_msg(a->env.log, LOG_WARN, "approval refused for %s (%s: %s): %s", req->user_id,
                req->kind, req->title, err);
        json_object_put(req->action);
        return -1;
    }
    struct approval *p = calloc(1, sizeof(*p));
    if (!p || !(p->kind = strdup(req->kind)) || !(p->title = strdup(req->title)) ||
        !(p->user_id = strdup(req->user_id ? req->user_id : "")) ||
        !(p->session_id = strdup(req->session_id ? req->session_id : "")) ||
        (req->remember_key && !(p->remember = strdup(req->remember_key))) ||
        !(p->timer = loop_timer_new(a->env.loop, on_expiry, p))) {
        if (p) {
            p->action = req->action;
            approval_free(p);
        } else {
            json_object_put(req->action);
        }
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    p->a = a;
    p->action = req->action;
    p->options = req->options ? req->options : APPROVAL_ALL_OPTIONS;
    p->owner = req->owner;
    p->done = req->done;
    p->ud = req->ud;
    p->id = next_id(a);
    int64_t timeout_ms = (int64_t)a->env.st->approval_timeout_s * 1000;
    p->created_ms = clock_wall_ms();
    p->expires_ms = p->created_ms + timeout_ms;
    loop_timer_arm(p->timer, timeout_ms);
    p->next = a->pending;
    a->pending = p;
    a->requested++;
    log_msg(a->env.log, LOG_INFO, "approval %" PRId64 " requested by %s: %s (%s)", p->id,
            p->user_id, p->title,
            json_object_to_json_string_ext(p->action, JSON_C_TO_STRING_PLAIN));
    events_publish(a->env.events, EVENT_APPROVAL_REQUESTED, approval_json(p));
    const struct editor_port *ed = a->env.editor;
    if (ed->attached(ed->ud))
        ed->notify(ed->ud, "companion/approvalRequested", approval_json(p));
    return p->id;
}

static struct approval *find(const struct approvals *a, int64_t id)
{
    for (struct approval *p = a->pending; p; p = p->next)
        if (p->id == id)
            return p;
    return NULL;
}

int64_t approvals_expires_at(const struct approvals *a, int64_t id)
{
    const struct approval *p = find(a, id);
    return p ? p->expires_ms : 0;
}

enum approval_answer approvals_decide(struct approvals *a, int64_t id,
                                      enum approval_decision decision, const char *by,
                                      char *message, size_t len)
{
    struct approval *p = find(a, id);
    if (!p) {
        for (size_t i = 0; i < a->n_recent; i++) {
            const struct recent *r = &a->recent[(a->recent_head + i) % RECENT_MAX];
            if (r->id == id) {
                snprintf(message, len, "approval %" PRId64 " was already decided: %s by %s", id,
                         approval_outcome_name(r->outcome), r->by);
                return APPROVAL_DECIDED;
            }
        }
        snprintf(message, len, "no approval %" PRId64 " is waiting", id);
        return APPROVAL_UNKNOWN;
    }
    if (!(p->options & decision)) {
        snprintf(message, len, "approval %" PRId64 " does not offer %s", id,
                 approval_decision_name(decision));
        return APPROVAL_NOT_OFFERED;
    }
    enum approval_outcome o = decision == APPROVAL_ALLOW_ONCE     ? APPROVAL_ALLOWED_ONCE
                              : decision == APPROVAL_ALLOW_ALWAYS ? APPROVAL_ALLOWED_ALWAYS
                                                                  : APPROVAL_DENIED;
    snprintf(message, len, "approval %" PRId64 ": %s", id, approval_outcome_name(o));
    finish(p, o, by);
    return APPROVAL_TOOK;
}

void approvals_withdraw_owner(struct approvals *a, const void *owner)
{
    struct approval *p = a->pending;
    while (p) {
        struct approval *next = p->next;
        if (owner && p->owner == owner) {
            finish(p, APPROVAL_WITHDRAWN, "the asking client (gone)");
            next = a->pending; /* the list may have changed under us */
        }
        p = next;
    }
}

void approvals_withdraw(struct approvals *a, int64_t id)
{
    struct approval *p = find(a, id);
    if (p)
        finish(p, APPROVAL_WITHDRAWN, "the asker");
}

json_object *approvals_list_json(const struct approvals *a)
{
    json_object *arr = json_object_new_array();
    for (const struct approval *p = a->pending; p; p = p->next)
        json_object_array_add(arr, approval_json(p));
    json_object *r = json_object_new_object();
    json_object_object_add(r, "approvals", arr);
    return r;
}

void approvals_metrics_write(const struct approvals *a, struct metrics_buf *b)
{
    uint64_t pending = 0;
    for (const struct approval *p = a->pending; p; p = p->next)
        pending++;
    metrics_family(b, "companion_approvals_pending", "gauge", "Approvals waiting for a decision.");
    metrics_sample(b, "companion_approvals_pending", NULL, NULL, pending);
    metrics_family(b, "companion_approvals_requested_total", "counter", "Approvals requested.");
    metrics_sample(b, "companion_approvals_requested_total", NULL, NULL, a->requested);
    metrics_family(b, "companion_approvals_resolved_total", "counter",
                   "Approvals ended, by outcome.");
    metrics_table_write(b, "companion_approvals_resolved_total", "outcome", &a->outcomes);
}
