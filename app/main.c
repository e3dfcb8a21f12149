/*
 * main: the command line. `--stdio` (editor mode), `serve` (standalone),
 * `token` (mint a pairing token with the stored secret), `--version`,
 * `--help`. Bad usage prints the usage to stderr and exits 2.
 */
#include <getopt.h>
#include <sys/prctl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/auth.h"
#include "core/clock.h"
#include "app/helper.h"
#include "core/qr.h"
#include "app/reaper.h"
#include "core/secret.h"

#define TTL_MAX_S (365LL * 24 * 3600)

static const char usage_text[] =
    "Usage:\n"
    "  companion-helper --stdio\n"
    "      Editor mode: JSON-RPC on stdin/stdout (started by the VS Code extension).\n"
    "  companion-helper serve [--workspace DIR] [--host H] [--port P] [--config FILE]\n"
    "                         [--scope read,run,editor,approve,agent,write]\n"
    "                         [--ttl 1h]\n"
    "      Serve DIR (default: the current folder) and print its URL, workspace id\n"
    "      and a pairing token with the given scopes (default: read) and lifetime.\n"
    "  companion-helper token [--scope read,run] [--ttl 1h] [--user NAME]\n"
    "                         [--workspace DIR] [--config FILE]\n"
    "      Print a token for DIR's workspace, signed with the stored secret.\n"
    "  companion-helper --version | --help\n"
    "\n"
    "The standalone secret is kept in $XDG_CONFIG_HOME/companion/secret (mode 0600).\n"
    "Durations: 90, 90s, 15m, 1h, 7d (at most 365d).\n";

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "companion-helper: ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n\n%s", usage_text);
    return 2;
}

/* "90", "90s", "15m", "1h", "7d" -> seconds; -1 if malformed or out of range. */
static long long parse_ttl(const char *s)
{
    char *end;
    if (!*s || strspn(s, "0123456789") == 0)
        return -1;
    long long n = strtoll(s, &end, 10);
    long long mult = 1;
    if (*end == 's')
        end++;
    else if (*end == 'm')
        mult = 60, end++;
    else if (*end == 'h')
        mult = 3600, end++;
    else if (*end == 'd')
        mult = 86400, end++;
    if (*end || n <= 0 || n > TTL_MAX_S / mult)
        return -1;
    return n * mult;
}

struct cli {
    const char *workspace, *host, *config, *scope, *ttl, *user;
    int port; /* -1: from settings */
};

/* Settings from --config, then the key from the secret file when the config
 * has none: the workspace's own key, derived from the stored secret
 * (auth_derive_workspace_key), never the secret itself. *secret_path gets
 * the file's path when the key came from it (caller frees). */
static int load_settings(struct settings *st, const struct cli *c, const char *workspace_id,
                         char **secret_path, char *err, size_t errlen)
{
    if (secret_path)
        *secret_path = NULL;
    if (c->config) {
        if (settings_load_file(st, c->config, err, errlen) < 0)
            return -1;
    } else {
        settings_init(st);
    }
    if (c->host) {
        free(st->host);
        st->host = strdup(c->host);
    }
    if (c->port >= 0)
        st->port = c->port;
    if (!st->secret && st->alg == AUTH_ALG_HS256) {
        char path[4096], key[AUTH_KEY_HEX_LEN + 1];
        char *raw = NULL;
        if (secret_default_path(path, sizeof(path), err, errlen) < 0 ||
            secret_load(path, 1, &raw, err, errlen) < 0)
            return -1;
        int rc = auth_derive_workspace_key(raw, strlen(raw), workspace_id, key);
        secret_free(raw);
        if (rc < 0 || !(st->secret = strdup(key))) {
            explicit_bzero(key, sizeof(key));
            snprintf(err, errlen, "cannot derive this workspace's key from the secret");
            return -1;
        }
        explicit_bzero(key, sizeof(key));
        if (secret_path)
            *secret_path = strdup(path);
    }
    return 0;
}

static char *mint(const struct settings *st, const char *wsid, const char *user, unsigned scopes,
                  long long ttl, char *err, size_t errlen)
{
    char *token = NULL;
    if (st->alg != AUTH_ALG_HS256) {
        snprintf(err, errlen, "tokens can be minted only with auth.algorithm HS256");
        return NULL;
    }
    if (auth_mint_hs256((const unsigned char *)st->secret, strlen(st->secret), wsid, user, scopes,
                        clock_wall_ms() / 1000, ttl, st->audience, st->issuer, &token, err,
                        errlen) < 0)
        return NULL;
    return token;
}

static int cmd_token(const struct cli *c, unsigned scopes, long long ttl)
{
    char err[512];
    struct settings st;
    struct workspace ws;
    memset(&st, 0, sizeof(st)); /* settings_free is safe on it whatever fails */
    workspace_init(&ws);
    if (workspace_open_dir(&ws, c->workspace ? c->workspace : ".", err, sizeof(err)) < 0 ||
        load_settings(&st, c, ws.id, NULL, err, sizeof(err)) < 0) {
        fprintf(stderr, "companion-helper: %s\n", err);
        settings_free(&st);
        workspace_free(&ws);
        return 1;
    }
    char *token = mint(&st, ws.id, c->user ? c->user : "cli", scopes, ttl, err, sizeof(err));
    int rc = 0;
    if (token) {
        printf("%s\n", token);
        explicit_bzero(token, strlen(token));
        free(token);
    } else {
        fprintf(stderr, "companion-helper: %s\n", err);
        rc = 1;
    }
    settings_free(&st);
    workspace_free(&ws);
    return rc;
}

static int cmd_serve(const struct cli *c, unsigned scopes, long long ttl)
{
    char err[512];
    static struct helper h; /* large; lives for the whole process */
    if (helper_init(&h, HELPER_MODE_SERVE, err, sizeof(err)) < 0 ||
        workspace_open_dir(&h.ws, c->workspace ? c->workspace : ".", err, sizeof(err)) < 0) {
        fprintf(stderr, "companion-helper: %s\n", err);
        helper_free(&h);
        return 1;
    }
    settings_free(&h.settings);
    if (load_settings(&h.settings, c, h.ws.id, &h.secret_path, err, sizeof(err)) < 0) {
        fprintf(stderr, "companion-helper: %s\n", err);
        helper_free(&h);
        return 1;
    }
    h.log.level = (enum log_level)h.settings.log_level;
    if (c->config)
        h.priv.config_file = realpath(c->config, NULL);
    private_paths_apply(&h.priv, &h.settings, &h.ws, &h.log);
    helper_watch_secret(&h);
    helper_watch_git(&h);
    helper_watch_files(&h);
    events_resize(&h.events, (size_t)h.settings.history_size);
    if (helper_start_server(&h, err, sizeof(err)) != SERVER_OK) {
        fprintf(stderr, "companion-helper: %s\n", err);
        helper_free(&h);
        return 1;
    }
    char *token = mint(&h.settings, h.ws.id, c->user ? c->user : "paired-device", scopes, ttl, err,
                       sizeof(err));
    char scopes_text[64];
    printf("Companion %s serving %s\n", COMPANION_VERSION, h.ws.folders[0].path);
    printf("  URL:          %s\n", server_url(h.server));
    printf("  Health:       http://%s:%d/health\n", h.settings.host, server_port(h.server));
    printf("  Workspace id: %s\n", h.ws.id);
    char *token_json = NULL;
    if (token) {
        json_object *p = json_object_new_object();
        json_object_object_add(p, "v", json_object_new_int(1));
        json_object_object_add(p, "url", json_object_new_string(server_url(h.server)));
        json_object_object_add(p, "workspaceId", json_object_new_string(h.ws.id));
        json_object_object_add(p, "token", json_object_new_string(token));
        token_json = strdup(json_object_to_json_string_ext(p, JSON_C_TO_STRING_PLAIN |
                                                                  JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(p);
        /* A token is printed only to a terminal: under the systemd unit
         * stdout is the journal, which other members of the user's groups
         * (adm, systemd-journal) may read. Otherwise it goes to a 0600 file. */
        char tpath[4096], terr[300];
        if (isatty(STDOUT_FILENO)) {
            printf("  Token:        %s\n", token);
        } else {
            char name[WORKSPACE_ID_MAX + 32];
            snprintf(name, sizeof(name), "serve-%s.token", h.ws.id);
            size_t tl = strlen(token);
            token[tl] = '\n';
            int ok = secret_state_path(name, tpath, sizeof(tpath), terr, sizeof(terr)) == 0 &&
                     secret_write_private(tpath, token, tl + 1, terr, sizeof(terr)) == 0;
            token[tl] = '\0';
            if (ok)
                printf("  Token file:   %s (mode 0600: stdout is not a terminal)\n", tpath);
            else
                printf("  Token:        not shown (stdout is not a terminal and %s)\n", terr);
        }
        printf("                (scopes: %s; expires in %llds; mint others with "
               "`companion-helper token --scope read,run`)\n",
               auth_scopes_format(scopes, scopes_text, sizeof(scopes_text)), ttl);
        explicit_bzero(token, strlen(token));
        free(token);
    } else {
        printf("  Token:        none (%s)\n", err);
    }
    /* A phone pairs by scanning; only a terminal can show it. */
    if (token_json && isatty(STDOUT_FILENO)) {
        printf("\nScan to pair:\n");
        qr_print(stdout, token_json);
    }
    free(token_json);
    printf("Press Ctrl+C to stop.\n");
    fflush(stdout);
    int rc = helper_run(&h);
    helper_free(&h);
    return rc;
}

static int cmd_stdio(void)
{
    char err[512];
    static struct helper h;
    if (helper_init(&h, HELPER_MODE_STDIO, err, sizeof(err)) < 0 ||
        helper_start_control(&h, err, sizeof(err)) < 0) {
        fprintf(stderr, "companion-helper: %s\n", err);
        helper_free(&h);
        return 1;
    }
    int rc = helper_run(&h);
    helper_free(&h);
    return rc;
}

int main(int argc, char **argv)
{
    /* The helper's own watchdog process (helper/reaper.c); not for users. */
    if (argc == 2 && strcmp(argv[1], "--reap") == 0)
        return reaper_run(REAPER_FD);

    enum {
        OPT_STDIO = 256,
        OPT_WORKSPACE,
        OPT_HOST,
        OPT_PORT,
        OPT_CONFIG,
        OPT_SCOPE,
        OPT_TTL,
        OPT_USER
    };
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {"stdio", no_argument, NULL, OPT_STDIO},
        {"workspace", required_argument, NULL, OPT_WORKSPACE},
        {"host", required_argument, NULL, OPT_HOST},
        {"port", required_argument, NULL, OPT_PORT},
        {"config", required_argument, NULL, OPT_CONFIG},
        {"scope", required_argument, NULL, OPT_SCOPE},
        {"ttl", required_argument, NULL, OPT_TTL},
        {"user", required_argument, NULL, OPT_USER},
        {NULL, 0, NULL, 0},
    };
    struct cli c = {.port = -1};
#if !defined(__SANITIZE_ADDRESS__)
    /* The secret and tokens live in this process's memory: no core dumps,
     * and other processes of the user cannot ptrace or read /proc/PID/mem.
     * (Sanitizer builds keep it: LeakSanitizer needs ptrace.) */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
#endif
    int stdio_mode = 0, opt;
    opterr = 0;
    /* "+" stops at the subcommand so its own flags are parsed after it. */
    while ((opt = getopt_long(argc, argv, "+hV", opts, NULL)) != -1) {
        switch (opt) {
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        case 'V':
            printf("companion-helper %s\n", COMPANION_VERSION);
            return 0;
        case OPT_STDIO:
            stdio_mode = 1;
            break;
        default:
            return usage_error("unknown or incomplete option %s", argv[optind - 1]);
        }
    }
    if (stdio_mode) {
        if (optind != argc)
            return usage_error("--stdio takes no other arguments (got %s)", argv[optind]);
        return cmd_stdio();
    }
    if (optind >= argc)
        return usage_error("%s", "a command is needed: --stdio, serve or token");
    const char *cmd = argv[optind];
    int is_serve = strcmp(cmd, "serve") == 0, is_token = strcmp(cmd, "token") == 0;
    if (strcmp(cmd, "help") == 0) {
        fputs(usage_text, stdout);
        return 0;
    }
    if (!is_serve && !is_token)
        return usage_error("unknown command %s", cmd);

    optind++;
    while ((opt = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        switch (opt) {
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        case OPT_WORKSPACE:
            c.workspace = optarg;
            break;
        case OPT_HOST:
            if (!is_serve)
                return usage_error("--host is an option of serve, not %s", cmd);
            if (!*optarg)
                return usage_error("%s", "--host needs an address");
            c.host = optarg;
            break;
        case OPT_PORT: {
            char *end;
            long p = strtol(optarg, &end, 10);
            if (!is_serve)
                return usage_error("--port is an option of serve, not %s", cmd);
            if (!*optarg || *end || p < 0 || p > 65535)
                return usage_error("--port %s: expected a number from 0 to 65535", optarg);
            c.port = (int)p;
            break;
        }
        case OPT_CONFIG:
            c.config = optarg;
            break;
        case OPT_SCOPE:
            c.scope = optarg;
            break;
        case OPT_TTL:
            c.ttl = optarg;
            break;
        case OPT_USER:
            if (!*optarg || strlen(optarg) > 256)
                return usage_error("--user %s: expected 1 to 256 characters", optarg);
            c.user = optarg;
            break;
        default:
            return usage_error("unknown or incomplete option %s", argv[optind - 1]);
        }
    }
    if (optind != argc)
        return usage_error("unexpected argument %s", argv[optind]);

    char err[200];
    unsigned scopes = AUTH_SCOPE_READ;
    if (c.scope && auth_scopes_parse(c.scope, &scopes, err, sizeof(err)) < 0)
        return usage_error("--scope: %s", err);
    long long ttl = 3600;
    if (c.ttl && (ttl = parse_ttl(c.ttl)) < 0)
        return usage_error(
            "--ttl %s: expected a duration such as 90s, 15m, 1h or 7d (at most 365d)", c.ttl);
    return is_serve ? cmd_serve(&c, scopes, ttl) : cmd_token(&c, scopes, ttl);
}
