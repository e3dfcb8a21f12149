/*
 * taskloop: the loop services workspace/ code uses without knowing the
 * loop (struct task_loop, workspace/task.h): fd watchers, one-shot timers,
 * the clock, and the reaper told of every task's process group so that no
 * task outlives the helper.
 */
#ifndef COMPANION_TASKLOOP_H
#define COMPANION_TASKLOOP_H

#include "workspace/task.h"

struct loop;

/* Fills out; l and *reaper_fd are borrowed (the reaper starts later).
 * Returns 0, or -1 when out of memory. */
int taskloop_init(struct task_loop *out, struct loop *l, const int *reaper_fd);
/* Frees what taskloop_init allocated. */
void taskloop_free(struct task_loop *tl);

#endif
