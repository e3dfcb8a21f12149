/*
 * workspace/folder.c: the one confinement rule, tested at its own level
 * (folder_check_path, folder_resolve, folder_open, folder_open_regular,
 * folder_relative) rather than through fs.*: what a client's path may be,
 * symlinks that stay in or lead out (whether their target exists or not),
 * loops, swaps between the check and the open, FIFOs, names that are not
 * UTF-8, the helper's private files, and the lexical mapping of absolute
 * paths to folders. Every test also checks that no fd was left open.
 *
 * A directory moved out of the folder during a walk is simulated by
 * standing in for openat(2): the stand-in moves the directory just before
 * the walk's `..` is opened, then makes the real system call.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "workspace/folder.h"
#include "workspace/utf8.h"

#define SECRET   "TOPSECRET-outside"
#define BAD_NAME "bad\xff\xfe.txt"

struct fx {
    char tmpl[64];
    char root[PATH_MAX];        /* realpath of the folder */
    char outside[PATH_MAX + 8]; /* a sibling whose name starts with root's */
    struct workspace_folder folder;
    struct workspace_private *priv; /* NULL, or set by a test */
    int fds;
};

/* ---- openat stand-in ----------------------------------------------------- */

/* When set, called with openat's arguments before the real call. */
static void (*openat_hook)(int dirfd, const char *path);
/* Opens of this name for anything but O_PATH are counted: a FIFO or a
 * device must never be opened at all. */
static const char *watch_name;
static int watch_opens;

int openat(int dirfd, const char *path, int flags, ...)
{
    int mode = 0;
    if (flags & (O_CREAT | O_TMPFILE)) {
        va_list ap;
        va_start(ap, flags);
        mode = va_arg(ap, int);
        va_end(ap);
    }
    if (openat_hook)
        openat_hook(dirfd, path);
    if (watch_name && !(flags & O_PATH) && strcmp(path, watch_name) == 0)
        watch_opens++;
    return (int)syscall(SYS_openat, dirfd, path, flags, mode);
}

/* ---- helpers ----------------------------------------------------------------- */

static void pathf(char *out, size_t len, const char *dir, const char *name)
{
    int n = snprintf(out, len, "%s/%s", dir, name);
    assert_true(n > 0 && (size_t)n < len);
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char p[PATH_MAX * 2];
    pathf(p, sizeof(p), dir, name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static void make_dir(const char *dir, const char *name)
{
    char p[PATH_MAX * 2];
    pathf(p, sizeof(p), dir, name);
    assert_int_equal(mkdir(p, 0755), 0);
}

static void make_link(const char *dir, const char *name, const char *target)
{
    char p[PATH_MAX * 2];
    pathf(p, sizeof(p), dir, name);
    if (symlink(target, p) != 0)
        fail_msg("symlink %s -> %s: %s", name, target, strerror(errno));
}

static void remove_in(const char *dir, const char *name)
{
    char p[PATH_MAX * 2];
    pathf(p, sizeof(p), dir, name);
    assert_int_equal(remove(p), 0);
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(p);
}

static void rm_tree(const char *p)
{
    nftw(p, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Makes `paths` (absolute) the folder's private files. */
static void set_private(struct fx *fx, const char *const *paths, size_t n)
{
    free(fx->priv);
    fx->priv = calloc(1, sizeof(*fx->priv) + n * sizeof(char *));
    assert_non_null(fx->priv);
    atomic_init(&fx->priv->refs, 1);
    fx->priv->n = n;
    for (size_t i = 0; i < n; i++)
        fx->priv->paths[i] = (char *)paths[i];
    fx->folder.priv = fx->priv;
}

static void clear_private(struct fx *fx)
{
    free(fx->priv);
    fx->priv = NULL;
    fx->folder.priv = NULL;
}

/* folder_resolve, the target closed again; the error. */
static enum folder_err resolve(const struct fx *fx, const char *rel)
{
    struct folder_target t;
    enum folder_err e = folder_resolve(&fx->folder, rel, &t);
    if (e == FOLDER_OK) {
        assert_true(t.fd >= 0);
        folder_target_close(&t);
    } else {
        assert_int_equal(t.fd, -1);
        assert_int_equal(t.parent, -1);
    }
    return e;
}

static const char *err_name(enum folder_err e)
{
    static const char *const names[] = {"OK",     "NOT_FOUND", "ESCAPE",  "LOOP", "TOO_LONG",
                                        "ACCESS", "CHANGED",   "PRIVATE", "IO"};
    return (size_t)e < sizeof(names) / sizeof(names[0]) ? names[e] : "?";
}

static void expect_resolve(const struct fx *fx, const char *rel, enum folder_err want)
{
    enum folder_err e = resolve(fx, rel);
    if (e != want)
        fail_msg("resolve \"%s\": %s, expected %s", rel, err_name(e), err_name(want));
}

/* What every message must be: valid UTF-8, no absolute path, nothing
 * from outside. */
static void check_message(const struct fx *fx, const struct cmd_result *res)
{
    const char *m = res->message;
    assert_true(utf8_is_valid(m, strlen(m)));
    if (strstr(m, fx->root) || strstr(m, fx->tmpl) || strstr(m, "\"/") || strstr(m, " /") ||
        strstr(m, SECRET))
        fail_msg("message leaks a path or content: %s", m);
}

static json_object *path_args(const char *p, size_t len)
{
    json_object *a = json_object_new_object();
    json_object_object_add(a, "path", json_object_new_string_len(p, (int)len));
    return a;
}

/* folder_open with {"path": p}; the target closed again. The status, and
 * res for the caller to look at. */
static enum cmd_status open_path(const struct fx *fx, const char *p, size_t len,
                                 struct cmd_result *res)
{
    struct folder_target t;
    char *norm = (char *)"unset";
    const struct workspace_folder *picked = NULL;
    json_object *a = path_args(p, len);
    memset(res, 0, sizeof(*res));
    enum cmd_status st = folder_open(&fx->folder, 1, a, NULL, &t, &norm, &picked, res);
    json_object_put(a);
    if (st == CMD_OK) {
        assert_ptr_equal(picked, &fx->folder);
        assert_non_null(norm);
        folder_target_close(&t);
        free(norm);
    } else {
        assert_null(norm);
        assert_int_equal(t.fd, -1);
        check_message(fx, res);
    }
    return st;
}

static void expect_open_err(const struct fx *fx, const char *p, const char *code)
{
    struct cmd_result res;
    if (open_path(fx, p, strlen(p), &res) == CMD_OK)
        fail_msg("\"%s\" opened, expected %s", p, code);
    if (strcmp(res.code, code) != 0)
        fail_msg("\"%s\": %s (%s), expected %s", p, res.code, res.message, code);
}

/* Resolves rel to a regular file and reads it through folder_open_regular:
 * its content into buf (NUL-terminated); -1 with res set when refused. */
static int read_through(const struct fx *fx, const char *rel, char *buf, size_t len,
                        struct cmd_result *res)
{
    struct folder_target t;
    struct stat st;
    memset(res, 0, sizeof(*res));
    enum folder_err e = folder_resolve(&fx->folder, rel, &t);
    if (e != FOLDER_OK)
        fail_msg("resolve \"%s\": %s", rel, err_name(e));
    int fd = folder_open_regular(&t, &st, rel, res);
    folder_target_close(&t);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, len - 1);
    close(fd);
    assert_true(n >= 0);
    buf[n] = '\0';
    return 0;
}

/* ---- fixture ------------------------------------------------------------------- */

static int group_setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    snprintf(fx->tmpl, sizeof(fx->tmpl), "/tmp/companion-folder-XXXXXX");
    assert_non_null(mkdtemp(fx->tmpl));
    assert_non_null(realpath(fx->tmpl, fx->root));
    snprintf(fx->outside, sizeof(fx->outside), "%s-evil", fx->root);
    assert_int_equal(mkdir(fx->outside, 0755), 0);
    write_file(fx->outside, "secret.txt", SECRET);
    make_dir(fx->outside, "dir");
    write_file(fx->outside, "dir/secret.txt", SECRET);

    const char *r = fx->root;
    char p[PATH_MAX * 2];
    write_file(r, "hello.txt", "hello");
    make_dir(r, "sub");
    write_file(r, "sub/inner.txt", "inner");
    make_dir(r, "sub/deeper");
    write_file(r, "sub/deeper/leaf.txt", "leaf");
    write_file(r, BAD_NAME, "named badly");
    pathf(p, sizeof(p), r, "fifo");
    assert_int_equal(mkfifo(p, 0644), 0);

    /* Inside. */
    make_link(r, "link_hello", "hello.txt");
    make_link(r, "sub/up_ok", "../hello.txt");
    make_link(r, "sub/deeper/uplink", "../inner.txt");
    make_link(r, "subdir_link", "sub");
    pathf(p, sizeof(p), r, "sub/inner.txt");
    make_link(r, "abs_inside", p);
    make_link(r, "dangling", "nothere.txt");
    make_link(r, "dangling_dir", "nodir/x");
    make_link(r, "loop1", "loop2");
    make_link(r, "loop2", "loop1");
    make_link(r, "self_loop", "self_loop");
    make_link(r, "link_" BAD_NAME, BAD_NAME);
    /* Outside: existing and missing targets, files and parents. */
    snprintf(p, sizeof(p), "../%s/secret.txt", strrchr(fx->outside, '/') + 1);
    make_link(r, "out_file", p);
    snprintf(p, sizeof(p), "../%s/nothere.txt", strrchr(fx->outside, '/') + 1);
    make_link(r, "out_file_missing", p);
    snprintf(p, sizeof(p), "%s/secret.txt", fx->outside); /* shares root's prefix */
    make_link(r, "out_abs", p);
    snprintf(p, sizeof(p), "%s/nothere.txt", fx->outside);
    make_link(r, "out_abs_missing", p);
    make_link(r, "out_abs_gone", "/nonexistent-companion-dir/x");
    snprintf(p, sizeof(p), "../%s/dir", strrchr(fx->outside, '/') + 1);
    make_link(r, "out_dir", p);
    make_link(r, "out_dir_missing", "../nonexistent-companion-dir");
    make_link(r, "up", "..");
    make_link(r, "sub/escape", "../../x");
    make_link(r, "etc", "/etc");
    /* Leaves and comes back: still refused (never above the folder). */
    snprintf(p, sizeof(p), "../%s/hello.txt", strrchr(r, '/') + 1);
    make_link(r, "out_and_back", p);
    make_link(r, "out_" BAD_NAME, "../x\xff");

    fx->folder.name = "main";
    fx->folder.path = fx->root;
    *state = fx;
    return 0;
}

static int group_teardown(void **state)
{
    struct fx *fx = *state;
    rm_tree(fx->root);
    rm_tree(fx->outside);
    free(fx->priv);
    free(fx);
    return 0;
}

static int test_setup(void **state)
{
    struct fx *fx = *state;
    fx->fds = count_fds();
    return 0;
}

static int test_teardown(void **state)
{
    struct fx *fx = *state;
    openat_hook = NULL;
    watch_name = NULL;
    clear_private(fx);
    int now = count_fds();
    if (now != fx->fds) {
        print_error("fd leak: %d open before, %d after\n", fx->fds, now);
        return -1;
    }
    return 0;
}

/* ---- the path a client gives --------------------------------------------------- */

static void check_rule(const struct fx *fx, const char *p, size_t len, const char *code)
{
    struct cmd_result res = {0};
    int rc = folder_check_path(p, len, &res);
    if (!code) {
        if (rc != 0)
            fail_msg("\"%s\" refused: %s", p, res.message);
        return;
    }
    if (rc == 0)
        fail_msg("\"%.100s\" accepted, expected %s", p, code);
    assert_string_equal(res.code, code);
    check_message(fx, &res);
}

static void test_check_path_rules(void **state)
{
    struct fx *fx = *state;
    const char *dotdot[] = {"..",   "../x", "a/..",   "a/../b", "a//..//b",
                            "./..", "../.", "x/../.", "..//",   "a/b/c/../../../..",
                            ".."};
    for (size_t i = 0; i < sizeof(dotdot) / sizeof(dotdot[0]); i++)
        check_rule(fx, dotdot[i], strlen(dotdot[i]), "FORBIDDEN");
    const char *fine[] = {"",    ".",   "./",      "a",      "a/b",  "...",
                          "..a", "a..", "a/.../b", ".a/..b", "a//b", "a/./b"};
    for (size_t i = 0; i < sizeof(fine) / sizeof(fine[0]); i++)
        check_rule(fx, fine[i], strlen(fine[i]), NULL);

    check_rule(fx, "/etc/passwd", 11, "FORBIDDEN");
    check_rule(fx, "/", 1, "FORBIDDEN");
    check_rule(fx, "//x", 3, "FORBIDDEN");
    char abs[PATH_MAX + 32];
    snprintf(abs, sizeof(abs), "%s/hello.txt", fx->root); /* even one inside */
    check_rule(fx, abs, strlen(abs), "FORBIDDEN");

    /* NUL: "hello.txt\0/../../x" must not pass as "hello.txt". */
    check_rule(fx, "hello.txt\0/../../x", 18, "FORBIDDEN");
    check_rule(fx, "\0", 1, "FORBIDDEN");

    /* PATH_MAX bytes or more are refused before anything is opened;
     * PATH_MAX - 1 passes the check. */
    char *p = malloc(PATH_MAX + 1);
    assert_non_null(p);
    memset(p, 'a', PATH_MAX);
    for (int i = 1; i < PATH_MAX; i += 2)
        p[i] = '/';
    p[PATH_MAX] = '\0';
    check_rule(fx, p, PATH_MAX, "FORBIDDEN");
    p[PATH_MAX - 1] = '\0';
    check_rule(fx, p, PATH_MAX - 1, NULL);
    free(p);
}

static void test_open_refuses_before_opening(void **state)
{
    struct fx *fx = *state;
    struct cmd_result res;
    expect_open_err(fx, "../hello.txt", "FORBIDDEN");
    expect_open_err(fx, "sub/../hello.txt", "FORBIDDEN");
    expect_open_err(fx, "/etc/passwd", "FORBIDDEN");
    assert_int_equal(open_path(fx, "hello.txt\0/../x", 15, &res), CMD_ERROR);
    assert_string_equal(res.code, "FORBIDDEN");
    assert_non_null(strstr(res.message, "NUL"));
    expect_open_err(fx, "", "INVALID_ARGS"); /* no default: a path is needed */

    char *p = malloc(PATH_MAX + 8);
    assert_non_null(p);
    memset(p, 'a', PATH_MAX + 7);
    p[PATH_MAX + 7] = '\0';
    expect_open_err(fx, p, "FORBIDDEN"); /* too long, and not echoed whole */
    free(p);

    /* Wrong shapes. */
    struct folder_target t;
    char *norm;
    json_object *a = json_tokener_parse("{\"path\":3}");
    memset(&res, 0, sizeof(res));
    assert_int_equal(folder_open(&fx->folder, 1, a, NULL, &t, &norm, NULL, &res), CMD_ERROR);
    assert_string_equal(res.code, "INVALID_ARGS");
    json_object_put(a);
    a = json_tokener_parse("[\"hello.txt\"]");
    memset(&res, 0, sizeof(res));
    assert_int_equal(folder_open(&fx->folder, 1, a, NULL, &t, &norm, NULL, &res), CMD_ERROR);
    assert_string_equal(res.code, "INVALID_ARGS");
    json_object_put(a);
    memset(&res, 0, sizeof(res));
    assert_int_equal(folder_open(&fx->folder, 1, NULL, NULL, &t, &norm, NULL, &res), CMD_ERROR);
    assert_string_equal(res.code, "INVALID_ARGS");
    /* With a default, no path is the default. */
    memset(&res, 0, sizeof(res));
    assert_int_equal(folder_open(&fx->folder, 1, NULL, ".", &t, &norm, NULL, &res), CMD_OK);
    assert_string_equal(norm, ".");
    assert_true(S_ISDIR(t.st.st_mode));
    assert_int_equal(t.parent, -1);
    folder_target_close(&t);
    free(norm);
}

static void test_normalize(void **state)
{
    const char *cases[][2] = {{"", "."},      {".", "."},     {"./", "."},
                              {"a", "a"},     {"a/", "a"},    {"./a//b/./c/", "a/b/c"},
                              {"//a", "a"},   {"...", "..."}, {"a/.b/..c", "a/.b/..c"},
                              {"././.", "."}, {"a//./", "a"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *n = folder_normalize(cases[i][0]);
        assert_non_null(n);
        if (strcmp(n, cases[i][1]) != 0)
            fail_msg("normalize \"%s\": \"%s\", expected \"%s\"", cases[i][0], n, cases[i][1]);
        free(n);
    }
}

static void test_pick_and_find(void **state)
{
    struct workspace_folder f[2] = {{.name = "one", .path = "/x"}, {.name = "two", .path = "/y"}};
    struct cmd_result res = {0};
    assert_ptr_equal(folder_find(f, 2, "two"), &f[1]);
    assert_null(folder_find(f, 2, "three"));
    assert_null(folder_find(f, 2, NULL));
    assert_null(folder_find(f, 0, "one"));
    json_object *a = json_tokener_parse("{\"folder\":\"two\"}");
    assert_ptr_equal(folder_pick(f, 2, a, &res), &f[1]);
    json_object_put(a);
    assert_ptr_equal(folder_pick(f, 2, NULL, &res), &f[0]);
    a = json_tokener_parse("{\"folder\":\"tw\"}");
    assert_null(folder_pick(f, 2, a, &res));
    assert_string_equal(res.code, "NOT_FOUND");
    json_object_put(a);
    /* "one\0two": matches neither. */
    a = json_object_new_object();
    json_object_object_add(a, "folder", json_object_new_string_len("one\0two", 7));
    memset(&res, 0, sizeof(res));
    assert_null(folder_pick(f, 2, a, &res));
    assert_string_equal(res.code, "NOT_FOUND");
    json_object_put(a);
}

/* ---- resolution: inside ---------------------------------------------------------- */

static void test_resolve_inside(void **state)
{
    struct fx *fx = *state;
    const char *ok[] = {".",
                        "hello.txt",
                        "sub",
                        "sub/inner.txt",
                        "./sub//deeper/",
                        "link_hello",
                        "sub/up_ok",
                        "sub/deeper/uplink",
                        "subdir_link/inner.txt",
                        "subdir_link/up_ok",
                        "abs_inside",
                        BAD_NAME,
                        "link_" BAD_NAME};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        expect_resolve(fx, ok[i], FOLDER_OK);

    /* The target is the file itself, never a link, with its directory. */
    struct folder_target t;
    assert_int_equal(folder_resolve(&fx->folder, "sub/up_ok", &t), FOLDER_OK);
    assert_true(S_ISREG(t.st.st_mode));
    assert_string_equal(t.name, "hello.txt");
    assert_true(t.parent >= 0);
    char abs[PATH_MAX], want[PATH_MAX * 2];
    assert_int_equal(folder_target_path(&t, abs, sizeof(abs)), 0);
    pathf(want, sizeof(want), fx->root, "hello.txt");
    assert_string_equal(abs, want);
    /* Too small a buffer is an error, not a cut path. */
    assert_int_equal(folder_target_path(&t, abs, 8), -1);
    folder_target_close(&t);
    assert_int_equal(t.fd, -1);
    folder_target_close(&t); /* twice is harmless */

    assert_int_equal(folder_resolve(&fx->folder, "subdir_link", &t), FOLDER_OK);
    assert_true(S_ISDIR(t.st.st_mode));
    assert_int_equal(t.parent, -1);
    assert_string_equal(t.name, "");
    folder_target_close(&t);

    /* A folder that is "/" holds every absolute link target. */
    struct workspace_folder slash = {.name = "root", .path = "/"};
    char rel[PATH_MAX * 2];
    pathf(rel, sizeof(rel), fx->root + 1, "abs_inside");
    assert_int_equal(folder_resolve(&slash, rel, &t), FOLDER_OK);
    assert_string_equal(t.name, "inner.txt");
    folder_target_close(&t);

    /* Non-UTF-8 names resolve, and a message naming one is valid UTF-8. */
    char buf[64];
    struct cmd_result res;
    assert_int_equal(read_through(fx, BAD_NAME, buf, sizeof(buf), &res), 0);
    assert_string_equal(buf, "named badly");
    assert_int_equal(read_through(fx, "link_" BAD_NAME, buf, sizeof(buf), &res), 0);
    assert_string_equal(buf, "named badly");
    assert_int_equal(open_path(fx, "nothere\xff\xfe/x\xc3", 12, &res), CMD_ERROR);
    assert_string_equal(res.code, "NOT_FOUND");
    assert_non_null(strstr(res.message, "\xef\xbf\xbd")); /* U+FFFD */
}

static void test_not_found(void **state)
{
    struct fx *fx = *state;
    expect_resolve(fx, "nothere", FOLDER_E_NOT_FOUND);
    expect_resolve(fx, "nodir/x", FOLDER_E_NOT_FOUND);
    expect_resolve(fx, "hello.txt/x", FOLDER_E_NOT_FOUND); /* a file is not a directory */
    expect_resolve(fx, "link_hello/x", FOLDER_E_NOT_FOUND);
    /* A dangling link inside: NOT_FOUND, it names nothing outside. */
    expect_resolve(fx, "dangling", FOLDER_E_NOT_FOUND);
    expect_resolve(fx, "dangling_dir", FOLDER_E_NOT_FOUND);
    expect_open_err(fx, "dangling", "NOT_FOUND");

    /* A folder that is gone: named by its name, not its path. */
    char gone[PATH_MAX + 16];
    pathf(gone, sizeof(gone), fx->root, "gone-folder");
    struct workspace_folder f = {.name = "gone", .path = gone};
    struct folder_target t;
    assert_int_equal(folder_resolve(&f, "x", &t), FOLDER_E_NOT_FOUND);
    struct cmd_result res = {0};
    char *norm;
    json_object *a = path_args("x", 1);
    assert_int_equal(folder_open(&f, 1, a, NULL, &t, &norm, NULL, &res), CMD_ERROR);
    json_object_put(a);
    assert_string_equal(res.code, "NOT_FOUND");
    assert_non_null(strstr(res.message, "\"gone\""));
    assert_null(strstr(res.message, gone));
}

/* ---- resolution: leading out ----------------------------------------------------- */

static void test_symlinks_leading_out(void **state)
{
    struct fx *fx = *state;
    /* Files and parents, targets that exist and targets that do not: all
     * ESCAPE, so no answer tells what exists outside. */
    const char *out[] = {"out_file",
                         "out_file_missing",
                         "out_abs",
                         "out_abs_missing",
                         "out_abs_gone",
                         "out_dir",
                         "out_dir/secret.txt",
                         "out_dir/nothere.txt",
                         "out_dir/nothere/deeper",
                         "out_dir_missing",
                         "out_dir_missing/x",
                         "up",
                         "up/x",
                         "sub/escape",
                         "subdir_link/escape",
                         "etc",
                         "etc/passwd",
                         "etc/nonexistent-companion",
                         "out_and_back",
                         "out_" BAD_NAME};
    for (size_t i = 0; i < sizeof(out) / sizeof(out[0]); i++) {
        expect_resolve(fx, out[i], FOLDER_E_ESCAPE);
        struct cmd_result res;
        assert_int_equal(open_path(fx, out[i], strlen(out[i]), &res), CMD_ERROR);
        assert_string_equal(res.code, "FORBIDDEN");
        assert_non_null(strstr(res.message, "leads outside"));
    }
}

static void test_loops_and_hops(void **state)
{
    struct fx *fx = *state;
    expect_resolve(fx, "loop1", FOLDER_E_LOOP);
    expect_resolve(fx, "loop2/x", FOLDER_E_LOOP);
    expect_resolve(fx, "self_loop", FOLDER_E_LOOP);
    expect_open_err(fx, "loop1", "FORBIDDEN");

    /* A chain of 40 links is followed; 41 is a loop. */
    char name[32], target[32];
    make_dir(fx->root, "chain");
    char dir[PATH_MAX + 8];
    pathf(dir, sizeof(dir), fx->root, "chain");
    write_file(dir, "end", "end");
    for (int i = 1; i <= 41; i++) {
        snprintf(name, sizeof(name), "c%d", i);
        if (i == 1)
            snprintf(target, sizeof(target), "end");
        else
            snprintf(target, sizeof(target), "c%d", i - 1);
        make_link(dir, name, target);
    }
    expect_resolve(fx, "chain/c40", FOLDER_OK);
    expect_resolve(fx, "chain/c41", FOLDER_E_LOOP);
    rm_tree(dir);
}

static void test_too_long(void **state)
{
    struct fx *fx = *state;
    char name[NAME_MAX + 2];
    memset(name, 'n', NAME_MAX + 1);
    name[NAME_MAX + 1] = '\0';
    expect_resolve(fx, name, FOLDER_E_TOO_LONG);
    name[NAME_MAX] = '\0';
    expect_resolve(fx, name, FOLDER_E_NOT_FOUND); /* NAME_MAX itself is a name */

    /* A link whose target with the rest of the path passes PATH_MAX. */
    char *target = malloc(PATH_MAX);
    assert_non_null(target);
    size_t n = 0;
    while (n + 2 < PATH_MAX - 200) {
        target[n++] = '.';
        target[n++] = '/';
    }
    target[n] = '\0';
    make_link(fx->root, "long_link", target);
    char *rel = malloc(PATH_MAX);
    assert_non_null(rel);
    n = (size_t)snprintf(rel, PATH_MAX, "long_link/");
    while (n + 3 < PATH_MAX - 1) {
        rel[n++] = '.';
        rel[n++] = '/';
    }
    rel[n] = '\0';
    expect_resolve(fx, rel, FOLDER_E_TOO_LONG);
    remove_in(fx->root, "long_link");
    free(rel);
    free(target);
}

/* ---- between the check and the open ------------------------------------------- */

static void test_open_regular(void **state)
{
    struct fx *fx = *state;
    char buf[64];
    struct cmd_result res;
    assert_int_equal(read_through(fx, "hello.txt", buf, sizeof(buf), &res), 0);
    assert_string_equal(buf, "hello");
    assert_int_equal(read_through(fx, "sub/up_ok", buf, sizeof(buf), &res), 0);
    assert_string_equal(buf, "hello");

    /* A directory. */
    struct folder_target t;
    struct stat st;
    assert_int_equal(folder_resolve(&fx->folder, "sub", &t), FOLDER_OK);
    memset(&res, 0, sizeof(res));
    assert_int_equal(folder_open_regular(&t, &st, "sub", &res), -1);
    assert_string_equal(res.code, "INVALID_ARGS");
    folder_target_close(&t);

    /* A FIFO: refused at once, never opened, never blocks. */
    struct timespec t0, t1;
    watch_name = "fifo";
    watch_opens = 0;
    alarm(10);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(read_through(fx, "fifo", buf, sizeof(buf), &res), -1);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    alarm(0);
    assert_string_equal(res.code, "FORBIDDEN");
    assert_non_null(strstr(res.message, "not a regular file"));
    assert_true(t1.tv_sec - t0.tv_sec < 2);
    assert_int_equal(watch_opens, 0);

    /* A device (when this process may make one): never opened either,
     * opening one can have side effects. */
    char p[PATH_MAX * 2];
    pathf(p, sizeof(p), fx->root, "null_dev");
    if (mknod(p, S_IFCHR | 0666, makedev(1, 3)) == 0) {
        watch_name = "null_dev";
        watch_opens = 0;
        assert_int_equal(read_through(fx, "null_dev", buf, sizeof(buf), &res), -1);
        assert_string_equal(res.code, "FORBIDDEN");
        assert_int_equal(watch_opens, 0);
        unlink(p);
    } else {
        print_message("(no CAP_MKNOD: the device case is skipped)\n");
    }
    watch_name = NULL;
}

/* Resolves `name` (a regular file), lets `swap` change the tree, then
 * opens: the open must fail with `code` and `why`, and read nothing. */
static void swap_then_open(struct fx *fx, const char *name, void (*swap)(struct fx *),
                           const char *code, const char *why)
{
    struct folder_target t;
    struct stat st;
    struct cmd_result res = {0};
    assert_int_equal(folder_resolve(&fx->folder, name, &t), FOLDER_OK);
    assert_true(S_ISREG(t.st.st_mode));
    swap(fx);
    alarm(10);
    int fd = folder_open_regular(&t, &st, name, &res);
    alarm(0);
    folder_target_close(&t);
    if (fd >= 0) {
        char buf[64] = "";
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        fail_msg("opened after the swap; read %zd bytes: %.40s", n, n > 0 ? buf : "");
    }
    if (strcmp(res.code, code) != 0 || !strstr(res.message, why))
        fail_msg("after the swap: %s %s, expected %s \"%s\"", res.code, res.message, code, why);
    check_message(fx, &res);
}

static void swap_symlink_out(struct fx *fx)
{
    /* rename(2) over the file: the name now is a link to the outside. */
    char tmp[PATH_MAX * 2], dst[PATH_MAX * 2], target[PATH_MAX * 2];
    pathf(tmp, sizeof(tmp), fx->root, "swap.tmp");
    pathf(dst, sizeof(dst), fx->root, "swap.txt");
    pathf(target, sizeof(target), fx->outside, "secret.txt");
    assert_int_equal(symlink(target, tmp), 0);
    assert_int_equal(rename(tmp, dst), 0);
}

static void swap_symlink_same(struct fx *fx)
{
    /* A link to the very file that was checked (moved aside): still a
     * swap, refused by O_NOFOLLOW even though the inode is the same. */
    char moved[PATH_MAX * 2], dst[PATH_MAX * 2];
    pathf(moved, sizeof(moved), fx->root, "swap.moved");
    pathf(dst, sizeof(dst), fx->root, "swap.txt");
    assert_int_equal(rename(dst, moved), 0);
    assert_int_equal(symlink("swap.moved", dst), 0);
}

static void swap_hardlink_out(struct fx *fx)
{
    /* Another regular file, the outside one itself (same file system). */
    char dst[PATH_MAX * 2], target[PATH_MAX * 2];
    pathf(dst, sizeof(dst), fx->root, "swap.txt");
    pathf(target, sizeof(target), fx->outside, "secret.txt");
    assert_int_equal(unlink(dst), 0);
    assert_int_equal(link(target, dst), 0);
}

static void swap_fifo(struct fx *fx)
{
    char dst[PATH_MAX * 2];
    pathf(dst, sizeof(dst), fx->root, "swap.txt");
    assert_int_equal(unlink(dst), 0);
    assert_int_equal(mkfifo(dst, 0644), 0);
}

static void swap_socket(struct fx *fx)
{
    char dst[PATH_MAX * 2];
    pathf(dst, sizeof(dst), fx->root, "swap.txt");
    assert_int_equal(unlink(dst), 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", dst);
    assert_true(n > 0 && (size_t)n < sizeof(sa.sun_path));
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(s >= 0);
    assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
    close(s);
}

static void swap_removed(struct fx *fx)
{
    remove_in(fx->root, "swap.txt");
}

static void test_swap_between_resolve_and_open(void **state)
{
    struct fx *fx = *state;
    struct {
        void (*swap)(struct fx *);
        const char *code, *why;
    } cases[] = {
        {swap_symlink_out, "PROCESSING_ERROR", "changed during the request"},
        {swap_symlink_same, "PROCESSING_ERROR", "changed during the request"},
        {swap_hardlink_out, "PROCESSING_ERROR", "changed during the request"},
        {swap_fifo, "FORBIDDEN", "not a regular file"},
        {swap_socket, "FORBIDDEN", "not a regular file"},
        {swap_removed, "NOT_FOUND", "not found"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        write_file(fx->root, "swap.txt", "the file that was checked");
        swap_then_open(fx, "swap.txt", cases[i].swap, cases[i].code, cases[i].why);
        char p[PATH_MAX * 2];
        pathf(p, sizeof(p), fx->root, "swap.txt");
        unlink(p);
        pathf(p, sizeof(p), fx->root, "swap.moved");
        unlink(p);
    }
    /* The outside file is untouched. */
    char p[PATH_MAX * 2], buf[64] = "";
    pathf(p, sizeof(p), fx->outside, "secret.txt");
    FILE *f = fopen(p, "r");
    assert_non_null(f);
    assert_non_null(fgets(buf, sizeof(buf), f));
    fclose(f);
    assert_string_equal(buf, SECRET);
}

/* The walk's `..` (from sub/deeper/uplink -> ../inner.txt) happens after
 * sub/deeper was moved outside the folder: its real parent is now outside
 * and the walk must notice. */
static struct fx *moving_fx;

static void move_out_before_dotdot(int dirfd, const char *path)
{
    if (strcmp(path, "..") != 0)
        return;
    openat_hook = NULL;
    char from[PATH_MAX * 2], to[PATH_MAX * 2];
    pathf(from, sizeof(from), moving_fx->root, "sub/deeper");
    pathf(to, sizeof(to), moving_fx->outside, "deeper");
    assert_int_equal(rename(from, to), 0);
    write_file(moving_fx->outside, "inner.txt", SECRET);
}

static void test_directory_moved_out_mid_walk(void **state)
{
    struct fx *fx = *state;
    expect_resolve(fx, "sub/deeper/uplink", FOLDER_OK);
    moving_fx = fx;
    openat_hook = move_out_before_dotdot;
    expect_resolve(fx, "sub/deeper/uplink", FOLDER_E_CHANGED);
    assert_null(openat_hook); /* the hook did run */
    char from[PATH_MAX * 2], to[PATH_MAX * 2];
    pathf(from, sizeof(from), fx->outside, "deeper");
    pathf(to, sizeof(to), fx->root, "sub/deeper");
    assert_int_equal(rename(from, to), 0);
    remove_in(fx->outside, "inner.txt");
    expect_resolve(fx, "sub/deeper/uplink", FOLDER_OK);

    struct cmd_result res = {0};
    folder_fail(&res, FOLDER_E_CHANGED, "sub/deeper/uplink");
    assert_string_equal(res.code, "PROCESSING_ERROR");
    assert_non_null(strstr(res.message, "changed"));
}

/* ---- private files --------------------------------------------------------------- */

static void test_private_paths(void **state)
{
    struct fx *fx = *state;
    char pdir[PATH_MAX * 2], pkey[PATH_MAX * 2], later[PATH_MAX * 2];
    make_dir(fx->root, ".companion");
    write_file(fx->root, ".companion/secret", "private");
    write_file(fx->root, ".companion/other", "private too");
    write_file(fx->root, "key.pem", "KEY");
    make_link(fx->root, "to_private", ".companion/secret");
    make_link(fx->root, "to_private_dir", ".companion");
    make_link(fx->root, "through_private", ".companion/../hello.txt");
    make_link(fx->root, "to_key", "key.pem");
    char hard[PATH_MAX * 2], key_path[PATH_MAX * 2];
    pathf(key_path, sizeof(key_path), fx->root, "key.pem");
    pathf(hard, sizeof(hard), fx->root, "sub/hard.pem");
    assert_int_equal(link(key_path, hard), 0);
    pathf(pdir, sizeof(pdir), fx->root, ".companion");
    pathf(pkey, sizeof(pkey), fx->root, "key.pem");
    pathf(later, sizeof(later), fx->root, "later.db");

    /* Nothing private yet: all of it resolves. */
    expect_resolve(fx, ".companion/secret", FOLDER_OK);
    expect_resolve(fx, "sub/hard.pem", FOLDER_OK);

    const char *priv[] = {pdir, pkey, later};
    set_private(fx, priv, 3);
    const char *denied[] = {
        ".companion",     ".companion/secret",    ".companion/other", "./.companion/", "to_private",
        "to_private_dir", "to_private_dir/other", "through_private",  "key.pem",       "to_key",
        "sub/hard.pem",   "subdir_link/hard.pem"};
    for (size_t i = 0; i < sizeof(denied) / sizeof(denied[0]); i++) {
        expect_resolve(fx, denied[i], FOLDER_E_PRIVATE);
        expect_open_err(fx, denied[i], "FORBIDDEN");
    }
    /* Anything else still resolves. */
    expect_resolve(fx, "hello.txt", FOLDER_OK);
    expect_resolve(fx, ".", FOLDER_OK);

    /* Looked up per request: a private file that appears later, or is
     * replaced by a new one (another inode), is private at once. */
    expect_resolve(fx, "later.db", FOLDER_E_NOT_FOUND);
    write_file(fx->root, "later.db", "db");
    expect_resolve(fx, "later.db", FOLDER_E_PRIVATE);
    remove_in(fx->root, "key.pem");
    write_file(fx->root, "key.pem", "NEW KEY");
    expect_resolve(fx, "key.pem", FOLDER_E_PRIVATE);
    /* The old inode (still linked as sub/hard.pem) is no longer the key. */
    expect_resolve(fx, "sub/hard.pem", FOLDER_OK);

    /* The workspace folder itself private: nothing in it is served. */
    const char *whole[] = {fx->root};
    set_private(fx, whole, 1);
    const char *all[] = {".", "", "hello.txt", "sub/inner.txt", "nothere", "out_file"};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        expect_resolve(fx, all[i], FOLDER_E_PRIVATE);
    struct cmd_result res;
    assert_int_equal(open_path(fx, "hello.txt", 9, &res), CMD_ERROR);
    assert_string_equal(res.code, "FORBIDDEN");
    assert_non_null(strstr(res.message, "Companion"));

    clear_private(fx);
    rm_tree(pdir);
    remove_in(fx->root, "key.pem");
    remove_in(fx->root, "later.db");
    remove_in(fx->root, "sub/hard.pem");
    remove_in(fx->root, "to_private");
    remove_in(fx->root, "to_private_dir");
    remove_in(fx->root, "through_private");
    remove_in(fx->root, "to_key");
}

static void test_private_set(void **state)
{
    struct fx *fx = *state;
    struct folder_private_set set;
    struct workspace_folder f = {.name = "x", .path = fx->root};
    folder_private_load(&f, &set);
    assert_int_equal(set.n, 0);

    char a[PATH_MAX * 2], missing[PATH_MAX * 2];
    pathf(a, sizeof(a), fx->root, "hello.txt");
    pathf(missing, sizeof(missing), fx->root, "no-such-file");
    const char *paths[] = {missing, a};
    set_private(fx, paths, 2);
    f.priv = fx->priv;
    folder_private_load(&f, &set);
    assert_int_equal(set.n, 1); /* only what exists */
    struct stat st;
    assert_int_equal(stat(a, &st), 0);
    assert_true(folder_private_has(&set, &st));
    pathf(a, sizeof(a), fx->root, "sub/inner.txt");
    assert_int_equal(stat(a, &st), 0);
    assert_false(folder_private_has(&set, &st));
}

/* ---- folder_relative -------------------------------------------------------------- */

static void expect_rel(const struct workspace_folder *f, size_t n, const char *abs, int want,
                       const char *want_rel)
{
    char rel[PATH_MAX];
    strcpy(rel, "untouched");
    int k = folder_relative(f, n, abs, rel, sizeof(rel));
    if (k != want)
        fail_msg("folder_relative \"%s\": %d, expected %d", abs ? abs : "(null)", k, want);
    if (want >= 0 && strcmp(rel, want_rel) != 0)
        fail_msg("folder_relative \"%s\": \"%s\", expected \"%s\"", abs, rel, want_rel);
}

static void test_relative_lexical(void **state)
{
    struct workspace_folder f[3] = {{.name = "ws", .path = "/a/ws"},
                                    {.name = "nested", .path = "/a/ws/nested"},
                                    {.name = "other", .path = "/b"}};
    expect_rel(f, 3, "/a/ws/x.c", 0, "x.c");
    expect_rel(f, 3, "/a/ws", 0, ".");
    expect_rel(f, 3, "/a/ws/", 0, ".");
    expect_rel(f, 3, "/a/ws/.", 0, ".");
    expect_rel(f, 3, "/a/ws/./src//x.c", 0, "src/x.c");
    expect_rel(f, 3, "//a//ws//src/", 0, "src");
    expect_rel(f, 3, "/a/ws/src/../x.c", 0, "x.c");
    expect_rel(f, 3, "/a/b/../ws/x.c", 0, "x.c");
    expect_rel(f, 3, "/a/ws/nested/../x.c", 0, "x.c");
    expect_rel(f, 3, "/a/ws/nested/..", 0, ".");
    expect_rel(f, 3, "/../../a/ws/x", 0, "x"); /* `..` at / stays at / */
    expect_rel(f, 3, "/b/c", 2, "c");
    expect_rel(f, 3, "/b", 2, ".");
    /* The deepest folder wins, in any order. */
    expect_rel(f, 3, "/a/ws/nested/y", 1, "y");
    expect_rel(f, 3, "/a/ws/nested", 1, ".");
    struct workspace_folder rev[2] = {f[1], f[0]};
    expect_rel(rev, 2, "/a/ws/nested/y", 0, "y");
    expect_rel(rev, 2, "/a/ws/z", 1, "z");
    /* Outside. */
    expect_rel(f, 3, "/a/ws/..", -1, NULL);
    expect_rel(f, 3, "/a/ws/../wsx/y", -1, NULL);
    expect_rel(f, 3, "/a/wsx", -1, NULL); /* a name prefix is not inside */
    expect_rel(f, 3, "/a/ws-evil/y", -1, NULL);
    expect_rel(f, 3, "/a", -1, NULL);
    expect_rel(f, 3, "/", -1, NULL);
    expect_rel(f, 3, "/a/ws/x/../../../b2", -1, NULL);
    expect_rel(f, 3, "a/ws/x", -1, NULL); /* not absolute */
    expect_rel(f, 3, "", -1, NULL);
    expect_rel(f, 3, NULL, -1, NULL);
    expect_rel(f, 0, "/a/ws/x", -1, NULL);
    /* A root folder holds every absolute path. */
    struct workspace_folder root = {.name = "root", .path = "/"};
    expect_rel(&root, 1, "/etc/passwd", 0, "etc/passwd");
    expect_rel(&root, 1, "/", 0, ".");
    expect_rel(&root, 1, "/x/../..", 0, ".");
    /* Too small an output: -1, not a cut path. */
    char small[4];
    assert_int_equal(folder_relative(f, 3, "/a/ws/longer-name", small, sizeof(small)), -1);
    assert_int_equal(folder_relative(f, 3, "/a/ws/abc", small, sizeof(small)), 0);
    assert_string_equal(small, "abc");
}

/* Reference: `abs` cleaned as text (components, `..` dropping one). */
static void ref_clean(const char *abs, char *out)
{
    char comps[16][16];
    int n = 0;
    const char *c = abs;
    while (*c) {
        while (*c == '/')
            c++;
        size_t len = strcspn(c, "/");
        if (len == 0)
            break;
        if (len == 1 && c[0] == '.') {
        } else if (len == 2 && c[0] == '.' && c[1] == '.') {
            if (n > 0)
                n--;
        } else {
            memcpy(comps[n], c, len);
            comps[n++][len] = '\0';
        }
        c += len;
    }
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        strcat(out, "/");
        strcat(out, comps[i]);
    }
    if (!out[0])
        strcpy(out, "/");
}

static void test_relative_never_dotdot(void **state)
{
    /* Every path of up to 6 components from these, against the reference. */
    static const char *const parts[] = {"a", "ws", "..", ".", "", "nested", "x"};
    const size_t np = sizeof(parts) / sizeof(parts[0]);
    struct workspace_folder f[2] = {{.name = "ws", .path = "/a/ws"},
                                    {.name = "nested", .path = "/a/ws/nested"}};
    size_t total = 1, checked = 0, inside = 0;
    for (int i = 0; i < 6; i++)
        total *= np;
    for (size_t code = 0; code < total; code++) {
        char abs[128] = "", clean[128], rel[PATH_MAX];
        size_t v = code;
        for (int i = 0; i < 6; i++, v /= np) {
            strcat(abs, "/");
            strcat(abs, parts[v % np]);
        }
        int k = folder_relative(f, 2, abs, rel, sizeof(rel));
        ref_clean(abs, clean);
        int want = folder_path_inside("/a/ws/nested", clean) ? 1
                   : folder_path_inside("/a/ws", clean)      ? 0
                                                             : -1;
        if (k != want)
            fail_msg("\"%s\" (clean \"%s\"): folder %d, expected %d", abs, clean, k, want);
        checked++;
        if (k < 0)
            continue;
        inside++;
        /* Never `..`, never absolute, no empty or `.` component. */
        if (rel[0] == '/' || strstr(rel, "//"))
            fail_msg("\"%s\" -> \"%s\"", abs, rel);
        if (strcmp(rel, ".") != 0) {
            char copy[PATH_MAX];
            strcpy(copy, rel);
            for (char *tok = strtok(copy, "/"); tok; tok = strtok(NULL, "/"))
                if (strcmp(tok, "..") == 0 || strcmp(tok, ".") == 0)
                    fail_msg("\"%s\" -> \"%s\"", abs, rel);
        }
        /* Folder + rel is the cleaned path. */
        char back[PATH_MAX + 16];
        if (strcmp(rel, ".") == 0)
            snprintf(back, sizeof(back), "%s", f[k].path);
        else
            snprintf(back, sizeof(back), "%s/%s", f[k].path, rel);
        assert_string_equal(back, clean);
    }
    assert_int_equal(checked, total);
    assert_true(inside > 1000);
}

static void test_path_inside(void **state)
{
    assert_true(folder_path_inside("/a/b", "/a/b"));
    assert_true(folder_path_inside("/a/b", "/a/b/c"));
    assert_false(folder_path_inside("/a/b", "/a/bc"));
    assert_false(folder_path_inside("/a/b", "/a"));
    assert_true(folder_path_inside("/", "/x"));
    assert_false(folder_path_inside("/", "x"));
}

static void test_messages(void **state)
{
    struct fx *fx = *state;
    struct cmd_result res = {0};
    const struct {
        enum folder_err e;
        const char *code, *why;
    } m[] = {
        {FOLDER_E_NOT_FOUND, "NOT_FOUND", "not found"},
        {FOLDER_E_ESCAPE, "FORBIDDEN", "leads outside the workspace folder"},
        {FOLDER_E_LOOP, "FORBIDDEN", "too many levels of symbolic links"},
        {FOLDER_E_TOO_LONG, "FORBIDDEN", "path too long"},
        {FOLDER_E_ACCESS, "FORBIDDEN", "permission denied"},
        {FOLDER_E_PRIVATE, "FORBIDDEN", "never served"},
        {FOLDER_E_CHANGED, "PROCESSING_ERROR", "changed during the request"},
        {FOLDER_E_IO, "PROCESSING_ERROR", "cannot be opened"},
    };
    for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
        memset(&res, 0, sizeof(res));
        assert_int_equal(folder_fail(&res, m[i].e, "a/b.txt"), CMD_ERROR);
        assert_string_equal(res.code, m[i].code);
        assert_non_null(strstr(res.message, "\"a/b.txt\""));
        assert_non_null(strstr(res.message, m[i].why));
    }
    memset(&res, 0, sizeof(res));
    folder_fail_errno(&res, ENOTDIR, "x");
    assert_string_equal(res.code, "NOT_FOUND");
    folder_fail_errno(&res, EACCES, "x");
    assert_non_null(strstr(res.message, "permission denied"));
    folder_fail_errno(&res, ELOOP, "x");
    assert_non_null(strstr(res.message, "symbolic links"));

    /* A long path is cut at FOLDER_MSG_PATH_MAX bytes on a character
     * boundary, repaired, and marked. */
    char p[1200];
    for (int i = 0; i < 399; i++)
        memcpy(p + 3 * i, "\xe2\x82\xac", 3); /* euro signs */
    p[1197] = '\0';
    memset(&res, 0, sizeof(res));
    folder_fail(&res, FOLDER_E_NOT_FOUND, p);
    assert_true(utf8_is_valid(res.message, strlen(res.message)));
    assert_non_null(strstr(res.message, "\"...: not found"));
    assert_null(strstr(res.message, "\xef\xbf\xbd")); /* cut cleanly, not repaired */
    assert_true(strlen(res.message) < FOLDER_MSG_PATH_MAX + 40);
    /* Short, but longer once repaired (each bad byte is 3 bytes of
     * U+FFFD): cut too, and marked. */
    char bad[151];
    memset(bad, 0xff, 150);
    bad[150] = '\0';
    memset(&res, 0, sizeof(res));
    folder_fail(&res, FOLDER_E_NOT_FOUND, bad);
    assert_true(utf8_is_valid(res.message, strlen(res.message)));
    assert_non_null(strstr(res.message, "\"...: not found"));
    assert_true(strlen(res.message) < FOLDER_MSG_PATH_MAX + 40);
    /* Bytes that are not UTF-8 become U+FFFD. */
    memset(&res, 0, sizeof(res));
    folder_fail(&res, FOLDER_E_ESCAPE, "x\xff\xfe");
    assert_true(utf8_is_valid(res.message, strlen(res.message)));
    assert_non_null(strstr(res.message, "\xef\xbf\xbd"));
    check_message(fx, &res);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, test_setup, test_teardown)
    const struct CMUnitTest tests[] = {
        T(test_check_path_rules),
        T(test_open_refuses_before_opening),
        T(test_normalize),
        T(test_pick_and_find),
        T(test_resolve_inside),
        T(test_not_found),
        T(test_symlinks_leading_out),
        T(test_loops_and_hops),
        T(test_too_long),
        T(test_open_regular),
        T(test_swap_between_resolve_and_open),
        T(test_directory_moved_out_mid_walk),
        T(test_private_paths),
        T(test_private_set),
        T(test_relative_lexical),
        T(test_relative_never_dotdot),
        T(test_path_inside),
        T(test_messages),
    };
#undef T
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
