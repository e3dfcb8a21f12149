import { useState } from 'preact/hooks';
import { useModel } from '../ui/hooks';
import { ErrorBox, Loading, RefreshButton, ScreenHeader } from '../ui/common';
import { VirtualList } from '../ui/VirtualList';
import { AnsiLine } from '../ui/AnsiText';
import type { TaskRun } from '../model';
import { runErrorText } from '../model';

function runState(r: TaskRun): { text: string; cls: string } {
  if (r.error) return { text: runErrorText(r), cls: 'bad' };
  const e = r.end;
  if (!e && r.approval && !r.started && !r.cancelling) return { text: `Waiting for approval ${r.approval.id}`, cls: 'busy' };
  if (!e) return { text: r.cancelling ? 'Cancelling…' : 'Running…', cls: 'busy' };
  const secs = (e.durationMs / 1000).toFixed(1);
  const extra = [e.timedOut && 'timed out', e.cancelled && 'cancelled', e.truncated && 'output truncated'].filter(Boolean).join(', ');
  const how = e.signal ? `killed by signal ${e.signal}` : `exit code ${e.exitCode ?? '?'}`;
  const ok = e.exitCode === 0 && !e.signal;
  return { text: `${how} after ${secs} s${extra ? ` (${extra})` : ''}`, cls: ok ? 'ok' : 'bad' };
}

function RunView({ run }: { run: TaskRun }) {
  const m = useModel();
  const st = runState(run);
  const running = !run.end && !run.error;
  const waiting = running && run.approval && !run.started ? run.approval : null;
  return (
    <section class="card run" aria-label={`Run of ${run.name}`}>
      <div class="run-head">
        <h2>{run.name}</h2>
        <span class={`pill ${st.cls}`} data-testid="run-state" role="status">{st.text}</span>
        {running && (
          <button type="button" class="danger" disabled={run.cancelling} onClick={() => { void m.cancelTask(run); }}>Cancel</button>
        )}
      </div>
      {waiting && (
        <>
          <p class="note" data-testid="run-waiting">
            This task asks for the owner's approval before it runs
            {waiting.expiresAt > 0 && <> (until {new Date(waiting.expiresAt).toLocaleTimeString()})</>}.
            {m.showApprovals ? ' This device may answer it.' : ' The editor, or a device with the approve scope, answers.'}
          </p>
          {m.showApprovals && (
            <button type="button" class="small" onClick={() => { m.go({ screen: 'approvals' }); }}>Open Approvals</button>
          )}
        </>
      )}
      <VirtualList
        className="code output" label={`Output of ${run.name}`} count={run.out.count} rowHeight={20} follow version={run.version}
        row={(i) => <div class="dl"><span class="tx"><AnsiLine line={run.out.line(i)} /></span></div>}
      />
      {run.out.count === 0 && !running && <p class="muted small-text">No output.</p>}
    </section>
  );
}

export function TasksScreen() {
  const m = useModel();
  const canRun = m.can('run');
  const [shown, setShown] = useState<string | null>(null);
  const run = m.runs.find((r) => r.id === shown) ?? m.runs[0];
  return (
    <div class="screen">
      <ScreenHeader title="Tasks">
        <RefreshButton onClick={() => { void m.loadTasks(); }} busy={false} />
      </ScreenHeader>
      <ErrorBox text={m.tasksError} />
      <Loading show={m.tasks === null && !m.tasksError} />
      {!canRun && m.tasks && m.tasks.length > 0 && (
        <p class="note">This device may look at tasks but not run them: its token lacks the <code>run</code> scope.</p>
      )}
      {m.tasks && m.tasks.length === 0 && <p class="empty">No tasks are configured for this workspace.</p>}
      {m.tasks && m.tasks.length > 0 && (
        <ul class="rows" aria-label="Configured tasks">
          {m.tasks.map((t) => (
            <li key={t.name} class="task">
              <div class="task-text">
                <div class="task-name">{t.name}</div>
                <code class="muted small-text">{[t.command, ...(t.args ?? [])].join(' ')}</code>
              </div>
              <button type="button" class="primary" disabled={!canRun} onClick={() => { m.runTask(t.name); setShown(null); }} aria-label={`Run ${t.name}`}>
                Run
              </button>
            </li>
          ))}
        </ul>
      )}
      {m.runs.length > 1 && (
        <ul class="chips" aria-label="Recent runs">
          {m.runs.map((r) => (
            <li key={r.id}>
              <button type="button" class="chip" aria-current={r === run ? 'true' : undefined} onClick={() => { setShown(r.id); }}>
                {r.name} · {new Date(r.startedAt).toLocaleTimeString()}
              </button>
            </li>
          ))}
        </ul>
      )}
      {run && <RunView run={run} />}
    </div>
  );
}
