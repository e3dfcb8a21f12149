/*
 * core/sio.c: Engine.IO 4 and Socket.IO 5 packets as socket.io-client and
 * python-socketio write them, and everything the codec must refuse
 * (binary, bad namespaces, long ack ids, reserved or missing event names,
 * bad JSON) with a message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/sio.h"

static int parse(const char *s, struct sio_packet *p, char *why)
{
    return sio_packet_parse(s, strlen(s), p, why, 160);
}

static void test_eio(void **state)
{
    (void)state;
    int type;
    const char *d;
    size_t dl;
    char why[160];
    assert_int_equal(sio_eio_parse("2probe", 6, &type, &d, &dl, why, sizeof(why)), 0);
    assert_int_equal(type, SIO_EIO_PING);
    assert_int_equal(dl, 5);
    assert_memory_equal(d, "probe", 5);
    assert_int_equal(sio_eio_parse("6", 1, &type, &d, &dl, why, sizeof(why)), 0);
    assert_int_equal(type, SIO_EIO_NOOP);
    assert_int_equal(sio_eio_parse("", 0, &type, &d, &dl, why, sizeof(why)), -1);
    assert_int_equal(sio_eio_parse("bAAA", 4, &type, &d, &dl, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "binary"));
    assert_int_equal(sio_eio_parse("7", 1, &type, &d, &dl, why, sizeof(why)), -1);
}

static void test_payload(void **state)
{
    (void)state;
    const char body[] = "40\x1e"
                        "42[\"a\"]\x1e"
                        "3";
    size_t off = 0, pl;
    const char *p;
    assert_int_equal(sio_payload_next(body, strlen(body), &off, &p, &pl), 1);
    assert_int_equal(pl, 2);
    assert_memory_equal(p, "40", 2);
    assert_int_equal(sio_payload_next(body, strlen(body), &off, &p, &pl), 1);
    assert_int_equal(pl, 7);
    assert_int_equal(sio_payload_next(body, strlen(body), &off, &p, &pl), 1);
    assert_int_equal(pl, 1);
    assert_int_equal(sio_payload_next(body, strlen(body), &off, &p, &pl), 0);
    off = 0;
    assert_int_equal(sio_payload_next("", 0, &off, &p, &pl), 1);
    assert_int_equal(pl, 0);
    assert_int_equal(sio_payload_next("", 0, &off, &p, &pl), 0);
}

static void test_packets(void **state)
{
    (void)state;
    struct sio_packet p;
    char why[160];
    assert_int_equal(parse("0", &p, why), 0);
    assert_int_equal(p.type, SIO_CONNECT);
    assert_string_equal(p.nsp, "/");
    assert_null(p.data);
    sio_packet_clear(&p);

    assert_int_equal(parse("0{\"token\":\"abc\"}", &p, why), 0);
    assert_true(json_object_is_type(p.data, json_type_object));
    sio_packet_clear(&p);

    assert_int_equal(parse("0/admin,{\"token\":\"x\"}", &p, why), 0);
    assert_string_equal(p.nsp, "/admin");
    sio_packet_clear(&p);

    assert_int_equal(parse("2[\"chat_message\",{\"content\":\"hi\"}]", &p, why), 0);
    assert_int_equal(p.type, SIO_EVENT);
    assert_string_equal(p.event, "chat_message");
    assert_int_equal(p.ack, -1);
    sio_packet_clear(&p);

    assert_int_equal(parse("212[\"system_status\"]", &p, why), 0);
    assert_int_equal(p.ack, 12);
    sio_packet_clear(&p);

    assert_int_equal(parse("2/x,7[\"e\"]", &p, why), 0);
    assert_string_equal(p.nsp, "/x");
    assert_int_equal(p.ack, 7);
    sio_packet_clear(&p);

    assert_int_equal(parse("35[]", &p, why), 0);
    assert_int_equal(p.type, SIO_ACK);
    assert_int_equal(p.ack, 5);
    sio_packet_clear(&p);

    assert_int_equal(parse("1", &p, why), 0);
    assert_int_equal(p.type, SIO_DISCONNECT);
    sio_packet_clear(&p);
}

static void refused(const char *s, const char *want)
{
    struct sio_packet p;
    char why[160] = "";
    if (parse(s, &p, why) != -1)
        fail_msg("accepted: %s", s);
    assert_null(p.data);
    if (!strstr(why, want))
        fail_msg("%s: said \"%s\", expected \"%s\"", s, why, want);
    sio_packet_clear(&p);
}

static void test_refusals(void **state)
{
    (void)state;
    refused("", "empty");
    refused("9", "unknown");
    refused("51-[\"a\",{\"_placeholder\":true,\"num\":0}]", "binary");
    refused("61-0[]", "binary");
    refused("5[\"a\"]", "binary");
    refused("60[]", "binary");
    refused("21-[\"a\"]", "binary");
    refused("2", "EVENT");
    refused("2{}", "EVENT");
    refused("2[]", "EVENT");
    refused("2[1]", "name must be a string");
    refused("2[\"\"]", "1 to 64");
    refused("2[\"connect\"]", "reserved");
    refused("2[\"a\"", "invalid JSON");
    refused("2[\"a\"]x", "invalid JSON");
    refused("2[\"a\\u0000b\"]", "invalid JSON");
    refused("21234567890123456[\"a\"]", "ack id too long");
    refused("3[]", "missing ack id");
    refused("31{}", "ACK");
    refused("0[1]", "CONNECT");
    refused("05{}", "ack id");
    refused("1{}", "DISCONNECT");
    refused("0/a b,{}", "namespace");
    char longns[300] = "0/";
    memset(longns + 2, 'n', 200);
    longns[202] = ',';
    longns[203] = '\0';
    refused(longns, "namespace too long");
    char name[100] = "2[\"";
    memset(name + 3, 'e', 65);
    strcpy(name + 68, "\"]");
    refused(name, "1 to 64");
}

static void test_encode(void **state)
{
    (void)state;
    size_t n;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "sid", json_object_new_string("abc"));
    char *s = sio_packet_encode(SIO_CONNECT, "/", -1, o, &n);
    assert_string_equal(s, "40{\"sid\":\"abc\"}");
    assert_int_equal(n, strlen(s));
    free(s);
    s = sio_packet_encode(SIO_CONNECT_ERROR, "/admin", -1, o, &n);
    assert_string_equal(s, "44/admin,{\"sid\":\"abc\"}");
    free(s);
    json_object_put(o);
    json_object *a = json_object_new_array();
    json_object_array_add(a, json_object_new_string("ok"));
    s = sio_packet_encode(SIO_ACK, NULL, 42, a, &n);
    assert_string_equal(s, "4342[\"ok\"]");
    free(s);
    json_object_put(a);
    s = sio_event_encode("terminal_output", json_object_new_string("a/b"), -1, &n);
    assert_string_equal(s, "42[\"terminal_output\",\"a/b\"]");
    /* What we encode, we parse back. */
    struct sio_packet p;
    char why[160];
    assert_int_equal(sio_packet_parse(s + 1, n - 1, &p, why, sizeof(why)), 0);
    assert_string_equal(p.event, "terminal_output");
    sio_packet_clear(&p);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eio),     cmocka_unit_test(test_payload),
        cmocka_unit_test(test_packets), cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_encode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
