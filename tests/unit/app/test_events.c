/*
 * app/events.c: the ring of the last events, the fan-out to subscribers,
 * subscribe / unsubscribe with `since` replay and resync, who may receive
 * (authenticated, read scope, not going), events.taskOutput "own", chat
 * "notify on" (events as chat_reply text), and a slow subscriber that
 * does not stop the others. Sessions are stand-ins (fake_session.h) that
 * keep what is sent to them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "app/client.h"
#include "app/events.h"
#include "core/auth.h"
#include "core/settings.h"
#include "workspace/chat.h"

#include "fake_session.h"

#define N_CLIENTS 6

struct fx {
    struct events ev;
    struct settings st;
    struct client *head;
    struct client c[N_CLIENTS];
    struct session s[N_CLIENTS];
};

/* ---- helpers ------------------------------------------------------------- */

static json_object *parse(const char *text)
{
    json_object *o = json_tokener_parse(text);
    if (!o)
        fail_msg("bad test JSON: %s", text);
    return o;
}

/* Client i: authenticated as `user` with `scopes`, last in the list. */
static struct client *add_client(struct fx *fx, int i, const char *user, unsigned scopes)
{
    struct client *c = &fx->c[i];
    memset(c, 0, sizeof(*c));
    char id[16];
    snprintf(id, sizeof(id), "sess-%d", i);
    fake_session_init(&fx->s[i], id);
    c->s = &fx->s[i];
    c->authed = 1;
    c->user_id = user ? strdup(user) : NULL;
    c->scopes = scopes;
    struct client **pp = &fx->head, *prev = NULL;
    while (*pp) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    c->prev = prev;
    *pp = c;
    return c;
}

static int setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    settings_init(&fx->st);
    assert_int_equal(events_init(&fx->ev, 8, &fx->head, &fx->st), 0);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    events_free(&fx->ev);
    for (struct client *c = fx->head; c; c = c->next) {
        free(c->user_id);
        fake_session_free(c->s);
    }
    settings_free(&fx->st);
    free(fx);
    return 0;
}

static json_object *payload_n(int n)
{
    json_object *p = json_object_new_object();
    json_object_object_add(p, "n", json_object_new_int(n));
    return p;
}

static json_object *task_finished(const char *name, const char *user, const char *tail)
{
    json_object *p = json_object_new_object();
    json_object_object_add(p, "name", json_object_new_string(name));
    if (user)
        json_object_object_add(p, "userId", json_object_new_string(user));
    json_object_object_add(p, "exitCode", json_object_new_int(3));
    json_object_object_add(p, "durationMs", json_object_new_int(1500));
    json_object_object_add(p, "tail", json_object_new_string(tail));
    return p;
}

static int64_t int_of(json_object *o, const char *k)
{
    json_object *v;
    if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_int))
        fail_msg("no integer %s in %s", k, json_object_to_json_string(o));
    return json_object_get_int64(v);
}

static const char *str_of(json_object *o, const char *k)
{
    json_object *v;
    if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_string))
        fail_msg("no string %s in %s", k, json_object_to_json_string(o));
    return json_object_get_string(v);
}

/* The i-th message to s is event `kind` with `seq`; its payload. */
static json_object *expect_event(const struct session *s, size_t i, const char *kind, uint64_t seq)
{
    if (i >= sent_n(s))
        fail_msg("%s: no message %zu (%zu sent)", s->id, i, sent_n(s));
    if (strcmp(sent_type(s, i), "event") != 0)
        fail_msg("%s: message %zu is %s", s->id, i, json_object_to_json_string(sent_at(s, i)));
    json_object *d = sent_data(s, i), *p;
    assert_non_null(d);
    assert_string_equal(str_of(d, "event"), kind);
    if ((uint64_t)int_of(d, "seq") != seq)
        fail_msg("%s: message %zu has seq %lld, expected %llu", s->id, i,
                 (long long)int_of(d, "seq"), (unsigned long long)seq);
    assert_true(json_object_object_get_ex(d, "payload", &p));
    return p;
}

/* The i-th message to s is a resync to `seq`. */
static void expect_resync(const struct session *s, size_t i, uint64_t seq)
{
    assert_true(i < sent_n(s));
    assert_string_equal(sent_type(s, i), "event");
    json_object *d = sent_data(s, i);
    assert_string_equal(str_of(d, "event"), "resync");
    assert_int_equal(int_of(d, "seq"), seq);
}

static void expect_error(const struct session *s, size_t i, const char *code)
{
    assert_true(i < sent_n(s));
    assert_string_equal(sent_type(s, i), "error");
    assert_string_equal(str_of(sent_data(s, i), "code"), code);
}

/* events_on_subscribe with data parsed from text (NULL: no data). */
static void subscribe(struct fx *fx, struct client *c, const char *data, int on)
{
    json_object *id = json_object_new_string("sub-1");
    json_object *d = data ? parse(data) : NULL;
    events_on_subscribe(&fx->ev, c, id, d, on);
    json_object_put(d);
    json_object_put(id);
}

/* Subscribes and checks the "subscribed" answer; the messages after it
 * are the replay. */
static void subscribe_ok(struct fx *fx, struct client *c, const char *data)
{
    size_t before = sent_n(c->s);
    subscribe(fx, c, data, 1);
    if (sent_n(c->s) <= before || strcmp(sent_type(c->s, before), "subscribed") != 0)
        fail_msg("%s: no subscribed answer to %s", c->s->id, data);
    json_object *id;
    assert_true(json_object_object_get_ex(sent_at(c->s, before), "id", &id));
    assert_string_equal(json_object_get_string(id), "sub-1");
    assert_int_equal(int_of(sent_data(c->s, before), "seq"), fx->ev.seq);
}

/* The seqs in the ring, oldest first, must be first..last, contiguous. */
static void expect_ring(const struct events *ev, uint64_t first, uint64_t last)
{
    assert_int_equal(ev->count, last - first + 1);
    for (size_t i = 0; i < ev->count; i++) {
        const struct event *e = &ev->ring[(ev->head + i) % ev->cap];
        if (e->seq != first + i)
            fail_msg("ring[%zu] has seq %llu, expected %llu", i, (unsigned long long)e->seq,
                     (unsigned long long)(first + i));
        assert_int_equal(int_of(e->payload, "n"), (int64_t)e->seq);
    }
}

/* ---- the ring -------------------------------------------------------------------- */

static void test_kind_names(void **state)
{
    assert_string_equal(event_kind_name(EVENT_TASK_STARTED), "task.started");
    assert_string_equal(event_kind_name(EVENT_TASK_FINISHED), "task.finished");
    assert_string_equal(event_kind_name(EVENT_GIT_CHANGED), "git.changed");
    assert_string_equal(event_kind_name(EVENT_FILE_SAVED), "file.saved");
    assert_string_equal(event_kind_name(EVENT_NOTIFY), "notify");
    assert_string_equal(event_kind_name(EVENT_AGENT_TURN_FINISHED), "agent.turn_finished");
    assert_string_equal(event_kind_name(EVENT_FILE_CHANGED), "file.changed");
    assert_string_equal(event_kind_name((enum event_kind)(1u << 9)), "unknown");
}

static void test_ring_keeps_newest(void **state)
{
    struct fx *fx = *state;
    for (int i = 1; i <= 5; i++)
        assert_int_equal(events_publish(&fx->ev, EVENT_GIT_CHANGED, payload_n(i)), 0);
    expect_ring(&fx->ev, 1, 5);
    for (int i = 6; i <= 21; i++)
        events_publish(&fx->ev, EVENT_GIT_CHANGED, payload_n(i));
    assert_int_equal(fx->ev.seq, 21);
    expect_ring(&fx->ev, 14, 21); /* the last 8 */

    /* What a client replays from the start is exactly those. */
    struct client *c = add_client(fx, 0, "alice", AUTH_SCOPE_READ);
    subscribe_ok(fx, c, "{\"events\":[\"git.changed\"],\"since\":0}");
    expect_resync(c->s, 1, 13);
    for (int i = 0; i < 8; i++)
        assert_int_equal(int_of(expect_event(c->s, 2 + i, "git.changed", 14 + i), "n"), 14 + i);
    assert_int_equal(sent_n(c->s), 10);
}

static void test_resize_keeps_newest(void **state)
{
    struct fx *fx = *state;
    for (int i = 1; i <= 6; i++)
        events_publish(&fx->ev, EVENT_NOTIFY, payload_n(i));
    assert_int_equal(events_resize(&fx->ev, 8), 0); /* same size: nothing */
    expect_ring(&fx->ev, 1, 6);
    assert_int_equal(events_resize(&fx->ev, 3), 0);
    assert_int_equal(fx->ev.cap, 3);
    expect_ring(&fx->ev, 4, 6);
    assert_int_equal(events_resize(&fx->ev, 10), 0);
    expect_ring(&fx->ev, 4, 6);
    for (int i = 7; i <= 20; i++)
        events_publish(&fx->ev, EVENT_NOTIFY, payload_n(i));
    expect_ring(&fx->ev, 11, 20);

    /* Shrinking a ring that has wrapped (head inside it). */
    assert_int_equal(events_resize(&fx->ev, 4), 0);
    for (int i = 21; i <= 23; i++)
        events_publish(&fx->ev, EVENT_NOTIFY, payload_n(i));
    assert_true(fx->ev.head != 0);
    expect_ring(&fx->ev, 20, 23);
    assert_int_equal(events_resize(&fx->ev, 2), 0);
    expect_ring(&fx->ev, 22, 23);
    /* Growing a wrapped ring keeps the order too. */
    events_publish(&fx->ev, EVENT_NOTIFY, payload_n(24));
    assert_true(fx->ev.head != 0);
    assert_int_equal(events_resize(&fx->ev, 5), 0);
    expect_ring(&fx->ev, 23, 24);
    events_publish(&fx->ev, EVENT_NOTIFY, payload_n(25));
    expect_ring(&fx->ev, 23, 25);
    assert_int_equal(fx->ev.seq, 25);
}

/* ---- subscribe and replay ------------------------------------------------------ */

/* seq 1 task.started, 2 git.changed, 3 task.finished, 4 file.saved,
 * 5 notify, 6 git.changed. */
static void publish_mixed(struct fx *fx)
{
    const enum event_kind kinds[] = {EVENT_TASK_STARTED, EVENT_GIT_CHANGED, EVENT_TASK_FINISHED,
                                     EVENT_FILE_SAVED,   EVENT_NOTIFY,      EVENT_GIT_CHANGED};
    for (int i = 0; i < 6; i++)
        events_publish(&fx->ev, kinds[i], payload_n(i + 1));
}

static void test_subscribe_since_replays_missed(void **state)
{
    struct fx *fx = *state;
    publish_mixed(fx);
    struct client *c = add_client(fx, 0, "alice", AUTH_SCOPE_READ);

    subscribe_ok(fx, c, "{\"events\":[\"git.changed\",\"notify\"],\"since\":2}");
    json_object *names;
    assert_true(json_object_object_get_ex(sent_data(c->s, 0), "events", &names));
    assert_string_equal(json_object_to_json_string_ext(names, JSON_C_TO_STRING_PLAIN),
                        "[\"git.changed\",\"notify\"]");
    assert_int_equal(c->event_mask, EVENT_GIT_CHANGED | EVENT_NOTIFY);
    expect_event(c->s, 1, "notify", 5);
    expect_event(c->s, 2, "git.changed", 6);
    assert_int_equal(sent_n(c->s), 3);

    /* From 0: every subscribed event in the ring, no resync. */
    fake_session_clear(c->s);
    subscribe_ok(fx, c, "{\"events\":[\"git.changed\"],\"since\":0}");
    expect_event(c->s, 1, "git.changed", 2);
    expect_event(c->s, 2, "notify", 5); /* still subscribed to notify */
    expect_event(c->s, 3, "git.changed", 6);
    assert_int_equal(sent_n(c->s), 4);

    /* Up to date: nothing. No since (or null): nothing. */
    fake_session_clear(c->s);
    subscribe_ok(fx, c, "{\"events\":[\"git.changed\"],\"since\":6}");
    assert_int_equal(sent_n(c->s), 1);
    subscribe_ok(fx, c, "{\"events\":[\"git.changed\"]}");
    subscribe_ok(fx, c, "{\"events\":[\"git.changed\"],\"since\":null}");
    assert_int_equal(sent_n(c->s), 3);

    /* Then live events follow, with their seq. */
    fake_session_clear(c->s);
    assert_int_equal(events_publish(&fx->ev, EVENT_GIT_CHANGED, payload_n(7)), 1);
    assert_int_equal(events_publish(&fx->ev, EVENT_FILE_SAVED, payload_n(8)), 0);
    assert_int_equal(int_of(expect_event(c->s, 0, "git.changed", 7), "n"), 7);
    assert_int_equal(sent_n(c->s), 1);

    /* Each kind by its name, and all of them. */
    struct client *d = add_client(fx, 1, "bob", AUTH_SCOPE_READ);
    subscribe_ok(fx, d,
                 "{\"events\":[\"task.started\",\"task.finished\",\"git.changed\","
                 "\"file.saved\",\"notify\",\"file.changed\"],\"since\":0}");
    assert_int_equal(d->event_mask, EVENT_ALL & ~(EVENT_APPROVAL | EVENT_AGENT_TURN_FINISHED));
    const char *order[] = {"task.started", "git.changed", "task.finished", "file.saved",
                           "notify",       "git.changed", "git.changed",   "file.saved"};
    for (int i = 0; i < 8; i++)
        expect_event(d->s, 1 + (size_t)i, order[i], (uint64_t)i + 1);
    assert_int_equal(sent_n(d->s), 9);
}

static void test_since_out_of_range_resyncs(void **state)
{
    struct fx *fx = *state;
    struct client *c = add_client(fx, 0, "alice", AUTH_SCOPE_READ);
    /* Nothing published yet: since 0 is current; anything else is from
     * an earlier run. */
    subscribe_ok(fx, c, "{\"events\":[\"notify\"],\"since\":0}");
    assert_int_equal(sent_n(c->s), 1);
    subscribe_ok(fx, c, "{\"events\":[\"notify\"],\"since\":5}");
    expect_resync(c->s, 2, 0);
    assert_int_equal(sent_n(c->s), 3);

    for (int i = 1; i <= 12; i++)
        events_publish(&fx->ev, EVENT_NOTIFY, payload_n(i)); /* ring: 5..12 */
    fake_session_clear(c->s);
    /* since = oldest - 1: everything is still there, no resync. */
    subscribe_ok(fx, c, "{\"events\":[\"notify\"],\"since\":4}");
    for (int i = 0; i < 8; i++)
        expect_event(c->s, 1 + (size_t)i, "notify", 5 + (uint64_t)i);
    assert_int_equal(sent_n(c->s), 9);

    /* Older than the ring: resync to what the ring holds, then all of it. */
    const char *old[] = {"{\"events\":[\"notify\"],\"since\":3}",
                         "{\"events\":[\"notify\"],\"since\":0}"};
    for (size_t k = 0; k < 2; k++) {
        fake_session_clear(c->s);
        subscribe_ok(fx, c, old[k]);
        expect_resync(c->s, 1, 4);
        for (int i = 0; i < 8; i++)
            expect_event(c->s, 2 + (size_t)i, "notify", 5 + (uint64_t)i);
        assert_int_equal(sent_n(c->s), 10);
    }

    /* Ahead of the sequence (the helper restarted): resync, then the
     * ring, as for a client that is too far behind. */
    fake_session_clear(c->s);
    subscribe_ok(fx, c, "{\"events\":[\"notify\"],\"since\":13}");
    expect_resync(c->s, 1, 4);
    for (int i = 0; i < 8; i++)
        expect_event(c->s, 2 + (size_t)i, "notify", 5 + (uint64_t)i);
    assert_int_equal(sent_n(c->s), 10);
    fake_session_clear(c->s);
    subscribe_ok(fx, c, "{\"events\":[\"notify\"],\"since\":9007199254740993}");
    expect_resync(c->s, 1, 4);
    assert_int_equal(sent_n(c->s), 10);

    /* Exactly current: nothing. */
    fake_session_clear(c->s);
    subscribe_ok(fx, c, "{\"events\":[\"notify\"],\"since\":12}");
    assert_int_equal(sent_n(c->s), 1);
}

static void test_subscribe_refusals(void **state)
{
    struct fx *fx = *state;
    publish_mixed(fx);
    struct client *c = add_client(fx, 0, "alice", AUTH_SCOPE_READ);
    c->event_mask = EVENT_NOTIFY;
    const char *bad[] = {NULL,
                         "{}",
                         "{\"events\":\"notify\"}",
                         "{\"events\":[\"notify\",\"bogus\"]}",
                         "{\"events\":[\"notify\",3]}",
                         "{\"events\":[\"Notify\"]}",
                         "{\"events\":[\"git.changed\"],\"since\":-1}",
                         "{\"events\":[\"git.changed\"],\"since\":\"3\"}",
                         "{\"events\":[\"git.changed\"],\"since\":1.5}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        fake_session_clear(c->s);
        subscribe(fx, c, bad[i], 1);
        if (sent_n(c->s) != 1)
            fail_msg("%s: %zu messages", bad[i] ? bad[i] : "(no data)", sent_n(c->s));
        expect_error(c->s, 0, "INVALID_MESSAGE");
        assert_int_equal(c->event_mask, EVENT_NOTIFY); /* unchanged */
    }
    fake_session_clear(c->s);
    subscribe(fx, c, "{\"events\":[\"notify\",\"bogus\"]}", 1);
    assert_non_null(strstr(str_of(sent_data(c->s, 0), "message"), "data.events[1]"));

    /* Without the read scope: FORBIDDEN, nothing subscribed or replayed. */
    struct client *r = add_client(fx, 1, "runner", AUTH_SCOPE_RUN | AUTH_SCOPE_EDITOR);
    subscribe(fx, r, "{\"events\":[\"notify\"],\"since\":0}", 1);
    assert_int_equal(sent_n(r->s), 1);
    expect_error(r->s, 0, "FORBIDDEN");
    assert_int_equal(r->event_mask, 0);
}

static void test_unsubscribe(void **state)
{
    struct fx *fx = *state;
    publish_mixed(fx);
    struct client *c = add_client(fx, 0, "alice", AUTH_SCOPE_READ);
    subscribe_ok(fx, c, "{\"events\":[\"git.changed\",\"notify\"]}");
    fake_session_clear(c->s);
    /* since means nothing to unsubscribe: no replay. */
    subscribe(fx, c, "{\"events\":[\"notify\"],\"since\":0}", 0);
    assert_int_equal(sent_n(c->s), 1);
    assert_string_equal(sent_type(c->s, 0), "unsubscribed");
    assert_int_equal(c->event_mask, EVENT_GIT_CHANGED);

    fake_session_clear(c->s);
    assert_int_equal(events_publish(&fx->ev, EVENT_NOTIFY, payload_n(7)), 0);
    assert_int_equal(events_publish(&fx->ev, EVENT_GIT_CHANGED, payload_n(8)), 1);
    assert_int_equal(sent_n(c->s), 1);
    expect_event(c->s, 0, "git.changed", 8);

    /* Unsubscribing what was not subscribed is fine; an unknown name is not. */
    fake_session_clear(c->s);
    subscribe(fx, c, "{\"events\":[\"file.saved\"]}", 0);
    assert_string_equal(sent_type(c->s, 0), "unsubscribed");
    assert_int_equal(c->event_mask, EVENT_GIT_CHANGED);
    subscribe(fx, c, "{\"events\":[\"nope\"]}", 0);
    expect_error(c->s, 1, "INVALID_MESSAGE");
    subscribe(fx, c, "{\"events\":[\"git.changed\"]}", 0);
    assert_int_equal(c->event_mask, 0);
    fake_session_clear(c->s);
    assert_int_equal(events_publish(&fx->ev, EVENT_GIT_CHANGED, payload_n(9)), 0);
    assert_int_equal(sent_n(c->s), 0);
}

/* ---- who receives ----------------------------------------------------------------- */

static void test_only_authed_readers_receive(void **state)
{
    struct fx *fx = *state;
    struct client *ok = add_client(fx, 0, "alice", AUTH_SCOPE_READ);
    struct client *unauthed = add_client(fx, 1, NULL, AUTH_SCOPE_ALL);
    unauthed->authed = 0;
    struct client *no_read = add_client(fx, 2, "runner", AUTH_SCOPE_RUN | AUTH_SCOPE_EDITOR);
    struct client *gone = add_client(fx, 3, "left", AUTH_SCOPE_READ);
    gone->gone = 1;
    struct client *closing = add_client(fx, 4, "closing", AUTH_SCOPE_READ);
    closing->s->closing = 1;
    struct client *all = add_client(fx, 5, "admin", AUTH_SCOPE_ALL);
    /* All of them listen, as far as their masks and chat go. */
    for (int i = 0; i < N_CLIENTS; i++) {
        fx->c[i].event_mask = EVENT_ALL;
        fx->c[i].chat_notify = 1;
    }
    int n = events_publish(&fx->ev, EVENT_GIT_CHANGED, payload_n(1));
    assert_int_equal(n, 2);
    expect_event(ok->s, 0, "git.changed", 1);
    expect_event(all->s, 0, "git.changed", 1);
    assert_int_equal(ok->s->attempts, 1);
    assert_int_equal(all->s->attempts, 1);
    assert_int_equal(unauthed->s->attempts, 0);
    assert_int_equal(no_read->s->attempts, 0);
    assert_int_equal(gone->s->attempts, 0);
    assert_int_equal(closing->s->attempts, 0);

    /* A chat kind: the event and its chat text, still only to those two. */
    n = events_publish(&fx->ev, EVENT_NOTIFY, parse("{\"title\":\"T\",\"message\":\"M\"}"));
    assert_int_equal(n, 4);
    assert_int_equal(
        unauthed->s->attempts + no_read->s->attempts + gone->s->attempts + closing->s->attempts, 0);
    assert_int_equal(sent_n(ok->s), 3);
    expect_event(ok->s, 1, "notify", 2);
    assert_string_equal(sent_type(ok->s, 2), "chat_reply");

    /* Not subscribed to that kind: nothing. */
    ok->event_mask = EVENT_NOTIFY;
    ok->chat_notify = 0;
    fake_session_clear(ok->s);
    assert_int_equal(events_publish(&fx->ev, EVENT_FILE_SAVED, payload_n(3)), 1);
    assert_int_equal(ok->s->attempts, 0);
}

static void test_each_session_gets_its_own_copy(void **state)
{
    struct fx *fx = *state;
    struct client *a = add_client(fx, 0, "alice", AUTH_SCOPE_READ);
    struct client *b = add_client(fx, 1, "bob", AUTH_SCOPE_READ);
    a->event_mask = b->event_mask = EVENT_GIT_CHANGED;
    events_publish(&fx->ev, EVENT_GIT_CHANGED, payload_n(1));
    json_object *pa = expect_event(a->s, 0, "git.changed", 1);
    json_object *pb = expect_event(b->s, 0, "git.changed", 1);
    assert_ptr_not_equal(sent_at(a->s, 0), sent_at(b->s, 0));
    /* A change to one (the transport adds a timestamp) touches no other,
     * nor the ring. */
    json_object_object_add(sent_at(a->s, 0), "timestamp", json_object_new_int(1));
    json_object_object_add(pa, "n", json_object_new_int(99));
    assert_false(json_object_object_get_ex(sent_at(b->s, 0), "timestamp", NULL));
    assert_int_equal(int_of(pb, "n"), 1);
    expect_ring(&fx->ev, 1, 1);
}

/* ---- events.taskOutput ----------------------------------------------------------- */

static int has_tail(json_object *payload)
{
    return json_object_object_get_ex(payload, "tail", NULL);
}

static void test_task_output_own(void **state)
{
    struct fx *fx = *state;
    fx->st.task_output = TASK_OUTPUT_OWN;
    struct client *alice = add_client(fx, 0, "alice", AUTH_SCOPE_READ);
    struct client *bob = add_client(fx, 1, "bob", AUTH_SCOPE_READ);
    struct client *anon = add_client(fx, 2, NULL, AUTH_SCOPE_READ);
    struct client *alice2 = add_client(fx, 3, "alice", AUTH_SCOPE_READ); /* another device */
    for (int i = 0; i < 4; i++)
        fx->c[i].event_mask = EVENT_ALL;

    assert_int_equal(events_publish(&fx->ev, EVENT_TASK_FINISHED,
                                    task_finished("build", "alice", "secret output\n")),
                     4);
    json_object *p = expect_event(alice->s, 0, "task.finished", 1);
    assert_string_equal(str_of(p, "tail"), "secret output\n");
    p = expect_event(alice2->s, 0, "task.finished", 1);
    assert_string_equal(str_of(p, "tail"), "secret output\n");
    p = expect_event(bob->s, 0, "task.finished", 1);
    assert_false(has_tail(p));
    assert_string_equal(str_of(p, "name"), "build"); /* the rest is there */
    assert_int_equal(int_of(p, "exitCode"), 3);
    assert_string_equal(str_of(p, "userId"), "alice");
    p = expect_event(anon->s, 0, "task.finished", 1);
    assert_false(has_tail(p));

    /* The ring keeps the tail: the owner replaying sees it, bob does not. */
    fake_session_clear(alice->s);
    fake_session_clear(bob->s);
    subscribe_ok(fx, alice, "{\"events\":[\"task.finished\"],\"since\":0}");
    assert_string_equal(str_of(expect_event(alice->s, 1, "task.finished", 1), "tail"),
                        "secret output\n");
    subscribe_ok(fx, bob, "{\"events\":[\"task.finished\"],\"since\":0}");
    assert_false(has_tail(expect_event(bob->s, 1, "task.finished", 1)));

    /* A task.finished with no owner: nobody sees its output. */
    fake_session_clear(alice->s);
    events_publish(&fx->ev, EVENT_TASK_FINISHED, task_finished("cron", NULL, "out"));
    assert_false(has_tail(expect_event(alice->s, 0, "task.finished", 2)));
    /* Only task.finished is touched. */
    json_object *started = task_finished("build", "alice", "kept");
    events_publish(&fx->ev, EVENT_TASK_STARTED, started);
    assert_true(has_tail(expect_event(bob->s, 3, "task.started", 3)));

    /* "all": everyone sees it. */
    fx->st.task_output = TASK_OUTPUT_ALL;
    fake_session_clear(bob->s);
    events_publish(&fx->ev, EVENT_TASK_FINISHED, task_finished("build", "alice", "shared\n"));
    assert_string_equal(str_of(expect_event(bob->s, 0, "task.finished", 4), "tail"), "shared\n");
}

/* ---- chat ----------------------------------------------------------------------------- */

/* The i-th message to s is chat_reply `text` for event seq. */
static void expect_chat(const struct session *s, size_t i, const char *text, uint64_t seq)
{
    assert_true(i < sent_n(s));
    assert_string_equal(sent_type(s, i), "chat_reply");
    json_object *d = sent_data(s, i);
    assert_string_equal(str_of(d, "text"), text);
    assert_int_equal(int_of(d, "event"), seq);
    assert_int_equal(int_of(d, "part"), 1);
    assert_int_equal(int_of(d, "parts"), 1);
    assert_false(json_object_object_get_ex(sent_at(s, i), "id", NULL));
}

static void test_chat_notify(void **state)
{
    struct fx *fx = *state;
    struct client *phone = add_client(fx, 0, "alice", AUTH_SCOPE_READ);
    const char *t = events_chat_notify(phone, 1);
    assert_non_null(strstr(t, "Notifications on"));
    assert_int_equal(phone->chat_notify, 1);

    events_publish(&fx->ev, EVENT_GIT_CHANGED, payload_n(1)); /* not a chat kind */
    events_publish(&fx->ev, EVENT_TASK_STARTED, payload_n(2));
    assert_int_equal(sent_n(phone->s), 0);

    assert_int_equal(
        events_publish(&fx->ev, EVENT_TASK_FINISHED, task_finished("test", "alice", "ok 1\n")), 1);
    char *want = chat_format_task_end("test", 3, NULL, 1500, 0, 0, "ok 1\n", 0);
    assert_non_null(want);
    expect_chat(phone->s, 0, want, 3);
    free(want);

    assert_int_equal(
        events_publish(&fx->ev, EVENT_NOTIFY, parse("{\"title\":\"Build\",\"message\":\"done\"}")),
        1);
    expect_chat(phone->s, 1, "\xf0\x9f\x94\x94 Build: done", 4);
    events_publish(&fx->ev, EVENT_NOTIFY, parse("{\"message\":\"only a message\"}"));
    expect_chat(phone->s, 2, "\xf0\x9f\x94\x94 only a message", 5);

    /* With taskOutput own, another user's task comes without its output. */
    fx->st.task_output = TASK_OUTPUT_OWN;
    events_publish(&fx->ev, EVENT_TASK_FINISHED, task_finished("deploy", "bob", "bob's secret"));
    want = chat_format_task_end("deploy", 3, NULL, 1500, 0, 0, NULL, 0);
    expect_chat(phone->s, 3, want, 6);
    free(want);
    assert_null(strstr(str_of(sent_data(phone->s, 3), "text"), "bob's secret"));
    events_publish(&fx->ev, EVENT_TASK_FINISHED, task_finished("mine", "alice", "my output"));
    assert_non_null(strstr(str_of(sent_data(phone->s, 4), "text"), "my output"));

    /* A phone that also subscribed gets both, the event first. */
    phone->event_mask = EVENT_NOTIFY;
    fake_session_clear(phone->s);
    assert_int_equal(events_publish(&fx->ev, EVENT_NOTIFY, parse("{\"title\":\"x\"}")), 2);
    expect_event(phone->s, 0, "notify", 8);
    expect_chat(phone->s, 1, "\xf0\x9f\x94\x94 x", 8);

    /* Off. */
    t = events_chat_notify(phone, 0);
    assert_string_equal(t, "Notifications off.");
    phone->event_mask = 0;
    fake_session_clear(phone->s);
    assert_int_equal(events_publish(&fx->ev, EVENT_NOTIFY, parse("{\"title\":\"y\"}")), 0);
    assert_int_equal(sent_n(phone->s), 0);
}

/* ---- a slow subscriber ------------------------------------------------------------- */

static void test_slow_client_does_not_stop_others(void **state)
{
    struct fx *fx = *state;
    struct client *slow = add_client(fx, 0, "slow", AUTH_SCOPE_READ);
    struct client *b = add_client(fx, 1, "b", AUTH_SCOPE_READ);
    struct client *slow2 = add_client(fx, 2, "slow2", AUTH_SCOPE_READ);
    struct client *c = add_client(fx, 3, "c", AUTH_SCOPE_READ);
    for (int i = 0; i < 4; i++)
        fx->c[i].event_mask = EVENT_ALL;
    slow->s->fail = 1;
    slow2->s->too_large = 1000;
    for (int i = 1; i <= 3; i++)
        assert_int_equal(events_publish(&fx->ev, EVENT_GIT_CHANGED, payload_n(i)), 2);
    assert_int_equal(slow->s->attempts, 3);
    assert_int_equal(slow2->s->attempts, 3);
    for (int i = 0; i < 3; i++) {
        expect_event(b->s, (size_t)i, "git.changed", (uint64_t)i + 1);
        expect_event(c->s, (size_t)i, "git.changed", (uint64_t)i + 1);
    }

    /* A replay stops at the first refusal: the session is closing. */
    for (int i = 4; i <= 8; i++)
        events_publish(&fx->ev, EVENT_GIT_CHANGED, payload_n(i));
    struct client *late = add_client(fx, 4, "late", AUTH_SCOPE_READ);
    subscribe_ok(fx, late, "{\"events\":[\"git.changed\"]}");
    late->s->fail = 1;
    late->s->attempts = 0;
    subscribe(fx, late, "{\"events\":[\"git.changed\"],\"since\":0}", 1);
    assert_int_equal(late->s->attempts, 2); /* subscribed, then one event */
    assert_int_equal(sent_n(late->s), 1);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kind_names),
        T(test_ring_keeps_newest),
        T(test_resize_keeps_newest),
        T(test_subscribe_since_replays_missed),
        T(test_since_out_of_range_resyncs),
        T(test_subscribe_refusals),
        T(test_unsubscribe),
        T(test_only_authed_readers_receive),
        T(test_each_session_gets_its_own_copy),
        T(test_task_output_own),
        T(test_chat_notify),
        T(test_slow_client_does_not_stop_others),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
