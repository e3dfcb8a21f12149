/*
 * workspace/editor_cmd.c: the argument checks of the editor.* commands and
 * the request each becomes, and the shape of their results. editor.open
 * and editor.diagnostics take paths under exactly fs.read's rules, so each
 * path of a table is put to fs.read and to both editor commands and the
 * outcomes compared; diagnostics from the editor keep only what lies in a
 * workspace folder, folder-relative and normalised, at most 1000.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "workspace/editor_cmd.h"
#include "workspace/folder.h"
#include "workspace/fs.h"
#include "workspace/utf8.h"

#define SECRET   "TOPSECRET-outside"
#define BAD_NAME "bad\xff.txt"
#define ALLOWED  "workbench.action.files.saveAll"

struct fx {
    char tmpl[64];
    char root[PATH_MAX];
    char other[PATH_MAX + 8];
    char outside[PATH_MAX + 8]; /* a sibling whose name starts with root's */
    char pdir[PATH_MAX + 16];   /* root/.companion, private */
    struct workspace_folder folders[2];
    struct workspace ws;
    struct workspace_private *priv;
    int fds;
};

/* ---- helpers ------------------------------------------------------------- */

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

static json_object *parse(const char *text)
{
    json_object *o = json_tokener_parse(text);
    if (!o)
        fail_msg("bad test JSON: %s", text);
    return o;
}

static const char *str_field(json_object *o, const char *k)
{
    json_object *v;
    if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_string))
        fail_msg("no string %s in %s", k, json_object_to_json_string(o));
    return json_object_get_string(v);
}

static int has_field(json_object *o, const char *k)
{
    return json_object_object_get_ex(o, k, NULL);
}

/* editor_cmd_params; args consumed. On success *params is returned
 * (caller puts it) and *method set. */
static enum cmd_status params_of(const struct fx *fx, const char *name, json_object *args,
                                 const char **method, json_object **params, struct cmd_result *res)
{
    char *ids[] = {ALLOWED, "editor.action.formatDocument"};
    struct editor_cmd_allow allow = {ids, 2};
    memset(res, 0, sizeof(*res));
    *method = NULL;
    *params = (json_object *)1; /* must be set either way */
    enum cmd_status st = editor_cmd_params(&fx->ws, &allow, name, args, method, params, res);
    json_object_put(args);
    if (st == CMD_OK) {
        assert_non_null(*params);
        assert_non_null(*method);
    } else {
        assert_null(*params);
        assert_non_null(res->code);
        assert_true(utf8_is_valid(res->message, strlen(res->message)));
        if (strstr(res->message, fx->root) || strstr(res->message, fx->tmpl) ||
            strstr(res->message, SECRET) || strstr(res->message, "\"/"))
            fail_msg("message leaks: %s", res->message);
    }
    return st;
}

static void expect_params_err(const struct fx *fx, const char *name, json_object *args,
                              const char *code)
{
    const char *method;
    json_object *params;
    struct cmd_result res;
    char label[256];
    snprintf(label, sizeof(label), "%s", args ? json_object_to_json_string(args) : "null");
    if (params_of(fx, name, args, &method, &params, &res) == CMD_OK) {
        const char *p = json_object_to_json_string(params);
        fail_msg("%s %s: accepted as %s, expected %s", name, label, p, code);
    }
    if (strcmp(res.code, code) != 0)
        fail_msg("%s %s: %s (%s), expected %s", name, label, res.code, res.message, code);
}

/* Params on success (caller puts them). */
static json_object *expect_params_ok(const struct fx *fx, const char *name, json_object *args,
                                     const char *want_method)
{
    const char *method;
    json_object *params;
    struct cmd_result res;
    char label[256];
    snprintf(label, sizeof(label), "%s", args ? json_object_to_json_string(args) : "null");
    if (params_of(fx, name, args, &method, &params, &res) != CMD_OK)
        fail_msg("%s %s: %s %s", name, label, res.code, res.message);
    assert_string_equal(method, want_method);
    return params;
}

static json_object *path_args(const char *p, size_t len)
{
    json_object *a = json_object_new_object();
    json_object_object_add(a, "path", json_object_new_string_len(p, (int)len));
    return a;
}

/* ---- fixture ---------------------------------------------------------------- */

static int group_setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    snprintf(fx->tmpl, sizeof(fx->tmpl), "/tmp/companion-edcmd-XXXXXX");
    assert_non_null(mkdtemp(fx->tmpl));
    assert_non_null(realpath(fx->tmpl, fx->root));
    snprintf(fx->other, sizeof(fx->other), "%s-other", fx->root);
    snprintf(fx->outside, sizeof(fx->outside), "%s-evil", fx->root);
    assert_int_equal(mkdir(fx->other, 0755), 0);
    assert_int_equal(mkdir(fx->outside, 0755), 0);
    write_file(fx->outside, "secret.txt", SECRET);
    write_file(fx->other, "only-other.txt", "other");

    const char *r = fx->root;
    char p[PATH_MAX * 2];
    write_file(r, "hello.txt", "hello");
    write_file(r, "a b \xc3\xa9#?%.txt", "spaced");
    write_file(r, BAD_NAME, "bad");
    make_dir(r, "sub");
    write_file(r, "sub/inner.txt", "inner");
    pathf(p, sizeof(p), r, "fifo");
    assert_int_equal(mkfifo(p, 0644), 0);
    make_dir(r, ".companion");
    write_file(r, ".companion/secret", "private");
    make_link(r, "link_hello", "hello.txt");
    make_link(r, "sub/up_ok", "../hello.txt");
    make_link(r, "dangling", "nothere.txt");
    make_link(r, "loop", "loop");
    make_link(r, "fifo_link", "fifo");
    make_link(r, "to_private", ".companion/secret");
    snprintf(p, sizeof(p), "../%s/secret.txt", strrchr(fx->outside, '/') + 1);
    make_link(r, "out_file", p);
    snprintf(p, sizeof(p), "%s/nothere.txt", fx->outside);
    make_link(r, "out_missing", p);
    make_link(r, "up", "..");
    make_link(r, "devnull", "/dev/null");

    pathf(fx->pdir, sizeof(fx->pdir), r, ".companion");
    fx->priv = calloc(1, sizeof(*fx->priv) + sizeof(char *));
    assert_non_null(fx->priv);
    atomic_init(&fx->priv->refs, 1);
    fx->priv->n = 1;
    fx->priv->paths[0] = fx->pdir;

    fx->folders[0].name = "main";
    fx->folders[0].path = fx->root;
    fx->folders[0].priv = fx->priv;
    fx->folders[1].name = "other";
    fx->folders[1].path = fx->other;
    fx->folders[1].priv = fx->priv;
    snprintf(fx->ws.id, sizeof(fx->ws.id), "0123456789abcdef");
    fx->ws.name = "main";
    fx->ws.folders = fx->folders;
    fx->ws.n_folders = 2;
    *state = fx;
    return 0;
}

static int group_teardown(void **state)
{
    struct fx *fx = *state;
    rm_tree(fx->root);
    rm_tree(fx->other);
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
    int now = count_fds();
    if (now != fx->fds) {
        print_error("fd leak: %d open before, %d after\n", fx->fds, now);
        return -1;
    }
    return 0;
}

/* ---- paths: the same rule as fs.read ------------------------------------------ */

static void test_paths_as_fs_read(void **state)
{
    struct fx *fx = *state;
    static const struct {
        const char *path;
        size_t len; /* 0: strlen */
        const char *folder;
        const char *code; /* NULL: accepted */
    } cases[] = {
        {"hello.txt", 0, NULL, NULL},
        {"./sub//inner.txt", 0, NULL, NULL},
        {"link_hello", 0, NULL, NULL},
        {"sub/up_ok", 0, NULL, NULL},
        {"a b \xc3\xa9#?%.txt", 0, NULL, NULL},
        {BAD_NAME, 0, NULL, NULL},
        {"only-other.txt", 0, "other", NULL},
        {"only-other.txt", 0, NULL, "NOT_FOUND"},
        {"hello.txt", 0, "nope", "NOT_FOUND"},
        {"nothere.txt", 0, NULL, "NOT_FOUND"},
        {"dangling", 0, NULL, "NOT_FOUND"},
        {"hello.txt/x", 0, NULL, "NOT_FOUND"},
        {"sub", 0, NULL, "INVALID_ARGS"},
        {".", 0, NULL, "INVALID_ARGS"},
        {"", 0, NULL, "INVALID_ARGS"},
        {"fifo", 0, NULL, "FORBIDDEN"},
        {"fifo_link", 0, NULL, "FORBIDDEN"},
        {"devnull", 0, NULL, "FORBIDDEN"},
        {"loop", 0, NULL, "FORBIDDEN"},
        {"out_file", 0, NULL, "FORBIDDEN"},
        {"out_missing", 0, NULL, "FORBIDDEN"},
        {"up/etc/passwd", 0, NULL, "FORBIDDEN"},
        {"../hello.txt", 0, NULL, "FORBIDDEN"},
        {"sub/../hello.txt", 0, NULL, "FORBIDDEN"},
        {"/etc/passwd", 0, NULL, "FORBIDDEN"},
        {"hello.txt\0/../../x", 18, NULL, "FORBIDDEN"},
        {".companion/secret", 0, NULL, "FORBIDDEN"},
        {"to_private", 0, NULL, "FORBIDDEN"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len = cases[i].len ? cases[i].len : strlen(cases[i].path);
        const char *want = cases[i].code;
        /* fs.read first: the reference. */
        json_object *a = path_args(cases[i].path, len);
        if (cases[i].folder)
            json_object_object_add(a, "folder", json_object_new_string(cases[i].folder));
        struct cmd_result res = {0};
        enum cmd_status st = fs_read(fx->folders, 2, a, &res);
        json_object_put(res.result);
        if ((st == CMD_OK) != (want == NULL) || (want && strcmp(res.code, want) != 0))
            fail_msg("case %zu: fs.read gives %s, the table says %s", i,
                     st == CMD_OK ? "OK" : res.code, want ? want : "OK");
        /* Then editor.open and editor.diagnostics with the same args. */
        const char *names[] = {"editor.open", "editor.diagnostics"};
        for (size_t k = 0; k < 2; k++) {
            json_object *copy = NULL;
            assert_int_equal(json_object_deep_copy(a, &copy, NULL), 0);
            const char *method;
            json_object *params;
            st = params_of(fx, names[k], copy, &method, &params, &res);
            if ((st == CMD_OK) != (want == NULL) || (want && strcmp(res.code, want) != 0))
                fail_msg("case %zu (%s): %s gives %s (%s), fs.read %s", i, cases[i].path, names[k],
                         st == CMD_OK ? "OK" : res.code, st == CMD_OK ? "" : res.message,
                         want ? want : "OK");
            if (st == CMD_OK)
                json_object_put(params);
        }
        json_object_put(a);
    }
}

static void test_open_params(void **state)
{
    struct fx *fx = *state;
    char want[PATH_MAX * 2];
    pathf(want, sizeof(want), fx->root, "hello.txt");

    json_object *p =
        expect_params_ok(fx, "editor.open", parse("{\"path\":\"hello.txt\"}"), "editor/open");
    assert_string_equal(str_field(p, "path"), want);
    char uri[PATH_MAX * 4];
    snprintf(uri, sizeof(uri), "file://%s", want);
    assert_string_equal(str_field(p, "uri"), uri);
    assert_false(has_field(p, "line"));
    json_object_put(p);

    /* Through links: the file the check reached, not the link. */
    p = expect_params_ok(fx, "editor.open", parse("{\"path\":\"sub/up_ok\",\"line\":12}"),
                         "editor/open");
    assert_string_equal(str_field(p, "path"), want);
    json_object *v;
    assert_true(json_object_object_get_ex(p, "line", &v));
    assert_int_equal(json_object_get_int64(v), 12);
    json_object_put(p);

    /* Names that need escaping: the URI is percent-encoded and decodes
     * back to the path. */
    p = expect_params_ok(fx, "editor.open", parse("{\"path\":\"a b \\u00e9#?%.txt\"}"),
                         "editor/open");
    const char *u = str_field(p, "uri");
    assert_non_null(strstr(u, "/a%20b%20%C3%A9%23%3F%25.txt"));
    assert_null(strchr(u + 7, ' '));
    char *back = workspace_path_from_uri(u);
    assert_non_null(back);
    assert_string_equal(back, str_field(p, "path"));
    free(back);
    json_object_put(p);

    p = expect_params_ok(fx, "editor.open", path_args(BAD_NAME, strlen(BAD_NAME)), "editor/open");
    assert_non_null(strstr(str_field(p, "uri"), "bad%FF.txt"));
    json_object_put(p);

    /* Another folder. */
    p = expect_params_ok(fx, "editor.open",
                         parse("{\"path\":\"only-other.txt\",\"folder\":\"other\"}"),
                         "editor/open");
    pathf(want, sizeof(want), fx->other, "only-other.txt");
    assert_string_equal(str_field(p, "path"), want);
    json_object_put(p);

    /* line: 1 .. 10000000, an integer; null is absent. */
    p = expect_params_ok(fx, "editor.open", parse("{\"path\":\"hello.txt\",\"line\":1}"),
                         "editor/open");
    json_object_put(p);
    p = expect_params_ok(fx, "editor.open", parse("{\"path\":\"hello.txt\",\"line\":10000000}"),
                         "editor/open");
    json_object_put(p);
    p = expect_params_ok(fx, "editor.open", parse("{\"path\":\"hello.txt\",\"line\":null}"),
                         "editor/open");
    assert_false(has_field(p, "line"));
    json_object_put(p);
    const char *bad_lines[] = {"0",  "-1", "10000001",           "\"5\"", "1.5", "true",
                               "[]", "{}", "9223372036854775807"};
    for (size_t i = 0; i < sizeof(bad_lines) / sizeof(bad_lines[0]); i++) {
        char args[128];
        snprintf(args, sizeof(args), "{\"path\":\"hello.txt\",\"line\":%s}", bad_lines[i]);
        expect_params_err(fx, "editor.open", parse(args), "INVALID_ARGS");
    }
    /* A bad line is refused even for a path that would be refused too. */
    expect_params_err(fx, "editor.open", parse("{\"path\":\"../x\",\"line\":0}"), "INVALID_ARGS");

    expect_params_err(fx, "editor.open", NULL, "INVALID_ARGS");
    expect_params_err(fx, "editor.open", parse("{}"), "INVALID_ARGS");
    expect_params_err(fx, "editor.open", parse("{\"path\":7}"), "INVALID_ARGS");
    expect_params_err(fx, "editor.open", parse("[\"hello.txt\"]"), "INVALID_ARGS");
    expect_params_err(fx, "editor.open", parse("\"hello.txt\""), "INVALID_ARGS");
}

static void test_diagnostics_params(void **state)
{
    struct fx *fx = *state;
    json_object *p = expect_params_ok(fx, "editor.diagnostics", NULL, "editor/diagnostics");
    assert_int_equal(json_object_object_length(p), 0);
    json_object_put(p);
    p = expect_params_ok(fx, "editor.diagnostics", parse("{}"), "editor/diagnostics");
    assert_int_equal(json_object_object_length(p), 0);
    json_object_put(p);
    p = expect_params_ok(fx, "editor.diagnostics", parse("{\"path\":null}"), "editor/diagnostics");
    assert_false(has_field(p, "path"));
    json_object_put(p);

    char want[PATH_MAX * 2];
    pathf(want, sizeof(want), fx->root, "sub/inner.txt");
    p = expect_params_ok(fx, "editor.diagnostics", parse("{\"path\":\"sub/inner.txt\"}"),
                         "editor/diagnostics");
    assert_string_equal(str_field(p, "path"), want);
    json_object_put(p);

    expect_params_err(fx, "editor.diagnostics", parse("[]"), "INVALID_ARGS");
    expect_params_err(fx, "editor.diagnostics", parse("{\"path\":1}"), "INVALID_ARGS");
    expect_params_err(fx, "editor.diagnostics", parse("{\"path\":\"sub\"}"), "INVALID_ARGS");
}

/* ---- editor.message ----------------------------------------------------------- */

static void test_message_params(void **state)
{
    struct fx *fx = *state;
    json_object *p =
        expect_params_ok(fx, "editor.message", parse("{\"text\":\"hi\"}"), "editor/showMessage");
    assert_string_equal(str_field(p, "text"), "hi");
    assert_string_equal(str_field(p, "severity"), "info");
    assert_int_equal(json_object_object_length(p), 2);
    json_object_put(p);

    const char *sev[] = {"info", "warning", "error"};
    for (size_t i = 0; i < 3; i++) {
        char args[96];
        snprintf(args, sizeof(args), "{\"text\":\"x\",\"severity\":\"%s\"}", sev[i]);
        p = expect_params_ok(fx, "editor.message", parse(args), "editor/showMessage");
        assert_string_equal(str_field(p, "severity"), sev[i]);
        json_object_put(p);
    }
    p = expect_params_ok(fx, "editor.message", parse("{\"text\":\"x\",\"severity\":null}"),
                         "editor/showMessage");
    assert_string_equal(str_field(p, "severity"), "info");
    json_object_put(p);
    const char *bad_sev[] = {"\"Info\"", "\"debug\"", "\"\"", "\"info \"", "1", "true", "[]"};
    for (size_t i = 0; i < sizeof(bad_sev) / sizeof(bad_sev[0]); i++) {
        char args[96];
        snprintf(args, sizeof(args), "{\"text\":\"x\",\"severity\":%s}", bad_sev[i]);
        expect_params_err(fx, "editor.message", parse(args), "INVALID_ARGS");
    }
    json_object *a = parse("{\"text\":\"x\"}");
    json_object_object_add(a, "severity", json_object_new_string_len("info\0error", 10));
    expect_params_err(fx, "editor.message", a, "INVALID_ARGS");

    /* text: 1 to 4000, no NUL. */
    char *text = malloc(4002);
    assert_non_null(text);
    memset(text, 'm', 4001);
    text[4000] = '\0';
    a = json_object_new_object();
    json_object_object_add(a, "text", json_object_new_string(text));
    p = expect_params_ok(fx, "editor.message", a, "editor/showMessage");
    assert_int_equal(strlen(str_field(p, "text")), 4000);
    json_object_put(p);
    text[4000] = 'm';
    text[4001] = '\0'; /* 4001 */
    a = json_object_new_object();
    json_object_object_add(a, "text", json_object_new_string(text));
    expect_params_err(fx, "editor.message", a, "INVALID_ARGS");
    free(text);
    a = json_object_new_object();
    json_object_object_add(a, "text", json_object_new_string_len("before\0after", 12));
    expect_params_err(fx, "editor.message", a, "INVALID_ARGS");
    const char *bad_text[] = {"{}",           "{\"text\":\"\"}",    "{\"text\":null}",
                              "{\"text\":5}", "{\"text\":[\"x\"]}", "[]"};
    for (size_t i = 0; i < sizeof(bad_text) / sizeof(bad_text[0]); i++)
        expect_params_err(fx, "editor.message", parse(bad_text[i]), "INVALID_ARGS");
    expect_params_err(fx, "editor.message", NULL, "INVALID_ARGS");
}

/* ---- editor.command --------------------------------------------------------- */

static void test_command_params(void **state)
{
    struct fx *fx = *state;
    json_object *p = expect_params_ok(fx, "editor.command", parse("{\"command\":\"" ALLOWED "\"}"),
                                      "editor/executeCommand");
    assert_string_equal(str_field(p, "command"), ALLOWED);
    json_object *v;
    assert_true(json_object_object_get_ex(p, "args", &v));
    assert_true(json_object_is_type(v, json_type_array));
    assert_int_equal(json_object_array_length(v), 0);
    json_object_put(p);

    p = expect_params_ok(fx, "editor.command",
                         parse("{\"command\":\"editor.action.formatDocument\","
                               "\"args\":[1,\"two\",{\"three\":3}]}"),
                         "editor/executeCommand");
    assert_true(json_object_object_get_ex(p, "args", &v));
    assert_string_equal(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN),
                        "[1,\"two\",{\"three\":3}]");
    json_object_put(p);
    p = expect_params_ok(fx, "editor.command", parse("{\"command\":\"" ALLOWED "\",\"args\":null}"),
                         "editor/executeCommand");
    assert_true(json_object_object_get_ex(p, "args", &v));
    assert_int_equal(json_object_array_length(v), 0);
    json_object_put(p);

    /* The allowlist is an exact match. */
    const char *refused[] = {"workbench.action.files.saveal",
                             "workbench.action.files",
                             "workbench.action.files.saveAll ",
                             " workbench.action.files.saveAll",
                             "WORKBENCH.ACTION.FILES.SAVEALL",
                             "workbench.action.files.saveAllx",
                             "",
                             "workbench.action.terminal.sendSequence"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        json_object *a = json_object_new_object();
        json_object_object_add(a, "command", json_object_new_string(refused[i]));
        expect_params_err(fx, "editor.command", a, "FORBIDDEN");
    }
    /* NUL: "saveAll\0..." must not pass as saveAll. */
    json_object *a = json_object_new_object();
    json_object_object_add(a, "command",
                           json_object_new_string_len(ALLOWED "\0evil", sizeof(ALLOWED) + 4));
    expect_params_err(fx, "editor.command", a, "FORBIDDEN");

    const char *bad[] = {"{}",
                         "{\"command\":null}",
                         "{\"command\":1}",
                         "{\"command\":[\"" ALLOWED "\"]}",
                         "{\"command\":\"" ALLOWED "\",\"args\":{}}",
                         "{\"command\":\"" ALLOWED "\",\"args\":\"x\"}",
                         "{\"command\":\"" ALLOWED "\",\"args\":1}",
                         "[]"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_params_err(fx, "editor.command", parse(bad[i]), "INVALID_ARGS");

    /* No list, or an empty one: nothing may run. */
    const char *method;
    json_object *params;
    struct cmd_result res = {0};
    a = parse("{\"command\":\"" ALLOWED "\"}");
    assert_int_equal(editor_cmd_params(&fx->ws, NULL, "editor.command", a, &method, &params, &res),
                     CMD_ERROR);
    assert_string_equal(res.code, "FORBIDDEN");
    assert_null(params);
    struct editor_cmd_allow none = {NULL, 0};
    memset(&res, 0, sizeof(res));
    assert_int_equal(editor_cmd_params(&fx->ws, &none, "editor.command", a, &method, &params, &res),
                     CMD_ERROR);
    assert_string_equal(res.code, "FORBIDDEN");
    json_object_put(a);
}

static void test_unknown_name(void **state)
{
    struct fx *fx = *state;
    const char *names[] = {"editor.close", "editor", "editor.open ", "fs.read", ""};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        expect_params_err(fx, names[i], parse("{}"), "UNKNOWN_COMMAND");
}

/* ---- results ----------------------------------------------------------------- */

static void test_simple_results(void **state)
{
    struct fx *fx = *state;
    json_object *r = editor_cmd_result(&fx->ws, "editor.open", NULL);
    assert_string_equal(json_object_to_json_string_ext(r, JSON_C_TO_STRING_PLAIN),
                        "{\"opened\":true}");
    json_object_put(r);
    json_object *in = parse("{\"whatever\":1}");
    r = editor_cmd_result(&fx->ws, "editor.message", in);
    assert_string_equal(json_object_to_json_string_ext(r, JSON_C_TO_STRING_PLAIN),
                        "{\"shown\":true}");
    json_object_put(r);
    /* editor.command: the editor's own result, whatever it is. */
    r = editor_cmd_result(&fx->ws, "editor.command", in);
    assert_string_equal(json_object_to_json_string_ext(r, JSON_C_TO_STRING_PLAIN),
                        "{\"result\":{\"whatever\":1}}");
    json_object_put(r);
    json_object_put(in); /* the result took its own reference */
    r = editor_cmd_result(&fx->ws, "editor.command", NULL);
    assert_string_equal(json_object_to_json_string_ext(r, JSON_C_TO_STRING_PLAIN),
                        "{\"result\":null}");
    json_object_put(r);
}

/* editor.diagnostics' result from {"diagnostics": entries}. */
static json_object *diag_result(const struct fx *fx, json_object *entries)
{
    json_object *in = json_object_new_object();
    json_object_object_add(in, "diagnostics", entries);
    json_object *r = editor_cmd_result(&fx->ws, "editor.diagnostics", in);
    json_object_put(in);
    json_object *out;
    assert_true(json_object_object_get_ex(r, "diagnostics", &out));
    assert_true(json_object_is_type(out, json_type_array));
    assert_int_equal(json_object_object_length(r), 1);
    return r;
}

static json_object *diag(const char *path, int line)
{
    json_object *d = json_object_new_object();
    if (path)
        json_object_object_add(d, "path", json_object_new_string(path));
    json_object_object_add(d, "line", json_object_new_int(line));
    json_object_object_add(d, "severity", json_object_new_string("error"));
    json_object_object_add(d, "message", json_object_new_string("boom"));
    json_object_object_add(d, "source", json_object_new_string("gcc"));
    return d;
}

static json_object *entries_of(json_object *r)
{
    json_object *out;
    assert_true(json_object_object_get_ex(r, "diagnostics", &out));
    return out;
}

static void test_diagnostics_result(void **state)
{
    struct fx *fx = *state;
    char p[PATH_MAX * 3];
    json_object *in = json_object_new_array();
    pathf(p, sizeof(p), fx->root, "hello.txt");
    json_object_array_add(in, diag(p, 1)); /* kept: hello.txt */
    snprintf(p, sizeof(p), "%s/sub/../sub/./inner.c", fx->root);
    json_object_array_add(in, diag(p, 2)); /* kept: sub/inner.c */
    snprintf(p, sizeof(p), "%s/../%s/secret.txt", fx->root, strrchr(fx->outside, '/') + 1);
    json_object_array_add(in, diag(p, 3)); /* outside (a sibling) */
    snprintf(p, sizeof(p), "%s/secret.txt", fx->outside);
    json_object_array_add(in, diag(p, 4)); /* outside, root's name as a prefix */
    json_object_array_add(in, diag("/etc/passwd", 5));
    snprintf(p, sizeof(p), "%s/..", fx->root);
    json_object_array_add(in, diag(p, 6));        /* the parent */
    json_object_array_add(in, diag(fx->root, 7)); /* the folder itself: no file */
    json_object_array_add(in, diag("relative/x.c", 8));
    json_object_array_add(in, diag(NULL, 9)); /* no path */
    snprintf(p, sizeof(p), "file://%s/a%%20b%%20%%C3%%A9.txt", fx->root);
    json_object_array_add(in, diag(p, 10)); /* kept: "a b é.txt" */
    snprintf(p, sizeof(p), "file://evil.example%s/hello.txt", fx->root);
    json_object_array_add(in, diag(p, 11)); /* another host */
    snprintf(p, sizeof(p), "file://%s/%%2e%%2e/%s/secret.txt", fx->root,
             strrchr(fx->outside, '/') + 1);
    json_object_array_add(in, diag(p, 12)); /* %2e%2e decoded, then resolved: outside */
    snprintf(p, sizeof(p), "file://%s/x%%00y", fx->root);
    json_object_array_add(in, diag(p, 13)); /* NUL once decoded */
    pathf(p, sizeof(p), fx->other, "o.c");
    json_object_array_add(in, diag(p, 14)); /* kept: other's o.c */
    json_object_array_add(in, json_object_new_string("not an object"));
    json_object *d = diag(NULL, 15);
    json_object_object_add(d, "path", json_object_new_int(3));
    json_object_array_add(in, d);
    d = diag(NULL, 16);
    pathf(p, sizeof(p), fx->root, "hello.txt");
    size_t plen = strlen(p);
    memcpy(p + plen, "\0x", 3);
    json_object_object_add(d, "path", json_object_new_string_len(p, (int)plen + 2));
    json_object_array_add(in, d); /* NUL inside */
    d = diag(NULL, 17);
    pathf(p, sizeof(p), fx->root, "x\xff.c");
    json_object_object_add(d, "path", json_object_new_string(p));
    json_object_object_add(d, "extra", json_object_new_string("dropped"));
    json_object_array_add(in, d); /* kept, repaired */

    json_object *r = diag_result(fx, in);
    json_object *out = entries_of(r);
    const char *txt =
        json_object_to_json_string_ext(r, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    assert_true(utf8_is_valid(txt, strlen(txt)));
    if (strstr(txt, fx->root) || strstr(txt, "secret") || strstr(txt, "passwd") ||
        strstr(txt, "\"..") || strstr(txt, "/.."))
        fail_msg("leaks: %s", txt);
    const struct {
        const char *path, *folder;
        int line;
    } want[] = {{"hello.txt", "main", 1},
                {"sub/inner.c", "main", 2},
                {"a b \xc3\xa9.txt", "main", 10},
                {"o.c", "other", 14},
                {"x\xef\xbf\xbd.c", "main", 17}};
    size_t n = sizeof(want) / sizeof(want[0]);
    if (json_object_array_length(out) != n)
        fail_msg("kept %zu, expected %zu: %s", json_object_array_length(out), n, txt);
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(out, i), *v;
        assert_string_equal(str_field(e, "path"), want[i].path);
        assert_string_equal(str_field(e, "folder"), want[i].folder);
        assert_true(json_object_object_get_ex(e, "line", &v));
        assert_int_equal(json_object_get_int(v), want[i].line);
        assert_string_equal(str_field(e, "severity"), "error");
        assert_string_equal(str_field(e, "message"), "boom");
        assert_string_equal(str_field(e, "source"), "gcc");
        assert_false(has_field(e, "extra"));
        assert_int_equal(json_object_object_length(e), 6);
    }
    json_object_put(r);
}

static void test_diagnostics_result_shapes(void **state)
{
    struct fx *fx = *state;
    /* Whatever the editor sends, the answer is {"diagnostics": [...]}. */
    const char *odd[] = {"null",
                         "[]",
                         "5",
                         "{}",
                         "{\"diagnostics\":null}",
                         "{\"diagnostics\":{}}",
                         "{\"diagnostics\":\"x\"}"};
    for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
        json_object *in = json_tokener_parse(odd[i]);
        json_object *r = editor_cmd_result(&fx->ws, "editor.diagnostics", in);
        json_object_put(in);
        assert_string_equal(json_object_to_json_string_ext(r, JSON_C_TO_STRING_PLAIN),
                            "{\"diagnostics\":[]}");
        json_object_put(r);
    }
    /* Only some keys are passed on, and only when present. */
    json_object *in = json_object_new_array();
    json_object *d = json_object_new_object();
    char p[PATH_MAX * 2];
    pathf(p, sizeof(p), fx->root, "hello.txt");
    json_object_object_add(d, "path", json_object_new_string(p));
    json_object_array_add(in, d);
    json_object *r = diag_result(fx, in);
    json_object *e = json_object_array_get_idx(entries_of(r), 0);
    assert_non_null(e);
    assert_int_equal(json_object_object_length(e), 2);
    json_object_put(r);
}

static void test_diagnostics_result_cap(void **state)
{
    struct fx *fx = *state;
    char p[PATH_MAX * 3];
    /* 600 outside, then 1500 inside: the cap counts what is kept. */
    json_object *in = json_object_new_array();
    for (int i = 0; i < 600; i++) {
        snprintf(p, sizeof(p), "%s/f%d.c", fx->outside, i);
        json_object_array_add(in, diag(p, i));
    }
    for (int i = 0; i < 1500; i++) {
        snprintf(p, sizeof(p), "%s/f%d.c", fx->root, i);
        json_object_array_add(in, diag(p, i));
    }
    json_object *r = diag_result(fx, in);
    json_object *out = entries_of(r);
    assert_int_equal(json_object_array_length(out), 1000);
    /* The first thousand, in order. */
    assert_string_equal(str_field(json_object_array_get_idx(out, 0), "path"), "f0.c");
    assert_string_equal(str_field(json_object_array_get_idx(out, 999), "path"), "f999.c");
    json_object_put(r);

    /* Exactly 1000 are all kept. */
    in = json_object_new_array();
    for (int i = 0; i < 1000; i++) {
        snprintf(p, sizeof(p), "%s/g%d.c", fx->root, i);
        json_object_array_add(in, diag(p, i));
    }
    r = diag_result(fx, in);
    assert_int_equal(json_object_array_length(entries_of(r)), 1000);
    json_object_put(r);
}

static void test_nested_folders_pick_deepest(void **state)
{
    struct fx *fx = *state;
    char nested[PATH_MAX * 2];
    pathf(nested, sizeof(nested), fx->root, "sub");
    struct workspace_folder f[2] = {{.name = "main", .path = fx->root},
                                    {.name = "inner", .path = nested}};
    struct workspace ws = fx->ws;
    ws.folders = f;
    ws.n_folders = 2;
    json_object *in = json_object_new_array();
    char p[PATH_MAX * 3];
    pathf(p, sizeof(p), nested, "x.c");
    json_object_array_add(in, diag(p, 1));
    pathf(p, sizeof(p), fx->root, "y.c");
    json_object_array_add(in, diag(p, 2));
    json_object *w = json_object_new_object();
    json_object_object_add(w, "diagnostics", in);
    json_object *r = editor_cmd_result(&ws, "editor.diagnostics", w);
    json_object_put(w);
    json_object *out = entries_of(r);
    assert_int_equal(json_object_array_length(out), 2);
    assert_string_equal(str_field(json_object_array_get_idx(out, 0), "folder"), "inner");
    assert_string_equal(str_field(json_object_array_get_idx(out, 0), "path"), "x.c");
    assert_string_equal(str_field(json_object_array_get_idx(out, 1), "folder"), "main");
    assert_string_equal(str_field(json_object_array_get_idx(out, 1), "path"), "y.c");
    json_object_put(r);
}

static void test_file_uri(void **state)
{
    const char *cases[][2] = {
        {"/a/b.c", "file:///a/b.c"},
        {"/a b/\xc3\xa9#?%&+;=@[]", "file:///a%20b/%C3%A9%23%3F%25%26%2B%3B%3D%40%5B%5D"},
        {"/x-y_z.~", "file:///x-y_z.~"},
        {"/bad\xff", "file:///bad%FF"},
        {"/", "file:///"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *u = editor_cmd_file_uri(cases[i][0]);
        assert_non_null(u);
        assert_string_equal(u, cases[i][1]);
        char *back = workspace_path_from_uri(u);
        assert_non_null(back);
        assert_string_equal(back, cases[i][0]);
        free(back);
        free(u);
    }
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, test_setup, test_teardown)
    const struct CMUnitTest tests[] = {
        T(test_paths_as_fs_read),
        T(test_open_params),
        T(test_diagnostics_params),
        T(test_message_params),
        T(test_command_params),
        T(test_unknown_name),
        T(test_simple_results),
        T(test_diagnostics_result),
        T(test_diagnostics_result_shapes),
        T(test_diagnostics_result_cap),
        T(test_nested_folders_pick_deepest),
        T(test_file_uri),
    };
#undef T
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
