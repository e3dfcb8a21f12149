/*
 * sio_events: the Claude Code server's Socket.IO events on the data plane
 * (see sio_events.h). Payload shapes follow that server's documentation
 * (shared seeds 002): chat_message {content, sessionId, projectId?,
 * metadata?}, terminal_command {command, sessionId, workingDir?},
 * tts_notification {message, type, priority}, join_session / join_project
 * with a string, system_status without arguments.
 */
#include "app/sio_events.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uuid/uuid.h>

#include "app/agents.h"
#include "app/client.h"
#include "app/dispatch.h"
#include "app/events.h"
#include "core/auth.h"
#include "core/clock.h"
#include "core/settings.h"
#include "server/server.h"
#include "workspace/commands.h"

#define SIO_ROOMS_MAX   32  /* rooms a client may join */
#define SIO_ROOM_MAX    128 /* bytes of a session or project id */
#define SIO_CONTENT_MAX 65536

struct sio_rooms {
    int n;
    char *room[SIO_ROOMS_MAX]; /* "s:<sessionId>" or "p:<projectId>", malloc'd */
};

static void iso_now(char *ts, size_t n)
{
    int64_t now = clock_wall_ms();
    time_t secs = (time_t)(now / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t tl = strftime(ts, n, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + tl, n - tl, ".%03dZ", (int)(now % 1000));
}

static int in_room(const struct client *c, char kind, const char *id)
{
    if (!c->sio)
        return 0;
    for (int i = 0; i < c->sio->n; i++)
        if (c->sio->room[i][0] == kind && strcmp(c->sio->room[i] + 2, id) == 0)
            return 1;
    return 0;
}

/* To every Socket.IO client in the session's room, and to also (NULL:
 * nobody) when it is not in it. payload owned. */
static void to_room(const struct sio_events_env *env, const char *session, struct client *also,
                    const char *event, json_object *payload)
{
    for (struct client *x = *env->clients; x; x = x->next) {
        if (!x->authed || x->gone || session_dialect(x->s) != SESSION_SOCKETIO)
            continue;
        if (x == also || in_room(x, 's', session))
            session_sio_emit(x->s, event, json_object_get(payload));
    }
    json_object_put(payload);
}

static void ack_reply(struct client *c, int64_t ack, json_object *result)
{
    if (ack < 0) {
        json_object_put(result);
        return;
    }
    json_object *arr = json_object_new_array();
    json_object_array_add(arr, result);
    session_sio_ack(c->s, ack, arr);
}

/* A refusal: the ack when the client asked for one, else an `error` event. */
static void refuse(struct client *c, int64_t ack, const char *event, const char *code,
                   const char *message)
{
    json_object *e = json_object_new_object();
    json_object_object_add(e, "code", json_object_new_string(code));
    json_object_object_add(e, "message", json_object_new_string(message));
    if (ack >= 0) {
        json_object *r = json_object_new_object();
        json_object_object_add(r, "success", json_object_new_boolean(0));
        json_object_object_add(r, "error", e);
        ack_reply(c, ack, r);
        return;
    }
    json_object_object_add(e, "event", json_object_new_string(event));
    session_sio_emit(c->s, "error", e);
}

static void ack_ok(struct client *c, int64_t ack, json_object *extra)
{
    if (ack < 0) {
        json_object_put(extra);
        return;
    }
    json_object *r = extra ? extra : json_object_new_object();
    json_object_object_add(r, "success", json_object_new_boolean(1));
    ack_reply(c, ack, r);
}

/* A string field of 1..max bytes, or NULL. */
static const char *str_arg(json_object *o, const char *key, int max)
{
    json_object *v = NULL;
    if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    int n = json_object_get_string_len(v);
    return n >= 1 && n <= max ? json_object_get_string(v) : NULL;
}

static void on_join(struct client *c, json_object *arg, char kind, int64_t ack, const char *event)
{
    if (!json_object_is_type(arg, json_type_string) || json_object_get_string_len(arg) < 1 ||
        json_object_get_string_len(arg) > SIO_ROOM_MAX) {
        refuse(c, ack, event, "INVALID_MESSAGE", "expected an id string of 1 to 128 bytes");
        return;
    }
    const char *id = json_object_get_string(arg);
    if (!in_room(c, kind, id)) {
        if (!c->sio && !(c->sio = calloc(1, sizeof(*c->sio)))) {
            refuse(c, ack, event, "PROCESSING_ERROR", "out of memory");
            return;
        }
        if (c->sio->n >= SIO_ROOMS_MAX) {
            refuse(c, ack, event, "LIMIT_EXCEEDED", "too many rooms joined (at most 32)");
            return;
        }
        size_t n = strlen(id) + 3;
        char *r = malloc(n);
        if (!r) {
            refuse(c, ack, event, "PROCESSING_ERROR", "out of memory");
            return;
        }
        snprintf(r, n, "%c:%s", kind, id);
        c->sio->room[c->sio->n++] = r;
    }
    json_object *o = json_object_new_object();
    json_object_object_add(o, kind == 's' ? "sessionId" : "projectId", json_object_new_string(id));
    ack_ok(c, ack, o);
}

/* The tag an internal call's answers carry back (their `id`). */
static json_object *tag(const char *kind, const char *session, const char *command)
{
    json_object *t = json_object_new_object();
    json_object_object_add(t, "sio", json_object_new_string(kind));
    json_object_object_add(t, "sessionId", json_object_new_string(session));
    if (command)
        json_object_object_add(t, "command", json_object_new_string(command));
    return t;
}

static void on_chat_message(const struct sio_events_env *env, struct client *c, json_object *p,
                            int64_t ack)
{
    const char *content = str_arg(p, "content", SIO_CONTENT_MAX);
    const char *session = str_arg(p, "sessionId", SIO_ROOM_MAX);
    if (!json_object_is_type(p, json_type_object) || !content || !session) {
        refuse(c, ack, "chat_message", "INVALID_MESSAGE",
               "expected {content: string (1 to 65536 bytes), sessionId: string (1 to 128 bytes)}");
        return;
    }
    if (!(c->scopes & AUTH_SCOPE_AGENT)) {
        refuse(c, ack, "chat_message", "FORBIDDEN", "chat_message needs the agent scope");
        return;
    }
    if (!agents_default_name(env->agents)) {
        refuse(c, ack, "chat_message", "AGENT_UNAVAILABLE", "no agent is configured");
        return;
    }
    char ts[40], mid[37];
    iso_now(ts, sizeof(ts));
    uuid_t u;
    uuid_generate_random(u);
    uuid_unparse_lower(u, mid);
    json_object *m = json_object_new_object();
    json_object_object_add(m, "id", json_object_new_string(mid));
    json_object_object_add(m, "content", json_object_new_string(content));
    json_object_object_add(m, "sessionId", json_object_new_string(session));
    json_object *v = NULL;
    if (json_object_object_get_ex(p, "projectId", &v) && json_object_is_type(v, json_type_string))
        json_object_object_add(m, "projectId", json_object_get(v));
    if (json_object_object_get_ex(p, "metadata", &v) && json_object_is_type(v, json_type_object))
        json_object_object_add(m, "metadata", json_object_get(v));
    json_object_object_add(m, "role", json_object_new_string("user"));
    json_object_object_add(m, "userId", json_object_new_string(c->user_id));
    json_object_object_add(m, "timestamp", json_object_new_string(ts));
    /* Everyone else in the session sees what was asked. */
    for (struct client *x = *env->clients; x; x = x->next)
        if (x != c && x->authed && !x->gone && session_dialect(x->s) == SESSION_SOCKETIO &&
            in_room(x, 's', session))
            session_sio_emit(x->s, "chat_message", json_object_get(m));
    json_object_put(m);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "messageId", json_object_new_string(mid));
    ack_ok(c, ack, o);
    json_object *t = tag("chat", session, NULL);
    agents_chat(env->agents, c, t, session, content, 0);
    json_object_put(t);
}

/* The configured task whose name, or command and args joined by single
 * spaces, is exactly `command`; NULL when none. */
static const struct settings_task *task_for(const struct settings *st, const char *command)
{
    for (size_t i = 0; i < st->tasks_n; i++) {
        const struct settings_task *t = &st->tasks[i];
        if (strcmp(t->name, command) == 0)
            return t;
        size_t n = strlen(t->command);
        if (strncmp(command, t->command, n) != 0)
            continue;
        const char *rest = command + n;
        size_t k = 0;
        for (; k < t->args.n; k++) {
            size_t al = strlen(t->args.v[k]);
            if (rest[0] != ' ' || strncmp(rest + 1, t->args.v[k], al) != 0)
                break;
            rest += al + 1;
        }
        if (k == t->args.n && rest[0] == '\0')
            return t;
    }
    return NULL;
}

static void on_terminal_command(const struct sio_events_env *env, struct client *c, json_object *p,
                                int64_t ack)
{
    const char *command = str_arg(p, "command", 4096);
    const char *session = str_arg(p, "sessionId", SIO_ROOM_MAX);
    if (!json_object_is_type(p, json_type_object) || !command || !session) {
        refuse(c, ack, "terminal_command", "INVALID_MESSAGE",
               "expected {command: string, sessionId: string (1 to 128 bytes)}");
        return;
    }
    const struct cmd_def *def = cmd_lookup("task.run");
    if (!def || (def->scope & c->scopes) != def->scope) {
        refuse(c, ack, "terminal_command", "FORBIDDEN", "terminal_command needs the run scope");
        return;
    }
    const struct settings_task *t = task_for(env->st, command);
    if (!t) {
        refuse(c, ack, "terminal_command", "UNKNOWN_TASK",
               "only configured tasks run: the command must equal a task's name, or its command "
               "and arguments joined by single spaces");
        return;
    }
    json_object *args = json_object_new_object();
    json_object_object_add(args, "name", json_object_new_string(t->name));
    json_object *id = tag("terminal", session, command);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "task", json_object_new_string(t->name));
    ack_ok(c, ack, o);
    dispatch_command(env->dispatch, c, def, id, args, NULL);
    json_object_put(id);
    json_object_put(args);
}

static const char *one_of(const char *v, const char *const *allowed)
{
    for (; *allowed; allowed++)
        if (strcmp(v, *allowed) == 0)
            return v;
    return NULL;
}

static void on_tts(const struct sio_events_env *env, struct client *c, json_object *p, int64_t ack)
{
    static const char *const types[] = {"info", "success", "warning", "error", NULL};
    static const char *const prios[] = {"normal", "urgent", NULL};
    const char *message = str_arg(p, "message", 4096);
    const char *type = str_arg(p, "type", 16), *prio = str_arg(p, "priority", 16);
    json_object *v = NULL;
    if (!json_object_is_type(p, json_type_object) || !message ||
        (json_object_object_get_ex(p, "type", &v) && !(type && one_of(type, types))) ||
        (json_object_object_get_ex(p, "priority", &v) && !(prio && one_of(prio, prios)))) {
        refuse(c, ack, "tts_notification", "INVALID_MESSAGE",
               "expected {message: string (1 to 4096 bytes), type?: info|success|warning|error, "
               "priority?: normal|urgent}");
        return;
    }
    if (!(c->scopes & AUTH_SCOPE_RUN)) {
        refuse(c, ack, "tts_notification", "FORBIDDEN",
               "sending a notification needs the run scope");
        return;
    }
    json_object *n = json_object_new_object();
    json_object_object_add(n, "title", json_object_new_string(""));
    json_object_object_add(n, "message", json_object_new_string(message));
    json_object_object_add(n, "level", json_object_new_string(type ? type : "info"));
    json_object_object_add(n, "type", json_object_new_string(type ? type : "info"));
    json_object_object_add(n, "priority", json_object_new_string(prio ? prio : "normal"));
    json_object_object_add(n, "from", json_object_new_string(c->user_id));
    int delivered = events_publish(env->events, EVENT_NOTIFY, n);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "delivered", json_object_new_int(delivered));
    ack_ok(c, ack, o);
}

/* file_update {filePath, content, action: create|update|delete,
 * expectedSha256?}: fs.write or fs.delete (write scope), answered by the
 * ack; everyone hears the change as file_update from file.changed. */
static void on_file_update(const struct sio_events_env *env, struct client *c, json_object *p,
                           int64_t ack)
{
    const char *file = str_arg(p, "filePath", 4096);
    const char *action = str_arg(p, "action", 16);
    static const char *const actions[] = {"create", "update", "delete", NULL};
    json_object *content = NULL, *sha = NULL, *v = NULL;
    if (!json_object_is_type(p, json_type_object) || !file ||
        (json_object_object_get_ex(p, "action", &v) && !(action && one_of(action, actions)))) {
        refuse(c, ack, "file_update", "INVALID_MESSAGE",
               "expected {filePath: string, content: string, action?: create|update|delete, "
               "expectedSha256?: string}");
        return;
    }
    int del = action && strcmp(action, "delete") == 0;
    json_object_object_get_ex(p, "content", &content);
    json_object_object_get_ex(p, "expectedSha256", &sha);
    if (!del && !json_object_is_type(content, json_type_string)) {
        refuse(c, ack, "file_update", "INVALID_MESSAGE", "content: expected a string");
        return;
    }
    const struct cmd_def *def = cmd_lookup(del ? "fs.delete" : "fs.write");
    if (!def || (def->scope & c->scopes) != def->scope) {
        refuse(c, ack, "file_update", "FORBIDDEN", "file_update needs the write scope");
        return;
    }
    json_object *args = json_object_new_object();
    json_object_object_add(args, "path", json_object_new_string(file));
    if (!del)
        json_object_object_add(args, "content", json_object_get(content));
    if (sha)
        json_object_object_add(args, "expectedSha256", json_object_get(sha));
    json_object *id = json_object_new_object();
    json_object_object_add(id, "sio", json_object_new_string("file"));
    json_object_object_add(id, "filePath", json_object_new_string(file));
    json_object_object_add(id, "ack", json_object_new_int64(ack));
    dispatch_command(env->dispatch, c, def, id, args, NULL);
    json_object_put(id);
    json_object_put(args);
}

static void on_system_status(const struct sio_events_env *env, struct client *c, int64_t ack)
{
    char ts[40];
    iso_now(ts, sizeof(ts));
    int clients = 0;
    for (struct client *x = *env->clients; x; x = x->next)
        clients += x->authed && !x->gone;
    json_object *s = json_object_new_object();
    json_object_object_add(s, "status", json_object_new_string("healthy"));
    json_object_object_add(s, "version", json_object_new_string(COMPANION_VERSION));
    json_object_object_add(s, "timestamp", json_object_new_string(ts));
    json_object_object_add(s, "connections", json_object_new_int(clients));
    json_object_object_add(s, "runningTasks",
                           json_object_new_int(dispatch_running_tasks(env->dispatch)));
    const char *agent = agents_default_name(env->agents);
    json_object_object_add(s, "agent", agent ? json_object_new_string(agent) : NULL);
    if (ack >= 0)
        ack_ok(c, ack, json_object_get(s));
    session_sio_emit(c->s, "system_status", s);
}

void sio_events_connected(const struct sio_events_env *env, struct client *c)
{
    (void)env;
    c->event_mask |= EVENT_NOTIFY | EVENT_FILE_CHANGED;
}

void sio_events_event(const struct sio_events_env *env, struct client *c, const char *name,
                      json_object *args, int64_t ack)
{
    json_object *a1 =
        json_object_array_length(args) > 1 ? json_object_array_get_idx(args, 1) : NULL;
    if (strcmp(name, "chat_message") == 0)
        on_chat_message(env, c, a1, ack);
    else if (strcmp(name, "terminal_command") == 0)
        on_terminal_command(env, c, a1, ack);
    else if (strcmp(name, "tts_notification") == 0)
        on_tts(env, c, a1, ack);
    else if (strcmp(name, "join_session") == 0)
        on_join(c, a1, 's', ack, name);
    else if (strcmp(name, "join_project") == 0)
        on_join(c, a1, 'p', ack, name);
    else if (strcmp(name, "file_update") == 0)
        on_file_update(env, c, a1, ack);
    else if (strcmp(name, "system_status") == 0)
        on_system_status(env, c, ack);
    else
        refuse(c, ack, name, "UNKNOWN_EVENT", "unknown event");
}

static json_object *field(json_object *o, const char *key)
{
    json_object *v = NULL;
    return o && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

/* A task's stream as terminal_output for the session's room. */
static void terminal_out(const struct sio_events_env *env, struct client *c, json_object *id,
                         const char *type, json_object *data)
{
    const char *session = json_object_get_string(field(id, "sessionId"));
    json_object *o = json_object_new_object();
    json_object_object_add(o, "sessionId", json_object_new_string(session));
    json_object_object_add(o, "command", json_object_get(field(id, "command")));
    if (strcmp(type, "stream_chunk") == 0) {
        json_object_object_add(o, "type", json_object_new_string("output"));
        json_object_object_add(o, "output", json_object_get(field(data, "text")));
        json_object_object_add(o, "stream", json_object_get(field(data, "stream")));
    } else if (strcmp(type, "stream_start") == 0) {
        json_object_object_add(o, "type", json_object_new_string("start"));
        json_object_object_add(o, "output", json_object_new_string(""));
    } else if (strcmp(type, "stream_end") == 0) {
        json_object_object_add(o, "type", json_object_new_string("exit"));
        json_object_object_add(o, "output", json_object_new_string(""));
        json_object_object_foreach(data, k, v) json_object_object_add(o, k, json_object_get(v));
    } else {
        /* command_response: the run was refused (or needs approval). */
        json_object *err = field(data, "error");
        json_object_object_add(o, "type", json_object_new_string(err ? "error" : "status"));
        json_object_object_add(o, "output", json_object_new_string(""));
        if (err)
            json_object_object_add(o, "error", json_object_get(err));
    }
    to_room(env, session, c, "terminal_output", o);
}

void sio_events_outgoing(const struct sio_events_env *env, struct client *c, json_object *msg)
{
    const char *type = json_object_get_string(field(msg, "type"));
    json_object *id = field(msg, "id"), *data = field(msg, "data");
    const char *kind =
        json_object_is_type(id, json_type_object) ? json_object_get_string(field(id, "sio")) : NULL;
    if (!type) {
        json_object_put(msg);
        return;
    }
    if (kind && strcmp(kind, "chat") == 0 && strcmp(type, "chat_reply") == 0) {
        char ts[40];
        iso_now(ts, sizeof(ts));
        json_object *o = json_object_new_object();
        const char *session = json_object_get_string(field(id, "sessionId"));
        json_object_object_add(o, "content", json_object_get(field(data, "text")));
        json_object_object_add(o, "sessionId", json_object_new_string(session));
        json_object_object_add(o, "role", json_object_new_string("assistant"));
        json_object_object_add(o, "timestamp", json_object_new_string(ts));
        to_room(env, session, c, "chat_message", o);
    } else if (kind && strcmp(kind, "terminal") == 0) {
        terminal_out(env, c, id, type, data);
    } else if (kind && strcmp(kind, "file") == 0) {
        /* fs.write / fs.delete answered: the ack, or an error event. */
        int64_t ack = json_object_get_int64(field(id, "ack"));
        json_object *err = field(data, "error");
        if (err && ack < 0) {
            json_object *e = json_object_get(err);
            json_object_object_add(e, "event", json_object_new_string("file_update"));
            json_object_object_add(e, "filePath", json_object_get(field(id, "filePath")));
            session_sio_emit(c->s, "error", e);
        } else if (err) {
            json_object *r = json_object_new_object();
            json_object_object_add(r, "success", json_object_new_boolean(0));
            json_object_object_add(r, "error", json_object_get(err));
            ack_reply(c, ack, r);
        } else {
            json_object *r = json_object_new_object();
            json_object_object_foreach(field(data, "result"), k, v)
                json_object_object_add(r, k, json_object_get(v));
            ack_ok(c, ack, r);
        }
    } else if (strcmp(type, "event") == 0 &&
               strcmp(json_object_get_string(field(data, "event")), "file.changed") == 0) {
        json_object *p = field(data, "payload");
        const char *change = json_object_get_string(field(p, "change"));
        change = change ? change : "";
        json_object *o = json_object_new_object();
        json_object_object_add(o, "filePath", json_object_get(field(p, "path")));
        json_object_object_add(o, "folder", json_object_get(field(p, "folder")));
        json_object_object_add(o, "action",
                               json_object_new_string(strcmp(change, "created") == 0   ? "create"
                                                      : strcmp(change, "deleted") == 0 ? "delete"
                                                                                       : "update"));
        if (field(p, "overflow"))
            json_object_object_add(o, "overflow", json_object_get(field(p, "overflow")));
        session_sio_emit(c->s, "file_update", o);
    } else if (strcmp(type, "event") == 0 &&
               strcmp(json_object_get_string(field(data, "event")), "notify") == 0) {
        json_object *p = field(data, "payload");
        json_object *o = json_object_new_object();
        json_object_object_add(o, "message", json_object_get(field(p, "message")));
        json_object *t = field(p, "type");
        json_object_object_add(o, "type", json_object_get(t ? t : field(p, "level")));
        json_object *pr = field(p, "priority");
        json_object_object_add(o, "priority",
                               pr ? json_object_get(pr) : json_object_new_string("normal"));
        if (field(p, "title") && json_object_get_string_len(field(p, "title")))
            json_object_object_add(o, "title", json_object_get(field(p, "title")));
        session_sio_emit(c->s, "tts_notification", o);
    } else {
        /* Anything else: an event named by its type, with its data. */
        session_sio_emit(c->s, type, data ? json_object_get(data) : NULL);
    }
    json_object_put(msg);
}

void sio_events_client_gone(struct client *c)
{
    if (!c->sio)
        return;
    for (int i = 0; i < c->sio->n; i++)
        free(c->sio->room[i]);
    free(c->sio);
    c->sio = NULL;
}
