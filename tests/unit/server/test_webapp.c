/*
 * test_webapp: the pure parts of serving the phone client (server/webapp.c):
 * which Accept-Encoding values take gzip and which If-None-Match values
 * name an ETag; and the embedded table's lookup of "/" (core/web_assets.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "core/web_assets.h"
#include "server/webapp.h"

static void test_accepts_gzip(void **state)
{
    (void)state;
    assert_true(webapp_accepts_gzip("gzip"));
    assert_true(webapp_accepts_gzip("gzip, deflate, br"));
    assert_true(webapp_accepts_gzip("br;q=1.0, GZIP;q=0.5"));
    assert_true(webapp_accepts_gzip("deflate,gzip"));
    assert_true(webapp_accepts_gzip("gzip;q=0.001"));
    assert_true(webapp_accepts_gzip(" gzip ; q = 1 "));
    assert_false(webapp_accepts_gzip(NULL));
    assert_false(webapp_accepts_gzip(""));
    assert_false(webapp_accepts_gzip("identity"));
    assert_false(webapp_accepts_gzip("gzip;q=0"));
    assert_false(webapp_accepts_gzip("gzip;q=0.000"));
    assert_false(webapp_accepts_gzip("br, gzip ; q=0"));
    assert_false(webapp_accepts_gzip("x-gzip"));
    assert_false(webapp_accepts_gzip("gzipped"));
    assert_false(webapp_accepts_gzip("br;gzip"));
}

static void test_etag_matches(void **state)
{
    (void)state;
    const char *e = "\"abc\"";
    assert_true(webapp_etag_matches("\"abc\"", e));
    assert_true(webapp_etag_matches("W/\"abc\"", e));
    assert_true(webapp_etag_matches("\"x\", \"abc\"", e));
    assert_true(webapp_etag_matches("*", e));
    assert_false(webapp_etag_matches("", e));
    assert_false(webapp_etag_matches(NULL, e));
    assert_false(webapp_etag_matches("\"ab\"", e));
    assert_false(webapp_etag_matches("\"abcd\"", e));
    assert_false(webapp_etag_matches("abc", e));
}

static void test_table(void **state)
{
    (void)state;
    const struct web_asset *root = web_asset_find("/", 1);
    if (!root) /* built with -DCOMPANION_WEB=OFF */
        skip();
    assert_ptr_equal(root, web_asset_find("/index.html", 11));
    assert_int_equal(root->immutable, 0);
    assert_null(web_asset_find("/nope", 5));
    assert_null(web_asset_find("", 0));
    assert_null(web_asset_find(NULL, 0));
    assert_true(webapp_has("/"));
    assert_true(webapp_has("/manifest.webmanifest"));
    assert_false(webapp_has("/health"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts_gzip),
        cmocka_unit_test(test_etag_matches),
        cmocka_unit_test(test_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
