/*
 * fs_write: fs.write and fs.delete (see fs_write.h). Which folder and which
 * directory is folder.c's business: the target's directory is resolved with
 * folder_resolve, and only its last component is handled here, by name in
 * that directory, never followed.
 */
/* renameat2: _GNU_SOURCE comes from the build. */
#include "workspace/fs_write.h"
#include "workspace/folder.h"
#include "workspace/utf8.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define TEMP_TRIES 8

/* ---- hashing ------------------------------------------------------------ */

static void hex_of(const unsigned char *d, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[d[i] >> 4];
        out[2 * i + 1] = digits[d[i] & 15];
    }
    out[2 * n] = '\0';
}

int fs_sha256_rest(const void *buf, size_t len, int fd, char out[FS_SHA256_HEX])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char chunk[65536];
    long long total = (long long)len;
    int rc = -1;
    out[0] = '\0';
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
        goto out;
    if (total > FS_HASH_MAX_BYTES) {
        rc = 1;
        goto out;
    }
    if (len && EVP_DigestUpdate(ctx, buf, len) != 1)
        goto out;
    for (;;) {
        if (fd < 0)
            break;
        ssize_t r = read(fd, chunk, sizeof(chunk));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            goto out;
        if (r == 0)
            break;
        total += r;
        if (total > FS_HASH_MAX_BYTES) {
            rc = 1;
            goto out;
        }
        if (EVP_DigestUpdate(ctx, chunk, (size_t)r) != 1)
            goto out;
    }
    if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1)
        goto out;
    hex_of(md, mdlen, out);
    rc = 0;
out:
    EVP_MD_CTX_free(ctx);
    return rc;
}

/* ---- arguments ---------------------------------------------------------- */

int fs_write_path_protected(const char *rel)
{
    for (const char *c = rel; *c;) {
        size_t n = strcspn(c, "/");
        if ((n == 4 && strncasecmp(c, ".git", 4) == 0) ||
            (n == 7 && strncasecmp(c, ".vscode", 7) == 0))
            return 1;
        c += n;
        if (*c == '/')
            c++;
    }
    return 0;
}

/* Every member of args must be one of `known` (NULL-terminated). */
static int only_known(json_object *args, const char *const *known, struct cmd_result *res)
{
    json_object_object_foreach(args, key, val)
    {
        (void)val;
        size_t i = 0;
        while (known[i] && strcmp(known[i], key) != 0)
            i++;
        if (!known[i]) {
            char shown[48];
            snprintf(shown, sizeof(shown), "%s", key);
            cmd_fail(res, "INVALID_ARGS", "args.%s: unknown member", shown);
            return -1;
        }
    }
    return 0;
}

/* expectedSha256: absent, or 64 hex digits (lowercased into out). */
static int get_expected(json_object *args, char out[FS_SHA256_HEX], int *have,
                        struct cmd_result *res)
{
    json_object *v = cmd_arg(args, "expectedSha256");
    *have = 0;
    if (!v)
        return 0;
    const char *s = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
    size_t n = s ? (size_t)json_object_get_string_len(v) : 0;
    int ok = s && n == FS_SHA256_HEX - 1;
    for (size_t i = 0; ok && i < n; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'F')
            c = (char)(c - 'A' + 'a');
        ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
        out[i] = c;
    }
    if (!ok) {
        cmd_fail(res, "INVALID_ARGS", "expectedSha256: expected 64 hexadecimal digits");
        return -1;
    }
    out[n] = '\0';
    *have = 1;
    return 0;
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Strict base64 (RFC 4648 alphabet, padding required, no whitespace) into a
 * malloc'd buffer. -1: not base64; -2: out of memory. */
static int b64_decode(const char *s, size_t n, unsigned char **out, size_t *out_len)
{
    if (n % 4)
        return -1;
    size_t pad = n && s[n - 1] == '=' ? (n > 1 && s[n - 2] == '=' ? 2 : 1) : 0;
    unsigned char *b = malloc(n / 4 * 3 + 1);
    if (!b)
        return -2;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        for (int k = 0; k < 4; k++) {
            int last = i + 4 == n;
            if (last && s[i + (size_t)k] == '=' && (size_t)k >= 4 - pad) {
                v[k] = 0;
                continue;
            }
            if ((v[k] = b64_value((unsigned char)s[i + (size_t)k])) < 0) {
                free(b);
                return -1;
            }
        }
        unsigned triple =
            (unsigned)v[0] << 18 | (unsigned)v[1] << 12 | (unsigned)v[2] << 6 | (unsigned)v[3];
        b[o++] = (unsigned char)(triple >> 16);
        b[o++] = (unsigned char)(triple >> 8);
        b[o++] = (unsigned char)triple;
    }
    *out = b;
    *out_len = o - pad;
    return 0;
}

/* content and encoding -> bytes (borrowed from args, or decoded into *owned). */
static int get_content(json_object *args, size_t max, const unsigned char **data, size_t *len,
                       unsigned char **owned, struct cmd_result *res)
{
    json_object *c = cmd_arg(args, "content"), *e = cmd_arg(args, "encoding");
    int base64 = 0;
    *owned = NULL;
    if (e) {
        const char *es = json_object_is_type(e, json_type_string) ? json_object_get_string(e) : "";
        if (strcmp(es, "base64") == 0)
            base64 = 1;
        else if (strcmp(es, "utf8") != 0) {
            cmd_fail(res, "INVALID_ARGS", "encoding: expected \"utf8\" or \"base64\"");
            return -1;
        }
    }
    if (!c) {
        cmd_fail(res, "INVALID_ARGS", "content: required");
        return -1;
    }
    if (!json_object_is_type(c, json_type_string)) {
        cmd_fail(res, "INVALID_ARGS", "content: expected a string");
        return -1;
    }
    const char *s = json_object_get_string(c);
    size_t n = (size_t)json_object_get_string_len(c);
    /* Base64's decoded size is known before decoding: no allocation for
     * what is refused anyway. */
    size_t decoded = base64 ? n / 4 * 3 : n;
    if (base64 && n >= 4 && n % 4 == 0)
        decoded -= (s[n - 1] == '=') + (s[n - 2] == '=');
    if (decoded > max) {
        cmd_fail(res, "CONTENT_TOO_LARGE",
                 "content: %zu bytes, more than limits.maxWriteBytes (%zu)", decoded, max);
        return -1;
    }
    if (!base64) {
        *data = (const unsigned char *)s;
        *len = n;
        return 0;
    }
    int rc = b64_decode(s, n, owned, len);
    if (rc == -2) {
        cmd_fail(res, "PROCESSING_ERROR", "out of memory");
        return -1;
    }
    if (rc < 0) {
        cmd_fail(res, "INVALID_ARGS", "content: not valid base64");
        return -1;
    }
    *data = *owned;
    return 0;
}

/* ---- the target --------------------------------------------------------- */

/* What both commands resolve: the directory holding the name, open. */
struct target {
    const struct workspace_folder *f;
    char *norm;               /* the client's path, normalized; owned */
    struct folder_target dir; /* the directory (folder_resolve) */
    int dfd;                  /* the directory opened for reading (fsync); owned */
    const char *name;         /* the last component, inside norm */
    struct stat st;           /* of name, when exists */
    int exists;
};

static void target_close(struct target *t)
{
    folder_target_close(&t->dir);
    if (t->dfd >= 0)
        close(t->dfd);
    free(t->norm);
    t->norm = NULL;
    t->dfd = -1;
}

/* 1 when the directory the walk reached lies under a .git or .vscode
 * component of the folder (followed links included): its name as the kernel
 * knows it, relative to the folder's real path. */
static int dir_protected(const struct workspace_folder *f, const struct folder_target *d)
{
    char real[PATH_MAX];
    char *root = realpath(f->path, NULL);
    int prot = 1; /* unknown is refused */
    if (root && folder_target_path(d, real, sizeof(real)) == 0 && folder_path_inside(root, real)) {
        size_t n = strcmp(root, "/") == 0 ? 0 : strlen(root);
        prot = fs_write_path_protected(real + n);
    }
    free(root);
    return prot;
}

/* A name that does not exist yet but is one of the private paths: its
 * directory is the same (device and inode) and the names are equal. */
static int private_name(const struct workspace_folder *f, int dfd, const char *name)
{
    struct stat dst;
    if (!f->priv || fstat(dfd, &dst) != 0)
        return !!f->priv; /* unknown is refused */
    for (size_t i = 0; i < f->priv->n; i++) {
        const char *p = f->priv->paths[i];
        const char *slash = strrchr(p, '/');
        char dir[PATH_MAX];
        struct stat pst;
        if (!slash || strcmp(slash + 1, name) != 0 || (size_t)(slash - p) >= sizeof(dir))
            continue;
        memcpy(dir, p, (size_t)(slash - p));
        dir[slash - p] = '\0';
        if (stat(dir[0] ? dir : "/", &pst) == 0 && pst.st_dev == dst.st_dev &&
            pst.st_ino == dst.st_ino)
            return 1;
    }
    return 0;
}

static enum cmd_status target_open(const struct workspace_folder *folders, size_t n_folders,
                                   json_object *args, struct target *t, struct cmd_result *res)
{
    const char *path;
    memset(t, 0, sizeof(*t));
    t->dir.fd = t->dir.parent = t->dfd = -1;
    if (folder_arg_path(args, NULL, &path, res) != 0)
        return CMD_ERROR;
    if (!(t->f = folder_pick(folders, n_folders, args, res)))
        return CMD_ERROR;
    if (!(t->norm = folder_normalize(path)))
        return cmd_fail(res, "PROCESSING_ERROR", "out of memory");
    if (strcmp(t->norm, ".") == 0)
        return cmd_fail(res, "INVALID_ARGS", "path: must name a file, not the folder");
    if (fs_write_path_protected(t->norm))
        return folder_fail_path(res, "FORBIDDEN", t->norm,
                                "inside .git or .vscode: never written by clients");
    char *slash = strrchr(t->norm, '/');
    t->name = slash ? slash + 1 : t->norm;
    if (strlen(t->name) > NAME_MAX)
        return folder_fail(res, FOLDER_E_TOO_LONG, t->norm);
    enum folder_err e;
    if (slash) {
        *slash = '\0';
        e = folder_resolve(t->f, t->norm, &t->dir);
        *slash = '/';
    } else {
        e = folder_resolve(t->f, ".", &t->dir);
    }
    if (e == FOLDER_OK && t->dir.parent >= 0) /* a file where a directory should be */
        e = FOLDER_E_NOT_FOUND;
    if (e != FOLDER_OK)
        return folder_fail(res, e, t->norm);
    if (dir_protected(t->f, &t->dir))
        return folder_fail_path(res, "FORBIDDEN", t->norm,
                                "inside .git or .vscode: never written by clients");
    t->dfd = openat(t->dir.fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (t->dfd < 0)
        return folder_fail_errno(res, errno, t->norm);
    if (fstatat(t->dfd, t->name, &t->st, AT_SYMLINK_NOFOLLOW) == 0) {
        struct folder_private_set priv;
        t->exists = 1;
        folder_private_load(t->f, &priv);
        if (folder_private_has(&priv, &t->st))
            return folder_fail(res, FOLDER_E_PRIVATE, t->norm);
        if (S_ISLNK(t->st.st_mode))
            return folder_fail_path(res, "FORBIDDEN", t->norm,
                                    "is a symbolic link: never written or deleted through");
        if (S_ISDIR(t->st.st_mode))
            return folder_fail_path(res, "INVALID_ARGS", t->norm, "is a directory");
        if (!S_ISREG(t->st.st_mode))
            return folder_fail_path(res, "FORBIDDEN", t->norm, "not a regular file");
    } else if (errno != ENOENT) {
        return folder_fail_errno(res, errno, t->norm);
    } else if (private_name(t->f, t->dfd, t->name)) {
        return folder_fail(res, FOLDER_E_PRIVATE, t->norm);
    }
    return CMD_OK;
}

/* The current content's hash, for expectedSha256: opened by name without
 * following, and it must be the inode the target was checked on. `hex` is
 * "" when the file is too large to hash. */
static enum cmd_status current_hash(struct target *t, char hex[FS_SHA256_HEX],
                                    struct cmd_result *res)
{
    int fd = openat(t->dfd, t->name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    struct stat st;
    if (fd < 0)
        return folder_fail(res, errno == ELOOP ? FOLDER_E_CHANGED : FOLDER_E_ACCESS, t->norm);
    if (fstat(fd, &st) != 0 || st.st_dev != t->st.st_dev || st.st_ino != t->st.st_ino) {
        close(fd);
        return folder_fail(res, FOLDER_E_CHANGED, t->norm);
    }
    int rc = fs_sha256_rest(NULL, 0, fd, hex);
    close(fd);
    if (rc < 0)
        return folder_fail_path(res, "PROCESSING_ERROR", t->norm, "cannot be read");
    return CMD_OK;
}

/* CONFLICT with data.currentSha256 (NULL: the file is missing). */
static enum cmd_status conflict(struct cmd_result *res, const char *norm, const char *current,
                                const char *why)
{
    folder_fail_path(res, "CONFLICT", norm, why);
    res->data = json_object_new_object();
    json_object_object_add(res->data, "currentSha256",
                           current && current[0] ? json_object_new_string(current) : NULL);
    return CMD_ERROR;
}

/* Checks expectedSha256 against the file as it is now. */
static enum cmd_status check_expected(struct target *t, const char *expected,
                                      struct cmd_result *res)
{
    char cur[FS_SHA256_HEX];
    if (!t->exists)
        return conflict(res, t->norm, NULL, "does not exist (expectedSha256 was given)");
    if (current_hash(t, cur, res) != CMD_OK)
        return CMD_ERROR;
    if (!cur[0])
        return conflict(res, t->norm, NULL, "too large to compare with expectedSha256");
    if (strcmp(cur, expected) != 0)
        return conflict(res, t->norm, cur, "changed since (expectedSha256 does not match)");
    return CMD_OK;
}

/* ---- fs.write ----------------------------------------------------------- */

/* The process umask, without changing it (umask(2) would, for every thread). */
static mode_t current_umask(void)
{
    FILE *fp = fopen("/proc/self/status", "re");
    char line[128];
    unsigned m = 022;
    while (fp && fgets(line, sizeof(line), fp))
        if (sscanf(line, "Umask: %o", &m) == 1)
            break;
    if (fp)
        fclose(fp);
    return (mode_t)(m & 0777);
}

static int write_all(int fd, const unsigned char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* A new temporary file in the directory: its name into tmp. */
static int temp_create(int dfd, char *tmp, size_t len)
{
    for (int i = 0; i < TEMP_TRIES; i++) {
        unsigned char r[8];
        char hex[17];
        if (RAND_bytes(r, sizeof(r)) != 1)
            return -1;
        hex_of(r, sizeof(r), hex);
        snprintf(tmp, len, "%s%s.tmp", FS_WRITE_TEMP_PREFIX, hex);
        int fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    errno = EEXIST;
    return -1;
}

/* Renames tmp over name; a new file must not appear meanwhile. */
static int put_in_place(int dfd, const char *tmp, const char *name, int is_new)
{
    if (is_new) {
        if (renameat2(dfd, tmp, dfd, name, RENAME_NOREPLACE) == 0)
            return 0;
        if (errno != EINVAL && errno != ENOSYS)
            return -1;
        /* A file system without RENAME_NOREPLACE: link(2) is as exclusive. */
        if (linkat(dfd, tmp, dfd, name, 0) != 0)
            return -1;
        unlinkat(dfd, tmp, 0);
        return 0;
    }
    return renameat(dfd, tmp, dfd, name);
}

enum cmd_status fs_write(const struct workspace_folder *folders, size_t n_folders,
                         json_object *args, size_t max_bytes, struct cmd_result *res)
{
    static const char *const known[] = {"path",   "content", "encoding", "expectedSha256",
                                        "create", "folder",  NULL};
    const unsigned char *data = NULL;
    unsigned char *owned = NULL;
    size_t len = 0;
    char expected[FS_SHA256_HEX], sha[FS_SHA256_HEX], tmp[NAME_MAX + 1];
    int have_expected, create = 1, fd = -1, temp_made = 0;
    struct target t;
    memset(&t, 0, sizeof(t));
    t.dir.fd = t.dir.parent = t.dfd = -1;
    if (!args || !json_object_is_type(args, json_type_object))
        return cmd_fail(res, "INVALID_ARGS", "args: expected an object");
    if (only_known(args, known, res) != 0)
        return CMD_ERROR;
    json_object *cv = cmd_arg(args, "create");
    if (cv && !json_object_is_type(cv, json_type_boolean))
        return cmd_fail(res, "INVALID_ARGS", "create: expected a boolean");
    if (cv)
        create = json_object_get_boolean(cv);
    if (get_expected(args, expected, &have_expected, res) != 0 ||
        get_content(args, max_bytes, &data, &len, &owned, res) != 0)
        return CMD_ERROR;
    enum cmd_status rc = CMD_ERROR;
    if (target_open(folders, n_folders, args, &t, res) != CMD_OK)
        goto out;
    if (have_expected && check_expected(&t, expected, res) != CMD_OK)
        goto out;
    if (!t.exists && !create) {
        folder_fail_path(res, "NOT_FOUND", t.norm, "not found (create is false)");
        goto out;
    }
    if (t.exists) {
        /* Replacing a file the user may not write would bypass its mode. */
        int wfd = openat(t.dfd, t.name, O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        if (wfd < 0) {
            folder_fail(res, errno == ELOOP ? FOLDER_E_CHANGED : FOLDER_E_ACCESS, t.norm);
            goto out;
        }
        close(wfd);
    }
    if ((fd = temp_create(t.dfd, tmp, sizeof(tmp))) < 0) {
        folder_fail_errno(res, errno, t.norm);
        goto out;
    }
    temp_made = 1;
    mode_t mode = t.exists ? (t.st.st_mode & 0777) : (0644 & ~current_umask());
    if (write_all(fd, data, len) != 0 || fchmod(fd, mode) != 0 || fsync(fd) != 0) {
        folder_fail_path(res, "PROCESSING_ERROR", t.norm, "cannot be written");
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        folder_fail_path(res, "PROCESSING_ERROR", t.norm, "cannot be written");
        goto out;
    }
    fd = -1;
    /* Again just before the rename: the narrowest window there can be. */
    if (have_expected && check_expected(&t, expected, res) != CMD_OK)
        goto out;
    if (put_in_place(t.dfd, tmp, t.name, !t.exists) != 0) {
        if (errno == EEXIST)
            conflict(res, t.norm, NULL, "was created meanwhile by someone else");
        else
            folder_fail_errno(res, errno, t.norm);
        goto out;
    }
    temp_made = 0;
    fsync(t.dfd); /* the rename itself is durable; an error here changes nothing */
    if (fs_sha256_rest(data, len, -1, sha) != 0) {
        cmd_fail(res, "PROCESSING_ERROR", "cannot hash the content");
        goto out;
    }
    res->result = json_object_new_object();
    json_object_object_add(res->result, "path", utf8_json_string(t.norm));
    json_object_object_add(res->result, "bytes", json_object_new_int64((int64_t)len));
    json_object_object_add(res->result, "sha256", json_object_new_string(sha));
    json_object_object_add(res->result, "created", json_object_new_boolean(!t.exists));
    rc = CMD_OK;
out:
    if (fd >= 0)
        close(fd);
    if (temp_made)
        unlinkat(t.dfd, tmp, 0);
    target_close(&t);
    free(owned);
    return rc;
}

/* ---- fs.delete ---------------------------------------------------------- */

enum cmd_status fs_delete(const struct workspace_folder *folders, size_t n_folders,
                          json_object *args, struct cmd_result *res)
{
    static const char *const known[] = {"path", "expectedSha256", "folder", NULL};
    char expected[FS_SHA256_HEX];
    int have_expected;
    struct target t;
    memset(&t, 0, sizeof(t));
    t.dir.fd = t.dir.parent = t.dfd = -1;
    if (!args || !json_object_is_type(args, json_type_object))
        return cmd_fail(res, "INVALID_ARGS", "args: expected an object");
    if (only_known(args, known, res) != 0 || get_expected(args, expected, &have_expected, res) != 0)
        return CMD_ERROR;
    enum cmd_status rc = CMD_ERROR;
    if (target_open(folders, n_folders, args, &t, res) != CMD_OK)
        goto out;
    if (have_expected && check_expected(&t, expected, res) != CMD_OK)
        goto out;
    if (!t.exists) {
        folder_fail(res, FOLDER_E_NOT_FOUND, t.norm);
        goto out;
    }
    /* The same inode as checked: a name swapped meanwhile is not deleted. */
    struct stat now;
    if (fstatat(t.dfd, t.name, &now, AT_SYMLINK_NOFOLLOW) != 0 || now.st_dev != t.st.st_dev ||
        now.st_ino != t.st.st_ino) {
        folder_fail(res, FOLDER_E_CHANGED, t.norm);
        goto out;
    }
    if (unlinkat(t.dfd, t.name, 0) != 0) {
        folder_fail_errno(res, errno, t.norm);
        goto out;
    }
    fsync(t.dfd);
    res->result = json_object_new_object();
    json_object_object_add(res->result, "path", utf8_json_string(t.norm));
    json_object_object_add(res->result, "deleted", json_object_new_boolean(1));
    rc = CMD_OK;
out:
    target_close(&t);
    return rc;
}
