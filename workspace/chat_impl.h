/*
 * chat_impl: what the chat modules share: the growing string every reply
 * is written into, the UTF-8 helpers that keep replies clean, the limits of
 * what a reply shows, and the words' names. Internal to chat_text.c,
 * chat_parse.c, chat_format.c and chat_stream.c.
 */
#ifndef COMPANION_CHAT_IMPL_H
#define COMPANION_CHAT_IMPL_H

#include <stddef.h>
#include <stdint.h>

#define ECHO_MAX      40  /* code points of user input echoed in a reply */
#define MESSAGE_MAX   200 /* code points of a helper's error message */
#define SUMMARY_MAX   60  /* code points of a commit summary */
#define NAME_MAX_CP   60  /* code points of a task name or author */
#define PATH_MAX_CP   200 /* code points of a path in a list */
#define LINE_MAX_CP   200 /* code points of a line of task output */
#define DIAG_MAX_CP   120 /* code points of a diagnostic message */
#define TASK_OK_LINES 3   /* lines of output shown after a success */
#define LOG_DEFAULT   10  /* "log" without n: fewer than git.log's 20, for a phone */
#define LOG_MAX       100
#define WORD_BUF      32 /* longer words cannot be near any known word */
#define CMP_MAX_CP    64 /* longer strings are not compared for suggestions */

#define HINT "Send \"help\" for the list."

/* Growing string: every formatter writes into one and hands its buffer on. */
struct sb {
    char *p;
    size_t len, cap;
    int oom;
};

void chat_sb_putn(struct sb *b, const char *s, size_t n);
void chat_sb_puts(struct sb *b, const char *s);
void chat_sb_printf(struct sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The text (malloc'd, NULL on OOM); b is reset. */
char *chat_sb_finish(struct sb *b);
/* Bytes of the UTF-8 sequence that starts with c. */
size_t chat_seq_len(unsigned char c);
/* The code point at s (valid UTF-8) and its length. */
size_t chat_cp_at(const char *s, uint32_t *cp);
size_t chat_cp_count(const char *s, size_t len);
/* Control and bidi-override characters, which could break or reorder a reply. */
int chat_cp_unsafe(uint32_t c);
/* s repaired to UTF-8, unsafe characters replaced, cut at max_cp code points. */
void chat_sb_clean(struct sb *b, const char *s, size_t len, size_t max_cp);
void chat_sb_cleans(struct sb *b, const char *s, size_t max_cp);
/* s in quotes, cleaned, at most ECHO_MAX code points. */
void chat_sb_quoted(struct sb *b, const char *s, size_t len);

/* A cut of valid UTF-8 text s at byte `end` (a code point boundary, s[end]
 * readable) moved back, not below `floor`, so an accent, skin tone, emoji
 * joiner or flag half stays with its character (chat_format.c). */
size_t chat_cluster_cut(const char *s, size_t floor, size_t end);

/* ASCII whitespace: what separates words. */
int chat_is_space(char c);

/* chat_parse.c: the command a word stands for, and its name as listed
 * (NULL for no word). */
const char *chat_word_command(const char *word);
const char *chat_word_name(const char *word);

#endif
