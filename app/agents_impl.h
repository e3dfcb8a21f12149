/*
 * agents_impl: the state behind agents.h, shared by agents.c (agents,
 * conversations, turns, ACP and vscode-lm), agents_cmd.c (the WebSocket
 * commands, followers and the update ring) and agents_chat.c (chat mode).
 * Internal to those three files.
 *
 * Ownership: struct agents owns its agents (agent_rt), conversations
 * (conv) and their turns; a turn holds its prompting client weakly (NULL
 * once it went), a conversation its followers weakly (removed when they
 * go). Requests sent to an agent or the editor carry a struct agents_call
 * whose back pointers are cleared when what they answer goes first, so an
 * answer never reaches freed memory.
 */
#ifndef COMPANION_AGENTS_IMPL_H
#define COMPANION_AGENTS_IMPL_H

#include "core/metrics.h"
#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

#include "app/agents.h"

struct agent_proc;
struct chat_stream;
struct client;
struct loop_timer;
struct rpc_req;
struct settings_agent;

/* One configured agent at run time. */
struct agent_rt {
    struct agent_rt *next;
    struct agents *a;
    char *name;
    char *fingerprint;       /* type, command, args and env as configured */
    int type;                /* enum settings_agent_type */
    struct agent_proc *proc; /* NULL: not running */
    struct agent_proc *dead; /* ended; freed by `reap` outside its callbacks */
    struct loop_timer *reap;
    int ready;    /* initialize answered */
    unsigned gen; /* bumps at every start: sessions of older processes must be loaded */
    int starts;
    char last_error[256];
};

enum turn_state {
    TURN_QUEUED = 0,
    TURN_STARTING, /* waiting for its agent or its session */
    TURN_RUNNING,  /* session/prompt (or editor/lm) sent */
};

struct perm; /* a permission request waiting for its approval */

struct turn {
    struct turn *next; /* in its conversation's queue */
    struct conv *cv;
    int n; /* the conversation's turn number */
    enum turn_state state;
    struct client *c; /* who prompted; NULL once gone */
    json_object *id;  /* its request id */
    char *by;         /* its user id */
    char *session;    /* its session id, for approvals */
    char *text;
    int64_t started_ms;
    struct agents_call *call; /* session/prompt or editor/lm */
    struct perm *perms;
    int cancel_requested;
    struct loop_timer *timer; /* the cancel grace, or the unwatched grace */
    int timer_is_cancel;
    /* chat mode: the answer as a few whole messages */
    struct chat_stream *chat;
    struct loop_timer *chat_timer;
    int64_t chat_sent_ms;
    int64_t chat_due_ms; /* when the next message may go; 0: none waits */
    char *answer;        /* vscode-lm: the text so far, for the history */
    size_t answer_len;
    /* the streaming dialect (user_message): its sessionId; the turn's
     * stream_* go out as {type, sessionId, content, data} */
    char *stream_session;
};

/* One kept update, for followers: the chunk as JSON text, not as a json-c
 * object (an object costs about 1 KiB more than its text: a small chunk
 * kept as one made the ring hold ten times AGENTS_RING_BYTES). */
struct agents_update {
    uint64_t seq;
    int turn;
    char *json; /* the chunk, serialized */
    size_t bytes;
};

struct conv {
    struct conv *next;
    struct agents *a;
    char id[24];
    char *agent;     /* its agent's name */
    char *chat_user; /* made by a chat: that user's current conversation */
    char *sid;       /* the agent's sessionId */
    unsigned sid_gen;
    int loading; /* session/load running: its replayed updates are not news */
    struct agents_call *session_call;
    int64_t created_ms, last_ms;
    int turns;
    struct turn *cur;   /* the turn running or starting */
    struct turn *queue; /* waiting, oldest first */
    int queued;
    /* updates, oldest first, AGENTS_RING_BYTES at most */
    struct agents_update *ring;
    size_t ring_n, ring_cap, ring_head, ring_bytes;
    uint64_t seq;
    struct client **followers;
    size_t n_followers, cap_followers;
    json_object *history; /* vscode-lm: [{role, text}] */
    size_t history_bytes;
};

enum agents_call_kind { CALL_SESSION, CALL_PROMPT, CALL_LM };

struct agents_call {
    enum agents_call_kind kind;
    struct agents *a;
    struct conv *cv; /* CALL_SESSION; NULL once the conversation went */
    struct turn *t;  /* CALL_PROMPT, CALL_LM; NULL once the turn ended */
    int64_t editor_id;
};

struct agents {
    struct agents_env env;
    struct agent_rt *rts;
    struct conv *convs; /* oldest first */
    size_t n_convs;
    uint64_t next_conv;
    int running;                      /* turns starting or running */
    struct metrics_hist turn_latency; /* started to ended, for GET /metrics */
    struct metrics_table turn_ends;   /* by stopReason */
};

/* agents.c */
struct conv *agents_conv_find(struct agents *a, const char *id);
/* A new conversation with agent `name` (checked by the caller), or NULL
 * with code/message set (LIMIT: every conversation is busy). */
struct conv *agents_conv_new(struct agents *a, const char *name, const char **code,
                             const char **message);
/* A turn for c's text (copied), queued in cv; the caller announces it,
 * then calls agents_pump_now. Returns it, or NULL with code/message set
 * (BUSY). */
struct turn *agents_turn_new(struct conv *cv, struct client *c, json_object *id, const char *text,
                             const char **code, const char **message);
/* Starts queued turns while the caps allow: on the next turn of the loop
 * (from inside a turn's end), or now (after a new turn was announced). */
void agents_pump(struct agents *a);
void agents_pump_now(struct agents *a);
/* Cancels cv's running turn and drops its queue. Returns 1 when there was
 * something to cancel. */
int agents_conv_cancel(struct conv *cv);
/* Why an agent cannot be used now, or NULL. */
const char *agents_unavailable(struct agents *a, const char *name);
struct agent_rt *agents_rt(struct agents *a, const char *name);
const char *agents_rt_state(struct agents *a, const struct agent_rt *rt);

/* Ends t: its approvals withdrawn, its request dropped, stream_end to its
 * client, turn_end to followers, agent.turn_finished; frees it and starts
 * what waits. */
void agents_turn_end(struct turn *t, const char *stop_reason, const char *message);

/* agents_acp.c */
char *agents_fingerprint(const struct settings_agent *sa);
/* Starts the ACP turn t (the agent first, a session next, then the prompt). */
void agents_acp_begin(struct turn *t);
/* session/cancel for t's conversation. */
void agents_acp_cancel(struct turn *t);
/* Withdraws t's pending permission requests (the agent hears "cancelled"). */
void agents_acp_withdraw(struct turn *t);
/* The agent's process is stopped (its turns end with message). */
void agents_rt_stop(struct agent_rt *rt, const char *message);
void agents_rt_free(struct agent_rt *rt);

/* agents_lm.c */
void agents_lm_begin(struct turn *t, const struct settings_agent *sa);
void agents_lm_cancel(struct turn *t);
void agents_turn_id(const struct turn *t, char *out, size_t len);
void agents_history_add(struct conv *cv, const char *role, const char *text, size_t len);

/* agents_cmd.c */
/* Records a chunk (taken) of cv's turn t, sends it to t's client as
 * stream_chunk and to followers as agent_update, and to a chat turn's text. */
void agents_emit(struct turn *t, json_object *chunk);
/* turn_start / turn_end: followers only (the prompter has stream_*). */
void agents_emit_followers(struct conv *cv, int turn, json_object *chunk);
void agents_ring_free(struct conv *cv);
void agents_followers_drop(struct conv *cv, struct client *c);
/* Arms or disarms t's unwatched grace. */
void agents_watch_check(struct turn *t);
void agents_send(struct turn *t, const char *type, json_object *data);
/* A new turn's stream_start {conversation, agent, turn, queued} to its
 * prompter, then the pump (a turn starts as soon as it is announced). */
void agents_turn_announce(struct turn *t);

/* agents_chat.c */
void agents_chat_chunk(struct turn *t, json_object *chunk);
void agents_chat_end(struct turn *t, const char *stop_reason, const char *message);
void agents_chat_free(struct turn *t);

#endif
