/*
 * Unit tests of core/settings_remote.c and core/remote.c: server.publicUrl
 * validation (every refusal with its message, normalisation), server.tls
 * paths, the base and WebSocket URLs, the Host and Origin publicUrl adds,
 * the warnings, and copies of settings holding them (ASan sees leaks).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/remote.h"
#include "core/settings.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void parse_ok(struct settings *s, const char *text)
{
    char err[512] = "";
    json_object *o = json_tokener_parse(text);
    if (!o)
        fail_msg("test JSON does not parse: %s", text);
    int rc = settings_parse(s, o, err, sizeof err);
    json_object_put(o);
    if (rc != 0)
        fail_msg("refused %s: %s", text, err);
}

static void refused(const char *text, const char *want)
{
    struct settings s;
    char err[512] = "";
    json_object *o = json_tokener_parse(text);
    if (!o)
        fail_msg("test JSON does not parse: %s", text);
    int rc = settings_parse(&s, o, err, sizeof err);
    json_object_put(o);
    if (rc != -1)
        fail_msg("%s: accepted, expected \"%s\"", text, want);
    if (!strstr(err, want))
        fail_msg("%s: error \"%s\" lacks \"%s\"", text, err, want);
    assert_null(s.public_url);
    settings_free(&s);
}

static void url_refused(const char *url, const char *want)
{
    struct settings_url u;
    char err[256] = "";
    if (settings_url_parse(url, strlen(url), &u, err, sizeof err) != -1)
        fail_msg("%s: accepted, expected \"%s\"", url, want);
    if (!strstr(err, want))
        fail_msg("%s: error \"%s\" lacks \"%s\"", url, err, want);
    if (strncmp(err, "server.publicUrl: ", 18) != 0)
        fail_msg("%s: error \"%s\" does not name the key", url, err);
}

static void url_normalised(const char *url, const char *want)
{
    struct settings_url u;
    char err[256] = "", out[SETTINGS_URL_MAX + 16];
    if (settings_url_parse(url, strlen(url), &u, err, sizeof err) != 0)
        fail_msg("%s: refused: %s", url, err);
    assert_int_equal(settings_url_origin(&u, out, sizeof out), 0);
    assert_string_equal(out, want);
}

static void test_url_refusals(void **state)
{
    (void)state;
    url_refused("ftp://box.example", "expected an http:// or https:// URL");
    url_refused("ws://box.example", "expected an http:// or https:// URL");
    url_refused("box.example", "expected an http:// or https:// URL");
    url_refused("", "expected an http:// or https:// URL");
    url_refused("https://user@box.example", "must not contain a user name or password");
    url_refused("https://user:pw@box.example/", "must not contain a user name or password");
    url_refused("https://box.example?x", "must not have a query");
    url_refused("https://box.example/?x=1", "must not have a query");
    url_refused("https://box.example#f", "must not have a fragment");
    url_refused("https://box.example/app", "must not have a path");
    url_refused("https://box.example//", "must not have a path");
    url_refused("https://", "has no host name");
    url_refused("https:///", "has no host name");
    url_refused("https://:443", "the host must be a DNS name");
    url_refused("https://box..example", "the host must be a DNS name");
    url_refused("https://.box.example", "the host must be a DNS name");
    url_refused("https://box.example.", "the host must be a DNS name");
    url_refused("https://-box.example", "the host must be a DNS name");
    url_refused("https://box-.example", "the host must be a DNS name");
    url_refused("https://box_1.example", "the host must be a DNS name");
    url_refused("https://box.example:", "the port must be a number from 1 to 65535");
    url_refused("https://box.example:0", "the port must be a number from 1 to 65535");
    url_refused("https://box.example:08443", "the port must be a number from 1 to 65535");
    url_refused("https://box.example:65536", "the port must be a number from 1 to 65535");
    url_refused("https://box.example:123456", "the port must be a number from 1 to 65535");
    url_refused("https://box.example:44a", "the port must be a number from 1 to 65535");
    url_refused("https://box.example:1:2", "the port must be a number from 1 to 65535");
    url_refused("https://[::1", "expected an IPv6 address in brackets");
    url_refused("https://[zz::1]", "expected an IPv6 address in brackets");
    url_refused("https://[::1]x", "expected ':' and a port after the IPv6 address");
    url_refused("https://box example", "must not contain spaces");
    url_refused("https://box.example\t", "must not contain spaces");
    url_refused("https://b\xc3\xb6x.example", "non-ASCII");
    char label[128];
    memset(label, 'a', 64);
    snprintf(label + 64, sizeof label - 64, ".example");
    char url[160];
    snprintf(url, sizeof url, "https://%s", label);
    url_refused(url, "the host must be a DNS name");
    char *huge = malloc(SETTINGS_URL_MAX + 10);
    memcpy(huge, "https://", 8);
    memset(huge + 8, 'a', SETTINGS_URL_MAX);
    huge[SETTINGS_URL_MAX + 8] = '\0';
    url_refused(huge, "longer than");
    free(huge);
}

static void test_url_normalised(void **state)
{
    (void)state;
    url_normalised("https://box.tailnet.ts.net", "https://box.tailnet.ts.net");
    url_normalised("HTTPS://Box.Tailnet.TS.net/", "https://box.tailnet.ts.net");
    url_normalised("https://box.example:443/", "https://box.example");
    url_normalised("http://box.example:80", "http://box.example");
    url_normalised("https://box.example:8443", "https://box.example:8443");
    url_normalised("http://localhost:8080/", "http://localhost:8080");
    url_normalised("http://192.168.1.20:3001", "http://192.168.1.20:3001");
    url_normalised("https://[FD7A:115C::1]:8443", "https://[fd7a:115c::1]:8443");
    url_normalised("https://[::ffff:10.0.0.1]", "https://[::ffff:10.0.0.1]");
    struct settings_url u;
    assert_int_equal(settings_url_parse("https://a.b:65535", 17, &u, NULL, 0), 0);
    assert_int_equal(u.port, 65535);
    assert_int_equal(u.https, 1);
    assert_int_equal(u.default_port, 0);
}

static void test_settings_keys(void **state)
{
    (void)state;
    struct settings s;
    parse_ok(&s, "{\"server\":{\"publicUrl\":\"https://Box.example/\","
                 "\"tls\":{\"certFile\":\"/etc/c.pem\",\"keyFile\":\"/etc/k.pem\"}}}");
    assert_string_equal(s.public_url, "https://box.example");
    assert_string_equal(s.tls_cert_file, "/etc/c.pem");
    assert_string_equal(s.tls_key_file, "/etc/k.pem");
    assert_true(remote_tls_enabled(&s));
    struct settings copy;
    assert_int_equal(settings_copy(&copy, &s), 0);
    assert_string_equal(copy.public_url, "https://box.example");
    assert_ptr_not_equal(copy.public_url, s.public_url);
    assert_string_equal(copy.tls_key_file, "/etc/k.pem");
    settings_free(&copy);
    settings_free(&s);

    /* Empty and null mean "not set". */
    parse_ok(&s, "{\"server\":{\"publicUrl\":\"\",\"tls\":{\"certFile\":\"\",\"keyFile\":null}}}");
    assert_null(s.public_url);
    assert_null(s.tls_cert_file);
    assert_false(remote_tls_enabled(&s));
    settings_free(&s);
    parse_ok(&s, "{\"server\":{\"publicUrl\":null,\"tls\":null}}");
    assert_null(s.public_url);
    settings_free(&s);

    refused("{\"server\":{\"publicUrl\":42}}", "server.publicUrl: expected a URL");
    refused("{\"server\":{\"publicUrl\":\"https://x/y\"}}",
            "server.publicUrl: must not have a path");
    refused("{\"server\":{\"tls\":[]}}", "server.tls: expected an object");
    refused("{\"server\":{\"tls\":{\"certFile\":\"/a\"}}}",
            "server.tls: set both certFile and keyFile, or neither");
    refused("{\"server\":{\"tls\":{\"keyFile\":\"/a\"}}}",
            "server.tls: set both certFile and keyFile, or neither");
    refused("{\"server\":{\"tls\":{\"certFile\":\"c.pem\",\"keyFile\":\"/k\"}}}",
            "server.tls.certFile: expected an absolute file path");
    refused("{\"server\":{\"tls\":{\"certFile\":\"/c\",\"keyFile\":true}}}",
            "server.tls.keyFile: expected an absolute file path");
    /* A bad publicUrl after good TLS paths frees what was parsed (ASan). */
    refused(
        "{\"server\":{\"publicUrl\":\"https://x\",\"tls\":{\"certFile\":\"/c\",\"keyFile\":1}}}",
        "server.tls.keyFile");
}

static void test_urls(void **state)
{
    (void)state;
    struct settings s;
    char buf[REMOTE_URL_LEN];
    settings_init(&s);
    assert_int_equal(remote_base_url(&s, 3001, buf, sizeof buf), 0);
    assert_string_equal(buf, "http://127.0.0.1:3001");
    assert_int_equal(remote_ws_url(&s, 3001, buf, sizeof buf), 0);
    assert_string_equal(buf, "ws://127.0.0.1:3001/ws");
    free(s.host);
    s.host = strdup("::1");
    assert_int_equal(remote_ws_url(&s, 4000, buf, sizeof buf), 0);
    assert_string_equal(buf, "ws://[::1]:4000/ws");
    s.tls_cert_file = strdup("/c");
    s.tls_key_file = strdup("/k");
    assert_int_equal(remote_base_url(&s, 4000, buf, sizeof buf), 0);
    assert_string_equal(buf, "https://[::1]:4000");
    assert_int_equal(remote_ws_url(&s, 4000, buf, sizeof buf), 0);
    assert_string_equal(buf, "wss://[::1]:4000/ws");
    /* publicUrl wins over the listener, whatever its scheme. */
    s.public_url = strdup("http://localhost:8080");
    assert_int_equal(remote_ws_url(&s, 4000, buf, sizeof buf), 0);
    assert_string_equal(buf, "ws://localhost:8080/ws");
    free(s.public_url);
    s.public_url = strdup("https://box.example");
    assert_int_equal(remote_base_url(&s, 4000, buf, sizeof buf), 0);
    assert_string_equal(buf, "https://box.example");
    assert_int_equal(remote_ws_url(&s, 4000, buf, sizeof buf), 0);
    assert_string_equal(buf, "wss://box.example/ws");
    /* A buffer too small is an error, not a cut URL. */
    assert_int_equal(remote_ws_url(&s, 4000, buf, 10), -1);
    settings_free(&s);
}

static void test_host_and_origin(void **state)
{
    (void)state;
    struct settings s;
    settings_init(&s);
    assert_false(remote_host_allowed(&s, "box.example"));
    assert_false(remote_origin_allowed(&s, "https://box.example"));
    s.public_url = strdup("https://box.example");
    assert_true(remote_host_allowed(&s, "box.example"));
    assert_true(remote_host_allowed(&s, "BOX.example"));
    assert_true(remote_host_allowed(&s, "box.example:443"));
    assert_false(remote_host_allowed(&s, "box.example:3001"));
    assert_false(remote_host_allowed(&s, "box.example.evil"));
    assert_false(remote_host_allowed(&s, "evil.box.example"));
    assert_false(remote_host_allowed(&s, ""));
    assert_false(remote_host_allowed(&s, NULL));
    assert_true(remote_origin_allowed(&s, "https://box.example"));
    assert_true(remote_origin_allowed(&s, "https://Box.Example/"));
    assert_false(remote_origin_allowed(&s, "http://box.example"));
    assert_false(remote_origin_allowed(&s, "https://box.example:8443"));
    assert_false(remote_origin_allowed(&s, "https://box.example.evil"));
    assert_false(remote_origin_allowed(&s, "null"));
    assert_false(remote_origin_allowed(&s, NULL));
    free(s.public_url);
    s.public_url = strdup("http://localhost:8080");
    assert_true(remote_host_allowed(&s, "localhost:8080"));
    assert_false(remote_host_allowed(&s, "localhost"));
    assert_true(remote_origin_allowed(&s, "http://localhost:8080"));
    assert_false(remote_origin_allowed(&s, "http://localhost"));
    settings_free(&s);
}

static void test_warnings(void **state)
{
    (void)state;
    struct settings s;
    char w[REMOTE_WARNINGS_MAX][REMOTE_WARNING_MAX];
    settings_init(&s);
    assert_int_equal(remote_warnings(&s, w, REMOTE_WARNINGS_MAX), 0);
    free(s.host);
    s.host = strdup("0.0.0.0");
    assert_int_equal(remote_warnings(&s, w, REMOTE_WARNINGS_MAX), 1);
    assert_non_null(strstr(w[0], "listening on 0.0.0.0 without TLS"));
    assert_int_equal(remote_warnings(&s, w, 0), 0);
    s.tls_cert_file = strdup("/c");
    s.tls_key_file = strdup("/k");
    assert_int_equal(remote_warnings(&s, w, REMOTE_WARNINGS_MAX), 0);
    /* An https proxy in front of loopback: fine. */
    free(s.host);
    s.host = strdup("127.0.0.1");
    s.public_url = strdup("https://box.example");
    assert_int_equal(remote_warnings(&s, w, REMOTE_WARNINGS_MAX), 0);
    free(s.public_url);
    s.public_url = strdup("http://localhost:9000");
    assert_int_equal(remote_warnings(&s, w, REMOTE_WARNINGS_MAX), 0);
    free(s.public_url);
    s.public_url = strdup("http://box.lan:3001");
    assert_int_equal(remote_warnings(&s, w, REMOTE_WARNINGS_MAX), 1);
    assert_non_null(strstr(w[0], "server.publicUrl http://box.lan:3001 is plain http://"));
    settings_free(&s);
}

static void test_tls_check_without_files(void **state)
{
    (void)state;
    struct settings s;
    char err[256] = "";
    settings_init(&s);
    assert_int_equal(remote_tls_check(&s, err, sizeof err), 0);
    s.tls_cert_file = strdup("/nonexistent/c.pem");
    assert_int_equal(remote_tls_check(&s, err, sizeof err), -1);
    assert_non_null(strstr(err, "set both certFile and keyFile"));
    s.tls_key_file = strdup("/nonexistent/k.pem");
    assert_int_equal(remote_tls_check(&s, err, sizeof err), -1);
    assert_non_null(strstr(err, "server.tls.certFile: cannot read \"/nonexistent/c.pem\""));
    settings_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_refusals),
        cmocka_unit_test(test_url_normalised),
        cmocka_unit_test(test_settings_keys),
        cmocka_unit_test(test_urls),
        cmocka_unit_test(test_host_and_origin),
        cmocka_unit_test(test_warnings),
        cmocka_unit_test(test_tls_check_without_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
