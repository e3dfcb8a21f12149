/*
 * chat_stream: an agent's streamed answer (the stream_chunk objects of
 * agent.prompt, docs/agents: message, thought, tool, plan, permission,
 * permission_resolved, then the end) turned into a few whole chat
 * messages for a phone.
 *
 * The caller adds chunks as they come and, at its own pace (a chat bridge
 * sends at most one message every 3 s), takes the next message; whatever
 * became ready meanwhile is merged into it. Pure: no I/O, no clock, no
 * timers. A chat_stream owns everything it holds; chunks are borrowed
 * during the call; every string taken is malloc'd and the caller's.
 *
 * What is shown:
 * - message text, concatenated (chunks come word by word), released at
 *   paragraph boundaries (a blank line) outside a fenced code block (```
 *   or ~~~). An open fence waits until closed, but text that grows past a
 *   part (CHAT_STREAM_BLOCK_MAX code points) is released anyway at a line
 *   end (mid-line only for a longer line, never inside a character), the
 *   fence closed at the end of one part and reopened at the start of the
 *   next so each part renders. Any other chunk, and the end, release the
 *   text held so far (the agent is then working or waiting).
 * - thought: never.
 * - tool: "Running: <title>" the first time a toolCallId is seen pending or
 *   in_progress (or without status), "Failed: <title>" when it fails;
 *   completion adds nothing.
 * - plan: "Plan:\n1. <content> (done)\n2. <content> (in progress)\n3. ..."
 *   only when different from the plan shown (or waiting) last; a plan still
 *   waiting to be taken is replaced by the newer one.
 * - permission: "Approval N: <title>\nReply yes N, always N or no N." with
 *   only the answers its options offer. permission_resolved removes the
 *   request if it was not taken yet, else adds nothing (the approvals'
 *   own events tell how it was decided).
 * - the end: one line that says how the turn ended, after everything else.
 * Text from the agent is repaired to UTF-8, "\r" dropped, and control and
 * bidi-override characters (but line feed and tab) replaced by "?".
 * Malformed chunks are ignored.
 *
 * Memory is bounded: when more than CHAT_STREAM_KEEP bytes wait untaken,
 * the oldest are dropped and the next message starts with
 * "[… N characters not shown]".
 */
#ifndef COMPANION_CHAT_STREAM_H
#define COMPANION_CHAT_STREAM_H

#include <json-c/json.h>

#include "workspace/chat.h"

/* Code points of one released piece: a part, less room for the note of
 * dropped text. */
#define CHAT_STREAM_BLOCK_MAX (CHAT_PART_MAX - 64)
#define CHAT_STREAM_KEEP      (64 * 1024) /* bytes waiting before the oldest are dropped */
#define CHAT_STREAM_TOOLS     256         /* tool calls remembered (oldest forgotten) */

struct chat_stream;

/* NULL on OOM. */
struct chat_stream *chat_stream_new(void);
void chat_stream_free(struct chat_stream *cs);

/* One stream_chunk's data ({"kind":"message","text":...}, ...), borrowed.
 * Returns 0 when used, 1 when ignored (malformed, unknown kind, a thought,
 * or after chat_stream_end), -1 on OOM (the stream stays usable, the chunk
 * may be partly lost). */
int chat_stream_add(struct chat_stream *cs, json_object *chunk);

/* The turn ended (stream_end: stopReason, and message, either may be
 * NULL): everything held is released and a last line is added:
 *   end_turn           "Done."
 *   cancelled          "Cancelled."
 *   max_tokens         "Stopped: the agent hit its token limit."
 *   max_turn_requests  "Stopped: the agent hit its limit of steps for one turn."
 *   refusal            "Stopped: the agent refused to go on."
 *   error              "The agent failed: <message>" ("The agent failed." without)
 *   anything else      "Ended (<stopReason>)."
 * and for the others a message follows the line after a space. A second
 * call does nothing. Returns 0, -1 on OOM. */
int chat_stream_end(struct chat_stream *cs, const char *stop_reason, const char *message);

/* The next message to send now: everything ready, merged, at most
 * CHAT_PART_MAX code points (more stays for the next call); malloc'd, the
 * caller frees it. NULL when nothing is ready (or on OOM, when
 * chat_stream_pending stays true). Text is never cut inside a paragraph or
 * a fenced block before chat_stream_end, except as described above. */
char *chat_stream_take(struct chat_stream *cs);

/* 1 when chat_stream_take has something to give. */
int chat_stream_pending(const struct chat_stream *cs);

/* 1 once chat_stream_end was called and everything was taken. */
int chat_stream_finished(const struct chat_stream *cs);

#endif
