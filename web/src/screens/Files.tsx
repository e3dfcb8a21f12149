import { useEffect, useMemo, useState } from 'preact/hooks';
import { useModel, useRequest } from '../ui/hooks';
import { ErrorBox, Loading, RefreshButton, ScreenHeader, fmtBytes } from '../ui/common';
import { Icon } from '../ui/icons';
import { VirtualList } from '../ui/VirtualList';
import type { DirEntry, FsList, FsRead } from '../protocol';

const ROW = 20;

function parentOf(p: string): string {
  const i = p.lastIndexOf('/');
  return i < 0 ? '.' : p.slice(0, i);
}

function join(dir: string, name: string): string {
  return dir === '.' || dir === '' ? name : `${dir}/${name}`;
}

function sortEntries(entries: DirEntry[]): DirEntry[] {
  return entries.slice().sort((a, b) => {
    const da = a.type === 'directory' || a.type === 'dir' ? 0 : 1;
    const db = b.type === 'directory' || b.type === 'dir' ? 0 : 1;
    return da - db || a.name.localeCompare(b.name);
  });
}

/** Markdown preview: the renderer (marked + DOMPurify) loads on first use. */
function MarkdownPreview({ text }: { text: string }) {
  const [html, setHtml] = useState<string | null>(null);
  useEffect(() => {
    let live = true;
    void import('../markdown').then((md) => { if (live) setHtml(md.renderMarkdown(text)); });
    return () => { live = false; };
  }, [text]);
  if (html === null) return <p class="muted" role="status">Rendering…</p>;
  return <div class="markdown card" dangerouslySetInnerHTML={{ __html: html }} />;
}

/** fs.* arguments: the path, and the folder when one is picked. */
function fsArgs(path: string, folder: string | undefined): Record<string, unknown> {
  return folder ? { path, folder } : { path };
}

function Viewer({ file, folder }: { file: string; folder?: string }) {
  const m = useModel();
  const conn = m.conn;
  const r = useRequest(conn ? () => conn.command<FsRead>('fs.read', fsArgs(file, folder)) : null, [file, folder]);
  const [preview, setPreview] = useState(false);
  const d = r.data;
  const lines = useMemo(() => {
    if (!d || d.encoding !== 'utf8') return [];
    const ls = d.content.split('\n');
    if (ls.length > 1 && ls[ls.length - 1] === '') ls.pop();
    return ls;
  }, [d]);
  const isMd = /\.(md|markdown)$/i.test(file);
  const digits = String(lines.length).length;
  return (
    <div class="screen screen-fill">
      <ScreenHeader title={file.split('/').pop() ?? file} sub={file} back={() => { m.go({ screen: 'files', path: parentOf(file), folder }); }}>
        <RefreshButton onClick={r.reload} busy={r.loading} />
      </ScreenHeader>
      <ErrorBox text={r.error} />
      <Loading show={!d && r.loading} />
      {d && (
        <p class="muted small-text" data-testid="file-meta">
          {d.encoding === 'base64' ? `Binary, ${fmtBytes(d.size)} (${d.size} bytes)` : `${lines.length} lines, ${fmtBytes(d.size)}`}
          {d.truncated && ` · showing the first ${fmtBytes(d.encoding === 'base64' ? Math.floor((d.content.length * 3) / 4) : new TextEncoder().encode(d.content).length)} (truncated)`}
        </p>
      )}
      {d?.truncated && <p class="note" role="note">This file is larger than what the helper sends at once: the rest is not shown.</p>}
      {d?.encoding === 'base64' && <p class="empty">binary, {d.size} bytes: not shown.</p>}
      {d && d.encoding === 'utf8' && isMd && (
        <div class="seg" role="group" aria-label="View as">
          <button type="button" aria-pressed={!preview} onClick={() => { setPreview(false); }}>Text</button>
          <button type="button" aria-pressed={preview} onClick={() => { setPreview(true); }}>Preview</button>
        </div>
      )}
      {d && d.encoding === 'utf8' && preview && isMd && <MarkdownPreview text={d.content} />}
      {d && d.encoding === 'utf8' && !(preview && isMd) && (
        <VirtualList
          className={`code file ln-${Math.min(digits, 6)}`} label={`Contents of ${file}`} count={lines.length} rowHeight={ROW}
          row={(i) => (
            <div class="dl">
              <span class="ln" aria-hidden="true">{i + 1}</span>
              <span class="tx">{lines[i]}</span>
            </div>
          )}
        />
      )}
    </div>
  );
}

export function FilesScreen() {
  const m = useModel();
  const conn = m.conn;
  const dir = m.route.screen === 'files' && m.route.path ? m.route.path : '.';
  const file = m.route.screen === 'files' ? m.route.file : undefined;
  const folders = m.info?.folders ?? [];
  const folder = m.route.screen === 'files' ? m.route.folder : undefined;
  const [opening, setOpening] = useState<string | null>(null);
  const r = useRequest(conn && !file ? () => conn.command<FsList>('fs.list', fsArgs(dir, folder)) : null, [dir, file, folder]);
  if (file) return <Viewer file={file} folder={folder} />;
  const parts = dir === '.' ? [] : dir.split('/');
  const entries = sortEntries(r.data?.entries ?? []);
  const rootName = folders.length > 1 ? (folder ?? folders[0]?.name ?? 'workspace') : (m.info?.name ?? 'workspace');
  /* A symlink is listed as itself: it is opened as a folder when fs.list
   * takes it (it stays inside the folder), else in the viewer (which says
   * why when it cannot be read either). */
  const openLink = async (to: string): Promise<void> => {
    setOpening(to);
    const isDir = conn
      ? await conn.command<FsList>('fs.list', fsArgs(to, folder)).then(() => true, () => false)
      : false;
    setOpening(null);
    m.go(isDir ? { screen: 'files', path: to, folder } : { screen: 'files', path: dir, file: to, folder });
  };
  return (
    <div class="screen">
      <ScreenHeader title="Files" back={dir !== '.' ? () => { m.go({ screen: 'files', path: parentOf(dir), folder }); } : undefined}>
        <RefreshButton onClick={r.reload} busy={r.loading} />
      </ScreenHeader>
      {folders.length > 1 && (
        <ul class="chips" aria-label="Workspace folders">
          {folders.map((f, i) => {
            const current = folder ? f.name === folder : i === 0;
            return (
              <li key={f.name}>
                <button type="button" class="chip" aria-current={current ? 'true' : undefined} onClick={() => { m.go({ screen: 'files', path: '.', folder: f.name }); }}>
                  {f.name}
                </button>
              </li>
            );
          })}
        </ul>
      )}
      <nav aria-label="Folder path" class="crumbs">
        <button type="button" class="crumb" onClick={() => { m.go({ screen: 'files', path: '.', folder }); }} aria-current={dir === '.' ? 'page' : undefined}>
          {rootName}
        </button>
        {parts.map((p, i) => {
          const to = parts.slice(0, i + 1).join('/');
          return (
            <span key={to}>
              <span aria-hidden="true"> / </span>
              <button type="button" class="crumb" onClick={() => { m.go({ screen: 'files', path: to, folder }); }} aria-current={to === dir ? 'page' : undefined}>{p}</button>
            </span>
          );
        })}
      </nav>
      <ErrorBox text={r.error} />
      <Loading show={!r.data && r.loading} />
      {r.data && !entries.length && <p class="empty">This folder is empty.</p>}
      <ul class="rows" aria-label={`Contents of ${dir === '.' ? 'the workspace' : dir}`}>
        {entries.map((e) => {
          const isDir = e.type === 'directory' || e.type === 'dir';
          const isLink = e.type === 'symlink';
          const to = join(dir, e.name);
          return (
            <li key={e.name}>
              <button
                type="button" class="row" disabled={opening === to}
                onClick={() => {
                  if (isLink) void openLink(to);
                  else m.go(isDir ? { screen: 'files', path: to, folder } : { screen: 'files', path: dir, file: to, folder });
                }}
              >
                <Icon name={isDir ? 'folder' : 'file'} />
                <span class="path">{e.name}{isDir ? '/' : ''}</span>
                {isLink && <span class="muted small-text">link</span>}
                {!isDir && !isLink && typeof e.size === 'number' && <span class="muted small-text">{fmtBytes(e.size)}</span>}
              </button>
            </li>
          );
        })}
      </ul>
      {r.data?.truncated && <p class="note">This folder has more entries than the helper lists.</p>}
    </div>
  );
}
