/*
 * spawn: starting a child the helper supervises (a task, an agent) the one
 * way: argv (never a shell), its own process group, default signal
 * handling and an empty mask, no file descriptor but its three standard
 * ones (not even one the helper inherited without close-on-exec), in a
 * given folder, with the helper's environment plus its own variables.
 * stdin is /dev/null or a pipe; stdout and stderr are pipes. The parent's
 * ends come back non-blocking and close-on-exec, with a pidfd to see the
 * end. Synchronous and short: posix_spawn.
 *
 * Ownership: on success the caller owns every fd in the result.
 */
#ifndef COMPANION_SPAWN_H
#define COMPANION_SPAWN_H

#include <stddef.h>
#include <sys/types.h>

struct spawn_spec {
    const char *command;
    const char *const *args; /* n_args strings, argv[1..] */
    size_t n_args;
    const char *cwd;        /* absolute, already confined by the caller */
    const char *const *env; /* "NAME=value" that override the helper's */
    size_t n_env;
    int stdin_pipe; /* 0: /dev/null */
};

struct spawn_result {
    pid_t pid; /* also the process group */
    int in_fd; /* write end of stdin, -1 with /dev/null */
    int out_fd, err_fd;
    int pidfd; /* -1 when pidfd_open is unavailable */
};

/* Returns 0, or -1 with err ("command not found: x", ...). */
int spawn_group(const struct spawn_spec *spec, struct spawn_result *out, char *err, size_t errlen);

#endif
