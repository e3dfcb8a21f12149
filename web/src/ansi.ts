/* Task output with ANSI colours: anser parses the escape codes into
 * segments, which are rendered as text nodes in spans with classes (and,
 * for 256-colour and true-colour codes, a colour set through the CSSOM).
 * No HTML is ever built from the output. Lines are parsed once, as they
 * complete, with anser's state carried from one chunk to the next. */
import Anser from 'anser';

export interface Seg {
  text: string;
  cls: string;
  fg?: string;
  bg?: string;
}
export type Line = Seg[];

const NAMED = new Set(['black', 'red', 'green', 'yellow', 'blue', 'magenta', 'cyan', 'white']);
const DECOR = new Set(['bold', 'dim', 'italic', 'underline', 'blink', 'hidden', 'strikethrough']);

/** xterm's 256-colour palette, entries 16 to 255, as CSS rgb(). */
export function paletteRgb(n: number): string {
  if (n >= 232) {
    const v = 8 + (n - 232) * 10;
    return `rgb(${v}, ${v}, ${v})`;
  }
  const i = n - 16;
  const step = (c: number) => (c === 0 ? 0 : 55 + c * 40);
  return `rgb(${step(Math.floor(i / 36))}, ${step(Math.floor(i / 6) % 6)}, ${step(i % 6)})`;
}

/** anser's colour ("ansi-red", "ansi-bright-red", "ansi-palette-208",
 * "ansi-truecolor") as a class suffix or a CSS colour. */
function colour(name: string | null, truecolor: string | null): { cls?: string; css?: string } {
  if (!name) return {};
  const m = /^ansi-(bright-)?([a-z]+)$/.exec(name);
  if (m?.[2] && NAMED.has(m[2])) return { cls: `${m[1] ? 'b' : ''}${m[2]}` };
  const p = /^ansi-palette-(\d+)$/.exec(name);
  if (p?.[1]) {
    const n = Number(p[1]);
    return n >= 16 && n <= 255 ? { css: paletteRgb(n) } : {};
  }
  if (name === 'ansi-truecolor' && truecolor && /^\d{1,3}, \d{1,3}, \d{1,3}$/.test(truecolor)) return { css: `rgb(${truecolor})` };
  return {};
}

function toSegs(entries: Anser.AnserJsonEntry[]): Line {
  const out: Line = [];
  for (const e of entries) {
    if (!e.content) continue;
    const classes: string[] = [];
    let fg = colour(e.fg, e.fg === 'ansi-truecolor' ? e.fg_truecolor : null);
    let bg = colour(e.bg, e.bg === 'ansi-truecolor' ? e.bg_truecolor : null);
    const decorations = e.decorations;
    if (decorations.includes('reverse')) [fg, bg] = [bg, fg];
    if (fg.cls) classes.push(`f-${fg.cls}`);
    if (bg.cls) classes.push(`g-${bg.cls}`);
    for (const d of decorations) if (DECOR.has(d)) classes.push(`d-${d}`);
    const seg: Seg = { text: e.content, cls: classes.join(' ') };
    if (fg.css) seg.fg = fg.css;
    if (bg.css) seg.bg = bg.css;
    out.push(seg);
  }
  return out;
}

/** A carriage return (without a newline) overwrites the line: keep what
 * was written last, as a terminal would show it in the end. */
function lastOverwrite(line: string): string {
  const l = line.endsWith('\r') ? line.slice(0, -1) : line;
  const i = l.lastIndexOf('\r');
  return i < 0 ? l : l.slice(i + 1);
}

const MAX_PENDING = 64 * 1024;

// eslint-disable-next-line no-control-regex -- ESC is what an SGR code starts with
const SGR = /\x1b\[([0-9;]*)m/g;

export class AnsiLines {
  readonly lines: Line[] = [];
  private pending = '';
  /** The SGR codes in force at the end of what was parsed (anser resets
   * its state at the start of every call, so each block starts with them). */
  private sgr = '';

  /** Parses complete lines (text without its last newline). */
  private parseBlock(text: string): void {
    const src = this.sgr + text.split('\n').map(lastOverwrite).join('\n');
    for (const m of text.matchAll(SGR)) {
      const params = m[1] ?? '';
      if (params === '' || params === '0') this.sgr = '';
      else if (params.startsWith('0;')) this.sgr = m[0];
      else this.sgr += m[0];
    }
    const segs = toSegs(new Anser().ansiToJson(src, { use_classes: true, remove_empty: true }));
    let line: Line = [];
    for (const seg of segs) {
      const parts = seg.text.split('\n');
      parts.forEach((part, i) => {
        if (i > 0) {
          this.lines.push(line);
          line = [];
        }
        if (part) line.push({ ...seg, text: part });
      });
    }
    this.lines.push(line);
  }

  push(text: string): void {
    this.pending += text;
    const nl = this.pending.lastIndexOf('\n');
    if (nl < 0) {
      if (this.pending.length > MAX_PENDING) this.end();
      return;
    }
    const done = this.pending.slice(0, nl);
    this.pending = this.pending.slice(nl + 1);
    this.parseBlock(done);
  }

  /** The unfinished last line, without colours until it completes. */
  partial(): Line | null {
    if (!this.pending) return null;
    return [{ text: lastOverwrite(Anser.ansiToText(this.pending)), cls: '' }];
  }

  end(): void {
    if (this.pending) this.parseBlock(this.pending);
    this.pending = '';
  }

  get count(): number {
    return this.lines.length + (this.pending ? 1 : 0);
  }

  line(i: number): Line {
    return i < this.lines.length ? (this.lines[i] ?? []) : (this.partial() ?? []);
  }
}

/** Whole text at once (a notification's tail). */
export function ansiLines(text: string): Line[] {
  const a = new AnsiLines();
  a.push(text.endsWith('\n') ? text : `${text}\n`);
  return a.lines;
}
