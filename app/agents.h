/*
 * agents: the workspace's coding agents and their conversations (issue 16).
 * An agent (settings `agents`, never from a client) is started on first use
 * through agent_proc (ACP over its stdio) or, for type vscode-lm, reached
 * through the editor port (`editor/lm`, answers as companion/lmChunk
 * notifications; unavailable in serve). Conversations are made by the
 * helper ("c1", "c2", ...; at most limits.maxConversations) and map to one
 * ACP session each (session/new with cwd = the workspace folder;
 * session/load when the agent was restarted and offers loadSession).
 *
 * A turn is one session/prompt. While one runs, later prompts of the same
 * conversation queue (AGENTS_QUEUE_MAX, then BUSY); at most
 * limits.maxAgentTurns turns run at once over all conversations. Every
 * session/update a phone can show (workspace/acp_map.h) is numbered within
 * its conversation and kept in a bounded ring (AGENTS_RING_BYTES), sent as
 * stream_chunk to the prompting client (id = its request id) and as
 * agent_update {conversation, seq, chunk} to followers (agent.follow
 * {conversation, since}: replay from the ring, then live). Updates never go
 * through the event ring; only agent.turn_finished does.
 *
 * session/request_permission becomes an approval (kind "agent", title from
 * the tool call, options as acp_map_permission says; owner = the turn, so a
 * client leaving does not withdraw it, agent.cancel does); the decision
 * answers {outcome:{outcome:"selected", optionId}}, expiry answers the
 * agent's deny option, a cancelled turn {outcome:{outcome:"cancelled"}}.
 * fs/read_text_file and fs/write_text_file go through workspace/folder.c
 * exactly as fs.read does (private paths refused, confined to the folder).
 *
 * Faults: a crash, exit, hang past limits.agentTurnTimeoutSeconds, no
 * initialize within limits.agentStartTimeoutSeconds, or a message over
 * limits.maxMessageBytes ends the turn with stream_end {stopReason:"error",
 * message} for the prompter and followers, and the next prompt starts the
 * agent again. A turn with no follower and no connected prompter for
 * limits.agentUnwatchedSeconds is cancelled (session/cancel).
 *
 * Ownership: agents owns its agents, conversations and turns; clients are
 * held weakly and detached by agents_client_gone.
 */
#ifndef COMPANION_AGENTS_H
#define COMPANION_AGENTS_H

#include <json-c/json.h>
#include <stddef.h>

struct agents;
struct approvals;
struct client;
struct editor_port;
struct events;
struct logger;
struct loop;
struct settings;
struct workspace;

#define AGENTS_QUEUE_MAX     3
#define AGENTS_RING_BYTES    (256 * 1024) /* updates kept per conversation, for followers */
#define AGENTS_PROMPT_MAX    65536        /* bytes of one prompt */
#define AGENTS_HISTORY_MAX   (256 * 1024) /* vscode-lm: conversation text resent each turn */
#define AGENTS_CANCEL_GRACE  10000        /* ms an agent has to end a cancelled turn */
#define AGENTS_CHAT_INTERVAL 3000         /* ms between two chat messages of a turn */
#define AGENTS_CHAT_GATHER   400          /* ms a chat message waits for what comes with it */

struct agents_env {
    struct logger *log;
    const struct settings *st;
    const struct workspace *ws;
    struct loop *loop;
    const int *reaper_fd; /* the helper's reaper (tracks each agent's group) */
    struct approvals *approvals;
    struct events *events;
    const struct editor_port *editor;
};

struct agents *agents_new(const struct agents_env *env);
/* Ends every turn (stream_end error "stopping"), kills every agent, frees. */
void agents_free(struct agents *a);
struct metrics_buf;
/* GET /metrics: turns running, their latency, how they ended. */
void agents_metrics_write(const struct agents *a, struct metrics_buf *b);

/* A WebSocket command of kind CMD_KIND_AGENT (scope checked by the caller):
 * op is its enum cmd_agent_op. Answers c itself: a stream for agent.prompt,
 * a command_response otherwise. */
void agents_command(struct agents *a, struct client *c, int op, json_object *id, json_object *args);

/* Chat (the chat mode's agent words): text for the chat's current
 * conversation with the default agent (a chat is the token's user plus
 * `key`, the chat message's `chat`, so one bridge keeps one conversation
 * per chat; NULL: the user's) (`ask`, or a message that is not a
 * command); fresh 1 starts a new conversation first (`new`, text may be
 * NULL); `stop` cancels. Answers arrive as chat_reply messages merged at
 * paragraph boundaries, never inside a code fence, at most one every
 * AGENTS_CHAT_INTERVAL ms, tool calls as one line, the last saying how the
 * turn ended. */
void agents_chat(struct agents *a, struct client *c, json_object *id, const char *key,
                 const char *text, int fresh);
void agents_chat_stop(struct agents *a, struct client *c, json_object *id, const char *key);
/* The streaming dialect (docs/protocol.md "The streaming dialect"):
 * user_message {content, sessionId} goes to the user's conversation named
 * by `session` with the default agent; its answer comes as stream_start /
 * stream_chunk / stream_end with top-level sessionId and content, a
 * failure as agents_stream_error. */
void agents_user_message(struct agents *a, struct client *c, const char *session, const char *text);
/* {type:"error", sessionId, error} to c. */
void agents_stream_error(struct client *c, const char *session, const char *error);
/* The name of the default agent, or NULL when none is configured. */
const char *agents_default_name(const struct agents *a);

/* companion/lmChunk {turnId, text} from the editor (vscode-lm turns). */
void agents_lm_chunk(struct agents *a, json_object *params);
/* Settings changed: agents whose command changed or that were removed are
 * stopped (their turns end with an error). */
void agents_settings_changed(struct agents *a);
/* The client went: it stops following; its turns go on (unwatched ones are
 * cancelled after limits.agentUnwatchedSeconds). */
void agents_client_gone(struct agents *a, struct client *c);

#endif
