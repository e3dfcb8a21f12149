/*
 * app/gitwatch_cache.c: the last git.status of each watched folder, kept
 * up to date from what the watcher saw change. Everything around it is
 * stood in for in this program:
 * - the watcher's half (gitwatch_env, gitwatch_sync, gitwatch_has_changes,
 *   gitwatch_take_changes): the test says what changed, and can hold a
 *   change back until the cache syncs (inotify's queue, unread);
 * - the worker pool (all of worker.o): jobs wait in a queue until the test
 *   runs them; worker_git hands out a git module whose status_update
 *   records what it was asked (a base or not, which paths, the index) and
 *   answers {"run": n, "base": the base's run or -1};
 * - the monotonic clock (all of core/clock.o), so GITWATCH_FULL_MS can be
 *   crossed without waiting.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/counters.h"
#include "app/gitwatch.h"
#include "app/gitwatch_impl.h"
#include "core/clock.h"
#include "workspace/git_ctx.h"
#include "workspace/worker.h"
#include "workspace/workspace.h"

/* ---- the clock --------------------------------------------------------- */

static int64_t now_ms;

int64_t clock_mono_ms(void)
{
    return now_ms;
}

int64_t clock_wall_ms(void)
{
    return 1700000000000 + now_ms;
}

/* ---- the worker pool ------------------------------------------------------ */

struct worker_pool {
    struct worker_job *queue, *done;
    size_t queued;
    int refuse;
    int stopping; /* being freed: refuses new jobs, as the real pool does */
    int submits;
};

static struct worker_pool pool;

static void append(struct worker_job **head, struct worker_job *j)
{
    j->next = NULL;
    while (*head)
        head = &(*head)->next;
    *head = j;
}

struct worker_pool *worker_pool_new(int n_threads, size_t max_queued, void (*wake)(void *ud),
                                    void *wake_ud)
{
    return &pool;
}

int worker_pool_submit(struct worker_pool *p, struct worker_job *job)
{
    p->submits++;
    if (p->refuse || p->stopping)
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

/* Ends every job: those done as done, the rest cancelled. */
void worker_pool_free(struct worker_pool *p)
{
    p->stopping = 1;
    worker_pool_drain(p);
    while (p->queue) {
        struct worker_job *j = p->queue;
        p->queue = j->next;
        p->queued--;
        j->done(j, 1);
    }
    p->stopping = 0; /* the tests go on with the same pool */
}

static void run_next(void)
{
    struct worker_job *j = pool.queue;
    assert_non_null(j);
    pool.queue = j->next;
    pool.queued--;
    struct worker_thread t = {.git = NULL, .pool = &pool};
    j->run(&t, j);
    append(&pool.done, j);
}

/* Runs the oldest job and answers it. */
static void run_and_drain(void)
{
    run_next();
    worker_pool_drain(&pool);
}

/* ---- the git module ------------------------------------------------------------ */

struct git_ctx {
    int unused;
};
static struct git_ctx the_git;

#define MAX_RUNS 32
struct run_record {
    char name[32];
    int base;        /* the base's "run", -1: a full run */
    char paths[256]; /* joined with ',' */
    size_t n_paths;
    int index_changed;
    uint64_t digest_in;
    size_t n_folders;
};
static struct run_record runs[MAX_RUNS];
static int n_runs;
static const char *fail_code; /* status_update answers this error */
static int fall_back_full;    /* status_update ignores its base: not partial */

static int64_t run_of(json_object *r)
{
    json_object *v;
    if (!r || !json_object_object_get_ex(r, "run", &v))
        return -1;
    return json_object_get_int64(v);
}

static enum cmd_status fake_status_update(struct git_ctx *g, const struct workspace_folder *folders,
                                          size_t n_folders, const char *name, json_object *base,
                                          char *const *paths, size_t n_paths, int index_changed,
                                          uint64_t *digest, int *partial, struct cmd_result *res)
{
    assert_true(n_runs < MAX_RUNS);
    struct run_record *r = &runs[n_runs++];
    snprintf(r->name, sizeof(r->name), "%s", name ? name : "(null)");
    r->base = base ? (int)run_of(base) : -1;
    r->paths[0] = '\0';
    for (size_t i = 0; i < n_paths; i++) {
        if (i)
            strcat(r->paths, ",");
        strcat(r->paths, paths[i]);
    }
    r->n_paths = n_paths;
    r->index_changed = index_changed;
    r->digest_in = *digest;
    r->n_folders = n_folders;
    if (fail_code)
        return cmd_fail(res, fail_code, "canned failure");
    *partial = base && !fall_back_full;
    *digest = (uint64_t)n_runs * 100;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "run", json_object_new_int(n_runs));
    json_object_object_add(o, "base", json_object_new_int(r->base));
    res->result = o;
    return CMD_OK;
}

static const struct git_ctx_api fake_api = {.status_update = fake_status_update};
static int git_unavailable;

struct git_ctx *worker_git(struct worker_thread *t, const struct git_ctx_api **api, char *err,
                           size_t errlen)
{
    if (git_unavailable) {
        snprintf(err, errlen, "no git module");
        return NULL;
    }
    *api = &fake_api;
    return &the_git;
}

/* ---- the watcher's half ------------------------------------------------------------- */

struct wf {
    int all;           /* anything may have changed */
    int index_changed; /* .git/index rewritten */
    char *paths[8];
    size_t n;
    char *pending[8]; /* written, but inotify's queue not read yet */
    size_t n_pending;
};

struct gitwatch {
    struct gitwatch_env env;
    struct wf f[2];
    int syncs;
};

static struct gitwatch gw;

const struct gitwatch_env *gitwatch_env(const struct gitwatch *w)
{
    return &w->env;
}

void gitwatch_sync(struct gitwatch *w)
{
    w->syncs++;
    for (size_t i = 0; i < 2; i++) {
        struct wf *f = &w->f[i];
        for (size_t k = 0; k < f->n_pending; k++)
            f->paths[f->n++] = f->pending[k];
        f->n_pending = 0;
    }
}

int gitwatch_has_changes(const struct gitwatch *w, size_t i)
{
    const struct wf *f = &w->f[i];
    return f->all || f->index_changed || f->n > 0;
}

int gitwatch_take_changes(struct gitwatch *w, size_t i, char ***paths, size_t *n,
                          int *index_changed)
{
    struct wf *f = &w->f[i];
    int all = f->all;
    *paths = NULL;
    *n = 0;
    *index_changed = f->index_changed;
    f->index_changed = 0;
    if (all) {
        for (size_t k = 0; k < f->n; k++)
            free(f->paths[k]);
    } else if (f->n) {
        *paths = calloc(f->n, sizeof(char *));
        assert_non_null(*paths);
        memcpy(*paths, f->paths, f->n * sizeof(char *));
        *n = f->n;
    }
    f->n = 0;
    f->all = 0;
    return all;
}

/* A file written in folder i, seen by the watcher at once (or only at the
 * next sync when `queued`). */
static void touch(size_t i, const char *path, int queued)
{
    struct wf *f = &gw.f[i];
    if (queued)
        f->pending[f->n_pending++] = strdup(path);
    else
        f->paths[f->n++] = strdup(path);
}

/* ---- callers --------------------------------------------------------------------------- */

struct answer {
    int calls;
    enum cmd_status st;
    char code[32];
    int64_t run, base;
    /* Asks again from inside the callback when set. */
    struct status_cache *again_sc;
    struct answer *again;
};

/* Set by the teardown: callers' answers live on the stack of a test that
 * has returned (or failed half-way), so late answers are not recorded. */
static int answers_dead;

static void answered(void *ud, enum cmd_status st, struct cmd_result *res)
{
    struct answer *a = ud;
    if (answers_dead)
        return;
    a->calls++;
    a->st = st;
    a->code[0] = '\0';
    a->run = a->base = -2;
    if (st == CMD_OK) {
        assert_non_null(res->result);
        a->run = run_of(res->result);
        json_object *v;
        assert_true(json_object_object_get_ex(res->result, "base", &v));
        a->base = json_object_get_int64(v);
    } else {
        assert_non_null(res->code);
        snprintf(a->code, sizeof(a->code), "%s", res->code);
    }
    if (a->again_sc) {
        struct status_cache *sc = a->again_sc;
        a->again_sc = NULL;
        assert_int_equal(status_cache_get(sc, 0, answered, a->again), 0);
    }
}

static void expect_answer(const struct answer *a, int64_t run)
{
    if (a->calls != 1)
        fail_msg("answered %d times", a->calls);
    if (a->st != CMD_OK)
        fail_msg("answered %s, expected run %lld", a->code, (long long)run);
    if (a->run != run)
        fail_msg("answered with run %lld, expected run %lld", (long long)a->run, (long long)run);
}

static void expect_error(const struct answer *a, const char *code)
{
    assert_int_equal(a->calls, 1);
    assert_int_equal(a->st, CMD_ERROR);
    assert_string_equal(a->code, code);
}

/* ---- fixture ----------------------------------------------------------------------------- */

struct fx {
    struct workspace ws;
    struct workspace_folder folders[2];
    struct app_counters counters;
    struct status_cache *sc;
};

static int setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    fx->folders[0] = (struct workspace_folder){.name = "main", .path = "/srv/repo"};
    fx->folders[1] = (struct workspace_folder){.name = "docs", .path = "/srv/docs"};
    fx->ws.folders = fx->folders;
    fx->ws.n_folders = 2;
    memset(&pool, 0, sizeof(pool));
    memset(&gw, 0, sizeof(gw));
    memset(runs, 0, sizeof(runs));
    n_runs = 0;
    fail_code = NULL;
    fall_back_full = 0;
    git_unavailable = 0;
    now_ms = 5000000;
    answers_dead = 0;
    gw.env.ws = &fx->ws;
    gw.env.pool = &pool;
    gw.env.counters = &fx->counters;
    /* As the watcher starts: anything may have changed. */
    gw.f[0].all = gw.f[1].all = 1;
    char *names[] = {"main", "docs"};
    fx->sc = status_cache_new(&gw, 2, names);
    assert_non_null(fx->sc);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    answers_dead = 1;
    status_cache_free(fx->sc);
    /* Whatever is still out ends now (the helper stopping). */
    worker_pool_free(&pool);
    for (size_t i = 0; i < 2; i++) {
        for (size_t k = 0; k < gw.f[i].n; k++)
            free(gw.f[i].paths[k]);
        for (size_t k = 0; k < gw.f[i].n_pending; k++)
            free(gw.f[i].pending[k]);
    }
    free(fx);
    return 0;
}

static int get(struct fx *fx, size_t i, struct answer *a)
{
    return status_cache_get(fx->sc, i, answered, a);
}

/* A first full run of folder 0, answered: run 1 (the caller's answer). */
static void first_run(struct fx *fx)
{
    struct answer a = {0};
    assert_int_equal(get(fx, 0, &a), 0);
    run_and_drain();
    expect_answer(&a, n_runs);
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_first_get_runs_a_full_status(void **state)
{
    struct fx *fx = *state;
    struct answer a = {0};
    assert_int_equal(get(fx, 0, &a), 0);
    assert_int_equal(gw.syncs, 1);
    assert_int_equal(a.calls, 0); /* not before the run */
    assert_int_equal(pool.queued, 1);
    run_next();
    assert_int_equal(n_runs, 1);
    assert_int_equal(runs[0].base, -1);
    assert_int_equal(runs[0].n_paths, 0);
    assert_string_equal(runs[0].name, "main");
    assert_int_equal(runs[0].n_folders, 2); /* the worker's copy of the folders */
    assert_int_equal(a.calls, 0);
    worker_pool_drain(&pool);
    expect_answer(&a, 1);
    assert_int_equal(fx->counters.git_status_full, 1);
    assert_int_equal(fx->counters.git_status_partial, 0);
    assert_int_equal(fx->counters.git_status_cached, 0);

    /* The other folder is its own entry. */
    struct answer b = {0};
    assert_int_equal(get(fx, 1, &b), 0);
    run_and_drain();
    assert_string_equal(runs[1].name, "docs");
    expect_answer(&b, 2);
    /* Out of range. */
    struct answer c = {0};
    assert_int_equal(get(fx, 2, &c), -1);
    assert_int_equal(c.calls, 0);
}

static void test_unchanged_is_answered_from_the_cache(void **state)
{
    struct fx *fx = *state;
    first_run(fx);
    for (int i = 0; i < 3; i++) {
        struct answer a = {0};
        now_ms += 1000;
        assert_int_equal(get(fx, 0, &a), 0);
        expect_answer(&a, 1); /* at once */
    }
    assert_int_equal(pool.queued, 0);
    assert_int_equal(pool.submits, 1);
    assert_int_equal(n_runs, 1);
    assert_int_equal(fx->counters.git_status_cached, 3);
    assert_int_equal(gw.syncs, 4); /* every call reads inotify first */
}

static void test_changes_give_a_partial_run(void **state)
{
    struct fx *fx = *state;
    first_run(fx);
    touch(0, "src/a.c", 0);
    touch(0, "docs", 0);
    struct answer a = {0};
    assert_int_equal(get(fx, 0, &a), 0);
    assert_int_equal(a.calls, 0);
    /* The changes are the run's now: none are left for the next. */
    assert_false(gitwatch_has_changes(&gw, 0));
    run_and_drain();
    assert_int_equal(runs[1].base, 1);
    assert_string_equal(runs[1].paths, "src/a.c,docs");
    assert_int_equal(runs[1].n_paths, 2);
    assert_int_equal(runs[1].index_changed, 0);
    assert_int_equal(runs[1].digest_in, 100); /* the digest that came with the base */
    expect_answer(&a, 2);
    assert_int_equal(a.base, 1);
    assert_int_equal(fx->counters.git_status_partial, 1);
    assert_int_equal(fx->counters.git_status_full, 1);

    /* Then it is the cache again. */
    struct answer b = {0};
    get(fx, 0, &b);
    expect_answer(&b, 2);

    /* The index alone. */
    gw.f[0].index_changed = 1;
    struct answer c = {0};
    get(fx, 0, &c);
    run_and_drain();
    assert_int_equal(runs[2].base, 2);
    assert_int_equal(runs[2].n_paths, 0);
    assert_int_equal(runs[2].index_changed, 1);
    assert_int_equal(runs[2].digest_in, 200);
    expect_answer(&c, 3);
    assert_int_equal(fx->counters.git_status_partial, 2);

    /* Anything (HEAD, a ref, an ignore file): a full run, no base. */
    gw.f[0].all = 1;
    struct answer d = {0};
    get(fx, 0, &d);
    run_and_drain();
    assert_int_equal(runs[3].base, -1);
    expect_answer(&d, 4);
    assert_int_equal(fx->counters.git_status_full, 2);

    /* The module may fall back to a full look: counted as full. */
    fall_back_full = 1;
    touch(0, "x", 0);
    struct answer e = {0};
    get(fx, 0, &e);
    run_and_drain();
    assert_int_equal(runs[4].base, 4);
    expect_answer(&e, 5);
    assert_int_equal(fx->counters.git_status_full, 3);
    assert_int_equal(fx->counters.git_status_partial, 2);
}

static void test_callers_share_a_run_when_nothing_changed(void **state)
{
    struct fx *fx = *state;
    struct answer a = {0}, b = {0}, c = {0};
    get(fx, 0, &a);
    get(fx, 0, &b);
    get(fx, 0, &c);
    assert_int_equal(pool.queued, 1);
    run_and_drain();
    assert_int_equal(n_runs, 1);
    expect_answer(&a, 1);
    expect_answer(&b, 1);
    expect_answer(&c, 1);

    /* The same with a partial run out. */
    touch(0, "f.c", 0);
    struct answer d = {0}, e = {0};
    get(fx, 0, &d);
    get(fx, 0, &e);
    assert_int_equal(pool.queued, 1);
    run_and_drain();
    expect_answer(&d, 2);
    expect_answer(&e, 2);
    assert_int_equal(n_runs, 2);
}

static void test_callers_after_a_change_wait_for_the_next_run(void **state)
{
    struct fx *fx = *state;
    first_run(fx);
    touch(0, "one.c", 0);
    struct answer a = {0};
    get(fx, 0, &a); /* run 2 goes out with one.c */
    /* b writes two.c, then asks: run 2 may have missed it. */
    touch(0, "two.c", 0);
    struct answer b = {0}, c = {0};
    get(fx, 0, &b);
    get(fx, 0, &c); /* nothing new, but two.c is still not looked at */
    assert_int_equal(pool.queued, 1);
    run_and_drain();
    expect_answer(&a, 2);
    assert_int_equal(b.calls, 0);
    assert_int_equal(c.calls, 0);
    /* The next run went out by itself, with what changed since run 2. */
    assert_int_equal(pool.queued, 1);
    run_and_drain();
    assert_string_equal(runs[2].paths, "two.c");
    assert_int_equal(runs[2].base, 2);
    expect_answer(&b, 3);
    expect_answer(&c, 3);
    assert_int_equal(pool.queued, 0);

    /* A write still in inotify's queue when the caller asks: the cache
     * reads the queue first, so the caller does not get the older run. */
    struct answer d = {0};
    touch(0, "three.c", 0);
    get(fx, 0, &d); /* run 4 out */
    touch(0, "four.c", 1);
    struct answer e = {0};
    get(fx, 0, &e);
    run_and_drain();
    expect_answer(&d, 4);
    assert_int_equal(e.calls, 0);
    run_and_drain();
    assert_string_equal(runs[4].paths, "four.c");
    expect_answer(&e, 5);

    /* Nor when nothing is running: a queued write is not answered from
     * the cache. */
    touch(0, "five.c", 1);
    struct answer f = {0};
    get(fx, 0, &f);
    assert_int_equal(f.calls, 0);
    run_and_drain();
    assert_string_equal(runs[5].paths, "five.c");
    expect_answer(&f, 6);
}

static void test_full_run_after_full_ms(void **state)
{
    struct fx *fx = *state;
    /* The first run starts at t0 and takes 5 s: the age counts from its
     * start. */
    int64_t t0 = now_ms;
    struct answer a = {0};
    get(fx, 0, &a);
    now_ms += 5000;
    run_and_drain();
    expect_answer(&a, 1);

    now_ms = t0 + GITWATCH_FULL_MS - 1;
    struct answer b = {0};
    get(fx, 0, &b);
    expect_answer(&b, 1);
    assert_int_equal(fx->counters.git_status_cached, 1);

    now_ms = t0 + GITWATCH_FULL_MS;
    struct answer c = {0};
    get(fx, 0, &c);
    assert_int_equal(c.calls, 0); /* not from the cache */
    run_and_drain();
    assert_int_equal(runs[1].base, -1); /* and a full run, not from the old answer */
    expect_answer(&c, 2);
    assert_int_equal(fx->counters.git_status_full, 2);

    /* Partial runs do not make the last full one younger. */
    int64_t t1 = now_ms;
    now_ms = t1 + 10000;
    touch(0, "p.c", 0);
    struct answer d = {0};
    get(fx, 0, &d);
    run_and_drain();
    assert_int_equal(runs[2].base, 2);
    expect_answer(&d, 3);
    now_ms = t1 + GITWATCH_FULL_MS - 1;
    struct answer e = {0};
    get(fx, 0, &e);
    expect_answer(&e, 3);
    now_ms = t1 + GITWATCH_FULL_MS;
    touch(0, "q.c", 0); /* even with a change to look at: full */
    struct answer f = {0};
    get(fx, 0, &f);
    run_and_drain();
    assert_int_equal(runs[3].base, -1);
    expect_answer(&f, 4);
}

static void test_free_while_a_run_is_out(void **state)
{
    struct fx *fx = *state;
    struct answer a = {0}, b = {0};
    get(fx, 0, &a);
    get(fx, 0, &b);
    status_cache_free(fx->sc);
    fx->sc = NULL;
    run_and_drain();
    expect_answer(&a, 1);
    expect_answer(&b, 1);
    assert_int_equal(pool.queued, 0);
}

static void test_free_with_callers_waiting_for_a_later_run(void **state)
{
    struct fx *fx = *state;
    first_run(fx);
    touch(0, "x.c", 0);
    struct answer a = {0}, b = {0};
    get(fx, 0, &a); /* run 2 */
    touch(0, "y.c", 0);
    get(fx, 0, &b); /* waits for run 3 */
    status_cache_free(fx->sc);
    fx->sc = NULL;
    run_and_drain();
    expect_answer(&a, 2);
    assert_int_equal(b.calls, 0);
    /* b gets a run of its own, full (there is no cache to start from). */
    assert_int_equal(pool.queued, 1);
    run_and_drain();
    assert_int_equal(runs[2].base, -1);
    assert_string_equal(runs[2].name, "main");
    expect_answer(&b, 3);

    /* ... which, when it cannot be queued, is BUSY. */
    struct status_cache *sc = status_cache_new(&gw, 2, (char *[]){"main", "docs"});
    fx->sc = sc;
    struct answer c = {0}, d = {0};
    status_cache_get(sc, 0, answered, &c);
    touch(0, "z.c", 0);
    status_cache_get(sc, 0, answered, &d);
    status_cache_free(sc);
    fx->sc = NULL;
    pool.refuse = 1;
    run_and_drain();
    expect_answer(&c, 4);
    expect_error(&d, "BUSY");
}

static void test_cancelled_runs_answer_an_error(void **state)
{
    struct fx *fx = *state;
    first_run(fx);
    touch(0, "x.c", 0);
    struct answer a = {0}, b = {0}, c = {0};
    get(fx, 0, &a);
    get(fx, 0, &b); /* shares */
    touch(0, "y.c", 0);
    get(fx, 0, &c);          /* waits for the next */
    worker_pool_free(&pool); /* the helper stops: the job is cancelled */
    expect_error(&a, "PROCESSING_ERROR");
    expect_error(&b, "PROCESSING_ERROR");
    expect_error(&c, "PROCESSING_ERROR");
    assert_int_equal(pool.queued, 0); /* nothing new is started */
    assert_int_equal(n_runs, 1);

    /* The cache forgot its answer: the next call runs, fully. */
    struct answer d = {0};
    get(fx, 0, &d);
    assert_int_equal(d.calls, 0);
    run_and_drain();
    assert_int_equal(runs[1].base, -1);
    expect_answer(&d, 2);

    /* A run of its own (the cache gone) cancelled: an error too. */
    touch(0, "z.c", 0);
    struct answer e = {0}, f = {0};
    get(fx, 0, &e);
    touch(0, "w.c", 0);
    get(fx, 0, &f);
    status_cache_free(fx->sc);
    fx->sc = NULL;
    run_and_drain(); /* e answered, f's own run queued */
    expect_answer(&e, 3);
    assert_int_equal(pool.queued, 1);
    worker_pool_free(&pool);
    expect_error(&f, "PROCESSING_ERROR");
}

static void test_run_errors(void **state)
{
    struct fx *fx = *state;
    first_run(fx);
    fail_code = "NOT_A_REPOSITORY";
    touch(0, "x.c", 0);
    struct answer a = {0}, b = {0};
    get(fx, 0, &a);
    get(fx, 0, &b);
    run_and_drain();
    expect_error(&a, "NOT_A_REPOSITORY");
    expect_error(&b, "NOT_A_REPOSITORY");
    /* A failed run is neither a full nor a partial status. */
    assert_int_equal(fx->counters.git_status_full, 1);
    assert_int_equal(fx->counters.git_status_partial, 0);
    /* No answer is kept from a failed run: the next call runs, fully. */
    fail_code = NULL;
    struct answer c = {0};
    get(fx, 0, &c);
    assert_int_equal(c.calls, 0);
    run_and_drain();
    assert_int_equal(runs[2].base, -1);
    expect_answer(&c, 3);

    /* The git module cannot be loaded. */
    git_unavailable = 1;
    gw.f[0].all = 1;
    struct answer d = {0};
    get(fx, 0, &d);
    run_and_drain();
    expect_error(&d, "PROCESSING_ERROR");
}

static void test_submit_refused(void **state)
{
    struct fx *fx = *state;
    first_run(fx);
    touch(0, "lost.c", 0);
    pool.refuse = 1;
    struct answer a = {0};
    assert_int_equal(get(fx, 0, &a), -1);
    assert_int_equal(a.calls, 0); /* -1: the callback is not called */
    pool.refuse = 0;
    /* The change was taken by the refused run; the cache must not answer
     * as if nothing had changed, and a partial run would miss lost.c. */
    struct answer b = {0};
    get(fx, 0, &b);
    assert_int_equal(b.calls, 0);
    run_and_drain();
    assert_int_equal(runs[1].base, -1);
    expect_answer(&b, 2);

    /* The next run after a change cannot be queued: its callers hear BUSY. */
    touch(0, "x.c", 0);
    struct answer c = {0}, d = {0};
    get(fx, 0, &c);
    touch(0, "y.c", 0);
    get(fx, 0, &d);
    pool.refuse = 1;
    run_and_drain();
    expect_answer(&c, 3);
    expect_error(&d, "BUSY");
    pool.refuse = 0;
    struct answer e = {0};
    get(fx, 0, &e);
    run_and_drain();
    assert_int_equal(runs[3].base, -1); /* y.c was lost with that run: full */
    expect_answer(&e, 4);
}

static void test_asking_again_from_the_callback(void **state)
{
    struct fx *fx = *state;
    first_run(fx);
    /* From a cached answer. */
    struct answer inner = {0}, outer = {.again_sc = fx->sc, .again = &inner};
    get(fx, 0, &outer);
    expect_answer(&outer, 1);
    expect_answer(&inner, 1);

    /* From a run's answer, nothing changed since: the new answer. */
    touch(0, "a.c", 0);
    struct answer inner2 = {0}, outer2 = {.again_sc = fx->sc, .again = &inner2};
    get(fx, 0, &outer2);
    run_and_drain();
    expect_answer(&outer2, 2);
    expect_answer(&inner2, 2);
    assert_int_equal(pool.queued, 0);
}

/* A callback of a finished run asks again while other callers wait for
 * the next run (they wrote after the run started). Each of them must be
 * answered, once, by a run that started after their write, and no two
 * runs of one folder may be out at once. job_done() used to answer the
 * run's callers first and then replace e->waiting with the later callers:
 * the caller that asked from the callback was dropped (never answered, its
 * waiter leaked), two runs of the folder were out together, and freeing
 * the cache with both out was a use after free. */
static void test_asking_again_while_others_wait(void **state)
{
    struct fx *fx = *state;
    first_run(fx);
    touch(0, "a.c", 0);
    struct answer inner = {0}, outer = {.again_sc = fx->sc, .again = &inner}, later = {0};
    get(fx, 0, &outer); /* run 2 */
    touch(0, "b.c", 0);
    get(fx, 0, &later); /* waits for run 3 */
    run_and_drain();    /* outer answered; it asks again (inner) */
    expect_answer(&outer, 2);
    size_t out = pool.queued;
    while (pool.queue)
        run_and_drain();
    if (inner.calls != 1)
        fail_msg("the caller that asked from the callback was answered %d times", inner.calls);
    if (out != 1)
        fail_msg("%zu runs of one folder were out at once", out);
    expect_answer(&later, 3);
    expect_answer(&inner, 3);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_first_get_runs_a_full_status),
        T(test_unchanged_is_answered_from_the_cache),
        T(test_changes_give_a_partial_run),
        T(test_callers_share_a_run_when_nothing_changed),
        T(test_callers_after_a_change_wait_for_the_next_run),
        T(test_full_run_after_full_ms),
        T(test_free_while_a_run_is_out),
        T(test_free_with_callers_waiting_for_a_later_run),
        T(test_cancelled_runs_answer_an_error),
        T(test_run_errors),
        T(test_submit_refused),
        T(test_asking_again_from_the_callback),
        T(test_asking_again_while_others_wait),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
