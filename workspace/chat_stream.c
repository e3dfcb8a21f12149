/*
 * chat_stream: an agent's streamed chunks into whole chat messages (see
 * chat_stream.h). The stream owns the text it holds, the pieces ready to
 * be taken and what it remembers of tool calls and the last plan.
 *
 * How it works: message text goes into `pend` (from `off` on). After each
 * chunk the text up to the last paragraph boundary outside a fence is cut
 * into blocks of at most CHAT_STREAM_BLOCK_MAX code points; so is any text
 * past that size. Other chunks become blocks of their own. Blocks wait in
 * `q` until chat_stream_take joins as many as fit into one message. `fence`
 * is the fence state at `off`, so a block that starts inside a fence
 * reopens it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "workspace/chat_impl.h"
#include "workspace/chat_stream.h"
#include "workspace/utf8.h"

#define FENCE_LINE_MAX 64 /* bytes of an opening fence line kept for reopening */
#define FENCE_RUN_MAX  16 /* longest run of fence characters kept */
#define CLOSE_ROOM     (FENCE_RUN_MAX + 1)
#define TITLE_MAX_CP   LINE_MAX_CP
#define PLAN_MAX       CHAT_LIST_MAX /* plan entries shown */

enum block_kind { B_TEXT, B_TOOL, B_PLAN, B_PERMISSION, B_END };

struct block {
    enum block_kind kind;
    char *text;
    size_t len, cps;
    const char *join; /* what goes between the block before and this one */
    long long approval;
    /* B_TEXT cut inside a fence: bytes (and code points) of the fence line
     * reopened at its start and closed at its end, which a message that
     * holds both sides of the cut leaves out. */
    size_t reopen, reopen_cps, close, close_cps;
};

struct fence {
    int open;
    char ch;  /* '`' or '~' */
    size_t n; /* length of the run that opened it */
    char line[FENCE_LINE_MAX + 1];
};

struct tool {
    char *id;
    char *title; /* the last title the call had (an update may omit it); NULL for none */
    int shown_running, finished;
};

struct chat_stream {
    struct sb pend; /* message text; pend.p[off..len) not yet released */
    size_t off;
    struct fence fence;    /* at off */
    const char *text_join; /* join before the next text block, after a text block */
    struct block *q;
    size_t nq, capq, q_bytes;
    size_t dropped; /* code points dropped (bound on memory), not told yet */
    struct tool tools[CHAT_STREAM_TOOLS];
    size_t ntools;
    char *last_plan;
    int ended;
};

/* ------------------------------------------------------------------------ */
/* Blocks */

static void block_free(struct block *b)
{
    free(b->text);
}

/* Appends a block that takes the malloc'd text t (freed on failure);
 * returns the block, or NULL. */
static struct block *push_block(struct chat_stream *cs, enum block_kind kind, char *t,
                                long long approval)
{
    if (!t)
        return NULL;
    if (cs->nq == cs->capq) {
        size_t cap = cs->capq ? cs->capq * 2 : 8;
        struct block *q = realloc(cs->q, cap * sizeof *q);
        if (!q) {
            free(t);
            return NULL;
        }
        cs->q = q;
        cs->capq = cap;
    }
    const struct block *prev = cs->nq ? &cs->q[cs->nq - 1] : NULL;
    const char *join = "\n\n";
    if (prev && prev->kind == B_TEXT && kind == B_TEXT)
        join = cs->text_join;
    else if (prev && prev->kind == B_TOOL && kind == B_TOOL)
        join = "\n";
    size_t len = strlen(t);
    cs->q[cs->nq] = (struct block){kind, t, len, chat_cp_count(t, len), join, approval, 0, 0, 0, 0};
    cs->q_bytes += len;
    return &cs->q[cs->nq++];
}

static int push(struct chat_stream *cs, enum block_kind kind, char *t, long long approval)
{
    return push_block(cs, kind, t, approval) ? 0 : -1;
}

static void remove_at(struct chat_stream *cs, size_t i)
{
    cs->q_bytes -= cs->q[i].len;
    block_free(&cs->q[i]);
    memmove(cs->q + i, cs->q + i + 1, (cs->nq - i - 1) * sizeof *cs->q);
    cs->nq--;
}

/* Keeps at most CHAT_STREAM_KEEP bytes waiting: the oldest blocks go,
 * approval requests last (they wait for an answer). */
static void bound(struct chat_stream *cs)
{
    while (cs->q_bytes > CHAT_STREAM_KEEP && cs->nq > 1) {
        size_t i = 0;
        while (i < cs->nq - 1 && cs->q[i].kind == B_PERMISSION)
            i++;
        cs->dropped += cs->q[i].cps;
        remove_at(cs, i);
    }
}

/* ------------------------------------------------------------------------ */
/* Fences and lines */

static int blank(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\t')
            return 0;
    return 1;
}

/* A fence line: up to 3 spaces, then 3 or more ` or ~; *ch and *n say
 * which and how many; *rest where the run ends. */
static int fence_run(const char *s, size_t len, char *ch, size_t *n, size_t *rest)
{
    size_t i = 0;
    while (i < len && i < 3 && s[i] == ' ')
        i++;
    if (i == len || (s[i] != '`' && s[i] != '~'))
        return 0;
    size_t j = i;
    while (j < len && s[j] == s[i])
        j++;
    if (j - i < 3)
        return 0;
    *ch = s[i];
    *n = j - i;
    *rest = j;
    return 1;
}

/* The fence state after the whole line s[0..len) (no '\n'). */
static void fence_step(struct fence *f, const char *s, size_t len)
{
    char ch;
    size_t n, rest;
    if (!fence_run(s, len, &ch, &n, &rest))
        return;
    if (f->open) {
        if (ch == f->ch && n >= f->n && blank(s + rest, len - rest))
            f->open = 0;
        return;
    }
    /* "```a```" is inline code, not a fence. */
    if (ch == '`' && memchr(s + rest, '`', len - rest))
        return;
    f->open = 1;
    f->ch = ch;
    f->n = n > FENCE_RUN_MAX ? FENCE_RUN_MAX : n;
    size_t keep = len <= FENCE_LINE_MAX && utf8_is_valid(s, len) ? len : 0;
    if (keep) {
        memcpy(f->line, s, keep);
        f->line[keep] = '\0';
    } else {
        memset(f->line, ch, f->n);
        f->line[f->n] = '\0';
    }
}

static void put_close(struct sb *b, const struct fence *f)
{
    char run[FENCE_RUN_MAX + 1];
    memset(run, f->ch, f->n);
    run[f->n] = '\0';
    chat_sb_puts(b, "\n");
    chat_sb_puts(b, run);
}

static size_t line_end(const char *s, size_t i, size_t limit)
{
    const char *nl = memchr(s + i, '\n', limit - i);
    return nl ? (size_t)(nl - s) : limit;
}

/* ------------------------------------------------------------------------ */
/* Cutting message text into blocks */

enum cut_mode {
    M_PARA,  /* pend[off..limit) ends at a paragraph boundary: all of it goes */
    M_FORCE, /* all of pend[off..limit) goes, the last line as it is */
    M_OVER,  /* cut only what does not fit in a block; the last line may grow */
};

/* Cuts one block from pend[off..limit). Returns 1 when off moved, 0 when
 * nothing was cut (M_OVER and it fits), -1 on OOM. */
static int cut_block(struct chat_stream *cs, size_t limit, enum cut_mode mode)
{
    const char *p = cs->pend.p;
    struct fence f = cs->fence;
    size_t i = cs->off;
    if (!f.open) /* blank lines between paragraphs are the join's */
        while (i < limit) {
            size_t e = line_end(p, i, limit);
            if (e == limit && mode == M_OVER)
                break;
            if (!blank(p + i, e - i))
                break;
            i = e < limit ? e + 1 : limit;
        }
    size_t start = i;
    size_t budget = CHAT_STREAM_BLOCK_MAX - CLOSE_ROOM -
                    (f.open ? chat_cp_count(f.line, strlen(f.line)) + 1 : 0);
    struct fence cur = f, at_para = f, at_line = f;
    size_t cps = 0, para = 0, para_cps = 0, line = 0, seen_text = 0;
    int fits = 1;
    while (i < limit) {
        size_t e = line_end(p, i, limit);
        int complete = e < limit || mode != M_OVER;
        size_t lcps = chat_cp_count(p + i, e - i) + (e < limit);
        if (cps + lcps > budget) {
            fits = 0;
            break;
        }
        cps += lcps;
        int was_open = cur.open;
        if (complete)
            fence_step(&cur, p + i, e - i);
        int is_blank = blank(p + i, e - i);
        i = e < limit ? e + 1 : limit;
        if (!complete)
            break;
        line = i;
        at_line = cur;
        if (!was_open && !cur.open && is_blank && seen_text) {
            para = i;
            para_cps = cps;
            at_para = cur;
        }
        seen_text |= !is_blank;
    }
    size_t cut;
    struct fence at;
    const char *join = "\n\n";
    if (fits) {
        if (mode == M_OVER && start == cs->off)
            return 0;
        cut = mode == M_OVER ? start : limit;
        at = mode == M_OVER ? f : cur;
    } else if (para && para_cps >= budget / 2) {
        cut = para;
        at = at_para;
    } else if (line > start) {
        cut = line;
        at = at_line;
        join = "\n";
    } else {
        /* One line longer than a block: cut it at a character. */
        size_t w = start, n = 0;
        while (w < limit && n < budget) {
            w += chat_seq_len((unsigned char)p[w]);
            n++;
        }
        /* From start: a flag's halves are counted from a character's start. */
        cut = chat_cluster_cut(p, start, w);
        at = f;
        join = "";
    }
    /* The block: reopened fence, text without its trailing line ends,
     * closed fence. Nothing when only blank. */
    size_t end = cut;
    while (end > start && (p[end - 1] == '\n' || (!at.open && chat_is_space(p[end - 1]))))
        end--;
    int r = 1;
    if (end > start && !blank(p + start, end - start)) {
        struct sb b = {0};
        if (f.open) {
            chat_sb_puts(&b, f.line);
            chat_sb_puts(&b, "\n");
        }
        size_t reopen = b.len;
        chat_sb_putn(&b, p + start, end - start);
        size_t body = b.len;
        if (at.open)
            put_close(&b, &at);
        size_t close = b.len - body;
        struct block *k = push_block(cs, B_TEXT, chat_sb_finish(&b), 0);
        r = k ? 1 : -1;
        if (k) {
            k->reopen = reopen;
            k->reopen_cps = reopen ? chat_cp_count(k->text, reopen) : 0;
            k->close = close;
            k->close_cps = close ? chat_cp_count(k->text + body, close) : 0;
        }
    }
    cs->text_join = join;
    cs->off = cut;
    cs->fence = at;
    return r;
}

/* The end of the last blank line outside a fence that follows text, in the
 * complete lines of pend from off; off when there is none. */
static size_t para_end(const struct chat_stream *cs)
{
    const char *p = cs->pend.p;
    size_t len = cs->pend.len, i = cs->off, best = cs->off;
    struct fence f = cs->fence;
    int seen_text = 0;
    while (i < len) {
        size_t e = line_end(p, i, len);
        if (e == len)
            break;
        int was_open = f.open;
        fence_step(&f, p + i, e - i);
        int is_blank = blank(p + i, e - i);
        if (!was_open && !f.open && is_blank && seen_text)
            best = e + 1;
        seen_text |= !is_blank;
        i = e + 1;
    }
    return best;
}

/* Releases what is ready (force: everything held), then forgets the bytes
 * released. */
static int pump(struct chat_stream *cs, int force)
{
    int r = 0;
    if (!cs->pend.p) /* no text yet */
        return 0;
    if (force) {
        while (r >= 0 && cs->off < cs->pend.len)
            r = cut_block(cs, cs->pend.len, M_FORCE);
    } else {
        size_t para = para_end(cs);
        while (r >= 0 && cs->off < para)
            r = cut_block(cs, para, M_PARA);
        while (r >= 0 &&
               chat_cp_count(cs->pend.p + cs->off, cs->pend.len - cs->off) > CHAT_STREAM_BLOCK_MAX)
            if ((r = cut_block(cs, cs->pend.len, M_OVER)) == 0)
                break;
    }
    if (cs->off) {
        memmove(cs->pend.p, cs->pend.p + cs->off, cs->pend.len - cs->off + 1);
        cs->pend.len -= cs->off;
        cs->off = 0;
    }
    return r < 0 ? -1 : 0;
}

/* Appends agent text to pend: repaired, "\r" dropped, unsafe characters
 * but '\n' and '\t' as '?'. */
static int add_text(struct chat_stream *cs, const char *s, size_t len)
{
    char *fixed = NULL;
    if (!utf8_is_valid(s, len)) {
        fixed = utf8_repair(s, len);
        if (!fixed)
            return -1;
        s = fixed;
        len = strlen(fixed);
    }
    for (size_t i = 0; i < len;) {
        uint32_t c;
        size_t n = chat_cp_at(s + i, &c);
        if (c != '\n' && c != '\t' && c != '\r' && chat_cp_unsafe(c))
            chat_sb_putn(&cs->pend, "?", 1);
        else if (c != '\r')
            chat_sb_putn(&cs->pend, s + i, n);
        i += n;
    }
    free(fixed);
    if (cs->pend.oom) {
        cs->pend.oom = 0;
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Chunks */

static const char *jstr(json_object *o, const char *key)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

static struct tool *tool_find(struct chat_stream *cs, const char *id)
{
    for (size_t i = 0; i < cs->ntools; i++)
        if (strcmp(cs->tools[i].id, id) == 0)
            return &cs->tools[i];
    return NULL;
}

static struct tool *tool_add(struct chat_stream *cs, const char *id)
{
    char *copy = strdup(id);
    if (!copy)
        return NULL;
    if (cs->ntools == CHAT_STREAM_TOOLS) {
        free(cs->tools[0].id);
        free(cs->tools[0].title);
        memmove(cs->tools, cs->tools + 1, (CHAT_STREAM_TOOLS - 1) * sizeof *cs->tools);
        cs->ntools--;
    }
    struct tool *t = &cs->tools[cs->ntools++];
    *t = (struct tool){copy, NULL, 0, 0};
    return t;
}

static int tool_line(struct chat_stream *cs, const char *what, const char *title)
{
    if (pump(cs, 1))
        return -1;
    struct sb b = {0};
    /* Agents often title a call "Running: npm test" already. */
    size_t wl = strlen(what);
    if (!(title && strncasecmp(title, what, wl) == 0))
        chat_sb_puts(&b, what);
    chat_sb_cleans(&b, title && *title ? title : "a tool", TITLE_MAX_CP);
    return push(cs, B_TOOL, chat_sb_finish(&b), 0);
}

static int add_tool(struct chat_stream *cs, json_object *c)
{
    const char *id = jstr(c, "toolCallId"), *title = jstr(c, "title"), *st = jstr(c, "status");
    if (!id || !*id)
        return 1;
    int running = !st || !strcmp(st, "pending") || !strcmp(st, "in_progress");
    int failed = st && !strcmp(st, "failed");
    if (!running && !failed && strcmp(st, "completed") != 0)
        return 1;
    struct tool *t = tool_find(cs, id);
    if (!t && !(t = tool_add(cs, id)))
        return -1;
    /* ACP updates carry only what changed: a call keeps its title. */
    if (title && *title && (!t->title || strcmp(t->title, title) != 0)) {
        char *copy = strdup(title);
        if (!copy)
            return -1;
        free(t->title);
        t->title = copy;
    }
    title = t->title;
    if (t->finished)
        return 0;
    if (running && !t->shown_running) {
        t->shown_running = 1;
        return tool_line(cs, "Running: ", title);
    }
    if (!running)
        t->finished = 1;
    return failed ? tool_line(cs, "Failed: ", title) : 0;
}

static int add_plan(struct chat_stream *cs, json_object *c)
{
    json_object *entries;
    if (!json_object_object_get_ex(c, "entries", &entries) ||
        !json_object_is_type(entries, json_type_array))
        return 1;
    size_t n = json_object_array_length(entries), shown = 0;
    struct sb b = {0};
    chat_sb_puts(&b, "Plan:");
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(entries, i);
        const char *content = json_object_is_type(e, json_type_object) ? jstr(e, "content") : NULL;
        if (!content)
            continue;
        if (++shown > PLAN_MAX)
            continue;
        const char *st = jstr(e, "status");
        chat_sb_printf(&b, "\n%zu. ", shown);
        chat_sb_cleans(&b, content, LINE_MAX_CP);
        if (st && !strcmp(st, "completed"))
            chat_sb_puts(&b, " (done)");
        else if (st && !strcmp(st, "in_progress"))
            chat_sb_puts(&b, " (in progress)");
    }
    if (shown > PLAN_MAX)
        chat_sb_printf(&b, "\n…and %zu more", shown - PLAN_MAX);
    char *t = chat_sb_finish(&b);
    if (!t)
        return -1;
    if (!shown || (cs->last_plan && !strcmp(cs->last_plan, t))) {
        free(t);
        return shown ? 0 : 1;
    }
    char *copy = strdup(t);
    if (!copy) {
        free(t);
        return -1;
    }
    free(cs->last_plan);
    cs->last_plan = copy;
    for (size_t i = 0; i < cs->nq; i++)
        if (cs->q[i].kind == B_PLAN) {
            remove_at(cs, i);
            break;
        }
    if (pump(cs, 1)) {
        free(t);
        return -1;
    }
    return push(cs, B_PLAN, t, 0);
}

/* A positive approval number, or 0. */
static long long approval_id(json_object *c)
{
    json_object *v;
    if (!json_object_object_get_ex(c, "approvalId", &v) || !json_object_is_type(v, json_type_int))
        return 0;
    long long id = (long long)json_object_get_int64(v);
    return id > 0 ? id : 0;
}

static int add_permission(struct chat_stream *cs, json_object *c)
{
    static const char *const opts[][2] = {
        {"allow_once", "yes"}, {"allow_always", "always"}, {"deny", "no"}};
    long long id = approval_id(c);
    if (!id)
        return 1;
    json_object *o = NULL;
    int offered[3] = {1, 1, 1}, n = 3;
    if (json_object_object_get_ex(c, "options", &o) && json_object_is_type(o, json_type_array)) {
        n = 0;
        for (size_t k = 0; k < 3; k++) {
            offered[k] = 0;
            for (size_t i = 0; i < json_object_array_length(o); i++) {
                json_object *v = json_object_array_get_idx(o, i);
                if (json_object_is_type(v, json_type_string) &&
                    !strcmp(json_object_get_string(v), opts[k][0]))
                    offered[k] = 1;
            }
            n += offered[k];
        }
        if (!n)
            return 1;
    }
    if (pump(cs, 1))
        return -1;
    struct sb b = {0};
    chat_sb_printf(&b, "Approval %lld: ", id);
    chat_sb_cleans(&b, jstr(c, "title") ? jstr(c, "title") : "the agent asks", TITLE_MAX_CP);
    chat_sb_puts(&b, "\nReply ");
    for (int k = 0, put = 0; k < 3; k++) {
        if (!offered[k])
            continue;
        const char *sep = !put ? "" : put == n - 1 ? " or " : ", ";
        chat_sb_printf(&b, "%s%s %lld", sep, opts[k][1], id);
        put++;
    }
    chat_sb_puts(&b, ".");
    return push(cs, B_PERMISSION, chat_sb_finish(&b), id);
}

static int add_resolved(struct chat_stream *cs, json_object *c)
{
    long long id = approval_id(c);
    if (!id)
        return 1;
    for (size_t i = 0; i < cs->nq; i++)
        if (cs->q[i].kind == B_PERMISSION && cs->q[i].approval == id) {
            remove_at(cs, i);
            break;
        }
    return 0;
}

static int add_chunk(struct chat_stream *cs, json_object *chunk)
{
    if (!cs || cs->ended || !json_object_is_type(chunk, json_type_object))
        return 1;
    const char *kind = jstr(chunk, "kind");
    if (!kind)
        return 1;
    if (!strcmp(kind, "message")) {
        json_object *v;
        if (!json_object_object_get_ex(chunk, "text", &v) ||
            !json_object_is_type(v, json_type_string))
            return 1;
        if (add_text(cs, json_object_get_string(v), (size_t)json_object_get_string_len(v)))
            return -1;
        return pump(cs, 0);
    }
    if (!strcmp(kind, "tool"))
        return add_tool(cs, chunk);
    if (!strcmp(kind, "plan"))
        return add_plan(cs, chunk);
    if (!strcmp(kind, "permission"))
        return add_permission(cs, chunk);
    if (!strcmp(kind, "permission_resolved"))
        return add_resolved(cs, chunk);
    return 1; /* thought, and kinds this version does not know */
}

int chat_stream_add(struct chat_stream *cs, json_object *chunk)
{
    int r = add_chunk(cs, chunk);
    if (cs)
        bound(cs);
    return r;
}

int chat_stream_end(struct chat_stream *cs, const char *stop_reason, const char *message)
{
    if (!cs || cs->ended)
        return 0;
    if (pump(cs, 1))
        return -1;
    cs->fence.open = 0;
    static const char *const lines[][2] = {
        {"end_turn", "Done."},
        {"cancelled", "Cancelled."},
        {"max_tokens", "Stopped: the agent hit its token limit."},
        {"max_turn_requests", "Stopped: the agent hit its limit of steps for one turn."},
        {"refusal", "Stopped: the agent refused to go on."},
    };
    struct sb b = {0};
    const char *line = NULL;
    for (size_t i = 0; stop_reason && i < sizeof lines / sizeof lines[0]; i++)
        if (!strcmp(stop_reason, lines[i][0]))
            line = lines[i][1];
    int has_msg = message && *message;
    if (stop_reason && !strcmp(stop_reason, "error")) {
        chat_sb_puts(&b, has_msg ? "The agent failed: " : "The agent failed.");
        if (has_msg)
            chat_sb_cleans(&b, message, MESSAGE_MAX);
        has_msg = 0;
    } else if (line) {
        chat_sb_puts(&b, line);
    } else {
        chat_sb_puts(&b, "Ended (");
        chat_sb_cleans(&b, stop_reason ? stop_reason : "no reason given", ECHO_MAX);
        chat_sb_puts(&b, ").");
    }
    if (has_msg) {
        chat_sb_puts(&b, " ");
        chat_sb_cleans(&b, message, MESSAGE_MAX);
    }
    if (push(cs, B_END, chat_sb_finish(&b), 0))
        return -1;
    cs->ended = 1;
    bound(cs);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Taking */

char *chat_stream_take(struct chat_stream *cs)
{
    if (!cs || !cs->nq)
        return NULL;
    struct sb b = {0};
    size_t cps = 0, i = 0;
    if (cs->dropped) {
        chat_sb_printf(&b, "[… %zu characters not shown]", cs->dropped);
        cps = chat_cp_count(b.p ? b.p : "", b.len);
    }
    for (; i < cs->nq; i++) {
        const struct block *k = &cs->q[i];
        const char *join = i ? k->join : b.len ? "\n" : "";
        size_t jcps = chat_cp_count(join, strlen(join));
        /* Both sides of a cut inside a fence: the text as it came. */
        const struct block *prev = i ? &cs->q[i - 1] : NULL;
        int rejoin = prev && prev->close && k->reopen && k->kind == B_TEXT;
        size_t skip = rejoin ? k->reopen : 0;
        size_t add = jcps + k->cps - (rejoin ? prev->close_cps + k->reopen_cps : 0);
        if (i && cps + add > CHAT_PART_MAX)
            break;
        if (rejoin)
            b.len -= prev->close;
        chat_sb_puts(&b, join);
        chat_sb_putn(&b, k->text + skip, k->len - skip);
        cps += add;
    }
    char *t = chat_sb_finish(&b);
    if (!t)
        return NULL;
    cs->dropped = 0;
    while (i--)
        remove_at(cs, 0);
    return t;
}

int chat_stream_pending(const struct chat_stream *cs)
{
    return cs && cs->nq > 0;
}

int chat_stream_finished(const struct chat_stream *cs)
{
    return cs && cs->ended && cs->nq == 0;
}

struct chat_stream *chat_stream_new(void)
{
    struct chat_stream *cs = calloc(1, sizeof *cs);
    if (cs)
        cs->text_join = "\n\n";
    return cs;
}

void chat_stream_free(struct chat_stream *cs)
{
    if (!cs)
        return;
    free(cs->pend.p);
    for (size_t i = 0; i < cs->nq; i++)
        block_free(&cs->q[i]);
    free(cs->q);
    for (size_t i = 0; i < cs->ntools; i++) {
        free(cs->tools[i].id);
        free(cs->tools[i].title);
    }
    free(cs->last_plan);
    free(cs);
}
