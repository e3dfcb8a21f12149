import { useEffect, useState } from 'preact/hooks';
import type { ComponentType } from 'preact';
import { useModel } from './ui/hooks';
import { Icon } from './ui/icons';
import type { Tab } from './model';
import { StatusScreen } from './screens/Status';
import { DiffScreen } from './screens/Diff';
import { LogScreen } from './screens/Log';
import { FilesScreen } from './screens/Files';
import { TasksScreen } from './screens/Tasks';
import { NotesScreen } from './screens/Notes';
import { ApprovalsScreen } from './screens/Approvals';
import { WorkspacesScreen, AuthFailedScreen, WelcomeScreen } from './screens/Workspaces';

/** The agent screen (and the Markdown renderer it needs) loads on first use. */
function LazyAgent() {
  const [C, setC] = useState<ComponentType | null>(null);
  const [failed, setFailed] = useState(false);
  useEffect(() => {
    import('./screens/Agent').then((mod) => { setC(() => mod.AgentScreen); }, () => { setFailed(true); });
  }, []);
  if (failed) return <p class="error" role="alert">The agent screen could not be loaded.</p>;
  return C ? <C /> : <p class="muted" role="status">Loading…</p>;
}

const TAB_LABELS: Record<Tab, string> = {
  status: 'Status', diff: 'Diff', log: 'Log', files: 'Files', tasks: 'Tasks', notes: 'Alerts', approvals: 'Approvals', agent: 'Agent',
};

function ConnectionPill() {
  const m = useModel();
  const st = m.conn?.status;
  const [, setNow] = useState(0);
  useEffect(() => {
    if (st?.phase !== 'waiting') return;
    const t = setInterval(() => { setNow(Date.now()); }, 1000);
    return () => { clearInterval(t); };
  }, [st?.phase]);
  if (!st) return null;
  let text: string;
  let cls: string;
  switch (st.phase) {
    case 'online': text = 'Online'; cls = 'ok'; break;
    case 'connecting': text = 'Connecting…'; cls = 'busy'; break;
    case 'authenticating': text = 'Signing in…'; cls = 'busy'; break;
    case 'waiting': {
      const s = Math.max(0, Math.ceil(((st.retryAt ?? Date.now()) - Date.now()) / 1000));
      text = `Offline: ${st.reason ?? 'disconnected'}; retry in ${s} s`;
      cls = 'bad';
      break;
    }
    case 'auth-failed': text = 'Not signed in'; cls = 'bad'; break;
    default: text = 'Stopped'; cls = 'bad';
  }
  return (
    <div class="conn">
      <span class={`pill ${cls}`} role="status" aria-live="polite" data-phase={st.phase}>
        <span class="dot" aria-hidden="true" />
        {text}
      </span>
      {st.phase === 'waiting' && (
        <button type="button" class="small" onClick={() => { m.conn?.nudge(); }}>Retry now</button>
      )}
    </div>
  );
}

function TabBar({ tabs, current }: { tabs: Tab[]; current: Tab }) {
  const m = useModel();
  const onKey = (e: KeyboardEvent) => {
    const i = tabs.indexOf(current);
    let next = -1;
    if (e.key === 'ArrowRight') next = (i + 1) % tabs.length;
    else if (e.key === 'ArrowLeft') next = (i - 1 + tabs.length) % tabs.length;
    else if (e.key === 'Home') next = 0;
    else if (e.key === 'End') next = tabs.length - 1;
    if (next < 0) return;
    e.preventDefault();
    const t = tabs[next];
    if (!t) return;
    m.go({ screen: t });
    requestAnimationFrame(() => document.getElementById(`tab-${t}`)?.focus());
  };
  return (
    <nav class="tabs" aria-label="Screens">
      <div role="tablist" aria-label="Screens" onKeyDown={onKey}>
        {tabs.map((t) => {
          const selected = t === current;
          const badge = t === 'notes' ? m.unread : t === 'approvals' ? m.approvals.size : 0;
          return (
            <button
              key={t} type="button" role="tab" id={`tab-${t}`} aria-selected={selected} aria-controls="panel"
              tabIndex={selected ? 0 : -1} class={selected ? 'tab sel' : 'tab'} onClick={() => { m.go({ screen: t }); }}
            >
              <Icon name={t} />
              <span class="tab-label">{TAB_LABELS[t]}</span>
              {badge > 0 && <span class="badge" aria-label={`${badge} new`}>{badge > 99 ? '99+' : badge}</span>}
            </button>
          );
        })}
      </div>
    </nav>
  );
}

export function App() {
  const m = useModel();
  if (!m.current) return m.workspaces.length ? <WorkspacesScreen /> : <WelcomeScreen />;
  if (m.route.screen === 'workspaces') return <WorkspacesScreen />;
  if (m.conn?.status.phase === 'auth-failed') return <AuthFailedScreen />;
  // No scope implies another: a token without read (an approve-only one,
  // say) sees only what it may use. Until the first auth, all of read's.
  const reads = !m.conn?.session || m.can('read');
  const tabs: Tab[] = reads ? ['status', 'diff', 'log', 'files', 'tasks', 'notes'] : m.showApprovals ? ['notes'] : [];
  if (m.showApprovals) tabs.push('approvals');
  if (m.showAgent) tabs.push('agent');
  if (tabs.length === 0) tabs.push('status');
  let screen: Tab = m.route.screen;
  if (!tabs.includes(screen)) screen = !reads && tabs.includes('approvals') ? 'approvals' : (tabs[0] ?? 'status');
  const name = m.info?.name ?? m.current.name;
  return (
    <div class="app">
      <header class="top">
        <button type="button" class="ws-btn" onClick={() => { m.go({ screen: 'workspaces' }); }} aria-label={`Workspace ${name}: switch or forget`}>
          <Icon name="workspaces" />
          <span class="ws-name">{name}</span>
        </button>
        <ConnectionPill />
      </header>
      <main class="panel">
        <div id="panel" role="tabpanel" aria-labelledby={`tab-${screen}`} class="panel-inner">
        {screen === 'status' && <StatusScreen />}
        {screen === 'diff' && <DiffScreen />}
        {screen === 'log' && <LogScreen />}
        {screen === 'files' && <FilesScreen />}
        {screen === 'tasks' && <TasksScreen />}
        {screen === 'notes' && <NotesScreen />}
        {screen === 'approvals' && <ApprovalsScreen />}
        {screen === 'agent' && <LazyAgent />}
        </div>
      </main>
      <TabBar tabs={tabs} current={screen} />
    </div>
  );
}
