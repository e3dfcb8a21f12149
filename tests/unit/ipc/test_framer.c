/*
 * test_framer: the LSP base-protocol framer: any split of the input gives the
 * same bodies, bad frames are reported once and never stop the next one,
 * oversize bodies are skipped without being buffered.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ipc/framer.h"

#define MAX_SEEN 64

struct sink {
    struct rpc_framer *f;
    char *body[MAX_SEEN];
    size_t len[MAX_SEEN];
    size_t n;
    enum rpc_frame_error err[MAX_SEEN];
    size_t nerr;
    size_t max_cap; /* largest f->cap seen while a frame was delivered */
};

static void on_frame(void *ud, const char *body, size_t len)
{
    struct sink *s = ud;

    assert_true(s->n < MAX_SEEN);
    assert_int_equal(body[len], '\0');
    s->body[s->n] = malloc(len + 1);
    assert_non_null(s->body[s->n]);
    memcpy(s->body[s->n], body, len + 1);
    s->len[s->n] = len;
    s->n++;
    if (s->f && s->f->cap > s->max_cap)
        s->max_cap = s->f->cap;
}

static void on_error(void *ud, enum rpc_frame_error code, const char *message)
{
    struct sink *s = ud;

    assert_non_null(message);
    assert_true(s->nerr < MAX_SEEN);
    s->err[s->nerr++] = code;
}

static void sink_reset(struct sink *s)
{
    size_t i;

    for (i = 0; i < s->n; i++)
        free(s->body[i]);
    memset(s, 0, sizeof(*s));
}

static void feed(struct rpc_framer *f, struct sink *s, const char *data, size_t len)
{
    s->f = f;
    assert_int_equal(rpc_framer_feed(f, data, len, on_frame, on_error, s), 0);
}

static void feed_str(struct rpc_framer *f, struct sink *s, const char *data)
{
    feed(f, s, data, strlen(data));
}

static void feed_bytewise(struct rpc_framer *f, struct sink *s, const char *data, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++)
        feed(f, s, data + i, 1);
}

static void assert_body(const struct sink *s, size_t i, const char *want)
{
    assert_true(i < s->n);
    assert_int_equal(s->len[i], strlen(want));
    assert_memory_equal(s->body[i], want, s->len[i]);
}

/* xorshift64: deterministic, so a failure can be replayed. */
static uint64_t next_rand(uint64_t *state)
{
    uint64_t x = *state;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return x;
}

/* A growing byte string for building streams. */
struct str {
    char *p;
    size_t len, cap;
};

static void str_add(struct str *s, const char *data, size_t n)
{
    if (s->len + n + 1 > s->cap) {
        s->cap = (s->len + n + 1) * 2;
        s->p = realloc(s->p, s->cap);
        assert_non_null(s->p);
    }
    memcpy(s->p + s->len, data, n);
    s->len += n;
    s->p[s->len] = '\0';
}

static void str_cat(struct str *s, const char *text)
{
    str_add(s, text, strlen(text));
}

static void str_frame(struct str *s, const char *body)
{
    assert_int_equal(rpc_frame_encode(&s->p, &s->len, &s->cap, body, strlen(body)), 0);
}

static const char *const BODIES[] = {
    "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{}}",
    "",
    "{\"text\":\"h\xc3\xa9llo w\xc3\xb6rld \xe2\x82\xac \xf0\x9f\x98\x80\"}",
    "{\"a\":\"Content-Length: 99\\r\\n\"}",
    "[1,2,3]",
    "{\"k\":\"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\"}",
};
#define NBODIES (sizeof(BODIES) / sizeof(BODIES[0]))

static void build_stream(struct str *s)
{
    size_t i;

    for (i = 0; i < NBODIES; i++)
        str_frame(s, BODIES[i]);
}

static void assert_all_bodies(const struct sink *s)
{
    size_t i;

    assert_int_equal(s->nerr, 0);
    assert_int_equal(s->n, NBODIES);
    for (i = 0; i < NBODIES; i++)
        assert_body(s, i, BODIES[i]);
}

static void test_one_feed(void **state)
{
    struct rpc_framer f;
    struct sink s = {0};
    struct str in = {0};

    rpc_framer_init(&f, 1024);
    build_stream(&in);
    feed(&f, &s, in.p, in.len);
    assert_all_bodies(&s);
    sink_reset(&s);
    rpc_framer_free(&f);
    free(in.p);
}

static void test_byte_by_byte(void **state)
{
    struct rpc_framer f;
    struct sink s = {0};
    struct str in = {0};

    rpc_framer_init(&f, 1024);
    build_stream(&in);
    feed_bytewise(&f, &s, in.p, in.len);
    assert_all_bodies(&s);
    sink_reset(&s);
    rpc_framer_free(&f);
    free(in.p);
}

static void test_random_splits(void **state)
{
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    struct str in = {0};
    int iter;

    build_stream(&in);
    for (iter = 0; iter < 2000; iter++) {
        struct rpc_framer f;
        struct sink s = {0};
        size_t off = 0;

        rpc_framer_init(&f, 1024);
        while (off < in.len) {
            size_t n = (size_t)(next_rand(&seed) % (iter % 3 == 0 ? 4 : 40)) + 1;

            if (n > in.len - off)
                n = in.len - off;
            feed(&f, &s, in.p + off, n);
            off += n;
        }
        assert_all_bodies(&s);
        sink_reset(&s);
        rpc_framer_free(&f);
    }
    free(in.p);
}

static void test_header_spelling(void **state)
{
    static const char *const streams[] = {
        "content-length: 2\r\n\r\n{}",
        "CONTENT-LENGTH: 2\r\n\r\n{}",
        "CoNtEnT-lEnGtH: 2\r\n\r\n{}",
        "Content-Length:2\r\n\r\n{}",
        "Content-Length: \t 2 \t\r\n\r\n{}",
        "Content-Length: 2\n\n{}",
        "Content-Length: 2\r\n\n{}",
        "X-Custom: yes\r\nContent-Length: 2\r\nX-Other: 1:2:3\r\n\r\n{}",
        "Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}",
        "\r\n\n\r\nContent-Length: 2\r\n\r\n{}",
    };
    size_t i;

    for (i = 0; i < sizeof(streams) / sizeof(streams[0]); i++) {
        struct rpc_framer f;
        struct sink s = {0};

        rpc_framer_init(&f, 1024);
        feed_str(&f, &s, streams[i]);
        feed_str(&f, &s, "Content-Length: 3\r\n\r\n[1]");
        assert_int_equal(s.nerr, 0);
        assert_int_equal(s.n, 2);
        assert_body(&s, 0, "{}");
        assert_body(&s, 1, "[1]");
        sink_reset(&s);
        rpc_framer_free(&f);
    }
}

static void test_content_type(void **state)
{
    static const char *const good[] = {
        "Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n",
        "content-type: application/vscode-jsonrpc; CHARSET=UTF-8\r\n",
        "Content-Type: application/vscode-jsonrpc;charset=utf8\r\n",
        "Content-Type: application/json; charset=\"utf-8\"\r\n",
        "Content-Type: application/vscode-jsonrpc\r\n",
    };
    static const char *const bad[] = {
        "Content-Type: application/vscode-jsonrpc; charset=latin1\r\n",
        "Content-Type: application/vscode-jsonrpc; charset=utf-16\r\n",
        "Content-Type: text/plain; charset=\r\n",
    };
    size_t i;

    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        struct rpc_framer f;
        struct sink s = {0};

        rpc_framer_init(&f, 1024);
        feed_str(&f, &s, "Content-Length: 2\r\n");
        feed_str(&f, &s, good[i]);
        feed_str(&f, &s, "\r\n{}");
        assert_int_equal(s.nerr, 0);
        assert_int_equal(s.n, 1);
        assert_body(&s, 0, "{}");
        sink_reset(&s);
        rpc_framer_free(&f);
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct rpc_framer f;
        struct sink s = {0};

        rpc_framer_init(&f, 1024);
        feed_str(&f, &s, bad[i]);
        /* The refused body is skipped by its length, even when it looks like
         * a frame itself. */
        feed_str(&f, &s, "Content-Length: 23\r\n\r\nContent-Length: 2\r\n\r\n{}");
        feed_str(&f, &s, "Content-Length: 3\r\n\r\n[1]");
        assert_int_equal(s.nerr, 1);
        assert_int_equal(s.err[0], RPC_FRAME_BAD_HEADER);
        assert_int_equal(s.n, 1);
        assert_body(&s, 0, "[1]");
        sink_reset(&s);
        rpc_framer_free(&f);
    }
}

/* A bad header block, the unusable body right after it, then a good frame:
 * exactly one error, and the good frame arrives, however the bytes come. */
static void check_recovers(const char *bad_block, int bytewise)
{
    struct rpc_framer f;
    struct sink s = {0};
    struct str in = {0};

    str_cat(&in, bad_block);
    str_cat(&in, "{\"lost\":true}");
    str_frame(&in, "{\"ok\":1}");
    str_frame(&in, "{\"ok\":2}");
    rpc_framer_init(&f, 1024);
    if (bytewise)
        feed_bytewise(&f, &s, in.p, in.len);
    else
        feed(&f, &s, in.p, in.len);
    assert_int_equal(s.nerr, 1);
    assert_int_equal(s.err[0], RPC_FRAME_BAD_HEADER);
    assert_int_equal(s.n, 2);
    assert_body(&s, 0, "{\"ok\":1}");
    assert_body(&s, 1, "{\"ok\":2}");
    sink_reset(&s);
    rpc_framer_free(&f);
    free(in.p);
}

static void test_missing_length(void **state)
{
    check_recovers("Content-Type: application/vscode-jsonrpc\r\n\r\n", 0);
    check_recovers("Content-Type: application/vscode-jsonrpc\r\n\r\n", 1);
    check_recovers("X-Only: 1\n\n", 0);
}

static void test_bad_length_values(void **state)
{
    static const char *const blocks[] = {
        "Content-Length: abc\r\n\r\n",
        "Content-Length: -5\r\n\r\n",
        "Content-Length: 99999999999999999999999\r\n\r\n",
        "Content-Length: 18446744073709551616\r\n\r\n",
        "Content-Length: \r\n\r\n",
        "Content-Length: +5\r\n\r\n",
        "Content-Length: 5x\r\n\r\n",
        "Content-Length: 0x10\r\n\r\n",
        "Content-Length: 1 2\r\n\r\n",
        "Content-Length: 13\r\nContent-Length: 12\r\n\r\n",
        "no colon here\r\n\r\n",
    };
    size_t i;

    for (i = 0; i < sizeof(blocks) / sizeof(blocks[0]); i++) {
        check_recovers(blocks[i], 0);
        check_recovers(blocks[i], 1);
    }
}

/* The next header found while resynchronising may arrive in any pieces. */
static void test_resync_across_feeds(void **state)
{
    struct rpc_framer f;
    struct sink s = {0};

    rpc_framer_init(&f, 1024);
    feed_str(&f, &s, "Content-Length: nope\r\n\r\n{\"x\":\"Content-Len\"}");
    feed_str(&f, &s, "Cont");
    feed_str(&f, &s, "ent-Len");
    feed_str(&f, &s, "gth: 2\r\n\r");
    feed_str(&f, &s, "\n{");
    feed_str(&f, &s, "}");
    assert_int_equal(s.nerr, 1);
    assert_int_equal(s.n, 1);
    assert_body(&s, 0, "{}");

    /* A broken partial match whose breaking byte starts the real one. */
    feed_str(&f, &s, "Content-Length: ?\r\n\r\n[CONTENT-LEN");
    feed_str(&f, &s, "cContent-Length: 3\r\n\r\n[2]");
    feed_str(&f, &s, "Content-Length: ?\r\n\r\nccontent-length: 3\r\n\r\n[3]");
    assert_int_equal(s.nerr, 3);
    assert_int_equal(s.n, 3);
    assert_body(&s, 1, "[2]");
    assert_body(&s, 2, "[3]");
    sink_reset(&s);
    rpc_framer_free(&f);
}

static void test_too_large_skipped(void **state)
{
    /* Over the limit but within RPC_FRAMER_SKIP_FACTOR times it: skipped. */
    const size_t big = 4 * 4096;
    struct rpc_framer f;
    struct sink s = {0};
    char *chunk = malloc(4096);
    char hdr[64];
    size_t left = big;

    assert_non_null(chunk);
    /* The skipped body holds what looks like frames: none may come out. */
    memset(chunk, 'x', 4096);
    memcpy(chunk + 100, "\r\nContent-Length: 2\r\n\r\n{}", 25);
    rpc_framer_init(&f, 4096);
    snprintf(hdr, sizeof(hdr), "Content-Length: %zu\r\n\r\n", big);
    feed_str(&f, &s, hdr);
    while (left > 0) {
        size_t n = left < 4096 ? left : 4096;

        feed(&f, &s, chunk, n);
        left -= n;
        assert_true(f.cap <= RPC_FRAMER_HEADER_MAX);
    }
    feed_str(&f, &s, "Content-Length: 7\r\n\r\n{\"a\":1}");
    assert_int_equal(s.nerr, 1);
    assert_int_equal(s.err[0], RPC_FRAME_TOO_LARGE);
    assert_int_equal(s.n, 1);
    assert_body(&s, 0, "{\"a\":1}");
    assert_true(f.cap <= RPC_FRAMER_HEADER_MAX);
    sink_reset(&s);
    rpc_framer_free(&f);
    rpc_framer_init(&f, 16);

    /* An absurd length does not swallow the stream: the next frame is found. */
    feed_str(&f, &s, "Content-Length: 999999999999\r\n\r\n");
    feed_str(&f, &s, "Content-Length: 2\r\n\r\n{}");
    assert_int_equal(s.nerr, 1);
    assert_int_equal(s.err[0], RPC_FRAME_TOO_LARGE);
    assert_int_equal(s.n, 1);
    assert_body(&s, 0, "{}");
    sink_reset(&s);

    /* Exactly at the limit is fine, one byte over is not. */
    feed_str(&f, &s, "Content-Length: 16\r\n\r\n0123456789abcdef");
    feed_str(&f, &s, "Content-Length: 17\r\n\r\n0123456789abcdefg");
    feed_str(&f, &s, "Content-Length: 2\r\n\r\n{}");
    assert_int_equal(s.nerr, 1);
    assert_int_equal(s.err[0], RPC_FRAME_TOO_LARGE);
    assert_int_equal(s.n, 2);
    assert_body(&s, 0, "0123456789abcdef");
    assert_body(&s, 1, "{}");
    sink_reset(&s);
    rpc_framer_free(&f);
    free(chunk);
}

/* Memory follows the largest legal frame, not the input. */
static void test_buffer_bounded(void **state)
{
    const size_t max = 100000;
    struct rpc_framer f;
    struct sink s = {0};
    struct str in = {0};
    char *body = malloc(max + 1);

    assert_non_null(body);
    memset(body, 'a', max);
    body[0] = '"';
    body[max - 1] = '"';
    body[max] = '\0';
    str_frame(&in, body);
    str_frame(&in, "{}");
    rpc_framer_init(&f, max);
    feed(&f, &s, in.p, in.len);
    assert_int_equal(s.nerr, 0);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.len[0], max);
    assert_memory_equal(s.body[0], body, max);
    assert_true(s.max_cap <= max + 1);
    assert_true(s.max_cap >= max + 1);
    /* A big buffer is not kept once its frame is delivered. */
    assert_true(f.cap <= RPC_FRAMER_HEADER_MAX);
    sink_reset(&s);
    rpc_framer_free(&f);
    free(in.p);
    free(body);
}

static void test_header_overflow(void **state)
{
    struct rpc_framer f;
    struct sink s = {0};
    struct str in = {0};
    char *pad = malloc(RPC_FRAMER_HEADER_MAX + 1);
    int bytewise;

    assert_non_null(pad);
    memset(pad, 'a', RPC_FRAMER_HEADER_MAX);
    pad[RPC_FRAMER_HEADER_MAX] = '\0';
    str_cat(&in, "Content-Length: 2\r\nX-Junk: ");
    str_cat(&in, pad);
    str_cat(&in, "\r\n\r\n{}");
    str_frame(&in, "{\"next\":1}");
    for (bytewise = 0; bytewise < 2; bytewise++) {
        rpc_framer_init(&f, 1024);
        if (bytewise)
            feed_bytewise(&f, &s, in.p, in.len);
        else
            feed(&f, &s, in.p, in.len);
        assert_int_equal(s.nerr, 1);
        assert_int_equal(s.err[0], RPC_FRAME_BAD_HEADER);
        assert_int_equal(s.n, 1);
        assert_body(&s, 0, "{\"next\":1}");
        assert_true(f.cap <= RPC_FRAMER_HEADER_MAX);
        sink_reset(&s);
        rpc_framer_free(&f);
    }

    /* A block of exactly the limit is still accepted. */
    in.len = 0;
    str_cat(&in, "Content-Length: 2\r\nX: ");
    pad[RPC_FRAMER_HEADER_MAX - strlen("Content-Length: 2\r\nX: \r\n\r\n")] = '\0';
    str_cat(&in, pad);
    str_cat(&in, "\r\n\r\n{}");
    rpc_framer_init(&f, 1024);
    feed(&f, &s, in.p, in.len);
    assert_int_equal(s.nerr, 0);
    assert_int_equal(s.n, 1);
    sink_reset(&s);
    rpc_framer_free(&f);
    free(in.p);
    free(pad);
}

/* The limit may cut a "Content-Length:" in two: the half kept in the dropped
 * block still counts toward the resync match. */
static void test_overflow_cut_in_pattern(void **state)
{
    struct rpc_framer f;
    struct sink s = {0};
    struct str in = {0};
    size_t fill = RPC_FRAMER_HEADER_MAX - strlen("X: ") - 5;
    char *pad = malloc(fill + 1);

    assert_non_null(pad);
    memset(pad, 'b', fill);
    pad[fill] = '\0';
    str_cat(&in, "X: ");
    str_cat(&in, pad);
    str_cat(&in, "Content-Length: 2\r\n\r\n{}");
    assert_memory_equal(in.p + RPC_FRAMER_HEADER_MAX - 5, "Conte", 5);
    rpc_framer_init(&f, 1024);
    feed(&f, &s, in.p, in.len);
    assert_int_equal(s.nerr, 1);
    assert_int_equal(s.n, 1);
    assert_body(&s, 0, "{}");
    sink_reset(&s);
    rpc_framer_free(&f);
    free(in.p);
    free(pad);
}

static void test_empty_body(void **state)
{
    struct rpc_framer f;
    struct sink s = {0};

    rpc_framer_init(&f, 1024);
    /* Delivered at once, not when the next byte shows up. */
    feed_str(&f, &s, "Content-Length: 0\r\n\r\n");
    assert_int_equal(s.n, 1);
    assert_int_equal(s.len[0], 0);
    assert_int_equal(s.body[0][0], '\0');
    feed_str(&f, &s, "Content-Length: 00\r\n\r\nContent-Length: 1\r\n\r\n7");
    assert_int_equal(s.nerr, 0);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.len[1], 0);
    assert_body(&s, 2, "7");
    sink_reset(&s);
    rpc_framer_free(&f);
}

static void test_encode(void **state)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    const char *want = "Content-Length: 2\r\n\r\n{}Content-Length: 0\r\n\r\n"
                       "Content-Length: 6\r\n\r\n\"\xc3\xa9\xc3\xa9\"";

    assert_int_equal(rpc_frame_encode(&buf, &len, &cap, "{}", 2), 0);
    assert_int_equal(rpc_frame_encode(&buf, &len, &cap, NULL, 0), 0);
    assert_int_equal(rpc_frame_encode(&buf, &len, &cap, "\"\xc3\xa9\xc3\xa9\"", 6), 0);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(buf, want, len);
    assert_true(cap >= len);
    free(buf);
}

/* Arbitrary bytes never crash the framer or break its memory bound. */
static void test_garbage(void **state)
{
    uint64_t seed = 12345;
    int iter;

    for (iter = 0; iter < 300; iter++) {
        struct rpc_framer f;
        struct sink s = {0};
        char junk[512];
        size_t i, n = (size_t)(next_rand(&seed) % sizeof(junk));
        static const char alphabet[] = "Content-Length:0123456789 \r\n\r\n{}xX";

        for (i = 0; i < n; i++) {
            uint64_t r = next_rand(&seed);

            junk[i] = (r & 1) ? alphabet[(r >> 8) % (sizeof(alphabet) - 1)] : (char)(r >> 16);
        }
        rpc_framer_init(&f, 64);
        feed(&f, &s, junk, n);
        assert_true(f.cap <= RPC_FRAMER_HEADER_MAX);
        sink_reset(&s);
        rpc_framer_free(&f);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_feed),          cmocka_unit_test(test_byte_by_byte),
        cmocka_unit_test(test_random_splits),     cmocka_unit_test(test_header_spelling),
        cmocka_unit_test(test_content_type),      cmocka_unit_test(test_missing_length),
        cmocka_unit_test(test_bad_length_values), cmocka_unit_test(test_resync_across_feeds),
        cmocka_unit_test(test_too_large_skipped), cmocka_unit_test(test_buffer_bounded),
        cmocka_unit_test(test_header_overflow),   cmocka_unit_test(test_overflow_cut_in_pattern),
        cmocka_unit_test(test_empty_body),        cmocka_unit_test(test_encode),
        cmocka_unit_test(test_garbage),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
