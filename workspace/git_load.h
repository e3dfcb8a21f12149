/*
 * git_load: finds and loads the git module (companion-git.so: git_ctx.c with
 * libgit2) the first time a git command runs. Start-up then pays for none
 * of libgit2's 15 libraries (4 ms and 1.3 MB here), and neither does a
 * helper that never runs a git command.
 */
#ifndef COMPANION_GIT_LOAD_H
#define COMPANION_GIT_LOAD_H

#include <stddef.h>

#include "workspace/git_ctx.h"

#define GIT_LOAD_MODULE "companion-git.so"

/* The module's functions, or NULL with err set. Not thread-safe: the
 * worker pool calls it under its git mutex. The module stays loaded. */
const struct git_ctx_api *git_load(char *err, size_t errlen);

#endif
