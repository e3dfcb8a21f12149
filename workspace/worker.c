/*
 * worker: the thread pool (see worker.h). One mutex guards both lists; the
 * work done under it is a pointer swap, so contention is negligible next to
 * the jobs themselves.
 */
#include "workspace/worker.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "workspace/git_load.h"

struct worker_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct worker_job *queue_head, *queue_tail;
    struct worker_job *done_head, *done_tail;
    size_t queued, running, max_queued;
    int stopping;
    void (*wake)(void *ud);
    void *wake_ud;
    int n_threads;
    pthread_t *threads;
    /* libgit2 is set up by the first job that needs it, under its own
     * mutex: under mu it would hold the loop's worker_pool_drain for the
     * 15 ms it takes to read the system CA bundle. */
    pthread_mutex_t git_mu;
    int git_ready;
    const struct git_ctx_api *git_api; /* NULL until loaded */
    char git_err[160];
};

static void append(struct worker_job **head, struct worker_job **tail, struct worker_job *j)
{
    j->next = NULL;
    if (*tail)
        (*tail)->next = j;
    else
        *head = j;
    *tail = j;
}

struct git_ctx *worker_git(struct worker_thread *t, const struct git_ctx_api **api, char *err,
                           size_t errlen)
{
    struct worker_pool *p = t->pool;
    if (!t->git) {
        pthread_mutex_lock(&p->git_mu);
        if (!p->git_ready) {
            p->git_api = git_load(p->git_err, sizeof(p->git_err));
            if (p->git_api)
                p->git_api->global_init();
            p->git_ready = 1;
        }
        pthread_mutex_unlock(&p->git_mu);
        if (p->git_api)
            t->git = p->git_api->new_ctx();
        if (!t->git) {
            snprintf(err, errlen, "%s", p->git_api ? "out of memory" : p->git_err);
            return NULL;
        }
    }
    *api = p->git_api;
    return t->git;
}

static void *thread_main(void *arg)
{
    struct worker_pool *p = arg;
    struct worker_thread t = {.git = NULL, .pool = p};
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->queue_head && !p->stopping)
            pthread_cond_wait(&p->cv, &p->mu);
        if (p->stopping)
            break;
        struct worker_job *j = p->queue_head;
        p->queue_head = j->next;
        if (!p->queue_head)
            p->queue_tail = NULL;
        p->queued--;
        p->running++;
        pthread_mutex_unlock(&p->mu);

        j->run(&t, j);

        pthread_mutex_lock(&p->mu);
        p->running--;
        append(&p->done_head, &p->done_tail, j);
        /* Under the lock, and never once the pool is stopping: a thread
         * left behind by worker_pool_free's deadline must not wake a loop
         * that its owner has freed since (seen under ASan: loop_wake(NULL)
         * from a job that outlived the join). */
        if (!p->stopping)
            p->wake(p->wake_ud);
    }
    pthread_mutex_unlock(&p->mu);
    if (t.git)
        p->git_api->free_ctx(t.git);
    return NULL;
}

struct worker_pool *worker_pool_new(int n_threads, size_t max_queued, void (*wake)(void *ud),
                                    void *wake_ud)
{
    struct worker_pool *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->threads = calloc((size_t)n_threads, sizeof(*p->threads));
    if (!p->threads) {
        free(p);
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_mutex_init(&p->git_mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->max_queued = max_queued;
    p->wake = wake;
    p->wake_ud = wake_ud;
    /* Workers never take signals: the loop's signalfd must see them all. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    for (int i = 0; i < n_threads; i++) {
        if (pthread_create(&p->threads[i], NULL, thread_main, p) != 0)
            break;
        p->n_threads++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (p->n_threads == 0) {
        worker_pool_free(p);
        return NULL;
    }
    return p;
}

int worker_pool_submit(struct worker_pool *p, struct worker_job *job)
{
    pthread_mutex_lock(&p->mu);
    if (p->queued >= p->max_queued || p->stopping) {
        pthread_mutex_unlock(&p->mu);
        return -1;
    }
    append(&p->queue_head, &p->queue_tail, job);
    p->queued++;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return 0;
}

void worker_pool_drain(struct worker_pool *p)
{
    pthread_mutex_lock(&p->mu);
    struct worker_job *j = p->done_head;
    p->done_head = p->done_tail = NULL;
    pthread_mutex_unlock(&p->mu);
    while (j) {
        struct worker_job *next = j->next;
        j->done(j, 0);
        j = next;
    }
}

size_t worker_pool_pending(struct worker_pool *p)
{
    pthread_mutex_lock(&p->mu);
    size_t n = p->queued + p->running;
    pthread_mutex_unlock(&p->mu);
    return n;
}

void worker_pool_free(struct worker_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stopping = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    /* A job may be deep in a large repository; the process must still be
     * gone within 2 s, so a thread that does not finish in time is left to
     * die with the process (its memory stays reachable from its stack). */
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 1;
    for (int i = 0; i < p->n_threads; i++)
        if (pthread_timedjoin_np(p->threads[i], NULL, &deadline) != 0)
            return;
    worker_pool_drain(p);
    struct worker_job *j = p->queue_head;
    p->queue_head = p->queue_tail = NULL;
    while (j) {
        struct worker_job *next = j->next;
        j->done(j, 1);
        j = next;
    }
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    pthread_mutex_destroy(&p->git_mu);
    free(p->threads);
    free(p);
}
