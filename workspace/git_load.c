/*
 * git_load: the git module, loaded on first use (see git_load.h).
 */
#include "workspace/git_load.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Where the module is, relative to the helper's own binary: beside it (the
 * build tree, the VSIX's bin/) or in the package's library folder. */
static const char *const module_dirs[] = {"", "/../lib/companion-helper"};

const struct git_ctx_api *git_load(char *err, size_t errlen)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0) {
        snprintf(err, errlen, "git support is unavailable: cannot find the helper's own path");
        return NULL;
    }
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (slash)
        *slash = '\0';
    const char *why = "not found";
    for (size_t i = 0; i < sizeof(module_dirs) / sizeof(module_dirs[0]); i++) {
        char path[PATH_MAX + 64];
        snprintf(path, sizeof(path), "%s%s/%s", self, module_dirs[i], GIT_LOAD_MODULE);
        if (access(path, R_OK) != 0)
            continue;
        /* RTLD_LOCAL: libgit2's symbols stay inside the module. */
        void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            why = "cannot be loaded (a library it needs is missing?)";
            continue;
        }
        const struct git_ctx_api *(*entry)(void) = NULL;
        *(void **)&entry = dlsym(h, GIT_CTX_API_SYMBOL);
        if (entry)
            return entry();
        why = "is not a Companion git module";
        dlclose(h);
    }
    snprintf(err, errlen, "git support is unavailable: %s %s", GIT_LOAD_MODULE, why);
    return NULL;
}
