import { useEffect, useState } from 'preact/hooks';
import { useModel } from '../ui/hooks';
import { ErrorBox, ScreenHeader } from '../ui/common';
import { errorText } from '../model';

const OPTION_LABELS: Record<string, string> = { allow_once: 'Allow once', allow_always: 'Always allow', deny: 'Deny' };

export function ApprovalsScreen() {
  const m = useModel();
  const [err, setErr] = useState<string | null>(null);
  const [, tick] = useState(0);
  useEffect(() => {
    const t = setInterval(() => { tick((x) => x + 1); }, 1000);
    return () => { clearInterval(t); };
  }, []);
  const list = [...m.approvals.values()].sort((a, b) => a.expiresAt - b.expiresAt);
  return (
    <div class="screen">
      <ScreenHeader title="Approvals" />
      <ErrorBox text={err} />
      {!list.length && <p class="empty">Nothing is waiting for your approval.</p>}
      <ul class="rows" aria-label="Waiting for approval">
        {list.map((a) => {
          const left = Math.max(0, Math.round((a.expiresAt - Date.now()) / 1000));
          const opts = a.options.length ? a.options : ['allow_once', 'deny'];
          return (
            <li key={a.approvalId} class="card approval">
              <h2>{a.title}</h2>
              <div class="muted small-text">{a.kind} · asked by {a.requestedBy} · {left > 0 ? `expires in ${left} s` : 'expired'}</div>
              <pre class="code action">{a.action}</pre>
              <div class="buttons">
                {opts.map((o) => (
                  <button
                    key={o} type="button" class={o === 'deny' ? 'danger' : 'primary'} disabled={left <= 0}
                    onClick={() => { setErr(null); m.decide(a.approvalId, o).catch((e: unknown) => { setErr(errorText(e)); }); }}
                  >
                    {OPTION_LABELS[o] ?? o}
                  </button>
                ))}
              </div>
            </li>
          );
        })}
      </ul>
    </div>
  );
}
