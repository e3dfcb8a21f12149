/*
 * The terminal QR code: decoding the printed half blocks must give back
 * exactly libqrencode's module matrix, with a light quiet zone around it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <qrencode.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/qr.h"

/* One character cell -> (top light, bottom light). */
static int cell(const char **p, int *top, int *bottom)
{
    if (strncmp(*p, "\u2588", 3) == 0) {
        *top = *bottom = 1;
        *p += 3;
    } else if (strncmp(*p, "\u2580", 3) == 0) {
        *top = 1, *bottom = 0;
        *p += 3;
    } else if (strncmp(*p, "\u2584", 3) == 0) {
        *top = 0, *bottom = 1;
        *p += 3;
    } else if (**p == ' ') {
        *top = *bottom = 0;
        *p += 1;
    } else {
        return -1;
    }
    return 0;
}

static void check(const char *text)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_int_equal(qr_print(f, text), 0);
    fclose(f);

    QRcode *q = QRcode_encodeString(text, 0, QR_ECLEVEL_L, QR_MODE_8, 1);
    assert_non_null(q);
    int side = q->width + 4; /* quiet zone of 2 on each side */
    int rows = 0;
    const char *p = buf;
    while (*p) {
        int x = 0;
        while (*p && *p != '\n') {
            int top = 0, bottom = 0;
            assert_int_equal(cell(&p, &top, &bottom), 0);
            for (int half = 0; half < 2; half++) {
                int y = rows * 2 + half - 2, mx = x - 2;
                int light = half ? bottom : top;
                int want_dark = y >= 0 && mx >= 0 && y < q->width && mx < q->width &&
                                (q->data[y * q->width + mx] & 1);
                if (y < q->width + 2 && light == want_dark)
                    fail_msg("module (%d,%d) wrong", mx, y);
            }
            x++;
        }
        assert_int_equal(x, side);
        if (*p == '\n')
            p++;
        rows++;
    }
    assert_int_equal(rows, (side + 1) / 2);
    QRcode_free(q);
    free(buf);
}

static void test_matrix_round_trip(void **state)
{
    check("hello");
    check("{\"v\":1,\"url\":\"ws://127.0.0.1:3001/ws\",\"workspaceId\":\"9b35bbfecf0429a8\","
          "\"token\":\"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl\"}");
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_matrix_round_trip)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
