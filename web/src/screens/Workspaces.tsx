import { useState } from 'preact/hooks';
import { useModel } from '../ui/hooks';
import { ScreenHeader, relTime } from '../ui/common';

function ForgetButton({ id, name }: { id: string; name: string }) {
  const m = useModel();
  const [asking, setAsking] = useState(false);
  if (!asking) return <button type="button" class="danger" onClick={() => { setAsking(true); }}>Forget this workspace</button>;
  return (
    <div class="confirm" role="group" aria-label={`Forget ${name}?`}>
      <span>Forget {name}? This device's token is deleted.</span>
      <button type="button" class="danger" onClick={() => { m.forget(id); }}>Forget</button>
      <button type="button" onClick={() => { setAsking(false); }}>Keep</button>
    </div>
  );
}

function sameHost(url: string): boolean {
  try {
    return new URL(url).host === location.host;
  } catch {
    return false;
  }
}

export function WelcomeScreen() {
  const m = useModel();
  return (
    <main class="screen welcome" id="panel">
      <h1 tabIndex={-1}>Companion</h1>
      {m.pairingError && <p class="error" role="alert">{m.pairingError}</p>}
      <p>This app reaches a VS Code workspace through its Companion helper. It is not paired with any workspace yet.</p>
      <ol>
        <li>In VS Code, run <strong>Companion: Pair Device</strong>, or start <code>companion-helper serve</code> in a folder.</li>
        <li>Scan the QR code with this phone, or open the pairing link it shows.</li>
      </ol>
      <p class="muted small-text">The link carries a short-lived token in its fragment, which never reaches a server; the app takes it out of the address bar at once.</p>
    </main>
  );
}

export function WorkspacesScreen() {
  const m = useModel();
  return (
    <main class="screen" id="panel">
      <ScreenHeader title="Workspaces" back={m.current ? () => { m.go({ screen: 'status' }); } : undefined} />
      {m.pairingError && <p class="error" role="alert">{m.pairingError}</p>}
      {!m.workspaces.length && <p class="empty">No paired workspace. Open a pairing link from the editor.</p>}
      <ul class="rows" aria-label="Paired workspaces">
        {m.workspaces.map((w) => {
          const open = m.current?.workspaceId === w.workspaceId;
          return (
            <li key={w.workspaceId} class="card">
              <h2>{w.name || w.workspaceId}</h2>
              <div class="muted small-text">
                {w.url} · paired {relTime(w.pairedAt)} · {w.device ? 'device token' : 'pairing token'}
              </div>
              {!sameHost(w.url) && (
                <p class="note small-text">This workspace's helper is at another address than this page; the page's security policy may not let it connect. Open the app from that helper's own address.</p>
              )}
              <div class="buttons">
                <button type="button" class="primary" aria-current={open ? 'true' : undefined} onClick={() => { if (open) m.go({ screen: 'status' }); else m.open(w); }}>
                  {open ? 'Open (current)' : 'Open'}
                </button>
                <ForgetButton id={w.workspaceId} name={w.name || w.workspaceId} />
              </div>
            </li>
          );
        })}
      </ul>
    </main>
  );
}

export function AuthFailedScreen() {
  const m = useModel();
  const w = m.current;
  const err = m.conn?.status.authError;
  if (!w) return null;
  const name = m.info?.name ?? (w.name || w.workspaceId);
  let title = 'Access ended';
  let text = 'The helper no longer accepts this device\'s token: it was revoked, or the workspace\'s secret changed.';
  if (err?.code === 'AUTH_EXPIRED') {
    title = 'Access expired';
    text = `This device's token for ${name} has expired.`;
  } else if (err?.code === 'WORKSPACE_MISMATCH') {
    title = 'Another workspace';
    text = `The helper at ${w.url} now serves another workspace.`;
  }
  return (
    <main class="screen auth-failed" id="panel">
      <h1 tabIndex={-1}>{title}</h1>
      <p role="alert">{text}</p>
      <p>Pair again from the editor (<strong>Companion: Pair Device</strong>) or <code>companion-helper serve</code> to get a new link.</p>
      <p class="muted small-text">Helper's answer: {err?.code ?? 'AUTH_INVALID'}{err?.message ? `: ${err.message}` : ''}</p>
      <div class="buttons">
        <ForgetButton id={w.workspaceId} name={name} />
        <button type="button" onClick={() => { m.conn?.retryAuth(); }}>Try again</button>
        {m.workspaces.length > 1 && <button type="button" onClick={() => { m.go({ screen: 'workspaces' }); }}>Other workspaces</button>}
      </div>
    </main>
  );
}
