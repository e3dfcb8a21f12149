/**
 * Phone-friendly output: what the relay sends is a text or a document
 * (Outgoing); the parts of a long reply are numbered "(1/3)"; a file's
 * mimetype is guessed from its extension. Pure functions, no I/O.
 */
import type { OutgoingDocument } from './transport.js';

/** One message the relay sends: a text, or a document. */
export type Outgoing = string | OutgoingDocument;

/** The label a numbered part starts with: `(2/5)`. */
export function partLabel(part: number, parts: number): string {
  return `(${part}/${parts})`;
}

/**
 * Numbers the parts of one reply (the helper's `part` of `parts`, in order):
 * each starts with "(i/n)"; a single part is left as it is. The label is
 * always a prefix, so it is never inside a code fence: before a part that
 * opens with a fence (```), whose opening must start a line to render, the
 * label takes a line of its own.
 */
export function numberParts(parts: readonly string[]): string[] {
  if (parts.length <= 1) return [...parts];
  return parts.map((p, i) => `${partLabel(i + 1, parts.length)}${p.startsWith('```') ? '\n' : ' '}${p}`);
}

/** Extension (lower case, without the dot) -> mimetype. Anything else is application/octet-stream. */
const MIME_TYPES: Readonly<Record<string, string>> = {
  txt: 'text/plain', md: 'text/markdown', markdown: 'text/markdown', log: 'text/plain',
  csv: 'text/csv', tsv: 'text/tab-separated-values', html: 'text/html', htm: 'text/html',
  css: 'text/css', xml: 'application/xml', json: 'application/json', yaml: 'application/yaml',
  yml: 'application/yaml', toml: 'application/toml', ini: 'text/plain', conf: 'text/plain',
  js: 'text/javascript', mjs: 'text/javascript', cjs: 'text/javascript', ts: 'text/plain',
  tsx: 'text/plain', jsx: 'text/javascript', py: 'text/x-python', c: 'text/x-c', h: 'text/x-c',
  cc: 'text/x-c++', cpp: 'text/x-c++', hpp: 'text/x-c++', rs: 'text/x-rust', go: 'text/x-go',
  java: 'text/x-java', sh: 'application/x-sh', rb: 'text/x-ruby', sql: 'application/sql',
  diff: 'text/x-diff', patch: 'text/x-diff',
  pdf: 'application/pdf', zip: 'application/zip', gz: 'application/gzip', tgz: 'application/gzip',
  tar: 'application/x-tar', '7z': 'application/x-7z-compressed',
  png: 'image/png', jpg: 'image/jpeg', jpeg: 'image/jpeg', gif: 'image/gif', webp: 'image/webp',
  svg: 'image/svg+xml', ico: 'image/vnd.microsoft.icon', bmp: 'image/bmp',
  mp3: 'audio/mpeg', ogg: 'audio/ogg', wav: 'audio/wav', mp4: 'video/mp4', webm: 'video/webm',
  doc: 'application/msword', docx: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  xls: 'application/vnd.ms-excel', xlsx: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  ppt: 'application/vnd.ms-powerpoint', pptx: 'application/vnd.openxmlformats-officedocument.presentationml.presentation',
  odt: 'application/vnd.oasis.opendocument.text', wasm: 'application/wasm',
};

export const DEFAULT_MIMETYPE = 'application/octet-stream';

/** The mimetype for a file name, from its extension (case-insensitive). */
export function mimeTypeFor(fileName: string): string {
  const base = baseName(fileName);
  const dot = base.lastIndexOf('.');
  if (dot <= 0 || dot === base.length - 1) return DEFAULT_MIMETYPE;
  return MIME_TYPES[base.slice(dot + 1).toLowerCase()] ?? DEFAULT_MIMETYPE;
}

/** The last component of a workspace path (`/` separated, as the helper answers them). */
export function baseName(p: string): string {
  const parts = p.split('/').filter((s) => s.length > 0);
  return parts.at(-1) ?? p;
}

/** `1536` -> `1.5 KiB`. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} bytes`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(n < 10240 ? 1 : 0)} KiB`;
  return `${(n / (1024 * 1024)).toFixed(1)} MiB`;
}
