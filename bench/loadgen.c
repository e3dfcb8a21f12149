/* Companion load generator: speaks the data-plane contract (PROTOCOL.md
 * section 2) over real loopback sockets with its own minimal WebSocket
 * client (RFC 6455 framing, masking, PING -> PONG) and HS256 tokens minted
 * with OpenSSL. One JSON line per run on stdout; diagnostics on stderr.
 *
 *   loadgen [opts] auth-storm N
 *   loadgen [opts] ping C SECONDS
 *   loadgen [opts] command C SECONDS NAME
 *   loadgen [opts] idle N SECONDS
 *   loadgen [opts] gitstatus REPO REPS
 *   loadgen [opts] startup-stdio REPS HELPER_BIN
 *   loadgen [opts] startup-tcp REPS -- ARGV...   (ready = TCP connect to --port)
 *   loadgen [opts] stdio-unread C SECONDS HELPER_BIN (editor that stops reading)
 *
 * opts: --port P (required for socket modes), --secret-file F (64 hex chars),
 *       --workspace ID, --server-pid PID (CPU and RSS from /proc),
 *       --extra-pid PID (a second process the server needs, e.g. the editor
 *       stand-in of editor mode: its CPU is reported apart, as extra_cpu_*),
 *       --label NAME, --window W (auth-storm/idle: handshakes in flight, 256),
 *       --warmup S (ping/command, 1).
 *
 * Every loop is bounded by a deadline; every process started is reaped. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS       60000
#define SAMPLE_CAP      (32u * 1024u * 1024u)
#define AUTH_DEADLINE_S 120

/* ---------- small utilities ---------- */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "loadgen: %s: %s\n", what, strerror(errno));
    exit(2);
}

static void fail(const char *what)
{
    fprintf(stderr, "loadgen: %s\n", what);
    exit(2);
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (q == NULL) {
        fail("out of memory");
    }
    return q;
}

static uint64_t gen_cpu_ns(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) * 1000000000u +
           ((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) * 1000u;
}

/* utime+stime of every thread of pid, live and dead, from /proc/PID/stat
 * (clock ticks, 10 ms resolution). */
static uint64_t proc_stat_cpu_ns(pid_t pid)
{
    char path[64], buf[2048];
    if (pid <= 0) {
        return 0;
    }
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return 0;
    }
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (p == NULL) {
        return 0;
    }
    p += 2; /* field 3 (state) */
    unsigned long long ut = 0, st = 0;
    for (int field = 3; field < 14 && p != NULL; field++) {
        p = strchr(p, ' ');
        if (p != NULL) {
            p++;
        }
    }
    if (p == NULL || sscanf(p, "%llu %llu", &ut, &st) != 2) {
        return 0;
    }
    long tck = sysconf(_SC_CLK_TCK);
    return (uint64_t)(ut + st) * (1000000000u / (uint64_t)tck);
}

/* Sum of sum_exec_runtime (ns) over the live threads of pid: precise, but
 * misses threads that ended during the window. */
static uint64_t proc_sched_cpu_ns(pid_t pid)
{
    char path[96], buf[256];
    if (pid <= 0) {
        return 0;
    }
    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (d == NULL) {
        return 0;
    }
    uint64_t total = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') {
            continue;
        }
        snprintf(path, sizeof(path), "/proc/%d/task/%.20s/schedstat", (int)pid, e->d_name);
        FILE *f = fopen(path, "r");
        if (f == NULL) {
            continue;
        }
        if (fgets(buf, sizeof(buf), f) != NULL) {
            total += strtoull(buf, NULL, 10);
        }
        fclose(f);
    }
    closedir(d);
    return total;
}

/* A "Name:   N kB" field of /proc/PID/status (VmRSS, RssAnon, RssFile). */
static long proc_status_kb(pid_t pid, const char *field)
{
    char path[64], line[256];
    size_t flen = strlen(field);
    long kb = -1;
    if (pid <= 0) {
        return -1;
    }
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, field, flen) == 0 && line[flen] == ':') {
            kb = strtol(line + flen + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kb;
}

static long proc_rss_kb(pid_t pid)
{
    return proc_status_kb(pid, "VmRSS");
}

/* ---------- base64url, HS256 JWT ---------- */

static size_t b64url(const unsigned char *in, size_t n, char *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
        out[o++] = tab[v >> 6 & 63];
        out[o++] = tab[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
        out[o++] = tab[v >> 6 & 63];
    }
    out[o] = '\0';
    return o;
}

static char g_secret[129];
static char g_workspace[128] = "";

/* A fresh token per connection (distinct sub), so no server can cache one. */
static size_t mint_token(unsigned idx, char *out, size_t cap)
{
    static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    char payload[512];
    long now = (long)time(NULL);
    int plen = snprintf(payload, sizeof(payload),
                        "{\"sub\":\"bench-%u\",\"workspaceId\":\"%s\",\"iat\":%ld,\"exp\":%ld}",
                        idx, g_workspace, now, now + 3600);
    if (plen < 0 || (size_t)plen >= sizeof(payload) || cap < 1024) {
        fail("token too long");
    }
    size_t o = b64url((const unsigned char *)header, sizeof(header) - 1, out);
    out[o++] = '.';
    o += b64url((const unsigned char *)payload, (size_t)plen, out + o);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    if (HMAC(EVP_sha256(), g_secret, (int)strlen(g_secret), (const unsigned char *)out, o, mac,
             &maclen) == NULL) {
        fail("HMAC failed");
    }
    out[o++] = '.';
    o += b64url(mac, maclen, out + o);
    return o;
}

/* ---------- tiny JSON field peeks (flat envelopes only) ---------- */

/* Finds "key" : and returns a pointer to the value's first character. */
static const char *json_value(const char *msg, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\"", key);
    const char *p = strstr(msg, pat);
    if (p == NULL) {
        return NULL;
    }
    p += strlen(pat);
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') {
        p++;
    }
    if (*p != ':') {
        return NULL;
    }
    p++;
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') {
        p++;
    }
    return p;
}

static bool json_str_is(const char *msg, const char *key, const char *want)
{
    const char *v = json_value(msg, key);
    size_t n = strlen(want);
    return v != NULL && v[0] == '"' && strncmp(v + 1, want, n) == 0 && v[1 + n] == '"';
}

static bool json_true(const char *msg, const char *key)
{
    const char *v = json_value(msg, key);
    return v != NULL && strncmp(v, "true", 4) == 0;
}

/* ---------- connections ---------- */

enum { ST_FREE, ST_CONNECTING, ST_HANDSHAKE, ST_AUTHING, ST_READY, ST_CLOSED };

struct buf {
    char *p;
    size_t len, off, cap;
};

struct conn {
    int fd;
    int state;
    unsigned idx;
    struct buf in, out, msg;
    int msg_opcode;
    uint64_t sent_ns;
    uint32_t seq;
    bool outstanding;
    bool want_out;
    uint32_t pings_rx;
};

enum { MODE_STORM, MODE_PING, MODE_COMMAND, MODE_IDLE, MODE_GIT };

static struct {
    int ep;
    int port;
    pid_t server_pid;
    pid_t extra_pid;
    const char *label;
    int mode;
    struct conn *conns;
    unsigned nconns;
    unsigned window;
    /* counters */
    unsigned started, pending, auth_ok, auth_fail, closed_after_auth, proto_errors;
    uint64_t pings_rx;
    /* closed loop */
    bool sending;
    bool measuring;
    uint64_t win_start, win_end;
    uint64_t rt_in_window, rt_total, req_errors;
    uint32_t *samples;
    size_t nsamples, samples_cap;
    const char *command;
    /* single-request (gitstatus) */
    char *last_reply;
    bool reply_ready;
} G = {.window = 256, .label = "server"};

static void buf_append(struct buf *b, const void *data, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 512;
        while (cap < b->len + n) {
            cap *= 2;
        }
        b->p = xrealloc(b->p, cap);
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void buf_consume(struct buf *b, size_t n)
{
    b->off += n;
    if (b->off >= b->len) {
        b->off = b->len = 0;
    } else if (b->off > 65536 && b->off * 2 > b->len) {
        memmove(b->p, b->p + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
    }
}

static void buf_free(struct buf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

static uint32_t g_rng = 0x9e3779b9u;

static uint32_t rnd(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 17;
    g_rng ^= g_rng << 5;
    return g_rng;
}

static void update_events(struct conn *c)
{
    bool want = c->out.len > c->out.off || c->state == ST_CONNECTING;
    if (want == c->want_out) {
        return;
    }
    struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0u), .data.u32 = c->idx};
    if (epoll_ctl(G.ep, EPOLL_CTL_MOD, c->fd, &ev) < 0) {
        die("epoll_ctl mod");
    }
    c->want_out = want;
}

static void conn_close(struct conn *c, bool counted_failure)
{
    if (c->fd >= 0) {
        struct linger lg = {.l_onoff = 1, .l_linger = 0}; /* RST: no TIME_WAIT pile-up */
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        close(c->fd);
        c->fd = -1;
    }
    if (c->state == ST_CONNECTING || c->state == ST_HANDSHAKE || c->state == ST_AUTHING) {
        if (counted_failure) {
            G.auth_fail++;
        }
        G.pending--;
    } else if (c->state == ST_READY && counted_failure) {
        G.closed_after_auth++;
    }
    c->state = ST_CLOSED;
    buf_free(&c->in);
    buf_free(&c->out);
    buf_free(&c->msg);
}

static void flush_out(struct conn *c)
{
    while (c->out.len > c->out.off) {
        ssize_t n = write(c->fd, c->out.p + c->out.off, c->out.len - c->out.off);
        if (n > 0) {
            buf_consume(&c->out, (size_t)n);
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        } else {
            conn_close(c, true);
            return;
        }
    }
    update_events(c);
}

/* Queues one masked frame (client frames must be masked). */
static void ws_send(struct conn *c, int opcode, const char *data, size_t n)
{
    unsigned char hdr[14];
    size_t h = 0;
    hdr[h++] = (unsigned char)(0x80 | opcode);
    if (n < 126) {
        hdr[h++] = (unsigned char)(0x80 | n);
    } else if (n < 65536) {
        hdr[h++] = 0x80 | 126;
        hdr[h++] = (unsigned char)(n >> 8);
        hdr[h++] = (unsigned char)n;
    } else {
        hdr[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--) {
            hdr[h++] = (unsigned char)((uint64_t)n >> (8 * i));
        }
    }
    uint32_t m = rnd();
    unsigned char mask[4] = {(unsigned char)(m >> 24), (unsigned char)(m >> 16),
                             (unsigned char)(m >> 8), (unsigned char)m};
    memcpy(hdr + h, mask, 4);
    h += 4;
    buf_append(&c->out, hdr, h);
    size_t base = c->out.len;
    buf_append(&c->out, data, n);
    unsigned char *p = (unsigned char *)c->out.p + base;
    for (size_t i = 0; i < n; i++) {
        p[i] ^= mask[i & 3];
    }
}

static void send_text(struct conn *c, const char *s, size_t n)
{
    ws_send(c, 1, s, n);
    flush_out(c);
}

static void send_auth(struct conn *c)
{
    char tok[1024], msg[1400];
    mint_token(c->idx, tok, sizeof(tok));
    int n = snprintf(msg, sizeof(msg),
                     "{\"type\":\"auth\",\"id\":\"a%u\",\"data\":{\"token\":\"%s\","
                     "\"workspaceId\":\"%s\"}}",
                     c->idx, tok, g_workspace);
    c->state = ST_AUTHING;
    send_text(c, msg, (size_t)n);
}

static void send_request(struct conn *c)
{
    char msg[512];
    int n;
    c->seq++;
    if (G.mode == MODE_PING) {
        n = snprintf(msg, sizeof(msg), "{\"type\":\"ping\",\"id\":\"q%u-%u\"}", c->idx, c->seq);
    } else {
        n = snprintf(msg, sizeof(msg),
                     "{\"type\":\"command\",\"id\":\"q%u-%u\",\"data\":{\"name\":\"%s\"}}", c->idx,
                     c->seq, G.command);
    }
    c->outstanding = true;
    c->sent_ns = now_ns();
    send_text(c, msg, (size_t)n);
}

static bool id_matches(const char *msg, const struct conn *c)
{
    char want[48];
    snprintf(want, sizeof(want), "q%u-%u", c->idx, c->seq);
    return json_str_is(msg, "id", want);
}

static void on_text(struct conn *c, char *msg)
{
    if (c->state == ST_AUTHING) {
        if (json_str_is(msg, "type", "auth_response") && json_true(msg, "success")) {
            c->state = ST_READY;
            G.auth_ok++;
            G.pending--;
            if (G.sending) {
                send_request(c);
            }
        } else {
            if (G.auth_fail < 3) {
                fprintf(stderr, "loadgen: auth failed: %.300s\n", msg);
            }
            conn_close(c, true);
        }
        return;
    }
    if (c->state != ST_READY || !c->outstanding || !id_matches(msg, c)) {
        return; /* events, broadcasts: ignored */
    }
    uint64_t t = now_ns();
    c->outstanding = false;
    if (G.mode == MODE_GIT) {
        free(G.last_reply);
        G.last_reply = strdup(msg);
        G.reply_ready = true;
        return;
    }
    bool ok = G.mode == MODE_PING
                  ? json_str_is(msg, "type", "pong")
                  : json_str_is(msg, "type", "command_response") && json_true(msg, "success");
    if (!ok) {
        if (G.req_errors < 3) {
            fprintf(stderr, "loadgen: bad reply: %.300s\n", msg);
        }
        G.req_errors++;
    }
    G.rt_total++;
    if (G.measuring && t <= G.win_end) {
        G.rt_in_window++;
        if (c->sent_ns >= G.win_start && G.nsamples < SAMPLE_CAP) {
            if (G.nsamples == G.samples_cap) {
                G.samples_cap = G.samples_cap ? G.samples_cap * 2 : 65536;
                G.samples = xrealloc(G.samples, G.samples_cap * sizeof(uint32_t));
            }
            uint64_t d = t - c->sent_ns;
            G.samples[G.nsamples++] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
        }
    }
    if (G.sending) {
        send_request(c);
    }
}

/* Parses whole frames from c->in. Returns false when the connection ended. */
static bool parse_frames(struct conn *c)
{
    for (;;) {
        unsigned char *p = (unsigned char *)c->in.p + c->in.off;
        size_t avail = c->in.len - c->in.off;
        if (avail < 2) {
            return true;
        }
        bool fin = p[0] & 0x80;
        int op = p[0] & 0x0f;
        bool masked = p[1] & 0x80;
        uint64_t len = p[1] & 0x7f;
        size_t h = 2;
        if (len == 126) {
            if (avail < 4) {
                return true;
            }
            len = (uint64_t)p[2] << 8 | p[3];
            h = 4;
        } else if (len == 127) {
            if (avail < 10) {
                return true;
            }
            len = 0;
            for (int i = 0; i < 8; i++) {
                len = len << 8 | p[2 + i];
            }
            h = 10;
        }
        if (masked) {
            G.proto_errors++; /* servers must not mask; tolerate */
            h += 4;
        }
        if (len > (64u << 20)) {
            G.proto_errors++;
            conn_close(c, true);
            return false;
        }
        if (avail < h + len) {
            return true;
        }
        char *payload = (char *)p + h;
        if (masked) {
            for (uint64_t i = 0; i < len; i++) {
                payload[i] ^= (char)p[h - 4 + (i & 3)];
            }
        }
        if (op == 9) { /* PING -> PONG, same payload */
            c->pings_rx++;
            G.pings_rx++;
            ws_send(c, 10, payload, (size_t)len);
            buf_consume(&c->in, h + (size_t)len);
            flush_out(c);
            if (c->state == ST_CLOSED) {
                return false;
            }
            continue;
        }
        if (op == 8) { /* close */
            if (len >= 2 && G.proto_errors < 1000) {
                unsigned code =
                    (unsigned)(unsigned char)payload[0] << 8 | (unsigned char)payload[1];
                if (c->state != ST_READY || G.closed_after_auth < 3) {
                    fprintf(stderr, "loadgen: server closed %u: %.*s\n", code, (int)len - 2,
                            payload + 2);
                }
            }
            conn_close(c, true);
            return false;
        }
        if (op == 10) {
            buf_consume(&c->in, h + (size_t)len);
            continue;
        }
        if (op == 1 || op == 2) {
            c->msg.len = c->msg.off = 0;
            c->msg_opcode = op;
        }
        buf_append(&c->msg, payload, (size_t)len);
        buf_consume(&c->in, h + (size_t)len);
        if (fin) {
            char z = '\0';
            buf_append(&c->msg, &z, 1);
            on_text(c, c->msg.p);
            if (c->state == ST_CLOSED) {
                return false;
            }
            c->msg.len = 0;
        }
    }
}

static void send_upgrade(struct conn *c)
{
    char req[512];
    unsigned char key[16];
    char key64[32];
    for (int i = 0; i < 16; i++) {
        key[i] = (unsigned char)rnd();
    }
    /* standard base64 for the key: base64url differs only in +/ -> -_, and
     * servers only echo a hash of it; map the two characters back. */
    b64url(key, 16, key64);
    for (char *k = key64; *k; k++) {
        *k = *k == '-' ? '+' : *k == '_' ? '/' : *k;
    }
    int n = snprintf(req, sizeof(req),
                     "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     G.port, key64);
    c->state = ST_HANDSHAKE;
    buf_append(&c->out, req, (size_t)n);
    flush_out(c);
}

static void on_readable(struct conn *c)
{
    char tmp[65536];
    for (int rounds = 0; rounds < 16; rounds++) {
        ssize_t n = read(c->fd, tmp, sizeof(tmp));
        if (n > 0) {
            buf_append(&c->in, tmp, (size_t)n);
            if ((size_t)n < sizeof(tmp)) {
                break;
            }
        } else if (n == 0) {
            conn_close(c, true);
            return;
        } else if (errno == EINTR) {
            continue;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            break;
        } else {
            conn_close(c, true);
            return;
        }
    }
    if (c->state == ST_HANDSHAKE) {
        const char *end = memmem(c->in.p + c->in.off, c->in.len - c->in.off, "\r\n\r\n", 4);
        if (end == NULL) {
            return;
        }
        if (c->in.len - c->in.off < 12 || memcmp(c->in.p + c->in.off + 9, "101", 3) != 0) {
            if (G.auth_fail < 3) {
                fprintf(stderr, "loadgen: upgrade refused: %.60s\n", c->in.p + c->in.off);
            }
            conn_close(c, true);
            return;
        }
        buf_consume(&c->in, (size_t)(end + 4 - (c->in.p + c->in.off)));
        send_auth(c);
        if (c->state == ST_CLOSED) {
            return;
        }
    }
    parse_frames(c);
}

static void start_conn(unsigned idx)
{
    struct conn *c = &G.conns[idx];
    memset(c, 0, sizeof(*c));
    c->idx = idx;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        die("socket (raise ulimit -n)");
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)G.port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    c->state = ST_CONNECTING;
    G.started++;
    G.pending++;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u32 = idx};
    c->want_out = true;
    if (epoll_ctl(G.ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
        die("epoll_ctl add");
    }
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
        conn_close(c, true);
    }
}

/* One pass of the event loop, waiting at most timeout_ms. */
static void loop_once(int timeout_ms)
{
    struct epoll_event evs[512];
    int n = epoll_wait(G.ep, evs, 512, timeout_ms);
    if (n < 0 && errno != EINTR) {
        die("epoll_wait");
    }
    for (int i = 0; i < n; i++) {
        struct conn *c = &G.conns[evs[i].data.u32];
        if (c->state == ST_CLOSED || c->fd < 0) {
            continue;
        }
        if (c->state == ST_CONNECTING) {
            int err = 0;
            socklen_t len = sizeof(err);
            getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
            if (err != 0 || (evs[i].events & (EPOLLERR | EPOLLHUP))) {
                if (G.auth_fail < 3) {
                    fprintf(stderr, "loadgen: connect: %s\n", strerror(err));
                }
                conn_close(c, true);
                continue;
            }
            if (evs[i].events & EPOLLOUT) {
                send_upgrade(c);
            }
            continue;
        }
        if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
            on_readable(c);
        }
        if (c->state != ST_CLOSED && (evs[i].events & EPOLLOUT)) {
            flush_out(c);
        }
    }
}

static void setup_conns(unsigned n)
{
    if (n == 0 || n > MAX_CONNS) {
        fail("connection count out of range");
    }
    G.conns = calloc(n, sizeof(struct conn));
    if (G.conns == NULL) {
        fail("out of memory");
    }
    G.nconns = n;
    G.ep = epoll_create1(EPOLL_CLOEXEC);
    if (G.ep < 0) {
        die("epoll_create1");
    }
}

/* Opens and authenticates all connections, at most G.window in flight.
 * Returns the time it took in ns. */
static uint64_t open_all(void)
{
    uint64_t t0 = now_ns();
    uint64_t deadline = t0 + (uint64_t)AUTH_DEADLINE_S * 1000000000u;
    while (G.auth_ok + G.auth_fail < G.nconns && now_ns() < deadline) {
        while (G.started < G.nconns && G.pending < G.window) {
            start_conn(G.started);
        }
        loop_once(10);
    }
    return now_ns() - t0;
}

static void close_all(void)
{
    for (unsigned i = 0; i < G.nconns; i++) {
        if (G.conns[i].state == ST_READY) {
            conn_close(&G.conns[i], false); /* not a failure: we are leaving */
        } else if (G.conns[i].state != ST_CLOSED && G.conns[i].state != ST_FREE) {
            conn_close(&G.conns[i], true);
        }
    }
}

/* Runs the loop for ms milliseconds (answering PINGs, etc.). */
static void run_for_ms(uint64_t ms)
{
    uint64_t end = now_ns() + ms * 1000000u;
    for (uint64_t t = now_ns(); t < end; t = now_ns()) {
        uint64_t left = (end - t) / 1000000u;
        loop_once(left > 50 ? 50 : (int)left + 1);
    }
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static double pct_us(const uint32_t *s, size_t n, double p)
{
    if (n == 0) {
        return 0;
    }
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return s[i] / 1000.0;
}

struct cpu_snap {
    uint64_t t, gen, srv_stat, srv_sched, machine, extra_stat, extra_sched;
};

/* Busy CPU time of the whole machine (all cores, /proc/stat, ns): what is
 * neither the server nor the generator is other people's work (noise). */
static uint64_t machine_busy_ns(void)
{
    FILE *f = fopen("/proc/stat", "r");
    unsigned long long v[8] = {0};
    if (f == NULL) {
        return 0;
    }
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                   &v[4], &v[5], &v[6], &v[7]);
    fclose(f);
    if (n != 8) {
        return 0;
    }
    /* user nice system idle iowait irq softirq steal: all but idle, iowait */
    unsigned long long busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
    return (uint64_t)busy * (1000000000u / (uint64_t)sysconf(_SC_CLK_TCK));
}

static struct cpu_snap snap(void)
{
    struct cpu_snap s = {now_ns(),
                         gen_cpu_ns(),
                         proc_stat_cpu_ns(G.server_pid),
                         proc_sched_cpu_ns(G.server_pid),
                         machine_busy_ns(),
                         proc_stat_cpu_ns(G.extra_pid),
                         proc_sched_cpu_ns(G.extra_pid)};
    return s;
}

static void print_cpu(const struct cpu_snap *a, const struct cpu_snap *b, double ops)
{
    double srv_sched_ms = (double)(b->srv_sched - a->srv_sched) / 1e6;
    double srv_stat_ms = (double)(b->srv_stat - a->srv_stat) / 1e6;
    double gen_ms = (double)(b->gen - a->gen) / 1e6;
    double wall_ms = (double)(b->t - a->t) / 1e6;
    double extra_ms = (double)(b->extra_sched - a->extra_sched) / 1e6;
    double others_ms = (double)(b->machine - a->machine) / 1e6 - srv_stat_ms - gen_ms -
                       (double)(b->extra_stat - a->extra_stat) / 1e6;
    printf(",\"wall_ms\":%.1f,\"srv_cpu_ms\":%.1f,\"srv_cpu_stat_ms\":%.0f,\"gen_cpu_ms\":%.1f,"
           "\"others_cpu_ms\":%.0f,\"others_cores\":%.2f",
           wall_ms, srv_sched_ms, srv_stat_ms, gen_ms, others_ms < 0 ? 0 : others_ms,
           wall_ms > 0 && others_ms > 0 ? others_ms / wall_ms : 0);
    if (ops > 0) {
        printf(",\"srv_cpu_us_per_op\":%.2f,\"gen_cpu_us_per_op\":%.2f", srv_sched_ms * 1000 / ops,
               gen_ms * 1000 / ops);
    }
    if (G.extra_pid > 0) {
        printf(",\"extra_cpu_ms\":%.1f", extra_ms);
        if (ops > 0) {
            printf(",\"extra_cpu_us_per_op\":%.2f", extra_ms * 1000 / ops);
        }
    }
}

/* ---------- modes ---------- */

static int mode_storm(unsigned n, bool idle, unsigned seconds)
{
    setup_conns(n);
    long rss0 = proc_rss_kb(G.server_pid);
    struct cpu_snap a = snap();
    uint64_t took = open_all();
    struct cpu_snap b = snap();
    /* Settle: let the server finish what it queued, answer PINGs. */
    run_for_ms(300);
    long rss1 = proc_rss_kb(G.server_pid);
    long rss_max = rss1, rss_last = rss1;
    unsigned samples = 0;
    uint64_t pings_before = G.pings_rx;
    unsigned closed_before = G.closed_after_auth;
    struct cpu_snap hold0 = snap();
    if (idle) {
        for (unsigned s = 0; s < seconds; s++) {
            run_for_ms(1000);
            rss_last = proc_rss_kb(G.server_pid);
            rss_max = rss_last > rss_max ? rss_last : rss_max;
            samples++;
        }
    }
    unsigned min_pings = UINT32_MAX, max_pings = 0, alive = 0;
    for (unsigned i = 0; i < n; i++) {
        if (G.conns[i].state == ST_READY) {
            alive++;
            min_pings = G.conns[i].pings_rx < min_pings ? G.conns[i].pings_rx : min_pings;
            max_pings = G.conns[i].pings_rx > max_pings ? G.conns[i].pings_rx : max_pings;
        }
    }
    if (alive == 0) {
        min_pings = 0;
    }
    printf("{\"mode\":\"%s\",\"label\":\"%s\",\"n\":%u,\"window\":%u,\"ok\":%u,\"failed\":%u,"
           "\"time_to_all_ms\":%.1f,\"conn_per_s\":%.0f",
           idle ? "idle" : "auth-storm", G.label, n, G.window, G.auth_ok, G.auth_fail,
           (double)took / 1e6, G.auth_ok / ((double)took / 1e9));
    print_cpu(&a, &b, G.auth_ok);
    double per_conn = G.auth_ok ? (double)(rss1 - rss0) * 1024.0 / G.auth_ok : 0;
    printf(",\"rss_before_kb\":%ld,\"rss_held_kb\":%ld,\"rss_per_conn_bytes\":%.0f", rss0, rss1,
           per_conn);
    if (idle) {
        printf(",\"seconds\":%u,\"rss_samples\":%u,\"rss_last_kb\":%ld,\"rss_max_kb\":%ld,"
               "\"rss_growth_kb\":%ld,\"alive\":%u,\"closed_while_idle\":%u,"
               "\"pings_rx\":%" PRIu64 ",\"pings_per_conn_min\":%u,\"pings_per_conn_max\":%u",
               seconds, samples, rss_last, rss_max, rss_last - rss1, alive,
               G.closed_after_auth - closed_before, G.pings_rx - pings_before, min_pings,
               max_pings);
        struct cpu_snap hold1 = snap();
        printf(",\"hold_srv_cpu_ms\":%.1f,\"hold_gen_cpu_ms\":%.1f",
               (double)(hold1.srv_sched - hold0.srv_sched) / 1e6,
               (double)(hold1.gen - hold0.gen) / 1e6);
    }
    printf("}\n");
    close_all();
    return G.auth_fail == 0 ? 0 : 1;
}

static int mode_closed_loop(unsigned c, unsigned seconds, unsigned warmup_s)
{
    setup_conns(c);
    G.window = c < 256 ? c : 256;
    open_all();
    if (G.auth_ok != c) {
        fprintf(stderr, "loadgen: only %u of %u authenticated\n", G.auth_ok, c);
        close_all();
        return 1;
    }
    G.sending = true;
    for (unsigned i = 0; i < c; i++) {
        send_request(&G.conns[i]);
    }
    run_for_ms((uint64_t)warmup_s * 1000);
    G.win_start = now_ns();
    G.win_end = G.win_start + (uint64_t)seconds * 1000000000u;
    G.measuring = true;
    struct cpu_snap a = snap();
    while (now_ns() < G.win_end) {
        loop_once(20);
    }
    struct cpu_snap b = snap();
    G.sending = false;
    /* drain outstanding replies (bounded) */
    uint64_t drain_end = now_ns() + 2000000000u;
    for (;;) {
        unsigned out = 0;
        for (unsigned i = 0; i < c; i++) {
            out += G.conns[i].state == ST_READY && G.conns[i].outstanding;
        }
        if (out == 0 || now_ns() > drain_end) {
            break;
        }
        loop_once(10);
    }
    qsort(G.samples, G.nsamples, sizeof(uint32_t), cmp_u32);
    double secs = (double)(b.t - a.t) / 1e9;
    printf("{\"mode\":\"%s\",\"label\":\"%s\",\"c\":%u,\"seconds\":%u,",
           G.mode == MODE_PING ? "ping" : "command", G.label, c, seconds);
    if (G.mode == MODE_COMMAND) {
        printf("\"command\":\"%s\",", G.command);
    }
    printf("\"rt\":%" PRIu64 ",\"rt_per_s\":%.0f,\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,"
           "\"max_us\":%.1f,\"errors\":%" PRIu64 ",\"closed\":%u,\"rt_all\":%" PRIu64,
           G.rt_in_window, (double)G.rt_in_window / secs, pct_us(G.samples, G.nsamples, 0.5),
           pct_us(G.samples, G.nsamples, 0.9), pct_us(G.samples, G.nsamples, 0.99),
           G.nsamples ? G.samples[G.nsamples - 1] / 1000.0 : 0.0, G.req_errors, G.closed_after_auth,
           G.rt_total);
    print_cpu(&a, &b, (double)G.rt_in_window);
    printf("}\n");
    close_all();
    return G.req_errors == 0 && G.closed_after_auth == 0 ? 0 : 1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, unsigned n)
{
    qsort(v, n, sizeof(double), cmp_double);
    return n == 0 ? 0 : n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* One request on connection 0, waits for its reply; returns ms or -1. */
static double one_request(const char *name)
{
    struct conn *c = &G.conns[0];
    G.reply_ready = false;
    G.command = name;
    send_request(c);
    uint64_t t0 = c->sent_ns;
    uint64_t deadline = t0 + 120000000000u;
    while (!G.reply_ready && c->state == ST_READY && now_ns() < deadline) {
        loop_once(100);
    }
    if (!G.reply_ready) {
        return -1;
    }
    return (double)(now_ns() - t0) / 1e6;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        die(path);
    }
    fputs(text, f);
    if (fclose(f) != 0) {
        die(path);
    }
}

static double run_git_cli(const char *repo)
{
    uint64_t t0 = now_ns();
    pid_t pid = fork();
    if (pid < 0) {
        die("fork");
    }
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        execlp("git", "git", "-C", repo, "status", "--porcelain=v2", "--branch", (char *)NULL);
        _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    double ms = (double)(now_ns() - t0) / 1e6;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? ms : -1;
}

#define GIT_REPS_MAX 50

static int mode_git(const char *repo, unsigned reps)
{
    if (reps == 0 || reps > GIT_REPS_MAX) {
        fail("reps out of range (1..50)");
    }
    setup_conns(1);
    G.window = 1;
    G.mode = MODE_GIT;
    open_all();
    if (G.auth_ok != 1) {
        fail("could not authenticate");
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s/d00/s0000/f0.txt", repo);
    double hot[GIT_REPS_MAX], changed[GIT_REPS_MAX], cli_hot[GIT_REPS_MAX],
        cli_changed[GIT_REPS_MAX];
    int bad = 0;
    struct cpu_snap a = snap();
    double first = one_request("git.status"); /* opens/caches the repository */
    for (unsigned i = 0; i < reps; i++) {
        char text[64];
        snprintf(text, sizeof(text), "changed %u for the helper\n", i);
        write_file(path, text);
        changed[i] = one_request("git.status");
        if (changed[i] < 0 || !json_true(G.last_reply, "success") ||
            strstr(G.last_reply, "d00/s0000/f0.txt") == NULL) {
            bad++;
            fprintf(stderr, "loadgen: git.status after change: %.300s\n",
                    G.last_reply ? G.last_reply : "(no reply)");
        }
        hot[i] = one_request("git.status");
        if (hot[i] < 0 || !json_true(G.last_reply, "success")) {
            bad++;
        }
        snprintf(text, sizeof(text), "changed %u for the cli\n", i);
        write_file(path, text);
        cli_changed[i] = run_git_cli(repo);
        cli_hot[i] = run_git_cli(repo);
    }
    struct cpu_snap b = snap();
    size_t reply_bytes = G.last_reply ? strlen(G.last_reply) : 0;
    printf("{\"mode\":\"gitstatus\",\"label\":\"%s\",\"reps\":%u,\"first_ms\":%.2f,"
           "\"changed_ms\":%.2f,\"hot_ms\":%.2f,\"cli_changed_ms\":%.2f,\"cli_hot_ms\":%.2f,"
           "\"bad\":%d,\"reply_bytes\":%zu,\"srv_cpu_ms_per_status\":%.1f}\n",
           G.label, reps, first, median(changed, reps), median(hot, reps),
           median(cli_changed, reps), median(cli_hot, reps), bad, reply_bytes,
           (double)(b.srv_sched - a.srv_sched) / 1e6 / (2.0 * reps + 1));
    close_all();
    return bad == 0 ? 0 : 1;
}

/* ---------- start-up ---------- */

static void kill_and_reap(pid_t pid, int sig)
{
    kill(pid, sig);
    for (int i = 0; i < 300; i++) { /* 3 s */
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            return;
        }
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/* Reads framed LSP messages from fd until one carries "result" (a
 * response) or the deadline passes; notifications are drained. */
static bool read_lsp_response(int fd, struct buf *b, uint64_t deadline)
{
    for (;;) {
        /* complete messages in b? */
        for (;;) {
            char *start = b->p + b->off;
            size_t avail = b->len - b->off;
            char *hdr_end = avail ? memmem(start, avail, "\r\n\r\n", 4) : NULL;
            if (hdr_end == NULL) {
                break;
            }
            char *cl = memmem(start, (size_t)(hdr_end - start), "Content-Length:", 15);
            if (cl == NULL) {
                return false;
            }
            size_t body_len = strtoul(cl + 15, NULL, 10);
            size_t total = (size_t)(hdr_end + 4 - start) + body_len;
            if (avail < total) {
                break;
            }
            bool is_response = memmem(hdr_end + 4, body_len, "\"result\"", 8) != NULL &&
                               memmem(hdr_end + 4, body_len, "\"method\"", 8) == NULL;
            buf_consume(b, total);
            if (is_response) {
                return true;
            }
        }
        uint64_t t = now_ns();
        if (t >= deadline) {
            return false;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int r = poll(&pfd, 1, (int)((deadline - t) / 1000000u) + 1);
        if (r <= 0) {
            continue;
        }
        char tmp[8192];
        ssize_t n = read(fd, tmp, sizeof(tmp));
        if (n <= 0) {
            return false;
        }
        buf_append(b, tmp, (size_t)n);
    }
}

static void drain_for_ms(int fd, struct buf *b, unsigned ms)
{
    uint64_t end = now_ns() + (uint64_t)ms * 1000000u;
    for (uint64_t t = now_ns(); t < end; t = now_ns()) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, (int)((end - t) / 1000000u) + 1) > 0) {
            char tmp[8192];
            if (read(fd, tmp, sizeof(tmp)) <= 0) {
                return;
            }
            b->len = b->off = 0; /* notifications: dropped */
        }
    }
}

static void write_lsp(int fd, const char *body)
{
    char hdr[64];
    int n = snprintf(hdr, sizeof(hdr), "Content-Length: %zu\r\n\r\n", strlen(body));
    if (write(fd, hdr, (size_t)n) != n || write(fd, body, strlen(body)) != (ssize_t)strlen(body)) {
        fprintf(stderr, "loadgen: write to helper failed\n");
    }
}

static int mode_startup_stdio(unsigned reps, const char *bin)
{
    double ms[GIT_REPS_MAX], rss[GIT_REPS_MAX], anon[GIT_REPS_MAX];
    unsigned ok = 0;
    char wsdir[] = "/tmp/companion-bench-wsXXXXXX";
    if (mkdtemp(wsdir) == NULL) {
        die("mkdtemp");
    }
    char init[2048];
    snprintf(init, sizeof(init),
             "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{\"processId\":%d,"
             "\"clientInfo\":{\"name\":\"bench\",\"version\":\"1\"},\"workspaceId\":\"bench\","
             "\"workspaceFolders\":[{\"uri\":\"file://%s\",\"name\":\"ws\"}],"
             "\"settings\":{\"auth\":{\"secret\":\"%s\"}}}}",
             (int)getpid(), wsdir, g_secret);
    for (unsigned r = 0; r < reps && r < GIT_REPS_MAX; r++) {
        int in[2], out[2];
        if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0) {
            die("pipe");
        }
        uint64_t t0 = now_ns();
        pid_t pid = fork();
        if (pid < 0) {
            die("fork");
        }
        if (pid == 0) {
            dup2(in[0], 0);
            dup2(out[1], 1);
            int null = open("/dev/null", O_WRONLY);
            dup2(null, 2);
            execl(bin, bin, "--stdio", (char *)NULL);
            _exit(127);
        }
        close(in[0]);
        close(out[1]);
        write_lsp(in[1], init);
        struct buf b = {0};
        bool got = read_lsp_response(out[0], &b, t0 + 5000000000u);
        double took = (double)(now_ns() - t0) / 1e6;
        if (got) {
            write_lsp(in[1], "{\"jsonrpc\":\"2.0\",\"method\":\"initialized\",\"params\":{}}");
            drain_for_ms(out[0], &b, 200);
            ms[ok] = took;
            rss[ok] = (double)proc_rss_kb(pid);
            anon[ok] = (double)proc_status_kb(pid, "RssAnon");
            ok++;
            write_lsp(in[1], "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"shutdown\"}");
            read_lsp_response(out[0], &b, now_ns() + 2000000000u);
            write_lsp(in[1], "{\"jsonrpc\":\"2.0\",\"method\":\"exit\"}");
        }
        close(in[1]);
        /* keep reading stdout until EOF (bounded) so the helper never blocks */
        drain_for_ms(out[0], &b, 50);
        close(out[0]);
        buf_free(&b);
        kill_and_reap(pid, SIGTERM);
    }
    rmdir(wsdir);
    printf("{\"mode\":\"startup\",\"label\":\"%s\",\"reps\":%u,\"ok\":%u,\"ready_ms\":%.2f,"
           "\"idle_rss_kb\":%.0f,\"idle_rss_anon_kb\":%.0f}\n",
           G.label, reps, ok, median(ms, ok), median(rss, ok), median(anon, ok));
    return ok == reps ? 0 : 1;
}

/* The editor that stops reading: helper --stdio, initialize, server/start,
 * then never another read of its stdout while c clients run commands (each
 * one queues a companion/commandExecuted notification). The helper must keep
 * answering (bounded queue, news dropped) instead of stalling. */
static int mode_stdio_unread(unsigned c, unsigned seconds, const char *bin)
{
    char wsdir[] = "/tmp/companion-bench-wsXXXXXX";
    if (mkdtemp(wsdir) == NULL) {
        die("mkdtemp");
    }
    char init[2048];
    snprintf(init, sizeof(init),
             "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{\"processId\":%d,"
             "\"clientInfo\":{\"name\":\"bench\",\"version\":\"1\"},\"workspaceId\":\"bench\","
             "\"workspaceFolders\":[{\"uri\":\"file://%s\",\"name\":\"ws\"}],"
             "\"settings\":{\"auth\":{\"secret\":\"%s\"},\"server\":{\"host\":\"127.0.0.1\","
             "\"port\":0},\"limits\":{\"maxConnections\":20000,\"commandsPerSecond\":10000},"
             "\"log\":{\"level\":\"warn\"}}}}",
             (int)getpid(), wsdir, g_secret);
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0) {
        die("pipe");
    }
    pid_t pid = fork();
    if (pid < 0) {
        die("fork");
    }
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 2);
        execl(bin, bin, "--stdio", (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    struct buf b = {0};
    write_lsp(in[1], init);
    int rc = 1;
    if (!read_lsp_response(out[0], &b, now_ns() + 5000000000u)) {
        fprintf(stderr, "loadgen: no initialize reply\n");
        goto done;
    }
    write_lsp(in[1], "{\"jsonrpc\":\"2.0\",\"method\":\"initialized\",\"params\":{}}");
    write_lsp(in[1], "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"server/start\",\"params\":{}}");
    /* read_lsp_response consumed the reply; find the port in what is left of
     * the raw bytes by reading until a response arrives, keeping a copy */
    uint64_t deadline = now_ns() + 5000000000u;
    char raw[65536];
    size_t raw_len = 0;
    int port = 0;
    while (port == 0 && now_ns() < deadline && raw_len < sizeof(raw) - 1) {
        struct pollfd pfd = {.fd = out[0], .events = POLLIN};
        if (poll(&pfd, 1, 100) <= 0) {
            continue;
        }
        ssize_t n = read(out[0], raw + raw_len, sizeof(raw) - 1 - raw_len);
        if (n <= 0) {
            break;
        }
        raw_len += (size_t)n;
        raw[raw_len] = '\0';
        const char *r = strstr(raw, "\"id\":2");
        const char *v = r ? json_value(r, "port") : NULL;
        if (v == NULL && r != NULL) {
            v = json_value(raw, "port");
        }
        if (v != NULL) {
            port = atoi(v);
        }
    }
    if (port <= 0) {
        fprintf(stderr, "loadgen: no port from server/start: %.300s\n", raw);
        goto done;
    }
    /* From here on stdout is never read again. */
    snprintf(g_workspace, sizeof(g_workspace), "bench");
    G.port = port;
    G.server_pid = pid;
    G.mode = MODE_COMMAND;
    G.command = "workspace.info";
    rc = mode_closed_loop(c, seconds, 1);
    long rss = proc_rss_kb(pid), anon = proc_status_kb(pid, "RssAnon");
    printf("{\"mode\":\"stdio-unread\",\"label\":\"%s\",\"rss_kb\":%ld,\"rss_anon_kb\":%ld,"
           "\"alive\":%s}\n",
           G.label, rss, anon, kill(pid, 0) == 0 ? "true" : "false");
done:
    close(in[1]);
    drain_for_ms(out[0], &b, 100);
    close(out[0]);
    buf_free(&b);
    kill_and_reap(pid, SIGTERM);
    rmdir(wsdir);
    return rc;
}

static bool tcp_ready(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    if (fd >= 0) {
        close(fd);
    }
    return ok;
}

static int mode_startup_tcp(unsigned reps, char **argv)
{
    double ms[GIT_REPS_MAX], rss[GIT_REPS_MAX], anon[GIT_REPS_MAX];
    unsigned ok = 0;
    if (tcp_ready(G.port)) {
        fail("port already in use before start-up");
    }
    for (unsigned r = 0; r < reps && r < GIT_REPS_MAX; r++) {
        uint64_t t0 = now_ns();
        pid_t pid = fork();
        if (pid < 0) {
            die("fork");
        }
        if (pid == 0) {
            int null = open("/dev/null", O_WRONLY);
            dup2(null, 1);
            dup2(null, 2);
            execvp(argv[0], argv);
            _exit(127);
        }
        bool ready = false;
        while (now_ns() - t0 < 10000000000u) {
            if (tcp_ready(G.port)) {
                ready = true;
                break;
            }
            if (waitpid(pid, NULL, WNOHANG) == pid) {
                pid = -1;
                break;
            }
            usleep(500);
        }
        double took = (double)(now_ns() - t0) / 1e6;
        if (ready) {
            usleep(200000);
            ms[ok] = took;
            rss[ok] = (double)proc_rss_kb(pid);
            anon[ok] = (double)proc_status_kb(pid, "RssAnon");
            ok++;
        }
        if (pid > 0) {
            kill_and_reap(pid, SIGTERM);
        }
        for (int i = 0; i < 200 && tcp_ready(G.port); i++) {
            usleep(10000);
        }
    }
    printf("{\"mode\":\"startup\",\"label\":\"%s\",\"reps\":%u,\"ok\":%u,\"ready_ms\":%.2f,"
           "\"idle_rss_kb\":%.0f,\"idle_rss_anon_kb\":%.0f}\n",
           G.label, reps, ok, median(ms, ok), median(rss, ok), median(anon, ok));
    return ok == reps ? 0 : 1;
}

/* ---------- main ---------- */

static void usage(void)
{
    fputs("usage: loadgen [--port P] [--secret-file F] [--workspace ID] [--server-pid PID]\n"
          "               [--extra-pid PID] [--label L] [--window W] [--warmup S] MODE ARGS\n"
          "modes: auth-storm N | ping C SECONDS | command C SECONDS NAME | idle N SECONDS |\n"
          "       gitstatus REPO REPS | startup-stdio REPS BIN | startup-tcp REPS -- ARGV... |\n"
          "       stdio-unread C SECONDS BIN\n",
          stderr);
    exit(2);
}

static unsigned parse_u(const char *s)
{
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v > 10000000ul) {
        usage();
    }
    return (unsigned)v;
}

static void read_secret(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        die(path);
    }
    if (fgets(g_secret, sizeof(g_secret), f) == NULL) {
        fail("empty secret file");
    }
    fclose(f);
    g_secret[strcspn(g_secret, "\r\n")] = '\0';
}

int main(int argc, char **argv)
{
    unsigned warmup = 1;
    int i = 1;
    signal(SIGPIPE, SIG_IGN);
    g_rng ^= (uint32_t)getpid() * 2654435761u;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0 && argv[i][2] != '\0'; i += 2) {
        if (i + 1 >= argc) {
            usage();
        }
        if (strcmp(argv[i], "--port") == 0) {
            G.port = (int)parse_u(argv[i + 1]);
        } else if (strcmp(argv[i], "--secret-file") == 0) {
            read_secret(argv[i + 1]);
        } else if (strcmp(argv[i], "--workspace") == 0) {
            snprintf(g_workspace, sizeof(g_workspace), "%s", argv[i + 1]);
        } else if (strcmp(argv[i], "--server-pid") == 0) {
            G.server_pid = (pid_t)parse_u(argv[i + 1]);
        } else if (strcmp(argv[i], "--extra-pid") == 0) {
            G.extra_pid = (pid_t)parse_u(argv[i + 1]);
        } else if (strcmp(argv[i], "--label") == 0) {
            G.label = argv[i + 1];
        } else if (strcmp(argv[i], "--window") == 0) {
            G.window = parse_u(argv[i + 1]);
        } else if (strcmp(argv[i], "--warmup") == 0) {
            warmup = parse_u(argv[i + 1]);
        } else {
            usage();
        }
    }
    if (i >= argc) {
        usage();
    }
    const char *mode = argv[i++];
    int left = argc - i;
    if (G.window == 0) {
        G.window = 1;
    }
    if (strcmp(mode, "auth-storm") == 0 && left == 1) {
        G.mode = MODE_STORM;
        return mode_storm(parse_u(argv[i]), false, 0);
    }
    if (strcmp(mode, "idle") == 0 && left == 2) {
        G.mode = MODE_IDLE;
        return mode_storm(parse_u(argv[i]), true, parse_u(argv[i + 1]));
    }
    if (strcmp(mode, "ping") == 0 && left == 2) {
        G.mode = MODE_PING;
        return mode_closed_loop(parse_u(argv[i]), parse_u(argv[i + 1]), warmup);
    }
    if (strcmp(mode, "command") == 0 && left == 3) {
        G.mode = MODE_COMMAND;
        G.command = argv[i + 2];
        return mode_closed_loop(parse_u(argv[i]), parse_u(argv[i + 1]), warmup);
    }
    if (strcmp(mode, "gitstatus") == 0 && left == 2) {
        return mode_git(argv[i], parse_u(argv[i + 1]));
    }
    if (strcmp(mode, "startup-stdio") == 0 && left == 2) {
        return mode_startup_stdio(parse_u(argv[i]), argv[i + 1]);
    }
    if (strcmp(mode, "stdio-unread") == 0 && left == 3) {
        return mode_stdio_unread(parse_u(argv[i]), parse_u(argv[i + 1]), argv[i + 2]);
    }
    if (strcmp(mode, "startup-tcp") == 0 && left >= 3 && strcmp(argv[i + 1], "--") == 0) {
        return mode_startup_tcp(parse_u(argv[i]), argv + i + 2);
    }
    usage();
    return 2;
}
