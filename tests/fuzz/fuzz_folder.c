/*
 * Folder confinement (workspace/folder.c) beneath every command: fuzzed
 * relative paths resolved in a workspace whose neighbourhood holds files
 * outside and a private folder inside (the helper's own secrets), with
 * links to both; and fuzzed absolute paths mapped back to a folder
 * (folder_relative, as editor diagnostics and saved-file events use it).
 * A resolution that ends outside the folder or in the private folder, or a
 * relative path with a `..` component, aborts.
 */
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "workspace/folder.h"

static char base[64], root[256], priv[300];
static struct workspace ws;

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        abort();
    fputs(text, f);
    fclose(f);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char p[512], t[512];
    snprintf(base, sizeof(base), "/tmp/companion-fuzz-folder-XXXXXX");
    if (!mkdtemp(base))
        abort();
    snprintf(root, sizeof(root), "%s/ws", base);
    mkdir(root, 0700);
    snprintf(p, sizeof(p), "%s/outside.txt", base);
    put(p, "OUTSIDE");
    snprintf(priv, sizeof(priv), "%s/.config", root);
    mkdir(priv, 0700);
    snprintf(p, sizeof(p), "%s/secret", priv);
    put(p, "SECRET");
    snprintf(p, sizeof(p), "%s/a", root);
    mkdir(p, 0700);
    snprintf(p, sizeof(p), "%s/a/in.txt", root);
    put(p, "inside");
    static const char *const links[][2] = {
        {"up", ".."},       {"out", "../outside.txt"},      {"a/back", "../.."},
        {"cfg", ".config"}, {"a/cfg", "../.config/secret"}, {"loop", "loop"},
        {"a/self", "."},
    };
    for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", root, links[i][0]);
        if (symlink(links[i][1], p) < 0)
            abort();
    }
    snprintf(p, sizeof(p), "%s/abs", root);
    snprintf(t, sizeof(t), "%s/outside.txt", base);
    if (symlink(t, p) < 0)
        abort();
    snprintf(p, sizeof(p), "%s/abs-priv", root);
    snprintf(t, sizeof(t), "%s/secret", priv);
    if (symlink(t, p) < 0)
        abort();
    snprintf(p, sizeof(p), "%s/hard", root);
    if (link(t, p) < 0)
        abort();
    workspace_init(&ws);
    char err[256];
    if (workspace_open_dir(&ws, root, err, sizeof(err)) < 0)
        abort();
    const char *private_paths[] = {priv, t};
    if (workspace_set_private(&ws, private_paths, 2) < 0)
        abort();
    return 0;
}

static void check_resolve(const char *rel, size_t len)
{
    struct cmd_result res = {0};
    if (folder_check_path(rel, len, &res) != 0)
        return;
    struct folder_target t;
    if (folder_resolve(&ws.folders[0], rel, &t) != FOLDER_OK)
        return;
    char real[PATH_MAX];
    if (folder_target_path(&t, real, sizeof(real)) == 0) {
        if (!folder_path_inside(ws.folders[0].path, real))
            abort(); /* escaped the folder */
        if (folder_path_inside(priv, real))
            abort(); /* reached the private folder */
    }
    struct folder_private_set set;
    folder_private_load(&ws.folders[0], &set);
    if (folder_private_has(&set, &t.st))
        abort();
    folder_target_close(&t);
}

static void check_relative(const char *abs)
{
    char rel[PATH_MAX];
    if (folder_relative(ws.folders, ws.n_folders, abs, rel, sizeof(rel)) < 0)
        return;
    if (rel[0] == '/')
        abort();
    for (const char *c = rel; *c;) {
        size_t n = strcspn(c, "/");
        if (n == 2 && c[0] == '.' && c[1] == '.')
            abort();
        c += n;
        if (*c == '/')
            c++;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 2048)
        return 0;
    char *s = strndup((const char *)data, size);
    if (!s)
        return 0;
    check_resolve(s, size);
    char abs[4200];
    snprintf(abs, sizeof(abs), "%s/%s", root, s);
    check_relative(abs);
    check_relative(s);
    free(s);
    return 0;
}
