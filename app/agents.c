/*
 * agents: the workspace's coding agents, their conversations and turns (see
 * agents.h): conversations made by the helper, a turn per prompt queued
 * behind the running one, the caps on turns and conversations, cancelling,
 * the unwatched grace, and how every turn ends (stream_end, followers,
 * agent.turn_finished). The agents themselves are in agents_acp.c (ACP) and
 * agents_lm.c (the editor's model); the WebSocket commands and followers in
 * agents_cmd.c; chat mode in agents_chat.c.
 *
 * Ownership: see agents_impl.h. Queued turns are started from a zero-delay
 * timer, so ending a turn never starts another inside the same call.
 */
#include "app/agents.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/agents_impl.h"
#include "app/approvals.h"
#include "app/client.h"
#include "app/editor_port.h"
#include "app/events.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/settings.h"
#include "server/loop.h"
#include "server/server.h"

struct agents_priv {
    struct agents pub;
    struct loop_timer *pump;
};

const char *agents_rt_state(struct agents *a, const struct agent_rt *rt)
{
    if (rt && rt->type == AGENT_TYPE_VSCODE_LM)
        return a->env.editor->attached(a->env.editor->ud) ? "ready" : "unavailable";
    if (!rt || !rt->proc)
        return "stopped";
    return rt->ready ? "ready" : "starting";
}

const char *agents_unavailable(struct agents *a, const char *name)
{
    const struct settings_agent *sa = settings_find_agent(a->env.st, name);
    if (sa && sa->type == AGENT_TYPE_VSCODE_LM && !a->env.editor->attached(a->env.editor->ud))
        return "this agent is the editor's language model, and no editor is attached";
    return NULL;
}

static void turn_begin(struct turn *t)
{
    struct conv *cv = t->cv;
    struct agents *a = cv->a;
    t->state = TURN_STARTING;
    t->started_ms = clock_mono_ms();
    a->running++;
    json_object *chunk = json_object_new_object();
    json_object_object_add(chunk, "kind", json_object_new_string("turn_start"));
    json_object_object_add(chunk, "text", json_object_new_string(t->text));
    json_object_object_add(chunk, "by", json_object_new_string(t->by));
    agents_emit_followers(cv, t->n, chunk);
    agents_watch_check(t);
    const struct settings_agent *sa = settings_find_agent(a->env.st, cv->agent);
    if (!sa) {
        agents_turn_end(t, "error", "this conversation's agent is no longer configured");
        return;
    }
    if (sa->type == AGENT_TYPE_VSCODE_LM) {
        agents_lm_begin(t, sa);
        return;
    }
    agents_acp_begin(t);
}

static void pump_cb(void *arg)
{
    struct agents *a = arg;
    for (struct conv *cv = a->convs; cv && a->running < a->env.st->max_agent_turns; cv = cv->next) {
        if (cv->cur || !cv->queue)
            continue;
        struct turn *t = cv->queue;
        cv->queue = t->next;
        cv->queued--;
        t->next = NULL;
        cv->cur = t;
        turn_begin(t);
    }
}

void agents_pump(struct agents *a)
{
    loop_timer_arm(((struct agents_priv *)a)->pump, 0);
}

void agents_pump_now(struct agents *a)
{
    loop_timer_cancel(((struct agents_priv *)a)->pump);
    pump_cb(a);
}

static void turn_free(struct turn *t)
{
    if (t->timer)
        loop_timer_free(t->timer);
    agents_chat_free(t);
    json_object_put(t->id);
    free(t->by);
    free(t->session);
    free(t->text);
    free(t->answer);
    free(t->stream_session);
    free(t);
}

void agents_turn_end(struct turn *t, const char *stop_reason, const char *message)
{
    struct conv *cv = t->cv;
    struct agents *a = cv->a;
    /* Its pending approvals are withdrawn: the agent hears "cancelled". */
    agents_acp_withdraw(t);
    if (t->call) {
        if (t->call->kind == CALL_LM) {
            a->env.editor->forget(a->env.editor->ud, t->call->editor_id);
            free(t->call);
        } else {
            t->call->t = NULL; /* its answer still comes, and is dropped */
        }
        t->call = NULL;
    }
    if (!stop_reason)
        stop_reason = "error";
    int64_t duration = t->state == TURN_QUEUED ? 0 : clock_mono_ms() - t->started_ms;
    if (t->state != TURN_QUEUED)
        metrics_hist_observe(&a->turn_latency, duration * 1000);
    metrics_table_add(&a->turn_ends, stop_reason, 1);

    if (!t->chat) {
        json_object *end = json_object_new_object();
        json_object_object_add(end, "stopReason", json_object_new_string(stop_reason));
        if (message)
            json_object_object_add(end, "message", json_object_new_string(message));
        agents_send(t, "stream_end", end);
    } else {
        agents_chat_end(t, stop_reason, message);
    }
    json_object *chunk = json_object_new_object();
    json_object_object_add(chunk, "kind", json_object_new_string("turn_end"));
    json_object_object_add(chunk, "stopReason", json_object_new_string(stop_reason));
    if (message)
        json_object_object_add(chunk, "message", json_object_new_string(message));
    agents_emit_followers(cv, t->n, chunk);

    json_object *ev = json_object_new_object();
    json_object_object_add(ev, "conversation", json_object_new_string(cv->id));
    json_object_object_add(ev, "agent", json_object_new_string(cv->agent));
    json_object_object_add(ev, "turn", json_object_new_int(t->n));
    json_object_object_add(ev, "stopReason", json_object_new_string(stop_reason));
    json_object_object_add(ev, "by", json_object_new_string(t->by));
    json_object_object_add(ev, "durationMs", json_object_new_int64(duration));
    events_publish(a->env.events, EVENT_AGENT_TURN_FINISHED, ev);
    log_msg(a->env.log, LOG_INFO, "agent %s: %s turn %d for %s ended: %s%s%s (%lld ms)", cv->agent,
            cv->id, t->n, t->by, stop_reason, message ? ": " : "", message ? message : "",
            (long long)duration);

    if (t->answer && t->answer_len)
        agents_history_add(cv, "assistant", t->answer, t->answer_len);
    if (t->state != TURN_QUEUED)
        a->running--;
    if (cv->cur == t) {
        cv->cur = NULL;
    } else {
        for (struct turn **pp = &cv->queue; *pp; pp = &(*pp)->next)
            if (*pp == t) {
                *pp = t->next;
                cv->queued--;
                break;
            }
    }
    cv->last_ms = clock_wall_ms();
    turn_free(t);
    agents_pump(a);
}

/* ---- cancelling and watching ---- */

static void timer_cb(void *arg)
{
    struct turn *t = arg;
    struct conv *cv = t->cv;
    if (t->timer_is_cancel) {
        /* The agent did not end a cancelled turn: it is stopped. */
        struct agent_rt *rt = agents_rt(cv->a, cv->agent);
        if (rt && rt->type == AGENT_TYPE_ACP && rt->proc)
            agents_rt_stop(rt, "the agent did not stop after a cancel; it was stopped");
        else
            agents_turn_end(t, "cancelled", "the agent did not stop after a cancel");
        return;
    }
    log_msg(cv->a->env.log, LOG_INFO, "agent %s: %s turn %d: nobody follows it, cancelling",
            cv->agent, cv->id, t->n);
    agents_conv_cancel(cv);
}

void agents_watch_check(struct turn *t)
{
    struct conv *cv = t->cv;
    if (t->state == TURN_QUEUED || t->timer_is_cancel || t->cancel_requested)
        return;
    int watched = (t->c && !t->c->gone) || cv->n_followers > 0;
    if (!t->timer && !(t->timer = loop_timer_new(cv->a->env.loop, timer_cb, t)))
        return;
    if (watched)
        loop_timer_cancel(t->timer);
    else if (!loop_timer_armed(t->timer))
        loop_timer_arm(t->timer, (int64_t)cv->a->env.st->agent_unwatched_s * 1000);
}

int agents_conv_cancel(struct conv *cv)
{
    struct agents *a = cv->a;
    int any = 0;
    while (cv->queue) {
        any = 1;
        agents_turn_end(cv->queue, "cancelled", NULL);
    }
    struct turn *t = cv->cur;
    if (!t || t->cancel_requested)
        return any || t != NULL;
    if (t->state != TURN_RUNNING) {
        agents_turn_end(t, "cancelled", NULL);
        return 1;
    }
    t->cancel_requested = 1;
    agents_acp_withdraw(t);
    if (t->call && t->call->kind == CALL_LM)
        agents_lm_cancel(t);
    else
        agents_acp_cancel(t);
    if (t->timer || (t->timer = loop_timer_new(a->env.loop, timer_cb, t))) {
        t->timer_is_cancel = 1;
        loop_timer_arm(t->timer, AGENTS_CANCEL_GRACE);
    }
    return 1;
}

/* ---- conversations ---- */

struct conv *agents_conv_find(struct agents *a, const char *id)
{
    for (struct conv *cv = a->convs; cv; cv = cv->next)
        if (strcmp(cv->id, id) == 0)
            return cv;
    return NULL;
}

static void conv_free(struct conv *cv)
{
    struct agents *a = cv->a;
    for (struct conv **pp = &a->convs; *pp; pp = &(*pp)->next)
        if (*pp == cv) {
            *pp = cv->next;
            a->n_convs--;
            break;
        }
    if (cv->session_call)
        cv->session_call->cv = NULL;
    agents_ring_free(cv);
    free(cv->followers);
    json_object_put(cv->history);
    free(cv->agent);
    free(cv->chat_user);
    free(cv->sid);
    free(cv);
}

struct conv *agents_conv_new(struct agents *a, const char *name, const char **code,
                             const char **message)
{
    if (a->n_convs >= (size_t)a->env.st->max_conversations) {
        /* The one idle longest makes room. */
        struct conv *victim = NULL;
        for (struct conv *cv = a->convs; cv; cv = cv->next)
            if (!cv->cur && !cv->queue && (!victim || cv->last_ms < victim->last_ms))
                victim = cv;
        if (!victim) {
            *code = "LIMIT";
            *message = "every conversation is busy (limits.maxConversations)";
            return NULL;
        }
        log_msg(a->env.log, LOG_INFO, "agents: conversation %s forgotten to make room", victim->id);
        conv_free(victim);
    }
    struct conv *cv = calloc(1, sizeof(*cv));
    if (!cv || !(cv->agent = strdup(name))) {
        free(cv);
        *code = "PROCESSING_ERROR";
        *message = "out of memory";
        return NULL;
    }
    cv->a = a;
    snprintf(cv->id, sizeof(cv->id), "c%llu", (unsigned long long)++a->next_conv);
    cv->created_ms = cv->last_ms = clock_wall_ms();
    struct conv **pp = &a->convs;
    while (*pp)
        pp = &(*pp)->next;
    *pp = cv;
    a->n_convs++;
    return cv;
}

struct turn *agents_turn_new(struct conv *cv, struct client *c, json_object *id, const char *text,
                             const char **code, const char **message)
{
    if (cv->queued >= AGENTS_QUEUE_MAX) {
        *code = "BUSY";
        *message = "this conversation already has prompts waiting; try again when it is done";
        return NULL;
    }
    struct turn *t = calloc(1, sizeof(*t));
    if (!t || !(t->text = strdup(text)) || !(t->by = strdup(c->user_id ? c->user_id : "")) ||
        !(t->session = strdup(session_id(c->s)))) {
        if (t) {
            free(t->text);
            free(t->by);
        }
        free(t);
        *code = "PROCESSING_ERROR";
        *message = "out of memory";
        return NULL;
    }
    t->cv = cv;
    t->c = c;
    t->id = id ? json_object_get(id) : NULL;
    t->n = ++cv->turns;
    struct turn **pp = &cv->queue;
    while (*pp)
        pp = &(*pp)->next;
    *pp = t;
    cv->queued++;
    cv->last_ms = clock_wall_ms();
    return t;
}

/* ---- the module ---- */

struct agents *agents_new(const struct agents_env *env)
{
    struct agents_priv *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->pub.env = *env;
    if (!(p->pump = loop_timer_new(env->loop, pump_cb, &p->pub))) {
        free(p);
        return NULL;
    }
    return &p->pub;
}

void agents_free(struct agents *a)
{
    if (!a)
        return;
    struct agents_priv *p = (struct agents_priv *)a;
    loop_timer_cancel(p->pump);
    for (struct conv *cv = a->convs; cv; cv = cv->next) {
        while (cv->queue)
            agents_turn_end(cv->queue, "error", "the helper is stopping");
        if (cv->cur)
            agents_turn_end(cv->cur, "error", "the helper is stopping");
    }
    loop_timer_cancel(p->pump);
    while (a->convs)
        conv_free(a->convs);
    while (a->rts) {
        struct agent_rt *rt = a->rts;
        a->rts = rt->next;
        agents_rt_free(rt);
    }
    loop_timer_free(p->pump);
    free(p);
}

void agents_settings_changed(struct agents *a)
{
    for (struct agent_rt **pp = &a->rts; *pp;) {
        struct agent_rt *rt = *pp;
        const struct settings_agent *sa = settings_find_agent(a->env.st, rt->name);
        char *f = sa ? agents_fingerprint(sa) : NULL;
        int same = f && strcmp(f, rt->fingerprint) == 0;
        if (same) {
            free(f);
            pp = &rt->next;
            continue;
        }
        agents_rt_stop(rt, sa ? "the agent's settings changed"
                              : "the agent was removed from the settings");
        if (!sa) {
            /* Its turns failed; conversations keep its name (prompts are refused). */
            *pp = rt->next;
            agents_rt_free(rt);
            continue;
        }
        free(rt->fingerprint);
        rt->fingerprint = f;
        rt->type = sa->type;
        pp = &rt->next;
    }
}

const char *agents_default_name(const struct agents *a)
{
    const struct settings_agent *sa = settings_default_agent(a->env.st);
    return sa ? sa->name : NULL;
}

void agents_client_gone(struct agents *a, struct client *c)
{
    for (struct conv *cv = a->convs; cv; cv = cv->next) {
        agents_followers_drop(cv, c);
        for (struct turn *t = cv->queue; t; t = t->next)
            if (t->c == c)
                t->c = NULL;
        if (cv->cur) {
            if (cv->cur->c == c)
                cv->cur->c = NULL;
            agents_watch_check(cv->cur);
        }
    }
}

void agents_metrics_write(const struct agents *a, struct metrics_buf *b)
{
    metrics_family(b, "companion_agent_turns_running", "gauge",
                   "Agent turns starting or running now.");
    metrics_sample(b, "companion_agent_turns_running", NULL, NULL, (uint64_t)a->running);
    metrics_family(b, "companion_agent_turns_total", "counter",
                   "Agent turns ended, by stop reason.");
    metrics_table_write(b, "companion_agent_turns_total", "stop_reason", &a->turn_ends);
    metrics_family(b, "companion_agent_turn_duration_seconds", "histogram",
                   "From a turn's start to its end (queued turns not counted).");
    metrics_hist_write(b, "companion_agent_turn_duration_seconds", NULL, NULL, &a->turn_latency);
}
