import { useMemo } from 'preact/hooks';
import { useModel, useRequest } from '../ui/hooks';
import { ErrorBox, Loading, RefreshButton, ScreenHeader } from '../ui/common';
import { VirtualList } from '../ui/VirtualList';
import type { GitDiff } from '../protocol';
import { parsePatch } from '../diff';

const ROW = 20;
/** One file's patch: up to the helper's cap (4 MiB), so a long change is whole. */
const MAX_PATCH = 4 * 1024 * 1024;

export function DiffScreen() {
  const m = useModel();
  const conn = m.conn;
  const staged = m.route.staged ?? false;
  const list = useRequest(conn ? () => conn.command<GitDiff>('git.diff', { staged, maxBytes: 1 }) : null, [staged, m.gitTick]);
  const files = list.data?.files ?? [];
  const path = m.route.screen === 'diff' && m.route.path ? m.route.path : files[0]?.path;
  const d = useRequest(conn && path ? () => conn.command<GitDiff>('git.diff', { staged, path, maxBytes: MAX_PATCH }) : null, [staged, path, m.gitTick]);
  const lines = useMemo(() => (d.data ? parsePatch(d.data.patch) : []), [d.data]);
  const file = d.data?.files.find((f) => f.path === path) ?? files.find((f) => f.path === path);
  const side = (s: boolean) => { m.go({ screen: 'diff', staged: s }); };
  return (
    <div class="screen screen-fill">
      <ScreenHeader title="Diff" sub={path}>
        <RefreshButton onClick={() => { list.reload(); d.reload(); }} busy={list.loading || d.loading} />
      </ScreenHeader>
      <div class="seg" role="group" aria-label="Which changes">
        <button type="button" aria-pressed={!staged} onClick={() => { side(false); }}>Unstaged</button>
        <button type="button" aria-pressed={staged} onClick={() => { side(true); }}>Staged</button>
      </div>
      <ErrorBox text={list.error} />
      {files.length > 0 && (
        <ul class="chips" aria-label="Changed files">
          {files.map((f) => (
            <li key={f.path}>
              <button type="button" class="chip" aria-current={f.path === path ? 'true' : undefined} onClick={() => { m.go({ screen: 'diff', staged, path: f.path }); }}>
                <span class="path">{f.path}</span>
                {f.binary ? <span class="muted"> binary</span> : (
                  <>
                    <span class="add-n" aria-label={`${f.additions} added`}> +{f.additions}</span>
                    <span class="del-n" aria-label={`${f.deletions} deleted`}> −{f.deletions}</span>
                  </>
                )}
              </button>
            </li>
          ))}
        </ul>
      )}
      {list.data && files.length === 0 && <p class="empty">No {staged ? 'staged' : 'unstaged'} changes.</p>}
      <ErrorBox text={d.error} />
      <Loading show={!d.data && d.loading} />
      {file?.binary && <p class="note">Binary file: no text diff.</p>}
      {d.data?.truncated && <p class="note">The diff was cut at the helper's size limit.</p>}
      {path && lines.length > 0 && (
        <VirtualList
          className="code diff" label={`Diff of ${path}`} count={lines.length} rowHeight={ROW} version={lines.length}
          row={(i) => {
            const l = lines[i];
            if (!l) return null;
            return (
              <div class={`dl k-${l.kind}`}>
                <span class="ln" aria-hidden="true">{l.old ?? ''}</span>
                <span class="ln" aria-hidden="true">{l.new ?? ''}</span>
                <span class="tx">{l.text}</span>
              </div>
            );
          }}
        />
      )}
    </div>
  );
}
