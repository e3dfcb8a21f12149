/*
 * main: the command line. `--stdio` (editor mode), `serve` (standalone),
 * `token` (mint a device or pairing token with the stored secret),
 * `devices` (list, revoke, rename), `--version`, `--help`. Bad usage prints the usage to stderr and
 * exits 2.
 */
#include <getopt.h>
#include <sys/prctl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/auth.h"
#include "core/clock.h"
#include "app/devices.h"
#include "app/helper.h"
#include "app/pairing.h"
#include "core/qr.h"
#include "core/remote.h"
#include "app/reaper.h"
#include "core/secret.h"

#define TTL_MAX_S (365LL * 24 * 3600)

static const char usage_text[] =
    "Usage:\n"
    "  companion-helper --stdio\n"
    "      Editor mode: JSON-RPC on stdin/stdout (started by the VS Code extension).\n"
    "  companion-helper serve [--workspace DIR] [--host H] [--port P] [--config FILE]\n"
    "                         [--scope read,run,editor,approve,agent,write]\n"
    "                         [--ttl 1h] [--name DEVICE]\n"
    "      Serve DIR (default: the current folder) and print its URL, workspace id\n"
    "      and a device token (the device \"serve token\") with the given scopes\n"
    "      (default: read) and lifetime; on a terminal also a pairing link and QR.\n"
    "  companion-helper token [--scope read,run] [--ttl 1h] [--user NAME]\n"
    "                         [--name DEVICE] [--pairing] [--workspace DIR] [--config FILE]\n"
    "      Print a token for a new device of DIR's workspace (named DEVICE),\n"
    "      signed with the stored secret. --pairing: a single-use pairing token\n"
    "      (valid 10 minutes, exchanged for a device token living --ttl) on\n"
    "      stdout and its pairing link on stderr.\n"
    "  companion-helper devices [--revoke ID | --rename ID --name NAME] [--json]\n"
    "                           [--workspace DIR]\n"
    "      List the devices of DIR's workspace, revoke one (its sessions in a\n"
    "      running helper close at once) or rename one.\n"
    "  companion-helper --version | --help\n"
    "\n"
    "The standalone secret is kept in $XDG_CONFIG_HOME/companion/secret (mode 0600),\n"
    "the device registry in $XDG_STATE_HOME/companion/devices-<workspace id>.json.\n"
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
    const char *workspace, *host, *config, *scope, *ttl, *user, *name, *revoke, *rename;
    int pairing, json;
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

/* Registers a device named `name` in the workspace's registry and mints
 * its token (a pairing token when `pairing`: DEVICES_PAIRING_TTL_S, and
 * the device token it is exchanged for lives `ttl`). */
static char *mint(const struct settings *st, struct devices *reg, const char *wsid,
                  const char *user, unsigned scopes, long long ttl, const char *name, int pairing,
                  char dev_id[DEVICES_ID_LEN + 1], char *err, size_t errlen)
{
    char *token = NULL;
    if (st->alg != AUTH_ALG_HS256) {
        snprintf(err, errlen, "tokens can be minted only with auth.algorithm HS256");
        return NULL;
    }
    int64_t now_ms = clock_wall_ms();
    struct devices_add_req ar = {name, user, scopes, ttl, pairing, now_ms};
    devices_bind(reg, wsid);
    if (devices_add(reg, &ar, dev_id, err, errlen) < 0)
        return NULL;
    struct auth_mint_req req = {.workspace_id = wsid,
                                .user_id = user,
                                .scopes = scopes,
                                .iat_s = now_ms / 1000,
                                .ttl_s = pairing ? DEVICES_PAIRING_TTL_S : ttl,
                                .audience = st->audience,
                                .issuer = st->issuer,
                                .device_id = dev_id,
                                .pairing = pairing};
    if (auth_mint_hs256((const unsigned char *)st->secret, strlen(st->secret), &req, &token, err,
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
    struct devices_env de = {0};
    struct devices *reg = devices_new(&de);
    char dev_id[DEVICES_ID_LEN + 1] = "";
    char *token = reg ? mint(&st, reg, ws.id, c->user ? c->user : "cli", scopes, ttl,
                             c->name ? c->name : (c->pairing ? "paired device" : "cli token"),
                             c->pairing, dev_id, err, sizeof(err))
                      : NULL;
    int rc = 0;
    if (!reg)
        snprintf(err, sizeof(err), "out of memory");
    if (token && c->pairing) {
        char url[REMOTE_URL_LEN];
        pairing_server_url(NULL, &st, url, sizeof(url));
        char *link = pairing_link_for(url, ws.id, token,
                                      (clock_wall_ms() / 1000 + DEVICES_PAIRING_TTL_S) * 1000);
        if (link)
            fprintf(stderr,
                    "Pairing link for device %s (single use, valid %d minutes; the device "
                    "token it yields lives %llds):\n%s\n",
                    dev_id, DEVICES_PAIRING_TTL_S / 60, ttl, link);
        pairing_free(link);
    }
    devices_free(reg);
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

static void print_time(int64_t ms, char *buf, size_t len)
{
    if (ms <= 0) {
        snprintf(buf, len, "-");
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (!localtime_r(&t, &tm) || !strftime(buf, len, "%Y-%m-%d %H:%M", &tm))
        snprintf(buf, len, "-");
}

static const char *jstr(json_object *o, const char *k)
{
    json_object *v;
    return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string)
               ? json_object_get_string(v)
               : "";
}

static int64_t jint(json_object *o, const char *k)
{
    json_object *v;
    return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_int)
               ? json_object_get_int64(v)
               : 0;
}

/* `devices`: list, revoke or rename in DIR's registry. A running helper
 * watches the registry, so a revocation closes its sessions at once. */
static int cmd_devices(const struct cli *c)
{
    char err[512];
    struct workspace ws;
    workspace_init(&ws);
    if (workspace_open_dir(&ws, c->workspace ? c->workspace : ".", err, sizeof(err)) < 0) {
        fprintf(stderr, "companion-helper: %s\n", err);
        workspace_free(&ws);
        return 1;
    }
    struct devices_env de = {0};
    struct devices *reg = devices_new(&de);
    int rc = 0;
    if (!reg) {
        fprintf(stderr, "companion-helper: out of memory\n");
        workspace_free(&ws);
        return 1;
    }
    devices_bind(reg, ws.id);
    const char *id = c->revoke ? c->revoke : c->rename;
    if (id) {
        int r =
            c->revoke ? devices_revoke(reg, id, clock_wall_ms()) : devices_rename(reg, id, c->name);
        const char *problem = devices_problem(reg);
        if (r < 0 && problem) {
            fprintf(stderr, "companion-helper: the registry cannot be used: %s\n", problem);
            rc = 1;
        } else if (r < 0) {
            fprintf(stderr,
                    "companion-helper: no device %s in workspace %s (see `companion-helper "
                    "devices`)\n",
                    id, ws.id);
            rc = 1;
        } else if (problem) {
            fprintf(stderr, "companion-helper: not saved: %s\n", problem);
            rc = 1;
        } else {
            printf("%s %s\n", c->revoke ? "Revoked" : "Renamed", id);
        }
        devices_free(reg);
        workspace_free(&ws);
        return rc;
    }
    json_object *l = devices_list_json(reg, clock_wall_ms(), NULL, NULL);
    json_object *arr = NULL;
    json_object_object_get_ex(l, "devices", &arr);
    if (c->json) {
        json_object_object_del(l, "problem");
        const char *problem = devices_problem(reg);
        if (problem)
            json_object_object_add(l, "problem", json_object_new_string(problem));
        printf("%s\n", json_object_to_json_string_ext(l, JSON_C_TO_STRING_PRETTY |
                                                             JSON_C_TO_STRING_NOSLASHESCAPE));
    } else if (!arr || json_object_array_length(arr) == 0) {
        printf("No devices in workspace %s.\n", ws.id);
    } else {
        printf("%-14s %-24s %-8s %-28s %-17s %s\n", "ID", "NAME", "STATE", "SCOPES", "EXPIRES",
               "LAST-SEEN");
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
            json_object *e = json_object_array_get_idx(arr, i), *sc = NULL;
            char scopes[64] = "", exp[32], seen[32];
            json_object_object_get_ex(e, "scopes", &sc);
            for (size_t k = 0; sc && k < json_object_array_length(sc); k++) {
                size_t used = strlen(scopes);
                snprintf(scopes + used, sizeof(scopes) - used, "%s%s", k ? "," : "",
                         json_object_get_string(json_object_array_get_idx(sc, k)));
            }
            print_time(jint(e, "expires"), exp, sizeof(exp));
            print_time(jint(e, "lastSeen"), seen, sizeof(seen));
            printf("%-14s %-24s %-8s %-28s %-17s %s\n", jstr(e, "id"), jstr(e, "name"),
                   jstr(e, "state"), scopes, exp, seen);
        }
    }
    /* A problem with the file was printed when it was read. */
    json_object_put(l);
    devices_free(reg);
    workspace_free(&ws);
    return 0;
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
    helper_bind_devices(&h);
    char dev_id[DEVICES_ID_LEN + 1] = "";
    char *token = mint(&h.settings, h.devices, h.ws.id, c->user ? c->user : "paired-device", scopes,
                       ttl, c->name ? c->name : "serve token", 0, dev_id, err, sizeof(err));
    char scopes_text[64], ws_url[REMOTE_URL_LEN], base[REMOTE_URL_LEN];
    char warn[REMOTE_WARNINGS_MAX][REMOTE_WARNING_MAX];
    /* What clients are told: server.publicUrl's address when set. */
    pairing_server_url(h.server, &h.settings, ws_url, sizeof(ws_url));
    if (remote_base_url(&h.settings, server_port(h.server), base, sizeof(base)) < 0)
        base[0] = '\0';
    /* On stderr, which the journal and a terminal both show, before the
     * banner so it is not scrolled away by the QR code. */
    size_t nw = remote_warnings(&h.settings, warn, REMOTE_WARNINGS_MAX);
    for (size_t i = 0; i < nw; i++)
        fprintf(stderr, "\ncompanion-helper: WARNING: %s\n", warn[i]);
    if (nw)
        fputc('\n', stderr);
    printf("Companion %s serving %s\n", COMPANION_VERSION, h.ws.folders[0].path);
    printf("  URL:          %s\n", ws_url);
    printf("  Web app:      %s/\n", base);
    printf("  Health:       %s/health\n", base);
    printf("  Workspace id: %s\n", h.ws.id);
    if (token) {
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
        printf("                (device %s \"%s\"; scopes: %s; expires in %llds; mint others "
               "with `companion-helper token --scope read,run`)\n",
               dev_id, c->name ? c->name : "serve token",
               auth_scopes_format(scopes, scopes_text, sizeof(scopes_text)), ttl);
        explicit_bzero(token, strlen(token));
        free(token);
    } else {
        printf("  Token:        none (%s)\n", err);
    }
    /* A phone pairs by scanning a single-use link; only a terminal can show
     * it (a link in the journal could be used by whoever reads it first). */
    if (isatty(STDOUT_FILENO) && h.settings.alg == AUTH_ALG_HS256) {
        char pdev[DEVICES_ID_LEN + 1], url[REMOTE_URL_LEN];
        char *ptok = mint(&h.settings, h.devices, h.ws.id, c->user ? c->user : "paired-device",
                          scopes, ttl, "paired phone", 1, pdev, err, sizeof(err));
        pairing_server_url(h.server, &h.settings, url, sizeof(url));
        char *link = ptok
                         ? pairing_link_for(url, h.ws.id, ptok,
                                            (clock_wall_ms() / 1000 + DEVICES_PAIRING_TTL_S) * 1000)
                         : NULL;
        if (link) {
            printf("\nPair a phone (single use, valid %d minutes): scan or open\n  %s\n",
                   DEVICES_PAIRING_TTL_S / 60, link);
            qr_print(stdout, link);
        }
        pairing_free(ptok);
        pairing_free(link);
    } else {
        printf("  Pair a phone: run `companion-helper token --pairing --scope read,run` and open "
               "the link it prints\n");
    }
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
        OPT_USER,
        OPT_NAME,
        OPT_PAIRING,
        OPT_REVOKE,
        OPT_RENAME,
        OPT_JSON
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
        {"name", required_argument, NULL, OPT_NAME},
        {"pairing", no_argument, NULL, OPT_PAIRING},
        {"revoke", required_argument, NULL, OPT_REVOKE},
        {"rename", required_argument, NULL, OPT_RENAME},
        {"json", no_argument, NULL, OPT_JSON},
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
        return usage_error("%s", "a command is needed: --stdio, serve, token or devices");
    const char *cmd = argv[optind];
    int is_serve = strcmp(cmd, "serve") == 0, is_token = strcmp(cmd, "token") == 0,
        is_devices = strcmp(cmd, "devices") == 0;
    if (strcmp(cmd, "help") == 0) {
        fputs(usage_text, stdout);
        return 0;
    }
    if (!is_serve && !is_token && !is_devices)
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
            if (is_devices)
                return usage_error("--config is not an option of devices");
            c.config = optarg;
            break;
        case OPT_SCOPE:
            if (is_devices)
                return usage_error("--scope is not an option of devices");
            c.scope = optarg;
            break;
        case OPT_TTL:
            if (is_devices)
                return usage_error("--ttl is not an option of devices");
            c.ttl = optarg;
            break;
        case OPT_NAME:
            if (!devices_name_ok(optarg))
                return usage_error("--name: expected 1 to %d printable characters",
                                   DEVICES_NAME_MAX);
            c.name = optarg;
            break;
        case OPT_PAIRING:
            if (!is_token)
                return usage_error("--pairing is an option of token, not %s", cmd);
            c.pairing = 1;
            break;
        case OPT_REVOKE:
        case OPT_RENAME:
            if (!is_devices)
                return usage_error("--%s is an option of devices, not %s",
                                   opt == OPT_REVOKE ? "revoke" : "rename", cmd);
            if (c.revoke || c.rename)
                return usage_error("%s", "give one of --revoke and --rename");
            if (!auth_device_id_ok(optarg))
                return usage_error("--%s %s: expected a device id (see `companion-helper devices`)",
                                   opt == OPT_REVOKE ? "revoke" : "rename", optarg);
            *(opt == OPT_REVOKE ? &c.revoke : &c.rename) = optarg;
            break;
        case OPT_JSON:
            if (!is_devices)
                return usage_error("--json is an option of devices, not %s", cmd);
            c.json = 1;
            break;
        case OPT_USER:
            if (is_devices)
                return usage_error("--user is not an option of devices");
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
    if (is_devices) {
        if (c.rename && !c.name)
            return usage_error("%s", "--rename ID needs --name NAME");
        if (c.name && !c.rename)
            return usage_error("%s", "devices takes --name only with --rename ID");
        if (c.json && (c.revoke || c.rename))
            return usage_error("%s", "--json lists: it does not go with --revoke or --rename");
        return cmd_devices(&c);
    }

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
