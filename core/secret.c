/*
 * secret: owns the standalone HS256 secret file — where it lives, how it is
 * made (CSPRNG, 0700 folder, 0600 file, atomic publish) and which files are
 * trusted enough to load.
 *
 * Anyone who can read the secret can mint tokens, and anyone who can replace
 * it can mint tokens we accept, so loading checks the file's type, owner and
 * mode and the folder's writability, not only the content.
 */
#include "core/errbuf.h"
#include "core/secret.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

/* Random bytes in a secret made here; the file holds them as hex. */
#define SECRET_RAW_BYTES 32
#define SECRET_HEX_LEN   (2 * SECRET_RAW_BYTES)
/* Shortest secret loaded: a short one can be guessed offline from a token. */
#define SECRET_MIN_BYTES 32
/* Longest secret file loaded; anything bigger is not a secret we wrote. */
#define SECRET_FILE_MAX 4096

int secret_default_path(char *buf, size_t len, char *err, size_t errlen)
{
    const char *xdg = getenv("XDG_CONFIG_HOME");
    const char *home = getenv("HOME");
    int n;

    if (buf == NULL || len == 0) {
        errbuf_set(err, errlen, "no buffer for the secret path");
        return -1;
    }
    buf[0] = '\0';
    /* The XDG spec says a relative XDG_CONFIG_HOME is invalid and ignored. */
    if (xdg != NULL && xdg[0] == '/') {
        n = snprintf(buf, len, "%s/companion/secret", xdg);
    } else if (home != NULL && home[0] == '/') {
        n = snprintf(buf, len, "%s/.config/companion/secret", home);
    } else {
        errbuf_set(err, errlen,
                   "cannot find the secret file: neither XDG_CONFIG_HOME nor HOME is "
                   "set to an absolute path");
        return -1;
    }
    if (n < 0 || (size_t)n >= len) {
        buf[0] = '\0';
        errbuf_set(err, errlen, "secret file path is too long");
        return -1;
    }
    return 0;
}

/* The folder part of `path` ("." when there is none), or NULL if too long. */
static int parent_dir(const char *path, char *buf, size_t len)
{
    const char *slash = strrchr(path, '/');
    size_t n;

    if (slash == NULL) {
        n = 1;
        path = ".";
    } else {
        n = slash == path ? 1 : (size_t)(slash - path);
    }
    if (n >= len)
        return -1;
    memcpy(buf, path, n);
    buf[n] = '\0';
    return 0;
}

/* mkdir -p with 0700 for each folder made, as the XDG spec asks. Existing
 * folders are left as they are; the final one is checked by the caller. */
static int make_dirs(const char *dir, char *err, size_t errlen)
{
    char tmp[PATH_MAX];
    size_t n = strlen(dir);

    if (n >= sizeof(tmp)) {
        errbuf_set(err, errlen, "secret folder path is too long");
        return -1;
    }
    memcpy(tmp, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (tmp[i] != '/' && tmp[i] != '\0')
            continue;
        char saved = tmp[i];
        tmp[i] = '\0';
        if (mkdir(tmp, 0700) != 0 && errno != EEXIST) {
            errbuf_set(err, errlen, "cannot create folder %s: %s", tmp, strerror(errno));
            return -1;
        }
        tmp[i] = saved;
    }
    return 0;
}

/* Others must not be able to swap the file under us. A sticky folder (like
 * /tmp) is fine: the owner check on the file covers it. */
static int dir_trusted(const char *dir, char *err, size_t errlen)
{
    struct stat st;

    if (stat(dir, &st) != 0) {
        errbuf_set(err, errlen, "cannot open folder %s: %s", dir, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        errbuf_set(err, errlen, "%s is not a folder", dir);
        return -1;
    }
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX)) {
        errbuf_set(err, errlen, "folder %s is writable by group or others; run: chmod 700 %s", dir,
                   dir);
        return -1;
    }
    return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int random_hex(char *out, char *err, size_t errlen)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[SECRET_RAW_BYTES];
    size_t got = 0;

    while (got < sizeof(raw)) {
        ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            errbuf_set(err, errlen, "cannot get random bytes: %s", strerror(errno));
            explicit_bzero(raw, sizeof(raw));
            return -1;
        }
        got += (size_t)n;
    }
    for (size_t i = 0; i < sizeof(raw); i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[SECRET_HEX_LEN] = '\0';
    explicit_bzero(raw, sizeof(raw));
    return 0;
}

/* Writes a fresh secret to a temporary file and publishes it under `path`
 * only once it is complete and on disk. RENAME_NOREPLACE keeps a second
 * helper starting at the same moment from replacing a secret the first one
 * already handed out. Returns 0 when published, 1 when another process won
 * the race (the caller loads theirs), -1 on error. */
static int create_secret(const char *path, const char *dir, char *err, size_t errlen)
{
    char tmp[PATH_MAX];
    char hex[SECRET_HEX_LEN + 1];
    int fd;
    int rc;

    if (snprintf(tmp, sizeof(tmp), "%s/.secret.XXXXXX", dir) >= (int)sizeof(tmp)) {
        errbuf_set(err, errlen, "secret folder path is too long");
        return -1;
    }
    if (random_hex(hex, err, errlen) != 0)
        return -1;
    /* mkostemp opens with O_CREAT|O_EXCL and mode 0600. */
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        errbuf_set(err, errlen, "cannot create a file in %s: %s", dir, strerror(errno));
        explicit_bzero(hex, sizeof(hex));
        return -1;
    }
    rc = write_all(fd, hex, SECRET_HEX_LEN);
    explicit_bzero(hex, sizeof(hex));
    if (rc == 0)
        rc = fsync(fd);
    if (close(fd) != 0 && rc == 0)
        rc = -1;
    if (rc != 0) {
        int e = errno;
        unlink(tmp);
        errbuf_set(err, errlen, "cannot write secret file in %s: %s", dir, strerror(e));
        return -1;
    }

    rc = renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE);
    if (rc != 0 && (errno == EINVAL || errno == ENOSYS))
        rc = rename(tmp, path); /* filesystem without RENAME_NOREPLACE */
    if (rc != 0) {
        int e = errno;
        unlink(tmp);
        if (e == EEXIST)
            return 1;
        errbuf_set(err, errlen, "cannot create secret file %s: %s", path, strerror(e));
        return -1;
    }

    /* Make the new name durable too; the secret is already complete, so a
     * failure here costs at most a regenerated secret after a crash. */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    return 0;
}

/* Reads and validates the file. Returns 0, -1 on error, or 1 when the file
 * does not exist (no message then: the caller decides if that is an error). */
static int read_secret(const char *path, char **out, char *err, size_t errlen)
{
    char buf[SECRET_FILE_MAX + 1];
    struct stat st;
    size_t len = 0;
    int fd;
    int rc = -1;

    /* O_NONBLOCK so a FIFO planted at the path cannot hang the helper. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ENOENT)
            return 1;
        errbuf_set(err, errlen, "cannot open secret file %s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0) {
        errbuf_set(err, errlen, "cannot stat secret file %s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        errbuf_set(err, errlen, "secret file %s is not a regular file", path);
        goto out;
    }
    if (st.st_uid != geteuid()) {
        errbuf_set(err, errlen, "secret file %s is not owned by the current user", path);
        goto out;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        errbuf_set(err, errlen,
                   "secret file %s is accessible by group or others; run: chmod 600 %s", path,
                   path);
        goto out;
    }
    if (st.st_size > SECRET_FILE_MAX) {
        errbuf_set(err, errlen, "secret file %s is too large", path);
        goto out;
    }
    for (;;) {
        ssize_t n = read(fd, buf + len, sizeof(buf) - len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            errbuf_set(err, errlen, "cannot read secret file %s: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > SECRET_FILE_MAX) {
            errbuf_set(err, errlen, "secret file %s is too large", path);
            goto out;
        }
    }
    /* One newline is what an editor or `echo` adds; it is not key material. */
    if (len > 0 && buf[len - 1] == '\n')
        len--;
    if (len == 0) {
        errbuf_set(err, errlen, "secret file %s is empty", path);
        goto out;
    }
    if (len < SECRET_MIN_BYTES) {
        errbuf_set(err, errlen,
                   "secret file %s is shorter than %d bytes; delete it and a new one is made", path,
                   SECRET_MIN_BYTES);
        goto out;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)buf[i];
        if (c < 0x20 || c > 0x7e) {
            errbuf_set(err, errlen, "secret file %s contains non-printable characters", path);
            goto out;
        }
    }
    *out = malloc(len + 1);
    if (*out == NULL) {
        errbuf_set(err, errlen, "out of memory");
        goto out;
    }
    memcpy(*out, buf, len);
    (*out)[len] = '\0';
    rc = 0;
out:
    explicit_bzero(buf, sizeof(buf));
    close(fd);
    return rc;
}

int secret_load(const char *path, int create, char **out, char *err, size_t errlen)
{
    char dir[PATH_MAX];

    if (out == NULL || path == NULL || path[0] == '\0') {
        errbuf_set(err, errlen, "no secret file path");
        return -1;
    }
    *out = NULL;
    if (parent_dir(path, dir, sizeof(dir)) != 0) {
        errbuf_set(err, errlen, "secret file path is too long");
        return -1;
    }
    if (create && make_dirs(dir, err, errlen) != 0)
        return -1;
    if (access(dir, F_OK) == 0 && dir_trusted(dir, err, errlen) != 0)
        return -1;

    /* Twice at most: the second pass reads the file another process
     * published while we were making ours. */
    for (int attempt = 0; attempt < 2; attempt++) {
        int rc = read_secret(path, out, err, errlen);
        if (rc <= 0)
            return rc;
        if (!create || attempt > 0) {
            errbuf_set(err, errlen, "secret file %s does not exist", path);
            return -1;
        }
        rc = create_secret(path, dir, err, errlen);
        if (rc < 0)
            return -1;
    }
    return -1; /* not reached: the second pass returns */
}

void secret_free(char *secret)
{
    if (secret == NULL)
        return;
    explicit_bzero(secret, strlen(secret));
    free(secret);
}

int secret_state_path(const char *name, char *buf, size_t len, char *err, size_t errlen)
{
    const char *xdg = getenv("XDG_STATE_HOME");
    const char *home = getenv("HOME");
    int n;
    if (xdg != NULL && xdg[0] == '/')
        n = snprintf(buf, len, "%s/companion/%s", xdg, name);
    else if (home != NULL && home[0] == '/')
        n = snprintf(buf, len, "%s/.local/state/companion/%s", home, name);
    else {
        errbuf_set(err, errlen, "neither XDG_STATE_HOME nor HOME is set to an absolute path");
        return -1;
    }
    if (n < 0 || (size_t)n >= len) {
        errbuf_set(err, errlen, "state file path is too long");
        return -1;
    }
    return 0;
}

int secret_write_private(const char *path, const char *data, size_t len, char *err, size_t errlen)
{
    char dir[PATH_MAX], tmp[PATH_MAX];
    if (parent_dir(path, dir, sizeof(dir)) != 0 ||
        snprintf(tmp, sizeof(tmp), "%s/.tmp.XXXXXX", dir) >= (int)sizeof(tmp)) {
        errbuf_set(err, errlen, "path is too long");
        return -1;
    }
    if (make_dirs(dir, err, errlen) != 0 || dir_trusted(dir, err, errlen) != 0)
        return -1;
    int fd = mkostemp(tmp, O_CLOEXEC); /* O_EXCL, mode 0600 */
    if (fd < 0) {
        errbuf_set(err, errlen, "cannot create a file in %s: %s", dir, strerror(errno));
        return -1;
    }
    int rc = write_all(fd, data, len);
    if (rc == 0)
        rc = fsync(fd);
    if (close(fd) != 0 && rc == 0)
        rc = -1;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -1;
    if (rc != 0) {
        int e = errno;
        unlink(tmp);
        errbuf_set(err, errlen, "cannot write %s: %s", path, strerror(e));
        return -1;
    }
    return 0;
}

int secret_state_open(const char *name, char *err, size_t errlen)
{
    char path[PATH_MAX], dir[PATH_MAX];
    if (secret_state_path(name, path, sizeof(path), err, errlen) < 0)
        return -1;
    if (parent_dir(path, dir, sizeof(dir)) != 0) {
        errbuf_set(err, errlen, "path is too long");
        return -1;
    }
    if (make_dirs(dir, err, errlen) != 0 || dir_trusted(dir, err, errlen) != 0)
        return -1;
    int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
    if (fd < 0) {
        errbuf_set(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
        (st.st_mode & (S_IRWXG | S_IRWXO))) {
        close(fd);
        errbuf_set(err, errlen, "%s is not a private file of this user", path);
        return -1;
    }
    return fd;
}
