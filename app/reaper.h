/*
 * reaper: makes sure no task outlives the helper, even when the helper is
 * killed with SIGKILL and cannot clean up. A small process (this binary with
 * --reap), started with the server, reads "+PGID" / "-PGID" lines from a
 * pipe; when the
 * pipe reaches end-of-file, because the helper exited or died, it sends
 * SIGKILL to every group still listed and exits.
 */
#ifndef COMPANION_REAPER_H
#define COMPANION_REAPER_H

#include <sys/types.h>

#define REAPER_FD 3

/* Starts the reaper; returns the pipe's write end (-1 if it could not start:
 * tasks then only have the helper's own cleanup). */
int reaper_start(void);
/* The reaper itself (`companion-helper --reap`): reads fd until EOF, then
 * kills what is listed. Returns the exit code. */
int reaper_run(int fd);
/* Records or forgets a task's process group. Never blocks. */
void reaper_track(int fd, pid_t pgid);
void reaper_untrack(int fd, pid_t pgid);

#endif
