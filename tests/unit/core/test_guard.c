/*
 * Host and Origin decisions: the DNS-rebinding and cross-site defences.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/guard.h"

static void test_loopback_hosts_with_port(void **state)
{
    assert_true(guard_host_allowed("localhost:3001", 3001, NULL));
    assert_true(guard_host_allowed("LOCALHOST:3001", 3001, NULL));
    assert_true(guard_host_allowed("127.0.0.1:3001", 3001, NULL));
    assert_true(guard_host_allowed("127.1.2.3:3001", 3001, NULL));
    assert_true(guard_host_allowed("[::1]:3001", 3001, NULL));
}

static void test_refused_hosts(void **state)
{
    const char *bad[] = {
        "localhost:3002",    /* wrong port */
        "localhost",         /* no port */
        "evil.example:3001", /* rebinding name */
        "127.0.0.1.evil.example:3001",
        "localhost.:3001",
        "128.0.0.1:3001",
        "127.0.0.256:3001",
        "[::1]",     /* no port */
        "[::1:3001", /* unclosed bracket */
        "::1:3001",  /* unbracketed v6 */
        "localhost:99999",
        "localhost:-1",
        "localhost:30a1",
        "localhost:",
        ":3001",
        "",
        "a:b:c",
        "localhost:3001 ",
        "0.0.0.0:3001",
        "[::1]:03001", /* found by fuzz_guard: the port must be written plainly */
        "localhost:003001",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (guard_host_allowed(bad[i], 3001, NULL))
            fail_msg("host \"%s\" was allowed", bad[i]);
    }
    assert_false(guard_host_allowed(NULL, 3001, NULL));
}

static void test_allowed_hosts_entries(void **state)
{
    char *entries[] = {"myhost.test", "box.lan:8443"};
    struct settings_strv allowed = {entries, 2};
    assert_true(guard_host_allowed("myhost.test:3001", 3001, &allowed));
    assert_true(guard_host_allowed("MyHost.Test:3001", 3001, &allowed));
    assert_false(guard_host_allowed("myhost.test:3002", 3001, &allowed));
    /* Exactly as listed (a reverse proxy on 80/443 sends no port). */
    assert_true(guard_host_allowed("myhost.test", 3001, &allowed));
    assert_true(guard_host_allowed("box.lan:8443", 3001, &allowed));
    assert_false(guard_host_allowed("box.lan:3001", 3001, &allowed));
    assert_false(guard_host_allowed("other.test:3001", 3001, &allowed));
}

static void test_origin(void **state)
{
    char *entries[] = {"http://localhost:5173", "https://app.example/"};
    struct settings_strv allowed = {entries, 2};
    assert_true(guard_origin_allowed(NULL, NULL));
    assert_true(guard_origin_allowed("", NULL));
    assert_false(guard_origin_allowed("http://localhost:3001", NULL));
    assert_false(guard_origin_allowed("null", NULL));
    assert_false(guard_origin_allowed("http://evil.example", &allowed));
    assert_true(guard_origin_allowed("http://localhost:5173", &allowed));
    assert_true(guard_origin_allowed("HTTP://LOCALHOST:5173", &allowed));
    assert_true(guard_origin_allowed("https://app.example", &allowed));
    assert_false(guard_origin_allowed("http://localhost:51730", &allowed));
    assert_false(guard_origin_allowed("http://localhost:517", &allowed));
}

static void test_loopback_setting(void **state)
{
    assert_true(guard_host_is_loopback("127.0.0.1"));
    assert_true(guard_host_is_loopback("localhost"));
    assert_true(guard_host_is_loopback("::1"));
    assert_false(guard_host_is_loopback("0.0.0.0"));
    assert_false(guard_host_is_loopback("192.168.1.2"));
    assert_false(guard_host_is_loopback("::"));
}

static void test_origin_is_self(void **state)
{
    (void)state;
    assert_true(guard_origin_is_self("http://127.0.0.1:8080", "127.0.0.1:8080", 0));
    assert_true(guard_origin_is_self("HTTP://LocalHost:8080/", "localhost:8080", 0));
    assert_true(guard_origin_is_self("https://box.tail.ts.net", "box.tail.ts.net", 1));
    assert_false(guard_origin_is_self("https://127.0.0.1:8080", "127.0.0.1:8080", 0));
    assert_false(guard_origin_is_self("http://127.0.0.1:8080", "127.0.0.1:8080", 1));
    assert_false(guard_origin_is_self("http://127.0.0.1:8081", "127.0.0.1:8080", 0));
    assert_false(guard_origin_is_self("http://localhost:8080", "127.0.0.1:8080", 0));
    assert_false(guard_origin_is_self("http://127.0.0.1:80800", "127.0.0.1:8080", 0));
    assert_false(guard_origin_is_self("http://127.0.0.1", "127.0.0.1:8080", 0));
    assert_false(guard_origin_is_self("null", "127.0.0.1:8080", 0));
    assert_false(guard_origin_is_self("http://", "", 0));
    assert_false(guard_origin_is_self(NULL, "127.0.0.1:8080", 0));
    assert_false(guard_origin_is_self("http://127.0.0.1:8080", NULL, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loopback_hosts_with_port), cmocka_unit_test(test_refused_hosts),
        cmocka_unit_test(test_allowed_hosts_entries),    cmocka_unit_test(test_origin),
        cmocka_unit_test(test_origin_is_self),           cmocka_unit_test(test_loopback_setting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
