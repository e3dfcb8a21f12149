import { useState } from 'preact/hooks';
import { useModel } from '../ui/hooks';
import { ScreenHeader, relTime } from '../ui/common';
import { AnsiLine } from '../ui/AnsiText';
import { ansiLines } from '../ansi';

function PermissionButton() {
  const [perm, setPerm] = useState(typeof Notification === 'undefined' ? 'unsupported' : Notification.permission);
  if (perm === 'unsupported') return <p class="muted small-text">This browser has no system notifications.</p>;
  if (perm === 'granted') return <p class="muted small-text">System notifications are on while the app is in the background.</p>;
  if (perm === 'denied') return <p class="muted small-text">System notifications are blocked in this browser's settings.</p>;
  return (
    <button type="button" onClick={() => { void Notification.requestPermission().then(setPerm); }}>
      Notify me when tasks end
    </button>
  );
}

export function NotesScreen() {
  const m = useModel();
  const notes = m.notes.slice().reverse();
  return (
    <div class="screen">
      <ScreenHeader title="Notifications">
        {notes.length > 0 && <button type="button" class="small" onClick={() => { m.clearNotes(); }}>Clear</button>}
      </ScreenHeader>
      <PermissionButton />
      {!notes.length && <p class="empty">Nothing yet. Task runs, repository changes, saves and messages from the editor appear here.</p>}
      <ol class="rows notes" aria-label="Notifications, newest first">
        {notes.map((n) => (
          <li key={`${n.seq}-${n.event}`} class={`note-item lv-${n.level}`} data-seq={n.seq} data-event={n.event}>
            <div class="note-title">{n.title}</div>
            <div class="muted small-text">{n.body} · {relTime(n.at)}</div>
            {n.tail && (
              <details>
                <summary>Last output</summary>
                <pre class="code tail">{ansiLines(n.tail).map((l, i) => <div key={i}><AnsiLine line={l} /></div>)}</pre>
              </details>
            )}
          </li>
        ))}
      </ol>
    </div>
  );
}
