/*
 * private_paths: the files and folders the helper must never serve, from
 * any workspace folder, whatever path or link leads there: the standalone
 * secret's folder ($XDG_CONFIG_HOME/companion: the secret, the bridge's
 * whatsapp.token and whatsapp-auth/, which is the WhatsApp account), the
 * state folder ($XDG_STATE_HOME/companion: device registries), the
 * extension's storage (initialize's privatePaths), and every file the
 * settings name as a key (auth.publicKeyPath, server.tls.keyFile) or that
 * holds them (serve's --config). The list goes to the workspace (workspace_set_private), which
 * hands it to every folder; folder.c refuses them by device and inode.
 *
 * Also warns, once per path, when a workspace folder contains one of them.
 */
#ifndef COMPANION_PRIVATE_PATHS_H
#define COMPANION_PRIVATE_PATHS_H

#include "core/log.h"
#include "core/settings.h"
#include <json-c/json.h>
#include "workspace/workspace.h"

struct private_paths {
    char *config_file; /* serve --config FILE, absolute; owned */
    char **extra;      /* from the editor (initialize's privatePaths); owned */
    size_t n_extra;
    char **warned; /* "folder\npath" pairs already warned about; owned */
    size_t n_warned;
};

void private_paths_free(struct private_paths *p);
/* Replaces the editor's list (absolute paths only; others are ignored). */
int private_paths_set_extra(struct private_paths *p, json_object *arr);
/* Recomputes the list from p, the settings and the environment, gives it to
 * ws and warns about folders holding any of them. Returns 0 or -1 (out of
 * memory: the previous list stays). */
int private_paths_apply(struct private_paths *p, const struct settings *st, struct workspace *ws,
                        struct logger *log);

#endif
