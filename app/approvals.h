/*
 * approvals: consent for risky actions, from wherever the owner is. An
 * approval is made when something needs consent (a task marked `confirm`
 * today, an agent's tool call tomorrow); it names the exact action, who
 * asked, when it expires, and the decisions it accepts. The editor and any
 * client whose token has the `approve` scope may answer; the first valid
 * answer wins, every later one is told by whom it was decided, and no
 * answer before the expiry is a deny.
 *
 * Ids are short numbers, never reused, also across restarts: they are
 * reserved in blocks from a counter in the user's state folder
 * ($XDG_STATE_HOME/companion/approval-ids, locked while it is updated), so
 * a late "yes 7" can only ever mean approval 7.
 *
 * Announced as events (approval.requested / approval.resolved) to clients
 * with `approve`, as chat text to chats with `notify on`, and to the editor
 * (companion/approvalRequested / companion/approvalResolved). Every request
 * and decision goes to the audit log.
 *
 * Ownership: the registry owns its approvals; a request's action is taken;
 * the owner's done callback runs exactly once per approval (or not at all
 * when approvals_request fails).
 */
#ifndef COMPANION_APPROVALS_H
#define COMPANION_APPROVALS_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

struct approvals;
struct editor_port;
struct events;
struct logger;
struct loop;
struct settings;

/* The decisions, also as option bits. */
enum approval_decision {
    APPROVAL_ALLOW_ONCE = 1u << 0,
    APPROVAL_ALLOW_ALWAYS = 1u << 1,
    APPROVAL_DENY = 1u << 2,
};
#define APPROVAL_ALL_OPTIONS (APPROVAL_ALLOW_ONCE | APPROVAL_ALLOW_ALWAYS | APPROVAL_DENY)

/* How an approval ended, for its owner. */
enum approval_outcome {
    APPROVAL_ALLOWED_ONCE = 0,
    APPROVAL_ALLOWED_ALWAYS,
    APPROVAL_DENIED,
    APPROVAL_EXPIRED,   /* no answer before expiresAt: a deny */
    APPROVAL_WITHDRAWN, /* the asking client went, or its owner withdrew it */
};

/* Pending approvals one owner may have at once; beyond it, a deny at once. */
#define APPROVALS_PER_OWNER 5

struct approval_request {
    const char *kind;    /* "task" or "agent" */
    const char *title;   /* one line for a person: "Run task \"deploy\"?" */
    json_object *action; /* the exact action (taken) */
    unsigned options;    /* decisions it accepts (bits) */
    const char *user_id; /* who asked */
    const char *session_id;
    const void *owner; /* withdrawn with approvals_withdraw_owner; NULL: none */
    /* allow_always remembers (kind, action, remember_key) until the helper
     * restarts: a task passes its requester's token; NULL: not remembered
     * by the registry (an agent keeps its own). */
    const char *remember_key;
    void (*done)(void *ud, enum approval_outcome outcome, const char *decided_by);
    void *ud;
};

struct approvals_env {
    struct logger *log;
    const struct settings *st; /* approvals.timeoutSeconds */
    struct events *events;
    const struct editor_port *editor;
    struct loop *loop;
};

struct approvals *approvals_new(const struct approvals_env *env);
/* Pending approvals are withdrawn (their owners told) and freed. */
void approvals_free(struct approvals *a);
struct metrics_buf;
/* GET /metrics: pending now, requested, and how they ended. */
void approvals_metrics_write(const struct approvals *a, struct metrics_buf *b);

/* Makes an approval. Returns its id (> 0), 0 when an earlier allow_always
 * already covers it (done has run: APPROVAL_ALLOWED_ALWAYS), or -1 with err
 * set (too many pending for this owner, out of memory: done is not called;
 * the caller refuses the action). */
int64_t approvals_request(struct approvals *a, const struct approval_request *req, char *err,
                          size_t errlen);

enum approval_answer {
    APPROVAL_TOOK = 0,
    APPROVAL_UNKNOWN,     /* no such id (or from before a restart) */
    APPROVAL_DECIDED,     /* decided already: message says how and by whom */
    APPROVAL_NOT_OFFERED, /* that decision is not among its options */
};

/* An answer from `by` ("editor", or a client's user id). message gets a
 * sentence for the one who answered. */
enum approval_answer approvals_decide(struct approvals *a, int64_t id,
                                      enum approval_decision decision, const char *by,
                                      char *message, size_t len);
/* Withdraws every pending approval of owner (its client went). */
void approvals_withdraw_owner(struct approvals *a, const void *owner);
/* Withdraws one approval (its owner no longer needs it). */
void approvals_withdraw(struct approvals *a, int64_t id);

/* When pending approval id expires (wall clock, ms, as its expiresAt says);
 * 0 when it is not pending. */
int64_t approvals_expires_at(const struct approvals *a, int64_t id);

/* {approvals:[...]} of the pending ones, as approval.requested shows each. */
json_object *approvals_list_json(const struct approvals *a);

/* "allow_once" -> APPROVAL_ALLOW_ONCE ...; 0 when unknown. */
unsigned approval_decision_parse(const char *name);
const char *approval_decision_name(enum approval_decision d);
const char *approval_outcome_name(enum approval_outcome o);

#endif
