import { useModel, useRequest } from '../ui/hooks';
import { ErrorBox, Loading, RefreshButton, ScreenHeader } from '../ui/common';
import type { FileStatus, GitStatus } from '../protocol';

const STATUS_WORDS: Record<string, string> = { A: 'added', M: 'modified', D: 'deleted', R: 'renamed', T: 'type changed', '?': 'untracked', U: 'conflicted' };

function Section({ title, files, letter, onPick }: { title: string; files: FileStatus[]; letter?: string; onPick: (f: FileStatus) => void }) {
  if (!files.length) return null;
  const id = `sec-${title.toLowerCase().replace(/\W+/g, '-')}`;
  return (
    <section class="card" aria-labelledby={id}>
      <h2 id={id}>{title} <span class="count">{files.length}</span></h2>
      <ul class="rows">
        {files.map((f) => {
          const s = letter ?? f.status ?? 'M';
          return (
            <li key={f.path}>
              <button type="button" class="row" onClick={() => { onPick(f); }}>
                <span class={`st st-${s === '?' ? 'q' : s}`} title={STATUS_WORDS[s] ?? s} aria-label={STATUS_WORDS[s] ?? s}>{s}</span>
                <span class="path">{f.from ? `${f.from} → ${f.path}` : f.path}</span>
              </button>
            </li>
          );
        })}
      </ul>
    </section>
  );
}

export function StatusScreen() {
  const m = useModel();
  const conn = m.conn;
  const r = useRequest(conn ? () => conn.command<GitStatus>('git.status') : null, [m.gitTick]);
  const s = r.data;
  const clean = s && !s.staged.length && !s.unstaged.length && !s.untracked.length && !s.conflicted.length;
  let where = '';
  if (s) where = s.unborn ? `${s.branch ?? 'main'} (no commits yet)` : s.detached ? `detached at ${s.head?.slice(0, 8) ?? '?'}` : (s.branch ?? '?');
  return (
    <div class="screen">
      <ScreenHeader title="Status">
        <RefreshButton onClick={r.reload} busy={r.loading} />
      </ScreenHeader>
      <ErrorBox text={r.error} />
      <Loading show={!s && r.loading} />
      {s && (
        <>
          <section class="card branch" aria-label="Branch">
            <div class="branch-name" data-testid="branch">{where}</div>
            {s.folder && (m.info?.folders.length ?? 0) > 1 && <div class="muted small-text">in the folder {s.folder}</div>}
            <div class="muted">
              {s.upstream && s.upstreamGone ? (
                <>tracking {s.upstream}, which is gone</>
              ) : s.upstream ? (
                <>
                  tracking {s.upstream}
                  {' · '}
                  <span aria-label={`${s.ahead} ahead`}>↑{s.ahead}</span>{' '}
                  <span aria-label={`${s.behind} behind`}>↓{s.behind}</span>
                </>
              ) : 'no upstream'}
            </div>
          </section>
          {clean && <p class="empty">Nothing to commit: the working tree is clean.</p>}
          <Section title="Conflicts" files={s.conflicted} letter="U" onPick={(f) => { m.go({ screen: 'diff', path: f.path, staged: false }); }} />
          <Section title="Staged" files={s.staged} onPick={(f) => { m.go({ screen: 'diff', path: f.path, staged: true }); }} />
          <Section title="Changes" files={s.unstaged} onPick={(f) => { m.go({ screen: 'diff', path: f.path, staged: false }); }} />
          <Section title="Untracked" files={s.untracked} letter="?" onPick={(f) => {
            const dir = f.path.includes('/') ? f.path.slice(0, f.path.lastIndexOf('/')) : '.';
            m.go({ screen: 'files', path: dir, file: f.path, folder: s.folder });
          }} />
          {s.truncated && <p class="note">The lists were cut: there are more changed files than the helper sends.</p>}
        </>
      )}
    </div>
  );
}
