import { useModel, useRequest } from '../ui/hooks';
import { ErrorBox, Loading, RefreshButton, ScreenHeader, relTime } from '../ui/common';
import type { Commit } from '../protocol';

export function LogScreen() {
  const m = useModel();
  const conn = m.conn;
  const r = useRequest(conn ? () => conn.command<{ commits: Commit[] }>('git.log', { limit: 50 }) : null, [m.gitTick]);
  const commits = r.data?.commits ?? [];
  return (
    <div class="screen">
      <ScreenHeader title="Log">
        <RefreshButton onClick={r.reload} busy={r.loading} />
      </ScreenHeader>
      <ErrorBox text={r.error} />
      <Loading show={!r.data && r.loading} />
      {r.data && !commits.length && <p class="empty">No commits yet.</p>}
      <ol class="rows commits" aria-label="Commits, newest first">
        {commits.map((c) => (
          <li key={c.id} class="commit">
            <div class="summary">{c.summary}</div>
            <div class="muted small-text">
              <code>{c.shortId}</code> · {c.author} · <time dateTime={new Date(c.time * 1000).toISOString()}>{relTime(c.time * 1000)}</time>
            </div>
          </li>
        ))}
      </ol>
    </div>
  );
}
