/*
 * Unit tests of helper/settings.c: defaults, the contract's example, every key
 * refused for the wrong type or range, tasks, publicKeyPath, copy, files, and
 * the promise that a refused update leaves the caller's settings alone.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/auth.h"
#include "core/settings.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECRET_MARK "s3cr3t-Do-Not-Echo-0123456789abcdef"

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */

static json_object *json(const char *text)
{
    json_object *o = json_tokener_parse(text);
    if (!o)
        fail_msg("test JSON does not parse: %s", text);
    return o;
}

static int parse_text(struct settings *out, const char *text, char *err, size_t errlen)
{
    json_object *o = json(text);
    int rc = settings_parse(out, o, err, errlen);
    json_object_put(o); /* the result must not borrow from the JSON tree */
    return rc;
}

static void parse_ok(struct settings *out, const char *text)
{
    char err[512] = "";
    if (parse_text(out, text, err, sizeof err) != 0)
        fail_msg("refused %s: %s", text, err);
}

static void assert_empty(const struct settings *s)
{
    assert_null(s->host);
    assert_null(s->secret);
    assert_null(s->public_key);
    assert_null(s->audience);
    assert_null(s->issuer);
    assert_null(s->tasks);
    assert_int_equal(s->tasks_n, 0);
    assert_null(s->allowed_origins.v);
    assert_null(s->allowed_hosts.v);
    assert_null(s->editor_commands.v);
    assert_int_equal(s->editor_commands.n, 0);
}

/* Parses `o` (consumed), expects a refusal whose message contains `want`, an
 * empty result, and no trace of the secret. */
static void expect_refused_obj(json_object *o, const char *want, const char *label)
{
    struct settings s;
    char err[512] = "";
    int rc = settings_parse(&s, o, err, sizeof err);
    json_object_put(o);
    if (rc != -1)
        fail_msg("%s: accepted, expected \"%s\"", label, want);
    if (!strstr(err, want))
        fail_msg("%s: error \"%s\" lacks \"%s\"", label, err, want);
    if (strstr(err, SECRET_MARK))
        fail_msg("%s: error \"%s\" shows the secret", label, err);
    assert_empty(&s);
    settings_free(&s);
}

/* Adds auth.secret = SECRET_MARK unless auth is absent-as-null, not an object
 * or already has a secret, so every refusal is also checked for leaks. */
static void add_secret(json_object *o)
{
    json_object *auth = NULL;
    if (!json_object_object_get_ex(o, "auth", &auth)) {
        auth = json_object_new_object();
        json_object_object_add(o, "auth", auth);
    }
    if (auth && json_object_is_type(auth, json_type_object) &&
        !json_object_object_get_ex(auth, "secret", NULL))
        json_object_object_add(auth, "secret", json_object_new_string(SECRET_MARK));
}

static void expect_refused(const char *text, const char *want)
{
    expect_refused_obj(json(text), want, text);
    json_object *o = json(text);
    if (json_object_is_type(o, json_type_object))
        add_secret(o);
    expect_refused_obj(o, want, text);
}

static int str_eq(const char *a, const char *b)
{
    return (!a || !b) ? a == b : strcmp(a, b) == 0;
}

static int strv_eq(const struct settings_strv *a, const struct settings_strv *b)
{
    if (a->n != b->n)
        return 0;
    for (size_t i = 0; i < a->n; i++)
        if (!str_eq(a->v[i], b->v[i]))
            return 0;
    return 1;
}

static int task_eq(const struct settings_task *a, const struct settings_task *b)
{
    if (!str_eq(a->name, b->name) || !str_eq(a->command, b->command) ||
        !strv_eq(&a->args, &b->args) || !str_eq(a->cwd, b->cwd) || a->env_n != b->env_n ||
        a->timeout_s != b->timeout_s || a->confirm != b->confirm)
        return 0;
    for (size_t i = 0; i < a->env_n; i++)
        if (!str_eq(a->env[i].name, b->env[i].name) || !str_eq(a->env[i].value, b->env[i].value))
            return 0;
    return 1;
}

static int settings_equal(const struct settings *a, const struct settings *b)
{
    if (a->auto_start != b->auto_start || !str_eq(a->host, b->host) || a->port != b->port ||
        !strv_eq(&a->allowed_origins, &b->allowed_origins) ||
        !strv_eq(&a->allowed_hosts, &b->allowed_hosts) || !str_eq(a->secret, b->secret) ||
        a->alg != b->alg || !str_eq(a->public_key, b->public_key) ||
        !str_eq(a->audience, b->audience) || !str_eq(a->issuer, b->issuer) ||
        a->auth_timeout_s != b->auth_timeout_s || a->leeway_s != b->leeway_s ||
        a->heartbeat_interval_s != b->heartbeat_interval_s ||
        a->heartbeat_timeout_s != b->heartbeat_timeout_s || a->history_size != b->history_size ||
        a->max_connections != b->max_connections ||
        a->max_unauthenticated != b->max_unauthenticated ||
        a->max_message_bytes != b->max_message_bytes ||
        a->commands_per_second != b->commands_per_second ||
        a->max_output_bytes != b->max_output_bytes ||
        a->max_concurrent_tasks != b->max_concurrent_tasks ||
        a->max_queued_bytes != b->max_queued_bytes || a->tasks_n != b->tasks_n ||
        !strv_eq(&a->editor_commands, &b->editor_commands) || a->log_level != b->log_level)
        return 0;
    for (size_t i = 0; i < a->tasks_n; i++)
        if (!task_eq(&a->tasks[i], &b->tasks[i]))
            return 0;
    return 1;
}

static void assert_defaults(const struct settings *s)
{
    assert_int_equal(s->auto_start, 1);
    assert_string_equal(s->host, "127.0.0.1");
    assert_int_equal(s->port, 3001);
    assert_int_equal(s->allowed_origins.n, 0);
    assert_int_equal(s->allowed_hosts.n, 0);
    assert_null(s->secret);
    assert_int_equal(s->alg, AUTH_ALG_HS256);
    assert_null(s->public_key);
    assert_non_null(s->audience);
    assert_string_equal(s->audience, "");
    assert_non_null(s->issuer);
    assert_string_equal(s->issuer, "");
    assert_int_equal(s->auth_timeout_s, 10);
    assert_int_equal(s->leeway_s, 30);
    assert_int_equal(s->heartbeat_interval_s, 25);
    assert_int_equal(s->heartbeat_timeout_s, 60);
    assert_int_equal(s->history_size, 256);
    assert_int_equal(s->max_connections, 64);
    assert_int_equal(s->max_unauthenticated, 32);
    assert_int_equal(s->max_message_bytes, 1048576);
    assert_int_equal(s->commands_per_second, 20);
    assert_int_equal(s->max_output_bytes, 1048576);
    assert_int_equal(s->max_concurrent_tasks, 4);
    assert_int_equal(s->max_queued_bytes, 8388608);
    assert_int_equal(s->max_write_bytes, 1048576);
    assert_int_equal(s->tasks_n, 0);
    assert_null(s->tasks);
    assert_int_equal(s->editor_commands.n, 1);
    assert_string_equal(s->editor_commands.v[0], "workbench.action.files.saveAll");
    assert_int_equal(s->log_level, LOG_LEVEL_INFO);
}

/* Temporary folder per test, removed (one level deep) by the teardown. */
static int tmpdir_setup(void **state)
{
    char *dir = strdup("/tmp/test_settings-XXXXXX");
    if (!dir || !mkdtemp(dir)) {
        free(dir);
        return -1;
    }
    *state = dir;
    return 0;
}

static int tmpdir_teardown(void **state)
{
    char *dir = *state;
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[512];
    while (d && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (unlink(path) != 0)
            rmdir(path);
    }
    if (d)
        closedir(d);
    rmdir(dir);
    free(dir);
    return 0;
}

/* Writes `len` bytes to dir/name and leaves the full path in `path`. */
static void write_file(const char *dir, const char *name, const void *data, size_t len, char *path,
                       size_t pathlen)
{
    snprintf(path, pathlen, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    /* As a user keeps a file holding a secret (see test_load_file_modes). */
    assert_int_equal(chmod(path, 0600), 0);
}

static void write_text(const char *dir, const char *name, const char *text, char *path,
                       size_t pathlen)
{
    write_file(dir, name, text, strlen(text), path, pathlen);
}

/* ------------------------------------------------------------------------ */
/* Defaults and the contract's example                                      */

static void test_init_defaults(void **state)
{
    struct settings s;
    settings_init(&s);
    assert_defaults(&s);
    settings_free(&s);
    assert_empty(&s);
    settings_free(&s); /* a freed struct is empty: freeing again is harmless */
}

static void test_parse_empty_and_null_give_defaults(void **state)
{
    struct settings s;
    parse_ok(&s, "{}");
    assert_defaults(&s);
    settings_free(&s);

    char err[256] = "";
    assert_int_equal(settings_parse(&s, NULL, err, sizeof err), 0);
    assert_defaults(&s);
    settings_free(&s);
}

static void test_top_level_must_be_object(void **state)
{
    expect_refused_obj(json("[]"), "settings: expected an object", "[]");
    expect_refused_obj(json("5"), "settings: expected an object", "5");
    expect_refused_obj(json("\"x\""), "settings: expected an object", "\"x\"");
}

/* The example object of PROTOCOL.md, section 1 "Settings", verbatim. */
static const char protocol_example[] =
    "{\n"
    "  \"autoStart\": true,\n"
    "  \"server\":    {\"host\": \"127.0.0.1\", \"port\": 3001, \"allowedOrigins\": [], "
    "\"allowedHosts\": []},\n"
    "  \"auth\":      {\"secret\": \"\xE2\x80\xA6 (the placeholder, made 32 bytes long)\", "
    "\"algorithm\": \"HS256\", \"publicKey\": "
    "\"\", \"publicKeyPath\": \"\",\n"
    "                \"audience\": \"\", \"issuer\": \"\", \"timeoutSeconds\": 10, "
    "\"leewaySeconds\": 30},\n"
    "  \"heartbeat\": {\"intervalSeconds\": 25, \"timeoutSeconds\": 60},\n"
    "  \"events\":    {\"historySize\": 256},\n"
    "  \"limits\":    {\"maxConnections\": 64, \"maxMessageBytes\": 1048576, "
    "\"commandsPerSecond\": 20,\n"
    "                \"maxOutputBytes\": 1048576, \"maxConcurrentTasks\": 4},\n"
    "  \"tasks\":     {\"test\": {\"command\": \"make\", \"args\": [\"test\"], \"cwd\": \".\", "
    "\"env\": {},\n"
    "                           \"timeoutSeconds\": 600, \"confirm\": false}},\n"
    "  \"editorCommands\": [\"workbench.action.files.saveAll\"],\n"
    "  \"log\":       {\"level\": \"info\"}\n"
    "}\n";

static void test_protocol_example(void **state)
{
    struct settings s;
    parse_ok(&s, protocol_example);
    assert_string_equal(s.secret, "\xE2\x80\xA6 (the placeholder, made 32 bytes long)");
    assert_null(s.public_key); /* "" publicKey and publicKeyPath mean "not set" */
    assert_int_equal(s.tasks_n, 1);
    const struct settings_task *t = &s.tasks[0];
    assert_string_equal(t->name, "test");
    assert_string_equal(t->command, "make");
    assert_int_equal(t->args.n, 1);
    assert_string_equal(t->args.v[0], "test");
    assert_string_equal(t->cwd, ".");
    assert_int_equal(t->env_n, 0);
    assert_int_equal(t->timeout_s, 600);
    assert_int_equal(t->confirm, 0);
    /* Everything else in the example is the default: compare a shallow view
     * with the secret and the task moved aside. */
    struct settings d, rest = s;
    settings_init(&d);
    rest.secret = NULL;
    rest.tasks = NULL;
    rest.tasks_n = 0;
    assert_true(settings_equal(&rest, &d));
    settings_free(&d);
    settings_free(&s);
}

/* Every key at a value of its own, so two keys mapped to one member (or to
 * each other's) show. */
static void test_every_key_non_default(void **state)
{
    struct settings s;
    parse_ok(&s, "{\"autoStart\": false,"
                 " \"server\": {\"host\": \"0.0.0.0\", \"port\": 0,"
                 "   \"allowedOrigins\": [\"https://a.example\", \"https://b.example\"],"
                 "   \"allowedHosts\": [\"box.lan\"]},"
                 " \"auth\": {\"secret\": \"k3y-0123456789abcdef0123456789abcdef\", \"algorithm\": "
                 "\"ES256\","
                 "   \"publicKey\": \"-----BEGIN PUBLIC KEY-----\\nAAA\\n\","
                 "   \"audience\": \"aud\", \"issuer\": \"iss\", \"timeoutSeconds\": 11,"
                 "   \"leewaySeconds\": 0},"
                 " \"heartbeat\": {\"intervalSeconds\": 26, \"timeoutSeconds\": 61},"
                 " \"events\": {\"historySize\": 257},"
                 " \"limits\": {\"maxConnections\": 65, \"maxUnauthenticated\": 33,"
                 "   \"maxMessageBytes\": 1048577, \"commandsPerSecond\": 21,"
                 "   \"maxOutputBytes\": 1048578, \"maxConcurrentTasks\": 5,"
                 "   \"maxQueuedBytes\": 8388609},"
                 " \"editorCommands\": [],"
                 " \"log\": {\"level\": \"debug\"}}");
    assert_int_equal(s.auto_start, 0);
    assert_string_equal(s.host, "0.0.0.0");
    assert_int_equal(s.port, 0);
    assert_int_equal(s.allowed_origins.n, 2);
    assert_string_equal(s.allowed_origins.v[0], "https://a.example");
    assert_string_equal(s.allowed_origins.v[1], "https://b.example");
    assert_int_equal(s.allowed_hosts.n, 1);
    assert_string_equal(s.allowed_hosts.v[0], "box.lan");
    assert_string_equal(s.secret, "k3y-0123456789abcdef0123456789abcdef");
    assert_int_equal(s.alg, AUTH_ALG_ES256);
    assert_string_equal(s.public_key, "-----BEGIN PUBLIC KEY-----\nAAA\n");
    assert_string_equal(s.audience, "aud");
    assert_string_equal(s.issuer, "iss");
    assert_int_equal(s.auth_timeout_s, 11);
    assert_int_equal(s.leeway_s, 0);
    assert_int_equal(s.heartbeat_interval_s, 26);
    assert_int_equal(s.heartbeat_timeout_s, 61);
    assert_int_equal(s.history_size, 257);
    assert_int_equal(s.max_connections, 65);
    assert_int_equal(s.max_unauthenticated, 33);
    assert_int_equal(s.max_message_bytes, 1048577);
    assert_int_equal(s.commands_per_second, 21);
    assert_int_equal(s.max_output_bytes, 1048578);
    assert_int_equal(s.max_concurrent_tasks, 5);
    assert_int_equal(s.max_queued_bytes, 8388609);
    assert_int_equal(s.editor_commands.n, 0); /* [] replaces the default list */
    assert_int_equal(s.log_level, LOG_LEVEL_DEBUG);
    settings_free(&s);
}

static void test_enum_names(void **state)
{
    static const struct {
        const char *json;
        int alg, level;
    } cases[] = {
        {"{\"auth\":{\"algorithm\":\"HS256\"},\"log\":{\"level\":\"error\"}}", AUTH_ALG_HS256,
         LOG_LEVEL_ERROR},
        {"{\"auth\":{\"algorithm\":\"RS256\"},\"log\":{\"level\":\"warn\"}}", AUTH_ALG_RS256,
         LOG_LEVEL_WARN},
        {"{\"auth\":{\"algorithm\":\"ES256\"},\"log\":{\"level\":\"info\"}}", AUTH_ALG_ES256,
         LOG_LEVEL_INFO},
        {"{\"log\":{\"level\":\"debug\"}}", AUTH_ALG_HS256, LOG_LEVEL_DEBUG},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct settings s;
        parse_ok(&s, cases[i].json);
        assert_int_equal(s.alg, cases[i].alg);
        assert_int_equal(s.log_level, cases[i].level);
        settings_free(&s);
    }
    assert_string_equal(settings_log_level_name(LOG_LEVEL_ERROR), "error");
    assert_string_equal(settings_log_level_name(LOG_LEVEL_WARN), "warn");
    assert_string_equal(settings_log_level_name(LOG_LEVEL_INFO), "info");
    assert_string_equal(settings_log_level_name(LOG_LEVEL_DEBUG), "debug");
    assert_string_equal(settings_log_level_name(99), "unknown");
    assert_string_equal(settings_log_level_name(-1), "unknown");
}

/* ------------------------------------------------------------------------ */
/* Integers: every key, every way to be wrong                               */

struct int_key {
    const char *section, *key;
    int64_t min, max;
    size_t offset;
    int wide; /* int64_t member */
};

#define INT_KEY(sec, key, lo, hi, m)                                                               \
    {                                                                                              \
        sec, key, lo, hi, offsetof(struct settings, m), sizeof(((struct settings *)0)->m) == 8     \
    }

static const struct int_key int_keys[] = {
    INT_KEY("server", "port", 0, 65535, port),
    INT_KEY("auth", "timeoutSeconds", 1, 3600, auth_timeout_s),
    INT_KEY("auth", "leewaySeconds", 0, 3600, leeway_s),
    INT_KEY("heartbeat", "intervalSeconds", 1, 3600, heartbeat_interval_s),
    INT_KEY("heartbeat", "timeoutSeconds", 1, 86400, heartbeat_timeout_s),
    INT_KEY("events", "historySize", 16, 100000, history_size),
    INT_KEY("limits", "maxConnections", 1, 100000, max_connections),
    INT_KEY("limits", "maxUnauthenticated", 1, 100000, max_unauthenticated),
    INT_KEY("limits", "maxMessageBytes", 256, 67108864, max_message_bytes),
    INT_KEY("limits", "commandsPerSecond", 1, 10000, commands_per_second),
    INT_KEY("limits", "maxOutputBytes", 1024, 1073741824, max_output_bytes),
    INT_KEY("limits", "maxConcurrentTasks", 1, 64, max_concurrent_tasks),
    INT_KEY("limits", "maxQueuedBytes", 65536, 1073741824, max_queued_bytes),
    INT_KEY("limits", "maxWriteBytes", 1, 67108864, max_write_bytes),
};

static int64_t read_int(const struct settings *s, const struct int_key *k)
{
    const char *p = (const char *)s + k->offset;
    if (k->wide) {
        int64_t v;
        memcpy(&v, p, sizeof v);
        return v;
    }
    int v;
    memcpy(&v, p, sizeof v);
    return v;
}

static void test_int_keys_accept_bounds(void **state)
{
    for (size_t i = 0; i < sizeof int_keys / sizeof int_keys[0]; i++) {
        const struct int_key *k = &int_keys[i];
        const int64_t values[] = {k->min, k->max, k->min + (k->max - k->min) / 3};
        for (size_t j = 0; j < 3; j++) {
            char text[256];
            struct settings s;
            snprintf(text, sizeof text, "{\"%s\":{\"%s\":%" PRId64 "}}", k->section, k->key,
                     values[j]);
            parse_ok(&s, text);
            if (read_int(&s, k) != values[j])
                fail_msg("%s: stored %" PRId64, text, read_int(&s, k));
            settings_free(&s);
        }
    }
}

static void test_int_keys_refuse(void **state)
{
    for (size_t i = 0; i < sizeof int_keys / sizeof int_keys[0]; i++) {
        const struct int_key *k = &int_keys[i];
        char lo[32], hi[32], frac[32], whole_double[32], want[128];
        snprintf(lo, sizeof lo, "%" PRId64, k->min - 1);
        snprintf(hi, sizeof hi, "%" PRId64, k->max + 1);
        snprintf(frac, sizeof frac, "%" PRId64 ".5", k->min);
        /* In range, but a double: json-c would read it as an integer. */
        snprintf(whole_double, sizeof whole_double, "%" PRId64 ".0", k->min);
        const char *bad[] = {lo,
                             hi,
                             frac,
                             whole_double,
                             "1.5",
                             "1e20",
                             "1e2",
                             "10.0",
                             "\"10\"",
                             "true",
                             "[]",
                             "{}",
                             "-1e3",
                             "99999999999999999999",
                             "-99999999999999999999",
                             "9223372036854775807"};
        snprintf(want, sizeof want, "%s.%s: expected an integer from %" PRId64 " to %" PRId64,
                 k->section, k->key, k->min, k->max);
        for (size_t j = 0; j < sizeof bad / sizeof bad[0]; j++) {
            char text[256];
            snprintf(text, sizeof text, "{\"%s\":{\"%s\":%s}}", k->section, k->key, bad[j]);
            expect_refused(text, want);
        }
    }
}

static void test_port_specifics(void **state)
{
    expect_refused("{\"server\":{\"port\":-1}}",
                   "server.port: expected an integer from 0 to 65535");
    expect_refused("{\"server\":{\"port\":65536}}",
                   "server.port: expected an integer from 0 to 65535");
    expect_refused("{\"server\":{\"port\":-65535}}",
                   "server.port: expected an integer from 0 to 65535");
    expect_refused("{\"server\":{\"port\":\"3001\"}}",
                   "server.port: expected an integer from 0 to 65535");
    expect_refused("{\"server\":{\"port\":3001.0}}",
                   "server.port: expected an integer from 0 to 65535");
}

/* ------------------------------------------------------------------------ */
/* Everything else that must be refused                                     */

struct bad_case {
    const char *json, *want;
};

static const struct bad_case bad_cases[] = {
    /* sections */
    {"{\"server\":5}", "server: expected an object"},
    {"{\"auth\":\"x\"}", "auth: expected an object"},
    {"{\"heartbeat\":[]}", "heartbeat: expected an object"},
    {"{\"events\":true}", "events: expected an object"},
    {"{\"limits\":1}", "limits: expected an object"},
    {"{\"tasks\":\"x\"}", "tasks: expected an object"},
    {"{\"tasks\":[]}", "tasks: expected an object"},
    {"{\"log\":\"debug\"}", "log: expected an object"},
    /* booleans */
    {"{\"autoStart\":1}", "autoStart: expected a boolean"},
    {"{\"autoStart\":\"true\"}", "autoStart: expected a boolean"},
    {"{\"autoStart\":[]}", "autoStart: expected a boolean"},
    /* strings */
    {"{\"server\":{\"host\":5}}", "server.host: expected a non-empty string of at most 255 bytes"},
    {"{\"server\":{\"host\":\"\"}}", "server.host: expected a non-empty string of at most 255"},
    {"{\"server\":{\"host\":[\"a\"]}}", "server.host: expected a non-empty string"},
    {"{\"server\":{\"host\":\"a\\u0000b\"}}", "server.host: must not contain NUL characters"},
    {"{\"auth\":{\"audience\":5}}", "auth.audience: expected a string"},
    {"{\"auth\":{\"issuer\":false}}", "auth.issuer: expected a string"},
    {"{\"auth\":{\"issuer\":\"i\\u0000\"}}", "auth.issuer: must not contain NUL characters"},
    {"{\"auth\":{\"publicKey\":5}}", "auth.publicKey: expected a string of at most 65536 bytes"},
    {"{\"auth\":{\"publicKeyPath\":5}}", "auth.publicKeyPath: expected a file path"},
    {"{\"auth\":{\"publicKeyPath\":\"/x\\u0000y\"}}",
     "auth.publicKeyPath: must not contain NUL characters"},
    /* enumerations */
    {"{\"auth\":{\"algorithm\":\"none\"}}", "auth.algorithm: expected one of HS256, RS256, ES256"},
    {"{\"auth\":{\"algorithm\":\"hs256\"}}", "auth.algorithm: expected one of HS256, RS256, ES256"},
    {"{\"auth\":{\"algorithm\":\"HS512\"}}", "auth.algorithm: expected one of HS256, RS256, ES256"},
    {"{\"auth\":{\"algorithm\":\"HS256\\u0000\"}}", "auth.algorithm: must not contain NUL"},
    {"{\"auth\":{\"algorithm\":0}}", "auth.algorithm: expected one of HS256, RS256, ES256"},
    {"{\"log\":{\"level\":\"verbose\"}}", "log.level: expected one of error, warn, info, debug"},
    {"{\"log\":{\"level\":3}}", "log.level: expected one of error, warn, info, debug"},
    {"{\"log\":{\"level\":\"INFO\"}}", "log.level: expected one of error, warn, info, debug"},
    /* string arrays */
    {"{\"server\":{\"allowedOrigins\":\"https://a\"}}",
     "server.allowedOrigins: expected an array of strings"},
    {"{\"server\":{\"allowedOrigins\":[\"a\",\"b\",3]}}",
     "server.allowedOrigins[2]: expected a string"},
    {"{\"server\":{\"allowedOrigins\":[null]}}", "server.allowedOrigins[0]: expected a string"},
    {"{\"server\":{\"allowedOrigins\":[\"a\\u0000\"]}}",
     "server.allowedOrigins[0]: must not contain NUL characters"},
    {"{\"server\":{\"allowedHosts\":{}}}", "server.allowedHosts: expected an array of strings"},
    {"{\"server\":{\"allowedHosts\":[[]]}}", "server.allowedHosts[0]: expected a string"},
    {"{\"editorCommands\":\"workbench.action.files.saveAll\"}",
     "editorCommands: expected an array of strings"},
    {"{\"editorCommands\":[\"a\",{}]}", "editorCommands[1]: expected a string"},
    /* tasks */
    {"{\"tasks\":{\"build\":5}}", "tasks.build: expected an object"},
    {"{\"tasks\":{\"build\":\"make\"}}", "tasks.build: expected an object"},
    {"{\"tasks\":{\"build\":{}}}", "tasks.build.command: expected a non-empty string"},
    {"{\"tasks\":{\"build\":{\"args\":[]}}}", "tasks.build.command: expected a non-empty string"},
    {"{\"tasks\":{\"build\":{\"command\":null}}}",
     "tasks.build.command: expected a non-empty string"},
    {"{\"tasks\":{\"build\":{\"command\":\"\"}}}",
     "tasks.build.command: expected a non-empty string"},
    {"{\"tasks\":{\"build\":{\"command\":5}}}", "tasks.build.command: expected a non-empty string"},
    {"{\"tasks\":{\"build\":{\"command\":[\"make\"]}}}",
     "tasks.build.command: expected a non-empty string"},
    {"{\"tasks\":{\"build\":{\"command\":\"make\\u0000rm\"}}}",
     "tasks.build.command: must not contain NUL characters"},
    {"{\"tasks\":{\"build\":{\"command\":\"make\",\"args\":\"all\"}}}",
     "tasks.build.args: expected an array of strings"},
    {"{\"tasks\":{\"build\":{\"command\":\"make\",\"args\":[\"a\",1]}}}",
     "tasks.build.args[1]: expected a string"},
    {"{\"tasks\":{\"build\":{\"command\":\"make\",\"args\":[\"a\\u0000\"]}}}",
     "tasks.build.args[0]: must not contain NUL characters"},
    {"{\"tasks\":{\"build\":{\"command\":\"make\",\"cwd\":\"/etc\"}}}",
     "tasks.build.cwd: expected a relative path inside the workspace folder"},
    {"{\"tasks\":{\"build\":{\"command\":\"make\",\"cwd\":\"../x\"}}}",
     "tasks.build.cwd: expected a relative path inside the workspace folder"},
    {"{\"tasks\":{\"build\":{\"command\":\"make\",\"cwd\":\"a/../b\"}}}",
     "tasks.build.cwd: expected a relative path inside the workspace folder"},
    {"{\"tasks\":{\"build\":{\"command\":\"make\",\"cwd\":\"..\"}}}",
     "tasks.build.cwd: expected a relative path inside the workspace folder"},
    {"{\"tasks\":{\"build\":{\"command\":\"make\",\"cwd\":\"a/..\"}}}",
     "tasks.build.cwd: expected a relative path inside the workspace folder"},
    {"{\"tasks\":{\"build\":{\"command\":\"make\",\"cwd\":\"a//../\"}}}",
     "tasks.build.cwd: expected a relative path inside the workspace folder"},
    {"{\"tasks\":{\"build\":{\"command\":\"make\",\"cwd\":\"//srv\"}}}",
     "tasks.build.cwd: expected a relative path inside the workspace folder"},
    {"{\"tasks\":{\"build\":{\"command\":\"make\",\"cwd\":5}}}",
     "tasks.build.cwd: expected a string"},
    {"{\"tasks\":{\"build\":{\"command\":\"make\",\"cwd\":\"a\\u0000/..\"}}}",
     "tasks.build.cwd: must not contain NUL characters"},
    {"{\"tasks\":{\"build\":{\"command\":\"make\",\"env\":5}}}",
     "tasks.build.env: expected an object of strings"},
    {"{\"tasks\":{\"build\":{\"command\":\"make\",\"env\":[\"A=1\"]}}}",
     "tasks.build.env: expected an object of strings"},
    {"{\"tasks\":{\"build\":{\"command\":\"make\",\"env\":{\"A\":1}}}}",
     "tasks.build.env.A: expected a string"},
    {"{\"tasks\":{\"build\":{\"command\":\"make\",\"env\":{\"A\":\"x\\u0000\"}}}}",
     "tasks.build.env.A: must not contain NUL characters"},
    {"{\"tasks\":{\"build\":{\"command\":\"make\",\"env\":{\"1X\":\"v\"}}}}",
     "tasks.build.env: invalid variable name \"1X\""},
    {"{\"tasks\":{\"build\":{\"command\":\"make\",\"env\":{\"A-B\":\"v\"}}}}",
     "tasks.build.env: invalid variable name \"A-B\""},
    {"{\"tasks\":{\"build\":{\"command\":\"make\",\"env\":{\"\":\"v\"}}}}",
     "tasks.build.env: invalid variable name \"\""},
    {"{\"tasks\":{\"build\":{\"command\":\"make\",\"env\":{\"A=B\":\"v\"}}}}",
     "tasks.build.env: invalid variable name \"A=B\""},
    {"{\"tasks\":{\"build\":{\"command\":\"make\",\"timeoutSeconds\":0}}}",
     "tasks.build.timeoutSeconds: expected an integer from 1 to 86400"},
    {"{\"tasks\":{\"build\":{\"command\":\"make\",\"timeoutSeconds\":86401}}}",
     "tasks.build.timeoutSeconds: expected an integer from 1 to 86400"},
    {"{\"tasks\":{\"build\":{\"command\":\"make\",\"timeoutSeconds\":1.5}}}",
     "tasks.build.timeoutSeconds: expected an integer from 1 to 86400"},
    {"{\"tasks\":{\"build\":{\"command\":\"make\",\"timeoutSeconds\":60.0}}}",
     "tasks.build.timeoutSeconds: expected an integer from 1 to 86400"},
    {"{\"tasks\":{\"build\":{\"command\":\"make\",\"timeoutSeconds\":\"60\"}}}",
     "tasks.build.timeoutSeconds: expected an integer from 1 to 86400"},
    {"{\"tasks\":{\"build\":{\"command\":\"make\",\"confirm\":\"yes\"}}}",
     "tasks.build.confirm: expected a boolean"},
    {"{\"tasks\":{\"build\":{\"command\":\"make\",\"confirm\":1}}}",
     "tasks.build.confirm: expected a boolean"},
    {"{\"tasks\":{\"bad name\":{\"command\":\"make\"}}}", "tasks: invalid task name \"bad name\""},
    {"{\"tasks\":{\"\":{\"command\":\"make\"}}}", "tasks: invalid task name \"\""},
    {"{\"tasks\":{\"a/b\":{\"command\":\"make\"}}}", "tasks: invalid task name \"a/b\""},
    {"{\"tasks\":{\"caf\xC3\xA9\":{\"command\":\"make\"}}}", "tasks: invalid task name \"caf??\""},
    {"{\"tasks\":{\"x\\n\\\"y\":{\"command\":\"make\"}}}", "tasks: invalid task name \"x??y\""},
    {"{\"tasks\":{\"0123456789012345678901234567890123456789012345678901234567890123X\":{"
     "\"command\":\"make\"}}}",
     "tasks: invalid task name \"0123456789012345678901234567890123456789012345678901234567890123."
     "..\""},
    /* a later key is checked even when earlier ones are fine */
    {"{\"autoStart\":true,\"server\":{\"port\":80},\"log\":{\"level\":\"loud\"}}",
     "log.level: expected one of"},
    {"{\"tasks\":{\"a\":{\"command\":\"x\"},\"b\":{\"command\":\"y\",\"cwd\":\"/\"}}}",
     "tasks.b.cwd: expected a relative path"},
};

static void test_bad_values_refused(void **state)
{
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++)
        expect_refused(bad_cases[i].json, bad_cases[i].want);
}

static void test_empty_secret_refused(void **state)
{
    expect_refused("{\"auth\":{\"secret\":\"\"}}", "auth.secret: must not be empty");
    expect_refused("{\"auth\":{\"secret\":5}}", "auth.secret: expected a string");
    /* Short keys can be guessed offline from any token they signed. */
    expect_refused("{\"auth\":{\"secret\":\"k\"}}", "auth.secret: must be at least 32 bytes");
    expect_refused("{\"auth\":{\"secret\":\"0123456789abcdef0123456789abcde\"}}",
                   "auth.secret: must be at least 32 bytes");
}

/* The secret's own refusals, and refusals of its neighbours, never show it. */
static void test_secret_never_in_errors(void **state)
{
    static const struct bad_case cases[] = {
        {"{\"auth\":{\"secret\":\"" SECRET_MARK "\\u0000tail\"}}",
         "auth.secret: must not contain NUL characters"},
        {"{\"auth\":{\"secret\":[\"" SECRET_MARK "\"]}}", "auth.secret: expected a string"},
        {"{\"auth\":{\"secret\":{\"" SECRET_MARK "\":1}}}", "auth.secret: expected a string"},
        {"{\"auth\":{\"secret\":\"" SECRET_MARK "\",\"algorithm\":\"" SECRET_MARK "\"}}",
         "auth.algorithm: expected one of"},
        {"{\"auth\":{\"secret\":\"" SECRET_MARK "\",\"leewaySeconds\":-1}}",
         "auth.leewaySeconds: expected an integer"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_refused_obj(json(cases[i].json), cases[i].want, cases[i].json);

    /* A numeric secret is refused without echoing the number. */
    struct settings s;
    char err[256] = "";
    assert_int_equal(parse_text(&s, "{\"auth\":{\"secret\":987654321}}", err, sizeof err), -1);
    assert_null(strstr(err, "987654321"));
}

static void test_arrays_capped(void **state)
{
    json_object *o = json_object_new_object(), *server = json_object_new_object();
    json_object *arr = json_object_new_array();
    for (int i = 0; i < 1024; i++)
        json_object_array_add(arr, json_object_new_string("https://x.example"));
    json_object_object_add(server, "allowedOrigins", arr);
    json_object_object_add(o, "server", server);
    struct settings s;
    char err[256] = "";
    assert_int_equal(settings_parse(&s, o, err, sizeof err), 0);
    assert_int_equal(s.allowed_origins.n, 1024);
    settings_free(&s);

    json_object_array_add(arr, json_object_new_string("https://x.example"));
    expect_refused_obj(o, "server.allowedOrigins: expected at most 1024 entries", "1025 origins");

    o = json_object_new_object();
    json_object *env = json_object_new_object(), *task = json_object_new_object();
    json_object *tasks = json_object_new_object();
    for (int i = 0; i < 1025; i++) {
        char name[16];
        snprintf(name, sizeof name, "V%d", i);
        json_object_object_add(env, name, json_object_new_string("v"));
    }
    json_object_object_add(task, "command", json_object_new_string("make"));
    json_object_object_add(task, "env", env);
    json_object_object_add(tasks, "t", task);
    json_object_object_add(o, "tasks", tasks);
    expect_refused_obj(o, "tasks.t.env: expected at most 1024 variables", "1025 variables");
}

static void test_tasks_capped(void **state)
{
    json_object *o = json_object_new_object(), *tasks = json_object_new_object();
    for (int i = 0; i < 256; i++) {
        char name[16];
        json_object *t = json_object_new_object();
        json_object_object_add(t, "command", json_object_new_string("true"));
        snprintf(name, sizeof name, "t%d", i);
        json_object_object_add(tasks, name, t);
    }
    json_object_object_add(o, "tasks", tasks);
    struct settings s;
    char err[256] = "";
    assert_int_equal(settings_parse(&s, o, err, sizeof err), 0);
    assert_int_equal(s.tasks_n, 256);
    assert_string_equal(s.tasks[255].name, "t255");
    settings_free(&s);

    json_object *t = json_object_new_object();
    json_object_object_add(t, "command", json_object_new_string("true"));
    json_object_object_add(tasks, "one-too-many", t);
    expect_refused_obj(o, "tasks: expected at most 256 tasks", "257 tasks");
}

static void test_long_strings(void **state)
{
    char host[257];
    memset(host, 'h', sizeof host - 1);
    host[256] = '\0';
    json_object *o = json_object_new_object(), *server = json_object_new_object();
    json_object_object_add(server, "host", json_object_new_string_len(host, 255));
    json_object_object_add(o, "server", server);
    struct settings s;
    char err[256] = "";
    assert_int_equal(settings_parse(&s, o, err, sizeof err), 0);
    assert_int_equal(strlen(s.host), 255);
    settings_free(&s);
    json_object_object_add(server, "host", json_object_new_string_len(host, 256));
    expect_refused_obj(o, "server.host: expected a non-empty string of at most 255 bytes",
                       "256-byte host");

    size_t big = 65537;
    char *pem = malloc(big + 1);
    assert_non_null(pem);
    memset(pem, 'k', big);
    pem[big] = '\0';
    o = json_object_new_object();
    json_object *auth = json_object_new_object();
    json_object_object_add(auth, "publicKey", json_object_new_string_len(pem, (int)big - 1));
    json_object_object_add(o, "auth", auth);
    assert_int_equal(settings_parse(&s, o, err, sizeof err), 0);
    assert_int_equal(strlen(s.public_key), big - 1);
    settings_free(&s);
    json_object_object_add(auth, "publicKey", json_object_new_string_len(pem, (int)big));
    expect_refused_obj(o, "auth.publicKey: expected a string of at most 65536 bytes",
                       "65537-byte key");
    free(pem);
}

/* ------------------------------------------------------------------------ */
/* null, unknown keys, tasks                                                */

static void test_null_is_absent(void **state)
{
    struct settings s;
    parse_ok(&s, "{\"autoStart\":null,\"server\":null,\"heartbeat\":null,\"events\":null,"
                 "\"limits\":{\"maxConnections\":null,\"maxMessageBytes\":null},"
                 "\"auth\":{\"secret\":null,\"algorithm\":null,\"publicKey\":null,"
                 "\"publicKeyPath\":null,\"audience\":null,\"timeoutSeconds\":null},"
                 "\"tasks\":null,\"editorCommands\":null,\"log\":{\"level\":null}}");
    assert_defaults(&s);
    settings_free(&s);

    /* A task or variable set to null is absent too; its neighbours stay. */
    parse_ok(&s, "{\"tasks\":{\"gone\":null,\"kept\":{\"command\":\"make\",\"args\":null,"
                 "\"cwd\":null,\"timeoutSeconds\":null,\"confirm\":null,"
                 "\"env\":{\"A\":null,\"B\":\"b\"}}}}");
    assert_int_equal(s.tasks_n, 1);
    assert_string_equal(s.tasks[0].name, "kept");
    assert_string_equal(s.tasks[0].cwd, ".");
    assert_int_equal(s.tasks[0].args.n, 0);
    assert_int_equal(s.tasks[0].timeout_s, 600);
    assert_int_equal(s.tasks[0].confirm, 0);
    assert_int_equal(s.tasks[0].env_n, 1);
    assert_string_equal(s.tasks[0].env[0].name, "B");
    assert_null(settings_find_task(&s, "gone"));
    settings_free(&s);
}

static void test_unknown_keys_ignored(void **state)
{
    struct settings s;
    parse_ok(&s, "{\"future\":{\"x\":1},\"trace\":\"verbose\","
                 "\"server\":{\"port\":4000,\"tls\":{\"cert\":5}},"
                 "\"auth\":{\"kid\":[],\"secret\":\"k3y-0123456789abcdef0123456789abcdef\"},"
                 "\"limits\":{\"maxBananas\":-1},"
                 "\"tasks\":{\"b\":{\"command\":\"c\",\"shell\":true,\"group\":\"build\"}},"
                 "\"log\":{\"file\":3,\"level\":\"warn\"}}");
    assert_int_equal(s.port, 4000);
    assert_string_equal(s.secret, "k3y-0123456789abcdef0123456789abcdef");
    assert_int_equal(s.tasks_n, 1);
    assert_string_equal(s.tasks[0].command, "c");
    assert_int_equal(s.log_level, LOG_LEVEL_WARN);
    assert_int_equal(s.max_connections, 64);
    settings_free(&s);
}

static void test_tasks_parsed_in_order(void **state)
{
    struct settings s;
    parse_ok(&s, "{\"tasks\":{"
                 "\"zeta\":{\"command\":\"z\"},"
                 "\"alpha\":{\"command\":\"a\",\"args\":[\"-x\",\"\",\"y z\"],\"cwd\":\"sub/dir\","
                 "  \"env\":{\"PATH\":\"/bin\",\"_A1\":\"\",\"b\":\"=\"},\"timeoutSeconds\":86400,"
                 "  \"confirm\":true},"
                 "\"mid.dle:v-1_x\":{\"command\":\"m\",\"cwd\":\"\",\"timeoutSeconds\":1}}}");
    assert_int_equal(s.tasks_n, 3);
    assert_string_equal(s.tasks[0].name, "zeta");
    assert_string_equal(s.tasks[1].name, "alpha");
    assert_string_equal(s.tasks[2].name, "mid.dle:v-1_x");

    const struct settings_task *z = &s.tasks[0];
    assert_string_equal(z->command, "z");
    assert_int_equal(z->args.n, 0);
    assert_string_equal(z->cwd, ".");
    assert_int_equal(z->env_n, 0);
    assert_int_equal(z->timeout_s, 600);
    assert_int_equal(z->confirm, 0);

    const struct settings_task *a = settings_find_task(&s, "alpha");
    assert_ptr_equal(a, &s.tasks[1]);
    assert_int_equal(a->args.n, 3);
    assert_string_equal(a->args.v[0], "-x");
    assert_string_equal(a->args.v[1], "");
    assert_string_equal(a->args.v[2], "y z");
    assert_string_equal(a->cwd, "sub/dir");
    assert_int_equal(a->env_n, 3);
    assert_string_equal(a->env[0].name, "PATH");
    assert_string_equal(a->env[0].value, "/bin");
    assert_string_equal(a->env[1].name, "_A1");
    assert_string_equal(a->env[1].value, "");
    assert_string_equal(a->env[2].name, "b");
    assert_string_equal(a->env[2].value, "=");
    assert_int_equal(a->timeout_s, 86400);
    assert_int_equal(a->confirm, 1);

    assert_string_equal(s.tasks[2].cwd, "."); /* "" is the workspace folder */
    assert_int_equal(s.tasks[2].timeout_s, 1);

    assert_null(settings_find_task(&s, "ALPHA"));
    assert_null(settings_find_task(&s, "alph"));
    assert_null(settings_find_task(&s, NULL));
    settings_free(&s);
}

/* agents and defaultAgent: parsed, copied deep, refused with the key named. */
static void test_agents_parsed_and_checked(void **state)
{
    (void)state;
    struct settings s, c;
    parse_ok(&s, "{\"agents\":{"
                 "\"claude\":{\"command\":\"npx\",\"args\":[\"claude-agent-acp\"],"
                 "  \"env\":{\"ANTHROPIC_BASE_URL\":\"http://127.0.0.1:9\"}},"
                 "\"copilot\":{\"type\":\"vscode-lm\",\"family\":\"gpt-4o\"}},"
                 "\"defaultAgent\":\"copilot\",\"limits\":{\"maxConversations\":3}}");
    assert_int_equal(s.agents_n, 2);
    assert_int_equal(s.agents[0].type, AGENT_TYPE_ACP);
    assert_string_equal(s.agents[0].command, "npx");
    assert_string_equal(s.agents[0].args.v[0], "claude-agent-acp");
    assert_string_equal(s.agents[0].env[0].value, "http://127.0.0.1:9");
    assert_int_equal(s.agents[1].type, AGENT_TYPE_VSCODE_LM);
    assert_null(s.agents[1].command);
    assert_string_equal(s.agents[1].vendor, "");
    assert_string_equal(s.agents[1].family, "gpt-4o");
    assert_int_equal(s.max_conversations, 3);
    assert_int_equal(s.max_agent_turns, 4);
    assert_ptr_equal(settings_default_agent(&s), &s.agents[1]);
    assert_int_equal(settings_copy(&c, &s), 0);
    settings_free(&s);
    assert_string_equal(c.agents[0].env[0].name, "ANTHROPIC_BASE_URL");
    assert_string_equal(settings_default_agent(&c)->name, "copilot");
    settings_free(&c);

    parse_ok(&s, "{\"agents\":{\"a\":{\"command\":\"x\"}}}");
    assert_string_equal(settings_default_agent(&s)->name, "a"); /* the first one */
    settings_free(&s);
    parse_ok(&s, "{}");
    assert_null(settings_default_agent(&s));
    settings_free(&s);

    static const struct {
        const char *json, *err;
    } bad[] = {
        {"{\"agents\":[]}", "agents: expected an object"},
        {"{\"agents\":{\"a b\":{\"command\":\"x\"}}}", "agents: invalid agent name"},
        {"{\"agents\":{\"a\":{}}}", "agents.a.command: expected a non-empty string"},
        {"{\"agents\":{\"a\":{\"type\":\"shell\",\"command\":\"x\"}}}", "agents.a.type"},
        {"{\"agents\":{\"a\":{\"type\":\"vscode-lm\",\"command\":\"x\"}}}",
         "agents.a: a vscode-lm agent is the editor's model"},
        {"{\"agents\":{\"a\":{\"command\":\"x\",\"env\":{\"1X\":\"v\"}}}}",
         "agents.a.env: invalid variable name"},
        {"{\"agents\":{\"a\":{\"command\":\"x\"}},\"defaultAgent\":\"b\"}",
         "defaultAgent: \"b\" is not one of agents"},
        {"{\"defaultAgent\":7}", "defaultAgent: expected a string"},
        {"{\"limits\":{\"maxAgentTurns\":0}}", "limits.maxAgentTurns"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[512] = "";
        if (parse_text(&s, bad[i].json, err, sizeof err) == 0)
            fail_msg("accepted %s", bad[i].json);
        if (!strstr(err, bad[i].err))
            fail_msg("%s: error \"%s\" does not say \"%s\"", bad[i].json, err, bad[i].err);
        settings_free(&s);
    }
}

static void test_task_cwd_accepted(void **state)
{
    static const char *const ok[] = {"sub/dir", ".",    "./a", "a..b", "...",
                                     "a/.../b", "a/b/", "..a", "a.."};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        char text[256];
        struct settings s;
        snprintf(text, sizeof text, "{\"tasks\":{\"t\":{\"command\":\"c\",\"cwd\":\"%s\"}}}",
                 ok[i]);
        parse_ok(&s, text);
        assert_string_equal(s.tasks[0].cwd, ok[i]);
        settings_free(&s);
    }
}

static void test_strv_contains(void **state)
{
    struct settings s;
    parse_ok(&s,
             "{\"server\":{\"allowedOrigins\":[\"https://a.example\",\"vscode-webview://x\"]}}");
    assert_true(settings_strv_contains(&s.allowed_origins, "https://a.example"));
    assert_true(settings_strv_contains(&s.allowed_origins, "vscode-webview://x"));
    assert_false(settings_strv_contains(&s.allowed_origins, "https://a.example/"));
    assert_false(settings_strv_contains(&s.allowed_origins, "https://A.example"));
    assert_false(settings_strv_contains(&s.allowed_hosts, "https://a.example"));
    assert_false(settings_strv_contains(&s.allowed_origins, NULL));
    assert_true(settings_strv_contains(&s.editor_commands, "workbench.action.files.saveAll"));
    settings_free(&s);
}

/* ------------------------------------------------------------------------ */
/* publicKeyPath                                                            */

static const char pem_text[] = "-----BEGIN PUBLIC KEY-----\n"
                               "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE-PEM-BODY-MARKER\n"
                               "-----END PUBLIC KEY-----\n";

static int parse_with_key_path(struct settings *s, const char *alg, const char *path, char *err,
                               size_t errlen)
{
    json_object *o = json_object_new_object(), *auth = json_object_new_object();
    json_object_object_add(auth, "algorithm", json_object_new_string(alg));
    json_object_object_add(auth, "publicKeyPath", json_object_new_string(path));
    json_object_object_add(o, "auth", auth);
    int rc = settings_parse(s, o, err, errlen);
    json_object_put(o);
    return rc;
}

static void test_public_key_path_read(void **state)
{
    char path[512], err[512] = "";
    struct settings s;
    write_text(*state, "key.pem", pem_text, path, sizeof path);
    assert_int_equal(parse_with_key_path(&s, "ES256", path, err, sizeof err), 0);
    assert_int_equal(s.alg, AUTH_ALG_ES256);
    assert_string_equal(s.public_key, pem_text);
    assert_int_equal(settings_check_server(&s, err, sizeof err), 0);
    settings_free(&s);

    /* procfs files claim size 0: the reader must read to EOF, not trust stat. */
    if (access("/proc/self/status", R_OK) == 0) {
        assert_int_equal(parse_with_key_path(&s, "RS256", "/proc/self/status", err, sizeof err), 0);
        assert_true(strncmp(s.public_key, "Name:", 5) == 0);
        assert_true(strlen(s.public_key) > 64);
        settings_free(&s);
    }
}

static void expect_key_path_refused(const char *path, const char *want)
{
    char err[512] = "";
    struct settings s;
    assert_int_equal(parse_with_key_path(&s, "RS256", path, err, sizeof err), -1);
    if (!strstr(err, "auth.publicKeyPath: cannot read") || !strstr(err, path) || !strstr(err, want))
        fail_msg("error \"%s\" for %s lacks \"%s\"", err, path, want);
    /* Never a byte of what the file holds. */
    assert_null(strstr(err, "PEM-BODY-MARKER"));
    assert_null(strstr(err, "BEGIN"));
    assert_empty(&s);
}

static void test_public_key_path_errors(void **state)
{
    const char *dir = *state;
    char path[512];

    snprintf(path, sizeof path, "%s/missing.pem", dir);
    expect_key_path_refused(path, "No such file or directory");

    expect_key_path_refused(dir, "not a regular file");

    write_text(dir, "empty.pem", "", path, sizeof path);
    expect_key_path_refused(path, "empty");

    size_t big = 65537;
    char *data = malloc(big);
    assert_non_null(data);
    for (size_t i = 0; i < big; i++)
        data[i] = pem_text[i % (sizeof pem_text - 1)];
    write_file(dir, "big.pem", data, big, path, sizeof path);
    free(data);
    expect_key_path_refused(path, "larger than 65536 bytes");

    static const char with_nul[] = "-----BEGIN PUBLIC KEY-----\n\0PEM-BODY-MARKER\n";
    write_file(dir, "nul.pem", with_nul, sizeof with_nul - 1, path, sizeof path);
    expect_key_path_refused(path, "not a PEM text file");

    if (geteuid() != 0) { /* root reads a 0000 file anyway */
        write_text(dir, "locked.pem", pem_text, path, sizeof path);
        assert_int_equal(chmod(path, 0), 0);
        expect_key_path_refused(path, "Permission denied");
    }
}

static void test_public_key_and_path_exclusive(void **state)
{
    char path[512], err[512] = "";
    struct settings s;
    write_text(*state, "key.pem", pem_text, path, sizeof path);
    json_object *o = json_object_new_object(), *auth = json_object_new_object();
    json_object_object_add(auth, "publicKey", json_object_new_string(pem_text));
    json_object_object_add(auth, "publicKeyPath", json_object_new_string(path));
    json_object_object_add(o, "auth", auth);
    assert_int_equal(settings_parse(&s, o, err, sizeof err), -1);
    assert_non_null(strstr(err, "auth.publicKeyPath: set either"));
    assert_null(strstr(err, "PEM-BODY-MARKER"));
    assert_empty(&s);

    /* An empty publicKey beside a path is the contract's "not set". */
    json_object_object_add(auth, "publicKey", json_object_new_string(""));
    assert_int_equal(settings_parse(&s, o, err, sizeof err), 0);
    assert_string_equal(s.public_key, pem_text);
    settings_free(&s);
    json_object_put(o);
}

/* ------------------------------------------------------------------------ */
/* copy, and a refused update leaving the current settings alone           */

static const char rich_settings[] =
    "{\"autoStart\":false,\"server\":{\"host\":\"::1\",\"port\":4100,"
    "\"allowedOrigins\":[\"https://a\"],\"allowedHosts\":[\"h1\",\"h2\"]},"
    "\"auth\":{\"secret\":\"abc-0123456789abcdef0123456789abcdef\",\"audience\":\"aud\","
    "\"publicKey\":\"PEM\"},"
    "\"limits\":{\"maxQueuedBytes\":70000},"
    "\"tasks\":{\"b\":{\"command\":\"make\",\"args\":[\"-j2\"],\"cwd\":\"src\","
    "\"env\":{\"CC\":\"gcc\",\"X\":\"1\"},\"confirm\":true},\"t\":{\"command\":\"ctest\"}},"
    "\"editorCommands\":[\"a\",\"b\"],\"log\":{\"level\":\"debug\"}}";

static void test_equal_helper_detects_differences(void **state)
{
    /* settings_equal backs the copy and rollback tests: prove it can say no. */
    struct settings a, b;
    parse_ok(&a, rich_settings);
    parse_ok(&b, rich_settings);
    assert_true(settings_equal(&a, &b));
    b.tasks[0].env_n = 0;
    assert_false(settings_equal(&a, &b));
    b.tasks[0].env_n = a.tasks[0].env_n;
    b.tasks[0].env[1].value[0] = '2';
    assert_false(settings_equal(&a, &b));
    b.tasks[0].env[1].value[0] = '1';
    b.max_queued_bytes++;
    assert_false(settings_equal(&a, &b));
    b.max_queued_bytes--;
    b.allowed_hosts.v[1][1] = '3';
    assert_false(settings_equal(&a, &b));
    b.allowed_hosts.v[1][1] = '2';
    assert_true(settings_equal(&a, &b));
    settings_free(&a);
    settings_free(&b);
}

static void test_copy_equal_and_independent(void **state)
{
    struct settings a, b;
    parse_ok(&a, rich_settings);
    assert_int_equal(settings_copy(&b, &a), 0);
    assert_true(settings_equal(&a, &b));
    /* No shared pointers: every string of the copy is its own. */
    assert_ptr_not_equal(a.host, b.host);
    assert_ptr_not_equal(a.secret, b.secret);
    assert_ptr_not_equal(a.public_key, b.public_key);
    assert_ptr_not_equal(a.tasks, b.tasks);
    assert_ptr_not_equal(a.tasks[0].env, b.tasks[0].env);
    assert_ptr_not_equal(a.tasks[0].args.v[0], b.tasks[0].args.v[0]);
    assert_ptr_not_equal(a.editor_commands.v, b.editor_commands.v);

    b.host[0] = 'X';
    b.tasks[0].args.v[0][0] = 'X';
    b.tasks[0].env[0].value[0] = 'X';
    b.allowed_hosts.v[0][0] = 'X';
    assert_string_equal(a.host, "::1");
    assert_string_equal(a.tasks[0].args.v[0], "-j2");
    assert_string_equal(a.tasks[0].env[0].value, "gcc");
    assert_string_equal(a.allowed_hosts.v[0], "h1");

    /* The copy outlives the original (ASan/valgrind catch a shared pointer). */
    settings_free(&a);
    assert_string_equal(b.secret, "abc-0123456789abcdef0123456789abcdef");
    assert_string_equal(b.tasks[1].command, "ctest");
    assert_string_equal(b.editor_commands.v[1], "b");
    settings_free(&b);

    /* Defaults (NULL secret and public key, no tasks) copy too. */
    settings_init(&a);
    assert_int_equal(settings_copy(&b, &a), 0);
    assert_true(settings_equal(&a, &b));
    assert_null(b.secret);
    assert_null(b.tasks);
    settings_free(&a);
    settings_free(&b);
}

static void test_refusal_leaves_current_untouched(void **state)
{
    struct settings current, snapshot, next;
    parse_ok(&current, rich_settings);
    assert_int_equal(settings_copy(&snapshot, &current), 0);
    char *host = current.host;

    char err[256] = "";
    /* Valid keys first, the bad one last: nothing of the valid part may leak through. */
    assert_int_equal(parse_text(&next,
                                "{\"autoStart\":true,\"server\":{\"port\":9},"
                                "\"tasks\":{\"n\":{\"command\":\"x\"}},\"log\":{\"level\":\"?\"}}",
                                err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "log.level"));
    assert_empty(&next);
    assert_ptr_equal(current.host, host);
    assert_true(settings_equal(&current, &snapshot));

    /* And a good update goes to the new struct only. */
    parse_ok(&next, "{\"server\":{\"port\":9}}");
    assert_int_equal(next.port, 9);
    assert_int_equal(current.port, 4100);
    assert_true(settings_equal(&current, &snapshot));

    settings_free(&next);
    settings_free(&current);
    settings_free(&snapshot);
}

/* ------------------------------------------------------------------------ */
/* settings_load_file                                                       */

static void expect_load_refused(const char *path, const char *want)
{
    struct settings s;
    char err[1024] = "";
    assert_int_equal(settings_load_file(&s, path, err, sizeof err), -1);
    if (!strstr(err, path) || !strstr(err, want))
        fail_msg("error \"%s\" lacks the path or \"%s\"", err, want);
    assert_null(strstr(err, SECRET_MARK));
    assert_empty(&s);
}

static void test_load_file_ok(void **state)
{
    char path[512], err[512] = "";
    struct settings s;
    write_text(*state, "ok.json", protocol_example, path, sizeof path);
    assert_int_equal(settings_load_file(&s, path, err, sizeof err), 0);
    assert_int_equal(s.port, 3001);
    assert_string_equal(s.tasks[0].command, "make");
    settings_free(&s);

    /* A byte order mark and surrounding whitespace are fine. */
    write_text(*state, "bom.json", "\xEF\xBB\xBF\n {\"server\":{\"port\":3002}} \r\n\t", path,
               sizeof path);
    assert_int_equal(settings_load_file(&s, path, err, sizeof err), 0);
    assert_int_equal(s.port, 3002);
    settings_free(&s);
}

/* A config file that holds auth.secret must be the user's own and private:
 * whoever reads it mints tokens, whoever writes it replaces the key. */
static void test_load_file_modes(void **state)
{
    char path[512], err[512] = "";
    struct settings s;
    write_text(*state, "modes.json", "{\"auth\":{\"secret\":\"" SECRET_MARK "\"}}", path,
               sizeof path);
    static const mode_t bad[] = {0640, 0604, 0620, 0602, 0644};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(chmod(path, bad[i]), 0);
        expect_load_refused(path, "chmod 600");
    }
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(settings_load_file(&s, path, err, sizeof err), 0);
    settings_free(&s);
    /* Without a secret the file may be shared. */
    write_text(*state, "public.json", "{\"server\":{\"port\":3003}}", path, sizeof path);
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(settings_load_file(&s, path, err, sizeof err), 0);
    assert_int_equal(s.port, 3003);
    settings_free(&s);
}

static void test_load_file_errors(void **state)
{
    const char *dir = *state;
    char path[512];

    write_text(dir, "bad.json", "{\n  \"auth\": {\"secret\": \"" SECRET_MARK "\"},\n  port: 1\n}",
               path, sizeof path);
    expect_load_refused(path, "line 3");

    write_text(dir, "comma.json", "{\"server\":{\"port\":1},}", path, sizeof path);
    expect_load_refused(path, "line 1");

    write_text(dir, "trailing.json", "{\"server\":{}}\n{}\n", path, sizeof path);
    expect_load_refused(path, "line 2, column 1");

    write_text(dir, "garbage.json", "{} x", path, sizeof path);
    expect_load_refused(path, "line 1, column 4");

    static const char nul[] = "{}\0{}";
    write_file(dir, "nul.json", nul, sizeof nul - 1, path, sizeof path);
    expect_load_refused(path, "unexpected data after the JSON value");

    write_text(dir, "cut.json", "{\"server\":{\"port\":", path, sizeof path);
    expect_load_refused(path, "line 1");

    write_text(dir, "empty.json", "", path, sizeof path);
    expect_load_refused(path, "unexpected end");

    write_text(dir, "array.json", "[]", path, sizeof path);
    expect_load_refused(path, "expected a JSON object at the top level");

    write_text(dir, "null.json", "null", path, sizeof path);
    expect_load_refused(path, "expected a JSON object at the top level");

    write_text(dir, "number.json", "42\n", path, sizeof path);
    expect_load_refused(path, "expected a JSON object at the top level");

    write_text(dir, "latin1.json", "{\"server\":{\"host\":\"caf\xE9\"}}", path, sizeof path);
    expect_load_refused(path, "line 1");

    write_text(dir, "range.json",
               "{\"auth\":{\"secret\":\"" SECRET_MARK "\"},\"limits\":{\"maxConnections\":0}}",
               path, sizeof path);
    expect_load_refused(path, "limits.maxConnections: expected an integer from 1 to 100000");

    snprintf(path, sizeof path, "%s/missing.json", dir);
    expect_load_refused(path, "No such file or directory");

    expect_load_refused(dir, "not a regular file");

    size_t big = 1024 * 1024 + 1;
    char *data = malloc(big);
    assert_non_null(data);
    memset(data, ' ', big);
    data[0] = '{';
    data[big - 1] = '}';
    write_file(dir, "big.json", data, big, path, sizeof path);
    free(data);
    expect_load_refused(path, "larger than 1048576 bytes");
}

/* ------------------------------------------------------------------------ */
/* settings_check_server                                                    */

static void expect_server_check(const char *text, const char *want)
{
    struct settings s;
    char err[256] = "";
    parse_ok(&s, text);
    int rc = settings_check_server(&s, err, sizeof err);
    if (!want) {
        if (rc != 0)
            fail_msg("%s: refused: %s", text, err);
    } else if (rc != -1 || strcmp(err, want) != 0) {
        fail_msg("%s: rc %d, error \"%s\", expected \"%s\"", text, rc, err, want);
    }
    settings_free(&s);
}

static void test_check_server(void **state)
{
    expect_server_check("{}", "auth.secret is not set");
    expect_server_check("{\"auth\":{\"publicKey\":\"PEM\"}}", "auth.secret is not set");
    expect_server_check("{\"auth\":{\"secret\":\"k3y-0123456789abcdef0123456789abcdef\"}}", NULL);
    expect_server_check(
        "{\"auth\":{\"secret\":\"k3y-0123456789abcdef0123456789abcdef\",\"algorithm\":\"HS256\"}}",
        NULL);
    expect_server_check("{\"auth\":{\"algorithm\":\"RS256\"}}",
                        "auth.publicKey or auth.publicKeyPath is required for RS256");
    expect_server_check("{\"auth\":{\"algorithm\":\"RS256\",\"secret\":\"k3y-"
                        "0123456789abcdef0123456789abcdef\",\"publicKey\":\"\"}}",
                        "auth.publicKey or auth.publicKeyPath is required for RS256");
    expect_server_check("{\"auth\":{\"algorithm\":\"ES256\"}}",
                        "auth.publicKey or auth.publicKeyPath is required for ES256");
    expect_server_check("{\"auth\":{\"algorithm\":\"RS256\",\"publicKey\":\"PEM\"}}", NULL);
    expect_server_check("{\"auth\":{\"algorithm\":\"ES256\",\"publicKey\":\"PEM\"}}", NULL);

    /* Structs built by hand (not through parse) get the same answers. */
    struct settings s;
    char err[256] = "";
    settings_init(&s);
    s.secret = strdup("");
    assert_int_equal(settings_check_server(&s, err, sizeof err), -1);
    assert_string_equal(err, "auth.secret is not set");
    s.alg = 7;
    assert_int_equal(settings_check_server(&s, err, sizeof err), -1);
    settings_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_defaults),
        cmocka_unit_test(test_parse_empty_and_null_give_defaults),
        cmocka_unit_test(test_top_level_must_be_object),
        cmocka_unit_test(test_protocol_example),
        cmocka_unit_test(test_every_key_non_default),
        cmocka_unit_test(test_enum_names),
        cmocka_unit_test(test_int_keys_accept_bounds),
        cmocka_unit_test(test_int_keys_refuse),
        cmocka_unit_test(test_port_specifics),
        cmocka_unit_test(test_bad_values_refused),
        cmocka_unit_test(test_empty_secret_refused),
        cmocka_unit_test_setup_teardown(test_load_file_modes, tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test(test_secret_never_in_errors),
        cmocka_unit_test(test_arrays_capped),
        cmocka_unit_test(test_tasks_capped),
        cmocka_unit_test(test_long_strings),
        cmocka_unit_test(test_null_is_absent),
        cmocka_unit_test(test_unknown_keys_ignored),
        cmocka_unit_test(test_tasks_parsed_in_order),
        cmocka_unit_test(test_agents_parsed_and_checked),
        cmocka_unit_test(test_task_cwd_accepted),
        cmocka_unit_test(test_strv_contains),
        cmocka_unit_test_setup_teardown(test_public_key_path_read, tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_public_key_path_errors, tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_public_key_and_path_exclusive, tmpdir_setup,
                                        tmpdir_teardown),
        cmocka_unit_test(test_equal_helper_detects_differences),
        cmocka_unit_test(test_copy_equal_and_independent),
        cmocka_unit_test(test_refusal_leaves_current_untouched),
        cmocka_unit_test_setup_teardown(test_load_file_ok, tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_load_file_errors, tmpdir_setup, tmpdir_teardown),
        cmocka_unit_test(test_check_server),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
