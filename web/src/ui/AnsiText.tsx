import type { Line } from '../ansi';

/** One line of output: text nodes in spans, never HTML. */
export function AnsiLine({ line }: { line: Line }) {
  return (
    <>
      {line.map((s, i) =>
        s.cls || s.fg || s.bg ? (
          <span key={i} class={s.cls || undefined} style={s.fg || s.bg ? { color: s.fg, backgroundColor: s.bg } : undefined}>
            {s.text}
          </span>
        ) : (
          s.text
        ),
      )}
    </>
  );
}
