/*
 * task: runs one configured task (argv, no shell) and streams its output.
 *
 * Each run is its own process group (so the whole tree can be signalled),
 * with stdin from /dev/null and stdout/stderr on pipes the event loop
 * watches. Output is handed out in chunks that never split a UTF-8 sequence
 * (invalid bytes become U+FFFD), up to a byte cap after which it is read and
 * dropped (truncated). The end comes when the leader has exited and both
 * pipes are closed; any process left in the group is then killed, so no
 * grandchild outlives its task. A timeout, cancel or owner disconnect sends
 * SIGTERM to the group and SIGKILL after a grace period.
 *
 * The loop is reached only through struct task_loop, so this file knows
 * nothing of libwebsockets; the helper implements it.
 */
#ifndef COMPANION_TASK_H
#define COMPANION_TASK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define TASK_KILL_GRACE_MS 2000
#define TASK_READ_CHUNK    16384

struct task_loop {
    void *ud;
    /* Calls cb(arg) on the loop whenever fd is readable (or at EOF/error).
     * The loop owns fd from then on and closes it at unwatch. */
    void *(*watch_fd)(void *ud, int fd, void (*cb)(void *arg), void *arg);
    void (*unwatch_fd)(void *ud, void *handle);
    /* One-shot timer, freed when it fires: stop only timers that have not. */
    void *(*timer_start)(void *ud, int64_t delay_ms, void (*cb)(void *arg), void *arg);
    void (*timer_stop)(void *ud, void *handle);
    int64_t (*now_ms)(void *ud);
    /* A task's process group began / is gone (may be NULL): lets the owner
     * make sure it dies with the owner, whatever happens to the owner. */
    void (*group_started)(void *ud, pid_t pgid);
    void (*group_ended)(void *ud, pid_t pgid);
};

struct task_spec {
    const char *command;
    const char *const *args; /* n_args strings */
    size_t n_args;
    const char *cwd;        /* absolute, already confined by the caller */
    const char *const *env; /* "NAME=value" added to the helper's environment */
    size_t n_env;
    int timeout_s;
    int64_t max_output_bytes;
};

enum task_stream { TASK_STDOUT = 0, TASK_STDERR = 1 };

struct task_result {
    int exit_code; /* -1 when ended by a signal or never started */
    int signal;    /* 0, or the signal that ended the leader */
    int64_t duration_ms;
    int truncated;
    int timed_out;
    int cancelled;
};

struct task_events {
    /* text is valid UTF-8, len > 0, not NUL-terminated. */
    void (*output)(void *ud, enum task_stream stream, const char *text, size_t len);
    /* Called once; the task may be freed from here. */
    void (*finished)(void *ud, const struct task_result *r);
};

struct task;

/* Spawns the task. NULL with err set when it cannot start (no such command,
 * bad cwd): nothing is left running then. */
struct task *task_start(const struct task_loop *loop, const struct task_spec *spec,
                        const struct task_events *ev, void *ev_ud, char *err, size_t errlen);
/* SIGTERM to the group now, SIGKILL after the grace period; finished() still
 * comes, with cancelled set. */
void task_cancel(struct task *t);
/* Stops reporting (the owner is gone), kills the whole group at once with
 * SIGKILL, and frees the task once the leader is reaped. No callback runs
 * after this returns. */
void task_abandon(struct task *t);
/* Frees a finished task (only after finished() ran). */
void task_free(struct task *t);
pid_t task_pid(const struct task *t);

#endif
