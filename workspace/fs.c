/*
 * fs: fs.list and fs.read (see fs.h). Which folder and which file is
 * folder.c's business: every path here has been through folder_open.
 */
#include "workspace/fs.h"
#include "workspace/folder.h"
#include "workspace/fs_write.h"
#include "workspace/utf8.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- fs.list ------------------------------------------------------------ */

/* The FS_LIST_MAX_ENTRIES smallest names, kept as a max-heap so a directory
 * of any size costs bounded memory and the reply is the start of the sorted
 * listing, the same on every call. */
struct name_heap {
    char **v;
    size_t n, cap;
};

static void heap_sift_down(struct name_heap *h, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->n && strcmp(h->v[l], h->v[m]) > 0)
            m = l;
        if (r < h->n && strcmp(h->v[r], h->v[m]) > 0)
            m = r;
        if (m == i)
            return;
        char *tmp = h->v[i];
        h->v[i] = h->v[m];
        h->v[m] = tmp;
        i = m;
    }
}

static int heap_offer(struct name_heap *h, const char *name)
{
    if (h->n < h->cap) {
        char *s = strdup(name);
        if (!s)
            return -1;
        size_t i = h->n++;
        h->v[i] = s;
        while (i > 0 && strcmp(h->v[(i - 1) / 2], h->v[i]) < 0) {
            char *tmp = h->v[i];
            h->v[i] = h->v[(i - 1) / 2];
            h->v[(i - 1) / 2] = tmp;
            i = (i - 1) / 2;
        }
        return 0;
    }
    if (h->n == 0 || strcmp(name, h->v[0]) >= 0)
        return 0;
    char *s = strdup(name);
    if (!s)
        return -1;
    free(h->v[0]);
    h->v[0] = s;
    heap_sift_down(h, 0);
    return 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* NULL for an entry that is gone or private (left out of the listing). */
static json_object *entry_json(int dfd, const char *name, const struct folder_private_set *priv)
{
    struct stat st;
    const char *type = "other";
    int64_t size = 0;
    /* Never followed: a symlink is reported as itself, whatever it points to. */
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT)
            return NULL; /* removed since readdir */
    } else if (folder_private_has(priv, &st)) {
        return NULL;
    } else if (S_ISLNK(st.st_mode)) {
        type = "symlink";
        size = (int64_t)st.st_size;
    } else if (S_ISDIR(st.st_mode)) {
        type = "dir";
    } else if (S_ISREG(st.st_mode)) {
        type = "file";
        size = (int64_t)st.st_size;
    }
    json_object *e = json_object_new_object();
    json_object_object_add(e, "name", utf8_json_string(name));
    json_object_object_add(e, "type", json_object_new_string(type));
    json_object_object_add(e, "size", json_object_new_int64(size));
    return e;
}

enum cmd_status fs_list(const struct workspace_folder *folders, size_t n_folders, json_object *args,
                        struct cmd_result *res)
{
    struct folder_target t;
    struct folder_private_set priv;
    const struct workspace_folder *f;
    char *norm;
    if (folder_open(folders, n_folders, args, ".", &t, &norm, &f, res) != CMD_OK)
        return CMD_ERROR;
    folder_private_load(f, &priv);
    enum cmd_status rc = CMD_ERROR;
    DIR *d = NULL;
    struct name_heap h = {NULL, 0, FS_LIST_MAX_ENTRIES};
    if (!S_ISDIR(t.st.st_mode)) {
        folder_fail_path(res, "INVALID_ARGS", norm, "not a directory");
        goto out;
    }
    /* t.fd is O_PATH; "." reopens that same directory for reading. */
    int dfd = openat(t.fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || !(d = fdopendir(dfd))) {
        int e = errno;
        if (dfd >= 0)
            close(dfd);
        folder_fail_errno(res, e, norm);
        goto out;
    }
    h.v = malloc(h.cap * sizeof(*h.v));
    if (!h.v) {
        cmd_fail(res, "PROCESSING_ERROR", "out of memory");
        goto out;
    }
    size_t total = 0;
    struct dirent *de;
    errno = 0;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        total++;
        if (heap_offer(&h, de->d_name) != 0) {
            cmd_fail(res, "PROCESSING_ERROR", "out of memory");
            goto out;
        }
        errno = 0;
    }
    if (errno != 0) {
        folder_fail_path(res, "PROCESSING_ERROR", norm, "cannot be read");
        goto out;
    }
    qsort(h.v, h.n, sizeof(*h.v), cmp_names);
    json_object *entries = json_object_new_array();
    for (size_t i = 0; i < h.n; i++) {
        json_object *e = entry_json(dirfd(d), h.v[i], &priv);
        if (e)
            json_object_array_add(entries, e);
    }
    res->result = json_object_new_object();
    json_object_object_add(res->result, "path", utf8_json_string(norm));
    json_object_object_add(res->result, "entries", entries);
    json_object_object_add(res->result, "truncated", json_object_new_boolean(total > h.n));
    rc = CMD_OK;
out:
    for (size_t i = 0; i < h.n; i++)
        free(h.v[i]);
    free(h.v);
    if (d)
        closedir(d);
    folder_target_close(&t);
    free(norm);
    return rc;
}

/* ---- fs.read ------------------------------------------------------------ */

/* maxBytes: an integer in 1..FS_READ_MAX_BYTES, default FS_READ_DEFAULT_BYTES. */
static int get_max_bytes(json_object *args, size_t *out, struct cmd_result *res)
{
    json_object *v = cmd_arg(args, "maxBytes");
    *out = FS_READ_DEFAULT_BYTES;
    if (!v)
        return 0;
    if (!json_object_is_type(v, json_type_int)) {
        cmd_fail(res, "INVALID_ARGS", "maxBytes: expected an integer");
        return -1;
    }
    int64_t n = json_object_get_int64(v);
    if (n < 1 || n > FS_READ_MAX_BYTES) {
        cmd_fail(res, "INVALID_ARGS", "maxBytes: must be between 1 and %d", FS_READ_MAX_BYTES);
        return -1;
    }
    *out = (size_t)n;
    return 0;
}

/* Reads up to `limit` bytes; the buffer grows from the file's size so a small
 * file does not cost a maxBytes allocation. Returns the count or -1. */
static ssize_t read_upto(int fd, off_t size_hint, size_t limit, char **out)
{
    size_t cap = size_hint >= 0 && (uint64_t)size_hint + 1 < limit ? (size_t)size_hint + 1 : limit;
    if (cap < 64)
        cap = limit < 64 ? limit : 64;
    char *buf = malloc(cap);
    size_t n = 0;
    if (!buf)
        return -1;
    while (n < limit) {
        if (n == cap) {
            size_t ncap = cap * 2 < limit ? cap * 2 : limit;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                free(buf);
                return -1;
            }
            buf = nb;
            cap = ncap;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            free(buf);
            return -1;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    *out = buf;
    return (ssize_t)n;
}

static json_object *base64_json(const char *buf, size_t len)
{
    char *b = malloc(4 * ((len + 2) / 3) + 1);
    if (!b)
        return NULL;
    int n = EVP_EncodeBlock((unsigned char *)b, (const unsigned char *)buf, (int)len);
    json_object *s = json_object_new_string_len(b, n);
    free(b);
    return s;
}

/* Bytes json-c writes for one byte of a string (JSON_C_TO_STRING_NOSLASHESCAPE). */
static size_t escaped_len(unsigned char c)
{
    if (c == '"' || c == '\\' || c == '\b' || c == '\n' || c == '\r' || c == '\t' || c == '\f')
        return 2;
    return c < 0x20 ? 6 : 1;
}

/* The longest prefix of the UTF-8 text buf[0..len) (cut on a character
 * boundary) whose JSON form fits in budget bytes. */
static size_t text_fitting(const char *buf, size_t len, size_t budget)
{
    size_t used = 0, i = 0;
    while (i < len) {
        size_t e = escaped_len((unsigned char)buf[i]);
        if (used + e > budget)
            break;
        used += e;
        i++;
    }
    if (i < len) /* cut: back to the start of the character */
        while (i > 0 && ((unsigned char)buf[i] & 0xc0) == 0x80)
            i--;
    return i;
}

enum cmd_status fs_read(const struct workspace_folder *folders, size_t n_folders, json_object *args,
                        struct cmd_result *res)
{
    return fs_read_within(folders, n_folders, args, FS_READ_REPLY_DEFAULT, res);
}

enum cmd_status fs_read_within(const struct workspace_folder *folders, size_t n_folders,
                               json_object *args, size_t reply_max, struct cmd_result *res)
{
    size_t max;
    if (args && !json_object_is_type(args, json_type_object))
        return cmd_fail(res, "INVALID_ARGS", "args: expected an object");
    if (get_max_bytes(args, &max, res) != 0)
        return CMD_ERROR;
    struct folder_target t;
    char *norm;
    if (folder_open(folders, n_folders, args, NULL, &t, &norm, NULL, res) != CMD_OK)
        return CMD_ERROR;
    enum cmd_status rc = CMD_ERROR;
    char *buf = NULL;
    int fd = -1;
    struct stat st;
    if ((fd = folder_open_regular(&t, &st, norm, res)) < 0)
        goto out;
    /* 3 bytes past the cap tell a valid character cut by the cap from
     * invalid bytes. */
    ssize_t got = read_upto(fd, st.st_size, max + 3, &buf);
    if (got < 0) {
        folder_fail_path(res, "PROCESSING_ERROR", norm, "cannot be read");
        goto out;
    }
    /* The hash of the whole file, whatever is sent: what fs.write's
     * expectedSha256 compares with. */
    char sha[FS_SHA256_HEX];
    int hashed = fs_sha256_rest(buf, (size_t)got, fd, sha);
    if (hashed < 0) {
        folder_fail_path(res, "PROCESSING_ERROR", norm, "cannot be read");
        goto out;
    }
    size_t n = (size_t)got, take = n < max ? n : max;
    size_t ulen = utf8_valid_prefix(buf, take);
    int is_text;
    if (ulen == take)
        is_text = 1;
    else /* invalid, unless the one bad spot is a character the cap cut */
        is_text = n > max && utf8_valid_prefix(buf, n) >= max;
    size_t out_len = is_text ? ulen : take;
    if (is_text && memchr(buf, '\0', out_len)) {
        is_text = 0;
        out_len = take;
    }
    /* What the client can be sent: the reply's other members, with the
     * path escaped at worst, then the content. */
    size_t overhead = FS_READ_REPLY_OVERHEAD + 6 * strlen(norm) + FS_SHA256_HEX + 16;
    size_t budget = reply_max > overhead ? reply_max - overhead : 0;
    if (is_text)
        out_len = text_fitting(buf, out_len, budget);
    else if (4 * ((out_len + 2) / 3) > budget)
        out_len = budget / 4 * 3;
    json_object *content =
        is_text ? json_object_new_string_len(buf, (int)out_len) : base64_json(buf, out_len);
    if (!content) {
        cmd_fail(res, "PROCESSING_ERROR", "out of memory");
        goto out;
    }
    res->result = json_object_new_object();
    json_object_object_add(res->result, "path", utf8_json_string(norm));
    json_object_object_add(res->result, "size", json_object_new_int64((int64_t)st.st_size));
    json_object_object_add(res->result, "encoding",
                           json_object_new_string(is_text ? "utf8" : "base64"));
    json_object_object_add(res->result, "content", content);
    json_object_object_add(res->result, "sha256", hashed == 0 ? json_object_new_string(sha) : NULL);
    json_object_object_add(
        res->result, "truncated",
        json_object_new_boolean(n > out_len || (uint64_t)st.st_size > (uint64_t)out_len));
    rc = CMD_OK;
out:
    free(buf);
    if (fd >= 0)
        close(fd);
    folder_target_close(&t);
    free(norm);
    return rc;
}
