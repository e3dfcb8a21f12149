/**
 * The words that answer with a WhatsApp document: `file <path>` (the file,
 * read with the helper's `fs.read`, so confined like any read and capped)
 * and `diff all` / `diff file [path]` (the whole `git.diff` patch as a .diff
 * document). Plain `diff [path]` stays the helper's text answer. Errors are
 * answered in plain words, and then no document is sent.
 */
import { HelperError, HelperOfflineError } from './helperClient.js';
import type { Outgoing } from './outbound.js';
import { baseName, formatBytes, mimeTypeFor } from './outbound.js';

/** The largest document sent (a file or a patch), in bytes. */
export const MAX_DOCUMENT_BYTES = 4 * 1024 * 1024;

export const OFFLINE_TEXT = 'Workspace offline.';

/** What the relay asks the helper with (HelperClient.command). */
export interface CommandSender {
  command(name: string, args: Record<string, unknown>, timeoutMs?: number): Promise<unknown>;
}

export type FileWord =
  | { kind: 'file'; path: string }
  | { kind: 'diff'; path: string | null }
  | { kind: 'usage'; text: string };

export const FILE_USAGE = 'Usage: file <path> (a path in the workspace; quote it if it has spaces: file "my notes.txt").';

/** One path argument: a word without spaces, or a quoted string. null: not exactly one. */
function onePath(rest: string): string | null {
  const r = rest.trim();
  if (r.length === 0) return null;
  const q = /^"([^"]+)"$/.exec(r) ?? /^'([^']+)'$/.exec(r);
  if (q) return q[1]!;
  return /\s/.test(r) ? null : r;
}

/**
 * The file words in a message, or null when it is none of them (then it
 * goes to the helper as before). `file` with more than one word after it is
 * not taken (it is prose for the agent); bare `file` answers the usage.
 */
export function parseFileWord(text: string): FileWord | null {
  const t = text.trim();
  const f = /^file(?:\s+([\s\S]*))?$/i.exec(t);
  if (f) {
    if (f[1] === undefined || f[1].trim().length === 0) return { kind: 'usage', text: FILE_USAGE };
    const p = onePath(f[1]);
    return p === null ? null : { kind: 'file', path: p };
  }
  if (/^diff\s+all$/i.test(t)) return { kind: 'diff', path: null };
  const d = /^diff\s+file(?:\s+([\s\S]*))?$/i.exec(t);
  if (d) {
    if (d[1] === undefined || d[1].trim().length === 0) return { kind: 'diff', path: null };
    const p = onePath(d[1]);
    return p === null ? null : { kind: 'diff', path: p };
  }
  return null;
}

function plainError(what: string, e: unknown): string {
  if (e instanceof HelperOfflineError) return OFFLINE_TEXT;
  if (!(e instanceof HelperError)) throw e;
  switch (e.code) {
    case 'NOT_FOUND': return `Cannot send ${what}: not found in the workspace.`;
    case 'FORBIDDEN': return `Cannot send ${what}: not allowed (${e.message}).`;
    case 'RATE_LIMITED': return 'The workspace is busy; try again in a moment.';
    case 'TIMEOUT': return `Cannot send ${what}: the workspace did not answer in time.`;
    case 'NOT_A_REPOSITORY': return `Cannot send ${what}: the workspace is not a git repository.`;
    default: return `Cannot send ${what}: ${e.message} (${e.code}).`;
  }
}

interface FsReadResult { path?: unknown; size?: unknown; encoding?: unknown; content?: unknown; truncated?: unknown }
interface GitDiffResult { files?: unknown; patch?: unknown; truncated?: unknown }

async function sendFile(helper: CommandSender, path: string, maxBytes: number): Promise<Outgoing[]> {
  const shown = `"${path}"`;
  let raw: unknown;
  try {
    raw = await helper.command('fs.read', { path, maxBytes: Math.max(1, Math.min(maxBytes, 8 * 1024 * 1024)) });
  } catch (e) {
    return [plainError(shown, e)];
  }
  const r = (typeof raw === 'object' && raw !== null ? raw : {}) as FsReadResult;
  if (typeof r.content !== 'string' || (r.encoding !== 'utf8' && r.encoding !== 'base64')) {
    return [`Cannot send ${shown}: the workspace answered something unexpected.`];
  }
  const size = typeof r.size === 'number' ? r.size : null;
  if (r.truncated === true || (size !== null && size > maxBytes)) {
    return size !== null && size > maxBytes
      ? [`Cannot send ${shown}: it is ${formatBytes(size)}, more than the ${formatBytes(maxBytes)} a document may be.`]
      : [`Cannot send ${shown}: it is too large for the workspace to send${size !== null ? ` (${formatBytes(size)})` : ''}.`];
  }
  const data = Buffer.from(r.content, r.encoding === 'base64' ? 'base64' : 'utf8');
  if (data.length === 0) return [`${shown} is empty: nothing to send.`];
  const name = baseName(typeof r.path === 'string' ? r.path : path);
  return [{ data, fileName: name, mimetype: mimeTypeFor(name), caption: typeof r.path === 'string' ? r.path : path }];
}

async function sendDiff(helper: CommandSender, path: string | null, maxBytes: number): Promise<Outgoing[]> {
  const what = path === null ? 'the diff' : `the diff of "${path}"`;
  let raw: unknown;
  try {
    raw = await helper.command('git.diff', { maxBytes: Math.max(1, Math.min(maxBytes, 4 * 1024 * 1024)), ...(path !== null ? { path } : {}) });
  } catch (e) {
    return [plainError(what, e)];
  }
  const r = (typeof raw === 'object' && raw !== null ? raw : {}) as GitDiffResult;
  if (typeof r.patch !== 'string' || !Array.isArray(r.files)) {
    return [`Cannot send ${what}: the workspace answered something unexpected.`];
  }
  if (r.truncated === true) {
    return [`Cannot send ${what}: the patch is larger than ${formatBytes(maxBytes)}.${path === null ? ' Try diff file <path>.' : ''}`];
  }
  if (r.patch.length === 0) return [path === null ? 'No changes: git diff is empty.' : `No changes in "${path}".`];
  let add = 0;
  let del = 0;
  for (const f of r.files as { additions?: unknown; deletions?: unknown }[]) {
    if (typeof f.additions === 'number') add += f.additions;
    if (typeof f.deletions === 'number') del += f.deletions;
  }
  const n = r.files.length;
  const fileName = path === null ? 'workspace.diff' : `${baseName(path)}.diff`;
  return [{
    data: Buffer.from(r.patch, 'utf8'),
    fileName,
    mimetype: 'text/x-diff',
    caption: `${n} file${n === 1 ? '' : 's'} changed, +${add} −${del}`,
  }];
}

/** Answers a file word: one document, or one message saying in plain words why not. */
export async function runFileWord(helper: CommandSender, word: FileWord, maxBytes = MAX_DOCUMENT_BYTES): Promise<Outgoing[]> {
  switch (word.kind) {
    case 'usage': return [word.text];
    case 'file': return sendFile(helper, word.path, maxBytes);
    case 'diff': return sendDiff(helper, word.path, maxBytes);
  }
}
