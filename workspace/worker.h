/*
 * worker: a small pool of threads for blocking work (libgit2, file reads),
 * so the event loop never waits on a disk or a large repository.
 *
 * Jobs go in through a bounded queue (a full queue is refused: the caller
 * answers BUSY rather than letting memory grow). A finished job is put on a
 * done list and the loop is woken through `wake`, the only function called
 * from worker threads into the owner (the helper uses lws_cancel_service);
 * the loop then calls worker_pool_drain(), which runs each job's `done` on
 * the loop thread. Each thread owns a git_ctx, because libgit2 allows a
 * repository object in one thread only.
 */
#ifndef COMPANION_WORKER_H
#define COMPANION_WORKER_H

#include <stddef.h>

struct git_ctx;
struct worker_pool;

struct worker_thread {
    struct git_ctx *git; /* NULL until worker_git() */
    struct worker_pool *pool;
};

struct worker_job {
    struct worker_job *next;
    /* On a worker thread: the blocking part. */
    void (*run)(struct worker_thread *t, struct worker_job *job);
    /* On the loop thread, after run (cancelled: the pool is being freed and
     * run may not have happened). Frees the job. */
    void (*done)(struct worker_job *job, int cancelled);
};

struct git_ctx_api;

/* The thread's git_ctx and the module's functions (*api), made on first
 * use: the git module is loaded and libgit2 set up once per process, by the
 * first git job. NULL with err set when the module cannot be loaded. */
struct git_ctx *worker_git(struct worker_thread *t, const struct git_ctx_api **api, char *err,
                           size_t errlen);

/* n_threads >= 1; max_queued jobs wait at most. NULL on failure. */
struct worker_pool *worker_pool_new(int n_threads, size_t max_queued, void (*wake)(void *ud),
                                    void *wake_ud);
/* Joins the threads; jobs still queued or done get done(job, 1). */
void worker_pool_free(struct worker_pool *p);
/* 0, or -1 when the queue is full (the job is not taken). */
int worker_pool_submit(struct worker_pool *p, struct worker_job *job);
/* Runs done() for every finished job. Loop thread only. */
void worker_pool_drain(struct worker_pool *p);
/* Jobs queued or running (for status and tests). */
size_t worker_pool_pending(struct worker_pool *p);

#endif
