/*
 * fs.list / fs.read: results, encodings and caps, and above all confinement
 * (no `..`, no absolute paths, no symlink escape, no FIFO/device reads, no
 * absolute path in any message). Each test runs against one temporary
 * workspace built by the group setup; every test also checks that no file
 * descriptor was left open.
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
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "workspace/folder.h"
#include "workspace/fs.h"
#include "workspace/utf8.h"

#define BIG_FILE_BYTES (2 * 1024 * 1024)
#define BAD_NAME       "bad\xff\xfename.txt"
#define SECRET         "TOPSECRET-outside"

/* Four characters of 1, 2, 3 and 4 bytes: boundaries at 1, 3, 6, 10. */
static const char utf8_text[] = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";

struct fx {
    char tmpl[64];              /* as mkdtemp made it */
    char root[PATH_MAX];        /* realpath: the first folder */
    char other[PATH_MAX + 8];   /* the second folder */
    char outside[PATH_MAX + 8]; /* a sibling of root whose name starts with root's */
    struct workspace_folder folders[2];
    int have_chardev;
    int fds; /* open fds when the current test started */
};

/* ---- helpers ------------------------------------------------------------ */

static void write_file(const char *dir, const char *name, const void *data, size_t len)
{
    char p[PATH_MAX * 2];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    if (len)
        assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void make_dir(const char *dir, const char *name)
{
    char p[PATH_MAX * 2];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    assert_int_equal(mkdir(p, 0755), 0);
}

static void make_link(const char *dir, const char *name, const char *target)
{
    char p[PATH_MAX * 2];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    assert_int_equal(symlink(target, p), 0);
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

/* Checks what every message must satisfy, whatever the outcome. */
static void check_message(const struct fx *fx, const struct cmd_result *res)
{
    const char *m = res->message;
    /* An absolute path would show as "/... or follow a space; the client's
     * relative path (even "up/etc/passwd") may be echoed. */
    if (strstr(m, fx->root) || strstr(m, fx->tmpl) || strstr(m, "\"/") || strstr(m, " /") ||
        strstr(m, "root:"))
        fail_msg("message leaks a path or content: %s", m);
    assert_true(utf8_is_valid(m, strlen(m)));
    assert_true(strlen(m) < sizeof(res->message) - 1); /* not cut by the buffer */
}

static void expect_err(const struct fx *fx, enum cmd_status st, struct cmd_result *res,
                       const char *code)
{
    if (st != CMD_ERROR) {
        const char *txt = res->result ? json_object_to_json_string(res->result) : "(null)";
        fail_msg("expected %s, got success: %.300s", code, txt);
    }
    assert_null(res->result);
    assert_non_null(res->code);
    if (strcmp(res->code, code) != 0)
        fail_msg("expected %s, got %s: %s", code, res->code, res->message);
    check_message(fx, res);
}

/* The JSON text of a result: valid UTF-8, nothing from outside. */
static const char *expect_ok(const struct fx *fx, enum cmd_status st, struct cmd_result *res)
{
    if (st != CMD_OK)
        fail_msg("expected success, got %s: %s", res->code, res->message);
    assert_non_null(res->result);
    const char *txt = json_object_to_json_string(res->result);
    assert_true(utf8_is_valid(txt, strlen(txt)));
    if (strstr(txt, fx->root) || strstr(txt, "root:") || strstr(txt, SECRET))
        fail_msg("result leaks: %.300s", txt);
    return txt;
}

static enum cmd_status call(enum cmd_status (*fn)(const struct workspace_folder *, size_t,
                                                  json_object *, struct cmd_result *),
                            const struct fx *fx, json_object *args, struct cmd_result *res)
{
    memset(res, 0, sizeof(*res));
    enum cmd_status st = fn(fx->folders, 2, args, res);
    json_object_put(args);
    return st;
}

/* args {"path": p} built without a parser, so any bytes can be passed. */
static json_object *path_args(const char *p)
{
    json_object *a = json_object_new_object();
    json_object_object_add(a, "path", json_object_new_string(p));
    return a;
}

static json_object *parse(const char *json)
{
    json_object *a = json_tokener_parse(json);
    if (!a)
        fail_msg("bad test JSON: %s", json);
    return a;
}

static enum cmd_status read_path(const struct fx *fx, const char *p, struct cmd_result *res)
{
    return call(fs_read, fx, path_args(p), res);
}

static enum cmd_status list_path(const struct fx *fx, const char *p, struct cmd_result *res)
{
    return call(fs_list, fx, path_args(p), res);
}

static const char *str_field(json_object *o, const char *k)
{
    json_object *v;
    assert_true(json_object_object_get_ex(o, k, &v));
    assert_true(json_object_is_type(v, json_type_string));
    return json_object_get_string(v);
}

static int64_t int_field(json_object *o, const char *k)
{
    json_object *v;
    assert_true(json_object_object_get_ex(o, k, &v));
    assert_true(json_object_is_type(v, json_type_int));
    return json_object_get_int64(v);
}

static int bool_field(json_object *o, const char *k)
{
    json_object *v;
    assert_true(json_object_object_get_ex(o, k, &v));
    assert_true(json_object_is_type(v, json_type_boolean));
    return json_object_get_boolean(v);
}

/* Reads `p` as text and compares the content. */
static void expect_text(const struct fx *fx, const char *p, const char *content)
{
    struct cmd_result res;
    expect_ok(fx, read_path(fx, p, &res), &res);
    assert_string_equal(str_field(res.result, "encoding"), "utf8");
    assert_string_equal(str_field(res.result, "content"), content);
    assert_false(bool_field(res.result, "truncated"));
    json_object_put(res.result);
}

/* Decodes base64 content; returns the byte count. */
static size_t unbase64(const char *b64, unsigned char *out, size_t outlen)
{
    size_t len = strlen(b64);
    assert_true(len % 4 == 0);
    assert_true(len / 4 * 3 <= outlen);
    int n = EVP_DecodeBlock(out, (const unsigned char *)b64, (int)len);
    assert_true(n >= 0);
    /* EVP_DecodeBlock counts the padding as zero bytes. */
    while (len > 0 && b64[len - 1] == '=') {
        len--;
        n--;
    }
    return (size_t)n;
}

/* The entry called `name` in a listing result, or NULL. */
static json_object *find_entry(json_object *result, const char *name)
{
    json_object *entries;
    assert_true(json_object_object_get_ex(result, "entries", &entries));
    for (size_t i = 0; i < json_object_array_length(entries); i++) {
        json_object *e = json_object_array_get_idx(entries, i);
        if (strcmp(str_field(e, "name"), name) == 0)
            return e;
    }
    return NULL;
}

static void expect_entry(json_object *result, const char *name, const char *type, int64_t size)
{
    json_object *e = find_entry(result, name);
    if (!e)
        fail_msg("no entry %s", name);
    assert_string_equal(str_field(e, "type"), type);
    if (size >= 0)
        assert_int_equal(int_field(e, "size"), size);
}

/* Entries are strictly ascending by strcmp and never "." or "..". */
static size_t check_sorted(json_object *result)
{
    json_object *entries;
    assert_true(json_object_object_get_ex(result, "entries", &entries));
    size_t n = json_object_array_length(entries);
    const char *prev = NULL;
    for (size_t i = 0; i < n; i++) {
        const char *name = str_field(json_object_array_get_idx(entries, i), "name");
        assert_string_not_equal(name, ".");
        assert_string_not_equal(name, "..");
        if (prev && strcmp(prev, name) >= 0)
            fail_msg("not sorted: %s before %s", prev, name);
        prev = name;
    }
    return n;
}

/* ---- fixture ------------------------------------------------------------ */

static int group_setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    snprintf(fx->tmpl, sizeof(fx->tmpl), "/tmp/companion-fs-XXXXXX");
    assert_non_null(mkdtemp(fx->tmpl));
    assert_non_null(realpath(fx->tmpl, fx->root));
    snprintf(fx->other, sizeof(fx->other), "%s-other", fx->root);
    snprintf(fx->outside, sizeof(fx->outside), "%s-evil", fx->root);
    assert_int_equal(mkdir(fx->other, 0755), 0);
    assert_int_equal(mkdir(fx->outside, 0755), 0);
    write_file(fx->outside, "secret.txt", SECRET, strlen(SECRET));
    write_file(fx->other, "only-in-other.txt", "other\n", 6);

    const char *r = fx->root;
    write_file(r, "hello.txt", "hello world\n", 12);
    write_file(r, "empty.txt", "", 0);
    write_file(r, "...", "dots", 4);
    make_dir(r, "sub");
    write_file(r, "sub/inner.txt", "inner", 5);
    make_dir(r, "sub/deeper");
    write_file(r, "sub/deeper/leaf.txt", "leaf", 4);
    unsigned char bin[256];
    for (int i = 0; i < 256; i++)
        bin[i] = (unsigned char)i;
    write_file(r, "bin.dat", bin, sizeof(bin));
    write_file(r, "nul.txt", "ab\0cd", 5);
    write_file(r, "utf8.txt", utf8_text, strlen(utf8_text));
    write_file(r, "bad.txt", "abc\xff\xfe", 5);
    write_file(r, "cut-end.txt", "abc\xe2\x82", 5); /* ends inside a character */
    write_file(r, BAD_NAME, "named badly", 11);
    char *big = malloc(BIG_FILE_BYTES);
    assert_non_null(big);
    memset(big, 'x', BIG_FILE_BYTES);
    write_file(r, "big.txt", big, BIG_FILE_BYTES);
    free(big);

    char p[PATH_MAX * 2];
    snprintf(p, sizeof(p), "%s/fifo", r);
    assert_int_equal(mkfifo(p, 0644), 0);
    snprintf(p, sizeof(p), "%s/chardev", r);
    fx->have_chardev = mknod(p, S_IFCHR | 0666, makedev(1, 3)) == 0; /* needs CAP_MKNOD */
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int len = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/sock", r);
    assert_true(len > 0 && (size_t)len < sizeof(sa.sun_path));
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(s >= 0);
    assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
    close(s);

    /* Symlinks that stay inside. */
    make_link(r, "link_hello", "hello.txt");
    make_link(r, "chain1", "chain2");
    make_link(r, "chain2", "chain3");
    make_link(r, "chain3", "sub/inner.txt");
    make_link(r, "sub/up_ok", "../hello.txt");
    make_link(r, "sub/deeper/via_up", "../../sub/./inner.txt");
    make_link(r, "subdir_link", "sub");
    make_link(r, "self", ".");
    snprintf(p, sizeof(p), "%s/sub/inner.txt", r);
    make_link(r, "abs_inside", p);
    make_link(r, "abs_root", r);
    make_link(r, "fifo_link", "fifo");
    make_link(r, "dangling", "nothere.txt");
    make_link(r, "loop1", "loop2");
    make_link(r, "loop2", "loop1");
    /* Symlinks that leave. */
    make_link(r, "passwd", "/etc/passwd");
    make_link(r, "etcdir", "/etc");
    make_link(r, "devnull", "/dev/null");
    make_link(r, "up", "..");
    make_link(r, "sub/escape2", "../../etc/passwd");
    snprintf(p, sizeof(p), "%s/secret.txt", fx->outside);
    make_link(r, "evil", p); /* shares root's path as a string prefix */
    snprintf(p, sizeof(p), "../%s", strrchr(fx->outside, '/') + 1);
    make_link(r, "evil_dir", p);
    snprintf(p, sizeof(p), "%s/../%s/secret.txt", r, strrchr(fx->outside, '/') + 1);
    make_link(r, "abs_dotdot", p);
    make_link(r, "dangling_out", "../nothere-outside");

    fx->folders[0].name = "main";
    fx->folders[0].path = fx->root;
    fx->folders[1].name = "other";
    fx->folders[1].path = fx->other;
    *state = fx;
    return 0;
}

static int group_teardown(void **state)
{
    struct fx *fx = *state;
    rm_tree(fx->root);
    rm_tree(fx->other);
    rm_tree(fx->outside);
    free(fx);
    return 0;
}

static int test_setup(void **state)
{
    struct fx *fx = *state;
    fx->fds = count_fds();
    return 0;
}

/* A leaked fd fails the test that leaked it. */
static int test_teardown(void **state)
{
    struct fx *fx = *state;
    int now = count_fds();
    if (now != fx->fds) {
        print_error("fd leak: %d open before, %d after\n", fx->fds, now);
        return -1;
    }
    return 0;
}

/* ---- folders ------------------------------------------------------------ */

static void test_pick_folder(void **state)
{
    struct fx *fx = *state;
    struct cmd_result res;
    memset(&res, 0, sizeof(res));
    assert_ptr_equal(folder_pick(fx->folders, 2, NULL, &res), &fx->folders[0]);
    json_object *a = parse("{\"folder\":\"other\"}");
    assert_ptr_equal(folder_pick(fx->folders, 2, a, &res), &fx->folders[1]);
    json_object_put(a);
    a = parse("{\"folder\":null}");
    assert_ptr_equal(folder_pick(fx->folders, 2, a, &res), &fx->folders[0]);
    json_object_put(a);

    a = parse("{\"folder\":\"nope\"}");
    assert_null(folder_pick(fx->folders, 2, a, &res));
    json_object_put(a);
    expect_err(fx, CMD_ERROR, &res, "NOT_FOUND");
    memset(&res, 0, sizeof(res));
    a = parse("{\"folder\":\"main\\u0000x\"}"); /* NUL: not "main" */
    assert_null(folder_pick(fx->folders, 2, a, &res));
    json_object_put(a);
    expect_err(fx, CMD_ERROR, &res, "NOT_FOUND");
    memset(&res, 0, sizeof(res));
    a = parse("{\"folder\":3}");
    assert_null(folder_pick(fx->folders, 2, a, &res));
    json_object_put(a);
    expect_err(fx, CMD_ERROR, &res, "INVALID_ARGS");
    memset(&res, 0, sizeof(res));
    a = parse("[1]");
    assert_null(folder_pick(fx->folders, 2, a, &res));
    json_object_put(a);
    expect_err(fx, CMD_ERROR, &res, "INVALID_ARGS");
    memset(&res, 0, sizeof(res));
    assert_null(folder_pick(fx->folders, 0, NULL, &res));
    expect_err(fx, CMD_ERROR, &res, "NOT_FOUND");
    assert_string_equal(res.message, "no workspace folder");
}

static void test_folder_selection(void **state)
{
    struct fx *fx = *state;
    struct cmd_result res;
    expect_ok(
        fx, call(fs_read, fx, parse("{\"path\":\"only-in-other.txt\",\"folder\":\"other\"}"), &res),
        &res);
    assert_string_equal(str_field(res.result, "content"), "other\n");
    json_object_put(res.result);
    expect_err(fx, read_path(fx, "only-in-other.txt", &res), &res, "NOT_FOUND");
    expect_ok(fx, call(fs_list, fx, parse("{\"folder\":\"other\"}"), &res), &res);
    assert_int_equal(check_sorted(res.result), 1);
    expect_entry(res.result, "only-in-other.txt", "file", 6);
    json_object_put(res.result);
    expect_err(fx, call(fs_list, fx, parse("{\"folder\":\"nope\"}"), &res), &res, "NOT_FOUND");
    expect_err(fx, call(fs_read, fx, parse("{\"path\":\"hello.txt\",\"folder\":[]}"), &res), &res,
               "INVALID_ARGS");

    memset(&res, 0, sizeof(res));
    expect_err(fx, fs_list(fx->folders, 0, NULL, &res), &res, "NOT_FOUND");
    assert_string_equal(res.message, "no workspace folder");
    memset(&res, 0, sizeof(res));
    json_object *a = path_args("hello.txt");
    expect_err(fx, fs_read(fx->folders, 0, a, &res), &res, "NOT_FOUND");
    json_object_put(a);

    /* A folder that has gone away: NOT_FOUND, and its path is not named. */
    char gone[PATH_MAX + 16];
    snprintf(gone, sizeof(gone), "%s/no-such-dir", fx->root);
    struct workspace_folder f = {.name = "gone", .path = gone};
    memset(&res, 0, sizeof(res));
    expect_err(fx, fs_list(&f, 1, NULL, &res), &res, "NOT_FOUND");
}

/* ---- fs.list ------------------------------------------------------------ */

static void test_list_root(void **state)
{
    struct fx *fx = *state;
    struct cmd_result res;
    expect_ok(fx, call(fs_list, fx, NULL, &res), &res);
    assert_string_equal(str_field(res.result, "path"), ".");
    assert_false(bool_field(res.result, "truncated"));
    check_sorted(res.result);
    expect_entry(res.result, "hello.txt", "file", 12);
    expect_entry(res.result, "empty.txt", "file", 0);
    expect_entry(res.result, "sub", "dir", -1);
    expect_entry(res.result, "fifo", "other", 0);
    expect_entry(res.result, "sock", "other", 0);
    /* Symlinks are reported as themselves with their own size, never followed. */
    expect_entry(res.result, "link_hello", "symlink", (int64_t)strlen("hello.txt"));
    expect_entry(res.result, "passwd", "symlink", (int64_t)strlen("/etc/passwd"));
    expect_entry(res.result, "etcdir", "symlink", 4);
    expect_entry(res.result, "loop1", "symlink", 5);
    assert_null(find_entry(res.result, "only-in-other.txt"));
    json_object_put(res.result);

    /* "." and "" are the folder too. */
    expect_ok(fx, list_path(fx, ".", &res), &res);
    assert_non_null(find_entry(res.result, "hello.txt"));
    json_object_put(res.result);
    expect_ok(fx, list_path(fx, "", &res), &res);
    assert_string_equal(str_field(res.result, "path"), ".");
    assert_non_null(find_entry(res.result, "hello.txt"));
    json_object_put(res.result);
    expect_ok(fx, call(fs_list, fx, parse("{\"path\":null}"), &res), &res);
    json_object_put(res.result);
}

static void test_list_nested(void **state)
{
    struct fx *fx = *state;
    struct cmd_result res;
    expect_ok(fx, list_path(fx, "sub", &res), &res);
    assert_string_equal(str_field(res.result, "path"), "sub");
    assert_int_equal(check_sorted(res.result), 4);
    expect_entry(res.result, "inner.txt", "file", 5);
    expect_entry(res.result, "deeper", "dir", -1);
    expect_entry(res.result, "up_ok", "symlink", -1);
    expect_entry(res.result, "escape2", "symlink", -1);
    json_object_put(res.result);

    /* Empty and "." components collapse; the echoed path is normalized. */
    expect_ok(fx, list_path(fx, "./sub//./deeper/", &res), &res);
    assert_string_equal(str_field(res.result, "path"), "sub/deeper");
    assert_int_equal(check_sorted(res.result), 2);
    expect_entry(res.result, "leaf.txt", "file", 4);
    json_object_put(res.result);

    expect_err(fx, list_path(fx, "hello.txt", &res), &res, "INVALID_ARGS");
    expect_err(fx, list_path(fx, "nothere", &res), &res, "NOT_FOUND");
    expect_err(fx, list_path(fx, "hello.txt/x", &res), &res, "NOT_FOUND");
    expect_err(fx, call(fs_list, fx, parse("{\"path\":7}"), &res), &res, "INVALID_ARGS");
    expect_err(fx, call(fs_list, fx, parse("\"sub\""), &res), &res, "INVALID_ARGS");
}

static void test_list_through_symlinks(void **state)
{
    struct fx *fx = *state;
    struct cmd_result res;
    const char *dirs[] = {"subdir_link", "self/sub", "self/self/subdir_link", "abs_root/sub"};
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        expect_ok(fx, list_path(fx, dirs[i], &res), &res);
        assert_string_equal(str_field(res.result, "path"), dirs[i]);
        assert_int_equal(check_sorted(res.result), 4);
        expect_entry(res.result, "inner.txt", "file", 5);
        json_object_put(res.result);
    }
    expect_ok(fx, list_path(fx, "self", &res), &res);
    assert_non_null(find_entry(res.result, "hello.txt"));
    json_object_put(res.result);
    expect_ok(fx, list_path(fx, "abs_root", &res), &res);
    assert_non_null(find_entry(res.result, "hello.txt"));
    json_object_put(res.result);
    expect_err(fx, list_path(fx, "link_hello", &res), &res, "INVALID_ARGS");
    expect_err(fx, list_path(fx, "dangling", &res), &res, "NOT_FOUND");
}

static void test_list_invalid_utf8_name(void **state)
{
    struct fx *fx = *state;
    struct cmd_result res;
    const char *txt = expect_ok(fx, call(fs_list, fx, NULL, &res), &res);
    /* The raw bytes must not reach the JSON text; the repaired name does. */
    assert_null(strstr(txt, "\xff"));
    expect_entry(res.result, "bad\xef\xbf\xbd\xef\xbf\xbdname.txt", "file", 11);
    json_object *back = json_tokener_parse(txt);
    assert_non_null(back);
    json_object_put(back);
    json_object_put(res.result);

    /* The file is still readable by its real (raw) name; the echo is repaired. */
    txt = expect_ok(fx, read_path(fx, BAD_NAME, &res), &res);
    assert_string_equal(str_field(res.result, "content"), "named badly");
    assert_string_equal(str_field(res.result, "path"), "bad\xef\xbf\xbd\xef\xbf\xbdname.txt");
    json_object_put(res.result);
}

static void test_list_cap(void **state)
{
    struct fx *fx = *state;
    struct cmd_result res;
    char dir[PATH_MAX + 16], name[32];
    make_dir(fx->root, "many");
    snprintf(dir, sizeof(dir), "%s/many", fx->root);
    /* Created in reverse so the directory order is not already sorted. */
    for (int i = FS_LIST_MAX_ENTRIES; i >= 0; i--) {
        snprintf(name, sizeof(name), "f%05d", i);
        write_file(dir, name, "", 0);
    }
    expect_ok(fx, list_path(fx, "many", &res), &res);
    assert_true(bool_field(res.result, "truncated"));
    assert_int_equal(check_sorted(res.result), FS_LIST_MAX_ENTRIES);
    /* The kept entries are the start of the sorted listing. */
    json_object *entries;
    assert_true(json_object_object_get_ex(res.result, "entries", &entries));
    assert_string_equal(str_field(json_object_array_get_idx(entries, 0), "name"), "f00000");
    snprintf(name, sizeof(name), "f%05d", FS_LIST_MAX_ENTRIES - 1);
    assert_string_equal(
        str_field(json_object_array_get_idx(entries, FS_LIST_MAX_ENTRIES - 1), "name"), name);
    json_object_put(res.result);

    /* Exactly the cap: everything, not truncated. */
    char p[PATH_MAX * 2];
    snprintf(p, sizeof(p), "%s/f%05d", dir, 0);
    assert_int_equal(unlink(p), 0);
    expect_ok(fx, list_path(fx, "many", &res), &res);
    assert_false(bool_field(res.result, "truncated"));
    assert_int_equal(check_sorted(res.result), FS_LIST_MAX_ENTRIES);
    json_object_put(res.result);
    rm_tree(dir);
}

/* ---- fs.read ------------------------------------------------------------ */

static void test_read_text(void **state)
{
    struct fx *fx = *state;
    struct cmd_result res;
    expect_ok(fx, read_path(fx, "hello.txt", &res), &res);
    assert_string_equal(str_field(res.result, "path"), "hello.txt");
    assert_int_equal(int_field(res.result, "size"), 12);
    assert_string_equal(str_field(res.result, "encoding"), "utf8");
    assert_string_equal(str_field(res.result, "content"), "hello world\n");
    assert_false(bool_field(res.result, "truncated"));
    json_object_put(res.result);

    expect_ok(fx, read_path(fx, "empty.txt", &res), &res);
    assert_int_equal(int_field(res.result, "size"), 0);
    assert_string_equal(str_field(res.result, "encoding"), "utf8");
    assert_string_equal(str_field(res.result, "content"), "");
    assert_false(bool_field(res.result, "truncated"));
    json_object_put(res.result);

    expect_text(fx, "sub/deeper/leaf.txt", "leaf");
    expect_text(fx, "./sub/./inner.txt", "inner");
    expect_text(fx, "sub//inner.txt", "inner");
    expect_text(fx, "...", "dots"); /* only ".." itself is refused */

    expect_ok(fx, call(fs_read, fx, parse("{\"path\":\"hello.txt\",\"maxBytes\":5}"), &res), &res);
    assert_string_equal(str_field(res.result, "content"), "hello");
    assert_int_equal(int_field(res.result, "size"), 12);
    assert_true(bool_field(res.result, "truncated"));
    json_object_put(res.result);
}

static void test_read_binary(void **state)
{
    struct fx *fx = *state;
    struct cmd_result res;
    unsigned char out[512];
    expect_ok(fx, read_path(fx, "bin.dat", &res), &res);
    assert_string_equal(str_field(res.result, "encoding"), "base64");
    assert_int_equal(int_field(res.result, "size"), 256);
    assert_false(bool_field(res.result, "truncated"));
    assert_int_equal(unbase64(str_field(res.result, "content"), out, sizeof(out)), 256);
    for (int i = 0; i < 256; i++)
        assert_int_equal(out[i], i);
    json_object_put(res.result);

    expect_ok(fx, call(fs_read, fx, parse("{\"path\":\"bin.dat\",\"maxBytes\":10}"), &res), &res);
    assert_string_equal(str_field(res.result, "encoding"), "base64");
    assert_true(bool_field(res.result, "truncated"));
    assert_int_equal(unbase64(str_field(res.result, "content"), out, sizeof(out)), 10);
    for (int i = 0; i < 10; i++)
        assert_int_equal(out[i], i);
    json_object_put(res.result);

    /* Valid UTF-8 with a NUL is still binary. */
    expect_ok(fx, read_path(fx, "nul.txt", &res), &res);
    assert_string_equal(str_field(res.result, "encoding"), "base64");
    assert_int_equal(unbase64(str_field(res.result, "content"), out, sizeof(out)), 5);
    assert_memory_equal(out, "ab\0cd", 5);
    json_object_put(res.result);

    /* Invalid UTF-8 -> base64 of the raw bytes. */
    expect_ok(fx, read_path(fx, "bad.txt", &res), &res);
    assert_string_equal(str_field(res.result, "encoding"), "base64");
    assert_int_equal(unbase64(str_field(res.result, "content"), out, sizeof(out)), 5);
    assert_memory_equal(out, "abc\xff\xfe", 5);
    json_object_put(res.result);

    /* A file that really ends inside a character is not text either. */
    expect_ok(fx, read_path(fx, "cut-end.txt", &res), &res);
    assert_string_equal(str_field(res.result, "encoding"), "base64");
    assert_false(bool_field(res.result, "truncated"));
    json_object_put(res.result);
    /* Nor when the cap falls on that character: the bytes after it are missing. */
    expect_ok(fx, call(fs_read, fx, parse("{\"path\":\"cut-end.txt\",\"maxBytes\":4}"), &res),
              &res);
    assert_string_equal(str_field(res.result, "encoding"), "base64");
    assert_true(bool_field(res.result, "truncated"));
    assert_int_equal(unbase64(str_field(res.result, "content"), out, sizeof(out)), 4);
    assert_memory_equal(out, "abc\xe2", 4);
    json_object_put(res.result);
}

static void test_read_utf8_cut(void **state)
{
    struct fx *fx = *state;
    struct cmd_result res;
    /* For each cap, the longest whole-character prefix that fits. */
    const size_t expect[] = {0, 1, 1, 3, 3, 3, 6, 6, 6, 6, 10, 10};
    for (size_t max = 1; max < sizeof(expect) / sizeof(expect[0]); max++) {
        char args[128];
        snprintf(args, sizeof(args), "{\"path\":\"utf8.txt\",\"maxBytes\":%zu}", max);
        expect_ok(fx, call(fs_read, fx, parse(args), &res), &res);
        const char *c = str_field(res.result, "content");
        assert_string_equal(str_field(res.result, "encoding"), "utf8");
        assert_true(utf8_is_valid(c, strlen(c)));
        assert_int_equal(strlen(c), expect[max]);
        assert_memory_equal(c, utf8_text, expect[max]);
        assert_int_equal(int_field(res.result, "size"), 10);
        assert_int_equal(bool_field(res.result, "truncated"), expect[max] < 10);
        json_object_put(res.result);
    }
}

static void test_read_big_file(void **state)
{
    struct fx *fx = *state;
    struct cmd_result res;
    expect_ok(fx, read_path(fx, "big.txt", &res), &res);
    assert_int_equal(int_field(res.result, "size"), BIG_FILE_BYTES);
    assert_true(bool_field(res.result, "truncated"));
    assert_string_equal(str_field(res.result, "encoding"), "utf8");
    assert_int_equal(strlen(str_field(res.result, "content")), FS_READ_DEFAULT_BYTES);
    json_object_put(res.result);

    char args[128];
    snprintf(args, sizeof(args), "{\"path\":\"big.txt\",\"maxBytes\":%d}", FS_READ_MAX_BYTES);
    expect_ok(fx, call(fs_read, fx, parse(args), &res), &res);
    assert_false(bool_field(res.result, "truncated"));
    assert_int_equal(strlen(str_field(res.result, "content")), BIG_FILE_BYTES);
    json_object_put(res.result);
}

static void test_read_max_bytes_validation(void **state)
{
    struct fx *fx = *state;
    struct cmd_result res;
    char args[128];
    const char *bad[] = {
        "0", "-1", "\"10\"", "1.5", "true", "[]", "99999999999999999999", "-9223372036854775808"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(args, sizeof(args), "{\"path\":\"hello.txt\",\"maxBytes\":%s}", bad[i]);
        expect_err(fx, call(fs_read, fx, parse(args), &res), &res, "INVALID_ARGS");
    }
    snprintf(args, sizeof(args), "{\"path\":\"hello.txt\",\"maxBytes\":%d}", FS_READ_MAX_BYTES + 1);
    expect_err(fx, call(fs_read, fx, parse(args), &res), &res, "INVALID_ARGS");
    expect_ok(fx, call(fs_read, fx, parse("{\"path\":\"hello.txt\",\"maxBytes\":1}"), &res), &res);
    assert_string_equal(str_field(res.result, "content"), "h");
    json_object_put(res.result);
    expect_ok(fx, call(fs_read, fx, parse("{\"path\":\"hello.txt\",\"maxBytes\":null}"), &res),
              &res);
    assert_false(bool_field(res.result, "truncated"));
    json_object_put(res.result);
}

static void test_read_not_regular(void **state)
{
    struct fx *fx = *state;
    struct cmd_result res;
    struct timespec t0, t1;
    /* A FIFO must be refused at once; a hang is killed by the alarm. */
    alarm(10);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    expect_err(fx, read_path(fx, "fifo", &res), &res, "FORBIDDEN");
    assert_non_null(strstr(res.message, "not a regular file"));
    expect_err(fx, read_path(fx, "fifo_link", &res), &res, "FORBIDDEN");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    alarm(0);
    assert_true(t1.tv_sec - t0.tv_sec < 2);

    expect_err(fx, read_path(fx, "sock", &res), &res, "FORBIDDEN");
    assert_non_null(strstr(res.message, "not a regular file"));
    if (fx->have_chardev) {
        expect_err(fx, read_path(fx, "chardev", &res), &res, "FORBIDDEN");
        assert_non_null(strstr(res.message, "not a regular file"));
    } else {
        print_message("(no CAP_MKNOD: in-folder device case skipped)\n");
    }
    /* A device outside, through a symlink. */
    expect_err(fx, read_path(fx, "devnull", &res), &res, "FORBIDDEN");

    expect_err(fx, read_path(fx, "sub", &res), &res, "INVALID_ARGS");
    assert_non_null(strstr(res.message, "is a directory"));
    expect_err(fx, read_path(fx, ".", &res), &res, "INVALID_ARGS");
    expect_err(fx, read_path(fx, "self", &res), &res, "INVALID_ARGS");
}

/* ---- paths and symlinks ------------------------------------------------- */

static void test_path_rules(void **state)
{
    struct fx *fx = *state;
    struct cmd_result res;
    const char *dotdot[] = {"..",
                            "../x",
                            "a/../../x",
                            "sub/..",
                            "sub/../hello.txt",
                            "./..",
                            "sub//../hello.txt",
                            "sub/deeper/../../hello.txt"};
    for (size_t i = 0; i < sizeof(dotdot) / sizeof(dotdot[0]); i++) {
        expect_err(fx, read_path(fx, dotdot[i], &res), &res, "FORBIDDEN");
        expect_err(fx, list_path(fx, dotdot[i], &res), &res, "FORBIDDEN");
    }
    expect_err(fx, read_path(fx, "/etc/passwd", &res), &res, "FORBIDDEN");
    expect_err(fx, list_path(fx, "/etc", &res), &res, "FORBIDDEN");
    expect_err(fx, list_path(fx, "/", &res), &res, "FORBIDDEN");
    /* Even an absolute path to inside the folder, and it is not echoed. */
    char p[PATH_MAX + 32];
    snprintf(p, sizeof(p), "%s/hello.txt", fx->root);
    expect_err(fx, read_path(fx, p, &res), &res, "FORBIDDEN");

    expect_err(fx, read_path(fx, "", &res), &res, "INVALID_ARGS");
    expect_err(fx, call(fs_read, fx, NULL, &res), &res, "INVALID_ARGS");
    expect_err(fx, call(fs_read, fx, parse("{}"), &res), &res, "INVALID_ARGS");
    expect_err(fx, call(fs_read, fx, parse("{\"path\":null}"), &res), &res, "INVALID_ARGS");
    expect_err(fx, call(fs_read, fx, parse("{\"path\":1}"), &res), &res, "INVALID_ARGS");
    expect_err(fx, call(fs_read, fx, parse("{\"path\":[\"hello.txt\"]}"), &res), &res,
               "INVALID_ARGS");
    expect_err(fx, call(fs_read, fx, parse("[]"), &res), &res, "INVALID_ARGS");
    /* An embedded NUL would make "hello.txt\0/../../etc" look like hello.txt. */
    expect_err(fx, call(fs_read, fx, parse("{\"path\":\"hello.txt\\u0000x\"}"), &res), &res,
               "FORBIDDEN");
    expect_err(fx, call(fs_list, fx, parse("{\"path\":\"sub\\u0000\"}"), &res), &res, "FORBIDDEN");

    expect_err(fx, read_path(fx, "nothere.txt", &res), &res, "NOT_FOUND");
    expect_err(fx, read_path(fx, "hello.txt/x", &res), &res, "NOT_FOUND");
    expect_err(fx, read_path(fx, "nodir/x", &res), &res, "NOT_FOUND");
    /* Documented: empty components collapse, so a trailing '/' is ignored. */
    expect_text(fx, "hello.txt/", "hello world\n");
}

static void test_long_paths_and_messages(void **state)
{
    struct fx *fx = *state;
    struct cmd_result res;
    char *p = malloc(PATH_MAX + 2);
    assert_non_null(p);
    /* Longer than PATH_MAX. */
    for (int i = 0; i < PATH_MAX; i += 2)
        memcpy(p + i, "a/", 2);
    p[PATH_MAX] = '\0';
    expect_err(fx, read_path(fx, p, &res), &res, "FORBIDDEN");
    /* A component longer than NAME_MAX. */
    memset(p, 'n', NAME_MAX + 10);
    p[NAME_MAX + 10] = '\0';
    expect_err(fx, read_path(fx, p, &res), &res, "FORBIDDEN");
    assert_non_null(strstr(res.message, "..."));

    /* A long multibyte path: echoed trimmed, cut on a character boundary. */
    for (int i = 0; i < 700; i++)
        memcpy(p + 3 * i, "\xc3\xa9/", 3);
    p[2100] = '\0';
    expect_err(fx, read_path(fx, p, &res), &res, "NOT_FOUND");
    assert_non_null(strstr(res.message, "\xc3\xa9/\xc3\xa9"));
    assert_non_null(strstr(res.message, "..."));
    /* Invalid bytes in the path: the message is repaired. */
    expect_err(fx, read_path(fx, "x\xff\xfe/y\xc3", &res), &res, "NOT_FOUND");
    assert_non_null(strstr(res.message, "\xef\xbf\xbd"));
    free(p);
}

static void test_symlinks_inside(void **state)
{
    struct fx *fx = *state;
    struct cmd_result res;
    expect_text(fx, "link_hello", "hello world\n");
    expect_text(fx, "chain1", "inner");
    expect_text(fx, "sub/up_ok", "hello world\n");
    expect_text(fx, "sub/deeper/via_up", "inner");
    expect_text(fx, "abs_inside", "inner");
    expect_text(fx, "abs_root/hello.txt", "hello world\n");
    expect_text(fx, "self/self/sub/inner.txt", "inner");
    expect_text(fx, "subdir_link/deeper/leaf.txt", "leaf");
    expect_text(fx, "subdir_link/up_ok", "hello world\n");
    /* The echoed path is the one asked for, not the target. */
    expect_ok(fx, read_path(fx, "chain1", &res), &res);
    assert_string_equal(str_field(res.result, "path"), "chain1");
    assert_int_equal(int_field(res.result, "size"), 5);
    json_object_put(res.result);

    expect_err(fx, read_path(fx, "dangling", &res), &res, "NOT_FOUND");
    expect_err(fx, read_path(fx, "loop1", &res), &res, "FORBIDDEN");
    assert_non_null(strstr(res.message, "too many levels of symbolic links"));
    expect_err(fx, list_path(fx, "loop2/x", &res), &res, "FORBIDDEN");
}

static void test_symlinks_escaping(void **state)
{
    struct fx *fx = *state;
    struct cmd_result res;
    const char *reads[] = {"passwd",      "etcdir/passwd",      "etcdir/./passwd", "sub/escape2",
                           "evil",        "abs_dotdot",         "up/etc/passwd",   "dangling_out",
                           "self/passwd", "subdir_link/escape2"};
    for (size_t i = 0; i < sizeof(reads) / sizeof(reads[0]); i++) {
        expect_err(fx, read_path(fx, reads[i], &res), &res, "FORBIDDEN");
        if (strstr(res.message, SECRET))
            fail_msg("%s", res.message);
    }
    const char *lists[] = {"etcdir", "etcdir/", "up", "evil_dir", "self/up", "abs_root/etcdir"};
    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
        expect_err(fx, list_path(fx, lists[i], &res), &res, "FORBIDDEN");

    /* The escape is refused whatever follows it, even a name that exists. */
    char p[PATH_MAX + 32];
    snprintf(p, sizeof(p), "evil_dir/secret.txt");
    expect_err(fx, read_path(fx, p, &res), &res, "FORBIDDEN");
    snprintf(p, sizeof(p), "up/%s/secret.txt", strrchr(fx->outside, '/') + 1);
    expect_err(fx, read_path(fx, p, &res), &res, "FORBIDDEN");
    expect_err(fx, list_path(fx, "sub/escape2", &res), &res, "FORBIDDEN");
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, test_setup, test_teardown)
    const struct CMUnitTest tests[] = {
        T(test_pick_folder),
        T(test_folder_selection),
        T(test_list_root),
        T(test_list_nested),
        T(test_list_through_symlinks),
        T(test_list_invalid_utf8_name),
        T(test_list_cap),
        T(test_read_text),
        T(test_read_binary),
        T(test_read_utf8_cut),
        T(test_read_big_file),
        T(test_read_max_bytes_validation),
        T(test_read_not_regular),
        T(test_path_rules),
        T(test_long_paths_and_messages),
        T(test_symlinks_inside),
        T(test_symlinks_escaping),
    };
#undef T
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
