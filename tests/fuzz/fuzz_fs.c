/*
 * Path confinement: fs.read and fs.list with fuzzed paths in a workspace
 * whose neighbourhood holds a marker file and links that lead to it. Any
 * answer that carries the marker, or any success for a path that names
 * something outside, is a confinement failure and aborts.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "workspace/fs.h"

static char root[256];
static struct workspace_folder folder;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char base[] = "/tmp/companion-fuzz-fs-XXXXXX";
    if (!mkdtemp(base))
        abort();
    char p[512];
    snprintf(root, sizeof(root), "%s/ws", base);
    mkdir(root, 0700);
    snprintf(p, sizeof(p), "%s/outside.txt", base);
    FILE *f = fopen(p, "w");
    fputs("OUTSIDE-MARKER\n", f);
    fclose(f);
    snprintf(p, sizeof(p), "%s/a", root);
    mkdir(p, 0700);
    snprintf(p, sizeof(p), "%s/a/in.txt", root);
    f = fopen(p, "w");
    fputs("inside\n", f);
    fclose(f);
    snprintf(p, sizeof(p), "%s/up", root);
    if (symlink("..", p) < 0)
        abort();
    snprintf(p, sizeof(p), "%s/out", root);
    if (symlink("../outside.txt", p) < 0)
        abort();
    snprintf(p, sizeof(p), "%s/abs", root);
    char target[512];
    snprintf(target, sizeof(target), "%s/outside.txt", base);
    if (symlink(target, p) < 0)
        abort();
    snprintf(p, sizeof(p), "%s/a/loop", root);
    if (symlink("loop", p) < 0)
        abort();
    snprintf(p, sizeof(p), "%s/fifo", root);
    mkfifo(p, 0600);
    folder.name = "ws";
    folder.path = root;
    return 0;
}

/* What would show an escape: the marker in read content, or a listing of
 * the folder above the workspace (its entries are "outside.txt" and "ws").
 * The client's own path is echoed in answers, so only these fields count. */
static void check(struct cmd_result *res, enum cmd_status st, const char *input)
{
    if (st == CMD_OK) {
        json_object *v = NULL, *entries = NULL;
        if (json_object_object_get_ex(res->result, "content", &v) &&
            strstr(json_object_get_string(v), "OUTSIDE-MARKER"))
            abort();
        if (json_object_object_get_ex(res->result, "entries", &entries)) {
            for (size_t i = 0; i < json_object_array_length(entries); i++) {
                json_object *e = json_object_array_get_idx(entries, i), *name = NULL;
                if (json_object_object_get_ex(e, "name", &name) &&
                    (!strcmp(json_object_get_string(name), "outside.txt") ||
                     !strcmp(json_object_get_string(name), "ws")))
                    abort();
            }
        }
        json_object_put(res->result);
    } else if (strstr(res->message, "/tmp/companion-fuzz") &&
               !strstr(input, "/tmp/companion-fuzz")) {
        abort(); /* an absolute path the client did not send */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1024)
        return 0;
    json_object *args = json_object_new_object();
    json_object_object_add(args, "path", json_object_new_string_len((const char *)data, (int)size));
    json_object_object_add(args, "maxBytes", json_object_new_int(64));
    char *input = strndup((const char *)data, size);
    struct cmd_result res;
    memset(&res, 0, sizeof(res));
    check(&res, fs_read(&folder, 1, args, &res), input ? input : "");
    memset(&res, 0, sizeof(res));
    check(&res, fs_list(&folder, 1, args, &res), input ? input : "");
    free(input);
    json_object_put(args);
    return 0;
}
