/*
 * agents_lm: agents of type vscode-lm, the editor's own language model. A
 * turn is the request `editor/lm` {turnId, vendor, family, messages} to the
 * extension, which streams the answer back as companion/lmChunk
 * notifications and answers with its stopReason; `editor/lmCancel` asks it
 * to stop. The model keeps no state, so each turn carries the conversation
 * so far (AGENTS_HISTORY_MAX bytes, the oldest dropped first). Without an
 * editor (serve) such an agent is unavailable.
 *
 * Ownership: the history is the conversation's; a turn's answer text is the
 * turn's until it ends and joins the history.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/agents.h"
#include "app/agents_impl.h"
#include "app/editor_port.h"
#include "core/settings.h"

/* ---- vscode-lm turns ---- */

void agents_turn_id(const struct turn *t, char *out, size_t len)
{
    snprintf(out, len, "%s/%d", t->cv->id, t->n);
}

void agents_history_add(struct conv *cv, const char *role, const char *text, size_t len)
{
    if (!cv->history && !(cv->history = json_object_new_array()))
        return;
    json_object *m = json_object_new_object();
    json_object_object_add(m, "role", json_object_new_string(role));
    json_object_object_add(m, "text", json_object_new_string_len(text, (int)len));
    json_object_array_add(cv->history, m);
    cv->history_bytes += len + 32;
    /* The oldest go first; the newest message always stays. */
    while (cv->history_bytes > AGENTS_HISTORY_MAX && json_object_array_length(cv->history) > 1) {
        json_object *old = json_object_array_get_idx(cv->history, 0);
        json_object *ot = NULL;
        json_object_object_get_ex(old, "text", &ot);
        cv->history_bytes -= (size_t)json_object_get_string_len(ot) + 32;
        json_object_array_del_idx(cv->history, 0, 1);
    }
}

static void lm_answer(void *ud, enum editor_outcome outcome, json_object *result,
                      const char *message)
{
    struct agents_call *call = ud;
    struct turn *t = call->t;
    free(call);
    if (!t)
        return;
    t->call = NULL;
    json_object *sr = NULL;
    switch (outcome) {
    case EDITOR_ANSWERED:
        if (result && json_object_object_get_ex(result, "stopReason", &sr) &&
            json_object_is_type(sr, json_type_string))
            agents_turn_end(t, json_object_get_string(sr), NULL);
        else
            agents_turn_end(t, "end_turn", NULL);
        return;
    case EDITOR_FAILED:
        agents_turn_end(t, "error", message ? message : "the editor's language model failed");
        return;
    case EDITOR_TIMED_OUT:
        agents_turn_end(t, t->cancel_requested ? "cancelled" : "error",
                        "the editor's language model did not answer in time");
        return;
    }
}

void agents_lm_begin(struct turn *t, const struct settings_agent *sa)
{
    struct agents *a = t->cv->a;
    const struct editor_port *ed = a->env.editor;
    if (!ed->attached(ed->ud)) {
        agents_turn_end(t, "error", agents_unavailable(a, t->cv->agent));
        return;
    }
    struct agents_call *call = calloc(1, sizeof(*call));
    if (!call) {
        agents_turn_end(t, "error", "out of memory");
        return;
    }
    call->kind = CALL_LM;
    call->a = a;
    call->t = t;
    agents_history_add(t->cv, "user", t->text, strlen(t->text));
    char tid[48];
    agents_turn_id(t, tid, sizeof(tid));
    json_object *p = json_object_new_object();
    json_object_object_add(p, "turnId", json_object_new_string(tid));
    if (sa->vendor && sa->vendor[0])
        json_object_object_add(p, "vendor", json_object_new_string(sa->vendor));
    if (sa->family && sa->family[0])
        json_object_object_add(p, "family", json_object_new_string(sa->family));
    json_object *msgs = NULL;
    if (json_object_deep_copy(t->cv->history, &msgs, NULL) != 0)
        msgs = json_object_new_array();
    json_object_object_add(p, "messages", msgs);
    t->state = TURN_RUNNING;
    t->call = call;
    call->editor_id = ed->request(ed->ud, "editor/lm", p,
                                  (int64_t)a->env.st->agent_turn_timeout_s * 1000, lm_answer, call);
    if (call->editor_id < 0) {
        t->call = NULL;
        free(call);
        agents_turn_end(t, "error", "the editor cannot be asked");
    }
}

void agents_lm_chunk(struct agents *a, json_object *params)
{
    json_object *tid = NULL, *text = NULL;
    if (!params || !json_object_object_get_ex(params, "turnId", &tid) ||
        !json_object_is_type(tid, json_type_string) ||
        !json_object_object_get_ex(params, "text", &text) ||
        !json_object_is_type(text, json_type_string))
        return;
    const char *s = json_object_get_string(tid);
    const char *slash = strchr(s, '/');
    if (!slash || (size_t)(slash - s) >= 24)
        return;
    char cid[24];
    memcpy(cid, s, (size_t)(slash - s));
    cid[slash - s] = '\0';
    struct conv *cv = agents_conv_find(a, cid);
    struct turn *t = cv ? cv->cur : NULL;
    if (!t || t->state != TURN_RUNNING || !t->call || t->call->kind != CALL_LM ||
        atoi(slash + 1) != t->n)
        return;
    size_t len = (size_t)json_object_get_string_len(text);
    if (!len)
        return;
    if (t->answer_len + len <= AGENTS_HISTORY_MAX) {
        char *grown = realloc(t->answer, t->answer_len + len + 1);
        if (grown) {
            memcpy(grown + t->answer_len, json_object_get_string(text), len);
            t->answer_len += len;
            grown[t->answer_len] = '\0';
            t->answer = grown;
        }
    }
    json_object *chunk = json_object_new_object();
    json_object_object_add(chunk, "kind", json_object_new_string("message"));
    json_object_object_add(chunk, "text", json_object_get(text));
    agents_emit(t, chunk);
}

void agents_lm_cancel(struct turn *t)
{
    struct agents *a = t->cv->a;
    char tid[48];
    agents_turn_id(t, tid, sizeof(tid));
    json_object *p = json_object_new_object();
    json_object_object_add(p, "turnId", json_object_new_string(tid));
    a->env.editor->notify(a->env.editor->ud, "editor/lmCancel", p);
}
