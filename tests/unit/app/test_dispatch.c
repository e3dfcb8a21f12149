/*
 * app/dispatch.c: running a command for a client the way its kind says,
 * with the seams below the app layer stood in for in this program:
 * - sessions (fake_session.h) keep what is sent;
 * - the worker pool is a queue the test runs when it likes (run_next,
 *   then worker_pool_drain), and worker_git hands out a stand-in git
 *   module whose `run` counts its runs and answers a canned status;
 * - the editor port records requests and notifications, and the test
 *   answers a request when it likes;
 * - the git watcher (gitwatch_folder_for / gitwatch_status) is a switch.
 * All of worker.o's and of gitwatch_watch.o's entry points that the app
 * library needs are defined here, so neither is taken from the archives.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app/client.h"
#include "app/counters.h"
#include "app/dispatch.h"
#include "app/dispatch_impl.h"
#include "app/editor_port.h"
#include "app/gitwatch.h"
#include "core/auth.h"
#include "core/settings.h"
#include "workspace/chat.h"
#include "workspace/commands.h"
#include "workspace/git_ctx.h"
#include "workspace/worker.h"
#include "workspace/workspace.h"

#include "fake_session.h"

/* ---- the worker pool, stood in for -------------------------------------- */

struct worker_pool {
    struct worker_job *queue, *done;
    size_t queued;
    int refuse; /* submit returns -1 */
    int submits;
    void (*wake)(void *ud);
    void *wake_ud;
};

static struct worker_pool *the_pool;
static int pools_made, pools_freed;

struct worker_pool *worker_pool_new(int n_threads, size_t max_queued, void (*wake)(void *ud),
                                    void *wake_ud)
{
    struct worker_pool *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->wake = wake;
    p->wake_ud = wake_ud;
    the_pool = p;
    pools_made++;
    return p;
}

static void append(struct worker_job **head, struct worker_job *j)
{
    j->next = NULL;
    while (*head)
        head = &(*head)->next;
    *head = j;
}

int worker_pool_submit(struct worker_pool *p, struct worker_job *job)
{
    p->submits++;
    if (p->refuse)
        return -1;
    append(&p->queue, job);
    p->queued++;
    return 0;
}

void worker_pool_drain(struct worker_pool *p)
{
    struct worker_job *j = p->done;
    p->done = NULL;
    while (j) {
        struct worker_job *next = j->next;
        j->done(j, 0);
        j = next;
    }
}

size_t worker_pool_pending(struct worker_pool *p)
{
    return p->queued;
}

void worker_pool_free(struct worker_pool *p)
{
    if (!p)
        return;
    worker_pool_drain(p);
    struct worker_job *j = p->queue;
    p->queue = NULL;
    while (j) {
        struct worker_job *next = j->next;
        j->done(j, 1);
        j = next;
    }
    if (the_pool == p)
        the_pool = NULL;
    pools_freed++;
    free(p);
}

/* Runs the oldest queued job "on a worker thread" (here, now) and puts it
 * on the done list; the loop's drain then answers. */
static void run_next(struct worker_pool *p)
{
    struct worker_job *j = p->queue;
    assert_non_null(j);
    p->queue = j->next;
    p->queued--;
    struct worker_thread t = {.git = NULL, .pool = p};
    j->run(&t, j);
    append(&p->done, j);
    p->wake(p->wake_ud);
}

/* ---- the git module, stood in for ------------------------------------------ */

struct git_ctx {
    int unused;
};

static struct git_ctx the_git;
static int git_runs;
static int git_unavailable;            /* worker_git fails */
static const char *git_fail_code;      /* run answers this error */
static char git_last_name[32];         /* of the last run */
static char git_last_args[256];        /* its args as JSON */
static char git_last_folder[PATH_MAX]; /* its first folder's path */

static enum cmd_status fake_git_run(struct git_ctx *g, const char *name,
                                    const struct workspace_folder *folders, size_t n_folders,
                                    json_object *args, struct cmd_result *res)
{
    git_runs++;
    snprintf(git_last_name, sizeof(git_last_name), "%s", name);
    snprintf(git_last_args, sizeof(git_last_args), "%s",
             args ? json_object_to_json_string_ext(args, JSON_C_TO_STRING_PLAIN) : "null");
    snprintf(git_last_folder, sizeof(git_last_folder), "%s", n_folders ? folders[0].path : "");
    if (git_fail_code)
        return cmd_fail(res, git_fail_code, "canned failure");
    json_object *r = json_object_new_object();
    json_object_object_add(r, "branch", json_object_new_string("main"));
    json_object_object_add(r, "ahead", json_object_new_int(0));
    json_object_object_add(r, "behind", json_object_new_int(0));
    json_object *unstaged = json_object_new_array();
    json_object *e = json_object_new_object();
    json_object_object_add(e, "path", json_object_new_string("src/a.c"));
    json_object_object_add(e, "status", json_object_new_string("M"));
    json_object_array_add(unstaged, e);
    json_object_object_add(r, "staged", json_object_new_array());
    json_object_object_add(r, "unstaged", unstaged);
    json_object_object_add(r, "untracked", json_object_new_array());
    json_object_object_add(r, "conflicted", json_object_new_array());
    json_object_object_add(r, "run", json_object_new_int(git_runs));
    res->result = r;
    return CMD_OK;
}

static const struct git_ctx_api fake_git_api = {.run = fake_git_run};

struct git_ctx *worker_git(struct worker_thread *t, const struct git_ctx_api **api, char *err,
                           size_t errlen)
{
    if (git_unavailable) {
        snprintf(err, errlen, "the git module cannot be loaded");
        return NULL;
    }
    *api = &fake_git_api;
    return &the_git;
}

/* ---- the git watcher, stood in for ------------------------------------------- */

struct gitwatch {
    int folder; /* what gitwatch_folder_for answers */
    int refuse; /* gitwatch_status returns -1 */
    int asked;
    gitwatch_status_cb cb;
    void *ud;
};

static int folder_for_calls;

int gitwatch_folder_for(const struct gitwatch *gw, json_object *args)
{
    folder_for_calls++;
    return gw->folder;
}

int gitwatch_status(struct gitwatch *gw, size_t i, gitwatch_status_cb cb, void *ud)
{
    gw->asked++;
    if (gw->refuse)
        return -1;
    gw->cb = cb;
    gw->ud = ud;
    return 0;
}

/* ---- the editor, stood in for ---------------------------------------------------- */

#define MAX_REQ 8

struct fake_editor {
    int attached;
    int refuse;         /* request returns -1 */
    json_object *notes; /* [{method, params}] */
    struct {
        char method[64];
        json_object *params;
        int64_t timeout_ms, id;
        editor_answer_fn answer;
        void *ud;
        int forgotten, answered;
    } req[MAX_REQ];
    int n_req;
};

static int ed_attached(void *ud)
{
    return ((struct fake_editor *)ud)->attached;
}

static void ed_notify(void *ud, const char *method, json_object *params)
{
    struct fake_editor *e = ud;
    json_object *n = json_object_new_object();
    json_object_object_add(n, "method", json_object_new_string(method));
    json_object_object_add(n, "params", params);
    json_object_array_add(e->notes, n);
}

static int64_t ed_request(void *ud, const char *method, json_object *params, int64_t timeout_ms,
                          editor_answer_fn answer, void *answer_ud)
{
    struct fake_editor *e = ud;
    if (e->refuse || e->n_req == MAX_REQ) {
        json_object_put(params);
        return -1;
    }
    int i = e->n_req++;
    snprintf(e->req[i].method, sizeof(e->req[i].method), "%s", method);
    e->req[i].params = params;
    e->req[i].timeout_ms = timeout_ms;
    e->req[i].id = 100 + i;
    e->req[i].answer = answer;
    e->req[i].ud = answer_ud;
    return e->req[i].id;
}

static void ed_forget(void *ud, int64_t id)
{
    struct fake_editor *e = ud;
    for (int i = 0; i < e->n_req; i++)
        if (e->req[i].id == id)
            e->req[i].forgotten++;
}

/* The editor answers request i. */
static void ed_answer(struct fake_editor *e, int i, enum editor_outcome o, json_object *result,
                      const char *message)
{
    assert_true(i < e->n_req);
    assert_int_equal(e->req[i].forgotten, 0);
    assert_int_equal(e->req[i].answered, 0);
    e->req[i].answered = 1;
    e->req[i].answer(e->req[i].ud, o, result, message);
}

/* ---- fixture ------------------------------------------------------------------------ */

struct fx {
    char tmpl[64];
    struct workspace ws;
    struct settings st;
    struct app_counters counters;
    struct fake_editor ed;
    struct editor_port port;
    struct dispatch *d;
    int wakes;
    struct client *c[3];
    struct gitwatch gw;
};

static void wake(void *ud)
{
    ((struct fx *)ud)->wakes++;
}

static struct client *new_client(const char *session, const char *user, unsigned scopes)
{
    struct client *c = calloc(1, sizeof(*c));
    struct session *s = calloc(1, sizeof(*s));
    assert_non_null(c);
    assert_non_null(s);
    fake_session_init(s, session);
    c->s = s;
    c->authed = 1;
    c->user_id = strdup(user);
    c->scopes = scopes;
    return c;
}

/* As the data plane does when a session closes: gone, detached, freed. */
static void client_free(struct fx *fx, struct client *c)
{
    if (!c)
        return;
    c->gone = 1;
    dispatch_client_gone(fx->d, c);
    assert_null(c->calls);
    fake_session_free(c->s);
    free(c->s);
    free(c->user_id);
    /* Scribbled before it goes, so that a dangling pointer to it shows
     * (a NULL session) even without AddressSanitizer. */
    memset(c, 0, sizeof(*c));
    free(c);
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char p[PATH_MAX * 2];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(p);
}

static int setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    snprintf(fx->tmpl, sizeof(fx->tmpl), "/tmp/companion-dispatch-XXXXXX");
    assert_non_null(mkdtemp(fx->tmpl));
    write_file(fx->tmpl, "hello.txt", "hello dispatch\n");
    write_file(fx->tmpl, "b.txt", "b");
    workspace_init(&fx->ws);
    char err[256];
    assert_int_equal(workspace_open_dir(&fx->ws, fx->tmpl, err, sizeof(err)), 0);
    settings_init(&fx->st);
    fx->ed.notes = json_object_new_array();
    fx->port = (struct editor_port){.ud = &fx->ed,
                                    .attached = ed_attached,
                                    .notify = ed_notify,
                                    .request = ed_request,
                                    .forget = ed_forget};
    struct dispatch_env env = {.st = &fx->st,
                               .ws = &fx->ws,
                               .counters = &fx->counters,
                               .editor = &fx->port,
                               .wake = wake,
                               .wake_ud = fx};
    git_runs = 0;
    git_unavailable = 0;
    git_fail_code = NULL;
    pools_made = pools_freed = 0;
    fx->d = dispatch_new(&env, err, sizeof(err));
    assert_non_null(fx->d);
    assert_int_equal(pools_made, 1);
    assert_ptr_equal(dispatch_pool(fx->d), the_pool);
    fx->c[0] = new_client("sess-a", "alice", AUTH_SCOPE_ALL);
    fx->c[1] = new_client("sess-b", "bob", AUTH_SCOPE_ALL);
    fx->c[2] = new_client("sess-c", "carol", AUTH_SCOPE_ALL);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    for (int i = 0; i < 3; i++)
        client_free(fx, fx->c[i]);
    /* Nothing coalescable may be left behind once every job has ended. */
    if (the_pool && !the_pool->queue && !the_pool->done && fx->d->inflight) {
        print_error("a finished job is still listed as in flight\n");
        return -1;
    }
    dispatch_free(fx->d);
    assert_int_equal(pools_freed, 1);
    for (int i = 0; i < fx->ed.n_req; i++)
        json_object_put(fx->ed.req[i].params);
    json_object_put(fx->ed.notes);
    settings_free(&fx->st);
    workspace_free(&fx->ws);
    nftw(fx->tmpl, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(fx);
    return 0;
}

/* ---- helpers ------------------------------------------------------------------------ */

static json_object *parse(const char *text)
{
    json_object *o = json_tokener_parse(text);
    if (!o)
        fail_msg("bad test JSON: %s", text);
    return o;
}

/* dispatch_command for c with id `id` and args parsed from text. */
static void run_cmd(struct fx *fx, struct client *c, const char *name, const char *id,
                    const char *args, const char *chat_word)
{
    const struct cmd_def *def = cmd_lookup(name);
    assert_non_null(def);
    json_object *jid = json_object_new_string(id);
    json_object *a = args ? parse(args) : NULL;
    dispatch_command(fx->d, c, def, jid, a, chat_word);
    /* The dispatcher keeps what it needs: the caller's objects go now. */
    json_object_put(a);
    json_object_put(jid);
    assert_null(c->chat_word);
}

static const char *str_of(json_object *o, const char *k)
{
    json_object *v;
    if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_string))
        fail_msg("no string %s in %s", k, json_object_to_json_string(o));
    return json_object_get_string(v);
}

static int64_t int_of(json_object *o, const char *k)
{
    json_object *v;
    if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_int))
        fail_msg("no integer %s in %s", k, json_object_to_json_string(o));
    return json_object_get_int64(v);
}

static int bool_of(json_object *o, const char *k)
{
    json_object *v;
    if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_boolean))
        fail_msg("no boolean %s in %s", k, json_object_to_json_string(o));
    return json_object_get_boolean(v);
}

/* The i-th message to c is a command_response for `id`: its data. */
static json_object *response(const struct client *c, size_t i, const char *id)
{
    const struct session *s = c->s;
    if (i >= sent_n(s))
        fail_msg("%s: no message %zu (%zu sent)", s->id, i, sent_n(s));
    if (strcmp(sent_type(s, i), "command_response") != 0)
        fail_msg("%s: message %zu: %s", s->id, i, json_object_to_json_string(sent_at(s, i)));
    json_object *jid;
    assert_true(json_object_object_get_ex(sent_at(s, i), "id", &jid));
    assert_string_equal(json_object_get_string(jid), id);
    return sent_data(s, i);
}

/* ... a success: its result. */
static json_object *expect_ok(const struct client *c, size_t i, const char *id)
{
    json_object *d = response(c, i, id), *v, *r;
    assert_true(json_object_object_get_ex(d, "success", &v));
    if (!json_object_get_boolean(v))
        fail_msg("%s: %s failed: %s", c->s->id, id, json_object_to_json_string(d));
    assert_true(json_object_object_get_ex(d, "result", &r));
    return r;
}

/* ... an error with `code`: its message. */
static const char *expect_err(const struct client *c, size_t i, const char *id, const char *code)
{
    json_object *d = response(c, i, id), *v, *e;
    assert_true(json_object_object_get_ex(d, "success", &v));
    if (json_object_get_boolean(v))
        fail_msg("%s: %s succeeded, expected %s", c->s->id, id, code);
    assert_true(json_object_object_get_ex(d, "error", &e));
    if (strcmp(str_of(e, "code"), code) != 0)
        fail_msg("%s: %s: %s, expected %s", c->s->id, id, json_object_to_json_string(e), code);
    assert_false(json_object_object_get_ex(d, "result", NULL));
    return str_of(e, "message");
}

/* Runs every queued job and drains. */
static void run_all(struct fx *fx)
{
    while (the_pool->queue)
        run_next(the_pool);
    worker_pool_drain(the_pool);
}

/* ---- worker jobs -------------------------------------------------------------------- */

static void test_identical_calls_coalesce(void **state)
{
    struct fx *fx = *state;
    struct client *a = fx->c[0], *b = fx->c[1];
    run_cmd(fx, a, "git.status", "a1", NULL, NULL);
    run_cmd(fx, b, "git.status", "b1", "{}", NULL); /* {} and no args are the same call */
    run_cmd(fx, a, "git.status", "a2", NULL, NULL);
    assert_int_equal(the_pool->queued, 1);
    assert_int_equal(the_pool->submits, 1);
    assert_int_equal(sent_n(a->s) + sent_n(b->s), 0); /* nothing before the run */
    assert_non_null(a->calls);

    run_next(the_pool);
    assert_int_equal(fx->wakes, 1);
    assert_int_equal(sent_n(a->s), 0); /* answers go out from the loop's drain */
    dispatch_drain(fx->d);
    assert_int_equal(git_runs, 1);
    assert_string_equal(git_last_name, "git.status");
    assert_string_equal(git_last_folder, fx->ws.folders[0].path);
    /* Every caller gets the one run's answer, each with its own id. */
    assert_int_equal(sent_n(a->s), 2);
    assert_int_equal(sent_n(b->s), 1);
    json_object *ids[2];
    for (int i = 0; i < 2; i++) {
        json_object *jid;
        assert_true(json_object_object_get_ex(sent_at(a->s, (size_t)i), "id", &jid));
        ids[i] = jid;
        assert_int_equal(int_of(expect_ok(a, (size_t)i, json_object_get_string(jid)), "run"), 1);
    }
    assert_string_not_equal(json_object_get_string(ids[0]), json_object_get_string(ids[1]));
    json_object *r = expect_ok(b, 0, "b1");
    assert_string_equal(str_of(r, "branch"), "main");
    assert_int_equal(int_of(r, "run"), 1);
    assert_null(a->calls);
    assert_null(b->calls);
    assert_null(fx->d->inflight);

    /* A call after the run is a new run. */
    run_cmd(fx, b, "git.status", "b2", NULL, NULL);
    assert_int_equal(the_pool->queued, 1);
    run_all(fx);
    assert_int_equal(int_of(expect_ok(b, 1, "b2"), "run"), 2);
}

static void test_different_calls_do_not_coalesce(void **state)
{
    struct fx *fx = *state;
    struct client *a = fx->c[0], *b = fx->c[1];
    run_cmd(fx, a, "git.status", "a1", "{\"folder\":\"x\"}", NULL);
    run_cmd(fx, b, "git.status", "b1", "{\"folder\":\"y\"}", NULL);
    run_cmd(fx, b, "git.status", "b2", NULL, NULL);
    assert_int_equal(the_pool->queued, 3);
    /* Commands that do not coalesce never share, even when identical. */
    run_cmd(fx, a, "git.log", "a2", "{\"limit\":5}", NULL);
    run_cmd(fx, b, "git.log", "b3", "{\"limit\":5}", NULL);
    assert_int_equal(the_pool->queued, 5);

    run_next(the_pool);
    assert_string_equal(git_last_args, "{\"folder\":\"x\"}");

    /* The worker has its own copies of the arguments and the folders:
     * what the loop changes later is not seen. */
    const struct cmd_def *def = cmd_lookup("git.diff");
    json_object *args = parse("{\"path\":\"a.c\"}");
    json_object *jid = json_object_new_string("a3");
    dispatch_command(fx->d, a, def, jid, args, NULL);
    json_object_object_add(args, "path", json_object_new_string("changed.c"));
    json_object_put(args);
    json_object_put(jid);
    char *path = fx->ws.folders[0].path;
    fx->ws.folders[0].path = "/elsewhere";
    while (the_pool->queue)
        run_next(the_pool);
    fx->ws.folders[0].path = path;
    assert_string_equal(git_last_name, "git.diff");
    assert_string_equal(git_last_args, "{\"path\":\"a.c\"}");
    assert_string_equal(git_last_folder, path);
    assert_int_equal(git_runs, 6);
    worker_pool_drain(the_pool);
    assert_int_equal(int_of(expect_ok(a, 0, "a1"), "run"), 1);
    assert_int_equal(int_of(expect_ok(b, 0, "b1"), "run"), 2);
    assert_int_equal(int_of(expect_ok(b, 1, "b2"), "run"), 3);
    assert_int_equal(int_of(expect_ok(a, 1, "a2"), "run"), 4);
    assert_int_equal(int_of(expect_ok(b, 2, "b3"), "run"), 5);
    assert_int_equal(int_of(expect_ok(a, 2, "a3"), "run"), 6);
}

static void test_submit_failure_is_busy(void **state)
{
    struct fx *fx = *state;
    struct client *a = fx->c[0];
    the_pool->refuse = 1;
    run_cmd(fx, a, "git.status", "a1", NULL, NULL);
    run_cmd(fx, a, "fs.list", "a2", NULL, NULL);
    assert_non_null(strstr(expect_err(a, 0, "a1", "BUSY"), "try again"));
    expect_err(a, 1, "a2", "BUSY");
    assert_int_equal(fx->counters.command_errors, 2);
    assert_null(a->calls);
    assert_null(fx->d->inflight); /* a refused job is not joined by later calls */

    the_pool->refuse = 0;
    run_cmd(fx, a, "git.status", "a3", NULL, NULL);
    assert_int_equal(the_pool->queued, 1);
    run_all(fx);
    expect_ok(a, 2, "a3");
    assert_int_equal(git_runs, 1);
}

static void test_client_gone_before_the_job_ends(void **state)
{
    struct fx *fx = *state;
    struct client *a = fx->c[0], *b = fx->c[1], *c = fx->c[2];
    fx->ed.attached = 1;
    run_cmd(fx, a, "git.status", "a1", NULL, NULL);
    run_cmd(fx, b, "git.status", "b1", NULL, NULL);
    run_cmd(fx, a, "fs.read", "a2", "{\"path\":\"hello.txt\"}", NULL);
    run_cmd(fx, c, "fs.read", "c1", "{\"path\":\"hello.txt\"}", NULL);
    assert_int_equal(the_pool->queued, 3);
    /* a goes, and its memory with it, before any job has run. */
    client_free(fx, a);
    fx->c[0] = NULL;
    run_next(the_pool);
    /* b's run is done; c's not yet; a goes nowhere. */
    dispatch_drain(fx->d);
    expect_ok(b, 0, "b1");
    assert_int_equal(sent_n(c->s), 0);
    run_all(fx);
    json_object *r = expect_ok(c, 0, "c1");
    assert_string_equal(str_of(r, "content"), "hello dispatch\n");
    assert_int_equal(sent_n(b->s), 1);
    assert_int_equal(sent_n(c->s), 1);
    /* Only the answered calls were audited. */
    assert_int_equal(json_object_array_length(fx->ed.notes), 2);
    assert_null(fx->d->inflight);

    /* Gone while its job is the only one: the job still ends cleanly. */
    run_cmd(fx, b, "git.status", "b2", NULL, NULL);
    client_free(fx, b);
    fx->c[1] = NULL;
    run_all(fx);
    assert_null(fx->d->inflight);
    assert_int_equal(json_object_array_length(fx->ed.notes), 2);
}

static void test_fs_through_a_worker(void **state)
{
    struct fx *fx = *state;
    struct client *a = fx->c[0];
    run_cmd(fx, a, "fs.list", "l1", NULL, NULL);
    run_cmd(fx, a, "fs.read", "r1", "{\"path\":\"b.txt\"}", NULL);
    run_cmd(fx, a, "fs.read", "r2", "{\"path\":\"../etc/passwd\"}", NULL);
    run_cmd(fx, a, "fs.read", "r3", "{\"path\":\"nothere\"}", NULL);
    assert_int_equal(the_pool->queued, 4);
    assert_int_equal(sent_n(a->s), 0);
    /* The folder changes after the call: the worker sees the disk as it
     * is when it runs. */
    write_file(fx->tmpl, "late.txt", "late");
    run_all(fx);
    json_object *r = expect_ok(a, 0, "l1"), *entries;
    assert_string_equal(str_of(r, "path"), ".");
    assert_true(json_object_object_get_ex(r, "entries", &entries));
    assert_int_equal(json_object_array_length(entries), 3);
    assert_string_equal(str_of(json_object_array_get_idx(entries, 0), "name"), "b.txt");
    assert_string_equal(str_of(json_object_array_get_idx(entries, 1), "name"), "hello.txt");
    assert_string_equal(str_of(json_object_array_get_idx(entries, 2), "name"), "late.txt");
    r = expect_ok(a, 1, "r1");
    assert_string_equal(str_of(r, "content"), "b");
    expect_err(a, 2, "r2", "FORBIDDEN");
    expect_err(a, 3, "r3", "NOT_FOUND");
    assert_int_equal(fx->counters.command_errors, 2);
    assert_int_equal(git_runs, 0);
}

static void test_git_module_unavailable(void **state)
{
    struct fx *fx = *state;
    git_unavailable = 1;
    run_cmd(fx, fx->c[0], "git.status", "g1", NULL, NULL);
    run_all(fx);
    assert_non_null(strstr(expect_err(fx->c[0], 0, "g1", "PROCESSING_ERROR"), "cannot be loaded"));
    git_unavailable = 0;
    git_fail_code = "NOT_A_REPOSITORY";
    run_cmd(fx, fx->c[0], "git.status", "g2", NULL, NULL);
    run_cmd(fx, fx->c[1], "git.status", "g3", NULL, NULL);
    run_all(fx);
    assert_string_equal(expect_err(fx->c[0], 1, "g2", "NOT_A_REPOSITORY"), "canned failure");
    expect_err(fx->c[1], 0, "g3", "NOT_A_REPOSITORY");
}

static void test_free_with_jobs_queued(void **state)
{
    struct fx *fx = *state;
    run_cmd(fx, fx->c[0], "git.status", "a1", NULL, NULL);
    run_cmd(fx, fx->c[1], "git.status", "b1", NULL, NULL);
    run_cmd(fx, fx->c[1], "fs.list", "b2", NULL, NULL);
    run_next(the_pool); /* done, not drained */
    dispatch_free(fx->d);
    expect_ok(fx->c[0], 0, "a1");
    expect_ok(fx->c[1], 0, "b1");
    assert_non_null(strstr(expect_err(fx->c[1], 1, "b2", "PROCESSING_ERROR"), "stopping"));
    /* A fresh dispatcher for the teardown. */
    char err[128];
    struct dispatch_env env2 = {.st = &fx->st,
                                .ws = &fx->ws,
                                .counters = &fx->counters,
                                .editor = &fx->port,
                                .wake = wake,
                                .wake_ud = fx};
    pools_freed = 0;
    fx->d = dispatch_new(&env2, err, sizeof(err));
    assert_non_null(fx->d);
}

/* ---- the watched git.status ------------------------------------------------------ */

static void test_watched_status(void **state)
{
    struct fx *fx = *state;
    struct client *a = fx->c[0], *b = fx->c[1];
    fx->gw.folder = 0;
    dispatch_set_gitwatch(fx->d, &fx->gw);
    run_cmd(fx, a, "git.status", "w1", NULL, NULL);
    assert_int_equal(fx->gw.asked, 1);
    assert_int_equal(the_pool->queued, 0); /* the watcher's cache answers */
    assert_int_equal(sent_n(a->s), 0);
    json_object *cached = parse("{\"branch\":\"cached\"}");
    struct cmd_result res = {.result = cached};
    fx->gw.cb(fx->gw.ud, CMD_OK, &res);
    json_object_put(cached); /* borrowed by the callback */
    assert_string_equal(str_of(expect_ok(a, 0, "w1"), "branch"), "cached");
    assert_null(a->calls);

    run_cmd(fx, a, "git.status", "w2", NULL, NULL);
    struct cmd_result bad = {0};
    cmd_fail(&bad, "NOT_A_REPOSITORY", "no repo");
    fx->gw.cb(fx->gw.ud, CMD_ERROR, &bad);
    expect_err(a, 1, "w2", "NOT_A_REPOSITORY");

    /* The watcher cannot queue a run: BUSY. */
    fx->gw.refuse = 1;
    run_cmd(fx, b, "git.status", "w3", NULL, NULL);
    expect_err(b, 0, "w3", "BUSY");
    assert_null(b->calls);
    /* Not a watched folder: a job of its own. Other git commands never ask. */
    fx->gw.folder = -1;
    fx->gw.refuse = 0;
    int asked = fx->gw.asked, calls = folder_for_calls;
    run_cmd(fx, b, "git.status", "w4", "{\"folder\":\"elsewhere\"}", NULL);
    assert_int_equal(folder_for_calls, calls + 1);
    run_cmd(fx, b, "git.log", "w5", NULL, NULL);
    assert_int_equal(folder_for_calls, calls + 1);
    assert_int_equal(fx->gw.asked, asked);
    assert_int_equal(the_pool->queued, 2);
    run_all(fx);
    expect_ok(b, 1, "w4");
    expect_ok(b, 2, "w5");

    /* Gone while the watcher works: the answer goes nowhere. */
    fx->gw.folder = 0;
    run_cmd(fx, a, "git.status", "w6", NULL, NULL);
    size_t before = sent_n(a->s);
    a->gone = 1;
    dispatch_client_gone(fx->d, a);
    cached = parse("{\"branch\":\"late\"}");
    res.result = cached;
    fx->gw.cb(fx->gw.ud, CMD_OK, &res);
    json_object_put(cached);
    assert_int_equal(sent_n(a->s), before);
    a->gone = 0;
    dispatch_set_gitwatch(fx->d, NULL);
}

/* ---- synchronous commands --------------------------------------------------------- */

static void test_sync_command(void **state)
{
    struct fx *fx = *state;
    struct client *a = fx->c[0];
    run_cmd(fx, a, "workspace.info", "i1", NULL, NULL);
    assert_int_equal(the_pool->submits, 0);
    json_object *r = expect_ok(a, 0, "i1"), *folders;
    assert_string_equal(str_of(r, "workspaceId"), fx->ws.id);
    assert_string_equal(str_of(r, "version"), COMPANION_VERSION);
    assert_true(json_object_object_get_ex(r, "folders", &folders));
    assert_int_equal(json_object_array_length(folders), 1);
    assert_string_equal(str_of(json_object_array_get_idx(folders, 0), "path"),
                        fx->ws.folders[0].path);
    assert_null(a->calls);

    run_cmd(fx, a, "workspace.info", "i2", "[1]", NULL);
    expect_err(a, 1, "i2", "INVALID_ARGS");
    assert_int_equal(fx->counters.command_errors, 1);

    /* An answer too large for the client's queue. */
    a->s->too_large = 1;
    run_cmd(fx, a, "workspace.info", "i3", NULL, NULL);
    assert_non_null(strstr(expect_err(a, 2, "i3", "RESULT_TOO_LARGE"), "maxQueuedBytes"));
}

/* ---- editor commands ------------------------------------------------------------- */

static void test_editor_unavailable(void **state)
{
    struct fx *fx = *state;
    struct client *a = fx->c[0];
    fx->ed.attached = 0;
    run_cmd(fx, a, "editor.open", "e1", "{\"path\":\"hello.txt\"}", NULL);
    run_cmd(fx, a, "editor.message", "e2", "{\"text\":\"hi\"}", NULL);
    expect_err(a, 0, "e1", "EDITOR_UNAVAILABLE");
    expect_err(a, 1, "e2", "EDITOR_UNAVAILABLE");
    assert_int_equal(fx->ed.n_req, 0);
    assert_null(a->calls);
    assert_int_equal(json_object_array_length(fx->ed.notes), 0); /* no editor, no audit */

    /* Attached, but the request cannot be sent. */
    fx->ed.attached = 1;
    fx->ed.refuse = 1;
    run_cmd(fx, a, "editor.message", "e3", "{\"text\":\"hi\"}", NULL);
    assert_non_null(strstr(expect_err(a, 2, "e3", "EDITOR_UNAVAILABLE"), "cannot reach"));
    assert_null(a->calls);
}

static void test_editor_answers(void **state)
{
    struct fx *fx = *state;
    struct client *a = fx->c[0];
    fx->ed.attached = 1;
    run_cmd(fx, a, "editor.open", "e1", "{\"path\":\"hello.txt\",\"line\":3}", NULL);
    assert_int_equal(fx->ed.n_req, 1);
    assert_string_equal(fx->ed.req[0].method, "editor/open");
    assert_true(fx->ed.req[0].timeout_ms > 0);
    char want[PATH_MAX * 2];
    snprintf(want, sizeof(want), "%s/hello.txt", fx->ws.folders[0].path);
    assert_string_equal(str_of(fx->ed.req[0].params, "path"), want);
    assert_int_equal(int_of(fx->ed.req[0].params, "line"), 3);
    assert_int_equal(sent_n(a->s), 0);
    assert_non_null(a->calls);
    json_object *answer = parse("{\"ok\":1}");
    ed_answer(&fx->ed, 0, EDITOR_ANSWERED, answer, NULL);
    json_object_put(answer);
    assert_true(bool_of(expect_ok(a, 0, "e1"), "opened"));
    assert_null(a->calls);

    /* editor.diagnostics: the editor's answer is shaped by editor_cmd_result. */
    run_cmd(fx, a, "editor.diagnostics", "e2", NULL, NULL);
    assert_string_equal(fx->ed.req[1].method, "editor/diagnostics");
    char diag[PATH_MAX * 4];
    snprintf(diag, sizeof(diag),
             "{\"diagnostics\":[{\"path\":\"%s/sub/../hello.txt\",\"line\":2,\"message\":\"m\"},"
             "{\"path\":\"/etc/passwd\",\"line\":1}]}",
             fx->ws.folders[0].path);
    answer = parse(diag);
    ed_answer(&fx->ed, 1, EDITOR_ANSWERED, answer, NULL);
    json_object_put(answer);
    json_object *r = expect_ok(a, 1, "e2"), *list;
    assert_true(json_object_object_get_ex(r, "diagnostics", &list));
    assert_int_equal(json_object_array_length(list), 1);
    assert_string_equal(str_of(json_object_array_get_idx(list, 0), "path"), "hello.txt");

    /* editor.command: the editor's result, as it is. */
    run_cmd(fx, a, "editor.command", "e3", "{\"command\":\"workbench.action.files.saveAll\"}",
            NULL);
    assert_string_equal(fx->ed.req[2].method, "editor/executeCommand");
    answer = parse("[1,2]");
    ed_answer(&fx->ed, 2, EDITOR_ANSWERED, answer, NULL);
    json_object_put(answer);
    r = expect_ok(a, 2, "e3");
    json_object *v;
    assert_true(json_object_object_get_ex(r, "result", &v));
    assert_string_equal(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN), "[1,2]");

    /* Failures and timeouts. */
    run_cmd(fx, a, "editor.message", "e4", "{\"text\":\"hi\"}", NULL);
    ed_answer(&fx->ed, 3, EDITOR_FAILED, NULL, "no window \xff");
    const char *m = expect_err(a, 3, "e4", "PROCESSING_ERROR");
    assert_non_null(strstr(m, "the editor could not do it: no window"));
    assert_non_null(strstr(m, "\xef\xbf\xbd")); /* repaired */
    run_cmd(fx, a, "editor.message", "e5", "{\"text\":\"hi\"}", NULL);
    ed_answer(&fx->ed, 4, EDITOR_TIMED_OUT, NULL, NULL);
    expect_err(a, 4, "e5", "EDITOR_UNAVAILABLE");

    /* Bad arguments never reach the editor. */
    run_cmd(fx, a, "editor.open", "e6", "{\"path\":\"../x\"}", NULL);
    run_cmd(fx, a, "editor.command", "e7", "{\"command\":\"rm.everything\"}", NULL);
    expect_err(a, 5, "e6", "FORBIDDEN");
    expect_err(a, 6, "e7", "FORBIDDEN");
    assert_int_equal(fx->ed.n_req, 5);
    assert_null(a->calls);
}

static void test_editor_request_of_a_client_gone(void **state)
{
    struct fx *fx = *state;
    struct client *a = fx->c[0];
    fx->ed.attached = 1;
    run_cmd(fx, a, "editor.message", "e1", "{\"text\":\"one\"}", NULL);
    run_cmd(fx, a, "editor.message", "e2", "{\"text\":\"two\"}", NULL);
    assert_int_equal(fx->ed.n_req, 2);
    client_free(fx, a);
    fx->c[0] = NULL;
    /* Both requests are forgotten: their answers will never be delivered. */
    assert_int_equal(fx->ed.req[0].forgotten, 1);
    assert_int_equal(fx->ed.req[1].forgotten, 1);
    assert_int_equal(json_object_array_length(fx->ed.notes), 0);
}

/* ---- chat ------------------------------------------------------------------------------ */

static void test_chat_word_answers_in_text(void **state)
{
    struct fx *fx = *state;
    struct client *a = fx->c[0], *b = fx->c[1];
    run_cmd(fx, a, "git.status", "c1", NULL, "status");
    run_cmd(fx, b, "git.status", "c2", NULL, NULL); /* shares the run, answered in JSON */
    assert_int_equal(the_pool->queued, 1);
    run_all(fx);
    assert_int_equal(sent_n(a->s), 1);
    assert_string_equal(sent_type(a->s, 0), "chat_reply");
    json_object *d = sent_data(a->s, 0), *jid;
    assert_true(json_object_object_get_ex(sent_at(a->s, 0), "id", &jid));
    assert_string_equal(json_object_get_string(jid), "c1");
    assert_int_equal(int_of(d, "part"), 1);
    assert_int_equal(int_of(d, "parts"), 1);
    assert_false(json_object_object_get_ex(d, "event", NULL));
    /* The text is the chat format of the run's result. */
    json_object *result = expect_ok(b, 0, "c2");
    char *want = chat_format_result("status", "git.status", result);
    assert_string_equal(str_of(d, "text"), want);
    assert_non_null(strstr(want, "main"));
    free(want);

    /* Errors too. */
    git_fail_code = "NOT_A_REPOSITORY";
    run_cmd(fx, a, "git.status", "c3", NULL, "status");
    run_all(fx);
    assert_string_equal(sent_type(a->s, 1), "chat_reply");
    want = chat_format_error("status", "NOT_A_REPOSITORY", "canned failure");
    assert_string_equal(str_of(sent_data(a->s, 1), "text"), want);
    free(want);
    assert_int_equal(fx->counters.command_errors, 1);

    /* Synchronous and editor commands as well. */
    fx->ed.attached = 0;
    run_cmd(fx, a, "editor.open", "c4", "{\"path\":\"hello.txt\"}", "open");
    assert_string_equal(sent_type(a->s, 2), "chat_reply");
    want = chat_format_error("open", "EDITOR_UNAVAILABLE", "no editor is attached to this helper");
    assert_string_equal(str_of(sent_data(a->s, 2), "text"), want);
    free(want);
    run_cmd(fx, a, "workspace.info", "c5", NULL, "info");
    assert_string_equal(sent_type(a->s, 3), "chat_reply");
    /* The word was for that message only. */
    run_cmd(fx, a, "workspace.info", "c6", NULL, NULL);
    expect_ok(a, 4, "c6");
}

/* ---- the audit trail -------------------------------------------------------------------- */

static void test_audit_goes_to_the_editor(void **state)
{
    struct fx *fx = *state;
    struct client *a = fx->c[0];
    /* No editor: nothing. */
    run_cmd(fx, a, "workspace.info", "x1", NULL, NULL);
    assert_int_equal(json_object_array_length(fx->ed.notes), 0);

    fx->ed.attached = 1;
    run_cmd(fx, a, "workspace.info", "x2", NULL, NULL);
    run_cmd(fx, a, "fs.read", "x3", "{\"path\":\"nothere\"}", NULL);
    assert_int_equal(json_object_array_length(fx->ed.notes), 1); /* the job has not run */
    run_all(fx);
    run_cmd(fx, a, "editor.message", "x4", "{\"text\":\"hi\"}", NULL);
    assert_int_equal(json_object_array_length(fx->ed.notes), 2); /* nor has the editor answered */
    ed_answer(&fx->ed, 0, EDITOR_ANSWERED, NULL, NULL);
    assert_int_equal(json_object_array_length(fx->ed.notes), 3);

    const struct {
        const char *name;
        int ok;
    } want[] = {{"workspace.info", 1}, {"fs.read", 0}, {"editor.message", 1}};
    for (size_t i = 0; i < 3; i++) {
        json_object *n = json_object_array_get_idx(fx->ed.notes, i), *p, *v;
        assert_string_equal(str_of(n, "method"), "companion/commandExecuted");
        assert_true(json_object_object_get_ex(n, "params", &p));
        assert_string_equal(str_of(p, "sessionId"), "sess-a");
        assert_string_equal(str_of(p, "userId"), "alice");
        assert_string_equal(str_of(p, "name"), want[i].name);
        assert_true(json_object_object_get_ex(p, "success", &v));
        assert_int_equal(json_object_get_boolean(v), want[i].ok);
        assert_true(int_of(p, "durationMs") >= 0);
    }
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_identical_calls_coalesce),
        T(test_different_calls_do_not_coalesce),
        T(test_submit_failure_is_busy),
        T(test_client_gone_before_the_job_ends),
        T(test_fs_through_a_worker),
        T(test_git_module_unavailable),
        T(test_free_with_jobs_queued),
        T(test_watched_status),
        T(test_sync_command),
        T(test_editor_unavailable),
        T(test_editor_answers),
        T(test_editor_request_of_a_client_gone),
        T(test_chat_word_answers_in_text),
        T(test_audit_goes_to_the_editor),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
