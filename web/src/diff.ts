/* A unified diff (git.diff's `patch`) as lines with kinds and line
 * numbers, for the diff view to colour with classes. */

export type DiffKind = 'meta' | 'hunk' | 'add' | 'del' | 'ctx' | 'note';

export interface DiffLine {
  kind: DiffKind;
  text: string;
  old?: number;
  new?: number;
}

const HUNK = /^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@/;

export function parsePatch(patch: string): DiffLine[] {
  const out: DiffLine[] = [];
  const lines = patch.split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  let oldNo = 0;
  let newNo = 0;
  let oldLeft = 0;
  let newLeft = 0;
  for (const text of lines) {
    if (oldLeft > 0 || newLeft > 0) {
      const c = text.charAt(0);
      if (c === '+') {
        out.push({ kind: 'add', text, new: newNo++ });
        newLeft--;
        continue;
      }
      if (c === '-') {
        out.push({ kind: 'del', text, old: oldNo++ });
        oldLeft--;
        continue;
      }
      if (c === ' ' || text === '') {
        out.push({ kind: 'ctx', text, old: oldNo++, new: newNo++ });
        oldLeft--;
        newLeft--;
        continue;
      }
      if (c === '\\') {
        out.push({ kind: 'note', text });
        continue;
      }
      oldLeft = newLeft = 0; // a cut patch: fall through to headers
    }
    const m = HUNK.exec(text);
    if (m) {
      oldNo = Number(m[1]);
      newNo = Number(m[3]);
      oldLeft = m[2] === undefined ? 1 : Number(m[2]);
      newLeft = m[4] === undefined ? 1 : Number(m[4]);
      out.push({ kind: 'hunk', text });
    } else if (text.startsWith('\\')) {
      out.push({ kind: 'note', text });
    } else {
      out.push({ kind: 'meta', text });
    }
  }
  return out;
}
