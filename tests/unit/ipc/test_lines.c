/*
 * ipc/lines.c: newline framing in any split, limits and resynchronisation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipc/lines.h"

struct got {
    char lines[16][64];
    int n, errors;
};

static void on_line(void *ud, const char *line, size_t len)
{
    struct got *g = ud;
    assert_int_equal(line[len], '\0');
    if (g->n < 16)
        snprintf(g->lines[g->n++], 64, "%.*s", (int)len, line);
}

static void on_error(void *ud, const char *message)
{
    ((struct got *)ud)->errors++;
}

static void test_any_split(void **state)
{
    const char *in = "{\"a\":1}\n{\"b\":2}\r\n\n\n{\"c\":3}\n";
    for (size_t step = 1; step <= strlen(in); step++) {
        struct rpc_lines l;
        struct got g = {0};
        rpc_lines_init(&l, 64);
        for (size_t i = 0; i < strlen(in); i += step) {
            size_t n = strlen(in) - i < step ? strlen(in) - i : step;
            assert_int_equal(rpc_lines_feed(&l, in + i, n, on_line, on_error, &g), 0);
        }
        assert_int_equal(g.n, 3);
        assert_string_equal(g.lines[0], "{\"a\":1}");
        assert_string_equal(g.lines[1], "{\"b\":2}"); /* the \r is gone */
        assert_string_equal(g.lines[2], "{\"c\":3}");
        assert_int_equal(g.errors, 0);
        rpc_lines_free(&l);
    }
}

static void test_too_long_then_resync(void **state)
{
    struct rpc_lines l;
    struct got g = {0};
    char big[200];
    memset(big, 'x', sizeof(big));
    rpc_lines_init(&l, 16);
    assert_int_equal(rpc_lines_feed(&l, "ok1\n", 4, on_line, on_error, &g), 0);
    assert_int_equal(rpc_lines_feed(&l, big, sizeof(big), on_line, on_error, &g), 0);
    assert_int_equal(rpc_lines_feed(&l, big, sizeof(big), on_line, on_error, &g), 0);
    assert_int_equal(rpc_lines_feed(&l, "tail\nok2\n", 9, on_line, on_error, &g), 0);
    assert_int_equal(g.errors, 1); /* one report for one long line */
    assert_int_equal(g.n, 2);
    assert_string_equal(g.lines[0], "ok1");
    assert_string_equal(g.lines[1], "ok2");
    /* A line of exactly the limit passes. */
    assert_int_equal(rpc_lines_feed(&l, "0123456789abcdef\n", 17, on_line, on_error, &g), 0);
    assert_int_equal(g.n, 3);
    rpc_lines_free(&l);
}

static void test_encode(void **state)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    assert_int_equal(rpc_line_encode(&buf, &len, &cap, "{}", 2), 0);
    assert_int_equal(rpc_line_encode(&buf, &len, &cap, "[1]", 3), 0);
    assert_int_equal(len, 7);
    assert_memory_equal(buf, "{}\n[1]\n", 7);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_any_split),
        cmocka_unit_test(test_too_long_then_resync),
        cmocka_unit_test(test_encode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
