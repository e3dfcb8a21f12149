/*
 * gitwatch_cache: the last git.status of each watched folder, kept up to
 * date from what the watcher saw change (see gitwatch.h).
 */
#include "app/gitwatch_impl.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "app/counters.h"
#include "core/clock.h"
#include "workspace/git_ctx.h"
#include "workspace/worker.h"

struct sc_waiter {
    struct sc_waiter *next;
    gitwatch_status_cb cb;
    void *ud;
};

struct sc_entry {
    struct gitwatch_env env; /* a copy: runs may outlive the watcher */
    struct status_cache *sc; /* NULL once the cache is gone while a run is out */
    size_t folder;
    char *name;
    json_object *result; /* the last answer (loop thread only), NULL when none */
    int64_t full_ms;     /* when the run behind the last full status started */
    uint64_t digest;     /* of the index the last answer saw (git_ctx) */
    int running;
    struct sc_waiter *waiting; /* answered by the run that is out */
    struct sc_waiter *later;   /* asked after a change that run may have missed */
};

struct status_cache {
    struct gitwatch *gw;
    struct sc_entry **e;
    size_t n;
};

struct sc_job {
    struct worker_job base;
    struct sc_entry *e;         /* NULL: a plain run for `uncached` */
    struct sc_waiter *uncached; /* callers of a run without an entry */
    struct workspace_folder *folders;
    size_t n_folders;
    char *name;
    json_object *base_result; /* the worker's own copy; NULL: a full run */
    char **paths;
    size_t n_paths;
    int index_changed;
    uint64_t digest;
    int64_t started_ms;
    enum cmd_status st;
    struct cmd_result res;
    int partial;
};

static void entry_free(struct sc_entry *e)
{
    json_object_put(e->result);
    free(e->name);
    free(e);
}

struct status_cache *status_cache_new(struct gitwatch *gw, size_t n_folders, char *const *names)
{
    struct status_cache *sc = calloc(1, sizeof(*sc));
    if (!sc || !(sc->e = calloc(n_folders ? n_folders : 1, sizeof(*sc->e)))) {
        free(sc);
        return NULL;
    }
    sc->gw = gw;
    for (; sc->n < n_folders; sc->n++) {
        struct sc_entry *e = calloc(1, sizeof(*e));
        if (!e || !(e->name = strdup(names[sc->n]))) {
            free(e);
            status_cache_free(sc);
            return NULL;
        }
        e->env = *gitwatch_env(gw);
        e->sc = sc;
        e->folder = sc->n;
        sc->e[sc->n] = e;
    }
    return sc;
}

void status_cache_free(struct status_cache *sc)
{
    if (!sc)
        return;
    for (size_t i = 0; i < sc->n; i++) {
        if (sc->e[i]->running)
            sc->e[i]->sc = NULL; /* its run frees it */
        else
            entry_free(sc->e[i]);
    }
    free(sc->e);
    free(sc);
}

static void answer_all(struct sc_waiter *list, enum cmd_status st, struct cmd_result *res)
{
    while (list) {
        struct sc_waiter *next = list->next;
        list->cb(list->ud, st, res);
        free(list);
        list = next;
    }
}

static void job_run(struct worker_thread *t, struct worker_job *base)
{
    struct sc_job *j = (struct sc_job *)base;
    const struct git_ctx_api *api = NULL;
    char err[160];
    struct git_ctx *g = worker_git(t, &api, err, sizeof(err));
    if (!g) {
        j->st = cmd_fail(&j->res, "PROCESSING_ERROR", "%s", err);
        return;
    }
    j->st = api->status_update(g, j->folders, j->n_folders, j->name, j->base_result, j->paths,
                               j->n_paths, j->index_changed, &j->digest, &j->partial, &j->res);
}

static void job_free(struct sc_job *j)
{
    workspace_folders_free(j->folders, j->n_folders);
    free(j->name);
    json_object_put(j->base_result);
    for (size_t i = 0; i < j->n_paths; i++)
        free(j->paths[i]);
    free(j->paths);
    json_object_put(j->res.result);
    free(j);
}

static int start_run(struct sc_entry *e);
static void job_done(struct worker_job *base, int cancelled);

/* The cache went away (the folders changed) while callers waited for a
 * newer run than the one that came back: give them a full status of their
 * own (a run without an entry). */
static void run_uncached(const struct gitwatch_env *env, const char *name, struct sc_waiter *list)
{
    struct sc_job *j = calloc(1, sizeof(*j));
    if (j) {
        j->base.run = job_run;
        j->base.done = job_done;
        j->uncached = list;
        j->name = strdup(name);
        j->folders = workspace_folders_copy(env->ws, &j->n_folders);
    }
    if (!j || !j->name || !j->folders || worker_pool_submit(env->pool, &j->base) < 0) {
        struct cmd_result res = {0};
        if (j) {
            j->uncached = NULL;
            job_free(j);
        }
        cmd_fail(&res, "BUSY", "too many commands in progress; try again shortly");
        answer_all(list, CMD_ERROR, &res);
    }
}

static void job_done(struct worker_job *base, int cancelled)
{
    struct sc_job *j = (struct sc_job *)base;
    struct sc_entry *e = j->e;
    if (!e) {
        struct sc_waiter *list = j->uncached;
        if (cancelled) {
            j->st = cmd_fail(&j->res, "PROCESSING_ERROR", "the helper is stopping");
            json_object_put(j->res.result);
            j->res.result = NULL;
        }
        j->uncached = NULL;
        answer_all(list, j->st, &j->res);
        job_free(j);
        return;
    }
    e->running = 0;
    if (cancelled) {
        j->st = CMD_ERROR;
        json_object_put(j->res.result);
        j->res.result = NULL;
        cmd_fail(&j->res, "PROCESSING_ERROR", "the helper is stopping");
    }
    json_object_put(e->result);
    e->result = NULL;
    if (j->st == CMD_OK) {
        e->result = json_object_get(j->res.result);
        e->digest = j->digest;
        if (j->partial) {
            e->env.counters->git_status_partial++;
        } else {
            e->env.counters->git_status_full++;
            e->full_ms = j->started_ms;
        }
    }
    struct sc_waiter *waiting = e->waiting, *later = e->later;
    e->waiting = e->later = NULL;
    /* The next run goes out before anyone is answered: a callback that asks
     * again then joins a run (or the list after it) instead of starting a
     * second one beside it. */
    if (later && e->sc && !cancelled) {
        e->waiting = later;
        if (start_run(e) < 0) {
            struct cmd_result res = {0};
            e->waiting = NULL;
            cmd_fail(&res, "BUSY", "too many commands in progress; try again shortly");
            answer_all(later, CMD_ERROR, &res);
        }
    } else if (later && !cancelled) {
        run_uncached(&e->env, e->name, later);
    } else if (later) {
        struct cmd_result res = {0};
        cmd_fail(&res, "PROCESSING_ERROR", "the helper is stopping");
        answer_all(later, CMD_ERROR, &res);
    }
    answer_all(waiting, j->st, &j->res);
    job_free(j);
    if (!e->sc && !e->running)
        entry_free(e);
}

/* Starts a run for e->waiting: from the last answer and what changed since
 * it, or a full one. -1 when it could not be queued. */
static int start_run(struct sc_entry *e)
{
    struct status_cache *sc = e->sc;
    struct sc_job *j = calloc(1, sizeof(*j));
    if (!j)
        return -1;
    j->base.run = job_run;
    j->base.done = job_done;
    j->e = e;
    j->started_ms = clock_mono_ms();
    j->name = strdup(e->name);
    j->folders = workspace_folders_copy(e->env.ws, &j->n_folders);
    /* From here on, new changes belong to the next run. */
    int all = gitwatch_take_changes(sc->gw, e->folder, &j->paths, &j->n_paths, &j->index_changed);
    j->digest = e->digest;
    int fresh = e->result && j->started_ms - e->full_ms < GITWATCH_FULL_MS;
    if (!all && fresh && json_object_deep_copy(e->result, &j->base_result, NULL) != 0)
        j->base_result = NULL;
    if (!j->name || !j->folders || worker_pool_submit(e->env.pool, &j->base) < 0) {
        /* The changes were taken: without the last answer the next run is
         * a full one, so nothing is missed. */
        json_object_put(e->result);
        e->result = NULL;
        job_free(j);
        return -1;
    }
    e->running = 1;
    return 0;
}

int status_cache_get(struct status_cache *sc, size_t i, gitwatch_status_cb cb, void *ud)
{
    if (!sc || i >= sc->n)
        return -1;
    struct sc_entry *e = sc->e[i];
    /* Changes made before this call are in inotify's queue by now: read
     * them, so that a caller who just wrote a file sees it. */
    gitwatch_sync(sc->gw);
    int changed = gitwatch_has_changes(sc->gw, i);
    if (!e->running && !changed && e->result && clock_mono_ms() - e->full_ms < GITWATCH_FULL_MS) {
        e->env.counters->git_status_cached++;
        struct cmd_result res = {.result = e->result};
        json_object_get(e->result); /* cb may ask again, and replace it */
        cb(ud, CMD_OK, &res);
        json_object_put(res.result);
        return 0;
    }
    struct sc_waiter *wt = calloc(1, sizeof(*wt));
    if (!wt)
        return -1;
    wt->cb = cb;
    wt->ud = ud;
    if (e->running) {
        struct sc_waiter **list = changed ? &e->later : &e->waiting;
        wt->next = *list;
        *list = wt;
        return 0;
    }
    e->waiting = wt;
    if (start_run(e) < 0) {
        e->waiting = NULL;
        free(wt);
        return -1;
    }
    return 0;
}
