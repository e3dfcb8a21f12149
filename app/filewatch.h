/*
 * filewatch: `file.changed` events, {folder, path, change:
 * "created"|"changed"|"deleted"}, for files changed in the workspace
 * folders by anyone, the helper's own fs.write and fs.delete included.
 *
 * One inotify instance over every folder's tree (its own, apart from the
 * git watcher's, which watches repositories only), bounded and on the loop:
 * - at most a quarter of fs.inotify.max_user_watches directories (256 to
 *   16384; the git watcher takes up to half), walked a few hundred at a time
 *   on a timer so a large tree never holds the loop; beyond the cap a
 *   warning is logged once and deeper changes are not seen;
 * - never watched: `.git` directories, symbolic links, the helper's private
 *   folders; never reported: fs.write's temporary files, private files;
 * - bursts are coalesced: events are held FILEWATCH_WINDOW_MS and merged per
 *   path (created then deleted is nothing, deleted then created is changed);
 *   past FILEWATCH_MAX_BATCH paths in one window the rest of a folder's
 *   changes become one {folder, path: ".", change: "changed", overflow:
 *   true} ("many things changed: list again"), as does an inotify queue
 *   overflow.
 * Limits, as inotify has them: a file renamed into place is reported as
 * "changed" (inotify does not say whether it replaced one); files written in
 * a directory before its watch was added are not reported; network file
 * systems report only this machine's changes. The helper's own writes are
 * exact: filewatch_note() says what they did.
 *
 * Ownership: filewatch_start returns a watcher freed by filewatch_stop; the
 * env's members are borrowed for its life.
 */
#ifndef COMPANION_FILEWATCH_H
#define COMPANION_FILEWATCH_H

#include <json-c/json.h>
#include <stddef.h>

#define FILEWATCH_WINDOW_MS 250
#define FILEWATCH_MAX_BATCH 64

struct filewatch;
struct logger;
struct loop;
struct workspace;

struct filewatch_env {
    struct logger *log;
    const struct workspace *ws;
    struct loop *loop;
    /* file.changed, payload owned by the callee. */
    void (*publish)(void *ud, json_object *payload);
    void *publish_ud;
};

/* Watches every folder of env->ws; NULL when there is none or inotify is
 * not available (logged). */
struct filewatch *filewatch_start(const struct filewatch_env *env);
void filewatch_stop(struct filewatch *fw);

/* The helper changed `path` (folder-relative, normalized) in the folder
 * named `folder` (NULL: the first): `change` is what it did, announced in
 * the next batch whatever inotify reports for it. fw may be NULL: then the
 * event is published at once. */
void filewatch_note(struct filewatch *fw, const struct filewatch_env *env, const char *folder,
                    const char *path, const char *change);

#endif
