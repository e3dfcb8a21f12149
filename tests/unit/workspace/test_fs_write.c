/*
 * fs.write / fs.delete called directly: results and hashes (OpenSSL's
 * SHA256 and the file system as oracles), atomic replacement (new inode,
 * mode kept, no temporary file left), CONFLICT with the current hash in
 * the error's data, CONTENT_TOO_LARGE, strict base64, unknown members,
 * confinement (.git, .vscode, symlinks at the last component and on the
 * way, private files that exist and that do not yet), and fs.read's sha256
 * of the whole file. Each test gets a fresh temporary folder; every test
 * checks that no descriptor was left open.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <openssl/sha.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "workspace/fs.h"
#include "workspace/fs_write.h"

struct fx {
    char root[PATH_MAX];
    char outside[PATH_MAX];
    struct workspace_folder folder;
    struct workspace_private *priv;
    int fds;
};

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    assert_non_null(d);
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static void put(const struct fx *fx, const char *rel, const char *content)
{
    char p[PATH_MAX * 2];
    snprintf(p, sizeof(p), "%s/%s", fx->root, rel);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    fputs(content, f);
    assert_int_equal(fclose(f), 0);
}

static char *slurp(const struct fx *fx, const char *rel)
{
    char p[PATH_MAX * 2];
    snprintf(p, sizeof(p), "%s/%s", fx->root, rel);
    FILE *f = fopen(p, "rb");
    if (!f)
        return NULL;
    char *buf = calloc(1, 1 << 16);
    assert_non_null(buf);
    size_t n = fread(buf, 1, (1 << 16) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static int exists(const struct fx *fx, const char *rel)
{
    char p[PATH_MAX * 2];
    struct stat st;
    snprintf(p, sizeof(p), "%s/%s", fx->root, rel);
    return lstat(p, &st) == 0;
}

static void sub_dir(const struct fx *fx, const char *rel)
{
    char p[PATH_MAX * 2];
    snprintf(p, sizeof(p), "%s/%s", fx->root, rel);
    assert_int_equal(mkdir(p, 0755), 0);
}

static void link_at(const struct fx *fx, const char *rel, const char *target)
{
    char p[PATH_MAX * 2];
    snprintf(p, sizeof(p), "%s/%s", fx->root, rel);
    assert_int_equal(symlink(target, p), 0);
}

static void sha_hex(const char *s, size_t n, char out[65])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)s, n, md);
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* No fs.write temporary file anywhere in the folder's top two levels. */
static void no_temp(const struct fx *fx, const char *sub)
{
    char p[PATH_MAX * 2];
    snprintf(p, sizeof(p), "%s/%s", fx->root, sub);
    DIR *d = opendir(p);
    struct dirent *e;
    assert_non_null(d);
    while ((e = readdir(d)))
        if (strncmp(e->d_name, FS_WRITE_TEMP_PREFIX, strlen(FS_WRITE_TEMP_PREFIX)) == 0)
            fail_msg("temporary file left: %s", e->d_name);
    closedir(d);
}

static enum cmd_status do_write(const struct fx *fx, const char *json, size_t max,
                                struct cmd_result *res)
{
    json_object *a = json_tokener_parse(json);
    if (!a)
        fail_msg("bad test JSON: %s", json);
    memset(res, 0, sizeof(*res));
    enum cmd_status st = fs_write(&fx->folder, 1, a, max, res);
    json_object_put(a);
    return st;
}

static enum cmd_status do_delete(const struct fx *fx, const char *json, struct cmd_result *res)
{
    json_object *a = json_tokener_parse(json);
    if (!a)
        fail_msg("bad test JSON: %s", json);
    memset(res, 0, sizeof(*res));
    enum cmd_status st = fs_delete(&fx->folder, 1, a, res);
    json_object_put(a);
    return st;
}

static void expect_code(enum cmd_status st, struct cmd_result *res, const char *code,
                        const struct fx *fx)
{
    if (st != CMD_ERROR)
        fail_msg("expected %s, got %s", code,
                 res->result ? json_object_to_json_string(res->result) : "success");
    assert_null(res->result);
    if (strcmp(res->code, code) != 0)
        fail_msg("expected %s, got %s: %s", code, res->code, res->message);
    if (strstr(res->message, fx->root) || strstr(res->message, fx->outside))
        fail_msg("message leaks a path: %s", res->message);
}

static void clear(struct cmd_result *res)
{
    json_object_put(res->result);
    json_object_put(res->data);
    memset(res, 0, sizeof(*res));
}

static const char *field(json_object *o, const char *k)
{
    json_object *v;
    assert_true(json_object_object_get_ex(o, k, &v));
    return json_object_get_string(v);
}

/* ---- fixture -------------------------------------------------------------- */

static int setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    char tmpl[] = "/tmp/companion-fsw-unit-XXXXXX", otmpl[] = "/tmp/companion-fsw-out-XXXXXX";
    assert_non_null(fx);
    assert_non_null(mkdtemp(tmpl));
    assert_non_null(mkdtemp(otmpl));
    assert_non_null(realpath(tmpl, fx->root));
    assert_non_null(realpath(otmpl, fx->outside));
    fx->folder.name = "w";
    fx->folder.path = fx->root;
    fx->fds = count_fds();
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    int fds = count_fds();
    nftw(fx->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    nftw(fx->outside, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(fx->priv);
    int leaked = fds != fx->fds;
    free(fx);
    if (leaked)
        fail_msg("file descriptors leaked");
    return 0;
}

/* ---- tests ------------------------------------------------------------------ */

static void test_write_new_and_read_back(void **state)
{
    struct fx *fx = *state;
    struct cmd_result res;
    char want[65];
    mode_t um = umask(022);
    umask(um);
    assert_int_equal(do_write(fx, "{\"path\":\"a.txt\",\"content\":\"hello\\n\"}", 1024, &res),
                     CMD_OK);
    sha_hex("hello\n", 6, want);
    assert_string_equal(field(res.result, "sha256"), want);
    assert_string_equal(field(res.result, "path"), "a.txt");
    assert_int_equal(json_object_get_int(json_object_object_get(res.result, "bytes")), 6);
    assert_true(json_object_get_boolean(json_object_object_get(res.result, "created")));
    clear(&res);
    char *s = slurp(fx, "a.txt");
    assert_string_equal(s, "hello\n");
    free(s);
    struct stat st;
    char p[PATH_MAX * 2];
    snprintf(p, sizeof(p), "%s/a.txt", fx->root);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644 & ~um);

    /* fs.read's sha256 is the same. */
    json_object *a = json_tokener_parse("{\"path\":\"a.txt\",\"maxBytes\":1}");
    memset(&res, 0, sizeof(res));
    assert_int_equal(fs_read(&fx->folder, 1, a, &res), CMD_OK);
    json_object_put(a);
    assert_string_equal(field(res.result, "sha256"), want);
    assert_true(json_object_get_boolean(json_object_object_get(res.result, "truncated")));
    clear(&res);
    no_temp(fx, ".");
}

static void test_replace_keeps_mode_new_inode(void **state)
{
    struct fx *fx = *state;
    struct cmd_result res;
    char p[PATH_MAX * 2], cur[65], json[256];
    struct stat before, after;
    put(fx, "run.sh", "old");
    snprintf(p, sizeof(p), "%s/run.sh", fx->root);
    assert_int_equal(chmod(p, 0750), 0);
    assert_int_equal(stat(p, &before), 0);
    sha_hex("old", 3, cur);
    snprintf(json, sizeof(json),
             "{\"path\":\"./run.sh\",\"content\":\"bmV3\",\"encoding\":\"base64\","
             "\"expectedSha256\":\"%s\",\"create\":false}",
             cur);
    assert_int_equal(do_write(fx, json, 1024, &res), CMD_OK);
    assert_false(json_object_get_boolean(json_object_object_get(res.result, "created")));
    assert_string_equal(field(res.result, "path"), "run.sh");
    clear(&res);
    assert_int_equal(stat(p, &after), 0);
    assert_int_equal(after.st_mode & 07777, 0750);
    assert_true(after.st_ino != before.st_ino); /* renamed into place, not rewritten */
    char *s = slurp(fx, "run.sh");
    assert_string_equal(s, "new");
    free(s);
    no_temp(fx, ".");
}

static void test_conflict_and_limits(void **state)
{
    struct fx *fx = *state;
    struct cmd_result res;
    char cur[65], json[256];
    put(fx, "f.txt", "current");
    sha_hex("current", 7, cur);
    snprintf(json, sizeof(json),
             "{\"path\":\"f.txt\",\"content\":\"x\",\"expectedSha256\":\"%064d\"}", 0);
    expect_code(do_write(fx, json, 1024, &res), &res, "CONFLICT", fx);
    assert_non_null(res.data);
    assert_string_equal(field(res.data, "currentSha256"), cur);
    clear(&res);
    snprintf(json, sizeof(json), "{\"path\":\"nope.txt\",\"expectedSha256\":\"%s\"}", cur);
    expect_code(do_delete(fx, json, &res), &res, "CONFLICT", fx);
    assert_true(
        json_object_is_type(json_object_object_get(res.data, "currentSha256"), json_type_null));
    clear(&res);
    char *s = slurp(fx, "f.txt");
    assert_string_equal(s, "current");
    free(s);

    /* The cap counts decoded bytes: 4 base64 characters are 3 bytes. */
    expect_code(do_write(fx, "{\"path\":\"g\",\"content\":\"abcd\"}", 3, &res), &res,
                "CONTENT_TOO_LARGE", fx);
    assert_int_equal(
        do_write(fx, "{\"path\":\"g\",\"content\":\"abcd\",\"encoding\":\"base64\"}", 3, &res),
        CMD_OK);
    clear(&res);
    expect_code(
        do_write(fx, "{\"path\":\"h\",\"content\":\"abcdabcd\",\"encoding\":\"base64\"}", 3, &res),
        &res, "CONTENT_TOO_LARGE", fx);
    assert_false(exists(fx, "h"));
    expect_code(do_write(fx, "{\"path\":\"h\",\"content\":\"x\",\"create\":false}", 10, &res), &res,
                "NOT_FOUND", fx);
    assert_false(exists(fx, "h"));
    no_temp(fx, ".");
}

static void test_bad_arguments(void **state)
{
    struct fx *fx = *state;
    struct cmd_result res;
    static const char *const bad[] = {
        "[]",
        "{\"path\":\"a\"}",
        "{\"content\":\"a\"}",
        "{\"path\":\"a\",\"content\":1}",
        "{\"path\":\"a\",\"content\":\"a\",\"encoding\":\"hex\"}",
        "{\"path\":\"a\",\"content\":\"YQ\",\"encoding\":\"base64\"}",    /* no padding */
        "{\"path\":\"a\",\"content\":\"Y Q==\",\"encoding\":\"base64\"}", /* a space */
        "{\"path\":\"a\",\"content\":\"YQ=a\",\"encoding\":\"base64\"}",  /* '=' inside */
        "{\"path\":\"a\",\"content\":\"a\",\"expectedSha256\":\"00\"}",
        "{\"path\":\"a\",\"content\":\"a\",\"create\":1}",
        "{\"path\":\"a\",\"content\":\"a\",\"overwrite\":true}",
        "{\"path\":\"\",\"content\":\"a\"}",
        "{\"path\":\".\",\"content\":\"a\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        expect_code(do_write(fx, bad[i], 100, &res), &res, "INVALID_ARGS", fx);
        clear(&res);
    }
    expect_code(do_delete(fx, "{\"path\":\"a\",\"force\":true}", &res), &res, "INVALID_ARGS", fx);
    assert_false(exists(fx, "a"));
}

static void test_protected_and_links(void **state)
{
    struct fx *fx = *state;
    struct cmd_result res;
    char json[PATH_MAX * 2];
    sub_dir(fx, ".git");
    sub_dir(fx, "sub");
    sub_dir(fx, "sub/.VSCode");
    put(fx, "target.txt", "t");
    link_at(fx, "ln", "target.txt");
    link_at(fx, "gl", ".git");
    link_at(fx, "out", fx->outside);
    static const char *const forbidden[] = {".git/config",
                                            ".git",
                                            "sub/.VSCode/tasks.json",
                                            ".vscode/settings.json",
                                            "gl/hooks",
                                            "ln",
                                            "out/x.txt",
                                            "../x",
                                            "/etc/x"};
    for (size_t i = 0; i < sizeof(forbidden) / sizeof(forbidden[0]); i++) {
        snprintf(json, sizeof(json), "{\"path\":\"%s\",\"content\":\"x\"}", forbidden[i]);
        expect_code(do_write(fx, json, 100, &res), &res, "FORBIDDEN", fx);
        snprintf(json, sizeof(json), "{\"path\":\"%s\"}", forbidden[i]);
        expect_code(do_delete(fx, json, &res), &res, "FORBIDDEN", fx);
    }
    assert_false(exists(fx, ".git/config"));
    assert_false(exists(fx, ".git/hooks"));
    DIR *d = opendir(fx->outside);
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    assert_int_equal(n, 2); /* still empty */
    assert_true(fs_write_path_protected("a/.GiT/b"));
    assert_true(fs_write_path_protected(".vscode"));
    assert_false(fs_write_path_protected(".github/workflows/x.yml"));
    assert_false(fs_write_path_protected("a/.gitignore"));
    assert_false(fs_write_path_protected("vscode/.git2"));
    /* Deleting: a directory never; a file yes. */
    expect_code(do_delete(fx, "{\"path\":\"sub\"}", &res), &res, "INVALID_ARGS", fx);
    assert_int_equal(do_delete(fx, "{\"path\":\"target.txt\"}", &res), CMD_OK);
    clear(&res);
    assert_false(exists(fx, "target.txt"));
    assert_true(exists(fx, "ln")); /* the dangling link is left alone */
}

static void test_private_files(void **state)
{
    struct fx *fx = *state;
    struct cmd_result res;
    char store[PATH_MAX + 16], key[PATH_MAX + 16];
    sub_dir(fx, "store");
    put(fx, "store/s.json", "{}");
    snprintf(store, sizeof(store), "%s/store", fx->root);
    snprintf(key, sizeof(key), "%s/key.pem", fx->root); /* does not exist yet */
    fx->priv = calloc(1, sizeof(*fx->priv) + 2 * sizeof(char *));
    assert_non_null(fx->priv);
    atomic_init(&fx->priv->refs, 1);
    fx->priv->n = 2;
    fx->priv->paths[0] = store;
    fx->priv->paths[1] = key;
    fx->folder.priv = fx->priv;
    expect_code(do_write(fx, "{\"path\":\"store/s.json\",\"content\":\"x\"}", 100, &res), &res,
                "FORBIDDEN", fx);
    expect_code(do_write(fx, "{\"path\":\"store/new\",\"content\":\"x\"}", 100, &res), &res,
                "FORBIDDEN", fx);
    expect_code(do_write(fx, "{\"path\":\"key.pem\",\"content\":\"x\"}", 100, &res), &res,
                "FORBIDDEN", fx);
    expect_code(do_delete(fx, "{\"path\":\"store/s.json\"}", &res), &res, "FORBIDDEN", fx);
    assert_false(exists(fx, "key.pem"));
    assert_false(exists(fx, "store/new"));
    assert_int_equal(do_write(fx, "{\"path\":\"key.pem2\",\"content\":\"x\"}", 100, &res), CMD_OK);
    clear(&res);
    fx->folder.priv = NULL;
}

static void test_hash_rest(void **state)
{
    char a[65], b[65];
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    (void)state;
    assert_int_equal(fs_sha256_rest("abc", 3, fd, a), 0);
    close(fd);
    sha_hex("abc", 3, b);
    assert_string_equal(a, b);
    assert_int_equal(fs_sha256_rest("", (size_t)FS_HASH_MAX_BYTES + 1, -1, a), 1);
    assert_string_equal(a, "");
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_write_new_and_read_back),  T(test_replace_keeps_mode_new_inode),
        T(test_conflict_and_limits),      T(test_bad_arguments),
        T(test_protected_and_links),      T(test_private_files),
        cmocka_unit_test(test_hash_rest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
