/*
 * Path confinement: fs.read and fs.list with fuzzed paths in a workspace
 * whose neighbourhood holds a marker file and links that lead to it. Any
 * answer that carries the marker, or any success for a path that names
 * something outside, is a confinement failure and aborts. fs.write and
 * fs.delete get the same paths: the folder above the workspace must keep
 * exactly its two entries and the marker its content, and nothing may be
 * written under `.git`.
 */
#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "workspace/fs.h"
#include "workspace/fs_write.h"

static char root[256];
static char base_dir[256];
static struct workspace_folder folder;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char base[] = "/tmp/companion-fuzz-fs-XXXXXX";
    if (!mkdtemp(base))
        abort();
    char p[512];
    snprintf(root, sizeof(root), "%s/ws", base);
    snprintf(base_dir, sizeof(base_dir), "%s", base);
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
    snprintf(p, sizeof(p), "%s/.git", root);
    mkdir(p, 0700);
    snprintf(p, sizeof(p), "%s/g", root);
    if (symlink(".git", p) < 0)
        abort();
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
    } else if (strstr(res->message, base_dir) && !strstr(input, base_dir)) {
        abort(); /* the workspace's real location, which the client did not send */
    }
}

/* The client's path as answers echo it: runs of '/' made one ("a//b" is
 * named "a/b" in a message), so only the real location counts as a leak. */
static char *echo_form(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    size_t n = 0;
    if (!s)
        return NULL;
    for (size_t i = 0; i < size; i++)
        if (data[i] != '/' || n == 0 || s[n - 1] != '/')
            s[n++] = (char)data[i];
    s[n] = '\0';
    return s;
}

/* The neighbourhood is as it was: two entries, the marker intact, .git empty. */
static void check_outside(void)
{
    char p[512], buf[64] = "";
    size_t n = 0;
    DIR *d = opendir(base_dir);
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    if (d)
        closedir(d);
    snprintf(p, sizeof(p), "%s/outside.txt", base_dir);
    FILE *f = fopen(p, "r");
    if (n != 2 || !f || !fgets(buf, sizeof(buf), f) || strcmp(buf, "OUTSIDE-MARKER\n") != 0)
        abort();
    fclose(f);
    snprintf(p, sizeof(p), "%s/.git", root);
    n = 0;
    d = opendir(p);
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    if (!d || n != 0)
        abort();
    closedir(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1024)
        return 0;
    json_object *args = json_object_new_object();
    json_object_object_add(args, "path", json_object_new_string_len((const char *)data, (int)size));
    json_object_object_add(args, "maxBytes", json_object_new_int(64));
    char *input = echo_form(data, size);
    struct cmd_result res;
    memset(&res, 0, sizeof(res));
    check(&res, fs_read(&folder, 1, args, &res), input ? input : "");
    memset(&res, 0, sizeof(res));
    check(&res, fs_list(&folder, 1, args, &res), input ? input : "");
    json_object_object_del(args, "maxBytes");
    memset(&res, 0, sizeof(res));
    json_object_object_add(args, "content", json_object_new_string("FUZZ-WRITTEN"));
    check(&res, fs_write(&folder, 1, args, 1024, &res), input ? input : "");
    json_object_put(res.data);
    json_object_object_del(args, "content");
    memset(&res, 0, sizeof(res));
    check(&res, fs_delete(&folder, 1, args, &res), input ? input : "");
    json_object_put(res.data);
    check_outside();
    free(input);
    json_object_put(args);
    return 0;
}
