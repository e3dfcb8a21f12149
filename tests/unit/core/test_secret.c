/*
 * Unit tests for helper/secret: where the file lives, how it is made, and
 * which files are refused. Each test gets its own temporary folder as
 * XDG_CONFIG_HOME; HOME and XDG_CONFIG_HOME are restored afterwards.
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
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/secret.h"

struct fixture {
    char root[PATH_MAX]; /* the temporary folder, XDG_CONFIG_HOME */
    char path[PATH_MAX]; /* root/companion/secret */
    char dir[PATH_MAX];  /* root/companion */
    char *old_xdg;
    char *old_home;
};

static char *dup_env(const char *name)
{
    const char *v = getenv(name);
    return v ? strdup(v) : NULL;
}

static void restore_env(const char *name, const char *value)
{
    if (value)
        setenv(name, value, 1);
    else
        unsetenv(name);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return -1;
    strcpy(f->root, "/tmp/companion-secret-test-XXXXXX");
    if (mkdtemp(f->root) == NULL)
        return -1;
    assert_true(snprintf(f->dir, sizeof(f->dir), "%s/companion", f->root) < (int)sizeof(f->dir));
    assert_true(snprintf(f->path, sizeof(f->path), "%s/secret", f->dir) < (int)sizeof(f->path));
    f->old_xdg = dup_env("XDG_CONFIG_HOME");
    f->old_home = dup_env("HOME");
    setenv("XDG_CONFIG_HOME", f->root, 1);
    *state = f;
    return 0;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    /* Tests change modes; make sure removal is not blocked by them. */
    if (flag == FTW_DP || flag == FTW_D)
        chmod(p, 0700);
    return remove(p);
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    nftw(f->root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    restore_env("XDG_CONFIG_HOME", f->old_xdg);
    restore_env("HOME", f->old_home);
    free(f->old_xdg);
    free(f->old_home);
    free(f);
    return 0;
}

static void write_file(const char *path, const void *data, size_t len, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

/* Names in a folder other than "." and "..". */
static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    }
    closedir(d);
    return n;
}

static void assert_hex64(const char *s)
{
    assert_int_equal(strlen(s), 64);
    for (size_t i = 0; i < 64; i++)
        assert_non_null(strchr("0123456789abcdef", s[i]));
}

static void test_create(void **state)
{
    struct fixture *f = *state;
    char path[PATH_MAX];
    char err[512] = "";
    char *s = NULL;
    struct stat st;
    char disk[128];

    assert_int_equal(secret_default_path(path, sizeof(path), err, sizeof(err)), 0);
    assert_string_equal(path, f->path);
    assert_int_equal(secret_load(path, 1, &s, err, sizeof(err)), 0);
    assert_non_null(s);
    assert_hex64(s);

    assert_int_equal(stat(f->path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(stat(f->dir, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0700);

    /* Exactly the 64 characters on disk, no newline, and no temp file left. */
    int fd = open(f->path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(read(fd, disk, sizeof(disk)), 64);
    close(fd);
    assert_memory_equal(disk, s, 64);
    assert_int_equal(count_entries(f->dir), 1);
    secret_free(s);
}

static void test_load_twice_same(void **state)
{
    struct fixture *f = *state;
    char err[512];
    char *a = NULL, *b = NULL, *c = NULL;

    assert_int_equal(secret_load(f->path, 1, &a, err, sizeof(err)), 0);
    assert_int_equal(secret_load(f->path, 1, &b, err, sizeof(err)), 0);
    assert_int_equal(secret_load(f->path, 0, &c, err, sizeof(err)), 0);
    assert_string_equal(a, b);
    assert_string_equal(a, c);
    secret_free(a);
    secret_free(b);
    secret_free(c);
}

static void test_two_secrets_differ(void **state)
{
    struct fixture *f = *state;
    char other[PATH_MAX];
    char err[512];
    char *a = NULL, *b = NULL;

    assert_true(snprintf(other, sizeof(other), "%s/other/secret", f->root) < (int)sizeof(other));
    assert_int_equal(secret_load(f->path, 1, &a, err, sizeof(err)), 0);
    assert_int_equal(secret_load(other, 1, &b, err, sizeof(err)), 0);
    assert_string_not_equal(a, b);
    secret_free(a);
    secret_free(b);
}

static void test_nested_folders_created(void **state)
{
    struct fixture *f = *state;
    char xdg[PATH_MAX], path[PATH_MAX], sub[PATH_MAX];
    char err[512];
    char *s = NULL;
    struct stat st;

    assert_true(snprintf(xdg, sizeof(xdg), "%s/a/b", f->root) < (int)sizeof(xdg));
    setenv("XDG_CONFIG_HOME", xdg, 1);
    assert_int_equal(secret_default_path(path, sizeof(path), err, sizeof(err)), 0);
    assert_int_equal(secret_load(path, 1, &s, err, sizeof(err)), 0);
    assert_hex64(s);
    assert_true(snprintf(sub, sizeof(sub), "%s/a", f->root) < (int)sizeof(sub));
    assert_int_equal(stat(sub, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);
    assert_true(snprintf(sub, sizeof(sub), "%s/companion", xdg) < (int)sizeof(sub));
    assert_int_equal(stat(sub, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);
    secret_free(s);
}

static void test_group_or_other_access_refused(void **state)
{
    struct fixture *f = *state;
    static const mode_t bad[] = {0640, 0604, 0620, 0602, 0610, 0601, 0660, 0644, 0666};
    char err[512];
    char *s = NULL;

    assert_int_equal(secret_load(f->path, 1, &s, err, sizeof(err)), 0);
    secret_free(s);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(chmod(f->path, bad[i]), 0);
        s = (char *)"untouched";
        err[0] = '\0';
        /* create=1 must not "repair" it by making a new one either. */
        assert_int_equal(secret_load(f->path, 1, &s, err, sizeof(err)), -1);
        assert_null(s);
        assert_non_null(strstr(err, "chmod 600"));
        assert_non_null(strstr(err, f->path));
    }
    assert_int_equal(chmod(f->path, 0400), 0); /* owner-only read is fine */
    assert_int_equal(secret_load(f->path, 0, &s, err, sizeof(err)), 0);
    secret_free(s);
    assert_int_equal(chmod(f->path, 0600), 0);
    assert_int_equal(secret_load(f->path, 0, &s, err, sizeof(err)), 0);
    secret_free(s);
}

static void test_missing_without_create(void **state)
{
    struct fixture *f = *state;
    char err[512] = "";
    char *s = (char *)"untouched";

    assert_int_equal(secret_load(f->path, 0, &s, err, sizeof(err)), -1);
    assert_null(s);
    assert_non_null(strstr(err, "does not exist"));
    assert_int_equal(access(f->dir, F_OK), -1); /* nothing made */
    /* Same with the folder present. */
    assert_int_equal(mkdir(f->dir, 0700), 0);
    assert_int_equal(secret_load(f->path, 0, &s, err, sizeof(err)), -1);
    assert_int_equal(access(f->path, F_OK), -1);
    assert_int_equal(secret_load(f->path, 0, &s, NULL, 0), -1);
}

static void test_directory_instead_of_file(void **state)
{
    struct fixture *f = *state;
    char err[512];
    char *s = NULL;

    assert_int_equal(mkdir(f->dir, 0700), 0);
    assert_int_equal(mkdir(f->path, 0700), 0);
    assert_int_equal(secret_load(f->path, 0, &s, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not a regular file"));
    assert_int_equal(secret_load(f->path, 1, &s, err, sizeof(err)), -1);
    assert_null(s);
}

static void test_fifo_refused_without_blocking(void **state)
{
    struct fixture *f = *state;
    char err[512];
    char *s = NULL;

    assert_int_equal(mkdir(f->dir, 0700), 0);
    assert_int_equal(mkfifo(f->path, 0600), 0);
    alarm(5); /* a blocking open would hang here; fail loudly instead */
    assert_int_equal(secret_load(f->path, 1, &s, err, sizeof(err)), -1);
    alarm(0);
    assert_non_null(strstr(err, "not a regular file"));
}

static void load_content(const struct fixture *f, const char *data, size_t len, int want_rc,
                         const char *want)
{
    char err[512] = "";
    char *s = NULL;

    write_file(f->path, data, len, 0600);
    assert_int_equal(secret_load(f->path, 1, &s, err, sizeof(err)), want_rc);
    if (want_rc == 0) {
        assert_string_equal(s, want);
        secret_free(s);
    } else {
        assert_null(s);
        assert_true(strlen(err) > 0);
        /* Refusing is not replacing: the file is left as it was. */
        struct stat st;
        assert_int_equal(stat(f->path, &st), 0);
        assert_int_equal((size_t)st.st_size, len);
    }
}

static void test_content_rules(void **state)
{
    struct fixture *f = *state;
    char big[4200];

    assert_int_equal(mkdir(f->dir, 0700), 0);
#define K32 "0123456789abcdef0123456789abcdef" /* the shortest accepted: 32 bytes */
    load_content(f, K32, 32, 0, K32);
    load_content(f, K32 "\n", 33, 0, K32); /* one newline stripped */
    load_content(f, "my long pass phrase of 32 bytes!", 32, 0,
                 "my long pass phrase of 32 bytes!"); /* spaces are printable */
    load_content(f, K32 "\n\n", 34, -1, NULL);        /* only one */
    load_content(f, K32 "\r\n", 34, -1, NULL);
    load_content(f, "", 0, -1, NULL);
    load_content(f, "\n", 1, -1, NULL);
    load_content(f, "abc", 3, -1, NULL);    /* too short to be a key */
    load_content(f, K32 + 1, 31, -1, NULL); /* one byte short */
    load_content(f, "ab\x01z" K32, 36, -1, NULL);
    load_content(f, "ab\0z" K32, 36, -1, NULL);
    load_content(f, "ab\tz" K32, 36, -1, NULL);
    load_content(f, "caf\xc3\xa9" K32, 37, -1, NULL);
    load_content(f, "\n" K32, 33, -1, NULL);
    memset(big, 'k', sizeof(big));
    big[4096] = '\0';
    load_content(f, big, 4096, 0, big);
    big[4096] = 'k';
    load_content(f, big, 4097, -1, NULL); /* all printable, one byte too many */
}

static void test_default_path(void **state)
{
    struct fixture *f = *state;
    char path[PATH_MAX], want[PATH_MAX], err[512];
    char *s = NULL;
    struct stat st;

    setenv("HOME", f->root, 1);
    assert_true(snprintf(want, sizeof(want), "%s/.config/companion/secret", f->root) <
                (int)sizeof(want));

    unsetenv("XDG_CONFIG_HOME");
    assert_int_equal(secret_default_path(path, sizeof(path), err, sizeof(err)), 0);
    assert_string_equal(path, want);
    setenv("XDG_CONFIG_HOME", "", 1);
    assert_int_equal(secret_default_path(path, sizeof(path), err, sizeof(err)), 0);
    assert_string_equal(path, want);
    setenv("XDG_CONFIG_HOME", "relative/dir", 1); /* invalid per the XDG spec */
    assert_int_equal(secret_default_path(path, sizeof(path), err, sizeof(err)), 0);
    assert_string_equal(path, want);

    assert_int_equal(secret_load(path, 1, &s, err, sizeof(err)), 0);
    assert_hex64(s);
    secret_free(s);
    assert_true(snprintf(want, sizeof(want), "%s/.config/companion", f->root) < (int)sizeof(want));
    assert_int_equal(stat(want, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);

    setenv("XDG_CONFIG_HOME", "/x", 1);
    assert_int_equal(secret_default_path(path, sizeof(path), err, sizeof(err)), 0);
    assert_string_equal(path, "/x/companion/secret");
    assert_int_equal(secret_default_path(path, 10, err, sizeof(err)), -1); /* too small */
    assert_string_equal(path, "");

    unsetenv("XDG_CONFIG_HOME");
    unsetenv("HOME");
    err[0] = '\0';
    assert_int_equal(secret_default_path(path, sizeof(path), err, sizeof(err)), -1);
    assert_non_null(strstr(err, "HOME"));
    assert_int_equal(secret_default_path(path, sizeof(path), NULL, 0), -1);
}

static void test_full_disk_leaves_nothing(void **state)
{
    struct fixture *f = *state;
    struct rlimit old, lim;
    char err[512] = "";
    char *s = (char *)"untouched";
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);

    /* A file size limit makes write() fail part-way, as a full disk would. */
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = 10;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    int rc = secret_load(f->path, 1, &s, err, sizeof(err));
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, old_handler);

    assert_int_equal(rc, -1);
    assert_null(s);
    assert_non_null(strstr(err, "cannot write"));
    assert_int_equal(access(f->path, F_OK), -1);
    assert_int_equal(count_entries(f->dir), 0); /* temp file removed too */

    /* With room again it works. */
    assert_int_equal(secret_load(f->path, 1, &s, err, sizeof(err)), 0);
    assert_hex64(s);
    secret_free(s);
}

static void test_folder_writable_by_others_refused(void **state)
{
    struct fixture *f = *state;
    char err[512];
    char *s = NULL;

    assert_int_equal(secret_load(f->path, 1, &s, err, sizeof(err)), 0);
    secret_free(s);
    assert_int_equal(chmod(f->dir, 0770), 0);
    assert_int_equal(secret_load(f->path, 0, &s, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "chmod 700"));
    assert_int_equal(chmod(f->dir, 0757), 0);
    assert_int_equal(secret_load(f->path, 1, &s, err, sizeof(err)), -1);
    assert_int_equal(chmod(f->dir, 01777), 0); /* sticky, like /tmp */
    assert_int_equal(secret_load(f->path, 0, &s, err, sizeof(err)), 0);
    secret_free(s);
    assert_int_equal(chmod(f->dir, 0755), 0); /* readable folder, private file: fine */
    assert_int_equal(secret_load(f->path, 0, &s, err, sizeof(err)), 0);
    secret_free(s);
}

static void test_foreign_owner_refused(void **state)
{
    struct fixture *f = *state;
    char err[512];
    char *s = NULL;

    if (geteuid() != 0)
        skip(); /* only root can hand a file to another user */
    assert_int_equal(secret_load(f->path, 1, &s, err, sizeof(err)), 0);
    secret_free(s);
    s = NULL;
    assert_int_equal(chown(f->path, 65534, 65534), 0);
    assert_int_equal(secret_load(f->path, 1, &s, err, sizeof(err)), -1);
    assert_null(s);
    assert_non_null(strstr(err, "owned"));
}

static void test_relative_path(void **state)
{
    struct fixture *f = *state;
    char cwd[PATH_MAX];
    char err[512];
    char *s = NULL;
    struct stat st;

    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(f->root), 0);
    int rc = secret_load("plain-secret", 1, &s, err, sizeof(err));
    int st_rc = stat("plain-secret", &st);
    assert_int_equal(chdir(cwd), 0);
    assert_int_equal(rc, 0);
    assert_int_equal(st_rc, 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_hex64(s);
    secret_free(s);
}

static void test_bad_arguments(void **state)
{
    char err[512];
    char *s = NULL;

    assert_int_equal(secret_load(NULL, 1, &s, err, sizeof(err)), -1);
    assert_int_equal(secret_load("", 1, &s, err, sizeof(err)), -1);
    assert_int_equal(secret_load("/tmp/x", 1, NULL, err, sizeof(err)), -1);
    assert_int_equal(secret_default_path(NULL, 0, err, sizeof(err)), -1);
    secret_free(NULL);
    secret_free(strdup("wipe me"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_twice_same, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_secrets_differ, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nested_folders_created, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_or_other_access_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_without_create, setup, teardown),
        cmocka_unit_test_setup_teardown(test_directory_instead_of_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fifo_refused_without_blocking, setup, teardown),
        cmocka_unit_test_setup_teardown(test_content_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_default_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_disk_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_folder_writable_by_others_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_owner_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relative_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
