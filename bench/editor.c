/* companion-editor-standin: the editor's side of `companion-helper --stdio`
 * for bench/run.sh (editor mode). Not an editor: it starts the helper as the
 * VS Code extension does (initialize with the settings and the secret,
 * initialized, server/start), then reads every message the helper writes,
 * parses each one as the extension would (json-c), counts the notifications
 * by method (companion/commandExecuted is the audit trail every command
 * sends) and answers what must be answered: any request from the helper gets
 * an error reply at once (editor/confirm: not approved), so nothing waits.
 *
 *   companion-editor-standin --helper BIN --folder PATH --workspace ID
 *                            --secret-file F [--stats FILE]
 *
 * Prints one line `port=N pid=P` (the helper's data-plane port and process)
 * on stdout once the server runs. On SIGTERM/SIGINT: shutdown and exit to the
 * helper, waits for it (3 s, then SIGKILL), writes one JSON line of counts to
 * FILE (if given) and exits 0. The secret goes only into initialize's params
 * on the helper's stdin (never argv or environment). */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_METHODS 32

static struct {
    int to_helper, from_helper;
    pid_t pid;
    char *in;
    size_t len, cap;
    /* counts */
    unsigned long notes, note_bytes, requests, responses;
    struct {
        char name[64];
        unsigned long n, bytes;
    } by[MAX_METHODS];
    int nby;
    long init_id_done, start_port;
} E = {.to_helper = -1, .from_helper = -1};

static _Noreturn void fail(const char *what)
{
    fprintf(stderr, "companion-editor-standin: %s\n", what);
    if (E.pid > 0)
        kill(E.pid, SIGKILL);
    exit(2);
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* the helper is gone; the loop notices EOF */
        p += w;
        n -= (size_t)w;
    }
}

static void send_msg(json_object *m)
{
    size_t n = 0;
    const char *s = json_object_to_json_string_length(m, JSON_C_TO_STRING_PLAIN, &n);
    char hdr[64];
    int h = snprintf(hdr, sizeof(hdr), "Content-Length: %zu\r\n\r\n", n);
    write_all(E.to_helper, hdr, (size_t)h);
    write_all(E.to_helper, s, n);
    json_object_put(m);
}

static json_object *rpc(const char *method, int id, json_object *params)
{
    json_object *m = json_object_new_object();
    json_object_object_add(m, "jsonrpc", json_object_new_string("2.0"));
    if (id > 0)
        json_object_object_add(m, "id", json_object_new_int(id));
    json_object_object_add(m, "method", json_object_new_string(method));
    if (params)
        json_object_object_add(m, "params", params);
    return m;
}

static void count(const char *method, size_t bytes)
{
    E.notes++;
    E.note_bytes += bytes;
    int i;
    for (i = 0; i < E.nby; i++)
        if (strcmp(E.by[i].name, method) == 0)
            break;
    if (i == E.nby) {
        if (E.nby == MAX_METHODS)
            i = MAX_METHODS - 1; /* "other" bucket */
        else
            snprintf(E.by[E.nby++].name, sizeof(E.by[0].name), "%s", method);
    }
    E.by[i].n++;
    E.by[i].bytes += bytes;
}

/* One message from the helper (body of body_len bytes). */
static void on_message(const char *body, size_t body_len, size_t frame_len)
{
    json_tokener *tk = json_tokener_new();
    json_object *m = tk ? json_tokener_parse_ex(tk, body, (int)body_len) : NULL;
    if (tk)
        json_tokener_free(tk);
    if (!json_object_is_type(m, json_type_object)) {
        json_object_put(m);
        fail("the helper wrote something that is not a JSON-RPC object");
    }
    json_object *method = NULL, *id = NULL, *result = NULL;
    json_object_object_get_ex(m, "method", &method);
    json_object_object_get_ex(m, "id", &id);
    if (method != NULL && id != NULL) {
        /* A request to the editor: answered at once, never approved. */
        E.requests++;
        json_object *r = json_object_new_object();
        json_object_object_add(r, "jsonrpc", json_object_new_string("2.0"));
        json_object_object_add(r, "id", json_object_get(id));
        if (strcmp(json_object_get_string(method), "editor/confirm") == 0) {
            json_object *res = json_object_new_object();
            json_object_object_add(res, "approved", json_object_new_boolean(0));
            json_object_object_add(r, "result", res);
        } else {
            json_object *err = json_object_new_object();
            json_object_object_add(err, "code", json_object_new_int(-32601));
            json_object_object_add(err, "message",
                                   json_object_new_string("the benchmark's editor stand-in "
                                                          "does not do this"));
            json_object_object_add(r, "error", err);
        }
        send_msg(r);
    } else if (method != NULL) {
        count(json_object_get_string(method), frame_len);
    } else {
        E.responses++;
        int rid = id ? json_object_get_int(id) : 0;
        if (rid == 1)
            E.init_id_done = 1;
        if (rid == 2 && json_object_object_get_ex(m, "result", &result)) {
            json_object *port = NULL;
            if (json_object_object_get_ex(result, "port", &port))
                E.start_port = json_object_get_int(port);
        }
        if ((rid == 1 || rid == 2) && json_object_object_get_ex(m, "error", NULL)) {
            fprintf(stderr, "companion-editor-standin: helper refused request %d: %s\n", rid,
                    json_object_to_json_string(m));
            json_object_put(m);
            fail("cannot start the helper");
        }
    }
    json_object_put(m);
}

/* The "\r\n\r\n" ending a frame's header, or NULL. */
static char *blank_line(char *p, size_t n)
{
    for (size_t i = 0; i + 4 <= n; i++)
        if (p[i] == '\r' && p[i + 1] == '\n' && p[i + 2] == '\r' && p[i + 3] == '\n')
            return p + i;
    return NULL;
}

/* Reads what is there and handles every whole frame. Returns false at EOF. */
static bool pump(void)
{
    char tmp[65536];
    ssize_t n = read(E.from_helper, tmp, sizeof(tmp));
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return true;
    if (n <= 0)
        return false;
    if (E.len + (size_t)n > E.cap) {
        E.cap = (E.len + (size_t)n) * 2;
        E.in = realloc(E.in, E.cap);
        if (E.in == NULL)
            fail("out of memory");
    }
    memcpy(E.in + E.len, tmp, (size_t)n);
    E.len += (size_t)n;
    size_t off = 0;
    for (;;) {
        char *start = E.in + off;
        size_t avail = E.len - off;
        char *end = blank_line(start, avail);
        if (end == NULL)
            break;
        char *cl = memmem(start, (size_t)(end - start), "Content-Length:", 15);
        if (cl == NULL)
            fail("a frame without Content-Length");
        size_t body = strtoul(cl + 15, NULL, 10);
        size_t hl = (size_t)(end + 4 - start);
        if (avail < hl + body)
            break;
        on_message(end + 4, body, hl + body);
        off += hl + body;
    }
    memmove(E.in, E.in + off, E.len - off);
    E.len -= off;
    return true;
}

static char *read_secret(const char *path)
{
    char line[1024];
    FILE *f = fopen(path, "r");
    if (f == NULL || fgets(line, sizeof(line), f) == NULL)
        fail("cannot read the secret file");
    fclose(f);
    line[strcspn(line, "\r\n")] = '\0';
    char *s = strdup(line);
    memset(line, 0, sizeof(line));
    if (s == NULL || s[0] == '\0')
        fail("empty secret file");
    return s;
}

static uint64_t cpu_ms(int who)
{
    struct rusage ru;
    getrusage(who, &ru);
    return ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) * 1000u +
           ((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) / 1000u;
}

int main(int argc, char **argv)
{
    const char *helper = NULL, *folder = NULL, *workspace = NULL, *secret_file = NULL,
               *stats = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--helper") == 0)
            helper = argv[i + 1];
        else if (strcmp(argv[i], "--folder") == 0)
            folder = argv[i + 1];
        else if (strcmp(argv[i], "--workspace") == 0)
            workspace = argv[i + 1];
        else if (strcmp(argv[i], "--secret-file") == 0)
            secret_file = argv[i + 1];
        else if (strcmp(argv[i], "--stats") == 0)
            stats = argv[i + 1];
        else
            helper = NULL, i = argc;
    }
    if (helper == NULL || folder == NULL || workspace == NULL || secret_file == NULL ||
        argc % 2 == 0) {
        fputs("usage: companion-editor-standin --helper BIN --folder PATH --workspace ID "
              "--secret-file F [--stats FILE]\n",
              stderr);
        return 2;
    }
    char *secret = read_secret(secret_file);
    signal(SIGPIPE, SIG_IGN);
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigprocmask(SIG_BLOCK, &sigs, NULL);
    int sfd = signalfd(-1, &sigs, SFD_CLOEXEC);

    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || sfd < 0)
        fail("cannot make pipes");
    E.pid = fork();
    if (E.pid < 0)
        fail("fork failed");
    if (E.pid == 0) {
        sigprocmask(SIG_UNBLOCK, &sigs, NULL);
        dup2(in[0], 0);
        dup2(out[1], 1);
        execl(helper, helper, "--stdio", (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    E.to_helper = in[1];
    E.from_helper = out[0];

    /* The same limits as serve's benchmark configuration (bench/run.sh). */
    char uri[4200];
    snprintf(uri, sizeof(uri), "file://%s", folder);
    const char *base = strrchr(folder, '/');
    json_object *p = json_object_new_object();
    json_object_object_add(p, "processId", json_object_new_int(getpid()));
    json_object *ci = json_object_new_object();
    json_object_object_add(ci, "name", json_object_new_string("bench-editor-standin"));
    json_object_object_add(ci, "version", json_object_new_string("1"));
    json_object_object_add(p, "clientInfo", ci);
    json_object_object_add(p, "workspaceId", json_object_new_string(workspace));
    json_object *fo = json_object_new_object();
    json_object_object_add(fo, "uri", json_object_new_string(uri));
    json_object_object_add(fo, "name", json_object_new_string(base && base[1] ? base + 1 : folder));
    json_object *fa = json_object_new_array();
    json_object_array_add(fa, fo);
    json_object_object_add(p, "workspaceFolders", fa);
    json_object *settings = json_tokener_parse(
        "{\"server\":{\"host\":\"127.0.0.1\",\"port\":0},"
        "\"limits\":{\"maxConnections\":20000,\"maxUnauthenticated\":20000,"
        "\"commandsPerSecond\":10000},\"log\":{\"level\":\"warn\"},\"auth\":{}}");
    json_object *auth = NULL;
    json_object_object_get_ex(settings, "auth", &auth);
    json_object_object_add(auth, "secret", json_object_new_string(secret));
    memset(secret, 0, strlen(secret));
    free(secret);
    json_object_object_add(p, "settings", settings);
    send_msg(rpc("initialize", 1, p));

    uint64_t deadline = (uint64_t)time(NULL) + 20;
    bool started = false, stopping = false;
    struct pollfd pf[2] = {{.fd = E.from_helper, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
    for (;;) {
        if (!started && E.init_id_done == 1) {
            send_msg(rpc("initialized", 0, json_object_new_object()));
            send_msg(rpc("server/start", 2, json_object_new_object()));
            E.init_id_done = 2;
        }
        if (!started && E.start_port > 0) {
            printf("port=%ld pid=%d\n", E.start_port, (int)E.pid);
            fflush(stdout);
            started = true;
        }
        if (!started && (uint64_t)time(NULL) > deadline)
            fail("the helper did not start its server within 20 s");
        if (poll(pf, 2, 1000) < 0 && errno != EINTR)
            fail("poll failed");
        if (pf[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            if (!pump())
                break; /* the helper closed stdout */
        }
        if (!stopping && (pf[1].revents & POLLIN)) {
            struct signalfd_siginfo si;
            if (read(sfd, &si, sizeof(si)) < 0)
                fail("signalfd read failed");
            stopping = true;
            send_msg(rpc("shutdown", 3, NULL));
            send_msg(rpc("exit", 0, NULL));
            close(E.to_helper);
            E.to_helper = -1;
            pf[1].fd = -1;
            deadline = (uint64_t)time(NULL) + 3;
        }
        if (stopping && (uint64_t)time(NULL) > deadline)
            break;
    }
    int st = 0;
    if (!started) {
        waitpid(E.pid, &st, 0);
        fprintf(stderr,
                "companion-editor-standin: the helper ended before its server started "
                "(exit status %d)\n",
                WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
        return 1;
    }
    for (int i = 0; i < 300 && waitpid(E.pid, &st, WNOHANG) == 0; i++)
        usleep(10000);
    if (waitpid(E.pid, &st, WNOHANG) == 0) {
        kill(E.pid, SIGKILL);
        waitpid(E.pid, &st, 0);
    }
    if (stats != NULL) {
        FILE *f = fopen(stats, "w");
        if (f == NULL)
            fail("cannot write the stats file");
        fprintf(f,
                "{\"mode\":\"editor-standin\",\"notifications\":%lu,\"notification_bytes\":%lu,"
                "\"requests\":%lu,\"standin_cpu_ms\":%llu,\"by_method\":{",
                E.notes, E.note_bytes, E.requests, (unsigned long long)cpu_ms(RUSAGE_SELF));
        for (int i = 0; i < E.nby; i++)
            fprintf(f, "%s\"%s\":{\"n\":%lu,\"bytes\":%lu}", i ? "," : "", E.by[i].name, E.by[i].n,
                    E.by[i].bytes);
        fprintf(f, "}}\n");
        fclose(f);
    }
    return 0;
}
