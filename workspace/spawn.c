/*
 * spawn: posix_spawn in a process group of its own (see spawn.h).
 */
#include "workspace/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

extern char **environ;

/* environ plus the child's own variables, which win over inherited ones. */
static char **build_env(const struct spawn_spec *spec)
{
    size_t n = 0;
    while (environ && environ[n])
        n++;
    char **env = calloc(n + spec->n_env + 1, sizeof(char *));
    if (!env)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(environ[i], '=');
        size_t nl = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
        int overridden = 0;
        for (size_t j = 0; j < spec->n_env && !overridden; j++)
            overridden = strncmp(spec->env[j], environ[i], nl) == 0 && spec->env[j][nl] == '=';
        if (!overridden)
            env[k++] = environ[i];
    }
    for (size_t j = 0; j < spec->n_env; j++)
        env[k++] = (char *)spec->env[j];
    env[k] = NULL;
    return env;
}

static void close_pair(int p[2])
{
    for (int i = 0; i < 2; i++)
        if (p[i] >= 0) {
            close(p[i]);
            p[i] = -1;
        }
}

int spawn_group(const struct spawn_spec *spec, struct spawn_result *out, char *err, size_t errlen)
{
    char **argv = calloc(spec->n_args + 2, sizeof(char *));
    char **env = build_env(spec);
    int inp[2] = {-1, -1}, outp[2] = {-1, -1}, errp[2] = {-1, -1};
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    int fa_ok = 0, attr_ok = 0, rc = -1;
    memset(out, 0, sizeof(*out));
    out->in_fd = out->out_fd = out->err_fd = out->pidfd = -1;
    if (!argv || !env || (spec->stdin_pipe && pipe2(inp, O_CLOEXEC) < 0) ||
        pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
        snprintf(err, errlen, "cannot start %s: %s", spec->command,
                 strerror(errno ? errno : ENOMEM));
        goto out;
    }
    argv[0] = (char *)spec->command;
    for (size_t i = 0; i < spec->n_args; i++)
        argv[i + 1] = (char *)spec->args[i];

    fa_ok = posix_spawn_file_actions_init(&fa) == 0;
    attr_ok = posix_spawnattr_init(&attr) == 0;
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    if (!fa_ok || !attr_ok ||
        (spec->stdin_pipe
             ? posix_spawn_file_actions_adddup2(&fa, inp[0], 0)
             : posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)) != 0 ||
        posix_spawn_file_actions_adddup2(&fa, outp[1], 1) != 0 ||
        posix_spawn_file_actions_adddup2(&fa, errp[1], 2) != 0 ||
        posix_spawn_file_actions_addchdir_np(&fa, spec->cwd) != 0 ||
        /* Nothing else the helper holds reaches the child, not even an fd
         * it inherited without close-on-exec from whoever started it. */
        posix_spawn_file_actions_addclosefrom_np(&fa, 3) != 0 ||
        /* Own group for the whole tree; default signal handling and an empty
         * mask, since the helper blocks and ignores some signals. */
        posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                            POSIX_SPAWN_SETSIGDEF) != 0 ||
        posix_spawnattr_setpgroup(&attr, 0) != 0 || posix_spawnattr_setsigmask(&attr, &none) != 0 ||
        posix_spawnattr_setsigdefault(&attr, &all) != 0) {
        snprintf(err, errlen, "cannot prepare %s", spec->command);
        goto out;
    }
    int e = posix_spawnp(&out->pid, spec->command, &fa, &attr, argv, env);
    if (e != 0) {
        out->pid = 0;
        if (e == ENOENT)
            snprintf(err, errlen, "command not found: %s", spec->command);
        else if (e == EACCES)
            snprintf(err, errlen, "command not executable: %s", spec->command);
        else
            snprintf(err, errlen, "cannot start %s: %s", spec->command, strerror(e));
        goto out;
    }
    if (spec->stdin_pipe) {
        out->in_fd = inp[1];
        inp[1] = -1;
        fcntl(out->in_fd, F_SETFL, O_NONBLOCK);
    }
    out->out_fd = outp[0];
    out->err_fd = errp[0];
    outp[0] = errp[0] = -1;
    fcntl(out->out_fd, F_SETFL, O_NONBLOCK);
    fcntl(out->err_fd, F_SETFL, O_NONBLOCK);
    out->pidfd = (int)syscall(SYS_pidfd_open, out->pid, 0);
    rc = 0;
out:
    close_pair(inp);
    close_pair(outp);
    close_pair(errp);
    if (fa_ok)
        posix_spawn_file_actions_destroy(&fa);
    if (attr_ok)
        posix_spawnattr_destroy(&attr);
    free(argv);
    free(env);
    return rc;
}
