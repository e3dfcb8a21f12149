/*
 * Workspace folders and ids, file:// URI decoding, and UTF-8 repair.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "workspace/utf8.h"
#include "workspace/workspace.h"

static void test_uri_decoding(void **state)
{
    char *p = workspace_path_from_uri("file:///home/a%20b/c");
    assert_string_equal(p, "/home/a b/c");
    free(p);
    p = workspace_path_from_uri("file://localhost/tmp/x");
    assert_string_equal(p, "/tmp/x");
    free(p);
    p = workspace_path_from_uri("file:///tmp/%C3%A9t%C3%A9");
    assert_string_equal(p, "/tmp/\xc3\xa9t\xc3\xa9");
    free(p);
    const char *bad[] = {"http:///tmp",           "file://host/tmp", "file:///tmp/%zz",
                         "file:///tmp/%2",        "file:///tmp/%",   "file:///a%00b",
                         "vscode-remote://ssh/x", "file:tmp",        ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        p = workspace_path_from_uri(bad[i]);
        if (p)
            fail_msg("\"%s\" decoded to \"%s\"", bad[i], p);
    }
    assert_null(workspace_path_from_uri(NULL));
}

static void test_id_is_stable_and_distinct(void **state)
{
    char a[17], b[17], c[17];
    workspace_id_for_path("/srv/project", a);
    workspace_id_for_path("/srv/project", b);
    workspace_id_for_path("/srv/project2", c);
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);
    assert_int_equal(strlen(a), 16);
    assert_int_equal(strspn(a, "0123456789abcdef"), 16);
}

static void test_open_dir(void **state)
{
    char tmpl[] = "/tmp/companion-ws-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    char err[256];
    struct workspace w;
    workspace_init(&w);
    assert_int_equal(workspace_open_dir(&w, tmpl, err, sizeof(err)), 0);
    assert_int_equal(w.n_folders, 1);
    char expect[17];
    workspace_id_for_path(w.folders[0].path, expect);
    assert_string_equal(w.id, expect);
    assert_int_equal(workspace_open_dir(&w, "/nonexistent/xyz", err, sizeof(err)), -1);
    /* A failed open leaves the workspace as it was. */
    assert_int_equal(w.n_folders, 1);
    workspace_free(&w);
    rmdir(tmpl);
}

static void test_set_and_change_folders(void **state)
{
    char d1[] = "/tmp/companion-ws1-XXXXXX", d2[] = "/tmp/companion-ws2-XXXXXX";
    assert_non_null(mkdtemp(d1));
    assert_non_null(mkdtemp(d2));
    char json[1024], err[256];
    snprintf(json, sizeof(json),
             "[{\"uri\":\"file://%s\",\"name\":\"one\"},{\"uri\":\"vscode-remote://x/y\"}]", d1);
    json_object *folders = json_tokener_parse(json);
    struct workspace w;
    workspace_init(&w);
    size_t skipped = 0;
    assert_int_equal(workspace_set_folders(&w, "fixed-id", folders, &skipped, err, sizeof(err)), 0);
    assert_int_equal(skipped, 1);
    assert_string_equal(w.id, "fixed-id");
    assert_int_equal(w.n_folders, 1);
    assert_string_equal(w.folders[0].name, "one");
    json_object_put(folders);

    snprintf(json, sizeof(json),
             "{\"added\":[{\"uri\":\"file://%s\",\"name\":\"two\"}],"
             "\"removed\":[{\"uri\":\"file://%s\"}]}",
             d2, d1);
    json_object *ev = json_tokener_parse(json);
    assert_int_equal(workspace_change_folders(&w, ev, err, sizeof(err)), 0);
    assert_int_equal(w.n_folders, 1);
    assert_string_equal(w.folders[0].name, "two");
    json_object_put(ev);

    /* No id and no local folder: refused. */
    json_object *none = json_tokener_parse("[]");
    assert_int_equal(workspace_set_folders(&w, NULL, none, NULL, err, sizeof(err)), -1);
    assert_string_equal(w.folders[0].name, "two");
    json_object_put(none);
    json_object *notarr = json_tokener_parse("{}");
    assert_int_equal(workspace_set_folders(&w, "x", notarr, NULL, err, sizeof(err)), -1);
    json_object_put(notarr);
    workspace_free(&w);
    rmdir(d1);
    rmdir(d2);
}

static void test_utf8(void **state)
{
    assert_true(utf8_is_valid("plain", 5));
    assert_true(utf8_is_valid("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9));
    const char *bad[] = {"\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                         "\xff",     "\x80",         "\xc3"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(utf8_is_valid(bad[i], strlen(bad[i])));
    /* A sequence cut by a read boundary is held back, not replaced. */
    assert_int_equal(utf8_valid_prefix("ab\xe2\x82", 4), 2);
    assert_int_equal(utf8_valid_prefix("ab\xe2\x82\xac", 5), 5);
    char *r = utf8_repair("a\xffz", 3);
    assert_string_equal(r, "a\xef\xbf\xbdz");
    free(r);
    json_object *s = utf8_json_string("x\xfey");
    const char *text = json_object_to_json_string_ext(s, JSON_C_TO_STRING_PLAIN);
    assert_true(utf8_is_valid(text, strlen(text)));
    json_object_put(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uri_decoding), cmocka_unit_test(test_id_is_stable_and_distinct),
        cmocka_unit_test(test_open_dir),     cmocka_unit_test(test_set_and_change_folders),
        cmocka_unit_test(test_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
