/*
 * agents_acp: the agents that speak the Agent Client Protocol, at run time:
 * starting one on first use (agent_proc.c), a session per conversation
 * (session/new, or session/load after a restart when the agent offers it),
 * session/prompt per turn, session/update as the turn's chunks
 * (workspace/acp_map.c), session/request_permission as an approval whose
 * decision answers with the agent's own option, session/cancel, and every
 * way an agent ends (exit, crash, hang, garbage) ending its turns with the
 * reason. The next prompt starts it again.
 *
 * Ownership: see agents_impl.h. An ended agent process is freed on a
 * zero-delay timer, never inside its own callbacks; a permission request
 * (struct perm) is freed when its approval ends.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/agent_proc.h"
#include "app/agents.h"
#include "app/agents_impl.h"
#include "app/approvals.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/settings.h"
#include "server/loop.h"
#include "workspace/acp_map.h"
#include "workspace/workspace.h"

/* One message from an agent; longer lines are dropped (and counted). */
#define AGENTS_MESSAGE_MAX (16u * 1024 * 1024)

struct perm {
    struct perm *next;
    struct turn *t; /* NULL once the turn ended */
    struct rpc_req *req;
    int64_t approval_id;
    struct acp_permission_options o;
};

static void prompt_done(void *cbud, json_object *result, const struct rpc_error *err);

/* ---- agents at run time ---- */

char *agents_fingerprint(const struct settings_agent *sa)
{
    size_t n = 64 + strlen(sa->command ? sa->command : "") + strlen(sa->vendor ? sa->vendor : "") +
               strlen(sa->family ? sa->family : "");
    for (size_t i = 0; i < sa->args.n; i++)
        n += strlen(sa->args.v[i]) + 1;
    for (size_t i = 0; i < sa->env_n; i++)
        n += strlen(sa->env[i].name) + strlen(sa->env[i].value) + 2;
    char *f = malloc(n);
    if (!f)
        return NULL;
    size_t k =
        (size_t)snprintf(f, n, "%d\x1f%s\x1f%s\x1f%s", sa->type, sa->command ? sa->command : "",
                         sa->vendor ? sa->vendor : "", sa->family ? sa->family : "");
    for (size_t i = 0; i < sa->args.n && k < n; i++)
        k += (size_t)snprintf(f + k, n - k, "\x1e%s", sa->args.v[i]);
    for (size_t i = 0; i < sa->env_n && k < n; i++)
        k += (size_t)snprintf(f + k, n - k, "\x1d%s=%s", sa->env[i].name, sa->env[i].value);
    return f;
}

static void reap_cb(void *arg)
{
    struct agent_rt *rt = arg;
    struct agent_proc *p = rt->dead;
    rt->dead = NULL;
    agent_proc_free(p);
}

struct agent_rt *agents_rt(struct agents *a, const char *name)
{
    for (struct agent_rt *rt = a->rts; rt; rt = rt->next)
        if (strcmp(rt->name, name) == 0)
            return rt;
    const struct settings_agent *sa = settings_find_agent(a->env.st, name);
    if (!sa)
        return NULL;
    struct agent_rt *rt = calloc(1, sizeof(*rt));
    if (!rt)
        return NULL;
    rt->a = a;
    rt->type = sa->type;
    rt->name = strdup(name);
    rt->fingerprint = agents_fingerprint(sa);
    rt->reap = loop_timer_new(a->env.loop, reap_cb, rt);
    if (!rt->name || !rt->fingerprint || !rt->reap) {
        free(rt->name);
        free(rt->fingerprint);
        if (rt->reap)
            loop_timer_free(rt->reap);
        free(rt);
        return NULL;
    }
    rt->next = a->rts;
    a->rts = rt;
    return rt;
}

/* Ends the turns of rt's conversations that were starting or running. */
static void fail_turns(struct agent_rt *rt, const char *message)
{
    struct agents *a = rt->a;
    for (struct conv *cv = a->convs; cv; cv = cv->next) {
        if (strcmp(cv->agent, rt->name) != 0)
            continue;
        if (cv->session_call) {
            cv->session_call->cv = NULL;
            cv->session_call = NULL;
        }
        cv->loading = 0;
        if (cv->cur && cv->cur->state != TURN_QUEUED)
            agents_turn_end(cv->cur, cv->cur->cancel_requested ? "cancelled" : "error", message);
    }
}

/* The agent's process goes (now, or it went): its turns end with message,
 * and it is freed outside any of its callbacks. The next prompt starts it
 * again. */
void agents_rt_stop(struct agent_rt *rt, const char *message)
{
    if (!rt->proc)
        return;
    struct agent_proc *p = rt->proc;
    rt->proc = NULL;
    rt->ready = 0;
    snprintf(rt->last_error, sizeof(rt->last_error), "%s", message);
    log_msg(rt->a->env.log, LOG_WARN, "agent %s: %s", rt->name, message);
    fail_turns(rt, message);
    if (rt->dead)
        agent_proc_free(rt->dead); /* ended earlier: not in its callbacks */
    rt->dead = p;
    loop_timer_arm(rt->reap, 0);
}

void agents_rt_free(struct agent_rt *rt)
{
    if (rt->proc)
        agent_proc_free(rt->proc);
    if (rt->dead)
        agent_proc_free(rt->dead);
    loop_timer_free(rt->reap);
    free(rt->name);
    free(rt->fingerprint);
    free(rt);
}

static struct conv *conv_by_sid(struct agent_rt *rt, json_object *params)
{
    json_object *sid = NULL;
    if (!params || !json_object_object_get_ex(params, "sessionId", &sid) ||
        !json_object_is_type(sid, json_type_string))
        return NULL;
    for (struct conv *cv = rt->a->convs; cv; cv = cv->next)
        if (cv->sid && cv->sid_gen == rt->gen && strcmp(cv->agent, rt->name) == 0 &&
            strcmp(cv->sid, json_object_get_string(sid)) == 0)
            return cv;
    return NULL;
}

static void send_prompt(struct turn *t);
static void conv_session(struct conv *cv, struct agent_rt *rt);

static void session_done(void *cbud, json_object *result, const struct rpc_error *err)
{
    struct agents_call *call = cbud;
    struct conv *cv = call->cv;
    free(call);
    if (!cv)
        return;
    cv->session_call = NULL;
    int was_loading = cv->loading;
    cv->loading = 0;
    struct turn *t = cv->cur;
    struct agent_rt *rt = agents_rt(cv->a, cv->agent);
    json_object *sid = NULL;
    if (!err && !was_loading &&
        !(json_object_is_type(result, json_type_object) &&
          json_object_object_get_ex(result, "sessionId", &sid) &&
          json_object_is_type(sid, json_type_string) && json_object_get_string_len(sid) > 0 &&
          json_object_get_string_len(sid) < 512)) {
        if (t && t->state == TURN_STARTING)
            agents_turn_end(t, "error", "the agent's session/new answer has no sessionId");
        return;
    }
    if (err) {
        if (was_loading) {
            /* The earlier session is gone with the earlier process: a new one. */
            log_msg(cv->a->env.log, LOG_INFO, "agent %s: session/load of %s failed (%s)", cv->agent,
                    cv->id, err->message);
            free(cv->sid);
            cv->sid = NULL;
            if (t && t->state == TURN_STARTING && rt && rt->proc && rt->ready)
                conv_session(cv, rt);
            else if (t && t->state == TURN_STARTING)
                agents_turn_end(t, "error", err->message);
            return;
        }
        char msg[300];
        snprintf(msg, sizeof(msg), "the agent could not start a session: %s", err->message);
        if (t && t->state == TURN_STARTING)
            agents_turn_end(t, "error", msg);
        return;
    }
    if (!was_loading) {
        free(cv->sid);
        cv->sid = strdup(json_object_get_string(sid));
    }
    cv->sid_gen = rt ? rt->gen : 0;
    if (t && t->state == TURN_STARTING)
        send_prompt(t);
}

/* cv's starting turn, with its agent ready: a session first if it needs one. */
static void conv_session(struct conv *cv, struct agent_rt *rt)
{
    struct agents *a = cv->a;
    struct turn *t = cv->cur;
    if (cv->sid && cv->sid_gen == rt->gen) {
        send_prompt(t);
        return;
    }
    if (cv->session_call)
        return;
    struct agents_call *call = calloc(1, sizeof(*call));
    if (!call) {
        agents_turn_end(t, "error", "out of memory");
        return;
    }
    call->kind = CALL_SESSION;
    call->a = a;
    call->cv = cv;
    json_object *p = json_object_new_object();
    json_object_object_add(p, "cwd", json_object_new_string(a->env.ws->folders[0].path));
    json_object_object_add(p, "mcpServers", json_object_new_array());
    const char *method = "session/new";
    if (cv->sid && agent_proc_can_load(rt->proc)) {
        json_object_object_add(p, "sessionId", json_object_new_string(cv->sid));
        method = "session/load";
        cv->loading = 1;
    } else {
        free(cv->sid);
        cv->sid = NULL;
    }
    cv->session_call = call;
    if (agent_proc_request(rt->proc, method, p, (int64_t)a->env.st->agent_start_timeout_s * 1000,
                           session_done, call) < 0) {
        cv->session_call = NULL;
        cv->loading = 0;
        free(call);
        agents_turn_end(t, "error", "the agent is not running");
    }
}

static void on_ready(void *ud, int ok, const char *message)
{
    (void)message;
    struct agent_rt *rt = ud;
    if (!ok)
        return; /* `gone` follows */
    rt->ready = 1;
    rt->last_error[0] = '\0';
    log_msg(rt->a->env.log, LOG_INFO, "agent %s: ready", rt->name);
    for (struct conv *cv = rt->a->convs; cv; cv = cv->next)
        if (cv->cur && cv->cur->state == TURN_STARTING && strcmp(cv->agent, rt->name) == 0)
            conv_session(cv, rt);
}

static void on_update(void *ud, json_object *params)
{
    struct agent_rt *rt = ud;
    struct conv *cv = conv_by_sid(rt, params);
    if (!cv || cv->loading || !cv->cur || cv->cur->state != TURN_RUNNING)
        return;
    json_object *u = NULL;
    json_object_object_get_ex(params, "update", &u);
    json_object *chunk = acp_map_update(u);
    if (chunk)
        agents_emit(cv->cur, chunk);
}

/* ---- permission requests ---- */

static void respond_cancelled(struct rpc_req *req)
{
    json_object *r = json_object_new_object(), *o = json_object_new_object();
    json_object_object_add(o, "outcome", json_object_new_string("cancelled"));
    json_object_object_add(r, "outcome", o);
    rpc_respond(req, r);
}

static void respond_selected(struct rpc_req *req, const char *option_id)
{
    json_object *r = json_object_new_object(), *o = json_object_new_object();
    json_object_object_add(o, "outcome", json_object_new_string("selected"));
    json_object_object_add(o, "optionId", json_object_new_string(option_id));
    json_object_object_add(r, "outcome", o);
    rpc_respond(req, r);
}

static void perm_unlink(struct perm *p)
{
    if (!p->t)
        return;
    for (struct perm **pp = &p->t->perms; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    p->t = NULL;
}

static void perm_done(void *ud, enum approval_outcome outcome, const char *by)
{
    struct perm *p = ud;
    const char *opt = NULL;
    switch (outcome) {
    case APPROVAL_ALLOWED_ONCE:
        opt = acp_map_option_id(&p->o, APPROVAL_ALLOW_ONCE);
        break;
    case APPROVAL_ALLOWED_ALWAYS:
        opt = acp_map_option_id(&p->o, APPROVAL_ALLOW_ALWAYS);
        break;
    case APPROVAL_DENIED:
    case APPROVAL_EXPIRED:
        opt = acp_map_option_id(&p->o, APPROVAL_DENY);
        break;
    case APPROVAL_WITHDRAWN:
        break;
    }
    if (opt)
        respond_selected(p->req, opt);
    else
        respond_cancelled(p->req);
    if (p->t) {
        json_object *chunk = json_object_new_object();
        json_object_object_add(chunk, "kind", json_object_new_string("permission_resolved"));
        json_object_object_add(chunk, "approvalId", json_object_new_int64(p->approval_id));
        json_object_object_add(chunk, "outcome",
                               json_object_new_string(approval_outcome_name(outcome)));
        json_object_object_add(chunk, "decidedBy", json_object_new_string(by ? by : ""));
        struct turn *t = p->t;
        perm_unlink(p);
        agents_emit(t, chunk);
    }
    free(p);
}

static void on_permission(struct agent_rt *rt, struct rpc_req *req, json_object *params)
{
    struct agents *a = rt->a;
    struct conv *cv = conv_by_sid(rt, params);
    struct turn *t = cv ? cv->cur : NULL;
    if (!t || t->state != TURN_RUNNING || t->cancel_requested) {
        respond_cancelled(req);
        return;
    }
    struct perm *p = calloc(1, sizeof(*p));
    if (!p || acp_map_permission(params, &p->o) < 0 || !p->o.offered) {
        free(p);
        rpc_respond_error(req, RPC_INVALID_PARAMS, "options: expected an array of {optionId, kind}",
                          NULL);
        return;
    }
    p->req = req;
    json_object *tool = NULL, *title_o = NULL, *tool_id = NULL;
    json_object_object_get_ex(params, "toolCall", &tool);
    if (tool && json_object_is_type(tool, json_type_object)) {
        json_object_object_get_ex(tool, "title", &title_o);
        json_object_object_get_ex(tool, "toolCallId", &tool_id);
    }
    char title[200];
    snprintf(title, sizeof(title), "Agent \"%s\": %.150s", rt->name,
             title_o && json_object_is_type(title_o, json_type_string)
                 ? json_object_get_string(title_o)
                 : "use a tool");
    json_object *action = json_object_new_object();
    json_object_object_add(action, "agent", json_object_new_string(rt->name));
    json_object_object_add(action, "conversation", json_object_new_string(cv->id));
    if (tool && json_object_is_type(tool, json_type_object)) {
        json_object *copy = NULL;
        if (json_object_deep_copy(tool, &copy, NULL) == 0)
            json_object_object_add(action, "toolCall", copy);
    }
    struct approval_request ar = {
        .kind = "agent",
        .title = title,
        .action = action,
        .options = p->o.offered,
        .user_id = t->by,
        .session_id = t->session,
        .owner = t,
        .remember_key = NULL,
        .done = perm_done,
        .ud = p,
    };
    char err[160];
    p->t = t;
    p->next = t->perms;
    t->perms = p;
    int64_t aid = approvals_request(a->env.approvals, &ar, err, sizeof(err));
    if (aid <= 0) {
        perm_unlink(p);
        const char *deny = acp_map_option_id(&p->o, APPROVAL_DENY);
        if (deny)
            respond_selected(req, deny);
        else
            respond_cancelled(req);
        log_msg(a->env.log, LOG_WARN, "agent %s: permission refused at once: %s", rt->name, err);
        free(p);
        return;
    }
    p->approval_id = aid;
    json_object *chunk = json_object_new_object();
    json_object_object_add(chunk, "kind", json_object_new_string("permission"));
    json_object_object_add(chunk, "approvalId", json_object_new_int64(aid));
    json_object_object_add(
        chunk, "toolCallId",
        json_object_new_string(tool_id && json_object_is_type(tool_id, json_type_string)
                                   ? json_object_get_string(tool_id)
                                   : ""));
    json_object_object_add(chunk, "title", json_object_new_string(title));
    json_object *opts = json_object_new_array();
    static const unsigned bits[] = {APPROVAL_ALLOW_ONCE, APPROVAL_ALLOW_ALWAYS, APPROVAL_DENY};
    for (size_t i = 0; i < 3; i++)
        if (p->o.offered & bits[i])
            json_object_array_add(opts, json_object_new_string(approval_decision_name(
                                            (enum approval_decision)bits[i])));
    json_object_object_add(chunk, "options", opts);
    json_object_object_add(
        chunk, "expiresAt",
        json_object_new_int64(clock_wall_ms() + (int64_t)a->env.st->approval_timeout_s * 1000));
    agents_emit(t, chunk);
}

static void on_request(void *ud, struct rpc_req *req, const char *method, json_object *params)
{
    struct agent_rt *rt = ud;
    if (strcmp(method, "session/request_permission") == 0)
        on_permission(rt, req, params);
    else
        rpc_respond_error(req, RPC_METHOD_NOT_FOUND, "not offered by this client", NULL);
}

static void on_gone(void *ud, const char *message)
{
    struct agent_rt *rt = ud;
    char msg[256];
    const char *tail = rt->proc ? agent_proc_stderr_tail(rt->proc) : "";
    /* What the agent last wrote to stderr often says why: its last line
     * naming an error, else its last line. */
    const char *line = NULL, *end = NULL;
    int line_names_error = 0;
    for (const char *p = tail; *p;) {
        const char *e = strchr(p, '\n');
        if (!e)
            e = p + strlen(p);
        int names_error = memmem(p, (size_t)(e - p), "rror", 4) != NULL;
        if (e > p && (names_error || !line_names_error)) {
            line = p;
            end = e;
            line_names_error = names_error;
        }
        p = *e ? e + 1 : e;
    }
    if (line && end > line)
        snprintf(msg, sizeof(msg), "%s (%.*s)", message, (int)(end - line > 160 ? 160 : end - line),
                 line);
    else
        snprintf(msg, sizeof(msg), "%s", message);
    agents_rt_stop(rt, msg);
}

static const struct agent_proc_events proc_events = {on_ready, on_update, on_request, on_gone};

static int rt_start(struct agent_rt *rt, char *err, size_t errlen)
{
    struct agents *a = rt->a;
    const struct settings_agent *sa = settings_find_agent(a->env.st, rt->name);
    if (!sa || sa->type != AGENT_TYPE_ACP || !sa->command) {
        snprintf(err, errlen, "agent \"%s\" is not configured", rt->name);
        return -1;
    }
    if (!a->env.ws->n_folders) {
        snprintf(err, errlen, "the workspace has no folder to run the agent in");
        return -1;
    }
    char **env = settings_env_strings(sa->env, sa->env_n);
    if (!env) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    struct agent_proc_spec spec = {
        .command = sa->command,
        .args = (const char *const *)sa->args.v,
        .n_args = sa->args.n,
        .cwd = a->env.ws->folders[0].path,
        .env = (const char *const *)env,
        .n_env = sa->env_n,
        .max_message_bytes = AGENTS_MESSAGE_MAX,
        .start_timeout_ms = (int64_t)a->env.st->agent_start_timeout_s * 1000,
    };
    rt->proc =
        agent_proc_start(a->env.loop, a->env.reaper_fd, &spec, &proc_events, rt, err, errlen);
    settings_env_strings_free(env);
    if (!rt->proc) {
        snprintf(rt->last_error, sizeof(rt->last_error), "%s", err);
        return -1;
    }
    rt->gen++;
    rt->starts++;
    rt->ready = 0;
    log_msg(a->env.log, LOG_INFO, "agent %s: started (%s)", rt->name, sa->command);
    return 0;
}

static void send_prompt(struct turn *t)
{
    struct agents *a = t->cv->a;
    struct agent_rt *rt = agents_rt(a, t->cv->agent);
    struct agents_call *call = calloc(1, sizeof(*call));
    if (!rt || !rt->proc || !call) {
        free(call);
        agents_turn_end(t, "error",
                        rt && rt->last_error[0] ? rt->last_error : "the agent is not running");
        return;
    }
    call->kind = CALL_PROMPT;
    call->a = a;
    call->t = t;
    json_object *p = json_object_new_object(), *prompt = json_object_new_array(),
                *block = json_object_new_object();
    json_object_object_add(p, "sessionId", json_object_new_string(t->cv->sid));
    json_object_object_add(block, "type", json_object_new_string("text"));
    json_object_object_add(block, "text", json_object_new_string(t->text));
    json_object_array_add(prompt, block);
    json_object_object_add(p, "prompt", prompt);
    t->state = TURN_RUNNING;
    t->call = call;
    if (agent_proc_request(rt->proc, "session/prompt", p,
                           (int64_t)a->env.st->agent_turn_timeout_s * 1000, prompt_done,
                           call) < 0) {
        t->call = NULL;
        free(call);
        agents_turn_end(t, "error", "the agent is not running");
    }
}

static int known_stop_reason(const char *s)
{
    static const char *const known[] = {"end_turn", "max_tokens", "max_turn_requests", "refusal",
                                        "cancelled"};
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (strcmp(s, known[i]) == 0)
            return 1;
    return 0;
}

static void prompt_done(void *cbud, json_object *result, const struct rpc_error *err)
{
    struct agents_call *call = cbud;
    struct turn *t = call->t;
    free(call);
    if (!t)
        return;
    t->call = NULL;
    struct agents *a = t->cv->a;
    if (err && err->code == RPC_REQUEST_TIMEOUT) {
        char msg[120];
        snprintf(msg, sizeof(msg), "the agent did not finish within %d s; it was stopped",
                 a->env.st->agent_turn_timeout_s);
        struct agent_rt *rt = agents_rt(a, t->cv->agent);
        agents_turn_end(t, "error", msg);
        if (rt)
            agents_rt_stop(rt, msg);
        return;
    }
    if (err) {
        agents_turn_end(t, t->cancel_requested ? "cancelled" : "error", err->message);
        return;
    }
    json_object *sr = NULL;
    const char *reason = "end_turn";
    if (json_object_is_type(result, json_type_object) &&
        json_object_object_get_ex(result, "stopReason", &sr) &&
        json_object_is_type(sr, json_type_string) && known_stop_reason(json_object_get_string(sr)))
        reason = json_object_get_string(sr);
    agents_turn_end(t, reason, NULL);
}

/* Starts t (just made current). */

void agents_acp_begin(struct turn *t)
{
    struct conv *cv = t->cv;
    struct agent_rt *rt = agents_rt(cv->a, cv->agent);
    char err[256];
    if (!rt) {
        agents_turn_end(t, "error", "out of memory");
        return;
    }
    if (!rt->proc && rt_start(rt, err, sizeof(err)) < 0) {
        agents_turn_end(t, "error", err);
        return;
    }
    if (rt->ready)
        conv_session(cv, rt);
}

void agents_acp_cancel(struct turn *t)
{
    struct conv *cv = t->cv;
    struct agent_rt *rt = agents_rt(cv->a, cv->agent);
    if (!rt || !rt->proc || !cv->sid)
        return;
    json_object *p = json_object_new_object();
    json_object_object_add(p, "sessionId", json_object_new_string(cv->sid));
    agent_proc_notify(rt->proc, "session/cancel", p);
}

void agents_acp_withdraw(struct turn *t)
{
    struct approvals *ap = t->cv->a->env.approvals;
    while (t->perms) {
        struct perm *p = t->perms;
        approvals_withdraw(ap, p->approval_id);
        if (t->perms == p) { /* not in the registry any more: answered here */
            perm_unlink(p);
            respond_cancelled(p->req);
            free(p);
        }
    }
}
