/*
 * settings: the `companion` settings section, parsed and validated.
 *
 * One shape for every source: `initialize` and
 * `workspace/didChangeConfiguration` from the editor, the `--config` JSON file
 * of `serve`. A value of the wrong type or out of range is refused as a whole,
 * with a message naming the key, and the caller's current settings stay as
 * they were. Unknown keys are ignored (VS Code sends its own).
 */
#ifndef COMPANION_SETTINGS_H
#define COMPANION_SETTINGS_H

#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

/* events.taskOutput: whether read subscribers see the last output of tasks
 * other users (token subjects) started, or only of their own. */
enum settings_task_output { TASK_OUTPUT_ALL = 0, TASK_OUTPUT_OWN };
enum settings_log_level { LOG_LEVEL_ERROR = 0, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

/* Shortest auth.secret accepted (bytes). */
#define SETTINGS_SECRET_MIN 32

struct settings_strv {
    char **v; /* each malloc'd */
    size_t n;
};

struct settings_env {
    char *name;
    char *value;
};

struct settings_task {
    char *name;
    char *command;
    struct settings_strv args;
    char *cwd; /* relative to the workspace folder, "." by default */
    struct settings_env *env;
    size_t env_n;
    int timeout_s; /* 1..86400, default 600 */
    int confirm;
};

/* agents.<name>.type: an Agent Client Protocol agent the helper starts, or
 * the editor's own language model (through the extension). */
enum settings_agent_type { AGENT_TYPE_ACP = 0, AGENT_TYPE_VSCODE_LM };

struct settings_agent {
    char *name;
    int type;      /* enum settings_agent_type, default acp */
    char *command; /* acp: the program (NULL for vscode-lm) */
    struct settings_strv args;
    struct settings_env *env;
    size_t env_n;
    char *vendor; /* vscode-lm: model selector, "" = any */
    char *family;
};

struct settings {
    int auto_start;

    char *host; /* default "127.0.0.1" */
    int port;   /* 0..65535, 0 = ephemeral; default 3001 */
    struct settings_strv allowed_origins;
    struct settings_strv allowed_hosts;

    char *secret;          /* NULL when none was given; never logged */
    int alg;               /* enum auth_alg */
    char *public_key;      /* PEM text: publicKey, or the contents of publicKeyPath */
    char *public_key_path; /* publicKeyPath as given, or NULL: never served */
    char *audience;        /* "" = not checked */
    char *issuer;          /* "" = not checked */
    int auth_timeout_s;    /* 1..3600, default 10 */
    int leeway_s;          /* 0..3600, default 30 */

    int heartbeat_interval_s; /* 1..3600, default 25 */
    int heartbeat_timeout_s;  /* 1..86400, default 60 */

    int history_size;       /* 16..100000, default 256 */
    int task_output;        /* enum settings_task_output, default all */
    int approval_timeout_s; /* 5..86400, default 300: an unanswered approval is a deny */

    int max_connections;       /* 1..100000, default 64 */
    int max_unauthenticated;   /* 1..100000, default 32: connections still authenticating */
    int64_t max_message_bytes; /* 256..67108864, default 1048576 */
    int commands_per_second;   /* 1..10000, default 20 */
    int64_t max_output_bytes;  /* 1024..1073741824, default 1048576 */
    int max_concurrent_tasks;  /* 1..64, default 4 */
    int64_t max_queued_bytes;  /* 65536..1073741824, default 8388608: per-connection outbound */
    int64_t max_write_bytes;   /* 1..67108864, default 1048576: fs.write's decoded content */

    struct settings_task *tasks;
    size_t tasks_n;

    struct settings_agent *agents;
    size_t agents_n;
    char *default_agent;       /* NULL: the first of agents */
    int max_conversations;     /* 1..1000, default 32 */
    int max_agent_turns;       /* 1..64, default 4: turns running at once */
    int agent_turn_timeout_s;  /* 10..86400, default 1800 */
    int agent_start_timeout_s; /* 1..600, default 60: spawn to session ready */
    int agent_unwatched_s;     /* 5..86400, default 120: a turn nobody follows is cancelled */

    struct settings_strv editor_commands; /* default ["workbench.action.files.saveAll"] */

    int log_level; /* enum settings_log_level, default info */
};

/* Fills s with the contract's defaults (secret NULL). */
void settings_init(struct settings *s);
/* Frees everything s owns (the secret is wiped first); s may be reused after settings_init. */
void settings_free(struct settings *s);
/* Deep copy; returns 0 or -1 (out of memory). */
int settings_copy(struct settings *dst, const struct settings *src);

/* Parses a whole `companion` section over the defaults into *out (which the
 * caller then owns). `obj` must be a JSON object; absent keys take defaults.
 * Returns 0, or -1 with err set to a message that names the key, for example
 * "limits.maxConnections: expected an integer from 1 to 100000". On error *out
 * is left initialised-empty (safe to settings_free). Reads publicKeyPath. */
int settings_parse(struct settings *out, json_object *obj, char *err, size_t errlen);

/* Loads a JSON file and parses it like settings_parse. */
int settings_load_file(struct settings *out, const char *path, char *err, size_t errlen);

/* Checks what starting the server needs (a usable key for the configured
 * algorithm). Returns 0 or -1 with err. */
int settings_check_server(const struct settings *s, char *err, size_t errlen);

const struct settings_task *settings_find_task(const struct settings *s, const char *name);
const struct settings_agent *settings_find_agent(const struct settings *s, const char *name);
/* defaultAgent, else the first agent, else NULL. */
const struct settings_agent *settings_default_agent(const struct settings *s);
const char *settings_agent_type_name(int type);
int settings_strv_contains(const struct settings_strv *v, const char *str);
/* env as "NAME=value" strings for a child (NULL-terminated, each malloc'd);
 * NULL when out of memory. Freed with settings_env_strings_free. */
char **settings_env_strings(const struct settings_env *env, size_t n);
void settings_env_strings_free(char **v);
const char *settings_log_level_name(int level);

#endif
