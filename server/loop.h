/*
 * loop: the one event loop of the process, with nothing of libwebsockets in
 * its interface. It owns the lws context (on a libev loop, epoll, when the
 * evlib plugin is there), fd watchers for raw descriptors (stdin, stdout,
 * pidfds, signalfds, task pipes, inotify), reusable timers that fire on
 * time, the wake-up other threads may call, and the way out: a hard
 * deadline after which loop_run returns whatever is still busy.
 *
 * Ownership: loop_new returns a loop the caller frees with loop_free (after
 * the server built on it). A watched fd belongs to the loop from
 * loop_fd_watch on and is closed by it; watchers and timers are freed by
 * loop_fd_close / loop_timer_free (or with the loop).
 */
#ifndef COMPANION_LOOP_H
#define COMPANION_LOOP_H

#include <stddef.h>
#include <stdint.h>

struct loop;
struct loop_fd;
struct loop_timer;
struct logger;

/* NULL with err set when no loop can be made. `log` is borrowed. */
struct loop *loop_new(struct logger *log, char *err, size_t errlen);
void loop_free(struct loop *l);

/* Runs until loop_stop() (or the exit deadline). */
void loop_run(struct loop *l);
/* loop_run returns after the current turn. */
void loop_stop(struct loop *l);
/* loop_run returns at most ms from now, even if some descriptor keeps the
 * loop busy on every turn. */
void loop_stop_within(struct loop *l, int64_t ms);

/* cb(ud) runs on the loop thread after any thread called loop_wake. */
void loop_set_wake(struct loop *l, void (*cb)(void *ud), void *ud);
/* Thread-safe. */
void loop_wake(struct loop *l);

/* ---- descriptors ---- */

enum loop_event {
    LOOP_READABLE = 1u << 0,
    LOOP_WRITABLE = 1u << 1, /* after loop_fd_want_write, once */
    LOOP_HANGUP = 1u << 2,   /* the other end is gone (a pipe's writer, a socket) */
};

/* Watches fd (the loop owns it from now on: it is closed with the
 * watcher). cb(arg, events) runs on readability, on requested writability,
 * and on a hang-up: then with LOOP_READABLE | LOOP_HANGUP, again and again
 * (bounded) until the owner has read what is left and calls loop_fd_close.
 * NULL on failure (fd is then still the caller's). */
struct loop_fd *loop_fd_watch(struct loop *l, int fd, void (*cb)(void *arg, unsigned events),
                              void *arg);
void loop_fd_want_write(struct loop_fd *w);
/* Stops watching and closes the fd; safe inside its own callback (cb is not
 * called again). */
void loop_fd_close(struct loop_fd *w);
/* The same, closing the descriptor before returning (not from inside its own
 * callback): a listening socket must be free when this returns. */
void loop_fd_close_now(struct loop_fd *w);

/* ---- timers ---- */

/* A timer that can be armed again and again; cb(arg) runs once per arming. */
struct loop_timer *loop_timer_new(struct loop *l, void (*cb)(void *arg), void *arg);
/* (Re)arms it to fire in delay_ms (0 or less: on the next turn). */
void loop_timer_arm(struct loop_timer *t, int64_t delay_ms);
void loop_timer_cancel(struct loop_timer *t);
int loop_timer_armed(const struct loop_timer *t);
void loop_timer_free(struct loop_timer *t);

#endif
